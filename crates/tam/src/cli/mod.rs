//! The commands: each parses its arguments, calls the application (`tam-app` and the crates
//! below it) and prints the result for people (tables) or machines (`--json`). `clock`,
//! `progress` and `rng` are what the commands share.

pub mod accounts;
pub mod agent;
pub mod backtest;
pub mod bench;
pub mod clock;
pub mod demo;
pub mod doctor;
pub mod explain;
pub mod import;
pub mod mcp;
pub mod migrate;
pub mod outbox;
pub mod progress;
pub mod report;
pub mod rng;
pub mod scan;
pub mod serve;
pub mod sync;
pub mod webhook;
