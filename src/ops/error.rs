//! The one error of an operation, and the words for a Dust failure.
//!
//! An [`OpError`] says what went wrong in terms of the operation (the input, the caller's
//! rights, the named thing, Dust, the server); each adapter decides how to say it: MCP as a
//! JSON-RPC error or a tool error the model can act on (`crate::mcp::errors`), REST as an HTTP
//! status and the `ApiError` envelope (`crate::http::rest::api_error`). No message here ever
//! contains a key or token: Dust's messages don't, and ours name only ids.

use crate::{
    auth::Permission,
    dust::{DustError, DustErrorKind},
};

use super::args::InvalidArgument;

/// The wait suggested after a 429 without `Retry-After`: Dust's rate limits count per minute.
const RATE_LIMIT_WINDOW_SECS: u64 = 60;

/// Why an operation did not produce its result.
#[derive(Debug)]
pub enum OpError {
    /// The request is wrong (an identifier outside its allowlist, a bound exceeded).
    Invalid(String),
    /// The caller lacks the permission the operation needs.
    Denied(Permission),
    /// The caller may not touch what it named (another workspace).
    Forbidden(String),
    /// The named thing does not exist for this caller (or is another user's: same answer).
    NotFound(String),
    /// The caller already has as many calls toward Dust running as it may.
    Busy(String),
    /// Dust failed or said no while doing `action` ("listing agents").
    Dust { action: String, error: DustError },
    /// The operation ran and failed in a way the caller can act on (an agent's run failed, a
    /// connector's document cannot be written).
    Failed(String),
    /// The operation took longer than it may (an agent run past `MCP_SERVER_TIMEOUT`).
    Timeout(String),
    /// A server fault (a store); the detail is for the log only.
    Internal(String),
    /// The server is stopping and the operation outlived the shutdown grace period.
    ShuttingDown(String),
}

impl OpError {
    pub fn dust(action: impl Into<String>, error: DustError) -> Self {
        Self::Dust {
            action: action.into(),
            error,
        }
    }

    /// A stable name of the failure (a trace span's `error.type`): the variant, or for Dust's
    /// failures `dust_` and their kind. Never the message, which may quote the request.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_argument",
            Self::Denied(_) => "permission_denied",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Busy(_) => "busy",
            Self::Dust { error, .. } => match error.kind {
                DustErrorKind::Unauthorized => "dust_unauthorized",
                DustErrorKind::Forbidden => "dust_forbidden",
                DustErrorKind::NotFound => "dust_not_found",
                DustErrorKind::InvalidRequest => "dust_invalid_request",
                DustErrorKind::RateLimited => "dust_rate_limited",
                DustErrorKind::Upstream => "dust_upstream",
                DustErrorKind::Timeout => "dust_timeout",
                DustErrorKind::Network => "dust_network",
                DustErrorKind::Protocol => "dust_protocol",
                DustErrorKind::Unavailable => "dust_unavailable",
            },
            Self::Failed(_) => "failed",
            Self::Timeout(_) => "timeout",
            Self::Internal(_) => "internal",
            Self::ShuttingDown(_) => "shutting_down",
        }
    }
}

impl From<InvalidArgument> for OpError {
    fn from(error: InvalidArgument) -> Self {
        Self::Invalid(error.message)
    }
}

impl From<crate::store::StoreError> for OpError {
    fn from(error: crate::store::StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// Words a model can act on for a Dust failure while doing `action` (e.g. "listing agents").
pub fn describe_dust_error(action: &str, error: &DustError) -> String {
    let detail = match &error.error_type {
        Some(kind) => format!("{} ({kind})", error.message),
        None => error.message.clone(),
    };
    match error.kind {
        DustErrorKind::Unauthorized => format!(
            "Dust refused the API key while {action}: {detail}. The key may be revoked or belong to another workspace."
        ),
        // Dust's own words for a refusal or a miss are not relayed (catalogue Z7): they could
        // tell a caller what exists beyond the key's spaces. The kind is enough to act on.
        DustErrorKind::Forbidden => format!(
            "Dust does not allow {action} with this key (it may lack access to that space)."
        ),
        DustErrorKind::NotFound => format!("Not found while {action}."),
        DustErrorKind::InvalidRequest => {
            format!("Dust rejected the request while {action}: {detail}.")
        }
        // Dust's limits use one-minute windows; without a Retry-After, a minute is the honest
        // wait to suggest.
        DustErrorKind::RateLimited => format!(
            "Dust is rate limiting this workspace ({action}): {detail}. Retry in {} s.",
            error
                .retry_after
                .map_or(RATE_LIMIT_WINDOW_SECS, |after| after.as_secs().max(1))
        ),
        DustErrorKind::Timeout => {
            format!("Dust did not answer in time while {action}: {detail}. Try again.")
        }
        DustErrorKind::Unavailable => format!(
            "Dust is unavailable, retrying in {} s: its recent calls failed, so calls to it are paused (nothing was sent while {action}).",
            error.retry_after.map_or(1, |after| after.as_secs().max(1))
        ),
        DustErrorKind::Network | DustErrorKind::Upstream | DustErrorKind::Protocol => {
            format!("Dust is unavailable while {action}: {detail}. Try again later.")
        }
    }
}
