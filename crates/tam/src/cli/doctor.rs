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
        "detail": format!("{} (schema version {})", home.store_location(&config), store.schema_version()?),
    })];
    if config.event_bus.kind == crate::config::EventBusKind::Redis {
        let mut bus = tam_connectors::redis_bus::RedisBus::new(
            &config.event_bus.redis_url,
            tam_core::TenantId::parse("tenant", "doctor").expect("a constant id"),
            config.event_bus.maxlen,
        );
        // The URL may carry a password: it is shown without it.
        let url = tam_connectors::redis_bus::redacted_url(&config.event_bus.redis_url);
        let pinged = bus.ping().map(|()| url).map_err(|e| e.to_string());
        checks.push(check("event bus (redis)", pinged));
    }
    if config.chat.kind == crate::config::ChatKind::Webhook {
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
    if config.chat.kind == crate::config::ChatKind::Api {
        let api = crate::clients::chat_api(&config.chat, crate::clients::pacing(&config)).map_err(|e| format!("{e:#}"));
        checks.push(check("chat (api)", api.and_then(|mut api| api.check())));
    }
    if config.mail.kind == crate::config::MailKind::Gmail {
        // Creating a draft or sending would touch a real mailbox; a token proves the delegation.
        let gmail = crate::clients::gmail_all(&config.mail).map_err(|e| format!("{e:#}"));
        let (alerts, fates) = match gmail {
            Ok((_, alerts, fates)) => (alerts.check(), Some(fates)),
            Err(e) => (Err(e), None),
        };
        checks.push(check("mail (gmail)", alerts));
        // What became of each draft is read from the reps' Sent mail: delegation is domain-wide,
        // so the alerts mailbox's token proves it for every rep.
        if let (Some(fates), Some(from)) = (fates, config.mail.alerts_from.as_deref()) {
            checks.push(check("mail (draft fates)", fates.check(from)));
        }
    }
    if !config.api.feedback_secrets.is_empty() {
        checks.push(check("alert feedback", feedback_check(&config.api)));
    }
    if config.notion.tenant.is_some() {
        checks.extend(notion_checks(&config.notion, crate::clients::pacing(&config)));
    }
    if config.jira.tenant.is_some() {
        let me = crate::clients::sources::jira_client(&config).map_err(|e| format!("{e:#}")).and_then(|jira| {
            let me = jira.myself().map_err(|e| e.to_string())?;
            Ok(format!("signed in as {}", me["displayName"].as_str().or(me["emailAddress"].as_str()).unwrap_or("?")))
        });
        checks.push(check("jira", me));
        let secret = config.jira.webhook_secret_env.value().is_some();
        checks.push(json!({
            "check": "jira webhook secret", "ok": true,
            "detail": if secret { format!("{} is set", config.jira.webhook_secret_env) }
                      else { format!("{} is not set: webhooks are refused until it is", config.jira.webhook_secret_env) },
        }));
    }
    if config.kayako.tenant.is_some() {
        checks.push(check(format!("kayako ({})", config.kayako.api), crate::clients::sources::kayako_check(&config)));
    }
    if config.writer.mode != crate::config::WriterMode::Llm {
        checks.push(json!({"check": "writer", "ok": true, "detail": "templates (offline); no model configured"}));
    }
    // The smallest useful call: it proves the URL, the key, the model name and the wire format.
    let prompt = Prompt { system: "Answer with the single word ok.".to_owned(), user: "ok?".to_owned() };
    for model in &config.writer.models {
        let started = Instant::now();
        let tiny = tam_writer::llm::ModelConfig { max_tokens: 8, ..model.clone() };
        let result = call(&tiny, &prompt);
        let ms = started.elapsed().as_millis();
        let answered = result
            .map(|c| {
                format!(
                    "answered in {ms} ms ({} input, {} output tokens)",
                    c.input_tokens.map_or("?".to_owned(), |n| n.to_string()),
                    c.output_tokens.map_or("?".to_owned(), |n| n.to_string())
                )
            })
            .map_err(|e| e.to_string());
        checks.push(check(format!("model {}", model.label()), answered));
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

/// Each configured Notion database, read once: proves the token, the sharing and the id. Then
/// its schema (one read per data source): whether a sync can leave out tam's own edits.
fn notion_checks(
    section: &crate::config::NotionSection,
    pacing: std::sync::Arc<dyn tam_core::rate::Limits>,
) -> Vec<serde_json::Value> {
    let notion = match crate::clients::sources::notion_client(section, pacing) {
        Ok(n) => n,
        Err(e) => return vec![check("notion", Err(format!("{e:#}")))],
    };
    let databases = [
        ("accounts", &section.accounts_database, &section.accounts.last_edited_by),
        ("tickets", &section.tickets_database, &section.tickets.last_edited_by),
    ];
    let mut checks = Vec::new();
    for (name, id, edited_by) in databases {
        let Some(id) = id else {
            checks.push(check(format!("notion {name} database"), Err(format!("[notion] {name}_database is not set"))));
            continue;
        };
        // Asked with the data-source version, which lists the database's sources: a
        // database with several is read through each of them.
        let version = tam_connectors::notion::DATA_SOURCE_VERSION;
        let read = notion.database(id);
        let sources: Vec<String> = read.as_ref().map_or_else(|_| Vec::new(), tam_connectors::notion::source_ids);
        let usable = read.map_err(|e| e.to_string()).map(|db| {
            let title = tam_connectors::notion::records::plain_text(&db["title"]);
            match sources.len() {
                n if n > 1 || section.version.as_str() >= version => {
                    format!("{title:?} ({n} data sources, read through the data-source API, Notion-Version {version})")
                }
                _ => format!("{title:?} (one data source, queried with Notion-Version {})", section.version),
            }
        });
        checks.push(check(format!("notion {name} database"), usable));
        if edited_by.is_empty() || sources.is_empty() {
            continue;
        }
        // A query's filter may name a property of any of the sources: each must have it.
        let missing: Result<Vec<String>, String> = sources
            .iter()
            .map(|source| {
                let ds = notion.data_source(source);
                ds.map(|ds| ds["properties"][edited_by.as_str()]["type"] != "last_edited_by").map_err(|e| e.to_string())
            })
            .zip(&sources)
            .filter_map(|(missing, source)| match missing {
                Ok(false) => None,
                Ok(true) => Some(Ok(source.clone())),
                Err(e) => Some(Err(e)),
            })
            .collect();
        let skips = missing.and_then(|missing| match missing.as_slice() {
            [] => Ok(format!("\"{edited_by}\" (Last edited by): syncs leave out tam's own edits")),
            _ => Err(format!(
                "no property \"{edited_by}\" of type Last edited by, so every sync reads again each page tam \
                 wrote: add a property of type \"Last edited by\" named \"{edited_by}\" to the database \
                 (or name yours in [notion.{name}] last_edited_by)"
            )),
        });
        checks.push(check(format!("notion {name} own edits"), skips));
    }
    checks
}

/// One line of the report: what was checked, and what was found or what went wrong.
/// Which tenants' alerts carry feedback links, and where to: every configured secret set and
/// long enough, and an address to link to.
fn feedback_check(api: &crate::config::ApiSection) -> Result<String, String> {
    let unset: Vec<String> = api
        .feedback_secrets
        .iter()
        .filter(|(_, var)| var.value().is_none())
        .map(|(tenant, var)| format!("{tenant} ({var} is not set)"))
        .collect();
    if !unset.is_empty() {
        return Err(format!("no feedback links for {}", unset.join(", ")));
    }
    let (links, problems) = api.feedback_links();
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let tenants: Vec<&str> = api.feedback_secrets.keys().map(String::as_str).collect();
    match (links, &api.public_url) {
        (Some(links), Some(_)) => Ok(format!("alerts of {} link to {}/feedback", tenants.join(", "), links.base())),
        // The listen address works on this machine only: reps reading mail elsewhere need the
        // address they reach tam serve at.
        (Some(links), None) => Err(format!(
            "alerts of {} link to {}/feedback, which reps elsewhere cannot reach: set [api] public_url",
            tenants.join(", "),
            links.base()
        )),
        (None, _) => Err("set [api] public_url: the links need the address tam serve is reached at".to_owned()),
    }
}

fn check(name: impl Into<String>, result: Result<String, String>) -> serde_json::Value {
    let (ok, detail) = match result {
        Ok(detail) => (true, detail),
        Err(detail) => (false, detail),
    };
    json!({"check": name.into(), "ok": ok, "detail": detail})
}
