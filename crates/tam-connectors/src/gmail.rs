//! Gmail: customer drafts in the rep's mailbox (`users.drafts.create`, impersonating the rep),
//! and alerts to reps (`users.messages.send` from the alerts mailbox to the rep only).
//!
//! Customer content still cannot be sent: [`GmailDrafts`] takes a `CustomerDraft` and only
//! ever creates a draft; [`GmailAlerts`] takes a `RepAlert`, whose recipient is the rep.
//! Gmail has no request key, so before creating a draft the mailbox is searched for the
//! draft's own Message-ID (derived from the effect key): a retried delivery finds the first.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tam_core::comms::{CustomerDraft, RepAlert, Subject};
use tam_core::concurrent::Stop;
use tam_core::outbox::Outcome;
use tam_core::ports::{DraftMailbox, RepAlerts, padded};
use tam_core::rate::{Limits, Rate};
use tam_core::{Email, Timestamp};

use crate::google_auth::{AuthError, ServiceAccount, base64url};

mod fates;

pub use fates::{GmailFates, ReadScope, draft_id_of, thread_of};

const COMPOSE: &str = "https://www.googleapis.com/auth/gmail.compose";
const SEND: &str = "https://www.googleapis.com/auth/gmail.send";
/// Lets the alerts mailbox look in its own mail for an alert sent before (its answer lost).
const READONLY: &str = "https://www.googleapis.com/auth/gmail.readonly";

/// Gmail's per-user quota: 250 units per second, as a moving average (API_FACTS: the per-minute
/// figure, 15,000, is the same average).
pub const USER_UNITS_PER_SECOND: u32 = 250;

/// The window the quota is counted over here: a second, and a margin for Gmail seeing a request
/// a little later or earlier than it left (a request at the edge of Gmail's second is refused).
const QUOTA_WINDOW: Duration = Duration::from_millis(1_100);

/// What a call costs against the per-user quota, by method.
fn units(method: &str, path: &str) -> u32 {
    match (method, path.split('?').next().unwrap_or(path)) {
        ("POST", p) if p.ends_with("/messages/send") => 100,
        ("POST", p) if p.ends_with("/drafts") => 10,
        ("GET", p) if p.contains("/threads/") => 10,
        _ => 5,
    }
}

/// What the Gmail channels share: the service account (and its token cache), the endpoint,
/// and what each mailbox spent of its quota in the last second (every channel and worker of
/// the process draws on the same quota; with `shared`, every replica too).
pub struct Gmail {
    auth: ServiceAccount,
    base_url: String,
    agent: ureq::Agent,
    spent: Mutex<HashMap<String, VecDeque<(Instant, u32)>>>,
    /// The store's buckets, when several replicas spend the same mailboxes' quota.
    shared: Option<Arc<dyn Limits>>,
    units_per_second: u32,
    concurrency: usize,
}

impl Gmail {
    /// Gmail at `base_url` (`https://gmail.googleapis.com`), authorised by `auth`.
    pub fn new(auth: ServiceAccount, base_url: &str, timeout: Duration) -> Arc<Gmail> {
        Gmail::with_limits(auth, base_url, timeout, 1, USER_UNITS_PER_SECOND, None)
    }

    /// Gmail with up to `concurrency` calls at once, each mailbox kept under `units_per_second`
    /// of quota; by every replica together when given the store's `shared` buckets.
    pub fn with_limits(
        auth: ServiceAccount,
        base_url: &str,
        timeout: Duration,
        concurrency: usize,
        units_per_second: u32,
        shared: Option<Arc<dyn Limits>>,
    ) -> Arc<Gmail> {
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Arc::new(Gmail {
            auth,
            base_url: base_url.trim_end_matches('/').to_owned(),
            agent,
            spent: Mutex::new(HashMap::new()),
            shared,
            units_per_second: units_per_second.max(100),
            concurrency: concurrency.max(1),
        })
    }

    /// Waits until `sub` may spend `cost` units without going over its quota, and spends them.
    fn pace(&self, sub: &str, cost: u32) {
        if let Some(shared) = &self.shared {
            // Replicas share a token bucket, which cannot count a sliding second: holding 40%
            // of a second's quota, refilled at 60% a second, no second can exceed it.
            let units = f64::from(self.units_per_second);
            let rate = Rate::new(units * 0.6, (units * 0.4) as u32);
            let wait = shared.take(&format!("gmail:{sub}"), cost, rate);
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        loop {
            let wait = {
                let mut spent = self.spent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let window = spent.entry(sub.to_owned()).or_default();
                let now = Instant::now();
                while window.front().is_some_and(|(at, _)| now.duration_since(*at) >= QUOTA_WINDOW) {
                    window.pop_front();
                }
                let used: u32 = window.iter().map(|(_, u)| u).sum();
                if used + cost <= self.units_per_second {
                    window.push_back((now, cost));
                    return;
                }
                // The oldest spend leaves the window first.
                window.front().map_or(Duration::ZERO, |(at, _)| QUOTA_WINDOW.saturating_sub(now.duration_since(*at)))
            };
            std::thread::sleep(wait.max(Duration::from_millis(1)));
        }
    }

    fn token(&self, sub: &str, scope: &str) -> Result<String, AuthError> {
        self.auth.token(sub, scope)
    }

    fn invalidate(&self, sub: &str, scope: &str) {
        self.auth.invalidate(sub, scope);
    }

    /// One authorised request as `sub`; a 401 refreshes the token and tries once more.
    fn request(
        &self,
        sub: &str,
        scope: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), Outcome> {
        for attempt in 0..2 {
            let token = self.token(sub, scope)?;
            // Paced once the token is in hand: a token fetch can take longer than the quota's
            // window, and the quota counts when Gmail sees the call.
            self.pace(sub, units(method, path));
            let url = format!("{}{path}", self.base_url);
            let auth = format!("Bearer {token}");
            let sent = match (method, body) {
                ("GET", _) => self.agent.get(&url).header("authorization", &auth).call(),
                (_, Some(b)) => self
                    .agent
                    .post(&url)
                    .header("authorization", &auth)
                    .header("content-type", "application/json")
                    .send(b.to_string()),
                (_, None) => self.agent.post(&url).header("authorization", &auth).send_empty(),
            };
            let mut response =
                sent.map_err(|e| Outcome::Retry { reason: format!("Gmail request failed: {e}"), after: None })?;
            let status = response.status().as_u16();
            // Google may echo the request: the token it carried never reaches a message.
            let text = crate::scrub(&response.body_mut().read_to_string().unwrap_or_default(), &[&token]);
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status == 401 && attempt == 0 {
                self.invalidate(sub, scope);
                continue;
            }
            return Ok((status, parsed));
        }
        unreachable!("the loop returns on its second pass")
    }
}

/// Classifies a Gmail error answer.
fn failure(status: u16, body: &Value) -> Outcome {
    let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no error message");
    let reason_code = body.pointer("/error/errors/0/reason").and_then(Value::as_str).unwrap_or_default();
    let reason = format!("Gmail answered HTTP {status}: {message}");
    let rate_limited = matches!(reason_code, "rateLimitExceeded" | "userRateLimitExceeded");
    match status {
        429 | 500 | 502 | 503 | 504 => Outcome::Retry { reason, after: None },
        403 if rate_limited => Outcome::Retry { reason, after: None },
        _ => Outcome::Rejected { reason },
    }
}

/// Drafts in each rep's Gmail.
pub struct GmailDrafts {
    gmail: Arc<Gmail>,
    bcc: Vec<tam_core::Email>,
}

impl GmailDrafts {
    /// The drafts channel.
    pub fn new(gmail: Arc<Gmail>) -> GmailDrafts {
        GmailDrafts { gmail, bcc: Vec::new() }
    }

    /// Every draft also blind-copies `bcc` (`[mail] bcc`: the deployment's own addresses).
    pub fn with_bcc(mut self, bcc: Vec<tam_core::Email>) -> GmailDrafts {
        self.bcc = bcc;
        self
    }
}

/// Where the rep finds the draft: the receipt, and the alert's link. Gmail has no stable link
/// to one draft, so this is the rep's drafts folder, with the draft's id and thread for the
/// record ([`GmailFates`] follows the draft by them).
fn drafts_link(rep: &str, id: &str, thread: Option<&str>) -> String {
    match thread {
        Some(thread) => format!("https://mail.google.com/mail/u/{rep}/#drafts (draft {id}, thread {thread})"),
        None => format!("https://mail.google.com/mail/u/{rep}/#drafts (draft {id})"),
    }
}

/// `/gmail/v1/users/me/{list}?q=rfc822msgid:<...>`, escaped for a query string.
fn search_for(list: &str, message_id: &str) -> String {
    let q: String = format!("rfc822msgid:{message_id}")
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect();
    format!("/gmail/v1/users/me/{list}?q={q}")
}

impl GmailDrafts {
    /// For a follow-up, the earlier draft's thread (while the rep still has it as a draft) and
    /// the draft under that thread's subject: Gmail threads a draft only when `threadId`, the
    /// reply headers and the subject all agree. Only draft methods are used, which the
    /// delegated `gmail.compose` allows (`users.messages.list` would need a read scope). Once
    /// the rep has sent the earlier draft it is no longer a draft, and the follow-up starts a
    /// thread of its own, still naming the earlier message in its reply headers.
    fn thread_of(&self, rep: &str, draft: &CustomerDraft) -> Result<(Option<String>, CustomerDraft), Outcome> {
        let Some(earlier) = draft.in_reply_to() else { return Ok((None, draft.clone())) };
        let found = match self.gmail.request(rep, COMPOSE, "GET", &search_for("drafts", earlier), None)? {
            (200, found) => found,
            (status, body) => return Err(failure(status, &body)),
        };
        let (Some(id), Some(thread)) = (
            found.pointer("/drafts/0/id").and_then(Value::as_str),
            found.pointer("/drafts/0/message/threadId").and_then(Value::as_str),
        ) else {
            return Ok((None, draft.clone()));
        };
        let path = format!("/gmail/v1/users/me/drafts/{id}?format=metadata&metadataHeaders=Subject");
        let subject = match self.gmail.request(rep, COMPOSE, "GET", &path, None)? {
            (200, found) => found
                .pointer("/message/payload/headers")
                .and_then(Value::as_array)
                .and_then(|hs| {
                    hs.iter().find(|h| h["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case("subject")))
                })
                .and_then(|h| h["value"].as_str())
                .map(|s| s.to_owned()),
            (status, body) => return Err(failure(status, &body)),
        };
        let draft = match subject {
            Some(s) => {
                let bare = s.strip_prefix("Re: ").unwrap_or(&s);
                draft.clone().with_subject(Subject::new(&format!("Re: {bare}")))
            }
            None => draft.clone(),
        };
        Ok((Some(thread.to_owned()), draft))
    }
}

impl DraftMailbox for GmailDrafts {
    fn create_draft(&mut self, draft: &CustomerDraft) -> Outcome {
        self.save(draft)
    }

    /// [`GmailFates`] reads back what became of each draft.
    fn fate_source(&self) -> Option<&'static str> {
        Some("gmail")
    }

    /// Several at once: each rep's mailbox has its own quota, and most of a draft's time is
    /// spent waiting on Gmail.
    fn create_drafts(&mut self, drafts: &[CustomerDraft], stop: Stop<'_>) -> Vec<Outcome> {
        let saved = tam_core::concurrent::map_until(drafts, self.gmail.concurrency, stop, |d| self.save(d));
        padded(saved, drafts.len())
    }
}

impl GmailDrafts {
    fn save(&self, draft: &CustomerDraft) -> Outcome {
        let rep = draft.from().as_str();
        // A retried delivery may have created it already: look for its Message-ID first.
        match self.gmail.request(rep, COMPOSE, "GET", &search_for("drafts", &draft.message_id()), None) {
            Ok((200, found)) => {
                if let Some(id) = found.pointer("/drafts/0/id").and_then(Value::as_str) {
                    let thread = found.pointer("/drafts/0/message/threadId").and_then(Value::as_str);
                    return Outcome::Delivered { receipt: drafts_link(rep, id, thread) };
                }
            }
            Ok((status, body)) => return failure(status, &body),
            Err(o) => return o,
        }
        let (thread, draft) = match self.thread_of(rep, draft) {
            Ok(found) => found,
            Err(o) => return o,
        };
        let draft = draft.with_bcc(&self.bcc);
        let raw = base64url(tam_core::mime::render(&draft, Timestamp::now()).as_bytes());
        let mut message = json!({"raw": raw});
        if let Some(thread) = thread {
            message["threadId"] = json!(thread);
        }
        match self.gmail.request(rep, COMPOSE, "POST", "/gmail/v1/users/me/drafts", Some(&json!({"message": message})))
        {
            Ok((200, created)) => {
                let id = created.get("id").and_then(Value::as_str).unwrap_or("?");
                let thread = created.pointer("/message/threadId").and_then(Value::as_str);
                Outcome::Delivered { receipt: drafts_link(rep, id, thread) }
            }
            Ok((status, body)) => failure(status, &body),
            Err(o) => o,
        }
    }
}

/// Alert emails to reps, sent from one alerts mailbox of the domain.
pub struct GmailAlerts {
    gmail: Arc<Gmail>,
    from: Email,
    /// Whether `gmail.readonly` is delegated for the alerts mailbox: without it a send whose
    /// answer was lost cannot be found, and its retry sends the alert again.
    can_look: std::sync::atomic::AtomicBool,
}

impl GmailAlerts {
    /// Alerts sent as `from` (a mailbox the service account may impersonate).
    pub fn new(gmail: Arc<Gmail>, from: Email) -> GmailAlerts {
        GmailAlerts { gmail, from, can_look: std::sync::atomic::AtomicBool::new(true) }
    }

    /// Proves the key, the token endpoint and the delegation of `gmail.send` for the alerts
    /// mailbox, without sending anything; says whether `gmail.readonly` is delegated too.
    pub fn check(&self) -> Result<String, String> {
        let from = self.from.as_str();
        self.gmail.token(from, SEND).map_err(|e| e.to_string())?;
        Ok(match self.gmail.token(from, READONLY) {
            Ok(_) => format!("{from} may send alerts (gmail.send) and find one sent before (gmail.readonly)"),
            Err(_) => format!(
                "{from} may send alerts (gmail.send); without gmail.readonly delegated, an alert whose answer \
                 Gmail lost is sent again on retry"
            ),
        })
    }

    /// The id of the alert in the alerts mailbox if it was sent before, looked up by its
    /// Message-ID (`None` also when `gmail.readonly` is not delegated: then it cannot be told).
    fn sent_before(&self, alert: &RepAlert) -> Result<Option<String>, Outcome> {
        use std::sync::atomic::Ordering;
        let from = self.from.as_str();
        if !self.can_look.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if let Err(AuthError::Refused(_)) = self.gmail.token(from, READONLY) {
            self.can_look.store(false, Ordering::Relaxed);
            return Ok(None);
        }
        let message_id = tam_core::mime::alert_message_id(alert);
        match self.gmail.request(from, READONLY, "GET", &search_for("messages", &message_id), None)? {
            (200, found) => Ok(found.pointer("/messages/0/id").and_then(Value::as_str).map(str::to_owned)),
            (status, body) => Err(failure(status, &body)),
        }
    }
}

impl RepAlerts for GmailAlerts {
    fn send_alert(&mut self, alert: &RepAlert) -> Outcome {
        self.send(alert)
    }

    /// Several at once, within the alerts mailbox's quota (a send costs 100 of its 250 units a
    /// second, so that quota, not the workers, sets the pace).
    fn send_alerts(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        padded(tam_core::concurrent::map_until(alerts, self.gmail.concurrency, stop, |a| self.send(a)), alerts.len())
    }
}

impl GmailAlerts {
    fn send(&self, alert: &RepAlert) -> Outcome {
        // A send whose answer was lost may have gone out: an alert found in the mailbox is not
        // sent again (Gmail has no request key).
        match self.sent_before(alert) {
            Ok(Some(id)) => return Outcome::Delivered { receipt: format!("gmail:sent/{id}") },
            Ok(None) => {}
            Err(o) => return o,
        }
        let raw = base64url(tam_core::mime::render_alert(alert, &self.from, Timestamp::now()).as_bytes());
        match self.gmail.request(
            self.from.as_str(),
            SEND,
            "POST",
            "/gmail/v1/users/me/messages/send",
            Some(&json!({"raw": raw})),
        ) {
            Ok((200, sent)) => Outcome::Delivered {
                receipt: format!("gmail:sent/{}", sent.get("id").and_then(Value::as_str).unwrap_or("?")),
            },
            Ok((status, body)) => failure(status, &body),
            Err(o) => o,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_outages_are_retried_and_the_rest_refused() {
        let error = |code: u16, reason: &str| json!({"error": {"code": code, "message": "m", "errors": [{"domain": "usageLimits", "reason": reason}]}});
        let retried = |o: Outcome| matches!(o, Outcome::Retry { .. });
        assert!(retried(failure(429, &error(429, "rateLimitExceeded"))));
        assert!(retried(failure(403, &error(403, "userRateLimitExceeded"))));
        assert!(retried(failure(503, &Value::Null)));
        assert!(!retried(failure(403, &error(403, "insufficientPermissions"))));
        assert!(!retried(failure(400, &error(400, "invalidArgument"))));
        let Outcome::Rejected { reason } = failure(400, &error(400, "invalidArgument")) else { unreachable!() };
        assert_eq!(reason, "Gmail answered HTTP 400: m");
    }
}
