//! Kayako: the Classic XML API (signed requests, paging) and the JSON API (session, includes).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tam_connectors::kayako::{
    Cases, CasesConfig, Classic, ClassicConfig, KayakoError, KayakoMapping, case_record, case_tags, classic_record,
    classic_tags, signature,
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
    let n = kayako.tickets("1", None, |t| subjects.push(t.text_of("subject").unwrap_or_default().to_owned())).unwrap();
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
        Ok(json!({"record": "ticket", "tenant_id": "t", "id": "KAYAKO-2", "source": "kayako", "account_id": "acme",
               "subject": "This is just a test", "priority": "Low", "status": "open",
               "created_at": "2011-02-16T07:09:07Z", "updated_at": "2011-02-16T07:09:07Z",
               "kind": "feature_request"}))
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
    assert!(seen[2].path.contains("e=/Tickets/Ticket/ListAll/1,2/-1/-1/-1/1/0/lastactivity/DESC"), "{}", seen[2].path);
    assert!(seen[3].path.contains("/1/1/lastactivity/DESC"), "the next page starts after the first: {}", seen[3].path);
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
        fake.add_case(&json!({"id": id, "subject": format!("Case {id}"), "status": if id % 3 == 0 { 3 } else { 2 },
            "priority": if id == 1 { Value::Null } else { json!(3) }, "type": if id % 2 == 0 { 5 } else { 1 },
            "requester": if id == 105 { 8 } else { 7 }, "custom_fields": fields,
            "created_at": "2024-01-10T09:15:00+00:00", "updated_at": "2024-01-12T10:00:00+00:00"}));
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
    cases_client(&fake.url, 2).cases(None, "", "", |c| first = first.take().or(Some(c.clone()))).unwrap();
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
        .cases(None, &mapping.includes(), "", |c| records.push(case_record("t", c, &priorities, &statuses, &mapping)))
        .unwrap();
    assert_eq!(n, 105);
    assert_eq!(
        records[1],
        Ok(json!({"record": "ticket", "tenant_id": "t", "id": "KAYAKO-2", "source": "kayako", "account_id": "acme",
               "subject": "Case 2", "priority": "High", "status": "open", "kind": "feature_request",
               "created_at": "2024-01-10T09:15:00Z", "updated_at": "2024-01-12T10:00:00Z"}))
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
        .cases(None, "", "", |c| records.push(case_record("t", c, &BTreeMap::new(), &BTreeMap::new(), &mapping)))
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

#[test]
fn a_tagged_case_is_an_escalation_and_a_completed_one_resolved_at_its_last_activity() {
    let fake = book();
    fake.add_status(4, "Completed", "COMPLETED");
    fake.add_case(&json!({"id": 200, "subject": "CTO escalation", "status": 4, "priority": 3, "type": 1,
        "requester": 7, "custom_fields": {"11": "acme"}, "tags": ["vip", "Escalation"],
        "created_at": "2024-02-01T08:00:00+00:00", "updated_at": "2024-02-03T17:30:00+00:00"}));
    let cases = cases_client(&fake.url, 100);
    let (priorities, statuses) = (cases.priorities().unwrap(), cases.statuses().unwrap());
    let mapping = KayakoMapping { account_field: "account".into(), ..KayakoMapping::default() };
    let tagged = KayakoMapping { escalation_tag: Some("escalation".into()), ..mapping.clone() };
    let read = |m: &KayakoMapping| {
        let mut out = Vec::new();
        cases
            .cases(None, &m.includes(), m.fields(), |c| {
                if c["id"] == 200 {
                    out.push((case_record("t", c, &priorities, &statuses, m).unwrap(), case_tags(c)));
                }
            })
            .unwrap();
        out.pop().unwrap()
    };
    // Tags are an optional field: without `fields=+tags` the case has none to show.
    let (record, tags) = read(&mapping);
    assert!(tags.is_empty(), "{tags:?}");
    assert_eq!(
        (record["status"].as_str(), record["resolved_at"].as_str()),
        (Some("resolved"), Some("2024-02-03T17:30:00Z"))
    );
    let (record, tags) = read(&tagged);
    assert_eq!(tags, ["vip", "Escalation"]);
    assert!(fake.stats().targets.iter().any(|t| t.ends_with("&fields=%2Btags")), "{:?}", fake.stats().targets);
    assert_eq!(
        tagged.escalation(&record, &tags),
        Some(json!({"record": "escalation", "tenant_id": "t", "account_id": "acme", "at": "2024-02-01T08:00:00Z",
                    "source": "kayako", "note": "KAYAKO-200: CTO escalation"}))
    );
    assert_eq!(mapping.escalation(&record, &tags), None, "no tag configured");

    // Classic: the tags are the ticket's `<tags>` text.
    let doc = tam_connectors::kayako::xml::parse(&fixture("classic_tickets_listall_klinki.xml")).unwrap();
    let ticket = doc.child("ticket").unwrap();
    assert_eq!(classic_tags(ticket), ["tag"]);
}
