//! Integration heartbeats a tenant posts (`POST /v1/heartbeats`): each becomes a heartbeat
//! record of that tenant, whatever tenant its body names, and goes through the importer, so a
//! bad one is named by position and field and the others are stored.

use anyhow::Result;
use serde_json::{Map, Value, json};
use tam_agent::import::{ImportReport, Importer};
use tam_core::{TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;

/// Stores `heartbeats` as `tenant`'s; one without an `at` was heard `now`.
pub fn take(
    store: &mut Store,
    rules: &Rules,
    tenant: &TenantId,
    heartbeats: Vec<Map<String, Value>>,
    now: Timestamp,
) -> Result<ImportReport> {
    let records = heartbeats.into_iter().map(|mut record| {
        // The caller's tenant decides; a body cannot speak for another.
        record.insert("record".into(), json!("heartbeat"));
        record.insert("tenant_id".into(), json!(tenant));
        record.entry("at").or_insert_with(|| json!(now));
        Value::Object(record)
    });
    let mut importer = Importer::new(store, rules.import_options(now));
    importer.push("heartbeats", records)?;
    Ok(importer.finish()?)
}
