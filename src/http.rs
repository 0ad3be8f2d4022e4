//! The daemon's one small HTTP/1.1 client: a non-blocking byte mover for one
//! request on one connection, driven by the event loop.
//!
//! Generic on purpose: request bytes go in (built with `request`), a status
//! code comes out. Reports use it for their POSTs; readiness and health
//! probes use it for their GETs. It never blocks: the connect is started
//! non-blocking, the request is written as the socket takes it, and only the
//! status line of the response is read, at most `MAX_RESPONSE` bytes of it.
//! It keeps no timer itself: `deadline()` says when the current phase
//! (connect, then response) runs out, and the owner arms that in the daemon's
//! one timer heap and calls `timed_out()` when it fires.
//!
//! Use:
//! ```text
//! let mut ex = Exchange::start(addr, http::request("GET", "/health", &host, None), now, limits)?;
//! registry.register(&mut ex.stream, token, Interest::READABLE | Interest::WRITABLE)?;
//! timers.arm(key, ex.deadline());
//! // on each readiness event of `token`:
//! match ex.on_ready(now) {
//!     Progress::Pending => timers.arm(key, ex.deadline()),   // the phase may have changed
//!     Progress::Done(status) => { /* status.code, status.line */ }
//!     Progress::Failed(why) => { /* log why */ }
//! }
//! // when `key` fires: let why = ex.timed_out();
//! // either way, when done: registry.deregister(&mut ex.stream)
//! ```

use mio::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Only the status line matters; a huge response costs no more than this.
pub const MAX_RESPONSE: usize = 4096;

/// How long each phase of an exchange may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub connect: Duration,
    /// From the connection being established to the status line.
    pub response: Duration,
}

/// An HTTP/1.1 request with `Connection: close`; `body` is sent with its
/// content type (`Some(("application/json", bytes))`).
pub fn request(method: &str, path: &str, host: &str, body: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some((ctype, bytes)) = body {
        out.push_str(&format!(
            "Content-Type: {ctype}\r\nContent-Length: {}\r\n",
            bytes.len()
        ));
    }
    out.push_str("Connection: close\r\nUser-Agent: taskmasterd\r\n\r\n");
    let mut out = out.into_bytes();
    if let Some((_, bytes)) = body {
        out.extend_from_slice(bytes);
    }
    out
}

/// The status line of a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The three-digit code (`204`).
    pub code: u16,
    /// The whole line, for logs (`HTTP/1.1 204 No Content`).
    pub line: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for the socket; call again on its next readiness event.
    Pending,
    /// Answered (whatever the code: judging it is the caller's business).
    Done(Status),
    /// Failed: why, for the log.
    Failed(String),
}

/// One request on one connection.
pub struct Exchange {
    /// Register it with the loop's registry, READABLE | WRITABLE.
    pub stream: TcpStream,
    pub address: SocketAddr,
    out: Vec<u8>,
    written: usize,
    response: Vec<u8>,
    connected: bool,
    limits: Limits,
    deadline: Instant,
}

impl Exchange {
    /// Starts a non-blocking connect to `address`; `request` is sent once it
    /// is established (see `request`). Fails only if no socket can be made.
    pub fn start(
        address: SocketAddr,
        request: Vec<u8>,
        now: Instant,
        limits: Limits,
    ) -> io::Result<Exchange> {
        let stream = TcpStream::connect(address)?;
        Ok(Exchange {
            stream,
            address,
            out: request,
            written: 0,
            response: Vec::new(),
            connected: false,
            limits,
            deadline: now + limits.connect,
        })
    }

    /// When the current phase runs out: the connect's deadline, then the
    /// response's (counted from the connection being established).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The deadline passed: why the exchange failed, for the log. The caller
    /// drops the exchange.
    pub fn timed_out(&self) -> String {
        if self.connected {
            format!("no response within {}", secs(self.limits.response))
        } else {
            format!("cannot connect within {}", secs(self.limits.connect))
        }
    }

    /// Called on every readiness event of `stream`: moves what it can.
    pub fn on_ready(&mut self, now: Instant) -> Progress {
        if !self.connected {
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Progress::Failed(e.to_string());
            }
            match self.stream.peer_addr() {
                Ok(_) => {
                    self.connected = true;
                    self.deadline = now + self.limits.response;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return Progress::Pending,
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Progress::Failed("connection closed while sending".into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
        let mut buf = [0u8; 1024];
        // Bounded: at most MAX_RESPONSE bytes are read in all, then it ends.
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return self.finish(),
                Ok(n) => {
                    let room = MAX_RESPONSE.saturating_sub(self.response.len());
                    self.response.extend_from_slice(&buf[..n.min(room)]);
                    if self.response.windows(2).any(|w| w == b"\r\n") || room <= n {
                        return self.finish();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Progress::Pending,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Progress::Failed(e.to_string()),
            }
        }
    }

    fn finish(&self) -> Progress {
        if self.response.is_empty() {
            return Progress::Failed("connection closed without a response".into());
        }
        match parse_status(&self.response) {
            Some(status) => Progress::Done(status),
            None => Progress::Failed(format!(
                "not an HTTP response: {:?}",
                first_line(&self.response)
            )),
        }
    }
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.split("\r\n").next().unwrap_or_default();
    line.chars().take(200).collect()
}

/// `HTTP/1.x NNN reason` → the code and the line; anything else is `None`.
pub fn parse_status(response: &[u8]) -> Option<Status> {
    let line = first_line(response);
    let mut words = line.splitn(3, ' ');
    let version = words.next()?;
    let code = words.next()?;
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return None;
    }
    let code: u16 = code.parse().ok().filter(|c| (100..=599).contains(c))?;
    Some(Status { code, line })
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_length_and_close() {
        let r = request(
            "POST",
            "/",
            "127.0.0.1:9",
            Some(("application/json", b"{}")),
        );
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("POST / HTTP/1.1\r\nHost: 127.0.0.1:9\r\n"));
        assert!(text.contains("Content-Type: application/json\r\nContent-Length: 2\r\n"));
        assert!(text.ends_with("Connection: close\r\nUser-Agent: taskmasterd\r\n\r\n{}"));
        let g = String::from_utf8(request("GET", "/health", "h", None)).unwrap();
        assert!(!g.contains("Content-Length"), "{g}");
        assert!(g.ends_with("\r\n\r\n"));
    }

    #[test]
    fn status_lines() {
        let s = parse_status(b"HTTP/1.1 204 No Content\r\nX: y\r\n").unwrap();
        assert_eq!((s.code, s.line.as_str()), (204, "HTTP/1.1 204 No Content"));
        assert_eq!(parse_status(b"HTTP/1.0 500\r\n").map(|s| s.code), Some(500));
        for bad in [
            &b"SSH-2.0-OpenSSH\r\n"[..],
            b"HTTP/1.1 20 OK\r\n",
            b"HTTP/1.1 abc OK\r\n",
            b"HTTP/1.1 999 Nope\r\n",
            b"HTTP/2 200 OK\r\n",
            b"",
            b"\xff\xfe\r\n",
        ] {
            assert_eq!(parse_status(bad), None, "{bad:?}");
        }
    }

    /// A real socket pair: a listener that answers, one that never does.
    #[test]
    fn exchange_with_a_real_listener() {
        use std::net::TcpListener;
        let limits = Limits {
            connect: Duration::from_secs(3),
            response: Duration::from_secs(5),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t0 = Instant::now();
        let req = request("GET", "/", "x", None);
        let mut ex = Exchange::start(addr, req.clone(), t0, limits).unwrap();
        assert_eq!(ex.deadline(), t0 + limits.connect);
        let (mut peer, _) = listener.accept().unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Drive it as the loop would, until the request is all sent.
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < req.len() {
            assert!(Instant::now() < deadline, "request never arrived");
            assert_eq!(ex.on_ready(Instant::now()), Progress::Pending);
            let mut buf = [0u8; 256];
            let n = peer.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, req);
        assert!(ex.connected());
        assert!(ex.deadline() > t0 + limits.connect, "response phase armed");
        assert_eq!(ex.timed_out(), "no response within 5s");
        peer.write_all(b"HTTP/1.1 503 Busy\r\n\r\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match ex.on_ready(Instant::now()) {
                Progress::Pending => {
                    assert!(Instant::now() < deadline, "no status");
                    std::thread::sleep(Duration::from_millis(5));
                }
                Progress::Done(s) => break assert_eq!(s.code, 503),
                Progress::Failed(e) => panic!("{e}"),
            }
        }
    }
}
