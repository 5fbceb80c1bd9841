//! `tam serve`: the scheduler ([`tam_app::jobs`]), the dispatcher and the HTTP API in one
//! long-running process. `tam jobs`: what the scheduler ran, failed or missed.
//!
//! SIGTERM or SIGINT stops the loop between jobs and between dispatch batches, so an effect is
//! either delivered or still pending, never half-done. Logs are JSON lines on stderr.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tam_app::jobs::Tick;
use tam_core::{SignedDuration, TenantId, Timestamp};

use crate::Outcome;
use crate::clients::worker;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run one scheduler tick and one dispatch, then exit (for cron, and for tests).
    #[arg(long)]
    once: bool,
    /// With --once: the instant the tick takes as now (RFC 3339).
    #[arg(long, value_parser = crate::cli::clock::parse_instant, requires = "once")]
    at: Option<Timestamp>,
    /// How late a missed slot may still run; older ones are recorded as missed.
    #[arg(long, default_value_t = 60, value_name = "MINUTES")]
    grace_minutes: u32,
    /// Seconds between ticks.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    tick_seconds: u64,
    /// Serve the HTTP API on this `host:port` (overrides `[api] listen`; port 0 picks one).
    #[arg(long, value_name = "ADDR", conflicts_with = "once")]
    listen: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct JobsArgs {
    /// Only this tenant's jobs.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Rows to show, newest slot first.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    crate::log::JSON_LOGS.store(true, Ordering::Relaxed);
    let (mut store, config) = home.open()?;
    // One set of network clients for the scheduler and every API request.
    let clients = Arc::new(crate::clients::Clients::open(&config)?);
    let mut channels = crate::clients::with(home, &config, &clients)?;
    let sources = clients.sources(&config)?;
    let worker = worker();
    // Runs an earlier incarnation of this replica left `running` (it was killed) are let go, so
    // their slots run again within the grace rather than staying taken until they go stale.
    let released = store.release_dead_runs(|w| crate::clients::dead_on_this_host(w, &worker))?;
    if released > 0 {
        crate::log::event("warn", "released runs of a dead worker", json!({"runs": released}));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).context("cannot watch for SIGTERM")?;
    }
    let grace = SignedDuration::from_mins(i64::from(args.grace_minutes));
    let listen = if args.once { None } else { args.listen.clone().or_else(|| config.api.listen.clone()) };
    let api = match listen {
        Some(listen) => {
            let (handle, addr) = crate::http::spawn(home, &config, &listen, Arc::clone(&clients), Arc::clone(&stop))?;
            crate::log::event("info", "listening", json!({"addr": addr.to_string()}));
            Some(handle)
        }
        None => None,
    };
    let mut tick = Tick {
        rules: &config.rules,
        store: &mut store,
        channels: &mut channels,
        sources: &sources,
        worker: &worker,
        stop: &stop,
    };
    crate::log::event(
        "info",
        "serving",
        json!({"worker": worker, "once": args.once, "grace_minutes": args.grace_minutes}),
    );
    loop {
        let now = args.at.unwrap_or_else(tam_app::now);
        // A failing tick (the store busy, a tenant's zone misnamed) is logged and the next one
        // tries again: the daemon outlives it. A single run reports it as its exit status.
        let (ran, delivered) = match tick.run(now, grace).and_then(|ran| Ok((ran, tick.dispatch()?))) {
            Ok(counts) => counts,
            Err(e) if !args.once => {
                crate::log::event("error", "tick failed", json!({"error": format!("{e:#}")}));
                (0, 0)
            }
            Err(e) => return Err(e),
        };
        if ran + delivered > 0 {
            crate::log::event("info", "tick", json!({"at": now, "jobs": ran, "delivered": delivered}));
        }
        if args.once {
            return Ok(Outcome::Done);
        }
        for _ in 0..args.tick_seconds.max(1) * 10 {
            if stop.load(Ordering::Relaxed) {
                if let Some(api) = api {
                    // The API answers what it started, then stops.
                    let _ = api.join();
                }
                crate::log::event("info", "stopped", json!({"worker": worker}));
                return Ok(Outcome::Done);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

pub fn jobs_command(home: &Home, args: JobsArgs) -> Result<Outcome> {
    let (store, _) = home.open()?;
    let tenant = args.tenant.as_deref().map(|t| TenantId::parse("--tenant", t)).transpose()?;
    let runs = store.job_runs(tenant.as_ref(), args.limit)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        for r in &runs {
            writeln!(out, "{}", serde_json::to_string(r)?)?;
        }
        return Ok(Outcome::Done);
    }
    if runs.is_empty() {
        writeln!(out, "no job has run yet (`tam serve` runs them)")?;
    }
    for r in &runs {
        writeln!(
            out,
            "{:<22} {:<10} {:<12} {:<8} {}",
            r.slot.to_string(),
            r.tenant,
            r.job,
            r.outcome,
            r.detail.as_deref().unwrap_or("")
        )?;
    }
    Ok(Outcome::Done)
}
