//! The facts a model may state, each with an id it cites, and the check that a draft states
//! nothing else: no ticket, count, duration, score, version or date that its facts do not hold.
//!
//! A fact licenses what its own text says: the same reader ([`claims`]) that finds what an
//! answer states finds what a fact states, so a fact line and the check cannot disagree.
//! Durations are compared at the answer's own unit (216 hours is "9 days", and "8 days" and
//! "9 days" both describe 8.8 days); counts, points, versions and dates must match.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use jiff::civil::{Date, Weekday};
use tam_core::comms::Brief;
use tam_core::scoring::Evidence;

use crate::prompt::{fence, id};

/// One fact: what the prompt shows, and what a paragraph citing it may state.
#[derive(Debug, Clone)]
pub struct Fact {
    /// `H`, `D1`, `T1`, ...: what an answer cites.
    pub id: String,
    /// The fact as the prompt shows it, untrusted text fenced.
    pub line: String,
    /// Ticket ids it names, as the prompt shows them.
    pub tickets: Vec<String>,
    licence: Licence,
}

/// Every fact of one brief.
#[derive(Debug, Clone)]
pub struct Facts {
    facts: Vec<Fact>,
    /// What any paragraph may state without citing: the names of the customer and the rep.
    always: Licence,
    /// Prefixes of the brief's ticket ids (`SUP`), so `SUP-99` reads as a ticket.
    prefixes: BTreeSet<String>,
}

/// Most items of one list the facts hold; the rest are counted.
pub const MAX_ITEMS: usize = 25;

impl Facts {
    /// The facts of `b`, in the order the prompt lists them.
    pub fn of(b: &Brief) -> Facts {
        let mut facts = Vec::new();
        let mut add = |id: String, line: String, tickets: Vec<String>| {
            facts.push(Fact { id, line, tickets, licence: Licence::default() })
        };
        let urgent = b
            .open_tickets
            .iter()
            .filter(|t| matches!(t.priority, tam_core::Priority::P1 | tam_core::Priority::P2))
            .count();
        add(
            "H".to_owned(),
            format!(
                "Health on {}: {}/100 ({} points taken off), {}, trend {}; {} open ({} open).",
                b.as_of.strftime("%Y-%m-%d"),
                b.score,
                100 - u32::from(b.score.min(100)),
                b.status,
                b.trend,
                tickets(b.open_tickets.len()),
                plural(urgent, "P1/P2 ticket")
            ),
            Vec::new(),
        );
        for (i, d) in b.deductions.iter().enumerate() {
            let (why, named) = match &d.evidence {
                Evidence::AgedTickets { tickets: aged, after_hours, .. } => {
                    let ids: Vec<String> = aged.iter().map(|t| id(t.id.as_str())).collect();
                    let line = format!(
                        "{} open longer than {after_hours} hours ({}): {}",
                        plural(aged.len(), "P1/P2 ticket"),
                        days(f64::from(*after_hours)),
                        ids.join(", ")
                    );
                    (line, ids)
                }
                Evidence::OpenVolume { open_tickets, free_tickets, .. } => (
                    format!(
                        "{} open, more than the {} that cost nothing",
                        tickets(*open_tickets as usize),
                        tickets(*free_tickets as usize)
                    ),
                    Vec::new(),
                ),
                Evidence::Silence { hours_silent, last_heartbeat, .. } => (
                    format!(
                        "no integration heartbeat for {hours_silent} hours ({}), the last on {}",
                        days(*hours_silent),
                        last_heartbeat.strftime("%Y-%m-%d")
                    ),
                    Vec::new(),
                ),
            };
            add(format!("D{}", i + 1), format!("minus {} points ({}): {why}", d.points, d.rule.as_str()), named);
        }
        for (i, t) in b.open_tickets.iter().take(MAX_ITEMS).enumerate() {
            let shown = id(t.id.as_str());
            let opened = b.as_of.checked_sub(tam_core::SignedDuration::from_secs_f64(t.age_hours * 3600.0)).ok();
            add(
                format!("T{}", i + 1),
                format!(
                    "{shown}: {}, {}, open {} hours ({}){}: {}",
                    t.priority,
                    t.status.as_str(),
                    t.age_hours.round(),
                    days(t.age_hours),
                    opened.map(|o| format!(" since {}", o.strftime("%Y-%m-%d"))).unwrap_or_default(),
                    fence("subject", &t.subject)
                ),
                vec![shown],
            );
        }
        if let Some(r) = &b.release {
            let reported: Vec<String> = b.reported.iter().take(MAX_ITEMS).map(|t| id(t.id.as_str())).collect();
            let mut line = format!(
                "Release {} of {}: {}",
                fence("version", &r.version),
                fence("date", &r.date),
                plural(r.changes.len(), "change")
            );
            if !reported.is_empty() {
                let _ = write!(
                    line,
                    "; it fixes {} this customer reported: {}",
                    tickets(b.reported.len()),
                    reported.join(", ")
                );
            }
            add("R".to_owned(), line, reported);
            for (i, c) in r.changes.iter().take(MAX_ITEMS).enumerate() {
                let fixed: Vec<String> = c.tickets.iter().take(MAX_ITEMS).map(|t| id(t)).collect();
                let mut line = format!(
                    "{} {} (area {})",
                    fence("title", &c.title),
                    fence("description", &c.description),
                    fence("area", &c.area)
                );
                if !fixed.is_empty() {
                    let _ = write!(line, "; fixes {}", fixed.join(", "));
                }
                add(format!("C{}", i + 1), line, fixed);
            }
        }
        for (i, item) in b.roadmap.iter().take(MAX_ITEMS).enumerate() {
            add(
                format!("M{}", i + 1),
                format!(
                    "{} {} (area {}), planned for {}",
                    fence("title", &item.title),
                    fence("description", &item.description),
                    fence("area", &item.area),
                    fence("quarter", &item.quarter)
                ),
                Vec::new(),
            );
        }
        if let Some(p) = &b.period {
            let span = p.to.duration_since(p.from).as_hours() as f64;
            let mut line = format!(
                "Period {} to {} ({}): {} opened, {} resolved",
                p.from.strftime("%Y-%m-%d"),
                p.to.strftime("%Y-%m-%d"),
                days(span),
                tickets(p.opened as usize),
                tickets(p.resolved.len())
            );
            if let Some(h) = p.mean_hours_to_resolve {
                let _ = write!(line, "; mean time to resolve {} hours ({})", h.round(), days(h));
            }
            add("P".to_owned(), line, Vec::new());
            if let (Some(first), Some(last)) = (p.history.first(), p.history.last()) {
                let scores: Vec<String> =
                    p.history.iter().map(|h| format!("{} {}", h.as_of.strftime("%Y-%m-%d"), h.score)).collect();
                let change = i32::from(last.score) - i32::from(first.score);
                let (low, high) = p.history.iter().fold((u8::MAX, 0), |(lo, hi), h| (lo.min(h.score), hi.max(h.score)));
                add(
                    "S".to_owned(),
                    format!(
                        "Scores over the period: {}; from {} to {} points ({} {} points), lowest {}, highest {}",
                        scores.join(", "),
                        first.score,
                        last.score,
                        if change < 0 { "down" } else { "up" },
                        change.abs(),
                        low,
                        high
                    ),
                    Vec::new(),
                );
            }
            for (i, t) in p.resolved.iter().take(MAX_ITEMS).enumerate() {
                let shown = id(t.id.as_str());
                add(
                    format!("X{}", i + 1),
                    format!("{shown}: {}, resolved in the period: {}", t.priority, fence("subject", &t.subject)),
                    vec![shown],
                );
            }
        }
        let profile = &b.profile;
        for (i, (label, items, name)) in [
            ("features in use", &profile.features, "feature"),
            ("integrations", &profile.integrations, "integration"),
            ("opportunities they asked for", &profile.opportunities, "opportunity"),
        ]
        .into_iter()
        .filter(|(_, items, _)| !items.is_empty())
        .enumerate()
        {
            let list: Vec<String> = items.iter().take(MAX_ITEMS).map(|item| fence(name, item)).collect();
            add(format!("U{}", i + 1), format!("{label}: {}", list.join(", ")), Vec::new());
        }
        for fact in &mut facts {
            fact.licence = Licence::of(&fact.line);
            // A numeric id (`4521`) reads as a number in the line; it is a ticket all the same.
            fact.licence.tickets.extend(fact.tickets.iter().map(|t| t.to_ascii_lowercase()));
        }
        let prefixes = facts
            .iter()
            .flat_map(|f| &f.tickets)
            .filter_map(|t| t.split_once('-').map(|(p, _)| p.to_uppercase()))
            .filter(|p| !p.is_empty() && !p.chars().all(|c| c.is_ascii_digit()))
            .collect();
        let mut always = Licence::of(&format!("{} {} {}", b.account_name, b.rep_name, b.rep_email.as_str()));
        // A score is out of 100 in any paragraph ("50 out of 100").
        always.numbers.push(100.0);
        Facts { facts, always, prefixes }
    }

    /// Every fact, in order.
    pub fn all(&self) -> &[Fact] {
        &self.facts
    }

    /// The fact with id `id`.
    pub fn get(&self, id: &str) -> Option<&Fact> {
        self.facts.iter().find(|f| f.id.eq_ignore_ascii_case(id.trim()))
    }

    /// The facts naming ticket `id` (in any case): what citing a ticket by its id cites.
    pub fn naming_ticket(&self, id: &str) -> Vec<&Fact> {
        let id = id.trim();
        self.facts.iter().filter(|f| f.tickets.iter().any(|t| t.eq_ignore_ascii_case(id))).collect()
    }

    /// Checks one paragraph citing `cited` (ids known to exist): each thing it states must be
    /// in a cited fact. `Err` says what, and where it would have come from.
    pub fn check(&self, text: &str, cited: &[&Fact]) -> Result<(), String> {
        let cited_tickets: BTreeSet<&str> = cited.iter().flat_map(|f| f.tickets.iter().map(String::as_str)).collect();
        for claim in claims(text, Reading::Answer { prefixes: &self.prefixes }) {
            let held = |l: &Licence| l.holds(&claim.kind, cited_tickets.len());
            if held(&self.always) || cited.iter().any(|f| held(&f.licence)) {
                continue;
            }
            let elsewhere: Vec<&str> = self.facts.iter().filter(|f| held(&f.licence)).map(|f| f.id.as_str()).collect();
            return Err(if elsewhere.is_empty() {
                format!("{} {}, which no fact holds", claim.kind.noun(), claim.shown)
            } else if cited.is_empty() {
                format!("{} {} but cites no fact; it is in {}", claim.kind.noun(), claim.shown, elsewhere.join(", "))
            } else {
                let ids: Vec<&str> = cited.iter().map(|f| f.id.as_str()).collect();
                format!(
                    "{} {}, which the facts it cites ({}) do not hold; it is in {}",
                    claim.kind.noun(),
                    claim.shown,
                    ids.join(", "),
                    elsewhere.join(", ")
                )
            });
        }
        Ok(())
    }

    /// Checks text that cites nothing but may state any fact (a subject line).
    pub fn check_any(&self, text: &str) -> Result<(), String> {
        let all: Vec<&Fact> = self.facts.iter().collect();
        self.check(text, &all)
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn tickets(n: usize) -> String {
    plural(n, "ticket")
}

/// `9 days`, `8.8 days`: hours as days, to a tenth.
fn days(hours: f64) -> String {
    let d = (hours / 2.4).round() / 10.0;
    if d == 1.0 {
        "1 day".to_owned()
    } else if d.fract() == 0.0 {
        format!("{d:.0} days")
    } else {
        format!("{d:.1} days")
    }
}

/// What the facts hold, by kind.
#[derive(Debug, Clone, Default)]
struct Licence {
    tickets: BTreeSet<String>,
    counts: Vec<(f64, u8)>,
    hours: Vec<f64>,
    points: Vec<f64>,
    numbers: Vec<f64>,
    versions: BTreeSet<String>,
    dates: Vec<Date>,
    /// Months a fact names without a day ("the April release").
    months: Vec<i8>,
    weekdays: Vec<Weekday>,
    times: BTreeSet<String>,
}

impl Licence {
    fn of(text: &str) -> Licence {
        let mut l = Licence::default();
        // Every number a fact states may be repeated bare ("a score of 42", a subject's "504").
        for claim in claims(text, Reading::Fact) {
            match claim.kind {
                Kind::Ticket(t) => {
                    l.tickets.insert(t);
                }
                Kind::Count(n, what) => {
                    l.counts.push((n, what));
                    l.numbers.push(n);
                }
                Kind::Duration { hours, unit } => {
                    l.hours.push(hours);
                    l.numbers.push(hours / unit);
                }
                Kind::Points(n) => {
                    l.points.push(n);
                    l.numbers.push(n);
                }
                Kind::Number(n) => l.numbers.push(n),
                Kind::Version(v) => {
                    l.numbers.extend(v.parse::<f64>().ok());
                    l.versions.insert(v);
                }
                Kind::Date(candidates) => {
                    l.numbers.extend(candidates.iter().filter_map(|c| c.year.map(f64::from)));
                    l.dates.extend(candidates.iter().filter_map(|c| c.date()));
                    l.months.extend(candidates.iter().filter(|c| c.day.is_none()).map(|c| c.month));
                }
                Kind::Weekday(w) => l.weekdays.push(w),
                Kind::Time(t) => {
                    l.times.insert(t);
                }
            }
        }
        l
    }

    fn holds(&self, kind: &Kind, cited_tickets: usize) -> bool {
        let has = |values: &[f64], n: f64| values.iter().any(|v| (v - n).abs() < 1e-9);
        match kind {
            Kind::Ticket(t) => self.tickets.contains(t),
            // "2 tickets" may be any count of 2; "2 urgent tickets" a count of urgent ones, and
            // "2 open tickets" of the open ones, not of the urgent ones among them.
            Kind::Count(n, what) => {
                let alike = |held: u8| {
                    *what == 0 || ((held & NARROWING) == (what & NARROWING) && (what & !NARROWING) & !held == 0)
                };
                self.counts.iter().any(|(m, held)| (m - n).abs() < 1e-9 && alike(*held))
                    || (*n >= 1.0 && *what == 0 && has(&[cited_tickets as f64], *n))
            }
            // In the answer's unit, rounded either way: 8.8 days may be "8 days" or "9 days".
            Kind::Duration { hours, unit } => self.hours.iter().any(|h| {
                let (said, held) = (hours / unit, h / unit);
                said >= held.floor() - 1e-9 && said <= held.ceil() + 1e-9
            }),
            // A score is often written bare ("from 80 to 50"), then called points.
            Kind::Points(n) => has(&self.points, *n) || has(&self.numbers, *n),
            Kind::Number(n) => has(&self.numbers, *n),
            Kind::Version(v) => {
                self.versions.contains(v)
                    || (v.matches('.').count() == 1 && v.parse().is_ok_and(|n| has(&self.numbers, n)))
            }
            Kind::Date(candidates) => candidates.iter().any(|c| {
                self.dates.iter().any(|d| c.matches(*d)) || (c.day.is_none() && self.months.contains(&c.month))
            }),
            // Only a weekday a fact names: that a held day was a Friday does not make "on
            // Friday" about it (the next Friday is what a reader hears).
            Kind::Weekday(w) => self.weekdays.contains(w),
            Kind::Time(t) => self.times.contains(t),
        }
    }
}

/// Something a text states that must come from the facts.
#[derive(Debug, Clone, PartialEq)]
struct Claim {
    kind: Kind,
    /// As the text wrote it.
    shown: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// A ticket id, lower case.
    Ticket(String),
    /// A number of tickets, and which ones ([`QUALIFIERS`], as bits).
    Count(f64, u8),
    /// A span, in hours, with the unit it was written in (the tolerance).
    Duration {
        hours: f64,
        unit: f64,
    },
    /// Points of the score.
    Points(f64),
    /// A number without a unit `tam` knows.
    Number(f64),
    /// A version, without a leading `v`.
    Version(String),
    /// A day, each reading the text allows (3/4 is March 4 or April 3).
    Date(Vec<DayOf>),
    Weekday(Weekday),
    /// A time of day, as written.
    Time(String),
}

impl Kind {
    /// "names the ticket", as a refusal says it.
    fn noun(&self) -> &'static str {
        match self {
            Kind::Ticket(_) => "names the ticket",
            Kind::Count(..) => "counts",
            Kind::Duration { .. } => "states the time",
            Kind::Points(_) => "states the points",
            Kind::Number(_) => "states the number",
            Kind::Version(_) => "names the version",
            Kind::Date(_) | Kind::Weekday(_) => "names the date",
            Kind::Time(_) => "names the time",
        }
    }
}

/// A day as text gives it: the year may be left out.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DayOf {
    year: Option<i16>,
    month: i8,
    day: Option<i8>,
}

impl DayOf {
    fn date(&self) -> Option<Date> {
        Date::new(self.year?, self.month, self.day?).ok()
    }

    fn matches(&self, d: Date) -> bool {
        self.year.is_none_or(|y| y == d.year()) && self.month == d.month() && self.day.is_none_or(|x| x == d.day())
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

const WEEKDAYS: [(&str, Weekday); 7] = [
    ("Monday", Weekday::Monday),
    ("Tuesday", Weekday::Tuesday),
    ("Wednesday", Weekday::Wednesday),
    ("Thursday", Weekday::Thursday),
    ("Friday", Weekday::Friday),
    ("Saturday", Weekday::Saturday),
    ("Sunday", Weekday::Sunday),
];

/// Numbers written as words; only counted before a unit ("two tickets"), since "one" alone is
/// mostly not a number.
const WORDS: [&str; 21] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// Words between a number and its unit that do not change what is counted ("3 open P1 tickets").
const BETWEEN: &[&str] = &[
    "open",
    "urgent",
    "new",
    "more",
    "other",
    "critical",
    "high",
    "priority",
    "high-priority",
    "support",
    "p1",
    "p2",
    "p3",
    "p4",
    "p1/p2",
    "unresolved",
    "outstanding",
    "resolved",
    "closed",
    "active",
    "full",
    "business",
    "working",
    "calendar",
    "consecutive",
    "straight",
    "remaining",
    "additional",
    "separate",
    "pending",
    "recent",
    "older",
    "related",
    "reported",
    "aged",
    "total",
    "of",
    "your",
    "the",
    "those",
    "these",
    "such",
    "whole",
    "fixed",
    "raised",
    "filed",
];

/// Words that say which tickets are counted, each group one bit: open, urgent, resolved, newly
/// opened, reported.
const QUALIFIERS: [&[&str]; 5] = [
    &["open", "unresolved", "outstanding", "pending", "active"],
    &["urgent", "critical", "p1", "p2", "p1/p2", "high-priority"],
    &["resolved", "closed", "fixed"],
    &["opened", "new", "raised", "filed"],
    &["reported"],
];

/// The qualifiers that pick some of the tickets a count is about (all but "open"): a count
/// must name the same ones as the fact it repeats.
const NARROWING: u8 = !1;

fn qualifiers(words: &[&str]) -> u8 {
    let mut bits = 0;
    for w in words {
        let w = w.to_ascii_lowercase();
        for (bit, group) in QUALIFIERS.iter().enumerate() {
            if group.contains(&w.as_str()) {
                bits |= 1 << bit;
            }
        }
    }
    bits
}

/// Upper-case prefixes that are standards, not ticket keys (`UTF-8`, `SHA-256`).
const STANDARDS: &[&str] =
    &["UTF", "SHA", "ISO", "RFC", "TLS", "SSL", "HTTP", "AES", "RSA", "MD", "UTC", "GMT", "IPV", "X"];

/// The unit a word names: `Count`, hours per unit, `Points`, or a unit that is not checked.
enum Unit {
    Count,
    Hours(f64),
    Points,
    Unchecked,
}

fn unit(word: &str) -> Option<Unit> {
    let w = word.to_ascii_lowercase();
    Some(match w.as_str() {
        "ticket" | "tickets" | "issue" | "issues" | "case" | "cases" | "incident" | "incidents" | "problem"
        | "problems" | "request" | "requests" | "bug" | "bugs" => Unit::Count,
        "hour" | "hours" | "hr" | "hrs" | "h" => Unit::Hours(1.0),
        "day" | "days" => Unit::Hours(24.0),
        "week" | "weeks" => Unit::Hours(168.0),
        "month" | "months" => Unit::Hours(730.0),
        "point" | "points" | "pts" => Unit::Points,
        "minute" | "minutes" | "min" | "mins" | "second" | "seconds" => Unit::Unchecked,
        _ => return None,
    })
}

fn month(word: &str) -> Option<i8> {
    let w = word.strip_suffix('.').unwrap_or(word);
    if !w.starts_with(|c: char| c.is_ascii_uppercase()) {
        return None;
    }
    let lower = w.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| {
            *m == lower || (lower.len() == 3 && m.starts_with(&lower)) || (lower == "sept" && *m == "september")
        })
        .and_then(|i| i8::try_from(i + 1).ok())
}

/// `29`, `29th` as a day of the month.
fn day_of_month(word: &str) -> Option<i8> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse::<i8>().ok().filter(|d| (1..=31).contains(d))
}

fn year(word: &str) -> Option<i16> {
    (word.len() == 4).then(|| word.parse::<i16>().ok()).flatten().filter(|y| (1900..=2200).contains(y))
}

fn number(word: &str) -> Option<f64> {
    let w = word.strip_suffix('%').unwrap_or(word);
    if w.is_empty()
        || !w.chars().all(|c| c.is_ascii_digit() || c == '.')
        || w.starts_with('.')
        || w.matches('.').count() > 1
    {
        return None;
    }
    w.parse().ok()
}

/// The words of a text: letters, digits and the marks that hold an id, a date or a version
/// together (`SUP-1`, `2026-03-29`, `4.2.1`, `3/29`, `10:00`), edge punctuation trimmed.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || "-./:#%".contains(c)))
        .map(|w| w.trim_matches(|c: char| "-./:".contains(c)))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whose text is read: a fact's own line (every hyphenated id in it is a ticket), or an answer
/// (an id is a ticket when it has a key of the brief's tickets, or looks like a ticket key).
#[derive(Clone, Copy)]
enum Reading<'a> {
    Fact,
    Answer { prefixes: &'a BTreeSet<String> },
}

/// `text` without the numbers of a numbered list (`1.` or `2)` opening a line).
fn unnumbered(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
            match trimmed[digits..].chars().next() {
                Some('.' | ')') if digits > 0 && trimmed[digits + 1..].starts_with(' ') => &trimmed[digits + 1..],
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Words that end what a count's qualifiers can be ("3 tickets and we resolved 2").
const CLAUSE: &[&str] = &["and", "but", "or", "you", "we", "they", "i", "which", "that", "of", "to", "for", "while"];

/// What `text` states that must come from facts.
fn claims(text: &str, reading: Reading<'_>) -> Vec<Claim> {
    let text = unnumbered(text);
    let words = words(&text);
    let mut out = Vec::new();
    let mut i = 0;
    let claim = |kind: Kind, shown: &[&str]| Claim { kind, shown: shown.join(" ") };
    while i < words.len() {
        let w = words[i];
        let next = words.get(i + 1).copied();
        // A month name and a day, with or without a year: "March 29", "Mar 29th, 2026".
        if let Some(m) = month(w) {
            if let Some(d) = next.and_then(day_of_month) {
                let y = words.get(i + 2).and_then(|w| year(w));
                let used = if y.is_some() { 3 } else { 2 };
                out.push(claim(Kind::Date(vec![DayOf { year: y, month: m, day: Some(d) }]), &words[i..i + used]));
                i += used;
                continue;
            }
            if let Some(y) = next.and_then(year) {
                out.push(claim(Kind::Date(vec![DayOf { year: Some(y), month: m, day: None }]), &words[i..i + 2]));
                i += 2;
                continue;
            }
        }
        // "29 March", "29th of March 2026".
        if let Some(d) = day_of_month(w) {
            let (skip, m) = match (next, words.get(i + 2)) {
                (Some(n), _) if month(n).is_some() => (1, month(n)),
                (Some("of"), Some(n)) if month(n).is_some() => (2, month(n)),
                _ => (0, None),
            };
            if let Some(m) = m {
                let y = words.get(i + skip + 1).and_then(|w| year(w));
                let used = skip + 1 + usize::from(y.is_some());
                out.push(claim(Kind::Date(vec![DayOf { year: y, month: m, day: Some(d) }]), &words[i..i + used]));
                i += used;
                continue;
            }
        }
        if let Some(&(_, day)) = WEEKDAYS.iter().find(|(name, _)| *name == w || w.strip_suffix("s") == Some(name)) {
            // "Friday, March 20", "2026-03-20 (a Friday)": the date beside it is what is checked.
            let dated = |k: usize| {
                words.get(k).is_some_and(|n| {
                    month(n).is_some() || shaped(n, reading).is_some_and(|k| matches!(k, Kind::Date(_)))
                })
            };
            if ![i + 1, i + 2, i.wrapping_sub(1), i.wrapping_sub(2)].into_iter().any(dated) {
                out.push(claim(Kind::Weekday(day), &[w]));
            }
        } else if let Some(m) = month(w).filter(|_| w != "May") {
            // A month alone ("by the end of April"): some held day must be in it.
            out.push(claim(Kind::Date(vec![DayOf { year: None, month: m, day: None }]), &[w]));
        } else if let Some(kind) = shaped(w, reading) {
            out.push(claim(kind, &[w]));
        } else if let Some((n, hyphenated)) = numeric(w) {
            // The unit: glued on ("72-hour"), or the next word after a few that do not change
            // what is counted ("3 open P1 tickets"); `/100` is a score.
            let mut unit_at = None;
            if hyphenated.is_none() {
                let mut j = i + 1;
                while j < words.len() && j <= i + 3 {
                    if unit(words[j]).is_some() {
                        unit_at = Some(j);
                        break;
                    }
                    if !BETWEEN.contains(&words[j].to_ascii_lowercase().as_str()) {
                        break;
                    }
                    j += 1;
                }
            }
            let unit_word = hyphenated.or_else(|| unit_at.map(|j| words[j]));
            let shown = match unit_at {
                Some(j) => words[i..=j].join(" "),
                None => w.to_owned(),
            };
            let is_word = WORDS.contains(&w.to_ascii_lowercase().as_str());
            let after_version_word = i > 0
                && ["version", "release", "v"].contains(&words[i - 1].to_ascii_lowercase().as_str())
                && w.contains('.');
            let kinds: Vec<Kind> = match unit_word.and_then(unit) {
                _ if after_version_word => vec![Kind::Version(w.to_owned())],
                Some(Unit::Count) => {
                    // What is counted: the words before the unit and the few after it
                    // ("3 tickets are still open"), up to the next number or clause.
                    let after = unit_at.map_or(i + 1, |j| j + 1);
                    let end = (after..(after + 3).min(words.len()))
                        .find(|&k| {
                            numeric(words[k]).is_some() || CLAUSE.contains(&words[k].to_ascii_lowercase().as_str())
                        })
                        .unwrap_or((after + 3).min(words.len()));
                    let what = qualifiers(&words[i + 1..end]);
                    n.iter().map(|&n| Kind::Count(n, what)).collect()
                }
                Some(Unit::Hours(per)) => n.iter().map(|&n| Kind::Duration { hours: n * per, unit: per }).collect(),
                Some(Unit::Points) => n.iter().map(|&n| Kind::Points(n)).collect(),
                Some(Unit::Unchecked) => Vec::new(),
                None if is_word => Vec::new(),
                None => n.iter().map(|&n| Kind::Number(n)).collect(),
            };
            out.extend(kinds.into_iter().map(|kind| Claim { kind, shown: shown.clone() }));
            if let Some(j) = unit_at {
                i = j;
            }
        }
        i += 1;
    }
    out
}

/// A number, a range (`2-3`) or a number word, and a unit glued on with a hyphen (`72-hour`).
fn numeric(w: &str) -> Option<(Vec<f64>, Option<&str>)> {
    if let Some(i) = WORDS.iter().position(|x| x.eq_ignore_ascii_case(w)) {
        return Some((vec![i as f64], None));
    }
    if let Some(n) = number(w) {
        return Some((vec![n], None));
    }
    let (head, tail) = w.split_once('-')?;
    let n = number(head)?;
    if let Some(m) = number(tail) {
        return Some((vec![n, m], None));
    }
    unit(tail).map(|_| (vec![n], Some(tail)))
}

/// Words with a shape: a ticket id, a date, a version, a score out of 100, a time.
fn shaped(w: &str, reading: Reading<'_>) -> Option<Kind> {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    // `#123`: a ticket by number (`#1` is a rank).
    if let Some(n) = w.strip_prefix('#') {
        return (digits(n) && n.len() > 1).then(|| Kind::Ticket(n.to_owned()));
    }
    // `2026-03-29`, `2026-03-29T07:00:00Z`, `2026-03`.
    let parts: Vec<&str> = w.get(..10.min(w.len())).unwrap_or(w).split('-').collect();
    if parts.len() >= 2 && parts[0].len() == 4 && parts.iter().all(|p| digits(p)) {
        let (y, m) = (year(parts[0])?, parts[1].parse::<i8>().ok().filter(|m| (1..=12).contains(m))?);
        let d = parts.get(2).and_then(|d| d.parse::<i8>().ok());
        return Some(Kind::Date(vec![DayOf { year: Some(y), month: m, day: d }]));
    }
    // A ticket id: letters first, digits last, hyphens between (`SUP-1`, `ABC-123-4567`).
    if let Some((prefix, _)) = w.split_once('-')
        && w.starts_with(|c: char| c.is_ascii_alphabetic())
        && digits(w.rsplit('-').next().unwrap_or_default())
        && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        let key = prefix.to_ascii_uppercase();
        let looks_like_key = prefix.len() >= 2 && prefix.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
        let ticket = match reading {
            Reading::Fact => true,
            Reading::Answer { prefixes } => {
                prefixes.contains(&key) || (looks_like_key && !STANDARDS.contains(&key.as_str()))
            }
        };
        return ticket.then(|| Kind::Ticket(w.to_ascii_lowercase()));
    }
    // `3/29`, `29/03/2026`: either order is a reading; `2026/04/14` is year first; `50/100` is
    // a score; `24/7` is not a date.
    if let Some((a, b)) = w.split_once('/')
        && digits(a)
    {
        if b == "100" {
            return a.parse().ok().map(Kind::Points);
        }
        if let (Some(y), Some((m, d))) = (year(a), b.split_once('/')) {
            let (m, d) = (m.parse::<i8>().ok()?, d.parse::<i8>().ok()?);
            return ((1..=12).contains(&m) && (1..=31).contains(&d))
                .then(|| Kind::Date(vec![DayOf { year: Some(y), month: m, day: Some(d) }]));
        }
        let (b, y) = match b.split_once('/') {
            Some((b, y)) => (b, Some(y)),
            None => (b, None),
        };
        if !digits(b) || w == "24/7" {
            return None;
        }
        let year = match y {
            Some(y) => Some(year(y).or_else(|| y.parse::<i16>().ok().filter(|y| *y < 100).map(|y| 2000 + y))?),
            None => None,
        };
        let (a, b) = (a.parse::<i8>().ok()?, b.parse::<i8>().ok()?);
        let readings: Vec<DayOf> = [(a, b), (b, a)]
            .into_iter()
            .filter(|(m, d)| (1..=12).contains(m) && (1..=31).contains(d))
            .map(|(month, day)| DayOf { year, month, day: Some(day) })
            .collect();
        return (!readings.is_empty()).then_some(Kind::Date(readings));
    }
    // `10:00`.
    if let Some((h, m)) = w.split_once(':')
        && digits(h)
        && digits(m)
    {
        return Some(Kind::Time(w.to_owned()));
    }
    // `v4.2`, `4.2.1`; `4.2` is a version only without a unit after it (see `claims`).
    let bare = w.strip_prefix(['v', 'V']).filter(|r| r.starts_with(|c: char| c.is_ascii_digit())).unwrap_or(w);
    let dots = bare.matches('.').count();
    if bare.split('.').all(digits) && (dots >= 2 || (dots >= 1 && bare.len() < w.len())) {
        return Some(Kind::Version(bare.to_owned()));
    }
    None
}

#[cfg(test)]
mod tests;
