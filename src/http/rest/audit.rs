//! `GET /audit`: the recent audit records of the caller's workspace, for `admin:audit`.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Call, Caller, Refusal, bad_query};
use crate::{
    audit::{AuditEventType, AuditQuery, recent::MAX_QUERY_LIMIT, recent::normalize_timestamp},
    error::ApiError,
    ops::{OpError, catalog},
    state::AppState,
};

/// Records returned when `limit` is absent.
const DEFAULT_LIMIT: usize = 50;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuditParams {
    /// At most this many records (1 to 500, default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
    /// Only records of this type (`authz_fail`, `resource_access`, ...).
    pub event_type: Option<String>,
    /// Only records at or after this time (RFC 3339, UTC, e.g. `2026-01-01T00:00:00Z`).
    pub since: Option<String>,
}

/// Audit records, newest first, each as it is logged.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct AuditEvents {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
}

/// The recent audit records of the caller's workspace, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditParams),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Audit records", body = AuditEvents)))]
pub(super) async fn query(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditEvents>, Refusal> {
    let Query(params) = params.map_err(|e| bad_query(&caller, &e))?;
    let call = Call::begin(&state, caller, &catalog::QUERY_AUDIT, None)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
        return Err(call.invalid(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_QUERY_LIMIT}"
        ))));
    }
    if let Some(t) = &params.event_type
        && serde_json::from_value::<AuditEventType>(serde_json::Value::from(t.as_str())).is_err()
    {
        return Err(call.invalid(ApiError::bad_request(
            "eventType must be an audit event type in snake case (authz_fail, resource_access, ...)",
        )));
    }
    let since = match &params.since {
        Some(text) => match normalize_timestamp(text) {
            Some(since) => Some(since),
            None => {
                return Err(call.invalid(ApiError::bad_request(
                    "since must be an RFC 3339 UTC timestamp, e.g. 2026-01-01T00:00:00Z",
                )));
            }
        },
        None => None,
    };
    let query = AuditQuery {
        workspace_id: call.principal().workspace_id.clone(),
        event_type: params.event_type,
        since,
        limit,
    };
    let result = state
        .recent_audit
        .query(&query)
        .await
        .map_err(|e| OpError::Internal(e.to_string()));
    call.finish(result, None)
        .map(|events| Json(AuditEvents { events }))
}
