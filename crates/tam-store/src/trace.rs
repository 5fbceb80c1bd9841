//! Every SQL statement a thread runs on the store's connections, recorded while a test asks for it: the
//! guard that checks each per-effect read against `EXPLAIN QUERY PLAN` sees the statements the
//! code really runs, not a list someone has to keep up to date.
//!
//! Compiled only with the `sql-trace` feature, which tests turn on.

use std::cell::RefCell;
use std::collections::BTreeSet;

use rusqlite::Connection;
use rusqlite::trace::{TraceEvent, TraceEventCodes};

thread_local! {
    // Per thread: tests running at once in one process record only their own statements
    // (SQLite calls the trace hook on the thread that runs the statement).
    static RECORDED: RefCell<Option<BTreeSet<String>>> = const { RefCell::new(None) };
}

/// Starts recording the text of every statement this thread runs, on any connection.
pub fn start() {
    RECORDED.with(|r| *r.borrow_mut() = Some(BTreeSet::new()));
}

/// Stops recording; returns each distinct statement recorded since [`start`], as written (its
/// parameters unbound).
pub fn stop() -> BTreeSet<String> {
    RECORDED.with(|r| r.borrow_mut().take()).unwrap_or_default()
}

pub(crate) fn attach(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.trace_v2(
        TraceEventCodes::SQLITE_TRACE_STMT,
        Some(|event: TraceEvent<'_>| {
            if let TraceEvent::Stmt(stmt, _) = event {
                RECORDED.with(|r| {
                    if let Some(recorded) = r.borrow_mut().as_mut() {
                        recorded.insert(stmt.sql().into_owned());
                    }
                });
            }
        }),
    )
}

/// The lines of `EXPLAIN QUERY PLAN` for `sql` that read a table of `tables` whole, or walk all
/// of one tenant's rows in it (an index used on `tenant_id` alone): what a per-item statement
/// must never do. `sql`'s parameters are left unbound.
pub fn unindexed_reads(conn: &Connection, sql: &str, tables: &[&str]) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    // Parameters stay NULL: the plan is the same whatever they are bound to.
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let details = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // Aliases (`FROM outbox o`) are resolved from the statement's text.
    let aliases: Vec<(String, String)> = {
        let words: Vec<&str> = sql.split_whitespace().collect();
        words
            .windows(3)
            .filter(|w| w[0].eq_ignore_ascii_case("from") || w[0].eq_ignore_ascii_case("join"))
            .map(|w| (w[2].trim_end_matches(',').to_owned(), w[1].to_owned()))
            .collect()
    };
    let table_of = |name: &str| -> String {
        aliases.iter().find(|(alias, _)| alias == name).map_or(name.to_owned(), |(_, table)| table.clone())
    };
    Ok(details
        .into_iter()
        .filter(|d| {
            let mut words = d.split_whitespace();
            let (Some(op), Some(name)) = (words.next(), words.next()) else { return false };
            let table = table_of(name);
            if !tables.contains(&table.as_str()) {
                return false;
            }
            let tenant_only = d.ends_with("(tenant_id=?)");
            op == "SCAN" || (op == "SEARCH" && tenant_only)
        })
        .collect())
}
