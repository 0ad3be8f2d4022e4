//! One control connection: bounded input and output buffers and line framing.
//!
//! Memory per client is bounded: input stops being read while a deferred reply
//! holds the connection and `MAX_PENDING_INPUT` is buffered; output past
//! `MAX_OUTPUT` means the client does not read, and it is dropped.

use crate::protocol::MAX_LINE;
use crate::telnet;
use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use std::io::{self, Read, Write};

const MAX_PENDING_INPUT: usize = 2 * MAX_LINE;
const MAX_OUTPUT: usize = 8 * 1024 * 1024;

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

pub struct Conn {
    stream: Stream,
    input: Vec<u8>,
    output: Vec<u8>,
    /// A deferred reply is pending: later lines wait.
    pub busy: bool,
    /// The peer closed its side (or misbehaved): close once output is flushed.
    pub closing: bool,
    /// Input reading stopped at the buffer limit; resume when idle.
    paused: bool,
    /// The connection is dead: drop it now.
    pub dead: bool,
    /// TCP clients may be telnet: IAC sequences are filtered out of the
    /// input and replies end lines with CRLF, as the telnet NVT wants.
    telnet: Option<telnet::Filter>,
}

impl Conn {
    pub fn new(stream: Stream) -> Conn {
        let telnet = matches!(stream, Stream::Tcp(_)).then(telnet::Filter::default);
        Conn {
            telnet,
            stream,
            input: Vec::new(),
            output: Vec::new(),
            busy: false,
            closing: false,
            paused: false,
            dead: false,
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

    /// Reads until WouldBlock, EOF or the input limit.
    pub fn read(&mut self) {
        let mut buf = [0u8; 8192];
        while !self.closing {
            if self.input.len() >= MAX_PENDING_INPUT {
                self.paused = true;
                return;
            }
            match self.stream.read(&mut buf) {
                Ok(0) => self.closing = true,
                Ok(n) => {
                    let mut replies = Vec::new();
                    match &mut self.telnet {
                        Some(f) => f.feed(&buf[..n], &mut self.input, &mut replies),
                        None => self.input.extend_from_slice(&buf[..n]),
                    }
                    // Negotiation answers are telnet bytes, not text: no CRLF
                    // translation; sent now, as telnet waits for them.
                    if !replies.is_empty() {
                        self.output.extend_from_slice(&replies);
                        self.flush();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Reads again if reading was paused and there is room now; true if it did.
    pub fn resume(&mut self) -> bool {
        if self.paused && self.input.len() < MAX_PENDING_INPUT {
            self.paused = false;
            self.read();
            return true;
        }
        false
    }

    /// The next complete line, if any (a trailing `\r` is dropped).
    pub fn next_line(&mut self) -> Option<Line> {
        let Some(end) = self.input.iter().position(|b| *b == b'\n') else {
            if self.input.len() > MAX_LINE {
                self.input.clear();
                return Some(Line::TooLong);
            }
            return None;
        };
        if end > MAX_LINE {
            self.input.clear();
            return Some(Line::TooLong);
        }
        let mut raw: Vec<u8> = self.input.drain(..=end).collect();
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        Some(match String::from_utf8(raw) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::Invalid,
        })
    }

    /// Ends the connection once the output is flushed; unread input is dropped.
    pub fn close_after_flush(&mut self) {
        self.closing = true;
        self.input.clear();
    }

    /// Queues `text` and tries to send it at once.
    pub fn send(&mut self, text: &str) {
        if self.output.len() + text.len() > MAX_OUTPUT {
            self.dead = true;
            return;
        }
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
        self.flush();
    }

    /// Writes until the buffer is empty or the socket is full.
    pub fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.output.len() {
            match self.stream.write(&self.output[sent..]) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        self.output.drain(..sent);
    }

    /// Nothing more will come from or go to this client.
    pub fn finished(&self) -> bool {
        self.dead
            || (self.closing
                && !self.busy
                && self.output.is_empty()
                && !self.input.contains(&b'\n'))
    }
}
