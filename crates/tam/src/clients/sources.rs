//! The clients of the ticket sources and of Notion, as `tam.toml` describes them, with their
//! secrets from the variables it names. A helpdesk's client is built when its sync runs (a
//! feed), so a missing token fails that sync, not the process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tam_app::sync::jira::JiraSource;
use tam_app::sync::kayako::{KayakoClient, KayakoSource};
use tam_app::sync::notion::NotionBook;
use tam_app::sync::{TicketFeed, TicketSource};
use tam_connectors::notion::{Notion, NotionConfig};
use tam_core::TenantId;

use crate::config::{Config, EnvVarName, JiraSection, KayakoApi, KayakoSection, NotionSection};

/// The client `[notion]` describes, with its token from the environment.
pub fn notion_client(config: &NotionSection, pacing: Arc<dyn tam_core::rate::Limits>) -> Result<Notion> {
    let token = secret("notion", &config.token_env, "integration's token")?;
    Ok(Notion::new(
        token,
        NotionConfig {
            base_url: config.base_url.clone(),
            version: config.version.clone(),
            requests_per_second: config.requests_per_second,
            timeout: Duration::from_millis(config.timeout_ms),
            ..NotionConfig::default()
        },
    )
    .with_pacing(pacing))
}

/// The `[notion]` tenant and its databases, when it names a tenant (its CRM and profile
/// writers need only the accounts database; a pull and a ticket push need both).
pub fn notion_book(config: &Config) -> Result<Option<NotionBook>> {
    let s = &config.notion;
    let Some(tenant) = &s.tenant else { return Ok(None) };
    Ok(Some(NotionBook {
        tenant: TenantId::parse("[notion] tenant", tenant)?,
        accounts_database: s.accounts_database.clone(),
        tickets_database: s.tickets_database.clone(),
        accounts: s.accounts.clone(),
        tickets: s.tickets.clone(),
    }))
}

/// The `[notion]` tenant, when its two databases are configured: the tenant whose scan reads
/// from Notion first, and whose helpdesks' tickets go to its Support Tickets database.
pub fn notion_tenant(config: &Config) -> Option<&str> {
    let s = &config.notion;
    s.accounts_database.as_ref().and(s.tickets_database.as_ref()).and(s.tenant.as_deref())
}

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
    for (key, value) in [("base_url", &s.base_url), ("email", &s.email), ("project", &s.project)] {
        if value.trim().is_empty() {
            bail!("[jira] {key} is not set");
        }
    }
    JiraSource::check_projects(&s.project)?;
    JiraSource::new(jira(s)?, tenant, &s.project, s.jql.as_deref(), s.zone()?, s.mapping())
}

/// `[jira]` as a feed: its tenant, and its source built when a sync runs.
pub fn jira_feed(config: &Config) -> Result<TicketFeed> {
    let s = config.jira.clone();
    let tenant = s.tenant.as_deref().context("[jira] tenant is not set: whose tickets are these?")?;
    let tenant = TenantId::parse("[jira] tenant", tenant)?;
    let feed = tenant.clone();
    let open = move || -> Result<Box<dyn TicketSource>> { Ok(Box::new(jira_source(&s, feed.clone())?)) };
    Ok(TicketFeed { name: "jira", job: "sync:jira", tenant, open: Box::new(open) })
}

/// `[kayako]` as a feed: its tenant, and its source built when a sync runs.
pub fn kayako_feed(config: &Config) -> Result<TicketFeed> {
    let s = config.kayako.clone();
    let tenant = s.tenant.as_deref().context("[kayako] tenant is not set: whose tickets are these?")?;
    let tenant = TenantId::parse("[kayako] tenant", tenant)?;
    let feed = tenant.clone();
    let open = move || -> Result<Box<dyn TicketSource>> {
        if s.base_url.trim().is_empty() {
            bail!("[kayako] base_url is not set");
        }
        Ok(Box::new(KayakoSource { client: kayako_client(&s)?, tenant: feed.clone(), mapping: s.mapping() }))
    };
    Ok(TicketFeed { name: "kayako", job: "sync:kayako", tenant, open: Box::new(open) })
}

/// The helpdesks that name a tenant: the scheduler syncs each hourly. One whose tenant is not
/// a tenant id feeds nobody (said in the log), as a tenant no account has.
pub fn feeds(config: &Config) -> Vec<TicketFeed> {
    let mut feeds = Vec::new();
    for (section, tenant, feed) in [
        ("jira", &config.jira.tenant, jira_feed as fn(&Config) -> Result<TicketFeed>),
        ("kayako", &config.kayako.tenant, kayako_feed),
    ] {
        if tenant.is_none() {
            continue;
        }
        match feed(config) {
            Ok(feed) => feeds.push(feed),
            Err(e) => tam_app::log::warn(format_args!("[{section}]: no hourly sync: {e:#}")),
        }
    }
    feeds
}

/// A secret from the variable `var`, for the `[section]` option `what`.
fn secret(section: &str, var: &EnvVarName, what: &str) -> Result<String> {
    var.value().with_context(|| format!("[{section}]: set {var} to the {what}"))
}

/// The client `[kayako]` describes: the JSON API signed in as its agent, or the Classic API
/// with its key and secret, each from the environment.
fn kayako_client(s: &KayakoSection) -> Result<KayakoClient> {
    use tam_connectors::kayako::{Cases, CasesConfig, Classic, ClassicConfig};
    let timeout = Duration::from_millis(s.timeout_ms);
    if s.api == KayakoApi::Json {
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
        return Ok(KayakoClient::Json(Cases::new(cases, &password)));
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
    Ok(KayakoClient::Classic { client: Classic::new(classic, &secret_key), departments: s.departments.clone() })
}

/// `tam doctor`'s Kayako check: the statuses, read once (proves the URL and the credentials).
pub fn kayako_check(config: &Config) -> std::result::Result<String, String> {
    kayako_client(&config.kayako).map_err(|e| format!("{e:#}"))?.check()
}

/// The webhook secret `[jira] webhook_secret_env` names.
pub fn jira_secret(config: &Config) -> Result<String> {
    secret("jira", &config.jira.webhook_secret_env, "webhook's secret; unsigned deliveries are refused")
}
