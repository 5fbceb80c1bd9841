//! tam-connectors: adapters of the ports in `tam_core::ports`, one module per system.
//!
//! [`embedded`]: the zero-configuration channels that keep everything on this machine.
//! [`redis_bus`]: the event bus on Redis Streams, with consumer groups.
//! [`google_chat`]: chat alerts through Google Chat incoming webhooks.
//! [`gmail`] with [`google_auth`]: drafts in the reps' Gmail and alert emails to reps.
//! [`notion`]: Notion as the CRM (accounts, tickets, health, relationship profiles).
//! [`jira`] and [`kayako`]: ticket sources, and the Jira webhook's signature.
//! **Invariant:** every adapter classifies its own failures into an `Outcome` and none sends
//! customer-facing mail. The dispatcher owns retries across time; within one call, only what
//! an API itself asks for is repeated (a 429 or 529 with `Retry-After`, a 5xx on a call that is
//! safe to repeat), a few attempts at most.

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

/// The `Retry-After` of an answer, in seconds (the form Notion, Jira and Kayako send).
pub(crate) fn retry_after<B>(response: &ureq::http::Response<B>) -> Option<Duration> {
    let header = response.headers().get("retry-after")?.to_str().ok()?;
    header.trim().parse().ok().map(Duration::from_secs)
}

pub mod embedded;
pub mod gmail;
pub mod google_auth;
pub mod google_chat;
pub mod jira;
pub mod kayako;
pub mod notion;
pub mod redis_bus;
mod resp;

pub use resp::RespError;
