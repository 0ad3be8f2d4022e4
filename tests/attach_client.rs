//! `taskmasterctl attach` on a real pseudo-terminal, against a scripted daemon:
//! the window size goes with the command, keys go out raw, output comes back,
//! and the terminal is given back as it was however the attach ends.
mod common;
#[path = "common/fake.rs"]
mod fake;
#[path = "common/pty.rs"]
mod pty;
use common::CTL;
use fake::Fake;
use nix::sys::termios::{LocalFlags, SpecialCharacterIndices::VINTR, Termios};
use pty::Pty;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

const ATTACHED: &[u8] = b"attached to web:0 (detach: Ctrl-])\n";

/// A setting no default terminal has (Ctrl-G interrupts), so a terminal put
/// back as it was is told apart from one merely reset to the defaults.
const MARK: u8 = 0x07;

fn attach(sock: &Path) -> Pty {
    let mut cmd = Command::new(CTL);
    cmd.arg("-s").arg(sock).args(["attach", "web:0"]);
    Pty::spawn_with(cmd, |t| t.control_chars[VINTR as usize] = MARK)
}

fn assert_cooked(t: &Termios) {
    let cooked = LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG;
    assert!(t.local_flags.contains(cooked), "{:?}", t.local_flags);
    assert_eq!(
        t.control_chars[VINTR as usize], MARK,
        "not the saved settings"
    );
}

fn assert_raw(t: &Termios) {
    let cooked = LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG;
    assert!(!t.local_flags.intersects(cooked), "{:?}", t.local_flags);
}

#[test]
fn keys_go_out_raw_output_comes_back_and_ctrl_bracket_detaches() {
    let fake = Fake::serve(|c| {
        let asked = c.line();
        c.send(ATTACHED);
        c.send(b"recent output\r\n");
        // Ctrl-C arrives as a byte: no signal, no line editing.
        let typed = c.until(b'c');
        // Echoed changed, so it is told apart from a terminal's own echo.
        c.send(&typed.to_ascii_uppercase());
        c.send(b"\r\n");
        let detach = c.until(0x1d);
        c.send(b"\x1d\r\nOK\n");
        let after = c.rest();
        (asked, typed, detach, after)
    });
    let mut p = attach(&fake.sock);
    p.expect("attached to web:0 (detach: Ctrl-])");
    // Shown once the terminal is raw.
    p.expect("recent output");
    assert_raw(&p.termios());
    p.send("a\x03c");
    p.expect("A\x03C\r\n");
    p.send("\x1d");
    p.expect("detached from web:0 (it keeps running)");
    let status = p.wait();
    assert_eq!(status.code(), Some(0), "{}", p.text());
    assert_cooked(&p.termios());
    let (asked, typed, detach, after) = fake.result();
    assert_eq!(asked, "attach web:0 40x120", "the pty's size goes along");
    assert_eq!(typed, b"a\x03c");
    assert_eq!(detach, b"\x1d");
    assert_eq!(after, b"", "nothing after the detach");
}

#[test]
fn the_process_ending_ends_the_attach_with_its_error() {
    let fake = Fake::serve(|c| {
        c.line();
        c.send(ATTACHED);
        c.send(b"bye\r\n\x1d\r\nERR web:0: exited (exit status 1)\n");
        c.rest();
    });
    let mut p = attach(&fake.sock);
    p.expect("bye");
    p.expect("ERR web:0: exited (exit status 1)");
    assert_eq!(p.wait().code(), Some(1), "{}", p.text());
    assert_cooked(&p.termios());
    fake.result();
}

#[test]
fn a_refused_attach_leaves_the_terminal_alone() {
    let fake = Fake::serve(|c| {
        c.line();
        c.send(b"ERR web:0: not attachable\n");
    });
    let mut p = attach(&fake.sock);
    p.expect("ERR web:0: not attachable");
    assert_eq!(p.wait().code(), Some(1), "{}", p.text());
    assert_cooked(&p.termios());
    fake.result();
}

#[test]
fn a_daemon_that_goes_away_mid_attach_gives_the_terminal_back() {
    let fake = Fake::serve(|c| {
        c.line();
        c.send(ATTACHED);
        c.send(b"half a li");
    });
    let mut p = attach(&fake.sock);
    p.expect("taskmasterctl: the daemon closed the connection");
    assert_eq!(p.wait().code(), Some(2), "{}", p.text());
    assert_cooked(&p.termios());
    fake.result();
}

#[test]
fn termination_signals_restore_the_terminal_first() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
        let fake = Fake::serve(|c| {
            c.line();
            c.send(ATTACHED);
            c.send(b"ready\r\n");
            // taskmasterctl's end closes the connection: the daemon detaches.
            c.rest()
        });
        let mut p = attach(&fake.sock);
        p.expect("ready");
        assert_raw(&p.termios());
        unsafe { libc::kill(p.pid(), sig) };
        let status = p.wait();
        assert_eq!(status.signal(), Some(sig), "signal {sig}: {}", p.text());
        assert_cooked(&p.termios());
        assert_eq!(fake.result(), b"", "signal {sig}");
    }
}

#[test]
fn the_shell_attaches_detaches_and_carries_on() {
    let status: fake::Script<Vec<u8>> = Box::new(|c| {
        // The shell's own connection: names for completion, after each command.
        let mut asked = 0u8;
        while let Some(l) = c.line_or_eof() {
            assert_eq!(l, "status");
            c.send(b"web:0  RUNNING  pid 1, uptime 0:00:01\nOK\n");
            asked += 1;
        }
        vec![asked]
    });
    let detached: fake::Script<Vec<u8>> = Box::new(|c| {
        c.line();
        c.send(ATTACHED);
        c.send(b"recent output\r\n");
        c.until(b'x');
        c.send(b"X!\r\n");
        c.until(0x1d);
        c.send(b"\x1d\r\nOK\n");
        c.rest()
    });
    // Only a `kill` sends SIGINT in raw mode; in the shell it ends the
    // attach, not the shell.
    let interrupted: fake::Script<Vec<u8>> = Box::new(|c| {
        c.line();
        c.send(ATTACHED);
        c.send(b"second\r\n");
        c.rest()
    });
    let fake = Fake::serve_each(vec![status, detached, interrupted]);
    let state = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(CTL);
    cmd.arg("-s")
        .arg(&fake.sock)
        .env("XDG_STATE_HOME", state.path());
    let mut p = Pty::spawn_with(cmd, |t| t.control_chars[VINTR as usize] = MARK);
    let prompt = format!("taskmaster({})> ", fake.sock.display());
    p.expect(&prompt);
    p.send("attach web:0\r");
    p.expect("recent output");
    assert_raw(&p.termios());
    p.send("x");
    p.expect("X!");
    p.send("\x1d");
    p.expect("detached from web:0");
    p.expect(&prompt);
    p.send("attach web:0\r");
    p.expect("second");
    assert_raw(&p.termios());
    unsafe { libc::kill(p.pid(), libc::SIGINT) };
    p.expect("taskmasterctl: interrupted; detached");
    p.expect(&prompt);
    // Ctrl-D: rustyline gives back the terminal it found, which must be ours.
    p.send("\x04");
    assert_eq!(p.wait().code(), Some(0), "{}", p.text());
    assert_cooked(&p.termios());
    let results = fake.result();
    assert_eq!(
        results[0],
        [3],
        "names fetched at start and after each attach"
    );
    assert_eq!(results[1], b"");
    assert_eq!(results[2], b"");
}
