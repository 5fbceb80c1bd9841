//! The LLM writer end to end: `[writer] mode = "llm"` against a local OpenAI-compatible fake.

use tam_testkit::{Answer, Fake};

use crate::TestHome;

const BOOK: &str = r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@v.example","contacts":["ops@nw.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}
{"record":"ticket","tenant_id":"acme","id":"T-1","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"API down"}
{"record":"ticket","tenant_id":"acme","id":"T-2","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"SSO broken"}
{"record":"ticket","tenant_id":"acme","id":"T-3","account_id":"a1","priority":"P2","status":"open","created_at":"2026-03-20T00:00:00Z","subject":"Exports slow"}
"#;

fn completion(content: &str) -> Answer {
    let body = serde_json::json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 321, "completion_tokens": 123},
    });
    Answer::json(200, &body.to_string())
}

fn llm_home(fake: &Fake) -> TestHome {
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    let config = format!(
        "[writer]\nmode = \"llm\"\nretries_per_model = 1\nretry_base_ms = 1\n\n[[writer.models]]\nprovider = \"openai_compatible\"\nmodel = \"test-model\"\nbase_url = \"{}/v1\"\ntimeout_ms = 5000\n",
        fake.url
    );
    home.file("home/tam.toml", &config);
    home
}

const VALID: &str = r#"{"subject": "Northwind: our plan for T-1, T-2 and T-3", "paragraphs": [{"text": "Hello Northwind team,", "facts": []}, {"text": "T-1, T-2 and T-3 are with engineering; you will hear from me tomorrow.", "facts": ["T1", "T2", "T3"]}, {"text": "Ana", "facts": []}], "key_points": ["three P1/P2 open"], "confidence": "high"}"#;

#[test]
fn drafts_say_which_model_wrote_them_and_what_it_cost() {
    let fake = Fake::start(vec![
        completion("ok"),
        completion(&format!("```json\n{VALID}\n```")),
        completion("I cannot do that"),
        Answer::json(503, r#"{"error":{"message":"busy"}}"#),
        completion("still not JSON"),
    ]);
    let home = llm_home(&fake);
    let doctor = home.ok(&["doctor"]);
    assert!(doctor.contains("model openai_compatible/test-model"), "{doctor}");
    assert!(doctor.contains("answered in") && doctor.contains("(321 input, 123 output tokens)"), "{doctor}");

    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    let drafts = home.json(&["drafts", "list", "--json"]);
    let d = &drafts[0];
    assert_eq!(
        (d["generator"].as_str(), d["confidence"].as_str()),
        (Some("openai_compatible/test-model"), Some("high"))
    );
    assert_eq!(d["subject"], "Northwind: our plan for T-1, T-2 and T-3");
    assert_eq!(d["usage"], serde_json::json!({"model_calls": 1, "input_tokens": 321, "output_tokens": 123}));

    // The next answers are not JSON, then the provider is busy, then not JSON again: the
    // template writes the draft and the result says why and what the calls cost.
    let task = home.file("task.json", r#"{"type": "escalation_outreach", "tenant_id": "acme", "account_id": "a1"}"#);
    let result = home.json(&["task", "run", task.to_str().unwrap()]);
    assert_eq!((result["draft"]["generator"].as_str(), result["confidence"].as_str()), (Some("template"), Some("low")));
    let note = result["draft"]["note"].as_str().unwrap();
    assert!(note.starts_with("the model's answer was refused twice: the answer contains no JSON object"), "{note}");
    assert_eq!(result["usage"]["calls"].as_array().unwrap().len(), 3, "{result}");
    assert_eq!(result["usage"]["output_tokens"].as_u64(), Some(246));
    let seen = fake.seen.lock().unwrap();
    assert!(seen[1].body.contains("<data name=\\\"subject\\\">API down</data>"), "{}", seen[1].body);
}

#[test]
fn a_draft_stating_what_its_facts_do_not_hold_is_refused_and_a_true_one_links_its_tickets() {
    let invented_ticket = VALID.replace("T-1, T-2 and T-3 are", "T-1, T-2, T-3 and T-9 are");
    let invented_count = VALID.replace("are with engineering", "are among the 5 open tickets with engineering");
    let invented_date = VALID.replace("you will hear from me tomorrow", "a fix ships on 2026-04-02");
    let fake = Fake::start(vec![
        completion(&invented_ticket),
        completion(&invented_count),
        completion(&invented_date),
        completion(VALID),
    ]);
    let home = llm_home(&fake);
    let config = std::fs::read_to_string(home.path().join("home/tam.toml")).unwrap();
    home.file("home/tam.toml", &format!("{config}\n[tickets]\nurl = \"https://acme.atlassian.net/browse/{{id}}\"\n"));
    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z"]);
    let drafts = home.json(&["drafts", "list", "--json"]);
    assert_eq!((drafts[0]["generator"].as_str(), drafts[0]["confidence"].as_str()), (Some("template"), Some("low")));
    assert_eq!(
        drafts[0]["note"],
        "the model's answer was refused twice: paragraph 2 names the ticket T-9, which no fact holds; \
         then paragraph 2 counts 5 open tickets, which no fact holds"
    );
    let task = home.file("task.json", r#"{"type": "escalation_outreach", "tenant_id": "acme", "account_id": "a1"}"#);
    // A task's draft: refused once for a date no fact holds, then repaired.
    let result = home.json(&["task", "run", task.to_str().unwrap()]);
    assert_eq!(result["draft"]["generator"], "openai_compatible/test-model", "{result}");
    assert_eq!(
        result["draft"]["note"],
        "repaired: the first answer was refused (paragraph 2 names the date 2026-04-02, which no fact holds)"
    );
    // The prompt gave each fact its id: the tickets, with their ages and dates.
    let seen = fake.seen.lock().unwrap();
    assert!(
        seen[0].body.contains("[T1] T-1: P1, open, open 223 hours (9.3 days) since 2026-03-20:"),
        "{}",
        seen[0].body
    );
    drop(seen);
    // Its HTML links the tickets it cites to their pages.
    let eml = std::fs::read_to_string(result["draft"]["location"].as_str().unwrap()).unwrap();
    let html_part = eml
        .split("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n")
        .nth(1)
        .unwrap();
    let html = String::from_utf8(tam_testkit::unbase64(html_part.split("--").next().unwrap())).unwrap();
    assert!(
        html.contains(r#"<p><a href="https://acme.atlassian.net/browse/T-1">T-1</a>, <a href="https://acme.atlassian.net/browse/T-2">T-2</a> and"#),
        "{html}"
    );
}

#[test]
fn a_bad_writer_config_is_an_error_naming_it() {
    let home = TestHome::new();
    std::fs::create_dir_all(home.path().join("home")).unwrap();
    home.file("home/tam.toml", "[writer]\nmode = \"llm\"\n");
    let run = home.tam(&["scan"]);
    assert!(
        run.stderr.contains("[writer] mode = \"llm\" needs at least one [[writer.models]] entry"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_api_and_the_scheduler_share_one_writer_so_a_providers_concurrency_holds_for_the_process() {
    // Each API request used to build its own model router: two requests meant two calls in
    // flight to a provider allowed one.
    let slow = || {
        let mut a = completion(&format!("```json\n{VALID}\n```"));
        a.delay = std::time::Duration::from_millis(700);
        a
    };
    // Three drafts: the scan's escalation outreach (queued, then delivered by whichever task
    // dispatches first) and one for each task.
    let fake = Fake::start_parallel(vec![slow(), slow(), slow()]);
    let home = llm_home(&fake);
    let book = home.file("book.ndjson", BOOK);
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z", "--no-dispatch"]);
    let config = std::fs::read_to_string(home.path().join("home/tam.toml")).unwrap();
    let config = config.replace("retry_base_ms = 1\n", "retry_base_ms = 1\nconcurrency_per_provider = 1\n");
    home.file("home/tam.toml", &format!("{config}\n[api.tokens]\nacme = \"TAM_API_TOKEN_ACME\"\n"));
    let token = "acme-token-0123456789";
    let server = crate::api::Server::start_with(&home, &[("TAM_API_TOKEN_ACME", token)]);
    let results: Vec<(u16, serde_json::Value)> = std::thread::scope(|scope| {
        let post = |label: &str| {
            let task = format!(r#"{{"type": "escalation_outreach", "account_id": "a1", "task_id": "{label}"}}"#);
            let server = &server;
            scope.spawn(move || server.call("POST", "/v1/tasks", Some(token), Some(&task)))
        };
        let (a, b) = (post("one"), post("two"));
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (status, result) in &results {
        // Two tasks, two drafts (their task ids tell them apart), each written by the model.
        assert_eq!(*status, 200, "{result}");
        assert_eq!(result["draft"]["generator"], "openai_compatible/test-model", "{result}");
    }
    assert_eq!(fake.seen.lock().unwrap().len(), 3, "one model call a draft");
    // The scan's draft may go out before or between the tasks (the replica's dispatcher starts
    // at once), so wall time says nothing; the fake's count of calls in flight does.
    assert_eq!(fake.most_at_once(), 1, "one call in flight at a time: the second waited for the first");
}
