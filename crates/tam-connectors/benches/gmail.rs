//! Gmail drafts and alerts delivered at once against the local fake Gmail, which answers each
//! request after a realistic latency (150 ms) and refuses a mailbox that spends more than 250
//! quota units in a second (429 `userRateLimitExceeded`), as Gmail does.
//!
//! Reports, for 500 first drafts spread over 20 reps' mailboxes: the wall time one at a time
//! (measured on a sample and scaled), at the default concurrency (8) and at 20; the lower bound
//! the per-user quota sets; and the requests Gmail refused. Then 20 alerts from the one alerts
//! mailbox, whose quota (a send costs 100 of its 250 units a second) sets their pace.
//!
//! `cargo bench -p tam-connectors --bench gmail` (about a minute).

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot run should stop loudly")]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tam_connectors::gmail::{Gmail, GmailAlerts, GmailDrafts, USER_UNITS_PER_SECOND};
use tam_connectors::google_auth::ServiceAccount;
use tam_core::comms::{AlertKind, Brief, CommKind, CustomerDraft, RepAlert, Subject, Written};
use tam_core::outbox::{EffectKind, IdemKey, Outcome};
use tam_core::ports::{DraftMailbox, RepAlerts};
use tam_core::{AccountId, Email, HealthStatus, TenantId, Trend};
use tam_testkit::gmail::FakeGmail;

const DRAFTS: usize = 500;
const REPS: usize = 20;
const LATENCY: Duration = Duration::from_millis(150);
/// A first draft: look for its Message-ID (5 units), then create it (10).
const UNITS_PER_DRAFT: u32 = 15;

fn gmail(fake: &FakeGmail, concurrency: usize) -> Arc<Gmail> {
    let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_service_account.json");
    let auth = ServiceAccount::from_file(&key, Some(&fake.token_uri()), Duration::from_secs(10)).unwrap();
    Gmail::with_limits(auth, &fake.base_url(), Duration::from_secs(10), concurrency, USER_UNITS_PER_SECOND, None)
}

fn draft(run: &str, i: usize) -> CustomerDraft {
    let account = format!("acct-{i:04}");
    let brief = Brief {
        account_name: format!("Account {i}"),
        contacts: vec![Email::parse("contact", &format!("ops@{account}.example")).unwrap()],
        rep_name: format!("Rep {}", i % REPS),
        score: 10,
        status: HealthStatus::Red,
        trend: Trend::Declining,
        ..Brief::new(
            CommKind::EscalationOutreach,
            TenantId::parse("tenant", "bench").unwrap(),
            AccountId::parse("account", &account).unwrap(),
            Email::parse("rep", &format!("rep{}@vendor.example", i % REPS)).unwrap(),
            "2026-03-29T07:00:00Z".parse().unwrap(),
        )
    };
    let written = Written {
        subject: format!("Account {i}: our plan"),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
        generator: "template".into(),
        confidence: "medium".into(),
        note: None,
        calls: vec![],
        images: vec![],
    };
    let key = IdemKey::new(EffectKind::Draft, &format!("{run}-{account}"), brief.as_of);
    CustomerDraft::new(&brief, written, key)
}

/// Saves `n` drafts at `concurrency` on a fresh fake: the wall time, and how many Gmail refused.
fn drafts(n: usize, concurrency: usize) -> (Duration, u64) {
    let fake = FakeGmail::start();
    fake.set_latency(LATENCY);
    let mut mailbox = GmailDrafts::new(gmail(&fake, concurrency));
    let batch: Vec<CustomerDraft> = (0..n).map(|i| draft(&format!("c{concurrency}"), i)).collect();
    let started = Instant::now();
    let outcomes = mailbox.create_drafts(&batch, &tam_core::concurrent::never);
    let took = started.elapsed();
    let delivered = outcomes.iter().filter(|o| matches!(o, Outcome::Delivered { .. })).count();
    assert_eq!(delivered, n, "{:?}", outcomes.iter().find(|o| !matches!(o, Outcome::Delivered { .. })));
    let saved: usize = (0..REPS).map(|r| fake.drafts(&format!("rep{r}@vendor.example")).len()).sum();
    assert_eq!(saved, n, "each draft saved once");
    (took, fake.stats().rate_limited)
}

fn main() {
    let per_rep = DRAFTS.div_ceil(REPS) as f64;
    let floor = per_rep * f64::from(UNITS_PER_DRAFT) / f64::from(USER_UNITS_PER_SECOND);
    println!(
        "{DRAFTS} first drafts to {REPS} reps' Gmail, {} ms a request, {USER_UNITS_PER_SECOND} quota units per mailbox a second",
        LATENCY.as_millis()
    );
    let sample = 40;
    let (one, refused) = drafts(sample, 1);
    let scaled = one.as_secs_f64() * DRAFTS as f64 / sample as f64;
    println!("  one at a time   {scaled:>7.1} s  ({sample} drafts took {:.1} s; {refused} refused)", one.as_secs_f64());
    for concurrency in [8, 32, 64, 100] {
        let (took, refused) = drafts(DRAFTS, concurrency);
        println!(
            "  {concurrency:>2} at once      {:>7.1} s  {:>6.1} drafts/s  {:.1}x faster; {refused} refused by Gmail",
            took.as_secs_f64(),
            DRAFTS as f64 / took.as_secs_f64(),
            scaled / took.as_secs_f64()
        );
    }
    println!("  the quota's lower bound: {floor:.1} s ({per_rep} drafts x {UNITS_PER_DRAFT} units per mailbox)");

    let fake = FakeGmail::start();
    fake.set_latency(LATENCY);
    let from = Email::parse("from", "tam-alerts@vendor.example").unwrap();
    let mut alerts = GmailAlerts::new(gmail(&fake, 8), from);
    let batch: Vec<RepAlert> = (0..20)
        .map(|i| RepAlert {
            tenant: TenantId::parse("tenant", "bench").unwrap(),
            rep: Email::parse("rep", &format!("rep{i}@vendor.example")).unwrap(),
            chat_space: None,
            kind: AlertKind::Individual,
            subject: Subject::new(&format!("[tam] Account {i} is red")),
            text: "Hi".into(),
            key: IdemKey::new(EffectKind::EmailAlert, &format!("acct-{i}"), "2026-03-29T07:00:00Z".parse().unwrap()),
            feedback: Vec::new(),
        })
        .collect();
    let started = Instant::now();
    let outcomes = alerts.send_alerts(&batch, &tam_core::concurrent::never);
    let took = started.elapsed();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Delivered { .. })), "{outcomes:?}");
    println!(
        "20 alerts from one mailbox at 8 at once: {:.1} s (the quota's lower bound {:.1} s: two sends of 100 units a second); {} refused",
        took.as_secs_f64(),
        (20.0 * 100.0 - 200.0) / 200.0,
        fake.stats().rate_limited
    );
}
