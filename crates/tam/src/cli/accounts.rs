//! `tam accounts` and `tam tickets`: a tenant's accounts worst first, an account's open tickets.

use std::io::Write;

use anyhow::Result;
use tam_app::views;
use tam_core::AccountId;
use tam_store::HealthFilter;

use crate::Outcome;
use crate::cli::scan::one_tenant;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct AccountsArgs {
    /// The tenant (required when the home has several).
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Only accounts with this latest status.
    #[arg(long, value_parser = ["green", "amber", "red"])]
    status: Option<String>,
    /// Only this rep's accounts.
    #[arg(long, value_name = "EMAIL")]
    rep: Option<String>,
    /// Only escalated accounts (`true`) or only the others (`false`).
    #[arg(long, value_name = "BOOL")]
    escalated: Option<bool>,
    /// At most this many (default 100, as MCP's list_accounts).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000), conflicts_with = "all")]
    limit: Option<u32>,
    /// Every account the filters keep.
    #[arg(long)]
    all: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn accounts(home: &Home, args: AccountsArgs) -> Result<Outcome> {
    let (store, _) = home.open()?;
    let tenant = one_tenant(&store, args.tenant.as_deref())?;
    let limit = match (args.all, args.limit) {
        (true, _) => None,
        (false, limit) => Some(limit.map_or(views::ACCOUNTS_SHOWN, |n| n as usize)),
    };
    let filter = HealthFilter { status: args.status, rep_email: args.rep, escalated: args.escalated, limit };
    let view = views::accounts(&store, &tenant, &filter)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
        return Ok(Outcome::Done);
    }
    writeln!(out, "{:<16}  {:<28}  {:>5}  {:<6}  {:<9}  ESCALATED", "ACCOUNT", "NAME", "SCORE", "STATUS", "TREND")?;
    for a in &view.accounts {
        let score = a.score.map_or_else(|| "-".to_owned(), |s| s.to_string());
        let escalated = if a.escalated { a.escalation_reason.as_deref().unwrap_or("yes") } else { "" };
        writeln!(
            out,
            "{:<16}  {:<28}  {score:>5}  {:<6}  {:<9}  {escalated}",
            a.account_id,
            a.name,
            a.status.as_deref().unwrap_or("-"),
            a.trend.as_deref().unwrap_or("-"),
        )?;
    }
    writeln!(out, "{} account(s), tenant {tenant}", view.accounts.len())?;
    Ok(Outcome::Done)
}

#[derive(Debug, clap::Args)]
pub struct TicketsArgs {
    /// The account id.
    account: String,
    /// The tenant, when the same account id exists in several.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn tickets(home: &Home, args: TicketsArgs) -> Result<Outcome> {
    let (store, _) = home.open()?;
    let account = AccountId::parse("account", &args.account).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = crate::cli::explain::resolve_tenant(&store, &account, args.tenant.as_deref())?;
    let view = views::open_tickets(&store, &tenant, &account)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
        return Ok(Outcome::Done);
    }
    for t in &view.tickets {
        writeln!(out, "{:<14}  {}  {:<7}  {}  {}", t.id, t.priority, t.status.as_str(), t.created_at, t.subject)?;
    }
    writeln!(out, "{} open ticket(s) for {account}, tenant {tenant}", view.tickets.len())?;
    Ok(Outcome::Done)
}
