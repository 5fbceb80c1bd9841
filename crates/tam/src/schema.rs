//! JSON Schemas of every answer `tam` gives machines: the HTTP API's response bodies (in the
//! OpenAPI document) and the MCP tools' structured results (their output schemas). Each is
//! written beside the others, by name, and held to its Rust type by a test that serialises
//! values of every type and checks them, both ways: no field a type writes is undescribed, no
//! described field is one no type writes.

use serde_json::{Map, Value, json};

/// The named schemas, referring to each other as `#/components/schemas/NAME`.
pub fn components() -> Value {
    let mut all = Map::new();
    for part in [api(), views(), more_views()] {
        if let Value::Object(schemas) = part {
            all.extend(schemas);
        }
    }
    Value::Object(all)
}

/// The HTTP API's bodies.
fn api() -> Value {
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
        "Healthz": {"type": "object", "required": ["status", "schema_version"], "properties": {
            "status": {"enum": ["ok"]}, "schema_version": {"type": "integer", "minimum": 1}}},
        "AccountList": {"type": "object", "required": ["accounts"], "properties": {
            "accounts": {"type": "array", "items": {"$ref": "#/components/schemas/AccountHealth"}}}},
        "AccountHealth": {"type": "object",
            "required": ["account_id", "name", "rep_email", "score", "status", "trend", "last_scan", "escalated", "escalation_reason"],
            "properties": {
                "account_id": {"type": "string"}, "name": {"type": "string"}, "rep_email": {"type": "string"},
                "score": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
                "status": {"enum": ["green", "amber", "red", null]},
                "trend": {"enum": ["improving", "stable", "declining", "unknown", null]},
                "last_scan": {"type": ["string", "null"], "format": "date-time"},
                "escalated": {"type": "boolean", "description": "In an escalation episode at the latest scan"},
                "escalation_reason": {"type": ["string", "null"], "description": "What the episode opened on"}}},
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
            "account_id": {"type": "string"}, "task_id": {"type": "string"}}, "additionalProperties": true},    })
}

/// What the MCP tools answer and the CLI prints with `--json` (`tam_app::views`).
fn views() -> Value {
    json!({
        "Accounts": {"type": "object", "required": ["tenant_id", "accounts"], "properties": {
            "tenant_id": {"type": "string"},
            "accounts": {"type": "array", "items": {"$ref": "#/components/schemas/AccountHealth"}}}},
        "Explanation": {"type": "object",
            "required": ["tenant_id", "account_id", "name", "rep_name", "rep_email", "latest", "episodes", "history",
                         "alert_budget"],
            "properties": {
                "alert_budget": {"type": "object", "required": ["per_scan", "configured", "adapts", "votes"],
                    "description": "The rep's individual alerts a scan, lowered when their feedback says most were not useful",
                    "properties": {
                        "per_scan": {"type": "integer", "minimum": 0}, "configured": {"type": "integer", "minimum": 0},
                        "adapts": {"type": "boolean"},
                        "votes": {"type": "object", "required": ["useful", "not_useful"], "properties": {
                            "useful": {"type": "integer", "minimum": 0}, "not_useful": {"type": "integer", "minimum": 0}}}}},
                "tenant_id": {"type": "string"}, "account_id": {"type": "string"}, "name": {"type": "string"},
                "rep_name": {"type": "string"}, "rep_email": {"type": "string"},
                "latest": {"$ref": "#/components/schemas/Latest"},
                "episodes": {"type": "array", "items": {"$ref": "#/components/schemas/Episode"}},
                "history": {"type": "array", "items": {"$ref": "#/components/schemas/Scan"}}}},
        "Latest": {"type": "object",
            "required": ["as_of", "score", "status", "trend", "deductions", "explanation", "escalate", "escalation_reason",
                         "episode_opened_at", "alert", "alert_cause"],
            "properties": {
                "as_of": {"type": "string", "format": "date-time"},
                "score": {"type": "integer", "minimum": 0, "maximum": 100},
                "status": {"enum": ["green", "amber", "red"]},
                "trend": {"enum": ["improving", "stable", "declining", "unknown"]},
                "deductions": {"type": "array", "items": {"$ref": "#/components/schemas/Deduction"}},
                "explanation": {"type": "array", "items": {"type": "string"}, "description": "Each deduction in plain words"},
                "escalate": {"type": "boolean", "description": "In an escalation episode"},
                "escalation_reason": {"enum": ["below_threshold", "became_red", "green_to_amber", null]},
                "episode_opened_at": {"type": ["string", "null"], "format": "date-time"},
                "alert": {"enum": ["individual", "digest", null], "description": "How this scan alerted the rep, if it did"},
                "alert_cause": {"enum": ["new", "worsened", "cool_down", null]}}},
        "Episode": {"type": "object", "required": ["opened_at", "reason", "last_alert_at", "closed_at"], "properties": {
            "opened_at": {"type": "string", "format": "date-time"}, "reason": {"type": "string"},
            "last_alert_at": {"type": "string", "format": "date-time"},
            "closed_at": {"type": ["string", "null"], "format": "date-time"}}},
        "Scan": {"type": "object", "required": ["as_of", "score", "status", "trend"], "properties": {
            "as_of": {"type": "string", "format": "date-time"},
            "score": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": {"enum": ["green", "amber", "red"]},
            "trend": {"enum": ["improving", "stable", "declining", "unknown"]}}},
        "ScoreHistory": {"type": "object", "required": ["tenant_id", "account_id", "history"], "properties": {
            "tenant_id": {"type": "string"}, "account_id": {"type": "string"},
            "history": {"type": "array", "items": {"$ref": "#/components/schemas/Scan"}, "description": "Newest first"}}},
        "OpenTickets": {"type": "object", "required": ["tenant_id", "account_id", "tickets"], "properties": {
            "tenant_id": {"type": "string"}, "account_id": {"type": "string"},
            "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/OpenTicket"}}}},
        "OpenTicket": {"type": "object",
            "required": ["id", "source", "priority", "status", "subject", "created_at", "updated_at", "kind"],
            "properties": {
                "id": {"type": "string"}, "source": {"type": "string"},
                "priority": {"enum": ["P1", "P2", "P3", "P4"]}, "status": {"enum": ["open", "pending"]},
                "subject": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": ["string", "null"], "format": "date-time"},
                "kind": {"type": ["string", "null"]}}},
    })
}

fn more_views() -> Value {
    json!({
        "Profile": {"type": "object",
            "required": ["tenant_id", "account_id", "name", "stakeholders", "integrations", "features", "environment",
                         "communications", "health", "opportunities", "history"],
            "properties": {
                "tenant_id": {"type": "string"}, "account_id": {"type": "string"}, "name": {"type": "string"},
                "stakeholders": {"type": "array", "description": "Each fact's value, as merged"},
                "integrations": {"type": "array"}, "features": {"type": "array"}, "environment": {"type": "array"},
                "communications": {"type": "array", "items": {"$ref": "#/components/schemas/Communication"}},
                "health": {"oneOf": [{"$ref": "#/components/schemas/ProfileHealth"}, {"type": "null"}]},
                "opportunities": {"type": "array", "items": {"$ref": "#/components/schemas/Opportunity"}},
                "history": {"type": "array", "items": {"$ref": "#/components/schemas/ProfileChange"}}}},
        "Communication": {"type": "object", "required": ["kind", "subject", "created_at", "path", "generator"], "properties": {
            "kind": {"type": "string"}, "subject": {"type": "string"},
            "created_at": {"type": "string", "format": "date-time"}, "path": {"type": "string"},
            "generator": {"type": "string"}}},
        "ProfileHealth": {"type": "object", "required": ["score", "status", "trend", "last_scan"], "properties": {
            "score": {"type": "integer", "minimum": 0, "maximum": 100},
            "status": {"enum": ["green", "amber", "red"]},
            "trend": {"enum": ["improving", "stable", "declining", "unknown"]},
            "last_scan": {"type": "string", "format": "date-time"}}},
        "Opportunity": {"type": "object", "required": ["title", "description", "status", "source", "created_at"], "properties": {
            "title": {"type": "string"}, "description": {"type": "string"}, "status": {"type": "string"},
            "source": {"type": "string"}, "created_at": {"type": "string", "format": "date-time"}}},
        "ProfileChange": {"type": "object", "required": ["at", "section", "key", "old", "new", "source"], "properties": {
            "at": {"type": "string", "format": "date-time"}, "section": {"type": "string"}, "key": {"type": "string"},
            "old": {"description": "The value before, null when new"}, "new": {"description": "The value after"},
            "source": {"type": "string"}}},
        "Drafts": {"type": "object", "required": ["tenant_id", "drafts"], "properties": {
            "tenant_id": {"type": "string"},
            "drafts": {"type": "array", "items": {"$ref": "#/components/schemas/Draft"}}}},
        "Draft": {"type": "object",
            "required": ["tenant_id", "idem_key", "account_id", "kind", "subject", "recipients", "rep_email", "path",
                         "message_id", "generator", "confidence", "note", "created_at", "usage"],
            "properties": {
                "tenant_id": {"type": "string"}, "idem_key": {"type": "string"}, "account_id": {"type": "string"},
                "kind": {"type": "string"}, "subject": {"type": "string"},
                "recipients": {"type": "array", "items": {"type": "string"}, "description": "The customer contacts it is addressed to"},
                "rep_email": {"type": "string", "description": "The rep whose mailbox holds it, unsent"},
                "path": {"type": "string"}, "message_id": {"type": "string"},
                "generator": {"type": "string", "description": "template, or the model that wrote it"},
                "confidence": {"enum": ["low", "medium", "high"]},
                "note": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "usage": {"type": "object", "required": ["model_calls", "input_tokens", "output_tokens"], "properties": {
                    "model_calls": {"type": "integer", "minimum": 0}, "input_tokens": {"type": "integer", "minimum": 0},
                    "output_tokens": {"type": "integer", "minimum": 0}}}}},
        "OutboxStatus": {"type": "object", "required": ["tenant_id", "channels"], "properties": {
            "tenant_id": {"type": "string"},
            "channels": {"type": "array", "items": {"$ref": "#/components/schemas/ChannelCounts"}}}},
        "ChannelCounts": {"type": "object", "required": ["channel", "pending", "in_flight", "delivered", "failed"], "properties": {
            "channel": {"type": "string"},
            "pending": {"type": "integer", "minimum": 0}, "in_flight": {"type": "integer", "minimum": 0},
            "delivered": {"type": "integer", "minimum": 0}, "failed": {"type": "integer", "minimum": 0}}},
        "TaskResult": {"type": "object", "required": ["type", "tenant_id"], "additionalProperties": true,
            "description": "What the task did, by its type: its draft (saved for review, never sent), its scan, events or profile changes",
            "properties": {
                "type": {"enum": ["health_scan", "escalation_outreach", "release_notes", "roadmap_preview", "health_checkin", "customer_success_review", "update_relationship_profile"]},
                "tenant_id": {"type": "string"}, "account_id": {"type": "string"},
                "confidence": {"enum": ["low", "medium", "high"]},
                "draft": {"type": "object", "description": "The draft saved in the rep's mailbox: subject, recipients, where"}}},
    })
}

/// `name`'s schema standing alone, as an MCP tool's output schema: an object whose references
/// point into its own `$defs`, which hold every schema it reaches.
pub fn standalone(name: &str) -> Map<String, Value> {
    let all = components();
    let mut defs = Map::new();
    let mut todo = vec![name.to_owned()];
    while let Some(next) = todo.pop() {
        if defs.contains_key(&next) {
            continue;
        }
        let schema = all[next.as_str()].clone();
        references(&schema, &mut todo);
        defs.insert(next, rebase(schema));
    }
    let Some(Value::Object(mut root)) = defs.remove(name) else { return Map::new() };
    if !defs.is_empty() {
        root.insert("$defs".into(), Value::Object(defs));
    }
    root
}

fn references(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(fields) => {
            if let Some(name) = fields.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix(COMPONENTS)) {
                out.push(name.to_owned());
            }
            fields.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

const COMPONENTS: &str = "#/components/schemas/";

fn rebase(schema: Value) -> Value {
    match schema {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| match (k.as_str(), v.as_str().and_then(|r| r.strip_prefix(COMPONENTS))) {
                    ("$ref", Some(name)) => (k, Value::String(format!("#/$defs/{name}"))),
                    _ => (k, rebase(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(rebase).collect()),
        other => other,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// Where `value` differs from `schema` (resolved in `doc`); the properties it wrote are
    /// added to `seen`, by schema name.
    pub(crate) fn check(
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

    /// Serialised, for a list of samples of several types.
    pub(crate) fn to(v: &impl serde::Serialize) -> Value {
        serde_json::to_value(v).unwrap()
    }

    /// Every type described here, by a value or two each.
    fn samples() -> Vec<(&'static str, Value)> {
        let mut all = crate::http::openapi::samples::schema_samples();
        all.extend(crate::mcp::samples::schema_samples());
        all
    }

    #[test]
    fn every_answer_type_is_described_field_for_field() {
        let doc = json!({"components": {"schemas": components()}});
        let mut seen = BTreeMap::new();
        let mut wrong = Vec::new();
        for (name, value) in samples() {
            let schema = json!({"$ref": format!("#/components/schemas/{name}")});
            wrong.extend(check(&value, &schema, &doc, name, &mut seen));
        }
        assert!(wrong.is_empty(), "the schemas and the types differ:\n{}", wrong.join("\n"));
        // Both ways: a described property no type writes any more is stale.
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            let Some(properties) = schema["properties"].as_object() else { continue };
            if ["Heartbeat", "Task", "TaskResult"].contains(&name.as_str()) {
                continue; // request bodies, and a task's result, whose fields depend on its type
            }
            let written = seen.get(name).cloned().unwrap_or_default();
            let stale: Vec<&String> = properties.keys().filter(|p| !written.contains(*p)).collect();
            assert!(stale.is_empty(), "{name} describes {stale:?}, which no answer writes");
        }
    }

    #[test]
    fn a_standalone_schema_holds_every_schema_it_reaches_and_only_those() {
        let explanation = Value::Object(standalone("Explanation"));
        let defs: BTreeSet<&str> = explanation["$defs"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(defs, BTreeSet::from(["Deduction", "Episode", "Latest", "Scan"]));
        assert!(!explanation.to_string().contains("#/components/"), "{explanation}");
        assert_eq!(explanation["type"], "object");
        let outbox = Value::Object(standalone("OutboxStatus"));
        assert_eq!(outbox["$defs"].as_object().unwrap().keys().collect::<Vec<_>>(), ["ChannelCounts"]);
    }

    #[test]
    fn the_check_finds_a_field_the_document_does_not_describe() {
        let doc = json!({"components": {"schemas": components()}});
        let schema = json!({"$ref": "#/components/schemas/Point"});
        let extra = json!({"as_of": "2026-03-29T07:00:00Z", "score": 7, "status": "red", "colour": "crimson"});
        let wrong = check(&extra, &schema, &doc, "Point", &mut BTreeMap::new());
        assert_eq!(wrong, ["Point.colour: written, but not described"]);
        let missing = json!({"as_of": "2026-03-29T07:00:00Z", "status": "purple"});
        let wrong = check(&missing, &schema, &doc, "Point", &mut BTreeMap::new());
        assert_eq!(wrong.len(), 2, "{wrong:?}");
    }
}
