//! OpenTelemetry traces of the real binary (issue 21, item 1): `mcp-dust-server serve` runs as a
//! child process against an in-process simulator, with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at
//! an OTLP/HTTP receiver in this test that decodes the protobuf it is sent.
//!
//! - One `ask_agent` tools/call with a W3C `traceparent`: the HTTP server span continues the
//!   client's trace (its trace id, the client's span as its parent); the MCP `tools/call` span,
//!   the tool's span and the Dust calls (creating the conversation, its attempt, the event stream)
//!   hang below it, with the OpenTelemetry attribute names.
//! - Canaries: the API key, the JWT, a session id, a cookie and a secret in a query string are
//!   sent, and appear nowhere in the exported bytes. The batch delay is long there, so every span
//!   arrives through the flush of a graceful stop (SIGTERM): nothing is lost on the way out.
//!
//! That nothing is installed without an endpoint is a unit test of the decision
//! (`telemetry::otel::wanted`); the other suites run the server without one.

use std::{
    collections::HashMap,
    fs::File,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use mcp_dust_server::sim::{self, ECHO_AGENT_ID, SimConfig, SimHandle};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{AnyValue, any_value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-dust-server");

/// The client's trace: its trace id and the id of its span (the HTTP span's parent).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP receiver: every body posted to `/v1/traces`, as sent.
#[derive(Clone, Default)]
struct Receiver {
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Receiver {
    async fn start() -> (Self, String) {
        let receiver = Self::default();
        let app = Router::new()
            .route("/v1/traces", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, endpoint)
    }

    /// Every exported span, with its resource's `service.name`.
    fn spans(&self) -> Vec<(String, Span)> {
        let mut spans = Vec::new();
        for body in self.bodies.lock().unwrap().iter() {
            let request = ExportTraceServiceRequest::decode(body.clone()).expect("OTLP protobuf");
            for resource_spans in request.resource_spans {
                let service = resource_spans
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(text)
                    .unwrap_or_default();
                for scope in resource_spans.scope_spans {
                    spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
                }
            }
        }
        spans
    }

    /// All the bytes received, for the canaries.
    fn bytes(&self) -> Vec<u8> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .copied()
            .collect()
    }
}

async fn receive(State(receiver): State<Receiver>, body: Bytes) -> &'static [u8] {
    receiver.bodies.lock().unwrap().push(body);
    // An empty ExportTraceServiceResponse: full success.
    &[]
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

/// The server child process, killed on drop.
struct Server {
    child: Child,
    base: String,
    port: u16,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(sim: &SimHandle, endpoint: &str, schedule_delay_ms: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(BIN)
            .arg("serve")
            .env_clear()
            .env("MCP_SERVER_HOST", "127.0.0.1")
            .env("MCP_SERVER_PORT", port.to_string())
            .env("DUST_BASE_URL", sim.base_url())
            .env("AUDIT_LOG_FILE", dir.path().join("audit.log"))
            .env("RATE_LIMIT_MAX", "1000000")
            .env("LOG_LEVEL", "warn")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(dir.path().join("stderr")).unwrap())
            .spawn()
            .expect("start the server binary");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = http.get(format!("{}/ready", server.base)).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not become ready:\n{}",
                server.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    fn stderr_path(&self) -> PathBuf {
        self.dir.path().join("stderr")
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exit {status}:\n{}", self.stderr());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no exit after SIGTERM:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_sim() -> SimHandle {
    mcp_dust_server::dust::install_crypto_provider();
    sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

async fn login(base: &str, sim: &SimHandle) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "apiKey": sim.api_key(), "workspaceId": sim.workspace_id() }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// One `ask_agent` call of the echo agent over HTTP, with the client's `traceparent`.
async fn ask(server: &Server, token: &str, message: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/mcp", server.base))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01"))
        .json(&json!({
            "jsonrpc": "2.0", "id": "call-7", "method": "tools/call",
            "params": { "name": "ask_agent",
                        "arguments": { "agentId": ECHO_AGENT_ID, "message": message } },
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["result"]["isError"], json!(false), "{body}");
}

/// Waits until a span named `name` has been received.
async fn wait_for_span(receiver: &Receiver, name: &str, server: &Server) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !receiver.spans().iter().any(|(_, s)| s.name == name) {
        assert!(
            Instant::now() < deadline,
            "no span {name:?} exported; got {:?}:\n{}",
            receiver
                .spans()
                .iter()
                .map(|(_, s)| s.name.clone())
                .collect::<Vec<_>>(),
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_tool_call_is_one_trace_continuing_the_clients() {
    let sim = start_sim().await;
    let (receiver, endpoint) = Receiver::start().await;
    let server = Server::start(&sim, &endpoint, 100).await;
    let token = login(&server.base, &sim).await;
    ask(&server, &token, "hello traces").await;
    wait_for_span(&receiver, "POST /mcp", &server).await;
    wait_for_span(&receiver, "dust event stream", &server).await;

    let spans = receiver.spans();
    let trace_id = hex::decode(TRACE_ID).unwrap();
    let in_trace: Vec<&Span> = spans
        .iter()
        .map(|(_, s)| s)
        .filter(|s| s.trace_id == trace_id)
        .collect();
    let parents: HashMap<&[u8], &[u8]> = in_trace
        .iter()
        .map(|s| (s.span_id.as_slice(), s.parent_span_id.as_slice()))
        .collect();
    let descends = |span: &Span, ancestor: &Span| {
        let mut at = span.parent_span_id.as_slice();
        for _ in 0..64 {
            if at == ancestor.span_id.as_slice() {
                return true;
            }
            match parents.get(at) {
                Some(parent) => at = parent,
                None => return false,
            }
        }
        false
    };
    let one = |name: &str| -> &Span {
        let found: Vec<&&Span> = in_trace.iter().filter(|s| s.name == name).collect();
        assert_eq!(
            found.len(),
            1,
            "one {name:?} span in the client's trace; the trace has {:?}",
            in_trace.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        found[0]
    };

    // The HTTP server span continues the client's trace.
    let http = one("POST /mcp");
    assert_eq!(http.parent_span_id, hex::decode(PARENT_SPAN_ID).unwrap());
    assert_eq!(http.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("http.request.method", "POST"),
        ("http.route", "/mcp"),
        ("url.path", "/mcp"),
        ("url.scheme", "http"),
        ("http.response.status_code", "200"),
        ("server.address", "127.0.0.1"),
    ] {
        assert_eq!(attribute(http, key).as_deref(), Some(value), "{key}");
    }
    assert_eq!(
        attribute(http, "server.port"),
        Some(server.port.to_string())
    );
    let service = spans.iter().find(|(_, s)| s.name == "POST /mcp").unwrap();
    assert_eq!(service.0, "mcp-dust-server");

    // The MCP method, then the tool.
    let mcp = one("tools/call");
    assert!(descends(mcp, http), "tools/call under the HTTP span");
    assert_eq!(
        attribute(mcp, "mcp.method.name").as_deref(),
        Some("tools/call")
    );
    assert_eq!(
        attribute(mcp, "jsonrpc.request.id").as_deref(),
        Some("call-7")
    );
    assert_eq!(
        attribute(mcp, "mcp.protocol.version").as_deref(),
        Some("2025-11-25")
    );
    let tool = one("execute_tool ask_agent");
    assert!(descends(tool, mcp), "the tool span under tools/call");
    assert_eq!(
        attribute(tool, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(
        attribute(tool, "gen_ai.tool.name").as_deref(),
        Some("ask_agent")
    );
    assert_eq!(attribute(tool, "error.type"), None);

    // The Dust calls, below the tool: the conversation, its HTTP attempt, the event stream.
    let create = one("dust create a conversation");
    assert!(
        descends(create, tool),
        "create a conversation under the tool"
    );
    assert_eq!(
        attribute(create, "url.template").as_deref(),
        Some("/assistant/conversations")
    );
    let attempt = in_trace
        .iter()
        .find(|s| s.name == "POST /assistant/conversations")
        .expect("the attempt's span");
    assert_eq!(attempt.parent_span_id, create.span_id);
    assert_eq!(attempt.kind, SpanKind::Client as i32);
    assert_eq!(
        attribute(attempt, "http.response.status_code").as_deref(),
        Some("200")
    );
    assert_eq!(
        attribute(attempt, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    let stream_call = one("dust stream agent events");
    assert!(descends(stream_call, tool));
    let stream = one("dust event stream");
    assert_eq!(stream.parent_span_id, stream_call.span_id);
    assert_eq!(
        attribute(stream, "dust.operation").as_deref(),
        Some("stream agent events")
    );
}

#[tokio::test]
async fn no_secret_reaches_the_exported_spans_and_a_sigterm_flushes_them() {
    let sim = start_sim().await;
    let (receiver, endpoint) = Receiver::start().await;
    // A minute between batches: whatever arrives comes from the flush at the graceful stop.
    let mut server = Server::start(&sim, &endpoint, 60_000).await;
    let token = login(&server.base, &sim).await;
    ask(&server, &token, "hello canaries").await;

    // A session id, a cookie and secrets in query strings, where a client may send them.
    let session = "canary-session-6f1d2c";
    let cookie = "canary-cookie-91ab7e";
    let query = "canary-query-c0ffee";
    let http = reqwest::Client::new();
    let _ = http
        .post(format!("{}/mcp?access_token={query}", server.base))
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("Mcp-Session-Id", session)
        .header("Cookie", format!("mcp_session={cookie}"))
        .json(&json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    let _ = http
        .get(format!(
            "{}/oauth/authorize?code={query}&state={query}",
            server.base
        ))
        .header("Cookie", format!("mcp_session={cookie}"))
        .send()
        .await
        .unwrap();
    let _ = http
        .get(format!("{}/api/v1/status?api_key={query}", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        receiver.bodies.lock().unwrap().is_empty(),
        "nothing is exported before the batch delay"
    );

    server.stop().await;
    let names: Vec<String> = receiver.spans().into_iter().map(|(_, s)| s.name).collect();
    for name in [
        "POST /mcp",
        "tools/call",
        "tools/list",
        "execute_tool ask_agent",
        "dust event stream",
        "GET /api/v1/status",
    ] {
        assert!(
            names.iter().any(|n| n == name),
            "{name:?} flushed at SIGTERM: {names:?}"
        );
    }

    let bytes = receiver.bytes();
    let (payload, signature) = {
        let mut parts = token.split('.');
        parts.next();
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    for (what, canary) in [
        ("the API key", sim.api_key().to_owned()),
        ("the JWT", token.clone()),
        ("the JWT's claims", payload),
        ("the JWT's signature", signature),
        ("the session id", session.to_owned()),
        ("the cookie", cookie.to_owned()),
        ("the query string", query.to_owned()),
        ("the agent message", "hello canaries".to_owned()),
    ] {
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "{what} is in the exported spans"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
