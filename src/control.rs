//! Executes protocol requests against the supervisor. `start`, `stop` and
//! `restart` return a `Waiter`: the reply is due once every target got there.

use crate::protocol::{self, Request};
use crate::state::{Event, State};
use crate::supervisor::Supervisor;
use mio::Registry;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Goal {
    Start,
    Stop,
}

/// A deferred reply: one line per target, decided as each settles.
pub struct Waiter {
    pub client: usize,
    goal: Goal,
    /// (slot, line already decided when the command ran)
    targets: Vec<(usize, Option<String>)>,
}

pub enum Outcome {
    Reply(String),
    Wait(Waiter),
    Shutdown,
    Reload {
        dry_run: bool,
    },
    /// Reply OK, then close the connection.
    Quit,
}

pub fn execute(
    sup: &mut Supervisor,
    client: usize,
    req: Request,
    reg: &Registry,
    now: Instant,
) -> Outcome {
    let (names, goal, events): (Vec<String>, Goal, &[Event]) = match req {
        Request::Status { names, json } => return Outcome::Reply(status(sup, &names, json, now)),
        Request::Help(topic) => {
            return Outcome::Reply(match protocol::help(topic.as_deref()) {
                Ok(body) => protocol::reply(&body, Ok(())),
                Err(e) => protocol::reply(&[], Err(e)),
            })
        }
        Request::Quit => return Outcome::Quit,
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
    let mut targets = Vec::with_capacity(slots.len());
    for slot in slots {
        let before = sup.state(slot);
        let noop = match goal {
            Goal::Start if !restart && matches!(before, State::Running) => Some("already running"),
            Goal::Stop if before == State::Stopped => Some("already stopped"),
            _ => None,
        };
        let name = sup.get(slot).map(|p| p.name.clone()).unwrap_or_default();
        targets.push((slot, noop.map(|n| format!("{name}: {n}"))));
        if noop.is_none() {
            for ev in events {
                sup.feed(slot, ev.clone(), reg, now);
            }
        }
    }
    Outcome::Wait(Waiter {
        client,
        goal,
        targets,
    })
}

impl Waiter {
    /// The reply, once no target is still on its way.
    pub fn poll(&self, sup: &Supervisor) -> Option<String> {
        let moving = |s: State| matches!(s, State::Starting | State::Stopping);
        if self
            .targets
            .iter()
            .any(|(slot, fixed)| fixed.is_none() && moving(sup.state(*slot)))
        {
            return None;
        }
        let mut failed = 0;
        let body: Vec<String> = self
            .targets
            .iter()
            .map(|(slot, fixed)| {
                if let Some(line) = fixed {
                    return line.clone();
                }
                let Some(p) = sup.get(*slot) else {
                    return "?: removed".to_string();
                };
                match (self.goal, p.proc.state) {
                    (Goal::Start, State::Running) => format!("{}: started", p.name),
                    (Goal::Stop, State::Stopped) => format!("{}: stopped", p.name),
                    (_, s) => {
                        failed += 1;
                        let why = if p.proc.message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", p.proc.message)
                        };
                        format!("{}: failed: {}{why}", p.name, s.token())
                    }
                }
            })
            .collect();
        let result = if failed == 0 {
            Ok(())
        } else {
            Err(format!("{failed} failed"))
        };
        Some(protocol::reply(&body, result))
    }
}

fn status(sup: &Supervisor, names: &[String], json: bool, now: Instant) -> String {
    let slots: Vec<usize> = if names.is_empty() {
        sup.order.clone()
    } else {
        match sup.resolve(names) {
            Ok(s) => s,
            Err(e) => return protocol::reply(&[], Err(e)),
        }
    };
    let views: Vec<_> = slots.iter().map(|s| sup.view(*s, now)).collect();
    let body = if json {
        vec![protocol::status_json(&views)]
    } else {
        protocol::status_lines(&views)
    };
    protocol::reply(&body, Ok(()))
}
