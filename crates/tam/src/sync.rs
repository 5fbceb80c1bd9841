//! `tam sync notion`: pulls a tenant's accounts and tickets from Notion into the store (a scan
//! of that tenant does the same first).
//! `tam notion init`: creates the two databases it reads. Jira and Kayako are in [`tickets`].
//!
//! Each database is read with one paginated query, asking only for pages edited since the last
//! successful sync (less a minute: Notion rounds `last_edited_time` to the minute). The pages
//! become import records and go through the importer, so a malformed page is reported by id
//! and field and skipped. The watermark moves only when the whole sync succeeded.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tam_agent::import::{Format, Importer};
use tam_connectors::notion::records::{self as schema, account_record, ticket_record};
use tam_connectors::notion::{Notion, NotionConfig};
use tam_core::{TenantId, Timestamp};
use tam_store::Store;

use crate::Outcome;
use crate::config::{Config, NotionSection};
use crate::home::Home;

mod tickets;

pub use tickets::{jira_client, kayako_check, pull_jira, pull_kayako};

#[derive(Debug, clap::Subcommand)]
pub enum SyncCommand {
    /// Tickets from the Kayako helpdesk named in `[kayako]`, with activity since the last sync.
    Kayako {
        /// Ask for tickets with activity since this instant (RFC 3339) instead of the last sync.
        #[arg(long, value_parser = crate::clock::parse_instant)]
        since: Option<Timestamp>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tickets from the Jira project named in `[jira]`, updated since the last sync.
    Jira {
        /// Ask for issues updated since this instant (RFC 3339) instead of the last sync.
        #[arg(long, value_parser = crate::clock::parse_instant)]
        since: Option<Timestamp>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accounts and tickets from the Notion databases named in `[notion]`.
    Notion {
        /// Read every page, not only those edited since the last sync.
        #[arg(long)]
        full: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Subcommand)]
pub enum NotionCommand {
    /// Creates the Accounts and Support Tickets databases, with every property and select
    /// option tam reads and writes, under a page shared with the integration.
    Init {
        /// The parent page's id (from its URL).
        #[arg(long)]
        parent: String,
        /// Print the ids as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tam notion init`: three calls (two databases, then the profile relation that points back
/// at the accounts database), made with 2022-06-28, which every later version reads.
pub fn notion(home: &Home, command: NotionCommand) -> Result<Outcome> {
    let NotionCommand::Init { parent, json } = command;
    let (_, config) = home.open()?;
    let section = &config.notion;
    let notion = client(section)?;
    let title = |t: &str| json!([{"type": "text", "text": {"content": t}}]);
    let create = |name: &str, properties: Value| -> Result<String> {
        let body = json!({"parent": {"type": "page_id", "page_id": parent}, "title": title(name),
                          "properties": properties, "is_inline": false});
        let db = notion.request_as("POST", "/v1/databases", Some(&body), tam_connectors::notion::VERSION)?;
        db["id"].as_str().map(str::to_owned).with_context(|| format!("Notion created {name} but sent no id"))
    };
    let accounts = create("Accounts", schema::accounts_schema(&section.accounts, &section.health))?;
    let tickets = create("Support Tickets", schema::tickets_schema(&section.tickets, &accounts))?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", json!({"accounts_database": accounts, "tickets_database": tickets}))?;
    } else {
        writeln!(out, "Created the Accounts and Support Tickets databases. Put these in tam.toml:\n")?;
        writeln!(out, "[notion]\naccounts_database = \"{accounts}\"\ntickets_database = \"{tickets}\"")?;
    }
    Ok(Outcome::Done)
}

/// The client `[notion]` describes, with its token from the environment.
pub fn client(config: &NotionSection) -> Result<Notion> {
    let var = &config.token_env;
    let token = std::env::var(var)
        .ok()
        .filter(|t| !t.is_empty())
        .with_context(|| format!("[notion]: set {var} to the integration's token"))?;
    Ok(Notion::new(
        token,
        NotionConfig {
            base_url: config.base_url.clone(),
            version: config.version.clone(),
            requests_per_second: config.requests_per_second,
            timeout: Duration::from_millis(config.timeout_ms),
            ..NotionConfig::default()
        },
    ))
}

/// What one pull from Notion did.
pub struct Pulled {
    /// The `[notion]` tenant.
    pub tenant: TenantId,
    /// Whether every page was read (no earlier sync, or `--full`).
    pub full: bool,
    /// Account pages read.
    pub account_pages: usize,
    /// Ticket pages read.
    pub ticket_pages: usize,
    /// What the importer stored and rejected.
    pub report: tam_agent::import::ImportReport,
    /// Requests sent to Notion, retries included.
    pub calls: u64,
}

impl Pulled {
    /// The report as JSON, for `tam sync notion --json` and the scan's JSON.
    pub fn json(&self) -> Value {
        json!({
            "tenant": self.tenant, "full": self.full,
            "account_pages": self.account_pages, "ticket_pages": self.ticket_pages,
            "accounts": self.report.accounts, "tickets": self.report.tickets,
            "rejected": self.report.rejected.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "notion_calls": self.calls,
        })
    }
}

/// The `[notion]` tenant, when its two databases are configured: the tenant whose scan reads
/// from Notion first.
pub fn notion_tenant(config: &Config) -> Option<&str> {
    let s = &config.notion;
    s.accounts_database.as_ref().and(s.tickets_database.as_ref()).and(s.tenant.as_deref())
}

/// Pulls the `[notion]` tenant's accounts and tickets into `store`: everything, or (by
/// default) the pages edited since the last successful pull.
pub fn pull(store: &mut Store, config: &Config, full: bool) -> Result<Pulled> {
    let section = &config.notion;
    let tenant = section.tenant.as_deref().context("[notion] tenant is not set: which tenant are these accounts?")?;
    let tenant_id = TenantId::parse("[notion] tenant", tenant)?;
    let (Some(accounts_db), Some(tickets_db)) = (&section.accounts_database, &section.tickets_database) else {
        bail!("[notion] needs accounts_database and tickets_database (`tam notion init` prints them)");
    };
    let notion = client(section)?;
    let started = Timestamp::now();

    let edited_since = |source: &str| -> Result<Option<Value>> {
        if full {
            return Ok(None);
        }
        Ok(store.sync_watermark(&tenant_id, source)?.map(|at| {
            let since = at.checked_sub(tam_core::SignedDuration::from_mins(1)).unwrap_or(at);
            json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}})
        }))
    };
    let oldest_first = json!([{"timestamp": "last_edited_time", "direction": "ascending"}]);
    let account_filter = edited_since("notion:accounts")?;
    let ticket_filter = edited_since("notion:tickets")?;
    let accounts = notion.query_all(accounts_db, account_filter.as_ref(), Some(&oldest_first))?;
    let tickets = notion.query_all(tickets_db, ticket_filter.as_ref(), Some(&oldest_first))?;

    let lines = |records: Vec<Value>| records.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    let account_lines = lines(accounts.iter().map(|p| account_record(tenant, p, &section.accounts)).collect());
    let ticket_lines = lines(tickets.iter().map(|p| ticket_record(tenant, p, &section.tickets)).collect());
    let mut importer = Importer::new(store, config.import_options(started));
    importer.read("notion:accounts", account_lines.as_bytes(), Format::Ndjson)?;
    importer.read("notion:tickets", ticket_lines.as_bytes(), Format::Ndjson)?;
    let report = importer.finish()?;
    // Rejected pages are reported, not retried forever: they come back when someone edits them.
    store.set_sync_watermark(&tenant_id, "notion:accounts", started)?;
    store.set_sync_watermark(&tenant_id, "notion:tickets", started)?;
    Ok(Pulled {
        tenant: tenant_id,
        full: account_filter.is_none(),
        account_pages: accounts.len(),
        ticket_pages: tickets.len(),
        report,
        calls: notion.calls(),
    })
}

/// Reports each rejected page on stderr.
pub fn warn_rejected(pulled: &Pulled) {
    for r in &pulled.report.rejected {
        crate::warn(format_args!("notion: rejected: {r}"));
    }
}

pub fn run(home: &Home, command: SyncCommand) -> Result<Outcome> {
    let (full, json) = match command {
        SyncCommand::Jira { since, json } => {
            let (mut store, config) = home.open()?;
            return tickets::report(&pull_jira(&mut store, &config, since)?, json);
        }
        SyncCommand::Kayako { since, json } => {
            let (mut store, config) = home.open()?;
            return tickets::report(&pull_kayako(&mut store, &config, since)?, json);
        }
        SyncCommand::Notion { full, json } => (full, json),
    };
    let (mut store, config) = home.open()?;
    let pulled = pull(&mut store, &config, full)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", pulled.json())?;
    } else {
        warn_rejected(&pulled);
        writeln!(
            out,
            "notion → {}: {} account pages, {} ticket pages{}; stored {} accounts, {} tickets; rejected {}; {} Notion calls",
            pulled.tenant,
            pulled.account_pages,
            pulled.ticket_pages,
            if pulled.full { "" } else { " edited since the last sync" },
            pulled.report.accounts,
            pulled.report.tickets,
            pulled.report.rejected.len(),
            pulled.calls,
        )?;
    }
    Ok(if pulled.report.rejected.is_empty() { Outcome::Done } else { Outcome::Partial })
}
