//! Gmail drafts and alert mail through the service account's delegation, against the strict
//! fake Gmail (scopes per method, quotas, lost replies).

use std::time::Duration;

use tam_connectors::embedded::LocalMailbox;
use tam_connectors::gmail::{Gmail, GmailAlerts, GmailDrafts};
use tam_connectors::google_auth::ServiceAccount;
use tam_core::comms::{AlertKind, Brief, CommKind, CustomerDraft, PeriodStats, RepAlert, ScorePoint, Subject, Written};
use tam_core::outbox::{IdemKey, Outcome};
use tam_core::ports::{DraftMailbox, RepAlerts, Writer};
use tam_core::{AccountId, Email, HealthStatus, Trend};
use tam_testkit::{Answer, Fake};

fn token(n: u32) -> Answer {
    Answer::json(200, &format!(r#"{{"access_token":"ya29.t{n}","expires_in":3599,"token_type":"Bearer"}}"#))
}

/// A first draft of `account` (`name`) from `rep`, copying `cc`.
fn draft_of(account: &str, name: &str, rep: &str, cc: &[&str]) -> CustomerDraft {
    let written = Written {
        subject: format!("{name}: our plan"),
        text: "Hello".into(),
        html: "<p>Hello</p>".into(),
        generator: "template".into(),
        confidence: "medium".into(),
        note: None,
        calls: vec![],
        images: vec![],
    };
    CustomerDraft::new(
        &brief_of(account, name, rep, cc),
        written,
        IdemKey::from_stored(format!("draft:{account}:2026-03-29T07:00:00Z")),
    )
}

/// Northwind's review, written by the templates: its HTML shows the chart it carries.
fn review() -> CustomerDraft {
    let mut brief = brief_of("a1", "Northwind", "ana@vendor.example", &[]);
    brief.kind = CommKind::CustomerSuccessReview;
    let as_of = brief.as_of;
    let day = |d: i64| as_of.checked_sub(tam_core::SignedDuration::from_hours(24 * d)).unwrap();
    brief.period = Some(PeriodStats {
        from: day(90),
        to: as_of,
        opened: 3,
        resolved: vec![],
        mean_hours_to_resolve: None,
        history: vec![ScorePoint { as_of: day(60), score: 80 }, ScorePoint { as_of, score: 10 }],
    });
    let written = tam_writer::TemplateWriter::new().write(&brief).unwrap();
    CustomerDraft::new(&brief, written, IdemKey::from_stored("review:a1:2026-03-29T07:00:00Z".into()))
}

fn brief_of(account: &str, name: &str, rep: &str, cc: &[&str]) -> Brief {
    Brief {
        account_name: name.into(),
        contacts: vec![Email::parse("c", "ops@nw.example").unwrap()],
        cc: cc.iter().map(|c| Email::parse("c", c).unwrap()).collect(),
        rep_name: "Ana".into(),
        score: 10,
        status: HealthStatus::Red,
        trend: Trend::Declining,
        ..Brief::new(
            CommKind::EscalationOutreach,
            crate::tenant("acme"),
            AccountId::parse("a", account).unwrap(),
            Email::parse("r", rep).unwrap(),
            "2026-03-29T07:00:00Z".parse().unwrap(),
        )
    }
}

/// The review as a message: the HTML and the PNG it names in one `multipart/related`.
fn assert_carries_its_chart(raw: &str, draft: &CustomerDraft) {
    let content_id = format!("health-chart.{}@tam.local", draft.digest());
    assert!(raw.contains("Content-Type: multipart/alternative;"), "{raw}");
    assert!(raw.contains("Content-Type: multipart/related;"), "{raw}");
    assert!(raw.contains(&format!("Content-ID: <{content_id}>\r\n")), "{raw}");
    assert!(draft.html().contains(&format!("src=\"cid:{content_id}\"")), "{}", draft.html());
    let png = raw.split("filename=\"health-chart.png\"\r\n\r\n").nth(1).unwrap();
    let png = png.split("\r\n--").next().unwrap();
    assert!(tam_testkit::unbase64(png).starts_with(b"\x89PNG\r\n\x1a\n"));
}

#[test]
fn a_review_lands_in_gmail_and_in_an_eml_with_its_chart_inline() {
    let fake = tam_testkit::gmail::FakeGmail::start();
    let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
    let auth =
        ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5)).unwrap();
    let mut drafts = GmailDrafts::new(Gmail::new(auth, &fake.base_url(), Duration::from_secs(5)));
    let review = review();
    assert!(matches!(drafts.create_draft(&review), Outcome::Delivered { .. }));
    let saved = fake.drafts("ana@vendor.example");
    assert_eq!(saved.len(), 1);
    assert_carries_its_chart(&saved[0].raw, &review);
    assert!(matches!(drafts.create_draft(&review), Outcome::Delivered { .. }));
    assert_eq!(fake.drafts("ana@vendor.example").len(), 1, "a retry finds it by its Message-ID");

    let dir = tempfile::tempdir().unwrap();
    let mut mailbox = LocalMailbox::open(&tam_store::Location::File(dir.path().join("tam.db")), dir.path()).unwrap();
    let Outcome::Delivered { receipt } = mailbox.create_draft(&review) else { panic!("not saved") };
    assert_carries_its_chart(&std::fs::read_to_string(receipt).unwrap(), &review);
}

fn draft() -> CustomerDraft {
    draft_of("a1", "Northwind", "ana@vendor.example", &["cto@nw.example"])
}

/// The email alert to the rep of Northwind's draft.
fn rep_alert() -> RepAlert {
    RepAlert {
        tenant: crate::tenant("acme"),
        rep: Email::parse("r", "ana@vendor.example").unwrap(),
        chat_space: None,
        kind: AlertKind::Individual,
        subject: Subject::new("[tam] Northwind is red (10)"),
        text: "Draft ready.".into(),
        key: IdemKey::from_stored("email_alert:a1:x".into()),
        feedback: Vec::new(),
    }
}

/// `n` first drafts to `reps` reps, each with its own key.
fn drafts_to(n: usize, reps: usize) -> Vec<CustomerDraft> {
    (0..n)
        .map(|i| draft_of(&format!("a{i}"), &format!("Account {i}"), &format!("rep{}@vendor.example", i % reps), &[]))
        .collect()
}

#[test]
fn a_gmail_error_that_echoes_the_request_does_not_carry_the_token() {
    let tokens = Fake::start(vec![token(1)]);
    let api = Fake::start(vec![Answer::json(
        400,
        r#"{"error":{"code":400,"message":"Bad request: Authorization: Bearer ya29.t1 is malformed"}}"#,
    )]);
    let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
    let auth = ServiceAccount::from_file(
        std::path::Path::new(&key),
        Some(&format!("{}/token", tokens.url)),
        Duration::from_secs(5),
    )
    .unwrap();
    let mut drafts = GmailDrafts::new(Gmail::new(auth, &api.url, Duration::from_secs(5)));
    let outcome = drafts.create_draft(&draft());
    assert!(
        matches!(&outcome, Outcome::Rejected { reason } if !reason.contains("ya29.t1") && reason.contains("Bearer [redacted]")),
        "{outcome:?}"
    );
}

#[test]
fn an_alert_whose_answer_was_lost_is_found_and_not_sent_again() {
    let fake = tam_testkit::gmail::FakeGmail::start();
    let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
    let alert = rep_alert();
    let alerts = |fake: &tam_testkit::gmail::FakeGmail| {
        let auth =
            ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5))
                .unwrap();
        GmailAlerts::new(
            Gmail::new(auth, &fake.base_url(), Duration::from_secs(5)),
            Email::parse("f", "tam@vendor.example").unwrap(),
        )
    };
    // With gmail.readonly delegated for the alerts mailbox: the retry finds the first send.
    fake.grant(&[
        tam_testkit::gmail::SCOPE_COMPOSE,
        tam_testkit::gmail::SCOPE_SEND,
        tam_testkit::gmail::SCOPE_READONLY,
    ]);
    let mut sender = alerts(&fake);
    assert!(sender.check().unwrap().contains("gmail.readonly"));
    fake.lose_reply_of_next_send();
    assert!(matches!(sender.send_alert(&alert), Outcome::Retry { .. }), "the answer was lost");
    assert!(matches!(sender.send_alert(&alert), Outcome::Delivered { .. }));
    assert_eq!(fake.sent("tam@vendor.example").len(), 1, "sent once");

    // Without it, alerts still go out, and tam doctor says what a lost answer costs.
    let plain = tam_testkit::gmail::FakeGmail::start();
    let mut sender = alerts(&plain);
    assert!(sender.check().unwrap().contains("sent again on retry"), "{}", sender.check().unwrap());
    assert!(matches!(sender.send_alert(&alert), Outcome::Delivered { .. }));
    assert_eq!(plain.stats().insufficient_scope, 0);
}

#[test]
fn a_batch_of_drafts_is_saved_at_once_within_each_mailboxs_quota() {
    let fake = tam_testkit::gmail::FakeGmail::start();
    fake.set_latency(Duration::from_millis(40));
    let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
    let auth =
        ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5)).unwrap();
    let gmail = Gmail::with_limits(auth, &fake.base_url(), Duration::from_secs(5), 8, 250, None);
    let mut mailbox = GmailDrafts::new(gmail);
    // 40 drafts to one rep cost 600 units: more than one second of that mailbox's quota.
    let mut batch = drafts_to(40, 1);
    batch.extend(drafts_to(60, 3).into_iter().skip(40));
    let outcomes = mailbox.create_drafts(&batch, &tam_core::concurrent::never);
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Delivered { .. })), "{outcomes:?}");
    let saved: usize = (0..3).map(|r| fake.drafts(&format!("rep{r}@vendor.example")).len()).sum();
    assert_eq!(saved, 60, "each draft saved once");
    let stats = fake.stats();
    assert_eq!(stats.rate_limited, 0, "no call went over a mailbox's quota");
    assert!(stats.peak_user_units_per_second <= 250, "{stats:?}");
    assert!(stats.peak_in_flight > 1, "drafts were saved at once: {stats:?}");
    // A retried batch finds every draft by its Message-ID and saves none again.
    let again = mailbox.create_drafts(&batch, &tam_core::concurrent::never);
    assert!(again.iter().all(|o| matches!(o, Outcome::Delivered { .. })));
    assert_eq!((0..3).map(|r| fake.drafts(&format!("rep{r}@vendor.example")).len()).sum::<usize>(), 60);
}

fn decoded_raw(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    let raw = v.pointer("/message/raw").or_else(|| v.get("raw")).and_then(serde_json::Value::as_str).unwrap();
    String::from_utf8(tam_testkit::unbase64(raw)).unwrap()
}

#[test]
fn a_follow_up_draft_joins_the_earlier_drafts_thread_with_the_compose_scope_alone() {
    // The delegation the README documents: gmail.compose and gmail.send, no read scope.
    let fake = tam_testkit::gmail::FakeGmail::start();
    let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
    let auth =
        ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5)).unwrap();
    let mut drafts = GmailDrafts::new(Gmail::new(auth, &fake.base_url(), Duration::from_secs(5)));
    let first = draft_of("a1", "Northwind", "ana@vendor.example", &[]);
    assert!(matches!(drafts.create_draft(&first), Outcome::Delivered { .. }));

    // The account worsened: the follow-up replies to the first outreach.
    let follow_up = draft_of("a2", "Northwind", "ana@vendor.example", &[])
        .replying_to(&IdemKey::from_stored("draft:a1:2026-03-29T07:00:00Z".into()));
    assert!(matches!(drafts.create_draft(&follow_up), Outcome::Delivered { .. }), "the reply draft lands");
    let saved = fake.drafts("ana@vendor.example");
    assert_eq!(saved.len(), 2);
    assert_eq!(saved[1].thread_id, saved[0].thread_id, "it joins the first draft's thread");
    assert_eq!(saved[1].subject.as_deref(), Some("Re: Northwind: our plan"), "Gmail threads on the subject too");
    assert_eq!(saved[1].in_reply_to.as_deref(), Some(saved[0].message_id.as_str()));
    assert_eq!(fake.stats().insufficient_scope, 0, "only what gmail.compose allows was asked");

    // Once the rep sent the first, it is no longer a draft: the follow-up still lands, in a
    // thread of its own, still naming the first in its reply headers.
    let after_send = draft_of("a3", "Northwind", "ana@vendor.example", &[])
        .replying_to(&IdemKey::from_stored("draft:a9:2026-03-29T07:00:00Z".into()));
    assert!(matches!(drafts.create_draft(&after_send), Outcome::Delivered { .. }));
    let saved = fake.drafts("ana@vendor.example");
    assert_ne!(saved[2].thread_id, saved[0].thread_id);
    assert!(saved[2].in_reply_to.is_some());
}

#[test]
fn drafts_are_created_once_as_the_rep_and_alerts_go_to_the_rep_only() {
    let tokens = Fake::start(vec![token(1), token(2), token(3), token(4)]);
    let api = Fake::start(vec![
        Answer::json(200, r#"{"resultSizeEstimate":0}"#),
        Answer::json(401, r#"{"error":{"code":401,"message":"Request had invalid authentication credentials."}}"#),
        Answer::json(200, r#"{"id":"r-1","message":{"id":"m-9","threadId":"t-9","labelIds":["DRAFT"]}}"#),
        Answer::json(
            200,
            r#"{"drafts":[{"id":"r-1","message":{"id":"m-9","threadId":"t-9"}}],"resultSizeEstimate":1}"#,
        ),
        // The alert is looked for in the alerts mailbox first (a send whose answer was lost).
        Answer::json(200, r#"{"resultSizeEstimate":0}"#),
        Answer::json(200, r#"{"id":"m-10","threadId":"t-10","labelIds":["SENT"]}"#),
        Answer::json(
            429,
            r#"{"error":{"code":429,"message":"User-rate limit exceeded","errors":[{"reason":"userRateLimitExceeded"}]}}"#,
        ),
    ]);
    let key = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_service_account.json");
    let sa = ServiceAccount::from_file(&key, Some(&format!("{}/token", tokens.url)), Duration::from_secs(5)).unwrap();
    let gmail = Gmail::new(sa, &api.url, Duration::from_secs(5));
    let mut drafts =
        GmailDrafts::new(gmail.clone()).with_bcc(vec![Email::parse("b", "crm-log@vendor.example").unwrap()]);
    let d = draft();
    assert_eq!(
        drafts.create_draft(&d),
        Outcome::Delivered {
            receipt: "https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-1, thread t-9)".into()
        }
    );
    assert_eq!(
        drafts.create_draft(&d),
        Outcome::Delivered {
            receipt: "https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-1, thread t-9)".into()
        },
        "found, not created again"
    );

    let mut alerts = GmailAlerts::new(gmail, Email::parse("f", "tam@vendor.example").unwrap());
    let alert = rep_alert();
    assert_eq!(alerts.send_alert(&alert), Outcome::Delivered { receipt: "gmail:sent/m-10".into() });
    assert!(matches!(alerts.send_alert(&alert), Outcome::Retry { .. }), "429 is retried by the outbox");

    let seen = api.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(paths[0].starts_with("/gmail/v1/users/me/drafts?q=rfc822msgid%3A%3C"), "{}", paths[0]);
    assert_eq!(paths[1], "/gmail/v1/users/me/drafts");
    assert_eq!(paths[2], "/gmail/v1/users/me/drafts");
    assert!(paths[3].starts_with("/gmail/v1/users/me/drafts?q=rfc822msgid%3A%3C"), "{}", paths[3]);
    assert!(paths[4].starts_with("/gmail/v1/users/me/messages?q=rfc822msgid%3A%3C"), "{}", paths[4]);
    assert_eq!(paths[5], "/gmail/v1/users/me/messages/send");
    let bearer = |i: usize| seen[i].headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()).unwrap();
    assert_eq!(
        (bearer(1), bearer(2)),
        ("Bearer ya29.t1".to_owned(), "Bearer ya29.t2".to_owned()),
        "the 401 refreshed the token once"
    );
    let mime = decoded_raw(&seen[2].body);
    assert!(mime.contains("To: ops@nw.example\r\n") && mime.contains("From: \"Ana\" <ana@vendor.example>"), "{mime}");
    assert!(mime.contains("Cc: cto@nw.example\r\n") && mime.contains("Bcc: crm-log@vendor.example\r\n"), "{mime}");
    let sent = decoded_raw(&seen[5].body);
    assert!(sent.contains("To: ana@vendor.example\r\n") && !sent.contains("nw.example"), "{sent}");
}

/// A mailbox that keeps a draft's Message-ID on the message it sends: the fate is found by it,
/// in one search, before the thread or a wider search is asked.
#[test]
fn a_sent_draft_that_kept_its_message_id_is_found_by_it() {
    use tam_connectors::gmail::{GmailFates, ReadScope};
    use tam_core::fate::{Seen, Watched};
    use tam_core::ports::DraftFates;
    let tokens = Fake::start(vec![token(1), token(2)]);
    let text = "Hello Northwind team,\r\nSUP-1 is with engineering.\r\nAna";
    let data = tam_connectors::google_auth::base64url(text.as_bytes());
    let api = Fake::start(vec![
        Answer::json(404, r#"{"error":{"code":404,"message":"Requested entity was not found."}}"#),
        Answer::json(
            200,
            r#"{"messages":[{"id":"18d2c0f6b1a2e3f9","threadId":"18d2c0f6b1a2e3f4"}],"resultSizeEstimate":1}"#,
        ),
        Answer::json(
            200,
            &serde_json::json!({"id": "18d2c0f6b1a2e3f9", "threadId": "18d2c0f6b1a2e3f4", "labelIds": ["SENT"],
                "internalDate": (tam_core::Timestamp::now().as_millisecond()).to_string(),
                "payload": {"mimeType": "text/plain", "body": {"data": data}}})
            .to_string(),
        ),
    ]);
    let key = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_service_account.json");
    let sa = ServiceAccount::from_file(&key, Some(&format!("{}/token", tokens.url)), Duration::from_secs(5)).unwrap();
    let fates = GmailFates::new(Gmail::new(sa, &api.url, Duration::from_secs(5)), ReadScope::Readonly);
    let draft = Watched {
        rep: Email::parse("r", "ana@vendor.example").unwrap(),
        receipt: "https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-1, thread 18d2c0f6b1a2e3f4)"
            .into(),
        message_id: "<abc@tam.local>".into(),
        thread: None,
        recipients: vec![Email::parse("c", "ops@nw.example").unwrap()],
        created_at: tam_core::Timestamp::now(),
        text: "Hello Northwind team,\nSUP-1 is with engineering.\nAna".into(),
        html_text: String::new(),
    };
    assert_eq!(fates.look(&draft), Ok(Seen::Sent { text: text.into(), whole: true }));
    let seen = api.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths[0], "/gmail/v1/users/me/drafts/r-1?format=minimal");
    assert!(paths[1].starts_with("/gmail/v1/users/me/messages?q=rfc822msgid%3A%3Cabc%40tam.local%3E"), "{paths:?}");
    assert_eq!(paths[2], "/gmail/v1/users/me/messages/18d2c0f6b1a2e3f9?format=full");
}
