//! The dashboard in a real browser: headless Chromium (installed by `scripts/test`) loads the
//! demo tenant's dashboard, which must show its red accounts, and an account page, which must
//! show the score chart. A screenshot is left in `target/tmp/dashboard.png`.

use std::process::Command;

use serde_json::Value;

use crate::TestHome;
use crate::api::Server;

const TOKEN: &str = "demo-dashboard-token-0123";

fn chromium(args: &[&str]) -> String {
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,900"])
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
    std::fs::write(home.path().join("home/tam.toml"), "[api.tokens]\ndemo = \"TAM_API_TOKEN_DEMO\"\n").unwrap();
    let server = Server::start_with(&home, &[("TAM_API_TOKEN_DEMO", TOKEN)]);
    let (_, list) = server.call("GET", "/v1/accounts", Some(TOKEN), None);
    let red: Vec<&Value> = list["accounts"].as_array().unwrap().iter().filter(|a| a["status"] == "red").collect();
    assert!(!red.is_empty(), "the demo has red accounts: {list}");

    let page = chromium(&["--dump-dom", &format!("{}/?token={TOKEN}", server.url)]);
    let red_section = &page[page.find(r#"<section id="red">"#).expect("a red group")..];
    let red_section = &red_section[..red_section.find("</section>").unwrap()];
    for account in &red {
        let name = account["name"].as_str().unwrap().replace('&', "&amp;");
        assert!(red_section.contains(&name), "{name} is listed as red");
    }
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    chromium(&[&format!("--screenshot={}", shot.display()), &format!("{}/?token={TOKEN}", server.url)]);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot of the dashboard");

    let first = red[0]["account_id"].as_str().unwrap();
    let account = chromium(&["--dump-dom", &format!("{}/accounts/{first}?token={TOKEN}", server.url)]);
    assert!(account.contains("<svg") && account.contains("<polyline"), "the score chart is drawn");
    assert!(account.contains("<h2>Why</h2>") && account.contains("Open tickets"), "{account}");
    let why = &account[account.find("<h2>Why</h2>").unwrap()..account.find("<h2>Open tickets").unwrap()];
    let items: Vec<&str> = why.split("<li>").skip(1).collect();
    assert!(
        !items.is_empty()
            && items.iter().all(|i| i.starts_with('-') && i[1..].starts_with(|c: char| c.is_ascii_digit())),
        "each reason keeps its points, as tam explain shows them: {why}"
    );

    let unsigned = chromium(&["--dump-dom", &format!("{}/", server.url)]);
    assert!(unsigned.contains("Sign in") && !unsigned.contains("section id=\"red\""), "no token, no data");
}
