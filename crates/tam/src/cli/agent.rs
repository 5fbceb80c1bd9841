//! `tam agent`, `tam task run`, `tam profile show`: the agent as other agents and reps use it.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use tam_core::AccountId;

use crate::Outcome;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn show(home: &Home, args: AgentArgs) -> Result<Outcome> {
    let r = tam_core::agent::registration();
    let mut out = std::io::stdout().lock();
    if args.json {
        // The card `tam serve` serves: its endpoint where this home's API is reached.
        let config = crate::config::Config::load(&home.config_path(), crate::config::tam_env()?)?;
        let listen = config.api.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let card = crate::a2a::card(&crate::a2a::base_url(config.api.public_url.as_deref(), listen));
        writeln!(out, "{}", serde_json::to_string(&card)?)?;
    } else {
        writeln!(out, "{} ({})\n{}\n", r.name, r.id, r.description)?;
        writeln!(out, "capabilities:  {}", r.capabilities.join(", "))?;
        writeln!(out, "task types:    {}", r.task_types.join(", "))?;
        writeln!(out, "tags:          {}", r.tags.join(", "))?;
        writeln!(out, "max concurrent tasks: {}", r.max_concurrent_tasks)?;
    }
    Ok(Outcome::Done)
}

/// Where the card says the API is when `[api]` sets neither `public_url` nor `listen`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8787";

#[derive(Debug, clap::Subcommand)]
pub enum TaskCommand {
    /// Run one task (JSON from FILE, or `-` for standard input) and print its result as JSON.
    Run {
        /// The task file, or `-`.
        file: PathBuf,
    },
}

pub fn task(home: &Home, command: TaskCommand) -> Result<Outcome> {
    let TaskCommand::Run { file } = command;
    let text = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).context("cannot read the task from standard input")?;
        s
    } else {
        std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let task: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
    let (mut store, config) = home.open()?;
    let mut channels = crate::clients::open(home, &config)?;
    let task = tam_agent::tasks::Task::parse(&task)?;
    let result = channels.run_task(&mut store, &config.rules, task)?;
    writeln!(std::io::stdout().lock(), "{result}")?;
    Ok(if result.get("partial").and_then(serde_json::Value::as_bool) == Some(true) {
        Outcome::Partial
    } else {
        Outcome::Done
    })
}

#[derive(Debug, clap::Subcommand)]
pub enum ProfileCommand {
    /// An account's technical relationship profile.
    Show {
        /// The account id.
        account: String,
        /// The tenant, when the account id exists in several.
        #[arg(long, value_name = "TENANT")]
        tenant: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn profile(home: &Home, command: ProfileCommand) -> Result<Outcome> {
    let ProfileCommand::Show { account, tenant, json } = command;
    let (store, _) = home.open()?;
    let account = AccountId::parse("account", &account).map_err(|e| anyhow::anyhow!("{e}"))?;
    let tenant = crate::cli::explain::resolve_tenant(&store, &account, tenant.as_deref())?;
    let view = tam_app::views::profile(&store, &tenant, &account)?;
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(&view)?)?;
        return Ok(Outcome::Done);
    }
    let facts = store.facts(&tenant, &account)?;
    writeln!(out, "Technical Relationship Profile - {} ({account}, tenant {tenant})", view.name)?;
    match &view.health {
        Some(s) => writeln!(out, "\nHealth: {}/100, {}, {} (last scan {})", s.score, s.status, s.trend, s.last_scan)?,
        None => writeln!(out, "\nHealth: not scanned yet")?,
    }
    for name in tam_store::PROFILE_SECTIONS {
        let items: Vec<&tam_store::Fact> = facts.iter().filter(|f| f.section == name).collect();
        writeln!(out, "\n{} ({})", capitalise(name), items.len())?;
        for f in items {
            writeln!(out, "  - {}: {}  [{}]", f.key, f.value, f.source)?;
        }
    }
    writeln!(out, "\nCommunications ({})", view.communications.len())?;
    for d in &view.communications {
        writeln!(out, "  - {} {}: {}", d.created_at, d.kind, d.subject)?;
    }
    writeln!(out, "\nCo-development opportunities ({})", view.opportunities.len())?;
    for o in &view.opportunities {
        writeln!(out, "  - {} [{}] {}", o.title, o.status, o.description)?;
    }
    writeln!(out, "\nHistory: {} change(s) recorded (--json lists them)", view.history.len())?;
    Ok(Outcome::Done)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}
