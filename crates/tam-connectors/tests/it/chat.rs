//! Google Chat: incoming webhooks and the Chat API as an app, against fake servers speaking
//! their wire format (pacing per space, 429s, errors that echo the request).

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
        tenant: crate::tenant("acme"),
        rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
        chat_space: Some("spaces/AAA".into()),
        kind: AlertKind::Individual,
        subject: Subject::new("[tam] Northwind is red (10)"),
        text: "Northwind escalated.".into(),
        key: IdemKey::from_stored(key.into()),
        feedback: Vec::new(),
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
        format!("/v1/spaces/AAA/messages?messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={digest}")
    );
    let bearer = |i: usize| seen[i].headers.iter().find(|(k, _)| k == "authorization").unwrap().1.clone();
    assert_eq!(
        (bearer(0), bearer(1), bearer(2)),
        ("Bearer ya29.c1".into(), "Bearer ya29.c2".into(), "Bearer ya29.c2".into())
    );
    let grant = &tokens.seen.lock().unwrap()[0].body;
    let claims = grant.split("assertion=").nth(1).unwrap().split('.').nth(1).unwrap().to_owned();
    assert!(!crate::google_auth::decoded(&claims).contains("\"sub\""), "app auth names no subject");
}

mod secrets {
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
            [chat.notify(&crate::chat_alert("chat_alert:a1:x")), chat.notify(&crate::chat_alert("chat_alert:a2:x"))];
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

#[test]
fn channels_sharing_one_webhook_client_keep_one_pace_per_space() {
    // The scheduler and an API task each hold a set of channels; the space's pace is one.
    let ok = || Answer::json(200, r#"{"name": "spaces/AAA/messages/m"}"#);
    let fake = Fake::start(vec![ok(), ok()]);
    let config = WebhookConfig {
        spaces: HashMap::from([("spaces/AAA".to_owned(), "TAM_CHAT_AAA".to_owned())]),
        default_env: None,
        min_interval: Duration::from_millis(400),
        timeout: Duration::from_secs(5),
        concurrency: 1,
    };
    let url = format!("{}/v1/spaces/AAA/messages?key=k&token=t", fake.url);
    let shared = tam_connectors::google_chat::Shared::new(ChatWebhooks::with_lookup(
        config,
        Box::new(move |var| (var == "TAM_CHAT_AAA").then(|| url.clone())),
    ));
    let (mut scheduler, mut api) = (shared.clone(), shared);
    let started = Instant::now();
    assert!(matches!(scheduler.notify(&alert("email_alert:a1:x")), Outcome::Delivered { .. }));
    assert!(matches!(api.notify(&alert("email_alert:a2:x")), Outcome::Delivered { .. }));
    assert!(started.elapsed() >= Duration::from_millis(400), "the second post waited for the first's pace");
}
