use tam_agent::import::Format;
use tam_agent::scan::{ScanConfig, ScanReport, scan};
use tam_core::alerts::Delivery;
use tam_core::{AccountId, SignedDuration, TenantId, Timestamp};
use tam_store::Store;

use crate::{account, import, now, ticket};

fn tenant(id: &str) -> TenantId {
    TenantId::parse("t", id).unwrap()
}

fn run(store: &mut Store, t: &str, as_of: Timestamp) -> ScanReport {
    scan(store, &tenant(t), as_of, &ScanConfig::default(), false, |_| {}).unwrap()
}

fn days(n: i64) -> Timestamp {
    now().checked_add(SignedDuration::from_hours(24 * n)).unwrap()
}

/// One rep with `n` red accounts (three or four aged P1s and a silent integration: score 10)
/// plus one healthy account.
fn red_book(store: &mut Store, n: usize) {
    let mut lines = vec![account("t", "healthy", "ana@v.example", Some("2026-03-29T06:00:00Z"))];
    for i in 0..n {
        lines.push(account("t", &format!("red{i}"), "ana@v.example", Some("2026-03-20T00:00:00Z")));
        for k in 0..=(i % 2 + 2) {
            lines.push(ticket("t", &format!("T{i}-{k}"), &format!("red{i}"), "P1", "open", "2026-03-20T00:00:00Z"));
        }
    }
    let report = import(store, &[("book", Format::Ndjson, &lines.join("\n"))]);
    assert!(report.rejected.is_empty());
}

#[test]
fn rerunning_a_scan_for_the_same_instant_replaces_it() {
    let mut store = crate::store();
    red_book(&mut store, 2);
    let first = run(&mut store, "t", now());
    let second = run(&mut store, "t", now());
    let render = |r: &ScanReport| {
        format!("{:?}", r.accounts.iter().map(|a| (&a.account, &a.health, a.decision, a.delivery)).collect::<Vec<_>>())
    };
    assert_eq!(render(&first), render(&second));
    let history = store.snapshots(&tenant("t"), &AccountId::parse("a", "red0").unwrap(), 10).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(second.summary.new_escalations, 2, "a re-run decides as the first run did");
}

#[test]
fn a_dry_run_stores_nothing() {
    let mut store = crate::store();
    red_book(&mut store, 1);
    let report = scan(&mut store, &tenant("t"), now(), &ScanConfig::default(), true, |_| {}).unwrap();
    assert!(!report.stored);
    assert!(store.snapshots(&tenant("t"), &AccountId::parse("a", "red0").unwrap(), 10).unwrap().is_empty());
}

#[test]
fn episodes_do_not_realert_daily_and_the_budget_caps_individual_alerts() {
    let mut store = crate::store();
    red_book(&mut store, 7);
    let day0 = run(&mut store, "t", now());
    let individual: Vec<_> = day0.accounts.iter().filter(|a| a.delivery == Some(Delivery::Individual)).collect();
    let digest: Vec<_> = day0.accounts.iter().filter(|a| a.delivery == Some(Delivery::Digest)).collect();
    assert_eq!((individual.len(), digest.len()), (5, 2));
    // Worst first; every red account scores 10, and ties go by id.
    assert!(individual.iter().all(|a| a.health.score <= digest[0].health.score));
    assert_eq!(digest.iter().map(|a| a.account.as_str()).collect::<Vec<_>>(), ["red5", "red6"]);
    assert_eq!(day0.digests.len(), 1);
    assert_eq!(day0.digests["ana@v.example"].len(), 2);

    let day1 = run(&mut store, "t", days(1));
    assert!(day1.accounts.iter().filter(|a| a.account.as_str().starts_with("red")).all(|a| a.decision.escalated()));
    assert_eq!(day1.summary.individual_alerts + day1.summary.digest_accounts, 0, "no daily re-alert");

    let day7 = run(&mut store, "t", days(7));
    assert_eq!(day7.summary.individual_alerts, 5, "cool-down of 7 days passed");
}

#[test]
fn tenants_never_see_each_other() {
    let mut store = crate::store();
    let text = [
        account("acme", "shared-id", "a@v.example", None),
        account("globex", "shared-id", "g@v.example", None),
        ticket("acme", "T1", "shared-id", "P1", "open", "2026-03-01T00:00:00Z"),
    ]
    .join("\n");
    import(&mut store, &[("f", Format::Ndjson, &text)]);
    let acme = run(&mut store, "acme", now());
    let globex = run(&mut store, "globex", now());
    assert_eq!((acme.accounts.len(), acme.accounts[0].health.score), (1, 80));
    assert_eq!((globex.accounts.len(), globex.accounts[0].health.score), (1, 100));
}

#[test]
fn trend_compares_with_the_scan_a_week_earlier() {
    let mut store = crate::store();
    red_book(&mut store, 1);
    let week_ago = now().checked_sub(SignedDuration::from_hours(24 * 7)).unwrap();
    run(&mut store, "t", week_ago);
    let report = run(&mut store, "t", now());
    let red = report.accounts.iter().find(|a| a.account.as_str() == "red0").unwrap();
    let healthy = report.accounts.iter().find(|a| a.account.as_str() == "healthy").unwrap();
    // A week earlier the P1s were only two days old: not aged yet.
    assert_eq!((red.trend.as_str(), healthy.trend.as_str()), ("declining", "stable"));
}

#[test]
fn historical_scans_only_see_what_existed_then() {
    let mut store = crate::store();
    red_book(&mut store, 1);
    let before = run(&mut store, "t", "2026-03-19T00:00:00Z".parse().unwrap());
    assert!(
        before.accounts.iter().all(|a| a.health.deductions.is_empty()),
        "tickets and heartbeats were in the future"
    );
}

#[test]
fn a_rerun_that_no_longer_escalates_leaves_no_episode_behind() {
    let mut store = crate::store();
    red_book(&mut store, 1);
    run(&mut store, "t", now());
    let red0 = AccountId::parse("a", "red0").unwrap();
    assert_eq!(store.episodes(&tenant("t"), &red0).unwrap().len(), 1);
    // The tickets turn out to have been closed already; the scan is re-run for the same instant.
    let closed: Vec<String> =
        (0..3).map(|k| ticket("t", &format!("T0-{k}"), "red0", "P1", "closed", "2026-03-20T00:00:00Z")).collect();
    import(&mut store, &[("fix", Format::Ndjson, &closed.join("\n"))]);
    let rerun = run(&mut store, "t", now());
    assert!(rerun.accounts.iter().all(|a| !a.decision.escalated()), "only the silence is left: 70, green");
    assert!(store.episodes(&tenant("t"), &red0).unwrap().is_empty());
}

#[test]
fn an_account_with_an_unusable_rep_address_is_scored_but_not_alerted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    let mut store = Store::open(&path).unwrap();
    red_book(&mut store, 2);
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE accounts SET rep_email = 'nobody' WHERE id = 'red1'", [])
        .unwrap();
    let report = run(&mut store, "t", now());
    assert_eq!(report.accounts.len(), 3, "every account is still scored");
    let red1 = report.accounts.iter().find(|a| a.account.as_str() == "red1").unwrap();
    assert_eq!((red1.health.score, red1.delivery), (10, None));
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].to_string().starts_with("account red1: stored accounts row red1: field rep_email:"));
    assert_eq!(store.snapshots(&tenant("t"), &AccountId::parse("a", "red1").unwrap(), 5).unwrap().len(), 1);
}

/// What a scan stored, as text that two stores can be compared by: the outbox in delivery
/// order (worst account first), then the snapshots.
fn stored(store: &Store, t: &str) -> Vec<String> {
    let mut snapshots = Vec::new();
    let out: Vec<String> = store
        .outbox(&tenant(t), None)
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {} {}", r.key, r.kind, r.payload))
        .collect();
    for id in store.account_ids(&tenant(t)).unwrap() {
        let account = AccountId::parse("a", &id).unwrap();
        for s in store.snapshots(&tenant(t), &account, 10).unwrap() {
            snapshots.push(format!(
                "{id} {} {} {:?} {:?} {:?}",
                s.as_of, s.score, s.delivery, s.alert_cause, s.episode_opened_at
            ));
        }
    }
    snapshots.sort();
    out.into_iter().chain(snapshots).collect()
}

#[test]
fn a_scan_of_a_file_store_reading_beside_its_writes_stores_what_a_sequential_one_does() {
    // A database file is scanned on two connections (one reads and scores while the other
    // writes); an in-memory one cannot be opened twice and is scanned in sequence.
    let dir = tempfile::tempdir().unwrap();
    let mut file = Store::open(&dir.path().join("tam.db")).unwrap();
    let mut memory = crate::store();
    let mut cfg = ScanConfig::default();
    cfg.escalation.alert_budget_per_rep = 2;
    for store in [&mut file, &mut memory] {
        red_book(store, 30);
        let mut reports = Vec::new();
        for day in [0, 1, 8] {
            reports.push(scan(store, &tenant("t"), days(day), &cfg, false, |_| {}).unwrap());
        }
        assert_eq!(reports[0].summary.digest_accounts, 28, "{:?}", reports[0].summary);
        assert!(reports[2].summary.individual_alerts > 0, "a cool-down reminder: {:?}", reports[2].summary);
    }
    assert_eq!(stored(&file, "t"), stored(&memory, "t"));
    assert!(stored(&file, "t").iter().any(|l| l.contains("Some(Digest)")), "the digest's accounts were told");
}
