//! placeholder
use crate::{Outcome, home::Home};
use anyhow::Result;
#[derive(Debug, clap::Args)]
pub struct Args {}
pub fn run(_home: &Home, _args: Args) -> Result<Outcome> {
    anyhow::bail!("not yet")
}
