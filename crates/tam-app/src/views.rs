//! What a reader is shown of the store: an account's explanation, score history, open tickets
//! and profile, the tenant's accounts, drafts and outbox. Each view is one typed answer that
//! the CLI prints with `--json` and the MCP server returns as is, so the two cannot drift.
//! Reads only: no view writes or sends anything.

use serde::Serialize;
use tam_core::scoring::Deduction;
use tam_core::{AccountId, HealthStatus, TenantId, Timestamp, Trend};
use tam_store::{
    AccountHealth, DraftRow, HealthFilter, OpenTicket, Opportunity, OutboxState, Store, StoreError, StoredSnapshot,
};

/// Why a view of one account has nothing to show.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// No such account in the tenant (or another tenant's: the same answer).
    #[error("no account \"{account}\" in tenant \"{tenant}\"")]
    NoAccount {
        /// The tenant asked.
        tenant: TenantId,
        /// The account asked for.
        account: AccountId,
    },
    /// The account exists but no scan has scored it.
    #[error("account \"{account}\" has not been scanned yet; run `tam scan --tenant {tenant}`")]
    NotScanned {
        /// The tenant.
        tenant: TenantId,
        /// The account.
        account: AccountId,
    },
    /// An argument that names nothing there is: which, and why.
    #[error("{field}: {reason}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Accounts a list shows unless asked for more: a book of 100,000 is not one answer.
pub const ACCOUNTS_SHOWN: usize = 100;

/// Drafts a list shows unless asked for more.
pub const DRAFTS_SHOWN: usize = 100;

/// `tam explain --json`: why an account has its score, its escalations and its history.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Account.
    pub account_id: AccountId,
    /// Customer name.
    pub name: String,
    /// The rep.
    pub rep_name: String,
    /// The rep's email.
    pub rep_email: String,
    /// The latest scan's verdict.
    pub latest: Latest,
    /// Escalation episodes, newest first.
    pub episodes: Vec<Episode>,
    /// Scans, newest first.
    pub history: Vec<Point>,
    /// The rep's individual alerts a scan, as of the latest scan: lowered when their feedback
    /// says most alerts were not useful and the tenant lets it (`adapt_alert_budget`).
    pub alert_budget: tam_core::feedback::AlertBudget,
}

/// The latest scan of an account, with the breakdown in points and in words.
#[derive(Debug, Clone, Serialize)]
pub struct Latest {
    /// When it was scored.
    pub as_of: Timestamp,
    /// 0..=100.
    pub score: u8,
    /// `green`, `amber` or `red`.
    pub status: HealthStatus,
    /// Against about a week earlier.
    pub trend: Trend,
    /// What each rule took, with its evidence.
    pub deductions: Vec<Deduction>,
    /// Each deduction in plain words.
    pub explanation: Vec<String>,
    /// In an escalation episode.
    pub escalate: bool,
    /// What it escalated on.
    pub escalation_reason: Option<&'static str>,
    /// When the episode opened.
    pub episode_opened_at: Option<Timestamp>,
    /// How the scan alerted the rep (`individual`, `digest`), when it did.
    pub alert: Option<&'static str>,
    /// Why it alerted (`new`, `worsened`, ...).
    pub alert_cause: Option<&'static str>,
}

/// One escalation episode.
#[derive(Debug, Clone, Serialize)]
pub struct Episode {
    /// When it opened.
    pub opened_at: Timestamp,
    /// On what.
    pub reason: String,
    /// Its last alert.
    pub last_alert_at: Timestamp,
    /// When it closed, if it has.
    pub closed_at: Option<Timestamp>,
}

/// One scan in an account's history.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// When.
    pub as_of: Timestamp,
    /// The score.
    pub score: u8,
    /// Its status.
    pub status: HealthStatus,
    /// Its trend.
    pub trend: Trend,
}

impl From<&StoredSnapshot> for Point {
    fn from(s: &StoredSnapshot) -> Point {
        Point { as_of: s.as_of, score: s.score, status: s.status, trend: s.trend }
    }
}

/// `rep`'s individual alerts a scan at `as_of`, by the tenant's `escalation` rules and the rep's
/// votes of the window before it.
pub fn alert_budget(
    store: &Store,
    tenant: &TenantId,
    rep: &tam_core::Email,
    escalation: &tam_core::escalation::EscalationConfig,
    as_of: Timestamp,
) -> Result<tam_core::feedback::AlertBudget, StoreError> {
    let votes = store.votes_of_rep(tenant, rep, tam_core::feedback::adapt_window_start(as_of))?;
    Ok(tam_core::feedback::AlertBudget::of(escalation.alert_budget_per_rep, escalation.adapt_alert_budget, votes))
}

/// An account's explanation with its latest `history` scans (at least one).
pub fn explanation(
    store: &Store,
    tenant: &TenantId,
    account: &AccountId,
    history: usize,
    escalation: &tam_core::escalation::EscalationConfig,
) -> Result<Explanation, ViewError> {
    let row = known(store, tenant, account)?;
    let history = store.snapshots(tenant, account, history.max(1))?;
    let Some(latest) = history.first() else {
        return Err(ViewError::NotScanned { tenant: tenant.clone(), account: account.clone() });
    };
    let episodes = store.episodes(tenant, account)?;
    let alert_budget = alert_budget(store, tenant, &row.rep_email, escalation, latest.as_of)?;
    Ok(Explanation {
        alert_budget,
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        name: row.name,
        rep_name: row.rep_name,
        rep_email: row.rep_email.to_string(),
        latest: Latest {
            as_of: latest.as_of,
            score: latest.score,
            status: latest.status,
            trend: latest.trend,
            explanation: latest.deductions.iter().map(Deduction::explain).collect(),
            deductions: latest.deductions.clone(),
            escalate: latest.episode_opened_at.is_some(),
            escalation_reason: latest.trigger.or(latest.episode_reason).map(|r| r.as_str()),
            episode_opened_at: latest.episode_opened_at,
            alert: latest.delivery.map(|d| d.as_str()),
            alert_cause: latest.alert_cause.map(|c| c.as_str()),
        },
        episodes: episodes
            .into_iter()
            .map(|e| Episode {
                opened_at: e.opened_at,
                reason: e.reason,
                last_alert_at: e.last_alert_at,
                closed_at: e.closed_at,
            })
            .collect(),
        history: history.iter().map(Point::from).collect(),
    })
}

/// An account's scores, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreHistory {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Account.
    pub account_id: AccountId,
    /// Scans, newest first (as `tam explain --json` lists them).
    pub history: Vec<Point>,
}

/// The account's latest `limit` scores; empty before its first scan.
pub fn score_history(
    store: &Store,
    tenant: &TenantId,
    account: &AccountId,
    limit: usize,
) -> Result<ScoreHistory, ViewError> {
    known(store, tenant, account)?;
    let history = store.snapshots(tenant, account, limit.max(1))?;
    Ok(ScoreHistory {
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        history: history.iter().map(Point::from).collect(),
    })
}

/// An account's open tickets, most urgent and oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct OpenTickets {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Account.
    pub account_id: AccountId,
    /// The tickets.
    pub tickets: Vec<OpenTicket>,
}

/// The account's tickets open now.
pub fn open_tickets(store: &Store, tenant: &TenantId, account: &AccountId) -> Result<OpenTickets, ViewError> {
    known(store, tenant, account)?;
    Ok(OpenTickets {
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        tickets: store.open_tickets(tenant, account)?,
    })
}

/// `tam profile show --json`: an account's technical relationship profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// Tenant.
    pub tenant_id: TenantId,
    /// Account.
    pub account_id: AccountId,
    /// Customer name.
    pub name: String,
    /// People and their roles.
    pub stakeholders: Vec<serde_json::Value>,
    /// Integrations in use.
    pub integrations: Vec<serde_json::Value>,
    /// Product features in use.
    pub features: Vec<serde_json::Value>,
    /// Their technical environment.
    pub environment: Vec<serde_json::Value>,
    /// Drafts saved for the account, newest first.
    pub communications: Vec<ProfileCommunication>,
    /// The latest health, once scanned.
    pub health: Option<ProfileHealth>,
    /// Co-development opportunities.
    pub opportunities: Vec<Opportunity>,
    /// Every recorded change to the profile, oldest first.
    pub history: Vec<ProfileChange>,
}

/// A draft as the profile lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileCommunication {
    /// Communication kind.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// When it was saved.
    pub created_at: Timestamp,
    /// Where it was saved.
    pub path: String,
    /// `template` or the model.
    pub generator: String,
}

/// The profile's health line.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileHealth {
    /// Latest score.
    pub score: u8,
    /// Its status.
    pub status: HealthStatus,
    /// Its trend.
    pub trend: Trend,
    /// When it was scanned.
    pub last_scan: Timestamp,
}

/// One change to a profile fact.
#[derive(Debug, Clone, Serialize)]
pub struct ProfileChange {
    /// When.
    pub at: Timestamp,
    /// Which section.
    pub section: String,
    /// Which fact.
    pub key: String,
    /// Its value before, if any.
    pub old: Option<serde_json::Value>,
    /// Its value after.
    pub new: serde_json::Value,
    /// Who said so.
    pub source: String,
}

/// An account's relationship profile.
pub fn profile(store: &Store, tenant: &TenantId, account: &AccountId) -> Result<Profile, ViewError> {
    let row = known(store, tenant, account)?;
    let facts = store.facts(tenant, account)?;
    let section = |name: &str| facts.iter().filter(|f| f.section == name).map(|f| f.value.clone()).collect();
    let drafts = store.drafts_where(tenant, Some(account), None, None)?;
    let latest = store.snapshots(tenant, account, 1)?.into_iter().next();
    Ok(Profile {
        tenant_id: tenant.clone(),
        account_id: account.clone(),
        name: row.name,
        stakeholders: section("stakeholders"),
        integrations: section("integrations"),
        features: section("features"),
        environment: section("environment"),
        communications: drafts
            .into_iter()
            .map(|d| ProfileCommunication {
                kind: d.kind,
                subject: d.subject,
                created_at: d.created_at,
                path: d.path,
                generator: d.generator,
            })
            .collect(),
        health: latest.map(|s| ProfileHealth { score: s.score, status: s.status, trend: s.trend, last_scan: s.as_of }),
        opportunities: store.opportunities(tenant, account)?,
        history: store
            .fact_changes(tenant, account)?
            .into_iter()
            .map(|c| ProfileChange {
                at: c.at,
                section: c.section,
                key: c.key,
                old: c.old,
                new: c.new,
                source: c.source,
            })
            .collect(),
    })
}

/// The tenant's accounts that a filter keeps, worst first.
#[derive(Debug, Clone, Serialize)]
pub struct Accounts {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The accounts, with their latest health and escalation.
    pub accounts: Vec<AccountHealth>,
}

/// The tenant's accounts, worst first. A status that is none, or a rep's address that is not
/// one, is an error naming it (it would otherwise list nothing, silently).
pub fn accounts(store: &Store, tenant: &TenantId, filter: &HealthFilter) -> Result<Accounts, ViewError> {
    if let Some(status) = &filter.status
        && HealthStatus::parse(status).is_none()
    {
        let reason = format!("{status:?} is not a status; the statuses are green, amber and red");
        return Err(ViewError::Invalid { field: "status", reason });
    }
    if let Some(rep) = &filter.rep_email {
        tam_core::Email::parse("rep_email", rep)
            .map_err(|e| ViewError::Invalid { field: "rep_email", reason: e.reason })?;
    }
    Ok(Accounts { tenant_id: tenant.clone(), accounts: store.account_health(tenant, filter)? })
}

/// The tenant's drafts, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct Drafts {
    /// Tenant.
    pub tenant_id: TenantId,
    /// The drafts (never sent: each waits in its rep's mailbox).
    pub drafts: Vec<DraftRow>,
}

/// The tenant's newest drafts, at most `limit`: one account's only, one kind only, when
/// asked. An unknown account or kind is an error, not an empty list, so a mistyped one does not
/// read as "no drafts".
pub fn drafts(
    store: &Store,
    tenant: &TenantId,
    account: Option<&AccountId>,
    kind: Option<&str>,
    limit: Option<usize>,
) -> Result<Drafts, ViewError> {
    if let Some(account) = account {
        known(store, tenant, account)?;
    }
    if let Some(kind) = kind {
        tam_core::comms::CommKind::parse(kind).map_err(|reason| ViewError::Invalid { field: "kind", reason })?;
    }
    Ok(Drafts { tenant_id: tenant.clone(), drafts: store.drafts_where(tenant, account, kind, limit)? })
}

/// Where the tenant's intended effects stand, by channel.
#[derive(Debug, Clone, Serialize)]
pub struct OutboxStatus {
    /// Tenant.
    pub tenant_id: TenantId,
    /// One line per channel that has effects, by name.
    pub channels: Vec<ChannelCounts>,
}

/// A channel's effects by state.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelCounts {
    /// The effect (`draft`, `alert`, `chat`, `event`, `crm`, `profile`, ...).
    pub channel: String,
    /// Waiting for their first or next attempt.
    pub pending: u64,
    /// Claimed by a dispatcher now.
    pub in_flight: u64,
    /// Delivered.
    pub delivered: u64,
    /// Given up on (`tam outbox retry` revives them).
    pub failed: u64,
}

/// The tenant's outbox, counted.
pub fn outbox_status(store: &Store, tenant: &TenantId) -> Result<OutboxStatus, ViewError> {
    let mut channels: Vec<ChannelCounts> = Vec::new();
    for (channel, state, n) in store.outbox_counts(tenant)? {
        if channels.last().is_none_or(|c| c.channel != channel) {
            channels.push(ChannelCounts { channel: channel.clone(), ..ChannelCounts::default() });
        }
        let Some(line) = channels.last_mut() else { continue };
        let count = match OutboxState::parse(&state) {
            Some(OutboxState::Pending) => &mut line.pending,
            Some(OutboxState::InFlight) => &mut line.in_flight,
            Some(OutboxState::Delivered) => &mut line.delivered,
            Some(OutboxState::Failed) => &mut line.failed,
            None => {
                return Err(ViewError::Store(StoreError::Corrupt {
                    table: "outbox",
                    key: channel,
                    field: "state",
                    reason: format!("{state:?} is not a state"),
                }));
            }
        };
        *count += n;
    }
    Ok(OutboxStatus { tenant_id: tenant.clone(), channels })
}

fn known(store: &Store, tenant: &TenantId, account: &AccountId) -> Result<tam_store::AccountRow, ViewError> {
    store
        .account(tenant, account)?
        .ok_or_else(|| ViewError::NoAccount { tenant: tenant.clone(), account: account.clone() })
}
