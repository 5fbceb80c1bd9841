//! Every statement the dispatcher and the embedded channels run to deliver a scan's effects is
//! served by an index: delivering one effect must cost the same whatever the size of the book.
//! The statements are the ones really run (recorded by `tam_store::trace`), each checked with
//! `EXPLAIN QUERY PLAN`.

use std::io::Cursor;

use tam_agent::dispatch::{Channels, dispatch};
use tam_agent::import::{Format, ImportOptions, Importer};
use tam_agent::scan::{ScanConfig, scan};
use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalMailbox, LocalProfiles, NotificationLog};
use tam_core::outbox::DeliveryPolicy;
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
    "draft_fates",
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

/// The embedded channels, on the store's file and a directory beside it.
struct Embedded {
    mailbox: LocalMailbox,
    email: NotificationLog,
    chat: NotificationLog,
    events: LocalEventBus,
    crm: LocalCrm,
    profiles: LocalProfiles,
    writer: TemplateWriter,
}

impl Embedded {
    fn open(db: &std::path::Path, dir: &std::path::Path) -> Embedded {
        let file = tam_store::Location::File(db.to_owned());
        Embedded {
            mailbox: LocalMailbox::open(&file, dir).unwrap(),
            email: NotificationLog::open(&file, dir, "email").unwrap(),
            chat: NotificationLog::open(&file, dir, "chat").unwrap(),
            events: LocalEventBus::open(&file).unwrap(),
            crm: LocalCrm::open(&file).unwrap(),
            profiles: LocalProfiles::new(dir),
            writer: TemplateWriter::new(),
        }
    }

    /// Delivers what is due at `now` through these channels.
    fn deliver(&mut self, store: &mut Store, tenant: &TenantId, now: Timestamp) -> tam_agent::dispatch::DispatchReport {
        let mut channels = Channels {
            mailbox: &mut self.mailbox,
            alerts: &mut self.email,
            chat: &mut self.chat,
            events: &mut self.events,
            crm: &mut self.crm,
            profiles: &mut self.profiles,
            writer: &self.writer,
            feedback: None,
        };
        dispatch(store, tenant, &mut channels, now, &DeliveryPolicy::default(), "w").unwrap()
    }
}

/// Each line of the plans of `statements` (checked against the store at `db`) that walks a big
/// table, with the statement it belongs to.
fn walks<'a>(db: &std::path::Path, statements: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let check = rusqlite::Connection::open(db).unwrap();
    let mut problems = Vec::new();
    for sql in statements {
        for line in tam_store::trace::unindexed_reads(&check, sql, BIG_TABLES).unwrap() {
            problems.push(format!("{line}\n    in: {}", sql.split_whitespace().collect::<Vec<_>>().join(" ")));
        }
    }
    problems
}

#[test]
fn every_statement_of_a_delivery_is_served_by_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    let mut store = Store::open(&db).unwrap();
    book(&mut store);
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    let mut embedded = Embedded::open(&db, dir.path());
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
        tam_store::trace::start();
        let d = embedded.deliver(&mut store, &tenant, at(day));
        statements.extend(tam_store::trace::stop());
        assert_eq!((d.failed, d.retried), (0, 0), "{d:?}");
        delivered += d.delivered;
    }
    assert!(delivered > 100, "a real delivery was checked ({delivered} effects)");

    let queries: Vec<&String> = statements
        .iter()
        .filter(|sql| {
            let verb = sql.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
            ["SELECT", "UPDATE", "DELETE", "INSERT", "WITH"].contains(&verb.as_str())
        })
        .collect();
    let checked = queries.len();
    let problems = walks(&db, queries);
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

/// What the dashboard's "Today" page reads: the worklist a page at a time, and per shown row
/// its scores and waiting draft. Each is served by an index (the page costs the same on any
/// book), and the worklist keeps its order and its filters.
#[test]
fn the_dashboards_worklist_reads_by_index_in_its_order_and_by_its_filters() {
    use tam_store::WorkFilter;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    let mut store = Store::open(&db).unwrap();
    book(&mut store);
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    for day in [0, 1, 8] {
        scan(&mut store, &tenant, at(day), &ScanConfig::default(), false, |_| {}).unwrap();
    }
    let latest = store.latest_scan(&tenant).unwrap().unwrap();
    assert_eq!(latest.as_of, at(8));
    let summary = &latest.summary;
    assert!(summary.reasons.as_ref().and_then(|r| r.get("aged_p1_p2")).is_some_and(|n| *n > 0), "{summary:?}");
    let alerts = summary.alerts_by_rep.as_ref().unwrap();
    let by_rep = |f: fn(&tam_store::RepAlertCount) -> u64| alerts.values().map(f).sum::<u64>();
    assert_eq!((by_rep(|n| n.individual), by_rep(|n| n.digest)), (summary.individual_alerts, summary.digest_accounts));

    tam_store::trace::start();
    let (all, total) = store.worklist(&tenant, latest.as_of, &WorkFilter::default(), 0, 1000).unwrap();
    let (page, _) = store.worklist(&tenant, latest.as_of, &WorkFilter::default(), 5, 5).unwrap();
    let filters = [
        WorkFilter { rep: Some("ANA@vendor.example".into()), ..WorkFilter::default() },
        WorkFilter { status: Some("red".into()), ..WorkFilter::default() },
        WorkFilter { rule: Some("heartbeat_silence".into()), ..WorkFilter::default() },
        WorkFilter { escalated: Some(true), ..WorkFilter::default() },
        WorkFilter { search: Some("ACCT-01".into()), ..WorkFilter::default() },
        WorkFilter { search: Some("acct-012 i".into()), ..WorkFilter::default() },
    ];
    let filtered: Vec<Vec<tam_store::WorkRow>> =
        filters.iter().map(|f| store.worklist(&tenant, latest.as_of, f, 0, 1000).unwrap().0).collect();
    for row in &all {
        store.recent_scores(&tenant, &row.account_id, latest.as_of, 10).unwrap();
        store.account_effects(&tenant, &row.account_id, 40).unwrap();
        if let Some(opened) = row.episode_opened_at {
            store.waiting_draft(&tenant, &row.account_id, opened).unwrap();
        }
    }
    let statements = tam_store::trace::stop();

    assert!(total > 5 && total as usize == all.len(), "{total} rows");
    let key = |r: &tam_store::WorkRow| (r.bucket, r.score, r.account_id.clone());
    assert!(all.windows(2).all(|w| key(&w[0]) <= key(&w[1])), "escalations, then episodes, then amber declining");
    assert_eq!(page, all[5..10], "a page is a slice of the whole");
    assert!(all.iter().all(|r| r.trigger.is_some()
        || r.episode_opened_at.is_some()
        || (r.status == "amber" && r.trend == "declining")));
    let [by_rep, red, silent, escalated, search, by_name] = &filtered[..] else { unreachable!() };
    assert!(!by_rep.is_empty() && by_rep.iter().all(|r| r.rep_email == "ana@vendor.example"), "any case");
    assert!(!red.is_empty() && red.iter().all(|r| r.status == "red"));
    assert!(
        !silent.is_empty()
            && silent.iter().all(|r| r.deductions.iter().any(|d| d.rule.as_str() == "heartbeat_silence"))
    );
    assert!(!escalated.is_empty() && escalated.iter().all(|r| r.episode_opened_at.is_some()));
    assert!(!search.is_empty() && search.iter().all(|r| r.account_id.starts_with("acct-01")), "{search:?}");
    let on_list: Vec<&str> = all.iter().map(|r| r.account_id.as_str()).filter(|id| id.starts_with("acct-01")).collect();
    assert_eq!(
        search.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>(),
        on_list,
        "the worklist's, in its order"
    );
    assert!(by_name.iter().all(|r| r.name == "acct-012 Inc"), "a name's start, any case: {by_name:?}");
    // A search reads its few accounts, then their snapshots: its order is sorted, not read.
    let searched = |s: &&String| s.contains("WITH found");
    assert!(all.iter().all(|r| r.deductions.windows(2).all(|w| w[0].points >= w[1].points)), "largest reason first");

    let problems = walks(&db, statements.iter().filter(|s| s.trim_start().to_ascii_uppercase().starts_with("SELECT")));
    let check = rusqlite::Connection::open(&db).unwrap();
    assert!(statements.len() >= 5, "{statements:#?}");
    assert!(problems.is_empty(), "statements that walk a table:\n{}", problems.join("\n"));
    // A page of the worklist is read in the index's order and stops: nothing sorts the book.
    let pages: Vec<&String> = statements.iter().filter(|s| s.contains("ORDER BY (CASE") && !searched(s)).collect();
    assert!(pages.len() >= 5, "{pages:#?}");
    for sql in pages {
        let mut stmt = check.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
        let plan: Vec<String> =
            stmt.query_map(rusqlite::params_from_iter(nulls), |r| r.get(3)).unwrap().map(Result::unwrap).collect();
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}\n    in: {sql}");
    }
}

/// What an MCP client (and `tam explain`, `tam profile show`, `tam tickets`, `tam drafts list
/// --account`) reads of one account, and a page of the resource list: each served by an
/// index, so one account's answer costs the same on any book.
#[test]
fn an_accounts_reads_are_served_by_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    let mut store = Store::open(&db).unwrap();
    book(&mut store);
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    let mut embedded = Embedded::open(&db, dir.path());
    for day in [0, 8] {
        scan(&mut store, &tenant, at(day), &ScanConfig::default(), false, |_| {}).unwrap();
        embedded.deliver(&mut store, &tenant, at(day));
    }

    tam_store::trace::start();
    let mut drafted = 0;
    for id in ["acct-004", "acct-009", "acct-014"] {
        let account = tam_core::AccountId::parse("id", id).unwrap();
        assert!(store.account(&tenant, &account).unwrap().is_some());
        assert_eq!(store.snapshots(&tenant, &account, 30).unwrap().len(), 2);
        store.episodes(&tenant, &account).unwrap();
        assert_eq!(store.open_tickets(&tenant, &account).unwrap().len(), 4);
        store.facts(&tenant, &account).unwrap();
        store.fact_changes(&tenant, &account).unwrap();
        store.opportunities(&tenant, &account).unwrap();
        let drafts = store.drafts_where(&tenant, Some(&account), None, Some(100)).unwrap();
        assert!(drafts.iter().all(|d| d.account_id == id));
        drafted += drafts.len();
        let kind = store.drafts_where(&tenant, Some(&account), Some("health_checkin"), None).unwrap();
        assert!(kind.is_empty(), "{kind:?}");
    }
    let first = store.account_page(&tenant, None, 25).unwrap();
    let next = store.account_page(&tenant, first.last().map(|(id, _)| id.as_str()), 25).unwrap();
    let statements = tam_store::trace::stop();
    assert!(drafted >= 3, "the escalated accounts have their outreach drafted ({drafted})");
    assert_eq!((first.len(), next.len(), next[0].0.as_str()), (25, 25, "acct-025"), "pages follow each other");

    let problems = walks(&db, &statements);
    assert!(statements.len() >= 9, "{statements:#?}");
    assert!(problems.is_empty(), "statements that walk a table:\n{}", problems.join("\n"));
}

/// Watching drafts (`tam drafts sync`, hourly): a page of the watched ones, each settled by
/// its key, and the report's counts, each served by an index.
#[test]
fn watching_drafts_reads_pages_and_settles_each_by_an_index() {
    use tam_core::fate::{Decision, Fate};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tam.db");
    let mut store = Store::open(&db).unwrap();
    book(&mut store);
    let tenant = TenantId::parse("tenant", "acme").unwrap();
    let rep = tam_core::Email::parse("rep", "ana@vendor.example").unwrap();
    let saved: Vec<tam_store::SavedDraft> = (0..30)
        .map(|i| tam_store::SavedDraft {
            tenant: tenant.clone(),
            key: format!("draft:acct-{i:03}/health_checkin:x"),
            account: format!("acct-{i:03}"),
            kind: "health_checkin".into(),
            generator: "template".into(),
            rep: rep.clone(),
            recipients: vec![tam_core::Email::parse("to", "ops@x.example").unwrap()],
            mailbox: "gmail".into(),
            receipt: format!("https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-{i})"),
            message_id: format!("<d{i}@tam.local>"),
            created_at: at(i / 3),
            text: "Hello team".into(),
            html_text: "Hello team".into(),
            fate: Fate::Draft,
        })
        .collect();
    store.record_saved_drafts(&saved).unwrap();

    tam_store::trace::start();
    let now = at(12);
    let first = store.watched_drafts(&tenant, now, None, 20).unwrap();
    let last = first.last().unwrap();
    let next = store.watched_drafts(&tenant, now, Some((last.draft.created_at, last.key.as_str())), 20).unwrap();
    let sent = Decision { fate: Fate::Sent, changed: Some(0.0), thread: Some("t".into()), note: None };
    store.settle_fates(&tenant, &[(first[0].key.clone(), sent)], now).unwrap();
    let counts = store.fate_counts(&tenant, at(0)).unwrap();
    let statements = tam_store::trace::stop();
    assert_eq!((first.len(), next.len()), (20, 10), "pages follow each other");
    assert_eq!(counts.iter().map(|c| (c.fate, c.drafts)).collect::<Vec<_>>(), [(Fate::Draft, 29), (Fate::Sent, 1)]);
    assert_ne!(
        store.watched_drafts(&tenant, now, None, 1).unwrap()[0].key,
        first[0].key,
        "a sent draft is no longer watched"
    );

    let problems = walks(&db, &statements);
    assert!(problems.is_empty(), "statements that walk a table:\n{}", problems.join("\n"));
}
