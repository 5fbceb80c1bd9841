//! `tam sync notion` against a fake Notion answering with recorded pages: one paginated query
//! per database, malformed pages named and skipped, later syncs ask only for edited pages, and
//! a scan's health goes back to the account page.

use serde_json::{Value, json};
use tam_testkit::{Answer, Fake};

use crate::{Run, TestHome, repo};

fn recorded(name: &str) -> Answer {
    let path = repo().join(format!("crates/tam-connectors/tests/fixtures/notion_{name}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    Answer::json(v["status"].as_u64().unwrap() as u16, &v["response_body"].to_string())
}

fn account_page(id: &str, name: &str, rep_email: &str) -> Value {
    let rich = |t: &str| json!({"type": "rich_text", "rich_text": [{"type": "text", "plain_text": t}]});
    json!({
        "object": "page", "id": id, "last_edited_time": "2024-01-09T10:00:00.000Z",
        "properties": {
            "Name": {"id": "title", "type": "title", "title": [{"type": "text", "plain_text": name}]},
            "Rep": rich("Ana Ruiz"),
            "Rep Email": {"id": "e", "type": "email", "email": rep_email},
            "Contacts": rich("ops@northwind.example"),
            "Last Heartbeat": {"id": "h", "type": "date", "date": {"start": "2024-01-09T08:00:00.000Z"}},
        }
    })
}

#[test]
fn a_sync_reads_each_database_once_then_only_what_changed_and_health_goes_back() {
    let accounts = json!({
        "object": "list", "has_more": false, "next_cursor": null, "type": "page_or_database", "page_or_database": {},
        "results": [
            account_page("16cabc1e-edcd-8200-9000-00000000a001", "Northwind", "ana@vendor.example"),
            account_page("16cabc1e-edcd-8200-9000-00000000a002", "Contoso", "not an address"),
        ],
    });
    let fake = Fake::start(vec![
        Answer::json(200, &accounts.to_string()),
        recorded("constructed_database_query_tickets_page1"),
        recorded("2022-06-28_database_query_empty"),
        Answer::json(200, r#"{"object":"page","id":"16cabc1e-edcd-8200-9000-00000000a001"}"#),
        recorded("2022-06-28_database_query_empty"),
        recorded("2022-06-28_database_query_empty"),
        Answer::json(200, r#"{"object":"database","id":"accdb","title":[{"type":"text","plain_text":"Accounts"}]}"#),
        Answer::json(
            404,
            r#"{"object":"error","status":404,"code":"object_not_found","message":"Could not find database with ID: tixdb."}"#,
        ),
    ]);
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[notion]\ntenant = \"acme\"\naccounts_database = \"accdb\"\ntickets_database = \"tixdb\"\nbase_url = \"{}\"\nrequests_per_second = 50.0\n",
            fake.url
        ),
    );
    let env = [("NOTION_TOKEN", "ntn_test_token")];
    let tam = |args: &[&str]| -> Run { home.tam_env(args, &env) };

    let first = tam(&["sync", "notion", "--json"]);
    assert_eq!(first.code, 3, "one page was rejected: {}{}", first.stdout, first.stderr);
    let report: Value = serde_json::from_str(&first.stdout).unwrap();
    assert_eq!((report["account_pages"].as_u64(), report["ticket_pages"].as_u64()), (Some(2), Some(2)));
    assert_eq!((report["accounts"].as_u64(), report["tickets"].as_u64()), (Some(1), Some(2)), "{report}");
    assert_eq!(report["notion_calls"].as_u64(), Some(3), "one query for accounts, two pages of tickets");
    let rejected = report["rejected"][0].as_str().unwrap();
    assert!(rejected.contains("00000000a002") && rejected.contains("rep_email"), "{rejected}");

    // A second aged P1 from another source turns the account red, so the scan escalates it.
    let more = home.file(
        "more.ndjson",
        r#"{"record":"ticket","tenant_id":"acme","id":"SUP-9","account_id":"16cabc1e-edcd-8200-9000-00000000a001","priority":"P1","status":"open","created_at":"2024-01-10T00:00:00Z","subject":"Exports fail"}"#,
    );
    home.ok(&["import", more.to_str().unwrap()]);
    let scan = home.json(&["scan", "--tenant", "acme", "--as-of", "2024-01-20T00:00:00Z", "--json", "--no-dispatch"]);
    assert_eq!(scan["accounts"][0]["account_id"], "16cabc1e-edcd-8200-9000-00000000a001");
    assert!(scan["accounts"][0]["score"].as_u64().unwrap() < 100, "the P1 from Notion counts: {scan}");

    let dispatched = tam(&["outbox", "retry"]);
    assert!(dispatched.stdout.contains("failed 0"), "{}{}", dispatched.stdout, dispatched.stderr);

    let second = tam(&["sync", "notion", "--json"]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let doctor = tam(&["doctor"]);
    assert!(
        doctor.stdout.contains("ok    notion accounts database") && doctor.stdout.contains("\"Accounts\""),
        "{}",
        doctor.stdout
    );
    assert!(
        doctor.stdout.contains("FAIL  notion tickets database") && doctor.stdout.contains("share"),
        "{}",
        doctor.stdout
    );
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 8);
    let body = |i: usize| serde_json::from_str::<Value>(&seen[i].body).unwrap();
    assert!(body(0)["filter"].is_null(), "the first sync reads everything");
    assert_eq!(body(2)["start_cursor"], "16cabc1e-edcd-8101-9000-000000000103");
    assert_eq!(seen[3].path, "/v1/pages/16cabc1e-edcd-8200-9000-00000000a001", "the scan's health went to the page");
    assert_eq!(body(3)["properties"]["Health Status"]["select"]["name"], "red", "{}", seen[3].body);
    assert_eq!(body(3)["properties"]["Escalated"]["checkbox"], true, "{}", seen[3].body);
    assert_eq!(
        (seen[4].path.as_str(), seen[5].path.as_str()),
        ("/v1/databases/accdb/query", "/v1/databases/tixdb/query")
    );
    for i in [4, 5] {
        assert_eq!(body(i)["filter"]["timestamp"], "last_edited_time", "later syncs ask only for edited pages");
        assert!(body(i)["filter"]["last_edited_time"]["on_or_after"].is_string());
    }
    let auth = seen[0].headers.iter().find(|(k, _)| k == "authorization").unwrap();
    assert_eq!(auth.1, "Bearer ntn_test_token");
}
