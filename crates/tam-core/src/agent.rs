//! The agent as other agents see it (SPEC 5): its registration and its seven task types.

use std::fmt;

use serde::Serialize;

/// How `tam` registers itself with an agent platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Registration {
    /// Stable id.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it does, in a sentence.
    pub description: &'static str,
    /// What it can be asked for.
    pub capabilities: &'static [&'static str],
    /// Search tags.
    pub tags: &'static [&'static str],
    /// Tasks it runs at once.
    pub max_concurrent_tasks: u32,
    /// The task types it accepts.
    pub task_types: Vec<&'static str>,
}

/// The registration.
pub fn registration() -> Registration {
    Registration {
        id: crate::comms::AGENT_ID,
        name: "Technical Account Manager",
        description: "Scores every customer account's technical health from tickets and heartbeats, sees \
                      escalations coming, drafts the outreach a rep should send, keeps a technical \
                      relationship profile per account and surfaces co-development opportunities.",
        capabilities: &[
            "health_monitoring",
            "escalation_risk_scoring",
            "technical_communication",
            "relationship_profiling",
            "opportunity_surfacing",
        ],
        tags: &["customer-success", "account-management", "support", "health-score", "escalation"],
        max_concurrent_tasks: 3,
        task_types: TaskType::ALL.iter().map(|t| t.as_str()).collect(),
    }
}

/// The seven task types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskType {
    /// Score every account of a tenant now (or at `as_of`).
    HealthScan,
    /// Draft outreach for one account.
    EscalationOutreach,
    /// Draft release notes tailored per account.
    ReleaseNotes,
    /// Draft a roadmap preview for one account.
    RoadmapPreview,
    /// Draft a health check-in for one account.
    HealthCheckin,
    /// Draft a Customer Success Review for one account.
    CustomerSuccessReview,
    /// Merge facts into an account's relationship profile.
    UpdateRelationshipProfile,
}

impl TaskType {
    /// Every type, in the order the SPEC lists them.
    pub const ALL: [TaskType; 7] = [
        TaskType::HealthScan,
        TaskType::EscalationOutreach,
        TaskType::ReleaseNotes,
        TaskType::RoadmapPreview,
        TaskType::HealthCheckin,
        TaskType::CustomerSuccessReview,
        TaskType::UpdateRelationshipProfile,
    ];

    /// The `type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::HealthScan => "health_scan",
            TaskType::EscalationOutreach => "escalation_outreach",
            TaskType::ReleaseNotes => "release_notes",
            TaskType::RoadmapPreview => "roadmap_preview",
            TaskType::HealthCheckin => "health_checkin",
            TaskType::CustomerSuccessReview => "customer_success_review",
            TaskType::UpdateRelationshipProfile => "update_relationship_profile",
        }
    }

    /// Parses a `type`; the error names every supported one.
    pub fn parse(raw: &str) -> Result<TaskType, String> {
        TaskType::ALL.into_iter().find(|t| t.as_str() == raw).ok_or_else(|| {
            let known: Vec<&str> = TaskType::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown task type {raw:?}; supported: {}", known.join(", "))
        })
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_types_and_five_capabilities() {
        let r = registration();
        assert_eq!((r.task_types.len(), r.capabilities.len(), r.max_concurrent_tasks), (7, 5, 3));
        assert_eq!(TaskType::parse("health_checkin"), Ok(TaskType::HealthCheckin));
        let err = TaskType::parse("make_coffee").unwrap_err();
        assert!(
            err.starts_with("unknown task type \"make_coffee\"; supported: health_scan, escalation_outreach,"),
            "{err}"
        );
    }
}
