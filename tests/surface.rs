//! The control surface: the unix socket's mode and group, and the TCP
//! listener's secret (`auth` first, refusals logged and closed) or its
//! explicit `listen_open`. Client text is escaped in the log.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

const PROGS: &str = "  a:\n    cmd: sleep 100\n    starttime: 0\n";

fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root (chown of the socket to another group)");
    false
}

/// The TCP port the daemon logged for `listen: 127.0.0.1:0`.
fn port(d: &Daemon) -> u16 {
    d.wait_log("TCP control listener on 127.0.0.1:", 5.0);
    d.log_text()
        .split("TCP control listener on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the bound port in the log")
}

fn tcp(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    BufReader::new(s)
}

/// Sends `line`, returns the reply's lines up to OK/ERR (CRLF trimmed).
fn ask(c: &mut BufReader<TcpStream>, line: &str) -> Vec<String> {
    c.get_mut()
        .write_all(format!("{line}\r\n").as_bytes())
        .unwrap();
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        assert!(c.read_line(&mut l).unwrap() > 0, "closed after {lines:?}");
        let l = l.trim_end().to_string();
        let last = l == "OK" || l.starts_with("ERR");
        lines.push(l);
        if last {
            return lines;
        }
    }
}

/// A configured (not started) daemon whose TCP listener reads its secret
/// from a file holding `text` with `mode`; the listen keys come first.
fn with_secret_file(text: &str, mode: u32) -> Daemon {
    let d = Daemon::configure(PROGS, "");
    let secret = d.path("secret");
    std::fs::write(&secret, text).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let extra = format!(
        "listen: \"127.0.0.1:0\"\nlisten_secret_file: {}\n",
        secret.display()
    );
    std::fs::write(&d.conf, format!("{extra}{conf}")).unwrap();
    d
}

/// A daemon whose TCP listener wants the secret in a 0600 file.
fn secret_daemon() -> (Daemon, u16) {
    let d = with_secret_file("  correct-horse\n", 0o600).launch(&[]);
    let p = port(&d);
    (d, p)
}

#[test]
fn the_socket_is_0700_by_default() {
    let d = Daemon::start(PROGS);
    let m = std::fs::symlink_metadata(&d.sock).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o700);
}

#[test]
fn socket_mode_and_group_widen_it_on_purpose() {
    if !root() {
        return;
    }
    let d = Daemon::start_with(PROGS, "socket_mode: \"0770\"\nsocket_group: daemon\n", &[]);
    let m = std::fs::symlink_metadata(&d.sock).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o770);
    let gid = nix::unistd::Group::from_name("daemon")
        .unwrap()
        .unwrap()
        .gid;
    assert_eq!(m.gid(), gid.as_raw());
    // A reload that narrows it again applies in place (same socket).
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, text.replace("socket_mode: \"0770\"\n", "")).unwrap();
    assert!(d.cmd("reload").ends_with("OK\n"));
    let m = std::fs::symlink_metadata(&d.sock).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o700);
}

#[test]
fn auth_first_then_commands() {
    let (d, port) = secret_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = tcp(port);
    // Nothing before auth, not even help or a parse error.
    for line in ["status", "help", "frobnicate", "shutdown"] {
        assert_eq!(ask(&mut c, line), ["ERR authentication required"], "{line}");
    }
    assert_eq!(ask(&mut c, "auth correct-horse"), ["OK"]);
    let lines = ask(&mut c, "status a");
    assert!(
        lines[0].starts_with("a:0") && lines[0].contains("RUNNING"),
        "{lines:?}"
    );
    d.wait_log("authenticated", 5.0);
    assert!(
        !d.log_text().contains("correct-horse"),
        "the secret was logged"
    );
    // The unix socket needs no auth (its mode admits its clients).
    assert!(d.cmd("status a").ends_with("OK\n"));
}

#[test]
fn a_wrong_secret_is_refused_logged_and_closed() {
    let (d, port) = secret_daemon();
    let mut c = tcp(port);
    assert_eq!(
        ask(&mut c, "auth correct-hors"),
        ["ERR authentication failed"]
    );
    // Then EOF: the connection is closed.
    let mut rest = String::new();
    c.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "");
    d.wait_log("authentication failed", 5.0);
    let log = d.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("authentication failed"))
        .unwrap();
    assert!(line.contains("127.0.0.1:"), "no peer address: {line}");
    assert!(!log.contains("correct-hors"), "a guess was logged");
    // The daemon still serves the right secret.
    let mut c = tcp(port);
    assert_eq!(ask(&mut c, "auth correct-horse"), ["OK"]);
}

#[test]
fn a_group_readable_secret_file_is_refused_at_load() {
    let d = with_secret_file("s3cret\n", 0o640);
    let out = check_config(&d.conf);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("t.yaml:2: listen_secret_file:") && err.contains("group or others"),
        "{err}"
    );
    // And a listener with neither a secret nor listen_open.
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let text: String = conf.split_inclusive('\n').skip(2).collect();
    std::fs::write(&d.conf, format!("listen: \"127.0.0.1:0\"\n{text}")).unwrap();
    let out = check_config(&d.conf);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("listen_open"), "{err}");
}

#[test]
fn listen_open_is_warned_at_start() {
    let d = Daemon::start_with(PROGS, "listen: \"127.0.0.1:0\"\nlisten_open: true\n", &[]);
    let port = port(&d);
    d.wait_log("WARN  listen_open: every local user can control", 5.0);
    let mut c = tcp(port);
    assert_eq!(ask(&mut c, "pid").last().unwrap(), "OK");
}

#[test]
fn client_text_cannot_forge_log_lines() {
    let d = Daemon::start(PROGS);
    let mut s = connect(&d.sock);
    s.write_all(b"stop a\r2030-01-01T00:00:00.000Z INFO  forged \x1b[2K\n")
        .unwrap();
    let mut r = BufReader::new(s);
    read_reply(&mut r);
    d.wait_log("stop a\\r2030", 5.0);
    let log = d.log_text();
    assert!(!log.contains('\r') && !log.contains('\x1b'), "{log:?}");
    assert!(log.contains("forged \\x1b[2K"), "{log}");
}

/// One connection, one `auth` attempt: whether it was accepted.
fn try_auth(port: u16, secret: &str) -> bool {
    let mut c = tcp(port);
    ask(&mut c, &format!("auth {secret}")) == ["OK"]
}

#[test]
fn a_guessing_flood_is_throttled_and_barely_logged() {
    let (d, port) = secret_daemon();
    // 40 wrong guesses then the right secret, as fast as we can: more than
    // the 20 comparisons a second allowed, so the right one is refused
    // unchecked. (A loaded machine may spread a burst over two windows: a
    // few bursts, one refusal is the proof.)
    let mut throttled = false;
    for _ in 0..5 {
        for _ in 0..40 {
            assert!(!try_auth(port, "wrong"));
        }
        if !try_auth(port, "correct-horse") {
            throttled = true;
            break;
        }
    }
    assert!(throttled, "the right secret was always checked");
    // The throttle lifts: within a few seconds the secret works again.
    wait_until(10.0, "auth to be checked again", || {
        try_auth(port, "correct-horse")
    });
    // Hundreds of failures, a handful of log lines.
    let failures = d.log_text().matches("authentication failed").count();
    assert!(
        (1..=5).contains(&failures),
        "{failures} failure lines logged"
    );
}

#[test]
fn a_new_secret_on_reload_asks_tcp_clients_to_authenticate_again() {
    let (d, port) = secret_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = tcp(port);
    assert_eq!(ask(&mut c, "auth correct-horse"), ["OK"]);
    assert!(ask(&mut c, "status a")[0].starts_with("a:0"));
    std::fs::write(d.path("secret"), "battery-staple\n").unwrap();
    assert!(d.cmd("reload").ends_with("OK\n"));
    assert_eq!(ask(&mut c, "status a"), ["ERR authentication required"]);
    assert_eq!(ask(&mut c, "auth battery-staple"), ["OK"]);
    assert!(ask(&mut c, "status a")[0].starts_with("a:0"));
    // An unchanged secret on reload keeps authenticated clients as they are.
    assert!(d.cmd("reload").ends_with("OK\n"));
    assert!(ask(&mut c, "status a")[0].starts_with("a:0"));
}
