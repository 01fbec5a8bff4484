//! The list methods answered from the cache (`http::mcp_fast`) answer exactly what rmcp answers:
//! same status, same headers, same body but the `id`, for every permission set that changes a
//! list, in both protocol eras; and a warm cache lets no request past a check it would fail.
//!
//! rmcp's own answer comes from the same server with the fast path turned off
//! (`ListAnswers::set_enabled`, test support only), so the two answers share the port, the
//! `Host`, the simulator's workspace and the token.

use crate::common::http as server;
use mcp_dust_server::auth::Permission;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use server::TestServer;

/// Every permission of the interface, for a server whose policy grants them all.
const ALL_PERMISSIONS: &str = "read:workspaces,write:workspaces,read:agents,write:agents,\
execute:agents,read:knowledge-bases,write:knowledge-bases,delete:knowledge-bases,read:connectors,\
write:connectors,execute:connectors,admin:audit,admin:metrics,admin:tokens";

/// The permissions some tool, prompt or resource needs: every subset of these is a different
/// list (the others change no list; each of them alone is tried too).
const LIST_RELEVANT: [Permission; 7] = [
    Permission::ReadWorkspaces,
    Permission::ReadAgents,
    Permission::ExecuteAgents,
    Permission::ReadKnowledgeBases,
    Permission::WriteKnowledgeBases,
    Permission::DeleteKnowledgeBases,
    Permission::ReadConnectors,
];

const METHODS: [&str; 5] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "server/discover",
];

#[derive(Clone, Copy, Debug)]
enum Era {
    /// 2025-11-25: `initialize` first, then the version header and no `_meta`.
    Legacy,
    /// 2026-07-28: `_meta` and the standard headers on every request.
    Current,
}

/// One answer as the client sees it: status, headers that do not change per request, body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Headers that differ between any two requests (the request id, the rate-limit budget).
fn stable(headers: &HeaderMap) -> Vec<(String, String)> {
    let mut kept: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            !matches!(
                name,
                "date" | "x-request-id" | "x-ratelimit-remaining" | "x-ratelimit-reset"
            ) && !name.starts_with("ratelimit")
        })
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                value.to_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    kept.sort();
    kept
}

/// Sends `method` with JSON-RPC `id` (written as given) in `era`, as that era's clients do.
async fn send(
    srv: &TestServer,
    token: Option<&str>,
    era: Era,
    method: &str,
    id: &str,
    extra: &[(&str, &str)],
) -> Answer {
    let mut request = srv
        .http
        .post(srv.url("/mcp"))
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    let body = match era {
        Era::Legacy => {
            request = request.header("MCP-Protocol-Version", "2025-11-25");
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}"}}"#)
        }
        Era::Current => {
            request = request
                .header("MCP-Protocol-Version", "2026-07-28")
                .header("Mcp-Method", method);
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{{"_meta":{{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{{"name":"fast-path-test","version":"1.0"}},"io.modelcontextprotocol/clientCapabilities":{{}}}}}}}}"#
            )
        }
    };
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = stable(response.headers());
    let body = response.text().await.unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

/// The 2025-11-25 handshake (the server is stateless: it remembers nothing of it, but this is
/// what a client of that era sends first).
async fn initialize(srv: &TestServer, token: &str) {
    let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "fast-path-test", "version": "1.0"}}});
    let response = srv
        .http
        .post(srv.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = srv
        .http
        .post(srv.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
}

/// rmcp's answer (fast path off), then the fast path's: the first request of its key (rmcp's
/// answer, kept) and a second one with another id (served from the cache). Returns how many of
/// the two came from the cache.
async fn compare(srv: &TestServer, token: &str, era: Era, method: &str, case: &str) -> u64 {
    let lists = &srv.state.mcp_lists;
    lists.set_enabled(false);
    let rmcp_first = send(srv, Some(token), era, method, "7", &[]).await;
    let rmcp_second = send(srv, Some(token), era, method, r#""req-8""#, &[]).await;
    lists.set_enabled(true);
    let (hits_before, _) = lists.stats();
    let fast_first = send(srv, Some(token), era, method, "7", &[]).await;
    let fast_second = send(srv, Some(token), era, method, r#""req-8""#, &[]).await;
    let (hits_after, _) = lists.stats();
    assert_eq!(fast_first, rmcp_first, "{case} {era:?} {method}: first");
    assert_eq!(fast_second, rmcp_second, "{case} {era:?} {method}: second");
    // Byte for byte implies equal JSON; the JSON check reads better when it fails.
    assert_eq!(fast_second.json(), rmcp_second.json());
    hits_after - hits_before
}

/// A login token for exactly `permissions`.
async fn token_for(srv: &TestServer, permissions: &[Permission]) -> String {
    let names: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
    srv.token(Some(&names)).await
}

#[tokio::test]
async fn every_permission_set_gets_rmcps_answer_in_both_eras() {
    let srv = TestServer::start_with(&[("PERMISSIONS_DEFAULT", ALL_PERMISSIONS)]).await;
    let mut sets: Vec<Vec<Permission>> = (0u32..1 << LIST_RELEVANT.len())
        .map(|mask| {
            LIST_RELEVANT
                .iter()
                .enumerate()
                .filter(|(bit, _)| mask & (1 << bit) != 0)
                .map(|(_, p)| *p)
                .collect()
        })
        .collect();
    sets.extend(
        Permission::ALL
            .iter()
            .filter(|p| !LIST_RELEVANT.contains(p))
            .map(|p| vec![*p]),
    );
    sets.push(Permission::ALL.to_vec());

    let mut served_from_cache = 0;
    let mut kept_results = 0;
    for set in &sets {
        let case = format!("{:?}", set.iter().map(|p| p.as_str()).collect::<Vec<_>>());
        let token = token_for(&srv, set).await;
        initialize(&srv, &token).await;
        for era in [Era::Legacy, Era::Current] {
            for method in METHODS {
                let hits = compare(&srv, &token, era, method, &case).await;
                let is_result = {
                    let rmcp = send(&srv, Some(&token), era, method, "9", &[]).await;
                    rmcp.status == 200 && rmcp.json().get("result").is_some()
                };
                // A result is kept and the second request is served from it; anything else
                // (server/discover without `_meta` is an error in the 2025 era) stays rmcp's.
                assert_eq!(hits, u64::from(is_result), "{case} {era:?} {method}");
                served_from_cache += hits;
                kept_results += u64::from(is_result);
            }
        }
    }
    assert!(served_from_cache > 0);
    assert_eq!(served_from_cache, kept_results);
    let (_, held) = srv.state.mcp_lists.stats();
    assert!(
        held <= mcp_dust_server::http::mcp_fast::MAX_ANSWERS,
        "bounded: {held}"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn a_warm_cache_lets_nothing_past_the_checks() {
    let srv = TestServer::start_with(&[
        ("PERMISSIONS_DEFAULT", ALL_PERMISSIONS),
        ("CORS_ALLOWED_ORIGINS", "https://app.example"),
    ])
    .await;
    let all = token_for(&srv, &Permission::ALL).await;
    let narrow = token_for(&srv, &[Permission::ReadAgents]).await;
    for era in [Era::Legacy, Era::Current] {
        for method in METHODS {
            send(&srv, Some(&all), era, method, "1", &[]).await;
            send(&srv, Some(&all), era, method, "2", &[]).await;
        }
    }
    let (hits, held) = srv.state.mcp_lists.stats();
    assert!(hits > 0 && held > 0);

    let era = Era::Current;
    // No token, a bad token: the 401 of the authentication layer.
    let anonymous = send(&srv, None, era, "tools/list", "3", &[]).await;
    assert_eq!(anonymous.status, 401);
    let forged = send(&srv, Some("not-a-token"), era, "tools/list", "3", &[]).await;
    assert_eq!(forged.status, 401);
    // A caller with fewer permissions gets their own list, not the kept one.
    let wide = send(&srv, Some(&all), era, "tools/list", "3", &[]).await;
    let small = send(&srv, Some(&narrow), era, "tools/list", "3", &[]).await;
    let count = |a: &Answer| a.json()["result"]["tools"].as_array().map_or(0, Vec::len);
    assert!(count(&small) < count(&wide), "{small:?}");
    // A foreign Origin, a foreign Host, a contradicting Mcp-Method: refused as before.
    for (extra, status) in [
        (("Origin", "https://evil.example"), 403),
        (("Host", "evil.example"), 403),
    ] {
        let refused = send(&srv, Some(&all), era, "tools/list", "3", &[extra]).await;
        assert_eq!(refused.status, status, "{extra:?}: {refused:?}");
    }
    // An allowed Origin is a key of its own, answered as rmcp answers it.
    let allowed = [("Origin", "https://app.example")];
    srv.state.mcp_lists.set_enabled(false);
    let rmcp = send(&srv, Some(&all), era, "tools/list", "4", &allowed).await;
    srv.state.mcp_lists.set_enabled(true);
    send(&srv, Some(&all), era, "tools/list", "5", &allowed).await;
    let fast = send(&srv, Some(&all), era, "tools/list", "4", &allowed).await;
    assert_eq!(fast, rmcp);
    srv.shutdown().await;
}

#[tokio::test]
async fn agent_tools_lists_are_left_to_rmcp() {
    let srv = TestServer::start_with(&[
        ("PERMISSIONS_DEFAULT", ALL_PERMISSIONS),
        ("DUST_AGENT_TOOLS", "all"),
    ])
    .await;
    let token = token_for(&srv, &Permission::ALL).await;
    for id in ["1", "2", "3"] {
        let answer = send(&srv, Some(&token), Era::Current, "tools/list", id, &[]).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(srv.state.mcp_lists.stats(), (0, 0));
    // The other lists do not follow the agents and are kept.
    for id in ["1", "2"] {
        send(&srv, Some(&token), Era::Current, "prompts/list", id, &[]).await;
    }
    assert_eq!(srv.state.mcp_lists.stats(), (1, 1));
    srv.shutdown().await;
}

#[tokio::test]
async fn requests_written_as_a_json_library_writes_them_are_served_from_the_cache() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    // `bench/loadgen.rs`'s requests: keys in serde_json's order, the same id every time.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "loadgen", "version": "1.0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    for (version, params) in [
        ("2026-07-28", json!({"_meta": meta})),
        ("2025-11-25", json!({})),
    ] {
        let (hits_before, _) = srv.state.mcp_lists.stats();
        for _ in 0..3 {
            let response = srv
                .http
                .post(srv.url("/mcp"))
                .header("Accept", "application/json, text/event-stream")
                .header("MCP-Protocol-Version", version)
                .header("Mcp-Method", "tools/list")
                .bearer_auth(&token)
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": params}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let (hits_after, _) = srv.state.mcp_lists.stats();
        assert_eq!(hits_after - hits_before, 2, "{version}");
    }
    srv.shutdown().await;
}
