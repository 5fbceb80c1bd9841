//! What reps made of the drafts, read back from a strict fake Gmail: the rep sends one as
//! written, edits and sends one, sends one under a new subject (a new thread), deletes one;
//! `tam drafts sync` learns each fate and `tam report drafts` counts them.

use tam_testkit::gmail::{FakeGmail, SCOPE_COMPOSE, SCOPE_METADATA, SCOPE_READONLY, SCOPE_SEND};

use crate::{Run, TestHome, repo};

const REP: &str = "ana@vendor.example";

/// Four red accounts of one rep: the scan drafts an outreach to each.
fn book() -> String {
    let mut book = String::new();
    for n in 1..=4 {
        book.push_str(&format!(
            r#"{{"record":"account","tenant_id":"acme","id":"a{n}","name":"Account {n}","rep_name":"Ana","rep_email":"{REP}","contacts":["ops@a{n}.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}}
{{"record":"ticket","tenant_id":"acme","id":"T-{n}","account_id":"a{n}","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"Sync down"}}
{{"record":"ticket","tenant_id":"acme","id":"U-{n}","account_id":"a{n}","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"SSO down"}}
"#
        ));
    }
    book
}

/// A home whose drafts go to `gmail`, read back with `read_scope`; and the variable naming the
/// service-account key every run needs.
fn gmail_home(gmail: &FakeGmail, read_scope: &str) -> (TestHome, [(&'static str, String); 1]) {
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[mail]\nkind = \"gmail\"\nalerts_from = \"tam-alerts@vendor.example\"\nbase_url = \"{}\"\ntoken_uri = \"{}\"\nread_scope = \"{read_scope}\"\n",
            gmail.base_url(),
            gmail.token_uri()
        ),
    );
    let key = repo().join("crates/tam-connectors/tests/fixtures/test_service_account.json");
    (home, [("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap().to_owned())])
}

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr))
}

#[test]
fn each_drafts_fate_is_read_from_the_reps_gmail_and_counted() {
    let gmail = FakeGmail::start();
    gmail.grant(&[SCOPE_COMPOSE, SCOPE_SEND, SCOPE_READONLY]);
    let (home, env) = gmail_home(&gmail, "gmail.readonly");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tam = |args: &[&str]| home.tam_env(args, &env);

    let doctor = tam(&["doctor"]);
    assert!(doctor.stdout.contains("ok    mail (draft fates)"), "{}{}", doctor.stdout, doctor.stderr);
    let book = home.file("book.ndjson", &book());
    assert_eq!(tam(&["import", book.to_str().unwrap()]).code, 0);
    let scan = tam(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    assert_eq!(scan.code, 0, "{}{}", scan.stdout, scan.stderr);
    let drafts = gmail.drafts(REP);
    assert_eq!(drafts.len(), 4, "one outreach draft per red account");

    // Just saved: all four are still drafts, and their threads are now known.
    let first = json(&tam(&["drafts", "sync", "--json"]));
    assert_eq!(first[0]["looked"], 4, "{first}");
    assert_eq!(first[0]["fates"], serde_json::json!({"draft": 4}), "{first}");

    // The rep, in Gmail: one sent as written, one rewritten and sent, one sent under a new
    // subject (a new thread, found by searching Sent mail), one deleted.
    let draft_of = |account: &str| {
        drafts
            .iter()
            .find(|d| d.to.as_deref() == Some(&format!("ops@{account}.example")[..]))
            .and_then(|d| d.draft_id.clone())
            .unwrap()
    };
    let sent = gmail.user_sends_draft(REP, &draft_of("a1"), None, None);
    assert_ne!(sent.message_id, drafts[0].message_id, "Gmail gives a sent message a Message-ID of its own");
    gmail.user_sends_draft(REP, &draft_of("a2"), Some("Hi, we are on it. Ana"), None);
    gmail.user_sends_draft(REP, &draft_of("a3"), None, Some("Account 3: where things stand"));
    gmail.user_deletes_draft(REP, &draft_of("a4"));

    let second = json(&tam(&["drafts", "sync", "--json"]));
    assert_eq!(second[0]["fates"], serde_json::json!({"deleted": 1, "edited": 1, "sent": 2}), "{second}");
    assert_eq!(second[0]["failed"], 0, "{second}");
    // Decided drafts are no longer looked at.
    let third = json(&tam(&["drafts", "sync", "--json"]));
    assert_eq!(third[0]["looked"], 0, "{third}");

    let report = json(&tam(&["report", "drafts", "--json"]));
    let row = &report[0]["rows"][0];
    assert_eq!(
        (row["kind"].as_str(), row["generator"].as_str(), row["drafts"].as_u64()),
        (Some("escalation_outreach"), Some("template"), Some(4)),
        "{report}"
    );
    assert_eq!(
        [&row["still_draft"], &row["sent_unchanged"], &row["sent_edited"], &row["deleted"], &row["unknown"]],
        [0, 2, 1, 1, 0],
        "{report}"
    );
    assert_eq!(row["acceptance_rate"], 0.75, "sent 3 of 4 decided: {report}");
    let changed = row["mean_changed"].as_f64().unwrap();
    assert!(changed > 0.8 && changed <= 1.0, "the rewritten one changed most of its words: {changed}");
    let text = tam(&["report", "drafts"]).stdout;
    assert!(text.contains("escalation_outreach") && text.contains("75%"), "{text}");

    // The rep's Sent mail was only read: nothing was sent by tam but the alert.
    assert!(gmail.sent("tam-alerts@vendor.example").iter().all(|m| m.to.as_deref() == Some(REP)));
}

#[test]
fn with_metadata_only_a_sent_draft_is_found_in_its_thread_and_a_missing_scope_is_named() {
    let gmail = FakeGmail::start();
    gmail.grant(&[SCOPE_COMPOSE, SCOPE_SEND, SCOPE_METADATA]);
    let (home, env) = gmail_home(&gmail, "gmail.metadata");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let tam = |args: &[&str]| home.tam_env(args, &env);
    let book = home.file("book.ndjson", &book());
    assert_eq!(tam(&["import", book.to_str().unwrap()]).code, 0);
    assert_eq!(tam(&["scan", "--as-of", "2026-03-29T07:00:00Z"]).code, 0);
    let drafts = gmail.drafts(REP);
    assert_eq!(json(&tam(&["drafts", "sync", "--json"]))[0]["fates"]["draft"], 4);
    let ids: Vec<String> = drafts.iter().filter_map(|d| d.draft_id.clone()).collect();
    gmail.user_sends_draft(REP, &ids[0], None, None);
    gmail.user_deletes_draft(REP, &ids[1]);
    let synced = json(&tam(&["drafts", "sync", "--json"]));
    assert_eq!(synced[0]["fates"], serde_json::json!({"deleted": 1, "draft": 2, "sent": 1}), "{synced}");

    // Without a read scope delegated, a draft no longer in the drafts stays watched and the
    // sync says what to delegate.
    gmail.grant(&[SCOPE_COMPOSE, SCOPE_SEND]);
    gmail.revoke_tokens();
    gmail.user_sends_draft(REP, &ids[2], None, None);
    let refused = tam(&["drafts", "sync", "--json"]);
    assert_eq!(refused.code, 3, "partial: {}{}", refused.stdout, refused.stderr);
    let refused = json(&refused);
    assert!(refused[0]["first_failure"].as_str().unwrap().contains("needs gmail.metadata delegated"), "{refused}");
    let doctor = tam(&["doctor"]);
    assert!(
        doctor.stdout.contains("mail (draft fates)") && doctor.stdout.contains("gmail.metadata is not delegated"),
        "{}",
        doctor.stdout
    );
}

#[test]
fn embedded_drafts_have_no_known_fate_and_the_report_says_so() {
    let home = TestHome::new();
    let book = home.file("book.ndjson", &book());
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    let sync = home.tam(&["drafts", "sync"]);
    assert_eq!(sync.code, 0, "nothing to look at is no failure: {}", sync.stderr);
    assert!(
        sync.stdout.contains("saves drafts as .eml files: what becomes of them cannot be known"),
        "{}",
        sync.stdout
    );
    let report = home.json(&["report", "drafts", "--json"]);
    assert_eq!(report[0]["rows"][0]["unknown"], 4, "{report}");
    assert_eq!(report[0]["rows"][0]["acceptance_rate"], serde_json::Value::Null, "{report}");
    assert!(report[0]["note"].as_str().unwrap().contains(".eml files"), "{report}");
}
