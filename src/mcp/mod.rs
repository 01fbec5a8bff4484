//! The MCP surface: one server type, [`DustMcp`], for stdio and Streamable HTTP, both protocol
//! eras (rmcp negotiates them).
//!
//! Every request starts by finding its [`Principal`]: on HTTP the authentication layer puts it
//! in the request's extensions (rmcp hands tools the HTTP `Parts`); on stdio it is fixed at start
//! from the environment. Then each tool, resource and prompt makes one explicit permission check
//! (tool level, resource level, and the operation the permission names) before anything reaches
//! Dust. Lists show a caller only what it may use; calling a hidden tool by name is refused all
//! the same.
//!
//! Files: `tools.rs` (the tool table and simple tools), `ask.rs` (running an agent with progress,
//! cancellation and timeout), `knowledge.rs` (knowledge bases and search), `resources.rs`,
//! `prompts.rs` (prompts and completions), `args.rs` (argument schemas and validation),
//! `views.rs` (the JSON shapes returned), `errors.rs`, `service.rs` (what the MCP tools
//! and the REST routes share: permission checks, audit, bulkhead, the operations).

pub(crate) mod args;
mod ask;
mod bulkhead;
mod cache;
mod errors;
mod knowledge;
mod prompts;
pub(crate) mod resources;
pub mod service;
pub(crate) mod tools;
pub mod views;

use std::{sync::Arc, time::Duration};

use tokio_util::task::TaskTracker;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult,
        GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
    },
    service::RequestContext,
};

use crate::{
    audit::{AuditEvent, Auditor, RequestInfo},
    auth::Principal,
    dust::{AgentConfiguration, DustApi, MessageContext},
    store::ConversationStore,
};

pub use ask::CANCEL_TIMEOUT;
pub use bulkhead::MAX_CALLS_IN_FLIGHT;
pub use cache::PrincipalCache;
pub use errors::{MissingScope, PERMISSION_DENIED, UNAUTHENTICATED, describe_dust_error};
pub use knowledge::KnowledgeCache;

/// Default of `AGENT_CACHE_TTL`: how long a principal's agent list is reused.
pub const AGENT_CACHE_TTL: Duration = Duration::from_secs(15);

/// What the server tells clients about itself.
const INSTRUCTIONS: &str = "Gives access to a Dust workspace: its agents (list_agents, ask_agent), \
its knowledge bases (list_knowledge_bases, search_knowledge, documents) and connectors. Ask an \
agent when the question needs the company's knowledge or tools; search the knowledge bases to \
quote sources directly.";

/// Settings of the MCP surface, taken from the configuration.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// `MCP_SERVER_NAME`: the name reported to clients.
    pub server_name: String,
    /// `DUST_AGENT_ID`: the agent `ask_agent` uses when the caller names none.
    pub default_agent_id: Option<String>,
    /// `DUST_TIMEZONE`: sent with messages (Dust requires a valid IANA name).
    pub timezone: String,
    /// `MCP_SERVER_TIMEOUT`: how long an agent run may take.
    pub agent_timeout: Duration,
    /// The Dust base URL, to report the workspace's web address.
    pub dust_base_url: url::Url,
}

/// What every MCP request shares: the upstream, the stores and the settings.
pub struct McpContext {
    pub dust: Arc<dyn DustApi>,
    pub conversations: Arc<dyn ConversationStore>,
    pub knowledge: KnowledgeCache,
    /// Each principal's agent list, for `AGENT_CACHE_TTL` ([`service::agents`]).
    pub agents: PrincipalCache<Vec<AgentConfiguration>>,
    pub settings: McpSettings,
    /// Where tool calls, refusals and suspicious input are recorded (`None`: not audited).
    pub auditor: Option<Auditor>,
    /// Bounds the tool calls each principal has running at once.
    pub bulkhead: bulkhead::Bulkhead,
    /// Work that outlives the request that started it (cancelling an abandoned Dust run): the
    /// process waits for it on shutdown, so a client that gives up and then disconnects still
    /// gets its Dust run cancelled.
    pub background: TaskTracker,
    /// Graceful shutdown: whether the server is stopping and the grace period is over.
    pub drain: crate::shutdown::Drain,
}

impl std::fmt::Debug for McpContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpContext")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl McpContext {
    pub fn new(
        dust: Arc<dyn DustApi>,
        conversations: Arc<dyn ConversationStore>,
        settings: McpSettings,
    ) -> Self {
        let background = TaskTracker::new();
        Self {
            dust,
            conversations,
            knowledge: KnowledgeCache::new(knowledge::KNOWLEDGE_TTL, cache::CACHE_CAPACITY),
            agents: PrincipalCache::new(AGENT_CACHE_TTL, cache::CACHE_CAPACITY),
            settings,
            auditor: None,
            bulkhead: bulkhead::Bulkhead::default(),
            drain: crate::shutdown::Drain::new(background.clone()),
            background,
        }
    }

    /// Lets the background work still running (see `background`) reach Dust before the
    /// process exits. The calls still running have had their tokens cancelled: they end at once
    /// and queue their cancellation, which gets its own bounded time.
    pub async fn finish_background(&self) {
        self.background.close();
        let limit = CANCEL_TIMEOUT + Duration::from_secs(1);
        if tokio::time::timeout(limit, self.background.wait())
            .await
            .is_err()
        {
            tracing::warn!("some Dust cancellations did not finish before shutdown");
        }
    }

    /// Records tool calls and refusals with `auditor`.
    #[must_use]
    pub fn with_auditor(mut self, auditor: Auditor) -> Self {
        self.auditor = Some(auditor);
        self
    }

    /// Keeps each principal's agent list for `ttl` (zero: asks Dust every time).
    #[must_use]
    pub fn with_agent_cache_ttl(mut self, ttl: Duration) -> Self {
        self.agents = PrincipalCache::new(ttl, cache::CACHE_CAPACITY);
        self
    }

    /// Records `event` when auditing is on.
    pub(crate) fn audit(&self, event: AuditEvent) {
        if let Some(auditor) = &self.auditor {
            auditor.record(event);
        }
    }

    /// The `context` of a message sent to Dust on behalf of `principal`.
    fn message_context(&self, principal: &Principal) -> MessageContext {
        MessageContext {
            username: principal.username.clone(),
            timezone: self.settings.timezone.clone(),
            full_name: principal.full_name.clone(),
            email: principal.email.clone(),
            profile_picture_url: None,
            origin: Some("api".to_owned()),
        }
    }
}

/// The MCP server. Cheap to clone: rmcp builds one per HTTP request.
#[derive(Debug, Clone)]
pub struct DustMcp {
    ctx: Arc<McpContext>,
    /// The caller on stdio; `None` on HTTP, where each request carries its own.
    fixed_principal: Option<Arc<Principal>>,
}

impl DustMcp {
    /// A server whose callers are authenticated per request (HTTP).
    pub fn new(ctx: Arc<McpContext>) -> Self {
        Self {
            ctx,
            fixed_principal: None,
        }
    }

    /// A server with one caller, fixed at start (stdio).
    pub fn with_principal(ctx: Arc<McpContext>, principal: Principal) -> Self {
        Self {
            ctx,
            fixed_principal: Some(Arc::new(principal)),
        }
    }

    fn audit_denial(
        &self,
        principal: &Principal,
        context: &RequestContext<RoleServer>,
        kind: &str,
        id: &str,
    ) {
        self.ctx.audit(
            AuditEvent::new(
                crate::audit::AuditEventType::AuthzFail,
                crate::audit::Severity::Medium,
                "access refused",
            )
            .principal(principal)
            .request(&request_info(context))
            .resource(kind, id)
            .result(crate::audit::AuditResult::Denied),
        );
    }

    /// Where a refused request leaves the permission it needed for the HTTP layer (see
    /// [`MissingScope`]); `None` on stdio.
    fn missing_scope(context: &RequestContext<RoleServer>) -> Option<MissingScope> {
        context
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<MissingScope>())
            .cloned()
    }

    fn note_missing_scope<T>(slot: Option<MissingScope>, result: &Result<T, McpError>) {
        if let (Some(slot), Err(error)) = (slot, result)
            && let Some(permission) = errors::denied_permission(error)
        {
            slot.record(permission);
        }
    }

    /// The caller of this request: set by the HTTP authentication layer, or fixed (stdio).
    fn principal(&self, request: &RequestContext<RoleServer>) -> Result<Arc<Principal>, McpError> {
        let from_http = request
            .extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Arc<Principal>>())
            .cloned();
        from_http
            .or_else(|| self.fixed_principal.clone())
            .ok_or_else(errors::unauthenticated)
    }
}

/// What the audit log records about the HTTP request behind an MCP call (empty on stdio).
pub(crate) fn request_info(request: &RequestContext<RoleServer>) -> RequestInfo {
    let Some(parts) = request.extensions.get::<axum::http::request::Parts>() else {
        return RequestInfo::default();
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    RequestInfo {
        ip: parts
            .extensions
            .get::<crate::http::client_ip::ClientIp>()
            .map(|c| c.0)
            .or_else(|| {
                parts
                    .extensions
                    .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                    .map(|c| c.0.ip())
            }),
        user_agent: header("user-agent"),
        method: Some(parts.method.to_string()),
        // The path the client sent: axum's `OriginalUri` where a router records it (a nested
        // router strips its prefix from the URI it passes on), else the URI itself.
        path: Some(
            parts
                .extensions
                .get::<axum::extract::OriginalUri>()
                .map_or(&parts.uri, |original| &original.0)
                .path()
                .to_owned(),
        ),
        request_id: header("x-request-id"),
    }
}

impl ServerHandler for DustMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .build(),
        )
        .with_server_info(
            Implementation::new(
                self.ctx.settings.server_name.clone(),
                env!("CARGO_PKG_VERSION"),
            )
            .with_title("Dust"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = self.principal(&context)?;
        let visible: Vec<Tool> = tools::catalogue()
            .iter()
            .filter(|spec| principal.can(spec.permission))
            .map(|spec| spec.tool.clone())
            .collect();
        Ok(ListToolsResult::with_all_items(visible)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        tools::catalogue()
            .iter()
            .find(|spec| spec.tool.name == name)
            .map(|spec| spec.tool.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = self.principal(&context)?;
        let slot = Self::missing_scope(&context);
        let result = tools::call(&self.ctx, &principal, request, context).await;
        Self::note_missing_scope(slot, &result);
        result.map(CallToolResponse::from)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let principal = self.principal(&context)?;
        Ok(
            ListResourcesResult::with_all_items(resources::list(&principal))
                .with_ttl_ms(0)
                .with_cache_scope(CacheScope::Private),
        )
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        let principal = self.principal(&context)?;
        Ok(
            ListResourceTemplatesResult::with_all_items(resources::templates(&principal))
                .with_ttl_ms(0)
                .with_cache_scope(CacheScope::Private),
        )
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let principal = self.principal(&context)?;
        let result =
            resources::read(&self.ctx, &principal, &request.uri, &request_info(&context)).await;
        if let Err(error) = &result
            && error.code == PERMISSION_DENIED
        {
            self.audit_denial(&principal, &context, "resource", &request.uri);
        }
        Self::note_missing_scope(Self::missing_scope(&context), &result);
        result.map(ReadResourceResponse::from)
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        let principal = self.principal(&context)?;
        Ok(ListPromptsResult::with_all_items(prompts::list(&principal))
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let principal = self.principal(&context)?;
        let name = request.name.clone();
        let result = prompts::get(&self.ctx, &principal, request).await;
        if let Err(error) = &result
            && error.code == PERMISSION_DENIED
        {
            self.audit_denial(&principal, &context, "prompt", &name);
        }
        Self::note_missing_scope(Self::missing_scope(&context), &result);
        result.map(GetPromptResponse::from)
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        let principal = self.principal(&context)?;
        prompts::complete(&self.ctx, &principal, request).await
    }
}
