//! The scheduler's tick: which jobs are due for each tenant, who runs each slot, and the jobs
//! themselves (the daily scan, check-ins, quarterly reviews, hourly ticket syncs).
//!
//! Each tick asks, per tenant and job, what [`Schedule::due`] says at this instant in the
//! tenant's zone. A slot is claimed by inserting its `job_runs` row, so with several processes
//! on one store exactly one runs it; a slot passed by more than the grace is recorded as
//! missed. Jobs run one at a time; a raised stop ends the tick between jobs and between
//! dispatch batches, so an effect is either delivered or still pending, never half-done.

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use serde_json::{Value, json};
use tam_agent::tasks::{self, Field, Task, TaskContext, Work};
use tam_core::schedule::{Due, Every, Schedule};
use tam_core::{AccountId, SignedDuration, TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;
use crate::channels::AppChannels;
use crate::log;
use crate::sync::{Sources, notion};

/// What a scheduled job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The daily health scan (pulling from Notion first in Notion mode).
    Scan,
    /// Check-ins for the accounts whose interval has passed.
    Checkins,
    /// Customer Success Reviews for every account.
    Reviews,
    /// Tickets from a helpdesk: its feed's name and its job's name.
    Sync(&'static str, &'static str),
    /// What reps made of the drafts in their mailboxes.
    DraftFates,
}

impl Kind {
    /// The job's name in `job_runs`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Scan => "scan",
            Kind::Checkins => "checkins",
            Kind::Reviews => "reviews",
            Kind::Sync(_, job) => job,
            Kind::DraftFates => "draft_fates",
        }
    }
}

/// The jobs of `tenant`: SPEC's schedule, an hourly sync from each helpdesk that feeds it, and
/// an hourly look at its drafts when their mailbox can tell what became of them.
pub fn jobs(sources: &Sources, tenant: &TenantId, watches_drafts: bool) -> Vec<(Kind, Every)> {
    let mut jobs = vec![
        (Kind::Scan, Every::Day(7, 0)),
        (Kind::Checkins, Every::Day(10, 0)),
        (Kind::Reviews, Every::Quarter(9, 0)),
    ];
    jobs.extend(
        sources.tickets.iter().filter(|f| f.tenant == *tenant).map(|f| (Kind::Sync(f.name, f.job), Every::Hour)),
    );
    if watches_drafts {
        jobs.push((Kind::DraftFates, Every::Hour));
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
                        log::event("warn", "job taken over by another worker", fields);
                        return;
                    }
                    // A busy store misses one renewal; the lease allows several.
                    Err(e) => log::event("warn", "job renewal failed", json!({"error": e.to_string()})),
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

/// One scheduler of a process: what it runs with, borrowed for one tick.
pub struct Tick<'a> {
    /// The rules of `tam.toml`.
    pub rules: &'a Rules,
    /// The store.
    pub store: &'a mut Store,
    /// The channels drafts and effects go out through.
    pub channels: &'a mut AppChannels,
    /// The process's ticket sources and Notion book.
    pub sources: &'a Sources,
    /// This process, as the runs' worker.
    pub worker: &'a str,
    /// Raised on SIGTERM: no job or dispatch batch starts once it is.
    pub stop: &'a AtomicBool,
}

impl Tick<'_> {
    /// Runs or records every job due at `now`; returns how many ran.
    pub fn run(&mut self, now: Timestamp, grace: SignedDuration) -> Result<u64> {
        let mut ran = 0;
        for (tenant, job, worker) in self.store.release_stalled_runs(Timestamp::now(), RUN_LEASE)? {
            log::event(
                "warn",
                "took over a stalled run",
                json!({"tenant": tenant, "job": job, "worker": worker, "lease_seconds": RUN_LEASE.as_secs()}),
            );
        }
        let stale = self.store.fail_stale_jobs(Timestamp::now(), SignedDuration::from_hours(STALE_HOURS))?;
        if stale > 0 {
            log::event("error", "job runs without a result", json!({"runs": stale, "older_than_hours": STALE_HOURS}));
        }
        for tenant in self.store.tenants()?.into_iter().map(|t| t.id) {
            let zone = self.rules.zone(&tenant);
            for (kind, every) in jobs(self.sources, &tenant, self.channels.fates.is_some()) {
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
                        log::event(
                            "warn",
                            "job missed",
                            json!({"tenant": tenant, "job": job, "slots": slots.len(), "latest": last}),
                        );
                    }
                    Due::Run { slot, missed } => {
                        if !missed.is_empty() {
                            self.store.record_missed(&tenant, job, &missed, now)?;
                            log::event(
                                "warn",
                                "job missed",
                                json!({"tenant": tenant, "job": job, "slots": missed.len(), "latest": missed.last()}),
                            );
                        }
                        if !self.store.claim_job(&tenant, job, slot, self.worker, Timestamp::now())? {
                            continue;
                        }
                        log::event("info", "job started", json!({"tenant": tenant, "job": job, "slot": slot}));
                        let renewal = Renewal::start(self.store, &tenant, job, slot, self.worker)?;
                        let result = self.job(kind, &tenant, slot);
                        drop(renewal);
                        if result.is_err() && self.stop.load(Ordering::Relaxed) {
                            // Interrupted by a shutdown: the slot runs again after a restart.
                            self.store.release_job(&tenant, job, slot, self.worker)?;
                            log::event("warn", "job interrupted", json!({"tenant": tenant, "job": job, "slot": slot}));
                            return Ok(ran);
                        }
                        let (ok, detail) = match &result {
                            Ok(d) => (true, d.clone()),
                            Err(e) => (false, format!("{e:#}")),
                        };
                        if !self.store.finish_job(&tenant, job, slot, self.worker, ok, &detail, Timestamp::now())? {
                            // It stalled past its lease and another worker ran the slot: that
                            // run's result stands.
                            log::event(
                                "warn",
                                "job finished after another worker took it over",
                                json!({"tenant": tenant, "job": job, "slot": slot, "ok": ok, "detail": detail}),
                            );
                            continue;
                        }
                        let level = if ok { "info" } else { "error" };
                        log::event(
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
                if let Some((book, notion)) = self.sources.notion_of(tenant) {
                    let import = self.rules.import_options(Timestamp::now());
                    notion::pull(self.store, notion, book, false, import)?.warn();
                }
                let report = crate::scan::scan_tenant(self.store, self.rules, tenant, slot, false, |_| {})?;
                let s = &report.summary;
                Ok(format!("{} red, {} amber, {} green; {} effect(s)", s.red, s.amber, s.green, s.effects))
            }
            Kind::Checkins => {
                let due = self.store.checkins_due(tenant, slot)?;
                let checkin = Work::HealthCheckin { period_days: Field::default() };
                self.drafts(tenant, &checkin, &due, slot, &format!("scheduled-{slot}"))
            }
            Kind::Reviews => {
                let all = self.store.account_ids(tenant)?;
                let review = Work::CustomerSuccessReview { period_days: Field::default() };
                self.drafts(tenant, &review, &all, slot, &format!("quarter-{slot}"))
            }
            Kind::Sync(name, _) => Ok(self.sources.pull(self.store, name, None, self.rules)?.summary()),
            Kind::DraftFates => {
                let Some(fates) = &self.channels.fates else { return Ok("no mailbox to read".to_owned()) };
                let stop = || self.stop.load(Ordering::Relaxed);
                let report = crate::fates::sync(self.store, tenant, fates.as_ref(), Timestamp::now(), &stop)?;
                Ok(report.summary())
            }
        }
    }

    /// A `work` task for each of `accounts`, idempotent by `label`; one failure does not stop
    /// the others.
    fn drafts(
        &mut self,
        tenant: &TenantId,
        work: &Work,
        accounts: &[String],
        slot: Timestamp,
        label: &str,
    ) -> Result<String> {
        let kind = work.kind().as_str();
        let scan_config = |t: &TenantId| self.rules.scan(Some(t)).clone();
        let mut ports = self.channels.ports(tenant);
        let mut ctx = TaskContext {
            store: self.store,
            channels: &mut ports,
            scan_config: &scan_config,
            retry: &self.rules.retry,
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
            let task = Task::new(tenant.clone(), Some(id), work.clone()).with_task_id(label);
            match tasks::run_task(&mut ctx, task) {
                Ok(r) if r.get("partial") != Some(&Value::Bool(true)) => drafted += 1,
                Ok(r) => failed.push(format!("{account}: {}", r["error"].as_str().unwrap_or("partial"))),
                Err(e) => failed.push(format!("{account}: {e}")),
            }
        }
        self.channels.import_own_writes(self.store, self.rules)?;
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
    pub fn dispatch(&mut self) -> Result<u64> {
        let mut delivered = 0;
        for tenant in self.store.tenants()?.into_iter().map(|t| t.id) {
            if self.stop.load(Ordering::Relaxed) {
                break;
            }
            let stop = || self.stop.load(Ordering::Relaxed);
            delivered += self.channels.dispatch_until(self.store, &tenant, self.rules, &stop)?.delivered;
        }
        Ok(delivered)
    }
}
