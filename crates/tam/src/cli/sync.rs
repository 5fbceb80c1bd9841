//! `tam sync notion|jira|kayako`: the syncs of [`tam_app::sync`], run once and reported.
//! `tam notion init`: creates the two databases a Notion pull reads.
//!
//! Their clients are built in `crate::clients::sources`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use tam_app::sync::notion::Pulled;
use tam_app::sync::{Sources, TicketFeed, TicketSync};
use tam_connectors::notion::records as schema;
use tam_core::Timestamp;

use crate::Outcome;
use crate::clients::sources::{jira_feed, kayako_feed, notion_book, notion_client, notion_tenant};
use crate::config::Config;
use crate::home::Home;

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
    let notion = notion_client(section, crate::clients::pacing(&config))?;
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

/// Pulls the `[notion]` tenant's accounts and tickets into `store` on a client of its own.
pub fn pull(store: &mut tam_store::Store, config: &Config, full: bool) -> Result<Pulled> {
    let book = notion_book(config)?.context("[notion] tenant is not set: which tenant are these accounts?")?;
    book.databases()?;
    let notion = notion_client(&config.notion, crate::clients::pacing(config))?;
    tam_app::sync::notion::pull(store, &notion, &book, full, config.rules.import_options(Timestamp::now()))
}

/// Pulls `feed` once, on clients of its own: into Notion for the `[notion]` tenant (whose
/// client is built once the source's is), else into the store.
fn pull_feed(
    store: &mut tam_store::Store,
    config: &Config,
    feed: TicketFeed,
    since: Option<Timestamp>,
) -> Result<TicketSync> {
    let source = (feed.open)()?;
    let notion = match notion_tenant(config) {
        Some(tenant) if tenant == feed.tenant.as_str() => {
            let book = notion_book(config)?.context("[notion] tenant is not set")?;
            Some((book, Arc::new(notion_client(&config.notion, crate::clients::pacing(config))?)))
        }
        _ => None,
    };
    Sources { notion, tickets: Vec::new() }.pull_from(store, source.as_ref(), since, &config.rules)
}

pub fn run(home: &Home, command: SyncCommand) -> Result<Outcome> {
    let (full, json) = match command {
        SyncCommand::Jira { since, json } => {
            let (mut store, config) = home.open()?;
            return report(&pull_feed(&mut store, &config, jira_feed(&config)?, since)?, json);
        }
        SyncCommand::Kayako { since, json } => {
            let (mut store, config) = home.open()?;
            return report(&pull_feed(&mut store, &config, kayako_feed(&config)?, since)?, json);
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

/// Prints a ticket sync's report; a rejected ticket makes the outcome partial.
fn report(sync: &TicketSync, json: bool) -> Result<Outcome> {
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
