//! LLM clients and other agents, through their own SDKs: the Python `mcp` package over stdio
//! (`tam mcp`) and Streamable HTTP (`/mcp`), and the Python `a2a-sdk` reading the agent card
//! and sending a task. Every tool's answer is the CLI's `--json`; a token sees its tenant only
//! and keeps its session to itself; tasks write drafts and never send.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::TestHome;
use crate::api::Server;

const ACME: &str = "acme-token-0123456789";
const GLOBEX: &str = "globex-token-0123456789";

/// A Python with the official clients: `TAM_TEST_PYTHON` (scripts/test makes a throw-away
/// virtual environment), else one made once under the target directory.
fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("TAM_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-clients");
    let python = venv.join("bin/python");
    let ready = venv.join("ready");
    let lock = std::fs::File::create(venv.with_extension("lock")).unwrap();
    lock.lock().unwrap();
    if !ready.exists() {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().unwrap();
        assert!(made.success(), "python3 -m venv failed (scripts/test installs python3-venv)");
        let pip = Command::new(&python)
            .args(["-m", "pip", "install", "-q", "mcp==2.3.0", "a2a-sdk==1.3.0"])
            .status()
            .unwrap();
        assert!(pip.success(), "pip could not install the MCP and A2A clients");
        std::fs::write(&ready, "").unwrap();
    }
    python
}

fn script(name: &str) -> PathBuf {
    crate::repo().join("crates/tam/tests/it").join(name)
}

/// Runs a client script with `input` on its stdin; its JSON answer.
fn client(args: &[&str], input: &Value) -> Value {
    let mut child = Command::new(python())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?} failed:\n{stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{stdout}\n{stderr}"))
}

/// The MCP client over stdio against `tam mcp` in `home`.
fn stdio(home: &TestHome, plan: &Value, tenant: &str) -> Value {
    stdio_env(home, plan, tenant, &[])
}

/// The same, with `env` added to `tam`'s environment.
fn stdio_env(home: &TestHome, plan: &Value, tenant: &str, env: &[(&str, &str)]) -> Value {
    let mcp = script("mcp_client.py");
    let tam = env!("CARGO_BIN_EXE_tam");
    // The client starts `tam` with its own environment: the one `tam` gets in this home.
    let tam_env = home.command();
    let mut child = Command::new(python());
    for (key, value) in tam_env.get_envs() {
        match value {
            Some(value) => child.env(key, value),
            None => child.env_remove(key),
        };
    }
    let mut child = child
        .envs(env.iter().copied())
        .args([mcp.to_str().unwrap(), "stdio", "--", tam, "mcp", "--tenant", tenant])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(plan.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(&stdout).unwrap()
}

fn http(url: &str, token: &str, plan: &Value, extra: &[&str]) -> Value {
    let mcp = script("mcp_client.py");
    let mut args = vec![mcp.to_str().unwrap(), "http", url, "--token", token];
    args.extend(extra);
    client(&args, plan)
}

/// The `n`th call's answer: its structured content, which its text repeats for older clients.
fn answer(out: &Value, n: usize) -> Value {
    let result = &out["results"][n];
    assert_eq!(result["isError"], false, "call {n}: {result}");
    let text: Value = serde_json::from_str(result["text"].as_str().unwrap()).unwrap();
    assert_eq!(text, result["structuredContent"], "call {n}: the text is the same JSON");
    result["structuredContent"].clone()
}

/// The `n`th call's error message.
fn refused(out: &Value, n: usize) -> String {
    let result = &out["results"][n];
    assert_eq!(result["isError"], true, "call {n}: {result}");
    result["text"].as_str().unwrap().to_owned()
}

/// The demo's book, scanned, with a second tenant beside it.
fn demo() -> TestHome {
    let home = TestHome::new();
    home.ok(&["demo"]);
    let other = home.file(
        "globex.ndjson",
        r#"{"record":"account","tenant_id":"globex","id":"g1","name":"Globex","rep_name":"Bo","rep_email":"bo@vendor.example"}
{"record":"ticket","tenant_id":"globex","id":"G-1","account_id":"g1","priority":"P2","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"Exports slow"}"#,
    );
    home.ok(&["import", other.to_str().unwrap()]);
    home.ok(&["scan", "--tenant", "globex"]);
    home
}

#[test]
fn every_tool_over_stdio_answers_as_the_cli_does_and_run_task_only_drafts() {
    let home = demo();
    let worst = home.json(&["accounts", "--tenant", "demo", "--limit", "1", "--json"]);
    let account = worst["accounts"][0]["account_id"].as_str().unwrap().to_owned();
    let calm = home.json(&["accounts", "--tenant", "demo", "--status", "green", "--limit", "1", "--json"]);
    let calm = calm["accounts"][0]["account_id"].as_str().unwrap().to_owned();
    let a = account.as_str();
    let rep = worst["accounts"][0]["rep_email"].as_str().unwrap().to_owned();
    let drafts_before = home.json(&["drafts", "list", "--tenant", "demo", "--json"]).as_array().unwrap().len();
    let plan = json!({"calls": [
        {"tool": "list_accounts", "arguments": {"limit": 5}},
        {"tool": "list_accounts", "arguments": {"status": "red", "escalated": true}},
        {"tool": "explain_account", "arguments": {"account_id": a}},
        {"tool": "score_history", "arguments": {"account_id": a}},
        {"tool": "list_open_tickets", "arguments": {"account_id": a}},
        {"tool": "relationship_profile", "arguments": {"account_id": a}},
        {"tool": "list_drafts", "arguments": {"account_id": a}},
        {"tool": "score_history", "arguments": {"account_id": a, "limit": 1}},
        {"tool": "explain_account", "arguments": {"account_id": "no-such-account"}},
        {"tool": "list_accounts", "arguments": {"limit": 0}},
        {"tool": "list_accounts", "arguments": {"colour": "red"}},
        {"tool": "explain_account", "arguments": {"account_id": "g1"}},
        {"tool": "run_task", "arguments": {"task": {"type": "health_checkin", "account_id": calm.as_str(), "task_id": "mcp-1"}}},
        {"tool": "run_task", "arguments": {"task": {"type": "make_coffee"}}},
        {"tool": "list_drafts", "arguments": {"account_id": calm.as_str(), "kind": "health_checkin"}},
        {"tool": "outbox_status", "arguments": {}},
        {"tool": "list_accounts", "arguments": {"status": "purple"}},
        {"tool": "list_drafts", "arguments": {"kind": "love_letter"}},
        {"tool": "list_accounts", "arguments": {"rep_email": rep.to_uppercase(), "limit": 1000}},
    ], "resources": [format!("tam://demo/accounts/{a}"), "tam://demo/accounts/no-such-account"]});
    let out = stdio(&home, &plan, "demo");
    assert!(out.get("connect_error").is_none(), "{out}");

    // The tools, each saying what it does and whether it has effects, with its answer's schema.
    let tools = out["tools"].as_array().unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "list_accounts",
            "explain_account",
            "score_history",
            "list_open_tickets",
            "relationship_profile",
            "list_drafts",
            "run_task",
            "outbox_status"
        ]
    );
    assert!(tools.iter().all(|t| t["outputSchema"]["type"] == "object" && t["inputSchema"]["type"] == "object"));
    let run_task = &tools[6]["description"].as_str().unwrap();
    assert!(run_task.contains("never sends anything to a customer"), "{run_task}");
    assert!(
        tools
            .iter()
            .filter(|t| t["name"] != "run_task")
            .all(|t| t["description"].as_str().unwrap().contains("Reads only; no effects"))
    );

    // Each answer is the CLI's --json (the client checked each against its output schema).
    assert_eq!(answer(&out, 0), home.json(&["accounts", "--tenant", "demo", "--limit", "5", "--json"]));
    let escalated = answer(&out, 1);
    assert!(!escalated["accounts"].as_array().unwrap().is_empty());
    assert!(escalated["accounts"].as_array().unwrap().iter().all(|x| x["status"] == "red" && x["escalated"] == true));
    let explained = home.json(&["explain", a, "--json"]);
    assert_eq!(answer(&out, 2), explained);
    assert_eq!(answer(&out, 3)["history"], explained["history"], "the last 30 scans, as explain lists them");
    let tickets = home.json(&["tickets", a, "--json"]);
    assert!(!tickets["tickets"].as_array().unwrap().is_empty());
    assert_eq!(answer(&out, 4), tickets);
    assert_eq!(answer(&out, 5), home.json(&["profile", "show", a, "--json"]));
    assert_eq!(answer(&out, 6)["drafts"], home.json(&["drafts", "list", "--account", a, "--json"]));
    assert!(!answer(&out, 6)["drafts"].as_array().unwrap().is_empty(), "the worst account's outreach");

    // What the caller can fix is a tool error that says what.
    assert_eq!(refused(&out, 8), "no account \"no-such-account\" in tenant \"demo\"");
    assert!(refused(&out, 9).starts_with("limit: a whole number from 1 to 1000"));
    assert_eq!(refused(&out, 10), "colour: this tool takes no such argument");
    assert_eq!(refused(&out, 11), "no account \"g1\" in tenant \"demo\"", "another tenant's account is not there");
    assert!(refused(&out, 13).contains("unknown task type \"make_coffee\""), "{}", refused(&out, 13));

    // run_task wrote its draft before it answered, and sent nothing: the draft is in the rep's
    // mailbox, the outbox has it delivered as a draft.
    let ran = answer(&out, 12);
    let eml = std::fs::read_to_string(ran["draft"]["location"].as_str().unwrap()).unwrap();
    assert!(eml.contains("X-TAM-Kind: health_checkin"), "{eml}");
    let listed = answer(&out, 14)["drafts"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["idem_key"], ran["draft"]["idem_key"]);
    let drafts_after = home.json(&["drafts", "list", "--tenant", "demo", "--json"]).as_array().unwrap().len();
    assert_eq!(drafts_after, drafts_before + 1);
    assert_eq!(answer(&out, 7)["history"].as_array().unwrap().len(), 1);
    assert_eq!(answer(&out, 15), home.json(&["outbox", "status", "--tenant", "demo", "--json"]));
    assert_eq!(refused(&out, 16), "status: \"purple\" is not a status; the statuses are green, amber and red");
    assert!(
        refused(&out, 17)
            .starts_with("kind: \"love_letter\" is not a kind of draft; the kinds are escalation_outreach")
    );
    let reps = answer(&out, 18)["accounts"].as_array().unwrap().clone();
    assert!(!reps.is_empty() && reps.iter().all(|x| x["rep_email"] == rep.as_str()), "a rep's address in any case");
    let all = home.json(&["accounts", "--tenant", "demo", "--all", "--json"])["accounts"].as_array().unwrap().clone();
    assert_eq!(reps.len(), all.iter().filter(|x| x["rep_email"] == rep.as_str()).count());

    // Resources: the profile and the explanation of an account, by address.
    let read = &out["reads"][0];
    assert_eq!(read["mimeType"], "application/json");
    let document: Value = serde_json::from_str(read["text"].as_str().unwrap()).unwrap();
    assert_eq!(document["explanation"], explained);
    assert_eq!(document["profile"]["account_id"], a);
    assert!(out["reads"][1]["error"].as_str().unwrap().contains("no account \"no-such-account\""));
    let listed = out["resources"].as_array().unwrap();
    assert_eq!(listed.len(), all.len(), "every account, over pages");
    assert_eq!(out["resource_templates"][0]["uriTemplate"], "tam://demo/accounts/{account_id}");
}

fn serve(home: &TestHome) -> Server {
    // The API listens where tam.toml says, so `tam agent --json` names the same endpoint.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::write(
        home.path().join("home/tam.toml"),
        format!(
            "[api]\nlisten = \"127.0.0.1:{port}\"\n[api.tokens]\ndemo = \"TAM_API_TOKEN_DEMO\"\nglobex = \"TAM_API_TOKEN_GLOBEX\"\n"
        ),
    )
    .unwrap();
    Server::start_listening(home, &[("TAM_API_TOKEN_DEMO", ACME), ("TAM_API_TOKEN_GLOBEX", GLOBEX)])
}

#[test]
fn over_http_a_token_sees_its_tenant_and_keeps_its_session_to_itself() {
    let home = demo();
    let server = serve(&home);
    let url = format!("{}/mcp", server.url);
    let plan = json!({"calls": [
        {"tool": "list_accounts", "arguments": {}},
        {"tool": "explain_account", "arguments": {"account_id": "g1"}},
        {"tool": "list_open_tickets", "arguments": {"account_id": "g1"}},
    ], "resources": ["tam://globex/accounts/g1"]});

    // The demo tenant's token: its accounts, not globex's, whose account does not exist for it.
    let out = http(&url, ACME, &plan, &["--session-token-swap", GLOBEX]);
    assert!(out.get("connect_error").is_none(), "{out}");
    assert!(out["session_id"].is_string(), "a session was opened: {out}");
    assert_eq!(answer(&out, 0), home.json(&["accounts", "--tenant", "demo", "--json"]));
    assert_eq!(answer(&out, 0)["accounts"].as_array().unwrap().len(), 100, "a hundred unless asked for more");
    assert_eq!(refused(&out, 1), "no account \"g1\" in tenant \"demo\"");
    assert!(out["reads"][0]["error"].as_str().unwrap().contains("tam://globex/accounts/g1"), "{out}");
    // Another token presenting the session is told there is no such session.
    assert_eq!(out["swap"]["status"], 404, "{}", out["swap"]);

    // globex's token sees globex, in the protocol without sessions too.
    let out = http(&url, GLOBEX, &plan, &["--mode", "auto"]);
    assert!(out.get("connect_error").is_none(), "{out}");
    assert_eq!(out["server"]["protocolVersion"], "2026-07-28");
    let accounts = answer(&out, 0);
    assert_eq!(accounts["tenant_id"], "globex");
    assert_eq!(accounts["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(answer(&out, 1), home.json(&["explain", "g1", "--json"]));
    assert_eq!(answer(&out, 2)["tickets"][0]["id"], "G-1");

    // No token, or an unknown one: refused before any session.
    let out = http(&url, "not-a-token-0123456789", &plan, &[]);
    assert!(out["connect_error"].as_str().unwrap().contains("401"), "{out}");
    let (status, _) = server.call("POST", "/mcp", None, Some("{}"));
    assert_eq!(status, 401);
}

#[test]
fn the_a2a_sdk_reads_the_card_and_has_a_task_run() {
    let home = demo();
    let server = serve(&home);
    let (status, card) = server.call("GET", "/.well-known/agent-card.json", None, None);
    assert_eq!(status, 200);
    assert_eq!(card, home.json(&["agent", "--json"]), "tam agent --json prints the card served");
    assert_eq!(card["supportedInterfaces"][0]["url"], format!("{}/a2a", server.url));

    let a2a = script("a2a_client.py");
    let a2a = a2a.to_str().unwrap();
    let calm = home.json(&["accounts", "--tenant", "demo", "--status", "green", "--limit", "1", "--json"]);
    let calm = calm["accounts"][0]["account_id"].as_str().unwrap().to_owned();
    let task = json!({"type": "customer_success_review", "account_id": calm, "period_days": 90});
    let out = client(&[a2a, &server.url, ACME], &task);
    let skills: Vec<&str> = out["card"]["skills"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(skills.len(), 7);
    assert_eq!(out["card"]["bearer_schemes"], json!(["bearer"]), "the SDK sends the token because the card asks");
    assert_eq!(out["task"]["state"], "TASK_STATE_COMPLETED", "{out}");
    let result = &out["task"]["artifacts"][0];
    assert_eq!(
        (result["type"].as_str(), result["tenant_id"].as_str()),
        (Some("customer_success_review"), Some("demo"))
    );
    let eml = std::fs::read_to_string(result["draft"]["location"].as_str().unwrap()).unwrap();
    assert!(eml.contains("X-TAM-Kind: customer_success_review"));

    // What is not a task of this token's tenant is an A2A error the SDK maps.
    let out = client(&[a2a, &server.url, ACME], &json!({"type": "make_coffee"}));
    assert_eq!(out["error"]["code"], -32602, "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("supported: health_scan"));
    let out = client(&[a2a, &server.url, ACME], &json!({"type": "health_scan", "tenant_id": "globex"}));
    assert_eq!(out["error"]["code"], -32602, "{out}");

    // Without the token, nothing runs.
    let (status, body) = server.call("POST", "/a2a", None, Some("{}"));
    assert_eq!((status, body["error"].as_str()), (401, Some("send Authorization: Bearer <the tenant's token>")));
}

#[test]
fn run_task_over_mcp_makes_a_gmail_draft_and_sends_nothing() {
    use tam_testkit::{Answer, Fake};
    // The rep's compose token, then Gmail: is the draft there already (no), create it.
    let tokens =
        Fake::start(vec![Answer::json(200, r#"{"access_token":"ya29.t1","expires_in":3599,"token_type":"Bearer"}"#)]);
    let gmail = Fake::start(vec![
        Answer::json(200, r#"{"resultSizeEstimate":0}"#),
        Answer::json(200, r#"{"id":"r-1","message":{"id":"m-1","threadId":"t-1","labelIds":["DRAFT"]}}"#),
    ]);
    let home = TestHome::new();
    let book = home.file(
        "book.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@v.example","contacts":["ops@nw.example"],"last_heartbeat":"2026-03-20T00:00:00Z"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-21T07:00:00Z"]);
    std::fs::write(
        home.path().join("home/tam.toml"),
        format!(
            "[mail]\nkind = \"gmail\"\nalerts_from = \"tam-alerts@v.example\"\nbase_url = \"{}\"\ntoken_uri = \"{}/token\"\ntimeout_ms = 5000\n",
            gmail.url, tokens.url
        ),
    )
    .unwrap();
    let key = crate::repo().join("crates/tam-connectors/tests/fixtures/test_service_account.json");
    let plan =
        json!({"calls": [{"tool": "run_task", "arguments": {"task": {"type": "health_checkin", "account_id": "a1"}}}]});
    let out = stdio_env(&home, &plan, "acme", &[("TAM_GOOGLE_SERVICE_ACCOUNT_FILE", key.to_str().unwrap())]);
    let result = answer(&out, 0);
    assert_eq!(result["draft"]["recipients"], json!(["ops@nw.example"]), "{result}");

    let seen = gmail.seen.lock().unwrap();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert!(paths[0].starts_with("/gmail/v1/users/me/drafts?q=rfc822msgid"), "{paths:?}");
    assert_eq!(paths[1..], ["/gmail/v1/users/me/drafts"], "a draft made, nothing sent");
    assert!(seen[1].body.contains("\"raw\""), "{}", seen[1].body);
}
