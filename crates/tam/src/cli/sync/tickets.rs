//! The helpdesks' clients and sources, as `[jira]` and `[kayako]` describe them, and the
//! report of a ticket sync.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tam_app::sync::TicketFeed;
use tam_app::sync::TicketSync;
use tam_app::sync::jira::JiraSource;
use tam_app::sync::kayako::{KayakoApi, KayakoSource};
use tam_core::TenantId;

use crate::Outcome;
use crate::config::{Config, EnvVarName, JiraSection, KayakoSection};

/// The Jira client `[jira]` describes, with its token from the environment.
pub fn jira_client(config: &Config) -> Result<tam_connectors::jira::Jira> {
    jira(&config.jira)
}

fn jira(s: &JiraSection) -> Result<tam_connectors::jira::Jira> {
    use tam_connectors::jira::{Jira, JiraConfig};
    for (key, value) in [("base_url", &s.base_url), ("email", &s.email)] {
        if value.trim().is_empty() {
            bail!("[jira] {key} is not set");
        }
    }
    let token = secret("jira", &s.token_env, &format!("API token of {}", s.email))?;
    Ok(Jira::new(
        JiraConfig {
            base_url: s.base_url.clone(),
            email: s.email.clone(),
            page_size: s.page_size,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_millis(s.timeout_ms),
        },
        &token,
    ))
}

/// The `[jira]` project's issues as `tenant`'s tickets.
fn jira_source(s: &JiraSection, tenant: TenantId) -> Result<JiraSource> {
    if s.project.trim().is_empty() {
        bail!("[jira] project is not set");
    }
    JiraSource::new(jira(s)?, tenant, &s.project, s.jql.as_deref(), s.zone()?, s.mapping())
}

/// `[jira]` as a feed: its tenant, and its source built when a sync runs.
pub fn jira_feed(config: &Config) -> Result<TicketFeed> {
    let s = config.jira.clone();
    let tenant = s.tenant.as_deref().context("[jira] tenant is not set: whose tickets are these?")?;
    let tenant = TenantId::parse("[jira] tenant", tenant)?;
    let feed = tenant.clone();
    let open = move || -> Result<Box<dyn tam_app::sync::TicketSource>> { Ok(Box::new(jira_source(&s, feed.clone())?)) };
    Ok(TicketFeed { name: "jira", tenant, open: Box::new(open) })
}

/// `[kayako]` as a feed: its tenant, and its source built when a sync runs.
pub fn kayako_feed(config: &Config) -> Result<TicketFeed> {
    let s = config.kayako.clone();
    let tenant = s.tenant.as_deref().context("[kayako] tenant is not set: whose tickets are these?")?;
    let tenant = TenantId::parse("[kayako] tenant", tenant)?;
    let feed = tenant.clone();
    let open = move || -> Result<Box<dyn tam_app::sync::TicketSource>> {
        if s.base_url.trim().is_empty() {
            bail!("[kayako] base_url is not set");
        }
        Ok(Box::new(KayakoSource { api: kayako_api(&s)?, tenant: feed.clone(), mapping: s.mapping() }))
    };
    Ok(TicketFeed { name: "kayako", tenant, open: Box::new(open) })
}

/// The helpdesks that name a tenant: the scheduler syncs each hourly.
pub fn feeds(config: &Config) -> Result<Vec<TicketFeed>> {
    let mut feeds = Vec::new();
    if config.jira.tenant.is_some() {
        feeds.push(jira_feed(config)?);
    }
    if config.kayako.tenant.is_some() {
        feeds.push(kayako_feed(config)?);
    }
    Ok(feeds)
}

/// A secret from the variable `var`, for the `[section]` option `what`.
fn secret(section: &str, var: &EnvVarName, what: &str) -> Result<String> {
    var.value().with_context(|| format!("[{section}]: set {var} to the {what}"))
}

/// The client `[kayako]` describes: the JSON API signed in as its agent, or the Classic API
/// with its key and secret, each from the environment.
fn kayako_api(s: &KayakoSection) -> Result<KayakoApi> {
    use tam_connectors::kayako::{Cases, CasesConfig, Classic, ClassicConfig};
    let timeout = Duration::from_millis(s.timeout_ms);
    if s.api == crate::config::KayakoApi::Json {
        if s.email.trim().is_empty() {
            bail!("[kayako] email is not set (api = \"json\" signs in as an agent)");
        }
        let password = secret("kayako", &s.password_env, "agent's password")?;
        let cases = CasesConfig {
            base_url: s.base_url.clone(),
            email: s.email.clone(),
            page_size: s.page_size,
            backoff: Duration::from_secs(1),
            timeout,
        };
        return Ok(KayakoApi::Json(Cases::new(cases, &password)));
    }
    if s.departments.trim().is_empty() {
        bail!("[kayako] departments is not set (the Classic API lists tickets by department ids, e.g. \"1,2\")");
    }
    let key = secret("kayako", &s.api_key_env, "API key")?;
    let secret_key = secret("kayako", &s.secret_env, "secret key")?;
    let classic = ClassicConfig {
        base_url: s.base_url.clone(),
        api_key: key,
        page_size: s.page_size,
        backoff: Duration::from_secs(1),
        timeout,
    };
    Ok(KayakoApi::Classic { client: Classic::new(classic, &secret_key), departments: s.departments.clone() })
}

/// `tam doctor`'s Kayako check: the statuses, read once (proves the URL and the credentials).
pub fn kayako_check(config: &Config) -> std::result::Result<String, String> {
    kayako_api(&config.kayako).map_err(|e| format!("{e:#}"))?.check()
}

/// Prints a ticket sync's report; a rejected ticket makes the outcome partial.
pub(super) fn report(sync: &TicketSync, json: bool) -> Result<Outcome> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(sync)?)?;
    } else {
        for r in &sync.rejected {
            crate::warn(format_args!("{}: rejected: {r}", sync.source));
        }
        writeln!(out, "{} → {}: {}; {} calls", sync.source, sync.tenant, sync.summary(), sync.calls)?;
    }
    Ok(if sync.rejected.is_empty() { Outcome::Done } else { Outcome::Partial })
}
