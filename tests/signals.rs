//! The daemon's signal table: every catchable signal is handled or ignored on
//! purpose; none but SIGKILL ends it without stopping its children first.
mod common;
use common::*;

const PROGS: &str = "  s:\n    cmd: sleep 100\n    starttime: 0\n    numprocs: 2\n";

#[test]
fn stray_signals_are_ignored_and_logged() {
    let d = Daemon::start(PROGS);
    d.wait_state("s:1", "RUNNING", 5.0);
    let pids: Vec<i32> = (0..2).map(|i| d.pid(&format!("s:{i}")).unwrap()).collect();
    let rt = libc::SIGRTMIN() + 3;
    for sig in [
        libc::SIGUSR1,
        libc::SIGALRM,
        libc::SIGPIPE,
        libc::SIGVTALRM,
        libc::SIGPROF,
        libc::SIGIO,
        libc::SIGPWR,
        libc::SIGTSTP,
        rt,
        libc::SIGUSR1,
        // Fault signals sent by kill are not faults: ignored too.
        libc::SIGSEGV,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGABRT,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGTRAP,
        libc::SIGSYS,
    ] {
        d.signal(sig);
    }
    d.wait_log("SIGSEGV sent by another process: ignored", 5.0);
    d.wait_log("SIGABRT sent by another process: ignored", 5.0);
    d.wait_log("SIGSYS sent by another process: ignored", 5.0);
    d.wait_log("SIGUSR1 received and ignored", 5.0);
    d.wait_log("SIGALRM received and ignored", 5.0);
    d.wait_log(&format!("signal {rt} received and ignored"), 5.0);
    assert_eq!(
        d.log_text().matches("SIGUSR1 received and ignored").count(),
        1,
        "logged once at info level"
    );
    // Not stopped by job-control signals either.
    let me = d.child.as_ref().unwrap().id();
    let stat = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
    let state = stat.rsplit(')').next().unwrap().trim_start().chars().next();
    assert_ne!(state, Some('T'), "{stat}");
    // Still serving, children untouched.
    assert_eq!(d.cmd("status s:0").lines().last(), Some("OK"));
    for (i, p) in pids.iter().enumerate() {
        assert!(alive(*p));
        assert_eq!(d.pid(&format!("s:{i}")), Some(*p));
    }
    // Children start with no standard signal blocked, ignored or caught
    // (32 and up belong to libc and to whoever launched the test).
    assert_eq!(d.cmd("restart s:0"), "s:0: started\nOK\n");
    let child = d.pid("s:0").unwrap();
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    for key in ["SigBlk:", "SigIgn:", "SigCgt:"] {
        let v = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap()
            .trim();
        let bits = u64::from_str_radix(v, 16).unwrap();
        assert_eq!(bits & 0x7fff_ffff, 0, "{key} {v} of a child");
    }
}

#[test]
fn sigquit_shuts_down_like_sigterm() {
    let mut d = Daemon::start(PROGS);
    d.wait_state("s:1", "RUNNING", 5.0);
    let pids: Vec<i32> = (0..2).map(|i| d.pid(&format!("s:{i}")).unwrap()).collect();
    d.signal(libc::SIGQUIT);
    assert!(d.wait_exit(10.0).success());
    for p in pids {
        assert_gone(p);
    }
    assert!(!d.sock.exists(), "the socket is removed");
    assert!(d.log_text().contains("shutting down (SIGQUIT)"));
}

/// logrotate's `mv` then `kill -USR2` (or -HUP): the daemon writes to a new
/// file at the configured path, not to the moved one.
#[test]
fn usr2_and_hup_reopen_the_log_after_a_move() {
    let d = Daemon::start(PROGS);
    d.wait_state("s:1", "RUNNING", 5.0);
    for (sig, name) in [(libc::SIGUSR2, "SIGUSR2"), (libc::SIGHUP, "SIGHUP")] {
        let moved = d.path(&format!("d.log.{name}"));
        std::fs::rename(&d.log, &moved).unwrap();
        d.signal(sig);
        d.wait_log(&format!("{name}: reopened"), 5.0);
        // The new file at the path has the lines written since, the moved one not.
        assert_eq!(d.cmd("stop s:0"), "s:0: stopped\nOK\n");
        d.wait_log("s:0: STOPPING -> STOPPED", 5.0);
        assert_eq!(d.cmd("start s:0"), "s:0: started\nOK\n");
        let old = std::fs::read_to_string(&moved).unwrap();
        assert!(!old.contains(&format!("{name}: reopened")), "{old}");
    }
}
