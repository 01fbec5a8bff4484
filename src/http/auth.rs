//! Bearer authentication: from an `Authorization` header to a [`Principal`].
//!
//! The token must be one of ours: an HS256 JWT with our issuer, audience and type, within its
//! lifetime, whose `tokenId` names a live token record. The record holds the caller's Dust key,
//! sealed with the at-rest key; it is opened per request and never leaves the server. The
//! checks and the principal are `crate::auth::Resolver`'s; this module parses the header,
//! renders the refusal ([`crate::auth::Refusal`]) and audits it.
//! Revocation is by `tokenId` (catalogue J9/J10), so a re-encoded copy of a revoked token is
//! refused too. A Dust key presented as a bearer token is refused (no token passthrough, J16);
//! tokens in the query string are never read (J14).
//!
//! Browsers authenticate with the session cookie instead ([`super::session`]). Precedence: an
//! `Authorization` header, when present, decides alone (a bad one is a 401 even beside a good
//! cookie); otherwise the session cookie does, and then the CSRF checks apply to unsafe methods
//! ([`super::csrf`]). Either way the request gets the same `Arc<Principal>` plus an
//! [`AuthMethod`]. `/mcp` takes bearer tokens only ([`require_bearer`]): MCP clients are not
//! browsers, and a cookie there would only widen the CSRF surface.

use axum::response::IntoResponse as _;
use std::sync::Arc;

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::Response,
};

use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::{Principal, Refusal},
    error::ApiError,
    state::AppState,
    store::TokenRecord,
};

use super::{
    read_ahead::{PrincipalCount, ReadAhead, SessionAhead, SessionFound},
    request_info,
};

/// Longest `Authorization` header read, in bytes (J13): anything longer is refused unparsed.
pub const MAX_AUTHORIZATION_BYTES: usize = 8 * 1024;

/// The bearer token of `headers`, if any. Exactly one `Authorization` header with the
/// (case-insensitive) `Bearer` scheme and one space; anything else is refused.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Refusal::DuplicateHeader);
    }
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Refusal::TooLarge);
    }
    let value = value.to_str().map_err(|_| Refusal::Malformed)?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(Refusal::Malformed);
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Refusal::Scheme);
    }
    if token.is_empty() || token.contains(' ') {
        return Err(Refusal::Malformed);
    }
    Ok(Some(token))
}

/// Verifies `token` and builds the principal it stands for ([`crate::auth::Resolver::token`]).
pub async fn principal_from_token(
    state: &AppState,
    token: &str,
) -> Result<(Principal, Arc<TokenRecord>), Refusal> {
    state.resolver().token(token, state.now()).await
}

/// Authenticates a request or explains the refusal (and audits it). With a [`ReadAhead`] (the
/// rate limiter verified the same header's token and read its record), only the checks on the
/// record remain.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    info: impl FnOnce() -> crate::audit::RequestInfo,
    ahead: Option<&ReadAhead>,
) -> Result<(Principal, Arc<TokenRecord>), ApiError> {
    let failure = match bearer_token(headers) {
        Ok(Some(token)) => {
            let found = match ahead.and_then(|a| a.take().map(|record| (a, record))) {
                Some((ahead, record)) => state.resolver().accept(&ahead.key, record, state.now()),
                None => principal_from_token(state, token).await,
            };
            match found {
                Ok(found) => return Ok(found),
                Err(failure) => failure,
            }
        }
        Ok(None) => Refusal::Missing,
        Err(failure) => failure,
    };
    Err(refuse(state, &info(), &failure, true))
}

/// The 401 (or 503) of a failed authentication, audited unless nothing was presented.
fn refuse(
    state: &AppState,
    info: &crate::audit::RequestInfo,
    failure: &Refusal,
    bearer: bool,
) -> ApiError {
    let reason = failure.reason();
    if *failure != Refusal::Missing {
        state.auditor.record(
            if failure.is_reuse() {
                AuditEvent::new(
                    AuditEventType::AuthnTokenReuse,
                    Severity::High,
                    "revoked token presented again",
                )
            } else {
                AuditEvent::new(
                    AuditEventType::AuthnTokenInvalid,
                    Severity::Medium,
                    if bearer {
                        "bearer token refused"
                    } else {
                        "session cookie refused"
                    },
                )
            }
            .request(info)
            .action("authenticate")
            .result(AuditResult::Denied)
            .extra("reason", reason),
        );
    }
    metrics::counter!("auth_failures_total", "reason" => reason).increment(1);
    if failure.is_unavailable() {
        return ApiError::store_unavailable(failure.message());
    }
    // `error="invalid_token"` says a bearer token was refused (RFC 6750); a refused session
    // cookie is no bearer token.
    ApiError::unauthorized(failure.message(), bearer && *failure != Refusal::Missing)
}

/// How a request was authenticated (request extension, beside `Arc<Principal>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// `Authorization: Bearer`: no CSRF check (the browser never attaches it by itself).
    Bearer,
    /// The session cookie: unsafe methods passed the CSRF checks.
    Session,
}

/// Middleware of the protected REST routes: a bearer token or the session cookie, giving
/// `Arc<Principal>`, `Arc<TokenRecord>` and [`AuthMethod`] (plus
/// [`super::session::CurrentSession`] for a session), or a 401 / 403.
pub async fn require_principal(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    guard(&state, request, next, true).await
}

/// Middleware of `/mcp`: bearer tokens only; a session cookie alone is a 401.
pub async fn require_bearer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    guard(&state, request, next, false).await
}

/// The request's headers are borrowed, never copied: they are read until the request is
/// handed on (a `HeaderMap` clone per request showed up in the profile, docs/PERFORMANCE.md).
/// Whether the token record `token_id` is still live, asked again by long calls
/// ([`crate::ops::Revalidate`]). A store failure answers "still holds": a blip of the store
/// must not end every answer in flight, and the next check asks again.
fn revalidate(state: &AppState, token_id: &str) -> crate::ops::Revalidate {
    let state = state.clone();
    let token_id = token_id.to_owned();
    crate::ops::Revalidate::new(move || {
        let state = state.clone();
        let token_id = token_id.clone();
        Box::pin(async move {
            let now = crate::state::epoch_secs(state.now());
            match state.tokens.get(&token_id, now).await {
                Ok(Some(record)) => record.is_live(now),
                Ok(None) => false,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot recheck a token during a long call");
                    true
                }
            }
        })
    })
}

async fn guard(state: &AppState, mut request: Request, next: Next, sessions: bool) -> Response {
    if sessions && !request.headers().contains_key(header::AUTHORIZATION) {
        let info = request_info(&request);
        let ahead = request.extensions().get::<Arc<SessionAhead>>().cloned();
        let found = from_session(
            state,
            request.method(),
            request.headers(),
            &info,
            ahead.as_deref(),
        )
        .await;
        match found {
            Ok(Some((principal, token, session, count))) => {
                let extensions = request.extensions_mut();
                if let Some(count) = count {
                    extensions.insert(count);
                }
                extensions.insert(Arc::new(principal));
                extensions.insert(revalidate(state, &token.token_id));
                extensions.insert(token);
                extensions.insert(AuthMethod::Session);
                extensions.insert(session);
                return next.run(request).await;
            }
            Ok(None) => {}
            Err(refusal) => return refusal,
        }
    }
    let ahead = request.extensions().get::<Arc<ReadAhead>>().cloned();
    // What the audit record of a refusal says about the request, built only for a refusal.
    // (The request's parts, not the request: its body is not `Sync`.)
    let (method, uri, headers, extensions) = (
        request.method(),
        request.uri(),
        request.headers(),
        request.extensions(),
    );
    let info = || crate::audit::RequestInfo::from_http(method, uri, headers, extensions);
    match authenticate(state, headers, info, ahead.as_deref()).await {
        Ok((principal, record)) => {
            let extensions = request.extensions_mut();
            extensions.insert(Arc::new(principal));
            extensions.insert(revalidate(state, &record.token_id));
            extensions.insert(record);
            extensions.insert(AuthMethod::Bearer);
            next.run(request).await
        }
        // `/mcp`: the 401 names the OAuth metadata (MCP authorization spec).
        Err(error) if !sessions => super::oauth::refuse_mcp(state, error, &request),
        Err(error) => error.into_response(),
    }
}

/// A session request's identity once its session and token are known, with the principal's
/// count when it was taken here (a session this instance had not seen); otherwise the rate
/// limiter took it beside the session (`http::read_ahead`).
type FromSession = (
    Principal,
    Arc<TokenRecord>,
    super::session::CurrentSession,
    Option<Arc<PrincipalCount>>,
);

/// The session cookie's principal (`None`: no session cookie), or the refusal to send.
///
/// A session this instance has seen ([`super::read_ahead::SessionHints`]) had its record, its
/// token record and its principal's count read together by the rate limiter: one store round
/// trip, and the sliding expiry is written without the request waiting. Any other: its record
/// (read ahead beside the client address's count), then its token record, the sliding expiry
/// and the principal's count together, two round trips, and the session is remembered. A count
/// taken here before the token is known to be live is given back on a refusal (the rate
/// limiter gives back its own).
async fn from_session(
    state: &AppState,
    method: &axum::http::Method,
    headers: &HeaderMap,
    info: &crate::audit::RequestInfo,
    ahead: Option<&SessionAhead>,
) -> Result<Option<FromSession>, Response> {
    let (found, token_ahead) = match ahead.and_then(|a| a.take().map(|f| (a.key.clone(), f))) {
        Some((key, SessionFound { session, token })) => (Some((key, session)), token),
        None => (None, None),
    };
    let mut session = match super::session::find(state, headers, info, found).await {
        Ok(Some(session)) => session,
        Ok(None) => return Ok(None),
        Err(failure) => return Err(refuse(state, info, &failure, false).into_response()),
    };
    if let Err(reason) = super::csrf::check_request(state, method, headers, &session.key) {
        return Err(super::csrf::refuse(
            state,
            info,
            &session.record.user_id,
            &session.key,
            reason,
        )
        .into_response());
    }
    let now = state.now();
    let now_secs = crate::state::epoch_secs(now);
    // The token the session was known to lead to, read beside it: if the record still names
    // it, nothing is left to ask.
    if let Some((_, token)) = token_ahead.filter(|(id, _)| *id == session.record.token_id) {
        let accepted = async {
            let token = super::session::live_token(state, &session, token, now_secs, info).await?;
            let principal = state.resolver().record(&token)?;
            Ok::<_, Refusal>((principal, token))
        }
        .await;
        return match accepted {
            Ok((principal, token)) => {
                super::session::touch_later(state, &mut session);
                Ok(Some((principal, token, session, None)))
            }
            Err(failure) => Err(refuse(state, info, &failure, false).into_response()),
        };
    }
    let (token_id, user_id) = (
        session.record.token_id.clone(),
        session.record.user_id.clone(),
    );
    let (token, touched, counted) = tokio::join!(
        state.tokens.get(&token_id, now_secs),
        super::session::touch(state, &mut session),
        super::rate_limit::count_principal(state, &user_id, now),
    );
    let count = Arc::new(PrincipalCount::new(user_id, token_id, counted));
    let accepted = async {
        let token = super::session::live_token(state, &session, token, now_secs, info).await?;
        touched?;
        let principal = state.resolver().record(&token)?;
        Ok::<_, Refusal>((principal, token))
    }
    .await;
    match accepted {
        Ok((principal, token)) => {
            state.session_hints.remember(
                &session.key,
                &session.record.token_id,
                &session.record.user_id,
            );
            Ok(Some((principal, token, session, Some(count))))
        }
        Err(failure) => {
            super::rate_limit::give_back(state, Some(&count)).await;
            Err(refuse(state, info, &failure, false).into_response())
        }
    }
}

/// The peer address, when the server was started with connect info.
pub fn peer_ip(request: &Request) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}
