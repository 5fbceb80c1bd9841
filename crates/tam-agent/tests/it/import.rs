use tam_agent::import::{Format, RecordKind};
use tam_core::{AccountId, TenantId};

use crate::{account, import, ticket};

fn messages(report: &tam_agent::import::ImportReport) -> Vec<String> {
    report.rejected.iter().map(ToString::to_string).collect()
}

#[test]
fn bad_records_are_reported_with_file_line_and_field_and_good_ones_kept() {
    let mut store = crate::store();
    let text = [
        account("t", "a1", "rep@v.example", None),
        ticket("t", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z"),
        ticket("t", "T2", "a1", "Urgentish", "open", "2026-03-20T00:00:00Z"),
        String::new(),
        "{oops".to_owned(),
        ticket("t", "T3", "a1", "P2", "open", "2031-01-01T00:00:00Z"),
        ticket("t", "T4", "ghost", "P2", "open", "2026-03-20T00:00:00Z"),
        ticket("t", "T5", "a1", "P4", "closed", "2026-03-20T00:00:00Z"),
    ]
    .join("\n");
    let report = import(&mut store, &[("book.ndjson", Format::Ndjson, &text)]);
    assert_eq!((report.accounts, report.tickets), (1, 2));
    let got = messages(&report);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got[0].starts_with("book.ndjson:3: ticket T2: field priority: unknown value \"Urgentish\""), "{}", got[0]);
    assert!(got[1].starts_with("book.ndjson:5: field line: invalid JSON"), "{}", got[1]);
    assert!(
        got[2].starts_with("book.ndjson:6: ticket T3: field created_at: 2031-01-01T00:00:00Z is in the future"),
        "{}",
        got[2]
    );
    assert_eq!(got[3], "book.ndjson:7: ticket T4: field account_id: no account \"ghost\" in tenant \"t\"");
}

#[test]
fn reimporting_is_idempotent_and_tenants_are_created_once() {
    let mut store = crate::store();
    let text =
        [account("t", "a1", "rep@v.example", None), ticket("t", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z")]
            .join("\n");
    let first = import(&mut store, &[("f", Format::Ndjson, &text)]);
    let second = import(&mut store, &[("f", Format::Ndjson, &text)]);
    assert_eq!(first.tenants_created.len(), 1);
    assert!(second.tenants_created.is_empty());
    assert_eq!((second.accounts, second.tickets), (1, 1));
    let tenants = store.tenants().unwrap();
    assert_eq!((tenants.len(), tenants[0].accounts), (1, 1));
    let row =
        store.account(&TenantId::parse("t", "t").unwrap(), &AccountId::parse("a", "a1").unwrap()).unwrap().unwrap();
    assert_eq!(row.open_tickets, 1);
}

#[test]
fn tickets_may_come_before_their_accounts_in_an_earlier_file() {
    let mut store = crate::store();
    let tickets = ticket("t", "T1", "a1", "High", "pending", "2026-03-20T00:00:00Z");
    let accounts = account("t", "a1", "rep@v.example", None);
    let report = import(
        &mut store,
        &[("tickets.ndjson", Format::Ndjson, &tickets), ("accounts.ndjson", Format::Ndjson, &accounts)],
    );
    assert_eq!((report.accounts, report.tickets, report.rejected.len()), (1, 1, 0));
}

#[test]
fn a_ticket_of_another_tenants_account_is_rejected() {
    let mut store = crate::store();
    let text = [
        account("acme", "a1", "rep@v.example", None),
        ticket("globex", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z"),
    ]
    .join("\n");
    let report = import(&mut store, &[("f", Format::Ndjson, &text)]);
    assert_eq!(messages(&report), ["f:2: ticket T1: field account_id: no account \"a1\" in tenant \"globex\""]);
}

#[test]
fn csv_files_with_a_header_row() {
    let mut store = crate::store();
    let accounts = "tenant_id,id,name,rep_name,rep_email,contacts,last_heartbeat,api_call_count\n\
                    t,a1,Acme,Ana,ana@v.example,ops@acme.example;cto@acme.example,2026-03-28T00:00:00Z,120\n\
                    t,a2,Globex,Ana,ana@v.example,,,\n\
                    t,a3,Initech,Ana,not-an-email,,,\n\
                    t,a4,Umbrella,Ana,ana@v.example,,,lots\n";
    let tickets = "tenant_id,id,account_id,priority,status,created_at,subject,kind\n\
                   t,T1,a1,P1,open,2026-03-20T00:00:00Z,\"Login fails, again\",bug\n\
                   t,T2,a2,Medium,resolved,2026-03-20T00:00:00Z,,question\n";
    let report = import(
        &mut store,
        &[
            ("accounts.csv", Format::Csv(None), accounts),
            ("tickets.csv", Format::Csv(Some(RecordKind::Ticket)), tickets),
        ],
    );
    assert_eq!((report.accounts, report.tickets), (2, 2));
    assert_eq!(
        messages(&report),
        [
            "accounts.csv:4: account a3: field rep_email: \"not-an-email\" is not an email address",
            "accounts.csv:5: account a4: field api_call_count: \"lots\" is not a non-negative whole number",
        ]
    );
}

#[test]
fn heartbeats_move_the_last_heartbeat_forward_only() {
    let mut store = crate::store();
    let text = [
        account("t", "a1", "rep@v.example", Some("2026-03-20T00:00:00Z")),
        r#"{"record":"heartbeat","tenant_id":"t","account_id":"a1","at":"2026-03-25T00:00:00Z","api_call_count":7}"#
            .to_owned(),
        r#"{"record":"heartbeat","tenant_id":"t","account_id":"a1","at":"2026-03-22T00:00:00Z"}"#.to_owned(),
    ]
    .join("\n");
    let report = import(&mut store, &[("f", Format::Ndjson, &text)]);
    assert_eq!(report.heartbeats, 2);
    let row =
        store.account(&TenantId::parse("t", "t").unwrap(), &AccountId::parse("a", "a1").unwrap()).unwrap().unwrap();
    assert_eq!(row.last_heartbeat.unwrap().to_string(), "2026-03-25T00:00:00Z");
}

#[test]
fn a_byte_order_mark_and_windows_line_ends_are_tolerated() {
    let mut store = crate::store();
    let text = format!(
        "\u{feff}{}\r\n{}\r\n",
        account("t", "a1", "rep@v.example", None),
        account("t", "a2", "rep@v.example", None)
    );
    let csv = "\u{feff}tenant_id,id,name,rep_name,rep_email\r\nt,a3,A,R,r@v.example\r\n";
    let report = import(&mut store, &[("f.ndjson", Format::Ndjson, &text), ("f.csv", Format::Csv(None), csv)]);
    assert_eq!((report.accounts, report.rejected.len()), (3, 0), "{:?}", messages(&report));
}

#[test]
fn invalid_utf8_and_overlong_lines_are_rejected_one_line_at_a_time() {
    let mut store = crate::store();
    let mut bytes = account("t", "a1", "rep@v.example", None).into_bytes();
    bytes.extend_from_slice(b"\n{\"record\":\"account\",\"name\":\"Chlo\xe9\"}\n");
    bytes.extend_from_slice(format!("{{\"record\":\"ticket\",\"subject\":\"{}\"}}\n", "x".repeat(2 << 20)).as_bytes());
    bytes.extend_from_slice(account("t", "a2", "rep@v.example", None).as_bytes());
    let mut importer = tam_agent::import::Importer::new(&mut store, crate::opts());
    importer.read("latin1.ndjson", std::io::Cursor::new(bytes), Format::Ndjson).unwrap();
    let report = importer.finish().unwrap();
    assert_eq!(report.accounts, 2);
    let got = messages(&report);
    assert!(got[0].starts_with("latin1.ndjson:2: field line: not valid UTF-8"), "{got:?}");
    assert_eq!(got[1], "latin1.ndjson:3: field line: longer than 1048576 bytes");
}

#[test]
fn a_later_version_of_a_waiting_ticket_wins() {
    let mut store = crate::store();
    let text = [
        ticket("t", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z"),
        account("t", "a1", "rep@v.example", None),
        ticket("t", "T1", "a1", "P1", "closed", "2026-03-20T00:00:00Z"),
        ticket("t", "T2", "a1", "P1", "open", "2026-03-20T00:00:00Z"),
    ]
    .join("\n");
    import(&mut store, &[("f", Format::Ndjson, &text)]);
    let row =
        store.account(&TenantId::parse("t", "t").unwrap(), &AccountId::parse("a", "a1").unwrap()).unwrap().unwrap();
    assert_eq!(row.open_tickets, 1, "T1 was closed by its later version");
}

#[test]
fn records_of_an_unknown_tenant_create_nothing() {
    let mut store = crate::store();
    let text = ticket("typo", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z");
    let report = import(&mut store, &[("f", Format::Ndjson, &text)]);
    assert!(report.tenants_created.is_empty());
    assert!(store.tenants().unwrap().is_empty());
    assert_eq!(messages(&report), ["f:1: ticket T1: field account_id: no account \"a1\" in tenant \"typo\""]);
}

#[test]
fn reimporting_an_account_without_optional_fields_keeps_what_was_stored() {
    let mut store = crate::store();
    let full = account("t", "a1", "rep@v.example", Some("2026-03-25T00:00:00Z"));
    let bare =
        r#"{"record":"account","tenant_id":"t","id":"a1","name":"A","rep_name":"R","rep_email":"rep@v.example"}"#;
    let older = account("t", "a1", "rep@v.example", Some("2026-03-01T00:00:00Z"));
    import(&mut store, &[("f", Format::Ndjson, &full), ("g", Format::Ndjson, bare), ("h", Format::Ndjson, &older)]);
    let row =
        store.account(&TenantId::parse("t", "t").unwrap(), &AccountId::parse("a", "a1").unwrap()).unwrap().unwrap();
    assert_eq!(row.last_heartbeat.unwrap().to_string(), "2026-03-25T00:00:00Z", "the newest known heartbeat stays");
}

#[test]
fn csv_null_means_none_and_unknown_kinds_keep_the_id() {
    let mut store = crate::store();
    let csv = "tenant_id,id,name,rep_name,rep_email,last_heartbeat\nt,a1,A,R,r@v.example,null\n";
    let bad = r#"{"record":"invoice","tenant_id":"t","id":"INV-1"}"#;
    let report = import(&mut store, &[("a.csv", Format::Csv(None), csv), ("b.ndjson", Format::Ndjson, bad)]);
    assert_eq!(report.accounts, 1);
    assert!(messages(&report)[0].starts_with("b.ndjson:1: record INV-1: field record: unknown value \"invoice\""));
}

#[test]
fn records_a_program_built_are_checked_and_stored_as_the_same_lines_of_a_file_would_be() {
    let lines = [
        account("t", "a1", "rep@v.example", None),
        ticket("t", "T1", "a1", "P1", "open", "2026-03-20T00:00:00Z"),
        ticket("t", "T2", "a1", "Urgentish", "open", "2026-03-20T00:00:00Z"),
        r#"{"record":"ticket","tenant_id":"t","id":"T3","account_id":"a1","priority":1}"#.to_owned(),
        ticket("t", "T4", "ghost", "P2", "open", "2026-03-20T00:00:00Z"),
    ];
    let mut from_file = crate::store();
    let read = import(&mut from_file, &[("source", Format::Ndjson, &lines.join("\n"))]);
    let mut pushed = crate::store();
    let values: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut importer = tam_agent::import::Importer::new(&mut pushed, crate::opts());
    importer.push("source", values).unwrap();
    let report = importer.finish().unwrap();
    assert_eq!((report.accounts, report.tickets), (read.accounts, read.tickets));
    assert_eq!(messages(&report), messages(&read), "the same rejections, named by source and position");
    assert_eq!(messages(&report).len(), 3, "{:#?}", messages(&report));
    assert!(messages(&report)[1].starts_with("source:4: ticket T3: field priority: expected a string"));
}

#[test]
fn escalations_and_resolution_times_are_imported_checked_and_kept_once() {
    let mut store = crate::store();
    let text = [
        account("t", "a1", "rep@v.example", None),
        r#"{"record":"ticket","tenant_id":"t","id":"T1","account_id":"a1","priority":"P1","status":"closed","created_at":"2026-03-01T00:00:00Z","resolved_at":"2026-03-04T00:00:00Z","subject":"x"}"#.to_owned(),
        r#"{"record":"ticket","tenant_id":"t","id":"T2","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","resolved_at":"2026-03-04T00:00:00Z","subject":"x"}"#.to_owned(),
        r#"{"record":"ticket","tenant_id":"t","id":"T3","account_id":"a1","priority":"P1","status":"closed","created_at":"2026-03-05T00:00:00Z","resolved_at":"2026-03-04T00:00:00Z","subject":"x"}"#.to_owned(),
        r#"{"record":"escalation","tenant_id":"t","account_id":"a1","at":"2026-03-10T09:00:00Z","source":"csm","note":"CTO called"}"#.to_owned(),
        r#"{"record":"escalation","tenant_id":"t","account_id":"ghost","at":"2026-03-10T09:00:00Z","source":"csm"}"#.to_owned(),
        r#"{"record":"escalation","tenant_id":"t","account_id":"a1","at":"last tuesday","source":"csm"}"#.to_owned(),
        r#"{"record":"escalation","tenant_id":"t","account_id":"a1","at":"2026-03-11T09:00:00Z"}"#.to_owned(),
    ]
    .join("\n");
    let report = import(&mut store, &[("book.ndjson", Format::Ndjson, &text)]);
    let got = messages(&report);
    assert_eq!((report.tickets, report.escalations), (1, 1), "{got:#?}");
    assert!(
        got[0].starts_with("book.ndjson:3: ticket T2: field resolved_at: set, but the ticket is open"),
        "{}",
        got[0]
    );
    assert!(
        got[1].starts_with("book.ndjson:4: ticket T3: field resolved_at: 2026-03-04T00:00:00Z is before created_at")
    );
    assert!(
        got[3].starts_with("book.ndjson:7: escalation a1@last tuesday: field at: \"last tuesday\" is not an RFC 3339"),
        "{}",
        got[3]
    );
    assert!(
        got[4].starts_with("book.ndjson:8: escalation a1@2026-03-11T09:00:00Z: field source: missing"),
        "{}",
        got[4]
    );
    assert_eq!(
        got[2],
        "book.ndjson:6: escalation ghost@2026-03-10T09:00:00Z: field account_id: no account \"ghost\" in tenant \"t\""
    );

    // Again, and as CSV: the same escalation, not a second one.
    import(&mut store, &[("book.ndjson", Format::Ndjson, &text)]);
    let csv = "tenant_id,account_id,at,source,note\nt,a1,2026-03-10T09:00:00Z,csm,CTO called again\n";
    let again = import(&mut store, &[("escalations.csv", Format::Csv(None), csv)]);
    assert_eq!(again.escalations, 1, "{:?}", messages(&again));
    let tenant = TenantId::parse("t", "t").unwrap();
    let kept = store.escalations(&tenant).unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!((kept[0].source.as_str(), kept[0].note.as_deref()), ("csm", Some("CTO called again")));

    let at = |s: &str| s.parse::<tam_core::Timestamp>().unwrap();
    let days = [at("2026-03-02T00:00:00Z"), at("2026-03-11T00:00:00Z"), at("2026-03-20T00:00:00Z")];
    let history = store.history(&tenant, &days).unwrap();
    assert_eq!(history.accounts[0].tickets.len(), 1);
    assert_eq!(history.accounts[0].tickets[0].resolved_at, Some(at("2026-03-04T00:00:00Z")));
    assert_eq!(history.escalations, [(0, at("2026-03-10T09:00:00Z"))]);
}
