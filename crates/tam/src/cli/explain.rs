//! `tam explain ACCOUNT`: the latest breakdown in plain words, and the score history.

use std::io::Write;

use anyhow::{Result, bail};
use serde_json::json;
use tam_core::scoring::Deduction;
use tam_core::{AccountId, TenantId};
use tam_store::StoredSnapshot;

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
    let (store, _) = home.open()?;
    let account = AccountId::parse("account", &args.account).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = resolve_tenant(&store, &account, args.tenant.as_deref())?;
    let Some(row) = store.account(&tenant, &account)? else {
        bail!("no account \"{account}\" in tenant \"{tenant}\"");
    };
    let history = store.snapshots(&tenant, &account, args.history.max(1))?;
    let Some(latest) = history.first() else {
        bail!("account \"{account}\" has not been scanned yet; run `tam scan --tenant {tenant}`");
    };
    let lines: Vec<String> = latest.deductions.iter().map(Deduction::explain).collect();
    let episodes = store.episodes(&tenant, &account)?;
    let mut out = std::io::stdout().lock();

    if args.json {
        let value = json!({
            "tenant_id": tenant.as_str(),
            "account_id": account.as_str(),
            "name": row.name,
            "rep_name": row.rep_name,
            "rep_email": row.rep_email,
            "latest": {
                "as_of": latest.as_of,
                "score": latest.score,
                "status": latest.status.as_str(),
                "trend": latest.trend.as_str(),
                "deductions": latest.deductions,
                "explanation": lines,
                "escalate": latest.episode_opened_at.is_some(),
                "escalation_reason": latest.trigger.or(latest.episode_reason).map(|r| r.as_str()),
                "episode_opened_at": latest.episode_opened_at,
                "alert": latest.delivery.map(|d| d.as_str()),
                "alert_cause": latest.alert_cause.map(|c| c.as_str()),
            },
            "episodes": episodes.iter().map(|e| json!({
                "opened_at": e.opened_at, "reason": e.reason, "last_alert_at": e.last_alert_at, "closed_at": e.closed_at,
            })).collect::<Vec<_>>(),
            "history": history.iter().map(|s| json!({
                "as_of": s.as_of, "score": s.score, "status": s.status.as_str(), "trend": s.trend.as_str(),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{value}")?;
        return Ok(Outcome::Done);
    }

    writeln!(out, "{} ({}) · tenant {} · rep {} <{}>", row.name, account, tenant, row.rep_name, row.rep_email)?;
    writeln!(out, "score {}/100, {}, trend {} · as of {}", latest.score, latest.status, latest.trend, latest.as_of)?;
    writeln!(out)?;
    if lines.is_empty() {
        writeln!(
            out,
            "Nothing was deducted: no aged P1/P2 tickets, no more than the free open tickets, no heartbeat silence."
        )?;
    } else {
        writeln!(out, "Why:")?;
        for (d, line) in latest.deductions.iter().zip(&lines) {
            writeln!(out, "  -{:<3} {line}", d.points)?;
        }
    }
    writeln!(out)?;
    writeln!(out, "{}", escalation_line(latest))?;
    let closed = episodes.iter().filter(|e| e.closed_at.is_some()).count();
    if closed > 0 {
        writeln!(out, "Earlier escalations: {closed} (see --json for each).")?;
    }
    writeln!(out)?;
    writeln!(out, "History ({} scans, oldest to newest {}):", history.len(), sparkline(&history))?;
    for s in &history {
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

fn escalation_line(s: &StoredSnapshot) -> String {
    match (s.episode_opened_at, s.trigger.or(s.episode_reason)) {
        (Some(opened), Some(reason)) => {
            let alert = match (s.delivery, s.alert_cause) {
                (Some(d), Some(c)) => format!("; this scan alerted the rep ({}, {})", c.as_str(), d.as_str()),
                _ => "; no new alert from this scan (episode already alerted)".to_owned(),
            };
            format!("Escalated since {opened} ({}){alert}.", reason.as_str())
        }
        _ => "Not escalated.".to_owned(),
    }
}

fn sparkline(history: &[StoredSnapshot]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    history.iter().rev().map(|s| BARS[usize::from(s.score.min(100)) * 7 / 100]).collect()
}
