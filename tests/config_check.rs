//! `taskmasterd --check`: a summary, or every error with file and line.
mod common;
use common::*;
use std::process::Command;

#[test]
fn shipped_example_is_valid() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/taskmaster.yaml");
    let out = Command::new(DAEMON)
        .args(["--check", "-c", conf])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("OK, 2 programs, 10 processes\n"));
}

#[test]
fn every_error_is_printed_and_nothing_starts() {
    let d = Daemon::configure(
        "  a:\n    cmd: \"x 'y\"\n    numprocs: -1\n    stopsignal: NOPE\n  a2:\n    umask: 999\n",
        "",
    );
    let out = Command::new(DAEMON)
        .arg("--check")
        .arg("-c")
        .arg(&d.conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = d.conf.display().to_string();
    for want in [
        format!("{file}:5: programs.a.cmd: unterminated quote"),
        format!("{file}:6: programs.a.numprocs: expected an integer from 1"),
        format!("{file}:7: programs.a.stopsignal: expected a signal name"),
        format!("{file}:9: programs.a2.umask: expected an octal umask"),
        format!("{file}:8: programs.a2: missing required key `cmd`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // Running (not --check) refuses too, and creates no socket.
    let out = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.sock.exists());
}
