//! What became of a draft: still a draft, sent as written, sent after the rep edited it, or
//! deleted. The mailbox says what it sees ([`Seen`]); deciding what that means, and how much
//! of the text a rep changed, is here.

use serde::Serialize;

use crate::{Email, Timestamp};

/// How long a draft is watched: a draft still unsent after this many days stays a draft.
pub const WATCH_DAYS: i64 = 30;

/// What became of a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fate {
    /// Still in the rep's drafts (or never sent within [`WATCH_DAYS`]).
    Draft,
    /// Sent as it was written.
    Sent,
    /// Sent after the rep changed its text.
    Edited,
    /// Deleted unsent.
    Deleted,
    /// The mailbox cannot say (an `.eml` file, or a mailbox that cannot be read).
    Unknown,
}

impl Fate {
    /// Every fate, in report order.
    pub const ALL: [Fate; 5] = [Fate::Draft, Fate::Sent, Fate::Edited, Fate::Deleted, Fate::Unknown];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Draft => "draft",
            Fate::Sent => "sent",
            Fate::Edited => "edited",
            Fate::Deleted => "deleted",
            Fate::Unknown => "unknown",
        }
    }

    /// The fate a stored name stands for.
    pub fn parse(text: &str) -> Option<Fate> {
        Fate::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// Whether the rep has decided: sent (as written or edited) or deleted.
    pub fn decided(self) -> bool {
        matches!(self, Fate::Sent | Fate::Edited | Fate::Deleted)
    }
}

/// A draft being watched, as a mailbox needs it to look for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    /// The rep whose mailbox holds it.
    pub rep: Email,
    /// Where the mailbox said it saved it.
    pub receipt: String,
    /// Its Message-ID (a mailbox may keep it on the message it sends).
    pub message_id: String,
    /// Its thread, once the mailbox has told.
    pub thread: Option<String>,
    /// Who it is addressed to.
    pub recipients: Vec<Email>,
    /// When it was saved.
    pub created_at: Timestamp,
    /// Its text as written.
    pub text: String,
    /// Its HTML part as text ([`plain_of_html`]): Gmail's editor sends the text of what it
    /// shows, so an unchanged draft comes back as this.
    pub html_text: String,
}

/// What the mailbox sees of a watched draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Still a draft.
    Draft {
        /// Its thread, when the mailbox tells.
        thread: Option<String>,
    },
    /// Sent.
    Sent {
        /// The text sent: the whole of it, or only the start a mailbox shows without reading
        /// the message.
        text: String,
        /// Whether `text` is the whole message.
        whole: bool,
    },
    /// Neither a draft nor sent: deleted.
    Deleted,
    /// The mailbox cannot tell, and why.
    Unknown(String),
}

/// What a look decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The fate.
    pub fate: Fate,
    /// For a sent draft, the share of its words the rep changed (0 for none, 1 for all).
    pub changed: Option<f64>,
    /// Its thread, when the mailbox told.
    pub thread: Option<String>,
    /// Why the fate is unknown, or that the change was measured on the start of the text only.
    pub note: Option<String>,
}

/// Changed words up to this share are formatting (a link's address spelt out, a line rewrapped),
/// not the rep's edit.
pub const UNCHANGED_UP_TO: f64 = 0.02;

/// What `seen` means for a draft written as `drafted` (its text, or its HTML as text: the
/// nearer counts).
pub fn decide(drafted: &[&str], seen: Seen) -> Decision {
    let plain = |fate| Decision { fate, changed: None, thread: None, note: None };
    match seen {
        Seen::Draft { thread } => Decision { thread, ..plain(Fate::Draft) },
        Seen::Deleted => plain(Fate::Deleted),
        Seen::Unknown(why) => Decision { note: Some(why), ..plain(Fate::Unknown) },
        Seen::Sent { text, whole } => {
            let versions = drafted.iter().filter(|d| !d.trim().is_empty());
            let (changed, note) = if whole {
                (versions.map(|d| changed(d, &text)).fold(1.0, f64::min), None)
            } else {
                // The same start of the drafted text, so an unchanged message measures 0; the
                // snippet's last word may be cut short, so it is left out of both.
                let mut shown = words(&text);
                if shown.len() > 1 {
                    shown.pop();
                }
                let measured = versions
                    .map(|d| {
                        let start: Vec<String> = words(d).into_iter().take(shown.len()).collect();
                        changed(&start.join(" "), &shown.join(" "))
                    })
                    .fold(1.0, f64::min);
                (measured, Some("measured on the start of the message only".to_owned()))
            };
            let fate = if changed <= UNCHANGED_UP_TO { Fate::Sent } else { Fate::Edited };
            Decision { fate, changed: Some(changed), thread: None, note }
        }
    }
}

/// The words compared: punctuation at their edges and case do not count, nor do addresses
/// (a link's target spelt out beside its text).
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| !(w.contains("://") || w.starts_with("<mailto:") || w.starts_with("mailto:")))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// An HTML body as the words a reader sees: tags dropped (a block ends a line), the common
/// entities read back.
pub fn plain_of_html(html: &str) -> String {
    let body = html.split_once("<body").map_or(html, |(_, b)| b.split_once('>').map_or(b, |(_, rest)| rest));
    let body = body.split_once("<style").map_or(body.to_owned(), |(before, rest)| {
        format!("{before}{}", rest.split_once("</style>").map_or("", |(_, after)| after))
    });
    let mut text = String::with_capacity(body.len());
    let mut tag = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => {
                in_tag = true;
                tag.clear();
            }
            '>' if in_tag => {
                in_tag = false;
                let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or_default().to_lowercase();
                text.push(if ["p", "br", "li", "div", "tr", "h1", "h2", "h3", "ul", "ol"].contains(&name.as_str()) {
                    '\n'
                } else {
                    ' '
                });
            }
            _ if in_tag => tag.push(c),
            _ => text.push(c),
        }
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Most words of a message compared: a longer one is compared on its start.
const MAX_WORDS: usize = 3_000;

/// The share of words changed from `before` to `after`: the word-level edit distance over the
/// longer text's length. Whitespace and line breaks do not count; words do.
pub fn changed(before: &str, after: &str) -> f64 {
    let a: Vec<String> = words(before).into_iter().take(MAX_WORDS).collect();
    let b: Vec<String> = words(after).into_iter().take(MAX_WORDS).collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    // One row of the Levenshtein table at a time.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if x == y { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()] as f64 / longest as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_of_words_changed_ignores_spacing() {
        assert_eq!(changed("Hello team,\n\nSUP-1 is fixed.", "Hello   team, SUP-1 is fixed."), 0.0);
        assert_eq!(changed("a b c d", "a b x d"), 0.25);
        assert_eq!(changed("Hello, Team!", "hello team"), 0.0, "case and punctuation at the edges");
        assert_eq!(changed("a b c d", "a b c d e f g h"), 0.5);
        assert_eq!(changed("", ""), 0.0);
        assert_eq!(changed("a b", ""), 1.0);
    }

    #[test]
    fn a_sent_draft_is_sent_or_edited_by_its_words_and_a_snippet_is_compared_with_the_same_start() {
        let drafted = "Hello Northwind team, SUP-1 is with engineering. Ana";
        let d = decide(&[drafted], Seen::Sent { text: drafted.replace(' ', "\n"), whole: true });
        assert_eq!((d.fate, d.changed), (Fate::Sent, Some(0.0)));
        let d = decide(&[drafted], Seen::Sent { text: drafted.replace("engineering", "our engineers"), whole: true });
        assert_eq!(d.fate, Fate::Edited);
        assert!((d.changed.unwrap() - 2.0 / 9.0).abs() < 1e-9, "{d:?}");
        let d = decide(&[drafted], Seen::Sent { text: "Hello Northwind team, SUP-1".into(), whole: false });
        assert_eq!((d.fate, d.changed), (Fate::Sent, Some(0.0)));
        assert_eq!(d.note.as_deref(), Some("measured on the start of the message only"));
        // Sent from Gmail's editor, the text is the HTML's, links spelt out: still as written.
        let html = "<html><body><p>Hello Northwind team,</p><ul><li><strong><a href=\"https://x/SUP-1\">SUP-1</a></strong> is with engineering.</li></ul><p>Ana</p></body></html>";
        let sent = "Hello Northwind team,\n\n  * *SUP-1 <https://x/SUP-1>* is with engineering.\n\nAna";
        let d = decide(
            &["Hello team, a different text version", &plain_of_html(html)],
            Seen::Sent { text: sent.into(), whole: true },
        );
        assert_eq!((d.fate, d.changed), (Fate::Sent, Some(0.0)), "{}", plain_of_html(html));
        let d = decide(&[drafted], Seen::Draft { thread: Some("t1".into()) });
        assert_eq!((d.fate, d.thread.as_deref()), (Fate::Draft, Some("t1")));
        assert!(Fate::ALL.iter().all(|f| Fate::parse(f.as_str()) == Some(*f)));
        assert!(Fate::Deleted.decided() && !Fate::Draft.decided() && !Fate::Unknown.decided());
    }
}
