//! Time as the compactor sees it, injected so tests can move it.
//!
//! Everything the compactor decides by time — retention expiry, the delete
//! delay, the cancel period of delete requests — reads a [`Clock`]. The
//! server passes [`SystemClock`]; tests pass a [`ManualClock`] and advance
//! days in microseconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::model::Timestamp;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start.nanos()))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.nanos(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        let nanos = i64::try_from(by.as_nanos()).unwrap_or(i64::MAX);
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_nanos(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Timestamp::from_secs(100));
        assert_eq!(c.now(), Timestamp::from_secs(100));
        c.advance(Duration::from_secs(86_400));
        assert_eq!(c.now(), Timestamp::from_secs(86_500));
        c.set(Timestamp::from_secs(5));
        assert_eq!(c.now(), Timestamp::from_secs(5));
        assert!(SystemClock.now() > Timestamp::from_secs(1_600_000_000));
    }
}
