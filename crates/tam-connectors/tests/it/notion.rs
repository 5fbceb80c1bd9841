//! Notion: the client (token bucket, retries, error objects), the CRM and the profile pages,
//! against the fake Notion in both API versions.

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
    assert!(matches!(&create, NotionError::Unavailable(f) if f.attempts == 1), "a page may have been made: {create:?}");
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
        tenant: crate::tenant("acme"),
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
    assert!(matches!(crm.update_health(&update), Outcome::Rejected { reason } if reason.contains("validation_error")));
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
        assert_eq!(routes.get("PATCH /v1/blocks/children"), Some(&2), "253 blocks: 100 with the page, then 100 and 53");
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
        let comms = |n: usize| (0..n).map(|i| format!("2026-11-0{} | health checkin | Check-in {i}", i + 1)).collect();
        let health = |score: u8| vec![format!("Current Score: {score} | Status: amber"), "Last Scan: today".into()];
        let version = |n: usize, score: u8| {
            doc(&account, [vec!["Li Wei: role: CTO".into()], vec![], vec![], vec![], comms(n), health(score), vec![]])
        };
        let page = profiles.publish(&version(1, 60)).unwrap();
        let before = notion.calls();
        assert_eq!(profiles.publish(&version(1, 60)).unwrap(), page, "found again by its title");
        assert_eq!(notion.calls() - before, 2, "unchanged: read the account's children and the page's, write nothing");

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
        assert_eq!(texts[at + 1..at + 4], [comms(2)[0].clone(), comms(2)[1].clone(), "Health Dashboard".to_owned()]);
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
        assert!(matches!(&err, NotionError::Rejected(f) if f.message.contains("not in the related database")), "{err}");
        // An error that echoes the request never carries the token out.
        fake.fail_next(400, "validation_error", &format!("header authorization: Bearer {TOKEN} is malformed"), None);
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
        let with = fake.add_database("With", &json!({"Name": {"title": {}}, "Last edited by": {"last_edited_by": {}}}));
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
        let ids = |pages: Vec<Value>| pages.iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
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
