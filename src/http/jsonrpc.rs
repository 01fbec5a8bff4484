//! Shape checks on `POST /mcp` bodies before rmcp sees them (catalogue V2–V6).
//!
//! rmcp refuses a body it cannot read with `415` and a plain-text message, which is the wrong
//! answer for a malformed request and gives clients nothing to parse. This layer answers those
//! cases precisely, as JSON-RPC errors in a `400`:
//! - not UTF-8 or not JSON (deep nesting included: serde_json stops at 128 levels) → `-32700`;
//! - a batch (removed in 2025-06-18; one message per POST) or a non-object → `-32600`, and no
//!   element runs;
//! - duplicate keys in the message (`"method"` twice: a parser differential) → `-32600`;
//! - `params` that is not an object → `-32602`.
//!
//! Everything else, protocol semantics included, is left to rmcp. The body is read once, within
//! the same limit rmcp applies, and handed on unchanged.

use std::{collections::HashSet, fmt};

use axum::{
    Json,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Value, json};

use super::MAX_MCP_BODY;

/// JSON-RPC error codes used here.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const INVALID_PARAMS: i64 = -32602;

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": { "code": code, "message": message },
        })),
    )
        .into_response()
}

/// Fails on a JSON object with a repeated key (at the top level of the message).
struct UniqueKeys;

impl<'de> Visitor<'de> for UniqueKeys {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

fn has_unique_keys(bytes: &[u8]) -> bool {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    deserializer.deserialize_map(UniqueKeys).is_ok()
}

/// Why a body was refused: the JSON-RPC error to answer with (in a `400`).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The message's `id` when it could be read, else `null`.
    pub id: Value,
    pub code: i64,
    /// A fixed sentence: it never quotes the body.
    pub message: &'static str,
}

impl Rejection {
    fn new(id: Value, code: i64, message: &'static str) -> Self {
        Self { id, code, message }
    }
}

/// The shape checks on one `POST /mcp` body (already within the size limit): `Ok` when rmcp
/// may have it. Pure, so the fuzz target `jsonrpc_envelope` drives it directly.
pub fn check_body(bytes: &[u8]) -> Result<(), Rejection> {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(value) => value,
        Err(e) => {
            let message = if e.to_string().contains("recursion limit") {
                "parse error: JSON nested too deeply"
            } else if e.is_syntax() || e.is_eof() {
                "parse error: the body is not valid JSON"
            } else {
                "parse error: the body could not be read as JSON"
            };
            return Err(Rejection::new(Value::Null, PARSE_ERROR, message));
        }
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    match &value {
        Value::Array(_) => {
            return Err(Rejection::new(
                Value::Null,
                INVALID_REQUEST,
                "batches are not supported: send one JSON-RPC message per request",
            ));
        }
        Value::Object(_) => {}
        _ => {
            return Err(Rejection::new(
                Value::Null,
                INVALID_REQUEST,
                "a JSON-RPC message must be an object",
            ));
        }
    }
    if !has_unique_keys(bytes) {
        return Err(Rejection::new(
            id,
            INVALID_REQUEST,
            "duplicate keys in the JSON-RPC message",
        ));
    }
    if let Some(params) = value.get("params")
        && !params.is_object()
    {
        return Err(Rejection::new(
            id,
            INVALID_PARAMS,
            "params must be an object",
        ));
    }
    Ok(())
}

/// The middleware, on `/mcp`: checks POST bodies, passes everything else through.
pub async fn check_message(request: Request, next: Next) -> Response {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    // Other methods and content types are rmcp's to refuse (405, 415).
    if request.method() != Method::POST || !is_json {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MCP_BODY).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": INVALID_REQUEST,
                           "message": format!("the body must be at most {MAX_MCP_BODY} bytes") },
            })),
        )
            .into_response();
    };
    if let Err(rejection) = check_body(&bytes) {
        return rpc_error(&rejection.id, rejection.code, rejection.message);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_found() {
        assert!(has_unique_keys(br#"{"jsonrpc":"2.0","id":1,"method":"a"}"#));
        assert!(!has_unique_keys(
            br#"{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}"#
        ));
    }
}
