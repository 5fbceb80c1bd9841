//! The generic ticket pull, over a source and a sink that are not Jira, Kayako or Notion: what
//! it asks for, where the records go, and when its watermark moves.

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

use std::cell::{Cell, RefCell};

use anyhow::Result;
use serde_json::{Value, json};
use tam_agent::import::ImportOptions;
use tam_app::sync::{Fetched, IntoStore, Put, TicketSink, TicketSource, pull_tickets};
use tam_core::{PriorityNames, SignedDuration, TenantId, Timestamp};
use tam_store::Store;

fn at(t: &str) -> Timestamp {
    t.parse().unwrap()
}

fn import(now: Timestamp) -> ImportOptions {
    ImportOptions {
        priority_names: PriorityNames::default(),
        now,
        future_tolerance: SignedDuration::from_mins(5),
        default_check_in_interval_days: 30,
    }
}

fn ticket(id: &str, subject: &str) -> Value {
    json!({"record": "ticket", "tenant_id": "t", "id": id, "account_id": "acme", "priority": "P2",
           "status": "open", "created_at": "2026-03-01T00:00:00Z", "subject": subject})
}

/// A helpdesk that answers from a script and remembers what it was asked.
struct Scripted {
    tenant: TenantId,
    answers: RefCell<Vec<Result<Fetched>>>,
    asked: RefCell<Vec<Option<Timestamp>>>,
    calls: Cell<u64>,
}

impl TicketSource for Scripted {
    fn name(&self) -> &'static str {
        "desk"
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn overlap(&self) -> SignedDuration {
        SignedDuration::from_mins(1)
    }
    fn fetch(&self, since: Option<Timestamp>) -> Result<Fetched> {
        self.asked.borrow_mut().push(since);
        self.calls.set(self.calls.get() + 1);
        self.answers.borrow_mut().remove(0)
    }
    fn calls(&self) -> u64 {
        self.calls.get()
    }
}

/// A sink that keeps what it is given, as a tenant kept outside the store would.
#[derive(Default)]
struct Kept(RefCell<Vec<Value>>);

impl TicketSink for Kept {
    fn put(&self, _: &mut Store, _: &TenantId, _: &'static str, records: &[Value], _: ImportOptions) -> Result<Put> {
        self.0.borrow_mut().extend_from_slice(records);
        Ok(Put { inserted: records.len() as u64, calls: 1, ..Put::default() })
    }
}

fn store_with_acme() -> Store {
    let mut store = Store::open_in_memory().unwrap();
    let account = json!({"record": "account", "tenant_id": "t", "id": "acme", "name": "Acme", "rep_name": "Rep",
                         "rep_email": "rep@v.example", "contacts": ["ops@acme.example"]});
    let mut importer = tam_agent::import::Importer::new(&mut store, import(at("2026-03-29T00:00:00Z")));
    importer.push("book", [account]).unwrap();
    importer.finish().unwrap();
    store
}

#[test]
fn a_pull_asks_from_the_last_watermark_less_the_overlap_and_moves_it_only_on_success() {
    let mut store = store_with_acme();
    let tenant = TenantId::parse("t", "t").unwrap();
    let source = Scripted {
        tenant: tenant.clone(),
        answers: RefCell::new(vec![
            Ok(Fetched {
                records: vec![ticket("D-1", "first"), json!({"record": "ticket", "tenant_id": "t", "id": "D-2"})],
                skipped: vec!["desk: D-3: no account".into()],
                fetched: 3,
                query: "all".into(),
                ..Fetched::default()
            }),
            Err(anyhow::anyhow!("the desk is down")),
            Ok(Fetched {
                records: vec![ticket("D-1", "first, again"), ticket("D-9", "renamed")],
                fetched: 2,
                renames: vec![("OLD-9".into(), "D-9".into())],
                ..Fetched::default()
            }),
        ]),
        asked: RefCell::default(),
        calls: Cell::new(0),
    };

    let first = pull_tickets(&mut store, &source, &IntoStore, None, import(at("2026-03-29T10:00:00Z"))).unwrap();
    assert_eq!((first.fetched, first.inserted, first.updated), (3, 1, 0));
    assert_eq!(first.rejected.len(), 2, "the skipped ticket and the rejected record: {:?}", first.rejected);
    assert!(first.rejected[0].starts_with("desk: D-3"), "{:?}", first.rejected);
    assert!(first.rejected[1].contains("D-2"), "the importer names the record: {:?}", first.rejected);
    assert_eq!(store.sync_watermark(&tenant, "desk").unwrap(), Some(at("2026-03-29T10:00:00Z")));

    let failed = pull_tickets(&mut store, &source, &IntoStore, None, import(at("2026-03-29T11:00:00Z")));
    assert!(failed.unwrap_err().to_string().contains("the desk is down"));
    assert_eq!(store.sync_watermark(&tenant, "desk").unwrap(), Some(at("2026-03-29T10:00:00Z")), "unmoved");

    let third = pull_tickets(&mut store, &source, &IntoStore, None, import(at("2026-03-29T12:00:00Z"))).unwrap();
    assert_eq!((third.inserted, third.updated), (1, 1));
    assert_eq!(third.calls, 3);
    let asked = source.asked.borrow().clone();
    assert_eq!(asked, [None, Some(at("2026-03-29T09:59:00Z")), Some(at("2026-03-29T09:59:00Z"))]);
    assert_eq!(store.sync_watermark(&tenant, "desk").unwrap(), Some(at("2026-03-29T12:00:00Z")));
}

#[test]
fn a_pull_into_another_sink_leaves_the_store_to_it() {
    let mut store = store_with_acme();
    let tenant = TenantId::parse("t", "t").unwrap();
    let source = Scripted {
        tenant: tenant.clone(),
        answers: RefCell::new(vec![Ok(Fetched {
            records: vec![ticket("D-1", "one")],
            fetched: 1,
            ..Fetched::default()
        })]),
        asked: RefCell::default(),
        calls: Cell::new(0),
    };
    let sink = Kept::default();
    let since = Some(at("2026-03-01T00:00:00Z"));
    let sync = pull_tickets(&mut store, &source, &sink, since, import(at("2026-03-29T10:00:00Z"))).unwrap();
    assert_eq!((sync.inserted, sync.notion_calls), (1, 1));
    assert_eq!(source.asked.borrow()[0], since, "an explicit instant is asked as given");
    assert_eq!(sink.0.borrow().len(), 1);
    assert!(store.known_tickets(&tenant, ["D-1"]).unwrap().is_empty(), "the sink, not the store, took it");
}
