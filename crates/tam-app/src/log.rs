//! What tam says on stderr: plain lines for a person at a terminal, JSON lines under
//! `tam serve` (a daemon's log is read by machines).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use tam_core::Timestamp;

/// Set by `tam serve`: everything on stderr is then a JSON log line.
pub static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Whether stderr carries JSON log lines.
pub fn json() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// One JSON log line on stderr: time, level, message, and `fields`.
pub fn event(level: &str, msg: &str, fields: Value) {
    let mut line = json!({"ts": Timestamp::now(), "level": level, "msg": msg});
    if let (Some(line), Some(fields)) = (line.as_object_mut(), fields.as_object()) {
        line.extend(fields.clone());
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// One line on stderr (a JSON log line under `tam serve`). A closed stderr is ignored: there
/// is nobody left to tell.
pub fn warn(line: std::fmt::Arguments<'_>) {
    if json() {
        event("warn", &line.to_string(), json!({}));
        return;
    }
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
