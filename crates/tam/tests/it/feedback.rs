//! Alert feedback end to end: each alert line carries signed "useful" / "not useful" links to
//! `tam serve`; following one shows a confirmation page and records nothing, its form records
//! the vote once; forged, expired and replayed links are refused; the votes are reported and,
//! when the tenant lets them, lower the rep's alert budget.

use crate::TestHome;
use crate::api::Server;

const SECRET: &str = "a-feedback-secret-of-some-length";
const TOKEN: &str = "acme-token-0123456789";

/// Six red accounts of one rep.
fn book() -> String {
    let mut book = String::new();
    for n in 1..=6 {
        book.push_str(&format!(
            r#"{{"record":"account","tenant_id":"acme","id":"a{n}","name":"Account {n}","rep_name":"Ana","rep_email":"Ana@Vendor.example","contacts":["ops@a{n}.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}}
{{"record":"ticket","tenant_id":"acme","id":"T-{n}","account_id":"a{n}","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"Sync down"}}
{{"record":"ticket","tenant_id":"acme","id":"U-{n}","account_id":"a{n}","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"SSO down"}}
"#
        ));
    }
    book
}

/// A port nothing listens on now, for `[api] listen`: the links a scan writes name it before
/// `tam serve` starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The feedback links in the rep's alert log, in order: (useful, not useful) per alert line.
fn links(home: &TestHome) -> Vec<(String, String)> {
    let log = std::fs::read_to_string(home.path().join("home/notifications/acme/ana@vendor.example.log")).unwrap();
    let urls: Vec<String> = log
        .split_whitespace()
        .filter(|w| w.contains("/feedback/"))
        .map(|w| w.trim_end_matches(['.', ',']).to_owned())
        .collect();
    let mut pairs = Vec::new();
    let mut it = urls.into_iter();
    while let (Some(useful), Some(not_useful)) = (it.next(), it.next()) {
        pairs.push((useful, not_useful));
    }
    pairs
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut r = agent.get(url).call().unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn post_vote(server: &Server, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let body = format!("token={}", tam_core::url::encode_component(token));
    let mut r = agent
        .post(format!("{}/feedback", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn token_of(url: &str) -> &str {
    url.rsplit_once("/feedback/").unwrap().1
}

#[test]
fn a_feedback_link_confirms_then_records_once_and_forged_expired_or_replayed_ones_are_refused() {
    let home = TestHome::new();
    let port = free_port();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n[api.tokens]\nacme = \"TAM_API_TOKEN_ACME\"\n\
             [api.feedback_secrets]\nacme = \"TAM_FEEDBACK_SECRET_ACME\"\n\
             [escalation]\nalert_budget_per_rep = 3\nadapt_alert_budget = true\n"
        ),
    );
    let env = [("TAM_FEEDBACK_SECRET_ACME", SECRET), ("TAM_API_TOKEN_ACME", TOKEN)];
    let doctor = home.tam_env(&["doctor"], &env).stdout;
    assert!(
        doctor.contains("ok    alert feedback") && doctor.contains(&format!("127.0.0.1:{port}/feedback")),
        "{doctor}"
    );
    let unset = home.tam(&["doctor"]).stdout;
    assert!(unset.contains("TAM_FEEDBACK_SECRET_ACME is not set"), "{unset}");
    let short = home.tam_env(&["doctor"], &[("TAM_FEEDBACK_SECRET_ACME", "short")]).stdout;
    assert!(short.contains("fewer than 16 characters") && !short.contains("short\n"), "{short}");
    let book = home.file("book.ndjson", &book());
    assert_eq!(home.tam_env(&["import", book.to_str().unwrap()], &env).code, 0);
    let scan = home.tam_env(&["scan", "--as-of", "2026-03-29T07:00:00Z"], &env);
    assert_eq!(scan.code, 0, "{}{}", scan.stdout, scan.stderr);
    // Three individual alerts, and a digest of the other three: each of the six lines, in email
    // and in chat, has its two links.
    let pairs = links(&home);
    assert_eq!(pairs.len(), 12, "{pairs:#?}");
    assert!(pairs[0].0.starts_with(&format!("http://127.0.0.1:{port}/feedback/")), "{}", pairs[0].0);
    // The secret signs the links and is kept nowhere: not in the store (the home's file, when
    // the store is one), not in the alerts.
    if let Ok(db) = std::fs::read(home.path().join("home/tam.db")) {
        assert!(!db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    }
    assert!(!pairs.iter().any(|(u, n)| u.contains(SECRET) || n.contains(SECRET)));

    let server = Server::start_listening(&home, &env);
    let votes = || home.json(&["report", "alerts", "--json"])[0]["votes"].as_u64().unwrap();

    // Following a link (as a mail scanner does) only asks.
    let (useful, not_useful) = &pairs[0];
    let (status, page) = get(not_useful);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Was this alert useful?") && page.contains("Record “not useful”"), "{page}");
    assert!(page.contains("Account 1"), "the page names the account: {page}");
    assert_eq!(votes(), 0, "opening the page records nothing");

    // Its form records it, once.
    let (status, page) = post_vote(&server, token_of(not_useful));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("recorded as not useful"), "{page}");
    assert_eq!(votes(), 1);
    let (status, page) = post_vote(&server, token_of(not_useful));
    assert_eq!(status, 409, "a replayed vote: {page}");
    assert!(page.contains("already marked not useful"), "{page}");
    let (status, _) = post_vote(&server, token_of(useful));
    assert_eq!(status, 409, "the other link of a voted alert");
    assert_eq!(get(useful).0, 409, "its page says so too");
    assert_eq!(votes(), 1);

    // Forged: a signature changed, a vote swapped into another's payload, a token of another
    // tenant's secret, garbage.
    let token = token_of(useful);
    let (payload, tag) = token.split_once('.').unwrap();
    let last = if tag.ends_with('A') { "B" } else { "A" };
    let flipped = format!("{}{last}", &tag[..tag.len() - 1]);
    let other = token_of(&pairs[1].1);
    let (_, other_tag) = other.split_once('.').unwrap();
    for forged in [format!("{payload}.{flipped}"), format!("{payload}.{other_tag}"), "garbage".to_owned()] {
        let (status, page) = post_vote(&server, &forged);
        assert_eq!(status, 403, "{forged}: {page}");
        assert!(page.contains("not one tam made"), "{page}");
    }
    let ballot = tam_core::feedback::Ballot {
        tenant: tam_core::TenantId::parse("t", "acme").unwrap(),
        alert: "alert:x".into(),
        account: "a2".into(),
        reason: "below_threshold".into(),
        rep: tam_core::Email::parse("r", "ana@vendor.example").unwrap(),
        vote: tam_core::feedback::Vote::Useful,
        expires: tam_core::Timestamp::now().as_second() - 1,
    };
    let (status, page) = post_vote(&server, &ballot.sign(b"another tenant's secret"));
    assert_eq!(status, 403, "{page}");
    // Expired: signed with the tenant's secret, a second past its time.
    let (status, page) = post_vote(&server, &ballot.sign(SECRET.as_bytes()));
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("expired"), "{page}");
    assert_eq!(votes(), 1, "no refused link voted");

    // Four more "not useful" and one "useful" (one vote per alert line): most of six.
    for (_, not_useful) in &pairs[1..5] {
        assert_eq!(post_vote(&server, token_of(not_useful)).0, 200);
    }
    assert_eq!(post_vote(&server, token_of(&pairs[5].0)).0, 200);
    let report = home.json(&["report", "alerts", "--json"]);
    let by_rep = &report[0]["by_rep"][0];
    assert_eq!(
        (by_rep["by"].as_str(), by_rep["useful"].as_u64(), by_rep["not_useful"].as_u64()),
        (Some("ana@vendor.example"), Some(1), Some(5)),
        "{report}"
    );
    assert!(!report[0]["by_reason"].as_array().unwrap().is_empty(), "{report}");
    let text = home.ok(&["report", "alerts"]);
    assert!(text.contains("by escalation reason") && text.contains("17%"), "{text}");

    // The rep's budget falls to one, and says why.
    let explain = home.json(&["explain", "a1", "--json"]);
    assert_eq!(explain["alert_budget"]["per_scan"], 1, "{explain}");
    let explain = home.ok(&["explain", "a1"]);
    assert!(
        explain.contains("1 individual alert(s) a scan (lowered from 3: 5 of the rep's last 6 rated alerts"),
        "{explain}"
    );
    // The next reminders (past the cool-down): one individual alert, the rest in the digest.
    let next = home.json(&["scan", "--as-of", "2026-04-06T07:00:00Z", "--json", "--no-dispatch"]);
    let alerts: Vec<&str> = next["accounts"].as_array().unwrap().iter().filter_map(|a| a["alert"].as_str()).collect();
    assert_eq!(alerts.iter().filter(|a| **a == "individual").count(), 1, "{alerts:?}");
    assert_eq!(alerts.iter().filter(|a| **a == "digest").count(), 5, "{alerts:?}");

    // The dashboard's reports page shows the same.
    let (status, page) = get(&format!("{}/reports?token={TOKEN}", server.url));
    assert_eq!(status, 200);
    assert!(page.contains("Were the alerts useful?") && page.contains("ana@vendor.example"), "{page}");
}
