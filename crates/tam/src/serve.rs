//! `tam serve`: the scheduler and the dispatcher in one long-running process (the HTTP API
//! joins them later). `tam jobs`: what the scheduler ran, failed or missed.
//!
//! Each tick asks, per tenant and job, what [`Schedule::due`] says at this instant in the
//! tenant's zone. A slot is claimed by inserting its `job_runs` row, so with several processes
//! on one store exactly one runs it; a slot passed by more than the grace is recorded as
//! missed. Jobs run one at a time; SIGTERM or SIGINT stops the loop between jobs and between
//! dispatch batches, so an effect is either delivered or still pending, never half-done.
//! Logs are JSON lines on stderr.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tam_agent::tasks::{self, TaskContext};
use tam_core::schedule::{Due, Every, Schedule};
use tam_core::{AccountId, SignedDuration, TenantId, Timestamp};
use tam_store::Store;

use crate::Outcome;
use crate::channels::{HomeChannels, worker};
use crate::config::Config;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run one scheduler tick and one dispatch, then exit (for cron, and for tests).
    #[arg(long)]
    once: bool,
    /// With --once: the instant the tick takes as now (RFC 3339).
    #[arg(long, value_parser = crate::clock::parse_instant, requires = "once")]
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

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The daily health scan (pulling from Notion first in Notion mode).
    Scan,
    /// Check-ins for the accounts whose interval has passed.
    Checkins,
    /// Customer Success Reviews for every account.
    Reviews,
    /// Tickets from Jira.
    SyncJira,
    /// Tickets from Kayako.
    SyncKayako,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Scan => "scan",
            Kind::Checkins => "checkins",
            Kind::Reviews => "reviews",
            Kind::SyncJira => "sync:jira",
            Kind::SyncKayako => "sync:kayako",
        }
    }
}

/// The jobs of `tenant`: SPEC's schedule, ticket syncs where a source names the tenant.
fn jobs(config: &Config, tenant: &TenantId) -> Vec<(Kind, Every)> {
    let mut jobs = vec![
        (Kind::Scan, Every::Day(7, 0)),
        (Kind::Checkins, Every::Day(10, 0)),
        (Kind::Reviews, Every::Quarter(9, 0)),
    ];
    if config.jira.tenant.as_deref() == Some(tenant.as_str()) {
        jobs.push((Kind::SyncJira, Every::Hour));
    }
    if config.kayako.tenant.as_deref() == Some(tenant.as_str()) {
        jobs.push((Kind::SyncKayako, Every::Hour));
    }
    jobs
}

/// A run still `running` after this long lost its worker.
const STALE_HOURS: i64 = 12;

/// A running job's worker renews its claim this often...
const RENEW_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// ...and a run not renewed for this long is taken over by whichever replica sees it first.
const RUN_LEASE: SignedDuration = SignedDuration::from_secs(90);

/// Renews a run's claim on its own connection while the run goes on, so that another replica
/// can tell a long run from one whose worker was killed. Stops when dropped.
struct Renewal {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewal {
    fn start(store: &Store, tenant: &TenantId, job: &str, slot: Timestamp, worker: &str) -> Result<Renewal> {
        // An in-memory store has no other process to tell.
        let Some(mut own) = store.reader()? else { return Ok(Renewal { done: None, thread: None }) };
        let (done, stopped) = std::sync::mpsc::channel::<()>();
        let (tenant, job, worker) = (tenant.clone(), job.to_owned(), worker.to_owned());
        let thread = std::thread::spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RENEW_EVERY) {
                match own.renew_job(&tenant, &job, slot, &worker, Timestamp::now()) {
                    Ok(true) => {}
                    Ok(false) => {
                        let fields = json!({"tenant": tenant, "job": job, "slot": slot});
                        crate::log::event("warn", "job taken over by another worker", fields);
                        return;
                    }
                    // A busy store misses one renewal; the lease allows several.
                    Err(e) => crate::log::event("warn", "job renewal failed", json!({"error": e.to_string()})),
                }
            }
        });
        Ok(Renewal { done: Some(done), thread: Some(thread) })
    }
}

impl Drop for Renewal {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Tick<'a> {
    config: &'a Config,
    store: &'a mut Store,
    channels: &'a mut HomeChannels,
    clients: &'a crate::channels::Clients,
    worker: &'a str,
    stop: &'a AtomicBool,
}

impl Tick<'_> {
    /// Runs or records every job due at `now`; returns how many ran.
    fn run(&mut self, now: Timestamp, grace: SignedDuration) -> Result<u64> {
        let mut ran = 0;
        for (tenant, job, worker) in self.store.release_stalled_runs(Timestamp::now(), RUN_LEASE)? {
            crate::log::event(
                "warn",
                "took over a stalled run",
                json!({"tenant": tenant, "job": job, "worker": worker, "lease_seconds": RUN_LEASE.as_secs()}),
            );
        }
        let stale = self.store.fail_stale_jobs(Timestamp::now(), SignedDuration::from_hours(STALE_HOURS))?;
        if stale > 0 {
            crate::log::event(
                "error",
                "job runs without a result",
                json!({"runs": stale, "older_than_hours": STALE_HOURS}),
            );
        }
        for tenant in self.store.tenants()?.into_iter().map(|t| t.id) {
            let zone = self.config.tenant_zone(&tenant)?;
            for (kind, every) in jobs(self.config, &tenant) {
                if self.stop.load(Ordering::Relaxed) {
                    return Ok(ran);
                }
                let job = kind.name();
                let schedule = Schedule { every, zone: zone.clone() };
                let handled = self.store.last_job_slot(&tenant, job)?;
                match schedule.due(handled, now, grace) {
                    Due::Wait { .. } => {}
                    Due::Missed { slots } => {
                        self.store.record_missed(&tenant, job, &slots, now)?;
                        let last = slots.last().copied();
                        crate::log::event(
                            "warn",
                            "job missed",
                            json!({"tenant": tenant, "job": job, "slots": slots.len(), "latest": last}),
                        );
                    }
                    Due::Run { slot, missed } => {
                        if !missed.is_empty() {
                            self.store.record_missed(&tenant, job, &missed, now)?;
                            crate::log::event(
                                "warn",
                                "job missed",
                                json!({"tenant": tenant, "job": job, "slots": missed.len(), "latest": missed.last()}),
                            );
                        }
                        if !self.store.claim_job(&tenant, job, slot, self.worker, Timestamp::now())? {
                            continue;
                        }
                        crate::log::event("info", "job started", json!({"tenant": tenant, "job": job, "slot": slot}));
                        let renewal = Renewal::start(self.store, &tenant, job, slot, self.worker)?;
                        let result = self.job(kind, &tenant, slot);
                        drop(renewal);
                        if result.is_err() && self.stop.load(Ordering::Relaxed) {
                            // Interrupted by a shutdown: the slot runs again after a restart.
                            self.store.release_job(&tenant, job, slot, self.worker)?;
                            crate::log::event(
                                "warn",
                                "job interrupted",
                                json!({"tenant": tenant, "job": job, "slot": slot}),
                            );
                            return Ok(ran);
                        }
                        let (ok, detail) = match &result {
                            Ok(d) => (true, d.clone()),
                            Err(e) => (false, format!("{e:#}")),
                        };
                        if !self.store.finish_job(&tenant, job, slot, self.worker, ok, &detail, Timestamp::now())? {
                            // It stalled past its lease and another worker ran the slot: that
                            // run's result stands.
                            crate::log::event(
                                "warn",
                                "job finished after another worker took it over",
                                json!({"tenant": tenant, "job": job, "slot": slot, "ok": ok, "detail": detail}),
                            );
                            continue;
                        }
                        let level = if ok { "info" } else { "error" };
                        crate::log::event(
                            level,
                            "job finished",
                            json!({"tenant": tenant, "job": job, "slot": slot, "ok": ok, "detail": detail}),
                        );
                        ran += 1;
                    }
                }
            }
        }
        Ok(ran)
    }

    fn job(&mut self, kind: Kind, tenant: &TenantId, slot: Timestamp) -> Result<String> {
        match kind {
            Kind::Scan => {
                if crate::sync::notion_tenant(self.config) == Some(tenant.as_str()) {
                    let pulled = crate::sync::pull(self.store, self.config, false, self.clients.notion())?;
                    crate::sync::warn_pulled(&pulled);
                }
                let report = crate::scan::scan_tenant(self.store, self.config, tenant, slot, false)?;
                tam_agent::profile::surface_opportunities(self.store, tenant, None, slot)?;
                let s = &report.summary;
                Ok(format!("{} red, {} amber, {} green; {} effect(s)", s.red, s.amber, s.green, s.effects))
            }
            Kind::Checkins => {
                let due = self.store.checkins_due(tenant, slot)?;
                self.drafts(tenant, "health_checkin", &due, slot, &format!("scheduled-{slot}"))
            }
            Kind::Reviews => {
                let all = self.store.account_ids(tenant)?;
                self.drafts(tenant, "customer_success_review", &all, slot, &format!("quarter-{slot}"))
            }
            Kind::SyncJira => {
                Ok(crate::sync::pull_jira(self.store, self.config, None, self.clients.notion())?.summary())
            }
            Kind::SyncKayako => {
                Ok(crate::sync::pull_kayako(self.store, self.config, None, self.clients.notion())?.summary())
            }
        }
    }

    /// A `kind` task for each of `accounts`, idempotent by `label`; one failure does not stop
    /// the others.
    fn drafts(
        &mut self,
        tenant: &TenantId,
        kind: &str,
        accounts: &[String],
        slot: Timestamp,
        label: &str,
    ) -> Result<String> {
        let scan_config = |t: &TenantId| self.config.scan_config(Some(t)).unwrap_or_default();
        let mut ports = self.channels.ports(tenant);
        let mut ctx = TaskContext {
            store: self.store,
            channels: &mut ports,
            scan_config: &scan_config,
            retry: &self.config.retry,
            // The slot is the drafts' clock: the next check-in is due a whole interval later.
            now: slot,
            worker: self.worker,
        };
        let (mut drafted, mut failed, mut interrupted) = (0, Vec::new(), None);
        for (done, account) in accounts.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                interrupted = Some(done);
                break;
            }
            let Ok(id) = AccountId::parse("account_id", account) else { continue };
            let task = json!({"type": kind, "tenant_id": tenant, "account_id": id, "task_id": label});
            match tasks::run(&mut ctx, &task) {
                Ok(r) if r.get("partial") != Some(&Value::Bool(true)) => drafted += 1,
                Ok(r) => failed.push(format!("{account}: {}", r["error"].as_str().unwrap_or("partial"))),
                Err(e) => failed.push(format!("{account}: {e}")),
            }
        }
        self.channels.import_own_writes(self.store)?;
        if let Some(done) = interrupted {
            anyhow::bail!("interrupted by a shutdown after {done} of {} accounts", accounts.len());
        }
        anyhow::ensure!(
            failed.len() < accounts.len() || accounts.is_empty(),
            "every {kind} failed: {}",
            failed.join("; ")
        );
        Ok(format!(
            "{drafted} {kind} draft(s) for {} due account(s){}",
            accounts.len(),
            if failed.is_empty() { String::new() } else { format!("; failed: {}", failed.join("; ")) }
        ))
    }

    /// Delivers what is due for every tenant, stopping between tenants when asked to.
    fn dispatch(&mut self) -> Result<u64> {
        let mut delivered = 0;
        for tenant in self.store.tenants()?.into_iter().map(|t| t.id) {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let stop = || self.stop.load(Ordering::Relaxed);
            delivered += self.channels.dispatch_until(self.store, &tenant, &self.config.retry, &stop)?.delivered;
        }
        Ok(delivered)
    }
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    crate::log::JSON_LOGS.store(true, Ordering::Relaxed);
    let (mut store, config) = home.open()?;
    // One set of network clients for the scheduler and every API request.
    let clients = Arc::new(crate::channels::Clients::open(&config)?);
    let mut channels = HomeChannels::with(home, &config, &clients)?;
    let worker = worker();
    // Runs an earlier incarnation of this replica left `running` (it was killed) are let go, so
    // their slots run again within the grace rather than staying taken until they go stale.
    let released = store.release_dead_runs(|w| crate::channels::dead_on_this_host(w, &worker))?;
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
        config: &config,
        store: &mut store,
        channels: &mut channels,
        clients: &clients,
        worker: &worker,
        stop: &stop,
    };
    crate::log::event(
        "info",
        "serving",
        json!({"worker": worker, "once": args.once, "grace_minutes": args.grace_minutes}),
    );
    loop {
        let now = args.at.unwrap_or_else(crate::clock::now);
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
