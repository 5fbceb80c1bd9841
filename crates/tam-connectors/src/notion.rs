//! The Notion API client every Notion use goes through: bearer token and `Notion-Version` on
//! each call, one token bucket (about 3 requests a second) shared by all calls, Notion's error
//! objects as typed errors, and Notion's retry rules: 429 and 529 wait for `Retry-After`, other
//! 5xx back off (for calls that are safe to repeat), 4xx are final; at most three attempts.
//!
//! Accounts, tickets and profile pages are built on this in later modules; the client itself
//! knows nothing of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tam_core::rate::{Limits, Rate};

/// The API version used unless a database needs the data-source API.
pub const VERSION: &str = "2022-06-28";

/// The first version with data sources: a database with several can only be read with it.
pub const DATA_SOURCE_VERSION: &str = "2025-09-03";

/// Attempts per call, the first included.
const MAX_ATTEMPTS: u32 = 3;

pub mod crm;
pub mod profile;
pub mod records;
pub mod tickets;

/// What a Notion call can end in.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NotionError {
    /// 401: the token is wrong or revoked.
    #[error("Notion refused the token ({0}); check the variable that holds it")]
    Unauthorized(Box<Failure>),
    /// 404: missing, or not shared with the integration (Notion answers 404 for both).
    #[error(
        "Notion cannot find {}: share the page or database with the integration (… menu → Connections) \
         and check the id",
        .0.path
    )]
    NotFound(Box<Failure>),
    /// 400 and other 4xx: the request is wrong and retrying will not help.
    #[error("Notion rejected {0}")]
    Rejected(Box<Failure>),
    /// 429, 529 or 5xx, or no answer, after every attempt.
    #[error("Notion is unavailable after {n} attempts: {f}", n = .0.attempts, f = .0)]
    Unavailable(Box<Failure>),
}

/// One failed call, as Notion described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP method.
    pub method: String,
    /// Path below the base URL.
    pub path: String,
    /// HTTP status; 0 when nothing answered.
    pub status: u16,
    /// Notion's error `code` (`validation_error`, `rate_limited`, …).
    pub code: String,
    /// Notion's message.
    pub message: String,
    /// Attempts made.
    pub attempts: u32,
    /// Notion's `additional_data`, `null` when it sent none.
    pub data: Value,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({} {}): {}", self.method, self.path, self.status, self.code, self.message)
    }
}

/// Settings of a [`Notion`] client.
#[derive(Debug, Clone)]
pub struct NotionConfig {
    /// `https://api.notion.com`.
    pub base_url: String,
    /// `2022-06-28` or `2025-09-03`.
    pub version: String,
    /// Average calls a second (Notion's documented 3).
    pub requests_per_second: f64,
    /// Calls allowed at once before the average applies.
    pub burst: u32,
    /// Wait after the first 5xx; doubled after each further one.
    pub backoff: Duration,
    /// Limit on one call.
    pub timeout: Duration,
}

impl Default for NotionConfig {
    fn default() -> NotionConfig {
        NotionConfig {
            base_url: "https://api.notion.com".to_owned(),
            version: VERSION.to_owned(),
            requests_per_second: 3.0,
            burst: 3,
            backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// A Notion integration's connection. Shared by reference; calls from several threads take
/// turns through one bucket.
pub struct Notion {
    token: String,
    config: NotionConfig,
    /// Where its turns come from: this process's bucket, or the store's that replicas share.
    pacing: Arc<dyn Limits>,
    calls: AtomicU64,
    agent: ureq::Agent,
    /// The data sources of each database read through the data-source API.
    sources: Mutex<HashMap<String, Vec<String>>>,
    /// Each page a write of this client answered with, by id, as last answered.
    written: Mutex<HashMap<String, Value>>,
}

impl std::fmt::Debug for Notion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notion").field("token", &"[redacted]").field("config", &self.config).finish()
    }
}

impl Notion {
    /// A client authorised by `token` (an internal integration secret).
    pub fn new(token: String, config: NotionConfig) -> Notion {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Notion {
            token,
            config,
            pacing: Arc::new(crate::limits::LocalLimits::default()),
            calls: AtomicU64::new(0),
            agent,
            sources: Mutex::new(HashMap::new()),
            written: Mutex::new(HashMap::new()),
        }
    }

    /// The pages this client's writes answered with since the last call (each page once, as
    /// last answered). A write answers with the whole page after it, so what a person changed
    /// on the page before tam's write is in it: a sync that skips the pages tam edited last
    /// reads them from here instead, at no extra call.
    pub fn take_written_pages(&self) -> Vec<Value> {
        let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::mem::take(&mut *written).into_values().collect()
    }

    /// Gives back pages taken with [`Notion::take_written_pages`] that could not be imported
    /// (the store was busy): the next import takes them again. A page written again since
    /// keeps its newer answer.
    pub fn keep_written_pages(&self, pages: Vec<Value>) {
        let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for page in pages {
            if let Some(id) = page["id"].as_str().map(str::to_owned) {
                written.entry(id).or_insert(page);
            }
        }
    }

    /// The id of the integration's own bot user (`GET /v1/users/me`): the author Notion
    /// records for every edit this client makes.
    pub fn bot_user_id(&self) -> Result<String, NotionError> {
        let me = self.request("GET", "/v1/users/me", None)?;
        match me["id"].as_str() {
            Some(id) => Ok(id.to_owned()),
            None => Err(NotionError::Rejected(Box::new(Failure {
                method: "GET".to_owned(),
                path: "/v1/users/me".to_owned(),
                status: 200,
                code: "invalid_response".to_owned(),
                message: "the answer names no user id".to_owned(),
                attempts: 1,
                data: Value::Null,
            }))),
        }
    }

    /// Requests sent so far, retries included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The same client, taking its turns from `pacing`: the store's buckets, when several
    /// replicas call Notion as one integration.
    pub fn with_pacing(mut self, pacing: Arc<dyn Limits>) -> Notion {
        self.pacing = pacing;
        self
    }

    fn wait_for_turn(&self) {
        // The limit is the integration's, shared with any process that ran just before: a new
        // bucket starts at the average rate and earns its burst by waiting.
        let rate = Rate::new(self.config.requests_per_second, self.config.burst).starting_at(1.0);
        let wait = self.pacing.take("notion", 1, rate);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// One call, `path` below the base URL (`/v1/pages/…`), retried as Notion asks.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, NotionError> {
        self.request_as(method, path, body, &self.config.version)
    }

    /// [`Notion::request`] with another `Notion-Version`.
    pub fn request_as(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        version: &str,
    ) -> Result<Value, NotionError> {
        let url = format!("{}{path}", self.config.base_url.trim_end_matches('/'));
        // A 5xx or a lost answer may hide a page that was created: only calls that can be
        // repeated safely are repeated then (a 429 or 529 means nothing was done).
        let repeatable = method != "POST" || path.ends_with("/query");
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.wait_for_turn();
            self.calls.fetch_add(1, Ordering::Relaxed);
            let failure = |status: u16, code: &str, message: String| Failure {
                method: method.to_owned(),
                path: path.to_owned(),
                status,
                code: code.to_owned(),
                // Notion may echo the request, token included: it never reaches a message.
                message: crate::scrub(&message, &[&self.token]),
                attempts: attempt,
                data: Value::Null,
            };
            let request = ureq::http::Request::builder()
                .method(method)
                .uri(&url)
                .header("authorization", format!("Bearer {}", self.token))
                .header("notion-version", version)
                .header("content-type", "application/json")
                .body(body.map(Value::to_string).unwrap_or_default())
                .map_err(|e| NotionError::Rejected(Box::new(failure(0, "invalid_request", e.to_string()))))?;
            let retry = crate::Retry::new(MAX_ATTEMPTS, self.config.backoff);
            let mut response = match self.agent.run(request) {
                Ok(r) => r,
                Err(e) => match retry.wait(attempt, None).filter(|_| repeatable) {
                    Some(wait) => {
                        std::thread::sleep(wait);
                        continue;
                    }
                    // The token is in a header, never in ureq's error text.
                    None => return Err(NotionError::Unavailable(Box::new(failure(0, "transport", e.to_string())))),
                },
            };
            let status = response.status().as_u16();
            let retry_after = crate::retry_after(&response);
            let text = response.body_mut().read_to_string().unwrap_or_default();
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if (200..300).contains(&status) {
                if method != "GET"
                    && parsed["object"] == "page"
                    && let Some(id) = parsed["id"].as_str()
                {
                    let mut written = self.written.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    written.insert(id.to_owned(), parsed.clone());
                }
                return Ok(parsed);
            }
            let field = |f: &str| parsed.get(f).and_then(Value::as_str).unwrap_or_default().to_owned();
            let failed = if parsed.get("object").and_then(Value::as_str) == Some("error") {
                let data = parsed.get("additional_data").cloned().unwrap_or_default();
                let shown = data.to_string();
                let data = if shown.contains(self.token.as_str()) {
                    Value::String(crate::scrub(&shown, &[&self.token]))
                } else {
                    data
                };
                Failure { data, ..failure(status, &field("code"), field("message")) }
            } else {
                // Not Notion's own error object: an edge proxy answered.
                failure(status, "http_error", format!("a non-Notion answer ({} bytes)", text.len()))
            };
            match status {
                401 => return Err(NotionError::Unauthorized(Box::new(failed))),
                404 => return Err(NotionError::NotFound(Box::new(failed))),
                // Nothing was done: ask again when Notion says.
                429 | 529 => match retry.wait(attempt, retry_after) {
                    Some(wait) => std::thread::sleep(wait),
                    None => return Err(NotionError::Unavailable(Box::new(failed))),
                },
                500..=599 => match retry.wait(attempt, None).filter(|_| repeatable) {
                    Some(wait) => std::thread::sleep(wait),
                    None => return Err(NotionError::Unavailable(Box::new(failed))),
                },
                _ => return Err(NotionError::Rejected(Box::new(failed))),
            }
        }
    }

    /// Every page of a database, 100 a call, following `next_cursor`. `filter` and `sorts` are
    /// Notion's own JSON. A database with several data sources cannot be queried with
    /// 2022-06-28: it is read through each of its data sources with 2025-09-03 instead, and
    /// remembered as such.
    pub fn query_all(
        &self,
        database_id: &str,
        filter: Option<&Value>,
        sorts: Option<&Value>,
    ) -> Result<Vec<Value>, NotionError> {
        let known = self.lock_sources().get(database_id).cloned();
        let sources = match known {
            Some(sources) => sources,
            None if self.config.version.as_str() >= DATA_SOURCE_VERSION => self.data_sources(database_id)?,
            None => {
                let path = format!("/v1/databases/{database_id}/query");
                match self.paginate(&path, filter, sorts, &self.config.version) {
                    Err(NotionError::Rejected(f)) if f.data["error_type"] == "multiple_data_sources_for_database" => {
                        match f.data["child_data_source_ids"].as_array() {
                            Some(ids) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                            None => self.data_sources(database_id)?,
                        }
                    }
                    read => return read,
                }
            }
        };
        self.lock_sources().insert(database_id.to_owned(), sources.clone());
        let mut pages = Vec::new();
        for source in &sources {
            let path = format!("/v1/data_sources/{source}/query");
            pages.extend(self.paginate(&path, filter, sorts, DATA_SOURCE_VERSION)?);
        }
        Ok(pages)
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<String>>> {
        self.sources.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The ids of a database's data sources (one `GET` with 2025-09-03).
    pub fn data_sources(&self, database_id: &str) -> Result<Vec<String>, NotionError> {
        Ok(source_ids(&self.database(database_id)?))
    }

    /// A database as the data-source version describes it: its title and its data sources
    /// (see [`source_ids`]).
    pub fn database(&self, database_id: &str) -> Result<Value, NotionError> {
        self.request_as("GET", &format!("/v1/databases/{database_id}"), None, DATA_SOURCE_VERSION)
    }

    /// One data source, with its properties.
    pub fn data_source(&self, id: &str) -> Result<Value, NotionError> {
        self.request_as("GET", &format!("/v1/data_sources/{id}"), None, DATA_SOURCE_VERSION)
    }

    /// Creates a database under `parent_page` (shared with the integration) with `properties`,
    /// in the version every later one reads; answers its id.
    pub fn create_database(&self, parent_page: &str, title: &str, properties: Value) -> Result<String, NotionError> {
        let body = serde_json::json!({
            "parent": {"type": "page_id", "page_id": parent_page},
            "title": [{"type": "text", "text": {"content": title}}],
            "properties": properties, "is_inline": false,
        });
        let db = self.request_as("POST", "/v1/databases", Some(&body), VERSION)?;
        db["id"].as_str().map(str::to_owned).ok_or_else(|| {
            NotionError::Unavailable(Box::new(Failure {
                method: "POST".into(),
                path: "/v1/databases".into(),
                status: 200,
                code: "no_id".into(),
                message: format!("Notion created {title} but sent no id"),
                attempts: 1,
                data: Value::Null,
            }))
        })
    }

    fn paginate(
        &self,
        path: &str,
        filter: Option<&Value>,
        sorts: Option<&Value>,
        version: &str,
    ) -> Result<Vec<Value>, NotionError> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut body = json!({"page_size": 100});
            if let Some(f) = filter {
                body["filter"] = f.clone();
            }
            if let Some(s) = sorts {
                body["sorts"] = s.clone();
            }
            if let Some(c) = &cursor {
                body["start_cursor"] = json!(c);
            }
            let list = self.request_as("POST", path, Some(&body), version)?;
            if let Some(results) = list.get("results").and_then(Value::as_array) {
                pages.extend(results.iter().cloned());
            }
            match (list.get("has_more").and_then(Value::as_bool), list.get("next_cursor").and_then(Value::as_str)) {
                (Some(true), Some(next)) => cursor = Some(next.to_owned()),
                _ => return Ok(pages),
            }
        }
    }
}

/// The ids of the data sources a database (as [`Notion::database`] answers it) lists.
pub fn source_ids(database: &Value) -> Vec<String> {
    database["data_sources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["id"].as_str())
        .map(str::to_owned)
        .collect()
}
