//! The OpenAPI document of the v1 routes. Each response body is a Rust type (`v1.rs`,
//! `ErrorBody`, `tam_app::webhook::Handled`) described in `crate::schema`, where a test holds
//! the descriptions to the types.

use super::*;

pub(super) async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document())
}

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> Value {
    let error = json!({"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let ok = |description: &str| json!({"description": description, "content": {"application/json": {}}});
    let body = |description: &str, schema: &str| json!({"description": description, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "tam", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The Technical Account Manager agent: account health, tasks, heartbeats and webhooks. A bearer token sees only its tenant."},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": crate::schema::components(),
        },
        "security": [{"bearer": []}],
        "paths": {
            "/healthz": {"get": {"summary": "Liveness and store check", "security": [], "responses": {"200": body("Healthy", "Healthz"), "503": error}}},
            "/metrics": {"get": {"summary": "Prometheus text metrics: the token's tenant, or every tenant for the scraper's token ([api] metrics_token_env)", "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}, "401": error}}},
            "/v1/accounts": {"get": {"summary": "The tenant's accounts with their latest health, worst first",
                                      "responses": {"200": body("Accounts", "AccountList"), "401": error}}},
            "/v1/accounts/{id}": {"get": {"summary": "One account: health breakdown, score history, relationship profile",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {"200": body("The account", "AccountDetail"), "401": error, "404": error}}},
            "/v1/heartbeats": {"post": {"summary": "Integration heartbeats (one object or a list of up to 1,000)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Heartbeat"}, {"type": "array", "items": {"$ref": "#/components/schemas/Heartbeat"}, "maxItems": 1000}]}}}},
                "responses": {"202": body("Accepted, with any rejected ones named", "HeartbeatsTaken"), "400": body("None accepted: why, and each one refused", "HeartbeatsTaken"), "401": error, "413": error, "429": error}}},
            "/v1/tasks": {"post": {"summary": "Run a task (any of the seven types)",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}}},
                "responses": {"200": ok("The task's result"), "400": error, "401": error, "404": error}}},
            "/v1/webhooks/jira": {"post": {"summary": "Jira issue webhooks, signed with X-Hub-Signature", "security": [],
                "responses": {"200": body("Processed, duplicate, stale or ignored", "JiraDelivery"), "400": error, "401": error, "503": error}}},
            "/v1/webhooks/release": {"post": {"summary": "A release to announce: release notes drafted for each account, once per version. Signed with the tenant's release secret (X-Hub-Signature: sha256=...)", "security": [],
                "responses": {"200": ok("The release notes task's result"), "400": error, "401": error}}},
            "/v1/openapi.json": {"get": {"summary": "This document", "security": [], "responses": {"200": ok("OpenAPI")}}},
        },
    })
}

/// Values of every response type, each with the schema it is documented as (checked in
/// `crate::schema`).
#[cfg(test)]
pub(crate) mod samples {
    use super::super::v1::{AccountDetail, AccountList, Health, HeartbeatsTaken, Point};
    use super::super::{ErrorBody, Healthz};
    use super::*;
    use crate::schema::tests::to;
    use tam_app::webhook::Handled;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    /// Values of every response type, each with the schema it is documented as.
    pub(crate) fn schema_samples() -> Vec<(&'static str, Value)> {
        let account = |id: &str| AccountId::parse("id", id).unwrap();
        let deduction: tam_core::scoring::Deduction = serde_json::from_value(json!({
            "rule": "heartbeat_silence", "points": 25,
            "evidence": {"last_heartbeat": "2026-03-20T00:00:00Z", "hours_silent": 100.5, "after_hours": 72}}))
        .unwrap();
        let scanned = tam_store::AccountHealth {
            account_id: "acme".into(),
            name: "Acme".into(),
            rep_email: "ana@v.example".into(),
            score: Some(40),
            status: Some("red".into()),
            trend: Some("declining".into()),
            last_scan: Some(at("2026-03-29T07:00:00Z")),
            escalated: true,
            escalation_reason: Some("below_threshold".into()),
        };
        let unscanned = tam_store::AccountHealth {
            account_id: "beta".into(),
            name: "Beta".into(),
            rep_email: "ana@v.example".into(),
            score: None,
            status: None,
            trend: None,
            last_scan: None,
            escalated: false,
            escalation_reason: None,
        };
        let detail = |health: Option<Health>, profile| AccountDetail {
            account_id: account("acme"),
            name: "Acme".into(),
            rep_name: "Ana".into(),
            rep_email: tam_core::Email::parse("rep", "ana@v.example").unwrap(),
            last_heartbeat: Some(at("2026-03-20T00:00:00Z")),
            open_tickets: 3,
            health,
            history: vec![Point {
                as_of: at("2026-03-29T07:00:00Z"),
                score: 75,
                status: tam_core::HealthStatus::Green,
            }],
            profile,
        };
        let health = Health {
            as_of: at("2026-03-29T07:00:00Z"),
            score: 75,
            status: tam_core::HealthStatus::Green,
            trend: tam_core::Trend::Unknown,
            deductions: vec![deduction],
        };
        let profile = tam_core::comms::ProfileDocument {
            tenant: TenantId::parse("t", "acme-corp").unwrap(),
            account: account("acme"),
            account_name: "Acme".into(),
            sections: vec![],
        };
        let processed = Handled::Processed {
            ticket: "SUP-1".into(),
            account: "acme".into(),
            score: 40,
            status: "red".into(),
            effects: 3,
            fetched: false,
            micros: 1200,
        };
        vec![
            ("AccountList", to(&AccountList { accounts: vec![scanned, unscanned] })),
            ("AccountDetail", to(&detail(Some(health), Some(profile)))),
            ("AccountDetail", to(&detail(None, None))),
            (
                "HeartbeatsTaken",
                to(&HeartbeatsTaken { error: None, accepted: 2, rejected: vec!["heartbeat 3: x".into()] }),
            ),
            ("HeartbeatsTaken", to(&HeartbeatsTaken { error: Some("none".into()), accepted: 0, rejected: vec![] })),
            ("Error", to(&ErrorBody { error: "no account \"x\"".into() })),
            ("Healthz", to(&Healthz { status: "ok", schema_version: 10 })),
            ("JiraDelivery", to(&processed)),
            ("JiraDelivery", to(&Handled::Duplicate { delivery: "d-1".into() })),
            ("JiraDelivery", to(&Handled::Stale { ticket: "SUP-1".into() })),
            ("JiraDelivery", to(&Handled::Ignored { reason: "a comment".into() })),
        ]
    }
}
