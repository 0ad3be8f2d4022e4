//! `metrics` and `metrics_listen`: the Prometheus text format checked line by
//! line against its grammar, counters that survive what `status` resets,
//! memory and CPU of whole process groups, and the HTTP endpoint under
//! hostile peers.
mod common;
#[path = "common/exposition.rs"]
mod exposition;
use common::*;
use exposition::{parse_exposition, Sample};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The checker itself must be able to fail, or the tests below prove nothing.
#[test]
fn the_grammar_checker_rejects_what_it_should() {
    let head = "# HELP a_total x\n# TYPE a_total counter\n";
    let ok = format!("{head}a_total{{x=\"q\\\"\\\\\\nz\",y=\"\"}} 1 1700000000000\n");
    let s = parse_exposition(&ok).unwrap();
    assert_eq!(s[0].label("x"), Some("q\"\\\nz"));
    assert_eq!(s[0].label("y"), Some(""));
    for bad in [
        "a_total 1\n".to_string(),                 // no HELP/TYPE
        format!("{head}a_total{{x=\"\\q\"}} 1\n"), // bad escape
        format!("{head}a_total{{x=\"v}} 1\n"),     // unterminated
        format!("{head}a_total{{0x=\"v\"}} 1\n"),  // bad label name
        format!("{head}a_total{{x=\"v\"}}1\n"),    // no space
        format!("{head}a_total one\n"),            // bad value
        format!("{head}a_total -1\n"),             // negative counter
        format!("{head}a_total 1\na_total 2\n"),   // duplicate
        format!("{head}a_total 1"),                // no final newline
        format!("{head}9a 1\n"),                   // bad name
        format!("{head}a_total 1\n# TYPE b gauge\n# HELP b y\nb 1\na_total{{x=\"1\"}} 1\n"),
        format!("{head}# TYPE a_total gauge\na_total 1\n"), // second TYPE
    ] {
        assert!(parse_exposition(&bad).is_err(), "accepted {bad:?}");
    }
}

/// The body of `metrics` (final OK checked and removed, lines unstuffed).
fn metrics(d: &Daemon) -> String {
    let reply = d.cmd("metrics");
    let body = reply
        .strip_suffix("OK\n")
        .unwrap_or_else(|| panic!("metrics failed: {reply}"));
    body.lines()
        .map(|l| format!("{}\n", l.strip_prefix('.').unwrap_or(l)))
        .collect()
}

fn samples(d: &Daemon) -> Vec<Sample> {
    let text = metrics(d);
    parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The value of `name` for process `process` (`None`: no such sample).
fn value_of(s: &[Sample], name: &str, process: &str) -> Option<f64> {
    s.iter()
        .find(|x| x.name == name && x.label("process") == Some(process))
        .map(|x| x.value)
}

const PROCESS_FAMILIES: [&str; 6] = [
    "taskmaster_process_up",
    "taskmaster_process_state",
    "taskmaster_process_restarts_total",
    "taskmaster_process_start_time_seconds",
    "taskmaster_process_resident_memory_bytes",
    "taskmaster_process_cpu_seconds_total",
];

#[test]
fn every_line_follows_the_exposition_grammar() {
    let d = Daemon::start(
        "  web:\n    cmd: sleep 1000\n    numprocs: 2\n    starttime: 0\n\
         \x20 idle.x-1:\n    cmd: sleep 1000\n    autostart: false\n",
    );
    d.wait_state("web:1", "RUNNING", 10.0);
    let text = metrics(&d);
    let s = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for f in PROCESS_FAMILIES {
        assert!(text.contains(&format!("# HELP {f} ")), "{f}");
        assert!(text.contains(&format!("# TYPE {f} ")), "{f}");
    }
    for p in ["web:0", "web:1"] {
        assert_eq!(value_of(&s, "taskmaster_process_up", p), Some(1.0));
        assert_eq!(
            value_of(&s, "taskmaster_process_restarts_total", p),
            Some(0.0)
        );
        let start = value_of(&s, "taskmaster_process_start_time_seconds", p).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 120.0,
            "{start} vs {now}"
        );
        assert!(value_of(&s, "taskmaster_process_resident_memory_bytes", p).unwrap() > 0.0);
        assert!(value_of(&s, "taskmaster_process_cpu_seconds_total", p).is_some());
    }
    // One state sample per state, exactly one of them 1.
    let states: Vec<&Sample> = s
        .iter()
        .filter(|x| x.name == "taskmaster_process_state" && x.label("process") == Some("web:0"))
        .collect();
    assert_eq!(states.len(), 9);
    let on: Vec<_> = states.iter().filter(|x| x.value == 1.0).collect();
    assert_eq!(on.len(), 1);
    assert_eq!(on[0].label("state"), Some("RUNNING"));
    assert_eq!(on[0].label("program"), Some("web"));
    // A process that is not alive has no memory, CPU or start time samples.
    let idle = "idle.x-1:0";
    assert_eq!(value_of(&s, "taskmaster_process_up", idle), Some(0.0));
    assert_eq!(
        value_of(&s, "taskmaster_process_resident_memory_bytes", idle),
        None
    );
    assert_eq!(
        value_of(&s, "taskmaster_process_start_time_seconds", idle),
        None
    );
    // Daemon-wide figures.
    let daemon = |n: &str| s.iter().find(|x| x.name == n).map(|x| x.value);
    assert!(daemon("taskmaster_daemon_resident_memory_bytes").unwrap() > 0.0);
    assert!(daemon("taskmaster_daemon_open_fds").unwrap() >= 3.0);
    let events: Vec<&Sample> = s
        .iter()
        .filter(|x| x.name == "taskmaster_events_total")
        .collect();
    assert_eq!(events.len(), 10, "nine states and UNHEALTHY");
    let running = events.iter().find(|e| e.label("event") == Some("RUNNING"));
    assert_eq!(running.map(|e| e.value), Some(2.0));
    // `help` lists it; an argument is refused.
    assert!(d.cmd("help").contains("metrics"));
    assert!(d.cmd("metrics web").starts_with("ERR"));
}

#[test]
fn restarts_total_grows_after_kill_9_and_survives_a_user_restart() {
    let d = Daemon::start("  a:\n    cmd: sleep 1000\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 10.0);
    let total = |d: &Daemon| value_of(&samples(d), "taskmaster_process_restarts_total", "a:0");
    assert_eq!(total(&d), Some(0.0));
    for round in 1..=2 {
        let pid = d.pid("a:0").expect("a pid");
        unsafe { libc::kill(pid, libc::SIGKILL) };
        wait_until(20.0, "an automatic restart", || {
            d.pid("a:0").is_some_and(|p| p != pid) && d.state("a:0") == "RUNNING"
        });
        assert_eq!(total(&d), Some(f64::from(round)));
    }
    assert_eq!(d.proc("a:0")["restarts"], 2);
    // A user restart resets status's count, never the counter.
    assert!(d.cmd("restart a").ends_with("OK\n"));
    assert_eq!(d.proc("a:0")["restarts"], 0);
    let s = samples(&d);
    assert_eq!(
        value_of(&s, "taskmaster_process_restarts_total", "a:0"),
        Some(2.0)
    );
    let ev = |e: &str| {
        s.iter()
            .find(|x| x.name == "taskmaster_events_total" && x.label("event") == Some(e))
            .map(|x| x.value)
    };
    // States entered: each run reached RUNNING once; only the user restart
    // stopped it. (A crash restarted at once goes RUNNING -> STARTING: the
    // restart counter, not EXITED_UNEXPECTEDLY, counts it.)
    assert_eq!(ev("RUNNING"), Some(4.0));
    assert_eq!(ev("STOPPING"), Some(1.0));
    assert_eq!(ev("FATAL"), Some(0.0));
}

/// utime + stime + cutime + cstime of one process, in seconds.
fn own_cpu(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<u64> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(11)
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    f.iter().sum::<u64>() as f64 / hz
}

#[test]
fn memory_and_cpu_count_the_whole_process_group() {
    // The leader only waits; its child (same group) burns CPU.
    let d = Daemon::start(
        "  w:\n    cmd: sh -c \"while :; do :; done & wait\"\n    starttime: 0\n\
         \x20 off:\n    cmd: sleep 1\n    autostart: false\n",
    );
    d.wait_state("w:0", "RUNNING", 10.0);
    let leader = d.pid("w:0").unwrap();
    wait_until(30.0, "the group to use CPU", || {
        d.proc("w:0")["cpu_s"].as_f64().unwrap_or(0.0) >= 0.3
    });
    let p = d.proc("w:0");
    let cpu = p["cpu_s"].as_f64().unwrap();
    assert!(own_cpu(leader) < 0.1, "the leader itself only waits");
    assert!(cpu > own_cpu(leader) + 0.2, "{p}");
    // Two shells: the group's memory is more than the leader's.
    let rss = p["rss_kb"].as_u64().unwrap();
    let leader_rss = rss_kib(leader as u32);
    assert!(rss > leader_rss && leader_rss > 0, "{rss} vs {leader_rss}");
    // The same figures in metrics.
    let s = samples(&d);
    let m_cpu = value_of(&s, "taskmaster_process_cpu_seconds_total", "w:0").unwrap();
    assert!(m_cpu >= cpu, "a counter: {m_cpu} < {cpu}");
    let m_rss = value_of(&s, "taskmaster_process_resident_memory_bytes", "w:0").unwrap();
    assert!(m_rss > (leader_rss * 1024) as f64);
    // Not alive: null, and the keys are there.
    let off = d.proc("off:0");
    assert!(off["rss_kb"].is_null() && off["cpu_s"].is_null(), "{off}");
    // The human status has no such figures.
    let human = d.cmd("status w");
    assert!(!human.contains("cpu") && !human.contains("rss"), "{human}");
}

fn tcp(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Everything the server sends until it closes; panics on a read timeout.
fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&out).into_owned(),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!(
                    "no end within the timeout: {:?}",
                    String::from_utf8_lossy(&out)
                )
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&out).into_owned()
            }
            Err(e) => panic!("read: {e}"),
        }
    }
}

fn http(port: u16, request: &[u8]) -> String {
    let mut s = tcp(port);
    s.write_all(request).unwrap();
    read_to_close(&mut s)
}

const HTTP_DAEMON: &str = "metrics_listen: \"127.0.0.1:0\"\n";

#[test]
fn get_metrics_over_http() {
    let d = Daemon::start_with(
        "  a:\n    cmd: sleep 1000\n    starttime: 0\n",
        HTTP_DAEMON,
        &[],
    );
    d.wait_state("a:0", "RUNNING", 10.0);
    let port = metrics_port(&d);
    let r = http(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n",
    );
    let (head, body) = r.split_once("\r\n\r\n").expect("a head");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{r}");
    let headers: Vec<&str> = lines.collect();
    assert!(
        headers.contains(&"Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(headers.contains(&"Connection: close"), "{head}");
    let s = parse_exposition(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    assert_eq!(value_of(&s, "taskmaster_process_up", "a:0"), Some(1.0));
    assert!(!body.contains("\nOK\n"), "no protocol final line over HTTP");
    // HEAD: the head alone.
    let r = http(port, b"HEAD /metrics HTTP/1.0\r\n\r\n");
    assert!(
        r.starts_with("HTTP/1.1 200 OK\r\n") && r.ends_with("\r\n\r\n"),
        "{r}"
    );
    // Other paths, methods, and garbage.
    let status = |req: &[u8]| http(port, req).lines().next().unwrap_or("").to_string();
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        status(b"\x16\x03\x01\x02\x00\x01\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(status(b"status\n"), "HTTP/1.1 400 Bad Request");
    assert_eq!(
        status(b"GET /metrics HTTP/1.1\r\nbroken\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    // A head past 8 KiB, with or without line ends.
    let mut big = b"GET /metrics HTTP/1.1\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    assert_eq!(status(&big), "HTTP/1.1 431 Request Header Fields Too Large");
    let mut many = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..2000 {
        many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
    }
    assert_eq!(
        status(&many),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    // The control socket still answers, and the daemon logged no crash.
    assert!(d.cmd("status").ends_with("OK\n"));
}

#[test]
fn slow_and_silent_peers_never_stall_a_scrape() {
    let d = Daemon::start_with(
        "  a:\n    cmd: sleep 1000\n    starttime: 0\n    numprocs: 50\n",
        HTTP_DAEMON,
        &[],
    );
    d.wait_state("a:49", "RUNNING", 20.0);
    let port = metrics_port(&d);
    // A slowloris that never ends its head, and peers that ask and never read.
    let mut slow = tcp(port);
    slow.write_all(b"GET /metrics HTTP/1.1\r\nX-a: b\r\n")
        .unwrap();
    let deaf: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut s = tcp(port);
            s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
            s
        })
        .collect();
    // And a flood of connections that send nothing at all.
    let idle: Vec<TcpStream> = (0..100).map(|_| tcp(port)).collect();
    let t0 = Instant::now();
    let r = http(port, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
    let body = r.split_once("\r\n\r\n").unwrap().1;
    let s = parse_exposition(body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value_of(&s, "taskmaster_process_up", "a:49"), Some(1.0));
    assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
    assert!(d.cmd("metrics").ends_with("OK\n"));
    // The slowloris is told and closed once its time is up (10 s).
    let t0 = Instant::now();
    let got = read_to_close(&mut slow);
    assert!(got.starts_with("HTTP/1.1 408 Request Timeout"), "{got:?}");
    assert!(t0.elapsed() < IO_TIMEOUT, "{:?}", t0.elapsed());
    drop((deaf, idle));
}

#[test]
fn metrics_listen_is_bound_on_reload() {
    let d = Daemon::start("  a:\n    cmd: sleep 1000\n    starttime: 0\n");
    assert!(!d.log_text().contains("metrics listener"));
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, format!("{HTTP_DAEMON}{text}")).unwrap();
    let r = d.cmd("reload");
    assert!(r.contains("rebound metrics_listen 127.0.0.1:0"), "{r}");
    let port = metrics_port(&d);
    let r = http(port, b"GET /metrics HTTP/1.1\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 200 OK"), "{r}");
    // A non-loopback address is refused, and nothing changes.
    std::fs::write(&d.conf, format!("metrics_listen: \"0.0.0.0:0\"\n{text}")).unwrap();
    let r = d.cmd("reload");
    assert!(
        r.contains("metrics_listen") && r.contains("loopback"),
        "{r}"
    );
    assert!(r.ends_with("nothing changed\n"), "{r}");
    assert!(http(port, b"GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
}

/// The client table is shared: when it is full, unauthenticated peers of
/// the secret-protected TCP control port go first. A metrics client needs no
/// secret and must not be taken for one of them (a flood of unauthenticated
/// connects would otherwise close every scrape first).
#[test]
fn a_scrape_is_not_shed_as_an_unauthenticated_control_peer() {
    let secret = tempfile::tempdir().unwrap();
    let file = secret.path().join("secret");
    std::fs::write(&file, "s3cret\n").unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let extra = format!(
        "listen: 127.0.0.1:0\nlisten_secret_file: {}\nmetrics_listen: \"127.0.0.1:0\"\nminfds: 50\n",
        file.display()
    );
    let mut d = Daemon::configure("  a:\n    cmd: sleep 1000\n", &extra);
    // 100 fds: a client table of about 30.
    launch_limited(&mut d, 100, 100);
    let port = metrics_port(&d);
    let mark = "TCP control listener on 127.0.0.1:";
    d.wait_log(mark, 10.0);
    let log = d.log_text();
    let control: u16 = log
        .rsplit(mark)
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the control port");
    let mut scrape = TcpStream::connect(("127.0.0.1", port)).unwrap();
    scrape.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    scrape.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
    // A whole request on the same listener: once answered, the scrape
    // before it was admitted too.
    let mut other = TcpStream::connect(("127.0.0.1", port)).unwrap();
    other.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    other.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_all(other).starts_with("HTTP/1.1 200 OK"));
    // Twice the table of unauthenticated control peers.
    let mut flood = Vec::new();
    for _ in 0..60 {
        let s = TcpStream::connect(("127.0.0.1", control)).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        flood.push(s);
    }
    // The last one is served: every one before it was admitted (or shed).
    let last = flood.last_mut().unwrap();
    last.write_all(b"status\n").unwrap();
    let mut got = [0u8; 64];
    let n = last.read(&mut got).unwrap();
    assert!(
        got[..n].starts_with(b"ERR authentication required"),
        "{:?}",
        &got[..n]
    );
    scrape.write_all(b"\r\n").unwrap();
    let reply = read_all(scrape);
    assert!(
        reply.starts_with("HTTP/1.1 200 OK"),
        "the scrape was closed: {reply:?}"
    );
    assert!(reply.contains("taskmaster_process_up{program=\"a\",process=\"a:0\"}"));
}

/// A scrape longer than the socket buffers is written over many turns; a
/// reload meanwhile reorders the table (programs are listed by name). No
/// process may be listed twice in a family: Prometheus rejects such a
/// scrape whole.
#[test]
fn a_reload_during_a_long_scrape_never_lists_a_process_twice() {
    let progs = "  p:\n    cmd: sleep 1000\n    numprocs: 1000\n    autostart: false\n";
    let d = Daemon::start(progs);
    let mut s = d.connect();
    s.write_all(b"metrics\n").unwrap();
    // Well into the per-state family (about 800 KB for 1000 processes),
    // then stop reading: the daemon stalls there, at most a few hundred KB on.
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    while got.len() < 100_000 {
        let n = s.read(&mut buf).expect("metrics reply");
        assert!(n > 0, "the reply ended early");
        got.extend_from_slice(&buf[..n]);
    }
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let added = "  a:\n    cmd: sleep 1000\n    numprocs: 3\n    autostart: false\n";
    std::fs::write(&d.conf, format!("{conf}{added}")).unwrap();
    assert!(d.cmd("reload").contains("added a"));
    got.extend_from_slice(read_all_until_ok(&mut s).as_bytes());
    let text = String::from_utf8(got).unwrap();
    let body = text.strip_suffix("OK\n").expect("final OK");
    parse_exposition(body).unwrap_or_else(|e| panic!("{e}"));
}

/// Reads `s` until the text read ends with a final `OK` line.
fn read_all_until_ok(s: &mut std::os::unix::net::UnixStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while !out.ends_with(b"\nOK\n") {
        let n = s.read(&mut buf).expect("the rest of the reply");
        assert!(n > 0, "the reply ended without OK");
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(out).unwrap()
}
