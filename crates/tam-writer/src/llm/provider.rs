use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::prompt::Prompt;

/// The wire format a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions.
    Openai,
    /// Any OpenAI-compatible server (Ollama, vLLM, llama.cpp) at its base URL.
    OpenaiCompatible,
}

impl ProviderKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Anthropic => "https://api.anthropic.com",
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::OpenaiCompatible => "http://localhost:11434/v1",
        }
    }
}

/// One model the router may use. Keys come from the environment only: `api_key_env` names the
/// variable, never the key itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Wire format.
    pub provider: ProviderKind,
    /// The model name the provider knows.
    pub model: String,
    /// Overrides the provider's endpoint (tests point it at local fakes).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The environment variable holding the API key (`ANTHROPIC_API_KEY`, ...).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Limit on one call, connection to last byte.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Most output tokens asked for.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
}

fn default_timeout_ms() -> u64 {
    60_000
}

fn default_max_tokens() -> u32 {
    2_000
}

impl ModelConfig {
    /// `provider/model`, as records and drafts name it.
    pub fn label(&self) -> String {
        format!("{}/{}", self.provider.as_str(), self.model)
    }

    fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or(self.provider.default_base_url()).trim_end_matches('/')
    }
}

/// A model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The text, all text blocks joined.
    pub text: String,
    /// Input tokens, when the provider said.
    pub input_tokens: Option<u64>,
    /// Output tokens, when the provider said.
    pub output_tokens: Option<u64>,
}

/// Why a call failed, classified for the router.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Worth trying again, after `after` if the provider said.
    #[error("{reason}")]
    Retryable {
        /// What happened.
        reason: String,
        /// `Retry-After`.
        after: Option<Duration>,
    },
    /// The account is out of quota or over its spend limit: retrying cannot help.
    #[error("{0}")]
    Quota(String),
    /// The request itself is wrong (or not allowed): retrying cannot help.
    #[error("{0}")]
    Fatal(String),
}

fn error_message(body: &Value, raw: &str) -> String {
    // Anthropic and OpenAI nest it under `error`; vLLM puts it at the top level; some servers
    // send `{"error": "text"}`; a proxy may send HTML.
    let text = body
        .pointer("/error/message")
        .or_else(|| body.get("message"))
        .or_else(|| body.get("error").filter(|e| e.is_string()))
        .and_then(Value::as_str)
        .map_or_else(|| raw.split_whitespace().collect::<Vec<_>>().join(" "), str::to_owned);
    let text: String = text.chars().take(300).collect();
    if text.is_empty() { "no error message".to_owned() } else { redact(&text) }
}

/// Anything that looks like an API key (`sk-...`, `sk-ant-...`, long bearer-like tokens) is
/// replaced before a message is stored or shown.
pub(crate) fn redact(text: &str) -> String {
    text.split(' ')
        .map(|w| {
            let looks_like_key = w.starts_with("sk-")
                || (w.len() >= 32 && w.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)));
            if looks_like_key { "[redacted]" } else { w }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_quota(body: &Value) -> bool {
    let text = |p: &str| body.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
    let codes = [text("/error/code"), text("/error/type"), text("/error/details/error_code")];
    codes.iter().any(|c| matches!(c.as_str(), "insufficient_quota" | "enforced_spend_limit_reached" | "billing_error"))
        || text("/error/message").to_lowercase().contains("usage limits")
}

/// The longest `Retry-After` taken at its word.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3_600);

/// Seconds, as `Retry-After` gives them (an HTTP date is treated as "unknown"); a value past an
/// hour, or one that is not a duration at all, is capped rather than trusted.
fn retry_after(raw: Option<&str>) -> Option<Duration> {
    let secs = raw?.trim().parse::<f64>().ok().filter(|s| *s >= 0.0)?;
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_RETRY_AFTER, |d| d.min(MAX_RETRY_AFTER)))
}

/// Classifies a non-200 answer.
pub(crate) fn classify(status: u16, body: &str, retry_after_header: Option<&str>) -> CallError {
    let parsed: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let message = format!("HTTP {status}: {}", error_message(&parsed, body));
    match status {
        402 => CallError::Quota(message),
        429 if is_quota(&parsed) => CallError::Quota(message),
        408 | 429 | 529 => CallError::Retryable { reason: message, after: retry_after(retry_after_header) },
        500..=599 if status != 501 => CallError::Retryable { reason: message, after: retry_after(retry_after_header) },
        _ => CallError::Fatal(message),
    }
}

fn request(cfg: &ModelConfig, prompt: &Prompt, key: Option<&str>) -> (String, Vec<(&'static str, String)>, Value) {
    match cfg.provider {
        ProviderKind::Anthropic => (
            // The Anthropic base URL is the host; tolerate one given with `/v1` like OpenAI's.
            format!("{}/v1/messages", cfg.base_url().trim_end_matches("/v1")),
            vec![("x-api-key", key.unwrap_or_default().to_owned()), ("anthropic-version", "2023-06-01".to_owned())],
            json!({
                "model": cfg.model, "max_tokens": cfg.max_tokens, "system": prompt.system,
                "messages": [{"role": "user", "content": prompt.user}],
            }),
        ),
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            let messages =
                json!([{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]);
            // OpenAI's newer models take only `max_completion_tokens`; compatible servers know
            // `max_tokens`.
            let body = if cfg.provider == ProviderKind::Openai {
                json!({"model": cfg.model, "max_completion_tokens": cfg.max_tokens, "messages": messages})
            } else {
                json!({"model": cfg.model, "max_tokens": cfg.max_tokens, "messages": messages})
            };
            (
                format!("{}/chat/completions", cfg.base_url()),
                // Local servers ignore the key but some clients must send one.
                vec![("authorization", format!("Bearer {}", key.unwrap_or("none")))],
                body,
            )
        }
    }
}

fn parse_success(provider: ProviderKind, body: &str) -> Result<Completion, CallError> {
    let garbled = |why: &str| CallError::Retryable {
        reason: format!("the response body is not a completion: {why}"),
        after: None,
    };
    let v: Value = serde_json::from_str(body).map_err(|e| garbled(&e.to_string()))?;
    let tokens = |p: &str| v.pointer(p).and_then(Value::as_u64).filter(|n| *n > 0);
    match provider {
        ProviderKind::Anthropic => {
            let blocks = v.get("content").and_then(Value::as_array).ok_or_else(|| garbled("no content"))?;
            let text: String = blocks
                .iter()
                .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|b| b.get("text").and_then(Value::as_str))
                .collect();
            Ok(Completion {
                text,
                input_tokens: tokens("/usage/input_tokens"),
                output_tokens: tokens("/usage/output_tokens"),
            })
        }
        ProviderKind::Openai | ProviderKind::OpenaiCompatible => {
            // A refusal will not change on a retry: move on to the next model.
            if let Some(refusal) = v.pointer("/choices/0/message/refusal").and_then(Value::as_str) {
                return Err(CallError::Fatal(format!(
                    "the model refused: {}",
                    redact(&refusal.chars().take(200).collect::<String>())
                )));
            }
            let text = v
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .ok_or_else(|| garbled("no choices[0].message.content"))?;
            Ok(Completion {
                text: text.to_owned(),
                input_tokens: tokens("/usage/prompt_tokens"),
                output_tokens: tokens("/usage/completion_tokens"),
            })
        }
    }
}

/// One call to one model. The key is read from the environment at call time and never
/// appears in an error.
pub fn call(cfg: &ModelConfig, prompt: &Prompt) -> Result<Completion, CallError> {
    let key = match &cfg.api_key_env {
        Some(var) => match std::env::var(var) {
            Ok(key) if !key.is_empty() => Some(key),
            _ => {
                return Err(CallError::Fatal(format!(
                    "environment variable {var} (the API key of {}) is not set",
                    cfg.label()
                )));
            }
        },
        None => None,
    };
    call_with_key(cfg, prompt, key.as_deref())
}

/// One call with the key already in hand; the key is scrubbed from any error.
pub(crate) fn call_with_key(cfg: &ModelConfig, prompt: &Prompt, key: Option<&str>) -> Result<Completion, CallError> {
    let scrub = |text: String| match key {
        Some(k) if !k.is_empty() => text.replace(k, "[redacted]"),
        _ => text,
    };
    send(cfg, prompt, key).map_err(|e| match e {
        CallError::Retryable { reason, after } => CallError::Retryable { reason: scrub(reason), after },
        CallError::Quota(m) => CallError::Quota(scrub(m)),
        CallError::Fatal(m) => CallError::Fatal(scrub(m)),
    })
}

fn send(cfg: &ModelConfig, prompt: &Prompt, key: Option<&str>) -> Result<Completion, CallError> {
    let (url, headers, body) = request(cfg, prompt, key);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(cfg.timeout_ms)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = agent.post(&url).header("content-type", "application/json");
    for (name, value) in &headers {
        req = req.header(*name, value);
    }
    let mut response = match req.send(body.to_string()) {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => {
            return Err(CallError::Retryable { reason: format!("timed out after {} ms", cfg.timeout_ms), after: None });
        }
        // A URL that cannot work is configuration, not bad luck.
        Err(ureq::Error::BadUri(e)) => return Err(CallError::Fatal(format!("bad base_url for {}: {e}", cfg.label()))),
        Err(e) => {
            return Err(CallError::Retryable {
                reason: format!("request to {} failed: {e}", cfg.label()),
                after: None,
            });
        }
    };
    let status = response.status().as_u16();
    let retry = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = response.body_mut().read_to_string().map_err(|e| match e {
        ureq::Error::Timeout(_) => {
            CallError::Retryable { reason: format!("timed out after {} ms", cfg.timeout_ms), after: None }
        }
        e => CallError::Retryable { reason: format!("reading the response failed: {e}"), after: None },
    })?;
    if status == 200 { parse_success(cfg.provider, &text) } else { Err(classify(status, &text, retry.as_deref())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_of_both_wire_formats_are_read_with_usage() {
        let anthropic = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"- Captain\n"},{"type":"text","text":"- Scoop"}],"stop_reason":"end_turn","usage":{"input_tokens":17,"output_tokens":12}}"#;
        let c = parse_success(ProviderKind::Anthropic, anthropic).unwrap();
        assert_eq!((c.text.as_str(), c.input_tokens, c.output_tokens), ("- Captain\n- Scoop", Some(17), Some(12)));
        let openai = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":54,"completion_tokens":79,"total_tokens":133}}"#;
        let c = parse_success(ProviderKind::Openai, openai).unwrap();
        assert_eq!((c.text.as_str(), c.input_tokens, c.output_tokens), ("Hi", Some(54), Some(79)));
        let missing = r#"{"choices":[{"message":{"content":"x"}}]}"#;
        assert_eq!(
            parse_success(ProviderKind::OpenaiCompatible, missing).unwrap().input_tokens,
            None,
            "no usage is unknown"
        );
    }

    #[test]
    fn failures_are_classified_as_the_router_needs() {
        let rate = r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#;
        assert_eq!(
            classify(429, rate, Some("7")),
            CallError::Retryable {
                reason: "HTTP 429: Number of request tokens has exceeded your per-minute rate limit".into(),
                after: Some(Duration::from_secs(7))
            }
        );
        let quota = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
        assert!(matches!(classify(429, quota, None), CallError::Quota(_)));
        let spend = r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend","details":{"error_code":"enforced_spend_limit_reached"}}}"#;
        assert!(matches!(classify(429, spend, None), CallError::Quota(_)));
        assert!(matches!(
            classify(529, r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, None),
            CallError::Retryable { .. }
        ));
        assert!(matches!(classify(500, "<html>oops</html>", None), CallError::Retryable { .. }));
        assert!(matches!(classify(501, "", None), CallError::Fatal(_)));
        let vllm = r#"{"object":"error","message":"model not found","type":"BadRequestError","param":null,"code":400}"#;
        assert_eq!(classify(400, vllm, None), CallError::Fatal("HTTP 400: model not found".into()));
        assert!(matches!(classify(401, "{}", None), CallError::Fatal(_)));
    }
}

#[cfg(test)]
mod wire_tests {
    use std::time::Duration;

    use super::*;
    use tam_testkit::{Answer, Fake};

    fn cfg(provider: ProviderKind, url: &str, key_env: Option<&str>) -> ModelConfig {
        ModelConfig {
            provider,
            model: "m-1".into(),
            base_url: Some(url.into()),
            api_key_env: key_env.map(str::to_owned),
            timeout_ms: 500,
            max_tokens: 64,
        }
    }

    fn prompt() -> Prompt {
        Prompt { system: "be brief".into(), user: "hello".into() }
    }

    #[test]
    fn anthropic_requests_carry_the_key_version_and_system_prompt() {
        let fake = Fake::start(vec![Answer::json(
            200,
            r#"{"type":"message","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":1}}"#,
        )]);
        let c =
            call_with_key(&cfg(ProviderKind::Anthropic, &fake.url, None), &prompt(), Some("sk-ant-secret")).unwrap();
        assert_eq!((c.text.as_str(), c.output_tokens), ("hi", Some(1)));
        let seen = fake.seen.lock().unwrap()[0].clone();
        assert_eq!(seen.path, "/v1/messages");
        let header = |name: &str| seen.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(header("x-api-key").as_deref(), Some("sk-ant-secret"));
        assert_eq!(header("anthropic-version").as_deref(), Some("2023-06-01"));
        let body: Value = serde_json::from_str(&seen.body).unwrap();
        assert_eq!((body["system"].as_str(), body["max_tokens"].as_u64()), (Some("be brief"), Some(64)));
    }

    #[test]
    fn openai_compatible_errors_and_timeouts_are_classified_and_keep_the_key_out() {
        let fake = Fake::start(vec![
            Answer {
                headers: vec![("retry-after", "2".into())],
                ..Answer::json(429, r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#)
            },
            Answer::json(200, "{not json"),
            Answer { delay: Duration::from_millis(900), ..Answer::json(200, "{}") },
        ]);
        let c = cfg(ProviderKind::OpenaiCompatible, &fake.url, None);
        let key = Some("sk-secret-openai");
        let first = call_with_key(&c, &prompt(), key).unwrap_err();
        assert_eq!(
            first,
            CallError::Retryable { reason: "HTTP 429: slow down".into(), after: Some(Duration::from_secs(2)) }
        );
        assert!(
            matches!(call_with_key(&c, &prompt(), key).unwrap_err(), CallError::Retryable { reason, .. } if reason.starts_with("the response body is not a completion"))
        );
        let timeout = call_with_key(&c, &prompt(), key).unwrap_err();
        assert!(
            matches!(&timeout, CallError::Retryable { reason, .. } if reason.contains("timed out after 500 ms")),
            "{timeout:?}"
        );
        let seen = fake.seen.lock().unwrap()[0].clone();
        assert_eq!(seen.path, "/chat/completions");
        assert!(seen.headers.contains(&("authorization".to_owned(), "Bearer sk-secret-openai".to_owned())));
        for e in [first, timeout] {
            assert!(!e.to_string().contains("sk-secret"), "{e}");
        }
        let missing = call(&cfg(ProviderKind::Openai, &fake.url, Some("TAM_TEST_NO_SUCH_KEY")), &prompt()).unwrap_err();
        assert_eq!(
            missing,
            CallError::Fatal("environment variable TAM_TEST_NO_SUCH_KEY (the API key of openai/m-1) is not set".into())
        );
    }
}

#[cfg(test)]
mod fixture_tests {
    use std::time::Duration;

    use super::*;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every recorded error of both providers, classified as the router must treat it.
    #[test]
    fn the_recorded_errors_are_classified() {
        let mut checked = 0;
        for file in ["anthropic_errors.json", "openai_errors.json"] {
            for e in fixture(file)["errors"].as_array().unwrap() {
                let status = e["status"].as_u64().unwrap() as u16;
                let body = e["body"].to_string();
                let after = e.pointer("/headers/retry-after").and_then(Value::as_str);
                let got = classify(status, &body, after);
                let quota = body.contains("insufficient_quota")
                    || body.contains("enforced_spend_limit_reached")
                    || status == 402;
                match got {
                    CallError::Quota(_) => assert!(quota, "{file} {status} {body}"),
                    CallError::Retryable { after: a, .. } => {
                        assert!(!quota && matches!(status, 408 | 429 | 500..=599), "{file} {status} {body}");
                        assert_eq!(a, after.map(|s| Duration::from_secs(s.parse().unwrap())));
                    }
                    CallError::Fatal(_) => assert!(!quota && (400..500).contains(&status), "{file} {status} {body}"),
                }
                checked += 1;
            }
        }
        let vllm = fixture("vllm_error_400.json");
        let got = classify(400, &vllm["response_body"].to_string(), None);
        assert!(matches!(&got, CallError::Fatal(m) if !m.ends_with("no error message")), "{got:?}");
        assert!(checked >= 8, "{checked}");
    }

    #[test]
    fn the_recorded_successes_are_read() {
        let openai = fixture("openai_chat_completion_response.json")["response_body"].to_string();
        assert_eq!(parse_success(ProviderKind::Openai, &openai).unwrap().output_tokens, Some(79));
        let anthropic = fixture("anthropic_messages_response.json")["response_body"].to_string();
        assert_eq!(parse_success(ProviderKind::Anthropic, &anthropic).unwrap().text, "- Captain\n- Scoop");
    }

    #[test]
    fn absurd_retry_after_values_are_capped_not_trusted() {
        assert_eq!(retry_after(Some("1e20")), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after(Some("-5")), None);
        assert_eq!(retry_after(Some("Wed, 21 Oct 2026 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some("1.5")), Some(Duration::from_millis(1_500)));
    }

    #[test]
    fn refusals_move_on_and_keys_are_redacted() {
        let refusal =
            r#"{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."}}]}"#;
        assert_eq!(
            parse_success(ProviderKind::Openai, refusal),
            Err(CallError::Fatal("the model refused: I can't help with that.".into()))
        );
        let leaked = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123. You can find your API key at ...","code":"invalid_api_key"}}"#;
        let CallError::Fatal(m) = classify(401, leaked, None) else { panic!("401 is fatal") };
        assert!(!m.contains("sk-proj-abc123") && m.contains("[redacted]"), "{m}");
    }
}
