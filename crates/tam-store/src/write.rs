//! Upserts of imported records, batched in one transaction.

use tam_core::records::{Account, Escalation, Heartbeat, Ticket};
use tam_core::{AccountId, TenantId, Timestamp};

use std::cell::RefCell;

use crate::db::{Batch, Conn, args};
use crate::{Store, StoreError, nanos};

/// A write transaction for imported records. Nothing is visible to readers until
/// [`Writer::commit`]; dropping it rolls back.
pub struct Writer<'a> {
    tx: &'a Conn,
    open: bool,
    /// Accounts and tickets: on PostgreSQL held, and sent before anything reads or commits.
    batches: RefCell<Batches>,
}

struct Batches {
    accounts: Batch<(String, String)>,
    tickets: Batch<(String, String)>,
}

const ACCOUNT_COLUMNS: &str =
    "INSERT INTO accounts (tenant_id, id, name, rep_name, rep_email, rep_chat_space, contacts,
    last_heartbeat, api_call_count, check_in_interval_days, cc_contacts)";
const ACCOUNT_UPSERT: &str = "ON CONFLICT (tenant_id, id) DO UPDATE SET
    name = excluded.name, rep_name = excluded.rep_name, rep_email = excluded.rep_email,
    rep_chat_space = COALESCE(excluded.rep_chat_space, accounts.rep_chat_space),
    contacts = CASE WHEN excluded.contacts = '[]' THEN accounts.contacts ELSE excluded.contacts END,
    cc_contacts = CASE WHEN excluded.cc_contacts = '[]' THEN accounts.cc_contacts ELSE excluded.cc_contacts END,
    last_heartbeat = CASE
        WHEN excluded.last_heartbeat IS NULL THEN accounts.last_heartbeat
        WHEN accounts.last_heartbeat IS NULL THEN excluded.last_heartbeat
        WHEN excluded.last_heartbeat > accounts.last_heartbeat THEN excluded.last_heartbeat
        ELSE accounts.last_heartbeat END,
    api_call_count = COALESCE(excluded.api_call_count, accounts.api_call_count),
    check_in_interval_days = excluded.check_in_interval_days";
const ACCOUNT_TYPES: &[&str] =
    &["text", "text", "text", "text", "text", "text", "text", "bigint", "bigint", "bigint", "text"];
const TICKET_TYPES: &[&str] =
    &["text", "text", "text", "text", "bigint", "text", "bigint", "bigint", "text", "text", "bigint"];
const TICKET_COLUMNS: &str = "INSERT INTO tickets (tenant_id, id, account_id, source, priority, status, created_at,
    updated_at, subject, kind, resolved_at)";
const TICKET_UPSERT: &str = "ON CONFLICT (tenant_id, id) DO UPDATE SET
    account_id = excluded.account_id, source = excluded.source, priority = excluded.priority,
    status = excluded.status, created_at = excluded.created_at, updated_at = excluded.updated_at,
    subject = excluded.subject, kind = excluded.kind, resolved_at = excluded.resolved_at";

impl Store {
    /// Starts a write transaction. The schema's foreign keys are not checked row by row while
    /// it is open: the importer checks every reference itself (a ticket or heartbeat whose
    /// account is unknown waits for it or is rejected), and checking again cost a sixth of an
    /// import. They are checked again once the writer ends.
    pub fn writer(&mut self) -> Result<Writer<'_>, StoreError> {
        let begin = match &self.conn {
            // Only outside a transaction does SQLite take this pragma.
            Conn::Lite(_) => "PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE",
            // PostgreSQL checks them once, at the commit.
            Conn::Pg(_) => "BEGIN; SET CONSTRAINTS ALL DEFERRED",
        };
        if let Err(e) = self.conn.open_transaction(begin) {
            let _ = self.conn.close_transaction("ROLLBACK");
            self.conn.foreign_keys_on();
            return Err(e);
        }
        let batches = RefCell::new(Batches {
            accounts: Batch::new(ACCOUNT_COLUMNS, ACCOUNT_UPSERT, ACCOUNT_TYPES),
            tickets: Batch::new(TICKET_COLUMNS, TICKET_UPSERT, TICKET_TYPES),
        });
        Ok(Writer { tx: &self.conn, open: true, batches })
    }
}

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.tx.close_transaction("ROLLBACK");
            self.tx.foreign_keys_on();
        }
    }
}

impl Writer<'_> {
    /// Sends the rows batched so far: before a read, a heartbeat (which updates its account)
    /// and the commit, so each sees every row written before it.
    fn send(&self) -> Result<(), StoreError> {
        let mut b = self.batches.borrow_mut();
        b.accounts.flush(self.tx)?;
        b.tickets.flush(self.tx)?;
        Ok(())
    }

    /// Creates the tenant if it is new. Returns whether it was created.
    pub fn ensure_tenant(&self, tenant: &TenantId, now: Timestamp) -> Result<bool, StoreError> {
        let created = self.tx.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (?1, ?1, ?2) ON CONFLICT (id) DO NOTHING",
            &args![tenant.as_str(), nanos(now)],
        )?;
        Ok(created == 1)
    }

    /// The ids of every account of a tenant, as this transaction sees them.
    pub fn account_ids(&self, tenant: &TenantId) -> Result<Vec<String>, StoreError> {
        self.send()?;
        self.tx.rows("SELECT id FROM accounts WHERE tenant_id = ?1", &args![tenant.as_str()], |r| r.get(0))
    }

    /// Whether the tenant exists.
    pub fn tenant_exists(&self, tenant: &TenantId) -> Result<bool, StoreError> {
        self.send()?;
        self.tx.exists("SELECT 1 FROM tenants WHERE id = ?1", &args![tenant.as_str()])
    }

    /// Whether the account exists in the tenant.
    pub fn account_exists(&self, tenant: &TenantId, account: &AccountId) -> Result<bool, StoreError> {
        self.send()?;
        self.tx.exists(
            "SELECT 1 FROM accounts WHERE tenant_id = ?1 AND id = ?2",
            &args![tenant.as_str(), account.as_str()],
        )
    }

    /// Inserts or updates an account's CRM fields; its health fields are kept. Optional fields
    /// the record leaves out (no chat space, no contacts or copied contacts, no call count) keep their stored
    /// value, and the last heartbeat only moves forward: a re-import never loses what is known.
    pub fn upsert_account(&self, a: &Account) -> Result<(), StoreError> {
        let contacts = serde_json::to_string(&a.contacts).expect("a list of strings always serialises");
        let cc = serde_json::to_string(&a.cc).expect("a list of strings always serialises");
        let (tenant, id, email) = (a.tenant.as_str(), a.id.as_str(), a.rep.email.as_str());
        let beat = a.last_heartbeat.map(nanos);
        let calls = a.api_call_count.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        let values = args![
            tenant,
            id,
            a.name,
            a.rep.name,
            email,
            a.rep.chat_space,
            contacts,
            beat,
            calls,
            a.check_in_interval_days,
            cc,
        ];
        let key = || (a.tenant.to_string(), a.id.to_string());
        self.batches.borrow_mut().accounts.push(self.tx, key, &values)?;
        Ok(())
    }

    /// Inserts or replaces a ticket.
    pub fn upsert_ticket(&self, t: &Ticket) -> Result<(), StoreError> {
        let (tenant, id, account) = (t.tenant.as_str(), t.id.as_str(), t.account.as_str());
        let (source, status) = (t.source.as_str(), t.status.as_str());
        let (level, created, updated) = (t.priority.level(), nanos(t.created_at), t.updated_at.map(nanos));
        let resolved = t.resolved_at.map(nanos);
        let values = args![tenant, id, account, source, level, status, created, updated, t.subject, t.kind, resolved];
        let key = || (t.tenant.to_string(), t.id.to_string());
        self.batches.borrow_mut().tickets.push(self.tx, key, &values)?;
        Ok(())
    }

    /// Records a heartbeat (idempotent per instant) and moves the account's last heartbeat
    /// forward if this one is newer.
    pub fn insert_heartbeat(&self, h: &Heartbeat) -> Result<(), StoreError> {
        self.send()?;
        let count = h.api_call_count.map(|c| i64::try_from(c).unwrap_or(i64::MAX));
        let (tenant, account, at) = (h.tenant.as_str(), h.account.as_str(), nanos(h.at));
        let args = args![tenant, account, at, count];
        self.tx.execute(
            "INSERT INTO heartbeats (tenant_id, account_id, at, api_call_count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, account_id, at) DO UPDATE SET api_call_count = excluded.api_call_count",
            &args,
        )?;
        self.tx.execute(
            "UPDATE accounts SET
                api_call_count = CASE WHEN CAST(?4 AS BIGINT) IS NOT NULL AND ?3 >= COALESCE(last_heartbeat, ?3)
                                      THEN ?4 ELSE api_call_count END,
                last_heartbeat = CASE WHEN last_heartbeat > ?3 THEN last_heartbeat ELSE ?3 END
             WHERE tenant_id = ?1 AND id = ?2",
            &args,
        )?;
        Ok(())
    }

    /// Records an escalation that happened; the same account and instant again replaces its
    /// source and note, so a re-import changes nothing.
    pub fn upsert_escalation(&self, e: &Escalation) -> Result<(), StoreError> {
        self.send()?;
        self.tx.execute(
            "INSERT INTO escalations (tenant_id, account_id, at, source, note) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, account_id, at) DO UPDATE SET source = excluded.source, note = excluded.note",
            &args![e.tenant.as_str(), e.account.as_str(), nanos(e.at), e.source, e.note],
        )?;
        Ok(())
    }

    /// Makes everything written visible.
    pub fn commit(mut self) -> Result<(), StoreError> {
        // On failure the writer is dropped, which rolls back.
        self.send()?;
        self.open = false;
        let committed = self.tx.close_transaction("COMMIT");
        if committed.is_err() {
            let _ = self.tx.close_transaction("ROLLBACK");
        }
        self.tx.foreign_keys_on();
        committed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn foreign_keys(conn: &Conn) -> i64 {
        conn.row("PRAGMA foreign_keys", &[], |r| r.get(0)).unwrap().unwrap()
    }

    #[test]
    fn foreign_keys_are_checked_again_once_a_writer_ends() {
        let mut store = Store::open_in_memory().unwrap();
        assert_eq!(foreign_keys(&store.conn), 1);
        let writer = store.writer().unwrap();
        assert_eq!(foreign_keys(writer.tx), 0);
        writer.commit().unwrap();
        assert_eq!(foreign_keys(&store.conn), 1, "after a commit");
        drop(store.writer().unwrap());
        assert_eq!(foreign_keys(&store.conn), 1, "after a rollback");
        let orphan = store.conn.execute(
            "INSERT INTO tickets (tenant_id, id, account_id, source, priority, status, created_at, subject)
             VALUES ('t', 'T-1', 'nobody', 'import', 1, 'open', 0, 's')",
            &[],
        );
        assert!(orphan.is_err(), "the schema refuses an orphan ticket outside the importer");
    }
}
