//! What reps said of their alerts: usefulness per escalation reason and per rep (`tam report
//! alerts`, the dashboard's reports page).

use std::collections::BTreeMap;

use serde::Serialize;
use tam_core::feedback::Vote;
use tam_core::{TenantId, Timestamp};
use tam_store::{Store, StoreError};

/// The votes on one reason's (or one rep's) alerts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Usefulness {
    /// The escalation reason, or the rep.
    pub by: String,
    /// Marked useful.
    pub useful: u64,
    /// Marked not useful.
    pub not_useful: u64,
    /// Useful ÷ votes; null without votes.
    pub usefulness: Option<f64>,
}

impl Usefulness {
    fn add(&mut self, vote: Vote, n: u64) {
        match vote {
            Vote::Useful => self.useful += n,
            Vote::NotUseful => self.not_useful += n,
        }
        let total = self.useful + self.not_useful;
        self.usefulness = (total > 0).then(|| self.useful as f64 / total as f64);
    }
}

/// A tenant's alert feedback since a day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertReport {
    /// Tenant.
    pub tenant_id: String,
    /// Votes cast since this instant are counted.
    pub since: Timestamp,
    /// Votes in all.
    pub votes: u64,
    /// Per escalation reason (the rule an alert fired on).
    pub by_reason: Vec<Usefulness>,
    /// Per rep.
    pub by_rep: Vec<Usefulness>,
}

/// The tenant's report of votes cast since `since`.
pub fn report(store: &Store, tenant: &TenantId, since: Timestamp) -> Result<AlertReport, StoreError> {
    let counts = store.vote_counts(tenant, since)?;
    let (mut by_reason, mut by_rep): (BTreeMap<String, Usefulness>, BTreeMap<String, Usefulness>) = Default::default();
    for c in &counts {
        let entry = |map: &mut BTreeMap<String, Usefulness>, key: &str| {
            map.entry(key.to_owned())
                .or_insert_with(|| Usefulness { by: key.to_owned(), ..Usefulness::default() })
                .add(c.vote, c.votes)
        };
        entry(&mut by_reason, &c.reason);
        entry(&mut by_rep, &c.rep);
    }
    Ok(AlertReport {
        tenant_id: tenant.to_string(),
        since,
        votes: counts.iter().map(|c| c.votes).sum(),
        by_reason: by_reason.into_values().collect(),
        by_rep: by_rep.into_values().collect(),
    })
}
