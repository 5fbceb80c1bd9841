//! The dashboard's pages and its sign-in form (the token kept in a cookie, never in a URL).

use super::*;

/// The tenant of a browser: `?token=` (then kept in a cookie), the cookie, or a bearer header.
pub(super) fn viewer(
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

pub(super) fn page(status: StatusCode, cookie: Option<String>, html: String) -> Response {
    let mut response = (status, axum::response::Html(html)).into_response();
    if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

/// A page of the signed-in tenant: `render` runs on a blocking task and answers the page, or
/// `None` for something the tenant does not have (`missing` says what). A browser without a
/// known token gets the sign-in form.
async fn tenant_page(
    s: &Arc<ApiState>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    missing: String,
    render: impl FnOnce(&ApiState, TenantId) -> Result<Option<String>, ApiError> + Send + 'static,
) -> Response {
    let (tenant, cookie) = match viewer(s, headers, query) {
        Ok(v) => v,
        Err(why) => return page(StatusCode::UNAUTHORIZED, None, crate::http::dashboard::sign_in(&why)),
    };
    match blocking(s, move |s| render(s, tenant)).await {
        Ok(Some(html)) => page(StatusCode::OK, cookie, html),
        Ok(None) => page(StatusCode::NOT_FOUND, cookie, crate::http::dashboard::sign_in(&missing)),
        Err(e) => e.into_response(),
    }
}

/// `GET /`: Today. `?rep=` narrows the worklist to one rep's accounts: the link a digest gives
/// its reader.
pub(super) async fn dashboard_home(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = crate::http::dashboard::TodayQuery::from_params(&q);
    // The filter form sends every field, set or not: the view's own URL names only those set.
    // (Not while `?token=` signs a browser in: the redirect would drop it.)
    if !q.contains_key("token") && q.values().any(|v| v.trim().is_empty()) {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, query.link(query.page))]).into_response();
    }
    tenant_page(&s, &headers, &q, String::new(), move |s, tenant| {
        let budget = s.config.rules.scan(Some(&tenant)).escalation.alert_budget_per_rep;
        crate::http::dashboard::today(&*s.store()?, &tenant, budget, &query).map(Some).map_err(ApiError::internal)
    })
    .await
}

/// `POST /sign-out`: forgets the browser's token and shows the sign-in form.
pub(super) async fn sign_out() -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(cookie) = "tam_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0".parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// The dashboard's sign-in form.
#[derive(serde::Deserialize)]
pub(super) struct SignIn {
    /// A missing field is an empty token, which no server knows.
    #[serde(default)]
    token: String,
}

/// `POST /sign-in` from the dashboard's form (`token=…`, form-encoded): keeps the token in
/// the cookie and goes to the dashboard, so the token never sits in a URL.
pub(super) async fn sign_in(
    State(s): State<Arc<ApiState>>,
    form: Result<axum::Form<SignIn>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(SignIn { token })) = form else {
        return page(StatusCode::BAD_REQUEST, None, crate::http::dashboard::sign_in("Unreadable form."));
    };
    let known = s.tokens.iter().any(|(t, _)| same(t.as_bytes(), token.as_bytes()));
    if !known {
        return page(
            StatusCode::UNAUTHORIZED,
            None,
            crate::http::dashboard::sign_in("That token is not one of this server's."),
        );
    }
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Ok(cookie) = format!("tam_token={token}; HttpOnly; SameSite=Strict; Path=/").parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /accounts/{id}`: the account's story.
pub(super) async fn dashboard_account(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let missing = format!("No account {id:?}.");
    tenant_page(&s, &headers, &q, missing, move |s, tenant| {
        let Ok(account) = AccountId::parse("account", &id) else { return Ok(None) };
        let escalation = &s.config.rules.scan(Some(&tenant)).escalation;
        let pages = crate::http::dashboard::AccountPages { escalation, tickets: &s.config.tickets };
        crate::http::dashboard::account(&*s.store()?, &tenant, &account, &pages, Timestamp::now())
            .map_err(ApiError::internal)
    })
    .await
}

/// `GET /accounts/{id}/draft?key=…`: one of the account's drafts, readable.
pub(super) async fn dashboard_draft(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let key = q.get("key").cloned();
    tenant_page(&s, &headers, &q, "No such draft of this account.".to_owned(), move |s, tenant| {
        let (Ok(account), Some(key)) = (AccountId::parse("account", &id), key) else { return Ok(None) };
        crate::http::dashboard::draft(&*s.store()?, &tenant, &account, &key).map_err(ApiError::internal)
    })
    .await
}

/// `GET /jobs`: the scheduler's job history.
pub(super) async fn dashboard_jobs(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    tenant_page(&s, &headers, &q, String::new(), move |s, tenant| {
        crate::http::dashboard::jobs(&*s.store()?, &tenant).map(Some).map_err(ApiError::internal)
    })
    .await
}

/// A feedback vote, as the confirmation page's form posts it.
#[derive(serde::Deserialize)]
pub(super) struct FeedbackForm {
    token: String,
}

/// A feedback page: never cached, never stored by a proxy (its URL is a signed ballot).
fn feedback_answer(result: Result<(u16, String), ApiError>) -> Response {
    match result {
        Ok((status, html)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = page(status, None, html);
            response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /feedback/{token}`: what an alert's "useful" / "not useful" link opens, without
/// sign-in. It asks to confirm and records nothing: mail scanners follow links.
pub(super) async fn feedback_page(State(s): State<Arc<ApiState>>, Path(token): Path<String>) -> Response {
    let shown = blocking(&s, move |s| {
        crate::http::dashboard::feedback(&mut *s.store()?, s.feedback.as_ref(), &token, false, Timestamp::now())
            .map_err(ApiError::internal)
    })
    .await;
    feedback_answer(shown)
}

/// `POST /feedback`: the confirmation page's form; records the vote once.
pub(super) async fn feedback_vote(
    State(s): State<Arc<ApiState>>,
    form: Result<axum::Form<FeedbackForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(axum::Form(FeedbackForm { token })) = form else {
        return feedback_answer(Ok((400, crate::http::dashboard::feedback_unreadable())));
    };
    let recorded = blocking(&s, move |s| {
        crate::http::dashboard::feedback(&mut *s.store()?, s.feedback.as_ref(), &token, true, Timestamp::now())
            .map_err(ApiError::internal)
    })
    .await;
    feedback_answer(recorded)
}

/// `GET /reports`: what reps made of the drafts.
pub(super) async fn dashboard_reports(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    tenant_page(&s, &headers, &q, String::new(), move |s, tenant| {
        crate::http::dashboard::reports(&*s.store()?, &tenant, Timestamp::now()).map(Some).map_err(ApiError::internal)
    })
    .await
}

/// `GET /backtest`: the tenant's rules replayed over its history (the form, then the report).
pub(super) async fn dashboard_backtest(
    State(s): State<Arc<ApiState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let query = crate::http::dashboard::BacktestQuery {
        from: q.get("from").cloned(),
        to: q.get("to").cloned(),
        horizon: q.get("horizon").cloned(),
    };
    tenant_page(&s, &headers, &q, String::new(), move |s, tenant| {
        let rules = s.config.rules.scan(Some(&tenant));
        let zone = s.config.rules.zone(&tenant);
        let own = s.config.rules.has_own(&tenant).then_some(&tenant);
        // A replay takes every core for a moment: one at a time, so scans and requests go on.
        let Ok(_turn) = s.backtests.try_lock() else {
            return Ok(Some(crate::http::dashboard::busy("A backtest is running; try again in a moment.")));
        };
        crate::http::dashboard::backtest(&*s.store()?, &tenant, rules, zone, &query, own, Timestamp::now())
            .map(Some)
            .map_err(ApiError::internal)
    })
    .await
}
