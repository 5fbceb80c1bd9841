//! Signed webhooks: Jira issues (re-score one account) and releases (release notes drafted once per version).

use super::*;
use crate::config::EnvVarName;
use tam_app::webhook::{Delivery, JiraHook, ReleaseRefused, WebhookError, handle_jira, release_task};

pub(super) async fn jira_webhook(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let received = Instant::now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (signature, delivery) = (header("x-hub-signature"), header("x-atlassian-webhook-identifier"));
    let handled = blocking(&s, move |s| {
        let secret = crate::clients::sources::jira_secret(&s.config)
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")))?;
        let mapping = s.config.jira.mapping();
        let fetch = |key: &str| -> Result<Value> {
            let jira = s.clients.jira(&s.config)?;
            Ok(jira.issue(key, &mapping.fields())?)
        };
        let hook = JiraHook {
            secret: &secret,
            secret_env: s.config.jira.webhook_secret_env.as_str(),
            tenant: s.config.jira.tenant.as_deref(),
            mapping: &mapping,
        };
        let mut store = s.store()?;
        let delivery = Delivery { body: &body, signature: signature.as_deref(), id: delivery.as_deref(), received };
        handle_jira(&mut store, &s.config.rules, hook, delivery, &fetch).map_err(|e| match e {
            WebhookError::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            WebhookError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            WebhookError::Failed(e) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        })
    })
    .await?;
    Ok(axum::Json(serde_json::to_value(handled).map_err(ApiError::internal)?))
}

/// A release to announce ([`tam_app::webhook::release_task`]). Each version drafts once.
pub(super) async fn release_webhook(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
    let body = read(body)?;
    let signature = headers.get("x-hub-signature").and_then(|v| v.to_str().ok());
    let secret_of = |tenant: &str| s.config.api.release_secrets.get(tenant).and_then(EnvVarName::value);
    let task = release_task(&body, signature, secret_of).map_err(|e| match e {
        ReleaseRefused::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
        refused @ ReleaseRefused::Unauthorized => ApiError::new(StatusCode::UNAUTHORIZED, refused.to_string()),
    })?;
    let result = blocking(&s, move |s| run(s, task)).await?;
    Ok(axum::Json(result))
}
