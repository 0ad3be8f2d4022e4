//! Applying a reload plan to the table: only what changed is touched, and each
//! decision about a process is an event into the state table.

use super::Supervisor;
use crate::config::Config;
use crate::reload::{Change, Plan};
use crate::state::{self, Event, State};
use crate::timers::Deadline;
use log::info;
use std::time::Instant;

impl Supervisor {
    /// Live (not retired) slots of program `name`.
    fn slots_of(&self, name: &str) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|s| {
                self.get(*s)
                    .is_some_and(|p| !p.retired && p.cfg.name == name)
            })
            .collect()
    }

    /// Whether applying `new` would restart any process of program `name` (a
    /// changed identity key restarts only what the operator has not stopped).
    pub fn would_restart(&self, name: &str, new: &Config) -> bool {
        let Some(program) = new.programs.iter().find(|p| p.name == name) else {
            return false;
        };
        self.slots_of(name).iter().any(|s| {
            self.get(*s).is_some_and(|p| {
                p.index < program.numprocs
                    && state::restarts_on_reload(&p.proc, program.autostart, &p.cfg)
            })
        })
    }

    /// Applies a reload plan.
    pub fn apply(&mut self, mut new: Config, plan: &Plan, now: Instant) {
        let mut start = Vec::new();
        for (name, change) in &plan.programs {
            let slots = self.slots_of(name);
            let Some(program) = new.programs.iter().find(|p| p.name == *name) else {
                for slot in slots {
                    self.retire(slot);
                }
                continue;
            };
            let cfg = program.clone();
            let identity = matches!(change, Change::Changed { restart, .. } if !restart.is_empty());
            let mut have = 0;
            for slot in slots {
                let Some(p) = self.get_mut(slot) else {
                    continue;
                };
                if p.index >= cfg.numprocs {
                    self.retire(slot);
                    continue;
                }
                have = have.max(p.index + 1);
                if identity {
                    p.next_cfg = Some(cfg.clone());
                    self.feed(
                        slot,
                        Event::Reconfigured {
                            autostart: cfg.autostart,
                        },
                    );
                } else {
                    // Watch-only keys, rotation limits included, apply in place.
                    let limits = [
                        (cfg.rare.stdout_maxbytes, cfg.rare.stdout_backups),
                        (cfg.rare.stderr_maxbytes, cfg.rare.stderr_backups),
                    ];
                    for (stream, (max, backups)) in p.out.iter_mut().zip(limits) {
                        if let Some(sink) = &mut stream.sink {
                            sink.set_limits(max, backups);
                        }
                    }
                    // Gaining or losing `ready:` changes what ends STARTING:
                    // judged again as just spawned (removed with starttime 0,
                    // nothing would ever end it; added, the old starttime's
                    // deadline would fail it as not ready).
                    let rejudge = p.proc.state == State::Starting
                        && p.pid.is_some()
                        && p.cfg.rare.ready.is_some() != cfg.rare.ready.is_some();
                    p.cfg = cfg.clone();
                    if rejudge {
                        self.timers.cancel(Deadline::Proc(slot));
                        self.feed(slot, Event::Spawned);
                    }
                }
            }
            let added: Vec<usize> = (have..cfg.numprocs).map(|i| self.add(&cfg, i)).collect();
            if cfg.autostart {
                start.extend(added);
            }
        }
        // An unchanged program's processes keep the settings they share, and
        // the new config takes that copy too: one copy per program.
        for p in &mut new.programs {
            let old = &self.config.programs;
            if let Ok(i) = old.binary_search_by(|o| o.name.cmp(&p.name)) {
                if old[i] == *p {
                    *p = old[i].clone();
                }
            }
        }
        self.config = new;
        self.reorder();
        // Added processes start through the new graph: an added dependency
        // is pulled along and waited for.
        self.rebuild_gate();
        self.start_ordered(&start);
        self.run(now);
        self.sync_all_probes(now);
    }

    /// Removed by a reload: stop with its own (old) settings, then drop.
    fn retire(&mut self, slot: usize) {
        if let Some(p) = self.get_mut(slot) {
            p.retired = true;
            self.retiring += 1;
            self.feed(slot, Event::Stop);
        }
    }

    /// Frees retired processes that have finished stopping.
    pub fn drop_retired(&mut self) {
        if self.retiring == 0 {
            return;
        }
        let mut changed = false;
        for slot in 0..self.procs.len() {
            let done = self
                .get(slot)
                .is_some_and(|p| p.retired && p.pid.is_none() && !p.proc.state.is_alive());
            if done {
                for which in crate::output::Which::BOTH {
                    self.close_pipe(slot, which, true);
                }
                if let Some(p) = self.procs[slot].take() {
                    info!("{}: removed", p.name);
                }
                self.timers.cancel(crate::timers::Deadline::Proc(slot));
                self.free.push(slot);
                self.retiring -= 1;
                changed = true;
            }
        }
        if changed {
            self.reorder();
        }
    }
}
