use tam_core::comms::{ReleaseChange, ReleaseInfo};

use super::*;
use crate::tests::brief;

/// The test brief: SUP-1 (P1, open 216 hours since 2026-03-20, a Friday), nine days of
/// silence, 50/100.
fn facts() -> Facts {
    let mut b = brief("Sync fails with error 504");
    b.release = Some(ReleaseInfo {
        version: "4.2".into(),
        date: "2026-04-01".into(),
        changes: vec![ReleaseChange {
            title: "SSO fix".into(),
            description: "Sessions survive a restart".into(),
            area: "sso".into(),
            tickets: vec!["SUP-1".into()],
        }],
    });
    b.reported = b.open_tickets.clone();
    Facts::of(&b)
}

fn check(text: &str, cited: &[&str]) -> Result<(), String> {
    let facts = facts();
    let cited: Vec<&Fact> = cited.iter().map(|id| facts.get(id).unwrap()).collect();
    facts.check(text, &cited)
}

#[test]
fn each_fact_has_an_id_and_says_what_it_licenses() {
    let facts = facts();
    let lines: Vec<String> = facts.all().iter().map(|f| format!("[{}] {}", f.id, f.line)).collect();
    assert_eq!(
        lines,
        [
            "[H] Health on 2026-03-29: 50/100 (50 points taken off), amber, trend declining; 1 ticket open (1 P1/P2 ticket open).",
            "[D1] minus 20 points (aged_p1_p2): 1 P1/P2 ticket open longer than 72 hours (3 days): SUP-1",
            "[D2] minus 30 points (heartbeat_silence): no integration heartbeat for 216 hours (9 days), the last on 2026-03-20",
            "[T1] SUP-1: P1, open, open 216 hours (9 days) since 2026-03-20: <data name=\"subject\">Sync fails with error 504</data>",
            "[R] Release <data name=\"version\">4.2</data> of <data name=\"date\">2026-04-01</data>: 1 change; it fixes 1 ticket this customer reported: SUP-1",
            "[C1] <data name=\"title\">SSO fix</data> <data name=\"description\">Sessions survive a restart</data> (area <data name=\"area\">sso</data>); fixes SUP-1",
        ]
    );
    assert_eq!(facts.all()[3].tickets, ["SUP-1"]);
}

#[test]
fn what_the_cited_facts_hold_may_be_said_in_the_writers_own_words() {
    for (text, cited) in [
        ("SUP-1 has been open for 9 days, since March 20.", &["T1"][..]),
        ("SUP-1 has been open for 9.0 days (216 hours), since Friday 2026-03-20.", &["T1"]),
        ("It has been open since 2026-03-20 (a Friday).", &["T1"]),
        ("It has been open more than a week: 1 week, in fact.", &["T1"]),
        ("Your score is 50/100: the 1 open P1 ticket costs 20 points.", &["H", "D1"]),
        ("We quote the error 504 from the ticket.", &["T1"]),
        ("Version 4.2, out on April 1st 2026, fixes SUP-1.", &["R"]),
        ("Release v4.2 fixes **SUP-1**.", &["R", "C1"]),
        ("Hello Northwind team, thank you for your patience.", &[]),
        ("Could we hold a 30-minute call? Pick any time that suits you; UTF-8 and SHA-256 are fine.", &[]),
        ("Ana Ruiz\nana@vendor.example", &[]),
        ("1. We review SUP-1 together.\n2. I stay your contact.\n3. We look back at it.", &["T1"]),
        ("Your score is 50 out of 100.", &["H"]),
        ("It has been open since Friday, March 20.", &["T1"]),
        ("Our #1 priority is SUP-1.", &["T1"]),
        ("The 1 issue you reported, SUP-1, is with engineering.", &["T1"]),
    ] {
        assert_eq!(check(text, cited), Ok(()), "{text}");
    }
}

#[test]
fn an_invented_ticket_count_duration_date_or_version_is_refused_and_named() {
    for (text, cited, why) in [
        ("SUP-7 is fixed.", &["T1"][..], "names the ticket SUP-7, which no fact holds"),
        ("#4521 is fixed.", &["T1"], "names the ticket #4521, which no fact holds"),
        ("You have 3 open tickets.", &["H"], "counts 3 open tickets, which no fact holds"),
        ("You have 2 resolved tickets.", &["H", "T1"], "counts 2 resolved tickets, which no fact holds"),
        ("1 ticket was resolved.", &["H"], "counts 1 ticket, which no fact holds"),
        ("You have two open tickets.", &["H"], "counts two open tickets, which no fact holds"),
        ("SUP-1 has been open for 12 days.", &["T1"], "states the time 12 days, which no fact holds"),
        ("A status within 2 business days.", &["T1"], "states the time 2 business days, which no fact holds"),
        ("A fix ships on April 3.", &["T1"], "names the date April 3, which no fact holds"),
        ("A fix ships on 2026-04-03.", &["T1"], "names the date 2026-04-03, which no fact holds"),
        ("Can we talk on Monday?", &["T1"], "names the date Monday, which no fact holds"),
        ("A fix ships on Friday.", &["T1"], "names the date Friday, which no fact holds"),
        ("A fix ships by the end of June.", &["T1"], "names the date June, which no fact holds"),
        ("A fix ships on 2026/04/14.", &["T1"], "names the date 2026/04/14, which no fact holds"),
        ("Can we talk at 10:00?", &[], "names the time 10:00, which no fact holds"),
        ("Version 4.3 fixes it.", &["R"], "names the version 4.3, which no fact holds"),
        ("Upgrade to 4.2.1.", &["R"], "names the version 4.2.1, which no fact holds"),
        ("It cost you 25 points.", &["H", "D1"], "states the points 25 points, which no fact holds"),
        ("Our 7 engineers are on it.", &["T1"], "states the number 7, which no fact holds"),
    ] {
        assert_eq!(check(text, cited), Err(why.to_owned()), "{text}");
    }
}

#[test]
fn a_fact_stated_without_citing_it_names_the_fact_to_cite() {
    assert_eq!(
        check("SUP-1 is with engineering.", &[]),
        Err("names the ticket SUP-1 but cites no fact; it is in D1, T1, R, C1".to_owned())
    );
    assert_eq!(
        check("The heartbeat stopped 9 days ago.", &["H"]),
        Err("states the time 9 days, which the facts it cites (H) do not hold; it is in D2, T1".to_owned())
    );
    // A subject line cites nothing and may state any fact.
    let facts = facts();
    assert_eq!(facts.check_any("Northwind: 4.2 fixes SUP-1"), Ok(()));
    assert_eq!(
        facts.check_any("Northwind: SUP-9 is fixed"),
        Err("names the ticket SUP-9, which no fact holds".to_owned())
    );
}

#[test]
fn a_count_must_count_what_the_fact_counts() {
    let mut b = brief("Sync fails");
    for (id, priority) in [("SUP-2", tam_core::Priority::P1), ("SUP-3", tam_core::Priority::P3)] {
        b.open_tickets.push(tam_core::comms::TicketFacts {
            id: tam_core::TicketId::parse("id", id).unwrap(),
            priority,
            ..b.open_tickets[0].clone()
        });
    }
    let facts = Facts::of(&b);
    let h = [facts.get("H").unwrap()];
    assert_eq!(facts.check("You have 3 open tickets, 2 of them urgent.", &h), Ok(()));
    assert_eq!(facts.check("2 urgent tickets are open.", &h), Ok(()));
    assert_eq!(facts.check("3 tickets need attention.", &h), Ok(()), "a count of what is not said may be any");
    assert_eq!(
        facts.check("You have 2 open tickets.", &h),
        Err("counts 2 open tickets, which no fact holds".to_owned()),
        "2 is how many are urgent, not how many are open"
    );
}
