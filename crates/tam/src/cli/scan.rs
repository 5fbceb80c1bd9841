//! `tam scan`

use std::io::Write;

use anyhow::{Result, bail};
use serde::Serialize;
use tam_agent::scan::{AccountResult, ScanReport};
use tam_core::scoring::Deduction;
use tam_core::{TenantId, Timestamp};
use tam_store::{ScanSummary, Store};

use crate::Outcome;
use crate::cli::progress::Progress;
use crate::config::Config;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Scan only this tenant. Default: every tenant.
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,

    /// The instant to score at (RFC 3339). Default: now.
    #[arg(long, value_name = "RFC3339", value_parser = crate::cli::clock::parse_instant)]
    as_of: Option<Timestamp>,

    /// One JSON object per tenant instead of a table.
    #[arg(long)]
    json: bool,

    /// Score and decide, but store nothing.
    #[arg(long)]
    dry_run: bool,

    /// Store the scan and its outbox, but deliver nothing now (`tam outbox retry` delivers).
    #[arg(long)]
    no_dispatch: bool,

    /// Score what is stored: do not pull the `[notion]` tenant's changes from Notion first.
    #[arg(long)]
    no_sync: bool,

    /// Table rows to print, worst first.
    #[arg(long, default_value_t = 40, value_name = "N")]
    limit: usize,

    /// Print every account in the table.
    #[arg(long, conflicts_with = "limit")]
    all: bool,
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (mut store, config) = home.open()?;
    // Notion mode: the tenant's accounts and tickets live in Notion, so the scan reads what
    // changed there first (before choosing tenants: the first pull creates the tenant).
    let notion = crate::clients::sources::notion_tenant(&config).map(str::to_owned);
    let pulled = match &notion {
        Some(t) if !args.dry_run && !args.no_sync && args.tenant.as_deref().is_none_or(|a| a == t) => {
            let pulled = crate::cli::sync::pull(&mut store, &config, false)?;
            pulled.warn();
            Some(pulled)
        }
        _ => None,
    };
    let mut partial = pulled.as_ref().is_some_and(|p| !p.report.rejected.is_empty());
    let tenants = select_tenants(&store, args.tenant.as_deref())?;
    let as_of = args.as_of.unwrap_or_else(tam_app::now);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // Channels are opened once the first scan is stored: scoring and storing never depend on a
    // channel's credentials. If they cannot be opened, the effects wait in the outbox, each
    // saying why, and the scan is a partial success.
    let mut channels: Option<Result<tam_app::channels::AppChannels, String>> = None;
    for (i, tenant) in tenants.iter().enumerate() {
        let report = scan_tenant(&mut store, &config, tenant, as_of, args.dry_run)?;
        let dispatched = if args.dry_run || args.no_dispatch {
            None
        } else {
            match channels.get_or_insert_with(|| crate::clients::open(home, &config).map_err(|e| format!("{e:#}"))) {
                Ok(channels) => Some(channels.dispatch(&mut store, tenant, &config.rules)?),
                Err(why) => {
                    let why = format!("not delivered: the channels could not be opened: {why}");
                    crate::warn(format_args!("tenant {tenant}: {why}; the effects wait in the outbox"));
                    store.note_waiting(tenant, &why)?;
                    partial = true;
                    None
                }
            }
        };
        partial |= !report.failed.is_empty() || dispatched.as_ref().is_some_and(|d| d.failed > 0);
        for f in &report.failed {
            crate::warn(format_args!("tenant {tenant}: {f}"));
        }
        if args.json {
            let mut json = ScanJson::new(&report);
            json.notion = pulled.as_ref().filter(|p| p.tenant == *tenant).map(tam_app::sync::notion::Pulled::json);
            json.dispatch = dispatched.as_ref().map(|d| DispatchJson {
                delivered: d.delivered,
                retried: d.retried,
                failed: d.failed,
            });
            serde_json::to_writer(&mut out, &json)?;
            writeln!(out)?;
        } else {
            if i > 0 {
                writeln!(out)?;
            }
            write_table(&mut out, &report, if args.all { usize::MAX } else { args.limit })?;
            if let Some(d) = &dispatched {
                writeln!(
                    out,
                    "\ndelivered {} effect(s) (drafts, CRM, events, alerts); {} to retry, {} failed · `tam outbox list`",
                    d.delivered, d.retried, d.failed
                )?;
            }
        }
        // Freeing a large book's results one by one takes a tenth of a second: another thread
        // does it while this one goes on (or the process ends, which frees them at once).
        std::thread::spawn(move || drop(report));
    }
    out.flush()?;
    Ok(if partial { Outcome::Partial } else { Outcome::Done })
}

pub fn select_tenants(store: &Store, only: Option<&str>) -> Result<Vec<TenantId>> {
    let all = store.tenant_ids()?;
    match only {
        Some(raw) => {
            let tenant = TenantId::parse("tenant", raw).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            if !all.contains(&tenant) {
                bail!("no tenant \"{tenant}\" (known: {})", names(&all));
            }
            Ok(vec![tenant])
        }
        None if all.is_empty() => bail!("no tenants yet: import accounts first (tam import FILE) or run tam demo"),
        None => Ok(all),
    }
}

/// The one tenant a command is for: `--tenant`, or the home's only tenant.
pub fn one_tenant(store: &Store, only: Option<&str>) -> Result<TenantId> {
    let mut tenants = select_tenants(store, only)?;
    if tenants.len() > 1 {
        bail!("this home has several tenants ({}); pass --tenant", names(&tenants));
    }
    Ok(tenants.remove(0))
}

fn names(tenants: &[TenantId]) -> String {
    if tenants.is_empty() {
        return "none".to_owned();
    }
    tenants.iter().map(TenantId::as_str).collect::<Vec<_>>().join(", ")
}

/// [`tam_app::scan::scan_tenant`], with a progress bar on a terminal.
pub fn scan_tenant(
    store: &mut Store,
    config: &Config,
    tenant: &TenantId,
    as_of: Timestamp,
    dry_run: bool,
) -> Result<ScanReport> {
    let total = if Progress::shown() { store.account_count(tenant)? } else { 0 };
    let progress = Progress::new(format!("scanning {tenant}"), total);
    let report =
        tam_app::scan::scan_tenant(store, &config.rules, tenant, as_of, dry_run, |done| progress.update(done))?;
    progress.finish();
    Ok(report)
}

/// The `--json` shape; a stable interface.
#[derive(Serialize)]
pub struct ScanJson<'a> {
    tenant_id: &'a str,
    as_of: Timestamp,
    dry_run: bool,
    accounts: Vec<AccountJson<'a>>,
    digests: Vec<DigestJson<'a>>,
    errors: Vec<ErrorJson>,
    summary: &'a ScanSummary,
    /// What the dispatcher delivered right after the scan; null with `--no-dispatch` or `--dry-run`.
    dispatch: Option<DispatchJson>,
    /// What was pulled from Notion before the scan (the `[notion]` tenant only).
    #[serde(skip_serializing_if = "Option::is_none")]
    notion: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct DispatchJson {
    delivered: u64,
    retried: u64,
    failed: u64,
}

#[derive(Serialize)]
struct AccountJson<'a> {
    account_id: &'a str,
    name: &'a str,
    rep_email: &'a str,
    score: u8,
    status: &'static str,
    deductions: &'a [Deduction],
    trend: &'static str,
    escalate: bool,
    escalation_reason: Option<&'static str>,
    alert: Option<&'static str>,
    alert_cause: Option<&'static str>,
}

#[derive(Serialize)]
struct DigestJson<'a> {
    rep_email: &'a str,
    account_ids: Vec<&'a str>,
}

#[derive(Serialize)]
struct ErrorJson {
    account_id: String,
    error: String,
}

impl<'a> ScanJson<'a> {
    pub fn new(r: &'a ScanReport) -> ScanJson<'a> {
        ScanJson {
            tenant_id: r.tenant.as_str(),
            as_of: r.as_of,
            dry_run: !r.stored,
            accounts: r.accounts.iter().map(AccountJson::new).collect(),
            digests: r
                .digests
                .iter()
                .map(|(rep, ids)| DigestJson { rep_email: rep, account_ids: ids.iter().map(|a| a.as_str()).collect() })
                .collect(),
            errors: r
                .failed
                .iter()
                .map(|f| ErrorJson { account_id: f.account.clone(), error: f.error.to_string() })
                .collect(),
            summary: &r.summary,
            dispatch: None,
            notion: None,
        }
    }
}

impl<'a> AccountJson<'a> {
    fn new(a: &'a AccountResult) -> AccountJson<'a> {
        AccountJson {
            account_id: a.account.as_str(),
            name: &a.name,
            rep_email: &a.rep_email,
            score: a.health.score,
            status: a.health.status.as_str(),
            deductions: &a.health.deductions,
            trend: a.trend.as_str(),
            escalate: a.decision.escalated(),
            escalation_reason: a.decision.reason().map(|r| r.as_str()),
            alert: a.delivery.map(|d| d.as_str()),
            alert_cause: a.decision.alert.map(|c| c.as_str()),
        }
    }
}

pub fn write_table(out: &mut impl Write, r: &ScanReport, limit: usize) -> Result<()> {
    let s = &r.summary;
    writeln!(
        out,
        "tenant {} · as of {}{} · {} accounts: {} green, {} amber, {} red",
        r.tenant,
        r.as_of,
        if r.stored { "" } else { " (dry run, nothing stored)" },
        s.accounts,
        s.green,
        s.amber,
        s.red
    )?;
    writeln!(
        out,
        "escalated {} ({} new, {} recovered) · alerts: {} individual, {} in {} digest(s){}",
        s.escalated,
        s.new_escalations,
        s.recovered,
        s.individual_alerts,
        s.digest_accounts,
        s.digests,
        if s.failed > 0 { format!(" · {} not scanned or not alerted (see stderr)", s.failed) } else { String::new() }
    )?;
    if r.accounts.is_empty() {
        return Ok(());
    }
    let rows: Vec<[String; 7]> = r
        .accounts
        .iter()
        .take(limit)
        .map(|a| {
            let why: Vec<String> =
                a.health.deductions.iter().map(|d| format!("{} -{}", d.rule.as_str(), d.points)).collect();
            [
                a.health.score.to_string(),
                a.health.status.as_str().to_owned(),
                a.trend.as_str().to_owned(),
                truncate(&format!("{} ({})", a.name, a.account), 44),
                a.decision.reason().map_or("", |r| r.as_str()).to_owned(),
                a.delivery.map_or("", |d| d.as_str()).to_owned(),
                why.join(", "),
            ]
        })
        .collect();
    let header = ["SCORE", "STATUS", "TREND", "ACCOUNT", "ESCALATION", "ALERT", "DEDUCTIONS"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    writeln!(out)?;
    write_row(out, &header.map(str::to_owned), &widths)?;
    for row in &rows {
        write_row(out, row, &widths)?;
    }
    if rows.len() < r.accounts.len() {
        writeln!(
            out,
            "... {} more accounts (--all shows every one, --json for machines)",
            r.accounts.len() - rows.len()
        )?;
    }
    Ok(())
}

fn write_row(out: &mut impl Write, cells: &[String; 7], widths: &[usize; 7]) -> Result<()> {
    let mut line = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        if i == 0 {
            line.push_str(&format!("{cell:>w$}"));
        } else if i == cells.len() - 1 {
            line.push_str(cell);
        } else {
            line.push_str(&format!("{cell:<w$}"));
        }
        line.push_str("  ");
    }
    writeln!(out, "{}", line.trim_end())?;
    Ok(())
}

pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut s: String = text.chars().take(max - 1).collect();
    s.push('…');
    s
}
