//! `taskmasterd --check` beyond the file's syntax: errors (exit 1) for what
//! would stop the daemon from starting, warnings (exit 0) for what would only
//! fail later, each with the numbers; and a summary with plurals right.
mod common;
use common::*;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

/// `taskmasterd --check -c conf`; it reads a file and exits, no socket.
fn check(conf: &Path) -> Output {
    check_config(conf)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn one_program_one_process() {
    let d = Daemon::configure("  a:\n    cmd: /bin/sleep 1\n", "");
    let out = check(&d.conf);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(": OK, 1 program, 1 process\n"));
    assert_eq!(text(&out.stderr), "", "no warning for a fine config");
}

#[test]
fn a_cmd_that_cannot_run_is_a_warning_saying_why() {
    let d = Daemon::configure(
        "  passwd:\n    cmd: /etc/passwd\n  ghost:\n    cmd: no-such-command-tm15 --x\n  dir:\n    cmd: /tmp\n  ok:\n    cmd: sleep 1\n",
        "",
    );
    let out = check(&d.conf);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let file = d.conf.display();
    assert!(
        err.contains(&format!(
            "warning: {file}: programs.passwd.cmd: /etc/passwd: not executable\n"
        )),
        "{err}"
    );
    assert!(
        err.contains("programs.ghost.cmd: no-such-command-tm15: command not found in PATH"),
        "{err}"
    );
    assert!(err.contains("programs.dir.cmd: /tmp: is a folder"), "{err}");
    assert!(!err.contains("programs.ok"), "{err}");
    assert!(text(&out.stdout).ends_with("OK, 4 programs, 4 processes\n"));
}

#[test]
fn a_socket_folder_that_does_not_exist_stops_the_start() {
    let d = Daemon::configure("  a:\n    cmd: sleep 1\n", "");
    let missing = d.path("gone/deeper");
    let text_in = std::fs::read_to_string(&d.conf).unwrap().replace(
        &d.sock.display().to_string(),
        &missing.join("s.sock").display().to_string(),
    );
    std::fs::write(&d.conf, text_in).unwrap();
    let out = check(&d.conf);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "socket: the folder {} does not exist",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("1 error in"), "{err}");
    assert_eq!(text(&out.stdout), "");
    assert!(!missing.exists(), "--check creates nothing");
    // The daemon itself indeed cannot start there.
    let start = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .output()
        .unwrap();
    assert_eq!(start.status.code(), Some(1));
}

#[test]
fn an_unwritable_log_folder_stops_the_start() {
    // Root may write anywhere: then the check runs as nobody, as the daemon
    // of a non-root user would.
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (run, ro) = (t.path().join("run"), t.path().join("ro"));
    std::fs::create_dir(&run).unwrap();
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let conf = t.path().join("t.yaml");
    std::fs::write(
        &conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  a:\n    cmd: /bin/sleep 1\n",
            run.join("s.sock").display(),
            ro.join("d.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = Command::new(DAEMON);
    cmd.args(["--check", "-c"]).arg(&conf);
    if nix::unistd::geteuid().is_root() {
        let Ok(Some(u)) = nix::unistd::User::from_name("nobody") else {
            eprintln!("skipped: root, and no user nobody to check as");
            return;
        };
        chown(&run, Some(u.uid.as_raw()), Some(u.gid.as_raw())).unwrap();
        cmd.uid(u.uid.as_raw()).gid(u.gid.as_raw());
    }
    let out = cmd.output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("logfile: {} is not writable", ro.display())),
        "{err}"
    );
    assert!(
        !err.contains("socket:"),
        "the socket's folder is fine: {err}"
    );
}

#[test]
fn more_processes_than_pids_is_a_warning_with_the_numbers() {
    let Some(pid_max) = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    else {
        eprintln!("skipped: no /proc/sys/kernel/pid_max");
        return;
    };
    let programs = pid_max / 65536 + 1;
    let text_in: String = (0..programs)
        .map(|i| format!("  p{i}:\n    cmd: /bin/sleep 1\n    numprocs: 65536\n"))
        .collect();
    let d = Daemon::configure(&text_in, "minfds: 0\n");
    let out = check(&d.conf);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let total = programs * 65536;
    assert!(
        err.contains(&format!("numprocs: {total} processes in all"))
            && err.contains(&format!("at most {pid_max} pids")),
        "{err}"
    );
}

/// `--check` under a hard RLIMIT_NOFILE of `hard`.
fn check_limited(conf: &Path, hard: u64) -> Output {
    let mut cmd = Command::new(DAEMON);
    cmd.args(["--check", "-c"]).arg(conf);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: hard,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn more_processes_than_file_descriptors_is_a_warning_with_the_numbers() {
    let d = Daemon::configure("  a:\n    cmd: /bin/sleep 1\n    numprocs: 300\n", "");
    let out = check_limited(&d.conf, 1024);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("minfds: 1756 file descriptors are needed (5 per process + 256)")
            && err.contains("hard RLIMIT_NOFILE here is 1024")
            && err.contains("would refuse to start"),
        "{err}"
    );
    // minfds set low: it would start, but not every process could run.
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, format!("minfds: 512\n{conf}")).unwrap();
    let out = check_limited(&d.conf, 1024);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("300 processes may hold up to 1756 file descriptors (5 each + 256)")
            && err.contains("is 1024"),
        "{err}"
    );
    assert!(text(&out.stdout).ends_with("OK, 1 program, 300 processes\n"));
}
