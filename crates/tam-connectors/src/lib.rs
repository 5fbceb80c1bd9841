//! tam-connectors: adapters of the ports in `tam_core::ports`, one module per system.
//!
//! [`embedded`]: the zero-configuration channels that keep everything on this machine.
//! [`redis_bus`]: the event bus on Redis Streams, with consumer groups.
//! [`google_chat`]: chat alerts through Google Chat incoming webhooks.
//! [`gmail`] with [`google_auth`]: drafts in the reps' Gmail and alert emails to reps.
//! [`notion`]: Notion as the CRM (accounts, tickets, health, relationship profiles).
//! [`jira`] and [`kayako`]: ticket sources, and the Jira webhook's signature.
//! [`limits`]: the token buckets the clients pace their calls by, one process's or the store's.
//! **Invariant:** every adapter classifies its own failures into an `Outcome` and none sends
//! customer-facing mail. The dispatcher owns retries across time; within one call, only what
//! an API itself asks for is repeated (a 429 or 529 with `Retry-After`, a 5xx on a call that is
//! safe to repeat), a few attempts at most, by one policy ([`Retry`]: the API's wait or a
//! jittered backoff, and never a wait over a minute).

use std::time::Duration;

/// `text` with every secret a connector sent removed: an upstream error may echo the request
/// (a header, a URL with its key), and errors are shown and stored. Secrets shorter than 6
/// characters are left alone: they would match ordinary words, and no credential is that short.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 6) {
        out = out.replace(secret, "[redacted]");
    }
    out
}

/// An outcome's reason scrubbed of `secrets`.
pub(crate) fn scrub_outcome(outcome: tam_core::outbox::Outcome, secrets: &[&str]) -> tam_core::outbox::Outcome {
    use tam_core::outbox::Outcome;
    match outcome {
        Outcome::Retry { reason, after } => Outcome::Retry { reason: scrub(&reason, secrets), after },
        Outcome::Rejected { reason } => Outcome::Rejected { reason: scrub(&reason, secrets) },
        delivered => delivered,
    }
}

/// The ticket kind a source's type name stands for (Jira's issue type, Kayako's ticket or case
/// type): `feature_request` for "New Feature", "Feature request", "Improvement"; `bug`,
/// `question`; anything else in snake case. Profiles surface opportunities from
/// `feature_request` tickets, so every source must name them alike.
pub(crate) fn ticket_kind(type_name: &str) -> String {
    let t = type_name.to_lowercase();
    if t.contains("feature") || t.contains("improvement") || t.contains("story") {
        "feature_request".to_owned()
    } else if t.contains("bug") || t.contains("defect") {
        "bug".to_owned()
    } else if t.contains("question") || t.contains("support") {
        "question".to_owned()
    } else {
        t.split_whitespace().collect::<Vec<_>>().join("_")
    }
}

/// The `Retry-After` of an answer, in seconds (the form Notion, Jira and Kayako send); none
/// for a date or anything else that is not a number of seconds. Not capped here: [`Retry`]
/// decides what a wait is worth.
pub(crate) fn retry_after<B>(response: &ureq::http::Response<B>) -> Option<Duration> {
    let header = response.headers().get("retry-after")?.to_str().ok()?;
    let seconds: f64 = header.trim().parse().ok()?;
    Some(Duration::try_from_secs_f64(seconds).ok().unwrap_or(Duration::MAX))
}

/// How every connector repeats a call the API asked it to repeat (a 429, a 5xx, a lost
/// answer): at most `attempts` in all, waiting the API's `Retry-After` when it sends one, else
/// an exponential backoff from `base` with jitter (so clients that failed together do not come
/// back together). A wait longer than [`Retry::MAX_WAIT`] is not slept through: the call gives
/// up, and whoever called it (the outbox, the next sync) comes back later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; each next one doubles it.
    pub base: Duration,
}

impl Retry {
    /// The longest a call waits before asking again.
    pub const MAX_WAIT: Duration = Duration::from_secs(60);

    /// `attempts` in all, backing off from `base`.
    pub const fn new(attempts: u32, base: Duration) -> Retry {
        Retry { attempts, base }
    }

    /// How long to wait before asking again after attempt `attempt` (1 for the first) failed,
    /// given the answer's `Retry-After`; none when no attempt is left or the wait is too long.
    pub fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.attempts {
            return None;
        }
        let wait = match retry_after {
            Some(asked) => asked,
            None => {
                let backoff = self.base.saturating_mul(1 << attempt.saturating_sub(1).min(6));
                // Between half and all of it.
                backoff.mul_f64(0.5 + jitter() / 2.0)
            }
        };
        (wait <= Retry::MAX_WAIT).then_some(wait)
    }
}

/// A number in [0, 1), different from call to call and thread to thread: enough to spread
/// retries, and no generator to seed or share.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

pub mod embedded;
pub mod gmail;
pub mod google_auth;
pub mod google_chat;
pub mod jira;
pub mod kayako;
pub mod limits;
pub mod notion;
pub mod redis_bus;
mod resp;

pub use resp::RespError;

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn a_retry_waits_what_the_api_asks_backs_off_with_jitter_and_gives_up_on_long_waits() {
        let retry = Retry::new(3, Duration::from_millis(400));
        assert_eq!(retry.wait(1, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)), "Retry-After wins");
        for _ in 0..50 {
            let first = retry.wait(1, None).unwrap();
            assert!((Duration::from_millis(200)..=Duration::from_millis(400)).contains(&first), "{first:?}");
            let second = retry.wait(2, None).unwrap();
            assert!((Duration::from_millis(400)..=Duration::from_millis(800)).contains(&second), "{second:?}");
        }
        assert_eq!(retry.wait(3, None), None, "three attempts in all");
        // `Retry-After: 999999` once put a sync to sleep for eleven days.
        assert_eq!(retry.wait(1, Some(Duration::from_secs(999_999))), None);
        assert_eq!(retry.wait(1, Some(Duration::MAX)), None);
        assert_eq!(Retry::new(30, Duration::from_secs(10)).wait(20, None), None, "backoff is capped too");
    }
}
