//! The registry's clock: coarse seconds, injected so tests move time without sleeping.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Seconds on a registry clock: UNIX time for [`SystemClock`], anything for a [`ManualClock`].
/// Only differences matter to the registry; a `u32` holds UNIX time until 2106.
pub type Secs = u32;

/// A source of "now" for the registry and the servers around it.
pub trait Clock: Send + Sync + 'static {
    /// The current time in whole seconds since the clock's own origin.
    fn now(&self) -> Secs;
}

/// The system's clock in UNIX seconds, read once at creation and then advanced monotonically.
///
/// Anchoring to UNIX time (rather than counting from process start) gives every process the same
/// time scale, so state derived from it survives restarts and is shared by instances: UDP
/// connection ids issued by one swarmd are accepted by another with the same secret. Advancing
/// from a monotonic `Instant` means a wall-clock step (NTP, an operator) never moves it backwards.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
    base: Secs,
}

impl SystemClock {
    /// A clock standing at the current UNIX time.
    pub fn new() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            origin: Instant::now(),
            base: Secs::try_from(unix).unwrap_or(Secs::MAX),
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
        // Saturate rather than wrap (in 2106).
        let elapsed = Secs::try_from(self.origin.elapsed().as_secs()).unwrap_or(Secs::MAX);
        self.base.saturating_add(elapsed)
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
    fn system_clock_reads_unix_time() {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let now = u64::from(SystemClock::new().now());
        assert!(now.abs_diff(unix) <= 1, "{now} vs {unix}");
    }
}
