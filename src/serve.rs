//! Serving control clients from the reactor: admission (the daemon stays
//! reachable under a connect flood or a full fd table), a budget per turn for
//! each connection, and back-pressure (a client that does not read its replies
//! is not read from either).

use crate::conn::{Conn, Filled, Line, Stream, CHUNK};
use crate::control::{self, Outcome};
use crate::lifecycle;
use crate::listen::METRICS_LISTENER;
use crate::protocol::{self, Request};
use crate::reactor::{Client, Reactor, CLIENT_TOKEN};
use log::{debug, info, warn};
use mio::Token;
use std::io::{self, Write};
use std::time::Instant;

/// Connections served at once, at most; fewer when the fd limit is low (the
/// children's fds come first). At the limit a connection is shed.
pub const MAX_CLIENTS: usize = 512;
/// A connection whose unsent output has not moved for this long does not read.
pub const STUCK: std::time::Duration = std::time::Duration::from_secs(2);

/// The client limit for `procs` processes under the current fd limit: each
/// process may need five fds (pidfd, two pipes, two files), 64 stay for the daemon.
pub fn max_clients(procs: u64) -> usize {
    let (soft, _) = crate::fdlimit::current();
    let free = soft.saturating_sub(crate::fdlimit::PER_PROCESS * procs + 64);
    (free as usize).clamp(16, MAX_CLIENTS)
}
/// Requests one connection may have answered per turn (blank lines count).
pub const LINES_PER_TURN: usize = 64;
/// Bytes one connection may have read, or streamed to it, per turn.
pub const BYTES_PER_TURN: usize = 64 * 1024;
/// Unsent output past which a connection's requests wait (back-pressure).
pub const OUT_HIGH: usize = 64 * 1024;
/// Connections accepted per listener per turn.
const ACCEPT_BATCH: usize = 32;
/// Longest request text written to the log.
const LOG_LINE: usize = 200;

impl Reactor {
    /// A listener is readable: accept until WouldBlock (or the batch is spent,
    /// and then again next turn), so its backlog never stays full.
    pub(crate) fn accept(&mut self, token: Token, now: Instant) {
        for _ in 0..ACCEPT_BATCH {
            match self.listeners.accept(token) {
                Ok((stream, peer)) => {
                    if self.clients.len() >= self.max_clients
                        && !self.shed_one("the client table is full", now)
                    {
                        // Every connection has work in flight: tell the
                        // newcomer, rather than leave it hanging.
                        refuse(stream, &peer, "too many clients");
                    } else {
                        self.admit(stream, peer, token == METRICS_LISTENER, now);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) => {
                    if !self.shed_one("out of file descriptors", now) {
                        self.refuse_with_reserve(token);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => debug!("accept: {e}"),
            }
        }
        if !self.accept_again.contains(&token) {
            self.accept_again.push(token);
        }
    }

    fn admit(&mut self, stream: Stream, peer: String, http: bool, now: Instant) {
        let id = self.next_id;
        self.next_id += 1;
        let mut conn = Conn::new(stream, peer, now);
        if http {
            conn.plain();
            self.sup.timers.arm(
                crate::timers::Deadline::Client(id),
                now + crate::http_serve::REQUEST_TIME,
            );
        }
        match conn.register(self.registry(), Token(CLIENT_TOKEN + id)) {
            Ok(()) => {
                debug!("client {id} connected ({})", conn.peer);
                self.clients.insert(
                    id,
                    Client {
                        conn,
                        stream: None,
                        http: http.then(Default::default),
                        follow: None,
                        attached: None,
                    },
                );
                // Serve it at once: a peer that already hung up (a connect
                // storm) leaves now instead of filling the table.
                self.serve(id, now);
                if self.clients.get(&id).is_some_and(|c| c.finished()) {
                    self.drop_client(id);
                }
            }
            Err(e) => warn!("cannot watch a new client: {e}"),
        }
    }

    /// Makes room for one connection; false if nobody can go. In order: a
    /// peer that hung up, a peer that has not read its output for `STUCK`,
    /// then the longest-idle connection with nothing in flight.
    fn shed_one(&mut self, why: &str, now: Instant) -> bool {
        let victim = self
            .clients
            .iter()
            .filter_map(|(id, c)| {
                let stuck = c.conn.pending_output() > 0
                    && now.saturating_duration_since(c.conn.last_progress) >= STUCK;
                let idle = c.stream.is_none()
                    && c.follow.is_none()
                    && c.attached.is_none()
                    && c.conn.idle();
                // A TCP peer that has not authenticated is idle by definition
                // (it can do nothing else) and the first of those to go. Not
                // a metrics client: it needs no secret (and is not `is_tcp`).
                let locked =
                    c.conn.is_tcp() && !c.conn.authed && self.sup.config.listen_secret.is_some();
                let rank = if c.conn.hup {
                    0
                } else if locked {
                    1
                } else if stuck {
                    2
                } else if idle {
                    3
                } else {
                    return None;
                };
                Some(((rank, c.conn.last_active), *id))
            })
            .min()
            .map(|(_, id)| id);
        let Some(id) = victim else { return false };
        if let Some(c) = self.clients.get_mut(&id) {
            if c.conn.pending_output() == 0 && c.http.is_none() {
                c.conn
                    .send("ERR idle connection closed to admit another client\n");
            }
            let peer = c.conn.peer.clone();
            self.drop_client(id);
            if self.shed == 0 {
                warn!("{why}: closing connections to admit new ones (client {id}, {peer}; further ones at debug level)");
            } else {
                debug!("{why}: closed client {id} ({peer})");
            }
            self.shed += 1;
        }
        true
    }

    /// The listener's secret changed: every TCP connection authenticated
    /// with the old one (or with none) must authenticate again; the unix
    /// socket's clients are not concerned. How many lost their standing.
    pub(crate) fn revoke_tcp_auth(&mut self) -> usize {
        let mut n = 0;
        for c in self.clients.values_mut() {
            if c.conn.is_tcp() && c.conn.authed {
                c.conn.authed = false;
                n += 1;
            }
        }
        n
    }

    /// Removes client `id` and everything that refers to it: its follow, its
    /// attach, its deferred reply. The one way a connection goes away.
    pub(crate) fn drop_client(&mut self, id: usize) {
        let Some(mut c) = self.clients.remove(&id) else {
            return;
        };
        c.conn.deregister(self.registry());
        if c.http.is_some() {
            self.sup.timers.cancel(crate::timers::Deadline::Client(id));
        }
        if let Some(key) = c.follow {
            self.unfollow(id, key);
        }
        if let Some(slot) = c.attached {
            self.forget_attach(slot);
        }
        self.waiters.retain(|w| w.client != id);
    }

    /// The fd table is full and nothing can be shed: free the spare fd to take
    /// one connection off the backlog and refuse it.
    fn refuse_with_reserve(&mut self, token: Token) {
        self.reserve = None;
        if let Ok((s, peer)) = self.listeners.accept(token) {
            refuse(s, &peer, "out of file descriptors");
        }
        self.reserve = std::fs::File::open("/dev/null").ok();
    }

    /// Readiness of client `id`.
    pub(crate) fn on_client(&mut self, id: usize, readable: bool, hup: bool, now: Instant) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.conn.readable |= readable;
            c.conn.hup |= hup;
            self.serve(id, now);
        }
    }

    /// Serves client `id` for one turn: flush, stream, then requests, until it
    /// blocks, waits, or spends its budget (then it goes on the ready list).
    pub(crate) fn serve(&mut self, id: usize, now: Instant) {
        if self.clients.get(&id).is_some_and(|c| c.http.is_some()) {
            return self.serve_http(id, now);
        }
        let (mut lines, mut bytes) = (LINES_PER_TURN, BYTES_PER_TURN);
        loop {
            let Some(c) = self.clients.get_mut(&id) else {
                return;
            };
            c.conn.flush();
            if c.conn.dead {
                return;
            }
            if let Some(slot) = c.attached {
                if self.serve_attached(id, slot, &mut bytes) {
                    continue;
                }
                return;
            }
            if let Some(key) = c.follow {
                // Any line from a follower ends its `tail -f`; it is not run.
                match c.conn.next_line() {
                    Some(_) => {
                        c.conn.queue("OK\n");
                        c.conn.last_active = now;
                        self.unfollow(id, key);
                    }
                    None if c.conn.readable && !c.conn.closing && bytes > 0 => {
                        if let Filled::Bytes(n) = c.conn.fill() {
                            bytes = bytes.saturating_sub(n);
                        }
                    }
                    None if c.conn.readable && !c.conn.closing => return self.wake(id),
                    None => return,
                }
                continue;
            }
            let room = OUT_HIGH.saturating_sub(c.conn.pending_output());
            if let Some(st) = &mut c.stream {
                if room == 0 {
                    return; // the writable edge brings it back
                }
                if bytes == 0 {
                    return self.wake(id);
                }
                let budget = room.min(bytes).min(4 * CHUNK);
                // Sized once: a stream stops after the line that crosses its budget.
                let mut out = String::with_capacity(budget + 512);
                let done = st.fill(&self.sup, now, &mut out, budget);
                let filled = out.len();
                bytes = bytes.saturating_sub(filled);
                c.conn.queue_owned(out);
                if done {
                    c.stream = None;
                    c.conn.last_active = now;
                } else if filled == 0 {
                    // A /proc scan batch was this turn's work.
                    return self.wake(id);
                }
                continue;
            }
            if c.conn.busy || room == 0 {
                return;
            }
            if lines == 0 || bytes == 0 {
                return self.wake(id);
            }
            match c.conn.next_line() {
                Some(line) => {
                    lines -= 1;
                    c.conn.last_active = now;
                    self.handle(id, line, now);
                }
                None if c.conn.readable && !c.conn.closing => {
                    if let Filled::Bytes(n) = c.conn.fill() {
                        bytes = bytes.saturating_sub(n);
                    }
                }
                None => return,
            }
        }
    }

    fn handle(&mut self, id: usize, line: Line, now: Instant) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let text = match line {
            Line::Text(t) => t,
            Line::Invalid => {
                return c
                    .conn
                    .queue(&protocol::reply(&[], Err("invalid UTF-8".into())))
            }
            Line::TooLong => {
                c.conn
                    .queue(&protocol::reply(&[], Err("line too long".into())));
                return c.conn.close_after_flush();
            }
        };
        let parsed = protocol::parse(&text);
        if let Ok(Some(Request::Auth(guess))) = &parsed {
            // Before the request is logged: the secret must never be.
            return match &self.sup.config.listen_secret {
                Some(secret) if !c.conn.authed => {
                    let admitted = self.auth_limit.admit(now);
                    if admitted && secret.matches(guess) {
                        c.conn.authed = true;
                        info!("client {id} ({}): authenticated", c.conn.peer);
                        c.conn.queue(&protocol::reply(&[], Ok(())));
                    } else {
                        if let Some(unlogged) = self.auth_limit.failure(now) {
                            let why = if admitted {
                                ""
                            } else {
                                " (too many attempts: not checked)"
                            };
                            let more = match unlogged {
                                0 => String::new(),
                                n => format!("; {n} more failures not logged before this one"),
                            };
                            warn!(
                                "client {id} ({}): authentication failed{why}{more}",
                                c.conn.peer
                            );
                        }
                        c.conn
                            .queue(&protocol::reply(&[], Err("authentication failed".into())));
                        c.conn.close_after_flush();
                    }
                }
                // Nothing to check on this connection.
                _ => c.conn.queue(&protocol::reply(&[], Ok(()))),
            };
        }
        if !c.conn.authed && self.sup.config.listen_secret.is_some() {
            // Not even parse errors before `auth`: an unauthenticated peer
            // learns nothing about the daemon.
            if !matches!(parsed, Ok(None)) {
                c.conn
                    .queue(&protocol::reply(&[], Err("authentication required".into())));
            }
            return;
        }
        let req = match parsed {
            Ok(None) => return,
            Ok(Some(r)) => r,
            Err(e) => return c.conn.queue(&protocol::reply(&[], Err(e))),
        };
        let trimmed: String = text.trim().chars().take(LOG_LINE).collect();
        let shown = escape(&trimmed);
        if control::read_only(&req) {
            debug!("client {id} ({}): {shown}", c.conn.peer);
        } else {
            info!("client {id} ({}): {shown}", c.conn.peer);
        }
        if let Some(why) = lifecycle::refuse(&req, self.shutdown.is_some()) {
            return c.conn.queue(&protocol::reply(&[], Err(why.into())));
        }
        match control::execute(&mut self.sup, id, req, now) {
            Outcome::Reply(text) => c.conn.queue(&text),
            Outcome::Status(s) => c.stream = Some(Box::new(s)),
            Outcome::Metrics(m) => c.stream = Some(Box::new(m)),
            Outcome::Wait(w) => match w.reply() {
                Some(text) => c.conn.queue(&text),
                None => {
                    c.conn.busy = true;
                    self.waiters.push(w);
                }
            },
            Outcome::Reload { dry_run } => {
                let text = match self.reload(dry_run, now) {
                    Ok(lines) => protocol::reply(&lines, Ok(())),
                    Err(errors) => protocol::reply(
                        &errors,
                        Err("invalid configuration, nothing changed".into()),
                    ),
                };
                if let Some(c) = self.clients.get_mut(&id) {
                    c.conn.queue(&text);
                }
            }
            Outcome::Tail(t) => {
                c.conn.queue(&t.body);
                if t.follow {
                    self.follow(id, (t.slot, t.which));
                } else {
                    c.conn.queue("OK\n");
                }
            }
            Outcome::Attach { slot, size } => self.begin_attach(id, slot, size),
            Outcome::Reopen => {
                let failed = self.reopen_logs("reopen");
                let text = if failed.is_empty() {
                    protocol::reply(&[], Ok(()))
                } else {
                    let n = failed.len();
                    protocol::reply(&failed, Err(format!("{n} file(s) could not be reopened")))
                };
                if let Some(c) = self.clients.get_mut(&id) {
                    c.conn.queue(&text);
                }
            }
            Outcome::Quit => {
                c.conn.queue(&protocol::reply(&[], Ok(())));
                c.conn.close_after_flush();
            }
            Outcome::Shutdown => {
                c.conn.busy = true;
                self.begin_shutdown("shutdown", now);
                if let Some(list) = &mut self.shutdown {
                    list.push(id);
                }
            }
        }
    }
}

/// Best effort: one line to a connection we will not serve, then close it.
fn refuse(stream: Stream, peer: &str, why: &str) {
    debug!("refused a client ({peer}): {why}");
    crate::eventlog::flush();
    let line = format!("ERR {why}\n");
    let _ = match stream {
        Stream::Unix(mut s) => s.write(line.as_bytes()),
        Stream::Tcp(mut s) => s.write(line.as_bytes()),
    };
}

/// Client text as it may appear in the log: one line whatever it holds. A
/// `\r` or an escape sequence inside a request must not forge or hide log
/// lines, so control characters (and `\`, to keep it unambiguous) are shown
/// escaped: `\r`, `\t`, `\x1b`, `\u{85}`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // And the Unicode line separators, which some viewers break on.
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn log_text_is_escaped() {
        assert_eq!(escape("status"), "status");
        assert_eq!(
            escape("stop a\r2024 INFO forged\x1b[2K\t\\"),
            "stop a\\r2024 INFO forged\\x1b[2K\\t\\\\"
        );
        assert_eq!(escape("x\u{85}y\u{2028}"), "x\\u{85}y\\u{2028}");
    }
}
