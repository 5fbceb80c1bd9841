//! The ports: what the application needs from the outside world, as traits. Each has an
//! embedded implementation (store tables, local files) and, later, connected ones. Every
//! delivery answers an [`Outcome`] the adapter classified itself.
//!
//! **Boundary:** adapters implement these; tam-core never names an adapter.

use crate::comms::{Brief, CrmUpdate, CustomerDraft, Event, ProfileDocument, RepAlert, Written};
use crate::outbox::Outcome;

/// Where drafts go: the only way customer-facing content leaves `tam`, and it leaves as a draft.
pub trait DraftMailbox {
    /// Saves the draft in the rep's mailbox. Idempotent by the draft's key.
    fn create_draft(&mut self, draft: &CustomerDraft) -> Outcome;

    /// Saves several drafts: one outcome per draft, in order. A mailbox behind a network API
    /// saves several at once, within its quota; the others save them one by one.
    fn create_drafts(&mut self, drafts: &[CustomerDraft]) -> Vec<Outcome> {
        drafts.iter().map(|d| self.create_draft(d)).collect()
    }
}

/// Email alerts to our own reps.
pub trait RepAlerts {
    /// Sends the alert to the rep. Idempotent by the alert's key.
    fn send_alert(&mut self, alert: &RepAlert) -> Outcome;

    /// Sends several alerts: one outcome per alert, in order (several at once where the
    /// channel's quota allows).
    fn send_alerts(&mut self, alerts: &[RepAlert]) -> Vec<Outcome> {
        alerts.iter().map(|a| self.send_alert(a)).collect()
    }
}

/// Chat alerts to the rep's space.
pub trait ChatNotifier {
    /// Posts the alert. Idempotent by the alert's key.
    fn notify(&mut self, alert: &RepAlert) -> Outcome;

    /// Posts several alerts: one outcome per alert, in order (several spaces at once where the
    /// channel allows; one space's messages stay in order).
    fn notify_all(&mut self, alerts: &[RepAlert]) -> Vec<Outcome> {
        alerts.iter().map(|a| self.notify(a)).collect()
    }
}

/// The event bus other agents read.
pub trait EventBus {
    /// Publishes the event on its stream. Idempotent by `event_id`.
    fn publish(&mut self, event: &Event) -> Outcome;
}

/// Health fields on the CRM account.
pub trait CrmWriter {
    /// Writes the fields. Idempotent by nature.
    fn update_health(&mut self, update: &CrmUpdate) -> Outcome;

    /// Writes several accounts' fields: one outcome per update, in order.
    fn update_all(&mut self, updates: &[CrmUpdate]) -> Vec<Outcome> {
        updates.iter().map(|u| self.update_health(u)).collect()
    }
}

/// Where reps read an account's relationship profile (a CRM sub-page, or a local file).
/// Publishing replaces what an earlier publish wrote; it never duplicates a section.
pub trait ProfilePublisher {
    /// Creates or updates the profile of `doc.account`.
    fn publish_profile(&mut self, doc: &ProfileDocument) -> Outcome;
}

/// Why a writer produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(pub String);

/// Writes a communication from a brief: templates in embedded mode, a model later.
pub trait Writer {
    /// Writes it.
    fn write(&self, brief: &Brief) -> Result<Written, WriteError>;

    /// Writes several: one result per brief, in order. A writer that waits on a model writes
    /// several at once, as many as its providers allow.
    fn write_all(&self, briefs: &[&Brief]) -> Vec<Result<Written, WriteError>> {
        briefs.iter().map(|b| self.write(b)).collect()
    }

    /// How many drafts one dispatcher batch should hand it: everything a batch claims must be
    /// written well inside the claim's lease, so a writer that waits on a model asks for few.
    fn drafts_per_claim(&self) -> usize {
        256
    }
}
