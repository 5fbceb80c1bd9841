use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::field::{FieldError, quote};

/// Ticket priority after normalisation; `P1` is the most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    /// Critical: production down or data at risk.
    P1,
    /// High.
    P2,
    /// Normal.
    P3,
    /// Low.
    P4,
}

impl Priority {
    /// All priorities, most urgent first.
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    /// 1 for `P1` ... 4 for `P4`: the stored form.
    pub fn level(self) -> u8 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
        }
    }

    /// The inverse of [`Priority::level`].
    pub fn from_level(level: u8) -> Option<Priority> {
        Priority::ALL.get(usize::from(level).wrapping_sub(1)).copied()
    }

    /// `"P1"` ... `"P4"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }

    /// Parses `P1`..`P4` (any case), then any source name in `names` (case-insensitive).
    pub fn parse(raw: &str, names: &PriorityNames) -> Result<Priority, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::missing("priority"));
        }
        if let Some(p) = Priority::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(trimmed)) {
            return Ok(p);
        }
        names.get(trimmed).ok_or_else(|| {
            FieldError::new(
                "priority",
                format!(
                    "unknown value {} (expected P1..P4 or a name mapped in the [priorities] section of tam.toml: {})",
                    quote(trimmed),
                    names.describe()
                ),
            )
        })
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Source priority names (Jira, Kayako, ...) and the priority each maps to. Case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityNames(BTreeMap<String, Priority>);

impl PriorityNames {
    /// A mapping from `(name, priority)` pairs; later pairs win.
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, Priority)>) -> PriorityNames {
        PriorityNames(pairs.into_iter().map(|(name, p)| (name.trim().to_ascii_lowercase(), p)).collect())
    }

    /// The priority a source name maps to, if any.
    pub fn get(&self, name: &str) -> Option<Priority> {
        self.0.get(&name.trim().to_ascii_lowercase()).copied()
    }

    /// Adds or replaces mappings.
    pub fn extend<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, Priority)>) {
        self.0.extend(pairs.into_iter().map(|(name, p)| (name.trim().to_ascii_lowercase(), p)));
    }

    fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none configured".to_owned();
        }
        self.0.iter().map(|(name, p)| format!("{name}={p}")).collect::<Vec<_>>().join(", ")
    }
}

impl Default for PriorityNames {
    /// Jira Cloud's default scheme, common Jira Server names, and Kayako's default labels.
    fn default() -> PriorityNames {
        use Priority::*;
        PriorityNames::new([
            ("highest", P1),
            ("blocker", P1),
            ("critical", P1),
            ("urgent", P1),
            ("high", P2),
            ("major", P2),
            ("medium", P3),
            ("normal", P3),
            ("low", P4),
            ("lowest", P4),
            ("minor", P4),
            ("trivial", P4),
        ])
    }
}

/// Ticket status after normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TicketStatus {
    /// Waiting on the vendor.
    Open,
    /// Waiting on the customer or a third party; still open for scoring.
    Pending,
    /// Fixed, awaiting confirmation or closure.
    Resolved,
    /// Done.
    Closed,
}

impl TicketStatus {
    /// Open and pending tickets count against health; resolved and closed never do.
    pub fn is_open(self) -> bool {
        matches!(self, TicketStatus::Open | TicketStatus::Pending)
    }

    /// The stored and printed form.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Open => "open",
            TicketStatus::Pending => "pending",
            TicketStatus::Resolved => "resolved",
            TicketStatus::Closed => "closed",
        }
    }

    /// Parses `open|pending|resolved|closed`, any case.
    pub fn parse(raw: &str) -> Result<TicketStatus, FieldError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(FieldError::missing("status"));
        }
        [TicketStatus::Open, TicketStatus::Pending, TicketStatus::Resolved, TicketStatus::Closed]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| {
                FieldError::new(
                    "status",
                    format!("unknown value {} (expected open, pending, resolved or closed)", quote(trimmed)),
                )
            })
    }
}

/// Health status bands of the score. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Score at or above the green threshold (70 by default).
    Green,
    /// Between the amber and green thresholds (40..69 by default).
    Amber,
    /// Below the amber threshold (< 40 by default).
    Red,
}

impl HealthStatus {
    /// `"green"`, `"amber"` or `"red"`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Green => "green",
            HealthStatus::Amber => "amber",
            HealthStatus::Red => "red",
        }
    }

    /// The inverse of [`HealthStatus::as_str`].
    pub fn parse(raw: &str) -> Option<HealthStatus> {
        match raw {
            "green" => Some(HealthStatus::Green),
            "amber" => Some(HealthStatus::Amber),
            "red" => Some(HealthStatus::Red),
            _ => None,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Direction of the score against the snapshot about a week earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trend {
    /// Up by at least the trend delta (5 by default).
    Improving,
    /// Within the trend delta either way.
    Stable,
    /// Down by at least the trend delta.
    Declining,
    /// No snapshot from about a week earlier to compare with.
    Unknown,
}

impl Trend {
    /// The printed and stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Trend::Improving => "improving",
            Trend::Stable => "stable",
            Trend::Declining => "declining",
            Trend::Unknown => "unknown",
        }
    }

    /// The inverse of [`Trend::as_str`].
    pub fn parse(raw: &str) -> Option<Trend> {
        [Trend::Improving, Trend::Stable, Trend::Declining, Trend::Unknown].into_iter().find(|t| t.as_str() == raw)
    }
}

impl fmt::Display for Trend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_canonical_and_mapped_names() {
        let names = PriorityNames::default();
        assert_eq!(Priority::parse("p2", &names), Ok(Priority::P2));
        assert_eq!(Priority::parse(" Highest ", &names), Ok(Priority::P1));
        assert_eq!(Priority::parse("Normal", &names), Ok(Priority::P3));
        let err = Priority::parse("Whenever", &PriorityNames::new([("Sev1", Priority::P1)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"field priority: unknown value "Whenever" (expected P1..P4 or a name mapped in the [priorities] section of tam.toml: sev1=P1)"#
        );
        assert_eq!(Priority::parse("", &names), Err(FieldError::missing("priority")));
    }

    #[test]
    fn priority_levels_round_trip() {
        for p in Priority::ALL {
            assert_eq!(Priority::from_level(p.level()), Some(p));
        }
        assert_eq!(Priority::from_level(0), None);
        assert_eq!(Priority::from_level(5), None);
    }

    #[test]
    fn only_open_and_pending_are_open() {
        let open: Vec<_> = ["open", "PENDING", "resolved", "closed"]
            .into_iter()
            .map(|s| TicketStatus::parse(s).unwrap().is_open())
            .collect();
        assert_eq!(open, [true, true, false, false]);
        assert!(TicketStatus::parse("done").is_err());
    }
}
