//! The process table: feeds events to the state table and performs its actions.
//!
//! Policy lives in `state::step`; this module only executes what it returns.
//! One effect pipeline: `feed` queues an event, `run` takes events off the queue
//! one at a time, steps them and performs the actions; an action that produces
//! an outcome (a spawn's success or failure) queues it as the next event, so
//! nothing recurses and the order of events is the order of the queue.

mod apply;
mod children;
mod gate;
mod names;
pub use names::ResumeKey;
mod output;
mod probes;
mod trees;

pub use gate::Intent;
pub use output::{OutLine, OUT_TOKEN};

use crate::alerts::{Alert, AlertEvent};
use crate::config::{Config, Program};
use crate::output::Which;
use crate::reap;
use crate::state::{self, Action, Event, Exit, Proc, State};
use crate::timers::{Deadline, Timers};
use log::{error, info, warn};
use mio::Registry;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Instant;

/// Tokens `PROC_TOKEN + slot` are process pidfds.
pub const PROC_TOKEN: usize = 1 << 32;

/// Room the event queue keeps between bursts.
const QUEUE_KEEP: usize = 64;

/// One supervised process.
pub struct Process {
    /// This process's settings (a removed program's stay until it is stopped).
    pub cfg: Rc<Program>,
    /// Settings a reload gave it, taken once the reload event is stepped (so
    /// the stop uses the old stopsignal and the next spawn the new cmd).
    next_cfg: Option<Rc<Program>>,
    pub index: u32,
    pub name: String,
    pub proc: Proc,
    pub pid: Option<i32>,
    /// The pid of the last spawn, kept after its exit (for alerts).
    last_pid: Option<i32>,
    /// The group to signal; kept after the leader exits until the group is done.
    pub pgid: Option<i32>,
    pidfd: Option<OwnedFd>,
    pub spawned_at: Option<Instant>,
    /// stdout and stderr: pipes, files and the in-memory tails.
    pub out: [crate::output::Stream; 2],
    /// Removed by a reload: stopping, then gone.
    pub retired: bool,
    /// Automatic restarts since the daemon started (`proc.restarts` is reset
    /// by a user start; this, a Prometheus counter, never is).
    pub restarts_total: u64,
}

/// A change of state, for deferred replies to judge each process when it gets there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    pub slot: usize,
    pub to: State,
    /// Numbered, so a deferred reply ignores changes from before it began.
    pub seq: u64,
}

pub struct Supervisor {
    pub config: Config,
    /// Slots; `None` is free. Slots are stable: they are pidfd tokens.
    procs: Vec<Option<Process>>,
    free: Vec<usize>,
    /// Slots in status order (program name, index).
    pub order: Vec<usize>,
    /// Each slot's place in `order`.
    position: Vec<u32>,
    by_pid: HashMap<i32, usize>,
    use_pidfd: bool,
    reg: Registry,
    queue: VecDeque<(usize, Event)>,
    /// Process deadlines and report timeouts: the daemon's one timer heap.
    pub timers: Timers,
    /// Alerts (`report_events`) for the reactor to send and run.
    pub alerts: Vec<Alert>,
    /// State changes since the reactor last looked.
    pub transitions: Vec<Transition>,
    /// The number of the last transition.
    pub transition_seq: u64,
    /// Slots whose leader exited by itself and whose group is being stopped.
    draining: Vec<usize>,
    /// Groups done with this turn (slot, pgid): their strays are looked for
    /// once, at the end of the turn (`kill_strays`).
    strays: Vec<(usize, i32)>,
    /// Retired processes not yet freed.
    retiring: usize,
    /// Streams someone follows (`tail -f`), with how many followers.
    pub followed: HashMap<(usize, Which), usize>,
    /// New lines of followed streams, for the reactor to deliver.
    pub lines: Vec<OutLine>,
    /// Streams whose read budget ran out with output left.
    out_ready: VecDeque<(usize, Which)>,
    /// Bytes read from output streams in this turn of the loop.
    read_this_turn: usize,
    /// Slots with an attached client: their terminal output is also kept raw.
    pub attached: std::collections::HashSet<usize>,
    /// Events counted for `metrics`.
    pub counters: crate::metrics::Counters,
    /// Raw terminal output of attached slots, for the reactor to deliver.
    pub raw: Vec<(usize, Vec<u8>)>,
    /// Dependency gating: starts that wait, stops held for dependents.
    gate: gate::Gate,
    /// `exit_on_fatal`: the process that went FATAL, for the reactor.
    pub fatal_exit: Option<String>,
    /// Auxiliary children (hooks, probes): reaped here, never supervised.
    pub oneshots: crate::oneshot::OneShots,
    /// Readiness probes and health checks in flight, and notify sockets.
    probes: crate::probe::Probes,
}

impl Supervisor {
    pub fn new(config: Config, use_pidfd: bool, reg: Registry) -> Supervisor {
        let mut sup = Supervisor {
            config,
            procs: Vec::new(),
            free: Vec::new(),
            order: Vec::new(),
            position: Vec::new(),
            by_pid: HashMap::new(),
            use_pidfd,
            reg,
            queue: VecDeque::new(),
            timers: Timers::default(),
            alerts: Vec::new(),
            transitions: Vec::new(),
            transition_seq: 0,
            draining: Vec::new(),
            strays: Vec::new(),
            retiring: 0,
            followed: HashMap::new(),
            lines: Vec::new(),
            out_ready: VecDeque::new(),
            read_this_turn: 0,
            attached: std::collections::HashSet::new(),
            raw: Vec::new(),
            gate: Default::default(),
            fatal_exit: None,
            counters: Default::default(),
            oneshots: crate::oneshot::OneShots::new(use_pidfd),
            probes: Default::default(),
        };
        let programs: Vec<Rc<Program>> = sup.config.programs.clone();
        // Exactly: grown by doubling, 1000 slots would hold room for 1024.
        let count = usize::try_from(sup.config.process_count()).unwrap_or(0);
        sup.procs.reserve_exact(count);
        for cfg in &programs {
            for index in 0..cfg.numprocs {
                sup.add(cfg, index);
            }
        }
        sup.reorder();
        sup.rebuild_gate();
        sup
    }

    /// A new NOT_STARTED process in a free slot.
    fn add(&mut self, cfg: &Rc<Program>, index: u32) -> usize {
        let name = cfg.process_name(index);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let p = Process {
            cfg: cfg.clone(),
            next_cfg: None,
            index,
            proc: Proc::new(h.finish()),
            name,
            pid: None,
            last_pid: None,
            pgid: None,
            pidfd: None,
            spawned_at: None,
            out: Default::default(),
            retired: false,
            restarts_total: 0,
        };
        match self.free.pop() {
            Some(slot) => {
                self.procs[slot] = Some(p);
                slot
            }
            None => {
                self.procs.push(Some(p));
                self.procs.len() - 1
            }
        }
    }

    fn reorder(&mut self) {
        let procs = &self.procs;
        let mut order: Vec<usize> = (0..procs.len()).filter(|s| procs[*s].is_some()).collect();
        order.sort_by(|a, b| {
            let key = |s: &usize| {
                procs[*s]
                    .as_ref()
                    .map(|p| (&p.cfg.name, p.index, p.retired))
            };
            key(a).cmp(&key(b))
        });
        self.position = vec![u32::MAX; procs.len()];
        for (i, slot) in order.iter().enumerate() {
            self.position[*slot] = i as u32;
        }
        self.order = order;
    }

    pub fn get(&self, slot: usize) -> Option<&Process> {
        self.procs.get(slot).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, slot: usize) -> Option<&mut Process> {
        self.procs.get_mut(slot).and_then(Option::as_mut)
    }

    /// Starts every `autostart` process and the dependencies they pull
    /// along, in spawn order (dependencies, then priority).
    pub fn boot(&mut self, now: Instant) {
        let auto: Vec<usize> = (self.order.iter().copied())
            .filter(|s| self.get(*s).is_some_and(|p| p.cfg.autostart))
            .collect();
        self.start_ordered(&auto);
        self.run(now);
    }

    /// Queues an event for `slot`; `run` steps it.
    pub fn feed(&mut self, slot: usize, ev: Event) {
        self.queue.push_back((slot, ev));
    }

    /// Steps every queued event, performing the actions, until the queue is
    /// empty and the gate has nothing more to release.
    pub fn run(&mut self, now: Instant) {
        loop {
            while let Some((slot, ev)) = self.queue.pop_front() {
                self.step(slot, &ev, now);
            }
            if !self.settle_gate() {
                break;
            }
        }
        // A boot or `start all` of a thousand queues a thousand events: that
        // room (40 bytes each) would otherwise stay allocated for good.
        self.queue.shrink_to(QUEUE_KEEP);
    }

    fn step(&mut self, slot: usize, ev: &Event, now: Instant) {
        if self.ends_held(slot, ev) {
            // Its held stop goes first: the end is judged as a stop.
            self.step(slot, &Event::Stop, now);
        }
        // Gated or not, a reconfigured process takes its new settings.
        let reconfigured = matches!(ev, Event::Reconfigured { .. });
        let gated = self.gate_event(slot, ev);
        let ev = gated.as_ref().unwrap_or(ev);
        let Some(p) = self.get_mut(slot) else {
            return;
        };
        let message_before = matches!(ev, Event::Wait(_)).then(|| p.proc.message.clone());
        let (next, actions) = state::step(&p.proc, ev, &p.cfg);
        if reconfigured {
            if let Some(cfg) = p.next_cfg.take() {
                p.cfg = cfg;
            }
        }
        let before = p.proc.state;
        let was_draining = p.proc.drain.is_some();
        let restarted = next.restarts.saturating_sub(p.proc.restarts);
        p.restarts_total += u64::from(restarted);
        p.proc = next;
        let to = p.proc.state;
        // A wait whose reason changed is news for a deferred `start` too.
        let news = message_before.is_some_and(|m| m != p.proc.message);
        let counted = (before != to && !p.retired).then(|| (p.cfg.name.clone(), p.name.clone()));
        if before != to || news {
            log_transition(p, before);
            self.transition_seq += 1;
            let seq = self.transition_seq;
            self.transitions.push(Transition { slot, to, seq });
        }
        if let Some((program, name)) = counted {
            if to == State::Fatal && self.config.exit_on_fatal {
                self.fatal_exit.get_or_insert(name);
            }
            self.gate_count(&program, before, to);
        }
        // Before the actions: a restart's spawn must not change the pid reported.
        for s in state::entered(before, to, &actions) {
            // One count per state entered, as reports see them (a crash
            // restarted at once passed through EXITED_UNEXPECTEDLY).
            self.counters.entered(s);
            self.alert(slot, AlertEvent::Entered(s));
        }
        for action in actions {
            self.perform(slot, action, now);
        }
        self.sync_probe(slot, now);
        let Some(p) = self.get_mut(slot) else { return };
        let draining = p.proc.drain.is_some();
        let mut done_with = None;
        if p.pid.is_none() && !p.proc.state.is_alive() {
            // Done with this group: never signal a pgid the kernel may reuse.
            done_with = p.pgid.take();
        }
        if draining && !was_draining {
            self.draining.push(slot);
        }
        if let Some(pgid) = done_with {
            self.strays.push((slot, pgid));
        }
    }

    fn perform(&mut self, slot: usize, action: Action, now: Instant) {
        match action {
            Action::Spawn => return self.spawn(slot, now),
            Action::Passed(_) => return,
            Action::Arm(d) => return self.timers.arm(Deadline::Proc(slot), now + d),
            Action::Disarm => return self.timers.cancel(Deadline::Proc(slot)),
            Action::Signal(_) | Action::KillGroup => {}
        }
        let Some(p) = self.get(slot) else { return };
        let Some(pgid) = p.pgid else { return };
        match action {
            Action::Signal(sig) => {
                info!(
                    "{}: sending {} to process group {pgid}",
                    p.name,
                    crate::signals::name(sig)
                );
                reap::signal_group(pgid, sig);
                // A process stopped by SIGSTOP cannot act on its stopsignal
                // until continued (systemd does the same).
                if sig != libc::SIGKILL {
                    reap::signal_group(pgid, libc::SIGCONT);
                }
            }
            // An empty group needs no signal (and, empty, its number is free
            // for the kernel to give to someone else).
            Action::KillGroup if reap::group_alive(pgid) => {
                warn!("{}: sending SIGKILL to process group {pgid}", p.name);
                reap::signal_group(pgid, libc::SIGKILL);
            }
            _ => {}
        }
    }

    /// A process deadline passed. A draining group found empty is done.
    pub fn on_deadline(&mut self, slot: usize, now: Instant) {
        let Some(p) = self.get(slot) else { return };
        let gone = p.proc.drain.is_some() && !p.pgid.is_some_and(reap::group_alive);
        self.feed(
            slot,
            if gone {
                Event::GroupGone
            } else {
                Event::Deadline
            },
        );
        self.run(now);
    }

    /// Reports `event` of `slot` (HTTP and `report_command`) if its
    /// program's `report_events` lists it. State changes come here from
    /// `step`; a health check that gives up calls it with `Unhealthy`.
    pub fn alert(&mut self, slot: usize, event: AlertEvent) {
        let Some(p) = self.get(slot) else { return };
        if !p.cfg.rare.report_events.contains(event) {
            return;
        }
        self.alerts.push(Alert {
            event,
            program: p.cfg.name.clone(),
            process: p.name.clone(),
            pid: p.pid.or(p.last_pid),
            attempts: p.proc.attempts,
            last_exit: p.proc.last_exit.map(Exit::describe),
            message: p.proc.message.clone(),
            time: std::time::SystemTime::now(),
            address: p.cfg.rare.report_address,
            command: p.cfg.rare.report_command.clone(),
        });
    }

    /// Whether work is left over for the next turn (unread output).
    /// A new turn of the loop: a new output budget.
    pub fn new_turn(&mut self) {
        self.read_this_turn = 0;
    }

    pub fn has_leftovers(&self) -> bool {
        !self.out_ready.is_empty() || self.probes.has_leftovers()
    }

    /// True once no process is alive (shutdown may finish).
    pub fn all_down(&self) -> bool {
        self.procs
            .iter()
            .flatten()
            .all(|p| p.pid.is_none() && !p.proc.state.is_alive())
    }

    pub fn state(&self, slot: usize) -> State {
        self.get(slot).map_or(State::Stopped, |p| p.proc.state)
    }

    /// Feeds `ev` to every process (shutdown's stop, dependents first; the
    /// second signal's kill, held stops included).
    pub fn feed_all(&mut self, ev: &Event, now: Instant) {
        match ev {
            Event::Stop => self.stop_ordered(&self.order.clone()),
            _ => {
                self.release_held();
                for slot in self.order.clone() {
                    self.feed(slot, ev.clone());
                }
            }
        }
        self.run(now);
    }
}

fn log_transition(p: &Process, before: State) {
    let msg = &p.proc.message;
    // A wait whose reason changed stays NOT_STARTED: no arrow.
    let arrow = if before == p.proc.state {
        String::new()
    } else {
        format!("{} -> ", before.token())
    };
    let line = format!(
        "{}: {arrow}{}{}",
        p.name,
        p.proc.state.token(),
        if msg.is_empty() {
            String::new()
        } else {
            format!(" ({msg})")
        }
    );
    match p.proc.state {
        State::Fatal => error!("{line}"),
        State::Backoff | State::ExitedUnexpectedly => warn!("{line}"),
        _ => info!("{line}"),
    }
}
