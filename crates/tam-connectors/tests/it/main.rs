//! Each connector against a local server speaking its API's wire format (and Redis against a
//! real `redis-server`), one file per connector.

#![allow(clippy::unwrap_used, reason = "a test that cannot set up should fail loudly")]

mod chat;
mod gmail;
mod google_auth;
mod jira;
mod kayako;
mod notion;
mod plans;
mod redis;

/// The tenant `id`.
pub(crate) fn tenant(id: &str) -> tam_core::TenantId {
    tam_core::TenantId::parse("t", id).unwrap()
}

/// An alert to `spaces/AAA` keyed `key`.
pub(crate) fn chat_alert(key: &str) -> tam_core::comms::RepAlert {
    tam_core::comms::RepAlert {
        tenant: tenant("acme"),
        rep: tam_core::Email::parse("e", "ana@v.example").unwrap(),
        chat_space: Some("spaces/AAA".into()),
        kind: tam_core::comms::AlertKind::Individual,
        subject: tam_core::comms::Subject::new("[tam] Northwind is red (10)"),
        text: "Northwind escalated.".into(),
        key: tam_core::outbox::IdemKey::from_stored(key.into()),
        feedback: Vec::new(),
    }
}
