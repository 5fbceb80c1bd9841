//! The OpenAPI document of the v1 routes. Each response body is a Rust type (`v1.rs`,
//! `ErrorBody`, `tam_app::webhook::Handled`); its schema here is held to it by a test that
//! serialises values of every type and checks them against the document, both ways: no field
//! the type writes is undescribed, no described field is one the type never writes.

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
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Healthz": {"type": "object", "required": ["status", "schema_version"], "properties": {
                    "status": {"enum": ["ok"]}, "schema_version": {"type": "integer", "minimum": 1}}},
                "AccountList": {"type": "object", "required": ["accounts"], "properties": {
                    "accounts": {"type": "array", "items": {"$ref": "#/components/schemas/AccountHealth"}}}},
                "AccountHealth": {"type": "object",
                    "required": ["account_id", "name", "rep_email", "score", "status", "trend", "last_scan"],
                    "properties": {
                        "account_id": {"type": "string"}, "name": {"type": "string"}, "rep_email": {"type": "string"},
                        "score": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
                        "status": {"enum": ["green", "amber", "red", null]},
                        "trend": {"enum": ["improving", "stable", "declining", "unknown", null]},
                        "last_scan": {"type": ["string", "null"], "format": "date-time"}}},
                "AccountDetail": {"type": "object",
                    "required": ["account_id", "name", "rep_name", "rep_email", "last_heartbeat", "open_tickets", "health", "history", "profile"],
                    "properties": {
                        "account_id": {"type": "string"}, "name": {"type": "string"}, "rep_name": {"type": "string"},
                        "rep_email": {"type": "string", "format": "email"},
                        "last_heartbeat": {"type": ["string", "null"], "format": "date-time"},
                        "open_tickets": {"type": "integer", "minimum": 0},
                        "health": {"oneOf": [{"$ref": "#/components/schemas/Health"}, {"type": "null"}]},
                        "history": {"type": "array", "items": {"$ref": "#/components/schemas/Point"}},
                        "profile": {"type": ["object", "null"], "description": "The technical relationship profile: its sections and their lines"}}},
                "Health": {"type": "object", "required": ["as_of", "score", "status", "trend", "deductions"], "properties": {
                    "as_of": {"type": "string", "format": "date-time"},
                    "score": {"type": "integer", "minimum": 0, "maximum": 100},
                    "status": {"enum": ["green", "amber", "red"]},
                    "trend": {"enum": ["improving", "stable", "declining", "unknown"]},
                    "deductions": {"type": "array", "items": {"$ref": "#/components/schemas/Deduction"}}}},
                "Deduction": {"type": "object", "required": ["rule", "points", "evidence"], "properties": {
                    "rule": {"enum": ["aged_p1_p2", "open_volume", "heartbeat_silence"]},
                    "points": {"type": "integer", "minimum": 0},
                    "evidence": {"type": "object", "description": "Why the rule took its points: the tickets, the count or the silence"}}},
                "Point": {"type": "object", "required": ["as_of", "score", "status"], "properties": {
                    "as_of": {"type": "string", "format": "date-time"},
                    "score": {"type": "integer", "minimum": 0, "maximum": 100},
                    "status": {"enum": ["green", "amber", "red"]}}},
                "HeartbeatsTaken": {"type": "object", "required": ["accepted", "rejected"], "properties": {
                    "error": {"type": "string", "description": "Only when none was accepted (400)"},
                    "accepted": {"type": "integer", "minimum": 0},
                    "rejected": {"type": "array", "items": {"type": "string"}}}},
                "JiraDelivery": {"type": "object", "required": ["outcome"], "properties": {
                    "outcome": {"enum": ["processed", "duplicate", "stale", "ignored"]},
                    "ticket": {"type": "string"}, "account": {"type": "string"},
                    "score": {"type": "integer", "minimum": 0, "maximum": 100},
                    "status": {"enum": ["green", "amber", "red"]},
                    "effects": {"type": "integer", "minimum": 0}, "fetched": {"type": "boolean"},
                    "micros": {"type": "integer", "minimum": 0},
                    "delivery": {"type": "string"}, "reason": {"type": "string"}}},
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::super::v1::{AccountDetail, AccountList, Health, HeartbeatsTaken, Point};
    use super::super::{ErrorBody, Healthz};
    use super::*;
    use tam_app::webhook::Handled;

    /// Where `value` differs from `schema` (resolved in `doc`); the properties it wrote are
    /// added to `seen`, by schema name.
    fn check(
        value: &Value,
        schema: &Value,
        doc: &Value,
        at: &str,
        seen: &mut BTreeMap<String, BTreeSet<String>>,
    ) -> Vec<String> {
        if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            if let Value::Object(fields) = value {
                seen.entry(name.to_owned()).or_default().extend(fields.keys().cloned());
            }
            return check(value, &doc["components"]["schemas"][name], doc, at, seen);
        }
        if let Some(branches) = schema["oneOf"].as_array() {
            for branch in branches {
                let mut trial = BTreeMap::new();
                if check(value, branch, doc, at, &mut trial).is_empty() {
                    for (name, fields) in trial {
                        seen.entry(name).or_default().extend(fields);
                    }
                    return vec![];
                }
            }
            return vec![format!("{at}: {value} fits no branch")];
        }
        if let Some(allowed) = schema["enum"].as_array() {
            return if allowed.contains(value) {
                vec![]
            } else {
                vec![format!("{at}: {value} is not one of {allowed:?}")]
            };
        }
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = types.is_empty() || types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
        if !fits {
            return vec![format!("{at}: a {kind}, described as {types:?}")];
        }
        let mut out = Vec::new();
        if let (Value::Object(fields), Some(properties)) = (value, schema["properties"].as_object()) {
            for (key, v) in fields {
                match properties.get(key) {
                    Some(p) => out.extend(check(v, p, doc, &format!("{at}.{key}"), seen)),
                    None => out.push(format!("{at}.{key}: written, but not described")),
                }
            }
            for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                if !fields.contains_key(required) {
                    out.push(format!("{at}.{required}: required, but not written"));
                }
            }
        }
        if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
            for (i, v) in items.iter().enumerate() {
                out.extend(check(v, item, doc, &format!("{at}[{i}]"), seen));
            }
        }
        out
    }

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    /// Values of every response type, each with the schema it is documented as.
    fn samples() -> Vec<(&'static str, Value)> {
        let to = |v: &dyn erased::Serialize| v.to_value();
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
        };
        let unscanned = tam_store::AccountHealth {
            account_id: "beta".into(),
            name: "Beta".into(),
            rep_email: "ana@v.example".into(),
            score: None,
            status: None,
            trend: None,
            last_scan: None,
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

    /// Serialising through a trait object, so one list holds every type.
    mod erased {
        pub trait Serialize {
            fn to_value(&self) -> serde_json::Value;
        }
        impl<T: serde::Serialize> Serialize for T {
            fn to_value(&self) -> serde_json::Value {
                serde_json::to_value(self).unwrap()
            }
        }
    }

    #[test]
    fn every_response_type_is_described_field_for_field() {
        let doc = openapi_document();
        let mut seen = BTreeMap::new();
        let mut wrong = Vec::new();
        for (name, value) in samples() {
            let schema = json!({"$ref": format!("#/components/schemas/{name}")});
            wrong.extend(check(&value, &schema, &doc, name, &mut seen));
        }
        assert!(wrong.is_empty(), "the document and the types differ:\n{}", wrong.join("\n"));
        // Both ways: a described property no type writes any more is stale.
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let Some(properties) = schema["properties"].as_object() else { continue };
            if ["Heartbeat", "Task"].contains(&name.as_str()) {
                continue; // request bodies: what a caller writes
            }
            let written = seen.get(name).cloned().unwrap_or_default();
            let stale: Vec<&String> = properties.keys().filter(|p| !written.contains(*p)).collect();
            assert!(stale.is_empty(), "{name} describes {stale:?}, which no response writes");
        }
    }

    #[test]
    fn the_check_finds_a_field_the_document_does_not_describe() {
        let doc = openapi_document();
        let schema = json!({"$ref": "#/components/schemas/Point"});
        let extra = json!({"as_of": "2026-03-29T07:00:00Z", "score": 7, "status": "red", "colour": "crimson"});
        let wrong = check(&extra, &schema, &doc, "Point", &mut BTreeMap::new());
        assert_eq!(wrong, ["Point.colour: written, but not described"]);
        let missing = json!({"as_of": "2026-03-29T07:00:00Z", "status": "purple"});
        let wrong = check(&missing, &schema, &doc, "Point", &mut BTreeMap::new());
        assert_eq!(wrong.len(), 2, "{wrong:?}");
    }
}
