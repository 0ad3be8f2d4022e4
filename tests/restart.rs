//! autorestart against exitcodes, kill -9, and the crash-loop delay.
mod common;
use common::*;

/// A program that runs `secs` then exits with `code`.
fn exiting(name: &str, policy: &str, code: i32) -> String {
    format!(
        "  {name}:\n    cmd: \"sh -c 'sleep 0.4; exit {code}'\"\n    starttime: 0.1\n    autorestart: {policy}\n    exitcodes: [0, 2]\n"
    )
}

#[test]
fn each_policy_against_exitcodes() {
    let progs = [
        exiting("never_bad", "never", 1),
        exiting("unexp_ok", "unexpected", 2),
        exiting("unexp_bad", "unexpected", 3),
        exiting("always_ok", "always", 0),
    ]
    .concat();
    let d = Daemon::start(&progs);
    d.wait_state("never_bad:0", "EXITED_UNEXPECTEDLY", 5.0);
    d.wait_state("unexp_ok:0", "EXITED_EXPECTEDLY", 5.0);
    let p = d.proc("never_bad:0");
    assert_eq!(p["exit_code"], 1);
    assert_eq!(p["restarts"], 0);
    assert_eq!(d.proc("unexp_ok:0")["exit_code"], 2);
    // The restarting ones come back with a new pid and a counted restart.
    for name in ["unexp_bad:0", "always_ok:0"] {
        wait_until(5.0, &format!("{name} restarted"), || {
            d.proc(name)["restarts"].as_u64() >= Some(1)
        });
    }
    assert!(d
        .log_text()
        .contains("unexp_bad:0: RUNNING -> STARTING (exit status 3, unexpected; restarted)"));
    // The ones that were not restarted stay exited.
    assert_eq!(d.state("never_bad:0"), "EXITED_UNEXPECTEDLY");
    assert_eq!(d.state("unexp_ok:0"), "EXITED_EXPECTEDLY");
}

#[test]
fn kill_9_is_restarted_with_a_new_pid() {
    let d = Daemon::start("  s:\n    cmd: sleep 100\n    starttime: 0.2\n");
    d.wait_state("s:0", "RUNNING", 5.0);
    let pid = d.pid("s:0").unwrap();
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_until(5.0, "a new pid", || d.pid("s:0").is_some_and(|p| p != pid));
    let p = d.proc("s:0");
    assert_eq!(p["signal"], "SIGKILL");
    assert_eq!(p["exit_code"], serde_json::Value::Null);
    assert_eq!(p["restarts"], 1);
    d.wait_state("s:0", "RUNNING", 5.0);
    assert!(d.log_text().contains("exited: killed by SIGKILL"));
}

#[test]
fn crash_loop_after_running_is_delayed_not_endless() {
    let counter = "count";
    let d = Daemon::configure(
        &format!("  c:\n    cmd: \"sh -c 'echo x >> {counter}; sleep 0.2; exit 1'\"\n    starttime: 0.05\n    workingdir: .\n"),
        "",
    )
    .launch(&[]);
    // First quick exit: restarted at once; second: waits about 1 s meanwhile
    // showing EXITED_UNEXPECTEDLY with "restarting in".
    wait_until(5.0, "the delayed restart", || {
        let p = d.proc("c:0");
        p["state"] == "EXITED_UNEXPECTEDLY"
            && p["message"]
                .as_str()
                .unwrap_or("")
                .contains("restarting in")
    });
    let spawns = file_lines(&d.path(counter));
    assert_eq!(spawns, 2, "two spawns before the first delay");
    assert_ne!(d.state("c:0"), "FATAL");
}
