//! FATAL reports: one HTTP/1.1 `POST /` per process entering FATAL, sent from
//! the event loop on a non-blocking socket, bounded by connect and response
//! deadlines in the daemon's one timer heap. `Reports` owns the in-flight ones;
//! the reactor only routes readiness and due deadlines here.

use crate::http::{self, Exchange, Limits, Progress};
use crate::timers::{Deadline, Timers};
use log::{info, warn};
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::time::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reports in flight at once; past this a dead receiver would pile up sockets,
/// so further reports are dropped, and the log says so.
pub const MAX_IN_FLIGHT: usize = 64;

/// A report waiting to be sent by the reactor.
pub struct FatalReport {
    pub address: std::net::SocketAddr,
    pub process: String,
    pub body: String,
}

/// The JSON body of a FATAL report (contract: "FATAL report").
pub fn fatal_body(
    program: &str,
    process: &str,
    attempts: u32,
    last_exit: Option<String>,
    message: &str,
    time: SystemTime,
) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        event: &'a str,
        program: &'a str,
        process: &'a str,
        attempts: u32,
        last_exit: Option<String>,
        message: &'a str,
        time: String,
    }
    let body = Body {
        event: "FATAL",
        program,
        process,
        attempts,
        last_exit,
        message,
        time: rfc3339(time),
    };
    serde_json::to_string(&body).unwrap_or_else(|_| "{}".into())
}

pub struct Report {
    pub process: String,
    pub exchange: Exchange,
}

/// Connect and response deadlines of a report.
pub const LIMITS: Limits = Limits {
    connect: CONNECT_TIMEOUT,
    response: RESPONSE_TIMEOUT,
};

/// The reports in flight, keyed by id; their token is `base + id`.
pub struct Reports {
    base: usize,
    next_id: usize,
    live: HashMap<usize, Report>,
}

impl Reports {
    pub fn new(base: usize) -> Reports {
        Reports {
            base,
            next_id: 0,
            live: HashMap::new(),
        }
    }

    pub fn send(&mut self, r: FatalReport, reg: &Registry, timers: &mut Timers, now: Instant) {
        let (process, address) = (r.process.clone(), r.address);
        if self.live.len() >= MAX_IN_FLIGHT {
            return warn!(
                "{process}: FATAL report to {address} dropped: {MAX_IN_FLIGHT} reports already in flight"
            );
        }
        let request = http::request(
            "POST",
            "/",
            &address.to_string(),
            Some(("application/json", r.body.as_bytes())),
        );
        let mut rep = match Exchange::start(address, request, now, LIMITS) {
            Ok(exchange) => Report { process, exchange },
            Err(e) => return warn!("{process}: FATAL report to {address} failed: {e}"),
        };
        let id = self.next_id;
        self.next_id += 1;
        let interest = Interest::READABLE | Interest::WRITABLE;
        if let Err(e) = reg.register(&mut rep.exchange.stream, Token(self.base + id), interest) {
            return warn!("{}: FATAL report to {address} failed: {e}", rep.process);
        }
        info!("{}: sending FATAL report to {address}", rep.process);
        timers.arm(Deadline::Report(id), rep.exchange.deadline());
        self.live.insert(id, rep);
    }

    /// Readiness of report `id`.
    pub fn on_ready(&mut self, id: usize, reg: &Registry, timers: &mut Timers, now: Instant) {
        let Some(rep) = self.live.get_mut(&id) else {
            return;
        };
        let (process, address) = (&rep.process, rep.exchange.address);
        match rep.exchange.on_ready(now) {
            Progress::Pending => timers.arm(Deadline::Report(id), rep.exchange.deadline()),
            Progress::Done(status) => {
                info!("{process}: FATAL report sent to {address}: {}", status.line);
                self.drop(id, reg, timers);
            }
            Progress::Failed(why) => {
                warn!("{process}: FATAL report to {address} failed: {why}");
                self.drop(id, reg, timers);
            }
        }
    }

    /// Report `id` ran out of time in its current phase.
    pub fn on_deadline(&mut self, id: usize, reg: &Registry, timers: &mut Timers) {
        let Some(rep) = self.live.get(&id) else {
            return;
        };
        warn!(
            "{}: FATAL report to {} failed: {}",
            rep.process,
            rep.exchange.address,
            rep.exchange.timed_out()
        );
        self.drop(id, reg, timers);
    }

    fn drop(&mut self, id: usize, reg: &Registry, timers: &mut Timers) {
        timers.cancel(Deadline::Report(id));
        if let Some(mut rep) = self.live.remove(&id) {
            let _ = reg.deregister(&mut rep.exchange.stream);
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
    fn fatal_body_is_json_with_every_field() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_468_245);
        let body = fatal_body(
            "w\"eb",
            "w\"eb:0",
            4,
            Some("exit status 1".into()),
            "a\nb",
            t,
        );
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(v["event"], "FATAL");
        assert_eq!(v["program"], "w\"eb");
        assert_eq!(v["attempts"], 4);
        assert_eq!(v["last_exit"], "exit status 1");
        assert_eq!(v["message"], "a\nb");
        assert_eq!(v["time"], "2026-11-23T21:10:45Z");
        let none = fatal_body("p", "p:0", 1, None, "", t);
        assert!(none.contains("\"last_exit\":null"), "{none}");
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_468_245);
        assert_eq!(rfc3339(t), "2026-11-23T21:10:45Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }
}
