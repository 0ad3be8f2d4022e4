//! An idle daemon does not wake up: not even for deadlines that were cancelled.
mod common;
use common::*;
use std::time::Duration;

fn wakeups(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
        .iter()
        .filter_map(|k| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// `start` arms a 1.5 s starttime deadline and `stop` cancels it: the daemon
/// must not wake when it would have expired.
#[test]
fn a_cancelled_deadline_costs_no_wakeup() {
    let d = Daemon::start("  s:\n    cmd: sleep 100\n    starttime: 1.5\n    autostart: false\n");
    let mut c = d.connect();
    std::io::Write::write_all(&mut c, b"start s\n").unwrap();
    d.wait_state("s:0", "STARTING", 5.0);
    assert_eq!(d.cmd("stop s"), "s:0: stopped\nOK\n");
    let mut r = std::io::BufReader::new(c);
    assert!(read_reply(&mut r).starts_with("s:0: failed: STOPPED"));
    drop(r);
    // Once the closes above have been handled, nothing wakes it.
    assert_stays_idle(&d, "the daemon woke up while idle");
}

/// A `metrics` request, a `status --json` and an HTTP scrape read /proc when
/// asked and leave nothing behind: no sampling, no timer of the HTTP client.
#[test]
fn scrapes_leave_no_wakeup_behind() {
    let d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    starttime: 0\n",
        "metrics_listen: \"127.0.0.1:0\"\n",
        &[],
    );
    d.wait_state("s:0", "RUNNING", 5.0);
    assert!(d.cmd("metrics").ends_with("OK\n"));
    let port = metrics_port(&d);
    let mut t = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    std::io::Write::write_all(&mut t, b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert!(read_all(&mut t).starts_with("HTTP/1.1 200 OK"));
    drop(t);
    assert_stays_idle(&d, "the daemon woke up while idle");
}

/// Readiness probes exist only while STARTING: once every process is RUNNING
/// (no healthcheck), the daemon sleeps again.
#[test]
fn no_wakeup_once_ready_probes_passed() {
    let d = Daemon::configure("", "");
    let flag = d.path("ready");
    std::fs::write(&flag, "").unwrap();
    std::fs::write(
        &d.conf,
        format!(
            "socket: {}\nlogfile: {}\nprograms:\n  f:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 60\n    ready: {{file: {}, interval: 0.05}}\n  c:\n    cmd: sleep 100\n    starttime: 60\n    ready: {{command: \"true\", interval: 0.05}}\n",
            d.sock.display(),
            d.log.display(),
            flag.display()
        ),
    )
    .unwrap();
    let d = d.launch(&[]);
    for name in ["f:0", "f:1", "f:2", "c:0"] {
        d.wait_state(name, "RUNNING", 20.0);
    }
    assert_stays_idle(&d, "a probe woke the daemon after RUNNING");
}

/// Waits until the daemon has not woken for 300 ms, then asserts it stays
/// asleep for 2.5 s.
fn assert_stays_idle(d: &Daemon, why: &str) {
    let pid = d.child.as_ref().unwrap().id();
    let mut last = (wakeups(pid), std::time::Instant::now());
    wait_until(5.0, "the daemon to settle", || {
        let now = wakeups(pid);
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        last.1.elapsed() >= Duration::from_millis(300)
    });
    let before = wakeups(pid);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(wakeups(pid), before, "{why}");
}

/// What a request faults in (code, heap) is given back once the daemon has
/// been quiet for a moment (one wake-up after the burst), and then nothing
/// wakes it: an idle daemon after use is as small as one after boot.
#[test]
fn memory_faulted_in_by_use_is_given_back_then_nothing_wakes() {
    let d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    numprocs: 300\n    starttime: 0\n",
        "",
        &[("RUST_LOG", "debug")],
    );
    let pid = d.child.as_ref().unwrap().id();
    let trims = || d.log_text().matches("giving back unused pages").count();
    // Counted from /proc, not asked: a request would itself be a use.
    let children = format!("/proc/{pid}/task/{pid}/children");
    wait_until(30.0, "300 children", || {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        text.split_whitespace().count() == 300
    });
    assert_stays_idle(&d, "the daemon woke up after boot");
    let (settled, before) = (rss_kib(pid), trims());
    assert!(before >= 1, "the boot trim");
    // Back to back, as a script would: one trim after the last.
    for _ in 0..5 {
        assert!(d.cmd("status").ends_with("OK\n"));
    }
    wait_until(10.0, "a trim after the requests", || trims() > before);
    // The line is logged just before the trim: its effect follows.
    let mut after = 0;
    wait_until(10.0, "the resident set back to its settled size", || {
        after = rss_kib(pid);
        after <= settled + 256
    });
    eprintln!("settled {settled} KiB, after 5 status and a trim {after} KiB");
    assert_stays_idle(&d, "the daemon woke up again after giving memory back");
    assert_eq!(trims(), before + 1, "one trim for the burst");
}

/// A client polling `status` every 200 ms pauses longer than the trimmer's
/// quiet time after every request: the daemon trimmed after each one (and
/// each request refaulted what the trim dropped), 5 trims a second for as
/// long as the poller ran. At most `BURST` (8) trims for growth per 10 s.
#[test]
fn a_steady_poller_does_not_make_it_trim_after_every_request() {
    let d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    numprocs: 100\n    starttime: 0\n",
        "",
        &[("RUST_LOG", "debug")],
    );
    let trims = || d.log_text().matches("giving back unused pages").count();
    wait_until(30.0, "100 RUNNING", || {
        d.status().iter().all(|p| p["state"] == "RUNNING")
    });
    assert_stays_idle(&d, "the daemon woke up after boot");
    let before = trims();
    let start = std::time::Instant::now();
    let mut polls = 0;
    // The poller's pace (what is measured), not a synchronisation.
    while start.elapsed() < Duration::from_secs(5) {
        assert!(d.cmd("status").ends_with("OK\n"));
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    let during = trims() - before;
    eprintln!("{polls} polls in 5 s, {during} trims");
    assert!(during <= 8, "{during} trims for {polls} polls in 5 s");
}
