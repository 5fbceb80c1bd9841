//! Intended effects of a scan and how their delivery is retried (DESIGN: delivery semantics).
//!
//! A scan does not deliver anything: it records one effect per channel and account, keyed so a
//! re-run adds nothing. A dispatcher delivers them; the retry policy here decides when to try
//! again and when to give up.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{SignedDuration, Timestamp};

/// The channels an escalation reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// Outreach saved as a draft in the rep's mailbox, addressed to the customer.
    Draft,
    /// Health fields on the CRM account.
    Crm,
    /// An event on the tenant's event bus.
    Event,
    /// An email alert to the rep (our own staff), linking the draft.
    EmailAlert,
    /// A chat alert to the rep's space, linking the draft.
    ChatAlert,
    /// One digest per rep of the alerts over the budget, by email.
    Digest,
    /// The same digest in the rep's chat space.
    ChatDigest,
    /// The account's relationship profile, published where the CRM keeps it.
    Profile,
}

impl EffectKind {
    /// Every kind, in delivery order: drafts first, because alerts link to them.
    pub const ALL: [EffectKind; 8] = [
        EffectKind::Draft,
        EffectKind::Crm,
        EffectKind::Event,
        EffectKind::EmailAlert,
        EffectKind::ChatAlert,
        EffectKind::Digest,
        EffectKind::ChatDigest,
        EffectKind::Profile,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectKind::Draft => "draft",
            EffectKind::Crm => "crm",
            EffectKind::Event => "event",
            EffectKind::EmailAlert => "email_alert",
            EffectKind::ChatAlert => "chat_alert",
            EffectKind::Digest => "digest",
            EffectKind::ChatDigest => "chat_digest",
            EffectKind::Profile => "profile",
        }
    }

    /// The inverse of [`EffectKind::as_str`].
    pub fn parse(raw: &str) -> Option<EffectKind> {
        EffectKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl fmt::Display for EffectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The keys of one scan instant: the instant is formatted once, not once per effect of a book.
#[derive(Debug, Clone)]
pub struct KeysAt(String);

impl KeysAt {
    /// Keys at `as_of`.
    pub fn new(as_of: Timestamp) -> KeysAt {
        KeysAt(as_of.to_string())
    }

    /// The key of `kind` for `subject`: the same as [`IdemKey::new`] at this instant.
    pub fn key(&self, kind: EffectKind, subject: &str) -> IdemKey {
        let kind = kind.as_str();
        let mut key = String::with_capacity(kind.len() + subject.len() + self.0.len() + 2);
        for part in [kind, ":", subject, ":", &self.0] {
            key.push_str(part);
        }
        IdemKey(key)
    }
}

/// The idempotency key of an effect, unique within a tenant: kind, subject (an account id, or a
/// rep address for digests) and the scan instant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdemKey(String);

impl IdemKey {
    /// The key of `kind` for `subject` at `as_of`.
    pub fn new(kind: EffectKind, subject: &str, as_of: Timestamp) -> IdemKey {
        KeysAt::new(as_of).key(kind, subject)
    }

    /// A key read back from the store.
    pub fn from_stored(raw: String) -> IdemKey {
        IdemKey(raw)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A stable 128-bit digest of the key in hex: the basis of event ids and Message-IDs, so a
    /// receiver can deduplicate a repeated delivery.
    pub fn digest(&self) -> String {
        // FNV-1a, twice with different offsets: stable across builds and platforms, no dependency.
        let fnv =
            |offset: u64| self.0.bytes().fold(offset, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3));
        format!("{:016x}{:016x}", fnv(0xCBF2_9CE4_8422_2325), fnv(0x6C62_272E_07BB_0142))
    }
}

impl fmt::Display for IdemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// What a channel says about one delivery attempt. The channel classifies its own responses;
/// the dispatcher only acts on this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; `receipt` says where (a draft path, a stream id, ...).
    Delivered {
        /// Where the effect landed.
        receipt: String,
    },
    /// Not now: try again, no sooner than `after` if the channel said so.
    Retry {
        /// Why.
        reason: String,
        /// The channel's own wait (`Retry-After`).
        after: Option<SignedDuration>,
    },
    /// Never: the request itself is wrong. Not retried; visible for `tam outbox retry`.
    Rejected {
        /// Why.
        reason: String,
    },
    /// Not tried: the channel was asked to stop before it began this one. It goes back to
    /// pending as it was, due at once.
    NotTried,
}

/// How effects are delivered (`[outbox]`): bounded retries with exponential backoff, and how
/// long a worker holds the rows it claimed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryPolicy {
    /// Attempts before an effect is left dead (visible, retried only by `tam outbox retry`).
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further one.
    pub base_delay_ms: u64,
    /// The longest wait between attempts.
    pub max_delay_ms: u64,
    /// How long a claimed row stays its worker's: longer than a whole claimed batch can take,
    /// model calls with their retries and fallbacks included. When it runs out (the worker
    /// died, or stalled), another worker claims the row again, and the first one's late result
    /// is refused. Too short, and a slow batch is written twice (and its tokens spent twice).
    pub lease_seconds: u64,
}

impl Default for DeliveryPolicy {
    fn default() -> DeliveryPolicy {
        DeliveryPolicy { max_attempts: 6, base_delay_ms: 30_000, max_delay_ms: 3_600_000, lease_seconds: 30 * 60 }
    }
}

impl DeliveryPolicy {
    /// [`DeliveryPolicy::lease_seconds`] as a duration.
    pub fn lease(&self) -> SignedDuration {
        SignedDuration::from_secs(i64::try_from(self.lease_seconds).unwrap_or(i64::MAX))
    }

    /// When to try again after `attempts` failed attempts, or `None` to give up. A channel's
    /// own wait is honoured when it is longer than the backoff.
    pub fn next_attempt(&self, attempts: u32, now: Timestamp, after: Option<SignedDuration>) -> Option<Timestamp> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(32);
        let backoff_ms = self.base_delay_ms.saturating_mul(1u64 << exponent).min(self.max_delay_ms);
        let backoff = SignedDuration::from_millis(i64::try_from(backoff_ms).unwrap_or(i64::MAX));
        let wait = after.map_or(backoff, |a| a.max(backoff));
        Some(now.checked_add(wait).unwrap_or(Timestamp::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keys_name_kind_subject_and_instant_and_digest_stably() {
        let key = IdemKey::new(EffectKind::EmailAlert, "acme", at("2026-03-29T07:00:00Z"));
        assert_eq!(key.as_str(), "email_alert:acme:2026-03-29T07:00:00Z");
        assert_eq!(key.digest(), IdemKey::from_stored(key.as_str().to_owned()).digest());
        assert_ne!(key.digest(), IdemKey::new(EffectKind::ChatAlert, "acme", at("2026-03-29T07:00:00Z")).digest());
        assert_eq!(key.digest().len(), 32);
    }

    #[test]
    fn backoff_doubles_is_capped_honours_retry_after_and_gives_up() {
        let policy =
            DeliveryPolicy { max_attempts: 4, base_delay_ms: 1_000, max_delay_ms: 3_000, ..DeliveryPolicy::default() };
        let now = at("2026-03-29T07:00:00Z");
        let waits: Vec<Option<i64>> =
            (1..=4).map(|n| policy.next_attempt(n, now, None).map(|t| t.as_second() - now.as_second())).collect();
        assert_eq!(waits, [Some(1), Some(2), Some(3), None]);
        let long = policy.next_attempt(1, now, Some(SignedDuration::from_secs(60))).unwrap();
        assert_eq!(long.as_second() - now.as_second(), 60);
    }
}
