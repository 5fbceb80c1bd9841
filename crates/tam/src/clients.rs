//! The one place a process builds its network clients ([`Clients`]) and, on them, the
//! channels of its home (embedded, or Gmail, Google Chat, Redis and Notion as configured).

use anyhow::{Context, Result};
use std::sync::Arc;

use tam_app::channels::{AppChannels, Events, NotionChannels};
use tam_app::sync::Sources;
use tam_core::url::TicketLinks;

use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalMailbox, LocalProfiles, NotificationLog};
use tam_connectors::gmail::{Gmail, GmailAlerts, GmailDrafts, GmailFates, ReadScope};
use tam_connectors::google_auth::ServiceAccount;
use tam_connectors::google_chat::{ChatApi, ChatWebhooks, Shared, WebhookConfig};
use tam_connectors::notion::Notion;
use tam_connectors::notion::crm::NotionCrm;
use tam_connectors::notion::profile::NotionProfiles;
use tam_core::ports::{DraftMailbox, RepAlerts, Writer};
use tam_core::rate::Limits;
use tam_writer::TemplateWriter;
use tam_writer::llm::{LlmWriter, Router};

pub mod sources;

use crate::config::{ChatConfig, ChatKind, Config, EventBusKind, MailConfig, MailKind, WriterConfig};

use crate::home::Home;

/// The network clients of a process, built once and shared by every set of channels it
/// hands out (the scheduler's, each API request's): a model provider's concurrency cap and
/// circuit breaker, the Google token cache and each mailbox's quota, and Notion's request rate
/// hold for the process, not for one request.
pub struct Clients {
    writer: Arc<dyn Writer + Send + Sync>,
    /// With `[mail] kind = "gmail"`.
    gmail: Option<Arc<Gmail>>,
    /// With `[notion]` databases for a tenant.
    notion: Option<Arc<Notion>>,
    /// With `[chat] kind = "webhook"` or `"api"`: one pacing per space (and one token).
    chat: Option<SharedChat>,
    /// With `[jira]`: for the webhook's fetches, built at the first.
    jira: std::sync::OnceLock<tam_connectors::jira::Jira>,
    /// Signs alerts' feedback links, for the tenants with a secret: read once, its problems
    /// warned of once.
    feedback: Option<tam_core::feedback::LinkMaker>,
}

/// The chat channel of a process, shared by every set of channels.
enum SharedChat {
    Webhooks(Shared<ChatWebhooks>),
    Api(Shared<ChatApi>),
}

impl Clients {
    /// The ticket sources of `config`, the `[notion]` book on the shared Notion client.
    pub fn sources(&self, config: &Config) -> Result<Sources> {
        let notion = match (sources::notion_tenant(config), sources::notion_book(config)?, &self.notion) {
            (Some(_), Some(book), Some(notion)) => Some((book, Arc::clone(notion))),
            _ => None,
        };
        Ok(Sources { notion, tickets: sources::feeds(config) })
    }

    /// The Jira client `[jira]` describes, built at the first call (a missing token fails
    /// that call, not the process).
    pub fn jira(&self, config: &Config) -> Result<&tam_connectors::jira::Jira> {
        if let Some(jira) = self.jira.get() {
            return Ok(jira);
        }
        let jira = sources::jira_client(config)?;
        Ok(self.jira.get_or_init(|| jira))
    }

    /// The clients `config` asks for.
    pub fn open(config: &Config) -> Result<Clients> {
        let notion = match (&config.notion.tenant, &config.notion.accounts_database) {
            (Some(_), Some(_)) => Some(Arc::new(sources::notion_client(&config.notion, pacing(config))?)),
            _ => None,
        };
        let gmail = match config.mail.kind {
            MailKind::Gmail => Some(gmail_client(&config.mail, shared_pacing(config))?),
            MailKind::Local => None,
        };
        let chat = match config.chat.kind {
            ChatKind::Webhook => Some(SharedChat::Webhooks(Shared::new(
                ChatWebhooks::new(WebhookConfig {
                    spaces: config.chat.webhooks.iter().map(|(space, var)| (space.clone(), var.to_string())).collect(),
                    default_env: config.chat.default_webhook_env.as_ref().map(ToString::to_string),
                    min_interval: std::time::Duration::from_millis(config.chat.min_interval_ms),
                    timeout: std::time::Duration::from_millis(config.chat.timeout_ms),
                    concurrency: config.chat.concurrency,
                })
                .with_pacing(pacing(config)),
            ))),
            ChatKind::Api => Some(SharedChat::Api(Shared::new(chat_api(&config.chat, pacing(config))?))),
            ChatKind::Local => None,
        };
        Ok(Clients {
            writer: writer(&config.writer, config.tickets.links()),
            gmail,
            notion,
            chat,
            jira: std::sync::OnceLock::new(),
            feedback: feedback_links(config),
        })
    }
}

/// The signer of alerts' feedback links; a secret that cannot be used is warned of.
fn feedback_links(config: &Config) -> Option<tam_core::feedback::LinkMaker> {
    let (links, problems) = config.api.feedback_links();
    for problem in problems {
        crate::warn(format_args!("warning: {problem}; its alerts carry no feedback links"));
    }
    links
}

/// The writer the config asks for; `links` say where ticket pages are.
pub fn writer(config: &WriterConfig, links: Option<TicketLinks>) -> Arc<dyn Writer + Send + Sync> {
    if config.mode != crate::config::WriterMode::Llm {
        return Arc::new(TemplateWriter::new().with_ticket_links(links));
    }
    let router = Router::new(
        config.models.clone(),
        config.retries_per_model,
        std::time::Duration::from_millis(config.retry_base_ms),
        config.concurrency_per_provider,
    );
    Arc::new(LlmWriter::new(router).with_ticket_links(links))
}

/// The service account whose key file the variable `var` names, for the `[section]`.
fn service_account(section: &str, var: &str, token_uri: Option<&str>, timeout_ms: u64) -> Result<ServiceAccount> {
    let path = std::env::var_os(var)
        .with_context(|| format!("[{section}]: set {var} to the path of the service-account key file"))?;
    let timeout = std::time::Duration::from_millis(timeout_ms);
    ServiceAccount::from_file(std::path::Path::new(&path), token_uri, timeout)
        .with_context(|| format!("[{section}] service account from {var}"))
}

/// Health and profiles written to Notion for the `[notion]` tenant, when its databases are
/// configured, and what is needed to import what those writes answered.
fn notion(config: &Config, clients: &Clients) -> Result<Option<NotionChannels>> {
    let (Some(book), Some(notion)) = (sources::notion_book(config)?, &clients.notion) else { return Ok(None) };
    let health = &config.notion.health;
    Ok(Some(NotionChannels {
        book,
        notion: Arc::clone(notion),
        crm: NotionCrm::new(Arc::clone(notion), health.clone()),
        profiles: NotionProfiles::new(Arc::clone(notion), health.profile.clone()),
    }))
}

/// The Chat API as `[chat]` describes it.
/// The buckets the clients pace their calls by: the store's when replicas share it, so that a
/// deployment keeps to each API's limit together, not each replica to all of it; this
/// process's otherwise.
pub fn pacing(config: &Config) -> Arc<dyn Limits> {
    shared_pacing(config).unwrap_or_else(|| Arc::new(tam_connectors::limits::LocalLimits::default()))
}

/// The store's buckets, when replicas share the store.
fn shared_pacing(config: &Config) -> Option<Arc<dyn Limits>> {
    let shared = config.store.as_ref().filter(|l| l.is_shared())?;
    Some(Arc::new(tam_connectors::limits::StoreLimits::new(shared.clone())))
}

pub fn chat_api(config: &ChatConfig, pacing: Arc<dyn Limits>) -> Result<ChatApi> {
    let account = service_account(
        "chat",
        config.service_account_file_env.as_str(),
        config.token_uri.as_deref(),
        config.timeout_ms,
    )?;
    Ok(ChatApi::new(
        account,
        &config.base_url,
        config.default_space.clone(),
        std::time::Duration::from_millis(config.min_interval_ms),
        std::time::Duration::from_millis(config.timeout_ms),
    )
    .with_concurrency(config.concurrency)
    .with_pacing(pacing))
}

/// The Gmail client `[mail]` describes: one service account, its token cache and each
/// mailbox's quota.
fn gmail_client(config: &MailConfig, shared: Option<Arc<dyn Limits>>) -> Result<Arc<Gmail>> {
    let timeout = std::time::Duration::from_millis(config.timeout_ms);
    let account = service_account(
        "mail",
        config.service_account_file_env.as_str(),
        config.token_uri.as_deref(),
        config.timeout_ms,
    )?;
    Ok(Gmail::with_limits(
        account,
        &config.base_url,
        timeout,
        config.concurrency,
        tam_connectors::gmail::USER_UNITS_PER_SECOND,
        shared,
    ))
}

impl Clients {
    /// What signs and proves alerts' feedback links; none when no tenant takes feedback.
    pub fn feedback(&self) -> Option<&tam_core::feedback::LinkMaker> {
        self.feedback.as_ref()
    }

    /// What reads back the fate of drafts in reps' Gmail; none with the embedded mailbox,
    /// whose `.eml` files' fate cannot be known.
    pub fn draft_fates(&self, config: &Config) -> Option<GmailFates> {
        self.gmail.as_ref().map(|gmail| gmail_fates(&config.mail, gmail))
    }
}

fn gmail_fates(config: &MailConfig, gmail: &Arc<Gmail>) -> GmailFates {
    let read = match config.read_scope {
        crate::config::MailReadScope::Readonly => ReadScope::Readonly,
        crate::config::MailReadScope::Metadata => ReadScope::Metadata,
    };
    GmailFates::new(Arc::clone(gmail), read)
}

/// Gmail drafts, alerts and the drafts' fates as `[mail]` describes them, on a client of their
/// own (for `tam doctor`).
pub fn gmail_all(config: &MailConfig) -> Result<(GmailDrafts, GmailAlerts, GmailFates)> {
    let gmail = gmail_client(config, None)?;
    let (drafts, alerts) = gmail_channels(config, &gmail)?;
    Ok((drafts, alerts, gmail_fates(config, &gmail)))
}

/// Gmail drafts and alerts on `gmail`, as `[mail]` describes them.
fn gmail_channels(config: &MailConfig, gmail: &Arc<Gmail>) -> Result<(GmailDrafts, GmailAlerts)> {
    let from = config.alerts_from.as_deref().context("[mail] kind = \"gmail\" needs alerts_from")?;
    let from = tam_core::Email::parse("[mail] alerts_from", from)?;
    Ok((GmailDrafts::new(Arc::clone(gmail)).with_bcc(config.bcc()?), GmailAlerts::new(Arc::clone(gmail), from)))
}

/// Channels on clients of their own: for a command that opens them once.
pub fn open(home: &Home, config: &Config) -> Result<AppChannels> {
    with(home, config, &Clients::open(config)?)
}

/// The home's channels on the process's shared `clients`.
pub fn with(home: &Home, config: &Config, clients: &Clients) -> Result<AppChannels> {
    let db = home.store_location(config);
    let (mailbox, email): (Box<dyn DraftMailbox>, Box<dyn RepAlerts>) = match (&config.mail.kind, &clients.gmail) {
        (MailKind::Gmail, Some(gmail)) => {
            let (drafts, alerts) = gmail_channels(&config.mail, gmail)?;
            (Box::new(drafts), Box::new(alerts))
        }
        (MailKind::Gmail, None) => anyhow::bail!("[mail] kind = \"gmail\", but no Gmail client was opened"),
        (MailKind::Local, _) => (
            Box::new(LocalMailbox::open(&db, &home.dir)?.with_bcc(config.mail.bcc()?)),
            Box::new(NotificationLog::open(&db, &home.dir, "email")?),
        ),
    };
    Ok(AppChannels {
        mailbox,
        email,
        chat: match &clients.chat {
            Some(SharedChat::Webhooks(chat)) => Box::new(chat.clone()),
            Some(SharedChat::Api(chat)) => Box::new(chat.clone()),
            None => Box::new(NotificationLog::open(&db, &home.dir, "chat")?),
        },
        events: match config.event_bus.kind {
            EventBusKind::Redis => Events::redis(config.event_bus.redis_url.clone(), config.event_bus.maxlen),
            EventBusKind::Local => Events::Local(LocalEventBus::open(&db)?),
        },
        crm: LocalCrm::open(&db)?,
        profiles: LocalProfiles::new(&home.dir),
        notion: notion(config, clients)?,
        writer: Arc::clone(&clients.writer),
        fates: clients.draft_fates(config).map(|f| Box::new(f) as Box<dyn tam_core::ports::DraftFates + Send>),
        feedback: clients.feedback.clone(),
    })
}

pub use tam_app::channels::{dead_on_this_host, worker};
