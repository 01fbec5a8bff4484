//! The Dust error envelope, and the zod-like body checks that produce most 400s.
//!
//! Every failure the simulator reports goes through [`ApiError`], so the envelope
//! `{"error":{"type","message"}}` is written in exactly one place, as Dust's `apiError` does.
//! Validation messages mimic `zod-validation-error` (`Validation error: Required at "path"`)
//! because clients may surface them to users; their exact text is not part of the contract.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// Result of a simulator handler.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// One Dust API error: a status, an `error.type` and a free-text message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {kind}: {message}")]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    /// Extra members of the `error` object (e.g. `data_source_error`).
    extra: Option<(&'static str, Value)>,
    /// `Retry-After` seconds, only for injected faults (Dust's upsert 429 sends none).
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            extra: None,
            retry_after: None,
        }
    }

    /// 400 `invalid_request_error` with a free message.
    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// 400 for a body that fails the schema, worded like Dust's validator middleware.
    pub(crate) fn invalid_body(path: &str, problem: &str) -> Self {
        Self::invalid_request(format!(
            "Invalid request body: {}",
            zod_message(path, problem)
        ))
    }

    /// 400 for query parameters that fail the schema.
    pub(crate) fn invalid_query(path: &str, problem: &str) -> Self {
        Self::invalid_request(format!(
            "Invalid query parameters: {}",
            zod_message(path, problem)
        ))
    }

    /// 404 with the given type.
    pub(crate) fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, kind, message)
    }

    pub(crate) fn with_extra(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    /// The same refusal worded as `fromError(zodError).toString()` alone, for routes that
    /// parse their body with the schema themselves (`POST /search`): no "Invalid request body"
    /// prefix.
    pub(crate) fn unprefixed(mut self) -> Self {
        if let Some(rest) = self.message.strip_prefix("Invalid request body: ") {
            self.message = rest.to_owned();
        }
        self
    }

    pub(crate) fn with_retry_after(mut self, secs: Option<u64>) -> Self {
        self.retry_after = secs;
        self
    }
}

fn zod_message(path: &str, problem: &str) -> String {
    if path.is_empty() {
        format!("Validation error: {problem}")
    } else {
        format!("Validation error: {problem} at \"{path}\"")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = Map::new();
        error.insert("type".into(), json!(self.kind));
        error.insert("message".into(), json!(self.message));
        if let Some((key, value)) = self.extra {
            error.insert(key.into(), value);
        }
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Parses a request body as JSON, with Dust's message for bytes that are not JSON.
pub(crate) fn parse_json(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_body("", "Required"));
    }
    serde_json::from_slice(body)
        .map_err(|_| ApiError::invalid_request("Malformed JSON in request body"))
}

/// A JSON object being validated, with the dotted path used in error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Fields<'a> {
    /// Expects `value` (found at `path`) to be an object.
    pub(crate) fn of(value: &'a Value, path: &'a str) -> ApiResult<Self> {
        match value {
            Value::Object(map) => Ok(Self { map, path }),
            other => Err(ApiError::invalid_body(
                path,
                &format!("Expected object, received {}", kind_name(other)),
            )),
        }
    }

    pub(crate) fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw member, `None` when absent or `null`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn expected(&self, key: &str, wanted: &str, got: &Value) -> ApiError {
        ApiError::invalid_body(
            &self.path_of(key),
            &format!("Expected {wanted}, received {}", kind_name(got)),
        )
    }

    pub(crate) fn required(&self, key: &str) -> ApiResult<&'a Value> {
        self.get(key)
            .ok_or_else(|| ApiError::invalid_body(&self.path_of(key), "Required"))
    }

    pub(crate) fn opt_str(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.expected(key, "string", other)),
        }
    }

    pub(crate) fn req_str(&self, key: &str) -> ApiResult<&'a str> {
        match self.required(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.expected(key, "string", other)),
        }
    }

    pub(crate) fn opt_bool(&self, key: &str) -> ApiResult<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.expected(key, "boolean", other)),
        }
    }

    pub(crate) fn opt_i64(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| self.expected(key, "number", &Value::Null)),
            Some(other) => Err(self.expected(key, "number", other)),
        }
    }

    pub(crate) fn req_array(&self, key: &str) -> ApiResult<&'a Vec<Value>> {
        match self.required(key)? {
            Value::Array(items) => Ok(items),
            other => Err(self.expected(key, "array", other)),
        }
    }

    pub(crate) fn opt_str_array(&self, key: &str) -> ApiResult<Vec<String>> {
        let Some(value) = self.get(key) else {
            return Ok(Vec::new());
        };
        let Value::Array(items) = value else {
            return Err(self.expected(key, "array", value));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s.clone()),
                other => Err(ApiError::invalid_body(
                    &format!("{}.{i}", self.path_of(key)),
                    &format!("Expected string, received {}", kind_name(other)),
                )),
            })
            .collect()
    }
}

/// zod's name for the JSON kind it received.
pub(crate) fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
