//! `/api/v1/auth/login`, `/refresh` and `/logout`: a Dust API key in, a short-lived JWT out.
//!
//! The order of checks is the security argument:
//! 1. the body is JSON with known fields only, and no key rides in the query string (K12);
//! 2. the key's format (no trimming) and the workspace id's, before anything else (K1–K3);
//! 3. the login throttle for this client IP and key fingerprint (K9, lockout with backoff);
//! 4. Dust itself: a refusal is a generic 401, an outage a 503, and neither issues anything
//!    (K4–K7);
//! 5. the permission policy, narrowed by what the caller asked for;
//! 6. a token record holding the key sealed with the at-rest key, then the JWT; or, for a
//!    browser login (`"session": true`), a session linked to that record, set as cookies, and
//!    no token in the answer ([`super::session`]).
//!
//! Each outcome is audited; the key appears only as its keyed fingerprint.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Json,
    extract::{Request, State},
    http::{HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;

use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    auth::{
        Policy, Principal,
        credentials::{self, CredentialRefusal},
        issuer::{self, IssueError, Recorded, RenewalRefusal},
        tokens,
    },
    dust::DustCredentials,
    error::ApiError,
    mask,
    state::AppState,
    store::{TokenOrigin, TokenRecord},
};

use super::{auth::AuthMethod, session::CurrentSession};

/// How long the key check against Dust may take before the login fails with 503 (K6).
pub(super) const LOGIN_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);

/// The login request body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct LoginRequest {
    api_key: SecretString,
    workspace_id: Option<String>,
    username: Option<String>,
    email: Option<String>,
    permissions: Option<Vec<String>>,
    /// A browser login: answer with the session and CSRF cookies instead of a bearer token.
    session: Option<bool>,
}

use crate::state::epoch_secs as unix_seconds;

fn rfc3339(seconds: i64) -> String {
    crate::audit::rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64))
}

fn login_failed(
    state: &AppState,
    info: &RequestInfo,
    reason: &'static str,
    fingerprint: Option<&str>,
    severity: Severity,
) {
    state.auditor.record(
        AuditEvent::new(AuditEventType::AuthnLoginFail, severity, "login refused")
            .request(info)
            .action("login")
            .result(AuditResult::Failure)
            .extra("reason", reason)
            .extra("key.fingerprint", fingerprint),
    );
    metrics::counter!("auth_failures_total", "reason" => reason).increment(1);
}

/// Checks a username or email asserted at login: printable, bounded.
fn check_label(field: &str, value: &str) -> Result<(), ApiError> {
    if value.is_empty() || value.len() > 254 || value.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} must be 1 to 254 printable characters"
        )));
    }
    Ok(())
}

/// `POST /api/v1/auth/login`.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = crate::http::rest::auth_docs::LoginBody,
    responses(
        (status = 200, description = "A token; with `session: true` the session instead, in cookies", body = crate::http::rest::auth_docs::TokenAnswer),
        (status = 400, description = "The body or the key's format is wrong", body = crate::http::rest::ErrorEnvelope),
        (status = 401, description = "Dust refused the key for this workspace", body = crate::http::rest::ErrorEnvelope),
        (status = 429, description = "Too many attempts; see Retry-After", body = crate::http::rest::ErrorEnvelope)))]
pub(super) async fn login(State(state): State<AppState>, request: Request) -> Response {
    let info = super::request_info(&request);
    match login_inner(&state, request, &info).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn login_inner(
    state: &AppState,
    request: Request,
    info: &RequestInfo,
) -> Result<Response, ApiError> {
    if let Some(query) = request.uri().query()
        && mask::mask_url(&format!("?{query}")) != format!("?{query}")
    {
        login_failed(state, info, "key_in_query", None, Severity::Medium);
        return Err(ApiError::bad_request(
            "credentials are not accepted in the URL; send them in the JSON body",
        ));
    }
    super::csrf::check_login_origin(state, request.headers())?;
    let headers = request.headers().clone();
    let body = super::read_json::<LoginRequest>(request, super::MAX_LOGIN_BODY).await?;
    let credentials = check_format(state, info, body.api_key, body.workspace_id)?;
    if let Some(username) = &body.username {
        check_label("username", username)?;
    }
    if let Some(email) = &body.email {
        check_label("email", email)?;
    }
    let (user_id, credentials) = check_with_dust(state, info, credentials).await?;

    let username = body
        .username
        .unwrap_or_else(|| state.config.dust_username.clone());
    let email = body.email.or_else(|| state.config.dust_email.clone());
    let granted = state.policy.grant(&user_id);
    let permissions = Policy::narrow(granted, body.permissions.as_deref())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    let principal = Principal {
        user_id,
        username,
        email,
        full_name: state.config.dust_full_name.clone(),
        workspace_id: credentials.workspace_id.clone(),
        permissions,
        token_id: None,
        credentials,
    };
    let now = state.now();
    if body.session == Some(true) {
        let absolute = super::session::millis(now)
            .saturating_add(state.config.session_absolute_timeout.as_millis() as i64);
        let (started, record) = start_session(state, &principal, absolute, info).await?;
        let replaced = super::session::end_previous(state, &headers, info).await;
        login_succeeded(state, info, &record);
        super::session::announce(state, &started, info, "login", replaced.as_ref());
        return Ok(super::session::started_answer(state, &started, &record));
    }
    let chain_end =
        unix_seconds(now).saturating_add(state.config.token_max_lifetime.as_secs() as i64);
    let issued = issue(state, principal, chain_end).await?;
    login_succeeded(state, info, &issued.record);
    Ok(issued.into_response())
}

/// Steps 2 to 4 of the login, shared with the OAuth consent page (`super::oauth`):
/// [`check_format`] then [`check_with_dust`].
pub(super) async fn check_credentials(
    state: &AppState,
    info: &RequestInfo,
    key: SecretString,
    workspace_id: Option<String>,
) -> Result<(String, DustCredentials), ApiError> {
    let credentials = check_format(state, info, key, workspace_id)?;
    check_with_dust(state, info, credentials).await
}

/// Step 2: the key's format (no trimming) and the workspace id's
/// ([`credentials::check_format`]); the workspace falls back to `DUST_WORKSPACE_ID`.
fn check_format(
    state: &AppState,
    info: &RequestInfo,
    key: SecretString,
    workspace_id: Option<String>,
) -> Result<DustCredentials, ApiError> {
    credentials::check_format(key, workspace_id, state.config.dust_workspace_id.as_deref())
        .map_err(|refusal| refuse_credentials(state, info, &refusal, None))
}

/// Steps 3 and 4 ([`credentials::CredentialCheck::with_dust`]): the lockout for this IP and
/// key, then Dust itself. Returns the principal's pseudonymous id and the credentials.
async fn check_with_dust(
    state: &AppState,
    info: &RequestInfo,
    credentials: DustCredentials,
) -> Result<(String, DustCredentials), ApiError> {
    let check = credentials::CredentialCheck {
        keys: &state.keys,
        throttle: &state.throttle,
        dust: state.dust.as_ref(),
        timeout: LOGIN_UPSTREAM_TIMEOUT,
    };
    let ip = info
        .ip
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    match check.with_dust(credentials, ip, state.now()).await {
        Ok(checked) => Ok((checked.user_id, checked.credentials)),
        Err((refusal, user_id)) => Err(refuse_credentials(state, info, &refusal, Some(&user_id))),
    }
}

/// The answer to refused credentials, audited (`authn_login_fail`, and `authn_login_fail_max`
/// for a lockout) with the refusal's reason.
fn refuse_credentials(
    state: &AppState,
    info: &RequestInfo,
    refusal: &CredentialRefusal,
    user_id: Option<&str>,
) -> ApiError {
    let reason = refusal.reason();
    match refusal {
        CredentialRefusal::KeyFormat(problem) => {
            login_failed(state, info, reason, None, Severity::Low);
            ApiError::bad_request(problem.clone())
        }
        CredentialRefusal::WorkspaceRequired => {
            ApiError::bad_request("workspaceId is required (this server has no default workspace)")
        }
        CredentialRefusal::WorkspaceFormat => {
            login_failed(state, info, reason, None, Severity::Low);
            ApiError::bad_request("workspaceId must be 1 to 64 ASCII letters or digits")
        }
        CredentialRefusal::StoreUnavailable => {
            ApiError::store_unavailable("authentication is unavailable right now")
        }
        CredentialRefusal::Throttled { retry_after } => {
            login_failed(state, info, reason, user_id, Severity::High);
            state.auditor.record(
                AuditEvent::new(
                    AuditEventType::AuthnLoginFailMax,
                    Severity::High,
                    "login locked out after repeated failures",
                )
                .request(info)
                .action("login")
                .result(AuditResult::Denied)
                .extra("key.fingerprint", user_id)
                .extra("retry_after_secs", retry_after.as_secs()),
            );
            ApiError::too_many_requests(
                "too many failed logins; wait before trying again",
                *retry_after,
            )
        }
        CredentialRefusal::Rejected => {
            login_failed(state, info, reason, user_id, Severity::Medium);
            ApiError::unauthorized("invalid API key or workspace", false)
        }
        CredentialRefusal::UpstreamGarbage => {
            login_failed(state, info, reason, user_id, Severity::Medium);
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "Dust's answer could not be understood; nothing was issued",
            )
        }
        CredentialRefusal::UpstreamError => {
            login_failed(state, info, reason, user_id, Severity::Medium);
            ApiError::upstream_unavailable()
        }
        CredentialRefusal::UpstreamTimeout => {
            login_failed(state, info, reason, user_id, Severity::Medium);
            ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                "Dust did not answer in time; try again later",
            )
        }
    }
}

pub(super) fn login_succeeded(state: &AppState, info: &RequestInfo, record: &TokenRecord) {
    state.auditor.record(
        AuditEvent::new(AuditEventType::AuthnLoginSuccess, Severity::Info, "login")
            .user(&record.user_id, Some(&record.username))
            .workspace(&record.workspace_id)
            .request(info)
            .action("login")
            .result(AuditResult::Success)
            .resource("token", &record.token_id),
    );
}

/// A new session for `principal` and the token record behind it, which expires with the
/// session's absolute lifetime (`absolute_ms`). The session is stored first: if the store is
/// full, nothing at all is saved.
async fn start_session(
    state: &AppState,
    principal: &Principal,
    absolute_ms: i64,
    info: &RequestInfo,
) -> Result<(super::session::Started, TokenRecord), ApiError> {
    let token_id = tokens::new_token_id();
    let started = super::session::start(
        state,
        &token_id,
        &principal.user_id,
        &principal.workspace_id,
        absolute_ms,
        info,
    )
    .await?;
    let absolute = absolute_ms.div_euclid(1000);
    match save_record(
        state,
        principal,
        token_id,
        absolute,
        TokenOrigin::Session,
        absolute,
    )
    .await
    {
        Ok(record) => Ok((started, record)),
        Err(error) => {
            super::session::discard(state, &started).await;
            Err(error)
        }
    }
}

/// A freshly issued token.
struct Issued {
    token: String,
    record: TokenRecord,
}

impl IntoResponse for Issued {
    fn into_response(self) -> Response {
        let r = &self.record;
        Json(json!({
            "token": self.token,
            "tokenType": "Bearer",
            "expiresAt": rfc3339(r.expires_at),
            "user": super::session::user_json(r),
        }))
        .into_response()
    }
}

/// Signs a login token for `principal`, of the chain that ends at `chain_end` (epoch
/// seconds), and stores its record ([`crate::auth::Issuer::issue`]).
async fn issue(state: &AppState, principal: Principal, chain_end: i64) -> Result<Issued, ApiError> {
    let issued = state
        .issuer()
        .issue(&principal, state.now(), TokenOrigin::Login, chain_end)
        .await
        .map_err(|e| match e {
            // Login's own checks keep a subject far below the token limit (username and email
            // at most 254 printable characters); the issuer refuses anything larger, before
            // any state changes.
            IssueError::TooLarge => {
                ApiError::bad_request("the username and workspace id are too long for a token")
            }
            IssueError::Store(e) => store_error(&e),
        })?;
    let record = recorded(state, issued.recorded);
    Ok(Issued {
        token: issued.token,
        record,
    })
}

fn store_error(e: &crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "token store unavailable");
    ApiError::store_unavailable("authentication is unavailable right now")
}

/// The record issued, after auditing the tokens it pushed past the per-user cap.
pub(super) fn recorded(state: &AppState, recorded: Recorded) -> TokenRecord {
    let record = recorded.record;
    for token_id in recorded.displaced {
        state.auditor.record(
            AuditEvent::new(
                AuditEventType::AuthnTokenRevoked,
                Severity::Low,
                "token revoked: live token cap reached",
            )
            .user(&record.user_id, Some(&record.username))
            .action("revoke")
            .result(AuditResult::Success)
            .resource("token", &token_id)
            .extra("reason", "cap"),
        );
    }
    record
}

/// Stores the token record `token_id` for `principal` ([`crate::auth::Issuer::record`]),
/// expiring at `expires_at`, of `origin` and of the chain ending at `chain_end`.
async fn save_record(
    state: &AppState,
    principal: &Principal,
    token_id: String,
    expires_at: i64,
    origin: TokenOrigin,
    chain_end: i64,
) -> Result<TokenRecord, ApiError> {
    let saved = state
        .issuer()
        .record(
            principal,
            token_id,
            state.now(),
            expires_at,
            origin,
            chain_end,
        )
        .await
        .map_err(|e| store_error(&e))?;
    Ok(recorded(state, saved))
}

/// `POST /api/v1/auth/refresh`: a new token for the same principal; the old one is revoked.
/// From a session, the session is rotated instead: new id, new linked token, same absolute
/// deadline; the old id is dead (S2).
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "A new token (the one used is revoked); from a session, the rotated session", body = crate::http::rest::auth_docs::TokenAnswer)))]
pub(super) async fn refresh(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Extension(method): Extension<AuthMethod>,
    session: Option<Extension<CurrentSession>>,
    token: Option<Extension<Arc<TokenRecord>>>,
    request: Request,
) -> Response {
    let info = super::request_info(&request);
    if let (AuthMethod::Session, Some(Extension(current))) = (method, session) {
        return match rotate(&state, &principal, &current, &info).await {
            Ok(response) => response,
            Err(error) => error.into_response(),
        };
    }
    let Some(Extension(record)) = token else {
        return ApiError::unauthorized("authentication required", false).into_response();
    };
    // Only a login's token is renewed here, and only until TOKEN_MAX_LIFETIME after the login
    // (auth::issuer::renewal; M1, M2).
    let chain_end = match issuer::renewal(&record, unix_seconds(state.now())) {
        Ok(chain_end) => chain_end,
        Err(refusal) => {
            refresh_refused(&state, &info, &principal, &refusal);
            return match refusal {
                RenewalRefusal::OAuthToken { .. } => ApiError::forbidden(
                    "an OAuth access token is renewed by its client at /oauth/token with the grant's refresh token, not here",
                ),
                RenewalRefusal::ChainEnded => ApiError::unauthorized(
                    "this login has reached its maximum lifetime (TOKEN_MAX_LIFETIME); log in again",
                    false,
                ),
            }
            .into_response();
        }
    };
    let old = principal.token_id.clone().unwrap_or_default();
    // Rotation: the old token goes first, so that at the live-token cap the new one replaces
    // it rather than another client's token. If it cannot be revoked, nothing is issued.
    if let Err(e) = state.tokens.revoke(&old, unix_seconds(state.now())).await {
        tracing::error!(error = %e, "could not revoke the refreshed token");
        return ApiError::store_unavailable("authentication is unavailable right now")
            .into_response();
    }
    // The principal carries the permissions the current policy still allows (the request's
    // authentication re-applied it): a refresh keeps or loses rights, never gains them.
    let issued = match issue(&state, principal.as_ref().clone(), chain_end).await {
        Ok(issued) => issued,
        Err(error) => return error.into_response(),
    };
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::AuthnTokenRefreshed,
            Severity::Info,
            "token refreshed",
        )
        .user(&principal.user_id, Some(&principal.username))
        .request(&info)
        .action("refresh")
        .result(AuditResult::Success)
        .resource("token", &issued.record.token_id)
        .extra("replaces.jti", old.clone()),
    );
    issued.into_response()
}

/// Records a refused refresh (`authn_token_invalid`, with why).
fn refresh_refused(
    state: &AppState,
    info: &RequestInfo,
    principal: &Principal,
    refusal: &RenewalRefusal,
) {
    let mut event = AuditEvent::new(
        AuditEventType::AuthnTokenInvalid,
        Severity::Medium,
        "token refresh refused",
    )
    .user(&principal.user_id, Some(&principal.username))
    .request(info)
    .action("refresh")
    .result(AuditResult::Denied)
    .extra("reason", refusal.reason());
    if let RenewalRefusal::OAuthToken {
        grant_id,
        client_id,
    } = refusal
    {
        event = event
            .resource("oauth_grant", grant_id)
            .extra("client_id", client_id.as_str());
    }
    state.auditor.record(event);
}

/// A session refresh: the new session and token first, then the old ones end.
async fn rotate(
    state: &AppState,
    principal: &Principal,
    current: &CurrentSession,
    info: &RequestInfo,
) -> Result<Response, ApiError> {
    let (started, record) = start_session(
        state,
        principal,
        current.record.absolute_expires_at_ms,
        info,
    )
    .await?;
    if let Err(e) = super::session::end(state, &current.key, "rotated", Some(info)).await {
        tracing::error!(error = %e, "could not end the rotated session");
        super::session::discard(state, &started).await;
        let _ = state
            .tokens
            .revoke(&record.token_id, unix_seconds(state.now()))
            .await;
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "authentication is unavailable right now",
        ));
    }
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::AuthnTokenRefreshed,
            Severity::Info,
            "session refreshed",
        )
        .user(&principal.user_id, Some(&principal.username))
        .request(info)
        .action("refresh")
        .result(AuditResult::Success)
        .resource("token", &record.token_id)
        .extra("replaces.jti", current.record.token_id.clone()),
    );
    super::session::announce(state, &started, info, "renewed", Some(&current.key));
    Ok(super::session::started_answer(state, &started, &record))
}

/// `POST /api/v1/auth/logout`: revokes the token used for this request. From a session, the
/// session is deleted too and both cookies are cleared (S5).
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The token or session is revoked", body = crate::http::rest::auth_docs::LogoutAnswer)))]
pub(super) async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
    Extension(method): Extension<AuthMethod>,
    session: Option<Extension<CurrentSession>>,
    token: Option<Extension<Arc<TokenRecord>>>,
    request: Request,
) -> Response {
    let info = super::request_info(&request);
    if let (AuthMethod::Session, Some(Extension(current))) = (method, session) {
        if let Err(e) = super::session::end(&state, &current.key, "logout", Some(&info)).await {
            tracing::error!(error = %e, "could not end a session at logout");
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "logout is unavailable right now; the session stays valid until it expires",
            )
            .into_response();
        }
        let mut response = (
            [(
                HeaderName::from_static("clear-site-data"),
                super::headers::CLEAR_SITE_DATA_ON_LOGOUT,
            )],
            Json(json!({ "revoked": true })),
        )
            .into_response();
        for cookie in super::session::clearing_cookies(&state) {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        return response;
    }
    let token_id = principal.token_id.clone().unwrap_or_default();
    let Some(Extension(record)) = token else {
        return ApiError::unauthorized("authentication required", false).into_response();
    };
    // An OAuth access token's logout ends its grant too (M3).
    let remember = state.config.oauth_refresh_token_ttl.as_secs() as i64;
    if let Err(e) = tokens::revoke(
        state.tokens.as_ref(),
        state.oauth.as_ref(),
        &record,
        unix_seconds(state.now()),
        remember,
    )
    .await
    {
        tracing::error!(error = %e, "could not revoke a token at logout");
        return ApiError::store_unavailable(
            "logout is unavailable right now; the token stays valid until it expires",
        )
        .into_response();
    }
    state.auditor.record(
        AuditEvent::new(AuditEventType::AuthnTokenRevoked, Severity::Info, "logout")
            .user(&principal.user_id, Some(&principal.username))
            .request(&info)
            .action("logout")
            .result(AuditResult::Success)
            .resource("token", &token_id),
    );
    // H13: the browser drops what it kept for this origin; only on success, since a failed
    // logout leaves the token valid.
    (
        [(
            HeaderName::from_static("clear-site-data"),
            super::headers::CLEAR_SITE_DATA_ON_LOGOUT,
        )],
        Json(json!({ "revoked": true })),
    )
        .into_response()
}
