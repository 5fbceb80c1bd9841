//! The public scoring conformance cases (a copy of `shared/conformance`), run through
//! `tam import` and `tam scan --json` as acceptance does.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::TestHome;

#[test]
fn scoring_conformance_cases_pass() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let home = TestHome::new();
    home.ok(&["import", dir.join("scoring-cases.ndjson").to_str().unwrap()]);
    let scan = home.json(&["scan", "--tenant", "conformance", "--as-of", "2026-03-29T07:00:00Z", "--json"]);
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scoring-expected.json")).unwrap()).unwrap();

    let got: BTreeMap<&str, &Value> =
        scan["accounts"].as_array().unwrap().iter().map(|a| (a["account_id"].as_str().unwrap(), a)).collect();
    let mut failures = Vec::new();
    for (id, want) in expected["accounts"].as_object().unwrap() {
        let Some(a) = got.get(id.as_str()) else {
            failures.push(format!("{id}: missing"));
            continue;
        };
        let rules: BTreeMap<&str, u64> = a["deductions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["rule"].as_str().unwrap(), d["points"].as_u64().unwrap()))
            .filter(|(_, p)| *p > 0)
            .collect();
        let want_rules: BTreeMap<&str, u64> =
            want["deductions"].as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_u64().unwrap())).collect();
        if (&a["score"], &a["status"], &rules) != (&want["score"], &want["status"], &want_rules) {
            failures.push(format!(
                "{id} ({}): got {} {} {rules:?}, want {} {} {want_rules:?}",
                want["why"], a["score"], a["status"], want["score"], want["status"]
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), got.len(), failures.join("\n"));
}
