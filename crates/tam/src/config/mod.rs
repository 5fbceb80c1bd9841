//! `TAM_HOME/tam.toml` plus `TAM_*` environment overrides, typed.
//!
//! The file is optional: every option has a default, so a fresh home works with no config.
//! `TAM_SECTION__OPTION=value` overrides `[section] option` (`__` separates levels; keys are
//! lower-cased), e.g. `TAM_SCORING__AGED_P1_P2_POINTS=25` or
//! `TAM_TENANTS__ACME__ESCALATION__COOL_DOWN_DAYS=3`.
//! Per-tenant `[tenants.<id>.scoring]` / `[tenants.<id>.escalation]` sections override the
//! global ones option by option.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use tam_agent::import::ImportOptions;
use tam_agent::scan::ScanConfig;
use tam_app::Rules;
use tam_app::rules::TenantRules;
use tam_core::escalation::EscalationConfig;
use tam_core::outbox::DeliveryPolicy;
use tam_core::scoring::ScoringConfig;
use tam_core::{Priority, PriorityNames, SignedDuration, TenantId, Timestamp};
use toml::{Table, Value};

mod default_file;
mod sections;
#[cfg(test)]
mod tests;

pub use default_file::default_file;
pub use sections::*;

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// Each tenant's scoring, escalation and zone, the import's settings (`[import]`,
    /// `[priorities]`) and the delivery retries (`[outbox]`), read once.
    pub rules: Rules,
    /// `[writer]`: templates or models.
    pub writer: WriterConfig,
    /// `[event_bus]`: local or Redis.
    pub event_bus: EventBusConfig,
    /// `[chat]`: local log or Google Chat webhooks.
    pub chat: ChatConfig,
    /// `[mail]`: local mailbox or Gmail.
    pub mail: MailConfig,
    /// `[notion]`: Notion as a CRM.
    pub notion: NotionSection,
    /// `[jira]`: Jira Cloud as a ticket source.
    pub jira: JiraSection,
    /// `[kayako]`: Kayako as a ticket source.
    pub kayako: KayakoSection,
    /// `[api]`: the HTTP API of `tam serve`.
    pub api: ApiSection,
    /// `[tickets]`: where a ticket's page is.
    pub tickets: TicketsSection,
    /// Where the store is, when not the home's SQLite file: `TAM_DATABASE_URL`, else `[store] url`.
    pub store: Option<tam_store::Location>,
}

const SECTIONS: &[&str] = &[
    "scoring",
    "escalation",
    "import",
    "outbox",
    "priorities",
    "tenants",
    "writer",
    "event_bus",
    "chat",
    "mail",
    "notion",
    "jira",
    "kayako",
    "api",
    "tickets",
    "store",
];
const TENANT_SECTIONS: &[&str] = &["scoring", "escalation", "time_zone"];

/// The `TAM_*` environment variables. A non-Unicode `TAM_*` value is an error naming it;
/// anything else that is not Unicode is none of tam's business.
pub fn tam_env() -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, value) in std::env::vars_os() {
        let Some(key) = key.to_str().filter(|k| k.starts_with("TAM_")) else { continue };
        let value =
            value.into_string().map_err(|_| anyhow::anyhow!("environment variable {key} is not valid Unicode"))?;
        out.push((key.to_owned(), value));
    }
    Ok(out)
}

impl Config {
    /// Reads `path` if it exists, applies `TAM_*` overrides from `env`, and validates everything.
    pub fn load(path: &Path, env: impl IntoIterator<Item = (String, String)>) -> Result<Config> {
        let mut database_url = None;
        let mut raw: Table = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("config {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read config {}", path.display())),
        };
        for (key, value) in env {
            if key == "TAM_DATABASE_URL" {
                database_url = Some(value);
                continue;
            }
            let Some(rest) = key.strip_prefix("TAM_") else { continue };
            if !rest.contains("__") {
                continue; // TAM_HOME and friends are not config options
            }
            // Option names are lower case; tenant ids keep their case.
            let tenant_key = rest.to_ascii_lowercase().starts_with("tenants__");
            let path: Vec<String> = rest
                .split("__")
                .enumerate()
                .map(|(i, part)| if i == 1 && tenant_key { part.to_owned() } else { part.to_ascii_lowercase() })
                .collect();
            if !SECTIONS.contains(&path[0].as_str()) {
                bail!("environment variable {key}: unknown section {:?} (known: {})", path[0], SECTIONS.join(", "));
            }
            set(&mut raw, &path, parse_env_value(&value)).with_context(|| format!("environment variable {key}"))?;
        }
        let mut config = Config::from_table(raw, path)?;
        if let Some(url) = database_url.filter(|u| !u.trim().is_empty()) {
            let location = tam_store::Location::from_url(&url)
                .map_err(|why| anyhow::anyhow!("environment variable TAM_DATABASE_URL: {why}"))?;
            config.store = Some(location);
        }
        Ok(config)
    }

    fn from_table(raw: Table, path: &Path) -> Result<Config> {
        let origin = path.display();
        for key in raw.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                bail!("config {origin}: unknown section [{key}] (known: {})", SECTIONS.join(", "));
            }
        }
        let import: ImportConfig = section(&raw, "import").with_context(|| format!("config {origin}"))?;
        let retry: DeliveryPolicy = section(&raw, "outbox").with_context(|| format!("config {origin}"))?;
        if retry.max_attempts == 0 {
            bail!("config {origin}: [outbox] max_attempts must be at least 1");
        }
        if retry.lease_seconds == 0 {
            bail!("config {origin}: [outbox] lease_seconds must be at least 1");
        }
        let mut priorities = PriorityNames::default();
        if let Some(Value::Table(map)) = raw.get("priorities") {
            let mut pairs = Vec::new();
            for (name, value) in map {
                let p = value
                    .as_str()
                    .and_then(|v| Priority::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(v)))
                    .with_context(|| {
                        format!("config {origin}: [priorities] {name:?}: expected \"P1\"..\"P4\", got {value:?}")
                    })?;
                pairs.push((name.as_str(), p));
            }
            priorities.extend(pairs);
        }
        let writer: WriterConfig = section(&raw, "writer").with_context(|| format!("config {origin}"))?;
        for m in &writer.models {
            let label = m.label();
            if m.timeout_ms == 0 || m.max_tokens == 0 {
                bail!("config {origin}: [[writer.models]] {label}: timeout_ms and max_tokens must be at least 1");
            }
            match &m.api_key_env {
                // The name of a variable, never a key pasted in by mistake (it would be echoed).
                Some(var) => {
                    EnvVarName::try_from(var.clone()).map_err(|why| {
                        anyhow::anyhow!("config {origin}: [[writer.models]] {label}: api_key_env {why}")
                    })?;
                }
                None if m.provider != tam_writer::llm::ProviderKind::OpenaiCompatible => {
                    bail!(
                        "config {origin}: [[writer.models]] {label}: api_key_env is required (the variable holding its API key)"
                    )
                }
                _ => {}
            }
        }
        if writer.mode == WriterMode::Llm && writer.models.is_empty() {
            bail!("config {origin}: [writer] mode = \"llm\" needs at least one [[writer.models]] entry")
        }
        let event_bus: EventBusConfig = section(&raw, "event_bus").with_context(|| format!("config {origin}"))?;
        let chat: ChatConfig = section(&raw, "chat").with_context(|| format!("config {origin}"))?;
        if let Some(space) = chat.default_space.as_deref().filter(|s| !s.starts_with("spaces/")) {
            bail!("config {origin}: [chat] default_space {space:?} is not a space name (spaces/...)");
        }
        let mail: MailConfig = section(&raw, "mail").with_context(|| format!("config {origin}"))?;
        match mail.kind {
            MailKind::Local => {}
            MailKind::Gmail => {
                let from = mail.alerts_from.as_deref().with_context(|| {
                    format!("config {origin}: [mail] kind = \"gmail\" needs alerts_from, the mailbox alerts come from")
                })?;
                tam_core::Email::parse("[mail] alerts_from", from).with_context(|| format!("config {origin}"))?;
            }
        }
        mail.bcc().with_context(|| format!("config {origin}"))?;
        let notion: NotionSection = section(&raw, "notion").with_context(|| format!("config {origin}"))?;
        if notion.requests_per_second.is_nan() || notion.requests_per_second <= 0.0 {
            bail!("config {origin}: [notion] requests_per_second must be above 0");
        }
        let jira: JiraSection = section(&raw, "jira").with_context(|| format!("config {origin}"))?;
        jira.zone().with_context(|| format!("config {origin}: [jira] time_zone"))?;
        let kayako: KayakoSection = section(&raw, "kayako").with_context(|| format!("config {origin}"))?;
        let api: ApiSection = section(&raw, "api").with_context(|| format!("config {origin}"))?;
        for (section, entries) in [
            ("[api.tokens]", &api.tokens),
            ("[api.release_secrets]", &api.release_secrets),
            ("[api.feedback_secrets]", &api.feedback_secrets),
        ] {
            for tenant in entries.keys() {
                TenantId::parse(section, tenant).with_context(|| format!("config {origin}"))?;
            }
        }
        let import_options = ImportOptions {
            priority_names: priorities,
            now: Timestamp::UNIX_EPOCH,
            future_tolerance: SignedDuration::from_mins(i64::from(import.future_tolerance_minutes)),
            default_check_in_interval_days: import.default_check_in_interval_days,
        };
        let global = TenantRules {
            scan: scan_config(&raw, None).with_context(|| format!("config {origin}"))?,
            zone: jiff::tz::TimeZone::UTC,
        };
        let mut rules = Rules::new(global, import_options, retry);
        if let Some(tenants) = raw.get("tenants") {
            let tenants = tenants.as_table().with_context(|| format!("config {origin}: tenants must be a section"))?;
            for (id, sections) in tenants {
                let sections = sections
                    .as_table()
                    .with_context(|| format!("config {origin}: [tenants.{id}] must be a section"))?;
                if let Some(unknown) = sections.keys().find(|k| !TENANT_SECTIONS.contains(&k.as_str())) {
                    bail!(
                        "config {origin}: [tenants.{id}]: unknown section {unknown:?} (known: {})",
                        TENANT_SECTIONS.join(", ")
                    );
                }
                let tenant = TenantId::parse("tenants", id)
                    .map_err(|e| anyhow::anyhow!("config {origin}: [tenants.{id}]: {e}"))?;
                let scan =
                    scan_config(&raw, Some(sections)).with_context(|| format!("config {origin}: [tenants.{id}]"))?;
                let zone =
                    tenant_zone(sections).with_context(|| format!("config {origin}: [tenants.{id}] time_zone"))?;
                rules = rules.with_tenant(tenant, TenantRules { scan, zone });
            }
        }
        if let Some(url) = &api.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            bail!("config {origin}: [api] public_url must be an http(s) address, such as https://tam.example.com");
        }
        let tickets: TicketsSection = section(&raw, "tickets").with_context(|| format!("config {origin}"))?;
        if let Some(url) = &tickets.url {
            tam_core::url::TicketLinks::parse(url)
                .map_err(|why| anyhow::anyhow!("config {origin}: [tickets] url {why}"))?;
        }
        let store: StoreSection = section(&raw, "store").with_context(|| format!("config {origin}"))?;
        let store = store
            .url
            .map(|url| tam_store::Location::from_url(&url))
            .transpose()
            .map_err(|why| anyhow::anyhow!("config {origin}: [store] url: {why}"))?;
        Ok(Config { rules, writer, event_bus, chat, mail, notion, jira, kayako, api, tickets, store })
    }
}

/// A tenant's IANA time zone (`[tenants.<id>] time_zone`; UTC by default).
fn tenant_zone(sections: &Table) -> Result<jiff::tz::TimeZone> {
    let name = sections
        .get("time_zone")
        .map(|z| z.as_str().context("time_zone must be a string like \"Europe/Berlin\""))
        .transpose()?
        .unwrap_or("UTC");
    jiff::tz::TimeZone::get(name).with_context(|| format!("{name:?} is not an IANA time zone"))
}

/// The scoring and escalation rules of `[scoring]` and `[escalation]`, with a tenant's
/// `overrides` laid over them option by option.
fn scan_config(raw: &Table, overrides: Option<&Table>) -> Result<ScanConfig> {
    let layered = |name: &str| -> Table {
        let mut table = raw.get(name).and_then(Value::as_table).cloned().unwrap_or_default();
        if let Some(Value::Table(over)) = overrides.and_then(|o| o.get(name)) {
            table.extend(over.clone());
        }
        table
    };
    let scoring: ScoringConfig = Value::Table(layered("scoring")).try_into().context("[scoring]")?;
    scoring.validate().map_err(|e| anyhow::anyhow!("[scoring] {e}"))?;
    let escalation: EscalationConfig = Value::Table(layered("escalation")).try_into().context("[escalation]")?;
    escalation.validate(&scoring).map_err(|e| anyhow::anyhow!("[escalation] {e}"))?;
    Ok(ScanConfig { scoring, escalation })
}

/// Section `name` of `raw`, typed. An option that refuses its value is named the way the file
/// writes it: `[chat] default_webhook_env`, or `[chat.webhooks] "spaces/AAA"` for a table's entry.
fn section<T: for<'de> Deserialize<'de> + Default>(raw: &Table, name: &str) -> Result<T> {
    let Some(v) = raw.get(name) else { return Ok(T::default()) };
    v.clone().try_into().map_err(|e: toml::de::Error| {
        let text = e.to_string();
        let Some((message, path)) = text.trim_end().rsplit_once("\nin `") else {
            return anyhow::anyhow!("[{name}]: {text}");
        };
        let path = path.trim_end_matches('`');
        let key = |k: &str| {
            let bare = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if bare { k.to_owned() } else { format!("{k:?}") }
        };
        let option = match path.split_once('.') {
            Some((table, entry)) => format!("[{name}.{table}] {}", key(entry)),
            None => format!("[{name}] {path}"),
        };
        anyhow::anyhow!("{option}: {}", message.trim())
    })
}

/// `25` is an integer, `true` a boolean, `"x"` or `x` a string.
fn parse_env_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<()> {
    let (last, parents) = path.split_last().context("empty option name")?;
    let mut here = table;
    for key in parents {
        let entry = here.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
        here = entry.as_table_mut().with_context(|| format!("{key} is not a section"))?;
    }
    here.insert(last.clone(), value);
    Ok(())
}
