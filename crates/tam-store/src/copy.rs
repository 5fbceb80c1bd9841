//! `tam migrate`: every table of one store copied into another, empty one (a home's SQLite file
//! into the PostgreSQL database replicas will share), in one transaction of the target, then
//! verified: each table's rows are read back from the target, counted and checksummed, and must
//! match what was read from the source.

use crate::db::{Arg, Conn, Dialect, IntoArg, Row, Value};
use crate::{Store, StoreError};

/// Every table, parents before children, each with the columns that order its rows (its key):
/// both back ends read them back in that order, byte for byte, so the checksums compare.
const TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("accounts", "tenant_id, id"),
    ("tickets", "tenant_id, id"),
    ("heartbeats", "tenant_id, account_id, at"),
    ("escalations", "tenant_id, account_id, at"),
    ("snapshots", "tenant_id, account_id, as_of"),
    ("episodes", "tenant_id, account_id, opened_at"),
    ("scans", "tenant_id, as_of"),
    ("outbox", "id"),
    ("outbox_attempts", "id"),
    ("drafts", "tenant_id, idem_key"),
    ("draft_fates", "tenant_id, idem_key"),
    ("alert_feedback", "tenant_id, alert_key, account_id"),
    ("notifications", "tenant_id, idem_key"),
    ("events", "id"),
    ("profile_facts", "tenant_id, account_id, section, fact_key"),
    ("profile_changes", "id"),
    ("opportunities", "tenant_id, account_id, opp_key"),
    ("model_calls", "id"),
    ("sync_state", "tenant_id, source"),
    ("webhook_deliveries", "tenant_id, source, delivery_id"),
    ("job_runs", "tenant_id, job, slot"),
    ("rate_buckets", "name"),
];

/// Tables whose `id` the database assigns: after a copy, the target's next id follows the
/// copied ones.
const NUMBERED: &[&str] = &["outbox", "outbox_attempts", "events", "profile_changes", "model_calls"];

/// One table copied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableCopy {
    /// Its name.
    pub table: &'static str,
    /// Rows copied (and counted again in the target).
    pub rows: u64,
    /// SHA-256 of its rows in key order, the same read from the source and from the target.
    pub checksum: String,
}

/// Why a copy did not happen; the target is left as it was.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds data: a copy goes into an empty database only.
    #[error("the target is not empty: its {table} table holds {rows} rows; tam migrate copies into an empty database")]
    NotEmpty {
        /// The first table found with rows.
        table: &'static str,
        /// How many.
        rows: u64,
    },
    /// What was read back differs from what was written.
    #[error("verification failed for table {table}: {source_rows} rows read, {target_rows} found in the target")]
    Mismatch {
        /// The table.
        table: &'static str,
        /// Rows read from the source.
        source_rows: u64,
        /// Rows read back from the target.
        target_rows: u64,
    },
    /// The rows compare by count but not by content.
    #[error("verification failed for table {table}: checksum {source_sum} read, {target_sum} in the target")]
    Checksum {
        /// The table.
        table: &'static str,
        /// The source's.
        source_sum: String,
        /// The target's.
        target_sum: String,
    },
    /// A database refused.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What copying needs of a value besides binding it.
trait Copied: Sized {
    fn read(row: &Row<'_>, i: usize) -> Result<Self, StoreError>;
    fn digest(&self, hash: &mut ring::digest::Context);
}

impl Copied for Value {
    fn read(row: &Row<'_>, i: usize) -> Result<Value, StoreError> {
        use rusqlite::types::ValueRef;
        match row {
            Row::Lite(r) => Ok(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Real(v),
                ValueRef::Text(t) | ValueRef::Blob(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            }),
            Row::Pg(r) => {
                use postgres::types::Type;
                let column = &r.columns()[i];
                Ok(match *column.type_() {
                    Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real),
                    Type::INT8 | Type::INT4 | Type::INT2 => row.get::<Option<i64>>(i)?.map_or(Value::Null, Value::Int),
                    _ => r.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
                })
            }
        }
    }

    /// Fed to the checksum: a type tag and the value, so `1` and `"1"` differ.
    fn digest(&self, hash: &mut ring::digest::Context) {
        match self {
            Value::Null => hash.update(b"n;"),
            Value::Int(v) => {
                hash.update(b"i");
                hash.update(&v.to_le_bytes());
            }
            Value::Real(v) => {
                hash.update(b"r");
                hash.update(&v.to_bits().to_le_bytes());
            }
            Value::Text(s) => {
                hash.update(b"t");
                hash.update(&(s.len() as u64).to_le_bytes());
                hash.update(s.as_bytes());
            }
        }
    }
}

/// Rows per INSERT: a few thousand values, well inside PostgreSQL's 65,535 parameters.
const BATCH_VALUES: usize = 8_000;

impl Store {
    /// Copies every table of this store into `target`, which must hold no rows, in one
    /// transaction of the target; then reads each table back from the target and compares its
    /// row count and checksum with the source's. `progress` hears each table as it is done.
    pub fn copy_to(
        &self,
        target: &mut Store,
        mut progress: impl FnMut(&TableCopy),
    ) -> Result<Vec<TableCopy>, CopyError> {
        for (table, _) in TABLES {
            let rows = count(&target.conn, table)?;
            if rows > 0 {
                return Err(CopyError::NotEmpty { table, rows });
            }
        }
        let read = self.conn.begin_read()?;
        let tx = target.conn.begin()?;
        if tx.dialect() == Dialect::Postgres {
            // Parents and children arrive table by table: check the references at the commit.
            tx.batch("SET CONSTRAINTS ALL DEFERRED")?;
        }
        let mut copied = Vec::new();
        for (table, key) in TABLES {
            let columns = columns(&read, table)?;
            let select = format!("SELECT {} FROM {table} ORDER BY {key}", columns.join(", "));
            let per_batch = (BATCH_VALUES / columns.len()).max(1);
            let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
            let mut batch: Vec<Vec<Value>> = Vec::with_capacity(per_batch);
            let mut rows = 0u64;
            read.each(&select, &[], |r| {
                let values = (0..columns.len()).map(|i| Value::read(r, i)).collect::<Result<Vec<_>, _>>()?;
                values.iter().for_each(|v| v.digest(&mut hash));
                batch.push(values);
                rows += 1;
                if batch.len() == per_batch {
                    insert(&tx, table, &columns, &std::mem::take(&mut batch))?;
                }
                Ok(())
            })?;
            insert(&tx, table, &columns, &batch)?;
            let source_sum = hex(hash.finish().as_ref());
            let (target_rows, target_sum) = checksum(&tx, &select, columns.len())?;
            if target_rows != rows {
                return Err(CopyError::Mismatch { table, source_rows: rows, target_rows });
            }
            if target_sum != source_sum {
                return Err(CopyError::Checksum { table, source_sum, target_sum });
            }
            let done = TableCopy { table, rows, checksum: source_sum };
            progress(&done);
            copied.push(done);
        }
        if tx.dialect() == Dialect::Postgres {
            for table in NUMBERED {
                tx.batch(&format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM {table}"
                ))?;
            }
        }
        tx.commit()?;
        read.commit()?;
        Ok(copied)
    }
}

fn count(conn: &Conn, table: &str) -> Result<u64, StoreError> {
    let n: Option<i64> = conn.row(&format!("SELECT COUNT(*) FROM {table}"), &[], |r| r.get(0))?;
    Ok(n.unwrap_or_default().unsigned_abs())
}

/// The table's columns, in the order the source keeps them.
fn columns(conn: &Conn, table: &str) -> Result<Vec<String>, StoreError> {
    match conn {
        Conn::Lite(c) => {
            let stmt = c.prepare(&format!("SELECT * FROM {table} LIMIT 0"))?;
            Ok(stmt.column_names().map(str::to_owned).collect())
        }
        Conn::Pg(_) => conn.rows(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY ordinal_position",
            &crate::db::args![table],
            |r| r.get(0),
        ),
    }
}

fn insert(conn: &Conn, table: &str, columns: &[String], rows: &[Vec<Value>]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES {}",
        columns.join(", "),
        crate::db::placeholders(rows.len(), columns.len())
    );
    let args: Vec<Arg<'_>> = rows.iter().flatten().map(IntoArg::into_arg).collect();
    conn.execute(&sql, &args)?;
    Ok(())
}

/// The row count and checksum of what `select` reads.
fn checksum(conn: &Conn, select: &str, width: usize) -> Result<(u64, String), StoreError> {
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut rows = 0u64;
    conn.each(select, &[], |r| {
        for i in 0..width {
            Value::read(r, i)?.digest(&mut hash);
        }
        rows += 1;
        Ok(())
    })?;
    Ok((rows, hex(hash.finish().as_ref())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schema_is_copied() {
        let store = Store::open_in_memory().unwrap();
        let tables: Vec<String> = store
            .conn
            .rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", &[], |r| r.get(0))
            .unwrap();
        let mut listed: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
        listed.sort_unstable();
        assert_eq!(tables, listed, "a table missing from TABLES would be left behind by tam migrate");
    }
}
