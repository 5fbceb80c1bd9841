//! Escalation decisions (SPEC section 4) as episodes.
//!
//! An account escalates when its score falls below a threshold, when it turns red, or when it
//! slips from green to amber. From then on it is *in an episode*: it is alerted again only when
//! it gets worse (its status drops, or its score falls by `worsen_points` since the last alert)
//! or when the cool-down has passed since the last alert. The episode ends when the account is
//! green again. The episode state travels with each snapshot, so re-running a scan for the same
//! `as_of` reaches the same decision.

use serde::{Deserialize, Serialize};

use crate::{HealthStatus, SignedDuration, Timestamp};

/// When to escalate and how often to remind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationConfig {
    /// A score strictly below this escalates.
    pub score_below: u32,
    /// An escalated account is alerted again once this long after its last alert.
    pub cool_down_days: u32,
    /// An escalated account is alerted again once its score fell this much since the last alert.
    pub worsen_points: u32,
    /// Individual email/chat alerts per rep per scan; the rest go into one digest.
    pub alert_budget_per_rep: u32,
    /// Accounts a digest lists, worst first; the rest it counts by status and reason.
    pub digest_top_accounts: u32,
    /// Lowers a rep's budget when most of their recent alerts were marked not useful (never
    /// below 1; see [`crate::feedback::adapted_budget`]).
    pub adapt_alert_budget: bool,
}

impl EscalationConfig {
    /// Checks the options against the status bands they work with; names the offending option.
    pub fn validate(&self, scoring: &crate::scoring::ScoringConfig) -> Result<(), crate::FieldError> {
        // A green score below the threshold would open a new episode on every scan.
        if self.score_below > scoring.green_min_score {
            return Err(crate::FieldError::new("score_below", "must not be above green_min_score"));
        }
        if self.digest_top_accounts == 0 {
            return Err(crate::FieldError::new("digest_top_accounts", "must be at least 1"));
        }
        Ok(())
    }
}

impl Default for EscalationConfig {
    fn default() -> EscalationConfig {
        EscalationConfig {
            score_below: 40,
            cool_down_days: 7,
            worsen_points: 10,
            alert_budget_per_rep: 5,
            digest_top_accounts: 20,
            adapt_alert_budget: false,
        }
    }
}

/// Which trigger fired. When several hold, the first in this order is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Score below `score_below`.
    BelowThreshold,
    /// Status turned red from amber or green.
    BecameRed,
    /// Status slipped from green to amber.
    GreenToAmber,
}

impl Reason {
    /// The stable name used in JSON and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BelowThreshold => "below_threshold",
            Reason::BecameRed => "became_red",
            Reason::GreenToAmber => "green_to_amber",
        }
    }

    /// The inverse of [`Reason::as_str`].
    pub fn parse(raw: &str) -> Option<Reason> {
        [Reason::BelowThreshold, Reason::BecameRed, Reason::GreenToAmber].into_iter().find(|r| r.as_str() == raw)
    }
}

/// Why this scan alerts the rep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertCause {
    /// A new episode started.
    New,
    /// The account got worse during its episode.
    Worsened,
    /// The cool-down since the last alert passed and the account is still escalated.
    CoolDown,
}

impl AlertCause {
    /// The stable name used in JSON and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertCause::New => "new",
            AlertCause::Worsened => "worsened",
            AlertCause::CoolDown => "cool_down",
        }
    }

    /// The inverse of [`AlertCause::as_str`].
    pub fn parse(raw: &str) -> Option<AlertCause> {
        [AlertCause::New, AlertCause::Worsened, AlertCause::CoolDown].into_iter().find(|c| c.as_str() == raw)
    }
}

/// An open escalation episode, as it stands after a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Episode {
    /// The scan that opened it.
    pub opened_at: Timestamp,
    /// The trigger that opened it.
    pub reason: Reason,
    /// The scan that last alerted the rep.
    pub last_alert_at: Timestamp,
    /// The score at the last alert.
    pub last_alert_score: u8,
    /// The status at the last alert.
    pub last_alert_status: HealthStatus,
}

/// The account's previous scan, the input that makes escalation stateful.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    /// Its status.
    pub status: HealthStatus,
    /// The episode open after it, if any.
    pub episode: Option<Episode>,
}

/// What this scan decided for one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The trigger that holds at this scan, if any.
    pub trigger: Option<Reason>,
    /// The episode open after this scan; `None` when the account is not escalated.
    pub episode: Option<Episode>,
    /// Set when the rep should hear about this account from this scan.
    pub alert: Option<AlertCause>,
    /// The episode that this scan closed because the account is green again.
    pub closed: Option<Episode>,
}

impl Decision {
    /// Whether the account is escalated after this scan.
    pub fn escalated(&self) -> bool {
        self.episode.is_some()
    }

    /// The trigger of this scan, or else the reason the open episode started.
    pub fn reason(&self) -> Option<Reason> {
        self.trigger.or(self.episode.map(|e| e.reason))
    }
}

/// Which trigger, if any, holds for a score and status given the previous status.
pub fn trigger(
    score: u8,
    status: HealthStatus,
    previous: Option<HealthStatus>,
    cfg: &EscalationConfig,
) -> Option<Reason> {
    if u32::from(score) < cfg.score_below {
        Some(Reason::BelowThreshold)
    } else if status == HealthStatus::Red && previous.is_some_and(|p| p != HealthStatus::Red) {
        Some(Reason::BecameRed)
    } else if status == HealthStatus::Amber && previous == Some(HealthStatus::Green) {
        Some(Reason::GreenToAmber)
    } else {
        None
    }
}

/// Decides escalation for one account at `as_of`.
pub fn decide(
    score: u8,
    status: HealthStatus,
    previous: Option<&Previous>,
    as_of: Timestamp,
    cfg: &EscalationConfig,
) -> Decision {
    let trigger = trigger(score, status, previous.map(|p| p.status), cfg);
    let open = previous.and_then(|p| p.episode);
    let alerted = |opened_at, reason| Episode {
        opened_at,
        reason,
        last_alert_at: as_of,
        last_alert_score: score,
        last_alert_status: status,
    };

    if status == HealthStatus::Green {
        let reopened = trigger.map(|reason| alerted(as_of, reason));
        return Decision { trigger, episode: reopened, alert: reopened.map(|_| AlertCause::New), closed: open };
    }
    let Some(episode) = open else {
        let opened = trigger.map(|reason| alerted(as_of, reason));
        return Decision { trigger, episode: opened, alert: opened.map(|_| AlertCause::New), closed: None };
    };

    // Worse than at the last alert, or a fresh drop since the previous scan (red at 30, back to
    // amber, then red again is news even though the last alert already said red).
    let worse_status = status > episode.last_alert_status || previous.is_some_and(|p| status > p.status);
    let worse_score = i64::from(score) <= i64::from(episode.last_alert_score) - i64::from(cfg.worsen_points);
    let cooled =
        as_of.duration_since(episode.last_alert_at) >= SignedDuration::from_hours(i64::from(cfg.cool_down_days) * 24);
    let alert = if worse_status || worse_score {
        Some(AlertCause::Worsened)
    } else if cooled {
        Some(AlertCause::CoolDown)
    } else {
        None
    };
    let episode = if alert.is_some() { alerted(episode.opened_at, episode.reason) } else { episode };
    Decision { trigger, episode: Some(episode), alert, closed: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::{Amber, Green, Red};

    fn t(day: i64) -> Timestamp {
        Timestamp::from_second(1_774_767_600 + day * 86_400).unwrap()
    }

    /// Runs a daily series of `(score, status)` scans through `decide`, carrying the state the
    /// way the store does, and renders one line per scan.
    fn run(series: &[(u8, HealthStatus)]) -> Vec<String> {
        let cfg = EscalationConfig::default();
        let mut previous: Option<Previous> = None;
        let mut lines = Vec::new();
        for (day, &(score, status)) in series.iter().enumerate() {
            let d = decide(score, status, previous.as_ref(), t(day as i64), &cfg);
            lines.push(format!(
                "{score} {status} escalated={} reason={} alert={}{}",
                d.escalated(),
                d.reason().map_or("-", Reason::as_str),
                d.alert.map_or("-", AlertCause::as_str),
                if d.closed.is_some() { " closed" } else { "" },
            ));
            previous = Some(Previous { status, episode: d.episode });
        }
        lines
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn green_is_never_escalated_and_alerts_need_news_or_a_week(scores in proptest::collection::vec(0u8..=100, 1..60)) {
            let scoring = crate::scoring::ScoringConfig::default();
            let cfg = EscalationConfig::default();
            let mut previous: Option<Previous> = None;
            for (day, &score) in scores.iter().enumerate() {
                let status = scoring.status(score);
                let d = decide(score, status, previous.as_ref(), t(day as i64), &cfg);
                if status == Green {
                    prop_assert!(!d.escalated());
                }
                if let (Some(alert), Some(before)) = (d.alert, previous.and_then(|p| p.episode)) {
                    let days_since = (t(day as i64).as_second() - before.last_alert_at.as_second()) / 86_400;
                    let news = status > before.last_alert_status
                        || previous.is_some_and(|p| status > p.status)
                        || u32::from(score) + cfg.worsen_points <= u32::from(before.last_alert_score);
                    prop_assert!(news || days_since >= 7, "day {day}: {alert:?} after {days_since} days without news");
                }
                previous = Some(Previous { status, episode: d.episode });
            }
        }
    }

    #[test]
    fn triggers_in_spec_order() {
        let cfg = EscalationConfig::default();
        assert_eq!(trigger(39, Red, None, &cfg), Some(Reason::BelowThreshold));
        assert_eq!(trigger(40, Amber, None, &cfg), None);
        assert_eq!(trigger(60, Amber, Some(Green), &cfg), Some(Reason::GreenToAmber));
        assert_eq!(trigger(60, Amber, Some(Amber), &cfg), None);
        assert_eq!(trigger(60, Amber, Some(Red), &cfg), None);
        let strict = EscalationConfig { score_below: 30, ..cfg };
        assert_eq!(trigger(35, Red, Some(Amber), &strict), Some(Reason::BecameRed));
        assert_eq!(trigger(35, Red, Some(Red), &strict), None);
        assert_eq!(trigger(35, Red, None, &strict), None);
    }

    #[test]
    fn an_escalated_account_is_not_alerted_every_day() {
        assert_eq!(
            run(&[(80, Green), (60, Amber), (58, Amber), (55, Amber), (75, Green)]),
            [
                "80 green escalated=false reason=- alert=-",
                "60 amber escalated=true reason=green_to_amber alert=new",
                "58 amber escalated=true reason=green_to_amber alert=-",
                "55 amber escalated=true reason=green_to_amber alert=-",
                "75 green escalated=false reason=- alert=- closed",
            ]
        );
    }

    #[test]
    fn worsening_realerts_by_status_or_ten_points() {
        assert_eq!(
            run(&[(80, Green), (65, Amber), (56, Amber), (55, Amber), (35, Red), (30, Red), (25, Red)]),
            [
                "80 green escalated=false reason=- alert=-",
                "65 amber escalated=true reason=green_to_amber alert=new",
                "56 amber escalated=true reason=green_to_amber alert=-",
                "55 amber escalated=true reason=green_to_amber alert=worsened",
                "35 red escalated=true reason=below_threshold alert=worsened",
                "30 red escalated=true reason=below_threshold alert=-",
                "25 red escalated=true reason=below_threshold alert=worsened",
            ]
        );
    }

    #[test]
    fn cool_down_realerts_a_week_after_the_last_alert() {
        let mut series = vec![(30, Red); 9];
        series[0] = (35, Red);
        let alerts: Vec<String> =
            run(&series).into_iter().map(|l| l.split(" alert=").nth(1).unwrap().to_owned()).collect();
        assert_eq!(alerts, ["new", "-", "-", "-", "-", "-", "-", "cool_down", "-"]);
    }

    #[test]
    fn green_ends_the_episode_and_a_new_slip_opens_another() {
        assert_eq!(
            run(&[(35, Red), (72, Green), (65, Amber)]),
            [
                "35 red escalated=true reason=below_threshold alert=new",
                "72 green escalated=false reason=- alert=- closed",
                "65 amber escalated=true reason=green_to_amber alert=new",
            ]
        );
    }

    #[test]
    fn a_fresh_drop_to_red_realerts_even_if_the_last_alert_was_red() {
        assert_eq!(
            run(&[(30, Red), (45, Amber), (38, Red)]),
            [
                "30 red escalated=true reason=below_threshold alert=new",
                "45 amber escalated=true reason=below_threshold alert=-",
                "38 red escalated=true reason=below_threshold alert=worsened",
            ]
        );
    }

    #[test]
    fn the_threshold_may_not_reach_into_green() {
        let scoring = crate::scoring::ScoringConfig::default();
        assert!(EscalationConfig::default().validate(&scoring).is_ok());
        let bad = EscalationConfig { score_below: 71, ..EscalationConfig::default() };
        assert_eq!(bad.validate(&scoring).unwrap_err().field, "score_below");
    }

    #[test]
    fn improving_within_an_episode_stays_quiet() {
        assert_eq!(
            run(&[(20, Red), (45, Amber), (50, Amber)]),
            [
                "20 red escalated=true reason=below_threshold alert=new",
                "45 amber escalated=true reason=below_threshold alert=-",
                "50 amber escalated=true reason=below_threshold alert=-",
            ]
        );
    }
}
