//! Reads for people: tenants, one account, its snapshot history.

use tam_core::alerts::Delivery;
use tam_core::comms::TicketFacts;
use tam_core::escalation::{AlertCause, Reason};
use tam_core::scoring::Deduction;
use tam_core::{AccountId, Email, HealthStatus, TenantId, Timestamp, Trend};

use crate::db::{Row, args};
use crate::{Store, StoreError, from_nanos};

/// A tenant and how many accounts it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// Tenant id.
    pub id: TenantId,
    /// Display name.
    pub name: String,
    /// Accounts stored.
    pub accounts: u64,
}

/// An account as stored, with its current health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRow {
    /// Tenant.
    pub tenant: TenantId,
    /// Account id.
    pub id: AccountId,
    /// Customer name.
    pub name: String,
    /// Rep name.
    pub rep_name: String,
    /// Rep email.
    pub rep_email: Email,
    /// Last heartbeat known.
    pub last_heartbeat: Option<Timestamp>,
    /// Open (open or pending) tickets now.
    pub open_tickets: u64,
    /// Customer contacts.
    pub contacts: Vec<Email>,
    /// Customer contacts copied on drafts.
    pub cc_contacts: Vec<Email>,
    /// Stored contact lists that did not read as addresses, as `(field, reason)`. Left out of
    /// `contacts` and `cc_contacts`, so whatever writes to the customers must refuse while this
    /// is not empty (see [`AccountRow::readable_contacts`]); the rest of the account reads as
    /// usual.
    pub unreadable: Vec<(&'static str, String)>,
    /// The rep's chat space.
    pub rep_chat_space: Option<String>,
}

/// A ticket open now, as `tam tickets` and the MCP tool list it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OpenTicket {
    /// Ticket id.
    pub id: String,
    /// Where it came from (`import`, `jira`, `kayako`, `notion`).
    pub source: String,
    /// Priority.
    pub priority: tam_core::Priority,
    /// `open` or `pending`.
    pub status: tam_core::TicketStatus,
    /// Subject, as the customer wrote it.
    pub subject: String,
    /// When it was opened.
    pub created_at: Timestamp,
    /// Its last change, when the source says.
    pub updated_at: Option<Timestamp>,
    /// The source's kind (`bug`, `feature_request`, ...), when it says.
    pub kind: Option<String>,
}

impl AccountRow {
    /// Fails, naming the row and the field, when a contact list did not read: a message to the
    /// customers would otherwise go to fewer people than the account lists.
    pub fn readable_contacts(&self) -> Result<(), StoreError> {
        match self.unreadable.first() {
            Some((field, reason)) => {
                Err(StoreError::Corrupt { table: "accounts", key: self.id.to_string(), field, reason: reason.clone() })
            }
            None => Ok(()),
        }
    }
}

/// One escalation episode of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpisodeRow {
    /// The scan that opened it.
    pub opened_at: Timestamp,
    /// Why it opened.
    pub reason: String,
    /// The scan that last alerted the rep.
    pub last_alert_at: Timestamp,
    /// The scan that closed it (the account was green again); `None` while open.
    pub closed_at: Option<Timestamp>,
}

/// One stored snapshot, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSnapshot {
    /// Scan instant.
    pub as_of: Timestamp,
    /// Score.
    pub score: u8,
    /// Status.
    pub status: HealthStatus,
    /// Trend.
    pub trend: Trend,
    /// The breakdown with evidence.
    pub deductions: Vec<Deduction>,
    /// Trigger that held at this scan.
    pub trigger: Option<Reason>,
    /// Why the rep was alerted, if they were.
    pub alert_cause: Option<AlertCause>,
    /// How they were alerted.
    pub delivery: Option<Delivery>,
    /// When the open episode started, if the account was escalated after this scan.
    pub episode_opened_at: Option<Timestamp>,
    /// Why that episode started.
    pub episode_reason: Option<Reason>,
}

fn bad(key: &str, field: &'static str, value: &str) -> StoreError {
    StoreError::Corrupt { table: "snapshots", key: key.to_owned(), field, reason: format!("unknown value {value:?}") }
}

fn parse_opt<T>(
    raw: Option<String>,
    key: &str,
    field: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    raw.map(|v| parse(&v).ok_or_else(|| bad(key, field, &v))).transpose()
}

impl Store {
    /// Every tenant, by id.
    pub fn tenants(&self) -> Result<Vec<TenantRow>, StoreError> {
        let rows = self.conn.rows(
            "SELECT t.id, t.name, (SELECT COUNT(*) FROM accounts a WHERE a.tenant_id = t.id) FROM tenants t ORDER BY t.id",
            &[],
            |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
        )?;
        rows.into_iter()
            .map(|(id, name, accounts)| {
                let id = TenantId::parse("tenant_id", &id).map_err(|e| StoreError::Corrupt {
                    table: "tenants",
                    key: id.clone(),
                    field: "id",
                    reason: e.reason,
                })?;
                Ok(TenantRow { id, name, accounts: accounts.unsigned_abs() })
            })
            .collect()
    }

    /// Every tenant's id, in order: [`Store::tenants`] without counting a book's accounts.
    pub fn tenant_ids(&self) -> Result<Vec<TenantId>, StoreError> {
        let ids = self.conn.rows("SELECT id FROM tenants ORDER BY id", &[], |r| r.get::<String>(0))?;
        ids.into_iter()
            .map(|id| {
                TenantId::parse("tenant_id", &id).map_err(|e| StoreError::Corrupt {
                    table: "tenants",
                    key: id.clone(),
                    field: "id",
                    reason: e.reason,
                })
            })
            .collect()
    }

    /// The tenants that have an account with this id.
    pub fn tenants_with_account(&self, account: &AccountId) -> Result<Vec<TenantId>, StoreError> {
        let ids = self.conn.rows(
            "SELECT tenant_id FROM accounts WHERE id = ?1 ORDER BY tenant_id",
            &args![account.as_str()],
            |r| r.get::<String>(0),
        )?;
        let mut out = Vec::new();
        for id in ids {
            out.push(TenantId::parse("tenant_id", &id).map_err(|e| StoreError::Corrupt {
                table: "accounts",
                key: id.clone(),
                field: "tenant_id",
                reason: e.reason,
            })?);
        }
        Ok(out)
    }

    /// One account of a tenant. A rep address that is not one is an error naming the row and
    /// the field; a contact list that does not read is named in `unreadable`, never left out
    /// quietly.
    pub fn account(&self, tenant: &TenantId, account: &AccountId) -> Result<Option<AccountRow>, StoreError> {
        let raw = self.conn.row(
            "SELECT name, rep_name, rep_email, last_heartbeat,
                        (SELECT COUNT(*) FROM tickets k WHERE k.tenant_id = a.tenant_id AND k.account_id = a.id
                            AND k.status IN ('open', 'pending')),
                        contacts, rep_chat_space, cc_contacts
                 FROM accounts a WHERE tenant_id = ?1 AND id = ?2",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                Ok((
                    (r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?),
                    (r.get::<Option<i64>>(3)?, r.get::<i64>(4)?),
                    (r.get::<String>(5)?, r.get::<Option<String>>(6)?, r.get::<String>(7)?),
                ))
            },
        )?;
        let Some(((name, rep_name, rep_email), (beat, open), (contacts, rep_chat_space, cc))) = raw else {
            return Ok(None);
        };
        let key = account.as_str();
        let corrupt = |field: &'static str, reason: String| StoreError::Corrupt {
            table: "accounts",
            key: key.to_owned(),
            field,
            reason,
        };
        let mut unreadable = Vec::new();
        let mut addresses = |field: &'static str, text: &str| -> Vec<Email> {
            let read = serde_json::from_str::<Vec<String>>(text)
                .map_err(|e| format!("not a JSON list of addresses: {e}"))
                .and_then(|list| list.iter().map(|a| Email::parse(field, a).map_err(|e| e.reason)).collect());
            read.unwrap_or_else(|reason| {
                unreadable.push((field, reason));
                Vec::new()
            })
        };
        let (contacts, cc_contacts) = (addresses("contacts", &contacts), addresses("cc_contacts", &cc));
        Ok(Some(AccountRow {
            tenant: tenant.clone(),
            id: account.clone(),
            name,
            rep_name,
            rep_email: Email::parse("rep_email", &rep_email).map_err(|e| corrupt("rep_email", e.reason))?,
            last_heartbeat: beat.map(from_nanos),
            open_tickets: open.unsigned_abs(),
            contacts,
            rep_chat_space,
            cc_contacts,
            unreadable,
        }))
    }

    /// The account's tickets open at `as_of`, most urgent and oldest first, as communications
    /// quote them.
    pub fn open_ticket_facts(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        as_of: Timestamp,
    ) -> Result<Vec<TicketFacts>, StoreError> {
        // Sorted here, not by ORDER BY: SQLite marks a statement with ORDER BY to be prepared
        // again whenever its bindings are cleared, which the statement cache does on each use,
        // and a scan runs this once per drafted account.
        let mut found: Vec<(String, i64, String, String, i64)> = self.conn.rows(
            "SELECT id, priority, status, subject, created_at FROM tickets
             WHERE tenant_id = ?1 AND account_id = ?2 AND status IN ('open', 'pending') AND created_at <= ?3",
            &args![tenant.as_str(), account.as_str(), crate::nanos(as_of)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        found.sort_by(|a, b| (a.1, a.4, &a.0).cmp(&(b.1, b.4, &b.0)));
        found.into_iter().map(|row| crate::profile::ticket_facts(row, as_of)).collect()
    }

    /// The account's tickets open now (open or pending), most urgent and oldest first, with
    /// their dates rather than their ages, so the answer depends on the store alone.
    pub fn open_tickets(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<OpenTicket>, StoreError> {
        let mut found = self.conn.rows(
            "SELECT id, source, priority, status, subject, created_at, updated_at, kind
             FROM tickets INDEXED BY tickets_open_by_account
             WHERE tenant_id = ?1 AND account_id = ?2 AND status IN ('open', 'pending')",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                let id: String = r.get(0)?;
                let level: i64 = r.get(2)?;
                let corrupt = |field: &'static str, reason: String| StoreError::Corrupt {
                    table: "tickets",
                    key: id.clone(),
                    field,
                    reason,
                };
                let priority = u8::try_from(level)
                    .ok()
                    .and_then(tam_core::Priority::from_level)
                    .ok_or_else(|| corrupt("priority", format!("{level} is not 1..=4")))?;
                let status: String = r.get(3)?;
                let status = tam_core::TicketStatus::parse(&status).map_err(|e| corrupt("status", e.reason))?;
                Ok(OpenTicket {
                    source: r.get(1)?,
                    priority,
                    status,
                    subject: r.get(4)?,
                    created_at: from_nanos(r.get(5)?),
                    updated_at: r.get::<Option<i64>>(6)?.map(from_nanos),
                    kind: r.get(7)?,
                    id,
                })
            },
        )?;
        found.sort_by(|a, b| (a.priority, a.created_at, &a.id).cmp(&(b.priority, b.created_at, &b.id)));
        Ok(found)
    }

    /// The account's escalation episodes, newest first.
    pub fn episodes(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<EpisodeRow>, StoreError> {
        self.conn.rows(
            "SELECT opened_at, reason, last_alert_at, closed_at FROM episodes
             WHERE tenant_id = ?1 AND account_id = ?2 ORDER BY opened_at DESC",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                Ok(EpisodeRow {
                    opened_at: from_nanos(r.get(0)?),
                    reason: r.get(1)?,
                    last_alert_at: from_nanos(r.get(2)?),
                    closed_at: r.get::<Option<i64>>(3)?.map(from_nanos),
                })
            },
        )
    }

    /// The account's snapshots, newest first, at most `limit`.
    pub fn snapshots(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        limit: usize,
    ) -> Result<Vec<StoredSnapshot>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.rows(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE tenant_id = ?1 AND account_id = ?2
                 ORDER BY as_of DESC LIMIT ?3"
            ),
            &args![tenant.as_str(), account.as_str(), limit],
            |r| read_snapshot(r, account.as_str()),
        )
    }

    /// The account's snapshot of the scan at `as_of`: what that scan decided, from which its
    /// effects are built when they are delivered.
    pub fn snapshot_at(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        as_of: Timestamp,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.conn.row(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE tenant_id = ?1 AND account_id = ?2 AND as_of = ?3"
            ),
            &args![tenant.as_str(), account.as_str(), crate::nanos(as_of)],
            |r| read_snapshot(r, account.as_str()),
        )
    }
}

/// The columns [`read_snapshot`] reads, in its order.
const SNAPSHOT_COLUMNS: &str =
    "as_of, score, status, trend, deductions, trigger, alert_cause, delivery, episode_opened_at, episode_reason";

fn read_snapshot(r: &Row<'_>, key: &str) -> Result<StoredSnapshot, StoreError> {
    let score: i64 = r.get(1)?;
    let status: String = r.get(2)?;
    let trend: String = r.get(3)?;
    let deductions: String = r.get(4)?;
    Ok(StoredSnapshot {
        as_of: from_nanos(r.get(0)?),
        score: u8::try_from(score).map_err(|_| bad(key, "score", &score.to_string()))?,
        status: HealthStatus::parse(&status).ok_or_else(|| bad(key, "status", &status))?,
        trend: Trend::parse(&trend).ok_or_else(|| bad(key, "trend", &trend))?,
        deductions: serde_json::from_str(&deductions).map_err(|e| StoreError::Corrupt {
            table: "snapshots",
            key: key.to_owned(),
            field: "deductions",
            reason: e.to_string(),
        })?,
        trigger: parse_opt(r.get(5)?, key, "trigger", Reason::parse)?,
        alert_cause: parse_opt(r.get(6)?, key, "alert_cause", AlertCause::parse)?,
        delivery: parse_opt(r.get(7)?, key, "delivery", Delivery::parse)?,
        episode_opened_at: r.get::<Option<i64>>(8)?.map(from_nanos),
        episode_reason: parse_opt(r.get(9)?, key, "episode_reason", Reason::parse)?,
    })
}
