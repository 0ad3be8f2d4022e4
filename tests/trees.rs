//! Whole process trees: the daemon is the subreaper of everything it starts,
//! so descendants that leave their process group (setsid, job control) are
//! still reaped, killed with the process they came from, and gone after
//! shutdown. Runs as root on the test machines; as anyone else, prints why
//! and passes without checking (another user's processes may be around).
mod common;
use common::*;
use std::time::{Duration, Instant};

fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, runs as root only (the test machines do)");
    }
    root
}

/// The daemon's children and how many of them are zombies.
fn children(d: &Daemon) -> (Vec<i32>, usize) {
    let daemon = d.child.as_ref().expect("running").id();
    let text = std::fs::read_to_string(format!("/proc/{daemon}/task/{daemon}/children"))
        .unwrap_or_default();
    let kids: Vec<i32> = text
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    let zombies = kids
        .iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
        })
        .count();
    (kids, zombies)
}

/// A script in the daemon's folder, run by `sh`.
fn with_script(programs: &str, script: &str) -> Daemon {
    let d = Daemon::configure(programs, "");
    std::fs::write(d.path("tree.sh"), script).unwrap();
    let conf = std::fs::read_to_string(&d.conf).unwrap();
    let dir = d.dir.path().display().to_string();
    std::fs::write(&d.conf, conf.replace("DIR", &dir)).unwrap();
    d.launch(&[])
}

#[test]
fn nothing_survives_shutdown_however_deep() {
    if !root_or_skip("nothing_survives_shutdown_however_deep") {
        return;
    }
    let mut d = with_script(
        "  t:\n    cmd: sh DIR/tree.sh\n    starttime: 0.2\n    stoptime: 2\n",
        // A session of its own with children of its own, and a double fork
        // orphaned at once: neither is in the program's process group.
        "setsid sh -c 'sleep 7711 & sleep 7712 & wait' &\n\
         setsid sh -c 'sleep 7713 &'\n\
         exec sleep 100\n",
    );
    d.wait_state("t:0", "RUNNING", 5.0);
    wait_until(5.0, "the whole tree", || {
        [7711, 7712, 7713]
            .iter()
            .all(|n| running(&["sleep", &n.to_string()]).len() == 1)
    });
    let daemon = d.child.as_ref().unwrap().id();
    let orphan = running(&["sleep", "7713"])[0];
    assert_eq!(
        parent_of(orphan),
        Some(daemon as i32),
        "adopted by the subreaper"
    );
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(10.0).success());
    for n in [7711, 7712, 7713] {
        let left = running(&["sleep", &n.to_string()]);
        assert!(left.is_empty(), "sleep {n} survived shutdown: {left:?}");
    }
    d.wait_log("descendant(s) that had left their process group", 1.0);
}

#[test]
fn a_stop_kills_adopted_descendants_left_in_its_group() {
    if !root_or_skip("a_stop_kills_adopted_descendants_left_in_its_group") {
        return;
    }
    // The background sleep ignores SIGTERM and outlives its parent, the
    // leader: adopted by the daemon, still in the program's group.
    let d = with_script(
        "  t:\n    cmd: sh DIR/tree.sh\n    starttime: 0.2\n    stoptime: 30\n",
        "(trap '' TERM; exec sleep 7721) &\nexec sleep 100\n",
    );
    d.wait_state("t:0", "RUNNING", 5.0);
    wait_until(5.0, "sleep 7721", || running(&["sleep", "7721"]).len() == 1);
    let t = Instant::now();
    assert_eq!(d.cmd("stop t"), "t:0: stopped\nOK\n");
    wait_until(5.0, "sleep 7721 killed with its group", || {
        running(&["sleep", "7721"]).is_empty()
    });
    assert!(t.elapsed() < Duration::from_secs(20), "not after stoptime");
    d.wait_log(
        "killed 1 descendant(s) left in its process group or session",
        2.0,
    );
    wait_until(5.0, "reaped", || children(&d).0.is_empty());
}

#[test]
fn a_stop_kills_adopted_descendants_left_in_its_session() {
    if !root_or_skip("a_stop_kills_adopted_descendants_left_in_its_session") {
        return;
    }
    // On a terminal the program has a session of its own; `set -m` puts the
    // background job in a group of its own inside it (job control), where
    // the group signals do not reach it.
    let d = with_script(
        "  t:\n    cmd: sh DIR/tree.sh\n    attach: true\n    starttime: 0.2\n    stoptime: 30\n",
        "set -m\nsleep 7731 &\nexec sleep 100\n",
    );
    d.wait_state("t:0", "RUNNING", 5.0);
    wait_until(5.0, "sleep 7731", || running(&["sleep", "7731"]).len() == 1);
    assert_eq!(d.cmd("stop t"), "t:0: stopped\nOK\n");
    wait_until(5.0, "sleep 7731 killed with its session", || {
        running(&["sleep", "7731"]).is_empty()
    });
    wait_until(5.0, "reaped", || children(&d).0.is_empty());
}

/// A program forking orphans in a loop for `secs`: no zombie accumulates.
fn orphan_churn(env: &[(&str, &str)], via: &str, number: u32) {
    let d = Daemon::start_with(
        &format!(
            "  churn:\n    cmd: \"sh -c 'while :; do sh -c \\\"sleep 0.0{number} & sleep 0.0{number} &\\\"; sleep 0.02; done'\"\n    starttime: 0.2\n"
        ),
        "",
        env,
    );
    d.wait_log(&format!("child exits via {via}"), 5.0);
    d.wait_state("churn:0", "RUNNING", 5.0);
    let end = Instant::now() + Duration::from_secs(20);
    let mut worst = 0;
    while Instant::now() < end {
        worst = worst.max(children(&d).1);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Without reaping, 20 s of this leaves over a thousand.
    assert!(worst <= 20, "{worst} zombies at once under the daemon");
    assert_eq!(d.state("churn:0"), "RUNNING");
    assert_eq!(d.cmd("stop churn"), "churn:0: stopped\nOK\n");
    wait_until(5.0, "no child left, zombie or not", || {
        children(&d).0.is_empty()
    });
}

#[test]
fn orphan_churn_leaves_no_zombie_pidfd() {
    if root_or_skip("orphan_churn_leaves_no_zombie_pidfd") {
        orphan_churn(&[], "pidfd", 1);
    }
}

#[test]
fn orphan_churn_leaves_no_zombie_sigchld() {
    if root_or_skip("orphan_churn_leaves_no_zombie_sigchld") {
        orphan_churn(&[("TASKMASTER_NO_PIDFD", "1")], "SIGCHLD", 2);
    }
}
