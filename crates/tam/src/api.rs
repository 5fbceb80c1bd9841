//! The HTTP API of `tam serve` (axum on its own thread and runtime; the store, tasks and the
//! webhook handler are blocking code, so each request runs them on a blocking task).
//!
//! A bearer token belongs to one tenant (`[api.tokens]`) and sees only that tenant: another
//! tenant's account is answered 404, exactly like one that does not exist. Errors are JSON
//! `{"error": "..."}`; bodies are size-limited; heartbeats are rate-limited per tenant.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tam_agent::import::Importer;
use tam_agent::tasks::TaskError;
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::Store;

use crate::channels::{Clients, HomeChannels};
use crate::config::Config;
use crate::home::Home;

/// An error answer: a status and a message that says what to fix.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({"error": self.message}))).into_response()
    }
}

impl From<tam_store::StoreError> for ApiError {
    fn from(e: tam_store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

type Answer<T = axum::Json<Value>> = Result<T, ApiError>;

/// A request body, or why it could not be read (too large, cut short) as a JSON error.
type Body = Result<Bytes, axum::extract::rejection::BytesRejection>;

fn read(body: Body) -> Result<Bytes, ApiError> {
    body.map_err(|r| ApiError::new(r.status(), format!("body: {}", r.body_text())))
}

struct ApiState {
    home: Home,
    config: Config,
    tokens: Vec<(String, TenantId)>,
    /// Sees every tenant's `/metrics` (a scraper's token); tenants' tokens see their own.
    metrics_token: Option<String>,
    heartbeats: Mutex<HashMap<TenantId, tam_core::rate::TokenBucket>>,
    /// The heartbeat buckets' time is measured from here.
    started: Instant,
    /// The process's network clients, which every task's channels share.
    clients: Arc<Clients>,
}

impl ApiState {
    /// A connection of this request's own: a slow request (a task writing drafts, a webhook
    /// fetching its issue from Jira) never holds up another; SQLite serialises the writes.
    fn store(&self) -> Result<Store, ApiError> {
        Store::open(&self.home.db_path()).map_err(ApiError::internal)
    }

    /// The tenant whose token the request carries.
    fn tenant(&self, headers: &HeaderMap) -> Result<TenantId, ApiError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(StatusCode::UNAUTHORIZED, "send Authorization: Bearer <the tenant's token>")
            })?;
        self.tokens
            .iter()
            .find(|(token, _)| same(token.as_bytes(), given.trim().as_bytes()))
            .map(|(_, tenant)| tenant.clone())
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unknown token"))
    }

    /// Takes one heartbeat post from `tenant`'s budget; the wait until the next when empty.
    fn heartbeat_allowed(&self, tenant: &TenantId) -> Result<(), Duration> {
        let (rate, burst) = (self.config.api.heartbeats_per_second, self.config.api.heartbeat_burst);
        let mut buckets = self.heartbeats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = self.started.elapsed();
        let bucket = buckets
            .entry(tenant.clone())
            .or_insert_with(|| tam_core::rate::TokenBucket::new(f64::from(burst), burst, rate, now));
        bucket.try_take(now)
    }
}

/// Compares two secrets without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Runs blocking work (the store, tasks) off the async workers.
async fn blocking<T: Send + 'static>(
    state: &Arc<ApiState>,
    f: impl FnOnce(&ApiState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&state)).await.map_err(ApiError::internal)?
}

async fn healthz(State(s): State<Arc<ApiState>>) -> Answer {
    let version = blocking(&s, |s| Ok(s.store()?.schema_version()?)).await?;
    Ok(axum::Json(json!({"status": "ok", "schema_version": version})))
}

async fn metrics(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Answer<Response> {
    // The scraper's token sees every tenant; a tenant's token sees its own figures only.
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    let only = match (&s.metrics_token, bearer) {
        (Some(scraper), Some(given)) if same(scraper.as_bytes(), given.trim().as_bytes()) => None,
        _ => Some(s.tenant(&headers)?),
    };
    let text = blocking(&s, move |s| {
        let store = s.store()?;
        let mut all = Vec::new();
        for tenant in store.tenants()? {
            if only.as_ref().is_some_and(|o| *o != tenant.id) {
                continue;
            }
            let m = store.tenant_metrics(&tenant.id)?;
            all.push((tenant.id, m));
        }
        // The text format wants each family's samples together, under its HELP and TYPE.
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<String>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for sample in samples {
                out.push_str(&format!("{name}{sample}\n"));
            }
        };
        family(
            "tam_accounts",
            "gauge",
            "Accounts by latest health status.",
            all.iter()
                .flat_map(|(t, m)| {
                    m.accounts.iter().map(move |(status, n)| format!("{{tenant=\"{t}\",status=\"{status}\"}} {n}"))
                })
                .collect(),
        );
        family(
            "tam_scans_total",
            "counter",
            "Scans stored.",
            all.iter().map(|(t, m)| format!("{{tenant=\"{t}\"}} {}", m.scans)).collect(),
        );
        family(
            "tam_scan_duration_seconds",
            "gauge",
            "How long the latest scheduled scan took.",
            all.iter()
                .filter_map(|(t, m)| m.last_scan_seconds.map(|secs| format!("{{tenant=\"{t}\"}} {secs:.3}")))
                .collect(),
        );
        family(
            "tam_outbox",
            "gauge",
            "Outbox rows by channel and state.",
            all.iter()
                .flat_map(|(t, m)| {
                    m.outbox.iter().map(move |(effect, state, n)| {
                        format!("{{tenant=\"{t}\",channel=\"{effect}\",state=\"{state}\"}} {n}")
                    })
                })
                .collect(),
        );
        family(
            "tam_llm_tokens_total",
            "counter",
            "Model tokens spent.",
            all.iter()
                .flat_map(|(t, m)| {
                    [("input", m.tokens.0), ("output", m.tokens.1)]
                        .map(|(direction, n)| format!("{{tenant=\"{t}\",direction=\"{direction}\"}} {n}"))
                })
                .collect(),
        );
        Ok(out)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn accounts(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Answer {
    let tenant = s.tenant(&headers)?;
    let list = blocking(&s, move |s| Ok(s.store()?.account_health(&tenant)?)).await?;
    Ok(axum::Json(json!({"accounts": list})))
}

async fn account(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Answer {
    let tenant = s.tenant(&headers)?;
    let Path(id) = id.map_err(|r| ApiError::new(r.status(), r.body_text()))?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no account {id:?}"));
    let Ok(account) = AccountId::parse("account", &id) else { return Err(not_found()) };
    let detail = blocking(&s, move |s| {
        let store = s.store()?;
        let Some(row) = store.account(&tenant, &account)? else { return Ok(None) };
        let history = store.snapshots(&tenant, &account, 60)?;
        let latest = history.first().map(|h| {
            json!({"as_of": h.as_of, "score": h.score, "status": h.status, "trend": h.trend, "deductions": h.deductions})
        });
        let profile = tam_agent::profile::document(&store, &tenant, &account)?;
        Ok(Some(json!({
            "account_id": account, "name": row.name, "rep_name": row.rep_name, "rep_email": row.rep_email,
            "last_heartbeat": row.last_heartbeat, "open_tickets": row.open_tickets,
            "health": latest,
            "history": history.iter().map(|h| json!({"as_of": h.as_of, "score": h.score, "status": h.status})).collect::<Vec<_>>(),
            "profile": profile,
        })))
    })
    .await?;
    detail.map(axum::Json).ok_or_else(not_found)
}

async fn heartbeats(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer<Response> {
    let body = read(body)?;
    let tenant = s.tenant(&headers)?;
    if let Err(wait) = s.heartbeat_allowed(&tenant) {
        let secs = wait.as_secs().max(1).to_string();
        let error = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many heartbeat posts for this tenant; slow down");
        return Ok(([(header::RETRY_AFTER, secs)], error).into_response());
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: not JSON ({e})")))?;
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "body: a heartbeat object or a list of them")),
    };
    if items.is_empty() || items.len() > 1_000 {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "body: 1 to 1,000 heartbeats per post"));
    }
    let mut records = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(mut record) = item else {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "body: every heartbeat is an object"));
        };
        // The token decides the tenant; a body cannot speak for another.
        record.insert("record".into(), json!("heartbeat"));
        record.insert("tenant_id".into(), json!(tenant));
        record.entry("at").or_insert_with(|| json!(Timestamp::now()));
        records.push(Value::Object(record));
    }
    let report = blocking(&s, move |s| {
        let mut store = s.store()?;
        let mut importer = Importer::new(&mut store, s.config.import_options(Timestamp::now()));
        importer.push("heartbeats", records).map_err(ApiError::internal)?;
        importer.finish().map_err(ApiError::internal)
    })
    .await?;
    let rejected: Vec<String> =
        report.rejected.iter().map(|r| r.to_string().replacen("heartbeats:", "heartbeat ", 1)).collect();
    if report.heartbeats == 0 {
        // Every error answers {"error"}; the per-heartbeat reasons come inside it.
        let error = format!("no heartbeat was accepted: {}", rejected.first().map_or("", String::as_str));
        let body = json!({"error": error, "accepted": 0, "rejected": rejected});
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    Ok((StatusCode::ACCEPTED, axum::Json(json!({"accepted": report.heartbeats, "rejected": rejected}))).into_response())
}

/// Runs `task` for `tenant` with this home's channels (blocking).
fn task_for(s: &ApiState, tenant: &TenantId, task: &Value) -> Result<Value, ApiError> {
    let mut channels = HomeChannels::with(&s.home, &s.config, &s.clients).map_err(ApiError::internal)?;
    let mut store = s.store()?;
    channels.run_task(&mut store, &s.config, tenant, task).map_err(|e| match e {
        TaskError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
        other => ApiError::internal(other),
    })
}

async fn run_task(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let tenant = s.tenant(&headers)?;
    let mut task: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: not JSON ({e})")))?;
    let Some(object) = task.as_object_mut() else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a task is a JSON object with a \"type\""));
    };
    match object.get("tenant_id").and_then(Value::as_str) {
        Some(t) if t != tenant.as_str() => {
            return Err(ApiError::new(StatusCode::NOT_FOUND, format!("no tenant {t:?}")));
        }
        _ => object.insert("tenant_id".into(), json!(tenant)),
    };
    let result = blocking(&s, move |s| task_for(s, &tenant, &task)).await?;
    Ok(axum::Json(result))
}

async fn jira_webhook(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let received = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (signature, delivery) = (header("x-hub-signature"), header("x-atlassian-webhook-identifier"));
    let handled = blocking(&s, move |s| {
        let secret = crate::webhook::jira_secret(&s.config)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")))?;
        let fetch = |key: &str| -> Result<Value> {
            let jira = crate::sync::jira_client(&s.config)?;
            Ok(jira.issue(key, &s.config.jira.mapping().fields())?)
        };
        let mut store = s.store()?;
        let delivery = crate::webhook::Delivery {
            body: &body,
            signature: signature.as_deref(),
            id: delivery.as_deref(),
            received,
        };
        crate::webhook::handle_jira(&mut store, &s.config, &secret, delivery, &fetch).map_err(|e| match e {
            crate::webhook::WebhookError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            crate::webhook::WebhookError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            crate::webhook::WebhookError::Failed(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        })
    })
    .await?;
    Ok(axum::Json(serde_json::to_value(handled).map_err(ApiError::internal)?))
}

/// The tenant of a browser: `?token=` (then kept in a cookie), the cookie, or a bearer header.
fn viewer(
    s: &ApiState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Result<(TenantId, Option<String>), String> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix("tam_token=").map(str::to_owned));
    let (token, remember) = match (query.get("token"), cookie) {
        (Some(t), _) => (t.clone(), true),
        (None, Some(c)) => (c, false),
        (None, None) => match s.tenant(headers) {
            Ok(tenant) => return Ok((tenant, None)),
            Err(_) => return Err("Open the dashboard with your tenant's API token.".into()),
        },
    };
    let tenant = s
        .tokens
        .iter()
        .find(|(known, _)| same(known.as_bytes(), token.as_bytes()))
        .map(|(_, tenant)| tenant.clone())
        .ok_or("That token is not one of this server's.")?;
    let cookie = remember.then(|| format!("tam_token={token}; HttpOnly; SameSite=Strict; Path=/"));
    Ok((tenant, cookie))
}

fn page(status: StatusCode, cookie: Option<String>, html: String) -> Response {
    let mut response = (status, axum::response::Html(html)).into_response();
    if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

async fn dashboard_home(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (tenant, cookie) = match viewer(&s, &headers, &q) {
        Ok(v) => v,
        Err(why) => return page(StatusCode::UNAUTHORIZED, None, crate::dashboard::sign_in(&why)),
    };
    // `?rep=` narrows the lists to one rep's accounts: the link a digest gives its reader.
    let rep = q.get("rep").map(|r| r.trim().to_lowercase()).filter(|r| !r.is_empty());
    let home =
        move |s: &ApiState| crate::dashboard::home(&s.store()?, &tenant, rep.as_deref()).map_err(ApiError::internal);
    match blocking(&s, home).await {
        Ok(html) => page(StatusCode::OK, cookie, html),
        Err(e) => e.into_response(),
    }
}

/// The dashboard's sign-in form.
#[derive(serde::Deserialize)]
struct SignIn {
    /// A missing field is an empty token, which no server knows.
    #[serde(default)]
    token: String,
}

/// `POST /sign-in` from the dashboard's form (`token=…`, form-encoded): keeps the token in
/// the cookie and goes to the dashboard, so the token never sits in a URL.
async fn sign_in(
    State(s): State<Arc<ApiState>>,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(SignIn { token })) = form else {
        return page(StatusCode::BAD_REQUEST, None, crate::dashboard::sign_in("Unreadable form."));
    };
    let known = s.tokens.iter().any(|(t, _)| same(t.as_bytes(), token.as_bytes()));
    if !known {
        return page(
            StatusCode::UNAUTHORIZED,
            None,
            crate::dashboard::sign_in("That token is not one of this server's."),
        );
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(cookie) = format!("tam_token={token}; HttpOnly; SameSite=Strict; Path=/").parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn dashboard_account(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (tenant, cookie) = match viewer(&s, &headers, &q) {
        Ok(v) => v,
        Err(why) => return page(StatusCode::UNAUTHORIZED, None, crate::dashboard::sign_in(&why)),
    };
    let missing = format!("No account {id:?}.");
    let Ok(account) = AccountId::parse("account", &id) else {
        return page(StatusCode::NOT_FOUND, cookie, crate::dashboard::sign_in(&missing));
    };
    let html = blocking(&s, move |s| {
        crate::dashboard::account(&s.store()?, &tenant, &account, Timestamp::now()).map_err(ApiError::internal)
    })
    .await;
    match html {
        Ok(Some(html)) => page(StatusCode::OK, cookie, html),
        Ok(None) => page(StatusCode::NOT_FOUND, cookie, crate::dashboard::sign_in(&missing)),
        Err(e) => e.into_response(),
    }
}

/// A release to announce: `{"tenant_id", "release_info": {version, date, changes[]},
/// "account_id"?}`, signed with the tenant's release secret. Each version drafts once.
async fn release_webhook(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let release: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: not JSON ({e})")))?;
    let tenant = release["tenant_id"].as_str().unwrap_or_default().to_owned();
    // One answer for an unknown tenant, a tenant without a release secret and a bad signature:
    // an unsigned caller learns nothing about which tenants exist.
    let refused = || {
        ApiError::new(StatusCode::UNAUTHORIZED, "the X-Hub-Signature does not match a release secret of this tenant")
    };
    let secret =
        s.config.api.release_secrets.get(&tenant).and_then(|var| std::env::var(var).ok()).filter(|v| !v.is_empty());
    match (secret, signature) {
        (Some(secret), Some(signature)) if tam_connectors::jira::signature_matches(&secret, &body, &signature) => {}
        _ => return Err(refused()),
    }
    let version = release.pointer("/release_info/version").and_then(Value::as_str).unwrap_or_default();
    let mut task = json!({"type": "release_notes", "tenant_id": tenant, "release_info": release["release_info"],
                          "task_id": format!("release-{version}")});
    if let Some(account) = release.get("account_id") {
        task["account_id"] = account.clone();
    }
    let tenant = TenantId::parse("tenant_id", &tenant).map_err(|_| refused())?;
    let result = blocking(&s, move |s| task_for(s, &tenant, &task)).await?;
    Ok(axum::Json(result))
}

async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document())
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint does not take that method (see /v1/openapi.json)")
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see /v1/openapi.json)")
}

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> Value {
    let error = json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok = |description: &str| json!({"description": description, "content": {"application/json": {}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "tam", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The Technical Account Manager agent: account health, tasks, heartbeats and webhooks. A bearer token sees only its tenant."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Heartbeat": {"type": "object", "required": ["account_id"], "properties": {
                    "account_id": {"type": "string"}, "at": {"type": "string", "format": "date-time"},
                    "api_call_count": {"type": "integer", "minimum": 0}}},
                "Task": {"type": "object", "required": ["type"], "properties": {
                    "type": {"enum": ["health_scan", "escalation_outreach", "release_notes", "roadmap_preview", "health_checkin", "customer_success_review", "update_relationship_profile"]},
                    "account_id": {"type": "string"}, "task_id": {"type": "string"}}, "additionalProperties": true},
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "Liveness and store check", "security": [], "responses": {"200": ok("Healthy")}}},
            "/metrics": {"get": {"summary": "Prometheus text metrics: the token's tenant, or every tenant for the scraper's token ([api] metrics_token_env)", "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}, "401": error}}},
            "/v1/accounts": {"get": {"summary": "The tenant's accounts with their latest health, worst first",
                                      "responses": {"200": ok("Accounts"), "401": error}}},
            "/v1/accounts/{id}": {"get": {"summary": "One account: health breakdown, score history, relationship profile",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": ok("The account"), "401": error, "404": error}}},
            "/v1/heartbeats": {"post": {"summary": "Integration heartbeats (one object or a list of up to 1,000)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Heartbeat"}, {"type": "array", "items": {"$ref": "#/components/schemas/Heartbeat"}, "maxItems": 1000}]}}}},
                "responses": {"202": ok("Accepted, with any rejected ones named"), "400": error, "401": error, "413": error, "429": error}}},
            "/v1/tasks": {"post": {"summary": "Run a task (any of the seven types)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
                "responses": {"200": ok("The task's result"), "400": error, "401": error, "404": error}}},
            "/v1/webhooks/jira": {"post": {"summary": "Jira issue webhooks, signed with X-Hub-Signature", "security": [],
                "responses": {"200": ok("Processed, duplicate or ignored"), "400": error, "401": error, "503": error}}},
            "/v1/webhooks/release": {"post": {"summary": "A release to announce: release notes drafted for each account, once per version. Signed with the tenant's release secret (X-Hub-Signature: sha256=...)", "security": [],
                "responses": {"200": ok("The release notes task's result"), "400": error, "401": error}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": ok("OpenAPI")}}},
        },
    })
}

/// The tokens of `[api.tokens]`, read from their variables; a tenant whose variable is unset
/// has no access (said once in the log).
fn tokens(config: &Config) -> Vec<(String, TenantId)> {
    let mut out = Vec::new();
    for (tenant, var) in &config.api.tokens {
        let Ok(tenant) = TenantId::parse("[api.tokens]", tenant) else { continue };
        match std::env::var(var).ok().filter(|t| t.len() >= 16) {
            Some(token) => out.push((token, tenant)),
            None => crate::log::event(
                "warn",
                "no API token",
                json!({"tenant": tenant, "variable": var, "why": "unset or shorter than 16 characters"}),
            ),
        }
    }
    out
}

fn router(state: Arc<ApiState>) -> Router {
    let limit = state.config.api.max_body_bytes;
    Router::new()
        .route("/", get(dashboard_home))
        .route("/accounts/{id}", get(dashboard_account))
        .route("/sign-in", post(sign_in))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/accounts", get(accounts))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/heartbeats", post(heartbeats))
        .route("/v1/tasks", post(run_task))
        .route("/v1/webhooks/jira", post(jira_webhook))
        .route("/v1/webhooks/release", post(release_webhook))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Starts the API on `listen` in its own thread; it stops when `stop` is set. Returns the
/// address it listens on (port 0 picks one).
pub fn spawn(
    home: &Home,
    config: &Config,
    listen: &str,
    clients: Arc<Clients>,
    stop: Arc<AtomicBool>,
) -> Result<(std::thread::JoinHandle<()>, SocketAddr)> {
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("[api] listen {listen:?}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    home.open().context("the API's store")?;
    let state = Arc::new(ApiState {
        home: home.clone(),
        config: config.clone(),
        tokens: tokens(config),
        metrics_token: config
            .api
            .metrics_token_env
            .as_deref()
            .and_then(|var| std::env::var(var).ok())
            .filter(|t| t.len() >= 16),
        heartbeats: Mutex::new(HashMap::new()),
        started: Instant::now(),
        clients,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let handle = std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(l) => l,
                Err(e) => return crate::log::event("error", "api stopped", json!({"error": e.to_string()})),
            };
            let stopped = async move {
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            if let Err(e) = axum::serve(listener, router(state)).with_graceful_shutdown(stopped).await {
                crate::log::event("error", "api stopped", json!({"error": e.to_string()}));
            }
        });
    });
    Ok((handle, addr))
}
