//! Values of every tool's answer, each with the schema it is described by (checked in
//! `crate::schema`), and checks of the tool table itself.

use serde_json::{Value, json};
use tam_app::views::{self, ChannelCounts};
use tam_core::{AccountId, HealthStatus, TenantId, Timestamp, Trend};

use crate::schema::tests::to;

fn at(t: &str) -> Timestamp {
    t.parse().unwrap()
}

pub(crate) fn schema_samples() -> Vec<(&'static str, Value)> {
    let tenant = TenantId::parse("t", "acme-corp").unwrap();
    let account = AccountId::parse("a", "A-1").unwrap();
    let deduction: tam_core::scoring::Deduction = serde_json::from_value(json!({
        "rule": "heartbeat_silence", "points": 25,
        "evidence": {"last_heartbeat": "2026-03-20T00:00:00Z", "hours_silent": 100.5, "after_hours": 72}}))
    .unwrap();
    let scan = views::Point {
        as_of: at("2026-03-29T07:00:00Z"),
        score: 40,
        status: HealthStatus::Red,
        trend: Trend::Declining,
    };
    let latest = |escalated: bool| views::Latest {
        as_of: at("2026-03-29T07:00:00Z"),
        score: 40,
        status: HealthStatus::Red,
        trend: Trend::Declining,
        deductions: vec![deduction.clone()],
        explanation: vec![deduction.explain()],
        escalate: escalated,
        escalation_reason: escalated.then_some("became_red"),
        episode_opened_at: escalated.then(|| at("2026-03-28T07:00:00Z")),
        alert: escalated.then_some("individual"),
        alert_cause: escalated.then_some("new"),
    };
    let explanation = |escalated: bool| views::Explanation {
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        name: "Acme".into(),
        rep_name: "Ana".into(),
        rep_email: "ana@v.example".into(),
        latest: latest(escalated),
        episodes: vec![views::Episode {
            opened_at: at("2026-03-28T07:00:00Z"),
            reason: "became_red".into(),
            last_alert_at: at("2026-03-28T07:00:00Z"),
            closed_at: Some(at("2026-03-29T07:00:00Z")),
        }],
        history: vec![scan.clone()],
        alert_budget: tam_core::feedback::AlertBudget::of(
            5,
            escalated,
            tam_core::feedback::Votes { useful: 1, not_useful: 7 },
        ),
    };
    let ticket = |updated: bool| tam_store::OpenTicket {
        id: "SUP-1".into(),
        source: "jira".into(),
        priority: tam_core::Priority::P1,
        status: tam_core::TicketStatus::Open,
        subject: "Sync fails".into(),
        created_at: at("2026-03-20T00:00:00Z"),
        updated_at: updated.then(|| at("2026-03-21T00:00:00Z")),
        kind: updated.then(|| "bug".to_owned()),
    };
    let profile = |scanned: bool| views::Profile {
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        name: "Acme".into(),
        stakeholders: vec![json!({"name": "Jo", "role": "CTO"})],
        integrations: vec![json!("Salesforce")],
        features: vec![],
        environment: vec![],
        communications: vec![views::ProfileCommunication {
            kind: "health_checkin".into(),
            subject: "Checking in".into(),
            created_at: at("2026-03-29T07:00:00Z"),
            path: "/home/drafts/x.eml".into(),
            generator: "template".into(),
        }],
        health: scanned.then(|| views::ProfileHealth {
            score: 40,
            status: HealthStatus::Red,
            trend: Trend::Declining,
            last_scan: at("2026-03-29T07:00:00Z"),
        }),
        opportunities: vec![tam_store::Opportunity {
            title: "Bulk export API".into(),
            description: "Asked for in SUP-2".into(),
            status: "surfaced".into(),
            source: "ticket:SUP-2".into(),
            created_at: at("2026-03-29T07:00:00Z"),
        }],
        history: vec![
            views::ProfileChange {
                at: at("2026-03-29T07:00:00Z"),
                section: "integrations".into(),
                key: "salesforce".into(),
                old: None,
                new: json!("Salesforce"),
                source: "task".into(),
            },
            views::ProfileChange {
                at: at("2026-03-30T07:00:00Z"),
                section: "integrations".into(),
                key: "salesforce".into(),
                old: Some(json!("Salesforce")),
                new: json!("Salesforce v2"),
                source: "task".into(),
            },
        ],
    };
    let draft = |note: Option<&str>| tam_store::DraftRow {
        tenant_id: tenant.to_string(),
        idem_key: "checkin:A-1:2026-03".into(),
        account_id: account.to_string(),
        kind: "health_checkin".into(),
        subject: "Checking in".into(),
        recipients: vec!["jo@acme.example".into()],
        rep_email: "ana@v.example".into(),
        path: "/home/drafts/x.eml".into(),
        message_id: "<x@tam>".into(),
        generator: "template".into(),
        confidence: "medium".into(),
        note: note.map(str::to_owned),
        created_at: at("2026-03-29T07:00:00Z"),
        usage: tam_store::DraftUsage { model_calls: 1, input_tokens: 900, output_tokens: 300 },
    };
    let health = tam_store::AccountHealth {
        account_id: "A-1".into(),
        name: "Acme".into(),
        rep_email: "ana@v.example".into(),
        score: Some(40),
        status: Some("red".into()),
        trend: Some("declining".into()),
        last_scan: Some(at("2026-03-29T07:00:00Z")),
        escalated: true,
        escalation_reason: Some("became_red".into()),
    };
    vec![
        ("Accounts", to(&views::Accounts { tenant_id: tenant.clone(), accounts: vec![health] })),
        ("Explanation", to(&explanation(true))),
        ("Explanation", to(&explanation(false))),
        (
            "ScoreHistory",
            to(&views::ScoreHistory { tenant_id: tenant.clone(), account_id: account.clone(), history: vec![scan] }),
        ),
        (
            "OpenTickets",
            to(&views::OpenTickets {
                tenant_id: tenant.clone(),
                account_id: account.clone(),
                tickets: vec![ticket(true), ticket(false)],
            }),
        ),
        ("Profile", to(&profile(true))),
        ("Profile", to(&profile(false))),
        ("Drafts", to(&views::Drafts { tenant_id: tenant.clone(), drafts: vec![draft(None), draft(Some("why"))] })),
        (
            "OutboxStatus",
            to(&views::OutboxStatus {
                tenant_id: tenant.clone(),
                channels: vec![ChannelCounts {
                    channel: "draft".into(),
                    pending: 1,
                    in_flight: 0,
                    delivered: 3,
                    failed: 1,
                }],
            }),
        ),
    ]
}

#[test]
fn every_tool_has_an_answer_schema_and_arguments_that_read_as_schemas() {
    let components = crate::schema::components();
    for tool in super::TOOLS {
        assert!(components.get(tool.answer).is_some(), "{}: no schema {}", tool.name, tool.answer);
        for (name, schema, _) in tool.arguments {
            let schema: Value =
                serde_json::from_str(schema).unwrap_or_else(|e| panic!("{}.{name}: not JSON ({e})", tool.name));
            assert!(schema.get("description").is_some(), "{}.{name}: say what it is for", tool.name);
        }
    }
    let listed = super::tools::list();
    assert_eq!(listed.len(), 8);
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "list_accounts",
            "explain_account",
            "score_history",
            "list_open_tickets",
            "relationship_profile",
            "list_drafts",
            "run_task",
            "outbox_status"
        ]
    );
    let run_task = &listed[6];
    assert!(run_task.description.as_deref().unwrap().contains("never sends"));
}
