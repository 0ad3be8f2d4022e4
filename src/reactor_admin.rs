//! The daemon's own lifecycle, driven by the loop: reopening logs, reload
//! (validate, then change only what changed) and shutdown.

use crate::reactor::Reactor;
use crate::reload::{self, Top};
use crate::state::Event;
use crate::{config, eventlog, protocol};
use log::{error, info, warn};
use std::time::Instant;

impl Reactor {
    /// Reopens the event log and every output file; the failures, as lines.
    pub(crate) fn reopen_logs(&mut self, why: &str) -> Vec<String> {
        let mut failed = self.sup.reopen_outputs();
        match eventlog::reopen(&self.sup.config.logfile) {
            Ok(()) => info!(
                "{why}: reopened {} and the output files",
                self.sup.config.logfile.display()
            ),
            Err(e) => failed.push(e),
        }
        if let Some(note) = eventlog::reconnect_syslog() {
            warn!("{note}");
        }
        for f in &failed {
            error!("{why}: {f}");
        }
        failed
    }

    pub(crate) fn begin_shutdown(&mut self, why: &str, now: Instant) {
        if self.shutdown.is_some() {
            return;
        }
        info!("shutting down ({why}): stopping every process");
        crate::notify::send("STOPPING=1");
        self.shutdown = Some(Vec::new());
        self.recorder.shutting_down();
        hold_sigchld(true);
        self.sup.feed_all(&Event::Stop, now);
    }

    pub(super) fn finish_shutdown(&mut self) -> i32 {
        // The turn's log lines reach the file before a wait that may last.
        crate::eventlog::flush();
        self.sup.end_descendants();
        // The socket goes first: whoever reads OK may rely on it being gone.
        self.listeners.remove_socket();
        self.recorder.clear();
        // Logged before the replies: whoever reads OK finds it in the log.
        info!("taskmasterd stopped");
        // Followers are told why their stream ends.
        for ids in std::mem::take(&mut self.followers).into_values() {
            for id in ids {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.conn
                        .send(&protocol::reply(&[], Err("shutting down".into())));
                }
            }
        }
        for id in self.shutdown.take().unwrap_or_default() {
            if let Some(c) = self.clients.get_mut(&id) {
                c.conn.send(&protocol::reply(&[], Ok(())));
            }
        }
        self.exit_code
    }

    /// SIGHUP and `reload`: validate the whole file, then change only what changed.
    pub(crate) fn reload(
        &mut self,
        dry_run: bool,
        now: Instant,
    ) -> Result<Vec<String>, Vec<String>> {
        // Parsing touches code and heap the loop does not need afterwards.
        self.trimmer.reloaded();
        // RELOADING=1 now, READY=1 however this ends.
        let _notify = (!dry_run).then(crate::notify::Reloading::begin);
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
        if let Err(e) = crate::fdlimit::ensure(new.minfds()) {
            error!("reload refused: {e}");
            return Err(vec![e]);
        }
        let plan = reload::diff(old, &new);
        let sup = &self.sup;
        let mut lines = reload::lines(&plan, |name| sup.would_restart(name, &new));
        let top = reload::top(old, &new);
        if dry_run {
            lines.extend(top.iter().map(|t| t.line(&new)));
            return Ok(lines);
        }
        for t in top {
            let done = match t {
                Top::Logfile => eventlog::reopen(&new.logfile),
                Top::Socket => self.listeners.rebind_socket(&new, self.poll.registry()),
                Top::Listen => self.listeners.rebind_listen(&new, self.poll.registry()),
                Top::Metrics => self.listeners.rebind_metrics(&new, self.poll.registry()),
            };
            match done {
                Ok(()) => lines.push(t.line(&new)),
                Err(e) => {
                    lines.push(format!(
                        "kept {} {}: {e}",
                        t.key(),
                        t.value(&self.sup.config)
                    ));
                    t.keep(&mut new, &self.sup.config);
                }
            }
        }
        if new.listen_secret.is_some() && new.listen_secret != self.sup.config.listen_secret {
            let n = self.revoke_tcp_auth();
            if n > 0 {
                info!(
                    "reload: listen secret changed: {n} TCP connection(s) must authenticate again"
                );
            }
        }
        eventlog::set_limits(new.logfile_maxbytes, new.logfile_backups);
        if let Some(note) = eventlog::set_syslog(new.syslog.as_deref()) {
            warn!("{note}");
        }
        self.max_clients = crate::serve::max_clients(new.process_count());
        self.sup.apply(new, &plan, now);
        if lines.is_empty() {
            info!("reload: no changes");
        }
        for l in &lines {
            info!("reload: {l}");
        }
        Ok(lines)
    }
}

/// Blocks (or unblocks) SIGCHLD. During shutdown every child's death would
/// interrupt the loop's turn with a SIGCHLD (a signal frame, the handler's
/// write to the self-pipe, a sigreturn: 1000 of them at 1000 processes); the
/// loop keeps it blocked while a turn runs and unblocks it just before it
/// waits, so the deaths of a whole turn are one pending signal, delivered
/// then, which makes the wait return at once. Nothing is missed: a blocked
/// signal stays pending, and the reaping itself (pidfds, the sweep) does not
/// depend on how many signals came. Children never inherit the mask (std
/// resets it in the child before exec).
pub(super) fn hold_sigchld(block: bool) {
    let how = if block {
        libc::SIG_BLOCK
    } else {
        libc::SIG_UNBLOCK
    };
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}
