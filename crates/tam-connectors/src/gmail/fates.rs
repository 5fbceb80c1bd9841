//! What became of the drafts [`super::GmailDrafts`] saved: still in the rep's drafts
//! (`users.drafts.get`, which `gmail.compose` allows), else sent or deleted. Sending deletes
//! the draft and makes a new message with a Message-ID of Gmail's own, so a sent draft is
//! found in its thread (`users.threads.get`) or, with `gmail.readonly`, by searching the rep's
//! Sent mail for a message to its recipients since it was saved, and the most alike is it.

use std::sync::Arc;

use serde_json::Value;
use tam_core::concurrent::Stop;
use tam_core::fate::{Seen, Watched, decide};
use tam_core::outbox::Outcome;
use tam_core::ports::DraftFates;

use super::{COMPOSE, Gmail, READONLY, failure};
use crate::google_auth::AuthError;

const METADATA: &str = "https://www.googleapis.com/auth/gmail.metadata";

/// Sent mail found by searching is the draft only when at least this share of its words is the
/// draft's; in the draft's own thread, the most alike message is it.
const SEARCH_LIKENESS: f64 = 0.5;

/// Gmail's clock and ours may differ a little: a message this much older than the draft's
/// record is still after it.
const CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;

/// In a thread older than the draft, a sent message is it unless more than this share of its
/// words changed.
const THREAD_LIKENESS: f64 = 0.9;

/// What a GET of a draft or a message answers for one no longer there.
const NOT_FOUND: &[u16] = &[404];

/// What a thread's or a search's GET answers for what is gone (400: an id no longer taken).
const LOOKUP_GONE: &[u16] = &[400, 404];

/// Messages of a search read at most.
const SEARCH_READ: usize = 10;

/// The scope Sent mail is read with (`[mail] read_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadScope {
    /// `gmail.readonly`: whole messages, and search.
    Readonly,
    /// `gmail.metadata`: headers and the first words only, no search.
    Metadata,
}

impl ReadScope {
    /// The scope's URL.
    pub fn url(self) -> &'static str {
        match self {
            ReadScope::Readonly => READONLY,
            ReadScope::Metadata => METADATA,
        }
    }

    /// Its short name, as `tam.toml` and messages say it.
    pub fn name(self) -> &'static str {
        match self {
            ReadScope::Readonly => "gmail.readonly",
            ReadScope::Metadata => "gmail.metadata",
        }
    }
}

/// Reads back the fate of drafts in reps' Gmail.
pub struct GmailFates {
    gmail: Arc<Gmail>,
    read: ReadScope,
}

/// The draft id a receipt of [`super::GmailDrafts`] names.
pub fn draft_id_of(receipt: &str) -> Option<&str> {
    let (_, rest) = receipt.rsplit_once("(draft ")?;
    let id = rest.strip_suffix(')')?.split(',').next()?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(id)
}

/// The thread a receipt names, when Gmail told it as the draft was saved.
pub fn thread_of(receipt: &str) -> Option<&str> {
    let (_, rest) = receipt.rsplit_once(", thread ")?;
    let id = rest.strip_suffix(')')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(id)
}

fn reason(o: Outcome) -> String {
    match o {
        Outcome::Retry { reason, .. } | Outcome::Rejected { reason } => reason,
        Outcome::Delivered { .. } => "Gmail answered".to_owned(),
        Outcome::NotTried => "not tried".to_owned(),
    }
}

/// `&amp;` and the others Gmail writes into a snippet, back to text.
fn unescape(snippet: &str) -> String {
    snippet
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// A message's plain text from its `full` payload: the first `text/plain` part, else the first
/// `text/html` part with its tags dropped.
fn text_of(payload: &Value) -> Option<String> {
    fn find<'a>(part: &'a Value, mime: &str) -> Option<&'a str> {
        if part["mimeType"].as_str() == Some(mime)
            && let Some(data) = part.pointer("/body/data").and_then(Value::as_str)
        {
            return Some(data);
        }
        part["parts"].as_array()?.iter().find_map(|p| find(p, mime))
    }
    let decode = |data: &str| {
        let bytes = crate::google_auth::unbase64url(data)?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    };
    if let Some(text) = find(payload, "text/plain").and_then(decode) {
        return Some(text);
    }
    let html = find(payload, "text/html").and_then(decode)?;
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    Some(unescape(&text))
}

impl GmailFates {
    /// Reads with `read` in the reps' mailboxes.
    pub fn new(gmail: Arc<Gmail>, read: ReadScope) -> GmailFates {
        GmailFates { gmail, read }
    }

    /// Proves that the read scope is delegated, for `rep`'s mailbox, without reading any mail.
    pub fn check(&self, rep: &str) -> Result<String, String> {
        match self.gmail.token(rep, self.read.url()) {
            Ok(_) => Ok(format!("{} is delegated: what became of each draft can be read", self.read.name())),
            Err(e) => Err(format!(
                "{} is not delegated to the service account ({e}): add it to the client's scopes in the Admin \
                 console (Security > API controls > Domain-wide delegation), or drafts' fates stay unknown",
                self.read.name()
            )),
        }
    }

    /// A GET's answer, or none when Gmail answers one of `gone`: 404 for a draft or message no
    /// longer there; a lookup by thread or search also takes 400 (an id Gmail no longer takes)
    /// as gone.
    fn get(&self, rep: &str, scope: &str, path: &str, gone: &[u16]) -> Result<Option<Value>, String> {
        match self.gmail.request(rep, scope, "GET", path, None).map_err(reason)? {
            (200, found) => Ok(Some(found)),
            (status, _) if gone.contains(&status) => Ok(None),
            (status, body) => Err(reason(failure(status, &body))),
        }
    }

    /// A sent message that kept the draft's Message-ID (`gmail.readonly` only: search).
    fn by_message_id(&self, rep: &str, draft: &Watched) -> Result<Vec<Value>, String> {
        if draft.message_id.is_empty() {
            return Ok(Vec::new());
        }
        self.listed(rep, &super::search_for("messages", &draft.message_id))
    }

    /// The messages a `messages.list` path finds, read whole (the first [`SEARCH_READ`]).
    fn listed(&self, rep: &str, path: &str) -> Result<Vec<Value>, String> {
        let Some(list) = self.get(rep, READONLY, path, LOOKUP_GONE)? else { return Ok(Vec::new()) };
        let mut messages = Vec::new();
        for id in list["messages"].as_array().into_iter().flatten().filter_map(|m| m["id"].as_str()).take(SEARCH_READ) {
            let path = format!("/gmail/v1/users/me/messages/{}?format=full", tam_core::url::encode_component(id));
            messages.extend(self.get(rep, READONLY, &path, NOT_FOUND)?);
        }
        Ok(messages)
    }

    /// The text Gmail shows of a message in the format read: the whole text, or the snippet.
    fn shown(&self, message: &Value) -> Option<(String, bool)> {
        match self.read {
            ReadScope::Readonly => message.get("payload").and_then(text_of).map(|t| (t, true)),
            ReadScope::Metadata => message["snippet"].as_str().map(|s| (unescape(s), false)),
        }
    }

    /// Of `messages`, the sent ones since the draft was saved, most alike first, with the share
    /// of their words changed.
    fn sent_among(&self, draft: &Watched, messages: &[Value]) -> Vec<(f64, String, bool)> {
        let since = draft.created_at.as_millisecond() - CLOCK_SKEW_MS;
        let mut found: Vec<(f64, String, bool)> = messages
            .iter()
            .filter(|m| m["labelIds"].as_array().is_some_and(|ls| ls.iter().any(|l| l == "SENT")))
            .filter(|m| m["internalDate"].as_str().and_then(|d| d.parse::<i64>().ok()).is_some_and(|d| d >= since))
            .filter_map(|m| self.shown(m))
            .map(|(text, whole)| {
                let seen = Seen::Sent { text: text.clone(), whole };
                let measured = decide(&[&draft.text, &draft.html_text], seen).changed.unwrap_or(1.0);
                (measured, text, whole)
            })
            .collect();
        found.sort_by(|a, b| a.0.total_cmp(&b.0));
        found
    }

    /// Sent mail to the draft's first recipient since it was saved (`gmail.readonly` only).
    fn search(&self, rep: &str, draft: &Watched) -> Result<Vec<Value>, String> {
        let Some(to) = draft.recipients.first() else { return Ok(Vec::new()) };
        let q = format!("in:sent to:{} after:{}", to.as_str(), draft.created_at.as_second());
        let path =
            format!("/gmail/v1/users/me/messages?q={}&maxResults={SEARCH_READ}", tam_core::url::encode_component(&q));
        self.listed(rep, &path)
    }
}

impl DraftFates for GmailFates {
    fn look(&self, draft: &Watched) -> Result<Seen, String> {
        let rep = draft.rep.as_str();
        let Some(id) = draft_id_of(&draft.receipt) else {
            return Ok(Seen::Unknown("its receipt names no Gmail draft".to_owned()));
        };
        let path = format!("/gmail/v1/users/me/drafts/{}?format=minimal", tam_core::url::encode_component(id));
        if let Some(found) = self.get(rep, COMPOSE, &path, NOT_FOUND)? {
            let thread = found.pointer("/message/threadId").and_then(Value::as_str).map(str::to_owned);
            return Ok(Seen::Draft { thread: thread.or_else(|| draft.thread.clone()) });
        }
        // No longer a draft: sent, or deleted. A scope not delegated is an admin's to fix, and
        // the draft stays watched until then.
        let scope = self.read.url();
        if let Err(e @ AuthError::Refused(_)) = self.gmail.token(rep, scope) {
            return Err(format!("reading {rep}'s Sent mail needs {} delegated: {e}", self.read.name()));
        }
        // The Message-ID first: cheap, and certain where it was kept.
        if self.read == ReadScope::Readonly {
            let messages = self.by_message_id(rep, draft)?;
            if let Some((_, text, whole)) = self.sent_among(draft, &messages).into_iter().next() {
                return Ok(Seen::Sent { text, whole });
            }
        }
        if let Some(thread) = draft.thread.as_deref().or_else(|| thread_of(&draft.receipt)) {
            let format = match self.read {
                ReadScope::Readonly => "full",
                ReadScope::Metadata => "metadata",
            };
            let path =
                format!("/gmail/v1/users/me/threads/{}?format={format}", tam_core::url::encode_component(thread));
            if let Some(found) = self.get(rep, scope, &path, LOOKUP_GONE)? {
                let messages = found["messages"].as_array().cloned().unwrap_or_default();
                // A thread the draft started holds nothing older than it: what was sent in it
                // is the draft, however rewritten. In an older thread (a follow-up), a message
                // sharing almost none of its words is another one.
                let since = draft.created_at.as_millisecond() - CLOCK_SKEW_MS;
                let own = messages.iter().all(|m| {
                    m["internalDate"].as_str().and_then(|d| d.parse::<i64>().ok()).is_some_and(|d| d >= since)
                });
                if let Some((_, text, whole)) = self
                    .sent_among(draft, &messages)
                    .into_iter()
                    .find(|(measured, ..)| own || *measured <= THREAD_LIKENESS)
                {
                    return Ok(Seen::Sent { text, whole });
                }
            }
        }
        match self.read {
            // A new subject starts a new thread: search Sent mail for the draft's words.
            ReadScope::Readonly => {
                let messages = self.search(rep, draft)?;
                match self.sent_among(draft, &messages).into_iter().next() {
                    Some((measured, text, whole)) if measured <= 1.0 - SEARCH_LIKENESS => {
                        Ok(Seen::Sent { text, whole })
                    }
                    _ => Ok(Seen::Deleted),
                }
            }
            ReadScope::Metadata if draft.thread.is_none() && thread_of(&draft.receipt).is_none() => Ok(Seen::Unknown(
                "it left the drafts before it was first looked at, and gmail.metadata cannot search Sent mail"
                    .to_owned(),
            )),
            ReadScope::Metadata => Ok(Seen::Deleted),
        }
    }

    /// Several at once: each rep's mailbox has its own quota.
    fn look_all(&self, drafts: &[Watched], stop: Stop<'_>) -> Vec<Result<Seen, String>> {
        tam_core::concurrent::map_until(drafts, self.gmail.concurrency, stop, |d| self.look(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_names_its_draft_and_a_message_gives_its_text() {
        assert_eq!(draft_id_of("https://mail.google.com/mail/u/ana@v.example/#drafts (draft r-5327)"), Some("r-5327"));
        let both = "https://mail.google.com/mail/u/ana@v.example/#drafts (draft r-5327, thread 18d2c0f6b1a2e3f4)";
        assert_eq!((draft_id_of(both), thread_of(both)), (Some("r-5327"), Some("18d2c0f6b1a2e3f4")));
        assert_eq!(thread_of("https://mail.google.com/mail/u/ana@v.example/#drafts (draft r-5327)"), None);
        assert_eq!(draft_id_of("/home/x/drafts/a.eml"), None);
        let data = crate::google_auth::base64url("Hello team,\nSUP-1 is fixed.".as_bytes());
        let payload = serde_json::json!({"mimeType": "multipart/alternative", "parts": [
            {"mimeType": "text/html", "body": {"data": crate::google_auth::base64url(b"<p>x</p>")}},
            {"mimeType": "text/plain", "body": {"data": data}},
        ]});
        assert_eq!(text_of(&payload).as_deref(), Some("Hello team,\nSUP-1 is fixed."));
        let html = serde_json::json!({"mimeType": "text/html", "body": {"data": crate::google_auth::base64url(b"<p>A &amp; B</p>")}});
        assert_eq!(text_of(&html).as_deref(), Some(" A & B "));
        assert_eq!(unescape("it&#39;s &lt;ok&gt;"), "it's <ok>");
    }
}
