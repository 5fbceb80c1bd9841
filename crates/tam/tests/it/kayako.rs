//! `tam sync kayako` against a fake Kayako Classic helpdesk answering with the recorded XML:
//! signed requests, priorities and statuses resolved by id, tickets stored for the account
//! their organization names, an unknown priority named with the config key to set, and a
//! refused signature reported as such.

use serde_json::Value;
use tam_testkit::{Answer, Fake};

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
        rejected.contains("OKE-160-11260")
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
