//! The process table: feeds events to the state table and performs its actions.
//!
//! Policy lives in `state::step`; this module only executes what it returns
//! (spawn, signal, arm a deadline, queue a FATAL report) and logs each event.

use crate::config::{Config, Program};
use crate::protocol::ProcessView;
use crate::reload::{Change, Plan};
use crate::spawn;
use crate::state::{self, Action, Event, Exit, Proc, State};
use crate::timers::Timers;
use log::{error, info, warn};
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::Instant;

/// Tokens `PROC_TOKEN + slot` are process pidfds.
pub const PROC_TOKEN: usize = 1 << 32;

/// One supervised process.
pub struct Process {
    /// This process's settings (a removed program's stay until it is stopped).
    pub cfg: Rc<Program>,
    pub index: u32,
    pub name: String,
    pub proc: Proc,
    pub pid: Option<i32>,
    /// The group to signal; kept after the leader exits to sweep leftovers.
    pub pgid: Option<i32>,
    pidfd: Option<OwnedFd>,
    spawned_at: Option<Instant>,
    timer_gen: u64,
    /// Removed by a reload: stopping, then gone.
    pub retired: bool,
}

/// A FATAL report waiting to be sent by the reactor.
pub struct FatalReport {
    pub address: SocketAddr,
    pub process: String,
    pub body: String,
}

pub struct Supervisor {
    pub config: Config,
    /// Slots; `None` is free. Slots are stable: they are pidfd tokens.
    pub procs: Vec<Option<Process>>,
    /// Slots in status order (program name, index).
    pub order: Vec<usize>,
    by_pid: HashMap<i32, usize>,
    /// Timer generations are global so a reused slot never matches an old timer.
    next_gen: u64,
    use_pidfd: bool,
    pub timers: Timers<(usize, u64)>,
    pub reports: Vec<FatalReport>,
}

impl Supervisor {
    pub fn new(config: Config, use_pidfd: bool) -> Supervisor {
        let mut sup = Supervisor {
            config: config.clone(),
            procs: Vec::new(),
            order: Vec::new(),
            by_pid: HashMap::new(),
            next_gen: 0,
            use_pidfd,
            timers: Timers::default(),
            reports: Vec::new(),
        };
        for p in &config.programs {
            let cfg = Rc::new(p.clone());
            for index in 0..p.numprocs {
                sup.add(&cfg, index);
            }
        }
        sup.reorder();
        sup
    }

    /// A new NOT_STARTED process in a free slot.
    fn add(&mut self, cfg: &Rc<Program>, index: u32) -> usize {
        let name = cfg.process_name(index);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        name.hash(&mut h);
        let p = Process {
            cfg: cfg.clone(),
            index,
            proc: Proc::new(h.finish()),
            name,
            pid: None,
            pgid: None,
            pidfd: None,
            spawned_at: None,
            timer_gen: 0,
            retired: false,
        };
        match self.procs.iter().position(Option::is_none) {
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
        order.sort_by_key(|s| {
            procs[*s]
                .as_ref()
                .map(|p| (p.cfg.name.clone(), p.index, p.retired))
        });
        self.order = order;
    }

    pub fn get(&self, slot: usize) -> Option<&Process> {
        self.procs.get(slot).and_then(Option::as_ref)
    }

    fn at(&mut self, slot: usize) -> &mut Process {
        self.procs[slot].as_mut().expect("live slot")
    }

    /// Starts every `autostart` process.
    pub fn boot(&mut self, reg: &Registry, now: Instant) {
        for slot in self.order.clone() {
            if self.get(slot).is_some_and(|p| p.cfg.autostart) {
                self.feed(slot, Event::Start, reg, now);
            }
        }
    }

    /// Runs one event through the state table and performs the actions.
    pub fn feed(&mut self, slot: usize, ev: Event, reg: &Registry, now: Instant) {
        let Some(p) = self.procs.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let (next, actions) = state::step(&p.proc, &ev, &p.cfg);
        let before = p.proc.state;
        p.proc = next;
        if before != p.proc.state {
            let msg = &p.proc.message;
            let line = format!(
                "{}: {} -> {}{}",
                p.name,
                before.token(),
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
        for action in actions {
            self.perform(slot, action, reg, now);
        }
    }

    fn perform(&mut self, slot: usize, action: Action, reg: &Registry, now: Instant) {
        match action {
            Action::Spawn => return self.spawn(slot, reg, now),
            Action::ReportFatal => return self.queue_report(slot),
            _ => {}
        }
        let gen = self.next_gen + 1;
        let Some(p) = self.procs[slot].as_mut() else {
            return;
        };
        match action {
            Action::Signal(sig) => {
                if let Some(pid) = p.pid {
                    info!(
                        "{}: sending {} to process group {pid}",
                        p.name,
                        crate::signals::name(sig)
                    );
                    spawn::signal_group(pid, sig);
                }
            }
            Action::KillGroup => {
                if let Some(pgid) = p.pgid {
                    if p.pid.is_some() {
                        warn!("{}: sending SIGKILL to process group {pgid}", p.name);
                    }
                    spawn::signal_group(pgid, libc::SIGKILL);
                }
            }
            Action::Arm(d) => {
                p.timer_gen = gen;
                self.next_gen = gen;
                self.timers.arm(now + d, (slot, gen));
            }
            Action::Disarm => {
                p.timer_gen = gen;
                self.next_gen = gen;
            }
            Action::Spawn | Action::ReportFatal => {}
        }
    }

    fn spawn(&mut self, slot: usize, reg: &Registry, now: Instant) {
        let program = self.at(slot).cfg.clone();
        match spawn::spawn(&program, self.use_pidfd) {
            Ok(s) => {
                let Some(p) = self.procs[slot].as_mut() else {
                    return;
                };
                info!("{}: spawned pid {} ({})", p.name, s.pid, program.cmd_text);
                if let Some(fd) = &s.pidfd {
                    let token = Token(PROC_TOKEN + slot);
                    if let Err(e) =
                        reg.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
                    {
                        error!("{}: cannot watch pidfd: {e}", p.name);
                    }
                }
                (p.pid, p.pgid, p.pidfd, p.spawned_at) =
                    (Some(s.pid), Some(s.pid), s.pidfd, Some(now));
                self.by_pid.insert(s.pid, slot);
                self.feed(slot, Event::Spawned, reg, now);
            }
            Err(why) => {
                warn!("{}: spawn failed: {why}", self.at(slot).name);
                self.feed(slot, Event::SpawnFailed(why), reg, now);
            }
        }
    }

    /// The pidfd of `slot` is readable: reap it if it has exited.
    pub fn on_pidfd(&mut self, slot: usize, reg: &Registry, now: Instant) {
        let Some(fd) = self.get(slot).and_then(|p| p.pidfd.as_ref()) else {
            return;
        };
        if let Some(exit) = spawn::reap_pidfd(fd) {
            self.exited(slot, exit, reg, now);
        }
    }

    /// SIGCHLD (fallback mode): reap every exited child.
    pub fn on_sigchld(&mut self, reg: &Registry, now: Instant) {
        for (pid, exit) in spawn::reap_any() {
            if let Some(&slot) = self.by_pid.get(&pid) {
                self.exited(slot, exit, reg, now);
            }
        }
    }

    fn exited(&mut self, slot: usize, exit: Exit, reg: &Registry, now: Instant) {
        let Some(p) = self.procs[slot].as_mut() else {
            return;
        };
        if let Some(fd) = p.pidfd.take() {
            let _ = reg.deregister(&mut SourceFd(&fd.as_raw_fd()));
        }
        let Some(pid) = p.pid.take() else { return };
        self.by_pid.remove(&pid);
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
        self.feed(slot, Event::Exited { exit, uptime }, reg, now);
    }

    /// Feeds `Deadline` to every process whose deadline has passed.
    pub fn fire_due(&mut self, reg: &Registry, now: Instant) {
        while let Some((slot, gen)) = self.timers.pop_due(now) {
            if self.get(slot).is_some_and(|p| p.timer_gen == gen) {
                self.next_gen += 1;
                self.at(slot).timer_gen = self.next_gen;
                self.feed(slot, Event::Deadline, reg, now);
            }
        }
        if self.timers.len() > 4 * self.procs.len() + 64 {
            let procs = &self.procs;
            self.timers.retain(|(s, g)| {
                procs
                    .get(*s)
                    .and_then(Option::as_ref)
                    .is_some_and(|p| p.timer_gen == *g)
            });
        }
    }

    fn queue_report(&mut self, slot: usize) {
        let Some(p) = self.get(slot) else { return };
        let program = &p.cfg;
        let Some(address) = program.report_address else {
            info!("{}: FATAL, no report address configured", p.name);
            return;
        };
        let last = p
            .proc
            .last_exit
            .map(|e| crate::protocol::json_str(&e.describe()));
        let body = format!(
            "{{\"event\":\"FATAL\",\"program\":{},\"process\":{},\"attempts\":{},\"last_exit\":{},\"message\":{},\"time\":{}}}",
            crate::protocol::json_str(&program.name),
            crate::protocol::json_str(&p.name),
            p.proc.attempts,
            last.unwrap_or_else(|| "null".into()),
            crate::protocol::json_str(&p.proc.message),
            crate::protocol::json_str(&crate::report::rfc3339(std::time::SystemTime::now())),
        );
        self.reports.push(FatalReport {
            address,
            process: p.name.clone(),
            body,
        });
    }

    /// Slots named by `names` (`all`, `PROGRAM`, `PROGRAM:N`), in table order.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let mut picked = vec![false; self.procs.len()];
        let mut unknown = Vec::new();
        for name in names {
            let mut hit = false;
            for &slot in &self.order {
                let Some(p) = self.get(slot).filter(|p| !p.retired) else {
                    continue;
                };
                if name == "all" || *name == p.cfg.name || *name == p.name {
                    picked[slot] = true;
                    hit = true;
                }
            }
            if !hit {
                unknown.push(name.as_str());
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "unknown name{}: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", ")
            ));
        }
        Ok(self.order.iter().copied().filter(|s| picked[*s]).collect())
    }

    pub fn view(&self, slot: usize, now: Instant) -> ProcessView {
        let p = self.get(slot).expect("live slot");
        ProcessView {
            name: p.name.clone(),
            program: p.cfg.name.clone(),
            index: p.index,
            state: p.proc.state,
            pid: p.pid,
            uptime: p
                .pid
                .and(p.spawned_at)
                .map(|t| now.saturating_duration_since(t)),
            last_exit: p.proc.last_exit,
            restarts: p.proc.restarts,
            message: p.proc.message.clone(),
        }
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

    /// Applies a reload plan: only what changed is touched.
    pub fn apply(&mut self, new: Config, plan: &Plan, reg: &Registry, now: Instant) {
        for (name, change) in &plan.programs {
            let slots: Vec<usize> = (self.order.iter().copied())
                .filter(|s| {
                    self.get(*s)
                        .is_some_and(|p| !p.retired && p.cfg.name == *name)
                })
                .collect();
            let Some(program) = new.programs.iter().find(|p| p.name == *name) else {
                for slot in slots {
                    self.retire(slot, reg, now);
                }
                continue;
            };
            let cfg = Rc::new(program.clone());
            let mut have = 0;
            for slot in slots {
                let p = self.at(slot);
                if p.index >= cfg.numprocs {
                    self.retire(slot, reg, now);
                    continue;
                }
                have = have.max(p.index + 1);
                let restart =
                    matches!(change, Change::Changed { restart, .. } if !restart.is_empty());
                let idle = matches!(p.proc.state, State::Stopped | State::NotStarted);
                if restart && !idle {
                    self.feed(slot, Event::Stop, reg, now);
                    self.at(slot).cfg = cfg.clone();
                    self.feed(slot, Event::Start, reg, now);
                } else {
                    self.at(slot).cfg = cfg.clone();
                }
            }
            let added: Vec<usize> = (have..cfg.numprocs).map(|i| self.add(&cfg, i)).collect();
            self.reorder();
            if cfg.autostart {
                for slot in added {
                    self.feed(slot, Event::Start, reg, now);
                }
            }
        }
        self.config = new;
        self.reorder();
    }

    /// Removed by a reload: stop with its own (old) settings, then drop.
    fn retire(&mut self, slot: usize, reg: &Registry, now: Instant) {
        self.at(slot).retired = true;
        self.feed(slot, Event::Stop, reg, now);
    }

    /// Frees retired processes that have finished stopping.
    pub fn drop_retired(&mut self) {
        let mut changed = false;
        for slot in 0..self.procs.len() {
            let done = self
                .get(slot)
                .is_some_and(|p| p.retired && p.pid.is_none() && !p.proc.state.is_alive());
            if done {
                info!("{}: removed", self.at(slot).name);
                self.procs[slot] = None;
                changed = true;
            }
        }
        if changed {
            self.reorder();
        }
    }
}
