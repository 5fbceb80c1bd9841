//! `tam import`: NDJSON and CSV records into the store.
//!
//! Raw input becomes validated records in one place ([`parse`]); a record that does not parse
//! is reported with its file, line, kind, id and field, and skipped. Good records are upserted
//! by id, so importing the same file twice changes nothing. Tickets and heartbeats may come
//! before their account (in a later file): they wait, in memory, until the end of the import
//! before an unknown account rejects them; a later version of a waiting record replaces it.
//! A file that cannot be read at all is reported as one rejection and the import goes on.

mod parse;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{BufRead, Read};

use tam_core::records::{Account, Escalation, Heartbeat, Ticket};
use tam_core::{AccountId, FieldError, PriorityNames, SignedDuration, TenantId, Timestamp};
use tam_store::{Store, StoreError};

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
    /// An escalation that really happened.
    Escalation(Escalation),
}

impl Record {
    fn tenant(&self) -> &TenantId {
        match self {
            Record::Account(a) => &a.tenant,
            Record::Ticket(t) => &t.tenant,
            Record::Heartbeat(h) => &h.tenant,
            Record::Escalation(e) => &e.tenant,
        }
    }

    /// The account a ticket or heartbeat belongs to.
    fn owner(&self) -> Option<&AccountId> {
        match self {
            Record::Account(_) => None,
            Record::Ticket(t) => Some(&t.account),
            Record::Heartbeat(h) => Some(&h.account),
            Record::Escalation(e) => Some(&e.account),
        }
    }

    /// What makes two records the same record: a later one replaces an earlier one.
    fn key(&self) -> (RecordKind, String, String) {
        match self {
            Record::Account(a) => (RecordKind::Account, a.tenant.to_string(), a.id.to_string()),
            Record::Ticket(t) => (RecordKind::Ticket, t.tenant.to_string(), t.id.to_string()),
            Record::Heartbeat(h) => (RecordKind::Heartbeat, h.tenant.to_string(), format!("{}@{}", h.account, h.at)),
            Record::Escalation(e) => (RecordKind::Escalation, e.tenant.to_string(), format!("{}@{}", e.account, e.at)),
        }
    }
}

/// A record that was not imported, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// File name (or `-` for standard input).
    pub source: String,
    /// 1-based line; 0 when the whole file was rejected.
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
        if self.line == 0 {
            write!(f, "{}: ", self.source)?;
        } else {
            write!(f, "{}:{}: ", self.source, self.line)?;
        }
        match (&self.kind, &self.id) {
            (Some(kind), Some(id)) => write!(f, "{kind} {id}: ")?,
            (Some(kind), None) => write!(f, "{kind}: ")?,
            (None, Some(id)) => write!(f, "record {id}: ")?,
            (None, None) => {}
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
    /// Real escalations recorded.
    pub escalations: u64,
    /// Tenants seen for the first time.
    pub tenants_created: Vec<TenantId>,
    /// Records (or whole files) skipped, in input order.
    pub rejected: Vec<Rejected>,
}

impl ImportReport {
    /// Records stored.
    pub fn imported(&self) -> u64 {
        self.accounts + self.tickets + self.heartbeats + self.escalations
    }
}

/// Why an import stopped. Bad records and unreadable files never stop it; a store that
/// refuses to write does.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ImportError(#[from] StoreError);

/// Records per transaction: large enough to amortise the commit, small enough that a crash
/// loses little work (re-import is idempotent anyway).
const BATCH: usize = 20_000;

/// Records per message from the parser thread to the writer.
const CHUNK: usize = 2_048;

/// The longest NDJSON line read; a longer one is rejected without being held in memory.
const MAX_LINE_BYTES: u64 = 1 << 20;

/// One import run over any number of sources.
///
/// Parsing runs on its own thread, one chunk ahead of the store writes, so an import uses
/// both cores: validation and SQLite cost about the same per record.
pub struct Importer<'s> {
    store: &'s mut Store,
    opts: ImportOptions,
    sources: Vec<String>,
    tenants: HashMap<String, TenantState>,
    waiting: HashMap<(RecordKind, String, String), (Location, Record)>,
    pending: Vec<(Location, Record)>,
    report: ImportReport,
    rejected: Vec<(Location, parse::Failure)>,
    progress: Option<Box<dyn FnMut(u64) + 's>>,
}

/// What the import knows about a tenant.
struct TenantState {
    /// The tenant row exists (created when its first account arrives).
    exists: bool,
    /// Ids of its accounts known to exist: all of them when `complete`, else those looked up
    /// or imported so far.
    accounts: HashSet<String>,
    /// Whether `accounts` holds every stored account (read at once for a big batch).
    complete: bool,
}

/// From this many records a batch reads all of a tenant's account ids at once; a smaller one
/// (a webhook's single ticket) looks each account up.
const BULK: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
            tenants: HashMap::new(),
            waiting: HashMap::new(),
            pending: Vec::new(),
            report: ImportReport::default(),
            rejected: Vec::new(),
            progress: None,
        }
    }

    /// Calls `f` with the number of records stored so far after every committed batch.
    pub fn with_progress(mut self, f: impl FnMut(u64) + 's) -> Importer<'s> {
        self.progress = Some(Box::new(f));
        self
    }

    /// Imports one source. `name` is how errors refer to it. A source that cannot be read to
    /// the end is reported as a rejection; what was read before stays imported.
    pub fn read(&mut self, name: &str, reader: impl BufRead + Send, format: Format) -> Result<(), ImportError> {
        let source = self.add_source(name);
        let opts = self.opts.clone();
        let outcome = std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(8);
            let parser = scope.spawn(move || {
                let mut out = Sender { tx, chunk: Vec::with_capacity(CHUNK) };
                let result = match format {
                    Format::Ndjson => parse_ndjson(source, reader, &opts, &mut out),
                    Format::Csv(kind) => parse_csv(source, reader, kind, &opts, &mut out),
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
                Ok::<(), ImportError>(())
            })();
            // Dropping the receiver stops a parser that is still going after a store error.
            drop(rx);
            let parsed = parser.join().expect("the import parser thread does not panic");
            written.map(|()| parsed)
        })?;
        if let Err(unreadable) = outcome {
            self.rejected.push((unreadable.0, unreadable.1));
        }
        self.flush()
    }

    /// Imports records a program built (a connector's pages, a webhook's issue), checked as
    /// the same records read from a file would be, without writing them out as text first.
    /// `name` is how errors refer to them; the n-th record is the source's "line" n.
    pub fn push(
        &mut self,
        name: &str,
        records: impl IntoIterator<Item = serde_json::Value>,
    ) -> Result<(), ImportError> {
        let source = self.add_source(name);
        for (n, value) in records.into_iter().enumerate() {
            let at = Location { source, line: n as u64 + 1 };
            match parse::value(&value, &self.opts) {
                Ok(record) => self.accept(at, record)?,
                Err(failure) => self.rejected.push((at, failure)),
            }
        }
        self.flush()
    }

    /// Records a source that could not be opened at all.
    pub fn unreadable(&mut self, name: &str, reason: impl Into<String>) {
        let source = self.add_source(name);
        self.rejected.push((Location { source, line: 0 }, parse::Failure::file(reason.into())));
    }

    fn add_source(&mut self, name: &str) -> usize {
        self.sources.push(name.to_owned());
        self.sources.len() - 1
    }

    fn accept(&mut self, at: Location, record: Record) -> Result<(), ImportError> {
        self.pending.push((at, record));
        if self.pending.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the pending records in one transaction; records whose account is unknown wait.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let bulk = batch.len() >= BULK;
        let writer = self.store.writer()?;
        for (at, record) in batch {
            let tenant = record.tenant();
            if !self.tenants.contains_key(tenant.as_str()) {
                let exists = writer.tenant_exists(tenant)?;
                let state = TenantState { exists, accounts: HashSet::new(), complete: false };
                self.tenants.insert(tenant.to_string(), state);
            }
            let state = self.tenants.get_mut(tenant.as_str()).expect("inserted above when missing");
            if bulk && !state.complete {
                state.accounts.extend(writer.account_ids(tenant)?);
                state.complete = true;
            }
            let known = match record.owner() {
                None => true,
                Some(account) if state.accounts.contains(account.as_str()) => true,
                Some(_) if state.complete => false,
                Some(account) => {
                    let found = writer.account_exists(tenant, account)?;
                    if found {
                        state.accounts.insert(account.to_string());
                    }
                    found
                }
            };
            if !known {
                // A later version of a waiting record replaces it.
                self.waiting.insert(record.key(), (at, record));
                continue;
            }
            // A waiting earlier version is now out of date. (Keys cost allocations: skip the
            // lookup in the common case of nothing waiting.)
            if !self.waiting.is_empty() {
                self.waiting.remove(&record.key());
            }
            match &record {
                Record::Account(a) => {
                    if !state.exists {
                        writer.ensure_tenant(&a.tenant, self.opts.now)?;
                        state.exists = true;
                        self.report.tenants_created.push(a.tenant.clone());
                    }
                    writer.upsert_account(a)?;
                    state.accounts.insert(a.id.to_string());
                    self.report.accounts += 1;
                }
                Record::Ticket(t) => {
                    writer.upsert_ticket(t)?;
                    self.report.tickets += 1;
                }
                Record::Heartbeat(h) => {
                    writer.insert_heartbeat(h)?;
                    self.report.heartbeats += 1;
                }
                Record::Escalation(e) => {
                    writer.upsert_escalation(e)?;
                    self.report.escalations += 1;
                }
            }
        }
        writer.commit()?;
        if let Some(progress) = &mut self.progress {
            progress(self.report.imported());
        }
        Ok(())
    }

    /// Finishes the import: records still waiting for their account are written if it arrived,
    /// rejected if not.
    pub fn finish(mut self) -> Result<ImportReport, ImportError> {
        self.flush()?;
        let mut waiting: Vec<(Location, Record)> = std::mem::take(&mut self.waiting).into_values().collect();
        waiting.sort_by_key(|(at, _)| *at);
        let (ready, orphans): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(_, r)| {
            let accounts = self.tenants.get(r.tenant().as_str()).map(|t| &t.accounts);
            r.owner().is_some_and(|a| accounts.is_some_and(|ids| ids.contains(a.as_str())))
        });
        self.pending = ready;
        self.flush()?;
        for (at, record) in orphans {
            self.rejected.push((at, parse::Failure::unknown_account(&record)));
        }
        self.rejected.sort_by_key(|(at, _)| *at);
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

/// Where a source stopped being readable, and why.
type Unreadable = (Location, parse::Failure);

fn parse_ndjson(
    source: usize,
    mut reader: impl BufRead,
    opts: &ImportOptions,
    out: &mut Sender,
) -> Result<(), Unreadable> {
    let mut line = Vec::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let at = Location { source, line: number + 1 };
        let read = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| (at, parse::Failure::file(e.to_string())))?;
        if read == 0 {
            return Ok(());
        }
        number += 1;
        let result = if line.len() as u64 > MAX_LINE_BYTES && line.last() != Some(&b'\n') {
            skip_rest_of_line(&mut reader).map_err(|e| (at, parse::Failure::file(e.to_string())))?;
            Err(parse::Failure::line(format!("longer than {MAX_LINE_BYTES} bytes")))
        } else {
            match std::str::from_utf8(&line) {
                // Files saved by some Windows editors start with a byte order mark.
                Ok(text) => {
                    let text = if number == 1 { text.trim_start_matches('\u{feff}') } else { text }.trim();
                    if text.is_empty() {
                        continue;
                    }
                    parse::ndjson(text, opts)
                }
                Err(e) => Err(parse::Failure::line(format!("not valid UTF-8 ({e})"))),
            }
        };
        if !out.push(parsed(at, result)) {
            return Ok(());
        }
    }
}

fn skip_rest_of_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

fn parse_csv(
    source: usize,
    reader: impl BufRead,
    kind: Option<RecordKind>,
    opts: &ImportOptions,
    out: &mut Sender,
) -> Result<(), Unreadable> {
    let whole = |reason: String| (Location { source, line: 0 }, parse::Failure::file(reason));
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.headers().map_err(|e| whole(e.to_string()))?.clone();
    let layout = parse::CsvLayout::new(&headers, kind).map_err(whole)?;
    let mut row = csv::StringRecord::new();
    loop {
        let (line, result) = match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => (row.position().map_or(0, |p| p.line()), layout.record(&row, opts)),
            Err(e) if e.is_io_error() => {
                let line = e.position().map_or(0, |p| p.line());
                return Err((Location { source, line }, parse::Failure::file(e.to_string())));
            }
            // A malformed row (bad quoting, invalid UTF-8) is one rejected record.
            Err(e) => (e.position().map_or(0, |p| p.line()), Err(parse::Failure::whole(layout.kind(), e.to_string()))),
        };
        if !out.push(parsed(Location { source, line }, result)) {
            return Ok(());
        }
    }
}
