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
//! This is an adapter over [`crate::ops`], where what each operation means lives (the checks,
//! the audit record, the Dust calls, the typed results); here is only what MCP adds: the tool
//! table (`tools.rs`: names, titles, descriptions, schemas and annotations; `agent_tools.rs`: the
//! agents chosen by `DUST_AGENT_TOOLS` as tools of their own), `ask.rs` (following
//! an agent run with progress notifications and cancellation), `resources.rs`, `prompts.rs`
//! (prompts and completions), and `errors.rs` (an operation's error as a JSON-RPC error or a
//! tool error).

mod agent_tools;
mod ask;
mod errors;
mod prompts;
pub(crate) mod resources;
mod tasks;
pub(crate) mod tools;

use std::sync::Arc;

use rmcp::{
    ErrorData as McpError, RoleServer, ServerHandler,
    model::{
        CacheScope, CallToolRequestParams, CallToolResponse, CancelTaskParams,
        CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
        GetTaskParams, GetTaskResult, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig, Tool,
        UpdateTaskParams,
    },
    service::RequestContext,
};

use crate::{
    audit::{AuditEvent, RequestInfo},
    auth::Principal,
    ops::{Caller, Context},
};

pub use errors::{MissingScope, PERMISSION_DENIED, UNAUTHENTICATED};

/// What the server tells clients about itself.
/// How long a client may keep a list that depends only on the caller's permissions and on this
/// server's version: a 2026-07-28 client lists once and calls many times, which saves more than
/// any speed-up of the list itself. Only a caller who already holds every permission a tool
/// needs gets it: anyone else may step up (a 403 `insufficient_scope`, a new token with more)
/// within the same client, whose kept list would then hide what they just gained (the Python
/// SDK keeps it). A list kept after a token with fewer permissions costs a refusal, never an
/// access: every call is checked again.
const PERMISSION_LIST_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// `ttlMs` of a duration.
fn millis(ttl: std::time::Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// How long `principal` may keep the lists: [`PERMISSION_LIST_TTL`] when no tool is hidden from
/// them, else zero.
fn list_ttl(principal: &Principal) -> std::time::Duration {
    let complete = tools::catalogue()
        .iter()
        .all(|spec| principal.can(spec.op.permission));
    if complete {
        PERMISSION_LIST_TTL
    } else {
        std::time::Duration::ZERO
    }
}

const INSTRUCTIONS: &str = "Gives access to a Dust workspace: its agents (list_agents, ask_agent), \
its knowledge bases (list_knowledge_bases, search_knowledge, documents) and connectors. Ask an \
agent when the question needs the company's knowledge or tools; search the knowledge bases to \
quote sources directly, or search_workspace to find a page or table by its title; read and \
write the rows of a folder's tables with list_tables, list_table_rows and upsert_table_rows.";

/// The MCP server. Cheap to clone: rmcp builds one per HTTP request.
#[derive(Debug, Clone)]
pub struct DustMcp {
    ctx: Arc<Context>,
    /// The caller on stdio; `None` on HTTP, where each request carries its own.
    fixed_principal: Option<Arc<Principal>>,
}

impl DustMcp {
    /// A server whose callers are authenticated per request (HTTP).
    pub fn new(ctx: Arc<Context>) -> Self {
        Self {
            ctx,
            fixed_principal: None,
        }
    }

    /// A server with one caller, fixed at start (stdio).
    pub fn with_principal(ctx: Arc<Context>, principal: Principal) -> Self {
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

impl DustMcp {
    /// Opens the call of a `tasks/*` request: the caller may run agents (tasks are `ask_agent`'s).
    fn task_call(
        &self,
        context: &RequestContext<RoleServer>,
        op: &'static crate::ops::Op,
    ) -> Result<crate::ops::Call, McpError> {
        let principal = self.principal(context)?;
        let caller = caller(principal, context);
        crate::ops::Call::begin(&self.ctx, caller, op, crate::ops::Surface::Tool, None)
            .map_err(errors::rpc_error)
    }
}

/// The caller of an MCP request: `principal`, what the audit log records of the request, and
/// (over HTTP) how a long call rechecks its token.
pub(crate) fn caller(principal: Arc<Principal>, request: &RequestContext<RoleServer>) -> Caller {
    let revalidate = request
        .extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<crate::ops::Revalidate>())
        .cloned();
    Caller {
        principal,
        info: request_info(request),
        revalidate,
    }
}

/// What the audit log records about the HTTP request behind an MCP call (empty on stdio).
pub(crate) fn request_info(request: &RequestContext<RoleServer>) -> RequestInfo {
    request
        .extensions
        .get::<axum::http::request::Parts>()
        .map(RequestInfo::from_parts)
        .unwrap_or_default()
}

impl ServerHandler for DustMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .enable_tasks()
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
        let mut visible: Vec<Tool> = tools::catalogue()
            .iter()
            .filter(|spec| principal.can(spec.op.permission))
            .map(|spec| spec.tool.clone())
            .collect();
        visible.extend(agent_tools::list(&self.ctx, &principal).await);
        // With agents as tools the list is as fresh as the caller's agent list, which this
        // server itself reuses for `AGENT_CACHE_TTL`.
        let ttl = if self.ctx.settings.agent_tools.is_enabled() {
            self.ctx.agents.ttl().min(list_ttl(&principal))
        } else {
            list_ttl(&principal)
        };
        Ok(ListToolsResult::with_all_items(visible)
            .with_ttl_ms(millis(ttl))
            .with_cache_scope(CacheScope::Private))
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, McpError> {
        let call = self.task_call(&context, &crate::ops::tasks::GET_TASK)?;
        tasks::get(&call, &request.task_id, &context)
            .await
            .map_err(errors::rpc_error)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let call = self.task_call(&context, &crate::ops::tasks::UPDATE_TASK)?;
        let result = tasks::update(&call, &request.task_id, request.input_responses).await;
        call.finish(result, None).map_err(errors::rpc_error)
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        let call = self.task_call(&context, &crate::ops::tasks::CANCEL_TASK)?;
        let result = crate::ops::tasks::cancel(&call, &request.task_id).await;
        call.finish(result, None).map_err(errors::rpc_error)
    }

    /// A built-in tool by name. rmcp reads it only for the input schema's `x-mcp-header`
    /// parameters (SEP-2243 `Mcp-Param-*` headers), which no tool here has; an agent's tool
    /// (`agent_tools.rs`) is the caller's own and cannot be found without the caller, so it is
    /// `None`, which skips that check only.
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
        let result = tools::call(&self.ctx, principal, request, context).await;
        Self::note_missing_scope(slot, &result);
        result
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let principal = self.principal(&context)?;
        Ok(
            ListResourcesResult::with_all_items(resources::list(&principal))
                .with_ttl_ms(millis(list_ttl(&principal)))
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
                .with_ttl_ms(millis(list_ttl(&principal)))
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
            .with_ttl_ms(millis(list_ttl(&principal)))
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
