//! The REST API under `/api/v1`: the same operations as the MCP tools, for browsers and
//! scripts.
//!
//! An adapter over [`crate::ops`], as the MCP tools are. Handlers are thin: they read the
//! request, open the operation's [`Call`] with its descriptor ([`ops::call`]: the permission
//! check, 403 `insufficient_scope`, audited `authz_fail`; the workspace check, a `workspaceId`
//! that is not the caller's is a 403 and nothing reaches Dust; the per-principal bulkhead
//! toward Dust, 429), call the operation's function and close the call with its audit record.
//! Errors are the one `ApiError` envelope with the request id ([`api_error`]).
//!
//! Files: `workspaces.rs`, `agents.rs` (including `execute`, JSON or SSE), `conversations.rs`,
//! `knowledge.rs`
//! (knowledge bases, search, connectors), `tokens.rs` (the caller's own tokens), `audit.rs`
//! (the recent audit records), `openapi.rs` (the document, generated from the handlers'
//! annotations).

mod agents;
mod audit;
pub mod auth_docs;
mod conversations;
mod knowledge;
pub mod openapi;
mod tables;
mod tasks;
mod tokens;
mod workspaces;

use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, rejection::PathRejection, rejection::QueryRejection},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    audit::RequestInfo,
    auth::Principal,
    dust::DustErrorKind,
    error::ApiError,
    ops::{self, Context, Op, OpError, Surface},
    state::AppState,
    store::TokenRecord,
};

/// The routes that need an authenticated caller (mounted behind `require_principal`), each
/// declared once: the path and method come from the handler's `#[utoipa::path]`, which also
/// describes it in the OpenAPI document ([`openapi::full_document`]).
///
/// Each noun's file lists its own routes (`routes()`), so a route added to a noun is one edit
/// in that file.
pub fn protected_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(workspaces::routes())
        .merge(agents::routes())
        .merge(conversations::routes())
        .merge(tasks::routes())
        .merge(knowledge::routes())
        .merge(tables::routes())
        .routes(routes!(tokens::list))
        .routes(routes!(tokens::revoke))
        .routes(routes!(tokens::grants))
        .routes(routes!(tokens::revoke_grant))
        .routes(routes!(audit::query))
        .routes(routes!(crate::http::login::refresh))
        .routes(routes!(crate::http::login::logout))
        .routes(routes!(crate::http::session::current))
}

/// The routes anyone may call: the login and this document.
pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crate::http::login::login))
        .routes(routes!(openapi::document))
}

/// The error envelope every refusal carries (documentation of [`ApiError`]'s body).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    /// A stable machine code: `invalid_request`, `unauthorized`, `insufficient_scope`,
    /// `forbidden`, `not_found`, `rate_limited`, `upstream_unavailable`, ...
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The request id (`X-Request-Id`), to quote when reporting a problem.
    pub request_id: Option<String>,
}

/// An [`ApiError`] answered with the request id of the request it refuses.
#[derive(Debug)]
pub struct Refusal {
    error: ApiError,
    request_id: Option<String>,
}

impl Refusal {
    /// The envelope as JSON (the body of the response, or of an SSE `error` event).
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.error.code,
                "message": self.error.message,
                "requestId": self.request_id,
            }
        })
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.error.into_response()
    }
}

/// The authenticated caller of a REST request and what the audit log records about it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    /// The token record the request was authenticated with, when there is one.
    pub token: Option<Arc<TokenRecord>>,
    pub info: RequestInfo,
    /// Whether the request's token still holds, for long calls ([`ops::Revalidate`]).
    pub revalidate: Option<ops::Revalidate>,
}

impl Caller {
    /// `error` as a response carrying this request's id.
    pub fn refuse(&self, error: ApiError) -> Refusal {
        Refusal {
            error,
            request_id: self.info.request_id.clone(),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, _state: &AppState) -> Result<Self, Refusal> {
        let info = RequestInfo::from_parts(parts);
        let Some(principal) = parts.extensions.get::<Arc<Principal>>().cloned() else {
            // Only reachable if a route were mounted outside the authentication layer.
            return Err(Refusal {
                error: ApiError::unauthorized("authentication required", false),
                request_id: info.request_id,
            });
        };
        Ok(Self {
            principal,
            token: parts.extensions.get::<Arc<TokenRecord>>().cloned(),
            revalidate: parts.extensions.get::<ops::Revalidate>().cloned(),
            info,
        })
    }
}

/// A path that did not parse (400, never axum's plain-text answer).
pub fn bad_path(caller: &Caller, rejection: &PathRejection) -> Refusal {
    caller.refuse(ApiError::bad_request(format!(
        "invalid path: {}",
        rejection.body_text()
    )))
}

/// A query string that did not parse (400).
pub fn bad_query(caller: &Caller, rejection: &QueryRejection) -> Refusal {
    caller.refuse(ApiError::bad_request(format!(
        "invalid query string: {}",
        rejection.body_text()
    )))
}

/// One operation of one REST caller: an [`ops::Call`] (permission, workspace, bulkhead, audit
/// record) whose refusals are answered with this request's id.
#[derive(Debug)]
pub struct Call {
    inner: ops::Call,
    pub ctx: Arc<Context>,
    pub caller: Caller,
}

impl Call {
    /// Opens `op` for `caller` ([`ops::Call::begin`]); `workspace_id` is the one the route
    /// names, if any. A refusal reaches nobody.
    pub fn begin(
        state: &AppState,
        caller: Caller,
        op: &'static Op,
        workspace_id: Option<&str>,
    ) -> Result<Self, Refusal> {
        let ops_caller = ops::Caller {
            principal: caller.principal.clone(),
            info: caller.info.clone(),
            revalidate: caller.revalidate.clone(),
        };
        match ops::Call::begin(&state.ops, ops_caller, op, Surface::Route, workspace_id) {
            Ok(inner) => Ok(Self {
                ctx: inner.ctx.clone(),
                inner,
                caller,
            }),
            Err(refused) => Err(caller.refuse(api_error(refused))),
        }
    }

    pub fn principal(&self) -> &Principal {
        &self.caller.principal
    }

    /// The operation's call, for the operations that need the caller's request info.
    pub fn op_call(&self) -> &ops::Call {
        &self.inner
    }

    /// Records the outcome ([`ops::Call::finish`]) and turns an error into its response.
    pub fn finish<T>(
        &self,
        result: Result<T, OpError>,
        target: Option<(&str, &str)>,
    ) -> Result<T, Refusal> {
        self.inner
            .finish(result, target)
            .map_err(|e| self.caller.refuse(api_error(e)))
    }

    /// A refused input found by the handler itself (a bad path, query or body): audited like
    /// the operation's own validation failures.
    pub fn invalid(&self, error: ApiError) -> Refusal {
        if error.status == StatusCode::BAD_REQUEST {
            self.inner.invalid(&error.message);
        }
        self.caller.refuse(error)
    }
}

/// The HTTP form of an [`OpError`].
pub fn api_error(error: OpError) -> ApiError {
    match error {
        OpError::Denied(permission) => ApiError::insufficient_scope(permission.as_str()),
        OpError::Busy(message) => {
            ApiError::too_many_requests(message, std::time::Duration::from_secs(1))
        }
        OpError::Invalid(message) => ApiError::bad_request(message),
        OpError::Forbidden(message) => ApiError::forbidden(message),
        OpError::NotFound(message) => ApiError::not_found(message),
        // The request was handled; what it depended on (the agent's run) failed: 424, not a
        // server error.
        OpError::Failed(message) => {
            ApiError::new(StatusCode::FAILED_DEPENDENCY, "agent_failed", message)
        }
        OpError::Timeout(message) => {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, "agent_timeout", message)
        }
        OpError::ShuttingDown(message) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", message)
        }
        OpError::Internal(detail) => {
            tracing::error!(error = %detail, "REST operation failed");
            ApiError::internal()
        }
        OpError::Dust { action, error } => {
            let message = ops::describe_dust_error(&action, &error);
            match error.kind {
                DustErrorKind::NotFound => ApiError::not_found(message),
                DustErrorKind::Forbidden => ApiError::forbidden(message),
                DustErrorKind::InvalidRequest => ApiError::bad_request(message),
                DustErrorKind::RateLimited => ApiError::too_many_requests(
                    message,
                    error
                        .retry_after
                        .unwrap_or(std::time::Duration::from_secs(30)),
                ),
                DustErrorKind::Unauthorized => {
                    ApiError::new(StatusCode::BAD_GATEWAY, "upstream_refused_key", message)
                }
                DustErrorKind::Timeout => {
                    ApiError::new(StatusCode::GATEWAY_TIMEOUT, "upstream_timeout", message)
                }
                DustErrorKind::Unavailable => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "upstream_unavailable",
                    message,
                )
                .with_header(
                    axum::http::header::RETRY_AFTER,
                    error
                        .retry_after
                        .map_or(1, |after| after.as_secs().max(1))
                        .to_string(),
                ),
                DustErrorKind::Network | DustErrorKind::Upstream | DustErrorKind::Protocol => {
                    tracing::warn!(error = %message, "Dust failed during a REST call");
                    ApiError::upstream_unavailable()
                }
            }
        }
    }
}
