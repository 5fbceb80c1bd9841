//! `tam sync notion`: pulls a tenant's accounts and tickets from Notion into the store (a scan
//! of that tenant does the same first).
//! `tam notion init`: creates the two databases it reads. Jira and Kayako are in [`tickets`].
//!
//! Each database is read with one paginated query, asking only for pages edited since the last
//! successful sync (less a minute: Notion rounds `last_edited_time` to the minute) by someone
//! other than tam: what tam wrote it imported from its writes' answers ([`import_written`]).
//! The pages become import records and go through the importer, so a malformed page is
//! reported by id and field and skipped. The watermark moves only when the whole sync succeeded.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tam_agent::import::Importer;
use tam_connectors::notion::records::{self as schema, account_record, ticket_record};
use tam_connectors::notion::{Notion, NotionConfig, NotionError};
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
    /// What the operator should know and can fix (a database that cannot skip tam's own writes).
    pub notes: Vec<String>,
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
            "notes": self.notes,
        })
    }
}

/// The `[notion]` tenant, when its two databases are configured: the tenant whose scan reads
/// from Notion first.
pub fn notion_tenant(config: &Config) -> Option<&str> {
    let s = &config.notion;
    s.accounts_database.as_ref().and(s.tickets_database.as_ref()).and(s.tenant.as_deref())
}

/// The `sync_state` entry saying when tam last wrote a page of `source` that it could not
/// import from the write's answer (a ticket of an account the store does not know yet, a page
/// a person had left malformed): the next pull reads that database's own writes too.
fn missed_own_write(source: &str) -> String {
    format!("{source}:missed-own-write")
}

/// Pulls the `[notion]` tenant's accounts and tickets into `store`: everything, or (by
/// default) the pages edited since the last successful pull, except those whose last edit was
/// tam's own (health, profile links, tickets from Jira or Kayako): what tam wrote, it imported
/// from the write's answer already ([`import_written`]). `shared` is the process's Notion
/// client, if it has one (else the pull opens its own).
pub fn pull(store: &mut Store, config: &Config, full: bool, shared: Option<&Notion>) -> Result<Pulled> {
    let section = &config.notion;
    let tenant = section.tenant.as_deref().context("[notion] tenant is not set: which tenant are these accounts?")?;
    let tenant_id = TenantId::parse("[notion] tenant", tenant)?;
    let (Some(accounts_db), Some(tickets_db)) = (&section.accounts_database, &section.tickets_database) else {
        bail!("[notion] needs accounts_database and tickets_database (`tam notion init` prints them)");
    };
    let own;
    let notion = match shared {
        Some(notion) => notion,
        None => {
            own = client(section)?;
            &own
        }
    };
    let calls_before = notion.calls();
    let started = Timestamp::now();

    // What to ask of one database: pages edited since its watermark (none: every page), and
    // the "Last edited by" property to leave out tam's own edits with (none: keep them).
    let plan = |source: &str, property: &str| -> Result<(Option<Value>, Option<String>)> {
        if full {
            return Ok((None, None));
        }
        let Some(at) = store.sync_watermark(&tenant_id, source)? else { return Ok((None, None)) };
        let since = at.checked_sub(tam_core::SignedDuration::from_mins(1)).unwrap_or(at);
        let filter = json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}});
        let missed = store.sync_watermark(&tenant_id, &missed_own_write(source))?.is_some_and(|m| m >= since);
        let skip_own = (!property.is_empty() && !missed).then(|| property.to_owned());
        Ok((Some(filter), skip_own))
    };
    let (account_filter, account_skip) = plan("notion:accounts", &section.accounts.last_edited_by)?;
    let (ticket_filter, ticket_skip) = plan("notion:tickets", &section.tickets.last_edited_by)?;
    // One call a pull, and only when a database can use it.
    let bot = match (&account_skip, &ticket_skip) {
        (None, None) => None,
        _ => Some(notion.bot_user_id()?),
    };
    let mut notes = Vec::new();
    let mut read = |name: &str, db: &str, filter: Option<Value>, skip: Option<String>| -> Result<Vec<Value>> {
        read_changes(notion, name, db, filter, skip.zip(bot.as_deref()), &mut notes)
    };
    let accounts = read("accounts", accounts_db, account_filter.clone(), account_skip)?;
    let tickets = read("tickets", tickets_db, ticket_filter, ticket_skip)?;

    let mut importer = Importer::new(store, config.import_options(started));
    importer.push("notion:accounts", accounts.iter().map(|p| account_record(tenant, p, &section.accounts)))?;
    importer.push("notion:tickets", tickets.iter().map(|p| ticket_record(tenant, p, &section.tickets)))?;
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
        calls: notion.calls() - calls_before,
        notes,
    })
}

/// The pages of database `db` that `filter` asks for, less those last edited by the bot
/// (`skip`: the "Last edited by" property and the bot's id). A database without that property
/// (made before `tam notion init` added it) refuses the condition: it is read once more
/// without it, and `notes` says how to stop paying for that.
fn read_changes(
    notion: &Notion,
    name: &str,
    db: &str,
    filter: Option<Value>,
    skip: Option<(String, &str)>,
    notes: &mut Vec<String>,
) -> Result<Vec<Value>> {
    let oldest_first = json!([{"timestamp": "last_edited_time", "direction": "ascending"}]);
    if let (Some(since), Some((property, bot))) = (&filter, &skip) {
        let both = json!({"and": [since, schema::not_last_edited_by(property, bot)]});
        match notion.query_all(db, Some(&both), Some(&oldest_first)) {
            Err(NotionError::Rejected(f)) if f.code == "validation_error" => notes.push(format!(
                "notion: the {name} database cannot leave out tam's own edits ({}), so this sync read \
                 them again: add a property of type \"Last edited by\" named \"{property}\" to it \
                 (or name yours in [notion.{name}] last_edited_by)",
                f.message
            )),
            read => return Ok(read?),
        }
    }
    Ok(notion.query_all(db, filter.as_ref(), Some(&oldest_first))?)
}

/// Imports the account and ticket pages among `pages` (what tam's writes answered with) as
/// a pull would, so a sync that leaves out tam's own edits misses nothing a person changed
/// before them. A page that cannot be imported (its account unknown to the store, a value a
/// person left malformed) makes the next pull read that database's own edits too, and report
/// it there as it always did.
pub fn import_written(
    store: &mut Store,
    section: &NotionSection,
    options: tam_agent::import::ImportOptions,
    pages: &[Value],
) -> Result<tam_agent::import::ImportReport> {
    let tenant = section.tenant.as_deref().context("[notion] tenant is not set")?;
    let tenant_id = TenantId::parse("[notion] tenant", tenant)?;
    let now = options.now;
    let row_of = |page: &Value, db: &Option<String>| {
        let live = page["archived"] != true && page["in_trash"] != true;
        live && db.as_deref().zip(schema::parent_database(page)).is_some_and(|(a, b)| schema::same_id(a, b))
    };
    let accounts = pages.iter().filter(|p| row_of(p, &section.accounts_database));
    let tickets = pages.iter().filter(|p| row_of(p, &section.tickets_database));
    let mut importer = Importer::new(store, options);
    importer.push("notion:accounts", accounts.map(|p| account_record(tenant, p, &section.accounts)))?;
    importer.push("notion:tickets", tickets.map(|p| ticket_record(tenant, p, &section.tickets)))?;
    let report = importer.finish()?;
    for r in &report.rejected {
        store.set_sync_watermark(&tenant_id, &missed_own_write(&r.source), now)?;
    }
    Ok(report)
}

/// Reports each rejected page, and each note, on stderr.
pub fn warn_pulled(pulled: &Pulled) {
    for r in &pulled.report.rejected {
        crate::warn(format_args!("notion: rejected: {r}"));
    }
    for note in &pulled.notes {
        crate::warn(format_args!("{note}"));
    }
}

pub fn run(home: &Home, command: SyncCommand) -> Result<Outcome> {
    let (full, json) = match command {
        SyncCommand::Jira { since, json } => {
            let (mut store, config) = home.open()?;
            return tickets::report(&pull_jira(&mut store, &config, since, None)?, json);
        }
        SyncCommand::Kayako { since, json } => {
            let (mut store, config) = home.open()?;
            return tickets::report(&pull_kayako(&mut store, &config, since, None)?, json);
        }
        SyncCommand::Notion { full, json } => (full, json),
    };
    let (mut store, config) = home.open()?;
    let pulled = pull(&mut store, &config, full, None)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", pulled.json())?;
    } else {
        warn_pulled(&pulled);
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
