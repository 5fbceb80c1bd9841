//! Kayako as a [`TicketSource`]: the tickets with activity since the last sync, from the
//! JSON API (kayako.com) or the Classic XML API.

use anyhow::Result;
use tam_connectors::kayako::{Cases, Classic, KayakoMapping, case_record, case_tags, classic_record, classic_tags};
use tam_core::{TenantId, Timestamp};

use super::{Fetched, TicketSource};

/// Which API a helpdesk is read through.
pub enum KayakoClient {
    /// kayako.com's JSON API, signed in as an agent.
    Json(Cases),
    /// The Classic XML API, by departments (ids like `"1,2"`).
    Classic {
        /// The client.
        client: Classic,
        /// The departments whose tickets are read, by id (`"1,2"`).
        departments: String,
    },
}

/// A Kayako helpdesk, as one tenant's tickets.
pub struct KayakoSource {
    /// The client.
    pub client: KayakoClient,
    /// Whose tickets these are.
    pub tenant: TenantId,
    /// How cases become tickets.
    pub mapping: KayakoMapping,
}

impl TicketSource for KayakoSource {
    fn name(&self) -> &'static str {
        "kayako"
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn fetch(&self, since: Option<Timestamp>) -> Result<Fetched> {
        let (tenant, mapping) = (self.tenant.as_str(), &self.mapping);
        let mut out = Fetched::default();
        // A ticket whose account cannot be told is named and skipped; the others are stored.
        // A ticket carrying the escalation tag is an escalation of its account too.
        let mut keep = |record: Result<serde_json::Value, String>, tags: Vec<String>| match record {
            Ok(r) => {
                out.records.extend(mapping.escalation(&r, &tags));
                out.records.push(r);
            }
            Err(why) => out.skipped.push(format!("kayako: {why}")),
        };
        let mut renames = Vec::new();
        let (fetched, query) = match &self.client {
            KayakoClient::Json(cases) => {
                let priorities = cases.priorities()?;
                let statuses = cases.statuses()?;
                let include = mapping.includes();
                let fetched = cases.cases(since, &include, mapping.fields(), |c| {
                    keep(case_record(tenant, c, &priorities, &statuses, mapping), case_tags(c));
                })?;
                (fetched, Cases::cases_query(&include, mapping.fields()))
            }
            KayakoClient::Classic { client, departments } => {
                let priorities = client.priorities()?;
                let statuses = client.statuses()?;
                let fetched = client.tickets(departments, since, |t| {
                    // An older tam stored Classic tickets under their display id: each one seen
                    // again takes the id both APIs share.
                    if let (Some(display), Some(number)) = (t.text_of("displayid"), t.attribute("id")) {
                        renames.push((display.to_owned(), format!("KAYAKO-{number}")));
                    }
                    keep(classic_record(tenant, t, &priorities, &statuses, mapping), classic_tags(t));
                })?;
                (fetched, Classic::tickets_query(departments))
            }
        };
        Ok(Fetched { fetched, query, renames, ..out })
    }

    fn calls(&self) -> u64 {
        match &self.client {
            KayakoClient::Json(cases) => cases.calls(),
            KayakoClient::Classic { client, .. } => client.calls(),
        }
    }
}

impl KayakoClient {
    /// `tam doctor`'s check: the statuses, read once (proves the URL and the credentials).
    pub fn check(&self) -> Result<String, String> {
        let statuses = match self {
            KayakoClient::Json(cases) => cases.statuses().map_err(|e| e.to_string())?.len(),
            KayakoClient::Classic { client, .. } => client.statuses().map_err(|e| e.to_string())?.len(),
        };
        Ok(format!("{statuses} ticket statuses read"))
    }
}
