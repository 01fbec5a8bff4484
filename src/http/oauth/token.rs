//! The token endpoint (RFC 6749 §3.2, OAuth 2.1) and revocation (RFC 7009).
//!
//! - `authorization_code`: the code is spent on first sight, whatever follows; then the
//!   client, the redirect URI, the PKCE verifier (S256, constant-time) and `resource` must
//!   match what the consent recorded. A code presented again revokes what its first exchange
//!   issued (the access token and the refresh family): whoever replays it is not to be trusted
//!   with either.
//! - `refresh_token`: rotated on every use; presenting a spent refresh token revokes its whole
//!   family (the token it was rotated into, and every access token the family was issued).
//!
//! Both issue the login's token: a token record holding the Dust key sealed for its id (moved
//! from the grant's seal), under the live-token cap, and an HS256 JWT whose audience is the
//! canonical `/mcp` URI. Answers are `no-store`; refusals are RFC 6749 §5.2 JSON, audited.

use std::collections::HashMap;

use axum::{
    Json,
    body::Bytes,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{events, no_store, now_ms, oauth_error, random_secret, store_down};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    auth::{
        issuer::{self, IssueError},
        tokens,
    },
    state::AppState,
    store::{
        TokenOrigin,
        oauth::{Grant, GrantSummary, Issued, Redeemed, RefreshRecord, Rotated, secret_hash},
    },
};

/// Largest token or revocation request.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// A refusal: status, RFC 6749 error code, description, audit reason.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    description: &'static str,
    reason: &'static str,
}

const fn refusal(error: &'static str, description: &'static str, reason: &'static str) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        error,
        description,
        reason,
    }
}

fn refuse(state: &AppState, info: &RequestInfo, client_id: Option<&str>, r: &Refusal) -> Response {
    state.auditor.record(
        AuditEvent::new(
            events::OauthTokenFail,
            Severity::Medium,
            "oauth token request refused",
        )
        .request(info)
        .action("oauth_token")
        .result(AuditResult::Denied)
        .extra("reason", r.reason)
        .extra("client_id", client_id),
    );
    metrics::counter!("oauth_failures_total", "step" => "token").increment(1);
    oauth_error(r.status, r.error, r.description)
}

/// Reads a form body: its single-valued parameters (a repeated one is refused).
async fn read_form(request: Request) -> Result<HashMap<String, String>, Refusal> {
    let is_form = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(refusal(
            "invalid_request",
            "send the request as application/x-www-form-urlencoded",
            "content_type",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), MAX_FORM_BYTES)
        .await
        .map_err(|_| refusal("invalid_request", "the request is too large", "too_large"))?;
    let mut form = HashMap::new();
    for (name, value) in url::form_urlencoded::parse(&bytes) {
        if form.insert(name.into_owned(), value.into_owned()).is_some() {
            return Err(refusal(
                "invalid_request",
                "a parameter is repeated",
                "repeated_parameter",
            ));
        }
    }
    Ok(form)
}

/// `POST /oauth/token`.
pub(super) async fn token(State(state): State<AppState>, request: Request) -> Response {
    let info = super::super::request_info(&request);
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(r) => return refuse(&state, &info, None, &r),
    };
    let client_id = form.get("client_id").map(String::as_str);
    let Some(client_id) = client_id.filter(|c| !c.is_empty()) else {
        return refuse(
            &state,
            &info,
            None,
            &refusal(
                "invalid_request",
                "client_id is required (public clients)",
                "missing_client_id",
            ),
        );
    };
    let outcome = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => exchange_code(&state, &info, &form, client_id).await,
        Some("refresh_token") => refresh(&state, &info, &form, client_id).await,
        _ => Err(Failure::Refused(refusal(
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
            "grant_type",
        ))),
    };
    match outcome {
        Ok(response) => response,
        Err(Failure::Refused(r)) => refuse(&state, &info, Some(client_id), &r),
        Err(Failure::Store(e)) => store_down(&e),
    }
}

enum Failure {
    Refused(Refusal),
    Store(crate::store::StoreError),
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Store(e)
    }
}

fn check_resource(form: &HashMap<String, String>, grant: &Grant) -> Result<(), Failure> {
    match form.get("resource") {
        Some(resource) if *resource != grant.resource => Err(Failure::Refused(refusal(
            "invalid_target",
            "resource does not match the one this grant was made for",
            "resource_mismatch",
        ))),
        _ => Ok(()),
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn exchange_code(
    state: &AppState,
    info: &RequestInfo,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Response, Failure> {
    let Some(code) = form.get("code").filter(|c| !c.is_empty()) else {
        return Err(Failure::Refused(refusal(
            "invalid_request",
            "code is required",
            "missing_code",
        )));
    };
    let now = now_ms(state);
    let token_id = tokens::new_token_id();
    let issued = Issued {
        token_id: token_id.clone(),
    };
    let record = match state
        .oauth
        .redeem_code(&secret_hash(code), &issued, now)
        .await?
    {
        Redeemed::Fresh(record) => record,
        Redeemed::Unknown => {
            return Err(Failure::Refused(refusal(
                "invalid_grant",
                "unknown or expired authorization code",
                "unknown_code",
            )));
        }
        Redeemed::Replayed(record, first) => {
            let revoked = revoke_family(state, &record.grant, Some(&first.token_id)).await?;
            state.auditor.record(
                AuditEvent::new(
                    AuditEventType::AuthnTokenReuse,
                    Severity::High,
                    "authorization code replayed; what it issued is revoked",
                )
                .user(&record.grant.user_id, None)
                .workspace(&record.grant.workspace_id)
                .request(info)
                .action("oauth_token")
                .result(AuditResult::Denied)
                .resource("oauth_grant", &record.grant.family_id)
                .extra("reason", "code_replayed")
                .extra("revoked_tokens", revoked),
            );
            return Err(Failure::Refused(refusal(
                "invalid_grant",
                "this authorization code was already used; the tokens it issued are revoked",
                "code_replayed",
            )));
        }
    };
    if record.expires_at_ms <= now {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "the authorization code has expired",
            "code_expired",
        )));
    }
    if record.grant.client_id != client_id {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "the authorization code was issued to another client",
            "client_mismatch",
        )));
    }
    if form.get("redirect_uri") != Some(&record.redirect_uri) {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "redirect_uri does not match the authorization request",
            "redirect_uri_mismatch",
        )));
    }
    let Some(verifier) = form.get("code_verifier") else {
        return Err(Failure::Refused(refusal(
            "invalid_request",
            "code_verifier is required (PKCE)",
            "pkce_missing",
        )));
    };
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !valid_verifier(verifier)
        || !bool::from(computed.as_bytes().ct_eq(record.code_challenge.as_bytes()))
    {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
            "pkce_mismatch",
        )));
    }
    check_resource(form, &record.grant)?;
    issue(state, info, &record.grant, token_id, "authorization_code").await
}

async fn refresh(
    state: &AppState,
    info: &RequestInfo,
    form: &HashMap<String, String>,
    client_id: &str,
) -> Result<Response, Failure> {
    let Some(presented) = form.get("refresh_token").filter(|t| !t.is_empty()) else {
        return Err(Failure::Refused(refusal(
            "invalid_request",
            "refresh_token is required",
            "missing_refresh_token",
        )));
    };
    let now = now_ms(state);
    let old_hash = secret_hash(presented);
    let Some(old) = state.oauth.get_refresh(&old_hash, now).await? else {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "unknown or expired refresh token",
            "unknown_refresh_token",
        )));
    };
    if old.grant.client_id != client_id {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "the refresh token was issued to another client",
            "client_mismatch",
        )));
    }
    check_resource(form, &old.grant)?;
    // A grant ends OAUTH_GRANT_MAX_LIFETIME after the consent, however often it is refreshed
    // (M2); then the person consents again.
    if issuer::grant_ended(&old.grant, now) {
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "this grant has reached its maximum lifetime (OAUTH_GRANT_MAX_LIFETIME); authorize again",
            "grant_expired",
        )));
    }
    let new_token = format!("rt_{}", random_secret());
    let new = RefreshRecord {
        grant: old.grant.clone(),
        expires_at_ms: refresh_expiry(state, &old.grant, now),
    };
    match state
        .oauth
        .rotate_refresh(&old_hash, &secret_hash(&new_token), &new, now)
        .await?
    {
        Rotated::Rotated(_) => {}
        Rotated::Unknown => {
            return Err(Failure::Refused(refusal(
                "invalid_grant",
                "unknown or expired refresh token",
                "unknown_refresh_token",
            )));
        }
        Rotated::Reused(old) => {
            let revoked = revoke_family(state, &old.grant, None).await?;
            state.auditor.record(
                AuditEvent::new(
                    AuditEventType::AuthnTokenReuse,
                    Severity::High,
                    "spent refresh token presented again; its family is revoked",
                )
                .user(&old.grant.user_id, None)
                .workspace(&old.grant.workspace_id)
                .request(info)
                .action("oauth_token")
                .result(AuditResult::Denied)
                .resource("oauth_grant", &old.grant.family_id)
                .extra("reason", "refresh_reused")
                .extra("revoked_tokens", revoked),
            );
            return Err(Failure::Refused(refusal(
                "invalid_grant",
                "this refresh token was already used; every token of this grant is revoked",
                "refresh_reused",
            )));
        }
    }
    issue_with_refresh(
        state,
        info,
        &new.grant,
        tokens::new_token_id(),
        "refresh_token",
        new_token,
        new.expires_at_ms,
    )
    .await
}

/// Revokes a family and its access tokens (plus `also`, a token not yet recorded in it).
/// Returns how many access tokens were revoked.
async fn revoke_family(
    state: &AppState,
    grant: &Grant,
    also: Option<&str>,
) -> Result<usize, Failure> {
    let now_secs = now_ms(state).div_euclid(1000);
    let remember = state.config.oauth_refresh_token_ttl.as_secs() as i64;
    let revoked = tokens::revoke_grant(
        state.tokens.as_ref(),
        state.oauth.as_ref(),
        &grant.family_id,
        now_secs,
        remember,
    )
    .await?;
    let mut count = revoked.len();
    // A token the family does not list yet (issued by a code replayed before it was recorded).
    if let Some(also) = also
        && !revoked.iter().any(|id| id == also)
        && state.tokens.revoke(also, now_secs).await?
    {
        count += 1;
    }
    Ok(count)
}

/// When a refresh token issued at `now` expires ([`issuer::refresh_expiry`]).
fn refresh_expiry(state: &AppState, grant: &Grant, now: i64) -> i64 {
    issuer::refresh_expiry(grant, now, state.config.oauth_refresh_token_ttl)
}

/// A first issue: the access token and the family's first refresh token.
async fn issue(
    state: &AppState,
    info: &RequestInfo,
    grant: &Grant,
    token_id: String,
    how: &'static str,
) -> Result<Response, Failure> {
    let now = now_ms(state);
    let refresh_token = format!("rt_{}", random_secret());
    let record = RefreshRecord {
        grant: grant.clone(),
        expires_at_ms: refresh_expiry(state, grant, now),
    };
    state
        .oauth
        .put_refresh(&secret_hash(&refresh_token), &record, now)
        .await?;
    issue_with_refresh(
        state,
        info,
        grant,
        token_id,
        how,
        refresh_token,
        record.expires_at_ms,
    )
    .await
}

/// The access token for `grant` (the login's token profile), answered with `refresh_token`.
async fn issue_with_refresh(
    state: &AppState,
    info: &RequestInfo,
    grant: &Grant,
    token_id: String,
    how: &'static str,
    refresh_token: String,
    refresh_expires_ms: i64,
) -> Result<Response, Failure> {
    let Ok(mut principal) = state.resolver().grant(grant) else {
        tracing::error!("an oauth grant's sealed key does not open (secret rotated?)");
        return Err(Failure::Refused(refusal(
            "invalid_grant",
            "this grant can no longer be used; authorize again",
            "sealed_key",
        )));
    };
    principal.full_name = state.config.dust_full_name.clone();
    let grant_end = grant
        .expires_at_ms
        .map_or(i64::MAX, |end| end.div_euclid(1000));
    let origin = TokenOrigin::OAuth {
        grant_id: grant.family_id.clone(),
        client_id: grant.client_id.clone(),
    };
    // The chain of an access token is its grant (renewed at /oauth/token only).
    let issued = match state
        .issuer()
        .issue_as(token_id, &principal, state.now(), origin, grant_end)
        .await
    {
        Ok(issued) => issued,
        Err(IssueError::TooLarge) => {
            return Err(Failure::Refused(refusal(
                "invalid_grant",
                "this grant's identity is too long for a token; authorize again",
                "token_too_large",
            )));
        }
        Err(IssueError::Store(e)) => return Err(Failure::Store(e)),
    };
    let jwt = issued.token;
    let record = super::super::login::recorded(state, issued.recorded);
    state
        .oauth
        .add_family_token(
            &grant.family_id,
            &record.token_id,
            refresh_expires_ms,
            now_ms(state),
        )
        .await?;
    // The person's list of grants shows it used now, until its refresh token expires.
    let now = now_ms(state);
    let client_name = state
        .oauth
        .get_client(&grant.client_id, now)
        .await?
        .and_then(|c| c.client_name);
    let summary = GrantSummary {
        grant_id: grant.family_id.clone(),
        client_id: grant.client_id.clone(),
        client_name,
        permissions: grant.permissions.clone(),
        created_at_ms: grant.created_at_ms.unwrap_or(now),
        last_used_ms: now,
        expires_at_ms: refresh_expires_ms,
    };
    state
        .oauth
        .touch_grant(&grant.workspace_id, &grant.user_id, &summary, now)
        .await?;
    state.auditor.record(
        AuditEvent::new(
            events::OauthTokenIssued,
            Severity::Info,
            "oauth tokens issued",
        )
        .user(&record.user_id, Some(&record.username))
        .workspace(&record.workspace_id)
        .request(info)
        .action("oauth_token")
        .result(AuditResult::Success)
        .resource("token", &record.token_id)
        .extra("grant_type", how)
        .extra("client_id", grant.client_id.as_str())
        .extra("oauth_grant", grant.family_id.as_str()),
    );
    let expires_in = (record.expires_at - record.issued_at).max(0);
    let mut response = Json(json!({
        "access_token": jwt,
        "token_type": "Bearer",
        "expires_in": expires_in,
        "refresh_token": refresh_token,
        "scope": grant.permissions.join(" "),
    }))
    .into_response();
    no_store(&mut response);
    Ok(response)
}

/// `POST /oauth/revoke` (RFC 7009): a refresh token revokes its family (and the access tokens
/// it was issued); an access token (our JWT) revokes its record. Always 200, known or not, so
/// the endpoint tells nothing about a token.
pub(super) async fn revoke(State(state): State<AppState>, request: Request) -> Response {
    let info = super::super::request_info(&request);
    let form = match read_form(request).await {
        Ok(form) => form,
        Err(r) => return refuse(&state, &info, None, &r),
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return refuse(
            &state,
            &info,
            None,
            &refusal("invalid_request", "token is required", "missing_token"),
        );
    };
    let client_id = form.get("client_id").map(String::as_str);
    let now = now_ms(&state);
    let mut revoked = 0;
    match state.oauth.get_refresh(&secret_hash(token), now).await {
        Ok(Some(record)) if client_id.is_none_or(|c| c == record.grant.client_id) => {
            match revoke_family(&state, &record.grant, None).await {
                Ok(n) => revoked = n,
                Err(Failure::Store(e)) => return store_down(&e),
                Err(_) => {}
            }
        }
        Ok(_) => {
            if let Ok(claims) = state.jwt.verify(token, state.now()) {
                let now_secs = now.div_euclid(1000);
                let record = match state.tokens.get(&claims.jti, now_secs).await {
                    Ok(record) => record,
                    Err(e) => return store_down(&e),
                };
                // An access token of a grant ends the grant (M3); another client's token is
                // left alone, as another client's refresh token is.
                if let Some(record) = record.filter(|r| match &r.origin {
                    TokenOrigin::OAuth { client_id: c, .. } => client_id.is_none_or(|id| id == c),
                    _ => true,
                }) {
                    let remember = state.config.oauth_refresh_token_ttl.as_secs() as i64;
                    match tokens::revoke(
                        state.tokens.as_ref(),
                        state.oauth.as_ref(),
                        &record,
                        now_secs,
                        remember,
                    )
                    .await
                    {
                        Ok(done) => revoked = usize::from(done.token) + done.grant_tokens,
                        Err(e) => return store_down(&e),
                    }
                }
            }
        }
        Err(e) => return store_down(&e),
    }
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::AuthnTokenRevoked,
            Severity::Info,
            "oauth revocation",
        )
        .request(&info)
        .action("oauth_revoke")
        .result(AuditResult::Success)
        .extra("client_id", client_id)
        .extra("revoked_tokens", revoked),
    );
    let mut response = StatusCode::OK.into_response();
    no_store(&mut response);
    response
}
