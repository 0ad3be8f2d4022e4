//! stopsignal, stoptime → SIGKILL, whole process trees.
mod common;
use common::*;

#[test]
fn stopsignal_is_honoured() {
    let d = Daemon::start(
        "  u:\n    cmd: \"sh -c 'trap \\\"echo got USR1 > caught; exit 0\\\" USR1; while :; do sleep 0.1; done'\"\n    workingdir: .\n    stopsignal: USR1\n    starttime: 0.2\n",
    );
    d.wait_state("u:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("stop u"), "u:0: stopped\nOK\n");
    assert_eq!(
        std::fs::read_to_string(d.path("caught")).unwrap(),
        "got USR1\n"
    );
    let p = d.proc("u:0");
    assert_eq!(
        (p["state"].as_str(), p["exit_code"].as_i64()),
        (Some("STOPPED"), Some(0))
    );
    assert_eq!(d.cmd("stop u"), "u:0: already stopped\nOK\n");
    assert!(d
        .log_text()
        .contains("u:0: sending SIGUSR1 to process group"));
}

#[test]
fn term_ignoring_child_is_killed_after_stoptime_and_supervision_goes_on() {
    let d = Daemon::start(
        "  stubborn:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    stoptime: 0.5\n    starttime: 0.2\n",
    );
    d.wait_state("stubborn:0", "RUNNING", 5.0);
    let pid = d.pid("stubborn:0").unwrap();
    let t0 = std::time::Instant::now();
    assert_eq!(d.cmd("stop stubborn"), "stubborn:0: stopped\nOK\n");
    assert!(t0.elapsed().as_secs_f64() >= 0.45, "waited for stoptime");
    assert!(!alive(pid));
    // The group got SIGKILL when the leader was reaped: it dies at once, but
    // the kernel may take a moment to tear it down.
    wait_until(5.0, "the group to be gone", || {
        group_members(pid).is_empty()
    });
    assert_eq!(d.proc("stubborn:0")["signal"], "SIGKILL");
    assert!(d
        .log_text()
        .contains("stubborn:0: sending SIGKILL to process group"));
    // Still supervising normally.
    assert_eq!(d.cmd("start stubborn"), "stubborn:0: started\nOK\n");
    assert_ne!(d.pid("stubborn:0"), Some(pid));
    assert_eq!(d.cmd("restart stubborn"), "stubborn:0: started\nOK\n");
}

#[test]
fn a_stopped_tree_leaves_nothing_behind() {
    let d = Daemon::start(
        "  tree:\n    cmd: \"sh -c 'sleep 100 & sleep 100 & wait'\"\n    starttime: 0.2\n",
    );
    d.wait_state("tree:0", "RUNNING", 5.0);
    let pgid = d.pid("tree:0").unwrap();
    wait_until(5.0, "the two sleeps", || group_members(pgid).len() == 3);
    assert_eq!(d.cmd("stop tree"), "tree:0: stopped\nOK\n");
    wait_until(5.0, "an empty group", || group_members(pgid).is_empty());
}

#[test]
fn leftover_group_members_are_killed_when_the_leader_stops() {
    // The leader exits on TERM at once; its child ignores TERM and keeps looping.
    let d = Daemon::configure(
        "  lead:\n    cmd: sh lead.sh\n    workingdir: .\n    starttime: 0.2\n",
        "",
    );
    std::fs::write(
        d.path("child.sh"),
        "trap '' TERM\nwhile :; do sleep 0.1; done\n",
    )
    .unwrap();
    std::fs::write(
        d.path("lead.sh"),
        "sh child.sh &\ntrap 'exit 0' TERM\nwhile :; do sleep 0.1; done\n",
    )
    .unwrap();
    let d = d.launch(&[]);
    d.wait_state("lead:0", "RUNNING", 5.0);
    let pgid = d.pid("lead:0").unwrap();
    wait_until(5.0, "the child", || group_members(pgid).len() >= 2);
    assert_eq!(d.cmd("stop lead"), "lead:0: stopped\nOK\n");
    assert_eq!(
        d.proc("lead:0")["exit_code"],
        0,
        "the leader exited by itself"
    );
    wait_until(5.0, "an empty group", || group_members(pgid).is_empty());
}

#[test]
fn stop_cancels_backoff_and_pending_restarts() {
    let d = Daemon::start("  f:\n    cmd: \"sh -c 'exit 1'\"\n    startretries: 5\n");
    d.wait_state("f:0", "BACKOFF", 5.0);
    assert_eq!(d.cmd("stop f"), "f:0: stopped\nOK\n");
    assert_eq!(d.state("f:0"), "STOPPED");
}
