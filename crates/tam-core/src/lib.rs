//! tam-core: the domain of `tam` and every decision that can be made without I/O.
//!
//! It owns the validated domain types (ids, priorities, statuses), the health score
//! (SPEC section 3), escalation episodes and the per-rep alert budget (SPEC section 4), and
//! the backtest that replays them over an account's history.
//!
//! **Invariant:** no I/O, no async runtime, no clock. Anything that needs "now" takes an
//! `as_of` instant as a parameter, so the same inputs always give a byte-identical result.
//! **Invariant:** tam-core depends on no other crate of this workspace.

pub mod agent;
pub mod alerts;
pub mod backtest;
pub mod comms;
pub mod concurrent;
pub mod escalation;
pub mod fate;
pub mod feedback;
mod field;
mod id;
pub mod mime;
mod model;
pub mod outbox;
pub mod ports;
pub mod rate;
pub mod records;
pub mod schedule;
pub mod scoring;
pub mod url;

pub use field::FieldError;
pub use id::{AccountId, Email, TenantId, TicketId};
pub use jiff::{SignedDuration, Timestamp};
pub use model::{HealthStatus, Priority, PriorityNames, TicketStatus, Trend};
