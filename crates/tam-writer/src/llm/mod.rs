//! Model providers and the router over them (the role LiteLLM plays in the seed).
//!
//! A provider call answers the model's text and its token usage, or a classified failure:
//! retryable (429 rate limit, 529 overloaded, 408, 5xx but 501, timeouts, a garbled body),
//! quota (a 429 that says the spend limit or quota is reached: never retried), or fatal (any
//! other 4xx). The router tries its models in order, retrying each with backoff that honours
//! `Retry-After`, and records every call.

mod provider;
mod router;
mod writer;

pub use provider::{CallError, Completion, ModelConfig, ProviderKind, call};
pub use router::{Routed, Router, RouterError, Sleep};
pub use writer::LlmWriter;
