//! Malformed input on /mcp (catalogue V1–V7, V11): a precise status and JSON-RPC error, no
//! element executed, nothing sent to Dust; and free text that looks like an attack reaches Dust
//! byte for byte.

#[path = "common/http.rs"]
#[allow(dead_code)]
mod http_harness;

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
