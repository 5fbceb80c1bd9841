//! Scheduled job runs: a claim per (tenant, job, slot), its outcome, and missed slots, so
//! `tam jobs` shows what ran, what failed and what was missed.

use tam_core::{TenantId, Timestamp};

use crate::db::{Dialect, args};
use crate::{Store, StoreError, from_nanos, nanos};

/// One row of the job history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JobRun {
    /// Tenant.
    pub tenant: String,
    /// Job name.
    pub job: String,
    /// The slot it was for.
    pub slot: Timestamp,
    /// `running`, `ok`, `failed` or `missed`.
    pub outcome: String,
    /// The process that ran it.
    pub worker: Option<String>,
    /// When it started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
    /// What it did, or why it failed.
    pub detail: Option<String>,
}

impl Store {
    /// Heartbeats stored, every tenant.
    pub fn heartbeat_count(&self) -> Result<u64, StoreError> {
        let n: Option<i64> = self.conn.row("SELECT COUNT(*) FROM heartbeats", &[], |r| r.get(0))?;
        Ok(n.unwrap_or_default().unsigned_abs())
    }

    /// The latest slot of `job` that was run, is running, or was recorded missed.
    pub fn last_job_slot(&self, tenant: &TenantId, job: &str) -> Result<Option<Timestamp>, StoreError> {
        let slot: Option<i64> = self
            .conn
            .row(
                "SELECT MAX(slot) FROM job_runs WHERE tenant_id = ?1 AND job = ?2",
                &args![tenant.as_str(), job],
                |r| r.get(0),
            )?
            .flatten();
        Ok(slot.map(from_nanos))
    }

    /// Claims `slot` of `job` for `worker`; false when another process claimed it first.
    pub fn claim_job(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slot: Timestamp,
        worker: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let added = self.conn.execute(
            "INSERT INTO job_runs (tenant_id, job, slot, outcome, worker, started_at, renewed_at)
             VALUES (?1, ?2, ?3, 'running', ?4, ?5, ?5)
             ON CONFLICT DO NOTHING",
            &args![tenant.as_str(), job, nanos(slot), worker, nanos(now)],
        )?;
        Ok(added == 1)
    }

    /// Records how `worker`'s run ended: `ok` or `failed`, with what it did or why. False (and
    /// nothing recorded) when the run is no longer its own: it stopped renewing its claim and
    /// another worker took the slot over.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_job(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slot: Timestamp,
        worker: &str,
        ok: bool,
        detail: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE job_runs SET outcome = ?5, finished_at = ?6, detail = ?7
             WHERE tenant_id = ?1 AND job = ?2 AND slot = ?3 AND worker = ?4 AND outcome = 'running'",
            &args![tenant.as_str(), job, nanos(slot), worker, if ok { "ok" } else { "failed" }, nanos(now), detail],
        )?;
        Ok(n == 1)
    }

    /// Lets go of `worker`'s run that was interrupted (a shutdown mid-job), so the slot can run
    /// again; what it did is idempotent.
    pub fn release_job(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slot: Timestamp,
        worker: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM job_runs WHERE tenant_id = ?1 AND job = ?2 AND slot = ?3 AND worker = ?4 AND outcome = 'running'",
            &args![tenant.as_str(), job, nanos(slot), worker],
        )?;
        Ok(())
    }

    /// Renews `worker`'s claim on a run it is still running. False when the run is no longer
    /// its own.
    pub fn renew_job(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slot: Timestamp,
        worker: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE job_runs SET renewed_at = ?5
             WHERE tenant_id = ?1 AND job = ?2 AND slot = ?3 AND worker = ?4 AND outcome = 'running'",
            &args![tenant.as_str(), job, nanos(slot), worker, nanos(now)],
        )?;
        Ok(n == 1)
    }

    /// Lets go of every run still `running` whose worker has not renewed it for `lease` (it
    /// was killed, or its machine went away), whichever replica it ran on, so its slot runs
    /// again within the grace. A run with no renewal at all was claimed by a `tam` that does
    /// not renew (during an upgrade): only the stale limit ends it, or it would run twice.
    /// Returns the runs taken back, as `(tenant, job, worker)`.
    pub fn release_stalled_runs(
        &mut self,
        now: Timestamp,
        lease: tam_core::SignedDuration,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let before = nanos(now.checked_sub(lease).unwrap_or(now));
        self.conn.rows(
            "DELETE FROM job_runs WHERE outcome = 'running' AND renewed_at < ?1
             RETURNING tenant_id, job, COALESCE(worker, '')",
            &args![before],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// Lets go of every run still `running` whose worker `dead` says is gone (a replica that
    /// restarts recognises its own earlier incarnation), so its slot runs again within the
    /// grace instead of staying taken until it goes stale. Returns how many.
    pub fn release_dead_runs(&mut self, dead: impl Fn(&str) -> bool) -> Result<u64, StoreError> {
        let tx = self.conn.begin()?;
        let mut released = 0;
        let runs: Vec<(String, String, i64, String)> = tx.rows(
            "SELECT tenant_id, job, slot, COALESCE(worker, '') FROM job_runs WHERE outcome = 'running'",
            &[],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        for (tenant, job, slot, _) in runs.iter().filter(|r| dead(&r.3)) {
            released += tx.execute(
                "DELETE FROM job_runs WHERE tenant_id = ?1 AND job = ?2 AND slot = ?3 AND outcome = 'running'",
                &args![tenant, job, slot],
            )?;
        }
        tx.commit()?;
        Ok(released)
    }

    /// Marks runs still `running` after `older_than` as failed: their worker died (killed, out
    /// of memory) without recording a result. Returns how many.
    pub fn fail_stale_jobs(&mut self, now: Timestamp, older_than: tam_core::SignedDuration) -> Result<u64, StoreError> {
        let before = now.checked_sub(older_than).unwrap_or(now);
        let n = self.conn.execute(
            "UPDATE job_runs SET outcome = 'failed', finished_at = ?1,
                    detail = 'no result: its worker stopped without recording one'
             WHERE outcome = 'running' AND started_at < ?2",
            &args![nanos(now), nanos(before)],
        )?;
        Ok(n)
    }

    /// Records `slots` of `job` as missed (passed by more than the grace while nothing ran).
    pub fn record_missed(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slots: &[Timestamp],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.conn.begin()?;
        let detail = format!("not run within the grace; noticed at {now}");
        for slot in slots {
            tx.execute(
                "INSERT INTO job_runs (tenant_id, job, slot, outcome, finished_at, detail) VALUES (?1, ?2, ?3, 'missed', ?4, ?5)
                 ON CONFLICT DO NOTHING",
                &args![tenant.as_str(), job, nanos(*slot), nanos(now), detail],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Accounts whose check-in is due at `now`: no check-in drafted (or queued) within their
    /// check-in interval, less half a day (a DST change makes some days 23 hours long).
    pub fn checkins_due(&self, tenant: &TenantId, now: Timestamp) -> Result<Vec<String>, StoreError> {
        let sql = match self.conn.dialect() {
            Dialect::Sqlite => {
                "SELECT a.id FROM accounts a WHERE a.tenant_id = ?1 AND NOT EXISTS (
                SELECT 1 FROM outbox o WHERE o.tenant_id = a.tenant_id AND o.account_id = a.id AND o.effect = 'draft'
                   AND json_extract(o.payload, '$.kind') = 'health_checkin' AND o.state <> 'failed'
                   AND o.created_at > ?2 - a.check_in_interval_days * 86400000000000 + 43200000000000)
             ORDER BY a.id"
            }
            Dialect::Postgres => {
                "SELECT a.id FROM accounts a WHERE a.tenant_id = ?1 AND NOT EXISTS (
                SELECT 1 FROM outbox o WHERE o.tenant_id = a.tenant_id AND o.account_id = a.id AND o.effect = 'draft'
                   AND o.payload::jsonb ->> 'kind' = 'health_checkin' AND o.state <> 'failed'
                   AND o.created_at > ?2 - a.check_in_interval_days * 86400000000000 + 43200000000000)
             ORDER BY a.id"
            }
        };
        self.conn.rows(sql, &args![tenant.as_str(), nanos(now)], |r| r.get(0))
    }

    /// The latest `limit` job runs, newest slot first; one tenant's or all.
    pub fn job_runs(&self, tenant: Option<&TenantId>, limit: usize) -> Result<Vec<JobRun>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let read = |r: &crate::db::Row<'_>| {
            Ok(JobRun {
                tenant: r.get(0)?,
                job: r.get(1)?,
                slot: from_nanos(r.get(2)?),
                outcome: r.get(3)?,
                worker: r.get(4)?,
                started_at: r.get::<Option<i64>>(5)?.map(from_nanos),
                finished_at: r.get::<Option<i64>>(6)?.map(from_nanos),
                detail: r.get(7)?,
            })
        };
        const COLUMNS: &str = "tenant_id, job, slot, outcome, worker, started_at, finished_at, detail";
        match tenant {
            Some(tenant) => self.conn.rows(
                &format!("SELECT {COLUMNS} FROM job_runs WHERE tenant_id = ?1 ORDER BY slot DESC, job LIMIT ?2"),
                &args![tenant.as_str(), limit],
                read,
            ),
            None => self.conn.rows(
                &format!("SELECT {COLUMNS} FROM job_runs ORDER BY slot DESC, job LIMIT ?1"),
                &args![limit],
                read,
            ),
        }
    }
}

/// An account with its latest health, as the API, the dashboard and MCP list it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountHealth {
    /// Account id.
    pub account_id: String,
    /// Customer name.
    pub name: String,
    /// The rep's email.
    pub rep_email: String,
    /// Latest score, if scanned.
    pub score: Option<u8>,
    /// `green`, `amber`, `red`, if scanned.
    pub status: Option<String>,
    /// Against about a week earlier, if scanned.
    pub trend: Option<String>,
    /// The latest scan.
    pub last_scan: Option<Timestamp>,
    /// In an escalation episode at the latest scan.
    pub escalated: bool,
    /// Why the episode opened, or what the latest scan escalated on.
    pub escalation_reason: Option<String>,
}

/// Which accounts [`Store::account_health`] lists; the default lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthFilter {
    /// Only this latest status (`green`, `amber`, `red`).
    pub status: Option<String>,
    /// Only this rep's accounts (in any case).
    pub rep_email: Option<String>,
    /// Only accounts in (or out of) an escalation episode.
    pub escalated: Option<bool>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// Accounts `a`, each with its latest snapshot `s` (none before its first scan): an account's
/// current health.
const WITH_LATEST_SNAPSHOT: &str = "FROM accounts a LEFT JOIN snapshots s
    ON s.tenant_id = a.tenant_id AND s.account_id = a.id AND s.as_of = (
       SELECT MAX(as_of) FROM snapshots l WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id)";

impl Store {
    /// The accounts of `tenant` that `filter` keeps, each with its latest health, worst first
    /// (unscanned last).
    pub fn account_health(&self, tenant: &TenantId, filter: &HealthFilter) -> Result<Vec<AccountHealth>, StoreError> {
        // Each condition is written whole; an absent one binds NULL and keeps every row.
        let limit = filter.limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let escalated = filter.escalated.map(i64::from);
        let rep = filter.rep_email.as_ref().map(|r| r.trim().to_lowercase());
        self.conn.rows(
            &format!(
                "SELECT a.id, a.name, a.rep_email, s.score, s.status, s.trend, s.as_of,
                        CASE WHEN s.episode_opened_at IS NULL THEN 0 ELSE 1 END, COALESCE(s.trigger, s.episode_reason)
                 {WITH_LATEST_SNAPSHOT}
                  WHERE a.tenant_id = ?1
                    AND (CAST(?2 AS TEXT) IS NULL OR s.status = ?2)
                    AND (CAST(?3 AS TEXT) IS NULL OR lower(a.rep_email) = ?3)
                    AND (CAST(?4 AS BIGINT) IS NULL OR (CASE WHEN s.episode_opened_at IS NULL THEN 0 ELSE 1 END) = ?4)
                  ORDER BY s.score IS NULL, s.score, a.id
                  {}",
                match self.conn.dialect() {
                    Dialect::Sqlite => "LIMIT ?5",
                    // PostgreSQL's LIMIT takes NULL, not -1, for no limit.
                    Dialect::Postgres => "LIMIT NULLIF(CAST(?5 AS BIGINT), -1)",
                }
            ),
            &args![tenant.as_str(), filter.status.as_deref(), rep.as_deref(), escalated, limit],
            |r| {
                Ok(AccountHealth {
                    account_id: r.get(0)?,
                    name: r.get(1)?,
                    rep_email: r.get(2)?,
                    score: r.get::<Option<i64>>(3)?.and_then(|s| u8::try_from(s).ok()),
                    status: r.get(4)?,
                    trend: r.get(5)?,
                    last_scan: r.get::<Option<i64>>(6)?.map(from_nanos),
                    escalated: r.get(7)?,
                    escalation_reason: r.get(8)?,
                })
            },
        )
    }

    /// The tenant's outbox rows by effect and state.
    pub fn outbox_counts(&self, tenant: &TenantId) -> Result<Vec<(String, String, u64)>, StoreError> {
        self.conn.rows(
            "SELECT effect, state, COUNT(*) FROM outbox WHERE tenant_id = ?1 GROUP BY 1, 2 ORDER BY 1, 2",
            &args![tenant.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get::<i64>(2)?.unsigned_abs())),
        )
    }
}

/// A tenant's figures for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantMetrics {
    /// Accounts by latest status (`unscanned` for none).
    pub accounts: Vec<(String, u64)>,
    /// Outbox rows by effect and state.
    pub outbox: Vec<(String, String, u64)>,
    /// Scans stored.
    pub scans: u64,
    /// How long the latest scheduled scan took, in seconds.
    pub last_scan_seconds: Option<f64>,
    /// Model tokens spent: input, output.
    pub tokens: (u64, u64),
}

impl Store {
    /// The figures `/metrics` exports for `tenant`.
    pub fn tenant_metrics(&self, tenant: &TenantId) -> Result<TenantMetrics, StoreError> {
        let t = tenant.as_str();
        let count = |n: i64| n.unsigned_abs();
        let accounts = self.conn.rows(
            &format!(
                "SELECT COALESCE(s.status, 'unscanned'), COUNT(*) {WITH_LATEST_SNAPSHOT}
                  WHERE a.tenant_id = ?1 GROUP BY 1 ORDER BY 1"
            ),
            &args![t],
            |r| Ok((r.get(0)?, count(r.get(1)?))),
        )?;
        let outbox = self.outbox_counts(tenant)?;
        let scans = count(
            self.conn
                .row("SELECT COUNT(*) FROM scans WHERE tenant_id = ?1", &args![t], |r| r.get(0))?
                .unwrap_or_default(),
        );
        let last_scan_seconds = self
            .conn
            .row(
                "SELECT finished_at - started_at FROM job_runs WHERE tenant_id = ?1 AND job = 'scan' AND outcome = 'ok'
                 ORDER BY slot DESC LIMIT 1",
                &args![t],
                |r| r.get::<i64>(0),
            )?
            .map(|nanos| nanos as f64 / 1e9);
        let tokens = self
            .conn
            .row(
                "SELECT CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT)
                 FROM model_calls WHERE tenant_id = ?1",
                &args![t],
                |r| Ok((count(r.get(0)?), count(r.get(1)?))),
            )?
            .unwrap_or_default();
        Ok(TenantMetrics { accounts, outbox, scans, last_scan_seconds, tokens })
    }
}
