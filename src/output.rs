//! Children's output through the daemon: each process's stdout and stderr are
//! non-blocking pipes drained by the event loop into the configured file (with
//! rotation) and into a bounded in-memory tail, kept across restarts, from
//! which `tail` reads and `tail -f` followers are fed line by line.
//!
//! Reading is budgeted per turn: a child flooding its output is read 64 KiB
//! at a time and then waits for the next turn with a full pipe, which slows
//! that child only (back-pressure), never the loop and never other clients.

use crate::rotate::Sink;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Bytes kept per process and stream for `tail` (the contract's minimum).
pub const TAIL_BYTES: usize = 64 * 1024;
/// Bytes read from one pipe per turn of the loop.
pub const READ_PER_TURN: usize = 256 * 1024;
/// The pipe capacity a stream gets once it fills its pipe faster than a turn
/// drains it: a flooding child then blocks (and the daemon wakes) once per
/// MiB rather than per 64 KiB. Quiet streams keep the kernel's default, so a
/// thousand processes do not pin a thousand big buffers.
const BUSY_PIPE: libc::c_int = 1 << 20;
/// Streams with a big pipe at most at once: kernel pipe memory cannot be
/// swapped and counts against the daemon user's pipe quota (past it, every
/// new pipe of that user is shrunk), so a hundred floods do not pin a
/// hundred MiB of it. Further floods keep their pipe and are read all the same.
const MAX_BUSY_PIPES: usize = 16;

thread_local! {
    /// Big pipes open now (the daemon is single-threaded).
    static BUSY_PIPES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// One of the `MAX_BUSY_PIPES`: held by the stream while its pipe is open.
pub struct BusyPipe(());

impl BusyPipe {
    fn take() -> Option<BusyPipe> {
        BUSY_PIPES.with(|n| {
            (n.get() < MAX_BUSY_PIPES).then(|| {
                n.set(n.get() + 1);
                BusyPipe(())
            })
        })
    }
}

impl Drop for BusyPipe {
    fn drop(&mut self) {
        BUSY_PIPES.with(|n| n.set(n.get().saturating_sub(1)));
    }
}
/// A line longer than this reaches followers in pieces of this size.
pub const MAX_FOLLOW_LINE: usize = 64 * 1024;

/// stdout or stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Which {
    Stdout = 0,
    Stderr = 1,
}

impl Which {
    pub const BOTH: [Which; 2] = [Which::Stdout, Which::Stderr];

    pub fn name(self) -> &'static str {
        match self {
            Which::Stdout => "stdout",
            Which::Stderr => "stderr",
        }
    }
}

/// The last `TAIL_BYTES` of a stream; grows only as output comes, so a quiet
/// process costs nothing.
#[derive(Default)]
pub struct Ring {
    buf: VecDeque<u8>,
    /// Bytes were dropped from the front: the first line may be a fragment.
    wrapped: bool,
}

impl Ring {
    pub fn push(&mut self, bytes: &[u8]) {
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let over = (self.buf.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        if over > 0 {
            self.buf.drain(..over);
            self.wrapped = true;
        }
        self.buf.extend(bytes);
    }

    /// The last `n` lines (a final partial line counts when `partial`); lines
    /// split on `\n`, a trailing `\r` removed, invalid UTF-8 replaced.
    pub fn last_lines(&self, n: usize, partial: bool) -> Vec<String> {
        let (a, b) = self.buf.as_slices();
        let mut all = Vec::with_capacity(self.buf.len());
        all.extend_from_slice(a);
        all.extend_from_slice(b);
        let mut text: &[u8] = &all;
        if self.wrapped {
            // The first line lost its beginning when the ring wrapped; a ring
            // with no newline at all is the end of one long line, shown as is.
            if let Some(i) = text.iter().position(|c| *c == b'\n') {
                text = &text[i + 1..];
            }
        }
        let ends_open = !text.is_empty() && !text.ends_with(b"\n");
        let mut lines: Vec<&[u8]> = text.split(|c| *c == b'\n').collect();
        // `split` yields an empty piece after a final newline.
        if !ends_open || !partial {
            lines.pop();
        }
        let from = lines.len().saturating_sub(n);
        lines[from..].iter().map(|l| line_text(l)).collect()
    }

    /// The last `n` bytes, raw (attach replays recent output).
    pub fn recent(&self, n: usize) -> Vec<u8> {
        self.buf
            .iter()
            .skip(self.buf.len().saturating_sub(n))
            .copied()
            .collect()
    }
}

fn line_text(l: &[u8]) -> String {
    let l = l.strip_suffix(b"\r").unwrap_or(l);
    String::from_utf8_lossy(l).into_owned()
}

/// One stream of one process.
#[derive(Default)]
pub struct Stream {
    /// The tail and the line being written: made at the first output. Boxed,
    /// like `sink`: 64 bytes a stream, two streams a process, and a quiet
    /// process (a thousand `sleep`s) has none (docs/benchmarks.md, "Footprint").
    tail: Option<Box<Tail>>,
    /// Read end of the current pipe (non-blocking, registered by the caller).
    pub pipe: Option<OwnedFd>,
    /// The pipe was made big: given back when the pipe is closed or replaced.
    pub busy: Option<BusyPipe>,
    /// Boxed: most processes have no output file, and a thousand slots
    /// would each carry its room.
    pub sink: Option<Box<Sink>>,
    /// A write to the file failed; logged once until a write works again.
    pub sink_failing: bool,
    /// On the supervisor's line of streams with output left to read (a flag,
    /// not a search of that line on every readable event).
    pub queued: bool,
}

/// Gives a busy pipe `BUSY_PIPE` bytes of room, if one of the
/// `MAX_BUSY_PIPES` is free and the kernel allows (an unprivileged daemon is
/// bounded by /proc/sys/fs/pipe-max-size and its pipe quota: then the pipe
/// simply stays as it is).
fn grow(fd: std::os::fd::RawFd, busy: &mut Option<BusyPipe>) {
    if busy.is_some() {
        return;
    }
    let Some(token) = BusyPipe::take() else {
        return;
    };
    if unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, BUSY_PIPE) } >= BUSY_PIPE {
        *busy = Some(token);
    }
}

/// What a stream keeps of its output.
#[derive(Default)]
struct Tail {
    ring: Ring,
    /// The incomplete last line, for followers.
    partial: Vec<u8>,
}

/// The tail of a stream that has had no output.
static EMPTY: Ring = Ring {
    buf: VecDeque::new(),
    wrapped: false,
};

/// What one `read` got.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    pub bytes: usize,
    /// Complete new lines, for followers.
    pub lines: Vec<String>,
    /// The pipe was closed by every writer.
    pub eof: bool,
    /// The budget ran out before the pipe was empty.
    pub more: bool,
    /// A file write error to log.
    pub error: Option<String>,
    /// The bytes as read, when asked (for an attached client).
    pub raw: Vec<u8>,
}

impl Stream {
    /// The last output (empty until there is some).
    pub fn ring(&self) -> &Ring {
        self.tail.as_ref().map_or(&EMPTY, |t| &t.ring)
    }

    /// Reads up to `budget` bytes from the pipe into the file, the ring and
    /// the lines for followers (only collected when `follow`).
    pub fn read(&mut self, budget: usize, follow: bool, raw: bool) -> Read {
        let mut out = Read::default();
        let Some(fd) = self.pipe.as_ref().map(AsRawFd::as_raw_fd) else {
            return out;
        };
        // Not zeroed: `read` fills what is used. Zeroing 64 KiB per call was
        // most of the cost of the two EOF reads of every exit (shutdown of
        // 1000: 128 MB of memset).
        let mut buf = std::mem::MaybeUninit::<[u8; 64 * 1024]>::uninit();
        const LEN: usize = 64 * 1024;
        while out.bytes < budget {
            let want = LEN.min(budget - out.bytes);
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), want) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => return out,
                    _ => {
                        out.eof = true;
                        return out;
                    }
                }
            }
            if n == 0 {
                out.eof = true;
                return out;
            }
            // SAFETY: `read` initialized the first n (≤ LEN) bytes.
            let chunk =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            out.bytes += chunk.len();
            if raw {
                out.raw.extend_from_slice(chunk);
            }
            self.consume(chunk, follow, &mut out);
        }
        out.more = true;
        grow(fd, &mut self.busy);
        out
    }

    fn consume(&mut self, chunk: &[u8], follow: bool, out: &mut Read) {
        if let Some(sink) = &mut self.sink {
            match sink.write(chunk) {
                Ok(()) => self.sink_failing = false,
                Err(e) if !self.sink_failing => {
                    self.sink_failing = true;
                    out.error = Some(match e {
                        crate::rotate::WriteError::NotRotated(m) => {
                            format!("{m} (written on past the limit)")
                        }
                        crate::rotate::WriteError::Dropped(m) => {
                            format!("{m} (output dropped until a write works)")
                        }
                    });
                }
                Err(_) => {}
            }
        }
        let tail = self.tail.get_or_insert_with(Box::default);
        tail.ring.push(chunk);
        let partial = &mut tail.partial;
        if !follow {
            partial.clear();
            return;
        }
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|c| *c == b'\n') {
            partial.extend_from_slice(&rest[..i]);
            out.lines.push(line_text(partial));
            partial.clear();
            rest = &rest[i + 1..];
        }
        partial.extend_from_slice(rest);
        while partial.len() >= MAX_FOLLOW_LINE {
            let piece: Vec<u8> = partial.drain(..MAX_FOLLOW_LINE).collect();
            out.lines.push(line_text(&piece));
        }
    }

    /// A follow begins: the line being written continues from what the tail
    /// already holds, so its first delivered line is whole.
    pub fn seed_partial(&mut self) {
        let Some(t) = self.tail.as_deref_mut() else {
            return; // no output yet: nothing to continue
        };
        if !t.partial.is_empty() {
            return;
        }
        let tail: Vec<u8> = (t.ring.buf.iter().rev())
            .take_while(|c| **c != b'\n')
            .copied()
            .collect();
        t.partial.extend(tail.iter().rev());
    }

    /// The incomplete last line, if any (sent to followers when the stream ends).
    pub fn take_partial(&mut self) -> Option<String> {
        let partial = &mut self.tail.as_deref_mut()?.partial;
        if partial.is_empty() {
            return None;
        }
        let l = line_text(partial);
        partial.clear();
        Some(l)
    }
}

/// A pseudo terminal `rows` × `cols`: (master for the daemon, non-blocking;
/// slave for the child). Both close-on-exec.
pub fn pty(rows: u16, cols: u16) -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut m, mut s) = (0, 0);
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if unsafe { libc::openpty(&mut m, &mut s, std::ptr::null_mut(), std::ptr::null(), &ws) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (m, s) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
    for fd in [m.as_raw_fd(), s.as_raw_fd()] {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let flags = unsafe { libc::fcntl(m.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(m.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((m, s))
}

/// Sets the window size of the terminal behind `master`.
pub fn set_winsize(master: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// A pipe for one child stream: (read end for the daemon, non-blocking;
/// write end for the child). Both close-on-exec: posix_spawn dup2s the write
/// end onto the child's 1 or 2, so nothing leaks into other children.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let flags = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(io::Error::last_os_error());
    }
    Ok((r, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_lines_partial_crlf_and_wrap() {
        let mut r = Ring::default();
        r.push(b"one\r\ntwo\nthr");
        assert_eq!(r.last_lines(10, true), ["one", "two", "thr"]);
        assert_eq!(r.last_lines(10, false), ["one", "two"]);
        assert_eq!(r.last_lines(1, true), ["thr"]);
        r.push(b"ee\n");
        assert_eq!(r.last_lines(2, true), ["two", "three"]);
        assert_eq!(r.last_lines(0, true), Vec::<String>::new());
        let mut big = Ring::default();
        big.push(&b"x".repeat(TAIL_BYTES - 2));
        big.push(b"\nlast\n");
        assert_eq!(
            big.last_lines(5, true),
            ["last"],
            "the cut first line is dropped"
        );
        assert!(big.buf.len() <= TAIL_BYTES);
        let mut long = Ring::default();
        long.push(&b"y".repeat(TAIL_BYTES + 10));
        assert_eq!(
            long.last_lines(3, true),
            ["y".repeat(TAIL_BYTES)],
            "a long line shows"
        );
        assert_eq!(big.recent(5), b"last\n");
    }

    #[test]
    fn pipe_read_into_ring_and_lines() {
        let (r, w) = pipe().unwrap();
        let mut s = Stream {
            pipe: Some(r),
            ..Stream::default()
        };
        let mut f = std::fs::File::from(w);
        std::io::Write::write_all(&mut f, b"a\nb\r\nc").unwrap();
        let got = s.read(READ_PER_TURN, true, false);
        assert_eq!(got.lines, ["a", "b"]);
        assert_eq!((got.bytes, got.eof, got.more), (6, false, false));
        drop(f);
        let got = s.read(READ_PER_TURN, true, false);
        assert!(got.eof);
        assert_eq!(s.take_partial().as_deref(), Some("c"));
        assert_eq!(s.ring().last_lines(10, true), ["a", "b", "c"]);
    }

    #[test]
    fn the_read_budget_is_kept() {
        let (r, w) = pipe().unwrap();
        let mut s = Stream {
            pipe: Some(r),
            ..Stream::default()
        };
        let mut f = std::fs::File::from(w);
        std::io::Write::write_all(&mut f, &[b'z'; 40_000]).unwrap();
        let got = s.read(16 * 1024, false, false);
        assert_eq!((got.bytes, got.more), (16 * 1024, true));
        assert!(got.lines.is_empty());
    }
}
