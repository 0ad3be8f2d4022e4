//! `attach NAME`: this terminal becomes the process's until Ctrl-].
//!
//! The reply starts as a normal one (one body line, or `ERR`); after the
//! body line the connection is raw both ways, and the daemon's stream ends
//! with byte 0x1d, `\r\n`, and a final line (`OK` after a detach, `ERR …`
//! when the process ended). The daemon never sends 0x1d otherwise, so the
//! first one is the marker.

use super::term::{self, RawMode, Traps};
use super::wire::{self, Line, Partial, Stop};
use super::{secs, Client, EXIT_ERR, EXIT_OK, EXIT_USAGE};
use crate::{say, tell};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::{BufReader, ErrorKind, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

/// Ctrl-]: detaches when typed, marks the end of the raw stream when received.
pub const DETACH: u8 = 0x1d;

/// The longest final line taken after the marker: a daemon that sends more
/// without a newline is not speaking the protocol.
const MAX_FINAL: usize = 64 * 1024;

/// Splits the daemon's raw stream into the process's bytes and the end.
#[derive(Debug, Default)]
pub struct Demux {
    /// Everything after the marker, once it came.
    after: Option<Vec<u8>>,
}

impl Demux {
    /// The part of `chunk` for the terminal, and the final line once the
    /// marker and the whole line after it have arrived.
    pub fn feed<'a>(&mut self, chunk: &'a [u8]) -> (&'a [u8], Option<String>) {
        let shown = match &mut self.after {
            Some(after) => {
                after.extend_from_slice(chunk);
                &chunk[..0]
            }
            None => match chunk.iter().position(|&b| b == DETACH) {
                Some(i) => {
                    self.after = Some(chunk[i + 1..].to_vec());
                    &chunk[..i]
                }
                None => chunk,
            },
        };
        let Some(after) = &self.after else {
            return (shown, None);
        };
        let rest = after.strip_prefix(b"\r\n").unwrap_or(after);
        let end = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => i,
            None if after.len() > MAX_FINAL => rest.len(),
            None => return (shown, None),
        };
        let line = String::from_utf8_lossy(&rest[..end]);
        (shown, Some(line.trim_end_matches('\r').to_string()))
    }
}

/// What the reply's first line made of an attach.
enum Started {
    /// Attached: the raw connection, and the bytes already read past the line.
    Raw(UnixStream, Vec<u8>),
    /// The reply was final (and is printed): this exit code.
    Done(i32),
}

/// How the raw part ended.
enum End {
    Final(String),
    Closed,
    Signal(i32),
    Failed(String),
}

impl Client {
    /// Attaches this terminal to `name`; the exit code.
    pub fn attach(&mut self, name: &str, size: Option<(u16, u16)>) -> i32 {
        if !std::io::stdin().is_terminal() {
            tell!("taskmasterctl: attach needs a terminal");
            return EXIT_USAGE;
        }
        let mut line = format!("attach {name}");
        if let Some((rows, cols)) = size.or_else(term::window_size) {
            line += &format!(" {rows}x{cols}");
        }
        let traps = match Traps::get(self.interrupt.is_some()) {
            Ok(t) => t,
            Err(e) => {
                tell!("taskmasterctl: {e}");
                return EXIT_USAGE;
            }
        };
        let (sock, pending) = match self.start_attach(&line) {
            Ok(Started::Raw(sock, pending)) => (sock, pending),
            Ok(Started::Done(code)) => return code,
            Err(e) => {
                tell!("taskmasterctl: {e}");
                return EXIT_USAGE;
            }
        };
        let raw = match RawMode::enter(traps) {
            Ok(r) => r,
            Err(e) => {
                tell!("taskmasterctl: cannot put the terminal in raw mode: {e}");
                return EXIT_USAGE;
            }
        };
        let (end, mid_line) = copy(sock, &pending, traps);
        drop(raw);
        // The process may have left the cursor mid-line.
        let fresh = if mid_line { "\n" } else { "" };
        match end {
            End::Final(l) if l == "OK" => {
                say!("{fresh}detached from {name} (it keeps running)");
                EXIT_OK
            }
            End::Final(l) if l.starts_with("ERR") => {
                tell!("{fresh}{l}");
                EXIT_ERR
            }
            End::Final(l) => {
                tell!("{fresh}taskmasterctl: unexpected end of attach: {l:?}");
                EXIT_USAGE
            }
            End::Closed => {
                tell!("{fresh}taskmasterctl: the daemon closed the connection");
                EXIT_USAGE
            }
            End::Failed(e) => {
                tell!("{fresh}taskmasterctl: {e}");
                EXIT_USAGE
            }
            // The shell's Ctrl-C means "stop this", not "end the shell".
            End::Signal(libc::SIGINT) if self.interrupt.is_some() => {
                tell!("{fresh}taskmasterctl: interrupted; detached");
                EXIT_USAGE
            }
            End::Signal(sig) => term::die_of(sig),
        }
    }

    /// Sends the attach line and reads the reply's first line.
    fn start_attach(&mut self, line: &str) -> Result<Started, String> {
        let timeout = self.timeout;
        let flag = self.interrupt.clone();
        let s = wire::connect(&self.path, timeout, flag.as_deref())
            .map_err(|e| self.connect_failed(&e))?;
        let mut reader = BufReader::new(s);
        let _ = reader.get_ref().set_write_timeout(Some(timeout));
        reader
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    self.not_responding(&format!("could not send within {}", secs(timeout)))
                }
                _ => format!("send failed: {e}"),
            })?;
        let deadline = Instant::now() + timeout;
        match Partial::new().next_line(&mut reader, deadline, flag.as_deref()) {
            Ok(Line::Body(first)) => {
                say!("{first}");
                let pending = reader.buffer().to_vec();
                Ok(Started::Raw(reader.into_inner(), pending))
            }
            Ok(Line::Final(reply)) => {
                reply.body.iter().for_each(|l| say!("{l}"));
                Ok(Started::Done(match reply.error {
                    Some(e) => {
                        tell!("ERR {e}");
                        EXIT_ERR
                    }
                    None => EXIT_OK,
                }))
            }
            Err(Stop::TimedOut) => {
                Err(self.not_responding(&format!("no reply within {}", secs(timeout))))
            }
            Err(Stop::Interrupted) => Err("interrupted".into()),
            Err(Stop::Eof) => Err("the daemon closed the connection".into()),
            Err(Stop::Failed(e)) => Err(format!("read failed: {e}")),
        }
    }
}

/// Copies keys to the daemon and its bytes to the terminal until the stream
/// ends; also whether the terminal was left mid-line.
fn copy(mut sock: UnixStream, pending: &[u8], traps: &Traps) -> (End, bool) {
    let mut out = std::io::stdout().lock();
    let mut mid_line = false;
    let mut demux = Demux::default();
    let mut show = |bytes: &[u8], out: &mut std::io::StdoutLock| -> std::io::Result<()> {
        if let Some(&last) = bytes.last() {
            mid_line = last != b'\n';
            out.write_all(bytes)?;
            out.flush()?;
        }
        Ok(())
    };
    let mut feed = |bytes: &[u8], out: &mut std::io::StdoutLock| -> Option<End> {
        let (shown, fin) = demux.feed(bytes);
        if let Err(e) = show(shown, out) {
            return Some(End::Failed(format!("cannot write to the terminal: {e}")));
        }
        fin.map(End::Final)
    };
    if let Some(end) = feed(pending, &mut out) {
        return (end, mid_line);
    }
    let stdin = std::io::stdin();
    let mut keys_open = true;
    let mut buf = vec![0u8; 16 * 1024];
    let end = loop {
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(traps.wake_fd(), PollFlags::POLLIN),
        ];
        if keys_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => break End::Failed(format!("poll failed: {e}")),
        }
        let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
        let (sock_ready, keys_ready) = (ready(&fds[0]), fds.get(2).is_some_and(ready));
        drop(fds);
        if let Some(sig) = traps.fired() {
            break End::Signal(sig);
        }
        if sock_ready {
            match (&sock).read(&mut buf) {
                Ok(0) => break End::Closed,
                Ok(n) => {
                    if let Some(end) = feed(&buf[..n], &mut out) {
                        break end;
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break End::Failed(format!("read failed: {e}")),
            }
        }
        if keys_ready {
            let sent = match nix::unistd::read(stdin.as_fd(), &mut buf) {
                // The terminal is gone: detach, and read on to the marker.
                Ok(0) | Err(Errno::EIO) => {
                    keys_open = false;
                    sock.write_all(&[DETACH])
                }
                Ok(n) => sock.write_all(&buf[..n]),
                Err(Errno::EINTR | Errno::EAGAIN) => Ok(()),
                Err(e) => break End::Failed(format!("cannot read the terminal: {e}")),
            };
            match sent.map_err(|e| e.kind()) {
                Ok(()) => {}
                // The daemon ended the stream meanwhile: read what it said.
                Err(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => keys_open = false,
                Err(e) => break End::Failed(format!("send failed: {e}")),
            }
        }
    };
    (end, mid_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_0x1d_ends_the_stream_and_the_line_after_it_is_final() {
        let mut d = Demux::default();
        assert_eq!(d.feed(b"hello\r\n"), (&b"hello\r\n"[..], None));
        assert_eq!(d.feed(b"x\x1d\r"), (&b"x"[..], None));
        assert_eq!(d.feed(b"\nO"), (&b""[..], None));
        assert_eq!(d.feed(b"K\r\nrest"), (&b""[..], Some("OK".to_string())));
        let mut d = Demux::default();
        let (shown, fin) = d.feed(b"\x1d\r\nERR web:0: exited (exit status 1)\n");
        assert_eq!(shown, b"");
        assert_eq!(fin.as_deref(), Some("ERR web:0: exited (exit status 1)"));
        // A bare \n line end, as nc users might see it, is taken too.
        assert_eq!(Demux::default().feed(b"a\x1dOK\n").1.as_deref(), Some("OK"));
    }

    #[test]
    fn a_marker_without_a_line_end_is_bounded() {
        let mut d = Demux::default();
        assert_eq!(d.feed(b"\x1d\r\n").1, None);
        let junk = vec![b'x'; MAX_FINAL + 1];
        let fin = d.feed(&junk).1.expect("given up on");
        assert_eq!(fin.len(), MAX_FINAL + 1);
    }
}
