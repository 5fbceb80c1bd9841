//! Relationship profiles (SPEC 7): merging facts, deriving feature adoption from heartbeats
//! and tickets, and surfacing co-development opportunities onto the `opportunities` stream.

use serde_json::json;
use tam_core::comms::{AGENT_ID, Event};
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
