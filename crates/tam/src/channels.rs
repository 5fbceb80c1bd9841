//! The channels of this home (embedded, or Gmail, Google Chat and Redis as configured) and the
//! dispatcher run over them.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::Arc;
use tam_agent::dispatch::{self, Channels, DispatchReport};

use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalMailbox, LocalProfiles, NotificationLog};
use tam_connectors::gmail::{Gmail, GmailAlerts, GmailDrafts};
use tam_connectors::google_auth::ServiceAccount;
use tam_connectors::google_chat::{ChatApi, ChatWebhooks, Shared, WebhookConfig};
use tam_connectors::notion::Notion;
use tam_connectors::notion::crm::NotionCrm;
use tam_connectors::notion::profile::NotionProfiles;
use tam_connectors::redis_bus::RedisBus;
use tam_core::outbox::RetryPolicy;
use tam_core::ports::Writer;
use tam_core::ports::{ChatNotifier, CrmWriter, DraftMailbox, EventBus, ProfilePublisher, RepAlerts};
use tam_core::{TenantId, Timestamp};
use tam_store::Store;
use tam_writer::TemplateWriter;
use tam_writer::llm::{LlmWriter, Router};

use crate::config::{ChatConfig, ChatKind, Config, EventBusKind, MailConfig, MailKind, NotionSection, WriterConfig};

use crate::home::Home;

/// Every channel of the home, each on its own database connection.
pub struct HomeChannels {
    mailbox: Box<dyn DraftMailbox>,
    email: Box<dyn RepAlerts>,
    chat: Box<dyn ChatNotifier>,
    events: Events,
    crm: LocalCrm,
    profiles: LocalProfiles,
    /// The tenant whose CRM is Notion, and its health and profile writers (one client, so
    /// one rate limit, for both).
    notion: Option<NotionPorts>,
    /// That client, the `[notion]` section and the import rules: to import the account pages
    /// its writes answered with.
    own_writes: Option<OwnWrites>,
    writer: Arc<dyn Writer + Send + Sync>,
}

/// The `[notion]` tenant and its CRM and profile writers.
type NotionPorts = (TenantId, NotionCrm, NotionProfiles);

struct OwnWrites {
    notion: Arc<Notion>,
    section: NotionSection,
    import: tam_agent::import::ImportOptions,
}

/// Where events go: the local stream table, or Redis Streams with one bus per tenant.
enum Events {
    Local(LocalEventBus),
    Redis { url: String, maxlen: u64, buses: HashMap<TenantId, RedisBus> },
}

impl Events {
    fn for_tenant(&mut self, tenant: &TenantId) -> &mut dyn EventBus {
        match self {
            Events::Local(bus) => bus,
            Events::Redis { url, maxlen, buses } => {
                buses.entry(tenant.clone()).or_insert_with(|| RedisBus::new(url, tenant.clone(), *maxlen))
            }
        }
    }
}

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
}

/// The chat channel of a process, shared by every set of channels.
enum SharedChat {
    Webhooks(Shared<ChatWebhooks>),
    Api(Shared<ChatApi>),
}

impl Clients {
    /// The Notion client, when `[notion]` names a tenant and its databases: syncs share it
    /// with the CRM and profile writers, so one rate limit holds for all of them.
    pub fn notion(&self) -> Option<&Notion> {
        self.notion.as_deref()
    }

    /// The clients `config` asks for.
    pub fn open(config: &Config) -> Result<Clients> {
        let notion = match (&config.notion.tenant, &config.notion.accounts_database) {
            (Some(_), Some(_)) => Some(Arc::new(crate::sync::client(&config.notion)?)),
            _ => None,
        };
        let gmail = match config.mail.kind {
            MailKind::Gmail => Some(gmail_client(&config.mail)?),
            MailKind::Local => None,
        };
        let chat = match config.chat.kind {
            ChatKind::Webhook => Some(SharedChat::Webhooks(Shared::new(ChatWebhooks::new(WebhookConfig {
                spaces: config.chat.webhooks.clone(),
                default_env: config.chat.default_webhook_env.clone(),
                min_interval: std::time::Duration::from_millis(config.chat.min_interval_ms),
                timeout: std::time::Duration::from_millis(config.chat.timeout_ms),
                concurrency: config.chat.concurrency,
            })))),
            ChatKind::Api => Some(SharedChat::Api(Shared::new(chat_api(&config.chat)?))),
            ChatKind::Local => None,
        };
        Ok(Clients { writer: writer(&config.writer), gmail, notion, chat })
    }
}

/// The writer the config asks for.
pub fn writer(config: &WriterConfig) -> Arc<dyn Writer + Send + Sync> {
    if config.mode != crate::config::WriterMode::Llm {
        return Arc::new(TemplateWriter::new());
    }
    let router = Router::new(
        config.models.clone(),
        config.retries_per_model,
        std::time::Duration::from_millis(config.retry_base_ms),
        config.concurrency_per_provider,
    );
    Arc::new(LlmWriter::new(router))
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
fn notion(config: &Config, clients: &Clients) -> Result<Option<(NotionPorts, OwnWrites)>> {
    let section = &config.notion;
    let (Some(tenant), Some(notion)) = (&section.tenant, &clients.notion) else { return Ok(None) };
    let tenant = TenantId::parse("[notion] tenant", tenant)?;
    let notion = Arc::clone(notion);
    let profiles = NotionProfiles::new(std::sync::Arc::clone(&notion), section.health.profile.clone());
    let own = OwnWrites {
        notion: std::sync::Arc::clone(&notion),
        section: section.clone(),
        import: config.import_options(Timestamp::now()),
    };
    Ok(Some(((tenant, NotionCrm::new(notion, section.health.clone()), profiles), own)))
}

/// The Chat API as `[chat]` describes it.
pub fn chat_api(config: &ChatConfig) -> Result<ChatApi> {
    let account =
        service_account("chat", &config.service_account_file_env, config.token_uri.as_deref(), config.timeout_ms)?;
    Ok(ChatApi::new(
        account,
        &config.base_url,
        config.default_space.clone(),
        std::time::Duration::from_millis(config.min_interval_ms),
        std::time::Duration::from_millis(config.timeout_ms),
    )
    .with_concurrency(config.concurrency))
}

/// The Gmail client `[mail]` describes: one service account, its token cache and each
/// mailbox's quota.
fn gmail_client(config: &MailConfig) -> Result<Arc<Gmail>> {
    let timeout = std::time::Duration::from_millis(config.timeout_ms);
    let account =
        service_account("mail", &config.service_account_file_env, config.token_uri.as_deref(), config.timeout_ms)?;
    Ok(Gmail::with_limits(
        account,
        &config.base_url,
        timeout,
        config.concurrency,
        tam_connectors::gmail::USER_UNITS_PER_SECOND,
    ))
}

/// Gmail drafts and alerts on `gmail`, as `[mail]` describes them.
fn gmail_channels(config: &MailConfig, gmail: &Arc<Gmail>) -> Result<(GmailDrafts, GmailAlerts)> {
    let from = config.alerts_from.as_deref().context("[mail] kind = \"gmail\" needs alerts_from")?;
    let from = tam_core::Email::parse("[mail] alerts_from", from)?;
    Ok((GmailDrafts::new(Arc::clone(gmail)).with_bcc(config.bcc()?), GmailAlerts::new(Arc::clone(gmail), from)))
}

/// Gmail drafts and alerts as `[mail]` describes them, on a client of their own.
pub fn gmail(config: &MailConfig) -> Result<(GmailDrafts, GmailAlerts)> {
    gmail_channels(config, &gmail_client(config)?)
}

impl HomeChannels {
    /// Channels on clients of their own: for a command that opens them once.
    pub fn open(home: &Home, config: &Config) -> Result<HomeChannels> {
        HomeChannels::with(home, config, &Clients::open(config)?)
    }

    /// Channels on the process's shared `clients`.
    pub fn with(home: &Home, config: &Config, clients: &Clients) -> Result<HomeChannels> {
        let db = home.db_path();
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
        let (notion, own_writes) = notion(config, clients)?.unzip();
        Ok(HomeChannels {
            mailbox,
            email,
            chat: match &clients.chat {
                Some(SharedChat::Webhooks(chat)) => Box::new(chat.clone()),
                Some(SharedChat::Api(chat)) => Box::new(chat.clone()),
                None => Box::new(NotificationLog::open(&db, &home.dir, "chat")?),
            },
            events: match config.event_bus.kind {
                EventBusKind::Redis => Events::Redis {
                    url: config.event_bus.redis_url.clone(),
                    maxlen: config.event_bus.maxlen,
                    buses: HashMap::new(),
                },
                EventBusKind::Local => Events::Local(LocalEventBus::open(&db)?),
            },
            crm: LocalCrm::open(&db)?,
            profiles: LocalProfiles::new(&home.dir),
            notion,
            own_writes,
            writer: Arc::clone(&clients.writer),
        })
    }

    /// The ports, borrowed for one dispatch or task of `tenant` (a Redis bus belongs to one).
    pub fn ports(&mut self, tenant: &TenantId) -> Channels<'_> {
        let (crm, profiles): (&mut dyn CrmWriter, &mut dyn ProfilePublisher) = match &mut self.notion {
            Some((t, crm, profiles)) if t == tenant => (crm, profiles),
            _ => (&mut self.crm, &mut self.profiles),
        };
        Channels {
            mailbox: self.mailbox.as_mut(),
            alerts: self.email.as_mut(),
            chat: self.chat.as_mut(),
            events: self.events.for_tenant(tenant),
            crm,
            profiles,
            writer: self.writer.as_ref(),
        }
    }

    /// Runs one task for `tenant` now, through these channels, with the config's rules.
    pub fn run_task(
        &mut self,
        store: &mut Store,
        config: &Config,
        tenant: &TenantId,
        task: &serde_json::Value,
    ) -> Result<serde_json::Value, tam_agent::tasks::TaskError> {
        let scan_config = |t: &TenantId| config.scan_config(Some(t)).unwrap_or_default();
        let worker = worker();
        let mut ports = self.ports(tenant);
        let mut ctx = tam_agent::tasks::TaskContext {
            store,
            channels: &mut ports,
            scan_config: &scan_config,
            retry: &config.retry,
            now: crate::clock::now(),
            worker: &worker,
        };
        let ran = tam_agent::tasks::run(&mut ctx, task);
        if let Err(e) = self.import_own_writes(store) {
            crate::warn(format_args!("notion: {e:#}"));
        }
        ran
    }

    /// Imports the account pages that this home's Notion writes (health, profile links)
    /// answered with, as a pull would: the pull leaves out pages whose last edit was tam's, and
    /// a person's edit made before tam's write is in that answer, not lost. Call after each
    /// dispatch or task.
    pub fn import_own_writes(&mut self, store: &mut Store) -> Result<()> {
        let Some(own) = &self.own_writes else { return Ok(()) };
        let pages = own.notion.take_written_pages();
        if pages.is_empty() {
            return Ok(());
        }
        let import = tam_agent::import::ImportOptions { now: Timestamp::now(), ..own.import.clone() };
        let report = match crate::sync::import_written(store, &own.section, import, &pages) {
            Ok(report) => report,
            Err(e) => {
                // The pull leaves these pages out; kept, the next import takes them again.
                own.notion.keep_written_pages(pages);
                return Err(e);
            }
        };
        for r in &report.rejected {
            crate::warn(format_args!("notion: not imported from tam's own write (the next sync reads it): {r}"));
        }
        Ok(())
    }

    /// Delivers everything of `tenant` that is due now.
    pub fn dispatch(&mut self, store: &mut Store, tenant: &TenantId, policy: &RetryPolicy) -> Result<DispatchReport> {
        self.dispatch_until(store, tenant, policy, &|| false)
    }

    /// [`HomeChannels::dispatch`] that stops between batches once `stop` says so, leaving the
    /// rest pending (`tam serve` on SIGTERM).
    pub fn dispatch_until(
        &mut self,
        store: &mut Store,
        tenant: &TenantId,
        policy: &RetryPolicy,
        stop: tam_core::concurrent::Stop<'_>,
    ) -> Result<DispatchReport> {
        let mut ports = self.ports(tenant);
        let report = dispatch::dispatch_until(store, tenant, &mut ports, Timestamp::now(), policy, &worker(), stop);
        // What was written is imported even when the dispatch then failed.
        self.import_own_writes(store)?;
        Ok(report?)
    }
}

/// This process, as an identity for leases and job runs: `tam-<host>-<pid>-<random>`. The host
/// and pid let a restarted replica recognise the runs its dead predecessor left; the random part
/// tells two processes apart where every container's process is pid 1.
pub fn worker() -> String {
    static WORKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    WORKER
        .get_or_init(|| {
            use std::hash::BuildHasher;
            // A per-process random seed from the standard library, no dependency needed.
            let random = std::collections::hash_map::RandomState::new().hash_one(std::process::id()) as u32;
            format!("tam-{}-{}-{random:08x}", host(), std::process::id())
        })
        .clone()
}

/// This machine's name, as a worker id carries it (`-` kept out of it, so ids split cleanly).
fn host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String =
        name.trim().chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).take(64).collect();
    if name.is_empty() { "host".to_owned() } else { name }
}

/// Whether `worker` was a process of this machine that is gone: a pid that no longer runs, or
/// this process's own pid under another random part (an earlier incarnation: in a container
/// every start is pid 1). Workers of other machines are never judged here; their runs go stale.
pub fn dead_on_this_host(worker: &str, me: &str) -> bool {
    let parse = |w: &str| -> Option<(String, u32, String)> {
        let rest = w.strip_prefix("tam-")?;
        let mut parts = rest.rsplitn(3, '-');
        let random = parts.next()?.to_owned();
        let pid = parts.next()?.parse().ok()?;
        let host = parts.next()?.to_owned();
        Some((host, pid, random))
    };
    let (Some((host, pid, random)), Some((my_host, my_pid, my_random))) = (parse(worker), parse(me)) else {
        return false;
    };
    if host != my_host || worker == me {
        return false;
    }
    if pid == my_pid {
        return random != my_random;
    }
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_of_this_host_that_is_gone_is_recognised() {
        let me = worker();
        assert!(me.starts_with(&format!("tam-{}-{}-", host(), std::process::id())), "{me}");
        let mine = |pid: u32, random: &str| format!("tam-{}-{pid}-{random}", host());
        let my_random = me.rsplit('-').next().unwrap();
        assert!(!dead_on_this_host(&me, &me), "this very process");
        assert!(dead_on_this_host(&mine(std::process::id(), "0badc0de"), &me), "an earlier incarnation with this pid");
        assert!(dead_on_this_host(&mine(4_000_000_000, my_random), &me), "a pid that no longer runs");
        assert!(!dead_on_this_host(&mine(1, "0badc0de"), &me), "a process that still runs (pid 1)");
        assert!(!dead_on_this_host("tam-elsewhere-7-0badc0de", &me), "another machine's runs go stale instead");
        assert!(!dead_on_this_host("tam-12345", &me), "an old-style id is not judged");
    }
}
