//! `/mcp`: the MCP server over Streamable HTTP. A gate in front of the SDK's service admits a
//! request only with a tenant's bearer token, hands the tenant to the tools in the request's
//! extensions, and binds each session to the tenant whose token opened it: another tenant's
//! token presenting that session id is answered as if the session did not exist.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::*;
use crate::mcp;

/// Sessions whose owner is remembered at most; beyond, the least recently used is forgotten
/// (its client is answered 404 and, as the protocol has it, opens a new session).
const SESSIONS_KEPT: usize = 10_000;

/// How long the SDK keeps an idle session: an owner remembered longer guards nothing.
const SESSION_IDLE: Duration =
    rmcp::transport::streamable_http_server::session::local::SessionConfig::DEFAULT_KEEP_ALIVE;

/// Which tenant opened each session, and when it was last used.
#[derive(Default)]
pub(super) struct Sessions(std::sync::Mutex<HashMap<String, (TenantId, Instant)>>);

impl Sessions {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, (TenantId, Instant)>> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant that opened session `id`, now used again.
    fn owner(&self, id: &str) -> Option<TenantId> {
        let mut sessions = self.sessions();
        let (tenant, used) = sessions.get_mut(id)?;
        *used = Instant::now();
        Some(tenant.clone())
    }

    fn bind(&self, id: &str, tenant: &TenantId) {
        let mut sessions = self.sessions();
        if sessions.len() >= SESSIONS_KEPT {
            sessions.retain(|_, (_, used)| used.elapsed() < SESSION_IDLE);
        }
        if sessions.len() >= SESSIONS_KEPT
            && let Some(oldest) = sessions.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.entry(id.to_owned()).or_insert_with(|| (tenant.clone(), Instant::now()));
    }

    fn end(&self, id: &str) {
        self.sessions().remove(id);
    }
}

const SESSION_HEADER: &str = "mcp-session-id";

/// The SDK's service, serving sessions whose tools find their tenant in each request.
pub(super) fn service(state: &Arc<ApiState>) -> StreamableHttpService<mcp::Server, LocalSessionManager> {
    let app = Arc::new(mcp::App::new(state.home.clone(), state.config.clone(), Arc::clone(&state.clients)));
    // Every request is authorised by its token, so the Host check (against DNS rebinding of an
    // unauthenticated local server) would only refuse a deployment's own host name.
    let config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .with_sse_keep_alive(Some(Duration::from_secs(15)))
        .with_max_request_body_bytes(state.config.api.max_body_bytes);
    StreamableHttpService::new(
        move || Ok(mcp::Server::per_request(Arc::clone(&app))),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// Admits a request with a tenant's token and a session of that tenant (or none yet).
pub(super) async fn gate(State(s): State<Arc<ApiState>>, mut request: Request, next: Next) -> Response {
    let tenant = match s.tenant(request.headers()) {
        Ok(t) => t,
        Err(e) => return e.challenge(),
    };
    let session = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    // A session this replica did not see opened (or has forgotten) is no one's to use.
    if let Some(id) = &session
        && s.mcp_sessions.owner(id).as_ref() != Some(&tenant)
    {
        return ApiError::new(StatusCode::NOT_FOUND, "no such MCP session for this token; initialize a new one")
            .into_response();
    }
    let closing = request.method() == axum::http::Method::DELETE;
    request.extensions_mut().insert(tenant.clone());
    let response = next.run(request).await;
    match (&session, response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok())) {
        (Some(id), _) if closing && response.status().is_success() => s.mcp_sessions.end(id),
        (None, Some(opened)) => s.mcp_sessions.bind(opened, &tenant),
        _ => {}
    }
    response
}
