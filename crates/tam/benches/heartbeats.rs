//! Heartbeats under load: a real `tam serve` on loopback takes 200 posts a second, from 20
//! clients, for 30 seconds. Reports the latency percentiles (target p99 < 50 ms) and checks
//! that every heartbeat was stored (none lost).
//!
//! `cargo bench -p tam --bench heartbeats`; `TAM_BENCH_SECONDS` and `TAM_BENCH_RATE` change
//! the run (30 s and 200/s by default).

#![allow(clippy::unwrap_used, reason = "a benchmark that cannot run should stop loudly")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const TOKEN: &str = "bench-heartbeat-token-0123";
const CLIENTS: u64 = 20;
const ACCOUNTS: u64 = 1_000;

fn count(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let (seconds, rate) = (count("TAM_BENCH_SECONDS", 30), count("TAM_BENCH_RATE", 200));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let tam = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tam")).env("TAM_HOME", &home).args(args).output().unwrap();
        assert!(out.status.success(), "tam {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let book: String = (0..ACCOUNTS)
        .map(|i| {
            json!({"record": "account", "tenant_id": "bench", "id": format!("acct-{i:04}"), "name": format!("Account {i}"),
                   "rep_name": "Rep", "rep_email": "rep@vendor.example"})
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(dir.path().join("book.ndjson"), book).unwrap();
    tam(&["import", dir.path().join("book.ndjson").to_str().unwrap()]);
    std::fs::write(home.join("tam.toml"), "[api.tokens]\nbench = \"TAM_API_TOKEN_BENCH\"\n").unwrap();

    let mut server = Command::new(env!("CARGO_BIN_EXE_tam"))
        .env("TAM_HOME", &home)
        .env("TAM_API_TOKEN_BENCH", TOKEN)
        .args(["serve", "--listen", "127.0.0.1:0", "--tick-seconds", "3600"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let addr = loop {
        let v: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        if v["msg"] == "listening" {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let url = format!("http://{addr}/v1/heartbeats");

    let per_client = rate * seconds / CLIENTS;
    let interval = Duration::from_secs_f64(CLIENTS as f64 / rate as f64);
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                // Clients start spread over one interval, then keep to their schedule.
                let first = Instant::now() + interval.mul_f64(c as f64 / CLIENTS as f64);
                let mut latencies = Vec::with_capacity(per_client as usize);
                let mut failed = 0u64;
                for n in 0..per_client {
                    let due = first + interval.mul_f64(n as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let account = (c * per_client + n) % ACCOUNTS;
                    let body = json!({"account_id": format!("acct-{account:04}"), "api_call_count": n}).to_string();
                    let sent = Instant::now();
                    let response = agent
                        .post(&url)
                        .header("authorization", &format!("Bearer {TOKEN}"))
                        .header("content-type", "application/json")
                        .send(body.as_bytes());
                    latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                    if !response.is_ok_and(|r| r.status().as_u16() == 202) {
                        failed += 1;
                    }
                }
                (latencies, failed)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = 0;
    for c in clients {
        let (latencies, f) = c.join().unwrap();
        all.extend(latencies);
        failed += f;
    }
    let wall = started.elapsed().as_secs_f64();
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();

    let store = tam_store::Store::open(&home.join("tam.db")).unwrap();
    let stored = store.heartbeat_count().unwrap();
    all.sort_by(f64::total_cmp);
    let at = |q: f64| all[((all.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    println!(
        "heartbeats {} posted by {CLIENTS} clients in {wall:.1} s ({:.0}/s); {failed} not accepted; {stored} stored (none lost: {})",
        all.len(),
        all.len() as f64 / wall,
        stored == all.len() as u64
    );
    println!(
        "latency    p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 50 ms)",
        at(0.50),
        at(0.90),
        at(0.99),
        all.last().copied().unwrap_or(0.0)
    );
}
