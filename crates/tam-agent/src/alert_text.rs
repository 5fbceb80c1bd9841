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
    /// Where the rep says whether this alert was useful, when the tenant takes feedback.
    pub feedback: Option<tam_core::feedback::FeedbackLinks>,
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
    if let Some(links) = &line.feedback {
        let _ = writeln!(text, "\nWas this alert useful? Tell us (one click, then confirm):");
        let _ = writeln!(text, "  useful:     {}\n  not useful: {}", links.useful, links.not_useful);
    }
    (subject, text)
}

/// The accounts of a digest beyond those it lists: counted, not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rest {
    /// How many.
    pub accounts: u64,
    /// How many per status (`red`, `amber`), most first.
    pub by_status: Vec<(String, u64)>,
    /// How many per main reason (the deduction that took the most points, in words), most first.
    pub by_reason: Vec<(String, u64)>,
}

/// Where a digest's reader finds every account it stands for.
#[derive(Debug, Clone, Copy)]
pub struct FullList<'a> {
    /// The tenant, for `tam scan --tenant`.
    pub tenant: &'a str,
    /// The rep, for the dashboard's filter.
    pub rep: &'a str,
}

/// Subject and text of a rep's digest: the listed accounts (the worst ones), then the rest
/// counted by status and reason, and where the whole list is.
pub fn digest_text(lines: &[AlertLine], rest: Option<&Rest>, rep_name: &str, full: FullList<'_>) -> (String, String) {
    let total = lines.len() as u64 + rest.map_or(0, |r| r.accounts);
    let subject = format!("[tam] {total} more escalated account(s) in your digest");
    let mut text = match rest {
        Some(_) => format!(
            "Hi {rep_name},\n\nOver today's alert budget, {total} more accounts escalated. The worst {}:\n\n",
            lines.len()
        ),
        None => format!("Hi {rep_name},\n\nOver today's alert budget, these accounts also escalated, worst first:\n\n"),
    };
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
        if let Some(links) = &l.feedback {
            let _ = writeln!(text, "    useful: {}\n    not useful: {}", links.useful, links.not_useful);
        }
    }
    if let Some(rest) = rest {
        let counts =
            |by: &[(String, u64)]| by.iter().map(|(what, n)| format!("{n} {what}")).collect::<Vec<_>>().join(", ");
        let _ = writeln!(
            text,
            "\nAnd {} more: {}; main reason: {}.",
            rest.accounts,
            counts(&rest.by_status),
            counts(&rest.by_reason)
        );
    }
    let _ = writeln!(
        text,
        "\nThe full list, worst first: `tam scan --tenant {} --json` (the accounts whose alert is \"digest\"), \
         or the dashboard of `tam serve` filtered to you: /?rep={}",
        full.tenant,
        query_value(full.rep)
    );
    (subject, text)
}

/// `value` as a URL query value: unreserved characters kept, the rest percent-encoded.
fn query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
