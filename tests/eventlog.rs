//! The event log never stalls the daemon: a FIFO or device as `logfile` is
//! refused (at boot and on reload), and the echo to a terminal that does not
//! read drops lines instead of blocking.
mod common;
use common::*;
use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, SetArg};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

/// One command round trip, bounded: a stalled daemon fails here, not hangs.
fn timed(d: &Daemon, line: &str) -> (String, Duration) {
    let t = Instant::now();
    let s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s);
    r.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let reply = read_reply(&mut r);
    (reply, t.elapsed())
}

/// Runs the daemon on `d.conf` to its end, bounded; returns (exit code, stderr).
fn run_to_exit(d: &Daemon) -> (Option<i32>, String) {
    let mut child = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn taskmasterd");
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = status.unwrap_or_else(|| panic!("taskmasterd still running after 5 s: {err}"));
    (status.code(), err)
}

#[test]
fn a_fifo_or_device_logfile_refuses_to_start() {
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    mkfifo(&d.log);
    let (code, err) = run_to_exit(&d);
    let want = format!(
        "taskmasterd: logfile {}: not a regular file",
        d.log.display()
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&want), "{err}");
    assert!(!d.sock.exists(), "no socket left behind");

    // A reader on the FIFO changes nothing (the open would not block then,
    // but every write could).
    let _reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&d.log)
        .unwrap();
    let (code, err) = run_to_exit(&d);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&want), "{err}");

    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let conf = conf.replace(&d.log.display().to_string(), "/dev/zero");
    std::fs::write(&d.conf, conf).unwrap();
    let (code, err) = run_to_exit(&d);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("logfile /dev/zero: not a regular file"),
        "{err}"
    );
}

#[test]
fn dev_null_is_a_fine_logfile() {
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n    starttime: 0\n", "");
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        conf.replace(&d.log.display().to_string(), "/dev/null"),
    )
    .unwrap();
    let d = d.launch(&[]);
    d.wait_state("a:0", "RUNNING", 5.0);
}

#[test]
fn a_reload_naming_a_fifo_logfile_keeps_the_old_one() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let fifo = d.path("new.fifo");
    mkfifo(&fifo);
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let conf = conf.replace(&d.log.display().to_string(), &fifo.display().to_string());
    std::fs::write(&d.conf, conf).unwrap();
    let (reply, took) = timed(&d, "reload");
    assert!(took < Duration::from_secs(1), "reload took {took:?}");
    let want = format!(
        "kept logfile {}: logfile {}: not a regular file",
        d.log.display(),
        fifo.display()
    );
    assert!(reply.contains(&want), "{reply}");
    // Still logging to the old file.
    d.cmd("stop a");
    d.wait_log("a:0: RUNNING -> STOPPING", 5.0);
}

const BUSY: &str =
    "  many:\n    cmd: sleep 100\n    numprocs: 10\n    starttime: 0\n    stoptime: 1\n\
    \x20 crash:\n    cmd: \"sh -c 'exit 1'\"\n    autorestart: always\n    starttime: 0\n";

/// A daemon whose stderr is the slave of a fresh pty (IXON on, so that Ctrl-S
/// pauses it); returns it with the master, which nobody reads until the test does.
fn daemon_on_a_pty() -> (Daemon, File) {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut attrs = tcgetattr(&pty.slave).unwrap();
    attrs.input_flags |= InputFlags::IXON;
    tcsetattr(&pty.slave, SetArg::TCSANOW, &attrs).unwrap();
    let mut d = Daemon::configure(BUSY, "");
    let child = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(pty.slave))
        .spawn()
        .expect("spawn taskmasterd");
    d.child = Some(child);
    let sock = d.sock.clone();
    wait_until(10.0, "the control socket", || {
        UnixStream::connect(&sock).is_ok()
    });
    (d, File::from(pty.master))
}

/// Commands that make plenty of log lines (every start/stop logs a few per
/// process), each round trip bounded, until `secs` pass and `done` holds.
fn churn(d: &Daemon, secs: u64, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    let mut rounds = 0;
    while start.elapsed() < Duration::from_secs(secs) || !done() {
        assert!(
            start.elapsed() < Duration::from_secs(secs + 20),
            "never done"
        );
        for line in ["stop many", "start many", "status"] {
            let (reply, took) = timed(d, line);
            assert!(
                took < Duration::from_secs(1),
                "{line} took {took:?}: {reply}"
            );
        }
        rounds += 1;
    }
    assert!(rounds > 5, "only {rounds} rounds");
}

/// Paused with Ctrl-S, so even the first echo would block without the fix;
/// after Ctrl-Q the terminal is told how much it missed.
#[test]
fn a_paused_terminal_never_stalls_the_daemon_and_hears_the_count() {
    let (d, mut master) = daemon_on_a_pty();
    master.write_all(b"\x13").unwrap();
    // Echo goes through a description of its own: fd 2 (shared with whoever
    // started the daemon) must not turn non-blocking.
    let pid = d.child.as_ref().map(|c| c.id()).unwrap();
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/2")).unwrap();
    let flags = info.lines().find_map(|l| l.strip_prefix("flags:")).unwrap();
    let flags = u32::from_str_radix(flags.trim(), 8).unwrap();
    assert_eq!(flags & libc::O_NONBLOCK as u32, 0, "fd 2 flags {flags:o}");

    churn(&d, 3, || {
        d.log_text().contains("the terminal is not reading")
    });
    let log = d.log_text();
    assert_eq!(
        log.matches("the terminal is not reading").count(),
        1,
        "{log}"
    );

    master.write_all(b"\x11").unwrap(); // Ctrl-Q
    let fl = unsafe { libc::fcntl(master.as_raw_fd(), libc::F_GETFL) };
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) };
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    wait_until(10.0, "the drop count on the terminal", || {
        while let Ok(n @ 1..) = master.read(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        // Something to echo, so that the daemon finds the terminal back.
        let _ = timed(&d, "stop many");
        seen.contains("log lines dropped on the terminal (it was not reading)")
    });
    d.wait_log("terminal echo: the terminal reads again", 5.0);
}

/// Never paused, just never read: the pty's buffer fills, then the same.
#[test]
fn an_unread_terminal_never_stalls_the_daemon() {
    let (d, _master) = daemon_on_a_pty();
    churn(&d, 2, || {
        d.log_text().contains("the terminal is not reading")
    });
}
