//! tam: the binary, a thin shell around `tam-app`. `cli/` parses each command's arguments and
//! prints its results for people (tables) or machines (`--json`); `config/` reads `tam.toml`;
//! `http/` serves the API and the dashboard; `clients.rs` builds every network client once
//! per process and hands out the channels and sources made on them.
//!
//! **Invariant:** the clock is read once per command or job, and passed down.
//! Exit codes: 0 success; 1 failure (one line on stderr); 2 usage error; 3 partial success (some records
//! rejected or some accounts not scanned; the rest was done and stored).

mod a2a;
mod cli;
mod clients;
mod config;
mod home;
mod http;
mod mcp;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cli::{accounts, agent, bench, demo, doctor, explain, import, migrate, outbox, scan, serve, sync, webhook};
use tam_app::log;

/// A Technical Account Manager agent: account health, explained, and escalations seen coming.
#[derive(Debug, Parser)]
#[command(name = "tam", version, propagate_version = true)]
struct Cli {
    /// Data directory (database and config). Default: the platform data dir.
    #[arg(long, global = true, env = "TAM_HOME", value_name = "DIR")]
    home: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the home directory, a commented config file and the database.
    Init,
    /// Import accounts, tickets and heartbeats from NDJSON or CSV files.
    Import(import::Args),
    /// Score every account at one instant, store snapshots and escalation decisions.
    Scan(scan::Args),
    /// A tenant's accounts, worst first, with their health and escalation.
    Accounts(accounts::AccountsArgs),
    /// An account's open tickets, most urgent and oldest first.
    Tickets(accounts::TicketsArgs),
    /// Replay the daily scan over the tenant's history: how often its alerts came before a real
    /// escalation, for its rules and a grid of others, and which to use.
    Backtest(cli::backtest::Args),
    /// Why an account has its score, and its score history.
    Explain(explain::Args),
    /// Create a demo tenant with a realistic book of business, scan it, show the result.
    Demo(demo::Args),
    /// Generate a large book of business, time import and scan, report peak memory.
    Bench(bench::Args),
    /// The outbox of intended effects: list them, retry failed ones.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Outreach drafts saved for reps to review.
    #[command(subcommand)]
    Drafts(outbox::DraftsCommand),
    /// Reports on what reps made of tam's work.
    #[command(subcommand)]
    Report(cli::report::ReportCommand),
    /// The local event streams other agents read.
    #[command(subcommand)]
    Events(outbox::EventsCommand),
    /// The agent's registration; with --json, its A2A agent card (as `tam serve` serves it).
    Agent(agent::AgentArgs),
    /// Run a task (the seven task types of the agent).
    #[command(subcommand)]
    Task(agent::TaskCommand),
    /// Technical relationship profiles.
    #[command(subcommand)]
    Profile(agent::ProfileCommand),
    /// Pull accounts and tickets from a connected source into the store.
    #[command(subcommand)]
    Sync(sync::SyncCommand),
    /// The scheduler and the dispatcher, until SIGTERM.
    Serve(serve::Args),
    /// What the scheduler ran, failed or missed.
    Jobs(serve::JobsArgs),
    /// Webhooks from ticket sources (the server takes them; this replays a recorded one).
    #[command(subcommand)]
    Webhook(webhook::WebhookCommand),
    /// Notion set-up.
    #[command(subcommand)]
    Notion(sync::NotionCommand),
    /// Check the home and every configured connection (one tiny call per model).
    Doctor(doctor::Args),
    /// The MCP server over stdio, for one tenant: LLM clients read accounts and run tasks
    /// (drafts only, never sent).
    Mcp(cli::mcp::Args),
    /// Copy the home's store into an empty PostgreSQL database, for replicas to share.
    Migrate(migrate::Args),
}

/// What a command achieved, for the exit code.
enum Outcome {
    Done,
    Partial,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Partial) => ExitCode::from(3),
        // A reader that stopped reading (`tam scan | head`) is not a failure of tam.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            warn(format_args!("error: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind) == Some(BrokenPipe)
    })
}

pub use log::warn;

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let home = home::Home::resolve(cli.home)?;
    match cli.command {
        Command::Init => home::init(&home),
        Command::Import(args) => import::run(&home, args),
        Command::Scan(args) => scan::run(&home, args),
        Command::Accounts(args) => accounts::accounts(&home, args),
        Command::Tickets(args) => accounts::tickets(&home, args),
        Command::Backtest(args) => cli::backtest::run(&home, args),
        Command::Explain(args) => explain::run(&home, args),
        Command::Demo(args) => demo::run(&home, args),
        Command::Bench(args) => bench::run(&home, args),
        Command::Outbox(command) => outbox::run(&home, command),
        Command::Drafts(command) => outbox::drafts(&home, command),
        Command::Events(command) => outbox::events(&home, command),
        Command::Report(command) => cli::report::run(&home, command),
        Command::Agent(args) => agent::show(&home, args),
        Command::Task(command) => agent::task(&home, command),
        Command::Profile(command) => agent::profile(&home, command),
        Command::Sync(command) => sync::run(&home, command),
        Command::Notion(command) => sync::notion(&home, command),
        Command::Webhook(command) => webhook::run(&home, command),
        Command::Serve(args) => serve::run(&home, args),
        Command::Jobs(args) => serve::jobs_command(&home, args),
        Command::Doctor(args) => doctor::run(&home, args),
        Command::Migrate(args) => migrate::run(&home, args),
        Command::Mcp(args) => cli::mcp::run(&home, args),
    }
}
