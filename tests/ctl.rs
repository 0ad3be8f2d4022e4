//! taskmasterctl: one-shot and script modes and their exit codes.
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn ctl(d: &Daemon, args: &[&str]) -> Output {
    Command::new(CTL)
        .arg("-s")
        .arg(&d.sock)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// taskmasterctl in script mode: `args`, then `input` on its stdin.
fn script(args: &[&std::ffi::OsStr], input: &[u8]) -> Output {
    let mut child = Command::new(CTL)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn one_shot_exit_codes() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n  b:\n    cmd: sleep 100\n    autostart: false\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = ctl(&d, &["status", "a"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("a:0  RUNNING"));
    let out = ctl(&d, &["status"]);
    assert_eq!(out.status.code(), Some(3), "b is not running");
    let out = ctl(&d, &["start", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "ERR unknown name: nope\n");
    let out = ctl(&d, &["start", "b"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "b:0: started\n".into())
    );
    assert_eq!(ctl(&d, &["status", "--json"]).status.code(), Some(0));
    assert_eq!(ctl(&d, &["--bogus"]).status.code(), Some(2));
    let out = Command::new(CTL)
        .args(["-s", "/nonexistent/sock", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .starts_with("taskmasterctl: cannot reach taskmasterd at /nonexistent/sock"));
}

#[test]
fn script_mode_and_config_socket() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = script(
        &["-c".as_ref(), d.conf.as_os_str()],
        b"status\n\nstop a\nstart zzz\nstatus a\n",
    );
    assert_eq!(out.status.code(), Some(3), "highest of 0, 0, 1, 3");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("a:0: stopped\n"), "{stdout}");
    assert!(stdout.contains("a:0  STOPPED"), "{stdout}");
    assert_eq!(text(&out.stderr), "ERR unknown name: zzz\n");
}

#[test]
fn piped_output_is_plain_and_help_works_without_a_daemon() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = ctl(&d, &["status"]);
    assert!(!text(&out.stdout).contains('\x1b'), "{:?}", out.stdout);
    let out = Command::new(CTL)
        .args(["-s", "/nonexistent/sock", "help", "restart"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: restart NAMES\n"));
    let out = ctl(&d, &["help", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn script_mode_shuts_down_without_asking() {
    let mut d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = script(&["-s".as_ref(), d.sock.as_os_str()], b"shutdown\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(d.wait_exit(10.0).success());
}
