//! The HTTP request's span: one per request, named and described after the OpenTelemetry HTTP
//! server conventions, continuing the client's W3C trace context.
//!
//! The span is the log lines' request context too (its `request.id` is in every line logged
//! while the request runs); when traces are exported (`telemetry::otel`) it is the server span
//! of the request's trace, the parent of the MCP, tool, Dust and Redis spans below it.
//!
//! Attributes: `http.request.method` (a standard method or `_OTHER`), `url.path` (masked and
//! bounded, as in the logs), `url.scheme`, `server.address` and `server.port` (from a `Host`
//! header, bounded; worked out only when traces are exported), `http.route` (the route template, recorded once the router matched it:
//! `record_route`), `http.response.status_code`, and `error.type` with an error status for a 5xx.
//! Never the query string (OAuth codes, states and tokens travel there), never a header value
//! but `Host`: no `Authorization`, cookie or `Mcp-Session-Id`.
//!
//! Trace context: only the `traceparent` header is read, and only when traces are exported.
//! `tracestate` is not continued: it is free-form text from the client, and nothing here reads
//! it. Whether an incoming trace is sampled is the sampler's decision (`OTEL_TRACES_SAMPLER`,
//! parent-based by default: the client's sampled flag is followed).

use std::time::Duration;

use axum::{
    extract::Request,
    http::{HeaderMap, Method, header},
};
use opentelemetry::{
    propagation::{Extractor, TextMapPropagator},
    trace::TraceContextExt,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower_http::trace::{DefaultOnResponse, MakeSpan, OnResponse};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::{error::REQUEST_ID, mask, telemetry::otel};

/// The longest `url.path` and `server.address` recorded; longer ones are cut (and say so).
const MAX_ATTRIBUTE: usize = 256;

/// Makes the request span ([`MakeSpan`]) and records the answer on it ([`OnResponse`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct HttpSpan;

impl<B> MakeSpan<B> for HttpSpan {
    fn make_span(&mut self, request: &Request<B>) -> Span {
        let request_id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let method = method_name(request.method());
        // The address is parsed only for traces: the log lines have the request id.
        let (host, port) = if otel::enabled() {
            server_address(request.headers())
        } else {
            (None, None)
        };
        let span = tracing::info_span!(
            "http",
            otel.name = method,
            otel.kind = "server",
            otel.status_code = Empty,
            http.request.method = method,
            url.path = %mask::sanitize_for_log(request.uri().path(), MAX_ATTRIBUTE),
            url.scheme = "http",
            server.address = host.as_deref(),
            server.port = port,
            http.route = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            request.id = %request_id,
        );
        if otel::enabled() {
            let parent = TraceContextPropagator::new().extract(&TraceParent(request.headers()));
            // Without a valid `traceparent` the extracted context is empty and the span starts
            // a trace of its own.
            let _ = span.set_parent(parent);
        }
        span
    }
}

impl<B> OnResponse<B> for HttpSpan {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("error.type", status.as_str());
            span.record("otel.status_code", "error");
        }
        DefaultOnResponse::default().on_response(response, latency, span);
    }
}

/// Names the span after the route template once the router found it (`{method} {route}`, e.g.
/// `POST /mcp`); called where the matched path is known (`record_metrics`).
pub(super) fn record_route(method: &Method, route: &str) {
    let span = Span::current();
    span.record("http.route", route);
    if otel::enabled() {
        // The OpenTelemetry span has started by now, and a started span is renamed through
        // its context (recording `otel.name` would only rename one not yet started).
        let name = format!("{} {route}", method_name(method));
        span.context().span().update_name(name);
    }
}

/// The method as the conventions want it: a standard one, else `_OTHER` (a client inventing
/// methods must not invent span names).
fn method_name(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("_OTHER", Method::as_str)
}

/// `server.address` and `server.port` from the `Host` header (bounded and masked: the header is
/// the client's; the `Host` allow-list runs later).
fn server_address(headers: &HeaderMap) -> (Option<String>, Option<u16>) {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && (!name.contains(':') || name.ends_with(']')) => {
            (name, port.parse().ok())
        }
        _ => (host, None),
    };
    (Some(mask::sanitize_for_log(name, MAX_ATTRIBUTE)), port)
}

/// The request headers as the W3C propagator reads them: `traceparent` only.
struct TraceParent<'a>(&'a HeaderMap);

impl Extractor for TraceParent<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if !key.eq_ignore_ascii_case("traceparent") {
            return None;
        }
        self.0.get("traceparent").and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn methods_are_standard_or_other() {
        assert_eq!(method_name(&Method::POST), "POST");
        assert_eq!(method_name(&Method::from_bytes(b"BREW").unwrap()), "_OTHER");
    }

    #[test]
    fn the_host_header_gives_the_server_address_and_port() {
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(value).unwrap());
            server_address(&headers)
        };
        assert_eq!(
            host("mcp.example.com"),
            (Some("mcp.example.com".into()), None)
        );
        assert_eq!(
            host("127.0.0.1:8080"),
            (Some("127.0.0.1".into()), Some(8080))
        );
        assert_eq!(host("[::1]:9000"), (Some("[::1]".into()), Some(9000)));
        assert_eq!(server_address(&HeaderMap::new()), (None, None));
    }

    #[test]
    fn only_traceparent_is_read() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("00-ab-cd-01"));
        headers.insert("tracestate", HeaderValue::from_static("vendor=secret"));
        let extractor = TraceParent(&headers);
        assert_eq!(extractor.get("traceparent"), Some("00-ab-cd-01"));
        assert_eq!(extractor.get("tracestate"), None);
    }
}
