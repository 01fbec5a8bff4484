//! The HTTP server: routes in one place ([`build_router`]), layers in one place
//! ([`apply_middleware`]), and [`serve`], which takes a listener and a shutdown future.
//!
//! Connections are accepted by [`listener`] (timeouts, connection cap). Request path: security
//! headers → request id → trace (the request's span, `trace`) → CORS → catch-panic → deadlines (request and body,
//! `deadline`) → body limit → client IP → rate limit → `Host` allow-list ([`host`], every route
//! but the probes) → (protected routes only) authentication (bearer only on `/mcp`;
//! bearer or session cookie with CSRF checks elsewhere) → `/mcp` (rmcp's Streamable HTTP
//! service, stateless, both protocol eras; the list methods answered from rmcp's own earlier
//! answer when nothing it depends on differs, [`mcp_fast`]) or the REST handlers. Public routes (health,
//! status, login, the web console's files) sit outside the authentication layer; everything
//! else is inside it. On `/mcp`, the JSON-RPC check (`jsonrpc`) opens the MCP method's span.

pub mod auth;
pub mod client_ip;
mod console;
mod cors;
pub mod csrf;
mod deadline;
pub mod headers;
pub mod host;
pub(crate) mod jsonrpc;
pub mod listener;
mod login;
mod mcp_errors;
pub mod mcp_fast;
pub mod oauth;
mod ops;
pub mod rate_limit;
pub mod read_ahead;
pub mod rest;
pub mod session;
mod trace;
mod wire_log;

use std::{future::Future, sync::Arc};

use axum::{
    Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Request, State},
    http::{StatusCode, header},
    middleware::from_fn_with_state,
    response::IntoResponse,
    routing::get,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, util::MapResponseLayer};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    trace::TraceLayer,
};

use crate::{audit::RequestInfo, error::ApiError, mask, mcp::DustMcp, state::AppState};

/// Largest `/mcp` request body (a tool call with a document to upsert fits; 413 beyond).
pub const MAX_MCP_BODY: usize = 8 * 1024 * 1024;

/// Largest REST request body (413 beyond).
pub const MAX_REST_BODY: usize = 1024 * 1024;

/// Largest login body: a key, a workspace id, a name, an email and a few permissions.
pub const MAX_LOGIN_BODY: usize = 16 * 1024;

/// Routes: public ones, then the protected ones behind [`auth::require_principal`] (`/mcp`
/// behind [`auth::require_bearer`]).
pub fn build_router(state: AppState, shutdown: CancellationToken) -> Router {
    // One service, its layers outermost first: mounted with `route_service`, the layers wrap
    // rmcp's service once, where `Router::layer` would box them per route (finding 11).
    let mcp = ServiceBuilder::new()
        .layer(from_fn_with_state(state.clone(), auth::require_bearer))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::limit_principal,
        ))
        .layer(from_fn_with_state(state.clone(), mcp_message))
        .service(mcp_service(&state, shutdown));
    let mcp = Router::new().route_service("/mcp", mcp);
    let protected = Router::new()
        .route("/metrics", get(ops::metrics))
        .merge(Router::from(rest::protected_routes()))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::limit_principal,
        ))
        .layer(from_fn_with_state(state.clone(), auth::require_principal))
        .merge(mcp);
    let public = Router::new()
        .route("/health", get(ops::live))
        .route("/live", get(ops::live))
        .route("/ready", get(ops::ready))
        .route("/api/v1/status", get(ops::status))
        .merge(Router::from(rest::public_routes()))
        .merge(oauth::router())
        .merge(console::router());
    Router::new()
        .merge(public)
        .merge(protected)
        .layer(from_fn_with_state(state.clone(), record_metrics))
        .fallback(not_found)
        .with_state(state)
}

/// `/mcp`'s own steps around rmcp, outermost first: the JSON-RPC shape of a POST body
/// ([`jsonrpc::check`]), the step-up challenge of a refusal for a missing permission
/// ([`oauth::scope_challenge`]), and rmcp's plain-text refusals put into the error envelope
/// ([`mcp_errors::envelope`]). One layer rather than three: each `from_fn` layer boxes its
/// future and the service below it on every request (docs/PERFORMANCE.md, "Instructions per
/// request").
async fn mcp_message(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument as _;
    let (mut request, span) = match jsonrpc::check(request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal,
    };
    let slot = oauth::expect_scope(&mut request);
    let response = match &span {
        Some(span) => next.run(request).instrument(span.clone()).await,
        None => next.run(request).await,
    };
    let response = mcp_errors::envelope(response).await;
    let response = oauth::scope_challenge(&state, &slot, response);
    if let Some(span) = &span {
        jsonrpc::record_outcome(span, &response);
    }
    response
}

/// Counts requests and their latency per route template, and names the request's span after it
/// (`trace::record_route`) (never per raw path: bounded labels).
/// The method label is one of the standard methods or `other`: a client inventing methods must
/// not grow the series without bound. The handles are kept per route, method and status
/// ([`crate::observe::HttpMetrics`], finding 16).
async fn record_metrics(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    // A clone of the matched path is a reference count (axum keeps it in an `Arc`).
    let matched = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    if let Some(path) = &matched {
        trace::record_route(request.method(), path.as_str());
    }
    let method = method_label(request.method());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    state.http_metrics.record(
        matched.as_ref().map_or("unmatched", |p| p.as_str()),
        method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// The method's name for a metrics label: the standard ones, else `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |&(_, name)| name)
}

/// rmcp's service behind an `Arc`, so that cloning it is one reference count, with the list
/// answers it has already given ([`mcp_fast`]) in front of it.
///
/// axum's `from_fn` middleware clones the service below it on every request, and so does the
/// route, so the `/mcp` service is cloned once per layer above it per request (about fifteen
/// times when the layers were `Router::layer` calls; six since finding 11). A
/// `StreamableHttpService` clone copies its config: the host and origin allow-lists (a `String`
/// each) and a cancellation token, whose clone and drop take a lock. The profile of
/// `tools/list` showed those clones and drops (docs/PERFORMANCE.md, finding 6).
#[derive(Clone)]
struct SharedMcpService(Arc<McpEndpoint>);

struct McpEndpoint {
    rmcp: StreamableHttpService<DustMcp, NeverSessionManager>,
    /// The list methods' answers, kept per caller's permissions and request (finding 15).
    lists: Arc<mcp_fast::ListAnswers>,
    /// `DUST_AGENT_TOOLS` is set: `tools/list` follows each caller's agents and is not kept.
    agent_tools: bool,
}

impl tower::Service<Request> for SharedMcpService {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let endpoint = self.0.clone();
        Box::pin(async move {
            let rmcp = &endpoint.rmcp;
            Ok(endpoint
                .lists
                .answer(request, endpoint.agent_tools, |request| {
                    rmcp.handle(request)
                })
                .await)
        })
    }
}

/// The MCP endpoint: rmcp's service, stateless for every protocol era (no `Mcp-Session-Id`,
/// GET and DELETE answer 405), with the Origin check against DNS rebinding. The `Host` check is
/// [`host::check_host`]'s, for every route; rmcp's own, on the same list and the same matching,
/// stays as a second line and never fires first.
fn mcp_service(state: &AppState, shutdown: CancellationToken) -> SharedMcpService {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(shutdown)
        .with_max_request_body_bytes(MAX_MCP_BODY)
        .with_allowed_hosts(state.config.allowed_hosts.clone());
    // An Origin header that is present and not listed gets 403 (2025-11-25 rule). Browsers on
    // other origins are refused even when no origin is configured; pages on the server's own
    // hosts are not foreign (see `own_origins`).
    let mut origins = state.config.cors_allowed_origins.clone();
    origins.extend(own_origins(&state.config.allowed_hosts));
    config = config
        .with_allowed_origins(origins)
        .enforce_origin_validation();
    let ctx = state.ops.clone();
    let rmcp = StreamableHttpService::new(
        move || Ok(DustMcp::new(ctx.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    SharedMcpService(Arc::new(McpEndpoint {
        rmcp,
        lists: state.mcp_lists.clone(),
        agent_tools: state.ops.settings.agent_tools.is_enabled(),
    }))
}

/// The origins of the hosts the server answers as (`ALLOWED_HOSTS`), for rmcp's Origin check.
///
/// The check defends against DNS rebinding: a page on `evil.example` whose name now resolves
/// to us sends `Origin: http://evil.example` (and `Host: evil.example`, refused on its own). A
/// page on one of our own host names is not that attacker: the Host allow-list already trusts
/// the name, and CORS still decides what a cross-origin page may read. Refusing it would turn
/// away same-origin requests (the MCP conformance suite's `dns-rebinding-protection` scenario
/// sends `Host: 127.0.0.1:<port>` with `Origin: http://127.0.0.1:<port>` and expects a 2xx).
/// An entry with a port allows that port only; a bare host name allows any port.
fn own_origins(allowed_hosts: &[String]) -> Vec<String> {
    let mut origins = Vec::new();
    for host in allowed_hosts {
        let host = host.trim();
        if host.is_empty() {
            continue;
        }
        let with_port = if host.starts_with('[') {
            !host.ends_with(']') // `[::1]:8080`
        } else {
            host.matches(':').count() == 1 // `name:8080`; `::1` is a bare IPv6 address
        };
        let authority = if with_port {
            host.to_owned()
        } else if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:*")
        } else {
            format!("{host}:*")
        };
        for scheme in ["http", "https"] {
            origins.push(format!("{scheme}://{authority}"));
        }
    }
    origins
}

/// Layers, outermost first, as one `tower` stack around the router. The security headers come
/// first (outermost) so that every answer gets them, including the panic handler's 500, the
/// 404 fallback, body-limit 413s, rate-limit 429s, rmcp's own refusals and CORS preflights;
/// their request-id screen must also run before `SetRequestIdLayer` keeps a client's id (H14).
/// CORS sits outside the panic handler (a 500 stays readable by an allowed browser origin) and
/// inside the request-id and trace layers (a refused preflight is traced and audited with its
/// id).
///
/// The client IP is decided before the rate limit (both key on it, and so do the lockout and the
/// audit); the rate limit runs before authentication (in `build_router`), so floods of bad
/// tokens are cut for the price of one counter increment. It also reads ahead what
/// authentication will need from the stores, beside its own count ([`read_ahead`]: one store
/// round trip for a bearer request). Preflights are answered by CORS,
/// outside the rate limit, so they are not counted.
///
/// The `Host` allow-list ([`host`]) runs inside the rate limit and before any route: every
/// route gets the same refusal, in the envelope and with the security headers and request id of
/// the outer layers; the client IP is known for its audit record, and a flood of foreign names
/// is rate-limited before it floods the audit log.
///
/// One `ServiceBuilder` stack, not `Router::layer` calls: those box every route at every layer,
/// and each boxed layer clones everything below it on every request. The stack is built once
/// and wraps the router as its fallback (docs/PERFORMANCE.md, finding 11).
pub fn apply_middleware(state: &AppState, router: Router) -> Router {
    let stack = ServiceBuilder::new()
        .layer(headers::layer(&state.config))
        .layer(SetRequestIdLayer::x_request_id(headers::RandomRequestId))
        // Error envelopes get the id the response leaves with (set just inside).
        .layer(MapResponseLayer::new(crate::error::stamp_request_id))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(trace::HttpSpan)
                .on_response(trace::HttpSpan),
        )
        .layer(cors::layer(state))
        .layer(MapResponseLayer::new(IntoResponse::into_response))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("a request handler panicked");
            IntoResponse::into_response(ApiError::internal())
        }))
        .layer(from_fn_with_state(state.clone(), deadline::enforce))
        .layer(DefaultBodyLimit::max(MAX_REST_BODY))
        .layer(from_fn_with_state(
            state.clone(),
            client_ip::attach_client_ip,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            rate_limit::limit_requests,
        ))
        .layer(from_fn_with_state(
            (
                state.clone(),
                host::AllowedHosts::new(&state.config.allowed_hosts),
            ),
            host::check_host,
        ))
        .layer(from_fn_with_state(state.clone(), wire_log::log_wire))
        .service(router);
    Router::new().fallback_service(stack)
}

async fn not_found() -> axum::response::Response {
    ApiError::not_found("no such route").into_response()
}

/// Serves `state` on `listener` until `shutdown` resolves, then stops accepting and lets
/// in-flight requests (tool calls included) finish, up to `SHUTDOWN_GRACE_PERIOD`, before
/// returning (see `crate::shutdown`). rmcp's own cancellation
/// token fires only after that, so a graceful stop never cuts a running call short. The
/// connection limits (timeouts, caps) are [`listener`]'s.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cancel = CancellationToken::new();
    let app = apply_middleware(&state, build_router(state.clone(), cancel.child_token()));
    let limits = state.config.listener.clone();
    let grace = state.config.shutdown_grace;
    let drain = state.ops.drain.clone();
    let result = listener::serve(listener, app, limits, shutdown, grace, drain).await;
    cancel.cancel();
    state.auditor.flush().await;
    result
}

/// What the audit log records about a request ([`RequestInfo::from_http`]).
pub fn request_info(request: &Request) -> RequestInfo {
    RequestInfo::from_http(
        request.method(),
        request.uri(),
        request.headers(),
        request.extensions(),
    )
}

/// Reads a JSON body of at most `limit` bytes into `T`: 415 without a JSON content type, 413
/// past the limit, 400 with serde's precise message otherwise.
pub async fn read_json<T: DeserializeOwned>(request: Request, limit: usize) -> Result<T, ApiError> {
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(request.into_body(), limit)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body must be at most {limit} bytes"),
            )
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        // serde_json quotes a mistyped string value in its message: mask it in case the value
        // was a key sent in the wrong field.
        ApiError::bad_request(format!(
            "invalid JSON body: {}",
            mask::mask_text(&e.to_string())
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::own_origins;

    #[test]
    fn own_origins_cover_every_port_of_a_bare_host_and_one_port_otherwise() {
        let hosts = ["localhost", "mcp.example.com:8443", "::1", "[::1]:9000"].map(String::from);
        assert_eq!(
            own_origins(&hosts),
            [
                "http://localhost:*",
                "https://localhost:*",
                "http://mcp.example.com:8443",
                "https://mcp.example.com:8443",
                "http://[::1]:*",
                "https://[::1]:*",
                "http://[::1]:9000",
                "https://[::1]:9000",
            ]
        );
    }
}
