//! Reps' feedback on alerts: the signed links an alert carries ("useful", "not useful"), and
//! the bounded adaptation of a rep's alert budget to what they said.
//!
//! A link is a ballot (tenant, alert, account, the escalation reason, the rep, the vote, when
//! it expires) and its HMAC-SHA256 under the tenant's secret: anyone may follow it, nobody can
//! make one, change its vote or stretch its life without the secret. That each ballot counts
//! once is the store's to hold (one vote per alert and account).

use serde::{Deserialize, Serialize};

use crate::mime::base64url as b64;
use crate::{Email, TenantId, Timestamp};

/// Days a feedback link works after its alert.
pub const LINK_DAYS: i64 = 30;

/// What the rep said of an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    /// It was worth the interruption.
    Useful,
    /// It was not.
    NotUseful,
}

impl Vote {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Useful => "useful",
            Vote::NotUseful => "not_useful",
        }
    }

    /// How a person reads it.
    pub fn words(self) -> &'static str {
        match self {
            Vote::Useful => "useful",
            Vote::NotUseful => "not useful",
        }
    }

    /// The vote a stored name stands for.
    pub fn parse(text: &str) -> Option<Vote> {
        [Vote::Useful, Vote::NotUseful].into_iter().find(|v| v.as_str() == text)
    }
}

/// One vote a link casts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ballot {
    /// Tenant.
    #[serde(rename = "t")]
    pub tenant: TenantId,
    /// The alert's effect key.
    #[serde(rename = "k")]
    pub alert: String,
    /// The account the alert was about.
    #[serde(rename = "a")]
    pub account: String,
    /// Why the account escalated (`below_threshold`, ...): the rule the vote judges.
    #[serde(rename = "r")]
    pub reason: String,
    /// The rep alerted.
    #[serde(rename = "p")]
    pub rep: Email,
    /// The vote.
    #[serde(rename = "v")]
    pub vote: Vote,
    /// When the link stops working, in seconds since the epoch.
    #[serde(rename = "e")]
    pub expires: i64,
}

/// Why a link is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link tam made: unreadable, or its signature does not match.
    #[error("this link is not one tam made, or it was changed")]
    Forged,
    /// Its tenant has no feedback secret (any more).
    #[error("this tenant does not take feedback")]
    NoSecret,
    /// Too old.
    #[error("this link expired on {0}")]
    Expired(Timestamp),
}

fn mac(secret: &[u8], payload: &str) -> ring::hmac::Tag {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), payload.as_bytes())
}

impl Ballot {
    /// The link's token: the ballot, a dot, its signature under `secret`; URL-safe as it is.
    pub fn sign(&self, secret: &[u8]) -> String {
        let payload = b64(&serde_json::to_vec(self).expect("a ballot is plain data and always serialises"));
        let tag = mac(secret, &payload);
        format!("{payload}.{}", b64(tag.as_ref()))
    }

    /// The ballot a token carries, once its tenant's secret (`secret_of`) proves it and it has
    /// not expired at `now`.
    pub fn open(
        token: &str,
        secret_of: impl FnOnce(&TenantId) -> Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<Ballot, LinkError> {
        let decode = |s: &str| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).ok();
        let (payload, tag) = token.trim().split_once('.').ok_or(LinkError::Forged)?;
        let ballot: Ballot = decode(payload).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(LinkError::Forged)?;
        let tag = decode(tag).ok_or(LinkError::Forged)?;
        // The tenant named inside picks the key; a ballot moved to another tenant fails here.
        let secret = secret_of(&ballot.tenant).ok_or(LinkError::NoSecret)?;
        ring::hmac::verify(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret), payload.as_bytes(), &tag)
            .map_err(|_| LinkError::Forged)?;
        if now.as_second() >= ballot.expires {
            return Err(LinkError::Expired(Timestamp::from_second(ballot.expires).unwrap_or(Timestamp::MIN)));
        }
        Ok(ballot)
    }
}

/// Where feedback links point and what signs them: `[api] public_url` and each tenant's secret.
#[derive(Clone)]
pub struct LinkMaker {
    base: String,
    secrets: std::collections::BTreeMap<TenantId, Vec<u8>>,
}

impl std::fmt::Debug for LinkMaker {
    // The secrets stay out of every debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkMaker").field("base", &self.base).field("tenants", &self.secrets.keys()).finish()
    }
}

/// The two links of one alert line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackLinks {
    /// Opens the page that records "useful".
    pub useful: String,
    /// Opens the page that records "not useful".
    pub not_useful: String,
}

impl LinkMaker {
    /// Links under `base` (`https://tam.example.com`), signed with each tenant's secret.
    pub fn new(base: &str, secrets: std::collections::BTreeMap<TenantId, Vec<u8>>) -> LinkMaker {
        LinkMaker { base: base.trim_end_matches('/').to_owned(), secrets }
    }

    /// Where the links point.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The tenant's secret, if it takes feedback.
    pub fn secret(&self, tenant: &TenantId) -> Option<Vec<u8>> {
        self.secrets.get(tenant).cloned()
    }

    /// The links of `ballot`'s alert line (its vote is set per link), expiring [`LINK_DAYS`]
    /// after `now`; none for a tenant without a secret.
    pub fn links(&self, ballot: &Ballot, now: Timestamp) -> Option<FeedbackLinks> {
        let secret = self.secrets.get(&ballot.tenant)?;
        let expires = now.as_second() + LINK_DAYS * 86_400;
        let link = |vote| {
            let b = Ballot { vote, expires, ..ballot.clone() };
            format!("{}/feedback/{}", self.base, b.sign(secret))
        };
        Some(FeedbackLinks { useful: link(Vote::Useful), not_useful: link(Vote::NotUseful) })
    }
}

/// A rep's votes over the adaptation's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Votes {
    /// Marked useful.
    pub useful: u64,
    /// Marked not useful.
    pub not_useful: u64,
}

impl Votes {
    /// `n` more votes of `vote`.
    pub fn add(&mut self, vote: Vote, n: u64) {
        match vote {
            Vote::Useful => self.useful += n,
            Vote::NotUseful => self.not_useful += n,
        }
    }
}

/// Where the votes the adaptation weighs at `as_of` start: [`ADAPT_DAYS`] before it.
pub fn adapt_window_start(as_of: Timestamp) -> Timestamp {
    as_of.checked_sub(crate::SignedDuration::from_hours(24 * ADAPT_DAYS)).unwrap_or(as_of)
}

/// Fewest votes before a rep's budget adapts: a couple of clicks say little.
pub const ADAPT_MIN_VOTES: u64 = 3;

/// Days of votes the adaptation weighs.
pub const ADAPT_DAYS: i64 = 30;

/// A rep's budget after their votes: unchanged unless most of at least [`ADAPT_MIN_VOTES`]
/// votes say "not useful"; then cut in the share of useful ones, never below 1 (nor above
/// `budget`). A budget of 0 (digest only) stays 0.
pub fn adapted_budget(budget: u32, votes: Votes) -> u32 {
    let total = votes.useful + votes.not_useful;
    if budget == 0 || total < ADAPT_MIN_VOTES || votes.not_useful * 2 <= total {
        return budget;
    }
    let kept = (u64::from(budget) * votes.useful) / total;
    u32::try_from(kept).unwrap_or(budget).clamp(1, budget)
}

/// A rep's alert budget for a scan, and why it is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AlertBudget {
    /// Individual alerts per scan.
    pub per_scan: u32,
    /// What `alert_budget_per_rep` says.
    pub configured: u32,
    /// Whether feedback may lower it (`adapt_alert_budget`).
    pub adapts: bool,
    /// The rep's votes over the last [`ADAPT_DAYS`] days.
    pub votes: Votes,
}

impl AlertBudget {
    /// The budget of a rep with `votes`, by `configured` and whether it `adapts`.
    pub fn of(configured: u32, adapts: bool, votes: Votes) -> AlertBudget {
        let per_scan = if adapts { adapted_budget(configured, votes) } else { configured };
        AlertBudget { per_scan, configured, adapts, votes }
    }

    /// One line for a person: the budget, and why when feedback lowered it.
    pub fn words(&self) -> String {
        let mut line = format!("{} individual alert(s) a scan", self.per_scan);
        if self.per_scan < self.configured {
            line.push_str(&format!(
                " (lowered from {}: {} of the rep's last {} rated alerts were marked not useful in {ADAPT_DAYS} days)",
                self.configured,
                self.votes.not_useful,
                self.votes.useful + self.votes.not_useful
            ));
        } else if self.adapts {
            line.push_str(" (adapts to the rep's feedback)");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ballot() -> Ballot {
        Ballot {
            tenant: TenantId::parse("t", "acme").unwrap(),
            alert: "alert:acme/a1/email".into(),
            account: "a1".into(),
            reason: "below_threshold".into(),
            rep: Email::parse("r", "ana@vendor.example").unwrap(),
            vote: Vote::Useful,
            expires: 0,
        }
    }

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn a_link_opens_only_with_its_tenants_secret_unchanged_and_in_time() {
        let now = at(1_800_000_000);
        let maker = LinkMaker::new("https://tam.example.com/", [(ballot().tenant, b"s3cret".to_vec())].into());
        let links = maker.links(&ballot(), now).unwrap();
        let token = links.not_useful.strip_prefix("https://tam.example.com/feedback/").unwrap();
        let secret = |_: &TenantId| Some(b"s3cret".to_vec());
        let opened = Ballot::open(token, secret, now).unwrap();
        assert_eq!((opened.vote, opened.account.as_str()), (Vote::NotUseful, "a1"));
        assert_eq!(opened.expires, 1_800_000_000 + 30 * 86_400);

        // Another key, a changed vote, another tenant, a cut token, garbage: forged.
        assert_eq!(Ballot::open(token, |_| Some(b"other".to_vec()), now), Err(LinkError::Forged));
        let (payload, tag) = token.split_once('.').unwrap();
        let mut changed = opened.clone();
        changed.vote = Vote::Useful;
        let swapped = format!("{}.{tag}", b64(&serde_json::to_vec(&changed).unwrap()));
        assert_eq!(Ballot::open(&swapped, secret, now), Err(LinkError::Forged));
        assert_eq!(Ballot::open(payload, secret, now), Err(LinkError::Forged));
        assert_eq!(Ballot::open("not a token", secret, now), Err(LinkError::Forged));
        assert_eq!(Ballot::open(token, |_| None, now), Err(LinkError::NoSecret));
        // Expired the second its 30 days are up.
        let late = at(opened.expires);
        assert!(matches!(Ballot::open(token, secret, late), Err(LinkError::Expired(t)) if t == late));
        // The secret never shows in a debug print.
        assert!(!format!("{maker:?}").contains("s3cret"));
    }

    #[test]
    fn a_budget_falls_with_not_useful_votes_but_never_below_one() {
        let votes = |useful, not_useful| Votes { useful, not_useful };
        assert_eq!(adapted_budget(5, votes(0, 2)), 5, "too few votes");
        assert_eq!(adapted_budget(3, votes(0, 3)), 1);
        assert_eq!(adapted_budget(5, votes(3, 3)), 5, "not most");
        assert_eq!(adapted_budget(5, votes(2, 8)), 1);
        assert_eq!(adapted_budget(10, votes(4, 6)), 4);
        assert_eq!(adapted_budget(5, votes(0, 10)), 1, "never below one");
        assert_eq!(adapted_budget(0, votes(0, 10)), 0, "digest only stays so");
    }
}
