//! Pages: as JSON in either API version, created under a database, data source or page,
//! read and updated; relations checked.

use serde_json::{Map, Value, json};

use super::*;

impl State {
    pub(super) fn page_json(&self, id: &str, p: &Page, version: &str) -> Value {
        let mut parent = p.parent.clone();
        if let (Some(db), Some(source)) = (&p.database, &p.source) {
            parent = if version >= "2025-09-03" {
                json!({"type": "data_source_id", "data_source_id": hyphenated(source), "database_id": hyphenated(db)})
            } else {
                json!({"type": "database_id", "database_id": hyphenated(db)})
            };
        }
        let mut properties = p.properties.clone();
        // Notion computes these from the page itself.
        let schema = p.database.as_ref().and_then(|db| self.databases.get(db)).map(|d| &d.schema);
        for (name, property) in schema.into_iter().flatten() {
            if property["type"] == "last_edited_by" {
                properties.insert(
                    name.clone(),
                    json!({"id": property["id"], "type": "last_edited_by",
                           "last_edited_by": {"object": "user", "id": p.editor}}),
                );
            }
        }
        json!({
            "object": "page", "id": hyphenated(id), "created_time": p.created, "last_edited_time": p.edited,
            "created_by": {"object": "user", "id": p.creator},
            "last_edited_by": {"object": "user", "id": p.editor},
            "cover": null, "icon": null, "parent": parent, "archived": p.archived, "in_trash": p.archived,
            "properties": properties, "url": format!("https://www.notion.so/{id}"), "public_url": null,
        })
    }

    pub(super) fn create_page(&mut self, body: &Value, version: &str) -> Answer {
        let parent = body.get("parent").cloned().unwrap_or(Value::Null);
        let (database, source, parent_page) = if let Some(ds) = parent.get("data_source_id").and_then(Value::as_str) {
            let db = self.sources.get(&norm(ds)).cloned().ok_or_else(|| Self::not_found("data source", ds))?;
            (Some(db), Some(norm(ds)), None)
        } else if let Some(db) = parent.get("database_id").and_then(Value::as_str) {
            let sources = &self.database(db)?.sources;
            if sources.len() > 1 {
                return Err(several_sources(&norm(db), sources));
            }
            (Some(norm(db)), sources.first().cloned(), None)
        } else if let Some(page) = parent.get("page_id").and_then(Value::as_str) {
            self.shared_page(page)?;
            (None, None, Some(norm(page)))
        } else {
            return Err(invalid("body failed validation: body.parent should be defined, instead was `undefined`."));
        };
        if let Some(db) = &database {
            self.database(db)?;
        }
        let children = body.get("children").cloned().unwrap_or(json!([]));
        validate_children(&children, "body.children")?;
        let schema = database.as_ref().map(|db| self.databases[db].schema.clone());
        let properties = convert_properties(body.get("properties"), schema.as_ref())?;
        self.check_relations(&properties, schema.as_ref())?;
        let id = self.new_id();
        let now = self.now();
        let page = Page {
            parent: match &parent_page {
                Some(p) => json!({"type": "page_id", "page_id": hyphenated(p)}),
                None => json!({"type": "database_id", "database_id": database.as_deref().map(hyphenated)}),
            },
            database,
            source,
            properties,
            created: now.clone(),
            edited: now,
            creator: BOT_USER.to_owned(),
            editor: BOT_USER.to_owned(),
            archived: false,
        };
        self.insert_page(&id, page);
        if let Some(p) = parent_page {
            // A sub-page is also a block of its parent.
            let body = json!({"type": "child_page", "child_page": {"title": plain(&self.pages[&id].properties.get("title").map(|t| t["title"].clone()).unwrap_or_default())}});
            self.blocks.insert(id.clone(), Block { parent: p.clone(), body, archived: false });
            self.children.entry(p).or_default().push(id.clone());
        }
        self.add_blocks(&id, children.as_array().unwrap_or(&Vec::new()), None);
        Ok(self.page_json(&id, &self.pages[&id], version))
    }

    /// A relation names rows of its related database: a page that does not exist, or one that
    /// is not a row of that database (a sub-page, say), is refused, as Notion refuses it.
    pub(super) fn check_relations(
        &self,
        properties: &Map<String, Value>,
        schema: Option<&Map<String, Value>>,
    ) -> Result<(), Refusal> {
        for (name, property) in properties {
            let related_db = schema
                .and_then(|s| s.get(name))
                .and_then(|p| p.pointer("/relation/database_id"))
                .and_then(Value::as_str)
                .map(norm);
            for related in property["relation"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let id = related["id"].as_str().unwrap_or_default();
                let Some(page) = self.pages.get(&norm(id)) else {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation: Could not find page with ID: {id}."
                    )));
                };
                if let Some(db) = &related_db
                    && page.database.as_ref().map(|d| norm(d)) != Some(db.clone())
                {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation: page {id} is not in the related database."
                    )));
                }
            }
        }
        Ok(())
    }

    pub(super) fn get_page(&self, id: &str, version: &str) -> Answer {
        let page = self.shared_page(id)?;
        Ok(self.page_json(&norm(id), page, version))
    }

    pub(super) fn update_page(&mut self, id: &str, body: &Value, version: &str) -> Answer {
        let page = self.shared_page(id)?.clone();
        let schema = page.database.as_ref().map(|db| self.databases[db].schema.clone());
        let changes = convert_properties(body.get("properties"), schema.as_ref())?;
        self.check_relations(&changes, schema.as_ref())?;
        let now = self.now();
        let key = norm(id);
        let page = self.pages.get_mut(&key).unwrap();
        page.properties.extend(changes);
        if let Some(a) = body.get("archived").or(body.get("in_trash")).and_then(Value::as_bool) {
            page.archived = a;
        }
        page.edited = now;
        page.editor = BOT_USER.to_owned();
        let page = self.pages[&key].clone();
        Ok(self.page_json(&key, &page, version))
    }
}
