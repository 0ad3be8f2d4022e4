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
