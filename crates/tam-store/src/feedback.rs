//! Reps' votes on their alerts: one per alert and account, counted per escalation reason and
//! per rep, and weighed by the alert budget's adaptation.

use std::collections::BTreeMap;

use tam_core::feedback::{Ballot, Vote, Votes};
use tam_core::{Email, TenantId, Timestamp};

use crate::db::args;
use crate::{Store, StoreError, from_nanos, nanos};

/// The votes of one reason and rep.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VoteCount {
    /// Why the accounts escalated.
    pub reason: String,
    /// The rep alerted.
    pub rep: String,
    /// The vote.
    pub vote: Vote,
    /// How many.
    pub votes: u64,
}

impl Store {
    /// Records `ballot`'s vote at `now`; an alert's account votes once, so a second ballot for
    /// it (the same link again, or the other one) changes nothing and the first vote is
    /// returned.
    pub fn record_vote(&mut self, ballot: &Ballot, now: Timestamp) -> Result<Option<(Vote, Timestamp)>, StoreError> {
        let added = self.conn.execute(
            "INSERT INTO alert_feedback (tenant_id, alert_key, account_id, reason, rep_email, vote, voted_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, alert_key, account_id) DO NOTHING",
            &args![
                ballot.tenant.as_str(),
                ballot.alert,
                ballot.account,
                ballot.reason,
                ballot.rep.lowercased().as_str(),
                ballot.vote.as_str(),
                nanos(now)
            ],
        )?;
        if added == 1 { Ok(None) } else { self.vote_of(ballot) }
    }

    /// The vote already recorded for `ballot`'s alert and account, and when.
    pub fn vote_of(&self, ballot: &Ballot) -> Result<Option<(Vote, Timestamp)>, StoreError> {
        let row: Option<(String, i64)> = self.conn.row(
            "SELECT vote, voted_at FROM alert_feedback WHERE tenant_id = ?1 AND alert_key = ?2 AND account_id = ?3",
            &args![ballot.tenant.as_str(), ballot.alert, ballot.account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        row.map(|(vote, at)| Ok((stored_vote(&vote, || ballot.alert.clone())?, from_nanos(at)))).transpose()
    }

    /// The tenant's votes since `since`, counted per reason, rep and vote.
    pub fn vote_counts(&self, tenant: &TenantId, since: Timestamp) -> Result<Vec<VoteCount>, StoreError> {
        self.conn.rows(
            "SELECT reason, rep_email, vote, COUNT(*) FROM alert_feedback INDEXED BY alert_feedback_by_time
             WHERE tenant_id = ?1 AND voted_at >= ?2
             GROUP BY reason, rep_email, vote ORDER BY reason, rep_email, vote",
            &args![tenant.as_str(), nanos(since)],
            |r| {
                let vote: String = r.get(2)?;
                Ok(VoteCount {
                    reason: r.get(0)?,
                    rep: r.get(1)?,
                    vote: stored_vote(&vote, || tenant.to_string())?,
                    votes: r.get::<i64>(3)?.unsigned_abs(),
                })
            },
        )
    }

    /// One rep's votes since `since` (the address in any case).
    pub fn votes_of_rep(&self, tenant: &TenantId, rep: &Email, since: Timestamp) -> Result<Votes, StoreError> {
        let rows: Vec<(String, i64)> = self.conn.rows(
            "SELECT vote, COUNT(*) FROM alert_feedback INDEXED BY alert_feedback_by_rep
             WHERE tenant_id = ?1 AND rep_email = ?2 AND voted_at >= ?3 GROUP BY vote",
            &args![tenant.as_str(), rep.lowercased().as_str(), nanos(since)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut votes = Votes::default();
        for (vote, n) in rows {
            if let Some(vote) = Vote::parse(&vote) {
                votes.add(vote, n.unsigned_abs());
            }
        }
        Ok(votes)
    }

    /// Each rep's votes since `since`, for the alert budget's adaptation.
    pub fn rep_votes(&self, tenant: &TenantId, since: Timestamp) -> Result<BTreeMap<Email, Votes>, StoreError> {
        let mut by_rep: BTreeMap<Email, Votes> = BTreeMap::new();
        for c in self.vote_counts(tenant, since)? {
            // A rep's address as the ballot carried it: lower case, as the alert was sent.
            let Ok(rep) = Email::parse("rep_email", &c.rep) else { continue };
            by_rep.entry(rep.lowercased()).or_default().add(c.vote, c.votes);
        }
        Ok(by_rep)
    }
}

/// A stored vote read back; a row holding anything else is corrupt, named by `key`.
fn stored_vote(text: &str, key: impl FnOnce() -> String) -> Result<Vote, StoreError> {
    Vote::parse(text).ok_or_else(|| StoreError::Corrupt {
        table: "alert_feedback",
        key: key(),
        field: "vote",
        reason: format!("{text:?} is not a vote"),
    })
}
