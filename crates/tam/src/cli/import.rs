//! `tam import FILE...`

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use tam_agent::import::{Format, ImportReport, Importer, RecordKind};
use tam_core::Timestamp;

use crate::Outcome;
use crate::cli::progress::Progress;
use crate::home::Home;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// NDJSON files (one JSON object per line, "record" = account|ticket|heartbeat) or CSV
    /// files with a header row. `-` reads NDJSON from standard input.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// The record kind of CSV files: accounts, tickets, heartbeats or escalations. Default: from
    /// the header.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    kind: Option<RecordKind>,

    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_kind(raw: &str) -> Result<RecordKind, String> {
    RecordKind::from_flag(raw)
        .ok_or_else(|| format!("unknown kind {raw:?} (expected accounts, tickets, heartbeats or escalations)"))
}

/// `.ndjson`, `.jsonl` and `.json` files are NDJSON; anything else is CSV when `--kind` is
/// given or the name ends in `.csv`, NDJSON otherwise.
fn format_of(path: &Path, kind: Option<RecordKind>) -> Format {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("ndjson" | "jsonl" | "json") => Format::Ndjson,
        Some("csv") => Format::Csv(kind),
        _ if kind.is_some() => Format::Csv(kind),
        _ => Format::Ndjson,
    }
}

/// Rejections printed one per line; the rest are counted.
const SHOW_REJECTED: usize = 50;

pub fn run(home: &Home, args: Args) -> Result<Outcome> {
    let (mut store, config) = home.open()?;
    let opts = config.rules.import_options(Timestamp::now());
    let progress = Progress::new("importing, records stored:", 0);
    let mut importer = Importer::new(&mut store, opts).with_progress(|done| progress.update(done));
    for path in &args.files {
        let name = path.display().to_string();
        if name == "-" {
            if std::io::stdin().is_terminal() {
                bail!("reading records from standard input, but it is a terminal; pipe a file in");
            }
            importer.read("-", BufReader::with_capacity(1 << 16, std::io::stdin()), Format::Ndjson)?;
            continue;
        }
        match File::open(path) {
            Ok(file) => importer.read(&name, BufReader::with_capacity(1 << 16, file), format_of(path, args.kind))?,
            Err(e) => importer.unreadable(&name, format!("cannot open: {e}")),
        }
    }
    let report = importer.finish()?;
    progress.finish();
    print_report(&report, args.json)?;
    Ok(if report.rejected.is_empty() { Outcome::Done } else { Outcome::Partial })
}

pub fn print_report(report: &ImportReport, json: bool) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let value = serde_json::json!({
            "imported": report.imported(),
            "accounts": report.accounts,
            "tickets": report.tickets,
            "heartbeats": report.heartbeats,
            "escalations": report.escalations,
            "tenants_created": report.tenants_created.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "rejected": report.rejected.len(),
            "errors": report.rejected.iter().map(|r| serde_json::json!({
                "file": r.source, "line": r.line, "kind": r.kind.map(|k| k.as_str()), "id": r.id,
                "field": r.error.field, "reason": r.error.reason, "message": r.to_string(),
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{value}")?;
    } else {
        for r in report.rejected.iter().take(SHOW_REJECTED) {
            crate::warn(format_args!("rejected: {r}"));
        }
        if report.rejected.len() > SHOW_REJECTED {
            crate::warn(format_args!(
                "rejected: ... and {} more (use --json for all)",
                report.rejected.len() - SHOW_REJECTED
            ));
        }
        let created = if report.tenants_created.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = report.tenants_created.iter().map(|t| t.as_str()).collect();
            format!("; new tenants: {}", names.join(", "))
        };
        writeln!(
            out,
            "imported {} records ({} accounts, {} tickets, {} heartbeats{}); rejected {}{created}",
            report.imported(),
            report.accounts,
            report.tickets,
            report.heartbeats,
            if report.escalations > 0 { format!(", {} escalations", report.escalations) } else { String::new() },
            report.rejected.len(),
        )?;
    }
    Ok(())
}
