//! Health written back to the account's Notion page: the `crm` channel in Notion mode.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::json;
use tam_core::comms::CrmUpdate;
use tam_core::outbox::Outcome;
use tam_core::ports::CrmWriter;

use super::{Notion, NotionError};

/// Names of the health properties on the account page.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HealthProperties {
    /// A number.
    pub score: String,
    /// A select: green, amber, red.
    pub status: String,
    /// A date.
    pub last_scan: String,
    /// A checkbox.
    pub escalated: String,
    /// The URL property linking the relationship profile sub-page; empty for none.
    pub profile: String,
}

impl Default for HealthProperties {
    fn default() -> HealthProperties {
        HealthProperties {
            score: "Health Score".into(),
            status: "Health Status".into(),
            last_scan: "Last Health Scan".into(),
            escalated: "Escalated".into(),
            profile: "TAM Profile".into(),
        }
    }
}

/// Writes health to account pages (the account id is the page id).
pub struct NotionCrm {
    notion: Arc<Notion>,
    properties: HealthProperties,
}

impl NotionCrm {
    /// Health written through `notion` under `properties`.
    pub fn new(notion: Arc<Notion>, properties: HealthProperties) -> NotionCrm {
        NotionCrm { notion, properties }
    }
}

impl CrmWriter for NotionCrm {
    fn update_health(&mut self, update: &CrmUpdate) -> Outcome {
        let p = &self.properties;
        // Only these properties change; PATCH leaves the rest of the page alone.
        let body = json!({"properties": {
            p.score.as_str(): {"number": update.score},
            p.status.as_str(): {"select": {"name": update.status.as_str()}},
            p.last_scan.as_str(): {"date": {"start": update.scanned_at.to_string()}},
            p.escalated.as_str(): {"checkbox": update.escalated},
        }});
        let page = update.account.as_str();
        if !page.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Outcome::Rejected { reason: format!("account {page:?} is not a Notion page id") };
        }
        match self.notion.request("PATCH", &format!("/v1/pages/{page}"), Some(&body)) {
            Ok(_) => Outcome::Delivered { receipt: format!("notion:page/{page}") },
            Err(e @ NotionError::Unavailable(_)) => Outcome::Retry { reason: e.to_string(), after: None },
            Err(e) => Outcome::Rejected { reason: e.to_string() },
        }
    }
}
