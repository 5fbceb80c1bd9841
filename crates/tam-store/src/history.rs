//! What a backtest replays of a tenant: each account's rep, tickets with the span they were
//! open, heartbeats, and the escalations that really happened. Read in a few bulk queries: a
//! backtest reads the whole book once, then replays it in memory.

use std::collections::HashMap;

use tam_core::backtest::{AccountHistory, OpenSpan};
use tam_core::{Priority, TenantId, Timestamp};

use crate::db::args;
use crate::{Store, StoreError, from_nanos, nanos};

/// A tenant's history between two instants, as a backtest replays it.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Every account, by id.
    pub accounts: Vec<AccountHistory>,
    /// Escalations that happened, `(account index, at)`, by account then time.
    pub escalations: Vec<(usize, Timestamp)>,
}

/// An escalation as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EscalationRow {
    /// The account.
    pub account_id: String,
    /// When.
    pub at: Timestamp,
    /// Where it was recorded.
    pub source: String,
    /// What happened.
    pub note: Option<String>,
}

impl Store {
    /// The tenant's history as a replay over `days` (in order) sees it: the tickets open at
    /// some day, and for each day the last heartbeat by then (of each account's heartbeats
    /// between two days only the last is kept, so a book that beats every minute costs no
    /// more than one that beats daily), and every escalation. One read transaction: an import
    /// committing meanwhile is not half seen.
    ///
    /// A resolved or closed ticket without a resolution time counts as resolved at its last
    /// update, or, lacking that too, as never open (its age when it closed is unknown).
    pub fn history(&self, tenant: &TenantId, days: &[Timestamp]) -> Result<History, StoreError> {
        let (Some(&since), Some(&until)) = (days.first(), days.last()) else { return Ok(History::default()) };
        let _read = self.conn.begin_read()?;
        let t = tenant.as_str();
        let mut accounts: Vec<AccountHistory> = self.conn.rows(
            "SELECT id, rep_email, last_heartbeat FROM accounts WHERE tenant_id = ?1 ORDER BY id",
            &args![t],
            |r| {
                let last: Option<i64> = r.get(2)?;
                Ok(AccountHistory {
                    id: r.get(0)?,
                    rep: r.get(1)?,
                    // The imported last heartbeat is one more heartbeat, when it falls in reach.
                    heartbeats: last.map(from_nanos).filter(|at| *at <= until).into_iter().collect(),
                    tickets: Vec::new(),
                })
            },
        )?;
        let index: HashMap<String, usize> = accounts.iter().enumerate().map(|(i, a)| (a.id.clone(), i)).collect();
        let at = |id: &str| index.get(id).copied();

        struct Row {
            account: String,
            level: i64,
            status: String,
            created: i64,
            updated: Option<i64>,
            resolved: Option<i64>,
        }
        let tickets = self.conn.rows(
            "SELECT account_id, priority, status, created_at, updated_at, resolved_at FROM tickets
             WHERE tenant_id = ?1 AND created_at <= ?2",
            &args![t, nanos(until)],
            |r| {
                Ok(Row {
                    account: r.get(0)?,
                    level: r.get(1)?,
                    status: r.get(2)?,
                    created: r.get(3)?,
                    updated: r.get(4)?,
                    resolved: r.get(5)?,
                })
            },
        )?;
        for Row { account, level, status, created, updated, resolved } in tickets {
            let Some(i) = at(&account) else { continue };
            let Some(priority) = u8::try_from(level).ok().and_then(Priority::from_level) else {
                return Err(StoreError::Corrupt {
                    table: "tickets",
                    key: account,
                    field: "priority",
                    reason: format!("{level} is not 1..=4"),
                });
            };
            let open = matches!(status.as_str(), "open" | "pending");
            let resolved_at = match (open, resolved, updated) {
                (true, _, _) => None,
                (false, Some(r), _) | (false, None, Some(r)) => Some(from_nanos(r)),
                (false, None, None) => continue,
            };
            let span = OpenSpan { priority, created_at: from_nanos(created), resolved_at };
            if span.resolved_at.is_some_and(|r| r <= since) {
                continue;
            }
            accounts[i].tickets.push(span);
        }

        // Each heartbeat counts from the first day at or after it; of those counting from the
        // same day, the last.
        let mut current: Option<(usize, usize)> = None;
        self.conn.stream(
            "SELECT account_id, at FROM heartbeats WHERE tenant_id = ?1 AND at <= ?2 ORDER BY account_id, at",
            &args![t, nanos(until)],
            |r| {
                let account: String = r.get(0)?;
                let beat = from_nanos(r.get(1)?);
                let Some(i) = at(&account) else { return Ok(()) };
                let bucket = days.partition_point(|d| *d < beat);
                let beats = &mut accounts[i].heartbeats;
                match current {
                    Some((account, b)) if account == i && b == bucket && !beats.is_empty() => {
                        let last = beats.len() - 1;
                        beats[last] = beat;
                    }
                    _ => beats.push(beat),
                }
                current = Some((i, bucket));
                Ok(())
            },
        )?;

        let mut escalations = Vec::new();
        let happened: Vec<(String, i64)> =
            self.conn.rows("SELECT account_id, at FROM escalations WHERE tenant_id = ?1", &args![t], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        for (account, when) in happened {
            if let Some(i) = at(&account) {
                escalations.push((i, from_nanos(when)));
            }
        }
        for a in &mut accounts {
            a.tickets.sort_by_key(|s| s.created_at);
            a.heartbeats.sort();
            a.heartbeats.dedup();
        }
        escalations.sort();
        Ok(History { accounts, escalations })
    }

    /// The tenant's recorded escalations, oldest first.
    pub fn escalations(&self, tenant: &TenantId) -> Result<Vec<EscalationRow>, StoreError> {
        self.conn.rows(
            "SELECT account_id, at, source, note FROM escalations WHERE tenant_id = ?1 ORDER BY at, account_id",
            &args![tenant.as_str()],
            |r| {
                Ok(EscalationRow {
                    account_id: r.get(0)?,
                    at: from_nanos(r.get(1)?),
                    source: r.get(2)?,
                    note: r.get(3)?,
                })
            },
        )
    }
}
