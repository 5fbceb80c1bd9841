//! The LLM writer: prompt, route, check, one repair, and the template when all else fails.

use tam_core::comms::{Brief, ModelCall, Written};
use tam_core::ports::{WriteError, Writer};
use tam_core::url::TicketLinks;

use super::router::Router;
use crate::TemplateWriter;
use crate::facts::Facts;
use crate::output::{validate, written};
use crate::prompt::{Prompt, build, repair};

/// Writes with a model; falls back to the templates, and says why.
pub struct LlmWriter {
    router: Router,
    template: TemplateWriter,
    links: Option<TicketLinks>,
}

impl LlmWriter {
    /// A writer over `router`.
    pub fn new(router: Router) -> LlmWriter {
        LlmWriter { router, template: TemplateWriter::new(), links: None }
    }

    /// Links the tickets a draft cites to their pages.
    pub fn with_ticket_links(mut self, links: Option<TicketLinks>) -> LlmWriter {
        self.template = self.template.with_ticket_links(links.clone());
        self.links = links;
        self
    }

    fn fallback(&self, brief: &Brief, reason: String, calls: Vec<ModelCall>) -> Result<Written, WriteError> {
        let mut w = self.template.write(brief)?;
        w.confidence = "low".to_owned();
        w.note = Some(reason);
        w.calls = calls;
        Ok(w)
    }
}

impl Writer for LlmWriter {
    fn write(&self, brief: &Brief) -> Result<Written, WriteError> {
        let facts = Facts::of(brief);
        let prompt = build(brief, &facts);
        let first = self.router.complete(&prompt);
        let mut calls = first.calls;
        // A model left out by the circuit breaker is named in the draft's note.
        let skipped = (!first.skipped.is_empty()).then(|| first.skipped.join("; "));
        let (answer, model) = match first.result {
            Ok(ok) => ok,
            Err(e) => return self.fallback(brief, e.to_string(), calls),
        };
        let problem = match validate(&answer.text, brief, &facts) {
            Ok(checked) => {
                let mut w = crate::with_review_chart(brief, written(&checked, &model, self.links.as_ref()))?;
                w.calls = calls;
                w.note = skipped;
                return Ok(w);
            }
            Err(problem) => problem,
        };
        // One repair attempt, same conversation: the rules again and what was wrong.
        let retry = Prompt {
            system: prompt.system.clone(),
            user: format!("{}\n\n{}", prompt.user, repair(&answer.text, &problem.0)),
        };
        let second = self.router.complete(&retry);
        calls.extend(second.calls);
        match second.result {
            Ok((again, model)) => match validate(&again.text, brief, &facts) {
                Ok(checked) => {
                    let mut w = crate::with_review_chart(brief, written(&checked, &model, self.links.as_ref()))?;
                    w.note = Some(format!("repaired: the first answer was refused ({problem})"));
                    w.calls = calls;
                    Ok(w)
                }
                Err(second_problem) => self.fallback(
                    brief,
                    format!("the model's answer was refused twice: {problem}; then {second_problem}"),
                    calls,
                ),
            },
            Err(e) => self.fallback(
                brief,
                format!("the model's answer was refused ({problem}) and the repair failed: {e}"),
                calls,
            ),
        }
    }

    /// Each draft is a model call that may wait for retries and the next model: 16 keep a
    /// batch well inside the dispatcher's 30-minute lease.
    fn drafts_per_claim(&self) -> usize {
        16
    }

    /// As many at once as one provider takes (`concurrency_per_provider`): the router's gates
    /// hold each provider to that, whichever models the drafts fall back to.
    fn write_all(&self, briefs: &[&Brief], stop: tam_core::concurrent::Stop<'_>) -> Vec<Result<Written, WriteError>> {
        tam_core::concurrent::map_until(briefs, self.router.concurrency_per_provider(), stop, |b| self.write(b))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::llm::{ModelConfig, ProviderKind};
    use crate::tests::brief;
    use tam_testkit::{Answer, Fake};

    const VALID: &str = r#"{"subject": "Northwind: our plan for SUP-1", "body_markdown": "Hello Northwind team,\n\nSUP-1 is with engineering; a status tomorrow. [T1]\n\nAna Ruiz", "key_points": ["SUP-1"], "confidence": "high"}"#;

    fn openai(content: &str) -> Answer {
        let body = serde_json::json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 40},
        });
        Answer::json(200, &body.to_string())
    }

    fn anthropic(text: &str) -> Answer {
        let body = serde_json::json!({
            "type": "message", "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 90, "output_tokens": 30},
        });
        Answer::json(200, &body.to_string())
    }

    fn writer(fake: &Fake, kinds: &[ProviderKind]) -> LlmWriter {
        let models = kinds
            .iter()
            .map(|&provider| ModelConfig {
                provider,
                model: format!("{}-model", provider.as_str()),
                base_url: Some(if provider == ProviderKind::Anthropic {
                    fake.url.clone()
                } else {
                    format!("{}/v1", fake.url)
                }),
                api_key_env: None,
                timeout_ms: 2_000,
                max_tokens: 500,
            })
            .collect();
        LlmWriter::new(Router::new(models, 1, Duration::ZERO, 2).with_sleep(Arc::new(|_| {})))
    }

    #[test]
    fn a_valid_fenced_answer_becomes_the_draft_with_its_usage() {
        let fake = Fake::start(vec![openai(&format!("Here you go:\n```json\n{VALID}\n```"))]);
        let w = writer(&fake, &[ProviderKind::OpenaiCompatible]).write(&brief("x")).unwrap();
        assert_eq!(
            (w.generator.as_str(), w.confidence.as_str()),
            ("openai_compatible/openai_compatible-model", "high")
        );
        assert_eq!(w.subject, "Northwind: our plan for SUP-1");
        assert_eq!((w.calls.len(), w.calls[0].input_tokens, w.calls[0].output_tokens), (1, Some(120), Some(40)));
    }

    #[test]
    fn a_model_written_review_carries_the_chart_after_its_greeting() {
        let fake = Fake::start(vec![openai(VALID)]);
        let mut b = brief("x");
        b.kind = tam_core::comms::CommKind::CustomerSuccessReview;
        b.period = Some(crate::tests::period(&b));
        let w = writer(&fake, &[ProviderKind::OpenaiCompatible]).write(&b).unwrap();
        assert_eq!(w.generator, "openai_compatible/openai_compatible-model");
        assert_eq!(w.images.len(), 1, "the PNG the draft carries");
        let greeting = w.html.find("Hello Northwind team,").unwrap();
        let chart = w.html.find("<img src=\"cid:health-chart\"").unwrap();
        let next = w.html.find("SUP-1 is with engineering").unwrap();
        assert!(greeting < chart && chart < next, "{}", w.html);
        // Other kinds show no chart.
        let fake = Fake::start(vec![openai(VALID)]);
        let w = writer(&fake, &[ProviderKind::OpenaiCompatible]).write(&brief("x")).unwrap();
        assert!(w.images.is_empty() && !w.html.contains("cid:"), "{}", w.html);
    }

    #[test]
    fn an_invalid_answer_is_repaired_once() {
        let fake = Fake::start(vec![anthropic("Dear [Customer Name], ..."), anthropic(VALID)]);
        let w = writer(&fake, &[ProviderKind::Anthropic]).write(&brief("x")).unwrap();
        assert_eq!(w.generator, "anthropic/anthropic-model");
        assert!(
            w.note
                .as_deref()
                .unwrap()
                .starts_with("repaired: the first answer was refused (the answer contains no JSON object)"),
            "{:?}",
            w.note
        );
        let seen = fake.seen.lock().unwrap();
        assert!(seen[1].body.contains("Your previous answer cannot be used:"), "{}", seen[1].body);
        assert!(seen[1].body.contains("the answer contains no JSON object</data>"), "{}", seen[1].body);
        assert_eq!(w.calls.len(), 2);
    }

    #[test]
    fn an_answer_with_an_invented_fact_is_repaired_or_left_to_the_template_and_the_reason_kept() {
        let invented = [
            (
                "SUP-1 is with engineering",
                "SUP-1 and SUP-7 are with engineering",
                "paragraph 2 names the ticket SUP-7, which no fact holds",
            ),
            (
                "SUP-1 is with engineering",
                "SUP-1 and 3 other tickets are with engineering",
                "paragraph 2 counts 3 other tickets, which no fact holds",
            ),
            (
                "SUP-1 is with engineering",
                "SUP-1 will be fixed on April 14",
                "paragraph 2 names the date April 14, which no fact holds",
            ),
        ];
        for (from, to, why) in invented {
            let bad = VALID.replace(from, to);
            assert_ne!(bad, VALID);
            // Repaired: the second answer holds only facts.
            let fake = Fake::start(vec![anthropic(&bad), anthropic(VALID)]);
            let w = writer(&fake, &[ProviderKind::Anthropic]).write(&brief("x")).unwrap();
            assert_eq!(w.generator, "anthropic/anthropic-model");
            assert_eq!(w.note.as_deref(), Some(format!("repaired: the first answer was refused ({why})").as_str()));
            let seen = fake.seen.lock().unwrap();
            assert!(seen[1].body.contains(why), "the repair says what was wrong: {}", seen[1].body);
            drop(seen);
            // Invented twice: the template writes the draft and the note says why.
            let fake = Fake::start(vec![anthropic(&bad), anthropic(&bad)]);
            let w = writer(&fake, &[ProviderKind::Anthropic]).write(&brief("x")).unwrap();
            assert_eq!((w.generator.as_str(), w.confidence.as_str()), ("template", "low"));
            assert_eq!(w.note.unwrap(), format!("the model's answer was refused twice: {why}; then {why}"));
        }
    }

    #[test]
    fn the_tickets_a_paragraph_cites_link_to_their_pages() {
        let links = tam_core::url::TicketLinks::parse("https://acme.atlassian.net/browse/{id}").unwrap();
        let answer = VALID
            .replace("SUP-1 is with engineering", "**SUP-1** is with engineering, and so is SUP-12")
            .replace("[T1]", "[T1, T2]");
        let fake = Fake::start(vec![openai(&answer)]);
        let mut b = brief("x");
        b.open_tickets.push(tam_core::comms::TicketFacts {
            id: tam_core::TicketId::parse("id", "SUP-12").unwrap(),
            ..b.open_tickets[0].clone()
        });
        let w = writer(&fake, &[ProviderKind::OpenaiCompatible]).with_ticket_links(Some(links.clone())).write(&b);
        let w = w.unwrap();
        assert!(
            w.html.contains(concat!(
                r#"<strong><a href="https://acme.atlassian.net/browse/SUP-1">SUP-1</a></strong> is with engineering, "#,
                r#"and so is <a href="https://acme.atlassian.net/browse/SUP-12">SUP-12</a>"#
            )),
            "{}",
            w.html
        );
        assert!(
            w.text.contains("SUP-1 is with engineering, and so is SUP-12;") && !w.text.contains("[T1"),
            "{}",
            w.text
        );
        // The template links every ticket it lists (its engine escapes `/` in attributes).
        let w = TemplateWriter::new().with_ticket_links(Some(links)).write(&b).unwrap();
        let html = w.html.replace("&#x2f;", "/");
        assert!(
            html.contains(r#"<strong><a href="https://acme.atlassian.net/browse/SUP-12">SUP-12</a></strong>"#),
            "{html}"
        );
    }

    #[test]
    fn twice_invalid_or_no_model_means_the_template_with_low_confidence_and_the_reason() {
        let bad = VALID.replace("Hello Northwind team", "Hello [Customer Name]");
        let fake = Fake::start(vec![anthropic(&bad), anthropic(&bad)]);
        let w = writer(&fake, &[ProviderKind::Anthropic]).write(&brief("x")).unwrap();
        assert_eq!((w.generator.as_str(), w.confidence.as_str()), ("template", "low"));
        assert!(
            w.note
                .as_deref()
                .unwrap()
                .starts_with("the model's answer was refused twice: the answer contains placeholder text"),
            "{:?}",
            w.note
        );
        assert!(w.text.starts_with("Hello Northwind team,"), "the template's draft");

        let fake = Fake::start(vec![
            Answer::json(500, r#"{"error":{"message":"boom"}}"#),
            Answer::json(500, r#"{"error":{"message":"boom"}}"#),
            Answer::json(429, r#"{"error":{"message":"You exceeded your current quota","code":"insufficient_quota"}}"#),
        ]);
        let w = writer(&fake, &[ProviderKind::Anthropic, ProviderKind::Openai]).write(&brief("x")).unwrap();
        assert_eq!(w.generator, "template");
        let outcomes: Vec<&str> = w.calls.iter().map(|c| c.outcome.as_str()).collect();
        assert_eq!(
            outcomes,
            ["HTTP 500: boom", "HTTP 500: boom", "HTTP 429: You exceeded your current quota"],
            "the quota error is not retried"
        );
    }
}
