//! `tam sync notion|jira|kayako`: the syncs of [`tam_app::sync`], run once and reported.
//! `tam notion init`: creates the two databases a Notion pull reads.
//!
//! The clients of the sources are built here, from `tam.toml` and the secrets its options
//! name; [`tickets`] builds the helpdesks'.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;
use tam_app::sync::Sources;
use tam_app::sync::notion::NotionBook;
use tam_connectors::notion::records as schema;
use tam_connectors::notion::{Notion, NotionConfig};
use tam_core::{TenantId, Timestamp};

use crate::Outcome;
use crate::cli::home::Home;
use crate::config::{Config, NotionSection};

mod tickets;

pub use tickets::{feeds, jira_client, kayako_check};

#[derive(Debug, clap::Subcommand)]
pub enum SyncCommand {
    /// Tickets from the Kayako helpdesk named in `[kayako]`, with activity since the last sync.
    Kayako {
        /// Ask for tickets with activity since this instant (RFC 3339) instead of the last sync.
        #[arg(long, value_parser = crate::cli::clock::parse_instant)]
        since: Option<Timestamp>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Tickets from the Jira project named in `[jira]`, updated since the last sync.
    Jira {
        /// Ask for issues updated since this instant (RFC 3339) instead of the last sync.
        #[arg(long, value_parser = crate::cli::clock::parse_instant)]
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
    let notion = notion_client(section)?;
    let accounts =
        notion.create_database(&parent, "Accounts", schema::accounts_schema(&section.accounts, &section.health))?;
    let tickets =
        notion.create_database(&parent, "Support Tickets", schema::tickets_schema(&section.tickets, &accounts))?;
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
pub fn notion_client(config: &NotionSection) -> Result<Notion> {
    let var = &config.token_env;
    let token = var.value().with_context(|| format!("[notion]: set {var} to the integration's token"))?;
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

/// The `[notion]` tenant and its databases, when it names a tenant.
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

/// Pulls the `[notion]` tenant's accounts and tickets into `store` on a client of its own.
pub fn pull(store: &mut tam_store::Store, config: &Config, full: bool) -> Result<tam_app::sync::notion::Pulled> {
    let book = notion_book(config)?.context("[notion] tenant is not set: which tenant are these accounts?")?;
    let notion = notion_client(&config.notion)?;
    tam_app::sync::notion::pull(store, &notion, &book, full, config.import_options(Timestamp::now()))
}

/// The sources a one-off sync of `config` pulls with: its clients are its own.
fn sources(config: &Config, feed: tam_app::sync::TicketFeed) -> Result<Sources> {
    let notion = match notion_tenant(config) {
        Some(tenant) if tenant == feed.tenant.as_str() => {
            let book = notion_book(config)?.context("[notion] tenant is not set")?;
            Some((book, Arc::new(notion_client(&config.notion)?)))
        }
        _ => None,
    };
    Ok(Sources { notion, tickets: vec![feed] })
}

pub fn run(home: &Home, command: SyncCommand) -> Result<Outcome> {
    let (full, json) = match command {
        SyncCommand::Jira { since, json } => {
            let (mut store, config) = home.open()?;
            let sources = sources(&config, tickets::jira_feed(&config)?)?;
            return tickets::report(&sources.pull(&mut store, "jira", since, &config.rules)?, json);
        }
        SyncCommand::Kayako { since, json } => {
            let (mut store, config) = home.open()?;
            let sources = sources(&config, tickets::kayako_feed(&config)?)?;
            return tickets::report(&sources.pull(&mut store, "kayako", since, &config.rules)?, json);
        }
        SyncCommand::Notion { full, json } => (full, json),
    };
    let (mut store, config) = home.open()?;
    let pulled = pull(&mut store, &config, full)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", pulled.json())?;
    } else {
        pulled.warn();
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
