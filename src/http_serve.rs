//! The server side of `metrics_listen`: `GET /metrics` over HTTP/1.1 on the
//! same loop and in the same client table as control clients (admission,
//! shedding, budgets and back-pressure in `serve`).
//!
//! Deliberately tiny: one request per connection, its head at most
//! `MAX_HEAD` bytes and complete within `REQUEST_TIME`, header values never
//! looked at, the reply streamed with `Connection: close` (the end of the
//! body is the end of the connection, so no length is computed first).

use crate::conn::{Line, CHUNK};
use crate::metrics::MetricsStream;
use crate::reactor::Reactor;
use crate::serve::{BYTES_PER_TURN, OUT_HIGH};
use log::debug;
use std::time::{Duration, Instant};

/// Longest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 100;
/// A client must have sent its whole request head by then (a slowloris
/// peer is closed, not kept).
pub const REQUEST_TIME: Duration = Duration::from_secs(10);
/// A client must have taken its whole reply by then.
pub const REPLY_TIME: Duration = Duration::from_secs(60);

/// What the server answers.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// 200 and the exposition; `head_only` for HEAD.
    Metrics { head_only: bool },
    /// An error status with a one-line text body.
    Error(u16),
}

/// A request head being read, line by line.
#[derive(Debug, Default)]
pub struct Http {
    /// Bytes of the head taken so far.
    taken: usize,
    headers: usize,
    /// The request line once read: (method, path).
    request: Option<(String, String)>,
    /// Answered: nothing more is read.
    pub answered: bool,
}

impl Http {
    /// Takes one line of the head (without its line end); `Some` once the
    /// answer is decided.
    pub fn line(&mut self, line: &str) -> Option<Answer> {
        self.taken += line.len() + 2;
        if self.taken > MAX_HEAD {
            return Some(Answer::Error(431));
        }
        let Some((method, path)) = &self.request else {
            // Empty lines before the request line are tolerated (RFC 9112 2.2).
            if line.is_empty() {
                return None;
            }
            match request_line(line) {
                Some(r) => self.request = Some(r),
                None => return Some(Answer::Error(400)),
            }
            return None;
        };
        if !line.is_empty() {
            self.headers += 1;
            // A field name then `:`; no obsolete line folding.
            let good = line
                .split_once(':')
                .is_some_and(|(name, _)| !name.is_empty() && name.bytes().all(is_tchar));
            return match (good, self.headers > MAX_HEADERS) {
                (false, _) => Some(Answer::Error(400)),
                (_, true) => Some(Answer::Error(431)),
                _ => None,
            };
        }
        // The empty line: the head is complete.
        let head_only = method == "HEAD";
        if method != "GET" && !head_only {
            return Some(Answer::Error(405));
        }
        let bare = path.split_once('?').map_or(path.as_str(), |(p, _)| p);
        Some(if bare == "/metrics" {
            Answer::Metrics { head_only }
        } else {
            Answer::Error(404)
        })
    }
}

/// `METHOD SP TARGET SP HTTP/1.x` → (method, target).
fn request_line(line: &str) -> Option<(String, String)> {
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let ok = parts.next().is_none()
        && !method.is_empty()
        && method.bytes().all(is_tchar)
        && target.starts_with('/')
        && !target.bytes().any(|b| b.is_ascii_control())
        && matches!(version, "HTTP/1.1" | "HTTP/1.0");
    ok.then(|| (method.to_string(), target.to_string()))
}

/// A token character of RFC 9110.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The status line and headers of `answer`; a body for errors.
pub fn head(answer: &Answer) -> String {
    match answer {
        Answer::Metrics { .. } => "HTTP/1.1 200 OK\r\n\
             Content-Type: text/plain; version=0.0.4\r\n\
             Connection: close\r\n\r\n"
            .to_string(),
        Answer::Error(code) => {
            let (reason, allow) = match code {
                400 => ("Bad Request", ""),
                404 => ("Not Found", ""),
                405 => ("Method Not Allowed", "Allow: GET, HEAD\r\n"),
                408 => ("Request Timeout", ""),
                431 => ("Request Header Fields Too Large", ""),
                _ => ("Error", ""),
            };
            let body = format!("{} {reason}\n", code);
            format!(
                "HTTP/1.1 {code} {reason}\r\n{allow}Content-Type: text/plain\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    }
}

impl Reactor {
    /// Serves HTTP client `id` for one turn: the request head, then the
    /// streamed reply, with the control clients' budget and back-pressure.
    pub(crate) fn serve_http(&mut self, id: usize, now: Instant) {
        let mut bytes = BYTES_PER_TURN;
        loop {
            let Some(c) = self.clients.get_mut(&id) else {
                return;
            };
            c.conn.flush();
            if c.conn.dead {
                return;
            }
            if let Some(st) = &mut c.stream {
                let room = OUT_HIGH.saturating_sub(c.conn.pending_output());
                if room == 0 {
                    return; // the writable edge brings it back
                }
                if bytes == 0 {
                    return self.wake(id);
                }
                let mut out = String::new();
                let done = st.fill(&self.sup, now, &mut out, room.min(bytes).min(4 * CHUNK));
                bytes = bytes.saturating_sub(out.len());
                c.conn.queue(&out);
                if done {
                    c.stream = None;
                    c.conn.close_after_flush();
                } else if out.is_empty() {
                    return self.wake(id); // a /proc scan batch was the work
                }
                continue;
            }
            let Some(http) = &mut c.http else { return };
            if http.answered {
                return;
            }
            let answer = match c.conn.next_line() {
                Some(Line::Text(t)) => http.line(&t),
                Some(Line::Invalid) => Some(Answer::Error(400)),
                Some(Line::TooLong) => Some(Answer::Error(431)),
                // A head cut short by the peer's end gets no answer.
                None if c.conn.closing => {
                    c.conn.close_after_flush();
                    return;
                }
                None if c.conn.buffered() > MAX_HEAD => Some(Answer::Error(431)),
                None if !c.conn.readable => return,
                None if bytes == 0 => return self.wake(id),
                None => {
                    if let crate::conn::Filled::Bytes(n) = c.conn.fill() {
                        bytes = bytes.saturating_sub(n);
                    }
                    None
                }
            };
            let Some(answer) = answer else { continue };
            http.answered = true;
            c.conn.last_active = now;
            debug!("http client {id} ({}): {answer:?}", c.conn.peer);
            c.conn.queue(&head(&answer));
            match answer {
                Answer::Metrics { head_only: false } => {
                    c.stream = Some(Box::new(MetricsStream::new(&self.sup, true)));
                }
                _ => c.conn.close_after_flush(),
            }
            let deadline = crate::timers::Deadline::Client(id);
            self.sup.timers.arm(deadline, now + REPLY_TIME);
        }
    }

    /// An HTTP client's time ran out: a request never completed gets 408;
    /// either way the connection goes.
    pub(crate) fn http_timeout(&mut self, id: usize) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if c.http.as_ref().is_some_and(|h| !h.answered) {
            debug!("http client {id} ({}): request timed out", c.conn.peer);
            c.conn.send(&head(&Answer::Error(408)));
        } else {
            debug!(
                "http client {id} ({}): reply not taken in time",
                c.conn.peer
            );
        }
        self.drop_client(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(lines: &[&str]) -> Option<Answer> {
        let mut h = Http::default();
        for l in lines {
            if let Some(a) = h.line(l) {
                return Some(a);
            }
        }
        None
    }

    #[test]
    fn methods_paths_and_garbage() {
        let get = |p: &str| feed(&[&format!("GET {p} HTTP/1.1"), "Host: x", ""]);
        assert_eq!(get("/metrics"), Some(Answer::Metrics { head_only: false }));
        assert_eq!(
            get("/metrics?x=1"),
            Some(Answer::Metrics { head_only: false })
        );
        assert_eq!(get("/"), Some(Answer::Error(404)));
        assert_eq!(get("/metricsx"), Some(Answer::Error(404)));
        assert_eq!(
            feed(&["", "HEAD /metrics HTTP/1.0", ""]),
            Some(Answer::Metrics { head_only: true })
        );
        assert_eq!(
            feed(&["POST /metrics HTTP/1.1", "Content-Length: 0", ""]),
            Some(Answer::Error(405))
        );
        for bad in [
            "GET",
            "GET /metrics",
            "GET /metrics HTTP/2",
            "GET  /metrics HTTP/1.1",
            "GET metrics HTTP/1.1",
            "G(T /metrics HTTP/1.1",
            "\u{1}\u{2}",
            "GET /metrics HTTP/1.1 extra",
        ] {
            assert_eq!(feed(&[bad]), Some(Answer::Error(400)), "{bad:?}");
        }
        assert_eq!(
            feed(&["GET /metrics HTTP/1.1", "no colon"]),
            Some(Answer::Error(400))
        );
        assert_eq!(
            feed(&["GET /metrics HTTP/1.1", " folded: x"]),
            Some(Answer::Error(400))
        );
        assert_eq!(
            feed(&["GET /metrics HTTP/1.1", "A: b"]),
            None,
            "not complete"
        );
    }

    #[test]
    fn the_head_is_bounded() {
        let big = format!("X: {}", "a".repeat(MAX_HEAD));
        assert_eq!(
            feed(&["GET /metrics HTTP/1.1", &big]),
            Some(Answer::Error(431))
        );
        let mut h = Http::default();
        assert_eq!(h.line("GET /metrics HTTP/1.1"), None);
        let mut got = None;
        for _ in 0..=MAX_HEADERS {
            got = got.or(h.line("A: b"));
        }
        assert_eq!(got, Some(Answer::Error(431)));
    }

    #[test]
    fn heads() {
        let ok = head(&Answer::Metrics { head_only: false });
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(ok.contains("\r\nContent-Type: text/plain; version=0.0.4\r\n"));
        assert!(ok.ends_with("Connection: close\r\n\r\n"));
        let e = head(&Answer::Error(405));
        assert!(e.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
        let (h, body) = e.split_once("\r\n\r\n").unwrap();
        assert!(
            h.contains(&format!("Content-Length: {}", body.len())),
            "{e}"
        );
    }
}
