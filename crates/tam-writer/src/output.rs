//! A model's answer, checked before it can become a draft: JSON of the expected shape
//! (tolerating code fences and leading prose), the rules no draft may break, and every fact it
//! states found in the facts its paragraph cites ([`crate::facts`]).

use serde::Deserialize;
use tam_core::comms::{Brief, Subject, Written};
use tam_core::url::TicketLinks;

use crate::facts::{Fact, Facts};

/// What the model must answer. Fields it adds beyond these are ignored, except recipients and
/// headers, which refuse the answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelAnswer {
    /// Subject line.
    pub subject: String,
    /// The message, paragraph by paragraph, each with the facts it rests on.
    #[serde(default)]
    pub paragraphs: Option<Vec<ModelParagraph>>,
    /// The message in Markdown, when the model gives it whole: its paragraphs then cite their
    /// facts inline (`[T1, D2]`).
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
    pub key_points: Option<Vec<String>>,
    /// `low`, `medium` or `high` (any case).
    pub confidence: String,
}

/// One paragraph of an answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ModelParagraph {
    /// Markdown.
    pub text: String,
    /// Ids of the facts it rests on (a ticket's id cites the facts that name it).
    #[serde(default, alias = "sources", alias = "citations", alias = "fact_ids")]
    pub facts: Vec<String>,
}

/// An answer that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Subject line, trimmed.
    pub subject: String,
    /// The message's paragraphs, citation marks taken out of their text.
    pub paragraphs: Vec<CitedParagraph>,
    /// `low`, `medium` or `high`.
    pub confidence: String,
}

/// A paragraph and what it rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitedParagraph {
    /// Markdown.
    pub text: String,
    /// Ids of the facts it cites.
    pub facts: Vec<String>,
    /// The ticket ids those facts name.
    pub tickets: Vec<String>,
}

/// Why an answer was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The JSON object inside an answer: the whole answer, a fenced block, or the first complete
/// object after some prose (a code sample inside the message cannot cut it short).
pub fn extract_json(raw: &str) -> Option<serde_json::Value> {
    let trimmed = raw.trim();
    if let Some(start) = trimmed.find("```") {
        let after = &trimmed[start + 3..];
        let body_start = after.find('\n').map_or(0, |i| i + 1);
        if let Some(end) = after[body_start..].rfind("```")
            && let Ok(v @ serde_json::Value::Object(_)) =
                serde_json::from_str(after[body_start..body_start + end].trim())
        {
            return Some(v);
        }
    }
    let mut from = 0;
    while let Some(open) = trimmed[from..].find('{') {
        let at = from + open;
        let mut values = serde_json::Deserializer::from_str(&trimmed[at..]).into_iter::<serde_json::Value>();
        if let Some(Ok(v @ serde_json::Value::Object(_))) = values.next() {
            return Some(v);
        }
        from = at + 1;
    }
    None
}

/// Text only an unfinished template contains: `[First Name]` (but not a Markdown link
/// `[text](url)`), `{customer_name}`, `<Customer>`, `{{`, TBD, lorem ipsum.
fn placeholder(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for needle in ["lorem ipsum", "{{", "}}"] {
        if let Some(at) = lower.find(needle) {
            return Some(lower[at..].chars().take(30).collect());
        }
    }
    if lower.split(|c: char| !c.is_alphanumeric()).any(|w| w == "tbd" || w == "xxx") {
        return Some("TBD".to_owned());
    }
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let close = match c {
            '[' => ']',
            '{' => '}',
            '<' => '>',
            _ => continue,
        };
        let Some(len) = chars[i + 1..].iter().take(42).position(|&d| d == close) else { continue };
        let inner: String = chars[i + 1..i + 1 + len].iter().collect();
        let Some(first) = inner.chars().next() else { continue };
        let wordy = inner.chars().all(|d| d.is_alphanumeric() || " _-/".contains(d));
        let is_placeholder = match c {
            '[' => first.is_alphabetic() && wordy && chars.get(i + 2 + len) != Some(&'('),
            '{' => inner.chars().all(|d| d.is_ascii_lowercase() || d == '_'),
            _ => first.is_uppercase() && inner.chars().all(|d| d.is_alphabetic() || d == ' '),
        };
        if is_placeholder {
            return Some(format!("{c}{inner}{close}"));
        }
    }
    None
}

/// Email addresses mentioned in `text`, Markdown emphasis around them ignored.
fn addresses(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || "<>()[],;:\"'".contains(c))
        .map(|w| w.trim_matches(|c: char| "*_`~.!?".contains(c)))
        .filter(|w| {
            let Some((local, domain)) = w.split_once('@') else { return false };
            // `pkg@1.2.3` and `repo@v4.2` are versions, not addresses: a domain ends in letters.
            let tld = domain.rsplit('.').next().unwrap_or_default();
            !local.is_empty()
                && !local.contains('/')
                && domain.contains('.')
                && tld.len() >= 2
                && tld.chars().all(|c| c.is_ascii_alphabetic())
        })
        .map(str::to_lowercase)
        .collect()
}

/// Parses and checks an answer for `brief`, whose facts are `facts`.
pub fn validate(raw: &str, brief: &Brief, facts: &Facts) -> Result<Checked, Refused> {
    let value = extract_json(raw).ok_or_else(|| {
        if raw.contains('{') {
            Refused("the answer is not valid JSON".to_owned())
        } else {
            Refused("the answer contains no JSON object".to_owned())
        }
    })?;
    for field in ["to", "cc", "bcc", "recipients", "from", "reply_to", "headers"] {
        if value.get(field).is_some() {
            return Err(Refused(format!(
                "the answer sets {field:?}; recipients and headers are not the model's to choose"
            )));
        }
    }
    let answer: ModelAnswer = serde_json::from_value(value)
        .map_err(|e| Refused(format!("the answer does not have the expected fields ({e})")))?;
    let confidence = answer.confidence.trim().to_lowercase();
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
    let paragraphs = paragraphs(&answer, facts);
    let body: String = paragraphs.iter().map(|(text, _)| text.as_str()).collect::<Vec<_>>().join("\n\n");
    if body.trim().len() < 20 {
        return Err(Refused("the message body is missing or too short".to_owned()));
    }
    if !["low", "medium", "high"].contains(&confidence.as_str()) {
        let shown: String = confidence.chars().take(20).collect();
        return Err(Refused(format!("confidence {shown:?} is not low, medium or high")));
    }
    for text in [subject, &body] {
        if let Some(p) = placeholder(text) {
            return Err(Refused(format!("the answer contains placeholder text {p:?}")));
        }
    }
    let known: Vec<String> = brief
        .contacts
        .iter()
        .chain(&brief.cc)
        .chain(std::iter::once(&brief.rep_email))
        .map(|e| e.as_str().to_lowercase())
        .collect();
    if let Some(stranger) = addresses(subject).into_iter().chain(addresses(&body)).find(|a| !known.contains(a)) {
        return Err(Refused(format!("the message mentions the address {stranger}, who is not a recipient")));
    }
    facts.check_any(subject).map_err(|why| Refused(format!("the subject {why}")))?;
    // What no fact holds is named first, wherever it is: it is what a repair must drop.
    for (n, (text, _)) in paragraphs.iter().enumerate() {
        facts.check_any(text).map_err(|why| Refused(format!("paragraph {} {why}", n + 1)))?;
    }
    let mut checked = Vec::with_capacity(paragraphs.len());
    for (n, (text, cited)) in paragraphs.into_iter().enumerate() {
        let mut rests_on: Vec<&Fact> = Vec::new();
        for id in &cited {
            let found = match facts.get(id) {
                Some(fact) => vec![fact],
                None => facts.naming_ticket(id),
            };
            if found.is_empty() {
                let shown: String = id.chars().take(20).collect();
                return Err(Refused(format!("paragraph {} cites {shown:?}, which is not one of the facts", n + 1)));
            }
            for fact in found {
                if !rests_on.iter().any(|f| f.id == fact.id) {
                    rests_on.push(fact);
                }
            }
        }
        facts.check(&text, &rests_on).map_err(|why| Refused(format!("paragraph {} {why}", n + 1)))?;
        checked.push(CitedParagraph {
            text,
            facts: rests_on.iter().map(|f| f.id.clone()).collect(),
            tickets: rests_on.iter().flat_map(|f| f.tickets.iter().cloned()).collect(),
        });
    }
    Ok(Checked { subject: subject.to_owned(), paragraphs: checked, confidence })
}

/// The answer's paragraphs with the facts each cites: its `paragraphs`, or its whole body cut
/// at blank lines. Citation marks in the text (`[T1, D2]`, which models add out of habit) are
/// taken out and count as citations.
fn paragraphs(answer: &ModelAnswer, facts: &Facts) -> Vec<(String, Vec<String>)> {
    let split = |text: &str, mut cited: Vec<String>| {
        let text = strip_marks(text, facts, &mut cited);
        (text, cited)
    };
    match &answer.paragraphs {
        Some(list) => {
            list.iter().map(|p| split(p.text.trim(), p.facts.clone())).filter(|(t, _)| !t.is_empty()).collect()
        }
        None => {
            let body = answer.body_markdown.as_deref().or(answer.text.as_deref()).unwrap_or_default();
            body.split("\n\n")
                .map(|p| split(p.trim_matches('\n'), Vec::new()))
                .filter(|(t, _)| !t.trim().is_empty())
                .collect()
        }
    }
}

/// `text` without its bracketed lists of fact ids, which are added to `cited`.
fn strip_marks(text: &str, facts: &Facts, cited: &mut Vec<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        let Some(len) = rest[open..].find(']') else { break };
        let inside = &rest[open + 1..open + len];
        let ids: Vec<&str> = inside.split([',', ' ', ';']).map(str::trim).filter(|s| !s.is_empty()).collect();
        if !ids.is_empty() && ids.iter().all(|id| facts.get(id).is_some()) {
            out.push_str(rest[..open].trim_end_matches(' '));
            cited.extend(ids.iter().map(|id| (*id).to_owned()));
        } else {
            out.push_str(&rest[..=open + len]);
        }
        rest = &rest[open + len + 1..];
    }
    out.push_str(rest);
    out.trim().to_owned()
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
    page(&blocks(md))
}

fn page(body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5; color: #1f2933; max-width: 640px;\">\n{body}</body></html>\n"
    )
}

/// The HTML blocks of some Markdown.
fn blocks(md: &str) -> String {
    let mut html = String::new();
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
    html
}

/// `html` (escaped text and tags of our own) with each of `tickets` that stands as a word
/// outside a tag made a link to its page.
pub fn link_tickets(html: &str, tickets: &[String], links: &TicketLinks) -> String {
    if tickets.is_empty() {
        return html.to_owned();
    }
    let mut sorted: Vec<&String> = tickets.iter().collect();
    sorted.sort_by_key(|t| std::cmp::Reverse(t.len()));
    let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut at = 0;
    while at < html.len() {
        let rest = &html[at..];
        let c = rest.chars().next().expect("at is inside html");
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            _ => {}
        }
        let starts_word = !in_tag && !html[..at].chars().next_back().is_some_and(word);
        let found = starts_word
            .then(|| {
                sorted.iter().find(|t| {
                    rest.get(..t.len()).is_some_and(|head| head.eq_ignore_ascii_case(t))
                        && !rest[t.len()..].chars().next().is_some_and(|n| n.is_alphanumeric() || n == '_')
                        && !rest[t.len()..].starts_with('-')
                })
            })
            .flatten();
        if let Some(t) = found {
            let shown = &rest[..t.len()];
            out.push_str(&format!("<a href=\"{}\">{shown}</a>", escape(&links.url(t))));
            at += t.len();
        } else {
            out.push(c);
            at += c.len_utf8();
        }
    }
    out
}

/// A checked answer as a communication written by `model`; the tickets each paragraph cites
/// are links when `links` says where tickets live.
pub fn written(answer: &Checked, model: &str, links: Option<&TicketLinks>) -> Written {
    let body = answer.paragraphs.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n\n");
    let html: String = answer
        .paragraphs
        .iter()
        .map(|p| {
            let html = blocks(&p.text);
            match links {
                Some(links) => link_tickets(&html, &p.tickets, links),
                None => html,
            }
        })
        .collect();
    Written {
        subject: answer.subject.clone(),
        html: page(&html),
        text: body.replace("**", ""),
        generator: model.to_owned(),
        confidence: answer.confidence.clone(),
        note: None,
        calls: Vec::new(),
        images: Vec::new(),
    }
}
