//! The Prometheus text exposition (format 0.0.4) of `metrics` and of
//! `GET /metrics`: the event counters the supervisor keeps, and a reply
//! streamed family by family as the client reads it, after a /proc scan cut
//! into batches (see `procscan`).
//!
//! Every line starts with `#` or `taskmaster_`, so dot-stuffing never changes
//! one: the same text serves the control protocol (then `OK`) and HTTP.

use crate::control::Streamed;
use crate::procscan::{self, Scan};
use crate::state::State;
use crate::supervisor::{Process, Supervisor};
use std::borrow::Cow;
use std::fmt::Write;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The values of `taskmaster_events_total{event=…}`: the events
/// `report_events` knows, the nine states and UNHEALTHY (raised by health
/// checks, not by the state table).
pub use crate::alerts::NAMES as EVENTS;

/// Daemon-wide counters, since the daemon started; never reset (not even by
/// a reload), as Prometheus counters must be.
#[derive(Debug, Default)]
pub struct Counters {
    events: [u64; EVENTS.len()],
}

impl Counters {
    /// A process entered `state`.
    pub fn entered(&mut self, state: State) {
        self.count(state.token());
    }

    /// Counts one `event` (a state token or `UNHEALTHY`); false, and nothing
    /// counted, for a name that is not an event. The entry point for events
    /// that are not state changes.
    pub fn count(&mut self, event: &str) -> bool {
        match EVENTS.iter().position(|e| *e == event) {
            Some(i) => {
                self.events[i] += 1;
                true
            }
            None => false,
        }
    }

    pub fn get(&self, event: &str) -> u64 {
        EVENTS
            .iter()
            .position(|e| *e == event)
            .map_or(0, |i| self.events[i])
    }
}

/// A label value as the exposition format wants it: `\`, `"` and newline
/// escaped. (Program names never need it; the rule is kept for every value.)
pub fn escape_label(v: &str) -> Cow<'_, str> {
    if !v.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(v);
    }
    let mut out = String::with_capacity(v.len() + 8);
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const fn fam(name: &'static str, kind: &'static str, help: &'static str) -> Family {
    Family { name, kind, help }
}

/// The per-process families, in the order they are written.
const PROCESS: [Family; 6] = [
    fam(
        "taskmaster_process_up",
        "gauge",
        "1 if the process is RUNNING, else 0.",
    ),
    fam(
        "taskmaster_process_state",
        "gauge",
        "1 for the state the process is in, 0 for the others.",
    ),
    fam(
        "taskmaster_process_restarts_total",
        "counter",
        "Automatic restarts since the daemon started (never reset).",
    ),
    fam(
        "taskmaster_process_start_time_seconds",
        "gauge",
        "Start time of the live process since the Unix epoch, in seconds.",
    ),
    fam(
        "taskmaster_process_resident_memory_bytes",
        "gauge",
        "Resident memory of the live process's whole process group, in bytes.",
    ),
    fam(
        "taskmaster_process_cpu_seconds_total",
        "counter",
        "User and system CPU time of the live process's whole process group, in seconds.",
    ),
];

const DAEMON: [Family; 3] = [
    fam(
        "taskmaster_daemon_resident_memory_bytes",
        "gauge",
        "Resident memory of taskmasterd itself, in bytes.",
    ),
    fam(
        "taskmaster_daemon_open_fds",
        "gauge",
        "Open file descriptors of taskmasterd itself.",
    ),
    fam(
        "taskmaster_events_total",
        "counter",
        "States entered by processes (and UNHEALTHY verdicts) since the daemon started.",
    ),
];

fn header(out: &mut String, f: &Family) {
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
}

/// A `metrics` reply (or a `GET /metrics` body) written out as the client
/// reads it: one family after the other, each a pass over the process table.
pub struct MetricsStream {
    scan: Scan,
    /// HTTP body: no final `OK`.
    http: bool,
    /// Index in `PROCESS`; `PROCESS.len()` = the daemon families.
    family: usize,
    /// Position in the status order within the current family.
    pos: usize,
    /// The status-order key of the last process passed in this family: a
    /// reload between two turns reorders the table, and the stream goes on
    /// after this key rather than at a stale position (which would list
    /// some processes twice, and Prometheus rejects such a scrape whole).
    last: Option<crate::supervisor::ResumeKey>,
    headed: bool,
}

impl MetricsStream {
    pub fn new(sup: &Supervisor, http: bool) -> MetricsStream {
        let groups = sup
            .order
            .iter()
            .filter_map(|s| sup.get(*s))
            .filter(|p| p.pid.is_some())
            .filter_map(|p| p.pgid);
        MetricsStream {
            scan: Scan::new(groups),
            http,
            family: 0,
            pos: 0,
            last: None,
            headed: false,
        }
    }

    /// The samples of the current family for process `p`.
    fn samples(&self, out: &mut String, p: &Process, now: Instant) {
        let name = PROCESS[self.family].name;
        let labels = format!(
            "program=\"{}\",process=\"{}\"",
            escape_label(&p.cfg.name),
            escape_label(&p.name)
        );
        let state = p.proc.state;
        let usage = p.pid.and(p.pgid).and_then(|g| self.scan.get(g));
        match self.family {
            0 => {
                let up = u8::from(state == State::Running);
                let _ = writeln!(out, "{name}{{{labels}}} {up}");
            }
            1 => {
                for s in State::ALL {
                    let v = u8::from(s == state);
                    let _ = writeln!(out, "{name}{{{labels},state=\"{}\"}} {v}", s.token());
                }
            }
            2 => {
                let _ = writeln!(out, "{name}{{{labels}}} {}", p.restarts_total);
            }
            3 => {
                if let Some(at) = p.pid.and(p.spawned_at) {
                    let ago = now.saturating_duration_since(at);
                    let wall = SystemTime::now()
                        .checked_sub(ago)
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok());
                    if let Some(t) = wall {
                        let _ = writeln!(out, "{name}{{{labels}}} {:.3}", t.as_secs_f64());
                    }
                }
            }
            4 => {
                if let Some(u) = usage {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", u.rss_bytes);
                }
            }
            _ => {
                if let Some(u) = usage {
                    let _ = writeln!(out, "{name}{{{labels}}} {}", u.cpu_seconds());
                }
            }
        }
    }

    fn daemon(&self, sup: &Supervisor, out: &mut String) {
        header(out, &DAEMON[0]);
        if let Some(b) = procscan::own_rss() {
            let _ = writeln!(out, "{} {b}", DAEMON[0].name);
        }
        header(out, &DAEMON[1]);
        if let Some(n) = procscan::own_fds() {
            let _ = writeln!(out, "{} {n}", DAEMON[1].name);
        }
        header(out, &DAEMON[2]);
        for e in EVENTS {
            let n = sup.counters.get(e);
            let _ = writeln!(out, "{}{{event=\"{e}\"}} {n}", DAEMON[2].name);
        }
    }
}

impl Streamed for MetricsStream {
    fn fill(&mut self, sup: &Supervisor, now: Instant, out: &mut String, budget: usize) -> bool {
        // The scan first, one batch per turn: it writes nothing meanwhile.
        if !self.scan.done() && !self.scan.step(procscan::BATCH) {
            return false;
        }
        let start = out.len();
        while out.len() - start < budget {
            if self.family >= PROCESS.len() {
                self.daemon(sup, out);
                if !self.http {
                    out.push_str("OK\n");
                }
                return true;
            }
            if !self.headed {
                self.headed = true;
                header(out, &PROCESS[self.family]);
            }
            self.pos = sup.resume_at(self.pos, self.last.as_ref());
            let Some(&slot) = sup.order.get(self.pos) else {
                (self.family, self.pos, self.headed) = (self.family + 1, 0, false);
                self.last = None;
                continue;
            };
            self.pos += 1;
            let Some(p) = sup.get(slot) else { continue };
            sup.remember(slot, &mut self.last);
            // A retired process may share its name with a new one: a scrape
            // with the same labels twice would be rejected whole.
            if !p.retired {
                self.samples(out, p, now);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("web:0"), "web:0");
        assert!(matches!(escape_label("web:0"), Cow::Borrowed(_)));
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("\\\\"), "\\\\\\\\");
        // Other text (tabs, non-ASCII) stays as it is: UTF-8 is allowed.
        assert_eq!(escape_label("é\tx"), "é\tx");
    }

    #[test]
    fn counters_take_states_and_unhealthy_only() {
        let mut c = Counters::default();
        c.entered(State::Fatal);
        c.entered(State::Fatal);
        assert!(c.count("UNHEALTHY"));
        assert!(!c.count("BOGUS"));
        assert_eq!(c.get("FATAL"), 2);
        assert_eq!(c.get("UNHEALTHY"), 1);
        assert_eq!(c.get("RUNNING"), 0);
        assert_eq!(c.get("BOGUS"), 0);
        for s in State::ALL {
            assert!(EVENTS.contains(&s.token()), "{s:?}");
        }
    }

    #[test]
    fn no_line_is_ever_stuffed() {
        for f in PROCESS.iter().chain(&DAEMON) {
            let mut out = String::new();
            header(&mut out, f);
            assert!(f.name.starts_with("taskmaster_"));
            assert!(f.kind == "gauge" || f.kind == "counter");
            assert_eq!(
                f.kind == "counter",
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
            for l in out.lines() {
                assert_eq!(crate::protocol::stuff(l), l);
            }
        }
    }
}
