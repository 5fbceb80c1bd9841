//! A tenant's scan as every caller runs it (the command, the daily job, the demo): score and
//! store every account at one instant, then surface the co-development opportunities its
//! tickets name. What the scan queued is delivered by the caller's dispatch.

use anyhow::{Context, Result};
use tam_agent::profile::surface_opportunities;
use tam_agent::scan::ScanReport;
use tam_core::{TenantId, Timestamp};
use tam_store::Store;

use crate::Rules;

/// Scans `tenant` at `as_of` by its rules; `progress` hears how many accounts are done. A dry
/// run stores nothing and surfaces nothing.
pub fn scan_tenant(
    store: &mut Store,
    rules: &Rules,
    tenant: &TenantId,
    as_of: Timestamp,
    dry_run: bool,
    progress: impl FnMut(u64),
) -> Result<ScanReport> {
    let report = tam_agent::scan::scan(store, tenant, as_of, rules.scan(Some(tenant)), dry_run, progress)
        .with_context(|| format!("scan of tenant {tenant}"))?;
    if !dry_run {
        surface_opportunities(store, tenant, None, as_of)?;
    }
    Ok(report)
}
