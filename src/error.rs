//! The one error type of the HTTP routes and its JSON envelope.
//!
//! Every refusal is `{"error": {"code", "message", "requestId"}}` with a precise status. For a
//! 5xx the message is generic (the detail goes to the log, once, where the error is handled);
//! no message ever carries a key, token or cookie, because none is ever formatted into one.
//! 401s carry `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750) with the protected
//! resource metadata URL the MCP authorization spec asks for.
//!
//! The `requestId` is added by one response layer ([`stamp_request_id`], in the HTTP stack just
//! outside `PropagateRequestIdLayer`): a handler returns its `ApiError` like any other error, the
//! response carries the unrendered envelope as an extension, and the layer writes the body with
//! the id the response is about to leave with. Handlers never thread request headers through.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http_body_util::{Either, Full};
use serde_json::json;

/// The request id header, set by the outermost middleware and echoed in error bodies.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The realm of our bearer challenges.
pub const REALM: &str = "mcp-dust-server";

/// The `Retry-After` of a 503 for an unavailable state store, in seconds.
pub const STORE_RETRY_AFTER_SECS: u64 = 5;

/// An HTTP error: status, a stable machine code, and a message for people.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 with the bearer challenge; `invalid_token` says a token was sent and refused.
    pub fn unauthorized(message: impl Into<String>, invalid_token: bool) -> Self {
        let challenge = if invalid_token {
            format!("Bearer realm=\"{REALM}\", error=\"invalid_token\"")
        } else {
            format!("Bearer realm=\"{REALM}\"")
        };
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 for a missing permission, with the scope challenge of RFC 6750 §3.1.
    pub fn insufficient_scope(permission: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("permission denied: needs {permission}"),
        )
        .with_header(
            header::WWW_AUTHENTICATE,
            format!(
                "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{permission}\""
            ),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn too_many_requests(message: impl Into<String>, retry_after: Duration) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message).with_header(
            header::RETRY_AFTER,
            retry_after.as_secs().max(1).to_string(),
        )
    }

    /// Dust could not be reached or failed: nothing was issued or changed.
    pub fn upstream_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_unavailable",
            "Dust is unavailable right now; try again later",
        )
    }

    /// A state store (tokens, counters, ownership: Redis when shared) cannot be read or written.
    /// The request is refused rather than served on a guess (fail closed); nothing changed.
    /// `Retry-After` suggests when to try again: a restarted store is picked up on its own.
    pub fn store_unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            message,
        )
        .with_header(header::RETRY_AFTER, STORE_RETRY_AFTER_SECS.to_string())
    }

    /// A server fault: the detail is logged by the caller, the client sees a generic message.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "internal error; quote the request id when reporting it",
        )
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn render(&self, request_id: Option<&str>) -> Response {
        let body = envelope(self.code, &self.message, request_id);
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                response.headers_mut().append(name.clone(), value);
            }
        }
        response
    }
}

fn envelope(code: &str, message: &str, request_id: Option<&str>) -> serde_json::Value {
    json!({
        "error": {
            "code": code,
            "message": message,
            "requestId": request_id,
        }
    })
}

/// An error response whose body does not carry its request id yet.
#[derive(Debug, Clone)]
struct Unstamped {
    code: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    /// The envelope with `requestId: null`, and what [`stamp_request_id`] needs to fill it in.
    fn into_response(self) -> Response {
        let mut response = self.render(None);
        response.extensions_mut().insert(Unstamped {
            code: self.code,
            message: self.message,
        });
        response
    }
}

/// Writes the response's own `x-request-id` into its error envelope, if it is an [`ApiError`]
/// still without one (the response layer of every route, `http::apply_middleware`). It sits
/// outside the trace layer, so it takes any body, and leaves every other response's body as it
/// is (no boxing on the success path).
pub fn stamp_request_id<B>(response: Response<B>) -> Response<Either<B, Full<Bytes>>> {
    let (mut parts, body) = response.into_parts();
    let request_id = parts.headers.get(REQUEST_ID).and_then(|v| v.to_str().ok());
    match (parts.extensions.get::<Unstamped>(), request_id) {
        (Some(error), Some(request_id)) => {
            let body = envelope(error.code, &error.message, Some(request_id)).to_string();
            parts.extensions.remove::<Unstamped>();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Either::Right(Full::new(Bytes::from(body))))
        }
        _ => Response::from_parts(parts, Either::Left(body)),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}
