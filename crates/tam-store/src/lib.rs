//! tam-store: the SQLite store. Owns the schema and its migrations, and every query.
//!
//! **Invariant:** every query of tenant data takes a [`TenantId`] and returns rows of that
//! tenant only. The two exceptions name no data: the tenant list, and which tenants have an
//! account id (so `tam explain` can ask for `--tenant` when it is ambiguous).
//! **Invariant:** it keeps what the scan decided; it does not score, decide or touch the network.
//! Instants are stored as integer nanoseconds since the Unix epoch (UTC), so ordering and
//! boundary comparisons in SQL are exact.

mod channels;
mod jobs;
mod migrations;
mod outbox;
mod profile;
mod query;
mod scan;
#[cfg(feature = "sql-trace")]
pub mod trace;
mod worklist;
mod write;

use std::path::Path;

use rusqlite::Connection;
use tam_core::{TenantId, Timestamp};

pub use channels::{DraftRow, DraftUsage, NotificationRow};
pub use jobs::{AccountHealth, JobRun, TenantMetrics};
pub use migrations::SCHEMA_VERSION;
pub use outbox::{Attempt, Claim, Communication, Finish, NewEffect, OutboxRow, OutboxState};
pub use profile::{Fact, FactChange, Merged, NewFact, NewOpportunity, Opportunity, SECTIONS as PROFILE_SECTIONS};
pub use query::{AccountRow, EpisodeRow, StoredSnapshot, TenantRow};
pub use scan::{
    AccountError, PreviousSnapshot, RepAlertCount, ScanInput, ScanSummary, ScanWindow, ScanWriter, SnapshotRecord,
};
pub use worklist::{ScanRow, WaitingDraft, WorkFilter, WorkRow};
pub use write::Writer;

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database file could not be opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// A migration failed; the database is left at the previous version.
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        /// The version that could not be reached.
        version: usize,
        /// Why.
        source: rusqlite::Error,
    },
    /// The database was written by a newer `tam`.
    #[error("database schema version {found} is newer than this tam understands ({supported}); upgrade tam")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: usize,
    },
    /// A stored value is not what the schema promises (edited by hand, or a bug).
    #[error("stored {table} row {key}: field {field}: {reason}")]
    Corrupt {
        /// Table.
        table: &'static str,
        /// The row's key, for a human to find it.
        key: String,
        /// Column.
        field: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
}

/// The SQLite store. One connection; `tam` runs one writer at a time per home.
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open { path: path.display().to_string(), source };
        let conn = Connection::open(path).map_err(open_error)?;
        // A file that is not a database fails on the first statement: say which file.
        Store::init(conn).map_err(|e| match e {
            StoreError::Sqlite(source) => open_error(source),
            other => other,
        })
    }

    /// A private in-memory database, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        // WAL lets `tam explain` read while a scan writes; NORMAL sync is durable across
        // process crashes, which is the failure the outbox design cares about.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        // Write transactions take the write lock when they begin: one that read first and
        // then tried to write while another connection (the API beside the scheduler, a
        // second `tam serve`) had written would fail at once instead of waiting its turn.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        // 64 MiB of page cache: imports and scans walk indexes far larger than the 2 MiB default.
        conn.pragma_update(None, "cache_size", -65_536)?;
        // Every statement a dispatcher runs per effect stays prepared.
        conn.set_prepared_statement_cache_capacity(128);
        #[cfg(feature = "sql-trace")]
        trace::attach(&mut conn)?;
        migrations::apply(&mut conn)?;
        Ok(Store { conn })
    }

    /// The ids of every account of a tenant.
    pub fn account_ids(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM accounts WHERE tenant_id = ?1")?;
        let ids = stmt.query_map([tenant.as_str()], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Which of `ids` are stored tickets of the tenant: a sync tells new tickets from updates.
    pub fn known_tickets<'a>(
        &self,
        tenant: &TenantId,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached("SELECT 1 FROM tickets WHERE tenant_id = ?1 AND id = ?2")?;
        let mut known = std::collections::HashSet::new();
        for id in ids {
            if stmt.exists(rusqlite::params![tenant.as_str(), id])? {
                known.insert(id.to_owned());
            }
        }
        Ok(known)
    }

    /// How many accounts a tenant has.
    pub fn account_count(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let n: i64 =
            self.conn
                .cached_row("SELECT COUNT(*) FROM accounts WHERE tenant_id = ?1", [tenant.as_str()], |r| r.get(0))?;
        Ok(n.unsigned_abs())
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
    }
}

/// Queries through the connection's statement cache: per-effect reads and writes run
/// thousands of times per dispatch, and parsing their SQL each time cost more than running it.
pub(crate) trait CachedStatements {
    /// [`Connection::query_row`], prepared once.
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
    /// [`Connection::execute`], prepared once.
    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
}

impl CachedStatements for Connection {
    fn cached_row<T, P: rusqlite::Params, F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    fn cached_execute<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }
}

pub(crate) fn nanos(t: Timestamp) -> i64 {
    // i64 nanoseconds reach from 1677 to 2262; import rejects anything outside, see `in_range`.
    i64::try_from(t.as_nanosecond()).unwrap_or(if t.as_nanosecond() < 0 { i64::MIN } else { i64::MAX })
}

pub(crate) fn from_nanos(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).expect("every i64 nanosecond count is a valid timestamp")
}

/// Whether an instant can be stored exactly (years 1678 to 2261).
pub fn in_range(t: Timestamp) -> bool {
    i64::try_from(t.as_nanosecond()).is_ok()
}
