//! Process output through the daemon: files, the in-memory tail, `tail -f`,
//! floods, `signal`, `pid`, `reopen`.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

#[test]
fn nothing_is_lost_at_exit() {
    let d = Daemon::start(
        "  counter:\n    cmd: \"seq 1 10000\"\n    workingdir: .\n    stdout: out.txt\n    starttime: 0\n    autorestart: never\n",
    );
    d.wait_state("counter:0", "EXITED_EXPECTEDLY", 10.0);
    let text = std::fs::read_to_string(d.path("out.txt")).unwrap();
    let want: String = (1..=10000).map(|i| format!("{i}\n")).collect();
    assert!(text == want, "{} bytes, want {}", text.len(), want.len());
    assert_eq!(
        d.cmd("tail -n 3 counter"),
        "9998\n9999\n10000\nOK\n",
        "the tail holds the end too"
    );
    // The output was read before the exit was logged.
    let log = d.log_text();
    let exit = log.find("counter:0: pid").unwrap();
    assert!(log[..exit].contains("counter:0: spawned"));
}

#[test]
fn tail_by_lines_partial_stderr_and_dot_stuffing() {
    let d = Daemon::start(
        "  talk:\n    cmd: \"sh -c 'printf \\\"a\\\\n.dot\\\\nOK\\\\nERR x\\\\r\\\\npartial\\\"; echo oops >&2; exec sleep 100'\"\n    starttime: 0\n",
    );
    d.wait_state("talk:0", "RUNNING", 5.0);
    wait_until(5.0, "the output", || d.cmd("tail talk").contains("partial"));
    // stderr is another pipe, read in its own turn: wait for it too.
    wait_until(5.0, "the stderr", || {
        d.cmd("tail talk stderr").contains("oops")
    });
    assert_eq!(d.cmd("tail talk:0"), "a\n..dot\n.OK\n.ERR x\npartial\nOK\n");
    assert_eq!(d.cmd("tail -n 2 talk"), ".ERR x\npartial\nOK\n");
    assert_eq!(d.cmd("tail talk stderr"), "oops\nOK\n");
    assert_eq!(d.cmd("tail nope"), "ERR unknown name: nope\n");
    // taskmasterctl removes the stuffing.
    let out = std::process::Command::new(CTL)
        .args(["-s", d.sock.to_str().unwrap(), "tail", "talk"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a\n.dot\nOK\nERR x\npartial\n"
    );
}

#[test]
fn tail_needs_one_process() {
    let d = Daemon::start("  two:\n    cmd: sleep 100\n    numprocs: 2\n    autostart: false\n");
    let r = d.cmd("tail two");
    assert!(r.starts_with("ERR two has 2 processes"), "{r}");
    assert_eq!(d.cmd("tail two:1"), "OK\n");
}

#[test]
fn tail_f_follows_across_restarts_until_a_line() {
    let d = Daemon::start(
        "  blink:\n    cmd: \"sh -c 'echo up $$; sleep 0.3; exit 1'\"\n    starttime: 0\n    autorestart: always\n",
    );
    d.wait_state("blink:0", "RUNNING", 5.0);
    let mut s = d.connect();
    s.write_all(b"tail -f -n 0 blink\n").unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut pids = std::collections::HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.len() < 3 && Instant::now() < deadline {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0);
        assert!(l.starts_with("up "), "{l:?}");
        pids.insert(l);
    }
    assert_eq!(pids.len(), 3, "lines from three incarnations");
    // Any line ends the follow; the connection goes on.
    s.write_all(b"\nstatus blink\n").unwrap();
    let mut rest = String::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0);
        if l == "OK\n" {
            break;
        }
        assert!(l.starts_with("up "), "{l:?}");
    }
    rest.push_str(&read_reply(&mut r));
    assert!(rest.starts_with("blink:0"), "{rest}");
}

/// A child writing as fast as it can costs bounded memory, does not slow other
/// clients, and a follower that does not read is dropped at 1 MiB.
#[test]
fn a_flood_is_bounded_and_a_slow_follower_dropped() {
    let d = Daemon::start(
        "  yes:\n    cmd: \"yes flood\"\n    workingdir: .\n    stdout: flood.txt\n    stdout_maxbytes: 1MB\n    stdout_backups: 2\n    starttime: 0\n  s:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("yes:0", "RUNNING", 5.0);
    let mut slow = d.connect();
    slow.write_all(b"tail -f yes\n").unwrap();
    let pid = d.child.as_ref().unwrap().id();
    let mut worst = Duration::ZERO;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let t = Instant::now();
        assert!(d.cmd("status s").starts_with("s:0  RUNNING"));
        worst = worst.max(t.elapsed());
    }
    assert!(worst < Duration::from_secs(1), "status took {worst:?}");
    assert!(rss_kib(pid) < 64 * 1024, "daemon RSS {} KiB", rss_kib(pid));
    d.wait_log("tail -f dropped, 1 MiB of output unread", 5.0);
    // Rotation kept the file and its backups near their limits (on a loaded
    // machine `yes` may need more than the 3 s above to fill two files).
    wait_until(30.0, "two rotations", || {
        std::fs::metadata(d.path("flood.txt.2")).is_ok_and(|m| m.len() > 0)
    });
    for f in ["flood.txt", "flood.txt.1", "flood.txt.2"] {
        let len = std::fs::metadata(d.path(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len <= 1024 * 1024 + 65536, "{f}: {len}");
        assert!(len > 0 || f == "flood.txt", "{f} is empty");
    }
    assert!(!d.path("flood.txt.3").exists());
}

#[test]
fn signal_and_pid() {
    let d = Daemon::start(
        "  trap:\n    cmd: \"sh -c 'trap \\\"echo got USR1\\\" USR1; while :; do sleep 0.1; done'\"\n    starttime: 0\n  off:\n    cmd: sleep 100\n    autostart: false\n",
    );
    d.wait_state("trap:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("signal USR1 trap"), "trap:0: signalled SIGUSR1\nOK\n");
    wait_until(5.0, "the trap", || d.cmd("tail trap").contains("got USR1"));
    assert_eq!(
        d.cmd("signal 10 trap off"),
        "off:0: not running\ntrap:0: signalled SIGUSR1\nERR 1 failed\n"
    );
    let pid = d.pid("trap:0").unwrap();
    assert_eq!(
        d.cmd("pid trap off"),
        format!("off:0 0\ntrap:0 {pid}\nOK\n")
    );
    let daemon = d.child.as_ref().unwrap().id();
    assert_eq!(d.cmd("pid"), format!("{daemon}\nOK\n"));
}

#[test]
fn reopen_after_an_external_rename() {
    let d = Daemon::start(
        "  tick:\n    cmd: \"sh -c 'while :; do echo tick; sleep 0.05; done'\"\n    workingdir: .\n    stdout: tick.txt\n    starttime: 0\n",
    );
    let file = d.path("tick.txt");
    wait_until(5.0, "output", || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() > 0)
    });
    std::fs::rename(&file, d.path("tick.txt.old")).unwrap();
    assert_eq!(d.cmd("reopen"), "OK\n");
    wait_until(5.0, "a new file", || {
        std::fs::metadata(&file).is_ok_and(|m| m.len() > 0)
    });
}

#[test]
fn redirect_stderr_joins_the_stdout_stream_and_file() {
    let d = Daemon::start(
        "  both:\n    cmd: \"sh -c 'echo one; echo two >&2; echo three; exec sleep 100'\"\n    workingdir: .\n    stdout: both.txt\n    redirect_stderr: true\n    starttime: 0\n",
    );
    wait_until(5.0, "three lines", || {
        d.cmd("tail both").lines().count() == 4
    });
    assert_eq!(d.cmd("tail both"), "one\ntwo\nthree\nOK\n");
    assert_eq!(d.cmd("tail both stderr"), "OK\n");
    wait_until(5.0, "the file", || {
        std::fs::read_to_string(d.path("both.txt")).is_ok_and(|t| t == "one\ntwo\nthree\n")
    });
}

/// Rotation limits are watch-only: a reload applies them to the running
/// process's file without restarting it.
#[test]
fn a_reload_applies_rotation_limits_in_place() {
    let prog = |max: &str| {
        format!("  tick:\n    cmd: \"sh -c 'while :; do echo 0123456789; sleep 0.01; done'\"\n    workingdir: .\n    stdout: tick.txt\n    stdout_maxbytes: {max}\n    stdout_backups: 1\n    starttime: 0\n")
    };
    let d = Daemon::start(&prog("0"));
    d.wait_state("tick:0", "RUNNING", 5.0);
    let pid = d.pid("tick:0");
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, text.replace(&prog("0"), &prog("1KB"))).unwrap();
    assert_eq!(d.cmd("reload"), "updated tick (stdout_maxbytes)\nOK\n");
    wait_until(5.0, "a rotation", || d.path("tick.txt.1").exists());
    assert_eq!(d.pid("tick:0"), pid, "not restarted");
    let len = std::fs::metadata(d.path("tick.txt.1")).unwrap().len();
    assert!(len <= 1024 + 512, "{len}");
}

/// The event log rotates by `logfile_maxbytes`, whole lines only.
#[test]
fn the_event_log_rotates() {
    let d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    starttime: 0\n",
        "logfile_maxbytes: 2KB\nlogfile_backups: 2\n",
        &[],
    );
    d.wait_state("s:0", "RUNNING", 5.0);
    for _ in 0..40 {
        assert_eq!(d.cmd("stop s"), "s:0: stopped\nOK\n");
        assert_eq!(d.cmd("start s"), "s:0: started\nOK\n");
    }
    let rotated = d.log.with_extension("log.1");
    assert!(rotated.exists() && d.log.with_extension("log.2").exists());
    assert!(!d.log.with_extension("log.3").exists());
    for f in [&d.log, &rotated] {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() <= 2048 + 512, "{}", text.len());
        assert!(text.ends_with('\n'), "whole lines only");
    }
}

/// Followers that never read, of a process writing as fast as it can, do not
/// slow other clients (one write per follower per read of the child).
#[test]
fn many_idle_followers_of_a_flood_do_not_stall_status() {
    let d = Daemon::start(
        "  yes:\n    cmd: \"yes\"\n    starttime: 0\n  s:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("yes:0", "RUNNING", 5.0);
    let followers: Vec<_> = (0..50)
        .map(|_| {
            let mut s = d.connect();
            s.write_all(b"tail -f yes\n").unwrap();
            s
        })
        .collect();
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        assert!(d.cmd("status s").starts_with("s:0  RUNNING"));
        worst = worst.max(t.elapsed());
    }
    assert!(worst < Duration::from_secs(1), "status took {worst:?}");
    drop(followers);
}

/// A process stopped with SIGSTOP is continued after its stopsignal, so a
/// `stop` does not have to wait for the SIGKILL.
#[test]
fn stop_of_a_sigstopped_process_is_quick() {
    let d = Daemon::start("  p:\n    cmd: sleep 100\n    starttime: 0\n    stoptime: 20\n");
    d.wait_state("p:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("signal STOP p"), "p:0: signalled SIGSTOP\nOK\n");
    let t = Instant::now();
    assert_eq!(d.cmd("stop p"), "p:0: stopped\nOK\n");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(d.proc("p:0")["signal"], "SIGTERM");
}

#[test]
fn followers_are_told_at_shutdown() {
    let mut d =
        Daemon::start("  p:\n    cmd: \"sh -c 'echo ready; exec sleep 100'\"\n    starttime: 0\n");
    wait_until(5.0, "output", || d.cmd("tail p").contains("ready"));
    let mut s = d.connect();
    s.write_all(b"tail -f -n 1 p\n").unwrap();
    let mut r = BufReader::new(s);
    let mut first = String::new();
    r.read_line(&mut first).unwrap();
    assert_eq!(first, "ready\n", "the follow is on");
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(10.0).success());
    assert_eq!(read_all(r), "ERR shutting down\n");
}
