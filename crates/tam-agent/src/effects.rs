//! What a scan should cause, as outbox rows: planned inside the scan, delivered later.
//!
//! Every account whose score, status or escalation flag changed since the previous scan gets a
//! CRM update (and only those: a connected CRM is rate-limited, and an unchanged page needs no
//! write). An alerted account gets an email and chat alert if it is within its rep's budget
//! (otherwise a line in the rep's one digest). A new or worsened escalation also gets an
//! outreach draft, an `escalations` event and a profile update that lists the draft; a
//! cool-down reminder does not (nothing new happened), and its alert links the episode's
//! latest draft instead.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use tam_core::alerts::Delivery;
use tam_core::comms::{AGENT_ID, Brief, CommKind, CrmUpdate, Event};
use tam_core::escalation::AlertCause;
use tam_core::outbox::{EffectKind, IdemKey, KeysAt};
use tam_core::scoring::Deduction;
use tam_core::{AccountId, Email, TenantId, Timestamp};
use tam_store::{AccountRow, NewEffect, Store, StoreError, StoredSnapshot};

use crate::scanned::AccountResult;

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
    /// The accounts, worst first (a digest lists its worst `digest_top_accounts`).
    pub lines: Vec<AlertLine>,
    /// A digest's accounts beyond those listed, counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rest: Option<DigestRest>,
}

/// The accounts of a digest beyond those it lists: a rep with two thousand escalated accounts
/// reads the worst twenty and how the rest break down, not two thousand lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRest {
    /// How many.
    pub accounts: u64,
    /// How many per status.
    pub by_status: BTreeMap<String, u64>,
    /// How many per main reason: the rule that took the most points (`none` without deductions).
    pub by_reason: BTreeMap<String, u64>,
}

/// The rule that took the most points (the first in rule order on a tie).
fn main_rule(deductions: &[Deduction]) -> Option<tam_core::scoring::Rule> {
    deductions.iter().max_by(|a, b| a.points.cmp(&b.points).then(b.rule.cmp(&a.rule))).map(|d| d.rule)
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

/// The snapshot a scan's CRM update, event and outreach draft about one account are built
/// from when delivered: that scan's snapshot of the account (its score, breakdown and
/// decision), with the account as stored. So a scan writes a few bytes per effect instead of
/// every fact a draft quotes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRef {
    /// The account.
    pub account: AccountId,
    /// The scan instant: the snapshot's key.
    pub as_of: Timestamp,
}

/// The payload of a scan's effect: `{"scan": {}}`, the snapshot of the row's account at the
/// instant the row was created (a scan creates its rows at its `as_of`). Rows written before
/// carry both, `{"scan": {"account", "as_of"}}`, and are read as such.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromScan {
    /// What the payload itself names, if anything.
    pub scan: Named,
}

/// The parts of a [`ScanRef`] a payload names; the row supplies the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Named {
    /// The account, if not the row's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// The scan instant, if not the row's creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Timestamp>,
}

impl FromScan {
    /// What a scan writes: everything comes from the row.
    pub const PAYLOAD: &str = r#"{"scan":{}}"#;

    /// The snapshot `row`'s payload refers to; `None` when neither names an account.
    pub fn of(&self, row: &tam_store::OutboxRow) -> Option<ScanRef> {
        let account = match &self.scan.account {
            Some(account) => account.clone(),
            None => AccountId::parse("account_id", row.account.as_deref()?).ok()?,
        };
        Some(ScanRef { account, as_of: self.scan.as_of.unwrap_or(row.created_at) })
    }
}

/// A payload of a draft, event or CRM effect: a reference to the scan that decided it (built
/// at delivery), or the whole content (tasks' drafts, and rows written before references).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Payload<T> {
    /// Built from the scan's snapshot when delivered.
    Scan(FromScan),
    /// Carried whole.
    Whole(T),
}

/// Plans the effects of a scan: a CRM update for every changed account, and the rest for every
/// account that alerts (new, worsened, reminder). Pure: what a cool-down reminder links (the
/// episode's latest draft) came with the scan's read. A rep's digest lists their worst
/// `digest_top` accounts and counts the others.
pub fn plan(tenant: &TenantId, as_of: Timestamp, accounts: &[AccountResult], digest_top: usize) -> Vec<NewEffect> {
    let keys = KeysAt::new(as_of);
    let mut effects = Vec::new();
    let mut digests: BTreeMap<String, (AlertPayload, Vec<Option<tam_core::scoring::Rule>>)> = BTreeMap::new();
    for a in accounts {
        if a.decision.alert.is_none() && !a.crm_changed {
            continue;
        }
        let key = |kind: EffectKind| keys.key(kind, a.account.as_str());
        let from_scan = || FromScan::PAYLOAD.to_owned();
        let mut push = |kind: EffectKind, payload: String| {
            effects.push(NewEffect { key: key(kind), kind, account: Some(a.account.clone()), payload })
        };
        if a.crm_changed {
            push(EffectKind::Crm, from_scan());
        }
        let Some(cause) = a.decision.alert else { continue };
        let reminder = cause == AlertCause::CoolDown;
        let reason = a.decision.reason().map_or("escalated", |r| r.as_str()).to_owned();
        let rep = a.rep.as_ref().ok().cloned();
        let draft_key = if reminder { a.episode_draft.clone() } else { Some(key(EffectKind::Draft)) };

        if !reminder {
            // The Sales Agent hears of news (a new or worse escalation), not of reminders.
            push(EffectKind::Event, from_scan());
        }
        // Drafts and alerts need the rep: a draft is saved in their mailbox, alerts go to them.
        let Some(rep) = rep else { continue };
        if !reminder {
            push(EffectKind::Draft, from_scan());
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
            chat_space: a.rep_chat_space.clone(),
            lines: vec![line],
            rest: None,
        };
        match delivery {
            Delivery::Individual => {
                push(EffectKind::EmailAlert, json(&payload));
                push(EffectKind::ChatAlert, json(&payload));
            }
            Delivery::Digest => {
                let (entry, rules) = digests
                    .entry(rep.to_string())
                    .or_insert_with(|| (AlertPayload { lines: Vec::new(), ..payload.clone() }, Vec::new()));
                entry.lines.extend(payload.lines);
                rules.push(main_rule(&a.health.deductions));
            }
        }
    }
    for (rep, (mut payload, rules)) in digests {
        let mut ranked: Vec<(AlertLine, Option<tam_core::scoring::Rule>)> =
            std::mem::take(&mut payload.lines).into_iter().zip(rules).collect();
        ranked.sort_by(|(a, _), (b, _)| (a.score, &a.account).cmp(&(b.score, &b.account)));
        let mut rest = DigestRest::default();
        for (line, rule) in ranked.split_off(digest_top.min(ranked.len())) {
            rest.accounts += 1;
            *rest.by_status.entry(line.status).or_default() += 1;
            *rest.by_reason.entry(rule.map_or("none", |r| r.as_str()).to_owned()).or_default() += 1;
        }
        payload.lines = ranked.into_iter().map(|(line, _)| line).collect();
        payload.rest = (rest.accounts > 0).then_some(rest);
        // The rep's space gets the digest as it gets alerts.
        let payload = json(&payload);
        for kind in [EffectKind::Digest, EffectKind::ChatDigest] {
            let key = keys.key(kind, &rep);
            effects.push(NewEffect { key, kind, account: None, payload: payload.clone() });
        }
    }
    effects
}

/// Why a scan's effect cannot be built: its snapshot or its account is gone (a re-run of the
/// scan no longer planned it, or the account was removed). Never worth retrying.
fn missing(what: &str, scan: &ScanRef) -> String {
    format!("{what} of account {:?} at {} is not stored", scan.account.as_str(), scan.as_of)
}

/// What a batch of effects reads of the store, each account's row and each snapshot read once
/// for the batch however many of its effects need them (a scan's CRM update, event, draft and
/// profile of one account all do).
pub struct Facts<'s> {
    store: &'s Store,
    snapshots: HashMap<(TenantId, AccountId, Timestamp), Option<StoredSnapshot>>,
    accounts: HashMap<(TenantId, AccountId), Option<AccountRow>>,
}

impl<'s> Facts<'s> {
    /// Nothing read yet.
    pub fn new(store: &'s Store) -> Facts<'s> {
        Facts { store, snapshots: HashMap::new(), accounts: HashMap::new() }
    }

    /// The store, for what is read once anyway.
    pub fn store(&self) -> &'s Store {
        self.store
    }

    /// The account's snapshot of the scan at `as_of`.
    pub fn snapshot(
        &mut self,
        tenant: &TenantId,
        account: &AccountId,
        as_of: Timestamp,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let store = self.store;
        read_once(&mut self.snapshots, (tenant.clone(), account.clone(), as_of), || {
            store.snapshot_at(tenant, account, as_of)
        })
    }

    /// The account as stored.
    pub fn account(&mut self, tenant: &TenantId, account: &AccountId) -> Result<Option<AccountRow>, StoreError> {
        let store = self.store;
        read_once(&mut self.accounts, (tenant.clone(), account.clone()), || store.account(tenant, account))
    }
}

/// What `read` finds under `key`, read from the store the first time only.
fn read_once<K: std::hash::Hash + Eq, V: Clone>(
    seen: &mut HashMap<K, Option<V>>,
    key: K,
    read: impl FnOnce() -> Result<Option<V>, StoreError>,
) -> Result<Option<V>, StoreError> {
    match seen.entry(key) {
        std::collections::hash_map::Entry::Occupied(found) => Ok(found.get().clone()),
        std::collections::hash_map::Entry::Vacant(slot) => Ok(slot.insert(read()?).clone()),
    }
}

/// The CRM update a scan decided: the health fields after it.
pub fn crm_update(
    facts: &mut Facts<'_>,
    tenant: &TenantId,
    scan: &ScanRef,
) -> Result<Result<CrmUpdate, String>, StoreError> {
    let Some(s) = facts.snapshot(tenant, &scan.account, scan.as_of)? else {
        return Ok(Err(missing("the snapshot", scan)));
    };
    Ok(Ok(CrmUpdate {
        tenant: tenant.clone(),
        account: scan.account.clone(),
        score: s.score,
        status: s.status,
        scanned_at: scan.as_of,
        escalated: s.episode_opened_at.is_some(),
    }))
}

/// The `escalations` event of a new or worsened escalation, in the SPEC shape.
pub fn escalation_event(
    facts: &mut Facts<'_>,
    tenant: &TenantId,
    scan: &ScanRef,
) -> Result<Result<Event, String>, StoreError> {
    let Some(s) = facts.snapshot(tenant, &scan.account, scan.as_of)? else {
        return Ok(Err(missing("the snapshot", scan)));
    };
    let Some(row) = facts.account(tenant, &scan.account)? else { return Ok(Err(missing("the account", scan))) };
    let key = |kind: EffectKind| IdemKey::new(kind, scan.account.as_str(), scan.as_of);
    let reason = s.trigger.or(s.episode_reason).map_or("escalated", |r| r.as_str());
    Ok(Ok(Event {
        event_id: format!("evt-{}", key(EffectKind::Event).digest()),
        event_type: "escalation".to_owned(),
        tenant_id: tenant.clone(),
        source_agent_id: AGENT_ID.to_owned(),
        call_chain: vec![AGENT_ID.to_owned()],
        priority: if s.status == tam_core::HealthStatus::Red { "high" } else { "medium" }.to_owned(),
        data: serde_json::json!({
            "account_id": scan.account, "account_name": row.name, "score": s.score,
            "status": s.status, "trend": s.trend, "reason": reason,
            "alert_cause": s.alert_cause, "deductions": s.deductions,
            "rep_email": row.rep_email, "draft_key": key(EffectKind::Draft),
        }),
        created_at: scan.as_of,
    }))
}

/// The brief of a scan's outreach draft: the account's health and decision at the scan, its
/// tickets open at the scan, its contacts and what its profile says.
pub fn outreach_brief(
    facts: &mut Facts<'_>,
    tenant: &TenantId,
    scan: &ScanRef,
) -> Result<Result<Brief, String>, StoreError> {
    let Some(s) = facts.snapshot(tenant, &scan.account, scan.as_of)? else {
        return Ok(Err(missing("the snapshot", scan)));
    };
    let Some(row) = facts.account(tenant, &scan.account)? else { return Ok(Err(missing("the account", scan))) };
    let alert_cause = s.alert_cause;
    let mut brief = brief_of(facts.store(), row, s, CommKind::EscalationOutreach, scan.as_of)?;
    brief.alert_cause = alert_cause;
    Ok(Ok(brief))
}

/// The facts every communication about one account quotes, for scans and tasks alike: the
/// account as stored, its health at `snapshot`, its tickets open at `tickets_at` and what its
/// profile says. What one kind adds (a release, a period, an alert's cause) is the caller's.
pub fn brief_of(
    store: &Store,
    row: AccountRow,
    snapshot: StoredSnapshot,
    kind: CommKind,
    tickets_at: Timestamp,
) -> Result<Brief, StoreError> {
    row.readable_contacts()?;
    Ok(Brief {
        kind,
        open_tickets: store.open_ticket_facts(&row.tenant, &row.id, tickets_at)?,
        profile: store.profile_facts(&row.tenant, &row.id)?,
        tenant: row.tenant,
        account: row.id,
        account_name: row.name,
        contacts: row.contacts,
        cc: row.cc_contacts,
        rep_name: row.rep_name,
        rep_email: row.rep_email.lowercased(),
        as_of: snapshot.as_of,
        score: snapshot.score,
        status: snapshot.status,
        trend: snapshot.trend,
        deductions: snapshot.deductions,
        escalation_reason: snapshot.trigger.or(snapshot.episode_reason),
        alert_cause: None,
        release: None,
        reported: Vec::new(),
        roadmap: Vec::new(),
        period: None,
    })
}
