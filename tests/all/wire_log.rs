//! Opt-in request/response logging is masked: with every `LOG_REQUEST_*`/`LOG_RESPONSE_*` on
//! and tracing at TRACE, the log shows the traffic but never the API key, the JWT or the
//! `Authorization` header's value (catalogue L1, L2).

use crate::common::http as http_harness;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use serde_json::json;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wire_logging_masks_keys_and_tokens() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let server = http_harness::TestServer::start_with(&[
        ("LOG_REQUEST_HEADERS", "true"),
        ("LOG_REQUEST_BODY", "true"),
        ("LOG_RESPONSE_HEADERS", "true"),
        ("LOG_RESPONSE_BODY", "true"),
    ])
    .await;
    let key = server.sim.api_key().to_owned();
    let token = server.token(None).await;
    let (status, body) = server.call_tool(&token, "list_agents", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let refused = server
        .login_with(json!({"apiKey": "sk-ffffffffffffffffffffffffffffffff", "workspaceId": server.sim.workspace_id()}))
        .await;
    assert_eq!(refused.status(), 401);
    server.shutdown().await;

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request body"), "no request body logged");
    assert!(
        logs.contains("response headers"),
        "no response headers logged"
    );
    assert!(logs.contains("[REDACTED]"), "nothing was masked");
    for secret in [
        key.as_str(),
        token.as_str(),
        "sk-ffffffffffffffffffffffffffffffff",
    ] {
        assert!(!logs.contains(secret), "a secret reached the log");
    }
    let jwt_shape = regex::Regex::new(r"eyJ[\w-]+\.eyJ").unwrap();
    assert!(!jwt_shape.is_match(&logs), "a JWT reached the log");
    let key_shape = regex::Regex::new(r"sk-[A-Za-z0-9]{16,}").unwrap();
    assert!(!key_shape.is_match(&logs), "a key reached the log");
}
