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
