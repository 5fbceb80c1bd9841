//! What a scan should cause, as outbox rows: planned inside the scan, delivered later.
//!
//! Every account whose score, status or escalation flag changed since the previous scan gets a
//! CRM update (and only those: a connected CRM is rate-limited, and an unchanged page needs no
//! write). An alerted account gets an email and chat alert if it is within its rep's budget
//! (otherwise a line in the rep's one digest). A new or worsened escalation also gets an
//! outreach draft, an `escalations` event and a profile update that lists the draft; a
//! cool-down reminder does not (nothing new happened), and its alert links the episode's
//! latest draft instead.

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
    /// Why the rep hears of it now: `new`, `worsened` or `cool_down`.
    #[serde(default)]
    pub cause: String,
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

/// Plans the effects of a scan: a CRM update for every changed account, and the rest for every
/// account that alerts (new, worsened, reminder). Reads the facts the drafts need (open tickets with
/// subjects, contacts) from the store; writes nothing.
pub fn plan(
    store: &Store,
    tenant: &TenantId,
    as_of: Timestamp,
    accounts: &[AccountResult],
) -> Result<Vec<NewEffect>, StoreError> {
    let mut effects = Vec::new();
    let mut digests: BTreeMap<String, AlertPayload> = BTreeMap::new();
    for a in accounts {
        if a.decision.alert.is_none() && !a.crm_changed {
            continue;
        }
        let key = |kind: EffectKind| IdemKey::new(kind, a.account.as_str(), as_of);
        let mut push = |kind: EffectKind, payload: String| {
            effects.push(NewEffect { key: key(kind), kind, account: Some(a.account.clone()), payload })
        };
        if a.crm_changed {
            let crm = CrmUpdate {
                tenant: tenant.clone(),
                account: a.account.clone(),
                score: a.health.score,
                status: a.health.status,
                scanned_at: as_of,
                escalated: a.decision.escalated(),
            };
            push(EffectKind::Crm, json(&crm));
        }
        let Some(cause) = a.decision.alert else { continue };
        let reminder = cause == AlertCause::CoolDown;
        let reason = a.decision.reason().map_or("escalated", |r| r.as_str()).to_owned();
        let rep = Email::parse("rep_email", &a.rep_email.to_lowercase()).ok();
        let draft_key =
            if reminder { store.latest_draft_key(tenant, &a.account)? } else { Some(key(EffectKind::Draft)) };

        if !reminder {
            // The Sales Agent hears of news (a new or worse escalation), not of reminders.
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
                    "alert_cause": cause, "deductions": a.health.deductions,
                    "rep_email": a.rep_email, "draft_key": draft_key,
                }),
                created_at: as_of,
            };
            push(EffectKind::Event, json(&event));
        }
        // Drafts and alerts need the rep: a draft is saved in their mailbox, alerts go to them.
        let (Some(rep), Some(row)) = (rep, store.account(tenant, &a.account)?) else { continue };
        if !reminder {
            let brief = Brief {
                kind: CommKind::EscalationOutreach,
                tenant: tenant.clone(),
                account: a.account.clone(),
                account_name: a.name.clone(),
                contacts: row.contacts.iter().filter_map(|c| Email::parse("contacts", c).ok()).collect(),
                cc: row.cc_contacts.iter().filter_map(|c| Email::parse("cc_contacts", c).ok()).collect(),
                rep_name: a.rep_name.clone(),
                rep_email: rep.clone(),
                as_of,
                score: a.health.score,
                status: a.health.status,
                trend: a.trend,
                deductions: a.health.deductions.clone(),
                open_tickets: store.open_ticket_facts(tenant, &a.account, as_of)?,
                escalation_reason: a.decision.reason(),
                alert_cause: Some(cause),
                release: None,
                reported: Vec::new(),
                roadmap: Vec::new(),
                period: None,
                profile: store.profile_facts(tenant, &a.account)?,
            };
            push(EffectKind::Draft, json(&brief));
            // The profile's communication history lists the draft once it is saved.
            let profile = crate::profile::ProfilePayload {
                tenant: tenant.clone(),
                account: a.account.clone(),
                after_draft: Some(key(EffectKind::Draft)),
            };
            push(EffectKind::Profile, json(&profile));
        }
        let Some(delivery) = a.delivery else { continue };
        let line = AlertLine {
            account: a.account.clone(),
            name: a.name.clone(),
            score: a.health.score,
            status: a.health.status.as_str().to_owned(),
            reason,
            cause: cause.as_str().to_owned(),
            why: summary(&a.health.deductions),
            draft_key,
        };
        let payload = AlertPayload {
            rep: rep.clone(),
            rep_name: a.rep_name.clone(),
            chat_space: row.rep_chat_space.clone(),
            lines: vec![line],
        };
        match delivery {
            Delivery::Individual => {
                push(EffectKind::EmailAlert, json(&payload));
                push(EffectKind::ChatAlert, json(&payload));
            }
            Delivery::Digest => {
                let entry = digests
                    .entry(rep.to_string())
                    .or_insert_with(|| AlertPayload { lines: Vec::new(), ..payload.clone() });
                entry.lines.extend(payload.lines);
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
