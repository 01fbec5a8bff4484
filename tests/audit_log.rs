//! Logging and audit over the real HTTP server (catalogue §4.9, L1–L10): no secret in any log
//! line, audit record or response body; every security event recorded once, with every field;
//! injection and oversize kept in check.
//!
//! Logs are captured by a process-wide `tracing` JSON subscriber at TRACE writing into a buffer
//! ([`logs`]); every test of this binary logs into it, so each looks for its own canaries.

#[allow(dead_code)] // shared with other test binaries; each uses a part of it
#[path = "common/http.rs"]
mod server;

use std::{
    io::Write as _,
    sync::{Arc, Mutex, OnceLock},
};

use axum::{Router, body::Body, http::Request, routing::get};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD},
};
use mcp_dust_server::{
    audit::{AuditEventType, MAX_USER_AGENT_BYTES},
    mask,
    sim::{ECHO_AGENT_ID, HANDBOOK_DS_ID},
};
use regex::Regex;
use serde_json::{Value, json};
use server::{TestServer, parse_mcp_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;
use tracing_subscriber::fmt::MakeWriter;

/// The root secret of the servers of this file: a canary like the others.
const SECRET: &str = "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e1f";

/// A user agent every request of a test sends, to find its audit records.
const AGENT: &str = "audit-log-test/1.0";

const ALL_PERMISSIONS: &str = "read:workspaces,read:agents,execute:agents,read:knowledge-bases,\
write:knowledge-bases,delete:knowledge-bases,read:connectors,admin:metrics";

/// A log sink shared by the whole test binary.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

impl Buffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The process-wide TRACE-level JSON log of this test binary, installed on first use.
fn logs() -> Buffer {
    static LOGS: OnceLock<Buffer> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(mcp_dust_server::telemetry::filter("trace"))
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(buffer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        buffer
    })
    .clone()
}

async fn start(extra: &[(&str, &str)]) -> TestServer {
    logs();
    let mut env = vec![
        ("SECURITY_SECRET_KEY", SECRET),
        ("PERMISSIONS_DEFAULT", ALL_PERMISSIONS),
        ("LOG_LEVEL", "trace"),
        ("LOG_REQUEST_BODY", "true"),
        ("LOG_REQUEST_HEADERS", "true"),
        ("LOG_RESPONSE_BODY", "true"),
        ("LOG_RESPONSE_HEADERS", "true"),
    ];
    env.extend_from_slice(extra);
    TestServer::start_with(&env).await
}

/// A JSON-RPC request to /mcp with the test user agent: status and body text.
async fn mcp(srv: &TestServer, token: &str, body: Value) -> (u16, String) {
    let response = srv
        .http
        .post(srv.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("User-Agent", AGENT)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn call(srv: &TestServer, token: &str, tool: &str, arguments: Value) -> (u16, String) {
    mcp(
        srv,
        token,
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
               "params": {"name": tool, "arguments": arguments}}),
    )
    .await
}

async fn login(srv: &TestServer, body: Value) -> (u16, String) {
    let response = srv
        .http
        .post(srv.url("/api/v1/auth/login"))
        .header("User-Agent", AGENT)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn token_of(srv: &TestServer) -> String {
    let (status, body) = login(
        srv,
        json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id(),
               "email": "alice@example.com", "username": "alice"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The audit records, each as the JSON line the file sink writes.
async fn audit_lines(srv: &TestServer) -> Vec<String> {
    srv.state.auditor.flush().await;
    srv.audit
        .records()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect()
}

/// The forms a leaked secret would take: raw, base64 (both alphabets, padded or not) and
/// URL-encoded.
fn encodings(secret: &str) -> Vec<String> {
    let mut forms = vec![
        secret.to_owned(),
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        urlencoding::encode(secret).into_owned(),
    ];
    forms.sort();
    forms.dedup();
    forms
}

/// Panics if any haystack holds any form of any canary.
fn assert_no_canary(what: &str, haystacks: &[String], canaries: &[(&str, &str)]) {
    for (name, canary) in canaries {
        for form in encodings(canary) {
            for (i, haystack) in haystacks.iter().enumerate() {
                assert!(
                    !haystack.contains(&form),
                    "{what} #{i} leaks the {name} (as {form:?})"
                );
            }
        }
    }
}

fn assert_no_secret_shapes(what: &str, haystacks: &[String]) {
    let key = Regex::new(r"sk-[A-Za-z0-9]{16,}").unwrap();
    let jwt = Regex::new(r"eyJ[\w-]+\.eyJ").unwrap();
    for haystack in haystacks {
        for re in [&key, &jwt] {
            assert!(
                re.find(haystack).is_none(),
                "{what} holds something shaped like a secret: {:?}",
                re.find(haystack).map(|m| m.as_str())
            );
        }
    }
}

#[tokio::test]
async fn l1_canary_sweep_finds_no_secret_in_logs_audit_or_bodies() {
    let srv = start(&[]).await;
    let key = srv.sim.api_key().to_owned();
    let refused_key = "sk-c4nary0000000000000000000000000ff";
    let message_canary = "CANARY-MESSAGE-5e1f0c";
    let mut bodies = Vec::new();

    let (status, login_body) = login(
        &srv,
        json!({"apiKey": key, "workspaceId": srv.sim.workspace_id(), "username": "alice"}),
    )
    .await;
    assert_eq!(status, 200);
    let jwt = serde_json::from_str::<Value>(&login_body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bad_token = jwt.clone();
    let last = bad_token.pop().unwrap();
    bad_token.push(if last == 'A' { 'B' } else { 'A' });

    for body in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "sweep", "version": "1"}}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
    ] {
        bodies.push(mcp(&srv, &jwt, body).await.1);
    }
    let (status, answer) = call(
        &srv,
        &jwt,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": format!("hello {message_canary}")}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    bodies.push(answer);
    bodies.push(
        call(
            &srv,
            &jwt,
            "search_knowledge",
            json!({"query": "vacation policy"}),
        )
        .await
        .1,
    );
    bodies.push(call(&srv, &jwt, "get_workspace", json!({})).await.1);
    let (status, body) = call(&srv, &bad_token, "list_agents", json!({})).await;
    assert_eq!(status, 401);
    bodies.push(body);
    let (status, body) = mcp(
        &srv,
        &key,
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
    )
    .await;
    assert_eq!(status, 401, "a Dust key is not a bearer token");
    bodies.push(body);
    let (status, body) = login(
        &srv,
        json!({"apiKey": refused_key, "workspaceId": srv.sim.workspace_id()}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    bodies.push(body);
    let response = srv
        .http
        .post(srv.url("/api/v1/auth/logout"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    bodies.push(response.text().await.unwrap());
    let (status, body) = call(&srv, &jwt, "list_agents", json!({})).await;
    assert_eq!(status, 401, "revoked");
    bodies.push(body);

    let audit = audit_lines(&srv).await;
    srv.shutdown().await;
    let log_text = logs().text();
    assert!(
        log_text.contains("\"level\":\"TRACE\"") || log_text.contains("\"level\":\"DEBUG\""),
        "the capture did not work"
    );
    let log_lines: Vec<String> = log_text.lines().map(str::to_owned).collect();
    let canaries = [
        ("API key", key.as_str()),
        ("refused API key", refused_key),
        ("JWT", jwt.as_str()),
        ("tampered JWT", bad_token.as_str()),
        ("root secret", SECRET),
    ];
    assert_no_canary("log line", &log_lines, &canaries);
    assert_no_canary("audit record", &audit, &canaries);
    assert_no_canary("response body", &bodies, &canaries);
    // The login answer carries the token, and nothing else secret.
    assert_no_canary(
        "login body",
        &[login_body],
        &[("API key", &key), ("root secret", SECRET)],
    );
    assert_no_secret_shapes("log line", &log_lines);
    assert_no_secret_shapes("audit record", &audit);
    // The audit trail never holds the text of a message (see below for the log).
    assert_no_canary("audit record", &audit, &[("message", message_canary)]);
}

/// L1, request bodies: never logged unless body logging is turned on, whatever `LOG_LEVEL`
/// says (STYLE 13).
#[tokio::test]
async fn l1_request_bodies_never_reach_the_log() {
    // Body logging off (the default): whatever LOG_LEVEL says, no body reaches the log.
    let srv = start(&[
        ("LOG_REQUEST_BODY", "false"),
        ("LOG_RESPONSE_BODY", "false"),
    ])
    .await;
    let token = token_of(&srv).await;
    let canary = "CANARY-BODY-8d2a41";
    let (status, _) = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": format!("hello {canary}")}),
    )
    .await;
    assert_eq!(status, 200);
    srv.shutdown().await;
    let leaks: Vec<String> = logs()
        .text()
        .lines()
        .filter(|l| l.contains(canary))
        .map(str::to_owned)
        .collect();
    assert!(leaks.is_empty(), "a request body in the log: {leaks:#?}");
}

/// L2: credential headers are marked sensitive before the trace layer sees them, and the
/// masking of headers shows the `[REDACTED]` marker.
#[tokio::test]
async fn l2_credential_headers_are_sensitive_and_redacted() {
    let srv = start(&[]).await;
    let router = Router::new().route(
        "/probe",
        get(|headers: axum::http::HeaderMap| async move {
            let sensitive: Vec<String> = ["authorization", "cookie", "proxy-authorization"]
                .iter()
                .filter(|name| headers.get(**name).is_some_and(|v| v.is_sensitive()))
                .map(|name| (*name).to_owned())
                .collect();
            sensitive.join(",")
        }),
    );
    let app = mcp_dust_server::http::apply_middleware(&srv.state, router);
    let response = app
        .oneshot(
            Request::get("/probe")
                .header("Host", "127.0.0.1")
                .header("Authorization", "Bearer l2-canary-token")
                .header("Cookie", "mcp.sid=l2-canary-session")
                .header("Proxy-Authorization", "Basic bDI6Y2FuYXJ5")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"authorization,cookie,proxy-authorization");

    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [
        ("authorization", "Bearer l2-canary-token"),
        ("cookie", "mcp.sid=l2-canary-session"),
        ("set-cookie", "mcp.sid=l2-canary-session; HttpOnly"),
        ("x-xsrf-token", "l2-canary-xsrf"),
        ("proxy-authorization", "Basic bDI6Y2FuYXJ5"),
        ("user-agent", "curl/8"),
    ] {
        headers.insert(name, value.parse().unwrap());
    }
    let masked = mask::mask_headers(&headers);
    for (name, value) in &masked {
        if name == "user-agent" {
            assert_eq!(value, "curl/8");
        } else {
            assert!(value.contains(mask::REDACTED), "{name}: {value}");
            assert!(
                !value.contains("l2-canary") && !value.contains("bDI6"),
                "{name}: {value}"
            );
        }
    }

    // Over the wire too: neither header reaches a log line or an audit record.
    let response = srv
        .http
        .get(srv.url("/metrics"))
        .header("Authorization", "Bearer l2-wire-canary.eyJx.eyJy")
        .header("Cookie", "mcp.sid=l2-wire-session-canary")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let audit = audit_lines(&srv).await;
    srv.shutdown().await;
    let haystacks = [logs().text(), audit.join("\n")];
    assert_no_canary(
        "log or audit",
        &haystacks,
        &[
            ("bearer", "l2-wire-canary"),
            ("cookie", "l2-wire-session-canary"),
        ],
    );
}

/// L3: secrets in the query string never reach a log line or an audit record.
#[tokio::test]
async fn l3_query_string_secrets_are_masked() {
    let srv = start(&[]).await;
    let token = token_of(&srv).await;
    for path in [
        "/mcp?token=l3canaryTokenValue",
        "/mcp?access_token=l3canaryAccessToken",
        "/metrics?apiKey=l3canaryApiKeyValue",
        "/api/v1/auth/login?apiKey=l3canaryLoginKey",
        "/nowhere?key=l3canaryKeyValue",
    ] {
        let response = srv
            .http
            .post(srv.url(path))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .header("User-Agent", AGENT)
            .bearer_auth(if path.starts_with("/mcp") { "" } else { &token })
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert!(status >= 400, "{path}: {status}");
        assert!(!body.contains("l3canary"), "{path} echoed: {body}");
    }
    let audit = audit_lines(&srv).await;
    srv.shutdown().await;
    let login_refusals: Vec<&String> = audit
        .iter()
        .filter(|r| r.contains("key_in_query"))
        .collect();
    assert_eq!(login_refusals.len(), 1, "{audit:?}");
    assert!(
        !logs().text().contains("l3canary") && !audit.join("\n").contains("l3canary"),
        "a query-string secret was logged"
    );
    let masked = mask::sanitize_url_for_log(
        "/x?token=a1&access_token=b2&apiKey=c3&key=d4&jwt=e5&q=visible",
        1024,
    );
    for value in ["a1", "b2", "c3", "d4", "e5"] {
        assert!(!masked.contains(&format!("={value}")), "{masked}");
    }
    assert!(masked.contains("q=visible"), "{masked}");
}

/// L4: no state struct prints a secret in its `Debug` output.
#[tokio::test]
async fn l4_debug_output_shows_no_secret() {
    let srv = start(&[]).await;
    let token = token_of(&srv).await;
    let (principal, record) = mcp_dust_server::http::auth::principal_from_token(&srv.state, &token)
        .await
        .unwrap();
    let keys = &srv.state.keys;
    let derived: Vec<String> = [
        keys.jwt_signing(),
        keys.csrf_signing(),
        keys.at_rest(),
        keys.fingerprint(),
    ]
    .iter()
    .flat_map(|k| {
        [
            hex::encode(k),
            STANDARD.encode(k),
            URL_SAFE_NO_PAD.encode(k),
        ]
    })
    .collect();
    let outputs = [
        format!("{:?}", srv.state.config),
        format!("{:#?}", srv.state.config),
        format!("{:?}", srv.state),
        format!("{:?}", *srv.state),
        format!("{principal:?}"),
        format!("{principal:#?}"),
        format!("{:?}", principal.credentials),
        format!("{record:?}"),
        format!("{keys:?}"),
        format!("{:?}", srv.state.jwt),
        format!("{:?}", srv.state.cipher),
        format!("{:?}", srv.state.ops),
    ];
    let key = srv.sim.api_key().to_owned();
    assert_no_canary(
        "Debug output",
        &outputs,
        &[("API key", &key), ("root secret", SECRET), ("JWT", &token)],
    );
    for output in &outputs {
        for secret in &derived {
            assert!(
                !output.contains(secret.as_str()),
                "a derived key in {output}"
            );
        }
        let sealed = URL_SAFE_NO_PAD.encode(&record.sealed_key);
        assert!(!output.contains(&sealed), "the sealed key in {output}");
    }
    srv.shutdown().await;
}

async fn boom() -> &'static str {
    panic!("l5-panic-detail sk-l5canary0000000000000000000000 at /secret/path")
}

/// L5: a handler that fails hard answers a generic body (no panic text, no secret) with the
/// request id, and the server keeps serving.
#[tokio::test]
async fn l5_internal_error_is_generic_and_the_server_survives() {
    let srv = start(&[]).await;
    let router = Router::new()
        .route("/boom", get(boom))
        .route("/ok", get(|| async { "ok" }));
    let app = mcp_dust_server::http::apply_middleware(&srv.state, router);
    let response = app
        .clone()
        .oneshot(
            Request::get("/boom")
                .header("Host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 500);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!request_id.is_empty());
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"]["code"], "internal_error", "{body}");
    let text = body.to_string();
    assert!(
        !text.contains("l5-panic") && !text.contains("sk-") && !text.contains("/secret/path"),
        "{text}"
    );
    assert!(
        body["error"]["requestId"].is_null() || body["error"]["requestId"] == request_id.as_str(),
        "{body}"
    );
    let response = app
        .oneshot(
            Request::get("/ok")
                .header("Host", "127.0.0.1")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the server did not survive a panic");

    // The REST error path carries the request id in the body.
    let response = srv
        .http
        .get(srv.url("/metrics"))
        .header("x-request-id", "l5-request-id")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["requestId"], "l5-request-id");
    srv.shutdown().await;
    assert!(
        !logs().text().contains("sk-l5canary"),
        "the panic message reached the log unmasked"
    );
}

/// Sends raw bytes to the server and returns what it answers (the connection is closed).
async fn raw_http(srv: &TestServer, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// L6: forged lines and terminal escapes never make it into the trail as themselves.
#[tokio::test]
async fn l6_log_injection_stays_one_escaped_json_line() {
    let srv = start(&[]).await;
    let token = token_of(&srv).await;
    let forged = "x\r\n{\"level\":\"error\",\"msg\":\"admin login\"}\u{1b}[31m\u{2028}\u{202e}";

    // CR/LF in a header cannot even be sent as one header: the server refuses the request.
    let mut request = Vec::new();
    write!(
        request,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: x\r\n{{\"level\":\"error\",\"msg\":\"admin login\"}}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let answer = raw_http(&srv, &request).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    // An ESC byte in a header value is refused the same way.
    let answer = raw_http(
        &srv,
        b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: x\x1b[31mred\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "ESC in a header: {answer}"
    );
    // `%0a` in the path stays encoded.
    let answer = raw_http(
        &srv,
        b"GET /mcp%0a%7B%22level%22:%22error%22%7D HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    // Through tool arguments, which do reach the audit trail (the resource id of the call).
    let (_, body) = call(&srv, &token, "get_agent", json!({"agentId": forged})).await;
    assert_eq!(parse_mcp_body(&body)["error"]["code"], -32602, "{body}");
    let (_, body) = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": format!("{forged} <script>alert(1)</script>")}),
    )
    .await;
    assert!(parse_mcp_body(&body)["result"].is_object(), "{body}");
    // And in an asserted username at login: refused, printable labels only.
    let (status, _) = login(
        &srv,
        json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id(), "username": forged}),
    )
    .await;
    assert_eq!(status, 400);

    let audit = audit_lines(&srv).await;
    srv.shutdown().await;
    assert!(!audit.is_empty());
    let mut saw_escaped = false;
    for line in &audit {
        assert!(
            !line.contains('\n')
                && !line.contains('\r')
                && !line.contains('\u{1b}')
                && !line.contains('\u{2028}')
                && !line.contains('\u{202e}'),
            "a raw control character in {line:?}"
        );
        let record: Value = serde_json::from_str(line).unwrap();
        assert_ne!(record["message"], "admin login", "a forged record: {line}");
        assert!(record.get("level").is_none(), "a forged field: {line}");
        if let Some(id) = record["resource_id"].as_str()
            && id.contains("admin login")
        {
            assert!(id.contains("\\r\\n") && id.contains("\\u{001b}"), "{id}");
            saw_escaped = true;
        }
    }
    assert!(
        saw_escaped,
        "the forged id was not recorded escaped: {audit:#?}"
    );
    for line in logs().text().lines() {
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line is not one JSON object ({e}): {line:?}"));
        assert_ne!(record["fields"]["message"], "admin login", "{line}");
    }
}

/// Asserts the fields every request-bound record carries.
fn assert_complete(record: &Value, user_known: bool) {
    let timestamp = record["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T'),
        "{record}"
    );
    for field in [
        "event_type",
        "severity",
        "message",
        "ip",
        "method",
        "path",
        "request_id",
    ] {
        assert!(
            record[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field} missing in {record}"
        );
    }
    assert_eq!(record["ip"], "127.0.0.1", "{record}");
    assert_eq!(record["user_agent"], AGENT, "{record}");
    assert!(record["result"].is_string() || record["event_type"] == "malicious_input");
    if user_known {
        assert!(
            record["user_id"]
                .as_str()
                .is_some_and(|u| u.starts_with("usr_")),
            "{record}"
        );
    }
}

/// The records of `event_type`, checking there is exactly one.
async fn one(srv: &TestServer, event_type: AuditEventType) -> Value {
    srv.state.auditor.flush().await;
    let records = srv.audit.of_type(event_type);
    assert_eq!(records.len(), 1, "{}: {records:#?}", event_type.as_str());
    srv.audit.clear();
    records.into_iter().next().unwrap()
}

/// L7: each security event is one record with every field of the guide.
#[tokio::test]
async fn l7_every_security_event_is_one_complete_record() {
    let srv = start(&[]).await;

    let token = token_of(&srv).await;
    let record = one(&srv, AuditEventType::AuthnLoginSuccess).await;
    assert_complete(&record, true);
    assert_eq!(record["result"], "success");
    assert_eq!(record["path"], "/api/v1/auth/login");
    assert_eq!(record["method"], "POST");

    let narrow = {
        let (_, body) = login(
            &srv,
            json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id(),
                   "permissions": ["read:agents"]}),
        )
        .await;
        srv.audit.clear();
        serde_json::from_str::<Value>(&body).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    call(&srv, &narrow, "list_spaces", json!({})).await;
    let record = one(&srv, AuditEventType::AuthzFail).await;
    assert_complete(&record, true);
    assert_eq!(record["path"], "/mcp");
    assert_eq!(record["result"], "denied");
    assert_eq!(record["resource_type"], "tool");

    call(&srv, &token, "list_agents", json!({})).await;
    let record = one(&srv, AuditEventType::ResourceAccess).await;
    assert_complete(&record, true);
    assert_eq!(record["action"], "list_agents");
    assert_eq!(record["result"], "success");

    let (_, body) = call(
        &srv,
        &token,
        "upsert_document",
        json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "l7-doc", "text": "hello"}),
    )
    .await;
    assert!(parse_mcp_body(&body)["result"]["isError"] != true, "{body}");
    let record = one(&srv, AuditEventType::ResourceModified).await;
    assert_complete(&record, true);
    assert_eq!(record["action"], "upsert_document");
    assert_eq!(record["resource_id"], "l7-doc");

    // Suspicious free text: noted once, low severity, and passed to Dust byte for byte (V11).
    let question = "How do I write SELECT * FROM users WHERE id=1 OR 1=1; -- ? \
                    explain <script>alert(1)</script>";
    let (status, body) = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": question}),
    )
    .await;
    assert_eq!(status, 200);
    assert!(parse_mcp_body(&body)["result"]["isError"] != true, "{body}");
    let record = one(&srv, AuditEventType::MaliciousInput).await;
    assert_complete(&record, true);
    assert_eq!(record["severity"], "low");
    let escaped = serde_json::to_string(question).unwrap();
    let escaped = &escaped[1..escaped.len() - 1];
    assert!(
        srv.sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.body_text().contains(escaped)),
        "the question did not reach Dust unchanged"
    );

    call(
        &srv,
        "eyJhbGciOiJIUzI1NiJ9.eyJ4IjoxfQ.c2ln",
        "list_agents",
        json!({}),
    )
    .await;
    let record = one(&srv, AuditEventType::AuthnTokenInvalid).await;
    assert_complete(&record, false);
    assert_eq!(record["result"], "denied");
    assert_eq!(record["path"], "/mcp");

    let (status, _) = login(
        &srv,
        json!({"apiKey": "sk-l7unknownKey00000000000000000000", "workspaceId": srv.sim.workspace_id()}),
    )
    .await;
    assert_eq!(status, 401);
    let record = one(&srv, AuditEventType::AuthnLoginFail).await;
    assert_complete(&record, false);
    assert_eq!(record["result"], "failure");
    srv.shutdown().await;
}

/// L8: an oversized user agent is cut in the record (or refused by the server before any
/// handler when it exceeds the header limit). That an audit burst never blocks a request is
/// covered by the unit test `audit::tests::a_full_queue_drops_counts_and_never_blocks`.
#[tokio::test]
async fn l8_oversized_user_agent_is_truncated() {
    let srv = start(&[]).await;
    let huge = "A".repeat(1024 * 1024);
    let response = srv
        .http
        .get(srv.url("/metrics"))
        .header("User-Agent", &huge)
        .bearer_auth("not-a-token")
        .send()
        .await;
    if let Ok(response) = response {
        assert!(
            response.status().is_client_error(),
            "a 1 MB header: {}",
            response.status()
        );
    }
    let big = "B".repeat(64 * 1024);
    let response = srv
        .http
        .get(srv.url("/metrics"))
        .header("User-Agent", &big)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    srv.state.auditor.flush().await;
    let records = srv.audit.of_type(AuditEventType::AuthnTokenInvalid);
    let record = records
        .iter()
        .find(|r| {
            r["user_agent"]
                .as_str()
                .is_some_and(|ua| ua.starts_with("BBB"))
        })
        .expect("the refusal was audited");
    let ua = record["user_agent"].as_str().unwrap();
    assert!(
        ua.len() < MAX_USER_AGENT_BYTES + 64,
        "{} bytes kept",
        ua.len()
    );
    assert!(ua.contains("truncated"), "{ua}");
    for record in srv.audit.records() {
        assert!(serde_json::to_string(&record).unwrap().len() < 16 * 1024);
    }
    srv.shutdown().await;
}

/// L9: an issued token's payload holds no Dust key, no email and no secret.
#[tokio::test]
async fn l9_jwt_payload_holds_no_key_email_or_secret() {
    let srv = start(&[]).await;
    let token = token_of(&srv).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let claims: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&header).unwrap()["alg"],
        "HS256"
    );
    for secret in [srv.sim.api_key(), SECRET, "alice@example.com"] {
        assert!(!payload.contains(secret), "{payload}");
    }
    assert!(claims.get("email").is_none(), "{payload}");
    assert!(!payload.contains("sk-"), "{payload}");
    assert!(claims["userId"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(claims["workspaceId"], srv.sim.workspace_id());
    srv.shutdown().await;
}

/// L10: debug logging in production is flagged by a warning record at startup.
#[tokio::test]
async fn l10_debug_logging_in_production_is_audited() {
    let srv = TestServer::start_with(&[
        ("NODE_ENV", "production"),
        ("LOG_LEVEL", "debug"),
        ("SECURITY_SECRET_KEY", SECRET),
    ])
    .await;
    srv.state.auditor.flush().await;
    let warnings = srv.audit.of_type(AuditEventType::ConfigWarning);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0]["severity"], "medium");
    srv.shutdown().await;

    let srv =
        TestServer::start_with(&[("NODE_ENV", "production"), ("SECURITY_SECRET_KEY", SECRET)])
            .await;
    srv.state.auditor.flush().await;
    assert!(srv.audit.of_type(AuditEventType::ConfigWarning).is_empty());
    srv.shutdown().await;
}
