//! The HTTP API of `tam serve` (axum on its own thread and runtime; the store, tasks and the
//! webhook handler are blocking code, so each request runs them on a blocking task).
//!
//! A bearer token belongs to one tenant (`[api.tokens]`) and sees only that tenant: another
//! tenant's account is answered 404, exactly like one that does not exist. Errors are JSON
//! `{"error": "..."}`; bodies are size-limited; heartbeats are rate-limited per tenant. `/mcp`
//! serves the MCP tools to the same tokens.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tam_agent::tasks::{Task, TaskError};
use tam_core::{AccountId, TenantId, Timestamp};
use tam_store::{Pool, Pooled};

use crate::clients::Clients;
use crate::config::{Config, EnvVarName};
use crate::home::Home;

mod a2a;
pub mod dashboard;
mod mcp;
mod metrics;
pub(crate) mod openapi;
mod pages;
mod v1;
mod webhooks;

use a2a::*;
use metrics::*;
use openapi::*;
use pages::*;
use v1::*;
use webhooks::*;

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

    /// The answer to a request without a valid token where a client library is the caller:
    /// the error, with the scheme to authenticate by (`WWW-Authenticate: Bearer`).
    fn challenge(self) -> Response {
        let mut response = self.into_response();
        response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        response
    }
}

/// Every error's body.
#[derive(serde::Serialize)]
struct ErrorBody {
    error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(ErrorBody { error: self.message })).into_response()
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
    /// Each tenant's heartbeat budget: in the store when replicas share it, so the limit is
    /// the deployment's, not each replica's.
    heartbeats: Arc<dyn tam_core::rate::Limits>,
    /// The process's network clients, which every task's channels share.
    clients: Arc<Clients>,
    /// Connections to the store, kept open between requests.
    stores: Pool,
    /// Which tenant opened each MCP session.
    mcp_sessions: mcp::Sessions,
    /// The API's address as clients reach it, for the agent card.
    base_url: String,
    /// Held while the dashboard replays a backtest.
    backtests: std::sync::Mutex<()>,
    /// Proves the feedback links alerts carry.
    feedback: Option<tam_core::feedback::LinkMaker>,
}

impl ApiState {
    /// A connection of this request's own: a slow request (a task writing drafts, a webhook
    /// fetching its issue from Jira) never holds up another; SQLite serialises the writes.
    fn store(&self) -> Result<Pooled, ApiError> {
        self.stores.get().map_err(ApiError::internal)
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
        let rate = tam_core::rate::Rate::new(self.config.api.heartbeats_per_second, self.config.api.heartbeat_burst);
        self.heartbeats.try_take(&format!("heartbeats:{tenant}"), rate)
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
    let schema_version = blocking(&s, |s| Ok(s.store()?.schema_version()?)).await?;
    Ok(axum::Json(serde_json::to_value(Healthz { status: "ok", schema_version }).map_err(ApiError::internal)?))
}

/// `GET /healthz`: the store answers, at this schema version.
#[derive(serde::Serialize)]
struct Healthz {
    status: &'static str,
    schema_version: i64,
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "this endpoint does not take that method (see /v1/openapi.json)")
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (see /v1/openapi.json)")
}

/// The tokens of `[api.tokens]`, read from their variables; a tenant whose variable is unset
/// has no access (said once in the log).
fn tokens(config: &Config) -> Vec<(String, TenantId)> {
    let mut out = Vec::new();
    for (tenant, var) in &config.api.tokens {
        let Ok(tenant) = TenantId::parse("[api.tokens]", tenant) else { continue };
        match var.value().filter(|t| t.len() >= 16) {
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
    let mcp = Router::new()
        .route_service("/mcp", mcp::service(&state))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&state), mcp::gate));
    Router::new()
        .route("/", get(dashboard_home))
        .route("/accounts/{id}", get(dashboard_account))
        .route("/accounts/{id}/draft", get(dashboard_draft))
        .route("/jobs", get(dashboard_jobs))
        .route("/backtest", get(dashboard_backtest))
        .route("/reports", get(dashboard_reports))
        .route("/feedback/{token}", get(feedback_page))
        .route("/feedback", post(feedback_vote))
        .route("/sign-in", post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/.well-known/agent-card.json", get(agent_card))
        .route("/a2a", post(a2a_message))
        .route("/v1/accounts", get(accounts))
        .route("/v1/accounts/{id}", get(account))
        .route("/v1/heartbeats", post(heartbeats))
        .route("/v1/tasks", post(run_task))
        .route("/v1/webhooks/jira", post(jira_webhook))
        .route("/v1/webhooks/release", post(release_webhook))
        .merge(mcp)
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
    let feedback = clients.feedback().cloned();
    let state = Arc::new(ApiState {
        home: home.clone(),
        config: config.clone(),
        tokens: tokens(config),
        metrics_token: config.api.metrics_token_env.as_ref().and_then(EnvVarName::value).filter(|t| t.len() >= 16),
        heartbeats: tam_connectors::limits::for_store(&home.store_location(config)),
        clients,
        // As many as requests run at once: the runtime's blocking work, a handful at a time.
        stores: Pool::new(home.store_location(config), 8),
        mcp_sessions: mcp::Sessions::default(),
        base_url: crate::a2a::base_url(config.api.public_url.as_deref(), &addr.to_string()),
        backtests: std::sync::Mutex::new(()),
        feedback,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let handle = std::thread::spawn(move || {
        // The state's last reference is dropped here, after the runtime: its PostgreSQL
        // connections close by blocking on their client's own runtime, which a thread of this
        // one may not do.
        let keep = Arc::clone(&state);
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
        drop(runtime);
        drop(keep);
    });
    Ok((handle, addr))
}
