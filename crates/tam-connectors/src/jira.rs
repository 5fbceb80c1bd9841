//! Jira Cloud as a ticket source: the enhanced search (`POST /rest/api/3/search/jql`, pages
//! chained by `nextPageToken` until `isLast`), one issue by key for webhooks, basic auth with
//! an API token, 429 and 503 waiting for `Retry-After`. Issues become the importer's ticket
//! records through a configurable mapping (which field names the account, which statuses are
//! pending or closed), so a malformed issue is reported by key and field like any record.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 4;

/// What a Jira call can end in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JiraError {
    /// 401 or 403: the email and token do not open this site or project.
    #[error("Jira refused the credentials ({0}); check the email and the API token")]
    Unauthorized(String),
    /// 400: usually the JQL; Jira's own messages.
    #[error("Jira rejected the request: {0}")]
    Rejected(String),
    /// 404.
    #[error("Jira has no {0} (or this user cannot see it)")]
    NotFound(String),
    /// 429 or 5xx after every attempt, or no answer.
    #[error("Jira is unavailable: {0}")]
    Unavailable(String),
}

/// Where an issue's account comes from.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AccountRule {
    /// The field holding the account: a Service Management organization field, a custom
    /// field, `labels` or `components`.
    pub field: String,
    /// For `labels` and `components`: the prefix that marks the account (`account:acme`).
    pub prefix: String,
    /// Values (an organization's name, a label) and the account id each stands for; a value
    /// not listed is taken as the account id itself.
    pub accounts: BTreeMap<String, String>,
}

impl Default for AccountRule {
    fn default() -> AccountRule {
        AccountRule { field: "labels".into(), prefix: "account:".into(), accounts: BTreeMap::new() }
    }
}

/// How issues become tickets.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct JiraMapping {
    /// The account of an issue.
    pub account: AccountRule,
    /// Status names (case-insensitive) and the ticket status each means, before the status
    /// category decides (`"Waiting for customer" = "pending"`).
    pub statuses: BTreeMap<String, String>,
    /// Status categories (`new`, `indeterminate`, `done`) and the ticket status each means.
    pub categories: BTreeMap<String, String>,
    /// The label that marks an issue as a real escalation of its account (`escalation`): the
    /// issue is then also an escalation record, at its creation, for `tam backtest`.
    pub escalation_label: Option<String>,
}

impl Default for JiraMapping {
    fn default() -> JiraMapping {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        JiraMapping {
            account: AccountRule::default(),
            statuses: pairs(&[("waiting for customer", "pending"), ("pending", "pending"), ("closed", "closed")]),
            categories: pairs(&[("new", "open"), ("indeterminate", "open"), ("done", "resolved")]),
            escalation_label: None,
        }
    }
}

impl JiraMapping {
    /// The fields a search must ask for (Jira returns only `id` otherwise).
    pub fn fields(&self) -> Vec<String> {
        let mut f = self.required();
        f.push("resolutiondate".to_owned());
        if self.escalation_label.is_some() && !f.iter().any(|x| x == "labels") {
            f.push("labels".to_owned());
        }
        f
    }

    /// The fields without which an issue cannot become a ticket (a webhook's issue lacking one
    /// is fetched whole); the resolution time and the labels only add to it.
    fn required(&self) -> Vec<String> {
        let mut f: Vec<String> =
            ["summary", "priority", "status", "created", "updated", "issuetype"].map(str::to_owned).into();
        if !f.contains(&self.account.field) {
            f.push(self.account.field.clone());
        }
        f
    }
}

/// Jira's `2024-01-10T09:15:00.000+0000` (an offset without a colon, which RFC 3339 parsers
/// refuse) as RFC 3339 in UTC; anything else is passed on for the importer to name.
pub fn instant(raw: &str) -> String {
    jiff::fmt::strtime::parse("%Y-%m-%dT%H:%M:%S%.f%z", raw)
        .and_then(|t| t.to_timestamp())
        .map_or_else(|_| raw.to_owned(), |t| t.to_string())
}

/// The account an issue belongs to, by `rule`.
fn account_of(fields: &Value, rule: &AccountRule) -> Option<String> {
    let value = fields.get(&rule.field)?;
    let name = |v: &Value| -> Option<String> {
        v.as_str()
            .or_else(|| ["name", "value"].iter().find_map(|k| v.get(k).and_then(Value::as_str)))
            .map(str::to_owned)
    };
    let found = match value {
        Value::Array(items) if matches!(rule.field.as_str(), "labels" | "components") => {
            items.iter().filter_map(name).find_map(|v| v.strip_prefix(rule.prefix.as_str()).map(str::to_owned))
        }
        Value::Array(items) => items.iter().find_map(name),
        other => name(other),
    }?;
    Some(rule.accounts.get(&found).cloned().unwrap_or(found))
}

/// The ticket status of an issue: its status name if mapped, else its status category.
fn status_of(status: &Value, m: &JiraMapping) -> Option<String> {
    let name = status.get("name").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    if let Some(s) = m.statuses.iter().find(|(k, _)| k.to_lowercase() == name) {
        return Some(s.1.clone());
    }
    let category = status.pointer("/statusCategory/key").and_then(Value::as_str)?;
    // An unmapped category is passed on as is, so the importer names it.
    Some(m.categories.get(category).cloned().unwrap_or_else(|| category.to_owned()))
}

/// The import record of an issue; the key (`SUP-101`) is the ticket id. Missing or malformed
/// values are left out or passed on, so the importer reports them by key and field.
pub fn ticket_record(tenant: &str, issue: &Value, m: &JiraMapping) -> Value {
    let mut r = Map::new();
    let fields = issue.get("fields").cloned().unwrap_or_default();
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    r.insert("record".into(), json!("ticket"));
    r.insert("tenant_id".into(), json!(tenant));
    r.insert("id".into(), json!(text(issue.get("key")).unwrap_or_default()));
    r.insert("source".into(), json!("jira"));
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            r.insert(k.to_owned(), json!(v));
        }
    };
    put("account_id", account_of(&fields, &m.account));
    put("subject", text(fields.get("summary")));
    put("priority", text(fields.pointer("/priority/name")));
    put("status", fields.get("status").and_then(|s| status_of(s, m)));
    put("created_at", text(fields.get("created")).map(|t| instant(&t)));
    put("updated_at", text(fields.get("updated")).map(|t| instant(&t)));
    put("kind", text(fields.pointer("/issuetype/name")).map(|t| crate::ticket_kind(&t)));
    // Only a resolved issue has a resolution time that means something: a workflow may leave
    // an old one on an issue it reopened.
    if matches!(r.get("status").and_then(Value::as_str), Some("resolved" | "closed")) {
        let resolved = text(fields.get("resolutiondate")).map(|t| instant(&t));
        if let Some(resolved) = resolved {
            r.insert("resolved_at".into(), json!(resolved));
        }
    }
    Value::Object(r)
}

/// The escalation record of an issue carrying the mapping's escalation label: its account
/// escalated when the issue was created.
pub fn escalation_record(tenant: &str, issue: &Value, m: &JiraMapping) -> Option<Value> {
    let label = m.escalation_label.as_deref()?;
    let fields = issue.get("fields")?;
    let labelled =
        fields.get("labels")?.as_array()?.iter().any(|l| l.as_str().is_some_and(|l| l.eq_ignore_ascii_case(label)));
    if !labelled {
        return None;
    }
    let key = issue.get("key").and_then(Value::as_str).unwrap_or_default();
    let summary = fields.get("summary").and_then(Value::as_str).unwrap_or_default();
    Some(json!({
        "record": "escalation", "tenant_id": tenant, "account_id": account_of(fields, &m.account),
        "at": fields.get("created").and_then(Value::as_str).map(instant), "source": "jira",
        "note": format!("{key}: {summary}"),
    }))
}

/// Whether `header` (`X-Hub-Signature: sha256=<hex>`) is the HMAC-SHA256 of the raw `body`
/// under `secret`. Compared in constant time.
pub fn signature_matches(secret: &str, body: &[u8], header: &str) -> bool {
    let Some(hex) = header.trim().strip_prefix("sha256=") else { return false };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let tag: Vec<u8> = (0..32).filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, body, &tag).is_ok()
}

/// `sha256=<hex>` of `body` under `secret`: what Jira sends, and what a replay may compute.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    format!("sha256={}", tag.as_ref().iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// A webhook's issue event, as far as its body tells.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueEvent {
    /// `jira:issue_created` or `jira:issue_updated`.
    pub event: String,
    /// The issue key (`SUP-101`).
    pub key: String,
    /// The issue as sent; its `fields` may be missing or partial.
    pub issue: Value,
}

/// The issue event of a webhook body; `Ok(None)` for events tam does not act on
/// (`jira:issue_deleted`, comments, ...).
pub fn issue_event(body: &[u8]) -> Result<Option<IssueEvent>, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let event = v["webhookEvent"].as_str().ok_or("the body has no webhookEvent")?.to_owned();
    if !matches!(event.as_str(), "jira:issue_created" | "jira:issue_updated") {
        return Ok(None);
    }
    let key = v.pointer("/issue/key").and_then(Value::as_str).ok_or("the body has no issue.key")?.to_owned();
    Ok(Some(IssueEvent { event, key, issue: v["issue"].clone() }))
}

impl JiraMapping {
    /// Whether `issue` carries every field a ticket needs; Jira may send only the key.
    pub fn is_complete(&self, issue: &Value) -> bool {
        let fields = &issue["fields"];
        self.required().iter().all(|f| fields.get(f).is_some())
    }
}

/// Settings of a [`Jira`] client.
#[derive(Debug, Clone)]
pub struct JiraConfig {
    /// `https://<site>.atlassian.net`.
    pub base_url: String,
    /// The account the API token belongs to.
    pub email: String,
    /// Issues per search page (Jira caps it, and may return fewer).
    pub page_size: u32,
    /// Wait after the first 429 without `Retry-After` or 5xx; doubled after each further one.
    pub backoff: Duration,
    /// Limit on one call.
    pub timeout: Duration,
}

/// A Jira Cloud site.
pub struct Jira {
    config: JiraConfig,
    auth: String,
    agent: ureq::Agent,
    calls: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Jira {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jira").field("config", &self.config).field("auth", &"[redacted]").finish()
    }
}

/// Jira's `ErrorCollection` as one line.
fn messages(body: &Value) -> String {
    let mut all: Vec<String> =
        body["errorMessages"].as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect();
    if let Some(errors) = body["errors"].as_object() {
        all.extend(errors.iter().map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default())));
    }
    all.join("; ")
}

impl Jira {
    /// A client signing in as `config.email` with `token`.
    pub fn new(config: JiraConfig, token: &str) -> Jira {
        let auth = format!("Basic {}", tam_core::mime::base64(format!("{}:{token}", config.email).as_bytes()));
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Jira { config, auth, agent, calls: std::sync::atomic::AtomicU64::new(0) }
    }

    /// Requests sent, retries included.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, JiraError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("authorization", &self.auth)
                .header("accept", "application/json")
                .header("content-type", "application/json")
                .body(body.map(Value::to_string).unwrap_or_default())
                .map_err(|e| JiraError::Rejected(e.to_string()))?;
            let retry = crate::Retry::new(MAX_ATTEMPTS, self.config.backoff);
            let mut response = match self.agent.run(request) {
                Ok(r) => r,
                Err(e) => match retry.wait(attempt, None) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        continue;
                    }
                    None => return Err(JiraError::Unavailable(format!("{method} {path}: {e}"))),
                },
            };
            let status = response.status().as_u16();
            let retry_after = crate::retry_after(&response);
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match status {
                200..=299 => return Ok(parsed),
                401 | 403 => return Err(JiraError::Unauthorized(format!("{status} on {path}"))),
                404 => return Err(JiraError::NotFound(path.to_owned())),
                // Jira does not always send Retry-After; asking again sooner extends the wait.
                429 | 500..=599 => match retry.wait(attempt, retry_after) {
                    Some(wait) => std::thread::sleep(wait),
                    None => {
                        return Err(JiraError::Unavailable(format!("{status} on {path} after {attempt} attempts")));
                    }
                },
                _ => {
                    // Jira may echo the request; the credentials never reach a message.
                    let credentials = self.auth.strip_prefix("Basic ").unwrap_or(&self.auth);
                    let said = crate::scrub(&messages(&parsed), &[self.auth.as_str(), credentials]);
                    return Err(JiraError::Rejected(if said.is_empty() {
                        format!("{status} on {path}")
                    } else {
                        said
                    }));
                }
            }
        }
    }

    /// Every issue `jql` finds, a page at a time, each page handed to `page` as it arrives.
    pub fn search(&self, jql: &str, fields: &[String], mut page: impl FnMut(&[Value])) -> Result<u64, JiraError> {
        let mut token: Option<String> = None;
        let mut issues = 0;
        loop {
            let mut body = json!({"jql": jql, "fields": fields, "maxResults": self.config.page_size});
            if let Some(t) = &token {
                body["nextPageToken"] = json!(t);
            }
            let result = self.request("POST", "/rest/api/3/search/jql", Some(&body))?;
            let found = result["issues"].as_array().map(Vec::as_slice).unwrap_or_default();
            issues += found.len() as u64;
            page(found);
            match result["nextPageToken"].as_str() {
                Some(next) if result["isLast"] != true => token = Some(next.to_owned()),
                _ => return Ok(issues),
            }
        }
    }

    /// The signed-in user (`GET /rest/api/3/myself`): proves the site, the email and the token.
    pub fn myself(&self) -> Result<Value, JiraError> {
        self.request("GET", "/rest/api/3/myself", None)
    }

    /// One issue with `fields`, by key or id (a webhook may carry only the key).
    pub fn issue(&self, key: &str, fields: &[String]) -> Result<Value, JiraError> {
        if !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(JiraError::Rejected(format!("{key:?} is not an issue key")));
        }
        self.request("GET", &format!("/rest/api/3/issue/{key}?fields={}", fields.join(",")), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked_on_the_raw_body() {
        let body = br#"{"webhookEvent":"jira:issue_updated","issue":{"key":"SUP-1"}}"#;
        let header = sign("s3cret", body);
        assert!(header.starts_with("sha256=") && header.len() == 71);
        assert!(signature_matches("s3cret", body, &header));
        assert!(!signature_matches("other", body, &header));
        assert!(!signature_matches("s3cret", b"{}", &header));
        assert!(!signature_matches("s3cret", body, "sha1=abc"));
        assert!(!signature_matches("s3cret", body, &header.to_uppercase().replace("SHA256", "sha256")[..70]));
        let event = issue_event(body).unwrap().unwrap();
        assert_eq!((event.event.as_str(), event.key.as_str()), ("jira:issue_updated", "SUP-1"));
        assert!(!JiraMapping::default().is_complete(&event.issue), "only the key: fetch the issue");
        assert_eq!(issue_event(br#"{"webhookEvent":"comment_created"}"#).unwrap(), None);
        assert!(issue_event(b"not json").is_err());
    }

    /// The realistic issue of the fixtures: open again ("Ready") with its old resolution time.
    fn realistic() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jira_issue_realistic_go-jira.json");
        let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        fixture["issue"].clone()
    }

    #[test]
    fn a_resolved_issue_says_when_and_a_reopened_one_does_not() {
        let m = JiraMapping {
            account: AccountRule { field: "project".into(), ..AccountRule::default() },
            ..JiraMapping::default()
        };
        let mut issue = realistic();
        assert_eq!(issue["fields"]["resolutiondate"], "2015-12-07T14:19:13.000-0800");
        assert!(ticket_record("t", &issue, &m).get("resolved_at").is_none(), "open again: no resolution");
        issue["fields"]["status"]["statusCategory"]["key"] = json!("done");
        let record = ticket_record("t", &issue, &m);
        assert_eq!(
            (record["status"].as_str(), record["resolved_at"].as_str()),
            (Some("resolved"), Some("2015-12-07T22:19:13Z"))
        );
        assert!(m.fields().contains(&"resolutiondate".to_owned()));
    }

    #[test]
    fn an_issue_with_the_escalation_label_is_also_an_escalation() {
        let mut m = JiraMapping::default();
        let mut issue = realistic();
        issue["fields"]["labels"] = json!(["account:acme", "Escalation"]);
        assert_eq!(escalation_record("t", &issue, &m), None, "no label configured");
        m.escalation_label = Some("escalation".into());
        assert!(m.fields().contains(&"labels".to_owned()));
        let record = escalation_record("t", &issue, &m).unwrap();
        assert_eq!(
            record,
            json!({"record": "escalation", "tenant_id": "t", "account_id": "acme", "at": "2015-12-02T15:39:15Z",
                   "source": "jira", "note": format!("AR-86: {}", issue["fields"]["summary"].as_str().unwrap())})
        );
        issue["fields"]["labels"] = json!(["account:acme"]);
        assert_eq!(escalation_record("t", &issue, &m), None);
    }

    #[test]
    fn offsets_without_a_colon_become_utc() {
        assert_eq!(instant("2024-01-10T09:15:00.000+0000"), "2024-01-10T09:15:00Z");
        assert_eq!(instant("2023-12-28T08:00:00.000-0800"), "2023-12-28T16:00:00Z");
        assert_eq!(instant("2024-01-12T14:02:11.512+0100"), "2024-01-12T13:02:11.512Z");
        assert_eq!(instant("yesterday"), "yesterday", "left for the importer to name");
    }

    #[test]
    fn the_account_comes_from_labels_an_organization_or_a_mapped_value() {
        let mut m = JiraMapping::default();
        let fields = json!({"labels": ["vip", "account:acme"], "customfield_10002": [{"id": "1", "name": "Globex"}]});
        assert_eq!(account_of(&fields, &m.account).as_deref(), Some("acme"));
        m.account = AccountRule { field: "customfield_10002".into(), ..AccountRule::default() };
        assert_eq!(account_of(&fields, &m.account).as_deref(), Some("Globex"));
        m.account.accounts.insert("Globex".into(), "acc-42".into());
        assert_eq!(account_of(&fields, &m.account).as_deref(), Some("acc-42"));
        assert_eq!(account_of(&json!({}), &m.account), None);
    }

    #[test]
    fn statuses_by_name_first_then_by_category() {
        let m = JiraMapping::default();
        let s = |name: &str, cat: &str| json!({"name": name, "statusCategory": {"key": cat}});
        assert_eq!(status_of(&s("Open", "new"), &m).as_deref(), Some("open"));
        assert_eq!(status_of(&s("In Progress", "indeterminate"), &m).as_deref(), Some("open"));
        assert_eq!(status_of(&s("Waiting for Customer", "indeterminate"), &m).as_deref(), Some("pending"));
        assert_eq!(status_of(&s("Done", "done"), &m).as_deref(), Some("resolved"));
        assert_eq!(status_of(&s("Closed", "done"), &m).as_deref(), Some("closed"));
        assert_eq!(status_of(&s("Odd", "undefined"), &m).as_deref(), Some("undefined"));
        assert_eq!(crate::ticket_kind("New Feature"), "feature_request");
        assert_eq!(crate::ticket_kind("Service Request"), "service_request");
    }
}
