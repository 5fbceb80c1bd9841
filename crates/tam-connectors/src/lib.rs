//! tam-connectors: adapters of the ports in `tam_core::ports`, one module per system.
//!
//! [`embedded`]: the zero-configuration channels that keep everything on this machine.
//! [`redis_bus`]: the event bus on Redis Streams, with consumer groups.
//! [`google_chat`]: chat alerts through Google Chat incoming webhooks.
//! [`gmail`] with [`google_auth`]: drafts in the reps' Gmail and alert emails to reps.
//! **Invariant:** every adapter classifies its own failures into an `Outcome`; none retries on
//! its own (the dispatcher owns retries) and none sends customer-facing mail.

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
