//! Scheduled job runs: a claim per (tenant, job, slot), its outcome, and missed slots, so
//! `tam jobs` shows what ran, what failed and what was missed.

use rusqlite::{OptionalExtension, params};
use tam_core::{TenantId, Timestamp};

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
    /// The latest slot of `job` that was run, is running, or was recorded missed.
    pub fn last_job_slot(&self, tenant: &TenantId, job: &str) -> Result<Option<Timestamp>, StoreError> {
        let slot: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(slot) FROM job_runs WHERE tenant_id = ?1 AND job = ?2",
                params![tenant.as_str(), job],
                |r| r.get(0),
            )
            .optional()?
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
            "INSERT INTO job_runs (tenant_id, job, slot, outcome, worker, started_at) VALUES (?1, ?2, ?3, 'running', ?4, ?5)
             ON CONFLICT DO NOTHING",
            params![tenant.as_str(), job, nanos(slot), worker, nanos(now)],
        )?;
        Ok(added == 1)
    }

    /// Records how a claimed run ended: `ok` or `failed`, with what it did or why.
    pub fn finish_job(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slot: Timestamp,
        ok: bool,
        detail: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE job_runs SET outcome = ?4, finished_at = ?5, detail = ?6 WHERE tenant_id = ?1 AND job = ?2 AND slot = ?3",
            params![tenant.as_str(), job, nanos(slot), if ok { "ok" } else { "failed" }, nanos(now), detail],
        )?;
        Ok(())
    }

    /// Records `slots` of `job` as missed (passed by more than the grace while nothing ran).
    pub fn record_missed(
        &mut self,
        tenant: &TenantId,
        job: &str,
        slots: &[Timestamp],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO job_runs (tenant_id, job, slot, outcome, finished_at, detail) VALUES (?1, ?2, ?3, 'missed', ?4, ?5)
                 ON CONFLICT DO NOTHING",
            )?;
            for slot in slots {
                insert.execute(params![
                    tenant.as_str(),
                    job,
                    nanos(*slot),
                    nanos(now),
                    format!("not run within the grace; noticed at {now}")
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Accounts whose check-in is due at `now`: no check-in drafted (or queued) within their
    /// check-in interval.
    pub fn checkins_due(&self, tenant: &TenantId, now: Timestamp) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT a.id FROM accounts a WHERE a.tenant_id = ?1 AND NOT EXISTS (
                SELECT 1 FROM outbox o WHERE o.tenant_id = a.tenant_id AND o.account_id = a.id AND o.effect = 'draft'
                   AND json_extract(o.payload, '$.kind') = 'health_checkin' AND o.state <> 'failed'
                   AND o.created_at > ?2 - a.check_in_interval_days * 86400000000000)
             ORDER BY a.id",
        )?;
        let ids = stmt.query_map(params![tenant.as_str(), nanos(now)], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// The latest `limit` job runs, newest slot first; one tenant's or all.
    pub fn job_runs(&self, tenant: Option<&TenantId>, limit: usize) -> Result<Vec<JobRun>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT tenant_id, job, slot, outcome, worker, started_at, finished_at, detail FROM job_runs
             WHERE ?1 IS NULL OR tenant_id = ?1 ORDER BY slot DESC, job LIMIT ?2",
        )?;
        let rows =
            stmt.query_map(params![tenant.map(TenantId::as_str), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok(JobRun {
                    tenant: r.get(0)?,
                    job: r.get(1)?,
                    slot: from_nanos(r.get(2)?),
                    outcome: r.get(3)?,
                    worker: r.get(4)?,
                    started_at: r.get::<_, Option<i64>>(5)?.map(from_nanos),
                    finished_at: r.get::<_, Option<i64>>(6)?.map(from_nanos),
                    detail: r.get(7)?,
                })
            })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
