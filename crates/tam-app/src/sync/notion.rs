//! The `[notion]` tenant's accounts and tickets, pulled from its two databases, and the
//! tickets of its helpdesks pushed into the second.
//!
//! Each database is read with one paginated query, asking only for pages edited since the last
//! successful pull (less a minute: Notion rounds `last_edited_time` to the minute) by someone
//! other than tam: what tam wrote, it imported from its writes' answers ([`import_written`]).
//! The pages become import records and go through the importer, so a malformed page is
//! reported by id and field and skipped. The watermark moves only when the whole pull succeeded.

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tam_agent::import::{ImportOptions, ImportReport, Importer};
use tam_connectors::notion::records::{self as schema, AccountProperties, TicketProperties};
use tam_connectors::notion::tickets::{TicketsDatabase, push};
use tam_connectors::notion::{Notion, NotionError};
use tam_core::{PriorityNames, SignedDuration, TenantId};
use tam_store::Store;

use super::{Put, TicketSink};

/// The tenant whose accounts live in Notion, and where.
#[derive(Debug, Clone)]
pub struct NotionBook {
    /// The tenant.
    pub tenant: TenantId,
    /// The Accounts database.
    pub accounts_database: Option<String>,
    /// The Support Tickets database.
    pub tickets_database: Option<String>,
    /// The accounts database's property names.
    pub accounts: AccountProperties,
    /// The tickets database's property names.
    pub tickets: TicketProperties,
}

impl NotionBook {
    /// Both databases, which a pull reads, or why not.
    pub fn databases(&self) -> Result<(&str, &str)> {
        match (&self.accounts_database, &self.tickets_database) {
            (Some(accounts), Some(tickets)) => Ok((accounts, tickets)),
            _ => anyhow::bail!("[notion] needs accounts_database and tickets_database (`tam notion init` prints them)"),
        }
    }
}

/// What one pull from Notion did.
#[derive(Debug)]
pub struct Pulled {
    /// The `[notion]` tenant.
    pub tenant: TenantId,
    /// Whether every page was read (no earlier pull, or a full one).
    pub full: bool,
    /// Account pages read.
    pub account_pages: usize,
    /// Ticket pages read.
    pub ticket_pages: usize,
    /// What the importer stored and rejected.
    pub report: ImportReport,
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

    /// Reports each rejected page, and each note, on stderr.
    pub fn warn(&self) {
        for r in &self.report.rejected {
            crate::log::warn(format_args!("notion: rejected: {r}"));
        }
        for note in &self.notes {
            crate::log::warn(format_args!("{note}"));
        }
    }
}

/// The `sync_state` entry saying when tam last wrote a page of `source` that it could not
/// import from the write's answer (a ticket of an account the store does not know yet, a page
/// a person had left malformed): the next pull reads that database's own writes too.
fn missed_own_write(source: &str) -> String {
    format!("{source}:missed-own-write")
}

/// Pulls `book`'s accounts and tickets into `store`: everything when `full`, else the pages
/// edited since the last successful pull, except those whose last edit was tam's own (health,
/// profile links, tickets from Jira or Kayako): what tam wrote, it imported from the write's
/// answer already ([`import_written`]). `import.now` becomes the next watermark.
pub fn pull(
    store: &mut Store,
    notion: &Notion,
    book: &NotionBook,
    full: bool,
    import: ImportOptions,
) -> Result<Pulled> {
    let (accounts_db, tickets_db) = book.databases()?;
    let tenant = &book.tenant;
    let calls_before = notion.calls();
    let started = import.now;

    // What to ask of one database: pages edited since its watermark (none: every page), and
    // the "Last edited by" property to leave out tam's own edits with (none: keep them).
    let plan = |source: &str, property: &str| -> Result<(Option<Value>, Option<String>)> {
        if full {
            return Ok((None, None));
        }
        let Some(at) = store.sync_watermark(tenant, source)? else { return Ok((None, None)) };
        let since = at.checked_sub(SignedDuration::from_mins(1)).unwrap_or(at);
        let filter = json!({"timestamp": "last_edited_time", "last_edited_time": {"on_or_after": since.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()}});
        let missed = store.sync_watermark(tenant, &missed_own_write(source))?.is_some_and(|m| m >= since);
        let skip_own = (!property.is_empty() && !missed).then(|| property.to_owned());
        Ok((Some(filter), skip_own))
    };
    let (account_filter, account_skip) = plan("notion:accounts", &book.accounts.last_edited_by)?;
    let (ticket_filter, ticket_skip) = plan("notion:tickets", &book.tickets.last_edited_by)?;
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

    let name = tenant.as_str();
    let mut importer = Importer::new(store, import);
    importer.push("notion:accounts", accounts.iter().map(|p| schema::account_record(name, p, &book.accounts)))?;
    importer.push("notion:tickets", tickets.iter().map(|p| schema::ticket_record(name, p, &book.tickets)))?;
    let report = importer.finish()?;
    // Rejected pages are reported, not retried forever: they come back when someone edits them.
    store.set_sync_watermark(tenant, "notion:accounts", started)?;
    store.set_sync_watermark(tenant, "notion:tickets", started)?;
    Ok(Pulled {
        tenant: tenant.clone(),
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
/// a pull would, so a pull that leaves out tam's own edits misses nothing a person changed
/// before them. A page that cannot be imported (its account unknown to the store, a value a
/// person left malformed) makes the next pull read that database's own edits too, and report
/// it there as it always did.
pub fn import_written(
    store: &mut Store,
    book: &NotionBook,
    import: ImportOptions,
    pages: &[Value],
) -> Result<ImportReport> {
    let now = import.now;
    let row_of = |page: &Value, db: &Option<String>| {
        let live = page["archived"] != true && page["in_trash"] != true;
        live && db.as_deref().zip(schema::parent_database(page)).is_some_and(|(a, b)| schema::same_id(a, b))
    };
    let name = book.tenant.as_str();
    let accounts = pages.iter().filter(|p| row_of(p, &book.accounts_database));
    let tickets = pages.iter().filter(|p| row_of(p, &book.tickets_database));
    let mut importer = Importer::new(store, import);
    importer.push("notion:accounts", accounts.map(|p| schema::account_record(name, p, &book.accounts)))?;
    importer.push("notion:tickets", tickets.map(|p| schema::ticket_record(name, p, &book.tickets)))?;
    let report = importer.finish()?;
    for r in &report.rejected {
        store.set_sync_watermark(&book.tenant, &missed_own_write(&r.source), now)?;
    }
    Ok(report)
}

/// Imports what `notion`'s writes answered since the last call (health, profile links), as
/// [`import_written`] does. On failure the pages are kept for the next call: the pull leaves
/// them out.
pub fn import_own_writes(store: &mut Store, notion: &Notion, book: &NotionBook, import: ImportOptions) -> Result<()> {
    let pages = notion.take_written_pages();
    if pages.is_empty() {
        return Ok(());
    }
    let report = match import_written(store, book, import, &pages) {
        Ok(report) => report,
        Err(e) => {
            notion.keep_written_pages(pages);
            return Err(e);
        }
    };
    for r in &report.rejected {
        crate::log::warn(format_args!("notion: not imported from tam's own write (the next sync reads it): {r}"));
    }
    Ok(())
}

/// The Support Tickets database of the `[notion]` tenant, from which its scans read.
pub struct IntoNotion<'a> {
    /// The process's Notion client.
    pub notion: &'a Notion,
    /// The tenant and its databases.
    pub book: &'a NotionBook,
    /// How the sources' priority names map to P1..P4.
    pub priorities: &'a PriorityNames,
}

impl TicketSink for IntoNotion<'_> {
    fn put(
        &self,
        store: &mut Store,
        tenant: &TenantId,
        source: &'static str,
        records: &[Value],
        import: ImportOptions,
    ) -> Result<Put> {
        let (notion, book) = (self.notion, self.book);
        anyhow::ensure!(*tenant == book.tenant, "tenant {tenant}'s tickets are not in Notion");
        let calls_before = notion.calls();
        let now = import.now;
        let to = TicketsDatabase {
            tenant: book.tenant.as_str(),
            database: book.tickets_database.as_deref().context("[notion] tickets_database is not set")?,
            properties: &book.tickets,
            priorities: self.priorities,
        };
        let pushed = push(notion, &to, source, records);
        // The pull leaves out pages whose last edit was tam's: these tickets reach the store
        // from the answers to their writes instead, also when a later write failed (the next
        // sync finds them unchanged in Notion and writes them no more).
        let written = notion.take_written_pages();
        if let Err(e) = import_written(store, book, import, &written) {
            // These answers are gone: the next pull must read tam's own edits instead.
            for source in ["notion:accounts", "notion:tickets"] {
                let _ = store.set_sync_watermark(tenant, &missed_own_write(source), now);
            }
            return Err(e);
        }
        let pushed = pushed?;
        Ok(Put {
            inserted: pushed.inserted,
            updated: pushed.updated,
            rejected: pushed.rejected,
            calls: notion.calls() - calls_before,
        })
    }
}
