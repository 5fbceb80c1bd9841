use std::fmt::Write as _;

use proptest::prelude::*;

use super::*;
use crate::TicketId;

const AS_OF: &str = "2026-03-29T07:00:00Z";

fn as_of() -> Timestamp {
    AS_OF.parse().unwrap()
}

/// `3d1s`, `72h`, `-1h`, `0s`: a signed duration in days, hours, minutes and seconds.
fn seconds(text: &str) -> i64 {
    let (sign, digits) = text.strip_prefix('-').map_or((1, text), |rest| (-1, rest));
    let mut total = 0;
    let mut number = 0;
    for c in digits.chars() {
        match c {
            '0'..='9' => number = number * 10 + i64::from(c.to_digit(10).unwrap()),
            'd' => (total, number) = (total + number * 86_400, 0),
            'h' => (total, number) = (total + number * 3_600, 0),
            'm' => (total, number) = (total + number * 60, 0),
            's' => (total, number) = (total + number, 0),
            _ => panic!("bad duration {text}"),
        }
    }
    sign * total
}

fn ago(text: &str) -> Timestamp {
    Timestamp::from_second(as_of().as_second() - seconds(text)).unwrap()
}

/// One account per fixture: `heartbeat AGE` (or `heartbeat never`), then `ID PRIORITY STATUS AGE`
/// per ticket. Ages are how long before `AS_OF`.
fn signals(fixture: &str) -> AccountSignals {
    let mut signals = AccountSignals::default();
    for line in fixture.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["heartbeat", "never"] => signals.last_heartbeat = None,
            ["heartbeat", age] => signals.last_heartbeat = Some(ago(age)),
            [id, priority, status, age] => signals.tickets.push(TicketSignal {
                id: TicketId::parse("id", id).unwrap(),
                priority: Priority::parse(priority, &Default::default()).unwrap(),
                status: TicketStatus::parse(status).unwrap(),
                created_at: ago(age),
            }),
            _ => panic!("bad fixture line {line:?}"),
        }
    }
    signals
}

fn render(health: &Health) -> String {
    let mut out = format!("{} {}", health.score, health.status);
    for d in &health.deductions {
        let detail = match &d.evidence {
            Evidence::AgedTickets { tickets, .. } => {
                tickets.iter().map(|t| format!("{}@{}h", t.id, t.age_hours)).collect::<Vec<_>>().join(" ")
            }
            Evidence::OpenVolume { open_tickets, .. } => format!("{open_tickets} open"),
            Evidence::Silence { hours_silent, .. } => format!("{hours_silent}h silent"),
        };
        write!(out, "\n  {} -{} {}", d.rule.as_str(), d.points, detail).unwrap();
    }
    out
}

fn check_with(cfg: &ScoringConfig, fixture: &str, expected: &str) {
    let got = render(&score(&signals(fixture), as_of(), cfg));
    let expected = expected.trim().lines().map(str::trim_end).collect::<Vec<_>>().join("\n");
    assert_eq!(got, expected, "\nfixture:\n{fixture}");
}

fn check(fixture: &str, expected: &str) {
    check_with(&ScoringConfig::default(), fixture, expected);
}

#[test]
fn healthy_and_unmonitored_accounts_lose_nothing() {
    check("heartbeat 1h", "100 green");
    check("heartbeat never", "100 green");
    check("heartbeat never\nT1 P3 open 1h", "100 green");
}

#[test]
fn aged_p1_p2_counts_only_strictly_after_three_days() {
    check("T1 P1 open 3d", "100 green");
    check("T1 P1 open 3d1s", "80 green\n  aged_p1_p2 -20 T1@72h");
    check("T1 P2 pending 5d", "80 green\n  aged_p1_p2 -20 T1@120h");
    check("T1 P3 open 30d\nT2 P4 open 30d", "100 green");
    check("T1 P1 resolved 30d\nT2 P1 closed 30d", "100 green");
}

#[test]
fn aged_p1_p2_is_capped_at_sixty() {
    check("T1 P1 open 4d\nT2 P2 open 5d\nT3 P1 open 6d", "40 amber\n  aged_p1_p2 -60 T3@144h T2@120h T1@96h");
    check(
        "T1 P1 open 4d\nT2 P2 open 5d\nT3 P1 open 6d\nT4 P2 open 7d",
        "40 amber\n  aged_p1_p2 -60 T4@168h T3@144h T2@120h T1@96h",
    );
}

#[test]
fn open_volume_starts_after_five_and_is_capped_at_twenty_five() {
    check("T1 P4 open 1h\nT2 P4 open 1h\nT3 P4 open 1h\nT4 P4 open 1h\nT5 P4 open 1h", "100 green");
    check(
        "T1 P4 open 1h\nT2 P4 open 1h\nT3 P4 open 1h\nT4 P4 open 1h\nT5 P4 pending 1h\nT6 P4 open 1h",
        "95 green\n  open_volume -5 6 open",
    );
    let twelve: String = (1..=12).map(|i| format!("T{i} P3 open 1h\n")).collect();
    check(&twelve, "75 green\n  open_volume -25 12 open");
    let with_closed: String =
        (1..=12).map(|i| format!("T{i} P3 {} 1h\n", if i > 5 { "closed" } else { "open" })).collect();
    check(&with_closed, "100 green");
}

#[test]
fn heartbeat_silence_boundaries_are_strict() {
    check("heartbeat 72h", "100 green");
    check("heartbeat 72h1s", "85 green\n  heartbeat_silence -15 72h silent");
    check("heartbeat 144h", "85 green\n  heartbeat_silence -15 144h silent");
    check("heartbeat 144h1s", "70 green\n  heartbeat_silence -30 144h silent");
    check("heartbeat 40d", "70 green\n  heartbeat_silence -30 960h silent");
}

#[test]
fn future_signals_do_not_count() {
    check("heartbeat -2h", "100 green");
    check(
        "T1 P1 open -1h\nT2 P4 open -1h\nT3 P4 open -1h\nT4 P4 open -1h\nT5 P4 open -1h\nT6 P4 open -1h",
        "100 green",
    );
}

#[test]
fn status_bands_are_inclusive_at_seventy_and_forty() {
    let cfg = ScoringConfig::default();
    let bands: Vec<_> = [100, 70, 69, 40, 39, 0].into_iter().map(|s| cfg.status(s).as_str()).collect();
    assert_eq!(bands, ["green", "green", "amber", "amber", "red", "red"]);
}

#[test]
fn every_rule_at_its_cap_clamps_to_zero() {
    let mut fixture = String::from("heartbeat 10d\n");
    for i in 1..=4 {
        writeln!(fixture, "A{i} P1 open 10d").unwrap();
    }
    for i in 1..=8 {
        writeln!(fixture, "B{i} P3 open 1h").unwrap();
    }
    let health = score(&signals(&fixture), as_of(), &ScoringConfig::default());
    assert_eq!((health.score, health.status), (0, HealthStatus::Red));
    let points: Vec<_> = health.deductions.iter().map(|d| (d.rule, d.points)).collect();
    assert_eq!(points, [(Rule::AgedP1P2, 60), (Rule::OpenVolume, 25), (Rule::HeartbeatSilence, 30)]);
}

#[test]
fn thresholds_points_and_caps_follow_the_tenant_config() {
    let cfg = ScoringConfig {
        aged_p1_p2_after_hours: 24,
        aged_p1_p2_points: 30,
        aged_p1_p2_cap: 30,
        open_volume_free_tickets: 1,
        heartbeat_silence_after_hours: 24,
        heartbeat_silence_severe_after_hours: 48,
        green_min_score: 90,
        amber_min_score: 60,
        ..ScoringConfig::default()
    };
    check_with(
        &cfg,
        "T1 P2 open 1d1s\nT2 P1 open 2d",
        "65 amber\n  aged_p1_p2 -30 T2@48h T1@24h\n  open_volume -5 2 open",
    );
    check_with(&cfg, "heartbeat 24h1s", "85 amber\n  heartbeat_silence -15 24h silent");
    check_with(&cfg, "heartbeat 49h", "70 amber\n  heartbeat_silence -30 49h silent");
}

#[test]
fn evidence_is_serialised_with_ticket_ids_and_hours() {
    let health = score(&signals("heartbeat 80h\nT2 P1 open 4d\nT1 P2 open 4d"), as_of(), &ScoringConfig::default());
    let json = serde_json::to_string(&health.deductions).unwrap();
    assert_eq!(
        json,
        r#"[{"rule":"aged_p1_p2","points":40,"evidence":{"tickets":[{"id":"T1","priority":"P2","age_hours":96.0},{"id":"T2","priority":"P1","age_hours":96.0}],"after_hours":72,"uncapped_points":40}},{"rule":"heartbeat_silence","points":15,"evidence":{"last_heartbeat":"2026-03-25T23:00:00Z","hours_silent":80.0,"after_hours":72}}]"#
    );
}

#[test]
fn config_validation_names_the_option() {
    let bad = ScoringConfig { amber_min_score: 80, ..ScoringConfig::default() };
    assert_eq!(bad.validate().unwrap_err().field, "amber_min_score");
    let bad = ScoringConfig { heartbeat_silence_severe_after_hours: 10, ..ScoringConfig::default() };
    assert_eq!(bad.validate().unwrap_err().field, "heartbeat_silence_severe_after_hours");
    assert!(ScoringConfig::default().validate().is_ok());
}

#[test]
fn trend_compares_with_the_snapshot_about_a_week_earlier() {
    let cfg = ScoringConfig::default();
    let snaps = [(ago("8d"), 60), (ago("7d1h"), 70), (ago("1d"), 10), (ago("12d"), 0)];
    assert_eq!(trend_baseline(&snaps, as_of(), &cfg), Some(70));
    assert_eq!(trend_baseline(&[(ago("1d"), 10), (ago("11d"), 10)], as_of(), &cfg), None);
    // Equally far either side of the target: the earlier snapshot wins.
    assert_eq!(trend_baseline(&[(ago("6d"), 1), (ago("8d"), 2)], as_of(), &cfg), Some(2));
    let trends: Vec<_> = [None, Some(70), Some(71), Some(79), Some(80), Some(81)]
        .into_iter()
        .map(|base| trend(75, base, &cfg).as_str())
        .collect();
    assert_eq!(trends, ["unknown", "improving", "stable", "stable", "declining", "declining"]);
}

fn arb_signals() -> impl Strategy<Value = AccountSignals> {
    let ticket = (0..40u32, 1..=4u8, 0..4usize, -86_400i64..40 * 86_400);
    (proptest::collection::vec(ticket, 0..20), proptest::option::of(-86_400i64..20 * 86_400)).prop_map(
        |(tickets, heartbeat)| AccountSignals {
            tickets: tickets
                .into_iter()
                .map(|(id, level, status, age)| TicketSignal {
                    id: TicketId::parse("id", &format!("T{id}")).unwrap(),
                    priority: Priority::from_level(level).unwrap(),
                    status: [TicketStatus::Open, TicketStatus::Pending, TicketStatus::Resolved, TicketStatus::Closed]
                        [status],
                    created_at: Timestamp::from_second(as_of().as_second() - age).unwrap(),
                })
                .collect(),
            last_heartbeat: heartbeat.map(|age| Timestamp::from_second(as_of().as_second() - age).unwrap()),
        },
    )
}

fn arb_config() -> impl Strategy<Value = ScoringConfig> {
    (1..200u32, 0..50u32, 0..120u32, 0..10u32, 0..20u32, 0..60u32, 1..100u32, 0..60u32, 0..100u32, 0..80u32).prop_map(
        |(aged_after, aged_pts, aged_cap, free, vol_pts, vol_cap, silence_after, silence_pts, extra, severe_pts)| {
            ScoringConfig {
                aged_p1_p2_after_hours: aged_after,
                aged_p1_p2_points: aged_pts,
                aged_p1_p2_cap: aged_cap,
                open_volume_free_tickets: free,
                open_volume_points: vol_pts,
                open_volume_cap: vol_cap,
                heartbeat_silence_after_hours: silence_after,
                heartbeat_silence_points: silence_pts,
                heartbeat_silence_severe_after_hours: silence_after + extra,
                heartbeat_silence_severe_points: severe_pts,
                ..ScoringConfig::default()
            }
        },
    )
}

proptest! {
    #[test]
    fn score_is_always_between_0_and_100(signals in arb_signals(), cfg in arb_config()) {
        let health = score(&signals, as_of(), &cfg);
        prop_assert!(health.score <= 100);
        prop_assert_eq!(health.status, cfg.status(health.score));
        let taken: u32 = health.deductions.iter().map(|d| d.points).sum();
        prop_assert_eq!(u32::from(health.score), 100u32.saturating_sub(taken));
    }

    #[test]
    fn adding_an_aged_p1_never_raises_the_score(signals in arb_signals(), extra_hours in 73i64..2_000) {
        let cfg = ScoringConfig::default();
        let before = score(&signals, as_of(), &cfg).score;
        let mut more = signals.clone();
        more.tickets.push(TicketSignal {
            id: TicketId::parse("id", "NEW-P1").unwrap(),
            priority: Priority::P1,
            status: TicketStatus::Open,
            created_at: Timestamp::from_second(as_of().as_second() - extra_hours * 3_600).unwrap(),
        });
        prop_assert!(score(&more, as_of(), &cfg).score <= before);
    }

    #[test]
    fn removing_a_ticket_never_lowers_the_score(signals in arb_signals(), cfg in arb_config(), pick in any::<prop::sample::Index>()) {
        prop_assume!(!signals.tickets.is_empty());
        let before = score(&signals, as_of(), &cfg).score;
        let mut fewer = signals.clone();
        fewer.tickets.remove(pick.index(signals.tickets.len()));
        prop_assert!(score(&fewer, as_of(), &cfg).score >= before);
    }

    #[test]
    fn ticket_order_does_not_change_the_result(signals in arb_signals()) {
        let cfg = ScoringConfig::default();
        let mut reversed = signals.clone();
        reversed.tickets.reverse();
        let a = serde_json::to_string(&score(&signals, as_of(), &cfg)).unwrap();
        let b = serde_json::to_string(&score(&reversed, as_of(), &cfg)).unwrap();
        prop_assert_eq!(a, b);
    }
}

#[test]
fn sub_second_precision_counts_at_the_boundary() {
    let cfg = ScoringConfig::default();
    let just_past = as_of().checked_sub(SignedDuration::new(72 * 3_600, 1)).unwrap();
    let signals = AccountSignals { tickets: vec![], last_heartbeat: Some(just_past) };
    assert_eq!(score(&signals, as_of(), &cfg).score, 85);
}

#[test]
fn a_rule_is_read_back_from_its_stable_name_and_serde_agrees() {
    for rule in [Rule::AgedP1P2, Rule::OpenVolume, Rule::HeartbeatSilence] {
        assert_eq!(Rule::parse(rule.as_str()), Some(rule));
        assert_eq!(serde_json::to_value(rule).unwrap(), rule.as_str());
    }
    assert_eq!(Rule::parse("none"), None);
}

#[test]
fn each_rule_sits_at_its_discriminant_so_counts_can_index_by_it() {
    for (i, rule) in Rule::ALL.into_iter().enumerate() {
        assert_eq!(rule as usize, i, "{rule:?}");
        assert_eq!(Rule::parse(rule.as_str()), Some(rule));
    }
}

#[test]
fn a_headline_says_each_deduction_in_a_few_words_with_its_points() {
    let health = score(
        &signals(
            "heartbeat 100h
             A P1 open 4d
             B P2 open 5d
             C P3 open 1h
             D P3 open 1h
             E P3 open 1h
             F P3 open 1h",
        ),
        as_of(),
        &ScoringConfig::default(),
    );
    let lines: Vec<String> = health.deductions.iter().map(Deduction::headline).collect();
    assert_eq!(
        lines,
        ["2 P1/P2 tickets older than 3 days, -40", "6 open tickets, 1 over 5, -5", "no heartbeat for 4 days, -15"],
        "{health:?}"
    );
}
