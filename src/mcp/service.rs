//! The operations behind both front doors: the MCP tools and the REST routes (`http::rest`).
//!
//! Each surface keeps only its wire format. What a call *means* lives here once: the permission
//! check and its `authz_fail` record, the per-principal bulkhead toward Dust, the
//! `resource_access`/`resource_modified` record of the outcome, the log-only note on suspicious
//! free text, and the operations themselves, which validate their identifiers with the same
//! allowlists ([`super::args`]) and return typed views or a [`ServiceError`]. The MCP layer
//! turns a [`ServiceError`] into a JSON-RPC error or a tool error; the REST layer into an HTTP
//! status and the `ApiError` envelope.

use std::sync::Arc;

use rmcp::{ErrorData as McpError, model::CallToolResult};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{
    MAX_CALLS_IN_FLIGHT, McpContext,
    args::MAX_ID_LEN,
    errors,
    views::{AgentList, AgentView},
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity, detect_suspicious},
    auth::{Operation, Permission, Principal},
    dust::{AgentConfiguration, DustError},
};

pub use super::args::SearchKnowledgeArgs;
pub use super::ask::{
    Run, RunStep, SHUTTING_DOWN, cancel_in_background, start_run, stream_failure, timeout_message,
};
pub use super::knowledge::{find_knowledge_base, knowledge_base_views, search_results};

/// Checks an identifier against the allowlist every surface uses (400 / `-32602` otherwise).
pub fn check_id(field: &str, value: &str) -> Result<(), ServiceError> {
    super::args::check_id(field, value).map_err(ServiceError::from)
}

/// Why an operation did not produce its result.
#[derive(Debug)]
pub enum ServiceError {
    /// The request is wrong (an identifier outside its allowlist, a bound exceeded).
    Invalid(String),
    /// The caller may not touch what it named (another workspace).
    Forbidden(String),
    /// The named thing does not exist for this caller (or is another user's: same answer).
    NotFound(String),
    /// Dust failed or said no while doing `action` ("listing agents").
    Dust { action: String, error: DustError },
    /// The operation ran and failed in a way the caller can act on (an agent's run failed).
    Failed(String),
    /// The operation took longer than it may (an agent run past `MCP_SERVER_TIMEOUT`).
    Timeout(String),
    /// A server fault (a store); the detail is for the log only.
    Internal(String),
    /// The server is stopping and the operation outlived the shutdown grace period.
    ShuttingDown(String),
}

impl ServiceError {
    pub fn dust(action: impl Into<String>, error: DustError) -> Self {
        Self::Dust {
            action: action.into(),
            error,
        }
    }

    /// The MCP form: invalid input and server faults are JSON-RPC errors, the rest tool errors
    /// the model can read and act on.
    pub fn into_tool(self) -> Result<CallToolResult, McpError> {
        match self {
            Self::Invalid(message) => Err(errors::invalid_params(message)),
            Self::NotFound(message)
            | Self::Failed(message)
            | Self::Forbidden(message)
            | Self::Timeout(message)
            | Self::ShuttingDown(message) => Ok(errors::tool_error(message)),
            Self::Dust { action, error } => Ok(errors::dust_tool_error(&action, &error)),
            Self::Internal(message) => Err(McpError::internal_error(message, None)),
        }
    }
}

impl From<super::args::InvalidArgument> for ServiceError {
    fn from(error: super::args::InvalidArgument) -> Self {
        Self::Invalid(error.message)
    }
}

/// Checks that `principal` holds `permission` for the operation `name` (a tool name, or the
/// REST operation of the same name), recording a refusal as `authz_fail`. `kind` says which
/// surface asked (`tool`, `route`).
pub fn authorize(
    ctx: &McpContext,
    principal: &Principal,
    info: &RequestInfo,
    kind: &str,
    name: &str,
    permission: Permission,
) -> Result<(), Permission> {
    if principal.can(permission) {
        return Ok(());
    }
    metrics::counter!("authz_denials_total", "permission" => permission.as_str()).increment(1);
    ctx.audit(
        AuditEvent::new(
            AuditEventType::AuthzFail,
            Severity::Medium,
            format!("{kind} refused"),
        )
        .principal(principal)
        .request(info)
        .resource(kind, name)
        .action(permission.as_str())
        .result(AuditResult::Denied),
    );
    Err(permission)
}

/// Checks that a workspace named in a request is the caller's own (the only one its key
/// reaches). Anything else is refused before Dust is asked, and recorded as `authz_fail`.
pub fn check_workspace(
    ctx: &McpContext,
    principal: &Principal,
    info: &RequestInfo,
    workspace_id: &str,
) -> Result<(), ServiceError> {
    check_id("workspaceId", workspace_id)?;
    if workspace_id == principal.workspace_id {
        return Ok(());
    }
    ctx.audit(
        AuditEvent::new(
            AuditEventType::AuthzFail,
            Severity::Medium,
            "another workspace refused",
        )
        .principal(principal)
        .request(info)
        .resource("workspace", workspace_id)
        .action("access_workspace")
        .result(AuditResult::Denied),
    );
    Err(ServiceError::Forbidden(FOREIGN_WORKSPACE.to_owned()))
}

/// The message of [`check_workspace`]'s refusal (the REST layer answers it with 403).
pub const FOREIGN_WORKSPACE: &str =
    "this workspace is not yours: a token reaches only the workspace it was issued for";

/// One of the caller's slots toward Dust ([`super::bulkhead`]), or `None` when all
/// [`MAX_CALLS_IN_FLIGHT`] are taken; nothing may reach Dust without one.
pub fn enter(ctx: &McpContext, principal: &Principal) -> Option<CallSlot> {
    let permit = ctx.bulkhead.try_enter(&principal.user_id)?;
    Some(CallSlot {
        _permit: permit,
        _running: ctx.background.token(),
    })
}

/// A call's slot toward Dust: held for the whole call, it also tells shutdown that the call is
/// still running ([`McpContext::finish_background`]).
#[derive(Debug)]
pub struct CallSlot {
    _permit: OwnedSemaphorePermit,
    _running: TaskTrackerToken,
}

/// What a caller beyond its slots is told; `what` names the calls (`tool calls`, `requests`).
pub fn busy_message(what: &str) -> String {
    format!(
        "You already have {MAX_CALLS_IN_FLIGHT} {what} running; wait for one to finish, then try again."
    )
}

/// Records a call (`resource_access`, or `resource_modified` when `permission` writes) with its
/// outcome and, when known, the resource it named.
pub fn audit_call(
    ctx: &McpContext,
    principal: &Principal,
    info: &RequestInfo,
    name: &str,
    permission: Permission,
    target: Option<(&str, &str)>,
    outcome: AuditResult,
) {
    if ctx.auditor.is_none() {
        return;
    }
    // Admin operations here only read (the audit query); writes are `resource_modified`.
    let event_type = if matches!(permission.operation(), Operation::Read | Operation::Admin) {
        AuditEventType::ResourceAccess
    } else {
        AuditEventType::ResourceModified
    };
    let mut event = AuditEvent::new(event_type, Severity::Info, "tool call")
        .principal(principal)
        .request(info)
        .action(name)
        .result(outcome);
    if let Some((kind, id)) = target {
        event = event.resource(kind, id);
    }
    ctx.audit(event);
}

/// Records an input refused by validation (`input_validation_fail`).
pub fn audit_invalid(
    ctx: &McpContext,
    principal: &Principal,
    info: &RequestInfo,
    name: &str,
    reason: &str,
) {
    ctx.audit(
        AuditEvent::new(
            AuditEventType::InputValidationFail,
            Severity::Low,
            "tool arguments refused",
        )
        .principal(principal)
        .request(info)
        .action(name)
        .result(AuditResult::Denied)
        .extra("reason", reason),
    );
}

/// Notes, log-only, free text that looks like an injection attempt; the text goes on unchanged
/// (decision 6.10, catalogue V11).
pub fn note_suspicious(
    ctx: &McpContext,
    principal: &Principal,
    info: &RequestInfo,
    name: &str,
    field: &str,
    text: &str,
) {
    if ctx.auditor.is_none() {
        return;
    }
    if let Some(label) = detect_suspicious(text) {
        ctx.audit(
            AuditEvent::new(
                AuditEventType::MaliciousInput,
                Severity::Low,
                "suspicious pattern in free text (passed on unchanged)",
            )
            .principal(principal)
            .request(info)
            .action(name)
            .extra("pattern", label)
            .extra("field", field),
        );
    }
}

/// The principal's agents: from [`McpContext::agents`] when listed less than
/// `AGENT_CACHE_TTL` ago, else from Dust (and then kept).
pub async fn agents(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<Arc<Vec<AgentConfiguration>>, DustError> {
    if let Some(agents) = ctx.agents.get(&principal.user_id) {
        return Ok(agents);
    }
    let agents = Arc::new(ctx.dust.list_agents(&principal.credentials).await?);
    ctx.agents.put(&principal.user_id, agents.clone());
    Ok(agents)
}

/// Agents matching `query` (case-insensitive, in name or description), active ones only.
pub async fn list_agents(
    ctx: &McpContext,
    principal: &Principal,
    query: Option<&str>,
) -> Result<AgentList, ServiceError> {
    if let Some(q) = query
        && q.len() > MAX_ID_LEN
    {
        return Err(ServiceError::Invalid(format!(
            "query must be at most {MAX_ID_LEN} bytes"
        )));
    }
    let agents = agents(ctx, principal)
        .await
        .map_err(|e| ServiceError::dust("listing agents", e))?;
    let agents = super::tools::filter_agents(&agents, query)
        .filter(|a| a.status.is_empty() || a.status == "active")
        .map(AgentView::summary)
        .collect();
    Ok(AgentList { agents })
}

/// One agent's configuration, instructions included.
pub async fn get_agent(
    ctx: &McpContext,
    principal: &Principal,
    agent_id: &str,
) -> Result<AgentView, ServiceError> {
    check_id("agentId", agent_id)?;
    ctx.dust
        .get_agent(&principal.credentials, agent_id)
        .await
        .map(|agent| AgentView::full(&agent))
        .map_err(|e| ServiceError::dust(format!("reading agent {agent_id}"), e))
}
