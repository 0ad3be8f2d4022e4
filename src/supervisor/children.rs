//! The supervisor's children: spawning a process, watching it (pidfd, with
//! the SIGCHLD sweep as backstop) and turning its end into an event.

use super::{Supervisor, PROC_TOKEN};
use crate::reap;
use crate::spawn;
use crate::state::{Event, Exit, State};
use log::{debug, info, warn};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

impl Supervisor {
    pub(super) fn spawn(&mut self, slot: usize, now: Instant) {
        let fds = self.prepare_output(slot);
        let cfg = self.spawn_config(slot);
        let Some(p) = self.get(slot) else { return };
        let socket = &self.config.socket;
        let spawned = fds.and_then(|io| spawn::spawn(&*cfg?, p.index, io, socket));
        match spawned {
            Ok(pid) => {
                let cmd = &p.cfg.for_process(p.index).cmd_text;
                info!("{}: spawned pid {pid} ({cmd})", p.name);
                let pidfd = self.use_pidfd.then(|| self.watch(slot, pid)).flatten();
                if let Some(p) = self.get_mut(slot) {
                    (p.pid, p.pgid, p.pidfd, p.spawned_at) =
                        (Some(pid), Some(pid), pidfd, Some(now));
                    p.last_pid = Some(pid);
                }
                self.by_pid.insert(pid, slot);
                self.feed(slot, Event::Spawned);
            }
            Err(why) => {
                warn!("{}: spawn failed: {why}", p.name);
                self.feed(slot, Event::SpawnFailed(why));
            }
        }
    }

    /// A registered pidfd for `pid`, or `None`: then the SIGCHLD sweep, which
    /// always runs, reports its exit.
    pub(super) fn watch(&self, slot: usize, pid: i32) -> Option<OwnedFd> {
        let name = self.get(slot).map_or("?", |p| p.name.as_str());
        let fd = reap::pidfd_open(pid)
            .inspect_err(|e| {
                warn!("{name}: no pidfd for pid {pid} ({e}); SIGCHLD will report its exit")
            })
            .ok()?;
        let token = Token(PROC_TOKEN + slot);
        match self
            .reg
            .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
        {
            Ok(()) => Some(fd),
            Err(e) => {
                warn!("{name}: cannot watch pidfd ({e}); SIGCHLD will report its exit");
                None
            }
        }
    }

    /// The pidfd of `slot` is readable: reap it if it has exited.
    pub fn on_pidfd(&mut self, slot: usize, now: Instant) {
        let Some(fd) = self.get(slot).and_then(|p| p.pidfd.as_ref()) else {
            return;
        };
        if let Some(exit) = reap::reap_pidfd(fd) {
            self.exited(slot, exit, now);
        }
        self.run(now);
    }

    /// SIGCHLD: reap what exited (our children, adopted orphans), then look at
    /// draining groups. Returns true if more children may be waiting.
    pub fn on_sigchld(&mut self, now: Instant) -> bool {
        let (reaped, more) = reap::sweep();
        for (pid, exit) in reaped {
            match self.by_pid.get(&pid) {
                Some(&slot) => self.exited(slot, exit, now),
                None if self.oneshots.reaped(pid, exit, &self.reg, &mut self.timers) => {}
                None => debug!("reaped orphan pid {pid}: {}", exit.describe()),
            }
        }
        let draining = std::mem::take(&mut self.draining);
        for slot in draining {
            match self.get(slot).filter(|p| p.proc.drain.is_some()) {
                Some(p) if p.pgid.is_some_and(reap::group_alive) => self.draining.push(slot),
                Some(_) => self.feed(slot, Event::GroupGone),
                None => {}
            }
        }
        self.run(now);
        more
    }

    pub(super) fn exited(&mut self, slot: usize, exit: Exit, now: Instant) {
        let Some(p) = self.get_mut(slot) else { return };
        let Some(pid) = p.pid.take() else { return };
        // Closing the pidfd (its only descriptor) takes it out of the epoll
        // set: no EPOLL_CTL_DEL first (a syscall per exit).
        drop(p.pidfd.take());
        self.by_pid.remove(&pid);
        // What it wrote before exiting is read before its exit is logged.
        self.drain_output(slot);
        let Some(p) = self.get(slot) else { return };
        let uptime = p
            .spawned_at
            .map(|t| now.saturating_duration_since(t))
            .unwrap_or_default();
        info!(
            "{}: pid {pid} exited: {} after {:.1}s",
            p.name,
            exit.describe(),
            uptime.as_secs_f64()
        );
        // Only a live process's exit asks (not one being stopped: at
        // shutdown that is a syscall per process for nothing).
        let alive = matches!(p.proc.state, State::Starting | State::Running);
        if alive && p.pgid.is_some_and(reap::group_alive) {
            info!("{}: its process group {pid} still has members", p.name);
            self.feed(slot, Event::LeaderExited { exit, uptime });
        } else {
            self.feed(slot, Event::Exited { exit, uptime });
        }
    }
}

impl Supervisor {
    /// How a hook's or probe command's group is named in the state file and
    /// in crash recovery's log.
    pub fn oneshot_name(&self, owner: &crate::oneshot::Owner) -> String {
        match owner {
            crate::oneshot::Owner::Hook(label) => label.replace('\n', " "),
            crate::oneshot::Owner::Probe(slot, _) => {
                let name = self.get(*slot).map_or("?", |p| p.name.as_str());
                format!("{name} probe command")
            }
        }
    }
}
