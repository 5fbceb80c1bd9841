//! `tam sync kayako` against a fake Kayako Classic helpdesk answering with the recorded XML:
//! signed requests, priorities and statuses resolved by id, tickets stored for the account
//! their organization names, an unknown priority named with the config key to set, and a
//! refused signature reported as such. Then the JSON API against the stateful fake: every case
//! of a book reaches its account, feature requests become opportunities, both APIs store one
//! ticket per Kayako ticket, and no credential reaches an error, a log line or the job record.

use serde_json::{Value, json};
use tam_testkit::kayako::FakeKayako;
use tam_testkit::{Answer, ECHO, Fake};

use crate::{TestHome, repo};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("crates/tam-connectors/tests/fixtures/kayako_{name}"))).unwrap()
}

#[test]
fn a_classic_sync_stores_tickets_names_unknown_priorities_and_reports_a_bad_signature() {
    let tickets = fixture("classic_tickets_listall_doc_example.xml");
    let mut unknown = fixture("classic_tickets_listall_klinki.xml");
    unknown = unknown.replace("<priorityid><![CDATA[1]]></priorityid>", "<priorityid><![CDATA[7]]></priorityid>");
    unknown = unknown.replace("<userorganization />", "<userorganization><![CDATA[Test]]></userorganization>");
    let both = tickets.replace("</tickets>", &unknown[unknown.find("<ticket ").unwrap()..]);
    let fake = Fake::start(vec![
        Answer::json(200, &fixture("classic_ticketpriorities_constructed.xml")),
        Answer::json(200, &fixture("classic_ticketstatuses_constructed.xml")),
        Answer::json(200, &both),
        // A short page is not the last: the listing ends at an empty one.
        Answer::json(200, "<?xml version=\"1.0\"?><tickets></tickets>"),
        Answer::json(401, "<html>Access Denied. Invalid signature</html>"),
        Answer::json(200, &fixture("classic_ticketstatuses_constructed.xml")),
    ]);
    let home = TestHome::new();
    let book = home.file(
        "accounts.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"acme","name":"Acme","rep_name":"Ana","rep_email":"ana@vendor.example"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[kayako]\ntenant = \"acme\"\nbase_url = \"{}/api/index.php\"\ndepartments = \"1,2\"\n[kayako.accounts]\nTest = \"acme\"\n",
            fake.url
        ),
    );
    let env = [("KAYAKO_API_KEY", "d75a00ef-key"), ("KAYAKO_SECRET_KEY", "secretkey-example")];
    let sync = home.tam_env(&["sync", "kayako", "--json"], &env);
    assert_eq!(sync.code, 3, "one ticket was rejected: {}{}", sync.stdout, sync.stderr);
    let report: Value = serde_json::from_str(&sync.stdout).unwrap();
    assert_eq!((report["fetched"].as_u64(), report["inserted"].as_u64()), (Some(2), Some(1)), "{report}");
    let rejected = report["rejected"][0].as_str().unwrap();
    assert!(
        rejected.contains("KAYAKO-49")
            && rejected.contains("Kayako priority id 7")
            && rejected.contains("[priorities]"),
        "{rejected}"
    );

    let refused = home.tam_env(&["sync", "kayako"], &env);
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("Kayako refused the credentials"), "{}", refused.stderr);
    assert!(!refused.stderr.contains("d75a00ef-key"), "{}", refused.stderr);
    let doctor = home.tam_env(&["doctor"], &env);
    assert!(
        doctor.stdout.contains("ok    kayako (classic)") && doctor.stdout.contains("2 ticket statuses"),
        "{}",
        doctor.stdout
    );
    let seen = fake.seen.lock().unwrap();
    assert!(
        seen[2].path.contains("e=/Tickets/Ticket/ListAll/1,2/-1/-1/-1/100/0/lastactivity/DESC"),
        "{}",
        seen[2].path
    );
}

const ACCOUNTS: &str = r#"{"record":"account","tenant_id":"acme","id":"acme","name":"Acme","rep_name":"Ana","rep_email":"ana@vendor.example"}
{"record":"account","tenant_id":"acme","id":"northwind","name":"Northwind","rep_name":"Ana","rep_email":"ana@vendor.example"}"#;

const PASSWORD: &str = "hunter2-Secret-pw";

fn json_home(url: &str, extra: &str) -> TestHome {
    let home = TestHome::new();
    let book = home.file("accounts.ndjson", ACCOUNTS);
    home.ok(&["import", book.to_str().unwrap()]);
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[kayako]\ntenant = \"acme\"\napi = \"json\"\nbase_url = \"{url}\"\nemail = \"tam@vendor.example\"\ntimeout_ms = 5000\n{extra}"
        ),
    );
    home
}

/// Cases 1..=12 name their account in the custom field `account`; 13 and 14 only through the
/// requester's organization; 15's requester has none. Even cases are feature requests.
fn helpdesk() -> FakeKayako {
    let fake = FakeKayako::start("tam@vendor.example", PASSWORD);
    fake.add_organization(3, "Northwind Traders");
    fake.add_user(7, "Li Wei", "li@nw.example", Some(3));
    fake.add_user(8, "Ana Ruiz", "ana@solo.example", None);
    fake.add_case_field(11, "account", "Account");
    fake.add_case_type(1, "Question", "QUESTION");
    fake.add_case_type(5, "Feature request", "TASK");
    fake.add_priority(3, "High", 3);
    fake.add_status(2, "Open", "OPEN");
    for id in 1..=15 {
        let fields = if id <= 12 { json!({"11": "acme"}) } else { json!({}) };
        fake.add_case(&json!({"id": id, "subject": format!("Add export to S3 {id}"), "status": 2, "priority": 3,
            "type": if id % 2 == 0 { 5 } else { 1 }, "requester": if id == 15 { 8 } else { 7 },
            "custom_fields": fields, "created_at": "2026-03-01T09:00:00+00:00", "updated_at": "2026-03-02T09:00:00+00:00"}));
    }
    fake
}

#[test]
fn a_json_sync_maps_every_case_to_its_account_and_feature_requests_become_opportunities() {
    let fake = helpdesk();
    let home = json_home(
        &fake.url,
        "account_field = \"account, organization\"\npage_size = 10\n[kayako.accounts]\n\"Northwind Traders\" = \"northwind\"\n",
    );
    let env = [("KAYAKO_PASSWORD", PASSWORD)];
    let sync = home.tam_env(&["sync", "kayako", "--json"], &env);
    assert_eq!(sync.code, 3, "one case has no account: {}{}", sync.stdout, sync.stderr);
    let report: Value = serde_json::from_str(&sync.stdout).unwrap();
    assert_eq!((report["fetched"].as_u64(), report["inserted"].as_u64()), (Some(15), Some(14)), "{report}");
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{report}");
    let why = rejected[0].as_str().unwrap();
    assert!(why.contains("KAYAKO-15") && why.contains("requester 8 has no organization"), "{why}");
    assert_eq!(report["calls"], 4, "sign-in with the priorities, statuses, two pages of cases: {report}");

    let task = home.file(
        "task.json",
        r#"{"type": "update_relationship_profile", "tenant_id": "acme", "account_id": "northwind"}"#,
    );
    home.ok(&["task", "run", task.to_str().unwrap()]);
    let profile = home.json(&["profile", "show", "northwind", "--json"]);
    let opportunities = profile["opportunities"].as_array().unwrap();
    assert_eq!(opportunities.len(), 1, "case 14 is Northwind's one feature request: {profile}");
    assert!(opportunities[0].to_string().contains("KAYAKO-14"), "{profile}");
    let acme = home.json(&["profile", "show", "acme", "--json"]);
    assert!(acme["opportunities"].as_array().unwrap().is_empty(), "update_relationship_profile ran for northwind only");
}

#[test]
fn syncing_one_helpdesk_through_both_apis_stores_each_ticket_once() {
    // The doc example's ticket 2 (display id OLJ-171-16930), once by Classic, then as case 2.
    let classic = Fake::start(vec![
        Answer::json(200, &fixture("classic_ticketpriorities_constructed.xml")),
        Answer::json(200, &fixture("classic_ticketstatuses_constructed.xml")),
        Answer::json(200, &fixture("classic_tickets_listall_doc_example.xml")),
        Answer::json(200, "<?xml version=\"1.0\"?><tickets></tickets>"),
    ]);
    let fake = FakeKayako::start("tam@vendor.example", PASSWORD);
    fake.add_organization(1, "Test");
    fake.add_user(1, "Varun Shoor", "varun.shoor@kayako.com", Some(1));
    fake.add_status(1, "Open", "OPEN");
    fake.add_case(&json!({"id": 2, "subject": "This is just a test", "status": 1, "requester": 1,
        "created_at": "2011-02-16T07:09:07+00:00", "updated_at": "2011-02-17T07:09:07+00:00"}));
    let home = json_home(&fake.url, "account_field = \"organization\"\n[kayako.accounts]\nTest = \"acme\"\n");
    let json_config = std::fs::read_to_string(home.path().join("home/tam.toml")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[kayako]\ntenant = \"acme\"\nbase_url = \"{}/api/index.php\"\ndepartments = \"2\"\n[kayako.accounts]\nTest = \"acme\"\n",
            classic.url
        ),
    );
    let env =
        [("KAYAKO_API_KEY", "d75a00ef-key"), ("KAYAKO_SECRET_KEY", "secretkey-example"), ("KAYAKO_PASSWORD", PASSWORD)];
    let first: Value = serde_json::from_str(&home.tam_env(&["sync", "kayako", "--json"], &env).stdout).unwrap();
    assert_eq!((first["inserted"].as_u64(), first["updated"].as_u64()), (Some(1), Some(0)), "{first}");
    home.file("home/tam.toml", &json_config);
    let second = home.tam_env(&["sync", "kayako", "--json", "--since", "2011-01-01T00:00:00Z"], &env);
    let second: Value = serde_json::from_str(&second.stdout).unwrap();
    assert_eq!(
        (second["fetched"].as_u64(), second["inserted"].as_u64(), second["updated"].as_u64()),
        (Some(1), Some(0), Some(1)),
        "the same ticket, not a copy: {second}"
    );
    let store = home.store();
    let tenant = tam_core::TenantId::parse("t", "acme").unwrap();
    let account = tam_core::AccountId::parse("a", "acme").unwrap();
    let tickets = store.ticket_subjects(&tenant, &account).unwrap();
    assert_eq!(tickets, [("KAYAKO-2".to_owned(), "This is just a test".to_owned())]);
}

#[test]
fn no_json_api_credential_reaches_an_error_a_log_line_or_the_job_record() {
    let echo =
        || Answer::echo(400, &format!(r#"{{"status":400,"errors":[{{"code":"X","message":"cannot parse {ECHO}"}}]}}"#));
    let fake = Fake::start(vec![echo(), echo(), echo()]);
    let home = json_home(&fake.url, "");
    let env = [("KAYAKO_PASSWORD", PASSWORD)];
    let sync = home.tam_env(&["sync", "kayako"], &env);
    let serve = home.tam_env(&["serve", "--once", "--at", "2026-03-28T06:10:00Z"], &env);
    let jobs = home.tam_env(&["jobs", "--json"], &env);
    let basic = tam_core::mime::base64(format!("tam@vendor.example:{PASSWORD}").as_bytes());
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "one sync, one scheduled sync");
    assert!(seen[0].headers.iter().any(|(k, v)| k == "authorization" && v.contains(&basic)));
    assert!(
        sync.stderr.contains("Kayako rejected the request") && sync.stderr.contains("[redacted]"),
        "{}",
        sync.stderr
    );
    assert!(serve.stderr.contains("[redacted]"), "the scheduled sync's failure is logged: {}", serve.stderr);
    assert!(jobs.stdout.contains("[redacted]"), "{}", jobs.stdout);
    for text in [&sync.stdout, &sync.stderr, &serve.stdout, &serve.stderr, &jobs.stdout] {
        assert!(!text.contains(PASSWORD) && !text.contains(&basic), "{text}");
    }
}

#[test]
fn a_classic_ticket_stored_under_its_display_id_by_an_older_tam_takes_the_shared_id() {
    let classic = Fake::start(vec![
        Answer::json(200, &fixture("classic_ticketpriorities_constructed.xml")),
        Answer::json(200, &fixture("classic_ticketstatuses_constructed.xml")),
        Answer::json(200, &fixture("classic_tickets_listall_doc_example.xml")),
        Answer::json(200, "<?xml version=\"1.0\"?><tickets></tickets>"),
    ]);
    let home = crate::TestHome::new();
    // As an older tam stored the doc example's ticket 2: under its display id.
    let old = home.file(
        "old.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"acme","name":"Acme","rep_name":"Ana","rep_email":"ana@vendor.example"}
{"record":"ticket","tenant_id":"acme","id":"OLJ-171-16930","account_id":"acme","source":"kayako","priority":"P2","status":"open","created_at":"2011-02-16T07:09:07Z","subject":"This is just a test"}"#,
    );
    home.ok(&["import", old.to_str().unwrap()]);
    home.file(
        "home/tam.toml",
        &format!(
            "[kayako]\ntenant = \"acme\"\nbase_url = \"{}/api/index.php\"\ndepartments = \"2\"\n[kayako.accounts]\nTest = \"acme\"\n",
            classic.url
        ),
    );
    let env = [("KAYAKO_API_KEY", "d75a00ef-key"), ("KAYAKO_SECRET_KEY", "secretkey-example")];
    let run = home.tam_env(&["sync", "kayako", "--json"], &env);
    let synced: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stderr));
    assert_eq!((synced["inserted"].as_u64(), synced["updated"].as_u64()), (Some(0), Some(1)), "{synced}");
    let store = home.store();
    let tenant = tam_core::TenantId::parse("t", "acme").unwrap();
    let account = tam_core::AccountId::parse("a", "acme").unwrap();
    let tickets = store.ticket_subjects(&tenant, &account).unwrap();
    assert_eq!(tickets, [("KAYAKO-2".to_owned(), "This is just a test".to_owned())], "renamed, not copied");
}
