//! The event loop: one mio `Poll` turns signals, pidfds, sockets and deadlines
//! into calls on the supervisor. It holds no policy: `state::step` decides,
//! `control` answers requests, this file only moves events and bytes.

use crate::config::{self, Config};
use crate::conn::{Conn, Line};
use crate::control::{self, Outcome, Waiter};
use crate::listen::{show_listen, Listeners, TCP_LISTENER, UNIX_LISTENER};
use crate::protocol;
use crate::report::Reports;
use crate::supervisor::{Supervisor, PROC_TOKEN};
use crate::{eventlog, reload};
use log::{error, info, warn};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM};
use signal_hook_mio::v1_0::Signals;
use std::collections::HashMap;
use std::io;
use std::time::Instant;

const SIGNALS: Token = Token(0);
const CLIENT_TOKEN: usize = 2 << 32;
const REPORT_TOKEN: usize = 3 << 32;
/// Accepting stops at this many clients; the rest wait in the backlog.
const MAX_CLIENTS: usize = 1024;

pub struct Reactor {
    poll: Poll,
    signals: Signals,
    listeners: Listeners,
    sup: Supervisor,
    use_pidfd: bool,
    clients: HashMap<usize, Conn>,
    next_id: usize,
    waiters: Vec<Waiter>,
    reports: Reports,
    /// Clients waiting for `shutdown`'s OK; `Some` once shutting down.
    shutdown: Option<Vec<usize>>,
}

impl Reactor {
    pub fn new(config: Config, use_pidfd: bool) -> Result<Reactor, String> {
        let poll = Poll::new().map_err(|e| format!("epoll: {e}"))?;
        let mut wanted = vec![SIGHUP, SIGTERM, SIGINT];
        if !use_pidfd {
            wanted.push(SIGCHLD);
        }
        let mut signals = Signals::new(wanted).map_err(|e| format!("signals: {e}"))?;
        let reg = poll.registry();
        reg.register(&mut signals, SIGNALS, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        let listeners = Listeners::bind(&config.socket, config.listen, reg)?;
        Ok(Reactor {
            poll,
            signals,
            listeners,
            sup: Supervisor::new(config, use_pidfd),
            use_pidfd,
            clients: HashMap::new(),
            next_id: 0,
            waiters: Vec::new(),
            reports: Reports::new(REPORT_TOKEN),
            shutdown: None,
        })
    }

    /// Runs until shutdown; returns the process exit code.
    pub fn run(mut self) -> i32 {
        info!(
            "taskmasterd started (pid {}, {} programs, {} processes, socket {}, child exits via {})",
            std::process::id(),
            self.sup.config.programs.len(),
            self.sup.config.process_count(),
            self.listeners.socket_path.display(),
            if self.use_pidfd { "pidfd" } else { "SIGCHLD" }
        );
        self.sup.boot(self.poll.registry(), Instant::now());
        let mut events = Events::with_capacity(1024);
        loop {
            self.after_batch();
            if self.shutdown.is_some() && self.sup.all_down() {
                return self.finish_shutdown();
            }
            let now = Instant::now();
            let timeout = [self.sup.timers.timeout(now), self.reports.timeout(now)]
                .into_iter()
                .flatten()
                .min();
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!("poll failed: {e}");
                return 1;
            }
            let now = Instant::now();
            self.sup.fire_due(self.poll.registry(), now);
            self.reports.fire_due(now, self.poll.registry());
            for event in events.iter() {
                match event.token() {
                    SIGNALS => self.on_signals(now),
                    UNIX_LISTENER | TCP_LISTENER => self.accept(event.token()),
                    Token(t) if t >= REPORT_TOKEN => self
                        .reports
                        .on_ready(t - REPORT_TOKEN, self.poll.registry()),
                    Token(t) if t >= CLIENT_TOKEN => self.on_client(t - CLIENT_TOKEN, now),
                    Token(t) if t >= PROC_TOKEN => {
                        self.sup.on_pidfd(t - PROC_TOKEN, self.poll.registry(), now)
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_signals(&mut self, now: Instant) {
        let pending: Vec<i32> = self.signals.pending().collect();
        for sig in pending {
            match sig {
                SIGCHLD => self.sup.on_sigchld(self.poll.registry(), now),
                SIGHUP => {
                    info!(
                        "SIGHUP received: reloading {}",
                        self.sup.config.file.display()
                    );
                    let _ = self.reload(false, now);
                }
                _ => self.begin_shutdown(&crate::signals::name(sig), now),
            }
        }
    }

    fn begin_shutdown(&mut self, why: &str, now: Instant) {
        let reg = self.poll.registry();
        if self.shutdown.is_some() {
            if why != "shutdown" {
                warn!("{why} during shutdown: killing every process group now");
                for slot in self.sup.order.clone() {
                    self.sup.feed(slot, crate::state::Event::Kill, reg, now);
                }
            }
            return;
        }
        info!("shutting down ({why}): stopping every process");
        self.shutdown = Some(Vec::new());
        for slot in self.sup.order.clone() {
            self.sup.feed(slot, crate::state::Event::Stop, reg, now);
        }
    }

    fn finish_shutdown(&mut self) -> i32 {
        // The socket goes first: whoever reads OK may rely on it being gone.
        self.listeners.remove_socket();
        for id in self.shutdown.take().unwrap_or_default() {
            if let Some(c) = self.clients.get_mut(&id) {
                c.send(&protocol::reply(&[], Ok(())));
            }
        }
        info!("taskmasterd stopped");
        0
    }

    fn accept(&mut self, token: Token) {
        loop {
            if self.clients.len() >= MAX_CLIENTS {
                return;
            }
            match self.listeners.accept(token) {
                Ok(s) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let mut conn = Conn::new(s);
                    if conn
                        .register(self.poll.registry(), Token(CLIENT_TOKEN + id))
                        .is_ok()
                    {
                        self.clients.insert(id, conn);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    fn on_client(&mut self, id: usize, now: Instant) {
        let Some(conn) = self.clients.get_mut(&id) else {
            return;
        };
        conn.flush();
        conn.read();
        self.serve(id, now);
    }

    /// Answers buffered lines until one is deferred.
    fn serve(&mut self, id: usize, now: Instant) {
        loop {
            let Some(conn) = self.clients.get_mut(&id) else {
                return;
            };
            if conn.busy || conn.dead {
                return;
            }
            let line = match conn.next_line() {
                Some(Line::Text(t)) => t,
                Some(Line::Invalid) => {
                    conn.send(&protocol::reply(&[], Err("invalid UTF-8".into())));
                    continue;
                }
                Some(Line::TooLong) => {
                    conn.send(&protocol::reply(&[], Err("line too long".into())));
                    conn.close_after_flush();
                    return;
                }
                None if conn.resume() => continue,
                None => return,
            };
            let req = match protocol::parse(&line) {
                Ok(None) => continue,
                Ok(Some(r)) => r,
                Err(e) => {
                    conn.send(&protocol::reply(&[], Err(e)));
                    continue;
                }
            };
            info!("client {id}: {}", line.trim());
            let starting = matches!(
                req,
                protocol::Request::Start(_) | protocol::Request::Restart(_)
            );
            if self.shutdown.is_some() && starting {
                conn.send(&protocol::reply(&[], Err("shutting down".into())));
                continue;
            }
            match control::execute(&mut self.sup, id, req, self.poll.registry(), now) {
                Outcome::Reply(text) => conn.send(&text),
                Outcome::Wait(w) => match w.poll(&self.sup) {
                    Some(text) => conn.send(&text),
                    None => {
                        conn.busy = true;
                        self.waiters.push(w);
                    }
                },
                Outcome::Reload { dry_run } => {
                    let text = match self.reload(dry_run, now) {
                        Ok(lines) => protocol::reply(&lines, Ok(())),
                        Err(errors) => protocol::reply(
                            &errors,
                            Err("invalid configuration, nothing changed".into()),
                        ),
                    };
                    if let Some(conn) = self.clients.get_mut(&id) {
                        conn.send(&text);
                    }
                }
                Outcome::Quit => {
                    conn.send(&protocol::reply(&[], Ok(())));
                    conn.close_after_flush();
                    return;
                }
                Outcome::Shutdown => {
                    conn.busy = true;
                    self.begin_shutdown("shutdown", now);
                    if let Some(list) = &mut self.shutdown {
                        list.push(id);
                    }
                }
            }
        }
    }

    /// SIGHUP and `reload`: validate the whole file, then change only what changed.
    fn reload(&mut self, dry_run: bool, now: Instant) -> Result<Vec<String>, Vec<String>> {
        if self.shutdown.is_some() {
            return Err(vec!["shutting down".into()]);
        }
        let old = &self.sup.config;
        let mut new = match config::load(&old.file) {
            Ok(c) => c,
            Err(errors) => {
                let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
                for l in &lines {
                    error!("reload refused: {l}");
                }
                return Err(lines);
            }
        };
        let plan = reload::diff(old, &new);
        let mut lines = reload::lines(&plan);
        let (logfile, socket, listen) = (
            new.logfile != old.logfile,
            new.socket != old.socket,
            new.listen != old.listen,
        );
        if dry_run {
            lines.extend(logfile.then(|| format!("reopened logfile {}", new.logfile.display())));
            lines.extend(socket.then(|| format!("rebound socket {}", new.socket.display())));
            lines.extend(listen.then(|| format!("rebound listen {}", show_listen(new.listen))));
            return Ok(lines);
        }
        if logfile {
            match eventlog::reopen(&new.logfile) {
                Ok(()) => lines.push(format!("reopened logfile {}", new.logfile.display())),
                Err(e) => {
                    lines.push(format!("kept logfile {}: {e}", old.logfile.display()));
                    new.logfile = old.logfile.clone();
                }
            }
        }
        if socket {
            match self
                .listeners
                .rebind_socket(&new.socket, self.poll.registry())
            {
                Ok(()) => lines.push(format!("rebound socket {}", new.socket.display())),
                Err(e) => {
                    let kept = &self.listeners.socket_path;
                    lines.push(format!("kept socket {}: {e}", kept.display()));
                    new.socket = kept.clone();
                }
            }
        }
        if listen {
            match self
                .listeners
                .rebind_listen(new.listen, self.poll.registry())
            {
                Ok(()) => lines.push(format!("rebound listen {}", show_listen(new.listen))),
                Err(e) => {
                    lines.push(format!(
                        "kept listen {}: {e}",
                        show_listen(self.sup.config.listen)
                    ));
                    new.listen = self.sup.config.listen;
                }
            }
        }
        self.sup.apply(new, &plan, self.poll.registry(), now);
        if lines.is_empty() {
            info!("reload: no changes");
        }
        for l in &lines {
            info!("reload: {l}");
        }
        Ok(lines)
    }

    /// Deferred replies that became due, new FATAL reports, closed clients.
    fn after_batch(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.waiters.len() {
            if !self.clients.contains_key(&self.waiters[i].client) {
                self.waiters.swap_remove(i);
                continue;
            }
            match self.waiters[i].poll(&self.sup) {
                Some(text) => {
                    let w = self.waiters.swap_remove(i);
                    if let Some(c) = self.clients.get_mut(&w.client) {
                        c.busy = false;
                        c.send(&text);
                    }
                    self.serve(w.client, now);
                }
                None => i += 1,
            }
        }
        for r in std::mem::take(&mut self.sup.reports) {
            self.reports.send(r, self.poll.registry(), now);
        }
        self.sup.drop_retired();
        let reg = self.poll.registry();
        self.clients.retain(|_, c| {
            let done = c.finished();
            if done {
                c.deregister(reg);
            }
            !done
        });
    }
}
