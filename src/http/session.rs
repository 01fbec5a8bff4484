//! Browser sessions: the `mcp.sid` cookie and its server-side lifecycle (catalogue §4.5).
//!
//! - **Creation** only after a successful login that asks for it (`"session": true`): anonymous
//!   traffic never creates a session (S9), and an id the server did not issue is ignored, never
//!   adopted (S1). Every login and every refresh mints a new id; the previous one is ended
//!   (S1, S2).
//! - **Ids** are 32 bytes from the OS CSPRNG, base64url (S7). The store holds an HMAC of the id
//!   ([`session_key`], S12); the id appears in no log, audit record or error.
//! - **Expiry** is judged here with the application clock on every use: idle (`SESSION_TTL`,
//!   S3) and absolute (`SESSION_ABSOLUTE_TIMEOUT`, S4). The cookie carries no `Max-Age`, so
//!   nothing the client edits extends a session.
//! - **Credentials**: the session links to a token record ([`TokenRecord`]) that holds the
//!   principal and the sealed Dust key; the session's token is never handed to the page. Ending
//!   the session revokes the token, and revoking the token ends the session.
//! - **Caps**: [`MAX_SESSIONS_PER_USER`] per principal (the oldest is ended, S6); the store's
//!   own size cap answers 503 when full (S10, see `store::sessions::MAX_SESSIONS`).
//!
//! Cookie attributes (S8, C11, RFC 6265bis): `mcp.sid` is `HttpOnly; SameSite=Lax; Path=/`;
//! `XSRF-TOKEN` is readable by the page and `SameSite=Strict`. In production both carry `Secure`
//! and the `__Host-` prefix, which pins them to this host (no sibling domain can set them).

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::Mac;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::auth::AuthMethod;
use crate::auth::Refusal;
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    error::ApiError,
    state::AppState,
    store::{SessionKey, SessionRecord, TokenRecord, sessions::Inserted},
};

/// Random bytes in a session id (256 bits, S7).
pub const SESSION_ID_BYTES: usize = 32;

/// Length of a session id: 32 bytes in unpadded base64url.
pub const SESSION_ID_LEN: usize = 43;

/// Most live sessions one principal (key fingerprint and workspace) holds; a login past it
/// ends the principal's oldest session (S6). Below the live-token cap, since each session holds
/// a token.
pub const MAX_SESSIONS_PER_USER: usize = 5;

/// How long a client is told to wait when the session store is full.
const STORE_FULL_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The session cookie's name in development, and with the `__Host-` prefix in production.
pub const SESSION_COOKIE: &str = "mcp.sid";
const SESSION_COOKIE_HOST: &str = "__Host-mcp.sid";
/// The CSRF cookie's name in development, and with the `__Host-` prefix in production.
pub const XSRF_COOKIE: &str = "XSRF-TOKEN";
const XSRF_COOKIE_HOST: &str = "__Host-XSRF-TOKEN";

/// The name of the session cookie in this deployment.
#[must_use]
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.config.is_production() {
        SESSION_COOKIE_HOST
    } else {
        SESSION_COOKIE
    }
}

/// The name of the CSRF cookie in this deployment.
#[must_use]
pub fn xsrf_cookie_name(state: &AppState) -> &'static str {
    if state.config.is_production() {
        XSRF_COOKIE_HOST
    } else {
        XSRF_COOKIE
    }
}

/// Every value of cookie `name` in the request's `Cookie` headers (exact, case-sensitive name).
/// More than one value means someone tossed a cookie at us (C6); callers refuse that.
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .collect()
}

/// A `Set-Cookie` value. `value: None` clears the cookie: empty value, `Max-Age=0`, and the
/// same name, path and attributes it was set with (S5).
fn set_cookie(
    state: &AppState,
    name: &str,
    value: Option<&str>,
    http_only: bool,
    same_site: &str,
) -> HeaderValue {
    let mut cookie = format!(
        "{name}={}; Path=/; SameSite={same_site}",
        value.unwrap_or("")
    );
    if http_only {
        cookie.push_str("; HttpOnly");
    }
    if state.config.is_production() {
        cookie.push_str("; Secure");
    }
    if value.is_none() {
        cookie.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&cookie).expect("cookie names and base64url values are valid headers")
}

/// `Set-Cookie` for the session id (or its removal).
fn session_cookie(state: &AppState, id: Option<&SecretString>) -> HeaderValue {
    let name = session_cookie_name(state);
    set_cookie(state, name, id.map(|id| id.expose_secret()), true, "Lax")
}

/// `Set-Cookie` for the CSRF token (or its removal).
fn xsrf_cookie(state: &AppState, token: Option<&str>) -> HeaderValue {
    set_cookie(state, xsrf_cookie_name(state), token, false, "Strict")
}

/// Both cookies cleared, for logout.
pub fn clearing_cookies(state: &AppState) -> [HeaderValue; 2] {
    [session_cookie(state, None), xsrf_cookie(state, None)]
}

/// A new session id: 32 bytes from the OS CSPRNG, unpadded base64url.
#[must_use]
pub fn new_session_id() -> SecretString {
    SecretString::from(crate::crypto::random_token::<SESSION_ID_BYTES>())
}

/// Whether a cookie value has the shape of a session id this server issues (43 characters of
/// canonical unpadded base64url); anything else is refused before the store is asked.
#[must_use]
pub fn is_well_formed_id(id: &str) -> bool {
    id.len() == SESSION_ID_LEN && URL_SAFE_NO_PAD.decode(id).is_ok()
}

/// Where session `id` is stored: HMAC-SHA256 with the session-id key, hex (S12).
#[must_use]
pub fn session_key(state: &AppState, id: &str) -> SessionKey {
    let mut mac = crate::crypto::hmac_sha256(state.keys.session_id());
    mac.update(id.as_bytes());
    SessionKey::from_hmac_hex(hex::encode(mac.finalize().into_bytes()))
}

pub use crate::state::epoch_ms as millis;

use crate::audit::rfc3339_epoch_ms as rfc3339_ms;

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The session a request is authenticated with (request extension, beside the principal).
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub key: SessionKey,
    pub record: SessionRecord,
}

fn store_unavailable(e: &crate::store::StoreError) -> Refusal {
    tracing::error!(error = %e, "session store unavailable");
    Refusal::StoreUnavailable
}

/// The store key of the request's session cookie: `Ok(None)` without one (the request is
/// anonymous); a second cookie or an id of a shape this server never issues is refused before
/// the store is asked (S1).
pub fn cookie_key(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionKey>, Refusal> {
    let values = cookie_values(headers, session_cookie_name(state));
    let id = match values.as_slice() {
        [] => return Ok(None),
        [id] => *id,
        _ => {
            return Err(Refusal::DuplicateSessionCookie);
        }
    };
    if !is_well_formed_id(id) {
        return Err(Refusal::UnknownSession);
    }
    Ok(Some(session_key(state, id)))
}

/// The session named by the request's session cookie, if any. `Ok(None)`: no session cookie
/// (the request is anonymous). An id the server never issued, one that has ended, or a tossed
/// second cookie is refused, and nothing is created (S1). An expired session is ended.
///
/// `found` is the store's answer for the cookie's key when the rate limiter read it ahead
/// (`http::read_ahead`); without it, the store is asked here.
pub async fn find(
    state: &AppState,
    headers: &HeaderMap,
    info: &RequestInfo,
    found: Option<(
        SessionKey,
        Result<Option<SessionRecord>, crate::store::StoreError>,
    )>,
) -> Result<Option<CurrentSession>, Refusal> {
    let Some(key) = cookie_key(state, headers)? else {
        return Ok(None);
    };
    let found = match found {
        Some((ahead_key, found)) if ahead_key == key => found,
        _ => state.sessions.get(&key).await,
    };
    let Some(record) = found.map_err(|e| store_unavailable(&e))? else {
        return Err(Refusal::UnknownSession);
    };
    let now_ms = millis(state.now());
    if record.is_expired(now_ms) {
        let reason = if now_ms >= record.absolute_expires_at_ms {
            "absolute_timeout"
        } else {
            "idle_timeout"
        };
        end(state, &key, reason, Some(info))
            .await
            .map_err(|e| store_unavailable(&e))?;
        return Err(Refusal::SessionExpired);
    }
    Ok(Some(CurrentSession { key, record }))
}

/// The session's token record, as the token store answered (`found`, at `now_secs`): live, or
/// the session is ended (`token_revoked`) and refused.
pub async fn live_token(
    state: &AppState,
    session: &CurrentSession,
    found: Result<Option<Arc<TokenRecord>>, crate::store::StoreError>,
    now_secs: i64,
    info: &RequestInfo,
) -> Result<Arc<TokenRecord>, Refusal> {
    let token = found.map_err(|e| store_unavailable(&e))?;
    match token.filter(|t| t.is_live(now_secs)) {
        Some(token) => Ok(token),
        None => {
            end(state, &session.key, "token_revoked", Some(info))
                .await
                .map_err(|e| store_unavailable(&e))?;
            Err(Refusal::SessionTokenRevoked)
        }
    }
}

/// Records the request's activity on the session (sliding idle deadline, never past the
/// absolute one). Fails when the session ended meanwhile (a racing logout): the request is then
/// refused, and the session is not revived (S6).
pub async fn touch(state: &AppState, session: &mut CurrentSession) -> Result<(), Refusal> {
    let (now_ms, expires_at_ms) = slide(state, session);
    let still_there = state
        .sessions
        .touch(&session.key, now_ms, expires_at_ms)
        .await
        .map_err(|e| store_unavailable(&e))?;
    if !still_there {
        return Err(Refusal::SessionEnded);
    }
    session.record.last_seen_ms = now_ms;
    session.record.expires_at_ms = expires_at_ms;
    Ok(())
}

/// The session's activity now: `(now_ms, new expiry)`, the idle deadline slid from now and
/// never past the absolute one.
fn slide(state: &AppState, session: &CurrentSession) -> (i64, i64) {
    let now_ms = millis(state.now());
    let expires_at_ms = (now_ms.saturating_add(duration_ms(state.config.session_ttl)))
        .min(session.record.absolute_expires_at_ms);
    (now_ms, expires_at_ms)
}

/// [`touch`] without the request waiting for it: for a request accepted on a session, token
/// and count read in one round trip (`http::read_ahead`). The write leaves at once on the
/// store's connection; the request goes on. A session ended meanwhile stays ended (the store
/// never revives one, S6): the request read it live before the end, as a request that
/// completes before a racing logout. A store failure is logged: the session then expires at
/// its previous idle deadline unless a later request slides it.
pub fn touch_later(state: &AppState, session: &mut CurrentSession) {
    let (now_ms, expires_at_ms) = slide(state, session);
    session.record.last_seen_ms = now_ms;
    session.record.expires_at_ms = expires_at_ms;
    let (state, key) = (state.clone(), session.key.clone());
    tokio::spawn(async move {
        if let Err(e) = state.sessions.touch(&key, now_ms, expires_at_ms).await {
            tracing::warn!(error = %e, "cannot slide a session's idle deadline");
        }
    });
}

/// Ends the session under `key`: deletes it and revokes its token (unless the token is what
/// ended it), audited `session_ended` with `reason`. Ending a session twice is a no-op.
pub async fn end(
    state: &AppState,
    key: &SessionKey,
    reason: &'static str,
    info: Option<&RequestInfo>,
) -> Result<Option<SessionRecord>, crate::store::StoreError> {
    state.session_hints.forget(key);
    let Some(record) = state.sessions.remove(key).await? else {
        return Ok(None);
    };
    if reason != "token_revoked" {
        state
            .tokens
            .revoke(&record.token_id, millis(state.now()) / 1000)
            .await?;
    }
    let mut event = AuditEvent::new(
        AuditEventType::SessionEnded,
        if reason == "excess_sessions_exceeded" {
            Severity::Medium
        } else {
            Severity::Info
        },
        format!("session ended: {reason}"),
    )
    .user(&record.user_id, None)
    .session(key.as_str())
    .action("end_session")
    .result(AuditResult::Success)
    .resource("token", &record.token_id)
    .extra("reason", reason);
    if let Some(info) = info {
        event = event.request(info);
    }
    state.auditor.record(event);
    Ok(Some(record))
}

/// A session stored but not yet announced: its id (for the cookie), key and record.
#[derive(Debug)]
pub struct Started {
    id: SecretString,
    pub key: SessionKey,
    pub record: SessionRecord,
}

/// Stores a new session for `token_id` (whose record the caller saves next), with a fresh id.
/// Refused with 503 when the store is full (S10); nothing is stored then.
pub async fn start(
    state: &AppState,
    token_id: &str,
    user_id: &str,
    workspace_id: &str,
    absolute_expires_at_ms: i64,
    info: &RequestInfo,
) -> Result<Started, ApiError> {
    let now_ms = millis(state.now());
    let id = new_session_id();
    let key = session_key(state, id.expose_secret());
    let record = SessionRecord {
        token_id: token_id.to_owned(),
        user_id: user_id.to_owned(),
        workspace_id: workspace_id.to_owned(),
        created_at_ms: now_ms,
        last_seen_ms: now_ms,
        expires_at_ms: now_ms
            .saturating_add(duration_ms(state.config.session_ttl))
            .min(absolute_expires_at_ms),
        absolute_expires_at_ms,
    };
    let unavailable = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "session store unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "sessions are unavailable right now",
        )
    };
    match state
        .sessions
        .insert(&key, record.clone(), now_ms)
        .await
        .map_err(unavailable)?
    {
        Inserted::Stored => {}
        Inserted::Full => {
            state.auditor.record(
                AuditEvent::new(
                    AuditEventType::SessionCreated,
                    Severity::High,
                    "session refused: the session store is full",
                )
                .user(user_id, None)
                .request(info)
                .action("create_session")
                .result(AuditResult::Denied)
                .extra("reason", "store_full"),
            );
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "sessions_full",
                "no new browser sessions can be opened right now; try again later or use a bearer token",
            )
            .with_header(
                header::RETRY_AFTER,
                STORE_FULL_RETRY_AFTER.as_secs().to_string(),
            ));
        }
    }
    // The per-principal cap (S6): the oldest live sessions beyond it end.
    let live: Vec<_> = state
        .sessions
        .list_for_user(workspace_id, user_id)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|(k, r)| *k != key && !r.is_expired(now_ms))
        .collect();
    let excess = (live.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
    for (old, _) in live.iter().take(excess) {
        end(state, old, "excess_sessions_exceeded", Some(info))
            .await
            .map_err(unavailable)?;
    }
    // Its first request on this instance then takes one store round trip (`http::read_ahead`).
    state.session_hints.remember(&key, token_id, user_id);
    Ok(Started { id, key, record })
}

/// Undoes [`start`] when the rest of the login failed (the token could not be saved).
pub async fn discard(state: &AppState, started: &Started) {
    state.session_hints.forget(&started.key);
    if let Err(e) = state.sessions.remove(&started.key).await {
        tracing::error!(error = %e, "could not discard a session after a failed login");
    }
}

/// Audits a new session (`session_created`); `replaces` is the session it rotated out.
pub fn announce(
    state: &AppState,
    started: &Started,
    info: &RequestInfo,
    reason: &'static str,
    replaces: Option<&SessionKey>,
) {
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::SessionCreated,
            Severity::Info,
            format!("session created: {reason}"),
        )
        .user(&started.record.user_id, None)
        .session(started.key.as_str())
        .request(info)
        .action("create_session")
        .result(AuditResult::Success)
        .resource("token", &started.record.token_id)
        .extra("reason", reason)
        .extra(
            "replaces.session",
            replaces.map(|k| crate::mask::fingerprint(k.as_str())),
        ),
    );
}

/// The `user` object of login and session answers.
pub fn user_json(record: &TokenRecord) -> Value {
    json!({
        "id": record.user_id,
        "username": record.username,
        "email": record.email,
        "workspaceId": record.workspace_id,
        "permissions": record.permissions.names(),
    })
}

/// The answer that hands a session to the browser: `{user, csrfToken, expiresAt,
/// absoluteExpiresAt}` (no bearer token), a fresh `XSRF-TOKEN` cookie, and the session cookie
/// when the session is new.
fn session_answer(
    state: &AppState,
    session: &CurrentSession,
    token: &TokenRecord,
    new_id: Option<&SecretString>,
) -> Response {
    let csrf = super::csrf::issue_token(state, &session.key, state.now());
    let mut response = Json(json!({
        "user": user_json(token),
        "csrfToken": csrf,
        "expiresAt": rfc3339_ms(session.record.expires_at_ms),
        "absoluteExpiresAt": rfc3339_ms(session.record.absolute_expires_at_ms),
    }))
    .into_response();
    let headers = response.headers_mut();
    if let Some(id) = new_id {
        headers.append(header::SET_COOKIE, session_cookie(state, Some(id)));
    }
    headers.append(header::SET_COOKIE, xsrf_cookie(state, Some(&csrf)));
    response
}

/// The answer for a session just started (login, refresh).
pub fn started_answer(state: &AppState, started: &Started, token: &TokenRecord) -> Response {
    let session = CurrentSession {
        key: started.key.clone(),
        record: started.record.clone(),
    };
    session_answer(state, &session, token, Some(&started.id))
}

/// `GET /api/v1/auth/session`: who the session is, with a fresh CSRF token and cookie (the
/// refresh path of C5). 401 unless the request was authenticated by the session cookie.
#[utoipa::path(get, path = "/api/v1/auth/session", tag = "auth",
    security(("cookieAuth" = [])),
    responses((status = 200, description = "The browser session and a fresh CSRF token", body = crate::http::rest::auth_docs::SessionAnswer)))]
pub async fn current(
    State(state): State<AppState>,
    Extension(method): Extension<AuthMethod>,
    session: Option<Extension<CurrentSession>>,
    Extension(token): Extension<Arc<TokenRecord>>,
) -> Response {
    match (method, session) {
        (AuthMethod::Session, Some(Extension(session))) => {
            session_answer(&state, &session, &token, None)
        }
        _ => ApiError::unauthorized(
            "no browser session: this route reads the session cookie set by a login with \"session\": true",
            false,
        )
        .into_response(),
    }
}

/// Ends the session a login arrives with, if it names a live one: a login always starts a
/// new session, and the old id must die with it (S1, S2). Errors are logged, not fatal: the old
/// session's token stays bounded by its own lifetime.
pub async fn end_previous(
    state: &AppState,
    headers: &HeaderMap,
    info: &RequestInfo,
) -> Option<SessionKey> {
    let values = cookie_values(headers, session_cookie_name(state));
    let [id] = values.as_slice() else {
        return None;
    };
    if id.len() != SESSION_ID_LEN {
        return None;
    }
    let key = session_key(state, id);
    match end(state, &key, "replaced_by_login", Some(info)).await {
        Ok(Some(_)) => Some(key),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = %e, "could not end the previous session at login");
            None
        }
    }
}
