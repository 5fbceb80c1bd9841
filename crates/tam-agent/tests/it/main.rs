//! Integration tests of tam-agent against a real store: SQLite, or PostgreSQL when
//! `scripts/test` names a cluster in `TAM_TEST_POSTGRES` (each test in a database of its own).

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

mod dispatch;
mod import;
mod scan;
mod tasks;

use std::io::Cursor;

use tam_agent::import::{Format, ImportOptions, ImportReport, Importer};
use tam_core::{PriorityNames, SignedDuration, Timestamp};
use tam_store::Store;

/// The instant the tests import and scan at.
pub const NOW: &str = "2026-03-29T07:00:00Z";

/// [`NOW`] as a timestamp.
pub fn now() -> Timestamp {
    NOW.parse().unwrap()
}

/// A new, empty store: in memory, or a fresh PostgreSQL database when the run has a cluster.
pub fn store() -> Store {
    match tam_testkit::postgres::test_database() {
        Some(url) => Store::connect(&url).unwrap(),
        None => Store::open_in_memory().unwrap(),
    }
}

/// Import options with the default priority names, reading the clock at [`NOW`].
pub fn opts() -> ImportOptions {
    ImportOptions {
        priority_names: PriorityNames::default(),
        now: now(),
        future_tolerance: SignedDuration::from_mins(15),
        default_check_in_interval_days: 30,
    }
}

/// Imports `(name, format, text)` sources in order.
pub fn import(store: &mut Store, sources: &[(&str, Format, &str)]) -> ImportReport {
    let mut importer = Importer::new(store, opts());
    for (name, format, text) in sources {
        importer.read(name, Cursor::new(text.as_bytes().to_vec()), *format).unwrap();
    }
    importer.finish().unwrap()
}

/// An account record as an NDJSON line.
pub fn account(tenant: &str, id: &str, rep: &str, last_heartbeat: Option<&str>) -> String {
    let hb = last_heartbeat.map_or("null".to_owned(), |h| format!("\"{h}\""));
    format!(
        r#"{{"record":"account","tenant_id":"{tenant}","id":"{id}","name":"{id} Inc","rep_name":"Rep","rep_email":"{rep}","contacts":["ops@{id}.example"],"last_heartbeat":{hb}}}"#
    )
}

/// A ticket record as an NDJSON line.
pub fn ticket(tenant: &str, id: &str, account: &str, priority: &str, status: &str, created_at: &str) -> String {
    format!(
        r#"{{"record":"ticket","tenant_id":"{tenant}","id":"{id}","account_id":"{account}","priority":"{priority}","status":"{status}","created_at":"{created_at}","subject":"{id} subject"}}"#
    )
}
