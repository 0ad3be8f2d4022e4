//! Bounded waits on the control socket: a connect that gives up, and a reply
//! read in periods so that a silent daemon is noticed and Ctrl-C is seen.

use super::Reply;
use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often a wait looks at the interrupt flag.
const INTERRUPT_CHECK: Duration = Duration::from_millis(100);

/// Connects to the unix socket `path`, giving up after `timeout` with
/// `ErrorKind::WouldBlock`, or with `Interrupted` once `interrupt` is set.
///
/// A plain blocking connect() to a listener whose backlog is full sleeps until
/// the daemon accepts: forever if its loop is stuck. The TCP recipe
/// (non-blocking connect, poll for POLLOUT, read SO_ERROR) does not work for
/// unix sockets on Linux: there is no connect-in-progress state (a
/// non-blocking connect to a full backlog fails at once with EAGAIN) and an
/// unconnected socket always polls writable. But the kernel bounds the
/// blocking wait for room in the backlog by the socket's send timeout
/// (SO_SNDTIMEO), failing with EAGAIN, and a signal ends it with EINTR. So:
/// a blocking connect under SO_SNDTIMEO, retried after a signal until the
/// deadline.
pub fn connect(
    path: &Path,
    timeout: Duration,
    interrupt: Option<&AtomicBool>,
) -> io::Result<UnixStream> {
    let deadline = Instant::now() + timeout;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: plain socket(2); the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        set_send_timeout(&fd, left)?;
        // SAFETY: addr is a valid sockaddr_un of length len.
        let r = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if r == 0 {
            check_peer(&fd)?;
            return Ok(UnixStream::from(fd));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
        if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
            return Err(e);
        }
        // A unix connect cut short by a signal left nothing half-made: retry.
    }
}

/// The squatted-socket defense: whoever listens on the socket must run as
/// root or as us (SO_PEERCRED gives the listener's uid as of its listen()),
/// else it is someone else's process posing as the daemon, and nothing is
/// sent to it (a command may carry a secret) nor believed from it.
fn check_peer(fd: &OwnedFd) -> io::Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    match crate::listen::peer_uid(fd.as_raw_fd()) {
        Some(uid) if uid == 0 || uid == me => Ok(()),
        Some(uid) => Err(io::Error::other(format!(
            "the process listening there runs as uid {uid}, neither root nor you (uid {me}): \
             refusing to talk to it (someone else's socket?)"
        ))),
        None => Err(io::Error::other(format!(
            "cannot tell who listens there (SO_PEERCRED: {})",
            io::Error::last_os_error()
        ))),
    }
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    // One byte stays zero: the kernel reads sun_path as a C string.
    if bytes.is_empty() || bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a usable socket path (empty, or over {} bytes)",
                addr.sun_path.len() - 1
            ),
        ));
    }
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn set_send_timeout(fd: &OwnedFd, t: Duration) -> io::Result<()> {
    // A zero timeval means "no timeout": never send that.
    let t = t.max(Duration::from_micros(1));
    let tv = libc::timeval {
        tv_sec: t.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
        tv_usec: t.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: tv lives across the call and its size is passed.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Why a reply is not (yet) complete.
#[derive(Debug)]
pub enum Stop {
    /// The daemon closed the connection.
    Eof,
    /// The deadline passed first; what arrived so far is kept.
    TimedOut,
    /// The interrupt flag was set.
    Interrupted,
    Failed(io::Error),
}

/// A reply being read. What arrived survives a timeout, so a deferred reply
/// can be awaited period after period.
pub struct Partial {
    body: Vec<String>,
    raw: Vec<u8>,
    /// When the last byte arrived (or the request was sent).
    pub last: Instant,
    /// Whether any byte arrived.
    pub got: bool,
}

impl Partial {
    pub fn new() -> Partial {
        Partial {
            body: Vec::new(),
            raw: Vec::new(),
            last: Instant::now(),
            got: false,
        }
    }

    /// Reads until the final `OK`/`ERR` line, or `until` passes.
    pub fn read(
        &mut self,
        r: &mut BufReader<UnixStream>,
        until: Instant,
        interrupt: Option<&AtomicBool>,
    ) -> Result<Reply, Stop> {
        loop {
            match self.next_line(r, until, interrupt)? {
                Line::Body(l) => self.body.push(l),
                Line::Final(reply) => return Ok(reply),
            }
        }
    }

    /// Reads the next whole line: a body line (un-stuffed), or the final one
    /// with the body lines `read` gathered before it. Nothing is read past
    /// the line's `\n`: what follows stays in `r` (after `attach`, raw bytes).
    pub fn next_line(
        &mut self,
        r: &mut BufReader<UnixStream>,
        until: Instant,
        interrupt: Option<&AtomicBool>,
    ) -> Result<Line, Stop> {
        use io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Stop::TimedOut);
            }
            // Short slices when a Ctrl-C may come, so it is seen promptly.
            let slice = match interrupt {
                Some(_) => left.min(INTERRUPT_CHECK),
                None => left,
            };
            r.get_ref()
                .set_read_timeout(Some(slice))
                .map_err(Stop::Failed)?;
            let before = self.raw.len();
            let res = r.read_until(b'\n', &mut self.raw);
            if self.raw.len() > before {
                self.last = Instant::now();
                self.got = true;
            }
            match res {
                Ok(0) => return Err(Stop::Eof),
                Ok(_) if self.raw.ends_with(b"\n") => return Ok(self.line()),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), WouldBlock | TimedOut | Interrupted) => {
                    if interrupt.is_some_and(|f| f.load(Ordering::Relaxed)) {
                        return Err(Stop::Interrupted);
                    }
                }
                Err(e) => return Err(Stop::Failed(e)),
            }
        }
    }

    /// Takes the complete line in `raw`.
    fn line(&mut self) -> Line {
        let text = String::from_utf8_lossy(&self.raw);
        let l = text.trim_end_matches(['\n', '\r']).to_string();
        self.raw.clear();
        if l == "OK" {
            return Line::Final(Reply {
                body: std::mem::take(&mut self.body),
                error: None,
            });
        }
        if let Some(msg) = l.strip_prefix("ERR") {
            return Line::Final(Reply {
                body: std::mem::take(&mut self.body),
                error: Some(msg.trim_start().to_string()),
            });
        }
        Line::Body(crate::protocol::unstuff(&l).to_string())
    }
}

/// One line of a reply.
#[derive(Debug)]
pub enum Line {
    /// A body line, as meant (un-stuffed).
    Body(String),
    /// `OK` or `ERR …`, with the body lines gathered by `Partial::read`.
    Final(Reply),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixListener;

    #[test]
    fn reply_survives_a_timeout_between_its_parts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        let c = connect(&path, Duration::from_secs(5), None).unwrap();
        let (mut server, _) = l.accept().unwrap();
        let mut r = BufReader::new(c);
        let mut p = Partial::new();
        server.write_all(b"a:0: stop").unwrap();
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(matches!(p.read(&mut r, soon, None), Err(Stop::TimedOut)));
        assert!(p.got);
        server.write_all(b"ped\r\nERR 1 failed\n").unwrap();
        let later = Instant::now() + Duration::from_secs(5);
        let reply = p.read(&mut r, later, None).unwrap();
        assert_eq!(reply.body, vec!["a:0: stopped".to_string()]);
        assert_eq!(reply.error.as_deref(), Some("1 failed"));
        // Body lines are un-stuffed; only an unstuffed OK or ERR ends a reply.
        server
            .write_all(b"..x\r\n.OK\n.ERR 2\n.\nplain\nOK\n")
            .unwrap();
        let reply = p.read(&mut r, later, None).unwrap();
        assert_eq!(reply.body, [".x", "OK", "ERR 2", "", "plain"]);
        assert_eq!(reply.error, None);
        drop(server);
        assert!(matches!(p.read(&mut r, later, None), Err(Stop::Eof)));
    }

    #[test]
    fn connect_to_a_full_backlog_gives_up_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let l = UnixListener::bind(&path).unwrap();
        // A listener that never accepts, with the smallest backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let t = Duration::from_millis(200);
        let mut queued = Vec::new();
        let (took, err) = loop {
            assert!(queued.len() < 100, "the backlog never filled");
            let t0 = Instant::now();
            match connect(&path, t, None) {
                Ok(s) => queued.push(s),
                Err(e) => break (t0.elapsed(), e),
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock, "{err}");
        assert!(took >= t && took < t + Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn connect_errors_are_plain() {
        let dir = tempfile::tempdir().unwrap();
        let t = Duration::from_secs(1);
        let missing = connect(&dir.path().join("none"), t, None).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let long = dir.path().join("x".repeat(200));
        let e = connect(&long, t, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
