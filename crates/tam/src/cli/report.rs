//! `tam report drafts`: what reps made of the drafts, per communication kind and writer.
//! `tam report alerts`: what reps said of their alerts, per escalation reason and per rep.

use std::io::Write;

use anyhow::Result;
use jiff::civil::Date;
use tam_core::Timestamp;

use crate::Outcome;
use crate::home::Home;

/// Days a report looks back by default.
const DEFAULT_DAYS: i64 = 90;

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Drafts saved, per kind and writer: how many were sent as written, sent edited, deleted or
    /// are still drafts, and the acceptance rate (sent ÷ decided).
    Drafts {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Drafts saved since this day (UTC); default: the last 90 days.
        #[arg(long, value_name = "DATE")]
        since: Option<Date>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Alerts' feedback ("useful" / "not useful" from the links each alert carries), per
    /// escalation reason and per rep.
    Alerts {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Votes cast since this day (UTC); default: the last 90 days.
        #[arg(long, value_name = "DATE")]
        since: Option<Date>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(home: &Home, command: ReportCommand) -> Result<Outcome> {
    match command {
        ReportCommand::Drafts { tenant, since, json } => drafts(home, tenant.as_deref(), since, json),
        ReportCommand::Alerts { tenant, since, json } => alerts(home, tenant.as_deref(), since, json),
    }
}

/// The instant a `--since` day starts (UTC), or 90 days ago.
fn start(since: Option<Date>) -> Result<Timestamp> {
    Ok(match since {
        Some(day) => day.to_zoned_datetime(jiff::tz::TimeZone::UTC)?.timestamp(),
        None => tam_app::now().checked_sub(jiff::SignedDuration::from_hours(24 * DEFAULT_DAYS))?,
    })
}

/// One report per tenant asked for (all of them without `--tenant`), from `since`.
fn each_tenant<T>(
    home: &Home,
    tenant: Option<&str>,
    since: Option<Date>,
    report: impl Fn(&tam_store::Store, &tam_core::TenantId, Timestamp) -> Result<T, tam_store::StoreError>,
) -> Result<Vec<T>> {
    let (store, _) = home.open()?;
    let since = start(since)?;
    let tenants = crate::cli::scan::select_tenants(&store, tenant)?;
    Ok(tenants.iter().map(|t| report(&store, t, since)).collect::<Result<Vec<_>, _>>()?)
}

fn alerts(home: &Home, tenant: Option<&str>, since: Option<Date>, json: bool) -> Result<Outcome> {
    let reports = each_tenant(home, tenant, since, tam_app::feedback::report)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&reports)?)?;
        return Ok(Outcome::Done);
    }
    for r in &reports {
        writeln!(out, "{}: {} vote(s) on alerts since {}", r.tenant_id, r.votes, day(r.since))?;
        for (title, rows) in [("by escalation reason", &r.by_reason), ("by rep", &r.by_rep)] {
            if rows.is_empty() {
                continue;
            }
            writeln!(out, "  {title}:")?;
            writeln!(out, "    {:<32} {:>6} {:>10} {:>10}", "", "useful", "not useful", "usefulness")?;
            for u in rows.iter() {
                writeln!(
                    out,
                    "    {:<32} {:>6} {:>10} {:>10}",
                    u.by.replace('_', " "),
                    u.useful,
                    u.not_useful,
                    percent(u.usefulness)
                )?;
            }
        }
    }
    Ok(Outcome::Done)
}

fn drafts(home: &Home, tenant: Option<&str>, since: Option<Date>, json: bool) -> Result<Outcome> {
    let reports = each_tenant(home, tenant, since, tam_app::fates::report)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&reports)?)?;
        return Ok(Outcome::Done);
    }
    for r in &reports {
        writeln!(out, "{}: drafts saved since {}", r.tenant_id, day(r.since))?;
        if r.rows.is_empty() {
            writeln!(out, "  none")?;
        } else {
            writeln!(
                out,
                "  {:<24} {:<32} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7}",
                "kind", "writer", "drafts", "draft", "sent", "edited", "deleted", "unknown", "accepted", "changed"
            )?;
            for f in &r.rows {
                writeln!(
                    out,
                    "  {:<24} {:<32} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7} {:>8} {:>7}",
                    f.kind,
                    f.generator,
                    f.drafts,
                    f.still_draft,
                    f.sent_unchanged,
                    f.sent_edited,
                    f.deleted,
                    f.unknown,
                    percent(f.acceptance_rate),
                    percent(f.mean_changed)
                )?;
            }
        }
        if let Some(note) = &r.note {
            writeln!(out, "  ({note})")?;
        }
    }
    Ok(Outcome::Done)
}

fn day(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d").to_string()
}

/// `70%`, or `-` where there is nothing to divide by.
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.0}%", s * 100.0))
}
