//! systemd's readiness protocol, the daemon's side: `READY=1`, `RELOADING=1`,
//! `STOPPING=1` as datagrams to `$NOTIFY_SOCKET` (a path, or `@name` for the
//! abstract namespace).
//!
//! Never blocks the loop: the socket is non-blocking and a datagram that
//! cannot be sent now is dropped (systemd reads them at once; a full queue
//! means nobody does). Failures are logged once, not per message.
//!
//! `init` takes `NOTIFY_SOCKET` out of the environment before anything is
//! spawned: a child that inherited it could tell systemd the service is ready
//! or stopping on the daemon's behalf.

use log::warn;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

/// The address taken from the environment, and the socket, once made.
struct Target {
    name: Option<OsString>,
    socket: Option<(UnixDatagram, SocketAddr)>,
}

static TARGET: Mutex<Target> = Mutex::new(Target {
    name: None,
    socket: None,
});
/// A failure was logged already.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Takes `NOTIFY_SOCKET` out of the environment, for `send` to use.
pub fn init() {
    let name = std::env::var_os("NOTIFY_SOCKET").filter(|n| !n.is_empty());
    std::env::remove_var("NOTIFY_SOCKET");
    TARGET.lock().unwrap_or_else(PoisonError::into_inner).name = name;
}

/// The address `name` designates: `@x` is the abstract name `x`.
pub fn address(name: &OsString) -> std::io::Result<SocketAddr> {
    let bytes = name.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(abs) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abs)
        }
        None => SocketAddr::from_pathname(std::path::Path::new(name)),
    }
}

/// Sends `state` (lines of `KEY=VALUE`) if there is a `NOTIFY_SOCKET`.
pub fn send(state: &str) {
    let mut t = TARGET.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(name) = t.name.clone() else { return };
    if t.socket.is_none() {
        // Made at first use, when the event log exists to say what failed.
        let made = address(&name).and_then(|addr| {
            let s = UnixDatagram::unbound()?;
            s.set_nonblocking(true)?;
            Ok((s, addr))
        });
        match made {
            Ok(pair) => t.socket = Some(pair),
            Err(e) => return failed(&name, state, &e),
        }
    }
    if let Some((s, addr)) = &t.socket {
        if let Err(e) = s.send_to_addr(state.as_bytes(), addr) {
            failed(&name, state, &e);
        }
    }
}

fn failed(name: &OsString, state: &str, e: &std::io::Error) {
    if !FAILED.swap(true, Ordering::Relaxed) {
        let what = state.lines().next().unwrap_or_default();
        warn!(
            "NOTIFY_SOCKET {}: cannot send {what}: {e} (further failures are not logged)",
            name.to_string_lossy()
        );
    }
}

/// `RELOADING=1` now, `READY=1` when dropped: wraps a reload whatever way it ends.
pub struct Reloading;

impl Reloading {
    pub fn begin() -> Reloading {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // systemd's notify-reload wants the monotonic time of the request.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let usec = (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1000;
        send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
        Reloading
    }
}

impl Drop for Reloading {
    fn drop(&mut self) {
        send("READY=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_and_path_addresses() {
        use std::os::linux::net::SocketAddrExt;
        let a = address(&OsString::from("@sd/notify")).expect("abstract");
        assert_eq!(a.as_abstract_name(), Some(&b"sd/notify"[..]));
        let p = address(&OsString::from("/run/systemd/notify")).expect("path");
        assert_eq!(
            p.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
    }
}
