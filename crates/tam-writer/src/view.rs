//! What templates see: the brief, plus the few derived values templates should not compute.

use serde::Serialize;
use tam_core::HealthStatus;
use tam_core::comms::{Brief, CommKind, PeriodStats, TicketFacts};
use tam_core::scoring::Evidence;
use tam_core::url::TicketLinks;

/// One open ticket, ready to print.
#[derive(Debug, Serialize)]
pub struct TicketLine {
    pub id: String,
    /// The ticket's page, when `[tickets] url` says where tickets live.
    pub link: Option<String>,
    pub priority: &'static str,
    pub subject: String,
    pub days_open: String,
    pub urgent: bool,
}

/// A change or roadmap item, with why it matters to this account.
#[derive(Debug, Serialize)]
pub struct ItemLine {
    pub title: String,
    pub description: String,
    pub when: String,
    /// Why this account cares, or empty.
    pub because: String,
}

/// Period figures for check-ins and reviews.
#[derive(Debug, Serialize)]
pub struct PeriodView {
    pub days: i64,
    pub opened: u32,
    pub resolved: Vec<TicketLine>,
    /// "1 issue", "3 issues".
    pub resolved_phrase: String,
    pub mean_days_to_resolve: Option<String>,
    pub score_then: Option<u8>,
    pub delta: Option<i64>,
    /// The `<img>` of the score chart, an image the message carries (see [`crate::chart`]).
    pub chart_tag: String,
    /// The same scores as text (`2026-03-01: 80`), for readers who do not load images.
    pub points: Vec<String>,
    pub low: Option<u8>,
    pub high: Option<u8>,
}

impl TicketLine {
    fn new(t: &TicketFacts, links: Option<&TicketLinks>) -> TicketLine {
        TicketLine {
            id: t.id.to_string(),
            link: links.map(|l| l.url(t.id.as_str())),
            priority: t.priority.as_str(),
            subject: t.subject.clone(),
            days_open: days((t.age_hours / 2.4).round() / 10.0),
            urgent: matches!(t.priority, tam_core::Priority::P1 | tam_core::Priority::P2),
        }
    }
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
    /// "1 urgent issue", "2 urgent issues".
    pub urgent_phrase: String,
    /// Hours without a heartbeat, when that costs points.
    pub silent_hours: Option<String>,
    pub last_heartbeat: Option<String>,
    pub as_of: String,
    pub kind: &'static str,
    pub release_version: String,
    pub release_date: String,
    /// Release changes that fix this account's tickets, then those in areas it uses, then the rest.
    pub for_you: Vec<ItemLine>,
    pub in_use: Vec<ItemLine>,
    pub other: Vec<ItemLine>,
    pub period: Option<PeriodView>,
    pub features: Vec<String>,
    pub integrations: Vec<String>,
    pub opportunities: Vec<String>,
    pub recommendations: Vec<String>,
}

impl View {
    pub fn new(b: &Brief, links: Option<&TicketLinks>) -> View {
        let tickets: Vec<TicketLine> = b.open_tickets.iter().map(|t| TicketLine::new(t, links)).collect();
        let urgent_count = tickets.iter().filter(|t| t.urgent).count();
        let silence = b.deductions.iter().find_map(|d| match &d.evidence {
            Evidence::Silence { last_heartbeat, hours_silent, .. } => Some((*hours_silent, last_heartbeat.to_string())),
            _ => None,
        });
        let red = b.status == HealthStatus::Red;
        let (for_you, in_use, other) = release_lines(b);
        let (rel_in_use, rel_other) = roadmap_lines(b);
        let period = b.period.as_ref().map(|p| period_view(p, links));
        let subject = match b.kind {
            CommKind::EscalationOutreach => match (red, urgent_count) {
                (true, n) if n > 0 => format!("{}: our plan for your {}", b.account_name, plural(n, "urgent issue")),
                (true, _) => format!("{}: restoring your integration's health", b.account_name),
                (false, _) if !tickets.is_empty() => {
                    format!("{}: getting ahead of {}", b.account_name, plural(tickets.len(), "open issue"))
                }
                (false, _) => format!("{}: a quick check on your integration", b.account_name),
            },
            CommKind::ReleaseNotes => {
                let version = b.release.as_ref().map_or("", |r| r.version.as_str());
                if for_you.is_empty() {
                    format!("What's new in {version} for {}", b.account_name)
                } else {
                    format!("{version} fixes {} you reported, {}", plural(for_you.len(), "issue"), b.account_name)
                }
            }
            CommKind::RoadmapPreview => format!("{}: what's coming that matters to you", b.account_name),
            CommKind::HealthCheckin => format!("{}: your monthly technical check-in", b.account_name),
            CommKind::CustomerSuccessReview => format!("{}: your Customer Success Review", b.account_name),
        };
        let recommendations = recommendations(b, &tickets);
        let (in_use_items, other_items) = match b.kind {
            CommKind::RoadmapPreview => (rel_in_use, rel_other),
            _ => (in_use, other),
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
            urgent_phrase: plural(urgent_count, "urgent issue"),
            silent_hours: silence.as_ref().map(|s| number(s.0)),
            last_heartbeat: silence.map(|s| s.1),
            as_of: b.as_of.strftime("%Y-%m-%d").to_string(),
            kind: b.kind.as_str(),
            release_version: b.release.as_ref().map(|r| r.version.clone()).unwrap_or_default(),
            release_date: b.release.as_ref().map(|r| r.date.clone()).unwrap_or_default(),
            for_you,
            in_use: in_use_items,
            other: other_items,
            period,
            features: b.profile.features.clone(),
            integrations: b.profile.integrations.clone(),
            opportunities: b.profile.opportunities.clone(),
            recommendations,
        }
    }
}

fn matches_area(area: &str, names: &[String]) -> Option<String> {
    let area = area.trim().to_lowercase();
    if area.is_empty() {
        return None;
    }
    // Whole names only, singular or plural: "api" is not "rapid", "webhook" is "webhooks".
    let stem = |s: &str| s.trim().to_lowercase().trim_end_matches('s').replace(['-', '_', ' '], "");
    names.iter().find(|n| stem(n) == stem(&area)).cloned()
}

/// Release changes split three ways: fixes for tickets this account reported, changes in areas
/// it uses, everything else.
fn release_lines(b: &Brief) -> (Vec<ItemLine>, Vec<ItemLine>, Vec<ItemLine>) {
    let (mut for_you, mut in_use, mut other) = (Vec::new(), Vec::new(), Vec::new());
    let Some(release) = &b.release else { return (for_you, in_use, other) };
    for c in &release.changes {
        let mine: Vec<String> = c
            .tickets
            .iter()
            .filter_map(|id| b.reported.iter().find(|t| t.id.as_str() == id.as_str()))
            .map(|t| format!("{}: {}", t.id, t.subject))
            .collect();
        let line = |because: String| ItemLine {
            title: c.title.clone(),
            description: c.description.clone(),
            when: String::new(),
            because,
        };
        if !mine.is_empty() {
            for_you.push(line(format!("fixes what you reported: {}", mine.join("; "))));
        } else if let Some(feature) =
            matches_area(&c.area, &b.profile.features).or_else(|| matches_area(&c.area, &b.profile.integrations))
        {
            in_use.push(line(format!("you use {feature}")));
        } else {
            other.push(line(String::new()));
        }
    }
    (for_you, in_use, other)
}

/// Roadmap items tied to the account's integrations, features and opportunities first.
fn roadmap_lines(b: &Brief) -> (Vec<ItemLine>, Vec<ItemLine>) {
    let (mut relevant, mut other) = (Vec::new(), Vec::new());
    for item in &b.roadmap {
        let because = matches_area(&item.area, &b.profile.integrations)
            .map(|i| format!("builds on your {i} integration"))
            .or_else(|| matches_area(&item.area, &b.profile.features).map(|f| format!("extends {f}, which you use")))
            .or_else(|| {
                b.profile
                    .opportunities
                    .iter()
                    .find(|o| {
                        let area = item.area.to_lowercase();
                        !area.is_empty() && o.to_lowercase().contains(&area)
                    })
                    .map(|o| format!("answers your request \"{o}\""))
            });
        let line = ItemLine {
            title: item.title.clone(),
            description: item.description.clone(),
            when: item.quarter.clone(),
            because: because.clone().unwrap_or_default(),
        };
        if because.is_some() { relevant.push(line) } else { other.push(line) }
    }
    (relevant, other)
}

fn period_view(p: &PeriodStats, links: Option<&TicketLinks>) -> PeriodView {
    let first = p.history.first().map(|h| h.score);
    let last = p.history.last().map(|h| h.score);
    PeriodView {
        days: p.to.duration_since(p.from).as_hours() / 24,
        opened: p.opened,
        resolved_phrase: plural(p.resolved.len(), "issue"),
        resolved: p.resolved.iter().map(|t| TicketLine::new(t, links)).collect(),
        mean_days_to_resolve: p.mean_hours_to_resolve.map(|h| number((h / 2.4).round() / 10.0)),
        score_then: first,
        delta: first.zip(last).map(|(a, b)| i64::from(b) - i64::from(a)),
        chart_tag: chart_tag(p),
        points: p.history.iter().map(|h| format!("{}: {}", h.as_of.strftime("%Y-%m-%d"), h.score)).collect(),
        low: p.history.iter().map(|h| h.score).min(),
        high: p.history.iter().map(|h| h.score).max(),
    }
}

/// How the HTML shows the period's chart: `<img src="cid:health-chart">` of a fixed size (the
/// draft turns `cid:NAME` into the image's Content-ID), whose alt text says what it shows for
/// a reader whose client does not load images. Built from numbers and dates only.
pub fn chart_tag(p: &PeriodStats) -> String {
    let dates = format!("{} to {}", p.from.strftime("%b %d, %Y"), p.to.strftime("%b %d, %Y"));
    let scores = p.history.first().zip(p.history.last());
    let alt = match scores {
        Some((a, b)) => {
            format!("Health score from {dates}: {} to {}; lines at 70 (green) and 40 (red)", a.score, b.score)
        }
        None => format!("Health score from {dates}: no scans"),
    };
    format!(
        r#"<img src="cid:{}" alt="{alt}" width="{}" height="{}" style="display: block; max-width: 100%; height: auto; border: 0;">"#,
        crate::chart::CID,
        crate::chart::WIDTH,
        crate::chart::HEIGHT,
    )
}

fn recommendations(b: &Brief, tickets: &[TicketLine]) -> Vec<String> {
    let mut out = Vec::new();
    if tickets.iter().any(|t| t.urgent) {
        out.push("Review the open P1/P2 issues together and agree on dates for each.".to_owned());
    }
    if tickets.len() > 5 {
        out.push("Hold a ticket triage session: more than five issues are open at once.".to_owned());
    }
    if b.deductions.iter().any(|d| matches!(d.evidence, Evidence::Silence { .. })) {
        out.push("Restore the integration's heartbeat so we can see problems before you do.".to_owned());
    }
    if b.profile.features.is_empty() && b.profile.integrations.is_empty() {
        out.push("Walk us through how you use the product, so we can recommend what fits.".to_owned());
    }
    if let Some(o) = b.profile.opportunities.first() {
        out.push(format!("Explore your request \"{o}\" with our product team as a co-development project."));
    }
    if out.is_empty() {
        out.push("Keep the current cadence: your integration is healthy.".to_owned());
    }
    out
}

/// `1 issue`, `2 issues`.
pub fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// `1 day`, `9 days`, `4.5 days`.
fn days(n: f64) -> String {
    if n == 1.0 { "1 day".to_owned() } else { format!("{} days", number(n)) }
}

/// `9` rather than `9.0`, `4.5` as it is: numbers as a person writes them.
fn number(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.1}") }
}
