//! rmcp's own HTTP refusals on `/mcp`, put into the project's JSON error envelope.
//!
//! rmcp answers a wrong `Accept` (406), a wrong `Content-Type` (415), GET or DELETE (405), a
//! refused `Host` or `Origin` (403) and an oversized body (413) with a line of plain text and no
//! `Content-Type`. Clients of this server get `{"error": {code, message, requestId}}` for every
//! other refusal, so this layer, on the `/mcp` route only, turns those answers into the same
//! envelope: same status, same extra headers (`Allow: POST` on a 405), rmcp's sentence as the
//! message (masked and shortened; it is JSON-encoded, never reflected raw). JSON answers
//! (JSON-RPC errors, results) pass through untouched.

use axum::response::IntoResponse as _;
use axum::{
    body::to_bytes,
    http::{StatusCode, header},
    response::Response,
};

use crate::{error::ApiError, mask};

/// rmcp's refusals are one sentence; anything longer is cut.
const MAX_MESSAGE: usize = 200;

/// Wraps rmcp's non-JSON error answers into [`ApiError`]'s envelope (a step of
/// `http::mcp_message`).
pub(super) async fn envelope(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, 4 * 1024).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text)
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_MESSAGE)
        .collect::<String>();
    let message = if status.is_server_error() {
        tracing::error!(status = status.as_u16(), detail = %mask::mask_text(&message), "rmcp failed a request");
        ApiError::internal().message
    } else if message.trim().is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        mask::mask_text(message.trim()).into_owned()
    };
    let mut error = ApiError::new(status, code_for(status), message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE
            && name != header::CONTENT_LENGTH
            && let Ok(value) = value.to_str()
        {
            error = error.with_header(name.clone(), value);
        }
    }
    error.into_response()
}

/// The envelope's machine code for a status rmcp answers with.
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_ACCEPTABLE => "not_acceptable",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    }
}
