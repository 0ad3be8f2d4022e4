//! When to give memory back (`footprint::trim`): a pure policy, so that it is
//! tested without the OS, and a cheap reading of the resident set to feed it.
//!
//! A boot or a reload always trims once the loop settles: parsing the file ran
//! code and filled heap the loop never needs again. After that, use brings
//! pages back: a `status` of 1000 processes, a `start all`, a `tail` fault in
//! the code they run (64 KiB at a time) and grow the heap. So whenever the loop
//! settles (it is about to sleep with no deadline within a second) the resident
//! set is read (one `pread` of `/proc/self/statm`); if it grew by more than
//! [`GROWTH_KB`] since the last trim, a trim is due once the daemon has been
//! [`QUIET`] for a moment.
//!
//! Why not at once: trimming drops code the next request faults back in (a
//! few hundred microseconds). A client sending requests back to back would pay
//! that on every one, so each settle with growth moves the trim to [`QUIET`]
//! after it, and the trim runs once the requests stop: one wake-up after a
//! burst of use, none while idle (an idle daemon has no such deadline, and
//! nothing arms one but activity). A trim costs well under a millisecond, and
//! needs [`GROWTH_KB`] of new pages and [`QUIET`] without activity before it,
//! so activity that keeps coming back costs at most one trim per pause; and at
//! most [`BURST`] trims for growth run within [`GAP`]: a client polling
//! `status` every 200 ms pauses 5 times a second, and trimming after each
//! made every request refault what the trim dropped (a trim and a refault per
//! poll). Beyond the budget the trim waits for the window, still one
//! deadline armed only by activity.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Growth of the resident set, in KiB, that is worth a trim.
pub const GROWTH_KB: u64 = 256;

/// How long the loop must stay asleep after a settle with growth before the
/// trim runs.
pub const QUIET: Duration = Duration::from_millis(100);

/// The window in which at most [`BURST`] trims for growth run.
pub const GAP: Duration = Duration::from_secs(10);

/// Trims for growth allowed within [`GAP`] (boot and reload trims do not
/// count).
pub const BURST: usize = 8;

/// The trimming policy's memory of the last trim.
#[derive(Debug)]
pub struct Trimmer {
    /// A boot or reload ran since the last trim.
    due: bool,
    /// The resident set right after the last trim, in KiB.
    base_kb: Option<u64>,
    /// A trim due for growth: when it runs (if nothing happens before).
    deferred: Option<Instant>,
    /// When the last trims for growth ran, for the [`BURST`] budget.
    recent: [Option<Instant>; BURST],
    /// `/proc/self/statm`, kept open: one `pread` per settle.
    statm: Option<File>,
}

impl Default for Trimmer {
    fn default() -> Self {
        Trimmer {
            due: true,
            base_kb: None,
            deferred: None,
            recent: [None; BURST],
            statm: File::open("/proc/self/statm").ok(),
        }
    }
}

impl Trimmer {
    /// A boot or reload ran: trim once settled, whatever the growth.
    pub fn reloaded(&mut self) {
        self.due = true;
    }

    /// When a trim due for growth runs, for the poll timeout.
    pub fn deadline(&self) -> Option<Instant> {
        self.deferred
    }

    /// The loop has settled (it is about to sleep with no deadline within a
    /// second). Trims if the policy says so.
    pub fn settled(&mut self, now: Instant) {
        let rss = self.rss_kb();
        if !self.decide(now, rss) {
            return;
        }
        // Logged before, not after: the logging code is then given back too.
        log::debug!("giving back unused pages (RSS {} KiB)", rss.unwrap_or(0));
        crate::footprint::trim();
        let after = self.rss_kb();
        self.trimmed(now, after);
    }

    /// The pure decision: trim now? Otherwise (re)arms the deadline when the
    /// resident set grew.
    pub fn decide(&mut self, now: Instant, rss_kb: Option<u64>) -> bool {
        // Taken at every settle: a deadline is only ever the one this settle
        // arms, never a stale one that would make the loop spin.
        let armed = self.deferred.take();
        if self.due {
            return true;
        }
        let (Some(rss), Some(base)) = (rss_kb, self.base_kb) else {
            return false;
        };
        if rss < base.saturating_add(GROWTH_KB) {
            return false;
        }
        if armed.is_some_and(|at| now >= at) {
            // Nothing happened since the last settle: the burst is over.
            return true;
        }
        // Past the budget: not before the oldest trim of the window leaves it.
        let in_window = |t: &&Instant| now.saturating_duration_since(**t) < GAP;
        let recent = self.recent.iter().flatten().filter(in_window);
        let open = if recent.clone().count() < BURST {
            now
        } else {
            recent.min().map_or(now, |t| *t + GAP)
        };
        self.deferred = Some((now + QUIET).max(open));
        false
    }

    /// A trim ran at `now`; `rss_kb` is the resident set after it.
    pub fn trimmed(&mut self, now: Instant, rss_kb: Option<u64>) {
        if !std::mem::take(&mut self.due) {
            // The oldest (or an empty) slot takes it.
            if let Some(slot) = self.recent.iter_mut().min_by_key(|t| **t) {
                *slot = Some(now);
            }
        }
        self.base_kb = rss_kb;
        self.deferred = None;
    }

    /// The daemon's resident set in KiB (`/proc/self/statm`'s second field is
    /// in pages).
    fn rss_kb(&self) -> Option<u64> {
        let mut buf = [0u8; 128];
        let n = self.statm.as_ref()?.read_at(&mut buf, 0).ok()?;
        let pages: u64 = std::str::from_utf8(&buf[..n])
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        // SAFETY: sysconf has no pointer argument.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Some(pages * u64::try_from(page).ok()? / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t: Instant, ms: u64) -> Instant {
        t + Duration::from_millis(ms)
    }

    /// A trimmer that trimmed at `t0` down to 1000 KiB.
    fn trimmed_at(t0: Instant) -> Trimmer {
        let mut t = Trimmer::default();
        assert!(t.decide(t0, None), "a boot trims, even unreadable");
        t.trimmed(t0, Some(1000));
        t
    }

    #[test]
    fn small_growth_is_left_alone_and_arms_nothing() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        assert!(!t.decide(ms(t0, 5000), Some(1000 + GROWTH_KB - 1)));
        assert_eq!(t.deadline(), None, "no wake-up is caused");
    }

    #[test]
    fn growth_trims_once_the_loop_stayed_quiet() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        assert!(!t.decide(ms(t0, 5000), Some(3000)), "not at once");
        assert_eq!(t.deadline(), Some(ms(t0, 5000) + QUIET));
        // Woken by that deadline, nothing else happened: trim.
        assert!(t.decide(ms(t0, 5000) + QUIET, Some(3000)));
        t.trimmed(ms(t0, 5000) + QUIET, Some(1000));
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn requests_back_to_back_push_the_trim_after_the_last() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        for i in 0..20 {
            let at = ms(t0, 5000 + i);
            assert!(!t.decide(at, Some(3000)), "request {i} pays no refault");
            assert_eq!(t.deadline(), Some(at + QUIET));
        }
        assert!(t.decide(ms(t0, 5019) + QUIET, Some(3000)));
    }

    /// A client polling every 200 ms (each poll faults pages back in) pauses
    /// longer than QUIET each time: at most BURST trims in any GAP, and the
    /// one held back still runs, once the window allows it.
    #[test]
    fn a_steady_poller_gets_at_most_a_burst_of_trims_per_gap() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        let mut trims = Vec::new();
        let mut now = ms(t0, 1000);
        let end = ms(t0, 1000) + GAP * 2;
        while now < end {
            // The poll's settle: grown again since the last trim.
            assert!(!t.decide(now, Some(3000)));
            let due = t.deadline().expect("armed by growth");
            assert!(due >= now + QUIET, "never in the past: no spin");
            let next_poll = now + Duration::from_millis(200);
            if due <= next_poll {
                assert!(t.decide(due, Some(3000)));
                t.trimmed(due, Some(1000));
                trims.push(due);
            }
            now = next_poll;
        }
        for (i, at) in trims.iter().enumerate() {
            let within = trims[i..].iter().filter(|t| **t < *at + GAP).count();
            assert!(within <= BURST, "{within} trims within {GAP:?} of {at:?}");
        }
        assert!(trims.len() >= BURST, "the budget is used: {}", trims.len());
        // The poller stops: the held-back trim runs once, when it may.
        assert!(!t.decide(now, Some(3000)));
        let due = t.deadline().expect("armed");
        assert!(due <= now + GAP);
        assert!(t.decide(due, Some(3000)));
    }

    #[test]
    fn a_reload_trims_at_once() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        t.reloaded();
        assert!(t.decide(ms(t0, 1), Some(1000)));
        t.trimmed(ms(t0, 1), Some(1000));
        assert!(!t.decide(ms(t0, 2000), Some(1000)), "once");
    }

    #[test]
    fn shrinking_drops_an_armed_trim() {
        let t0 = Instant::now();
        let mut t = trimmed_at(t0);
        assert!(!t.decide(ms(t0, 5000), Some(3000)));
        assert!(t.deadline().is_some());
        assert!(!t.decide(ms(t0, 5050), Some(1100)));
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn unreadable_rss_never_trims_for_growth_nor_leaves_a_deadline() {
        let t0 = Instant::now();
        let mut t = Trimmer::default();
        t.trimmed(t0, None);
        assert!(!t.decide(ms(t0, 5000), Some(1 << 30)));
        assert_eq!(t.deadline(), None);
        let mut t = trimmed_at(t0);
        assert!(!t.decide(ms(t0, 5000), Some(1 << 20)));
        assert!(t.deadline().is_some());
        // statm became unreadable while a trim was armed: no stale deadline.
        assert!(!t.decide(ms(t0, 6000), None));
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn reads_this_process_resident_set() {
        let t = Trimmer::default();
        let kb = t.rss_kb().expect("statm readable");
        assert!(kb > 100, "a test binary holds more than 100 KiB: {kb}");
    }
}
