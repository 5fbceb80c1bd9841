//! `tam mcp`: the MCP server over stdio, for Claude Desktop, Claude Code and IDE assistants.

use std::sync::Arc;

use anyhow::Result;

use crate::Outcome;
use crate::cli::scan::one_tenant;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The tenant whose accounts the client sees (required when the home has several).
    #[arg(long, value_name = "TENANT")]
    tenant: Option<String>,
}

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (store, config) = home.open()?;
    let tenant = one_tenant(&store, args.tenant.as_deref())?;
    drop(store);
    let clients = Arc::new(crate::clients::Clients::open(&config)?);
    crate::mcp::serve_stdio(crate::mcp::App::new(home.clone(), config, clients), tenant)?;
    Ok(Outcome::Done)
}
