//! Signed webhooks: Jira issues (re-score one account) and releases (release notes drafted once per version).

use super::*;
use crate::config::EnvVarName;
use tam_app::webhook::{Delivery, JiraHook, WebhookError, handle_jira};

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

/// A release to announce: `{"tenant_id", "release_info": {version, date, changes[]},
/// "account_id"?}`, signed with the tenant's release secret. Each version drafts once.
pub(super) async fn release_webhook(State(s): State<Arc<ApiState>>, headers: HeaderMap, body: Body) -> Answer {
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
    let secret = s.config.api.release_secrets.get(&tenant).and_then(EnvVarName::value);
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
