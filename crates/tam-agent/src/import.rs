//! `tam import`: NDJSON and CSV records into the store.
//!
//! Raw input becomes validated records in one place ([`parse`]); a record that does not parse
//! is reported with its file, line, kind, id and field, and skipped. Good records are upserted
//! by id, so importing the same file twice changes nothing. Tickets and heartbeats may come
//! before their account (in a later file): they wait until the end of the import before an
//! unknown account rejects them.

mod parse;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::BufRead;

use tam_core::records::{Account, Heartbeat, Ticket};
use tam_core::{FieldError, PriorityNames, SignedDuration, TenantId, Timestamp};
use tam_store::{Store, StoreError, Writer};

pub use parse::RecordKind;

/// Settings the parser needs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Source priority names mapped to P1..P4.
    pub priority_names: PriorityNames,
    /// The import's single clock reading; timestamps after `now + future_tolerance` are rejected.
    pub now: Timestamp,
    /// Clock skew allowed between the source and this machine.
    pub future_tolerance: SignedDuration,
    /// Check-in interval for accounts that do not give one.
    pub default_check_in_interval_days: u32,
}

/// How a source is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line with a `"record"` field.
    Ndjson,
    /// A header row, then one record of one kind per row; `None` = infer the kind from the header.
    Csv(Option<RecordKind>),
}

/// A validated record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An account.
    Account(Account),
    /// A ticket.
    Ticket(Ticket),
    /// A heartbeat.
    Heartbeat(Heartbeat),
}

impl Record {
    fn tenant(&self) -> &TenantId {
        match self {
            Record::Account(a) => &a.tenant,
            Record::Ticket(t) => &t.tenant,
            Record::Heartbeat(h) => &h.tenant,
        }
    }
}

/// A record that was not imported, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// File name (or `-` for standard input).
    pub source: String,
    /// 1-based line.
    pub line: u64,
    /// Kind, when it could be told.
    pub kind: Option<RecordKind>,
    /// Record id, when it could be read.
    pub id: Option<String>,
    /// The field at fault and why.
    pub error: FieldError,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.source, self.line)?;
        match (&self.kind, &self.id) {
            (Some(kind), Some(id)) => write!(f, "{kind} {id}: ")?,
            (Some(kind), None) => write!(f, "{kind}: ")?,
            _ => {}
        }
        write!(f, "{}", self.error)
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Accounts upserted.
    pub accounts: u64,
    /// Tickets upserted.
    pub tickets: u64,
    /// Heartbeats recorded.
    pub heartbeats: u64,
    /// Tenants seen for the first time.
    pub tenants_created: Vec<TenantId>,
    /// Records skipped, in input order.
    pub rejected: Vec<Rejected>,
}

impl ImportReport {
    /// Records stored.
    pub fn imported(&self) -> u64 {
        self.accounts + self.tickets + self.heartbeats
    }
}

/// Why an import stopped early. Bad records never stop it; these do.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A source could not be read.
    #[error("{source_name}: {error}")]
    Read {
        /// File name.
        source_name: String,
        /// Why.
        error: std::io::Error,
    },
    /// A CSV source could not be read as CSV at all.
    #[error("{source_name}: {reason}")]
    Csv {
        /// File name.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The store refused a write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records per transaction: large enough to amortise the commit, small enough that a crash
/// loses little work (re-import is idempotent anyway).
const BATCH: usize = 20_000;

/// One import run over any number of sources.
pub struct Importer<'s> {
    store: &'s mut Store,
    opts: ImportOptions,
    known: HashMap<String, HashSet<String>>,
    waiting: Vec<(Location, Record)>,
    pending: Vec<(Location, Record)>,
    report: ImportReport,
}

#[derive(Debug, Clone)]
struct Location {
    source: String,
    line: u64,
}

impl<'s> Importer<'s> {
    /// Starts an import into `store`.
    pub fn new(store: &'s mut Store, opts: ImportOptions) -> Importer<'s> {
        Importer {
            store,
            opts,
            known: HashMap::new(),
            waiting: Vec::new(),
            pending: Vec::new(),
            report: ImportReport::default(),
        }
    }

    /// Imports one source. `name` is how errors refer to it.
    pub fn read(&mut self, name: &str, reader: impl BufRead, format: Format) -> Result<(), ImportError> {
        match format {
            Format::Ndjson => self.read_ndjson(name, reader),
            Format::Csv(kind) => self.read_csv(name, reader, kind),
        }
    }

    fn read_ndjson(&mut self, name: &str, mut reader: impl BufRead) -> Result<(), ImportError> {
        let mut line = String::new();
        let mut number = 0u64;
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .map_err(|error| ImportError::Read { source_name: name.to_owned(), error })?;
            if read == 0 {
                break;
            }
            number += 1;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let location = Location { source: name.to_owned(), line: number };
            match parse::ndjson(text, &self.opts) {
                Ok(record) => self.accept(location, record)?,
                Err(e) => self.reject(location, e),
            }
        }
        self.flush()
    }

    fn read_csv(&mut self, name: &str, reader: impl BufRead, kind: Option<RecordKind>) -> Result<(), ImportError> {
        let csv_error = |e: csv::Error| ImportError::Csv { source_name: name.to_owned(), reason: e.to_string() };
        let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = csv.headers().map_err(csv_error)?.clone();
        let layout = match parse::CsvLayout::new(&headers, kind) {
            Ok(layout) => layout,
            Err(reason) => return Err(ImportError::Csv { source_name: name.to_owned(), reason }),
        };
        let mut row = csv::StringRecord::new();
        loop {
            let more = match csv.read_record(&mut row) {
                Ok(more) => more,
                Err(e) => {
                    // A malformed row (bad quoting, invalid UTF-8) is one rejected record.
                    let line = e.position().map_or(0, |p| p.line());
                    let location = Location { source: name.to_owned(), line };
                    self.reject(location, parse::Failure::whole(layout.kind(), e.to_string()));
                    continue;
                }
            };
            if !more {
                break;
            }
            let line = row.position().map_or(0, |p| p.line());
            let location = Location { source: name.to_owned(), line };
            match layout.record(&row, &self.opts) {
                Ok(record) => self.accept(location, record)?,
                Err(e) => self.reject(location, e),
            }
        }
        self.flush()
    }

    fn reject(&mut self, at: Location, failure: parse::Failure) {
        self.report.rejected.push(Rejected {
            source: at.source,
            line: at.line,
            kind: failure.kind,
            id: failure.id,
            error: failure.error,
        });
    }

    fn accept(&mut self, at: Location, record: Record) -> Result<(), ImportError> {
        self.pending.push((at, record));
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending records in one transaction.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let writer = self.store.writer()?;
        for (at, record) in batch {
            let tenant = record.tenant().as_str();
            if !self.known.contains_key(tenant) {
                if writer.ensure_tenant(record.tenant(), self.opts.now)? {
                    self.report.tenants_created.push(record.tenant().clone());
                }
                let ids = account_ids(&writer, record.tenant())?;
                self.known.insert(tenant.to_owned(), ids);
            }
            let accounts = self.known.get_mut(tenant).expect("inserted above when missing");
            match &record {
                Record::Account(a) => {
                    writer.upsert_account(a)?;
                    accounts.insert(a.id.as_str().to_owned());
                    self.report.accounts += 1;
                }
                Record::Ticket(t) if accounts.contains(t.account.as_str()) => {
                    writer.upsert_ticket(t)?;
                    self.report.tickets += 1;
                }
                Record::Heartbeat(h) if accounts.contains(h.account.as_str()) => {
                    writer.insert_heartbeat(h)?;
                    self.report.heartbeats += 1;
                }
                Record::Ticket(_) | Record::Heartbeat(_) => self.waiting.push((at, record)),
            }
        }
        writer.commit()?;
        Ok(())
    }

    /// Finishes the import: records still waiting for their account are written if it arrived,
    /// rejected if not.
    pub fn finish(mut self) -> Result<ImportReport, ImportError> {
        self.flush()?;
        let waiting = std::mem::take(&mut self.waiting);
        let (ready, orphans): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, r)| {
            let account = match r {
                Record::Ticket(t) => &t.account,
                Record::Heartbeat(h) => &h.account,
                Record::Account(a) => &a.id,
            };
            self.known.get(r.tenant().as_str()).is_some_and(|ids| ids.contains(account.as_str()))
        });
        self.pending = ready;
        self.flush()?;
        for (at, record) in orphans {
            let failure = parse::Failure::unknown_account(&record);
            self.reject(at, failure);
        }
        Ok(self.report)
    }
}

fn account_ids(writer: &Writer<'_>, tenant: &TenantId) -> Result<HashSet<String>, StoreError> {
    Ok(writer.account_ids(tenant)?.into_iter().collect())
}
