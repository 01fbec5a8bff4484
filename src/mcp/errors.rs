//! How failures reach an MCP client.
//!
//! Two kinds, as the MCP spec and `rmcp` intend (catalogue §6.9):
//! - the request itself is wrong (bad arguments, a permission the caller lacks): a JSON-RPC
//!   error, `-32602` or [`PERMISSION_DENIED`];
//! - the tool ran and Dust failed or said no: a tool result with `isError: true` and a message
//!   the model can act on ("not found", "rate-limited, retry in 30 s", ...).
//!
//! No message here ever contains a key or token: Dust's messages don't, and ours name only ids.
//!
//! Over HTTP a refused permission is also an HTTP answer: the handler leaves the permission in
//! the request's [`MissingScope`], and the `/mcp` layer turns the 200 into the MCP
//! authorization spec's 403 scope challenge (the JSON-RPC error stays the body).

use std::sync::{Arc, OnceLock};

use rmcp::{
    ErrorData as McpError,
    model::{CallToolResult, ContentBlock, ErrorCode},
};

use crate::{auth::Permission, dust::DustError, ops::OpError};

/// JSON-RPC error code of a refused permission (implementation-defined range).
pub const PERMISSION_DENIED: ErrorCode = ErrorCode(-32003);

/// JSON-RPC error code when no authenticated caller is attached to the request.
pub const UNAUTHENTICATED: ErrorCode = ErrorCode(-32001);

pub(super) fn invalid_params(message: impl Into<String>) -> McpError {
    McpError::invalid_params(message.into(), None)
}

/// The caller lacks `permission`.
pub(super) fn permission_denied(permission: Permission) -> McpError {
    metrics::counter!("authz_denials_total", "permission" => permission.as_str()).increment(1);
    McpError::new(
        PERMISSION_DENIED,
        format!("permission denied: needs {permission}"),
        Some(serde_json::json!({ "requiredPermission": permission.as_str() })),
    )
}

/// The permission a refused MCP request needed, passed from the handler back to the HTTP layer.
///
/// The HTTP layer puts one in the request's extensions; rmcp hands the handler a copy of the
/// request parts whose extensions share it (an `Arc`), so what the handler records is what the
/// layer reads once the answer is ready. One JSON-RPC request per POST, so one slot per request.
#[derive(Clone, Debug, Default)]
pub struct MissingScope(Arc<OnceLock<Permission>>);

impl MissingScope {
    /// Records `permission` (the first refusal of the request wins).
    pub fn record(&self, permission: Permission) {
        let _ = self.0.set(permission);
    }

    /// The permission recorded, if the request was refused one.
    pub fn get(&self) -> Option<Permission> {
        self.0.get().copied()
    }
}

/// The permission named by a [`permission_denied`] error.
pub(super) fn denied_permission(error: &McpError) -> Option<Permission> {
    if error.code != PERMISSION_DENIED {
        return None;
    }
    error
        .data
        .as_ref()?
        .get("requiredPermission")?
        .as_str()?
        .parse()
        .ok()
}

pub(super) fn unauthenticated() -> McpError {
    McpError::new(UNAUTHENTICATED, "authentication required", None)
}

/// A tool result reporting a failure to the model.
pub(super) fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

/// A tool result for a Dust failure.
pub(super) fn dust_tool_error(action: &str, error: &DustError) -> CallToolResult {
    tool_error(crate::ops::describe_dust_error(action, error))
}

/// The MCP form of an operation's error: the request itself was wrong (invalid input, a
/// permission the caller lacks) or the server failed: a JSON-RPC error; anything else a tool
/// error the model can read and act on.
pub(super) fn tool_result(error: OpError) -> Result<CallToolResult, McpError> {
    match error {
        OpError::Invalid(message) => Err(invalid_params(message)),
        OpError::Denied(permission) => Err(permission_denied(permission)),
        OpError::NotFound(message)
        | OpError::Failed(message)
        | OpError::Forbidden(message)
        | OpError::Busy(message)
        | OpError::Timeout(message)
        | OpError::ShuttingDown(message) => Ok(tool_error(message)),
        OpError::Dust { action, error } => Ok(dust_tool_error(&action, &error)),
        OpError::Internal(message) => Err(McpError::internal_error(message, None)),
    }
}

/// An operation's error as a JSON-RPC error, for the methods that have no tool result to carry
/// it (`tasks/*`): a wrong request or an unknown id is `-32602`, a missing permission
/// `-32003`, anything else an internal error that says what failed.
pub(super) fn rpc_error(error: OpError) -> McpError {
    match error {
        OpError::Invalid(message) | OpError::NotFound(message) => invalid_params(message),
        OpError::Denied(permission) => permission_denied(permission),
        OpError::Failed(message)
        | OpError::Forbidden(message)
        | OpError::Busy(message)
        | OpError::Timeout(message)
        | OpError::ShuttingDown(message)
        | OpError::Internal(message) => McpError::internal_error(message, None),
        OpError::Dust { action, error } => {
            McpError::internal_error(crate::ops::describe_dust_error(&action, &error), None)
        }
    }
}

impl From<crate::ops::args::InvalidArgument> for McpError {
    fn from(error: crate::ops::args::InvalidArgument) -> Self {
        invalid_params(error.message)
    }
}
