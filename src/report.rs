//! HTTP reports: one HTTP/1.1 `POST /` per reported event (`alerts`), sent
//! from the event loop with the non-blocking `http` client, bounded by
//! connect and response deadlines in the daemon's one timer heap. `Reports`
//! owns the in-flight ones; the reactor only routes readiness and due
//! deadlines here.
//!
//! Bounded per address: at most `MAX_IN_FLIGHT` connections and
//! `MAX_QUEUED` waiting bodies each. A dead or slow receiver fills that and
//! no more; further reports to it are dropped, and the log says so at most
//! once per `DROP_LOG_EVERY` (with the count), never once per report.

use crate::http::{self, Exchange, Limits, Progress};
use crate::timers::{Deadline, Timers};
use log::{info, warn};
use mio::{Interest, Registry, Token};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in flight at once to one address.
pub const MAX_IN_FLIGHT: usize = 4;
/// Reports waiting for a connection to one address.
pub const MAX_QUEUED: usize = 32;
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// Connect and response deadlines of a report.
pub const LIMITS: Limits = Limits {
    connect: CONNECT_TIMEOUT,
    response: RESPONSE_TIMEOUT,
};

/// A report not yet sent: what it is (`web:0: BACKOFF report`, for the log)
/// and its body.
struct Waiting {
    what: String,
    body: String,
}

struct Report {
    what: String,
    exchange: Exchange,
}

/// One receiver's share.
#[derive(Default)]
struct Address {
    in_flight: usize,
    queue: VecDeque<Waiting>,
    dropped: u64,
    drop_logged: Option<Instant>,
}

/// The reports in flight, keyed by id (their token is `base + id`), and
/// those waiting, by address.
pub struct Reports {
    base: usize,
    next_id: usize,
    live: HashMap<usize, Report>,
    addresses: HashMap<SocketAddr, Address>,
}

impl Reports {
    pub fn new(base: usize) -> Reports {
        Reports {
            base,
            next_id: 0,
            live: HashMap::new(),
            addresses: HashMap::new(),
        }
    }

    /// Reports in flight and waiting, over all addresses.
    pub fn pending(&self) -> (usize, usize) {
        let queued = self.addresses.values().map(|a| a.queue.len()).sum();
        (self.live.len(), queued)
    }

    /// Sends `body` to `address` now, or once a connection to it is free,
    /// or drops it if too many already wait.
    pub fn send(
        &mut self,
        address: SocketAddr,
        what: String,
        body: &str,
        reg: &Registry,
        timers: &mut Timers,
        now: Instant,
    ) {
        let a = self.addresses.entry(address).or_default();
        if a.in_flight >= MAX_IN_FLIGHT {
            if a.queue.len() < MAX_QUEUED {
                let body = body.to_string();
                return a.queue.push_back(Waiting { what, body });
            }
            a.dropped += 1;
            if a.drop_logged
                .is_none_or(|t| now.saturating_duration_since(t) >= DROP_LOG_EVERY)
            {
                warn!(
                    "{what} to {address} dropped: {MAX_IN_FLIGHT} in flight and {MAX_QUEUED} \
                     waiting already ({} dropped since the last such line)",
                    a.dropped
                );
                (a.dropped, a.drop_logged) = (0, Some(now));
            }
            return;
        }
        self.start(address, what, body, reg, timers, now);
    }

    fn start(
        &mut self,
        address: SocketAddr,
        what: String,
        body: &str,
        reg: &Registry,
        timers: &mut Timers,
        now: Instant,
    ) {
        let request = http::request(
            "POST",
            "/",
            &address.to_string(),
            Some(("application/json", body.as_bytes())),
        );
        let mut rep = match Exchange::start(address, request, now, LIMITS) {
            Ok(exchange) => Report { what, exchange },
            Err(e) => return warn!("{what} to {address} failed: {e}"),
        };
        let id = self.next_id;
        self.next_id += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = reg.register(&mut rep.exchange.stream, Token(self.base + id), interest) {
            return warn!("{} to {address} failed: {e}", rep.what);
        }
        info!("{}: sending to {address}", rep.what);
        timers.arm(Deadline::Report(id), rep.exchange.deadline());
        self.live.insert(id, rep);
        self.addresses.entry(address).or_default().in_flight += 1;
    }

    /// Readiness of report `id`.
    pub fn on_ready(&mut self, id: usize, reg: &Registry, timers: &mut Timers, now: Instant) {
        let Some(rep) = self.live.get_mut(&id) else {
            return;
        };
        let (what, address) = (&rep.what, rep.exchange.address);
        match rep.exchange.on_ready(now) {
            Progress::Pending => timers.arm(Deadline::Report(id), rep.exchange.deadline()),
            Progress::Done(status) => {
                info!("{what} sent to {address}: {}", status.line);
                self.drop(id, reg, timers, now);
            }
            Progress::Failed(why) => {
                warn!("{what} to {address} failed: {why}");
                self.drop(id, reg, timers, now);
            }
        }
    }

    /// Report `id` ran out of time in its current phase.
    pub fn on_deadline(&mut self, id: usize, reg: &Registry, timers: &mut Timers, now: Instant) {
        let Some(rep) = self.live.get(&id) else {
            return;
        };
        let ex = &rep.exchange;
        warn!("{} to {} failed: {}", rep.what, ex.address, ex.timed_out());
        self.drop(id, reg, timers, now);
    }

    /// Ends report `id`; the next one waiting for its address starts.
    fn drop(&mut self, id: usize, reg: &Registry, timers: &mut Timers, now: Instant) {
        timers.cancel(Deadline::Report(id));
        let Some(mut rep) = self.live.remove(&id) else {
            return;
        };
        let _ = reg.deregister(&mut rep.exchange.stream);
        let address = rep.exchange.address;
        let Some(a) = self.addresses.get_mut(&address) else {
            return;
        };
        a.in_flight = a.in_flight.saturating_sub(1);
        match a.queue.pop_front() {
            Some(w) => self.start(address, w.what, &w.body, reg, timers, now),
            None if a.in_flight == 0 => {
                if a.dropped > 0 {
                    warn!("reports to {address}: {} more were dropped", a.dropped);
                }
                self.addresses.remove(&address);
            }
            None => {}
        }
    }
}

/// `2026-11-23T21:10:00Z` without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_468_245);
        assert_eq!(rfc3339(t), "2026-11-23T21:10:45Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    /// A receiver that accepts nothing: in flight and waiting stay bounded,
    /// whatever is sent.
    #[test]
    fn a_dead_receiver_holds_a_bounded_number() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let poll = mio::Poll::new().unwrap();
        let mut timers = Timers::default();
        let mut reports = Reports::new(0);
        let now = Instant::now();
        for i in 0..1000 {
            let what = format!("p:{i}: FATAL report");
            reports.send(addr, what, "{}", poll.registry(), &mut timers, now);
        }
        assert_eq!(reports.pending(), (MAX_IN_FLIGHT, MAX_QUEUED));
        // Their deadlines free the connections; waiting ones take them.
        let mut t = now;
        for _ in 0..=MAX_QUEUED {
            t += CONNECT_TIMEOUT + RESPONSE_TIMEOUT;
            while let Some(Deadline::Report(id)) = timers.pop_due(t) {
                reports.on_deadline(id, poll.registry(), &mut timers, t);
            }
        }
        assert_eq!(reports.pending(), (0, 0), "every report ended");
        assert!(reports.addresses.is_empty());
    }
}
