//! `tam sync jira` against a fake Jira answering with the recorded search pages: issues become
//! tickets of the `[jira]` tenant, an issue whose priority is not mapped is named with the
//! config key to set, and the next sync asks only for what was updated since.

use serde_json::Value;
use tam_testkit::{Answer, Fake};

use crate::{TestHome, repo};

fn pages() -> Value {
    let path = repo().join("crates/tam-connectors/tests/fixtures/jira_constructed_search_jql_two_pages.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_sync_stores_issues_names_bad_ones_and_then_asks_only_for_updates() {
    let pages = pages();
    let mut page2 = pages["page2"]["response_body"].clone();
    page2["issues"][0]["fields"]["priority"]["name"] = "Showstopper".into();
    let mut again = pages["page1"]["response_body"].clone();
    again["isLast"] = true.into();
    again["issues"].as_array_mut().unwrap().truncate(1);
    again.as_object_mut().unwrap().remove("nextPageToken");
    let fake = Fake::start(vec![
        Answer::json(200, &pages["page1"]["response_body"].to_string()),
        Answer::json(200, &page2.to_string()),
        Answer::json(200, &again.to_string()),
        Answer::json(
            400,
            r#"{"errorMessages":["Field 'projec' does not exist or you do not have permission to view it."],"errors":{}}"#,
        ),
        Answer::json(200, r#"{"accountId":"5b10a2844c20165700ede21g","displayName":"TAM Bot","active":true}"#),
    ]);
    let home = TestHome::new();
    let book = home.file(
        "accounts.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"acme-corp","name":"Acme Corp","rep_name":"Ana","rep_email":"ana@vendor.example"}
{"record":"account","tenant_id":"acme","id":"globex","name":"Globex","rep_name":"Ana","rep_email":"ana@vendor.example"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[jira]\ntenant = \"acme\"\nbase_url = \"{}\"\nemail = \"tam@vendor.example\"\nproject = \"SUP\"\ntime_zone = \"Europe/Berlin\"\n\
             [jira.account]\nfield = \"customfield_10002\"\n[jira.account.accounts]\n\"Acme Corp\" = \"acme-corp\"\nGlobex = \"globex\"\n",
            fake.url
        ),
    );
    let env = [("JIRA_API_TOKEN", "api-token-123")];
    let first = home.tam_env(&["sync", "jira", "--json"], &env);
    assert_eq!(first.code, 3, "one issue was rejected: {}{}", first.stdout, first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(
        (report["fetched"].as_u64(), report["inserted"].as_u64(), report["updated"].as_u64()),
        (Some(3), Some(2), Some(0)),
        "{report}"
    );
    let rejected = report["rejected"][0].as_str().unwrap();
    assert!(
        rejected.contains("SUP-103") && rejected.contains("\"Showstopper\"") && rejected.contains("[priorities]"),
        "{rejected}"
    );
    assert_eq!(report["query"], "project = \"SUP\" ORDER BY updated ASC");

    let second = home.tam_env(&["sync", "jira", "--json"], &env);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let report: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!((report["fetched"].as_u64(), report["updated"].as_u64()), (Some(1), Some(1)), "{report}");
    let query = report["query"].as_str().unwrap();
    assert!(query.contains("AND updated >= \"") && query.ends_with("ORDER BY updated ASC"), "{query}");

    let scan = home.json(&["scan", "--as-of", "2024-01-20T00:00:00Z", "--json", "--no-dispatch"]);
    let acme = scan["accounts"].as_array().unwrap().iter().find(|a| a["account_id"] == "acme-corp").unwrap();
    assert!(acme.to_string().contains("SUP-101"), "the aged Jira P1 counts for its account: {acme}");

    let bad = home.tam_env(&["sync", "jira", "--since", "2024-01-01T00:00:00Z"], &env);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stderr.contains("Field 'projec' does not exist"), "Jira's own message: {}", bad.stderr);
    let doctor = home.tam_env(&["doctor"], &env);
    assert!(
        doctor.stdout.contains("ok    jira") && doctor.stdout.contains("signed in as TAM Bot"),
        "{}",
        doctor.stdout
    );
    assert!(doctor.stdout.contains("JIRA_WEBHOOK_SECRET is not set"), "{}", doctor.stdout);
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen[4].path, "/rest/api/3/myself");
    let last: Value = serde_json::from_str(&seen[3].body).unwrap();
    assert!(
        last["jql"].as_str().unwrap().contains("updated >= \"2024-01-01 01:00\""),
        "--since, in the Jira user's zone: {last}"
    );
}

/// The recorded webhook bodies, and a home whose `[jira]` tenant has the account they name.
fn webhook_home(jira_url: &str) -> TestHome {
    let home = TestHome::new();
    let book = home.file(
        "accounts.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"acme-corp","name":"Acme Corp","rep_name":"Ana","rep_email":"ana@vendor.example"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[jira]\ntenant = \"acme\"\nbase_url = \"{jira_url}\"\nemail = \"tam@vendor.example\"\nproject = \"SUP\"\n\
             [jira.account]\nfield = \"customfield_10002\"\n[jira.account.accounts]\n\"Acme Corp\" = \"acme-corp\"\n"
        ),
    );
    home
}

#[test]
fn a_signed_webhook_rescores_its_account_once_and_a_partial_one_fetches_the_issue() {
    let pages = pages();
    let issue = pages["page1"]["response_body"]["issues"][0].clone();
    let mut fetched = issue.clone();
    fetched["key"] = "JIRATEST1-14".into();
    let fake = Fake::start(vec![Answer::json(200, &fetched.to_string())]);
    let home = webhook_home(&fake.url);
    let env = [("JIRA_WEBHOOK_SECRET", "whsec-1"), ("JIRA_API_TOKEN", "api-token-123")];
    let full = serde_json::json!({"timestamp": 1727087443918u64, "webhookEvent": "jira:issue_created", "issue": issue});
    let body = home.file("created.json", &full.to_string());
    let signature = tam_connectors::jira::sign("whsec-1", full.to_string().as_bytes());
    let replay = |file: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["webhook", "replay", file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        home.tam_env(&args, &env)
    };

    let first = replay(&body, &["--signature", &signature, "--delivery", "d-1"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let handled: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!(handled["outcome"], "processed", "{handled}");
    assert_eq!((handled["ticket"].as_str(), handled["account"].as_str()), (Some("SUP-101"), Some("acme-corp")));
    assert_eq!(handled["fetched"], false, "the body carried the whole issue");
    assert!(handled["score"].as_u64().unwrap() < 100 && handled["effects"].as_u64().unwrap() >= 1, "{handled}");
    let snapshots = home.json(&["explain", "acme-corp", "--json"]);
    assert!(snapshots.to_string().contains("SUP-101"), "the account was re-scored with the ticket: {snapshots}");

    let again = replay(&body, &["--signature", &signature, "--delivery", "d-1"]);
    let handled: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(handled["outcome"], "duplicate", "Jira's retry is acknowledged and ignored: {handled}");

    let mut older = full.clone();
    older["issue"]["fields"]["updated"] = "2024-01-09T09:15:00.000+0000".into();
    older["issue"]["fields"]["status"] = serde_json::json!({"name": "Done", "statusCategory": {"key": "done"}});
    let older_file = home.file("older.json", &older.to_string());
    let late = replay(&older_file, &["--sign", "--delivery", "d-0"]);
    let handled: Value = serde_json::from_str(&late.stdout).unwrap();
    assert_eq!(handled["outcome"], "stale", "an older state of the issue changes nothing: {handled}");

    let forged = replay(&body, &["--signature", &tam_connectors::jira::sign("guess", b"x"), "--delivery", "d-2"]);
    assert_eq!(forged.code, 1);
    assert!(forged.stderr.contains("X-Hub-Signature does not match"), "{}", forged.stderr);

    let minimal = repo().join("crates/tam-connectors/tests/fixtures/jira_webhook_jira_issue_updated_minimal.json");
    let partial = replay(&minimal, &["--sign", "--delivery", "d-3"]);
    assert_eq!(partial.code, 0, "{}{}", partial.stdout, partial.stderr);
    let handled: Value = serde_json::from_str(&partial.stdout).unwrap();
    assert_eq!(
        (handled["ticket"].as_str(), handled["fetched"].as_bool()),
        (Some("JIRATEST1-14"), Some(true)),
        "{handled}"
    );
    let seen = fake.seen.lock().unwrap();
    assert!(seen[0].path.starts_with("/rest/api/3/issue/JIRATEST1-14?fields=summary,priority"), "{}", seen[0].path);

    let comment = home.file("comment.json", r#"{"webhookEvent":"comment_created","comment":{"id":"1"}}"#);
    let ignored = replay(&comment, &["--sign"]);
    assert!(ignored.stdout.contains("\"outcome\":\"ignored\""), "{}{}", ignored.stdout, ignored.stderr);
}

#[test]
fn several_projects_are_searched_at_once_and_a_bad_key_is_named() {
    let fake = Fake::start(vec![Answer::json(200, r#"{"issues":[],"isLast":true}"#)]);
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    let config = |project: &str| {
        format!(
            "[jira]\ntenant = \"acme\"\nbase_url = \"{}\"\nemail = \"tam@vendor.example\"\nproject = \"{project}\"\n",
            fake.url
        )
    };
    home.file("home/tam.toml", &config("SUP, OPS"));
    let env = [("JIRA_API_TOKEN", "api-token-123")];
    let sync = home.tam_env(&["sync", "jira", "--json"], &env);
    assert_eq!(sync.code, 0, "{}{}", sync.stdout, sync.stderr);
    let report: Value = serde_json::from_str(&sync.stdout).unwrap();
    assert_eq!(report["query"], "project in (\"SUP\", \"OPS\") ORDER BY updated ASC");

    home.file("home/tam.toml", &config("SUP, O-PS"));
    let bad = home.tam_env(&["sync", "jira"], &env);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("[jira] project \"O-PS\" is not a project key"), "{}", bad.stderr);
}
