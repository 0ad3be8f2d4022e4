//! What a process leaves in its process group when it exits by itself is
//! stopped (stopsignal, then SIGKILL after stoptime) before the exit counts.
mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn orphans_do_not_pile_up_across_restarts_or_survive_shutdown() {
    let mut d = Daemon::start(
        "  leaky:\n    cmd: \"sh -c 'sleep 4441 & sleep 0.3; exit 1'\"\n    starttime: 0\n    stoptime: 2\n",
    );
    wait_until(20.0, "three restarts", || {
        d.proc("leaky:0")["restarts"].as_u64().unwrap_or(0) >= 3
    });
    let left = running(&["sleep", "4441"]);
    assert!(left.len() <= 1, "orphans piled up: {left:?}");
    assert!(d.log_text().contains("stopping what is left of its group"));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(10.0).success());
    wait_until(5.0, "no sleep 4441 left", || {
        running(&["sleep", "4441"]).is_empty()
    });
}

#[test]
fn a_leftover_that_ignores_the_stopsignal_is_killed_after_stoptime() {
    let d = Daemon::start(
        "  tough:\n    cmd: \"sh -c '(trap \\\"\\\" TERM; exec sleep 4442) & sleep 0.2; exit 3'\"\n    starttime: 0\n    stoptime: 1\n    autorestart: never\n",
    );
    d.wait_state("tough:0", "STOPPING", 5.0);
    let p = d.proc("tough:0");
    assert!(p["pid"].is_null(), "the leader is gone: {p}");
    assert!(
        p["message"].as_str().unwrap().contains("exit status 3"),
        "{p}"
    );
    assert_eq!(
        running(&["sleep", "4442"]).len(),
        1,
        "alive during stoptime"
    );
    let t = Instant::now();
    d.wait_state("tough:0", "EXITED_UNEXPECTEDLY", 5.0);
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "waited for stoptime"
    );
    assert_eq!(
        d.proc("tough:0")["exit_code"],
        3,
        "the leader's exit counts"
    );
    assert!(running(&["sleep", "4442"]).is_empty());
    d.wait_log("sending SIGKILL to process group", 1.0);
}

#[test]
fn stop_during_the_drain_stops_at_once() {
    let d = Daemon::start(
        "  tough:\n    cmd: \"sh -c '(trap \\\"\\\" TERM; exec sleep 4443) & sleep 0.2; exit 3'\"\n    starttime: 0\n    stoptime: 30\n",
    );
    d.wait_state("tough:0", "STOPPING", 5.0);
    assert_eq!(d.cmd("stop tough"), "tough:0: stopped\nOK\n");
    wait_until(5.0, "no sleep 4443 left", || {
        running(&["sleep", "4443"]).is_empty()
    });
    assert_eq!(d.state("tough:0"), "STOPPED");
}

/// A descendant that daemonized itself (fork, setsid, fork) left the group
/// and the session, but still carries its process's name in its environment
/// (`TASKMASTER_PROCESS_NAME`): it goes when that process stops.
#[test]
fn a_daemonized_descendant_goes_with_its_process_on_stop() {
    let d = Daemon::start(
        "  esc:\n    cmd: \"sh -c 'setsid sh -c \\\"sleep 4461 &\\\"; exec sleep 100'\"\n    starttime: 0\n",
    );
    d.wait_state("esc:0", "RUNNING", 5.0);
    wait_until(5.0, "the escaped sleep", || {
        running(&["sleep", "4461"]).len() == 1
    });
    let esc = running(&["sleep", "4461"])[0];
    let env = std::fs::read(format!("/proc/{esc}/environ")).unwrap();
    assert!(
        env.split(|b| *b == 0)
            .any(|e| e == b"TASKMASTER_PROCESS_NAME=esc:0"),
        "the name is in its environment"
    );
    assert_eq!(d.cmd("stop esc"), "esc:0: stopped\nOK\n");
    wait_until(5.0, "the escaped sleep to be gone", || !alive(esc));
}
