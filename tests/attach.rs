//! `attach` against the real daemon: a shell on a pseudo terminal, typed
//! input in, output out, Ctrl-] back to line mode, the end of the process.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

// An interactive shell ignores SIGTERM: HUP is how a terminal ends it.
const PROGS: &str = "  sh:\n    cmd: \"sh\"\n    attach: true\n    starttime: 0\n    stopsignal: HUP\n    stoptime: 2\n    env:\n      PS1: \"$ \"\n  plain:\n    cmd: sleep 100\n    starttime: 0\n";

/// Reads raw bytes until `needle` has arrived (10 s at most).
fn read_until(s: &mut UnixStream, needle: &[u8]) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(needle.len()).any(|w| w == needle) {
        assert!(
            Instant::now() < deadline,
            "no {:?} in {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(&got)
        );
        match s.read(&mut buf) {
            Ok(0) => panic!("closed; got {:?}", String::from_utf8_lossy(&got)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    got
}

#[test]
fn attach_round_trip_detach_and_line_mode_after() {
    let d = Daemon::start(PROGS);
    d.wait_state("sh:0", "RUNNING", 5.0);
    let mut s = d.connect();
    s.write_all(b"attach sh 33x77\n").unwrap();
    let head = read_until(&mut s, b"(detach: Ctrl-])\n");
    assert!(
        head.starts_with(b"attached to sh:0 (detach: Ctrl-])\n"),
        "{head:?}"
    );
    s.write_all(b"stty size; echo hi-$((40+2))\r").unwrap();
    let shown = read_until(&mut s, b"hi-42\r\n");
    let text = String::from_utf8_lossy(&shown);
    assert!(
        text.contains("33 77"),
        "the window size was passed on: {text:?}"
    );
    // A second client cannot attach meanwhile.
    assert_eq!(d.cmd("attach sh"), "ERR sh:0: already attached\n");
    // Ctrl-] detaches; what follows it is a command again.
    s.write_all(b"\x1dstatus sh\n").unwrap();
    let tail = read_until(&mut s, b"\x1d\r\nOK\n");
    let at = tail.iter().position(|b| *b == 0x1d).unwrap();
    assert_eq!(
        &tail[at..at + 6],
        b"\x1d\r\nOK\n",
        "the first 0x1d is the marker"
    );
    // The reply to `status sh` follows the marker (maybe already read).
    let mut rest = tail[at + 6..].to_vec();
    if !rest.ends_with(b"OK\n") {
        rest.extend(read_until(&mut s, b"OK\n"));
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(text.starts_with("sh:0  RUNNING"), "{text}");
    assert_eq!(d.state("sh:0"), "RUNNING", "the process keeps running");
    // tail reads what the terminal showed.
    assert!(d.cmd("tail -n 50 sh").contains("hi-42"));
}

#[test]
fn the_end_of_the_process_ends_the_attach() {
    let d = Daemon::start(PROGS);
    d.wait_state("sh:0", "RUNNING", 5.0);
    let mut s = d.connect();
    s.write_all(b"attach sh\n").unwrap();
    read_until(&mut s, b"(detach: Ctrl-])\n");
    s.write_all(b"exit 3\r").unwrap();
    read_until(&mut s, b"\x1d\r\nERR sh:0: exited (exit status 3)\n");
    // The connection is in line mode again.
    s.write_all(b"help quit\n").unwrap();
    read_until(&mut s, b"OK\n");
}

#[test]
fn refusals() {
    let d = Daemon::start(PROGS);
    d.wait_state("plain:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("attach plain"), "ERR plain:0: not attachable\n");
    assert_eq!(d.cmd("attach nope"), "ERR unknown name: nope\n");
    assert_eq!(d.cmd("stop sh"), "sh:0: stopped\nOK\n");
    assert_eq!(d.cmd("attach sh"), "ERR sh:0: not running\n");
}

/// A client that attaches and then vanishes frees the terminal.
#[test]
fn a_client_that_closes_detaches() {
    let d = Daemon::start(PROGS);
    d.wait_state("sh:0", "RUNNING", 5.0);
    {
        let mut s = d.connect();
        s.write_all(b"attach sh\n").unwrap();
        read_until(&mut s, b"(detach: Ctrl-])\n");
    }
    wait_until(5.0, "the attach to be released", || {
        let mut s = d.connect();
        s.write_all(b"attach sh\n").unwrap();
        let mut first = String::new();
        let _ = BufReader::new(s).read_line(&mut first);
        first.starts_with("attached to sh:0")
    });
}

#[path = "common/pty.rs"]
mod pty;

/// The whole path a user takes: `taskmasterctl attach` on a real terminal,
/// against the real daemon, a command typed into the process's shell, Ctrl-]
/// and back; the process keeps running.
#[test]
fn taskmasterctl_attach_end_to_end() {
    let d = Daemon::start(PROGS);
    d.wait_state("sh:0", "RUNNING", 5.0);
    let mut cmd = std::process::Command::new(CTL);
    cmd.arg("-s").arg(&d.sock).args(["attach", "sh"]);
    let mut term = pty::Pty::spawn(cmd);
    term.expect("attached to sh:0");
    term.send("echo typed-$((6*7))\r");
    term.expect("typed-42");
    term.send("\x1d");
    assert!(term.wait().success());
    assert_eq!(d.state("sh:0"), "RUNNING");
    assert!(d.cmd("tail -n 20 sh").contains("typed-42"));
}

/// Keys pasted faster than the process reads its terminal wait for it:
/// every byte from the client reaches the process.
#[test]
fn a_big_paste_reaches_the_process_whole() {
    let d = Daemon::start("  cat:\n    cmd: \"sh -c 'stty -echo; exec cat'\"\n    attach: true\n    workingdir: .\n    stdout: cat.out\n    starttime: 0\n");
    d.wait_state("cat:0", "RUNNING", 5.0);
    let mut s = d.connect();
    s.write_all(b"attach cat\n").unwrap();
    read_until(&mut s, b"(detach: Ctrl-])\n");
    let paste: String = (0..20000).map(|i| format!("line {i:06}\n")).collect();
    let mut reader = s.try_clone().unwrap();
    let drain = std::thread::spawn(move || {
        reader
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 65536];
        let mut seen = Vec::new();
        while Instant::now() < deadline && !seen.ends_with(b"line 019999\r\n") {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    let keep = seen.len().saturating_sub(64);
                    seen.drain(..keep);
                }
                Err(_) => {}
            }
        }
        seen
    });
    s.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(paste.as_bytes()).unwrap();
    let tail = drain.join().unwrap();
    assert!(
        tail.ends_with(b"line 019999\r\n"),
        "{:?}",
        String::from_utf8_lossy(&tail)
    );
    let file = d.path("cat.out");
    wait_until(10.0, "every line in the file", || {
        std::fs::read_to_string(&file).is_ok_and(|t| t.matches("line ").count() == 20000)
    });
}
