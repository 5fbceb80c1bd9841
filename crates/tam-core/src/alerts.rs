//! The per-rep alert budget (SPEC section 4, step 3).
//!
//! A rep gets at most `alert_budget_per_rep` individual email/chat alerts per scan, worst
//! scores first; every other account that wanted an alert goes into one digest for that rep.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{AccountId, Email};

/// How the rep hears about an account from this scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Its own email and chat alert.
    Individual,
    /// A line in the rep's digest.
    Digest,
}

impl Delivery {
    /// `"individual"` or `"digest"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::Individual => "individual",
            Delivery::Digest => "digest",
        }
    }

    /// The inverse of [`Delivery::as_str`].
    pub fn parse(raw: &str) -> Option<Delivery> {
        [Delivery::Individual, Delivery::Digest].into_iter().find(|d| d.as_str() == raw)
    }
}

/// An account that wants an alert from this scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRequest {
    /// The account.
    pub account: AccountId,
    /// Its rep; the budget is per rep.
    pub rep: Email,
    /// Its score; lower is alerted first.
    pub score: u8,
}

/// The plan for one rep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepPlan {
    /// Accounts alerted one by one, worst first.
    pub individual: Vec<AccountId>,
    /// Accounts in the digest, worst first. Empty means no digest.
    pub digest: Vec<AccountId>,
}

/// Splits alert requests per rep into individual alerts (worst first, up to `budget`) and one
/// digest of the rest. Ties on score go to the lower account id, so the plan is deterministic.
pub fn plan(requests: &[AlertRequest], budget: u32) -> BTreeMap<Email, RepPlan> {
    plan_by_rep(requests, |_| budget)
}

/// [`plan`] with each rep's own budget (one adapted to their feedback).
pub fn plan_by_rep(requests: &[AlertRequest], budget_of: impl Fn(&Email) -> u32) -> BTreeMap<Email, RepPlan> {
    let mut by_rep: BTreeMap<Email, Vec<&AlertRequest>> = BTreeMap::new();
    for r in requests {
        by_rep.entry(r.rep.clone()).or_default().push(r);
    }
    by_rep
        .into_iter()
        .map(|(rep, mut reqs)| {
            let budget = usize::try_from(budget_of(&rep)).unwrap_or(usize::MAX);
            reqs.sort_by(|a, b| (a.score, &a.account).cmp(&(b.score, &b.account)));
            let mut ids = reqs.into_iter().map(|r| r.account.clone());
            let individual: Vec<AccountId> = ids.by_ref().take(budget).collect();
            (rep, RepPlan { individual, digest: ids.collect() })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(account: &str, rep: &str, score: u8) -> AlertRequest {
        AlertRequest {
            account: AccountId::parse("id", account).unwrap(),
            rep: Email::parse("rep_email", rep).unwrap(),
            score,
        }
    }

    fn ids(v: &[AccountId]) -> Vec<&str> {
        v.iter().map(AccountId::as_str).collect()
    }

    #[test]
    fn worst_five_per_rep_are_individual_the_rest_one_digest() {
        let mut requests: Vec<_> = (0..8).map(|i| req(&format!("a{i}"), "ana@v.example", 10 + i as u8 * 5)).collect();
        requests.push(req("b1", "ben@v.example", 30));
        requests.push(req("a-tie", "ana@v.example", 20));
        let plan = plan(&requests, 5);
        let ana = &plan[&Email::parse("e", "ana@v.example").unwrap()];
        assert_eq!(ids(&ana.individual), ["a0", "a1", "a-tie", "a2", "a3"]);
        assert_eq!(ids(&ana.digest), ["a4", "a5", "a6", "a7"]);
        let ben = &plan[&Email::parse("e", "ben@v.example").unwrap()];
        assert_eq!((ids(&ben.individual), ben.digest.len()), (vec!["b1"], 0));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_budget_holds_and_nobody_is_lost(
            scores in proptest::collection::vec((0u8..4, 0u8..=100), 0..40),
            budget in 0u32..8,
        ) {
            let requests: Vec<_> = scores
                .iter()
                .enumerate()
                .map(|(i, (rep, score))| req(&format!("a{i}"), &format!("rep{rep}@v.example"), *score))
                .collect();
            let plans = plan(&requests, budget);
            let planned: usize = plans.values().map(|p| p.individual.len() + p.digest.len()).sum();
            prop_assert_eq!(planned, requests.len());
            let score = |id: &AccountId| requests.iter().find(|r| &r.account == id).map(|r| r.score).unwrap();
            for p in plans.values() {
                prop_assert!(p.individual.len() <= budget as usize);
                prop_assert!(p.digest.is_empty() || p.individual.len() == budget as usize);
                let worst_digest = p.digest.iter().map(score).min();
                prop_assert!(p.individual.iter().all(|id| worst_digest.is_none_or(|d| score(id) <= d)));
            }
        }
    }

    #[test]
    fn a_zero_budget_sends_everything_to_the_digest() {
        let plan = plan(&[req("a", "r@v.example", 1), req("b", "r@v.example", 2)], 0);
        let only = plan.values().next().unwrap();
        assert_eq!((only.individual.len(), ids(&only.digest)), (0, vec!["a", "b"]));
    }
}
