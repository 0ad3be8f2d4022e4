//! Whole process trees: what a stopped process leaves behind, and what is
//! left of everything at shutdown (the daemon is the subreaper of it all).

use super::Supervisor;
use crate::reap;
use log::{error, warn};

impl Supervisor {
    /// Processes are down: descendants re-parented to the daemon that are
    /// still in one's group (they outlived the stop), its session (moved to a
    /// group of their own, e.g. a shell's jobs on a terminal), or that carry
    /// its name in their environment (daemonized with fork, setsid, fork) go
    /// with it.
    /// Done groups are collected during a turn (`strays`) and checked together
    /// at its end, by the reactor.
    pub fn kill_strays(&mut self) {
        if self.strays.is_empty() {
            return;
        }
        let done = std::mem::take(&mut self.strays);
        // A live leader with that pid means the number was reused: its
        // group is someone else's now.
        let groups: Vec<(usize, i32, String)> = done
            .into_iter()
            .filter(|(_, pgid)| !self.by_pid.contains_key(pgid))
            .map(|(slot, pgid)| {
                let name = self.get(slot).map(|p| p.name.clone()).unwrap_or_default();
                (slot, pgid, name)
            })
            .collect();
        if groups.is_empty() {
            return;
        }
        let ids: Vec<(i32, String)> = groups.iter().map(|(_, g, n)| (*g, n.clone())).collect();
        let tracked = |pid| self.by_pid.contains_key(&pid) || self.oneshots.owns(pid);
        let killed = reap::kill_strays(&ids, tracked);
        for ((slot, _, _), killed) in groups.iter().zip(killed) {
            if let (Some(p), false) = (self.get(*slot), killed.is_empty()) {
                warn!(
                    "{}: killed {} descendant(s) left in its process group or session: pids {killed:?}",
                    p.name,
                    killed.len()
                );
            }
        }
    }

    /// Shutdown, every process down: nothing the daemon started survives it.
    pub fn end_descendants(&self) {
        let (killed, left) = reap::end_descendants();
        if killed > 0 {
            warn!("killed {killed} descendant(s) that had left their process group");
        }
        if left {
            error!("some killed descendants are still not gone (stuck in the kernel?)");
        }
    }
}
