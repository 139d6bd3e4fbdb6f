//! Token-bucket rate limiting, as Go's `golang.org/x/time/rate` limiter that
//! Loki's distributor uses: `allow_n` takes `n` tokens if available; a request
//! larger than the burst is never allowed.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket refilling at `rate` tokens per second up to `burst`.
    pub fn new(rate: f64, burst: f64, now: Instant) -> Self {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Re-configures the limits (per-tenant overrides may change at runtime),
    /// keeping the tokens already accrued.
    pub fn set_limits(&mut self, rate: f64, burst: f64) {
        self.rate = rate;
        self.burst = burst;
        self.tokens = self.tokens.min(burst);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
    }

    /// Takes `n` tokens if the bucket holds them.
    pub fn allow_n(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        if n <= self.tokens {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Whether `n` tokens are available, without taking them.
    pub fn would_allow(&mut self, n: f64, now: Instant) -> bool {
        self.refill(now);
        n <= self.tokens
    }

    /// Takes `n` tokens unconditionally (may go negative-free: clamps at zero).
    pub fn take(&mut self, n: f64) {
        self.tokens = (self.tokens - n).max(0.0);
    }

    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0, 300.0, t0);
        assert!(b.allow_n(250.0, t0));
        assert!(!b.allow_n(100.0, t0), "only 50 left");
        assert!(
            b.allow_n(100.0, t0 + Duration::from_millis(500)),
            "50 + 50 refilled"
        );
        assert!(
            !b.allow_n(301.0, t0 + Duration::from_secs(100)),
            "never more than the burst"
        );
        assert!(b.allow_n(300.0, t0 + Duration::from_secs(100)));
    }
}
