//! The records `tam` keeps: accounts, tickets, heartbeats and real escalations, already
//! validated.
//!
//! They are built at the edge (import, connectors) from raw input; past that point every id,
//! address, priority and instant in them is known to be well formed.

use crate::{AccountId, Email, Priority, TenantId, TicketId, TicketStatus, Timestamp};

/// The rep (TAM) who owns an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rep {
    /// Display name.
    pub name: String,
    /// Where alerts and drafts go.
    pub email: Email,
    /// The rep's chat space, when alerts should also go to chat.
    pub chat_space: Option<String>,
}

/// A customer account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Stable id from the CRM.
    pub id: AccountId,
    /// Customer name.
    pub name: String,
    /// Owning rep.
    pub rep: Rep,
    /// Customer contacts that drafts are addressed to.
    pub contacts: Vec<Email>,
    /// Customer contacts copied on drafts.
    pub cc: Vec<Email>,
    /// Last integration heartbeat known to the CRM; `None` = never monitored.
    pub last_heartbeat: Option<Timestamp>,
    /// API calls reported by the integration.
    pub api_call_count: Option<u64>,
    /// Days between health check-ins.
    pub check_in_interval_days: u32,
}

/// Where a ticket came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TicketSource {
    /// `tam import`.
    Import,
    /// Jira Cloud.
    Jira,
    /// Kayako.
    Kayako,
    /// A Notion tickets database.
    Notion,
}

impl TicketSource {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketSource::Import => "import",
            TicketSource::Jira => "jira",
            TicketSource::Kayako => "kayako",
            TicketSource::Notion => "notion",
        }
    }
}

/// A support ticket, normalised from any source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Owning tenant.
    pub tenant: TenantId,
    /// Id in its source.
    pub id: TicketId,
    /// The account it belongs to.
    pub account: AccountId,
    /// Source system.
    pub source: TicketSource,
    /// Normalised priority.
    pub priority: Priority,
    /// Normalised status.
    pub status: TicketStatus,
    /// Opened at.
    pub created_at: Timestamp,
    /// Last changed at.
    pub updated_at: Option<Timestamp>,
    /// When it was resolved, if it is (a backtest replays it as open until then).
    pub resolved_at: Option<Timestamp>,
    /// One-line summary; untrusted customer text.
    pub subject: String,
    /// `bug`, `question`, `feature_request`, ...
    pub kind: Option<String>,
}

/// One integration heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The account whose integration reported.
    pub account: AccountId,
    /// When.
    pub at: Timestamp,
    /// API calls reported with it.
    pub api_call_count: Option<u64>,
}

/// An escalation that really happened to an account (a customer complaint that reached
/// management, an escalation ticket): what a backtest checks the score's alerts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Owning tenant.
    pub tenant: TenantId,
    /// The account escalated.
    pub account: AccountId,
    /// When.
    pub at: Timestamp,
    /// Where it was recorded (`jira`, `kayako`, `import`, a team's own name).
    pub source: String,
    /// What happened; free text.
    pub note: Option<String>,
}
