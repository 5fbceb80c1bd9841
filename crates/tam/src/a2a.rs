//! The agent as other agents see it, in the A2A protocol (1.0): the agent card that
//! `/.well-known/agent-card.json` serves and `tam agent --json` prints, and the JSON-RPC
//! `SendMessage` call that `/a2a` answers by running the task the message carries, as
//! `POST /v1/tasks` does. Tasks write drafts for review and events; nothing is sent to a
//! customer.

use serde_json::{Map, Value, json};
use tam_core::agent::{TaskType, registration};

/// The protocol version the card and the endpoint speak.
pub const PROTOCOL_VERSION: &str = "1.0";

/// What each task type offers as a skill: its name, what it does, its tag and an example task.
fn skill(kind: TaskType) -> (&'static str, &'static str, &'static str, Value) {
    match kind {
        TaskType::HealthScan => (
            "Health scan",
            "Scores every account of the tenant now (or at as_of), stores the snapshots and escalation decisions, \
             and alerts the tenant's reps on what escalated. Returns the scan's counts.",
            "health-score",
            json!({"type": "health_scan"}),
        ),
        TaskType::EscalationOutreach => (
            "Escalation outreach",
            "Drafts the outreach a rep should send to an escalated account, grounded in its open tickets and \
             score breakdown. The draft is saved in the rep's mailbox for review; never sent.",
            "escalation",
            json!({"type": "escalation_outreach", "account_id": "A-1"}),
        ),
        TaskType::ReleaseNotes => (
            "Release notes",
            "Drafts release notes tailored to each account (or one), from the release's changes and what the \
             account uses. Drafts only, for review.",
            "technical-communication",
            json!({"type": "release_notes", "release_info": {"version": "2.4", "date": "2026-06-01",
                   "changes": [{"title": "SSO", "description": "SAML sign-in"}]}}),
        ),
        TaskType::RoadmapPreview => (
            "Roadmap preview",
            "Drafts a roadmap preview for one account, picking the items that matter to it. A draft for review.",
            "technical-communication",
            json!({"type": "roadmap_preview", "account_id": "A-1",
                   "roadmap_items": [{"title": "SSO", "description": "SAML sign-in", "area": "auth", "quarter": "Q3"}]}),
        ),
        TaskType::HealthCheckin => (
            "Health check-in",
            "Drafts a technical health check-in for one account over the last period_days. A draft for review.",
            "technical-communication",
            json!({"type": "health_checkin", "account_id": "A-1", "period_days": 30}),
        ),
        TaskType::CustomerSuccessReview => (
            "Customer Success Review",
            "Drafts a Customer Success Review for one account, with its score history chart. A draft for review.",
            "technical-communication",
            json!({"type": "customer_success_review", "account_id": "A-1", "period_days": 90}),
        ),
        TaskType::UpdateRelationshipProfile => (
            "Update relationship profile",
            "Merges facts (stakeholders, integrations, features, environment) into an account's technical \
             relationship profile and surfaces co-development opportunities to Sales as events.",
            "relationship-profiling",
            json!({"type": "update_relationship_profile", "account_id": "A-1",
                   "integrations": [{"name": "Salesforce", "active": true}]}),
        ),
    }
}

/// The agent card, with its A2A endpoint under `base` (the API's address as clients reach
/// it, no trailing slash).
pub fn card(base: &str) -> Value {
    let r = registration();
    let skills: Vec<Value> = TaskType::ALL
        .iter()
        .map(|&kind| {
            let (name, description, tag, example) = skill(kind);
            json!({
                "id": kind.as_str(), "name": name, "description": description,
                "tags": [tag, "tam"],
                // The SDK reads examples as strings: each is a task, as JSON text.
                "examples": [example.to_string()],
                "inputModes": ["application/json"], "outputModes": ["application/json"],
            })
        })
        .collect();
    json!({
        "name": r.name,
        "description": format!("{} Tasks write drafts for a rep to review and events for other agents; \
            nothing is ever sent to a customer. Send a task as a data part (or a text part holding its JSON) \
            of a SendMessage; the tenant is the token's.", r.description),
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [{"url": format!("{base}/a2a"), "protocolBinding": "JSONRPC", "protocolVersion": PROTOCOL_VERSION}],
        "provider": {"organization": "tam", "url": base},
        "documentationUrl": format!("{base}/v1/openapi.json"),
        "capabilities": {"streaming": false, "pushNotifications": false, "extendedAgentCard": false},
        "securitySchemes": {"bearer": {"httpAuthSecurityScheme": {
            "scheme": "Bearer",
            "description": "The tenant's API token ([api.tokens] in tam.toml): Authorization: Bearer <token>. A token sees its tenant only."}}},
        "securityRequirements": [{"schemes": {"bearer": {"list": []}}}],
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json"],
        "skills": skills,
        // The agent platform's registration (SPEC 5), beside the card: A2A readers skip fields
        // they do not know.
        "id": r.id,
        "task_types": r.task_types,
        "registration": r,
    })
}

/// The API's address as clients reach it: `[api] public_url`, else `http://` and where it
/// listens (a wildcard address read as this machine).
pub fn base_url(public_url: Option<&str>, listen: &str) -> String {
    if let Some(url) = public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let listen = listen.replace("0.0.0.0:", "127.0.0.1:").replace("[::]:", "[::1]:");
    format!("http://{listen}")
}

/// A JSON-RPC error the SDKs map: what went wrong and what to send instead.
#[derive(Debug)]
pub struct RpcError {
    /// The JSON-RPC code.
    pub code: i64,
    /// What to fix.
    pub message: String,
}

impl RpcError {
    fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError { code, message: message.into() }
    }

    /// Not JSON.
    pub fn parse(message: impl Into<String>) -> RpcError {
        RpcError::new(-32700, message)
    }

    /// Arguments that cannot be used.
    pub fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }

    /// Ours.
    pub fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(-32603, message)
    }

    /// A protocol version this agent does not speak.
    pub fn version(asked: &str) -> RpcError {
        RpcError::new(-32009, format!("A2A-Version {asked:?}: this agent speaks {PROTOCOL_VERSION}"))
    }
}

/// A `SendMessage` request, read: its id, and the task the message carries.
#[derive(Debug)]
pub struct Request {
    /// The JSON-RPC id, echoed back.
    pub id: Value,
    /// The task JSON.
    pub task: Map<String, Value>,
    /// The conversation the message belongs to, when the caller said.
    pub context_id: Option<String>,
}

/// Reads a JSON-RPC request body; an error comes with the id to answer it under.
pub fn read(body: &[u8]) -> Result<Request, (Value, RpcError)> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| (Value::Null, RpcError::parse(format!("not JSON ({e}); send a JSON-RPC 2.0 request"))))?;
    // A request's id is a string or a number; anything else is answered under null.
    let id = match value.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        Some(Value::Null) | None => {
            return Err((Value::Null, RpcError::new(-32600, "id: required (a string or a number)")));
        }
        Some(_) => return Err((Value::Null, RpcError::new(-32600, "id: a string or a number"))),
    };
    let fail = |e: RpcError| (id.clone(), e);
    if value.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(fail(RpcError::new(-32600, "not a JSON-RPC 2.0 request (\"jsonrpc\": \"2.0\")")));
    }
    match value.get("method").and_then(Value::as_str) {
        Some("SendMessage") => {}
        // The protocol's other methods, answered with its own errors: tasks run to completion
        // within SendMessage and are not kept, and nothing streams or pushes.
        Some(method @ ("GetTask" | "CancelTask" | "SubscribeToTask")) => {
            return Err(fail(RpcError::new(
                -32001,
                format!("{method}: no such task; this agent finishes each task within SendMessage and keeps none"),
            )));
        }
        Some(method @ ("SendStreamingMessage" | "ListTasks" | "GetExtendedAgentCard"))
        | Some(method @ ("CreateTaskPushNotificationConfig" | "GetTaskPushNotificationConfig"))
        | Some(method @ ("ListTaskPushNotificationConfigs" | "DeleteTaskPushNotificationConfig")) => {
            return Err(fail(RpcError::new(-32004, format!("{method}: not supported; send SendMessage"))));
        }
        Some(other) => {
            return Err(fail(RpcError::new(-32601, format!("method {other:?}: this agent answers SendMessage"))));
        }
        None => return Err(fail(RpcError::new(-32600, "method: missing"))),
    }
    let message = &value["params"]["message"];
    let parts =
        message["parts"].as_array().ok_or_else(|| fail(RpcError::invalid_params("params.message.parts: missing")))?;
    let task = parts
        .iter()
        .find_map(|part| match (&part["data"], part["text"].as_str()) {
            (Value::Object(data), _) => Some(data.clone()),
            (_, Some(text)) => serde_json::from_str::<Map<String, Value>>(text).ok(),
            _ => None,
        })
        .ok_or_else(|| {
            fail(RpcError::invalid_params(
                "params.message.parts: no task; send the task as a data part (or a text part holding its JSON), \
                 e.g. {\"type\": \"health_checkin\", \"account_id\": \"A-1\"}",
            ))
        })?;
    Ok(Request { id, task: integral(task), context_id: message["contextId"].as_str().map(str::to_owned) })
}

/// Numbers a protobuf `Value` carried as doubles (the SDK sends `30` as `30.0`) read back as
/// integers where they are whole, as the task's fields expect.
fn integral(task: Map<String, Value>) -> Map<String, Value> {
    fn fix(v: Value) -> Value {
        match v {
            Value::Number(n) if n.is_f64() => match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => json!(f as i64),
                _ => Value::Number(n),
            },
            Value::Array(items) => Value::Array(items.into_iter().map(fix).collect()),
            Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, fix(v))).collect()),
            other => other,
        }
    }
    task.into_iter().map(|(k, v)| (k, fix(v))).collect()
}

/// The JSON-RPC answer to `id`: the task, run, as an A2A Task whose artifact is the result
/// (`TASK_STATE_FAILED`, saying why, when the task stopped part way).
pub fn completed(id: Value, task_id: &str, context_id: &str, result: &Value, at: &str) -> Value {
    let partial = result.get("partial").and_then(Value::as_bool) == Some(true);
    let mut status =
        json!({"state": if partial { "TASK_STATE_FAILED" } else { "TASK_STATE_COMPLETED" }, "timestamp": at});
    if partial {
        let why = result.get("error").and_then(Value::as_str).unwrap_or("the task stopped part way");
        status["message"] =
            json!({"messageId": format!("{task_id}-status"), "role": "ROLE_AGENT", "parts": [{"text": why}]});
    }
    json!({"jsonrpc": "2.0", "id": id, "result": {"task": {
        "id": task_id, "contextId": context_id, "status": status,
        "artifacts": [{"artifactId": format!("{task_id}-result"), "name": "result",
                       "parts": [{"data": result, "mediaType": "application/json"}]}],
    }}})
}

/// The JSON-RPC error answer to `id`.
pub fn error(id: Value, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": e.code, "message": e.message}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_names_every_task_type_and_the_bearer_scheme_it_requires() {
        let card = card("https://tam.example.com");
        let skills: Vec<&str> = card["skills"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
        assert_eq!(skills, registration().task_types);
        assert_eq!(card["supportedInterfaces"][0]["url"], "https://tam.example.com/a2a");
        let required: Vec<&String> = card["securityRequirements"][0]["schemes"].as_object().unwrap().keys().collect();
        assert_eq!(required, ["bearer"]);
        assert_eq!(card["securitySchemes"]["bearer"]["httpAuthSecurityScheme"]["scheme"], "Bearer");
        for skill in card["skills"].as_array().unwrap() {
            let example: Value = serde_json::from_str(skill["examples"][0].as_str().unwrap()).unwrap();
            assert_eq!(example["type"], skill["id"], "each example is a task of its skill");
        }
    }

    #[test]
    fn a_message_gives_its_task_with_whole_numbers_whole() {
        let body = json!({"jsonrpc": "2.0", "id": "7", "method": "SendMessage", "params": {"message": {
            "messageId": "m", "role": "ROLE_USER", "contextId": "c-1",
            "parts": [{"data": {"type": "health_checkin", "account_id": "A-1", "period_days": 30.0, "ratio": 0.5}}]}}});
        let request = read(body.to_string().as_bytes()).unwrap();
        assert_eq!(request.id, "7");
        assert_eq!(request.context_id.as_deref(), Some("c-1"));
        assert_eq!(
            Value::Object(request.task),
            json!({"type": "health_checkin", "account_id": "A-1", "period_days": 30, "ratio": 0.5})
        );
        let text = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {
            "parts": [{"text": "{\"type\": \"health_scan\"}"}]}}});
        assert_eq!(Value::Object(read(text.to_string().as_bytes()).unwrap().task), json!({"type": "health_scan"}));
    }

    #[test]
    fn what_is_not_a_task_message_is_refused_with_the_code_the_sdks_map() {
        let code = |body: &str| read(body.as_bytes()).unwrap_err().1.code;
        assert_eq!(code("{"), -32700);
        assert_eq!(code(r#"{"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {}}"#), -32001);
        assert_eq!(code(r#"{"jsonrpc": "2.0", "id": 1, "method": "SendStreamingMessage", "params": {}}"#), -32004);
        assert_eq!(code(r#"{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {}}"#), -32601);
        assert_eq!(read(br#"{"jsonrpc": "2.0", "id": {}, "method": "SendMessage"}"#).unwrap_err().0, Value::Null);
        assert_eq!(
            code(
                r#"{"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {"message": {"parts": [{"text": "hello"}]}}}"#
            ),
            -32602
        );
        assert_eq!(code(r#"{"id": 1, "method": "SendMessage"}"#), -32600);
        assert_eq!(code(r#"{"jsonrpc": "2.0", "method": "SendMessage"}"#), -32600, "a notification gets no task run");
    }
}
