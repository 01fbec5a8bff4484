//! Typed Dust failures, built from the HTTP status and Dust's error envelope
//! `{"error": {"type", "message"}}`.
//!
//! Messages are Dust's own (they never contain the key) or ours; neither the key nor the
//! `Authorization` header can reach a `DustError`, because the client never formats a request.

use std::time::Duration;

/// What went wrong, coarse enough for callers to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DustErrorKind {
    /// 401: missing, unknown or disabled key, or a key of another workspace.
    Unauthorized,
    /// 403: the key may not do this (plan, permissions, managed data source, quota).
    Forbidden,
    /// 404: the workspace, agent, conversation, data source, ... does not exist for this key.
    NotFound,
    /// 400: Dust refused the request as invalid.
    InvalidRequest,
    /// 429: Dust's rate limit or credit cap.
    RateLimited,
    /// 5xx or an unexpected status.
    Upstream,
    /// No answer in time.
    Timeout,
    /// Could not reach Dust (DNS, connection refused or reset, TLS).
    Network,
    /// Dust answered something this client cannot read.
    Protocol,
    /// Not sent: Dust failed repeatedly and the circuit breaker pauses calls to it
    /// (`retry_after` says for how long).
    Unavailable,
}

impl DustErrorKind {
    /// A stable snake-case name (the `error.type` of a trace span).
    pub fn name(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::InvalidRequest => "invalid_request",
            Self::RateLimited => "rate_limited",
            Self::Upstream => "upstream",
            Self::Timeout => "timeout",
            Self::Network => "network",
            Self::Protocol => "protocol",
            Self::Unavailable => "unavailable",
        }
    }
}

/// A failed Dust call.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct DustError {
    pub kind: DustErrorKind,
    /// HTTP status, when Dust answered.
    pub status: Option<u16>,
    /// Dust's `error.type` (`conversation_not_found`, `invalid_api_key_error`, ...).
    pub error_type: Option<String>,
    /// A message fit for a person or a model.
    pub message: String,
    /// `Retry-After` of a 429 or 503, when Dust sent one.
    pub retry_after: Option<Duration>,
}

impl DustError {
    pub fn new(kind: DustErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            error_type: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Builds the error of a non-success answer from its status and body.
    pub fn from_response(status: u16, body: &[u8], retry_after: Option<Duration>) -> Self {
        let envelope = serde_json::from_slice::<serde_json::Value>(body).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|v| v.pointer(&format!("/error/{name}")))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let error_type = field("type");
        let kind = match status {
            400 | 422 => DustErrorKind::InvalidRequest,
            401 => DustErrorKind::Unauthorized,
            403 => DustErrorKind::Forbidden,
            404 => DustErrorKind::NotFound,
            408 | 504 => DustErrorKind::Timeout,
            429 => DustErrorKind::RateLimited,
            _ => DustErrorKind::Upstream,
        };
        // Dust reports core "document not found" as 400 data_source_error; callers treat it as
        // a missing document.
        let kind = match (&kind, field("data_source_error/code").as_deref()) {
            (DustErrorKind::InvalidRequest, Some(code)) if code.contains("not_found") => {
                DustErrorKind::NotFound
            }
            _ => kind,
        };
        let message = field("message")
            .or_else(|| field("data_source_error/message"))
            .unwrap_or_else(|| format!("Dust answered HTTP {status}"));
        Self {
            kind,
            status: Some(status),
            error_type,
            message,
            retry_after,
        }
    }

    /// Whether an idempotent call may be repeated after this error.
    pub fn is_retryable(&self) -> bool {
        // Not 500: Dust's "unhandled internal server error" usually comes back the same.
        matches!(self.status, Some(408 | 429 | 502 | 503 | 504))
    }
}
