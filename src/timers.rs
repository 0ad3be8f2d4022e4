//! The one deadline heap of the daemon: process deadlines (start, backoff,
//! restart delay, kill) and report timeouts alike.
//!
//! Each key has at most one live deadline. Re-arming or cancelling a key bumps
//! its generation; heap entries of an older generation are stale. Stale entries
//! are dropped from the top before the poll timeout is computed, so a cancelled
//! deadline never wakes the loop, and the heap is compacted when stale entries
//! outnumber live ones.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What a deadline belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Deadline {
    /// The single deadline of the process in this supervisor slot.
    Proc(usize),
    /// The current phase (connect, response) of an in-flight report.
    Report(usize),
    /// The time left to an HTTP client (`metrics_listen`), by client id.
    Client(usize),
    /// The timeout of an auxiliary child (`oneshot`).
    OneShot(usize),
    /// The next check of the probe of this process slot, or the timeout of
    /// the one in flight.
    Probe(usize),
}

pub struct Timers<K: Ord + Hash + Copy = Deadline> {
    heap: BinaryHeap<Reverse<(Instant, u64, K)>>,
    /// The live generation of each armed key.
    live: HashMap<K, u64>,
    next_gen: u64,
}

impl<K: Ord + Hash + Copy> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_gen: 0,
        }
    }
}

impl<K: Ord + Hash + Copy> Timers<K> {
    /// Sets `key`'s deadline to `at`, replacing any earlier one.
    pub fn arm(&mut self, key: K, at: Instant) {
        self.next_gen += 1;
        self.live.insert(key, self.next_gen);
        self.heap.push(Reverse((at, self.next_gen, key)));
        if self.heap.len() > 2 * self.live.len() + 64 {
            let live = &self.live;
            self.heap
                .retain(|Reverse((_, g, k))| live.get(k) == Some(g));
        }
    }

    /// Clears `key`'s deadline, if any.
    pub fn cancel(&mut self, key: K) {
        self.live.remove(&key);
    }

    pub fn is_armed(&self, key: K) -> bool {
        self.live.contains_key(&key)
    }

    fn drop_stale_top(&mut self) {
        while let Some(Reverse((_, g, k))) = self.heap.peek() {
            if self.live.get(k) == Some(g) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Time until the nearest live deadline; `None` when nothing is armed.
    pub fn timeout(&mut self, now: Instant) -> Option<Duration> {
        self.drop_stale_top();
        self.heap
            .peek()
            .map(|Reverse((at, _, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns the next live key due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        self.drop_stale_top();
        match self.heap.peek() {
            Some(Reverse((at, _, _))) if *at <= now => {
                let Reverse((_, _, k)) = self.heap.pop()?;
                self.live.remove(&k);
                Some(k)
            }
            _ => None,
        }
    }

    /// Heap entries, stale ones included (for tests of the compaction).
    pub fn entries(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_and_idle_when_empty() {
        let now = Instant::now();
        let mut t: Timers<char> = Timers::default();
        assert_eq!(t.timeout(now), None);
        t.arm('b', now + Duration::from_secs(5));
        t.arm('a', now + Duration::from_secs(1));
        assert_eq!(t.timeout(now), Some(Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.pop_due(now + Duration::from_secs(2)), Some('a'));
        assert_eq!(t.pop_due(now + Duration::from_secs(2)), None);
        assert_eq!(
            t.timeout(now + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn cancelled_and_replaced_deadlines_never_wake() {
        let now = Instant::now();
        let mut t: Timers<char> = Timers::default();
        t.arm('a', now + Duration::from_secs(1));
        t.cancel('a');
        assert_eq!(t.timeout(now), None, "a disarmed deadline costs no wake-up");
        t.arm('b', now + Duration::from_secs(1));
        t.arm('b', now + Duration::from_secs(7));
        assert_eq!(t.timeout(now), Some(Duration::from_secs(7)));
        assert_eq!(t.pop_due(now + Duration::from_secs(2)), None);
        assert_eq!(t.pop_due(now + Duration::from_secs(8)), Some('b'));
        assert!(!t.is_armed('b'));
    }

    #[test]
    fn re_arming_many_times_stays_compact() {
        let now = Instant::now();
        let mut t: Timers<u32> = Timers::default();
        for i in 0..100_000u32 {
            t.arm(i % 10, now + Duration::from_millis(u64::from(i)));
        }
        assert!(t.entries() <= 2 * 10 + 64 + 1, "{}", t.entries());
    }
}
