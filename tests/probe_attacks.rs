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
