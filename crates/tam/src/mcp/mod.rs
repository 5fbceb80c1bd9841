//! The MCP server: a tenant's accounts, explanations, tickets, profiles, drafts and outbox as
//! tools an LLM client (Claude, ChatGPT, an IDE) calls, and `run_task` to have drafts written.
//! Nothing here sends to a customer: a task's drafts wait in the rep's mailbox for review.
//!
//! One handler serves both transports (the official SDK, `rmcp`, speaks the protocol): over
//! stdio (`tam mcp`) the tenant is fixed when the process starts; over Streamable HTTP (`/mcp`
//! on `tam serve`) each request's bearer token names it (`http/mcp.rs` puts the [`TenantId`]
//! in the request's extensions, where the handler finds it).
//!
//! A tool's answer is the same typed view the CLI prints with `--json` (`tam_app::views`),
//! as structured content with its output schema (`crate::schema`) and as text for older
//! clients. What the caller can fix (an unknown account, a bad argument, a refused task) is a
//! tool result with `isError`, whose message says what to change.

mod tools;

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use tam_app::views::{self, ViewError};
use tam_core::url::encode_component as encode;
use tam_core::{AccountId, TenantId};
use tam_store::{Pool, Store};

use crate::clients::Clients;
use crate::config::Config;
use crate::home::Home;

pub use tools::TOOLS;

/// What every MCP request needs: the home, its rules, the process's network clients and
/// connections to the store.
pub struct App {
    home: Home,
    config: Config,
    clients: Arc<Clients>,
    stores: Pool,
}

impl App {
    /// The tenant's escalation rules (its alert budget among them).
    pub fn escalation(&self, tenant: &TenantId) -> &tam_core::escalation::EscalationConfig {
        &self.config.rules.scan(Some(tenant)).escalation
    }

    /// The application as MCP serves it; `stores` keeps connections open between calls.
    pub fn new(home: Home, config: Config, clients: Arc<Clients>) -> App {
        let stores = Pool::new(home.store_location(&config), 4);
        App { home, config, clients, stores }
    }
}

/// The handler of one MCP session.
#[derive(Clone)]
pub struct Server {
    app: Arc<App>,
    /// stdio's tenant; over HTTP, each request's token names it instead.
    tenant: Option<TenantId>,
}

impl Server {
    /// A session over stdio, for `tenant`.
    pub fn for_tenant(app: Arc<App>, tenant: TenantId) -> Server {
        Server { app, tenant: Some(tenant) }
    }

    /// A session over HTTP: each request carries its tenant.
    pub fn per_request(app: Arc<App>) -> Server {
        Server { app, tenant: None }
    }

    fn tenant(&self, context: &RequestContext<RoleServer>) -> Result<TenantId, ErrorData> {
        if let Some(tenant) = &self.tenant {
            return Ok(tenant.clone());
        }
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<TenantId>())
            .cloned()
            // Unreachable behind `/mcp`'s gate, which refuses a request without a token.
            .ok_or_else(|| ErrorData::invalid_request("send Authorization: Bearer <the tenant's token>", None))
    }

    /// Runs `f` on a connection of its own, off the async workers (the store and tasks block).
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&App, &mut Store) -> Result<T, Refusal> + Send + 'static,
    ) -> Result<T, Refusal> {
        let app = Arc::clone(&self.app);
        tokio::task::spawn_blocking(move || {
            let mut store = app.stores.get().map_err(|e| Refusal::Internal(format!("{e:#}")))?;
            f(&app, &mut store)
        })
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
    }
}

/// Why a tool gave no answer.
#[derive(Debug)]
pub enum Refusal {
    /// The caller's to fix: the message says what.
    Caller(String),
    /// Ours (the store failed): the caller can only try again.
    Internal(String),
}

impl From<ViewError> for Refusal {
    fn from(e: ViewError) -> Refusal {
        match e {
            ViewError::Store(e) => Refusal::Internal(format!("{e:#}")),
            other => Refusal::Caller(other.to_string()),
        }
    }
}

impl From<tam_store::StoreError> for Refusal {
    fn from(e: tam_store::StoreError) -> Refusal {
        Refusal::Internal(format!("{e:#}"))
    }
}

/// A resource's address: `tam://{tenant}/accounts/{id}`, each id percent-encoded (an id may
/// hold a space, `/`, `?` or `#`).
fn resource_uri(tenant: &TenantId, account: &str) -> String {
    format!("{}{}", accounts_prefix(tenant), encode(account))
}

fn accounts_prefix(tenant: &TenantId) -> String {
    format!("tam://{}/accounts/", encode(tenant.as_str()))
}

/// The inverse of [`encode`]; `None` for a malformed escape or bytes that are not UTF-8.
fn decode(encoded: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// Resources listed per page: a book of 100,000 accounts is read a page at a time.
const RESOURCE_PAGE: usize = 200;

impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("tam", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "tam, a Technical Account Manager agent: one tenant's customer accounts with their technical \
                 health (0-100, green/amber/red), why each has its score, escalations, open tickets, relationship \
                 profiles, drafts and the outbox. run_task has drafts written for a rep to review; nothing is \
                 ever sent to a customer.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::list()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tenant = self.tenant(&context)?;
        let Some(tool) = TOOLS.iter().find(|t| t.name == request.name) else {
            return Err(ErrorData::invalid_params(format!("no tool {:?}", request.name), None));
        };
        let arguments = request.arguments.unwrap_or_default();
        let run = tool.run;
        let args = tools::Arguments::new(arguments);
        let answer = self.blocking(move |app, store| run(app, store, &tenant, args)).await;
        Ok(match answer {
            Ok(value) => CallToolResult::structured(value).into(),
            Err(Refusal::Caller(message)) => CallToolResult::error(vec![ContentBlock::text(message)]).into(),
            Err(Refusal::Internal(message)) => {
                crate::log::event("error", "mcp tool failed", json!({"tool": tool.name, "error": message}));
                CallToolResult::error(vec![ContentBlock::text(format!("tam could not answer: {message}"))]).into()
            }
        })
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let tenant = self.tenant(&context)?;
        let after = request.and_then(|r| r.cursor);
        let listed = tenant.clone();
        let page = self
            .blocking(move |_, store| Ok(store.account_page(&listed, after.as_deref(), RESOURCE_PAGE)?))
            .await
            .map_err(|refusal| match refusal {
                Refusal::Caller(m) | Refusal::Internal(m) => ErrorData::internal_error(m, None),
            })?;
        let next = (page.len() == RESOURCE_PAGE).then(|| page.last().map(|(id, _)| id.clone())).flatten();
        let resources = page
            .into_iter()
            .map(|(id, name)| {
                Resource::new(resource_uri(&tenant, &id), format!("{name} ({id})"))
                    .with_description("The account's relationship profile and its latest explanation")
                    .with_mime_type("application/json")
            })
            .collect();
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let tenant = self.tenant(&context)?;
        let template = ResourceTemplate::new(format!("{}{{account_id}}", accounts_prefix(&tenant)), "account")
            .with_description("An account's relationship profile and its latest explanation")
            .with_mime_type("application/json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let tenant = self.tenant(&context)?;
        let uri = request.uri;
        let prefix = accounts_prefix(&tenant);
        let account = uri.strip_prefix(&prefix).and_then(decode).and_then(|id| AccountId::parse("account", &id).ok());
        let Some(account) = account else {
            return Err(ErrorData::resource_not_found(
                format!("no resource {uri:?}: this server's resources are {prefix}{{account_id}}"),
                None,
            ));
        };
        let read = tenant.clone();
        let document = self
            .blocking(move |app, store| {
                let profile = views::profile(store, &read, &account)?;
                let explanation = match views::explanation(store, &read, &account, 30, app.escalation(&read)) {
                    Ok(e) => Some(e),
                    Err(ViewError::NotScanned { .. }) => None,
                    Err(e) => return Err(e.into()),
                };
                Ok(json!({"profile": profile, "explanation": explanation}))
            })
            .await;
        match document {
            Ok(document) => Ok(ReadResourceResult::new(vec![
                ResourceContents::text(document.to_string(), uri).with_mime_type("application/json"),
            ])
            .into()),
            Err(Refusal::Caller(message)) => Err(ErrorData::resource_not_found(message, None)),
            Err(Refusal::Internal(message)) => Err(ErrorData::internal_error(message, None)),
        }
    }
}

/// Serves one session over standard input and output until the client closes it. Logs go to
/// standard error: standard output carries the protocol.
pub fn serve_stdio(app: App, tenant: TenantId) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let app = Arc::new(app);
    let server = Server::for_tenant(Arc::clone(&app), tenant);
    let result = runtime.block_on(async move {
        use rmcp::ServiceExt;
        let running = server.serve(rmcp::transport::stdio()).await?;
        running.waiting().await?;
        anyhow::Ok(())
    });
    drop(runtime);
    // Pooled PostgreSQL connections close by blocking on their own runtime: after ours is gone.
    drop(app);
    result
}

/// The JSON a tool answers with, from its view.
fn answer(view: &impl serde::Serialize) -> Result<Value, Refusal> {
    serde_json::to_value(view).map_err(|e| Refusal::Internal(e.to_string()))
}

#[cfg(test)]
pub(crate) mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_address_keeps_any_id_and_reads_back() {
        let tenant = TenantId::parse("t", "acme corp").unwrap();
        for id in ["A-1", "a b", "x/y?z#w", "100%", "Zürich"] {
            let uri = resource_uri(&tenant, id);
            let rest = uri.strip_prefix("tam://acme%20corp/accounts/").unwrap();
            assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)), "{uri}");
            assert_eq!(decode(rest).as_deref(), Some(id));
        }
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%ff"), None, "not UTF-8");
    }
}
