//! Tickets from another source (Jira, Kayako) written into the `[notion]` tenant's Support
//! Tickets database, from which its scans read: one read of the database to learn which
//! tickets have pages and what they hold, then a write for each new or changed ticket only.

use std::collections::HashMap;

use serde_json::{Value, json};
use tam_core::{Priority, PriorityNames, TicketStatus, Timestamp};

use super::records::{self as schema, TicketProperties, ticket_record};
use super::{Notion, NotionError};

/// Where the tickets go and how they are named there.
pub struct TicketsDatabase<'a> {
    /// The `[notion]` tenant.
    pub tenant: &'a str,
    /// The Support Tickets database.
    pub database: &'a str,
    /// Its property names.
    pub properties: &'a TicketProperties,
    /// How the source's priority names map to P1..P4.
    pub priorities: &'a PriorityNames,
}

/// What a push did.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Pages created.
    pub inserted: u64,
    /// Pages changed.
    pub updated: u64,
    /// Tickets skipped, each named with why.
    pub rejected: Vec<String>,
}

/// Writes `records` (import records of tickets from `source`) to the database. A ticket Notion
/// refuses (a 400: an account that is not a page of the Accounts database, a bad value) is
/// skipped and named; any other failure stops the push.
pub fn push(notion: &Notion, to: &TicketsDatabase<'_>, source: &str, records: &[Value]) -> Result<Pushed, NotionError> {
    let pages = notion.query_all(to.database, None, None)?;
    let existing: HashMap<String, &Value> =
        pages.iter().filter_map(|page| Some((schema::page_ticket_id(page, to.properties)?, page))).collect();
    let mut pushed = Pushed::default();
    for record in records {
        let id = record["id"].as_str().unwrap_or_default();
        let ticket = match normalised(record, to.priorities) {
            Ok(t) => t,
            Err(why) => {
                pushed.rejected.push(format!("{source}: ticket {id}: {why}"));
                continue;
            }
        };
        let properties = schema::ticket_properties(&ticket, to.properties);
        let (refusal, count) = match existing.get(id) {
            Some(page) => {
                let stored = ticket_record(to.tenant, page, to.properties);
                let same = |k: &str| match (stored[k].as_str(), ticket[k].as_str()) {
                    (Some(a), Some(b)) if k == "created_at" => a.parse::<Timestamp>().ok() == b.parse().ok(),
                    (a, b) => a == b,
                };
                if ["subject", "account_id", "priority", "status", "created_at", "kind"].iter().all(|k| same(k)) {
                    continue;
                }
                let page_id = page["id"].as_str().unwrap_or_default();
                let patch = json!({"properties": properties});
                (refused(notion.request("PATCH", &format!("/v1/pages/{page_id}"), Some(&patch)))?, &mut pushed.updated)
            }
            None => {
                let body = json!({"parent": {"database_id": to.database}, "properties": properties});
                (refused(notion.request("POST", "/v1/pages", Some(&body)))?, &mut pushed.inserted)
            }
        };
        match refusal {
            None => *count += 1,
            Some(why) => pushed.rejected.push(format!("{source}: ticket {id}: Notion refused it: {why}")),
        }
    }
    Ok(pushed)
}

/// A ticket record made ready for Notion: priority as `P1`..`P4`, status as tam's, times as
/// RFC 3339, the account present; or why it cannot be.
fn normalised(record: &Value, priorities: &PriorityNames) -> Result<Value, String> {
    let field = |k: &str| record[k].as_str().filter(|v| !v.trim().is_empty());
    let mut r = record.clone();
    field("account_id").ok_or("field account_id: missing")?;
    let priority = Priority::parse(field("priority").unwrap_or_default(), priorities).map_err(|e| e.to_string())?;
    r["priority"] = json!(priority.as_str());
    let status = TicketStatus::parse(field("status").unwrap_or_default()).map_err(|e| e.to_string())?;
    r["status"] = json!(status.as_str());
    let created: Timestamp = field("created_at")
        .ok_or("field created_at: missing")?
        .parse()
        .map_err(|e| format!("field created_at: {e}"))?;
    r["created_at"] = json!(created.to_string());
    Ok(r)
}

/// Notion's refusal of one ticket, which skips it; any other failure stops the push.
fn refused(result: Result<Value, NotionError>) -> Result<Option<String>, NotionError> {
    match result {
        Ok(_) => Ok(None),
        Err(NotionError::Rejected(f)) => Ok(Some(f.message)),
        Err(e) => Err(e),
    }
}
