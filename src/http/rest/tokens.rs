//! The caller's own tokens and OAuth grants: list them, revoke one. Another user's token or
//! grant id is answered exactly like an unknown one (404), so ids cannot be probed; the attempt
//! is recorded. Revoking a grant (or any of its tokens) ends what the connector can do: its
//! refresh tokens stop working and every token it issued is revoked.

use std::time::{Duration, UNIX_EPOCH};

use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
    http::StatusCode,
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Caller, Refusal, bad_path};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity, rfc3339_millis},
    auth::tokens,
    error::ApiError,
    ops::args::check_id,
    state::AppState,
    store::TokenOrigin,
};

/// One of the caller's tokens (never the token itself).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TokenView {
    pub token_id: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    pub permissions: Vec<&'static str>,
    /// Whether this request was authenticated with it.
    pub current: bool,
    /// How it was issued: `login`, `session` or `oauth` (an access token of a connector's
    /// grant; revoking it ends the grant).
    pub origin: &'static str,
    /// The OAuth client the grant is for (`oauth` tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The grant (`oauth` tokens only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct TokenList {
    pub tokens: Vec<TokenView>,
}

fn time(epoch_seconds: i64) -> String {
    rfc3339_millis(UNIX_EPOCH + Duration::from_secs(u64::try_from(epoch_seconds).unwrap_or(0)))
}

fn store_failure(caller: &Caller, error: &crate::store::StoreError) -> Refusal {
    tracing::error!(error = %error, "token store unavailable");
    caller.refuse(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the token store is unavailable; try again later",
    ))
}

/// The caller's unexpired tokens (revoked ones included), newest first.
#[utoipa::path(get, path = "/api/v1/auth/tokens", tag = "tokens",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Your tokens", body = TokenList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TokenList>, Refusal> {
    let principal = &caller.principal;
    let records = state
        .tokens
        .list_for_user(
            &principal.workspace_id,
            &principal.user_id,
            crate::state::epoch_secs(state.now()),
        )
        .await
        .map_err(|e| store_failure(&caller, &e))?;
    let tokens = records
        .iter()
        .map(|r| TokenView {
            token_id: r.token_id.clone(),
            created_at: time(r.issued_at),
            expires_at: time(r.expires_at),
            revoked_at: r.revoked_at.map(time),
            permissions: r.permissions.names(),
            current: principal.token_id.as_deref() == Some(r.token_id.as_str()),
            origin: r.origin.as_str(),
            client_id: match &r.origin {
                TokenOrigin::OAuth { client_id, .. } => Some(client_id.clone()),
                _ => None,
            },
            grant_id: match &r.origin {
                TokenOrigin::OAuth { grant_id, .. } => Some(grant_id.clone()),
                _ => None,
            },
        })
        .collect();
    Ok(Json(TokenList { tokens }))
}

/// Revokes one of the caller's tokens (revoking the current one ends this sign-in).
#[utoipa::path(delete, path = "/api/v1/auth/tokens/{tokenId}", tag = "tokens",
    params(("tokenId" = String, Path, description = "The token id (`tok_...`)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 204, description = "Revoked")))]
pub(super) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Refusal> {
    let Path(token_id) = path.map_err(|e| bad_path(&caller, &e))?;
    check_id("tokenId", &token_id).map_err(|e| caller.refuse(super::api_error(e.into())))?;
    let principal = &caller.principal;
    let now = crate::state::epoch_secs(state.now());
    let record = state
        .tokens
        .get(&token_id, now)
        .await
        .map_err(|e| store_failure(&caller, &e))?;
    let not_found = || caller.refuse(ApiError::not_found(format!("token {token_id} not found")));
    let Some(record) = record else {
        return Err(not_found());
    };
    if record.user_id != principal.user_id || record.workspace_id != principal.workspace_id {
        state.auditor.record(
            AuditEvent::new(
                AuditEventType::AuthzFail,
                Severity::Medium,
                "another user's token refused (answered not found)",
            )
            .principal(principal)
            .request(&caller.info)
            .resource("token", &token_id)
            .action("revoke_token")
            .result(AuditResult::Denied),
        );
        return Err(not_found());
    }
    // A token of an OAuth grant ends the grant: the connector's refresh token stops working
    // and every token it issued is revoked (M3).
    let remember = state.config.oauth_refresh_token_ttl.as_secs() as i64;
    let revoked = tokens::revoke(
        state.tokens.as_ref(),
        state.oauth.as_ref(),
        &record,
        now,
        remember,
    )
    .await
    .map_err(|e| store_failure(&caller, &e))?;
    if !revoked.token && revoked.grant.is_none() {
        return Err(not_found());
    }
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::AuthnTokenRevoked,
            Severity::Info,
            "token revoked by its owner",
        )
        .principal(principal)
        .request(&caller.info)
        .resource("token", &token_id)
        .action("revoke_token")
        .result(AuditResult::Success)
        .extra("oauth_grant", revoked.grant)
        .extra("grant_tokens_revoked", revoked.grant_tokens),
    );
    Ok(StatusCode::NO_CONTENT)
}

/// One of the caller's OAuth grants (claude.ai, ChatGPT, ... connectors).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct GrantView {
    pub grant_id: String,
    pub client_id: String,
    /// The name the client registered, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The permissions granted.
    pub permissions: Vec<String>,
    /// RFC 3339, UTC: when you consented.
    pub created_at: String,
    /// When the client last renewed its token.
    pub last_used_at: String,
    /// When the grant ends unless the client renews it again (never past
    /// `OAUTH_GRANT_MAX_LIFETIME` after the consent).
    pub expires_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct GrantList {
    pub grants: Vec<GrantView>,
}

fn time_ms(epoch_ms: i64) -> String {
    time(epoch_ms.div_euclid(1000))
}

/// The caller's OAuth grants neither expired nor revoked, most recently used first.
#[utoipa::path(get, path = "/api/v1/auth/grants", tag = "tokens",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Your OAuth grants", body = GrantList)))]
pub(super) async fn grants(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<GrantList>, Refusal> {
    let principal = &caller.principal;
    let now_ms = crate::state::epoch_ms(state.now());
    let grants = state
        .oauth
        .list_grants(&principal.workspace_id, &principal.user_id, now_ms)
        .await
        .map_err(|e| store_failure(&caller, &e))?
        .into_iter()
        .map(|g| GrantView {
            created_at: time_ms(g.created_at_ms),
            last_used_at: time_ms(g.last_used_ms),
            expires_at: time_ms(g.expires_at_ms),
            grant_id: g.grant_id,
            client_id: g.client_id,
            client_name: g.client_name,
            permissions: g.permissions,
        })
        .collect();
    Ok(Json(GrantList { grants }))
}

/// Ends one of the caller's OAuth grants: its refresh tokens stop working and every token it
/// issued is revoked.
#[utoipa::path(delete, path = "/api/v1/auth/grants/{grantId}", tag = "tokens",
    params(("grantId" = String, Path, description = "The grant id (`fam_...`)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 204, description = "Revoked")))]
pub(super) async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, Refusal> {
    let Path(grant_id) = path.map_err(|e| bad_path(&caller, &e))?;
    check_id("grantId", &grant_id).map_err(|e| caller.refuse(super::api_error(e.into())))?;
    let principal = &caller.principal;
    let now = state.now();
    let mine = state
        .oauth
        .list_grants(
            &principal.workspace_id,
            &principal.user_id,
            crate::state::epoch_ms(now),
        )
        .await
        .map_err(|e| store_failure(&caller, &e))?
        .iter()
        .any(|g| g.grant_id == grant_id);
    if !mine {
        state.auditor.record(
            AuditEvent::new(
                AuditEventType::AuthzFail,
                Severity::Medium,
                "unknown or another user's grant refused (answered not found)",
            )
            .principal(principal)
            .request(&caller.info)
            .resource("oauth_grant", &grant_id)
            .action("revoke_grant")
            .result(AuditResult::Denied),
        );
        return Err(caller.refuse(ApiError::not_found(format!("grant {grant_id} not found"))));
    }
    let remember = state.config.oauth_refresh_token_ttl.as_secs() as i64;
    let revoked = tokens::revoke_grant(
        state.tokens.as_ref(),
        state.oauth.as_ref(),
        &grant_id,
        crate::state::epoch_secs(now),
        remember,
    )
    .await
    .map_err(|e| store_failure(&caller, &e))?;
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::AuthnTokenRevoked,
            Severity::Info,
            "oauth grant revoked by its owner",
        )
        .principal(principal)
        .request(&caller.info)
        .resource("oauth_grant", &grant_id)
        .action("revoke_grant")
        .result(AuditResult::Success)
        .extra("revoked_tokens", revoked.len()),
    );
    Ok(StatusCode::NO_CONTENT)
}
