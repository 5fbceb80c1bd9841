//! Token buckets kept in the store: every process that shares it (replicas on one PostgreSQL)
//! takes from the same bucket, so a limit holds for the deployment, not per process.

use std::time::Duration;

use tam_core::Timestamp;
use tam_core::rate::{Rate, TokenBucket};

use crate::db::{Dialect, args};
use crate::{Store, StoreError, nanos};

impl Store {
    /// Takes `cost` tokens from the bucket `name` at `now`, in one transaction: `Ok(wait)` when
    /// taken (a wait above zero only when `borrow`, which goes into debt and waits its turn),
    /// `Err(retry_after)` when refused (too few tokens and not `borrow`). A bucket's clock only
    /// moves forward, so a replica whose clock lags takes no tokens back.
    pub fn take_tokens(
        &mut self,
        name: &str,
        cost: u32,
        rate: Rate,
        now: Timestamp,
        borrow: bool,
    ) -> Result<Result<Duration, Duration>, StoreError> {
        let tx = self.conn.begin()?;
        tx.execute(
            "INSERT INTO rate_buckets (name, tokens, at) VALUES (?1, ?2, ?3) ON CONFLICT (name) DO NOTHING",
            &args![name, rate.fresh, nanos(now)],
        )?;
        // SQLite's write transaction already excludes every other writer.
        let read = match tx.dialect() {
            Dialect::Sqlite => "SELECT tokens, at FROM rate_buckets WHERE name = ?1",
            Dialect::Postgres => "SELECT tokens, at FROM rate_buckets WHERE name = ?1 FOR UPDATE",
        };
        let (tokens, at): (f64, i64) =
            tx.row(read, &args![name], |r| Ok((r.get(0)?, r.get(1)?)))?.unwrap_or((rate.fresh, nanos(now)));
        let since_epoch = |n: i64| Duration::from_nanos(n.max(0).unsigned_abs());
        let (then, now_at) = (since_epoch(at), since_epoch(nanos(now).max(at)));
        let mut bucket = TokenBucket::new(tokens, rate.burst, rate.per_second, then);
        let taken = if borrow {
            Ok(bucket.take_n(cost, now_at))
        } else {
            // One token at a time is what refusing callers ask for.
            bucket.try_take(now_at).map(|()| Duration::ZERO)
        };
        tx.execute(
            "UPDATE rate_buckets SET tokens = ?2, at = ?3 WHERE name = ?1",
            &args![name, bucket.tokens(), nanos(now).max(at)],
        )?;
        tx.commit()?;
        Ok(taken)
    }
}
