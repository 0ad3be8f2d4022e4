//! The vocabulary of the state table: states, exits, events, actions, the
//! per-process record, and the timing rules (backoff delays) the table uses.

use std::time::Duration;
/// The nine states of the contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum State {
    /// Where every process begins.
    #[default]
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
