//! The two keepers of [`Limits`]: [`LocalLimits`], one process's buckets in memory (the
//! embedded default, one `tam` per home), and [`StoreLimits`], buckets kept in the store, which
//! every replica on one PostgreSQL takes from. A store that cannot answer (the database went
//! away) does not stop the calls: the process's own bucket paces them meanwhile.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tam_core::Timestamp;
use tam_core::rate::{Limits, Rate, TokenBucket};
use tam_store::{Location, Store};

/// One process's buckets.
pub struct LocalLimits {
    origin: Instant,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl Default for LocalLimits {
    fn default() -> LocalLimits {
        LocalLimits { origin: Instant::now(), buckets: Mutex::new(HashMap::new()) }
    }
}

impl LocalLimits {
    fn with_bucket<T>(&self, name: &str, rate: Rate, f: impl FnOnce(&mut TokenBucket, Duration) -> T) -> T {
        let now = self.origin.elapsed();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets
            .entry(name.to_owned())
            .or_insert_with(|| TokenBucket::new(rate.fresh, rate.burst, rate.per_second, now));
        f(bucket, now)
    }
}

impl Limits for LocalLimits {
    fn take(&self, name: &str, cost: u32, rate: Rate) -> Duration {
        self.with_bucket(name, rate, |b, now| b.take_n(cost, now))
    }

    fn try_take(&self, name: &str, rate: Rate) -> Result<(), Duration> {
        self.with_bucket(name, rate, |b, now| b.try_take(now))
    }
}

/// Buckets kept in the store: a limit holds across every process sharing it.
pub struct StoreLimits {
    location: Location,
    /// One connection, opened on first use and again after it fails, and when the store last
    /// failed: for a while after, the process's own buckets pace the calls, so an unreachable
    /// database costs one connection attempt a while, not one a call.
    store: Mutex<(Option<Store>, Option<Instant>)>,
    fallback: LocalLimits,
}

/// How long after a failure the store's buckets are left alone.
const RETRY_STORE_AFTER: Duration = Duration::from_secs(30);

impl StoreLimits {
    /// Buckets in the store at `location`.
    pub fn new(location: Location) -> StoreLimits {
        StoreLimits { location, store: Mutex::new((None, None)), fallback: LocalLimits::default() }
    }

    fn shared(&self, name: &str, cost: u32, rate: Rate, borrow: bool) -> Option<Result<Duration, Duration>> {
        let mut guard = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let (store, failed_at) = &mut *guard;
        if failed_at.is_some_and(|at| at.elapsed() < RETRY_STORE_AFTER) {
            return None;
        }
        if store.as_ref().is_none_or(|s| !s.is_open()) {
            *store = Store::open_at(&self.location).ok();
        }
        let taken = store.as_mut().map(|s| s.take_tokens(name, cost, rate, Timestamp::now(), borrow));
        match taken {
            Some(Ok(taken)) => {
                *failed_at = None;
                Some(taken)
            }
            Some(Err(_)) | None => {
                *store = None;
                *failed_at = Some(Instant::now());
                None
            }
        }
    }
}

impl Limits for StoreLimits {
    fn take(&self, name: &str, cost: u32, rate: Rate) -> Duration {
        match self.shared(name, cost, rate, true) {
            Some(Ok(wait)) => wait,
            Some(Err(_)) | None => self.fallback.take(name, cost, rate),
        }
    }

    fn try_take(&self, name: &str, rate: Rate) -> Result<(), Duration> {
        match self.shared(name, 1, rate, false) {
            Some(taken) => taken.map(|_| ()),
            None => self.fallback.try_take(name, rate),
        }
    }
}

/// The limits a store at `location` calls for: shared through it when several processes
/// share it, this process's own otherwise.
pub fn for_store(location: &Location) -> std::sync::Arc<dyn Limits> {
    if location.is_shared() {
        std::sync::Arc::new(StoreLimits::new(location.clone()))
    } else {
        std::sync::Arc::new(LocalLimits::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_kept_in_a_store_are_one_limit_for_every_process_that_shares_it() {
        let dir = tempfile::tempdir().unwrap();
        let at = Location::File(dir.path().join("tam.db"));
        let (a, b) = (StoreLimits::new(at.clone()), StoreLimits::new(at));
        let rate = Rate::new(0.001, 3);
        let taken: Vec<bool> = (0..6)
            .map(|i| if i % 2 == 0 { &a } else { &b })
            .map(|l| l.try_take("heartbeats:acme", rate).is_ok())
            .collect();
        assert_eq!(taken, [true, true, true, false, false, false], "three at once between the two, not three each");
        assert!(a.try_take("heartbeats:globex", rate).is_ok(), "each name its own bucket");
        let wait = b.take("notion", 1, Rate::new(2.0, 1).starting_at(0.0));
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500), "{wait:?}");
    }
}
