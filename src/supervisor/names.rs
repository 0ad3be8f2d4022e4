//! Names → slots, and what `status` shows of a slot.

use super::Supervisor;
use crate::protocol::ProcessView;
use std::time::Instant;

impl Supervisor {
    /// Slots named by `names` (`all`, `PROGRAM`, `PROGRAM:N`, `PROGRAM:*`), in
    /// table order. Index lookups: the cost is the names plus the result, not
    /// names × processes.
    pub fn resolve(&self, names: &[String]) -> Result<Vec<usize>, String> {
        let mut slots = Vec::new();
        let mut unknown: Vec<&str> = Vec::new();
        for name in names {
            if name == "all" {
                return Ok(self
                    .order
                    .iter()
                    .copied()
                    .filter(|s| self.get(*s).is_some_and(|p| !p.retired))
                    .collect());
            }
            let (program, index) = match name.rsplit_once(':') {
                Some((p, "*")) => (p, None),
                Some((p, n)) => match n.parse::<u32>() {
                    Ok(n) => (p, Some(n)),
                    Err(_) => (name.as_str(), None),
                },
                None => (name.as_str(), None),
            };
            let run = self.program_run(program);
            let before = slots.len();
            match index {
                None => slots.extend(self.live(run)),
                Some(n) => {
                    let at = run.partition_point(|s| self.get(*s).is_some_and(|p| p.index < n));
                    let same = run[at..]
                        .iter()
                        .take_while(|s| self.index_of(**s) == Some(n));
                    slots.extend(self.live(same));
                }
            }
            if slots.len() == before {
                unknown.push(name);
            }
        }
        if !unknown.is_empty() {
            unknown.dedup();
            return Err(format!(
                "unknown name{}: {}",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.join(", ")
            ));
        }
        slots.sort_unstable_by_key(|s| self.position.get(*s).copied().unwrap_or(u32::MAX));
        slots.dedup();
        Ok(slots)
    }

    /// The slots of `program` in `order` (sorted by program name, then index,
    /// then retired last): live and retired ones. A binary search instead of
    /// a map of names, which held a copy of every program's name.
    pub(super) fn program_run(&self, program: &str) -> &[usize] {
        let name = |s: &usize| self.get(*s).map_or("", |p| p.cfg.name.as_str());
        let start = self.order.partition_point(|s| name(s) < program);
        let len = self.order[start..].partition_point(|s| name(s) == program);
        &self.order[start..start + len]
    }

    /// The live (not retired) slots among `slots`.
    pub(super) fn live<'a>(
        &'a self,
        slots: impl IntoIterator<Item = &'a usize> + 'a,
    ) -> impl Iterator<Item = usize> + 'a {
        slots
            .into_iter()
            .copied()
            .filter(|s| self.get(*s).is_some_and(|p| !p.retired))
    }

    fn index_of(&self, slot: usize) -> Option<u32> {
        self.get(slot).map(|p| p.index)
    }

    /// The one process `name` means: `PROGRAM:N`, or `PROGRAM` with one process.
    pub fn resolve_one(&self, name: &str) -> Result<usize, String> {
        let slots = self.resolve(&[name.to_string()])?;
        match slots.as_slice() {
            [one] => Ok(*one),
            _ => Err(format!(
                "{name} has {} processes: name one (PROGRAM:N)",
                slots.len()
            )),
        }
    }

    /// A process, for reading and seeding its output tail.
    pub fn get_mut_for_tail(&mut self, slot: usize) -> Option<&mut super::Process> {
        self.get_mut(slot)
    }

    /// Where a reply streamed over several turns goes on in the status order
    /// (`status`, `metrics`): `pos`, unless the order changed since the
    /// process at `pos - 1` was written (a reload between two turns re-sorts
    /// it): then right after that process's place, so nothing is listed
    /// twice (Prometheus rejects a whole scrape with a repeated series) or
    /// skipped. `last` is (program, index, retired) of that process.
    pub fn resume_at(&self, pos: usize, last: Option<&ResumeKey>) -> usize {
        let Some(last) = last else { return pos };
        let last = (last.0.as_str(), last.1, last.2);
        let key = |s: &usize| {
            self.get(*s)
                .map(|p| (p.cfg.name.as_str(), p.index, p.retired))
        };
        let before = pos.checked_sub(1).and_then(|i| self.order.get(i));
        if before.and_then(key) == Some(last) {
            return pos;
        }
        self.order
            .partition_point(|s| key(s).is_some_and(|k| k <= last))
    }

    /// Records `slot` as the last one written, for `resume_at`.
    pub fn remember(&self, slot: usize, last: &mut Option<ResumeKey>) {
        let Some(p) = self.get(slot) else { return };
        match last {
            Some((name, index, retired)) => {
                name.clone_from(&p.cfg.name);
                (*index, *retired) = (p.index, p.retired);
            }
            None => *last = Some((p.cfg.name.clone(), p.index, p.retired)),
        }
    }

    /// What `status` shows of `slot`, written over `view` (its strings'
    /// buffers are reused); false if the slot was freed meanwhile.
    pub fn view_into(&self, slot: usize, now: Instant, view: &mut ProcessView) -> bool {
        let Some(p) = self.get(slot) else {
            return false;
        };
        view.name.clone_from(&p.name);
        view.program.clone_from(&p.cfg.name);
        view.index = p.index;
        view.state = p.proc.state;
        view.pid = p.pid;
        view.uptime = p
            .pid
            .and(p.spawned_at)
            .map(|t| now.saturating_duration_since(t));
        view.last_exit = p.proc.last_exit;
        view.restarts = p.proc.restarts;
        view.message.clone_from(&p.proc.message);
        view.usage = None;
        view.health = self.health(slot);
        true
    }
}

/// A process's place in the status order: (program, index, retired).
pub type ResumeKey = (String, u32, bool);
