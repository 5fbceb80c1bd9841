//! tam-app: the application as a library. The CLI, the daemon, the HTTP API and the MCP
//! server call it the same way: they parse their input, hand it the process's clients
//! and the rules of `tam.toml`, and print or serve what it returns.
//!
//! It composes the layers below: [`tam_agent`] (import, scan, effects, dispatch, tasks) on
//! [`tam_store`], with the ports of [`tam_core`] filled by [`tam_connectors`]. It speaks no
//! SaaS API itself: every request goes through a connector's client.
//!
//! * [`rules`]: the per-tenant rules, read once.
//! * [`sync`]: ticket syncs over the [`sync::TicketSource`] and [`sync::TicketSink`] ports,
//!   and Notion's accounts and tickets pull.
//! * [`webhook`]: one Jira delivery, checked, stored and re-scored.
//! * [`heartbeats`]: a tenant's posted heartbeats, stored as its own.
//! * [`channels`]: the channels effects go out through, and the dispatch over them.
//! * [`scan`]: a tenant's scan, as every caller runs it.
//! * [`jobs`]: the scheduler's tick.
//! * [`fates`]: what reps made of the drafts: each looked at in its mailbox, and the report.
//! * [`feedback`]: what reps said of their alerts, per escalation reason and per rep.
//! * [`backtest`]: the daily scan replayed over the tenant's history, judged against its real
//!   escalations.
//! * [`views`]: what readers are shown: explanations, histories, tickets, profiles, drafts,
//!   the outbox; the CLI's `--json` and the MCP server's answers.
//! * [`log`]: what the application says on stderr.

pub mod backtest;
pub mod channels;
pub mod fates;
pub mod feedback;
pub mod heartbeats;
pub mod jobs;
pub mod log;
pub mod rules;
pub mod scan;
pub mod sync;
pub mod views;
pub mod webhook;

pub use rules::Rules;

/// "Now" for a scan, a task or a job, to the second: one clock read, and a readable instant in
/// every output.
pub fn now() -> tam_core::Timestamp {
    use tam_core::Timestamp;
    Timestamp::from_second(Timestamp::now().as_second()).expect("the current second is a valid timestamp")
}
