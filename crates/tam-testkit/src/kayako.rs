//! A stateful local kayako.com helpdesk speaking the JSON API v1 (`shared/reference/API_FACTS.md`
//! 5b, `fixtures/kayako/v1_*`). It is as strict as the facts allow, so a client that would fail
//! against the real helpdesk fails here:
//!
//! * Auth: `Authorization: Basic base64(email:password)` opens a session whose id comes back as
//!   `session_id`; later requests carry it in `X-Session-ID`. Anything else is a 401.
//! * Lists: the `{status, data, resource, total_count}` envelope; `offset` (0-based) and
//!   `limit`, **10 by default**; a limit above 100 is clamped to 100, a malformed one refused.
//! * Nested resources (a case's `requester`, `status`, `priority`, `type`, a custom field's
//!   `field`, a user's `organization`) are `{id, resource_type}` references **unless
//!   `include=` names their type** (`*` names all); included resources come back once each in a
//!   top-level `resources` map keyed by type, then by id. `organization` is not a field of a case.
//!
//! UNVERIFIED (no fixture or doc shows them; chosen to be the hard case for a client): the
//! exact shape of the `resources` map; custom fields as `{field: ref, value}` items of
//! `custom_fields`; `case_type` resources as `{id, label, type}`; the 100 cap on `limit` (the
//! facts say the maximum is unknown; clamping is the behaviour that loses cases if a client
//! trusts its own page size); the error envelope `{status, errors: [{code, message}]}`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value, json};

use crate::http::{self, Raw};

/// What the fake has been asked.
#[derive(Debug, Clone, Default)]
pub struct KayakoStats {
    /// Every request, refused ones included.
    pub requests: u64,
    /// Requests that carried Basic credentials.
    pub basic_auths: u64,
    /// Requests per path (without the query), e.g. `/api/v1/cases.json`.
    pub routes: BTreeMap<String, u64>,
    /// Every request target (path and query), in order.
    pub targets: Vec<String>,
}

#[derive(Default)]
struct State {
    email: String,
    password: String,
    session: Option<String>,
    sessions_opened: u64,
    /// Resources by type, then id, in their wire form (references inside).
    resources: BTreeMap<String, BTreeMap<i64, Value>>,
    cases: Vec<Value>,
    stats: KayakoStats,
}

/// A running fake kayako.com helpdesk.
pub struct FakeKayako {
    /// `http://127.0.0.1:<port>`, the `base_url` of a client.
    pub url: String,
    state: Arc<Mutex<State>>,
}

/// The largest page the fake serves (UNVERIFIED for the real API, see the module docs).
pub const MAX_LIMIT: usize = 100;

fn reference(id: i64, resource_type: &str) -> Value {
    json!({"id": id, "resource_type": resource_type})
}

impl FakeKayako {
    /// A helpdesk whose agent signs in as `email` with `password`.
    pub fn start(email: &str, password: &str) -> FakeKayako {
        let state =
            Arc::new(Mutex::new(State { email: email.to_owned(), password: password.to_owned(), ..State::default() }));
        let url = crate::http::listen(&state, serve);
        FakeKayako { url, state }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn put(&self, resource_type: &str, id: i64, mut body: Value) {
        body["id"] = json!(id);
        body["resource_type"] = json!(resource_type);
        self.state().resources.entry(resource_type.to_owned()).or_default().insert(id, body);
    }

    /// An organization.
    pub fn add_organization(&self, id: i64, name: &str) {
        self.put("organization", id, json!({"name": name}));
    }

    /// A user (a requester), in `organization` if any.
    pub fn add_user(&self, id: i64, full_name: &str, email: &str, organization: Option<i64>) {
        let organization = organization.map_or(Value::Null, |o| reference(o, "organization"));
        self.put("user", id, json!({"full_name": full_name, "emails": [email], "organization": organization}));
    }

    /// A case custom field (`key` is what `[kayako] account_field` names).
    pub fn add_case_field(&self, id: i64, key: &str, title: &str) {
        self.put("case_field", id, json!({"key": key, "title": title, "type": "TEXT"}));
    }

    /// A case type (`Question`, `Feature request`, ...); `kind` is Kayako's own (`QUESTION`, ...).
    pub fn add_case_type(&self, id: i64, label: &str, kind: &str) {
        self.put("case_type", id, json!({"label": label, "type": kind}));
    }

    /// A priority, as `/api/v1/cases/priorities` lists it.
    pub fn add_priority(&self, id: i64, label: &str, level: i64) {
        self.put("case_priority", id, json!({"label": label, "level": level}));
    }

    /// A status, as `/api/v1/cases/statuses` lists it (`type` NEW, OPEN, PENDING, ...).
    pub fn add_status(&self, id: i64, label: &str, kind: &str) {
        self.put("case_status", id, json!({"label": label, "type": kind}));
    }

    /// A case, given with plain ids: `{id, subject, status, priority, type, requester,
    /// custom_fields: {"<field id>": value}, created_at, updated_at, tags?: [name]}`. The fake stores it as
    /// the API shows it, every nested resource a reference.
    pub fn add_case(&self, spec: &Value) {
        let id = spec["id"].as_i64().unwrap();
        let refer =
            |key: &str, resource_type: &str| spec[key].as_i64().map_or(Value::Null, |i| reference(i, resource_type));
        let custom_fields: Vec<Value> = spec["custom_fields"]
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .map(|(field, value)| {
                        json!({"field": reference(field.parse().unwrap(), "case_field"), "value": value,
                               "resource_type": "case_field_value"})
                    })
                    .collect()
            })
            .unwrap_or_default();
        let case = json!({
            "id": id,
            "subject": spec["subject"],
            "state": "ACTIVE",
            "status": refer("status", "case_status"),
            "priority": refer("priority", "case_priority"),
            "type": refer("type", "case_type"),
            "requester": refer("requester", "user"),
            "custom_fields": custom_fields,
            "created_at": spec["created_at"],
            "updated_at": spec["updated_at"],
            "tags": spec.get("tags").cloned().unwrap_or_else(|| json!([])),
            "resource_type": "case",
            "resource_url": format!("{}/api/v1/cases/{id}", self.url),
        });
        let mut s = self.state();
        s.cases.retain(|c| c["id"].as_i64() != Some(id));
        s.cases.push(case);
        s.cases.sort_by_key(|c| c["id"].as_i64());
    }

    /// Ends the open session, as a helpdesk does after a while: its id is refused from now on.
    pub fn expire_session(&self) {
        self.state().session = None;
    }

    /// What was asked so far.
    pub fn stats(&self) -> KayakoStats {
        self.state().stats.clone()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream);
    while let Some(request) = http::read(&mut reader) {
        let (status, body) = state.lock().unwrap_or_else(std::sync::PoisonError::into_inner).answer(&request);
        let out = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if reader.get_mut().write_all(out.as_bytes()).is_err() {
            return;
        }
        if request.headers.get("connection").is_some_and(|c| c.eq_ignore_ascii_case("close")) {
            return;
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> (u16, String) {
    (status, json!({"status": status, "errors": [{"code": code, "message": message}]}).to_string())
}

fn decode(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 3 <= bytes.len() => {
                out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl State {
    fn answer(&mut self, request: &Raw) -> (u16, String) {
        self.stats.requests += 1;
        self.stats.targets.push(request.target.clone());
        let (path, query) = request.target.split_once('?').unwrap_or((&request.target, ""));
        *self.stats.routes.entry(path.to_owned()).or_default() += 1;
        let query: BTreeMap<String, String> =
            query.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect();
        let opened = match self.authenticate(request) {
            Ok(opened) => opened,
            Err(refusal) => return refusal,
        };
        if request.method != "GET" {
            return error(405, "METHOD_NOT_ALLOWED", "only GET is served by this fake");
        }
        let resource_type = match path.trim_end_matches(".json") {
            "/api/v1/cases" => "case",
            "/api/v1/cases/priorities" => "case_priority",
            "/api/v1/cases/statuses" => "case_status",
            _ => return error(404, "NOT_FOUND", &format!("no resource at {path}")),
        };
        let all: Vec<Value> = match resource_type {
            "case" => self.cases.clone(),
            other => self.resources.get(other).map(|r| r.values().cloned().collect()).unwrap_or_default(),
        };
        let number = |key: &str, default: usize| match query.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| format!("{key} {v:?} is not a non-negative integer")),
        };
        let (offset, limit) = match (number("offset", 0), number("limit", 10)) {
            (Ok(o), Ok(l)) => (o, l.clamp(1, MAX_LIMIT)),
            (Err(why), _) | (_, Err(why)) => return error(400, "PARAMETER_INVALID", &why),
        };
        let mut page: Vec<Value> = all.iter().skip(offset).take(limit).cloned().collect();
        // Tags are an optional field: a case shows them only when `fields=+tags` asks.
        let fields = query.get("fields").map(String::as_str).unwrap_or_default();
        if !fields.split(',').any(|f| f.trim() == "+tags") {
            for case in page.iter_mut().filter_map(Value::as_object_mut) {
                case.remove("tags");
            }
        }
        let mut body = json!({"status": 200, "data": page, "resource": resource_type, "total_count": all.len()});
        let include: BTreeSet<String> = query
            .get("include")
            .map(|i| i.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect())
            .unwrap_or_default();
        if !include.is_empty() {
            body["resources"] = Value::Object(self.side_load(&page, &include));
        }
        if let Some(session) = opened {
            body["session_id"] = json!(session);
        }
        (200, body.to_string())
    }

    /// `Ok(Some(session))` when Basic credentials opened a session, `Ok(None)` for a request
    /// in the open session, else the 401.
    fn authenticate(&mut self, request: &Raw) -> Result<Option<String>, (u16, String)> {
        if let Some(basic) = request.headers.get("authorization").and_then(|a| a.strip_prefix("Basic ")) {
            self.stats.basic_auths += 1;
            let given = String::from_utf8(crate::unbase64(basic.trim())).unwrap_or_default();
            if given != format!("{}:{}", self.email, self.password) {
                return Err(error(401, "AUTHENTICATION_FAILED", "Used authentication credentials are invalid"));
            }
            self.sessions_opened += 1;
            let session = format!("{:032x}Fake{:08x}Session", self.sessions_opened * 0x9e37_79b9, self.sessions_opened);
            self.session = Some(session.clone());
            return Ok(Some(session));
        }
        match request.headers.get("x-session-id") {
            Some(s) if self.session.as_deref() == Some(s.as_str()) => Ok(None),
            Some(_) => Err(error(401, "AUTHENTICATION_FAILED", "The session has expired or is invalid")),
            None => Err(error(401, "AUTHENTICATION_FAILED", "Authentication required")),
        }
    }

    /// The resources `page` refers to (and those they refer to) whose type `include` names.
    fn side_load(&self, page: &[Value], include: &BTreeSet<String>) -> Map<String, Value> {
        let wanted = |t: &str| include.contains("*") || include.contains(t);
        let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        let mut pending: Vec<Value> = page.to_vec();
        while let Some(value) = pending.pop() {
            let mut refs = Vec::new();
            collect_refs(&value, &mut refs, true);
            for (resource_type, id) in refs {
                if !wanted(&resource_type) || out.get(&resource_type).is_some_and(|m| m.contains_key(&id.to_string())) {
                    continue;
                }
                if let Some(found) = self.resources.get(&resource_type).and_then(|r| r.get(&id)) {
                    out.entry(resource_type).or_default().insert(id.to_string(), found.clone());
                    pending.push(found.clone());
                }
            }
        }
        out.into_iter().map(|(t, m)| (t, Value::Object(m.into_iter().collect()))).collect()
    }
}

/// Every `{id, resource_type}` inside `value` (not `value` itself when `top`).
fn collect_refs(value: &Value, out: &mut Vec<(String, i64)>, top: bool) {
    match value {
        Value::Object(map) => {
            if !top
                && let (Some(id), Some(t)) =
                    (map.get("id").and_then(Value::as_i64), map.get("resource_type").and_then(Value::as_str))
            {
                out.push((t.to_owned(), id));
            }
            for v in map.values() {
                collect_refs(v, out, false);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out, false)),
        _ => {}
    }
}
