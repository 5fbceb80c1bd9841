//! What reps made of the drafts: each watched draft looked at in its mailbox (`tam drafts
//! sync` and the scheduled job), and the tenant's report per communication kind and writer
//! (`tam report drafts`, the dashboard).

use std::collections::BTreeMap;

use serde::Serialize;
use tam_core::concurrent::Stop;
use tam_core::fate::{Fate, Watched, decide};
use tam_core::ports::DraftFates;
use tam_core::{TenantId, Timestamp};
use tam_store::{Store, StoreError};

/// Drafts looked at in one go: a page of the watched ones.
const PAGE: usize = 200;

/// A sync gives up after this many looks in a row failed: the mailbox is out of reach (or a
/// scope is not delegated), and every other look would fail the same way.
const FAILURES_IN_A_ROW: usize = 20;

/// What one sync found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SyncReport {
    /// Tenant.
    pub tenant_id: String,
    /// Drafts looked at.
    pub looked: usize,
    /// Of those, how many have each fate now.
    pub fates: BTreeMap<&'static str, usize>,
    /// Looks that failed (each draft stays watched), with the first reason.
    pub failed: usize,
    /// Why the first failed look failed.
    pub first_failure: Option<String>,
}

impl SyncReport {
    /// One line: how many were looked at and what they are now.
    pub fn summary(&self) -> String {
        let fates: Vec<String> = self.fates.iter().map(|(fate, n)| format!("{n} {fate}")).collect();
        let mut line = format!("{} draft(s) looked at", self.looked);
        if !fates.is_empty() {
            line.push_str(&format!(": {}", fates.join(", ")));
        }
        if let Some(why) = &self.first_failure {
            line.push_str(&format!("; {} look(s) failed ({why})", self.failed));
        }
        line
    }
}

/// Looks at each of the tenant's watched drafts in its mailbox and records what became of it.
pub fn sync(
    store: &mut Store,
    tenant: &TenantId,
    mailbox: &dyn DraftFates,
    now: Timestamp,
    stop: Stop<'_>,
) -> Result<SyncReport, StoreError> {
    let mut report = SyncReport { tenant_id: tenant.to_string(), ..SyncReport::default() };
    let mut after: Option<(Timestamp, String)> = None;
    let mut failing = 0;
    loop {
        let page = store.watched_drafts(tenant, now, after.as_ref().map(|(at, key)| (*at, key.as_str())), PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some((last.draft.created_at, last.key.clone()));
        let full = page.len() == PAGE;
        let (keys, watched): (Vec<String>, Vec<Watched>) = page.into_iter().map(|r| (r.key, r.draft)).unzip();
        let seen = mailbox.look_all(&watched, stop);
        let mut decided = Vec::with_capacity(seen.len());
        for ((key, draft), seen) in keys.into_iter().zip(&watched).zip(seen) {
            match seen {
                Ok(seen) => {
                    failing = 0;
                    let decision = decide(&[&draft.text, &draft.html_text], seen);
                    *report.fates.entry(decision.fate.as_str()).or_default() += 1;
                    decided.push((key, decision));
                }
                Err(why) => {
                    failing += 1;
                    report.failed += 1;
                    report.first_failure.get_or_insert(why);
                }
            }
        }
        report.looked += decided.len();
        store.settle_fates(tenant, &decided, now)?;
        if stop() || failing >= FAILURES_IN_A_ROW || !full {
            break;
        }
    }
    Ok(report)
}

/// The drafts of one kind by one writer: how many had each fate, and how many were accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftFigures {
    /// Communication kind, or `all`.
    pub kind: String,
    /// `template`, the model that wrote them, or `all`.
    pub generator: String,
    /// Drafts saved.
    pub drafts: u64,
    /// Still drafts (unsent after 30 days counts here).
    pub still_draft: u64,
    /// Sent as written.
    pub sent_unchanged: u64,
    /// Sent after the rep edited them.
    pub sent_edited: u64,
    /// Deleted unsent.
    pub deleted: u64,
    /// Whose mailbox cannot say (`.eml` files).
    pub unknown: u64,
    /// Sent (as written or edited) ÷ decided (sent or deleted); null before any is decided.
    pub acceptance_rate: Option<f64>,
    /// The mean share of words the reps changed in the edited ones.
    pub mean_changed: Option<f64>,
}

impl DraftFigures {
    fn new(kind: &str, generator: &str) -> DraftFigures {
        DraftFigures {
            kind: kind.to_owned(),
            generator: generator.to_owned(),
            drafts: 0,
            still_draft: 0,
            sent_unchanged: 0,
            sent_edited: 0,
            deleted: 0,
            unknown: 0,
            acceptance_rate: None,
            mean_changed: None,
        }
    }

    fn add(&mut self, fate: Fate, n: u64, mean_changed: Option<f64>) {
        self.drafts += n;
        match fate {
            Fate::Draft => self.still_draft += n,
            Fate::Sent => self.sent_unchanged += n,
            Fate::Edited => {
                // A mean over the edited ones, kept as the edited count grows.
                let before = self.sent_edited as f64 * self.mean_changed.unwrap_or(0.0);
                self.sent_edited += n;
                if let Some(m) = mean_changed {
                    self.mean_changed = Some((before + m * n as f64) / self.sent_edited as f64);
                }
            }
            Fate::Deleted => self.deleted += n,
            Fate::Unknown => self.unknown += n,
        }
        let sent = self.sent_unchanged + self.sent_edited;
        let decided = sent + self.deleted;
        self.acceptance_rate = (decided > 0).then(|| sent as f64 / decided as f64);
    }
}

/// A tenant's drafts since a day, by kind and writer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DraftReport {
    /// Tenant.
    pub tenant_id: String,
    /// Drafts saved since this instant are counted.
    pub since: Timestamp,
    /// One row per kind and writer; per kind over its writers (`generator: "all"`), per writer
    /// over its kinds (`kind: "all"`), and everything, where each adds something.
    pub rows: Vec<DraftFigures>,
    /// Why some fates are unknown, when some are.
    pub note: Option<String>,
}

/// The tenant's report of drafts saved since `since`.
pub fn report(store: &Store, tenant: &TenantId, since: Timestamp) -> Result<DraftReport, StoreError> {
    let counts = store.fate_counts(tenant, since)?;
    let mut by: BTreeMap<(String, String), DraftFigures> = BTreeMap::new();
    for c in &counts {
        for (kind, generator) in [
            (c.kind.as_str(), c.generator.as_str()),
            (c.kind.as_str(), "all"),
            ("all", c.generator.as_str()),
            ("all", "all"),
        ] {
            by.entry((kind.to_owned(), generator.to_owned()))
                .or_insert_with(|| DraftFigures::new(kind, generator))
                .add(c.fate, c.drafts, c.mean_changed);
        }
    }
    // Totals where they add something: a kind's over its writers, a writer's over its kinds,
    // and everything over more than one row.
    let pairs: Vec<(String, String)> = by.keys().filter(|(k, g)| k != "all" && g != "all").cloned().collect();
    let writers_of = |kind: &str| pairs.iter().filter(|(k, _)| k == kind).count();
    let kinds_of = |generator: &str| pairs.iter().filter(|(_, g)| g == generator).count();
    let mut rows: Vec<DraftFigures> = Vec::new();
    for ((kind, generator), figures) in &by {
        let keep = match (kind.as_str(), generator.as_str()) {
            ("all", "all") => pairs.len() > 1,
            ("all", g) => kinds_of(g) > 1,
            (k, "all") => writers_of(k) > 1,
            _ => true,
        };
        if keep {
            rows.push(figures.clone());
        }
    }
    // Totals after the rows they add up.
    rows.sort_by_key(|r| (r.kind == "all", r.kind.clone(), r.generator == "all", r.generator.clone()));
    let unknown: u64 = counts.iter().filter(|c| c.fate == Fate::Unknown).map(|c| c.drafts).sum();
    let note = (unknown > 0).then(|| {
        "drafts saved as .eml files (the embedded mailbox) have no known fate: only Gmail drafts can be followed"
            .to_owned()
    });
    Ok(DraftReport { tenant_id: tenant.to_string(), since, rows, note })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_gives_each_kind_and_writer_and_the_totals_that_add_something() {
        use tam_core::fate::Decision;
        let mut store = Store::open_in_memory().unwrap();
        let tenant = TenantId::parse("t", "acme").unwrap();
        let at: Timestamp = "2026-03-29T07:00:00Z".parse().unwrap();
        let saved = |key: &str, kind: &str, generator: &str| tam_store::SavedDraft {
            tenant: tenant.clone(),
            key: key.to_owned(),
            account: "a1".into(),
            kind: kind.into(),
            generator: generator.into(),
            rep: tam_core::Email::parse("r", "ana@vendor.example").unwrap(),
            recipients: Vec::new(),
            mailbox: "gmail".into(),
            receipt: String::new(),
            message_id: String::new(),
            created_at: at,
            text: "Hello".into(),
            html_text: String::new(),
            fate: Fate::Draft,
        };
        store
            .record_saved_drafts(&[
                saved("k1", "escalation_outreach", "template"),
                saved("k2", "escalation_outreach", "anthropic/claude"),
                saved("k3", "health_checkin", "anthropic/claude"),
            ])
            .unwrap();
        let sent = Decision { fate: Fate::Sent, changed: Some(0.0), thread: None, note: None };
        let deleted = Decision { fate: Fate::Deleted, changed: None, thread: None, note: None };
        store.settle_fates(&tenant, &[("k2".into(), sent), ("k3".into(), deleted)], at).unwrap();
        let report = report(&store, &tenant, at).unwrap();
        let rows: Vec<(&str, &str, u64, Option<f64>)> =
            report.rows.iter().map(|r| (r.kind.as_str(), r.generator.as_str(), r.drafts, r.acceptance_rate)).collect();
        assert_eq!(
            rows,
            [
                ("escalation_outreach", "anthropic/claude", 1, Some(1.0)),
                ("escalation_outreach", "template", 1, None),
                ("escalation_outreach", "all", 2, Some(1.0)),
                ("health_checkin", "anthropic/claude", 1, Some(0.0)),
                ("all", "anthropic/claude", 2, Some(0.5)),
                ("all", "all", 3, Some(0.5)),
            ]
        );
    }

    #[test]
    fn acceptance_is_sent_over_decided_and_the_mean_change_is_over_the_edited() {
        let mut f = DraftFigures::new("health_checkin", "template");
        f.add(Fate::Draft, 4, None);
        assert_eq!(f.acceptance_rate, None, "nothing decided yet");
        f.add(Fate::Sent, 3, None);
        f.add(Fate::Edited, 2, Some(0.25));
        f.add(Fate::Edited, 2, Some(0.75));
        f.add(Fate::Deleted, 3, None);
        f.add(Fate::Unknown, 1, None);
        assert_eq!(
            (f.drafts, f.still_draft, f.sent_unchanged, f.sent_edited, f.deleted, f.unknown),
            (15, 4, 3, 4, 3, 1)
        );
        assert_eq!(f.acceptance_rate, Some(0.7));
        assert_eq!(f.mean_changed, Some(0.5));
    }
}
