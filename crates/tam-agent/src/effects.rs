//! What an escalation should cause, as outbox rows: planned inside the scan, delivered later.
//!
//! An alerted account gets a CRM update and an email and chat alert if it is within its rep's
//! budget (otherwise a line in the rep's one digest). A new or worsened escalation also gets an
//! outreach draft and an `escalations` event; a cool-down reminder does not (nothing new
//! happened), and its alert links the episode's latest draft instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tam_core::alerts::Delivery;
use tam_core::comms::{AGENT_ID, Brief, CommKind, CrmUpdate, Event};
use tam_core::escalation::AlertCause;
use tam_core::outbox::{EffectKind, IdemKey};
use tam_core::scoring::Deduction;
use tam_core::{AccountId, Email, TenantId, Timestamp};
use tam_store::{NewEffect, Store, StoreError};

use crate::scan::AccountResult;

/// One account in an alert, with the key of its draft (the alert links to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertLine {
    /// Account id.
    pub account: AccountId,
    /// Customer name.
    pub name: String,
    /// Score.
    pub score: u8,
    /// Status.
    pub status: String,
    /// Why it escalated.
    pub reason: String,
    /// The deductions in a few words.
    pub why: String,
    /// The key of the account's outreach draft, if it has one.
    pub draft_key: Option<IdemKey>,
}

/// The payload of an email alert, chat alert or digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertPayload {
    /// The rep.
    pub rep: Email,
    /// The rep's name.
    pub rep_name: String,
    /// The rep's chat space.
    pub chat_space: Option<String>,
    /// The accounts, worst first.
    pub lines: Vec<AlertLine>,
}

fn summary(deductions: &[Deduction]) -> String {
    if deductions.is_empty() {
        return "no deductions".to_owned();
    }
    deductions.iter().map(|d| format!("{} -{}", d.rule.as_str(), d.points)).collect::<Vec<_>>().join(", ")
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("effect payloads are plain data and always serialise")
}

/// Plans the effects of a scan's alerted accounts. Reads the facts the drafts need (open
/// tickets with subjects, contacts) from the store; writes nothing.
pub fn plan(
    store: &Store,
    tenant: &TenantId,
    as_of: Timestamp,
    accounts: &[AccountResult],
) -> Result<Vec<NewEffect>, StoreError> {
    let mut effects = Vec::new();
    let mut digests: BTreeMap<String, AlertPayload> = BTreeMap::new();
    for a in accounts {
        let Some(delivery) = a.delivery else { continue };
        let Some(row) = store.account(tenant, &a.account)? else { continue };
        let Ok(rep) = Email::parse("rep_email", &a.rep_email.to_lowercase()) else { continue };
        let key = |kind: EffectKind| IdemKey::new(kind, a.account.as_str(), as_of);
        let reason = a.decision.reason().map_or("escalated", |r| r.as_str()).to_owned();
        let brief = Brief {
            kind: CommKind::EscalationOutreach,
            tenant: tenant.clone(),
            account: a.account.clone(),
            account_name: a.name.clone(),
            contacts: row.contacts.iter().filter_map(|c| Email::parse("contacts", c).ok()).collect(),
            rep_name: a.rep_name.clone(),
            rep_email: rep.clone(),
            as_of,
            score: a.health.score,
            status: a.health.status,
            trend: a.trend,
            deductions: a.health.deductions.clone(),
            open_tickets: store.open_ticket_facts(tenant, &a.account, as_of)?,
            escalation_reason: a.decision.reason(),
            alert_cause: a.decision.alert,
            release: None,
            reported: Vec::new(),
            roadmap: Vec::new(),
            period: None,
            profile: store.profile_facts(tenant, &a.account)?,
        };
        let reminder = a.decision.alert == Some(AlertCause::CoolDown);
        let draft_key =
            if reminder { store.latest_draft_key(tenant, &a.account)? } else { Some(key(EffectKind::Draft)) };
        let event = Event {
            event_id: format!("evt-{}", key(EffectKind::Event).digest()),
            event_type: "escalation".to_owned(),
            tenant_id: tenant.clone(),
            source_agent_id: AGENT_ID.to_owned(),
            call_chain: vec![AGENT_ID.to_owned()],
            priority: if a.health.status == tam_core::HealthStatus::Red { "high" } else { "medium" }.to_owned(),
            data: serde_json::json!({
                "account_id": a.account, "account_name": a.name, "score": a.health.score,
                "status": a.health.status, "trend": a.trend, "reason": reason,
                "alert_cause": a.decision.alert, "deductions": a.health.deductions,
                "rep_email": rep, "draft_key": draft_key,
            }),
            created_at: as_of,
        };
        let crm = CrmUpdate {
            tenant: tenant.clone(),
            account: a.account.clone(),
            score: a.health.score,
            status: a.health.status,
            scanned_at: as_of,
            escalated: a.decision.escalated(),
        };
        let line = AlertLine {
            account: a.account.clone(),
            name: a.name.clone(),
            score: a.health.score,
            status: a.health.status.as_str().to_owned(),
            reason,
            why: summary(&a.health.deductions),
            draft_key: draft_key.clone(),
        };
        let account = Some(a.account.clone());
        let mut push = |kind: EffectKind, payload: String| {
            effects.push(NewEffect { key: key(kind), kind, account: account.clone(), payload })
        };
        if !reminder {
            push(EffectKind::Draft, json(&brief));
            push(EffectKind::Event, json(&event));
        }
        push(EffectKind::Crm, json(&crm));
        let payload = AlertPayload {
            rep: rep.clone(),
            rep_name: a.rep_name.clone(),
            chat_space: row.rep_chat_space.clone(),
            lines: vec![line.clone()],
        };
        match delivery {
            Delivery::Individual => {
                push(EffectKind::EmailAlert, json(&payload));
                push(EffectKind::ChatAlert, json(&payload));
            }
            Delivery::Digest => {
                digests
                    .entry(rep.to_string())
                    .or_insert_with(|| AlertPayload { lines: Vec::new(), ..payload })
                    .lines
                    .push(line);
            }
        }
    }
    for (rep, mut payload) in digests {
        payload.lines.sort_by(|a, b| (a.score, &a.account).cmp(&(b.score, &b.account)));
        effects.push(NewEffect {
            key: IdemKey::new(EffectKind::Digest, &rep, as_of),
            kind: EffectKind::Digest,
            account: None,
            payload: json(&payload),
        });
    }
    Ok(effects)
}
