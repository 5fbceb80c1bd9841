//! Relationship profiles (SPEC 7): merging facts, deriving feature adoption from heartbeats
//! and tickets, and surfacing co-development opportunities onto the `opportunities` stream.

use serde_json::{Value, json};
use tam_core::comms::{AGENT_ID, Event, PROFILE_SECTIONS, ProfileDocument, ProfileSection};
use tam_core::outbox::{EffectKind, IdemKey};
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::{Merged, NewEffect, NewFact, NewOpportunity, Store, StoreError};

/// Words in ticket subjects that show a feature in use, and the feature.
const FEATURE_WORDS: &[(&str, &str)] = &[
    ("sso", "sso"),
    ("saml", "sso"),
    ("login", "sso"),
    ("webhook", "webhooks"),
    ("export", "exports"),
    ("import", "imports"),
    ("report", "reporting"),
    ("dashboard", "dashboards"),
    ("search", "search"),
    ("oauth", "oauth"),
    ("api", "api"),
    ("scim", "scim"),
    ("audit", "audit_log"),
    ("sandbox", "sandbox"),
];

/// Counts of a merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MergeCounts {
    /// New facts.
    pub added: u64,
    /// Facts with a new value (old value kept in the history).
    pub changed: u64,
    /// Facts already known.
    pub unchanged: u64,
}

impl MergeCounts {
    /// Counts one merge.
    pub fn count(&mut self, m: Merged) {
        match m {
            Merged::Added => self.added += 1,
            Merged::Changed => self.changed += 1,
            Merged::Unchanged => self.unchanged += 1,
        }
    }
}

/// Derives feature adoption: heartbeats mean the API is in use; ticket subjects name features.
pub fn derive_adoption(
    store: &mut Store,
    tenant: &TenantId,
    account: &AccountId,
    now: Timestamp,
) -> Result<MergeCounts, StoreError> {
    let mut counts = MergeCounts::default();
    let (beats, calls) = store.heartbeat_totals(tenant, account, now)?;
    let monitored = store.account(tenant, account)?.is_some_and(|a| a.last_heartbeat.is_some());
    if beats > 0 || monitored {
        let value = json!({"feature": "api", "in_use": true, "source": "heartbeat", "api_call_count": calls});
        counts.count(store.merge_fact(
            tenant,
            account,
            &NewFact { section: "features", key: "api", value: &value, source: "heartbeat" },
            now,
        )?);
    }
    for (id, subject) in store.ticket_subjects(tenant, account)? {
        let words: Vec<String> =
            subject.to_lowercase().split(|c: char| !c.is_alphanumeric()).map(str::to_owned).collect();
        let mut seen = Vec::new();
        for &(word, feature) in FEATURE_WORDS {
            if words.iter().any(|w| w == word || w.strip_suffix('s') == Some(word)) && !seen.contains(&feature) {
                seen.push(feature);
                let source = format!("ticket:{id}");
                let value = json!({"feature": feature, "in_use": true, "source": source});
                let fact = NewFact { section: "features", key: feature, value: &value, source: &source };
                // The first ticket that shows a feature is its evidence; later ones change nothing.
                if !store.facts(tenant, account)?.iter().any(|f| f.section == "features" && f.key == feature) {
                    counts.count(store.merge_fact(tenant, account, &fact, now)?);
                }
            }
        }
    }
    Ok(counts)
}

/// The title of an opportunity from a feature-request subject.
fn opportunity_title(subject: &str) -> String {
    let trimmed = subject.trim();
    let lower = trimmed.to_lowercase();
    for prefix in ["feature request:", "feature request -", "request:"] {
        if let Some(rest) = lower.starts_with(prefix).then(|| trimmed.get(prefix.len()..)).flatten() {
            return rest.trim().to_owned();
        }
    }
    trimmed.to_owned()
}

/// The `opportunities` event of a newly surfaced opportunity, as an outbox effect.
pub fn opportunity_effect(
    tenant: &TenantId,
    account: &AccountId,
    title: &str,
    description: &str,
    source: &str,
    at: Timestamp,
) -> NewEffect {
    let subject = format!("opportunity/{}/{}", account, title.to_lowercase());
    let key = IdemKey::new(EffectKind::Event, &subject, at);
    let event = Event {
        event_id: format!("evt-{}", key.digest()),
        event_type: "opportunity".to_owned(),
        tenant_id: tenant.clone(),
        source_agent_id: AGENT_ID.to_owned(),
        call_chain: vec![AGENT_ID.to_owned()],
        priority: "medium".to_owned(),
        data: json!({"account_id": account, "title": title, "description": description, "status": "surfaced", "source": source}),
        created_at: at,
    };
    NewEffect {
        key,
        kind: EffectKind::Event,
        account: Some(account.clone()),
        payload: serde_json::to_string(&event).expect("an event is plain data and always serialises"),
    }
}

/// Surfaces an opportunity for every open feature-request ticket of the tenant (or of one
/// account) not surfaced before, each with its event queued in the same transaction. Returns
/// the new ones.
pub fn surface_opportunities(
    store: &mut Store,
    tenant: &TenantId,
    only: Option<&AccountId>,
    now: Timestamp,
) -> Result<Vec<(AccountId, String)>, StoreError> {
    let mut surfaced = Vec::new();
    for (account, ticket, subject) in store.feature_requests(tenant, now)? {
        let Ok(account) = AccountId::parse("account_id", &account) else { continue };
        if only.is_some_and(|o| *o != account) {
            continue;
        }
        let title = opportunity_title(&subject);
        let description = format!("Requested in ticket {ticket}: {subject}");
        let source = format!("ticket:{ticket}");
        let opportunity = NewOpportunity { title: &title, description: &description, source: &source };
        let announce = opportunity_effect(tenant, &account, &title, &description, &source, now);
        if store.surface_opportunity(tenant, &account, &opportunity, now, &announce)? {
            surfaced.push((account, title));
        }
    }
    Ok(surfaced)
}

/// Fields read first in a fact's line; the rest follow by name.
const FIELD_ORDER: &[&str] = &["role", "maturity", "active", "in_use", "version", "since", "source", "notes"];

/// A fact as one line: its name, then its other fields (`Li Wei: role: CTO | maturity: high`).
fn fact_line(key: &str, value: &Value) -> String {
    let mut fields: Vec<(&String, &Value)> = match value {
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "name" | "feature" | "system"))
            .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
            .collect(),
        _ => Vec::new(),
    };
    fields.sort_by_key(|(k, _)| (FIELD_ORDER.iter().position(|f| f == k).unwrap_or(FIELD_ORDER.len()), k.to_owned()));
    let show = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    let mut parts: Vec<String> = fields.iter().map(|(k, v)| format!("{}: {}", k.replace('_', " "), show(v))).collect();
    if !value.is_object() && !value.is_null() {
        parts.push(show(value));
    }
    let name =
        value.get("name").or(value.get("feature")).or(value.get("system")).and_then(Value::as_str).unwrap_or(key);
    if parts.is_empty() { name.to_owned() } else { format!("{name}: {}", parts.join(" | ")) }
}

/// The account's profile as a document with the seven sections: facts, the drafts saved for
/// it, its latest health and its opportunities. `None` when the account is unknown.
pub fn document(store: &Store, tenant: &TenantId, account: &AccountId) -> Result<Option<ProfileDocument>, StoreError> {
    let Some(row) = store.account(tenant, account)? else { return Ok(None) };
    document_of(store, tenant, row).map(Some)
}

/// [`document`] of an account already read.
pub fn document_of(
    store: &Store,
    tenant: &TenantId,
    row: tam_store::AccountRow,
) -> Result<ProfileDocument, StoreError> {
    let account = &row.id;
    let facts = store.facts(tenant, account)?;
    let section = |name: &str| -> Vec<String> {
        facts.iter().filter(|f| f.section == name).map(|f| fact_line(&f.key, &f.value)).collect()
    };
    let communications = store
        .communications(tenant, account)?
        .into_iter()
        .map(|c| {
            let date = c.at.strftime("%Y-%m-%d");
            let kind = c.kind.replace('_', " ");
            match c.subject {
                Some(subject) => format!("{date} | {kind} | {subject} | {}", c.receipt),
                None => format!("{date} | {kind} | {}", c.receipt),
            }
        })
        .collect();
    let health = match store.snapshots(tenant, account, 1)?.into_iter().next() {
        Some(s) => vec![
            format!("Current Score: {} | Status: {}", s.score, s.status),
            format!("Last Scan: {} | Trend: {}", s.as_of, s.trend),
        ],
        None => vec!["Not scanned yet".to_owned()],
    };
    let opportunities = store
        .opportunities(tenant, account)?
        .into_iter()
        .map(|o| format!("{}: {} | Status: {}", o.title, o.description, o.status.replace('_', "-")))
        .collect();
    let lines = [
        section("stakeholders"),
        section("integrations"),
        section("features"),
        section("environment"),
        communications,
        health,
        opportunities,
    ];
    let sections = PROFILE_SECTIONS
        .iter()
        .zip(lines)
        .map(|(title, lines)| ProfileSection { title: (*title).to_owned(), lines })
        .collect();
    Ok(ProfileDocument { tenant: tenant.clone(), account: account.clone(), account_name: row.name.clone(), sections })
}

/// What a profile effect carries: the document is built when it is delivered, so it holds
/// everything saved until then (the draft it waits for included).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProfilePayload {
    /// Tenant.
    pub tenant: TenantId,
    /// Account.
    pub account: AccountId,
    /// A draft the profile should list: it is published after that draft is saved.
    pub after_draft: Option<IdemKey>,
}

/// The effect that publishes `account`'s profile once the draft `draft` is saved, so its
/// communication history lists it. One per draft: a retried task adds none.
pub fn profile_after_draft(tenant: &TenantId, account: &AccountId, draft: &IdemKey) -> NewEffect {
    let payload = ProfilePayload { tenant: tenant.clone(), account: account.clone(), after_draft: Some(draft.clone()) };
    NewEffect {
        key: IdemKey::from_stored(format!("profile:{account}/after:{draft}")),
        kind: EffectKind::Profile,
        account: Some(account.clone()),
        payload: serde_json::to_string(&payload).expect("a profile payload is plain data"),
    }
}

/// The effect that publishes `account`'s profile after `change` (what the task merged) at
/// `at`. Its key names both: two different updates in one second publish twice, and neither
/// is absorbed by a scan's profile effect of that second; the same update repeated is not.
pub fn profile_effect(tenant: &TenantId, account: &AccountId, at: Timestamp, change: &str) -> NewEffect {
    let payload = ProfilePayload { tenant: tenant.clone(), account: account.clone(), after_draft: None };
    NewEffect {
        key: IdemKey::from_stored(format!(
            "profile:{account}/update:{}:{}",
            at.as_nanosecond(),
            IdemKey::from_stored(change.to_owned()).digest()
        )),
        kind: EffectKind::Profile,
        account: Some(account.clone()),
        payload: serde_json::to_string(&payload).expect("a profile payload is plain data"),
    }
}
