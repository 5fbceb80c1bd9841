//! Notion pages as `tam` import records: accounts from the accounts database, tickets from the
//! "Support Tickets" database. Which property holds what is configurable; the defaults are the
//! names `tam notion init` creates.
//!
//! The records go through the same importer as files, so a page with a missing or malformed
//! property is reported by page id and field and skipped, never aborting a sync.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The default name of the "Last edited by" property of both databases.
pub const LAST_EDITED_BY: &str = "Last edited by";

/// Property names of the accounts database.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountProperties {
    /// The account's name (the title property).
    pub name: String,
    /// The rep's name.
    pub rep_name: String,
    /// The rep's email.
    pub rep_email: String,
    /// The rep's Google Chat space.
    pub rep_chat_space: String,
    /// Customer contacts, comma- or semicolon-separated (or a multi-select).
    pub contacts: String,
    /// Customer contacts copied on drafts, the same way.
    pub cc_contacts: String,
    /// Days between check-ins.
    pub check_in_interval: String,
    /// The last integration heartbeat.
    pub last_heartbeat: String,
    /// API calls counted by the integration.
    pub api_call_count: String,
    /// A property of type "Last edited by": lets a sync skip the pages whose last edit was
    /// tam's own. Empty: read them too.
    pub last_edited_by: String,
}

impl Default for AccountProperties {
    fn default() -> AccountProperties {
        AccountProperties {
            name: "Name".into(),
            rep_name: "Rep".into(),
            rep_email: "Rep Email".into(),
            rep_chat_space: "Rep Chat Space".into(),
            contacts: "Contacts".into(),
            cc_contacts: "CC Contacts".into(),
            check_in_interval: "Check-in Interval".into(),
            last_heartbeat: "Last Heartbeat".into(),
            api_call_count: "API Call Count".into(),
            last_edited_by: LAST_EDITED_BY.into(),
        }
    }
}

/// Property names of the "Support Tickets" database.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TicketProperties {
    /// The subject (the title property).
    pub subject: String,
    /// The ticket's id in its source (`JIRA-101`); the page id when empty.
    pub ticket_id: String,
    /// The relation to the account's page.
    pub account: String,
    /// Priority: P1..P4 or a source name mapped by `[priorities]`.
    pub priority: String,
    /// open, pending, resolved or closed.
    pub status: String,
    /// When the ticket was opened; the page's creation time when absent.
    pub created: String,
    /// bug, question, feature_request, ...
    pub kind: String,
    /// A property of type "Last edited by", as for accounts.
    pub last_edited_by: String,
}

impl Default for TicketProperties {
    fn default() -> TicketProperties {
        TicketProperties {
            subject: "Name".into(),
            ticket_id: "Ticket ID".into(),
            account: "Account".into(),
            priority: "Priority".into(),
            status: "Status".into(),
            created: "Created".into(),
            kind: "Type".into(),
            last_edited_by: LAST_EDITED_BY.into(),
        }
    }
}

/// A select property with `options` as (name, color).
fn select(options: &[(&str, &str)]) -> Value {
    json!({"select": {"options": options.iter().map(|(n, c)| json!({"name": n, "color": c})).collect::<Vec<_>>()}})
}

/// The accounts database's properties as `POST /v1/databases` wants them: what sync reads and
/// what the scan writes. "TAM Profile" is a URL property linking the profile sub-page: a
/// relation can only name rows of its database, and the sub-page is not one.
pub fn accounts_schema(a: &AccountProperties, health: &super::crm::HealthProperties) -> Value {
    let mut s = Map::new();
    s.insert(a.name.clone(), json!({"title": {}}));
    for text in [&a.rep_name, &a.rep_chat_space, &a.contacts, &a.cc_contacts] {
        s.insert(text.clone(), json!({"rich_text": {}}));
    }
    s.insert(a.rep_email.clone(), json!({"email": {}}));
    s.insert(a.check_in_interval.clone(), json!({"number": {"format": "number"}}));
    s.insert(a.last_heartbeat.clone(), json!({"date": {}}));
    s.insert(a.api_call_count.clone(), json!({"number": {"format": "number"}}));
    s.insert(health.score.clone(), json!({"number": {"format": "number"}}));
    s.insert(health.status.clone(), select(&[("green", "green"), ("amber", "yellow"), ("red", "red")]));
    s.insert(health.last_scan.clone(), json!({"date": {}}));
    s.insert(health.escalated.clone(), json!({"checkbox": {}}));
    if !health.profile.is_empty() {
        s.insert(health.profile.clone(), json!({"url": {}}));
    }
    if !a.last_edited_by.is_empty() {
        s.insert(a.last_edited_by.clone(), json!({"last_edited_by": {}}));
    }
    Value::Object(s)
}

/// The "Support Tickets" database's properties, related to the accounts database.
pub fn tickets_schema(t: &TicketProperties, accounts_database: &str) -> Value {
    let mut s = Map::new();
    s.insert(t.subject.clone(), json!({"title": {}}));
    s.insert(t.ticket_id.clone(), json!({"rich_text": {}}));
    s.insert(t.account.clone(), json!({"relation": {"database_id": accounts_database, "single_property": {}}}));
    s.insert(t.priority.clone(), select(&[("P1", "red"), ("P2", "orange"), ("P3", "yellow"), ("P4", "gray")]));
    s.insert(
        t.status.clone(),
        select(&[("open", "red"), ("pending", "yellow"), ("resolved", "green"), ("closed", "gray")]),
    );
    s.insert(t.created.clone(), json!({"date": {}}));
    s.insert(
        t.kind.clone(),
        select(&[("bug", "red"), ("question", "blue"), ("feature_request", "purple"), ("incident", "orange")]),
    );
    if !t.last_edited_by.is_empty() {
        s.insert(t.last_edited_by.clone(), json!({"last_edited_by": {}}));
    }
    Value::Object(s)
}

/// The `field` of each item of a list property, e.g. each rich-text run's `plain_text`.
fn each<'a>(items: &'a Value, field: &str) -> Option<Vec<&'a str>> {
    items.as_array().map(|a| a.iter().filter_map(|i| i.pointer(field).and_then(Value::as_str)).collect())
}

/// The text of a rich-text array (a title, a property, a database's name).
pub fn plain_text(runs: &Value) -> String {
    each(runs, "/plain_text").unwrap_or_default().concat()
}

/// A property's value as text: titles and rich text joined, a select's name, a date's start,
/// a number, an email, a URL, a multi-select's names joined by `;`.
fn text(page: &Value, name: &str) -> Option<String> {
    let prop = page.get("properties")?.get(name)?;
    let kind = prop.get("type")?.as_str()?;
    let value = prop.get(kind)?;
    let out = match kind {
        "title" | "rich_text" => each(value, "/plain_text")?.concat(),
        "select" | "status" => value.get("name")?.as_str()?.to_owned(),
        "multi_select" => each(value, "/name")?.join(";"),
        "date" => value.get("start")?.as_str()?.to_owned(),
        "number" => value.as_f64().map(|n| if n.fract() == 0.0 { format!("{n:.0}") } else { n.to_string() })?,
        "email" | "url" | "phone_number" | "created_time" | "last_edited_time" => value.as_str()?.to_owned(),
        _ => return None,
    };
    let out = out.trim().to_owned();
    (!out.is_empty()).then_some(out)
}

/// Whether two Notion ids name the same object: Notion accepts them with or without hyphens.
pub fn same_id(a: &str, b: &str) -> bool {
    let bare = |id: &str| id.chars().filter(|c| *c != '-').map(|c| c.to_ascii_lowercase()).collect::<String>();
    bare(a) == bare(b)
}

/// The database a page is a row of (its parent; with data sources, the source's database).
pub fn parent_database(page: &Value) -> Option<&str> {
    page.pointer("/parent/database_id").and_then(Value::as_str)
}

/// The filter that leaves out pages whose last edit was `user`'s, on the database's property
/// `property` of type "Last edited by" (Notion's people condition).
pub fn not_last_edited_by(property: &str, user: &str) -> Value {
    json!({"property": property, "last_edited_by": {"does_not_contain": user}})
}

fn page_id(page: &Value) -> String {
    page.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// A Notion date without a time means midnight UTC; the importer wants RFC 3339.
fn instant(date: String) -> String {
    if date.len() == 10 { format!("{date}T00:00:00Z") } else { date }
}

fn put(record: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        record.insert(key.to_owned(), v);
    }
}

/// The import record of an account page (the page id is the account id).
pub fn account_record(tenant: &str, page: &Value, p: &AccountProperties) -> Value {
    let mut r = Map::new();
    r.insert("record".into(), json!("account"));
    r.insert("tenant_id".into(), json!(tenant));
    r.insert("id".into(), json!(page_id(page)));
    put(&mut r, "name", text(page, &p.name).map(Value::from));
    put(&mut r, "rep_name", text(page, &p.rep_name).map(Value::from));
    put(&mut r, "rep_email", text(page, &p.rep_email).map(Value::from));
    put(&mut r, "rep_chat_space", text(page, &p.rep_chat_space).map(Value::from));
    let list = |name: &str| {
        text(page, name)
            .map(|c| c.split([',', ';']).map(str::trim).filter(|s| !s.is_empty()).map(Value::from).collect::<Vec<_>>())
    };
    put(&mut r, "contacts", list(&p.contacts).map(Value::from));
    put(&mut r, "cc_contacts", list(&p.cc_contacts).map(Value::from));
    // Numbers stay text here when malformed, so the importer names the field.
    let number = |t: String| t.parse::<u64>().map_or(Value::from(t), Value::from);
    put(&mut r, "check_in_interval_days", text(page, &p.check_in_interval).map(number));
    put(&mut r, "last_heartbeat", text(page, &p.last_heartbeat).map(|d| Value::from(instant(d))));
    put(&mut r, "api_call_count", text(page, &p.api_call_count).map(number));
    Value::Object(r)
}

/// The import record of a ticket page; its account is the first page of the relation.
pub fn ticket_record(tenant: &str, page: &Value, p: &TicketProperties) -> Value {
    let mut r = Map::new();
    r.insert("record".into(), json!("ticket"));
    r.insert("tenant_id".into(), json!(tenant));
    r.insert("id".into(), json!(text(page, &p.ticket_id).unwrap_or_else(|| page_id(page))));
    r.insert("source".into(), json!("notion"));
    let account =
        page.pointer(&format!("/properties/{}/relation/0/id", p.account.replace('~', "~0").replace('/', "~1")));
    put(&mut r, "account_id", account.cloned());
    put(&mut r, "subject", text(page, &p.subject).map(Value::from));
    put(&mut r, "priority", text(page, &p.priority).map(Value::from));
    put(&mut r, "status", text(page, &p.status).map(|s| Value::from(s.to_lowercase())));
    let created =
        text(page, &p.created).or_else(|| page.get("created_time").and_then(Value::as_str).map(str::to_owned));
    put(&mut r, "created_at", created.map(|d| Value::from(instant(d))));
    put(&mut r, "updated_at", page.get("last_edited_time").cloned());
    put(&mut r, "kind", text(page, &p.kind).map(|k| Value::from(k.to_lowercase().replace(' ', "_"))));
    Value::Object(r)
}

/// The properties of a "Support Tickets" page for a ticket `record` whose priority is already
/// `P1`..`P4` and status one of tam's four: what a Jira or Kayako sync writes in Notion mode.
pub fn ticket_properties(record: &Value, p: &TicketProperties) -> Value {
    let text = |k: &str| record[k].as_str().unwrap_or_default().to_owned();
    let rich = |t: String| json!([{"type": "text", "text": {"content": super::profile::split_utf16(&t, 2000).0}}]);
    let mut props = Map::new();
    props.insert(p.subject.clone(), json!({"title": rich(text("subject"))}));
    props.insert(p.ticket_id.clone(), json!({"rich_text": rich(text("id"))}));
    props.insert(p.account.clone(), json!({"relation": [{"id": text("account_id")}]}));
    props.insert(p.priority.clone(), json!({"select": {"name": text("priority")}}));
    props.insert(p.status.clone(), json!({"select": {"name": text("status")}}));
    props.insert(p.created.clone(), json!({"date": {"start": text("created_at")}}));
    if let Some(kind) = record["kind"].as_str() {
        props.insert(p.kind.clone(), json!({"select": {"name": kind}}));
    }
    Value::Object(props)
}

/// The ticket id a "Support Tickets" page carries, if any.
pub fn page_ticket_id(page: &Value, p: &TicketProperties) -> Option<String> {
    text(page, &p.ticket_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_pages() -> Vec<Value> {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/notion_constructed_database_query_tickets_page1.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        v["response_body"]["results"].as_array().unwrap().clone()
    }

    #[test]
    fn a_ticket_page_becomes_a_ticket_record() {
        let pages = fixture_pages();
        let r = ticket_record("acme", &pages[0], &TicketProperties::default());
        assert_eq!(
            r,
            json!({
                "record": "ticket", "tenant_id": "acme", "id": "JIRA-101", "source": "notion",
                "account_id": "16cabc1e-edcd-8200-9000-00000000a001", "subject": "Login fails with SSO",
                "priority": "P1", "status": "open", "created_at": "2024-01-10T09:15:00.000Z",
                "updated_at": "2024-01-10T09:15:00.000Z",
            })
        );
    }

    #[test]
    fn an_account_page_becomes_an_account_record_and_bad_values_stay_visible() {
        let rich = |t: &str| json!({"type": "rich_text", "rich_text": [{"type": "text", "plain_text": t}]});
        let page = json!({
            "id": "acc-1",
            "properties": {
                "Name": {"type": "title", "title": [{"plain_text": "North"}, {"plain_text": "wind"}]},
                "Rep": rich("Ana"),
                "Rep Email": {"type": "email", "email": "ana@v.example"},
                "Contacts": rich("ops@nw.example; cto@nw.example"),
                "Check-in Interval": {"type": "number", "number": 14},
                "Last Heartbeat": {"type": "date", "date": {"start": "2026-03-28"}},
                "API Call Count": rich("lots"),
                "Rep Chat Space": rich("  "),
            }
        });
        assert_eq!(
            account_record("acme", &page, &AccountProperties::default()),
            json!({
                "record": "account", "tenant_id": "acme", "id": "acc-1", "name": "Northwind", "rep_name": "Ana",
                "rep_email": "ana@v.example", "contacts": ["ops@nw.example", "cto@nw.example"],
                "check_in_interval_days": 14, "last_heartbeat": "2026-03-28T00:00:00Z", "api_call_count": "lots",
            })
        );
    }
}
