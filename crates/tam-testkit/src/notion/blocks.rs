//! Blocks: a page's children, appended (100 at most a request), updated and deleted, with
//! rich text checked as Notion counts it.

use serde_json::{Value, json};

use super::*;

impl State {
    pub(super) fn live_children(&self, parent: &str) -> Vec<String> {
        self.children
            .get(parent)
            .map(|c| c.iter().filter(|b| !self.blocks[*b].archived).cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn block_json(&self, id: &str) -> Value {
        let b = &self.blocks[id];
        let parent_kind = if self.pages.contains_key(&b.parent) { "page_id" } else { "block_id" };
        let mut v = b.body.clone();
        v["object"] = json!("block");
        v["id"] = json!(hyphenated(id));
        v["parent"] = json!({"type": parent_kind, parent_kind: hyphenated(&b.parent)});
        v["has_children"] = json!(!self.live_children(id).is_empty());
        v["archived"] = json!(b.archived);
        v["in_trash"] = json!(b.archived);
        v
    }

    pub(super) fn target(&self, id: &str) -> Result<String, Refusal> {
        let key = norm(id);
        let live = self.blocks.get(&key).is_some_and(|b| !b.archived) || self.shared_page(id).is_ok();
        if !live || self.unshared.contains(&key) {
            return Err(Self::not_found("block", id));
        }
        Ok(key)
    }

    pub(super) fn list_children(&self, id: &str, query: &HashMap<String, String>) -> Answer {
        let key = self.target(id)?;
        let all = self.live_children(&key);
        let size = query.get("page_size").and_then(|s| s.parse::<usize>().ok()).unwrap_or(100).clamp(1, 100);
        let start = query.get("start_cursor").and_then(|c| all.iter().position(|b| *b == norm(c))).unwrap_or(0);
        let end = (start + size).min(all.len());
        let next = all.get(end).map(|id| hyphenated(id));
        let results: Vec<Value> = all[start..end].iter().map(|b| self.block_json(b)).collect();
        Ok(json!({"object": "list", "results": results, "next_cursor": next, "has_more": next.is_some(),
                  "type": "block", "block": {}}))
    }

    pub(super) fn append_children(&mut self, id: &str, body: &Value) -> Answer {
        let key = self.target(id)?;
        let children = body.get("children").cloned().unwrap_or(Value::Null);
        if !children.is_array() {
            return Err(invalid("body failed validation: body.children should be an array, instead was `undefined`."));
        }
        validate_children(&children, "body.children")?;
        let after = body.get("after").and_then(Value::as_str).map(norm);
        let created = self.add_blocks(&key, children.as_array().unwrap(), after);
        let results: Vec<Value> = created.iter().map(|b| self.block_json(b)).collect();
        Ok(
            json!({"object": "list", "results": results, "next_cursor": null, "has_more": false, "type": "block", "block": {}}),
        )
    }

    pub(super) fn add_blocks(&mut self, parent: &str, children: &[Value], after: Option<String>) -> Vec<String> {
        let mut created = Vec::new();
        let now = self.now();
        for child in children {
            let kind = block_kind(child).unwrap_or("paragraph").to_owned();
            let mut content = child.get(&kind).cloned().unwrap_or(json!({}));
            let nested = content.as_object_mut().and_then(|o| o.remove("children"));
            if let Some(text) = content.get("rich_text").cloned() {
                content["rich_text"] = rich_response(&text);
            }
            if content.get("color").is_none() && content.is_object() {
                content["color"] = json!("default");
            }
            let id = self.new_id();
            let body = json!({"type": kind, kind.as_str(): content, "created_time": now, "last_edited_time": now});
            self.blocks.insert(id.clone(), Block { parent: parent.to_owned(), body, archived: false });
            let list = self.children.entry(parent.to_owned()).or_default();
            let at = after
                .as_ref()
                .and_then(|a| list.iter().position(|b| b == a))
                .map_or(list.len(), |p| p + 1 + created.len());
            list.insert(at.min(list.len()), id.clone());
            if let Some(nested) = nested.as_ref().and_then(Value::as_array) {
                self.add_blocks(&id, nested, None);
            }
            created.push(id);
        }
        created
    }

    pub(super) fn update_block(&mut self, id: &str, body: &Value) -> Answer {
        let key = self.target(id)?;
        let Some(block) = self.blocks.get(&key) else { return Err(Self::not_found("block", id)) };
        let kind = block.body["type"].as_str().unwrap_or_default().to_owned();
        if let Some(content) = body.get(&kind) {
            if let Some(text) = content.get("rich_text") {
                validate_runs(text, &format!("body.{kind}.rich_text"))?;
                let now = self.now();
                let block = self.blocks.get_mut(&key).unwrap();
                block.body[&kind]["rich_text"] = rich_response(text);
                block.body["last_edited_time"] = json!(now);
            }
        } else if body.get("archived").and_then(Value::as_bool) == Some(true) {
            self.blocks.get_mut(&key).unwrap().archived = true;
        }
        Ok(self.block_json(&key))
    }

    pub(super) fn delete_block(&mut self, id: &str) -> Answer {
        let key = self.target(id)?;
        if let Some(page) = self.pages.get_mut(&key) {
            page.archived = true;
        }
        if let Some(block) = self.blocks.get_mut(&key) {
            block.archived = true;
            return Ok(self.block_json(&key));
        }
        Ok(json!({"object": "block", "id": hyphenated(&key), "archived": true, "in_trash": true}))
    }
}

pub(super) const BLOCK_KINDS: &[&str] = &[
    "paragraph",
    "heading_1",
    "heading_2",
    "heading_3",
    "bulleted_list_item",
    "numbered_list_item",
    "to_do",
    "toggle",
    "quote",
    "callout",
    "code",
    "divider",
];

pub(super) fn block_kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str).or_else(|| BLOCK_KINDS.iter().copied().find(|k| block.get(*k).is_some()))
}

pub(super) fn validate_children(children: &Value, at: &str) -> Result<(), Refusal> {
    let list = children.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.len() > 100 {
        return Err(invalid(format!(
            "body failed validation: {at}.length should be ≤ `100`, instead was `{}`.",
            list.len()
        )));
    }
    for (i, child) in list.iter().enumerate() {
        let Some(kind) = block_kind(child) else {
            return Err(invalid(format!("body failed validation: {at}[{i}] should be a block object.")));
        };
        let content = &child[kind];
        if let Some(text) = content.get("rich_text") {
            validate_runs(text, &format!("{at}[{i}].{kind}.rich_text"))?;
        }
        if let Some(nested) = content.get("children") {
            validate_children(nested, &format!("{at}[{i}].{kind}.children"))?;
        }
    }
    Ok(())
}

pub(super) fn validate_runs(runs: &Value, at: &str) -> Result<(), Refusal> {
    let list = runs.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.len() > 100 {
        return Err(invalid(format!(
            "body failed validation: {at}.length should be ≤ `100`, instead was `{}`.",
            list.len()
        )));
    }
    for (j, run) in list.iter().enumerate() {
        // Notion counts as JavaScript does: UTF-16 code units, so an emoji is two.
        let n = run.pointer("/text/content").and_then(Value::as_str).map_or(0, |t| t.encode_utf16().count());
        if n > 2000 {
            return Err(invalid(format!(
                "body failed validation: {at}[{j}].text.content.length should be ≤ `2000`, instead was `{n}`."
            )));
        }
    }
    Ok(())
}

/// Request-format rich text as Notion returns it: with `plain_text` and annotations.
pub(super) fn rich_response(runs: &Value) -> Value {
    runs.as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let content = r.pointer("/text/content").and_then(Value::as_str).unwrap_or_default();
                    json!({"type": "text", "text": {"content": content, "link": null},
                           "annotations": {"bold": false, "italic": false, "strikethrough": false, "underline": false, "code": false, "color": "default"},
                           "plain_text": content, "href": null})
                })
                .collect()
        })
        .unwrap_or(json!([]))
}
