//! Executes protocol requests against the supervisor. `start`, `stop` and
//! `restart` return a `Waiter`: the reply is due once every target got there,
//! and each target is judged when *it* gets there, not when the reply is sent.
//! `status` returns a `StatusStream` and `metrics` a `MetricsStream`, written
//! out as the client reads them.

use crate::commands;
use crate::metrics::MetricsStream;
use crate::procscan::{self, Scan};
use crate::protocol::{self, ProcessView, Request};
use crate::state::{Event, State};
use crate::supervisor::{Intent, Supervisor, Transition};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Goal {
    Start,
    Stop,
}

/// A target's line once decided, and whether it counts as failed.
type Verdict = Option<(String, bool)>;

/// A deferred reply: one line per target, each decided as that target settles.
pub struct Waiter {
    pub client: usize,
    goal: Goal,
    /// Transitions up to this one happened before the command was judged.
    since: u64,
    /// (slot, name, verdict)
    targets: Vec<(usize, String, Verdict)>,
    /// Slot → index in `targets`: a transition is matched in O(1), so a
    /// `start all` of many processes costs one look-up per change.
    by_slot: std::collections::HashMap<usize, usize>,
    /// Targets not decided yet.
    pending: usize,
}

pub enum Outcome {
    Reply(String),
    Status(StatusStream),
    Metrics(MetricsStream),
    Wait(Waiter),
    Shutdown,
    Reload {
        dry_run: bool,
    },
    /// Reply OK, then close the connection.
    Quit,
    /// The body of `tail`, then OK, or the follow.
    Tail(commands::Tail),
    /// Reopen every log and output file.
    Reopen,
    /// Attach the client to the terminal of this process.
    Attach {
        slot: usize,
        size: Option<(u16, u16)>,
    },
}

/// The slot `attach NAME` may attach to, or why not.
fn attachable(sup: &Supervisor, name: &str) -> Result<usize, String> {
    let slot = sup.resolve_one(name)?;
    let Some(p) = sup.get(slot) else {
        return Err(format!("{name}: removed"));
    };
    if !p.cfg.attach {
        return Err(format!("{}: not attachable", p.name));
    }
    if sup.attached.contains(&slot) {
        return Err(format!("{}: already attached", p.name));
    }
    if p.pid.is_none() || p.out[0].pipe.is_none() {
        return Err(format!("{}: not running", p.name));
    }
    Ok(slot)
}

/// Whether a request only reads (logged at debug, not info).
pub fn read_only(req: &Request) -> bool {
    matches!(
        req,
        Request::Status { .. }
            | Request::Help(_)
            | Request::Reload { dry_run: true }
            | Request::Tail { .. }
            | Request::Pid(_)
            | Request::Metrics
            | Request::Version
            | Request::Avail
    )
}

pub fn execute(sup: &mut Supervisor, client: usize, req: Request, now: Instant) -> Outcome {
    let (names, goal, events): (Vec<String>, Goal, &[Event]) = match req {
        Request::Status { names, json } => {
            return match StatusStream::new(sup, &names, json) {
                Ok(s) => Outcome::Status(s),
                Err(e) => Outcome::Reply(protocol::reply(&[], Err(e))),
            }
        }
        Request::Help(topic) => {
            return Outcome::Reply(match protocol::help(topic.as_deref()) {
                Ok(body) => protocol::reply(&body, Ok(())),
                Err(e) => protocol::reply(&[], Err(e)),
            })
        }
        Request::Quit => return Outcome::Quit,
        Request::Metrics => return Outcome::Metrics(MetricsStream::new(sup, false)),
        // Checked by the connection where a secret is needed (serve.rs).
        Request::Auth(_) => return Outcome::Reply(protocol::reply(&[], Ok(()))),
        Request::Tail {
            follow,
            lines,
            name,
            stream,
        } => {
            return match commands::tail(sup, &name, stream, lines, follow) {
                Ok(t) => Outcome::Tail(t),
                Err(e) => Outcome::Reply(protocol::reply(&[], Err(e))),
            }
        }
        Request::Signal { sig, names } => {
            return Outcome::Reply(commands::signal(sup, sig, &names))
        }
        Request::Pid(names) => return Outcome::Reply(commands::pid(sup, &names)),
        Request::Reopen => return Outcome::Reopen,
        Request::Version => return Outcome::Reply(crate::avail::version_reply()),
        Request::Avail => return Outcome::Reply(crate::avail::reply(&sup.config)),
        Request::Attach { name, size } => {
            return match attachable(sup, &name) {
                Ok(slot) => Outcome::Attach { slot, size },
                Err(e) => Outcome::Reply(protocol::reply(&[], Err(e))),
            }
        }
        Request::Shutdown => return Outcome::Shutdown,
        Request::Reload { dry_run } => return Outcome::Reload { dry_run },
        Request::Start(n) => (n, Goal::Start, &[Event::Start]),
        Request::Stop(n) => (n, Goal::Stop, &[Event::Stop]),
        Request::Restart(n) => (n, Goal::Start, &[Event::Stop, Event::Start]),
    };
    let slots = match sup.resolve(&names) {
        Ok(s) => s,
        Err(e) => return Outcome::Reply(protocol::reply(&[], Err(e))),
    };
    let restart = events.len() > 1;
    // A start pulls along the stopped dependencies, each with its own line.
    let pulled = match goal {
        Goal::Start => sup.with_dependencies(&slots),
        Goal::Stop => Vec::new(),
    };
    let mut feed = Vec::with_capacity(slots.len() + pulled.len());
    let mut targets = Vec::with_capacity(slots.len() + pulled.len());
    for slot in pulled.iter().chain(&slots).copied() {
        let before = sup.state(slot);
        let noop = match goal {
            Goal::Start if !restart && matches!(before, State::Running) => Some("already running"),
            Goal::Stop if before == State::Stopped => Some("already stopped"),
            _ => None,
        };
        let name = sup.get(slot).map(|p| p.name.clone()).unwrap_or_default();
        let fixed = noop.map(|n| (format!("{name}: {n}"), false));
        if fixed.is_none() {
            feed.push(slot);
        }
        targets.push((slot, name, fixed));
    }
    match goal {
        // Dependents stop before their dependencies (every named slot counts
        // towards "the whole program", stopped ones included).
        Goal::Stop => sup.stop_ordered(&slots),
        Goal::Start => {
            sup.spawn_order(&mut feed);
            for slot in feed {
                let named = !pulled.contains(&slot);
                for ev in events.iter().filter(|e| named || **e == Event::Start) {
                    sup.feed(slot, ev.clone());
                }
            }
        }
    }
    sup.run(now);
    let mut w = Waiter {
        client,
        goal,
        since: sup.transition_seq,
        by_slot: targets.iter().enumerate().map(|(i, t)| (t.0, i)).collect(),
        pending: targets.iter().filter(|t| t.2.is_none()).count(),
        targets,
    };
    // Where each target stands now that the command ran.
    for i in 0..w.targets.len() {
        let slot = w.targets[i].0;
        if let Some(p) = sup.get(slot) {
            w.judge(i, p.proc.state, &p.proc.message, sup.intent(slot));
        }
    }
    Outcome::Wait(w)
}

impl Waiter {
    fn judge(&mut self, i: usize, state: State, message: &str, intent: Option<Intent>) {
        let (_, name, line) = &mut self.targets[i];
        if line.is_some() {
            return;
        }
        *line = match (self.goal, state, intent) {
            // Held back by the dependency gate: not there yet, but on its way.
            (Goal::Start, _, Some(Intent::Waiting)) | (Goal::Stop, _, Some(Intent::Held)) => None,
            (Goal::Start, _, Some(Intent::Blocked)) => {
                Some((format!("{name}: failed: {message}"), true))
            }
            (_, State::Starting | State::Stopping, _) => None,
            (Goal::Start, State::Running, _) => Some((format!("{name}: started"), false)),
            (Goal::Stop, State::Stopped, _) => Some((format!("{name}: stopped"), false)),
            (_, s, _) => {
                let why = if message.is_empty() {
                    String::new()
                } else {
                    format!(" ({message})")
                };
                Some((format!("{name}: failed: {}{why}", s.token()), true))
            }
        };
        if line.is_some() {
            self.pending -= 1;
        }
    }

    /// Records what a state change means for this reply.
    pub fn note(&mut self, t: &Transition, sup: &Supervisor) {
        if t.seq <= self.since {
            return;
        }
        if let Some(&i) = self.by_slot.get(&t.slot) {
            let message = sup
                .get(t.slot)
                .map_or("removed", |p| p.proc.message.as_str());
            self.judge(i, t.to, message, sup.intent(t.slot));
        }
    }

    /// The reply, once every target is decided.
    pub fn reply(&self) -> Option<String> {
        if self.pending > 0 {
            return None;
        }
        let mut body = Vec::with_capacity(self.targets.len());
        let mut failed = 0;
        for (_, _, line) in &self.targets {
            let (text, bad) = line.as_ref()?;
            body.push(text.clone());
            failed += usize::from(*bad);
        }
        let result = if failed == 0 {
            Ok(())
        } else {
            Err(format!("{failed} failed"))
        };
        Some(protocol::reply(&body, result))
    }

    /// Targets freed meanwhile (a reload removed them) are decided as such.
    pub fn forget_freed(&mut self, sup: &Supervisor) {
        if self.pending == 0 {
            return;
        }
        for (slot, name, line) in &mut self.targets {
            if line.is_none() && sup.get(*slot).is_none() {
                *line = Some((format!("{name}: failed: removed"), true));
                self.pending -= 1;
            }
        }
    }
}

/// Which processes a `status` lists.
enum Slots {
    /// Every process, by position in the status order (no copy of the table),
    /// and the last one written (the order may change between two turns).
    All(usize, Option<crate::supervisor::ResumeKey>),
    /// Named ones: [slot, program (in the list of names), index], so a slot
    /// freed and taken by another process between two turns (two reloads) is
    /// skipped rather than listed as if named.
    List(Vec<[u32; 3]>, Vec<String>, usize),
}

/// Whether `e`'s slot still holds the process it held when the reply began.
fn same(sup: &Supervisor, e: &[u32; 3], programs: &[String]) -> bool {
    sup.get(e[0] as usize).is_some_and(|p| {
        p.index == e[2]
            && programs
                .get(e[1] as usize)
                .is_some_and(|n| *n == p.cfg.name)
    })
}

/// A reply written out in pieces as the client reads it.
pub trait Streamed {
    /// Appends about `budget` bytes of the reply to `out`; true once the
    /// whole reply (its final line included) has been appended. May append
    /// nothing while it does other bounded work (a /proc scan batch).
    fn fill(&mut self, sup: &Supervisor, now: Instant, out: &mut String, budget: usize) -> bool;
}

/// A `status` reply written out in pieces as the client reads: a reply for
/// 65 536 processes costs the daemon one output buffer, not 5 MiB per client.
pub struct StatusStream {
    slots: Slots,
    json: bool,
    /// `--json` only: memory and CPU from /proc (the human form never scans).
    scan: Option<Scan>,
    width: usize,
    /// Objects written so far (for the JSON commas).
    written: usize,
    opened: bool,
    /// The line being written, reused from process to process.
    view: ProcessView,
}

impl StatusStream {
    fn new(sup: &Supervisor, names: &[String], json: bool) -> Result<StatusStream, String> {
        let slots = if names.is_empty() {
            Slots::All(0, None)
        } else {
            let mut programs: Vec<String> = Vec::new();
            let mut v = Vec::new();
            for slot in sup.resolve(names)? {
                let Some(p) = sup.get(slot) else { continue };
                // A program's processes come together: the last name is the one.
                if programs.last() != Some(&p.cfg.name) {
                    programs.push(p.cfg.name.clone());
                }
                v.push([slot as u32, (programs.len() - 1) as u32, p.index]);
            }
            Slots::List(v, programs, 0)
        };
        let mut s = StatusStream {
            slots,
            json,
            scan: None,
            width: 0,
            written: 0,
            opened: false,
            view: ProcessView::default(),
        };
        if !json {
            s.width = s
                .remaining(sup)
                .filter_map(|slot| sup.get(slot))
                .map(|p| p.name.len())
                .max()
                .unwrap_or(0);
        } else {
            let groups: Vec<i32> = s
                .remaining(sup)
                .filter_map(|slot| sup.get(slot))
                .filter(|p| p.pid.is_some())
                .filter_map(|p| p.pgid)
                .collect();
            s.scan = Some(Scan::new(groups));
        }
        Ok(s)
    }

    fn remaining<'a>(&'a self, sup: &'a Supervisor) -> Box<dyn Iterator<Item = usize> + 'a> {
        match &self.slots {
            Slots::All(pos, _) => Box::new(sup.order.iter().skip(*pos).copied()),
            Slots::List(v, programs, pos) => Box::new(
                (v.iter().skip(*pos))
                    .filter(|e| same(sup, e, programs))
                    .map(|e| e[0] as usize),
            ),
        }
    }

    fn next_slot(&mut self, sup: &Supervisor) -> Option<usize> {
        match &mut self.slots {
            // `fill` resumed `pos` (see there).
            Slots::All(pos, _) => {
                let s = sup.order.get(*pos).copied();
                *pos += 1;
                s
            }
            Slots::List(v, programs, pos) => loop {
                let e = v.get(*pos)?;
                *pos += 1;
                if same(sup, e, programs) {
                    return Some(e[0] as usize);
                }
            },
        }
    }
}

impl Streamed for StatusStream {
    fn fill(&mut self, sup: &Supervisor, now: Instant, out: &mut String, budget: usize) -> bool {
        if let Some(scan) = &mut self.scan {
            if !scan.done() && !scan.step(procscan::BATCH) {
                return false;
            }
        }
        let start = out.len();
        if self.json && !self.opened {
            self.opened = true;
            out.push('[');
        }
        // The order changes only between turns (a reload): where to go on
        // is found once per call, and the last process written is noted
        // once, when the call ends (per line, both were a tenth of the CPU
        // of a `status` of 1000).
        if let Slots::All(pos, last) = &mut self.slots {
            *pos = sup.resume_at(*pos, last.as_ref());
        }
        let mut written = None;
        while out.len() - start < budget {
            let Some(slot) = self.next_slot(sup) else {
                out.push_str(if self.json { "]\nOK\n" } else { "OK\n" });
                return true;
            };
            // A process removed since the reply began is skipped. One view
            // is refilled for every line: no strings allocated per process.
            let view = &mut self.view;
            if !sup.view_into(slot, now, view) {
                continue;
            }
            written = Some(slot);
            if let (Some(scan), Some(p)) = (&self.scan, sup.get(slot)) {
                view.usage = p.pid.and(p.pgid).and_then(|g| scan.get(g));
            }
            if self.json {
                if self.written > 0 {
                    out.push(',');
                }
                out.push_str(&protocol::status_json_item(view));
            } else {
                // A program may be called `.x` or `ERR`: body lines are stuffed.
                let line = out.len();
                protocol::write_status_line(out, view, self.width);
                protocol::stuff_tail(out, line);
                out.push('\n');
            }
            self.written += 1;
        }
        if let (Slots::All(_, last), Some(slot)) = (&mut self.slots, written) {
            sup.remember(slot, last);
        }
        false
    }
}
