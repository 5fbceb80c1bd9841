//! Jira Cloud: JQL search pages, rate limits and errors, and issues as ticket records.

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
