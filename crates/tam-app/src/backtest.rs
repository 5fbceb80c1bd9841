//! `tam backtest`: the tenant's daily scan replayed at 07:00 in its zone over its stored
//! tickets and heartbeats, for its current rules and each set of a grid, and each set's
//! alerts judged against the escalations that really happened. Reads the store once; writes
//! nothing.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use tam_core::backtest::{Judging, Report, RuleSet, alert_days, judge};
use tam_core::escalation::EscalationConfig;
use tam_core::scoring::ScoringConfig;
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::{Store, StoreError};

/// How far before the window the replay may start: from the tenant's first ticket or
/// heartbeat, up to this many days before `from`, so that the episodes open when the window
/// begins are open in it, alerted when they really were (a first scan would otherwise alert on
/// every bad account, and an account amber since before it would never open one).
pub const LOOKBACK_DAYS: i64 = 365;

/// The longest window a backtest replays.
pub const MAX_WINDOW_DAYS: i64 = 3 * 366;

/// What to replay and how to judge it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The first day.
    pub from: Date,
    /// The last day (inclusive).
    pub to: Date,
    /// How far ahead an alert may foresee an escalation.
    pub horizon_days: u32,
    /// The sets besides the current rules, which are always reported first as `current`.
    pub grid: Vec<RuleSet>,
    /// The precision a set must reach to be suggested.
    pub min_precision: f64,
    /// The recall a set must reach to be suggested.
    pub min_recall: f64,
}

/// A backtest's findings, as `--json` prints them.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// The tenant.
    pub tenant_id: TenantId,
    /// The first day.
    pub from: Date,
    /// The last day.
    pub to: Date,
    /// The horizon.
    pub horizon_days: u32,
    /// Escalations that really happened in the window.
    pub real_escalations: u64,
    /// Each set, `current` first.
    pub sets: Vec<SetReport>,
    /// The set meeting both targets with the fewest alerts, if any does.
    pub suggested: Option<String>,
    /// The targets, `(precision, recall)`, for the picture.
    #[serde(skip)]
    pub targets: (f64, f64),
}

impl Backtest {
    /// The suggested set's findings, if a set is suggested.
    pub fn suggested_set(&self) -> Option<&SetReport> {
        let name = self.suggested.as_deref()?;
        self.sets.iter().find(|s| s.name == name)
    }
}

/// One set's findings.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// Its name.
    pub name: String,
    /// Its rules, whole.
    pub rules: Rules,
    /// Alerts (account-days with a new or worsened escalation).
    pub alerts: u64,
    /// Alerts followed by a real escalation within the horizon ÷ alerts.
    pub precision: Option<f64>,
    /// Real escalations with an alert within the horizon before them ÷ real escalations.
    pub recall: Option<f64>,
    /// Days from the first alert to each caught escalation.
    pub lead_days: Lead,
    /// Alerts per rep per week.
    pub alerts_per_rep_week: Option<f64>,
    /// Both targets reached.
    pub meets_targets: bool,
    /// Each caught escalation's lead, in days, sorted (for the histogram).
    #[serde(skip)]
    pub leads: Vec<f64>,
}

/// A set's rules, as `tam.toml` names them.
#[derive(Debug, Clone, Serialize)]
pub struct Rules {
    /// `[scoring]`.
    pub scoring: ScoringConfig,
    /// `[escalation]`.
    pub escalation: EscalationConfig,
}

/// Lead times' median and 90th percentile, in days.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Lead {
    /// The median.
    pub median: Option<f64>,
    /// The 90th percentile (interpolated between the nearest values).
    pub p90: Option<f64>,
}

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The window or horizon makes no sense.
    #[error("{0}")]
    Window(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A tenant's rules as the backtest reports them: the set `current`.
pub fn current_rules(scan: &tam_agent::scan::ScanConfig) -> RuleSet {
    RuleSet { name: "current".to_owned(), scoring: scan.scoring.clone(), escalation: scan.escalation.clone() }
}

impl Plan {
    /// A window with the default grid and the default targets (precision 0.7, recall 0.6).
    pub fn with_default_grid(from: Date, to: Date, horizon_days: u32, current: &RuleSet) -> Plan {
        Plan { from, to, horizon_days, grid: default_grid(current), min_precision: 0.7, min_recall: 0.6 }
    }
}

/// The grid tried when none is given: the red threshold (the score below which an account is
/// red and escalates) from 30 to 50 by 5, and the age at which an open P1/P2 counts against
/// the score from 48 to 120 hours by 24: 20 sets around the usual defaults.
pub fn default_grid(current: &RuleSet) -> Vec<RuleSet> {
    let mut grid = Vec::new();
    // A red threshold above green would make green accounts red: such sets are left out.
    for red in [30, 35, 40, 45, 50].into_iter().filter(|r| *r <= current.scoring.green_min_score) {
        for aged in [48, 72, 96, 120] {
            let mut set = current.clone();
            set.name = format!("red<{red},aged>{aged}h");
            set.scoring.amber_min_score = red;
            set.escalation.score_below = red;
            set.scoring.aged_p1_p2_after_hours = aged;
            grid.push(set);
        }
    }
    grid
}

/// Runs the backtest of `tenant` with its `current` rules and the plan's grid, in its `zone`;
/// `progress` hears how many sets are done.
///
/// Only scans that have happened are replayed: a window reaching past `now` ends at the last
/// 07:00 before it.
pub fn run(
    store: &Store,
    tenant: &TenantId,
    current: &RuleSet,
    zone: &TimeZone,
    plan: &Plan,
    now: Timestamp,
    progress: impl Fn(usize) + Sync,
) -> Result<Backtest, BacktestError> {
    let window = |e: jiff::Error| BacktestError::Window(e.to_string());
    if plan.to < plan.from {
        return Err(BacktestError::Window(format!("--to {} is before --from {}", plan.to, plan.from)));
    }
    if i64::from(plan.to.since(plan.from).map_err(window)?.get_days()) >= MAX_WINDOW_DAYS {
        return Err(BacktestError::Window(format!("the window is longer than {MAX_WINDOW_DAYS} days")));
    }
    if plan.horizon_days == 0 {
        return Err(BacktestError::Window("--horizon must be at least 1 day".to_owned()));
    }
    let at_seven = |d: Date| -> Result<Timestamp, BacktestError> {
        d.at(7, 0, 0, 0)
            .to_zoned_datetime(zone.clone())
            .map(|z| z.timestamp())
            .map_err(|e| BacktestError::Window(e.to_string()))
    };
    let midnight = |d: Date| -> Result<Timestamp, BacktestError> {
        d.to_zoned_datetime(zone.clone()).map(|z| z.timestamp()).map_err(|e| BacktestError::Window(e.to_string()))
    };
    let earliest = plan.from.checked_sub(jiff::Span::new().days(LOOKBACK_DAYS)).map_err(window)?;
    let mut days = Vec::new();
    let mut day = earliest;
    while day <= plan.to {
        let seven = at_seven(day)?;
        if seven > now {
            break;
        }
        days.push(seven);
        day = day.tomorrow().map_err(window)?;
    }
    let from_index = usize::try_from(plan.from.since(earliest).map_err(window)?.get_days()).unwrap_or(0);
    if days.len() <= from_index {
        return Err(BacktestError::Window(format!(
            "--from {} is in the future: no scan of it has happened",
            plan.from
        )));
    }
    let history = store.history(tenant, &days)?;
    // Days before the first ticket or heartbeat change nothing: the replay starts there.
    let first_data = history
        .accounts
        .iter()
        .flat_map(|a| a.tickets.first().map(|t| t.created_at).into_iter().chain(a.heartbeats.first().copied()))
        .min();
    let start = first_data.map_or(from_index, |t| days.partition_point(|d| *d < t).min(from_index));
    let days = days.split_off(start);
    let first_counted = from_index - start;

    let mut escalations = vec![Vec::new(); history.accounts.len()];
    for &(account, at) in &history.escalations {
        escalations[account].push(at);
    }
    // One rep, one person, however the address is written (as the alert budget counts them).
    let mut reps: Vec<String> = history.accounts.iter().map(|a| a.rep.to_lowercase()).collect();
    reps.sort_unstable();
    reps.dedup();
    let window_days = days.len() - first_counted;
    let judging = Judging {
        first_counted,
        from: midnight(plan.from)?,
        until: midnight(plan.to.tomorrow().map_err(window)?)?,
        horizon: SignedDuration::from_hours(i64::from(plan.horizon_days) * 24),
        reps: reps.len(),
        weeks: window_days as f64 / 7.0,
    };

    let mut sets: Vec<&RuleSet> = vec![current];
    sets.extend(&plan.grid);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let replay = |set: &RuleSet| -> Report {
        let mut alerts = Vec::with_capacity(history.accounts.len());
        for account in &history.accounts {
            let mut out = Vec::new();
            alert_days(account, &days, set, &mut out);
            alerts.push(out);
        }
        let report = judge(&alerts, &escalations, &days, &judging);
        progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
        report
    };
    let reports = tam_core::concurrent::map(&sets, threads(), |set| replay(set));

    let out: Vec<SetReport> = sets
        .iter()
        .zip(reports)
        .map(|(set, r)| SetReport {
            name: set.name.clone(),
            rules: Rules { scoring: set.scoring.clone(), escalation: set.escalation.clone() },
            alerts: r.alerts,
            meets_targets: r.precision.is_some_and(|p| p >= plan.min_precision)
                && r.recall.is_some_and(|x| x >= plan.min_recall),
            precision: r.precision,
            recall: r.recall,
            lead_days: Lead { median: r.lead_median, p90: r.lead_p90 },
            alerts_per_rep_week: r.alerts_per_rep_week,
            leads: r.lead_days,
        })
        .collect();
    let real = escalations.iter().flatten().filter(|&&at| at >= judging.from && at < judging.until).count();
    let suggested = out
        .iter()
        .filter(|s| s.meets_targets)
        .min_by(|a, b| {
            a.alerts.cmp(&b.alerts).then_with(|| b.precision.unwrap_or(0.0).total_cmp(&a.precision.unwrap_or(0.0)))
        })
        .map(|s| s.name.clone());
    Ok(Backtest {
        tenant_id: tenant.clone(),
        from: plan.from,
        to: plan.to,
        horizon_days: plan.horizon_days,
        real_escalations: real as u64,
        sets: out,
        suggested,
        targets: (plan.min_precision, plan.min_recall),
    })
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}

/// The `tam.toml` lines that make `set` the rules: the options where it differs from `current`,
/// in the tenant's own sections when it has them (`[tenants.<id>.scoring]`), else the global ones.
pub fn toml_lines(set: &Rules, current: &RuleSet, own: Option<&TenantId>) -> Vec<String> {
    let mut lines = Vec::new();
    let prefix = own.map_or_else(String::new, |t| format!("tenants.{}.", toml_key(t.as_str())));
    for (section, mine, theirs) in [
        ("scoring", to_map(&set.scoring), to_map(&current.scoring)),
        ("escalation", to_map(&set.escalation), to_map(&current.escalation)),
    ] {
        let changed: Vec<String> =
            mine.iter().filter(|(k, v)| theirs.get(*k) != Some(v)).map(|(k, v)| format!("{k} = {v}")).collect();
        if !changed.is_empty() {
            lines.push(format!("[{prefix}{section}]"));
            lines.extend(changed);
        }
    }
    lines
}

/// A tenant id as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(id: &str) -> String {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        id.to_owned()
    } else {
        format!("{:?}", id)
    }
}

fn to_map(value: &impl Serialize) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

/// The report as a picture: each set's recall (across) and precision (up), the current rules
/// marked and the suggested set ringed, beside the histogram of the lead times of the
/// suggested set (or the current rules'), a bar per day.
pub fn svg(r: &Backtest) -> String {
    const W: f64 = 300.0;
    const H: f64 = 240.0;
    const PAD: f64 = 40.0;
    let mut out = String::new();
    let mut add = |s: String| out.push_str(&s);
    add(format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">"#,
        w = 2.0 * (W + 2.0 * PAD),
        h = H + 2.0 * PAD
    ));
    add(format!(
        r#"<text x="{PAD}" y="16" font-size="13">{} · {} to {} · {} real escalations</text>"#,
        escape(r.tenant_id.as_str()),
        r.from,
        r.to,
        r.real_escalations
    ));
    // Precision against recall.
    let (x0, y0) = (PAD, PAD + H);
    add(format!(r##"<rect x="{PAD}" y="{PAD}" width="{W}" height="{H}" fill="none" stroke="#999"/>"##));
    add(format!(r#"<text x="{}" y="{}" text-anchor="middle">recall</text>"#, PAD + W / 2.0, y0 + 28.0));
    add(format!(
        r#"<text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">precision</text>"#,
        PAD + H / 2.0,
        PAD + H / 2.0
    ));
    for tick in [0.0, 0.5, 1.0] {
        add(format!(r#"<text x="{}" y="{}" text-anchor="middle">{tick}</text>"#, x0 + tick * W, y0 + 14.0));
        add(format!(r#"<text x="{}" y="{}" text-anchor="end">{tick}</text>"#, x0 - 4.0, y0 - tick * H + 4.0));
    }
    // The targets, dashed: the sets above and right of both meet them.
    let (min_p, min_r) = r.targets;
    add(format!(
        r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#1e8449" stroke-dasharray="4 3"/><line x1="{x:.1}" y1="{PAD}" x2="{x:.1}" y2="{y0}" stroke="#1e8449" stroke-dasharray="4 3"/>"##,
        x0 + W,
        y = y0 - min_p * H,
        x = x0 + min_r * W,
    ));
    for s in &r.sets {
        let (Some(p), Some(recall)) = (s.precision, s.recall) else { continue };
        let (x, y) = (x0 + recall * W, y0 - p * H);
        let current = s.name == "current";
        let colour = if current {
            "#c0392b"
        } else if s.meets_targets {
            "#1e8449"
        } else {
            "#555"
        };
        add(format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{}" fill="{colour}"><title>{}: precision {:.2}, recall {:.2}, {} alerts</title></circle>"#,
            if current { 6 } else { 4 },
            escape(&s.name),
            p,
            recall,
            s.alerts
        ));
        if r.suggested.as_deref() == Some(s.name.as_str()) {
            add(format!(r##"<circle cx="{x:.1}" cy="{y:.1}" r="9" fill="none" stroke="#1e8449" stroke-width="2"/>"##));
        }
        if current {
            add(format!(r#"<text x="{:.1}" y="{:.1}">current</text>"#, x + 8.0, y - 6.0));
        }
    }
    // Lead times.
    // The suggested set's, else the current rules' (reported first).
    let set = r.suggested_set().or(r.sets.first());
    let shown = set.map_or("current", |s| s.name.as_str());
    let leads = set.map(|s| s.leads.as_slice()).unwrap_or_default();
    let bins = r.horizon_days.max(1) as usize;
    let mut counts = vec![0u32; bins];
    for &d in leads {
        counts[(d.floor().max(0.0) as usize).min(bins - 1)] += 1;
    }
    let most = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
    let left = 3.0 * PAD + W;
    add(format!(r##"<rect x="{left}" y="{PAD}" width="{W}" height="{H}" fill="none" stroke="#999"/>"##));
    add(format!(
        r#"<text x="{}" y="{}" text-anchor="middle">days of warning ({}), {} caught</text>"#,
        left + W / 2.0,
        y0 + 28.0,
        escape(shown),
        leads.len()
    ));
    let width = W / bins as f64;
    for tick in [0, bins / 2, bins] {
        add(format!(
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{tick}</text>"#,
            left + tick as f64 * width,
            y0 + 14.0
        ));
    }
    for (i, &n) in counts.iter().enumerate() {
        let h = f64::from(n) / most * (H - 10.0);
        add(format!(
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#2e86c1"><title>{i}-{} days: {n}</title></rect>"##,
            left + i as f64 * width + 1.0,
            y0 - h,
            (width - 2.0).max(1.0),
            i + 1
        ));
    }
    add("</svg>\n".to_owned());
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
