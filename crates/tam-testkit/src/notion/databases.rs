//! Databases and their data sources: create, update, read, and query with filters, sorts and
//! pages of results.

use serde_json::{Map, Value, json};

use super::*;

impl State {
    pub(super) fn create_database(&mut self, body: &Value, version: &str) -> Answer {
        let parent = body.pointer("/parent/page_id").and_then(Value::as_str).ok_or_else(|| {
            invalid("body failed validation: body.parent.page_id should be defined, instead was `undefined`.")
        })?;
        self.shared_page(parent)?;
        let properties = if version >= "2025-09-03" {
            body.pointer("/initial_data_source/properties")
        } else {
            body.get("properties")
        };
        let properties = properties.and_then(Value::as_object).cloned().unwrap_or_default();
        let mut schema = Map::new();
        add_properties(&mut schema, &properties)?;
        if schema.is_empty() {
            schema.insert("Name".into(), json!({"id": "title", "name": "Name", "type": "title", "title": {}}));
        }
        let titles = schema.values().filter(|p| p["type"] == "title").count();
        if titles != 1 {
            return Err(invalid(format!("Database must have exactly one title property, instead had {titles}.")));
        }
        let id = self.new_id();
        let source = self.new_id();
        self.sources.insert(source.clone(), id.clone());
        let db = Database {
            parent: json!({"type": "page_id", "page_id": hyphenated(&norm(parent))}),
            title: body.get("title").map(rich_response).unwrap_or(json!([])),
            schema,
            sources: vec![source],
            created: self.now(),
        };
        self.databases.insert(id.clone(), db);
        self.get_database(&id, version)
    }

    /// Adds or changes properties (2022-06-28 `PATCH /v1/databases/{id}`).
    pub(super) fn update_database(&mut self, id: &str, body: &Value, version: &str) -> Answer {
        self.database(id)?;
        let properties = body.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
        let db = self.databases.get_mut(&norm(id)).unwrap();
        add_properties(&mut db.schema, &properties)?;
        self.get_database(id, version)
    }

    pub(super) fn get_database(&self, id: &str, version: &str) -> Answer {
        let db = self.database(id)?;
        let mut v = json!({
            "object": "database", "id": hyphenated(&norm(id)), "title": db.title, "description": [],
            "parent": db.parent, "is_inline": false, "in_trash": false, "archived": false,
            "created_time": db.created, "last_edited_time": db.created, "url": format!("https://app.notion.com/p/{}", norm(id)),
        });
        if version >= "2025-09-03" {
            let title = plain(&db.title);
            v["data_sources"] = db.sources.iter().map(|s| json!({"id": hyphenated(s), "name": title})).collect();
        } else {
            v["properties"] = Value::Object(db.schema.clone());
        }
        Ok(v)
    }

    pub(super) fn get_source(&self, id: &str, version: &str) -> Answer {
        if version < "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db_id = self.sources.get(&norm(id)).ok_or_else(|| Self::not_found("data source", id))?;
        let db = self.database(db_id)?;
        Ok(json!({
            "object": "data_source", "id": hyphenated(&norm(id)), "title": db.title,
            "parent": {"type": "database_id", "database_id": hyphenated(db_id)}, "properties": db.schema,
        }))
    }

    pub(super) fn query_database(&self, id: &str, body: &Value, version: &str) -> Answer {
        if version >= "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db = self.database(id)?;
        if db.sources.len() > 1 {
            return Err(several_sources(&norm(id), &db.sources));
        }
        self.query(|p| p.database.as_deref() == Some(&norm(id)), &db.schema, body, version, "page_or_database")
    }

    pub(super) fn query_source(&self, id: &str, body: &Value, version: &str) -> Answer {
        if version < "2025-09-03" {
            return Err(refuse(400, "invalid_request_url", "Invalid request URL."));
        }
        let db = self.sources.get(&norm(id)).ok_or_else(|| Self::not_found("data source", id))?;
        let schema = &self.database(db)?.schema;
        let key = norm(id);
        self.query(|p| p.source.as_deref() == Some(&key), schema, body, version, "page_or_data_source")
    }

    pub(super) fn query(
        &self,
        member: impl Fn(&Page) -> bool,
        schema: &Map<String, Value>,
        body: &Value,
        version: &str,
        kind: &str,
    ) -> Answer {
        let size = body.get("page_size").and_then(Value::as_u64).unwrap_or(100);
        if !(1..=100).contains(&size) {
            return Err(invalid(format!(
                "body failed validation: body.page_size should be ≤ `100`, instead was `{size}`."
            )));
        }
        // Notion checks the filter against the schema before it reads a page.
        if let Some(filter) = body.get("filter") {
            check_filter(filter, schema)?;
        }
        let mut hits = Vec::new();
        for id in &self.order {
            let page = &self.pages[id];
            if member(page) && !page.archived && matches(page, body.get("filter"))? {
                hits.push(id);
            }
        }
        if let Some(sorts) = body.get("sorts").and_then(Value::as_array) {
            for sort in sorts.iter().rev() {
                if sort.get("timestamp").and_then(Value::as_str) == Some("last_edited_time") {
                    hits.sort_by(|a, b| self.pages[*a].edited.cmp(&self.pages[*b].edited));
                    if sort.get("direction").and_then(Value::as_str) == Some("descending") {
                        hits.reverse();
                    }
                }
            }
        }
        let start = match body.get("start_cursor").and_then(Value::as_str) {
            Some(c) => hits.iter().position(|id| **id == norm(c)).ok_or_else(|| {
                invalid(format!(
                    "body failed validation: body.start_cursor should be a valid cursor, instead was `{c}`."
                ))
            })?,
            None => 0,
        };
        let end = (start + size as usize).min(hits.len());
        let results: Vec<Value> =
            hits[start..end].iter().map(|id| self.page_json(id, &self.pages[*id], version)).collect();
        let next = hits.get(end).map(|id| hyphenated(id));
        Ok(json!({"object": "list", "results": results, "next_cursor": next, "has_more": next.is_some(),
                  "type": kind, kind: {}, "request_id": "00000000-0000-4000-8000-000000000001"}))
    }
}
