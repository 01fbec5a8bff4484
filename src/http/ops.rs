//! Operations routes: liveness, readiness, status and Prometheus metrics.
//!
//! `/health`, `/live` and `/ready` need no authentication and are never rate-limited, so
//! orchestrators can probe freely; they reveal nothing but "up". `/metrics` needs a token with
//! `admin:metrics`: request counts and latencies say who uses the server and how.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::{
    auth::Permission,
    auth::Principal,
    error::{ApiError, STORE_RETRY_AFTER_SECS},
    state::AppState,
};

/// `GET /health` and `GET /live`: the process answers.
pub(super) async fn live() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: the server is not stopping and the stores answer (a store that cannot be read
/// means requests would fail).
/// A 503 names the backend (`"store": "redis"`), so an operator knows what to look at; a 200
/// says no more than "ready".
pub(super) async fn ready(State(state): State<AppState>) -> Response {
    // Stopping: new connections are already refused; this answers a request that was being
    // read when the drain began (tests/all/sigterm.rs, `ready_during_the_drain_is_refused_…`).
    if state.ops.drain.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": "shutting down" })),
        )
            .into_response();
    }
    match state.check_stores().await {
        Ok(()) => Json(json!({ "status": "ready" })).into_response(),
        Err(problem) => {
            tracing::warn!(error = %problem, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, STORE_RETRY_AFTER_SECS.to_string())],
                Json(json!({
                    "status": "unavailable",
                    "reason": "state store unavailable",
                    "store": state.store_backend,
                })),
            )
                .into_response()
        }
    }
}

/// `GET /api/v1/status`: version, uptime, and whether the caller's token is valid.
pub(super) async fn status(State(state): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let authenticated = match super::auth::bearer_token(&headers) {
        Ok(Some(token)) => super::auth::principal_from_token(&state, token)
            .await
            .is_ok(),
        _ => false,
    };
    Json(json!({
        "name": state.config.server_name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptimeSeconds": state.started_at.elapsed().as_secs(),
        "authenticated": authenticated,
        "mcpEndpoint": state.mcp_url(),
    }))
}

/// Sets `store_entries{structure}` and `store_capacity{structure}` for each in-memory structure
/// that grows with use (docs/RELIABILITY.md, "Memory bounds"), read at the scrape: what an
/// operator watches to tell a structure filling to its cap from a leak, and what the soak
/// (`bench/soak.rs`) reads to know when every cap is reached. A store kept in Redis has no
/// entries here (it bounds its records by expiry).
fn set_store_gauges(state: &AppState) {
    use crate::ops::{cache::CACHE_CAPACITY, task_slots::MAX_PRINCIPALS};
    let limits = &state.config.memory_limits;
    let structures: [(&'static str, Option<usize>, usize); 9] = [
        (
            "conversations",
            state.ops.conversations.held(),
            limits.conversations.total,
        ),
        ("tokens", state.tokens.held(), limits.tokens),
        ("sessions", state.sessions.held(), limits.sessions),
        (
            "rate_limit_counters",
            state.counters.held(),
            crate::store::counters::MAX_TRACKED_COUNTERS,
        ),
        (
            "recent_audit",
            state.recent_audit.held(),
            limits.recent_audit,
        ),
        ("agent_cache", Some(state.ops.agents.len()), CACHE_CAPACITY),
        (
            "knowledge_cache",
            Some(state.ops.knowledge.len()),
            CACHE_CAPACITY,
        ),
        (
            "task_slots",
            Some(state.ops.task_slots.principals()),
            MAX_PRINCIPALS,
        ),
        (
            "session_hints",
            state.session_hints.held(),
            state.session_hints.capacity(),
        ),
    ];
    for (structure, held, capacity) in structures {
        if let Some(held) = held {
            metrics::gauge!("store_entries", "structure" => structure).set(held as f64);
            metrics::gauge!("store_capacity", "structure" => structure).set(capacity as f64);
        }
    }
}

/// `GET /metrics`: Prometheus text format, for callers with `admin:metrics`.
pub(super) async fn metrics(
    State(state): State<AppState>,
    Extension(principal): Extension<Arc<Principal>>,
) -> Response {
    if !principal.can(Permission::AdminMetrics) {
        return ApiError::insufficient_scope(Permission::AdminMetrics.as_str()).into_response();
    }
    set_store_gauges(&state);
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => ApiError::not_found("metrics are disabled (ENABLE_METRICS=false)").into_response(),
    }
}
