//! The supervision state table: `step(proc, event, config) -> (proc, actions)`.
//!
//! Pure: no clock, no pids, no I/O. The reactor turns readiness, signals and
//! deadlines into `Event`s, calls `step`, and performs the returned `Action`s.
//! Each process has at most one deadline at a time (start, backoff, restart
//! delay or kill), so `Arm` always replaces the previous one.

use crate::config::{AutoRestart, Program};
use std::time::Duration;

/// The nine states of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    NotStarted,
    Starting,
    Running,
    Backoff,
    Stopping,
    Stopped,
    ExitedExpectedly,
    ExitedUnexpectedly,
    Fatal,
}

impl State {
    pub const ALL: [State; 9] = [
        State::NotStarted,
        State::Starting,
        State::Running,
        State::Backoff,
        State::Stopping,
        State::Stopped,
        State::ExitedExpectedly,
        State::ExitedUnexpectedly,
        State::Fatal,
    ];

    /// The protocol token.
    pub fn token(self) -> &'static str {
        match self {
            State::NotStarted => "NOT_STARTED",
            State::Starting => "STARTING",
            State::Running => "RUNNING",
            State::Backoff => "BACKOFF",
            State::Stopping => "STOPPING",
            State::Stopped => "STOPPED",
            State::ExitedExpectedly => "EXITED_EXPECTEDLY",
            State::ExitedUnexpectedly => "EXITED_UNEXPECTEDLY",
            State::Fatal => "FATAL",
        }
    }

    /// A process exists (spawned, not yet reaped) in these states.
    pub fn is_alive(self) -> bool {
        matches!(self, State::Starting | State::Running | State::Stopping)
    }
}

/// How a reaped process ended: exit code and killing signal are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn describe(self) -> String {
        match self {
            Exit::Code(c) => format!("exit status {c}"),
            Exit::Signal(s) => format!("killed by {}", crate::signals::name(s)),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A user's `start` (resets the retry count; spawns a BACKOFF one at once).
    Start,
    /// A user's `stop`, or shutdown.
    Stop,
    /// The `Spawn` action succeeded.
    Spawned,
    /// The `Spawn` action failed (missing binary, bad workingdir…).
    SpawnFailed(String),
    /// The process was reaped `uptime` after it was spawned.
    Exited { exit: Exit, uptime: Duration },
    /// The process's deadline passed.
    Deadline,
    /// Kill now (a second SIGTERM during shutdown).
    Kill,
    /// The leader exited by itself but members of its process group live on:
    /// they are stopped before the exit counts for the restart rules.
    LeaderExited { exit: Exit, uptime: Duration },
    /// Nothing is left of the process group of a draining process.
    GroupGone,
    /// A reload changed what the process *is* (cmd, env…); `autostart` is the
    /// new setting. The operator's intent wins: stopped stays stopped.
    Reconfigured { autostart: bool },
    /// A start that must wait for dependencies (the supervisor's gate decides,
    /// and says why): NOT_STARTED with that reason, any pending retry cancelled.
    Wait(String),
    /// The `ready:` probe passed (notify: `READY=1` came).
    Ready { uptime: Duration },
    /// The health check failed `retries` times in a row, the last time for
    /// this reason.
    Unhealthy(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Spawn,
    /// Send this signal to the process group.
    Signal(i32),
    /// SIGKILL to the process group.
    KillGroup,
    /// Set the process's single deadline, replacing any other.
    Arm(Duration),
    /// Clear the process's deadline.
    Disarm,
    /// The process went through this state within the step without
    /// staying (EXITED_* before an immediate restart): it counts as entered
    /// for reports (see `entered`). Nothing to perform.
    Passed(State),
}

/// The states a step entered, in order: those it passed through, then the
/// one it ended in if that is a change (or re-entered after passing through).
/// Reports and hooks fire on these (`report_events`).
pub fn entered(before: State, after: State, actions: &[Action]) -> Vec<State> {
    let mut out: Vec<State> = (actions.iter())
        .filter_map(|a| match a {
            Action::Passed(s) => Some(*s),
            _ => None,
        })
        .collect();
    if after != before || !out.is_empty() {
        out.push(after);
    }
    out
}

/// The policy part of one process's record.
#[derive(Clone, Debug, PartialEq)]
pub struct Proc {
    pub state: State,
    /// Failed starts since the last RUNNING or user start.
    pub attempts: u32,
    /// Consecutive exits less than `STABLE` after reaching RUNNING.
    pub crashes: u32,
    /// Automatic restarts since the last user start.
    pub restarts: u32,
    /// A start was asked while STOPPING: spawn again once stopped (restart).
    pub start_after_stop: bool,
    pub last_exit: Option<Exit>,
    /// The human detail: spawn error, "restarting in 2s", why FATAL.
    pub message: String,
    /// Set while STOPPING what the leader left in its group after exiting by
    /// itself; the exit is judged once the group is gone.
    pub drain: Option<Drain>,
    /// Spreads the jitter of different processes.
    pub seed: u64,
    /// Set while STOPPING a process the daemon gave up on: how its end is
    /// judged (a failed start, or an unexpected exit) instead of STOPPED.
    pub verdict: Option<Verdict>,
    /// How long after its spawn a `ready:` probe passed: the crash-loop clock
    /// ("ran less than 10 s after RUNNING") starts there, not at `starttime`,
    /// which is only the probe's upper bound. None without a probe.
    pub ready_after: Option<Duration>,
}

/// Why the daemon itself stopped a process, and so how its end counts.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Not ready within starttime: a failed start, for this reason.
    NotReady(String),
    /// Its health check failed: an unexpected exit, whatever its code.
    Unhealthy,
}

/// A leader's exit, held back until its process group is empty.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Drain {
    /// STARTING or RUNNING: the state the exit is judged from.
    pub from: State,
    pub exit: Exit,
    pub uptime: Duration,
}

/// How often a draining group is checked again after its SIGKILL.
pub const DRAIN_RECHECK: Duration = Duration::from_secs(1);

/// RUNNING this long resets the crash-loop delay.
pub const STABLE: Duration = Duration::from_secs(10);
/// Longest backoff or restart delay.
pub const MAX_DELAY: Duration = Duration::from_secs(60);

impl Proc {
    pub fn new(seed: u64) -> Proc {
        Proc {
            state: State::NotStarted,
            attempts: 0,
            crashes: 0,
            restarts: 0,
            start_after_stop: false,
            last_exit: None,
            message: String::new(),
            drain: None,
            seed,
            verdict: None,
            ready_after: None,
        }
    }
}

/// `2^(n-1)` seconds capped at `MAX_DELAY`, ±10% jitter decided by `seed` and `n`.
pub fn delay(n: u32, seed: u64) -> Duration {
    let base = Duration::from_secs(1u64 << n.saturating_sub(1).min(6)).min(MAX_DELAY);
    let mix = seed
        .wrapping_add(u64::from(n))
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29);
    let permille = (mix % 201) as i64 - 100; // -100..=100 → ±10%
    let ms = base.as_millis() as i64;
    Duration::from_millis((ms + ms * permille / 1000) as u64)
}

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
        (Starting, Event::Spawned) if cfg.ready.is_some() => match cfg.starttime.is_zero() {
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

        (Starting, Event::Exited { exit, .. }) if cfg.ready.is_some() => {
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
        (Starting, Event::Deadline) if cfg.ready.is_some() => {
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
        n.message = format!("gave up after {} attempts: {why}", n.attempts);
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
