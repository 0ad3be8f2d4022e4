//! `include:`: programs from conf.d/, a duplicate named in both files, and a
//! reload that finds a new file.
mod common;
use common::*;

#[test]
fn a_program_defined_twice_names_both_files() {
    let d = Daemon::configure("  a:\n    cmd: sleep 1\n", "include: [\"conf.d/*.yaml\"]\n");
    let conf_d = d.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    std::fs::write(conf_d.join("1.yaml"), "programs:\n  b:\n    cmd: sleep 1\n").unwrap();
    std::fs::write(
        conf_d.join("2.yaml"),
        "# second\nprograms:\n  b:\n    cmd: sleep 2\n",
    )
    .unwrap();
    let out = check_config(&d.conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:3: programs.b: program `b` is defined twice: also at {}:2",
        conf_d.join("2.yaml").display(),
        conf_d.join("1.yaml").display()
    );
    assert!(err.contains(&want), "{err}");
    std::fs::remove_file(conf_d.join("2.yaml")).unwrap();
    let out = check_config(&d.conf);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("OK, 2 programs, 2 processes"),
        "{out:?}"
    );
}

#[test]
fn reload_finds_a_new_file() {
    let d = Daemon::configure(
        "  a:\n    cmd: sleep 100\n    starttime: 0\n",
        "include: conf.d/*.yaml\n",
    );
    let conf_d = d.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    let d = d.launch(&[]);
    d.wait_state("a:0", "RUNNING", 10.0);
    // Its cmd is relative to its own folder.
    std::fs::write(conf_d.join("run.sh"), "#!/bin/sh\nexec sleep 1000\n").unwrap();
    let mut perm = std::fs::metadata(conf_d.join("run.sh"))
        .unwrap()
        .permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(conf_d.join("run.sh"), perm).unwrap();
    std::fs::write(
        conf_d.join("new.yaml"),
        "programs:\n  late:\n    cmd: \"%(here)s/run.sh\"\n    starttime: 0\n",
    )
    .unwrap();
    assert_eq!(d.cmd("reload"), "added late\nOK\n");
    d.wait_state("late:0", "RUNNING", 10.0);
    // A broken included file: the reload names it and changes nothing.
    std::fs::write(conf_d.join("bad.yaml"), "socket: /x\n").unwrap();
    let reply = d.cmd("reload");
    assert!(
        reply.contains(&format!(
            "{}:1: socket: an included file holds `programs:` only",
            conf_d.join("bad.yaml").display()
        )),
        "{reply}"
    );
    assert!(
        reply.ends_with("ERR invalid configuration, nothing changed\n"),
        "{reply}"
    );
    std::fs::remove_file(conf_d.join("new.yaml")).unwrap();
    std::fs::remove_file(conf_d.join("bad.yaml")).unwrap();
    assert_eq!(d.cmd("reload"), "removed late\nOK\n");
}

#[test]
fn too_many_files_or_a_fifo_are_refused_not_waited_on() {
    let d = Daemon::configure("", "include: [\"conf.d/*\"]\n");
    let conf_d = d.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    // A FIFO would block a plain open: it is named and refused at once.
    nix::unistd::mkfifo(&conf_d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let check = || check_config(&d.conf);
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fifo: not a regular file (a FIFO)"), "{err}");
    std::fs::remove_file(conf_d.join("fifo")).unwrap();
    for i in 0..1001 {
        std::fs::write(conf_d.join(format!("{i:04}.yaml")), "programs: {}\n").unwrap();
    }
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("matches more than 1000 files"), "{err}");
    std::fs::remove_file(conf_d.join("1000.yaml")).unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn the_error_cap_holds_across_included_files() {
    // 50 files of 150 bad keys each: 7 500 errors. The cap is for what a user
    // reads (--check, a reload's reply, the log), not per file: 50 files once
    // listed 50 × 101 lines (1 000 files: 101 002 lines, 20 s). The main
    // file's own errors come first, not interleaved by line with the others'.
    let d = Daemon::configure(
        "  a:\n    cmd: sleep 1\n    zzz: 1\n",
        "include: [\"conf.d/*.yaml\"]\n",
    );
    let conf_d = d.path("conf.d");
    std::fs::create_dir(&conf_d).unwrap();
    for f in 0..50 {
        let mut text = String::from("programs:\n");
        for k in 0..150 {
            text.push_str(&format!("  p{f}x{k}:\n    cmd: sleep 1\n    bogus: 1\n"));
        }
        std::fs::write(conf_d.join(format!("{f}.yaml")), text).unwrap();
    }
    let out = check_config(&d.conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() <= 102,
        "{} lines: {:?}",
        lines.len(),
        &lines[..3]
    );
    assert!(lines[0].contains("programs.a.zzz"), "{:?}", &lines[..3]);
    assert!(err.contains("taskmasterd: 7501 errors in"), "{err}");
    assert!(
        err.contains("… and 7401 more errors"),
        "{:?}",
        &lines[lines.len().saturating_sub(3)..]
    );
}
