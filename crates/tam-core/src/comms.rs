//! Communications: what a writer is told (a [`Brief`]), what it answers ([`Written`]), and the
//! two things that leave `tam`: a [`CustomerDraft`] (only ever a draft) and a [`RepAlert`]
//! (sent, but only to our own rep).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::escalation::{AlertCause, Reason};
use crate::outbox::IdemKey;
use crate::scoring::Deduction;
use crate::{AccountId, Email, FieldError, HealthStatus, Priority, TenantId, TicketId, TicketStatus, Timestamp, Trend};

/// The five communications (SPEC 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommKind {
    /// Acknowledges the open issues of an escalated account, with a plan and a next step.
    EscalationOutreach,
    /// A release, told the way one account cares about it.
    ReleaseNotes,
    /// What is coming, tied to the account's integrations and opportunities.
    RoadmapPreview,
    /// The periodic health summary.
    HealthCheckin,
    /// The quarterly review.
    CustomerSuccessReview,
}

impl CommKind {
    /// Every kind.
    pub const ALL: [CommKind; 5] = [
        CommKind::EscalationOutreach,
        CommKind::ReleaseNotes,
        CommKind::RoadmapPreview,
        CommKind::HealthCheckin,
        CommKind::CustomerSuccessReview,
    ];

    /// The kind named `raw`, or why there is none: the names there are.
    pub fn parse(raw: &str) -> Result<CommKind, String> {
        CommKind::ALL.into_iter().find(|k| k.as_str() == raw).ok_or_else(|| {
            let names: Vec<&str> = CommKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("{raw:?} is not a kind of draft; the kinds are {}", names.join(", "))
        })
    }

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            CommKind::EscalationOutreach => "escalation_outreach",
            CommKind::ReleaseNotes => "release_notes",
            CommKind::RoadmapPreview => "roadmap_preview",
            CommKind::HealthCheckin => "health_checkin",
            CommKind::CustomerSuccessReview => "customer_success_review",
        }
    }
}

impl fmt::Display for CommKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// An open ticket as a communication mentions it. `subject` is untrusted customer text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketFacts {
    /// Ticket id.
    pub id: TicketId,
    /// Priority.
    pub priority: Priority,
    /// Status.
    pub status: TicketStatus,
    /// Subject, as the customer wrote it.
    pub subject: String,
    /// Hours open at the brief's instant.
    pub age_hours: f64,
}

/// One change in a release (`release_info.changes[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseChange {
    /// Short title.
    pub title: String,
    /// What changed.
    #[serde(default)]
    pub description: String,
    /// Product area (`sso`, `webhooks`, `api`, ...), matched against features in use.
    #[serde(default)]
    pub area: String,
    /// Tickets this change fixes.
    #[serde(default)]
    pub tickets: Vec<String>,
}

/// A release (`release_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Version.
    pub version: String,
    /// Release date, as given.
    #[serde(default)]
    pub date: String,
    /// The changes.
    #[serde(default)]
    pub changes: Vec<ReleaseChange>,
}

/// One roadmap item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoadmapItem {
    /// Short title.
    pub title: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Product area, matched against integrations, features and opportunities.
    #[serde(default)]
    pub area: String,
    /// When (`2027-Q1`, ...), as given.
    #[serde(default)]
    pub quarter: String,
}

/// A score at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorePoint {
    /// Scan instant.
    pub as_of: Timestamp,
    /// Score.
    pub score: u8,
}

/// What happened over a period: for check-ins and reviews.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeriodStats {
    /// Start of the period.
    pub from: Timestamp,
    /// End of the period.
    pub to: Timestamp,
    /// Tickets opened in the period.
    pub opened: u32,
    /// Tickets resolved or closed in the period, with subjects.
    pub resolved: Vec<TicketFacts>,
    /// Mean hours from opening to resolution of `resolved`.
    pub mean_hours_to_resolve: Option<f64>,
    /// Scores over the period, oldest first.
    pub history: Vec<ScorePoint>,
}

/// What the relationship profile adds to a communication.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileFacts {
    /// Features in use.
    #[serde(default)]
    pub features: Vec<String>,
    /// Active integrations.
    #[serde(default)]
    pub integrations: Vec<String>,
    /// Open co-development opportunities, by title.
    #[serde(default)]
    pub opportunities: Vec<String>,
}

/// Everything a writer may use, and nothing else: the same facts feed templates and prompts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Brief {
    /// Which communication.
    pub kind: CommKind,
    /// Tenant.
    pub tenant: TenantId,
    /// Account id.
    pub account: AccountId,
    /// Customer name.
    pub account_name: String,
    /// Who the draft is addressed to.
    pub contacts: Vec<Email>,
    /// Customer contacts copied on the draft.
    #[serde(default)]
    pub cc: Vec<Email>,
    /// The rep's name, who signs it.
    pub rep_name: String,
    /// The rep's address, the draft's sender.
    pub rep_email: Email,
    /// The instant the facts describe.
    pub as_of: Timestamp,
    /// Score at `as_of`.
    pub score: u8,
    /// Status at `as_of`.
    pub status: HealthStatus,
    /// Trend at `as_of`.
    pub trend: Trend,
    /// Why the score is what it is.
    pub deductions: Vec<Deduction>,
    /// Open tickets, most urgent and oldest first.
    pub open_tickets: Vec<TicketFacts>,
    /// Why the account escalated, for outreach.
    pub escalation_reason: Option<Reason>,
    /// Why the rep is being alerted now, for outreach.
    pub alert_cause: Option<AlertCause>,
    /// The release, for release notes.
    #[serde(default)]
    pub release: Option<ReleaseInfo>,
    /// Tickets of this account that the release mentions.
    #[serde(default)]
    pub reported: Vec<TicketFacts>,
    /// Roadmap items, for a roadmap preview.
    #[serde(default)]
    pub roadmap: Vec<RoadmapItem>,
    /// The period, for check-ins and reviews.
    #[serde(default)]
    pub period: Option<PeriodStats>,
    /// From the relationship profile.
    #[serde(default)]
    pub profile: ProfileFacts,
}

impl Brief {
    /// A brief of `kind` for `account`, from `rep_email`, describing `as_of`, before any fact
    /// is known: named by its id, addressed to nobody, a green 100 with nothing against it.
    /// Whoever builds one sets what it knows.
    pub fn new(kind: CommKind, tenant: TenantId, account: AccountId, rep_email: Email, as_of: Timestamp) -> Brief {
        Brief {
            kind,
            tenant,
            account_name: account.as_str().to_owned(),
            account,
            contacts: Vec::new(),
            cc: Vec::new(),
            rep_name: String::new(),
            rep_email,
            as_of,
            score: 100,
            status: HealthStatus::Green,
            trend: Trend::Unknown,
            deductions: Vec::new(),
            open_tickets: Vec::new(),
            escalation_reason: None,
            alert_cause: None,
            release: None,
            reported: Vec::new(),
            roadmap: Vec::new(),
            period: None,
            profile: ProfileFacts::default(),
        }
    }
}

/// A writer's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Written {
    /// Subject line (sanitised again when it becomes a [`Subject`]).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body; every untrusted value in it is escaped.
    pub html: String,
    /// `template` or the model that wrote it.
    pub generator: String,
    /// How sure the writer is: `low`, `medium` or `high`.
    pub confidence: String,
    /// Why a model's draft was not used, when the template wrote it instead.
    pub note: Option<String>,
    /// Every model call made for this draft.
    pub calls: Vec<ModelCall>,
    /// Images the HTML shows as `cid:<name>` (a review's chart): mail clients draw no SVG.
    /// Absent from payloads written before images existed, so those still read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<InlineImage>,
}

/// A PNG carried inside the message and shown by the HTML as `<img src="cid:NAME">`. The name
/// becomes a header value (Content-ID, file name), so it is checked here: `[a-z0-9-]`, 1..=32.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawImage", into = "RawImage")]
pub struct InlineImage {
    name: String,
    png: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct RawImage {
    name: String,
    png: Vec<u8>,
}

impl InlineImage {
    /// A PNG named `name`; the bytes must start with the PNG signature.
    pub fn png(name: &str, png: Vec<u8>) -> Result<InlineImage, FieldError> {
        let token = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !token {
            return Err(FieldError::new("image.name", format!("{name:?} is not 1 to 32 of [a-z0-9-]")));
        }
        if !png.starts_with(b"\x89PNG\r\n\x1a\n") {
            return Err(FieldError::new("image.png", "not a PNG"));
        }
        Ok(InlineImage { name: name.to_owned(), png })
    }

    /// The name the writer's HTML refers to (`cid:NAME`); the draft qualifies it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The PNG file.
    pub fn bytes(&self) -> &[u8] {
        &self.png
    }
}

impl TryFrom<RawImage> for InlineImage {
    type Error = FieldError;
    fn try_from(raw: RawImage) -> Result<InlineImage, FieldError> {
        InlineImage::png(&raw.name, raw.png)
    }
}

impl From<InlineImage> for RawImage {
    fn from(image: InlineImage) -> RawImage {
        RawImage { name: image.name, png: image.png }
    }
}

/// One call to a model, as recorded for usage accounting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    /// Provider (`anthropic`, `openai`, `openai_compatible`).
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Wall time.
    pub latency_ms: u64,
    /// Input tokens, when the provider said.
    pub input_tokens: Option<u64>,
    /// Output tokens, when the provider said.
    pub output_tokens: Option<u64>,
    /// `ok`, or the failure.
    pub outcome: String,
}

/// A one-line header value: no line breaks or control characters (no header injection), at
/// most 150 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Subject(String);

impl Subject {
    /// Longest subject kept; longer ones are cut with an ellipsis.
    pub const MAX_CHARS: usize = 150;

    /// Sanitises any text into a subject.
    pub fn new(raw: &str) -> Subject {
        let flat: String = raw.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        let words: Vec<&str> = flat.split_whitespace().collect();
        let mut line = words.join(" ");
        if line.chars().count() > Subject::MAX_CHARS {
            line = line.chars().take(Subject::MAX_CHARS - 1).collect::<String>();
            line.push('…');
        }
        Subject(line)
    }

    /// The subject as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Customer-facing content. The only thing that accepts it is a [`crate::ports::DraftMailbox`],
/// which saves it as a draft: no code path can send it to a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDraft {
    tenant: TenantId,
    account: AccountId,
    kind: CommKind,
    key: IdemKey,
    from_name: String,
    from: Email,
    to: Vec<Email>,
    cc: Vec<Email>,
    bcc: Vec<Email>,
    subject: Subject,
    text: String,
    html: String,
    generator: String,
    confidence: String,
    note: Option<String>,
    in_reply_to: Option<String>,
    images: Vec<InlineImage>,
}

impl CustomerDraft {
    /// A draft of `written`, from the brief's rep to the brief's contacts. The recipients come
    /// from the brief only, never from generated text.
    pub fn new(brief: &Brief, written: Written, key: IdemKey) -> CustomerDraft {
        // A Content-ID names the image for the whole world, so the writer's local name gets the
        // draft's digest: unique per draft, and the same on every retry of it.
        let digest = digest_of(&brief.tenant, &key);
        let mut html = written.html;
        for image in &written.images {
            let local = format!("src=\"cid:{}\"", image.name);
            html = html.replace(&local, &format!("src=\"cid:{}\"", content_id(&image.name, &digest)));
        }
        CustomerDraft {
            tenant: brief.tenant.clone(),
            account: brief.account.clone(),
            kind: brief.kind,
            key,
            from_name: brief.rep_name.clone(),
            from: brief.rep_email.clone(),
            to: brief.contacts.clone(),
            cc: brief.cc.clone(),
            bcc: Vec::new(),
            subject: Subject::new(&written.subject),
            text: written.text,
            html,
            generator: written.generator,
            confidence: written.confidence,
            note: written.note,
            in_reply_to: None,
            images: written.images,
        }
    }

    /// The same draft as a reply to the earlier draft `key` of this tenant, in its thread.
    pub fn replying_to(mut self, key: &IdemKey) -> CustomerDraft {
        self.in_reply_to = Some(CustomerDraft::message_id_of(&self.tenant, key));
        self
    }

    /// The same draft under `subject`: a reply keeps its thread's subject, which Gmail needs to
    /// thread it.
    pub fn with_subject(mut self, subject: Subject) -> CustomerDraft {
        self.subject = subject;
        self
    }

    /// The same draft with blind copies to `bcc` (the deployment's own addresses, such as a
    /// CRM's logging inbox; never a customer's).
    pub fn with_bcc(mut self, bcc: &[Email]) -> CustomerDraft {
        self.bcc = bcc.to_vec();
        self
    }

    /// The customer contacts copied.
    pub fn cc(&self) -> &[Email] {
        &self.cc
    }

    /// The blind copies.
    pub fn bcc(&self) -> &[Email] {
        &self.bcc
    }

    /// The Message-ID of the earlier draft this one replies to, if any.
    pub fn in_reply_to(&self) -> Option<&str> {
        self.in_reply_to.as_deref()
    }

    /// Tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    /// Account.
    pub fn account(&self) -> &AccountId {
        &self.account
    }
    /// Which communication.
    pub fn kind(&self) -> CommKind {
        self.kind
    }
    /// The effect's idempotency key; also the basis of the Message-ID.
    pub fn key(&self) -> &IdemKey {
        &self.key
    }
    /// The rep's name, as the sender's display name.
    pub fn from_name(&self) -> &str {
        &self.from_name
    }
    /// The rep, as sender.
    pub fn from(&self) -> &Email {
        &self.from
    }
    /// The customer contacts.
    pub fn to(&self) -> &[Email] {
        &self.to
    }
    /// Subject.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }
    /// Plain text body.
    pub fn text(&self) -> &str {
        &self.text
    }
    /// HTML body.
    pub fn html(&self) -> &str {
        &self.html
    }
    /// `template` or a model name.
    pub fn generator(&self) -> &str {
        &self.generator
    }
    /// `low`, `medium` or `high`.
    pub fn confidence(&self) -> &str {
        &self.confidence
    }
    /// Why the model's draft was not used, when it was not.
    pub fn note(&self) -> Option<&str> {
        self.note.as_deref()
    }
    /// A digest of the tenant and the key: the same draft always, two tenants never.
    pub fn digest(&self) -> String {
        digest_of(&self.tenant, &self.key)
    }

    /// The images the HTML shows, each with its Content-ID (without the angle brackets).
    pub fn images(&self) -> impl Iterator<Item = (String, &InlineImage)> {
        let digest = self.digest();
        self.images.iter().map(move |i| (content_id(&i.name, &digest), i))
    }

    /// A Message-ID derived from the tenant and the key, so a retried draft can be recognised.
    pub fn message_id(&self) -> String {
        CustomerDraft::message_id_of(&self.tenant, &self.key)
    }

    fn message_id_of(tenant: &TenantId, key: &IdemKey) -> String {
        format!("<{}@tam.local>", digest_of(tenant, key))
    }
}

fn content_id(name: &str, digest: &str) -> String {
    format!("{name}.{digest}@tam.local")
}

fn digest_of(tenant: &TenantId, key: &IdemKey) -> String {
    IdemKey::from_stored(format!("{tenant}/{key}")).digest()
}

/// Individual alert or digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// About one account.
    Individual,
    /// About every account over the rep's budget.
    Digest,
}

/// A message to our own rep. Its recipient is the rep, by construction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepAlert {
    /// Tenant.
    pub tenant: TenantId,
    /// The rep.
    pub rep: Email,
    /// The rep's chat space, if any.
    pub chat_space: Option<String>,
    /// Individual or digest.
    pub kind: AlertKind,
    /// Subject line.
    pub subject: Subject,
    /// Plain text, naming each account and where its draft is.
    pub text: String,
    /// The effect's idempotency key.
    pub key: IdemKey,
    /// Each account's "useful" / "not useful" links (a chat card shows them as buttons; the
    /// text has them already). Empty when the tenant takes no feedback.
    pub feedback: Vec<AlertFeedback>,
}

/// The feedback links of one account in an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertFeedback {
    /// The customer's name, as the alert names it.
    pub account_name: String,
    /// Its links.
    pub links: crate::feedback::FeedbackLinks,
}

/// An event for other agents (SPEC 8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Derived from the effect's key: consumers deduplicate on it.
    pub event_id: String,
    /// `escalation` or `opportunity`.
    pub event_type: String,
    /// Tenant; a bus refuses events of another tenant.
    pub tenant_id: TenantId,
    /// Always `technical_account_manager`.
    pub source_agent_id: String,
    /// Agents this event passed through, oldest first.
    pub call_chain: Vec<String>,
    /// `high`, `medium` or `low`.
    pub priority: String,
    /// The payload.
    pub data: serde_json::Value,
    /// When it was produced (the scan instant).
    pub created_at: Timestamp,
}

impl Event {
    /// The stream an event belongs on: `escalations` or `opportunities`.
    pub fn stream(&self) -> &'static str {
        if self.event_type == "opportunity" { "opportunities" } else { "escalations" }
    }
}

/// The agent's id as a source of events.
pub const AGENT_ID: &str = "technical_account_manager";

/// Health fields for the CRM account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrmUpdate {
    /// Tenant.
    pub tenant: TenantId,
    /// Account.
    pub account: AccountId,
    /// Health Score.
    pub score: u8,
    /// Health Status.
    pub status: HealthStatus,
    /// Last Health Scan.
    pub scanned_at: Timestamp,
    /// Escalation flag.
    pub escalated: bool,
}

/// The seven sections of a relationship profile (SPEC 2), in page order.
pub const PROFILE_SECTIONS: [&str; 7] = [
    "Stakeholder Map",
    "Integration Depth",
    "Feature Adoption",
    "Customer Environment",
    "Communication History",
    "Health Dashboard",
    "Co-Development Opportunities",
];

/// An account's relationship profile as a document: what a CRM page or a file shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileDocument {
    /// Tenant.
    pub tenant: TenantId,
    /// Account.
    pub account: AccountId,
    /// Customer name.
    pub account_name: String,
    /// The seven sections, in [`PROFILE_SECTIONS`] order; a section may have no lines.
    pub sections: Vec<ProfileSection>,
}

impl ProfileDocument {
    /// "Technical Relationship Profile - {Account}".
    pub fn title(&self) -> String {
        format!("Technical Relationship Profile - {}", self.account_name)
    }
}

/// One section: a heading and one line per fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileSection {
    /// One of [`PROFILE_SECTIONS`].
    pub title: String,
    /// Plain text, one line per item.
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_bounded_line() {
        let s = Subject::new("Re: outage\r\nBcc: attacker@evil.example\n\tplease");
        assert_eq!(s.as_str(), "Re: outage Bcc: attacker@evil.example please");
        let long = Subject::new(&"x".repeat(400));
        assert_eq!(long.as_str().chars().count(), Subject::MAX_CHARS);
        assert!(long.as_str().ends_with('…'));
    }
}
