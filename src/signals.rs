//! Signal names: the config accepts `TERM`, `SIGTERM`, `term` or `15`; the protocol
//! and the log always print the `SIGTERM` form.

use nix::sys::signal::Signal;

/// Parses a signal given by name (any case, with or without `SIG`) or number.
pub fn parse(text: &str) -> Option<Signal> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    // Aliases nix does not spell the same way.
    let full = match full.as_str() {
        "SIGPOLL" => "SIGIO".to_string(),
        "SIGIOT" => "SIGABRT".to_string(),
        "SIGCLD" => "SIGCHLD".to_string(),
        _ => full,
    };
    Signal::iterator().find(|s| s.as_str() == full)
}

/// `SIGTERM` for 15; a number for anything nix does not know (real-time signals).
pub fn name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for t in ["TERM", "SIGTERM", "term", "SigTerm", "15", " TERM "] {
            assert_eq!(parse(t), Some(Signal::SIGTERM), "{t}");
        }
        assert_eq!(parse("USR1"), Some(Signal::SIGUSR1));
        assert_eq!(parse("poll"), Some(Signal::SIGIO));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("99"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn names() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(40), "signal 40");
    }
}

extern "C" fn nothing(_: libc::c_int) {}

/// SIGTTIN and SIGTTOU must not stop the daemon. They are caught by a handler
/// that does nothing, installed *without* SA_RESTART: a background write to
/// the terminal under `stty tostop` then fails with EINTR (the echo drops the
/// line) instead of being restarted into the same signal forever. Not blocked
/// and not ignored: children would inherit either; a handler is reset by exec.
pub fn catch_job_control_stops() {
    for sig in [libc::SIGTTIN, libc::SIGTTOU] {
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as *const () as usize;
            sa.sa_flags = 0;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
}

/// Fault signals: a real fault must still end the daemon (with a core dump),
/// but the same signal *sent* by another process (`kill -SEGV`) must not. A
/// handler tells the two apart by `si_code` and reports sent ones through
/// its own self-pipe, so the loop logs them.
pub mod faults {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::sync::atomic::{AtomicI32, Ordering};

    pub const GUARDED: [i32; 7] = [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
        libc::SIGTRAP,
        libc::SIGSYS,
    ];

    static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

    extern "C" fn guard(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // si_code <= 0 (SI_USER, SI_QUEUE, SI_TKILL…): sent by a process, not
        // a fault; sent by ourselves (abort()) it must still end us.
        let sent = !info.is_null()
            && unsafe { (*info).si_code <= 0 && (*info).si_pid() != libc::getpid() };
        if sent {
            let fd = PIPE_WRITE.load(Ordering::Relaxed);
            let byte = sig as u8;
            // Async-signal-safe; a full pipe only loses a log line.
            unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
            return;
        }
        // A real fault (or abort()): the default action, which the return
        // re-triggers (the faulting instruction runs again; abort re-raises).
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }

    /// Installs the guard; returns the read end of its pipe (non-blocking).
    pub fn install() -> std::io::Result<OwnedFd> {
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        PIPE_WRITE.store(fds[1], Ordering::Relaxed);
        let read = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        for sig in GUARDED {
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = guard as *const () as usize;
                sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        Ok(read)
    }

    /// The signal numbers reported since the last call.
    pub fn drain(fd: &OwnedFd) -> Vec<i32> {
        use std::os::fd::AsRawFd;
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend(buf[..n as usize].iter().map(|b| i32::from(*b)));
        }
    }
}
