//! tam-store: the store, on SQLite (embedded, the default) or PostgreSQL (shared by replicas).
//! Owns the schema and its migrations, and every query.
//!
//! **Invariant:** every query of tenant data takes a [`TenantId`] and returns rows of that
//! tenant only. The two exceptions name no data: the tenant list, and which tenants have an
//! account id (so `tam explain` can ask for `--tenant` when it is ambiguous).
//! **Invariant:** it keeps what the scan decided; it does not score, decide or touch the network
//! beyond its own database.
//! **Invariant:** both back ends answer every query alike: the same rows in the same order
//! (PostgreSQL's text columns compare bytes, as SQLite's do).
//! Instants are stored as integer nanoseconds since the Unix epoch (UTC), so ordering and
//! boundary comparisons in SQL are exact.

mod channels;
mod copy;
mod db;
mod fates;
mod feedback;
mod history;
mod jobs;
mod location;
mod migrations;
mod outbox;
mod pool;
mod profile;
mod query;
mod rate;
mod scan;
#[cfg(feature = "sql-trace")]
pub mod trace;
mod worklist;
mod write;

use std::path::Path;

use tam_core::{TenantId, Timestamp};

use crate::db::{Conn, args};

pub use channels::{DraftRow, DraftUsage, NotificationRow};
pub use copy::{CopyError, TableCopy};
pub use fates::{FateCount, SavedDraft, WatchedRow};
pub use feedback::VoteCount;
pub use history::{EscalationRow, History};
pub use jobs::{AccountHealth, HealthFilter, JobRun, TenantMetrics};
pub use location::Location;
pub use migrations::SCHEMA_VERSION;
pub use outbox::{Attempt, Claim, Communication, Finish, NewEffect, OutboxRow, OutboxState};
pub use pool::{Pool, Pooled};
pub use profile::{Fact, FactChange, Merged, NewFact, NewOpportunity, Opportunity, SECTIONS as PROFILE_SECTIONS};
pub use query::{AccountRow, EpisodeRow, OpenTicket, StoredSnapshot, TenantRow};
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
    /// PostgreSQL refused an operation, or the connection to it was lost.
    #[error("database: {}", location::cause(.0))]
    Postgres(#[from] postgres::Error),
    /// The database file could not be opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// The PostgreSQL server could not be reached or refused the connection.
    #[error("cannot connect to the store at {url}: {reason}")]
    Connect {
        /// The URL, without its password.
        url: String,
        /// Why.
        reason: String,
    },
    /// A migration failed; the database is left at the previous version.
    #[error("migration to schema version {version} failed: {reason}")]
    Migration {
        /// The version that could not be reached.
        version: usize,
        /// Why.
        reason: String,
    },
    /// The database was written by a newer `tam`.
    #[error("database schema version {found} is newer than this tam understands ({supported}); upgrade tam")]
    TooNew {
        /// Version in the database.
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
    /// A column of a result did not read as the type asked for.
    #[error("column {column}: {reason}")]
    Column {
        /// Its name.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The store: one connection to its database. `tam` runs one writer at a time per home on
/// SQLite; on PostgreSQL, several replicas share it.
pub struct Store {
    conn: Conn,
}

impl Store {
    /// Opens the store wherever `location` says, bringing its schema up to date.
    pub fn open_at(location: &Location) -> Result<Store, StoreError> {
        match location {
            Location::File(path) => Store::open(path),
            Location::Postgres(url) => Store::connect(url),
        }
    }

    /// Opens (creating if needed) the SQLite database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_error = |source| StoreError::Open { path: path.display().to_string(), source };
        let conn = rusqlite::Connection::open(path).map_err(open_error)?;
        // A file that is not a database fails on the first statement: say which file.
        Store::init_sqlite(conn).map_err(|e| match e {
            StoreError::Sqlite(source) => open_error(source),
            other => other,
        })
    }

    /// A private in-memory SQLite database, for tests and dry runs.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Store::init_sqlite(rusqlite::Connection::open_in_memory()?)
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user:password@host:port/db`)
    /// and brings its schema up to date; replicas starting together migrate once.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        let client = location::connect(url)?;
        let conn = Conn::Pg(Box::new(db::PgConn::new(client, url)));
        migrations::apply(&conn)?;
        Ok(Store { conn })
    }

    fn init_sqlite(conn: rusqlite::Connection) -> Result<Store, StoreError> {
        // WAL lets `tam explain` read while a scan writes; NORMAL sync is durable across
        // process crashes, which is the failure the outbox design cares about.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        // 64 MiB of page cache: imports and scans walk indexes far larger than the 2 MiB default.
        conn.pragma_update(None, "cache_size", -65_536)?;
        // Every statement a dispatcher runs per effect stays prepared.
        conn.set_prepared_statement_cache_capacity(128);
        #[cfg(feature = "sql-trace")]
        let conn = {
            let mut conn = conn;
            trace::attach(&mut conn)?;
            conn
        };
        let conn = Conn::Lite(conn);
        migrations::apply(&conn)?;
        Ok(Store { conn })
    }

    /// Where this store's database is, for another connection to it; `None` for an in-memory
    /// store, which no other connection can open.
    pub fn location(&self) -> Option<Location> {
        match &self.conn {
            Conn::Lite(c) => c.path().filter(|p| !p.is_empty()).map(|p| Location::File(p.into())),
            Conn::Pg(c) => Some(Location::Postgres(c.url.clone())),
        }
    }

    /// Whether the connection still works: false once the server closed it.
    pub fn is_open(&self) -> bool {
        match &self.conn {
            Conn::Lite(_) => true,
            Conn::Pg(c) => !c.is_closed(),
        }
    }

    /// The ids of every account of a tenant.
    pub fn account_ids(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        self.conn
            .rows("SELECT id FROM accounts WHERE tenant_id = ?1 ORDER BY id", &args![tenant.as_str()], |r| r.get(0))
    }

    /// A page of the tenant's accounts as `(id, name)`, by id: the `limit` after `after`.
    pub fn account_page(
        &self,
        tenant: &TenantId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, StoreError> {
        self.conn.rows(
            "SELECT id, name FROM accounts WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
            &args![tenant.as_str(), after.unwrap_or(""), i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Which of `ids` are stored tickets of the tenant: a sync tells new tickets from updates.
    pub fn known_tickets<'a>(
        &self,
        tenant: &TenantId,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut known = std::collections::HashSet::new();
        for id in ids {
            if self
                .conn
                .exists("SELECT 1 FROM tickets WHERE tenant_id = ?1 AND id = ?2", &args![tenant.as_str(), id])?
            {
                known.insert(id.to_owned());
            }
        }
        Ok(known)
    }

    /// How many accounts a tenant has.
    pub fn account_count(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let n: Option<i64> =
            self.conn
                .row("SELECT COUNT(*) FROM accounts WHERE tenant_id = ?1", &args![tenant.as_str()], |r| r.get(0))?;
        Ok(n.unwrap_or_default().unsigned_abs())
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        migrations::version(&self.conn)
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
