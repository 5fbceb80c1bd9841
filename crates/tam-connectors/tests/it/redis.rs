//! The Redis Streams event bus against a real `redis-server` (started per test on a free port).

use std::time::Duration;

use serde_json::json;
use tam_connectors::redis_bus::{Consumer, RedisBus};
use tam_core::Timestamp;
use tam_core::comms::Event;
use tam_core::outbox::Outcome;
use tam_core::ports::EventBus;

use crate::tenant;

use tam_testkit::RedisServer as Redis;

fn event(t: &str, n: u32) -> Event {
    Event {
        event_id: format!("evt-{n}"),
        event_type: "escalation".into(),
        tenant_id: tenant(t),
        source_agent_id: "technical_account_manager".into(),
        call_chain: vec!["technical_account_manager".into()],
        priority: "high".into(),
        data: json!({"account_id": format!("a{n}"), "score": 10}),
        created_at: "2026-03-29T07:00:00Z".parse::<Timestamp>().unwrap(),
    }
}

fn delivered(o: Outcome) -> String {
    match o {
        Outcome::Delivered { receipt } => receipt,
        other => panic!("not delivered: {other:?}"),
    }
}

#[test]
fn publish_consume_ack_round_trip() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    let receipt = delivered(bus.publish(&event("acme", 1)));
    assert!(receipt.starts_with("tam:acme:escalations#"), "{receipt}");
    let mut sales =
        Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "s1", Duration::from_secs(60)).unwrap();
    let got = sales.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event, event("acme", 1), "every field survives the round trip");
    assert_eq!(sales.pending().unwrap(), 1);
    sales.ack(&got[0].id).unwrap();
    assert_eq!(sales.pending().unwrap(), 0);
    assert!(sales.next(10, Duration::from_millis(50)).unwrap().is_empty());
}

#[test]
fn an_entry_left_by_a_dead_consumer_is_reclaimed_and_processed_once() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    delivered(bus.publish(&event("acme", 7)));
    let idle = Duration::from_millis(100);
    let mut doomed = Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "dies", idle).unwrap();
    let taken = doomed.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(taken.len(), 1);
    drop(doomed); // killed before it acknowledged
    let mut heir = Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "lives", idle).unwrap();
    assert!(heir.next(10, Duration::from_millis(10)).unwrap().is_empty(), "not idle long enough yet");
    std::thread::sleep(Duration::from_millis(150));
    let reclaimed = heir.next(10, Duration::from_millis(10)).unwrap();
    assert_eq!(reclaimed.iter().map(|e| e.event.event_id.as_str()).collect::<Vec<_>>(), ["evt-7"]);
    heir.ack(&reclaimed[0].id).unwrap();
    assert_eq!(heir.pending().unwrap(), 0);
    std::thread::sleep(Duration::from_millis(150));
    assert!(heir.next(10, Duration::from_millis(10)).unwrap().is_empty(), "processed once");
}

#[test]
fn a_repeated_event_is_processed_once_and_another_tenants_is_refused() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 1_000);
    delivered(bus.publish(&event("acme", 3)));
    delivered(bus.publish(&event("acme", 3))); // the outbox repeated it after a crash
    let mut sales =
        Consumer::open(&redis.url, &tenant("acme"), "escalations", "sales", "s1", Duration::from_secs(60)).unwrap();
    let got = sales.next(10, Duration::from_millis(100)).unwrap();
    assert_eq!(got.len(), 1, "deduplicated by event_id");
    sales.ack(&got[0].id).unwrap();
    assert_eq!(sales.pending().unwrap(), 0, "the duplicate was acknowledged too");
    match bus.publish(&event("globex", 4)) {
        Outcome::Rejected { reason } => assert!(reason.contains("refused by the bus of tenant \"acme\""), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn trimming_keeps_the_stream_bounded() {
    let redis = Redis::start();
    let mut bus = RedisBus::new(&redis.url, tenant("acme"), 200);
    for n in 0..3_000 {
        delivered(bus.publish(&event("acme", n)));
    }
    let mut c = Consumer::open(&redis.url, &tenant("acme"), "escalations", "g", "c", Duration::from_secs(60)).unwrap();
    let len = c.stream_len().unwrap();
    // Approximate trimming removes whole nodes (100 entries by default), so it keeps a little more.
    assert!((200..=400).contains(&len), "{len}");
}

#[test]
fn a_bus_that_is_down_asks_for_a_retry() {
    let redis = Redis::start();
    let url = redis.url.clone();
    drop(redis);
    let mut bus = RedisBus::new(&url, tenant("acme"), 100);
    assert!(matches!(bus.publish(&event("acme", 1)), Outcome::Retry { .. }));
}
