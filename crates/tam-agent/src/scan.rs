//! `tam scan`: one instant, every account of a tenant.
//!
//! Reads each account's inputs from the store, scores and decides with tam-core (pure), plans
//! the per-rep alert budget over the whole scan, then writes every snapshot and episode change
//! in one transaction. An account whose stored data cannot be read is reported and skipped.

use std::collections::BTreeMap;

use tam_core::alerts::{self, AlertRequest, Delivery};
use tam_core::escalation::{self, Decision, EscalationConfig, Previous};
use tam_core::scoring::{self, Health, Rule, ScoringConfig};
use tam_core::{AccountId, Email, HealthStatus, TenantId, Timestamp, Trend};
use tam_store::{AccountError, ScanInput, ScanSummary, ScanWindow, SnapshotRecord, Store, StoreError};

pub use crate::scanned::AccountResult;

/// The tenant's rules for one scan.
#[derive(Debug, Clone, Default)]
pub struct ScanConfig {
    /// Scoring thresholds, points and caps.
    pub scoring: ScoringConfig,
    /// Escalation triggers, cool-down and alert budget.
    pub escalation: EscalationConfig,
}

/// A scan's outcome.
#[derive(Debug)]
pub struct ScanReport {
    /// The tenant.
    pub tenant: TenantId,
    /// The single instant every account was scored at.
    pub as_of: Timestamp,
    /// Every scored account, worst score first, then by id.
    pub accounts: Vec<AccountResult>,
    /// One digest per rep that has more alerts than the budget: the accounts in it, worst first.
    pub digests: BTreeMap<String, Vec<AccountId>>,
    /// Accounts that could not be scanned, or scanned but not alerted (no usable rep address).
    pub failed: Vec<AccountError>,
    /// Counts.
    pub summary: ScanSummary,
    /// Whether the results were stored (false for a dry run).
    pub stored: bool,
}

/// Scores one account: the pure part of a scan.
pub fn assess(input: &ScanInput, as_of: Timestamp, cfg: &ScanConfig) -> (Health, Trend, Decision) {
    let health = scoring::score(&input.signals, as_of, &cfg.scoring);
    let baseline = scoring::trend_baseline(&input.trend_candidates, as_of, &cfg.scoring);
    let trend = scoring::trend(health.score, baseline, &cfg.scoring);
    let previous = input.previous.map(|p| Previous { status: p.status, episode: p.episode });
    let decision = escalation::decide(health.score, health.status, previous.as_ref(), as_of, &cfg.escalation);
    (health, trend, decision)
}

/// Scans every account of `tenant` at `as_of`. `progress` is called with the number of accounts
/// done so far, now and then. With `dry_run`, nothing is written.
pub fn scan(
    store: &mut Store,
    tenant: &TenantId,
    as_of: Timestamp,
    cfg: &ScanConfig,
    dry_run: bool,
    progress: impl FnMut(u64),
) -> Result<ScanReport, StoreError> {
    scan_some(store, tenant, None, as_of, cfg, dry_run, progress)
}

/// Re-scores one account at `as_of` (a webhook changed one of its tickets): its snapshot,
/// episode and effects are written as a scan would, in one transaction; the tenant's scan
/// list is left alone. Its alert, if any, is within its rep's budget.
pub fn rescore(
    store: &mut Store,
    tenant: &TenantId,
    account: &AccountId,
    as_of: Timestamp,
    cfg: &ScanConfig,
) -> Result<ScanReport, StoreError> {
    scan_some(store, tenant, Some(account), as_of, cfg, false, |_| {})
}

fn scan_some(
    store: &mut Store,
    tenant: &TenantId,
    only: Option<&AccountId>,
    as_of: Timestamp,
    cfg: &ScanConfig,
    dry_run: bool,
    mut progress: impl FnMut(u64),
) -> Result<ScanReport, StoreError> {
    let budgets = rep_budgets(store, tenant, as_of, &cfg.escalation)?;
    if !dry_run
        && only.is_none()
        && let Some(reader) = store.reader()?
    {
        return scan_pipelined(store, reader, tenant, as_of, cfg, &budgets, progress);
    }
    let window = scan_window(as_of, cfg);
    let mut accounts = Vec::new();
    let mut failed = Vec::new();
    let mut done = 0u64;
    let mut each = |input: Result<ScanInput, AccountError>| {
        match input {
            Ok(input) => accounts.push(account_result(input, as_of, cfg)),
            Err(e) => failed.push(e),
        }
        done += 1;
        if done.is_multiple_of(4_096) {
            progress(done);
        }
    };
    match only {
        Some(account) => store.scan_input_of(tenant, account, as_of, window, &mut each)?,
        None => store.for_each_scan_input(tenant, as_of, window, &mut each)?,
    }
    progress(done);

    let (digests, mut summary) = conclude(&mut accounts, &mut failed, cfg, &budgets);

    if !dry_run {
        let effects = crate::effects::plan(tenant, as_of, &accounts, digest_top(cfg));
        summary.effects = effects.len() as u64;
        let records = accounts.iter().map(record);
        store.save_scan(tenant, as_of, records, &effects, only.is_none().then_some(&summary))?;
    }
    Ok(ScanReport { tenant: tenant.clone(), as_of, accounts, digests, failed, summary, stored: !dry_run })
}

/// Accounts handed from the reading thread to the writing one at a time.
const CHUNK: usize = 2_048;

/// A stored scan on two cores: a second connection reads and scores the book on another thread
/// while this one writes each chunk's snapshots; once all are in, the alert budget decides who
/// is alerted how (their snapshots are told), the effects are planned, and one commit makes it
/// all visible. The same result as reading first and writing after, in about the time of the
/// writes alone.
fn scan_pipelined(
    store: &mut Store,
    reader: Store,
    tenant: &TenantId,
    as_of: Timestamp,
    cfg: &ScanConfig,
    budgets: &BTreeMap<Email, u32>,
    mut progress: impl FnMut(u64),
) -> Result<ScanReport, StoreError> {
    let window = scan_window(as_of, cfg);
    let mut accounts = Vec::new();
    let mut failed = Vec::new();
    let mut writer = store.scan_writer(tenant, as_of)?;
    std::thread::scope(|scope| -> Result<(), StoreError> {
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Result<AccountResult, AccountError>>>(4);
        let reading = scope.spawn(move || -> Result<(), StoreError> {
            let mut chunk = Vec::with_capacity(CHUNK);
            let mut open = true;
            reader.for_each_scan_input(tenant, as_of, window, |input| {
                if !open {
                    return;
                }
                chunk.push(input.map(|input| account_result(input, as_of, cfg)));
                if chunk.len() == CHUNK {
                    // The writer stopped (it failed): read no further.
                    open = send.send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_ok();
                }
            })?;
            if open && !chunk.is_empty() {
                let _ = send.send(chunk);
            }
            // The second connection closes here, on its own thread.
            drop(reader);
            Ok(())
        });
        let mut done = 0u64;
        for chunk in receive {
            let start = accounts.len();
            for result in chunk {
                match result {
                    Ok(a) => accounts.push(a),
                    Err(e) => failed.push(e),
                }
                done += 1;
            }
            writer.snapshots(accounts[start..].iter().map(record))?;
            progress(done);
        }
        reading.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;

    let (digests, mut summary) = conclude(&mut accounts, &mut failed, cfg, budgets);
    // The snapshots learn how their rep is told while the effects are planned beside them.
    let effects = std::thread::scope(|scope| -> Result<_, StoreError> {
        let scanned = &accounts;
        let planning = scope.spawn(move || crate::effects::plan(tenant, as_of, scanned, digest_top(cfg)));
        for a in scanned {
            if let Some(delivery) = a.delivery {
                writer.set_delivery(&a.account, delivery)?;
            }
        }
        Ok(planning.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })?;
    summary.effects = effects.len() as u64;
    writer.effects(&effects)?;
    // A book's effects take a while to free; nothing waits for that.
    std::thread::spawn(move || drop(effects));
    writer.commit(Some(&summary))?;
    Ok(ScanReport { tenant: tenant.clone(), as_of, accounts, digests, failed, summary, stored: true })
}

/// The book-wide part of a scan, once every account is scored: the alert budget (who is
/// alerted how, and the digests), the report's order (worst first) and the summary.
fn conclude(
    accounts: &mut [AccountResult],
    failed: &mut Vec<AccountError>,
    cfg: &ScanConfig,
    budgets: &BTreeMap<Email, u32>,
) -> (BTreeMap<String, Vec<AccountId>>, ScanSummary) {
    let budget = cfg.escalation.alert_budget_per_rep;
    let digests = plan_alerts(accounts, failed, |rep| budgets.get(rep).copied().unwrap_or(budget));
    // Worst first, then by id: the accounts come in id order, and this sort keeps the order of
    // equal scores (sorting by index, it moves each account once, not at each merge).
    accounts.sort_by_cached_key(|a| a.health.score);
    let summary = summarise(accounts, &digests, failed.len());
    (digests, summary)
}

/// What a scan at `as_of` reads besides each account's rows: the trend's baselines, and the
/// drafts of episodes old enough for a cool-down reminder (so planning reads nothing).
fn scan_window(as_of: Timestamp, cfg: &ScanConfig) -> ScanWindow {
    let (lo, _, hi) = scoring::trend_window(as_of, &cfg.scoring);
    let cool_down = tam_core::SignedDuration::from_hours(i64::from(cfg.escalation.cool_down_days) * 24);
    ScanWindow { trend: (lo, hi), reminders_from: as_of.checked_sub(cool_down).unwrap_or(as_of) }
}

fn digest_top(cfg: &ScanConfig) -> usize {
    usize::try_from(cfg.escalation.digest_top_accounts).unwrap_or(usize::MAX)
}

/// One account scored: the pure part of a scan, and whether its CRM fields change.
fn account_result(input: ScanInput, as_of: Timestamp, cfg: &ScanConfig) -> AccountResult {
    let (health, trend, decision) = assess(&input, as_of, cfg);
    let crm_changed = input.previous.is_none_or(|p| {
        (p.score, p.status, p.episode.is_some()) != (health.score, health.status, decision.escalated())
    });
    AccountResult {
        account: input.account,
        name: input.name,
        rep_name: input.rep_name,
        rep_email: input.rep_email,
        rep: input.rep,
        rep_chat_space: input.rep_chat_space,
        health,
        trend,
        decision,
        delivery: None,
        crm_changed,
        episode_draft: input.episode_draft,
    }
}

fn record(a: &AccountResult) -> SnapshotRecord<'_> {
    SnapshotRecord {
        account: &a.account,
        health: &a.health,
        trend: a.trend,
        decision: a.decision,
        delivery: a.delivery,
    }
}

/// Each rep's budget where their feedback lowered it (`adapt_alert_budget`): one read of the
/// tenant's votes of the last 30 days.
fn rep_budgets(
    store: &Store,
    tenant: &TenantId,
    as_of: Timestamp,
    escalation: &tam_core::escalation::EscalationConfig,
) -> Result<BTreeMap<Email, u32>, StoreError> {
    if !escalation.adapt_alert_budget {
        return Ok(BTreeMap::new());
    }
    let since = tam_core::feedback::adapt_window_start(as_of);
    let configured = escalation.alert_budget_per_rep;
    Ok(store
        .rep_votes(tenant, since)?
        .into_iter()
        .map(|(rep, votes)| (rep, tam_core::feedback::adapted_budget(configured, votes)))
        .filter(|(_, budget)| *budget != configured)
        .collect())
}

/// Applies each rep's budget to every account that wants an alert; returns the digests.
/// `accounts` are in id order, as the store reads them.
fn plan_alerts(
    accounts: &mut [AccountResult],
    failed: &mut Vec<AccountError>,
    budget_of: impl Fn(&Email) -> u32,
) -> BTreeMap<String, Vec<AccountId>> {
    let mut requests = Vec::new();
    for a in accounts.iter().filter(|a| a.decision.alert.is_some()) {
        // One budget per person, however the CRM capitalised the address.
        match &a.rep {
            Ok(rep) => {
                requests.push(AlertRequest { account: a.account.clone(), rep: rep.clone(), score: a.health.score })
            }
            // The account keeps its snapshot; without a usable rep address it cannot be
            // alerted, and that is reported rather than guessed around.
            Err(e) => failed.push(AccountError {
                account: a.account.to_string(),
                error: StoreError::Corrupt {
                    table: "accounts",
                    key: a.account.to_string(),
                    field: "rep_email",
                    reason: e.reason.clone(),
                },
            }),
        }
    }
    debug_assert!(accounts.is_sorted_by(|a, b| a.account < b.account), "accounts in id order");
    let plan = alerts::plan_by_rep(&requests, budget_of);
    // The accounts are in id order: each alerted one is found by a binary search, which costs
    // less than hashing every account of the book.
    for a in accounts.iter_mut() {
        a.delivery = None;
    }
    for rep_plan in plan.values() {
        let individual = rep_plan.individual.iter().map(|id| (id, Delivery::Individual));
        for (id, delivery) in individual.chain(rep_plan.digest.iter().map(|id| (id, Delivery::Digest))) {
            if let Ok(i) = accounts.binary_search_by(|a| a.account.cmp(id)) {
                accounts[i].delivery = Some(delivery);
            }
        }
    }
    plan.into_iter().filter(|(_, p)| !p.digest.is_empty()).map(|(rep, p)| (rep.as_str().to_owned(), p.digest)).collect()
}

fn summarise(accounts: &[AccountResult], digests: &BTreeMap<String, Vec<AccountId>>, failed: usize) -> ScanSummary {
    let mut s = ScanSummary { accounts: accounts.len() as u64, failed: failed as u64, ..ScanSummary::default() };
    // Counted by the rule's place among the rules: no string per account of the book.
    let mut by_rule = [0u64; Rule::ALL.len()];
    let mut alerts_by_rep: BTreeMap<String, tam_store::RepAlertCount> = BTreeMap::new();
    for a in accounts {
        match a.health.status {
            HealthStatus::Green => s.green += 1,
            HealthStatus::Amber => s.amber += 1,
            HealthStatus::Red => s.red += 1,
        }
        for d in &a.health.deductions {
            by_rule[d.rule as usize] += 1;
        }
        s.escalated += u64::from(a.decision.escalated());
        s.new_escalations += u64::from(a.decision.alert == Some(escalation::AlertCause::New));
        s.recovered += u64::from(a.decision.closed.is_some());
        match a.delivery {
            Some(Delivery::Individual) => s.individual_alerts += 1,
            Some(Delivery::Digest) => s.digest_accounts += 1,
            None => {}
        }
        if let (Some(delivery), Ok(rep)) = (a.delivery, &a.rep) {
            let count = alerts_by_rep.entry(rep.as_str().to_owned()).or_default();
            match delivery {
                Delivery::Individual => count.individual += 1,
                Delivery::Digest => count.digest += 1,
            }
        }
    }
    s.digests = digests.len() as u64;
    s.reasons =
        Some(Rule::ALL.iter().zip(by_rule).filter(|(_, n)| *n > 0).map(|(r, n)| (r.as_str().to_owned(), n)).collect());
    s.alerts_by_rep = Some(alerts_by_rep);
    s
}
