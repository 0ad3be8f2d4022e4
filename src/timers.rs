//! A min-heap of deadlines. Cancelling is lazy: each key carries a generation
//! and the owner ignores keys whose generation is stale. The nearest deadline
//! is the poll timeout; an empty heap means "sleep until something happens".

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub struct Timers<K: Ord> {
    heap: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord> Default for Timers<K> {
    fn default() -> Self {
        Timers {
            heap: BinaryHeap::new(),
        }
    }
}

impl<K: Ord> Timers<K> {
    pub fn arm(&mut self, at: Instant, key: K) {
        self.heap.push(Reverse((at, key)));
    }

    /// Time until the nearest deadline; `None` when nothing is armed.
    pub fn timeout(&self, now: Instant) -> Option<Duration> {
        self.heap
            .peek()
            .map(|Reverse((at, _))| at.saturating_duration_since(now))
    }

    /// Removes and returns the next key due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        match self.heap.peek() {
            Some(Reverse((at, _))) if *at <= now => self.heap.pop().map(|Reverse((_, k))| k),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Drops stale entries when they pile up (many re-arms of few keys).
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.heap.retain(|Reverse((_, k))| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_first_and_idle_when_empty() {
        let now = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.timeout(now), None);
        t.arm(now + Duration::from_secs(5), 'b');
        t.arm(now + Duration::from_secs(1), 'a');
        assert_eq!(t.timeout(now), Some(Duration::from_secs(1)));
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.pop_due(now + Duration::from_secs(2)), Some('a'));
        assert_eq!(t.pop_due(now + Duration::from_secs(2)), None);
        assert_eq!(
            t.timeout(now + Duration::from_secs(9)),
            Some(Duration::ZERO)
        );
        t.retain(|k| *k != 'b');
        assert!(t.is_empty());
    }
}
