//! What the dashboard's "Today" page reads: of the tenant's latest scan, the accounts a TAM
//! acts on (escalated by this scan, in an open episode, amber and declining), filtered and a
//! page at a time, and for each shown row its recent scores and waiting draft. Every read is
//! served by an index, so a page costs the same on a book of 200 accounts or 100,000.

use tam_core::scoring::Deduction;
use tam_core::{TenantId, Timestamp};

use crate::db::{Arg, Dialect, IntoArg, Value, args};
use crate::scan::{ScanSummary, corrupt};
use crate::{Store, StoreError, from_nanos, nanos};

/// The worklist's rows among one scan's snapshots. Written exactly as the partial index
/// `snapshots_worklist` is, so that SQLite uses it.
const WORKLIST: &str =
    "(s.trigger IS NOT NULL OR s.episode_opened_at IS NOT NULL OR (s.status = 'amber' AND s.trend = 'declining'))";

/// Where a worklist row stands, as the index `snapshots_worklist` orders it.
const BUCKET: &str = "(CASE WHEN s.trigger IS NOT NULL THEN 0 WHEN s.episode_opened_at IS NOT NULL THEN 1 ELSE 2 END)";

/// A tenant's scan: when, and its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanRow {
    /// The scan's instant.
    pub as_of: Timestamp,
    /// What it counted.
    pub summary: ScanSummary,
}

/// Which of the worklist to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkFilter {
    /// Accounts of this rep (their address, any case).
    pub rep: Option<String>,
    /// `red` or `amber`.
    pub status: Option<String>,
    /// Accounts a rule (`aged_p1_p2`, `open_volume`, `heartbeat_silence`) takes points from.
    pub rule: Option<String>,
    /// Only accounts in an open episode (`true`), or only those not (`false`).
    pub escalated: Option<bool>,
    /// The start of the account's name (any case) or id.
    pub search: Option<String>,
}

/// One account of the worklist.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkRow {
    /// Where it stands: 0 escalated by this scan (new or worse), 1 in an open episode, 2 amber
    /// and declining.
    pub bucket: u8,
    /// The account.
    pub account_id: String,
    /// Its name.
    pub name: String,
    /// Its rep's name.
    pub rep_name: String,
    /// Its rep's address.
    pub rep_email: String,
    /// Score at the scan.
    pub score: u8,
    /// `green`, `amber`, `red`.
    pub status: String,
    /// `improving`, `stable`, `declining`, `unknown`.
    pub trend: String,
    /// Why, largest first.
    pub deductions: Vec<Deduction>,
    /// Why this scan escalated it (`below_threshold`, `worsened`, ...).
    pub trigger: Option<String>,
    /// When its open episode opened.
    pub episode_opened_at: Option<Timestamp>,
    /// How its rep hears of it from this scan (`individual`, `digest`).
    pub delivery: Option<String>,
}

/// The draft waiting for an account: its key, where it was saved, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingDraft {
    /// The outbox key.
    pub idem_key: String,
    /// `pending`, `in_flight`, `delivered`, `failed`.
    pub state: String,
    /// When it was planned.
    pub created_at: Timestamp,
}

impl Store {
    /// The tenant's latest full scan.
    pub fn latest_scan(&self, tenant: &TenantId) -> Result<Option<ScanRow>, StoreError> {
        Ok(self.recent_scans(tenant, 1)?.pop())
    }

    /// The tenant's latest `limit` full scans, newest first.
    pub fn recent_scans(&self, tenant: &TenantId, limit: usize) -> Result<Vec<ScanRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.rows(
            "SELECT as_of, summary FROM scans WHERE tenant_id = ?1 ORDER BY as_of DESC LIMIT ?2",
            &args![tenant.as_str(), limit],
            |r| {
                let (at, summary): (i64, String) = (r.get(0)?, r.get(1)?);
                let summary = serde_json::from_str(&summary)
                    .map_err(|e| corrupt("scans", &format!("{tenant}@{at}"), "summary", e.to_string()))?;
                Ok(ScanRow { as_of: from_nanos(at), summary })
            },
        )
    }

    /// A page of the worklist of the scan at `as_of` (`offset` rows in, `limit` long), most
    /// urgent first, and how many rows the filter keeps in all.
    pub fn worklist(
        &self,
        tenant: &TenantId,
        as_of: Timestamp,
        filter: &WorkFilter,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<WorkRow>, u64), StoreError> {
        // Only the filters given are written into the statement, and the accounts are joined
        // only when a filter reads them: counting the unfiltered worklist reads its index alone.
        let dialect = self.conn.dialect();
        let mut conditions = format!("s.tenant_id = ?1 AND s.as_of = ?2 AND {WORKLIST}");
        let mut values: Vec<Value> = vec![Value::Text(tenant.as_str().to_owned()), Value::Int(nanos(as_of))];
        let mut add = |condition: &str, value: Value| {
            values.push(value);
            // `$` stands for this value's parameter.
            conditions.push_str(&condition.replace('$', &format!("?{}", values.len())));
        };
        if let Some(status) = &filter.status {
            add(" AND s.status = $", Value::Text(status.clone()));
        }
        if let Some(rule) = &filter.rule {
            let contains = match dialect {
                Dialect::Sqlite => " AND instr(s.deductions, $) > 0",
                Dialect::Postgres => " AND strpos(s.deductions, $) > 0",
            };
            add(contains, Value::Text(format!("\"rule\":\"{rule}\"")));
        }
        if let Some(escalated) = filter.escalated {
            add(" AND (s.episode_opened_at IS NOT NULL) = $", Value::Int(i64::from(escalated)));
        }
        let rep = filter.rep.as_ref().map(|r| r.trim().to_lowercase()).filter(|r| !r.is_empty());
        if let Some(rep) = &rep {
            add(" AND lower(a.rep_email) = $", Value::Text(rep.clone()));
        }
        // A search starts from the few accounts whose name (in any case: SQLite's NOCASE, ASCII
        // only) or id begins with what was typed, read from two indexes, then takes each one's
        // snapshot; the worklist is not walked. (A rep's page walks the worklist: an index of
        // accounts by rep would cost every import more than it saves the page.)
        let search = filter.search.as_ref().map(|s| s.trim().to_ascii_lowercase()).filter(|s| !s.is_empty());
        let found = search.map(|search| {
            values.push(Value::Text(search));
            let n = values.len();
            match dialect {
                Dialect::Sqlite => format!(
                    "WITH found (id) AS (
                        SELECT id FROM accounts WHERE tenant_id = ?1 AND id >= ?{n} AND id < ?{n} || char(1114111)
                        UNION
                        SELECT id FROM accounts WHERE tenant_id = ?1
                            AND name >= ?{n} COLLATE NOCASE AND name < ?{n} || char(1114111) COLLATE NOCASE)"
                ),
                // `accounts_by_name` holds `lower(name)`: ASCII only under the "C" collation,
                // as SQLite's NOCASE.
                Dialect::Postgres => format!(
                    "WITH found (id) AS (
                        SELECT id FROM accounts WHERE tenant_id = ?1 AND id >= ?{n} AND id < ?{n} || chr(1114111)
                        UNION
                        SELECT id FROM accounts WHERE tenant_id = ?1
                            AND lower(name) >= ?{n} AND lower(name) < ?{n} || chr(1114111))"
                ),
            }
        });
        let (with, snapshots, join) = match found {
            None => (
                String::new(),
                "snapshots s INDEXED BY snapshots_worklist",
                "JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id",
            ),
            // SQLite's CROSS JOIN keeps this order (the few found accounts first); PostgreSQL's
            // planner finds it from its statistics, and knows only the plain join.
            Some(with) if dialect == Dialect::Sqlite => (
                with,
                "found f CROSS JOIN accounts a ON a.tenant_id = ?1 AND a.id = f.id",
                "CROSS JOIN snapshots s ON s.tenant_id = a.tenant_id AND s.account_id = a.id AND s.as_of = ?2",
            ),
            Some(with) => (
                with,
                "found f JOIN accounts a ON a.tenant_id = ?1 AND a.id = f.id",
                "JOIN snapshots s ON s.tenant_id = a.tenant_id AND s.account_id = a.id AND s.as_of = ?2",
            ),
        };
        let searching = !with.is_empty();
        let counted_join = if rep.is_some() || searching { join } else { "" };
        let params: Vec<Arg<'_>> = values.iter().map(IntoArg::into_arg).collect();
        let total: i64 = self
            .conn
            .row(&format!("{with} SELECT COUNT(*) FROM {snapshots} {counted_join} WHERE {conditions}"), &params, |r| {
                r.get(0)
            })?
            .unwrap_or_default();
        let (limit_at, offset_at) = (values.len() + 1, values.len() + 2);
        values.push(Value::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        values.push(Value::Int(i64::try_from(offset).unwrap_or(i64::MAX)));
        let params: Vec<Arg<'_>> = values.iter().map(IntoArg::into_arg).collect();
        let sql = format!(
            "{with} SELECT {BUCKET}, s.account_id, a.name, a.rep_name, a.rep_email, s.score, s.status, s.trend, s.deductions,
                    s.trigger, s.episode_opened_at, s.delivery
             FROM {snapshots} {join} WHERE {conditions}
             ORDER BY {BUCKET}, s.score, s.account_id LIMIT ?{limit_at} OFFSET ?{offset_at}"
        );
        let out = self.conn.rows(&sql, &params, |r| {
            let account_id: String = r.get(1)?;
            let deductions: String = r.get(8)?;
            let mut deductions: Vec<Deduction> = serde_json::from_str(&deductions)
                .map_err(|e| corrupt("snapshots", &format!("{account_id}@{as_of}"), "deductions", e.to_string()))?;
            deductions.sort_by(|a, b| b.points.cmp(&a.points).then(a.rule.cmp(&b.rule)));
            Ok(WorkRow {
                bucket: r.get(0)?,
                name: r.get(2)?,
                rep_name: r.get(3)?,
                rep_email: r.get(4)?,
                score: r.get(5)?,
                status: r.get(6)?,
                trend: r.get(7)?,
                deductions,
                trigger: r.get(9)?,
                episode_opened_at: r.get::<Option<i64>>(10)?.map(from_nanos),
                delivery: r.get(11)?,
                account_id,
            })
        })?;
        Ok((out, u64::try_from(total).unwrap_or(0)))
    }

    /// The account's scores up to `as_of`, newest first, at most `limit`.
    pub fn recent_scores(
        &self,
        tenant: &TenantId,
        account: &str,
        as_of: Timestamp,
        limit: u64,
    ) -> Result<Vec<(Timestamp, u8)>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.rows(
            "SELECT as_of, score FROM snapshots WHERE tenant_id = ?1 AND account_id = ?2 AND as_of <= ?3
             ORDER BY as_of DESC LIMIT ?4",
            &args![tenant.as_str(), account, nanos(as_of), limit],
            |r| Ok((from_nanos(r.get(0)?), r.get(1)?)),
        )
    }

    /// The account's latest draft, when it was planned at or after `since` (the episode's start).
    pub fn waiting_draft(
        &self,
        tenant: &TenantId,
        account: &str,
        since: Timestamp,
    ) -> Result<Option<WaitingDraft>, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT idem_key, state, created_at FROM outbox
                 WHERE tenant_id = ?1 AND account_id = ?2 AND effect = 'draft'
                 ORDER BY id DESC LIMIT 1",
                &args![tenant.as_str(), account],
                |r| Ok(WaitingDraft { idem_key: r.get(0)?, state: r.get(1)?, created_at: from_nanos(r.get(2)?) }),
            )?
            .filter(|d| d.created_at >= since))
    }
}
