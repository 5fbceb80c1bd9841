//! Jira webhooks: one issue changed, so only its account is re-scored. The HTTP API calls
//! [`handle_jira`] for `POST /v1/webhooks/jira`; `tam webhook replay` runs a recorded delivery
//! through it.
//!
//! In order: the signature (`X-Hub-Signature: sha256=…` over the raw body, with the secret in
//! `[jira] webhook_secret_env`), the delivery id (`X-Atlassian-Webhook-Identifier`, the same
//! across Jira's retries: one already processed is acknowledged and ignored), the event
//! (created or updated issues only), the issue (fetched from Jira when the body carries only
//! its key), the ticket (through the importer, so a bad issue is named by key and field; an
//! issue older than the stored ticket changes nothing, so a late retry or a replayed body
//! cannot undo a newer state), then the account's snapshot, episode and effects in one
//! transaction. The delivery is recorded last.

use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use tam_agent::import::Importer;
use tam_connectors::jira::{
    IssueEvent, JiraMapping, escalation_record, issue_event, sign, signature_matches, ticket_record,
};
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;

/// Why a delivery was not processed; each maps to an HTTP answer for the server.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 401: no or a wrong signature.
    #[error("{0}")]
    Unauthorized(String),
    /// 400: a body that is not a Jira issue event, or an issue that cannot be a ticket.
    #[error("{0}")]
    Invalid(String),
    /// 503: Jira or the store failed; the sender should retry the delivery.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// What a delivery did.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Handled {
    /// The ticket was stored and its account re-scored.
    Processed {
        /// The ticket (issue key).
        ticket: String,
        /// Its account.
        account: String,
        /// The account's new score.
        score: u8,
        /// Its new status.
        status: String,
        /// Outbox rows written.
        effects: u64,
        /// Whether the issue had to be fetched from Jira.
        fetched: bool,
        /// Microseconds from receipt to the outbox rows written.
        micros: u128,
    },
    /// Seen before (Jira retried it).
    Duplicate {
        /// The delivery id.
        delivery: String,
    },
    /// The stored ticket is newer than the issue sent (a late retry, a replayed body).
    Stale {
        /// The ticket (issue key).
        ticket: String,
    },
    /// An event tam does not act on.
    Ignored {
        /// Why.
        reason: String,
    },
}

/// One delivery as it arrived: its raw body and the headers that matter.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The raw body, exactly as received (the signature covers these bytes).
    pub body: &'a [u8],
    /// `X-Hub-Signature`.
    pub signature: Option<&'a str>,
    /// `X-Atlassian-Webhook-Identifier`.
    pub id: Option<&'a str>,
    /// When it was received, for the latency it reports.
    pub received: Instant,
}

/// The Jira webhook of a home: whose tickets it carries and how it is signed.
#[derive(Debug, Clone, Copy)]
pub struct JiraHook<'a> {
    /// The shared secret deliveries are signed with.
    pub secret: &'a str,
    /// The variable holding it, named when a signature does not match.
    pub secret_env: &'a str,
    /// The tenant whose tickets these are (`[jira] tenant`), as configured: it is read once
    /// the signature is checked, so an unsigned caller learns nothing of the configuration.
    pub tenant: Option<&'a str>,
    /// How issues become tickets.
    pub mapping: &'a JiraMapping,
}

/// Processes one Jira delivery to `hook`. `fetch` gets an issue by key from Jira when the body
/// does not carry it whole.
pub fn handle_jira(
    store: &mut Store,
    rules: &Rules,
    hook: JiraHook<'_>,
    delivery: Delivery<'_>,
    fetch: &dyn Fn(&str) -> Result<Value>,
) -> Result<Handled, WebhookError> {
    let Delivery { body, signature, id, received } = delivery;
    let Some(signature) = signature else {
        return Err(WebhookError::Unauthorized("the delivery has no X-Hub-Signature header".into()));
    };
    if !signature_matches(hook.secret, body, signature) {
        return Err(WebhookError::Unauthorized(format!(
            "the X-Hub-Signature does not match the body under the secret in {}",
            hook.secret_env
        )));
    }
    let tenant = hook.tenant.context("[jira] tenant is not set: whose tickets are these?")?;
    let tenant = &TenantId::parse("[jira] tenant", tenant).map_err(|e| WebhookError::Failed(e.into()))?;
    let Some(event) = issue_event(body).map_err(WebhookError::Invalid)? else {
        return Ok(Handled::Ignored { reason: "not an issue created or updated event".into() });
    };
    let delivery = id.map_or_else(|| format!("sha256:{}", &sign("", body)[7..]), str::to_owned);
    let now = crate::now();
    if store.delivery_seen(tenant, "jira", &delivery).context("looking up the delivery")? {
        return Ok(Handled::Duplicate { delivery });
    }
    let handled = process(store, rules, hook.mapping, tenant, event, fetch, now, received)?;
    // Recorded only once processed: a delivery that failed, or whose process was killed, is
    // processed when Jira retries it. Processing twice is harmless (the ticket is the same,
    // its effects are keyed).
    store.first_delivery(tenant, "jira", &delivery, now).context("recording the delivery")?;
    Ok(handled)
}

#[allow(clippy::too_many_arguments)]
fn process(
    store: &mut Store,
    rules: &Rules,
    mapping: &JiraMapping,
    tenant: &TenantId,
    event: IssueEvent,
    fetch: &dyn Fn(&str) -> Result<Value>,
    now: Timestamp,
    received: Instant,
) -> Result<Handled, WebhookError> {
    let IssueEvent { key, issue, .. } = event;
    let key = key.as_str();
    let fetched = !mapping.is_complete(&issue);
    let issue = if fetched { fetch(key).with_context(|| format!("fetching {key} from Jira"))? } else { issue };
    let record = ticket_record(tenant.as_str(), &issue, mapping);
    let sent: Option<Timestamp> = record["updated_at"].as_str().and_then(|t| t.parse().ok());
    let stored = store.ticket_updated_at(tenant, key).context("reading the stored ticket")?;
    if let (Some(sent), Some(stored)) = (sent, stored)
        && stored > sent
    {
        return Ok(Handled::Stale { ticket: key.to_owned() });
    }
    let mut importer = Importer::new(store, rules.import_options(now));
    let escalation = escalation_record(tenant.as_str(), &issue, mapping);
    importer.push("jira webhook", std::iter::once(record.clone()).chain(escalation)).context("storing the ticket")?;
    let report = importer.finish().context("storing the ticket")?;
    if let Some(rejected) = report.rejected.first() {
        return Err(WebhookError::Invalid(rejected.to_string()));
    }
    let account = record["account_id"].as_str().unwrap_or_default();
    let account = AccountId::parse("account_id", account).map_err(|e| WebhookError::Invalid(e.to_string()))?;
    let scanned = tam_agent::scan::rescore(store, tenant, &account, now, rules.scan(Some(tenant)))
        .context("re-scoring the account")?;
    let micros = received.elapsed().as_micros();
    let Some(result) = scanned.accounts.first() else {
        let why = scanned.failed.first().map_or_else(|| "it is not stored".to_owned(), ToString::to_string);
        return Err(WebhookError::Failed(anyhow::anyhow!("account {account} could not be re-scored: {why}")));
    };
    Ok(Handled::Processed {
        ticket: key.to_owned(),
        account: account.to_string(),
        score: result.health.score,
        status: result.health.status.to_string(),
        effects: scanned.summary.effects,
        fetched,
        micros,
    })
}

/// Why a release delivery was refused; each maps to an HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseRefused {
    /// 400: the body is not JSON, or not a release.
    #[error("{0}")]
    Invalid(String),
    /// 401: the same answer for an unknown tenant, a tenant without a release secret and a bad
    /// signature, so an unsigned caller learns nothing about which tenants exist.
    #[error("the X-Hub-Signature does not match a release secret of this tenant")]
    Unauthorized,
}

/// A release to announce, `{"tenant_id", "release_info": {version, date, changes[]},
/// "account_id"?}`, signed (`X-Hub-Signature: sha256=…`) with its tenant's release secret,
/// which `secret_of` gives by tenant id: the release-notes task it asks for, which drafts
/// once per version.
pub fn release_task(
    body: &[u8],
    signature: Option<&str>,
    secret_of: impl Fn(&str) -> Option<String>,
) -> Result<tam_agent::tasks::Task, ReleaseRefused> {
    let release: Value =
        serde_json::from_slice(body).map_err(|e| ReleaseRefused::Invalid(format!("body: not JSON ({e})")))?;
    let tenant = release["tenant_id"].as_str().unwrap_or_default();
    match (secret_of(tenant), signature) {
        (Some(secret), Some(signature)) if signature_matches(&secret, body, signature) => {}
        _ => return Err(ReleaseRefused::Unauthorized),
    }
    TenantId::parse("tenant_id", tenant).map_err(|_| ReleaseRefused::Unauthorized)?;
    let version = release.pointer("/release_info/version").and_then(Value::as_str).unwrap_or_default();
    let mut task = serde_json::json!({"type": "release_notes", "tenant_id": tenant,
                                      "release_info": release["release_info"], "task_id": format!("release-{version}")});
    if let Some(account) = release.get("account_id") {
        task["account_id"] = account.clone();
    }
    tam_agent::tasks::Task::parse(&task).map_err(|e| ReleaseRefused::Invalid(e.to_string()))
}
