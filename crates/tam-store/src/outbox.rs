//! The outbox: one row per intended effect, written in the scan's transaction, delivered later
//! by a dispatcher that holds a lease on the rows it works on.
//!
//! **Invariant:** `(tenant, idem_key)` is unique: a re-run of a scan adds nothing.
//! **Invariant:** a worker finishes a row only while it still holds the lease; a stale
//! worker's late result is refused, so an expired lease never causes a double finish.

use tam_core::outbox::{EffectKind, IdemKey};
use tam_core::{AccountId, SignedDuration, TenantId, Timestamp};

use crate::db::{Batch, Conn, Dialect, Row, args};
use crate::{Store, StoreError, from_nanos, nanos};

/// A draft saved for an account, as its profile's communication history lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Communication {
    /// When it was saved.
    pub at: Timestamp,
    /// `escalation_outreach`, `health_checkin`, ...
    pub kind: String,
    /// Its subject, when the mailbox kept it.
    pub subject: Option<String>,
    /// Where it was saved.
    pub receipt: String,
}

/// An effect the scan wants delivered.
#[derive(Debug, Clone)]
pub struct NewEffect {
    /// Idempotency key.
    pub key: IdemKey,
    /// Channel.
    pub kind: EffectKind,
    /// The account it is about (none for digests).
    pub account: Option<AccountId>,
    /// What the channel needs, as JSON.
    pub payload: String,
}

/// Where an effect stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Waiting for its next attempt.
    Pending,
    /// Claimed by a dispatcher.
    InFlight,
    /// Done.
    Delivered,
    /// Out of attempts, or rejected by its channel; `tam outbox retry` revives it.
    Failed,
}

impl OutboxState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::InFlight => "in_flight",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }

    /// The inverse of [`OutboxState::as_str`].
    pub fn parse(raw: &str) -> Option<OutboxState> {
        [OutboxState::Pending, OutboxState::InFlight, OutboxState::Delivered, OutboxState::Failed]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Tenant.
    pub tenant: TenantId,
    /// Idempotency key.
    pub key: IdemKey,
    /// Channel.
    pub kind: EffectKind,
    /// Account, if any.
    pub account: Option<String>,
    /// The channel's input, JSON.
    pub payload: String,
    /// State.
    pub state: OutboxState,
    /// Attempts so far (including a claimed, unfinished one).
    pub attempts: u32,
    /// When it is next due.
    pub next_attempt_at: Timestamp,
    /// The last failure.
    pub last_error: Option<String>,
    /// Where it landed, once delivered.
    pub receipt: Option<String>,
    /// When it was planned (the scan instant).
    pub created_at: Timestamp,
    /// When it was delivered.
    pub delivered_at: Option<Timestamp>,
}

/// One recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first.
    pub attempt: u32,
    /// When it ended.
    pub at: Timestamp,
    /// `delivered`, `retry` or `failed`.
    pub outcome: String,
    /// The receipt or the error.
    pub detail: Option<String>,
}

/// How many due rows one claim takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Drafts at most. Kept small when a model writes them, so the batch ends well inside the lease.
    pub drafts: usize,
    /// Effects of the other kinds at most, claimed only once no more drafts are due.
    pub others: usize,
}

/// The claim: unfinished rows of one rank (drafts, or the rest) that are due and not leased,
/// oldest first, read in the order of `outbox_due` so the walk stops at the limit, then `$lock`.
/// The attempt count it raises is the lease's fencing token: a finish names it, and a worker
/// whose lease ran out (and whose row another worker claimed again) finishes nothing.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE outbox SET state = 'in_flight', lease_owner = ?2, lease_until = ?3, attempts = attempts + 1
    WHERE id IN (
        SELECT id FROM outbox
        WHERE tenant_id = ?1 AND state IN ('pending', 'in_flight') AND (effect != 'draft') = ?5
          AND next_attempt_at <= ?4 AND (lease_until IS NULL OR lease_until <= ?4)
        ORDER BY next_attempt_at, id LIMIT ?6",
            $lock,
            ")
    RETURNING id, tenant_id, idem_key, effect, account_id, payload, state, attempts, next_attempt_at,
        last_error, receipt, created_at, delivered_at"
        )
    };
}

/// The claim on SQLite, whose one writer at a time already keeps two claims apart.
const CLAIM_SQL: &str = claim_sql!("");

/// The claim for replicas sharing one PostgreSQL: rows another replica is claiming are skipped
/// rather than waited for, and none is claimed twice.
const CLAIM_SQL_SHARED: &str = claim_sql!(" FOR UPDATE SKIP LOCKED");

/// How an attempt ended, as the outbox records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Delivered; `receipt` says where.
    Delivered {
        /// Where it landed.
        receipt: String,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        /// Why this attempt failed.
        error: String,
        /// When to try again.
        next_attempt_at: Timestamp,
    },
    /// Give up until someone runs `tam outbox retry`.
    Failed {
        /// Why.
        error: String,
    },
    /// Not attempted: something it depends on (the draft an alert links) is not ready. Due
    /// again at `next_attempt_at`; the claim does not count as an attempt.
    Defer {
        /// When to look again.
        next_attempt_at: Timestamp,
    },
}

/// How one claimed row ends, as the finishing statement writes it.
struct Settled<'r> {
    id: i64,
    /// The fencing token: the attempt count the claim set.
    attempts: u32,
    state: &'static str,
    next: i64,
    /// 1 when the claim does not count as an attempt (a deferred row).
    undo: i64,
    error: Option<&'r str>,
    receipt: Option<&'r str>,
    delivered: Option<i64>,
    /// The attempt's outcome; none for a deferred row, which records no attempt.
    outcome: Option<&'static str>,
}

impl<'r> Settled<'r> {
    fn of(row: &'r OutboxRow, finish: &'r Finish, at: Timestamp) -> Settled<'r> {
        let (state, next, undo, error, receipt, delivered, outcome) = match finish {
            Finish::Defer { next_attempt_at } => ("pending", *next_attempt_at, 1, None, None, None, None),
            Finish::Delivered { receipt } => {
                ("delivered", row.next_attempt_at, 0, None, Some(receipt.as_str()), Some(nanos(at)), Some("delivered"))
            }
            Finish::Retry { error, next_attempt_at } => {
                ("pending", *next_attempt_at, 0, Some(error.as_str()), None, None, Some("retry"))
            }
            Finish::Failed { error } => {
                ("failed", row.next_attempt_at, 0, Some(error.as_str()), None, None, Some("failed"))
            }
        };
        Settled {
            id: row.id,
            attempts: row.attempts,
            state,
            next: nanos(next),
            undo,
            error,
            receipt,
            delivered,
            outcome,
        }
    }
}

/// Finishes every row of `settled` still leased to `worker` in one statement; returns their ids.
fn finish_together(tx: &Conn, worker: &str, settled: &[Settled<'_>]) -> Result<Vec<i64>, StoreError> {
    if settled.is_empty() {
        return Ok(Vec::new());
    }
    let types = ["bigint", "bigint", "text", "bigint", "bigint", "text", "text", "bigint"];
    let rows = crate::db::cast_placeholders(settled.len(), &types);
    let sql = format!(
        "UPDATE outbox AS o SET state = v.state, next_attempt_at = v.next, attempts = o.attempts - v.undo,
                last_error = COALESCE(v.error, o.last_error), receipt = COALESCE(v.receipt, o.receipt),
                delivered_at = COALESCE(v.delivered, o.delivered_at), lease_owner = NULL, lease_until = NULL
         FROM (VALUES {rows}) AS v (id, attempts, state, next, undo, error, receipt, delivered)
         WHERE o.id = v.id AND o.lease_owner = ?{} AND o.attempts = v.attempts AND o.state = 'in_flight'
         RETURNING o.id",
        settled.len() * types.len() + 1
    );
    let mut args = Vec::with_capacity(settled.len() * types.len() + 1);
    for s in settled {
        args.extend(args![s.id, s.attempts, s.state, s.next, s.undo, s.error, s.receipt, s.delivered]);
    }
    args.push(crate::db::Arg::Text(worker));
    tx.rows_once(&sql, &args, |r| r.get(0))
}

const COLUMNS: &str = "id, tenant_id, idem_key, effect, account_id, payload, state, attempts, next_attempt_at,
    last_error, receipt, created_at, delivered_at";

fn read_row(r: &Row<'_>) -> Result<OutboxRow, StoreError> {
    let id: i64 = r.get(0)?;
    let bad = |field: &'static str, value: String| StoreError::Corrupt {
        table: "outbox",
        key: id.to_string(),
        field,
        reason: format!("unknown value {value:?}"),
    };
    let tenant: String = r.get(1)?;
    let effect: String = r.get(3)?;
    let state: String = r.get(6)?;
    Ok(OutboxRow {
        id,
        tenant: TenantId::parse("tenant_id", &tenant).map_err(|e| bad("tenant_id", e.reason))?,
        key: IdemKey::from_stored(r.get(2)?),
        kind: EffectKind::parse(&effect).ok_or_else(|| bad("effect", effect.clone()))?,
        account: r.get(4)?,
        payload: r.get(5)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
        attempts: r.get(7)?,
        next_attempt_at: from_nanos(r.get(8)?),
        last_error: r.get(9)?,
        receipt: r.get(10)?,
        created_at: from_nanos(r.get(11)?),
        delivered_at: r.get::<Option<i64>>(12)?.map(from_nanos),
    })
}

pub(crate) fn insert_effects<'e>(
    tx: &Conn,
    tenant: &TenantId,
    as_of: Timestamp,
    effects: impl IntoIterator<Item = &'e NewEffect>,
) -> Result<u64, StoreError> {
    const COLUMNS: &str =
        "INSERT INTO outbox (tenant_id, idem_key, effect, account_id, payload, next_attempt_at, created_at)";
    const NEW: &str = "ON CONFLICT (tenant_id, idem_key) DO NOTHING";
    let mut batch = Batch::new(COLUMNS, NEW, &["text", "text", "text", "text", "text", "bigint", "bigint"]);
    let (t, at) = (tenant.as_str(), nanos(as_of));
    let mut added = 0;
    for e in effects {
        let row =
            args![t, e.key.as_str(), e.kind.as_str(), e.account.as_ref().map(AccountId::as_str), e.payload, 0i64, at];
        added += batch.push(tx, || e.key.as_str().to_owned(), &row)?;
    }
    Ok(added + batch.flush(tx)?)
}

impl Store {
    /// Adds effects outside a scan (tasks, opportunities), recorded as created at `at` and due
    /// at once. A key seen before adds nothing. Returns how many were added.
    pub fn enqueue(&mut self, tenant: &TenantId, at: Timestamp, effects: &[NewEffect]) -> Result<u64, StoreError> {
        let tx = self.conn.begin()?;
        let added = insert_effects(&tx, tenant, at, effects)?;
        tx.commit()?;
        Ok(added)
    }

    /// Claims due effects of the tenant for `worker` until `now + lease`: pending ones, and
    /// in-flight ones whose lease ran out (their worker died). Drafts come first, because
    /// alerts link to them: up to `claim.drafts` of them, and only when fewer were due, up to
    /// `claim.others` effects of the other kinds. One transaction; the claim walks the
    /// unfinished rows in delivery order and stops at its limit.
    pub fn claim_due(
        &mut self,
        tenant: &TenantId,
        now: Timestamp,
        worker: &str,
        lease: SignedDuration,
        claim: Claim,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let sql = match self.conn.dialect() {
            Dialect::Sqlite => CLAIM_SQL,
            Dialect::Postgres => CLAIM_SQL_SHARED,
        };
        let tx = self.conn.begin()?;
        let mut rows = Vec::new();
        let take = |others: bool, limit: usize, rows: &mut Vec<OutboxRow>| -> Result<(), StoreError> {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            tx.each(sql, &args![tenant.as_str(), worker, nanos(until), nanos(now), others, limit], |r| {
                rows.push(read_row(r)?);
                Ok(())
            })
        };
        take(false, claim.drafts, &mut rows)?;
        if rows.len() < claim.drafts {
            take(true, claim.others, &mut rows)?;
        }
        tx.commit()?;
        rows.sort_by_key(|r| (r.kind != EffectKind::Draft, r.id));
        Ok(rows)
    }

    /// Claims the rows of `keys` that are due and not leased to another worker: what a task
    /// queued, delivered by that task. Rows another worker holds are left out.
    pub fn claim_keys(
        &mut self,
        tenant: &TenantId,
        keys: &[&IdemKey],
        now: Timestamp,
        worker: &str,
        lease: SignedDuration,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let until = now.checked_add(lease).unwrap_or(Timestamp::MAX);
        let tx = self.conn.begin()?;
        let mut rows = Vec::new();
        for key in keys {
            // On PostgreSQL the row's lock makes a concurrent claim wait, then see it leased.
            let claimed = tx.row(
                "UPDATE outbox SET state = 'in_flight', lease_owner = ?3, lease_until = ?4, attempts = attempts + 1
                 WHERE tenant_id = ?1 AND idem_key = ?2 AND state IN ('pending', 'in_flight')
                   AND next_attempt_at <= ?5 AND (lease_until IS NULL OR lease_until <= ?5)
                 RETURNING id, tenant_id, idem_key, effect, account_id, payload, state, attempts, next_attempt_at,
                     last_error, receipt, created_at, delivered_at",
                &args![tenant.as_str(), key.as_str(), worker, nanos(until), nanos(now)],
                read_row,
            )?;
            rows.extend(claimed);
        }
        tx.commit()?;
        Ok(rows)
    }

    /// Records one attempt and finishes the row, if `worker` still holds its lease. Returns
    /// false (and records nothing) when the lease was lost.
    pub fn finish(
        &mut self,
        row: &OutboxRow,
        worker: &str,
        at: Timestamp,
        finish: &Finish,
    ) -> Result<bool, StoreError> {
        Ok(self.finish_batch(worker, at, [(row, finish)])? == 0)
    }

    /// Finishes a claimed batch in one transaction: each row, and its attempt, only if `worker`
    /// still holds its lease. Returns how many results were refused because the lease was lost.
    pub fn finish_batch<'r>(
        &mut self,
        worker: &str,
        at: Timestamp,
        finished: impl IntoIterator<Item = (&'r OutboxRow, &'r Finish)>,
    ) -> Result<u64, StoreError> {
        let settled: Vec<Settled<'r>> =
            finished.into_iter().map(|(row, finish)| Settled::of(row, finish, at)).collect();
        let tx = self.conn.begin()?;
        let finished = match tx.dialect() {
            Dialect::Sqlite => {
                let mut finished = Vec::with_capacity(settled.len());
                for s in &settled {
                    let updated = tx.execute(
                        "UPDATE outbox SET state = ?4, next_attempt_at = ?5, attempts = attempts - ?9,
                                last_error = COALESCE(?6, last_error), receipt = COALESCE(?7, receipt),
                                delivered_at = COALESCE(?8, delivered_at), lease_owner = NULL, lease_until = NULL
                         WHERE id = ?1 AND lease_owner = ?2 AND attempts = ?3 AND state = 'in_flight'",
                        &args![s.id, worker, s.attempts, s.state, s.next, s.error, s.receipt, s.delivered, s.undo],
                    )?;
                    if updated == 1 {
                        finished.push(s.id);
                    }
                }
                finished
            }
            Dialect::Postgres => finish_together(&tx, worker, &settled)?,
        };
        let finished: std::collections::HashSet<i64> = finished.into_iter().collect();
        let attempts: Vec<&Settled<'_>> =
            settled.iter().filter(|s| s.outcome.is_some() && finished.contains(&s.id)).collect();
        let mut recorded: Batch<i64> = Batch::new(
            "INSERT INTO outbox_attempts (outbox_id, attempt, at, outcome, detail)",
            "",
            &["bigint", "bigint", "bigint", "text", "text"],
        );
        for s in &attempts {
            recorded.push(&tx, || s.id, &args![s.id, s.attempts, nanos(at), s.outcome, s.error.or(s.receipt)])?;
        }
        recorded.flush(&tx)?;
        tx.commit()?;
        Ok((settled.len() - finished.len()) as u64)
    }

    /// The tenant's outbox, oldest first, optionally in one state.
    pub fn outbox(&self, tenant: &TenantId, state: Option<OutboxState>) -> Result<Vec<OutboxRow>, StoreError> {
        match state {
            None => self.conn.rows(
                &format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = ?1 ORDER BY id"),
                &args![tenant.as_str()],
                read_row,
            ),
            Some(state) => self.conn.rows(
                &format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = ?1 AND state = ?2 ORDER BY id"),
                &args![tenant.as_str(), state.as_str()],
                read_row,
            ),
        }
    }

    /// The effects planned for one account, newest first, at most `limit`. Every key of an
    /// account's effect starts with its kind and the account id (`draft:acme/…`, `crm:acme:…`),
    /// so each kind is one range of the tenant's keys, read by the key index, not a walk of the
    /// tenant's outbox.
    pub fn account_effects(
        &self,
        tenant: &TenantId,
        account: &str,
        limit: usize,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox
             WHERE tenant_id = ?1 AND idem_key >= ?2 AND idem_key < ?3 AND account_id = ?4
             ORDER BY idem_key DESC LIMIT ?5"
        );
        let cap = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut out = Vec::new();
        for kind in tam_core::outbox::EffectKind::ALL {
            // After the id comes `/` or `:`; `;` is the next byte after both.
            let (from, to) = (format!("{}:{account}/", kind.as_str()), format!("{}:{account};", kind.as_str()));
            out.extend(self.conn.rows(&sql, &args![tenant.as_str(), from, to, account, cap], read_row)?);
        }
        out.sort_by_key(|r| std::cmp::Reverse(r.id));
        out.truncate(limit);
        Ok(out)
    }

    /// Every recorded attempt of one outbox row, first first.
    pub fn attempts(&self, row_id: i64) -> Result<Vec<Attempt>, StoreError> {
        self.conn.rows(
            "SELECT attempt, at, outcome, detail FROM outbox_attempts WHERE outbox_id = ?1 ORDER BY id",
            &args![row_id],
            |r| Ok(Attempt { attempt: r.get(0)?, at: from_nanos(r.get(1)?), outcome: r.get(2)?, detail: r.get(3)? }),
        )
    }

    /// Makes failed effects pending again with a fresh attempt budget (their attempt history
    /// stays), and every pending effect due at `now` rather than after its backoff. Returns how
    /// many failed effects were revived.
    pub fn revive_failed(&mut self, tenant: &TenantId, now: Timestamp) -> Result<u64, StoreError> {
        let tx = self.conn.begin()?;
        let n = tx.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0 WHERE tenant_id = ?1 AND state = 'failed'",
            &args![tenant.as_str()],
        )?;
        tx.execute(
            // The first state term lets the claim's partial index serve this.
            "UPDATE outbox SET next_attempt_at = ?2
             WHERE tenant_id = ?1 AND state IN ('pending', 'in_flight') AND state = 'pending' AND next_attempt_at > ?2",
            &args![tenant.as_str(), nanos(now)],
        )?;
        tx.commit()?;
        Ok(n)
    }

    /// Records why the tenant's pending effects were not delivered (their channels could not be
    /// opened), so `tam outbox list` says it; they stay pending.
    pub fn note_waiting(&mut self, tenant: &TenantId, why: &str) -> Result<u64, StoreError> {
        self.conn.execute(
            // As in `revive_failed`: the first state term lets the claim's partial index serve this.
            "UPDATE outbox SET last_error = ?2
             WHERE tenant_id = ?1 AND state IN ('pending', 'in_flight') AND state = 'pending'",
            &args![tenant.as_str(), why],
        )
    }

    /// One outbox row by key.
    pub fn outbox_row(&self, tenant: &TenantId, key: &IdemKey) -> Result<Option<OutboxRow>, StoreError> {
        self.conn.row(
            &format!("SELECT {COLUMNS} FROM outbox WHERE tenant_id = ?1 AND idem_key = ?2"),
            &args![tenant.as_str(), key.as_str()],
            read_row,
        )
    }

    /// The drafts saved for `account`, oldest first: the communication history of its profile.
    /// The subject is known when the embedded mailbox kept the draft.
    pub fn communications(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<Communication>, StoreError> {
        // A scan's draft carries only a reference to its snapshot: it is an escalation outreach.
        let sql = match self.conn.dialect() {
            Dialect::Sqlite => {
                "SELECT o.delivered_at,
                    COALESCE(d.kind, json_extract(o.payload, '$.kind'),
                             CASE WHEN json_extract(o.payload, '$.scan') IS NOT NULL THEN 'escalation_outreach' END,
                             'draft'),
                    d.subject, o.receipt
               FROM outbox o LEFT JOIN drafts d ON d.tenant_id = o.tenant_id AND d.idem_key = o.idem_key
              WHERE o.tenant_id = ?1 AND o.account_id = ?2 AND o.effect = 'draft' AND o.state = 'delivered'
              ORDER BY o.delivered_at, o.id"
            }
            Dialect::Postgres => {
                "SELECT o.delivered_at,
                    COALESCE(d.kind, o.payload::jsonb ->> 'kind',
                             CASE WHEN o.payload::jsonb -> 'scan' IS NOT NULL THEN 'escalation_outreach' END,
                             'draft'),
                    d.subject, o.receipt
               FROM outbox o LEFT JOIN drafts d ON d.tenant_id = o.tenant_id AND d.idem_key = o.idem_key
              WHERE o.tenant_id = ?1 AND o.account_id = ?2 AND o.effect = 'draft' AND o.state = 'delivered'
              ORDER BY o.delivered_at, o.id"
            }
        };
        self.conn.rows(sql, &args![tenant.as_str(), account.as_str()], |r| {
            Ok(Communication {
                at: from_nanos(r.get::<Option<i64>>(0)?.unwrap_or_default()),
                kind: r.get(1)?,
                subject: r.get(2)?,
                receipt: r.get::<Option<String>>(3)?.unwrap_or_default(),
            })
        })
    }

    /// The latest escalation outreach to `account` delivered before the row `before`: a
    /// follow-up replies in its thread.
    pub fn earlier_outreach(
        &self,
        tenant: &TenantId,
        account: &str,
        before: i64,
    ) -> Result<Option<IdemKey>, StoreError> {
        // The scan's outreach keys, `draft:<account>:<as_of>`: `;` is the byte after `:`.
        let (from, to) = (format!("draft:{account}:"), format!("draft:{account};"));
        Ok(self
            .conn
            .row(
                "SELECT idem_key FROM outbox WHERE tenant_id = ?1 AND account_id = ?2 AND effect = 'draft'
                   AND idem_key >= ?3 AND idem_key < ?5 AND state = 'delivered' AND id < ?4
                 ORDER BY id DESC LIMIT 1",
                &args![tenant.as_str(), account, from, before, to],
                |r| r.get(0),
            )?
            .map(IdemKey::from_stored))
    }

    /// The receipt of a delivered effect, e.g. where a draft was saved.
    pub fn receipt(&self, tenant: &TenantId, key: &IdemKey) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT receipt FROM outbox WHERE tenant_id = ?1 AND idem_key = ?2 AND state = 'delivered'",
                &args![tenant.as_str(), key.as_str()],
                |r| r.get(0),
            )?
            .flatten())
    }
}
