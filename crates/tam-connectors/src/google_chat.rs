//! Chat alerts to Google Chat spaces, two ways: incoming webhooks ([`ChatWebhooks`]: one URL
//! per space, each a secret held in an environment variable and never logged) or the Chat API
//! ([`ChatApi`]: `spaces.messages.create` as a Chat app, authorised by a service account).
//!
//! Messages to one space are spaced out (the per-space write quota is about one message a
//! second), cut to Chat's 32,000-byte limit, threaded by the effect's key, and carry the key as
//! `requestId` so a repeated delivery can be recognised.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tam_core::comms::RepAlert;
use tam_core::concurrent::Stop;
use tam_core::outbox::Outcome;
use tam_core::ports::ChatNotifier;
use tam_core::rate::{Limits, Rate};

use crate::google_auth::ServiceAccount;

const CHAT_BOT: &str = "https://www.googleapis.com/auth/chat.bot";

/// Chat's message size limit, with room for the JSON around the text.
const MAX_TEXT_BYTES: usize = 30_000;

/// Where each space's webhook URL lives.
#[derive(Debug, Clone, Default)]
pub struct WebhookConfig {
    /// Space name (`spaces/AAA`) → the environment variable holding its webhook URL.
    pub spaces: HashMap<String, String>,
    /// The variable used for a rep without a space of their own, if any.
    pub default_env: Option<String>,
    /// Least time between two messages to one space.
    pub min_interval: Duration,
    /// Limit on one call.
    pub timeout: Duration,
    /// Spaces posted to at once.
    pub concurrency: usize,
}

/// Posts alerts to Google Chat spaces.
pub struct ChatWebhooks {
    config: WebhookConfig,
    agent: ureq::Agent,
    pacing: Arc<dyn Limits>,
    lookup: Lookup,
}

/// Finds a webhook URL by the name of the variable that holds it.
pub type Lookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl ChatWebhooks {
    /// Webhooks whose URLs are read from the environment at send time.
    pub fn new(config: WebhookConfig) -> ChatWebhooks {
        ChatWebhooks::with_lookup(config, Box::new(|var| std::env::var(var).ok().filter(|v| !v.is_empty())))
    }

    /// Webhooks whose URLs come from `lookup` (tests pass their fakes' URLs).
    pub fn with_lookup(config: WebhookConfig, lookup: Lookup) -> ChatWebhooks {
        let pacing = Arc::new(crate::limits::LocalLimits::default());
        ChatWebhooks { agent: agent(config.timeout), config, pacing, lookup }
    }

    /// The same webhooks, each space's messages counted in `pacing`'s buckets: the store's,
    /// when several replicas post to the same spaces.
    pub fn with_pacing(mut self, pacing: Arc<dyn Limits>) -> ChatWebhooks {
        self.pacing = pacing;
        self
    }

    fn url_for(&self, space: Option<&str>) -> Result<String, String> {
        let var = space
            .and_then(|s| self.config.spaces.get(s))
            .or(self.config.default_env.as_ref())
            .ok_or_else(|| format!("no webhook configured for space {:?}", space.unwrap_or("(none)")))?;
        (self.lookup)(var).ok_or_else(|| format!("environment variable {var} (a Chat webhook URL) is not set"))
    }
}

/// `*subject*` then the text, cut to the size limit on a character boundary.
fn message_text(alert: &RepAlert) -> String {
    text_within(alert, MAX_TEXT_BYTES)
}

fn text_within(alert: &RepAlert, max: usize) -> String {
    let mut text = format!("*{}*\n\n{}", alert.subject.as_str(), alert.text.trim_end());
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut to fit Chat's message size limit)");
    }
    text
}

/// Waits until a message to `space` keeps to the per-space write quota: one message per
/// `min_interval`.
fn pace(pacing: &dyn Limits, space: &str, min_interval: Duration) {
    if min_interval.is_zero() {
        return;
    }
    let wait = pacing.take(&format!("chat:{space}"), 1, Rate::new(1.0 / min_interval.as_secs_f64(), 1));
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
}

/// Posts `alerts` with `post`, the spaces at once on up to `workers` threads and each space's
/// alerts in order on one of them: Chat's write quota is per space. Once `stop` says so, no
/// space posts another.
fn by_space(
    alerts: &[RepAlert],
    workers: usize,
    stop: Stop<'_>,
    space_of: impl Fn(&RepAlert) -> String,
    post: impl Fn(&RepAlert) -> Outcome + Sync,
) -> Vec<Outcome> {
    let mut spaces: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        let space = space_of(alert);
        match spaces.iter_mut().find(|(s, _)| *s == space) {
            Some((_, members)) => members.push(i),
            None => spaces.push((space, vec![i])),
        }
    }
    let posted = tam_core::concurrent::map_until(&spaces, workers, stop, |(_, members)| {
        members.iter().map_while(|&i| (!stop()).then(|| (i, post(&alerts[i])))).collect::<Vec<_>>()
    });
    let mut outcomes: Vec<Option<Outcome>> = alerts.iter().map(|_| None).collect();
    for (i, outcome) in posted.into_iter().flatten() {
        outcomes[i] = Some(outcome);
    }
    outcomes.into_iter().map(|o| o.unwrap_or(Outcome::NotTried)).collect()
}

/// The effect's key as `requestId` (Chat returns the first message for a repeated id) and a
/// reply into the alert's own thread.
fn message_query(alert: &RepAlert) -> String {
    format!("messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={}", alert.key.digest())
}

fn message_body(alert: &RepAlert) -> Value {
    json!({"text": message_text(alert), "thread": {"threadKey": format!("tam-{}", alert.key.digest())}})
}

/// Accounts whose feedback buttons a card shows; a longer digest keeps its links in the text.
const MAX_FEEDBACK_CARDS: usize = 10;

/// The Chat API's message: the text, and a card with "Useful" / "Not useful" buttons for each
/// account the alert names (cards need app authentication, which the API channel has; the
/// webhook keeps the links in its text). Text and cards share Chat's size limit.
fn api_message_body(alert: &RepAlert) -> Value {
    let mut body = message_body(alert);
    if alert.feedback.is_empty() || alert.feedback.len() > MAX_FEEDBACK_CARDS {
        return body;
    }
    let button = |text: &str, url: &str| json!({"text": text, "onClick": {"openLink": {"url": url}}});
    let sections: Vec<Value> = alert
        .feedback
        .iter()
        .map(|f| {
            json!({"header": f.account_name, "widgets": [{"buttonList": {"buttons": [
                button("Useful", &f.links.useful),
                button("Not useful", &f.links.not_useful),
            ]}}]})
        })
        .collect();
    let card = json!([{"cardId": format!("feedback-{}", alert.key.digest()),
                        "card": {"header": {"title": "Was this alert useful?"}, "sections": sections}}]);
    let room = MAX_TEXT_BYTES.saturating_sub(card.to_string().len());
    body["text"] = json!(text_within(alert, room));
    body["cardsV2"] = card;
    body
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into()
}

fn post(agent: &ureq::Agent, url: &str, bearer: Option<&str>, body: &Value) -> Result<(u16, String), ureq::Error> {
    let mut request = agent.post(url).header("content-type", "application/json; charset=UTF-8");
    if let Some(token) = bearer {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send(body.to_string())?;
    Ok((response.status().as_u16(), response.body_mut().read_to_string().unwrap_or_default()))
}

fn classify(status: u16, body: &str) -> Outcome {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = parsed.pointer("/error/message").and_then(Value::as_str).unwrap_or("no error message");
    let reason = format!("Google Chat answered HTTP {status}: {message}");
    match status {
        200 => Outcome::Delivered {
            receipt: parsed.get("name").and_then(Value::as_str).unwrap_or("chat message").to_owned(),
        },
        408 | 429 | 500..=599 if status != 501 => Outcome::Retry { reason, after: None },
        _ => Outcome::Rejected { reason },
    }
}

/// How a chat channel posts one alert, paced per space: what both kinds share, and what a
/// [`Shared`] one calls through its `Arc`.
trait Post: Sync {
    fn post(&self, alert: &RepAlert) -> Outcome;
    /// The space an alert is paced and grouped as.
    fn space_of(&self, alert: &RepAlert) -> String;
    /// Spaces posted to at once.
    fn workers(&self) -> usize;

    fn post_all(&self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        by_space(alerts, self.workers(), stop, |a| self.space_of(a), |a| self.post(a))
    }
}

/// A chat channel shared by every set of channels of a process (the scheduler's, each API
/// task's): one pacing per space, and for the Chat API one token, for all of them.
pub struct Shared<T>(std::sync::Arc<T>);

impl<T> Shared<T> {
    /// Shares `chat`.
    pub fn new(chat: T) -> Shared<T> {
        Shared(std::sync::Arc::new(chat))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Shared<T> {
        Shared(std::sync::Arc::clone(&self.0))
    }
}

impl<T: Post> ChatNotifier for Shared<T> {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        self.0.post(alert)
    }

    fn notify_all(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        self.0.post_all(alerts, stop)
    }
}

impl ChatNotifier for ChatWebhooks {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        Post::post(self, alert)
    }

    fn notify_all(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        self.post_all(alerts, stop)
    }
}

/// The space a webhook alert is paced and grouped as: its own, or the default webhook's.
fn paced_as(alert: &RepAlert) -> &str {
    alert.chat_space.as_deref().unwrap_or("default")
}

impl ChatWebhooks {
    fn post(&self, alert: &RepAlert) -> Outcome {
        let space = alert.chat_space.as_deref();
        let url = match self.url_for(space) {
            Ok(url) => url,
            Err(reason) => return Outcome::Rejected { reason },
        };
        pace(&*self.pacing, paced_as(alert), self.config.min_interval);
        let separator = if url.contains('?') { '&' } else { '?' };
        let full = format!("{url}{separator}{}", message_query(alert));
        // The URL's key and token are the secret: Google may echo them in an error.
        let secrets: Vec<&str> = std::iter::once(url.as_str())
            .chain(url.split(['?', '&']).filter_map(|kv| kv.split_once('=').map(|(_, v)| v)))
            .collect();
        match post(&self.agent, &full, None, &message_body(alert)) {
            Ok((status, text)) => crate::scrub_outcome(classify(status, &text), &secrets),
            // The URL is a secret: the error names the space, never the URL.
            Err(e) => Outcome::Retry {
                reason: format!(
                    "posting to the Chat webhook of space {:?} failed: {}",
                    space.unwrap_or("(default)"),
                    kind_of(&e)
                ),
                after: None,
            },
        }
    }
}

/// Posts alerts with the Chat API as a Chat app (the app must be a member of each space).
pub struct ChatApi {
    auth: ServiceAccount,
    base_url: String,
    default_space: Option<String>,
    min_interval: Duration,
    agent: ureq::Agent,
    pacing: Arc<dyn Limits>,
    concurrency: usize,
}

impl ChatApi {
    /// The Chat API at `base_url` (`https://chat.googleapis.com`); reps without a space of
    /// their own are alerted in `default_space`, if any.
    pub fn new(
        auth: ServiceAccount,
        base_url: &str,
        default_space: Option<String>,
        min_interval: Duration,
        timeout: Duration,
    ) -> ChatApi {
        let base_url = base_url.trim_end_matches('/').to_owned();
        ChatApi {
            auth,
            base_url,
            default_space,
            min_interval,
            agent: agent(timeout),
            pacing: Arc::new(crate::limits::LocalLimits::default()),
            concurrency: 1,
        }
    }

    /// The same client, each space's messages counted in `pacing`'s buckets: the store's, when
    /// several replicas post to the same spaces.
    pub fn with_pacing(mut self, pacing: Arc<dyn Limits>) -> ChatApi {
        self.pacing = pacing;
        self
    }

    /// Posts to up to `spaces` spaces at once.
    pub fn with_concurrency(mut self, spaces: usize) -> ChatApi {
        self.concurrency = spaces.max(1);
        self
    }

    /// Proves the key, the token endpoint and the `chat.bot` scope without posting anything.
    pub fn check(&mut self) -> Result<String, String> {
        self.auth
            .token("", CHAT_BOT)
            .map(|_| "the Chat app has a token (chat.bot); it must be a member of each rep's space".to_owned())
            .map_err(|e| e.to_string())
    }
}

/// A space name as the API spells it, and nothing that could change the request path.
fn valid_space(space: &str) -> bool {
    space
        .strip_prefix("spaces/")
        .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

impl ChatNotifier for ChatApi {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        Post::post(self, alert)
    }

    fn notify_all(&mut self, alerts: &[RepAlert], stop: Stop<'_>) -> Vec<Outcome> {
        self.post_all(alerts, stop)
    }
}

impl Post for ChatApi {
    fn post(&self, alert: &RepAlert) -> Outcome {
        ChatApi::post(self, alert)
    }

    fn space_of(&self, alert: &RepAlert) -> String {
        self.space_for(alert).unwrap_or_default()
    }

    fn workers(&self) -> usize {
        self.concurrency
    }
}

impl Post for ChatWebhooks {
    fn post(&self, alert: &RepAlert) -> Outcome {
        ChatWebhooks::post(self, alert)
    }

    fn space_of(&self, alert: &RepAlert) -> String {
        paced_as(alert).to_owned()
    }

    fn workers(&self) -> usize {
        self.config.concurrency
    }
}

impl ChatApi {
    /// The space an alert goes to: the rep's own, else the configured default.
    fn space_for(&self, alert: &RepAlert) -> Option<String> {
        alert.chat_space.clone().or_else(|| self.default_space.clone())
    }

    fn post(&self, alert: &RepAlert) -> Outcome {
        let Some(space) = self.space_for(alert) else {
            return Outcome::Rejected {
                reason: format!(
                    "no Chat space for {}: set the account's rep_chat_space or [chat] default_space",
                    alert.rep.as_str()
                ),
            };
        };
        if !valid_space(&space) {
            return Outcome::Rejected { reason: format!("{space:?} is not a Chat space name (spaces/...)") };
        }
        let url = format!("{}/v1/{space}/messages?{}", self.base_url, message_query(alert));
        let body = api_message_body(alert);
        pace(&*self.pacing, &space, self.min_interval);
        for attempt in 0..2 {
            let token = match self.auth.token("", CHAT_BOT) {
                Ok(t) => t,
                Err(e) => return e.into(),
            };
            match post(&self.agent, &url, Some(&token), &body) {
                // A token Google stopped accepting is refreshed once.
                Ok((401, _)) if attempt == 0 => self.auth.invalidate("", CHAT_BOT),
                // Google may quote the request, its bearer token included.
                Ok((status, text)) => return crate::scrub_outcome(classify(status, &text), &[&token]),
                Err(e) => {
                    return Outcome::Retry {
                        reason: format!("posting to {space} with the Chat API failed: {}", kind_of(&e)),
                        after: None,
                    };
                }
            }
        }
        Outcome::Retry { reason: "the Chat API refused a fresh token (HTTP 401)".to_owned(), after: None }
    }
}

fn kind_of(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timed out",
        ureq::Error::Io(_) => "connection error",
        ureq::Error::HostNotFound => "host not found",
        ureq::Error::ConnectionFailed => "connection failed",
        _ => "request error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `n`-th alert of a batch, to `space`.
    fn alert(space: &str, n: usize) -> RepAlert {
        RepAlert {
            tenant: tam_core::TenantId::parse("t", "t").unwrap(),
            rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
            chat_space: Some(space.to_owned()),
            kind: tam_core::comms::AlertKind::Individual,
            subject: tam_core::comms::Subject::new("s"),
            text: String::new(),
            key: tam_core::outbox::IdemKey::from_stored(format!("{space}#{n}")),
            feedback: Vec::new(),
        }
    }

    #[test]
    fn an_api_alert_with_feedback_links_carries_a_card_of_buttons_within_chats_size_limit() {
        let links = tam_core::feedback::FeedbackLinks {
            useful: "https://tam.example.com/feedback/u".into(),
            not_useful: "https://tam.example.com/feedback/n".into(),
        };
        let mut a = alert("spaces/A", 1);
        assert!(api_message_body(&a).get("cardsV2").is_none(), "no links, no card");
        a.text = "x".repeat(40_000);
        a.feedback = vec![tam_core::comms::AlertFeedback { account_name: "Northwind".into(), links }];
        let body = api_message_body(&a);
        let section = &body["cardsV2"][0]["card"]["sections"][0];
        assert_eq!(section["header"], "Northwind");
        let buttons = &section["widgets"][0]["buttonList"]["buttons"];
        assert_eq!((buttons[0]["text"].as_str(), buttons[1]["text"].as_str()), (Some("Useful"), Some("Not useful")));
        assert_eq!(buttons[1]["onClick"]["openLink"]["url"], "https://tam.example.com/feedback/n");
        assert!(body.to_string().len() <= 32_000, "text and card share the limit");
        // The webhook keeps the links in its text only.
        assert!(message_body(&a).get("cardsV2").is_none());
    }

    #[test]
    fn a_batch_posts_spaces_at_once_and_each_space_in_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let alerts: Vec<RepAlert> = (0..12).map(|n| alert(["spaces/A", "spaces/B", "spaces/C"][n % 3], n)).collect();
        let posted = std::sync::Mutex::new(Vec::new());
        let (in_flight, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let outcomes = by_space(
            &alerts,
            3,
            &tam_core::concurrent::never,
            |a| a.chat_space.clone().unwrap(),
            |a| {
                most.fetch_max(in_flight.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                posted.lock().unwrap().push(a.key.to_string());
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Outcome::Delivered { receipt: a.key.to_string() }
            },
        );
        // One outcome per alert, in the alerts' order.
        let receipts: Vec<String> = outcomes
            .into_iter()
            .map(|o| match o {
                Outcome::Delivered { receipt } => receipt,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(receipts, alerts.iter().map(|a| a.key.to_string()).collect::<Vec<_>>());
        // Each space's messages went out in order; spaces overlapped, never two to one space.
        let posted = posted.into_inner().unwrap();
        for space in ["spaces/A", "spaces/B", "spaces/C"] {
            let mine: Vec<&String> = posted.iter().filter(|k| k.starts_with(space)).collect();
            let expected: Vec<String> = (0..12)
                .filter(|n| alerts[*n].chat_space.as_deref() == Some(space))
                .map(|n| format!("{space}#{n}"))
                .collect();
            assert_eq!(mine, expected.iter().collect::<Vec<_>>());
        }
        assert!((2..=3).contains(&most.load(Ordering::SeqCst)), "{most:?}");
    }

    #[test]
    fn asked_to_stop_no_space_posts_another_and_the_rest_are_not_tried() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let alerts: Vec<RepAlert> = (0..30).map(|n| alert(["spaces/A", "spaces/B"][n % 2], n)).collect();
        let posted = AtomicUsize::new(0);
        let stop = || posted.load(Ordering::SeqCst) >= 4;
        let outcomes = by_space(
            &alerts,
            2,
            &stop,
            |a| a.chat_space.clone().unwrap(),
            |a| {
                posted.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(5));
                Outcome::Delivered { receipt: a.key.to_string() }
            },
        );
        assert_eq!(outcomes.len(), 30, "one outcome per alert");
        let delivered = outcomes.iter().filter(|o| matches!(o, Outcome::Delivered { .. })).count();
        assert_eq!(delivered, posted.load(Ordering::SeqCst), "each posted alert answers its outcome");
        assert!((4..=5).contains(&delivered), "{delivered} posted: one per space may be in flight");
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Delivered { .. } | Outcome::NotTried)));
    }

    #[test]
    fn long_alerts_are_cut_on_a_character_boundary() {
        let alert = RepAlert {
            tenant: tam_core::TenantId::parse("t", "t").unwrap(),
            rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
            chat_space: None,
            kind: tam_core::comms::AlertKind::Digest,
            subject: tam_core::comms::Subject::new("Digest"),
            text: "é".repeat(40_000),
            key: tam_core::outbox::IdemKey::from_stored("digest:x".into()),
            feedback: Vec::new(),
        };
        let text = message_text(&alert);
        assert!(text.len() < 32_000 && text.ends_with("(cut to fit Chat's message size limit)"));
    }

    #[test]
    fn responses_are_classified() {
        let ok = r#"{"name":"spaces/AAA/messages/x1","thread":{"name":"spaces/AAA/threads/t1"}}"#;
        assert_eq!(classify(200, ok), Outcome::Delivered { receipt: "spaces/AAA/messages/x1".into() });
        let exhausted = r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
        assert!(matches!(classify(429, exhausted), Outcome::Retry { .. }));
        assert!(matches!(classify(503, ""), Outcome::Retry { .. }));
        assert!(
            matches!(classify(400, r#"{"error":{"message":"bad card"}}"#), Outcome::Rejected { reason } if reason.contains("bad card"))
        );
    }
}
