//! A token bucket: `capacity` calls at once, refilled at `per_second`. Pure: the caller passes
//! the time, as the time elapsed since an origin of its choosing. Notion's, Gmail's and Chat's
//! clients pace their calls with it; the API limits each tenant's heartbeats with it.
//!
//! [`Limits`] is the port those users share buckets through, by name: one process's buckets,
//! or buckets kept in the store, which every replica of a deployment takes from.

use std::time::Duration;

/// A token bucket.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    at: Duration,
}

impl TokenBucket {
    /// A bucket holding `tokens` of `capacity` at `now`, refilled at `per_second`.
    pub fn new(tokens: f64, capacity: u32, per_second: f64, now: Duration) -> TokenBucket {
        let capacity = f64::from(capacity.max(1));
        TokenBucket { tokens: tokens.min(capacity), capacity, per_second: per_second.max(0.01), at: now }
    }

    fn refill(&mut self, now: Duration) {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.at = now;
    }

    /// Takes a token, going into debt if none is left: how long to wait before using it.
    pub fn take(&mut self, now: Duration) -> Duration {
        self.take_n(1, now)
    }

    /// Takes `cost` tokens, going into debt if too few are left: how long to wait before
    /// spending them.
    pub fn take_n(&mut self, cost: u32, now: Duration) -> Duration {
        self.refill(now);
        self.tokens -= f64::from(cost);
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.per_second) }
    }

    /// The tokens left (below zero: the debt), as of the last take.
    pub fn tokens(&self) -> f64 {
        self.tokens
    }

    /// Takes a token if one is left; otherwise how long until one is.
    pub fn try_take(&mut self, now: Duration) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second));
        }
        self.tokens -= 1.0;
        Ok(())
    }
}

/// How fast a bucket lets calls through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Calls (or quota units) per second on average.
    pub per_second: f64,
    /// How many at once.
    pub burst: u32,
    /// The tokens of a bucket never used before.
    pub fresh: f64,
}

impl Rate {
    /// `per_second` on average, `burst` at once; a new bucket starts full.
    pub fn new(per_second: f64, burst: u32) -> Rate {
        Rate { per_second, burst, fresh: f64::from(burst) }
    }

    /// The same rate, a new bucket starting with `tokens` instead.
    pub fn starting_at(self, tokens: f64) -> Rate {
        Rate { fresh: tokens, ..self }
    }
}

/// Token buckets by name, shared by everyone who must keep to one limit.
pub trait Limits: Send + Sync {
    /// Takes `cost` tokens from the bucket `name`, going into debt if too few are left: how
    /// long to wait before the call.
    fn take(&self, name: &str, cost: u32, rate: Rate) -> Duration;

    /// Takes one token from the bucket `name` if one is left; otherwise how long until one is.
    fn try_take(&self, name: &str, rate: Rate) -> Result<(), Duration>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_average() {
        let start = Duration::from_secs(100);
        let mut b = TokenBucket::new(3.0, 3, 3.0, start);
        assert_eq!([b.take(start), b.take(start), b.take(start)], [Duration::ZERO; 3]);
        let wait = b.take(start);
        assert!((wait.as_secs_f64() - 1.0 / 3.0).abs() < 1e-9, "{wait:?}");
        let later = start + Duration::from_secs(10);
        assert_eq!(b.take(later), Duration::ZERO, "a quiet spell refills, up to the capacity only");
        assert_eq!(b.tokens, 2.0);
    }

    #[test]
    fn try_take_refuses_instead_of_borrowing() {
        let start = Duration::ZERO;
        let mut b = TokenBucket::new(2.0, 2, 0.5, start);
        assert_eq!((b.try_take(start), b.try_take(start)), (Ok(()), Ok(())));
        assert_eq!(b.try_take(start), Err(Duration::from_secs(2)));
        assert_eq!(b.try_take(start + Duration::from_secs(2)), Ok(()));
    }
}
