//! When to give memory back (`footprint::trim`): a pure policy, so that it is
//! tested without the OS, and a cheap reading of the resident set to feed it.
//!
//! A boot or a reload always trims once the loop settles: parsing the file ran
//! code and filled heap the loop never needs again. After that, use brings
//! pages back: a `status` of 1000 processes, a `start all`, a `tail` fault in
//! the code they run (64 KiB at a time) and grow the heap. So whenever the loop
//! settles (it is about to sleep with no deadline within a second) the resident
//! set is read (one `pread` of `/proc/self/statm`) and, if it grew by more than
//! [`GROWTH_KB`] since the last trim, the daemon trims again, in that same
//! turn: an idle daemon is a trimmed one, and trimming costs no wake-up of its
//! own.
//!
//! Trimming drops code the next request faults back in (a few hundred
//! microseconds, once), so:
//! - at most [`BURST`] trims for growth happen within [`GAP`] (a new
//!   connection, its request and its close may each fault pages back: a few
//!   requests in a row stay within it); a settle beyond that
//!   leaves a deadline for when the window allows one more, so the memory
//!   still goes back once the burst is over. That deadline exists only after
//!   activity; an idle daemon has none.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// Growth of the resident set, in KiB, that is worth a trim.
pub const GROWTH_KB: u64 = 256;

/// The window in which at most [`BURST`] trims for growth happen.
pub const GAP: Duration = Duration::from_secs(10);

/// Trims for growth allowed within [`GAP`].
pub const BURST: usize = 8;

/// The trimming policy's memory of the last trim.
#[derive(Debug)]
pub struct Trimmer {
    /// A boot or reload ran since the last trim.
    due: bool,
    /// The resident set right after the last trim, in KiB.
    base_kb: Option<u64>,
    /// The last trims for growth (boot and reload trims do not count: the
    /// first use after a boot may trim at once).
    recent: [Option<Instant>; BURST],
    /// A trim held back by [`GAP`]: when it may run.
    deferred: Option<Instant>,
    /// `/proc/self/statm`, kept open: one `pread` per settle.
    statm: Option<File>,
}

impl Default for Trimmer {
    fn default() -> Self {
        Trimmer {
            due: true,
            base_kb: None,
            recent: [None; BURST],
            deferred: None,
            statm: File::open("/proc/self/statm").ok(),
        }
    }
}

impl Trimmer {
    /// A boot or reload ran: trim once settled, whatever the growth.
    pub fn reloaded(&mut self) {
        self.due = true;
    }

    /// The deadline of a trim held back by [`GAP`], for the poll timeout.
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

    /// The pure decision: trim now? (Sets the deferred deadline when the gap
    /// holds a trim back.)
    pub fn decide(&mut self, now: Instant, rss_kb: Option<u64>) -> bool {
        // Recomputed at every settle: a deadline left over would be in the
        // past and make the loop spin.
        self.deferred = None;
        if self.due {
            return true;
        }
        let (Some(rss), Some(base)) = (rss_kb, self.base_kb) else {
            return false;
        };
        if rss < base.saturating_add(GROWTH_KB) {
            return false;
        }
        let window = |t: &Instant| now.saturating_duration_since(*t) < GAP;
        if self.recent.iter().flatten().filter(|t| window(t)).count() < BURST {
            return true;
        }
        self.deferred = self.recent.iter().flatten().min().map(|t| *t + GAP);
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

    fn secs(t: Instant, s: u64) -> Instant {
        t + Duration::from_secs(s)
    }

    #[test]
    fn boot_trims_whatever_the_growth_and_does_not_count() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        assert!(t.decide(t0, None), "a boot trims even unreadable");
        t.trimmed(t0, Some(1000));
        for i in 0..BURST as u64 {
            let at = t0 + Duration::from_millis(50 * (i + 1));
            assert!(t.decide(at, Some(2000)), "growth trim {i} right after boot");
            t.trimmed(at, Some(1000));
        }
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn small_growth_is_left_alone() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        t.trimmed(t0, Some(1000));
        assert!(!t.decide(secs(t0, 60), Some(1000 + GROWTH_KB - 1)));
        assert_eq!(t.deadline(), None, "nothing waits: no wake-up is caused");
        assert!(t.decide(secs(t0, 60), Some(1000 + GROWTH_KB)));
    }

    #[test]
    fn a_burst_of_growth_trims_then_a_deadline_for_the_next() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        t.trimmed(t0, Some(1000)); // boot
        for i in 0..BURST as u64 {
            assert!(t.decide(secs(t0, 1 + i), Some(3000)));
            t.trimmed(secs(t0, 1 + i), Some(1000));
        }
        // One more within the window: held until the oldest leaves it.
        let late = secs(t0, 1 + BURST as u64);
        assert!(!t.decide(late, Some(3000)));
        assert_eq!(t.deadline(), Some(secs(t0, 1) + GAP));
        // Woken by that deadline: trims, and the deadline is gone.
        assert!(t.decide(secs(t0, 1) + GAP, Some(3000)));
        t.trimmed(secs(t0, 1) + GAP, Some(1000));
        assert_eq!(t.deadline(), None);
        // The window now holds the trims at 2 s, 3 s and 11 s.
        assert!(!t.decide(secs(t0, 1) + GAP, Some(3000)));
        assert_eq!(t.deadline(), Some(secs(t0, 2) + GAP));
    }

    #[test]
    fn a_reload_trims_whatever_the_window() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        t.trimmed(t0, Some(1000));
        for i in 0..BURST as u64 {
            assert!(t.decide(secs(t0, 1 + i), Some(3000)));
            t.trimmed(secs(t0, 1 + i), Some(1000));
        }
        t.reloaded();
        assert!(t.decide(secs(t0, 5), Some(1000)));
        t.trimmed(secs(t0, 5), Some(1000));
        // The reload's trim took no slot of the window.
        assert!(t.decide(secs(t0, 1) + GAP, Some(3000)));
    }

    #[test]
    fn shrinking_drops_a_held_trim() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        t.trimmed(t0, Some(1000));
        for i in 0..BURST as u64 {
            t.decide(secs(t0, 1 + i), Some(3000));
            t.trimmed(secs(t0, 1 + i), Some(1000));
        }
        assert!(!t.decide(secs(t0, 5), Some(3000)));
        assert!(t.deadline().is_some());
        assert!(!t.decide(secs(t0, 6), Some(1100)));
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn unreadable_rss_never_trims_for_growth_nor_leaves_a_deadline() {
        let mut t = Trimmer::default();
        let t0 = Instant::now();
        t.trimmed(t0, None);
        assert!(!t.decide(secs(t0, 100), Some(1 << 30)));
        t.trimmed(t0, Some(10));
        for i in 0..BURST as u64 {
            t.trimmed(secs(t0, 1 + i), Some(10));
        }
        assert!(!t.decide(secs(t0, 5), Some(1 << 20)));
        assert!(t.deadline().is_some());
        // statm became unreadable while a trim was held: no stale deadline.
        assert!(!t.decide(secs(t0, 6), None));
        assert_eq!(t.deadline(), None);
    }

    #[test]
    fn reads_this_process_resident_set() {
        let t = Trimmer::default();
        let kb = t.rss_kb().expect("statm readable");
        assert!(kb > 100, "a test binary holds more than 100 KiB: {kb}");
    }
}
