//! The rules a process runs by, from `tam.toml`: each tenant's scoring, escalation and time
//! zone, the import's parser settings and the delivery retries. They are read and checked
//! once, when the config loads; every scan, task and job then borrows them.

use std::collections::HashMap;

use jiff::tz::TimeZone;
use tam_agent::import::ImportOptions;
use tam_agent::scan::ScanConfig;
use tam_core::outbox::DeliveryPolicy;
use tam_core::{PriorityNames, TenantId, Timestamp};

/// The rules of one tenant.
#[derive(Debug, Clone)]
pub struct TenantRules {
    /// Scoring and escalation.
    pub scan: ScanConfig,
    /// The zone its schedules run in.
    pub zone: TimeZone,
}

impl Default for TenantRules {
    fn default() -> TenantRules {
        TenantRules { scan: ScanConfig::default(), zone: TimeZone::UTC }
    }
}

/// Every tenant's rules, and the ones a tenant without its own section runs by.
#[derive(Debug, Clone)]
pub struct Rules {
    global: TenantRules,
    tenants: HashMap<TenantId, TenantRules>,
    /// The parser's settings; each import sets its own `now`.
    import: ImportOptions,
    /// How deliveries are retried.
    pub retry: DeliveryPolicy,
}

impl Rules {
    /// Rules with `global` for every tenant.
    pub fn new(global: TenantRules, import: ImportOptions, retry: DeliveryPolicy) -> Rules {
        Rules { global, tenants: HashMap::new(), import, retry }
    }

    /// These rules, with `tenant` running by its own.
    pub fn with_tenant(mut self, tenant: TenantId, rules: TenantRules) -> Rules {
        self.tenants.insert(tenant, rules);
        self
    }

    fn of(&self, tenant: Option<&TenantId>) -> &TenantRules {
        tenant.and_then(|t| self.tenants.get(t)).unwrap_or(&self.global)
    }

    /// Whether `tenant` runs by rules of its own (`[tenants.<id>]` in `tam.toml`).
    pub fn has_own(&self, tenant: &TenantId) -> bool {
        self.tenants.contains_key(tenant)
    }

    /// The scoring and escalation rules of `tenant` (the global ones for `None`).
    pub fn scan(&self, tenant: Option<&TenantId>) -> &ScanConfig {
        &self.of(tenant).scan
    }

    /// The zone `tenant`'s schedules run in.
    pub fn zone(&self, tenant: &TenantId) -> &TimeZone {
        &self.of(Some(tenant)).zone
    }

    /// How the sources' priority names map to P1..P4.
    pub fn priorities(&self) -> &PriorityNames {
        &self.import.priority_names
    }

    /// The parser's settings for an import that read the clock at `now`.
    pub fn import_options(&self, now: Timestamp) -> ImportOptions {
        ImportOptions { now, ..self.import.clone() }
    }
}
