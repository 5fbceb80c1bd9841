//! Integration tests of the store on real database files, and of what replicas sharing one
//! database rely on: on PostgreSQL when the run has a cluster (`TAM_TEST_POSTGRES`).

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

use rusqlite::Connection;
use tam_core::records::{Account, Rep, Ticket, TicketSource};
use tam_core::{AccountId, Email, Priority, TenantId, TicketId, TicketStatus, Timestamp};
use tam_store::{Store, StoreError};

fn tenant() -> TenantId {
    TenantId::parse("t", "t").unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn seed(store: &mut Store) {
    let w = store.writer().unwrap();
    w.ensure_tenant(&tenant(), at("2026-03-01T00:00:00Z")).unwrap();
    for id in ["a1", "a2"] {
        w.upsert_account(&Account {
            tenant: tenant(),
            id: AccountId::parse("id", id).unwrap(),
            name: id.to_uppercase(),
            rep: Rep { name: "Rep".into(), email: Email::parse("e", "rep@v.example").unwrap(), chat_space: None },
            contacts: vec![],
            cc: vec![],
            last_heartbeat: None,
            api_call_count: None,
            check_in_interval_days: 30,
        })
        .unwrap();
        w.upsert_ticket(&Ticket {
            tenant: tenant(),
            id: TicketId::parse("id", &format!("{id}-T")).unwrap(),
            account: AccountId::parse("id", id).unwrap(),
            source: TicketSource::Import,
            priority: Priority::P1,
            status: TicketStatus::Open,
            created_at: at("2026-03-01T00:00:00Z"),
            updated_at: None,
            resolved_at: None,
            subject: "s".into(),
            kind: None,
        })
        .unwrap();
    }
    w.commit().unwrap();
}

#[test]
fn migrations_run_once_and_reopening_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    let v1 = Store::open(&path).unwrap().schema_version().unwrap();
    let v2 = Store::open(&path).unwrap().schema_version().unwrap();
    let latest = tam_store::SCHEMA_VERSION as i64;
    assert_eq!((v1, v2), (latest, latest));
    assert!(latest >= 4);
}

#[test]
fn a_database_from_a_newer_tam_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    Store::open(&path).unwrap();
    Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = Store::open(&path).err().unwrap();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
}

/// A seeded store in a file, with `corruption` applied by plain SQL behind the store's back.
fn corrupted(corruption: &str) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    let mut store = Store::open(&path).unwrap();
    seed(&mut store);
    Connection::open(&path).unwrap().execute(corruption, []).unwrap();
    (dir, store)
}

/// Walks the scan inputs of `tenant`: one line per account.
fn walk(store: &Store, tenant: &TenantId) -> Vec<String> {
    let mut seen = Vec::new();
    let window = tam_store::ScanWindow {
        trend: (at("2026-03-01T00:00:00Z"), at("2026-03-02T00:00:00Z")),
        reminders_from: at("2026-03-22T00:00:00Z"),
    };
    store
        .for_each_scan_input(tenant, at("2026-03-29T00:00:00Z"), window, |input| {
            seen.push(match input {
                Ok(i) => format!("ok {} {} tickets", i.account, i.signals.tickets.len()),
                Err(e) => format!("err {e}"),
            })
        })
        .unwrap();
    seen
}

#[test]
fn a_corrupt_row_fails_its_account_only() {
    let (_dir, store) = corrupted("UPDATE tickets SET priority = 9 WHERE id = 'a1-T'");
    assert_eq!(
        walk(&store, &tenant()),
        ["err account a1: stored tickets row a1-T: field priority: 9 is not 1..=4", "ok a2 1 tickets"]
    );
}

#[test]
fn a_ticket_row_of_the_wrong_type_fails_its_account_only() {
    // Text where an integer belongs: reading the column fails, and that must fail the account,
    // not the walk.
    let (_dir, store) = corrupted("UPDATE tickets SET priority = 'high' WHERE id = 'a2-T'");
    let seen = walk(&store, &tenant());
    assert_eq!(seen[0], "ok a1 1 tickets");
    assert!(seen[1].starts_with("err account a2: stored tickets row a2-T: field priority:"), "{}", seen[1]);
}

#[test]
fn a_file_that_is_not_a_database_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    std::fs::write(&path, "this is not sqlite, but it is long enough to look like a header of a file").unwrap();
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.starts_with(&format!("cannot open database {}", path.display())), "{err}");
}

/// A store several connections can open: a fresh PostgreSQL database when the run has a
/// cluster, else a SQLite file.
fn shared() -> (tempfile::TempDir, tam_store::Location) {
    let dir = tempfile::tempdir().unwrap();
    let location = match tam_testkit::postgres::test_database() {
        Some(url) => tam_store::Location::Postgres(url),
        None => tam_store::Location::File(dir.path().join("tam.db")),
    };
    (dir, location)
}

fn events(n: usize) -> Vec<tam_store::NewEffect> {
    use tam_core::outbox::{EffectKind, IdemKey};
    (0..n)
        .map(|i| tam_store::NewEffect {
            key: IdemKey::from_stored(format!("event:e{i:04}")),
            kind: EffectKind::Event,
            account: None,
            payload: "{}".to_owned(),
        })
        .collect()
}

#[test]
fn a_worker_whose_lease_ran_out_cannot_finish_a_row_another_worker_took_over() {
    use tam_store::{Claim, Finish, OutboxState};
    let (_dir, location) = shared();
    let mut store = Store::open_at(&location).unwrap();
    let t0 = at("2026-03-29T07:00:00Z");
    store.enqueue(&tenant(), t0, &events(1)).unwrap();
    let lease = tam_core::SignedDuration::from_secs(60);
    let claim = Claim { drafts: 1, others: 10 };
    let first = store.claim_due(&tenant(), t0, "worker-a", lease, claim).unwrap();
    assert_eq!(first.len(), 1);
    let within = t0.checked_add(tam_core::SignedDuration::from_secs(30)).unwrap();
    assert!(store.claim_due(&tenant(), within, "worker-b", lease, claim).unwrap().is_empty(), "leased to a");
    // Worker a stalls past its lease; b takes the row over.
    let after = t0.checked_add(tam_core::SignedDuration::from_secs(61)).unwrap();
    let second = store.claim_due(&tenant(), after, "worker-b", lease, claim).unwrap();
    assert_eq!((second.len(), second[0].attempts), (1, 2), "the attempt count is the fencing token");
    let delivered = |receipt: &str| Finish::Delivered { receipt: receipt.to_owned() };
    let late = delivered("from a");
    assert_eq!(store.finish_batch("worker-a", after, [(&first[0], &late)]).unwrap(), 1, "a's result is refused");
    let on_time = delivered("from b");
    assert_eq!(store.finish_batch("worker-b", after, [(&second[0], &on_time)]).unwrap(), 0);
    let row = store.outbox(&tenant(), None).unwrap().remove(0);
    assert_eq!((row.state, row.receipt.as_deref()), (OutboxState::Delivered, Some("from b")));
    let attempts = store.attempts(row.id).unwrap();
    assert_eq!(attempts.iter().map(|a| a.outcome.as_str()).collect::<Vec<_>>(), ["delivered"]);
}

#[test]
fn workers_claiming_at_once_never_take_the_same_row() {
    use tam_store::{Claim, Finish};
    let (_dir, location) = shared();
    let now = at("2026-03-29T07:00:00Z");
    Store::open_at(&location).unwrap().enqueue(&tenant(), now, &events(600)).unwrap();
    let lease = tam_core::SignedDuration::from_secs(600);
    let taken: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..3)
            .map(|w| {
                let location = location.clone();
                scope.spawn(move || {
                    let mut store = Store::open_at(&location).unwrap();
                    let worker = format!("worker-{w}");
                    let mut mine = Vec::new();
                    loop {
                        let rows =
                            store.claim_due(&tenant(), now, &worker, lease, Claim { drafts: 1, others: 16 }).unwrap();
                        if rows.is_empty() {
                            return mine;
                        }
                        let done = Finish::Delivered { receipt: worker.clone() };
                        assert_eq!(store.finish_batch(&worker, now, rows.iter().map(|r| (r, &done))).unwrap(), 0);
                        mine.extend(rows.iter().map(|r| r.id));
                    }
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = taken.iter().flatten().copied().collect();
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!(
        (claimed, all.len()),
        (600, 600),
        "every row once: {:?}",
        taken.iter().map(Vec::len).collect::<Vec<_>>()
    );
}

#[test]
fn scan_inputs_are_scoped_to_the_tenant() {
    let mut store = Store::open_in_memory().unwrap();
    seed(&mut store);
    assert!(walk(&store, &TenantId::parse("t", "other").unwrap()).is_empty());
    assert_eq!(walk(&store, &tenant()).len(), 2);
}

#[test]
fn a_job_claimed_once_and_left_running_is_failed_after_the_lease() {
    let mut store = Store::open_in_memory().unwrap();
    let tenant = TenantId::parse("t", "acme").unwrap();
    let slot = at("2026-03-29T05:00:00Z");
    assert!(store.claim_job(&tenant, "scan", slot, "w1", slot).unwrap());
    assert!(!store.claim_job(&tenant, "scan", slot, "w2", slot).unwrap(), "one claim per slot");
    let hours = |h| tam_core::SignedDuration::from_hours(h);
    assert_eq!(store.fail_stale_jobs(slot.checked_add(hours(1)).unwrap(), hours(12)).unwrap(), 0);
    assert_eq!(store.fail_stale_jobs(slot.checked_add(hours(13)).unwrap(), hours(12)).unwrap(), 1);
    let runs = store.job_runs(Some(&tenant), 10).unwrap();
    assert_eq!((runs[0].outcome.as_str(), runs[0].detail.is_some()), ("failed", true));
    assert_eq!(store.last_job_slot(&tenant, "scan").unwrap(), Some(slot), "handled, and visible as failed");
}

#[test]
fn a_run_whose_worker_stops_renewing_is_taken_over_and_the_late_worker_cannot_finish_it() {
    let mut store = Store::open_in_memory().unwrap();
    let tenant = TenantId::parse("t", "acme").unwrap();
    let slot = at("2026-03-29T07:00:00Z");
    let secs = |s| tam_core::SignedDuration::from_secs(s);
    let later = |s| slot.checked_add(secs(s)).unwrap();
    let lease = secs(90);
    assert!(store.claim_job(&tenant, "scan", slot, "host-a:1", slot).unwrap());
    // A long run that keeps renewing keeps its slot.
    assert!(store.renew_job(&tenant, "scan", slot, "host-a:1", later(60)).unwrap());
    assert!(store.release_stalled_runs(later(120), lease).unwrap().is_empty(), "renewed at 60 s");
    // Its machine goes away: nothing renews it, and after the lease another replica takes it.
    let taken = store.release_stalled_runs(later(151), lease).unwrap();
    assert_eq!(taken, [("acme".to_owned(), "scan".to_owned(), "host-a:1".to_owned())]);
    assert_eq!(store.last_job_slot(&tenant, "scan").unwrap(), None, "the slot is free to run again");
    assert!(store.claim_job(&tenant, "scan", slot, "host-b:7", later(152)).unwrap());
    // The first worker wakes up: it can neither renew nor finish the run it lost.
    assert!(!store.renew_job(&tenant, "scan", slot, "host-a:1", later(153)).unwrap());
    assert!(!store.finish_job(&tenant, "scan", slot, "host-a:1", false, "late", later(154)).unwrap());
    store.release_job(&tenant, "scan", slot, "host-a:1").unwrap();
    assert!(store.finish_job(&tenant, "scan", slot, "host-b:7", true, "done", later(200)).unwrap());
    let runs = store.job_runs(Some(&tenant), 10).unwrap();
    assert_eq!((runs.len(), runs[0].outcome.as_str(), runs[0].detail.as_deref()), (1, "ok", Some("done")));
    assert!(store.release_stalled_runs(later(10_000), lease).unwrap().is_empty(), "finished runs stay");
}
