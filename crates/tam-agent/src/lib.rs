//! tam-agent: the application. It turns raw input into records (import) and runs scans:
//! read signals from the store, score and decide with tam-core, write the results back.
//!
//! **Invariant:** no network, no clock. The caller passes `now` / `as_of`.
//! **Invariant:** one bad record or one bad account is reported and skipped; it never stops
//! an import or a scan.

pub mod alert_text;
pub mod dispatch;
pub mod effects;
pub mod import;
pub mod profile;
pub mod scan;
pub mod scanned;
pub mod tasks;
