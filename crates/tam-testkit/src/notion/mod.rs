//! A stateful local Notion: databases (with their data sources), pages, properties and blocks,
//! answering in the wire format recorded in `shared/reference/fixtures/notion`. It enforces
//! what the real one does and `tam` must respect: a bearer token, the `Notion-Version` header,
//! an average request rate (429 `rate_limited` with `Retry-After`), 100 children per request,
//! 2,000 characters per rich-text run (rejected with Notion's own `validation_error` message),
//! `object_not_found` for anything not shared with the integration, and the 2022-06-28 query
//! refused for a database with several data sources. Failures such as 529 can be injected.
//!
//! Every page knows who edited it last: the integration's bot ([`BOT_USER`], what
//! `GET /v1/users/me` answers) for API writes, a person for pages seeded by the helpers or
//! edited with [`FakeNotion::edit_as`], as in the Notion app. A query may filter on it through
//! a property of type `last_edited_by`, and only through one the schema has.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value, json};

mod blocks;
mod databases;
mod pages;
mod properties;

use blocks::*;
use properties::*;

/// What the fake has been asked, for assertions and benchmarks.
#[derive(Debug, Clone, Default)]
pub struct NotionStats {
    /// Every request, refused ones included.
    pub requests: u64,
    /// Requests refused with 429 for going over the rate.
    pub rate_limited: u64,
    /// Requests per route, e.g. `PATCH /v1/pages` or `POST /v1/databases/query`.
    pub routes: BTreeMap<String, u64>,
    /// The biggest number of requests started in any one-second window.
    pub peak_per_second: u64,
}

/// The integration's bot user: the last editor of every page an API call wrote.
pub const BOT_USER: &str = "7775f3a3-893f-43fa-b625-460c61094c78";

/// A person of the workspace: the author of pages the helpers seed.
pub const PERSON: &str = "5389a034-eb5c-47b5-8a9e-f79c99ef166c";

struct Bucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
}

#[derive(Clone)]
struct Page {
    parent: Value,
    database: Option<String>,
    source: Option<String>,
    properties: Map<String, Value>,
    created: String,
    edited: String,
    /// The user who created the page, and the one who edited it last.
    creator: String,
    editor: String,
    archived: bool,
}

#[derive(Clone)]
struct Block {
    parent: String,
    body: Value,
    archived: bool,
}

struct Database {
    parent: Value,
    title: Value,
    schema: Map<String, Value>,
    sources: Vec<String>,
    created: String,
}

struct Failure {
    status: u16,
    code: String,
    message: String,
    retry_after: Option<u64>,
}

#[derive(Default)]
struct State {
    token: String,
    bucket: Option<Bucket>,
    now: Option<String>,
    next_id: u64,
    databases: BTreeMap<String, Database>,
    sources: HashMap<String, String>,
    pages: HashMap<String, Page>,
    order: Vec<String>,
    blocks: HashMap<String, Block>,
    children: HashMap<String, Vec<String>>,
    unshared: HashSet<String>,
    failures: VecDeque<Failure>,
    stats: NotionStats,
    window: VecDeque<Instant>,
}

/// A 400 or 404 with Notion's error body.
struct Refusal {
    status: u16,
    code: &'static str,
    message: String,
    /// Notion's `additional_data`, or null.
    data: Value,
}

fn refuse(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal { status, code, message: message.into(), data: Value::Null }
}

/// The refusal of a 2022-06-28 call on a database with several data sources, with the
/// `additional_data` Notion sends (recorded in `error_400_validation_multiple_data_sources`).
fn several_sources(database: &str, sources: &[String]) -> Refusal {
    let data = json!({"error_type": "multiple_data_sources_for_database", "database_id": hyphenated(database),
                      "child_data_source_ids": sources.iter().map(|s| hyphenated(s)).collect::<Vec<_>>(),
                      "minimum_api_version": "2025-09-03"});
    Refusal { data, ..refuse(400, "validation_error", MULTIPLE) }
}

const MULTIPLE: &str = "Databases with multiple data sources are not supported in this API version.";

type Answer = Result<Value, Refusal>;

fn invalid(message: impl Into<String>) -> Refusal {
    refuse(400, "validation_error", message)
}

/// Ids are compared without hyphens, as Notion accepts both forms.
fn norm(id: &str) -> String {
    id.chars().filter(|c| *c != '-').collect::<String>().to_ascii_lowercase()
}

fn hyphenated(id: &str) -> String {
    if id.len() != 32 {
        return id.to_owned();
    }
    format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..])
}

/// A running fake Notion.
pub struct FakeNotion {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl FakeNotion {
    /// A fake that accepts `token` and no more than `per_second` requests a second on average
    /// (bursts of `burst`); `per_second` 0 means no limit.
    pub fn start(token: &str, per_second: f64, burst: u32) -> FakeNotion {
        let bucket = (per_second > 0.0).then(|| Bucket {
            per_second,
            capacity: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            at: Instant::now(),
        });
        let state = Arc::new(Mutex::new(State { token: token.to_owned(), bucket, ..State::default() }));
        let url = crate::http::listen(&state, serve);
        FakeNotion { url, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sets the clock pages are stamped with (`2026-01-05T10:00:00.000Z`); real time otherwise.
    pub fn set_now(&self, at: &str) {
        self.state().now = Some(at.to_owned());
    }

    /// A plain page (a parent for databases and sub-pages); returns its id.
    pub fn add_parent_page(&self, title: &str) -> String {
        let mut s = self.state();
        let id = s.new_id();
        let now = s.now();
        let properties = [("title".to_owned(), json!({"id": "title", "type": "title", "title": runs(title)}))];
        let page = Page {
            parent: json!({"type": "workspace", "workspace": true}),
            database: None,
            source: None,
            properties: properties.into_iter().collect(),
            created: now.clone(),
            edited: now,
            creator: PERSON.to_owned(),
            editor: PERSON.to_owned(),
            archived: false,
        };
        s.insert_page(&id, page);
        hyphenated(&id)
    }

    /// A database under a new parent page, with `schema` in the request format of
    /// `POST /v1/databases`; returns its id.
    pub fn add_database(&self, title: &str, schema: &Value) -> String {
        let parent = self.add_parent_page("Workspace");
        let mut s = self.state();
        let body = json!({"parent": {"page_id": parent}, "title": runs(title), "properties": schema});
        let db = s.create_database(&body, "2022-06-28").unwrap_or_else(|r| panic!("bad schema: {}", r.message));
        db["id"].as_str().unwrap().to_owned()
    }

    /// Adds a page to `database` with `properties` in the request format, as a person adding
    /// a row in the Notion app; returns its id.
    pub fn add_page(&self, database: &str, properties: &Value) -> String {
        let mut s = self.state();
        let body = json!({"parent": {"database_id": database}, "properties": properties});
        let page = s.create_page(&body, "2022-06-28").unwrap_or_else(|r| panic!("bad page: {}", r.message));
        let id = page["id"].as_str().unwrap().to_owned();
        let page = s.pages.get_mut(&norm(&id)).unwrap();
        (page.creator, page.editor) = (PERSON.to_owned(), PERSON.to_owned());
        id
    }

    /// `person` edits `page` in the Notion app: `properties` (request format) change, and the
    /// page's last edit becomes theirs, stamped now.
    pub fn edit_as(&self, person: &str, page: &str, properties: &Value) {
        let mut s = self.state();
        let key = norm(page);
        let schema = s.pages[&key].database.as_ref().map(|db| s.databases[db].schema.clone());
        let changes = convert_properties(Some(properties), schema.as_ref())
            .unwrap_or_else(|r| panic!("bad properties: {}", r.message));
        let now = s.now();
        let page = s.pages.get_mut(&key).unwrap();
        page.properties.extend(changes);
        page.edited = now;
        page.editor = person.to_owned();
    }

    /// Deletes the property `name` from `database`'s schema, as a person would in the app.
    pub fn remove_property(&self, database: &str, name: &str) {
        self.state().databases.get_mut(&norm(database)).unwrap().schema.remove(name);
    }

    /// Gives `database` a second data source, as a user adding one in the Notion app would.
    pub fn add_data_source(&self, database: &str) -> String {
        let mut s = self.state();
        let id = s.new_id();
        s.sources.insert(id.clone(), norm(database));
        s.databases.get_mut(&norm(database)).unwrap().sources.push(id.clone());
        hyphenated(&id)
    }

    /// A page or database as an API call would return it.
    pub fn page(&self, id: &str) -> Option<Value> {
        let s = self.state();
        s.pages.get(&norm(id)).map(|p| s.page_json(&norm(id), p, "2022-06-28"))
    }

    /// The ids of the pages in `database`, oldest first.
    pub fn pages_in(&self, database: &str) -> Vec<String> {
        let s = self.state();
        let db = norm(database);
        s.order.iter().filter(|id| s.pages[*id].database.as_deref() == Some(&db)).map(|id| hyphenated(id)).collect()
    }

    /// The schema of a database: property name → `{id, name, type, <type>: {...}}`.
    pub fn schema(&self, database: &str) -> Option<Value> {
        self.state().databases.get(&norm(database)).map(|d| Value::Object(d.schema.clone()))
    }

    /// Databases created under `parent`: (title, id).
    pub fn databases_under(&self, parent: &str) -> Vec<(String, String)> {
        let s = self.state();
        s.databases
            .iter()
            .filter(|(_, d)| d.parent.get("page_id").and_then(Value::as_str).map(norm) == Some(norm(parent)))
            .map(|(id, d)| (plain(&d.title), hyphenated(id)))
            .collect()
    }

    /// The live (not archived) child blocks of a page or block, in order, as Notion returns them.
    pub fn children(&self, id: &str) -> Vec<Value> {
        let s = self.state();
        s.live_children(&norm(id)).iter().map(|b| s.block_json(b)).collect()
    }

    /// From now on `id` answers 404, as if the integration lost access to it.
    pub fn unshare(&self, id: &str) {
        self.state().unshared.insert(norm(id));
    }

    /// The next request is answered with this error (after the token and rate checks).
    pub fn fail_next(&self, status: u16, code: &str, message: &str, retry_after: Option<u64>) {
        self.state().failures.push_back(Failure {
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            retry_after,
        });
    }

    /// Counts so far.
    pub fn stats(&self) -> NotionStats {
        self.state().stats.clone()
    }
}

fn runs(text: &str) -> Value {
    json!([{"type": "text", "text": {"content": text}}])
}

fn plain(runs: &Value) -> String {
    runs.as_array()
        .map(|a| a.iter().filter_map(|r| r.get("plain_text").and_then(Value::as_str)).collect())
        .unwrap_or_default()
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: String,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let raw = crate::http::read(reader)?;
    let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
    let query = query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect();
    Some(Request {
        method: raw.method.clone(),
        path: path.to_owned(),
        query,
        headers: raw.headers,
        body: String::from_utf8_lossy(&raw.body).into_owned(),
    })
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let (status, headers, body) = {
            let mut s = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            s.answer(&request)
        };
        let mut out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        if reader.get_mut().write_all(out.as_bytes()).is_err() {
            return;
        }
        if request.headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
            return;
        }
    }
}

fn error_body(status: u16, code: &str, message: &str) -> String {
    json!({"object": "error", "status": status, "code": code, "message": message,
           "request_id": "00000000-0000-4000-8000-000000000000"})
    .to_string()
}

impl State {
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        format!("16cabc1eedcd8000a000{:012x}", self.next_id)
    }

    fn now(&self) -> String {
        // Notion stamps edits to the minute.
        self.now.clone().unwrap_or_else(|| {
            let now = jiff::Timestamp::now();
            now.strftime("%Y-%m-%dT%H:%M:00.000Z").to_string()
        })
    }

    fn insert_page(&mut self, id: &str, page: Page) {
        self.order.push(id.to_owned());
        self.pages.insert(id.to_owned(), page);
    }

    fn rate_limited(&mut self) -> bool {
        let now = Instant::now();
        self.window.push_back(now);
        while self.window.front().is_some_and(|t| now.duration_since(*t).as_secs_f64() >= 1.0) {
            self.window.pop_front();
        }
        self.stats.peak_per_second = self.stats.peak_per_second.max(self.window.len() as u64);
        let Some(b) = &mut self.bucket else { return false };
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * b.per_second).min(b.capacity);
        b.at = now;
        if b.tokens < 1.0 {
            return true;
        }
        b.tokens -= 1.0;
        false
    }

    fn answer(&mut self, r: &Request) -> (u16, Vec<(&'static str, String)>, String) {
        self.stats.requests += 1;
        let route = r.path.split('/').filter(|p| !p.is_empty()).take(2).collect::<Vec<_>>().join("/");
        let tail = if r.path.ends_with("/query") {
            "/query"
        } else if r.path.ends_with("/children") {
            "/children"
        } else {
            ""
        };
        *self.stats.routes.entry(format!("{} /{route}{tail}", r.method)).or_default() += 1;
        if r.headers.get("authorization") != Some(&format!("Bearer {}", self.token)) {
            return (401, Vec::new(), error_body(401, "unauthorized", "API token is invalid."));
        }
        let Some(version) = r.headers.get("notion-version").cloned() else {
            let m = "Notion-Version header failed validation: Notion-Version header should be defined, instead was `undefined`.";
            return (400, Vec::new(), error_body(400, "missing_version", m));
        };
        if self.rate_limited() {
            self.stats.rate_limited += 1;
            let m = "You have been rate limited. Please try again in a few minutes.";
            return (429, vec![("retry-after", "1".to_owned())], error_body(429, "rate_limited", m));
        }
        if let Some(f) = self.failures.pop_front() {
            let headers = f.retry_after.map(|s| vec![("retry-after", s.to_string())]).unwrap_or_default();
            return (f.status, headers, error_body(f.status, &f.code, &f.message));
        }
        let body: Value = if r.body.is_empty() {
            json!({})
        } else {
            match serde_json::from_str(&r.body) {
                Ok(v) => v,
                Err(e) => {
                    return (
                        400,
                        Vec::new(),
                        error_body(400, "invalid_json", &format!("Error parsing JSON body: {e}")),
                    );
                }
            }
        };
        let segments: Vec<&str> = r.path.trim_start_matches("/v1/").split('/').collect();
        let result = match (r.method.as_str(), segments.as_slice()) {
            ("POST", ["databases"]) => self.create_database(&body, &version),
            ("GET", ["databases", id]) => self.get_database(id, &version),
            ("PATCH", ["databases", id]) => self.update_database(id, &body, &version),
            ("POST", ["databases", id, "query"]) => self.query_database(id, &body, &version),
            ("GET", ["data_sources", id]) => self.get_source(id, &version),
            ("POST", ["data_sources", id, "query"]) => self.query_source(id, &body, &version),
            ("POST", ["pages"]) => self.create_page(&body, &version),
            ("GET", ["pages", id]) => self.get_page(id, &version),
            ("PATCH", ["pages", id]) => self.update_page(id, &body, &version),
            ("GET", ["users", "me"]) => Ok(json!({
                "object": "user", "id": BOT_USER, "name": "tam", "avatar_url": null, "type": "bot",
                "bot": {"owner": {"type": "workspace", "workspace": true}, "workspace_name": "Vendor"},
                "request_id": "00000000-0000-4000-8000-000000000002",
            })),
            ("GET", ["blocks", id, "children"]) => self.list_children(id, &r.query),
            ("PATCH", ["blocks", id, "children"]) => self.append_children(id, &body),
            ("PATCH", ["blocks", id]) => self.update_block(id, &body),
            ("DELETE", ["blocks", id]) => self.delete_block(id),
            _ => Err(refuse(400, "invalid_request_url", "Invalid request URL.")),
        };
        match result {
            Ok(v) => (200, Vec::new(), v.to_string()),
            Err(r) => {
                let mut body: Value = serde_json::from_str(&error_body(r.status, r.code, &r.message)).unwrap();
                if !r.data.is_null() {
                    body["additional_data"] = r.data;
                }
                (r.status, Vec::new(), body.to_string())
            }
        }
    }

    fn not_found(kind: &str, id: &str) -> Refusal {
        refuse(
            404,
            "object_not_found",
            format!(
                "Could not find {kind} with ID: {}. Make sure the relevant pages and databases are shared with your integration.",
                hyphenated(&norm(id))
            ),
        )
    }

    fn database(&self, id: &str) -> Result<&Database, Refusal> {
        let key = norm(id);
        if self.unshared.contains(&key) {
            return Err(Self::not_found("database", id));
        }
        self.databases.get(&key).ok_or_else(|| Self::not_found("database", id))
    }

    fn shared_page(&self, id: &str) -> Result<&Page, Refusal> {
        let key = norm(id);
        match self.pages.get(&key) {
            Some(p) if !self.unshared.contains(&key) && !p.archived => Ok(p),
            _ => Err(Self::not_found("page", id)),
        }
    }
}
