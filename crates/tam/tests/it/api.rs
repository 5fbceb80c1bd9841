//! The HTTP API of a running `tam serve`: a token sees only its tenant (another tenant's
//! account is a 404, like a missing one), heartbeats are validated and stored, tasks run,
//! errors are JSON, bodies are size-limited, and health, metrics and the OpenAPI document
//! are served.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::TestHome;

const ACME: &str = "acme-token-0123456789";
const GLOBEX: &str = "globex-token-0123456789";

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    fn start(home: &TestHome) -> Server {
        Server::start_with(
            home,
            &[
                ("TAM_API_TOKEN_ACME", ACME),
                ("TAM_API_TOKEN_GLOBEX", GLOBEX),
                ("TAM_RELEASE_SECRET_ACME", "release-secret"),
            ],
        )
    }

    /// `tam serve` on a free port with `env`, once it listens.
    pub(crate) fn start_with(home: &TestHome, env: &[(&str, &str)]) -> Server {
        Server::spawn(home, env, &["--listen", "127.0.0.1:0"])
    }

    /// `tam serve` where `[api] listen` says, with `env`, once it listens.
    pub(crate) fn start_listening(home: &TestHome, env: &[(&str, &str)]) -> Server {
        Server::spawn(home, env, &[])
    }

    fn spawn(home: &TestHome, env: &[(&str, &str)], args: &[&str]) -> Server {
        // No grace: a slot the first tick finds already begun is recorded missed, not run, so
        // what the tests see does not depend on the hour they run at (the daily scan at 07:00).
        let mut child = home
            .command()
            .envs(env.iter().copied())
            .args(["serve", "--tick-seconds", "3600", "--grace-minutes", "0"])
            .args(args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines.next().expect("serve exited before listening").unwrap();
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["msg"] == "listening" {
                break v["addr"].as_str().unwrap().to_owned();
            }
        };
        // Keep reading the log so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, url: format!("http://{addr}") }
    }

    pub(crate) fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (u16, Value) {
        self.call_with(method, path, token, body, &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut request = ureq::http::Request::builder().method(method).uri(format!("{}{path}", self.url));
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let request =
            request.header("content-type", "application/json").body(body.unwrap_or_default().to_owned()).unwrap();
        let mut response = agent.run(request).unwrap();
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }
}

fn two_tenants() -> TestHome {
    let home = TestHome::new();
    let book = home.file(
        "book.ndjson",
        r#"{"record":"account","tenant_id":"acme","id":"a1","name":"Northwind","rep_name":"Ana","rep_email":"ana@vendor.example"}
{"record":"ticket","tenant_id":"acme","id":"T1","account_id":"a1","priority":"P1","status":"open","created_at":"2026-03-01T00:00:00Z","subject":"API down"}
{"record":"account","tenant_id":"globex","id":"g1","name":"Globex","rep_name":"Bo","rep_email":"bo@vendor.example"}"#,
    );
    home.ok(&["import", book.to_str().unwrap()]);
    home.ok(&["scan", "--as-of", "2026-03-29T07:00:00Z", "--no-dispatch"]);
    std::fs::write(
        home.path().join("home/tam.toml"),
        "[api]\nmax_body_bytes = 4096\n[api.tokens]\nacme = \"TAM_API_TOKEN_ACME\"\nglobex = \"TAM_API_TOKEN_GLOBEX\"\n\
         [api.release_secrets]\nacme = \"TAM_RELEASE_SECRET_ACME\"\n",
    )
    .unwrap();
    home
}

#[test]
fn a_token_sees_only_its_tenant() {
    let home = two_tenants();
    let server = Server::start(&home);
    let (status, list) = server.call("GET", "/v1/accounts", Some(ACME), None);
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> =
        list["accounts"].as_array().unwrap().iter().map(|a| a["account_id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["a1"]);
    assert!(list["accounts"][0]["score"].as_u64().is_some());

    let (status, other) = server.call("GET", "/v1/accounts/g1", Some(ACME), None);
    let (missing_status, missing) = server.call("GET", "/v1/accounts/nope", Some(ACME), None);
    assert_eq!((status, missing_status), (404, 404), "{other} {missing}");
    assert_eq!(other["error"], "no account \"g1\"", "no hint that it exists elsewhere: {other}");
    let (status, own) = server.call("GET", "/v1/accounts/g1", Some(GLOBEX), None);
    assert_eq!((status, own["name"].as_str()), (200, Some("Globex")), "{own}");
    let (status, detail) = server.call("GET", "/v1/accounts/a1", Some(ACME), None);
    assert_eq!(status, 200);
    assert!(detail["health"]["deductions"].is_array() && detail["history"].as_array().unwrap().len() == 1, "{detail}");
    assert_eq!(detail["profile"]["sections"].as_array().map(Vec::len), Some(7));

    assert_eq!(server.call("GET", "/v1/accounts", None, None).0, 401);
    let (status, body) = server.call("GET", "/v1/accounts", Some("not-a-token-at-all"), None);
    assert_eq!((status, body["error"].as_str()), (401, Some("unknown token")));
    let task = json!({"type": "health_scan", "tenant_id": "globex"}).to_string();
    assert_eq!(server.call("POST", "/v1/tasks", Some(ACME), Some(&task)).0, 404, "a task for another tenant");
}

#[test]
fn heartbeats_are_validated_stored_and_size_limited() {
    let home = two_tenants();
    let server = Server::start(&home);
    let beat = json!({"account_id": "a1", "at": "2026-03-29T08:00:00Z", "api_call_count": 12}).to_string();
    let (status, body) = server.call("POST", "/v1/heartbeats", Some(ACME), Some(&beat));
    assert_eq!((status, body["accepted"].as_u64()), (202, Some(1)), "{body}");
    let (_, detail) = server.call("GET", "/v1/accounts/a1", Some(ACME), None);
    assert_eq!(detail["last_heartbeat"], "2026-03-29T08:00:00Z");

    let foreign = json!({"account_id": "g1"}).to_string();
    let (status, body) = server.call("POST", "/v1/heartbeats", Some(ACME), Some(&foreign));
    assert_eq!(status, 400, "another tenant's account is unknown here: {body}");
    assert!(body["rejected"][0].as_str().unwrap().contains("g1"), "{body}");
    assert!(
        body["error"].as_str().unwrap().starts_with("no heartbeat was accepted: heartbeat "),
        "the error shape: {body}"
    );
    let future = json!([{"account_id": "a1", "at": "2099-01-01T00:00:00Z"}]).to_string();
    let (status, body) = server.call("POST", "/v1/heartbeats", Some(ACME), Some(&future));
    assert!(status == 400 && body["rejected"][0].as_str().unwrap().contains("field at"), "{body}");
    let (status, body) = server.call("POST", "/v1/heartbeats", Some(ACME), Some("{not json"));
    assert!(status == 400 && body["error"].as_str().unwrap().contains("not JSON"), "{body}");
    let huge = json!({"account_id": "a1", "pad": "x".repeat(10_000)}).to_string();
    let (status, body) = server.call("POST", "/v1/heartbeats", Some(ACME), Some(&huge));
    assert!(status == 413 && body["error"].as_str().unwrap().starts_with("body:"), "a JSON error: {body}");
    let (status, body) = server.call("GET", "/v1/heartbeats", Some(ACME), None);
    assert!(status == 405 && body["error"].is_string(), "{body}");
}

#[test]
fn tasks_health_metrics_and_the_openapi_document() {
    let home = two_tenants();
    let server = Server::start(&home);
    let task = json!({"type": "update_relationship_profile", "account_id": "a1",
                      "stakeholders": [{"name": "Li Wei", "role": "CTO"}]})
    .to_string();
    let (status, result) = server.call("POST", "/v1/tasks", Some(ACME), Some(&task));
    assert_eq!((status, result["merged"]["added"].as_u64()), (200, Some(1)), "{result}");
    let (status, bad) = server.call("POST", "/v1/tasks", Some(ACME), Some(r#"{"type":"dance"}"#));
    assert!(status == 400 && bad["error"].as_str().unwrap().contains("supported"), "{bad}");

    let (status, health) = server.call("GET", "/healthz", None, None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(server.call("GET", "/metrics", None, None).0, 401, "metrics are per tenant too");
    let (status, metrics) = server.call("GET", "/metrics", Some(ACME), None);
    let metrics = metrics.as_str().unwrap().to_owned();
    assert_eq!(status, 200);
    assert!(metrics.contains("tam_accounts{tenant=\"acme\",status=\"green\"} 1"), "{metrics}");
    assert!(metrics.contains("tam_scans_total{tenant=\"acme\"} 1"), "{metrics}");
    assert!(!metrics.contains("globex"), "a tenant's token sees its own figures: {metrics}");
    assert!(metrics.contains("tam_outbox{tenant=\"acme\",channel=\"crm\",state=\"delivered\"} 1"), "{metrics}");
    let sample_order: Vec<&str> =
        metrics.lines().filter(|l| !l.starts_with('#')).map(|l| l.split('{').next().unwrap()).collect();
    let mut grouped = sample_order.clone();
    grouped.dedup();
    let distinct: std::collections::BTreeSet<&str> = sample_order.iter().copied().collect();
    assert_eq!(grouped.len(), distinct.len(), "each family's samples together: {metrics}");
    let (status, doc) = server.call("GET", "/v1/openapi.json", None, None);
    assert_eq!((status, doc["openapi"].as_str()), (200, Some("3.1.0")));
    for path in ["/v1/accounts", "/v1/accounts/{id}", "/v1/heartbeats", "/v1/tasks", "/v1/webhooks/jira", "/metrics"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let (status, missing) = server.call("GET", "/v2/nothing", None, None);
    assert_eq!((status, missing["error"].is_string()), (404, true));
}

#[test]
fn a_signed_release_drafts_notes_once_per_version_and_webhooks_refuse_what_is_not_signed() {
    let home = two_tenants();
    let server = Server::start(&home);
    let release = json!({"tenant_id": "acme", "release_info": {"version": "4.2.0", "date": "2026-03-30",
        "changes": [{"title": "Faster exports", "description": "Exports stream.", "tickets": ["T1"]}]}})
    .to_string();
    let signature = tam_connectors::jira::sign("release-secret", release.as_bytes());
    let post =
        |sig: &str| server.call_with("POST", "/v1/webhooks/release", None, Some(&release), &[("x-hub-signature", sig)]);
    let (status, first) = post(&signature);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["drafts"].as_array().map(Vec::len), Some(1), "{first}");
    let (_, again) = post(&signature);
    assert_eq!(
        again["drafts"][0]["draft"]["idem_key"], first["drafts"][0]["draft"]["idem_key"],
        "one draft per version"
    );
    assert_eq!(post(&tam_connectors::jira::sign("guess", release.as_bytes())).0, 401);
    let globex = release.replace("\"acme\"", "\"globex\"");
    let (status, _) =
        server.call_with("POST", "/v1/webhooks/release", None, Some(&globex), &[("x-hub-signature", &signature)]);
    assert_eq!(status, 401, "globex has no release secret here, and the answer does not say so");

    let (status, body) =
        server.call("POST", "/v1/webhooks/jira", None, Some(r#"{"webhookEvent":"jira:issue_updated"}"#));
    assert!(status == 503 && body["error"].as_str().unwrap().contains("JIRA_WEBHOOK_SECRET"), "{body}");
}

#[test]
fn heartbeats_over_the_tenants_rate_are_refused_and_other_tenants_are_not() {
    let home = two_tenants();
    let config = std::fs::read_to_string(home.path().join("home/tam.toml")).unwrap();
    let config = config
        .replace("max_body_bytes = 4096", "max_body_bytes = 4096\nheartbeats_per_second = 0.5\nheartbeat_burst = 2");
    std::fs::write(home.path().join("home/tam.toml"), config).unwrap();
    let server = Server::start(&home);
    let beat = json!({"account_id": "a1"}).to_string();
    let statuses: Vec<u16> = (0..3).map(|_| server.call("POST", "/v1/heartbeats", Some(ACME), Some(&beat)).0).collect();
    assert_eq!(statuses, [202, 202, 429], "a burst of two, then the average");
    let (status, _) =
        server.call("POST", "/v1/heartbeats", Some(GLOBEX), Some(&json!({"account_id": "g1"}).to_string()));
    assert_eq!(status, 202, "another tenant has its own budget");
}

#[test]
fn the_dashboard_sign_in_form_keeps_the_token_out_of_urls() {
    let home = two_tenants();
    let server = Server::start(&home);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let form = |token: &str| {
        agent
            .post(&format!("{}/sign-in", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("token={}", token.replace('-', "%2D")).as_bytes())
            .unwrap()
    };
    let signed = form(ACME);
    assert_eq!(signed.status().as_u16(), 303);
    assert_eq!(signed.headers().get("location").unwrap(), "/");
    let cookie = signed.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    assert!(cookie.starts_with(&format!("tam_token={ACME};")) && cookie.contains("HttpOnly"), "{cookie}");
    let page =
        agent.get(&format!("{}/", server.url)).header("cookie", cookie.split(';').next().unwrap()).call().unwrap();
    let html = page.into_body().read_to_string().unwrap();
    assert!(html.contains("<span class=\"muted\">acme</span>") && !html.contains("globex"), "acme's dashboard only");
    // Signing out forgets the token: the cookie is emptied, and the page asks for a token again.
    let out = agent.post(&format!("{}/sign-out", server.url)).send(&[][..]).unwrap();
    assert_eq!(out.status().as_u16(), 303);
    let cleared = out.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cleared.starts_with("tam_token=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let after = agent.get(&format!("{}/", server.url)).header("cookie", "tam_token=").call().unwrap();
    assert_eq!(after.status().as_u16(), 401);
    assert_eq!(form("wrong-token-0123456789").status().as_u16(), 401);
    let post = |content_type: &str, body: &str| {
        let sent = agent.post(&format!("{}/sign-in", server.url)).header("content-type", content_type);
        sent.send(body.as_bytes()).unwrap().status().as_u16()
    };
    assert_eq!(post("application/x-www-form-urlencoded", "other=1"), 401, "no token is no known token");
    assert_eq!(post("application/json", "{\"token\":1}"), 400, "not a form");
}

#[test]
fn the_openapi_document_lists_every_v1_route_and_each_listed_route_answers() {
    let home = two_tenants();
    let server = Server::start(&home);
    let (_, doc) = server.call("GET", "/v1/openapi.json", None, None);
    let paths = doc["paths"].as_object().unwrap();
    // Every /v1 route the router serves is documented...
    let router = std::fs::read_to_string(crate::repo().join("crates/tam/src/http/mod.rs")).unwrap();
    let routed: Vec<&str> = router
        .split(".route(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .filter(|p| p.starts_with("/v1/"))
        .collect();
    assert!(routed.len() >= 7, "{routed:?}");
    for route in &routed {
        assert!(paths.contains_key(*route), "{route} is served but not in the OpenAPI document");
    }
    // ...and every documented operation is served (a bad request or a refusal, not a 404/405).
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path.replace("{id}", "a1");
            let body = (method == "post").then_some("{}");
            let (status, answer) = server.call(&method.to_uppercase(), &concrete, Some(ACME), body);
            assert!(![404, 405].contains(&status), "{method} {path} answered {status}: {answer}");
        }
    }
}
