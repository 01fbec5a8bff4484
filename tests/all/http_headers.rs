//! Security headers and CORS over the real HTTP server (catalogue §4.7, H1–H14, and C12): the
//! simulator as Dust, the real router on 127.0.0.1:0. Every response kind the server produces
//! today is checked, above all the ones other layers answer (rmcp's own refusals, the 404
//! fallback, body limits, the panic handler, CORS preflights), where headers usually go missing.

use crate::common::http as server;

use axum::{Router, body::Body, routing::get};
use mcp_dust_server::{audit::AuditEventType, auth::lockout, http::headers};
use reqwest::{Method, header::HeaderMap};
use serde_json::{Value, json};
use server::{SECRET, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const APP: &str = "https://app.example.com";
const ACCEPT_MCP: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");
const VERSION: (&str, &str) = ("MCP-Protocol-Version", "2025-11-25");

/// One answer: status, headers and body text.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn body(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn send(
    srv: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let mut request = srv.http.request(method, srv.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

fn json_body(value: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(value).unwrap())
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
}

/// The single value of `name`, failing when it is absent or repeated.
fn one<'a>(label: &str, headers: &'a HeaderMap, name: &str) -> &'a str {
    let values: Vec<_> = headers.get_all(name).iter().collect();
    assert_eq!(
        values.len(),
        1,
        "{label}: {name} must appear once: {values:?}"
    );
    values[0].to_str().unwrap()
}

/// H1–H12 on one response. `production` decides HSTS (H5).
fn assert_security_headers(label: &str, reply: &Reply, production: bool) {
    let h = &reply.headers;
    // H1
    assert_eq!(
        one(label, h, "content-security-policy"),
        "default-src 'none'; frame-ancestors 'none'",
        "{label}"
    );
    assert_eq!(
        headers::API_CONTENT_SECURITY_POLICY,
        "default-src 'none'; frame-ancestors 'none'"
    );
    // H2: `0`, never `1; mode=block`.
    assert_eq!(one(label, h, "x-xss-protection"), "0", "{label}");
    // H3, H4, H6
    assert_eq!(
        one(label, h, "x-content-type-options"),
        "nosniff",
        "{label}"
    );
    assert_eq!(one(label, h, "x-frame-options"), "DENY", "{label}");
    assert_eq!(one(label, h, "referrer-policy"), "no-referrer", "{label}");
    // H7: a deny list in valid dictionary syntax.
    let permissions = one(label, h, "permissions-policy");
    for feature in [
        "geolocation",
        "camera",
        "microphone",
        "payment",
        "usb",
        "interest-cohort",
    ] {
        assert!(
            permissions.contains(&format!("{feature}=()")),
            "{label}: {feature} in {permissions}"
        );
    }
    for item in permissions.split(", ") {
        assert!(
            item.ends_with("=()") && !item.contains(' '),
            "{label}: Permissions-Policy item {item:?}"
        );
    }
    // H8
    assert_eq!(
        one(label, h, "cache-control"),
        "no-store, max-age=0",
        "{label}"
    );
    // H5: exactly one HSTS header in production, none otherwise.
    if production {
        assert_eq!(
            one(label, h, "strict-transport-security"),
            "max-age=63072000; includeSubDomains",
            "{label}"
        );
    } else {
        assert!(
            !h.contains_key("strict-transport-security"),
            "{label}: HSTS outside production"
        );
    }
    // H9
    assert!(!h.contains_key("expect-ct"), "{label}: Expect-CT");
    // H10
    assert_eq!(
        one(label, h, "cross-origin-resource-policy"),
        "same-origin",
        "{label}"
    );
    assert_eq!(
        one(label, h, "x-permitted-cross-domain-policies"),
        "none",
        "{label}"
    );
    // H11: nothing that names the stack.
    for name in ["server", "x-powered-by", "x-aspnet-version", "x-generator"] {
        assert!(!h.contains_key(name), "{label}: {name}");
    }
    // H12: a body always says what it is, and an error is never HTML.
    let content_type = h.get("content-type").map(|v| v.to_str().unwrap());
    if let Some(content_type) = content_type {
        assert!(!content_type.contains("html"), "{label}: {content_type}");
    }
    if !reply.text.is_empty() {
        let content_type =
            content_type.unwrap_or_else(|| panic!("{label}: a body without Content-Type"));
        assert!(
            ["application/json", "text/event-stream", "text/plain"]
                .iter()
                .any(|t| content_type.starts_with(t)),
            "{label}: {content_type}"
        );
    }
    // Every answer carries a request id to quote.
    assert!(h.contains_key("x-request-id"), "{label}: x-request-id");
}

async fn dev_server() -> TestServer {
    TestServer::start_with(&[("CORS_ALLOWED_ORIGINS", APP)]).await
}

/// H1–H12 on every response kind of the catalogue the server can produce today (408 and 500
/// are covered below). The server sends no `text/event-stream` answer: `/mcp` is in JSON
/// response mode and GET is 405, so there is no SSE response to check.
#[tokio::test]
async fn every_response_kind_carries_the_security_headers() {
    let srv = dev_server().await;
    let mut replies: Vec<(&str, u16, Reply)> = Vec::new();

    let login = srv
        .login_with(json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id()}))
        .await;
    let login = Reply {
        status: login.status().as_u16(),
        headers: login.headers().clone(),
        text: login.text().await.unwrap(),
    };
    let token = login.body()["token"].as_str().unwrap().to_owned();
    replies.push(("login (carries the JWT)", 200, login));

    let mcp = [ACCEPT_MCP, JSON, VERSION];
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &mcp,
        json_body(&tools_list()),
    )
    .await;
    replies.push(("tools/list", 200, r));
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &mcp,
        json_body(&notification),
    )
    .await;
    replies.push(("notification", 202, r));
    let r = send(&srv, Method::GET, "/health", None, &[], None).await;
    replies.push(("/health", 200, r));
    for path in ["/live", "/ready", "/api/v1/status"] {
        let r = send(&srv, Method::GET, path, None, &[], None).await;
        replies.push((path, 200, r));
    }

    let r = send(
        &srv,
        Method::POST,
        "/api/v1/auth/login",
        None,
        &[JSON],
        Some(b"{".to_vec()),
    )
    .await;
    replies.push(("login, malformed JSON", 400, r));
    let r = send(&srv, Method::GET, "/metrics", None, &[], None).await;
    replies.push(("/metrics without a token", 401, r));
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some("not-a-token"),
        &mcp,
        json_body(&tools_list()),
    )
    .await;
    replies.push(("/mcp with a bad token", 401, r));
    let r = send(&srv, Method::GET, "/metrics", Some(&token), &[], None).await;
    replies.push(("/metrics without admin:metrics", 403, r));
    let foreign = [
        ACCEPT_MCP,
        JSON,
        VERSION,
        ("Origin", "https://evil.example"),
    ];
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &foreign,
        json_body(&tools_list()),
    )
    .await;
    replies.push(("/mcp from a foreign Origin (rmcp)", 403, r));
    let cross_site_login = [JSON, ("Sec-Fetch-Site", "cross-site")];
    let r = send(
        &srv,
        Method::POST,
        "/api/v1/auth/login",
        None,
        &cross_site_login,
        json_body(&json!({"apiKey": srv.sim.api_key()})),
    )
    .await;
    replies.push(("cross-site login", 403, r));
    let r = send(&srv, Method::GET, "/no/such/route", None, &[], None).await;
    replies.push(("fallback", 404, r));
    let r = send(&srv, Method::GET, "/mcp", Some(&token), &[ACCEPT_MCP], None).await;
    replies.push(("GET /mcp (rmcp)", 405, r));
    let r = send(&srv, Method::PUT, "/health", None, &[], None).await;
    replies.push(("PUT /health (axum)", 405, r));
    let wrong_accept = [("Accept", "text/html"), JSON, VERSION];
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &wrong_accept,
        json_body(&tools_list()),
    )
    .await;
    replies.push(("/mcp with Accept: text/html (rmcp)", 406, r));
    let wrong_type = [ACCEPT_MCP, ("Content-Type", "text/plain"), VERSION];
    let r = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &wrong_type,
        json_body(&tools_list()),
    )
    .await;
    replies.push(("/mcp with Content-Type: text/plain (rmcp)", 415, r));
    let r = send(
        &srv,
        Method::POST,
        "/api/v1/auth/login",
        None,
        &[("Content-Type", "text/plain")],
        Some(b"{}".to_vec()),
    )
    .await;
    replies.push(("login as text/plain", 415, r));
    let big = vec![b' '; mcp_dust_server::http::MAX_LOGIN_BODY + 1];
    let r = send(
        &srv,
        Method::POST,
        "/api/v1/auth/login",
        None,
        &[JSON],
        Some(big),
    )
    .await;
    replies.push(("oversized login body", 413, r));
    let huge = vec![b' '; mcp_dust_server::http::MAX_MCP_BODY + 1];
    let r = send(&srv, Method::POST, "/mcp", Some(&token), &mcp, Some(huge)).await;
    replies.push(("oversized /mcp body (rmcp)", 413, r));

    let preflight = [
        ("Origin", APP),
        ("Access-Control-Request-Method", "POST"),
        (
            "Access-Control-Request-Headers",
            "authorization, content-type",
        ),
    ];
    let r = send(&srv, Method::OPTIONS, "/mcp", None, &preflight, None).await;
    replies.push(("preflight, allowed origin", 200, r));
    let refused = [
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    let r = send(&srv, Method::OPTIONS, "/mcp", None, &refused, None).await;
    replies.push(("preflight, foreign origin", 403, r));

    // 429: the login lockout (the general rate limiter is not on this branch).
    let wrong =
        json!({"apiKey": format!("sk-{}", "0".repeat(32)), "workspaceId": srv.sim.workspace_id()});
    for _ in 0..lockout::KEY_MAX_FAILURES {
        let r = send(
            &srv,
            Method::POST,
            "/api/v1/auth/login",
            None,
            &[JSON],
            json_body(&wrong),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = send(
        &srv,
        Method::POST,
        "/api/v1/auth/login",
        None,
        &[JSON],
        json_body(&wrong),
    )
    .await;
    replies.push(("login lockout", 429, r));

    for (label, status, reply) in &replies {
        assert_eq!(reply.status, *status, "{label}: {}", reply.text);
        assert_security_headers(label, reply, false);
    }
    srv.shutdown().await;
}

async fn boom() -> &'static str {
    panic!("h-panic")
}

/// The panic handler's 500 gets the headers too (no route panics on purpose, so a router with
/// one goes through the same `apply_middleware`).
#[tokio::test]
async fn the_panic_handlers_500_carries_the_security_headers() {
    let srv = dev_server().await;
    let router = Router::new().route("/boom", get(boom));
    let app = mcp_dust_server::http::apply_middleware(&srv.state, router);
    let response = app
        .oneshot(
            axum::http::Request::get("/boom")
                .header("Host", "127.0.0.1")
                .header("Origin", APP)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let reply = Reply {
        status,
        headers,
        text: String::from_utf8(body.to_vec()).unwrap(),
    };
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body()["error"]["code"], "internal_error");
    assert_security_headers("panic", &reply, false);
    // CORS sits outside the panic handler: an allowed page can read the error.
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    srv.shutdown().await;
}

/// H5: HSTS with `NODE_ENV=production`, exactly once, on successes and errors alike.
#[tokio::test]
async fn hsts_only_in_production() {
    let srv = TestServer::start_with(&[
        ("NODE_ENV", "production"),
        ("SECURITY_SECRET_KEY", SECRET),
        ("MCP_PUBLIC_URL", "https://mcp.example.com"),
        ("CORS_ALLOWED_ORIGINS", APP),
    ])
    .await;
    assert!(srv.state.config.is_production());
    let token = srv.token(None).await;
    for (label, status, reply) in [
        (
            "health",
            200,
            send(&srv, Method::GET, "/health", None, &[], None).await,
        ),
        (
            "fallback",
            404,
            send(&srv, Method::GET, "/nope", None, &[], None).await,
        ),
        (
            "no token",
            401,
            send(&srv, Method::GET, "/metrics", None, &[], None).await,
        ),
        (
            "scope",
            403,
            send(&srv, Method::GET, "/metrics", Some(&token), &[], None).await,
        ),
        (
            "GET /mcp",
            405,
            send(&srv, Method::GET, "/mcp", Some(&token), &[ACCEPT_MCP], None).await,
        ),
    ] {
        assert_eq!(reply.status, status, "{label}: {}", reply.text);
        assert_security_headers(label, &reply, true);
    }
    srv.shutdown().await;
}

/// H13: a successful logout clears the site's data; nothing else does.
#[tokio::test]
async fn logout_clears_site_data() {
    let srv = dev_server().await;
    let token = srv.token(None).await;
    let refused = send(&srv, Method::POST, "/api/v1/auth/logout", None, &[], None).await;
    assert_eq!(refused.status, 401);
    assert!(!refused.headers.contains_key("clear-site-data"));
    let reply = send(
        &srv,
        Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        one("logout", &reply.headers, "clear-site-data"),
        "\"cache\",\"cookies\",\"storage\""
    );
    assert_security_headers("logout", &reply, false);
    // The revoked token cannot log out again, and that refusal clears nothing.
    let again = send(
        &srv,
        Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(again.status, 401);
    assert!(!again.headers.contains_key("clear-site-data"));
    let health = send(&srv, Method::GET, "/health", None, &[], None).await;
    assert!(!health.headers.contains_key("clear-site-data"));
    srv.shutdown().await;
}

/// H14: a client's request id is kept only when it is a plain token; anything else is
/// replaced by a fresh one, in the response header and the error body alike.
#[tokio::test]
async fn hostile_request_ids_are_replaced() {
    let srv = dev_server().await;
    let kept = send(
        &srv,
        Method::GET,
        "/metrics",
        None,
        &[("X-Request-Id", "abc.DEF_123-x")],
        None,
    )
    .await;
    assert_eq!(kept.header("x-request-id"), Some("abc.DEF_123-x"));
    assert_eq!(kept.body()["error"]["requestId"], "abc.DEF_123-x");

    let long = "a".repeat(headers::MAX_REQUEST_ID_LEN + 1);
    for hostile in [
        "a b<script>alert(1)</script>",
        "x; Set-Cookie: x=y",
        "\"quoted\"",
        "a,b",
        long.as_str(),
    ] {
        let reply = send(
            &srv,
            Method::GET,
            "/metrics",
            None,
            &[("X-Request-Id", hostile)],
            None,
        )
        .await;
        assert_eq!(reply.status, 401);
        let id = one(hostile, &reply.headers, "x-request-id");
        assert_ne!(id, hostile);
        assert!(headers::is_plain_request_id(id.as_bytes()), "{id}");
        assert_eq!(reply.body()["error"]["requestId"], id, "{hostile}");
    }

    // Non-ASCII bytes (allowed by HTTP as obs-text) and a repeated header are replaced too.
    let reply = srv
        .http
        .get(srv.url("/metrics"))
        .header(
            "X-Request-Id",
            reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let id = reply.headers()["x-request-id"].to_str().unwrap();
    assert!(headers::is_plain_request_id(id.as_bytes()), "{id}");
    let reply = srv
        .http
        .get(srv.url("/health"))
        .header("X-Request-Id", "first")
        .header("X-Request-Id", "second")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = reply.headers().get_all("x-request-id").iter().collect();
    assert_eq!(ids.len(), 1);
    assert!(ids[0] != "first" && ids[0] != "second", "{ids:?}");

    // The classic CRLF injection on the wire: whatever HTTP makes of it, no header is injected
    // into the response.
    let raw = raw_http(
        &srv,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: a\r\nSet-Cookie: x=y\r\nConnection: close\r\n\r\n",
    )
    .await;
    let head = raw.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(!head.contains("set-cookie"), "{raw}");
    assert_eq!(head.matches("x-request-id:").count(), 1, "{raw}");
    let raw = raw_http(
        &srv,
        b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Request-Id: a\rSet-Cookie: x=y\r\nConnection: close\r\n\r\n",
    )
    .await;
    // A lone CR is refused by hyper's parser (400, empty body) before any layer of ours runs,
    // so that one answer carries no security headers; it carries nothing injected either.
    assert!(raw.starts_with("HTTP/1.1 400"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("set-cookie"), "{raw}");
    srv.shutdown().await;
}

async fn raw_http(srv: &TestServer, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

fn access_control_headers(headers: &HeaderMap) -> Vec<String> {
    headers
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k.starts_with("access-control-"))
        .collect()
}

fn vary_has_origin(headers: &HeaderMap) -> bool {
    headers
        .get_all("vary")
        .iter()
        .flat_map(|v| {
            v.to_str()
                .unwrap()
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
        })
        .any(|v| v == "origin")
}

/// C12: an allowed origin gets an exact echo, `Vary: Origin`, credentials and the lists.
#[tokio::test]
async fn cors_allows_exactly_the_listed_origin() {
    let srv = dev_server().await;
    let token = srv.token(None).await;
    let preflight = send(
        &srv,
        Method::OPTIONS,
        "/mcp",
        None,
        &[
            ("Origin", APP),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type, mcp-protocol-version",
            ),
        ],
        None,
    )
    .await;
    assert_eq!(preflight.status, 200);
    let h = &preflight.headers;
    assert_eq!(one("preflight", h, "access-control-allow-origin"), APP);
    assert_eq!(
        one("preflight", h, "access-control-allow-credentials"),
        "true"
    );
    assert!(vary_has_origin(h));
    assert_eq!(one("preflight", h, "access-control-max-age"), "600");
    let methods = one("preflight", h, "access-control-allow-methods");
    for method in ["GET", "POST", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    assert!(
        !methods.contains("DELETE") && !methods.contains('*'),
        "{methods}"
    );
    let allowed = one("preflight", h, "access-control-allow-headers").to_ascii_lowercase();
    for name in [
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "last-event-id",
        "x-xsrf-token",
        "x-request-id",
    ] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert!(!allowed.contains('*'));

    // The real request: an exact echo, credentials, and the headers a client must read.
    let reply = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[ACCEPT_MCP, JSON, VERSION, ("Origin", APP)],
        json_body(&tools_list()),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(vary_has_origin(&reply.headers));
    let exposed = one("mcp", &reply.headers, "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "mcp-protocol-version",
        "x-request-id",
        "www-authenticate",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
    ] {
        assert!(exposed.split(',').any(|e| e.trim() == name), "{exposed}");
    }
    // Errors too, so the page can read the challenge.
    let reply = send(
        &srv,
        Method::GET,
        "/metrics",
        None,
        &[("Origin", APP)],
        None,
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("access-control-allow-origin"), Some(APP));
    srv.shutdown().await;
}

/// C12: any other origin gets no CORS header at all; a refused preflight is audited once.
#[tokio::test]
async fn cors_refuses_other_origins_and_audits_preflights() {
    let srv = dev_server().await;
    let token = srv.token(None).await;
    let others = [
        "https://evil.example",
        "https://app.example.com.evil.com",
        "https://evil.app.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "null",
    ];
    for origin in others {
        srv.audit.clear();
        let reply = send(
            &srv,
            Method::OPTIONS,
            "/mcp",
            None,
            &[
                ("Origin", origin),
                ("Access-Control-Request-Method", "POST"),
                ("Access-Control-Request-Headers", "authorization"),
            ],
            None,
        )
        .await;
        assert_eq!(reply.status, 403, "{origin}");
        assert_eq!(
            access_control_headers(&reply.headers),
            Vec::<String>::new(),
            "{origin}"
        );
        assert_eq!(reply.body()["error"]["code"], "forbidden");
        srv.state.auditor.flush().await;
        let denials = srv.audit.of_type(AuditEventType::AuthzFail);
        assert_eq!(denials.len(), 1, "{origin}: {denials:?}");
        assert_eq!(denials[0]["resource_type"], "cors");
        assert_eq!(denials[0]["resource_id"], origin);
        assert_eq!(denials[0]["result"], "denied");

        // A simple request from it: no echo, no credentials.
        let reply = send(
            &srv,
            Method::GET,
            "/health",
            None,
            &[("Origin", origin)],
            None,
        )
        .await;
        assert_eq!(reply.status, 200);
        assert!(
            !reply.headers.contains_key("access-control-allow-origin"),
            "{origin}"
        );
        assert!(
            !reply
                .headers
                .contains_key("access-control-allow-credentials"),
            "{origin}"
        );
    }
    // rmcp's own Origin check on /mcp stays (403, no CORS echo).
    let reply = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[
            ACCEPT_MCP,
            JSON,
            VERSION,
            ("Origin", "https://evil.example"),
        ],
        json_body(&tools_list()),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(!reply.headers.contains_key("access-control-allow-origin"));
    // An OPTIONS without Origin is no preflight: the routes answer it as if there were no
    // CORS (401 behind authentication, 405 elsewhere), with no CORS header and no audit.
    srv.audit.clear();
    for (path, token, status) in [
        ("/mcp", None, 401),
        ("/mcp", Some(token.as_str()), 405),
        ("/health", None, 405),
    ] {
        let reply = send(&srv, Method::OPTIONS, path, token, &[], None).await;
        assert_eq!(reply.status, status, "OPTIONS {path}");
        assert!(access_control_headers(&reply.headers).is_empty());
        assert_security_headers("OPTIONS without Origin", &reply, false);
    }
    srv.state.auditor.flush().await;
    assert!(srv.audit.of_type(AuditEventType::AuthzFail).is_empty());
    srv.shutdown().await;
}

/// C12: `*` is never honoured, with or without exact origins beside it.
#[tokio::test]
async fn cors_wildcard_is_refused() {
    for configured in ["*", "*,https://app.example.com", "https://*.example.com"] {
        let srv = TestServer::start_with(&[("CORS_ALLOWED_ORIGINS", configured)]).await;
        for origin in ["https://evil.example", "https://sub.example.com"] {
            let reply = send(
                &srv,
                Method::OPTIONS,
                "/api/v1/auth/login",
                None,
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                ],
                None,
            )
            .await;
            assert_eq!(reply.status, 403, "{configured} {origin}");
            assert!(access_control_headers(&reply.headers).is_empty());
            let reply = send(
                &srv,
                Method::GET,
                "/health",
                None,
                &[("Origin", origin)],
                None,
            )
            .await;
            assert!(!reply.headers.contains_key("access-control-allow-origin"));
        }
        let reply = send(&srv, Method::GET, "/health", None, &[("Origin", APP)], None).await;
        let echoed = reply.header("access-control-allow-origin");
        assert_ne!(echoed, Some("*"), "{configured}");
        if configured.contains(APP) {
            assert_eq!(echoed, Some(APP));
        } else {
            assert_eq!(echoed, None);
        }
        srv.shutdown().await;
    }
}

/// H1–H12 on a 408: a login body that stops arriving is cut off by the body timeout (1 s here),
/// and the 408 carries the whole header set and the JSON envelope.
#[tokio::test]
async fn a_408_carries_the_security_headers() {
    let srv = TestServer::start_with(&[("HTTP_BODY_TIMEOUT", "1")]).await;
    let raw = raw_http(
        &srv,
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"apiKey\":",
    )
    .await;
    let (head, text) = raw.split_once("\r\n\r\n").expect(&raw);
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        headers.append(
            reqwest::header::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
            value.trim().parse().unwrap(),
        );
    }
    let reply = Reply {
        status,
        headers,
        text: text.to_owned(),
    };
    assert_eq!(reply.status, 408, "{raw}");
    assert_security_headers("408 (slow body)", &reply, false);
    assert_eq!(reply.body()["error"]["code"], "request_timeout");
    srv.shutdown().await;
}
