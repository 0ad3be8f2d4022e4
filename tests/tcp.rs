//! The TCP control listener (`listen:`): same protocol as the unix socket,
//! CRLF line ends and telnet negotiation tolerated, `quit` closes.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

const PROGS: &str = "  a:\n    cmd: sleep 100\n    starttime: 0\n";

/// A daemon listening on an ephemeral loopback port, and that port.
fn tcp_daemon() -> (Daemon, u16) {
    let d = Daemon::start_with(PROGS, "listen: \"127.0.0.1:0\"\n", &[]);
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

#[test]
fn telnet_negotiation_is_ignored() {
    let (d, port) = tcp_daemon();
    d.wait_state("a:0", "RUNNING", 5.0);
    let mut c = connect(port);
    // IAC DO ECHO, IAC WILL SGA, a subnegotiation, then a command;
    // IAC IP (telnet's Ctrl-C) throws away the half-typed "stop a".
    let mut bytes = vec![255, 253, 1, 255, 251, 3, 255, 250, 24, 0, b'x', 255, 240];
    bytes.extend_from_slice(b"stop a");
    bytes.extend_from_slice(&[255, 244]);
    bytes.extend_from_slice(b"status a\r\n");
    c.get_mut().write_all(&bytes).unwrap();
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
    std::fs::write(&d.conf, text.replace("listen: \"127.0.0.1:0\"\n", "")).unwrap();
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
