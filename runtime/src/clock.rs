//! Time for rate limiting: a monotonic clock, and a manual one tests drive.
//!
//! ```
//! use shieldwall_runtime::clock::{Clock, ManualClock};
//! use std::time::Duration;
//!
//! let clock = ManualClock::new();
//! let t0 = clock.now_nanos();
//! clock.advance(Duration::from_secs(59));
//! assert_eq!(clock.now_nanos() - t0, 59_000_000_000);
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A source of monotonic time in nanoseconds since an arbitrary origin.
pub trait Clock: Send + Sync + 'static {
    /// Nanoseconds since the clock's origin; never decreases.
    fn now_nanos(&self) -> u64;
}

/// The process's monotonic clock.
#[derive(Debug, Clone, Copy)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    /// A clock whose origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_nanos(&self) -> u64 {
        // Offset by one period of slack so that `now` is never 0 (0 means "empty" in stores).
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock at an arbitrary non-zero origin.
    pub fn new() -> Self {
        Self {
            now: Arc::new(AtomicU64::new(1_000_000_000)),
        }
    }

    /// Move time forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.now.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}
