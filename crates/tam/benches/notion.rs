//! Notion mode against the local fake Notion, which refuses more than 3 requests a second
//! (429 with `Retry-After`): one `tam scan` reads both databases, scores, and writes health
//! back to every changed account page through the outbox. Reports the calls made against the lower bound (the
//! query pages both databases need, plus one update per changed account), the requests lost
//! to 429, and the wall time against `calls ÷ 3 s`. Then one `tam sync notion`: what it reads
//! once the scan wrote health (nothing, unless `[notion.accounts] last_edited_by = ""`, say
//! `TAM_NOTION__ACCOUNTS__LAST_EDITED_BY=`, makes it read tam's own writes again).
//!
//! `cargo bench -p tam --bench notion`; `TAM_BENCH_ACCOUNTS` / `TAM_BENCH_TICKETS` change the
//! book (1,000 and 5,000 by default). It takes about `calls ÷ 3` seconds: six minutes.

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot run should stop loudly")]

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use tam_testkit::notion::FakeNotion;

const TOKEN: &str = "ntn_bench_token";
const RATE: f64 = 3.0;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn text(t: &str) -> Value {
    json!([{"type": "text", "text": {"content": t}}])
}

fn tam(home: &std::path::Path, args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tam"))
        .args(args)
        .env("TAM_HOME", home)
        .env("NOTION_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c == 0 || c == 3),
        "tam {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or(Value::Null)
}

fn main() {
    let (n_accounts, n_tickets) = (count("TAM_BENCH_ACCOUNTS", 1_000), count("TAM_BENCH_TICKETS", 5_000));
    // Notion allows short bursts; the average is what it enforces.
    let fake = FakeNotion::start(TOKEN, RATE, 5);
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let parent = fake.add_parent_page("TAM");
    std::fs::write(
        home.join("tam.toml"),
        format!("[notion]\ntenant = \"bench\"\nbase_url = \"{}\"\nrequests_per_second = {RATE}\n", fake.url),
    )
    .unwrap();
    let init = tam(&home, &["notion", "init", "--parent", &parent, "--json"]);
    let (accounts, tickets) =
        (init["accounts_database"].as_str().unwrap().to_owned(), init["tickets_database"].as_str().unwrap().to_owned());
    std::fs::write(
        home.join("tam.toml"),
        format!(
            "[notion]\ntenant = \"bench\"\nbase_url = \"{}\"\nrequests_per_second = {RATE}\naccounts_database = \"{accounts}\"\ntickets_database = \"{tickets}\"\n",
            fake.url
        ),
    )
    .unwrap();

    let day = |n: i64| {
        let at = tam_core::Timestamp::now().checked_sub(tam_core::SignedDuration::from_hours(24 * n)).unwrap();
        at.strftime("%Y-%m-%d").to_string()
    };
    fake.set_now(&format!("{}T10:00:00.000Z", day(1)));
    let mut ids = Vec::with_capacity(n_accounts);
    for i in 0..n_accounts {
        ids.push(fake.add_page(
            &accounts,
            &json!({"Name": {"title": text(&format!("Customer {i}"))}, "Rep": {"rich_text": text("Ana Ruiz")},
                    "Rep Email": {"email": format!("rep{}@vendor.example", i % 20)},
                    "Last Heartbeat": {"date": {"start": day(i as i64 % 3)}}}),
        ));
    }
    // Everyday tickets: the book's health varies, nothing escalates (escalations add profile
    // pages, which the lower bound does not count).
    for i in 0..n_tickets {
        let priority = ["P3", "P4"][i % 2];
        fake.add_page(
            &tickets,
            &json!({"Name": {"title": text(&format!("Question {i}"))}, "Ticket ID": {"rich_text": text(&format!("T-{i}"))},
                    "Account": {"relation": [{"id": ids[i % n_accounts]}]}, "Priority": {"select": {"name": priority}},
                    "Status": {"select": {"name": "open"}}, "Created": {"date": {"start": day(2 + (i % 20) as i64)}}}),
        );
    }
    fake.set_now(&tam_core::Timestamp::now().strftime("%Y-%m-%dT%H:%M:00.000Z").to_string());
    let before = fake.stats().requests;

    let started = Instant::now();
    let scan = tam(&home, &["scan", "--tenant", "bench", "--json"]);
    let sync = &scan["notion"];
    let wall = started.elapsed().as_secs_f64();

    let stats = fake.stats();
    let calls = stats.requests - before;
    let pages = n_accounts.div_ceil(100) + n_tickets.div_ceil(100);
    let changed = scan["dispatch"]["delivered"].as_u64().unwrap_or(0);
    let bound = pages as u64 + changed;
    println!(
        "notion    {n_accounts} accounts, {n_tickets} tickets; read {} + {} pages, stored {} + {}",
        sync["account_pages"], sync["ticket_pages"], sync["accounts"], sync["tickets"]
    );
    println!(
        "calls     {calls} (lower bound {bound} = {pages} query pages + {changed} account updates; ratio {:.3}, target <= 1.1)",
        calls as f64 / bound as f64
    );
    println!("429       {} requests refused for going over {RATE}/s (target 0)", stats.rate_limited);
    println!(
        "wall      {wall:.1} s (calls ÷ {RATE} = {:.1} s; ratio {:.3}, target <= 1.15); busiest second {} requests",
        calls as f64 / RATE,
        wall / (calls as f64 / RATE),
        stats.peak_per_second
    );
    println!("routes    {:?}", stats.routes);

    // The next sync after the scan wrote health: tam's own edits are left out, so it reads
    // only what people changed since (here nothing).
    let before = fake.stats().requests;
    let next = tam(&home, &["sync", "notion", "--json"]);
    println!(
        "next sync read {} + {} pages in {} calls (tam wrote {changed} account pages; {} notes)",
        next["account_pages"],
        next["ticket_pages"],
        fake.stats().requests - before,
        next["notes"].as_array().map_or(0, Vec::len)
    );
}
