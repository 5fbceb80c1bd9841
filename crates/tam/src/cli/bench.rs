//! `tam bench`: generates a large book of business, imports it into a fresh home and scans it,
//! timing each phase and reading the phase's peak memory from the kernel.
//!
//! The targets (SPEC, issue 2) on a 2-core machine: import >= 200,000 records/s; scan of
//! 100,000 accounts with 1,000,000 tickets <= 5 s and <= 400 MB peak RSS.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tam_agent::import::{Format, Importer};
use tam_core::{SignedDuration, TenantId, Timestamp};

use crate::Outcome;
use crate::cli::rng::Rng;
use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// Accounts to generate.
    #[arg(long, default_value_t = 100_000)]
    accounts: u64,

    /// Tickets to generate, spread unevenly over the accounts.
    #[arg(long, default_value_t = 1_000_000)]
    tickets: u64,

    /// Work in this directory instead of a temporary one (and keep it).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,

    /// Also time the dispatcher publishing events to this Redis (`redis://host:port`).
    #[arg(long, value_name = "URL")]
    redis_url: Option<String>,

    /// Events to publish in the Redis phase.
    #[arg(long, default_value_t = 20_000)]
    events: u64,

    /// Signed Jira webhook deliveries to process after the scans, each re-scoring one account.
    #[arg(long, default_value_t = 1_000)]
    webhooks: u64,

    /// Run on this PostgreSQL database instead of a SQLite file, in schemas of the bench's own
    /// (`tam_bench*`, dropped and created afresh); then also time replicas delivering together.
    #[arg(long, value_name = "URL")]
    database: Option<String>,

    /// With --database: how many `tam outbox deliver` processes share the replicas' effects.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(2..=16))]
    replicas: u64,

    /// With --database: the effects the replicas deliver.
    #[arg(long, default_value_t = 10_000)]
    replica_effects: u64,
}

/// Shown without the database URL, which may hold a password.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let database = self.database.as_deref().map(|url| tam_store::Location::Postgres(url.to_owned()).to_string());
        f.debug_struct("Args")
            .field("accounts", &self.accounts)
            .field("tickets", &self.tickets)
            .field("database", &database)
            .field("replicas", &self.replicas)
            .finish_non_exhaustive()
    }
}

/// The bench's store for one of its homes: the home's SQLite file, or a schema of its own in
/// the `--database`.
fn open_home(home: &Home, database: Option<&str>, schema: &str) -> Result<(tam_store::Store, crate::config::Config)> {
    std::fs::create_dir_all(&home.dir)?;
    let mut config = crate::config::Config::load(&home.config_path(), crate::config::tam_env()?)?;
    if let Some(url) = database {
        config.store = Some(tam_store::Location::fresh_schema(url, schema)?);
    }
    let store = tam_store::Store::open_at(&home.store_location(&config))?;
    Ok((store, config))
}

const TENANT: &str = "bench";
const AS_OF: &str = "2026-03-29T07:00:00Z";

pub fn run(_home: &Home, args: Args) -> Result<Outcome> {
    let temp;
    let dir = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temp = tempdir()?;
            temp.0.clone()
        }
    };
    let home = Home { dir: dir.join("home") };
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", home.db_path().display()));
    }
    let data = dir.join("book.ndjson");
    let as_of: Timestamp = AS_OF.parse().expect("constant timestamp");

    let started = Instant::now();
    let records = generate(&data, args.accounts, args.tickets, as_of)?;
    let generate_time = started.elapsed();
    crate::warn(format_args!("generated {records} records in {:.2} s", generate_time.as_secs_f64()));

    std::fs::create_dir_all(&home.dir)?;
    // Webhooks name their account by an `account:` label; the secret is the bench's own.
    std::fs::write(home.config_path(), format!("[jira]\ntenant = \"{TENANT}\"\n"))?;
    let database = args.database.as_deref();
    let (mut store, config) = open_home(&home, database, "tam_bench")?;
    reset_peak_rss();
    let started = Instant::now();
    let report = import_book(&mut store, &config, &data, as_of)?;
    let import_time = started.elapsed();
    let import_rss = peak_rss_mib();

    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    reset_peak_rss();
    let started = Instant::now();
    let first = score(&mut store, &config, &tenant, as_of)?;
    let scan_time = started.elapsed();
    let scan_rss = peak_rss_mib();

    // A day later, with yesterday's snapshots as history: the daily steady state.
    let next_day = as_of.checked_add(SignedDuration::from_hours(24)).expect("in range");
    reset_peak_rss();
    let started = Instant::now();
    let second = score(&mut store, &config, &tenant, next_day)?;
    let rescan_time = started.elapsed();
    let rescan_rss = peak_rss_mib();

    // The seed's scorer on the same book: from the store, before anything else changes it, and
    // from the import file.
    let seed = [("store", home.db_path()), ("book", data.clone())].map(|(mode, source)| {
        let took = match database {
            // It reads SQLite only.
            Some(_) if mode == "store" => Err("the store is PostgreSQL".to_owned()),
            _ => seed_scorer(&home, mode, &source, as_of),
        };
        (mode, took)
    });

    let hooks = webhook_phase(&mut store, &config, args.webhooks.min(args.accounts), args.accounts)?;

    // Everything the two scans and the webhooks planned, delivered to the embedded channels.
    reset_peak_rss();
    let delivery = deliver_phase(&home, &mut store, &config, &tenant)?;
    let delivery_rss = peak_rss_mib();
    let pages = dashboard_phase(&store, &config, &tenant)?;
    let reads = mcp_phase(&store, &tenant)?;
    let reports = reports_phase(&mut store, &tenant)?;
    let book_backtest = book_backtest(&store, &config, &tenant, next_day)?;
    let backtest_accounts = args.accounts.min(BACKTEST_ACCOUNTS);
    let backtest = backtest_phase(&dir.join("backtest"), database, backtest_accounts)?;
    // The same on a small book, so the cost of one effect can be compared across book sizes.
    let small = if args.accounts > SMALL_BOOK {
        let tickets = args.tickets * SMALL_BOOK / args.accounts.max(1);
        Some(small_book_delivery(&dir.join("small"), database, SMALL_BOOK, tickets, as_of)?)
    } else {
        None
    };

    let events = match &args.redis_url {
        Some(url) => Some(redis_phase(&dir, url, args.events)?),
        None => None,
    };
    // One delivering process, then several, on the same number of effects.
    let replicas = match database {
        Some(url) => {
            let one = replica_phase(&dir, url, 1, args.replica_effects)?;
            let many = replica_phase(&dir, url, args.replicas, args.replica_effects)?;
            Some((one, many))
        }
        None => None,
    };
    let mut out = std::io::stdout().lock();
    let rate = report.imported() as f64 / import_time.as_secs_f64();
    let secs = |d: Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    if args.json {
        let mut figures = json!({
                "accounts": args.accounts, "tickets": args.tickets, "records": report.imported(),
                "import_seconds": secs(import_time), "import_records_per_second": rate.round(),
                "import_peak_rss_mib": import_rss,
                "scan_seconds": secs(scan_time), "scan_peak_rss_mib": scan_rss,
                "rescan_seconds": secs(rescan_time), "rescan_peak_rss_mib": rescan_rss,
                "red": first.summary.red, "amber": first.summary.amber, "green": first.summary.green,
                "escalated_next_day": second.summary.escalated,
                "webhooks": args.webhooks.min(args.accounts), "webhook_p50_ms": hooks.0, "webhook_p99_ms": hooks.1,
                "delivered_effects": delivery.0, "delivery_seconds": secs(delivery.1),
                "delivery_effects_per_second": per_second(delivery), "delivery_peak_rss_mib": delivery_rss,
                "small_book_accounts": small.map(|_| SMALL_BOOK), "small_book_delivered_effects": small.map(|d| d.0),
                "small_book_delivery_effects_per_second": small.map(per_second),
                "seed_python_store_seconds": seed[0].1.as_ref().ok().map(|d| secs(*d)),
                "seed_python_book_seconds": seed[1].1.as_ref().ok().map(|d| secs(*d)),
                "dashboard_pages": pages.2, "dashboard_p50_ms": pages.0, "dashboard_max_ms": pages.1,
                "mcp_tools": reads.iter().map(|(tool, p50, max)| json!({"tool": tool, "p50_ms": p50, "max_ms": max})).collect::<Vec<_>>(),
                "reports": reports.iter().map(|(what, p50, max)| json!({"what": what, "p50_ms": p50, "max_ms": max})).collect::<Vec<_>>(),
                "redis_events": events.map(|(n, _)| n), "redis_events_per_second": events.map(|(n, t)| (n as f64 / t.as_secs_f64()).round()),
                "store": if database.is_some() { "postgres" } else { "sqlite" },
                "replicas": replicas.map(|_| args.replicas), "replica_effects": replicas.map(|_| args.replica_effects),
                "one_replica_effects_per_second": replicas.map(|(one, _)| per_second(one)),
                "replicas_effects_per_second": replicas.map(|(_, many)| per_second(many)),
        });
        // A second object: one `json!` of them all is deeper than the macro may recurse.
        if let (Value::Object(all), Value::Object(more)) = (
            &mut figures,
            json!({
                "backtest_accounts": backtest_accounts, "backtest_days": BACKTEST_DAYS, "backtest_sets": backtest.1,
                "backtest_seconds": secs(backtest.0),
                "book_backtest_days": BOOK_BACKTEST_DAYS, "book_backtest_seconds": secs(book_backtest),
            }),
        ) {
            all.extend(more);
        }
        writeln!(out, "{figures}")?;
    } else {
        let mib = |m: Option<u64>| m.map_or("n/a".to_owned(), |m| format!("{m} MiB"));
        writeln!(
            out,
            "book      {} accounts, {} tickets ({} records), store {}",
            args.accounts,
            args.tickets,
            report.imported(),
            if database.is_some() { "PostgreSQL" } else { "SQLite" }
        )?;
        writeln!(
            out,
            "import    {:>7.2} s  {:>9.0} records/s  peak RSS {}  (target >= 200000 records/s)",
            import_time.as_secs_f64(),
            rate,
            mib(import_rss)
        )?;
        writeln!(
            out,
            "scan      {:>7.2} s  peak RSS {}  (target <= 5 s, <= 400 MB)  {} red, {} amber, {} green",
            scan_time.as_secs_f64(),
            mib(scan_rss),
            first.summary.red,
            first.summary.amber,
            first.summary.green
        )?;
        writeln!(
            out,
            "re-scan   {:>7.2} s  peak RSS {}  (next day, with history; {} escalated)",
            rescan_time.as_secs_f64(),
            mib(rescan_rss),
            second.summary.escalated
        )?;
        for (mode, took) in &seed {
            let what = match *mode {
                "store" => "from the store, one ticket query per account",
                _ => "from the import file",
            };
            match took {
                Ok(took) => writeln!(
                    out,
                    "python    {:>7.2} s  the seed's scorer {what}, one row stored per account; the scan takes {:.2}x its time",
                    took.as_secs_f64(),
                    scan_time.as_secs_f64() / took.as_secs_f64().max(f64::MIN_POSITIVE)
                )?,
                Err(why) => writeln!(out, "python    skipped: {why}")?,
            }
        }
        writeln!(
            out,
            "webhooks  p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms from receipt to outbox rows ({} signed Jira deliveries, one account re-scored each; target p99 <= 200 ms)",
            hooks.0,
            hooks.1,
            hooks.2,
            args.webhooks.min(args.accounts)
        )?;
        writeln!(
            out,
            "dashboard p50 {:.1} ms, max {:.1} ms server time for {} pages (Today unfiltered, filtered, searched and paged; account pages; target <= 100 ms); slowest Today: {}",
            pages.0, pages.1, pages.2, pages.3
        )?;
        let tools: Vec<String> = reads.iter().map(|(tool, p50, max)| format!("{tool} {p50:.1}/{max:.1}")).collect();
        writeln!(out, "mcp       p50/max ms per answer, as JSON: {}", tools.join(", "))?;
        let reports: Vec<String> = reports.iter().map(|(what, p50, max)| format!("{what} {p50:.1}/{max:.1}")).collect();
        writeln!(out, "reports   p50/max ms: {}", reports.join(", "))?;
        writeln!(
            out,
            "backtest  {:>7.2} s  {backtest_accounts} accounts x {BACKTEST_DAYS} days x {} rule sets (the current rules and the default grid; target <= 10 s for 1000 accounts)",
            backtest.0.as_secs_f64(),
            backtest.1
        )?;
        writeln!(
            out,
            "          {:>7.2} s  the whole book, {} accounts x {BOOK_BACKTEST_DAYS} days x {} rule sets",
            book_backtest.as_secs_f64(),
            args.accounts,
            backtest.1
        )?;
        writeln!(
            out,
            "delivery  {:>7.2} s  {:>9.0} effects/s  peak RSS {}  ({} effects of both scans and the webhooks, embedded channels; target >= 5000/s)",
            delivery.1.as_secs_f64(),
            per_second(delivery),
            mib(delivery_rss),
            delivery.0
        )?;
        if let Some(small) = small {
            writeln!(
                out,
                "          {:>7.2} s  {:>9.0} effects/s  on a book of {SMALL_BOOK} accounts ({} effects); the large book's rate is {:.2}x slower (target <= 1.5x)",
                small.1.as_secs_f64(),
                per_second(small),
                small.0,
                per_second(small) / per_second(delivery).max(f64::MIN_POSITIVE)
            )?;
        }
        if let Some((one, many)) = replicas {
            writeln!(
                out,
                "replicas  {:>7.2} s  {:>9.0} effects/s  {} processes delivering {} effects together, each once; one alone: {:.2} s, {:.0}/s; {:.2}x",
                many.1.as_secs_f64(),
                per_second(many),
                args.replicas,
                many.0,
                one.1.as_secs_f64(),
                per_second(one),
                per_second(many) / per_second(one).max(f64::MIN_POSITIVE)
            )?;
        }
        if let Some((n, t)) = events {
            writeln!(
                out,
                "events    {:>7.2} s  {:>9.0} events/s to Redis through the outbox dispatcher ({n} events; target >= 500/s)",
                t.as_secs_f64(),
                n as f64 / t.as_secs_f64()
            )?;
        }
    }
    Ok(Outcome::Done)
}

/// Runs the seed's scorer (`bench_seed_scorer.py`) with `python3` on the bench's book (`mode`
/// `store` or `book`): how long its stored scan took, or why it did not run (no `python3` is
/// not an error of the bench).
fn seed_scorer(
    home: &Home,
    mode: &str,
    source: &std::path::Path,
    as_of: Timestamp,
) -> std::result::Result<Duration, String> {
    let scratch = home.dir.join(format!("seed-scorer-{mode}.db"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", scratch.display()));
    }
    let run = std::process::Command::new("python3")
        .arg("-c")
        .arg(include_str!("bench_seed_scorer.py"))
        .arg(mode)
        .arg(source)
        .arg(&scratch)
        .arg(TENANT)
        .arg(as_of.to_string())
        .output()
        .map_err(|e| format!("python3: {e}"))?;
    if !run.status.success() {
        return Err(format!("python3 failed: {}", String::from_utf8_lossy(&run.stderr).trim()));
    }
    let out = String::from_utf8_lossy(&run.stdout);
    let seconds: f64 = out.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("python3 printed no time")?;
    Ok(Duration::from_secs_f64(seconds))
}

/// The book whose delivery rate the large book's is compared with.
const SMALL_BOOK: u64 = 3_000;

fn per_second((n, took): (u64, Duration)) -> f64 {
    (n as f64 / took.as_secs_f64().max(f64::MIN_POSITIVE)).round()
}

/// Delivers every due effect of the book through the home's channels (embedded here): returns
/// how many were delivered and how long it took.
fn deliver_phase(
    home: &Home,
    store: &mut tam_store::Store,
    config: &crate::config::Config,
    tenant: &TenantId,
) -> Result<(u64, Duration)> {
    let mut channels = crate::clients::open(home, config)?;
    let started = Instant::now();
    let report = channels.dispatch(store, tenant, &config.rules)?;
    let took = started.elapsed();
    anyhow::ensure!(report.failed == 0 && report.retried == 0, "delivery to the embedded channels failed: {report:?}");
    Ok((report.delivered, took))
}

/// Imports the generated book at `data`; every record of it must be taken.
fn import_book(
    store: &mut tam_store::Store,
    config: &crate::config::Config,
    data: &std::path::Path,
    as_of: Timestamp,
) -> Result<tam_agent::import::ImportReport> {
    // The clock reading for "future" checks is the bench instant plus a day, so the generated
    // data is never in the future whatever today's date is.
    let mut opts = config.rules.import_options(as_of);
    opts.future_tolerance = SignedDuration::from_hours(24);
    let mut importer = Importer::new(store, opts);
    let file = File::open(data).with_context(|| format!("cannot open {}", data.display()))?;
    importer.read("book.ndjson", BufReader::with_capacity(1 << 16, file), Format::Ndjson)?;
    let report = importer.finish()?;
    anyhow::ensure!(report.rejected.is_empty(), "generated data was rejected: {}", report.rejected[0]);
    Ok(report)
}

/// A book of `accounts` in its own home under `dir`: generated, imported, scanned, delivered.
fn small_book_delivery(
    dir: &std::path::Path,
    database: Option<&str>,
    accounts: u64,
    tickets: u64,
    as_of: Timestamp,
) -> Result<(u64, Duration)> {
    let _ = std::fs::remove_dir_all(dir);
    let home = Home { dir: dir.join("home") };
    std::fs::create_dir_all(&home.dir)?;
    let data = dir.join("book.ndjson");
    generate(&data, accounts, tickets, as_of)?;
    let (mut store, config) = open_home(&home, database, "tam_bench_small")?;
    import_book(&mut store, &config, &data, as_of)?;
    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    score(&mut store, &config, &tenant, as_of)?;
    let next_day = as_of.checked_add(SignedDuration::from_hours(24)).expect("in range");
    score(&mut store, &config, &tenant, next_day)?;
    deliver_phase(&home, &mut store, &config, &tenant)
}

/// Processes `n` signed Jira deliveries, each a new P1 on a different account of the book, and
/// returns the milliseconds from receipt to outbox rows written: p50, p99 and max.
fn webhook_phase(
    store: &mut tam_store::Store,
    config: &crate::config::Config,
    n: u64,
    accounts: u64,
) -> Result<(f64, f64, f64)> {
    const SECRET: &str = "bench-webhook-secret";
    let no_fetch = |key: &str| -> Result<serde_json::Value> { anyhow::bail!("{key}: the bench sends whole issues") };
    let mapping = config.jira.mapping();
    let hook = tam_app::webhook::JiraHook {
        secret: SECRET,
        secret_env: config.jira.webhook_secret_env.as_str(),
        tenant: config.jira.tenant.as_deref(),
        mapping: &mapping,
    };
    let mut rng = Rng::new(0x5EB_400C);
    let mut millis = Vec::with_capacity(n as usize);
    let created = Timestamp::now().checked_sub(SignedDuration::from_hours(72)).expect("in range");
    let created = created.strftime("%Y-%m-%dT%H:%M:%S.000+0000").to_string();
    for i in 0..n {
        let account = rng.range(0, accounts);
        let body = json!({
            "timestamp": 1_727_087_443_918u64, "webhookEvent": "jira:issue_created",
            "issue": {"id": format!("{}", 90_000 + i), "key": format!("BENCH-{i}"), "fields": {
                "summary": format!("Outage {i}"), "priority": {"name": "Highest"},
                "status": {"name": "Open", "statusCategory": {"key": "new"}},
                "created": created, "updated": created, "issuetype": {"name": "Bug"},
                "labels": [format!("account:acct-{account:06}")],
            }},
        })
        .to_string();
        let signature = tam_connectors::jira::sign(SECRET, body.as_bytes());
        let received = Instant::now();
        let delivery = format!("bench-{i}");
        let delivery = tam_app::webhook::Delivery {
            body: body.as_bytes(),
            signature: Some(&signature),
            id: Some(&delivery),
            received,
        };
        let handled = tam_app::webhook::handle_jira(store, &config.rules, hook, delivery, &no_fetch)
            .map_err(|e| anyhow::anyhow!("webhook {i}: {e}"))?;
        anyhow::ensure!(matches!(handled, tam_app::webhook::Handled::Processed { .. }), "webhook {i}: {handled:?}");
        millis.push(received.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    let at = |q: f64| millis.get(((millis.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0.0);
    Ok((at(0.50), at(0.99), millis.last().copied().unwrap_or(0.0)))
}

/// Queues `n` events in a fresh home whose bus is Redis at `url`, then times one dispatcher
/// run delivering them: outbox claim, publish, and the recorded attempt for each.
fn redis_phase(dir: &std::path::Path, url: &str, n: u64) -> Result<(u64, Duration)> {
    let home = Home { dir: dir.join("home-events") };
    let _ = std::fs::remove_dir_all(&home.dir);
    std::fs::create_dir_all(&home.dir)?;
    std::fs::write(
        home.config_path(),
        format!("[event_bus]\nkind = \"redis\"\nredis_url = \"{url}\"\nmaxlen = 100000\n"),
    )?;
    let (mut store, config) = home.open()?;
    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    let now = Timestamp::now();
    let effects = bench_events(&tenant, n, now);
    store.enqueue(&tenant, now, &effects)?;
    let mut channels = crate::clients::open(&home, &config)?;
    let started = Instant::now();
    let report = channels.dispatch(&mut store, &tenant, &config.rules)?;
    let took = started.elapsed();
    anyhow::ensure!(
        report.delivered == n,
        "only {} of {n} events were delivered ({} failed)",
        report.delivered,
        report.failed
    );
    Ok((n, took))
}

/// Queues `n` events in a schema of their own of the `database`, then times `processes`
/// `tam outbox deliver` processes delivering them together to the store's event streams: from
/// the first start to the last exit. Each effect must be delivered once: by the processes'
/// own counts, and by the streams, which keep one entry per event.
fn replica_phase(dir: &std::path::Path, database: &str, processes: u64, n: u64) -> Result<(u64, Duration)> {
    let home = Home { dir: dir.join(format!("home-replicas-{processes}")) };
    let _ = std::fs::remove_dir_all(&home.dir);
    let (mut store, _) = open_home(&home, Some(database), &format!("tam_bench_replicas_{processes}"))?;
    let Some(tam_store::Location::Postgres(url)) = store.location() else { anyhow::bail!("not on PostgreSQL") };
    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    let now = Timestamp::now();
    let writer = store.writer()?;
    writer.ensure_tenant(&tenant, now)?;
    writer.commit()?;
    store.enqueue(&tenant, now, &bench_events(&tenant, n, now))?;
    let started = Instant::now();
    let children: Vec<std::process::Child> = (0..processes)
        .map(|_| {
            std::process::Command::new(std::env::current_exe()?)
                .args(["outbox", "deliver", "--json", "--tenant", TENANT])
                .env("TAM_HOME", &home.dir)
                .env("TAM_DATABASE_URL", &url)
                .stdout(std::process::Stdio::piped())
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let mut delivered = 0;
    for child in children {
        let output = child.wait_with_output()?;
        anyhow::ensure!(output.status.success(), "a delivering process failed");
        let reports: serde_json::Value = serde_json::from_slice(&output.stdout)?;
        delivered += reports.as_array().into_iter().flatten().filter_map(|r| r["delivered"].as_u64()).sum::<u64>();
    }
    let took = started.elapsed();
    let streamed = store.events(&tenant, "escalations", 0, None)?.len() as u64;
    anyhow::ensure!(
        delivered == n && streamed == n,
        "{processes} processes delivered {delivered} of {n} effects and the streams hold {streamed}: each must be delivered once"
    );
    Ok((n, took))
}

/// `n` escalation events of `tenant`, as the dispatcher delivers them.
fn bench_events(tenant: &TenantId, n: u64, now: Timestamp) -> Vec<tam_store::NewEffect> {
    use tam_core::comms::{AGENT_ID, Event};
    use tam_core::outbox::{EffectKind, IdemKey};
    (0..n)
        .map(|i| {
            let key = IdemKey::new(EffectKind::Event, &format!("bench-{i}"), now);
            let event = Event {
                event_id: format!("evt-{}", key.digest()),
                event_type: "escalation".to_owned(),
                tenant_id: tenant.clone(),
                source_agent_id: AGENT_ID.to_owned(),
                call_chain: vec![AGENT_ID.to_owned()],
                priority: "high".to_owned(),
                data: json!({"account_id": format!("acct-{i:06}"), "score": 10}),
                created_at: now,
            };
            tam_store::NewEffect {
                key,
                kind: EffectKind::Event,
                account: None,
                payload: serde_json::to_string(&event).expect("plain data"),
            }
        })
        .collect()
}

/// Writes the book as NDJSON; returns the number of records.
fn generate(path: &PathBuf, accounts: u64, tickets: u64, as_of: Timestamp) -> Result<u64> {
    let mut out = BufWriter::with_capacity(
        1 << 20,
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    let mut rng = Rng::new(0x7A3_BE4C);
    let at = |hours_ago: u64, rng: &mut Rng| {
        let secs = hours_ago as i64 * 3_600 + rng.range(0, 3_600) as i64;
        Timestamp::from_second(as_of.as_second() - secs).expect("within range")
    };
    let mut written = 0u64;
    let mut ticket_no = 0u64;
    for a in 0..accounts {
        let heartbeat =
            if rng.chance(10) { "null".to_owned() } else { format!("\"{}\"", at(rng.range(0, 200), &mut rng)) };
        writeln!(
            out,
            r#"{{"record":"account","tenant_id":"{TENANT}","id":"acct-{a:06}","name":"Account {a}","rep_name":"Rep {r}","rep_email":"rep{r}@vendor.example","contacts":["ops@acct-{a}.example"],"last_heartbeat":{heartbeat},"api_call_count":{calls}}}"#,
            r = a % 250,
            calls = rng.range(0, 1_000_000),
        )?;
        written += 1;
        // Uneven spread: most accounts have a few tickets, some have many.
        let remaining_accounts = accounts - a;
        let remaining = tickets - ticket_no;
        let mean = remaining / remaining_accounts;
        let n = if remaining_accounts == 1 { remaining } else { rng.range(0, 2 * mean + 1).min(remaining) };
        for _ in 0..n {
            let priority = ["P1", "P2", "P2", "P3", "P3", "P3", "P4", "P4"][rng.range(0, 8) as usize];
            let status = ["open", "pending", "resolved", "closed", "closed", "closed", "resolved", "closed"]
                [rng.range(0, 8) as usize];
            writeln!(
                out,
                r#"{{"record":"ticket","tenant_id":"{TENANT}","id":"T-{ticket_no:07}","account_id":"acct-{a:06}","priority":"{priority}","status":"{status}","created_at":"{}","subject":"Ticket {ticket_no} about the integration","kind":"bug"}}"#,
                at(rng.range(0, 24 * 40), &mut rng),
            )?;
            ticket_no += 1;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

struct TempDir(PathBuf);

fn tempdir() -> Result<TempDir> {
    let dir = std::env::temp_dir().join(format!("tam-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(TempDir(dir))
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Resets the kernel's peak-RSS mark for this process (Linux), so each phase reports its own.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident set size since the last reset, in MiB (Linux only).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

/// The scan the bench times: scoring and storing every account, without what a command does
/// after it (opportunities, dispatch).
fn score(
    store: &mut tam_store::Store,
    config: &crate::config::Config,
    tenant: &TenantId,
    as_of: Timestamp,
) -> Result<tam_agent::scan::ScanReport> {
    let rules = config.rules.scan(Some(tenant));
    Ok(tam_agent::scan::scan(store, tenant, as_of, rules, false, |_| {})?)
}

/// Days of the backtest over the bench's whole book.
const BOOK_BACKTEST_DAYS: i64 = 30;

/// The backtest over the bench's own book (every account, its last 30 days, the default
/// grid): what the cost of a backtest is at the size of the book.
fn book_backtest(
    store: &tam_store::Store,
    config: &crate::config::Config,
    tenant: &TenantId,
    end: Timestamp,
) -> Result<Duration> {
    let rules = config.rules.scan(Some(tenant));
    let current = tam_app::backtest::current_rules(rules);
    let to = end.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let from = to.checked_sub(jiff::Span::new().days(BOOK_BACKTEST_DAYS - 1))?;
    let plan = tam_app::backtest::Plan::with_default_grid(from, to, 14, &current);
    let started = Instant::now();
    tam_app::backtest::run(store, tenant, &current, config.rules.zone(tenant), &plan, end, |_| {})?;
    Ok(started.elapsed())
}

/// The backtest's book: at most this many accounts (fewer when the bench's book is smaller).
const BACKTEST_ACCOUNTS: u64 = 1_000;
const BACKTEST_DAYS: i64 = 365;

/// A year of one tenant's history (tickets opened and resolved, daily heartbeats with gaps,
/// escalations), imported into a home of its own, then backtested over the year with the
/// default grid. Returns the backtest's time (not the import's) and the sets replayed.
fn backtest_phase(dir: &std::path::Path, database: Option<&str>, accounts: u64) -> Result<(Duration, usize)> {
    let home = Home { dir: dir.join("home") };
    let _ = std::fs::remove_dir_all(&home.dir);
    std::fs::create_dir_all(&home.dir)?;
    let (mut store, config) = open_home(&home, database, "tam_bench_backtest")?;
    let end: Timestamp = AS_OF.parse().expect("constant timestamp");
    let at =
        |hours_before: i64| end.checked_sub(SignedDuration::from_hours(hours_before)).expect("in range").to_string();
    let mut rng = crate::cli::rng::Rng::new(0xBAC7_7E57);
    let mut records = Vec::new();
    let span = (BACKTEST_DAYS + 40) * 24;
    for a in 0..accounts {
        let id = format!("acct-{a:05}");
        records.push(json!({"record": "account", "tenant_id": TENANT, "id": id, "name": id,
            "rep_name": "Rep", "rep_email": format!("rep{}@vendor.example", a % 25)}));
        let mut silent = 0;
        for day in (0..BACKTEST_DAYS + 40).rev() {
            // Now and then an integration goes quiet for a few days.
            if silent == 0 && rng.chance(1) {
                silent = rng.range(2, 9);
            }
            if silent > 0 {
                silent -= 1;
                continue;
            }
            records.push(json!({"record": "heartbeat", "tenant_id": TENANT, "account_id": id, "at": at(day * 24 + 3)}));
        }
        for t in 0..rng.range(8, 40) {
            let created = rng.range(1, span as u64) as i64;
            let open_for = rng.range(2, 400) as i64;
            let priority = rng.pick(&["P1", "P2", "P2", "P3", "P3", "P4"]);
            let resolved = created - open_for;
            let (status, resolved_at) = if resolved > 0 { ("closed", Some(at(resolved))) } else { ("open", None) };
            records.push(json!({"record": "ticket", "tenant_id": TENANT, "id": format!("{id}-T{t}"), "account_id": id,
                "priority": priority, "status": status, "created_at": at(created), "resolved_at": resolved_at,
                "subject": "Sync fails"}));
            // Long-open urgent tickets are what customers escalate over.
            if matches!(priority, "P1" | "P2") && open_for > 120 && rng.chance(40) {
                let when = created - rng.range(96, 200) as i64;
                if when > 0 {
                    records.push(json!({"record": "escalation", "tenant_id": TENANT, "account_id": id,
                        "at": at(when), "source": "bench"}));
                }
            }
        }
    }
    let mut importer = tam_agent::import::Importer::new(&mut store, config.rules.import_options(end));
    importer.push("backtest book", records)?;
    let report = importer.finish()?;
    anyhow::ensure!(report.rejected.is_empty(), "the backtest book was rejected: {}", report.rejected[0]);

    let tenant = TenantId::parse("tenant", TENANT).expect("constant tenant id");
    let rules = config.rules.scan(Some(&tenant));
    let current = tam_app::backtest::current_rules(rules);
    let to = end.to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let from = to.checked_sub(jiff::Span::new().days(BACKTEST_DAYS - 1))?;
    let plan = tam_app::backtest::Plan::with_default_grid(from, to, 14, &current);
    let started = Instant::now();
    let result = tam_app::backtest::run(&store, &tenant, &current, config.rules.zone(&tenant), &plan, end, |_| {})?;
    let took = started.elapsed();
    anyhow::ensure!(result.real_escalations > 0, "the backtest book has escalations in its year");
    Ok((took, result.sets.len()))
}

/// What the MCP tools answer on the bench's book, each answer built and serialised as a tool
/// call builds it: per tool, the median and the slowest in milliseconds, over the worst
/// accounts (the ones with the most to show) and a page of resources.
/// Votes cast in the reports phase: one a click, each its own transaction, as `POST /feedback`
/// records it.
const BENCH_VOTES: usize = 20_000;

/// What reps' feedback costs on the whole book: recording votes (one transaction each), the
/// drafts' and the alerts' reports, and an account's explanation with its rep's budget adapted.
fn reports_phase(store: &mut tam_store::Store, tenant: &TenantId) -> Result<Vec<(&'static str, f64, f64)>> {
    use tam_core::feedback::{Ballot, Vote};
    let page = store.account_page(tenant, None, BENCH_VOTES)?;
    anyhow::ensure!(!page.is_empty(), "the bench's book has no account");
    let reasons = ["below_threshold", "became_red", "green_to_amber"];
    let now = Timestamp::now();
    let mut timings = Timings::default();
    let mut time = |what, f: &mut dyn FnMut() -> Result<String>| timings.time(what, f);
    for (i, (account, _)) in page.iter().enumerate() {
        let Some(row) = store.account(tenant, &tam_core::AccountId::parse("account", account)?)? else { continue };
        let ballot = Ballot {
            tenant: tenant.clone(),
            alert: format!("bench-alert-{i}"),
            account: account.clone(),
            reason: reasons[i % reasons.len()].to_owned(),
            rep: row.rep_email,
            vote: if i % 4 == 0 { Vote::Useful } else { Vote::NotUseful },
            expires: 0,
        };
        time("record_vote", &mut || Ok(format!("{:?}", store.record_vote(&ballot, now)?)))?;
    }
    let since = now.checked_sub(SignedDuration::from_hours(24 * 90))?;
    for _ in 0..3 {
        time("report_alerts", &mut || Ok(serde_json::to_string(&tam_app::feedback::report(store, tenant, since)?)?))?;
        time("report_drafts", &mut || Ok(serde_json::to_string(&tam_app::fates::report(store, tenant, since)?)?))?;
    }
    let adapting = tam_core::escalation::EscalationConfig { adapt_alert_budget: true, ..Default::default() };
    for (account, _) in page.iter().take(20) {
        let id = tam_core::AccountId::parse("account", account)?;
        time("explain_account(adapted budget)", &mut || {
            Ok(serde_json::to_string(&tam_app::views::explanation(store, tenant, &id, 30, &adapting)?)?)
        })?;
    }
    Ok(timings.summary())
}

/// Each timed answer's milliseconds, by what was timed, in the order first timed.
#[derive(Default)]
struct Timings(Vec<(&'static str, Vec<f64>)>);

impl Timings {
    /// Times `f`, whose answer is serialised as it would be printed or served, then dropped.
    fn time(&mut self, what: &'static str, f: &mut dyn FnMut() -> Result<String>) -> Result<()> {
        let started = Instant::now();
        f()?;
        let took = started.elapsed().as_secs_f64() * 1000.0;
        match self.0.iter_mut().find(|(t, _)| *t == what) {
            Some((_, all)) => all.push(took),
            None => self.0.push((what, vec![took])),
        }
        Ok(())
    }

    /// Each timed thing's median and maximum.
    fn summary(self) -> Vec<(&'static str, f64, f64)> {
        self.0
            .into_iter()
            .map(|(what, mut all)| {
                all.sort_by(f64::total_cmp);
                (what, all[all.len() / 2], all.last().copied().unwrap_or(0.0))
            })
            .collect()
    }
}

fn mcp_phase(store: &tam_store::Store, tenant: &TenantId) -> Result<Vec<(&'static str, f64, f64)>> {
    use tam_app::views;
    use tam_store::HealthFilter;
    let worst = views::accounts(store, tenant, &HealthFilter { limit: Some(20), ..HealthFilter::default() })?;
    let ids: Vec<tam_core::AccountId> = worst
        .accounts
        .iter()
        .map(|a| tam_core::AccountId::parse("account", &a.account_id))
        .collect::<Result<_, _>>()?;
    anyhow::ensure!(!ids.is_empty(), "the bench's book has no account");
    // Each answer is serialised, as a tool call does.
    let mut timings = Timings::default();
    let mut time = |tool, f: &mut dyn FnMut() -> Result<String>| timings.time(tool, f);
    let json = |v: &dyn erased::Json| v.json();
    for _ in 0..3 {
        let filter = HealthFilter { limit: Some(100), ..HealthFilter::default() };
        time("list_accounts", &mut || json(&views::accounts(store, tenant, &filter)?))?;
        let red = HealthFilter {
            status: Some("red".into()),
            escalated: Some(true),
            limit: Some(100),
            ..HealthFilter::default()
        };
        time("list_accounts(red, escalated)", &mut || json(&views::accounts(store, tenant, &red)?))?;
        time("outbox_status", &mut || json(&views::outbox_status(store, tenant)?))?;
    }
    for id in &ids {
        time("explain_account", &mut || json(&views::explanation(store, tenant, id, 30, &Default::default())?))?;
        time("score_history", &mut || json(&views::score_history(store, tenant, id, 30)?))?;
        time("list_open_tickets", &mut || json(&views::open_tickets(store, tenant, id)?))?;
        time("relationship_profile", &mut || json(&views::profile(store, tenant, id)?))?;
        time("list_drafts(account)", &mut || json(&views::drafts(store, tenant, Some(id), None, Some(100))?))?;
    }
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let mut full = true;
        time("resources/list page", &mut || {
            let page = store.account_page(tenant, after.as_deref(), 200)?;
            after = page.last().map(|(id, _)| id.clone());
            full = page.len() == 200;
            Ok(serde_json::to_string(&page)?)
        })?;
        if !full {
            break;
        }
    }
    Ok(timings.summary())
}

/// Serialising through a trait object, so one closure serialises every view.
mod erased {
    pub trait Json {
        fn json(&self) -> anyhow::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn json(&self) -> anyhow::Result<String> {
            Ok(serde_json::to_string(self)?)
        }
    }
}

/// Renders the dashboard's pages on the bench's book, as its server would: Today as a TAM
/// opens it, filtered every way, searched and paged, and the account pages it links to.
/// Returns the median and the slowest render, in milliseconds, how many were timed, and the
/// slowest page.
fn dashboard_phase(
    store: &tam_store::Store,
    config: &crate::config::Config,
    tenant: &TenantId,
) -> Result<(f64, f64, usize, String)> {
    use crate::http::dashboard::{TodayQuery, account, today};
    let budget = config.rules.scan(Some(tenant)).escalation.alert_budget_per_rep;
    let views: Vec<TodayQuery> = [
        vec![],
        vec![("status", "red")],
        vec![("status", "amber"), ("escalated", "no")],
        vec![("reason", "heartbeat_silence")],
        vec![("escalated", "yes"), ("page", "40")],
        vec![("rep", "rep3@vendor.example")],
        vec![("q", "acct-00042")],
    ]
    .into_iter()
    .map(|params| TodayQuery::from_params(&params.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()))
    .collect();
    let mut millis = Vec::new();
    let mut accounts = Vec::new();
    let mut slowest = (0.0, String::new());
    for _ in 0..5 {
        for view in &views {
            let started = Instant::now();
            let html = today(store, tenant, budget, view).map_err(anyhow::Error::msg)?;
            let took = started.elapsed().as_secs_f64() * 1000.0;
            if took > slowest.0 {
                slowest = (took, format!("{view:?}"));
            }
            millis.push(took);
            if accounts.len() < 10 {
                accounts.extend(
                    html.split("href=\"/accounts/").skip(1).filter_map(|s| s.split('"').next()).map(str::to_owned),
                );
            }
        }
    }
    anyhow::ensure!(!accounts.is_empty(), "the bench's Today lists no account");
    for id in accounts.iter().take(10) {
        let id = tam_core::AccountId::parse("account", id)?;
        let started = Instant::now();
        let escalation = &config.rules.scan(Some(tenant)).escalation;
        let pages = crate::http::dashboard::AccountPages { escalation, tickets: &config.tickets };
        account(store, tenant, &id, &pages, Timestamp::now()).map_err(anyhow::Error::msg)?;
        millis.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    millis.sort_by(f64::total_cmp);
    Ok((millis[millis.len() / 2], millis.last().copied().unwrap_or(0.0), millis.len(), slowest.1))
}
