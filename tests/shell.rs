//! The interactive shell, driven through a pseudo-terminal like a person would.
mod common;
#[path = "common/pty.rs"]
mod pty;
use common::*;
use pty::Pty;
use std::path::Path;
use std::process::Command;

const PROGS: &str = "  web:\n    cmd: sleep 100\n    numprocs: 2\n    starttime: 0\n  db:\n    cmd: sleep 100\n    starttime: 0\n";

fn up(d: &Daemon) -> &Daemon {
    for p in ["web:0", "web:1", "db:0"] {
        d.wait_state(p, "RUNNING", 5.0);
    }
    d
}

/// taskmasterctl's shell on a pty, its history under `state`.
fn shell(d: &Daemon, state: &Path, env: &[(&str, &str)]) -> Pty {
    let mut cmd = Command::new(CTL);
    cmd.arg("-s")
        .arg(&d.sock)
        .env("XDG_STATE_HOME", state)
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Pty::spawn(cmd)
}

fn prompt(d: &Daemon) -> String {
    format!("taskmaster({})> ", d.sock.display())
}

/// rustyline redraws prompt and line on every key, so a command's output is
/// found by a word only the output has, then read on up to the next prompt.
fn output(sh: &mut Pty, d: &Daemon, marker: &str) -> String {
    let head = sh.expect(marker);
    head + &sh.expect(&prompt(d))
}

#[test]
fn tab_completion_hints_ctrl_c_and_ctrl_d() {
    let d = Daemon::start(PROGS);
    up(&d);
    let state = d.path("state");
    let mut sh = shell(&d, &state, &[]);
    sh.expect(&prompt(&d));
    // A unique command completes with its space; a hint shows its arguments.
    sh.send("stat");
    sh.expect("us [NAMES] [--json]");
    sh.send("\t");
    sh.expect("status ");
    // A name prefix completes as far as it is unambiguous, then lists.
    sh.send("we\t");
    sh.expect("web");
    sh.send("\t");
    let listing = sh.expect("web:1");
    assert!(listing.contains("web:0"), "{listing:?}");
    sh.send(":1\t");
    sh.expect("web:1 ");
    sh.send("\r");
    let out = output(&mut sh, &d, "RUNNING");
    assert!(out.contains("web:1  "), "{out:?}");
    assert!(
        !out.contains("web:0  ") && !out.contains("db:0  "),
        "{out:?}"
    );
    // On a terminal the state is coloured.
    assert!(out.contains("\x1b[32mRUNNING\x1b[0m"), "{out:?}");
    // Ctrl-C drops the half-typed line: nothing is stopped.
    // (The pty keeps key order: no need to wait between them.)
    sh.send("stop all\x03");
    sh.expect("ll");
    sh.expect(&prompt(&d));
    sh.send("help stop\r");
    output(&mut sh, &d, "usage: stop NAMES");
    assert_eq!(d.state("web:0"), "RUNNING");
    // Ctrl-D leaves the shell; the daemon keeps running.
    sh.send("\x04");
    assert!(sh.wait().success());
    assert_eq!(d.state("db:0"), "RUNNING");
}

#[test]
fn history_survives_between_sessions() {
    let d = Daemon::start(PROGS);
    up(&d);
    let state = d.path("state");
    let mut first = shell(&d, &state, &[]);
    first.expect(&prompt(&d));
    first.send("status db\r");
    output(&mut first, &d, "RUNNING");
    // A leading space keeps a line out of the history.
    first.send(" status web:1\r");
    output(&mut first, &d, "RUNNING");
    first.send("quit\r");
    assert!(first.wait().success());
    let file = state.join("taskmaster/history");
    let saved = std::fs::read_to_string(&file).expect("history file");
    assert!(saved.lines().any(|l| l == "status db"), "{saved:?}");
    assert!(!saved.contains("web:1"), "{saved:?}");
    // A new session recalls it with the up arrow (after `quit`, the last).
    let mut second = shell(&d, &state, &[]);
    second.expect(&prompt(&d));
    second.send("\x1b[A");
    second.expect("quit");
    second.send("\x1b[A");
    second.expect("status db");
    second.send("\r");
    let out = output(&mut second, &d, "RUNNING");
    assert!(out.contains("db:0  ") && !out.contains("web:0"), "{out:?}");
    second.send("exit\r");
    assert!(second.wait().success());
}

#[test]
fn no_colour_with_no_color() {
    let d = Daemon::start(PROGS);
    up(&d);
    let mut cmd = Command::new(CTL);
    cmd.arg("-s").arg(&d.sock).args(["status", "db"]);
    let mut plain = Pty::spawn(cmd);
    plain.wait();
    assert!(
        plain.text().contains("\x1b[32mRUNNING"),
        "{:?}",
        plain.text()
    );
    let mut cmd = Command::new(CTL);
    cmd.arg("-s")
        .arg(&d.sock)
        .args(["status", "db"])
        .env("NO_COLOR", "1");
    let mut nc = Pty::spawn(cmd);
    nc.wait();
    let text = nc.text();
    assert!(
        text.contains("db:0  RUNNING") && !text.contains('\x1b'),
        "{text:?}"
    );
}

#[test]
fn shutdown_asks_first() {
    let mut d = Daemon::start(PROGS);
    up(&d);
    let state = d.path("state");
    let mut sh = shell(&d, &state, &[]);
    sh.expect(&prompt(&d));
    sh.send("shutdown\r");
    sh.expect("[y/N] ");
    sh.send("n\r");
    sh.expect("not shutting down");
    sh.expect(&prompt(&d));
    assert_eq!(d.state("web:0"), "RUNNING");
    sh.send("shutdown\r");
    sh.expect("[y/N] ");
    sh.send("y\r");
    sh.expect(&prompt(&d));
    assert!(d.wait_exit(10.0).success());
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn survives_a_daemon_restart() {
    let mut d = Daemon::start(PROGS);
    up(&d);
    let state = d.path("state");
    let mut sh = shell(&d, &state, &[]);
    sh.expect(&prompt(&d));
    sh.send("status db\r");
    output(&mut sh, &d, "RUNNING");
    d.signal(libc::SIGTERM);
    d.wait_exit(10.0);
    // Down: one clear line per command, no more.
    sh.send("status\r");
    let out = output(&mut sh, &d, "cannot reach");
    let errors: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("taskmasterctl:"))
        .collect();
    assert_eq!(errors.len(), 1, "{out:?}");
    assert!(
        errors[0].contains("cannot reach taskmasterd at")
            && errors[0].contains("is taskmasterd running?"),
        "{out:?}"
    );
    // Back: the next command reconnects by itself.
    d.relaunch(&[]);
    up(&d);
    sh.send("status web:0\r");
    let out = output(&mut sh, &d, "RUNNING");
    assert!(out.contains("web:0  "), "{out:?}");
    sh.send("exit\r");
    assert!(sh.wait().success());
}

#[test]
fn ctrl_c_abandons_a_long_wait_not_the_shell() {
    let d = Daemon::start("  slow:\n    cmd: sleep 100\n    starttime: 30\n    autostart: false\n");
    let state = d.path("state");
    let mut sh = shell(&d, &state, &[]);
    sh.expect(&prompt(&d));
    sh.send("start slow\r");
    d.wait_state("slow:0", "STARTING", 5.0);
    sh.send("\x03");
    output(&mut sh, &d, "interrupted; the daemon carries on");
    // The shell is still here, and so is the start.
    sh.send("status slow\r");
    output(&mut sh, &d, "STARTING");
    sh.send("\x04");
    assert!(sh.wait().success());
}
