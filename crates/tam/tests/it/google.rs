//! Google end to end: a scan creates the customer draft in the rep's own Gmail, mails the rep
//! from the alerts mailbox and posts to the rep's space with the Chat API; alerts refused while
//! Gmail and Chat were down wait in the outbox, the other effects delivered, and go out once
//! each when they are next due.

use tam_testkit::{Answer, Fake, unbase64};

use crate::{Run, TestHome, repo};

const BOOK: &str = r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@v.example","contacts":["ops@nw.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}
{"record":"ticket","tenant_id":"acme","id":"T-1","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"API down"}
{"record":"ticket","tenant_id":"acme","id":"T-2","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"SSO broken"}
{"record":"ticket","tenant_id":"acme","id":"T-3","account_id":"a1","priority":"P2","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"Exports slow"}
"#;

fn token(n: u32) -> Answer {
    Answer::json(200, &format!(r#"{{"access_token":"ya29.t{n}","expires_in":3599,"token_type":"Bearer"}}"#))
}

fn header<'a>(seen: &'a tam_testkit::Seen, name: &str) -> &'a str {
    seen.headers.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The plain text of a `messages.send` request: base64url MIME around a base64 body.
fn alert_text(request: &str) -> String {
    let request: serde_json::Value = serde_json::from_str(request).unwrap();
    let raw = request["raw"].as_str().unwrap();
    let mime = String::from_utf8(unbase64(raw)).unwrap();
    let (_, body) = mime.split_once("\r\n\r\n").unwrap();
    String::from_utf8(unbase64(body)).unwrap()
}

#[test]
fn a_scan_drafts_in_the_reps_gmail_and_an_outage_is_retried_later() {
    // Tokens: doctor (send, readonly), the rep's compose, then for each alert attempt the
    // alerts mailbox's readonly (to look for an earlier send) and send.
    let tokens = Fake::start((1..=7).map(token).collect());
    let not_sent_before = || Answer::json(200, r#"{"resultSizeEstimate":0}"#);
    let gmail = Fake::start(vec![
        Answer::json(200, r#"{"resultSizeEstimate":0}"#),
        Answer::json(200, r#"{"id":"r-1","message":{"id":"m-1","threadId":"t-1","labelIds":["DRAFT"]}}"#),
        not_sent_before(),
        Answer::json(
            503,
            r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#,
        ),
        not_sent_before(),
        Answer::json(200, r#"{"id":"m-2","threadId":"t-2","labelIds":["SENT"]}"#),
    ]);
    let chat_tokens = Fake::start((1..=3).map(token).collect());
    let chat = Fake::start(vec![
        Answer::json(
            503,
            r#"{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}"#,
        ),
        Answer::json(200, r#"{"name":"spaces/AAA/messages/m.1","thread":{"name":"spaces/AAA/threads/t"}}"#),
    ]);
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[outbox]\nbase_delay_ms = 200\n\n[mail]\nkind = \"gmail\"\nalerts_from = \"tam-alerts@v.example\"\nbase_url = \"{}\"\ntoken_uri = \"{}/token\"\ntimeout_ms = 5000\n\n[chat]\nkind = \"api\"\ndefault_space = \"spaces/AAA\"\nbase_url = \"{}\"\ntoken_uri = \"{}/token\"\nmin_interval_ms = 0\n",
            gmail.url, tokens.url, chat.url, chat_tokens.url
        ),
    );
    let key = repo().join("crates/tam-connectors/tests/fixtures/test_service_account.json");
    let env = [("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap())];
    let tam = |args: &[&str]| -> Run { home.tam_env(args, &env) };

    let doctor = tam(&["doctor"]);
    assert!(doctor.stdout.contains("ok    mail (gmail)"), "{}{}", doctor.stdout, doctor.stderr);
    assert!(doctor.stdout.contains("ok    chat (api)"), "{}", doctor.stdout);
    let book = home.file("book.ndjson", BOOK);
    assert_eq!(tam(&["import", book.to_str().unwrap()]).code, 0);
    let scan = tam(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    assert!(scan.stdout.contains("2 to retry, 0 failed"), "{}{}", scan.stdout, scan.stderr);
    let waiting = tam(&["outbox", "list", "--status", "pending", "--json"]);
    let waiting: serde_json::Value = serde_json::from_str(&waiting.stdout).unwrap();
    let effects: Vec<&str> = waiting.as_array().unwrap().iter().map(|e| e["effect"].as_str().unwrap()).collect();
    assert_eq!(effects, ["email_alert", "chat_alert"], "the CRM, the event and the draft were delivered: {waiting}");
    assert!(waiting[0]["last_error"].as_str().unwrap_or_default().contains("Gmail answered HTTP 503"), "{waiting}");
    assert!(
        waiting[1]["last_error"].as_str().unwrap_or_default().contains("Google Chat answered HTTP 503"),
        "{waiting}"
    );

    // Both are back by the time the alerts are next due.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let retry = tam(&["outbox", "retry"]);
    assert!(
        retry.stdout.contains("revived 0 failed effect(s); delivered 2, will retry 0, failed 0"),
        "{}{}",
        retry.stdout,
        retry.stderr
    );

    let alert = alert_text(&gmail.seen.lock().unwrap()[3].body);
    assert!(
        alert.contains("https://mail.google.com/mail/u/ana@v.example/#drafts"),
        "the alert links the drafts: {alert}"
    );

    let seen = gmail.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(paths[0].starts_with("/gmail/v1/users/me/drafts?q=rfc822msgid"), "{paths:?}");
    assert_eq!(paths[1], "/gmail/v1/users/me/drafts");
    assert!(paths[2].starts_with("/gmail/v1/users/me/messages?q=rfc822msgid") && paths[4] == paths[2], "{paths:?}");
    assert_eq!((paths[3], paths[5]), ("/gmail/v1/users/me/messages/send", "/gmail/v1/users/me/messages/send"));
    assert_eq!(header(&seen[1], "authorization"), "Bearer ya29.t3", "the draft is made as the rep");
    assert_eq!(header(&seen[3], "authorization"), "Bearer ya29.t5", "the alert comes from the alerts mailbox");
    let posts = chat.seen.lock().unwrap();
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[0].path, posts[1].path, "the retry carries the same requestId, so Chat keeps one message");
    assert!(posts[0].path.starts_with("/v1/spaces/AAA/messages?") && posts[0].path.contains("requestId="));
    assert_eq!(chat_tokens.seen.lock().unwrap().len(), 3, "doctor, the scan, the retry");
    let grants: Vec<String> = tokens.seen.lock().unwrap().iter().map(|s| s.body.clone()).collect();
    assert_eq!(grants.len(), 7, "doctor's two, the rep's compose, the alerts mailbox's readonly and send, twice");
}

#[test]
fn a_bad_gmail_key_file_does_not_stop_a_scan_and_the_effects_wait_saying_why() {
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file("home/tam.toml", "[mail]\nkind = \"gmail\"\nalerts_from = \"tam-alerts@v.example\"\n");
    let key = home.file("key.json", "{not a key");
    let env = [("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap())];
    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    let scan = home.tam_env(&["scan", "--as-of", "2026-03-29T07:00:00Z", "--json"], &env);
    assert_eq!(scan.code, 3, "scored and stored, not delivered: {}{}", scan.stdout, scan.stderr);
    let report: serde_json::Value = serde_json::from_str(scan.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(report["accounts"][0]["status"], "red", "the account was scored: {report}");
    assert!(scan.stderr.contains("the effects wait in the outbox"), "{}", scan.stderr);
    let outbox: serde_json::Value = serde_json::from_str(&home.ok(&["outbox", "list", "--json"])).unwrap();
    let rows = outbox.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter().all(|r| r["status"] == "pending"
            && r["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("TAM_GOOGLE_SERVICE_ACCOUNT_FILE") || e.contains("key"))),
        "{outbox}"
    );
}

#[test]
fn a_chat_api_error_that_echoes_the_token_leaves_it_out_of_the_outbox_and_the_logs() {
    const TOKEN: &str = "ya29.chat-secret-token";
    let chat_tokens =
        Fake::start(vec![Answer::json(200, &format!(r#"{{"access_token":"{TOKEN}","expires_in":3599}}"#))]);
    let chat = Fake::start(vec![Answer::echo(
        400,
        &format!(r#"{{"error":{{"code":400,"message":"Invalid request: {}"}}}}"#, tam_testkit::ECHO),
    )]);
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[chat]\nkind = \"api\"\ndefault_space = \"spaces/AAA\"\nbase_url = \"{}\"\ntoken_uri = \"{}/token\"\nmin_interval_ms = 0\n",
            chat.url, chat_tokens.url
        ),
    );
    let key = repo().join("crates/tam-connectors/tests/fixtures/test_service_account.json");
    let env = [("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap())];
    let book = home.file("book.ndjson", BOOK);
    assert_eq!(home.tam_env(&["import", book.to_str().unwrap()], &env).code, 0);
    let scan = home.tam_env(&["scan", "--as-of", "2026-03-29T07:00:00Z"], &env);
    let outbox = home.tam_env(&["outbox", "list", "--json"], &env);
    let posts = chat.seen.lock().unwrap();
    assert_eq!(posts.len(), 1, "{}{}", scan.stdout, scan.stderr);
    assert_eq!(header(&posts[0], "authorization"), format!("Bearer {TOKEN}"), "the echo had the token to leak");
    let rows: serde_json::Value = serde_json::from_str(&outbox.stdout).unwrap();
    let alert = rows.as_array().unwrap().iter().find(|r| r["effect"] == "chat_alert").unwrap();
    let error = alert["last_error"].as_str().unwrap();
    assert!(error.contains("Bearer [redacted]"), "{error}");
    for text in [&scan.stdout, &scan.stderr, &outbox.stdout, &outbox.stderr] {
        assert!(!text.contains(TOKEN), "{text}");
    }
}

/// With the Chat API, an alert's feedback links are card buttons ("Useful", "Not useful"),
/// each a link to the feedback page of `[api] public_url`; the text keeps them too.
#[test]
fn a_chat_api_alert_carries_its_feedback_links_as_card_buttons() {
    let chat_tokens = Fake::start(vec![token(1)]);
    let chat = Fake::start(vec![Answer::json(
        200,
        r#"{"name":"spaces/AAA/messages/m.1","thread":{"name":"spaces/AAA/threads/t"}}"#,
    )]);
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[api]\npublic_url = \"https://tam.vendor.example\"\n[api.feedback_secrets]\nacme = \"TAM_FEEDBACK_SECRET_ACME\"\n\
             [chat]\nkind = \"api\"\ndefault_space = \"spaces/AAA\"\nbase_url = \"{}\"\ntoken_uri = \"{}/token\"\nmin_interval_ms = 0\n",
            chat.url, chat_tokens.url
        ),
    );
    let key = repo().join("crates/tam-connectors/tests/fixtures/test_service_account.json");
    let env = [
        ("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap()),
        ("TAM_FEEDBACK_SECRET_ACME", "a-feedback-secret-of-some-length"),
    ];
    let book = home.file("book.ndjson", BOOK);
    assert_eq!(home.tam_env(&["import", book.to_str().unwrap()], &env).code, 0);
    let scan = home.tam_env(&["scan", "--as-of", "2026-03-29T07:00:00Z"], &env);
    let posts = chat.seen.lock().unwrap();
    assert_eq!(posts.len(), 1, "{}{}", scan.stdout, scan.stderr);
    let body: serde_json::Value = serde_json::from_str(&posts[0].body).unwrap();
    let section = &body["cardsV2"][0]["card"]["sections"][0];
    assert_eq!(section["header"], "Northwind", "{body}");
    let buttons = section["widgets"][0]["buttonList"]["buttons"].as_array().unwrap();
    let labels: Vec<&str> = buttons.iter().map(|b| b["text"].as_str().unwrap()).collect();
    assert_eq!(labels, ["Useful", "Not useful"]);
    for b in buttons {
        let url = b["onClick"]["openLink"]["url"].as_str().unwrap();
        assert!(url.starts_with("https://tam.vendor.example/feedback/"), "{url}");
        assert!(body["text"].as_str().unwrap().contains(url), "the text keeps the link too");
    }
}
