//! `tam serve` with a controllable clock (`--once --at`): the daily scan at 07:00 in
//! Europe/Berlin fires once per day across the DST change, a restart within the grace runs the
//! missed scan once, a restart past it records a miss, and two processes on one store run a
//! slot once. A real `tam serve` stops cleanly on SIGTERM.

use serde_json::Value;

use crate::TestHome;

fn berlin_home() -> TestHome {
    let home = TestHome::new();
    let book = home.file(
        "book.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@vendor.example"}
{"record":"ticket","tenant_id":"acme","id":"T1","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"API down"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    std::fs::write(home.path().join("home/tam.toml"), "[tenants.acme]\ntime_zone = \"Europe/Berlin\"\n").unwrap();
    home
}

/// The scan job's rows, oldest slot first: (slot, outcome).
fn scan_runs(home: &TestHome) -> Vec<(String, String)> {
    let out = home.ok(&["jobs", "--tenant", "acme", "--json"]);
    let mut runs: Vec<(String, String)> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["job"] == "scan")
        .map(|r| (r["slot"].as_str().unwrap().to_owned(), r["outcome"].as_str().unwrap().to_owned()))
        .collect();
    runs.reverse();
    runs
}

#[test]
fn the_daily_scan_fires_once_a_day_across_dst_runs_late_within_the_grace_and_records_a_miss_after_it() {
    let home = berlin_home();
    let tick = |at: &str| home.ok(&["serve", "--once", "--at", at]);
    tick("2026-03-28T06:10:00Z"); // 07:10 CET: a first start within the grace runs today's scan
    tick("2026-03-28T06:50:00Z"); // nothing new
    tick("2026-03-29T05:30:00Z"); // 07:30 CEST, the day clocks went forward: a late run, once
    tick("2026-03-29T05:45:00Z");
    tick("2026-03-30T07:00:00Z"); // 09:00 CEST: two hours late, past the one-hour grace
    assert_eq!(
        scan_runs(&home),
        [
            ("2026-03-28T06:00:00Z".to_owned(), "ok".to_owned()),
            ("2026-03-29T05:00:00Z".to_owned(), "ok".to_owned()),
            ("2026-03-30T05:00:00Z".to_owned(), "missed".to_owned()),
        ]
    );
    let listed = home.ok(&["jobs"]);
    assert!(listed.contains("missed") && listed.contains("1 green"), "{listed}");
    let explained = home.json(&["explain", "a1", "--json"]);
    assert_eq!(explained["history"].as_array().map(Vec::len), Some(2), "two scans ran: {explained}");
}

#[test]
fn two_processes_on_one_store_run_the_daily_scan_once() {
    let home = berlin_home();
    let spawn = || {
        home.command()
            .args(["serve", "--once", "--at", "2026-03-28T06:10:00Z"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let logs: Vec<String> =
        [a, b].into_iter().map(|c| String::from_utf8(c.wait_with_output().unwrap().stderr).unwrap()).collect();
    let scans: usize = logs
        .iter()
        .map(|l| l.lines().filter(|x| x.contains("job started") && x.contains(r#""job":"scan""#)).count())
        .sum();
    assert_eq!(scans, 1, "exactly one process ran the scan:\n{}", logs.join("\n---\n"));
    assert_eq!(scan_runs(&home), [("2026-03-28T06:00:00Z".to_owned(), "ok".to_owned())]);
}

#[test]
fn serve_stops_cleanly_on_sigterm() {
    let home = berlin_home();
    let mut child =
        home.command().args(["serve", "--tick-seconds", "1"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "serve did not stop on SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    for line in log.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
    }
    assert!(log.contains(r#""msg":"stopped""#), "{log}");
}

#[test]
fn a_configured_jira_sync_runs_hourly() {
    let home = berlin_home();
    let empty = r#"{"issues":[],"isLast":true}"#;
    let jira =
        tam_testkit::Fake::start(vec![tam_testkit::Answer::json(200, empty), tam_testkit::Answer::json(200, empty)]);
    std::fs::write(
        home.path().join("home/tam.toml"),
        format!(
            "[tenants.acme]\ntime_zone = \"Europe/Berlin\"\n[jira]\ntenant = \"acme\"\nbase_url = \"{}\"\nemail = \"t@v.example\"\nproject = \"SUP\"\n",
            jira.url
        ),
    )
    .unwrap();
    let env = [("JIRA_API_TOKEN", "token")];
    for at in ["2026-03-28T06:10:00Z", "2026-03-28T06:40:00Z", "2026-03-28T07:05:00Z"] {
        let run = home.tam_env(&["serve", "--once", "--at", at], &env);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let out = home.ok(&["jobs", "--json"]);
    let syncs: Vec<Value> =
        out.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["job"] == "sync:jira").collect();
    let slots: Vec<&str> = syncs.iter().map(|r| r["slot"].as_str().unwrap()).collect();
    assert_eq!(slots, ["2026-03-28T07:00:00Z", "2026-03-28T06:00:00Z"], "one sync per hour");
    assert!(syncs.iter().all(|r| r["outcome"] == "ok"), "{syncs:?}");
    assert_eq!(jira.seen.lock().unwrap().len(), 2);
}

#[test]
fn a_replica_restarted_after_a_kill_runs_the_slot_its_dead_predecessor_held() {
    let home = berlin_home();
    // This machine's part of a worker id, as `tam serve` logs it.
    let first = home.tam(&["serve", "--once", "--at", "2026-03-27T00:00:00Z"]);
    let worker = first.stderr.lines().find_map(|l| {
        let event: Value = serde_json::from_str(l).ok()?;
        event["worker"].as_str().map(str::to_owned)
    });
    let worker = worker.expect("serve logs its worker");
    let host = worker.strip_prefix("tam-").unwrap().rsplitn(3, '-').nth(2).unwrap().to_owned();
    // A replica of this host was killed while running the 07:00 scan.
    let mut store = home.store();
    let tenant = tam_core::TenantId::parse("t", "acme").unwrap();
    let slot: tam_core::Timestamp = "2026-03-28T06:00:00Z".parse().unwrap();
    let dead = format!("tam-{host}-4000000000-0badc0de");
    assert!(store.claim_job(&tenant, "scan", slot, &dead, slot).unwrap());
    drop(store);
    // Restarted within the grace: the slot runs, once.
    home.ok(&["serve", "--once", "--at", "2026-03-28T06:10:00Z"]);
    assert_eq!(scan_runs(&home), [("2026-03-28T06:00:00Z".to_owned(), "ok".to_owned())]);
}

#[test]
fn sigterm_during_a_slow_mailboxs_batch_stops_within_a_draft_and_leaves_the_rest_pending() {
    use tam_testkit::gmail::{FakeGmail, SCOPE_COMPOSE, SCOPE_READONLY, SCOPE_SEND};
    let gmail = FakeGmail::start();
    gmail.grant(&[SCOPE_COMPOSE, SCOPE_SEND, SCOPE_READONLY]);
    // Each draft is a lookup and a save: 0.8 s, two at a time, so the batch of 30 takes 12 s.
    gmail.set_latency(std::time::Duration::from_millis(400));
    let home = TestHome::new();
    let mut book = String::new();
    for n in 0..30 {
        book.push_str(&format!(
            r#"{{"record":"account","tenant_id":"acme","id":"r{n:02}","name":"Red {n}","rep_name":"Ana","rep_email":"ana@vendor.example","contacts":["ops@r{n:02}.example"]}}
{{"record":"heartbeat","tenant_id":"acme","account_id":"r{n:02}","at":"2026-03-10T00:00:00Z"}}
"#
        ));
        for t in 0..3 {
            book.push_str(&format!(
                r#"{{"record":"ticket","tenant_id":"acme","id":"T{n}-{t}","account_id":"r{n:02}","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"Down"}}
"#
            ));
        }
    }
    let book = home.file("book.ndjson", &book);
    home.ok(&["import", book.to_str().unwrap()]);
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../tam-connectors/tests/fixtures/test_service_account.json");
    std::fs::write(
        home.path().join("home/tam.toml"),
        format!(
            "[tenants.acme]\ntime_zone = \"Europe/Berlin\"\n[mail]\nkind = \"gmail\"\nservice_account_file_env = \"TAM_TEST_GMAIL_KEY\"\nbase_url = \"{}\"\ntoken_uri = \"{}\"\nalerts_from = \"tam@vendor.example\"\nconcurrency = 2\n",
            gmail.base_url(),
            gmail.token_uri()
        ),
    )
    .unwrap();
    let mut child = home
        .command()
        .env("TAM_TEST_GMAIL_KEY", key)
        .args(["serve", "--once", "--at", "2026-03-28T06:10:00Z"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the mailbox is at work, then ask to stop.
    let begun = std::time::Instant::now();
    while gmail.drafts("ana@vendor.example").len() < 2 {
        assert!(begun.elapsed() < std::time::Duration::from_secs(20), "no draft was saved");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let asked = std::time::Instant::now();
    let status = child.wait().unwrap();
    let stopped_in = asked.elapsed();
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{log}");
    // The drafts in flight finish (a lookup and a save each); no other begins.
    assert!(stopped_in < std::time::Duration::from_millis(2_500), "stopped after {stopped_in:?}:\n{log}");
    let saved = gmail.drafts("ana@vendor.example").len();
    assert!(saved < 12, "{saved} drafts saved: the batch went on after SIGTERM");
    let listed = home.json(&["outbox", "list", "--json"]);
    let rows = listed.as_array().unwrap();
    assert!(rows.iter().all(|r| r["status"] != "in_flight"), "nothing is left leased");
    let drafts_pending: Vec<&Value> =
        rows.iter().filter(|r| r["effect"] == "draft" && r["status"] == "pending").collect();
    assert_eq!(drafts_pending.len(), 30 - saved, "every draft not saved waits");
    assert!(drafts_pending.iter().all(|r| r["attempts"] == 0), "a draft not begun spent no attempt");
}
