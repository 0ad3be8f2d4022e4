//! Output floods get big pipes (1 MiB) only up to a total: kernel pipe memory
//! cannot be pinned and counts against the daemon user's pipe quota, so 400
//! flooding children once held 400 MiB of it (and a daemon run as a user
//! spent that user's quota, which then shrinks every new pipe of that user).
mod common;
use common::*;
use std::time::{Duration, Instant};

/// The capacity of the pipe `pid` writes its stdout into.
fn stdout_pipe_size(pid: i32) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/1"))
        .ok()?;
    let n = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETPIPE_SZ) };
    (n > 0).then_some(n)
}

use std::os::unix::fs::OpenOptionsExt;

#[test]
fn at_most_sixteen_floods_get_a_big_pipe() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (/proc/PID/fd of the children)");
        return;
    }
    let d = Daemon::start("  y:\n    cmd: yes\n    numprocs: 32\n    starttime: 0\n");
    let pids = || -> Vec<i32> { (0..32).filter_map(|i| d.pid(&format!("y:{i}"))).collect() };
    wait_until(30.0, "32 floods", || pids().len() == 32);
    let pids = pids();
    let big = || {
        (pids.iter())
            .filter(|p| stdout_pipe_size(**p).is_some_and(|n| n >= 1 << 20))
            .count()
    };
    // Some grow (they are floods), never more than the cap; watched for a
    // while, since growth is up to when each stream outruns a turn.
    wait_until(60.0, "a big pipe", || big() > 0);
    let end = Instant::now() + Duration::from_secs(5);
    let mut most = 0;
    while Instant::now() < end {
        most = most.max(big());
        assert!(most <= 16, "{most} big pipes");
        // Sampling, not synchronisation: a pause between two looks.
        std::thread::sleep(Duration::from_millis(50));
    }
    // Everything still flows: a reply comes while they flood.
    assert!(d.cmd("status y:0").contains("RUNNING"));
}

/// Many floods at once are read within one budget per turn (the streams left
/// wait in line): every byte still lands, in order, in each process's file,
/// and another client is still served meanwhile.
#[test]
fn many_floods_at_once_lose_nothing_and_leave_room_for_clients() {
    const N: usize = 24;
    const LINES: usize = 60_000;
    let d = Daemon::configure("", "");
    let mut programs = String::new();
    for i in 0..N {
        programs.push_str(&format!(
            "  f{i}:\n    cmd: seq {LINES}\n    starttime: 0\n    autorestart: never\n    stdout: {}\n",
            d.path(&format!("f{i}.out")).display()
        ));
    }
    let text = std::fs::read_to_string(&d.conf).unwrap() + &programs;
    std::fs::write(&d.conf, text).unwrap();
    let d = d.launch(&[]);
    let t = Instant::now();
    let mut slowest = Duration::ZERO;
    wait_until(60.0, "every flood to finish", || {
        let asked = Instant::now();
        let reply = d.cmd("status");
        slowest = slowest.max(asked.elapsed());
        reply.matches("EXITED").count() == N
    });
    let want: String = (1..=LINES).map(|n| format!("{n}\n")).collect();
    for i in 0..N {
        let got = std::fs::read_to_string(d.path(&format!("f{i}.out"))).unwrap();
        assert!(
            got == want,
            "f{i}: {} bytes, want {}",
            got.len(),
            want.len()
        );
    }
    eprintln!(
        "{N} floods of {} KiB in {:?}; slowest status {slowest:?}",
        want.len() / 1024,
        t.elapsed()
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a status waited {slowest:?}"
    );
}
