//! Jira Cloud as a [`TicketSource`]: the issues of one or several projects updated since the
//! last sync, found with JQL.

use anyhow::{Context, Result, bail};
use jiff::tz::TimeZone;
use tam_connectors::jira::{Jira, JiraMapping, escalation_record, ticket_record};
use tam_core::{SignedDuration, TenantId, Timestamp};

use super::{Fetched, TicketSource};

/// A Jira site's projects, as one tenant's tickets.
pub struct JiraSource {
    jira: Jira,
    tenant: TenantId,
    /// The query without its time bound: projects and the operator's extra JQL.
    base: String,
    /// The zone JQL's dates are read in: the Jira user's.
    zone: TimeZone,
    mapping: JiraMapping,
}

impl JiraSource {
    /// `projects` is one key (`SUP`) or several, comma-separated (`SUP, OPS`); `jql` narrows
    /// them further.
    pub fn new(
        jira: Jira,
        tenant: TenantId,
        projects: &str,
        jql: Option<&str>,
        zone: TimeZone,
        mapping: JiraMapping,
    ) -> Result<JiraSource> {
        let projects = JiraSource::check_projects(projects)?;
        let mut base = match projects.as_slice() {
            [one] => format!("project = \"{one}\""),
            several => {
                format!("project in ({})", several.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "))
            }
        };
        if let Some(extra) = jql {
            base.push_str(&format!(" AND ({extra})"));
        }
        Ok(JiraSource { jira, tenant, base, zone, mapping })
    }

    /// The keys of `projects` (one, or several separated by commas), each checked.
    pub fn check_projects(projects: &str) -> Result<Vec<&str>> {
        let projects: Vec<&str> = projects.split(',').map(str::trim).collect();
        if let Some(bad) =
            projects.iter().find(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        {
            bail!("[jira] project {bad:?} is not a project key (one key, or several separated by commas)");
        }
        Ok(projects)
    }

    /// The JQL a sync from `since` sends.
    pub fn jql(&self, since: Option<Timestamp>) -> String {
        let mut jql = self.base.clone();
        if let Some(from) = since {
            let local = from.to_zoned_datetime(self.zone.clone()).strftime("%Y-%m-%d %H:%M").to_string();
            jql.push_str(&format!(" AND updated >= \"{local}\""));
        }
        jql.push_str(" ORDER BY updated ASC");
        jql
    }
}

impl TicketSource for JiraSource {
    fn name(&self) -> &'static str {
        "jira"
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// JQL compares to the minute.
    fn overlap(&self) -> SignedDuration {
        SignedDuration::from_mins(1)
    }

    fn fetch(&self, since: Option<Timestamp>) -> Result<Fetched> {
        let jql = self.jql(since);
        let tenant = self.tenant.as_str();
        let mut records = Vec::new();
        let fetched = self
            .jira
            .search(&jql, &self.mapping.fields(), |page| {
                for issue in page {
                    records.push(ticket_record(tenant, issue, &self.mapping));
                    records.extend(escalation_record(tenant, issue, &self.mapping));
                }
            })
            .with_context(|| format!("[jira] search {jql:?}"))?;
        Ok(Fetched { records, fetched, query: jql, ..Fetched::default() })
    }

    fn calls(&self) -> u64 {
        self.jira.calls()
    }
}
