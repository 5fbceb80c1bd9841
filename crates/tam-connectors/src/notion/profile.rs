//! The relationship profile as a Notion sub-page of the account page, "Technical Relationship
//! Profile - {Account}": a `heading_2` per section and a bulleted item per line.
//!
//! The page is created once (found again by its title under the account page, so a lost
//! receipt never makes a second one) and then updated in place: each section keeps the blocks
//! that still match, and only the rest is replaced or appended after them. A new draft in the
//! communication history is thus one appended block. Notion takes at most 100 children per
//! request and 2,000 UTF-16 units per rich-text run, so blocks go in batches and long lines in
//! several runs.

use std::sync::Arc;

use serde_json::{Value, json};
use tam_core::comms::{PROFILE_SECTIONS, ProfileDocument};
use tam_core::outbox::Outcome;
use tam_core::ports::ProfilePublisher;

use super::records::plain_text;
use super::{Notion, NotionError};

/// Children per request, Notion's limit.
const BATCH: usize = 100;
/// Length of a rich-text run, Notion's limit, as Notion counts: UTF-16 code units (an emoji is
/// two).
const RUN: usize = 2000;
/// Runs per rich-text array, Notion's limit.
const RUNS: usize = 100;
/// What an empty section shows.
const EMPTY: &str = "Nothing recorded yet.";

/// `text` as rich-text runs of at most 2,000 UTF-16 units each (cut on character boundaries).
/// Text beyond 100 runs does not fit one block and is cut with an ellipsis.
pub fn rich_text(text: &str) -> Value {
    let mut runs: Vec<String> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && runs.len() < RUNS {
        let (run, after) = split_utf16(rest, RUN);
        runs.push(run.to_owned());
        rest = after;
    }
    if !rest.is_empty()
        && let Some(last) = runs.last_mut()
    {
        let (kept, _) = split_utf16(last, RUN - 1);
        *last = format!("{kept}…");
    }
    Value::Array(runs.into_iter().map(|r| json!({"type": "text", "text": {"content": r}})).collect())
}

/// `text` cut after at most `units` UTF-16 code units, on a character boundary: the part that
/// fits and the rest.
pub fn split_utf16(text: &str, units: usize) -> (&str, &str) {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += c.len_utf16();
        if used > units {
            return text.split_at(at);
        }
    }
    (text, "")
}

/// A block as tam writes it: its type and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    kind: &'static str,
    text: String,
}

impl Line {
    fn block(&self) -> Value {
        json!({"object": "block", "type": self.kind, self.kind: {"rich_text": rich_text(&self.text)}})
    }
}

/// The blocks under a section's heading.
fn body(lines: &[String]) -> Vec<Line> {
    if lines.is_empty() {
        return vec![Line { kind: "paragraph", text: EMPTY.to_owned() }];
    }
    lines.iter().map(|l| Line { kind: "bulleted_list_item", text: l.replace(['\r', '\n'], " ") }).collect()
}

/// A block read back from the page.
#[derive(Debug, Clone)]
struct Found {
    id: String,
    kind: String,
    text: String,
}

/// A section as it stands on the page.
#[derive(Debug)]
struct OnPage {
    heading: String,
    blocks: Vec<Found>,
}

/// Writes profiles under account pages (the account id is the page id).
pub struct NotionProfiles {
    notion: Arc<Notion>,
    link: String,
}

impl NotionProfiles {
    /// Profiles written through `notion`; `link` names the account page's URL property that
    /// links the profile (empty: none).
    pub fn new(notion: Arc<Notion>, link: String) -> NotionProfiles {
        NotionProfiles { notion, link }
    }

    /// Creates or updates `doc`'s page; returns its id.
    pub fn publish(&self, doc: &ProfileDocument) -> Result<String, NotionError> {
        let account = doc.account.as_str();
        match self.find(account, &doc.title())? {
            Some(page) => {
                self.update(&page, doc)?;
                Ok(page)
            }
            None => self.create(account, doc),
        }
    }

    /// Every child block of `id`, following `next_cursor`.
    fn children(&self, id: &str) -> Result<Vec<Value>, NotionError> {
        let mut all = Vec::new();
        let mut cursor = String::new();
        loop {
            let mut path = format!("/v1/blocks/{id}/children?page_size={BATCH}");
            if !cursor.is_empty() {
                path.push_str(&format!("&start_cursor={cursor}"));
            }
            let list = self.notion.request("GET", &path, None)?;
            all.extend(list["results"].as_array().cloned().unwrap_or_default());
            match list["next_cursor"].as_str() {
                Some(next) if list["has_more"] == true => cursor = next.to_owned(),
                _ => return Ok(all),
            }
        }
    }

    /// The profile sub-page of `account`, found by its title.
    fn find(&self, account: &str, title: &str) -> Result<Option<String>, NotionError> {
        let children = self.children(account)?;
        Ok(children
            .iter()
            .find(|b| b["type"] == "child_page" && b["child_page"]["title"] == title && b["archived"] != true)
            .and_then(|b| b["id"].as_str())
            .map(str::to_owned))
    }

    /// Appends `blocks` to `parent` in batches, after the block `after` (at the end when
    /// `None`); returns the id of the last block written.
    fn append(&self, parent: &str, blocks: &[Value], mut after: Option<String>) -> Result<Option<String>, NotionError> {
        for batch in blocks.chunks(BATCH) {
            let mut body = json!({"children": batch});
            if let Some(a) = &after {
                body["after"] = json!(a);
            }
            let created = self.notion.request("PATCH", &format!("/v1/blocks/{parent}/children"), Some(&body))?;
            // The answer lists what was created, last block of the batch last.
            let last = created["results"].as_array().and_then(|r| r.last()).and_then(|b| b["id"].as_str());
            after = last.map(str::to_owned).or(after);
        }
        Ok(after)
    }

    fn create(&self, account: &str, doc: &ProfileDocument) -> Result<String, NotionError> {
        let blocks: Vec<Value> = doc
            .sections
            .iter()
            .flat_map(|s| {
                std::iter::once(Line { kind: "heading_2", text: s.title.clone() }.block())
                    .chain(body(&s.lines).iter().map(Line::block).collect::<Vec<_>>())
            })
            .collect();
        let (first, rest) = blocks.split_at(blocks.len().min(BATCH));
        let page = self.notion.request(
            "POST",
            "/v1/pages",
            Some(&json!({
                "parent": {"page_id": account},
                "properties": {"title": {"title": rich_text(&doc.title())}},
                "children": first,
            })),
        )?;
        let id = page["id"].as_str().unwrap_or_default().to_owned();
        self.append(&id, rest, None)?;
        if !self.link.is_empty()
            && let Some(url) = page["url"].as_str()
        {
            let link = json!({"properties": {self.link.as_str(): {"url": url}}});
            match self.notion.request("PATCH", &format!("/v1/pages/{account}"), Some(&link)) {
                // A database made before the property was a URL keeps a relation, which cannot
                // name the sub-page: it stays reachable under the account page.
                Ok(_) | Err(NotionError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(id)
    }

    fn update(&self, page: &str, doc: &ProfileDocument) -> Result<(), NotionError> {
        let mut sections: Vec<(String, OnPage)> = Vec::new();
        for block in self.children(page)? {
            let kind = block["type"].as_str().unwrap_or_default().to_owned();
            let found = Found {
                id: block["id"].as_str().unwrap_or_default().to_owned(),
                text: plain_text(&block[&kind]["rich_text"]),
                kind,
            };
            if found.kind == "heading_2" && PROFILE_SECTIONS.contains(&found.text.as_str()) {
                sections.push((found.text.clone(), OnPage { heading: found.id, blocks: Vec::new() }));
            } else if found.kind.starts_with("heading_") {
                // Someone's own heading ends tam's section; what follows is theirs.
                sections.push((String::new(), OnPage { heading: found.id, blocks: Vec::new() }));
            } else if let Some((_, section)) = sections.last_mut() {
                section.blocks.push(found);
            }
        }
        // New sections go after the previous one, so the page keeps the document's order.
        let mut previous_end: Option<String> = None;
        for section in &doc.sections {
            let wanted = body(&section.lines);
            let Some((_, on_page)) = sections.iter().find(|(title, _)| *title == section.title) else {
                let mut blocks = vec![Line { kind: "heading_2", text: section.title.clone() }.block()];
                blocks.extend(wanted.iter().map(Line::block));
                previous_end = self.append(page, &blocks, previous_end.clone())?;
                continue;
            };
            previous_end = Some(self.update_section(page, on_page, &wanted)?);
        }
        Ok(())
    }

    /// Brings one section's blocks to `wanted` with as few calls as it takes: what matches at
    /// the start and at the end stays; in between, a block of the same kind gets its text
    /// updated in place, and only the surplus is deleted or the shortfall appended. Changing one
    /// stakeholder is one call, not a rewrite of everything after it. Returns the section's
    /// last block.
    fn update_section(&self, page: &str, on_page: &OnPage, wanted: &[Line]) -> Result<String, NotionError> {
        let have = &on_page.blocks;
        let same = |h: &Found, w: &Line| h.kind == w.kind && h.text == w.text;
        let prefix = have.iter().zip(wanted).take_while(|(h, w)| same(h, w)).count();
        let room = have.len().min(wanted.len()) - prefix;
        let suffix = have.iter().rev().zip(wanted.iter().rev()).take(room).take_while(|(h, w)| same(h, w)).count();
        let (old_middle, new_middle) = (&have[prefix..have.len() - suffix], &wanted[prefix..wanted.len() - suffix]);
        let mut last = have[..prefix].last().map_or(on_page.heading.clone(), |b| b.id.clone());
        let mut rewritten = 0;
        for (h, w) in old_middle.iter().zip(new_middle) {
            if h.kind != w.kind {
                break;
            }
            let text = json!({w.kind: {"rich_text": rich_text(&w.text)}});
            self.notion.request("PATCH", &format!("/v1/blocks/{}", h.id), Some(&text))?;
            last = h.id.clone();
            rewritten += 1;
        }
        for stale in &old_middle[rewritten..] {
            self.notion.request("DELETE", &format!("/v1/blocks/{}", stale.id), None)?;
        }
        let blocks: Vec<Value> = new_middle[rewritten..].iter().map(Line::block).collect();
        if let Some(appended) = self.append(page, &blocks, Some(last.clone()))? {
            last = appended;
        }
        Ok(have[have.len() - suffix..].last().map_or(last, |b| b.id.clone()))
    }
}

impl ProfilePublisher for NotionProfiles {
    fn publish_profile(&mut self, doc: &ProfileDocument) -> Outcome {
        let page = doc.account.as_str();
        if !page.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Outcome::Rejected { reason: format!("account {page:?} is not a Notion page id") };
        }
        match self.publish(doc) {
            Ok(id) => Outcome::Delivered { receipt: format!("notion:page/{id}") },
            Err(e @ NotionError::Unavailable(_)) => Outcome::Retry { reason: e.to_string(), after: None },
            Err(e) => Outcome::Rejected { reason: e.to_string() },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_into_runs_of_at_most_2000_utf16_units_on_character_boundaries() {
        let units = |runs: &Value| -> Vec<usize> {
            runs.as_array()
                .unwrap()
                .iter()
                .map(|r| r["text"]["content"].as_str().unwrap().encode_utf16().count())
                .collect()
        };
        assert_eq!(units(&rich_text(&"é".repeat(4500))), [2000, 2000, 500]);
        // An emoji is two units, as Notion counts: 1,500 of them are 3,000 units.
        assert_eq!(units(&rich_text(&"😀".repeat(1500))), [2000, 1000]);
        assert_eq!(units(&rich_text(&format!("a{}", "😀".repeat(1000)))), [1999, 2], "never half a character");
        let huge = rich_text(&"x".repeat(RUN * RUNS + 5));
        let runs = huge.as_array().unwrap();
        assert_eq!(runs.len(), RUNS);
        assert!(runs[RUNS - 1]["text"]["content"].as_str().unwrap().ends_with('…'));
    }
}
