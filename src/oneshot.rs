//! Auxiliary children of the event loop: short commands the daemon runs for
//! itself (`report_command` hooks, command probes), never supervised processes.
//!
//! A one-shot is spawned from an argv without a shell, in a process group of
//! its own, with the daemon's environment minus the variables that mark a
//! supervised process's descendants, plus the caller's. Its stdin is the
//! caller's bytes (at most `MAX_STDIN`, written non-blocking as the pipe takes
//! them, then closed) or /dev/null; its stdout and stderr go to /dev/null.
//! After `timeout` its whole group gets SIGKILL.
//!
//! It is reaped like any child of the loop, by whichever path sees it first:
//! its pidfd (token `base + 2 * id`) or the SIGCHLD sweep, which asks
//! `reaped(pid, exit)` before calling a pid an orphan. Either way its outcome
//! lands in `finished`, tagged with its `Owner`, for the owner to act on. It
//! is never in the process table: not in `status`, not counted, not stopped
//! by `stop all` (shutdown kills what is left, as it does every descendant).
//!
//! Use (the supervisor holds one `OneShots`; its reactor routes tokens
//! `ONESHOT_TOKEN..` to `on_ready` and `Deadline::OneShot(id)` to `on_deadline`):
//! ```text
//! sup.oneshots.spawn(Owner::Hook(label), Spec { argv, env, stdin, timeout }, &reg, &mut timers, now);
//! ...
//! for (owner, outcome) in sup.oneshots.take_finished() { ... }
//! ```

use crate::reap;
use crate::state::Exit;
use crate::timers::{Deadline, Timers};
use log::{debug, warn};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Tokens `ONESHOT_TOKEN + 2 * id` are pidfds, `+ 2 * id + 1` stdin pipes.
pub const ONESHOT_TOKEN: usize = 5 << 32;
/// The most stdin bytes a one-shot is given. A pipe holds 64 KiB, so past
/// that the rest is written as the command reads it.
pub const MAX_STDIN: usize = 256 * 1024;

/// Who asked for a one-shot; its outcome goes back there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A `report_command` run; the label names it in the log
    /// (`web:0 BACKOFF hook`).
    Hook(String),
    /// A command check of the probe of this supervisor slot; the number tells
    /// a probe since replaced (its late outcome is ignored).
    Probe(usize, u64),
}

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    /// Never empty; `argv[0]` is looked up in PATH.
    pub argv: Vec<String>,
    /// Added to (and overriding) the daemon's environment.
    pub env: Vec<(String, String)>,
    /// Written to its stdin, then closed; `None`: stdin is /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Its group is killed after this.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It ended by itself (`Exit::Code(0)` is success).
    Exited(Exit),
    /// It ran past its timeout (this one); its group was killed and it has
    /// been reaped.
    TimedOut(Duration),
    /// It could not be started.
    SpawnFailed(String),
}

impl Outcome {
    /// The log text: `exit status 1`, `killed after its 30s timeout`…
    pub fn describe(&self) -> String {
        match self {
            Outcome::Exited(e) => e.describe(),
            Outcome::TimedOut(t) => format!("killed after its {}s timeout", t.as_secs_f64()),
            Outcome::SpawnFailed(why) => format!("cannot start: {why}"),
        }
    }
}

struct Child {
    owner: Owner,
    pid: i32,
    pidfd: Option<OwnedFd>,
    stdin: Option<(ChildStdin, Vec<u8>, usize)>,
    /// Registered for writability (the first write did not take it all).
    stdin_registered: bool,
    timed_out: bool,
    timeout: Duration,
}

/// The live one-shots and the outcomes not yet taken.
pub struct OneShots {
    next_id: usize,
    live: HashMap<usize, Child>,
    by_pid: HashMap<i32, usize>,
    use_pidfd: bool,
    /// Outcomes for their owners, in the order they happened.
    finished: Vec<(Owner, Outcome)>,
    /// One started or ended since `take_changed` (the state file follows).
    changed: bool,
}

/// Variables that would make a one-shot look like a supervised process's
/// descendant (`reap::kill_strays` matches them) if the daemon had them.
const MARKERS: [&str; 3] = [
    crate::spawn::PROCESS_NAME_VAR,
    "TASKMASTER_PROGRAM",
    "TASKMASTER_PROCESS_NUM",
];

impl OneShots {
    pub fn new(use_pidfd: bool) -> OneShots {
        OneShots {
            next_id: 0,
            live: HashMap::new(),
            by_pid: HashMap::new(),
            use_pidfd,
            finished: Vec::new(),
            changed: false,
        }
    }

    /// The live one-shots' process groups (each leads its own) and owners.
    pub fn groups(&self) -> impl Iterator<Item = (i32, &Owner)> {
        self.live.values().map(|c| (c.pid, &c.owner))
    }

    /// Whether one started or ended since the last call.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// One-shots alive (spawned, not yet reaped) whose owner matches.
    pub fn running(&self, mut owner: impl FnMut(&Owner) -> bool) -> usize {
        self.live.values().filter(|c| owner(&c.owner)).count()
    }

    /// Whether `pid` is a live one-shot (not an orphan, not a stray).
    pub fn owns(&self, pid: i32) -> bool {
        self.by_pid.contains_key(&pid)
    }

    /// Starts `spec` for `owner`. Returns its pid; a failure is also an
    /// outcome in `finished`, so owners handle every end in one place.
    pub fn spawn(
        &mut self,
        owner: Owner,
        spec: Spec,
        reg: &Registry,
        timers: &mut Timers,
        now: Instant,
    ) -> Option<i32> {
        let mut child = match start(&spec) {
            Ok(c) => c,
            Err(why) => {
                self.finished.push((owner, Outcome::SpawnFailed(why)));
                return None;
            }
        };
        let pid = child.id() as i32;
        let id = self.next_id;
        self.next_id += 1;
        let pidfd = self.use_pidfd.then(|| watch(pid, id, reg)).flatten();
        let stdin = match (child.stdin.take(), spec.stdin) {
            (Some(pipe), Some(bytes)) => Some((pipe, bytes, 0)),
            _ => None,
        };
        // Dropping `Child` neither waits nor kills: the loop reaps it.
        drop(child);
        let mut c = Child {
            owner,
            pid,
            pidfd,
            stdin,
            stdin_registered: false,
            timed_out: false,
            timeout: spec.timeout,
        };
        feed_stdin(&mut c, id, reg);
        self.live.insert(id, c);
        self.by_pid.insert(pid, id);
        self.changed = true;
        timers.arm(Deadline::OneShot(id), now + spec.timeout);
        Some(pid)
    }

    /// Readiness of token `ONESHOT_TOKEN + k`: a pidfd (even `k`) or a stdin
    /// pipe (odd `k`).
    pub fn on_ready(&mut self, k: usize, reg: &Registry, timers: &mut Timers) {
        let id = k / 2;
        let Some(c) = self.live.get_mut(&id) else {
            return;
        };
        if k % 2 == 1 {
            return feed_stdin(c, id, reg);
        }
        let exit = c.pidfd.as_ref().and_then(reap::reap_pidfd);
        if let Some(exit) = exit {
            self.done(id, exit, reg, timers);
        }
    }

    /// The SIGCHLD sweep reaped `pid`: true if it was a one-shot (its
    /// outcome is recorded), false if it is someone else's.
    pub fn reaped(&mut self, pid: i32, exit: Exit, reg: &Registry, timers: &mut Timers) -> bool {
        match self.by_pid.get(&pid) {
            Some(&id) => {
                self.done(id, exit, reg, timers);
                true
            }
            None => false,
        }
    }

    /// One-shot `id` ran past its timeout: SIGKILL to its whole group. It is
    /// reaped as usual; its outcome says it timed out.
    pub fn on_deadline(&mut self, id: usize) {
        if let Some(c) = self.live.get_mut(&id) {
            c.timed_out = true;
            reap::signal_group(c.pid, libc::SIGKILL);
        }
    }

    /// Ends the live one-shots of `owner` now (SIGKILL to their groups):
    /// their outcome no longer matters. They are reaped as usual.
    pub fn kill(&mut self, owner: &Owner) {
        for c in self.live.values().filter(|c| c.owner == *owner) {
            reap::signal_group(c.pid, libc::SIGKILL);
        }
    }

    /// The outcomes since the last call, oldest first.
    pub fn take_finished(&mut self) -> Vec<(Owner, Outcome)> {
        std::mem::take(&mut self.finished)
    }

    /// The outcomes of probe commands only (the rest stay for `take_finished`),
    /// so that probes act on them in the turn they happen.
    pub fn take_probe_outcomes(&mut self) -> Vec<(usize, u64, Outcome)> {
        let mut out = Vec::new();
        self.finished.retain(|(owner, outcome)| match owner {
            Owner::Probe(slot, generation) => {
                out.push((*slot, *generation, outcome.clone()));
                false
            }
            _ => true,
        });
        out
    }

    fn done(&mut self, id: usize, exit: Exit, reg: &Registry, timers: &mut Timers) {
        let Some(mut c) = self.live.remove(&id) else {
            return;
        };
        self.by_pid.remove(&c.pid);
        self.changed = true;
        timers.cancel(Deadline::OneShot(id));
        if let Some(fd) = c.pidfd.take() {
            let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        close_stdin(&mut c, reg);
        // A check is over when its command ends: what it left running in
        // its group would pile up, one more each interval. (A hook may
        // leave work behind on purpose; only its timeout ends that.)
        if c.timed_out || matches!(c.owner, Owner::Probe(..)) {
            reap::signal_group(c.pid, libc::SIGKILL);
        }
        let outcome = if c.timed_out {
            Outcome::TimedOut(c.timeout)
        } else {
            Outcome::Exited(exit)
        };
        self.finished.push((c.owner, outcome));
    }
}

fn start(spec: &Spec) -> Result<std::process::Child, String> {
    let Some(program) = spec.argv.first() else {
        return Err("empty command".into());
    };
    if spec.stdin.as_ref().is_some_and(|b| b.len() > MAX_STDIN) {
        return Err(format!("stdin over {MAX_STDIN} bytes"));
    }
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    for var in MARKERS {
        cmd.env_remove(var);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    let child = cmd.spawn().map_err(|e| format!("{program}: {e}"))?;
    if let Some(pipe) = &child.stdin {
        // Non-blocking, so a command that never reads cannot stall the loop.
        let fd = pipe.as_raw_fd();
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    Ok(child)
}

/// A registered pidfd, or `None`: then the SIGCHLD sweep reports its exit.
fn watch(pid: i32, id: usize, reg: &Registry) -> Option<OwnedFd> {
    let fd = reap::pidfd_open(pid)
        .inspect_err(|e| debug!("one-shot pid {pid}: no pidfd ({e}); SIGCHLD reports its exit"))
        .ok()?;
    let token = Token(ONESHOT_TOKEN + 2 * id);
    match reg.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE) {
        Ok(()) => Some(fd),
        Err(e) => {
            debug!("one-shot pid {pid}: cannot watch its pidfd ({e})");
            None
        }
    }
}

/// Writes what the pipe takes; closes it once all is written or the command
/// stopped reading (it may not want its stdin: that is not a failure).
fn feed_stdin(c: &mut Child, id: usize, reg: &Registry) {
    let Some((pipe, bytes, written)) = c.stdin.as_mut() else {
        return;
    };
    while *written < bytes.len() {
        match pipe.write(&bytes[*written..]) {
            Ok(0) => break,
            Ok(n) => *written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !c.stdin_registered {
                    let fd = pipe.as_raw_fd();
                    let token = Token(ONESHOT_TOKEN + 2 * id + 1);
                    match reg.register(&mut SourceFd(&fd), token, Interest::WRITABLE) {
                        Ok(()) => c.stdin_registered = true,
                        Err(e) => {
                            warn!("one-shot pid {}: stdin not written: {e}", c.pid);
                            break;
                        }
                    }
                }
                return;
            }
            Err(e) => {
                debug!("one-shot pid {}: stdin closed early: {e}", c.pid);
                break;
            }
        }
    }
    close_stdin(c, reg);
}

fn close_stdin(c: &mut Child, reg: &Registry) {
    if let Some((pipe, _, _)) = c.stdin.take() {
        if c.stdin_registered {
            let _ = reg.deregister(&mut SourceFd(&pipe.as_raw_fd()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Poll};

    /// Runs the loop's part for one-shots until `n` outcomes are in (pidfds
    /// only: a test must not sweep other tests' children).
    fn drive(
        shots: &mut OneShots,
        poll: &mut Poll,
        timers: &mut Timers,
        n: usize,
    ) -> Vec<(Owner, Outcome)> {
        let mut out = Vec::new();
        let mut events = Events::with_capacity(16);
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.len() < n {
            assert!(Instant::now() < deadline, "no outcome: {out:?}");
            let wait = timers
                .timeout(Instant::now())
                .unwrap_or(Duration::from_secs(1));
            poll.poll(&mut events, Some(wait.min(Duration::from_secs(1))))
                .unwrap();
            for e in events.iter() {
                shots.on_ready(e.token().0 - ONESHOT_TOKEN, poll.registry(), timers);
            }
            while let Some(Deadline::OneShot(id)) = timers.pop_due(Instant::now()) {
                shots.on_deadline(id);
            }
            out.extend(shots.take_finished());
        }
        out
    }

    #[test]
    fn stdin_env_exit_status_timeout_and_spawn_error() {
        if !reap::pidfd_supported() {
            return eprintln!("skipped: no pidfd on this kernel");
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        let mut poll = Poll::new().unwrap();
        let mut timers = Timers::default();
        let mut shots = OneShots::new(true);
        let now = Instant::now();
        // More than a pipe holds: the rest goes as `cat` reads it.
        let script = format!("cat > {}; echo \"$X\" >> {0}; exit 3", file.display());
        let big = vec![b'a'; MAX_STDIN];
        let spec = Spec {
            argv: vec!["sh".into(), "-c".into(), script],
            env: vec![("X".into(), "from env".into())],
            stdin: Some(big.clone()),
            timeout: Duration::from_secs(60),
        };
        let pid = shots.spawn(
            Owner::Hook("a".into()),
            spec,
            poll.registry(),
            &mut timers,
            now,
        );
        assert!(pid.is_some_and(|p| shots.owns(p)));
        assert_eq!(shots.running(|o| *o == Owner::Hook("a".into())), 1);
        let hang = Spec {
            argv: vec!["sleep".into(), "100".into()],
            timeout: Duration::from_millis(200),
            ..Spec::default()
        };
        let hung = shots.spawn(
            Owner::Hook("b".into()),
            hang,
            poll.registry(),
            &mut timers,
            now,
        );
        assert_eq!(shots.running(|_| true), 2);
        let mut got = drive(&mut shots, &mut poll, &mut timers, 2);
        got.sort_by_key(|(o, _)| format!("{o:?}"));
        assert_eq!(
            got[0],
            (Owner::Hook("a".into()), Outcome::Exited(Exit::Code(3)))
        );
        assert_eq!(
            got[1],
            (
                Owner::Hook("b".into()),
                Outcome::TimedOut(Duration::from_millis(200))
            )
        );
        let text = std::fs::read(&file).unwrap();
        assert_eq!(&text[..MAX_STDIN], &big[..], "all of stdin, in order");
        assert_eq!(&text[MAX_STDIN..], b"from env\n");
        assert!(!shots.owns(hung.unwrap()) && shots.running(|_| true) == 0);
        // Reaped: the pid is no child of ours any more.
        let gone = unsafe { libc::waitpid(hung.unwrap(), std::ptr::null_mut(), libc::WNOHANG) };
        assert_eq!(gone, -1, "the timed-out child was reaped");
        let missing = Spec {
            argv: vec!["/nonexistent/hook".into()],
            ..Spec::default()
        };
        let none = shots.spawn(
            Owner::Hook("c".into()),
            missing,
            poll.registry(),
            &mut timers,
            now,
        );
        assert_eq!(none, None);
        assert!(matches!(
            &shots.take_finished()[..],
            [(_, Outcome::SpawnFailed(_))]
        ));
    }
}
