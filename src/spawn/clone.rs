//! Spawning without copying the daemon's descriptor table.
//!
//! At 1000 processes the daemon holds about 3000 descriptors (a pidfd and two
//! pipe ends per process). `posix_spawn` and `fork` give the child a copy of
//! that table, and its `exec` then closes every close-on-exec entry of the
//! copy: most of the cost of a spawn at that size (docs/benchmarks.md). Here
//! the child is a `clone(CLONE_VM | CLONE_FILES)`: it *shares*
//! the daemon's table, and its very first act on descriptors is
//! `close_range(FIRST, ~0, CLOSE_RANGE_UNSHARE)`, with which the kernel gives
//! it a private table holding only the descriptors below FIRST: the standard
//! streams and three reserved low *slots*. Nothing else is copied, and `exec`
//! has nothing left to close.
//!
//! The slots: three `/dev/null` descriptors the daemon opens before anything
//! else (so they are small numbers, normally 3, 4 and 5) and keeps for its
//! life. For a spawn the parent `dup3`s the child's stdout and stderr into
//! slots 1 and 2 (a terminal goes into both, and stdin is taken from slot 1),
//! and puts `/dev/null` back once the child has gone its way: otherwise the
//! daemon would keep a pipe's write end open and never see its EOF. Slot 0 is
//! always `/dev/null` (the stdin of pipe children, the source of the restore).
//!
//! The same dance as glibc's own `posix_spawn`: all signals blocked in the
//! parent around the `clone` (the child runs in the daemon's memory, so a
//! daemon handler running in it would set the daemon's flags), the child
//! resets every handled signal to the default before unblocking, then
//! `exec`s. The parent waits until the child has `exec`ed or exited (the
//! kernel clears a word and wakes its futex then: `CLONE_CHILD_CLEARTID`),
//! as `CLONE_VFORK` would, but for at most two seconds: a child that has
//! become its program's `user` can be stopped by that user before its exec,
//! and is then killed rather than left to freeze the daemon. A failing child
//! leaves (step, errno) in memory shared with the parent, which reaps it and
//! turns that into the `status` reason.
//!
//! The child runs on a stack mapped once (with a guard page) and reused: one
//! spawn at a time (a lock; the daemon has one thread anyway). It neither
//! allocates nor takes a lock, and makes raw system calls only: glibc's
//! `setuid` & co. would try to broadcast the change to the daemon's threads.
//!
//! Needs Linux 5.9 (`CLOSE_RANGE_UNSHARE`): a throwaway child tries it once;
//! without it (or with `TASKMASTER_NO_CLONE_SPAWN=1`) spawn.rs uses std's
//! `Command` instead.

use super::setup::{ChildSetup, STEP_CHDIR, STEP_FDS};
use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, PoisonError};

/// The child's stack: it runs a few plain system calls (no allocation, no
/// formatting), far less than this even in a debug build.
const STACK_SIZE: usize = 64 * 1024;
/// Signals are numbered 1..=64 on Linux.
const NSIG: usize = 64;
/// The longest a child may take from `clone` to `exec` before it is killed
/// (a few microseconds normally; seconds only if it was stopped).
pub const EXEC_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);
/// The failure code of a child killed for missing [`EXEC_DEADLINE`].
const HUNG: i32 = -1;

/// Everything the child needs, built before the clone.
pub struct Request<'a> {
    pub path: &'a CStr,
    /// Null-terminated, like `envp`.
    pub argv: &'a [*const c_char],
    pub envp: &'a [*const c_char],
    pub io: Io<'a>,
    pub workingdir: Option<&'a CStr>,
    pub umask: Option<libc::mode_t>,
    /// `setpgid(0, 0)`; otherwise `setup` makes a session of its own.
    pub own_group: bool,
    pub setup: &'a ChildSetup,
}

/// The child's standard streams; stdin is `/dev/null` for pipes.
#[derive(Clone, Copy)]
pub enum Io<'a> {
    Pipes {
        stdout: BorrowedFd<'a>,
        stderr: BorrowedFd<'a>,
    },
    Pty(BorrowedFd<'a>),
}

/// Why a spawn failed.
#[derive(Debug)]
pub enum Failed {
    /// In the daemon (`clone` itself, or a slot could not be filled).
    Parent(io::Error),
    /// In the child: `step << 16 | errno` (setup.rs's encoding; step 0 is `execve`).
    Child(i32),
    /// The child did not get to `exec` within [`EXEC_DEADLINE`] (stopped by a
    /// signal): it was killed.
    Hung,
}

struct State {
    slots: Option<[RawFd; 3]>,
    /// The top of the child's stack (0: not mapped yet).
    stack_top: usize,
    /// Whether `CLOSE_RANGE_UNSHARE` works here (None: not tried yet).
    usable: Option<bool>,
}

static STATE: Mutex<State> = Mutex::new(State {
    slots: None,
    stack_top: 0,
    usable: None,
});

/// What the parent and the child share (the child runs in the parent's memory).
struct Shared<'a> {
    req: Option<&'a Request<'a>>,
    slots: [RawFd; 3],
    /// Signals with a handler (or ignored) in the daemon: default in the child.
    handled: [c_int; NSIG],
    handled_len: usize,
    /// The child's failure, 0 if it got to `exec`.
    failure: AtomicI32,
}

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the slots now, while the daemon's descriptors are few (the first
/// thing taskmasterd does). Later calls do nothing.
pub fn reserve_slots() -> io::Result<[RawFd; 3]> {
    let mut st = state();
    slots(&mut st)
}

fn slots(st: &mut State) -> io::Result<[RawFd; 3]> {
    if let Some(s) = st.slots {
        return Ok(s);
    }
    let mut s = [-1; 3];
    let mut n = 0;
    while n < 3 {
        // SAFETY: open of a constant path; the fd is ours from here on.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            for fd in &s[..n] {
                // SAFETY: closing fds this function opened.
                unsafe { libc::close(*fd) };
            }
            return Err(e);
        }
        // 0, 1 or 2 were closed when we started: that /dev/null stays there
        // (better than a later file landing on a standard stream); the
        // child's dup2 onto 0..2 must not be a no-op on a close-on-exec slot.
        if fd > 2 {
            s[n] = fd;
            n += 1;
        }
    }
    st.slots = Some(s);
    Ok(s)
}

/// Whether spawns go through `spawn` here (first call: maps the stack and
/// tries `CLOSE_RANGE_UNSHARE` in a throwaway child).
pub fn usable() -> bool {
    let mut st = state();
    if let Some(u) = st.usable {
        return u;
    }
    if std::env::var_os("TASKMASTER_NO_CLONE_SPAWN").is_some_and(|v| v == "1") {
        st.usable = Some(false);
        return false;
    }
    // Mapping the stack or the clone itself failing (out of memory, the pid
    // limit) may pass: this spawn takes the other path, the next one asks
    // again. Only the kernel refusing the unshare is an answer for good.
    let Some(u) = prepare(&mut st).ok().and_then(|()| probe(&st)) else {
        return false;
    };
    if !u {
        log::info!("spawning with std's posix_spawn/fork (no CLOSE_RANGE_UNSHARE)");
    }
    st.usable = Some(u);
    u
}

fn prepare(st: &mut State) -> io::Result<()> {
    slots(st)?;
    if st.stack_top == 0 {
        let page = 4096;
        // SAFETY: a fresh private anonymous mapping, never unmapped (it is
        // reused by every spawn for the daemon's life).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE + page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The stack grows down: its lowest page faults instead of letting an
        // overflow write into whatever is mapped below.
        // SAFETY: the first page of the mapping made above.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        st.stack_top = base as usize + STACK_SIZE + page;
    }
    Ok(())
}

/// A child that only unshares its table and exits: whether that worked, or
/// None if no child could be made.
fn probe(st: &State) -> Option<bool> {
    let slots = st.slots?;
    let shared = Shared {
        req: None,
        slots,
        handled: [0; NSIG],
        handled_len: 0,
        failure: AtomicI32::new(0),
    };
    match run_child(st, shared) {
        Ok((pid, 0)) => Some(reap(pid) == Some(0)),
        Ok((pid, _)) => {
            reap(pid);
            Some(false)
        }
        Err(_) => None,
    }
}

/// Starts `req`'s process; its pid, or why not.
pub fn spawn(req: &Request) -> Result<i32, Failed> {
    let st = state();
    let Some(slots @ [r0, r1, r2]) = st.slots.filter(|_| st.stack_top != 0) else {
        return Err(Failed::Parent(io::Error::other("spawner not prepared")));
    };
    let (out, err) = match req.io {
        Io::Pipes { stdout, stderr } => (stdout, stderr),
        Io::Pty(t) => (t, t),
    };
    let mut shared = Shared {
        req: Some(req),
        slots,
        handled: [0; NSIG],
        handled_len: 0,
        failure: AtomicI32::new(0),
    };
    // Asked now, not cached: whatever installed a handler since the last spawn.
    for sig in 1..=NSIG as c_int {
        // SAFETY: a query (null new action) into a zeroed struct of ours.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) };
        if rc == 0 && old.sa_sigaction != libc::SIG_DFL {
            shared.handled[shared.handled_len] = sig;
            shared.handled_len += 1;
        }
    }
    // SAFETY: dup3 onto our own slots; they stay open whatever happens.
    let filled = unsafe {
        libc::dup3(out.as_raw_fd(), r1, libc::O_CLOEXEC) >= 0
            && libc::dup3(err.as_raw_fd(), r2, libc::O_CLOEXEC) >= 0
    };
    let result = if filled {
        run_child(&st, shared)
    } else {
        Err(io::Error::last_os_error())
    };
    // The daemon must not keep the write ends (or the terminal) open.
    // SAFETY: as above; r0 is always /dev/null.
    unsafe {
        libc::dup3(r0, r1, libc::O_CLOEXEC);
        libc::dup3(r0, r2, libc::O_CLOEXEC);
    }
    match result {
        Ok((pid, 0)) => Ok(pid),
        Ok((pid, HUNG)) => {
            reap(pid);
            Err(Failed::Hung)
        }
        Ok((pid, code)) => {
            reap(pid);
            Err(Failed::Child(code))
        }
        Err(e) => Err(Failed::Parent(e)),
    }
}

/// The clone itself: (pid, the child's failure code).
fn run_child(st: &State, shared: Shared) -> io::Result<(i32, i32)> {
    // SAFETY: sigset operations on local sets.
    let (mut all, mut old): (libc::sigset_t, libc::sigset_t) = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
    }
    // Cleared (and woken) by the kernel when the child leaves our memory:
    // at its exec, or at its exit (CLONE_CHILD_CLEARTID).
    let in_our_memory = AtomicI32::new(1);
    // SAFETY: with CLONE_VM the child runs `child` on the dedicated stack, in
    // our memory. This thread does nothing but wait (`wait_released`) until
    // the child has exec'ed or exited (or, past the deadline, been killed), so
    // `shared` and the request it points to outlive every use the child makes
    // of them, and nothing here runs concurrently with it (the daemon has one
    // thread; the lock serialises other callers and the stack). The child
    // allocates nothing and takes no lock, so no state it shares with us can
    // be left half-changed; all signals are blocked until it has reset the
    // daemon's handlers.
    let pid = unsafe {
        libc::clone(
            child,
            st.stack_top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_FILES | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD,
            &shared as *const Shared as *mut c_void,
            std::ptr::null_mut::<libc::pid_t>(),
            std::ptr::null_mut::<c_void>(),
            in_our_memory.as_ptr(),
        )
    };
    let e = io::Error::last_os_error();
    let hung = pid > 0 && !wait_released(pid, &in_our_memory);
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(e);
    }
    if hung {
        return Ok((pid, HUNG));
    }
    Ok((pid, shared.failure.load(Ordering::Acquire)))
}

/// Waits until the child no longer runs in our memory; false if it had to be
/// killed for not getting there within [`EXEC_DEADLINE`].
///
/// Not CLONE_VFORK, whose wait has no limit: a child that has switched to its
/// program's `user` may be sent SIGSTOP by any process of that user before it
/// gets to `exec`, and the daemon would stay frozen until someone continued it.
///
/// The child shares our errno (same memory, same thread pointer): the futex
/// call here sets it only when the child has left already (EAGAIN) or at the
/// deadline (ETIMEDOUT), after which the child's own failure code is not used.
fn wait_released(pid: i32, word: &AtomicI32) -> bool {
    let limit = std::time::Instant::now() + EXEC_DEADLINE;
    let mut late = false;
    while word.load(Ordering::Acquire) != 0 {
        let left = limit.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() && !late {
            late = true;
            // SAFETY: our own child, not reaped yet; it dies even if stopped,
            // and its exit clears the word.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let ts = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos() as libc::c_long,
        };
        // Once it is killed, no timeout: its exit is near.
        let timeout = if late {
            std::ptr::null()
        } else {
            &ts as *const libc::timespec
        };
        // SAFETY: a futex wait on a word that lives until we return. Woken,
        // EAGAIN (the word changed) and ETIMEDOUT all lead back to the check.
        unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, 1, timeout) };
    }
    !late
}

/// Reaps a child that failed before `exec`: its exit code.
fn reap(pid: i32) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            return libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        }
        if rc < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return None;
        }
    }
}

/// The child: runs in the daemon's memory until `execve`.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `Shared`, alive while the parent waits
    // for this child to leave its memory (`wait_released`), i.e. for as long
    // as this function runs.
    let shared = unsafe { &*(arg as *const Shared) };
    let code = unsafe { child_steps(shared) };
    shared.failure.store(code.max(1), Ordering::Release);
    // SAFETY: ends this process without running any of the daemon's exit code.
    unsafe { libc::_exit(127) }
}

/// The steps between clone and exec; returns only on failure (its code).
/// Only async-signal-safe system calls; no allocation, no lock, no panic.
unsafe fn child_steps(sh: &Shared) -> i32 {
    let errno = || io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let fail = |step: i32| step << 16 | errno();
    // The daemon's handlers would run in the daemon's memory: default first.
    let mut dfl: libc::sigaction = std::mem::zeroed();
    dfl.sa_sigaction = libc::SIG_DFL;
    for &sig in &sh.handled[..sh.handled_len] {
        libc::sigaction(sig, &dfl, std::ptr::null_mut());
    }
    // Before this, the table is the daemon's: nothing may touch it.
    let first = (sh.slots[2] + 1) as u32;
    if libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_UNSHARE as c_int) != 0 {
        return fail(STEP_FDS);
    }
    let Some(req) = sh.req else {
        // The probe: unsharing worked.
        libc::_exit(0)
    };
    let [r0, r1, r2] = sh.slots;
    let stdin = match req.io {
        Io::Pipes { .. } => r0,
        Io::Pty(_) => r1,
    };
    for (from, to) in [(stdin, 0), (r1, 1), (r2, 2)] {
        if libc::dup2(from, to) < 0 {
            return fail(STEP_FDS);
        }
    }
    // The slots (close-on-exec anyway): exec then has nothing to close.
    libc::close_range(3, u32::MAX, 0);
    if req.own_group && libc::setpgid(0, 0) != 0 {
        return errno();
    }
    if let Some(dir) = req.workingdir {
        if libc::chdir(dir.as_ptr()) != 0 {
            return fail(STEP_CHDIR);
        }
    }
    if let Some(mask) = req.umask {
        libc::umask(mask);
    }
    if let Err(e) = req.setup.apply() {
        return e.raw_os_error().unwrap_or(0);
    }
    // A program starts with nothing blocked (the daemon blocks nothing either).
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    libc::execve(req.path.as_ptr(), req.argv.as_ptr(), req.envp.as_ptr());
    errno()
}

#[cfg(test)]
#[path = "clone_tests.rs"]
mod tests;
