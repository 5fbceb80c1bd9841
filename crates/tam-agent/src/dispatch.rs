//! The dispatcher: delivers due outbox rows through the ports, records every attempt, retries
//! with backoff and leaves what keeps failing visible as `failed`.
//!
//! Delivery is at least once; channels deduplicate by the effect's key, so a crash between a
//! delivery and its record repeats nothing the customer or the rep can see.

use serde::de::DeserializeOwned;
use tam_core::comms::{AlertKind, Brief, CrmUpdate, CustomerDraft, Event, RepAlert, Subject};
use tam_core::outbox::{EffectKind, Outcome, RetryPolicy};
use tam_core::ports::{ChatNotifier, CrmWriter, DraftMailbox, EventBus, RepAlerts, Writer};
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::{Finish, OutboxRow, Store, StoreError};
use tam_writer::alerts::AlertLine as TextLine;

use crate::effects::AlertPayload;

/// The channels a dispatcher delivers to.
pub struct Channels<'a> {
    /// Drafts.
    pub mailbox: &'a mut dyn DraftMailbox,
    /// Email alerts to reps.
    pub alerts: &'a mut dyn RepAlerts,
    /// Chat alerts to reps.
    pub chat: &'a mut dyn ChatNotifier,
    /// The event bus.
    pub events: &'a mut dyn EventBus,
    /// The CRM.
    pub crm: &'a mut dyn CrmWriter,
    /// Writes the drafts.
    pub writer: &'a dyn Writer,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Effects delivered.
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Effects given up on (now `failed`).
    pub failed: u64,
    /// Results refused because the lease had been lost to another worker.
    pub lost_leases: u64,
}

/// How long a claimed row stays ours: longer than any single delivery should take.
const LEASE: SignedDuration = SignedDuration::from_secs(300);
const CLAIM: usize = 256;

/// Delivers every effect of `tenant` due at `now`. Failed attempts are scheduled by `policy`
/// and not retried within this run.
pub fn dispatch(
    store: &mut Store,
    tenant: &TenantId,
    channels: &mut Channels<'_>,
    now: Timestamp,
    policy: &RetryPolicy,
    worker: &str,
) -> Result<DispatchReport, StoreError> {
    let mut report = DispatchReport::default();
    loop {
        let rows = store.claim_due(tenant, now, worker, LEASE, CLAIM)?;
        if rows.is_empty() {
            return Ok(report);
        }
        for row in rows {
            let outcome = deliver(store, &row, channels)?;
            let finish = match outcome {
                Outcome::Delivered { receipt } => {
                    report.delivered += 1;
                    Finish::Delivered { receipt }
                }
                Outcome::Retry { reason, after } => match policy.next_attempt(row.attempts, now, after) {
                    Some(next_attempt_at) => {
                        report.retried += 1;
                        Finish::Retry { error: reason, next_attempt_at }
                    }
                    None => {
                        report.failed += 1;
                        Finish::Failed { error: format!("gave up after {} attempts: {reason}", row.attempts) }
                    }
                },
                Outcome::Rejected { reason } => {
                    report.failed += 1;
                    Finish::Failed { error: format!("rejected: {reason}") }
                }
            };
            if !store.finish(&row, worker, now, &finish)? {
                report.lost_leases += 1;
            }
        }
    }
}

fn parse<T: DeserializeOwned>(row: &OutboxRow) -> Result<T, Outcome> {
    serde_json::from_str(&row.payload)
        .map_err(|e| Outcome::Rejected { reason: format!("outbox row {} has an unreadable payload: {e}", row.id) })
}

fn deliver(store: &Store, row: &OutboxRow, ch: &mut Channels<'_>) -> Result<Outcome, StoreError> {
    let outcome = match row.kind {
        EffectKind::Draft => match parse::<Brief>(row) {
            Ok(brief) => match ch.writer.write(&brief) {
                Ok(written) => ch.mailbox.create_draft(&CustomerDraft::new(&brief, written, row.key.clone())),
                Err(e) => Outcome::Rejected { reason: format!("writer: {e}") },
            },
            Err(o) => o,
        },
        EffectKind::Crm => match parse::<CrmUpdate>(row) {
            Ok(update) => ch.crm.update_health(&update),
            Err(o) => o,
        },
        EffectKind::Event => match parse::<Event>(row) {
            Ok(event) => ch.events.publish(&event),
            Err(o) => o,
        },
        EffectKind::EmailAlert | EffectKind::ChatAlert | EffectKind::Digest => match parse::<AlertPayload>(row) {
            Ok(payload) => match alert(store, row, &payload)? {
                Ok(alert) if row.kind == EffectKind::ChatAlert => ch.chat.notify(&alert),
                Ok(alert) => ch.alerts.send_alert(&alert),
                Err(o) => o,
            },
            Err(o) => o,
        },
    };
    Ok(outcome)
}

/// The alert text, linking each account's draft; waits while a draft is not saved yet.
fn alert(store: &Store, row: &OutboxRow, payload: &AlertPayload) -> Result<Result<RepAlert, Outcome>, StoreError> {
    let mut lines = Vec::with_capacity(payload.lines.len());
    for l in &payload.lines {
        let draft = match &l.draft_key {
            None => "(no outreach draft for this account)".to_owned(),
            Some(key) => match store.receipt(&row.tenant, key)? {
                Some(receipt) => receipt,
                None => {
                    return Ok(Err(Outcome::Retry { reason: format!("draft {key} is not saved yet"), after: None }));
                }
            },
        };
        lines.push(TextLine {
            account: l.account.to_string(),
            name: l.name.clone(),
            score: l.score,
            status: l.status.clone(),
            reason: l.reason.clone(),
            why: l.why.clone(),
            draft,
        });
    }
    let (kind, (subject, text)) = match (row.kind, lines.first()) {
        (_, None) => return Ok(Err(Outcome::Rejected { reason: format!("outbox row {} names no account", row.id) })),
        (EffectKind::Digest, _) => (AlertKind::Digest, tam_writer::digest_text(&lines, &payload.rep_name)),
        (_, Some(first)) => (AlertKind::Individual, tam_writer::individual_text(first, &payload.rep_name)),
    };
    Ok(Ok(RepAlert {
        tenant: row.tenant.clone(),
        rep: payload.rep.clone(),
        chat_space: payload.chat_space.clone(),
        kind,
        subject: Subject::new(&subject),
        text,
        key: row.key.clone(),
    }))
}
