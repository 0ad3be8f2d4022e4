//! Knowing when children die: pidfds for speed, SIGCHLD + waitpid as the
//! backstop that never misses an exit, and group checks for what a leader
//! leaves behind.
//!
//! Both paths may report the same child; whichever reaps it first wins and the
//! other finds nothing (ECHILD), so the supervisor's exit handling is idempotent.
//! The daemon is a child subreaper: orphans of its children are re-parented to
//! it, so the sweep reaps them (no zombie stays) and their death wakes the loop,
//! which is how an emptied process group is noticed without polling.

use crate::state::Exit;
use nix::sys::signal::{killpg, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

/// Most children reaped per sweep; the rest wait for the next turn of the loop
/// (the caller asks again at once) so an orphan storm cannot starve clients.
pub const SWEEP_BATCH: usize = 1024;

/// A pidfd for `pid` (close-on-exec by definition).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // Test hook, debug builds only: the regression test of "one child without
    // a pidfd is still reaped" needs pidfd_open to fail for a live child, which
    // no fd limit can arrange (spawning needs more fds than pidfd_open does).
    if cfg!(debug_assertions) && std::env::var_os("TASKMASTER_TEST_PIDFD_EMFILE").is_some() {
        return Err(io::Error::from_raw_os_error(libc::EMFILE));
    }
    raw_pidfd_open(pid)
}

fn raw_pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Whether pidfds work end to end: pidfd_open exists (5.3) *and* waitid
/// accepts P_PIDFD (5.4). A pidfd of ourselves is not our child, so a kernel
/// that knows P_PIDFD answers ECHILD; one that does not answers EINVAL.
pub fn pidfd_supported() -> bool {
    let Ok(fd) = raw_pidfd_open(std::process::id() as i32) else {
        return false;
    };
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG;
    matches!(
        waitid(Id::PIDFd(fd.as_fd()), flags),
        Err(nix::errno::Errno::ECHILD)
    )
}

/// Makes the daemon the reaper of its children's orphans.
pub fn become_subreaper() -> io::Result<()> {
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn to_exit(ws: WaitStatus) -> Option<(i32, Exit)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), Exit::Code(code))),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), Exit::Signal(sig as i32))),
        _ => None,
    }
}

/// Reaps the process behind `pidfd` if it has exited. `None` also when the
/// sweep reaped it first (ECHILD): it has been reported then.
pub fn reap_pidfd(pidfd: &OwnedFd) -> Option<Exit> {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG;
    waitid(Id::PIDFd(pidfd.as_fd()), flags)
        .ok()
        .and_then(to_exit)
        .map(|(_, e)| e)
}

/// Reaps up to `SWEEP_BATCH` exited children (ours and adopted orphans).
/// Returns them and whether more may be waiting.
pub fn sweep() -> (Vec<(i32, Exit)>, bool) {
    let mut out = Vec::new();
    while out.len() < SWEEP_BATCH {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return (out, false),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return (out, false),
            Ok(ws) => out.extend(to_exit(ws)),
        }
    }
    (out, true)
}

/// Whether any process (a zombie included) is still in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    // Signal 0 checks existence and permission without sending anything.
    matches!(unsafe { libc::kill(-pgid, 0) }, 0)
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Sends `sig` to the whole process group `pgid`. A group already gone is fine.
pub fn signal_group(pgid: i32, sig: i32) {
    if let Ok(s) = Signal::try_from(sig) {
        let _ = killpg(Pid::from_raw(pgid), s);
    }
}

/// The daemon's children, adopted orphans included (zombies too, until
/// reaped). A pid listed here stays ours until we reap it, so signalling it
/// can never hit a stranger that reused the number.
pub fn children() -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in tasks.flatten() {
        match std::fs::read_to_string(task.path().join("children")) {
            Ok(text) => out.extend(
                text.split_whitespace()
                    .filter_map(|t| t.parse::<i32>().ok()),
            ),
            // A kernel without CONFIG_PROC_CHILDREN: find them by parent.
            Err(_) => return children_by_scan(),
        }
    }
    out
}

fn children_by_scan() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| stat_ids(*pid).is_some_and(|ids| ids.ppid == me))
        .collect()
}

struct StatIds {
    ppid: i32,
    pgrp: i32,
    session: i32,
}

/// Parent, process group and session of `pid`, from /proc/PID/stat.
fn stat_ids(pid: i32) -> Option<StatIds> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last `)`.
    let mut f = stat.rsplit_once(')')?.1.split_whitespace().skip(1);
    let mut next = || f.next()?.parse().ok();
    Some(StatIds {
        ppid: next()?,
        pgrp: next()?,
        session: next()?,
    })
}

/// SIGKILLs the daemon's children (re-parented descendants) that are still
/// in process group or session `id` of one of `groups` (`(id, name)`), or
/// carry that name in their environment, except those `tracked` says are
/// supervised processes. Returns the pids killed, per group. All groups are
/// checked in one pass over the children: at shutdown a thousand groups end
/// within a few turns, and a pass per group would read the children list a
/// thousand times.
pub fn kill_strays(groups: &[(i32, String)], tracked: impl Fn(i32) -> bool) -> Vec<Vec<i32>> {
    let mut killed = vec![Vec::new(); groups.len()];
    let markers: Vec<String> = groups
        .iter()
        .map(|(_, name)| format!("{}={name}", crate::spawn::PROCESS_NAME_VAR))
        .collect();
    for pid in children() {
        if tracked(pid) {
            continue;
        }
        let ids = stat_ids(pid);
        let mut owner = groups.iter().position(|(id, _)| {
            ids.as_ref()
                .is_some_and(|s| s.pgrp == *id || s.session == *id)
        });
        if owner.is_none() {
            owner = environ_of(pid).and_then(|env| {
                let entries: Vec<&[u8]> = env.split(|b| *b == 0).collect();
                groups
                    .iter()
                    .zip(&markers)
                    .position(|((_, name), m)| !name.is_empty() && entries.contains(&m.as_bytes()))
            });
        }
        if let Some(i) = owner {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            killed[i].push(pid);
        }
    }
    killed
}

/// `pid`'s environment as it was at exec (`KEY=value`, NUL-separated).
fn environ_of(pid: i32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/environ")).ok()
}

/// Longest shutdown waits for killed descendants (one stuck in the kernel,
/// D state, must not keep the daemon from exiting).
const END_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// At shutdown, once every supervised process is down: SIGKILL every child
/// left (descendants that left their group, with setsid or setpgid, and were
/// re-parented to us), reap them, and again for the ones their deaths
/// re-parent to us, until none is left or `END_WAIT` passes. Returns how many
/// were killed and whether some are left.
pub fn end_descendants() -> (usize, bool) {
    let deadline = std::time::Instant::now() + END_WAIT;
    // Killed and not yet reaped (zombies stay listed until then).
    let mut dying = std::collections::HashSet::new();
    let mut count = 0;
    loop {
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Err(nix::errno::Errno::ECHILD) => return (count, false),
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::EINVAL) => break,
                Ok(ws) => {
                    if let Some(pid) = ws.pid() {
                        dying.remove(&pid.as_raw());
                    }
                }
                Err(_) => {}
            }
        }
        for pid in children() {
            if dying.insert(pid) {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                count += 1;
            }
        }
        if std::time::Instant::now() >= deadline {
            return (count, true);
        }
        // They die within the scheduler's next turns; poll the kernel
        // briefly rather than block in waitpid on one that may never die.
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}
