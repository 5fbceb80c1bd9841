//! `tam backtest`: how often the score's alerts came before a real escalation, for the
//! tenant's rules and a grid of others, and which set to use.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use jiff::civil::Date;
use serde::Deserialize;
use tam_app::backtest::{Backtest, Plan, default_grid, toml_lines};
use tam_core::backtest::RuleSet;
use tam_core::escalation::EscalationConfig;
use tam_core::scoring::ScoringConfig;

use crate::Outcome;
use crate::cli::progress::Progress;
use crate::cli::scan::one_tenant;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tenant (required when the home has several).
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
    /// The first day replayed (YYYY-MM-DD, in the tenant's time zone).
    #[arg(long, value_name = "DATE")]
    from: Date,
    /// The last day replayed (inclusive).
    #[arg(long, value_name = "DATE")]
    to: Date,
    /// How long before an escalation an alert counts as foreseeing it: `14d` or `14`.
    #[arg(long, default_value = "14d", value_name = "DAYS", value_parser = days)]
    horizon: u32,
    /// Rule sets to try (TOML: `[[set]]` with `name`, `[set.scoring]`, `[set.escalation]`);
    /// default: the red threshold and the aged-ticket age around their defaults.
    #[arg(long, value_name = "FILE")]
    grid: Option<PathBuf>,
    /// The precision a set must reach to be suggested.
    #[arg(long, default_value_t = 0.7, value_name = "RATIO")]
    min_precision: f64,
    /// The recall a set must reach to be suggested.
    #[arg(long, default_value_t = 0.6, value_name = "RATIO")]
    min_recall: f64,
    /// Write the precision/recall of every set and the lead times as an SVG picture.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn days(raw: &str) -> Result<u32, String> {
    let digits = raw.trim().strip_suffix('d').unwrap_or(raw.trim());
    match digits.parse::<u32>() {
        Ok(n) if (1..=365).contains(&n) => Ok(n),
        _ => Err(format!("{raw:?} is not a number of days from 1 to 365 (such as 14d)")),
    }
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let tenant = one_tenant(&store, args.tenant.as_deref())?;
    let rules = config.rules.scan(Some(&tenant));
    let current = tam_app::backtest::current_rules(rules);
    let grid = match &args.grid {
        Some(path) => read_grid(path, &current)?,
        None => default_grid(&current),
    };
    for (flag, value) in [("--min-precision", args.min_precision), ("--min-recall", args.min_recall)] {
        if !(0.0..=1.0).contains(&value) {
            bail!("{flag} {value}: a ratio from 0 to 1");
        }
    }
    let plan = Plan {
        from: args.from,
        to: args.to,
        horizon_days: args.horizon,
        grid,
        min_precision: args.min_precision,
        min_recall: args.min_recall,
    };
    let progress = Progress::new("replaying", plan.grid.len() as u64 + 1);
    let zone = config.rules.zone(&tenant);
    let now = tam_app::now();
    let report =
        tam_app::backtest::run(&store, &tenant, &current, zone, &plan, now, |done| progress.update(done as u64))?;
    progress.finish();
    if let Some(path) = &args.svg {
        std::fs::write(path, tam_app::backtest::svg(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&report)?)?;
        return Ok(Outcome::Done);
    }
    let own = config.rules.has_own(&tenant).then_some(&tenant);
    print(&mut out, &report, &current, &plan, own)?;
    Ok(Outcome::Done)
}

fn print(
    out: &mut impl Write,
    r: &Backtest,
    current: &RuleSet,
    plan: &Plan,
    own: Option<&tam_core::TenantId>,
) -> Result<()> {
    writeln!(
        out,
        "tenant {} · {} to {} · horizon {} days · {} real escalation(s)",
        r.tenant_id, r.from, r.to, r.horizon_days, r.real_escalations
    )?;
    if r.real_escalations == 0 {
        writeln!(
            out,
            "No real escalation in this window: recall and lead time cannot be measured, and every alert counts \
             against precision. Import escalations (\"record\": \"escalation\") or widen the window."
        )?;
    }
    let pct = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{:.0}%", x * 100.0));
    let days = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
    writeln!(
        out,
        "\n{:<22} {:>7} {:>9} {:>7} {:>11} {:>8} {:>15}  TARGETS",
        "SET", "ALERTS", "PRECISION", "RECALL", "LEAD MEDIAN", "LEAD P90", "PER REP-WEEK"
    )?;
    for s in &r.sets {
        writeln!(
            out,
            "{:<22} {:>7} {:>9} {:>7} {:>11} {:>8} {:>15}  {}",
            s.name,
            s.alerts,
            pct(s.precision),
            pct(s.recall),
            days(s.lead_days.median),
            days(s.lead_days.p90),
            s.alerts_per_rep_week.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}")),
            if s.meets_targets { "met" } else { "" },
        )?;
    }
    writeln!(out)?;
    let Some(set) = r.suggested_set() else {
        writeln!(
            out,
            "No set reaches precision {:.0}% and recall {:.0}%: try a wider grid (--grid) or other targets.",
            plan.min_precision * 100.0,
            plan.min_recall * 100.0
        )?;
        return Ok(());
    };
    let name = &set.name;
    if name == "current" {
        writeln!(out, "Suggested: keep the current rules (they meet the targets with the fewest alerts).")?;
        return Ok(());
    }
    writeln!(out, "Suggested: {name} (meets the targets with the fewest alerts). In tam.toml:\n")?;
    for line in toml_lines(&set.rules, current, own) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// A grid file: `[[set]]` entries whose `[set.scoring]` and `[set.escalation]` change the
/// tenant's current rules option by option.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridFile {
    set: Vec<GridSet>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GridSet {
    name: String,
    #[serde(default)]
    scoring: toml::Table,
    #[serde(default)]
    escalation: toml::Table,
}

fn read_grid(path: &PathBuf, current: &RuleSet) -> Result<Vec<RuleSet>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file: GridFile = toml::from_str(&text).with_context(|| format!("{}: not a grid file", path.display()))?;
    let mut sets: Vec<RuleSet> = Vec::new();
    for entry in file.set {
        let name = entry.name.trim().to_owned();
        let at = || format!("{}: set {name:?}", path.display());
        if name.is_empty() || name == "current" || sets.iter().any(|s| s.name == name) {
            bail!("{}: a set's name must be given, unique and not \"current\"", at());
        }
        let scoring: ScoringConfig =
            overlay(&current.scoring, entry.scoring).with_context(|| format!("{}: [set.scoring]", at()))?;
        let escalation: EscalationConfig =
            overlay(&current.escalation, entry.escalation).with_context(|| format!("{}: [set.escalation]", at()))?;
        scoring.validate().map_err(|e| anyhow::anyhow!("{}: scoring.{}: {}", at(), e.field, e.reason))?;
        escalation.validate(&scoring).map_err(|e| anyhow::anyhow!("{}: escalation.{}: {}", at(), e.field, e.reason))?;
        sets.push(RuleSet { name, scoring, escalation });
    }
    if sets.is_empty() {
        bail!("{}: no [[set]]", path.display());
    }
    Ok(sets)
}

/// `base` with the options `changes` names replaced; an unknown option, or a value of the
/// wrong kind, is an error naming it.
fn overlay<T: serde::Serialize + serde::de::DeserializeOwned>(base: &T, changes: toml::Table) -> Result<T> {
    let mut value = serde_json::to_value(base)?;
    for (option, change) in changes {
        if let Some(fields) = value.as_object_mut() {
            fields.insert(option.clone(), serde_json::to_value(change)?);
        }
        // Checked option by option, so the error names the one at fault.
        serde_json::from_value::<T>(value.clone()).with_context(|| option.clone())?;
    }
    Ok(serde_json::from_value(value)?)
}
