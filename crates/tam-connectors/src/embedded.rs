//! The embedded channels: drafts as `.eml` files plus rows, alerts in a notification log (rows
//! plus one readable file per rep), events in a local stream table, CRM fields on the account,
//! relationship profiles as Markdown files.
//!
//! Each adapter has its own connection to the home's database, so the dispatcher can hold one
//! and the channels theirs. Every write is keyed by the effect's key: delivering twice records
//! once.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use tam_core::Timestamp;
use tam_core::comms::{AlertKind, CrmUpdate, CustomerDraft, Event, ProfileDocument, RepAlert};
use tam_core::outbox::Outcome;
use tam_core::ports::{ChatNotifier, CrmWriter, DraftMailbox, EventBus, ProfilePublisher, RepAlerts};
use tam_store::{DraftRow, Location, NotificationRow, Store, StoreError};

/// A path component from any id: letters, digits and `._@+-` kept, anything else `_`, never
/// `.` or `..`, so no id can climb out of the home.
pub fn path_part(raw: &str) -> String {
    let mut s: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || "._@+-".contains(c) { c } else { '_' }).take(100).collect();
    if s.is_empty() || s.chars().all(|c| c == '.') {
        s = format!("_{s}");
    }
    s
}

fn store_failure(e: StoreError) -> Outcome {
    // The home's own database refusing a write is worth retrying (busy, disk full for now).
    Outcome::Retry { reason: format!("local store: {e}"), after: None }
}

fn io_failure(path: &Path, e: std::io::Error) -> Outcome {
    Outcome::Retry { reason: format!("{}: {e}", path.display()), after: None }
}

/// Writes `bytes` to `path` so a reader never sees half a file. The temporary name is unique
/// to this process, so two writers never share one.
///
/// No fsync: the outbox row is the durable record of the effect, and a file lost to a power
/// cut is written again (a draft whose file is missing is re-saved; a profile is rewritten on
/// its next publish). Syncing each file cost more than everything else a delivery does.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension(format!("part-{}", std::process::id()));
    let written = fs::write(&temp, bytes);
    let written = match written {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(&temp, bytes)
        }
        other => other,
    };
    written?;
    fs::rename(&temp, path)
}

/// Drafts under `HOME/drafts/<tenant>/<rep>/`, one RFC 5322 `.eml` file each, and a row.
pub struct LocalMailbox {
    store: Store,
    root: PathBuf,
    bcc: Vec<tam_core::Email>,
}

impl LocalMailbox {
    /// A mailbox on the home's database, with drafts under `home/drafts`.
    pub fn open(db: &Location, home: &Path) -> Result<LocalMailbox, StoreError> {
        Ok(LocalMailbox { store: Store::open_at(db)?, root: home.join("drafts"), bcc: Vec::new() })
    }

    /// Every draft also blind-copies `bcc` (`[mail] bcc`: the deployment's own addresses).
    pub fn with_bcc(mut self, bcc: Vec<tam_core::Email>) -> LocalMailbox {
        self.bcc = bcc;
        self
    }
}

impl DraftMailbox for LocalMailbox {
    fn create_draft(&mut self, draft: &CustomerDraft) -> Outcome {
        // Saved before: never rewrite it (the rep may have edited the file since), unless the
        // file is gone (files are not synced one by one; see `write_atomically`).
        let saved = match self.store.draft_path(draft.tenant(), draft.key().as_str()) {
            Ok(Some(path)) if Path::new(&path).exists() => return Outcome::Delivered { receipt: path },
            Ok(saved) => saved,
            Err(e) => return store_failure(e),
        };
        let now = Timestamp::now();
        let file =
            format!("{}-{}-{}.eml", path_part(draft.account().as_str()), draft.kind().as_str(), &draft.digest()[..12]);
        let path = match saved {
            Some(saved) => PathBuf::from(saved),
            None => {
                self.root.join(path_part(draft.tenant().as_str())).join(path_part(draft.from().as_str())).join(file)
            }
        };
        let row = DraftRow {
            tenant_id: draft.tenant().to_string(),
            idem_key: draft.key().to_string(),
            account_id: draft.account().to_string(),
            kind: draft.kind().as_str().to_owned(),
            subject: draft.subject().as_str().to_owned(),
            recipients: draft.to().iter().map(|e| e.to_string()).collect(),
            rep_email: draft.from().to_string(),
            path: path.display().to_string(),
            message_id: draft.message_id(),
            generator: draft.generator().to_owned(),
            confidence: draft.confidence().to_owned(),
            note: draft.note().map(str::to_owned),
            created_at: now,
            usage: Default::default(),
        };
        // The file first, so a row always points at a complete file. A crash between the two
        // leaves a file without a row; the retry writes it again and adds the row.
        let draft = draft.clone().with_bcc(&self.bcc);
        if let Err(e) = write_atomically(&path, tam_core::mime::render(&draft, now).as_bytes()) {
            return io_failure(&path, e);
        }
        match self.store.insert_draft(&row) {
            Ok(Some(existing)) => Outcome::Delivered { receipt: existing },
            Ok(None) => Outcome::Delivered { receipt: row.path },
            Err(e) => store_failure(e),
        }
    }
}

/// The notification log: a row per alert and a readable file per rep under
/// `HOME/notifications/<tenant>/<rep>.log`. Used for email and chat alerts alike.
pub struct NotificationLog {
    store: Store,
    root: PathBuf,
    channel: &'static str,
}

impl NotificationLog {
    /// The log of `channel` (`email` or `chat`).
    pub fn open(db: &Location, home: &Path, channel: &'static str) -> Result<NotificationLog, StoreError> {
        Ok(NotificationLog { store: Store::open_at(db)?, root: home.join("notifications"), channel })
    }

    fn log(&mut self, alert: &RepAlert) -> Outcome {
        let now = Timestamp::now();
        let row = NotificationRow {
            idem_key: format!("{}#{}", alert.key, self.channel),
            channel: self.channel.to_owned(),
            rep_email: alert.rep.to_string(),
            kind: match alert.kind {
                AlertKind::Individual => "individual",
                AlertKind::Digest => "digest",
            }
            .to_owned(),
            subject: alert.subject.as_str().to_owned(),
            body: alert.text.clone(),
        };
        let path =
            self.root.join(path_part(alert.tenant.as_str())).join(format!("{}.log", path_part(alert.rep.as_str())));
        match self.store.has_notification(&alert.tenant, &row.idem_key) {
            Ok(true) => return Outcome::Delivered { receipt: path.display().to_string() },
            Ok(false) => {}
            Err(e) => return store_failure(e),
        }
        // The file first, then the row: a crash between them repeats one log entry on retry,
        // which a reader tolerates; the other order could lose the entry for good.
        let to = match (self.channel, &alert.chat_space) {
            ("chat", Some(space)) => format!("{} ({space})", alert.rep),
            _ => alert.rep.to_string(),
        };
        let entry = format!(
            "=== {now} {} to {to}\nSubject: {}\n\n{}\n",
            self.channel,
            alert.subject.as_str(),
            alert.text.trim_end()
        );
        let appended = fs::create_dir_all(self.root.join(path_part(alert.tenant.as_str())))
            .and_then(|()| fs::OpenOptions::new().create(true).append(true).open(&path))
            .and_then(|mut f| f.write_all(entry.as_bytes()));
        if let Err(e) = appended {
            return io_failure(&path, e);
        }
        match self.store.insert_notification(&alert.tenant, &row, now) {
            Ok(_) => Outcome::Delivered { receipt: path.display().to_string() },
            Err(e) => store_failure(e),
        }
    }
}

impl RepAlerts for NotificationLog {
    fn send_alert(&mut self, alert: &RepAlert) -> Outcome {
        self.log(alert)
    }
}

impl ChatNotifier for NotificationLog {
    fn notify(&mut self, alert: &RepAlert) -> Outcome {
        self.log(alert)
    }
}

/// Event streams in the home's database, per tenant: `escalations` and `opportunities`.
pub struct LocalEventBus {
    store: Store,
}

impl LocalEventBus {
    /// The bus on the home's database.
    pub fn open(db: &Location) -> Result<LocalEventBus, StoreError> {
        Ok(LocalEventBus { store: Store::open_at(db)? })
    }
}

impl EventBus for LocalEventBus {
    fn publish(&mut self, event: &Event) -> Outcome {
        match self.store.append_event(event) {
            Ok(position) => Outcome::Delivered { receipt: format!("{}#{position}", event.stream()) },
            Err(e) => store_failure(e),
        }
    }
}

/// The embedded CRM: health fields on the account row.
pub struct LocalCrm {
    store: Store,
}

impl LocalCrm {
    /// The CRM on the home's database.
    pub fn open(db: &Location) -> Result<LocalCrm, StoreError> {
        Ok(LocalCrm { store: Store::open_at(db)? })
    }
}

impl CrmWriter for LocalCrm {
    fn update_health(&mut self, update: &CrmUpdate) -> Outcome {
        match self.store.update_crm(update) {
            Ok(_) => Outcome::Delivered { receipt: format!("accounts/{}", update.account) },
            Err(e) => store_failure(e),
        }
    }

    /// One transaction for the batch: all are written or none, and none costs a commit of its
    /// own. Local and quick, so a stop waits for it.
    fn update_all(&mut self, updates: &[CrmUpdate], _stop: tam_core::concurrent::Stop<'_>) -> Vec<Outcome> {
        match self.store.update_crm_all(updates) {
            Ok(_) => {
                updates.iter().map(|u| Outcome::Delivered { receipt: format!("accounts/{}", u.account) }).collect()
            }
            Err(e) => {
                let failed = store_failure(e);
                updates.iter().map(|_| failed.clone()).collect()
            }
        }
    }
}

/// Profiles as Markdown under `HOME/profiles/<tenant>/<account>.md`, rewritten whole by each
/// publish.
pub struct LocalProfiles {
    root: PathBuf,
}

impl LocalProfiles {
    /// Profiles under `home/profiles`.
    pub fn new(home: &Path) -> LocalProfiles {
        LocalProfiles { root: home.join("profiles") }
    }
}

/// The profile as Markdown: a title, then each section as a heading and a list.
pub fn profile_markdown(doc: &ProfileDocument) -> String {
    let mut out = format!("# {}\n", doc.title());
    for section in &doc.sections {
        out.push_str(&format!("\n## {}\n\n", section.title));
        if section.lines.is_empty() {
            out.push_str("Nothing recorded yet.\n");
        }
        for line in &section.lines {
            // One line per item, whatever the fact held.
            out.push_str(&format!("- {}\n", line.replace(['\r', '\n'], " ")));
        }
    }
    out
}

impl ProfilePublisher for LocalProfiles {
    fn publish_profile(&mut self, doc: &ProfileDocument) -> Outcome {
        let path =
            self.root.join(path_part(doc.tenant.as_str())).join(format!("{}.md", path_part(doc.account.as_str())));
        match write_atomically(&path, profile_markdown(doc).as_bytes()) {
            Ok(()) => Outcome::Delivered { receipt: path.display().to_string() },
            Err(e) => io_failure(&path, e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_cannot_escape_the_home() {
        assert_eq!(path_part("../../etc/passwd"), ".._.._etc_passwd");
        assert_eq!(path_part(".."), "_..");
        assert_eq!(path_part(""), "_");
        assert_eq!(path_part("ana.ruiz@vendor.example"), "ana.ruiz@vendor.example");
    }
}
