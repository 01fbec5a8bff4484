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
//!
//! Having read the message, the layer opens its span ([`Message::span`]): one per MCP method,
//! inside the request's span and around rmcp's handling, so the tool call's span and what it
//! calls are its descendants. It is here because this is the one place that reads the method
//! before rmcp does; rmcp's handler trait has one method per request kind and no common entry.

use std::{borrow::Cow, collections::HashSet, fmt};

use axum::{
    Json,
    body::Body,
    extract::Request,
    http::{Method, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{
    Deserialize,
    de::{self, Deserializer, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Value, json};
use tracing::{Span, field::Empty};

use super::MAX_MCP_BODY;
use crate::mask;

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

/// What the checks need to know about a message, read in one pass over the body.
///
/// The body used to be parsed twice before rmcp parsed it a third time (into a `Value`, then
/// again for duplicate keys). One pass now reads only what the checks use (the message's
/// kind, its `id`, whether a key repeats, whether `params` is an object) and skips everything
/// else without building it; serde_json's nesting limit still applies to every value.
#[derive(Debug, PartialEq)]
enum Shape {
    Object {
        /// The message's `id` (the last one, as a `Value` parse would keep), or `null`.
        id: Value,
        /// The message's `method` when it is a plausible method name ([`MethodName`]).
        method: Option<String>,
        duplicate_key: bool,
        params_not_object: bool,
    },
    Array,
    Other,
}

/// Reads the [`Shape`] of `bytes`, or the parse error (trailing characters included).
fn read_shape(bytes: &[u8]) -> Result<Shape, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let shape = deserializer.deserialize_any(ShapeVisitor)?;
    deserializer.end()?;
    Ok(shape)
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut seen: HashSet<Cow<'de, str>> = HashSet::new();
        let mut id = Value::Null;
        let mut method = None;
        let mut duplicate_key = false;
        let mut params_not_object = false;
        while let Some(Key(key)) = map.next_key()? {
            match key.as_ref() {
                "id" => id = map.next_value()?,
                "method" => method = map.next_value::<MethodName>()?.0,
                "params" => params_not_object = !map.next_value::<IsObject>()?.0,
                _ => map.next_value::<Skip>().map(|_| ())?,
            }
            // Keep reading after a repeat: a syntax error further on is still a parse error.
            duplicate_key |= !seen.insert(key);
        }
        Ok(Shape::Object {
            id,
            method,
            duplicate_key,
            params_not_object,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Shape::Array)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
}

/// An object key, borrowed from the body unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Any JSON value, read and dropped. Unlike [`de::IgnoredAny`] (which serde_json skips
/// without a depth limit), it goes through `deserialize_any`, so nesting deeper than
/// serde_json's 128 levels is a parse error here as it would be for a `Value`.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor).map(|_| Skip)
    }
}

/// A message's `method`, kept only when it looks like an MCP method name (`tools/call`,
/// `notifications/roots/list_changed`): letters, `/` and `_`, at most 64 of them. It names a
/// span, so a client cannot make it carry anything else (a key pasted there has digits or
/// dashes); any other value is read and dropped, and rmcp answers it.
struct MethodName(Option<String>);

impl<'de> Deserialize<'de> for MethodName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MethodVisitor;
        impl<'de> Visitor<'de> for MethodVisitor {
            type Value = Option<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a method name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<String>, E> {
                let plausible = !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_alphabetic() || b == b'/' || b == b'_');
                Ok(plausible.then(|| v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Option<String>, A::Error> {
                SkipVisitor.visit_map(map).map(|_| None)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Option<String>, A::Error> {
                SkipVisitor.visit_seq(seq).map(|_| None)
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<String>, E> {
                Ok(None)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<String>, E> {
                Ok(None)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<String>, E> {
                Ok(None)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<String>, E> {
                Ok(None)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
                Ok(None)
            }
        }
        deserializer.deserialize_any(MethodVisitor).map(MethodName)
    }
}

/// Whether a value is an object (the value is read and dropped either way).
struct IsObject(bool);

impl<'de> Deserialize<'de> for IsObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkipVisitor).map(IsObject)
    }
}

/// Reads any value; `true` when it was an object.
struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_key::<de::IgnoredAny>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(true)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(false)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
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
/// may have it. Pure, so the fuzz target `jsonrpc_envelope` drives it directly; one pass over
/// the body ([`read_shape`]).
pub fn check_body(bytes: &[u8]) -> Result<(), Rejection> {
    read_message(bytes).map(|_| ())
}

/// What the span of a message that passed the checks records.
#[derive(Debug)]
struct Message {
    id: Value,
    method: Option<String>,
}

impl Message {
    /// The MCP method's span (`tools/call`, ...): `mcp.method.name`, `jsonrpc.request.id`
    /// (masked and bounded: the client chooses it), `mcp.protocol.version` (when the header
    /// is a date-shaped version), and `error.type` when the answer is an HTTP error. No session
    /// id: the server is stateless, and a session id is a credential wherever one is used. The
    /// values are worked out only when traces are exported (the span is disabled otherwise).
    fn span(&self, headers: &axum::http::HeaderMap) -> Span {
        let method = self.method.as_deref().unwrap_or("_OTHER");
        tracing::info_span!(
            target: crate::telemetry::otel::SPANS,
            "mcp",
            otel.name = method,
            mcp.method.name = method,
            jsonrpc.request.id = self.request_id().as_deref(),
            mcp.protocol.version = protocol_version(headers),
            error.type = Empty,
            otel.status_code = Empty,
        )
    }

    /// The `id`, masked and bounded; `None` for a notification.
    fn request_id(&self) -> Option<String> {
        match &self.id {
            Value::Null => None,
            Value::String(id) => Some(mask::sanitize_for_log(id, 64)),
            other => Some(mask::sanitize_for_log(&other.to_string(), 64)),
        }
    }
}

/// The `MCP-Protocol-Version` header when it is shaped like a version (`2025-11-25`).
fn protocol_version(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 16 && v.bytes().all(|b| b.is_ascii_digit() || b == b'-'))
}

/// [`check_body`], keeping what the message's span needs.
fn read_message(bytes: &[u8]) -> Result<Message, Rejection> {
    let (id, method, duplicate_key, params_not_object) = match read_shape(bytes) {
        Ok(Shape::Object {
            id,
            method,
            duplicate_key,
            params_not_object,
        }) => (id, method, duplicate_key, params_not_object),
        Ok(Shape::Array) => {
            return Err(Rejection::new(
                Value::Null,
                INVALID_REQUEST,
                "batches are not supported: send one JSON-RPC message per request",
            ));
        }
        Ok(Shape::Other) => {
            return Err(Rejection::new(
                Value::Null,
                INVALID_REQUEST,
                "a JSON-RPC message must be an object",
            ));
        }
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
    if duplicate_key {
        return Err(Rejection::new(
            id,
            INVALID_REQUEST,
            "duplicate keys in the JSON-RPC message",
        ));
    }
    if params_not_object {
        return Err(Rejection::new(
            id,
            INVALID_PARAMS,
            "params must be an object",
        ));
    }
    Ok(Message { id, method })
}

/// The first of `/mcp`'s own steps (`http::mcp_message`): a POST of JSON must be one JSON-RPC
/// message of a shape this server answers; anything else passes (other methods and content
/// types are rmcp's to refuse: 405, 415). A checked body rides on as [`CheckedBody`] (the list
/// fast path reads it without reading the body again), with the message's span to run the rest
/// in. `Err` is the refusal to send.
///
/// [`CheckedBody`]: super::mcp_fast::CheckedBody
pub(crate) async fn check(request: Request) -> Result<(Request, Option<Span>), Response> {
    let is_json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if request.method() != Method::POST || !is_json {
        return Ok((request, None));
    }
    let (mut parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_MCP_BODY).await else {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": INVALID_REQUEST,
                           "message": format!("the body must be at most {MAX_MCP_BODY} bytes") },
            })),
        )
            .into_response());
    };
    let message = match read_message(&bytes) {
        Ok(message) => message,
        Err(rejection) => return Err(rpc_error(&rejection.id, rejection.code, rejection.message)),
    };
    let span = message.span(&parts.headers);
    parts
        .extensions
        .insert(super::mcp_fast::CheckedBody(bytes.clone()));
    Ok((Request::from_parts(parts, Body::from(bytes)), Some(span)))
}

/// Marks the message's span failed when the answer is an HTTP error status (a refusal rmcp or
/// a step below answered; a tool's failure is a 200 and is the tool span's).
pub(crate) fn record_outcome(span: &Span, response: &Response) {
    if !response.status().is_success() {
        span.record("error.type", response.status().as_str());
        span.record("otel.status_code", "error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(
        id: Value,
        method: Option<&str>,
        duplicate_key: bool,
        params_not_object: bool,
    ) -> Shape {
        Shape::Object {
            id,
            method: method.map(str::to_owned),
            duplicate_key,
            params_not_object,
        }
    }

    #[test]
    fn one_pass_reads_what_the_checks_need() {
        let shape = |b: &[u8]| read_shape(b).expect("valid JSON");
        assert_eq!(
            shape(br#"{"jsonrpc":"2.0","id":1,"method":"a","params":{"x":[1,{"y":null}]}}"#),
            object(json!(1), Some("a"), false, false)
        );
        assert_eq!(
            shape(br#"{"jsonrpc":"2.0","id":"a","method":"a","method":"b"}"#),
            object(json!("a"), Some("b"), true, false)
        );
        // An escaped key is the same key.
        assert_eq!(
            shape(br#"{"id":1,"\u0069d":2}"#),
            object(json!(2), None, true, false)
        );
        assert_eq!(
            shape(br#"{"id":null,"params":[1]}"#),
            object(Value::Null, None, false, true)
        );
        assert_eq!(shape(br#" [{"id":1}] "#), Shape::Array);
        assert_eq!(shape(br#""tools/list""#), Shape::Other);
        assert_eq!(shape(b"12"), Shape::Other);
    }

    #[test]
    fn only_plausible_method_names_are_kept_for_the_span() {
        let method = |b: &[u8]| match read_shape(b).expect("valid JSON") {
            Shape::Object { method, .. } => method,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            method(br#"{"method":"notifications/roots/list_changed"}"#).as_deref(),
            Some("notifications/roots/list_changed")
        );
        assert_eq!(method(br#"{"method":"sk-live-0123456789"}"#), None);
        assert_eq!(method(br#"{"method":"eyJhbGciOi.eyJzdWIi.c2ln"}"#), None);
        assert_eq!(method(br#"{"method":{"tools":["call"]}}"#), None);
        assert_eq!(method(br#"{"method":7}"#), None);
        assert_eq!(
            method(format!(r#"{{"method":"{}"}}"#, "a".repeat(65)).as_bytes()),
            None
        );
    }

    #[test]
    fn check_body_answers_each_shape_with_its_error() {
        let refused = |b: &[u8]| check_body(b).expect_err("refused");
        assert_eq!(
            check_body(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#),
            Ok(())
        );
        let r = refused(br#"{"id":7,"method":"a","method":"b"}"#);
        assert_eq!((r.id, r.code), (json!(7), INVALID_REQUEST));
        assert_eq!(r.message, "duplicate keys in the JSON-RPC message");
        let r = refused(br#"{"id":"x","method":"a","params":"p"}"#);
        assert_eq!((r.id, r.code), (json!("x"), INVALID_PARAMS));
        let r = refused(br#"[{"id":1,"method":"a"}]"#);
        assert_eq!((r.id, r.code), (Value::Null, INVALID_REQUEST));
        let r = refused(b"true");
        assert_eq!(r.message, "a JSON-RPC message must be an object");
        let r = refused(br#"{"id":1,"method":"#);
        assert_eq!((r.id, r.code), (Value::Null, PARSE_ERROR));
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert_eq!(
            refused(deep.as_bytes()).message,
            "parse error: JSON nested too deeply"
        );
    }

    #[test]
    fn one_pass_still_fails_on_bad_json_anywhere() {
        // A repeated key first, a syntax error later: still a parse error.
        assert!(read_shape(br#"{"id":1,"id":2,"params":{"a":}}"#).is_err());
        assert!(read_shape(br#"{"id":1} x"#).is_err());
        assert!(read_shape(b"[1,").is_err());
        assert!(read_shape(b"{\"id\":\"\xff\"}").is_err());
        let deep = format!("{{\"params\":{}{}}}", "[".repeat(200), "]".repeat(200));
        let error = read_shape(deep.as_bytes()).expect_err("too deep");
        assert!(error.to_string().contains("recursion limit"), "{error}");
        let deep_key = format!(
            "{{\"other\":{}{}}}",
            "{\"a\":".repeat(200),
            "1".to_owned() + &"}".repeat(200)
        );
        assert!(read_shape(deep_key.as_bytes()).is_err());
    }
}
