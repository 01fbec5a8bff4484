//! Graceful shutdown: once the stop signal arrives the server accepts no new connection, but a
//! tool call already running finishes and its caller gets the whole answer.

use crate::common::http as http_harness;

use std::time::Duration;

use mcp_dust_server::sim::SLOW_AGENT_ID;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn in_flight_tool_call_finishes_after_the_stop_signal() {
    let mut server = http_harness::TestServer::start().await;
    let token = server.token(None).await;
    let base = server.base.clone();
    let http = server.http.clone();
    let call = tokio::spawn({
        let token = token.clone();
        async move {
            let response = http
                .post(format!("{base}/mcp"))
                .bearer_auth(&token)
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", "2025-11-25")
                .json(
                    &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
                    "name": "ask_agent",
                    "arguments": {"agentId": SLOW_AGENT_ID, "message": "finish this"}}}),
                )
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                http_harness::parse_mcp_body(&response.text().await.unwrap()),
            )
        }
    });
    // Wait until the agent is running in the simulator.
    for _ in 0..500 {
        if server
            .sim
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/events"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let addr = server.addr;
    let sim_requests_before = server.sim.requests().len();
    server.stop_accepting();

    let (status, body) = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the in-flight call did not finish")
        .unwrap();
    assert_eq!(status, 200);
    let result = &body["result"];
    assert_ne!(result["isError"], json!(true), "{body}");
    assert!(
        result["structuredContent"]["answer"]
            .as_str()
            .is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    assert!(sim_requests_before > 0);

    // New connections are refused once the server has stopped.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
