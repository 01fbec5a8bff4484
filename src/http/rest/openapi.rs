//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 document of the REST routes, from the handlers'
//! `#[utoipa::path]` annotations and the body types' schemas. Each route is declared once, in an
//! `OpenApiRouter` (`rest::protected_routes`, `rest::public_routes`): the same declaration
//! mounts the handler and describes it, so the document cannot miss a route (the
//! authentication routes included: a client generated from it can log in).
//!
//! The refusals every protected route can answer (400, 401, 403, 404, 429, 5xx, and 413/415 for
//! a body) all carry the same envelope; [`StandardErrors`] adds them to each operation in one
//! place rather than in every annotation.

use axum::Json;
use utoipa::{
    Modify, OpenApi,
    openapi::{
        ComponentsBuilder, ContentBuilder, HttpMethod, RefOr, ResponseBuilder,
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::{ErrorBody, ErrorEnvelope, agents, audit, auth_docs, knowledge, tokens, workspaces};
use crate::ops::views::{
    AgentAnswer, AgentList, AgentView, CallerView, ConnectorList, ConversationList,
    ConversationSummary, ConversationView, KnowledgeBaseList, KnowledgeBaseView, MessageView,
    WorkspaceView,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "mcp-dust-server REST API",
        description = "The Dust workspace behind this server: agents, knowledge bases, connectors, your tokens and the audit trail. Authenticate with `Authorization: Bearer <token from POST /api/v1/auth/login>` or, in a browser, the session cookie."),
    components(schemas(
        ErrorEnvelope, ErrorBody, AgentAnswer, AgentList, AgentView, KnowledgeBaseView,
        WorkspaceView, CallerView, workspaces::WorkspaceList, agents::ExecuteRequest,
        KnowledgeBaseList, ConnectorList, ConversationList, ConversationSummary,
        ConversationView, MessageView, knowledge::SearchRequest,
        knowledge::SearchResult, knowledge::SearchResponse, tokens::TokenView, tokens::TokenList, tokens::GrantView, tokens::GrantList,
        audit::AuditEvents, auth_docs::LoginBody, auth_docs::UserView, auth_docs::TokenAnswer,
        auth_docs::SessionAnswer, auth_docs::LogoutAnswer,
    )),
    modifiers(&Security),
)]
#[derive(Debug)]
pub struct ApiDoc;

/// The two ways to authenticate: a bearer token, or the browser session cookie.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi
            .components
            .get_or_insert_with(|| ComponentsBuilder::new().build());
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookieAuth",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "mcp.sid",
                "The browser session (`__Host-mcp.sid` in production); unsafe methods also need the X-XSRF-TOKEN header",
            ))),
        );
    }
}

/// Adds the error responses every operation can give, with the envelope schema.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let envelope = || {
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "ErrorEnvelope",
                ))))
                .build()
        };
        let common: &[(&str, &str)] = &[
            (
                "400",
                "Invalid request (an identifier outside its allowlist, a bad parameter)",
            ),
            (
                "401",
                "Not authenticated, or the token is invalid, expired or revoked",
            ),
            (
                "403",
                "A permission is missing (insufficient_scope), or the workspace is not yours",
            ),
            ("404", "Not found"),
            (
                "429",
                "Too many requests, or too many calls in flight; see Retry-After",
            ),
            ("500", "Internal error"),
            ("502", "Dust refused the key or broke its protocol"),
            ("503", "Dust or a store is unavailable"),
            ("504", "Dust did not answer in time"),
        ];
        let with_body: &[(&str, &str)] = &[
            ("413", "The body is too large"),
            ("415", "The body is not application/json"),
        ];
        for (path, item) in &mut openapi.paths.paths {
            if path.ends_with("/openapi.json") {
                continue;
            }
            for method in [HttpMethod::Get, HttpMethod::Post, HttpMethod::Delete] {
                let operation = match method {
                    HttpMethod::Get => item.get.as_mut(),
                    HttpMethod::Post => item.post.as_mut(),
                    HttpMethod::Delete => item.delete.as_mut(),
                    _ => None,
                };
                let Some(operation) = operation else {
                    continue;
                };
                let has_body = operation.request_body.is_some();
                let extra = if has_body { with_body } else { &[] };
                let run: &[(&str, &str)] = if path.ends_with("/execute") {
                    &[("424", "The agent's run failed or was cancelled in Dust")]
                } else {
                    &[]
                };
                for (status, description) in common.iter().chain(extra).chain(run) {
                    operation
                        .responses
                        .responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| {
                            RefOr::T(
                                ResponseBuilder::new()
                                    .description(*description)
                                    .content("application/json", envelope())
                                    .build(),
                            )
                        });
                }
            }
        }
    }
}

/// The whole document: [`ApiDoc`]'s header and components, every route the REST routers
/// declare, and the standard error answers added to each. Built once per process.
pub fn full_document() -> &'static utoipa::openapi::OpenApi {
    static DOCUMENT: std::sync::OnceLock<utoipa::openapi::OpenApi> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = utoipa_axum::router::OpenApiRouter::<crate::state::AppState>::with_openapi(
            ApiDoc::openapi(),
        )
        .merge(super::protected_routes())
        .merge(super::public_routes())
        .into_openapi();
        StandardErrors.modify(&mut doc);
        doc
    })
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(full_document())
}
