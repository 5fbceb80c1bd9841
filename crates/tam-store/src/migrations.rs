//! Versioned schema migrations: SQLite's tracked in its `user_version`, PostgreSQL's in the
//! `tam_schema` table.
//!
//! Append only: a released migration is never edited; a change is a new entry in both lists
//! (PostgreSQL's first entry creates at once the schema SQLite reached in eleven).

use crate::StoreError;
use crate::db::{Conn, Dialect};

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
    // 12: token buckets kept in the store, so that replicas sharing it keep to one limit
    // together: a tenant's heartbeats, the Notion integration's calls, a Gmail user's quota, a
    // Chat space's messages.
    r#"
    CREATE TABLE rate_buckets (
        name    TEXT PRIMARY KEY,                -- heartbeats:<tenant>, notion, gmail:<user>, chat:<space>
        tokens  REAL NOT NULL,                   -- below zero: calls already promised a later turn
        at      INTEGER NOT NULL                 -- when they were counted
    ) WITHOUT ROWID;
    "#,
    // 13: an account's drafts, newest first, for the MCP tool and `tam drafts list --account`.
    r#"
    CREATE INDEX drafts_by_account ON drafts (tenant_id, account_id, created_at);
    "#,
    // 14: what a backtest replays: when each ticket was resolved, and the escalations that
    // really happened.
    r#"
    ALTER TABLE tickets ADD COLUMN resolved_at INTEGER;
    CREATE TABLE escalations (
        tenant_id   TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        at          INTEGER NOT NULL,
        source      TEXT NOT NULL,
        note        TEXT,
        PRIMARY KEY (tenant_id, account_id, at),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
    ) WITHOUT ROWID;
    "#,
    // 15: what became of each draft a mailbox saved, watched for 30 days.
    r#"
    CREATE TABLE draft_fates (
        tenant_id   TEXT NOT NULL,
        idem_key    TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        kind        TEXT NOT NULL,
        generator   TEXT NOT NULL,
        rep_email   TEXT NOT NULL,
        recipients  TEXT NOT NULL,               -- JSON array
        mailbox     TEXT NOT NULL,               -- gmail | local
        receipt     TEXT NOT NULL,
        message_id  TEXT NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL,
        fate        TEXT NOT NULL,               -- draft | sent | edited | deleted | unknown
        changed     REAL,                        -- share of the words changed before sending
        thread_id   TEXT,
        text        TEXT NOT NULL,               -- as drafted, until its fate is decided
        html_text   TEXT NOT NULL DEFAULT '',    -- its HTML part as text: Gmail sends that one
        checked_at  INTEGER,
        decided_at  INTEGER,
        note        TEXT,
        PRIMARY KEY (tenant_id, idem_key)
    ) WITHOUT ROWID;
    -- The drafts still watched, oldest first; and a tenant's drafts by age, for its report.
    CREATE INDEX draft_fates_watched ON draft_fates (tenant_id, created_at, idem_key) WHERE fate = 'draft';
    CREATE INDEX draft_fates_by_time ON draft_fates (tenant_id, created_at);
    "#,
    // 16: reps' votes on their alerts, one per alert and account.
    r#"
    CREATE TABLE alert_feedback (
        tenant_id   TEXT NOT NULL,
        alert_key   TEXT NOT NULL,
        account_id  TEXT NOT NULL,
        reason      TEXT NOT NULL,               -- why the account escalated: the rule judged
        rep_email   TEXT NOT NULL,
        vote        TEXT NOT NULL,               -- useful | not_useful
        voted_at    INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, alert_key, account_id)
    ) WITHOUT ROWID;
    CREATE INDEX alert_feedback_by_time ON alert_feedback (tenant_id, voted_at);
    CREATE INDEX alert_feedback_by_rep ON alert_feedback (tenant_id, rep_email, voted_at);
    "#,
];

/// PostgreSQL's migrations, each with the schema version it reaches. Text is compared byte by
/// byte (`COLLATE "C"`), as SQLite compares it, so ids sort alike on both back ends whatever
/// the database's locale; integers are 64-bit, as SQLite's are.
const PG_MIGRATIONS: &[(usize, &str)] = &[
    (
        11,
        r#"
    CREATE TABLE tenants (
        id          TEXT COLLATE "C" PRIMARY KEY,
        name        TEXT COLLATE "C" NOT NULL,
        time_zone   TEXT COLLATE "C" NOT NULL DEFAULT 'UTC',
        created_at  BIGINT NOT NULL
    );

    CREATE TABLE accounts (
        tenant_id               TEXT COLLATE "C" NOT NULL REFERENCES tenants (id) DEFERRABLE,
        id                      TEXT COLLATE "C" NOT NULL,
        name                    TEXT COLLATE "C" NOT NULL,
        rep_name                TEXT COLLATE "C" NOT NULL,
        rep_email               TEXT COLLATE "C" NOT NULL,
        rep_chat_space          TEXT COLLATE "C",
        contacts                TEXT COLLATE "C" NOT NULL,
        last_heartbeat          BIGINT,
        api_call_count          BIGINT,
        check_in_interval_days  BIGINT NOT NULL,
        health_score            BIGINT,
        health_status           TEXT COLLATE "C",
        last_scan               BIGINT,
        escalated               BIGINT NOT NULL DEFAULT 0,
        crm_updated_at          BIGINT,
        cc_contacts             TEXT COLLATE "C" NOT NULL DEFAULT '[]',
        PRIMARY KEY (tenant_id, id)
    );
    -- The worklist's search: names from what is typed, in ASCII case as SQLite's NOCASE.
    CREATE INDEX accounts_by_name ON accounts (tenant_id, lower(name));

    CREATE TABLE tickets (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        id          TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL,
        priority    BIGINT NOT NULL,
        status      TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT,
        subject     TEXT COLLATE "C" NOT NULL,
        kind        TEXT COLLATE "C",
        PRIMARY KEY (tenant_id, id),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id) DEFERRABLE
    );
    CREATE INDEX tickets_open_by_account ON tickets (tenant_id, account_id, created_at, priority, status)
        WHERE status IN ('open', 'pending');
    CREATE INDEX tickets_by_account ON tickets (tenant_id, account_id, created_at);
    CREATE INDEX tickets_feature_requests ON tickets (tenant_id, account_id, created_at)
        WHERE kind = 'feature_request';

    CREATE TABLE heartbeats (
        tenant_id       TEXT COLLATE "C" NOT NULL,
        account_id      TEXT COLLATE "C" NOT NULL,
        at              BIGINT NOT NULL,
        api_call_count  BIGINT,
        PRIMARY KEY (tenant_id, account_id, at),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id) DEFERRABLE
    );

    CREATE TABLE snapshots (
        tenant_id               TEXT COLLATE "C" NOT NULL,
        account_id              TEXT COLLATE "C" NOT NULL,
        as_of                   BIGINT NOT NULL,
        score                   BIGINT NOT NULL,
        status                  TEXT COLLATE "C" NOT NULL,
        trend                   TEXT COLLATE "C" NOT NULL,
        deductions              TEXT COLLATE "C" NOT NULL,
        trigger                 TEXT COLLATE "C",
        alert_cause             TEXT COLLATE "C",
        delivery                TEXT COLLATE "C",
        episode_opened_at       BIGINT,
        episode_reason          TEXT COLLATE "C",
        episode_last_alert_at   BIGINT,
        episode_last_alert_score BIGINT,
        episode_last_alert_status TEXT COLLATE "C",
        PRIMARY KEY (tenant_id, account_id, as_of)
    );
    CREATE INDEX snapshots_worklist ON snapshots (tenant_id, as_of,
            (CASE WHEN trigger IS NOT NULL THEN 0 WHEN episode_opened_at IS NOT NULL THEN 1 ELSE 2 END),
            score, account_id, status, episode_opened_at, trigger, trend)
        WHERE trigger IS NOT NULL OR episode_opened_at IS NOT NULL OR (status = 'amber' AND trend = 'declining');

    CREATE TABLE episodes (
        tenant_id           TEXT COLLATE "C" NOT NULL,
        account_id          TEXT COLLATE "C" NOT NULL,
        opened_at           BIGINT NOT NULL,
        reason              TEXT COLLATE "C" NOT NULL,
        last_alert_at       BIGINT NOT NULL,
        last_alert_score    BIGINT NOT NULL,
        last_alert_status   TEXT COLLATE "C" NOT NULL,
        closed_at           BIGINT,
        PRIMARY KEY (tenant_id, account_id, opened_at)
    );

    CREATE TABLE scans (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        as_of       BIGINT NOT NULL,
        summary     TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (tenant_id, as_of)
    );

    CREATE TABLE outbox (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id       TEXT COLLATE "C" NOT NULL,
        idem_key        TEXT COLLATE "C" NOT NULL,
        effect          TEXT COLLATE "C" NOT NULL,
        account_id      TEXT COLLATE "C",
        payload         TEXT COLLATE "C" NOT NULL,
        state           TEXT COLLATE "C" NOT NULL DEFAULT 'pending',
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        lease_owner     TEXT COLLATE "C",
        lease_until     BIGINT,
        last_error      TEXT COLLATE "C",
        receipt         TEXT COLLATE "C",
        created_at      BIGINT NOT NULL,
        delivered_at    BIGINT,
        UNIQUE (tenant_id, idem_key)
    );
    CREATE INDEX outbox_due ON outbox (tenant_id, (effect != 'draft'), next_attempt_at, id)
        WHERE state IN ('pending', 'in_flight');
    CREATE INDEX outbox_failed ON outbox (tenant_id, id) WHERE state = 'failed';
    CREATE INDEX outbox_drafts_by_account ON outbox (tenant_id, account_id, id) WHERE effect = 'draft';

    CREATE TABLE outbox_attempts (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        outbox_id   BIGINT NOT NULL REFERENCES outbox (id),
        attempt     BIGINT NOT NULL,
        at          BIGINT NOT NULL,
        outcome     TEXT COLLATE "C" NOT NULL,
        detail      TEXT COLLATE "C"
    );
    CREATE INDEX outbox_attempts_by_row ON outbox_attempts (outbox_id, id);

    CREATE TABLE drafts (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        idem_key    TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        kind        TEXT COLLATE "C" NOT NULL,
        subject     TEXT COLLATE "C" NOT NULL,
        recipients  TEXT COLLATE "C" NOT NULL,
        rep_email   TEXT COLLATE "C" NOT NULL,
        path        TEXT COLLATE "C" NOT NULL,
        message_id  TEXT COLLATE "C" NOT NULL,
        generator   TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL,
        confidence  TEXT COLLATE "C" NOT NULL DEFAULT 'medium',
        note        TEXT COLLATE "C",
        PRIMARY KEY (tenant_id, idem_key)
    );

    CREATE TABLE notifications (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        idem_key    TEXT COLLATE "C" NOT NULL,
        channel     TEXT COLLATE "C" NOT NULL,
        rep_email   TEXT COLLATE "C" NOT NULL,
        kind        TEXT COLLATE "C" NOT NULL,
        subject     TEXT COLLATE "C" NOT NULL,
        body        TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, idem_key)
    );

    CREATE TABLE events (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id   TEXT COLLATE "C" NOT NULL,
        stream      TEXT COLLATE "C" NOT NULL,
        event_id    TEXT COLLATE "C" NOT NULL,
        event       TEXT COLLATE "C" NOT NULL,
        UNIQUE (tenant_id, event_id)
    );
    CREATE INDEX events_by_stream ON events (tenant_id, stream, id);

    CREATE TABLE profile_facts (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        section     TEXT COLLATE "C" NOT NULL,
        fact_key    TEXT COLLATE "C" NOT NULL,
        value       TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL,
        first_seen  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, account_id, section, fact_key)
    );

    CREATE TABLE profile_changes (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id   TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        at          BIGINT NOT NULL,
        section     TEXT COLLATE "C" NOT NULL,
        fact_key    TEXT COLLATE "C" NOT NULL,
        old_value   TEXT COLLATE "C",
        new_value   TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX profile_changes_by_account ON profile_changes (tenant_id, account_id, id);

    CREATE TABLE opportunities (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        opp_key     TEXT COLLATE "C" NOT NULL,
        title       TEXT COLLATE "C" NOT NULL,
        description TEXT COLLATE "C" NOT NULL,
        status      TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL,
        created_at  BIGINT NOT NULL,
        updated_at  BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, account_id, opp_key)
    );

    CREATE TABLE model_calls (
        id              BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant_id       TEXT COLLATE "C" NOT NULL,
        idem_key        TEXT COLLATE "C" NOT NULL,
        at              BIGINT NOT NULL,
        provider        TEXT COLLATE "C" NOT NULL,
        model           TEXT COLLATE "C" NOT NULL,
        latency_ms      BIGINT NOT NULL,
        input_tokens    BIGINT,
        output_tokens   BIGINT,
        outcome         TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX model_calls_by_key ON model_calls (tenant_id, idem_key, id);

    CREATE TABLE sync_state (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL,
        watermark   BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, source)
    );

    CREATE TABLE webhook_deliveries (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        source      TEXT COLLATE "C" NOT NULL,
        delivery_id TEXT COLLATE "C" NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, source, delivery_id)
    );

    CREATE TABLE job_runs (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        job         TEXT COLLATE "C" NOT NULL,
        slot        BIGINT NOT NULL,
        outcome     TEXT COLLATE "C" NOT NULL,
        worker      TEXT COLLATE "C",
        started_at  BIGINT,
        finished_at BIGINT,
        detail      TEXT COLLATE "C",
        renewed_at  BIGINT,
        PRIMARY KEY (tenant_id, job, slot)
    );
    CREATE INDEX job_runs_running ON job_runs (tenant_id) WHERE outcome = 'running';
    "#,
    ),
    (
        12,
        r#"
    CREATE TABLE rate_buckets (
        name    TEXT COLLATE "C" PRIMARY KEY,
        tokens  DOUBLE PRECISION NOT NULL,
        at      BIGINT NOT NULL
    );
    "#,
    ),
    (
        13,
        r#"
    CREATE INDEX drafts_by_account ON drafts (tenant_id, account_id, created_at);
    "#,
    ),
    (
        14,
        r#"
    ALTER TABLE tickets ADD COLUMN resolved_at BIGINT;
    CREATE TABLE escalations (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        at          BIGINT NOT NULL,
        source      TEXT NOT NULL,
        note        TEXT,
        PRIMARY KEY (tenant_id, account_id, at),
        FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id) DEFERRABLE
    );
    "#,
    ),
    (
        15,
        r#"
    CREATE TABLE draft_fates (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        idem_key    TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        kind        TEXT COLLATE "C" NOT NULL,
        generator   TEXT COLLATE "C" NOT NULL,
        rep_email   TEXT COLLATE "C" NOT NULL,
        recipients  TEXT NOT NULL,
        mailbox     TEXT COLLATE "C" NOT NULL,
        receipt     TEXT NOT NULL,
        message_id  TEXT NOT NULL DEFAULT '',
        created_at  BIGINT NOT NULL,
        fate        TEXT COLLATE "C" NOT NULL,
        changed     DOUBLE PRECISION,
        thread_id   TEXT,
        text        TEXT NOT NULL,
        html_text   TEXT NOT NULL DEFAULT '',
        checked_at  BIGINT,
        decided_at  BIGINT,
        note        TEXT,
        PRIMARY KEY (tenant_id, idem_key)
    );
    CREATE INDEX draft_fates_watched ON draft_fates (tenant_id, created_at, idem_key) WHERE fate = 'draft';
    CREATE INDEX draft_fates_by_time ON draft_fates (tenant_id, created_at);
    "#,
    ),
    (
        16,
        r#"
    CREATE TABLE alert_feedback (
        tenant_id   TEXT COLLATE "C" NOT NULL,
        alert_key   TEXT COLLATE "C" NOT NULL,
        account_id  TEXT COLLATE "C" NOT NULL,
        reason      TEXT COLLATE "C" NOT NULL,
        rep_email   TEXT COLLATE "C" NOT NULL,
        vote        TEXT COLLATE "C" NOT NULL,
        voted_at    BIGINT NOT NULL,
        PRIMARY KEY (tenant_id, alert_key, account_id)
    );
    CREATE INDEX alert_feedback_by_time ON alert_feedback (tenant_id, voted_at);
    CREATE INDEX alert_feedback_by_rep ON alert_feedback (tenant_id, rep_email, voted_at);
    "#,
    ),
];

/// Brings the schema up to date; on PostgreSQL under a lock, so replicas starting at once
/// migrate once and each sees the finished schema.
pub(crate) fn apply(conn: &Conn) -> Result<(), StoreError> {
    match conn.dialect() {
        Dialect::Sqlite => apply_sqlite(conn),
        Dialect::Postgres => apply_postgres(conn),
    }
}

/// The schema version the database is at.
pub(crate) fn version(conn: &Conn) -> Result<i64, StoreError> {
    match conn.dialect() {
        Dialect::Sqlite => Ok(conn.row("PRAGMA user_version", &[], |r| r.get(0))?.unwrap_or_default()),
        Dialect::Postgres => {
            Ok(conn.row("SELECT COALESCE(MAX(version), 0) FROM tam_schema", &[], |r| r.get(0))?.unwrap_or_default())
        }
    }
}

fn too_new(found: i64) -> Result<usize, StoreError> {
    let current = usize::try_from(found).unwrap_or(usize::MAX);
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew { found, supported: SCHEMA_VERSION });
    }
    Ok(current)
}

fn apply_sqlite(conn: &Conn) -> Result<(), StoreError> {
    let current = too_new(version(conn)?)?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let failed = |e: StoreError| StoreError::Migration { version, reason: e.to_string() };
        let tx = conn.begin()?;
        tx.batch(sql).map_err(failed)?;
        tx.batch(&format!("PRAGMA user_version = {version}")).map_err(failed)?;
        tx.commit()?;
    }
    Ok(())
}

/// One transaction holding a lock only it can release (by ending): the version read and every
/// migration it calls for run under it, so replicas starting together migrate once, and a
/// connection lost halfway leaves the schema as it was.
fn apply_postgres(conn: &Conn) -> Result<(), StoreError> {
    let tx = conn.begin()?;
    // Any fixed key: every tam process contends for the same one.
    tx.batch(
        "SELECT pg_advisory_xact_lock(7215406);
         CREATE TABLE IF NOT EXISTS tam_schema (version BIGINT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )?;
    let current = too_new(version(&tx)?)?;
    for (version, sql) in PG_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let version = *version;
        let failed = |e: StoreError| StoreError::Migration { version, reason: e.to_string() };
        tx.batch(sql).map_err(failed)?;
        tx.execute("INSERT INTO tam_schema (version) VALUES (?1)", &crate::db::args![version as i64])
            .map_err(failed)?;
    }
    tx.commit()
}

/// The schema version this build creates and understands.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_back_ends_reach_the_same_version() {
        assert_eq!(PG_MIGRATIONS.last().map(|m| m.0), Some(SCHEMA_VERSION));
        assert!(PG_MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0), "PostgreSQL's versions ascend");
    }
}
