//! The tools: each one's name, what it says it does, the arguments it takes, the schema of its
//! answer, and the function that answers.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool as McpTool, ToolAnnotations};
use serde_json::{Map, Value, json};
use tam_app::views;
use tam_core::{AccountId, TenantId};
use tam_store::{HealthFilter, Store};

use super::{App, Refusal, answer};

/// One tool.
pub struct Tool {
    /// Its name.
    pub name: &'static str,
    /// What it reads or writes, and whether it has effects: what the model reads to choose it.
    pub description: &'static str,
    /// Its arguments: `(name, JSON Schema, required)`.
    pub arguments: &'static [(&'static str, &'static str, bool)],
    /// The schema (in `crate::schema`) its answer follows.
    pub answer: &'static str,
    /// Reads only.
    pub read_only: bool,
    /// Answers the call.
    pub run: fn(&App, &mut Store, &TenantId, Arguments) -> Result<Value, Refusal>,
}

const ACCOUNT: (&str, &str, bool) = ("account_id", r#"{"type": "string", "description": "The account's id"}"#, true);

/// Every tool, in the order a client lists them.
pub static TOOLS: &[Tool] = &[
    Tool {
        name: "list_accounts",
        description: "The tenant's customer accounts, worst health first: each with its score (0-100), status \
                      (green/amber/red), trend and whether it is escalated, and why. Reads only; no effects.",
        arguments: &[
            (
                "status",
                r#"{"enum": ["green", "amber", "red"], "description": "Only accounts with this latest status"}"#,
                false,
            ),
            (
                "rep_email",
                r#"{"type": "string", "description": "Only the accounts of the rep with this email"}"#,
                false,
            ),
            (
                "escalated",
                r#"{"type": "boolean", "description": "Only escalated accounts (true) or only the others (false)"}"#,
                false,
            ),
            (
                "limit",
                r#"{"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many (default 100)"}"#,
                false,
            ),
        ],
        answer: "Accounts",
        read_only: true,
        run: |_, store, tenant, args| {
            let filter = HealthFilter {
                status: args.text("status")?,
                rep_email: args.text("rep_email")?,
                escalated: args.flag("escalated")?,
                limit: Some(args.count("limit", 1000)?.unwrap_or(views::ACCOUNTS_SHOWN)),
            };
            args.done()?;
            answer(&views::accounts(store, tenant, &filter)?)
        },
    },
    Tool {
        name: "explain_account",
        description: "Why one account has its health score: each deduction with its points and evidence (aged \
                      P1/P2 tickets, open ticket volume, heartbeat silence) in plain words, its escalation episodes \
                      and its recent scores. The same as `tam explain --json`. Reads only; no effects.",
        arguments: &[ACCOUNT],
        answer: "Explanation",
        read_only: true,
        run: |app, store, tenant, args| {
            let account = args.account()?;
            args.done()?;
            answer(&views::explanation(store, tenant, &account, 30, app.escalation(tenant))?)
        },
    },
    Tool {
        name: "score_history",
        description: "One account's health scores over time, newest first: each scan's score, status and trend. \
                      Reads only; no effects.",
        arguments: &[
            ACCOUNT,
            (
                "limit",
                r#"{"type": "integer", "minimum": 1, "maximum": 1000, "description": "At most this many scans (default 30)"}"#,
                false,
            ),
        ],
        answer: "ScoreHistory",
        read_only: true,
        run: |_, store, tenant, args| {
            let account = args.account()?;
            let limit = args.count("limit", 1000)?.unwrap_or(30);
            args.done()?;
            answer(&views::score_history(store, tenant, &account, limit)?)
        },
    },
    Tool {
        name: "list_open_tickets",
        description: "One account's open and pending support tickets, most urgent and oldest first: id, priority \
                      (P1-P4), status, subject, source and dates. Reads only; no effects.",
        arguments: &[ACCOUNT],
        answer: "OpenTickets",
        read_only: true,
        run: |_, store, tenant, args| {
            let account = args.account()?;
            args.done()?;
            answer(&views::open_tickets(store, tenant, &account)?)
        },
    },
    Tool {
        name: "relationship_profile",
        description: "One account's technical relationship profile: stakeholders, integrations, features in use, \
                      environment, communications drafted, latest health, co-development opportunities and the \
                      history of changes. The same as `tam profile show --json`. Reads only; no effects.",
        arguments: &[ACCOUNT],
        answer: "Profile",
        read_only: true,
        run: |_, store, tenant, args| {
            let account = args.account()?;
            args.done()?;
            answer(&views::profile(store, tenant, &account)?)
        },
    },
    Tool {
        name: "list_drafts",
        description: "Drafts tam has written for reps to review (outreach, check-ins, reviews, release notes, \
                      roadmap previews), newest first: subject, recipients, which generator wrote it. Drafts are \
                      never sent by tam. Reads only; no effects.",
        arguments: &[
            ("account_id", r#"{"type": "string", "description": "Only this account's drafts"}"#, false),
            (
                "kind",
                r#"{"type": "string", "description": "Only this kind: escalation_outreach, release_notes, roadmap_preview, health_checkin, customer_success_review"}"#,
                false,
            ),
        ],
        answer: "Drafts",
        read_only: true,
        run: |_, store, tenant, args| {
            let account = args.text("account_id")?.map(|id| parse_account(&id)).transpose()?;
            let kind = args.text("kind")?;
            let limit = args.count("limit", 1000)?.unwrap_or(views::DRAFTS_SHOWN);
            args.done()?;
            answer(&views::drafts(store, tenant, account.as_ref(), kind.as_deref(), Some(limit))?)
        },
    },
    Tool {
        name: "run_task",
        description: "Runs one of tam's seven tasks for this tenant: health_scan, escalation_outreach, \
                      release_notes, roadmap_preview, health_checkin, customer_success_review, \
                      update_relationship_profile. Writes: whatever it produces is a draft saved in the rep's \
                      mailbox for review, an event for other agents, or a profile change; it never sends anything \
                      to a customer. The draft is saved before the answer comes back. Like every run, it then \
                      delivers what the tenant's outbox has due: alerts to the tenant's own reps, CRM and profile \
                      updates, events (a health_scan also scores every account and alerts on escalations). The \
                      task is the JSON that POST /v1/tasks takes, e.g. {\"type\": \"health_checkin\", \
                      \"account_id\": \"A-1\"}.",
        arguments: &[(
            "task",
            r#"{"type": "object", "required": ["type"], "additionalProperties": true, "properties": {
                "type": {"enum": ["health_scan", "escalation_outreach", "release_notes", "roadmap_preview", "health_checkin", "customer_success_review", "update_relationship_profile"]},
                "account_id": {"type": "string"}, "task_id": {"type": "string", "description": "Makes a retry of the same task do nothing twice"}},
                "description": "The task: its type and the fields that type takes"}"#,
            true,
        )],
        answer: "TaskResult",
        read_only: false,
        run: |app, store, tenant, args| {
            let mut task = args.object("task")?;
            args.done()?;
            tam_agent::tasks::for_tenant(&mut task, tenant).map_err(|other| {
                Refusal::Caller(format!("task.tenant_id: this session is tenant {tenant:?}, not {other:?}"))
            })?;
            let task = tam_agent::tasks::Task::parse(&Value::Object(task)).map_err(refused)?;
            let mut channels = crate::clients::with(&app.home, &app.config, &app.clients)
                .map_err(|e| Refusal::Internal(format!("{e:#}")))?;
            let result = channels.run_task(store, &app.config.rules, task).map_err(refused)?;
            // A task that stopped part way says why; what it did before is kept and shown.
            if result.get("partial").and_then(Value::as_bool) == Some(true) {
                let why = result.get("error").and_then(Value::as_str).unwrap_or("it stopped");
                return Err(Refusal::Caller(format!("the task did not finish: {why} (its result: {result})")));
            }
            Ok(result)
        },
    },
    Tool {
        name: "outbox_status",
        description: "Where the tenant's intended effects stand (drafts, rep alerts, chat, events, CRM updates, \
                      profile publishes): pending, in flight, delivered and failed counts by channel. Reads only; \
                      no effects.",
        arguments: &[],
        answer: "OutboxStatus",
        read_only: true,
        run: |_, store, tenant, args| {
            args.done()?;
            answer(&views::outbox_status(store, tenant)?)
        },
    },
];

fn refused(e: tam_agent::tasks::TaskError) -> Refusal {
    match e {
        tam_agent::tasks::TaskError::Invalid(m) => Refusal::Caller(format!("task: {m}")),
        other => Refusal::Internal(other.to_string()),
    }
}

/// The tools as the protocol lists them.
pub fn list() -> Vec<McpTool> {
    TOOLS
        .iter()
        .map(|t| {
            let annotations = ToolAnnotations::new()
                .read_only(t.read_only)
                .destructive(false)
                .idempotent(t.read_only)
                // A task reaches the mailbox, chat, CRM and model providers; a read, the store only.
                .open_world(!t.read_only);
            McpTool::new(t.name, t.description, Arc::new(input_schema(t)))
                .with_raw_output_schema(Arc::new(crate::schema::standalone(t.answer)))
                .with_annotations(annotations)
        })
        .collect()
}

fn input_schema(tool: &Tool) -> JsonObject {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, schema, needed) in tool.arguments {
        let schema: Value =
            serde_json::from_str(schema).expect("each argument's schema is JSON (a test reads them all)");
        properties.insert((*name).to_owned(), schema);
        if *needed {
            required.push(json!(name));
        }
    }
    let mut schema = Map::new();
    schema.insert("type".into(), json!("object"));
    schema.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        schema.insert("required".into(), Value::Array(required));
    }
    schema.insert("additionalProperties".into(), json!(false));
    schema
}

/// A call's arguments, taken one by one; what is left over is refused by [`Arguments::done`].
pub struct Arguments(std::cell::RefCell<Map<String, Value>>);

impl Arguments {
    pub fn new(arguments: Map<String, Value>) -> Arguments {
        Arguments(std::cell::RefCell::new(arguments))
    }

    fn take(&self, name: &str) -> Option<Value> {
        self.0.borrow_mut().remove(name).filter(|v| !v.is_null())
    }

    fn text(&self, name: &str) -> Result<Option<String>, Refusal> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Refusal::Caller(format!("{name}: a string, not {other}"))),
        }
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, Refusal> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(Refusal::Caller(format!("{name}: true or false, not {other}"))),
        }
    }

    fn count(&self, name: &str, max: usize) -> Result<Option<usize>, Refusal> {
        match self.take(name) {
            None => Ok(None),
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=max).contains(&n) => Ok(Some(n)),
                _ => Err(Refusal::Caller(format!("{name}: a whole number from 1 to {max}, not {v}"))),
            },
        }
    }

    fn object(&self, name: &str) -> Result<Map<String, Value>, Refusal> {
        match self.take(name) {
            Some(Value::Object(o)) => Ok(o),
            None => Err(Refusal::Caller(format!("{name}: required"))),
            Some(other) => Err(Refusal::Caller(format!("{name}: a JSON object, not {other}"))),
        }
    }

    fn account(&self) -> Result<AccountId, Refusal> {
        match self.text("account_id")? {
            Some(id) => parse_account(&id),
            None => Err(Refusal::Caller("account_id: required".to_owned())),
        }
    }

    /// Refuses the arguments no tool reads, so a misspelt filter is not silently ignored.
    fn done(self) -> Result<(), Refusal> {
        let left = self.0.into_inner();
        match left.keys().next() {
            None => Ok(()),
            Some(name) => Err(Refusal::Caller(format!("{name}: this tool takes no such argument"))),
        }
    }
}

fn parse_account(id: &str) -> Result<AccountId, Refusal> {
    AccountId::parse("account_id", id).map_err(|e| Refusal::Caller(e.to_string()))
}
