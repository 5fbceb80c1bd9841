//! The Redis Streams event bus against a real `redis-server` (started per test on a free port).

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

mod plans;

use std::time::Duration;

use serde_json::json;
use tam_connectors::redis_bus::{Consumer, RedisBus};
use tam_core::comms::Event;
use tam_core::outbox::Outcome;
use tam_core::ports::EventBus;
use tam_core::{TenantId, Timestamp};

use tam_testkit::RedisServer as Redis;

fn tenant(id: &str) -> TenantId {
    TenantId::parse("t", id).unwrap()
}

fn event(t: &str, n: u32) -> Event {
    Event {
        event_id: format!("evt-{n}"),
        event_type: "escalation".into(),
        tenant_id: tenant(t),
        source_agent_id: "technical_account_manager".into(),
        call_chain: vec!["technical_account_manager".into()],
        priority: "high".into(),
        data: json!({"account_id": format!("a{n}"), "score": 10}),
        created_at: "2026-03-29T07:00:00Z".parse::<Timestamp>().unwrap(),
    }
}

fn delivered(o: Outcome) -> String {
    match o {
        Outcome::Delivered { receipt } => receipt,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn publish_consume_ack_round_trip() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    let receipt = delivered(bus.publish(&event("acme", 1)));
    assert!(receipt.starts_with("tam:acme:escalations#"), "{receipt}");
    let mut sales =
        Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "s1", Duration::from_secs(60)).unwrap();
    let got = sales.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, event("acme", 1), "every field survives the round trip");
    assert_eq!(sales.pending().unwrap(), 1);
    sales.ack(&got[0].id).unwrap();
    assert_eq!(sales.pending().unwrap(), 0);
    assert!(sales.next(10, Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn an_entry_left_by_a_dead_consumer_is_reclaimed_and_processed_once() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    delivered(bus.publish(&event("acme", 7)));
    let idle = Duration::from_millis(100);
    let mut doomed = Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "dies", idle).unwrap();
    let taken = doomed.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(taken.len(), 1);
    drop(doomed); // killed before it acknowledged
    let mut heir = Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "lives", idle).unwrap();
    assert!(heir.next(10, Duration::from_millis(10)).unwrap().is_empty(), "not idle long enough yet");
    std::thread::sleep(Duration::from_millis(150));
    let reclaimed = heir.next(10, Duration::from_millis(10)).unwrap();
    assert_eq!(reclaimed.iter().map(|e| e.event.event_id.as_str()).collect::<Vec<_>>(), ["evt-7"]);
    heir.ack(&reclaimed[0].id).unwrap();
    assert_eq!(heir.pending().unwrap(), 0);
    std::thread::sleep(Duration::from_millis(150));
    assert!(heir.next(10, Duration::from_millis(10)).unwrap().is_empty(), "processed once");
}

#[test]
fn a_repeated_event_is_processed_once_and_another_tenants_is_refused() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    delivered(bus.publish(&event("acme", 3)));
    delivered(bus.publish(&event("acme", 3))); // the outbox repeated it after a crash
    let mut sales =
        Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "s1", Duration::from_secs(60)).unwrap();
    let got = sales.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(got.len(), 1, "deduplicated by event_id");
    sales.ack(&got[0].id).unwrap();
    assert_eq!(sales.pending().unwrap(), 0, "the duplicate was acknowledged too");
    match bus.publish(&event("globex", 4)) {
        Outcome::Rejected { reason } => assert!(reason.contains("refused by the bus of tenant \"acme\""), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trimming_keeps_the_stream_bounded() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 200);
    for n in 0..3_000 {
        delivered(bus.publish(&event("acme", n)));
    }
    let mut c = Consumer::open(&redis.url, &tenant("acme"), "escalations", "g", "c", Duration::from_secs(60)).unwrap();
    let len = c.stream_len().unwrap();
    // Approximate trimming removes whole nodes (100 entries by default), so it keeps a little more.
    assert!((200..=400).contains(&len), "{len}");
}

#[test]
fn a_bus_that_is_down_asks_for_a_retry() {
    let redis = Redis::start();
    let url = redis.url.clone();
    drop(redis);
    let mut bus = RedisBus::new(&url, tenant("acme"), 100);
    assert!(matches!(bus.publish(&event("acme", 1)), Outcome::Retry { .. }));
}

mod chat {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use tam_connectors::google_auth::ServiceAccount;
    use tam_connectors::google_chat::{ChatApi, ChatWebhooks, WebhookConfig};
    use tam_core::comms::{AlertKind, RepAlert, Subject};
    use tam_core::outbox::{IdemKey, Outcome};
    use tam_core::ports::ChatNotifier;
    use tam_testkit::{Answer, Fake};

    fn alert(key: &str) -> RepAlert {
        RepAlert {
            tenant: super::tenant("acme"),
            rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
            chat_space: Some("spaces/AAA".into()),
            kind: AlertKind::Individual,
            subject: Subject::new("[tam] Northwind is red (10)"),
            text: "Northwind escalated.".into(),
            key: IdemKey::from_stored(key.into()),
        }
    }

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["response_body"].to_string()
    }

    #[test]
    fn alerts_reach_the_space_threaded_keyed_and_spaced_out() {
        let fake = Fake::start(vec![
            Answer::json(200, &fixture("message_create_response.json")),
            Answer::json(429, &fixture("error_429_resource_exhausted.json")),
            // Google echoing the request, key and token included.
            Answer::json(
                400,
                r#"{"error":{"code":400,"message":"Invalid JSON payload for /v1/spaces/AAA/messages?key=KEY_abcdef&token=SECRET_123"}}"#,
            ),
        ]);
        let url = format!("{}/v1/spaces/AAA/messages?key=KEY_abcdef&token=SECRET_123", fake.url);
        let config = WebhookConfig {
            spaces: HashMap::from([("spaces/AAA".to_owned(), "TAM_CHAT_AAA".to_owned())]),
            default_env: None,
            min_interval: Duration::from_millis(300),
            timeout: Duration::from_secs(5),
            concurrency: 1,
        };
        let lookup_url = url.clone();
        let mut chat =
            ChatWebhooks::with_lookup(config, Box::new(move |var| (var == "TAM_CHAT_AAA").then(|| lookup_url.clone())));
        let started = Instant::now();
        assert_eq!(
            chat.notify(&alert("email_alert:a1:x")),
            Outcome::Delivered { receipt: "spaces/AAAAbCdEfGh/messages/x1y2z3.x1y2z3".into() }
        );
        let busy = chat.notify(&alert("chat_alert:a1:x"));
        assert!(matches!(&busy, Outcome::Retry { reason, .. } if reason.contains("429")), "{busy:?}");
        assert!(started.elapsed() >= Duration::from_millis(300), "the second message to the space waited");
        let bad = chat.notify(&alert("chat_alert:a2:x"));
        assert!(
            matches!(&bad, Outcome::Rejected { reason } if !reason.contains("SECRET") && !reason.contains("KEY_abcdef") && reason.contains("[redacted]")),
            "{bad:?}"
        );

        let seen = fake.seen.lock().unwrap();
        assert!(seen[0].path.starts_with("/v1/spaces/AAA/messages?key=KEY_abcdef&token=SECRET_123&messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId="), "{}", seen[0].path);
        let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(body["text"], "*[tam] Northwind is red (10)*\n\nNorthwind escalated.");
        assert!(body["thread"]["threadKey"].as_str().unwrap().starts_with("tam-"));
        drop(seen);

        let mut unknown = ChatWebhooks::with_lookup(WebhookConfig::default(), Box::new(|_| None));
        assert!(
            matches!(unknown.notify(&alert("k")), Outcome::Rejected { reason } if reason.contains("no webhook configured for space \"spaces/AAA\""))
        );
    }

    #[test]
    fn the_chat_api_posts_as_the_app_with_the_key_as_request_id() {
        let token = |n: u32| {
            Answer::json(200, &format!(r#"{{"access_token":"ya29.c{n}","expires_in":3599,"token_type":"Bearer"}}"#))
        };
        let tokens = Fake::start(vec![token(1), token(2)]);
        let api = Fake::start(vec![
            Answer::json(
                401,
                r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#,
            ),
            Answer::json(200, &fixture("message_create_response.json")),
            Answer::json(429, &fixture("error_429_resource_exhausted.json")),
        ]);
        let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
        let uri = format!("{}/token", tokens.url);
        let auth = ServiceAccount::from_file(std::path::Path::new(&key), Some(&uri), Duration::from_secs(5)).unwrap();
        let mut chat = ChatApi::new(auth, &api.url, None, Duration::from_millis(200), Duration::from_secs(5));

        assert_eq!(
            chat.notify(&alert("chat_alert:a1:x")),
            Outcome::Delivered { receipt: "spaces/AAAAbCdEfGh/messages/x1y2z3.x1y2z3".into() },
            "a 401 refreshed the token once"
        );
        let busy = chat.notify(&alert("chat_alert:a2:x"));
        assert!(matches!(&busy, Outcome::Retry { reason, .. } if reason.contains("429")), "{busy:?}");
        let mut elsewhere = alert("chat_alert:a3:x");
        elsewhere.chat_space = Some("spaces/AAA/../../v1/other".into());
        assert!(matches!(chat.notify(&elsewhere), Outcome::Rejected { reason } if reason.contains("not a Chat space")));
        elsewhere.chat_space = None;
        assert!(matches!(chat.notify(&elsewhere), Outcome::Rejected { reason } if reason.contains("default_space")));

        let seen = api.seen.lock().unwrap();
        let digest = IdemKey::from_stored("chat_alert:a1:x".into()).digest();
        assert_eq!(
            seen[1].path,
            format!(
                "/v1/spaces/AAA/messages?messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={digest}"
            )
        );
        let bearer = |i: usize| seen[i].headers.iter().find(|(k, _)| k == "authorization").unwrap().1.clone();
        assert_eq!(
            (bearer(0), bearer(1), bearer(2)),
            ("Bearer ya29.c1".into(), "Bearer ya29.c2".into(), "Bearer ya29.c2".into())
        );
        let grant = &tokens.seen.lock().unwrap()[0].body;
        let claims = grant.split("assertion=").nth(1).unwrap().split('.').nth(1).unwrap().to_owned();
        assert!(!super::google_auth::decoded(&claims).contains("\"sub\""), "app auth names no subject");
    }
}

mod chat_secrets {
    use std::time::Duration;

    use tam_connectors::google_auth::ServiceAccount;
    use tam_connectors::google_chat::ChatApi;
    use tam_core::outbox::Outcome;
    use tam_core::ports::ChatNotifier;
    use tam_testkit::{Answer, ECHO, Fake};

    #[test]
    fn a_chat_api_error_that_echoes_the_request_carries_no_token() {
        let token = Answer::json(200, r#"{"access_token":"ya29.chat-secret-token","expires_in":3599}"#);
        let tokens = Fake::start(vec![token]);
        let echo = |status: u16| {
            Answer::echo(status, &format!(r#"{{"error":{{"code":{status},"message":"Invalid request: {ECHO}"}}}}"#))
        };
        let api = Fake::start(vec![echo(400), echo(503)]);
        let key = format!("{}/tests/fixtures/test_service_account.json", env!("CARGO_MANIFEST_DIR"));
        let uri = format!("{}/token", tokens.url);
        let auth = ServiceAccount::from_file(std::path::Path::new(&key), Some(&uri), Duration::from_secs(5)).unwrap();
        let private_key: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
        let pem_line = private_key["private_key"].as_str().unwrap().lines().nth(1).unwrap().to_owned();
        let mut chat = ChatApi::new(auth, &api.url, None, Duration::ZERO, Duration::from_secs(5));
        let outcomes =
            [chat.notify(&super::chat_alert("chat_alert:a1:x")), chat.notify(&super::chat_alert("chat_alert:a2:x"))];
        let seen = api.seen.lock().unwrap();
        assert!(seen[0].headers.iter().any(|(k, v)| k == "authorization" && v.contains("ya29.chat-secret-token")));
        for outcome in &outcomes {
            let reason = match outcome {
                Outcome::Rejected { reason } | Outcome::Retry { reason, .. } => reason,
                other => panic!("{other:?}"),
            };
            assert!(!reason.contains("ya29.chat-secret-token") && reason.contains("Bearer [redacted]"), "{reason}");
            assert!(!reason.contains(&pem_line), "{reason}");
        }
        assert!(matches!(outcomes[0], Outcome::Rejected { .. }) && matches!(outcomes[1], Outcome::Retry { .. }));
        // The grant carried the signed assertion, never the key itself.
        let grant = &tokens.seen.lock().unwrap()[0].body;
        assert!(!grant.contains(&pem_line));
    }
}

/// An alert to `spaces/AAA` keyed `key`.
fn chat_alert(key: &str) -> tam_core::comms::RepAlert {
    tam_core::comms::RepAlert {
        tenant: tenant("acme"),
        rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
        chat_space: Some("spaces/AAA".into()),
        kind: tam_core::comms::AlertKind::Individual,
        subject: tam_core::comms::Subject::new("[tam] Northwind is red (10)"),
        text: "Northwind escalated.".into(),
        key: tam_core::outbox::IdemKey::from_stored(key.into()),
    }
}

mod google_auth {
    use std::path::PathBuf;
    use std::time::Duration;

    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
    use tam_connectors::google_auth::{AuthError, ServiceAccount};
    use tam_testkit::{Answer, Fake};

    fn key_file() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_service_account.json")
    }

    pub(super) fn decoded(s: &str) -> String {
        String::from_utf8(tam_testkit::unbase64(s)).unwrap()
    }

    #[test]
    fn a_signed_assertion_becomes_a_cached_token() {
        let fake = Fake::start(vec![Answer::json(
            200,
            r#"{"access_token":"ya29.token-1","expires_in":3599,"token_type":"Bearer"}"#,
        )]);
        let uri = format!("{}/token", fake.url);
        let sa = ServiceAccount::from_file(&key_file(), Some(&uri), Duration::from_secs(5)).unwrap();
        let scope = "https://www.googleapis.com/auth/gmail.compose";
        assert_eq!(sa.token("ana@vendor.example", scope).unwrap(), "ya29.token-1");
        assert_eq!(
            sa.token("ana@vendor.example", scope).unwrap(),
            "ya29.token-1",
            "from the cache: the fake serves one answer only"
        );

        let seen = fake.seen.lock().unwrap()[0].clone();
        assert!(seen.body.starts_with("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion="));
        let jwt = seen.body.split("assertion=").nth(1).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let header: serde_json::Value = serde_json::from_slice(&tam_testkit::unbase64(parts[0])).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&tam_testkit::unbase64(parts[1])).unwrap();
        assert_eq!((header["alg"].as_str(), header["kid"].as_str()), (Some("RS256"), Some("test-key-1")));
        assert_eq!(
            (claims["sub"].as_str(), claims["scope"].as_str(), claims["aud"].as_str()),
            (Some("ana@vendor.example"), Some(scope), Some(uri.as_str()))
        );
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);
        let signed = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, sa.public_key())
            .verify(signed.as_bytes(), &tam_testkit::unbase64(parts[2]))
            .expect("the signature verifies with the account's public key");
    }

    #[test]
    fn refusals_say_what_an_admin_must_do() {
        let fake = Fake::start(vec![Answer::json(
            401,
            r#"{"error":"unauthorized_client","error_description":"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."}"#,
        )]);
        let sa = ServiceAccount::from_file(&key_file(), Some(&format!("{}/token", fake.url)), Duration::from_secs(5))
            .unwrap();
        let err = sa.token("ana@vendor.example", "https://www.googleapis.com/auth/gmail.send").unwrap_err();
        assert!(
            matches!(&err, AuthError::Refused(m) if m.contains("domain-wide delegation for these scopes is not granted")),
            "{err}"
        );
        let missing =
            ServiceAccount::from_file(std::path::Path::new("/nonexistent/key.json"), None, Duration::from_secs(1))
                .err()
                .unwrap();
        assert!(matches!(missing, AuthError::Key(m) if m.starts_with("cannot read /nonexistent/key.json")));
    }
}

mod gmail {
    use std::time::Duration;

    use tam_connectors::embedded::LocalMailbox;
    use tam_connectors::gmail::{Gmail, GmailAlerts, GmailDrafts};
    use tam_connectors::google_auth::ServiceAccount;
    use tam_core::comms::{
        AlertKind, Brief, CommKind, CustomerDraft, PeriodStats, RepAlert, ScorePoint, Subject, Written,
    };
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
            kind: CommKind::EscalationOutreach,
            tenant: super::tenant("acme"),
            account: AccountId::parse("a", account).unwrap(),
            account_name: name.into(),
            contacts: vec![Email::parse("c", "ops@nw.example").unwrap()],
            cc: cc.iter().map(|c| Email::parse("c", c).unwrap()).collect(),
            rep_name: "Ana".into(),
            rep_email: Email::parse("r", rep).unwrap(),
            as_of: "2026-03-29T07:00:00Z".parse().unwrap(),
            score: 10,
            status: HealthStatus::Red,
            trend: Trend::Declining,
            deductions: vec![],
            open_tickets: vec![],
            escalation_reason: None,
            alert_cause: None,
            release: None,
            reported: vec![],
            roadmap: vec![],
            period: None,
            profile: Default::default(),
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
            ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5))
                .unwrap();
        let mut drafts = GmailDrafts::new(Gmail::new(auth, &fake.base_url(), Duration::from_secs(5)));
        let review = review();
        assert!(matches!(drafts.create_draft(&review), Outcome::Delivered { .. }));
        let saved = fake.drafts("ana@vendor.example");
        assert_eq!(saved.len(), 1);
        assert_carries_its_chart(&saved[0].raw, &review);
        assert!(matches!(drafts.create_draft(&review), Outcome::Delivered { .. }));
        assert_eq!(fake.drafts("ana@vendor.example").len(), 1, "a retry finds it by its Message-ID");

        let dir = tempfile::tempdir().unwrap();
        let mut mailbox = LocalMailbox::open(&dir.path().join("tam.db"), dir.path()).unwrap();
        let Outcome::Delivered { receipt } = mailbox.create_draft(&review) else { panic!("not saved") };
        assert_carries_its_chart(&std::fs::read_to_string(receipt).unwrap(), &review);
    }

    fn draft() -> CustomerDraft {
        draft_of("a1", "Northwind", "ana@vendor.example", &["cto@nw.example"])
    }

    /// The email alert to the rep of Northwind's draft.
    fn rep_alert() -> RepAlert {
        RepAlert {
            tenant: super::tenant("acme"),
            rep: Email::parse("r", "ana@vendor.example").unwrap(),
            chat_space: None,
            kind: AlertKind::Individual,
            subject: Subject::new("[tam] Northwind is red (10)"),
            text: "Draft ready.".into(),
            key: IdemKey::from_stored("email_alert:a1:x".into()),
        }
    }

    /// `n` first drafts to `reps` reps, each with its own key.
    fn drafts_to(n: usize, reps: usize) -> Vec<CustomerDraft> {
        (0..n)
            .map(|i| {
                draft_of(&format!("a{i}"), &format!("Account {i}"), &format!("rep{}@vendor.example", i % reps), &[])
            })
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
            ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5))
                .unwrap();
        let gmail = Gmail::with_limits(auth, &fake.base_url(), Duration::from_secs(5), 8, 250);
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
            ServiceAccount::from_file(std::path::Path::new(&key), Some(&fake.token_uri()), Duration::from_secs(5))
                .unwrap();
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
        let sa =
            ServiceAccount::from_file(&key, Some(&format!("{}/token", tokens.url)), Duration::from_secs(5)).unwrap();
        let gmail = Gmail::new(sa, &api.url, Duration::from_secs(5));
        let mut drafts =
            GmailDrafts::new(gmail.clone()).with_bcc(vec![Email::parse("b", "crm-log@vendor.example").unwrap()]);
        let d = draft();
        assert_eq!(
            drafts.create_draft(&d),
            Outcome::Delivered {
                receipt: "https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-1)".into()
            }
        );
        assert_eq!(
            drafts.create_draft(&d),
            Outcome::Delivered {
                receipt: "https://mail.google.com/mail/u/ana@vendor.example/#drafts (draft r-1)".into()
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
        let bearer =
            |i: usize| seen[i].headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v.clone()).unwrap();
        assert_eq!(
            (bearer(1), bearer(2)),
            ("Bearer ya29.t1".to_owned(), "Bearer ya29.t2".to_owned()),
            "the 401 refreshed the token once"
        );
        let mime = decoded_raw(&seen[2].body);
        assert!(
            mime.contains("To: ops@nw.example\r\n") && mime.contains("From: \"Ana\" <ana@vendor.example>"),
            "{mime}"
        );
        assert!(mime.contains("Cc: cto@nw.example\r\n") && mime.contains("Bcc: crm-log@vendor.example\r\n"), "{mime}");
        let sent = decoded_raw(&seen[5].body);
        assert!(sent.contains("To: ana@vendor.example\r\n") && !sent.contains("nw.example"), "{sent}");
    }
}

mod notion {
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};
    use tam_connectors::notion::{Notion, NotionConfig, NotionError};
    use tam_testkit::{Answer, Fake};

    /// A recorded answer from `tests/fixtures/notion_<name>.json`, with its headers.
    fn recorded(name: &str) -> Answer {
        let path = format!("{}/tests/fixtures/notion_{name}.json", env!("CARGO_MANIFEST_DIR"));
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut answer = Answer::json(v["status"].as_u64().unwrap() as u16, &v["response_body"].to_string());
        if let Some(after) = v.pointer("/response_headers/retry-after").and_then(Value::as_str) {
            answer.headers.push(("retry-after", after.to_owned()));
        }
        answer
    }

    /// A recorded answer asking for a shorter wait than it did, to keep the test quick.
    fn hurried(name: &str) -> Answer {
        let mut answer = recorded(name);
        answer.headers = vec![("retry-after", "0".to_owned())];
        answer
    }

    fn client(fake: &Fake, per_second: f64, burst: u32) -> Notion {
        let config = NotionConfig {
            base_url: fake.url.clone(),
            requests_per_second: per_second,
            burst,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
            ..NotionConfig::default()
        };
        Notion::new("ntn_secret_token".into(), config)
    }

    #[test]
    fn a_query_follows_the_cursor_to_the_last_page() {
        let fake = Fake::start(vec![
            recorded("constructed_database_query_tickets_page1"),
            recorded("2022-06-28_database_query_empty"),
        ]);
        let notion = client(&fake, 100.0, 10);
        let filter = json!({"property": "Status", "select": {"equals": "open"}});
        let pages = notion.query_all("db1", Some(&filter), None).unwrap();
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0]["id"], "16cabc1e-edcd-8101-9000-000000000101");
        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let header = |i: usize, name: &str| seen[i].headers.iter().find(|(k, _)| k == name).unwrap().1.clone();
        assert_eq!(header(0, "notion-version"), "2022-06-28");
        assert_eq!(header(0, "authorization"), "Bearer ntn_secret_token");
        assert_eq!(seen[0].path, "/v1/databases/db1/query");
        let second: Value = serde_json::from_str(&seen[1].body).unwrap();
        assert_eq!(second["start_cursor"], "16cabc1e-edcd-8101-9000-000000000103");
        assert_eq!((second["page_size"].as_u64(), &second["filter"]), (Some(100), &filter));
    }

    #[test]
    fn rate_limits_wait_and_errors_say_what_to_do() {
        let fake = Fake::start(vec![
            recorded("error_429_rate_limited"),
            Answer::json(200, r#"{"object":"page","id":"p1"}"#),
            hurried("error_529_service_overload"),
            hurried("error_529_service_overload"),
            hurried("error_529_service_overload"),
            recorded("error_401_unauthorized"),
            Answer::json(
                404,
                r#"{"object":"error","status":404,"code":"object_not_found","message":"Could not find database with ID: db2."}"#,
            ),
            recorded("error_400_validation_rich_text_too_long"),
            Answer::json(502, "<html>bad gateway</html>"),
            Answer::json(200, r#"{"object":"page","id":"p2"}"#),
            Answer::json(
                500,
                r#"{"object":"error","status":500,"code":"internal_server_error","message":"Unexpected error."}"#,
            ),
        ]);
        let notion = client(&fake, 100.0, 10);
        let started = Instant::now();
        assert_eq!(notion.request("GET", "/v1/pages/p1", None).unwrap()["id"], "p1");
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After: 1 was honoured");

        let overloaded = notion.request("GET", "/v1/pages/p1", None).unwrap_err();
        assert!(matches!(&overloaded, NotionError::Unavailable(f) if f.attempts == 3 && f.code == "service_overload"));
        let refused = notion.request("GET", "/v1/users/me", None).unwrap_err();
        assert!(matches!(&refused, NotionError::Unauthorized(f) if f.message == "API token is invalid."));
        assert!(!refused.to_string().contains("ntn_secret_token"));
        let hidden = notion.request("POST", "/v1/databases/db2/query", Some(&json!({}))).unwrap_err().to_string();
        assert!(hidden.contains("/v1/databases/db2/query") && hidden.contains("share"), "{hidden}");
        let invalid = notion.request("PATCH", "/v1/blocks/b1/children", Some(&json!({}))).unwrap_err();
        assert!(matches!(&invalid, NotionError::Rejected(f) if f.status == 400 && f.code == "validation_error"));
        assert_eq!(notion.request("GET", "/v1/pages/p2", None).unwrap()["id"], "p2", "an HTML 502 is retried");
        let create = notion.request("POST", "/v1/pages", Some(&json!({}))).unwrap_err();
        assert!(
            matches!(&create, NotionError::Unavailable(f) if f.attempts == 1),
            "a page may have been made: {create:?}"
        );
        assert_eq!(notion.calls(), 11, "4xx are not retried; 429, 529 and 5xx are, three attempts at most");
    }

    #[test]
    fn health_is_written_to_the_account_page() {
        use tam_connectors::notion::crm::{HealthProperties, NotionCrm};
        use tam_core::comms::CrmUpdate;
        use tam_core::outbox::Outcome;
        use tam_core::ports::CrmWriter;

        let fake = Fake::start(vec![
            Answer::json(200, r#"{"object":"page","id":"16cabc1e-edcd-8200-9000-00000000a001"}"#),
            recorded("error_400_validation_rich_text_too_long"),
        ]);
        let mut crm = NotionCrm::new(std::sync::Arc::new(client(&fake, 100.0, 10)), HealthProperties::default());
        let update = CrmUpdate {
            tenant: super::tenant("acme"),
            account: tam_core::AccountId::parse("a", "16cabc1e-edcd-8200-9000-00000000a001").unwrap(),
            score: 55,
            status: tam_core::HealthStatus::Amber,
            scanned_at: "2024-01-15T06:00:00Z".parse().unwrap(),
            escalated: false,
        };
        assert_eq!(
            crm.update_health(&update),
            Outcome::Delivered { receipt: "notion:page/16cabc1e-edcd-8200-9000-00000000a001".into() }
        );
        assert!(
            matches!(crm.update_health(&update), Outcome::Rejected { reason } if reason.contains("validation_error"))
        );
        let mut local = update.clone();
        local.account = tam_core::AccountId::parse("a", "northwind/../x").unwrap();
        assert!(
            matches!(crm.update_health(&local), Outcome::Rejected { reason } if reason.contains("not a Notion page id"))
        );

        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "a page id that is not one is refused before any call");
        assert_eq!(seen[0].path, "/v1/pages/16cabc1e-edcd-8200-9000-00000000a001");
        let body: Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!(
            body,
            json!({"properties": {
                "Health Score": {"number": 55},
                "Health Status": {"select": {"name": "amber"}},
                "Last Health Scan": {"date": {"start": "2024-01-15T06:00:00Z"}},
                "Escalated": {"checkbox": false},
            }})
        );
    }

    #[test]
    fn calls_keep_to_the_average_rate() {
        let fake = Fake::start((0..6).map(|_| Answer::json(200, r#"{"object":"page"}"#)).collect());
        let notion = client(&fake, 20.0, 1);
        let started = Instant::now();
        for _ in 0..6 {
            notion.request("GET", "/v1/pages/p", None).unwrap();
        }
        assert!(started.elapsed() >= Duration::from_millis(240), "five waits of 50 ms: {:?}", started.elapsed());
    }

    /// Against the stateful fake: what a profile publish writes, and what it costs.
    mod profile {
        use std::sync::Arc;
        use std::time::Duration;

        use serde_json::{Value, json};
        use tam_connectors::notion::profile::NotionProfiles;
        use tam_connectors::notion::{Notion, NotionConfig, NotionError};
        use tam_core::comms::{PROFILE_SECTIONS, ProfileDocument, ProfileSection};
        use tam_testkit::notion::FakeNotion;

        const TOKEN: &str = "ntn_profile_token";

        fn client(fake: &FakeNotion) -> Arc<Notion> {
            let config = NotionConfig {
                base_url: fake.url.clone(),
                requests_per_second: 1000.0,
                burst: 100,
                backoff: Duration::from_millis(10),
                ..NotionConfig::default()
            };
            Arc::new(Notion::new(TOKEN.into(), config))
        }

        /// An account page in an accounts database with the "TAM Profile" link.
        fn account(fake: &FakeNotion) -> String {
            let db = fake.add_database("Accounts", &json!({"Name": {"title": {}}, "TAM Profile": {"url": {}}}));
            fake.add_page(&db, &json!({"Name": {"title": [{"text": {"content": "Northwind"}}]}}))
        }

        fn doc(account: &str, lines: [Vec<String>; 7]) -> ProfileDocument {
            ProfileDocument {
                tenant: tam_core::TenantId::parse("t", "acme").unwrap(),
                account: tam_core::AccountId::parse("a", account).unwrap(),
                account_name: "Northwind".into(),
                sections: PROFILE_SECTIONS
                    .iter()
                    .zip(lines)
                    .map(|(t, lines)| ProfileSection { title: (*t).into(), lines })
                    .collect(),
            }
        }

        fn texts(fake: &FakeNotion, page: &str) -> Vec<String> {
            fake.children(page)
                .iter()
                .map(|b| {
                    let kind = b["type"].as_str().unwrap();
                    let runs = b[kind]["rich_text"].as_array().unwrap();
                    runs.iter().map(|r| r["plain_text"].as_str().unwrap()).collect()
                })
                .collect()
        }

        #[test]
        fn a_big_profile_is_created_in_batches_of_100_with_long_lines_in_runs() {
            let fake = FakeNotion::start(TOKEN, 0.0, 1);
            let account = account(&fake);
            let stakeholders: Vec<String> = (0..240).map(|i| format!("Person {i}: role: engineer")).collect();
            let long = "x".repeat(4_500);
            let lines = [stakeholders, vec![long.clone()], vec![], vec![], vec![], vec![], vec![]];
            let notion = client(&fake);
            let page =
                NotionProfiles::new(Arc::clone(&notion), "TAM Profile".into()).publish(&doc(&account, lines)).unwrap();

            let blocks = fake.children(&page);
            assert_eq!(blocks.len(), 7 + 240 + 1 + 5, "a heading per section, a block per line, placeholders");
            let runs = |b: &Value| b["bulleted_list_item"]["rich_text"].as_array().map_or(0, Vec::len);
            let long_block = blocks.iter().find(|b| runs(b) == 3).expect("4,500 characters in three runs");
            assert_eq!(long_block["bulleted_list_item"]["rich_text"][2]["plain_text"].as_str().unwrap().len(), 500);
            let routes = fake.stats().routes;
            assert_eq!(routes.get("POST /v1/pages"), Some(&1));
            assert_eq!(
                routes.get("PATCH /v1/blocks/children"),
                Some(&2),
                "253 blocks: 100 with the page, then 100 and 53"
            );
            let linked = fake.page(&account).unwrap();
            let url = linked["properties"]["TAM Profile"]["url"].as_str().unwrap();
            assert!(url.ends_with(&page.replace('-', "")) || url.ends_with(&page), "{url} links {page}");
            assert_eq!(
                texts(&fake, &page)[..3],
                ["Stakeholder Map", "Person 0: role: engineer", "Person 1: role: engineer"]
            );
        }

        #[test]
        fn republishing_keeps_what_matches_and_writes_only_the_difference() {
            let fake = FakeNotion::start(TOKEN, 0.0, 1);
            let account = account(&fake);
            let notion = client(&fake);
            let profiles = NotionProfiles::new(Arc::clone(&notion), "TAM Profile".into());
            let comms =
                |n: usize| (0..n).map(|i| format!("2026-11-0{} | health checkin | Check-in {i}", i + 1)).collect();
            let health = |score: u8| vec![format!("Current Score: {score} | Status: amber"), "Last Scan: today".into()];
            let version = |n: usize, score: u8| {
                doc(
                    &account,
                    [vec!["Li Wei: role: CTO".into()], vec![], vec![], vec![], comms(n), health(score), vec![]],
                )
            };
            let page = profiles.publish(&version(1, 60)).unwrap();
            let before = notion.calls();
            assert_eq!(profiles.publish(&version(1, 60)).unwrap(), page, "found again by its title");
            assert_eq!(
                notion.calls() - before,
                2,
                "unchanged: read the account's children and the page's, write nothing"
            );

            let before = notion.calls();
            profiles.publish(&version(2, 60)).unwrap();
            assert_eq!(notion.calls() - before, 3, "a new communication is one appended block");
            let before = notion.calls();
            profiles.publish(&version(2, 45)).unwrap();
            assert_eq!(notion.calls() - before, 2 + 1, "the changed health line: its text updated in place");

            let texts = texts(&fake, &page);
            let headings: Vec<&String> = texts.iter().filter(|t| PROFILE_SECTIONS.contains(&t.as_str())).collect();
            assert_eq!(headings, PROFILE_SECTIONS, "every section once, in order");
            let at = texts.iter().position(|t| t == "Communication History").unwrap();
            assert_eq!(
                texts[at + 1..at + 4],
                [comms(2)[0].clone(), comms(2)[1].clone(), "Health Dashboard".to_owned()]
            );
            assert!(texts.contains(&"Current Score: 45 | Status: amber".to_owned()));
            assert!(!texts.contains(&"Current Score: 60 | Status: amber".to_owned()));

            // One stakeholder of eighty changed: one block updated, nothing else written.
            let people = |changed: &str| -> Vec<String> {
                (0..80).map(|i| format!("Person {i}: role: {}", if i == 3 { changed } else { "engineer" })).collect()
            };
            let many =
                |changed: &str| doc(&account, [people(changed), vec![], vec![], vec![], comms(2), health(45), vec![]]);
            profiles.publish(&many("engineer")).unwrap();
            let before = notion.calls();
            profiles.publish(&many("architect")).unwrap();
            assert_eq!(notion.calls() - before, 2 + 1, "read the pages, update one block");
            let now = self::texts(&fake, &page);
            assert!(now.contains(&"Person 3: role: architect".to_owned()));
            assert_eq!(now.iter().filter(|t| t.starts_with("Person ")).count(), 80);
            // A stakeholder removed from the middle: one delete.
            let mut fewer = people("architect");
            fewer.remove(10);
            let before = notion.calls();
            profiles.publish(&doc(&account, [fewer, vec![], vec![], vec![], comms(2), health(45), vec![]])).unwrap();
            assert!(notion.calls() - before <= 2 + 70, "at most the shifted tail is rewritten");
            assert_eq!(self::texts(&fake, &page).iter().filter(|t| t.starts_with("Person ")).count(), 79);
        }

        #[test]
        fn the_fake_refuses_what_notion_refuses_with_notions_own_message() {
            let fake = FakeNotion::start(TOKEN, 0.0, 1);
            let page = fake.add_parent_page("Scratch");
            let notion = client(&fake);
            let paragraph = |t: &str| json!({"paragraph": {"rich_text": [{"text": {"content": t}}]}});
            let too_many: Vec<Value> = (0..101).map(|i| paragraph(&i.to_string())).collect();
            let path = format!("/v1/blocks/{page}/children");
            let err = notion.request("PATCH", &path, Some(&json!({"children": too_many}))).unwrap_err();
            assert!(
                matches!(&err, NotionError::Rejected(f) if f.message == "body failed validation: body.children.length should be ≤ `100`, instead was `101`."),
                "{err}"
            );
            let long = json!({"children": [paragraph("ok"), paragraph(&"y".repeat(2001))]});
            let err = notion.request("PATCH", &path, Some(&long)).unwrap_err();
            assert!(
                matches!(&err, NotionError::Rejected(f) if f.message == "body failed validation: body.children[1].paragraph.rich_text[0].text.content.length should be ≤ `2000`, instead was `2001`."),
                "{err}"
            );
            // Notion counts UTF-16 units: 1,001 emoji are 2,002, refused; tam's runs fit.
            let emoji = json!({"children": [paragraph(&"😀".repeat(1001))]});
            let err = notion.request("PATCH", &path, Some(&emoji)).unwrap_err();
            assert!(matches!(&err, NotionError::Rejected(f) if f.message.ends_with("instead was `2002`.")), "{err}");
            let runs = tam_connectors::notion::profile::rich_text(&"😀".repeat(1001));
            let fits = json!({"children": [{"paragraph": {"rich_text": runs}}]});
            notion.request("PATCH", &path, Some(&fits)).unwrap();
            // A relation names rows of its database: a sub-page is none (so profiles link by URL).
            let db = fake.add_database("Accounts", &json!({"Name": {"title": {}}}));
            let row = fake.add_page(&db, &json!({"Name": {"title": [{"text": {"content": "Northwind"}}]}}));
            let linked = fake.add_database(
                "Links",
                &json!({"Name": {"title": {}}, "To": {"relation": {"database_id": db, "single_property": {}}}}),
            );
            let from = fake.add_page(&linked, &json!({"Name": {"title": [{"text": {"content": "x"}}]}}));
            let link = |to: &str| json!({"properties": {"To": {"relation": [{"id": to}]}}});
            notion.request("PATCH", &format!("/v1/pages/{from}"), Some(&link(&row))).unwrap();
            let err = notion.request("PATCH", &format!("/v1/pages/{from}"), Some(&link(&page))).unwrap_err();
            assert!(
                matches!(&err, NotionError::Rejected(f) if f.message.contains("not in the related database")),
                "{err}"
            );
            // An error that echoes the request never carries the token out.
            fake.fail_next(
                400,
                "validation_error",
                &format!("header authorization: Bearer {TOKEN} is malformed"),
                None,
            );
            let err = notion.request("GET", &path, None).unwrap_err();
            assert!(err.to_string().contains("Bearer [redacted]") && !err.to_string().contains(TOKEN), "{err}");
            fake.unshare(&page);
            let err = notion.request("GET", &path, None).unwrap_err();
            assert!(matches!(&err, NotionError::NotFound(f) if f.code == "object_not_found"), "{err}");
            assert!(err.to_string().contains("share the page or database with the integration"), "{err}");
        }

        #[test]
        fn a_client_faster_than_the_limit_is_slowed_by_429s_and_loses_nothing() {
            let fake = FakeNotion::start(TOKEN, 20.0, 2);
            let page = fake.add_parent_page("Scratch");
            fake.fail_next(529, "service_overload", "Service overloaded", Some(0));
            let notion = client(&fake);
            for _ in 0..8 {
                notion.request("GET", &format!("/v1/pages/{page}"), None).unwrap();
            }
            let stats = fake.stats();
            assert!(stats.rate_limited > 0, "the fake enforced its rate: {stats:?}");
            assert_eq!(stats.requests - stats.rate_limited - 1, 8, "every call got through in the end");
        }

        #[test]
        fn a_query_leaves_out_the_bots_edits_only_through_a_last_edited_by_property_in_both_versions() {
            use tam_connectors::notion::records::not_last_edited_by;
            use tam_testkit::notion::{BOT_USER, PERSON};

            let fake = FakeNotion::start(TOKEN, 0.0, 1);
            let name = |t: &str| json!({"Name": {"title": [{"text": {"content": t}}]}});
            let with =
                fake.add_database("With", &json!({"Name": {"title": {}}, "Last edited by": {"last_edited_by": {}}}));
            let without = fake.add_database("Without", &json!({"Name": {"title": {}}}));
            let notion = client(&fake);
            let bot = notion.bot_user_id().unwrap();
            assert_eq!(bot, BOT_USER, "GET /v1/users/me answers the integration's bot");
            let by_person = fake.add_page(&with, &name("typed in the app"));
            let by_tam = fake.add_page(&with, &name("then written by tam"));
            notion.request("PATCH", &format!("/v1/pages/{by_tam}"), Some(&json!({"properties": name("tam")}))).unwrap();
            let page = fake.page(&by_tam).unwrap();
            assert_eq!(page["last_edited_by"]["id"], BOT_USER);
            assert_eq!(page["properties"]["Last edited by"]["last_edited_by"]["id"], BOT_USER, "{page}");
            assert_eq!(fake.page(&by_person).unwrap()["last_edited_by"]["id"], PERSON);

            let filter = not_last_edited_by("Last edited by", &bot);
            let ids =
                |pages: Vec<Value>| pages.iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
            assert_eq!(ids(notion.query_all(&with, Some(&filter), None).unwrap()), [by_person.as_str()]);
            // The same through the data-source API (2025-09-03), once the database has two.
            fake.add_data_source(&with);
            assert_eq!(ids(notion.query_all(&with, Some(&filter), None).unwrap()), [by_person.as_str()]);
            fake.edit_as(PERSON, &by_tam, &name("edited again in the app"));
            assert_eq!(ids(notion.query_all(&with, Some(&filter), None).unwrap()).len(), 2, "a person edited last");

            // No such property: refused before any page is read, as Notion refuses it.
            let refused = |db: &str| match notion.query_all(db, Some(&filter), None) {
                Err(NotionError::Rejected(f)) => f,
                other => panic!("{other:?}"),
            };
            let f = refused(&without);
            assert_eq!((f.status, f.code.as_str()), (400, "validation_error"));
            assert_eq!(f.message, "Could not find property with name or id: Last edited by");
            fake.add_data_source(&without);
            assert_eq!(refused(&without).path.split('/').nth(2), Some("data_sources"), "2025-09-03 too");

            // What the writes answered, kept by the client for the caller to import.
            let written = notion.take_written_pages();
            assert_eq!(ids(written), [by_tam]);
            assert!(notion.take_written_pages().is_empty(), "taken once");
        }
    }
}

mod jira {
    use std::time::{Duration, Instant};

    use serde_json::{Value, json};
    use tam_connectors::jira::{AccountRule, Jira, JiraConfig, JiraError, JiraMapping, ticket_record};
    use tam_testkit::{Answer, Fake};

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/jira_{name}.json", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The recorded answer at `pointer` in a fixture, with its `Retry-After`.
    fn answer(v: &Value) -> Answer {
        let mut a = Answer::json(v["status"].as_u64().unwrap() as u16, &v["response_body"].to_string());
        if let Some(after) = v.pointer("/response_headers/Retry-After").and_then(Value::as_str) {
            a.headers.push(("retry-after", after.to_owned()));
        }
        a
    }

    fn client(fake: &Fake) -> Jira {
        let config = JiraConfig {
            base_url: fake.url.clone(),
            email: "tam@vendor.example".into(),
            page_size: 2,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };
        Jira::new(config, "api-token-123")
    }

    #[test]
    fn a_search_follows_the_page_token_and_issues_become_tickets() {
        let pages = fixture("constructed_search_jql_two_pages");
        let fake = Fake::start(vec![answer(&pages["page1"]), answer(&pages["page2"])]);
        let jira = client(&fake);
        let mut mapping = JiraMapping {
            account: AccountRule { field: "customfield_10002".into(), ..AccountRule::default() },
            ..JiraMapping::default()
        };
        mapping.account.accounts.insert("Acme Corp".into(), "acme".into());
        let mut records = Vec::new();
        let jql = "project = \"SUP\" ORDER BY updated ASC";
        let n = jira
            .search(jql, &mapping.fields(), |page| records.extend(page.iter().map(|i| ticket_record("t", i, &mapping))))
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            records[0],
            json!({"record": "ticket", "tenant_id": "t", "id": "SUP-101", "source": "jira", "account_id": "acme",
                   "subject": "Issue SUP-101", "priority": "Highest", "status": "open",
                   "created_at": "2024-01-10T09:15:00Z", "updated_at": "2024-01-10T09:15:00Z", "kind": "bug"})
        );
        assert_eq!(records[1]["created_at"], "2024-01-12T13:02:11.512Z", "+0100");
        assert_eq!(records[2]["created_at"], "2023-12-28T16:00:00Z", "-0800");
        assert_eq!(records[2]["account_id"], "Globex", "an unmapped organization is taken as the id");
        assert_eq!(records[2]["status"], "resolved");

        let seen = fake.seen.lock().unwrap();
        assert_eq!(seen[0].path, "/rest/api/3/search/jql");
        let first: Value = serde_json::from_str(&seen[0].body).unwrap();
        assert_eq!((first["jql"].as_str(), first["maxResults"].as_u64()), (Some(jql), Some(2)));
        assert!(first["fields"].as_array().unwrap().contains(&json!("customfield_10002")), "explicit fields");
        assert!(first.get("nextPageToken").is_none());
        let second: Value = serde_json::from_str(&seen[1].body).unwrap();
        assert_eq!(second["nextPageToken"], "CAEaAggB");
        let auth = seen[0].headers.iter().find(|(k, _)| k == "authorization").unwrap();
        assert_eq!(auth.1, format!("Basic {}", tam_core::mime::base64(b"tam@vendor.example:api-token-123")));
    }

    #[test]
    fn an_error_that_echoes_the_request_does_not_carry_the_credentials() {
        let credentials = tam_core::mime::base64(b"tam@vendor.example:api-token-123");
        let echo = format!(r#"{{"errorMessages":["Bad header: Authorization: Basic {credentials}"],"errors":{{}}}}"#);
        let fake = Fake::start(vec![Answer::json(400, &echo)]);
        let err = client(&fake).search("project = SUP", &[], |_| {}).unwrap_err().to_string();
        assert!(!err.contains(&credentials) && err.contains("[redacted]"), "{err}");
    }

    #[test]
    fn a_retry_after_longer_than_a_minute_gives_up_at_once_instead_of_sleeping_through_it() {
        let mut limited = answer(&fixture("error_429_rate_limited"));
        limited.headers = vec![("retry-after", "999999".to_owned())];
        let fake = Fake::start(vec![limited]);
        let started = Instant::now();
        let err = client(&fake).search("project = SUP", &[], |_| {}).unwrap_err();
        assert!(matches!(err, JiraError::Unavailable(_)), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5), "it slept {:?}", started.elapsed());
        assert_eq!(fake.seen.lock().unwrap().len(), 1, "the sync comes back later, not this call");
    }

    #[test]
    fn rate_limits_wait_and_bad_jql_says_what_jira_said() {
        let pages = fixture("constructed_search_jql_two_pages");
        let mut limited = answer(&fixture("error_429_rate_limited"));
        limited.headers = vec![("retry-after", "1".to_owned())];
        let fake = Fake::start(vec![
            limited,
            answer(&pages["page2"]),
            answer(&fixture("error_400_bad_jql")),
            Answer::json(401, ""),
            Answer::json(
                404,
                r#"{"errorMessages":["Issue does not exist or you do not have permission to see it."],"errors":{}}"#,
            ),
        ]);
        let jira = client(&fake);
        let started = Instant::now();
        assert_eq!(jira.search("project = SUP", &[], |_| {}).unwrap(), 1);
        assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After was honoured");
        let bad = jira.search("project = SUP foo", &[], |_| {}).unwrap_err();
        assert!(
            matches!(&bad, JiraError::Rejected(m) if m.contains("Expecting either 'OR' or 'AND' but got 'foo'")),
            "{bad}"
        );
        assert!(matches!(jira.search("project = SUP", &[], |_| {}), Err(JiraError::Unauthorized(_))));
        assert!(matches!(jira.issue("SUP-9", &[]), Err(JiraError::NotFound(_))));
        assert!(matches!(jira.issue("SUP-9/../x", &[]), Err(JiraError::Rejected(_))), "no path tricks");
        assert_eq!(jira.calls(), 5);
    }
}

mod kayako {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use serde_json::{Value, json};
    use tam_connectors::kayako::{
        Cases, CasesConfig, Classic, ClassicConfig, KayakoError, KayakoMapping, case_record, classic_record, signature,
    };
    use tam_testkit::kayako::FakeKayako;
    use tam_testkit::{Answer, Fake};

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/fixtures/kayako_{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn xml(status: u16, body: &str) -> Answer {
        Answer { headers: vec![("content-type", "text/xml".into())], ..Answer::json(status, body) }
    }

    fn classic(fake: &Fake, page_size: u32) -> Classic {
        let config = ClassicConfig {
            base_url: format!("{}/api/index.php", fake.url),
            api_key: "d75a00ef-08b6-5b04-5d29-d3b7ca46138a".into(),
            page_size,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };
        Classic::new(config, "secretkey-example")
    }

    /// The query parameters of a recorded request.
    fn query(path: &str) -> BTreeMap<String, String> {
        let query = path.split_once('?').unwrap().1;
        query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
    }

    fn decode(s: &str) -> String {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_classic_error_that_echoes_the_signed_url_does_not_carry_the_key() {
        let echo =
            "Bad request: /api/index.php?e=/Tickets/TicketPriority&apikey=d75a00ef-08b6-5b04-5d29-d3b7ca46138a&salt=1";
        let fake = Fake::start(vec![xml(400, echo)]);
        let err = classic(&fake, 1).priorities().unwrap_err().to_string();
        assert!(!err.contains("d75a00ef") && err.contains("[redacted]"), "{err}");
    }

    #[test]
    fn a_classic_server_that_caps_its_pages_loses_no_ticket() {
        // Asked for 50 a page, the server answers 1: only an empty page ends the list.
        let fake = Fake::start(vec![
            xml(200, &fixture("classic_tickets_listall_doc_example.xml")),
            xml(200, &fixture("classic_tickets_listall_klinki.xml")),
            xml(200, "<?xml version=\"1.0\"?><tickets></tickets>"),
        ]);
        let kayako = classic(&fake, 50);
        let mut subjects = Vec::new();
        let n =
            kayako.tickets("1", None, |t| subjects.push(t.text_of("subject").unwrap_or_default().to_owned())).unwrap();
        assert_eq!(n, 2, "{subjects:?}");
        let seen = fake.seen.lock().unwrap();
        let offsets: Vec<bool> = ["/50/0/", "/50/1/", "/50/2/"]
            .iter()
            .zip(seen.iter())
            .map(|(offset, request)| decode(&request.path).contains(offset))
            .collect();
        assert_eq!(
            offsets,
            [true, true, true],
            "the next page starts after what came: {:?}",
            seen.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        drop(seen);

        // A server that ignores the offset answers the same page again: that ends the list.
        let page = fixture("classic_tickets_listall_doc_example.xml");
        let stuck = Fake::start(vec![xml(200, &page), xml(200, &page), xml(200, &page)]);
        assert_eq!(classic(&stuck, 50).tickets("1", None, |_| {}).unwrap(), 1);
        assert_eq!(stuck.seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn classic_tickets_in_cdata_and_plain_xml_are_signed_paged_and_mapped() {
        let plain = fixture("classic_tickets_listall_doc_example.xml");
        let cdata = fixture("classic_tickets_listall_klinki.xml");
        let fake = Fake::start(vec![
            xml(200, &fixture("classic_ticketpriorities_constructed.xml")),
            xml(
                200,
                &format!("PHP Notice: undefined index in x.php\n{}", fixture("classic_ticketstatuses_constructed.xml")),
            ),
            xml(200, &plain),
            xml(200, &cdata),
            xml(200, "<?xml version=\"1.0\"?><tickets></tickets>"),
            Answer::json(401, "<html>Access Denied. Invalid signature</html>"),
        ]);
        let kayako = classic(&fake, 1);
        let priorities = kayako.priorities().unwrap();
        let statuses = kayako.statuses().unwrap();
        assert_eq!(priorities.get("3").map(String::as_str), Some("High"));
        assert!(statuses["3"].resolved && !statuses["1"].resolved);
        let mut mapping = KayakoMapping::default();
        mapping.accounts.insert("Test".into(), "acme".into());
        mapping.types.insert("1".into(), "feature_request".into());
        let mut records = Vec::new();
        let n = kayako
            .tickets("1,2", None, |t| records.push(classic_record("t", t, &priorities, &statuses, &mapping)))
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            records[0],
            Ok(
                json!({"record": "ticket", "tenant_id": "t", "id": "KAYAKO-2", "source": "kayako", "account_id": "acme",
                   "subject": "This is just a test", "priority": "Low", "status": "open",
                   "created_at": "2011-02-16T07:09:07Z", "updated_at": "2011-02-16T07:09:07Z",
                   "kind": "feature_request"})
            )
        );
        let unmapped = records[1].clone().unwrap_err();
        assert!(
            unmapped.contains("ticket KAYAKO-49 (OKE-160-11260): field account_id"),
            "no organization: named and skipped: {unmapped}"
        );
        let mut organized = fixture("classic_tickets_listall_klinki.xml");
        organized = organized.replace("<userorganization />", "<userorganization><![CDATA[Test]]></userorganization>");
        let root = tam_connectors::kayako::xml::parse(&organized).unwrap();
        let cdata = classic_record("t", &root.children[0], &priorities, &statuses, &mapping).unwrap();
        assert_eq!(cdata["subject"], "Close this ticket", "CDATA");
        assert_eq!(cdata["status"], "closed", "status 3 is Closed, mapped by title");

        let refused = kayako.priorities().unwrap_err();
        assert!(matches!(refused, KayakoError::Unauthorized(_)), "{refused}");
        assert!(!refused.to_string().contains("d75a00ef"), "the key stays out of messages");

        let seen = fake.seen.lock().unwrap();
        assert!(
            seen[2].path.contains("e=/Tickets/Ticket/ListAll/1,2/-1/-1/-1/1/0/lastactivity/DESC"),
            "{}",
            seen[2].path
        );
        assert!(
            seen[3].path.contains("/1/1/lastactivity/DESC"),
            "the next page starts after the first: {}",
            seen[3].path
        );
        for s in seen.iter() {
            let q = query(&s.path);
            assert_eq!(q["apikey"], "d75a00ef-08b6-5b04-5d29-d3b7ca46138a");
            assert_eq!(decode(&q["signature"]), signature("secretkey-example", &q["salt"]), "signed with its own salt");
        }
        assert_ne!(query(&seen[0].path)["salt"], query(&seen[1].path)["salt"], "a fresh salt per request");
    }

    #[test]
    fn an_incremental_classic_listing_stops_at_the_first_older_ticket() {
        let fake = Fake::start(vec![xml(200, &fixture("classic_tickets_listall_klinki.xml"))]);
        let since = "2014-01-16T00:00:00Z".parse().unwrap();
        let n = classic(&fake, 10).tickets("1", Some(since), |_| {}).unwrap();
        assert_eq!(n, 0, "its last activity (2014-01-15) is before the watermark");
        assert_eq!(fake.seen.lock().unwrap().len(), 1);
    }

    const PASSWORD: &str = "hunter2-Secret-pw";

    fn cases_client(url: &str, page_size: u32) -> Cases {
        let config = CasesConfig {
            base_url: url.to_owned(),
            email: "tam@vendor.example".into(),
            page_size,
            backoff: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };
        Cases::new(config, PASSWORD)
    }

    /// A helpdesk whose 105 cases reach their account three ways: a custom field `account`
    /// (cases 1..=100; even ones are feature requests), the requester's organization only
    /// (101..=104), and nothing at all (105, a requester without an organization).
    fn book() -> FakeKayako {
        let fake = FakeKayako::start("tam@vendor.example", PASSWORD);
        fake.add_organization(3, "Northwind Traders");
        fake.add_user(7, "Li Wei", "li@nw.example", Some(3));
        fake.add_user(8, "Ana Ruiz", "ana@solo.example", None);
        fake.add_case_field(11, "account", "Account");
        fake.add_case_type(1, "Question", "QUESTION");
        fake.add_case_type(5, "Feature request", "TASK");
        fake.add_priority(3, "High", 3);
        fake.add_status(2, "Open", "OPEN");
        fake.add_status(3, "Waiting", "PENDING");
        for id in 1..=105 {
            let fields = if id <= 100 { json!({"11": "acme"}) } else { json!({"11": ""}) };
            fake.add_case(
                &json!({"id": id, "subject": format!("Case {id}"), "status": if id % 3 == 0 { 3 } else { 2 },
                "priority": if id == 1 { Value::Null } else { json!(3) }, "type": if id % 2 == 0 { 5 } else { 1 },
                "requester": if id == 105 { 8 } else { 7 }, "custom_fields": fields,
                "created_at": "2024-01-10T09:15:00+00:00", "updated_at": "2024-01-12T10:00:00+00:00"}),
            );
        }
        fake
    }

    #[test]
    fn the_fake_serves_cases_in_the_recorded_shape() {
        // fixtures/kayako/v1_cases_list_constructed.json: every field a case has there, and
        // nested resources as bare references.
        let recorded: Value =
            serde_json::from_str::<Value>(&fixture("v1_cases_list_constructed.json")).unwrap()["response_body"].clone();
        let fake = book();
        let mut first = None;
        cases_client(&fake.url, 2).cases(None, "", |c| first = first.take().or(Some(c.clone()))).unwrap();
        let first = first.unwrap();
        for key in recorded["data"][0].as_object().unwrap().keys() {
            assert!(first.get(key).is_some(), "{key} missing from {first}");
        }
        assert_eq!(first["requester"], json!({"id": 7, "resource_type": "user"}), "not included: a reference");
        assert!(first.get("organization").is_none(), "a case has no organization");
    }

    #[test]
    fn json_cases_are_read_with_their_includes_and_each_mapped_to_its_account() {
        let fake = book();
        // More than the helpdesk serves a page: it clamps to 100, and the next page starts
        // after what came.
        let cases = cases_client(&fake.url, 250);
        let priorities = cases.priorities().unwrap();
        let statuses = cases.statuses().unwrap();
        let mapping = KayakoMapping {
            account_field: "account, organization".into(),
            accounts: BTreeMap::from([("Northwind Traders".into(), "northwind".into())]),
            ..KayakoMapping::default()
        };
        assert_eq!(mapping.includes(), "case_type,case_field,user,organization");
        let mut records = Vec::new();
        let n = cases
            .cases(None, &mapping.includes(), |c| records.push(case_record("t", c, &priorities, &statuses, &mapping)))
            .unwrap();
        assert_eq!(n, 105);
        assert_eq!(
            records[1],
            Ok(
                json!({"record": "ticket", "tenant_id": "t", "id": "KAYAKO-2", "source": "kayako", "account_id": "acme",
                   "subject": "Case 2", "priority": "High", "status": "open", "kind": "feature_request",
                   "created_at": "2024-01-10T09:15:00Z", "updated_at": "2024-01-12T10:00:00Z"})
            )
        );
        let accounts: Vec<&str> =
            records.iter().filter_map(|r| r.as_ref().ok()).map(|r| r["account_id"].as_str().unwrap()).collect();
        assert_eq!(accounts.iter().filter(|a| **a == "acme").count(), 100, "by the custom field");
        assert_eq!(accounts.iter().filter(|a| **a == "northwind").count(), 4, "by the requester's organization");
        let unknown = records[104].clone().unwrap_err();
        assert!(
            unknown.contains("ticket KAYAKO-105: field account_id: no account")
                && unknown.contains("custom field \"account\" is empty")
                && unknown.contains("requester 8 has no organization"),
            "{unknown}"
        );
        let first = records[0].as_ref().unwrap();
        assert_eq!((first["priority"].as_str(), first["kind"].as_str()), (Some("P4"), Some("question")));
        assert_eq!(records[2].as_ref().unwrap()["status"], "pending");

        let stats = fake.stats();
        assert_eq!(stats.basic_auths, 1, "basic auth once, then the session: {:?}", stats.targets);
        assert_eq!(stats.routes["/api/v1/cases.json"], 2, "one call per page, none per case: {:?}", stats.targets);
        assert!(stats.targets[2].ends_with("offset=0&limit=250&include=case_type,case_field,user,organization"));
        assert!(stats.targets[3].contains("offset=100&"), "{:?}", stats.targets);
    }

    #[test]
    fn without_its_includes_a_case_is_named_with_what_was_missing() {
        // What every sync did before asking for includes: the account was nowhere to be seen.
        let fake = book();
        let cases = cases_client(&fake.url, 100);
        let mapping = KayakoMapping { account_field: "organization".into(), ..KayakoMapping::default() };
        let mut records = Vec::new();
        cases
            .cases(None, "", |c| records.push(case_record("t", c, &BTreeMap::new(), &BTreeMap::new(), &mapping)))
            .unwrap();
        let err = records[0].clone().unwrap_err();
        assert!(err.contains("KAYAKO-1") && err.contains("requester 7 was not included"), "{err}");
    }

    #[test]
    fn an_expired_session_signs_in_again_once() {
        let fake = book();
        let cases = cases_client(&fake.url, 100);
        cases.statuses().unwrap();
        fake.expire_session();
        assert_eq!(cases.statuses().unwrap().len(), 2);
        assert_eq!(fake.stats().basic_auths, 2);
        let wrong = Cases::new(
            CasesConfig {
                base_url: fake.url.clone(),
                email: "tam@vendor.example".into(),
                page_size: 10,
                backoff: Duration::from_millis(10),
                timeout: Duration::from_secs(5),
            },
            "not-the-password",
        );
        assert!(matches!(wrong.statuses(), Err(KayakoError::Unauthorized(_))));
    }

    #[test]
    fn a_json_api_error_that_echoes_the_request_carries_no_credential() {
        let basic = format!("Basic {}", tam_testkit_base64(&format!("tam@vendor.example:{PASSWORD}")));
        let session = "1P8xuJ4UQIWrRin2HU35V390e1d28ad230d0957c783bed37a4abe1bf6adbbB5Bw0Ja5PWO0v26lEa6z";
        let echo = |status: u16| {
            Answer::echo(
                status,
                &format!(
                    r#"{{"status":{status},"errors":[{{"code":"X","message":"bad: {} pw={PASSWORD}"}}]}}"#,
                    tam_testkit::ECHO
                ),
            )
        };
        let two_factor = Answer::echo(
            403,
            &format!(
                r#"{{"status":403,"auth_token":"2fa-token-0123456789","errors":[{{"code":"OTP_EXPECTED","message":"send X-Token: 2fa-token-0123456789 with {}"}}]}}"#,
                tam_testkit::ECHO
            ),
        );
        let fake = Fake::start(vec![
            echo(400),
            Answer::json(200, &format!(r#"{{"status":200,"data":[],"session_id":"{session}"}}"#)),
            echo(400),
            echo(503),
            echo(503),
            echo(503),
            two_factor,
            echo(401),
        ]);
        let cases = cases_client(&fake.url, 10);
        let mut errors = vec![cases.statuses().unwrap_err()];
        cases.priorities().unwrap();
        errors.push(cases.statuses().unwrap_err());
        errors.push(cases.statuses().unwrap_err());
        let fresh = cases_client(&fake.url, 10);
        errors.push(fresh.statuses().unwrap_err());
        errors.push(fresh.statuses().unwrap_err());
        let seen = fake.seen.lock().unwrap();
        let sent = |i: usize, name: &str| seen[i].headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(sent(0, "authorization").as_deref(), Some(basic.as_str()), "the echo had the secret to leak");
        assert_eq!(sent(2, "x-session-id").as_deref(), Some(session));
        let encoded = basic.trim_start_matches("Basic ");
        for err in &errors {
            let text = err.to_string();
            for secret in [PASSWORD, encoded, session, "2fa-token-0123456789"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
            assert!(text.contains("[redacted]"), "{text}");
        }
        assert!(errors[3].to_string().contains("second sign-in step"), "{}", errors[3]);
    }

    fn tam_testkit_base64(text: &str) -> String {
        tam_core::mime::base64(text.as_bytes())
    }
}
