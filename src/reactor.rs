//! The event loop: one mio `Poll` turns signals, pidfds, sockets and deadlines
//! into events for the supervisor. It holds no policy: `state::step` decides
//! for processes, `lifecycle` for the daemon itself, `reload` plans reloads,
//! `control` answers requests; this file only moves events and bytes.
//!
//! Fairness: no source is served without bound in one turn. A client, a
//! listener or the reaper that still has work when its budget runs out goes
//! on the ready list, and the next poll does not sleep while that list is
//! non-empty, so everyone else gets a turn in between.

use crate::alerts::Alerts;
use crate::config::Config;
use crate::conn::Conn;
use crate::control::{Streamed, Waiter};
use crate::lifecycle::{self, SignalPlan};
use crate::listen::{Listeners, METRICS_LISTENER, TCP_LISTENER, UNIX_LISTENER};
use crate::oneshot::ONESHOT_TOKEN;
use crate::output::Which;
use crate::probe::{NOTIFY_TOKEN, PROBE_TOKEN};
use crate::state::Event;
use crate::supervisor::{Supervisor, OUT_TOKEN, PROC_TOKEN};
use crate::timers::Deadline;
use log::{error, info, warn};
use mio::{Events, Interest, Poll, Token};
use signal_hook_mio::v1_0::Signals;
use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::time::{Duration, Instant};

#[path = "reactor_admin.rs"]
mod admin;

const SIGNALS: Token = Token(0);
/// The self-pipe of fault signals sent by other processes (`signals::faults`).
const FAULTS: Token = Token(3);
pub(crate) const CLIENT_TOKEN: usize = 2 << 32;
const REPORT_TOKEN: usize = 3 << 32;

/// A control connection and the `status` or `metrics` reply it is being
/// streamed, if any.
pub(crate) struct Client {
    pub conn: Conn,
    pub stream: Option<Box<dyn Streamed>>,
    /// A `metrics_listen` connection: HTTP, not the line protocol.
    pub http: Option<crate::http_serve::Http>,
    /// The process stream this client follows (`tail -f`).
    pub follow: Option<(usize, Which)>,
    /// The process whose terminal this client is attached to.
    pub attached: Option<usize>,
}

impl Client {
    /// Nothing more will come from or go to this client. A streamed reply
    /// (`status --json` while its /proc scan runs) has produced nothing yet
    /// but is still owed: a peer that sent its last line and hung up gets it.
    pub fn finished(&self) -> bool {
        self.conn.dead || (self.conn.finished() && self.stream.is_none())
    }
}

/// Unsent output past which a `tail -f` follower is dropped (it does not read).
pub const FOLLOW_MAX: usize = 1024 * 1024;

pub struct Reactor {
    poll: Poll,
    signals: Signals,
    pub(crate) listeners: Listeners,
    pub(crate) sup: Supervisor,
    use_pidfd: bool,
    pub(crate) clients: HashMap<usize, Client>,
    pub(crate) next_id: usize,
    /// Clients with work left after their budget ran out, or unblocked since.
    pub(crate) ready: VecDeque<usize>,
    /// Listeners whose backlog may still hold connections.
    pub(crate) accept_again: Vec<Token>,
    /// The last sweep stopped at its batch limit.
    sweep_again: bool,
    pub(crate) waiters: Vec<Waiter>,
    alerts: Alerts,
    /// Clients waiting for `shutdown`'s OK; `Some` once shutting down.
    pub(crate) shutdown: Option<Vec<usize>>,
    /// Ignored signals already logged at warn level (later ones at debug).
    ignored: HashSet<i32>,
    /// A spare fd: closed to accept-and-refuse a client when the fd table is full.
    pub(crate) reserve: Option<std::fs::File>,
    /// Connections shed since the client table was last below its limit.
    pub(crate) shed: usize,
    /// Connections admitted at once (see `serve::max_clients`).
    pub(crate) max_clients: usize,
    /// The attached client of each attached process, and the pid attached to.
    pub(crate) attaches: HashMap<usize, (usize, Option<i32>)>,
    /// `tail -f` followers of each process stream.
    pub(crate) followers: HashMap<(usize, Which), Vec<usize>>,
    faults: Option<std::os::fd::OwnedFd>,
    /// The live process groups, in `SOCKET.state` for crash recovery.
    recorder: crate::recovery::Recorder,
    /// TCP `auth` attempts: compared and logged within bounds.
    pub(crate) auth_limit: crate::authlimit::AuthLimit,
    /// The daemon's exit status once shut down (1 after `exit_on_fatal`).
    exit_code: i32,
    /// When to give memory back (after a boot, a reload, or use).
    pub(crate) trimmer: crate::trimmer::Trimmer,
}

impl Reactor {
    pub fn new(config: Config, use_pidfd: bool) -> Result<Reactor, String> {
        let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
        let mut signals =
            Signals::new(lifecycle::handled()).map_err(|e| format!("signals: {e}"))?;
        let reg = poll.registry();
        reg.register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let listeners = Listeners::bind(&config, reg)?;
        let config_procs = config.process_count();
        let sup_reg = reg.try_clone().map_err(|e| format!("epoll: {e}"))?;
        crate::signals::catch_job_control_stops();
        let faults = crate::signals::faults::install()
            .inspect_err(|e| warn!("fault signals keep their default action: {e}"))
            .ok();
        if let Some(fd) = &faults {
            let raw = std::os::fd::AsRawFd::as_raw_fd(fd);
            reg.register(&mut mio::unix::SourceFd(&raw), FAULTS, Interest::READABLE)
                .map_err(|e| e.to_string())?;
        }
        if let Err(e) = crate::reap::become_subreaper() {
            warn!("cannot become a child subreaper ({e}): orphans of children go to init");
        }
        Ok(Reactor {
            signals,
            listeners,
            sup: Supervisor::new(config, use_pidfd, sup_reg),
            use_pidfd,
            clients: HashMap::new(),
            next_id: 0,
            ready: VecDeque::new(),
            accept_again: Vec::new(),
            sweep_again: false,
            waiters: Vec::new(),
            alerts: Alerts::new(REPORT_TOKEN),
            shutdown: None,
            ignored: HashSet::new(),
            reserve: std::fs::File::open("/dev/null").ok(),
            shed: 0,
            followers: HashMap::new(),
            attaches: HashMap::new(),
            max_clients: crate::serve::max_clients(config_procs),
            faults,
            recorder: Default::default(),
            auth_limit: Default::default(),
            exit_code: 0,
            trimmer: Default::default(),
            poll,
        })
    }

    pub(crate) fn registry(&self) -> &mio::Registry {
        self.poll.registry()
    }

    /// Runs until shutdown; returns the process exit code.
    pub fn run(mut self) -> i32 {
        info!(
            "taskmasterd started (pid {}, {} programs, {} processes, socket {}, child exits via {})",
            std::process::id(),
            self.sup.config.programs.len(),
            self.sup.config.process_count(),
            self.listeners.socket_path.display(),
            if self.use_pidfd {
                "pidfd, SIGCHLD as backstop"
            } else {
                "SIGCHLD"
            }
        );
        // Survivors of a crashed predecessor go before anything of ours starts.
        // Recovery may wait a whole stoptime: a SIGTERM meanwhile ends it
        // (and the daemon, with nothing of its own started). Other signals
        // that came are raised again for the loop.
        let mut held = Vec::new();
        let signals = &mut self.signals;
        let path = self.listeners.socket_path.clone();
        let stopped = crate::recovery::recover(&path, &mut || {
            held.extend(signals.pending());
            let stop = |s: &i32| lifecycle::on_signal(*s, false) == SignalPlan::Shutdown;
            held.iter().any(stop)
        });
        if stopped {
            info!("asked to stop during crash recovery: exiting, nothing started");
            self.listeners.remove_socket();
            return 0;
        }
        for sig in held {
            unsafe { libc::raise(sig) };
        }
        if let Err(e) = crate::daemonize::serving() {
            error!("{e}");
            eprintln!("taskmasterd: {e}");
            self.listeners.remove_socket();
            return 1;
        }
        // The log's records are written once per turn (eventlog::hold).
        let _held = crate::eventlog::hold();
        self.sup.boot(Instant::now());
        let mut events = Events::with_capacity(1024);
        loop {
            self.after_batch();
            if let Some(name) = self.sup.fatal_exit.take() {
                if self.shutdown.is_none() {
                    self.exit_code = 1;
                    self.begin_shutdown(&format!("exit_on_fatal: {name} is FATAL"), Instant::now());
                }
            }
            if self.shutdown.is_some() && self.sup.all_down() {
                return self.finish_shutdown();
            }
            let busy = !self.ready.is_empty()
                || !self.accept_again.is_empty()
                || self.sweep_again
                || self.sup.has_leftovers();
            let timeout = if busy {
                Some(Duration::ZERO)
            } else {
                self.sup.timers.timeout(Instant::now())
            };
            // Settled: nothing left over and no deadline within a second (a
            // boot's starttimes have passed), so what is released now is what
            // the loop no longer uses.
            let timeout = if timeout.is_none_or(|t| t >= Duration::from_secs(1)) {
                let now = Instant::now();
                self.trimmer.settled(now);
                let held = self
                    .trimmer
                    .deadline()
                    .map(|d| d.saturating_duration_since(now));
                match (timeout, held) {
                    (Some(t), Some(h)) => Some(t.min(h)),
                    (t, h) => t.or(h),
                }
            } else {
                timeout
            };
            // After the trim: its own log line is written before the wait.
            crate::eventlog::flush();
            let shutting_down = self.shutdown.is_some();
            if shutting_down {
                admin::hold_sigchld(false);
            }
            let polled = self.poll.poll(&mut events, timeout);
            if shutting_down {
                admin::hold_sigchld(true);
            }
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!("poll failed: {e}");
                return 1;
            }
            let now = Instant::now();
            // Backlogs left from the previous turn; a listener that has an
            // event in this batch is served by it, not twice.
            let mut again = std::mem::take(&mut self.accept_again);
            // Events first, then deadlines: an exit that arrived just before
            // its starttime ran out is judged as an exit during STARTING.
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.on_signals(now),
                    FAULTS => self.on_faults(),
                    t @ (UNIX_LISTENER | TCP_LISTENER | METRICS_LISTENER) => {
                        again.retain(|a| *a != t);
                        self.accept(t, now)
                    }
                    Token(t) if t >= PROBE_TOKEN => self.sup.on_probe_socket(t - PROBE_TOKEN, now),
                    Token(t) if t >= NOTIFY_TOKEN => self.sup.on_notify(t - NOTIFY_TOKEN, now),
                    Token(t) if t >= ONESHOT_TOKEN => {
                        let (reg, sup) = (self.poll.registry(), &mut self.sup);
                        sup.oneshots
                            .on_ready(t - ONESHOT_TOKEN, reg, &mut sup.timers)
                    }
                    Token(t) if t >= OUT_TOKEN => {
                        let k = t - OUT_TOKEN;
                        let which = if k.is_multiple_of(2) {
                            Which::Stdout
                        } else {
                            Which::Stderr
                        };
                        if event.is_writable() {
                            // A terminal took its input: its attached client goes on.
                            if let Some(&(id, _)) = self.attaches.get(&(k / 2)) {
                                self.wake(id);
                            }
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.sup.on_output(k / 2, which)
                        }
                    }
                    Token(t) if t >= REPORT_TOKEN => {
                        let timers = &mut self.sup.timers;
                        (self.alerts.reports).on_ready(
                            t - REPORT_TOKEN,
                            self.poll.registry(),
                            timers,
                            now,
                        )
                    }
                    Token(t) if t >= CLIENT_TOKEN => {
                        // Hung up both ways (a half-close still awaits its reply).
                        let hup = event.is_write_closed() || event.is_error();
                        let readable = event.is_readable() || event.is_read_closed() || hup;
                        self.on_client(t - CLIENT_TOKEN, readable, hup, now)
                    }
                    Token(t) if t >= PROC_TOKEN => self.sup.on_pidfd(t - PROC_TOKEN, now),
                    _ => {}
                }
            }
            self.second_chances(again, now);
            self.fire_due(now);
            // Probe commands reaped this turn act now, before replies settle.
            self.sup.probe_commands(now);
        }
    }

    /// Work left over from the previous turn, one budget each.
    fn second_chances(&mut self, again: Vec<Token>, now: Instant) {
        if std::mem::take(&mut self.sweep_again) {
            self.sweep_again = self.sup.on_sigchld(now);
        }
        self.sup.output_again();
        self.sup.notify_again(now);
        for token in again {
            self.accept(token, now);
        }
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            if let Some(c) = self.clients.get_mut(&id) {
                c.conn.queued = false;
                self.serve(id, now);
            }
        }
    }

    fn fire_due(&mut self, now: Instant) {
        while let Some(d) = self.sup.timers.pop_due(now) {
            match d {
                Deadline::Proc(slot) => self.sup.on_deadline(slot, now),
                Deadline::Report(id) => {
                    let timers = &mut self.sup.timers;
                    (self.alerts.reports).on_deadline(id, self.poll.registry(), timers, now)
                }
                Deadline::Client(id) => self.http_timeout(id),
                Deadline::OneShot(id) => self.sup.oneshots.on_deadline(id),
                Deadline::Probe(slot) => self.sup.on_probe_deadline(slot, now),
            }
        }
    }

    fn on_signals(&mut self, now: Instant) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for sig in pending {
            let name = crate::signals::name(sig);
            match lifecycle::on_signal(sig, self.shutdown.is_some()) {
                SignalPlan::Reap => self.sweep_again |= self.sup.on_sigchld(now),
                SignalPlan::Reload => {
                    info!("SIGHUP: reloading {}", self.sup.config.file.display());
                    let _ = self.reload(false, now);
                    self.reopen_logs("SIGHUP");
                }
                SignalPlan::Reopen => {
                    self.reopen_logs(&name);
                }
                SignalPlan::Shutdown => self.begin_shutdown(&name, now),
                SignalPlan::KillAll => {
                    warn!("{name} during shutdown: killing every process group now");
                    self.sup.feed_all(&Event::Kill, now);
                }
                SignalPlan::Ignore if self.ignored.insert(sig) => {
                    warn!("{name} received and ignored (further ones are logged at debug level)")
                }
                SignalPlan::Ignore => log::debug!("{name} received and ignored"),
            }
        }
    }

    fn on_faults(&mut self) {
        let Some(fd) = &self.faults else { return };
        for sig in crate::signals::faults::drain(fd) {
            if self.ignored.insert(sig) {
                warn!("{} sent by another process: ignored (a real fault still ends the daemon; further ones at debug level)", crate::signals::name(sig));
            } else {
                log::debug!(
                    "{} sent by another process: ignored",
                    crate::signals::name(sig)
                );
            }
        }
    }

    /// Deferred replies that became due, new FATAL reports, closed clients.
    fn after_batch(&mut self) {
        self.sup.new_turn();
        // Descendants left by the groups that ended this turn, in one pass.
        self.sup.kill_strays();
        let now = Instant::now();
        let transitions = std::mem::take(&mut self.sup.transitions);
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &mut self.waiters[i];
            if !self.clients.contains_key(&w.client) {
                self.waiters.swap_remove(i);
                continue;
            }
            for t in &transitions {
                w.note(t, &self.sup);
            }
            w.forget_freed(&self.sup);
            match w.reply() {
                Some(text) => {
                    let w = self.waiters.swap_remove(i);
                    if let Some(c) = self.clients.get_mut(&w.client) {
                        c.conn.busy = false;
                        c.conn.last_active = now;
                        c.conn.send(&text);
                    }
                    self.wake(w.client);
                }
                None => i += 1,
            }
        }
        for a in std::mem::take(&mut self.sup.alerts) {
            let (reg, sup) = (self.poll.registry(), &mut self.sup);
            (self.alerts).dispatch(a, reg, &mut sup.timers, &mut sup.oneshots, now);
        }
        for (owner, outcome) in self.sup.oneshots.take_finished() {
            match owner {
                crate::oneshot::Owner::Hook(label) => crate::alerts::hook_done(&label, &outcome),
                // Taken by `probe_commands` in the turn they ended.
                crate::oneshot::Owner::Probe(..) => {}
            }
        }
        // After the hooks this batch started: the state file lists them too.
        if !transitions.is_empty() || self.sup.oneshots.take_changed() {
            self.recorder.sync(&self.sup, &self.listeners.socket_path);
        }
        self.sup.drop_retired();
        self.deliver_lines();
        self.deliver_raw();
        let finished: Vec<usize> = (self.clients.iter())
            .filter(|(_, c)| c.finished())
            .map(|(id, _)| *id)
            .collect();
        for id in finished {
            self.drop_client(id);
        }
        if self.shed > 0 && self.clients.len() < self.max_clients / 2 {
            info!(
                "client table below its limit again ({} connections were shed)",
                self.shed
            );
            self.shed = 0;
        }
    }

    /// Puts client `id` on the ready list (once).
    pub(crate) fn wake(&mut self, id: usize) {
        if let Some(c) = self.clients.get_mut(&id) {
            if !c.conn.queued {
                c.conn.queued = true;
                self.ready.push_back(id);
            }
        }
    }
}
