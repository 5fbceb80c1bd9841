//! The seven task types through `tasks::run`, against fake channels.

use serde_json::{Value, json};
use tam_agent::import::Format;
use tam_agent::scan::{ScanConfig, scan};
use tam_agent::tasks::{TaskContext, run};
use tam_core::outbox::DeliveryPolicy;
use tam_core::{AccountId, TenantId};
use tam_store::Store;

use crate::dispatch::{Fake, with_channels};
use crate::{account, import, now, ticket};

fn book(store: &mut Store) {
    let feature = r#"{"record":"ticket","tenant_id":"t","id":"FR-1","account_id":"acme","priority":"P4","status":"open","created_at":"2026-03-10T00:00:00Z","subject":"Feature request: SCIM user provisioning","kind":"feature_request"}"#;
    let lines = [
        account("t", "acme", "ana@v.example", Some("2026-03-29T06:00:00Z")),
        account("t", "beta", "ana@v.example", Some("2026-03-29T06:00:00Z")),
        ticket("t", "SUP-1", "acme", "P1", "open", "2026-03-20T00:00:00Z"),
        ticket("t", "SUP-2", "acme", "P3", "resolved", "2026-03-01T00:00:00Z"),
        feature.to_owned(),
    ];
    import(store, &[("book", Format::Ndjson, &lines.join("\n"))]);
    scan(store, &TenantId::parse("t", "t").unwrap(), now(), &ScanConfig::default(), false, |_| {}).unwrap();
}

fn task(store: &mut Store, fake: &mut Fake, task: Value) -> Result<Value, String> {
    with_channels(fake, |channels| {
        let scan_config = |_: &TenantId| ScanConfig::default();
        let mut ctx = TaskContext {
            store,
            channels,
            scan_config: &scan_config,
            retry: &DeliveryPolicy::default(),
            now: now(),
            worker: "test",
        };
        run(&mut ctx, &task).map_err(|e| e.to_string())
    })
}

#[test]
fn unknown_types_and_missing_tenants_are_errors_naming_what_is_wrong() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    let err = task(&mut store, &mut fake, json!({"type": "make_coffee", "tenant_id": "t"})).unwrap_err();
    assert!(err.contains("supported: health_scan, escalation_outreach, release_notes, roadmap_preview, health_checkin, customer_success_review, update_relationship_profile"), "{err}");
    let err = task(&mut store, &mut fake, json!({"type": "health_scan"})).unwrap_err();
    assert_eq!(err, "task: field tenant_id: missing (required)");
    let err = task(&mut store, &mut fake, json!({"type": "health_scan", "tenant_id": "nope"})).unwrap_err();
    assert_eq!(err, "task: no tenant \"nope\"");
}

#[test]
fn a_handler_that_cannot_finish_returns_the_partial_shape() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    let r = task(&mut store, &mut fake, json!({"type": "roadmap_preview", "tenant_id": "t", "account_id": "acme"}))
        .unwrap();
    assert_eq!((r["partial"].as_bool(), r["confidence"].as_str()), (Some(true), Some("low")));
    assert!(r["error"].as_str().unwrap().starts_with("field roadmap_items: missing"), "{r}");
    let r = task(&mut store, &mut fake, json!({"type": "health_checkin", "tenant_id": "t"})).unwrap();
    assert!(r["error"].as_str().unwrap().starts_with("field account_id: missing"), "{r}");
    // A mailbox that is down: the draft stays queued and the result says so.
    let mut down = Fake { fail: std::collections::HashMap::from([("draft", 1)]), ..Fake::default() };
    let r = task(&mut store, &mut down, json!({"type": "escalation_outreach", "tenant_id": "t", "account_id": "acme"}))
        .unwrap();
    assert_eq!(r["partial"].as_bool(), Some(true), "{r}");
    assert!(r["error"].as_str().unwrap().contains("it stays in the outbox"), "{r}");
}

#[test]
fn communications_become_drafts_for_the_accounts_contacts() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    for kind in ["escalation_outreach", "health_checkin", "customer_success_review"] {
        let r = task(&mut store, &mut fake, json!({"type": kind, "tenant_id": "t", "account_id": "acme"})).unwrap();
        assert_eq!(r["type"], kind);
        assert!(r.get("partial").is_none(), "{r}");
    }
    let r = task(
        &mut store,
        &mut fake,
        json!({"type": "release_notes", "tenant_id": "t", "release_info": {"version": "4.2", "date": "2026-03-30",
               "changes": [{"title": "SSO fix", "description": "Sessions survive rotation", "area": "sso", "tickets": ["SUP-1"]}]}}),
    )
    .unwrap();
    assert_eq!(r["drafts"].as_array().unwrap().len(), 2, "one per account of the tenant: {r}");
    // Like every other kind, the result says how sure it is and what the model spent.
    assert_eq!(r["confidence"], "medium", "{r}");
    assert_eq!(r["drafts"][0]["confidence"], "medium", "{r}");
    assert_eq!(r["usage"], json!({"calls": 0, "input_tokens": 0, "output_tokens": 0}), "{r}");
    let acme =
        fake.drafts.iter().find(|d| d.account().as_str() == "acme" && d.kind().as_str() == "release_notes").unwrap();
    assert!(acme.text().contains("Fixed for you:\n  - SSO fix: Sessions survive rotation\n    (fixes what you reported: SUP-1: SUP-1 subject)"), "{}", acme.text());
    assert!(fake.drafts.iter().all(|d| d.to().iter().all(|e| e.as_str().starts_with("ops@"))));
}

#[test]
fn profiles_merge_without_duplicates_and_keep_history() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    let update = |role: &str| {
        json!({"type": "update_relationship_profile", "tenant_id": "t", "account_id": "acme",
               "stakeholders": [{"name": "Maya Chen", "role": role, "maturity": "high"}],
               "integrations": [{"name": "Salesforce", "active": true, "since": "2025-01"}]})
    };
    let first = task(&mut store, &mut fake, update("CTO")).unwrap();
    assert_eq!(first["merged"], json!({"added": 2, "changed": 0, "unchanged": 0}));
    assert_eq!(first["opportunities_surfaced"], json!(["SCIM user provisioning"]));
    let again = task(&mut store, &mut fake, update("CTO")).unwrap();
    assert_eq!(again["merged"], json!({"added": 0, "changed": 0, "unchanged": 2}));
    assert_eq!(again["opportunities_surfaced"], json!([]));
    let changed = task(&mut store, &mut fake, update("VP Engineering")).unwrap();
    assert_eq!(changed["merged"], json!({"added": 0, "changed": 1, "unchanged": 1}));

    let (t, a) = (TenantId::parse("t", "t").unwrap(), AccountId::parse("a", "acme").unwrap());
    let stakeholders: Vec<_> =
        store.facts(&t, &a).unwrap().into_iter().filter(|f| f.section == "stakeholders").collect();
    assert_eq!(stakeholders.len(), 1);
    assert_eq!(stakeholders[0].value["role"], "VP Engineering");
    let history = store.fact_changes(&t, &a).unwrap();
    let roles: Vec<_> = history.iter().filter(|c| c.key == "maya chen").map(|c| c.new["role"].clone()).collect();
    assert_eq!(roles, [json!("CTO"), json!("VP Engineering")]);
    let features: Vec<String> =
        store.facts(&t, &a).unwrap().into_iter().filter(|f| f.section == "features").map(|f| f.key).collect();
    assert_eq!(features, ["api"], "a monitored integration uses the API; a feature request is not adoption");
    let opportunity_events: Vec<_> = fake.events.iter().filter(|e| e.event_type == "opportunity").collect();
    assert_eq!(opportunity_events.len(), 1);
    assert_eq!(opportunity_events[0].data["title"], "SCIM user provisioning");
}

#[test]
fn a_task_id_makes_a_retried_task_draft_once_and_bad_items_change_nothing() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    let checkin =
        json!({"type": "health_checkin", "tenant_id": "t", "account_id": "acme", "task_id": "monthly-2026-03"});
    let first = task(&mut store, &mut fake, checkin.clone()).unwrap();
    let second = task(&mut store, &mut fake, checkin).unwrap();
    assert_eq!(first["draft"]["idem_key"], second["draft"]["idem_key"]);
    assert_eq!(fake.drafts.len(), 1, "the retried task drafted nothing new");
    assert_eq!(fake.profiles.len(), 1, "the profile was published once, after the draft");
    let history = &fake.profiles[0].sections[4];
    assert_eq!(history.title, "Communication History");
    assert!(history.lines.len() == 1 && history.lines[0].contains("health checkin | draft-receipt"), "{history:?}");

    let bad = json!({"type": "update_relationship_profile", "tenant_id": "t", "account_id": "acme",
                     "stakeholders": [{"name": "Maya Chen", "role": "CTO"}],
                     "opportunities": [{"title": "SCIM", "status": "maybe"}]});
    let r = task(&mut store, &mut fake, bad).unwrap();
    assert!(r["error"].as_str().unwrap().contains("status \"maybe\" is not surfaced, discussed or in_progress"), "{r}");
    let (t, a) = (TenantId::parse("t", "t").unwrap(), AccountId::parse("a", "acme").unwrap());
    assert!(store.facts(&t, &a).unwrap().is_empty(), "nothing was merged before the bad item was found");
}

#[test]
fn a_profile_its_crm_refused_is_a_partial_result_with_the_facts_kept() {
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    fake.fail.insert("profile", 10);
    let r = task(
        &mut store,
        &mut fake,
        json!({"type": "update_relationship_profile", "tenant_id": "t", "account_id": "acme",
               "stakeholders": [{"name": "Maya Chen", "role": "CTO", "maturity": "high"}]}),
    )
    .unwrap();
    assert_eq!(r["partial"], true, "{r}");
    assert_eq!(r["confidence"], "low", "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("the profile is stored but not published: profile unavailable"),
        "{r}"
    );
    assert_eq!(r["merged"]["added"], 1, "the facts are kept: {r}");
}

#[test]
fn release_notes_name_a_stored_account_id_that_is_not_one_instead_of_skipping_it_unseen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    let mut store = Store::open(&path).unwrap();
    book(&mut store);
    // As a hand edit could leave it: an id with a line break in it.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE accounts SET id = 'be' || char(10) || 'ta' WHERE id = 'beta'", [])
        .unwrap();
    let mut fake = Fake::default();
    let release = json!({"version": "4.3", "date": "2026-03-30", "changes": [{"title": "Faster exports"}]});
    let r = task(&mut store, &mut fake, json!({"type": "release_notes", "tenant_id": "t", "release_info": release}))
        .unwrap();
    assert_eq!(r["drafts"].as_array().unwrap().len(), 1, "acme's: {r}");
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r}");
    assert!(skipped[0]["error"].as_str().unwrap().starts_with("stored accounts row be\nta: field id:"), "{r}");
}

#[test]
fn every_type_reads_into_its_typed_task_and_a_field_that_does_not_read_is_named() {
    use tam_agent::tasks::{Field, Task, Work};
    use tam_core::agent::TaskType;
    for kind in TaskType::ALL {
        let parsed = Task::parse(&json!({"type": kind.as_str(), "tenant_id": "t", "account_id": "acme"})).unwrap();
        assert_eq!(parsed.work.kind(), kind);
        assert_eq!(parsed.account.as_ref().map(AccountId::as_str), Some("acme"));
    }
    let mut store = crate::store();
    book(&mut store);
    let mut fake = Fake::default();
    // A payload field of the wrong shape is a partial result naming it, not a refused task.
    for (field, value) in [("period_days", json!("thirty")), ("task_id", json!(7))] {
        let mut sent = json!({"type": "health_checkin", "tenant_id": "t", "account_id": "acme"});
        sent[field] = value;
        let r = task(&mut store, &mut fake, sent).unwrap();
        assert_eq!(r["partial"].as_bool(), Some(true), "{r}");
        assert!(r["error"].as_str().unwrap().starts_with(&format!("field {field}: ")), "{r}");
    }
    // The scheduler's task, built in code, drafts what the same task sent as JSON drafts.
    let built = Task::new(TenantId::parse("t", "t").unwrap(), Some(AccountId::parse("a", "beta").unwrap()), {
        Work::CustomerSuccessReview { period_days: Field::given(30) }
    })
    .with_task_id("q1");
    let from_code = with_channels(&mut fake, |channels| {
        let scan_config = |_: &TenantId| ScanConfig::default();
        let retry = DeliveryPolicy::default();
        let mut ctx = TaskContext {
            store: &mut store,
            channels,
            scan_config: &scan_config,
            retry: &retry,
            now: now(),
            worker: "test",
        };
        tam_agent::tasks::run_task(&mut ctx, built).unwrap()
    });
    let sent = json!({"type": "customer_success_review", "tenant_id": "t", "account_id": "beta",
                      "period_days": 30, "task_id": "q1"});
    let from_json = task(&mut store, &mut fake, sent).unwrap();
    assert_eq!(from_code["draft"]["idem_key"], from_json["draft"]["idem_key"], "{from_code}");
    assert_eq!(from_code["type"], "customer_success_review");
    assert!(from_code.get("partial").is_none(), "{from_code}");
}
