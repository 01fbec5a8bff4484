//! CSRF defences (catalogue §4.4, decision 6.2). They matter only where the browser attaches a
//! credential by itself, i.e. the session cookie: bearer-authenticated requests need none (C7).
//!
//! 1. **Fetch Metadata and Origin** ([`check_origin`]): a request the browser marks
//!    `Sec-Fetch-Site: cross-site`, or whose `Origin` is neither this server (scheme included:
//!    the public URL's) nor a configured origin, is refused, even with a valid token (C10). Non-browser clients send neither
//!    header and fall through to the token. The login endpoint uses the same check (login
//!    CSRF, C8) and takes JSON only.
//! 2. **Signed, session-bound double submit** ([`check_request`], [`verify_token`]) on POST, PUT, PATCH and DELETE:
//!    the `XSRF-TOKEN` cookie and the `X-XSRF-TOKEN` header must both be present, once each
//!    (a tossed second cookie is refused, C6), equal (constant-time), and the token must be an
//!    HMAC, under the CSRF key, over this session's store key, its issue time and a nonce, no
//!    older than [`CSRF_TOKEN_TTL`]. Binding to the session is what stops a token from another
//!    session (C4), which a naive double submit would accept.
//!
//! A refusal is 403 `csrf_failed`, audited `csrf_fail` with the reason, and happens before the
//! session is touched or a handler runs (no state change).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, StatusCode, header};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    error::ApiError,
    state::AppState,
    store::SessionKey,
};

/// How long a CSRF token is accepted after it was issued (the guide's one hour).
pub const CSRF_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Clock skew tolerated for a token issued "in the future" (several instances).
const FUTURE_SKEW: Duration = Duration::from_secs(60);

/// The request header that carries the token.
pub const CSRF_HEADER: &str = "x-xsrf-token";

/// Longest token read, in bytes; real ones are about 80.
const MAX_TOKEN_BYTES: usize = 256;

/// Domain separation inside the HMAC.
const LABEL: &[u8] = b"mcp-dust-server/csrf/v1";

const NONCE_BYTES: usize = 16;

fn mac(key: &[u8], session: &SessionKey, issued: u64, nonce: &[u8]) -> Hmac<Sha256> {
    let mut mac = crate::crypto::hmac_sha256(key);
    mac.update(LABEL);
    mac.update(&[0]);
    mac.update(session.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(&issued.to_be_bytes());
    mac.update(nonce);
    mac
}

/// A new token for `session`: `<issued seconds>.<nonce>.<hmac>`, base64url parts.
#[must_use]
pub fn issue_token(state: &AppState, session: &SessionKey, now: SystemTime) -> String {
    let issued = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let nonce = crate::crypto::random_bytes::<NONCE_BYTES>();
    let tag = mac(state.keys.csrf_signing(), session, issued, nonce.as_ref())
        .finalize()
        .into_bytes();
    format!(
        "{issued}.{}.{}",
        URL_SAFE_NO_PAD.encode(nonce.as_ref()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

/// Checks `token` against `session` at `now`; the error is the audit reason.
pub fn verify_token(
    state: &AppState,
    session: &SessionKey,
    token: &str,
    now: SystemTime,
) -> Result<(), &'static str> {
    verify_token_with_key(state.keys.csrf_signing(), session, token, now)
}

/// [`verify_token`] with the CSRF key given directly (the fuzz target `csrf_token` has no
/// `AppState`).
#[doc(hidden)]
pub fn verify_token_with_key(
    key: &[u8],
    session: &SessionKey,
    token: &str,
    now: SystemTime,
) -> Result<(), &'static str> {
    let mut parts = token.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(tag)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("malformed_token");
    };
    let issued: u64 = issued.parse().map_err(|_| "malformed_token")?;
    let nonce = URL_SAFE_NO_PAD
        .decode(nonce)
        .map_err(|_| "malformed_token")?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| "malformed_token")?;
    // Signature first, in constant time (verify_slice), then the age: a forged token learns
    // nothing from the order.
    mac(key, session, issued, &nonce)
        .verify_slice(&tag)
        .map_err(|_| "bad_signature")?;
    let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if issued > now.saturating_add(FUTURE_SKEW.as_secs()) {
        return Err("issued_in_future");
    }
    if now.saturating_sub(issued) >= CSRF_TOKEN_TTL.as_secs() {
        return Err("expired_token");
    }
    Ok(())
}

/// Whether `method` changes state and so needs the CSRF checks.
#[must_use]
pub fn is_unsafe(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The Fetch-Metadata and `Origin` check; the error is the audit reason.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), &'static str> {
    let site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if site.eq_ignore_ascii_case("cross-site") {
        return Err("cross_site");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    // A form posted by one of our own pages (the OAuth consent page) carries `Origin: null`:
    // under our `Referrer-Policy: no-referrer` the Fetch standard serializes a navigation
    // POST's origin as `null`. `Sec-Fetch-Site` is set by the browser alone (scripts cannot),
    // and `same-origin` says the page that posted is ours. Without it, `null` is refused.
    if origin == "null" && site.eq_ignore_ascii_case("same-origin") {
        return Ok(());
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Same origin is scheme, host and port. The scheme browsers use is the public URL's (TLS
    // may end at a proxy, so the request's own scheme says nothing): a page served over plain
    // `http://` on our host name is not our `https://` origin.
    let scheme = state.public_url.split_once("://").map_or("", |(s, _)| s);
    let same_origin = origin.split_once("://").is_some_and(|(s, authority)| {
        s.eq_ignore_ascii_case(scheme) && !host.is_empty() && authority.eq_ignore_ascii_case(host)
    });
    let configured = state
        .config
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed == origin)
        || origin.eq_ignore_ascii_case(&state.public_url);
    if same_origin || configured {
        Ok(())
    } else {
        Err("foreign_origin")
    }
}

/// Refuses cross-site browser requests to the login endpoint (C8).
pub fn check_login_origin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    check_origin(state, headers).map_err(|reason| {
        ApiError::forbidden(if reason == "cross_site" {
            "cross-site login requests are refused"
        } else {
            "login requests from this origin are refused"
        })
    })
}

/// The single value of `name` among the headers, or the reason there is none.
fn one_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, &'static str> {
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err("missing_or_duplicate_header");
    };
    value.to_str().map_err(|_| "malformed_token")
}

/// The CSRF checks of a cookie-authenticated request to `session`; the error is the audit
/// reason. Safe methods pass.
pub fn check_request(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
    session: &SessionKey,
) -> Result<(), &'static str> {
    if !is_unsafe(method) {
        return Ok(());
    }
    check_origin(state, headers)?;
    let cookies = super::session::cookie_values(headers, super::session::xsrf_cookie_name(state));
    let cookie = match cookies.as_slice() {
        [] => return Err("missing_cookie"),
        [one] => *one,
        _ => return Err("duplicate_cookie"),
    };
    let header = one_header(headers, CSRF_HEADER).map_err(|r| {
        if r == "missing_or_duplicate_header" {
            if headers.get(CSRF_HEADER).is_none() {
                "missing_header"
            } else {
                "duplicate_header"
            }
        } else {
            r
        }
    })?;
    if header.len() > MAX_TOKEN_BYTES || cookie.len() > MAX_TOKEN_BYTES {
        return Err("malformed_token");
    }
    if !bool::from(header.as_bytes().ct_eq(cookie.as_bytes())) {
        return Err("mismatch");
    }
    verify_token(state, session, header, state.now())
}

/// The 403 of a failed check, audited `csrf_fail` (high severity).
pub fn refuse(
    state: &AppState,
    info: &RequestInfo,
    user_id: &str,
    session: &SessionKey,
    reason: &'static str,
) -> ApiError {
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::CsrfFail,
            Severity::High,
            "cookie-authenticated request refused by the CSRF check",
        )
        .user(user_id, None)
        .session(session.as_str())
        .request(info)
        .action("csrf_check")
        .result(AuditResult::Denied)
        .extra("reason", reason),
    );
    metrics::counter!("csrf_failures_total", "reason" => reason).increment(1);
    let message = match reason {
        "cross_site" | "foreign_origin" => {
            "cross-site requests with the session cookie are refused"
        }
        "expired_token" => {
            "the CSRF token has expired: get a fresh one from GET /api/v1/auth/session"
        }
        _ => "send the X-XSRF-TOKEN header with the token from the XSRF-TOKEN cookie",
    };
    ApiError::new(StatusCode::FORBIDDEN, "csrf_failed", message)
}
