//! The log of every request that reached "Dust", for tests to assert on.
//!
//! Tests use it to prove a negative ("Dust was never called") and to check that a text reached
//! Dust byte for byte, so the raw path, query and body are kept exactly as received. The
//! `Authorization` header is reduced to a boolean: a key is never stored or echoed. A
//! `multipart/form-data` body (a file upload) is recorded empty and passed on as a stream.

use std::sync::Mutex;

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{error::ApiError, state::AppState};

/// Largest body the simulator reads; bigger bodies get a 413 like Dust's edge.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    /// Raw (still percent-encoded) path.
    pub path: String,
    /// Raw query string, without `?`.
    pub query: Option<String>,
    /// Whether an `Authorization` header was present (its value is never kept).
    pub authorization: bool,
    /// The body bytes as received (served as lossy UTF-8 over `/_sim/requests`); empty for a
    /// `multipart/form-data` upload.
    #[serde(serialize_with = "as_lossy_text")]
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body as text (lossy), for assertions.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn as_lossy_text<S: serde::Serializer>(body: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&String::from_utf8_lossy(body))
}

/// The recorded requests, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct RequestLog(Mutex<Vec<RecordedRequest>>);

impl RequestLog {
    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push(&self, request: RecordedRequest) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(request);
    }
}

/// Middleware: records every request except the simulator's own `/_sim/*` controls.
pub(crate) async fn record_request(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if request.uri().path().starts_with("/_sim/") {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // An upload's bytes are the file's (up to 100 MiB): they reach the handler unread and are
    // not kept here.
    let is_upload = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("multipart/form-data"));
    if is_upload {
        state.requests.push(RecordedRequest {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            authorization: parts.headers.contains_key(header::AUTHORIZATION),
            body: Bytes::new(),
        });
        return next.run(Request::from_parts(parts, body)).await;
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "content_too_large",
            "The request body is too large.",
        )
        .into_response();
    };
    state.requests.push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        authorization: parts.headers.contains_key(header::AUTHORIZATION),
        body: bytes.clone(),
    });
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// `GET /_sim/requests`: the log as JSON.
pub(crate) async fn list_requests(State(state): State<AppState>) -> Json<Vec<RecordedRequest>> {
    Json(state.requests.snapshot())
}
