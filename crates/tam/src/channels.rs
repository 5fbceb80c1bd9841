//! The channels of this home (embedded today) and the dispatcher run over them.

use anyhow::Result;
use tam_agent::dispatch::{self, Channels, DispatchReport};
use tam_connectors::embedded::{LocalCrm, LocalEventBus, LocalMailbox, NotificationLog};
use tam_core::outbox::RetryPolicy;
use tam_core::ports::Writer;
use tam_core::{TenantId, Timestamp};
use tam_store::Store;
use tam_writer::TemplateWriter;
use tam_writer::llm::{LlmWriter, Router};

use crate::config::{Config, WriterConfig};

use crate::home::Home;

/// Every channel of the home, each on its own database connection.
pub struct HomeChannels {
    mailbox: LocalMailbox,
    email: NotificationLog,
    chat: NotificationLog,
    events: LocalEventBus,
    crm: LocalCrm,
    writer: Box<dyn Writer>,
}

/// The writer the config asks for.
pub fn writer(config: &WriterConfig) -> Box<dyn Writer> {
    if config.mode != "llm" {
        return Box::new(TemplateWriter::new());
    }
    let router = Router::new(
        config.models.clone(),
        config.retries_per_model,
        std::time::Duration::from_millis(config.retry_base_ms),
        config.concurrency_per_provider,
    );
    Box::new(LlmWriter::new(router))
}

impl HomeChannels {
    pub fn open(home: &Home, config: &Config) -> Result<HomeChannels> {
        let db = home.db_path();
        Ok(HomeChannels {
            mailbox: LocalMailbox::open(&db, &home.dir)?,
            email: NotificationLog::open(&db, &home.dir, "email")?,
            chat: NotificationLog::open(&db, &home.dir, "chat")?,
            events: LocalEventBus::open(&db)?,
            crm: LocalCrm::open(&db)?,
            writer: writer(&config.writer),
        })
    }

    /// The ports, borrowed for one dispatch or task.
    pub fn ports(&mut self) -> Channels<'_> {
        Channels {
            mailbox: &mut self.mailbox,
            alerts: &mut self.email,
            chat: &mut self.chat,
            events: &mut self.events,
            crm: &mut self.crm,
            writer: self.writer.as_ref(),
        }
    }

    /// Delivers everything of `tenant` that is due now.
    pub fn dispatch(&mut self, store: &mut Store, tenant: &TenantId, policy: &RetryPolicy) -> Result<DispatchReport> {
        Ok(dispatch::dispatch(store, tenant, &mut self.ports(), Timestamp::now(), policy, &worker())?)
    }
}

/// This process, as a dispatcher identity for leases.
pub fn worker() -> String {
    format!("tam-{}", std::process::id())
}
