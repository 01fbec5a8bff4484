//! Security response headers (catalogue §4.7, H1–H14), one fixed list set on every response.
//!
//! [`layer`] sits outermost in [`super::apply_middleware`], so the list also lands on the
//! answers other layers produce: rmcp's own 403/405/406/413/415, the 404 fallback, the 413 of a
//! REST body limit, the panic handler's 500 and CORS preflights. Values follow the OWASP Secure
//! Headers Project (2026-07) for a JSON/SSE API that serves no HTML. `Expect-CT` is never sent
//! (deprecated; OSHP, the HTTP Headers cheat sheet and MDN all say drop it), so there is no
//! switch for it either.
//!
//! The same layer also screens the client's `X-Request-Id` before the request-id layer keeps
//! it (H14): the id is echoed in a response header, error bodies and logs, so only a plain
//! token is accepted and anything else is replaced by a fresh one.

use std::convert::Infallible;

use axum::{
    body::HttpBody,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, header},
    middleware::{Next, from_fn, from_fn_with_state},
    response::{IntoResponse, Response},
};
use tower::{Layer, Service, ServiceBuilder};

use crate::{config::Config, error::REQUEST_ID};

/// CSP for API responses: nothing may load, nothing may frame us (REST cheat sheet; OSHP). If
/// HTML is ever served, that route needs the OSHP page policy instead.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// CSP for the web console ([`super::console`]): its own scripts, styles, icon and API only;
/// no inline code, no `eval`, no plugins, no `<base>`, forms post only here, no framing, and
/// Trusted Types so that no script can write HTML from a string (OSHP page policy, tightened).
pub const CONSOLE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'";

/// Response extension set by the console's handlers: the answer is one of the console's own
/// files, so it gets [`CONSOLE_CONTENT_SECURITY_POLICY`] and `Cross-Origin-Opener-Policy`, and
/// the handler's `Cache-Control` is kept (the files are public and may be cached briefly).
/// Only a response can carry it, never a request, so no client can ask for the page policy.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleResponse;

/// Response extension of a server-rendered page with its own CSP (the OAuth consent page,
/// whose form may lead to the client's redirect URI): the security-header layer sends this
/// policy instead of the API's. Only a handler can set it, never a request.
#[derive(Debug, Clone)]
pub struct PagePolicy(pub HeaderValue);

/// HSTS, production only: two years (OSHP; ASVS 5.0 3.4.1 wants ≥ 1 year), subdomains
/// included, no `preload` (that is the domain owner's opt-in).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000; includeSubDomains";

/// Sent on a successful logout (H13, ASVS 14.3.1): the browser drops what it kept for us.
pub const CLEAR_SITE_DATA_ON_LOGOUT: &str = "\"cache\",\"cookies\",\"storage\"";

/// What every response gets unless a handler already chose a stricter value (see
/// [`add_security_headers`]): everything here is per-caller or live state, never cacheable.
pub const CACHE_CONTROL: &str = "no-store, max-age=0";

/// The fixed list, each with its reason (name, value).
const SECURITY_HEADERS: &[(&str, &str)] = &[
    // H1: API responses load nothing and cannot be framed.
    ("content-security-policy", API_CONTENT_SECURITY_POLICY),
    // H3: no MIME sniffing of JSON or plain-text error bodies into something executable.
    ("x-content-type-options", "nosniff"),
    // H4: legacy twin of `frame-ancestors 'none'` for old browsers (harmless, OSHP "active").
    ("x-frame-options", "DENY"),
    // H6: URLs (which may carry ids) never leak to other sites through Referer.
    ("referrer-policy", "no-referrer"),
    // H7: an API needs no powerful browser features; deny them all (OSHP deny list, short).
    // No `web-share`: Chromium does not recognise it and logs a warning on every page that
    // gets it (the console's page log must stay clean), and no browser honours it here.
    (
        "permissions-policy",
        "accelerometer=(), autoplay=(), browsing-topics=(), camera=(), display-capture=(), \
         encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), hid=(), \
         interest-cohort=(), magnetometer=(), microphone=(), midi=(), payment=(), \
         picture-in-picture=(), publickey-credentials-get=(), screen-wake-lock=(), serial=(), \
         sync-xhr=(), usb=(), xr-spatial-tracking=()",
    ),
    // H2: the XSS auditor is gone and its `1; mode=block` could be abused; `0` turns it off.
    ("x-xss-protection", "0"),
    // H10: other sites cannot embed our responses as no-cors subresources (Spectre-style reads).
    ("cross-origin-resource-policy", "same-origin"),
    // H10: no Flash/PDF cross-domain policy files are honoured for this host.
    ("x-permitted-cross-domain-policies", "none"),
];

/// Headers that reveal the stack or are deprecated; removed if anything sets them (H9, H11).
const REMOVED_HEADERS: &[&str] = &["server", "x-powered-by", "expect-ct"];

/// Longest client-supplied request id kept (H14).
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Which optional headers this deployment sends.
#[derive(Debug, Clone, Copy)]
pub struct HeaderPolicy {
    /// `Strict-Transport-Security`, only with `NODE_ENV=production` (behind TLS).
    pub hsts: bool,
}

impl HeaderPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            hsts: config.is_production(),
        }
    }
}

/// The request-id screen, then the headers: the one layer `apply_middleware` puts outermost.
pub fn layer<S>(
    config: &Config,
) -> impl Layer<
    S,
    Service: Service<Request, Response = Response, Error = Infallible, Future: Send + 'static>
                 + Clone
                 + Send
                 + Sync
                 + 'static,
> + Clone
+ Send
+ Sync
+ 'static
where
    S: Service<Request, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Response: IntoResponse + 'static,
    S::Future: Send + 'static,
{
    ServiceBuilder::new()
        .layer(from_fn_with_state(
            HeaderPolicy::from_config(config),
            add_security_headers,
        ))
        .layer(from_fn(screen_request_id))
}

/// Sets the fixed list on the response, HSTS in production, `Cache-Control` unless the
/// response already forbids storing, a plain-text type on an untyped body, and strips
/// stack-revealing headers.
pub async fn add_security_headers(
    State(policy): State<HeaderPolicy>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let console = response.extensions().get::<ConsoleResponse>().is_some();
    let headers = response.headers_mut();
    for &(name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if console {
        // H1 for a page: the console's own policy replaces the API's `default-src 'none'`, and
        // no other window may keep a handle on it (OSHP: COOP `same-origin`).
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONSOLE_CONTENT_SECURITY_POLICY),
        );
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
    if let Some(PagePolicy(csp)) = response.extensions().get::<PagePolicy>().cloned() {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        headers.insert(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
    let headers = response.headers_mut();
    if policy.hsts {
        // H5: only in production, where the server is reached over TLS (browsers ignore it on
        // plain HTTP anyway); exactly one value, since `insert` replaces.
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    // H8: a handler's own value survives only if it already forbids storing; anything weaker
    // (rmcp's `no-cache` on SSE) is replaced. The console's static files are the one exception.
    let keeps_own = (console && headers.contains_key(header::CACHE_CONTROL))
        || headers
            .get_all(header::CACHE_CONTROL)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.contains("no-store")));
    if !keeps_own {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(CACHE_CONTROL),
        );
    }
    for name in REMOVED_HEADERS {
        headers.remove(*name);
    }
    // H12: rmcp answers its own refusals (403, 405, 406, 413, 415) in plain text without a
    // `Content-Type`; say what they are rather than leave the type to sniffing.
    let has_body = HttpBody::size_hint(response.body()).exact() != Some(0);
    if has_body && !response.headers().contains_key(header::CONTENT_TYPE) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    response
}

/// Whether a client-supplied request id is a plain token: `[A-Za-z0-9._-]{1,128}`.
pub fn is_plain_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&value.len())
        && value
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// H14: drops a client's `X-Request-Id` unless it is exactly one plain token, so the
/// request-id layer mints a fresh one. The id is echoed in a response header, error bodies,
/// logs and audit records; nothing else may ride along.
pub async fn screen_request_id(mut request: Request, next: Next) -> Response {
    if !request_id_is_acceptable(request.headers()) {
        request.headers_mut().remove(REQUEST_ID);
    }
    next.run(request).await
}

/// Mints the `X-Request-Id` of a request that came without an acceptable one: a random
/// (version 4) UUID from the thread's CSPRNG (`rand::random`, reseeded from the OS), where
/// tower-http's `MakeRequestUuid` asks the OS for 16 bytes on every request (a system call
/// per request, docs/PERFORMANCE.md). Same shape as before: 36 lowercase characters.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomRequestId;

impl tower_http::request_id::MakeRequestId for RandomRequestId {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        let text = id.hyphenated().encode_lower(&mut text);
        HeaderValue::from_str(text)
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

fn request_id_is_acceptable(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(REQUEST_ID).iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(only), None) => is_plain_request_id(only.as_bytes()),
        (Some(_), Some(_)) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_request_ids_are_fresh_version_4_uuids() {
        use tower_http::request_id::MakeRequestId as _;
        let request = axum::http::Request::new(());
        let mut make = RandomRequestId;
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| {
                let id = make.make_request_id(&request).unwrap();
                let text = id.header_value().to_str().unwrap().to_owned();
                let uuid = uuid::Uuid::parse_str(&text).unwrap();
                assert_eq!(uuid.get_version_num(), 4);
                assert_eq!(text, uuid.hyphenated().to_string());
                assert!(is_plain_request_id(text.as_bytes()));
                text
            })
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn request_ids_are_plain_tokens_only() {
        assert!(is_plain_request_id(b"l5-request-id"));
        assert!(is_plain_request_id(b"0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(is_plain_request_id(b"a.b_c-D9"));
        assert!(is_plain_request_id(&[b'a'; MAX_REQUEST_ID_LEN]));
        assert!(!is_plain_request_id(b""));
        assert!(!is_plain_request_id(&[b'a'; MAX_REQUEST_ID_LEN + 1]));
        for bad in [
            &b"a\r\nSet-Cookie: x=y"[..],
            b"a b",
            b"<script>",
            b"a;b",
            b"\xc3\xa9",
            b"a\tb",
            b"a/b",
        ] {
            assert!(!is_plain_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn header_values_are_valid() {
        for (name, value) in SECURITY_HEADERS {
            HeaderName::from_bytes(name.as_bytes()).unwrap();
            HeaderValue::from_str(value).unwrap();
        }
        HeaderValue::from_str(CLEAR_SITE_DATA_ON_LOGOUT).unwrap();
        HeaderValue::from_str(CONSOLE_CONTENT_SECURITY_POLICY).unwrap();
    }
}
