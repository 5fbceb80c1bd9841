//! The A2A routes: the agent card, and `SendMessage` run as a task of the token's tenant.

use super::*;
use crate::a2a;

pub(super) async fn agent_card(State(s): State<Arc<ApiState>>) -> axum::Json<Value> {
    axum::Json(a2a::card(&s.base_url))
}

/// `POST /a2a`: JSON-RPC. A missing or unknown token is refused before JSON-RPC (401, with
/// the scheme to use); everything after is answered 200, an error in the JSON-RPC body, as
/// the SDKs expect.
pub(super) async fn a2a_message(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer<Response> {
    let tenant = match s.tenant(&headers) {
        Ok(t) => t,
        Err(e) => return Ok(e.challenge()),
    };
    let body = read(body)?;
    let version = headers.get("a2a-version").and_then(|v| v.to_str().ok()).map(str::to_owned);
    // A request without the header is taken as 1.0, the only version spoken here.
    let answer = match (a2a::read(&body), version) {
        (Err((id, e)), _) => a2a::error(id, &e),
        (Ok(request), Some(v)) if v.trim() != a2a::PROTOCOL_VERSION => {
            a2a::error(request.id, &a2a::RpcError::version(&v))
        }
        (Ok(request), _) => run_message(&s, tenant, request).await,
    };
    Ok(axum::Json(answer).into_response())
}

async fn run_message(s: &Arc<ApiState>, tenant: TenantId, request: a2a::Request) -> Value {
    let a2a::Request { id, mut task, context_id } = request;
    if let Err(other) = tam_agent::tasks::for_tenant(&mut task, &tenant) {
        let e = a2a::RpcError::invalid_params(format!(
            "task.tenant_id: this token is for tenant {tenant:?}, not {other:?}"
        ));
        return a2a::error(id, &e);
    }
    let task_id = task.get("task_id").and_then(Value::as_str).map_or_else(fresh_id, str::to_owned);
    let task = match Task::parse(&Value::Object(task)) {
        Ok(t) => t,
        Err(e) => return a2a::error(id, &a2a::RpcError::invalid_params(e.to_string())),
    };
    match blocking(s, move |s| run(s, task)).await {
        Ok(result) => {
            let context = context_id.unwrap_or_else(|| task_id.clone());
            a2a::completed(id, &task_id, &context, &result, &Timestamp::now().to_string())
        }
        Err(e) if e.status == StatusCode::BAD_REQUEST => a2a::error(id, &a2a::RpcError::invalid_params(e.message)),
        Err(e) => a2a::error(id, &a2a::RpcError::internal(e.message)),
    }
}

/// A task id for a message whose task named none: unique in this process and across replicas.
fn fresh_id() -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("a2a-{}-{}-{n}", Timestamp::now().as_nanosecond(), std::process::id())
}
