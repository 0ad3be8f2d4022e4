//! numprocs, autostart, starttime promotion, startretries → FATAL, spawn errors.
mod common;
use common::*;

#[test]
fn numprocs_and_autostart() {
    let d = Daemon::start(
        "  many:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 0\n  lazy:\n    cmd: sleep 100\n    autostart: false\n",
    );
    for i in 0..3 {
        d.wait_state(&format!("many:{i}"), "RUNNING", 5.0);
    }
    let pids: std::collections::HashSet<_> = (0..3)
        .map(|i| d.pid(&format!("many:{i}")).unwrap())
        .collect();
    assert_eq!(pids.len(), 3);
    assert_eq!(d.state("lazy:0"), "NOT_STARTED");
    assert_eq!(d.proc("lazy:0")["pid"], serde_json::Value::Null);
    let reply = d.cmd("start lazy");
    assert_eq!(reply, "lazy:0: started\nOK\n");
    assert_eq!(d.state("lazy:0"), "RUNNING");
    assert_eq!(d.cmd("start lazy:0"), "lazy:0: already running\nOK\n");
}

#[test]
fn starttime_promotes_to_running() {
    let d = Daemon::start("  slow:\n    cmd: sleep 100\n    starttime: 0.6\n");
    wait_until(5.0, "a pid", || d.pid("slow:0").is_some());
    assert_eq!(d.state("slow:0"), "STARTING", "still inside starttime");
    d.wait_state("slow:0", "RUNNING", 5.0);
    let log = d.log_text();
    assert!(log.contains("slow:0: STARTING -> RUNNING"), "{log}");
}

#[test]
fn startretries_then_fatal_with_exact_spawn_count() {
    let d = Daemon::start(
        "  bad:\n    cmd: \"sh -c 'echo spawn >> spawns; exit 4'\"\n    workingdir: .\n    startretries: 2\n    starttime: 1\n",
    );
    d.wait_state("bad:0", "FATAL", 10.0);
    assert_eq!(
        file_lines(&d.path("spawns")),
        3,
        "startretries: 2 = 3 spawns"
    );
    let p = d.proc("bad:0");
    assert_eq!(p["exit_code"], 4);
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.starts_with("gave up after 3 attempts: exited too quickly (exit status 4)"),
        "{msg}"
    );
    let log = d.log_text();
    assert!(
        log.contains("bad:0: STARTING -> BACKOFF (exited too quickly (exit status 4); retry in"),
        "{log}"
    );
    assert!(
        log.contains("bad:0: STARTING -> FATAL (gave up after 3 attempts"),
        "{log}"
    );
    // FATAL stays FATAL; a user start leaves it (and fails again, reported as such).
    let reply = d.cmd("start bad");
    assert!(reply.starts_with("bad:0: failed: BACKOFF"), "{reply}");
    assert!(reply.ends_with("ERR 1 failed\n"), "{reply}");
}

#[test]
fn missing_binary_is_a_clean_fatal_with_its_reason() {
    let d = Daemon::start(
        "  ghost:\n    cmd: /nonexistent/bin/ghost --flag\n    startretries: 1\n  nopath:\n    cmd: no-such-command-xyz\n    startretries: 0\n  baddir:\n    cmd: sleep 1\n    workingdir: /nonexistent/dir\n    startretries: 0\n",
    );
    d.wait_state("ghost:0", "FATAL", 10.0);
    d.wait_state("nopath:0", "FATAL", 5.0);
    d.wait_state("baddir:0", "FATAL", 5.0);
    let msg = |n: &str| d.proc(n)["message"].as_str().unwrap().to_string();
    assert!(msg("ghost:0").contains("gave up after 2 attempts: spawn error: /nonexistent/bin/ghost: no such executable file"), "{}", msg("ghost:0"));
    assert!(
        msg("nopath:0").contains("no-such-command-xyz: command not found in PATH"),
        "{}",
        msg("nopath:0")
    );
    assert!(
        msg("baddir:0").contains("workingdir /nonexistent/dir: not a directory"),
        "{}",
        msg("baddir:0")
    );
    let human = d.cmd("status ghost");
    assert!(
        human.contains("ghost:0  FATAL") && human.contains("no such executable file"),
        "{human}"
    );
}
