//! The texts of rep alerts. Internal mail, plain text; every account named with its score,
//! why, and where its draft is.

use std::fmt::Write as _;

/// One account in an alert.
#[derive(Debug, Clone)]
pub struct AlertLine {
    /// Account id.
    pub account: String,
    /// Customer name.
    pub name: String,
    /// Score.
    pub score: u8,
    /// Status.
    pub status: String,
    /// Why it escalated.
    pub reason: String,
    /// `new`, `worsened` or `cool_down`.
    pub cause: String,
    /// The deductions in a few words.
    pub why: String,
    /// Where the outreach draft is (a path, or a draft id).
    pub draft: String,
}

/// Subject and text of an individual alert.
pub fn individual_text(line: &AlertLine, rep_name: &str) -> (String, String) {
    let subject = format!("[tam] {} is {} ({}): outreach draft ready", line.name, line.status, line.score);
    let mut text = format!("Hi {rep_name},\n\n");
    let _ = writeln!(text, "{} ({}) escalated: {}.", line.name, line.account, line.reason.replace('_', " "));
    let _ = writeln!(text, "Score {}/100, {}. Why: {}.", line.score, line.status, line.why);
    let _ =
        writeln!(text, "\nAn outreach draft to the customer is waiting for your review (not sent):\n  {}", line.draft);
    let _ = writeln!(text, "\n`tam explain {}` shows the full breakdown.", line.account);
    (subject, text)
}

/// Subject and text of a rep's digest.
pub fn digest_text(lines: &[AlertLine], rep_name: &str) -> (String, String) {
    let subject = format!("[tam] {} more escalated account(s) in your digest", lines.len());
    let mut text =
        format!("Hi {rep_name},\n\nOver today's alert budget, these accounts also escalated, worst first:\n\n");
    for l in lines {
        let _ = writeln!(
            text,
            "  - {} ({}): {} {}, {}. Why: {}.",
            l.name,
            l.account,
            l.status,
            l.score,
            l.reason.replace('_', " "),
            l.why
        );
        let _ = writeln!(text, "    draft: {}", l.draft);
    }
    (subject, text)
}
