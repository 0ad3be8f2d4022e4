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
    let pid = d.child.as_ref().unwrap().id();
    // Wait until the closes above have been handled: no change for 300 ms.
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
    assert_eq!(wakeups(pid), before, "the daemon woke up while idle");
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
    assert_eq!(
        wakeups(pid),
        before,
        "a probe woke the daemon after RUNNING"
    );
}
