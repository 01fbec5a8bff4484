//! CORS for browser clients on the origins of `CORS_ALLOWED_ORIGINS` (catalogue C12).
//!
//! Exact origins only: an origin is allowed when its serialization equals a listed one (no
//! suffix or pattern match, so `https://app.example.com.evil.com` is not
//! `https://app.example.com`). A wildcard or `null` entry is refused here in every
//! environment (production refuses to start with one), so credentials are never paired with
//! `*`. Listed origins get an exact echo, `Vary: Origin`, and credentials.
//!
//! A preflight (`OPTIONS`) from any other origin is answered here with a 403 and no CORS
//! header, so the browser blocks the real request, and is audited once (`authz_fail`,
//! resource `cors`); an `OPTIONS` without `Origin` is no preflight and reaches the routes. Other requests from such an origin pass through without CORS headers:
//! the browser will not let the page read the answer, and rmcp separately refuses a foreign
//! `Origin` on `/mcp` with 403 (DNS-rebinding defence).

use axum::response::IntoResponse as _;
use std::{
    collections::HashSet,
    convert::Infallible,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue, Method, header},
    response::Response,
};
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tower_http::cors::{AllowCredentials, AllowOrigin, Cors, CorsLayer};

use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    error::ApiError,
    state::AppState,
};

/// How long a browser may cache a successful preflight.
pub(super) const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Methods a browser may use cross-origin: the API is GET and POST (`/mcp` answers GET with 405).
const ALLOWED_METHODS: [Method; 3] = [Method::GET, Method::POST, Method::OPTIONS];

/// Request headers a browser client may send: bearer auth, JSON, the MCP headers, the CSRF
/// header and a request id. Nothing else (no `*`, which cannot go with credentials).
const ALLOWED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
    "last-event-id",
    "x-xsrf-token",
    "x-request-id",
];

/// Response headers a browser client may read: the negotiated MCP version, the request id to
/// quote, the bearer challenge, and the rate-limit fields (IETF and the `X-` ones).
const EXPOSED_HEADERS: &[&str] = &[
    "mcp-protocol-version",
    "x-request-id",
    "www-authenticate",
    "retry-after",
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
];

fn names(list: &[&'static str]) -> Vec<HeaderName> {
    list.iter().map(|&h| HeaderName::from_static(h)).collect()
}

/// The usable allowlist of `configured`: exact origins, lower-cased (browsers serialize scheme
/// and host in lower case). Wildcards and `null` are dropped with a warning: `*` cannot go
/// with credentials, a pattern is not an exact origin, and `null` is any sandboxed document.
pub(super) fn allowed_origins(configured: &[String]) -> Vec<HeaderValue> {
    let mut out = Vec::new();
    for origin in configured {
        let origin = origin.trim().to_ascii_lowercase();
        if origin.contains('*') || origin == "null" {
            tracing::warn!(origin = %origin, "CORS_ALLOWED_ORIGINS: ignoring a wildcard or null origin");
            continue;
        }
        match HeaderValue::from_str(&origin) {
            Ok(value) if !out.contains(&value) => out.push(value),
            Ok(_) => {}
            Err(_) => tracing::warn!(
                "CORS_ALLOWED_ORIGINS: ignoring an origin that is not a valid header value"
            ),
        }
    }
    out
}

/// tower-http's CORS for `state.config`, behind the preflight screen ([`CorsForListed`]).
pub(super) fn layer(state: &AppState) -> CorsForListed {
    let origins = allowed_origins(&state.config.cors_allowed_origins);
    let listed: Arc<HashSet<HeaderValue>> = Arc::new(origins.iter().cloned().collect());
    let for_credentials = listed.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        // Credentials only for a listed origin (the list echoes it exactly; never `*`).
        .allow_credentials(AllowCredentials::predicate(move |origin, _| {
            for_credentials.contains(origin)
        }))
        .allow_methods(ALLOWED_METHODS)
        .allow_headers(names(ALLOWED_HEADERS))
        .expose_headers(names(EXPOSED_HEADERS))
        .max_age(PREFLIGHT_MAX_AGE);
    CorsForListed {
        cors,
        state: state.clone(),
        listed,
    }
}

/// tower-http answers every `OPTIONS` itself, with the allowed methods and headers whatever
/// the origin. This layer lets only preflights from a listed origin reach it: one from another
/// origin gets a 403 without any CORS header (and one audit record), and an `OPTIONS` without
/// `Origin` (no browser preflight) goes to the routes as if there were no CORS (401 or 405).
/// All other requests go through the CORS layer.
#[derive(Debug, Clone)]
pub(super) struct CorsForListed {
    cors: CorsLayer,
    state: AppState,
    listed: Arc<HashSet<HeaderValue>>,
}

impl<S: Clone> Layer<S> for CorsForListed {
    type Service = CorsService<S>;

    fn layer(&self, inner: S) -> CorsService<S> {
        CorsService {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
            screen: Arc::new(self.clone()),
        }
    }
}

/// The service of [`CorsForListed`]. The layers above clone it once per request, so what it
/// owns beside its two inner services sits behind one `Arc` (a copy of the `CorsLayer` per
/// request showed in the profile, docs/PERFORMANCE.md finding 11).
#[derive(Clone)]
pub(super) struct CorsService<S> {
    cors: Cors<S>,
    plain: S,
    screen: Arc<CorsForListed>,
}

impl<S> std::fmt::Debug for CorsService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorsService").finish_non_exhaustive()
    }
}

impl<S> Service<Request> for CorsService<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    /// Ready when both paths are: the request, not yet seen, picks one of them.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match (self.cors.poll_ready(cx), self.plain.poll_ready(cx)) {
            (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() != Method::OPTIONS {
            return Box::pin(self.cors.call(request));
        }
        match request.headers().get(header::ORIGIN) {
            None => Box::pin(self.plain.call(request)),
            Some(origin) if self.screen.listed.contains(origin) => {
                Box::pin(self.cors.call(request))
            }
            Some(_) => {
                let refused = self.screen.refuse_preflight(&request);
                Box::pin(std::future::ready(Ok(refused)))
            }
        }
    }
}

impl CorsForListed {
    /// A preflight from an origin that is not listed: one audit record, a 403 in the JSON
    /// envelope, and no CORS header, so the browser blocks the real request.
    fn refuse_preflight(&self, request: &Request) -> Response {
        let origin = request
            .headers()
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
            .unwrap_or_default();
        self.state.auditor.record(
            AuditEvent::new(
                AuditEventType::AuthzFail,
                Severity::Medium,
                "CORS preflight from an origin that is not allowed",
            )
            .request(&super::request_info(request))
            .action("preflight")
            .result(AuditResult::Denied)
            .resource("cors", &origin),
        );
        ApiError::forbidden("this origin is not allowed").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_origins_are_kept() {
        let configured = [
            "https://App.example.com",
            "*",
            "https://*.example.com",
            "null",
            "http://localhost:3000",
            "https://app.example.com",
        ]
        .map(String::from);
        let kept = allowed_origins(&configured);
        assert_eq!(
            kept,
            vec![
                HeaderValue::from_static("https://app.example.com"),
                HeaderValue::from_static("http://localhost:3000"),
            ]
        );
    }
}
