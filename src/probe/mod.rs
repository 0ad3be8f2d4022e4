//! Readiness probes and health checks at run time, driven by the event loop.
//!
//! A probe exists only while it is needed: the `ready:` probe while a process
//! is STARTING, the `healthcheck:` while it is RUNNING (the supervisor says
//! which with `set` after every step). Nothing here blocks and nothing ticks:
//! the next check and the timeout of the one in flight are one deadline per
//! process (`Deadline::Probe(slot)`) in the daemon's timer heap; a tcp or
//! http check is a non-blocking socket in the loop's poll (`PROBE_TOKEN +
//! slot`); a command is a `oneshot` child (killed at its timeout and reaped
//! by the loop); a file check is one `stat`; notify is a datagram socket
//! (`notify`) read when it is readable, with no timer at all.
//!
//! This module only runs checks and counts failures; what a result means for
//! the process (RUNNING, or stopped as unhealthy) is the state table's call.

pub mod notify;

use crate::config::{Check, Probe};
use crate::http::{self, Exchange};
use crate::oneshot::{self, OneShots, Owner};
use crate::state::Exit;
use crate::timers::{Deadline, Timers};
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Tokens `PROBE_TOKEN + slot` are the sockets of tcp and http checks.
pub const PROBE_TOKEN: usize = 7 << 32;
/// Tokens `NOTIFY_TOKEN + slot` are notify sockets.
pub const NOTIFY_TOKEN: usize = 6 << 32;

/// Which probe a process needs now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Ready,
    Health,
}

/// What a result means, for the supervisor to act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing decided yet (in flight, or a readiness check failed: retried).
    Pending,
    /// The readiness probe passed.
    Ready,
    /// A health check passed (after `failures` failed ones, if any).
    Healthy { failures: u32 },
    /// A health check failed, `failures` of `retries` in a row.
    Failed {
        why: String,
        failures: u32,
        retries: u32,
    },
    /// `retries` health checks failed in a row; the last for this reason.
    Unhealthy(String),
}

enum InFlight {
    Tcp(TcpStream),
    Http(Box<Exchange>),
    /// A oneshot child; its timeout is its own, its outcome comes back tagged.
    Command,
}

struct Active {
    phase: Phase,
    probe: Probe,
    /// The process the probe is for: a new spawn gets a new probe.
    pid: i32,
    /// Tells a stale command outcome (of a probe since replaced) apart.
    generation: u64,
    in_flight: Option<InFlight>,
    /// When the current (or last) check began: checks start `interval` apart.
    began: Instant,
    /// Consecutive failed health checks.
    failures: u32,
}

/// The probes of every process.
#[derive(Default)]
pub struct Probes {
    active: HashMap<usize, Active>,
    next_generation: u64,
    /// The notify sockets of processes that have `ready: {notify: true}`.
    notify: HashMap<usize, notify::NotifySocket>,
    /// Notify sockets whose read budget ran out with datagrams left.
    notify_again: VecDeque<usize>,
}

impl Probes {
    /// Makes the probe of `slot` be `want` (for process `pid`), or none:
    /// unchanged if it already is, else the old one is dropped (its socket
    /// closed, its deadline cancelled) and the new one's first check is
    /// `interval` from now.
    pub fn set(
        &mut self,
        slot: usize,
        want: Option<(Phase, &Probe, i32)>,
        now: Instant,
        timers: &mut Timers,
        reg: &Registry,
        oneshots: &mut OneShots,
    ) {
        let same = match (self.active.get(&slot), want) {
            (Some(a), Some((phase, probe, pid))) => {
                a.phase == phase && a.probe == *probe && a.pid == pid
            }
            (None, None) => true,
            _ => false,
        };
        let notify = matches!(want, Some((Phase::Ready, p, _)) if p.check == Check::Notify);
        if !notify {
            if let Some(n) = self.notify.remove(&slot) {
                n.deregister(reg);
            }
        }
        if same {
            return;
        }
        self.drop_slot(slot, timers, reg, oneshots);
        let Some((phase, probe, pid)) = want else {
            return;
        };
        if probe.check != Check::Notify {
            timers.arm(Deadline::Probe(slot), now + probe.interval);
        }
        self.next_generation += 1;
        self.active.insert(
            slot,
            Active {
                phase,
                probe: probe.clone(),
                pid,
                generation: self.next_generation,
                in_flight: None,
                began: now,
                failures: 0,
            },
        );
    }

    fn drop_slot(
        &mut self,
        slot: usize,
        timers: &mut Timers,
        reg: &Registry,
        oneshots: &mut OneShots,
    ) {
        if let Some(mut a) = self.active.remove(&slot) {
            timers.cancel(Deadline::Probe(slot));
            if matches!(a.in_flight, Some(InFlight::Command)) {
                // Nobody waits for its answer any more: a check must not
                // outlive its probe (a stopped process is checked no more,
                // and stop/start cycles would pile up hung commands until
                // their timeouts). Reaped as usual; its outcome is ignored.
                oneshots.kill(&Owner::Probe(slot, a.generation));
            }
            close(&mut a, reg);
        }
    }

    /// A new notify socket for `slot` (replacing its old one) before a
    /// spawn: the path to give the child as `NOTIFY_SOCKET`.
    pub fn open_notify(
        &mut self,
        slot: usize,
        dir: &Path,
        name: &str,
        uid: Option<u32>,
        reg: &Registry,
    ) -> Result<PathBuf, String> {
        if let Some(old) = self.notify.remove(&slot) {
            old.deregister(reg);
        }
        let token = Token(NOTIFY_TOKEN + slot);
        let sock = notify::NotifySocket::bind(dir, name, uid, reg, token)?;
        let path = sock.path().to_path_buf();
        self.notify.insert(slot, sock);
        Ok(path)
    }

    /// The notify socket of `slot` is readable (or was left with a backlog).
    pub fn on_notify(&mut self, slot: usize) -> Outcome {
        let Some(sock) = self.notify.get(&slot) else {
            return Outcome::Pending;
        };
        let waiting = self
            .active
            .get(&slot)
            .is_some_and(|a| a.phase == Phase::Ready);
        match sock.read() {
            notify::Read::Ready if waiting => Outcome::Ready,
            notify::Read::More => {
                if !self.notify_again.contains(&slot) {
                    self.notify_again.push_back(slot);
                }
                Outcome::Pending
            }
            _ => Outcome::Pending,
        }
    }

    /// Notify sockets to read again this turn (each once).
    pub fn take_notify_again(&mut self) -> Vec<usize> {
        self.notify_again.drain(..).collect()
    }

    /// Whether a notify socket still has datagrams to read.
    pub fn has_leftovers(&self) -> bool {
        !self.notify_again.is_empty()
    }

    /// Consecutive failures and the limit, while a health check runs.
    pub fn health(&self, slot: usize) -> Option<(u32, u32)> {
        self.active
            .get(&slot)
            .filter(|a| a.phase == Phase::Health)
            .map(|a| (a.failures, a.probe.retries))
    }

    /// `Deadline::Probe(slot)` fired: the check in flight timed out, or the
    /// next one is due.
    pub fn on_deadline(
        &mut self,
        slot: usize,
        now: Instant,
        timers: &mut Timers,
        reg: &Registry,
        oneshots: &mut OneShots,
    ) -> Outcome {
        let Some(a) = self.active.get_mut(&slot) else {
            return Outcome::Pending;
        };
        if a.in_flight.is_some() {
            close(a, reg);
            let why = format!("no answer within {}", secs(a.probe.timeout));
            return self.judge(slot, Err(why), now, timers);
        }
        a.began = now;
        let token = Token(PROBE_TOKEN + slot);
        let started = match &a.probe.check {
            Check::File(path) => {
                let found = path.try_exists();
                let result = match found {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(format!("no file {}", path.display())),
                    Err(e) => Err(format!("{}: {e}", path.display())),
                };
                return self.judge(slot, result, now, timers);
            }
            Check::Notify => return Outcome::Pending,
            Check::Tcp(addr) => TcpStream::connect(*addr)
                .and_then(|mut s| {
                    reg.register(&mut s, token, Interest::WRITABLE)?;
                    Ok(InFlight::Tcp(s))
                })
                .map_err(|e| format!("connect to {addr}: {e}")),
            Check::Http(t) => {
                let request = http::request("GET", &t.path, &t.host, None);
                let limits = http::Limits {
                    connect: a.probe.timeout,
                    response: a.probe.timeout,
                };
                Exchange::start(t.address, request, now, limits)
                    .and_then(|mut ex| {
                        let both = Interest::READABLE | Interest::WRITABLE;
                        reg.register(&mut ex.stream, token, both)?;
                        Ok(InFlight::Http(Box::new(ex)))
                    })
                    .map_err(|e| format!("connect to {}: {e}", t.address))
            }
            Check::Command { argv, .. } => {
                let spec = oneshot::Spec {
                    argv: argv.clone(),
                    env: Vec::new(),
                    stdin: None,
                    timeout: a.probe.timeout,
                };
                let owner = Owner::Probe(slot, a.generation);
                // A spawn failure comes back as an outcome like any other end.
                oneshots.spawn(owner, spec, reg, timers, now);
                a.in_flight = Some(InFlight::Command);
                return Outcome::Pending;
            }
        };
        match started {
            Ok(f) => {
                a.in_flight = Some(f);
                timers.arm(Deadline::Probe(slot), now + a.probe.timeout);
                Outcome::Pending
            }
            Err(why) => self.judge(slot, Err(why), now, timers),
        }
    }

    /// Readiness of the socket of `slot`'s check.
    pub fn on_ready(
        &mut self,
        slot: usize,
        now: Instant,
        timers: &mut Timers,
        reg: &Registry,
    ) -> Outcome {
        let Some(a) = self.active.get_mut(&slot) else {
            return Outcome::Pending;
        };
        let result = match &mut a.in_flight {
            Some(InFlight::Tcp(s)) => match s.take_error() {
                Ok(Some(e)) | Err(e) => Err(e.to_string()),
                Ok(None) => match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return Outcome::Pending,
                    Err(e) => Err(e.to_string()),
                },
            },
            Some(InFlight::Http(ex)) => match ex.on_ready(now) {
                http::Progress::Pending => return Outcome::Pending,
                http::Progress::Done(s) if (200..300).contains(&s.code) => Ok(()),
                http::Progress::Done(s) => Err(s.line),
                http::Progress::Failed(why) => Err(why),
            },
            _ => return Outcome::Pending,
        };
        close(a, reg);
        let result = result.map_err(|why| format!("{}: {why}", target(&a.probe.check)));
        self.judge(slot, result, now, timers)
    }

    /// A command check of probe `generation` of `slot` ended.
    pub fn on_command(
        &mut self,
        slot: usize,
        generation: u64,
        outcome: oneshot::Outcome,
        now: Instant,
        timers: &mut Timers,
    ) -> Outcome {
        let Some(a) = self.active.get_mut(&slot) else {
            return Outcome::Pending;
        };
        if a.generation != generation {
            return Outcome::Pending;
        }
        a.in_flight = None;
        let result = match outcome {
            oneshot::Outcome::Exited(Exit::Code(0)) => Ok(()),
            o => Err(format!("{}: {}", target(&a.probe.check), o.describe())),
        };
        self.judge(slot, result, now, timers)
    }

    /// Counts a result and arms the next check.
    fn judge(
        &mut self,
        slot: usize,
        result: Result<(), String>,
        now: Instant,
        timers: &mut Timers,
    ) -> Outcome {
        let Some(a) = self.active.get_mut(&slot) else {
            return Outcome::Pending;
        };
        let next = (a.began + a.probe.interval).max(now);
        let (phase, failures, retries) = (a.phase, a.failures, a.probe.retries);
        let verdict = tally(phase, failures, retries, result);
        match &verdict {
            Outcome::Ready => {}
            Outcome::Unhealthy(_) => a.failures = retries,
            Outcome::Failed { failures, .. } => a.failures = *failures,
            _ => a.failures = 0,
        }
        if !matches!(verdict, Outcome::Ready | Outcome::Unhealthy(_)) {
            timers.arm(Deadline::Probe(slot), next);
        }
        verdict
    }
}

/// What one result means, given the failures so far (pure).
pub fn tally(phase: Phase, failures: u32, retries: u32, result: Result<(), String>) -> Outcome {
    match (phase, result) {
        (Phase::Ready, Ok(())) => Outcome::Ready,
        (Phase::Ready, Err(_)) => Outcome::Pending,
        (Phase::Health, Ok(())) => Outcome::Healthy { failures },
        (Phase::Health, Err(why)) if failures + 1 >= retries => Outcome::Unhealthy(why),
        (Phase::Health, Err(why)) => Outcome::Failed {
            why,
            failures: failures + 1,
            retries,
        },
    }
}

/// Closes the socket of the check in flight (a command runs to its end or
/// timeout; its late outcome is ignored).
fn close(a: &mut Active, reg: &Registry) {
    match a.in_flight.take() {
        Some(InFlight::Tcp(mut s)) => {
            let _ = reg.deregister(&mut s);
        }
        Some(InFlight::Http(mut ex)) => {
            let _ = reg.deregister(&mut ex.stream);
        }
        _ => {}
    }
}

/// The check as the log names it.
fn target(check: &Check) -> String {
    match check {
        Check::Tcp(a) => format!("tcp {a}"),
        Check::Http(t) => format!("http {}{}", t.host, t.path),
        Check::Command { text, .. } => format!("command {text:?}"),
        Check::Notify => "notify".into(),
        Check::File(p) => format!("file {}", p.display()),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_counts_consecutive_failures_only() {
        let fail = || Err("refused".to_string());
        assert_eq!(tally(Phase::Ready, 0, 3, Ok(())), Outcome::Ready);
        assert_eq!(tally(Phase::Ready, 0, 3, fail()), Outcome::Pending);
        assert_eq!(
            tally(Phase::Health, 0, 3, fail()),
            Outcome::Failed {
                why: "refused".into(),
                failures: 1,
                retries: 3
            }
        );
        assert_eq!(
            tally(Phase::Health, 2, 3, fail()),
            Outcome::Unhealthy("refused".into())
        );
        assert_eq!(
            tally(Phase::Health, 2, 3, Ok(())),
            Outcome::Healthy { failures: 2 }
        );
        assert_eq!(
            tally(Phase::Health, 0, 1, fail()),
            Outcome::Unhealthy("refused".into())
        );
    }
}
