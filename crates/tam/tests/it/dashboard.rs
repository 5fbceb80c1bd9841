//! The dashboard in a real browser: headless Chromium (installed by `scripts/test`) loads the
//! demo tenant's "Today", whose worklist must list its red accounts and follow its filters, and
//! an account page, which must show the score chart. Screenshots are left in `target/tmp/`
//! (Today at 1280 and 390 px wide).

use std::process::Command;

use serde_json::Value;

use crate::TestHome;
use crate::api::Server;

const TOKEN: &str = "demo-dashboard-token-0123";

fn chromium(args: &[&str]) -> String {
    chromium_at(1280, args)
}

/// Chromium with a window `width` px wide (390 is a phone's).
fn chromium_at(width: u32, args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--window-size={width},900"),
        ])
        .args(args)
        .output()
        .expect("chromium must be installed (scripts/test installs it)");
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_demo_dashboard_shows_the_red_accounts_and_a_chart_in_a_browser() {
    let home = TestHome::new();
    home.ok(&["demo"]);
    let config =
        "[api.tokens]\ndemo = \"TAM_API_TOKEN_DEMO\"\n[tickets]\nurl = \"https://support.example.com/t/{id}\"\n";
    std::fs::write(home.path().join("home/tam.toml"), config).unwrap();
    let server = Server::start_with(&home, &[("TAM_API_TOKEN_DEMO", TOKEN)]);
    let (_, list) = server.call("GET", "/v1/accounts", Some(TOKEN), None);
    let red: Vec<&Value> = list["accounts"].as_array().unwrap().iter().filter(|a| a["status"] == "red").collect();
    assert!(!red.is_empty(), "the demo has red accounts: {list}");

    // Today: the worklist, red accounts among the escalations; each one is listed when the
    // worklist is filtered to red.
    let page = chromium(&["--dump-dom", &format!("{}/?token={TOKEN}", server.url)]);
    assert!(page.contains("<h1>Today</h1>") && page.contains("as of "), "the landing page says when");
    let reds = chromium(&["--dump-dom", &format!("{}/?status=red&token={TOKEN}", server.url)]);
    let worklist = &reds[reds.find(r#"<table class="work">"#).expect("a worklist")..];
    let worklist = &worklist[..worklist.find("</table>").unwrap()];
    for account in &red {
        let name = account["name"].as_str().unwrap().replace('&', "&amp;");
        assert!(worklist.contains(&name), "{name} is on the red worklist");
    }
    assert_eq!(worklist.matches("badge amber").count(), 0, "the filter keeps red rows only");
    // A filter is in the URL: the same link shows the same rows.
    let silent = chromium(&["--dump-dom", &format!("{}/?reason=heartbeat_silence&token={TOKEN}", server.url)]);
    assert!(silent.contains("<option value=\"heartbeat_silence\" selected"), "the form shows the filter");
    for (width, name) in [(1280, "today-1280.png"), (390, "today-390.png")] {
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        chromium_at(width, &[&format!("--screenshot={}", shot.display()), &format!("{}/?token={TOKEN}", server.url)]);
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of Today at {width} px");
    }

    let first = red[0]["account_id"].as_str().unwrap();
    let account = chromium(&["--dump-dom", &format!("{}/accounts/{first}?token={TOKEN}", server.url)]);
    assert!(account.contains("<svg") && account.contains("<polyline"), "the score chart is drawn");
    assert!(account.contains("<h2>Why</h2>") && account.contains("Open tickets"), "{account}");
    let why = &account[account.find("<h2>Why</h2>").unwrap()..account.find("<h2>Escalation").unwrap()];
    let items: Vec<&str> = why.split("<li>").skip(1).collect();
    assert!(
        !items.is_empty()
            && items.iter().all(|i| i.starts_with('-') && i[1..].starts_with(|c: char| c.is_ascii_digit())),
        "each reason keeps its points, as tam explain shows them: {why}"
    );

    // A rep's page: their accounts, and what the recent scans sent them; the job history.
    let rep = red[0]["rep_email"].as_str().unwrap();
    let reps = chromium(&["--dump-dom", &format!("{}/?rep={}&token={TOKEN}", server.url, rep.replace('@', "%40"))]);
    assert!(reps.contains(&format!("Alerts to {rep} over the last scans")), "{reps}");
    let rows = &reps[reps.find(r#"<table class="work">"#).unwrap()..];
    let rows = &rows[..rows.find("</table>").unwrap()];
    assert!(rows.matches("<tr>").count() > 1 && rows.contains(rep), "the rep's own accounts");
    let jobs = chromium(&["--dump-dom", &format!("{}/jobs?token={TOKEN}", server.url)]);
    assert!(jobs.contains("<h1>Scheduled jobs</h1>"), "{jobs}");

    // The backtest: the form, then the demo's last four weeks replayed against its escalations.
    let form = chromium(&["--dump-dom", &format!("{}/backtest?token={TOKEN}", server.url)]);
    assert!(form.contains("<h1>Backtest</h1>") && !form.contains("<svg"), "the form first: {form}");
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let from = today.checked_sub(jiff::Span::new().days(28)).unwrap();
    let url = format!("{}/backtest?from={from}&to={today}&horizon=14&token={TOKEN}", server.url);
    let report = chromium(&["--dump-dom", &url]);
    assert!(report.contains("<svg") && report.contains("days of warning"), "the picture: {report}");
    assert!(report.contains("<td>current</td>") || report.contains("<strong>current</strong>"), "{report}");
    let real: u32 =
        report.split(" real escalation(s)").next().unwrap().rsplit('>').next().unwrap().trim().parse().unwrap();
    assert!(real > 0, "the demo's escalations are in the window: {report}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("backtest-1280.png");
    chromium_at(1280, &[&format!("--screenshot={}", shot.display()), &url]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the backtest");
    let bad = chromium(&["--dump-dom", &format!("{}/backtest?from=2026-13-01&to={today}&token={TOKEN}", server.url)]);
    assert!(
        bad.contains("From: \"2026-13-01\" is not a date")
            || bad.contains("From: &quot;2026-13-01&quot; is not a date"),
        "{bad}"
    );

    // The reports: what reps made of the demo's drafts (.eml files: fate unknown, and said)
    // and what they said of their alerts (nothing yet).
    let reports = chromium(&["--dump-dom", &format!("{}/reports?token={TOKEN}", server.url)]);
    assert!(reports.contains("What reps made of tam") && reports.contains("<td>escalation_outreach</td>"), "{reports}");
    assert!(reports.contains(".eml files") && reports.contains("No vote yet."), "{reports}");
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("reports-1280.png");
    chromium_at(1280, &[&format!("--screenshot={}", shot.display()), &format!("{}/reports?token={TOKEN}", server.url)]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the reports");
    assert!(account.contains("Alert budget of ") && account.contains("individual alert(s) a scan"), "{account}");

    // Each reason's tickets link to their pages, as `[tickets] url` says.
    assert!(why.contains(r#"<a href="https://support.example.com/t/NP-"#), "{why}");

    // The story: the open episode, and the drafts waiting, each readable on its own page.
    assert!(account.contains("Open since") && account.contains("alert(s) sent"), "the episode: {account}");
    let link = format!("href=\"/accounts/{first}/draft?key=");
    let start = account.find(&link).expect("a draft link") + "href=\"".len();
    let href = account[start..].split('"').next().unwrap().replace("&amp;", "&");
    let draft = chromium(&["--dump-dom", &format!("{}{href}&token={TOKEN}", server.url)]);
    assert!(draft.contains(r#"<pre class="draft">Hello"#), "the draft's text: {draft}");
    assert!(!draft.contains(".eml") && !account.contains(".eml"), "never where the server keeps a draft");
    for (width, name) in [(1280, "account-1280.png"), (390, "account-390.png")] {
        let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let url = format!("{}/accounts/{first}?token={TOKEN}", server.url);
        chromium_at(width, &[&format!("--screenshot={}", shot.display()), &url]);
        assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of an account at {width} px");
    }

    let unsigned = chromium(&["--dump-dom", &format!("{}/", server.url)]);
    assert!(unsigned.contains("Sign in") && !unsigned.contains("class=\"work\""), "no token, no data");
}

#[test]
fn a_tam_signs_in_filters_opens_an_account_and_a_draft_and_signs_out_in_one_browser_session() {
    // One Chromium session, driven over the DevTools protocol by `browser.py` (python3, which
    // `scripts/test` installs): the form signs in, the filter form filters, links are clicked.
    let home = TestHome::new();
    home.ok(&["demo"]);
    std::fs::write(home.path().join("home/tam.toml"), "[api.tokens]\ndemo = \"TAM_API_TOKEN_DEMO\"\n").unwrap();
    let server = Server::start_with(&home, &[("TAM_API_TOKEN_DEMO", TOKEN)]);
    let driver = crate::repo().join("crates/tam/tests/it/browser.py");
    let out = Command::new("python3")
        .arg(&driver)
        .args([&server.url, TOKEN, env!("CARGO_TARGET_TMPDIR")])
        .output()
        .expect("python3 must be installed (scripts/test installs it)");
    assert!(out.status.success(), "the browser flow failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(seen["before_sign_in"], "Sign in", "{seen}");
    assert_eq!(seen["after_sign_in"]["h1"], "Today", "{seen}");
    assert!(!seen["after_sign_in"]["url"].as_str().unwrap().contains(TOKEN), "the token stays out of URLs");
    let filtered = &seen["filtered"];
    let filtered_url = filtered["url"].as_str().unwrap();
    assert!(filtered_url.ends_with("/?status=red"), "the filter, and only it, is in the URL: {seen}");
    let badges = filtered["badges"].as_array().unwrap();
    assert!(!badges.is_empty() && badges.iter().all(|b| b == "badge red"), "{seen}");
    assert!(seen["account"]["chart"] == true && seen["account"]["episode"] == true, "{seen}");
    assert!(seen["draft"]["text"].as_str().unwrap().starts_with("Hello"), "{seen}");
    assert_eq!(seen["draft"]["path_shown"], false, "{seen}");
    assert_eq!((&seen["after_sign_out"], &seen["reopened"]), (&Value::from("Sign in"), &Value::from("Sign in")));
    for page in ["today", "account", "draft"] {
        for width in [1280, 390] {
            let laid_out = seen["widths"][format!("flow-{page}-{width}")].as_u64().unwrap();
            assert!(laid_out <= width, "{page} is {laid_out} px wide in a {width} px window");
            let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("flow-{page}-{width}.png"));
            assert!(std::fs::metadata(&shot).unwrap().len() > 5_000, "{}", shot.display());
        }
    }
}
