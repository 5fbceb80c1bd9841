//! `tam explain ACCOUNT`: the latest breakdown in plain words, and the score history.

use std::io::Write;

use anyhow::{Result, bail};
use tam_app::views;
use tam_core::{AccountId, TenantId};

use crate::Outcome;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The account id.
    account: String,

    /// The tenant, when the same account id exists in several.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,

    /// Print JSON.
    #[arg(long)]
    json: bool,

    /// Snapshots of history to show.
    #[arg(long, default_value_t = 30, value_name = "N")]
    history: usize,
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let account = AccountId::parse("account", &args.account).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = resolve_tenant(&store, &account, args.tenant.as_deref())?;
    let escalation = &config.rules.scan(Some(&tenant)).escalation;
    let view = views::explanation(&store, &tenant, &account, args.history, escalation)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
        return Ok(Outcome::Done);
    }
    let latest = &view.latest;
    writeln!(out, "{} ({}) · tenant {} · rep {} <{}>", view.name, account, tenant, view.rep_name, view.rep_email)?;
    writeln!(out, "score {}/100, {}, trend {} · as of {}", latest.score, latest.status, latest.trend, latest.as_of)?;
    writeln!(out)?;
    if latest.explanation.is_empty() {
        writeln!(
            out,
            "Nothing was deducted: no aged P1/P2 tickets, no more than the free open tickets, no heartbeat silence."
        )?;
    } else {
        writeln!(out, "Why:")?;
        for (d, line) in latest.deductions.iter().zip(&latest.explanation) {
            writeln!(out, "  -{:<3} {line}", d.points)?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", escalation_line(latest))?;
    writeln!(out, "Alert budget of {}: {}.", view.rep_email, view.alert_budget.words())?;
    let closed = view.episodes.iter().filter(|e| e.closed_at.is_some()).count();
    if closed > 0 {
        writeln!(out, "Earlier escalations: {closed} (see --json for each).")?;
    }
    writeln!(out)?;
    writeln!(out, "History ({} scans, oldest to newest {}):", view.history.len(), sparkline(&view.history))?;
    for s in &view.history {
        writeln!(out, "  {}  {:>3}  {:<5}  {}", s.as_of, s.score, s.status, s.trend)?;
    }
    Ok(Outcome::Done)
}

/// The tenant an account command means: `--tenant`, or the one tenant that has the account.
pub fn resolve_tenant(store: &tam_store::Store, account: &AccountId, flag: Option<&str>) -> Result<TenantId> {
    if let Some(raw) = flag {
        return TenantId::parse("tenant", raw).map_err(|e| anyhow::anyhow!("--tenant: {e}"));
    }
    let mut found = store.tenants_with_account(account)?;
    match found.len() {
        0 => bail!("no account \"{account}\" in any tenant"),
        1 => Ok(found.remove(0)),
        _ => bail!(
            "account \"{account}\" exists in several tenants ({}); pass --tenant",
            found.iter().map(TenantId::as_str).collect::<Vec<_>>().join(", ")
        ),
    }
}

fn escalation_line(s: &views::Latest) -> String {
    match (s.episode_opened_at, s.escalation_reason) {
        (Some(opened), Some(reason)) => {
            let alert = match (s.alert, s.alert_cause) {
                (Some(d), Some(c)) => format!("; this scan alerted the rep ({c}, {d})"),
                _ => "; no new alert from this scan (episode already alerted)".to_owned(),
            };
            format!("Escalated since {opened} ({reason}){alert}.")
        }
        _ => "Not escalated.".to_owned(),
    }
}

fn sparkline(history: &[views::Point]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    history.iter().rev().map(|s| BARS[usize::from(s.score.min(100)) * 7 / 100]).collect()
}
