//! The fd budget: `minfds` against RLIMIT_NOFILE, and clients that cannot
//! starve the children of file descriptors.
mod common;
use common::*;
use std::os::unix::net::UnixStream;
use std::time::Duration;

#[test]
fn a_hard_limit_below_minfds_is_refused_with_the_numbers() {
    let mut d = Daemon::configure("  s:\n    cmd: sleep 100\n", "");
    launch_limited(&mut d, 64, 64);
    let status = d.wait_exit(10.0);
    assert_eq!(status.code(), Some(1));
    let log = d.log_text();
    // 5 per process (fdlimit::PER_PROCESS) + 256.
    assert!(log.contains("261 file descriptors are needed"), "{log}");
    assert!(log.contains("the hard limit is 64"), "{log}");
}

/// With a low limit, the client table shrinks so that a flood of idle clients
/// cannot take the fds a crash-looping program needs to be respawned.
#[test]
fn idle_clients_never_starve_spawns() {
    let mut d = Daemon::configure(
        "  crash:\n    cmd: \"sh -c 'sleep 0.2; exit 3'\"\n    starttime: 0\n    autorestart: always\n",
        "minfds: 32\n",
    );
    launch_limited(&mut d, 64, 64);
    let sock = d.sock.clone();
    wait_until(10.0, "the socket", || UnixStream::connect(&sock).is_ok());
    let mut idle: Vec<UnixStream> = (0..200)
        .filter_map(|_| UnixStream::connect(&sock).ok())
        .collect();
    // Crash loops after RUNNING back off (at once, 1 s, 2 s…): wait for two
    // restarts, checking at every look that no spawn ran out of fds.
    wait_until(20.0, "two restarts", || {
        let p = d.proc("crash:0");
        let msg = p["message"].as_str().unwrap_or("").to_string();
        assert!(!msg.contains("Too many open files"), "{p}");
        assert_ne!(p["state"], "FATAL", "{p}");
        // Keep the pressure on: new connections all the time.
        idle.extend((0..20).filter_map(|_| UnixStream::connect(&sock).ok()));
        std::thread::sleep(Duration::from_millis(50));
        p["restarts"].as_u64().unwrap_or(0) >= 2
    });
    drop(idle);
}

/// Each process may hold five fds in the daemon (pidfd, two pipes, two
/// files): with a soft limit of 256 and room below the hard limit, 300
/// processes with output files all run.
#[test]
fn many_processes_with_output_files_all_run() {
    let mut d = Daemon::configure(
        "  w:\n    cmd: sleep 100\n    numprocs: 300\n    workingdir: .\n    stdout: \"w.out\"\n    stderr: \"w.err\"\n    starttime: 0\n",
        "",
    );
    launch_limited(&mut d, 256, 4096);
    let sock = d.sock.clone();
    wait_until(10.0, "the socket", || UnixStream::connect(&sock).is_ok());
    wait_until(30.0, "300 RUNNING", || {
        d.status()
            .iter()
            .filter(|p| p["state"] == "RUNNING")
            .count()
            == 300
    });
}
