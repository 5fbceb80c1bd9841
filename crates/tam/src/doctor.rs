//! `tam doctor`: checks the home and each configured connection by doing what it does, once.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use serde_json::json;
use tam_writer::llm::call;
use tam_writer::prompt::Prompt;

use crate::Outcome;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let mut checks = vec![json!({
        "check": "store", "ok": true,
        "detail": format!("{} (schema version {})", home.db_path().display(), store.schema_version()?),
    })];
    if config.event_bus.kind == "redis" {
        let mut bus = tam_connectors::redis_bus::RedisBus::new(
            &config.event_bus.redis_url,
            tam_core::TenantId::parse("tenant", "doctor").expect("a constant id"),
            config.event_bus.maxlen,
        );
        checks.push(match bus.ping() {
            Ok(()) => json!({"check": "event bus (redis)", "ok": true, "detail": config.event_bus.redis_url}),
            Err(e) => json!({"check": "event bus (redis)", "ok": false, "detail": e.to_string()}),
        });
    }
    if config.chat.kind == "webhook" {
        // Posting would alert a real space; the check stops at "each URL is there".
        let vars = config
            .chat
            .webhooks
            .iter()
            .map(|(space, var)| (space.as_str(), var))
            .chain(config.chat.default_webhook_env.iter().map(|v| ("(default)", v)));
        for (space, var) in vars {
            let set = std::env::var(var).is_ok_and(|v| v.starts_with("https://") || v.starts_with("http://"));
            checks.push(json!({
                "check": format!("chat webhook {space}"), "ok": set,
                "detail": if set { format!("{var} holds a URL") } else { format!("{var} is not set to a URL") },
            }));
        }
    }
    if config.chat.kind == "api" {
        checks.push(match crate::channels::chat_api(&config.chat).map(|mut api| api.check()) {
            Ok(Ok(detail)) => json!({"check": "chat (api)", "ok": true, "detail": detail}),
            Ok(Err(e)) => json!({"check": "chat (api)", "ok": false, "detail": e}),
            Err(e) => json!({"check": "chat (api)", "ok": false, "detail": format!("{e:#}")}),
        });
    }
    if config.mail.kind == "gmail" {
        // Creating a draft or sending would touch a real mailbox; a token proves the delegation.
        checks.push(match crate::channels::gmail(&config.mail) {
            Ok((_, alerts)) => match alerts.check() {
                Ok(detail) => json!({"check": "mail (gmail)", "ok": true, "detail": detail}),
                Err(e) => json!({"check": "mail (gmail)", "ok": false, "detail": e}),
            },
            Err(e) => json!({"check": "mail (gmail)", "ok": false, "detail": format!("{e:#}")}),
        });
    }
    if config.notion.tenant.is_some() {
        checks.extend(notion_checks(&config.notion));
    }
    if config.writer.mode != "llm" {
        checks.push(json!({"check": "writer", "ok": true, "detail": "templates (offline); no model configured"}));
    }
    // The smallest useful call: it proves the URL, the key, the model name and the wire format.
    let prompt = Prompt { system: "Answer with the single word ok.".to_owned(), user: "ok?".to_owned() };
    for model in &config.writer.models {
        let started = Instant::now();
        let tiny = tam_writer::llm::ModelConfig { max_tokens: 8, ..model.clone() };
        let result = call(&tiny, &prompt);
        let ms = started.elapsed().as_millis();
        checks.push(match result {
            Ok(c) => json!({
                "check": format!("model {}", model.label()), "ok": true,
                "detail": format!("answered in {ms} ms ({} input, {} output tokens)",
                    c.input_tokens.map_or("?".to_owned(), |n| n.to_string()),
                    c.output_tokens.map_or("?".to_owned(), |n| n.to_string())),
            }),
            Err(e) => json!({"check": format!("model {}", model.label()), "ok": false, "detail": e.to_string()}),
        });
    }
    let failed = checks.iter().filter(|c| c["ok"] == false).count();
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::Value::Array(checks))?;
    } else {
        for c in &checks {
            let mark = if c["ok"] == true { "ok  " } else { "FAIL" };
            writeln!(
                out,
                "{mark}  {:<40}  {}",
                c["check"].as_str().unwrap_or_default(),
                c["detail"].as_str().unwrap_or_default()
            )?;
        }
    }
    Ok(if failed > 0 { Outcome::Partial } else { Outcome::Done })
}

/// Each configured Notion database, read once: proves the token, the sharing and the id.
fn notion_checks(section: &crate::config::NotionSection) -> Vec<serde_json::Value> {
    let notion = match crate::sync::client(section) {
        Ok(n) => n,
        Err(e) => return vec![json!({"check": "notion", "ok": false, "detail": format!("{e:#}")})],
    };
    let databases = [("accounts", &section.accounts_database), ("tickets", &section.tickets_database)];
    databases
        .into_iter()
        .map(|(name, id)| {
            let check = format!("notion {name} database");
            let Some(id) = id else {
                return json!({"check": check, "ok": false, "detail": format!("[notion] {name}_database is not set")});
            };
            match notion.request("GET", &format!("/v1/databases/{id}"), None) {
                Ok(db) => {
                    let title: String = db["title"]
                        .as_array()
                        .map(|runs| runs.iter().filter_map(|r| r["plain_text"].as_str()).collect())
                        .unwrap_or_default();
                    let sources = db["data_sources"].as_array().map_or(0, Vec::len);
                    let api = if sources > 1 {
                        format!("{sources} data sources: needs Notion-Version 2025-09-03")
                    } else {
                        format!("Notion-Version {}", section.version)
                    };
                    json!({"check": check, "ok": sources <= 1, "detail": format!("{title:?} ({api})")})
                }
                Err(e) => json!({"check": check, "ok": false, "detail": e.to_string()}),
            }
        })
        .collect()
}
