//! Hostile review of probes: checks that must not outlive their probe, and
//! probes that fire while the daemon shuts down.
mod common;
use common::*;

/// A health-check command in flight when its process stops (or restarts) is
/// ended with its probe: a stopped process is checked no more, and stop/start
/// cycles must not pile up hung commands until their (long) timeouts.
#[test]
fn a_probe_command_in_flight_ends_with_its_probe() {
    const ARGV: [&str; 2] = ["sleep", "7341.25"];
    let d = Daemon::start(
        "  h:\n    cmd: sleep 100\n    starttime: 0\n    healthcheck: {command: \"sleep 7341.25\", interval: 0.1, timeout: 300}\n",
    );
    d.wait_state("h:0", "RUNNING", 20.0);
    wait_until(20.0, "a health command to run", || {
        !running(&ARGV).is_empty()
    });
    for _ in 0..3 {
        assert!(d.cmd("restart h").contains("h:0: started"));
        wait_until(20.0, "the new pid's health command", || {
            !running(&ARGV).is_empty()
        });
        // The old pid's check ended with it: only the live process's runs.
        wait_until(10.0, "at most one health command", || {
            running(&ARGV).len() <= 1
        });
    }
    assert_eq!(d.cmd("stop h"), "h:0: stopped\nOK\n");
    wait_until(
        10.0,
        "the health command of a stopped process to end",
        || running(&ARGV).is_empty(),
    );
}

/// During shutdown a dependency's stop is held while its dependents stop, so
/// it is still RUNNING and still checked. If it is then found unhealthy (or
/// crashes) it is stopped for good, never restarted by the restart rules.
#[test]
fn a_held_dependency_that_ends_during_shutdown_is_not_restarted() {
    let d = Daemon::configure("", "");
    let ok = d.path("ok");
    std::fs::write(&ok, "").unwrap();
    let programs = format!(
        "  db:\n    cmd: sleep 100\n    starttime: 0\n    healthcheck: {{command: \"test -e {ok}\", interval: 0.1, retries: 1}}\n\
         \x20 cache:\n    cmd: sh -c 'while [ -e {ok} ]; do sleep 0.05; done; exit 1'\n    starttime: 0\n\
         \x20 web:\n    cmd: sh -c 'trap \"\" TERM; while :; do sleep 0.1; done'\n    depends_on: [db, cache]\n    starttime: 0\n    stoptime: 60\n",
        ok = ok.display()
    );
    let text = std::fs::read_to_string(&d.conf).unwrap() + &programs;
    std::fs::write(&d.conf, text).unwrap();
    let mut d = d.launch(&[]);
    d.wait_state("web:0", "RUNNING", 20.0);
    d.signal(libc::SIGTERM);
    // web ignores SIGTERM for 60 s: db and cache are held RUNNING meanwhile.
    d.wait_log("web:0: sending SIGTERM", 20.0);
    std::fs::remove_file(&ok).unwrap();
    d.wait_log("db:0: STOPPING -> STOPPED", 30.0);
    d.wait_log("cache:0: STOPPING -> STOPPED", 30.0);
    let log = d.log_text();
    for p in ["db", "cache"] {
        let spawns = log.matches(&format!("{p}:0: spawned pid")).count();
        assert_eq!(spawns, 1, "{p} respawned during shutdown:\n{log}");
    }
    // A second signal ends web's stoptime at once.
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(30.0).success());
}

/// A reload that removes `ready:` from a STARTING process with `starttime: 0`
/// (no bound) must not leave it STARTING forever: with neither a probe nor a
/// starttime, it is RUNNING at once, as if just spawned so.
#[test]
fn reload_removing_ready_ends_starting() {
    let d = Daemon::configure("", "");
    let never = d.path("never");
    let with = format!(
        "  a:\n    cmd: sleep 100\n    starttime: 0\n    ready: {{file: {}, interval: 0.1}}\n",
        never.display()
    );
    let head = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, head.clone() + &with).unwrap();
    let d = d.launch(&[]);
    d.wait_state("a:0", "STARTING", 20.0);
    let pid = d.pid("a:0");
    std::fs::write(
        &d.conf,
        head + "  a:\n    cmd: sleep 100\n    starttime: 0\n",
    )
    .unwrap();
    assert!(d.cmd("reload").contains("updated a (ready)"));
    d.wait_state("a:0", "RUNNING", 20.0);
    assert_eq!(d.pid("a:0"), pid, "applied in place, no restart");
}

/// A check command that leaves a child in its process group (`cmd &`) must
/// not leak it: one more each interval would exhaust the pids in time.
#[test]
fn what_a_check_command_leaves_in_its_group_ends_with_it() {
    const ARGV: [&str; 2] = ["sleep", "7342.5"];
    let d = Daemon::start(
        "  a:\n    cmd: sleep 100\n    starttime: 0\n    healthcheck: {command: \"sh -c 'sleep 7342.5 & exit 0'\", interval: 0.1}\n",
    );
    d.wait_state("a:0", "RUNNING", 20.0);
    // Twenty checks or so.
    wait_until(20.0, "uptime 2s", || {
        d.proc("a:0")["uptime_s"].as_u64().unwrap_or(0) >= 2
    });
    assert_eq!(d.proc("a:0")["healthy"], true);
    wait_until(10.0, "at most the child of the check in flight", || {
        running(&ARGV).len() <= 1
    });
}
