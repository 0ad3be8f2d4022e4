//! Throttling of TCP `auth` attempts, and of what they write to the log.
//!
//! Any local user can reach a loopback port, so a guessing loop costs them a
//! connect per guess and nothing more. Two bounds, both without a timer (they
//! are judged when an attempt arrives, so an idle daemon stays idle):
//! - at most `TRIES_PER_SECOND` secrets are compared per second; an attempt
//!   beyond that is refused without comparing (a legitimate operator at worst
//!   retries a second later, and the unix socket is never throttled);
//! - at most `LOGGED_PER_MINUTE` failures are logged per minute at warn level;
//!   the next one logged says how many were left out meanwhile, so a flood of
//!   guesses cannot flood the log, and is still visible in it.

use std::time::{Duration, Instant};

pub const TRIES_PER_SECOND: u32 = 20;
pub const LOGGED_PER_MINUTE: u32 = 5;

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    count: u32,
}

impl Window {
    const fn new() -> Window {
        Window {
            start: None,
            count: 0,
        }
    }

    /// Counts one more in the window of length `len` that contains `now`;
    /// whether it is within `max`.
    fn take(&mut self, now: Instant, len: Duration, max: u32) -> bool {
        let expired = self
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= len);
        if expired {
            self.start = Some(now);
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= max
    }
}

#[derive(Debug)]
pub struct AuthLimit {
    tries: Window,
    logs: Window,
    /// Failures not logged since the last one that was.
    unlogged: u32,
}

impl Default for AuthLimit {
    fn default() -> Self {
        AuthLimit {
            tries: Window::new(),
            logs: Window::new(),
            unlogged: 0,
        }
    }
}

impl AuthLimit {
    /// Whether an attempt arriving at `now` may be compared at all.
    pub fn admit(&mut self, now: Instant) -> bool {
        self.tries
            .take(now, Duration::from_secs(1), TRIES_PER_SECOND)
    }

    /// A failure (or a refused attempt) at `now`: `Some(n)` if it is to be
    /// logged, `n` being how many were left out of the log before it.
    pub fn failure(&mut self, now: Instant) -> Option<u32> {
        if self
            .logs
            .take(now, Duration::from_secs(60), LOGGED_PER_MINUTE)
        {
            Some(std::mem::take(&mut self.unlogged))
        } else {
            self.unlogged = self.unlogged.saturating_add(1);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tries_are_bounded_per_second_and_come_back() {
        let mut l = AuthLimit::default();
        let t0 = Instant::now();
        let admitted = (0..100).filter(|_| l.admit(t0)).count();
        assert_eq!(admitted, TRIES_PER_SECOND as usize);
        assert!(!l.admit(t0 + Duration::from_millis(999)));
        assert!(l.admit(t0 + Duration::from_secs(1)));
    }

    #[test]
    fn failures_logged_are_bounded_and_the_next_one_counts_the_rest() {
        let mut l = AuthLimit::default();
        let t0 = Instant::now();
        let logged: Vec<Option<u32>> = (0..50).map(|_| l.failure(t0)).collect();
        assert_eq!(
            logged.iter().filter(|x| x.is_some()).count(),
            LOGGED_PER_MINUTE as usize
        );
        assert!(logged.iter().flatten().all(|&n| n == 0));
        let later = l.failure(t0 + Duration::from_secs(60));
        assert_eq!(later, Some(50 - LOGGED_PER_MINUTE));
        assert_eq!(l.failure(t0 + Duration::from_secs(61)), Some(0));
    }
}
