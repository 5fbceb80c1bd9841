//! `tam backtest` against the real thing: the same book scanned day by day with `tam scan`, its
//! alerts judged here by the definitions, must give the backtest's figures for the
//! current rules; a grid file's sets are read, checked and reported; bad input is named.

use serde_json::{Value, json};

use crate::TestHome;

/// Day `d` of the history at 07:00 UTC (day 0 is 2026-01-01).
fn day(d: i64) -> String {
    let t: jiff::Timestamp = "2026-01-01T07:00:00Z".parse().unwrap();
    t.checked_add(jiff::SignedDuration::from_hours(24 * d)).unwrap().to_string()
}

fn hours(d: i64, h: i64) -> String {
    let t: jiff::Timestamp = day(d).parse().unwrap();
    t.checked_add(jiff::SignedDuration::from_hours(h)).unwrap().to_string()
}

/// Twelve accounts of three reps over 45 days: tickets that open and age (none resolved in the
/// window, so today's statuses are the past's), integrations that fall silent, and the
/// escalations that happened, some after an alert and some out of the blue.
fn book() -> String {
    let mut lines = Vec::new();
    for i in 0..12 {
        lines.push(
            json!({"record": "account", "tenant_id": "acme", "id": format!("a{i:02}"), "name": format!("Account {i}"),
            "rep_name": "Rep", "rep_email": format!("rep{}@v.example", i % 3)}),
        );
    }
    let mut ticket = |id: &str, account: &str, priority: &str, created: String| {
        lines.push(
            json!({"record": "ticket", "tenant_id": "acme", "id": id, "account_id": account, "priority": priority,
            "status": "open", "created_at": created, "subject": "Sync fails"}),
        );
    };
    for (i, d) in [(0, 25), (1, 28), (2, 31), (3, 35), (8, 38)] {
        ticket(&format!("P1-{i}a"), &format!("a{i:02}"), "P1", hours(d, 2));
        ticket(&format!("P1-{i}b"), &format!("a{i:02}"), "P2", hours(d + 2, 5));
    }
    ticket("P1-7a", "a07", "P1", hours(10, 0));
    ticket("P1-7b", "a07", "P1", hours(11, 0));
    for k in 0..7 {
        ticket(&format!("V-{k}"), "a06", "P3", hours(20 + k, 0));
    }
    // A ticket resolved before the replay starts is never open in it.
    lines.push(json!({"record": "ticket", "tenant_id": "acme", "id": "OLD", "account_id": "a09", "priority": "P1",
        "status": "closed", "created_at": "2025-10-01T00:00:00Z", "resolved_at": "2025-10-02T00:00:00Z", "subject": "x"}));
    for i in 0..12 {
        let last = match i {
            4 => 33,
            5 => 36,
            _ => 44,
        };
        for d in 0..=last {
            lines.push(json!({"record": "heartbeat", "tenant_id": "acme", "account_id": format!("a{i:02}"), "at": hours(d, -1)}));
        }
    }
    for (account, d, h) in
        [("a00", 32, 3), ("a01", 36, 9), ("a02", 41, 1), ("a04", 40, 0), ("a10", 38, 0), ("a03", 50, 0)]
    {
        lines.push(json!({"record": "escalation", "tenant_id": "acme", "account_id": account, "at": hours(d, h), "source": "csm"}));
    }
    lines.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")
}

/// The window: days 30 to 44; the backtest warms up over the 30 days before.
const FROM: i64 = 30;
const TO: i64 = 44;
const HORIZON: i64 = 7;

#[test]
fn the_backtest_of_the_current_rules_is_what_daily_scans_would_have_alerted() {
    let home = TestHome::new();
    let book = home.file("book.ndjson", &book());
    home.ok(&["import", book.to_str().unwrap()]);
    let from = &day(FROM)[..10];
    let to = &day(TO)[..10];
    let report = home.json(&["backtest", "--from", from, "--to", to, "--horizon", "7d", "--json"]);

    // The same book, scanned for real each morning from the backtest's first (warm-up) day.
    let scanned = TestHome::new();
    scanned.ok(&["import", book.to_str().unwrap()]);
    let mut alerts: Vec<(String, i64)> = Vec::new();
    for d in 0..=TO {
        let scan = scanned.json(&["scan", "--as-of", &day(d), "--no-dispatch", "--json"]);
        for a in scan["accounts"].as_array().unwrap() {
            if matches!(a["alert_cause"].as_str(), Some("new" | "worsened")) {
                alerts.push((a["account_id"].as_str().unwrap().to_owned(), d));
            }
        }
    }

    // Judged by the definitions, in days and hours rather than through tam's code.
    let escalations: Vec<(&str, f64)> = vec![
        ("a00", 32.0 + 3.0 / 24.0),
        ("a01", 36.0 + 9.0 / 24.0),
        ("a02", 41.0 + 1.0 / 24.0),
        ("a04", 40.0),
        ("a10", 38.0),
        ("a03", 50.0),
    ];
    let h = HORIZON as f64;
    let counted: Vec<&(String, i64)> = alerts.iter().filter(|(_, d)| *d >= FROM).collect();
    let true_alerts = counted
        .iter()
        .filter(|(a, d)| escalations.iter().any(|(e, at)| e == a && *at > *d as f64 && *at <= *d as f64 + h))
        .count();
    let in_window: Vec<&(&str, f64)> =
        escalations.iter().filter(|(_, at)| *at >= FROM as f64 - 7.0 / 24.0 && *at < TO as f64 + 17.0 / 24.0).collect();
    let mut leads: Vec<f64> = in_window
        .iter()
        .filter_map(|(e, at)| {
            counted
                .iter()
                .filter(|(a, d)| a == e && (*d as f64) >= at - h && (*d as f64) < *at)
                .map(|(_, d)| at - *d as f64)
                .reduce(f64::max)
        })
        .collect();
    leads.sort_by(f64::total_cmp);
    let current = &report["sets"][0];
    assert_eq!(current["name"], "current");
    assert!(counted.len() > 3 && !leads.is_empty(), "the book alerts and catches something: {alerts:?}");
    assert_eq!(current["alerts"], counted.len(), "{alerts:?}\n{report}");
    assert_eq!(report["real_escalations"], in_window.len());
    let close = |v: &Value, x: f64| (v.as_f64().unwrap() - x).abs() < 1e-9;
    assert!(close(&current["precision"], true_alerts as f64 / counted.len() as f64), "{current}");
    assert!(close(&current["recall"], leads.len() as f64 / in_window.len() as f64), "{current}");
    let median = if leads.len() % 2 == 1 {
        leads[leads.len() / 2]
    } else {
        (leads[leads.len() / 2 - 1] + leads[leads.len() / 2]) / 2.0
    };
    assert!(close(&current["lead_days"]["median"], median), "{current} {leads:?}");
    let at = 0.9 * (leads.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    let p90 = leads[lo] + (leads[hi] - leads[lo]) * (at - lo as f64);
    assert!(close(&current["lead_days"]["p90"], p90), "{current} {leads:?}");
    let weeks = (TO - FROM + 1) as f64 / 7.0;
    assert!(close(&current["alerts_per_rep_week"], counted.len() as f64 / 3.0 / weeks), "{current}");
    assert_eq!(report["sets"].as_array().unwrap().len(), 21, "current and the default grid's 20");
}

#[test]
fn a_grid_file_is_read_checked_and_its_suggestion_printed_as_toml() {
    let home = TestHome::new();
    let book = home.file("book.ndjson", &book());
    home.ok(&["import", book.to_str().unwrap()]);
    let grid = home.file(
        "grid.toml",
        "[[set]]\nname = \"quiet\"\n[set.escalation]\nscore_below = 20\n[set.scoring]\namber_min_score = 20\n\n\
         [[set]]\nname = \"eager\"\n[set.scoring]\naged_p1_p2_after_hours = 24\n",
    );
    let from = &day(FROM)[..10];
    let to = &day(TO)[..10];
    let args = ["backtest", "--from", from, "--to", to, "--horizon", "7", "--grid", grid.to_str().unwrap()];
    let json = home.json(&[&args[..], &["--json", "--min-precision", "0", "--min-recall", "0"]].concat());
    let names: Vec<&str> = json["sets"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["current", "quiet", "eager"]);
    assert_eq!(json["sets"][2]["rules"]["scoring"]["aged_p1_p2_after_hours"], 24);
    assert_eq!(json["sets"][1]["rules"]["escalation"]["score_below"], 20);
    let fewest = json["sets"].as_array().unwrap().iter().min_by_key(|s| s["alerts"].as_u64().unwrap()).unwrap();
    assert_eq!(json["suggested"], fewest["name"], "with no targets, the set with the fewest alerts");

    let text = home.ok(&[&args[..], &["--min-precision", "0", "--min-recall", "0"]].concat());
    if fewest["name"] == "quiet" {
        assert!(text.contains("[scoring]\namber_min_score = 20\n[escalation]\nscore_below = 20"), "{text}");
    }
    let svg = home.path().join("bt.svg");
    home.ok(&[&args[..], &["--svg", svg.to_str().unwrap()]].concat());
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("current") && svg.contains("days of warning"), "{svg}");

    let bad = home.file("bad.toml", "[[set]]\nname = \"x\"\n[set.scoring]\naged_hours = 3\n");
    let run = home.tam(&["backtest", "--from", from, "--to", to, "--grid", bad.to_str().unwrap()]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("set \"x\": [set.scoring]") && run.stderr.contains("aged_hours"), "{}", run.stderr);
    let bands = home.file("bands.toml", "[[set]]\nname = \"y\"\n[set.scoring]\namber_min_score = 90\n");
    let run = home.tam(&["backtest", "--from", from, "--to", to, "--grid", bands.to_str().unwrap()]);
    assert!(
        run.stderr.contains("set \"y\": scoring.amber_min_score: must not be above green_min_score"),
        "{}",
        run.stderr
    );
    let kind = home.file("kind.toml", "[[set]]\nname = \"z\"\n[set.scoring]\naged_p1_p2_after_hours = \"soon\"\n");
    let run = home.tam(&["backtest", "--from", from, "--to", to, "--grid", kind.to_str().unwrap()]);
    assert!(run.stderr.contains("set \"z\": [set.scoring]: aged_p1_p2_after_hours: invalid type"), "{}", run.stderr);
    let run = home.tam(&["backtest", "--from", to, "--to", from]);
    assert!(run.stderr.contains("is before --from"), "{}", run.stderr);
    let run = home.tam(&["backtest", "--from", "2099-01-01", "--to", "2099-02-01"]);
    assert!(run.stderr.contains("--from 2099-01-01 is in the future"), "{}", run.stderr);
}

#[test]
fn a_window_without_escalations_says_so_rather_than_dividing_by_zero() {
    let home = TestHome::new();
    let book = home.file("book.ndjson", &book());
    home.ok(&["import", book.to_str().unwrap()]);
    let json = home.json(&["backtest", "--from", "2026-01-05", "--to", "2026-01-12", "--json"]);
    assert_eq!(json["real_escalations"], 0);
    assert!(
        json["sets"].as_array().unwrap().iter().all(|s| s["recall"].is_null() && s["lead_days"]["median"].is_null())
    );
    let text = home.ok(&["backtest", "--from", "2026-01-05", "--to", "2026-01-12"]);
    assert!(text.contains("No real escalation in this window"), "{text}");
}
