//! syslog: a real datagram socket receives the event log as RFC 5424 lines;
//! a missing socket is said once and never stops the daemon.
mod common;
use common::*;
use std::os::unix::net::UnixDatagram;

/// Receives datagrams until one contains `needle`; every one is returned.
fn recv_until(sock: &UnixDatagram, needle: &str) -> Vec<String> {
    sock.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while !got.iter().any(|l: &String| l.contains(needle)) {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no syslog line with {needle:?} ({e}); got {got:#?}"));
        got.push(String::from_utf8(buf[..n].to_vec()).expect("UTF-8"));
    }
    got
}

/// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG` (RFC 5424 §6),
/// checked field by field; returns (severity, MSG).
fn parse_5424(line: &str, pid: u32) -> (u8, String) {
    let rest = line.strip_prefix('<').expect("<PRI>");
    let (pri, rest) = rest.split_once('>').expect("<PRI>");
    assert!((1..=3).contains(&pri.len()) && pri.bytes().all(|b| b.is_ascii_digit()));
    assert!(
        pri == "0" || !pri.starts_with('0'),
        "PRI without leading zeros: {line}"
    );
    let pri: u8 = pri.parse().unwrap();
    assert_eq!(pri / 8, 3, "facility daemon: {line}");
    let mut f = rest.splitn(7, ' ');
    let mut next = || f.next().unwrap_or_else(|| panic!("missing field: {line}"));
    assert_eq!(next(), "1", "VERSION");
    let ts = next();
    // FULL-DATE "T" PARTIAL-TIME ("." fraction) "Z".
    let b = ts.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    assert!(
        b.len() >= 20
            && digits(0..4)
            && b[4] == b'-'
            && digits(5..7)
            && b[7] == b'-'
            && digits(8..10)
            && b[10] == b'T'
            && digits(11..13)
            && b[13] == b':'
            && digits(14..16)
            && b[16] == b':'
            && digits(17..19)
            && ts.ends_with('Z'),
        "TIMESTAMP {ts:?}"
    );
    if b.len() > 20 {
        assert!(
            b[19] == b'.' && digits(20..b.len() - 1) && b.len() - 21 <= 6,
            "{ts}"
        );
    }
    let printable = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|c| (33..=126).contains(&c))
    };
    let host = next();
    assert!(printable(host, 255), "HOSTNAME {host:?}");
    assert_eq!(next(), "taskmasterd", "APP-NAME");
    assert_eq!(next(), pid.to_string(), "PROCID");
    assert_eq!(next(), "-", "MSGID");
    let sd_msg = next();
    let msg = sd_msg
        .strip_prefix("- ")
        .expect("STRUCTURED-DATA `-`, then MSG");
    (pri % 8, msg.to_string())
}

#[test]
fn event_log_lines_arrive_as_rfc5424() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let server = UnixDatagram::bind(&path).unwrap();
    let progs = "  ok:\n    cmd: sleep 100\n    starttime: 0\n\
                 \x20 boom:\n    cmd: \"sh -c 'exit 5'\"\n    startretries: 0\n";
    let d = Daemon::start_with(progs, &format!("syslog: {}\n", path.display()), &[]);
    let pid = d.child.as_ref().unwrap().id();
    let lines = recv_until(&server, "boom:0: STARTING -> FATAL");
    assert!(
        lines.iter().any(|l| l.contains("taskmasterd started")),
        "{lines:#?}"
    );
    let mut severities = Vec::new();
    for l in &lines {
        let (sev, msg) = parse_5424(l, pid);
        assert!(!msg.ends_with('\n'), "one line per message: {l:?}");
        severities.push((sev, msg));
    }
    let fatal = severities
        .iter()
        .find(|(_, m)| m.contains("-> FATAL"))
        .unwrap();
    assert_eq!(fatal.0, 3, "error severity for FATAL");
    let spawned = severities
        .iter()
        .find(|(_, m)| m.contains("ok:0: spawned"))
        .unwrap();
    assert_eq!(spawned.0, 6, "info severity");
    // The event log has the same lines (written when the daemon's turn
    // ends, so possibly just after the datagram was sent).
    d.wait_log(&fatal.1, 10.0);
}

#[test]
fn a_missing_socket_is_said_once_and_reopen_connects() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let d = Daemon::start_with(
        "  ok:\n    cmd: sleep 100\n    starttime: 0\n",
        &format!("syslog: {}\n", path.display()),
        &[],
    );
    d.wait_state("ok:0", "RUNNING", 10.0);
    for _ in 0..20 {
        d.cmd("restart ok");
    }
    d.wait_log("ok:0: spawned", 5.0);
    assert_eq!(
        d.log_text().matches("syslog: cannot connect").count(),
        1,
        "said once: {}",
        d.log_text()
    );
    // A syslog daemon appears; `reopen` connects to it.
    let server = UnixDatagram::bind(&path).unwrap();
    assert!(d.cmd("reopen").ends_with("OK\n"));
    d.cmd("restart ok");
    recv_until(&server, "ok:0: spawned");
    d.wait_log("works again", 10.0);
    // A full socket (nobody reads) never stalls the daemon, and is said once.
    for _ in 0..300 {
        d.cmd("restart ok");
    }
    assert!(d.cmd("status ok").contains("RUNNING"));
    wait_until(10.0, "the full socket to be logged", || {
        d.log_text().contains("is full")
    });
    assert_eq!(d.log_text().matches("is full").count(), 1);
    drop(server);
}
