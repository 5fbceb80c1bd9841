//! `tam webhook replay`: a recorded Jira delivery through [`tam_app::webhook::handle_jira`],
//! the handler `POST /v1/webhooks/jira` calls.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;
use tam_app::webhook::{Delivery, Handled, JiraHook, handle_jira};
use tam_connectors::jira::sign;
use tam_core::TenantId;

use crate::Outcome;
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

pub fn run(home: &Home, command: WebhookCommand) -> Result<Outcome> {
    let WebhookCommand::Replay { file, signature, sign: sign_it, delivery, json } = command;
    let received = Instant::now();
    let body = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let (mut store, config) = home.open()?;
    let secret = crate::clients::sources::jira_secret(&config)?;
    let signature = if sign_it { Some(sign(&secret, &body)) } else { signature };
    let mapping = config.jira.mapping();
    let fetch = |key: &str| -> Result<Value> {
        Ok(crate::clients::sources::jira_client(&config)?.issue(key, &mapping.fields())?)
    };
    let hook = JiraHook {
        secret: &secret,
        secret_env: config.jira.webhook_secret_env.as_str(),
        tenant: config.jira.tenant.as_deref(),
        mapping: &mapping,
    };
    let handled = handle_jira(
        &mut store,
        &config.rules,
        hook,
        Delivery { body: &body, signature: signature.as_deref(), id: delivery.as_deref(), received },
        &fetch,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // The server's dispatcher would deliver these; a replay delivers them itself.
    if let (Handled::Processed { .. }, Some(tenant)) = (&handled, config.jira.tenant.as_deref()) {
        let tenant = TenantId::parse("[jira] tenant", tenant)?;
        crate::clients::open(home, &config)?.dispatch(&mut store, &tenant, &config.rules)?;
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
