//! Dust's `publicApiAuth`, as seen by an API-key client.
//!
//! The checks run in Dust's order (header, token shape, key, workspace) because each failure
//! has its own status and type, and a client's error reporting depends on telling them apart.
//! The authenticated [`Workspace`] is put in the request extensions for the handlers.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    error::{ApiError, ApiResult},
    state::{AppState, Workspace},
};

/// Every API key starts with this (`SECRET_KEY_PREFIX`).
pub(crate) const SECRET_KEY_PREFIX: &str = "sk-";

/// Path prefixes under which the next segment is the workspace id.
const WORKSPACE_PREFIXES: &[&str] = &["/api/v1/w/", "/api/sse/v1/w/"];

fn unauthorized(kind: &'static str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, kind, message)
}

/// The credentials message Dust uses for missing or malformed tokens.
const BAD_CREDENTIALS: &str = "The request does not have valid authentication credentials.";

/// Middleware for workspace routes: authenticates the key against the `wId` of the path.
pub(crate) async fn require_workspace_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticate(&state, &request) {
        Ok(workspace) => {
            request.extensions_mut().insert(workspace);
            next.run(request).await
        }
        Err(e) => e.into_response(),
    }
}

fn authenticate(state: &AppState, request: &Request) -> ApiResult<Arc<Workspace>> {
    let token = bearer_token(request)?;
    let Some(keyed) = state.workspace_by_key(token) else {
        return Err(unauthorized(
            "invalid_api_key_error",
            "The API key provided is invalid or disabled.",
        ));
    };
    let path = request.uri().path();
    let w_id = WORKSPACE_PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .unwrap_or_default();
    if keyed.id == w_id {
        return Ok(Arc::clone(keyed));
    }
    if state.workspace_by_id(w_id).is_some() {
        return Err(unauthorized(
            "workspace_auth_error",
            "Only users of the workspace can access this content.",
        ));
    }
    Err(ApiError::not_found(
        "workspace_not_found",
        "The workspace was not found.",
    ))
}

/// The bearer token, or the 401 Dust gives for a missing or malformed header.
fn bearer_token(request: &Request) -> ApiResult<&str> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(unauthorized("not_authenticated", BAD_CREDENTIALS));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match token {
        Some(t) if t.starts_with(SECRET_KEY_PREFIX) => Ok(t),
        _ => Err(unauthorized(
            "malformed_authorization_header_error",
            BAD_CREDENTIALS,
        )),
    }
}

/// `GET /api/v1/me`: OAuth only, so it always fails for an API key (or no token at all).
pub(crate) async fn me(request: Request) -> ApiError {
    match bearer_token(&request) {
        Err(e) if !request.headers().contains_key(header::AUTHORIZATION) => e,
        _ => unauthorized("invalid_oauth_token_error", BAD_CREDENTIALS),
    }
}
