//! `tam outbox`, `tam drafts`, `tam events`: what the scans asked for and what was delivered.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};
use tam_core::{AccountId, TenantId};
use tam_store::OutboxState;

use crate::Outcome;
use crate::cli::scan::select_tenants;
use crate::home::Home;

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// The outbox: every intended effect and where it stands.
    List {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Only effects in this state.
        #[arg(long, value_parser = ["pending", "in_flight", "delivered", "failed"])]
        status: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revive failed effects and deliver everything due now.
    Retry {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
    },
    /// Pending, in-flight, delivered and failed effects by channel.
    Status {
        /// The tenant (required when the home has several).
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Deliver everything due now, then exit: what `tam serve` does each tick. Any number may
    /// run at once on a shared store; each effect is delivered by one of them.
    Deliver {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(home: &Home, command: OutboxCommand) -> Result<Outcome> {
    let (mut store, config) = home.open()?;
    let mut out = std::io::stdout().lock();
    match command {
        OutboxCommand::List { tenant, status, json } => {
            let state = status.as_deref().and_then(OutboxState::parse);
            let mut rows = Vec::new();
            for t in select_tenants(&store, tenant.as_deref())? {
                rows.extend(store.outbox(&t, state)?);
            }
            if json {
                let items: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "id": r.id, "tenant_id": r.tenant.as_str(), "idem_key": r.key.as_str(), "effect": r.kind.as_str(),
                            "account_id": r.account, "status": r.state.as_str(), "attempts": r.attempts,
                            "next_attempt_at": r.next_attempt_at, "last_error": r.last_error, "receipt": r.receipt,
                            "created_at": r.created_at, "delivered_at": r.delivered_at,
                        })
                    })
                    .collect();
                writeln!(out, "{}", serde_json::Value::Array(items))?;
            } else {
                writeln!(
                    out,
                    "{:>6}  {:<10}  {:<11}  {:<9}  {:>3}  KEY / RECEIPT OR ERROR",
                    "ID", "TENANT", "EFFECT", "STATUS", "TRY"
                )?;
                for r in &rows {
                    let detail = r.receipt.as_deref().or(r.last_error.as_deref()).unwrap_or("");
                    writeln!(
                        out,
                        "{:>6}  {:<10}  {:<11}  {:<9}  {:>3}  {}  {detail}",
                        r.id,
                        r.tenant.as_str(),
                        r.kind,
                        r.state.as_str(),
                        r.attempts,
                        r.key
                    )?;
                }
                writeln!(out, "{} effect(s)", rows.len())?;
            }
            Ok(Outcome::Done)
        }
        OutboxCommand::Retry { tenant } => {
            let mut channels = crate::clients::open(home, &config)?;
            let mut failed = 0;
            for t in select_tenants(&store, tenant.as_deref())? {
                let revived = store.revive_failed(&t, tam_core::Timestamp::now())?;
                let report = channels.dispatch(&mut store, &t, &config.rules)?;
                failed += report.failed;
                writeln!(
                    out,
                    "tenant {t}: revived {revived} failed effect(s); delivered {}, will retry {}, failed {}",
                    report.delivered, report.retried, report.failed
                )?;
            }
            Ok(if failed > 0 { Outcome::Partial } else { Outcome::Done })
        }
        OutboxCommand::Status { tenant, json } => {
            let tenant = crate::cli::scan::one_tenant(&store, tenant.as_deref())?;
            let view = tam_app::views::outbox_status(&store, &tenant)?;
            if json {
                writeln!(out, "{}", serde_json::to_string(&view)?)?;
                return Ok(Outcome::Done);
            }
            writeln!(
                out,
                "{:<12}  {:>8}  {:>9}  {:>9}  {:>6}",
                "CHANNEL", "PENDING", "IN FLIGHT", "DELIVERED", "FAILED"
            )?;
            for c in &view.channels {
                writeln!(
                    out,
                    "{:<12}  {:>8}  {:>9}  {:>9}  {:>6}",
                    c.channel, c.pending, c.in_flight, c.delivered, c.failed
                )?;
            }
            Ok(Outcome::Done)
        }
        OutboxCommand::Deliver { tenant, json } => {
            let mut channels = crate::clients::open(home, &config)?;
            let mut reports = Vec::new();
            for t in select_tenants(&store, tenant.as_deref())? {
                let r = channels.dispatch(&mut store, &t, &config.rules)?;
                if !json {
                    writeln!(
                        out,
                        "tenant {t}: delivered {}, will retry {}, failed {}, deferred {}",
                        r.delivered, r.retried, r.failed, r.deferred
                    )?;
                }
                reports.push(json!({
                    "tenant_id": t.as_str(), "delivered": r.delivered, "retried": r.retried, "failed": r.failed,
                    "deferred": r.deferred, "lost_leases": r.lost_leases,
                }));
            }
            if json {
                writeln!(out, "{}", Value::Array(reports))?;
            }
            Ok(Outcome::Done)
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum DraftsCommand {
    /// Drafts saved for reps to review (never sent).
    List {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Only this account's (needs the tenant when the id exists in several).
        #[arg(long, value_name = "ACCOUNT")]
        account: Option<String>,
        /// Only this kind (`escalation_outreach`, `health_checkin`, ...).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
        /// At most this many, newest first.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        limit: Option<u32>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Learns what became of each draft saved in a rep's Gmail in the last 30 days: still a
    /// draft, sent as written, sent edited, deleted (`tam serve` does it every hour).
    Sync {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn drafts(home: &Home, command: DraftsCommand) -> Result<Outcome> {
    let (tenant, account, kind, limit, json) = match command {
        DraftsCommand::List { tenant, account, kind, limit, json } => (tenant, account, kind, limit, json),
        DraftsCommand::Sync { tenant, json } => return sync_fates(home, tenant.as_deref(), json),
    };
    let (store, _) = home.open()?;
    let limit = limit.map(|n| n as usize);
    let rows = match (account, tenant) {
        (Some(account), tenant) => {
            let account = AccountId::parse("account", &account).map_err(|e| anyhow::anyhow!("--account: {e}"))?;
            let tenant = crate::cli::explain::resolve_tenant(&store, &account, tenant.as_deref())?;
            tam_app::views::drafts(&store, &tenant, Some(&account), kind.as_deref(), limit)?.drafts
        }
        (None, Some(tenant)) => {
            let tenant = crate::cli::scan::select_tenants(&store, Some(&tenant))?.remove(0);
            tam_app::views::drafts(&store, &tenant, None, kind.as_deref(), limit)?.drafts
        }
        // Every tenant's, newest first as the store lists them.
        (None, None) => {
            if let Some(kind) = &kind {
                tam_core::comms::CommKind::parse(kind).map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
            }
            let mut rows: Vec<_> =
                store.drafts(None)?.into_iter().filter(|d| kind.as_ref().is_none_or(|k| *k == d.kind)).collect();
            rows.truncate(limit.unwrap_or(usize::MAX));
            rows
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&rows)?)?;
    } else {
        for d in &rows {
            writeln!(
                out,
                "{}  {}  {}  {}  to {}",
                d.created_at,
                d.tenant_id,
                d.account_id,
                d.subject,
                d.recipients.join(", ")
            )?;
            writeln!(out, "    {}", d.path)?;
        }
        writeln!(out, "{} draft(s)", rows.len())?;
    }
    Ok(Outcome::Done)
}

/// `tam drafts sync`: each tenant's watched drafts looked at in their reps' Gmail.
fn sync_fates(home: &Home, tenant: Option<&str>, json: bool) -> Result<Outcome> {
    let (mut store, config) = home.open()?;
    let clients = crate::clients::Clients::open(&config)?;
    let Some(mailbox) = clients.draft_fates(&config) else {
        // Nothing to look at is not a failure: the report counts these drafts as unknown.
        let note = "[mail] kind = \"local\" saves drafts as .eml files: what becomes of them cannot be known \
                    (`tam report drafts` counts them as unknown); with [mail] kind = \"gmail\", tam reads it \
                    from the reps' mailboxes";
        let mut out = std::io::stdout().lock();
        if json {
            writeln!(out, "{}", serde_json::json!({"looked": 0, "note": note}))?;
        } else {
            writeln!(out, "{note}")?;
        }
        return Ok(Outcome::Done);
    };
    let tenants = crate::cli::scan::select_tenants(&store, tenant)?;
    let mut reports = Vec::with_capacity(tenants.len());
    for tenant in &tenants {
        reports.push(tam_app::fates::sync(&mut store, tenant, &mailbox, tam_app::now(), &tam_core::concurrent::never)?);
    }
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&reports)?)?;
    } else {
        for r in &reports {
            writeln!(out, "{}: {}", r.tenant_id, r.summary())?;
        }
    }
    Ok(if reports.iter().any(|r| r.failed > 0) { Outcome::Partial } else { Outcome::Done })
}

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// A stream's events, oldest first: all of them, or the latest `--limit`.
    Tail {
        /// Only this tenant.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Which stream.
        #[arg(long, default_value = "escalations", value_parser = ["escalations", "opportunities"])]
        stream: String,
        /// Events after this position.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// Only the latest this many events.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// One JSON event per line.
        #[arg(long)]
        json: bool,
    },
    /// Read a tenant's Redis stream as a member of a consumer group (the Sales Agent's side):
    /// print each event as a JSON line, then acknowledge it. Entries a dead member left
    /// unacknowledged are reclaimed; a repeated event id is skipped.
    Consume {
        /// The consumer group.
        #[arg(long, value_name = "NAME")]
        group: String,
        /// This member's name in the group.
        #[arg(long, value_name = "NAME", default_value = "tam-cli")]
        consumer: String,
        /// The tenant whose stream to read.
        #[arg(long, value_name = "TENANT")]
        tenant: String,
        /// Which stream.
        #[arg(long, default_value = "escalations", value_parser = ["escalations", "opportunities"])]
        stream: String,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        max: Option<usize>,
        /// Stop when nothing arrives for this long.
        #[arg(long, default_value_t = 1_000, value_name = "MS")]
        idle_ms: u64,
        /// Reclaim entries another member left unacknowledged this long.
        #[arg(long, default_value_t = 60_000, value_name = "MS")]
        min_idle_ms: u64,
    },
}

pub fn events(home: &Home, command: EventsCommand) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let (tenant, stream, after, limit, json) = match command {
        EventsCommand::Tail { tenant, stream, after, limit, json } => (tenant, stream, after, limit, json),
        EventsCommand::Consume { group, consumer, tenant, stream, max, idle_ms, min_idle_ms } => {
            if config.event_bus.kind != crate::config::EventBusKind::Redis {
                bail!(
                    "tam events consume reads Redis Streams; set [event_bus] kind = \"redis\" (the local bus is read with tam events tail)"
                );
            }
            let tenant = TenantId::parse("tenant", &tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
            let idle = std::time::Duration::from_millis(min_idle_ms);
            let mut member = tam_connectors::redis_bus::Consumer::open(
                &config.event_bus.redis_url,
                &tenant,
                &stream,
                &group,
                &consumer,
                idle,
            )?;
            let mut out = std::io::stdout().lock();
            let mut seen = 0usize;
            loop {
                let room = max.map_or(100, |m| m.saturating_sub(seen).min(100));
                if room == 0 {
                    break;
                }
                let batch = member.next(room, std::time::Duration::from_millis(idle_ms))?;
                if batch.is_empty() {
                    break;
                }
                for entry in batch {
                    let mut value = serde_json::to_value(&entry.event)?;
                    value["stream"] = json!(stream);
                    value["entry_id"] = json!(entry.id);
                    writeln!(out, "{value}")?;
                    out.flush()?;
                    // Acknowledged only once it is out: a crash before this line leaves it pending
                    // for another member to reclaim.
                    member.ack(&entry.id)?;
                    seen += 1;
                }
            }
            return Ok(Outcome::Done);
        }
    };
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    let mut out = std::io::stdout().lock();
    // One line per event, as stored: `field` names its position (a local bus's number, or a
    // Redis stream entry id), `shown` is that position as the text listing starts it.
    let mut print = |field: &str, position: Value, shown: String, event: &tam_core::comms::Event| -> Result<()> {
        if json {
            let mut value = serde_json::to_value(event)?;
            value["stream"] = json!(stream);
            value[field] = position;
            writeln!(out, "{value}")?;
        } else {
            writeln!(
                out,
                "{shown}  {}  {}  {}  {}  {}",
                event.created_at, event.tenant_id, event.event_type, event.priority, event.data
            )?;
        }
        Ok(())
    };
    if config.event_bus.kind == crate::config::EventBusKind::Redis {
        // The events went to Redis Streams: read them there (positions are stream entry ids).
        if after != 0 {
            bail!("--after takes a position of the local bus; with Redis, use --limit or tam events consume");
        }
        for t in select_tenants(&store, tenant.as_deref())? {
            let mut bus = tam_connectors::redis_bus::RedisBus::new(&config.event_bus.redis_url, t.clone(), 0);
            for entry in bus.tail(&stream, limit)? {
                print("entry_id", json!(entry.id), entry.id.clone(), &entry.event)?;
            }
        }
        return Ok(Outcome::Done);
    }
    for t in select_tenants(&store, tenant.as_deref())? {
        for (position, event) in store.events(&t, &stream, after, limit)? {
            print("position", json!(position), format!("{position:>6}"), &event)?;
        }
    }
    Ok(Outcome::Done)
}
