//! Dependency gating: the order of starts and stops is data the supervisor
//! feeds the state table, never a special case in it or in the reactor.
//!
//! A `Start` whose program's dependencies do not meet their conditions is fed
//! to the table as `Wait(why)` instead (NOT_STARTED, "waiting for db
//! (ready)"), and the slot is remembered. A stop of whole programs holds back
//! each program's `Stop` while a dependent stopped by the same command is
//! still alive. Both are looked at again only when a neighbouring program
//! changes state: the gate keeps per-program counts of processes per state, so
//! a check costs one look-up per dependency, not a scan of the table.

use super::Supervisor;
use crate::deps::{self, Counts, Graph, Met};
use crate::state::{Event, State};
use std::collections::{HashMap, HashSet};

/// Why a process is not where it was asked to go yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Asked to start; waits for its dependencies.
    Waiting,
    /// Asked to start; a dependency will not get there by itself (FATAL, or
    /// a `completed` one that exited unexpectedly).
    Blocked,
    /// Asked to stop; waits until its dependents are stopped.
    Held,
}

#[derive(Default)]
pub struct Gate {
    graph: Graph,
    /// Live (not retired) processes of each program in the graph, by state.
    counts: HashMap<String, Counts>,
    /// Slots asked to start that wait, by program.
    waiting: HashMap<String, Vec<usize>>,
    /// Slots whose stop is held, by program, with the dependents waited for.
    held: HashMap<String, (Vec<usize>, Vec<String>)>,
    intent: HashMap<usize, Intent>,
    /// Programs whose counts changed since the gate last looked.
    dirty: Vec<String>,
    /// Look at everything waiting or held again (a reload changed the graph).
    all_dirty: bool,
}

const ALIVE: [State; 3] = [State::Starting, State::Running, State::Stopping];

impl Supervisor {
    /// The graph and the counts from the config and the table as they are now.
    pub(super) fn rebuild_gate(&mut self) {
        let g = &mut self.gate;
        g.graph = Graph::new(
            self.config
                .programs
                .iter()
                .map(|p| (p.name.as_str(), p.rare.depends_on.as_slice(), p.priority)),
        );
        g.counts.clear();
        // Counts are only asked of programs in the graph (dependencies and
        // dependents): a copy of every other name would be memory for nothing.
        let graph = &g.graph;
        let in_graph = |n: &str| !(graph.deps(n).is_empty() && graph.dependents(n).is_empty());
        for p in self.procs.iter().flatten().filter(|p| !p.retired) {
            if !in_graph(&p.cfg.name) {
                continue;
            }
            let c = g.counts.entry(p.cfg.name.clone()).or_default();
            c[deps::state_index(p.proc.state)] += 1;
        }
        g.all_dirty = true;
    }

    /// A live process of `program` went from `from` to `to`.
    pub(super) fn gate_count(&mut self, program: &str, from: State, to: State) {
        let g = &mut self.gate;
        if let Some(c) = g.counts.get_mut(program) {
            let f = &mut c[deps::state_index(from)];
            *f = f.saturating_sub(1);
            c[deps::state_index(to)] += 1;
        }
        if !(g.waiting.is_empty() && g.held.is_empty()) {
            g.dirty.push(program.to_string());
        }
    }

    /// What the gate makes of `ev` for `slot`: a start that must wait becomes
    /// `Wait`; a stop or a start cancels what was pending the other way.
    pub(super) fn gate_event(&mut self, slot: usize, ev: &Event) -> Option<Event> {
        let p = self.get(slot)?;
        let (program, at_rest) = (p.cfg.name.clone(), !p.proc.state.is_alive());
        let (retired, stopping) = (p.retired, p.proc.state == State::Stopping);
        // A retry or restart timer that runs out spawns from rest too: while
        // a dependency is down, the process waits for it instead (rather than
        // spawning into a missing dependency and burning its retries).
        let restart_due = *ev == Event::Deadline
            && matches!(
                p.proc.state,
                State::Backoff | State::ExitedExpectedly | State::ExitedUnexpectedly
            );
        match ev {
            Event::Start | Event::Stop => {}
            _ if restart_due => {}
            Event::Reconfigured { autostart } => return self.gate_reconfigured(slot, *autostart),
            _ => return None,
        }
        let g = &mut self.gate;
        g.intent.remove(&slot);
        if let Some(v) = g.waiting.get_mut(&program) {
            v.retain(|s| *s != slot);
        }
        if let Some((v, _)) = g.held.get_mut(&program) {
            v.retain(|s| *s != slot);
            if v.is_empty() {
                g.held.remove(&program);
                g.dirty.push(program.clone());
            }
        }
        // A start of a STOPPING process (`restart`) would spawn it the moment
        // its stop completes: it waits like a start from rest instead.
        if *ev == Event::Stop || !(at_rest || stopping) || retired {
            return None;
        }
        let (why, blocked) = self.unmet(&program)?;
        self.wait_for_deps(slot, program, blocked);
        Some(Event::Wait(why))
    }

    /// A reload restarting `slot` with unmet dependencies: it is stopped (if
    /// alive) and then waits for them, as a `start` would, rather than being
    /// spawned again at once.
    fn gate_reconfigured(&mut self, slot: usize, autostart: bool) -> Option<Event> {
        let p = self.get(slot)?;
        let restarts = crate::state::restarts_on_reload(&p.proc, autostart, &p.cfg);
        if p.retired || !restarts || self.gate.intent.contains_key(&slot) {
            return None;
        }
        let (program, alive) = (p.cfg.name.clone(), p.proc.state.is_alive());
        let (why, blocked) = self.unmet(&program)?;
        self.wait_for_deps(slot, program, blocked);
        Some(if alive { Event::Stop } else { Event::Wait(why) })
    }

    fn wait_for_deps(&mut self, slot: usize, program: String, blocked: bool) {
        let g = &mut self.gate;
        g.waiting.entry(program).or_default().push(slot);
        let intent = if blocked {
            Intent::Blocked
        } else {
            Intent::Waiting
        };
        g.intent.insert(slot, intent);
    }

    /// Why `program` may not start now, and whether it is blocked rather than waiting.
    fn unmet(&self, program: &str) -> Option<(String, bool)> {
        let g = &self.gate;
        let mut waits = Vec::new();
        for (dep, cond) in g.graph.deps(program) {
            let counts = g.counts.get(dep).copied().unwrap_or_default();
            match deps::meets(*cond, &counts) {
                Met::Yes => {}
                Met::No => waits.push(format!("{dep} ({})", cond.word())),
                Met::Blocked(why) => return Some((format!("dependency {dep} {why}"), true)),
            }
        }
        (!waits.is_empty()).then(|| (format!("waiting for {}", waits.join(", ")), false))
    }

    /// Whether `ev` ends `slot` by itself while its stop is held (it crashed,
    /// was found unhealthy, or not ready in time): then there is nothing left
    /// to hold, and the held stop must go first, or the end would be judged
    /// by the restart rules and respawn a process asked to stop (during
    /// shutdown, too).
    pub(super) fn ends_held(&self, slot: usize, ev: &Event) -> bool {
        if self.gate.intent.get(&slot) != Some(&Intent::Held) {
            return false;
        }
        let Some(p) = self.get(slot) else {
            return false;
        };
        match ev {
            Event::Exited { .. }
            | Event::LeaderExited { .. }
            | Event::GroupGone
            | Event::Unhealthy(_) => true,
            Event::Deadline => p.proc.state == State::Starting && p.cfg.rare.ready.is_some(),
            _ => false,
        }
    }

    /// Why `slot` is not where it was asked to go yet, if the gate holds it.
    pub fn intent(&self, slot: usize) -> Option<Intent> {
        self.gate.intent.get(&slot).copied()
    }

    /// The processes a start of `slots` pulls along: stopped dependencies,
    /// transitively, not already in `slots`; in spawn order.
    pub fn with_dependencies(&self, slots: &[usize]) -> Vec<usize> {
        let mut have: HashSet<usize> = slots.iter().copied().collect();
        let mut seen: HashSet<&str> = HashSet::new();
        let mut todo: Vec<&str> = Vec::new();
        for p in slots.iter().filter_map(|s| self.get(*s)) {
            if seen.insert(&p.cfg.name) {
                todo.push(&p.cfg.name);
            }
        }
        let mut out = Vec::new();
        while let Some(program) = todo.pop() {
            for (dep, cond) in self.gate.graph.deps(program) {
                let mut pulled = false;
                for s in self.live(self.program_run(dep)) {
                    // One being stopped (and not restarted) ends at rest: left
                    // there, the start would wait for it forever.
                    let stopping = self.get(s).is_some_and(|p| {
                        p.proc.state == State::Stopping && !p.proc.start_after_stop
                    });
                    if (stopping || deps::pulls(self.state(s), *cond)) && have.insert(s) {
                        out.push(s);
                        pulled = true;
                    }
                }
                if pulled && seen.insert(dep) {
                    todo.push(dep);
                }
            }
        }
        self.spawn_order(&mut out);
        out
    }

    /// Queues a start of `slots` and of what they pull along, in spawn order.
    pub fn start_ordered(&mut self, slots: &[usize]) {
        let mut all = self.with_dependencies(slots);
        all.extend_from_slice(slots);
        self.spawn_order(&mut all);
        for slot in all {
            self.feed(slot, Event::Start);
        }
    }

    /// Sorts `slots` in spawn order: dependencies first, then by priority.
    pub fn spawn_order(&self, slots: &mut [usize]) {
        let g = &self.gate.graph;
        slots.sort_by_cached_key(|s| {
            self.get(*s)
                .map(|p| (g.spawn_key(&p.cfg.name), p.index))
                .map(|((l, pr, n), i)| (l, pr, n.to_string(), i))
        });
    }

    /// Stops `slots`, dependents before dependencies: a program stopped as a
    /// whole by this command gets its stop signal once its dependents stopped
    /// by it too are stopped. Unrelated programs stop at once.
    pub fn stop_ordered(&mut self, slots: &[usize]) {
        // Retired slots (shutdown names every slot) count too, hence `<=` below.
        let mut named: HashMap<&str, usize> = HashMap::new();
        for p in slots.iter().filter_map(|s| self.get(*s)) {
            *named.entry(p.cfg.name.as_str()).or_default() += 1;
        }
        let whole: HashSet<&str> = named
            .iter()
            .filter(|(p, n)| {
                let live = self.live(self.program_run(p)).count();
                live > 0 && live <= **n
            })
            .map(|(p, _)| *p)
            .collect();
        let mut hold = Vec::new();
        let mut go = Vec::new();
        for &slot in slots {
            let Some(p) = self.get(slot) else { continue };
            // One at rest has nothing to signal: ordering it would only delay the reply.
            if !p.proc.state.is_alive() {
                go.push(slot);
                continue;
            }
            let blockers = self.gate.graph.stop_blockers(&p.cfg.name, &whole);
            if blockers.iter().any(|b| self.busy(b)) {
                hold.push((slot, p.cfg.name.clone(), blockers));
            } else {
                go.push(slot);
            }
        }
        for slot in go {
            self.feed(slot, Event::Stop);
        }
        for (slot, program, blockers) in hold {
            // The start or stop pending until now is replaced by this stop.
            self.gate_event(slot, &Event::Stop);
            let g = &mut self.gate;
            let (v, b) = g.held.entry(program).or_default();
            v.push(slot);
            *b = blockers;
            g.intent.insert(slot, Intent::Held);
        }
    }

    /// Whether a dependent still keeps a held stop waiting.
    fn busy(&self, program: &str) -> bool {
        let c = self.gate.counts.get(program).copied().unwrap_or_default();
        ALIVE.iter().any(|s| c[deps::state_index(*s)] > 0) || self.gate.held.contains_key(program)
    }

    /// Whether a dependent, already sent its stop, keeps a held stop waiting:
    /// STOPPING, or held itself. Not merely alive: one started again by
    /// another command while it stopped would hold the stop (and the reply
    /// of the command that asked for it) for as long as it runs.
    fn still_stopping(&self, program: &str) -> bool {
        let c = self.gate.counts.get(program).copied().unwrap_or_default();
        c[deps::state_index(State::Stopping)] > 0 || self.gate.held.contains_key(program)
    }

    /// Every held stop goes now (a second signal during shutdown).
    pub fn release_held(&mut self) {
        for (_, (slots, _)) in std::mem::take(&mut self.gate.held) {
            for slot in slots {
                self.gate.intent.remove(&slot);
                self.feed(slot, Event::Stop);
            }
        }
    }

    /// Looks again at what waits on the programs that changed; true if it fed
    /// anything (the queue has work again).
    pub(super) fn settle_gate(&mut self) -> bool {
        let g = &mut self.gate;
        if g.dirty.is_empty() && !g.all_dirty {
            return false;
        }
        let dirty = std::mem::take(&mut g.dirty);
        let (mut starters, mut held): (Vec<String>, Vec<String>) =
            if std::mem::take(&mut g.all_dirty) {
                (
                    g.waiting.keys().cloned().collect(),
                    g.held.keys().cloned().collect(),
                )
            } else {
                let mut s = Vec::new();
                let mut h = Vec::new();
                for p in &dirty {
                    // Its own waiting processes too: one that waited while
                    // STOPPING is at rest now, and shows what it waits for.
                    if g.waiting.contains_key(p) {
                        s.push(p.clone());
                    }
                    s.extend(
                        g.graph
                            .dependents(p)
                            .iter()
                            .filter(|d| g.waiting.contains_key(*d))
                            .cloned(),
                    );
                    h.extend(
                        g.graph
                            .deps(p)
                            .iter()
                            .map(|(d, _)| d)
                            .filter(|d| g.held.contains_key(*d))
                            .cloned(),
                    );
                }
                (s, h)
            };
        starters.sort_unstable();
        starters.dedup();
        held.sort_unstable();
        held.dedup();
        let mut fed = false;
        let mut go = Vec::new();
        for program in starters {
            match self.unmet(&program) {
                None => go.extend(self.gate.waiting.remove(&program).unwrap_or_default()),
                Some((why, blocked)) => {
                    let intent = if blocked {
                        Intent::Blocked
                    } else {
                        Intent::Waiting
                    };
                    for slot in self.gate.waiting.get(&program).cloned().unwrap_or_default() {
                        self.gate.intent.insert(slot, intent);
                        if self.get(slot).is_some_and(|p| p.proc.message != why) {
                            self.feed(slot, Event::Wait(why.clone()));
                            fed = true;
                        }
                    }
                }
            }
        }
        for program in held {
            let blockers = self
                .gate
                .held
                .get(&program)
                .map(|h| h.1.clone())
                .unwrap_or_default();
            if blockers.iter().any(|b| self.still_stopping(b)) {
                continue;
            }
            for slot in self
                .gate
                .held
                .remove(&program)
                .map(|h| h.0)
                .unwrap_or_default()
            {
                self.gate.intent.remove(&slot);
                self.feed(slot, Event::Stop);
                fed = true;
            }
        }
        self.spawn_order(&mut go);
        for slot in go {
            self.gate.intent.remove(&slot);
            self.feed(slot, Event::Start);
            fed = true;
        }
        fed
    }
}
