use tam_core::comms::{Brief, CommKind, TicketFacts};
use tam_core::escalation::Reason;
use tam_core::scoring::{self, AccountSignals, ScoringConfig, TicketSignal};
use tam_core::{AccountId, Email, Priority, TenantId, TicketId, TicketStatus, Timestamp, Trend};

use super::*;

fn brief(subject: &str) -> Brief {
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
        kind: CommKind::EscalationOutreach,
        tenant: TenantId::parse("t", "acme").unwrap(),
        account: AccountId::parse("a", "northwind").unwrap(),
        account_name: "Northwind".into(),
        contacts: vec![Email::parse("c", "ops@northwind.example").unwrap()],
        rep_name: "Ana Ruiz".into(),
        rep_email: Email::parse("r", "ana@vendor.example").unwrap(),
        as_of,
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
        alert_cause: None,
    }
}

#[test]
fn outreach_names_the_tickets_the_silence_and_the_rep() {
    let b = brief("SSO login fails");
    assert_eq!((b.score, b.status.as_str()), (50, "amber"), "one aged P1 and nine days of silence");
    let w = TemplateWriter::new().write(&b).unwrap();
    assert_eq!(w.subject, "Northwind: getting ahead of 1 open issue(s)");
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
    assert_eq!(w.subject, "Northwind: our plan for your 1 urgent open issue(s)");
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
fn kinds_without_a_template_say_so() {
    let mut b = brief("x");
    b.kind = CommKind::ReleaseNotes;
    assert_eq!(TemplateWriter::new().write(&b).unwrap_err().0, "no template for release_notes yet");
}
