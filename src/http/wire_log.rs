//! Opt-in request and response logging (`LOG_REQUEST_HEADERS`, `LOG_REQUEST_BODY`,
//! `LOG_RESPONSE_HEADERS`, `LOG_RESPONSE_BODY`), always masked.
//!
//! Meant for debugging an integration, off by default and discouraged in production (the guide
//! says so). Headers go through [`mask::mask_headers`] (credentials and cookies redacted), JSON
//! bodies through [`mask::mask_json`] and other text through [`mask::mask_text`]; then every
//! value is escaped and truncated, so neither a secret nor a forged log line can come out.
//! Only bodies that declare a `Content-Length` within [`MAX_LOGGED_BODY`] are buffered and
//! logged; streams (SSE) and larger or chunked bodies pass through untouched and unlogged, so
//! logging can never change or lose what a client sent or receives.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::Response,
};

use crate::{mask, state::AppState};

/// Largest body logged, in bytes; a larger body is logged as its size only.
pub(super) const MAX_LOGGED_BODY: usize = 64 * 1024;

/// Largest logged value, in bytes, after masking.
const MAX_LOGGED_TEXT: usize = 4096;

/// Whether any of the four settings is on.
pub(super) fn enabled(state: &AppState) -> bool {
    let c = &state.config;
    c.log_request_headers || c.log_request_body || c.log_response_headers || c.log_response_body
}

fn headers_text(headers: &HeaderMap) -> String {
    let pairs: Vec<String> = mask::mask_headers(headers)
        .into_iter()
        .map(|(name, value)| format!("{name}: {value}"))
        .collect();
    mask::sanitize_for_log(&pairs.join("; "), MAX_LOGGED_TEXT)
}

fn body_text(bytes: &Bytes) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(mut value) => {
            mask::mask_json(&mut value);
            mask::sanitize_for_log(&value.to_string(), MAX_LOGGED_TEXT)
        }
        Err(_) => mask::sanitize_for_log(&String::from_utf8_lossy(bytes), MAX_LOGGED_TEXT),
    }
}

/// Whether a body with these headers is small enough, and of known size, to buffer.
fn loggable(headers: &HeaderMap) -> bool {
    let stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let small = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|len| len <= MAX_LOGGED_BODY);
    small && !stream
}

/// The middleware; a no-op unless one of the settings is on.
pub(super) async fn log_wire(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !enabled(&state) {
        return next.run(request).await;
    }
    let config = &state.config;
    let path = mask::sanitize_url_for_log(&request.uri().to_string(), 1024);
    let method = request.method().clone();
    if config.log_request_headers {
        tracing::info!(http.method = %method, url = %path, headers = %headers_text(request.headers()), "request headers");
    }
    let request = if config.log_request_body && loggable(request.headers()) {
        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(body, MAX_LOGGED_BODY).await {
            Ok(bytes) => {
                tracing::info!(http.method = %method, url = %path, body = %body_text(&bytes), "request body");
                Request::from_parts(parts, Body::from(bytes))
            }
            // The body broke or lied about its length: let the handler see the failure.
            Err(_) => Request::from_parts(parts, Body::empty()),
        }
    } else {
        request
    };
    let response = next.run(request).await;
    if config.log_response_headers {
        tracing::info!(http.status = response.status().as_u16(), url = %path, headers = %headers_text(response.headers()), "response headers");
    }
    if !config.log_response_body || !loggable(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    match axum::body::to_bytes(body, MAX_LOGGED_BODY).await {
        Ok(bytes) => {
            tracing::info!(http.status = parts.status.as_u16(), url = %path, body = %body_text(&bytes), "response body");
            Response::from_parts(parts, Body::from(bytes))
        }
        Err(_) => {
            tracing::warn!(url = %path, "a response body did not match its Content-Length");
            Response::from_parts(parts, Body::empty())
        }
    }
}
