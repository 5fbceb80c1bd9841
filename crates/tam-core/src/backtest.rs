//! The score's rules tested against what really happened: the daily scan replayed over an
//! account's history, and how often its alerts came before a real escalation.
//!
//! Pure: the caller reads the history and picks the days; nothing here reads a clock or the
//! store. The replay is incremental over the days (tickets enter as they open and leave as
//! they are resolved), so a year of days costs a year of small steps, not a year of scans.

use crate::escalation::{AlertCause, EscalationConfig, Previous, decide};
use crate::scoring::ScoringConfig;
use crate::{Priority, SignedDuration, Timestamp};

/// A ticket as the replay sees it: open from `created_at` until `resolved_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenSpan {
    /// Its priority.
    pub priority: Priority,
    /// When it opened.
    pub created_at: Timestamp,
    /// When it was resolved; `None` while it is open.
    pub resolved_at: Option<Timestamp>,
}

impl OpenSpan {
    /// Whether it is open at `t`: opened by then and not resolved by then.
    pub fn open_at(&self, t: Timestamp) -> bool {
        self.created_at <= t && self.resolved_at.is_none_or(|r| r > t)
    }
}

/// One account's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountHistory {
    /// Its id.
    pub id: String,
    /// Its rep's email.
    pub rep: String,
    /// Its tickets, by opening time.
    pub tickets: Vec<OpenSpan>,
    /// Its heartbeats, in time order.
    pub heartbeats: Vec<Timestamp>,
}

/// A set of rules to replay: the score's and the escalation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// What the report calls it.
    pub name: String,
    /// The score.
    pub scoring: ScoringConfig,
    /// When to escalate and alert.
    pub escalation: EscalationConfig,
}

/// The score of an account whose open tickets are `open` and whose last heartbeat is `last`,
/// at `t`: [`crate::scoring::score`]'s number without its evidence (a test holds them equal).
pub fn score_at(open: &[OpenSpan], last: Option<Timestamp>, t: Timestamp, cfg: &ScoringConfig) -> u8 {
    let hours = |h: u32| SignedDuration::from_hours(i64::from(h));
    let aged_after = hours(cfg.aged_p1_p2_after_hours);
    let mut aged = 0u32;
    let mut count = 0u32;
    for span in open.iter().filter(|s| s.open_at(t)) {
        count += 1;
        if matches!(span.priority, Priority::P1 | Priority::P2) && t.duration_since(span.created_at) > aged_after {
            aged += 1;
        }
    }
    let mut taken = u64::from(aged.saturating_mul(cfg.aged_p1_p2_points).min(cfg.aged_p1_p2_cap));
    if count > cfg.open_volume_free_tickets {
        let over = count - cfg.open_volume_free_tickets;
        taken += u64::from(over.saturating_mul(cfg.open_volume_points).min(cfg.open_volume_cap));
    }
    if let Some(last) = last {
        let silent = t.duration_since(last);
        let points = if silent > hours(cfg.heartbeat_silence_severe_after_hours) {
            cfg.heartbeat_silence_severe_points
        } else if silent > hours(cfg.heartbeat_silence_after_hours) {
            cfg.heartbeat_silence_points
        } else {
            0
        };
        taken += u64::from(points.min(cfg.heartbeat_silence_cap));
    }
    u8::try_from(100u64.saturating_sub(taken)).unwrap_or(0)
}

/// Replays `account`'s scans at each of `days` (in order) with `rules`, carrying the
/// escalation state from day to day as the store does; pushes the index of each day whose
/// scan alerts the rep of something new (a new episode, or one that worsened). Cool-down
/// reminders are not alerts here: they repeat news.
pub fn alert_days(account: &AccountHistory, days: &[Timestamp], rules: &RuleSet, out: &mut Vec<u32>) {
    let mut open: Vec<OpenSpan> = Vec::new();
    let mut next_ticket = 0;
    let mut next_beat = 0;
    let mut last_beat = None;
    let mut previous: Option<Previous> = None;
    for (i, &day) in days.iter().enumerate() {
        while let Some(span) = account.tickets.get(next_ticket).filter(|s| s.created_at <= day) {
            open.push(*span);
            next_ticket += 1;
        }
        open.retain(|s| s.open_at(day));
        while let Some(&beat) = account.heartbeats.get(next_beat).filter(|b| **b <= day) {
            last_beat = Some(beat);
            next_beat += 1;
        }
        let score = score_at(&open, last_beat, day, &rules.scoring);
        let status = rules.scoring.status(score);
        let decision = decide(score, status, previous.as_ref(), day, &rules.escalation);
        if matches!(decision.alert, Some(AlertCause::New | AlertCause::Worsened)) {
            out.push(u32::try_from(i).unwrap_or(u32::MAX));
        }
        previous = Some(Previous { status, episode: decision.episode });
    }
}

/// What a set of rules would have done over the window, against what happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Alerts in the window (account-days).
    pub alerts: u64,
    /// Alerts followed by a real escalation of that account within the horizon.
    pub true_alerts: u64,
    /// Real escalations in the window.
    pub escalations: u64,
    /// Real escalations with an alert of that account within the horizon before them.
    pub caught: u64,
    /// `true_alerts / alerts`; `None` without alerts.
    pub precision: Option<f64>,
    /// `caught / escalations`; `None` without escalations.
    pub recall: Option<f64>,
    /// For each caught escalation, days from the first alert in its horizon to it, sorted.
    pub lead_days: Vec<f64>,
    /// The median of `lead_days`.
    pub lead_median: Option<f64>,
    /// The 90th percentile of `lead_days`, interpolated between the nearest values.
    pub lead_p90: Option<f64>,
    /// Alerts per rep per week of the window; `None` without reps.
    pub alerts_per_rep_week: Option<f64>,
}

/// The window a report covers and how it judges alerts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judging {
    /// The first scan of the window, as an index into the replayed days (the ones before set
    /// the state up; their alerts count for nothing).
    pub first_counted: usize,
    /// Escalations at or after this count.
    pub from: Timestamp,
    /// Escalations before this count.
    pub until: Timestamp,
    /// How long before an escalation an alert foresaw it.
    pub horizon: SignedDuration,
    /// Reps of the tenant.
    pub reps: usize,
    /// The window's length in weeks.
    pub weeks: f64,
}

/// Judges each account's alert days (indices into `days`) against its real escalations (each
/// account's, in time order).
pub fn judge(alerts: &[Vec<u32>], escalations: &[Vec<Timestamp>], days: &[Timestamp], j: &Judging) -> Report {
    let mut r = Report {
        alerts: 0,
        true_alerts: 0,
        escalations: 0,
        caught: 0,
        precision: None,
        recall: None,
        lead_days: Vec::new(),
        lead_median: None,
        lead_p90: None,
        alerts_per_rep_week: None,
    };
    let none = Vec::new();
    for (account, alert_days) in alerts.iter().enumerate() {
        let happened = escalations.get(account).unwrap_or(&none);
        for &d in alert_days {
            let Some(&day) = days.get(d as usize) else { continue };
            if (d as usize) < j.first_counted {
                continue;
            }
            r.alerts += 1;
            // Escalated within (day, day + horizon]?
            let end = day.checked_add(j.horizon).unwrap_or(Timestamp::MAX);
            if happened.iter().any(|&at| at > day && at <= end) {
                r.true_alerts += 1;
            }
        }
        for &at in happened.iter().filter(|&&at| at >= j.from && at < j.until) {
            r.escalations += 1;
            let start = at.checked_sub(j.horizon).unwrap_or(Timestamp::MIN);
            // The first alert of the window in [at - horizon, at): the days replayed before the
            // window set the state up, their alerts are not the window's.
            let first = alert_days
                .iter()
                .filter(|&&d| d as usize >= j.first_counted)
                .filter_map(|&d| days.get(d as usize))
                .find(|&&day| day >= start && day < at);
            if let Some(&first) = first {
                r.caught += 1;
                r.lead_days.push(at.duration_since(first).as_secs_f64() / 86_400.0);
            }
        }
    }
    r.lead_days.sort_by(f64::total_cmp);
    r.precision = ratio(r.true_alerts, r.alerts);
    r.recall = ratio(r.caught, r.escalations);
    r.lead_median = quantile(&r.lead_days, 0.5);
    r.lead_p90 = quantile(&r.lead_days, 0.9);
    r.alerts_per_rep_week = (j.reps > 0 && j.weeks > 0.0).then(|| r.alerts as f64 / j.reps as f64 / j.weeks);
    r
}

fn ratio(n: u64, of: u64) -> Option<f64> {
    (of > 0).then(|| n as f64 / of as f64)
}

/// The `p` quantile of sorted `xs`, interpolated linearly between the two nearest values (as
/// NumPy's `percentile` and a spreadsheet's `PERCENTILE.INC`): the median is the middle
/// value, or the mean of the middle two.
fn quantile(xs: &[f64], p: f64) -> Option<f64> {
    let last = xs.len().checked_sub(1)?;
    let at = p * last as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    Some(xs[lo] + (xs[hi.min(last)] - xs[lo]) * (at - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scoring::{AccountSignals, TicketSignal, score};
    use crate::{TicketId, TicketStatus};
    use proptest::prelude::*;

    fn t(hours: i64) -> Timestamp {
        Timestamp::from_second(1_774_767_600 + hours * 3_600).unwrap()
    }

    fn days(n: i64) -> Vec<Timestamp> {
        (0..n).map(|d| t(d * 24)).collect()
    }

    fn rules() -> RuleSet {
        RuleSet { name: "current".into(), scoring: ScoringConfig::default(), escalation: EscalationConfig::default() }
    }

    proptest! {
        /// The replay's number is the scan's.
        #[test]
        fn the_replays_score_is_the_scans(
            spans in proptest::collection::vec((1u8..=4, 0i64..400, proptest::option::of(0i64..400)), 0..12),
            beat in proptest::option::of(0i64..400),
            at in 0i64..500,
        ) {
            let open: Vec<OpenSpan> = spans.iter().map(|&(p, c, r)| OpenSpan {
                priority: Priority::from_level(p).unwrap(),
                created_at: t(c),
                resolved_at: r.map(|r| t(c + r)),
            }).collect();
            let signals = AccountSignals {
                tickets: open.iter().enumerate().filter(|(_, s)| s.open_at(t(at))).map(|(i, s)| TicketSignal {
                    id: TicketId::parse("id", &format!("T{i}")).unwrap(),
                    priority: s.priority,
                    status: TicketStatus::Open,
                    created_at: s.created_at,
                }).collect(),
                last_heartbeat: beat.map(t).filter(|b| *b <= t(at)),
            };
            let cfg = ScoringConfig::default();
            prop_assert_eq!(score_at(&open, signals.last_heartbeat, t(at), &cfg), score(&signals, t(at), &cfg).score);
        }
    }

    #[test]
    fn an_account_alerts_when_its_tickets_age_and_again_only_when_worse() {
        // Two P1s opened on day 0, aged (over 72 h) from day 4; a P2 opened on day 8.
        let account = AccountHistory {
            id: "a".into(),
            rep: "r@v.example".into(),
            tickets: vec![
                OpenSpan { priority: Priority::P1, created_at: t(0), resolved_at: Some(t(24 * 20)) },
                OpenSpan { priority: Priority::P1, created_at: t(1), resolved_at: None },
                OpenSpan { priority: Priority::P2, created_at: t(24 * 8), resolved_at: None },
            ],
            heartbeats: (0..30).map(|d| t(d * 24)).collect(),
        };
        let mut out = Vec::new();
        alert_days(&account, &days(30), &rules(), &mut out);
        // Day 4: both P1s aged, 40 off, 60 is amber after green: new. Day 12: the P2 aged too,
        // 60 off (the cap), 40: worse by 20. Day 20 the first P1 resolves: better, and the
        // weekly cool-down reminders in between are not news.
        assert_eq!(out, [4, 12]);
    }

    #[test]
    fn precision_recall_and_lead_time_follow_their_definitions() {
        let days = days(30);
        let horizon = SignedDuration::from_hours(24 * 7);
        // Account 0 alerts on days 2 and 10; escalates on day 5 (caught by day 2, 3 days' lead)
        // and day 25 (missed). Account 1 alerts on day 1 and never escalates.
        let alerts = vec![vec![2, 10], vec![1]];
        let escalations = vec![vec![t(5 * 24), t(25 * 24)], vec![]];
        let j = Judging { first_counted: 0, from: t(0), until: t(30 * 24), horizon, reps: 2, weeks: 30.0 / 7.0 };
        let r = judge(&alerts, &escalations, &days, &j);
        assert_eq!((r.alerts, r.true_alerts, r.escalations, r.caught), (3, 1, 2, 1));
        assert_eq!(r.precision, Some(1.0 / 3.0));
        assert_eq!(r.recall, Some(0.5));
        assert_eq!(r.lead_days, [3.0]);
        assert_eq!((r.lead_median, r.lead_p90), (Some(3.0), Some(3.0)));
        assert!((r.alerts_per_rep_week.unwrap() - 3.0 / 2.0 / (30.0 / 7.0)).abs() < 1e-12);
        // No alerts and no escalations: no ratios, rather than a division by zero.
        let quiet = judge(&[vec![]], &[vec![]], &days, &j);
        assert_eq!((quiet.precision, quiet.recall, quiet.lead_median), (None, None, None));
    }

    #[test]
    fn quantiles() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 10.0], 0.5), Some(2.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0], 0.5), Some(2.0));
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert!((quantile(&ten, 0.9).unwrap() - 9.1).abs() < 1e-12, "0.9 of the way from 1 to 10");
        assert_eq!(quantile(&[4.0], 0.9), Some(4.0));
        assert_eq!(quantile(&[], 0.5), None);
    }
}
