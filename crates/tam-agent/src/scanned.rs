//! What a scan concluded about one account: read by the scan's planning of effects and by
//! everything that reports a scan, so that the scan path runs one way (scan → effects).

use tam_core::alerts::Delivery;
use tam_core::escalation::Decision;
use tam_core::outbox::IdemKey;
use tam_core::scoring::Health;
use tam_core::{AccountId, Email, FieldError, Trend};

/// One account's result.
#[derive(Debug, Clone)]
pub struct AccountResult {
    /// The account.
    pub account: AccountId,
    /// Its name.
    pub name: String,
    /// Its rep's name.
    pub rep_name: String,
    /// Its rep's email, as stored.
    pub rep_email: String,
    /// That address read, lower-cased, or why it is not one.
    pub rep: Result<Email, FieldError>,
    /// Its rep's chat space.
    pub rep_chat_space: Option<String>,
    /// Score, status, breakdown.
    pub health: Health,
    /// Against about a week earlier.
    pub trend: Trend,
    /// Escalation decision.
    pub decision: Decision,
    /// How the rep hears about it from this scan, if at all.
    pub delivery: Option<Delivery>,
    /// Whether the score, status or escalation flag differs from the previous scan's: the
    /// CRM is written only then.
    pub crm_changed: bool,
    /// The latest outreach draft of its open episode, read when a cool-down reminder may be
    /// due (the reminder links it).
    pub episode_draft: Option<IdemKey>,
}
