//! The PostgreSQL back end end to end: the same answers as SQLite, `tam migrate`, a server that
//! cannot be reached, and replicas sharing one database. Each test uses the run's cluster
//! (`TAM_TEST_POSTGRES`) or starts one of its own.

use std::time::{Duration, Instant};

use tam_core::TenantId;
use tam_store::OutboxState;
use tam_testkit::postgres::{cluster, create_database};
use tam_testkit::{Answer, Fake};

use crate::TestHome;

const AT: &str = "2026-03-29T07:00:00Z";

/// `accounts` accounts of tenant acme, each with two P1 tickets ten days old and an integration
/// silent for four weeks: all red, all escalated by a scan at [`AT`], each with an outreach
/// draft and alerts.
fn red_book(accounts: usize) -> String {
    let mut book = String::new();
    for i in 1..=accounts {
        let rep = ["ana", "bo", "cy"][i % 3];
        book.push_str(&format!(
            r#"{{"record":"account","tenant_id":"acme","id":"a{i:02}","name":"Account {i}","rep_name":"{rep}","rep_email":"{rep}@v.example","contacts":["ops@a{i}.example"],"last_heartbeat":"2026-03-01T00:00:00Z"}}"#
        ));
        book.push('\n');
        for t in 1..=2 {
            book.push_str(&format!(
                r#"{{"record":"ticket","tenant_id":"acme","id":"T-{i}-{t}","account_id":"a{i:02}","priority":"P1","status":"open","created_at":"2026-03-19T00:00:00Z","subject":"Outage {t}"}}"#
            ));
            book.push('\n');
        }
    }
    book
}

#[test]
fn sqlite_and_postgres_give_the_same_scan_json() {
    let (_server, cluster) = cluster();
    let (lite, pg) = (TestHome::sqlite(), TestHome::on(&create_database(&cluster)));
    let outputs: Vec<Vec<String>> = [&lite, &pg]
        .iter()
        .map(|home| {
            home.ok(&["demo", "--accounts", "120", "--as-of", AT]);
            // The demo's scans, then a day later (trends, episodes, reminders read the history).
            let day = home.ok(&["scan", "--json", "--no-dispatch", "--as-of", "2026-03-30T07:00:00Z"]);
            let demo = TenantId::parse("t", "demo").unwrap();
            let account = home.store().account_ids(&demo).unwrap()[7].clone();
            let explained = home.ok(&["explain", "--tenant", "demo", "--json", &account]);
            vec![day, explained]
        })
        .collect();
    assert!(outputs[0][0].contains("\"accounts\""), "{}", outputs[0][0]);
    assert_eq!(outputs[0], outputs[1], "the same book scanned on SQLite and on PostgreSQL");
}

#[test]
fn tam_migrate_copies_a_home_into_an_empty_postgres_and_refuses_a_full_one() {
    let (_server, cluster) = cluster();
    let database = create_database(&cluster);
    // The cluster trusts local connections, so a password is accepted and ignored: what is
    // checked is that no output shows it.
    let with_password = database.replacen("postgres://tam@", "postgres://tam:hunter2secret@", 1);
    let lite = TestHome::sqlite();
    lite.ok(&["demo", "--accounts", "60", "--as-of", AT]);
    let run = lite.tam(&["migrate", "--to", &with_password, "--json"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!format!("{}{}", run.stdout, run.stderr).contains("hunter2secret"));
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = |table: &str| {
        report["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap()["rows"].as_u64().unwrap()
    };
    assert_eq!(rows("accounts"), 60);
    assert!(rows("tickets") > 0 && rows("snapshots") >= 60 && rows("outbox") > 0, "{report}");
    assert_eq!(report["tables"].as_array().unwrap().len(), 23, "every table, even the empty ones");

    // The copy answers as the original does, and goes on from there.
    let pg = TestHome::on(&database);
    for home in [&lite, &pg] {
        home.ok(&["scan", "--no-dispatch", "--as-of", "2026-03-30T07:00:00Z"]);
    }
    let demo = TenantId::parse("t", "demo").unwrap();
    let account = lite.store().account_ids(&demo).unwrap()[3].clone();
    let explain = |home: &TestHome| home.ok(&["explain", "--tenant", "demo", "--json", &account]);
    assert_eq!(explain(&lite), explain(&pg));
    let outbox = |home: &TestHome| home.ok(&["outbox", "list", "--tenant", "demo", "--json"]);
    assert_eq!(outbox(&lite), outbox(&pg), "ids continue where the copy left off");

    // A second copy into the now full database is refused, and changes nothing.
    let again = lite.tam(&["migrate", "--to", &with_password]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("not empty: its tenants table holds 1 rows"), "{}", again.stderr);
    assert!(!again.stderr.contains("hunter2secret"), "{}", again.stderr);
    assert_eq!(outbox(&lite), outbox(&pg));
}

#[test]
fn an_unreachable_postgres_is_one_line_naming_its_url_without_the_password() {
    let home = TestHome::on("postgres://tam:hunter2secret@127.0.0.1:1/tam");
    let run = home.tam(&["scan"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("postgres://tam@127.0.0.1:1/tam"), "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2secret"), "{}", run.stderr);
}

#[test]
fn a_database_lost_mid_run_fails_the_tick_and_once_it_is_back_the_next_ticks_go_on() {
    use std::io::BufRead;
    let server = tam_testkit::postgres::PostgresServer::start();
    // The cluster trusts local connections: the password is there to be kept out of the logs.
    let url = server.database().replacen("postgres://tam@", "postgres://tam:hunter2secret@", 1);
    let home = TestHome::on(&url);
    // What the outage interrupts is retried soon, and a lease it stranded runs out soon.
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file("home/tam.toml", "[outbox]\nbase_delay_ms = 200\nlease_seconds = 3\n");
    let book = home.file("book.ndjson", &red_book(3));
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--no-dispatch", "--as-of", AT]);
    let tenant = TenantId::parse("t", "acme").unwrap();
    let pending = || {
        let rows = home.store().outbox(&tenant, None).unwrap();
        rows.iter().filter(|r| r.state != OutboxState::Delivered).count()
    };
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "waited too long for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let mut serve = home
        .command()
        .args(["serve", "--tick-seconds", "1", "--grace-minutes", "0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let kept = std::sync::Arc::clone(&log);
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(|l| kept.lock().unwrap().push(l)));
    wait_for("the first delivery", &|| pending() == 0);

    server.stop();
    let failed = || log.lock().unwrap().iter().any(|l| l.contains("tick failed"));
    wait_for("a failed tick", &failed);
    server.restart();
    // New work after the outage: the replica, still running, delivers it.
    home.ok(&["scan", "--no-dispatch", "--as-of", "2026-04-06T07:00:00Z"]);
    assert!(pending() > 0);
    wait_for("the delivery after the outage", &|| pending() == 0);
    let _ = std::process::Command::new("kill").args(["-TERM", &serve.id().to_string()]).status();
    assert!(serve.wait().unwrap().success());
    let log = log.lock().unwrap().join("\n");
    assert!(!log.contains("hunter2secret"), "{log}");
    assert!(log.contains("tick failed"), "{log}");
}

#[test]
fn a_replica_that_served_requests_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let (_server, cluster) = cluster();
    let home = TestHome::on(&create_database(&cluster));
    let mut serve = home
        .command()
        .args(["serve", "--listen", "127.0.0.1:0", "--tick-seconds", "3600"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(serve.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited before listening").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["msg"] == "listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    // Several connections in the API's pool, each closed when the replica stops.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                let body = agent.get(format!("http://{addr}/healthz")).call().unwrap().into_body().read_to_string();
                assert!(body.unwrap().contains("\"status\":\"ok\""));
            });
        }
    });
    let _ = std::process::Command::new("kill").args(["-TERM", &serve.id().to_string()]).status();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = serve.wait().unwrap();
    assert!(status.success(), "{status}: {}", rest.join("\n"));
    assert!(!rest.iter().any(|l| l.contains("panicked")), "{}", rest.join("\n"));
}

#[test]
fn three_replicas_deliver_every_effect_once_when_one_is_killed_mid_dispatch() {
    let (_server, cluster) = cluster();
    let home = TestHome::on(&create_database(&cluster));
    let answer = || {
        let body = serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": r#"{"subject": "Our plan", "body_markdown": "Hello,\n\nEngineering is on both outages; you will hear from me tomorrow.\n\nYour TAM", "key_points": ["two P1 open"], "confidence": "high"}"#}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10},
        });
        let mut a = Answer::json(200, &body.to_string());
        a.delay = Duration::from_millis(500);
        a
    };
    let model = Fake::start_parallel((0..60).map(|_| answer()).collect());
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!(
            "[outbox]\nlease_seconds = 6\n\n[writer]\nmode = \"llm\"\nretries_per_model = 1\nretry_base_ms = 1\n\n\
             [[writer.models]]\nprovider = \"openai_compatible\"\nmodel = \"m\"\nbase_url = \"{}/v1\"\ntimeout_ms = 5000\n",
            model.url
        ),
    );
    let book = home.file("book.ndjson", &red_book(12));
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--no-dispatch", "--as-of", AT]);
    let tenant = TenantId::parse("t", "acme").unwrap();
    let planned = home.store().outbox(&tenant, None).unwrap();
    let drafts = planned.iter().filter(|r| r.kind == tam_core::outbox::EffectKind::Draft).count();
    assert_eq!(drafts, 12);

    // No scheduled job runs (no grace for a slot): the replicas only deliver.
    let replica = || {
        home.command()
            .args(["serve", "--tick-seconds", "1", "--grace-minutes", "0"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut first = replica();
    let in_flight = || home.store().outbox(&tenant, Some(OutboxState::InFlight)).unwrap();
    let started = Instant::now();
    while in_flight().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(30), "the first replica claimed nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut others = [replica(), replica()];
    // Killed while its claimed drafts are with the model: they wait out the lease.
    let held = in_flight().len();
    first.kill().unwrap();
    first.wait().unwrap();

    let settled = Instant::now();
    loop {
        let open = home.store().outbox(&tenant, Some(OutboxState::Pending)).unwrap().len() + in_flight().len();
        if open == 0 {
            break;
        }
        assert!(settled.elapsed() < Duration::from_secs(90), "{open} effects still undelivered");
        std::thread::sleep(Duration::from_millis(200));
    }
    for child in &mut others {
        let _ = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().unwrap();
    }

    let store = home.store();
    let rows = store.outbox(&tenant, None).unwrap();
    assert_eq!(rows.len(), planned.len(), "nothing planned twice");
    for row in &rows {
        assert_eq!(row.state, OutboxState::Delivered, "{row:?}");
        let delivered = store.attempts(row.id).unwrap().iter().filter(|a| a.outcome == "delivered").count();
        assert_eq!(delivered, 1, "{} recorded delivered {delivered} times", row.key);
    }
    assert!(held > 0 && rows.iter().any(|r| r.attempts > 1), "the killed replica's rows were claimed again");
    let saved = store.drafts(Some(&tenant)).unwrap();
    assert_eq!(saved.len(), 12, "one saved draft per outreach");
    assert!(saved.iter().all(|d| std::path::Path::new(&d.path).exists()), "each draft is on disk");
}
