use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tam_core::comms::ModelCall;

use super::provider::{CallError, Completion, ModelConfig, call};
use crate::prompt::Prompt;

/// Every model failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no model answered: {0}")]
pub struct RouterError(pub String);

/// How the router waits between retries; tests pass one that does not sleep.
pub type Sleep = Arc<dyn Fn(Duration) + Send + Sync>;

/// A counting semaphore per provider, so one provider never has more than `limit` calls in
/// flight however many threads write drafts.
#[derive(Default)]
struct Gates {
    in_flight: Mutex<HashMap<String, usize>>,
    freed: Condvar,
}

/// An ordered list of models with retries and fallback.
pub struct Router {
    models: Vec<ModelConfig>,
    retries_per_model: u32,
    base_delay: Duration,
    max_delay: Duration,
    concurrency_per_provider: usize,
    gates: Gates,
    sleep: Sleep,
    /// Per model label: failures in a row, and until when it is skipped once tripped.
    breaker: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

/// What one routed request did: the answer (and which model gave it) or why none did, and
/// every call it made on the way.
#[derive(Debug)]
pub struct Routed {
    /// The answer and the model's label, or the failures.
    pub result: Result<(Completion, String), RouterError>,
    /// Every call, in order.
    pub calls: Vec<ModelCall>,
    /// Models not asked because they kept failing (the circuit breaker), in words.
    pub skipped: Vec<String>,
}

/// Consecutive timeouts or server errors (without a `Retry-After`) after which a model is not
/// asked again for a while: a hanging model must not cost every draft of a run its timeouts.
const TRIP_AFTER: u32 = 3;
/// How long a tripped model is left alone.
const OPEN_FOR: Duration = Duration::from_secs(10 * 60);

impl Router {
    /// A router over `models`, in order of preference.
    pub fn new(
        models: Vec<ModelConfig>,
        retries_per_model: u32,
        base_delay: Duration,
        concurrency_per_provider: usize,
    ) -> Router {
        Router {
            models,
            retries_per_model,
            base_delay,
            max_delay: Duration::from_secs(60),
            concurrency_per_provider: concurrency_per_provider.max(1),
            gates: Gates::default(),
            sleep: Arc::new(std::thread::sleep),
            breaker: Mutex::default(),
        }
    }

    /// Replaces how the router waits (tests record waits instead of sleeping).
    pub fn with_sleep(mut self, sleep: Sleep) -> Router {
        self.sleep = sleep;
        self
    }

    /// Calls one provider may have in flight.
    pub fn concurrency_per_provider(&self) -> usize {
        self.concurrency_per_provider
    }

    /// The models, in order.
    pub fn models(&self) -> &[ModelConfig] {
        &self.models
    }

    fn gated<T>(&self, provider: &str, f: impl FnOnce() -> T) -> T {
        let mut in_flight = self.gates.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while in_flight.get(provider).copied().unwrap_or(0) >= self.concurrency_per_provider {
            in_flight = self.gates.freed.wait(in_flight).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *in_flight.entry(provider.to_owned()).or_default() += 1;
        drop(in_flight);
        // The slot is given back even if the call panics, so one bad call never wedges a provider.
        struct Slot<'a>(&'a Gates, &'a str);
        impl Drop for Slot<'_> {
            fn drop(&mut self) {
                let mut in_flight = self.0.in_flight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if let Some(n) = in_flight.get_mut(self.1) {
                    *n -= 1;
                }
                self.0.freed.notify_all();
            }
        }
        let _slot = Slot(&self.gates, provider);
        f()
    }

    fn record(cfg: &ModelConfig, started: Instant, result: &Result<Completion, CallError>) -> ModelCall {
        let (input_tokens, output_tokens, outcome) = match result {
            Ok(c) => (c.input_tokens, c.output_tokens, "ok".to_owned()),
            Err(e) => (None, None, e.to_string()),
        };
        ModelCall {
            provider: cfg.provider.as_str().to_owned(),
            model: cfg.model.clone(),
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            input_tokens,
            output_tokens,
            outcome,
        }
    }

    /// Asks the models in order until one answers. Each model is retried on retryable
    /// failures (waiting its `Retry-After`, or an exponential backoff); quota and request
    /// errors move to the next model at once. Returns the answer and the model's label.
    pub fn complete(&self, prompt: &Prompt) -> Routed {
        self.complete_with(prompt, call)
    }

    pub(crate) fn complete_with(
        &self,
        prompt: &Prompt,
        mut caller: impl FnMut(&ModelConfig, &Prompt) -> Result<Completion, CallError>,
    ) -> Routed {
        let mut failures = Vec::new();
        let mut calls = Vec::new();
        let mut skipped = Vec::new();
        for cfg in &self.models {
            let label = cfg.label();
            if self.tripped(&label) {
                let why = format!(
                    "{label} skipped: it timed out or failed {TRIP_AFTER} times in a row; not asked again for {} minutes",
                    OPEN_FOR.as_secs() / 60
                );
                failures.push(why.clone());
                skipped.push(why);
                continue;
            }
            let mut attempt = 0;
            loop {
                let started = Instant::now();
                let result = self.gated(cfg.provider.as_str(), || caller(cfg, prompt));
                calls.push(Self::record(cfg, started, &result));
                let hang = matches!(&result, Err(CallError::Retryable { after: None, .. }));
                if self.count(&label, result.is_ok(), hang) {
                    let reason = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
                    failures.push(format!("{label}: {reason} (not asked again for a while)"));
                    break;
                }
                match result {
                    Ok(c) => return Routed { result: Ok((c, label)), calls, skipped },
                    Err(CallError::Retryable { after, .. }) if attempt < self.retries_per_model => {
                        let backoff = self.base_delay.saturating_mul(1 << attempt.min(16)).min(self.max_delay);
                        (self.sleep)(after.map_or(backoff, |a| a.min(self.max_delay)));
                        attempt += 1;
                    }
                    Err(e) => {
                        failures.push(format!("{}: {e}", cfg.label()));
                        break;
                    }
                }
            }
        }
        if self.models.is_empty() {
            failures.push("no models are configured".to_owned());
        }
        Routed { result: Err(RouterError(failures.join("; "))), calls, skipped }
    }

    /// Whether `label` is tripped and still left alone.
    fn tripped(&self, label: &str) -> bool {
        let breaker = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        breaker.get(label).and_then(|(_, until)| *until).is_some_and(|until| Instant::now() < until)
    }

    /// Counts one call of `label`: an answer resets it, a hang (timeout or server error
    /// without `Retry-After`) adds one. Returns whether this call tripped it.
    fn count(&self, label: &str, answered: bool, hang: bool) -> bool {
        let mut breaker = self.breaker.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = breaker.entry(label.to_owned()).or_insert((0, None));
        if answered {
            *entry = (0, None);
        } else if hang {
            entry.0 += 1;
            if entry.0 >= TRIP_AFTER {
                *entry = (0, Some(Instant::now() + OPEN_FOR));
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ProviderKind;

    fn model(name: &str) -> ModelConfig {
        ModelConfig {
            provider: if name.starts_with("claude") { ProviderKind::Anthropic } else { ProviderKind::Openai },
            model: name.to_owned(),
            base_url: None,
            api_key_env: None,
            timeout_ms: 1_000,
            max_tokens: 100,
        }
    }

    fn prompt() -> Prompt {
        Prompt { system: "s".into(), user: "u".into() }
    }

    fn ok(text: &str) -> Result<Completion, CallError> {
        Ok(Completion { text: text.into(), input_tokens: Some(10), output_tokens: Some(5) })
    }

    fn router(waits: &Arc<Mutex<Vec<Duration>>>) -> Router {
        let log = Arc::clone(waits);
        Router::new(vec![model("claude-a"), model("gpt-b")], 2, Duration::from_millis(100), 2)
            .with_sleep(Arc::new(move |d| log.lock().unwrap().push(d)))
    }

    #[test]
    fn retries_with_backoff_honouring_retry_after_then_falls_back() {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let r = router(&waits);
        let mut script = vec![
            Err(CallError::Retryable { reason: "HTTP 429".into(), after: Some(Duration::from_secs(3)) }),
            Err(CallError::Retryable { reason: "HTTP 529".into(), after: None }),
            Err(CallError::Retryable { reason: "HTTP 500".into(), after: None }),
            ok("from gpt-b"),
        ]
        .into_iter();
        let routed = r.complete_with(&prompt(), |_, _| script.next().unwrap());
        let (c, label) = routed.result.unwrap();
        assert_eq!((c.text.as_str(), label.as_str()), ("from gpt-b", "openai/gpt-b"));
        assert_eq!(*waits.lock().unwrap(), [Duration::from_secs(3), Duration::from_millis(200)]);
        let calls = routed.calls;
        let outcomes: Vec<(&str, &str)> = calls.iter().map(|c| (c.model.as_str(), c.outcome.as_str())).collect();
        assert_eq!(
            outcomes,
            [("claude-a", "HTTP 429"), ("claude-a", "HTTP 529"), ("claude-a", "HTTP 500"), ("gpt-b", "ok")]
        );
        assert_eq!((calls[3].input_tokens, calls[3].output_tokens), (Some(10), Some(5)));
    }

    #[test]
    fn a_model_that_keeps_hanging_is_skipped_for_the_rest_of_the_run_and_named() {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let r = router(&waits);
        let asked = Mutex::new(Vec::new());
        let caller = |cfg: &ModelConfig, _: &Prompt| {
            asked.lock().unwrap().push(cfg.model.clone());
            if cfg.model == "claude-a" {
                Err(CallError::Retryable { reason: "timed out after 60 s".into(), after: None })
            } else {
                ok("from gpt-b")
            }
        };
        // Three timeouts in a row trip it; the next drafts go straight to the next model.
        for draft in 0..3 {
            let routed = r.complete_with(&prompt(), caller);
            assert_eq!(routed.result.unwrap().1, "openai/gpt-b");
            assert_eq!(routed.skipped.is_empty(), draft == 0, "draft {draft}: {:?}", routed.skipped);
        }
        let asked = asked.into_inner().unwrap();
        assert_eq!(asked.iter().filter(|m| *m == "claude-a").count(), 3, "{asked:?}");
        assert_eq!(asked.iter().filter(|m| *m == "gpt-b").count(), 3);
        // A rate limit that says when to come back is not a hang.
        let limited = router(&waits);
        let mut script = vec![
            Err(CallError::Retryable { reason: "HTTP 429".into(), after: Some(Duration::from_millis(1)) }),
            Err(CallError::Retryable { reason: "HTTP 429".into(), after: Some(Duration::from_millis(1)) }),
            Err(CallError::Retryable { reason: "HTTP 429".into(), after: Some(Duration::from_millis(1)) }),
            ok("from gpt-b"),
            ok("from claude-a"),
        ]
        .into_iter();
        limited.complete_with(&prompt(), |_, _| script.next().unwrap()).result.unwrap();
        let routed = limited.complete_with(&prompt(), |_, _| script.next().unwrap());
        assert_eq!(routed.result.unwrap().1, "anthropic/claude-a", "still asked first");
    }

    #[test]
    fn quota_and_request_errors_are_never_retried() {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let r = router(&waits);
        let mut script =
            vec![Err(CallError::Quota("HTTP 429: quota".into())), Err(CallError::Fatal("HTTP 400: bad".into()))]
                .into_iter();
        let routed = r.complete_with(&prompt(), |_, _| script.next().unwrap());
        assert_eq!(routed.result.unwrap_err().0, "anthropic/claude-a: HTTP 429: quota; openai/gpt-b: HTTP 400: bad");
        assert!(waits.lock().unwrap().is_empty());
        assert_eq!(routed.calls.len(), 2);
    }

    #[test]
    fn a_call_that_panics_gives_its_slot_back() {
        let r = Router::new(vec![model("gpt-b")], 0, Duration::ZERO, 1);
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            r.complete_with(&prompt(), |_, _| panic!("a broken provider"));
        }));
        assert!(crashed.is_err());
        assert!(r.complete_with(&prompt(), |_, _| ok("still works")).result.is_ok(), "the gate was not wedged");
    }

    #[test]
    fn no_provider_has_more_calls_in_flight_than_its_limit() {
        let r = Arc::new(Router::new(vec![model("gpt-b")], 0, Duration::ZERO, 2));
        let busy = Arc::new(Mutex::new((0usize, 0usize)));
        let threads: Vec<_> = (0..6)
            .map(|_| {
                let (r, busy) = (Arc::clone(&r), Arc::clone(&busy));
                std::thread::spawn(move || {
                    r.complete_with(&prompt(), |_, _| {
                        {
                            let mut b = busy.lock().unwrap();
                            b.0 += 1;
                            b.1 = b.1.max(b.0);
                        }
                        std::thread::sleep(Duration::from_millis(20));
                        busy.lock().unwrap().0 -= 1;
                        ok("x")
                    })
                    .result
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(busy.lock().unwrap().1, 2);
    }
}
