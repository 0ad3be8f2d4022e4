//! The supervisor's side of probes: which probe each process needs after
//! each step (readiness while STARTING, health while RUNNING, else none), a
//! notify socket made before a spawn, and results turned into events for the
//! state table (`Ready`, `Unhealthy`).

use super::Supervisor;
use crate::config::{Check, Program};
use crate::probe::{notify, Outcome, Phase};
use crate::state::{Event, State};
use log::{debug, info, warn};
use std::rc::Rc;
use std::time::Instant;

impl Supervisor {
    /// Gives `slot` the probe its state needs (called after every step).
    pub(super) fn sync_probe(&mut self, slot: usize, now: Instant) {
        let Some(p) = self.get(slot) else {
            let (timers, oneshots) = (&mut self.timers, &mut self.oneshots);
            return self
                .probes
                .set(slot, None, now, timers, &self.reg, oneshots);
        };
        let (cfg, index) = (p.cfg.clone(), p.index);
        // The process's own check: its strings may use %(process_num).
        let want = match (p.proc.state, p.pid) {
            (State::Starting, Some(pid)) => cfg
                .rare
                .ready
                .as_ref()
                .map(|r| (Phase::Ready, r.for_index(index), pid)),
            (State::Running, Some(pid)) => cfg
                .rare
                .healthcheck
                .as_ref()
                .map(|h| (Phase::Health, h.for_index(index), pid)),
            _ => None,
        };
        let want = want
            .as_ref()
            .map(|(phase, probe, pid)| (*phase, &**probe, *pid));
        let (timers, oneshots) = (&mut self.timers, &mut self.oneshots);
        self.probes
            .set(slot, want, now, timers, &self.reg, oneshots);
    }

    /// After a reload changed `ready:`/`healthcheck:` in place.
    pub(super) fn sync_all_probes(&mut self, now: Instant) {
        for slot in self.order.clone() {
            self.sync_probe(slot, now);
        }
    }

    /// The settings to spawn `slot` with: with `ready: {notify: true}`, its
    /// own new notify socket as `NOTIFY_SOCKET`.
    pub(super) fn spawn_config(&mut self, slot: usize) -> Result<Rc<Program>, String> {
        let Some(p) = self.get(slot) else {
            return Err("process removed".into());
        };
        let cfg = p.cfg.clone();
        if !cfg
            .rare
            .ready
            .as_ref()
            .is_some_and(|r| r.check == Check::Notify)
        {
            return Ok(cfg);
        }
        let name = p.name.clone();
        let dir = notify::dir_for(&self.config.socket);
        let uid = cfg.user.as_ref().map(|u| u.uid);
        let path = self.probes.open_notify(slot, &dir, &name, uid, &self.reg)?;
        let mut with = (*cfg).clone();
        with.env.retain(|(k, _)| k != "NOTIFY_SOCKET");
        with.env
            .push(("NOTIFY_SOCKET".into(), path.to_string_lossy().into_owned()));
        Ok(Rc::new(with))
    }

    /// `Deadline::Probe(slot)` fired.
    pub fn on_probe_deadline(&mut self, slot: usize, now: Instant) {
        let (reg, timers, oneshots) = (&self.reg, &mut self.timers, &mut self.oneshots);
        let outcome = self.probes.on_deadline(slot, now, timers, reg, oneshots);
        self.probe_outcome(slot, outcome, now);
    }

    /// The socket of `slot`'s tcp or http check is ready.
    pub fn on_probe_socket(&mut self, slot: usize, now: Instant) {
        let outcome = self.probes.on_ready(slot, now, &mut self.timers, &self.reg);
        self.probe_outcome(slot, outcome, now);
    }

    /// The notify socket of `slot` is readable.
    pub fn on_notify(&mut self, slot: usize, now: Instant) {
        let outcome = self.probes.on_notify(slot);
        self.probe_outcome(slot, outcome, now);
    }

    /// Notify sockets left with datagrams by their budget: one more budget each.
    pub fn notify_again(&mut self, now: Instant) {
        for slot in self.probes.take_notify_again() {
            self.on_notify(slot, now);
        }
    }

    /// Probe commands that ended this turn.
    pub fn probe_commands(&mut self, now: Instant) {
        for (slot, generation, ended) in self.oneshots.take_probe_outcomes() {
            let timers = &mut self.timers;
            let outcome = self.probes.on_command(slot, generation, ended, now, timers);
            self.probe_outcome(slot, outcome, now);
        }
    }

    fn probe_outcome(&mut self, slot: usize, outcome: Outcome, now: Instant) {
        let Some(p) = self.get(slot) else { return };
        let name = &p.name;
        match outcome {
            Outcome::Pending => return,
            Outcome::Ready => {
                info!("{name}: ready");
                let uptime = p.spawned_at.map(|t| now.saturating_duration_since(t));
                self.feed(
                    slot,
                    Event::Ready {
                        uptime: uptime.unwrap_or_default(),
                    },
                );
            }
            Outcome::Healthy { failures: 0 } => return debug!("{name}: healthy"),
            Outcome::Healthy { failures } => {
                return info!("{name}: healthy again after {failures} failed health check(s)")
            }
            Outcome::Failed {
                why,
                failures,
                retries,
            } => return warn!("{name}: health check failed ({failures}/{retries}): {why}"),
            Outcome::Unhealthy(why) => {
                let retries = p.cfg.rare.healthcheck.as_ref().map_or(0, |h| h.retries);
                warn!(
                    "{name}: unhealthy: {retries} health checks failed in a row, the last: {why}"
                );
                // Counted and reported before the stop: the report shows the
                // pid that was found unhealthy.
                self.counters.count("UNHEALTHY");
                self.alert(slot, crate::alerts::AlertEvent::Unhealthy);
                self.feed(slot, Event::Unhealthy(why));
            }
        }
        self.run(now);
    }

    /// Consecutive failed health checks and the limit, for `status`.
    pub fn health(&self, slot: usize) -> Option<(u32, u32)> {
        self.probes.health(slot)
    }
}
