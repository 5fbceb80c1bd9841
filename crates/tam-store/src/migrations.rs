//! Versioned schema migrations, tracked in SQLite's `user_version`.
//!
//! Append only: a released migration is never edited; a change is a new entry.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: tenants, accounts, tickets, heartbeats, snapshots, episodes, scans.
    r#"
    CREATE TABLE tenants (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        time_zone   TEXT NOT NULL DEFAULT 'UTC',
        created_at  INTEGER NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE accounts (
        tenant_id               TEXT NOT NULL REFERENCES tenants (id),
        id                      TEXT NOT NULL,
        name                    TEXT NOT NULL,
        rep_name                TEXT NOT NULL,
        rep_email               TEXT NOT NULL,
        rep_chat_space          TEXT,
        contacts                TEXT NOT NULL,   -- JSON array of addresses
        last_heartbeat          INTEGER,
        api_call_count          INTEGER,
        check_in_interval_days  INTEGER NOT NULL,
        health_score            INTEGER,
        health_status           TEXT,
        last_scan               INTEGER,
        PRIMARY KEY (tenant_id, id)
    ) WITHOUT ROWID;

    CREATE TABLE tickets (
        tenant_id   TEXT NOT NULL,
        id          TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        source      TEXT NOT NULL,
        priority    INTEGER NOT NULL,            -- 1..4 for P1..P4
        status      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER,
        subject     TEXT NOT NULL,
        kind        TEXT,
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
    ) WITHOUT ROWID;

    -- The scan reads only open tickets, account by account: a partial, covering index.
    CREATE INDEX tickets_open_by_account ON tickets (tenant_id, account_id, created_at, priority, status)
        WHERE status IN ('open', 'pending');

    CREATE TABLE heartbeats (
        tenant_id       TEXT NOT NULL,
        account_id      TEXT NOT NULL,
        at              INTEGER NOT NULL,
        api_call_count  INTEGER,
        PRIMARY KEY (tenant_id, account_id, at),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
    ) WITHOUT ROWID;

    -- One row per account per scan instant; a re-run for the same as_of replaces it.
    -- The episode columns carry the escalation state after this scan to the next one.
    CREATE TABLE snapshots (
        tenant_id               TEXT NOT NULL,
        account_id              TEXT NOT NULL,
        as_of                   INTEGER NOT NULL,
        score                   INTEGER NOT NULL,
        status                  TEXT NOT NULL,
        trend                   TEXT NOT NULL,
        deductions              TEXT NOT NULL,   -- JSON, the breakdown with evidence
        trigger                 TEXT,
        alert_cause             TEXT,
        delivery                TEXT,
        episode_opened_at       INTEGER,
        episode_reason          TEXT,
        episode_last_alert_at   INTEGER,
        episode_last_alert_score INTEGER,
        episode_last_alert_status TEXT,
        PRIMARY KEY (tenant_id, account_id, as_of)
    ) WITHOUT ROWID;

    CREATE TABLE episodes (
        tenant_id           TEXT NOT NULL,
        account_id          TEXT NOT NULL,
        opened_at           INTEGER NOT NULL,
        reason              TEXT NOT NULL,
        last_alert_at       INTEGER NOT NULL,
        last_alert_score    INTEGER NOT NULL,
        last_alert_status   TEXT NOT NULL,
        closed_at           INTEGER,
        PRIMARY KEY (tenant_id, account_id, opened_at)
    ) WITHOUT ROWID;

    CREATE TABLE scans (
        tenant_id   TEXT NOT NULL,
        as_of       INTEGER NOT NULL,
        summary     TEXT NOT NULL,               -- JSON
        PRIMARY KEY (tenant_id, as_of)
    ) WITHOUT ROWID;
    "#,
    // 2: the outbox and the embedded channels (drafts, notification log, event streams, CRM flag).
    r#"
    CREATE TABLE outbox (
        id              INTEGER PRIMARY KEY,
        tenant_id       TEXT NOT NULL,
        idem_key        TEXT NOT NULL,
        effect          TEXT NOT NULL,
        account_id      TEXT,
        payload         TEXT NOT NULL,           -- JSON, what the channel needs
        state           TEXT NOT NULL DEFAULT 'pending',  -- pending | in_flight | delivered | failed
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        lease_owner     TEXT,
        lease_until     INTEGER,
        last_error      TEXT,
        receipt         TEXT,
        created_at      INTEGER NOT NULL,
        delivered_at    INTEGER,
        UNIQUE (tenant_id, idem_key)
    );
    CREATE INDEX outbox_due ON outbox (tenant_id, state, next_attempt_at);

    -- Every finished attempt, never overwritten: `tam outbox retry` gives a row a fresh budget
    -- (its attempt count restarts) but keeps this history.
    CREATE TABLE outbox_attempts (
        id          INTEGER PRIMARY KEY,
        outbox_id   INTEGER NOT NULL REFERENCES outbox (id),
        attempt     INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        outcome     TEXT NOT NULL,               -- delivered | retry | failed
        detail      TEXT
    );
    CREATE INDEX outbox_attempts_by_row ON outbox_attempts (outbox_id, id);

    CREATE TABLE drafts (
        tenant_id   TEXT NOT NULL,
        idem_key    TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        subject     TEXT NOT NULL,
        recipients  TEXT NOT NULL,               -- JSON array
        rep_email   TEXT NOT NULL,
        path        TEXT NOT NULL,
        message_id  TEXT NOT NULL,
        generator   TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, idem_key)
    ) WITHOUT ROWID;

    CREATE TABLE notifications (
        tenant_id   TEXT NOT NULL,
        idem_key    TEXT NOT NULL,
        channel     TEXT NOT NULL,               -- email | chat
        rep_email   TEXT NOT NULL,
        kind        TEXT NOT NULL,               -- individual | digest
        subject     TEXT NOT NULL,
        body        TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, idem_key)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,         -- the stream position
        tenant_id   TEXT NOT NULL,
        stream      TEXT NOT NULL,
        event_id    TEXT NOT NULL,
        event       TEXT NOT NULL,               -- JSON, the SPEC 8 shape
        UNIQUE (tenant_id, event_id)
    );
    CREATE INDEX events_by_stream ON events (tenant_id, stream, id);

    ALTER TABLE accounts ADD COLUMN escalated INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accounts ADD COLUMN crm_updated_at INTEGER;
    "#,
    // 3: technical relationship profiles and co-development opportunities.
    r#"
    -- One row per fact, keyed by its natural key (lower-cased); `value` is the fact as JSON.
    -- A changed value is updated in place and the old one kept in profile_changes.
    CREATE TABLE profile_facts (
        tenant_id   TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        section     TEXT NOT NULL,               -- stakeholders | integrations | features | environment
        fact_key    TEXT NOT NULL,
        value       TEXT NOT NULL,
        source      TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, account_id, section, fact_key)
    ) WITHOUT ROWID;

    CREATE TABLE profile_changes (
        id          INTEGER PRIMARY KEY,
        tenant_id   TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        at          INTEGER NOT NULL,
        section     TEXT NOT NULL,
        fact_key    TEXT NOT NULL,
        old_value   TEXT,
        new_value   TEXT NOT NULL,
        source      TEXT NOT NULL
    );
    CREATE INDEX profile_changes_by_account ON profile_changes (tenant_id, account_id, id);

    CREATE TABLE opportunities (
        tenant_id   TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        opp_key     TEXT NOT NULL,               -- lower-cased title
        title       TEXT NOT NULL,
        description TEXT NOT NULL,
        status      TEXT NOT NULL,               -- surfaced | discussed | in_progress
        source      TEXT NOT NULL,               -- ticket:<id> or profile
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, account_id, opp_key)
    ) WITHOUT ROWID;
    "#,
    // 4: which writer wrote a draft and how sure it was; every model call, for usage accounting.
    r#"
    ALTER TABLE drafts ADD COLUMN confidence TEXT NOT NULL DEFAULT 'medium';
    ALTER TABLE drafts ADD COLUMN note TEXT;

    CREATE TABLE model_calls (
        id              INTEGER PRIMARY KEY,
        tenant_id       TEXT NOT NULL,
        idem_key        TEXT NOT NULL,           -- the draft effect the call was for
        at              INTEGER NOT NULL,
        provider        TEXT NOT NULL,
        model           TEXT NOT NULL,
        latency_ms      INTEGER NOT NULL,
        input_tokens    INTEGER,
        output_tokens   INTEGER,
        outcome         TEXT NOT NULL
    );
    CREATE INDEX model_calls_by_key ON model_calls (tenant_id, idem_key, id);
    "#,
    // 5: how far each ticket or CRM source has been synced, per tenant.
    r#"
    CREATE TABLE sync_state (
        tenant_id   TEXT NOT NULL,
        source      TEXT NOT NULL,               -- notion:accounts, notion:tickets, jira, ...
        watermark   INTEGER NOT NULL,            -- the start of the last successful sync
        PRIMARY KEY (tenant_id, source)
    ) WITHOUT ROWID;
    "#,
    // 6: webhook deliveries seen, so a delivery retried by its sender is processed once.
    r#"
    CREATE TABLE webhook_deliveries (
        tenant_id   TEXT NOT NULL,
        source      TEXT NOT NULL,               -- jira, release
        delivery_id TEXT NOT NULL,               -- the sender's id, the same across its retries
        received_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, source, delivery_id)
    ) WITHOUT ROWID;
    "#,
    // 7: scheduled job runs, one row per (tenant, job, slot): inserting it is the claim, so
    // of several `tam serve` processes on one store exactly one runs a slot.
    r#"
    CREATE TABLE job_runs (
        tenant_id   TEXT NOT NULL,
        job         TEXT NOT NULL,               -- scan, checkins, reviews, sync:jira, ...
        slot        INTEGER NOT NULL,            -- the scheduled instant
        outcome     TEXT NOT NULL,               -- running | ok | failed | missed
        worker      TEXT,
        started_at  INTEGER,
        finished_at INTEGER,
        detail      TEXT,
        PRIMARY KEY (tenant_id, job, slot)
    ) WITHOUT ROWID;
    "#,
    // 8: customer contacts copied on drafts.
    r#"
    ALTER TABLE accounts ADD COLUMN cc_contacts TEXT NOT NULL DEFAULT '[]';  -- JSON array
    "#,
    // 9: indexes for what the dispatcher reads per effect, so delivering one costs the same
    // whatever the size of the book.
    r#"
    -- A claim takes due rows drafts first, then oldest first. This index holds only unfinished
    -- rows, in exactly that order, so a claim reads its batch and stops; the index it replaces
    -- held every row and left the claim to sort all the due ones for each batch.
    DROP INDEX outbox_due;
    CREATE INDEX outbox_due ON outbox (tenant_id, effect != 'draft', next_attempt_at, id)
        WHERE state IN ('pending', 'in_flight');
    CREATE INDEX outbox_failed ON outbox (tenant_id, id) WHERE state = 'failed';
    -- An account's drafts: its profile's communication history, the outreach a follow-up replies to.
    CREATE INDEX outbox_drafts_by_account ON outbox (tenant_id, account_id, id) WHERE effect = 'draft';
    -- Every ticket of one account (reviews, check-ins, adoption), not only the open ones.
    CREATE INDEX tickets_by_account ON tickets (tenant_id, account_id, created_at);
    -- Feature requests, which each scan turns into opportunities: few, so a small index.
    CREATE INDEX tickets_feature_requests ON tickets (tenant_id, account_id, created_at)
        WHERE kind = 'feature_request';
    "#,
    // 10: a running job's worker renews its claim; another replica takes over a run whose
    // worker stopped renewing.
    r#"
    ALTER TABLE job_runs ADD COLUMN renewed_at INTEGER;
    -- Each tick looks for stalled runs: the few running ones, not a year of history.
    CREATE INDEX job_runs_running ON job_runs (tenant_id) WHERE outcome = 'running';
    "#,
    // 11: the dashboard's worklist: of one scan's snapshots, only those a TAM acts on (escalated
    // now, in an episode, or amber and declining), in the worklist's order (escalated by this
    // scan, then in an episode, then the rest; by score), so a page reads its rows and stops.
    // The worklist's queries repeat the condition and the order word for word.
    r#"
    CREATE INDEX snapshots_worklist ON snapshots (tenant_id, as_of,
            (CASE WHEN trigger IS NOT NULL THEN 0 WHEN episode_opened_at IS NOT NULL THEN 1 ELSE 2 END),
            score, account_id, status, episode_opened_at, trigger, trend)
        WHERE trigger IS NOT NULL OR episode_opened_at IS NOT NULL OR (status = 'amber' AND trend = 'declining');
    -- Its search: accounts whose name (in any case) or id starts with what is typed.
    CREATE INDEX accounts_by_name ON accounts (tenant_id, name COLLATE NOCASE);
    "#,
];

pub(crate) fn apply(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(current).unwrap_or(usize::MAX);
    if current > MIGRATIONS.len() {
        return Err(StoreError::TooNew { found: current as i64, supported: MIGRATIONS.len() });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql).map_err(|source| StoreError::Migration { version, source })?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(|source| StoreError::Migration { version, source })?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();
