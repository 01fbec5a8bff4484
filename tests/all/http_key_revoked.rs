//! Catalogue J19, permission freshness: when Dust stops accepting a key mid-lifetime, every
//! token holding it is revoked at once, the next request with it is a 401, and the revocation
//! is audited.

use crate::common::http as http_harness;

use std::time::Duration;

use mcp_dust_server::{audit::AuditEventType, sim::Faults};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn j19_tokens_of_a_key_dust_refuses_are_revoked() {
    let server = http_harness::TestServer::start().await;
    let first = server.token(None).await;
    let second = server.token(None).await;
    let (status, body) = server.call_tool(&first, "list_agents", json!({})).await;
    assert_eq!(status, 200);
    assert_ne!(body["result"]["isError"], json!(true), "{body}");

    // The workspace admin revokes the key: Dust now answers 401 to it.
    server.sim.set_faults(Faults {
        error_rate: 1.0,
        error_status: 401,
        ..Faults::default()
    });
    // Not `list_agents` again: its answer is now cached for this principal (AGENT_CACHE_TTL)
    // and would not reach Dust; any call that reaches Dust notices the refused key.
    let (status, body) = server
        .call_tool(&first, "get_agent", json!({"agentId": "dust"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["isError"], json!(true), "{body}");
    server.sim.set_faults(Faults::default());

    // Both tokens of that key die, not only the one that noticed.
    let mut refused = false;
    for _ in 0..100 {
        let (status, _) = server
            .mcp(
                Some(&second),
                json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            )
            .await;
        if status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "a token of a refused key still works");
    let (status, _) = server
        .mcp(
            Some(&first),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await;
    assert_eq!(status, 401);

    server.state.auditor.flush().await;
    let revoked: Vec<_> = server
        .audit
        .of_type(AuditEventType::AuthnTokenRevoked)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == "dust_rejected_key")
        .collect();
    assert_eq!(revoked.len(), 2, "{revoked:?}");
    server.shutdown().await;
}
