//! shutdown, SIGTERM/SIGINT, one daemon per socket, stale sockets.
mod common;
use common::*;
use std::process::{Command, Stdio};

const TWO: &str = "  a:\n    cmd: sleep 100\n    numprocs: 2\n    starttime: 0.1\n  t:\n    cmd: \"sh -c 'sleep 100 & sleep 100 & wait'\"\n    starttime: 0.1\n";

fn pids(d: &Daemon) -> Vec<i32> {
    for n in ["a:0", "a:1", "t:0"] {
        d.wait_state(n, "RUNNING", 5.0);
    }
    ["a:0", "a:1", "t:0"]
        .iter()
        .map(|n| d.pid(n).unwrap())
        .collect()
}

#[test]
fn shutdown_command_stops_everything_and_removes_the_socket() {
    let mut d = Daemon::start(TWO);
    let pids = pids(&d);
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(5.0).success());
    for p in pids {
        assert!(!alive(p) && group_members(p).is_empty(), "{p} left behind");
    }
    assert!(!d.sock.exists());
    assert!(d.log_text().contains("taskmasterd stopped"));
}

#[test]
fn sigterm_and_sigint_shut_down_cleanly() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut d = Daemon::start(TWO);
        let pids = pids(&d);
        d.signal(sig);
        assert_eq!(d.wait_exit(5.0).code(), Some(0));
        for p in pids {
            assert!(!alive(p) && group_members(p).is_empty());
        }
        assert!(!d.sock.exists());
    }
}

#[test]
fn second_sigterm_kills_at_once() {
    let mut d = Daemon::start("  s:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    stoptime: 60\n    starttime: 0.1\n");
    d.wait_state("s:0", "RUNNING", 5.0);
    let pid = d.pid("s:0").unwrap();
    d.signal(libc::SIGTERM);
    d.wait_log("shutting down", 5.0);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(5.0).code(), Some(0));
    assert!(!alive(pid));
}

#[test]
fn one_daemon_per_socket() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    let out = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another taskmasterd is already running on"),
        "{err}"
    );
    // The first one is unharmed.
    assert!(d.cmd("status").ends_with("OK\n"));
}

#[test]
fn stale_socket_is_reclaimed_and_non_socket_is_refused() {
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    drop(std::os::unix::net::UnixListener::bind(&d.sock).unwrap());
    assert!(d.sock.exists(), "a stale socket file, nobody listening");
    let d = d.launch(&[]);
    d.wait_log("removed stale socket", 5.0);
    assert!(d.cmd("status").ends_with("OK\n"));

    let other = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    std::fs::write(&other.sock, "precious").unwrap();
    let out = Command::new(DAEMON)
        .arg("-c")
        .arg(&other.conf)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists and is not a socket"));
    assert_eq!(std::fs::read_to_string(&other.sock).unwrap(), "precious");
}
