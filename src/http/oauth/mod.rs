//! The server as its own small OAuth 2.1 authorization server, so clients that follow the MCP
//! authorization spec (claude.ai, Claude Desktop, ChatGPT connectors, the SDKs) can connect to
//! `/mcp`: they cannot paste a bearer token, so the person's "sign-in" is entering a Dust API
//! key on our consent page, and the tokens issued are the same audience-bound JWTs as the login
//! endpoint's (`aud` = the canonical `/mcp` URI, the Dust key sealed server-side).
//!
//! | route | what | module |
//! |---|---|---|
//! | `GET /.well-known/oauth-protected-resource[/mcp]` | RFC 9728 metadata of `/mcp` | [`metadata`] |
//! | `GET /.well-known/oauth-authorization-server` | RFC 8414 metadata | [`metadata`] |
//! | `POST /oauth/register` | RFC 7591 dynamic registration (public clients) | [`clients`] |
//! | `GET /oauth/authorize` | request checks, then the consent page | [`authorize`] |
//! | `POST /oauth/authorize` | consent (CSRF-checked), the login's key checks, code | [`authorize`] |
//! | `POST /oauth/token` | code (PKCE S256) and refresh-token grants | [`token`] |
//! | `POST /oauth/revoke` | RFC 7009 revocation | [`token`] |
//!
//! Registration is open (RFC 7591 without an initial access token), so what it can make the
//! server keep is bounded three ways: a `register` bucket per client address
//! ([`REGISTRATION_QUOTA`] per [`REGISTRATION_WINDOW`], refused 429 with `Retry-After`), a
//! short life for a client never used ([`UNUSED_CLIENT_TTL`]; [`CLIENT_TTL`] once an
//! authorization completes), and the store's cap of unused clients, which evicts the oldest
//! unused one instead of refusing everyone.
//!
//! A client is either registered here or a client ID metadata document: an https URL fetched
//! with SSRF protection ([`fetch`]). The confused-deputy defences of the MCP security best
//! practices: exact `redirect_uri` match, and no redirect before the person has seen our page
//! (every invalid authorization request is an error page here, since registration is open and
//! a redirect URI is whatever someone registered: no open redirect), a consent page per
//! authorization naming the client and its redirect host, CSRF protection of the consent (a
//! signed form token bound to a short-lived `__Host-` cookie), framing denied, `state` single-use, PKCE S256 only, codes single-use (a replay
//! revokes what the code issued), refresh tokens rotated on use (a reuse revokes the family),
//! and `resource` (RFC 8707) bound to the canonical `/mcp` URI. State lives behind
//! [`crate::store::OAuthStore`] (memory or Redis); secrets are stored hashed or sealed.

mod authorize;
mod clients;
mod fetch;
mod metadata;
mod page;
mod token;

use std::time::Duration;

use axum::{
    Json, Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;

use crate::{audit::AuditEventType, error::ApiError, state::AppState};

pub use metadata::{challenge, expect_scope, refuse_mcp, scope_challenge};

/// How long a code may be exchanged after it was issued.
pub const CODE_TTL: Duration = Duration::from_secs(60);

/// How long a spent code is remembered, so that a replay is recognised (and revokes).
pub const CODE_MEMORY: Duration = Duration::from_secs(600);

/// How long a consent page may be answered, and a `state` stays spent.
pub const CONSENT_TTL: Duration = Duration::from_secs(600);

/// How long a dynamically registered client is kept once used, from its registration
/// (re-registering is cheap for a client).
pub const CLIENT_TTL: Duration = Duration::from_secs(90 * 24 * 3600);

/// How long a registered client that never completed an authorization is kept: registration
/// is open to anyone, so what nobody uses is forgotten after a day (and evicted sooner, oldest
/// first, past the store's cap of unused clients).
pub const UNUSED_CLIENT_TTL: Duration = Duration::from_secs(24 * 3600);

/// Registrations per client address (IPv6: per /64) in [`REGISTRATION_WINDOW`]. A connector
/// registers once per person who connects it, and hosted ones (claude.ai, ChatGPT) register
/// from a few addresses of theirs: generous for them, small against one address filling the
/// store.
pub const REGISTRATION_QUOTA: u64 = 60;

/// The window of [`REGISTRATION_QUOTA`].
pub const REGISTRATION_WINDOW: Duration = Duration::from_secs(3600);

/// The OAuth routes (all public: they are how a client gets credentials).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route("/oauth/register", post(clients::register))
        .route(
            "/oauth/authorize",
            get(authorize::show).post(authorize::consent),
        )
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
}

/// The canonical URI of `/mcp`: the `resource` and the tokens' audience.
fn resource(state: &AppState) -> String {
    state.mcp_url()
}

/// Milliseconds since the epoch by the application clock.
fn now_ms(state: &AppState) -> i64 {
    super::session::millis(state.now())
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// 32 random bytes from the OS CSPRNG, base64url: codes, refresh tokens, consent ids.
fn random_secret() -> String {
    crate::crypto::random_token::<32>()
}

/// An OAuth error answer (RFC 6749 §5.2 / RFC 7591 §3.2.2): `{"error", "error_description"}`,
/// never stored by a cache.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    no_store(&mut response);
    response
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A store failure: logged, and a 503 (fail closed; nothing issued).
fn store_down(e: &crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "oauth store unavailable");
    let mut response =
        ApiError::store_unavailable("authorization is unavailable right now").into_response();
    no_store(&mut response);
    response
}

/// The audit event types of this module, named once.
mod events {
    pub(super) use super::AuditEventType::{
        OauthAuthorizeFail, OauthClientRefused, OauthClientRegistered, OauthConsentDenied,
        OauthConsentGranted, OauthTokenFail, OauthTokenIssued,
    };
}
