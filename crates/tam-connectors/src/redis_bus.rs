//! The event bus on Redis Streams (SPEC 8): one stream per tenant and kind
//! (`tam:<tenant>:escalations`, `tam:<tenant>:opportunities`), trimmed approximately, read by
//! consumer groups that acknowledge what they processed and reclaim what a dead consumer left.
//!
//! **Invariant:** a bus belongs to one tenant and refuses another tenant's event.
//! Publishing is at least once (the outbox may repeat an event after a crash); consumers
//! deduplicate by `event_id`.

use std::collections::HashSet;
use std::time::Duration;

use tam_core::comms::Event;
use tam_core::outbox::Outcome;
use tam_core::ports::EventBus;
use tam_core::{TenantId, Timestamp};

use crate::resp::{Connection, Reply, RespError};

const TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::resp::redacted as redacted_url;

/// The stream key of a tenant's stream.
pub fn stream_key(tenant: &TenantId, stream: &str) -> String {
    format!("tam:{tenant}:{stream}")
}

/// Publishes one tenant's events.
pub struct RedisBus {
    url: String,
    tenant: TenantId,
    maxlen: u64,
    conn: Option<Connection>,
}

impl RedisBus {
    /// A bus for `tenant` at `url`; connects on first use (and again after a broken connection).
    pub fn new(url: &str, tenant: TenantId, maxlen: u64) -> RedisBus {
        RedisBus { url: url.to_owned(), tenant, maxlen, conn: None }
    }

    fn connection(&mut self) -> Result<&mut Connection, RespError> {
        if self.conn.is_none() {
            self.conn = Some(Connection::open(&self.url, TIMEOUT)?);
        }
        Ok(self.conn.as_mut().expect("connected just above"))
    }

    /// `PING`, for `tam doctor`.
    pub fn ping(&mut self) -> Result<(), RespError> {
        self.connection()?.cmd(&["PING"]).map(|_| ())
    }

    /// The tenant's `stream`, oldest first: every entry, or the latest `limit`. Reading changes
    /// nothing (no consumer group), so it is what `tam events tail` shows.
    pub fn tail(&mut self, stream: &str, limit: Option<usize>) -> Result<Vec<Entry>, RespError> {
        let key = stream_key(&self.tenant, stream);
        let conn = self.connection()?;
        Ok(match limit {
            Some(n) => {
                // The latest `n`, newest first as XREVRANGE reads them, then put in order.
                let count = n.max(1).to_string();
                let newest = conn.cmd(&["XREVRANGE", &key, "+", "-", "COUNT", &count])?;
                newest.items().iter().rev().filter_map(parse_entry).collect()
            }
            None => conn.cmd(&["XRANGE", &key, "-", "+"])?.items().iter().filter_map(parse_entry).collect(),
        })
    }
}

/// Errors a Redis server recovers from by itself.
fn transient(message: &str) -> bool {
    ["LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "OOM", "CLUSTERDOWN"].iter().any(|p| message.starts_with(p))
}

impl EventBus for RedisBus {
    fn publish(&mut self, event: &Event) -> Outcome {
        if event.tenant_id != self.tenant {
            return Outcome::Rejected {
                reason: format!(
                    "event of tenant {:?} refused by the bus of tenant {:?}",
                    event.tenant_id.as_str(),
                    self.tenant.as_str()
                ),
            };
        }
        let key = stream_key(&self.tenant, event.stream());
        let maxlen = self.maxlen.to_string();
        let chain = serde_json::to_string(&event.call_chain).expect("a list of strings always serialises");
        let data = event.data.to_string();
        let created = event.created_at.to_string();
        let args: [&str; 22] = [
            "XADD",
            &key,
            "MAXLEN",
            "~",
            &maxlen,
            "*",
            "event_id",
            &event.event_id,
            "event_type",
            &event.event_type,
            "tenant_id",
            event.tenant_id.as_str(),
            "source_agent_id",
            &event.source_agent_id,
            "call_chain",
            &chain,
            "priority",
            &event.priority,
            "data",
            &data,
            "created_at",
            &created,
        ];
        let result = self.connection().and_then(|c| c.cmd(&args));
        match result {
            Ok(reply) => Outcome::Delivered { receipt: format!("{key}#{}", reply.text().unwrap_or_default()) },
            Err(RespError::Server(m)) if !transient(&m) => {
                Outcome::Rejected { reason: format!("redis refused the event: {m}") }
            }
            Err(e) => {
                // The connection may be half-broken: start a new one next time.
                self.conn = None;
                Outcome::Retry { reason: e.to_string(), after: None }
            }
        }
    }
}

/// One delivered entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The stream entry id (what is acknowledged).
    pub id: String,
    /// The event.
    pub event: Event,
}

/// A member of a consumer group reading one tenant's stream.
pub struct Consumer {
    conn: Connection,
    key: String,
    group: String,
    name: String,
    min_idle: Duration,
    seen: HashSet<String>,
}

fn field(fields: &[Reply], name: &str) -> Option<String> {
    fields.chunks(2).find(|kv| kv[0].text().as_deref() == Some(name)).and_then(|kv| kv.get(1)).and_then(Reply::text)
}

fn parse_entry(entry: &Reply) -> Option<Entry> {
    let [id, fields] = entry.items() else { return None };
    let fields = fields.items();
    let event = Event {
        event_id: field(fields, "event_id")?,
        event_type: field(fields, "event_type")?,
        tenant_id: TenantId::parse("tenant_id", &field(fields, "tenant_id")?).ok()?,
        source_agent_id: field(fields, "source_agent_id")?,
        call_chain: serde_json::from_str(&field(fields, "call_chain")?).ok()?,
        priority: field(fields, "priority")?,
        data: serde_json::from_str(&field(fields, "data")?).ok()?,
        created_at: field(fields, "created_at")?.parse::<Timestamp>().ok()?,
    };
    Some(Entry { id: id.text()?, event })
}

impl Consumer {
    /// Joins (creating if needed) `group` on the tenant's `stream` as `name`. Entries another
    /// member left unacknowledged for `min_idle` are reclaimed by this one.
    pub fn open(
        url: &str,
        tenant: &TenantId,
        stream: &str,
        group: &str,
        name: &str,
        min_idle: Duration,
    ) -> Result<Consumer, RespError> {
        let mut conn = Connection::open(url, TIMEOUT)?;
        let key = stream_key(tenant, stream);
        match conn.cmd(&["XGROUP", "CREATE", &key, group, "0", "MKSTREAM"]) {
            Ok(_) => {}
            Err(RespError::Server(m)) if m.starts_with("BUSYGROUP") => {}
            Err(e) => return Err(e),
        }
        Ok(Consumer { conn, key, group: group.to_owned(), name: name.to_owned(), min_idle, seen: HashSet::new() })
    }

    /// The next entries for this member: first any reclaimed from dead members, then new ones
    /// (waiting up to `block` for them). Events already seen by this member (same `event_id`)
    /// are acknowledged and skipped.
    pub fn next(&mut self, count: usize, block: Duration) -> Result<Vec<Entry>, RespError> {
        let count_s = count.max(1).to_string();
        let idle = self.min_idle.as_millis().to_string();
        let claimed =
            self.conn.cmd(&["XAUTOCLAIM", &self.key, &self.group, &self.name, &idle, "0-0", "COUNT", &count_s])?;
        let mut entries: Vec<Entry> =
            claimed.items().get(1).map_or(&[][..], Reply::items).iter().filter_map(parse_entry).collect();
        if entries.is_empty() {
            let block_s = block.as_millis().to_string();
            let read = self.conn.cmd(&[
                "XREADGROUP",
                "GROUP",
                &self.group,
                &self.name,
                "COUNT",
                &count_s,
                "BLOCK",
                &block_s,
                "STREAMS",
                &self.key,
                ">",
            ])?;
            for stream in read.items() {
                if let Some(list) = stream.items().get(1) {
                    entries.extend(list.items().iter().filter_map(parse_entry));
                }
            }
        }
        let mut fresh = Vec::with_capacity(entries.len());
        for e in entries {
            if self.seen.insert(e.event.event_id.clone()) {
                fresh.push(e);
            } else {
                self.ack(&e.id)?;
            }
        }
        Ok(fresh)
    }

    /// Acknowledges an entry: it leaves the group's pending list.
    pub fn ack(&mut self, id: &str) -> Result<(), RespError> {
        self.conn.cmd(&["XACK", &self.key, &self.group, id]).map(|_| ())
    }

    /// Entries delivered to the group and not yet acknowledged.
    pub fn pending(&mut self) -> Result<u64, RespError> {
        let reply = self.conn.cmd(&["XPENDING", &self.key, &self.group])?;
        Ok(match reply.items().first() {
            Some(Reply::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        })
    }

    /// The stream's length.
    pub fn stream_len(&mut self) -> Result<u64, RespError> {
        match self.conn.cmd(&["XLEN", &self.key])? {
            Reply::Int(n) => Ok(u64::try_from(n).unwrap_or(0)),
            other => Err(RespError::Protocol(format!("XLEN answered {other:?}"))),
        }
    }
}
