//! What became of each saved draft: recorded when a mailbox saves it, watched while it is a
//! draft (for [`WATCH_DAYS`]), and counted per communication kind and writer.

use tam_core::fate::{Decision, Fate, WATCH_DAYS, Watched};
use tam_core::{Email, SignedDuration, TenantId, Timestamp};

use crate::db::args;
use crate::{Store, StoreError, from_nanos, nanos};

/// A draft a mailbox has just saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedDraft {
    /// Tenant.
    pub tenant: TenantId,
    /// The draft effect's key.
    pub key: String,
    /// Account.
    pub account: String,
    /// Communication kind.
    pub kind: String,
    /// `template` or the model that wrote it.
    pub generator: String,
    /// The rep whose mailbox holds it.
    pub rep: Email,
    /// Who it is addressed to.
    pub recipients: Vec<Email>,
    /// `gmail`, or `local` for `.eml` files.
    pub mailbox: String,
    /// Where the mailbox said it saved it.
    pub receipt: String,
    /// Its Message-ID.
    pub message_id: String,
    /// When it was saved.
    pub created_at: Timestamp,
    /// The text as written, to measure a rep's edits against.
    pub text: String,
    /// Its HTML part as text: what Gmail's editor sends as the text of a draft sent unchanged.
    pub html_text: String,
    /// [`Fate::Draft`] where the mailbox can be read back, else [`Fate::Unknown`].
    pub fate: Fate,
}

/// A draft still watched.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedRow {
    /// The draft effect's key.
    pub key: String,
    /// What a mailbox needs to look for it.
    pub draft: Watched,
}

/// The drafts of one kind, by one writer, with one fate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FateCount {
    /// Communication kind.
    pub kind: String,
    /// `template` or the model that wrote it.
    pub generator: String,
    /// The fate.
    pub fate: Fate,
    /// How many.
    pub drafts: u64,
    /// Mean share of words changed, over the edited ones.
    pub mean_changed: Option<f64>,
}

impl Store {
    /// Records drafts just saved; a draft recorded before (a retried delivery) is kept as it was.
    pub fn record_saved_drafts(&mut self, drafts: &[SavedDraft]) -> Result<(), StoreError> {
        if drafts.is_empty() {
            return Ok(());
        }
        let tx = self.conn.begin()?;
        for d in drafts {
            let recipients: Vec<&str> = d.recipients.iter().map(Email::as_str).collect();
            let recipients = serde_json::to_string(&recipients).expect("a list of strings always serialises");
            let note = (d.fate == Fate::Unknown).then_some("its mailbox keeps no record of what becomes of a draft");
            tx.execute(
                "INSERT INTO draft_fates (tenant_id, idem_key, account_id, kind, generator, rep_email, recipients,
                                          mailbox, receipt, created_at, fate, text, html_text, note, message_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (tenant_id, idem_key) DO NOTHING",
                &args![
                    d.tenant.as_str(),
                    d.key,
                    d.account,
                    d.kind,
                    d.generator,
                    d.rep.as_str(),
                    recipients,
                    d.mailbox,
                    d.receipt,
                    nanos(d.created_at),
                    d.fate.as_str(),
                    // An `.eml` file's text is on disk; only a watched draft needs it kept.
                    if d.fate == Fate::Draft { d.text.as_str() } else { "" },
                    if d.fate == Fate::Draft { d.html_text.as_str() } else { "" },
                    note,
                    d.message_id
                ],
            )?;
        }
        tx.commit()
    }

    /// The tenant's drafts still watched at `now` (saved within [`WATCH_DAYS`]), oldest first,
    /// after `after` (the last key of the previous page), at most `limit`.
    pub fn watched_drafts(
        &self,
        tenant: &TenantId,
        now: Timestamp,
        after: Option<(Timestamp, &str)>,
        limit: usize,
    ) -> Result<Vec<WatchedRow>, StoreError> {
        let since = now.checked_sub(SignedDuration::from_hours(24 * WATCH_DAYS)).unwrap_or(now);
        let (at, key) = after.map_or((nanos(since) - 1, ""), |(at, key)| (nanos(at), key));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.conn.rows(
            "SELECT idem_key, rep_email, recipients, receipt, thread_id, created_at, text, html_text, message_id
             FROM draft_fates INDEXED BY draft_fates_watched
             WHERE tenant_id = ?1 AND fate = 'draft' AND created_at >= ?2 AND (created_at, idem_key) > (?3, ?4)
             ORDER BY created_at, idem_key LIMIT ?5",
            &args![tenant.as_str(), nanos(since), at, key, limit],
            |r| {
                let key: String = r.get(0)?;
                let corrupt = |field: &'static str, reason: String| StoreError::Corrupt {
                    table: "draft_fates",
                    key: key.clone(),
                    field,
                    reason,
                };
                let rep =
                    Email::parse("rep_email", &r.get::<String>(1)?).map_err(|e| corrupt("rep_email", e.to_string()))?;
                let listed: Vec<String> =
                    serde_json::from_str(&r.get::<String>(2)?).map_err(|e| corrupt("recipients", e.to_string()))?;
                let recipients = listed
                    .iter()
                    .map(|a| Email::parse("recipients", a).map_err(|e| corrupt("recipients", e.to_string())))
                    .collect::<Result<_, _>>()?;
                let draft = Watched {
                    rep,
                    recipients,
                    receipt: r.get(3)?,
                    thread: r.get(4)?,
                    created_at: from_nanos(r.get(5)?),
                    text: r.get(6)?,
                    html_text: r.get(7)?,
                    message_id: r.get(8)?,
                };
                Ok(WatchedRow { key, draft })
            },
        )
    }

    /// Records what was seen of watched drafts at `now`. A decided draft's text is dropped: it
    /// was kept only to compare with what was sent.
    pub fn settle_fates(
        &mut self,
        tenant: &TenantId,
        seen: &[(String, Decision)],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        if seen.is_empty() {
            return Ok(());
        }
        let tx = self.conn.begin()?;
        for (key, d) in seen {
            let decided = d.fate.decided().then(|| nanos(now));
            tx.execute(
                "UPDATE draft_fates SET fate = ?3, changed = ?4, thread_id = COALESCE(?5, thread_id),
                        checked_at = ?6, decided_at = ?7, note = ?8,
                        text = CASE WHEN ?9 = 1 THEN '' ELSE text END,
                        html_text = CASE WHEN ?9 = 1 THEN '' ELSE html_text END
                 WHERE tenant_id = ?1 AND idem_key = ?2 AND fate = 'draft'",
                &args![
                    tenant.as_str(),
                    key,
                    d.fate.as_str(),
                    d.changed,
                    d.thread,
                    nanos(now),
                    decided,
                    d.note,
                    d.fate.decided()
                ],
            )?;
        }
        tx.commit()
    }

    /// The tenant's drafts saved since `since`, counted by kind, writer and fate.
    pub fn fate_counts(&self, tenant: &TenantId, since: Timestamp) -> Result<Vec<FateCount>, StoreError> {
        self.conn.rows(
            "SELECT kind, generator, fate, COUNT(*), AVG(changed)
             FROM draft_fates INDEXED BY draft_fates_by_time
             WHERE tenant_id = ?1 AND created_at >= ?2
             GROUP BY kind, generator, fate ORDER BY kind, generator, fate",
            &args![tenant.as_str(), nanos(since)],
            |r| {
                let fate: String = r.get(2)?;
                Ok(FateCount {
                    kind: r.get(0)?,
                    generator: r.get(1)?,
                    fate: Fate::parse(&fate).ok_or_else(|| StoreError::Corrupt {
                        table: "draft_fates",
                        key: tenant.to_string(),
                        field: "fate",
                        reason: format!("{fate:?} is not a fate"),
                    })?,
                    drafts: r.get::<i64>(3)?.unsigned_abs(),
                    mean_changed: if fate == "edited" { r.get(4)? } else { None },
                })
            },
        )
    }
}
