//! The command line's clock: instants given on the command line ("now" is `tam_app::now`).

use tam_core::Timestamp;

/// An RFC 3339 instant from the command line, within the years the store can hold.
pub fn parse_instant(raw: &str) -> Result<Timestamp, String> {
    let t: Timestamp = raw
        .trim()
        .parse()
        .map_err(|e| format!("{raw:?} is not an RFC 3339 timestamp like 2026-03-29T07:00:00Z ({e})"))?;
    if !tam_store::in_range(t) {
        return Err(format!("{t} is outside the years 1678..2261"));
    }
    Ok(t)
}
