//! What templates see: the brief, plus the few derived values templates should not compute.

use serde::Serialize;
use tam_core::HealthStatus;
use tam_core::comms::Brief;
use tam_core::scoring::Evidence;

/// One open ticket, ready to print.
#[derive(Debug, Serialize)]
pub struct TicketLine {
    pub id: String,
    pub priority: &'static str,
    pub subject: String,
    pub days_open: String,
    pub urgent: bool,
}

#[derive(Debug, Serialize)]
pub struct View {
    pub subject: String,
    pub account_name: String,
    pub rep_name: String,
    pub rep_email: String,
    pub score: u8,
    pub status: &'static str,
    pub trend: &'static str,
    pub red: bool,
    pub tickets: Vec<TicketLine>,
    pub urgent_count: usize,
    /// Hours without a heartbeat, when that costs points.
    pub silent_hours: Option<String>,
    pub last_heartbeat: Option<String>,
    pub as_of: String,
}

impl View {
    pub fn new(b: &Brief) -> View {
        let tickets: Vec<TicketLine> = b
            .open_tickets
            .iter()
            .map(|t| TicketLine {
                id: t.id.to_string(),
                priority: t.priority.as_str(),
                subject: t.subject.clone(),
                days_open: number((t.age_hours / 2.4).round() / 10.0),
                urgent: matches!(t.priority, tam_core::Priority::P1 | tam_core::Priority::P2),
            })
            .collect();
        let urgent_count = tickets.iter().filter(|t| t.urgent).count();
        let silence = b.deductions.iter().find_map(|d| match &d.evidence {
            Evidence::Silence { last_heartbeat, hours_silent, .. } => Some((*hours_silent, last_heartbeat.to_string())),
            _ => None,
        });
        let red = b.status == HealthStatus::Red;
        let subject = match (red, urgent_count) {
            (true, n) if n > 0 => format!("{}: our plan for your {n} urgent open issue(s)", b.account_name),
            (true, _) => format!("{}: restoring your integration's health", b.account_name),
            (false, n) if n > 0 => format!("{}: getting ahead of {n} open issue(s)", b.account_name),
            (false, _) => format!("{}: a quick check on your integration", b.account_name),
        };
        View {
            subject,
            account_name: b.account_name.clone(),
            rep_name: b.rep_name.clone(),
            rep_email: b.rep_email.to_string(),
            score: b.score,
            status: b.status.as_str(),
            trend: b.trend.as_str(),
            red,
            tickets,
            urgent_count,
            silent_hours: silence.as_ref().map(|s| number(s.0)),
            last_heartbeat: silence.map(|s| s.1),
            as_of: b.as_of.strftime("%Y-%m-%d").to_string(),
        }
    }
}

/// `9` rather than `9.0`, `4.5` as it is: numbers as a person writes them.
fn number(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}
