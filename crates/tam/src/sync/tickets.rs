//! `tam sync jira` and `tam sync kayako`: tickets from a source into the store, or (for the
//! `[notion]` tenant) into Notion's Support Tickets database. Each reports what it fetched,
//! inserted, updated and rejected; the watermark moves only when the sync succeeded.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tam_agent::import::Importer;
use tam_connectors::notion::Notion;
use tam_core::{TenantId, Timestamp};
use tam_store::Store;

use super::{client, notion_tenant};
use crate::Outcome;
use crate::config::Config;

/// What a sync from a ticket source did.
#[derive(Debug, serde::Serialize)]
pub struct TicketSync {
    /// The tenant.
    pub tenant: String,
    /// `jira` or `kayako`.
    pub source: &'static str,
    /// Issues the source returned.
    pub fetched: u64,
    /// New tickets stored.
    pub inserted: u64,
    /// Known tickets updated.
    pub updated: u64,
    /// Issues skipped, each with its key and field.
    pub rejected: Vec<String>,
    /// Requests sent to the source, retries included.
    pub calls: u64,
    /// Requests sent to Notion (the `[notion]` tenant's tickets are written there).
    pub notion_calls: u64,
    /// The JQL or query used.
    pub query: String,
}

/// Where a source's tickets go: the store, or (for the `[notion]` tenant) the Support Tickets
/// database, from which the tenant's scans read.
fn deliver_tickets(
    store: &mut Store,
    config: &Config,
    tenant: &TenantId,
    source: &'static str,
    records: &[Value],
    now: Timestamp,
    shared: Option<&Notion>,
) -> Result<(u64, u64, Vec<String>, u64)> {
    if notion_tenant(config) == Some(tenant.as_str()) {
        let own;
        let notion = match shared {
            Some(notion) => notion,
            None => {
                own = client(&config.notion)?;
                &own
            }
        };
        let calls_before = notion.calls();
        let section = &config.notion;
        let to = tam_connectors::notion::tickets::TicketsDatabase {
            tenant: section.tenant.as_deref().unwrap_or_default(),
            database: section.tickets_database.as_deref().context("[notion] tickets_database is not set")?,
            properties: &section.tickets,
            priorities: &config.priorities,
        };
        let pushed = tam_connectors::notion::tickets::push(notion, &to, source, records);
        // The pull leaves out pages whose last edit was tam's: these tickets reach the store
        // from the answers to their writes instead, also when a later write failed (the next
        // sync finds them unchanged in Notion and writes them no more).
        let written = notion.take_written_pages();
        if let Err(e) = super::import_written(store, &config.notion, config.import_options(now), &written) {
            // This client ends with the sync: the next pull must read tam's own edits instead.
            for source in ["notion:accounts", "notion:tickets"] {
                let _ = store.set_sync_watermark(tenant, &super::missed_own_write(source), now);
            }
            return Err(e);
        }
        let pushed = pushed?;
        return Ok((pushed.inserted, pushed.updated, pushed.rejected, notion.calls() - calls_before));
    }
    let (inserted, updated, rejected) = store_tickets(store, config, tenant, source, records, now)?;
    Ok((inserted, updated, rejected, 0))
}

/// Stores ticket `records` fetched from `source` and counts what was new.
fn store_tickets(
    store: &mut Store,
    config: &Config,
    tenant: &TenantId,
    source: &'static str,
    records: &[Value],
    now: Timestamp,
) -> Result<(u64, u64, Vec<String>)> {
    let ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
    let known = store.known_tickets(tenant, ids.iter().copied())?;
    let mut importer = Importer::new(store, config.import_options(now));
    importer.push(source, records.iter().cloned())?;
    let report = importer.finish()?;
    let rejected_ids: std::collections::HashSet<&str> =
        report.rejected.iter().filter_map(|r| r.id.as_deref()).collect();
    let updated = ids.iter().filter(|id| known.contains(**id) && !rejected_ids.contains(**id)).count() as u64;
    let inserted = report.tickets.saturating_sub(updated);
    Ok((inserted, updated, report.rejected.iter().map(ToString::to_string).collect()))
}

/// The Jira client `[jira]` describes, with its token from the environment.
pub fn jira_client(config: &Config) -> Result<tam_connectors::jira::Jira> {
    use tam_connectors::jira::{Jira, JiraConfig};
    let s = &config.jira;
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

/// Pulls the `[jira]` project's issues updated since `since` (default: the last successful
/// sync, less a minute: JQL compares to the minute) into the tenant's tickets.
pub fn pull_jira(
    store: &mut Store,
    config: &Config,
    since: Option<Timestamp>,
    shared: Option<&Notion>,
) -> Result<TicketSync> {
    use tam_connectors::jira::ticket_record;
    let s = &config.jira;
    let tenant = s.tenant.as_deref().context("[jira] tenant is not set: whose tickets are these?")?;
    let tenant_id = TenantId::parse("[jira] tenant", tenant)?;
    for (key, value) in [("base_url", &s.base_url), ("email", &s.email), ("project", &s.project)] {
        if value.trim().is_empty() {
            bail!("[jira] {key} is not set");
        }
    }
    // One key (`SUP`) or several, comma-separated (`SUP, OPS`).
    let projects: Vec<&str> = s.project.split(',').map(str::trim).collect();
    if let Some(bad) =
        projects.iter().find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        bail!("[jira] project {bad:?} is not a project key (one key, or several separated by commas)");
    }
    let jira = jira_client(config)?;
    let started = Timestamp::now();
    let from = match since {
        Some(t) => Some(t),
        None => store
            .sync_watermark(&tenant_id, "jira")?
            .map(|w| w.checked_sub(tam_core::SignedDuration::from_mins(1)).unwrap_or(w)),
    };
    let mut jql = match projects.as_slice() {
        [one] => format!("project = \"{one}\""),
        several => {
            format!("project in ({})", several.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "))
        }
    };
    if let Some(extra) = &s.jql {
        jql.push_str(&format!(" AND ({extra})"));
    }
    if let Some(from) = from {
        let local = from.to_zoned_datetime(s.zone()?).strftime("%Y-%m-%d %H:%M").to_string();
        jql.push_str(&format!(" AND updated >= \"{local}\""));
    }
    jql.push_str(" ORDER BY updated ASC");
    let mapping = s.mapping();
    let mut records = Vec::new();
    let fetched = jira
        .search(&jql, &mapping.fields(), |page| records.extend(page.iter().map(|i| ticket_record(tenant, i, &mapping))))
        .with_context(|| format!("[jira] search {jql:?}"))?;
    let (inserted, updated, rejected, notion_calls) =
        deliver_tickets(store, config, &tenant_id, "jira", &records, started, shared)?;
    store.set_sync_watermark(&tenant_id, "jira", started)?;
    Ok(TicketSync {
        tenant: tenant.to_owned(),
        source: "jira",
        fetched,
        inserted,
        updated,
        rejected,
        calls: jira.calls(),
        notion_calls,
        query: jql,
    })
}

/// A secret from the variable `var`, for the `[section]` option `what`.
fn secret(section: &str, var: &str, what: &str) -> Result<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty()).with_context(|| format!("[{section}]: set {var} to the {what}"))
}

/// Pulls the `[kayako]` helpdesk's tickets with activity since `since` (default: the last
/// successful sync) into the tenant's tickets.
pub fn pull_kayako(
    store: &mut Store,
    config: &Config,
    since: Option<Timestamp>,
    shared: Option<&Notion>,
) -> Result<TicketSync> {
    use tam_connectors::kayako::{case_record, classic_record};
    let s = &config.kayako;
    let tenant = s.tenant.as_deref().context("[kayako] tenant is not set: whose tickets are these?")?;
    let tenant_id = TenantId::parse("[kayako] tenant", tenant)?;
    if s.base_url.trim().is_empty() {
        bail!("[kayako] base_url is not set");
    }
    let started = Timestamp::now();
    let from = match since {
        Some(t) => Some(t),
        None => store.sync_watermark(&tenant_id, "kayako")?,
    };
    let mapping = s.mapping();
    let mut records = Vec::new();
    // A ticket whose account cannot be told is named and skipped; the others are stored.
    let mut skipped = Vec::new();
    let mut keep = |record: Result<Value, String>| match record {
        Ok(r) => records.push(r),
        Err(why) => skipped.push(format!("kayako: {why}")),
    };
    let (fetched, calls, query) = if s.api == crate::config::KayakoApi::Json {
        let cases = kayako_cases(config)?;
        let priorities = cases.priorities()?;
        let statuses = cases.statuses()?;
        let include = mapping.includes();
        let fetched =
            cases.cases(from, &include, |c| keep(case_record(tenant, c, &priorities, &statuses, &mapping)))?;
        (fetched, cases.calls(), format!("/api/v1/cases.json?include={include}"))
    } else {
        let classic = kayako_classic(config)?;
        let priorities = classic.priorities()?;
        let statuses = classic.statuses()?;
        // An older tam stored Classic tickets under their display id: each one seen again
        // takes the id both APIs share, so it is updated rather than copied.
        let mut renames = Vec::new();
        let fetched = classic.tickets(&s.departments, from, |t| {
            if let (Some(display), Some(number)) = (t.text_of("displayid"), t.attribute("id")) {
                renames.push((display.to_owned(), format!("KAYAKO-{number}")));
            }
            keep(classic_record(tenant, t, &priorities, &statuses, &mapping));
        })?;
        store.rename_tickets(&tenant_id, "kayako", &renames)?;
        (fetched, classic.calls(), format!("/Tickets/Ticket/ListAll/{}", s.departments))
    };
    let (inserted, updated, rejected, notion_calls) =
        deliver_tickets(store, config, &tenant_id, "kayako", &records, started, shared)?;
    skipped.extend(rejected);
    let rejected = skipped;
    store.set_sync_watermark(&tenant_id, "kayako", started)?;
    Ok(TicketSync {
        tenant: tenant.to_owned(),
        source: "kayako",
        fetched,
        inserted,
        updated,
        rejected,
        calls,
        notion_calls,
        query,
    })
}

impl TicketSync {
    /// The counts in one line.
    pub fn summary(&self) -> String {
        format!(
            "fetched {}, inserted {}, updated {}, rejected {}",
            self.fetched,
            self.inserted,
            self.updated,
            self.rejected.len()
        )
    }
}

/// The JSON API client `[kayako]` describes (`api = "json"`), signing in as its agent.
fn kayako_cases(config: &Config) -> Result<tam_connectors::kayako::Cases> {
    use tam_connectors::kayako::{Cases, CasesConfig};
    let s = &config.kayako;
    if s.email.trim().is_empty() {
        bail!("[kayako] email is not set (api = \"json\" signs in as an agent)");
    }
    let password = secret("kayako", &s.password_env, "agent's password")?;
    let timeout = Duration::from_millis(s.timeout_ms);
    let cases = CasesConfig {
        base_url: s.base_url.clone(),
        email: s.email.clone(),
        page_size: s.page_size,
        backoff: Duration::from_secs(1),
        timeout,
    };
    Ok(Cases::new(cases, &password))
}

/// The Classic API client `[kayako]` describes, with its key and secret from the environment.
fn kayako_classic(config: &Config) -> Result<tam_connectors::kayako::Classic> {
    use tam_connectors::kayako::{Classic, ClassicConfig};
    let s = &config.kayako;
    if s.departments.trim().is_empty() {
        bail!("[kayako] departments is not set (the Classic API lists tickets by department ids, e.g. \"1,2\")");
    }
    let key = secret("kayako", &s.api_key_env, "API key")?;
    let secret_key = secret("kayako", &s.secret_env, "secret key")?;
    let timeout = Duration::from_millis(s.timeout_ms);
    let classic = ClassicConfig {
        base_url: s.base_url.clone(),
        api_key: key,
        page_size: s.page_size,
        backoff: Duration::from_secs(1),
        timeout,
    };
    Ok(Classic::new(classic, &secret_key))
}

/// `tam doctor`'s Kayako check: the statuses, read once (proves the URL and the credentials).
pub fn kayako_check(config: &Config) -> std::result::Result<String, String> {
    let statuses = if config.kayako.api == crate::config::KayakoApi::Json {
        kayako_cases(config).map_err(|e| format!("{e:#}"))?.statuses().map_err(|e| e.to_string())?.len()
    } else {
        kayako_classic(config).map_err(|e| format!("{e:#}"))?.statuses().map_err(|e| e.to_string())?.len()
    };
    Ok(format!("{statuses} ticket statuses read"))
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
