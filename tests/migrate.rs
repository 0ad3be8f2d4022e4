//! `taskmasterd --import`: a supervisord config from tests/fixtures converts,
//! passes `--check`, and runs: each web worker on its own port.
mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Copies the fixture folder into a fresh temp dir (the config puts its socket
/// and logs next to itself, `%(here)s`), with @USER@ made the test's user.
fn fixture() -> tempfile::TempDir {
    let t = tempfile::Builder::new().prefix("tm").tempdir().unwrap();
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .expect("the test's user has a name")
        .name;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/supervisord");
    for rel in ["supervisord.conf", "conf.d/cron.ini", "conf.d/listener.ini"] {
        let to = t.path().join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let text = std::fs::read_to_string(src.join(rel)).unwrap();
        std::fs::write(to, text.replace("@USER@", &user)).unwrap();
    }
    t
}

fn import(file: &Path) -> Output {
    Command::new(DAEMON)
        .arg("--import")
        .arg(file)
        .output()
        .unwrap()
}

#[test]
fn a_supervisord_config_converts_checks_and_runs() {
    let t = fixture();
    let dir = t.path().to_path_buf();
    let out = import(&dir.join("supervisord.conf"));
    let warnings = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{warnings}");
    let yaml = String::from_utf8(out.stdout).unwrap();
    // One warning per setting without an equivalent, each saying what to do.
    for needle in [
        "supervisord.conf:13: [supervisord] loglevel: set RUST_LOG",
        "supervisord.conf:24: [supervisorctl] prompt:",
        "supervisord.conf:28: [program:web] process_name: processes are always named web:N",
        "cron.ini:4: [program:cron] process_name:",
        "cron.ini:6: [program:cron] stdout_logfile: no automatic log files",
        "cron.ini:8: [group:backend]: no groups",
        "listener.ini:1: [eventlistener:crashmail]: no event listeners",
    ] {
        assert!(warnings.contains(needle), "{needle:?} not in\n{warnings}");
    }
    assert_eq!(warnings.lines().count(), 7, "{warnings}");
    // supervisord's priority is ours.
    assert!(yaml.contains("priority: 10"), "{yaml}");
    assert!(
        warnings.lines().all(|l| l.starts_with("warning: ")),
        "{warnings}"
    );
    let conf = dir.join("taskmaster.yaml");
    std::fs::write(&conf, &yaml).unwrap();
    let check = check_config(&conf);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}\n{yaml}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(
        String::from_utf8_lossy(&check.stdout).ends_with("OK, 4 programs, 7 processes\n"),
        "{check:?}"
    );
    let d = Daemon {
        sock: dir.join("supervisor.sock"),
        log: dir.join("supervisord.log"),
        conf,
        dir: t,
        child: None,
    }
    .launch(&[]);
    for name in ["web:0", "web:1", "web:2", "web:3", "queue:0", "cron:0"] {
        d.wait_state(name, "RUNNING", 20.0);
    }
    d.wait_state("migrate:0", "EXITED_EXPECTEDLY", 20.0);
    for i in 0..4 {
        let seen: PathBuf = dir.join(format!("web-0{i}.seen"));
        wait_until(10.0, "web's line", || {
            std::fs::read_to_string(&seen).is_ok_and(|s| s.ends_with('\n'))
        });
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            format!("--port=800{i} 800{i} hello, world a \"b\", c blue\n")
        );
        assert!(dir.join(format!("web-0{i}.log")).exists());
    }
    assert!(dir.join("queue.err").exists() && dir.join("supervisord.pid").exists());
    assert_eq!(d.cmd("stop all").lines().last(), Some("OK"));
}

#[test]
fn an_unreadable_file_exits_1_and_stdout_stays_empty() {
    let t = tempfile::tempdir().unwrap();
    let out = import(&t.path().join("nope.conf"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read"),
        "{out:?}"
    );
    let out = import(t.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{out:?}"
    );
}

#[test]
fn hostile_input_gives_warnings_and_a_valid_config() {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("x.conf");
    // Binary junk, a huge line, quotes that never close, a program named `all`
    // with YAML-breaking characters in its command: never a panic, and what
    // comes out still checks.
    let mut text =
        String::from("\u{1}\u{2}junk\n[program:all]\ncommand=/bin/echo \"a: b\" '#c' \\ {d}\n");
    text += "environment=A=\"unterminated\n[program:x y]\ncommand=sleep 1\n";
    text += &format!("[program:long]\ncommand=echo {}\n", "x".repeat(200_000));
    text += "[include]\nfiles=/proc/self/* /dev/zero\n";
    std::fs::write(&f, text).unwrap();
    let out = import(&f);
    assert_eq!(out.status.code(), Some(0));
    let conf = t.path().join("t.yaml");
    std::fs::write(&conf, &out.stdout).unwrap();
    let check = check_config(&conf);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let w = String::from_utf8_lossy(&out.stderr);
    assert!(
        w.contains("renamed `all_`") && w.contains("renamed `x_y`"),
        "{w}"
    );
    assert!(w.contains("unterminated"), "{w}");
}
