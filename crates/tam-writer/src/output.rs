//! A model's answer, checked before it can become a draft: JSON of the expected shape
//! (tolerating code fences and leading prose), and the rules no draft may break.

use serde::Deserialize;
use tam_core::comms::{Brief, Subject, Written};

/// What the model must answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAnswer {
    /// Subject line.
    pub subject: String,
    /// The message in Markdown (or plain text).
    #[serde(default)]
    pub body_markdown: Option<String>,
    /// The message as plain text, when the model gives text and HTML instead.
    #[serde(default)]
    pub text: Option<String>,
    /// The message as HTML; ignored (re-rendered from text, so nothing unescaped gets in).
    #[serde(default)]
    pub html: Option<String>,
    /// The points the message makes.
    #[serde(default)]
    pub key_points: Vec<String>,
    /// `low`, `medium` or `high`.
    pub confidence: String,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The JSON object inside an answer: the whole answer, a fenced block, or the outermost
/// `{...}` after some prose.
pub fn extract_json(raw: &str) -> Option<&str> {
    let trimmed = raw.trim();
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        if let Some(end) = after[body_start..].find("```") {
            let block = after[body_start..body_start + end].trim();
            if block.starts_with('{') {
                return Some(block);
            }
        }
    }
    let open = trimmed.find('{')?;
    let close = trimmed.rfind('}')?;
    (close > open).then(|| &trimmed[open..=close])
}

/// Words that only appear in unfinished templates.
fn placeholder(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for needle in [
        "lorem ipsum",
        "{{",
        "}}",
        "[customer",
        "[your ",
        "[company",
        "[name",
        "[insert",
        "<name>",
        "[rep",
        "[account",
        "[date]",
        "xxx",
    ] {
        if lower.contains(needle) {
            let at = lower.find(needle).unwrap_or(0);
            let snippet: String = lower[at..].chars().take(30).collect();
            return Some(snippet);
        }
    }
    None
}

/// Email addresses mentioned in `text`.
fn addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .map(|w| w.trim_matches(|c: char| c == '.' || c == '!' || c == '?'))
        .filter(|w| {
            let mut parts = w.splitn(2, '@');
            matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.'))
        })
        .map(str::to_lowercase)
        .collect()
}

/// Parses and checks an answer for `brief`.
pub fn validate(raw: &str, brief: &Brief) -> Result<ModelAnswer, Refused> {
    let json = extract_json(raw).ok_or_else(|| Refused("the answer contains no JSON object".to_owned()))?;
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| Refused(format!("the answer is not valid JSON ({e})")))?;
    for field in ["to", "cc", "bcc", "recipients", "from", "reply_to", "headers"] {
        if value.get(field).is_some() {
            return Err(Refused(format!(
                "the answer sets {field:?}; recipients and headers are not the model's to choose"
            )));
        }
    }
    let answer: ModelAnswer = serde_json::from_value(value)
        .map_err(|e| Refused(format!("the answer does not have the expected fields ({e})")))?;
    let subject = answer.subject.trim();
    if subject.is_empty() {
        return Err(Refused("the subject is empty".to_owned()));
    }
    if subject.chars().count() > Subject::MAX_CHARS {
        return Err(Refused(format!(
            "the subject is {} characters, more than {}",
            subject.chars().count(),
            Subject::MAX_CHARS
        )));
    }
    let body = answer.body_markdown.as_deref().or(answer.text.as_deref()).unwrap_or_default();
    if body.trim().len() < 20 {
        return Err(Refused("the message body is missing or too short".to_owned()));
    }
    if !["low", "medium", "high"].contains(&answer.confidence.as_str()) {
        return Err(Refused(format!("confidence {:?} is not low, medium or high", answer.confidence)));
    }
    for text in [subject, body] {
        if let Some(p) = placeholder(text) {
            return Err(Refused(format!("the answer contains placeholder text {p:?}")));
        }
    }
    let known: Vec<String> =
        brief.contacts.iter().chain(std::iter::once(&brief.rep_email)).map(|e| e.as_str().to_lowercase()).collect();
    if let Some(stranger) = addresses(body).into_iter().find(|a| !known.contains(a)) {
        return Err(Refused(format!("the message mentions the address {stranger}, who is not a recipient")));
    }
    Ok(answer)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

/// `**bold**` inside an already escaped line.
fn inline(line: &str) -> String {
    let mut out = String::new();
    for (i, part) in line.split("**").enumerate() {
        if i % 2 == 1 {
            out.push_str("<strong>");
            out.push_str(part);
            out.push_str("</strong>");
        } else {
            out.push_str(part);
        }
    }
    out
}

/// Minimal Markdown to HTML: paragraphs, `-`/`*` lists, `#` headings, bold. Everything the
/// model wrote is escaped first, so no markup of its own survives.
pub fn markdown_to_html(md: &str) -> String {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><body style=\"font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5; color: #1f2933; max-width: 640px;\">\n",
    );
    let mut in_list = false;
    let mut paragraph: Vec<String> = Vec::new();
    let flush = |html: &mut String, paragraph: &mut Vec<String>| {
        if !paragraph.is_empty() {
            html.push_str(&format!("<p>{}</p>\n", paragraph.join("<br>")));
            paragraph.clear();
        }
    };
    for raw in md.lines() {
        let line = raw.trim_end();
        let item = line.trim_start().strip_prefix("- ").or_else(|| line.trim_start().strip_prefix("* "));
        if let Some(item) = item {
            flush(&mut html, &mut paragraph);
            if !in_list {
                html.push_str("<ul>\n");
                in_list = true;
            }
            html.push_str(&format!("  <li>{}</li>\n", inline(&escape(item))));
            continue;
        }
        if in_list {
            html.push_str("</ul>\n");
            in_list = false;
        }
        if line.trim().is_empty() {
            flush(&mut html, &mut paragraph);
        } else if let Some(heading) = line.trim_start().strip_prefix('#') {
            flush(&mut html, &mut paragraph);
            html.push_str(&format!("<h3>{}</h3>\n", inline(&escape(heading.trim_start_matches('#').trim()))));
        } else {
            paragraph.push(inline(&escape(line.trim())));
        }
    }
    if in_list {
        html.push_str("</ul>\n");
    }
    flush(&mut html, &mut paragraph);
    html.push_str("</body></html>\n");
    html
}

/// A checked answer as a communication written by `model`.
pub fn written(answer: &ModelAnswer, model: &str) -> Written {
    let body = answer.body_markdown.clone().or_else(|| answer.text.clone()).unwrap_or_default();
    let text = body.replace("**", "");
    Written {
        subject: answer.subject.trim().to_owned(),
        html: markdown_to_html(&body),
        text,
        generator: model.to_owned(),
        confidence: answer.confidence.clone(),
        note: None,
        calls: Vec::new(),
    }
}
