//! The REST API under /api/v1 over the real HTTP server, the simulator as Dust. Each route:
//! its happy path, 401 without a token, 403 `insufficient_scope` without its permission, 403
//! on another workspace with no request to Dust (the simulator's request log proves it), 400 on
//! identifiers outside the allowlist, 404s; then the SSE stream of `execute`, the caller's
//! tokens, and the audit query.

use crate::common::http as server;

use std::time::{Duration, Instant};

use futures::StreamExt;
use mcp_dust_server::{
    audit::AuditEventType,
    sim::{ECHO_AGENT_ID, HANDBOOK_DS_ID, NOTION_DS_ID, SLOW_AGENT_ID},
};
use reqwest::Method;
use serde_json::{Value, json};
use server::TestServer;

const ALL_PERMISSIONS: &str = "read:workspaces,write:workspaces,read:agents,write:agents,\
execute:agents,read:knowledge-bases,write:knowledge-bases,delete:knowledge-bases,read:connectors,\
write:connectors,execute:connectors,admin:audit,admin:metrics,admin:tokens";

async fn server() -> TestServer {
    TestServer::start_with(&[("PERMISSIONS_DEFAULT", ALL_PERMISSIONS)]).await
}

/// Sends one request; returns status, headers and the JSON body (`Null` when empty).
async fn send(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut request = server.http.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (status, headers, body)
}

/// Every route with a workspace in its path: method, path after `/api/v1/workspaces/{w}`,
/// body, the permission it needs.
fn workspace_routes() -> Vec<(Method, String, Option<Value>, &'static str)> {
    vec![
        (Method::GET, String::new(), None, "read:workspaces"),
        (Method::GET, "/agents".into(), None, "read:agents"),
        (
            Method::GET,
            format!("/agents/{ECHO_AGENT_ID}"),
            None,
            "read:agents",
        ),
        (
            Method::POST,
            format!("/agents/{ECHO_AGENT_ID}/execute"),
            Some(json!({"message": "hello"})),
            "execute:agents",
        ),
        (
            Method::GET,
            "/knowledge-bases".into(),
            None,
            "read:knowledge-bases",
        ),
        (
            Method::GET,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}"),
            None,
            "read:knowledge-bases",
        ),
        (
            Method::POST,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/search"),
            Some(json!({"query": "vacation"})),
            "read:knowledge-bases",
        ),
        (
            Method::POST,
            "/search".into(),
            Some(json!({"query": "handbook"})),
            "read:knowledge-bases",
        ),
        (
            Method::GET,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/tables"),
            None,
            "read:knowledge-bases",
        ),
        (
            Method::GET,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/tables/offices"),
            None,
            "read:knowledge-bases",
        ),
        (
            Method::GET,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/tables/offices/rows?limit=2"),
            None,
            "read:knowledge-bases",
        ),
        (
            Method::POST,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/tables/offices/rows"),
            Some(json!({"rows": [{"rowId": "x", "value": {"city": "X"}}]})),
            "write:knowledge-bases",
        ),
        (
            Method::DELETE,
            format!("/knowledge-bases/{HANDBOOK_DS_ID}/tables/offices/rows/paris"),
            None,
            "delete:knowledge-bases",
        ),
        (Method::GET, "/conversations".into(), None, "read:agents"),
        (
            Method::GET,
            "/conversations/c0nv3rsat10n".into(),
            None,
            "read:agents",
        ),
        (Method::GET, "/connectors".into(), None, "read:connectors"),
        (
            Method::GET,
            format!("/connectors/{NOTION_DS_ID}"),
            None,
            "read:connectors",
        ),
    ]
}

fn assert_envelope(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["requestId"].as_str().is_some(), "{body}");
}

#[tokio::test]
async fn every_route_refuses_without_a_token_and_reaches_no_one() {
    let server = server().await;
    let ws = server.sim.workspace_id().to_owned();
    let mut routes: Vec<(Method, String, Option<Value>)> = workspace_routes()
        .into_iter()
        .map(|(m, p, b, _)| (m, format!("/api/v1/workspaces/{ws}{p}"), b))
        .collect();
    routes.push((Method::GET, "/api/v1/workspaces".into(), None));
    routes.push((Method::GET, "/api/v1/auth/tokens".into(), None));
    routes.push((Method::DELETE, "/api/v1/auth/tokens/tok_x".into(), None));
    routes.push((Method::GET, "/api/v1/audit".into(), None));
    let before = server.sim.requests().len();
    for (method, path, body) in routes {
        let (status, headers, body) = send(&server, method.clone(), &path, None, body).await;
        assert_eq!(status, 401, "{method} {path}");
        assert_envelope(&body, "unauthorized");
        assert!(headers.contains_key("www-authenticate"), "{method} {path}");
    }
    assert_eq!(server.sim.requests().len(), before, "Dust was asked");
}

#[tokio::test]
async fn a_missing_permission_is_403_insufficient_scope_audited_and_reaches_no_one() {
    let server = server().await;
    let ws = server.sim.workspace_id().to_owned();
    for (method, path, body, permission) in workspace_routes() {
        // A token with every permission of the default but this one.
        let others: Vec<&str> = ALL_PERMISSIONS
            .split(',')
            .filter(|p| *p != permission)
            .collect();
        let token = server.token(Some(&others)).await;
        let before = server.sim.requests().len();
        let path = format!("/api/v1/workspaces/{ws}{path}");
        let (status, headers, body) =
            send(&server, method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_envelope(&body, "insufficient_scope");
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains(&format!("scope=\"{permission}\"")),
            "{challenge}"
        );
        assert_eq!(
            server.sim.requests().len(),
            before,
            "{method} {path} reached Dust"
        );
    }
    let token = server.token(Some(&["read:agents"])).await;
    let (status, _, body) = send(&server, Method::GET, "/api/v1/audit", Some(&token), None).await;
    assert_eq!(status, 403);
    assert_envelope(&body, "insufficient_scope");
    server.state.auditor.flush().await;
    let refusals = server.audit.of_type(AuditEventType::AuthzFail);
    assert!(
        refusals
            .iter()
            .any(|r| r["action"] == "execute:agents" && r["resource_id"] == "ask_agent"),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn another_workspace_is_403_and_nothing_reaches_dust() {
    let server = server().await;
    let token = server.token(None).await;
    let other = server.sim.other_workspace_id().to_owned();
    for (method, path, body, _) in workspace_routes() {
        let before = server.sim.requests().len();
        let path = format!("/api/v1/workspaces/{other}{path}");
        let (status, _, body) = send(&server, method.clone(), &path, Some(&token), body).await;
        assert_eq!(status, 403, "{method} {path}");
        assert_envelope(&body, "forbidden");
        assert_eq!(
            server.sim.requests().len(),
            before,
            "{method} {path} reached Dust"
        );
    }
    server.state.auditor.flush().await;
    let refusals = server.audit.of_type(AuditEventType::AuthzFail);
    assert!(
        refusals
            .iter()
            .any(|r| r["resource_type"] == "workspace" && r["resource_id"] == other.as_str()),
        "{refusals:?}"
    );
}

#[tokio::test]
async fn identifiers_outside_the_allowlist_are_400_and_reach_no_one() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let before = server.sim.requests().len();
    for path in [
        "/api/v1/workspaces/w%2e%2e".to_owned(),
        format!("/api/v1/workspaces/{ws}/agents/a%20b"),
        format!("/api/v1/workspaces/{ws}/agents/a.b"),
        format!("/api/v1/workspaces/{ws}/knowledge-bases/dts%2Fx"),
        format!("/api/v1/workspaces/{ws}/knowledge-bases?spaceId=..%2F"),
        format!("/api/v1/workspaces/{ws}/connectors/a%3Bb"),
    ] {
        let (status, _, body) = send(&server, Method::GET, &path, Some(&token), None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_envelope(&body, "invalid_request");
    }
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/agents/a.b/execute"),
        Some(&token),
        Some(json!({"message": "hi"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/search"),
        Some(&token),
        Some(json!({"query": "x", "topK": 1000})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"),
        Some(&token),
        Some(json!({"message": "hi", "extra": 1})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // Not JSON at all.
    let response = server
        .http
        .post(server.url(&format!(
            "/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"
        )))
        .bearer_auth(&token)
        .body("message=hi")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(server.sim.requests().len(), before, "Dust was asked");
    server.state.auditor.flush().await;
    assert!(
        !server
            .audit
            .of_type(AuditEventType::InputValidationFail)
            .is_empty()
    );
}

#[tokio::test]
async fn workspaces_agents_knowledge_and_connectors_answer_from_dust() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let get = |path: String| {
        let server = &server;
        let token = token.clone();
        async move { send(server, Method::GET, &path, Some(&token), None).await }
    };

    let (status, _, body) = get("/api/v1/workspaces".into()).await;
    assert_eq!(status, 200);
    assert_eq!(body["workspaces"][0]["id"], ws.as_str());
    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], ws.as_str());
    assert!(
        body["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("admin:audit"))
    );

    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/agents")).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&ECHO_AGENT_ID) && ids.contains(&"dust"),
        "{ids:?}"
    );
    assert!(body["agents"][0]["name"].is_string() && body["agents"][0]["description"].is_string());
    let (_, _, body) = get(format!("/api/v1/workspaces/{ws}/agents?query=sloth")).await;
    let ids: Vec<&str> = body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [SLOW_AGENT_ID]);

    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], ECHO_AGENT_ID);
    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/agents/n0SuchAgnt")).await;
    assert_eq!(status, 404, "{body}");
    assert_envelope(&body, "not_found");

    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/knowledge-bases")).await;
    assert_eq!(status, 200);
    let kbs = body["knowledgeBases"].as_array().unwrap();
    assert!(
        kbs.iter()
            .any(|kb| kb["id"] == HANDBOOK_DS_ID && kb["spaceId"].is_string())
    );
    let (status, _, body) = get(format!(
        "/api/v1/workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}"
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], HANDBOOK_DS_ID);
    assert!(body["name"].is_string());
    let (status, _, body) = get(format!(
        "/api/v1/workspaces/{ws}/knowledge-bases/dts_n0SuchKb00"
    ))
    .await;
    assert_eq!(status, 404);
    assert_envelope(&body, "not_found");

    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/connectors")).await;
    assert_eq!(status, 200);
    let connectors = body["connectors"].as_array().unwrap();
    assert!(connectors.iter().any(|c| c["id"] == NOTION_DS_ID));
    assert!(connectors.iter().all(|c| c["kind"] == "connector"));
    let (status, _, body) = get(format!("/api/v1/workspaces/{ws}/connectors/{NOTION_DS_ID}")).await;
    assert_eq!(status, 200);
    assert_eq!(body["connectorProvider"], "notion");
    // A folder knowledge base is not a connector.
    let (status, _, _) = get(format!(
        "/api/v1/workspaces/{ws}/connectors/{HANDBOOK_DS_ID}"
    ))
    .await;
    assert_eq!(status, 404);

    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/search"),
        Some(&token),
        Some(json!({"query": "vacation policy", "topK": 3})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.len() <= 3, "{body}");
    for r in results {
        assert!(r["documentId"].is_string() && r["score"].is_number() && r["text"].is_string());
    }
    server.state.auditor.flush().await;
    let reads = server.audit.of_type(AuditEventType::ResourceAccess);
    assert!(
        reads
            .iter()
            .any(|r| r["action"] == "list_agents" && r["result"] == "success")
    );
    assert!(reads.iter().all(|r| r["workspace_id"] == ws.as_str()));
}

#[tokio::test]
async fn execute_answers_in_json_and_sends_the_message_byte_for_byte() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let message =
        "Ünïcödé ✓ '; DROP TABLE users; -- <script>alert(1)</script>\n\ttabs \u{202e} end";
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"),
        Some(&token),
        Some(json!({"message": message})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["answer"].as_str().unwrap().contains("DROP TABLE"),
        "{body}"
    );
    let conversation_id = body["conversationId"].as_str().unwrap().to_owned();
    assert!(body["messageId"].is_string());
    let posted = server
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/assistant/conversations"))
        .expect("the conversation was created");
    let sent: Value = serde_json::from_slice(&posted.body).unwrap();
    assert_eq!(sent["message"]["content"], message);

    // A follow-up in the same conversation; someone else's conversation is "not found".
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"),
        Some(&token),
        Some(json!({"message": "again", "conversationId": conversation_id})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["conversationId"], conversation_id.as_str());
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"),
        Some(&token),
        Some(json!({"message": "again", "conversationId": "n0tM1neC0nv"})),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    server.state.auditor.flush().await;
    assert!(
        !server
            .audit
            .of_type(AuditEventType::MaliciousInput)
            .is_empty()
    );
}

/// Reads SSE frames from `response` as (event, data), with the time each arrived.
async fn read_events(
    response: reqwest::Response,
    until_done: bool,
) -> Vec<(String, Value, Instant)> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while let Some(chunk) = stream.next().await {
        buffer.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = String::new();
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if event.is_empty() {
                continue; // keep-alive comment
            }
            let done = event == "done" || event == "error";
            events.push((event, serde_json::from_str(&data).unwrap(), Instant::now()));
            if done || !until_done {
                return events;
            }
        }
    }
    events
}

#[tokio::test]
async fn execute_streams_tokens_as_dust_sends_them() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let started = Instant::now();
    let response = server
        .http
        .post(server.url(&format!(
            "/api/v1/workspaces/{ws}/agents/{SLOW_AGENT_ID}/execute"
        )))
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .json(&json!({"message": "tell me slowly"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = read_events(response, true).await;
    let tokens: Vec<_> = events.iter().filter(|(e, _, _)| e == "token").collect();
    assert!(tokens.len() >= 3, "{events:?}");
    let (last, done, done_at) = events.last().unwrap();
    assert_eq!(last, "done", "{events:?}");
    assert!(done["conversationId"].is_string() && done["messageId"].is_string());
    let streamed: String = tokens
        .iter()
        .map(|(_, d, _)| d["text"].as_str().unwrap())
        .collect();
    assert_eq!(streamed.trim(), done["answer"].as_str().unwrap().trim());
    // The first token came long before the answer was complete: streamed, not buffered.
    let first_at = tokens[0].2;
    assert!(
        done_at.duration_since(first_at) >= Duration::from_millis(800),
        "first token {:?}, done {:?} after the start",
        first_at - started,
        *done_at - started
    );
}

#[tokio::test]
async fn a_client_that_goes_away_cancels_the_agent_run() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let response = server
        .http
        .post(server.url(&format!(
            "/api/v1/workspaces/{ws}/agents/{SLOW_AGENT_ID}/execute"
        )))
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .json(&json!({"message": "a long story"}))
        .send()
        .await
        .unwrap();
    let first = read_events(response, false).await; // dropped after the first token
    assert_eq!(first[0].0, "token", "{first:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let cancelled = server
            .sim
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.path.ends_with("/cancel"));
        if cancelled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not cancelled in Dust"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn callers_list_and_revoke_their_own_tokens_only() {
    let server = server().await;
    let first = server.token(None).await;
    let second = server.token(Some(&["read:agents"])).await;
    let (status, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/auth/tokens",
        Some(&first),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let tokens = body["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2, "{body}");
    let current: Vec<_> = tokens.iter().filter(|t| t["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let other_id = tokens.iter().find(|t| t["current"] == false).unwrap()["tokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        tokens
            .iter()
            .all(|t| t["createdAt"].is_string() && t["expiresAt"].is_string())
    );
    assert!(!body.to_string().contains(&first) && !body.to_string().contains(&second));

    // Another user's token (another key) is "not found", and stays valid.
    let response = server
        .login_with(json!({"apiKey": server.sim.other_api_key(), "workspaceId": server.sim.other_workspace_id()}))
        .await;
    assert_eq!(response.status(), 200);
    let stranger: Value = response.json().await.unwrap();
    let stranger = stranger["token"].as_str().unwrap().to_owned();
    let (_, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/auth/tokens",
        Some(&stranger),
        None,
    )
    .await;
    let stranger_id = body["tokens"][0]["tokenId"].as_str().unwrap().to_owned();
    let (status, _, body) = send(
        &server,
        Method::DELETE,
        &format!("/api/v1/auth/tokens/{stranger_id}"),
        Some(&first),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_envelope(&body, "not_found");
    let (status, _, _) = send(
        &server,
        Method::GET,
        "/api/v1/auth/tokens",
        Some(&stranger),
        None,
    )
    .await;
    assert_eq!(status, 200, "the stranger's token was revoked");

    for (path, expected) in [
        ("/api/v1/auth/tokens/tok_n0SuchT0ken".to_owned(), 404),
        ("/api/v1/auth/tokens/tok.bad".to_owned(), 400),
    ] {
        let (status, _, _) = send(&server, Method::DELETE, &path, Some(&first), None).await;
        assert_eq!(status, expected, "{path}");
    }

    // Revoking one's own token: 204, and the token no longer works.
    let (status, _, body) = send(
        &server,
        Method::DELETE,
        &format!("/api/v1/auth/tokens/{other_id}"),
        Some(&first),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, _, _) = send(
        &server,
        Method::GET,
        "/api/v1/auth/tokens",
        Some(&second),
        None,
    )
    .await;
    assert_eq!(status, 401);
    let (_, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/auth/tokens",
        Some(&first),
        None,
    )
    .await;
    let revoked = body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tokenId"] == other_id.as_str())
        .unwrap()
        .clone();
    assert!(revoked["revokedAt"].is_string(), "{revoked}");

    server.state.auditor.flush().await;
    let revocations = server.audit.of_type(AuditEventType::AuthnTokenRevoked);
    assert!(
        revocations
            .iter()
            .any(|r| r["resource_id"] == other_id.as_str())
    );
    let refusals = server.audit.of_type(AuditEventType::AuthzFail);
    assert!(
        refusals
            .iter()
            .any(|r| r["resource_id"] == stranger_id.as_str())
    );
}

#[tokio::test]
async fn the_audit_query_shows_the_callers_workspace_newest_first() {
    let server = server().await;
    let admin = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let reader = server.token(Some(&["read:agents"])).await;
    // Something to find: a refusal, and reads.
    let (status, _, _) = send(
        &server,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/connectors"),
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(status, 403);
    send(
        &server,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/agents"),
        Some(&admin),
        None,
    )
    .await;
    // Records of another workspace must not show.
    let response = server
        .login_with(json!({"apiKey": server.sim.other_api_key(), "workspaceId": server.sim.other_workspace_id()}))
        .await;
    let stranger: Value = response.json().await.unwrap();
    let stranger = stranger["token"].as_str().unwrap().to_owned();
    let other_ws = server.sim.other_workspace_id().to_owned();
    send(
        &server,
        Method::GET,
        &format!("/api/v1/workspaces/{other_ws}/agents"),
        Some(&stranger),
        None,
    )
    .await;

    let (status, _, body) = send(&server, Method::GET, "/api/v1/audit", Some(&admin), None).await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().unwrap();
    assert!(events.len() >= 2, "{body}");
    assert!(
        events.iter().all(|e| e["workspace_id"] == ws.as_str()),
        "{body}"
    );
    let times: Vec<&str> = events
        .iter()
        .map(|e| e["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let (_, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/audit?eventType=authz_fail",
        Some(&admin),
        None,
    )
    .await;
    let refused = body["events"].as_array().unwrap();
    assert!(!refused.is_empty());
    assert!(refused.iter().all(|e| e["event_type"] == "authz_fail"));
    assert!(refused.iter().any(|e| e["action"] == "read:connectors"));

    let (_, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/audit?limit=1",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(body["events"].as_array().unwrap().len(), 1);
    let (_, _, body) = send(
        &server,
        Method::GET,
        "/api/v1/audit?since=2999-01-01T00:00:00Z",
        Some(&admin),
        None,
    )
    .await;
    assert!(body["events"].as_array().unwrap().is_empty());

    for bad in [
        "limit=0",
        "limit=100000",
        "eventType=nope",
        "since=yesterday",
        "limit=x",
    ] {
        let (status, _, body) = send(
            &server,
            Method::GET,
            &format!("/api/v1/audit?{bad}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_envelope(&body, "invalid_request");
    }
}

#[tokio::test]
async fn the_openapi_document_is_public_and_describes_the_routes() {
    let server = server().await;
    let (status, _, doc) = send(&server, Method::GET, "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/workspaces",
        "/api/v1/workspaces/{workspaceId}/agents/{agentId}/execute",
        "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/search",
        "/api/v1/workspaces/{workspaceId}/search",
        "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables",
        "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}",
        "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}/rows",
        "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}/rows/{rowId}",
        "/api/v1/auth/tokens/{tokenId}",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["cookieAuth"]["in"], "cookie");
    let execute =
        &doc["paths"]["/api/v1/workspaces/{workspaceId}/agents/{agentId}/execute"]["post"];
    assert!(execute["responses"]["200"]["content"]["text/event-stream"].is_object());
    assert!(execute["responses"]["403"]["content"]["application/json"].is_object());
    assert!(doc["components"]["schemas"]["ErrorEnvelope"].is_object());

    // Issue 19: the routes are declared once, and the document has all of them, the
    // authentication routes included, so that a client generated from it can log in.
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/refresh", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/auth/session", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let login = &doc["paths"]["/api/v1/auth/login"]["post"];
    assert_eq!(
        login["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/LoginBody"
    );
    assert_eq!(login["security"], json!([{}]));
    assert!(doc["components"]["schemas"]["TokenAnswer"]["properties"]["token"].is_object());
    // A client generated from the document logs in with what it describes.
    let key = server.sim.api_key().to_owned();
    let workspace = server.sim.workspace_id().to_owned();
    let (status, _, answer) = send(
        &server,
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(json!({"apiKey": key, "workspaceId": workspace})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let described = doc["components"]["schemas"]["TokenAnswer"]["required"]
        .as_array()
        .unwrap();
    for member in described {
        assert!(
            answer.get(member.as_str().unwrap()).is_some(),
            "{member} missing in {answer}"
        );
    }
}

#[tokio::test]
async fn the_per_caller_bulkhead_toward_dust_is_shared_with_the_tools() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let slots = mcp_dust_server::ops::MAX_CALLS_IN_FLIGHT;
    let mut running = Vec::new();
    for _ in 0..slots {
        let response = server
            .http
            .post(server.url(&format!(
                "/api/v1/workspaces/{ws}/agents/{SLOW_AGENT_ID}/execute"
            )))
            .bearer_auth(&token)
            .header("Accept", "text/event-stream")
            .json(&json!({"message": "take your time"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        running.push(response);
    }
    // The running agents' event streams keep talking to Dust: count only agent listings.
    let listings = || {
        server
            .sim
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/assistant/agent_configurations"))
            .count()
    };
    let before = listings();
    let (status, headers, body) = send(
        &server,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/agents"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_envelope(&body, "rate_limited");
    assert!(headers.contains_key("retry-after"));
    // The MCP tools count against the same slots.
    let (_, answer) = server.call_tool(&token, "list_agents", json!({})).await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert_eq!(listings(), before, "a refused call reached Dust");
    drop(running);
}

#[tokio::test]
async fn a_failing_agent_is_424_in_json_and_an_error_event_in_the_stream() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let path = format!(
        "/api/v1/workspaces/{ws}/agents/{}/execute",
        mcp_dust_server::sim::FAILING_AGENT_ID
    );
    let (status, _, body) = send(
        &server,
        Method::POST,
        &path,
        Some(&token),
        Some(json!({"message": "fail please"})),
    )
    .await;
    assert_eq!(status, 424, "{body}");
    assert_envelope(&body, "agent_failed");
    let response = server
        .http
        .post(server.url(&path))
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .json(&json!({"message": "fail please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let events = read_events(response, true).await;
    let (last, data, _) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(data["error"]["code"], "agent_failed", "{data}");
    assert!(data["error"]["message"].is_string());
}

/// Issue 19: one response layer writes the request id into every error envelope, whatever
/// produced the error (the router's 404, the authentication layer, a handler's own `?`, the
/// login's body checks, the metrics route, rmcp's refusals on `/mcp`): it is always the id the
/// response leaves with.
#[tokio::test]
async fn every_error_envelope_carries_the_responses_request_id() {
    let server = server().await;
    let token = server.token(Some(&["read:agents"])).await;
    // (method, path, bearer token, JSON body, expected status)
    type Case<'a> = (Method, &'a str, Option<&'a str>, Option<Value>, u16);
    let cases: Vec<Case<'_>> = vec![
        (Method::GET, "/no/such/route", None, None, 404),
        (Method::GET, "/api/v1/workspaces/w/agents", None, None, 401),
        (Method::GET, "/metrics", Some(&token), None, 403),
        (
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"apiKey": "short"})),
            400,
        ),
        (Method::GET, "/mcp", Some(&token), None, 405),
    ];
    for (method, path, bearer, body, status) in cases {
        let (got, headers, body) = send(&server, method.clone(), path, bearer, body).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        let header = headers["x-request-id"].to_str().unwrap();
        assert_eq!(
            body["error"]["requestId"], header,
            "{method} {path}: {body}"
        );
    }
    // A request id the client chose (well-formed) is the one echoed.
    let response = server
        .http
        .get(server.url("/no/such/route"))
        .header("x-request-id", "client-chosen-42")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["requestId"], "client-chosen-42");
    server.shutdown().await;
}

/// `get_conversation` pages its messages, the same over MCP and REST: a page of `limit`
/// messages oldest first and the cursor of the next; the last page has no cursor; a cursor
/// that names no message of the conversation is refused, and a bad limit too.
#[tokio::test]
async fn a_conversation_reads_page_by_page_over_mcp_and_rest() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let (_, body) = server
        .call_tool(
            &token,
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "first"}),
        )
        .await;
    let conversation = body["result"]["structuredContent"]["conversationId"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned();
    for message in ["second", "third"] {
        let (_, body) = server
            .call_tool(
                &token,
                "ask_agent",
                json!({"agentId": ECHO_AGENT_ID, "message": message, "conversationId": conversation}),
            )
            .await;
        assert_ne!(body["result"]["isError"], true, "{body}");
    }
    // The whole conversation: three questions and three answers.
    let (_, whole) = server
        .call_tool(
            &token,
            "get_conversation",
            json!({"conversationId": conversation}),
        )
        .await;
    let whole = &whole["result"]["structuredContent"];
    let ids: Vec<String> = whole["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 6, "{whole}");
    assert!(whole.get("nextCursor").is_none(), "{whole}");

    // Page 1 over MCP, pages 2 and 3 over REST, following the cursors.
    let (_, page) = server
        .call_tool(
            &token,
            "get_conversation",
            json!({"conversationId": conversation, "limit": 4}),
        )
        .await;
    let page = &page["result"]["structuredContent"];
    let first: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        ids[..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page["nextCursor"], ids[3].as_str());
    let path = format!("/api/v1/workspaces/{ws}/conversations/{conversation}");
    let (status, _, page) = send(
        &server,
        Method::GET,
        &format!("{path}?limit=4&cursor={}", ids[3]),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let rest: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rest,
        ids[4..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(page.get("nextCursor").is_none(), "{page}");

    // A cursor from elsewhere, or a limit out of range: refused before Dust is asked.
    let before = server.sim.requests().len();
    let (status, _, body) = send(
        &server,
        Method::GET,
        &format!("{path}?cursor=n0tAMessage"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nextCursor"),
        "{body}"
    );
    let (status, _, body) = send(
        &server,
        Method::GET,
        &format!("{path}?limit=0"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (_, body) = server
        .call_tool(
            &token,
            "get_conversation",
            json!({"conversationId": conversation, "limit": 101}),
        )
        .await;
    assert_eq!(body["error"]["code"], -32602, "{body}");
    // The unknown cursor needed the conversation (one Dust read); the bad limits none.
    assert_eq!(server.sim.requests().len(), before + 1);
}

/// `POST /api/v1/workspaces/{w}/search`: Dust's title search across the caller's spaces; bad
/// input is a 400 naming the field, and Dust is not asked.
#[tokio::test]
async fn workspace_search_answers_nodes_and_refuses_bad_input_before_dust() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let path = format!("/api/v1/workspaces/{ws}/search");
    let (status, _, body) = send(
        &server,
        Method::POST,
        &path,
        Some(&token),
        Some(json!({"query": "handbook roadmap", "kind": "all"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["results"].as_array().unwrap().is_empty(), "{body}");
    let (status, _, body) = send(
        &server,
        Method::POST,
        &path,
        Some(&token),
        Some(json!({"query": "roadmap", "kind": "document", "limit": 5})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let node = &body["results"][0];
    assert_eq!(node["knowledgeBaseId"], NOTION_DS_ID);
    assert_eq!(node["nodeId"], "notion-roadmap");
    assert_eq!(node["type"], "document");

    let before = server.sim.requests().len();
    for (bad, field) in [
        (json!({"query": ""}), "query"),
        (json!({"query": "x", "limit": 0}), "limit"),
        (json!({"query": "x", "limit": 101}), "limit"),
        (
            json!({"query": "x", "kind": "tables"}),
            "expected one of `all`, `document`, `table`",
        ),
        (json!({"query": "x", "spaceIds": []}), "spaceIds"),
    ] {
        let (status, _, body) = send(&server, Method::POST, &path, Some(&token), Some(bad)).await;
        assert_eq!(status, 400, "{body}");
        assert_envelope(&body, "invalid_request");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{field}: {message}");
    }
    assert_eq!(server.sim.requests().len(), before, "Dust was asked");
}

/// The tables of a folder over REST: listed, read, paged, rows written and one deleted; bad
/// rows are a 400 naming the row, and a connector's tables a refusal; neither reaches Dust's
/// table routes.
#[tokio::test]
async fn tables_over_rest_answer_and_refuse_bad_rows_before_dust() {
    let server = server().await;
    let token = server.token(None).await;
    let ws = server.sim.workspace_id().to_owned();
    let base = format!("/api/v1/workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/tables");
    let (status, _, body) = send(&server, Method::GET, &base, Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tables"][0]["tableId"], "offices", "{body}");
    let (status, _, body) = send(
        &server,
        Method::GET,
        &format!("{base}/offices"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["columns"][0]["name"], "city", "{body}");
    let (status, _, body) = send(
        &server,
        Method::GET,
        &format!("{base}/offices/rows?limit=1&offset=2"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 3);
    assert_eq!(body["rows"][0]["rowId"], "paris", "{body}");

    let rows = format!("{base}/offices/rows");
    let (status, _, body) = send(
        &server,
        Method::POST,
        &rows,
        Some(&token),
        Some(json!({"rows": [{"rowId": "oslo", "value": {"city": "Oslo", "seats": 9}}]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["upserted"], 1);
    let (status, _, body) = send(
        &server,
        Method::DELETE,
        &format!("{rows}/oslo"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted"], true);

    let before = server.sim.requests().len();
    for (path, body, needle) in [
        (rows.clone(), json!({"rows": []}), "1 to 500"),
        (
            rows.clone(),
            json!({"rows": [{"rowId": "a", "value": {"a": [1]}}]}),
            "rows[0].value.a",
        ),
        (
            rows.clone(),
            json!({"rows": [], "truncate": true}),
            "truncate",
        ),
        (format!("{base}/offices/rows?limit=0"), Value::Null, "limit"),
    ] {
        let method = if body.is_null() {
            Method::GET
        } else {
            Method::POST
        };
        let body = (!body.is_null()).then_some(body);
        let (status, _, answer) = send(&server, method, &path, Some(&token), body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_envelope(&answer, "invalid_request");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {message}");
    }
    assert_eq!(server.sim.requests().len(), before, "Dust was asked");

    // A connector: refused, and its tables are never asked of Dust.
    let (status, _, body) = send(
        &server,
        Method::POST,
        &format!("/api/v1/workspaces/{ws}/knowledge-bases/{NOTION_DS_ID}/tables/t/rows"),
        Some(&token),
        Some(json!({"rows": [{"rowId": "r", "value": {"a": 1}}]})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    // Reading a connector's tables: 404, as Dust answers for it (asked of nobody).
    let (status, _, listed) = send(
        &server,
        Method::GET,
        &format!("/api/v1/workspaces/{ws}/knowledge-bases/{NOTION_DS_ID}/tables"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 404, "{listed}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connector"),
        "{body}"
    );
    assert!(
        server
            .sim
            .requests()
            .iter()
            .all(|r| !r.path.contains("/tables") || r.path.contains(HANDBOOK_DS_ID)),
        "a connector's tables were asked of Dust"
    );
}
