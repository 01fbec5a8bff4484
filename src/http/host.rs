//! The `Host` allow-list (`ALLOWED_HOSTS`) on every route: the DNS-rebinding defence.
//!
//! A page on `evil.example` whose name an attacker re-points at this server (or at a browser's
//! loopback, where a local instance listens) reaches us with `Host: evil.example`. The browser
//! treats the page and the server as one origin, so CORS and the Origin check see nothing
//! foreign; only the `Host` header gives the rebinding away. rmcp checks it on `/mcp`, but login,
//! the REST API, OAuth (register, authorize, consent) and the console answered any `Host`, so a
//! rebound page could drive the consent form or read public answers. [`check_host`] refuses a
//! foreign `Host` on every route, with one answer: 403 `host_not_allowed` in the error envelope.
//! A request with no readable `Host` (nor an HTTP/2 `:authority`) is 400 `invalid_request`.
//!
//! Exempt: the orchestrator probes `/health`, `/live` and `/ready`, on an exact path match (the
//! same list the rate limiter exempts, [`super::rate_limit::EXEMPT_PATHS`]). Kubernetes sends the
//! pod IP as `Host`, Docker's health check `127.0.0.1`; neither is a public name, and the probes
//! reveal nothing a rebinding page could use. `/metrics` is not exempt: a scraper sends a listed
//! host (or `ALLOWED_HOSTS` lists the address it scrapes).
//!
//! Matching follows rmcp's (so `/mcp` keeps answering exactly as before): host names compare
//! case-insensitively, IPv6 brackets aside; an entry with a port allows that port only, a bare
//! entry any port. Refusals are audited (`input_validation_fail`, medium, reason
//! `host_not_allowed` and the host as sent, sanitised): the layer sits inside the rate limit in
//! [`super::apply_middleware`], so a flood of foreign names is cut before it floods the log.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    error::ApiError,
    mask,
    state::AppState,
};

/// Longest `Host` value copied into the audit record.
const MAX_AUDITED_HOST: usize = 128;

/// A host and optional port, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

impl Authority {
    fn normalised(host: &str, port: Option<u16>) -> Self {
        Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
            port,
        }
    }

    /// An `ALLOWED_HOSTS` entry: `name`, `name:port`, `1.2.3.4`, `::1`, `[::1]:8080`.
    fn allowed(entry: &str) -> Option<Self> {
        let entry = entry.trim();
        if entry.is_empty() {
            return None;
        }
        Some(match entry.parse::<axum::http::uri::Authority>() {
            Ok(a) => Self::normalised(a.host(), a.port_u16()),
            Err(_) => Self::normalised(entry, None),
        })
    }
}

/// The hosts this server answers as, parsed once.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Arc<[Authority]>);

impl AllowedHosts {
    /// From `ALLOWED_HOSTS` (never empty: the configuration defaults it to the bind address and
    /// `localhost`).
    pub fn new(entries: &[String]) -> Self {
        Self(
            entries
                .iter()
                .filter_map(|e| Authority::allowed(e))
                .collect(),
        )
    }

    /// Whether a request whose `Host` (or `:authority`) is `value` is addressed to us.
    pub fn allows(&self, value: &str) -> bool {
        // A `Host` carries no userinfo (RFC 9110 §7.2); `user@name` is not `name`.
        if value.contains('@') {
            return false;
        }
        let Ok(sent) = value.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let sent = Authority::normalised(sent.host(), sent.port_u16());
        self.0
            .iter()
            .any(|a| a.host == sent.host && a.port.is_none_or(|p| sent.port == Some(p)))
    }
}

/// The `Host` a request names: the header, else the URI's authority (HTTP/2).
fn requested_host<'a>(headers: &'a axum::http::HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    match headers.get(header::HOST) {
        Some(value) => value.to_str().ok(),
        None => uri.authority().map(axum::http::uri::Authority::as_str),
    }
}

/// Refuses a request whose `Host` is not in `ALLOWED_HOSTS` (probes exempt; see the module).
pub async fn check_host(
    State((state, allowed)): State<(AppState, AllowedHosts)>,
    request: Request,
    next: Next,
) -> Response {
    if super::rate_limit::EXEMPT_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let host = requested_host(request.headers(), request.uri());
    if host.is_some_and(|h| allowed.allows(h)) {
        return next.run(request).await;
    }
    let shown = host.map_or_else(
        || "(none)".to_owned(),
        |h| mask::sanitize_for_log(h, MAX_AUDITED_HOST),
    );
    let info = super::request_info(&request);
    state.auditor.record(
        AuditEvent::new(
            AuditEventType::InputValidationFail,
            Severity::Medium,
            "request refused: its Host is not one this server answers as (possible DNS rebinding)",
        )
        .request(&info)
        .action("host_check")
        .result(AuditResult::Denied)
        .extra("reason", "host_not_allowed")
        .extra("host", shown.as_str()),
    );
    metrics::counter!("host_refusals_total").increment(1);
    match host {
        None => ApiError::bad_request("the request has no readable Host header").into_response(),
        Some(_) => ApiError::new(
            StatusCode::FORBIDDEN,
            "host_not_allowed",
            "this server does not answer to that Host name",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_like_rmcp() {
        let allowed = AllowedHosts::new(&[
            "127.0.0.1".into(),
            "localhost".into(),
            "MCP.example.com:443".into(),
            "::1".into(),
            "[fd00::1]:8080".into(),
            " ".into(),
        ]);
        for ok in [
            "127.0.0.1",
            "127.0.0.1:5001",
            "LOCALHOST:1",
            "mcp.example.com:443",
            "[::1]:5001",
            "[fd00::1]:8080",
        ] {
            assert!(allowed.allows(ok), "{ok}");
        }
        for refused in [
            "evil.example",
            "evil.example:5001",
            "127.0.0.1.evil.example",
            "mcp.example.com",
            "mcp.example.com:8443",
            "[fd00::1]:8081",
            "[fd00::1]",
            "",
            "127.0.0.1 ",
            "a b",
            "user@127.0.0.1",
        ] {
            assert!(!allowed.allows(refused), "{refused:?}");
        }
    }
}
