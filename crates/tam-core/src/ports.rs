//! The ports: what the application needs from the outside world, as traits. Each has an
//! embedded implementation (store tables, local files) and, later, connected ones. Every
//! delivery answers an [`Outcome`] the adapter classified itself.
//!
//! **Boundary:** adapters implement these; tam-core never names an adapter.

use crate::comms::{Brief, CrmUpdate, CustomerDraft, Event, ProfileDocument, RepAlert, Written};
use crate::concurrent::Stop;
use crate::fate::{Seen, Watched};
use crate::outbox::Outcome;

/// One outcome per item, in order: `deliver`'s for the items begun before `stop` said so,
/// [`Outcome::NotTried`] for the rest.
pub fn one_by_one<T>(items: &[T], stop: Stop<'_>, mut deliver: impl FnMut(&T) -> Outcome) -> Vec<Outcome> {
    let mut stopped = false;
    items
        .iter()
        .map(|item| {
            stopped = stopped || stop();
            if stopped { Outcome::NotTried } else { deliver(item) }
        })
        .collect()
}

/// `answers` of the first items, padded with [`Outcome::NotTried`] to one per item.
pub fn padded(mut answers: Vec<Outcome>, items: usize) -> Vec<Outcome> {
    answers.resize(items.max(answers.len()), Outcome::NotTried);
    answers
}

/// Where drafts go: the only way customer-facing content leaves `tam`, and it leaves as a draft.
pub trait DraftMailbox {
    /// Saves the draft in the rep's mailbox. Idempotent by the draft's key.
    fn create_draft(&mut self, draft: &CustomerDraft) -> Outcome;

    /// Saves several drafts: one outcome per draft, in order. A mailbox behind a network API
    /// saves several at once, within its quota; the others save them one by one. Once `stop`
    /// says so it begins no more ([`Outcome::NotTried`]).
    fn create_drafts(&mut self, drafts: &[CustomerDraft], stop: Stop<'_>) -> Vec<Outcome> {
        one_by_one(drafts, stop, |d| self.create_draft(d))
    }

    /// The mailbox whose drafts [`DraftFates`] reads back (`gmail`), or none when what becomes
    /// of a saved draft cannot be known (an `.eml` file).
    fn fate_source(&self) -> Option<&'static str> {
        None
    }
}

/// Reads back what became of drafts the mailbox saved.
pub trait DraftFates {
    /// What the mailbox sees of `draft` now. `Err` is a failure worth trying again later (an
    /// outage, a quota); what the mailbox cannot tell for good is [`Seen::Unknown`].
    fn look(&self, draft: &Watched) -> Result<Seen, String>;

    /// Looks at several, one answer each, in order (several at once where the mailbox's quota
    /// allows); none begun once `stop` says so.
    fn look_all(&self, drafts: &[Watched], stop: Stop<'_>) -> Vec<Result<Seen, String>> {
        drafts.iter().map_while(|d| (!stop()).then(|| self.look(d))).collect()
    }
}

/// Email alerts to our own reps.
pub trait RepAlerts {
    /// Sends the alert to the rep. Idempotent by the alert's key.
    fn send_alert(&mut self, alert: &RepAlert) -> Outcome;

    /// Sends several alerts: one outcome per alert, in order (several at once where the
    /// channel's quota allows); none begun once `stop` says so.
    fn send_alerts(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        one_by_one(alerts, stop, |a| self.send_alert(a))
    }
}

/// Chat alerts to the rep's space.
pub trait ChatNotifier {
    /// Posts the alert. Idempotent by the alert's key.
    fn notify(&mut self, alert: &RepAlert) -> Outcome;

    /// Posts several alerts: one outcome per alert, in order (several spaces at once where the
    /// channel allows; one space's messages stay in order); none begun once `stop` says so.
    fn notify_all(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        one_by_one(alerts, stop, |a| self.notify(a))
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

    /// Writes several accounts' fields: one outcome per update, in order; none begun once
    /// `stop` says so.
    fn update_all(&mut self, updates: &[CrmUpdate], stop: Stop<'_>) -> Vec<Outcome> {
        one_by_one(updates, stop, |u| self.update_health(u))
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
    /// several at once, as many as its providers allow. Once `stop` says so it begins no more:
    /// then the results are those of the first briefs only.
    fn write_all(&self, briefs: &[&Brief], stop: Stop<'_>) -> Vec<Result<Written, WriteError>> {
        briefs.iter().map_while(|b| (!stop()).then(|| self.write(b))).collect()
    }

    /// How many drafts one dispatcher batch should hand it: everything a batch claims must be
    /// written well inside the claim's lease, so a writer that waits on a model asks for few.
    fn drafts_per_claim(&self) -> usize {
        256
    }
}
