//! Syncs: what a helpdesk or the CRM holds, brought into where the tenant's scans read.
//!
//! A ticket sync is one generic pull ([`pull_tickets`]): a [`TicketSource`] (Jira, Kayako)
//! returns the tickets with activity since the watermark as import records, and a
//! [`TicketSink`] puts them where the tenant's tickets live: the store ([`IntoStore`]), or, for
//! the `[notion]` tenant, Notion's Support Tickets database ([`notion::IntoNotion`]). Each
//! reports what it fetched, inserted, updated and rejected; the watermark moves only when the
//! whole sync succeeded. [`notion`] pulls the Notion tenant's accounts and tickets.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::Value;
use tam_agent::import::{ImportOptions, Importer};
use tam_connectors::notion::Notion;
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;

pub mod jira;
pub mod kayako;
pub mod notion;

/// A helpdesk whose tickets a sync pulls.
pub trait TicketSource {
    /// `jira`, `kayako`: the tickets' source, and the name of its watermark.
    fn name(&self) -> &'static str;
    /// The tenant whose tickets these are.
    fn tenant(&self) -> &TenantId;
    /// How far before the last sync to ask again, for a source that compares coarsely.
    fn overlap(&self) -> SignedDuration {
        SignedDuration::ZERO
    }
    /// The tickets with activity since `since` (every ticket for `None`), as import records.
    fn fetch(&self, since: Option<Timestamp>) -> Result<Fetched>;
    /// Requests sent so far, retries included.
    fn calls(&self) -> u64;
}

/// What a source returned.
#[derive(Debug, Default)]
pub struct Fetched {
    /// One import record per ticket.
    pub records: Vec<Value>,
    /// Tickets left out because their account cannot be told, each named.
    pub skipped: Vec<String>,
    /// Tickets the source returned.
    pub fetched: u64,
    /// Tickets an older tam stored under another id: `(old, new)`, renamed before the records
    /// are put, so each is updated rather than copied.
    pub renames: Vec<(String, String)>,
    /// What was asked (a JQL, a path), for the report.
    pub query: String,
}

/// Where a tenant's tickets live.
pub trait TicketSink {
    /// Puts `tenant`'s `records` from `source`, importing into `store` whatever reaches it.
    fn put(
        &self,
        store: &mut Store,
        tenant: &TenantId,
        source: &'static str,
        records: &[Value],
        import: ImportOptions,
    ) -> Result<Put>;
}

/// What a sink did with a sync's records.
#[derive(Debug, Default)]
pub struct Put {
    /// New tickets.
    pub inserted: u64,
    /// Known tickets updated.
    pub updated: u64,
    /// Records refused, each named by id and field.
    pub rejected: Vec<String>,
    /// Requests the sink sent (to Notion), retries included.
    pub calls: u64,
}

/// What a ticket sync did.
#[derive(Debug, serde::Serialize)]
pub struct TicketSync {
    /// The tenant.
    pub tenant: String,
    /// `jira` or `kayako`.
    pub source: &'static str,
    /// Tickets the source returned.
    pub fetched: u64,
    /// New tickets stored.
    pub inserted: u64,
    /// Known tickets updated.
    pub updated: u64,
    /// Tickets skipped, each with its key and field.
    pub rejected: Vec<String>,
    /// Requests sent to the source, retries included.
    pub calls: u64,
    /// Requests sent to Notion (the `[notion]` tenant's tickets are written there).
    pub notion_calls: u64,
    /// The JQL or query used.
    pub query: String,
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

/// Pulls `source`'s tickets with activity since `since` (default: the last successful sync,
/// less the source's overlap) into `sink`. `import` gives the parser's settings; its `now`
/// becomes the next watermark.
pub fn pull_tickets(
    store: &mut Store,
    source: &dyn TicketSource,
    sink: &dyn TicketSink,
    since: Option<Timestamp>,
    import: ImportOptions,
) -> Result<TicketSync> {
    let tenant = source.tenant().clone();
    let name = source.name();
    let started = import.now;
    let from = match since {
        Some(t) => Some(t),
        None => store.sync_watermark(&tenant, name)?.map(|w| w.checked_sub(source.overlap()).unwrap_or(w)),
    };
    let Fetched { records, skipped, fetched, renames, query } = source.fetch(from)?;
    if !renames.is_empty() {
        store.rename_tickets(&tenant, name, &renames)?;
    }
    let put = sink.put(store, &tenant, name, &records, import)?;
    store.set_sync_watermark(&tenant, name, started)?;
    let mut rejected = skipped;
    rejected.extend(put.rejected);
    Ok(TicketSync {
        tenant: tenant.to_string(),
        source: name,
        fetched,
        inserted: put.inserted,
        updated: put.updated,
        rejected,
        calls: source.calls(),
        notion_calls: put.calls,
        query,
    })
}

/// The ticket sources of a process, and the Notion book its `[notion]` tenant keeps.
#[derive(Default)]
pub struct Sources {
    /// The `[notion]` tenant, when both its databases are known (its scans pull from them and
    /// its helpdesks' tickets go to the second), and the process's Notion client.
    pub notion: Option<(notion::NotionBook, Arc<Notion>)>,
    /// The helpdesks, each with the tenant it feeds.
    pub tickets: Vec<TicketFeed>,
}

/// A helpdesk feeding one tenant. Its client is built when a sync runs, so a missing token
/// fails that sync, not the process.
pub struct TicketFeed {
    /// `jira`, `kayako`: its source's name.
    pub name: &'static str,
    /// Its scheduled job's name in `job_runs` (`sync:jira`).
    pub job: &'static str,
    /// The tenant it feeds.
    pub tenant: TenantId,
    /// Builds the source.
    pub open: Box<dyn Fn() -> Result<Box<dyn TicketSource>> + Send + Sync>,
}

impl Sources {
    /// The `[notion]` tenant's book and client, when that tenant is `tenant`.
    pub fn notion_of(&self, tenant: &TenantId) -> Option<(&notion::NotionBook, &Notion)> {
        self.notion.as_ref().filter(|(book, _)| book.tenant == *tenant).map(|(book, n)| (book, n.as_ref()))
    }

    /// The helpdesk `name`.
    pub fn feed(&self, name: &str) -> Option<&TicketFeed> {
        self.tickets.iter().find(|f| f.name == name)
    }

    /// Pulls feed `name` into where its tenant's tickets live (see [`pull_tickets`]).
    pub fn pull(&self, store: &mut Store, name: &str, since: Option<Timestamp>, rules: &Rules) -> Result<TicketSync> {
        let feed = self.feed(name).with_context(|| format!("[{name}] is not configured"))?;
        let source = (feed.open)()?;
        debug_assert_eq!(source.name(), feed.name, "a feed is named as its source");
        self.pull_from(store, source.as_ref(), since, rules)
    }

    /// Pulls `source` into where its tenant's tickets live: Notion's Support Tickets database
    /// for the tenant of [`Sources::notion`], else the store.
    pub fn pull_from(
        &self,
        store: &mut Store,
        source: &dyn TicketSource,
        since: Option<Timestamp>,
        rules: &Rules,
    ) -> Result<TicketSync> {
        let import = rules.import_options(Timestamp::now());
        match self.notion_of(source.tenant()) {
            Some((book, notion)) => {
                let sink = notion::IntoNotion { notion, book, priorities: rules.priorities() };
                pull_tickets(store, source, &sink, since, import)
            }
            None => pull_tickets(store, source, &IntoStore, since, import),
        }
    }
}

/// The store, for a tenant whose tickets live there.
#[derive(Debug, Clone, Copy)]
pub struct IntoStore;

impl TicketSink for IntoStore {
    fn put(
        &self,
        store: &mut Store,
        tenant: &TenantId,
        source: &'static str,
        records: &[Value],
        import: ImportOptions,
    ) -> Result<Put> {
        let ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
        let known = store.known_tickets(tenant, ids.iter().copied())?;
        let mut importer = Importer::new(store, import);
        importer.push(source, records.iter().cloned())?;
        let report = importer.finish()?;
        let rejected: HashSet<&str> = report.rejected.iter().filter_map(|r| r.id.as_deref()).collect();
        let updated = ids.iter().filter(|id| known.contains(**id) && !rejected.contains(**id)).count() as u64;
        Ok(Put {
            inserted: report.tickets.saturating_sub(updated),
            updated,
            rejected: report.rejected.iter().map(ToString::to_string).collect(),
            calls: 0,
        })
    }
}
