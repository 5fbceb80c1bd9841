//! Every statement the dispatcher and the embedded channels run to deliver a scan's effects is
//! served by an index: delivering one effect must cost the same whatever the size of the book.
//! The statements are the ones really run (recorded by `tam_store::trace`), each checked with
//! `EXPLAIN QUERY PLAN`.

use std::io::Cursor;

use tam_agent::dispatch::{Channels, dispatch};
use tam_agent::import::{Format, ImportOptions, Importer};
use tam_agent::scan::{ScanConfig, scan};
use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalMailbox, LocalProfiles, NotificationLog};
use tam_core::outbox::RetryPolicy;
use tam_core::{PriorityNames, SignedDuration, TenantId, Timestamp};
use tam_store::Store;
use tam_writer::TemplateWriter;

/// Tables whose rows grow with the book: a per-effect statement never walks them.
const BIG_TABLES: &[&str] = &[
    "tickets",
    "snapshots",
    "heartbeats",
    "outbox",
    "outbox_attempts",
    "accounts",
    "drafts",
    "events",
    "notifications",
];

fn at(day: i64) -> Timestamp {
    let start: Timestamp = "2026-03-01T07:00:00Z".parse().unwrap();
    start.checked_add(SignedDuration::from_hours(24 * day)).unwrap()
}

/// Accounts of two reps, some red (aged P1s, silent), some amber, the rest green; tickets that
/// age over the days so later scans worsen episodes and remind.
fn book(store: &mut Store) {
    let mut lines = Vec::new();
    for i in 0..60 {
        let id = format!("acct-{i:03}");
        let rep = if i % 2 == 0 { "ana@vendor.example" } else { "bo@vendor.example" };
        lines.push(format!(
            r#"{{"record":"account","tenant_id":"acme","id":"{id}","name":"{id} Inc","rep_name":"Rep","rep_email":"{rep}","rep_chat_space":"spaces/A","contacts":["ops@{id}.example"],"cc_contacts":["cto@{id}.example"],"last_heartbeat":"2026-02-26T00:00:00Z"}}"#
        ));
        for k in 0..(i % 5) {
            let priority = if k < 3 { "P1" } else { "P3" };
            lines.push(format!(
                r#"{{"record":"ticket","tenant_id":"acme","id":"{id}-T{k}","account_id":"{id}","priority":"{priority}","status":"open","created_at":"2026-02-2{k}T00:00:00Z","subject":"Sync fails {k}","kind":"bug"}}"#
            ));
        }
    }
    let opts = ImportOptions {
        priority_names: PriorityNames::default(),
        now: at(0),
        future_tolerance: SignedDuration::from_mins(15),
        default_check_in_interval_days: 30,
    };
    let mut importer = Importer::new(store, opts);
    importer.read("book", Cursor::new(lines.join("\n").into_bytes()), Format::Ndjson).unwrap();
    let report = importer.finish().unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

#[test]
fn every_statement_of_a_delivery_is_served_by_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    let mut store = Store::open(&db).unwrap();
    book(&mut store);
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    let mut mailbox = LocalMailbox::open(&db, dir.path()).unwrap();
    let mut email = NotificationLog::open(&db, dir.path(), "email").unwrap();
    let mut chat = NotificationLog::open(&db, dir.path(), "chat").unwrap();
    let mut events = LocalEventBus::open(&db).unwrap();
    let mut crm = LocalCrm::open(&db).unwrap();
    let mut profiles = LocalProfiles::new(dir.path());
    let writer = TemplateWriter::new();
    // A small alert budget, so digests are planned too; scans a week apart, so episodes worsen
    // (follow-up drafts reply to the first) and cool-downs remind.
    let mut cfg = ScanConfig::default();
    cfg.escalation.alert_budget_per_rep = 2;
    cfg.escalation.digest_top_accounts = 3;

    let mut delivered = 0;
    let mut statements = std::collections::BTreeSet::new();
    for day in [0, 1, 8, 16] {
        // Only the delivery is checked: the scan itself walks the whole book on purpose.
        let report = scan(&mut store, &tenant, at(day), &cfg, false, |_| {}).unwrap();
        assert!(report.failed.is_empty());
        let mut channels = Channels {
            mailbox: &mut mailbox,
            alerts: &mut email,
            chat: &mut chat,
            events: &mut events,
            crm: &mut crm,
            profiles: &mut profiles,
            writer: &writer,
        };
        tam_store::trace::start();
        let d = dispatch(&mut store, &tenant, &mut channels, at(day), &RetryPolicy::default(), "w").unwrap();
        statements.extend(tam_store::trace::stop());
        assert_eq!((d.failed, d.retried), (0, 0), "{d:?}");
        delivered += d.delivered;
    }
    assert!(delivered > 100, "a real delivery was checked ({delivered} effects)");

    let check = rusqlite::Connection::open(&db).unwrap();
    let mut checked = 0;
    let mut problems = Vec::new();
    for sql in &statements {
        let verb = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        if !["SELECT", "UPDATE", "DELETE", "INSERT", "WITH"].contains(&verb.as_str()) {
            continue;
        }
        checked += 1;
        for line in tam_store::trace::unindexed_reads(&check, sql, BIG_TABLES).unwrap() {
            problems.push(format!("{line}\n    in: {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    assert!(checked >= 15, "the delivery's statements were recorded: {statements:#?}");
    assert!(problems.is_empty(), "statements that walk a table:\n{}", problems.join("\n"));
}

#[test]
fn the_guard_sees_a_walk_of_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    drop(Store::open(&db).unwrap());
    let check = rusqlite::Connection::open(&db).unwrap();
    let walks = |sql: &str| tam_store::trace::unindexed_reads(&check, sql, BIG_TABLES).unwrap();
    assert_eq!(walks("SELECT subject FROM tickets WHERE subject = ?1").len(), 1);
    assert_eq!(walks("SELECT o.id FROM outbox o WHERE o.payload = ?1").len(), 1, "aliases are resolved");
    assert_eq!(walks("SELECT id FROM outbox WHERE tenant_id = ?1 AND receipt = ?2").len(), 1, "one tenant's rows");
    assert!(walks("SELECT created_at FROM tickets WHERE tenant_id = ?1 AND account_id = ?2").is_empty());
    assert!(walks("SELECT id FROM outbox WHERE tenant_id = ?1 AND idem_key = ?2").is_empty());
}
