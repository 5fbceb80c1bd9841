//! The seven task types (SPEC 5), routed by `type`. A task is JSON
//! `{"type", "tenant_id", "account_id"?, ...payload}`; its result is JSON.
//!
//! A malformed task (not an object, unknown type, missing tenant) is an error. A handler that
//! cannot finish returns the partial shape `{"error", "confidence": "low", "partial": true}`
//! with whatever it did manage, instead of failing its caller.

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tam_core::agent::TaskType;
use tam_core::comms::{Brief, CommKind, ReleaseInfo, RoadmapItem};
use tam_core::outbox::{DeliveryPolicy, EffectKind, IdemKey};
use tam_core::{AccountId, SignedDuration, TenantId, Timestamp};
use tam_store::{NewEffect, Store, StoreError};

use crate::dispatch::{Channels, dispatch};
use crate::profile::{MergeCounts, derive_adoption, opportunity_effect, surface_opportunities};
use crate::scan::{ScanConfig, scan};

/// Everything a task may touch.
pub struct TaskContext<'a, 'c> {
    /// The store.
    pub store: &'a mut Store,
    /// The channels drafts and events go out through.
    pub channels: &'a mut Channels<'c>,
    /// The scoring and escalation rules of a tenant.
    pub scan_config: &'a dyn Fn(&TenantId) -> ScanConfig,
    /// Delivery retries.
    pub retry: &'a DeliveryPolicy,
    /// The task's one clock reading.
    pub now: Timestamp,
    /// Dispatcher identity.
    pub worker: &'a str,
}

/// Why a task could not even start.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The JSON is not a task.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Puts the caller's `tenant` in a task that came from outside: a caller only runs its own
/// tenant's tasks. A task naming another tenant is refused; the `Err` is the tenant it names.
pub fn for_tenant(task: &mut serde_json::Map<String, Value>, tenant: &TenantId) -> Result<(), String> {
    match task.get("tenant_id").and_then(Value::as_str) {
        Some(other) if other != tenant.as_str() => Err(other.to_owned()),
        _ => {
            task.insert("tenant_id".into(), json!(tenant));
            Ok(())
        }
    }
}

/// One task, parsed: whom it is for and what to do. [`Task::parse`] reads the JSON a caller
/// sends; the scheduler builds its tasks directly.
#[derive(Debug, Clone)]
pub struct Task {
    /// The tenant.
    pub tenant: TenantId,
    /// The account, for a task about one.
    pub account: Option<AccountId>,
    /// The caller's `task_id`: a retried task drafts nothing twice.
    pub task_id: Field<String>,
    /// What to do, with its payload.
    pub work: Work,
    /// The task as it came: what a published profile is keyed by.
    text: String,
}

/// What a task does, by its `type`. Each payload field is a [`Field`]: one that does not
/// read makes the task a partial result naming the field, not a refused request.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Work {
    /// Score every account of the tenant now, or at `as_of`.
    HealthScan {
        /// The instant to score at.
        #[serde(default)]
        as_of: Field<Timestamp>,
        /// Score without storing.
        #[serde(default)]
        dry_run: Field<bool>,
    },
    /// Draft outreach for one account.
    EscalationOutreach,
    /// Draft release notes, for one account or every account.
    ReleaseNotes {
        /// `{version, date, changes[]}`.
        #[serde(default)]
        release_info: Field<ReleaseInfo>,
    },
    /// Draft a roadmap preview for one account.
    RoadmapPreview {
        /// `[{title, description, area, quarter}]`.
        #[serde(default)]
        roadmap_items: Field<Vec<RoadmapItem>>,
        /// The same, under its older name.
        #[serde(default)]
        roadmap: Field<Vec<RoadmapItem>>,
    },
    /// Draft a health check-in for one account.
    HealthCheckin {
        /// The days it looks back over (30).
        #[serde(default)]
        period_days: Field<i64>,
    },
    /// Draft a Customer Success Review for one account.
    CustomerSuccessReview {
        /// The days it looks back over (90).
        #[serde(default)]
        period_days: Field<i64>,
    },
    /// Merge facts into an account's relationship profile.
    UpdateRelationshipProfile(Box<ProfileUpdate>),
}

/// The facts an `update_relationship_profile` task merges.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProfileUpdate {
    #[serde(default)]
    stakeholders: Field<Vec<StakeholderIn>>,
    #[serde(default)]
    integrations: Field<Vec<Value>>,
    #[serde(default)]
    features: Field<Vec<Value>>,
    #[serde(default)]
    environment: Field<Vec<Value>>,
    #[serde(default)]
    opportunities: Field<Vec<OpportunityIn>>,
    #[serde(default)]
    derive_adoption: Field<bool>,
}

impl Work {
    /// Its `type`.
    pub fn kind(&self) -> TaskType {
        match self {
            Work::HealthScan { .. } => TaskType::HealthScan,
            Work::EscalationOutreach => TaskType::EscalationOutreach,
            Work::ReleaseNotes { .. } => TaskType::ReleaseNotes,
            Work::RoadmapPreview { .. } => TaskType::RoadmapPreview,
            Work::HealthCheckin { .. } => TaskType::HealthCheckin,
            Work::CustomerSuccessReview { .. } => TaskType::CustomerSuccessReview,
            Work::UpdateRelationshipProfile(_) => TaskType::UpdateRelationshipProfile,
        }
    }
}

/// A payload field: absent, a value of its type, or why what was sent is not one.
#[derive(Debug, Clone)]
pub struct Field<T>(Result<Option<T>, String>);

impl<T> Default for Field<T> {
    fn default() -> Field<T> {
        Field(Ok(None))
    }
}

impl<T> Field<T> {
    /// A field given `value`.
    pub fn given(value: T) -> Field<T> {
        Field(Ok(Some(value)))
    }

    /// Its value, or the partial result that names field `name`.
    fn get(self, name: &str) -> Result<Option<T>, Partial> {
        self.0.map_err(|e| fail(format!("field {name}: {e}")))
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Field<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Field<T>, D::Error> {
        Ok(Field(match Value::deserialize(d)? {
            Value::Null => Ok(None),
            v => serde_json::from_value(v).map(Some).map_err(|e| e.to_string()),
        }))
    }
}

#[derive(Deserialize)]
struct Common {
    #[serde(rename = "type")]
    kind: String,
    tenant_id: Option<String>,
    account_id: Option<String>,
    #[serde(default)]
    task_id: Field<String>,
}

impl Task {
    /// A task of `tenant` built in code (the scheduler's).
    pub fn new(tenant: TenantId, account: Option<AccountId>, work: Work) -> Task {
        let text = format!("{}/{}/{}", work.kind().as_str(), tenant, account.as_ref().map_or("", AccountId::as_str));
        Task { tenant, account, task_id: Field::default(), work, text }
    }

    /// This task, with `task_id` as the caller's id.
    pub fn with_task_id(mut self, task_id: impl Into<String>) -> Task {
        self.task_id = Field::given(task_id.into());
        self
    }

    /// Reads a task sent as JSON: `{"type", "tenant_id", "account_id"?, "task_id"?, ...payload}`.
    /// A task that is not one (not an object, an unknown type, no tenant) is refused; a payload
    /// field that does not read is left for the task to report.
    pub fn parse(task: &Value) -> Result<Task, TaskError> {
        if !task.is_object() {
            return Err(TaskError::Invalid("a task is a JSON object with a \"type\"".to_owned()));
        }
        let common: Common = serde_json::from_value(task.clone())
            .map_err(|e| TaskError::Invalid(format!("task: {e} (a task needs \"type\" and \"tenant_id\")")))?;
        TaskType::parse(&common.kind).map_err(TaskError::Invalid)?;
        let raw_tenant = common
            .tenant_id
            .ok_or_else(|| TaskError::Invalid("task: field tenant_id: missing (required)".to_owned()))?;
        let tenant = TenantId::parse("tenant_id", &raw_tenant).map_err(|e| TaskError::Invalid(format!("task: {e}")))?;
        let account = common
            .account_id
            .map(|a| AccountId::parse("account_id", &a))
            .transpose()
            .map_err(|e| TaskError::Invalid(format!("task: {e}")))?;
        let work: Work = serde_json::from_value(task.clone()).map_err(|e| TaskError::Invalid(format!("task: {e}")))?;
        Ok(Task { tenant, account, task_id: common.task_id, work, text: task.to_string() })
    }
}

/// Runs one task sent as JSON.
pub fn run(ctx: &mut TaskContext<'_, '_>, task: &Value) -> Result<Value, TaskError> {
    run_task(ctx, Task::parse(task)?)
}

/// Runs one task.
pub fn run_task(ctx: &mut TaskContext<'_, '_>, task: Task) -> Result<Value, TaskError> {
    let Task { tenant, account, task_id, work, text } = task;
    if !ctx.store.tenants()?.iter().any(|t| t.id == tenant) {
        return Err(TaskError::Invalid(format!("task: no tenant {:?}", tenant.as_str())));
    }
    let kind = work.kind();
    let outcome = match work {
        Work::HealthScan { as_of, dry_run } => health_scan(ctx, &tenant, as_of, dry_run),
        Work::UpdateRelationshipProfile(update) => {
            with_account(account.as_ref()).and_then(|a| update_profile(ctx, &tenant, a, *update, &text))
        }
        Work::ReleaseNotes { release_info } => release_notes(ctx, &tenant, account.as_ref(), release_info, task_id),
        Work::EscalationOutreach => {
            communication(ctx, &tenant, account.as_ref(), (CommKind::EscalationOutreach, Extra::None), task_id)
        }
        Work::RoadmapPreview { roadmap_items, roadmap } => {
            let extra = Extra::Roadmap { roadmap_items, roadmap };
            communication(ctx, &tenant, account.as_ref(), (CommKind::RoadmapPreview, extra), task_id)
        }
        Work::HealthCheckin { period_days } => {
            let extra = Extra::Period(period_days);
            communication(ctx, &tenant, account.as_ref(), (CommKind::HealthCheckin, extra), task_id)
        }
        Work::CustomerSuccessReview { period_days } => {
            let extra = Extra::Period(period_days);
            communication(ctx, &tenant, account.as_ref(), (CommKind::CustomerSuccessReview, extra), task_id)
        }
    };
    let mut result = match outcome {
        Ok(result) => result,
        Err(Partial { error, done }) => {
            let mut partial = json!({"error": error, "confidence": "low", "partial": true});
            if let (Some(p), Value::Object(done)) = (partial.as_object_mut(), done) {
                p.extend(done);
            }
            partial
        }
    };
    if let Some(r) = result.as_object_mut() {
        r.insert("type".to_owned(), json!(kind.as_str()));
        r.insert("tenant_id".to_owned(), json!(tenant));
        if let Some(a) = &account {
            r.insert("account_id".to_owned(), json!(a));
        }
    }
    Ok(result)
}

/// A handler that stopped: why, and what it finished before.
struct Partial {
    error: String,
    done: Value,
}

impl From<StoreError> for Partial {
    fn from(e: StoreError) -> Partial {
        Partial { error: e.to_string(), done: json!({}) }
    }
}

fn fail(error: impl Into<String>) -> Partial {
    Partial { error: error.into(), done: json!({}) }
}

fn with_account(account: Option<&AccountId>) -> Result<&AccountId, Partial> {
    account.ok_or_else(|| fail("field account_id: missing (this task is about one account)"))
}

fn health_scan(
    ctx: &mut TaskContext<'_, '_>,
    tenant: &TenantId,
    as_of: Field<Timestamp>,
    dry_run: Field<bool>,
) -> Result<Value, Partial> {
    let as_of = as_of.get("as_of")?;
    if let Some(t) = as_of.filter(|t| !tam_store::in_range(*t)) {
        return Err(fail(format!("field as_of: {t} is outside the years 1678..2261")));
    }
    let dry_run = dry_run.get("dry_run")?.unwrap_or(false);
    let as_of = as_of.unwrap_or(ctx.now);
    let report = scan(ctx.store, tenant, as_of, &(ctx.scan_config)(tenant), dry_run, |_| {})?;
    let mut done = json!({
        "as_of": as_of, "summary": report.summary,
        "accounts": report.accounts.iter().take(50).map(|a| json!({
            "account_id": a.account, "score": a.health.score, "status": a.health.status,
            "trend": a.trend, "escalate": a.decision.escalated(), "alert": a.delivery.map(|d| d.as_str()),
        })).collect::<Vec<_>>(),
        "errors": report.failed.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
    });
    if dry_run {
        return Ok(done);
    }
    // The scan is stored; what follows can fail without taking the scan's result with it.
    let followed = (|| -> Result<(usize, crate::dispatch::DispatchReport), StoreError> {
        let surfaced = surface_opportunities(ctx.store, tenant, None, as_of)?;
        let delivered = dispatch(ctx.store, tenant, ctx.channels, ctx.now, ctx.retry, ctx.worker)?;
        Ok((surfaced.len(), delivered))
    })();
    match followed {
        Ok((surfaced, d)) => {
            done["opportunities_surfaced"] = json!(surfaced);
            done["dispatch"] = json!({"delivered": d.delivered, "retried": d.retried, "failed": d.failed});
            Ok(done)
        }
        Err(e) => Err(Partial { error: format!("the scan was stored, but delivering its effects failed: {e}"), done }),
    }
}

/// The facts of an account for a communication, from its latest snapshot.
fn brief(
    store: &Store,
    tenant: &TenantId,
    account: &AccountId,
    kind: CommKind,
    now: Timestamp,
) -> Result<Brief, Partial> {
    let row = store
        .account(tenant, account)?
        .ok_or_else(|| fail(format!("no account {:?} in tenant {:?}", account.as_str(), tenant.as_str())))?;
    let latest = store.snapshots(tenant, account, 1)?.into_iter().next().ok_or_else(|| {
        fail(format!("account {:?} has not been scanned yet; run a health_scan first", account.as_str()))
    })?;
    Ok(crate::effects::brief_of(store, row, latest, kind, now)?)
}

/// Queues the draft of `brief` and delivers it now; returns where it was saved. `label`
/// tells this draft apart from others of the same kind for the account: the caller's
/// `task_id` when given (a retried task then drafts nothing twice), else the instant.
fn draft(ctx: &mut TaskContext<'_, '_>, brief: &Brief, label: &str) -> Result<Value, Partial> {
    let key = IdemKey::from_stored(format!("draft:{}/{}:{label}", brief.account, brief.kind.as_str()));
    let payload = serde_json::to_string(brief).expect("a brief is plain data and always serialises");
    let effect = NewEffect { key: key.clone(), kind: EffectKind::Draft, account: Some(brief.account.clone()), payload };
    let profile = crate::profile::profile_after_draft(&brief.tenant, &brief.account, &key);
    let profile_key = profile.key.clone();
    ctx.store.enqueue(&brief.tenant, ctx.now, &[effect, profile])?;
    // This task's draft first, by this task, then whatever else is due.
    let own = [&key, &profile_key];
    crate::dispatch::dispatch_keys(ctx.store, &brief.tenant, &own, ctx.channels, ctx.now, ctx.retry, ctx.worker)?;
    dispatch(ctx.store, &brief.tenant, ctx.channels, ctx.now, ctx.retry, ctx.worker)?;
    let row = ctx.store.outbox_row(&brief.tenant, &key)?;
    let Some(location) = row.as_ref().and_then(|r| r.receipt.clone()) else {
        let why = row.and_then(|r| r.last_error).unwrap_or_else(|| "the mailbox did not confirm it".to_owned());
        return Err(Partial {
            error: format!("draft not saved yet: {why}; it stays in the outbox (tam outbox list)"),
            done: json!({"outbox_key": key}),
        });
    };
    let mut result = json!({
        "draft": {"idem_key": key, "location": location, "recipients": brief.contacts},
        "confidence": "medium",
    });
    // The embedded mailbox keeps a row with the subject and the writer; show them when there.
    if let Some(saved) = ctx.store.draft(&brief.tenant, key.as_str())? {
        result["draft"]["subject"] = json!(saved.subject);
        result["draft"]["generator"] = json!(saved.generator);
        result["draft"]["note"] = json!(saved.note);
        result["confidence"] = json!(saved.confidence);
    }
    let calls = ctx.store.model_calls(&brief.tenant, key.as_str())?;
    if !calls.is_empty() {
        let sum = |f: fn(&tam_core::comms::ModelCall) -> Option<u64>| calls.iter().filter_map(f).sum::<u64>();
        result["usage"] = json!({
            "calls": calls,
            "input_tokens": sum(|c| c.input_tokens),
            "output_tokens": sum(|c| c.output_tokens),
        });
    }
    Ok(result)
}

/// The caller's `task_id`, or the task's instant.
fn label(task_id: Field<String>, now: Timestamp) -> Result<String, Partial> {
    match task_id.get("task_id")? {
        Some(id) if !id.trim().is_empty() && id.len() <= 128 && !id.chars().any(char::is_control) => {
            Ok(format!("task/{}", id.trim()))
        }
        Some(_) => Err(fail("field task_id: must be 1..=128 characters without control characters")),
        None => Ok(now.to_string()),
    }
}

/// What a communication needs beyond its account's brief.
enum Extra {
    None,
    Roadmap { roadmap_items: Field<Vec<RoadmapItem>>, roadmap: Field<Vec<RoadmapItem>> },
    Period(Field<i64>),
}

fn communication(
    ctx: &mut TaskContext<'_, '_>,
    tenant: &TenantId,
    account: Option<&AccountId>,
    (comm, extra): (CommKind, Extra),
    task_id: Field<String>,
) -> Result<Value, Partial> {
    let account = with_account(account)?;
    let mut b = brief(ctx.store, tenant, account, comm, ctx.now)?;
    match extra {
        Extra::None => {}
        Extra::Roadmap { roadmap_items, roadmap } => {
            let items = roadmap_items.get("roadmap_items")?.or(roadmap.get("roadmap")?);
            b.roadmap = items
                .filter(|i| !i.is_empty())
                .ok_or_else(|| fail("field roadmap_items: missing (a list of {title, description, area, quarter})"))?;
        }
        Extra::Period(period_days) => {
            let default_days = if comm == CommKind::HealthCheckin { 30 } else { 90 };
            let days = period_days.get("period_days")?.unwrap_or(default_days);
            if !(1..=3660).contains(&days) {
                return Err(fail(format!("field period_days: {days} is not 1..=3660")));
            }
            let from = ctx.now.checked_sub(SignedDuration::from_hours(24 * days)).unwrap_or(Timestamp::MIN);
            b.period = Some(ctx.store.period_stats(tenant, account, from, ctx.now)?);
        }
    }
    let label = label(task_id, ctx.now)?;
    draft(ctx, &b, &label)
}

fn release_notes(
    ctx: &mut TaskContext<'_, '_>,
    tenant: &TenantId,
    only: Option<&AccountId>,
    release_info: Field<ReleaseInfo>,
    task_id: Field<String>,
) -> Result<Value, Partial> {
    let release = release_info
        .get("release_info")?
        .ok_or_else(|| fail("field release_info: missing ({version, date, changes[]})"))?;
    let mut skipped = Vec::new();
    let accounts: Vec<AccountId> = match only {
        Some(a) => vec![a.clone()],
        // A stored id that is not one is named among the skipped, never dropped unseen.
        None => ctx
            .store
            .account_ids(tenant)?
            .into_iter()
            .filter_map(|raw| match AccountId::parse("id", &raw) {
                Ok(id) => Some(id),
                Err(e) => {
                    let error = format!("stored accounts row {raw}: field id: {}", e.reason);
                    skipped.push(json!({"account_id": raw, "error": error}));
                    None
                }
            })
            .collect(),
    };
    let mentioned: Vec<String> = release.changes.iter().flat_map(|c| c.tickets.iter().cloned()).collect();
    let label = label(task_id, ctx.now)?;
    let mut drafts = Vec::new();
    for account in &accounts {
        let mut b = match brief(ctx.store, tenant, account, CommKind::ReleaseNotes, ctx.now) {
            Ok(b) => b,
            Err(p) => {
                skipped.push(json!({"account_id": account, "error": p.error}));
                continue;
            }
        };
        b.reported = ctx.store.tickets_by_id(tenant, account, &mentioned, ctx.now)?;
        b.release = Some(release.clone());
        match draft(ctx, &b, &format!("{}/{}", release.version, label)) {
            Ok(d) => drafts.push(json!({"account_id": account, "draft": d["draft"], "confidence": d["confidence"],
                                        "usage": d.get("usage")})),
            Err(p) => skipped.push(json!({"account_id": account, "error": p.error})),
        }
    }
    // The task is as sure as its least sure draft, and spent what all of them spent.
    let rank = |c: &Value| match c.as_str() {
        Some("low") => 0,
        Some("medium") => 1,
        _ => 2,
    };
    let confidence = drafts.iter().map(|d| &d["confidence"]).min_by_key(|c| rank(c)).cloned().unwrap_or(json!("low"));
    let tokens = |field: &str| drafts.iter().filter_map(|d| d["usage"][field].as_u64()).sum::<u64>();
    let calls = drafts.iter().filter_map(|d| d["usage"]["calls"].as_array()).map(Vec::len).sum::<usize>();
    let done = json!({
        "version": release.version, "drafts": drafts, "skipped": skipped, "confidence": confidence,
        "usage": {"calls": calls, "input_tokens": tokens("input_tokens"), "output_tokens": tokens("output_tokens")},
    });
    if drafts.is_empty() {
        return Err(Partial { error: "no release notes could be drafted".to_owned(), done });
    }
    Ok(done)
}

#[derive(Debug, Clone, Deserialize)]
struct StakeholderIn {
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    maturity: Option<String>,
    #[serde(default)]
    notes: String,
}

#[derive(Debug, Clone, Deserialize)]
struct OpportunityIn {
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    status: Option<String>,
}

fn update_profile(
    ctx: &mut TaskContext<'_, '_>,
    tenant: &TenantId,
    account: &AccountId,
    update: ProfileUpdate,
    text: &str,
) -> Result<Value, Partial> {
    if ctx.store.account(tenant, account)?.is_none() {
        return Err(fail(format!("no account {:?} in tenant {:?}", account.as_str(), tenant.as_str())));
    }
    let now = ctx.now;
    // Everything is checked before anything is written: a bad item changes nothing.
    let ProfileUpdate { stakeholders, integrations, features, environment, opportunities, derive_adoption: derive } =
        update;
    let stakeholders = stakeholders.get("stakeholders")?.unwrap_or_default();
    for s in &stakeholders {
        if s.name.trim().is_empty() {
            return Err(fail(format!("field stakeholders: a stakeholder with role {:?} has no name", s.role)));
        }
        let maturity = s.maturity.as_deref().unwrap_or("medium");
        if !["low", "medium", "high"].contains(&maturity) {
            return Err(fail(format!(
                "field stakeholders: {}: maturity {maturity:?} is not low, medium or high",
                s.name
            )));
        }
    }
    let mut lists = Vec::new();
    let sections = [
        ("integrations", "name", integrations),
        ("features", "feature", features),
        ("environment", "system", environment),
    ];
    for (section, name_field, items) in sections {
        let items = items.get(section)?.unwrap_or_default();
        if items.iter().any(|i| i.get(name_field).and_then(Value::as_str).is_none_or(|n| n.trim().is_empty())) {
            return Err(fail(format!("field {section}: every item needs a \"{name_field}\"")));
        }
        lists.push((section, name_field, items));
    }
    let given = opportunities.get("opportunities")?.unwrap_or_default();
    for o in &given {
        let status = o.status.as_deref().unwrap_or("surfaced");
        if o.title.trim().is_empty() {
            return Err(fail("field opportunities: every item needs a \"title\""));
        }
        if !["surfaced", "discussed", "in_progress"].contains(&status) {
            return Err(fail(format!(
                "field opportunities: {}: status {status:?} is not surfaced, discussed or in_progress",
                o.title
            )));
        }
    }

    let mut counts = MergeCounts::default();
    for s in &stakeholders {
        let maturity = s.maturity.as_deref().unwrap_or("medium");
        let value = json!({"name": s.name.trim(), "role": s.role, "maturity": maturity, "notes": s.notes});
        let fact = tam_store::NewFact { section: "stakeholders", key: &s.name, value: &value, source: "task" };
        counts.count(ctx.store.merge_fact(tenant, account, &fact, now)?);
    }
    for (section, name_field, items) in &lists {
        for item in items {
            let name = item.get(*name_field).and_then(Value::as_str).unwrap_or_default();
            let fact = tam_store::NewFact { section, key: name, value: item, source: "task" };
            counts.count(ctx.store.merge_fact(tenant, account, &fact, now)?);
        }
    }
    let derive = derive.get("derive_adoption")?.unwrap_or(true);
    let derived = if derive { derive_adoption(ctx.store, tenant, account, now)? } else { MergeCounts::default() };

    let mut surfaced: Vec<String> =
        surface_opportunities(ctx.store, tenant, Some(account), now)?.into_iter().map(|(_, t)| t).collect();
    for o in &given {
        let title = o.title.trim();
        let opportunity = tam_store::NewOpportunity { title, description: &o.description, source: "profile" };
        let announce = opportunity_effect(tenant, account, title, &o.description, "profile", now);
        if ctx.store.surface_opportunity(tenant, account, &opportunity, now, &announce)? {
            surfaced.push(title.to_owned());
        }
        ctx.store.set_opportunity_status(tenant, account, title, o.status.as_deref().unwrap_or("surfaced"), now)?;
    }
    // The published profile follows the stored one.
    let publish = crate::profile::profile_effect(tenant, account, ctx.now, text);
    let key = publish.key.clone();
    ctx.store.enqueue(tenant, now, &[publish])?;
    let report = dispatch(ctx.store, tenant, ctx.channels, ctx.now, ctx.retry, ctx.worker)?;
    let published = ctx.store.outbox_row(tenant, &key)?;
    let delivered = published.as_ref().is_some_and(|r| r.state == tam_store::OutboxState::Delivered);
    let error = published.as_ref().and_then(|r| r.last_error.clone());
    let mut done = json!({
        "merged": counts, "derived": derived, "opportunities_surfaced": surfaced,
        "events_delivered": report.delivered,
        "profile": {"outbox_key": key, "location": published.as_ref().and_then(|r| r.receipt.clone()),
                    "error": error},
    });
    // The facts are stored; a profile its CRM refused is a partial result, not a success.
    if !delivered {
        let why = error.unwrap_or_else(|| "its channel did not confirm it".to_owned());
        return Err(Partial {
            error: format!("the profile is stored but not published: {why}; it stays in the outbox (tam outbox list)"),
            done,
        });
    }
    done["confidence"] = json!("high");
    Ok(done)
}
