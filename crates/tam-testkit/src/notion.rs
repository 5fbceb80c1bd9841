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
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value, json};

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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &state));
            }
        });
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

    fn create_database(&mut self, body: &Value, version: &str) -> Answer {
        let parent = body.pointer("/parent/page_id").and_then(Value::as_str).ok_or_else(|| {
            invalid("body failed validation: body.parent.page_id should be defined, instead was `undefined`.")
        })?;
        self.shared_page(parent)?;
        let properties = if version >= "2025-09-03" {
            body.pointer("/initial_data_source/properties")
        } else {
            body.get("properties")
        };
        let properties = properties.and_then(Value::as_object).cloned().unwrap_or_default();
        let mut schema = Map::new();
        add_properties(&mut schema, &properties)?;
        if schema.is_empty() {
            schema.insert("Name".into(), json!({"id": "title", "name": "Name", "type": "title", "title": {}}));
        }
        let titles = schema.values().filter(|p| p["type"] == "title").count();
        if titles != 1 {
            return Err(invalid(format!("Database must have exactly one title property, instead had {titles}.")));
        }
        let id = self.new_id();
        let source = self.new_id();
        self.sources.insert(source.clone(), id.clone());
        let db = Database {
            parent: json!({"type": "page_id", "page_id": hyphenated(&norm(parent))}),
            title: body.get("title").map(rich_response).unwrap_or(json!([])),
            schema,
            sources: vec![source],
            created: self.now(),
        };
        self.databases.insert(id.clone(), db);
        self.get_database(&id, version)
    }

    /// Adds or changes properties (2022-06-28 `PATCH /v1/databases/{id}`).
    fn update_database(&mut self, id: &str, body: &Value, version: &str) -> Answer {
        self.database(id)?;
        let properties = body.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let db = self.databases.get_mut(&norm(id)).unwrap();
        add_properties(&mut db.schema, &properties)?;
        self.get_database(id, version)
    }

    fn get_database(&self, id: &str, version: &str) -> Answer {
        let db = self.database(id)?;
        let mut v = json!({
            "object": "database", "id": hyphenated(&norm(id)), "title": db.title, "description": [],
            "parent": db.parent, "is_inline": false, "in_trash": false, "archived": false,
            "created_time": db.created, "last_edited_time": db.created, "url": format!("https://app.notion.com/p/{}", norm(id)),
        });
        if version >= "2025-09-03" {
            let title = plain(&db.title);
            v["data_sources"] = db.sources.iter().map(|s| json!({"id": hyphenated(s), "name": title})).collect();
        } else {
            v["properties"] = Value::Object(db.schema.clone());
        }
        Ok(v)
    }

    fn get_source(&self, id: &str, version: &str) -> Answer {
        if version < "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db_id = self.sources.get(&norm(id)).ok_or_else(|| Self::not_found("data source", id))?;
        let db = self.database(db_id)?;
        Ok(json!({
            "object": "data_source", "id": hyphenated(&norm(id)), "title": db.title,
            "parent": {"type": "database_id", "database_id": hyphenated(db_id)}, "properties": db.schema,
        }))
    }

    fn query_database(&self, id: &str, body: &Value, version: &str) -> Answer {
        if version >= "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db = self.database(id)?;
        if db.sources.len() > 1 {
            return Err(several_sources(&norm(id), &db.sources));
        }
        self.query(|p| p.database.as_deref() == Some(&norm(id)), &db.schema, body, version, "page_or_database")
    }

    fn query_source(&self, id: &str, body: &Value, version: &str) -> Answer {
        if version < "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db = self.sources.get(&norm(id)).ok_or_else(|| Self::not_found("data source", id))?;
        let schema = &self.database(db)?.schema;
        let key = norm(id);
        self.query(|p| p.source.as_deref() == Some(&key), schema, body, version, "page_or_data_source")
    }

    fn query(
        &self,
        member: impl Fn(&Page) -> bool,
        schema: &Map<String, Value>,
        body: &Value,
        version: &str,
        kind: &str,
    ) -> Answer {
        let size = body.get("page_size").and_then(Value::as_u64).unwrap_or(100);
        if !(1..=100).contains(&size) {
            return Err(invalid(format!(
                "body failed validation: body.page_size should be ≤ `100`, instead was `{size}`."
            )));
        }
        // Notion checks the filter against the schema before it reads a page.
        if let Some(filter) = body.get("filter") {
            check_filter(filter, schema)?;
        }
        let mut hits = Vec::new();
        for id in &self.order {
            let page = &self.pages[id];
            if member(page) && !page.archived && matches(page, body.get("filter"))? {
                hits.push(id);
            }
        }
        if let Some(sorts) = body.get("sorts").and_then(Value::as_array) {
            for sort in sorts.iter().rev() {
                if sort.get("timestamp").and_then(Value::as_str) == Some("last_edited_time") {
                    hits.sort_by(|a, b| self.pages[*a].edited.cmp(&self.pages[*b].edited));
                    if sort.get("direction").and_then(Value::as_str) == Some("descending") {
                        hits.reverse();
                    }
                }
            }
        }
        let start = match body.get("start_cursor").and_then(Value::as_str) {
            Some(c) => hits.iter().position(|id| **id == norm(c)).ok_or_else(|| {
                invalid(format!(
                    "body failed validation: body.start_cursor should be a valid cursor, instead was `{c}`."
                ))
            })?,
            None => 0,
        };
        let end = (start + size as usize).min(hits.len());
        let results: Vec<Value> =
            hits[start..end].iter().map(|id| self.page_json(id, &self.pages[*id], version)).collect();
        let next = hits.get(end).map(|id| hyphenated(id));
        Ok(json!({"object": "list", "results": results, "next_cursor": next, "has_more": next.is_some(),
                  "type": kind, kind: {}, "request_id": "00000000-0000-4000-8000-000000000001"}))
    }

    fn page_json(&self, id: &str, p: &Page, version: &str) -> Value {
        let mut parent = p.parent.clone();
        if let (Some(db), Some(source)) = (&p.database, &p.source) {
            parent = if version >= "2025-09-03" {
                json!({"type": "data_source_id", "data_source_id": hyphenated(source), "database_id": hyphenated(db)})
            } else {
                json!({"type": "database_id", "database_id": hyphenated(db)})
            };
        }
        let mut properties = p.properties.clone();
        // Notion computes these from the page itself.
        let schema = p.database.as_ref().and_then(|db| self.databases.get(db)).map(|d| &d.schema);
        for (name, property) in schema.into_iter().flatten() {
            if property["type"] == "last_edited_by" {
                properties.insert(
                    name.clone(),
                    json!({"id": property["id"], "type": "last_edited_by",
                           "last_edited_by": {"object": "user", "id": p.editor}}),
                );
            }
        }
        json!({
            "object": "page", "id": hyphenated(id), "created_time": p.created, "last_edited_time": p.edited,
            "created_by": {"object": "user", "id": p.creator},
            "last_edited_by": {"object": "user", "id": p.editor},
            "cover": null, "icon": null, "parent": parent, "archived": p.archived, "in_trash": p.archived,
            "properties": properties, "url": format!("https://www.notion.so/{id}"), "public_url": null,
        })
    }

    fn create_page(&mut self, body: &Value, version: &str) -> Answer {
        let parent = body.get("parent").cloned().unwrap_or(Value::Null);
        let (database, source, parent_page) = if let Some(ds) = parent.get("data_source_id").and_then(Value::as_str) {
            let db = self.sources.get(&norm(ds)).cloned().ok_or_else(|| Self::not_found("data source", ds))?;
            (Some(db), Some(norm(ds)), None)
        } else if let Some(db) = parent.get("database_id").and_then(Value::as_str) {
            let sources = &self.database(db)?.sources;
            if sources.len() > 1 {
                return Err(several_sources(&norm(db), sources));
            }
            (Some(norm(db)), sources.first().cloned(), None)
        } else if let Some(page) = parent.get("page_id").and_then(Value::as_str) {
            self.shared_page(page)?;
            (None, None, Some(norm(page)))
        } else {
            return Err(invalid("body failed validation: body.parent should be defined, instead was `undefined`."));
        };
        if let Some(db) = &database {
            self.database(db)?;
        }
        let children = body.get("children").cloned().unwrap_or(json!([]));
        validate_children(&children, "body.children")?;
        let schema = database.as_ref().map(|db| self.databases[db].schema.clone());
        let properties = convert_properties(body.get("properties"), schema.as_ref())?;
        self.check_relations(&properties, schema.as_ref())?;
        let id = self.new_id();
        let now = self.now();
        let page = Page {
            parent: match &parent_page {
                Some(p) => json!({"type": "page_id", "page_id": hyphenated(p)}),
                None => json!({"type": "database_id", "database_id": database.as_deref().map(hyphenated)}),
            },
            database,
            source,
            properties,
            created: now.clone(),
            edited: now,
            creator: BOT_USER.to_owned(),
            editor: BOT_USER.to_owned(),
            archived: false,
        };
        self.insert_page(&id, page);
        if let Some(p) = parent_page {
            // A sub-page is also a block of its parent.
            let body = json!({"type": "child_page", "child_page": {"title": plain(&self.pages[&id].properties.get("title").map(|t| t["title"].clone()).unwrap_or_default())}});
            self.blocks.insert(id.clone(), Block { parent: p.clone(), body, archived: false });
            self.children.entry(p).or_default().push(id.clone());
        }
        self.add_blocks(&id, children.as_array().unwrap_or(&Vec::new()), None);
        Ok(self.page_json(&id, &self.pages[&id], version))
    }

    /// A relation names rows of its related database: a page that does not exist, or one that
    /// is not a row of that database (a sub-page, say), is refused, as Notion refuses it.
    fn check_relations(
        &self,
        properties: &Map<String, Value>,
        schema: Option<&Map<String, Value>>,
    ) -> Result<(), Refusal> {
        for (name, property) in properties {
            let related_db = schema
                .and_then(|s| s.get(name))
                .and_then(|p| p.pointer("/relation/database_id"))
                .and_then(Value::as_str)
                .map(norm);
            for related in property["relation"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let id = related["id"].as_str().unwrap_or_default();
                let Some(page) = self.pages.get(&norm(id)) else {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation: Could not find page with ID: {id}."
                    )));
                };
                if let Some(db) = &related_db
                    && page.database.as_ref().map(|d| norm(d)) != Some(db.clone())
                {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation: page {id} is not in the related database."
                    )));
                }
            }
        }
        Ok(())
    }

    fn get_page(&self, id: &str, version: &str) -> Answer {
        let page = self.shared_page(id)?;
        Ok(self.page_json(&norm(id), page, version))
    }

    fn update_page(&mut self, id: &str, body: &Value, version: &str) -> Answer {
        let page = self.shared_page(id)?.clone();
        let schema = page.database.as_ref().map(|db| self.databases[db].schema.clone());
        let changes = convert_properties(body.get("properties"), schema.as_ref())?;
        self.check_relations(&changes, schema.as_ref())?;
        let now = self.now();
        let key = norm(id);
        let page = self.pages.get_mut(&key).unwrap();
        page.properties.extend(changes);
        if let Some(a) = body.get("archived").or(body.get("in_trash")).and_then(Value::as_bool) {
            page.archived = a;
        }
        page.edited = now;
        page.editor = BOT_USER.to_owned();
        let page = self.pages[&key].clone();
        Ok(self.page_json(&key, &page, version))
    }

    fn live_children(&self, parent: &str) -> Vec<String> {
        self.children
            .get(parent)
            .map(|c| c.iter().filter(|b| !self.blocks[*b].archived).cloned().collect())
            .unwrap_or_default()
    }

    fn block_json(&self, id: &str) -> Value {
        let b = &self.blocks[id];
        let parent_kind = if self.pages.contains_key(&b.parent) { "page_id" } else { "block_id" };
        let mut v = b.body.clone();
        v["object"] = json!("block");
        v["id"] = json!(hyphenated(id));
        v["parent"] = json!({"type": parent_kind, parent_kind: hyphenated(&b.parent)});
        v["has_children"] = json!(!self.live_children(id).is_empty());
        v["archived"] = json!(b.archived);
        v["in_trash"] = json!(b.archived);
        v
    }

    fn target(&self, id: &str) -> Result<String, Refusal> {
        let key = norm(id);
        let live = self.blocks.get(&key).is_some_and(|b| !b.archived) || self.shared_page(id).is_ok();
        if !live || self.unshared.contains(&key) {
            return Err(Self::not_found("block", id));
        }
        Ok(key)
    }

    fn list_children(&self, id: &str, query: &HashMap<String, String>) -> Answer {
        let key = self.target(id)?;
        let all = self.live_children(&key);
        let size = query.get("page_size").and_then(|s| s.parse::<usize>().ok()).unwrap_or(100).clamp(1, 100);
        let start = query.get("start_cursor").and_then(|c| all.iter().position(|b| *b == norm(c))).unwrap_or(0);
        let end = (start + size).min(all.len());
        let next = all.get(end).map(|id| hyphenated(id));
        let results: Vec<Value> = all[start..end].iter().map(|b| self.block_json(b)).collect();
        Ok(json!({"object": "list", "results": results, "next_cursor": next, "has_more": next.is_some(),
                  "type": "block", "block": {}}))
    }

    fn append_children(&mut self, id: &str, body: &Value) -> Answer {
        let key = self.target(id)?;
        let children = body.get("children").cloned().unwrap_or(Value::Null);
        if !children.is_array() {
            return Err(invalid("body failed validation: body.children should be an array, instead was `undefined`."));
        }
        validate_children(&children, "body.children")?;
        let after = body.get("after").and_then(Value::as_str).map(norm);
        let created = self.add_blocks(&key, children.as_array().unwrap(), after);
        let results: Vec<Value> = created.iter().map(|b| self.block_json(b)).collect();
        Ok(
            json!({"object": "list", "results": results, "next_cursor": null, "has_more": false, "type": "block", "block": {}}),
        )
    }

    fn add_blocks(&mut self, parent: &str, children: &[Value], after: Option<String>) -> Vec<String> {
        let mut created = Vec::new();
        let now = self.now();
        for child in children {
            let kind = block_kind(child).unwrap_or("paragraph").to_owned();
            let mut content = child.get(&kind).cloned().unwrap_or(json!({}));
            let nested = content.as_object_mut().and_then(|o| o.remove("children"));
            if let Some(text) = content.get("rich_text").cloned() {
                content["rich_text"] = rich_response(&text);
            }
            if content.get("color").is_none() && content.is_object() {
                content["color"] = json!("default");
            }
            let id = self.new_id();
            let body = json!({"type": kind, kind.as_str(): content, "created_time": now, "last_edited_time": now});
            self.blocks.insert(id.clone(), Block { parent: parent.to_owned(), body, archived: false });
            let list = self.children.entry(parent.to_owned()).or_default();
            let at = after
                .as_ref()
                .and_then(|a| list.iter().position(|b| b == a))
                .map_or(list.len(), |p| p + 1 + created.len());
            list.insert(at.min(list.len()), id.clone());
            if let Some(nested) = nested.as_ref().and_then(Value::as_array) {
                self.add_blocks(&id, nested, None);
            }
            created.push(id);
        }
        created
    }

    fn update_block(&mut self, id: &str, body: &Value) -> Answer {
        let key = self.target(id)?;
        let Some(block) = self.blocks.get(&key) else { return Err(Self::not_found("block", id)) };
        let kind = block.body["type"].as_str().unwrap_or_default().to_owned();
        if let Some(content) = body.get(&kind) {
            if let Some(text) = content.get("rich_text") {
                validate_runs(text, &format!("body.{kind}.rich_text"))?;
                let now = self.now();
                let block = self.blocks.get_mut(&key).unwrap();
                block.body[&kind]["rich_text"] = rich_response(text);
                block.body["last_edited_time"] = json!(now);
            }
        } else if body.get("archived").and_then(Value::as_bool) == Some(true) {
            self.blocks.get_mut(&key).unwrap().archived = true;
        }
        Ok(self.block_json(&key))
    }

    fn delete_block(&mut self, id: &str) -> Answer {
        let key = self.target(id)?;
        if let Some(page) = self.pages.get_mut(&key) {
            page.archived = true;
        }
        if let Some(block) = self.blocks.get_mut(&key) {
            block.archived = true;
            return Ok(self.block_json(&key));
        }
        Ok(json!({"object": "block", "id": hyphenated(&key), "archived": true, "in_trash": true}))
    }
}

/// Property schemas in the request format (`{"Status": {"select": {"options": [...]}}}`) as
/// Notion stores them: with ids, option ids and colors.
fn add_properties(schema: &mut Map<String, Value>, properties: &Map<String, Value>) -> Result<(), Refusal> {
    for (name, config) in properties {
        let Some((kind, options)) = config.as_object().and_then(|o| o.iter().find(|(k, _)| *k != "name")) else {
            return Err(invalid(format!("body failed validation: body.properties.{name} should be an object.")));
        };
        let mut options = options.clone();
        if let Some(list) = options.get_mut("options").and_then(Value::as_array_mut) {
            for (i, o) in list.iter_mut().enumerate() {
                o["id"] = json!(format!("opt{i}"));
                if o.get("color").is_none() {
                    o["color"] = json!("default");
                }
            }
        }
        let id = if kind == "title" { "title".to_owned() } else { format!("p{}", schema.len()) };
        schema.insert(name.clone(), json!({"id": id, "name": name, "type": kind, kind.as_str(): options}));
    }
    Ok(())
}

const BLOCK_KINDS: &[&str] = &[
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "toggle",
    "quote",
    "callout",
    "code",
    "divider",
];

fn block_kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str).or_else(|| BLOCK_KINDS.iter().copied().find(|k| block.get(*k).is_some()))
}

fn validate_children(children: &Value, at: &str) -> Result<(), Refusal> {
    let list = children.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.len() > 100 {
        return Err(invalid(format!(
            "body failed validation: {at}.length should be ≤ `100`, instead was `{}`.",
            list.len()
        )));
    }
    for (i, child) in list.iter().enumerate() {
        let Some(kind) = block_kind(child) else {
            return Err(invalid(format!("body failed validation: {at}[{i}] should be a block object.")));
        };
        let content = &child[kind];
        if let Some(text) = content.get("rich_text") {
            validate_runs(text, &format!("{at}[{i}].{kind}.rich_text"))?;
        }
        if let Some(nested) = content.get("children") {
            validate_children(nested, &format!("{at}[{i}].{kind}.children"))?;
        }
    }
    Ok(())
}

fn validate_runs(runs: &Value, at: &str) -> Result<(), Refusal> {
    let list = runs.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.len() > 100 {
        return Err(invalid(format!(
            "body failed validation: {at}.length should be ≤ `100`, instead was `{}`.",
            list.len()
        )));
    }
    for (j, run) in list.iter().enumerate() {
        // Notion counts as JavaScript does: UTF-16 code units, so an emoji is two.
        let n = run.pointer("/text/content").and_then(Value::as_str).map_or(0, |t| t.encode_utf16().count());
        if n > 2000 {
            return Err(invalid(format!(
                "body failed validation: {at}[{j}].text.content.length should be ≤ `2000`, instead was `{n}`."
            )));
        }
    }
    Ok(())
}

/// Request-format rich text as Notion returns it: with `plain_text` and annotations.
fn rich_response(runs: &Value) -> Value {
    runs.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let content = r.pointer("/text/content").and_then(Value::as_str).unwrap_or_default();
                    json!({"type": "text", "text": {"content": content, "link": null},
                           "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
                           "plain_text": content, "href": null})
                })
                .collect()
        })
        .unwrap_or(json!([]))
}

/// Request-format property values as a page stores them, checked against the schema (a page
/// under a page has only `title`).
fn convert_properties(
    props: Option<&Value>,
    schema: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = Map::new();
    let Some(props) = props.and_then(Value::as_object) else { return Ok(out) };
    for (name, value) in props {
        let (id, kind) = match schema {
            Some(schema) => {
                let p = schema
                    .get(name)
                    .or_else(|| schema.values().find(|p| p["id"] == json!(name)))
                    .ok_or_else(|| invalid(format!("{name} is not a property that exists.")))?;
                (p["id"].clone(), p["type"].as_str().unwrap_or_default().to_owned())
            }
            None if name == "title" => (json!("title"), "title".to_owned()),
            None => return Err(invalid(format!("{name} is not a property that exists."))),
        };
        let Some(inner) = value.get(&kind) else {
            return Err(invalid(format!("{name} is expected to be {kind}.")));
        };
        let stored = match kind.as_str() {
            "title" | "rich_text" => {
                validate_runs(inner, &format!("body.properties.{name}.{kind}"))?;
                rich_response(inner)
            }
            "number" if !(inner.is_number() || inner.is_null()) => {
                return Err(invalid(format!("{name} is expected to be number.")));
            }
            "checkbox" if !inner.is_boolean() => return Err(invalid(format!("{name} is expected to be checkbox."))),
            "relation" => {
                let n = inner.as_array().map_or(0, Vec::len);
                if n > 100 {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation.length should be ≤ `100`, instead was `{n}`."
                    )));
                }
                inner.clone()
            }
            "select" | "status" if inner.is_object() => {
                let name = inner.get("name").cloned().unwrap_or(Value::Null);
                json!({"id": "opt", "name": name, "color": "default"})
            }
            "date" if inner.is_object() => {
                json!({"start": inner.get("start"), "end": inner.get("end").cloned().unwrap_or(Value::Null), "time_zone": null})
            }
            _ => inner.clone(),
        };
        let mut v = json!({"id": id, "type": kind});
        v[&kind] = stored;
        if kind == "relation" {
            v["has_more"] = json!(false);
        }
        let key = schema.and_then(|s| s.iter().find(|(_, p)| p["id"] == id)).map_or(name.clone(), |(n, _)| n.clone());
        out.insert(key, v);
    }
    Ok(out)
}

fn matches(page: &Page, filter: Option<&Value>) -> Result<bool, Refusal> {
    let Some(filter) = filter else { return Ok(true) };
    if let Some(all) = filter.get("and").and_then(Value::as_array) {
        for f in all {
            if !matches(page, Some(f))? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = filter.get("or").and_then(Value::as_array) {
        for f in any {
            if matches(page, Some(f))? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(condition) = filter.get("last_edited_by") {
        // A people condition; `check_filter` made sure the property is of this type.
        let user = |k: &str| condition.get(k).and_then(Value::as_str).map(norm);
        let editor = norm(&page.editor);
        return Ok(match (user("contains"), user("does_not_contain")) {
            (Some(u), _) => editor == u,
            (_, Some(u)) => editor != u,
            _ => condition.get("is_not_empty").is_some(),
        });
    }
    let (value, condition) = match filter.get("timestamp").and_then(Value::as_str) {
        Some(t @ ("last_edited_time" | "created_time")) => {
            let v = if t == "created_time" { &page.created } else { &page.edited };
            (v.clone(), filter.get(t))
        }
        _ => return Err(invalid("body failed validation: this fake Notion filters only on timestamps.")),
    };
    let Some((op, bound)) = condition.and_then(Value::as_object).and_then(|o| o.iter().next()) else {
        return Err(invalid("body failed validation: body.filter should have a condition."));
    };
    // Stamps and bounds are compared as instants: `…Z` and `….000Z` are the same time.
    let at = |s: &str| s.parse::<jiff::Timestamp>().map_err(|_| invalid(format!("body.filter: `{s}` is not a date.")));
    let (v, b) = (at(&value)?, at(bound.as_str().unwrap_or_default())?);
    Ok(match op.as_str() {
        "on_or_after" => v >= b,
        "after" => v > b,
        "on_or_before" => v <= b,
        "before" => v < b,
        "equals" => v == b,
        _ => return Err(invalid(format!("body failed validation: unknown date condition `{op}`."))),
    })
}

/// A query's filter checked against the database's schema, as Notion checks it: a property
/// condition must name a property the schema has, of the condition's type. This fake knows the
/// timestamp conditions and the people condition on a `last_edited_by` property.
fn check_filter(filter: &Value, schema: &Map<String, Value>) -> Result<(), Refusal> {
    for compound in ["and", "or"] {
        if let Some(list) = filter.get(compound).and_then(Value::as_array) {
            return list.iter().try_for_each(|f| check_filter(f, schema));
        }
    }
    let Some(name) = filter.get("property").and_then(Value::as_str) else { return Ok(()) };
    let Some(property) = schema.get(name).or_else(|| schema.values().find(|p| p["id"] == json!(name))) else {
        return Err(invalid(format!("Could not find property with name or id: {name}")));
    };
    let kind = property["type"].as_str().unwrap_or_default();
    let condition = filter.as_object().and_then(|o| o.keys().find(|k| *k != "property" && *k != "type"));
    match condition.map(String::as_str) {
        Some("last_edited_by") if kind == "last_edited_by" => Ok(()),
        Some(c) if c != kind => Err(invalid(format!(
            "body failed validation. Fix one: body.filter.{kind} should be defined, instead was `undefined`. \
             body.filter.{c} is not a valid filter for property {name} of type {kind}."
        ))),
        _ => Err(invalid("body failed validation: this fake Notion filters only on timestamps and Last edited by.")),
    }
}
