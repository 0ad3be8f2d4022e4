//! The TCP control listener (`listen:`): same protocol as the unix socket,
//! CRLF line ends and telnet negotiation tolerated, `quit` closes.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const PROGS: &str = "  a:\n    cmd: sleep 100\n    starttime: 0\n";

/// A daemon listening on an ephemeral loopback port, and that port.
fn tcp_daemon() -> (Daemon, u16) {
    let d = Daemon::start_with(PROGS, "listen: \"127.0.0.1:0\"\nlisten_open: true\n", &[]);
    d.wait_log("TCP control listener on 127.0.0.1:", 5.0);
    let log = d.log_text();
    let port = log
        .split("TCP control listener on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the bound port in the log");
    (d, port)
}

fn connect(port: u16) -> BufReader<TcpStream> {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

/// Lines up to the final OK/ERR, each checked to end in CRLF.
fn reply(r: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "closed after {lines:?}");
        assert!(l.ends_with("\r\n"), "not CRLF: {l:?}");
        let l = l.trim_end().to_string();
        let last = l == "OK" || l.starts_with("ERR");
        lines.push(l);
        if last {
            return lines;
        }
    }
}

#[test]
fn same_protocol_with_crlf() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    c.get_mut().write_all(b"status\r\n").unwrap();
    let lines = reply(&mut c);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(cols[..3], ["a:0", "RUNNING", "pid"], "{lines:?}");
    assert_eq!(lines[1], "OK");
    // Pipelined, deferred and erroneous commands keep their order.
    c.get_mut()
        .write_all(b"stop a\r\nstatus a\r\nstart zzz\r\n\r\nhelp stop\r\n")
        .unwrap();
    assert_eq!(reply(&mut c), ["a:0: stopped", "OK"]);
    assert!(reply(&mut c)[0].starts_with("a:0  STOPPED"));
    assert_eq!(reply(&mut c), ["ERR unknown name: zzz"]);
    let help = reply(&mut c);
    assert_eq!(help[0], "usage: stop NAMES");
    assert_eq!(help.last().map(String::as_str), Some("OK"));
}

const IAC: u8 = 255;
const WILL: u8 = 251;
const WONT: u8 = 252;
const DO: u8 = 253;
const DONT: u8 = 254;
const IP: u8 = 244;
const ECHO: u8 = 1;
const SGA: u8 = 3;
const TIMING_MARK: u8 = 6;

/// Raw bytes until `want` has arrived (each read has the socket's timeout,
/// the whole wait a deadline); what came, up to and including `want`.
fn read_until(r: &mut BufReader<TcpStream>, want: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while !got.ends_with(want) {
        assert!(Instant::now() < deadline, "no {want:?}, got {got:?}");
        // One byte at a time: nothing after `want` is consumed, so the
        // line reader can take over.
        let mut b = [0u8];
        match r.read(&mut b) {
            Ok(0) => panic!("closed, got {got:?}"),
            Ok(_) => got.push(b[0]),
            Err(e) => panic!("{e}, got {got:?}"),
        }
    }
    got
}

#[test]
fn telnet_negotiation_is_refused_and_filtered_out() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    // IAC DO ECHO, IAC WILL SGA, a subnegotiation, then a command;
    // IAC IP (telnet's Ctrl-C) throws away the half-typed "stop a".
    let mut bytes = vec![
        IAC, DO, ECHO, IAC, WILL, SGA, IAC, 250, 24, 0, b'x', IAC, 240,
    ];
    bytes.extend_from_slice(b"stop a");
    bytes.extend_from_slice(&[IAC, IP]);
    bytes.extend_from_slice(b"status a\r\n");
    c.get_mut().write_all(&bytes).unwrap();
    // Both options refused, before the reply (sent as soon as read).
    let refusals = [IAC, WONT, ECHO, IAC, DONT, SGA];
    assert_eq!(read_until(&mut c, &refusals), refusals);
    let lines = reply(&mut c);
    assert!(lines[0].starts_with("a:0  RUNNING"), "{lines:?}");
    // Any other invalid UTF-8 is still an ERR, and the connection goes on.
    c.get_mut()
        .write_all(b"st\xc3atus\r\nhelp quit\r\n")
        .unwrap();
    assert_eq!(reply(&mut c), ["ERR invalid UTF-8"]);
    assert_eq!(reply(&mut c)[0], "usage: quit");
}

#[test]
fn ctrl_c_gets_a_timing_mark_and_the_session_goes_on() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    // A half-typed command, then what telnet sends on Ctrl-C: it discards
    // all output until IAC WILL TIMING-MARK comes back.
    c.get_mut().write_all(b"sta").unwrap();
    c.get_mut()
        .write_all(&[IAC, IP, IAC, DO, TIMING_MARK])
        .unwrap();
    let mark = [IAC, WILL, TIMING_MARK];
    assert_eq!(read_until(&mut c, &mark), mark);
    c.get_mut().write_all(b"status\r\n").unwrap();
    let lines = reply(&mut c);
    assert!(lines[0].starts_with("a:0  RUNNING"), "{lines:?}");
    assert_eq!(lines.last().map(String::as_str), Some("OK"));
    // A mark, not a state: the next Ctrl-C is answered too.
    c.get_mut()
        .write_all(&[IAC, IP, IAC, DO, TIMING_MARK])
        .unwrap();
    assert_eq!(read_until(&mut c, &mark), mark);
}

#[test]
fn an_option_is_refused_once_per_connection() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    let ask = |c: &mut BufReader<TcpStream>| {
        let mut bytes = vec![IAC, DO, ECHO];
        bytes.extend_from_slice(b"help quit\r\n");
        c.get_mut().write_all(&bytes).unwrap();
    };
    ask(&mut c);
    let refusal = [IAC, WONT, ECHO];
    assert_eq!(read_until(&mut c, &refusal), refusal);
    assert_eq!(reply(&mut c).last().map(String::as_str), Some("OK"));
    // Asked again (a later read): no second answer, only the reply.
    ask(&mut c);
    let raw = read_until(&mut c, b"\r\nOK\r\n");
    assert!(raw.starts_with(b"usage: quit\r\n"), "{raw:?}");
    assert!(!raw.contains(&IAC), "{raw:?}");
    // A WONT or DONT is never answered: the next thing to come is the reply.
    let mut bytes = vec![IAC, WONT, ECHO, IAC, DONT, ECHO];
    bytes.extend_from_slice(b"help quit\r\n");
    c.get_mut().write_all(&bytes).unwrap();
    let raw = read_until(&mut c, b"\r\nOK\r\n");
    assert!(raw.starts_with(b"usage: quit\r\n"), "{raw:?}");
}

#[test]
fn quit_closes_only_that_connection() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    // Whatever follows quit is not executed.
    c.get_mut().write_all(b"quit\r\nstop a\r\n").unwrap();
    assert_eq!(reply(&mut c), ["OK"]);
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(d.state("a:0"), "RUNNING");
    // quit on the unix socket too; the daemon keeps serving.
    let mut u = UnixStream::connect(&d.sock).unwrap();
    u.write_all(b"quit\n").unwrap();
    assert_eq!(read_all(&mut u), "OK\n");
    let mut c2 = connect(port);
    c2.get_mut().write_all(b"status a\n").unwrap();
    assert!(reply(&mut c2)[0].starts_with("a:0  RUNNING"));
}

#[test]
fn listener_follows_reload_and_refuses_non_loopback() {
    let (d, port) = tcp_daemon();
    // Turning listen off by reload closes the listener.
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        text.replace("listen: \"127.0.0.1:0\"\nlisten_open: true\n", ""),
    )
    .unwrap();
    assert_eq!(d.cmd("reload"), "rebound listen off\nOK\n");
    wait_until(5.0, "the TCP port to close", || {
        TcpStream::connect(("127.0.0.1", port)).is_err()
    });
    // A non-loopback address is a config error: the reload changes nothing.
    std::fs::write(&d.conf, text.replace("127.0.0.1:0", "0.0.0.0:0")).unwrap();
    let reply = d.cmd("reload");
    assert!(
        reply.contains("listen") && reply.contains("loopback"),
        "{reply}"
    );
    assert!(reply.ends_with("ERR invalid configuration, nothing changed\n"));
}
