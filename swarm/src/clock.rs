//! The registry's clock: coarse seconds, injected so tests move time without sleeping.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Seconds on a registry clock. Only differences matter; a `u32` covers 136 years of uptime.
pub type Secs = u32;

/// A source of "now" for the registry and the servers around it.
pub trait Clock: Send + Sync + 'static {
    /// The current time in whole seconds since the clock's own origin.
    fn now(&self) -> Secs;
}

/// Monotonic wall clock: seconds elapsed since the clock was created.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Secs {
        // Saturate rather than wrap after 136 years.
        Secs::try_from(self.origin.elapsed().as_secs()).unwrap_or(Secs::MAX)
    }
}

/// A clock that only moves when told to: for tests and simulations.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU32,
}

impl ManualClock {
    /// A manual clock standing at `start`.
    pub fn new(start: Secs) -> Self {
        Self {
            now: AtomicU32::new(start),
        }
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: Secs) {
        self.now.fetch_add(secs, Ordering::Relaxed);
    }

    /// Sets the clock to `now`.
    pub fn set(&self, now: Secs) {
        self.now.store(now, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Secs {
        self.now.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(10);
        assert_eq!(c.now(), 10);
        c.advance(5);
        assert_eq!(c.now(), 15);
        c.set(3);
        assert_eq!(c.now(), 3);
    }

    #[test]
    fn system_clock_starts_near_zero() {
        assert!(SystemClock::new().now() <= 1);
    }
}
