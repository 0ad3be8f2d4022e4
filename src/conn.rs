//! One control connection: line framing over a bounded input buffer, and an
//! output buffer the reactor keeps small by not reading requests while it is
//! full (back-pressure).
//!
//! Input is read one chunk at a time, only when no complete line is buffered,
//! so the input buffer never holds more than one maximal line plus one chunk.
//! Lines are taken with a cursor (no per-line shifting of the buffer); the
//! consumed prefix is dropped before the next read.

use crate::protocol::MAX_LINE;
use crate::telnet;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};
use std::time::Instant;

/// Bytes read per `fill`.
pub const CHUNK: usize = 8192;

pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn source(&mut self) -> &mut dyn Source {
        match self {
            Stream::Unix(s) => s,
            Stream::Tcp(s) => s,
        }
    }
}

/// What the next buffered input holds.
#[derive(Debug, PartialEq)]
pub enum Line {
    Text(String),
    /// Not UTF-8: answered with ERR, the connection goes on.
    Invalid,
    /// Longer than `MAX_LINE`: answered with ERR, then the connection closes.
    TooLong,
}

/// What one `fill` got.
#[derive(Debug, PartialEq)]
pub enum Filled {
    Bytes(usize),
    /// Nothing more until the next readiness event.
    WouldBlock,
    Eof,
}

pub struct Conn {
    stream: Stream,
    input: Vec<u8>,
    /// Start of the unconsumed input.
    start: usize,
    /// Input before this offset has no newline (saves rescanning).
    scanned: usize,
    output: Vec<u8>,
    /// Bytes of `output` already written.
    sent: usize,
    /// A deferred reply is pending: later lines wait.
    pub busy: bool,
    /// The peer closed its side, or `quit`: close once output is flushed.
    pub closing: bool,
    /// The connection is dead: drop it now.
    pub dead: bool,
    /// The socket may hold unread bytes (edge-triggered: cleared only by WouldBlock).
    pub readable: bool,
    /// Queued in the reactor's ready list.
    pub queued: bool,
    /// Last time a request was taken or a reply finished: idle connections are
    /// the ones shed when the client table is full.
    pub last_active: Instant,
    /// Last time unsent output moved (or there was none).
    pub last_progress: Instant,
    /// The peer hung up (seen even while its requests are not being read).
    pub hup: bool,
    /// Who is on the other end, for the log: `uid 1000` or `127.0.0.1:5555`.
    pub peer: String,
    /// TCP clients may be telnet: IAC sequences are filtered out of the
    /// input and replies end lines with CRLF, as the telnet NVT wants.
    telnet: Option<telnet::Filter>,
    /// May run commands: unix clients always (the socket's mode admits them),
    /// TCP clients after `auth` when the listener has a secret.
    pub authed: bool,
}

impl Conn {
    pub fn new(stream: Stream, peer: String, now: Instant) -> Conn {
        let telnet = matches!(stream, Stream::Tcp(_)).then(telnet::Filter::default);
        Conn {
            authed: telnet.is_none(),
            telnet,
            stream,
            input: Vec::new(),
            start: 0,
            scanned: 0,
            output: Vec::new(),
            sent: 0,
            busy: false,
            closing: false,
            dead: false,
            readable: true,
            queued: false,
            last_active: now,
            last_progress: now,
            hup: false,
            peer,
        }
    }

    pub fn register(&mut self, reg: &Registry, token: Token) -> io::Result<()> {
        reg.register(
            self.stream.source(),
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    pub fn deregister(&mut self, reg: &Registry) {
        let _ = reg.deregister(self.stream.source());
    }

    /// No telnet filtering, no CRLF translation: an HTTP connection.
    pub fn plain(&mut self) {
        self.telnet = None;
    }

    /// Input bytes received and not yet taken as lines.
    pub fn buffered(&self) -> usize {
        self.input.len() - self.start
    }

    /// Reads one chunk. Call only when `next_line` found nothing.
    pub fn fill(&mut self) -> Filled {
        if self.start > 0 {
            self.input.drain(..self.start);
            self.scanned = self.scanned.saturating_sub(self.start);
            self.start = 0;
        }
        let mut buf = [0u8; CHUNK];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.readable = false;
                    self.closing = true;
                    // A last line without a newline still gets its reply.
                    if self.input.len() > self.start {
                        self.input.push(b'\n');
                    }
                    return Filled::Eof;
                }
                Ok(n) => {
                    match &mut self.telnet {
                        Some(f) => {
                            let mut replies = Vec::new();
                            f.feed(&buf[..n], &mut self.input, &mut replies);
                            self.output.extend_from_slice(&replies);
                            self.scanned = self.scanned.min(self.input.len());
                        }
                        None => self.input.extend_from_slice(&buf[..n]),
                    }
                    return Filled::Bytes(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Filled::WouldBlock;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return Filled::Eof;
                }
            }
        }
    }

    /// The next complete line, if any (a trailing `\r` is dropped).
    pub fn next_line(&mut self) -> Option<Line> {
        // The telnet filter may have dropped a partial line (Ctrl-C) since
        // it was scanned: never look past the end of the input.
        let from = self.scanned.max(self.start).min(self.input.len());
        let Some(pos) = self.input[from..].iter().position(|b| *b == b'\n') else {
            self.scanned = self.input.len();
            if self.input.len() - self.start > MAX_LINE {
                self.discard_input();
                return Some(Line::TooLong);
            }
            return None;
        };
        let end = from + pos;
        if end - self.start > MAX_LINE {
            self.discard_input();
            return Some(Line::TooLong);
        }
        let mut raw = &self.input[self.start..end];
        if raw.last() == Some(&b'\r') {
            raw = &raw[..raw.len() - 1];
        }
        let line = match std::str::from_utf8(raw) {
            Ok(s) => Line::Text(s.to_string()),
            Err(_) => Line::Invalid,
        };
        self.start = end + 1;
        self.scanned = self.start;
        Some(line)
    }

    fn discard_input(&mut self) {
        self.input.clear();
        self.start = 0;
        self.scanned = 0;
    }

    /// Whether a complete line is buffered.
    pub fn has_line(&self) -> bool {
        self.input[self.start..].contains(&b'\n')
    }

    /// Ends the connection once the output is flushed; unread input is dropped.
    pub fn close_after_flush(&mut self) {
        self.closing = true;
        self.readable = false;
        self.discard_input();
    }

    /// A TCP connection (the unix socket's are not).
    pub fn is_tcp(&self) -> bool {
        self.telnet.is_some()
    }

    /// Queues `text` (CRLF line ends for telnet) and tries to send it at once.
    pub fn send(&mut self, text: &str) {
        self.queue(text);
        self.flush();
    }

    /// Every unconsumed input byte (an attached client's keystrokes).
    pub fn take_input(&mut self) -> Vec<u8> {
        let bytes = self.input[self.start..].to_vec();
        self.discard_input();
        bytes
    }

    /// Puts bytes back in front of the input (what followed a detach).
    pub fn unread(&mut self, bytes: &[u8]) {
        let mut rest = bytes.to_vec();
        rest.extend_from_slice(&self.input[self.start..]);
        self.input = rest;
        self.start = 0;
        self.scanned = 0;
    }

    /// Queues bytes as they are (no CRLF translation).
    pub fn queue_raw(&mut self, bytes: &[u8]) {
        self.output.extend_from_slice(bytes);
    }

    /// Streamed output (`tail -f`, attach): queued and flushed; false, and the
    /// connection dead, once more than `limit` is unsent (the peer does not read).
    pub fn stream_out(&mut self, bytes: &[u8], raw: bool, limit: usize) -> bool {
        if raw {
            self.queue_raw(bytes);
        } else {
            self.queue(&String::from_utf8_lossy(bytes));
        }
        self.flush();
        if self.pending_output() > limit {
            self.dead = true;
            return false;
        }
        true
    }

    /// Queues `text` without writing yet; with nothing else pending, its
    /// buffer becomes the output as it is (no copy of a big `status`).
    pub fn queue_owned(&mut self, text: String) {
        if self.telnet.is_none() && self.output.is_empty() {
            self.output = text.into_bytes();
        } else {
            self.queue(&text);
        }
    }

    /// Queues `text` without writing yet.
    pub fn queue(&mut self, text: &str) {
        if self.telnet.is_some() {
            for b in text.bytes() {
                if b == b'\n' {
                    self.output.push(b'\r');
                }
                self.output.push(b);
            }
        } else {
            self.output.extend_from_slice(text.as_bytes());
        }
    }

    /// Unsent output bytes.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.sent
    }

    /// Writes until the buffer is empty or the socket is full.
    pub fn flush(&mut self) {
        if self.sent < self.output.len() || self.output.is_empty() {
            // Unsent output that moves, or none at all, is progress.
            let before = self.sent;
            self.flush_some();
            if self.sent > before || self.output.is_empty() {
                self.last_progress = Instant::now();
            }
        }
    }

    fn flush_some(&mut self) {
        // The log lines of what this output reports reach the log file first.
        crate::eventlog::flush();
        while self.sent < self.output.len() {
            match self.stream.write(&self.output[self.sent..]) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        if self.sent == self.output.len() {
            self.output.clear();
            self.sent = 0;
            // A burst must not pin its peak allocation for the connection's life.
            if self.output.capacity() > 4 * CHUNK {
                self.output.shrink_to(CHUNK);
            }
        } else if self.sent > CHUNK && self.sent * 2 > self.output.len() {
            self.output.drain(..self.sent);
            self.sent = 0;
        }
        if self.input.capacity() > MAX_LINE + 2 * CHUNK && self.input.len() < CHUNK {
            self.input.shrink_to(CHUNK);
        }
    }

    /// Nothing more will come from or go to this client.
    pub fn finished(&self) -> bool {
        self.dead || (self.closing && !self.busy && self.pending_output() == 0 && !self.has_line())
    }

    /// Could be closed without losing anything: no request in flight, nothing
    /// unsent, nothing unread that we know of.
    pub fn idle(&self) -> bool {
        !self.busy && self.pending_output() == 0 && !self.has_line()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Conn, std::os::unix::net::UnixStream) {
        let (a, b) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        a.set_nonblocking(true).expect("nonblocking");
        let conn = Conn::new(
            Stream::Unix(UnixStream::from_std(a)),
            "test".into(),
            Instant::now(),
        );
        (conn, b)
    }

    #[test]
    fn lines_by_cursor_crlf_and_partial_last_line_at_eof() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"one\r\n\ntwo\nthr").unwrap();
        assert_eq!(c.fill(), Filled::Bytes(13));
        assert_eq!(c.next_line(), Some(Line::Text("one".into())));
        assert_eq!(c.next_line(), Some(Line::Text(String::new())));
        assert_eq!(c.next_line(), Some(Line::Text("two".into())));
        assert_eq!(c.next_line(), None);
        assert_eq!(c.fill(), Filled::WouldBlock);
        drop(peer);
        assert_eq!(c.fill(), Filled::Eof);
        assert_eq!(c.next_line(), Some(Line::Text("thr".into())));
        assert_eq!(c.next_line(), None);
    }

    /// Ctrl-C from telnet (IAC IP) drops a partial line that was already
    /// scanned: the next look at the input must not run past its end.
    #[test]
    fn telnet_interrupt_after_a_scanned_partial_line() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut c = Conn::new(
            Stream::Tcp(TcpStream::from_std(ours)),
            "test".into(),
            Instant::now(),
        );
        let fill = |c: &mut Conn| {
            for _ in 0..1000 {
                if matches!(c.fill(), Filled::Bytes(_)) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            panic!("nothing arrived");
        };
        peer.write_all(b"sta").unwrap();
        fill(&mut c);
        assert_eq!(c.next_line(), None);
        peer.write_all(&[255, 244]).unwrap();
        fill(&mut c);
        assert_eq!(c.next_line(), None);
        peer.write_all(b"status\r\n").unwrap();
        fill(&mut c);
        assert_eq!(c.next_line(), Some(Line::Text("status".into())));
    }

    #[test]
    fn long_line_and_bad_utf8() {
        let (mut c, mut peer) = pair();
        peer.write_all(b"\xff\xfe\n").unwrap();
        c.fill();
        assert_eq!(c.next_line(), Some(Line::Invalid));
        let big = vec![b'x'; CHUNK];
        let mut got = None;
        for _ in 0..(MAX_LINE / CHUNK + 2) {
            peer.write_all(&big).unwrap();
            c.fill();
            got = c.next_line();
            if got.is_some() {
                break;
            }
        }
        assert_eq!(got, Some(Line::TooLong));
        assert!(c.input.len() <= MAX_LINE + CHUNK);
    }
}

#[cfg(test)]
#[path = "conn_proptests.rs"]
mod proptests;
