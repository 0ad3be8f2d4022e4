//! Benchmarks of the real taskmasterd binary: idle wake-ups, memory, `status`
//! latency, crash-to-replacement latency and spawn throughput against a bare
//! posix_spawn loop, and latencies while other clients flood the daemon
//! (daemon/flood.rs). Run with `bench/run` (or `cargo bench --bench daemon`);
//! results are described in docs/benchmarks.md.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

// In a subdirectory: a file directly in benches/ would be taken by cargo
// for a benchmark target of its own.
#[path = "daemon/flood.rs"]
mod flood;

const DAEMON: &str = env!("CARGO_BIN_EXE_taskmasterd");

/// Processes of the idle, memory, status and flood runs (at least as many as
/// kills for the kill runs): 10, or `--procs N`.
static PROCS: AtomicUsize = AtomicUsize::new(10);

fn procs() -> usize {
    PROCS.load(Ordering::Relaxed)
}

struct Daemon {
    _dir: tempfile::TempDir,
    sock: PathBuf,
    child: Child,
}

impl Daemon {
    fn start(programs: &str) -> Daemon {
        Daemon::start_env(programs, &[])
    }

    fn start_env(programs: &str, env: &[(&str, &str)]) -> Daemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("s.sock");
        let conf = dir.path().join("c.yaml");
        let text = format!(
            "socket: {}\nlogfile: {}\nprograms:\n{programs}",
            sock.display(),
            dir.path().join("d.log").display()
        );
        std::fs::write(&conf, text).expect("config");
        let child = quiet(Command::new(DAEMON).envs(env.iter().copied()), &conf);
        let d = Daemon {
            _dir: dir,
            sock,
            child,
        };
        wait_for("the socket", || UnixStream::connect(&d.sock).is_ok());
        d
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn connect(&self) -> BufReader<UnixStream> {
        let s = UnixStream::connect(&self.sock).expect("connect");
        // A stuck daemon must end the benchmark, not hang it.
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        BufReader::new(s)
    }

    fn cmd(&self, line: &str) -> Vec<String> {
        request(&mut self.connect(), line)
    }

    /// Waits until `status` shows every process RUNNING.
    fn all_running(&self) {
        wait_for("every process RUNNING", || {
            self.cmd("status")
                .iter()
                .all(|l| l == "OK" || l.split_whitespace().nth(1) == Some("RUNNING"))
        });
    }

    /// The daemon's direct children.
    fn children(&self) -> Vec<i32> {
        children_of(self.pid())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.cmd("shutdown");
        let _ = self.child.wait();
    }
}

/// Starts a supervisor on `conf` with no stdio.
fn quiet(cmd: &mut Command, conf: &Path) -> Child {
    cmd.arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the supervisor")
}

fn request(r: &mut BufReader<UnixStream>, line: &str) -> Vec<String> {
    r.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .expect("send");
    let mut out = Vec::new();
    loop {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap_or(0) == 0 {
            return out;
        }
        let l = l.trim_end().to_string();
        let last = l == "OK" || l.starts_with("ERR");
        out.push(l);
        if last {
            return out;
        }
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A field of /proc/PID/status, as a number (kB for memory lines).
fn proc_status(pid: i32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn switches(pid: i32) -> u64 {
    proc_status(pid, "voluntary_ctxt_switches") + proc_status(pid, "nonvoluntary_ctxt_switches")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn idle_and_memory(idle: Duration) {
    let n = procs();
    let d = Daemon::start(&format!(
        "  web:\n    cmd: sleep 100000\n    numprocs: {n}\n    starttime: 0.2\n"
    ));
    d.all_running();
    // Let the last client connection and deadlines settle.
    std::thread::sleep(Duration::from_millis(300));
    let before = switches(d.pid());
    std::thread::sleep(idle);
    let after = switches(d.pid());
    println!(
        "idle wake-ups        {} in {}s ({n} RUNNING processes, no client)",
        after - before,
        idle.as_secs()
    );
    println!(
        "memory               RSS {} KiB, peak RSS {} KiB ({n} processes, idle)",
        proc_status(d.pid(), "VmRSS"),
        proc_status(d.pid(), "VmHWM")
    );
    // The same once used: the pages a `status` and a crash and replacement
    // run are resident again until the daemon has been quiet for a moment
    // (src/trimmer.rs), then given back.
    let _ = d.cmd("status");
    let times = kill_each(|| d.children(), Duration::ZERO, 1);
    let _ = d.cmd("status");
    println!(
        "memory, in use       RSS {} KiB ({n} processes, right after status, a kill -9 and its replacement in {}, status)",
        proc_status(d.pid(), "VmRSS"),
        ms(times[0])
    );
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "memory, used, idle   RSS {} KiB ({n} processes, {} ms later)",
        proc_status(d.pid(), "VmRSS"),
        (Duration::from_millis(300)).as_millis()
    );
}

fn status_latency(n: usize) {
    let procs = procs();
    let d = Daemon::start(&format!(
        "  web:\n    cmd: sleep 100000\n    numprocs: {procs}\n    starttime: 0\n"
    ));
    d.all_running();
    let mut c = d.connect();
    // Daemon CPU per request: on a shared machine, steadier than the clock.
    let cpu = flood::cpu_seconds(d.pid());
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let reply = request(&mut c, "status");
            assert_eq!(reply.len(), procs + 1, "{reply:?}");
            t.elapsed()
        })
        .collect();
    let cpu = (flood::cpu_seconds(d.pid()) - cpu) / n as f64;
    times.sort();
    println!(
        "status round trip    median {}, p99 {}, max {} ({n} requests, {procs} processes; daemon CPU {} per request)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[n - 1]),
        ms(Duration::from_secs_f64(cpu))
    );
}

/// SIGKILL one process, time until the daemon has a replacement child.
fn kill_to_replacement(n: usize, pidfd: bool) {
    let env: &[(&str, &str)] = if pidfd {
        &[]
    } else {
        &[("TASKMASTER_NO_PIDFD", "1")]
    };
    let d = Daemon::start_env(
        &format!(
            "  w:\n    cmd: sleep 100000\n    numprocs: {}\n    starttime: 0\n    autorestart: always\n",
            n.max(procs())
        ),
        env,
    );
    d.all_running();
    // Each process is killed once: a second crash within 10 s would, by
    // design, be delayed as a crash loop.
    let cpu = flood::cpu_seconds(d.pid());
    let times = kill_each(|| d.children(), Duration::ZERO, n);
    // Reaping and spawning; a spawned child's own work until `exec` is its.
    let cpu = (flood::cpu_seconds(d.pid()) - cpu) / times.len() as f64;
    println!(
        "kill -9 → new child  median {}, p90 {}, max {} ({} kills, {}; daemon CPU {} per kill)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times[times.len() - 1]),
        times.len(),
        if pidfd { "pidfd" } else { "SIGCHLD" },
        ms(Duration::from_secs_f64(cpu))
    );
}

/// `start all` of n processes through the daemon versus spawning them
/// directly; three alternating rounds, medians compared.
fn spawn_throughput(n: usize) {
    let (mut daemon, mut bare) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        daemon.push(spawn_through_daemon(n));
        bare.push(spawn_bare(n));
    }
    daemon.sort();
    bare.sort();
    println!(
        "{n} spawns           daemon {}, bare posix_spawn {}, ratio {:.2} (medians of 3)",
        ms(daemon[1]),
        ms(bare[1]),
        daemon[1].as_secs_f64() / bare[1].as_secs_f64()
    );
}

fn spawn_through_daemon(n: usize) -> Duration {
    let d = Daemon::start(&format!(
        "  s:\n    cmd: sleep 100000\n    numprocs: {n}\n    starttime: 0\n    autostart: false\n"
    ));
    let t = Instant::now();
    let reply = d.cmd("start all");
    let took = t.elapsed();
    assert_eq!(reply.last().map(String::as_str), Some("OK"), "{reply:?}");
    took
}

fn spawn_bare(n: usize) -> Duration {
    let sleep = which("sleep");
    let t = Instant::now();
    let mut kids: Vec<Child> = (0..n)
        .map(|_| {
            Command::new(&sleep)
                .arg("100000")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn")
        })
        .collect();
    let took = t.elapsed();
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    took
}

fn which(name: &str) -> PathBuf {
    find_in_path(name).expect("in PATH")
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| Path::new(p).is_file())
}

/// The same idle, memory and kill measurements on supervisord, for comparison.
struct Supervisord {
    _dir: tempfile::TempDir,
    child: Child,
}

impl Supervisord {
    fn start(bin: &Path, n: usize, startsecs: u32) -> Supervisord {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().display();
        let conf = dir.path().join("supervisord.conf");
        let text = format!(
            "[unix_http_server]\nfile={p}/sv.sock\n\
             [supervisord]\nlogfile={p}/sv.log\npidfile={p}/sv.pid\nnodaemon=true\n\
             [rpcinterface:supervisor]\n\
             supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\
             [program:w]\ncommand=sleep 100000\nnumprocs={n}\n\
             process_name=%(program_name)s_%(process_num)d\nstartsecs={startsecs}\n\
             autorestart=true\nstdout_logfile=NONE\nstderr_logfile=NONE\n"
        );
        std::fs::write(&conf, text).expect("config");
        let child = quiet(&mut Command::new(bin), &conf);
        let s = Supervisord { _dir: dir, child };
        wait_for("supervisord's children", || s.children().len() == n);
        s
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn children(&self) -> Vec<i32> {
        children_of(self.pid())
    }
}

impl Drop for Supervisord {
    fn drop(&mut self) {
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGKILLs each of the first `n` of `children()` once; sorted times until a
/// replacement exists. `/proc` is polled in a tight loop, or with `pause`
/// between polls.
fn kill_each(children: impl Fn() -> Vec<i32>, pause: Duration, n: usize) -> Vec<Duration> {
    let mut times = Vec::new();
    for victim in children().into_iter().take(n) {
        let old = children();
        let t = Instant::now();
        unsafe { libc::kill(victim, libc::SIGKILL) };
        loop {
            let now = children();
            if now.len() == old.len() && !now.contains(&victim) {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(10), "no replacement");
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        times.push(t.elapsed());
    }
    times.sort();
    times
}

fn supervisord(idle: Duration, kills: usize) {
    let bin = std::env::var_os("SUPERVISORD")
        .map(PathBuf::from)
        .or_else(|| find_in_path("supervisord"));
    let Some(bin) = bin else {
        println!(
            "supervisord          not found (set SUPERVISORD=/path or pip install supervisor)"
        );
        return;
    };
    let s = Supervisord::start(&bin, 10, 1);
    // Past startsecs: every process RUNNING.
    std::thread::sleep(Duration::from_millis(1500));
    let before = switches(s.pid());
    std::thread::sleep(idle);
    let after = switches(s.pid());
    println!(
        "supervisord idle     {} wake-ups in {}s; RSS {} KiB (10 processes)",
        after - before,
        idle.as_secs(),
        proc_status(s.pid(), "VmRSS")
    );
    drop(s);
    let s = Supervisord::start(&bin, kills, 0);
    std::thread::sleep(Duration::from_millis(500));
    let times = kill_each(|| s.children(), Duration::ZERO, kills);
    println!(
        "supervisord kill -9  median {}, p90 {}, max {} ({} kills)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(times[times.len() - 1]),
        times.len()
    );
}

fn main() {
    // `--quick` shortens the waits; other words pick benchmarks by name
    // (idle, status, kill, spawn, flood, supervisord). cargo passes `--bench`: ignored.
    // `--procs N` (or `--procs=N`) runs idle, memory, status, kill and flood
    // with N processes instead of 10 (kill: at least as many as it kills).
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--procs") {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        args.splice(i..(i + 2).min(args.len()), [format!("--procs={v}")]);
    }
    for a in &args {
        if let Some(v) = a.strip_prefix("--procs=") {
            match v.parse::<usize>() {
                Ok(n) if n > 0 => PROCS.store(n, Ordering::Relaxed),
                _ => panic!("--procs needs a number of processes, got {v:?}"),
            }
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let picked: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with("--"))
        .map(String::as_str)
        .collect();
    let run = |name: &str| picked.is_empty() || picked.contains(&name);
    println!("taskmasterd benchmarks ({DAEMON})");
    if run("idle") {
        idle_and_memory(Duration::from_secs(if quick { 2 } else { 10 }));
    }
    if run("status") {
        status_latency(if quick { 200 } else { 2000 });
    }
    if run("kill") {
        let kills = if quick { 20 } else { 100 };
        kill_to_replacement(kills, true);
        kill_to_replacement(kills, false);
    }
    if run("spawn") {
        spawn_throughput(if quick { 200 } else { 1000 });
    }
    if run("flood") {
        flood::run(quick);
    }
    if run("supervisord") {
        supervisord(
            Duration::from_secs(if quick { 2 } else { 10 }),
            if quick { 20 } else { 100 },
        );
    }
}
