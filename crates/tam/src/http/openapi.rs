//! The OpenAPI document of the v1 routes.

use super::*;

pub(super) async fn openapi() -> axum::Json<Value> {
    axum::Json(openapi_document())
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
