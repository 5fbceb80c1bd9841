//! The health score (SPEC section 3): start at 100, subtract capped deductions, clamp.
//!
//! Everything here is a pure function of the account's signals, the scan instant `as_of` and
//! the tenant's [`ScoringConfig`]. Every deduction carries the evidence behind it, so a score
//! can always be explained without re-reading the store.

use serde::{Deserialize, Serialize};

use crate::field::FieldError;
use crate::{HealthStatus, Priority, SignedDuration, TicketId, TicketStatus, Timestamp, Trend};

const SECONDS_PER_HOUR: i64 = 3_600;

/// Thresholds, points and caps of the three rules, the status bands and the trend. Configurable
/// per tenant; the defaults are the SPEC's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// An open P1/P2 ticket is aged when its age is strictly greater than this.
    pub aged_p1_p2_after_hours: u32,
    /// Points per aged P1/P2 ticket.
    pub aged_p1_p2_points: u32,
    /// Most points the aged rule can take.
    pub aged_p1_p2_cap: u32,
    /// Open tickets (any priority) that cost nothing.
    pub open_volume_free_tickets: u32,
    /// Points per open ticket beyond the free ones.
    pub open_volume_points: u32,
    /// Most points the volume rule can take.
    pub open_volume_cap: u32,
    /// Silence strictly longer than this costs `heartbeat_silence_points`.
    pub heartbeat_silence_after_hours: u32,
    /// Points for a silence past `heartbeat_silence_after_hours`.
    pub heartbeat_silence_points: u32,
    /// Silence strictly longer than this costs `heartbeat_silence_severe_points`.
    pub heartbeat_silence_severe_after_hours: u32,
    /// Points for a silence past `heartbeat_silence_severe_after_hours`.
    pub heartbeat_silence_severe_points: u32,
    /// Most points the silence rule can take.
    pub heartbeat_silence_cap: u32,
    /// Lowest score that is green.
    pub green_min_score: u32,
    /// Lowest score that is amber; anything below is red.
    pub amber_min_score: u32,
    /// The trend compares with the snapshot this many days earlier.
    pub trend_lookback_days: u32,
    /// How far from exactly `trend_lookback_days` earlier a snapshot may be and still count.
    pub trend_tolerance_days: u32,
    /// Score change (either way) that makes a trend improving or declining.
    pub trend_min_delta: u32,
}

impl Default for ScoringConfig {
    fn default() -> ScoringConfig {
        ScoringConfig {
            aged_p1_p2_after_hours: 72,
            aged_p1_p2_points: 20,
            aged_p1_p2_cap: 60,
            open_volume_free_tickets: 5,
            open_volume_points: 5,
            open_volume_cap: 25,
            heartbeat_silence_after_hours: 72,
            heartbeat_silence_points: 15,
            heartbeat_silence_severe_after_hours: 144,
            heartbeat_silence_severe_points: 30,
            heartbeat_silence_cap: 30,
            green_min_score: 70,
            amber_min_score: 40,
            trend_lookback_days: 7,
            trend_tolerance_days: 3,
            trend_min_delta: 5,
        }
    }
}

impl ScoringConfig {
    /// Checks that the bands and thresholds are ordered; names the first offending option.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.green_min_score > 100 {
            return Err(FieldError::new("green_min_score", "must be at most 100"));
        }
        if self.amber_min_score > self.green_min_score {
            return Err(FieldError::new("amber_min_score", "must not be above green_min_score"));
        }
        if self.heartbeat_silence_severe_after_hours < self.heartbeat_silence_after_hours {
            return Err(FieldError::new(
                "heartbeat_silence_severe_after_hours",
                "must not be below heartbeat_silence_after_hours",
            ));
        }
        if self.trend_lookback_days == 0 {
            // A zero lookback would compare a scan with itself on a re-run.
            return Err(FieldError::new("trend_lookback_days", "must be at least 1"));
        }
        if self.trend_tolerance_days >= self.trend_lookback_days {
            return Err(FieldError::new("trend_tolerance_days", "must be below trend_lookback_days"));
        }
        Ok(())
    }

    /// The status band of a score.
    pub fn status(&self, score: u8) -> HealthStatus {
        let score = u32::from(score);
        if score >= self.green_min_score {
            HealthStatus::Green
        } else if score >= self.amber_min_score {
            HealthStatus::Amber
        } else {
            HealthStatus::Red
        }
    }
}

/// A ticket as the score sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSignal {
    /// Source ticket id, quoted in the evidence.
    pub id: TicketId,
    /// Normalised priority.
    pub priority: Priority,
    /// Current status; only open and pending tickets count.
    pub status: TicketStatus,
    /// When the ticket was opened; its age at `as_of` is `as_of - created_at`.
    pub created_at: Timestamp,
}

/// Everything the score of one account depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountSignals {
    /// The account's tickets; closed ones may be included and are ignored.
    pub tickets: Vec<TicketSignal>,
    /// The last heartbeat at or before `as_of`; `None` means never monitored.
    pub last_heartbeat: Option<Timestamp>,
}

/// The three rules, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Open P1/P2 tickets older than the threshold.
    AgedP1P2,
    /// Too many open tickets.
    OpenVolume,
    /// A monitored integration stopped sending heartbeats.
    HeartbeatSilence,
}

impl Rule {
    /// Every rule, in the order of their discriminants.
    pub const ALL: [Rule; 3] = [Rule::AgedP1P2, Rule::OpenVolume, Rule::HeartbeatSilence];

    /// `"aged_p1_p2"`, `"open_volume"` or `"heartbeat_silence"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::AgedP1P2 => "aged_p1_p2",
            Rule::OpenVolume => "open_volume",
            Rule::HeartbeatSilence => "heartbeat_silence",
        }
    }

    /// The inverse of [`Rule::as_str`].
    pub fn parse(raw: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    /// The rule in a few words, for people.
    pub fn words(self) -> &'static str {
        match self {
            Rule::AgedP1P2 => "aged P1/P2 tickets",
            Rule::OpenVolume => "too many open tickets",
            Rule::HeartbeatSilence => "heartbeat silence",
        }
    }
}

/// One aged ticket, as evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgedTicket {
    /// Ticket id.
    pub id: TicketId,
    /// P1 or P2.
    pub priority: Priority,
    /// Age at `as_of`, in hours, to one decimal.
    pub age_hours: f64,
}

/// Why a rule took its points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evidence {
    /// `aged_p1_p2`: the aged tickets, oldest first.
    AgedTickets {
        /// The tickets that counted.
        tickets: Vec<AgedTicket>,
        /// The age threshold they exceeded.
        after_hours: u32,
        /// Points before the cap.
        uncapped_points: u32,
    },
    /// `open_volume`: how many tickets were open and which.
    OpenVolume {
        /// Open tickets at `as_of`.
        open_tickets: u32,
        /// How many were free.
        free_tickets: u32,
        /// Every open ticket, most urgent and oldest first.
        ticket_ids: Vec<TicketId>,
        /// Points before the cap.
        uncapped_points: u32,
    },
    /// `heartbeat_silence`: when the integration was last heard from.
    Silence {
        /// The last heartbeat.
        last_heartbeat: Timestamp,
        /// Hours between it and `as_of`, to one decimal.
        hours_silent: f64,
        /// The threshold that was exceeded.
        after_hours: u32,
    },
}

/// Points taken by one rule, with the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deduction {
    /// Which rule.
    pub rule: Rule,
    /// Points taken, after the cap.
    pub points: u32,
    /// Why.
    pub evidence: Evidence,
}

impl Deduction {
    /// The deduction in a few words with its points, for a list: "3 P1/P2 tickets older than
    /// 3 days, -60".
    pub fn headline(&self) -> String {
        let span = |hours: f64| {
            if hours >= 48.0 { format!("{} days", (hours / 24.0).floor()) } else { format!("{} h", hours.floor()) }
        };
        let what = match &self.evidence {
            Evidence::AgedTickets { tickets, after_hours, .. } => {
                let n = tickets.len();
                format!(
                    "{n} P1/P2 ticket{} older than {}",
                    if n == 1 { "" } else { "s" },
                    span(f64::from(*after_hours))
                )
            }
            Evidence::OpenVolume { open_tickets, free_tickets, .. } => {
                format!(
                    "{open_tickets} open tickets, {} over {free_tickets}",
                    open_tickets.saturating_sub(*free_tickets)
                )
            }
            Evidence::Silence { hours_silent, .. } => format!("no heartbeat for {}", span(*hours_silent)),
        };
        format!("{what}, -{}", self.points)
    }

    /// One deduction in words a rep can repeat to a customer.
    pub fn explain(&self) -> String {
        let d = self;
        match &d.evidence {
            Evidence::AgedTickets { tickets, after_hours, uncapped_points } => {
                let list: Vec<String> =
                    tickets.iter().map(|t| format!("{} ({}, open {} h)", t.id, t.priority, t.age_hours)).collect();
                let capped = if *uncapped_points > d.points {
                    format!(", capped from {uncapped_points}")
                } else {
                    String::new()
                };
                format!(
                    "aged_p1_p2: {} open P1/P2 ticket(s) older than {after_hours} h{capped}: {}",
                    tickets.len(),
                    list.join(", ")
                )
            }
            Evidence::OpenVolume { open_tickets, free_tickets, ticket_ids, uncapped_points } => {
                let capped = if *uncapped_points > d.points {
                    format!(", capped from {uncapped_points}")
                } else {
                    String::new()
                };
                let ids: Vec<&str> = ticket_ids.iter().map(|t| t.as_str()).collect();
                format!(
                    "open_volume: {open_tickets} open tickets, {} more than the {free_tickets} free{capped}: {}",
                    open_tickets.saturating_sub(*free_tickets),
                    ids.join(", ")
                )
            }
            Evidence::Silence { last_heartbeat, hours_silent, after_hours } => format!(
                "heartbeat_silence: no heartbeat for {hours_silent} h (more than {after_hours} h); last one at {last_heartbeat}"
            ),
        }
    }
}

/// The score of one account at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// 0..=100.
    pub score: u8,
    /// The band of `score`.
    pub status: HealthStatus,
    /// Rules that took points, in rule order. Rules that took nothing are absent.
    pub deductions: Vec<Deduction>,
}

fn hours_to_one_decimal(span: SignedDuration) -> f64 {
    // Integer rounding first, so the value (and its JSON text) never depends on float noise.
    let tenths = (span.as_secs() * 10 + SECONDS_PER_HOUR / 2).div_euclid(SECONDS_PER_HOUR);
    tenths as f64 / 10.0
}

fn hours(h: u32) -> SignedDuration {
    SignedDuration::from_hours(i64::from(h))
}

/// Scores one account at `as_of`.
///
/// Tickets opened after `as_of` did not exist yet and are ignored; a heartbeat after `as_of`
/// means no silence. Ticket order in `signals` does not matter: evidence is sorted.
pub fn score(signals: &AccountSignals, as_of: Timestamp, cfg: &ScoringConfig) -> Health {
    let mut open: Vec<&TicketSignal> =
        signals.tickets.iter().filter(|t| t.status.is_open() && t.created_at <= as_of).collect();
    open.sort_by(|a, b| (a.priority, a.created_at, &a.id).cmp(&(b.priority, b.created_at, &b.id)));

    let mut deductions = Vec::with_capacity(3);

    let aged_after = hours(cfg.aged_p1_p2_after_hours);
    let mut aged: Vec<AgedTicket> = open
        .iter()
        .filter(|t| matches!(t.priority, Priority::P1 | Priority::P2))
        .map(|t| (t, as_of.duration_since(t.created_at)))
        .filter(|&(_, age)| age > aged_after)
        .map(|(t, age)| AgedTicket { id: t.id.clone(), priority: t.priority, age_hours: hours_to_one_decimal(age) })
        .collect();
    if !aged.is_empty() {
        aged.sort_by(|a, b| b.age_hours.total_cmp(&a.age_hours).then_with(|| a.id.cmp(&b.id)));
        let uncapped = saturating_points(aged.len(), cfg.aged_p1_p2_points);
        push(&mut deductions, Rule::AgedP1P2, uncapped.min(cfg.aged_p1_p2_cap), || Evidence::AgedTickets {
            tickets: aged,
            after_hours: cfg.aged_p1_p2_after_hours,
            uncapped_points: uncapped,
        });
    }

    let free = usize::try_from(cfg.open_volume_free_tickets).unwrap_or(usize::MAX);
    if open.len() > free {
        let uncapped = saturating_points(open.len() - free, cfg.open_volume_points);
        push(&mut deductions, Rule::OpenVolume, uncapped.min(cfg.open_volume_cap), || Evidence::OpenVolume {
            open_tickets: u32::try_from(open.len()).unwrap_or(u32::MAX),
            free_tickets: cfg.open_volume_free_tickets,
            ticket_ids: open.iter().map(|t| t.id.clone()).collect(),
            uncapped_points: uncapped,
        });
    }

    if let Some(last) = signals.last_heartbeat {
        let silent = as_of.duration_since(last);
        let hit = if silent > hours(cfg.heartbeat_silence_severe_after_hours) {
            Some((cfg.heartbeat_silence_severe_points, cfg.heartbeat_silence_severe_after_hours))
        } else if silent > hours(cfg.heartbeat_silence_after_hours) {
            Some((cfg.heartbeat_silence_points, cfg.heartbeat_silence_after_hours))
        } else {
            None
        };
        if let Some((points, after_hours)) = hit {
            push(&mut deductions, Rule::HeartbeatSilence, points.min(cfg.heartbeat_silence_cap), || {
                Evidence::Silence { last_heartbeat: last, hours_silent: hours_to_one_decimal(silent), after_hours }
            });
        }
    }

    let taken: u64 = deductions.iter().map(|d| u64::from(d.points)).sum();
    let score = u8::try_from(100u64.saturating_sub(taken)).expect("100 minus anything non-negative fits in u8");
    Health { score, status: cfg.status(score), deductions }
}

fn saturating_points(count: usize, points_each: u32) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX).saturating_mul(points_each)
}

/// A rule whose points are capped at zero took nothing and is left out of the breakdown.
fn push(deductions: &mut Vec<Deduction>, rule: Rule, points: u32, evidence: impl FnOnce() -> Evidence) {
    if points > 0 {
        deductions.push(Deduction { rule, points, evidence: evidence() });
    }
}

/// The window in which an earlier snapshot counts for the trend: `(earliest, target, latest)`.
pub fn trend_window(as_of: Timestamp, cfg: &ScoringConfig) -> (Timestamp, Timestamp, Timestamp) {
    let at = |days: u32| as_of.checked_sub(hours(days.saturating_mul(24))).unwrap_or(Timestamp::MIN);
    let lookback = cfg.trend_lookback_days;
    (
        at(lookback.saturating_add(cfg.trend_tolerance_days)),
        at(lookback),
        at(lookback.saturating_sub(cfg.trend_tolerance_days)),
    )
}

/// Picks the baseline for the trend among earlier `(as_of, score)` snapshots: the one closest to
/// exactly `trend_lookback_days` before `as_of`, within the tolerance; the earlier one on a tie.
pub fn trend_baseline(earlier: &[(Timestamp, u8)], as_of: Timestamp, cfg: &ScoringConfig) -> Option<u8> {
    let (lo, target, hi) = trend_window(as_of, cfg);
    earlier
        .iter()
        .filter(|(at, _)| *at >= lo && *at <= hi)
        .min_by_key(|(at, _)| (at.duration_since(target).abs(), *at))
        .map(|&(_, score)| score)
}

/// Compares a score with its baseline from about a week earlier.
pub fn trend(score: u8, baseline: Option<u8>, cfg: &ScoringConfig) -> Trend {
    let Some(baseline) = baseline else { return Trend::Unknown };
    let delta = i64::from(score) - i64::from(baseline);
    let min = i64::from(cfg.trend_min_delta);
    if delta >= min {
        Trend::Improving
    } else if delta <= -min {
        Trend::Declining
    } else {
        Trend::Stable
    }
}

#[cfg(test)]
mod tests;
