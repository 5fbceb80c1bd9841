//! tam-writer: turns a [`Brief`] into a communication. Owns the templates (the embedded,
//! offline writer) and the model-written drafts.
//!
//! **Invariant:** every value from a brief that reaches HTML is escaped by the template engine
//! (`.html` templates auto-escape); subjects pass through [`tam_core::comms::Subject`].
//! **Invariant:** a writer never chooses recipients; they come from the brief.

pub mod chart;
pub mod facts;
pub mod llm;
pub mod output;
pub mod prompt;
mod view;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Serde;
use minijinja::{Environment, Value};
use tam_core::comms::{Brief, CommKind, InlineImage, Written};
use tam_core::ports::{WriteError, Writer};
use tam_core::url::TicketLinks;

pub use chart::{score_chart, score_chart_noted};

/// The offline writer: templates compiled into the binary.
pub struct TemplateWriter {
    env: Environment<'static>,
    links: Option<TicketLinks>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("escalation_outreach.txt", include_str!("../templates/escalation_outreach.txt")),
    ("escalation_outreach.html", include_str!("../templates/escalation_outreach.html")),
    ("release_notes.txt", include_str!("../templates/release_notes.txt")),
    ("release_notes.html", include_str!("../templates/release_notes.html")),
    ("roadmap_preview.txt", include_str!("../templates/roadmap_preview.txt")),
    ("roadmap_preview.html", include_str!("../templates/roadmap_preview.html")),
    ("health_checkin.txt", include_str!("../templates/health_checkin.txt")),
    ("health_checkin.html", include_str!("../templates/health_checkin.html")),
    ("customer_success_review.txt", include_str!("../templates/customer_success_review.txt")),
    ("customer_success_review.html", include_str!("../templates/customer_success_review.html")),
    ("layout.html", include_str!("../templates/layout.html")),
    ("ticket.html", include_str!("../templates/ticket.html")),
];

impl TemplateWriter {
    /// Loads the templates. They are part of the binary, so a failure here is a bug.
    pub fn new() -> TemplateWriter {
        let mut env = Environment::new();
        // Block tags on their own lines leave no blank lines behind in the plain-text parts.
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the block-trimming syntax is valid");
        env.set_syntax(syntax);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).expect("built-in templates parse");
        }
        TemplateWriter { env, links: None }
    }

    /// Links the tickets a draft names to their pages.
    pub fn with_ticket_links(mut self, links: Option<TicketLinks>) -> TemplateWriter {
        self.links = links;
        self
    }
}

impl Default for TemplateWriter {
    fn default() -> TemplateWriter {
        TemplateWriter::new()
    }
}

impl Writer for TemplateWriter {
    fn write(&self, brief: &Brief) -> Result<Written, WriteError> {
        let name = brief.kind.as_str();
        match brief.kind {
            CommKind::ReleaseNotes if brief.release.is_none() => {
                return Err(WriteError("release notes need release_info".to_owned()));
            }
            CommKind::HealthCheckin | CommKind::CustomerSuccessReview if brief.period.is_none() => {
                return Err(WriteError(format!("{name} needs the period's figures")));
            }
            _ => {}
        }
        let view = view::View::new(brief, self.links.as_ref());
        let images = review_chart(brief)?.map(|(image, _)| image).into_iter().collect();
        let render = |ext: &str| {
            let template = self.env.get_template(&format!("{name}.{ext}")).map_err(|e| WriteError(e.to_string()))?;
            template.render(Value::from(Serde(&view))).map_err(|e| WriteError(format!("template {name}.{ext}: {e}")))
        };
        Ok(Written {
            subject: view.subject.clone(),
            text: render("txt")?,
            html: render("html")?,
            generator: "template".to_owned(),
            confidence: "medium".to_owned(),
            note: None,
            calls: Vec::new(),
            images,
        })
    }
}

/// The review's score chart: the image its draft carries inline, and the `<img>` that shows it
/// (`cid:` + [`chart::CID`]). None for the other kinds, which show no chart.
fn review_chart(brief: &Brief) -> Result<Option<(InlineImage, String)>, WriteError> {
    let (CommKind::CustomerSuccessReview, Some(p)) = (&brief.kind, &brief.period) else { return Ok(None) };
    let png = chart::score_png(&p.history, p.from, p.to);
    let image = InlineImage::png(chart::CID, png).map_err(|e| WriteError(format!("chart: {e}")))?;
    Ok(Some((image, view::chart_tag(p))))
}

/// A model-written review gets the chart as a template-written one does: the image, shown
/// after the greeting (the first paragraph).
fn with_review_chart(brief: &Brief, mut w: Written) -> Result<Written, WriteError> {
    if let Some((image, tag)) = review_chart(brief)? {
        let at = w.html.find("</p>").map_or_else(|| w.html.find("</body>").unwrap_or(w.html.len()), |i| i + 4);
        w.html.insert_str(at, &format!("\n{tag}\n"));
        w.images.push(image);
    }
    Ok(w)
}

#[cfg(test)]
mod llm_tests;
#[cfg(test)]
mod tests;
