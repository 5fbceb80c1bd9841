//! `tam migrate --to postgres://…`: the home's store (every table, every tenant) copied into an
//! empty PostgreSQL database, each table counted and checksummed again in the target.

use std::io::Write;

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use tam_store::{Location, Store};

use crate::Outcome;
use crate::home::Home;

#[derive(clap::Args)]
pub struct Args {
    /// The empty PostgreSQL database to copy into, `postgres://user:password@host:port/db`;
    /// its schema is created. Then point `[store] url` (or `TAM_DATABASE_URL`) at it.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Shown without the URL's password.
impl std::fmt::Debug for Args {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let to = Location::from_url(&self.to).map_or_else(|_| "[not a PostgreSQL URL]".to_owned(), |l| l.to_string());
        f.debug_struct("Args").field("to", &to).field("json", &self.json).finish()
    }
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    // The URL may hold a password: every message shows it without.
    let target = Location::from_url(&args.to).map_err(|why| anyhow!("--to: {why}"))?;
    let (source, config) = home.open()?;
    let from = home.store_location(&config);
    if from == target {
        bail!("--to {target} is the home's store already: there is nothing to copy");
    }
    let mut dest = Store::open_at(&target)?;
    let mut err = std::io::stderr().lock();
    let copied = source.copy_to(&mut dest, |t| {
        if !args.json {
            let _ = writeln!(err, "copied {:<20} {:>10} rows", t.table, t.rows);
        }
    })?;
    let rows: u64 = copied.iter().map(|t| t.rows).sum();
    let mut out = std::io::stdout().lock();
    if args.json {
        let report = json!({"from": from.to_string(), "to": target.to_string(), "rows": rows, "tables": copied});
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(Outcome::Done);
    }
    writeln!(out, "{:<20} {:>10}  sha256 (the same read from both)", "table", "rows")?;
    for t in &copied {
        writeln!(out, "{:<20} {:>10}  {}", t.table, t.rows, t.checksum)?;
    }
    writeln!(out, "copied {rows} rows of {} tables from {from} to {target}, verified", copied.len())?;
    writeln!(out, "next: set [store] url in tam.toml (or TAM_DATABASE_URL) to that database")?;
    Ok(Outcome::Done)
}
