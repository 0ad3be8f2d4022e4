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
