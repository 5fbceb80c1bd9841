//! The tenant's v1 routes: accounts, one account, heartbeats and tasks.

use super::*;

pub(super) async fn accounts(State(s): State<Arc<ApiState>>, headers: HeaderMap) -> Answer {
    let tenant = s.tenant(&headers)?;
    let accounts =
        blocking(&s, move |s| Ok(s.store()?.account_health(&tenant, &tam_store::HealthFilter::default())?)).await?;
    Ok(axum::Json(serde_json::to_value(AccountList { accounts }).map_err(ApiError::internal)?))
}

/// `GET /v1/accounts`: the tenant's accounts, worst first.
#[derive(serde::Serialize)]
pub(super) struct AccountList {
    pub(super) accounts: Vec<tam_store::AccountHealth>,
}

pub(super) async fn account(
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
        let profile = tam_agent::profile::document(&store, &tenant, &account)?;
        Ok(Some(AccountDetail {
            health: history.first().map(|h| Health {
                as_of: h.as_of,
                score: h.score,
                status: h.status,
                trend: h.trend,
                deductions: h.deductions.clone(),
            }),
            history: history.iter().map(|h| Point { as_of: h.as_of, score: h.score, status: h.status }).collect(),
            account_id: account,
            name: row.name,
            rep_name: row.rep_name,
            rep_email: row.rep_email,
            last_heartbeat: row.last_heartbeat,
            open_tickets: row.open_tickets,
            profile,
        }))
    })
    .await?;
    let detail = detail.ok_or_else(not_found)?;
    Ok(axum::Json(serde_json::to_value(detail).map_err(ApiError::internal)?))
}

/// `GET /v1/accounts/{id}`: the account, its health now with the breakdown, its score history
/// (newest first, 60 scans at most) and its relationship profile.
#[derive(serde::Serialize)]
pub(super) struct AccountDetail {
    pub(super) account_id: AccountId,
    pub(super) name: String,
    pub(super) rep_name: String,
    pub(super) rep_email: tam_core::Email,
    pub(super) last_heartbeat: Option<Timestamp>,
    pub(super) open_tickets: u64,
    pub(super) health: Option<Health>,
    pub(super) history: Vec<Point>,
    pub(super) profile: Option<tam_core::comms::ProfileDocument>,
}

/// The latest scan's health of an account.
#[derive(serde::Serialize)]
pub(super) struct Health {
    pub(super) as_of: Timestamp,
    pub(super) score: u8,
    pub(super) status: tam_core::HealthStatus,
    pub(super) trend: tam_core::Trend,
    pub(super) deductions: Vec<tam_core::scoring::Deduction>,
}

/// One scan in an account's history.
#[derive(serde::Serialize)]
pub(super) struct Point {
    pub(super) as_of: Timestamp,
    pub(super) score: u8,
    pub(super) status: tam_core::HealthStatus,
}

/// `POST /v1/heartbeats`: how many were stored, and each one refused, named. A post none of
/// whose heartbeats was stored answers 400 with `error` beside these.
#[derive(serde::Serialize)]
pub(super) struct HeartbeatsTaken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) error: Option<String>,
    pub(super) accepted: u64,
    pub(super) rejected: Vec<String>,
}

pub(super) async fn heartbeats(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer<Response> {
    let body = read(body)?;
    let tenant = s.tenant(&headers)?;
    // The budget may be the store's (replicas share it): a database call, off the event loop.
    let asking = tenant.clone();
    let allowed = blocking(&s, move |s| Ok(s.heartbeat_allowed(&asking))).await?;
    if let Err(wait) = allowed {
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
    let mut heartbeats = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(heartbeat) = item else {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "body: every heartbeat is an object"));
        };
        heartbeats.push(heartbeat);
    }
    let report = blocking(&s, move |s| {
        let mut store = s.store()?;
        tam_app::heartbeats::take(&mut store, &s.config.rules, &tenant, heartbeats, Timestamp::now())
            .map_err(ApiError::internal)
    })
    .await?;
    let rejected: Vec<String> =
        report.rejected.iter().map(|r| r.to_string().replacen("heartbeats:", "heartbeat ", 1)).collect();
    if report.heartbeats == 0 {
        // Every error answers {"error"}; the per-heartbeat reasons come inside it.
        let error = format!("no heartbeat was accepted: {}", rejected.first().map_or("", String::as_str));
        let body = HeartbeatsTaken { error: Some(error), accepted: 0, rejected };
        return Ok((StatusCode::BAD_REQUEST, axum::Json(body)).into_response());
    }
    let body = HeartbeatsTaken { error: None, accepted: report.heartbeats, rejected };
    Ok((StatusCode::ACCEPTED, axum::Json(body)).into_response())
}

/// Runs `task` with this home's channels (blocking).
pub(super) fn run(s: &ApiState, task: Task) -> Result<Value, ApiError> {
    let mut channels = crate::clients::with(&s.home, &s.config, &s.clients).map_err(ApiError::internal)?;
    let mut store = s.store()?;
    channels.run_task(&mut store, &s.config.rules, task).map_err(refused)
}

/// A task that cannot start is the caller's to fix (400); a store that fails is ours.
fn refused(e: TaskError) -> ApiError {
    match e {
        TaskError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
        other => ApiError::internal(other),
    }
}

pub(super) async fn run_task(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let tenant = s.tenant(&headers)?;
    let mut task: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("body: not JSON ({e})")))?;
    let Some(object) = task.as_object_mut() else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "a task is a JSON object with a \"type\""));
    };
    tam_agent::tasks::for_tenant(object, &tenant)
        .map_err(|other| ApiError::new(StatusCode::NOT_FOUND, format!("no tenant {other:?}")))?;
    let task = Task::parse(&task).map_err(refused)?;
    let result = blocking(&s, move |s| run(s, task)).await?;
    Ok(axum::Json(result))
}
