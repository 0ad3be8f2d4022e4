//! No client can stall the others, lock operators out, or grow the daemon's
//! memory: budgets per wake-up, shedding of idle connections, back-pressure.
mod common;
use common::*;
use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROGS: &str = "  s:\n    cmd: sleep 100\n    starttime: 0\n";

/// The slowest of `n` status round trips on fresh connections.
fn worst_status(d: &Daemon, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        let t = Instant::now();
        assert!(d.cmd("status s").ends_with("OK\n"));
        worst = worst.max(t.elapsed());
    }
    worst
}

/// Runs `flood` on its own connection in a thread until the returned guard drops.
struct Flood(Arc<AtomicBool>, Option<std::thread::JoinHandle<()>>);

impl Flood {
    fn start(sock: &std::path::Path, chunk: Vec<u8>) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let mut s = UnixStream::connect(sock).unwrap();
        s.set_write_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let h = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let _ = s.write(&chunk);
            }
        });
        Flood(stop, Some(h))
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
        if let Some(h) = self.1.take() {
            let _ = h.join();
        }
    }
}

#[test]
fn a_blank_line_flood_does_not_stall_other_clients() {
    let d = Daemon::start(PROGS);
    d.wait_state("s:0", "RUNNING", 5.0);
    let _blank = Flood::start(&d.sock, vec![b'\n'; 64 * 1024]);
    let _garbage = Flood::start(&d.sock, b"\xff\xfe nope\n".repeat(4096));
    std::thread::sleep(Duration::from_millis(200)); // let the floods get going
    let worst = worst_status(&d, 50);
    assert!(worst < Duration::from_secs(1), "status took {worst:?}");
    // A crash is still noticed and repaired at once.
    let old = d.pid("s:0").unwrap();
    let t = Instant::now();
    unsafe { libc::kill(old, libc::SIGKILL) };
    wait_until(5.0, "a replacement", || {
        d.pid("s:0").is_some_and(|p| p != old)
    });
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_connect_burst_never_wedges_the_listener() {
    let d = Daemon::start(PROGS);
    for _ in 0..3000 {
        drop(UnixStream::connect(&d.sock).unwrap());
    }
    assert!(d.cmd("status").ends_with("OK\n"));
    let tcp = Daemon::start_with(PROGS, "listen: \"127.0.0.1:0\"\nlisten_open: true\n", &[]);
    let port = tcp_port(&tcp);
    for _ in 0..2000 {
        if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            drop(s);
        }
    }
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"status\r\nquit\r\n").unwrap();
    let reply = read_all(s);
    assert!(
        reply.starts_with("s:0  RUNNING") && reply.ends_with("OK\r\nOK\r\n"),
        "{reply}"
    );
}

fn tcp_port(d: &Daemon) -> u16 {
    let mut port = 0;
    wait_until(5.0, "the TCP listener", || {
        let log = d.log_text();
        port = log
            .split("TCP control listener on 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        port != 0
    });
    port
}

#[test]
fn idle_connections_never_lock_out_an_operator() {
    let d = Daemon::start(PROGS);
    let idle: Vec<UnixStream> = (0..1100)
        .map(|_| UnixStream::connect(&d.sock).unwrap())
        .collect();
    // Past the client limit, the longest-idle connections were shed.
    assert!(d.cmd("status s").starts_with("s:0"));
    let mut closed = 0;
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
        let mut buf = [0u8; 128];
        if let Ok(n) = s.read(&mut buf) {
            closed += 1;
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(
                n == 0 || text.starts_with("ERR idle connection closed"),
                "{text}"
            );
        }
    }
    assert!(closed >= 500, "only {closed} shed");
    d.wait_log("closing connections to admit new ones", 5.0);
}

/// Clients that ask for big replies and never read them are not read from
/// either: each costs about one reply, not everything it asked for.
#[test]
fn clients_that_never_read_cost_bounded_memory() {
    let d = Daemon::start("  s:\n    cmd: sleep 100\n    numprocs: 3000\n    autostart: false\n");
    let pid = d.child.as_ref().unwrap().id();
    let before = rss_kib(pid);
    let request = "status\n".repeat(2000);
    let hogs: Vec<UnixStream> = (0..100)
        .map(|_| {
            let mut s = UnixStream::connect(&d.sock).unwrap();
            s.set_write_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let _ = s.write(request.as_bytes());
            s
        })
        .collect();
    assert!(d.cmd("status s:7").starts_with("s:7"));
    let grown = rss_kib(pid).saturating_sub(before);
    // 100 × 2000 status replies of ~200 KiB would be 40 GB; allow ~1 MiB each.
    assert!(grown < 100 * 1024, "RSS grew by {grown} KiB");
    drop(hogs);
    assert!(d.cmd("status s:0").starts_with("s:0"));
}

/// A reply larger than any buffer bound is streamed to a reader, not dropped.
#[test]
fn a_status_of_65536_processes_is_delivered_whole() {
    let d =
        // minfds: only a few of them will ever run at once.
        Daemon::start_with("  big:\n    cmd: sleep 100\n    numprocs: 65536\n    autostart: false\n", "minfds: 1024\n", &[]);
    let mut s = d.connect();
    s.write_all(b"status --json\nstatus big:65535\n").unwrap();
    let mut r = BufReader::new(s);
    let reply = read_reply(&mut r);
    let (json, ok) = reply.split_once('\n').unwrap();
    assert_eq!(ok, "OK\n");
    let list: Vec<serde_json::Value> = serde_json::from_str(json).unwrap();
    assert_eq!(list.len(), 65536);
    assert_eq!(list[65535]["name"], "big:65535");
    assert!(read_reply(&mut r).starts_with("big:65535  NOT_STARTED"));
    let human = d.cmd("status");
    assert_eq!(human.lines().count(), 65537);
}

/// Connections that never read their output, or that hung up while their
/// reply was deferred, cannot lock an operator out.
#[test]
fn non_readers_and_hung_up_waiters_are_shed_for_an_operator() {
    let d = Daemon::start(
        "  stub:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    starttime: 0\n    stoptime: 20\n  s:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("stub:0", "RUNNING", 5.0);
    // 600 clients ask to stop `stub` (20 s away) and hang up at once.
    for _ in 0..600 {
        if let Ok(mut s) = UnixStream::connect(&d.sock) {
            let _ = s.write_all(b"stop stub\n");
        }
    }
    let t = Instant::now();
    assert!(d.cmd("status s").starts_with("s:0  RUNNING"));
    assert!(t.elapsed() < Duration::from_secs(5));
    // 600 clients pipeline requests and never read a byte.
    let request = "help\n".repeat(4000);
    let hogs: Vec<UnixStream> = (0..600)
        .filter_map(|_| {
            let mut s = UnixStream::connect(&d.sock).ok()?;
            s.set_write_timeout(Some(Duration::from_millis(50))).ok()?;
            let _ = s.write(request.as_bytes());
            Some(s)
        })
        .collect();
    // Once they have been stuck a while, an operator still gets in.
    let mut served = false;
    wait_until(10.0, "an operator to be served", || {
        served = UnixStream::connect(&d.sock).is_ok_and(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(b"status s\n").is_ok()
                && read_all_until_ok(&mut s).starts_with("s:0  RUNNING")
        });
        served
    });
    drop(hogs);
    assert_eq!(d.cmd("stop s"), "s:0: stopped\nOK\n");
    // Its stop is 20 s away: end it now, so the daemon's shutdown is quick.
    if let Some(pid) = d.pid("stub:0") {
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

fn read_all_until_ok(s: &mut UnixStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"OK\n") && !out.starts_with(b"ERR") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request costs the names it has plus the processes it names, never
/// names × processes: long name lists on a big config do not stall others.
#[test]
fn long_name_lists_on_a_big_config_stay_cheap() {
    let d = Daemon::start_with(
        "  big:\n    cmd: sleep 100\n    numprocs: 65536\n    autostart: false\n  one:\n    cmd: sleep 100\n    autostart: false\n",
        "minfds: 1024\n",
        &[],
    );
    let line = format!("status{}\n", " one".repeat(16000));
    let nosuch = format!("status{}\n", " nosuch".repeat(5800));
    let mut flood = d.connect();
    for _ in 0..20 {
        flood.write_all(line.as_bytes()).unwrap();
        flood.write_all(nosuch.as_bytes()).unwrap();
    }
    let t = Instant::now();
    assert!(d.cmd("help quit").ends_with("OK\n"));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let mut r = BufReader::new(flood);
    let one = read_reply(&mut r);
    assert!(
        one.starts_with("one:0  NOT_STARTED") && one.ends_with("not started\nOK\n"),
        "{one}"
    );
    assert_eq!(read_reply(&mut r), "ERR unknown name: nosuch\n");
}

/// A deferred reply over many processes is answered whole, and at once.
#[test]
fn a_deferred_reply_over_many_processes_is_whole_and_quick() {
    let d = Daemon::start_with(
        "  many:\n    cmd: sleep 100\n    numprocs: 20000\n    autostart: false\n",
        "minfds: 1024\n",
        &[],
    );
    let t = Instant::now();
    let reply = d.cmd("stop all");
    assert!(reply.ends_with("OK\n") && reply.lines().count() == 20001);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
