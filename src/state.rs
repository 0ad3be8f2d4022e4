//! The supervision state table: `step(proc, event, config) -> (proc, actions)`.
//!
//! Pure: no clock, no pids, no I/O. The reactor turns readiness, signals and
//! deadlines into `Event`s, calls `step`, and performs the returned `Action`s.
//! Each process has at most one deadline at a time (start, backoff, restart
//! delay or kill), so `Arm` always replaces the previous one.

use crate::config::{AutoRestart, Program};
use std::time::Duration;

#[path = "state_types.rs"]
mod types;
pub use types::*;

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// One transition. Events that mean nothing in a state leave it unchanged.
pub fn step(p: &Proc, ev: &Event, cfg: &Program) -> (Proc, Vec<Action>) {
    use Action::*;
    use State::*;
    let mut n = p.clone();
    if matches!(ev, Event::Spawned) {
        n.ready_after = None;
    }
    let acts = match (p.state, ev) {
        (Starting | Running, Event::Start) => vec![],
        (Stopping, Event::Start) => {
            n.start_after_stop = true;
            vec![]
        }
        (_, Event::Start) => {
            fresh_start(&mut n);
            vec![Disarm, Spawn]
        }

        (Starting | Running, Event::Stop) => {
            n.state = Stopping;
            n.start_after_stop = false;
            n.message.clear();
            vec![Signal(cfg.stopsignal), Arm(cfg.stoptime)]
        }
        // The leader is gone already: stopped now, the rest of its group killed.
        (Stopping, Event::Stop) if p.drain.is_some() => {
            n.verdict = None;
            let d = n.drain.take().map(|d| d.exit);
            n.start_after_stop = false;
            n.state = Stopped;
            n.message = d.map(Exit::describe).unwrap_or_default();
            vec![Disarm, KillGroup]
        }
        // The operator's stop wins over the daemon's own reason to stop it.
        (Stopping, Event::Stop) => {
            n.start_after_stop = false;
            n.verdict = None;
            vec![]
        }
        (Stopped, Event::Stop) => vec![],
        (_, Event::Stop) => {
            n.state = Stopped;
            n.message.clear();
            vec![Disarm]
        }

        // A probe decides; starttime only bounds the wait (0: no bound).
        (Starting, Event::Spawned) if cfg.rare.ready.is_some() => match cfg.starttime.is_zero() {
            true => vec![],
            false => vec![Arm(cfg.starttime)],
        },
        (Starting, Event::Spawned) if cfg.starttime.is_zero() => {
            running(&mut n);
            vec![Disarm]
        }
        (Starting, Event::Spawned) => vec![Arm(cfg.starttime)],
        (_, Event::Spawned) => vec![],

        (Starting, Event::SpawnFailed(why)) => {
            failed_start(&mut n, cfg, format!("spawn error: {why}"))
        }
        (_, Event::SpawnFailed(_)) => vec![],

        (Starting | Running, Event::LeaderExited { exit, uptime }) => {
            n.drain = Some(Drain {
                from: p.state,
                exit: *exit,
                uptime: *uptime,
            });
            n.last_exit = Some(*exit);
            n.state = Stopping;
            n.message = format!("{}; stopping what is left of its group", exit.describe());
            vec![Signal(cfg.stopsignal), Arm(cfg.stoptime)]
        }
        (Stopping, Event::LeaderExited { exit, uptime }) => stop_ended(&mut n, cfg, *exit, *uptime),
        (_, Event::LeaderExited { .. }) => vec![],

        (Stopping, Event::GroupGone) if p.drain.is_some() => {
            let Some(d) = n.drain.take() else {
                return (n, vec![]);
            };
            if n.start_after_stop {
                n.start_after_stop = false;
                n.last_exit = Some(d.exit);
                fresh_start(&mut n);
                return (n, vec![Disarm, Spawn]);
            }
            // Judge the held-back exit as if it had just happened.
            n.state = d.from;
            let (m, mut acts) = step(
                &n,
                &Event::Exited {
                    exit: d.exit,
                    uptime: d.uptime,
                },
                cfg,
            );
            acts.insert(0, Disarm);
            return (m, acts);
        }
        (_, Event::GroupGone) => vec![],

        (Starting, Event::Exited { exit, .. }) if cfg.rare.ready.is_some() => {
            n.last_exit = Some(*exit);
            failed_start(
                &mut n,
                cfg,
                format!("exited before it was ready ({})", exit.describe()),
            )
        }
        (Starting, Event::Exited { exit, uptime }) if *uptime < cfg.starttime => {
            n.last_exit = Some(*exit);
            failed_start(
                &mut n,
                cfg,
                format!("exited too quickly ({})", exit.describe()),
            )
        }
        (Starting | Running, Event::Exited { exit, uptime }) => {
            exited(&mut n, cfg, *exit, ran(p, cfg, *uptime))
        }
        (Stopping, Event::Exited { exit, uptime }) => stop_ended(&mut n, cfg, *exit, *uptime),
        (_, Event::Exited { .. }) => vec![],

        // Not ready in time: stopped, and its end is a failed start.
        (Starting, Event::Deadline) if cfg.rare.ready.is_some() => {
            let why = format!("not ready after {}", secs(cfg.starttime));
            n.message = format!("{why}; stopping it");
            n.verdict = Some(Verdict::NotReady(why));
            n.state = Stopping;
            vec![Signal(cfg.stopsignal), Arm(cfg.stoptime)]
        }
        (Starting, Event::Deadline) => {
            running(&mut n);
            vec![]
        }
        (Backoff | ExitedExpectedly | ExitedUnexpectedly, Event::Deadline) => {
            n.state = Starting;
            n.restarts += 1;
            n.message.clear();
            vec![Spawn]
        }
        (Stopping, Event::Deadline) if p.drain.is_some() => {
            n.message = format!(
                "{}; SIGKILL to what is left of its group after stoptime {}",
                p.drain.map(|d| d.exit.describe()).unwrap_or_default(),
                secs(cfg.stoptime)
            );
            vec![KillGroup, Arm(DRAIN_RECHECK)]
        }
        (Stopping, Event::Deadline) => {
            n.message = format!("SIGKILL after stoptime {}", secs(cfg.stoptime));
            vec![KillGroup]
        }
        (_, Event::Deadline) => vec![],

        (Stopping, Event::Kill) => vec![KillGroup],
        (_, Event::Kill) => vec![],

        // Alive: stop with the old settings, start with the new ones.
        (Starting | Running, Event::Reconfigured { .. }) => {
            n.state = Stopping;
            n.start_after_stop = true;
            n.message.clear();
            vec![Signal(cfg.stopsignal), Arm(cfg.stoptime)]
        }
        (Backoff, Event::Reconfigured { .. }) => {
            fresh_start(&mut n);
            vec![Disarm, Spawn]
        }
        (
            Fatal | ExitedExpectedly | ExitedUnexpectedly,
            Event::Reconfigured { autostart: true },
        ) => {
            fresh_start(&mut n);
            vec![Disarm, Spawn]
        }
        // Stopped, stopping, never started, or given up with autostart off:
        // the new settings apply at the next start the operator asks for.
        (_, Event::Reconfigured { .. }) => vec![],

        // Alive ones are not held back: only a start from rest waits.
        (Starting | Running | Stopping, Event::Wait(_)) => vec![],
        (_, Event::Wait(why)) => {
            n.state = NotStarted;
            n.message = why.clone();
            vec![Disarm]
        }
        (Starting, Event::Ready { uptime }) => {
            running(&mut n);
            n.ready_after = Some(*uptime);
            vec![Disarm]
        }
        (_, Event::Ready { .. }) => vec![],

        (Running, Event::Unhealthy(why)) => {
            n.state = Stopping;
            n.start_after_stop = false;
            n.verdict = Some(Verdict::Unhealthy);
            n.message = format!("unhealthy: {why}; stopping it");
            vec![Signal(cfg.stopsignal), Arm(cfg.stoptime)]
        }
        (_, Event::Unhealthy(_)) => vec![],
    };
    (n, acts)
}

/// Whether a reload that changes what a process is would restart it.
pub fn restarts_on_reload(p: &Proc, autostart: bool, cfg: &Program) -> bool {
    !step(p, &Event::Reconfigured { autostart }, cfg)
        .1
        .is_empty()
}

/// A start asked by the user (or a reload): counters reset, spawn now.
fn fresh_start(n: &mut Proc) {
    (n.attempts, n.crashes, n.restarts) = (0, 0, 0);
    n.message.clear();
    n.state = State::Starting;
}

/// The leader of a STOPPING process exited: STOPPED, or spawned again when a
/// start came meanwhile (restart); what is left of its group is killed.
fn stopped(n: &mut Proc, exit: Exit) -> Vec<Action> {
    n.last_exit = Some(exit);
    n.message = exit.describe();
    if n.start_after_stop {
        n.start_after_stop = false;
        fresh_start(n);
        vec![Action::Disarm, Action::KillGroup, Action::Spawn]
    } else {
        n.state = State::Stopped;
        vec![Action::Disarm, Action::KillGroup]
    }
}

/// The leader of a STOPPING process exited: judged by the daemon's reason to
/// stop it, if it had one and no start came meanwhile, else `stopped`.
fn stop_ended(n: &mut Proc, cfg: &Program, exit: Exit, uptime: Duration) -> Vec<Action> {
    let verdict = n.verdict.take();
    let (Some(verdict), false) = (verdict, n.start_after_stop) else {
        return stopped(n, exit);
    };
    n.last_exit = Some(exit);
    let mut acts = vec![Action::Disarm, Action::KillGroup];
    acts.extend(match verdict {
        Verdict::NotReady(why) => failed_start(n, cfg, why),
        Verdict::Unhealthy => {
            let ran = ran(n, cfg, uptime);
            judged(n, cfg, exit, ran, false, "unhealthy")
        }
    });
    acts
}

/// How long it ran after reaching RUNNING, for an end after `uptime` alive.
fn ran(n: &Proc, cfg: &Program, uptime: Duration) -> Duration {
    uptime.saturating_sub(n.ready_after.unwrap_or(cfg.starttime))
}

fn running(n: &mut Proc) {
    n.state = State::Running;
    n.attempts = 0;
    n.message.clear();
}

/// A spawn that failed or died before `starttime`: BACKOFF, or FATAL once the
/// retries are spent (`startretries: N` means N+1 spawns).
fn failed_start(n: &mut Proc, cfg: &Program, why: String) -> Vec<Action> {
    n.attempts += 1;
    if n.attempts > cfg.startretries {
        n.state = State::Fatal;
        let plural = if n.attempts == 1 { "" } else { "s" };
        n.message = format!("gave up after {} attempt{plural}: {why}", n.attempts);
        vec![Action::Disarm]
    } else {
        let wait = delay(n.attempts, n.seed);
        n.state = State::Backoff;
        n.message = format!("{why}; retry in {}", secs(wait));
        vec![Action::Arm(wait)]
    }
}

/// An exit after RUNNING: EXITED_*, then autorestart decides; quick crash
/// loops wait a growing delay instead of respawning at once forever.
fn exited(n: &mut Proc, cfg: &Program, exit: Exit, ran: Duration) -> Vec<Action> {
    let expected = matches!(exit, Exit::Code(c) if cfg.exitcodes.contains(&c));
    judged(n, cfg, exit, ran, expected, "")
}

/// An end after RUNNING, `expected` or not; `why` (if any) prefixes the message.
fn judged(
    n: &mut Proc,
    cfg: &Program,
    exit: Exit,
    ran: Duration,
    expected: bool,
    why: &str,
) -> Vec<Action> {
    let describe = match why {
        "" => exit.describe(),
        why => format!("{why}, {}", exit.describe()),
    };
    n.last_exit = Some(exit);
    n.attempts = 0;
    n.state = if expected {
        State::ExitedExpectedly
    } else {
        State::ExitedUnexpectedly
    };
    n.message.clone_from(&describe);
    let restart = match cfg.autorestart {
        AutoRestart::Always => true,
        AutoRestart::Never => false,
        AutoRestart::Unexpected => !expected,
    };
    if !restart {
        return vec![Action::Disarm];
    }
    n.crashes = if ran < STABLE { n.crashes + 1 } else { 0 };
    let kind = if expected { "expected" } else { "unexpected" };
    if n.crashes <= 1 {
        n.message = format!("{describe}, {kind}; restarted");
        let passed = n.state;
        n.state = State::Starting;
        n.restarts += 1;
        return vec![Action::Passed(passed), Action::Disarm, Action::Spawn];
    }
    let wait = delay(n.crashes - 1, n.seed);
    n.message = format!("{describe}, {kind}; restarting in {}", secs(wait));
    vec![Action::Arm(wait)]
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "state_probe_tests.rs"]
mod probe_tests;
