//! The terminal during `attach`: raw mode that is always undone, and the
//! signals that could otherwise end taskmasterctl with the terminal raw.
//!
//! In raw mode the keyboard sends no signals (Ctrl-C is a byte for the
//! process), but SIGTERM, SIGHUP (the terminal closed) and a SIGINT from
//! `kill` still come. While the terminal is raw they only wake the copy loop,
//! which restores the terminal and then lets the signal do what it would
//! have done. Outside raw mode they keep their usual effect.

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// The signals handled, in the order `fired` reports them.
const TRAPPED: [i32; 3] = [SIGTERM, SIGHUP, SIGINT];

/// Handlers installed once per process (they cannot be removed without
/// leaving the signal ignored), switched by flags.
pub struct Traps {
    /// Readable when a trapped signal came.
    wake: UnixStream,
    /// Which of `TRAPPED` came.
    got: [Arc<AtomicBool>; 3],
    /// SIGTERM and SIGHUP take their default action (outside raw mode).
    term_default: Arc<AtomicBool>,
    /// SIGINT takes its default action: outside raw mode, unless the shell
    /// handles SIGINT itself.
    int_default: Arc<AtomicBool>,
    int_outside: AtomicBool,
}

static TRAPS: OnceLock<Result<Traps, String>> = OnceLock::new();

impl Traps {
    /// The process's traps, installed on first use. `shell_handles_sigint`:
    /// SIGINT is a request to the shell, not a reason to die.
    pub fn get(shell_handles_sigint: bool) -> Result<&'static Traps, String> {
        let traps = TRAPS
            .get_or_init(|| Traps::install(!shell_handles_sigint).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| format!("cannot handle signals: {e}"))?;
        traps
            .int_outside
            .store(!shell_handles_sigint, Ordering::SeqCst);
        traps.release();
        // Signals that came before this attach are not for it.
        traps.fired();
        Ok(traps)
    }

    fn install(int_default: bool) -> std::io::Result<Traps> {
        let (wake, tx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let traps = Traps {
            wake,
            got: Default::default(),
            // True before the handlers exist: no moment without the default.
            term_default: Arc::new(AtomicBool::new(true)),
            int_default: Arc::new(AtomicBool::new(int_default)),
            int_outside: AtomicBool::new(int_default),
        };
        for (sig, got) in TRAPPED.iter().zip(&traps.got) {
            let default = match *sig {
                SIGINT => traps.int_default.clone(),
                _ => traps.term_default.clone(),
            };
            // The flag before the wake-up, so the loop finds what woke it.
            signal_hook::flag::register(*sig, got.clone())?;
            signal_hook::low_level::pipe::register(*sig, tx.try_clone()?)?;
            signal_hook::flag::register_conditional_default(*sig, default)?;
        }
        Ok(traps)
    }

    /// From now on the signals only wake the loop.
    fn hold(&self) {
        self.term_default.store(false, Ordering::SeqCst);
        self.int_default.store(false, Ordering::SeqCst);
    }

    /// The signals act as usual again.
    fn release(&self) {
        self.term_default.store(true, Ordering::SeqCst);
        let int = self.int_outside.load(Ordering::SeqCst);
        self.int_default.store(int, Ordering::SeqCst);
    }

    /// The descriptor that becomes readable when a signal came.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// The signal that came since the last call, if any; clears the wake-up.
    pub fn fired(&self) -> Option<i32> {
        let mut buf = [0u8; 64];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
        let mut first = None;
        for (sig, got) in TRAPPED.iter().zip(&self.got) {
            if got.swap(false, Ordering::SeqCst) && first.is_none() {
                first = Some(*sig);
            }
        }
        first
    }
}

/// Raw mode on stdin's terminal until dropped.
pub struct RawMode {
    saved: Termios,
    traps: &'static Traps,
}

impl RawMode {
    pub fn enter(traps: &'static Traps) -> nix::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        // Held before the terminal goes raw, released after it is restored:
        // a signal never finds it raw with its default action armed.
        traps.hold();
        if let Err(e) = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw) {
            traps.release();
            return Err(e);
        }
        Ok(RawMode { saved, traps })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal is gone (SIGHUP).
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
        self.traps.release();
    }
}

/// Stdin's terminal size as (rows, cols), if it has one.
pub fn window_size() -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data; all zeroes is a valid value.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize to the pointer, which is valid.
    let r = unsafe { libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Ends taskmasterctl as `sig` would have, now that the terminal is restored.
pub fn die_of(sig: i32) -> i32 {
    let _ = signal_hook::low_level::emulate_default_handler(sig);
    // Only reached if the default action does not end the process.
    128 + sig
}
