//! Names → slots, and what `status` shows of a slot.

use super::Supervisor;
use crate::protocol::ProcessView;
use std::time::Instant;

impl Supervisor {
    /// Slots named by `names` (`all`, `PROGRAM`, `PROGRAM:N`), in table order.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let mut picked = vec![false; self.procs.len()];
        let mut hit = vec![false; names.len()];
        for &slot in &self.order {
            let Some(p) = self.get(slot).filter(|p| !p.retired) else {
                continue;
            };
            for (i, name) in names.iter().enumerate() {
                if name == "all" || *name == p.cfg.name || *name == p.name {
                    picked[slot] = true;
                    hit[i] = true;
                }
            }
        }
        let unknown: Vec<&str> = names
            .iter()
            .zip(&hit)
            .filter(|(_, h)| !**h)
            .map(|(n, _)| n.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown name{}: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", ")
            ));
        }
        Ok(self.order.iter().copied().filter(|s| picked[*s]).collect())
    }

    /// The one process `name` means: `PROGRAM:N`, or `PROGRAM` with one process.
    pub fn resolve_one(&self, name: &str) -> Result<usize, String> {
        let slots = self.resolve(&[name.to_string()])?;
        match slots.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!("{name} has {} processes: name one (PROGRAM:N)", slots.len())),
        }
    }

    /// A process, for reading and seeding its output tail.
    pub fn get_mut_for_tail(&mut self, slot: usize) -> Option<&mut super::Process> {
        self.get_mut(slot)
    }

    /// What `status` shows of `slot`; `None` if the slot was freed meanwhile.
    pub fn view(&self, slot: usize, now: Instant) -> Option<ProcessView> {
        let p = self.get(slot)?;
        Some(ProcessView {
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
        })
    }
}
