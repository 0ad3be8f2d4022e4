//! The daemon's side of `NOTIFY_SOCKET` for `ready: {notify: true}`: one
//! datagram socket per process, made before the spawn and gone once the
//! process is RUNNING (or not STARTING any more), so a chatty child costs no
//! wake-up later: its datagrams are then refused by the kernel.
//!
//! The socket lives in `SOCKET.notify/` beside the control socket, mode 0600
//! (owned by the program's `user` when it has one), created under a umask
//! that never lets anyone else send to it, not even for an instant.
//! Reading is bounded: at most `BUDGET` datagrams per wake-up, so a flood
//! cannot hold the loop; the rest waits for the next turn.

use log::warn;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// Datagrams read per wake-up; more wait for the next turn.
pub const BUDGET: usize = 64;
/// Longest datagram kept (systemd's own limit is larger, but only `READY=1`
/// matters here; the rest of a longer one is dropped by the kernel).
const MAX_DATAGRAM: usize = 4096;

pub struct NotifySocket {
    sock: UnixDatagram,
    path: PathBuf,
}

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    /// `READY=1` came.
    Ready,
    /// Nothing more now.
    Idle,
    /// The budget ran out with datagrams possibly left.
    More,
}

/// `SOCKET.notify`: the folder of the notify sockets of the daemon on `socket`.
pub fn dir_for(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".notify");
    PathBuf::from(s)
}

impl NotifySocket {
    /// Binds `dir/NAME.sock` (an old one is replaced) and registers it.
    pub fn bind(
        dir: &Path,
        name: &str,
        uid: Option<u32>,
        reg: &Registry,
        token: Token,
    ) -> Result<NotifySocket, String> {
        ensure_dir(dir).map_err(|e| format!("notify socket folder {}: {e}", dir.display()))?;
        let path = dir.join(format!("{name}.sock"));
        let shown = path.display().to_string();
        let fail = |e: io::Error| format!("notify socket {shown}: {e}");
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path).map_err(fail)?,
            Ok(_) => return Err(fail(io::Error::other("exists and is not a socket"))),
            Err(_) => {}
        }
        // The daemon has one thread: the umask switch affects nothing else.
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixDatagram::bind(&path);
        unsafe { libc::umask(old) };
        let sock = bound.map_err(fail)?;
        let made = NotifySocket { sock, path };
        if let Some(uid) = uid {
            std::os::unix::fs::chown(&made.path, Some(uid), None).map_err(fail)?;
        }
        made.sock.set_nonblocking(true).map_err(fail)?;
        let fd = made.sock.as_raw_fd();
        reg.register(&mut SourceFd(&fd), token, Interest::READABLE)
            .map_err(fail)?;
        Ok(made)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads at most `BUDGET` datagrams.
    pub fn read(&self) -> Read {
        self.read_at_most(BUDGET)
    }

    fn read_at_most(&self, budget: usize) -> Read {
        let mut buf = [0u8; MAX_DATAGRAM];
        for _ in 0..budget {
            match self.sock.recv(&mut buf) {
                Ok(n) if is_ready(&buf[..n]) => return Read::Ready,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Idle,
                Err(e) => {
                    warn!("notify socket {}: {e}", self.path.display());
                    return Read::Idle;
                }
            }
        }
        Read::More
    }

    pub fn deregister(&self, reg: &Registry) {
        let _ = reg.deregister(&mut SourceFd(&self.sock.as_raw_fd()));
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        // The last one out removes the folder (fails harmlessly otherwise).
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// `READY=1` on a line of its own (sd_notify sends `KEY=VALUE` lines).
pub fn is_ready(datagram: &[u8]) -> bool {
    datagram.split(|b| *b == b'\n').any(|l| l == b"READY=1")
}

/// The folder, 0711: children of another `user` may reach their own socket
/// by its name, but nobody can list the others. An existing one must be a
/// real folder of ours (never followed through a symlink).
fn ensure_dir(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() && m.uid() == unsafe { libc::geteuid() } => {
            if m.mode() & 0o7777 != 0o711 {
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::other(
            "exists and is not a folder owned by the daemon's user",
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o711).create(dir)?;
            // The mode asked for is cut by the umask: set it for sure.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_on_a_line_of_its_own() {
        assert!(is_ready(b"READY=1"));
        assert!(is_ready(b"STATUS=up\nREADY=1\n"));
        assert!(!is_ready(b"READY=0"));
        assert!(!is_ready(b"XREADY=1"));
        assert!(!is_ready(b"READY=10"));
        assert!(!is_ready(b""));
    }

    #[test]
    fn socket_is_private_and_reads_are_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = dir_for(&tmp.path().join("s.sock"));
        let poll = mio::Poll::new().unwrap();
        let s = NotifySocket::bind(&dir, "web:0", None, poll.registry(), Token(1)).unwrap();
        let meta = std::fs::metadata(s.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o711);
        let tx = UnixDatagram::unbound().unwrap();
        // Never blocks the test: the kernel's queue may be short (10 by default).
        tx.set_nonblocking(true).unwrap();
        for _ in 0..5 {
            tx.send_to(b"STATUS=starting", s.path()).unwrap();
        }
        assert_eq!(s.read_at_most(3), Read::More, "read a budget at a time");
        assert_eq!(s.read_at_most(3), Read::Idle);
        tx.send_to(b"READY=1", s.path()).unwrap();
        assert_eq!(s.read(), Read::Ready);
        let path = s.path().to_path_buf();
        drop(s);
        assert!(!path.exists() && !dir.exists(), "cleaned up");
    }
}
