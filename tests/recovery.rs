//! Crash recovery: the groups a `kill -9`ed daemon left are ended by the next
//! one before it starts its own; a recorded pid now used by someone else is not.
mod common;
use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

/// A `sleep` duration no other test or process uses, so its processes can be
/// counted by their command line.
fn unique_sleep() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("9999.{}{nanos}", std::process::id())
}

/// Live processes whose command line is exactly `sleep ARG`.
fn count_sleeps(arg: &str) -> Vec<i32> {
    let want = format!("sleep\0{arg}\0");
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline == want.as_bytes() && alive(pid) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

fn start_time(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let rest = &stat[stat.rfind(')').expect("comm") + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[19].parse().expect("starttime")
}

#[test]
fn kill_9_then_restart_leaves_exactly_one_set() {
    let arg = unique_sleep();
    let prog = format!(
        "  s:\n    cmd: sleep {arg}\n    numprocs: 3\n    starttime: 0.1\n    stoptime: 2\n"
    );
    let mut d = Daemon::start(&prog);
    for n in ["s:0", "s:1", "s:2"] {
        d.wait_state(n, "RUNNING", 5.0);
    }
    let old = count_sleeps(&arg);
    assert_eq!(old.len(), 3, "{old:?}");
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    wait_until(5.0, "the state file to list 3 groups", || {
        std::fs::read_to_string(&state).is_ok_and(|t| t.lines().count() == 4)
    });
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    assert_eq!(count_sleeps(&arg), old, "the children survive a kill -9");
    d.relaunch(&[]);
    for n in ["s:0", "s:1", "s:2"] {
        d.wait_state(n, "RUNNING", 5.0);
    }
    let new = count_sleeps(&arg);
    assert_eq!(new.len(), 3, "exactly one set: {new:?}");
    for p in &old {
        assert!(!alive(*p), "old {p} still running");
    }
    let log = d.log_text();
    assert!(log.contains("crash recovery: s:0: process group"), "{log}");
    assert!(log.contains("ended 3 process groups"), "{log}");
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(10.0).success());
    assert!(count_sleeps(&arg).is_empty());
    assert!(!state.exists(), "a clean exit leaves no state file");
}

/// The state file follows replacements: a crashed process's group leaves
/// it and its replacement's enters it (the file is rewritten only when the
/// set of groups changes, so a missed change would leave it stale).
#[test]
fn the_state_file_follows_a_replacement() {
    let mut d = Daemon::start(
        "  s:\n    cmd: sleep 1000\n    numprocs: 2\n    starttime: 0\n    autorestart: always\n",
    );
    for n in ["s:0", "s:1"] {
        d.wait_state(n, "RUNNING", 5.0);
    }
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    let groups = || -> Vec<i32> {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        let mut g: Vec<i32> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        g.sort_unstable();
        g
    };
    let pids = |d: &Daemon| -> Vec<i32> {
        let mut p: Vec<i32> = ["s:0", "s:1"].iter().filter_map(|n| d.pid(n)).collect();
        p.sort_unstable();
        p
    };
    wait_until(5.0, "the state file to list both groups", || {
        groups() == pids(&d)
    });
    let old = d.pid("s:0").expect("pid");
    unsafe { libc::kill(old, libc::SIGKILL) };
    wait_until(10.0, "a replacement of s:0", || {
        d.pid("s:0").is_some_and(|p| p != old) && d.state("s:0") == "RUNNING"
    });
    wait_until(5.0, "the state file to list the replacement", || {
        let g = groups();
        g == pids(&d) && !g.contains(&old)
    });
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(10.0).success());
}

#[test]
fn a_group_that_ignores_its_stopsignal_is_killed_after_stoptime() {
    let prog = "  s:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    starttime: 0.1\n    stoptime: 0.5\n";
    let mut d = Daemon::start(prog);
    d.wait_state("s:0", "RUNNING", 5.0);
    let pid = d.pid("s:0").expect("pid");
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    assert!(alive(pid));
    d.relaunch(&[]);
    d.wait_log("ended 1 process groups", 10.0);
    wait_until(5.0, "the old group to be gone", || {
        !alive(pid) && group_members(pid).is_empty()
    });
    assert!(d.log_text().contains("still alive after 0.5s: SIGKILL"));
    // The daemon serves only after recovery: it answers, and starts its own.
    d.wait_state("s:0", "RUNNING", 5.0);
    assert_ne!(d.pid("s:0"), Some(pid));
}

#[test]
fn a_recorded_pid_used_by_another_process_is_left_alone() {
    // Stands for an unrelated process that got a recorded pid after a crash.
    let mut other = unrelated_sleep();
    let pid = other.id() as i32;
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let state = format!("{}.state", d.sock.display());
    let real = start_time(pid);
    std::fs::write(
        &state,
        format!("taskmaster-state 1\n{pid} {} 15 1000 a:0\n", real + 1),
    )
    .expect("write state");
    let mut d = d.launch(&[]);
    d.wait_log("names no live group", 5.0);
    assert!(alive(pid), "an unrelated process was hit");
    assert_eq!(d.cmd("shutdown"), "OK\n");
    d.wait_exit(10.0);
    // The same pid with its real start time is a survivor.
    std::fs::write(
        &state,
        format!("taskmaster-state 1\n{pid} {real} 15 1000 a:0\n"),
    )
    .expect("write state");
    d.relaunch(&[]);
    d.wait_log("ended 1 process groups", 10.0);
    let _ = other.wait();
    assert!(!alive(pid));
    assert_eq!(d.cmd("shutdown"), "OK\n");
    d.wait_exit(10.0);
    assert!(!std::path::Path::new(&state).exists());
}

/// A state file that someone else could have written is not believed: a
/// forged one would make the daemon kill a process it never started.
#[test]
fn a_state_file_others_could_write_is_ignored() {
    use std::os::unix::fs::PermissionsExt;
    let mut other = unrelated_sleep();
    let pid = other.id() as i32;
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let state = format!("{}.state", d.sock.display());
    std::fs::write(
        &state,
        format!("taskmaster-state 1\n{pid} {} 9 1 a:0\n", start_time(pid)),
    )
    .expect("write state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o666)).unwrap();
    let d = d.launch(&[]);
    d.wait_log("crash recovery: ignoring", 5.0);
    assert!(alive(pid), "a forged state file killed a process");
    let _ = other.kill();
    let _ = other.wait();
}

/// A process the daemon never started, in a group of its own.
fn unrelated_sleep() -> std::process::Child {
    Command::new("sleep")
        .arg("100")
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .expect("sleep")
}

#[test]
fn descendants_that_left_their_group_are_ended_too_and_only_ours() {
    let (x, y) = (unique_sleep(), unique_sleep());
    // `setsid sleep X` runs in a session (and group) of its own: the group
    // recorded for s:0 does not hold it, only its environment says whose it is.
    let prog = format!(
        "  s:\n    cmd: \"sh -c 'setsid sleep {x} & exec sleep {y}'\"\n    starttime: 0.1\n    stoptime: 2\n"
    );
    let mut d = Daemon::start(&prog);
    // Another daemon, another socket, the same program name: not ours.
    let other = Daemon::start(&prog);
    d.wait_state("s:0", "RUNNING", 5.0);
    other.wait_state("s:0", "RUNNING", 5.0);
    wait_until(5.0, "both escaped sleeps", || count_sleeps(&x).len() == 2);
    let before = count_sleeps(&x);
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    wait_until(5.0, "the state file", || state.exists());
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    d.relaunch(&[]);
    d.wait_state("s:0", "RUNNING", 5.0);
    d.wait_log("ended 2 process groups", 10.0);
    assert!(
        d.log_text().contains("left its process's group"),
        "{}",
        d.log_text()
    );
    let theirs = format!("TASKMASTER_SOCKET={}", other.sock.display());
    let of_other = |pid: &i32| {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == theirs.as_bytes()))
    };
    let (kept, ended): (Vec<i32>, Vec<i32>) = before.iter().partition(|p| of_other(p));
    assert_eq!((kept.len(), ended.len()), (1, 1), "{before:?}");
    assert!(!alive(ended[0]), "our escaped sleep survived recovery");
    assert!(
        alive(kept[0]),
        "the other daemon's escaped sleep was killed"
    );
    assert_eq!(other.cmd("status s").lines().count(), 2);
    assert!(other.cmd("status s").contains("RUNNING"));
}

/// Recovery may wait a whole stoptime before the loop runs: a SIGTERM then
/// must end it (what is left gets SIGKILL) and the daemon, without starting
/// the programs first and without waiting out the stoptime.
#[test]
fn sigterm_during_recovery_ends_it_at_once_and_starts_nothing() {
    let prog = "  s:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.2; done'\"\n    \
                starttime: 0.1\n    stoptime: 300\n";
    let mut d = Daemon::start(prog);
    d.wait_state("s:0", "RUNNING", 5.0);
    let pgid = d.pid("s:0").expect("pid");
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    wait_until(5.0, "the state file", || state.exists());
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    d.relaunch(&[]);
    d.wait_log("survived the previous daemon; sending SIGTERM", 10.0);
    d.signal(libc::SIGTERM);
    let status = d.wait_exit(20.0);
    assert_eq!(status.code(), Some(0));
    wait_until(10.0, "the old group to be gone", || {
        group_members(pgid).is_empty()
    });
    let log = d.log_text();
    assert_eq!(
        log.matches("spawned pid").count(),
        1,
        "nothing started: {log}"
    );
    assert!(!d.sock.exists(), "the socket is removed");
}

/// What a crashed daemon's hooks and probe commands left running is ended
/// too: they would otherwise run forever (their timeout died with the daemon)
/// beside the new daemon's own.
#[test]
fn kill_9_then_restart_ends_the_old_hook_and_probe_command() {
    let (hook, check) = (unique_sleep(), unique_sleep() + "1");
    let mut d = Daemon::start_with(
        &format!(
            "  p:\n    cmd: sleep 1000\n    starttime: 60\n    \
             ready: {{command: \"sleep {check}\", interval: 0.5, timeout: 60}}\n"
        ),
        &format!("report_events: [STARTING]\nreport_command: \"/bin/sleep {hook}\"\n"),
        &[],
    );
    let old_hook = format!("/bin/sleep\0{hook}\0");
    let hooks = || {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if cmdline == old_hook.as_bytes() && alive(pid) {
                out.push(pid);
            }
        }
        out
    };
    let mut old = Vec::new();
    wait_until(10.0, "the hook and the check to run", || {
        old = [hooks(), count_sleeps(&check)].concat();
        old.len() == 2
    });
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    wait_until(10.0, "the state file to list them", || {
        let text = std::fs::read_to_string(&state).unwrap_or_default();
        old.iter().all(|p| text.contains(&format!("\n{p} ")))
    });
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    d.relaunch(&[]);
    wait_until(10.0, "the old hook and check to be ended", || {
        old.iter().all(|p| !alive(*p))
    });
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(20.0).success());
}

/// During a shutdown the state file is not rewritten as groups end (at 1000
/// processes that was a 28 KiB file per turn): it may still list ended
/// groups. A daemon `kill -9`ed in the middle of a shutdown must still leave
/// its successor everything to end that survived, and the ended groups
/// listed must be skipped, not signalled.
#[test]
fn a_crash_during_shutdown_leaves_the_survivors_to_recovery() {
    let (quick, slow) = (unique_sleep(), unique_sleep());
    let prog = format!(
        "  quick:\n    cmd: sleep {quick}\n    numprocs: 3\n    starttime: 0\n  \
         stubborn:\n    cmd: sh -c 'trap \"\" TERM; exec sleep {slow}'\n    starttime: 0\n    \
         stoptime: 60\n"
    );
    let mut d = Daemon::start(&prog);
    for n in ["quick:0", "quick:1", "quick:2", "stubborn:0"] {
        d.wait_state(n, "RUNNING", 10.0);
    }
    let state = std::path::PathBuf::from(format!("{}.state", d.sock.display()));
    wait_until(5.0, "the state file to list 4 groups", || {
        std::fs::read_to_string(&state).is_ok_and(|t| t.lines().count() == 5)
    });
    let survivor = count_sleeps(&slow);
    assert_eq!(survivor.len(), 1, "{survivor:?}");
    d.signal(libc::SIGTERM);
    for n in ["quick:0", "quick:1", "quick:2"] {
        d.wait_log(&format!("{n}: STOPPING -> STOPPED"), 10.0);
    }
    assert!(count_sleeps(&quick).is_empty());
    let listed = std::fs::read_to_string(&state).expect("the state file during shutdown");
    assert!(
        listed.contains(&format!("{} ", survivor[0])),
        "the survivor's group is listed: {listed}"
    );
    d.signal(libc::SIGKILL);
    d.wait_exit(5.0);
    assert_eq!(count_sleeps(&slow), survivor, "it survives the kill -9");
    d.relaunch(&[]);
    // Recovery sends the stubborn group its SIGTERM (ignored) and would wait
    // its stoptime: a SIGTERM to the new daemon makes that a SIGKILL now.
    d.wait_log("stubborn:0: process group", 10.0);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(10.0).success());
    wait_until(5.0, "the survivor to be gone", || {
        count_sleeps(&slow).is_empty()
    });
    let log = d.log_text();
    assert!(!log.contains("crash recovery: quick:"), "{log}");
    assert!(!state.exists());
}
