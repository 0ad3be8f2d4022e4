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

/// A listener on `path` whose backlog is full and which never accepts: what
/// another local user can leave at a socket path in a shared folder. A
/// blocking connect() to it waits for as long as it stays so.
fn squat(path: &std::path::Path) -> (std::os::unix::net::UnixListener, Vec<mio::net::UnixStream>) {
    use std::os::fd::AsRawFd;
    let l = std::os::unix::net::UnixListener::bind(path).unwrap();
    // listen() again lowers the backlog: one connection fills it.
    assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
    let mut held = Vec::new();
    loop {
        match mio::net::UnixStream::connect(path) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(held.len() < 1000, "the backlog never filled");
    }
    (l, held)
}

#[test]
fn a_socket_that_never_accepts_is_neither_waited_on_nor_taken() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    let busy = d.path("busy.sock");
    let _squatter = squat(&busy);
    // A second daemon on that path: refused at once, the socket left alone.
    let other = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let conf = std::fs::read_to_string(&other.conf).unwrap();
    let conf = conf.replace(
        &other.sock.display().to_string(),
        &busy.display().to_string(),
    );
    std::fs::write(&other.conf, conf).unwrap();
    let mut child = Command::new(DAEMON)
        .arg("-c")
        .arg(&other.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while status.is_none() && std::time::Instant::now() < deadline {
        status = child.try_wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let exited = status.is_some();
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    assert!(exited, "taskmasterd hung on a socket that never accepts");
    assert_eq!(status.code(), Some(1));
    let err = read_all(child.stderr.take().unwrap());
    assert!(
        err.contains("another taskmasterd is already running on"),
        "{err}"
    );
    assert!(busy.exists(), "the other listener's socket was not removed");
    // A reload onto that path keeps the old socket, and the loop never stalls.
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let conf = conf.replace(&d.sock.display().to_string(), &busy.display().to_string());
    std::fs::write(&d.conf, conf).unwrap();
    let reply = d.cmd("reload");
    assert!(reply.contains("kept socket"), "{reply}");
    assert!(d.cmd("status").ends_with("OK\n"));
}

/// Without pidfds every exit is known by SIGCHLD alone, which a shutdown
/// keeps blocked while a turn of the loop runs (unblocked around its wait):
/// no exit may be missed. The daemon exits, every process and descendant is
/// gone, and every transition is in the log.
#[test]
fn shutdown_by_sigchld_alone_misses_no_exit() {
    let prog = "  a:\n    cmd: sleep 100\n    numprocs: 40\n    starttime: 0\n  \
                t:\n    cmd: \"sh -c 'sleep 100 & sleep 100 & wait'\"\n    starttime: 0\n";
    let mut d = Daemon::start_with(prog, "", &[("TASKMASTER_NO_PIDFD", "1")]);
    let mut names: Vec<String> = (0..40).map(|i| format!("a:{i}")).collect();
    names.push("t:0".into());
    let mut pids = Vec::new();
    for n in &names {
        d.wait_state(n, "RUNNING", 10.0);
        pids.push(d.pid(n).unwrap());
    }
    assert!(d.log_text().contains("child exits via SIGCHLD)"));
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(10.0).success());
    for p in pids {
        assert!(!alive(p) && group_members(p).is_empty(), "{p} left behind");
    }
    let log = d.log_text();
    for n in &names {
        assert!(
            log.contains(&format!("{n}: STOPPING -> STOPPED")),
            "{n}: {log}"
        );
    }
}
