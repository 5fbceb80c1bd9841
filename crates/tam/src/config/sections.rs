//! The sections of `tam.toml`, each with its defaults, and the kinds they choose between.

use super::*;

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

/// The name of an environment variable that holds a secret (`A-Z`, `0-9`, `_`). It checks
/// itself as it is read: a value that is not a name is often the secret itself, pasted in the
/// wrong place, so the refusal never repeats it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct EnvVarName(String);

impl From<EnvVarName> for String {
    fn from(name: EnvVarName) -> String {
        name.0
    }
}

impl AsRef<std::ffi::OsStr> for EnvVarName {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_ref()
    }
}

/// What [`EnvVarName`] says of a value that is not a name; `section` puts the option in front.
const NOT_A_NAME: &str = "must name an environment variable (A-Z, 0-9, _) that holds the secret; \
     the value given is not one and is not shown, since it may be the secret itself";

impl EnvVarName {
    /// A name known to be one (the defaults).
    pub(super) fn known(name: &'static str) -> EnvVarName {
        EnvVarName::try_from(name.to_owned()).expect("a default variable name is a name")
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The variable's value, when it is set and not empty.
    pub fn value(&self) -> Option<String> {
        std::env::var(&self.0).ok().filter(|v| !v.is_empty())
    }
}

impl TryFrom<String> for EnvVarName {
    type Error = &'static str;
    fn try_from(name: String) -> std::result::Result<EnvVarName, &'static str> {
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if valid { Ok(EnvVarName(name)) } else { Err(NOT_A_NAME) }
    }
}

impl std::fmt::Display for EnvVarName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    /// The scope reps' Sent mail is read with, to learn what became of each Gmail draft.
    MailReadScope, "[mail] read_scope", Readonly => "gmail.readonly", Metadata => "gmail.metadata"
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
    pub webhooks: std::collections::HashMap<String, EnvVarName>,
    /// The variable holding the webhook URL for reps without a space of their own.
    pub default_webhook_env: Option<EnvVarName>,
    /// With `api`: the space of reps without a space of their own.
    pub default_space: Option<String>,
    /// With `api`: the variable holding the path of the Chat app's service-account key file.
    pub service_account_file_env: EnvVarName,
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
            service_account_file_env: EnvVarName::known("TAM_GOOGLE_SERVICE_ACCOUNT_FILE"),
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
    pub service_account_file_env: EnvVarName,
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
    /// How Sent mail is read to learn what became of each draft: `gmail.readonly` measures a
    /// rep's edits on the whole text and finds a draft sent under a new subject;
    /// `gmail.metadata` sees the first words only.
    pub read_scope: MailReadScope,
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
            service_account_file_env: EnvVarName::known("TAM_GOOGLE_SERVICE_ACCOUNT_FILE"),
            alerts_from: None,
            base_url: "https://gmail.googleapis.com".to_owned(),
            token_uri: None,
            timeout_ms: 30_000,
            concurrency: 64,
            bcc: Vec::new(),
            read_scope: MailReadScope::default(),
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
    pub token_env: EnvVarName,
    /// The project key (`SUP`), or several separated by commas (`SUP, OPS`); the search is
    /// bounded by them.
    pub project: String,
    /// The variable holding the webhook's shared secret (`X-Hub-Signature`).
    pub webhook_secret_env: EnvVarName,
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
    /// The label that marks an issue as a real escalation of its account (for `tam backtest`).
    pub escalation_label: Option<String>,
}

impl Default for JiraSection {
    fn default() -> JiraSection {
        let mapping = tam_connectors::jira::JiraMapping::default();
        JiraSection {
            tenant: None,
            base_url: String::new(),
            email: String::new(),
            token_env: EnvVarName::known("JIRA_API_TOKEN"),
            project: String::new(),
            webhook_secret_env: EnvVarName::known("JIRA_WEBHOOK_SECRET"),
            jql: None,
            time_zone: "UTC".to_owned(),
            page_size: 100,
            timeout_ms: 30_000,
            account: mapping.account,
            statuses: mapping.statuses,
            categories: mapping.categories,
            escalation_label: mapping.escalation_label,
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
            escalation_label: self.escalation_label.clone(),
        }
    }

    /// The time zone JQL dates are read in.
    pub fn zone(&self) -> Result<jiff::tz::TimeZone> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .with_context(|| format!("{:?} is not an IANA time zone", self.time_zone))
    }
}

/// Options of the `[store]` section: where the store is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// A PostgreSQL database shared by `tam serve` replicas, `postgres://user@host:port/db`;
    /// none: the home's SQLite file. `TAM_DATABASE_URL` wins over it.
    pub url: Option<String>,
}

/// Options of the `[tickets]` section: where people open a ticket.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketsSection {
    /// A ticket's page, with `{id}` where its id goes (`https://support.example.com/t/{id}`):
    /// the dashboard and drafts link ticket ids to it.
    pub url: Option<String>,
}

impl TicketsSection {
    /// The links `url` makes; none when unset. The config was checked when it was read.
    pub fn links(&self) -> Option<tam_core::url::TicketLinks> {
        self.url.as_deref().and_then(|url| tam_core::url::TicketLinks::parse(url).ok())
    }
}

/// Options of the `[api]` section: the HTTP API `tam serve` listens with.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// `host:port` to listen on; none: no HTTP API.
    pub listen: Option<String>,
    /// The address clients reach the API at (behind a proxy, say), for links and the agent
    /// card; none: `http://` and `listen`.
    pub public_url: Option<String>,
    /// Tenant id → the variable holding its bearer token. A token sees only its tenant.
    pub tokens: std::collections::BTreeMap<String, EnvVarName>,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Heartbeat posts a tenant may make per second on average.
    pub heartbeats_per_second: f64,
    /// How many above the average a tenant may post at once.
    pub heartbeat_burst: u32,
    /// Tenant id → the variable holding the secret its release webhook is signed with.
    pub release_secrets: std::collections::BTreeMap<String, EnvVarName>,
    /// Tenant id → the variable holding the secret its alerts' "useful" / "not useful" links
    /// are signed with (at least 16 characters); a tenant without one gets alerts without links.
    pub feedback_secrets: std::collections::BTreeMap<String, EnvVarName>,
    /// The variable holding a token that sees every tenant's `/metrics` (a scraper's).
    pub metrics_token_env: Option<EnvVarName>,
}

/// Shortest feedback secret taken: a short one could be guessed.
pub const MIN_FEEDBACK_SECRET: usize = 16;

impl ApiSection {
    /// Where alerts' feedback links point (`public_url`, else where `listen` is) and the secret
    /// of each tenant that has one set; none without an address or a secret. A secret too short
    /// leaves its tenant without links, and is named (by its variable, never its value) in the
    /// problems returned beside.
    pub fn feedback_links(&self) -> (Option<tam_core::feedback::LinkMaker>, Vec<String>) {
        let mut problems = Vec::new();
        let Some(base) =
            self.public_url.clone().or_else(|| self.listen.as_deref().map(|l| crate::a2a::base_url(None, l)))
        else {
            return (None, problems);
        };
        let mut secrets = std::collections::BTreeMap::new();
        for (tenant, var) in &self.feedback_secrets {
            let Some(secret) = var.value() else { continue };
            if secret.chars().count() < MIN_FEEDBACK_SECRET {
                problems.push(format!(
                    "[api.feedback_secrets] {tenant}: {var} holds fewer than {MIN_FEEDBACK_SECRET} characters"
                ));
                continue;
            }
            // Checked when the config was read.
            let Ok(tenant) = tam_core::TenantId::parse("[api.feedback_secrets]", tenant) else { continue };
            secrets.insert(tenant, secret.into_bytes());
        }
        ((!secrets.is_empty()).then(|| tam_core::feedback::LinkMaker::new(&base, secrets)), problems)
    }
}

impl Default for ApiSection {
    fn default() -> ApiSection {
        ApiSection {
            listen: None,
            public_url: None,
            tokens: std::collections::BTreeMap::new(),
            max_body_bytes: 256 * 1024,
            heartbeats_per_second: 500.0,
            heartbeat_burst: 1_000,
            release_secrets: std::collections::BTreeMap::new(),
            feedback_secrets: std::collections::BTreeMap::new(),
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
    pub api_key_env: EnvVarName,
    /// Classic: the variable holding the secret key.
    pub secret_env: EnvVarName,
    /// Classic: the department ids to list, comma-separated.
    pub departments: String,
    /// JSON: the agent's email.
    pub email: String,
    /// JSON: the variable holding the agent's password.
    pub password_env: EnvVarName,
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
    /// The tag that marks a ticket as a real escalation of its account (for `tam backtest`).
    pub escalation_tag: Option<String>,
}

impl Default for KayakoSection {
    fn default() -> KayakoSection {
        let m = tam_connectors::kayako::KayakoMapping::default();
        KayakoSection {
            tenant: None,
            api: KayakoApi::Classic,
            base_url: String::new(),
            api_key_env: EnvVarName::known("KAYAKO_API_KEY"),
            secret_env: EnvVarName::known("KAYAKO_SECRET_KEY"),
            departments: String::new(),
            email: String::new(),
            password_env: EnvVarName::known("KAYAKO_PASSWORD"),
            page_size: 100,
            timeout_ms: 30_000,
            account_field: m.account_field,
            accounts: m.accounts,
            statuses: m.statuses,
            missing_priority: m.missing_priority,
            types: m.types,
            escalation_tag: m.escalation_tag,
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
            escalation_tag: self.escalation_tag.clone(),
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
    pub token_env: EnvVarName,
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
            token_env: EnvVarName::known("NOTION_TOKEN"),
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
