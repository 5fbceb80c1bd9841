//! Chat alerts through Google Chat incoming webhooks: one webhook URL per space, each URL a
//! secret held in an environment variable (the URL is the credential; it is never logged).
//!
//! Messages to one space are spaced out (the per-space write quota is about one message a
//! second), cut to Chat's 32,000-byte limit, threaded by the effect's key, and carry the key as
//! `requestId` so a repeated delivery can be recognised.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tam_core::comms::RepAlert;
use tam_core::outbox::Outcome;
use tam_core::ports::ChatNotifier;

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
}

/// Posts alerts to Google Chat spaces.
pub struct ChatWebhooks {
    config: WebhookConfig,
    last_sent: HashMap<String, Instant>,
    lookup: Lookup,
}

/// Finds a webhook URL by the name of the variable that holds it.
pub type Lookup = Box<dyn Fn(&str) -> Option<String> + Send>;

impl ChatWebhooks {
    /// Webhooks whose URLs are read from the environment at send time.
    pub fn new(config: WebhookConfig) -> ChatWebhooks {
        ChatWebhooks::with_lookup(config, Box::new(|var| std::env::var(var).ok().filter(|v| !v.is_empty())))
    }

    /// Webhooks whose URLs come from `lookup` (tests pass their fakes' URLs).
    pub fn with_lookup(config: WebhookConfig, lookup: Lookup) -> ChatWebhooks {
        ChatWebhooks { config, last_sent: HashMap::new(), lookup }
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
    let mut text = format!("*{}*\n\n{}", alert.subject.as_str(), alert.text.trim_end());
    if text.len() > MAX_TEXT_BYTES {
        let mut cut = MAX_TEXT_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n… (cut to fit Chat's message size limit)");
    }
    text
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

impl ChatNotifier for ChatWebhooks {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        let space = alert.chat_space.as_deref();
        let url = match self.url_for(space) {
            Ok(url) => url,
            Err(reason) => return Outcome::Rejected { reason },
        };
        let space_key = space.unwrap_or("default").to_owned();
        if let Some(last) = self.last_sent.get(&space_key) {
            let wait = self.config.min_interval.saturating_sub(last.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
        }
        let digest = alert.key.digest();
        let separator = if url.contains('?') { '&' } else { '?' };
        let full =
            format!("{url}{separator}messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD&requestId={digest}");
        let body = json!({"text": message_text(alert), "thread": {"threadKey": format!("tam-{digest}")}});
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        self.last_sent.insert(space_key, Instant::now());
        let sent = agent.post(&full).header("content-type", "application/json; charset=UTF-8").send(body.to_string());
        match sent {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                classify(status, &text)
            }
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
