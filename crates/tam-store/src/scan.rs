//! What the scan reads (signals, the previous snapshot, trend baselines) and what it writes
//! (snapshots, episode changes, the scan summary), the writes in one transaction.

use tam_core::alerts::Delivery;
use tam_core::escalation::{AlertCause, Decision, Episode, Reason};
use tam_core::outbox::IdemKey;
use tam_core::scoring::{AccountSignals, Health, TicketSignal};
use tam_core::{
    AccountId, Email, FieldError, HealthStatus, Priority, TenantId, TicketId, TicketStatus, Timestamp, Trend,
};

use crate::db::{Batch, Conn, Dialect, Row, Tx, args};
use crate::{Store, StoreError, from_nanos, nanos};

/// One account's inputs to a scan.
#[derive(Debug, Clone)]
pub struct ScanInput {
    /// The account.
    pub account: AccountId,
    /// Its name.
    pub name: String,
    /// Its rep's name.
    pub rep_name: String,
    /// Its rep's email, as stored.
    pub rep_email: String,
    /// That address read, in lower case (one person, one alert budget, however a CRM
    /// capitalised them), or why it is not one: the account is still scored, but not alerted.
    pub rep: Result<Email, FieldError>,
    /// Its rep's chat space, where chat alerts go.
    pub rep_chat_space: Option<String>,
    /// Open tickets created at or before `as_of`, and the last heartbeat at or before `as_of`.
    pub signals: AccountSignals,
    /// The latest snapshot before `as_of`.
    pub previous: Option<PreviousSnapshot>,
    /// Earlier `(as_of, score)` snapshots inside the trend window.
    pub trend_candidates: Vec<(Timestamp, u8)>,
    /// The latest outreach draft of the account's open episode, when that episode was last
    /// alerted long enough ago for a cool-down reminder (which links it).
    pub episode_draft: Option<IdemKey>,
}

/// What a scan at one instant reads besides each account's own rows.
#[derive(Debug, Clone, Copy)]
pub struct ScanWindow {
    /// The inclusive range of earlier instants whose snapshots may serve as the trend baseline.
    pub trend: (Timestamp, Timestamp),
    /// An open episode last alerted at or before this instant may be due a cool-down reminder:
    /// its latest draft is read with the account.
    pub reminders_from: Timestamp,
}

/// The parts of the previous snapshot the next scan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousSnapshot {
    /// Its instant.
    pub as_of: Timestamp,
    /// Its score.
    pub score: u8,
    /// Its status.
    pub status: HealthStatus,
    /// The episode open after it.
    pub episode: Option<Episode>,
}

/// An account the scan could not read; the scan goes on without it.
#[derive(Debug, thiserror::Error)]
#[error("account {account}: {error}")]
pub struct AccountError {
    /// The account id as stored.
    pub account: String,
    /// Why it could not be read.
    pub error: StoreError,
}

/// What the scan decided for one account, ready to store.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotRecord<'a> {
    /// The account.
    pub account: &'a AccountId,
    /// Score, status and breakdown.
    pub health: &'a Health,
    /// Against about a week earlier.
    pub trend: Trend,
    /// Escalation decision.
    pub decision: Decision,
    /// How the rep hears about it from this scan.
    pub delivery: Option<Delivery>,
}

/// Counts kept per scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScanSummary {
    /// Accounts scored.
    pub accounts: u64,
    /// Green accounts.
    pub green: u64,
    /// Amber accounts.
    pub amber: u64,
    /// Red accounts.
    pub red: u64,
    /// Accounts escalated after the scan.
    pub escalated: u64,
    /// Escalation episodes opened by the scan.
    pub new_escalations: u64,
    /// Episodes closed because the account is green again.
    pub recovered: u64,
    /// Individual rep alerts planned.
    pub individual_alerts: u64,
    /// Accounts that went into digests.
    pub digest_accounts: u64,
    /// Digests planned (at most one per rep).
    pub digests: u64,
    /// Accounts that could not be scanned, or could not be alerted.
    pub failed: u64,
    /// Outbox rows planned (drafts, CRM updates, events, alerts, digests); a re-run's rows
    /// that already exist are not added again.
    pub effects: u64,
    /// For each rule (`aged_p1_p2`, ...), the accounts it took points from: what most of the
    /// book suffers from. `None` for a scan stored before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<std::collections::BTreeMap<String, u64>>,
    /// For each rep (lower-cased address) the scan alerted: accounts alerted one by one, and
    /// accounts put in the rep's digest. `None` for a scan stored before it was counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alerts_by_rep: Option<std::collections::BTreeMap<String, RepAlertCount>>,
}

/// One rep's alerts from a scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RepAlertCount {
    /// Accounts alerted one by one.
    pub individual: u64,
    /// Accounts in the rep's digest.
    pub digest: u64,
}

pub(crate) fn corrupt(table: &'static str, key: &str, field: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt { table, key: key.to_owned(), field, reason: reason.into() }
}

fn account_id(table: &'static str, raw: &str) -> Result<AccountId, StoreError> {
    AccountId::parse("account_id", raw).map_err(|e| corrupt(table, raw, "account_id", e.reason))
}

fn status(table: &'static str, key: &str, field: &'static str, raw: &str) -> Result<HealthStatus, StoreError> {
    HealthStatus::parse(raw).ok_or_else(|| corrupt(table, key, field, format!("unknown status {raw:?}")))
}

fn score(table: &'static str, key: &str, field: &'static str, raw: i64) -> Result<u8, StoreError> {
    u8::try_from(raw)
        .ok()
        .filter(|s| *s <= 100)
        .ok_or_else(|| corrupt(table, key, field, format!("{raw} is not 0..=100")))
}

impl Store {
    /// Reads every account of the tenant with its scan inputs at `as_of`, in account id order,
    /// calling `f` once per account, in one read transaction. An account whose stored rows are
    /// unreadable is passed as an error and the walk goes on.
    pub fn for_each_scan_input(
        &self,
        tenant: &TenantId,
        as_of: Timestamp,
        window: ScanWindow,
        f: impl FnMut(Result<ScanInput, AccountError>),
    ) -> Result<(), StoreError> {
        self.scan_inputs(tenant, None, as_of, window, f)
    }

    /// [`Store::for_each_scan_input`] for one account: a webhook re-scores only the account
    /// whose ticket changed, through the same reads as a whole scan.
    pub fn scan_input_of(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        as_of: Timestamp,
        window: ScanWindow,
        f: impl FnMut(Result<ScanInput, AccountError>),
    ) -> Result<(), StoreError> {
        self.scan_inputs(tenant, Some(account), as_of, window, f)
    }

    fn scan_inputs(
        &self,
        tenant: &TenantId,
        only: Option<&AccountId>,
        as_of: Timestamp,
        window: ScanWindow,
        mut f: impl FnMut(Result<ScanInput, AccountError>),
    ) -> Result<(), StoreError> {
        let t = tenant.as_str();
        let at = nanos(as_of);
        // One read transaction: every account sees the same state of the store, even while an
        // import commits beside the scan.
        let read = self.conn.begin_read()?;
        let has_heartbeats =
            read.exists("SELECT 1 FROM heartbeats WHERE tenant_id = ?1 AND at <= ?2 LIMIT 1", &args![t, at])?;
        let has_history =
            read.exists("SELECT 1 FROM snapshots WHERE tenant_id = ?1 AND as_of < ?2 LIMIT 1", &args![t, at])?;
        // The book is read a chunk of accounts at a time, in id order, each of the account's
        // other rows by one query per chunk over the chunk's id range: a few queries per
        // thousand accounts, each served by an index in id order.
        let mut after: Option<String> = None;
        loop {
            let chunk = match (only, &after) {
                (Some(_), Some(_)) => break,
                (Some(one), None) => read.rows(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 AND id = ?2"),
                    &args![t, one.as_str()],
                    AccountRowRaw::read,
                )?,
                (None, None) => read.rows(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 ORDER BY id LIMIT ?2"),
                    &args![t, CHUNK],
                    AccountRowRaw::read,
                )?,
                (None, Some(last)) => read.rows(
                    &format!(
                        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
                    ),
                    &args![t, last, CHUNK],
                    AccountRowRaw::read,
                )?,
            };
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else { break };
            let range = args![t, at, first.id, last.id];
            let mut tickets = Runs::new(read.rows(
                "SELECT account_id, id, priority, status, created_at FROM tickets
                 WHERE tenant_id = ?1 AND status IN ('open', 'pending') AND created_at <= ?2
                   AND account_id >= ?3 AND account_id <= ?4
                 ORDER BY account_id",
                &range,
                open_ticket,
            )?);
            let mut beats = Runs::new(if has_heartbeats {
                read.rows(
                    "SELECT a.id, (SELECT MAX(h.at) FROM heartbeats h
                                    WHERE h.tenant_id = a.tenant_id AND h.account_id = a.id AND h.at <= ?2)
                     FROM accounts a WHERE a.tenant_id = ?1 AND a.id >= ?3 AND a.id <= ?4 ORDER BY a.id",
                    &range,
                    |r| Ok((r.lossy_text(0)?, r.get::<Option<i64>>(1))),
                )?
            } else {
                Vec::new()
            });
            let (mut previous, mut baselines) = if has_history {
                // Each account's own rows, read by its key: PostgreSQL is told so (LATERAL), or
                // a planner whose statistics predate the last scan may join whole tables.
                let previous_sql = match read.dialect() {
                    Dialect::Sqlite => format!(
                        "SELECT {PREVIOUS_COLUMNS}, a.id FROM accounts a JOIN snapshots p
                           ON p.tenant_id = a.tenant_id AND p.account_id = a.id AND p.as_of = (
                              SELECT MAX(l.as_of) FROM snapshots l
                               WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id AND l.as_of < ?2)
                         WHERE a.tenant_id = ?1 AND a.id >= ?3 AND a.id <= ?4 ORDER BY a.id"
                    ),
                    Dialect::Postgres => format!(
                        "SELECT {PREVIOUS_COLUMNS}, a.id FROM accounts a CROSS JOIN LATERAL (
                             SELECT * FROM snapshots l
                              WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id AND l.as_of < ?2
                              ORDER BY l.as_of DESC LIMIT 1) p
                         WHERE a.tenant_id = ?1 AND a.id >= ?3 AND a.id <= ?4 ORDER BY a.id"
                    ),
                };
                let previous = read.rows(&previous_sql, &range, |r| {
                    // The snapshot's columns come first, as `read_previous` reads them.
                    let id = r.lossy_text(8)?;
                    let previous = read_previous(r, &id);
                    Ok((id, previous))
                })?;
                let baselines_sql = match read.dialect() {
                    Dialect::Sqlite => {
                        "SELECT a.id, s.as_of, s.score FROM accounts a JOIN snapshots s
                           ON s.tenant_id = a.tenant_id AND s.account_id = a.id AND s.as_of BETWEEN ?4 AND ?5
                         WHERE a.tenant_id = ?1 AND a.id >= ?2 AND a.id <= ?3 ORDER BY a.id"
                    }
                    Dialect::Postgres => {
                        "SELECT a.id, s.as_of, s.score FROM accounts a CROSS JOIN LATERAL (
                             SELECT l.as_of, l.score FROM snapshots l
                              WHERE l.tenant_id = a.tenant_id AND l.account_id = a.id AND l.as_of BETWEEN ?4 AND ?5) s
                         WHERE a.tenant_id = ?1 AND a.id >= ?2 AND a.id <= ?3 ORDER BY a.id"
                    }
                };
                let baselines = read.rows(
                    baselines_sql,
                    &args![t, first.id, last.id, nanos(window.trend.0), nanos(window.trend.1)],
                    |r| {
                        let id = r.lossy_text(0)?;
                        let point: Result<_, StoreError> =
                            (|| Ok((from_nanos(r.get(1)?), score("snapshots", &id, "score", r.get(2)?)?)))();
                        Ok((id, point))
                    },
                )?;
                (Runs::new(previous), Runs::new(baselines))
            } else {
                (Runs::new(Vec::new()), Runs::new(Vec::new()))
            };
            let (full, last_id) = (chunk.len() == CHUNK as usize, last.id.clone());
            for account in chunk {
                let id = account.id.as_str();
                let ticket_result: Result<Vec<TicketSignal>, StoreError> = tickets.take(id).into_iter().collect();
                let stored_beat = beats.take(id).into_iter().next();
                let prev = previous.take(id).into_iter().next();
                let candidates = baselines.take(id);
                let input = (|| -> Result<ScanInput, StoreError> {
                    let account_id = account_id("accounts", id)?;
                    let fields = account.fields?;
                    let crm_beat = fields.last_heartbeat.filter(|b| *b <= at);
                    let stored_beat = stored_beat.transpose()?.flatten();
                    let last_heartbeat = crm_beat.max(stored_beat).map(from_nanos);
                    let previous = prev.transpose()?;
                    let trend_candidates = candidates.into_iter().collect::<Result<Vec<_>, _>>()?;
                    let reminder_due =
                        previous.and_then(|p| p.episode).is_some_and(|e| e.last_alert_at <= window.reminders_from);
                    let episode_draft = if reminder_due {
                        // A scan's outreach drafts are keyed `draft:<account>:<as_of>`; tasks'
                        // drafts are keyed differently and never match. `;` follows `:`.
                        let (from, to) = (format!("draft:{id}:"), format!("draft:{id};"));
                        read.row(
                            "SELECT idem_key FROM outbox WHERE tenant_id = ?1 AND account_id = ?2 AND effect = 'draft'
                               AND idem_key >= ?3 AND idem_key < ?4
                             ORDER BY created_at DESC, id DESC LIMIT 1",
                            &args![t, id, from, to],
                            |r| r.get::<String>(0),
                        )?
                        .map(IdemKey::from_stored)
                    } else {
                        None
                    };
                    Ok(ScanInput {
                        account: account_id,
                        name: fields.name,
                        rep_name: fields.rep_name,
                        rep: Email::parse("rep_email", &fields.rep_email).map(|e| e.lowercased()),
                        rep_email: fields.rep_email,
                        rep_chat_space: fields.rep_chat_space,
                        signals: AccountSignals { tickets: ticket_result?, last_heartbeat },
                        previous,
                        trend_candidates,
                        episode_draft,
                    })
                })();
                f(input.map_err(|error| AccountError { account: account.id, error }));
            }
            if !full {
                break;
            }
            after = Some(last_id);
        }
        read.commit()
    }

    /// Stores one scan: a snapshot per account (replacing any for the same `as_of`), episode
    /// openings, updates and closings, the intended effects
    /// (outbox rows; a key seen before adds nothing) and the summary. One transaction: all of
    /// it or none of it.
    pub fn save_scan<'r>(
        &mut self,
        tenant: &TenantId,
        as_of: Timestamp,
        records: impl IntoIterator<Item = SnapshotRecord<'r>>,
        effects: &[crate::NewEffect],
        summary: Option<&ScanSummary>,
    ) -> Result<(), StoreError> {
        let mut scan = self.scan_writer(tenant, as_of)?;
        scan.snapshots(records)?;
        scan.effects(effects)?;
        scan.commit(summary)
    }

    /// Starts writing a scan of `tenant` at `as_of`, in one transaction that
    /// [`ScanWriter::commit`] ends: a scan can write its snapshots while it is still reading
    /// and scoring the rest of the book (on another connection), then its effects.
    pub fn scan_writer(&mut self, tenant: &TenantId, as_of: Timestamp) -> Result<ScanWriter<'_>, StoreError> {
        let at = nanos(as_of);
        let tx = self.conn.begin()?;
        let rerun =
            tx.exists("SELECT 1 FROM scans WHERE tenant_id = ?1 AND as_of = ?2", &args![tenant.as_str(), at])?;
        let batches = ScanBatches {
            snapshots: Batch::new(SNAPSHOT_COLUMNS, SNAPSHOT_UPSERT, SNAPSHOT_TYPES),
            episodes: Batch::new(EPISODE_COLUMNS, EPISODE_UPSERT, EPISODE_TYPES),
        };
        Ok(ScanWriter { tx, tenant: tenant.clone(), as_of, rerun, batches })
    }

    /// Another connection to the same database, for reading beside a write transaction of
    /// this one; `None` for an in-memory store, which no other connection can open.
    pub fn reader(&self) -> Result<Option<Store>, StoreError> {
        let Some(location) = self.location() else { return Ok(None) };
        let reader = Store::open_at(&location)?;
        if let Conn::Lite(c) = &reader.conn {
            // It walks the book once, in order: a small cache serves, and the writer keeps the memory.
            c.pragma_update(None, "cache_size", -8_192)?;
        }
        Ok(Some(reader))
    }
}

/// A scan being written: one transaction, rolled back unless committed.
pub struct ScanWriter<'a> {
    tx: Tx<'a>,
    tenant: TenantId,
    as_of: Timestamp,
    rerun: bool,
    /// Snapshots and episodes: on PostgreSQL held, and sent before a delivery is set and at
    /// the commit.
    batches: ScanBatches,
}

struct ScanBatches {
    snapshots: Batch<String>,
    episodes: Batch<(String, i64)>,
}

const SNAPSHOT_COLUMNS: &str = "INSERT INTO snapshots (tenant_id, account_id, as_of, score, status, trend, deductions,
    trigger, alert_cause, delivery, episode_opened_at, episode_reason, episode_last_alert_at,
    episode_last_alert_score, episode_last_alert_status)";
const SNAPSHOT_UPSERT: &str = "ON CONFLICT (tenant_id, account_id, as_of) DO UPDATE SET
    score = excluded.score, status = excluded.status, trend = excluded.trend,
    deductions = excluded.deductions, trigger = excluded.trigger, alert_cause = excluded.alert_cause,
    delivery = excluded.delivery, episode_opened_at = excluded.episode_opened_at,
    episode_reason = excluded.episode_reason, episode_last_alert_at = excluded.episode_last_alert_at,
    episode_last_alert_score = excluded.episode_last_alert_score,
    episode_last_alert_status = excluded.episode_last_alert_status";
const SNAPSHOT_TYPES: &[&str] = &[
    "text", "text", "bigint", "bigint", "text", "text", "text", "text", "text", "text", "bigint", "text", "bigint",
    "bigint", "text",
];
const EPISODE_TYPES: &[&str] = &["text", "text", "bigint", "text", "bigint", "bigint", "text"];
const EPISODE_COLUMNS: &str = "INSERT INTO episodes (tenant_id, account_id, opened_at, reason, last_alert_at,
    last_alert_score, last_alert_status)";
const EPISODE_UPSERT: &str = "ON CONFLICT (tenant_id, account_id, opened_at) DO UPDATE SET
    last_alert_at = excluded.last_alert_at, last_alert_score = excluded.last_alert_score,
    last_alert_status = excluded.last_alert_status, closed_at = NULL";

impl ScanWriter<'_> {
    /// Accounts' snapshots (replacing any of the same scan) and their episodes opened, updated
    /// or closed. An account's current health is its latest snapshot.
    pub fn snapshots<'r>(&mut self, records: impl IntoIterator<Item = SnapshotRecord<'r>>) -> Result<(), StoreError> {
        let (t, at) = (self.tenant.as_str(), nanos(self.as_of));
        for r in records {
            let a = r.account.as_str();
            let d = &r.decision;
            let ep = d.episode.as_ref();
            let deductions =
                serde_json::to_string(&r.health.deductions).expect("deductions are plain data and always serialise");
            let (score, status, trend) = (r.health.score, r.health.status.as_str(), r.trend.as_str());
            let (trigger, alert, delivery) =
                (d.trigger.map(Reason::as_str), d.alert.map(AlertCause::as_str), r.delivery.map(Delivery::as_str));
            let (opened, reason) = (ep.map(|e| nanos(e.opened_at)), ep.map(|e| e.reason.as_str()));
            let (alerted, alert_score, alert_status) = (
                ep.map(|e| nanos(e.last_alert_at)),
                ep.map(|e| e.last_alert_score),
                ep.map(|e| e.last_alert_status.as_str()),
            );
            let snapshot = args![
                t,
                a,
                at,
                score,
                status,
                trend,
                deductions,
                trigger,
                alert,
                delivery,
                opened,
                reason,
                alerted,
                alert_score,
                alert_status
            ];
            self.batches.snapshots.push(&self.tx, || a.to_owned(), &snapshot)?;
            if self.rerun && ep.is_none_or(|e| e.opened_at != self.as_of) {
                // A re-run that no longer opens an episode at this instant must not leave the
                // first run's episode behind.
                self.tx.execute(
                    "DELETE FROM episodes WHERE tenant_id = ?1 AND account_id = ?2 AND opened_at = ?3",
                    &args![t, a, at],
                )?;
            }
            if let Some(e) = ep {
                let (opened, reason, alerted) = (nanos(e.opened_at), e.reason.as_str(), nanos(e.last_alert_at));
                let (alert_score, alert_status) = (e.last_alert_score, e.last_alert_status.as_str());
                let episode = args![t, a, opened, reason, alerted, alert_score, alert_status];
                self.batches.episodes.push(&self.tx, || (a.to_owned(), opened), &episode)?;
            }
            if let Some(e) = &d.closed {
                self.tx.execute(
                    "UPDATE episodes SET closed_at = ?4 WHERE tenant_id = ?1 AND account_id = ?2 AND opened_at = ?3",
                    &args![t, a, nanos(e.opened_at), at],
                )?;
            }
        }
        Ok(())
    }

    /// How the rep hears of an account written earlier by [`ScanWriter::snapshots`]: the alert
    /// budget is planned over the whole book, so it may be known only after its snapshot.
    pub fn set_delivery(&mut self, account: &AccountId, delivery: Delivery) -> Result<(), StoreError> {
        self.send()?;
        self.tx.execute(
            "UPDATE snapshots SET delivery = ?4 WHERE tenant_id = ?1 AND account_id = ?2 AND as_of = ?3",
            &args![self.tenant.as_str(), account.as_str(), nanos(self.as_of), delivery.as_str()],
        )?;
        Ok(())
    }

    /// The scan's intended effects; a key seen before adds nothing.
    pub fn effects(&mut self, effects: &[crate::NewEffect]) -> Result<u64, StoreError> {
        crate::outbox::insert_effects(&self.tx, &self.tenant, self.as_of, effects)
    }

    /// Sends the rows batched so far.
    fn send(&mut self) -> Result<(), StoreError> {
        self.batches.snapshots.flush(&self.tx)?;
        self.batches.episodes.flush(&self.tx)?;
        Ok(())
    }

    /// Makes the scan visible, with its summary (none for a one-account re-score, which leaves
    /// the tenant's scan list alone).
    pub fn commit(mut self, summary: Option<&ScanSummary>) -> Result<(), StoreError> {
        self.send()?;
        if let Some(summary) = summary {
            let summary = serde_json::to_string(summary).expect("a struct of counters always serialises");
            self.tx.execute(
                "INSERT INTO scans (tenant_id, as_of, summary) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id, as_of) DO UPDATE SET summary = excluded.summary",
                &args![self.tenant.as_str(), nanos(self.as_of), summary],
            )?;
        }
        self.tx.commit()
    }
}

fn ticket_signal(id: &str, priority: i64, status: &str, created_at: i64) -> Result<TicketSignal, StoreError> {
    Ok(TicketSignal {
        id: TicketId::parse("id", id).map_err(|e| corrupt("tickets", id, "id", e.reason))?,
        priority: u8::try_from(priority)
            .ok()
            .and_then(Priority::from_level)
            .ok_or_else(|| corrupt("tickets", id, "priority", format!("{priority} is not 1..=4")))?,
        status: TicketStatus::parse(status).map_err(|e| corrupt("tickets", id, "status", e.reason))?,
        created_at: from_nanos(created_at),
    })
}

/// One open-ticket row: its account, and the ticket or why it does not read (charged to that
/// account, not the scan).
fn open_ticket(r: &Row<'_>) -> Result<(String, Result<TicketSignal, StoreError>), StoreError> {
    let account = r.lossy_text(0)?;
    let id = r.lossy_text(1)?;
    let signal = (|| {
        let key = id.as_str();
        let column = |field: &'static str, e: StoreError| corrupt("tickets", key, field, e.to_string());
        let priority: i64 = r.get(2).map_err(|e| column("priority", e))?;
        let status: String = r.get(3).map_err(|e| column("status", e))?;
        let created_at: i64 = r.get(4).map_err(|e| column("created_at", e))?;
        ticket_signal(key, priority, &status, created_at)
    })();
    Ok((account, signal))
}

/// How many accounts a scan reads at a time.
const CHUNK: i64 = 1000;

/// The columns [`AccountRowRaw::read`] reads, in its order.
const ACCOUNT_COLUMNS: &str = "id, name, rep_name, rep_email, last_heartbeat, rep_chat_space";

/// An account row of a scan: its id whatever its stored type, and the rest, or why it does not
/// read (charged to that account, not the scan).
struct AccountRowRaw {
    id: String,
    fields: Result<AccountFields, StoreError>,
}

struct AccountFields {
    name: String,
    rep_name: String,
    rep_email: String,
    last_heartbeat: Option<i64>,
    rep_chat_space: Option<String>,
}

impl AccountRowRaw {
    fn read(r: &Row<'_>) -> Result<AccountRowRaw, StoreError> {
        let fields = (|| {
            Ok(AccountFields {
                name: r.get(1)?,
                rep_name: r.get(2)?,
                rep_email: r.get(3)?,
                last_heartbeat: r.get(4)?,
                rep_chat_space: r.get(5)?,
            })
        })();
        Ok(AccountRowRaw { id: r.lossy_text(0)?, fields })
    }
}

/// Rows keyed by account id, in id order, taken account by account as the scan walks the
/// same order.
struct Runs<T> {
    rows: std::iter::Peekable<std::vec::IntoIter<(String, T)>>,
}

impl<T> Runs<T> {
    fn new(rows: Vec<(String, T)>) -> Runs<T> {
        Runs { rows: rows.into_iter().peekable() }
    }

    /// The rows of `account`; rows of ids before it (no such account) are skipped.
    fn take(&mut self, account: &str) -> Vec<T> {
        let mut out = Vec::new();
        while let Some((id, _)) = self.rows.peek() {
            match id.as_str().cmp(account) {
                std::cmp::Ordering::Less => {
                    self.rows.next();
                }
                std::cmp::Ordering::Equal => out.extend(self.rows.next().map(|(_, row)| row)),
                std::cmp::Ordering::Greater => break,
            }
        }
        out
    }
}

const PREVIOUS_COLUMNS: &str = "p.as_of, p.score, p.status, p.episode_opened_at, p.episode_reason,
    p.episode_last_alert_at, p.episode_last_alert_score, p.episode_last_alert_status";

fn read_previous(r: &Row<'_>, key: &str) -> Result<PreviousSnapshot, StoreError> {
    const T: &str = "snapshots";
    let status_raw: String = r.get(2)?;
    let episode = match r.get::<Option<i64>>(3)? {
        None => None,
        Some(opened_at) => {
            let reason: String = r.get(4)?;
            let last_status: String = r.get(7)?;
            Some(Episode {
                opened_at: from_nanos(opened_at),
                reason: Reason::parse(&reason)
                    .ok_or_else(|| corrupt(T, key, "episode_reason", format!("unknown reason {reason:?}")))?,
                last_alert_at: from_nanos(r.get(5)?),
                last_alert_score: score(T, key, "episode_last_alert_score", r.get(6)?)?,
                last_alert_status: status(T, key, "episode_last_alert_status", &last_status)?,
            })
        }
    };
    Ok(PreviousSnapshot {
        as_of: from_nanos(r.get(0)?),
        score: score(T, key, "score", r.get(1)?)?,
        status: status(T, key, "status", &status_raw)?,
        episode,
    })
}
