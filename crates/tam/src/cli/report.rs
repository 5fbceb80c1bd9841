//! `tam report drafts`: what reps made of the drafts, per communication kind and writer.

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
}

pub fn run(home: &Home, command: ReportCommand) -> Result<Outcome> {
    let ReportCommand::Drafts { tenant, since, json } = command;
    let (store, _) = home.open()?;
    let since = match since {
        Some(day) => day.to_zoned_datetime(jiff::tz::TimeZone::UTC)?.timestamp(),
        None => tam_app::now().checked_sub(jiff::SignedDuration::from_hours(24 * DEFAULT_DAYS))?,
    };
    let tenants = crate::cli::scan::select_tenants(&store, tenant.as_deref())?;
    let reports = tenants.iter().map(|t| tam_app::fates::report(&store, t, since)).collect::<Result<Vec<_>, _>>()?;
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
