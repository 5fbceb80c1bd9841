//! Jira webhooks: one issue changed, so only its account is re-scored. `handle_jira` is what
//! the HTTP server will call for `POST /v1/webhooks/jira`; until then `tam webhook replay`
//! runs a recorded delivery through it.
//!
//! In order: the signature (`X-Hub-Signature: sha256=…` over the raw body, with the secret in
//! `[jira] webhook_secret_env`), the delivery id (`X-Atlassian-Webhook-Identifier`, the same
//! across Jira's retries: one already processed is acknowledged and ignored), the event
//! (created or updated issues only), the issue (fetched from Jira when the body carries only
//! its key), the ticket (through the importer, so a bad issue is named by key and field; an
//! issue older than the stored ticket changes nothing, so a late retry or a replayed body
//! cannot undo a newer state), then the account's snapshot, episode and effects in one
//! transaction. The delivery is recorded last.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;
use tam_agent::import::Importer;
use tam_connectors::jira::{IssueEvent, issue_event, sign, signature_matches, ticket_record};
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::Store;

use crate::Outcome;
use crate::config::Config;
use crate::home::Home;

#[derive(Debug, clap::Subcommand)]
pub enum WebhookCommand {
    /// Runs a recorded Jira webhook delivery through the handler the server uses.
    Replay {
        /// The delivery's raw body.
        file: PathBuf,
        /// Its `X-Hub-Signature` header (`sha256=…`).
        #[arg(long, conflicts_with = "sign")]
        signature: Option<String>,
        /// Sign the body with the configured secret (a body you wrote yourself).
        #[arg(long)]
        sign: bool,
        /// Its `X-Atlassian-Webhook-Identifier` header; the body's digest when absent.
        #[arg(long)]
        delivery: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

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

/// The webhook secret `[jira] webhook_secret_env` names.
pub fn jira_secret(config: &Config) -> Result<String> {
    let var = &config.jira.webhook_secret_env;
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("[jira]: set {var} to the webhook's secret; unsigned deliveries are refused"))
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

/// Processes one Jira delivery, checked against `secret`. `fetch` gets an issue by key from
/// Jira when the body does not carry it whole.
pub fn handle_jira(
    store: &mut Store,
    config: &Config,
    secret: &str,
    delivery: Delivery<'_>,
    fetch: &dyn Fn(&str) -> Result<Value>,
) -> Result<Handled, WebhookError> {
    let Delivery { body, signature, id, received } = delivery;
    let s = &config.jira;
    let Some(signature) = signature else {
        return Err(WebhookError::Unauthorized("the delivery has no X-Hub-Signature header".into()));
    };
    if !signature_matches(secret, body, signature) {
        return Err(WebhookError::Unauthorized(format!(
            "the X-Hub-Signature does not match the body under the secret in {}",
            s.webhook_secret_env
        )));
    }
    let tenant_name = s.tenant.as_deref().context("[jira] tenant is not set: whose tickets are these?")?;
    let tenant = TenantId::parse("[jira] tenant", tenant_name).map_err(|e| WebhookError::Failed(e.into()))?;
    let Some(event) = issue_event(body).map_err(WebhookError::Invalid)? else {
        return Ok(Handled::Ignored { reason: "not an issue created or updated event".into() });
    };
    let delivery = id.map_or_else(|| format!("sha256:{}", &sign("", body)[7..]), str::to_owned);
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_else(|_| Timestamp::now());
    if store.delivery_seen(&tenant, "jira", &delivery).context("looking up the delivery")? {
        return Ok(Handled::Duplicate { delivery });
    }
    let handled = process(store, config, &tenant, event, fetch, now, received)?;
    // Recorded only once processed: a delivery that failed, or whose process was killed, is
    // processed when Jira retries it. Processing twice is harmless (the ticket is the same,
    // its effects are keyed).
    store.first_delivery(&tenant, "jira", &delivery, now).context("recording the delivery")?;
    Ok(handled)
}

fn process(
    store: &mut Store,
    config: &Config,
    tenant: &TenantId,
    event: IssueEvent,
    fetch: &dyn Fn(&str) -> Result<Value>,
    now: Timestamp,
    received: Instant,
) -> Result<Handled, WebhookError> {
    let IssueEvent { key, issue, .. } = event;
    let key = key.as_str();
    let mapping = config.jira.mapping();
    let fetched = !mapping.is_complete(&issue);
    let issue = if fetched { fetch(key).with_context(|| format!("fetching {key} from Jira"))? } else { issue };
    let record = ticket_record(tenant.as_str(), &issue, &mapping);
    let sent: Option<Timestamp> = record["updated_at"].as_str().and_then(|t| t.parse().ok());
    let stored = store.ticket_updated_at(tenant, key).context("reading the stored ticket")?;
    if let (Some(sent), Some(stored)) = (sent, stored)
        && stored > sent
    {
        return Ok(Handled::Stale { ticket: key.to_owned() });
    }
    let mut importer = Importer::new(store, config.import_options(now));
    importer.push("jira webhook", [record.clone()]).context("storing the ticket")?;
    let report = importer.finish().context("storing the ticket")?;
    if let Some(rejected) = report.rejected.first() {
        return Err(WebhookError::Invalid(rejected.to_string()));
    }
    let account = record["account_id"].as_str().unwrap_or_default();
    let account = AccountId::parse("account_id", account).map_err(|e| WebhookError::Invalid(e.to_string()))?;
    let cfg = config.scan_config(Some(tenant))?;
    let scanned = tam_agent::scan::rescore(store, tenant, &account, now, &cfg).context("re-scoring the account")?;
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

pub fn run(home: &Home, command: WebhookCommand) -> Result<Outcome> {
    let WebhookCommand::Replay { file, signature, sign: sign_it, delivery, json } = command;
    let received = Instant::now();
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let (mut store, config) = home.open()?;
    let secret = jira_secret(&config)?;
    let signature = if sign_it { Some(sign(&secret, &body)) } else { signature };
    let jira = std::cell::OnceCell::new();
    let fetch = |key: &str| -> Result<Value> {
        let client = match jira.get() {
            Some(c) => c,
            None => {
                let c = crate::sync::jira_client(&config)?;
                jira.get_or_init(|| c)
            }
        };
        Ok(client.issue(key, &config.jira.mapping().fields())?)
    };
    let handled = handle_jira(
        &mut store,
        &config,
        &secret,
        Delivery { body: &body, signature: signature.as_deref(), id: delivery.as_deref(), received },
        &fetch,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // The server's dispatcher would deliver these; a replay delivers them itself.
    if let (Handled::Processed { .. }, Some(tenant)) = (&handled, config.jira.tenant.as_deref()) {
        let tenant = TenantId::parse("[jira] tenant", tenant)?;
        crate::channels::HomeChannels::open(home, &config)?.dispatch(&mut store, &tenant, &config.retry)?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&handled)?)?;
    } else {
        match &handled {
            Handled::Processed { ticket, account, score, status, effects, fetched, micros } => writeln!(
                out,
                "{ticket}: account {account} re-scored {score} ({status}), {effects} effect(s) planned{} in {:.1} ms",
                if *fetched { ", issue fetched from Jira" } else { "" },
                Duration::from_micros(u64::try_from(*micros).unwrap_or(u64::MAX)).as_secs_f64() * 1000.0
            )?,
            Handled::Duplicate { delivery } => writeln!(out, "delivery {delivery} was processed before; ignored")?,
            Handled::Stale { ticket } => writeln!(out, "{ticket}: the stored ticket is newer; ignored")?,
            Handled::Ignored { reason } => writeln!(out, "ignored: {reason}")?,
        }
    }
    Ok(Outcome::Done)
}
