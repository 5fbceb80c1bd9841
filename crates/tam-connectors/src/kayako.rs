//! Kayako as a ticket source, in both of its APIs:
//!
//! * **Classic** (`/api/index.php?e=/Tickets/...`, XML): every request signed with a fresh salt
//!   (`signature = base64(HMAC-SHA256(secret, salt))`, URL-encoded), values as CDATA or plain
//!   text, unix times; priority and status ids resolved through `/Tickets/TicketPriority` and
//!   `/Tickets/TicketStatus`. Tickets are listed newest activity first, so an incremental sync
//!   stops at the first page older than the watermark.
//! * **The JSON API v1** (`/api/v1/cases.json`, offset and limit): basic auth once, then the
//!   session it returns; priorities and statuses from their own endpoints. A case names its
//!   requester, type and custom fields' definitions by reference only, so each page asks for
//!   what the mapping needs with `include=` and the references are resolved from the page's
//!   `resources`: one call per page, none per case.
//!
//! Both APIs give a ticket the id `KAYAKO-<numeric id>` (Classic's `id` attribute is the
//! ticket id the JSON API calls `id`; the display id exists in Classic only), so moving a
//! helpdesk from one API to the other updates its tickets instead of copying them. The kind
//! comes from the ticket type, so feature requests become opportunities as Jira's do.
//!
//! Either way tickets become the importer's records, so a bad one is named and skipped.

pub mod xml;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tam_core::Timestamp;

use self::xml::Element;

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 3;

/// What a Kayako call can end in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KayakoError {
    /// 401 or 403: a wrong API key, secret or signature, or a wrong password.
    #[error("Kayako refused the credentials ({0}); check the API key and secret (Classic) or the email and password")]
    Unauthorized(String),
    /// Another 4xx.
    #[error("Kayako rejected the request: {0}")]
    Rejected(String),
    /// 429 or 5xx after every attempt, or no answer.
    #[error("Kayako is unavailable: {0}")]
    Unavailable(String),
    /// An answer that is not the expected XML or JSON.
    #[error("Kayako answered something unreadable: {0}")]
    Malformed(String),
}

/// `base64(HMAC-SHA256(key = secret, message = salt))`, the Classic API's signature.
pub fn signature(secret: &str, salt: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    tam_core::mime::base64(ring::hmac::sign(&key, salt.as_bytes()).as_ref())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (`+`, `/`, `=` included).
pub fn urlencode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// How Kayako tickets become tam tickets.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KayakoMapping {
    /// Where the account comes from: `userorganization` or `userorganizationid` (Classic);
    /// a custom field key, `organization` (the requester's organization's name),
    /// `organization_id` or `requester` (the requester's user id) (JSON API). Several,
    /// comma-separated, are tried in order: the first with a value wins.
    pub account_field: String,
    /// Values of that field and the account id each stands for; unlisted values are the id.
    pub accounts: BTreeMap<String, String>,
    /// Status titles (case-insensitive) and the ticket status each means; unlisted statuses are
    /// resolved when Kayako marks them so, else open.
    pub statuses: BTreeMap<String, String>,
    /// The priority of a ticket that has none (Kayako allows that).
    pub missing_priority: String,
    /// Ticket types and the kind each means (`feature_request`, `bug`, ...): Classic type ids
    /// (installation-specific), JSON API type labels (case-insensitive) or ids. An unlisted
    /// JSON type label is read by name ("Feature request" is a `feature_request`); an unlisted
    /// Classic type id gives no kind, since Classic tickets carry the id only.
    pub types: BTreeMap<String, String>,
    /// The tag that marks a ticket as a real escalation of its account (`escalation`): the
    /// ticket is then also an escalation record, at its creation, for `tam backtest`.
    pub escalation_tag: Option<String>,
}

impl Default for KayakoMapping {
    fn default() -> KayakoMapping {
        KayakoMapping {
            account_field: "userorganization".into(),
            accounts: BTreeMap::new(),
            statuses: [("closed", "closed"), ("on hold", "pending"), ("pending", "pending")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into(),
            missing_priority: "P4".into(),
            types: BTreeMap::new(),
            escalation_tag: None,
        }
    }
}

impl KayakoMapping {
    fn account(&self, value: Option<&str>) -> Option<String> {
        let v = value?.trim();
        (!v.is_empty()).then(|| self.accounts.get(v).cloned().unwrap_or_else(|| v.to_owned()))
    }

    /// The fields `account_field` names, in order.
    fn account_sources(&self) -> impl Iterator<Item = &str> {
        self.account_field.split(',').map(str::trim).filter(|f| !f.is_empty())
    }

    /// The kind of a ticket of type `id` (labelled `label`, when the API says it).
    fn kind(&self, id: Option<&str>, label: Option<&str>) -> Option<String> {
        let listed =
            |key: &str| self.types.iter().find(|(k, _)| k.eq_ignore_ascii_case(key.trim())).map(|(_, v)| v.clone());
        label.and_then(listed).or_else(|| id.and_then(listed)).or_else(|| label.map(crate::ticket_kind))
    }

    /// The optional fields a JSON API case list must add with `fields=` for this mapping: the
    /// tags, which a case leaves out unless asked, when a tag marks escalations.
    pub fn fields(&self) -> &'static str {
        if self.escalation_tag.is_some() { "+tags" } else { "" }
    }

    /// The escalation record of a ticket `record` (already mapped) whose `tags` carry the
    /// escalation tag: its account escalated when the ticket was created.
    pub fn escalation(&self, record: &Value, tags: &[String]) -> Option<Value> {
        let tag = self.escalation_tag.as_deref()?;
        if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
            return None;
        }
        Some(json!({
            "record": "escalation", "tenant_id": record["tenant_id"], "account_id": record["account_id"],
            "at": record["created_at"], "source": "kayako",
            "note": format!("{}: {}", record["id"].as_str().unwrap_or_default(), record["subject"].as_str().unwrap_or_default()),
        }))
    }

    /// What a JSON API case list must `include=` for this mapping: the type's label always,
    /// the requester for an organization, the custom fields' definitions (their keys) for a
    /// custom field.
    pub fn includes(&self) -> String {
        let mut include = vec!["case_type"];
        for source in self.account_sources() {
            let needs: &[&str] = match source {
                "requester" => &[],
                "organization_id" => &["user"],
                "organization" => &["user", "organization"],
                _ => &["case_field"],
            };
            include.extend(needs.iter().copied().filter(|n| !include.contains(n)).collect::<Vec<_>>());
        }
        include.join(",")
    }

    fn status(&self, title: &str, resolved: bool) -> String {
        let lower = title.to_lowercase();
        match self.statuses.iter().find(|(k, _)| k.to_lowercase() == lower) {
            Some((_, s)) => s.clone(),
            None if resolved => "resolved".to_owned(),
            None => "open".to_owned(),
        }
    }
}

/// A Classic status: its title and whether Kayako counts it as resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassicStatus {
    /// Title (`Open`, `Closed`).
    pub title: String,
    /// `markasresolved`.
    pub resolved: bool,
}

fn unix(raw: Option<&str>) -> Option<String> {
    let secs: i64 = raw?.trim().parse().ok()?;
    Timestamp::from_second(secs).ok().map(|t| t.to_string())
}

fn put(r: &mut Map<String, Value>, key: &str, value: Option<String>) {
    if let Some(v) = value {
        r.insert(key.to_owned(), json!(v));
    }
}

/// The import record of a Classic `<ticket>`: `KAYAKO-<id attribute>` is the ticket id,
/// `lastactivity` its update time; or why the ticket has no account, naming it.
pub fn classic_record(
    tenant: &str,
    ticket: &Element,
    priorities: &BTreeMap<String, String>,
    statuses: &BTreeMap<String, ClassicStatus>,
    m: &KayakoMapping,
) -> Result<Value, String> {
    let mut r = Map::new();
    r.insert("record".into(), json!("ticket"));
    r.insert("tenant_id".into(), json!(tenant));
    let display = ticket.text_of("displayid").unwrap_or_default();
    let Some(number) = ticket.attribute("id").filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit())) else {
        return Err(format!("ticket {display}: field id: the <ticket> has no numeric id attribute"));
    };
    let id = format!("KAYAKO-{number}");
    r.insert("id".into(), json!(id));
    r.insert("source".into(), json!("kayako"));
    let account = m.account_sources().find_map(|field| m.account(ticket.text_of(field)));
    let Some(account) = account else {
        return Err(format!(
            "ticket {id} ({display}): field account_id: none of {:?} has a value (account_field)",
            m.account_field
        ));
    };
    put(&mut r, "account_id", Some(account));
    put(&mut r, "subject", ticket.text_of("subject").map(str::to_owned));
    let priority = ticket.text_of("priorityid").filter(|p| *p != "0").map(|id| {
        // An id Kayako did not list is passed on so the importer names it.
        priorities.get(id).cloned().unwrap_or_else(|| format!("Kayako priority id {id}"))
    });
    put(&mut r, "priority", Some(priority.unwrap_or_else(|| m.missing_priority.clone())));
    let status = ticket.text_of("statusid").map(|id| match statuses.get(id) {
        Some(s) => m.status(&s.title, s.resolved),
        None => format!("Kayako status id {id}"),
    });
    put(&mut r, "status", status);
    put(&mut r, "created_at", unix(ticket.text_of("creationtime")));
    put(&mut r, "updated_at", unix(ticket.text_of("lastactivity")));
    put(&mut r, "kind", m.kind(ticket.text_of("typeid"), None));
    resolved_at_last_activity(&mut r);
    Ok(Value::Object(r))
}

/// Kayako keeps no resolution time: a resolved or closed ticket was resolved, as far as can be
/// told, at its last activity.
fn resolved_at_last_activity(r: &mut Map<String, Value>) {
    if matches!(r.get("status").and_then(Value::as_str), Some("resolved" | "closed"))
        && let Some(updated) = r.get("updated_at").cloned()
    {
        r.insert("resolved_at".into(), updated);
    }
}

/// A Classic ticket's tags: its `<tags>` text, split at commas (a tag may hold spaces).
pub fn classic_tags(ticket: &Element) -> Vec<String> {
    ticket
        .text_of("tags")
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A JSON API case's tags (present when the list asked for `fields=+tags`): names, or
/// resources with a name.
pub fn case_tags(case: &Value) -> Vec<String> {
    case["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().or_else(|| t["name"].as_str()).map(str::to_owned))
        .collect()
}

/// Settings of a [`Classic`] client.
#[derive(Debug, Clone)]
pub struct ClassicConfig {
    /// `https://<helpdesk>/api/index.php`.
    pub base_url: String,
    /// The API key.
    pub api_key: String,
    /// Tickets per page.
    pub page_size: u32,
    /// Wait after the first failure; doubled after each further one.
    pub backoff: Duration,
    /// Limit on one call.
    pub timeout: Duration,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into()
}

/// A Kayako Classic helpdesk.
pub struct Classic {
    config: ClassicConfig,
    secret: String,
    agent: ureq::Agent,
    calls: AtomicU64,
}

impl std::fmt::Debug for Classic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classic").field("base_url", &self.config.base_url).field("secret", &"[redacted]").finish()
    }
}

impl Classic {
    /// A client signing with `secret`.
    pub fn new(config: ClassicConfig, secret: &str) -> Classic {
        let agent = agent(config.timeout);
        Classic { config, secret: secret.to_owned(), agent, calls: AtomicU64::new(0) }
    }

    /// Requests sent, retries included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// A signed `GET` of the controller path `e` (`/Tickets/TicketStatus`), parsed.
    fn get(&self, e: &str) -> Result<Element, KayakoError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::Relaxed);
            // A fresh salt per request, so a captured URL cannot be replayed with another path.
            let mut bytes = [0u8; 12];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                .map_err(|_| KayakoError::Unavailable("no randomness for the salt".into()))?;
            let salt: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let url = format!(
                "{}?e={e}&apikey={}&salt={salt}&signature={}",
                self.config.base_url,
                urlencode(&self.config.api_key),
                urlencode(&signature(&self.secret, &salt))
            );
            let retry = crate::Retry::new(MAX_ATTEMPTS, self.config.backoff);
            let mut response = match self.agent.get(&url).call() {
                Ok(r) => r,
                Err(err) => match retry.wait(attempt, None) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        continue;
                    }
                    // The URL carries the API key: never let it into a message.
                    None => {
                        let said = err.to_string().replace(&self.config.api_key, "[api key]");
                        return Err(KayakoError::Unavailable(format!("GET {e}: {said}")));
                    }
                },
            };
            let status = response.status().as_u16();
            let wait = retry.wait(attempt, crate::retry_after(&response));
            let body = response.body_mut().read_to_string().unwrap_or_default();
            match status {
                200..=299 => return xml::parse(&body).map_err(|err| KayakoError::Malformed(format!("{e}: {err}"))),
                401 | 403 => return Err(KayakoError::Unauthorized(format!("{status} on {e}"))),
                429 | 500..=599 => match wait {
                    Some(wait) => std::thread::sleep(wait),
                    None => {
                        return Err(KayakoError::Unavailable(format!("{status} on {e} after {attempt} attempts")));
                    }
                },
                _ => {
                    // The helpdesk may echo the signed URL: its key and secret never reach a message.
                    let body = crate::scrub(&body, &[&self.config.api_key, &self.secret]);
                    let said: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
                    return Err(KayakoError::Rejected(format!("{status} on {e}: {said}")));
                }
            }
        }
    }

    /// Priority ids and titles.
    pub fn priorities(&self) -> Result<BTreeMap<String, String>, KayakoError> {
        let root = self.get("/Tickets/TicketPriority")?;
        Ok(root
            .children
            .iter()
            .filter_map(|p| Some((p.text_of("id")?.to_owned(), p.text_of("title")?.to_owned())))
            .collect())
    }

    /// Status ids, titles and whether each counts as resolved.
    pub fn statuses(&self) -> Result<BTreeMap<String, ClassicStatus>, KayakoError> {
        let root = self.get("/Tickets/TicketStatus")?;
        Ok(root
            .children
            .iter()
            .filter_map(|s| {
                let status = ClassicStatus {
                    title: s.text_of("title")?.to_owned(),
                    resolved: s.text_of("markasresolved") == Some("1"),
                };
                Some((s.text_of("id")?.to_owned(), status))
            })
            .collect())
    }

    /// What [`Classic::tickets`] asks for, for a sync's report.
    pub fn tickets_query(departments: &str) -> String {
        format!("/Tickets/Ticket/ListAll/{departments}")
    }

    /// Tickets of `departments` (comma-separated ids), latest activity first, handed to
    /// `each`; stops at the first ticket whose last activity is before `since`. Returns how
    /// many were handed over.
    pub fn tickets(
        &self,
        departments: &str,
        since: Option<Timestamp>,
        mut each: impl FnMut(&Element),
    ) -> Result<u64, KayakoError> {
        if !departments.bytes().all(|b| b.is_ascii_digit() || b == b',' || b == b'-') {
            return Err(KayakoError::Rejected(format!("departments {departments:?} are not ids")));
        }
        let count = self.config.page_size.max(1);
        let mut start = 0;
        let mut handed = 0;
        let mut previous_first: Option<String> = None;
        loop {
            let page =
                self.get(&format!("/Tickets/Ticket/ListAll/{departments}/-1/-1/-1/{count}/{start}/lastactivity/DESC"))?;
            let tickets: Vec<&Element> = page.children.iter().filter(|t| t.name == "ticket").collect();
            // Only an empty page ends the list: a server may cap its pages below what was
            // asked, and a short page is not the last. A server that ignores the offset and
            // answers the same page again ends it too.
            let first = tickets.first().and_then(|t| t.attribute("id").or(t.text_of("displayid"))).map(str::to_owned);
            if tickets.is_empty() || (first.is_some() && first == previous_first) {
                return Ok(handed);
            }
            previous_first = first;
            for t in &tickets {
                let active: Option<i64> = t.text_of("lastactivity").and_then(|a| a.parse().ok());
                if let (Some(since), Some(active)) = (since, active)
                    && active < since.as_second()
                {
                    return Ok(handed);
                }
                each(t);
                handed += 1;
            }
            start += u32::try_from(tickets.len()).unwrap_or(u32::MAX);
        }
    }
}

/// A reference's id as text (`{"id": 7, "resource_type": "user"}` → `7`).
fn id_of(value: &Value) -> Option<String> {
    match &value["id"] {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// A custom field's value as text.
fn text_value(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether `value` is a bare `{id, resource_type}` reference: the API sends one in place of a
/// nested resource that the request did not `include=`.
fn is_ref(value: &Value) -> bool {
    value.as_object().is_some_and(|map| {
        map.contains_key("resource_type")
            && map.keys().all(|k| matches!(k.as_str(), "id" | "resource_type" | "resource_url"))
    })
}

/// The value `source` (an `account_field` entry) names on a resolved case, or why there is none.
fn case_account_value(case: &Value, source: &str) -> Result<String, String> {
    let requester = &case["requester"];
    let who = || id_of(requester).map_or_else(|| "the case has no requester".to_owned(), |i| format!("requester {i}"));
    match source {
        "requester" => id_of(requester).ok_or_else(who),
        "organization" | "organization_id" => {
            let organization = &requester["organization"];
            if organization.is_null() || id_of(organization).is_none() {
                return Err(if is_ref(requester) {
                    format!("{} was not included in the answer", who())
                } else {
                    format!("{} has no organization", who())
                });
            }
            if source == "organization_id" {
                return id_of(organization).ok_or_else(who);
            }
            organization["name"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("{}'s organization was not included in the answer", who()))
        }
        key => {
            let fields = case["custom_fields"].as_array().map(Vec::as_slice).unwrap_or_default();
            if fields.iter().any(|f| is_ref(&f["field"])) {
                return Err("the custom fields' definitions were not included in the answer".to_owned());
            }
            let field = fields.iter().find(|f| {
                f["field"]["key"].as_str() == Some(key)
                    || f["field"]["title"].as_str().is_some_and(|t| t.eq_ignore_ascii_case(key))
            });
            match field {
                Some(f) => text_value(&f["value"])
                    .filter(|v| !v.trim().is_empty())
                    .ok_or_else(|| format!("custom field {key:?} is empty")),
                None => Err(format!("no custom field {key:?}")),
            }
        }
    }
}

/// The import record of a JSON API case whose references [`Cases::cases`] resolved;
/// `KAYAKO-<id>` is the ticket id. A case whose account cannot be found is an error naming it
/// and why, for the sync to skip and report.
pub fn case_record(
    tenant: &str,
    case: &Value,
    priorities: &BTreeMap<i64, String>,
    statuses: &BTreeMap<i64, (String, String)>,
    m: &KayakoMapping,
) -> Result<Value, String> {
    let mut r = Map::new();
    r.insert("record".into(), json!("ticket"));
    r.insert("tenant_id".into(), json!(tenant));
    let Some(number) = case["id"].as_i64() else {
        return Err(format!("case {}: field id: not a number", case["id"]));
    };
    let id = format!("KAYAKO-{number}");
    r.insert("id".into(), json!(id));
    r.insert("source".into(), json!("kayako"));
    let mut why = Vec::new();
    let account = m.account_sources().find_map(|source| match case_account_value(case, source) {
        Ok(v) => m.account(Some(&v)),
        Err(reason) => {
            why.push(format!("{source}: {reason}"));
            None
        }
    });
    let Some(account) = account else {
        return Err(format!("ticket {id}: field account_id: no account ({})", why.join("; ")));
    };
    put(&mut r, "account_id", Some(account));
    put(&mut r, "subject", case["subject"].as_str().map(str::to_owned));
    let priority = case["priority"]["id"]
        .as_i64()
        .map(|id| priorities.get(&id).cloned().unwrap_or_else(|| format!("Kayako priority id {id}")));
    put(&mut r, "priority", Some(priority.unwrap_or_else(|| m.missing_priority.clone())));
    let status = case["status"]["id"].as_i64().map(|id| match statuses.get(&id) {
        Some((label, kind)) => match kind.as_str() {
            "NEW" | "OPEN" => m.status(label, false),
            "PENDING" => "pending".to_owned(),
            "COMPLETED" => "resolved".to_owned(),
            "CLOSED" => "closed".to_owned(),
            _ => m.status(label, false),
        },
        None => format!("Kayako status id {id}"),
    });
    put(&mut r, "status", status);
    let instant =
        |k: &str| case[k].as_str().map(|t| t.parse::<Timestamp>().map_or_else(|_| t.to_owned(), |t| t.to_string()));
    put(&mut r, "created_at", instant("created_at"));
    put(&mut r, "updated_at", instant("updated_at"));
    put(&mut r, "kind", m.kind(id_of(&case["type"]).as_deref(), case["type"]["label"].as_str()));
    resolved_at_last_activity(&mut r);
    Ok(Value::Object(r))
}

/// `value` with every `{id, resource_type}` reference that `resources` (the list's side-loaded
/// `{type: {id: resource}}`) holds replaced by the resource, nested ones too (a requester's
/// organization). `depth` stops a resource that refers back to itself.
fn resolve(value: &Value, resources: &Value, depth: u8) -> Value {
    match value {
        Value::Object(map) => {
            let found = match (map.get("resource_type").and_then(Value::as_str), id_of(value)) {
                (Some(t), Some(id)) if depth > 0 && is_ref(value) => resources.get(t).and_then(|r| r.get(&id)),
                _ => None,
            };
            match found {
                Some(resource) => resolve(resource, resources, depth.saturating_sub(1)),
                None if depth == 0 => value.clone(),
                None => Value::Object(map.iter().map(|(k, v)| (k.clone(), resolve(v, resources, depth - 1))).collect()),
            }
        }
        Value::Array(items) if depth > 0 => {
            Value::Array(items.iter().map(|v| resolve(v, resources, depth - 1)).collect())
        }
        other => other.clone(),
    }
}

/// Settings of a [`Cases`] client.
#[derive(Debug, Clone)]
pub struct CasesConfig {
    /// `https://<subdomain>.kayako.com`.
    pub base_url: String,
    /// The agent's email.
    pub email: String,
    /// Cases per page.
    pub page_size: u32,
    /// Wait after the first failure; doubled after each further one.
    pub backoff: Duration,
    /// Limit on one call.
    pub timeout: Duration,
}

/// A kayako.com helpdesk through the JSON API v1.
pub struct Cases {
    config: CasesConfig,
    password: String,
    basic: String,
    session: Mutex<Option<String>>,
    /// Every session id and `auth_token` (the value a client would send as `X-Token`) the
    /// helpdesk handed out: credentials too, kept out of every message.
    issued: Mutex<Vec<String>>,
    agent: ureq::Agent,
    calls: AtomicU64,
}

impl std::fmt::Debug for Cases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cases").field("base_url", &self.config.base_url).field("password", &"[redacted]").finish()
    }
}

impl Cases {
    /// A client signing in as `config.email` with `password`.
    pub fn new(config: CasesConfig, password: &str) -> Cases {
        let basic = format!("Basic {}", tam_core::mime::base64(format!("{}:{password}", config.email).as_bytes()));
        let agent = agent(config.timeout);
        Cases {
            config,
            password: password.to_owned(),
            basic,
            session: Mutex::new(None),
            issued: Mutex::new(Vec::new()),
            agent,
            calls: AtomicU64::new(0),
        }
    }

    /// Requests sent, retries included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.session.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.issued.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Remembers the credentials an answer hands out (`session_id`, a 2FA `auth_token`).
    fn note_issued(&self, body: &Value) {
        for key in ["session_id", "auth_token"] {
            if let Some(v) = body[key].as_str().filter(|v| !v.is_empty()) {
                let mut issued = self.issued();
                if !issued.iter().any(|i| i == v) {
                    issued.push(v.to_owned());
                }
            }
        }
    }

    /// `text` without anything this client sent or was given to authenticate: the password,
    /// the Basic header and its base64 (also percent-encoded or unpadded, as an echoed URL or
    /// header may show them), every session id and `auth_token`.
    fn scrub(&self, text: &str) -> String {
        let encoded = self.basic.trim_start_matches("Basic ").to_owned();
        let mut secrets: Vec<String> =
            vec![self.basic.clone(), encoded.clone(), encoded.trim_end_matches('=').to_owned(), self.password.clone()];
        secrets.extend(self.issued().iter().cloned());
        secrets.extend(secrets.clone().iter().map(|s| urlencode(s)));
        // The longest first, so a secret inside another leaves no part behind.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        crate::scrub(text, &secrets.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn get(&self, path: &str) -> Result<Value, KayakoError> {
        self.get_unscrubbed(path).map_err(|e| match e {
            KayakoError::Unauthorized(m) => KayakoError::Unauthorized(self.scrub(&m)),
            KayakoError::Rejected(m) => KayakoError::Rejected(self.scrub(&m)),
            KayakoError::Unavailable(m) => KayakoError::Unavailable(self.scrub(&m)),
            KayakoError::Malformed(m) => KayakoError::Malformed(self.scrub(&m)),
        })
    }

    /// A `GET`, with errors that may still quote the request: [`Cases::get`] scrubs them.
    fn get_unscrubbed(&self, path: &str) -> Result<Value, KayakoError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let session = self.session().clone();
            let request = self.agent.get(&url).header("accept", "application/json");
            // Basic auth once; the session it opens serves the rest.
            let request = match &session {
                Some(s) => request.header("x-session-id", s),
                None => request.header("authorization", &self.basic),
            };
            let retry = crate::Retry::new(MAX_ATTEMPTS, self.config.backoff);
            let mut response = match request.call() {
                Ok(r) => r,
                Err(e) => match retry.wait(attempt, None) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        continue;
                    }
                    None => return Err(KayakoError::Unavailable(format!("GET {path}: {e}"))),
                },
            };
            let status = response.status().as_u16();
            let wait = retry.wait(attempt, crate::retry_after(&response));
            let body: Value =
                serde_json::from_str(&response.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
            self.note_issued(&body);
            let said = || {
                let m = body["errors"][0]["message"].as_str().unwrap_or_default();
                let m: String = m.chars().filter(|c| !c.is_control()).take(300).collect();
                if m.is_empty() { String::new() } else { format!(": {m}") }
            };
            match status {
                // A second sign-in step (two-factor) that an unattended sync cannot take.
                401 | 403 if !body["auth_token"].is_null() => {
                    return Err(KayakoError::Unauthorized(format!(
                        "{status} on {path}: Kayako asks this agent for a second sign-in step (two-factor); \
                         use an agent without it{}",
                        said()
                    )));
                }
                200..=299 => {
                    if let Some(s) = body["session_id"].as_str() {
                        *self.session() = Some(s.to_owned());
                    }
                    return Ok(body);
                }
                // An expired session: sign in again, once.
                401 if session.is_some() && attempt < MAX_ATTEMPTS => *self.session() = None,
                401 | 403 => return Err(KayakoError::Unauthorized(format!("{status} on {path}{}", said()))),
                429 | 500..=599 => match wait {
                    Some(wait) => std::thread::sleep(wait),
                    None => {
                        return Err(KayakoError::Unavailable(format!(
                            "{status} on {path} after {attempt} attempts{}",
                            said()
                        )));
                    }
                },
                _ => return Err(KayakoError::Rejected(format!("{status} on {path}{}", said()))),
            }
        }
    }

    /// Priority ids and labels.
    pub fn priorities(&self) -> Result<BTreeMap<i64, String>, KayakoError> {
        let list = self.get("/api/v1/cases/priorities.json?limit=100")?;
        Ok(list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p["id"].as_i64()?, p["label"].as_str()?.to_owned())))
            .collect())
    }

    /// Status ids, labels and types (`NEW`, `OPEN`, `PENDING`, `COMPLETED`, `CLOSED`, `CUSTOM`).
    pub fn statuses(&self) -> Result<BTreeMap<i64, (String, String)>, KayakoError> {
        let list = self.get("/api/v1/cases/statuses.json?limit=100")?;
        Ok(list["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| {
                Some((s["id"].as_i64()?, (s["label"].as_str()?.to_owned(), s["type"].as_str()?.to_owned())))
            })
            .collect())
    }

    /// What [`Cases::cases`] asks for, for a sync's report.
    pub fn cases_query(include: &str, fields: &str) -> String {
        match fields {
            "" => format!("/api/v1/cases.json?include={include}"),
            fields => format!("/api/v1/cases.json?include={include}&fields={}", fields.replace('+', "%2B")),
        }
    }

    /// Every case, `limit` at a time by `offset`, with the resources `include` names
    /// (`KayakoMapping::includes`) resolved into it; those updated before `since` are left
    /// out. Returns how many were handed to `each`.
    pub fn cases(
        &self,
        since: Option<Timestamp>,
        include: &str,
        fields: &str,
        mut each: impl FnMut(&Value),
    ) -> Result<u64, KayakoError> {
        if !fields.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b',' || b == b'+') {
            return Err(KayakoError::Rejected(format!("fields {fields:?} is not a list of field names")));
        }
        let fields = if fields.is_empty() { String::new() } else { format!("&fields={}", fields.replace('+', "%2B")) };
        if !include.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b == b',' || b == b'*') {
            return Err(KayakoError::Rejected(format!("include {include:?} is not a list of resource types")));
        }
        let limit = self.config.page_size.max(1);
        let include = if include.is_empty() { String::new() } else { format!("&include={include}") };
        let mut offset = 0u64;
        let mut handed = 0;
        loop {
            let page = self.get(&format!("/api/v1/cases.json?offset={offset}&limit={limit}{include}{fields}"))?;
            let Some(cases) = page["data"].as_array() else {
                return Err(KayakoError::Malformed(format!("cases at offset {offset}: no data list")));
            };
            for case in cases {
                let updated = case["updated_at"].as_str().and_then(|t| t.parse::<Timestamp>().ok());
                if let (Some(since), Some(updated)) = (since, updated)
                    && updated < since
                {
                    continue;
                }
                each(&resolve(case, &page["resources"], 6));
                handed += 1;
            }
            // The helpdesk may serve fewer than asked (it caps `limit`): the next page starts
            // after what came, and only the total ends the list.
            offset += cases.len() as u64;
            let total = page["total_count"].as_u64().unwrap_or(offset);
            if cases.is_empty() || offset >= total {
                return Ok(handed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_the_recorded_test_vector() {
        // shared/reference/fixtures/kayako/classic_signature_test_vector.json
        let sig = signature("secretkey-example", "1234567890");
        assert_eq!(sig, "isYWKFtTFB1QsLDvJ06PM2fP4UBvwA+HaCQFsXFn7fA=");
        assert_eq!(urlencode(&sig), "isYWKFtTFB1QsLDvJ06PM2fP4UBvwA%2BHaCQFsXFn7fA%3D");
    }
}
