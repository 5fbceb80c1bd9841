//! Raw rows (NDJSON objects, CSV rows) into validated [`Record`]s. The only place import input
//! is interpreted.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;
use tam_core::records::{Account, Escalation, Heartbeat, Rep, Ticket, TicketSource};
use tam_core::{AccountId, Email, FieldError, Priority, TenantId, TicketId, TicketStatus, Timestamp};

use super::{ImportOptions, Record};

/// The kinds of import record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `"record": "account"`.
    Account,
    /// `"record": "ticket"`.
    Ticket,
    /// `"record": "heartbeat"`.
    Heartbeat,
    /// `"record": "escalation"`: one that really happened.
    Escalation,
}

impl RecordKind {
    /// The name used in files and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Account => "account",
            RecordKind::Ticket => "ticket",
            RecordKind::Heartbeat => "heartbeat",
            RecordKind::Escalation => "escalation",
        }
    }

    fn parse(raw: &str) -> Option<RecordKind> {
        match raw.trim() {
            "account" | "accounts" => Some(RecordKind::Account),
            "ticket" | "tickets" => Some(RecordKind::Ticket),
            "heartbeat" | "heartbeats" => Some(RecordKind::Heartbeat),
            "escalation" | "escalations" => Some(RecordKind::Escalation),
            _ => None,
        }
    }

    /// Parses the `--kind` flag: `accounts`, `tickets`, `heartbeats` or `escalations` (singular
    /// also accepted).
    pub fn from_flag(raw: &str) -> Option<RecordKind> {
        RecordKind::parse(raw)
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A record that did not parse: as much of its identity as could be read, and the field.
#[derive(Debug)]
pub(super) struct Failure {
    pub kind: Option<RecordKind>,
    pub id: Option<String>,
    pub error: FieldError,
}

impl Failure {
    pub(super) fn whole(kind: RecordKind, reason: String) -> Failure {
        Failure { kind: Some(kind), id: None, error: FieldError::new("row", reason) }
    }

    /// The whole source could not be read (or read on).
    pub(super) fn file(reason: String) -> Failure {
        Failure { kind: None, id: None, error: FieldError::new("file", reason) }
    }

    /// The line is not a record at all.
    pub(super) fn line(reason: String) -> Failure {
        Failure { kind: None, id: None, error: FieldError::new("line", reason) }
    }

    pub(super) fn unknown_account(record: &Record) -> Failure {
        let (kind, id, tenant, account) = match record {
            Record::Ticket(t) => (RecordKind::Ticket, t.id.to_string(), &t.tenant, &t.account),
            Record::Heartbeat(h) => {
                (RecordKind::Heartbeat, heartbeat_id(h.account.as_str(), &h.at.to_string()), &h.tenant, &h.account)
            }
            Record::Account(a) => (RecordKind::Account, a.id.to_string(), &a.tenant, &a.id),
            Record::Escalation(e) => {
                (RecordKind::Escalation, heartbeat_id(e.account.as_str(), &e.at.to_string()), &e.tenant, &e.account)
            }
        };
        Failure {
            kind: Some(kind),
            id: Some(id),
            error: FieldError::new(
                "account_id",
                format!("no account {:?} in tenant {:?}", account.as_str(), tenant.as_str()),
            ),
        }
    }
}

/// How a record that is an account's at an instant (a heartbeat, an escalation) is named.
fn heartbeat_id(account: &str, at: &str) -> String {
    format!("{account}@{at}")
}

/// Every field any record kind may carry, borrowed from the input where possible.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Raw<'a> {
    #[serde(borrow)]
    record: Option<Cow<'a, str>>,
    #[serde(borrow)]
    tenant_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rep_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rep_email: Option<Cow<'a, str>>,
    #[serde(borrow)]
    rep_chat_space: Option<Cow<'a, str>>,
    #[serde(borrow)]
    contacts: Option<Vec<Cow<'a, str>>>,
    cc_contacts: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow)]
    last_heartbeat: Option<Cow<'a, str>>,
    api_call_count: Option<u64>,
    check_in_interval_days: Option<u32>,
    #[serde(borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    priority: Option<Cow<'a, str>>,
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resolved_at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Option<Cow<'a, str>>,
    #[serde(borrow)]
    note: Option<Cow<'a, str>>,
}

/// Field types, for diagnosing an object that did not deserialise.
const EXPECTED: &[(&str, Expect)] = &[
    ("record", Expect::Text),
    ("tenant_id", Expect::Text),
    ("id", Expect::Text),
    ("name", Expect::Text),
    ("rep_name", Expect::Text),
    ("rep_email", Expect::Text),
    ("rep_chat_space", Expect::Text),
    ("contacts", Expect::TextList),
    ("cc_contacts", Expect::TextList),
    ("last_heartbeat", Expect::Text),
    ("api_call_count", Expect::Count),
    ("check_in_interval_days", Expect::Count),
    ("account_id", Expect::Text),
    ("source", Expect::Text),
    ("priority", Expect::Text),
    ("status", Expect::Text),
    ("created_at", Expect::Text),
    ("updated_at", Expect::Text),
    ("resolved_at", Expect::Text),
    ("subject", Expect::Text),
    ("kind", Expect::Text),
    ("at", Expect::Text),
    ("note", Expect::Text),
];

#[derive(Clone, Copy)]
enum Expect {
    Text,
    TextList,
    Count,
}

fn describe(v: &Value) -> String {
    let text = v.to_string();
    let short: String = text.chars().take(40).collect();
    let kind = match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    if short.len() < text.len() { format!("{kind} {short}...") } else { format!("{kind} {short}") }
}

/// Parses one NDJSON line.
pub(super) fn ndjson(line: &str, opts: &ImportOptions) -> Result<Record, Failure> {
    match serde_json::from_str::<Raw<'_>>(line) {
        Ok(raw) => raw.into_record(opts),
        Err(_) => Err(diagnose(line)),
    }
}

/// Reads one record a program built (a connector's page, a webhook's issue) as it would read
/// the same record from a line of NDJSON.
pub(super) fn value(value: &Value, opts: &ImportOptions) -> Result<Record, Failure> {
    match Raw::deserialize(value) {
        Ok(raw) => raw.into_record(opts),
        Err(_) => Err(diagnose_value(value)),
    }
}

/// The slow path: the line is not a well-typed record; find the field to blame.
fn diagnose(line: &str) -> Failure {
    match serde_json::from_str(line) {
        Ok(value) => diagnose_value(&value),
        Err(e) => Failure { kind: None, id: None, error: FieldError::new("line", format!("invalid JSON: {e}")) },
    }
}

/// What is wrong with a value that is not a well-typed record.
fn diagnose_value(value: &Value) -> Failure {
    let Value::Object(map) = value else {
        return Failure {
            kind: None,
            id: None,
            error: FieldError::new("line", format!("expected a JSON object, got {}", describe(value))),
        };
    };
    let kind = map.get("record").and_then(Value::as_str).and_then(RecordKind::parse);
    let id = map.get("id").or_else(|| map.get("account_id")).and_then(Value::as_str).map(str::to_owned);
    for &(field, expect) in EXPECTED {
        let Some(v) = map.get(field) else { continue };
        let ok = match (expect, v) {
            (_, Value::Null) => true,
            (Expect::Text, Value::String(_)) => true,
            (Expect::TextList, Value::Array(items)) => items.iter().all(Value::is_string),
            (Expect::Count, Value::Number(n)) => {
                n.as_u64().is_some_and(|n| field != "check_in_interval_days" || u32::try_from(n).is_ok())
            }
            _ => false,
        };
        if !ok {
            let wanted = match expect {
                Expect::Text => "a string",
                Expect::TextList => "a list of strings",
                Expect::Count => "a non-negative whole number",
            };
            return Failure {
                kind,
                id,
                error: FieldError::new(field, format!("expected {wanted}, got {}", describe(v))),
            };
        }
    }
    Failure { kind, id, error: FieldError::new("line", "not a valid record") }
}

const MAX_NAME_CHARS: usize = 200;
const MAX_SUBJECT_CHARS: usize = 1_000;

/// Required text: present, not blank, bounded; control characters become spaces.
fn text(field: &'static str, raw: Option<&Cow<'_, str>>, max: usize) -> Result<String, FieldError> {
    optional_text(field, raw, max)?.ok_or_else(|| FieldError::missing(field))
}

fn optional_text(field: &'static str, raw: Option<&Cow<'_, str>>, max: usize) -> Result<Option<String>, FieldError> {
    let Some(raw) = raw else { return Ok(None) };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    let chars = trimmed.chars().count();
    if chars > max {
        return Err(FieldError::new(field, format!("{chars} characters is more than the {max} allowed")));
    }
    if trimmed.chars().any(char::is_control) {
        return Ok(Some(trimmed.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()));
    }
    Ok(Some(trimmed.to_owned()))
}

fn required<'r>(field: &'static str, raw: Option<&'r Cow<'_, str>>) -> Result<&'r str, FieldError> {
    raw.map(|c| c.as_ref()).filter(|s| !s.trim().is_empty()).ok_or_else(|| FieldError::missing(field))
}

fn timestamp(field: &'static str, raw: &str, opts: &ImportOptions) -> Result<Timestamp, FieldError> {
    let t: Timestamp = raw.trim().parse().map_err(|e| {
        FieldError::new(
            field,
            format!("{:?} is not an RFC 3339 timestamp ({e})", raw.chars().take(60).collect::<String>()),
        )
    })?;
    if !tam_store::in_range(t) {
        return Err(FieldError::new(field, format!("{t} is outside the years 1678..2261")));
    }
    let latest = opts.now.checked_add(opts.future_tolerance).unwrap_or(Timestamp::MAX);
    if t > latest {
        return Err(FieldError::new(field, format!("{t} is in the future (now is {})", opts.now)));
    }
    Ok(t)
}

fn optional_timestamp(
    field: &'static str,
    raw: Option<&Cow<'_, str>>,
    opts: &ImportOptions,
) -> Result<Option<Timestamp>, FieldError> {
    match raw.map(|c| c.trim()).filter(|s| !s.is_empty()) {
        Some(s) => timestamp(field, s, opts).map(Some),
        None => Ok(None),
    }
}

impl Raw<'_> {
    fn kind(&self) -> Result<RecordKind, FieldError> {
        let raw = required("record", self.record.as_ref())?;
        RecordKind::parse(raw).ok_or_else(|| {
            FieldError::new(
                "record",
                format!("unknown value {raw:?} (expected account, ticket, heartbeat or escalation)"),
            )
        })
    }

    pub(super) fn into_record(self, opts: &ImportOptions) -> Result<Record, Failure> {
        let kind =
            self.kind().map_err(|error| Failure { kind: None, id: self.id.as_deref().map(str::to_owned), error })?;
        self.as_kind(kind, opts)
    }

    fn as_kind(&self, kind: RecordKind, opts: &ImportOptions) -> Result<Record, Failure> {
        let fail = |error: FieldError| {
            let id = match kind {
                RecordKind::Heartbeat | RecordKind::Escalation => {
                    self.account_id.as_deref().map(|a| heartbeat_id(a, self.at.as_deref().unwrap_or("?")))
                }
                _ => self.id.as_deref().map(|s| s.trim().chars().take(60).collect()),
            };
            Failure { kind: Some(kind), id, error }
        };
        match kind {
            RecordKind::Account => self.account(opts).map(Record::Account),
            RecordKind::Ticket => self.ticket(opts).map(Record::Ticket),
            RecordKind::Heartbeat => self.heartbeat(opts).map(Record::Heartbeat),
            RecordKind::Escalation => self.escalation(opts).map(Record::Escalation),
        }
        .map_err(fail)
    }

    fn tenant(&self) -> Result<TenantId, FieldError> {
        TenantId::parse("tenant_id", required("tenant_id", self.tenant_id.as_ref())?)
    }

    fn account(&self, opts: &ImportOptions) -> Result<Account, FieldError> {
        let tenant = self.tenant()?;
        let id = AccountId::parse("id", required("id", self.id.as_ref())?)?;
        let name = text("name", self.name.as_ref(), MAX_NAME_CHARS)?;
        let rep = Rep {
            name: text("rep_name", self.rep_name.as_ref(), MAX_NAME_CHARS)?,
            email: Email::parse("rep_email", required("rep_email", self.rep_email.as_ref())?)?,
            chat_space: optional_text("rep_chat_space", self.rep_chat_space.as_ref(), MAX_NAME_CHARS)?,
        };
        let addresses = |field: &'static str, list: &Option<Vec<Cow<'_, str>>>| -> Result<Vec<Email>, FieldError> {
            let mut out: Vec<Email> = Vec::new();
            for raw in list.iter().flatten().filter(|c| !c.trim().is_empty()) {
                let email = Email::parse(field, raw)?;
                if !out.contains(&email) {
                    out.push(email);
                }
            }
            Ok(out)
        };
        let contacts = addresses("contacts", &self.contacts)?;
        // Someone already on To is not copied as well.
        let cc = addresses("cc_contacts", &self.cc_contacts)?.into_iter().filter(|c| !contacts.contains(c)).collect();
        let check_in_interval_days = match self.check_in_interval_days {
            None => opts.default_check_in_interval_days,
            Some(days @ 1..=366) => days,
            Some(days) => return Err(FieldError::new("check_in_interval_days", format!("{days} is not 1..=366"))),
        };
        Ok(Account {
            tenant,
            id,
            name,
            rep,
            contacts,
            cc,
            last_heartbeat: optional_timestamp("last_heartbeat", self.last_heartbeat.as_ref(), opts)?,
            api_call_count: self.api_call_count,
            check_in_interval_days,
        })
    }

    fn ticket(&self, opts: &ImportOptions) -> Result<Ticket, FieldError> {
        let tenant = self.tenant()?;
        let id = TicketId::parse("id", required("id", self.id.as_ref())?)?;
        let account = AccountId::parse("account_id", required("account_id", self.account_id.as_ref())?)?;
        let source = match self.source.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None | Some("import") => TicketSource::Import,
            Some("jira") => TicketSource::Jira,
            Some("kayako") => TicketSource::Kayako,
            Some("notion") => TicketSource::Notion,
            Some(other) => {
                return Err(FieldError::new(
                    "source",
                    format!("unknown value {other:?} (expected import, jira, kayako or notion)"),
                ));
            }
        };
        let priority = Priority::parse(required("priority", self.priority.as_ref())?, &opts.priority_names)?;
        let status = TicketStatus::parse(required("status", self.status.as_ref())?)?;
        let created_at = timestamp("created_at", required("created_at", self.created_at.as_ref())?, opts)?;
        let updated_at = optional_timestamp("updated_at", self.updated_at.as_ref(), opts)?;
        if let Some(updated) = updated_at.filter(|u| *u < created_at) {
            return Err(FieldError::new("updated_at", format!("{updated} is before created_at {created_at}")));
        }
        let resolved_at = optional_timestamp("resolved_at", self.resolved_at.as_ref(), opts)?;
        if let Some(resolved) = resolved_at {
            if resolved < created_at {
                return Err(FieldError::new("resolved_at", format!("{resolved} is before created_at {created_at}")));
            }
            if status.is_open() {
                return Err(FieldError::new(
                    "resolved_at",
                    format!("set, but the ticket is {} (a reopened ticket has no resolution time)", status.as_str()),
                ));
            }
        }
        let subject = match &self.subject {
            None => return Err(FieldError::missing("subject")),
            Some(_) => optional_text("subject", self.subject.as_ref(), MAX_SUBJECT_CHARS)?.unwrap_or_default(),
        };
        let kind = optional_text("kind", self.kind.as_ref(), 64)?.map(|k| k.to_lowercase().replace([' ', '-'], "_"));
        Ok(Ticket { tenant, id, account, source, priority, status, created_at, updated_at, resolved_at, subject, kind })
    }

    fn heartbeat(&self, opts: &ImportOptions) -> Result<Heartbeat, FieldError> {
        Ok(Heartbeat {
            tenant: self.tenant()?,
            account: AccountId::parse("account_id", required("account_id", self.account_id.as_ref())?)?,
            at: timestamp("at", required("at", self.at.as_ref())?, opts)?,
            api_call_count: self.api_call_count,
        })
    }

    fn escalation(&self, opts: &ImportOptions) -> Result<Escalation, FieldError> {
        Ok(Escalation {
            tenant: self.tenant()?,
            account: AccountId::parse("account_id", required("account_id", self.account_id.as_ref())?)?,
            at: timestamp("at", required("at", self.at.as_ref())?, opts)?,
            source: text("source", self.source.as_ref(), 64)?,
            note: optional_text("note", self.note.as_ref(), MAX_SUBJECT_CHARS)?,
        })
    }
}

/// Which CSV column holds which field, decided once from the header row.
pub(super) struct CsvLayout {
    kind: RecordKind,
    columns: Vec<(usize, &'static str)>,
}

const CSV_FIELDS: &[&str] = &[
    "tenant_id",
    "id",
    "name",
    "rep_name",
    "rep_email",
    "rep_chat_space",
    "contacts",
    "cc_contacts",
    "last_heartbeat",
    "api_call_count",
    "check_in_interval_days",
    "account_id",
    "source",
    "priority",
    "status",
    "created_at",
    "updated_at",
    "resolved_at",
    "subject",
    "kind",
    "at",
    "note",
];

impl CsvLayout {
    pub(super) fn new(headers: &csv::StringRecord, kind: Option<RecordKind>) -> Result<CsvLayout, String> {
        let names: Vec<&str> = headers.iter().map(str::trim).collect();
        let has = |n: &str| names.contains(&n);
        let kind = match kind {
            Some(kind) => kind,
            None if has("priority") => RecordKind::Ticket,
            None if has("rep_email") => RecordKind::Account,
            None if has("at") && has("source") => RecordKind::Escalation,
            None if has("at") => RecordKind::Heartbeat,
            None => {
                return Err(
                    "cannot tell the record kind from the header row; pass --kind accounts|tickets|heartbeats|escalations"
                        .to_owned(),
                );
            }
        };
        let columns = names
            .iter()
            .enumerate()
            .filter_map(|(i, n)| CSV_FIELDS.iter().find(|f| *f == n).map(|f| (i, *f)))
            .collect();
        Ok(CsvLayout { kind, columns })
    }

    pub(super) fn kind(&self) -> RecordKind {
        self.kind
    }

    pub(super) fn record(&self, row: &csv::StringRecord, opts: &ImportOptions) -> Result<Record, Failure> {
        let mut raw = Raw::default();
        let mut bad_number = None;
        for &(i, field) in &self.columns {
            let Some(cell) = row.get(i).map(str::trim).filter(|c| !c.is_empty()) else { continue };
            // `null` in an optional time column means the same as in NDJSON: none.
            if matches!(field, "last_heartbeat" | "updated_at" | "resolved_at") && cell.eq_ignore_ascii_case("null") {
                continue;
            }
            let cell = Some(Cow::Borrowed(cell));
            match field {
                "tenant_id" => raw.tenant_id = cell,
                "id" => raw.id = cell,
                "name" => raw.name = cell,
                "rep_name" => raw.rep_name = cell,
                "rep_email" => raw.rep_email = cell,
                "rep_chat_space" => raw.rep_chat_space = cell,
                "contacts" | "cc_contacts" => {
                    let list = cell.map(|c| match c {
                        Cow::Borrowed(s) => s.split(';').map(|p| Cow::Borrowed(p.trim())).collect(),
                        Cow::Owned(s) => s.split(';').map(|p| Cow::Owned(p.trim().to_owned())).collect(),
                    });
                    if field == "contacts" { raw.contacts = list } else { raw.cc_contacts = list }
                }
                "last_heartbeat" => raw.last_heartbeat = cell,
                "api_call_count" | "check_in_interval_days" => {
                    let text = cell.as_deref().unwrap_or_default();
                    match text.parse::<u64>() {
                        Ok(n) if field == "api_call_count" => raw.api_call_count = Some(n),
                        Ok(n) => raw.check_in_interval_days = Some(u32::try_from(n).unwrap_or(u32::MAX)),
                        Err(_) => bad_number = bad_number.or(Some((field, text.to_owned()))),
                    }
                }
                "account_id" => raw.account_id = cell,
                "source" => raw.source = cell,
                "priority" => raw.priority = cell,
                "status" => raw.status = cell,
                "created_at" => raw.created_at = cell,
                "updated_at" => raw.updated_at = cell,
                "resolved_at" => raw.resolved_at = cell,
                "subject" => raw.subject = cell,
                "kind" => raw.kind = cell,
                "at" => raw.at = cell,
                "note" => raw.note = cell,
                _ => {}
            }
        }
        if raw.subject.is_none() && self.kind == RecordKind::Ticket && self.columns.iter().any(|(_, f)| *f == "subject")
        {
            // An empty subject cell is an empty subject, not a missing column.
            raw.subject = Some(Cow::Borrowed(""));
        }
        if let Some((field, text)) = bad_number {
            let id = raw.id.as_deref().map(str::to_owned);
            return Err(Failure {
                kind: Some(self.kind),
                id,
                error: FieldError::new(field, format!("{text:?} is not a non-negative whole number")),
            });
        }
        raw.as_kind(self.kind, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tam_core::{PriorityNames, SignedDuration};

    fn opts() -> ImportOptions {
        ImportOptions {
            priority_names: PriorityNames::default(),
            now: "2026-04-01T00:00:00Z".parse().unwrap(),
            future_tolerance: SignedDuration::from_mins(15),
            default_check_in_interval_days: 30,
        }
    }

    fn error(line: &str) -> String {
        let f = ndjson(line, &opts()).unwrap_err();
        format!("{} {}: {}", f.kind.map_or("-", RecordKind::as_str), f.id.as_deref().unwrap_or("-"), f.error)
    }

    const TICKET: &str = r#"{"record":"ticket","tenant_id":"t","id":"T-1","account_id":"a","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"s"}"#;

    #[test]
    fn a_good_ticket_parses() {
        let Record::Ticket(t) = ndjson(TICKET, &opts()).unwrap() else { panic!("not a ticket") };
        assert_eq!((t.id.as_str(), t.priority, t.status), ("T-1", Priority::P1, TicketStatus::Open));
    }

    #[test]
    fn errors_name_the_kind_the_id_and_the_field() {
        let cases = [
            (TICKET.replace("\"P1\"", "\"Urgentish\""), "ticket T-1: field priority: unknown value \"Urgentish\""),
            (TICKET.replace("\"open\"", "\"done\""), "ticket T-1: field status: unknown value \"done\""),
            (TICKET.replace("2026-03-01T00:00:00Z", "yesterday"), "ticket T-1: field created_at: \"yesterday\" is not an RFC 3339"),
            (TICKET.replace("2026-03-01T00:00:00Z", "2027-01-01T00:00:00Z"), "ticket T-1: field created_at: 2027-01-01T00:00:00Z is in the future"),
            (TICKET.replace("\"T-1\"", "17"), "ticket -: field id: expected a string, got a number 17"),
            (TICKET.replace(",\"subject\":\"s\"", ""), "ticket T-1: field subject: missing (required)"),
            (TICKET.replace("\"ticket\"", "\"invoice\""), "- T-1: field record: unknown value \"invoice\""),
            ("{not json".to_owned(), "- -: field line: invalid JSON"),
            ("[1,2]".to_owned(), "- -: field line: expected a JSON object, got a list [1,2]"),
            (
                r#"{"record":"account","tenant_id":"t","id":"a","name":"A","rep_name":"R","rep_email":"nope","contacts":[]}"#.to_owned(),
                "account a: field rep_email: \"nope\" is not an email address",
            ),
            (
                r#"{"record":"account","tenant_id":"t","id":"a","name":"A","rep_name":"R","rep_email":"r@v.example","api_call_count":-3}"#.to_owned(),
                "account a: field api_call_count: expected a non-negative whole number, got a number -3",
            ),
            (
                format!(r#"{{"record":"ticket","tenant_id":"t","id":"T-2","account_id":"a","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"{}"}}"#, "x".repeat(1001)),
                "ticket T-2: field subject: 1001 characters is more than the 1000 allowed",
            ),
            (
                r#"{"record":"heartbeat","tenant_id":"t","account_id":"a","at":"soon"}"#.to_owned(),
                "heartbeat a@soon: field at: \"soon\" is not an RFC 3339",
            ),
        ];
        for (line, want) in cases {
            let got = error(&line);
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn updated_before_created_is_rejected() {
        let line = TICKET.replace(",\"subject\"", ",\"updated_at\":\"2026-02-01T00:00:00Z\",\"subject\"");
        assert!(error(&line).contains("field updated_at: 2026-02-01T00:00:00Z is before created_at"));
    }
}
