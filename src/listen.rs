//! The control listeners: the unix socket (always) and the loopback TCP
//! listener (when `listen` is set), with their rebinding on reload; and the
//! loopback HTTP listener of `metrics_listen`.

use crate::config::Config;
use crate::conn::Stream;
use log::{info, warn};
use mio::net::{TcpListener, UnixListener};
use mio::{Interest, Registry, Token};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const UNIX_LISTENER: Token = Token(1);
pub const TCP_LISTENER: Token = Token(2);
/// `metrics_listen` (Token(3) is the reactor's fault pipe).
pub const METRICS_LISTENER: Token = Token(4);

pub struct Listeners {
    unix: UnixListener,
    pub socket_path: PathBuf,
    tcp: Option<TcpListener>,
    metrics: Option<TcpListener>,
}

/// The socket's mode when the config does not widen it.
const SOCKET_MODE: u32 = 0o700;

/// Binds the control socket: refuses if another daemon answers on it or if the
/// path is not a socket; replaces a stale socket left by a crash. The socket
/// is born 0700 and only then given `group` and `mode`.
pub fn bind_socket(path: &Path, mode: u32, group: Option<u32>) -> Result<UnixListener, String> {
    crate::config::prepare_default_path(path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; not touching it",
                path.display()
            ));
        }
        // A non-blocking probe: a blocking connect() waits for as long as
        // the listener's backlog is full, and a listener that never accepts
        // (another user's, in a shared folder) would hang the start, or the
        // whole loop on a reload. A full backlog (WouldBlock) means alive.
        let probe = mio::net::UnixStream::connect(path);
        if probe.is_ok() || probe.is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock) {
            return Err(format!(
                "another taskmasterd is already running on {}",
                path.display()
            ));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot remove stale socket {}: {e}", path.display()))?;
        info!("removed stale socket {}", path.display());
    }
    // bind() creates the socket file with 0777 less the umask, and a chmod
    // after it would leave an instant where anyone may connect: so bind under
    // a umask of 077. The daemon is single-threaded and spawns nothing here,
    // so no other file is created under this umask.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    if let Err(e) = set_access(path, mode, group) {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(listener)
}

/// Gives the socket at `path` its group, then its mode (in that order: a
/// wider mode never applies to the old group). The path is opened once with
/// O_PATH | O_NOFOLLOW and both changes go through that fd, after checking it
/// is a socket: a symlink or other file swapped in at `path` (its folder may
/// be writable by others) is never followed and never changed, and there is
/// no gap between the check and the change for a swap to slip into.
fn set_access(path: &Path, mode: u32, group: Option<u32>) -> Result<(), String> {
    let shown = path.display();
    let node = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let meta = node
        .metadata()
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if !meta.file_type().is_socket() {
        return Err(format!("{shown} is no longer our socket"));
    }
    // chown/chmod refuse an O_PATH fd; its /proc/self/fd link names the very
    // inode it holds (following it is not following a path).
    let fd_path = format!("/proc/self/fd/{}", node.as_raw_fd());
    if let Some(gid) = group {
        std::os::unix::fs::chown(&fd_path, None, Some(gid))
            .map_err(|e| format!("cannot give {shown} to group {gid}: {e}"))?;
    }
    std::fs::set_permissions(&fd_path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {shown}: {e}"))
}

fn socket_access(c: &Config) -> (u32, Option<u32>) {
    (
        c.socket_mode.unwrap_or(SOCKET_MODE),
        c.socket_group.as_ref().map(|g| g.1),
    )
}

/// The TCP listener is open to every local user: say so every time it binds.
fn warn_open(c: &Config) {
    if c.listen.is_some() && c.listen_open {
        warn!("listen_open: every local user can control this daemon through the TCP listener");
    }
}

fn bind_tcp(addr: Option<SocketAddr>, reg: &Registry) -> Result<Option<TcpListener>, String> {
    bind_as(addr, reg, TCP_LISTENER, "TCP control listener")
}

fn bind_metrics(addr: Option<SocketAddr>, reg: &Registry) -> Result<Option<TcpListener>, String> {
    bind_as(
        addr,
        reg,
        METRICS_LISTENER,
        "metrics listener (GET /metrics)",
    )
}

fn bind_as(
    addr: Option<SocketAddr>,
    reg: &Registry,
    token: Token,
    what: &str,
) -> Result<Option<TcpListener>, String> {
    let Some(a) = addr else { return Ok(None) };
    let mut l = TcpListener::bind(a).map_err(|e| format!("cannot listen on {a}: {e}"))?;
    // The real port matters when the config asks for port 0.
    let bound = l
        .local_addr()
        .map_or_else(|_| a.to_string(), |b| b.to_string());
    info!("{what} on {bound}");
    reg.register(&mut l, token, Interest::READABLE)
        .map_err(|e| e.to_string())?;
    Ok(Some(l))
}

impl Listeners {
    pub fn bind(config: &Config, reg: &Registry) -> Result<Self, String> {
        let socket = &config.socket;
        let (mode, group) = socket_access(config);
        let mut unix = bind_socket(socket, mode, group)?;
        reg.register(&mut unix, UNIX_LISTENER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let tcp = bind_tcp(config.listen, reg).inspect_err(|_| {
            let _ = std::fs::remove_file(socket);
        })?;
        let metrics = bind_metrics(config.metrics_listen, reg).inspect_err(|_| {
            let _ = std::fs::remove_file(socket);
        })?;
        warn_open(config);
        Ok(Listeners {
            unix,
            socket_path: socket.to_path_buf(),
            tcp,
            metrics,
        })
    }

    /// Accepts one pending connection from the listener behind `token`, with
    /// who is on the other end (for the log): `uid N` or the TCP address.
    pub fn accept(&self, token: Token) -> io::Result<(Stream, String)> {
        if token == METRICS_LISTENER {
            return match &self.metrics {
                Some(l) => l
                    .accept()
                    .map(|(s, addr)| (Stream::Tcp(s), addr.to_string())),
                None => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        match (token, &self.tcp) {
            (TCP_LISTENER, Some(l)) => l
                .accept()
                .map(|(s, addr)| (Stream::Tcp(s), addr.to_string())),
            (TCP_LISTENER, None) => Err(io::ErrorKind::WouldBlock.into()),
            _ => self.unix.accept().map(|(s, _)| {
                let peer =
                    peer_uid(s.as_raw_fd()).map_or_else(|| "uid ?".into(), |u| format!("uid {u}"));
                (Stream::Unix(s), peer)
            }),
        }
    }

    /// Binds the new socket first; the old one (and its clients) stay until it
    /// works. The same path again: only its group and mode change.
    pub fn rebind_socket(&mut self, new: &Config, reg: &Registry) -> Result<(), String> {
        let (path, (mode, group)) = (&new.socket, socket_access(new));
        if *path == self.socket_path {
            return set_access(path, mode, group);
        }
        let mut l = bind_socket(path, mode, group)?;
        reg.register(&mut l, UNIX_LISTENER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let _ = reg.deregister(&mut self.unix);
        self.unix = l;
        self.remove_socket();
        self.socket_path = path.to_path_buf();
        Ok(())
    }

    /// Switches the TCP listener to `addr` (or off); the old one stays on failure.
    pub fn rebind_listen(&mut self, new: &Config, reg: &Registry) -> Result<(), String> {
        let addr = new.listen;
        if let Some(old) = &mut self.tcp {
            // Deregistered first: the new listener may reuse the same token.
            let _ = reg.deregister(old);
        }
        match bind_tcp(addr, reg) {
            Ok(l) => {
                self.tcp = l;
                warn_open(new);
                Ok(())
            }
            Err(e) => {
                if let Some(old) = &mut self.tcp {
                    let _ = reg.register(old, TCP_LISTENER, Interest::READABLE);
                }
                Err(e)
            }
        }
    }

    /// Switches the metrics listener to `metrics_listen` (or off); the old
    /// one stays on failure. Its connections are not affected.
    pub fn rebind_metrics(&mut self, new: &Config, reg: &Registry) -> Result<(), String> {
        if let Some(old) = &mut self.metrics {
            let _ = reg.deregister(old);
        }
        match bind_metrics(new.metrics_listen, reg) {
            Ok(l) => {
                self.metrics = l;
                Ok(())
            }
            Err(e) => {
                if let Some(old) = &mut self.metrics {
                    let _ = reg.register(old, METRICS_LISTENER, Interest::READABLE);
                }
                Err(e)
            }
        }
    }

    pub fn remove_socket(&self) {
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

/// The uid of the process on the other end of a unix socket (SO_PEERCRED).
pub fn peer_uid(fd: RawFd) -> Option<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred.uid)
}

pub fn show_listen(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "off".to_string(), |a| a.to_string())
}
