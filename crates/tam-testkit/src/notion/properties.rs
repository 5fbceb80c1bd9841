//! Property schemas and values: what a database stores, what a page may carry, and which
//! filters a query may use.

use serde_json::{Map, Value, json};

use super::*;

/// Property schemas in the request format (`{"Status": {"select": {"options": [...]}}}`) as
/// Notion stores them: with ids, option ids and colors.
pub(super) fn add_properties(schema: &mut Map<String, Value>, properties: &Map<String, Value>) -> Result<(), Refusal> {
    for (name, config) in properties {
        let Some((kind, options)) = config.as_object().and_then(|o| o.iter().find(|(k, _)| *k != "name")) else {
            return Err(invalid(format!("body failed validation: body.properties.{name} should be an object.")));
        };
        let mut options = options.clone();
        if let Some(list) = options.get_mut("options").and_then(Value::as_array_mut) {
            for (i, o) in list.iter_mut().enumerate() {
                o["id"] = json!(format!("opt{i}"));
                if o.get("color").is_none() {
                    o["color"] = json!("default");
                }
            }
        }
        let id = if kind == "title" { "title".to_owned() } else { format!("p{}", schema.len()) };
        schema.insert(name.clone(), json!({"id": id, "name": name, "type": kind, kind.as_str(): options}));
    }
    Ok(())
}

/// Request-format property values as a page stores them, checked against the schema (a page
/// under a page has only `title`).
pub(super) fn convert_properties(
    props: Option<&Value>,
    schema: Option<&Map<String, Value>>,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = Map::new();
    let Some(props) = props.and_then(Value::as_object) else { return Ok(out) };
    for (name, value) in props {
        let (id, kind) = match schema {
            Some(schema) => {
                let p = schema
                    .get(name)
                    .or_else(|| schema.values().find(|p| p["id"] == json!(name)))
                    .ok_or_else(|| invalid(format!("{name} is not a property that exists.")))?;
                (p["id"].clone(), p["type"].as_str().unwrap_or_default().to_owned())
            }
            None if name == "title" => (json!("title"), "title".to_owned()),
            None => return Err(invalid(format!("{name} is not a property that exists."))),
        };
        let Some(inner) = value.get(&kind) else {
            return Err(invalid(format!("{name} is expected to be {kind}.")));
        };
        let stored = match kind.as_str() {
            "title" | "rich_text" => {
                validate_runs(inner, &format!("body.properties.{name}.{kind}"))?;
                rich_response(inner)
            }
            "number" if !(inner.is_number() || inner.is_null()) => {
                return Err(invalid(format!("{name} is expected to be number.")));
            }
            "checkbox" if !inner.is_boolean() => return Err(invalid(format!("{name} is expected to be checkbox."))),
            "relation" => {
                let n = inner.as_array().map_or(0, Vec::len);
                if n > 100 {
                    return Err(invalid(format!(
                        "body failed validation: body.properties.{name}.relation.length should be ≤ `100`, instead was `{n}`."
                    )));
                }
                inner.clone()
            }
            "select" | "status" if inner.is_object() => {
                let name = inner.get("name").cloned().unwrap_or(Value::Null);
                json!({"id": "opt", "name": name, "color": "default"})
            }
            "date" if inner.is_object() => {
                json!({"start": inner.get("start"), "end": inner.get("end").cloned().unwrap_or(Value::Null), "time_zone": null})
            }
            _ => inner.clone(),
        };
        let mut v = json!({"id": id, "type": kind});
        v[&kind] = stored;
        if kind == "relation" {
            v["has_more"] = json!(false);
        }
        let key = schema.and_then(|s| s.iter().find(|(_, p)| p["id"] == id)).map_or(name.clone(), |(n, _)| n.clone());
        out.insert(key, v);
    }
    Ok(out)
}

pub(super) fn matches(page: &Page, filter: Option<&Value>) -> Result<bool, Refusal> {
    let Some(filter) = filter else { return Ok(true) };
    if let Some(all) = filter.get("and").and_then(Value::as_array) {
        for f in all {
            if !matches(page, Some(f))? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = filter.get("or").and_then(Value::as_array) {
        for f in any {
            if matches(page, Some(f))? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(condition) = filter.get("last_edited_by") {
        // A people condition; `check_filter` made sure the property is of this type.
        let user = |k: &str| condition.get(k).and_then(Value::as_str).map(norm);
        let editor = norm(&page.editor);
        return Ok(match (user("contains"), user("does_not_contain")) {
            (Some(u), _) => editor == u,
            (_, Some(u)) => editor != u,
            _ => condition.get("is_not_empty").is_some(),
        });
    }
    let (value, condition) = match filter.get("timestamp").and_then(Value::as_str) {
        Some(t @ ("last_edited_time" | "created_time")) => {
            let v = if t == "created_time" { &page.created } else { &page.edited };
            (v.clone(), filter.get(t))
        }
        _ => return Err(invalid("body failed validation: this fake Notion filters only on timestamps.")),
    };
    let Some((op, bound)) = condition.and_then(Value::as_object).and_then(|o| o.iter().next()) else {
        return Err(invalid("body failed validation: body.filter should have a condition."));
    };
    // Stamps and bounds are compared as instants: `…Z` and `….000Z` are the same time.
    let at = |s: &str| s.parse::<jiff::Timestamp>().map_err(|_| invalid(format!("body.filter: `{s}` is not a date.")));
    let (v, b) = (at(&value)?, at(bound.as_str().unwrap_or_default())?);
    Ok(match op.as_str() {
        "on_or_after" => v >= b,
        "after" => v > b,
        "on_or_before" => v <= b,
        "before" => v < b,
        "equals" => v == b,
        _ => return Err(invalid(format!("body failed validation: unknown date condition `{op}`."))),
    })
}

/// A query's filter checked against the database's schema, as Notion checks it: a property
/// condition must name a property the schema has, of the condition's type. This fake knows the
/// timestamp conditions and the people condition on a `last_edited_by` property.
pub(super) fn check_filter(filter: &Value, schema: &Map<String, Value>) -> Result<(), Refusal> {
    for compound in ["and", "or"] {
        if let Some(list) = filter.get(compound).and_then(Value::as_array) {
            return list.iter().try_for_each(|f| check_filter(f, schema));
        }
    }
    let Some(name) = filter.get("property").and_then(Value::as_str) else { return Ok(()) };
    let Some(property) = schema.get(name).or_else(|| schema.values().find(|p| p["id"] == json!(name))) else {
        return Err(invalid(format!("Could not find property with name or id: {name}")));
    };
    let kind = property["type"].as_str().unwrap_or_default();
    let condition = filter.as_object().and_then(|o| o.keys().find(|k| *k != "property" && *k != "type"));
    match condition.map(String::as_str) {
        Some("last_edited_by") if kind == "last_edited_by" => Ok(()),
        Some(c) if c != kind => Err(invalid(format!(
            "body failed validation. Fix one: body.filter.{kind} should be defined, instead was `undefined`. \
             body.filter.{c} is not a valid filter for property {name} of type {kind}."
        ))),
        _ => Err(invalid("body failed validation: this fake Notion filters only on timestamps and Last edited by.")),
    }
}
