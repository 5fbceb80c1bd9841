//! The channels effects go out through (embedded, or Gmail, Google Chat, Redis Streams and
//! Notion, as the home configures them), and the dispatch and tasks run over them.
//!
//! The binary builds them on the process's clients; here they are only used.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Result;
use tam_agent::dispatch::{self, Channels, DispatchReport};
use tam_agent::tasks::Task;
use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalProfiles};
use tam_connectors::notion::Notion;
use tam_connectors::notion::crm::NotionCrm;
use tam_connectors::notion::profile::NotionProfiles;
use tam_connectors::redis_bus::RedisBus;
use tam_core::ports::{
    ChatNotifier, CrmWriter, DraftFates, DraftMailbox, EventBus, ProfilePublisher, RepAlerts, Writer,
};
use tam_core::{TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;
use crate::sync::notion::{NotionBook, import_own_writes};

/// Every channel of a home, each on its own database connection, on the process's clients.
pub struct AppChannels {
    /// Where drafts are saved.
    pub mailbox: Box<dyn DraftMailbox>,
    /// Where rep alerts are emailed.
    pub email: Box<dyn RepAlerts>,
    /// Where chat alerts go.
    pub chat: Box<dyn ChatNotifier>,
    /// Where events are published.
    pub events: Events,
    /// The CRM of a tenant whose CRM is not Notion.
    pub crm: LocalCrm,
    /// The profiles of a tenant whose CRM is not Notion.
    pub profiles: LocalProfiles,
    /// The tenant whose CRM is Notion: its health and profile writers on one client (so one
    /// rate limit for both), and what is needed to import the pages its writes answered with.
    pub notion: Option<NotionChannels>,
    /// The writer drafts are written with.
    pub writer: Arc<dyn Writer + Send + Sync>,
    /// What reads back the fate of saved drafts; none when the mailbox cannot tell.
    pub fates: Option<Box<dyn DraftFates + Send>>,
    /// Signs the feedback links alerts carry; none: alerts carry none.
    pub feedback: Option<tam_core::feedback::LinkMaker>,
}

/// The `[notion]` tenant's CRM and profile writers.
pub struct NotionChannels {
    /// The tenant and its databases.
    pub book: NotionBook,
    /// The client both write with.
    pub notion: Arc<Notion>,
    /// Health on the account pages.
    pub crm: NotionCrm,
    /// Profile pages, linked from the account pages.
    pub profiles: NotionProfiles,
}

/// Where events go: the local stream table, or Redis Streams with one bus per tenant.
pub enum Events {
    /// The store's event table.
    Local(LocalEventBus),
    /// A stream per tenant at `url`, each capped near `maxlen`.
    Redis {
        /// The server.
        url: String,
        /// `MAXLEN ~` of each stream.
        maxlen: u64,
        /// The tenants' buses, each opened when first used.
        buses: HashMap<TenantId, RedisBus>,
    },
}

impl Events {
    /// Redis Streams at `url`.
    pub fn redis(url: String, maxlen: u64) -> Events {
        Events::Redis { url, maxlen, buses: HashMap::new() }
    }

    fn for_tenant(&mut self, tenant: &TenantId) -> &mut dyn EventBus {
        match self {
            Events::Local(bus) => bus,
            Events::Redis { url, maxlen, buses } => {
                buses.entry(tenant.clone()).or_insert_with(|| RedisBus::new(url, tenant.clone(), *maxlen))
            }
        }
    }
}

impl AppChannels {
    /// The ports, borrowed for one dispatch or task of `tenant` (a Redis bus belongs to one).
    pub fn ports(&mut self, tenant: &TenantId) -> Channels<'_> {
        let (crm, profiles): (&mut dyn CrmWriter, &mut dyn ProfilePublisher) = match &mut self.notion {
            Some(n) if n.book.tenant == *tenant => (&mut n.crm, &mut n.profiles),
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
            feedback: self.feedback.as_ref(),
        }
    }

    /// Runs one task now, through these channels (its tenant's event bus and CRM), by `rules`.
    pub fn run_task(
        &mut self,
        store: &mut Store,
        rules: &Rules,
        task: Task,
    ) -> Result<serde_json::Value, tam_agent::tasks::TaskError> {
        let scan_config = |t: &TenantId| rules.scan(Some(t)).clone();
        let worker = worker();
        let tenant = task.tenant.clone();
        let mut ports = self.ports(&tenant);
        let mut ctx = tam_agent::tasks::TaskContext {
            store,
            channels: &mut ports,
            scan_config: &scan_config,
            retry: &rules.retry,
            now: crate::now(),
            worker: &worker,
        };
        let ran = tam_agent::tasks::run_task(&mut ctx, task);
        if let Err(e) = self.import_own_writes(store, rules) {
            crate::log::warn(format_args!("notion: {e:#}"));
        }
        ran
    }

    /// Imports the account pages that this home's Notion writes (health, profile links)
    /// answered with, as a pull would: the pull leaves out pages whose last edit was tam's, and
    /// a person's edit made before tam's write is in that answer, not lost. Call after each
    /// dispatch or task.
    pub fn import_own_writes(&mut self, store: &mut Store, rules: &Rules) -> Result<()> {
        let Some(n) = &self.notion else { return Ok(()) };
        import_own_writes(store, &n.notion, &n.book, rules.import_options(Timestamp::now()))
    }

    /// Delivers everything of `tenant` that is due now.
    pub fn dispatch(&mut self, store: &mut Store, tenant: &TenantId, rules: &Rules) -> Result<DispatchReport> {
        self.dispatch_until(store, tenant, rules, &|| false)
    }

    /// [`AppChannels::dispatch`] that stops between batches once `stop` says so, leaving the
    /// rest pending (`tam serve` on SIGTERM).
    pub fn dispatch_until(
        &mut self,
        store: &mut Store,
        tenant: &TenantId,
        rules: &Rules,
        stop: tam_core::concurrent::Stop<'_>,
    ) -> Result<DispatchReport> {
        let mut ports = self.ports(tenant);
        let report =
            dispatch::dispatch_until(store, tenant, &mut ports, Timestamp::now(), &rules.retry, &worker(), stop);
        // What was written is imported even when the dispatch then failed.
        self.import_own_writes(store, rules)?;
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
