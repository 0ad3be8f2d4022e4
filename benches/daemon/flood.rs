//! `status` latency, and kill → replacement latency, while other clients
//! abuse the daemon: one that sends blank lines non-stop, one that pipelines
//! `status` and never reads a reply, and 300 idle connections plus a
//! connect/close storm. Every flooder is a thread on its own connection,
//! bounded in writes and in time, and joined; measurements run on a separate
//! connection whose every read has a timeout.

use crate::{kill_each, ms, percentile, proc_status, procs, wait_for, Daemon};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Longest any background thread runs, whatever the measuring thread does.
const HARD_STOP: Duration = Duration::from_secs(120);
/// Most writes (or connects) one background thread makes.
const MAX_OPS: u64 = 50_000_000;
/// Bound on every connect, and on the wait for every reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes per flood write.
const FLOOD_CHUNK: usize = 64 * 1024;
/// Idle connections held open during the connection storm.
const IDLE_CONNS: usize = 300;

/// Pause between two looks at the daemon's children in the kill measurement.
const POLL_PAUSE: Duration = Duration::from_micros(100);

/// The `web` program of `procs()` processes (10 unless `--procs N`).
fn web() -> String {
    format!(
        "  web:\n    cmd: sleep 100000\n    numprocs: {}\n    starttime: 0\n",
        procs()
    )
}

/// The four flood measurements; `quick` shortens the flood window.
pub fn run(quick: bool) {
    let (n, window) = if quick {
        (200, Duration::from_secs(1))
    } else {
        (2000, Duration::from_secs(5))
    };
    blank_lines(n, window);
    unread_status(n, window);
    connection_storm(n, window);
    kill_during_flood(if quick { 20 } else { 100 });
}

fn blank_lines(n: usize, window: Duration) {
    let d = Daemon::start(&web());
    d.all_running();
    let flood = Flood::start(&d.sock, b"\n");
    let l = status_times(&d, n, window);
    let f = flood.end();
    report(
        "status, blank flood",
        &l,
        &format!("{} blank lines", f.rate()),
    );
}

fn unread_status(n: usize, window: Duration) {
    let d = Daemon::start(&web());
    d.all_running();
    let before = proc_status(d.pid(), "VmRSS");
    let flood = Flood::start(&d.sock, b"status\n");
    let l = status_times(&d, n, window);
    // Taken while the flooder is still connected, its replies still owed.
    let after = proc_status(d.pid(), "VmRSS");
    let f = flood.end();
    report(
        "status, unread flood",
        &l,
        &format!(
            "flooder sent {} KiB in {:.1}s, RSS {before} → {after} KiB, peak {} KiB",
            f.sent / 1024,
            f.took.as_secs_f64(),
            proc_status(d.pid(), "VmHWM")
        ),
    );
}

fn connection_storm(n: usize, window: Duration) {
    let d = Daemon::start(&web());
    d.all_running();
    let mut idle: Vec<UnixStream> = (0..IDLE_CONNS)
        .map(|_| connect_within(&d.sock, IO_TIMEOUT).expect("an idle connection"))
        .collect();
    // The backlog is accepted in order: once the last one is answered, every
    // one is admitted. The others never send a byte.
    if let Some(last) = idle.pop() {
        last.set_read_timeout(Some(IO_TIMEOUT))
            .expect("read timeout");
        let mut last = BufReader::new(last);
        status_once(&mut last).expect("a reply on the last idle connection");
        idle.push(last.into_inner());
    }
    let storm = Storm::start(&d.sock);
    let l = status_times(&d, n, window);
    let (made, refused) = storm.end();
    let shed = idle.iter().filter(|s| closed_by_peer(s)).count();
    drop(idle);
    report(
        "status, conn storm",
        &l,
        &format!(
            "{IDLE_CONNS} idle held, {made} connect+close{}, {shed} idle shed",
            if refused > 0 {
                format!(" ({refused} failed)")
            } else {
                String::new()
            }
        ),
    );
}

fn kill_during_flood(kills: usize) {
    let d = Daemon::start(&format!(
        "  w:\n    cmd: sleep 100000\n    numprocs: {}\n    starttime: 0\n    autorestart: always\n",
        kills.max(procs())
    ));
    d.all_running();
    let flood = Flood::start(&d.sock, b"\n");
    // Polled with pauses: a tight loop would be a third busy thread on two
    // cores (with the daemon and the flooder) and measure mostly itself.
    let times = kill_each(|| d.children(), POLL_PAUSE, kills);
    let f = flood.end();
    println!(
        "kill -9, blank flood median {}, p90 {}, max {} ({} kills, pidfd; {} blank lines)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times[times.len() - 1]),
        times.len(),
        f.rate()
    );
}

/// Round trips measured, and requests that got no proper reply in time.
struct Latencies {
    times: Vec<Duration>,
    failed: usize,
    /// The daemon's CPU time over the measurement, as a share of one core.
    cpu: f64,
}

/// `n` status round trips on a connection of their own, paced evenly over
/// `window` so that they sample the whole flood rather than its first
/// moments. A request without a full reply within IO_TIMEOUT counts as failed
/// and its connection is replaced; the whole run stops 30 s past the window.
fn status_times(d: &Daemon, n: usize, window: Duration) -> Latencies {
    let sock = &d.sock;
    let cpu_before = cpu_seconds(d.pid());
    let start = Instant::now();
    let give_up = start + window + Duration::from_secs(30);
    let mut conn: Option<BufReader<UnixStream>> = None;
    let (mut times, mut failed) = (Vec::with_capacity(n), 0);
    for i in 0..n {
        let slot = start + window.mul_f64(i as f64 / n as f64);
        if let Some(wait) = slot.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if Instant::now() > give_up {
            failed += n - i;
            break;
        }
        if conn.is_none() {
            conn = connect_within(sock, IO_TIMEOUT)
                .and_then(|s| s.set_read_timeout(Some(IO_TIMEOUT)).map(|()| s))
                .ok()
                .map(BufReader::new);
        }
        let Some(c) = conn.as_mut() else {
            failed += 1;
            continue;
        };
        let t = Instant::now();
        match status_once(c) {
            Ok(()) => times.push(t.elapsed()),
            Err(_) => {
                failed += 1;
                conn = None;
            }
        }
    }
    let cpu = (cpu_seconds(d.pid()) - cpu_before) / start.elapsed().as_secs_f64();
    times.sort();
    Latencies { times, failed, cpu }
}

/// One `status` round trip: `procs()` process lines, then OK.
fn status_once(c: &mut BufReader<UnixStream>) -> io::Result<()> {
    c.get_mut().write_all(b"status\n")?;
    let n = procs();
    for i in 0..=n {
        let mut line = String::new();
        if c.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end();
        let last = line == "OK" || line.starts_with("ERR");
        if last != (i == n) || line.starts_with("ERR") {
            return Err(io::Error::other(format!("unexpected reply line {line:?}")));
        }
    }
    Ok(())
}

fn report(label: &str, l: &Latencies, flood: &str) {
    let failed = if l.failed > 0 {
        format!(", {} FAILED", l.failed)
    } else {
        String::new()
    };
    match l.times.last() {
        Some(max) => println!(
            "{label:<21}median {}, p99 {}, max {} ({} requests{failed}, {} processes; {flood}; daemon CPU {:.0}%)",
            ms(percentile(&l.times, 0.5)),
            ms(percentile(&l.times, 0.99)),
            ms(*max),
            l.times.len(),
            procs(),
            l.cpu * 100.0,
        ),
        None => println!("{label:<21}no reply at all{failed} ({flood})"),
    }
}

/// A thread writing `pattern` over and over on its own connection, never
/// reading, until `end` (or HARD_STOP / MAX_OPS).
struct Flood {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Flooded>>,
}

struct Flooded {
    sent: u64,
    took: Duration,
    /// The daemon closed the flood connection (the error the write got).
    dropped: Option<String>,
}

impl Flooded {
    fn rate(&self) -> String {
        let mib = self.sent as f64 / (1024.0 * 1024.0);
        let rate = format!("{:.1} MiB/s", mib / self.took.as_secs_f64().max(1e-9));
        match &self.dropped {
            Some(e) => format!("{rate}, then DROPPED by the daemon: {e}"),
            None => rate,
        }
    }
}

impl Flood {
    /// Starts the flood and returns once it has sent its first 64 KiB.
    fn start(sock: &Path, pattern: &[u8]) -> Flood {
        let mut s = connect_within(sock, IO_TIMEOUT).expect("the flood connection");
        // A short timeout: a flooder the daemon no longer reads from must
        // still see the stop flag.
        s.set_write_timeout(Some(Duration::from_millis(20)))
            .expect("write timeout");
        // Whole copies of the pattern, so that no request is ever cut.
        let buf = pattern.repeat(FLOOD_CHUNK / pattern.len());
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let thread = thread::spawn(move || {
            let t = Instant::now();
            let (mut off, mut dropped) = (0, None);
            for _ in 0..MAX_OPS {
                if stop2.load(Ordering::Relaxed) || t.elapsed() > HARD_STOP {
                    break;
                }
                match s.write(&buf[off..]) {
                    Ok(n) => {
                        sent2.fetch_add(n as u64, Ordering::Relaxed);
                        off = (off + n) % buf.len();
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => {
                        dropped = Some(e.to_string());
                        break;
                    }
                }
            }
            Flooded {
                sent: sent2.load(Ordering::Relaxed),
                took: t.elapsed(),
                dropped,
            }
        });
        let f = Flood {
            stop,
            thread: Some(thread),
        };
        wait_for("the flood under way", || {
            sent.load(Ordering::Relaxed) >= FLOOD_CHUNK as u64
        });
        f
    }

    fn end(mut self) -> Flooded {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined once");
        t.join().expect("the flooder thread")
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A thread that connects and closes at once, non-stop, until `end` (or
/// HARD_STOP / MAX_OPS).
struct Storm {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(u64, u64)>>,
}

impl Storm {
    fn start(sock: &Path) -> Storm {
        let sock: PathBuf = sock.into();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = thread::spawn(move || {
            let t = Instant::now();
            let (mut made, mut failed) = (0, 0);
            for _ in 0..MAX_OPS {
                if stop2.load(Ordering::Relaxed) || t.elapsed() > HARD_STOP {
                    break;
                }
                match connect_within(&sock, IO_TIMEOUT) {
                    Ok(_) => made += 1,
                    Err(_) => failed += 1,
                }
            }
            (made, failed)
        });
        Storm {
            stop,
            thread: Some(thread),
        }
    }

    /// (connects made, connects that failed)
    fn end(mut self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let t = self.thread.take().expect("joined once");
        t.join().expect("the storm thread")
    }
}

impl Drop for Storm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The daemon closed this connection (it was shed): EOF or its last words
/// are readable. An open idle connection would block.
fn closed_by_peer(s: &UnixStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return false;
    }
    let mut buf = [0u8; 256];
    let mut r: &UnixStream = s;
    !matches!(r.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

/// User plus system CPU time of process `pid` so far, in seconds.
pub fn cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends at the last ')': utime and
    // stime are the 12th and 13th, in clock ticks.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

/// connect(2) to a unix socket, bounded: std has no connect timeout for unix
/// sockets, and a connect to a full backlog blocks until accepted, but Linux
/// bounds that wait by SO_SNDTIMEO, which can be set before connecting.
fn connect_within(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let raw = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: valid fd, option value and lengths matching their types.
    let r = unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = unsafe {
        libc::connect(
            raw,
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UnixStream::from(fd))
}
