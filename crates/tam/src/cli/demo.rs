//! `tam demo`: a fictional book of business for the vendor "Northpeak", with five weeks of
//! history, imported through the same path as `tam import` and scanned weekly so trends,
//! escalation episodes and alert budgets all show. The escalations that really happened
//! follow a rule (below), so `tam backtest` has something to find.
//!
//! Deterministic: the same day gives the same data and the same scans, so running it twice
//! replaces rather than duplicates.

use std::io::Write as _;

use anyhow::{Result, ensure};
use tam_agent::import::Importer;
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::Store;

use crate::Outcome;
use crate::cli::rng::Rng;
use crate::cli::scan::{scan_tenant, write_table};
use crate::config::Config;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Accounts in the demo book.
    #[arg(long, default_value_t = 240, value_parser = clap::value_parser!(u64).range(10..=5_000))]
    accounts: u64,

    /// The latest scan instant. Default: today at 07:00 UTC (yesterday's before 07:00), so runs
    /// on the same day replace each other.
    #[arg(long, value_name = "RFC3339", value_parser = crate::cli::clock::parse_instant)]
    as_of: Option<Timestamp>,
}

const TENANT: &str = "demo";
const WEEKS: i64 = 4;
const HOUR: i64 = 3_600;

const REPS: &[(&str, &str)] = &[
    ("Ana Ruiz", "ana.ruiz@northpeak.example"),
    ("Ben Okafor", "ben.okafor@northpeak.example"),
    ("Chloé Martin", "chloe.martin@northpeak.example"),
    ("Dev Patel", "dev.patel@northpeak.example"),
    ("Emma Larsen", "emma.larsen@northpeak.example"),
    ("Farid Haddad", "farid.haddad@northpeak.example"),
];

const PREFIXES: &[&str] = &[
    "Acme",
    "Bluefin",
    "Cobalt",
    "Driftwood",
    "Evergreen",
    "Fjord",
    "Granite",
    "Harbor",
    "Ironclad",
    "Juniper",
    "Kestrel",
    "Lumen",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pinnacle",
    "Quarry",
    "Redwood",
    "Summit",
    "Tidal",
    "Umbra",
    "Vantage",
    "Willow",
    "Xenon",
    "Yarrow",
    "Zephyr",
    "Aurora",
    "Basalt",
    "Cedar",
    "Delta",
];
const SUFFIXES: &[&str] = &[
    "Logistics",
    "Health",
    "Bank",
    "Retail",
    "Energy",
    "Media",
    "Labs",
    "Foods",
    "Insurance",
    "Robotics",
    "Travel",
    "Telecom",
    "Freight",
    "Learning",
    "Capital",
    "Biotech",
    "Motors",
];

const P1_SUBJECTS: &[&str] = &[
    "Production API returns 502 for all EU traffic",
    "SSO login fails for every user after certificate rotation",
    "Webhook deliveries stopped after the last deploy",
    "Nightly data export produces corrupt CSV files",
    "Invoice sync creates duplicate payments",
];
const P2_SUBJECTS: &[&str] = &[
    "Bulk import times out above 10k rows",
    "429 rate-limit errors on the reporting endpoint",
    "OAuth token refresh fails intermittently",
    "Search misses records created in the last hour",
    "Sandbox environment unreachable from CI",
];
const P3_SUBJECTS: &[&str] = &[
    "Pagination limits in the v3 API",
    "Dashboard widget shows stale numbers",
    "How to rotate API keys without downtime",
    "Scheduled reports use the wrong time zone",
    "Webhook signature verification in Node.js",
    "Audit log missing role changes",
];
const P4_SUBJECTS: &[&str] = &[
    "Typo in the admin console",
    "Broken docs link on the webhooks page",
    "CSV export column order",
    "Question about the status page RSS feed",
];
const FEATURE_REQUESTS: &[&str] = &[
    "Feature request: SCIM user provisioning",
    "Feature request: webhook retries with backoff",
    "Feature request: audit log export to S3",
    "Feature request: per-region data residency",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Healthy,
    Busy,
    Aging,
    Troubled,
    Silent,
    Unmonitored,
    Recovering,
    Slipping,
}

/// Profile weights in percent; they sum to 100.
const PROFILES: &[(Profile, u64)] = &[
    (Profile::Healthy, 48),
    (Profile::Busy, 12),
    (Profile::Aging, 10),
    (Profile::Troubled, 7),
    (Profile::Silent, 8),
    (Profile::Unmonitored, 6),
    (Profile::Recovering, 5),
    (Profile::Slipping, 4),
];

struct DemoTicket {
    id: String,
    priority: &'static str,
    subject: &'static str,
    kind: &'static str,
    created_h: i64,
    resolved_h: Option<i64>,
    pending: bool,
}

struct DemoAccount {
    id: String,
    name: String,
    rep: usize,
    /// Hours before the anchor when heartbeats stopped; `None` = never monitored.
    silent_h: Option<i64>,
    tickets: Vec<DemoTicket>,
}

/// Today's 07:00 UTC (yesterday's before 07:00): the demo's "now", stable through the day.
fn anchor(now: Timestamp) -> Timestamp {
    let day = now.as_second().div_euclid(86_400) * 86_400;
    let seven = day + 7 * HOUR;
    let at = if now.as_second() >= seven { seven } else { seven - 86_400 };
    Timestamp::from_second(at).expect("a recent day is a valid timestamp")
}

fn book(accounts: u64) -> Vec<DemoAccount> {
    let mut rng = Rng::new(0xD3E0_2026);
    let mut out = Vec::new();
    let mut ticket_no = 1000;
    for i in 0..accounts as usize {
        let prefix = PREFIXES[i % PREFIXES.len()];
        let suffix = SUFFIXES[(i / PREFIXES.len() + i * 7) % SUFFIXES.len()];
        let round = i / (PREFIXES.len() * SUFFIXES.len());
        let name = if round == 0 { format!("{prefix} {suffix}") } else { format!("{prefix} {suffix} {}", round + 1) };
        let id = name.to_lowercase().replace(' ', "-");
        let roll = rng.range(0, 100);
        let profile = PROFILES
            .iter()
            .scan(0, |acc, &(p, w)| {
                *acc += w;
                Some((p, *acc))
            })
            .find(|&(_, upto)| roll < upto)
            .map_or(Profile::Healthy, |(p, _)| p);
        let mut tickets = Vec::new();
        let mut add = |rng: &mut Rng, priority: &'static str, created_h: i64, resolved_h: Option<i64>| {
            ticket_no += 1;
            let feature = priority == "P4" && rng.chance(30);
            let subjects = match priority {
                "P1" => P1_SUBJECTS,
                "P2" => P2_SUBJECTS,
                "P3" => P3_SUBJECTS,
                _ if feature => FEATURE_REQUESTS,
                _ => P4_SUBJECTS,
            };
            let kind = if feature {
                "feature_request"
            } else if matches!(priority, "P1" | "P2") {
                "bug"
            } else {
                rng.pick(&["question", "bug", "question"])
            };
            tickets.push(DemoTicket {
                id: format!("NP-{ticket_no}"),
                priority,
                subject: rng.pick(subjects),
                kind,
                created_h,
                resolved_h,
                pending: rng.chance(20),
            });
        };
        let span = (WEEKS + 1) * 7 * 24;
        // Everyone has some resolved history: opened at `created` hours before the anchor,
        // resolved a few hours to three days later.
        for _ in 0..rng.range(2, 7) {
            let created = rng.range(72, span as u64) as i64;
            let p = rng.pick(&["P2", "P3", "P3", "P4"]);
            let resolved = created - rng.range(4, 72) as i64;
            add(&mut rng, p, created, Some(resolved));
        }
        // Draws `count` open tickets of the given priorities, opened `lo..hi` hours ago.
        let mut open = |rng: &mut Rng, count: (u64, u64), priorities: &[&'static str], lo: u64, hi: u64| {
            for _ in 0..rng.range(count.0, count.1) {
                let p = rng.pick(priorities);
                let created = rng.range(lo, hi) as i64;
                add(rng, p, created, None);
            }
        };
        let mut silent_h = Some(rng.range(0, 6) as i64);
        match profile {
            Profile::Healthy => open(&mut rng, (0, 4), &["P3", "P4"], 2, 200),
            Profile::Busy => open(&mut rng, (6, 11), &["P3", "P3", "P4"], 2, 500),
            Profile::Aging => {
                open(&mut rng, (1, 3), &["P1", "P2", "P2"], 40, 300);
                open(&mut rng, (2, 5), &["P3"], 2, 300);
            }
            Profile::Troubled => {
                open(&mut rng, (2, 5), &["P1", "P2"], 40, 600);
                open(&mut rng, (2, 8), &["P3", "P4"], 2, 400);
                silent_h = Some(if rng.chance(50) { rng.range(150, 320) } else { rng.range(80, 140) } as i64);
            }
            Profile::Silent => {
                silent_h = Some(rng.range(75, 320) as i64);
                open(&mut rng, (0, 4), &["P3", "P4"], 2, 100);
            }
            Profile::Unmonitored => {
                silent_h = None;
                open(&mut rng, (0, 3), &["P2", "P3"], 2, 300);
            }
            Profile::Recovering => {
                // Deep in trouble when the history starts, fixed over the last week or so.
                for _ in 0..rng.range(2, 4) {
                    let p = rng.pick(&["P1", "P2"]);
                    let created = rng.range(690, 800) as i64;
                    let resolved = rng.range(30, 200) as i64;
                    add(&mut rng, p, created, Some(resolved));
                }
                for _ in 0..5 {
                    let created = rng.range(400, 700) as i64;
                    let resolved = rng.range(10, 300) as i64;
                    add(&mut rng, "P3", created, Some(resolved));
                }
            }
            Profile::Slipping => {
                open(&mut rng, (1, 3), &["P1"], 74, 130);
                open(&mut rng, (3, 6), &["P3"], 2, 150);
            }
        }
        out.push(DemoAccount { id, name, rep: i % REPS.len(), silent_h, tickets });
    }
    out
}

fn at(anchor: Timestamp, hours_before: i64) -> Timestamp {
    Timestamp::from_second(anchor.as_second() - hours_before * HOUR).expect("demo instants are recent")
}

fn accounts(book: &[DemoAccount], anchor: Timestamp) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for a in book {
        let (rep_name, rep_email) = REPS[a.rep];
        let heartbeat = a.silent_h.map(|h| at(anchor, h).to_string());
        out.push(serde_json::json!({
            "record": "account", "tenant_id": TENANT, "id": a.id, "name": a.name,
            "rep_name": rep_name, "rep_email": rep_email,
            "rep_chat_space": format!("spaces/northpeak-{}", rep_email.split('.').next().unwrap_or("tam")),
            "contacts": [format!("it-ops@{}.example", a.id), format!("cto@{}.example", a.id)],
            "check_in_interval_days": 30, "last_heartbeat": heartbeat,
        }));
    }
    out
}

fn heartbeats(book: &[DemoAccount], anchor: Timestamp) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let first = (WEEKS + 1) * 7 * 24;
    for a in book {
        let Some(silent) = a.silent_h else { continue };
        let mut h = first;
        while h >= silent {
            let calls = 1_000 + (first - h) * 37;
            out.push(serde_json::json!({
                "record": "heartbeat", "tenant_id": TENANT, "account_id": a.id,
                "at": at(anchor, h).to_string(), "api_call_count": calls,
            }));
            h -= 12;
        }
    }
    out
}

/// The tickets as they stood `hours_before` the anchor.
fn tickets(book: &[DemoAccount], anchor: Timestamp, hours_before: i64) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for a in book {
        for t in a.tickets.iter().filter(|t| t.created_h >= hours_before) {
            let (status, updated_h, resolved) = match t.resolved_h {
                Some(r) if r >= hours_before => {
                    (if r - hours_before > 72 { "closed" } else { "resolved" }, r, Some(at(anchor, r).to_string()))
                }
                _ if t.pending => ("pending", t.created_h.min(hours_before + 24), None),
                _ => ("open", t.created_h, None),
            };
            out.push(serde_json::json!({
                "record": "ticket", "tenant_id": TENANT, "id": t.id, "account_id": a.id,
                "priority": t.priority, "status": status, "subject": t.subject, "kind": t.kind,
                "created_at": at(anchor, t.created_h).to_string(),
                "updated_at": at(anchor, updated_h.max(hours_before)).to_string(),
                "resolved_at": resolved,
            }));
        }
    }
    out
}

/// Hours a P1/P2 ticket stays open before its account's customer escalates, and the days
/// that takes to reach the vendor: the rule the demo's real escalations follow.
const ESCALATES_AFTER_H: i64 = 96;
const ESCALATION_DELAY_H: i64 = 4 * 24;

/// The escalations that really happened: four of five accounts whose P1 or P2 ticket stayed
/// open past [`ESCALATES_AFTER_H`] escalated [`ESCALATION_DELAY_H`] later (once), and a few
/// accounts escalated for no reason the score can see.
fn escalations(book: &[DemoAccount], anchor: Timestamp) -> Vec<serde_json::Value> {
    let mut rng = Rng::new(0xE5CA_1A7E);
    let mut out = Vec::new();
    let span = (WEEKS + 1) * 7 * 24;
    for a in book {
        // When (hours before the anchor) a P1/P2 first passed the age, if it did while open.
        let aged = a
            .tickets
            .iter()
            .filter(|t| matches!(t.priority, "P1" | "P2"))
            .map(|t| (t.created_h - ESCALATES_AFTER_H, t.resolved_h))
            .filter(|&(when, resolved)| when > 0 && resolved.is_none_or(|r| r < when))
            .map(|(when, _)| when)
            .max();
        let happened = match aged {
            Some(when) if rng.chance(80) => Some(when - ESCALATION_DELAY_H),
            _ if rng.chance(2) => Some(rng.range(0, span as u64) as i64),
            _ => None,
        };
        if let Some(h) = happened.filter(|h| *h >= 0) {
            out.push(serde_json::json!({
                "record": "escalation", "tenant_id": TENANT, "account_id": a.id, "at": at(anchor, h).to_string(),
                "source": "csm", "note": "The customer's CTO escalated to our VP of Support",
            }));
        }
    }
    out
}

fn import(
    store: &mut Store,
    config: &Config,
    now: Timestamp,
    name: &str,
    records: Vec<serde_json::Value>,
) -> Result<()> {
    let mut importer = Importer::new(store, config.rules.import_options(now));
    importer.push(name, records)?;
    let report = importer.finish()?;
    ensure!(report.rejected.is_empty(), "demo data was rejected: {}", report.rejected[0]);
    Ok(())
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (mut store, config) = home.open()?;
    let now = Timestamp::now();
    let anchor = args.as_of.unwrap_or_else(|| anchor(now));
    ensure!(anchor <= now, "--as-of {anchor} is in the future");
    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    let book = book(args.accounts);

    import(&mut store, &config, now, "demo accounts", accounts(&book, anchor))?;
    import(&mut store, &config, now, "demo heartbeats", heartbeats(&book, anchor))?;
    import(&mut store, &config, now, "demo escalations", escalations(&book, anchor))?;
    let mut history = Vec::new();
    let mut channels = crate::clients::open(home, &config)?;
    for week in (0..=WEEKS).rev() {
        let hours_before = week * 7 * 24;
        import(&mut store, &config, now, "demo tickets", tickets(&book, anchor, hours_before))?;
        let as_of = anchor.checked_sub(SignedDuration::from_hours(hours_before)).expect("recent");
        history.push(scan_tenant(&mut store, &config, &tenant, as_of, false)?);
        channels.dispatch(&mut store, &tenant, &config.rules)?;
    }
    let latest = history.last().expect("at least one scan ran");
    let mut out = std::io::stdout().lock();
    let tickets: usize = book.iter().map(|a| a.tickets.len()).sum();

    writeln!(
        out,
        "Demo tenant {TENANT:?}: {} accounts, {} reps, {tickets} tickets, weekly scans from {} to {}.",
        book.len(),
        REPS.len(),
        history[0].as_of,
        latest.as_of
    )?;
    for scan in &history[..history.len() - 1] {
        let s = &scan.summary;
        writeln!(
            out,
            "  {}  {:>3} green {:>3} amber {:>3} red  {:>3} escalated ({} new)",
            scan.as_of, s.green, s.amber, s.red, s.escalated, s.new_escalations
        )?;
    }
    writeln!(out)?;
    write_table(&mut out, latest, 25)?;
    // Totals from the store, not from this run: a second run delivers nothing new.
    let drafts = store.drafts(Some(&tenant))?.len();
    let notes = store.notifications(&tenant)?;
    let count = |channel: &str, kind: &str| notes.iter().filter(|n| n.channel == channel && n.kind == kind).count();
    writeln!(out)?;
    writeln!(
        out,
        "Over the five scans: {drafts} outreach drafts saved for review (never sent) under {}; {} email and {} chat alerts and {} digests (by email and in chat) in {}.",
        home.dir.join("drafts").display(),
        count("email", "individual"),
        count("chat", "individual"),
        count("email", "digest"),
        home.dir.join("notifications").display(),
    )?;
    if let Some(worst) = latest.accounts.first() {
        writeln!(out)?;
        writeln!(out, "Next: `tam explain {}` shows why it scores {}.", worst.account, worst.health.score)?;
        writeln!(out, "      `tam scan --tenant {TENANT} --json` gives the same scan for machines.")?;
        writeln!(out, "      `tam drafts list`, `tam outbox list` and `tam events tail` show what the scans caused.")?;
        let from = anchor.checked_sub(SignedDuration::from_hours(4 * 7 * 24)).expect("recent").strftime("%Y-%m-%d");
        let to = anchor.strftime("%Y-%m-%d");
        writeln!(
            out,
            "      `tam backtest --tenant {TENANT} --from {from} --to {to}` checks the score against the \
             escalations that really happened."
        )?;
    }
    Ok(Outcome::Done)
}
