//! The Redis Streams event bus end to end: a scan publishes, the Sales Agent's side consumes.

use tam_testkit::RedisServer;

use crate::TestHome;

const BOOK: &str = r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@v.example","contacts":["ops@nw.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}
{"record":"ticket","tenant_id":"acme","id":"T-1","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"API down"}
{"record":"ticket","tenant_id":"acme","id":"T-2","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"SSO broken"}
{"record":"ticket","tenant_id":"acme","id":"T-3","account_id":"a1","priority":"P2","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"Exports slow"}
"#;

#[test]
fn a_scan_publishes_to_redis_and_a_consumer_group_reads_each_event_once() {
    let redis = RedisServer::start();
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file(
        "home/tam.toml",
        &format!("[event_bus]\nkind = \"redis\"\nredis_url = \"{}\"\nmaxlen = 1000\n", redis.url),
    );
    assert!(home.ok(&["doctor"]).contains("ok    event bus (redis)"));
    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);

    // `tam events tail` reads the Redis stream (without a consumer group, so it takes nothing
    // from the Sales Agent's group).
    let tail = home.ok(&["events", "tail", "--json"]);
    let tailed: Vec<serde_json::Value> = tail.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(tailed.len(), 1, "{tail}");
    assert_eq!(tailed[0]["data"]["account_id"], "a1");
    assert!(tailed[0]["entry_id"].as_str().is_some_and(|id| id.contains('-')), "{tail}");
    assert_eq!(home.ok(&["events", "tail", "--limit", "1"]).lines().count(), 1);

    let consume = ["events", "consume", "--tenant", "acme", "--group", "sales", "--idle-ms", "200"];
    let first = home.ok(&consume);
    let events: Vec<serde_json::Value> = first.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 1, "one escalation, even though the scan ran twice: {first}");
    assert_eq!((events[0]["event_type"].as_str(), events[0]["tenant_id"].as_str()), (Some("escalation"), Some("acme")));
    assert_eq!(events[0]["data"]["account_id"], "a1");
    assert!(home.ok(&consume).is_empty(), "acknowledged events are not read again");
    let run = home.tam(&["events", "consume", "--tenant", "acme", "--group", "sales"]);
    assert_eq!(run.code, 0);
}

#[test]
fn the_bench_times_the_dispatcher_publishing_to_redis() {
    let redis = RedisServer::start();
    let home = TestHome::new();
    let dir = home.path().join("bench");
    let out = home.json(&[
        "bench",
        "--accounts",
        "50",
        "--tickets",
        "200",
        "--json",
        "--dir",
        dir.to_str().unwrap(),
        "--redis-url",
        &redis.url,
        "--events",
        "300",
    ]);
    assert_eq!(out["redis_events"].as_u64(), Some(300));
    assert!(out["redis_events_per_second"].as_f64().unwrap() > 0.0, "{out}");
}

#[test]
fn a_password_in_the_redis_url_is_sent_with_auth_and_never_shown() {
    let redis = RedisServer::start_with_password("s3cr%t@pw");
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    let with = |password: &str| {
        let url = redis.url.replace("redis://", &format!("redis://:{password}@"));
        home.file("home/tam.toml", &format!("[event_bus]\nkind = \"redis\"\nredis_url = \"{url}\"\n"));
    };
    // The password is percent-encoded in the URL, as `%` and `@` must be.
    with("s3cr%25t%40pw");
    let doctor = home.ok(&["doctor"]);
    assert!(doctor.contains("ok    event bus (redis)"), "{doctor}");
    assert!(!doctor.contains("s3cr"), "the password is never shown: {doctor}");
    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    assert_eq!(home.ok(&["events", "tail"]).lines().count(), 1, "the event reached the protected Redis");

    with("wrong");
    let refused = home.tam(&["doctor"]);
    let said = format!("{}{}", refused.stdout, refused.stderr);
    assert!(said.contains("WRONGPASS") || said.contains("invalid password"), "{said}");
    assert!(!said.contains("wrong"), "not even a wrong password is shown: {said}");
}
