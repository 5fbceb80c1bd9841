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

/// Records per message from the parser thread to the writer.
const CHUNK: usize = 2_048;

/// One import run over any number of sources.
///
/// Parsing runs on its own thread, one chunk ahead of the store writes, so an import uses
/// both cores: validation and SQLite cost about the same per record.
pub struct Importer<'s> {
    store: &'s mut Store,
    opts: ImportOptions,
    sources: Vec<String>,
    known: HashMap<String, HashSet<String>>,
    waiting: Vec<(Location, Record)>,
    pending: Vec<(Location, Record)>,
    report: ImportReport,
    rejected: Vec<(Location, parse::Failure)>,
}

#[derive(Debug, Clone, Copy)]
struct Location {
    source: usize,
    line: u64,
}

enum Parsed {
    Record(Location, Record),
    Rejected(Location, parse::Failure),
}

impl<'s> Importer<'s> {
    /// Starts an import into `store`.
    pub fn new(store: &'s mut Store, opts: ImportOptions) -> Importer<'s> {
        Importer {
            store,
            opts,
            sources: Vec::new(),
            known: HashMap::new(),
            waiting: Vec::new(),
            pending: Vec::new(),
            report: ImportReport::default(),
            rejected: Vec::new(),
        }
    }

    /// Imports one source. `name` is how errors refer to it.
    pub fn read(&mut self, name: &str, reader: impl BufRead + Send, format: Format) -> Result<(), ImportError> {
        let source = self.sources.len();
        self.sources.push(name.to_owned());
        let opts = self.opts.clone();
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(8);
            let parser = scope.spawn(move || {
                let mut out = Sender { tx, chunk: Vec::with_capacity(CHUNK) };
                let result = match format {
                    Format::Ndjson => parse_ndjson(name, source, reader, &opts, &mut out),
                    Format::Csv(kind) => parse_csv(name, source, reader, kind, &opts, &mut out),
                };
                out.flush();
                result
            });
            let written = (|| {
                for chunk in &rx {
                    for parsed in chunk {
                        match parsed {
                            Parsed::Record(at, record) => self.accept(at, record)?,
                            Parsed::Rejected(at, failure) => self.rejected.push((at, failure)),
                        }
                    }
                }
                Ok(())
            })();
            // Dropping the receiver stops a parser that is still going after a store error.
            drop(rx);
            let parsed = parser.join().expect("the import parser thread does not panic");
            written.and(parsed)
        })?;
        self.flush()
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
            self.rejected.push((at, parse::Failure::unknown_account(&record)));
        }
        self.rejected.sort_by_key(|(at, _)| (at.source, at.line));
        let sources = &self.sources;
        self.report.rejected = self
            .rejected
            .into_iter()
            .map(|(at, f)| Rejected {
                source: sources[at.source].clone(),
                line: at.line,
                kind: f.kind,
                id: f.id,
                error: f.error,
            })
            .collect();
        Ok(self.report)
    }
}

fn account_ids(writer: &Writer<'_>, tenant: &TenantId) -> Result<HashSet<String>, StoreError> {
    Ok(writer.account_ids(tenant)?.into_iter().collect())
}

struct Sender {
    tx: std::sync::mpsc::SyncSender<Vec<Parsed>>,
    chunk: Vec<Parsed>,
}

impl Sender {
    /// Queues one parsed record; false once the writer has stopped listening.
    fn push(&mut self, parsed: Parsed) -> bool {
        self.chunk.push(parsed);
        if self.chunk.len() >= CHUNK { self.flush() } else { true }
    }

    fn flush(&mut self) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.tx.send(chunk).is_ok()
    }
}

fn parsed(at: Location, result: Result<Record, parse::Failure>) -> Parsed {
    match result {
        Ok(record) => Parsed::Record(at, record),
        Err(failure) => Parsed::Rejected(at, failure),
    }
}

fn parse_ndjson(
    name: &str,
    source: usize,
    mut reader: impl BufRead,
    opts: &ImportOptions,
    out: &mut Sender,
) -> Result<(), ImportError> {
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let read =
            reader.read_line(&mut line).map_err(|error| ImportError::Read { source_name: name.to_owned(), error })?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        // Files saved by some Windows editors start with a byte order mark.
        let text = if number == 1 { line.trim_start_matches('\u{feff}') } else { &line }.trim();
        if text.is_empty() {
            continue;
        }
        let at = Location { source, line: number };
        if !out.push(parsed(at, parse::ndjson(text, opts))) {
            return Ok(());
        }
    }
}

fn parse_csv(
    name: &str,
    source: usize,
    reader: impl BufRead,
    kind: Option<RecordKind>,
    opts: &ImportOptions,
    out: &mut Sender,
) -> Result<(), ImportError> {
    let csv_error = |reason: String| ImportError::Csv { source_name: name.to_owned(), reason };
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.headers().map_err(|e| csv_error(e.to_string()))?.clone();
    let layout = parse::CsvLayout::new(&headers, kind).map_err(csv_error)?;
    let mut row = csv::StringRecord::new();
    loop {
        let result = match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = row.position().map_or(0, |p| p.line());
                (line, layout.record(&row, opts))
            }
            Err(e) if e.is_io_error() => return Err(csv_error(e.to_string())),
            // A malformed row (bad quoting, invalid UTF-8) is one rejected record.
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(parse::Failure::whole(layout.kind(), e.to_string()))),
        };
        if !out.push(parsed(Location { source, line: result.0 }, result.1)) {
            return Ok(());
        }
    }
}
