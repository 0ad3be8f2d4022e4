//! `ready:` probes against real things: a listener, an HTTP server in the
//! test, a command, a file, a datagram sent to the process's NOTIFY_SOCKET.
mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Waits until `name` has been STARTING for over a second: its probe had
/// several chances to pass (interval 0.1 s) and must not have.
fn still_starting_after_a_while(d: &Daemon, name: &str) {
    wait_until(20.0, "a second alive", || {
        d.proc(name)["uptime_s"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(d.state(name), "STARTING", "{}", d.proc(name));
}

/// A port nothing listens on (bound then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_ready_once_the_port_listens() {
    let port = free_port();
    let d = Daemon::start(&format!(
        "  db:\n    cmd: sleep 100\n    starttime: 60\n    ready: {{tcp: \"127.0.0.1:{port}\", interval: 0.1}}\n"
    ));
    still_starting_after_a_while(&d, "db:0");
    let _listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    d.wait_state("db:0", "RUNNING", 20.0);
    d.wait_log("db:0: ready", 5.0);
}

/// A tiny HTTP server: answers each request with 503 until `up`, then 200;
/// records the request lines. Stops by itself after 60 s.
fn http_server(up: Arc<AtomicBool>) -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&req).into_owned();
            let _ = tx.send(text.lines().next().unwrap_or("").to_string());
            let answer: &[u8] = if up.load(Ordering::SeqCst) {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            } else {
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
            };
            let _ = s.write_all(answer);
        }
    });
    (port, rx)
}

#[test]
fn http_ready_on_a_2xx_only() {
    let up = Arc::new(AtomicBool::new(false));
    let (port, requests) = http_server(up.clone());
    let d = Daemon::start(&format!(
        "  api:\n    cmd: sleep 100\n    starttime: 60\n    ready: {{http: \"http://127.0.0.1:{port}/health\", interval: 0.1}}\n"
    ));
    let first = requests
        .recv_timeout(Duration::from_secs(20))
        .expect("a probe request");
    assert_eq!(first, "GET /health HTTP/1.1");
    still_starting_after_a_while(&d, "api:0");
    up.store(true, Ordering::SeqCst);
    d.wait_state("api:0", "RUNNING", 20.0);
}

#[test]
fn command_and_file_ready() {
    let d = Daemon::configure("", "");
    let flag = d.path("flag");
    let file = d.path("ready-file");
    std::fs::write(
        &d.conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  c:\n    cmd: sleep 100\n    starttime: 60\n    ready: {{command: \"test -e {}\", interval: 0.1}}\n  f:\n    cmd: sleep 100\n    starttime: 60\n    ready: {{file: {}, interval: 0.1}}\n",
            d.sock.display(),
            d.log.display(),
            flag.display(),
            file.display()
        ),
    )
    .unwrap();
    let d = d.launch(&[]);
    still_starting_after_a_while(&d, "c:0");
    assert_eq!(d.state("f:0"), "STARTING");
    std::fs::write(&flag, "").unwrap();
    d.wait_state("c:0", "RUNNING", 20.0);
    assert_eq!(d.state("f:0"), "STARTING", "its file is not there yet");
    std::fs::write(&file, "").unwrap();
    d.wait_state("f:0", "RUNNING", 20.0);
}

/// The child writes its NOTIFY_SOCKET to a file; the test sends READY=1.
fn notify_daemon() -> (Daemon, std::path::PathBuf) {
    let d = Daemon::configure("", "");
    let out = d.path("notify-path");
    std::fs::write(
        &d.conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  n:\n    cmd: sh -c 'echo \"$NOTIFY_SOCKET\" > {}; exec sleep 100'\n    starttime: 60\n    ready: {{notify: true}}\n",
            d.sock.display(),
            d.log.display(),
            out.display()
        ),
    )
    .unwrap();
    let d = d.launch(&[]);
    let mut path = String::new();
    wait_until(20.0, "the child to write its NOTIFY_SOCKET", || {
        path = std::fs::read_to_string(&out).unwrap_or_default();
        path.ends_with('\n')
    });
    (d, path.trim().into())
}

#[test]
fn notify_ready_on_ready_1_from_a_private_socket() {
    let (d, path) = notify_daemon();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "only the daemon's user may send");
    let tx = UnixDatagram::unbound().unwrap();
    tx.send_to(b"STATUS=warming up\nREADY=0", &path).unwrap();
    still_starting_after_a_while(&d, "n:0");
    tx.send_to(b"STATUS=up\nREADY=1\n", &path).unwrap();
    d.wait_state("n:0", "RUNNING", 20.0);
    // No probe once RUNNING: the socket is gone, a late send is refused.
    wait_until(10.0, "the notify socket to go", || !path.exists());
    assert!(tx.send_to(b"READY=1", &path).is_err());
}

#[test]
fn a_notify_flood_does_not_stall_status() {
    let (d, path) = notify_daemon();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU16::new(0));
    let flood = {
        let (stop, sent, path) = (stop.clone(), sent.clone(), path.clone());
        std::thread::spawn(move || {
            let tx = UnixDatagram::unbound().unwrap();
            tx.set_nonblocking(true).unwrap();
            let end = Instant::now() + Duration::from_secs(30);
            let junk = vec![b'x'; 4000];
            while !stop.load(Ordering::SeqCst) && Instant::now() < end {
                match tx.send_to(&junk, &path) {
                    Ok(_) => {
                        let n = sent.load(Ordering::SeqCst);
                        sent.store(n.saturating_add(1), Ordering::SeqCst);
                    }
                    Err(_) => std::thread::yield_now(),
                }
            }
        })
    };
    wait_until(20.0, "the flood to start", || {
        sent.load(Ordering::SeqCst) > 100
    });
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(d.state("n:0"), "STARTING");
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "status took {:?} during the flood",
            t.elapsed()
        );
    }
    let tx = UnixDatagram::unbound().unwrap();
    tx.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    // The queue is full of junk: READY=1 gets in as the daemon drains it.
    tx.send_to(b"READY=1", &path).unwrap();
    d.wait_state("n:0", "RUNNING", 20.0);
    stop.store(true, Ordering::SeqCst);
    flood.join().unwrap();
}

#[test]
fn never_ready_backs_off_then_fatal_with_the_reason() {
    let d = Daemon::configure("", "");
    let never = d.path("never");
    std::fs::write(
        &d.conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  w:\n    cmd: sleep 100\n    starttime: 0.5\n    startretries: 1\n    stoptime: 2\n    ready: {{file: {}, interval: 0.1}}\n",
            d.sock.display(),
            d.log.display(),
            never.display()
        ),
    )
    .unwrap();
    let d = d.launch(&[]);
    let mut message = String::new();
    wait_until(20.0, "BACKOFF", || {
        let p = d.proc("w:0");
        message = p["message"].as_str().unwrap_or("").to_string();
        p["state"] == "BACKOFF"
    });
    assert!(message.contains("not ready after 0.5s"), "{message}");
    d.wait_state("w:0", "FATAL", 30.0);
    let p = d.proc("w:0");
    assert_eq!(
        p["message"], "gave up after 2 attempts: not ready after 0.5s",
        "{p}"
    );
    // Stopped with its stopsignal, not left behind.
    assert!(running(&["sleep", "100"])
        .iter()
        .all(|pid| parent_of(*pid) != d.child.as_ref().map(|c| c.id() as i32)));
}

#[test]
fn a_hanging_probe_command_is_killed_and_reaped() {
    let d = Daemon::start(
        "  h:\n    cmd: sleep 100\n    starttime: 60\n    ready: {command: \"sleep 987\", interval: 0.2, timeout: 0.3}\n",
    );
    let daemon = d.child.as_ref().unwrap().id() as i32;
    wait_until(20.0, "a probe command to run", || {
        !running(&["sleep", "987"]).is_empty()
    });
    // Several rounds: each is killed at its timeout before the next starts.
    wait_until(20.0, "uptime 2s", || {
        d.proc("h:0")["uptime_s"].as_u64().unwrap_or(0) >= 2
    });
    assert!(
        running(&["sleep", "987"]).len() <= 1,
        "killed at the timeout"
    );
    assert_eq!(d.state("h:0"), "STARTING");
    assert_eq!(d.cmd("stop h"), "h:0: stopped\nOK\n");
    wait_until(10.0, "the last probe command to be killed", || {
        running(&["sleep", "987"]).is_empty()
    });
    wait_until(10.0, "no zombie", || zombies_of(daemon).is_empty());
}

#[test]
fn start_replies_once_the_probe_passed() {
    let d = Daemon::configure("", "");
    let file = d.path("up");
    std::fs::write(
        &d.conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  s:\n    cmd: sleep 100\n    autostart: false\n    starttime: 60\n    ready: {{file: {}, interval: 0.1}}\n",
            d.sock.display(),
            d.log.display(),
            file.display()
        ),
    )
    .unwrap();
    let d = d.launch(&[]);
    let mut c = std::io::BufReader::new(d.connect());
    c.get_mut().write_all(b"start s\n").unwrap();
    still_starting_after_a_while(&d, "s:0");
    std::fs::write(&file, "").unwrap();
    assert_eq!(read_reply(&mut c), "s:0: started\nOK\n");
    assert_eq!(d.state("s:0"), "RUNNING");
}

/// A base B such that ports B0, B1 and B2 (B * 10 + i) are free now; below
/// the kernel's ephemeral range, so no outgoing connection takes one later.
fn free_port_triple() -> u16 {
    let start = 1000 + (std::process::id() % 2000) as u16;
    (start..3276)
        .chain(1000..start)
        .find(|b| (0..3).all(|i| TcpListener::bind(("127.0.0.1", b * 10 + i)).is_ok()))
        .expect("three free ports in a row")
}

/// `%(ENV_…)s` and `%(process_num)d` in a tcp probe: each of three processes
/// is probed on its own port and becomes RUNNING when that one accepts.
#[test]
fn each_process_is_ready_when_its_own_port_listens() {
    let base = free_port_triple();
    let d = Daemon::start_with(
        "  srv:\n    cmd: sleep 100\n    starttime: 60\n    \
         ready: {tcp: \"127.0.0.1:%(ENV_TM_PORT_BASE)s%(process_num)d\", interval: 0.1}\n    \
         numprocs: 3\n",
        "",
        &[("TM_PORT_BASE", &base.to_string())],
    );
    for i in 0..3 {
        still_starting_after_a_while(&d, &format!("srv:{i}"));
    }
    let listen = |i: u16| TcpListener::bind(("127.0.0.1", base * 10 + i)).unwrap();
    // Another second of probes, every 0.1 s, for those whose port is closed.
    let a_second_more = |name: &str| {
        let now = d.proc(name)["uptime_s"].as_u64().unwrap_or(0);
        wait_until(20.0, "another second", || {
            d.proc(name)["uptime_s"].as_u64().unwrap_or(0) > now
        });
        assert_eq!(d.state(name), "STARTING", "{}", d.proc(name));
    };
    let _one = listen(1);
    d.wait_state("srv:1", "RUNNING", 20.0);
    a_second_more("srv:0");
    a_second_more("srv:2");
    let _two = listen(2);
    d.wait_state("srv:2", "RUNNING", 20.0);
    a_second_more("srv:0");
    let _zero = listen(0);
    d.wait_state("srv:0", "RUNNING", 20.0);
    let log = d.log_text();
    for i in 0..3 {
        assert_eq!(log.matches(&format!("srv:{i}: ready")).count(), 1, "{log}");
    }
}

/// Reload compares expanded probe strings (another spelling of the same ports
/// is no change), and a per-process health check watches each process's own
/// port: closing one port makes only that process unhealthy.
#[test]
fn reload_compares_expanded_probes_and_health_checks_each_own_port() {
    let base = free_port_triple();
    let d = Daemon::start_with(
        "  srv:\n    cmd: sleep 100\n    starttime: 60\n    autorestart: never\n    numprocs: 2\n    \
         ready: {tcp: \"127.0.0.1:%(ENV_TM_PORT_BASE)s%(process_num)d\", interval: 0.1}\n",
        "",
        &[("TM_PORT_BASE", &base.to_string())],
    );
    let zero = TcpListener::bind(("127.0.0.1", base * 10)).unwrap();
    let one = TcpListener::bind(("127.0.0.1", base * 10 + 1)).unwrap();
    d.wait_state("srv:0", "RUNNING", 20.0);
    d.wait_state("srv:1", "RUNNING", 20.0);
    let pid0 = d.pid("srv:0");
    // Connections srv:0's probes make to its port, counted from here on.
    zero.set_nonblocking(true).unwrap();
    while zero.accept().is_ok() {}
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, text.replace("%(process_num)d", "%(process_num)1d")).unwrap();
    assert_eq!(d.cmd("reload"), "OK\n", "the same ports, spelled otherwise");
    let text = std::fs::read_to_string(&d.conf).unwrap();
    let health = "    healthcheck: {tcp: \"127.0.0.1:%(ENV_TM_PORT_BASE)s%(process_num)d\", \
                  interval: 0.2, retries: 2}\n";
    std::fs::write(&d.conf, text + health).unwrap();
    assert_eq!(d.cmd("reload"), "updated srv (healthcheck)\nOK\n");
    drop(one);
    d.wait_state("srv:1", "EXITED_UNEXPECTEDLY", 30.0);
    d.wait_log("srv:1: unhealthy", 5.0);
    // srv:0's checks go to its own port, which still accepts: healthy.
    let mut checks = 0;
    wait_until(30.0, "3 health checks of srv:0 on its port", || {
        checks += std::iter::from_fn(|| zero.accept().ok()).count();
        checks >= 3
    });
    assert_eq!(d.state("srv:0"), "RUNNING");
    assert_eq!(d.pid("srv:0"), pid0);
    assert!(!d.log_text().contains("srv:0: health check failed"));
}
