//! Alerts: what `report_events` lists, sent as HTTP reports (`report`) and
//! run as `report_command` hooks (`oneshot`).
//!
//! The policy is small and lives here: which events a program reports
//! (`EventSet`), what an alert says (`Alert`: the JSON body and the hook's
//! environment), and how many hooks may run at once. Which states a process
//! *entered* is the state table's answer (`state::entered`); the supervisor
//! turns each listed one into an `Alert`, and the reactor hands alerts to
//! `Alerts::dispatch` after each batch.

use crate::oneshot::{OneShots, Outcome, Owner, Spec};
use crate::report::Reports;
use crate::state::{Exit, State};
use crate::timers::Timers;
use log::{info, warn};
use mio::Registry;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// The event names `report_events` accepts: the nine states, then UNHEALTHY.
pub const NAMES: [&str; 10] = [
    "NOT_STARTED",
    "STARTING",
    "RUNNING",
    "BACKOFF",
    "STOPPING",
    "STOPPED",
    "EXITED_EXPECTEDLY",
    "EXITED_UNEXPECTEDLY",
    "FATAL",
    "UNHEALTHY",
];

/// An event that can be reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertEvent {
    Entered(State),
    /// A health check gave up on a RUNNING process.
    Unhealthy,
}

impl AlertEvent {
    pub fn name(self) -> &'static str {
        match self {
            AlertEvent::Entered(s) => s.token(),
            AlertEvent::Unhealthy => "UNHEALTHY",
        }
    }

    fn bit(self) -> u16 {
        let i = NAMES.iter().position(|n| *n == self.name()).unwrap_or(0);
        1 << i
    }
}

/// A set of event names (`report_events`). The default is `[FATAL]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventSet(u16);

impl Default for EventSet {
    fn default() -> Self {
        EventSet(AlertEvent::Entered(State::Fatal).bit())
    }
}

impl EventSet {
    pub const EMPTY: EventSet = EventSet(0);

    /// Adds the event named `name` (`"BACKOFF"`); false if no event has that name.
    pub fn insert(&mut self, name: &str) -> bool {
        match NAMES.iter().position(|n| *n == name) {
            Some(i) => {
                self.0 |= 1 << i;
                true
            }
            None => false,
        }
    }

    pub fn contains(self, e: AlertEvent) -> bool {
        self.0 & e.bit() != 0
    }
}

/// How long a hook may run before its group is killed. Debug builds take
/// `TASKMASTER_TEST_HOOK_TIMEOUT_MS` instead, for the test of the kill (a
/// test must not wait 30 s); release builds ignore it.
pub fn hook_timeout() -> Duration {
    const TIMEOUT: Duration = Duration::from_secs(30);
    if cfg!(debug_assertions) {
        if let Some(ms) = std::env::var("TASKMASTER_TEST_HOOK_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            return Duration::from_millis(ms);
        }
    }
    TIMEOUT
}

/// Hooks running at once; past this, further ones are dropped (and logged):
/// a crash loop must not fork a crowd of mailers.
pub const MAX_HOOKS: usize = 8;
/// At most one log line per this about dropped hooks.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);

/// One event of one process, to report.
#[derive(Clone, Debug)]
pub struct Alert {
    pub event: AlertEvent,
    pub program: String,
    pub process: String,
    pub pid: Option<i32>,
    pub attempts: u32,
    /// The human text of the last exit (`exit status 1`).
    pub last_exit: Option<String>,
    pub message: String,
    pub time: SystemTime,
    pub address: Option<SocketAddr>,
    pub command: Option<Vec<String>>,
}

impl Alert {
    /// The JSON body (contract: "FATAL report"), `event` set to this event.
    pub fn body(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            event: &'a str,
            program: &'a str,
            process: &'a str,
            attempts: u32,
            last_exit: Option<&'a str>,
            message: &'a str,
            time: String,
        }
        let body = Body {
            event: self.event.name(),
            program: &self.program,
            process: &self.process,
            attempts: self.attempts,
            last_exit: self.last_exit.as_deref(),
            message: &self.message,
            time: crate::report::rfc3339(self.time),
        };
        serde_json::to_string(&body).unwrap_or_else(|_| "{}".into())
    }

    /// The hook's `TASKMASTER_*` variables (empty when unknown).
    pub fn env(&self) -> Vec<(String, String)> {
        let v = |k: &str, val: String| (format!("TASKMASTER_{k}"), val);
        vec![
            v("EVENT", self.event.name().into()),
            v("PROGRAM", self.program.clone()),
            v("PROCESS", self.process.clone()),
            v("PID", self.pid.map(|p| p.to_string()).unwrap_or_default()),
            v("EXIT", self.last_exit.clone().unwrap_or_default()),
            v("MESSAGE", self.message.clone()),
        ]
    }
}

/// Where alerts go: the HTTP reports in flight and the hook limit.
pub struct Alerts {
    pub reports: Reports,
    hooks_dropped: u64,
    hooks_drop_logged: Option<Instant>,
}

impl Alerts {
    pub fn new(report_token: usize) -> Alerts {
        Alerts {
            reports: Reports::new(report_token),
            hooks_dropped: 0,
            hooks_drop_logged: None,
        }
    }

    /// Sends `a`'s report and runs its hook, as configured.
    pub fn dispatch(
        &mut self,
        a: Alert,
        reg: &Registry,
        timers: &mut Timers,
        oneshots: &mut OneShots,
        now: Instant,
    ) {
        if a.address.is_none() && a.command.is_none() {
            if a.event == AlertEvent::Entered(State::Fatal) {
                info!("{}: FATAL, no report address configured", a.process);
            }
            return;
        }
        let body = a.body();
        if let Some(address) = a.address {
            let what = format!("{}: {} report", a.process, a.event.name());
            self.reports.send(address, what, &body, reg, timers, now);
        }
        let Some(argv) = &a.command else { return };
        let label = format!("{}: {} report_command", a.process, a.event.name());
        if oneshots.running(|o| matches!(o, Owner::Hook(_))) >= MAX_HOOKS {
            self.hooks_dropped += 1;
            if self
                .hooks_drop_logged
                .is_none_or(|t| now.saturating_duration_since(t) >= DROP_LOG_EVERY)
            {
                warn!(
                    "{label} dropped: {MAX_HOOKS} report commands already running \
                     ({} dropped since the last such line)",
                    self.hooks_dropped
                );
                self.hooks_dropped = 0;
                self.hooks_drop_logged = Some(now);
            }
            return;
        }
        let spec = Spec {
            argv: argv.to_vec(),
            env: a.env(),
            stdin: Some(body.into_bytes()),
            timeout: hook_timeout(),
        };
        if let Some(pid) = oneshots.spawn(Owner::Hook(label.clone()), spec, reg, timers, now) {
            info!("{label}: started pid {pid}");
        }
    }
}

/// A hook ended: its failures are logged.
pub fn hook_done(label: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Exited(Exit::Code(0)) => info!("{label}: done"),
        o => warn!("{label} failed: {}", o.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_sets() {
        let d = EventSet::default();
        assert!(d.contains(AlertEvent::Entered(State::Fatal)));
        assert!(!d.contains(AlertEvent::Entered(State::Backoff)));
        assert!(!d.contains(AlertEvent::Unhealthy));
        let mut s = EventSet::EMPTY;
        assert!(!s.contains(AlertEvent::Entered(State::Fatal)));
        for n in NAMES {
            assert!(s.insert(n), "{n}");
        }
        for st in State::ALL {
            assert!(s.contains(AlertEvent::Entered(st)), "{st:?}");
        }
        assert!(s.contains(AlertEvent::Unhealthy));
        assert!(!s.insert("fatal") && !s.insert("CRASHED") && !s.insert(""));
        assert_eq!(NAMES[..9], State::ALL.map(State::token));
    }

    #[test]
    fn body_and_env_say_the_same() {
        let a = Alert {
            event: AlertEvent::Entered(State::Backoff),
            program: "web".into(),
            process: "web:0".into(),
            pid: Some(42),
            attempts: 2,
            last_exit: Some("exit status 1".into()),
            message: "line\n\"two\"".into(),
            time: std::time::UNIX_EPOCH + Duration::from_secs(1_795_468_245),
            address: None,
            command: None,
        };
        let v: serde_json::Value = serde_json::from_str(&a.body()).unwrap();
        assert_eq!(v["event"], "BACKOFF");
        assert_eq!(v["process"], "web:0");
        assert_eq!(v["attempts"], 2);
        assert_eq!(v["last_exit"], "exit status 1");
        assert_eq!(v["message"], "line\n\"two\"");
        assert_eq!(v["time"], "2026-11-23T21:10:45Z");
        assert_eq!(v.as_object().unwrap().len(), 7, "the FATAL body's fields");
        let env = a.env();
        assert!(env.contains(&("TASKMASTER_PID".into(), "42".into())));
        assert!(env.contains(&("TASKMASTER_EVENT".into(), "BACKOFF".into())));
        let none = Alert {
            pid: None,
            last_exit: None,
            ..a
        };
        assert!(none
            .env()
            .contains(&("TASKMASTER_PID".into(), String::new())));
        assert!(none.body().contains("\"last_exit\":null"));
    }
}
