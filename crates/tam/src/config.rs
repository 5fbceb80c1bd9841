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
use tam_core::escalation::EscalationConfig;
use tam_core::outbox::RetryPolicy;
use tam_core::scoring::ScoringConfig;
use tam_core::{Priority, PriorityNames, SignedDuration, TenantId, Timestamp};
use toml::{Table, Value};

/// Options of the `[import]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// How far in the future a timestamp may be (clock skew between systems).
    pub future_tolerance_minutes: u32,
    /// Check-in interval for accounts that do not say.
    pub default_check_in_interval_days: u32,
}

impl Default for ImportConfig {
    fn default() -> ImportConfig {
        ImportConfig { future_tolerance_minutes: 15, default_check_in_interval_days: 30 }
    }
}

/// A setting that names one of a few ways of doing something: read from its config word, an
/// unknown word refused with the option and the words it takes (the value is shown: a kind is
/// never a secret). The first way listed is the default.
macro_rules! kind {
    ($(#[$doc:meta])* $name:ident, $option:literal, $($way:ident => $word:literal),+ $(,)?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub enum $name {
            $(#[doc = concat!("`", $word, "`")] $way),+
        }

        impl $name {
            const WAYS: &[($name, &str)] = &[$(($name::$way, $word)),+];

            /// The config word.
            pub fn as_str(self) -> &'static str {
                $name::WAYS.iter().find(|(w, _)| *w == self).map_or("", |(_, word)| word)
            }
        }

        impl Default for $name {
            fn default() -> $name {
                $name::WAYS[0].0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(word: String) -> std::result::Result<$name, String> {
                $name::WAYS.iter().find(|(_, w)| *w == word).map(|(way, _)| *way).ok_or_else(|| {
                    let mut words: Vec<String> = $name::WAYS.iter().map(|(_, w)| format!("{w:?}")).collect();
                    let last = words.pop().unwrap_or_default();
                    let listed = if words.is_empty() { last } else { format!("{} or {last}", words.join(", ")) };
                    format!("{} {word:?} is not {listed}", $option)
                })
            }
        }
    };
}

kind!(
    /// Where events for other agents go.
    EventBusKind, "[event_bus] kind", Local => "local", Redis => "redis"
);
kind!(
    /// Where chat alerts go.
    ChatKind, "[chat] kind", Local => "local", Webhook => "webhook", Api => "api"
);
kind!(
    /// Where customer drafts and email alerts go.
    MailKind, "[mail] kind", Local => "local", Gmail => "gmail"
);
kind!(
    /// Which Kayako API a helpdesk speaks.
    KayakoApi, "[kayako] api", Classic => "classic", Json => "json"
);
kind!(
    /// Who writes drafts.
    WriterMode, "[writer] mode", Template => "template", Llm => "llm"
);

/// Options of the `[event_bus]` section: where events for other agents go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventBusConfig {
    /// `local` (a table in the home's database, the default) or `redis` (Redis Streams).
    pub kind: EventBusKind,
    /// Where Redis is.
    pub redis_url: String,
    /// Entries kept per stream, approximately (`XADD MAXLEN ~`).
    pub maxlen: u64,
}

impl Default for EventBusConfig {
    fn default() -> EventBusConfig {
        EventBusConfig { kind: EventBusKind::Local, redis_url: "redis://127.0.0.1:6379".to_owned(), maxlen: 100_000 }
    }
}

/// Options of the `[chat]` section: where chat alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// `local` (the notification log, the default), `webhook` (Google Chat incoming webhooks)
    /// or `api` (the Chat API as a Chat app).
    pub kind: ChatKind,
    /// Space name (`spaces/AAA`) → the environment variable holding that space's webhook URL.
    pub webhooks: std::collections::HashMap<String, String>,
    /// The variable holding the webhook URL for reps without a space of their own.
    pub default_webhook_env: Option<String>,
    /// With `api`: the space of reps without a space of their own.
    pub default_space: Option<String>,
    /// With `api`: the variable holding the path of the Chat app's service-account key file.
    pub service_account_file_env: String,
    /// With `api`: the Chat API's endpoint.
    pub base_url: String,
    /// With `api`: overrides the key file's `token_uri`.
    pub token_uri: Option<String>,
    /// Least time between two messages to one space.
    pub min_interval_ms: u64,
    /// Limit on one post.
    pub timeout_ms: u64,
    /// Spaces posted to at once (each space's messages stay in order, `min_interval_ms` apart).
    pub concurrency: usize,
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            kind: Default::default(),
            webhooks: Default::default(),
            default_webhook_env: None,
            default_space: None,
            service_account_file_env: "TAM_GOOGLE_SERVICE_ACCOUNT_FILE".to_owned(),
            base_url: "https://chat.googleapis.com".to_owned(),
            token_uri: None,
            min_interval_ms: 1_000,
            timeout_ms: 10_000,
            concurrency: 8,
        }
    }
}

/// Options of the `[mail]` section: where customer drafts and email alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `local` (the home's mailbox and notification log, the default) or `gmail`.
    pub kind: MailKind,
    /// The variable holding the path of the service-account key file (domain-wide delegation).
    pub service_account_file_env: String,
    /// The mailbox alerts are sent from; the service account impersonates it.
    pub alerts_from: Option<String>,
    /// Gmail's API endpoint.
    pub base_url: String,
    /// Overrides the key file's `token_uri`.
    pub token_uri: Option<String>,
    /// Limit on one request.
    pub timeout_ms: u64,
    /// Addresses every customer draft blind-copies (the deployment's own, such as a CRM's
    /// logging inbox).
    pub bcc: Vec<String>,
    /// Gmail calls made at once; each mailbox still keeps to Gmail's per-user quota.
    pub concurrency: usize,
}

impl MailConfig {
    /// `bcc` as addresses.
    pub fn bcc(&self) -> Result<Vec<tam_core::Email>> {
        self.bcc.iter().map(|a| tam_core::Email::parse("[mail] bcc", a).map_err(Into::into)).collect()
    }
}

impl Default for MailConfig {
    fn default() -> MailConfig {
        MailConfig {
            kind: Default::default(),
            service_account_file_env: "TAM_GOOGLE_SERVICE_ACCOUNT_FILE".to_owned(),
            alerts_from: None,
            base_url: "https://gmail.googleapis.com".to_owned(),
            token_uri: None,
            timeout_ms: 30_000,
            concurrency: 64,
            bcc: Vec::new(),
        }
    }
}

/// Options of the `[jira]` section: Jira Cloud as the ticket source of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JiraSection {
    /// The tenant whose tickets these are.
    pub tenant: Option<String>,
    /// `https://<site>.atlassian.net`.
    pub base_url: String,
    /// The Atlassian account the API token belongs to.
    pub email: String,
    /// The variable holding the API token.
    pub token_env: String,
    /// The project key (`SUP`), or several separated by commas (`SUP, OPS`); the search is
    /// bounded by them.
    pub project: String,
    /// The variable holding the webhook's shared secret (`X-Hub-Signature`).
    pub webhook_secret_env: String,
    /// More JQL, and-ed to the project and the watermark (`issuetype != Epic`).
    pub jql: Option<String>,
    /// The Jira user's time zone: JQL reads dates in it.
    pub time_zone: String,
    /// Issues per search page.
    pub page_size: u32,
    /// Limit on one call.
    pub timeout_ms: u64,
    /// Which field names the account.
    pub account: tam_connectors::jira::AccountRule,
    /// Status names and the ticket status each means.
    pub statuses: std::collections::BTreeMap<String, String>,
    /// Status categories and the ticket status each means.
    pub categories: std::collections::BTreeMap<String, String>,
}

impl Default for JiraSection {
    fn default() -> JiraSection {
        let mapping = tam_connectors::jira::JiraMapping::default();
        JiraSection {
            tenant: None,
            base_url: String::new(),
            email: String::new(),
            token_env: "JIRA_API_TOKEN".to_owned(),
            project: String::new(),
            webhook_secret_env: "JIRA_WEBHOOK_SECRET".to_owned(),
            jql: None,
            time_zone: "UTC".to_owned(),
            page_size: 100,
            timeout_ms: 30_000,
            account: mapping.account,
            statuses: mapping.statuses,
            categories: mapping.categories,
        }
    }
}

impl JiraSection {
    /// The mapping of issues to tickets.
    pub fn mapping(&self) -> tam_connectors::jira::JiraMapping {
        tam_connectors::jira::JiraMapping {
            account: self.account.clone(),
            statuses: self.statuses.clone(),
            categories: self.categories.clone(),
        }
    }

    /// The time zone JQL dates are read in.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .with_context(|| format!("{:?} is not an IANA time zone", self.time_zone))
    }
}

/// Options of the `[api]` section: the HTTP API `tam serve` listens with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// `host:port` to listen on; none: no HTTP API.
    pub listen: Option<String>,
    /// Tenant id → the variable holding its bearer token. A token sees only its tenant.
    pub tokens: std::collections::BTreeMap<String, String>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Heartbeat posts a tenant may make per second on average.
    pub heartbeats_per_second: f64,
    /// How many above the average a tenant may post at once.
    pub heartbeat_burst: u32,
    /// Tenant id → the variable holding the secret its release webhook is signed with.
    pub release_secrets: std::collections::BTreeMap<String, String>,
    /// The variable holding a token that sees every tenant's `/metrics` (a scraper's).
    pub metrics_token_env: Option<String>,
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            listen: None,
            tokens: std::collections::BTreeMap::new(),
            max_body_bytes: 256 * 1024,
            heartbeats_per_second: 500.0,
            heartbeat_burst: 1_000,
            release_secrets: std::collections::BTreeMap::new(),
            metrics_token_env: None,
        }
    }
}

/// Options of the `[kayako]` section: Kayako (Classic or the JSON API) as a ticket source.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KayakoSection {
    /// The tenant whose tickets these are.
    pub tenant: Option<String>,
    /// `classic` (XML, signed) or `json` (kayako.com API v1).
    pub api: KayakoApi,
    /// Classic: `https://<helpdesk>/api/index.php`; JSON: `https://<subdomain>.kayako.com`.
    pub base_url: String,
    /// Classic: the variable holding the API key.
    pub api_key_env: String,
    /// Classic: the variable holding the secret key.
    pub secret_env: String,
    /// Classic: the department ids to list, comma-separated.
    pub departments: String,
    /// JSON: the agent's email.
    pub email: String,
    /// JSON: the variable holding the agent's password.
    pub password_env: String,
    /// Tickets per page.
    pub page_size: u32,
    /// Limit on one call.
    pub timeout_ms: u64,
    /// Where the account comes from.
    pub account_field: String,
    /// Values of that field and the account id each stands for.
    pub accounts: std::collections::BTreeMap<String, String>,
    /// Status titles and the ticket status each means.
    pub statuses: std::collections::BTreeMap<String, String>,
    /// The priority of a ticket that has none.
    pub missing_priority: String,
    /// Ticket types (Classic type ids, JSON type labels or ids) and the kind each means.
    pub types: std::collections::BTreeMap<String, String>,
}

impl Default for KayakoSection {
    fn default() -> KayakoSection {
        let m = tam_connectors::kayako::KayakoMapping::default();
        KayakoSection {
            tenant: None,
            api: KayakoApi::Classic,
            base_url: String::new(),
            api_key_env: "KAYAKO_API_KEY".to_owned(),
            secret_env: "KAYAKO_SECRET_KEY".to_owned(),
            departments: String::new(),
            email: String::new(),
            password_env: "KAYAKO_PASSWORD".to_owned(),
            page_size: 100,
            timeout_ms: 30_000,
            account_field: m.account_field,
            accounts: m.accounts,
            statuses: m.statuses,
            missing_priority: m.missing_priority,
            types: m.types,
        }
    }
}

impl KayakoSection {
    /// The mapping of Kayako tickets to tickets.
    pub fn mapping(&self) -> tam_connectors::kayako::KayakoMapping {
        tam_connectors::kayako::KayakoMapping {
            account_field: self.account_field.clone(),
            accounts: self.accounts.clone(),
            statuses: self.statuses.clone(),
            missing_priority: self.missing_priority.clone(),
            types: self.types.clone(),
        }
    }
}

/// Options of the `[notion]` section: Notion as the CRM of one tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotionSection {
    /// The tenant whose accounts live in these databases.
    pub tenant: Option<String>,
    /// The variable holding the integration's token.
    pub token_env: String,
    /// The accounts database id.
    pub accounts_database: Option<String>,
    /// The "Support Tickets" database id.
    pub tickets_database: Option<String>,
    /// Notion's API endpoint.
    pub base_url: String,
    /// `Notion-Version`.
    pub version: String,
    /// Average calls a second, shared by every call.
    pub requests_per_second: f64,
    /// Limit on one call.
    pub timeout_ms: u64,
    /// Property names of the accounts database.
    pub accounts: tam_connectors::notion::records::AccountProperties,
    /// Property names of the tickets database.
    pub tickets: tam_connectors::notion::records::TicketProperties,
    /// Health property names on the account pages.
    pub health: tam_connectors::notion::crm::HealthProperties,
}

impl Default for NotionSection {
    fn default() -> NotionSection {
        NotionSection {
            tenant: None,
            token_env: "NOTION_TOKEN".to_owned(),
            accounts_database: None,
            tickets_database: None,
            base_url: "https://api.notion.com".to_owned(),
            version: tam_connectors::notion::VERSION.to_owned(),
            requests_per_second: 3.0,
            timeout_ms: 30_000,
            accounts: Default::default(),
            tickets: Default::default(),
            health: Default::default(),
        }
    }
}

/// Options of the `[writer]` section: who writes drafts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WriterConfig {
    /// `template` (offline, the default) or `llm`.
    pub mode: WriterMode,
    /// Retries of one model on a retryable failure before the next model.
    pub retries_per_model: u32,
    /// First wait between retries; doubled each time (a provider's `Retry-After` wins).
    pub retry_base_ms: u64,
    /// Calls in flight per provider at most.
    pub concurrency_per_provider: usize,
    /// The models, in order of preference.
    pub models: Vec<tam_writer::llm::ModelConfig>,
}

impl Default for WriterConfig {
    fn default() -> WriterConfig {
        WriterConfig {
            mode: WriterMode::Template,
            retries_per_model: 2,
            retry_base_ms: 1_000,
            concurrency_per_provider: 3,
            models: Vec::new(),
        }
    }
}

/// The whole configuration, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    raw: Table,
    /// `[import]`.
    pub import: ImportConfig,
    /// `[priorities]` over the built-in source names.
    pub priorities: PriorityNames,
    /// `[outbox]`: how deliveries are retried.
    pub retry: RetryPolicy,
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
];
const TENANT_SECTIONS: &[&str] = &["scoring", "escalation", "time_zone"];

/// Checks that an option meant to name an environment variable does (`A-Z`, `0-9`, `_`). A
/// value that does not is often the secret itself pasted in the wrong place, so the error names
/// the option and never repeats the value.
fn env_var_name(origin: &str, place: &str, value: &str) -> Result<()> {
    if !value.is_empty() && value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Ok(());
    }
    bail!(
        "config {origin}: {place} must name an environment variable (A-Z, 0-9, _) that holds the secret; \
         the value given is not one and is not shown, since it may be the secret itself"
    )
}

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
        let mut raw: Table = match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("config {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read config {}", path.display())),
        };
        for (key, value) in env {
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
        Config::from_table(raw, path)
    }

    fn from_table(raw: Table, path: &Path) -> Result<Config> {
        let origin = path.display();
        for key in raw.keys() {
            if !SECTIONS.contains(&key.as_str()) {
                bail!("config {origin}: unknown section [{key}] (known: {})", SECTIONS.join(", "));
            }
        }
        let import: ImportConfig = section(&raw, "import").with_context(|| format!("config {origin}: [import]"))?;
        let retry: RetryPolicy = section(&raw, "outbox").with_context(|| format!("config {origin}: [outbox]"))?;
        if retry.max_attempts == 0 {
            bail!("config {origin}: [outbox] max_attempts must be at least 1");
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
        let writer: WriterConfig = section(&raw, "writer").with_context(|| format!("config {origin}: [writer]"))?;
        for m in &writer.models {
            let label = m.label();
            if m.timeout_ms == 0 || m.max_tokens == 0 {
                bail!("config {origin}: [[writer.models]] {label}: timeout_ms and max_tokens must be at least 1");
            }
            match &m.api_key_env {
                // The name of a variable, never a key pasted in by mistake (it would be echoed).
                Some(var)
                    if !var.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                        || var.is_empty() =>
                {
                    bail!(
                        "config {origin}: [[writer.models]] {label}: api_key_env must name an environment variable (A-Z, 0-9, _), not hold a key"
                    )
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
        let event_bus: EventBusConfig =
            section(&raw, "event_bus").with_context(|| format!("config {origin}: [event_bus]"))?;
        let chat: ChatConfig = section(&raw, "chat").with_context(|| format!("config {origin}: [chat]"))?;
        let origin_text = origin.to_string();
        let env_name = |place: &str, value: &str| env_var_name(&origin_text, place, value);
        for (space, var) in &chat.webhooks {
            env_name(&format!("[chat.webhooks] {space:?}"), var)?;
        }
        if let Some(var) = &chat.default_webhook_env {
            env_name("[chat] default_webhook_env", var)?;
        }
        if let Some(space) = chat.default_space.as_deref().filter(|s| !s.starts_with("spaces/")) {
            bail!("config {origin}: [chat] default_space {space:?} is not a space name (spaces/...)");
        }
        env_name("[chat] service_account_file_env", &chat.service_account_file_env)?;
        let mail: MailConfig = section(&raw, "mail").with_context(|| format!("config {origin}: [mail]"))?;
        match mail.kind {
            MailKind::Local => {}
            MailKind::Gmail => {
                let from = mail.alerts_from.as_deref().with_context(|| {
                    format!("config {origin}: [mail] kind = \"gmail\" needs alerts_from, the mailbox alerts come from")
                })?;
                tam_core::Email::parse("[mail] alerts_from", from).with_context(|| format!("config {origin}"))?;
                env_name("[mail] service_account_file_env", &mail.service_account_file_env)?;
            }
        }
        mail.bcc().with_context(|| format!("config {origin}"))?;
        let notion: NotionSection = section(&raw, "notion").with_context(|| format!("config {origin}: [notion]"))?;
        env_name("[notion] token_env", &notion.token_env)?;
        if notion.requests_per_second.is_nan() || notion.requests_per_second <= 0.0 {
            bail!("config {origin}: [notion] requests_per_second must be above 0");
        }
        let jira: JiraSection = section(&raw, "jira").with_context(|| format!("config {origin}: [jira]"))?;
        env_name("[jira] token_env", &jira.token_env)?;
        env_name("[jira] webhook_secret_env", &jira.webhook_secret_env)?;
        jira.zone().with_context(|| format!("config {origin}: [jira] time_zone"))?;
        let kayako: KayakoSection = section(&raw, "kayako").with_context(|| format!("config {origin}: [kayako]"))?;
        env_name("[kayako] api_key_env", &kayako.api_key_env)?;
        env_name("[kayako] secret_env", &kayako.secret_env)?;
        env_name("[kayako] password_env", &kayako.password_env)?;
        let api: ApiSection = section(&raw, "api").with_context(|| format!("config {origin}: [api]"))?;
        for (section, entries) in [("[api.tokens]", &api.tokens), ("[api.release_secrets]", &api.release_secrets)] {
            for (tenant, var) in entries {
                TenantId::parse(section, tenant).with_context(|| format!("config {origin}"))?;
                env_name(&format!("{section} {tenant}"), var)?;
            }
        }
        if let Some(var) = &api.metrics_token_env {
            env_name("[api] metrics_token_env", var)?;
        }
        let config =
            Config { raw, import, priorities, retry, writer, event_bus, chat, mail, notion, jira, kayako, api };
        config.scan_config(None).with_context(|| format!("config {origin}"))?;
        if let Some(tenants) = config.raw.get("tenants") {
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
                config.scan_config(Some(&tenant)).with_context(|| format!("config {origin}: [tenants.{id}]"))?;
                config.tenant_zone(&tenant).with_context(|| format!("config {origin}: [tenants.{id}] time_zone"))?;
            }
        }
        Ok(config)
    }

    /// The tenant's IANA time zone (`[tenants.<id>] time_zone`; UTC by default): its
    /// schedules run on its clock.
    pub fn tenant_zone(&self, tenant: &TenantId) -> Result<jiff::tz::TimeZone> {
        let name = self
            .raw
            .get("tenants")
            .and_then(|t| t.get(tenant.as_str()))
            .and_then(|t| t.get("time_zone"))
            .map(|z| z.as_str().context("time_zone must be a string like \"Europe/Berlin\""))
            .transpose()?
            .unwrap_or("UTC");
        jiff::tz::TimeZone::get(name).with_context(|| format!("{name:?} is not an IANA time zone"))
    }

    /// The scoring and escalation rules for a tenant (or the global ones).
    pub fn scan_config(&self, tenant: Option<&TenantId>) -> Result<ScanConfig> {
        let overrides = tenant
            .and_then(|t| self.raw.get("tenants")?.as_table()?.get(t.as_str())?.as_table())
            .cloned()
            .unwrap_or_default();
        let layered = |name: &str| -> Table {
            let mut table = self.raw.get(name).and_then(Value::as_table).cloned().unwrap_or_default();
            if let Some(Value::Table(over)) = overrides.get(name) {
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

    /// Parser settings for an import that read the clock at `now`.
    pub fn import_options(&self, now: Timestamp) -> ImportOptions {
        ImportOptions {
            priority_names: self.priorities.clone(),
            now,
            future_tolerance: SignedDuration::from_mins(i64::from(self.import.future_tolerance_minutes)),
            default_check_in_interval_days: self.import.default_check_in_interval_days,
        }
    }
}

fn section<T: for<'de> Deserialize<'de> + Default>(raw: &Table, name: &str) -> Result<T> {
    match raw.get(name) {
        None => Ok(T::default()),
        Some(v) => Ok(v.clone().try_into()?),
    }
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

/// The file `tam init` writes: every option, commented out at its default.
pub fn default_file() -> String {
    let s = ScoringConfig::default();
    let e = EscalationConfig::default();
    let i = ImportConfig::default();
    let r = RetryPolicy::default();
    format!(
        r#"# tam configuration. Every option is shown at its default, commented out.
# Environment variables override the file: TAM_SCORING__AGED_P1_P2_POINTS=25 sets
# [scoring] aged_p1_p2_points. Secrets never go in this file.

[scoring]
# An open P1/P2 ticket older than this (strictly) is aged.
# aged_p1_p2_after_hours = {}
# aged_p1_p2_points = {}
# aged_p1_p2_cap = {}
# Open tickets beyond this many cost open_volume_points each.
# open_volume_free_tickets = {}
# open_volume_points = {}
# open_volume_cap = {}
# Silence strictly longer than these costs the points. Never monitored = no deduction.
# heartbeat_silence_after_hours = {}
# heartbeat_silence_points = {}
# heartbeat_silence_severe_after_hours = {}
# heartbeat_silence_severe_points = {}
# heartbeat_silence_cap = {}
# Status bands: score >= green_min_score is green, >= amber_min_score amber, else red.
# green_min_score = {}
# amber_min_score = {}
# Trend: against the snapshot trend_lookback_days earlier (± trend_tolerance_days).
# trend_lookback_days = {}
# trend_tolerance_days = {}
# trend_min_delta = {}

[escalation]
# score_below = {}
# cool_down_days = {}
# worsen_points = {}
# alert_budget_per_rep = {}
# A digest lists the rep's worst accounts and counts the rest by status and reason.
# digest_top_accounts = {}

[import]
# future_tolerance_minutes = {}
# default_check_in_interval_days = {}

[outbox]
# Deliveries (drafts, CRM, events, alerts) are retried with exponential backoff, then left
# `failed` for `tam outbox retry`.
# max_attempts = {}
# base_delay_ms = {}
# max_delay_ms = {}

[writer]
# Who writes drafts: "template" (offline, no network) or "llm" (the models below, in order,
# falling back to the template when every model fails or answers badly twice).
# mode = "template"
# retries_per_model = 2
# retry_base_ms = 1000
# concurrency_per_provider = 3
#
# [[writer.models]]
#   provider = "anthropic"            # or "openai", "openai_compatible"
#   model = "claude-sonnet-4-5"
#   api_key_env = "ANTHROPIC_API_KEY" # the variable's name; the key never goes in this file
#   base_url = "https://api.anthropic.com"
#   timeout_ms = 60000
#   max_tokens = 2000

[event_bus]
# Where events for other agents (the Sales Agent) go: "local" (a table here) or "redis"
# (Redis Streams, one stream per tenant and kind: tam:<tenant>:escalations, ...).
# kind = "local"
# redis_url = "redis://127.0.0.1:6379"
# maxlen = 100000

[chat]
# Where chat alerts go: "local" (the notification log), "webhook" (Google Chat incoming
# webhooks; each URL is a secret, so the config names the variable that holds it) or "api"
# (the Chat API as a Chat app that is a member of each rep's space; the variable named by
# service_account_file_env holds the path of the app's service-account key file).
# kind = "local"
# default_webhook_env = "TAM_CHAT_WEBHOOK"
# default_space = "spaces/AAAA"
# service_account_file_env = "TAM_GOOGLE_SERVICE_ACCOUNT_FILE"
# base_url = "https://chat.googleapis.com"
# min_interval_ms = 1000
# timeout_ms = 10000
# concurrency = 8               # spaces posted to at once; one space's messages stay in order
# [chat.webhooks]
#   "spaces/AAAA" = "TAM_CHAT_WEBHOOK_SUPPORT"

[mail]
# Where customer drafts and email alerts go: "local" (drafts/ and the notification log in
# this home) or "gmail" (drafts in each rep's mailbox, alerts sent from alerts_from to the
# rep only). Gmail uses a service account with domain-wide delegation; the variable named
# here holds the path of its key file.
# kind = "local"
# service_account_file_env = "TAM_GOOGLE_SERVICE_ACCOUNT_FILE"
# alerts_from = "tam-alerts@vendor.example"
# base_url = "https://gmail.googleapis.com"
# timeout_ms = 30000
# concurrency = 64              # Gmail calls at once; each mailbox keeps to 250 quota units/s
# bcc = ["crm-log@vendor.example"]  # blind-copied on every customer draft (your own addresses)

[notion]
# Notion as the CRM of one tenant: `tam sync notion` reads its accounts and tickets (only the
# pages edited since the last sync). The token is a secret: the config names its variable.
# tenant = "acme"
# token_env = "NOTION_TOKEN"
# accounts_database = "..."
# tickets_database = "..."
# base_url = "https://api.notion.com"
# version = "2022-06-28"
# requests_per_second = 3.0
# timeout_ms = 30000
# [notion.accounts]          the property names, as `tam notion init` creates them
#   name = "Name"
#   rep_email = "Rep Email"
#   last_edited_by = "Last edited by"  of type Last edited by: syncs skip pages tam edited
#                                      last (its writes' answers are imported instead); "" off
# [notion.tickets]
#   account = "Account"
#   priority = "Priority"
#   last_edited_by = "Last edited by"
# [notion.health]            written back to the account page by scans
#   score = "Health Score"
#   escalated = "Escalated"
#   profile = "TAM Profile"  the relation to the relationship profile sub-page

[jira]
# Jira Cloud as the ticket source of one tenant: `tam sync jira` asks for the project's issues
# updated since the last sync. Basic auth with an API token; the config names its variable.
# tenant = "acme"
# base_url = "https://your-site.atlassian.net"
# email = "tam@vendor.example"
# token_env = "JIRA_API_TOKEN"
# project = "SUP"            # or several: "SUP, OPS"
# webhook_secret_env = "JIRA_WEBHOOK_SECRET"  # the secret webhooks are signed with
# jql = "issuetype != Epic"  # more JQL, and-ed to the project and the watermark
# time_zone = "UTC"  # the Jira user's zone: JQL reads dates in it
# page_size = 100
# timeout_ms = 30000
# [jira.account]             which field names the account
#   field = "labels"         or "components", or a custom field (customfield_10002)
#   prefix = "account:"      for labels and components: account:acme means acme
# [jira.account.accounts]    a field value and the account id it stands for
#   "Acme Corp" = "acme"
# [jira.statuses]            status names to open/pending/resolved/closed, before the category
#   "Waiting for customer" = "pending"
# [jira.categories]          status categories (new, indeterminate, done)
#   done = "resolved"

[kayako]
# Kayako as the ticket source of one tenant: `tam sync kayako` reads the tickets with activity
# since the last sync. api = "classic" (XML, every request signed with the API key and secret)
# or "json" (kayako.com API v1, the agent's email and password). Secrets stay in variables.
# tenant = "acme"
# api = "classic"
# base_url = "https://helpdesk.vendor.example/api/index.php"
# api_key_env = "KAYAKO_API_KEY"
# secret_env = "KAYAKO_SECRET_KEY"
# departments = "1,2"  # Classic: the department ids to list
# email = "tam@vendor.example"
# password_env = "KAYAKO_PASSWORD"
# page_size = 100
# timeout_ms = 30000
# account_field = "userorganization"  # Classic: userorganization(id); JSON: a custom field key,
#                                      # organization (name), organization_id or requester; several,
#                                      # comma-separated, are tried in order
# missing_priority = "P4"  # Kayako allows tickets without a priority
# [kayako.accounts]          a field value and the account id it stands for
#   "Acme Corp" = "acme"
# [kayako.types]             ticket types and their kind (feature requests become opportunities):
#   "4" = "feature_request"  # Classic type ids are per installation; JSON labels such as
#                            # "Feature request" are read by name unless listed here
# [kayako.statuses]          status titles to open/pending/resolved/closed
#   "On Hold" = "pending"

[priorities]
# Source priority names mapped to P1..P4, on top of the built-in Jira and Kayako names
# (Highest/Blocker/Critical/Urgent = P1, High/Major = P2, Medium/Normal = P3,
# Low/Lowest/Minor/Trivial = P4).
# "Sev 1" = "P1"

[api]
# The HTTP API of `tam serve` (none unless listen is set). Each tenant's bearer token is in the
# variable named here; a token sees only its own tenant.
# listen = "127.0.0.1:8787"
# max_body_bytes = 262144
# heartbeats_per_second = 500.0
# heartbeat_burst = 1000
# metrics_token_env = "TAM_METRICS_TOKEN"  # sees every tenant's /metrics; a tenant's token sees its own
# [api.tokens]
#   acme = "TAM_API_TOKEN_ACME"
# [api.release_secrets]        POST /v1/webhooks/release, signed X-Hub-Signature: sha256=...
#   acme = "TAM_RELEASE_SECRET_ACME"

# Per-tenant overrides, option by option:
# [tenants.acme]
# time_zone = "Europe/Berlin"   # `tam serve` runs the tenant's jobs on its clock (UTC by default)
# [tenants.acme.scoring]
# aged_p1_p2_after_hours = 48
"#,
        s.aged_p1_p2_after_hours,
        s.aged_p1_p2_points,
        s.aged_p1_p2_cap,
        s.open_volume_free_tickets,
        s.open_volume_points,
        s.open_volume_cap,
        s.heartbeat_silence_after_hours,
        s.heartbeat_silence_points,
        s.heartbeat_silence_severe_after_hours,
        s.heartbeat_silence_severe_points,
        s.heartbeat_silence_cap,
        s.green_min_score,
        s.amber_min_score,
        s.trend_lookback_days,
        s.trend_tolerance_days,
        s.trend_min_delta,
        e.score_below,
        e.cool_down_days,
        e.worsen_points,
        e.alert_budget_per_rep,
        e.digest_top_accounts,
        i.future_tolerance_minutes,
        i.default_check_in_interval_days,
        r.max_attempts,
        r.base_delay_ms,
        r.max_delay_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tam.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path, env.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn the_default_file_uncommented_is_the_defaults() {
        // Option lines are `# key = value` with a lower-case key; prose starts with a capital.
        let is_option = |rest: &str| {
            rest.split_once(" = ")
                .is_some_and(|(key, _)| key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        };
        let uncommented: String = default_file()
            .lines()
            .take_while(|l| !l.starts_with("# Per-tenant"))
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if is_option(rest) => rest,
                _ if l.starts_with('#') => "",
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config = load(&uncommented, &[]).unwrap();
        let scan = config.scan_config(None).unwrap();
        assert_eq!(scan.scoring, ScoringConfig::default());
        assert_eq!(scan.escalation, EscalationConfig::default());
        assert_eq!(config.retry, RetryPolicy::default());
        assert!(uncommented.contains("aged_p1_p2_cap = 60"));
        // The sections written as literals: each option that has a default shows it. (The
        // others, such as a tenant or a database id, show an example.)
        let d = load("", &[]).unwrap();
        let mut differ = Vec::new();
        macro_rules! same {
            ($($section:ident . $field:ident),+ $(,)?) => {$(
                let (shown, default) = (format!("{:?}", config.$section.$field), format!("{:?}", d.$section.$field));
                if shown != default {
                    differ.push(format!("[{}] {}: the file shows {shown}, the default is {default}",
                        stringify!($section), stringify!($field)));
                }
            )+};
        }
        same!(
            import.future_tolerance_minutes,
            import.default_check_in_interval_days,
            writer.mode,
            writer.retries_per_model,
            writer.retry_base_ms,
            writer.concurrency_per_provider,
            event_bus.kind,
            event_bus.redis_url,
            event_bus.maxlen,
            chat.kind,
            chat.service_account_file_env,
            chat.base_url,
            chat.min_interval_ms,
            chat.timeout_ms,
            chat.concurrency,
            mail.kind,
            mail.service_account_file_env,
            mail.base_url,
            mail.timeout_ms,
            mail.concurrency,
            notion.token_env,
            notion.base_url,
            notion.version,
            notion.requests_per_second,
            notion.timeout_ms,
            jira.token_env,
            jira.webhook_secret_env,
            jira.time_zone,
            jira.page_size,
            jira.timeout_ms,
            kayako.api,
            kayako.api_key_env,
            kayako.secret_env,
            kayako.password_env,
            kayako.page_size,
            kayako.timeout_ms,
            kayako.account_field,
            kayako.missing_priority,
            api.max_body_bytes,
            api.heartbeats_per_second,
            api.heartbeat_burst,
        );
        assert!(differ.is_empty(), "the default file disagrees with the defaults:\n{}", differ.join("\n"));
    }

    #[test]
    fn tenants_override_option_by_option_and_env_wins() {
        let config = load(
            "[scoring]\naged_p1_p2_points = 25\n[tenants.acme.scoring]\naged_p1_p2_cap = 40\n[priorities]\n\"Sev 1\" = \"P1\"\n",
            &[
                ("TAM_ESCALATION__COOL_DOWN_DAYS", "3"),
                ("TAM_HOME", "/ignored"),
                ("TAM_TENANTS__Acme__ESCALATION__WORSEN_POINTS", "4"),
            ],
        )
        .unwrap();
        let acme = config.scan_config(Some(&TenantId::parse("t", "acme").unwrap())).unwrap();
        assert_eq!((acme.scoring.aged_p1_p2_points, acme.scoring.aged_p1_p2_cap), (25, 40));
        let other = config.scan_config(Some(&TenantId::parse("t", "other").unwrap())).unwrap();
        assert_eq!((other.scoring.aged_p1_p2_points, other.scoring.aged_p1_p2_cap), (25, 60));
        assert_eq!(other.escalation.cool_down_days, 3);
        assert_eq!(config.priorities.get("sev 1"), Some(Priority::P1));
        let upper = config.scan_config(Some(&TenantId::parse("t", "Acme").unwrap())).unwrap();
        assert_eq!(upper.escalation.worsen_points, 4, "tenant ids keep their case");
    }

    #[test]
    fn a_secret_pasted_where_a_variable_name_belongs_is_named_by_its_option_and_never_shown() {
        let secret = "https://chat.googleapis.com/v1/spaces/AAA/messages?key=KEY123&token=TOK456";
        let cases = [
            ("[chat]\nkind = \"webhook\"\ndefault_webhook_env = \"{s}\"\n", "[chat] default_webhook_env"),
            ("[chat.webhooks]\n\"spaces/AAA\" = \"{s}\"\n", "[chat.webhooks] \"spaces/AAA\""),
            ("[notion]\ntoken_env = \"{s}\"\n", "[notion] token_env"),
            ("[jira]\ntoken_env = \"{s}\"\n", "[jira] token_env"),
            ("[jira]\nwebhook_secret_env = \"{s}\"\n", "[jira] webhook_secret_env"),
            ("[kayako]\nsecret_env = \"{s}\"\n", "[kayako] secret_env"),
            ("[api.tokens]\nacme = \"{s}\"\n", "[api.tokens] acme"),
            ("[api.release_secrets]\nacme = \"{s}\"\n", "[api.release_secrets] acme"),
            ("[api]\nmetrics_token_env = \"{s}\"\n", "[api] metrics_token_env"),
        ];
        for (text, option) in cases {
            let error = format!("{:#}", load(&text.replace("{s}", secret), &[]).unwrap_err());
            assert!(error.contains(option) && error.contains("must name an environment variable"), "{error}");
            assert!(!error.contains("KEY123") && !error.contains("TOK456"), "the secret is never shown: {error}");
        }
    }

    #[test]
    fn each_kind_reads_its_words_and_names_the_others_when_given_a_wrong_one() {
        let c =
            load("[event_bus]\nkind = \"redis\"\n[chat]\nkind = \"webhook\"\n[kayako]\napi = \"json\"\n", &[]).unwrap();
        assert_eq!(
            (c.event_bus.kind, c.chat.kind, c.kayako.api),
            (EventBusKind::Redis, ChatKind::Webhook, KayakoApi::Json)
        );
        let d = load("", &[]).unwrap();
        assert_eq!((d.mail.kind, d.writer.mode, d.chat.kind), (MailKind::Local, WriterMode::Template, ChatKind::Local));
        let env = load("", &[("TAM_CHAT__KIND", "api")]).unwrap();
        assert_eq!(env.chat.kind, ChatKind::Api);
        let err = format!("{:#}", load("[chat]\nkind = \"teams\"\n", &[]).unwrap_err());
        assert!(err.contains(r#"[chat] kind "teams" is not "local", "webhook" or "api""#), "{err}");
        assert_eq!(ChatKind::Webhook.to_string(), "webhook");
    }

    #[test]
    fn mistakes_name_the_option() {
        let err = |text: &str| format!("{:#}", load(text, &[]).unwrap_err());
        assert!(err("[scoring]\naged_p1_p2_pionts = 1\n").contains("unknown field `aged_p1_p2_pionts`"));
        assert!(err("[scoring]\namber_min_score = 90\n").contains("amber_min_score"));
        assert!(err("[scorng]\n").contains("unknown section [scorng]"));
        assert!(err("[priorities]\nUrgent = \"P9\"\n").contains("\"Urgent\""));
        assert!(err("[tenants.acme.scoring]\ngreen_min_score = 101\n").contains("[tenants.acme]"));
        assert!(
            err("[tenants.acme.scorng]\naged_p1_p2_points = 1\n")
                .contains("[tenants.acme]: unknown section \"scorng\"")
        );
        assert!(err("[tenants.acme]\naged_p1_p2_points = 1\n").contains("unknown section \"aged_p1_p2_points\""));
        assert!(err("[escalation]\nscore_below = 80\n").contains("score_below"));
        assert!(err("[mail]\nkind = \"gmail\"\n").contains("needs alerts_from"));
        assert!(err("[mail]\nkind = \"gmail\"\nalerts_from = \"alerts\"\n").contains("[mail] alerts_from"));
        assert!(err("[chat]\nkind = \"api\"\ndefault_space = \"AAA\"\n").contains("not a space name"));
        assert!(err("[mail]\nkind = \"smtp\"\n").contains("[mail] kind \"smtp\""));
        let path = "[mail]\nkind = \"gmail\"\nalerts_from = \"a@v.example\"\nservice_account_file_env = \"/k.json\"\n";
        assert!(err(path).contains("must name an environment variable"));
        let env = load("", &[("TAM_SCORNG__X", "1")]).unwrap_err().to_string();
        assert_eq!(
            env,
            "environment variable TAM_SCORNG__X: unknown section \"scorng\" (known: scoring, escalation, import, outbox, priorities, tenants, writer, event_bus, chat, mail, notion, jira, kayako, api)"
        );
    }
}
