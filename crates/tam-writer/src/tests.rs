use tam_core::comms::{
    Brief, CommKind, CustomerDraft, PeriodStats, ReleaseChange, ReleaseInfo, RoadmapItem, ScorePoint, TicketFacts,
};
use tam_core::escalation::Reason;
use tam_core::outbox::IdemKey;
use tam_core::scoring::{self, AccountSignals, ScoringConfig, TicketSignal};
use tam_core::{AccountId, Email, Priority, TenantId, TicketId, TicketStatus, Timestamp, Trend};

use super::*;

pub(crate) fn brief(subject: &str) -> Brief {
    let as_of: Timestamp = "2026-03-29T07:00:00Z".parse().unwrap();
    let created: Timestamp = "2026-03-20T07:00:00Z".parse().unwrap();
    let signals = AccountSignals {
        tickets: vec![TicketSignal {
            id: TicketId::parse("id", "SUP-1").unwrap(),
            priority: Priority::P1,
            status: TicketStatus::Open,
            created_at: created,
        }],
        last_heartbeat: Some("2026-03-20T07:00:00Z".parse().unwrap()),
    };
    let health = scoring::score(&signals, as_of, &ScoringConfig::default());
    Brief {
        account_name: "Northwind".into(),
        contacts: vec![Email::parse("c", "ops@northwind.example").unwrap()],
        rep_name: "Ana Ruiz".into(),
        score: health.score,
        status: health.status,
        trend: Trend::Declining,
        deductions: health.deductions,
        open_tickets: vec![TicketFacts {
            id: TicketId::parse("id", "SUP-1").unwrap(),
            priority: Priority::P1,
            status: TicketStatus::Open,
            subject: subject.into(),
            age_hours: 216.0,
        }],
        escalation_reason: Some(Reason::BelowThreshold),
        ..Brief::new(
            CommKind::EscalationOutreach,
            TenantId::parse("t", "acme").unwrap(),
            AccountId::parse("a", "northwind").unwrap(),
            Email::parse("r", "ana@vendor.example").unwrap(),
            as_of,
        )
    }
}

#[test]
fn outreach_names_the_tickets_the_silence_and_the_rep() {
    let b = brief("SSO login fails");
    assert_eq!((b.score, b.status.as_str()), (50, "amber"), "one aged P1 and nine days of silence");
    let w = TemplateWriter::new().write(&b).unwrap();
    assert_eq!(w.subject, "Northwind: getting ahead of 1 open issue");
    assert!(w.text.starts_with("Hello Northwind team,\n\nI am reaching out early"), "{}", w.text);
    assert!(w.text.contains("  - SUP-1 (P1, open 9 days): SSO login fails\n"), "{}", w.text);
    assert!(w.text.contains("since 2026-03-20T07:00:00Z (216 hours)"), "{}", w.text);
    assert!(w.text.trim_end().ends_with("Ana Ruiz\nana@vendor.example"), "{}", w.text);
    assert!(w.html.contains("<li><strong>SUP-1</strong> (P1, open 9 days): SSO login fails</li>"), "{}", w.html);
    assert_eq!(w.generator, "template");
}

#[test]
fn a_red_account_gets_an_apology_first() {
    let mut b = brief("SSO login fails");
    (b.score, b.status) = (20, tam_core::HealthStatus::Red);
    let w = TemplateWriter::new().write(&b).unwrap();
    assert_eq!(w.subject, "Northwind: our plan for your 1 urgent issue");
    assert!(w.text.starts_with("Hello Northwind team,\n\nI want to acknowledge"), "{}", w.text);
}

#[test]
fn markup_in_a_ticket_subject_is_escaped_in_html() {
    let w =
        TemplateWriter::new().write(&brief("<script>alert(1)</script> & \"ignore previous instructions\"")).unwrap();
    assert!(!w.html.contains("<script>"), "{}", w.html);
    assert!(
        w.html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;ignore previous instructions&quot;"),
        "{}",
        w.html
    );
    assert!(w.text.contains("<script>alert(1)</script>"), "plain text carries the text as it is");
}

#[test]
fn kinds_without_their_facts_say_so() {
    let mut b = brief("x");
    b.kind = CommKind::ReleaseNotes;
    assert_eq!(TemplateWriter::new().write(&b).unwrap_err().0, "release notes need release_info");
    b.kind = CommKind::CustomerSuccessReview;
    assert_eq!(TemplateWriter::new().write(&b).unwrap_err().0, "customer_success_review needs the period's figures");
}

fn change(title: &str, area: &str, tickets: &[&str]) -> ReleaseChange {
    ReleaseChange {
        title: title.into(),
        description: format!("{title} details"),
        area: area.into(),
        tickets: tickets.iter().map(|t| t.to_string()).collect(),
    }
}

#[test]
fn release_notes_lead_with_fixes_for_this_account_then_what_it_uses() {
    let mut b = brief("SSO login fails");
    b.kind = CommKind::ReleaseNotes;
    b.release = Some(ReleaseInfo {
        version: "4.2".into(),
        date: "2026-04-01".into(),
        changes: vec![
            change("Dark mode", "ui", &[]),
            change("Faster webhooks", "webhooks", &[]),
            change("SSO session fix", "sso", &["SUP-1", "OTHER-9"]),
        ],
    });
    b.reported = b.open_tickets.clone();
    b.profile.features = vec!["webhooks".into()];
    let w = TemplateWriter::new().write(&b).unwrap();
    assert_eq!(w.subject, "4.2 fixes 1 issue you reported, Northwind");
    let fixed = w.text.find("Fixed for you:").unwrap();
    let used = w.text.find("In what you use:").unwrap();
    let also = w.text.find("Also in this release:").unwrap();
    assert!(fixed < used && used < also, "{}", w.text);
    assert!(w.text.contains("(fixes what you reported: SUP-1: SSO login fails)"), "{}", w.text);
    assert!(w.text.contains("Faster webhooks: Faster webhooks details (you use webhooks)"), "{}", w.text);
    assert!(
        w.text.contains(
            "Where you stand: integration health 50/100 (amber, declining); still open (1): SUP-1 SSO login fails."
        ),
        "{}",
        w.text
    );
}

#[test]
fn roadmap_previews_put_items_on_the_accounts_integrations_first() {
    let mut b = brief("x");
    b.kind = CommKind::RoadmapPreview;
    b.profile.integrations = vec!["salesforce".into()];
    b.profile.opportunities = vec!["Feature request: SCIM user provisioning".into()];
    b.roadmap = vec![
        RoadmapItem {
            title: "Mobile app".into(),
            description: "iOS".into(),
            area: "mobile".into(),
            quarter: "2027-Q1".into(),
        },
        RoadmapItem {
            title: "Bi-directional sync".into(),
            description: "Both ways".into(),
            area: "salesforce".into(),
            quarter: "2026-Q4".into(),
        },
        RoadmapItem {
            title: "SCIM 2.0".into(),
            description: "Provisioning".into(),
            area: "scim".into(),
            quarter: "".into(),
        },
    ];
    let w = TemplateWriter::new().write(&b).unwrap();
    let ours = w.text.find("Bi-directional sync (2026-Q4)").unwrap();
    let theirs = w.text.find("Mobile app").unwrap();
    assert!(ours < theirs, "{}", w.text);
    assert!(w.text.contains("Why it matters to you: builds on your salesforce integration."), "{}", w.text);
    assert!(w.text.contains("answers your request \"Feature request: SCIM user provisioning\""), "{}", w.text);
    assert!(
        w.text.contains("Where you stand today: integration health 50/100 (amber, declining); open: SUP-1 x."),
        "{}",
        w.text
    );
}

pub(crate) fn period(b: &Brief) -> PeriodStats {
    let day = |d: i64| b.as_of.checked_sub(tam_core::SignedDuration::from_hours(24 * d)).unwrap();
    PeriodStats {
        from: day(90),
        to: b.as_of,
        opened: 7,
        resolved: vec![TicketFacts {
            id: TicketId::parse("id", "SUP-0").unwrap(),
            priority: Priority::P2,
            status: TicketStatus::Resolved,
            subject: "Exports slow".into(),
            age_hours: 60.0,
        }],
        mean_hours_to_resolve: Some(60.0),
        history: vec![
            ScorePoint { as_of: day(80), score: 90 },
            ScorePoint { as_of: day(40), score: 75 },
            ScorePoint { as_of: day(0), score: 50 },
        ],
    }
}

#[test]
fn check_ins_summarise_health_open_items_and_what_improved() {
    let mut b = brief("SSO login fails");
    b.kind = CommKind::HealthCheckin;
    b.period = Some(period(&b));
    let w = TemplateWriter::new().write(&b).unwrap();
    assert!(w.text.contains("Health: 50/100 (amber, declining), down 40 since 90."), "{}", w.text);
    assert!(w.text.contains("we resolved 1 issue in 2.5 days on average:\n  - SUP-0 (P2): Exports slow"), "{}", w.text);
    assert!(w.text.contains("Open items (1):\n  - SUP-1 (P1, open 9 days): SSO login fails"), "{}", w.text);
    assert!(w.images.is_empty() && !w.html.contains("cid:"), "only the review carries the chart");
}

#[test]
fn reviews_chart_the_period_and_count_tickets() {
    let mut b = brief("SSO login fails");
    b.kind = CommKind::CustomerSuccessReview;
    b.period = Some(period(&b));
    b.profile.features = vec!["api".into()];
    let w = TemplateWriter::new().write(&b).unwrap();
    assert!(
        w.text.contains("Support: 7 ticket(s) opened, 1 resolved, 2.5 days to resolve on average; 1 open now."),
        "{}",
        w.text
    );
    assert!(w.text.contains("lowest 50, highest 90"), "{}", w.text);
    assert!(w.text.contains("Scores over the period: 2026-01-08: 90, 2026-02-17: 75, 2026-03-29: 50."), "{}", w.text);
    assert!(w.text.contains("Health score: 50/100 today (amber, declining)"), "{}", w.text);
    assert!(w.text.contains("Open now:\n  - SUP-1 (P1, open 9 days): SSO login fails"), "{}", w.text);
    assert!(w.text.contains("1. Review the open P1/P2 issues together"), "{}", w.text);
    // Mail clients draw no SVG: the chart is a PNG the message carries, shown by Content-ID.
    assert!(!w.html.contains("<svg"), "{}", w.html);
    assert!(
        w.html.contains(
            "<img src=\"cid:health-chart\" alt=\"Health score from Dec 29, 2025 to Mar 29, 2026: 90 to 50; \
             lines at 70 (green) and 40 (red)\" width=\"560\" height=\"200\""
        ),
        "{}",
        w.html
    );
    assert_eq!(w.images.len(), 1);
    assert_eq!(w.images[0].name(), "health-chart");
    assert!(w.images[0].bytes().starts_with(b"\x89PNG\r\n\x1a\n"));
    let draft = CustomerDraft::new(&b, w.clone(), IdemKey::from_stored("review:acme:1".to_owned()));
    let content_id = format!("health-chart.{}@tam.local", draft.digest());
    assert!(draft.html().contains(&format!("<img src=\"cid:{content_id}\"")), "{}", draft.html());
    let message = tam_core::mime::render(&draft, b.as_of);
    assert!(message.contains(&format!("Content-ID: <{content_id}>\r\n")), "{message}");
    assert!(w.html.contains("Scores over the period: 2026-01-08: 90 · 2026-02-17: 75 · 2026-03-29: 50"), "{}", w.html);
}
