//! The outbox and the dispatcher against fake channels that count and fail on demand.

use std::collections::HashMap;

use tam_agent::dispatch::{Channels, DispatchReport, dispatch};
use tam_agent::import::Format;
use tam_agent::scan::{ScanConfig, ScanReport, scan};
use tam_core::comms::{AlertKind, CrmUpdate, CustomerDraft, Event, ProfileDocument, RepAlert};
use tam_core::outbox::{DeliveryPolicy, EffectKind, Outcome};
use tam_core::ports::{ChatNotifier, CrmWriter, DraftMailbox, EventBus, ProfilePublisher, RepAlerts};
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::{OutboxState, Store};
use tam_writer::TemplateWriter;

use crate::{account, import, now, ticket};

/// Counts deliveries per channel and key; fails a channel's first `fail[kind]` attempts.
#[derive(Default)]
pub(crate) struct Fake {
    pub(crate) fail: HashMap<&'static str, u32>,
    pub(crate) attempts: HashMap<&'static str, u32>,
    pub(crate) delivered: HashMap<String, u32>,
    pub(crate) drafts: Vec<CustomerDraft>,
    pub(crate) alerts: Vec<(String, RepAlert)>,
    pub(crate) events: Vec<Event>,
    pub(crate) profiles: Vec<ProfileDocument>,
    /// Raised once this many deliveries are made: a SIGTERM that arrives mid-batch.
    pub(crate) stop_after: Option<(usize, std::sync::Arc<std::sync::atomic::AtomicBool>)>,
}

impl Fake {
    fn attempt(&mut self, channel: &'static str, key: String) -> Outcome {
        let tries = self.attempts.entry(channel).or_default();
        *tries += 1;
        if self.fail.get(channel).is_some_and(|n| *tries <= *n) {
            return Outcome::Retry { reason: format!("{channel} unavailable (try {tries})"), after: None };
        }
        *self.delivered.entry(key).or_default() += 1;
        if let Some((after, flag)) = &self.stop_after
            && self.delivered.values().sum::<u32>() as usize >= *after
        {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        Outcome::Delivered { receipt: format!("{channel}-receipt") }
    }

    fn count(&self, prefix: &str) -> usize {
        self.delivered.keys().filter(|k| k.starts_with(prefix)).count()
    }
}

impl DraftMailbox for Fake {
    fn create_draft(&mut self, draft: &CustomerDraft) -> Outcome {
        self.drafts.push(draft.clone());
        self.attempt("draft", draft.key().to_string())
    }
}
impl RepAlerts for Fake {
    fn send_alert(&mut self, alert: &RepAlert) -> Outcome {
        self.alerts.push(("email".into(), alert.clone()));
        self.attempt("email", alert.key.to_string())
    }
}
impl ChatNotifier for Fake {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        self.alerts.push(("chat".into(), alert.clone()));
        self.attempt("chat", alert.key.to_string())
    }
}
impl EventBus for Fake {
    fn publish(&mut self, event: &Event) -> Outcome {
        self.events.push(event.clone());
        self.attempt("event", event.event_id.clone())
    }
}
impl CrmWriter for Fake {
    fn update_health(&mut self, update: &CrmUpdate) -> Outcome {
        self.attempt("crm", format!("crm:{}:{}", update.account, update.scanned_at))
    }
}

impl ProfilePublisher for Fake {
    fn publish_profile(&mut self, doc: &ProfileDocument) -> Outcome {
        self.profiles.push(doc.clone());
        self.attempt("profile", format!("profile:{}:{}", doc.account, self.profiles.len()))
    }
}

/// A dispatch at [`now`] that stops once `stop` says so.
fn dispatch_stopping(
    store: &mut Store,
    channels: &mut Channels<'_>,
    stop: tam_core::concurrent::Stop<'_>,
) -> DispatchReport {
    tam_agent::dispatch::dispatch_until(store, &tenant(), channels, now(), &DeliveryPolicy::default(), "w", stop)
        .unwrap()
}

/// One fake behind all six ports (each trait object borrows the same fake in turn).
fn run_dispatch(store: &mut Store, fake: &mut Fake, at: Timestamp) -> DispatchReport {
    with_channels(fake, |channels| {
        dispatch(store, &tenant(), channels, at, &DeliveryPolicy::default(), "test-worker").unwrap()
    })
}

/// Runs `f` with the six ports all backed by `fake`.
pub(crate) fn with_channels<R>(fake: &mut Fake, f: impl FnOnce(&mut Channels<'_>) -> R) -> R {
    // The ports are six trait objects borrowed at once; each is a shim forwarding to the one
    // shared fake.
    struct Shim<'a>(&'a std::cell::RefCell<&'a mut Fake>);
    impl DraftMailbox for Shim<'_> {
        fn create_draft(&mut self, d: &CustomerDraft) -> Outcome {
            self.0.borrow_mut().create_draft(d)
        }
    }
    impl RepAlerts for Shim<'_> {
        fn send_alert(&mut self, a: &RepAlert) -> Outcome {
            self.0.borrow_mut().send_alert(a)
        }
    }
    impl ChatNotifier for Shim<'_> {
        fn notify(&mut self, a: &RepAlert) -> Outcome {
            self.0.borrow_mut().notify(a)
        }
    }
    impl EventBus for Shim<'_> {
        fn publish(&mut self, e: &Event) -> Outcome {
            self.0.borrow_mut().publish(e)
        }
    }
    impl CrmWriter for Shim<'_> {
        fn update_health(&mut self, u: &CrmUpdate) -> Outcome {
            self.0.borrow_mut().update_health(u)
        }
    }
    impl ProfilePublisher for Shim<'_> {
        fn publish_profile(&mut self, p: &ProfileDocument) -> Outcome {
            self.0.borrow_mut().publish_profile(p)
        }
    }
    let cell = std::cell::RefCell::new(fake);
    let [mut a, mut b, mut c, mut d, mut e, mut p] = std::array::from_fn(|_| Shim(&cell));
    let writer = TemplateWriter::new();
    let mut channels = Channels {
        mailbox: &mut a,
        alerts: &mut b,
        chat: &mut c,
        events: &mut d,
        crm: &mut e,
        profiles: &mut p,
        writer: &writer,
        feedback: None,
    };
    f(&mut channels)
}

fn tenant() -> TenantId {
    TenantId::parse("t", "t").unwrap()
}

fn days(n: i64) -> Timestamp {
    now().checked_add(SignedDuration::from_hours(24 * n)).unwrap()
}

fn scan_at(store: &mut Store, at: Timestamp) -> ScanReport {
    scan(store, &tenant(), at, &ScanConfig::default(), false, |_| {}).unwrap()
}

/// `n` red accounts of one rep: three aged P1s and a silent integration each (score 10).
fn red_accounts(store: &mut Store, n: usize) {
    let mut lines = Vec::new();
    for i in 0..n {
        let id = format!("red{i:02}");
        lines.push(account("t", &id, "ana@v.example", Some("2026-03-20T00:00:00Z")));
        for k in 0..3 {
            lines.push(ticket("t", &format!("{id}-T{k}"), &id, "P1", "open", "2026-03-20T00:00:00Z"));
        }
    }
    let report = import(store, &[("book", Format::Ndjson, &lines.join("\n"))]);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
}

#[test]
fn twelve_red_accounts_give_five_alerts_one_digest_and_crm_and_events_for_all() {
    let mut store = crate::store();
    red_accounts(&mut store, 12);
    scan_at(&mut store, now());
    let mut fake = Fake::default();
    let report = run_dispatch(&mut store, &mut fake, now());
    assert_eq!((report.delivered, report.retried, report.failed), (12 + 12 + 12 + 12 + 5 + 5 + 1 + 1, 0, 0));
    assert_eq!((fake.count("draft:"), fake.count("crm:"), fake.events.len()), (12, 12, 12));
    assert_eq!(fake.profiles.len(), 12, "each profile lists its new draft");
    assert!(fake.profiles.iter().all(|p| p.sections[4].lines.len() == 1), "{:?}", fake.profiles[0]);
    assert_eq!((fake.count("email_alert:"), fake.count("chat_alert:"), fake.count("digest:")), (5, 5, 1));
    // The rep's space gets the digest as it gets alerts.
    assert_eq!(fake.count("chat_digest:"), 1);
    let chat_digest = fake.alerts.iter().find(|(channel, a)| channel == "chat" && a.kind == AlertKind::Digest);
    assert!(chat_digest.is_some_and(|(_, a)| a.text.contains("(red05)")), "{:?}", fake.alerts);
    let digest = fake.alerts.iter().find(|(_, a)| a.kind == AlertKind::Digest).unwrap();
    let named: Vec<String> = (5..12).map(|i| format!("red{i:02}")).collect();
    assert!(named.iter().all(|id| digest.1.text.contains(&format!("({id})"))), "{}", digest.1.text);
    assert!(!digest.1.text.contains("(red04)"), "the five individual alerts are not in the digest");
    // Alerts link the draft the mailbox saved.
    assert!(fake.alerts.iter().all(|(_, a)| a.text.contains("draft-receipt")));
}

#[test]
fn a_rerun_and_a_second_dispatch_deliver_nothing_twice() {
    let mut store = crate::store();
    red_accounts(&mut store, 2);
    scan_at(&mut store, now());
    let planned = store.outbox(&tenant(), None).unwrap().len();
    scan_at(&mut store, now());
    assert_eq!(store.outbox(&tenant(), None).unwrap().len(), planned, "a re-run adds no outbox row");
    let mut fake = Fake::default();
    assert_eq!(run_dispatch(&mut store, &mut fake, now()).delivered as usize, planned);
    assert_eq!(run_dispatch(&mut store, &mut fake, now()).delivered, 0);
    assert!(fake.delivered.values().all(|n| *n == 1), "{:?}", fake.delivered);
}

#[test]
fn a_worker_that_died_mid_delivery_is_taken_over_and_its_late_result_refused() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let claimed = store
        .claim_due(
            &tenant(),
            now(),
            "dead-worker",
            SignedDuration::from_secs(60),
            tam_store::Claim { drafts: 100, others: 100 },
        )
        .unwrap();
    assert_eq!(claimed.len(), 6);
    // Within the lease nobody else may take them.
    let mut fake = Fake::default();
    assert_eq!(run_dispatch(&mut store, &mut fake, now()).delivered, 0);
    let later = now().checked_add(SignedDuration::from_secs(61)).unwrap();
    assert_eq!(run_dispatch(&mut store, &mut fake, later).delivered, 6);
    let late = store.finish(&claimed[0], "dead-worker", later, &tam_store::Finish::Delivered { receipt: "x".into() });
    assert!(!late.unwrap(), "a stale worker's result is refused");
}

#[test]
fn a_channel_that_fails_three_times_then_recovers_ends_delivered_with_four_attempts() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let mut fake = Fake { fail: HashMap::from([("email", 3)]), ..Fake::default() };
    let mut at = now();
    let first = run_dispatch(&mut store, &mut fake, at);
    assert_eq!((first.delivered, first.retried), (5, 1), "the other channels are not held up");
    for _ in 0..3 {
        at = at.checked_add(SignedDuration::from_hours(2)).unwrap();
        run_dispatch(&mut store, &mut fake, at);
    }
    let rows = store.outbox(&tenant(), None).unwrap();
    assert!(rows.iter().all(|r| r.state == OutboxState::Delivered), "{rows:#?}");
    let email = rows.iter().find(|r| r.kind == EffectKind::EmailAlert).unwrap();
    let attempts = store.attempts(email.id).unwrap();
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "delivered"]);
    assert!(attempts[0].detail.as_deref().unwrap().contains("email unavailable (try 1)"));
    let chat = rows.iter().find(|r| r.kind == EffectKind::ChatAlert).unwrap();
    assert_eq!(store.attempts(chat.id).unwrap().len(), 1);
}

#[test]
fn a_channel_that_never_recovers_is_left_failed_after_the_last_attempt() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let mut fake = Fake { fail: HashMap::from([("event", u32::MAX)]), ..Fake::default() };
    let mut at = now();
    for _ in 0..DeliveryPolicy::default().max_attempts {
        run_dispatch(&mut store, &mut fake, at);
        at = at.checked_add(SignedDuration::from_hours(2)).unwrap();
    }
    let failed = store.outbox(&tenant(), Some(OutboxState::Failed)).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].last_error.as_deref().unwrap().starts_with("gave up after 6 attempts"), "{failed:?}");
    assert_eq!(store.revive_failed(&tenant(), at).unwrap(), 1);
}

#[test]
fn ten_red_days_make_one_escalation_and_worsening_makes_another() {
    let mut store = crate::store();
    // Two aged P1s and a silence: 100 - 40 - 30 = 30, red from day 0.
    let lines = [
        account("t", "acme", "ana@v.example", Some("2026-03-20T00:00:00Z")),
        ticket("t", "A1", "acme", "P1", "open", "2026-03-20T00:00:00Z"),
        ticket("t", "A2", "acme", "P1", "open", "2026-03-20T00:00:00Z"),
    ];
    import(&mut store, &[("book", Format::Ndjson, &lines.join("\n"))]);
    let mut fake = Fake::default();
    for day in 0..10 {
        scan_at(&mut store, days(day));
        run_dispatch(&mut store, &mut fake, days(day));
    }
    assert_eq!((fake.count("draft:"), fake.events.len()), (1, 1), "one escalation, not ten");
    let email_days: Vec<String> =
        fake.alerts.iter().filter(|(c, _)| c == "email").map(|(_, a)| a.key.to_string()).collect();
    assert_eq!(email_days.len(), 2, "the first alert and a reminder after the 7-day cool-down: {email_days:?}");
    assert!(email_days[1].ends_with(&days(7).to_string()));
    assert!(fake.alerts.iter().all(|(_, a)| a.text.contains("draft-receipt")), "the reminder links the draft");

    // A third aged P1: 30 → 10, ten points worse.
    import(&mut store, &[("more", Format::Ndjson, &ticket("t", "A3", "acme", "P1", "open", "2026-03-20T00:00:00Z"))]);
    scan_at(&mut store, days(10));
    run_dispatch(&mut store, &mut fake, days(10));
    assert_eq!((fake.count("draft:"), fake.events.len()), (2, 2), "worsening is news");
    assert_eq!(fake.drafts[0].in_reply_to(), None);
    assert_eq!(
        fake.drafts[1].in_reply_to(),
        Some(fake.drafts[0].message_id().as_str()),
        "the follow-up replies in the first outreach's thread"
    );
}

#[test]
fn a_broken_mailbox_delays_alerts_but_never_loses_them() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let mut fake = Fake { fail: HashMap::from([("draft", u32::MAX)]), ..Fake::default() };
    let mut at = now();
    let first = run_dispatch(&mut store, &mut fake, at);
    assert_eq!(
        (first.delivered, first.deferred),
        (2, 3),
        "CRM and event delivered; the alerts and the profile wait for the draft"
    );
    for _ in 0..DeliveryPolicy::default().max_attempts + 2 {
        at = at.checked_add(SignedDuration::from_hours(2)).unwrap();
        run_dispatch(&mut store, &mut fake, at);
    }
    let rows = store.outbox(&tenant(), None).unwrap();
    let state = |k: EffectKind| rows.iter().find(|r| r.kind == k).unwrap().state;
    assert_eq!(
        (state(EffectKind::Draft), state(EffectKind::EmailAlert)),
        (OutboxState::Failed, OutboxState::Delivered)
    );
    let email = fake.alerts.iter().find(|(c, _)| c == "email").unwrap();
    assert!(email.1.text.contains("the outreach draft could not be saved"), "{}", email.1.text);
    let email_row = rows.iter().find(|r| r.kind == EffectKind::EmailAlert).unwrap();
    assert_eq!(store.attempts(email_row.id).unwrap().len(), 1, "waiting for the draft used no attempts");
}

#[test]
fn retry_gives_a_fresh_budget_and_keeps_the_attempt_history() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let mut fake = Fake { fail: HashMap::from([("event", DeliveryPolicy::default().max_attempts)]), ..Fake::default() };
    let mut at = now();
    for _ in 0..DeliveryPolicy::default().max_attempts {
        run_dispatch(&mut store, &mut fake, at);
        at = at.checked_add(SignedDuration::from_hours(2)).unwrap();
    }
    assert_eq!(store.revive_failed(&tenant(), at).unwrap(), 1);
    run_dispatch(&mut store, &mut fake, at);
    let event = store.outbox(&tenant(), None).unwrap().into_iter().find(|r| r.kind == EffectKind::Event).unwrap();
    assert_eq!(event.state, OutboxState::Delivered);
    let outcomes: Vec<String> = store.attempts(event.id).unwrap().into_iter().map(|a| a.outcome).collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "retry", "retry", "failed", "delivered"]);
}

#[test]
fn a_recovered_account_clears_its_crm_escalation_flag() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    let fixed: Vec<String> =
        (0..3).map(|k| ticket("t", &format!("red00-T{k}"), "red00", "P1", "closed", "2026-03-20T00:00:00Z")).collect();
    let beat = r#"{"record":"heartbeat","tenant_id":"t","account_id":"red00","at":"2026-03-29T12:00:00Z"}"#;
    import(&mut store, &[("fix", Format::Ndjson, &format!("{}\n{beat}", fixed.join("\n")))]);
    let report = scan_at(&mut store, days(1));
    assert!(report.accounts[0].decision.closed.is_some());
    let crm: Vec<_> =
        store.outbox(&tenant(), None).unwrap().into_iter().filter(|r| r.kind == EffectKind::Crm).collect();
    assert_eq!(crm.len(), 2);
    // The update is built from the scan's snapshot when delivered.
    assert_eq!(crm[1].payload, tam_agent::effects::FromScan::PAYLOAD, "the row names the account and the scan");
    let from: tam_agent::effects::FromScan = serde_json::from_str(&crm[1].payload).unwrap();
    let scan = from.of(&crm[1]).unwrap();
    assert_eq!((scan.account.as_str(), scan.as_of), ("red00", days(1)));
    let mut facts = tam_agent::effects::Facts::new(&store);
    let update = tam_agent::effects::crm_update(&mut facts, &tenant(), &scan).unwrap().unwrap();
    assert!(!update.escalated, "{update:?}");
    assert_eq!(update.status, tam_core::HealthStatus::Green);
}

#[test]
fn the_crm_is_written_only_when_score_status_or_flag_changed() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    let calm = r#"{"record":"account","tenant_id":"t","id":"calm","name":"Calm","rep_name":"Rep","rep_email":"rep@v.example"}"#;
    import(&mut store, &[("calm", Format::Ndjson, calm)]);
    let crm_rows = |store: &Store| -> Vec<String> {
        let rows = store.outbox(&tenant(), None).unwrap();
        rows.into_iter().filter(|r| r.kind == EffectKind::Crm).map(|r| r.account.unwrap().to_string()).collect()
    };
    scan_at(&mut store, now());
    assert_eq!(crm_rows(&store), ["red00", "calm"], "a first scan writes every account");
    scan_at(&mut store, now().checked_add(SignedDuration::from_mins(1)).unwrap());
    assert_eq!(crm_rows(&store).len(), 2, "nothing changed a minute later, so nothing is written");
    let fixed = ticket("t", "red00-T0", "red00", "P1", "closed", "2026-03-20T00:00:00Z");
    import(&mut store, &[("fix", Format::Ndjson, &fixed)]);
    scan_at(&mut store, now().checked_add(SignedDuration::from_mins(2)).unwrap());
    assert_eq!(crm_rows(&store), ["red00", "calm", "red00"], "only the account whose score moved");
}

#[test]
fn a_long_digest_lists_the_worst_accounts_and_counts_the_rest() {
    let mut store = crate::store();
    red_accounts(&mut store, 40);
    scan_at(&mut store, now());
    let mut fake = Fake::default();
    run_dispatch(&mut store, &mut fake, now());
    let (_, digest) = fake.alerts.iter().find(|(_, a)| a.kind == AlertKind::Digest).unwrap();
    // Five alerts within the budget; 35 accounts over it: the worst 20 listed, 15 counted.
    assert_eq!(digest.subject.as_str(), "[tam] 35 more escalated account(s) in your digest");
    assert!(digest.text.contains("35 more accounts escalated. The worst 20:"), "{}", digest.text);
    assert_eq!(digest.text.matches("    draft: ").count(), 20, "{}", digest.text);
    assert!(digest.text.contains("And 15 more: 15 red; main reason: 15 aged P1/P2 tickets."), "{}", digest.text);
    assert!(digest.text.contains("`tam scan --tenant t --json`"), "{}", digest.text);
    assert!(digest.text.contains("/?rep=ana%40v.example"), "{}", digest.text);
    // The listed ones are the worst: all score 10 here, so the first by id.
    assert!(digest.text.contains("(red24)") && !digest.text.contains("(red25)"), "{}", digest.text);
}

#[test]
fn a_scans_effects_are_built_from_its_snapshot_and_whole_payloads_still_deliver() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    // A scan's draft, event and CRM update carry a reference to the snapshot, not the content.
    let rows = store.outbox(&tenant(), None).unwrap();
    for kind in [EffectKind::Draft, EffectKind::Event, EffectKind::Crm] {
        let row = rows.iter().find(|r| r.kind == kind).unwrap();
        assert_eq!(row.payload, r#"{"scan":{}}"#, "{kind}: the row's account at the row's creation");
    }
    // Rows written before named both in the payload, and still deliver.
    let older = tam_store::NewEffect {
        key: tam_core::outbox::IdemKey::new(EffectKind::Crm, "red00-older", now()),
        kind: EffectKind::Crm,
        account: None,
        payload: format!(r#"{{"scan":{{"account":"red00","as_of":"{}"}}}}"#, now()),
    };
    // An effect written whole (by a task, or before references) is delivered as it is.
    let update = CrmUpdate {
        tenant: tenant(),
        account: tam_core::AccountId::parse("a", "red00").unwrap(),
        score: 77,
        status: tam_core::HealthStatus::Green,
        scanned_at: days(1),
        escalated: false,
    };
    let whole = tam_store::NewEffect {
        key: tam_core::outbox::IdemKey::new(EffectKind::Crm, "red00-whole", days(1)),
        kind: EffectKind::Crm,
        account: Some(update.account.clone()),
        payload: serde_json::to_string(&update).unwrap(),
    };
    store.enqueue(&tenant(), now(), &[whole, older]).unwrap();
    let mut fake = Fake::default();
    let report = run_dispatch(&mut store, &mut fake, now());
    assert_eq!((report.failed, report.retried), (0, 0), "{report:?}");
    assert_eq!(fake.count("crm:red00:"), 2, "{:?}", fake.delivered);
    // The older row's update is the scan's own: the CRM was written with it twice.
    assert_eq!(fake.delivered[&format!("crm:red00:{}", now())], 2, "{:?}", fake.delivered);
    assert_eq!(fake.events[0].data["score"], 10, "the event carries the scan's score");
    let draft = &fake.drafts[0];
    assert_eq!(draft.to()[0].as_str(), "ops@red00.example", "the draft is addressed from the account as stored");
}

#[test]
fn an_effect_whose_snapshot_is_gone_fails_for_good_and_says_why() {
    let mut store = crate::store();
    red_accounts(&mut store, 1);
    scan_at(&mut store, now());
    // A reference to a scan instant no snapshot exists for (as if re-run away).
    let orphan = tam_store::NewEffect {
        key: tam_core::outbox::IdemKey::new(EffectKind::Crm, "red00", days(3)),
        kind: EffectKind::Crm,
        account: Some(tam_core::AccountId::parse("a", "red00").unwrap()),
        payload: format!(r#"{{"scan":{{"account":"red00","as_of":"{}"}}}}"#, days(3)),
    };
    store.enqueue(&tenant(), now(), &[orphan]).unwrap();
    let mut fake = Fake::default();
    let report = run_dispatch(&mut store, &mut fake, now());
    assert_eq!(report.failed, 1, "{report:?}");
    let failed = store.outbox(&tenant(), Some(OutboxState::Failed)).unwrap();
    let error = failed[0].last_error.as_deref().unwrap();
    assert!(error.contains("the snapshot of account \"red00\"") && error.contains("is not stored"), "{error}");
}

/// Dispatches 60 red accounts' effects until `after` deliveries have been made, then as if
/// SIGTERM came; checks that nothing is left leased or charged an attempt, and that a restart
/// delivers the rest at once, nothing twice. Returns how many the first run delivered.
fn stopped_after(after: usize) -> u64 {
    let mut store = crate::store();
    red_accounts(&mut store, 60);
    scan_at(&mut store, now());
    let planned = store.outbox(&tenant(), None).unwrap().len();
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut fake = Fake { stop_after: Some((after, flag.clone())), ..Fake::default() };
    let stop = || flag.load(std::sync::atomic::Ordering::SeqCst);
    let report = with_channels(&mut fake, |channels| dispatch_stopping(&mut store, channels, &stop));
    assert!(report.stopped);
    let rows = store.outbox(&tenant(), None).unwrap();
    assert!(rows.iter().all(|r| r.state != OutboxState::InFlight), "nothing is left leased");
    let pending: Vec<_> = rows.iter().filter(|r| r.state == OutboxState::Pending).collect();
    assert_eq!(pending.len(), planned - report.delivered as usize, "{report:?}");
    assert!(pending.iter().all(|r| r.attempts == 0), "a released row spent no attempt");
    fake.stop_after = None;
    let rest = run_dispatch(&mut store, &mut fake, now());
    assert_eq!(rest.delivered as usize, planned - report.delivered as usize);
    assert!(fake.delivered.values().all(|n| *n == 1), "{:?}", fake.delivered);
    report.delivered
}

#[test]
fn asked_to_stop_after_a_batchs_drafts_its_other_effects_go_back_pending_and_unleased() {
    assert_eq!(stopped_after(60), 60, "the first batch's drafts only");
}

#[test]
fn asked_to_stop_in_the_middle_of_a_channels_share_it_begins_no_other() {
    // The mailbox saves drafts one by one: it stops at the seventh, not at the batch's end.
    assert_eq!(stopped_after(7), 7);
}

#[test]
fn a_stored_contact_that_is_no_address_fails_that_accounts_draft_by_name_and_the_others_deliver() {
    // Contacts were dropped one by one when they did not parse: a draft could go to fewer
    // people than the account lists, and nobody would know.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tam.db");
    let mut store = Store::open(&path).unwrap();
    red_accounts(&mut store, 2);
    scan_at(&mut store, now());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(r#"UPDATE accounts SET contacts = '["ops@red00.example", "not an address"]' WHERE id = 'red00'"#, [])
        .unwrap();
    let mut fake = Fake::default();
    let report = run_dispatch(&mut store, &mut fake, now());
    assert!(report.failed >= 1, "{report:?}");
    let failed = store.outbox(&tenant(), Some(OutboxState::Failed)).unwrap();
    assert_eq!(failed.len(), 1, "only the draft, which goes to the contacts: {failed:?}");
    let error = failed[0].last_error.as_deref().unwrap();
    assert!(error.contains("stored accounts row red00: field contacts:"), "{error}");
    assert_eq!(fake.drafts.len(), 1, "red01's draft is delivered");
    assert_eq!(fake.drafts[0].account().as_str(), "red01");
    assert_eq!(fake.count("crm:red00:"), 1, "red00's other effects deliver: {:?}", fake.delivered);
    // The account still reads everywhere else, with the bad list named.
    let row = store.account(&tenant(), &tam_core::AccountId::parse("a", "red00").unwrap()).unwrap().unwrap();
    assert_eq!(row.unreadable.len(), 1);
    assert!(row.contacts.is_empty(), "no part of a list that did not read");
}

#[test]
fn asked_to_stop_while_a_model_writes_it_still_saves_the_drafts_already_paid_for() {
    /// A model that is asked to stop once it has written its first draft.
    struct Paid(&'static std::sync::atomic::AtomicBool);
    impl tam_core::ports::Writer for Paid {
        fn write(
            &self,
            brief: &tam_core::comms::Brief,
        ) -> Result<tam_core::comms::Written, tam_core::ports::WriteError> {
            let mut written = TemplateWriter::new().write(brief)?;
            written.generator = "model/test".to_owned();
            written.calls.push(tam_core::comms::ModelCall {
                provider: "openai_compatible".into(),
                model: "test".into(),
                latency_ms: 900,
                input_tokens: Some(1_000),
                output_tokens: Some(400),
                outcome: "ok".into(),
            });
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(written)
        }
    }
    let mut store = crate::store();
    red_accounts(&mut store, 3);
    scan_at(&mut store, now());
    // The channels are lent to the closure for any lifetime: the model and its flag live on.
    static FLAG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let model: &'static Paid = Box::leak(Box::new(Paid(&FLAG)));
    let stop = || FLAG.load(std::sync::atomic::Ordering::SeqCst);
    let mut fake = Fake::default();
    let report = with_channels(&mut fake, |channels| {
        channels.writer = model;
        dispatch_stopping(&mut store, channels, &stop)
    });
    assert!(report.stopped);
    assert_eq!(fake.drafts.len(), 1, "the draft the model wrote is saved, not thrown away: {report:?}");
    let pending_drafts = store
        .outbox(&tenant(), Some(OutboxState::Pending))
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == EffectKind::Draft)
        .collect::<Vec<_>>();
    assert_eq!(pending_drafts.len(), 2, "the drafts not yet written wait, unattempted");
    assert!(pending_drafts.iter().all(|r| r.attempts == 0));
}
