//! Relationship profiles (SPEC 7): facts merged by natural key with a change log, and
//! co-development opportunities. Also the period figures check-ins and reviews quote.

use tam_core::comms::{PeriodStats, ProfileFacts, ScorePoint, TicketFacts};
use tam_core::{AccountId, Priority, TenantId, TicketId, TicketStatus, Timestamp};

use crate::db::args;
use crate::{Store, StoreError, from_nanos, nanos};

/// The four fact sections of a profile.
pub const SECTIONS: [&str; 4] = ["stakeholders", "integrations", "features", "environment"];

/// One stored fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// `stakeholders`, `integrations`, `features` or `environment`.
    pub section: String,
    /// Natural key, lower-cased.
    pub key: String,
    /// The fact as JSON.
    pub value: serde_json::Value,
    /// Where it came from (`task`, `heartbeat`, `ticket:<id>`).
    pub source: String,
    /// First recorded.
    pub first_seen: Timestamp,
    /// Last changed.
    pub updated_at: Timestamp,
}

/// One change of a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactChange {
    /// When.
    pub at: Timestamp,
    /// Section.
    pub section: String,
    /// Natural key.
    pub key: String,
    /// The value before, if the fact existed.
    pub old: Option<serde_json::Value>,
    /// The value after.
    pub new: serde_json::Value,
    /// Where the change came from.
    pub source: String,
}

/// A co-development opportunity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Opportunity {
    /// Title.
    pub title: String,
    /// What it is.
    pub description: String,
    /// `surfaced`, `discussed` or `in_progress`.
    pub status: String,
    /// `ticket:<id>` or `profile`.
    pub source: String,
    /// When it was first surfaced.
    pub created_at: Timestamp,
}

/// A fact to merge into a profile.
#[derive(Debug, Clone, Copy)]
pub struct NewFact<'a> {
    /// `stakeholders`, `integrations`, `features` or `environment`.
    pub section: &'a str,
    /// Natural key (a name); compared lower-cased.
    pub key: &'a str,
    /// The fact as JSON.
    pub value: &'a serde_json::Value,
    /// Where it came from.
    pub source: &'a str,
}

/// An opportunity to surface.
#[derive(Debug, Clone, Copy)]
pub struct NewOpportunity<'a> {
    /// Title; opportunities are unique by lower-cased title per account.
    pub title: &'a str,
    /// What it is.
    pub description: &'a str,
    /// `ticket:<id>` or `profile`.
    pub source: &'a str,
}

/// How a merge went for one fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merged {
    /// A new fact.
    Added,
    /// An existing fact with a new value (the old one is in the change log).
    Changed,
    /// Already known, identical.
    Unchanged,
}

fn json_value(raw: &str, key: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
        table: "profile_facts",
        key: key.to_owned(),
        field: "value",
        reason: e.to_string(),
    })
}

impl Store {
    /// Merges one fact: added when new, updated (old value logged) when different, untouched
    /// when identical. The key is lower-cased, so "Okta" and "okta" are one fact.
    pub fn merge_fact(
        &mut self,
        tenant: &TenantId,
        account: &AccountId,
        fact: &NewFact<'_>,
        at: Timestamp,
    ) -> Result<Merged, StoreError> {
        let NewFact { section, key, value, source } = *fact;
        let key = key.trim().to_lowercase();
        let new = serde_json::to_string(value).expect("a JSON value always serialises");
        let tx = self.conn.begin()?;
        if tx.dialect() == crate::db::Dialect::Postgres {
            // Read, compare, write: merges of one account take turns, as SQLite's writers do,
            // so two replicas never both log the same change.
            tx.row(
                "SELECT pg_advisory_xact_lock(hashtext(CAST(?1 AS text) || '/' || CAST(?2 AS text)))",
                &args![tenant.as_str(), account.as_str()],
                |_| Ok(()),
            )?;
        }
        let old: Option<String> = tx.row(
            "SELECT value FROM profile_facts WHERE tenant_id = ?1 AND account_id = ?2 AND section = ?3 AND fact_key = ?4",
            &args![tenant.as_str(), account.as_str(), section, key],
            |r| r.get(0),
        )?;
        let merged = match &old {
            Some(old) if *old == new => Merged::Unchanged,
            Some(_) => Merged::Changed,
            None => Merged::Added,
        };
        if merged != Merged::Unchanged {
            tx.execute(
                "INSERT INTO profile_facts (tenant_id, account_id, section, fact_key, value, source, first_seen, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (tenant_id, account_id, section, fact_key) DO UPDATE SET
                    value = excluded.value, source = excluded.source, updated_at = excluded.updated_at",
                &args![tenant.as_str(), account.as_str(), section, key, new, source, nanos(at)],
            )?;
            tx.execute(
                "INSERT INTO profile_changes (tenant_id, account_id, at, section, fact_key, old_value, new_value, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                &args![tenant.as_str(), account.as_str(), nanos(at), section, key, old, new, source],
            )?;
        }
        tx.commit()?;
        Ok(merged)
    }

    /// Every fact of an account's profile, by section and key.
    pub fn facts(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<Fact>, StoreError> {
        self.conn.rows(
            "SELECT section, fact_key, value, source, first_seen, updated_at FROM profile_facts
             WHERE tenant_id = ?1 AND account_id = ?2 ORDER BY section, fact_key",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                let key: String = r.get(1)?;
                Ok(Fact {
                    section: r.get(0)?,
                    value: json_value(&r.get::<String>(2)?, &key)?,
                    key,
                    source: r.get(3)?,
                    first_seen: from_nanos(r.get(4)?),
                    updated_at: from_nanos(r.get(5)?),
                })
            },
        )
    }

    /// The change log of an account's profile, oldest first.
    pub fn fact_changes(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<FactChange>, StoreError> {
        self.conn.rows(
            "SELECT at, section, fact_key, old_value, new_value, source FROM profile_changes
             WHERE tenant_id = ?1 AND account_id = ?2 ORDER BY id",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                let key: String = r.get(2)?;
                Ok(FactChange {
                    at: from_nanos(r.get(0)?),
                    section: r.get(1)?,
                    old: r.get::<Option<String>>(3)?.map(|v| json_value(&v, &key)).transpose()?,
                    new: json_value(&r.get::<String>(4)?, &key)?,
                    source: r.get(5)?,
                    key,
                })
            },
        )
    }

    /// Records an opportunity unless one with the same title exists, and in the same
    /// transaction queues `announce` (its event), so a surfaced opportunity is always
    /// announced. Returns whether it is new.
    pub fn surface_opportunity(
        &mut self,
        tenant: &TenantId,
        account: &AccountId,
        opportunity: &NewOpportunity<'_>,
        at: Timestamp,
        announce: &crate::NewEffect,
    ) -> Result<bool, StoreError> {
        let tx = self.conn.begin()?;
        let n = tx.execute(
            "INSERT INTO opportunities (tenant_id, account_id, opp_key, title, description, status, source, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 'surfaced', ?6, ?7, ?7)
             ON CONFLICT (tenant_id, account_id, opp_key) DO NOTHING",
            &args![
                tenant.as_str(),
                account.as_str(),
                opportunity.title.trim().to_lowercase(),
                opportunity.title.trim(),
                opportunity.description,
                opportunity.source,
                nanos(at)
            ],
        )?;
        if n == 1 {
            crate::outbox::insert_effects(&tx, tenant, at, [announce])?;
        }
        tx.commit()?;
        Ok(n == 1)
    }

    /// Moves an opportunity to `status`; returns whether it exists.
    pub fn set_opportunity_status(
        &mut self,
        tenant: &TenantId,
        account: &AccountId,
        title: &str,
        status: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE opportunities SET status = ?4, updated_at = ?5 WHERE tenant_id = ?1 AND account_id = ?2 AND opp_key = ?3",
            &args![tenant.as_str(), account.as_str(), title.trim().to_lowercase(), status, nanos(at)],
        )?;
        Ok(n == 1)
    }

    /// An account's opportunities, oldest first.
    pub fn opportunities(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<Opportunity>, StoreError> {
        self.conn.rows(
            "SELECT title, description, status, source, created_at FROM opportunities
             WHERE tenant_id = ?1 AND account_id = ?2 ORDER BY created_at, opp_key",
            &args![tenant.as_str(), account.as_str()],
            |r| {
                Ok(Opportunity {
                    title: r.get(0)?,
                    description: r.get(1)?,
                    status: r.get(2)?,
                    source: r.get(3)?,
                    created_at: from_nanos(r.get(4)?),
                })
            },
        )
    }

    /// Open feature-request tickets of a tenant created at or before `as_of`: `(account, ticket,
    /// subject)`. The raw material of opportunities.
    pub fn feature_requests(
        &self,
        tenant: &TenantId,
        as_of: Timestamp,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        self.conn.rows(
            "SELECT account_id, id, subject FROM tickets
             WHERE tenant_id = ?1 AND kind = 'feature_request' AND created_at <= ?2 AND status IN ('open', 'pending')
             ORDER BY account_id, created_at, id",
            &args![tenant.as_str(), nanos(as_of)],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }

    /// What a communication quotes from the profile.
    pub fn profile_facts(&self, tenant: &TenantId, account: &AccountId) -> Result<ProfileFacts, StoreError> {
        let mut facts = ProfileFacts::default();
        for f in self.facts(tenant, account)? {
            quote_fact(&mut facts, &f.section, f.key, &f.value);
        }
        facts.opportunities =
            self.opportunities(tenant, account)?.into_iter().filter(|o| o.status != "done").map(|o| o.title).collect();
        Ok(facts)
    }

    /// Heartbeats of an account up to `as_of`: `(count, largest API call count)`.
    pub fn heartbeat_totals(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        as_of: Timestamp,
    ) -> Result<(u64, u64), StoreError> {
        let (n, calls): (i64, Option<i64>) = self
            .conn
            .row(
                "SELECT COUNT(*), MAX(api_call_count) FROM heartbeats WHERE tenant_id = ?1 AND account_id = ?2 AND at <= ?3",
                &args![tenant.as_str(), account.as_str(), nanos(as_of)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .unwrap_or_default();
        Ok((n.unsigned_abs(), calls.unwrap_or(0).unsigned_abs()))
    }

    /// Tickets of an account about what it uses (feature requests are about what it does not):
    /// `(id, subject)`, for deriving adoption.
    pub fn ticket_subjects(&self, tenant: &TenantId, account: &AccountId) -> Result<Vec<(String, String)>, StoreError> {
        self.conn.rows(
            // Without statistics SQLite would walk the tenant's tickets by primary key to
            // avoid a sort; one account's tickets are few, so their index and a sort it is.
            "SELECT id, subject FROM tickets INDEXED BY tickets_by_account WHERE tenant_id = ?1 AND account_id = ?2
               AND COALESCE(kind, '') != 'feature_request' ORDER BY id",
            &args![tenant.as_str(), account.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// Tickets of an account by id, with their facts at `as_of` (for release notes).
    pub fn tickets_by_id(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        ids: &[String],
        as_of: Timestamp,
    ) -> Result<Vec<TicketFacts>, StoreError> {
        let mut out = Vec::new();
        for id in ids {
            let row = self.conn.row(
                "SELECT id, priority, status, subject, created_at FROM tickets WHERE tenant_id = ?1 AND account_id = ?2 AND id = ?3",
                &args![tenant.as_str(), account.as_str(), id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )?;
            if let Some(row) = row {
                out.push(ticket_facts(row, as_of)?);
            }
        }
        Ok(out)
    }

    /// What happened to an account in `(from, to]`: tickets opened and resolved, mean time to
    /// resolve, and its scores.
    pub fn period_stats(
        &self,
        tenant: &TenantId,
        account: &AccountId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<PeriodStats, StoreError> {
        let t = tenant.as_str();
        let a = account.as_str();
        let (from_at, to_at) = (nanos(from), nanos(to));
        let window = args![t, a, from_at, to_at];
        let opened: i64 = self
            .conn
            .row(
                "SELECT COUNT(*) FROM tickets WHERE tenant_id = ?1 AND account_id = ?2 AND created_at > ?3 AND created_at <= ?4",
                &window,
                |r| r.get(0),
            )?
            .unwrap_or_default();
        let mut resolved = Vec::new();
        let mut hours = Vec::new();
        self.conn.each(
            "SELECT id, priority, status, subject, created_at, updated_at FROM tickets INDEXED BY tickets_by_account
             WHERE tenant_id = ?1 AND account_id = ?2 AND status IN ('resolved', 'closed')
               AND updated_at > ?3 AND updated_at <= ?4
             ORDER BY updated_at, id",
            &window,
            |r| {
                let created: i64 = r.get(4)?;
                let updated: i64 = r.get(5)?;
                hours.push((updated - created) as f64 / 3.6e12);
                let mut facts =
                    ticket_facts((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, created), from_nanos(updated))?;
                facts.age_hours = (hours[hours.len() - 1] * 10.0).round() / 10.0;
                resolved.push(facts);
                Ok(())
            },
        )?;
        let mean = (!hours.is_empty()).then(|| (hours.iter().sum::<f64>() / hours.len() as f64 * 10.0).round() / 10.0);
        let history = self.conn.rows(
            "SELECT as_of, score FROM snapshots WHERE tenant_id = ?1 AND account_id = ?2 AND as_of > ?3 AND as_of <= ?4 ORDER BY as_of",
            &window,
            |r| Ok(ScorePoint { as_of: from_nanos(r.get(0)?), score: u8::try_from(r.get::<i64>(1)?).unwrap_or(0) }),
        )?;
        Ok(PeriodStats {
            from,
            to,
            opened: u32::try_from(opened).unwrap_or(u32::MAX),
            resolved,
            mean_hours_to_resolve: mean,
            history,
        })
    }
}

/// Adds one profile fact to what communications quote: features in use, active integrations.
fn quote_fact(facts: &mut ProfileFacts, section: &str, key: String, value: &serde_json::Value) {
    let flag = |name: &str| value.get(name).and_then(serde_json::Value::as_bool).unwrap_or(true);
    match section {
        "features" if flag("in_use") => facts.features.push(key),
        "integrations" if flag("active") => facts.integrations.push(key),
        _ => {}
    }
}

/// A ticket row `(id, priority, status, subject, created_at)` as communications quote it,
/// its age taken at `at`.
pub(crate) fn ticket_facts(row: (String, i64, String, String, i64), at: Timestamp) -> Result<TicketFacts, StoreError> {
    let (id, level, status, subject, created) = row;
    let corrupt =
        |field: &'static str, reason: String| StoreError::Corrupt { table: "tickets", key: id.clone(), field, reason };
    Ok(TicketFacts {
        id: TicketId::parse("id", &id).map_err(|e| corrupt("id", e.reason))?,
        priority: u8::try_from(level)
            .ok()
            .and_then(Priority::from_level)
            .ok_or_else(|| corrupt("priority", format!("{level} is not 1..=4")))?,
        status: TicketStatus::parse(&status).map_err(|e| corrupt("status", e.reason))?,
        subject,
        age_hours: (at.duration_since(from_nanos(created)).as_secs_f64() / 360.0).round() / 10.0,
    })
}
