//! Malformed input on /mcp (catalogue V1–V7, V11): a precise status and JSON-RPC error, no
//! element executed, nothing sent to Dust; and free text that looks like an attack reaches Dust
//! byte for byte.

use crate::common::http as http_harness;

use http_harness::TestServer;
use mcp_dust_server::sim::ECHO_AGENT_ID;
use serde_json::{Value, json};

async fn raw(server: &TestServer, token: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/mcp"))
        .bearer_auth(token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn malformed_messages_get_precise_json_rpc_errors_and_run_nothing() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    let upstream_before = server.sim.requests().len();
    let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_agents","arguments":{}}}"#;
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let cases: Vec<(&str, Vec<u8>, u16, i64)> = vec![
        (
            "batch",
            format!("[{}]", String::from_utf8_lossy(call)).into_bytes(),
            400,
            -32600,
        ),
        ("empty batch", b"[]".to_vec(), 400, -32600),
        (
            "10,000 batch",
            format!(
                "[{}]",
                vec![String::from_utf8_lossy(call); 10_000].join(",")
            )
            .into_bytes(),
            400,
            -32600,
        ),
        ("deep nesting", deep.into_bytes(), 400, -32700),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"x\":\"\xc3\x28\"}".to_vec(),
            400,
            -32700,
        ),
        (
            "lone surrogate",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","x":"\ud800"}"#.to_vec(),
            400,
            -32700,
        ),
        ("not JSON", b"hello".to_vec(), 400, -32700),
        ("a string", br#""tools/list""#.to_vec(), 400, -32600),
        (
            "duplicate method",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#.to_vec(),
            400,
            -32600,
        ),
        (
            "params not an object",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}"#.to_vec(),
            400,
            -32602,
        ),
    ];
    for (case, body, status, code) in cases {
        let (got, answer) = raw(&server, &token, "application/json", body).await;
        assert_eq!(got, status, "{case}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{case}: {answer}");
    }
    // A posted JSON-RPC response and an unknown method.
    let (got, answer) = raw(
        &server,
        &token,
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#.to_vec(),
    )
    .await;
    assert_eq!(got, 400, "{answer}");
    let (_, answer) = raw(
        &server,
        &token,
        "application/json",
        br#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#.to_vec(),
    )
    .await;
    assert_eq!(answer["error"]["code"], -32601);
    assert_eq!(
        server.sim.requests().len(),
        upstream_before,
        "Dust was called"
    );
}

#[tokio::test]
async fn content_negotiation_and_size() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let (got, _) = raw(&server, &token, content_type, list.clone()).await;
        assert_eq!(got, 415, "{content_type}");
    }
    let response = server
        .http
        .post(server.url("/mcp"))
        .bearer_auth(&token)
        .header("Accept", "text/html")
        .header("Content-Type", "application/json")
        .body(list)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 406);
    let big = vec![b' '; 9 * 1024 * 1024];
    let (got, _) = raw(&server, &token, "application/json", big).await;
    assert_eq!(got, 413);
}

#[tokio::test]
async fn v11_free_text_that_looks_like_an_attack_reaches_dust_unchanged() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    for text in [
        "How do I write SELECT * FROM users WHERE id=1 OR 1=1; -- ?",
        "explain <script>alert(1)</script>",
        "Robert'); DROP TABLE students;-- \u{202e} ｆｕｌｌ \u{0}",
    ] {
        let (status, body) = server
            .call_tool(
                &token,
                "ask_agent",
                json!({"agentId": ECHO_AGENT_ID, "message": text}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            body["result"]["structuredContent"]["answer"],
            format!("You said: {text}"),
            "{body}"
        );
        let sent = server
            .sim
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/assistant/conversations"))
            .last()
            .unwrap();
        let sent: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(sent["message"]["content"], text);
    }
    server.state.auditor.flush().await;
    let flagged = server
        .audit
        .of_type(mcp_dust_server::audit::AuditEventType::MaliciousInput);
    assert!(flagged.len() >= 2, "suspicious text is noted, log-only");
}

/// Sends `request` as is on a fresh connection and reads until the server closes (5 s at most).
async fn exchange(server: &TestServer, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

/// How many HTTP answers a raw exchange carried.
fn answers(raw: &str) -> usize {
    raw.matches("HTTP/1.1 ").count()
}

/// V9: CR, NUL or an obs-fold in an inbound header, and V10: two different `Content-Length`
/// values, are refused with 400 by the HTTP parser before any handler runs; the tool call in
/// the body never reaches Dust, and nothing injected comes back.
#[tokio::test]
async fn v9_v10_bad_header_framing_gets_400_and_reaches_nothing() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    let upstream_before = server.sim.requests().len();
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_agents","arguments":{}}}"#;
    let len = call.len();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2025-11-25\r\n"
    );
    let cases = [
        (
            "obs-fold",
            format!("X-Folded: a\r\n b\r\nContent-Length: {len}\r\n\r\n{call}"),
        ),
        (
            "bare CR",
            format!("X-Evil: a\rSet-Cookie: x=y\r\nContent-Length: {len}\r\n\r\n{call}"),
        ),
        (
            "NUL",
            format!("X-Evil: a\0b\r\nContent-Length: {len}\r\n\r\n{call}"),
        ),
        (
            "two Content-Length values",
            format!(
                "Content-Length: {len}\r\nContent-Length: {}\r\n\r\n{call}",
                len + 5
            ),
        ),
    ];
    for (label, rest) in cases {
        let raw = exchange(&server, format!("{head}{rest}").as_bytes()).await;
        assert!(raw.starts_with("HTTP/1.1 400 "), "{label}: {raw}");
        assert_eq!(answers(&raw), 1, "{label}: {raw}");
        assert!(!raw.to_ascii_lowercase().contains("set-cookie"), "{label}");
    }
    assert_eq!(
        server.sim.requests().len(),
        upstream_before,
        "a malformed request reached Dust"
    );
}

/// V10: `Content-Length` together with `Transfer-Encoding: chunked`, in either order. hyper
/// frames the body by `Transfer-Encoding` alone and closes the connection after the answer
/// (RFC 9112 §6.1), so a request smuggled after the chunked body is never parsed: here a
/// login that would have reached Dust gets no answer and Dust sees nothing.
#[tokio::test]
async fn v10_content_length_with_transfer_encoding_smuggles_nothing() {
    let server = TestServer::start().await;
    let login = serde_json::to_string(
        &json!({"apiKey": server.sim.api_key(), "workspaceId": server.sim.workspace_id()}),
    )
    .unwrap();
    let smuggled = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{login}",
        login.len()
    );
    let body = format!("0\r\n\r\n{smuggled}");
    let framing = [
        format!(
            "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
            body.len()
        ),
        format!(
            "Transfer-Encoding: chunked\r\nContent-Length: {}\r\n",
            body.len()
        ),
    ];
    for framing in framing {
        let request = format!(
            "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
             Content-Type: application/json\r\n{framing}\r\n{body}"
        );
        let raw = exchange(&server, request.as_bytes()).await;
        assert!(raw.starts_with("HTTP/1.1 400 "), "{framing}: {raw}");
        assert_eq!(answers(&raw), 1, "the smuggled request was answered: {raw}");
        assert!(!raw.contains("\"token\""), "{raw}");
    }
    assert!(
        server.sim.requests().is_empty(),
        "the smuggled login reached Dust"
    );
}

/// V12: markup in a 404 path or in an unknown tool name is never reflected as HTML: the
/// answer is the JSON envelope (or a JSON-RPC error), `application/json`, with `nosniff`.
#[tokio::test]
async fn v12_markup_in_paths_and_names_is_not_reflected() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    for path in [
        "/%3Csvg%20onload=alert(1)%3E",
        "/api/v1/%3Cscript%3Ealert(1)%3C/script%3E",
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}");
        let text = body.to_string().to_ascii_lowercase();
        assert!(
            !text.contains("<svg") && !text.contains("<script"),
            "{text}"
        );
        assert!(!text.contains("svg") && !text.contains("script"), "{text}");
    }
    // Raw markup in the request target is not even a valid URI.
    let raw = exchange(
        &server,
        b"GET /<script>alert(1)</script> HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        raw.starts_with("HTTP/1.1 400 ") || raw.starts_with("HTTP/1.1 404 "),
        "{raw}"
    );
    assert!(!raw.contains("<script>"), "{raw}");
    assert!(!raw.to_ascii_lowercase().contains("text/html"), "{raw}");

    let name = "<script>alert(1)</script>";
    let response = server
        .http
        .post(server.url("/mcp"))
        .bearer_auth(&token)
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": {}}}))
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].is_object() || body["result"]["isError"] == json!(true),
        "{body}"
    );
}

/// rmcp's own refusals on /mcp (wrong Accept, wrong Content-Type, GET, DELETE) come in the
/// project's JSON envelope with their status kept, and `Allow: POST` on the 405s.
#[tokio::test]
async fn rmcp_refusals_use_the_json_error_envelope() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.to_vec();
    let cases = [
        (
            reqwest::Method::POST,
            "text/html",
            "application/json",
            406,
            "not_acceptable",
        ),
        (
            reqwest::Method::POST,
            "application/json, text/event-stream",
            "text/plain",
            415,
            "unsupported_media_type",
        ),
        (
            reqwest::Method::GET,
            "text/event-stream",
            "application/json",
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::DELETE,
            "application/json, text/event-stream",
            "application/json",
            405,
            "method_not_allowed",
        ),
    ];
    for (method, accept, content_type, status, code) in cases {
        let label = format!("{method} Accept={accept} Content-Type={content_type}");
        let mut request = server
            .http
            .request(method.clone(), server.url("/mcp"))
            .bearer_auth(&token)
            .header("Accept", accept)
            .header("MCP-Protocol-Version", "2025-11-25")
            .header("Content-Type", content_type);
        if method == reqwest::Method::POST {
            request = request.body(list.clone());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{label}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json", "{label}");
        if status == 405 {
            assert_eq!(headers["allow"], "POST", "{label}");
        }
        let request_id = headers["x-request-id"].to_str().unwrap().to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{label}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{label}: {body}"
        );
        assert_eq!(body["error"]["requestId"], request_id.as_str(), "{label}");
    }
}
