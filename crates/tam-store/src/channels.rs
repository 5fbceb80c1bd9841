//! Tables of the embedded channels: drafts, the notification log, event streams, CRM fields.
//! Every insert is keyed by the effect's key (or the event id), so a repeated delivery is a
//! no-op that reports the first one.

use tam_core::comms::{CrmUpdate, Event, ModelCall};
use tam_core::{AccountId, TenantId, Timestamp};

use crate::db::{Arg, Dialect, args};
use crate::{Store, StoreError, from_nanos, nanos};

/// A draft as the embedded mailbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DraftRow {
    /// Tenant.
    pub tenant_id: String,
    /// The effect's key.
    pub idem_key: String,
    /// Account.
    pub account_id: String,
    /// Communication kind.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// Customer recipients.
    pub recipients: Vec<String>,
    /// The rep whose mailbox holds it.
    pub rep_email: String,
    /// The `.eml` file.
    pub path: String,
    /// Its Message-ID.
    pub message_id: String,
    /// `template` or a model.
    pub generator: String,
    /// `low`, `medium` or `high`.
    pub confidence: String,
    /// Why a model's draft was not used, when the template wrote it instead.
    pub note: Option<String>,
    /// When it was saved.
    pub created_at: Timestamp,
    /// Model calls made for it (0 for the templates), and their tokens.
    pub usage: DraftUsage,
}

/// What writing a draft cost.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DraftUsage {
    /// Calls to models, failed ones included.
    pub model_calls: u64,
    /// Input tokens over those calls.
    pub input_tokens: u64,
    /// Output tokens over those calls.
    pub output_tokens: u64,
}

/// A notification as the embedded log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// The effect's key.
    pub idem_key: String,
    /// `email` or `chat`.
    pub channel: String,
    /// The rep.
    pub rep_email: String,
    /// `individual` or `digest`.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
}

impl Store {
    /// Saves a draft row; returns the path of the existing draft if the key was seen before.
    pub fn insert_draft(&mut self, d: &DraftRow) -> Result<Option<String>, StoreError> {
        let existing = |store: &Store| -> Result<Option<String>, StoreError> {
            store.conn.row(
                "SELECT path FROM drafts WHERE tenant_id = ?1 AND idem_key = ?2",
                &args![d.tenant_id, d.idem_key],
                |r| r.get(0),
            )
        };
        let recipients = serde_json::to_string(&d.recipients).expect("a list of strings always serialises");
        let added = self.conn.execute(
            "INSERT INTO drafts (tenant_id, idem_key, account_id, kind, subject, recipients, rep_email, path, message_id,
                                 generator, created_at, confidence, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (tenant_id, idem_key) DO NOTHING",
            &args![
                d.tenant_id,
                d.idem_key,
                d.account_id,
                d.kind,
                d.subject,
                recipients,
                d.rep_email,
                d.path,
                d.message_id,
                d.generator,
                nanos(d.created_at),
                d.confidence,
                d.note
            ],
        )?;
        // Saved before (a retried delivery, or another replica): report that draft.
        if added == 0 { existing(self) } else { Ok(None) }
    }

    /// The tenant's drafts (or every tenant's), newest first.
    pub fn drafts(&self, tenant: Option<&TenantId>) -> Result<Vec<DraftRow>, StoreError> {
        match tenant {
            Some(tenant) => self.draft_rows("WHERE tenant_id = ?1", "", &args![tenant.as_str()]),
            None => self.draft_rows("", "", &[]),
        }
    }

    /// The tenant's newest drafts, at most `limit` (all for none): an account's only, of one
    /// kind only, when asked.
    pub fn drafts_where(
        &self,
        tenant: &TenantId,
        account: Option<&AccountId>,
        kind: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<DraftRow>, StoreError> {
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        match account {
            Some(account) => self.draft_rows(
                "INDEXED BY drafts_by_account WHERE tenant_id = ?1 AND account_id = ?2
                  AND (CAST(?3 AS TEXT) IS NULL OR kind = ?3)",
                "LIMIT ?4",
                &args![tenant.as_str(), account.as_str(), kind, limit],
            ),
            None => self.draft_rows(
                "WHERE tenant_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR kind = ?2)",
                "LIMIT ?3",
                &args![tenant.as_str(), kind, limit],
            ),
        }
    }

    fn draft_rows(&self, filter: &str, limit: &str, args: &[Arg<'_>]) -> Result<Vec<DraftRow>, StoreError> {
        let sql = format!(
            "SELECT tenant_id, idem_key, account_id, kind, subject, recipients, rep_email, path, message_id, generator,
                    created_at, confidence, note,
                    (SELECT COUNT(*) FROM model_calls m WHERE m.tenant_id = drafts.tenant_id AND m.idem_key = drafts.idem_key),
                    (SELECT CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) FROM model_calls m
                        WHERE m.tenant_id = drafts.tenant_id AND m.idem_key = drafts.idem_key),
                    (SELECT CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) FROM model_calls m
                        WHERE m.tenant_id = drafts.tenant_id AND m.idem_key = drafts.idem_key)
             FROM drafts {filter} ORDER BY created_at DESC, tenant_id, idem_key {limit}"
        );
        self.conn.rows(&sql, args, |r| {
            let recipients: String = r.get(5)?;
            Ok(DraftRow {
                tenant_id: r.get(0)?,
                idem_key: r.get(1)?,
                account_id: r.get(2)?,
                kind: r.get(3)?,
                subject: r.get(4)?,
                recipients: serde_json::from_str(&recipients).map_err(|e| StoreError::Corrupt {
                    table: "drafts",
                    key: r.get::<String>(1).unwrap_or_default(),
                    field: "recipients",
                    reason: e.to_string(),
                })?,
                rep_email: r.get(6)?,
                path: r.get(7)?,
                message_id: r.get(8)?,
                generator: r.get(9)?,
                created_at: from_nanos(r.get(10)?),
                confidence: r.get(11)?,
                note: r.get(12)?,
                usage: DraftUsage {
                    model_calls: r.get::<i64>(13)?.unsigned_abs(),
                    input_tokens: r.get::<i64>(14)?.unsigned_abs(),
                    output_tokens: r.get::<i64>(15)?.unsigned_abs(),
                },
            })
        })
    }

    /// The draft saved for an effect key, if any.
    pub fn draft(&self, tenant: &TenantId, key: &str) -> Result<Option<DraftRow>, StoreError> {
        Ok(self.draft_rows("WHERE tenant_id = ?1 AND idem_key = ?2", "", &args![tenant.as_str(), key])?.pop())
    }

    /// Where the draft saved for an effect key is, if any: one primary-key read, no usage sums.
    pub fn draft_path(&self, tenant: &TenantId, key: &str) -> Result<Option<String>, StoreError> {
        self.conn.row(
            "SELECT path FROM drafts WHERE tenant_id = ?1 AND idem_key = ?2",
            &args![tenant.as_str(), key],
            |r| r.get(0),
        )
    }

    /// Records the model calls made for a draft effect.
    pub fn record_model_calls(
        &mut self,
        tenant: &TenantId,
        key: &str,
        calls: &[ModelCall],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let tx = self.conn.begin()?;
        let count = |n: Option<u64>| n.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        for c in calls {
            tx.execute(
                "INSERT INTO model_calls (tenant_id, idem_key, at, provider, model, latency_ms, input_tokens, output_tokens, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                &args![
                    tenant.as_str(),
                    key,
                    nanos(at),
                    c.provider,
                    c.model,
                    i64::try_from(c.latency_ms).unwrap_or(i64::MAX),
                    count(c.input_tokens),
                    count(c.output_tokens),
                    c.outcome
                ],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The model calls made for a draft effect, in order.
    pub fn model_calls(&self, tenant: &TenantId, key: &str) -> Result<Vec<ModelCall>, StoreError> {
        self.conn.rows(
            "SELECT provider, model, latency_ms, input_tokens, output_tokens, outcome FROM model_calls
             WHERE tenant_id = ?1 AND idem_key = ?2 ORDER BY id",
            &args![tenant.as_str(), key],
            |r| {
                Ok(ModelCall {
                    provider: r.get(0)?,
                    model: r.get(1)?,
                    latency_ms: r.get::<i64>(2)?.unsigned_abs(),
                    input_tokens: r.get::<Option<i64>>(3)?.map(i64::unsigned_abs),
                    output_tokens: r.get::<Option<i64>>(4)?.map(i64::unsigned_abs),
                    outcome: r.get(5)?,
                })
            },
        )
    }

    /// Whether a notification with this key was logged.
    pub fn has_notification(&self, tenant: &TenantId, key: &str) -> Result<bool, StoreError> {
        self.conn
            .exists("SELECT 1 FROM notifications WHERE tenant_id = ?1 AND idem_key = ?2", &args![tenant.as_str(), key])
    }

    /// Logs a notification; false if the key was logged before.
    pub fn insert_notification(
        &mut self,
        tenant: &TenantId,
        n: &NotificationRow,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let added = self.conn.execute(
            "INSERT INTO notifications (tenant_id, idem_key, channel, rep_email, kind, subject, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant_id, idem_key) DO NOTHING",
            &args![tenant.as_str(), n.idem_key, n.channel, n.rep_email, n.kind, n.subject, n.body, nanos(at)],
        )?;
        Ok(added == 1)
    }

    /// The tenant's notifications, oldest first.
    pub fn notifications(&self, tenant: &TenantId) -> Result<Vec<NotificationRow>, StoreError> {
        self.conn.rows(
            "SELECT idem_key, channel, rep_email, kind, subject, body FROM notifications WHERE tenant_id = ?1
             ORDER BY created_at, idem_key",
            &args![tenant.as_str()],
            |r| {
                Ok(NotificationRow {
                    idem_key: r.get(0)?,
                    channel: r.get(1)?,
                    rep_email: r.get(2)?,
                    kind: r.get(3)?,
                    subject: r.get(4)?,
                    body: r.get(5)?,
                })
            },
        )
    }

    /// Appends an event to its tenant's stream; returns its position, or the position it
    /// already had when its `event_id` was appended before.
    pub fn append_event(&mut self, event: &Event) -> Result<i64, StoreError> {
        let tenant = event.tenant_id.as_str();
        let json = serde_json::to_string(event).expect("an event is plain data and always serialises");
        const APPEND: &str = "INSERT INTO events (tenant_id, stream, event_id, event) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, event_id) DO NOTHING RETURNING id";
        let values = args![tenant, event.stream(), event.event_id, json];
        let added = match self.conn.dialect() {
            // One writer at a time: positions commit in order.
            Dialect::Sqlite => self.conn.row(APPEND, &values, |r| r.get::<i64>(0))?,
            // Positions from a sequence are taken in one order and may commit in another: a
            // reader resuming after the later one would never see the earlier. A tenant's
            // appends take turns, so its positions commit in order.
            Dialect::Postgres => {
                let tx = self.conn.begin()?;
                tx.row("SELECT pg_advisory_xact_lock(hashtext(?1))", &args![tenant], |_| Ok(()))?;
                let added = tx.row(APPEND, &values, |r| r.get::<i64>(0))?;
                tx.commit()?;
                added
            }
        };
        match added {
            Some(id) => Ok(id),
            // Appended before (a retried delivery, or another replica): its position.
            None => self
                .conn
                .row(
                    "SELECT id FROM events WHERE tenant_id = ?1 AND event_id = ?2",
                    &args![tenant, event.event_id],
                    |r| r.get::<i64>(0),
                )?
                .ok_or_else(|| StoreError::Corrupt {
                    table: "events",
                    key: event.event_id.clone(),
                    field: "event_id",
                    reason: "neither appended nor found".to_owned(),
                }),
        }
    }

    /// Events of a tenant's stream after position `after`, oldest first: all of them, or the
    /// latest `last` when given.
    pub fn events(
        &self,
        tenant: &TenantId,
        stream: &str,
        after: i64,
        last: Option<usize>,
    ) -> Result<Vec<(i64, Event)>, StoreError> {
        let limit = last.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut out = self.conn.rows(
            "SELECT id, event FROM events WHERE tenant_id = ?1 AND stream = ?2 AND id > ?3 ORDER BY id DESC LIMIT ?4",
            &args![tenant.as_str(), stream, after, limit],
            |r| {
                let id: i64 = r.get(0)?;
                let json: String = r.get(1)?;
                let event = serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                    table: "events",
                    key: id.to_string(),
                    field: "event",
                    reason: e.to_string(),
                })?;
                Ok((id, event))
            },
        )?;
        out.reverse();
        Ok(out)
    }

    /// Writes the CRM health fields of an account (the embedded CRM is the accounts table).
    pub fn update_crm(&mut self, u: &CrmUpdate) -> Result<bool, StoreError> {
        Ok(self.update_crm_all(std::slice::from_ref(u))? == 1)
    }

    /// [`Store::update_crm`] for several accounts in one transaction: returns how many changed.
    pub fn update_crm_all(&mut self, updates: &[CrmUpdate]) -> Result<u64, StoreError> {
        let tx = self.conn.begin()?;
        // The embedded CRM's properties of the account: Health Score, Health Status, Last
        // Health Scan and the escalation flag, as a scan's CRM update delivers them. An older
        // scan's update arriving late changes nothing.
        let changed = match tx.dialect() {
            Dialect::Sqlite => {
                let mut changed = 0;
                for u in updates {
                    let (t, a, at, status) =
                        (u.tenant.as_str(), u.account.as_str(), nanos(u.scanned_at), u.status.as_str());
                    changed += tx.execute(
                        "UPDATE accounts SET escalated = ?3, crm_updated_at = ?4, last_scan = ?4, health_score = ?5,
                                health_status = ?6
                         WHERE tenant_id = ?1 AND id = ?2 AND (crm_updated_at IS NULL OR crm_updated_at <= ?4)",
                        &args![t, a, u.escalated, at, u.score, status],
                    )?;
                }
                changed
            }
            // One statement for the batch; an account twice keeps its latest scan's.
            Dialect::Postgres => {
                let mut latest: std::collections::BTreeMap<(&str, &str), &CrmUpdate> =
                    std::collections::BTreeMap::new();
                for u in updates {
                    let slot = latest.entry((u.tenant.as_str(), u.account.as_str())).or_insert(u);
                    if u.scanned_at >= slot.scanned_at {
                        *slot = u;
                    }
                }
                let mut changed = 0;
                let chunk: Vec<&CrmUpdate> = latest.into_values().collect();
                for part in chunk.chunks(500) {
                    let types = ["text", "text", "bigint", "bigint", "bigint", "text"];
                    let rows = crate::db::cast_placeholders(part.len(), &types);
                    let sql = format!(
                        "UPDATE accounts AS a SET escalated = v.escalated, crm_updated_at = v.at, last_scan = v.at,
                                health_score = v.score, health_status = v.status
                         FROM (VALUES {rows}) AS v (tenant_id, id, escalated, at, score, status)
                         WHERE a.tenant_id = v.tenant_id AND a.id = v.id
                           AND (a.crm_updated_at IS NULL OR a.crm_updated_at <= v.at)"
                    );
                    let mut args = Vec::with_capacity(part.len() * types.len());
                    for u in part {
                        let (at, status) = (nanos(u.scanned_at), u.status.as_str());
                        args.extend(args![u.tenant.as_str(), u.account.as_str(), u.escalated, at, u.score, status]);
                    }
                    changed += tx.execute_once(&sql, &args)?;
                }
                changed
            }
        };
        tx.commit()?;
        Ok(changed)
    }
}

impl Store {
    /// Where the last successful sync of `source` for `tenant` started, if there was one.
    pub fn sync_watermark(&self, tenant: &TenantId, source: &str) -> Result<Option<Timestamp>, StoreError> {
        Ok(self
            .conn
            .row(
                "SELECT watermark FROM sync_state WHERE tenant_id = ?1 AND source = ?2",
                &args![tenant.as_str(), source],
                |r| r.get::<i64>(0),
            )?
            .map(crate::from_nanos))
    }

    /// Records a successful sync of `source` that started at `at`.
    pub fn set_sync_watermark(&mut self, tenant: &TenantId, source: &str, at: Timestamp) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO sync_state (tenant_id, source, watermark) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id, source) DO UPDATE SET watermark = excluded.watermark",
            &args![tenant.as_str(), source, crate::nanos(at)],
        )?;
        Ok(())
    }

    /// Records a processed webhook delivery; false when it was recorded before.
    pub fn first_delivery(
        &mut self,
        tenant: &TenantId,
        source: &str,
        delivery_id: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let added = self.conn.execute(
            "INSERT INTO webhook_deliveries (tenant_id, source, delivery_id, received_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT DO NOTHING",
            &args![tenant.as_str(), source, delivery_id, crate::nanos(at)],
        )?;
        Ok(added == 1)
    }

    /// Whether a webhook delivery was processed before.
    pub fn delivery_seen(&self, tenant: &TenantId, source: &str, delivery_id: &str) -> Result<bool, StoreError> {
        self.conn.exists(
            "SELECT 1 FROM webhook_deliveries WHERE tenant_id = ?1 AND source = ?2 AND delivery_id = ?3",
            &args![tenant.as_str(), source, delivery_id],
        )
    }

    /// Gives tickets stored under an old id their new one (`(old, new)` pairs of a `source`);
    /// where the new id is stored already, the old row goes. Returns how many old rows were
    /// renamed or removed. A Kayako Classic ticket was once stored under its display id.
    pub fn rename_tickets(
        &mut self,
        tenant: &TenantId,
        source: &str,
        pairs: &[(String, String)],
    ) -> Result<u64, StoreError> {
        let tx = self.conn.begin()?;
        let mut changed = 0;
        let t = tenant.as_str();
        for (old, new) in pairs.iter().filter(|(old, new)| old != new) {
            let args = args![t, old, new, source];
            changed += tx.execute(
                "DELETE FROM tickets WHERE tenant_id = ?1 AND id = ?2 AND source = ?4
                   AND EXISTS (SELECT 1 FROM tickets WHERE tenant_id = ?1 AND id = ?3)",
                &args,
            )?;
            changed +=
                tx.execute("UPDATE tickets SET id = ?3 WHERE tenant_id = ?1 AND id = ?2 AND source = ?4", &args)?;
        }
        tx.commit()?;
        Ok(changed)
    }

    /// When a stored ticket was last updated in its source, if it is stored.
    pub fn ticket_updated_at(&self, tenant: &TenantId, id: &str) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<Option<i64>> = self.conn.row(
            "SELECT updated_at FROM tickets WHERE tenant_id = ?1 AND id = ?2",
            &args![tenant.as_str(), id],
            |r| r.get(0),
        )?;
        Ok(at.flatten().map(crate::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_crm_keeps_the_health_properties_and_only_moves_forward() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .conn
            .batch(
                "INSERT INTO tenants (id, name, created_at) VALUES ('t', 't', 0);
                 INSERT INTO accounts (tenant_id, id, name, rep_name, rep_email, contacts, check_in_interval_days)
                 VALUES ('t', 'a1', 'A', 'Rep', 'rep@v.example', '[]', 30);",
            )
            .unwrap();
        let update = |score: u8, status: tam_core::HealthStatus, at: i64, escalated: bool| CrmUpdate {
            tenant: TenantId::parse("t", "t").unwrap(),
            account: tam_core::AccountId::parse("a", "a1").unwrap(),
            score,
            status,
            scanned_at: crate::from_nanos(at),
            escalated,
        };
        let read = |store: &Store| -> (i64, String, i64, bool) {
            store
                .conn
                .row(
                    "SELECT health_score, health_status, last_scan, escalated FROM accounts WHERE id = 'a1'",
                    &[],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .unwrap()
                .unwrap()
        };
        assert_eq!(store.update_crm_all(&[update(20, tam_core::HealthStatus::Red, 200, true)]).unwrap(), 1);
        assert_eq!(read(&store), (20, "red".to_owned(), 200, true));
        // An older scan's update arriving late changes nothing.
        assert_eq!(store.update_crm_all(&[update(90, tam_core::HealthStatus::Green, 100, false)]).unwrap(), 0);
        assert_eq!(read(&store), (20, "red".to_owned(), 200, true));
    }
}
