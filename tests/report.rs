//! FATAL reports: a real HTTP listener receives one; a closed port or a silent
//! receiver costs nothing but a log line.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The first connection to `listener` within `secs`; panics after that, so a
/// daemon that never reports fails the test instead of hanging it in accept().
fn accept_within(listener: &TcpListener, secs: f64) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "no report connection within {secs}s"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn failing(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    cmd: \"sh -c 'echo \\\"quote\\\"; exit 5'\"\n    startretries: 1\n{extra}"
    )
}

#[test]
fn report_reaches_an_http_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let mut r = BufReader::new(accept_within(&listener, 20.0));
        let mut head = Vec::new();
        let mut len = 0;
        loop {
            let mut l = String::new();
            let n = r.read_line(&mut l).expect("reading the report's head");
            assert!(n > 0, "the report ended inside its head: {head:?}");
            if l == "\r\n" {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push(l.trim_end().to_string());
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("reading the report's body");
        r.get_mut()
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    let d = Daemon::start_with(
        &failing("boom", ""),
        &format!("fatal_state_report_address: \"{addr}\"\n"),
        &[],
    );
    d.wait_state("boom:0", "FATAL", 10.0);
    let (head, body) = server.join().expect("the report listener failed");
    assert_eq!(head[0], "POST / HTTP/1.1");
    assert!(
        head.contains(&"Content-Type: application/json".to_string()),
        "{head:?}"
    );
    assert!(head.contains(&"Connection: close".to_string()), "{head:?}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["event"], "FATAL");
    assert_eq!(v["program"], "boom");
    assert_eq!(v["process"], "boom:0");
    assert_eq!(v["attempts"], 2);
    assert_eq!(v["last_exit"], "exit status 5");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("gave up after 2 attempts"));
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    d.wait_log("boom:0: FATAL report sent to", 5.0);
    assert!(d.log_text().contains("HTTP/1.1 204 No Content"));
}

#[test]
fn closed_port_and_silent_receiver_never_block() {
    // A port with nothing behind it.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    // A receiver that accepts and never answers (kept open by the backlog).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let progs = [
        failing(
            "refused",
            &format!("    fatal_state_report_address: \"{closed}\"\n"),
        ),
        failing(
            "ignored",
            &format!("    fatal_state_report_address: \"{silent_addr}\"\n"),
        ),
        "  s:\n    cmd: sleep 100\n    starttime: 0\n".to_string(),
    ]
    .concat();
    let d = Daemon::start(&progs);
    d.wait_state("refused:0", "FATAL", 10.0);
    d.wait_state("ignored:0", "FATAL", 10.0);
    d.wait_log(&format!("refused:0: FATAL report to {closed} failed"), 5.0);
    // While the silent one waits for its response timeout, the daemon serves.
    for _ in 0..10 {
        assert!(d.cmd("status s").starts_with("s:0  RUNNING"));
    }
    d.wait_log(
        &format!("ignored:0: FATAL report to {silent_addr} failed: no response within"),
        10.0,
    );
    drop(silent);
}
