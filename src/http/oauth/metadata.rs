//! Discovery: the protected resource metadata of `/mcp` (RFC 9728), the authorization server
//! metadata (RFC 8414), and the `WWW-Authenticate` challenge of a 401 from `/mcp` that points a
//! client at the first ([`challenge`]), and the 403 scope challenge of a request refused a
//! permission ([`scope_challenge`]).

use axum::{
    Json,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    auth::Permission,
    error::{ApiError, REALM},
    mcp::MissingScope,
    state::AppState,
};

/// Every permission name: the scopes this server knows.
fn scopes_supported() -> Vec<&'static str> {
    Permission::ALL.iter().map(|p| p.as_str()).collect()
}

/// The URL of `/mcp`'s protected resource metadata.
pub(super) fn resource_metadata_url(state: &AppState) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        state.public_url
    )
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub(super) async fn protected_resource(State(state): State<AppState>) -> Response {
    Json(json!({
        "resource": super::resource(&state),
        "authorization_servers": [state.public_url],
        "scopes_supported": scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Dust MCP server",
    }))
    .into_response()
}

/// `GET /.well-known/oauth-authorization-server`. The issuer is the public URL (also the JWT
/// issuer); only public clients, PKCE S256 and the code and refresh-token grants.
pub(super) async fn authorization_server(State(state): State<AppState>) -> Response {
    let base = &state.public_url;
    Json(json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth/authorize"),
        "token_endpoint": format!("{base}/oauth/token"),
        "registration_endpoint": format!("{base}/oauth/register"),
        "revocation_endpoint": format!("{base}/oauth/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": scopes_supported(),
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

/// The answer to a request refused by `/mcp`'s authentication: [`challenge`], and on HTTP/1
/// `Connection: close`, since the unread request body makes the connection unusable. Without
/// it a client that reuses the connection for the discovery that follows (the Python SDK
/// does) sees it dropped.
pub fn refuse_mcp(state: &AppState, error: ApiError, request: &axum::extract::Request) -> Response {
    let mut response = challenge(state, error).into_response();
    if request.version() <= axum::http::Version::HTTP_11 {
        response.headers_mut().insert(
            header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// A refusal from `/mcp` with the MCP authorization challenge: a 401's `WWW-Authenticate`
/// gains `resource_metadata` (RFC 9728 §5.1) and the scopes a token normally carries (the
/// policy's default grant), so a client that follows the MCP spec finds this server's OAuth
/// endpoints. Other refusals pass unchanged.
#[must_use]
pub fn challenge(state: &AppState, mut error: ApiError) -> ApiError {
    if error.status != axum::http::StatusCode::UNAUTHORIZED {
        return error;
    }
    let scope = state.policy.default_grant().names().join(" ");
    let extra = format!(
        ", resource_metadata=\"{}\", scope=\"{scope}\"",
        resource_metadata_url(state)
    );
    for (name, value) in &mut error.headers {
        if *name == header::WWW_AUTHENTICATE {
            value.push_str(&extra);
        }
    }
    error
}

/// `/mcp` step (`http::mcp_message`): a request the MCP handlers refused for a missing
/// permission (a JSON-RPC `-32003`, which stays the body) is answered 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="<permission>",
/// resource_metadata="…"` (MCP authorization, RFC 6750 §3.1), so an OAuth client can ask the
/// person for that permission and retry (step-up).
///
/// `scope` names only what this operation needs: the 2026-07-28 spec has clients add it to the
/// scopes they already hold. A client without OAuth support still reads the JSON-RPC error.
///
/// Before the request goes on: the slot the handlers name the missing permission in.
pub fn expect_scope(request: &mut axum::extract::Request) -> MissingScope {
    let slot = MissingScope::default();
    request.extensions_mut().insert(slot.clone());
    slot
}

/// After: the answer, turned into the challenge when the slot names a permission.
pub fn scope_challenge(state: &AppState, slot: &MissingScope, mut response: Response) -> Response {
    let Some(permission) = slot.get() else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    *response.status_mut() = StatusCode::FORBIDDEN;
    let value = format!(
        "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{permission}\", \
         resource_metadata=\"{}\", error_description=\"permission denied: needs {permission}\"",
        resource_metadata_url(state)
    );
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}
