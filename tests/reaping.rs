//! Both ways of learning about child exits: pidfd (default) and SIGCHLD + waitpid.
mod common;
use common::*;

fn exercise(env: &[(&str, &str)], via: &str) {
    let d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 0.1\n  q:\n    cmd: \"sh -c 'exit 7'\"\n    startretries: 0\n",
        "",
        env,
    );
    d.wait_log(&format!("child exits via {via}"), 5.0);
    d.wait_state("q:0", "FATAL", 5.0);
    for i in 0..3 {
        d.wait_state(&format!("s:{i}"), "RUNNING", 5.0);
    }
    let old: Vec<i32> = (0..3).map(|i| d.pid(&format!("s:{i}")).unwrap()).collect();
    for p in &old {
        unsafe { libc::kill(*p, libc::SIGKILL) };
    }
    for (i, p) in old.iter().enumerate() {
        let name = format!("s:{i}");
        wait_until(5.0, "replacement", || d.pid(&name).is_some_and(|n| n != *p));
        assert_gone(*p);
    }
    assert_eq!(
        d.cmd("stop s"),
        "s:0: stopped\ns:1: stopped\ns:2: stopped\nOK\n"
    );
    // No zombies left among the daemon's children.
    let daemon = d.child.as_ref().unwrap().id();
    let kids = std::fs::read_to_string(format!("/proc/{daemon}/task/{daemon}/children"))
        .unwrap_or_default();
    assert_eq!(kids.trim(), "", "children left: {kids}");
}

#[test]
fn pidfd_path() {
    exercise(&[], "pidfd");
}

#[test]
fn sigchld_fallback_path() {
    exercise(&[("TASKMASTER_NO_PIDFD", "1")], "SIGCHLD");
}

/// A child whose pidfd could not be opened (EMFILE, an old kernel) is still
/// reaped by the SIGCHLD sweep: restarted after a kill, stoppable, and
/// shutdown ends. `TASKMASTER_TEST_PIDFD_EMFILE` makes pidfd_open fail in
/// debug builds, as no fd limit can arrange for one live child.
#[test]
fn a_child_without_a_pidfd_is_still_reaped() {
    let mut d = Daemon::start_with(
        "  s:\n    cmd: sleep 100\n    starttime: 0\n",
        "",
        &[("TASKMASTER_TEST_PIDFD_EMFILE", "1")],
    );
    d.wait_state("s:0", "RUNNING", 5.0);
    d.wait_log("no pidfd for pid", 5.0);
    let old = d.pid("s:0").unwrap();
    unsafe { libc::kill(old, libc::SIGKILL) };
    wait_until(5.0, "a replacement", || {
        d.pid("s:0").is_some_and(|n| n != old)
    });
    assert_gone(old);
    assert_eq!(d.cmd("stop s"), "s:0: stopped\nOK\n");
    assert_eq!(d.cmd("start s"), "s:0: started\nOK\n");
    let last = d.pid("s:0").unwrap();
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(10.0).success());
    assert_gone(last);
}

/// Orphans re-parented to the daemon (it is their subreaper) are reaped.
#[test]
fn orphans_of_children_are_reaped() {
    let d = Daemon::start(
        "  forker:\n    cmd: \"sh -c 'while :; do (sleep 0.01 &) ; sleep 0.02; done'\"\n    starttime: 0\n",
    );
    d.wait_state("forker:0", "RUNNING", 5.0);
    let daemon = d.child.as_ref().unwrap().id();
    let zombies = || {
        let kids = std::fs::read_to_string(format!("/proc/{daemon}/task/{daemon}/children"))
            .unwrap_or_default();
        kids.split_whitespace()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| {
                        s.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('Z')
                    })
                    .unwrap_or(false)
            })
            .count()
    };
    // Orphans keep dying for a while; zombies must never pile up.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(2);
    let mut worst = 0;
    while std::time::Instant::now() < until {
        worst = worst.max(zombies());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(worst <= 3, "up to {worst} zombies of the daemon at once");
    assert!(d.log_text().contains("forker:0: spawned"));
}
