//! The dispatcher: delivers due outbox rows through the ports, records every attempt, retries
//! with backoff and leaves what keeps failing visible as `failed`.
//!
//! Delivery is at least once; channels deduplicate by the effect's key, so a crash between a
//! delivery and its record repeats nothing the customer or the rep can see.

use crate::alert_text::AlertLine as TextLine;
use serde::de::DeserializeOwned;
use tam_core::comms::{
    AlertKind, Brief, CommKind, CrmUpdate, CustomerDraft, Event, ProfileDocument, RepAlert, Subject,
};
use tam_core::concurrent::Stop;
use tam_core::fate::Fate;
use tam_core::outbox::{DeliveryPolicy, EffectKind, IdemKey, Outcome};
use tam_core::ports::{ChatNotifier, CrmWriter, DraftMailbox, EventBus, ProfilePublisher, RepAlerts, Writer};
use tam_core::{SignedDuration, TenantId, Timestamp};
use tam_store::{Claim, Finish, OutboxRow, OutboxState, SavedDraft, Store, StoreError};

use crate::effects::{AlertPayload, Facts, Payload};
use crate::profile::ProfilePayload;

/// The channels a dispatcher delivers to.
pub struct Channels<'a> {
    /// Drafts.
    pub mailbox: &'a mut dyn DraftMailbox,
    /// Email alerts to reps.
    pub alerts: &'a mut dyn RepAlerts,
    /// Chat alerts to reps.
    pub chat: &'a mut dyn ChatNotifier,
    /// The event bus.
    pub events: &'a mut dyn EventBus,
    /// The CRM.
    pub crm: &'a mut dyn CrmWriter,
    /// Where relationship profiles are kept.
    pub profiles: &'a mut dyn ProfilePublisher,
    /// Writes the drafts.
    pub writer: &'a dyn Writer,
    /// Signs the "useful" / "not useful" links alerts carry; none: alerts carry none.
    pub feedback: Option<&'a tam_core::feedback::LinkMaker>,
}

/// What one dispatch run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// Effects delivered.
    pub delivered: u64,
    /// Attempts that failed and will be retried.
    pub retried: u64,
    /// Effects given up on (now `failed`).
    pub failed: u64,
    /// Results refused because the lease had been lost to another worker.
    pub lost_leases: u64,
    /// Alerts put off until the draft they link is saved (not counted as attempts).
    pub deferred: u64,
    /// Whether the run stopped because it was asked to, leaving what was due pending.
    pub stopped: bool,
}

/// What happened to one claimed row.
enum Step {
    /// The channel was tried.
    Attempted(Outcome),
    /// Not tried: it waits for something else until then.
    Defer(Timestamp),
}

/// Effects of the other kinds claimed at once: one transaction claims them and one finishes
/// them, so the store's cost per effect stays small.
const OTHERS_PER_CLAIM: usize = 256;

/// Delivers every effect of `tenant` due at `now`. Failed attempts are scheduled by `policy`
/// and not retried within this run.
///
/// Rows are claimed in batches, drafts first. A batch's drafts are delivered and finished
/// (one transaction) before its other effects, which read what the drafts left: an alert
/// links its draft, a profile lists it.
pub fn dispatch(
    store: &mut Store,
    tenant: &TenantId,
    channels: &mut Channels<'_>,
    now: Timestamp,
    policy: &DeliveryPolicy,
    worker: &str,
) -> Result<DispatchReport, StoreError> {
    dispatch_until(store, tenant, channels, now, policy, worker, &tam_core::concurrent::never)
}

/// [`dispatch`] that stops as soon as `stop` says so: between batches, between a batch's drafts
/// and its other effects, and inside a channel's share (a slow channel finishes the items it
/// began, within its quota, and begins no other). What was claimed and not yet tried goes back
/// to pending at once, with no attempt counted, so a restart delivers it without waiting for
/// the lease.
pub fn dispatch_until(
    store: &mut Store,
    tenant: &TenantId,
    channels: &mut Channels<'_>,
    now: Timestamp,
    policy: &DeliveryPolicy,
    worker: &str,
    stop: Stop<'_>,
) -> Result<DispatchReport, StoreError> {
    let mut report = DispatchReport::default();
    let claim = Claim { drafts: channels.writer.drafts_per_claim().max(1), others: OTHERS_PER_CLAIM };
    loop {
        if stop() {
            report.stopped = true;
            return Ok(report);
        }
        // The writer keeps its batches of drafts small enough to end inside the lease
        // ([`Writer::drafts_per_claim`]).
        let rows = store.claim_due(tenant, now, worker, policy.lease(), claim)?;
        if rows.is_empty() {
            return Ok(report);
        }
        deliver_claimed(store, &rows, channels, now, policy, worker, stop, &mut report)?;
    }
}

/// Delivers the effects of `keys` that are due and not another worker's, at once: what a task
/// queued is written before the task answers, whichever replica (or concurrent task) would
/// otherwise have claimed it first. Rows leased to another worker are left to it.
pub fn dispatch_keys(
    store: &mut Store,
    tenant: &TenantId,
    keys: &[&IdemKey],
    channels: &mut Channels<'_>,
    now: Timestamp,
    policy: &DeliveryPolicy,
    worker: &str,
) -> Result<DispatchReport, StoreError> {
    let mut report = DispatchReport::default();
    let mut rows = store.claim_keys(tenant, keys, now, worker, policy.lease())?;
    rows.sort_by_key(|r| (r.kind != EffectKind::Draft, r.id));
    deliver_claimed(store, &rows, channels, now, policy, worker, &tam_core::concurrent::never, &mut report)?;
    Ok(report)
}

/// Delivers one claim's rows, drafts first, and finishes them: a batch's drafts are delivered
/// and finished (one transaction) before its other effects, which read what the drafts left.
#[allow(clippy::too_many_arguments)]
fn deliver_claimed(
    store: &mut Store,
    rows: &[OutboxRow],
    channels: &mut Channels<'_>,
    now: Timestamp,
    policy: &DeliveryPolicy,
    worker: &str,
    stop: Stop<'_>,
    report: &mut DispatchReport,
) -> Result<(), StoreError> {
    let split = rows.partition_point(|r| r.kind == EffectKind::Draft);
    for (i, group) in [&rows[..split], &rows[split..]].into_iter().enumerate() {
        // The drafts go right after the claim; a stop asked for while they were written
        // gives the batch's other effects back.
        if i > 0 && stop() {
            let release = Finish::Defer { next_attempt_at: now };
            report.lost_leases += store.finish_batch(worker, now, group.iter().map(|r| (r, &release)))?;
            report.stopped = true;
            continue;
        }
        let steps = deliver_group(store, group, channels, now, stop)?;
        let mut finished = Vec::with_capacity(group.len());
        for (row, step) in group.iter().zip(steps) {
            let finish = match step {
                Step::Defer(next_attempt_at) => {
                    report.deferred += 1;
                    Finish::Defer { next_attempt_at }
                }
                Step::Attempted(outcome) => finish(outcome, row, policy, now, report),
            };
            finished.push((row, finish));
        }
        report.lost_leases += store.finish_batch(worker, now, finished.iter().map(|(r, f)| (*r, f)))?;
    }
    Ok(())
}

/// What one claimed row needs from its channel, once its content is built.
enum Job {
    Draft(Box<Brief>),
    Crm(CrmUpdate),
    Event(Event),
    Profile(ProfileDocument),
    Email(RepAlert),
    Chat(RepAlert),
}

/// Hands one channel the whole batch of its jobs and settles each row with its own answer;
/// an answer the channel did not give leaves that row unsettled.
fn in_batch<T>(
    jobs: Vec<(usize, T)>,
    deliver: impl FnOnce(&[T]) -> Vec<Outcome>,
    settle: &mut impl FnMut(usize, Outcome),
) {
    if jobs.is_empty() {
        return;
    }
    let (rows, items): (Vec<usize>, Vec<T>) = jobs.into_iter().unzip();
    rows.into_iter().zip(deliver(&items)).for_each(|(i, o)| settle(i, o));
}

/// Delivers a group of claimed rows: builds each row's content, then hands each channel its
/// share at once (a network channel works on several within its quota), and answers one step
/// per row, in order.
fn deliver_group(
    store: &mut Store,
    group: &[OutboxRow],
    ch: &mut Channels<'_>,
    now: Timestamp,
    stop: Stop<'_>,
) -> Result<Vec<Step>, StoreError> {
    let mut steps: Vec<Option<Step>> = Vec::with_capacity(group.len());
    let mut jobs: Vec<(usize, Job)> = Vec::new();
    let mut facts = Facts::new(store);
    for (i, row) in group.iter().enumerate() {
        match prepare(&mut facts, row, ch.feedback, now) {
            Ok(Ok(job)) => {
                steps.push(None);
                jobs.push((i, job));
            }
            Ok(Err(step)) => steps.push(Some(step)),
            // A stored row that is not what the schema promises fails the effects built from
            // it, by name; the rest of the batch goes on.
            Err(corrupt @ StoreError::Corrupt { .. }) => {
                steps.push(Some(Step::Attempted(Outcome::Rejected { reason: corrupt.to_string() })));
            }
            Err(e) => return Err(e),
        }
    }
    let mut briefs = Vec::new();
    let (mut crm, mut events, mut profiles, mut email, mut chat) = (vec![], vec![], vec![], vec![], vec![]);
    for (i, job) in jobs {
        match job {
            Job::Draft(b) => briefs.push((i, b)),
            Job::Crm(u) => crm.push((i, u)),
            Job::Event(e) => events.push((i, e)),
            Job::Profile(d) => profiles.push((i, d)),
            Job::Email(a) => email.push((i, a)),
            Job::Chat(a) => chat.push((i, a)),
        }
    }
    let mut settle = |i: usize, outcome: Outcome| steps[i] = Some(Step::Attempted(outcome));
    let mut saved: Vec<(usize, SavedDraft)> = Vec::new();

    if !briefs.is_empty() {
        let mut written = ch.writer.write_all(&briefs.iter().map(|(_, b)| &**b).collect::<Vec<_>>(), stop).into_iter();
        // Drafts a model wrote were paid for: they are saved even once asked to stop (the
        // mailbox is quick next to the model; writing them again would pay twice). Drafts
        // from templates cost nothing to write again.
        let (mut paid, mut free) = (Vec::new(), Vec::with_capacity(briefs.len()));
        let source = ch.mailbox.fate_source();
        for (i, brief) in briefs {
            let row = &group[i];
            match written.next() {
                // Asked to stop before it was begun.
                None => settle(i, Outcome::NotTried),
                Some(Ok(written)) => {
                    // Tokens are spent whether or not the mailbox takes the draft: record them now.
                    let cost = !written.calls.is_empty();
                    if cost {
                        store.record_model_calls(&row.tenant, row.key.as_str(), &written.calls, now)?;
                    }
                    let mut draft = CustomerDraft::new(&brief, written, row.key.clone());
                    if brief.kind == CommKind::EscalationOutreach
                        && let Some(earlier) = store.earlier_outreach(&row.tenant, brief.account.as_str(), row.id)?
                    {
                        draft = draft.replying_to(&earlier);
                    }
                    // What a fate is read against is kept only where a fate can be read.
                    let watched = source.is_some();
                    let kept = |f: &dyn Fn() -> String| if watched { f() } else { String::new() };
                    saved.push((
                        i,
                        SavedDraft {
                            tenant: row.tenant.clone(),
                            key: row.key.as_str().to_owned(),
                            account: draft.account().as_str().to_owned(),
                            kind: draft.kind().as_str().to_owned(),
                            generator: draft.generator().to_owned(),
                            rep: draft.from().clone(),
                            recipients: draft.to().to_vec(),
                            mailbox: source.unwrap_or("local").to_owned(),
                            receipt: String::new(),
                            message_id: kept(&|| draft.message_id()),
                            created_at: now,
                            text: kept(&|| draft.text().to_owned()),
                            html_text: kept(&|| tam_core::fate::plain_of_html(draft.html())),
                            fate: if watched { Fate::Draft } else { Fate::Unknown },
                        },
                    ));
                    if cost { paid.push((i, draft)) } else { free.push((i, draft)) }
                }
                Some(Err(e)) => settle(i, Outcome::Rejected { reason: format!("writer: {e}") }),
            }
        }
        in_batch(paid, |d| ch.mailbox.create_drafts(d, &tam_core::concurrent::never), &mut settle);
        in_batch(free, |d| ch.mailbox.create_drafts(d, stop), &mut settle);
    }
    in_batch(crm, |u| ch.crm.update_all(u, stop), &mut settle);
    for (i, event) in events {
        settle(i, if stop() { Outcome::NotTried } else { ch.events.publish(&event) });
    }
    for (i, doc) in profiles {
        settle(i, if stop() { Outcome::NotTried } else { ch.profiles.publish_profile(&doc) });
    }
    in_batch(email, |a| ch.alerts.send_alerts(a, stop), &mut settle);
    in_batch(chat, |a| ch.chat.notify_all(a, stop), &mut settle);
    // Each saved draft is watched from now on, to learn what the rep made of it.
    let saved: Vec<SavedDraft> = saved
        .into_iter()
        .filter_map(|(i, mut d)| match &steps[i] {
            Some(Step::Attempted(Outcome::Delivered { receipt })) => {
                d.receipt.clone_from(receipt);
                Some(d)
            }
            _ => None,
        })
        .collect();
    store.record_saved_drafts(&saved)?;
    // A channel that answered fewer outcomes than it was given failed those it did not answer.
    Ok(steps
        .into_iter()
        .map(|s| {
            s.unwrap_or(Step::Attempted(Outcome::Retry { reason: "the channel gave no answer".into(), after: None }))
        })
        .collect())
}

/// How the outbox records an attempt's outcome, counted in `report`.
fn finish(
    outcome: Outcome,
    row: &OutboxRow,
    policy: &DeliveryPolicy,
    now: Timestamp,
    report: &mut DispatchReport,
) -> Finish {
    match outcome {
        Outcome::Delivered { receipt } => {
            report.delivered += 1;
            Finish::Delivered { receipt }
        }
        Outcome::Retry { reason, after } => match policy.next_attempt(row.attempts, now, after) {
            Some(next_attempt_at) => {
                report.retried += 1;
                Finish::Retry { error: reason, next_attempt_at }
            }
            None => {
                report.failed += 1;
                Finish::Failed { error: format!("gave up after {} attempts: {reason}", row.attempts) }
            }
        },
        Outcome::Rejected { reason } => {
            report.failed += 1;
            Finish::Failed { error: format!("rejected: {reason}") }
        }
        Outcome::NotTried => {
            report.stopped = true;
            Finish::Defer { next_attempt_at: now }
        }
    }
}

/// The content of an effect, of its row's tenant: carried whole, or built from the scan it
/// refers to (`build` says why not when that scan's snapshot or account is gone, which no
/// retry can mend).
fn whole_or_built<T: DeserializeOwned>(
    facts: &mut Facts<'_>,
    row: &OutboxRow,
    build: impl FnOnce(&mut Facts<'_>, &TenantId, &crate::effects::ScanRef) -> Result<Result<T, String>, StoreError>,
    tenant_of: impl FnOnce(&T) -> &TenantId,
) -> Result<Result<T, Outcome>, StoreError> {
    let content = match parse::<Payload<T>>(row) {
        Ok(Payload::Whole(content)) => content,
        Ok(Payload::Scan(from)) => {
            let Some(scan) = from.of(row) else {
                let reason = format!("outbox row {} refers to a scan but names no account", row.id);
                return Ok(Err(Outcome::Rejected { reason }));
            };
            match build(facts, &row.tenant, &scan)? {
                Ok(content) => content,
                Err(reason) => return Ok(Err(Outcome::Rejected { reason })),
            }
        }
        Err(o) => return Ok(Err(o)),
    };
    Ok(same_tenant(row, tenant_of(&content)).map(|()| content))
}

fn parse<T: DeserializeOwned>(row: &OutboxRow) -> Result<T, Outcome> {
    serde_json::from_str(&row.payload)
        .map_err(|e| Outcome::Rejected { reason: format!("outbox row {} has an unreadable payload: {e}", row.id) })
}

/// A payload of another tenant than its row is refused: tenants never see each other's data.
fn same_tenant(row: &OutboxRow, tenant: &TenantId) -> Result<(), Outcome> {
    if *tenant == row.tenant {
        Ok(())
    } else {
        Err(Outcome::Rejected {
            reason: format!(
                "payload of tenant {:?} in an outbox row of tenant {:?}",
                tenant.as_str(),
                row.tenant.as_str()
            ),
        })
    }
}

/// The content a row's channel needs, or the step it ends with without its channel (an
/// unreadable payload, content that can no longer be built, an alert waiting for its draft).
fn prepare(
    facts: &mut Facts<'_>,
    row: &OutboxRow,
    feedback: Option<&tam_core::feedback::LinkMaker>,
    now: Timestamp,
) -> Result<Result<Job, Step>, StoreError> {
    let store = facts.store();
    let not = |o: Outcome| Err(Step::Attempted(o));
    Ok(match row.kind {
        EffectKind::Draft => whole_or_built(facts, row, crate::effects::outreach_brief, |b: &Brief| &b.tenant)?
            .map(|brief| Job::Draft(Box::new(brief)))
            .map_err(Step::Attempted),
        EffectKind::Crm => whole_or_built(facts, row, crate::effects::crm_update, |u: &CrmUpdate| &u.tenant)?
            .map(Job::Crm)
            .map_err(Step::Attempted),
        EffectKind::Event => whole_or_built(facts, row, crate::effects::escalation_event, |e: &Event| &e.tenant_id)?
            .map(Job::Event)
            .map_err(Step::Attempted),
        EffectKind::Profile => match parse::<ProfilePayload>(row).and_then(|p| same_tenant(row, &p.tenant).map(|()| p))
        {
            Ok(p) => {
                if let Some(draft) = &p.after_draft
                    && let Some(d) = store.outbox_row(&row.tenant, draft)?
                    && matches!(d.state, OutboxState::Pending | OutboxState::InFlight)
                {
                    // Published after the draft it should list; a failed draft does not hold it.
                    return Ok(Err(Step::Defer(d.next_attempt_at.max(soon(now)))));
                }
                match facts.account(&row.tenant, &p.account)? {
                    Some(account) => Ok(Job::Profile(crate::profile::document_of(store, &row.tenant, account)?)),
                    None => not(Outcome::Rejected { reason: format!("no account {:?}", p.account.as_str()) }),
                }
            }
            Err(o) => not(o),
        },
        EffectKind::EmailAlert | EffectKind::ChatAlert | EffectKind::Digest | EffectKind::ChatDigest => {
            match parse::<AlertPayload>(row) {
                Ok(payload) => match alert(store, row, &payload, feedback, now)? {
                    Ready::Alert(alert) if matches!(row.kind, EffectKind::ChatAlert | EffectKind::ChatDigest) => {
                        Ok(Job::Chat(alert))
                    }
                    Ready::Alert(alert) => Ok(Job::Email(alert)),
                    Ready::Not(o) => not(o),
                    Ready::Wait(until) => Err(Step::Defer(until)),
                },
                Err(o) => not(o),
            }
        }
    })
}

/// A second from now: what waits for a draft looks again no sooner, so a busy draft cannot
/// spin it.
fn soon(now: Timestamp) -> Timestamp {
    now.checked_add(SignedDuration::from_secs(1)).unwrap_or(now)
}

/// The counted rest of a digest in words, most first.
fn rest_text(rest: &crate::effects::DigestRest) -> crate::alert_text::Rest {
    let most_first = |counts: &std::collections::BTreeMap<String, u64>, words: &dyn Fn(&str) -> String| {
        let mut v: Vec<(String, u64)> = counts.iter().map(|(k, n)| (words(k), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    };
    let rule_words = |rule: &str| {
        tam_core::scoring::Rule::parse(rule).map_or("no deductions", tam_core::scoring::Rule::words).to_owned()
    };
    crate::alert_text::Rest {
        accounts: rest.accounts,
        by_status: most_first(&rest.by_status, &|s: &str| s.to_owned()),
        by_reason: most_first(&rest.by_reason, &rule_words),
    }
}

enum Ready {
    Alert(RepAlert),
    Not(Outcome),
    Wait(Timestamp),
}

/// The alert text, linking each account's draft. While a draft is still being delivered the
/// alert waits for it (without using up attempts); a draft that failed is named as such, so a
/// broken mailbox never keeps a red account from the rep.
fn alert(
    store: &Store,
    row: &OutboxRow,
    payload: &AlertPayload,
    feedback: Option<&tam_core::feedback::LinkMaker>,
    now: Timestamp,
) -> Result<Ready, StoreError> {
    let mut lines = Vec::with_capacity(payload.lines.len());
    for l in &payload.lines {
        let draft = match &l.draft_key {
            None => "(no outreach draft for this account)".to_owned(),
            Some(key) => match store.outbox_row(&row.tenant, key)? {
                None => "(no outreach draft for this account)".to_owned(),
                Some(d) if d.state == OutboxState::Delivered => d.receipt.unwrap_or_default(),
                Some(d) if d.state == OutboxState::Failed => format!(
                    "(the outreach draft could not be saved: {}; `tam outbox retry` tries again)",
                    d.last_error.unwrap_or_default()
                ),
                // Pending or in flight: look again when the draft is next due.
                Some(d) => return Ok(Ready::Wait(d.next_attempt_at.max(soon(now)))),
            },
        };
        // Each account's alert is judged on its own: a digest's lines each carry their links.
        let links = feedback.and_then(|maker| {
            let ballot = tam_core::feedback::Ballot {
                tenant: row.tenant.clone(),
                alert: row.key.as_str().to_owned(),
                account: l.account.to_string(),
                reason: l.reason.clone(),
                rep: payload.rep.clone(),
                vote: tam_core::feedback::Vote::Useful,
                expires: 0,
            };
            maker.links(&ballot, now)
        });
        lines.push(TextLine {
            feedback: links,
            account: l.account.to_string(),
            name: l.name.clone(),
            score: l.score,
            status: l.status.clone(),
            reason: l.reason.clone(),
            cause: l.cause.clone(),
            why: l.why.clone(),
            draft,
        });
    }
    let (kind, (subject, text)) = match (row.kind, lines.first()) {
        (_, None) => {
            return Ok(Ready::Not(Outcome::Rejected { reason: format!("outbox row {} names no account", row.id) }));
        }
        (EffectKind::Digest | EffectKind::ChatDigest, _) => {
            let rest = payload.rest.as_ref().map(rest_text);
            let full = crate::alert_text::FullList { tenant: row.tenant.as_str(), rep: payload.rep.as_str() };
            (AlertKind::Digest, crate::alert_text::digest_text(&lines, rest.as_ref(), &payload.rep_name, full))
        }
        (_, Some(first)) => (AlertKind::Individual, crate::alert_text::individual_text(first, &payload.rep_name)),
    };
    Ok(Ready::Alert(RepAlert {
        tenant: row.tenant.clone(),
        rep: payload.rep.clone(),
        chat_space: payload.chat_space.clone(),
        kind,
        subject: Subject::new(&subject),
        text,
        key: row.key.clone(),
        feedback: lines
            .iter()
            .filter_map(|l| {
                let links = l.feedback.clone()?;
                Some(tam_core::comms::AlertFeedback { account_name: l.name.clone(), links })
            })
            .collect(),
    }))
}
