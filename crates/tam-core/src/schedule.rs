//! When scheduled jobs are due, in a tenant's own time zone: the daily scan at 07:00, check-ins
//! checked at 10:00, reviews at the start of each quarter, ticket syncs hourly. Pure: the
//! caller passes "now" and what already ran.
//!
//! A slot is an instant a job should run at. Slots come from civil times in the zone, so
//! "07:00 in Europe/Berlin" is one instant per day across DST changes (a time that falls in a
//! spring-forward gap runs at the first instant after it; a repeated time runs once, at the
//! first). A slot missed by less than the grace runs late, once; a slot missed by more is
//! recorded as missed, never silently dropped.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use crate::{SignedDuration, Timestamp};

/// How often a job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    /// Each day at this local hour and minute.
    Day(u8, u8),
    /// Each hour, on the hour.
    Hour,
    /// On the first day of January, April, July and October at this local time.
    Quarter(u8, u8),
}

/// A job's schedule in a time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// How often.
    pub every: Every,
    /// The tenant's zone.
    pub zone: TimeZone,
}

/// What to do about a job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Record `missed` first (slots between the last handled one and this one, passed while
    /// nothing ran), then run it for `slot` (late when `slot` is before now).
    Run {
        /// The slot the run is for.
        slot: Timestamp,
        /// Earlier slots nobody ran, oldest first.
        missed: Vec<Timestamp>,
    },
    /// These slots passed by more than the grace: record them as missed. The latest one then
    /// counts as handled.
    Missed {
        /// Oldest first.
        slots: Vec<Timestamp>,
    },
    /// Nothing until `next`.
    Wait {
        /// The next slot.
        next: Timestamp,
    },
}

/// The most missed slots reported at once: a year of hourly slots. A longer outage is a
/// different problem, and its latest slots are the ones worth listing.
const MAX_MISSED: usize = 24 * 366;

fn local(date: Date, (h, m): (u8, u8), zone: &TimeZone) -> Option<Timestamp> {
    let time = date.at(i8::try_from(h).ok()?, i8::try_from(m).ok()?, 0, 0);
    time.to_zoned_datetime(zone.clone()).ok().map(|z| z.timestamp())
}

impl Schedule {
    /// The latest slot at or before `t`.
    pub fn at_or_before(&self, t: Timestamp) -> Option<Timestamp> {
        let here = t.to_zoned_datetime(self.zone.clone());
        match self.every {
            Every::Hour => {
                let dt = here.datetime();
                let hour = dt.date().at(dt.hour(), 0, 0, 0);
                let slot = hour.to_zoned_datetime(self.zone.clone()).ok()?.timestamp();
                // In a repeated hour the civil hour maps to its first instant; never after t.
                Some(if slot > t { t.checked_sub(SignedDuration::from_hours(1)).ok()? } else { slot })
            }
            Every::Day(h, m) => {
                let today = local(here.date(), (h, m), &self.zone)?;
                if today <= t { Some(today) } else { local(here.date().yesterday().ok()?, (h, m), &self.zone) }
            }
            Every::Quarter(h, m) => {
                let mut date = here.date().first_of_month();
                for _ in 0..6 {
                    if (date.month() - 1) % 3 == 0
                        && let Some(slot) = local(date, (h, m), &self.zone).filter(|s| *s <= t)
                    {
                        return Some(slot);
                    }
                    date = date.first_of_month().yesterday().ok()?.first_of_month();
                }
                None
            }
        }
    }

    /// The first slot after `t`.
    pub fn after(&self, t: Timestamp) -> Option<Timestamp> {
        // Slots are at least an hour apart and at most a quarter (92 days): step forward from
        // the slot at or before `t` until one is past it.
        let mut probe = t;
        let step = match self.every {
            Every::Hour => SignedDuration::from_mins(30),
            Every::Day(..) => SignedDuration::from_hours(12),
            Every::Quarter(..) => SignedDuration::from_hours(24 * 15),
        };
        for _ in 0..16 {
            probe = probe.checked_add(step).ok()?;
            if let Some(slot) = self.at_or_before(probe).filter(|s| *s > t) {
                return Some(slot);
            }
        }
        None
    }

    /// What to do at `now`, given the latest slot already handled (run or recorded missed);
    /// `None` means the job has never been handled: only a slot within the grace is owed then
    /// (a first start at 07:30 runs the 07:00 scan; one at 15:00 waits for tomorrow's).
    pub fn due(&self, handled: Option<Timestamp>, now: Timestamp, grace: SignedDuration) -> Due {
        let wait = || Due::Wait { next: self.after(now).unwrap_or(Timestamp::MAX) };
        let Some(latest) = self.at_or_before(now) else { return wait() };
        let in_grace = now.duration_since(latest) <= grace;
        let Some(handled) = handled else {
            return if in_grace { Due::Run { slot: latest, missed: Vec::new() } } else { wait() };
        };
        if handled >= latest {
            return wait();
        }
        // Every slot after the handled one and before the latest passed unrun.
        let mut missed = Vec::new();
        let mut cursor = latest;
        while missed.len() < MAX_MISSED {
            let Some(earlier) =
                cursor.checked_sub(SignedDuration::from_secs(1)).ok().and_then(|c| self.at_or_before(c))
            else {
                break;
            };
            if earlier <= handled {
                break;
            }
            missed.push(earlier);
            cursor = earlier;
        }
        missed.reverse();
        if in_grace {
            Due::Run { slot: latest, missed }
        } else {
            missed.push(latest);
            Due::Missed { slots: missed }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin(every: Every) -> Schedule {
        Schedule { every, zone: TimeZone::get("Europe/Berlin").unwrap() }
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn seven_in_berlin_is_one_instant_a_day_across_both_dst_changes() {
        let s = berlin(Every::Day(7, 0));
        // 2026-03-29: clocks go forward (UTC+1 → UTC+2); 2026-10-25: back.
        let mut slot = t("2026-03-27T12:00:00Z");
        let mut fired = Vec::new();
        for _ in 0..4 {
            slot = s.after(slot).unwrap();
            fired.push(slot.to_string());
        }
        assert_eq!(
            fired,
            ["2026-03-28T06:00:00Z", "2026-03-29T05:00:00Z", "2026-03-30T05:00:00Z", "2026-03-31T05:00:00Z"]
        );
        let autumn = s.after(t("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(autumn.to_string(), "2026-10-25T06:00:00Z");
        assert_eq!(s.after(autumn).unwrap().to_string(), "2026-10-26T06:00:00Z");
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_once_after_it_and_a_repeated_time_once() {
        let s = berlin(Every::Day(2, 30));
        let spring = s.after(t("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(spring.to_string(), "2026-03-29T01:30:00Z", "02:30 does not exist: 03:30 CEST");
        assert_eq!(s.after(spring).unwrap().to_string(), "2026-03-30T00:30:00Z");
        let autumn = s.after(t("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(autumn.to_string(), "2026-10-25T00:30:00Z", "the first 02:30");
        assert_eq!(s.after(autumn).unwrap().to_string(), "2026-10-26T01:30:00Z", "and not the second");
    }

    #[test]
    fn a_restart_inside_the_grace_runs_once_and_after_it_records_a_miss() {
        let s = berlin(Every::Day(7, 0));
        let grace = SignedDuration::from_hours(1);
        let yesterday = t("2026-06-09T05:00:00Z");
        let today = t("2026-06-10T05:00:00Z");
        assert_eq!(s.due(Some(yesterday), t("2026-06-10T05:30:00Z"), grace), Due::Run { slot: today, missed: vec![] });
        assert_eq!(s.due(Some(today), t("2026-06-10T05:31:00Z"), grace), Due::Wait { next: t("2026-06-11T05:00:00Z") });
        assert_eq!(s.due(Some(yesterday), t("2026-06-10T07:00:00Z"), grace), Due::Missed { slots: vec![today] });
        let week_ago = t("2026-06-03T05:00:00Z");
        match s.due(Some(week_ago), t("2026-06-10T07:00:00Z"), grace) {
            Due::Missed { slots } => assert_eq!((slots.len(), slots[0]), (7, t("2026-06-04T05:00:00Z"))),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.due(None, t("2026-06-10T05:30:00Z"), grace),
            Due::Run { slot: today, missed: vec![] },
            "a first start"
        );
        let monday = t("2026-06-08T05:00:00Z");
        assert_eq!(
            s.due(Some(monday), t("2026-06-11T05:30:00Z"), grace),
            Due::Run {
                slot: t("2026-06-11T05:00:00Z"),
                missed: vec![t("2026-06-09T05:00:00Z"), t("2026-06-10T05:00:00Z")]
            },
            "down from Monday to Thursday 07:30: Tuesday and Wednesday are recorded, Thursday runs"
        );
        assert!(matches!(s.due(None, t("2026-06-10T13:00:00Z"), grace), Due::Wait { .. }), "nothing older is owed");
    }

    #[test]
    fn hourly_and_quarterly_slots() {
        let h = berlin(Every::Hour);
        assert_eq!(h.at_or_before(t("2026-06-10T05:59:59Z")).unwrap(), t("2026-06-10T05:00:00Z"));
        assert_eq!(h.after(t("2026-06-10T05:00:00Z")).unwrap(), t("2026-06-10T06:00:00Z"));
        let q = berlin(Every::Quarter(9, 0));
        assert_eq!(q.at_or_before(t("2026-06-10T12:00:00Z")).unwrap(), t("2026-04-01T07:00:00Z"));
        assert_eq!(q.after(t("2026-06-10T12:00:00Z")).unwrap(), t("2026-07-01T07:00:00Z"));
        assert_eq!(q.after(t("2026-12-10T12:00:00Z")).unwrap(), t("2027-01-01T08:00:00Z"));
    }
}
