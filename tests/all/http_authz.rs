//! Authorization over the real HTTP server (catalogue §4.3, Z1–Z10): the simulator as Dust, the
//! real router on 127.0.0.1:0, an in-memory audit sink. Every refusal is checked three ways: the
//! answer (a 403 scope challenge whose body is the JSON-RPC `-32003`, or "not found"), the
//! simulator's request log (Dust was not asked), and the audit trail.

use crate::common::http as server;

use mcp_dust_server::{
    audit::AuditEventType,
    auth::{PermissionSet, TokenSubject},
    sim::{ECHO_AGENT_ID, HANDBOOK_DS_ID},
    store::TokenRecord,
};
use reqwest::{Method, header::HeaderMap};
use secrecy::SecretString;
use serde_json::{Value, json};
use server::{TestServer, parse_mcp_body};

/// Every permission of the interface, for servers whose policy grants them all.
const ALL_PERMISSIONS: &str = "read:workspaces,write:workspaces,read:agents,write:agents,\
execute:agents,read:knowledge-bases,write:knowledge-bases,delete:knowledge-bases,read:connectors,\
write:connectors,execute:connectors,admin:audit,admin:metrics,admin:tokens";

/// Reads, no execute or write.
const READ_ONLY: &[&str] = &[
    "read:workspaces",
    "read:agents",
    "read:knowledge-bases",
    "read:connectors",
];

const PERMISSION_DENIED: i64 = -32003;
const INVALID_PARAMS: i64 = -32602;
const RESOURCE_NOT_FOUND: i64 = -32002;

async fn all_permissions_server() -> TestServer {
    TestServer::start_with(&[("PERMISSIONS_DEFAULT", ALL_PERMISSIONS)]).await
}

/// How many requests reached the simulator so far.
fn upstream(srv: &TestServer) -> usize {
    srv.sim.requests().len()
}

async fn flush(srv: &TestServer) {
    srv.state.auditor.flush().await;
}

fn error_code(body: &Value) -> i64 {
    body["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("expected a JSON-RPC error, got {body}"))
}

/// A raw request to `path` with `method`, optional bearer token and extra headers: status,
/// response headers and body text.
async fn send(
    srv: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, HeaderMap, String) {
    let mut request = srv.http.request(method, srv.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// A 2026-07-28 request from a client that declares no capability ([`TestServer::mcp_2026`]).
async fn mcp_2026(
    srv: &TestServer,
    token: Option<&str>,
    method: &str,
    params: Value,
) -> (u16, Value) {
    srv.mcp_2026(token, &json!({}), method, params).await
}

async fn read_resource(srv: &TestServer, token: &str, uri: &str) -> (u16, Value) {
    srv.mcp(
        Some(token),
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": uri}}),
    )
    .await
}

async fn tool_names(srv: &TestServer, token: &str) -> Vec<String> {
    let (status, body) = srv
        .mcp(
            Some(token),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn z1_tool_outside_permissions_is_denied_before_dust_and_audited() {
    let srv = TestServer::start().await;
    let token = srv.token(Some(&["read:agents"])).await;
    srv.audit.clear();
    let before = upstream(&srv);

    let (status, headers, text) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-11-25"),
        ],
        Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "list_spaces", "arguments": {}}})),
    )
    .await;
    let body = parse_mcp_body(&text);

    // The MCP authorization scope challenge: 403, the permission needed as the scope, where to
    // find the authorization server; the body is still the JSON-RPC error for the request.
    assert_eq!(status, 403, "{body}");
    let challenge = headers[reqwest::header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    for part in [
        "error=\"insufficient_scope\"",
        "scope=\"read:knowledge-bases\"",
        &format!(
            "resource_metadata=\"{}\"",
            srv.url("/.well-known/oauth-protected-resource/mcp")
        ),
    ] {
        assert!(challenge.contains(part), "{part} missing from {challenge}");
    }
    assert!(
        headers[reqwest::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(body["id"], 1);
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    assert_eq!(
        body["error"]["message"],
        "permission denied: needs read:knowledge-bases"
    );
    assert_eq!(upstream(&srv), before, "Dust was called for a denied tool");
    flush(&srv).await;
    let denials = srv.audit.of_type(AuditEventType::AuthzFail);
    assert_eq!(denials.len(), 1, "{denials:?}");
    let record = &denials[0];
    assert_eq!(record["resource_type"], "tool");
    assert_eq!(record["resource_id"], "list_spaces");
    assert_eq!(record["result"], "denied");
    assert!(record["user_id"].as_str().unwrap().starts_with("usr_"));
    assert!(
        srv.audit.of_type(AuditEventType::ResourceAccess).is_empty(),
        "a denied call is not a resource access"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn z2_hidden_tool_called_by_name_or_lookalike_is_never_executed() {
    let srv = all_permissions_server().await;
    let token = srv.token(Some(READ_ONLY)).await;
    let visible = tool_names(&srv, &token).await;
    assert!(visible.contains(&"list_agents".to_owned()));
    assert!(
        !visible.contains(&"upsert_document".to_owned()),
        "{visible:?}"
    );
    srv.audit.clear();
    let before = upstream(&srv);

    let args = json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "z2", "text": "pwned"});
    let (_, body) = srv.call_tool(&token, "upsert_document", args.clone()).await;
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    for name in [
        "UPSERT_DOCUMENT",
        "Upsert_Document",
        "ｕｐｓｅｒｔ_ｄｏｃｕｍｅｎｔ",
        "upsert_document ",
        " upsert_document",
        "upsert_document\u{200b}",
        "upsert\u{2010}document",
    ] {
        let (status, body) = srv.call_tool(&token, name, args.clone()).await;
        let code = error_code(&body);
        assert!(
            (status, code) == (200, INVALID_PARAMS) || (status, code) == (403, PERMISSION_DENIED),
            "{name:?} gave {status} {body}"
        );
    }
    assert_eq!(upstream(&srv), before, "a hidden tool reached Dust");
    flush(&srv).await;
    assert!(
        srv.audit
            .of_type(AuditEventType::ResourceModified)
            .is_empty()
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn z3_read_only_token_cannot_run_agents_or_write() {
    let srv = all_permissions_server().await;
    let token = srv.token(Some(READ_ONLY)).await;
    let before = upstream(&srv);

    let cases = [
        (
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "create a conversation"}),
            "execute:agents",
        ),
        (
            "upsert_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "z3", "text": "x"}),
            "write:knowledge-bases",
        ),
        (
            "delete_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "z3"}),
            "delete:knowledge-bases",
        ),
    ];
    for (tool, args, needs) in cases {
        let (status, body) = srv.call_tool(&token, tool, args).await;
        assert_eq!(status, 403, "{tool}: {body}");
        assert_eq!(error_code(&body), PERMISSION_DENIED, "{tool}: {body}");
        assert_eq!(
            body["error"]["message"],
            format!("permission denied: needs {needs}")
        );
    }
    // A prompt that runs an agent is refused the same way.
    let (status, body) = srv
        .mcp(
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 4, "method": "prompts/get", "params": {
                "name": "consult_agent",
                "arguments": {"agentId": ECHO_AGENT_ID, "question": "why?"}}}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        body["error"]["message"],
        "permission denied: needs execute:agents"
    );
    assert_eq!(upstream(&srv), before);
    flush(&srv).await;
    assert_eq!(srv.audit.of_type(AuditEventType::AuthzFail).len(), 4);
    srv.shutdown().await;
}

#[tokio::test]
async fn z4_resource_of_another_workspace_is_not_found() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    let own = srv.sim.workspace_id().to_owned();
    let other = srv.sim.other_workspace_id().to_owned();
    let before = upstream(&srv);

    let mut messages = Vec::new();
    for uri in [
        format!("dust://workspaces/{other}"),
        format!("dust://workspaces/{other}/agents"),
        format!("dust://workspaces/{other}/knowledge-bases/{HANDBOOK_DS_ID}"),
        format!("dust://workspaces/{own}/../{other}/agents"),
        format!("dust://workspaces/{own}%2F..%2F{other}/agents"),
        "dust://workspaces/doesNotExist/agents".to_owned(),
    ] {
        let (status, body) = read_resource(&srv, &token, &uri).await;
        assert_eq!(status, 200, "{uri}: {body}");
        assert_eq!(error_code(&body), RESOURCE_NOT_FOUND, "{uri}: {body}");
        messages.push(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .replace(&uri, "<uri>"),
        );
    }
    assert!(
        messages.windows(2).all(|w| w[0] == w[1]),
        "another workspace must look exactly like a missing one: {messages:?}"
    );
    assert_eq!(
        upstream(&srv),
        before,
        "Dust was asked about another workspace"
    );

    // A resource of the caller's own workspace that its permissions do not cover: -32003.
    let narrow = srv.token(Some(&["read:agents"])).await;
    srv.audit.clear();
    let uri = format!("dust://workspaces/{own}/knowledge-bases");
    let (status, body) = read_resource(&srv, &narrow, &uri).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    flush(&srv).await;
    let denials = srv.audit.of_type(AuditEventType::AuthzFail);
    assert_eq!(denials.len(), 1);
    assert_eq!(denials[0]["resource_type"], "resource");
    assert_eq!(denials[0]["resource_id"], uri);
    srv.shutdown().await;
}

#[tokio::test]
async fn z5_workspace_or_space_smuggled_into_arguments_is_refused_by_the_schema() {
    let srv = all_permissions_server().await;
    let token = srv.token(None).await;
    let other = srv.sim.other_workspace_id().to_owned();
    let before = upstream(&srv);

    let cases = [
        ("list_agents", json!({"workspaceId": other})),
        ("get_workspace", json!({"workspaceId": other})),
        (
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "hi", "workspaceId": other}),
        ),
        (
            "search_knowledge",
            json!({"query": "vacation", "spaceId": "vlt_0therSpace"}),
        ),
        (
            "search_knowledge",
            json!({"query": "vacation", "workspaceId": other, "wId": other}),
        ),
        (
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "d", "spaceId": "vlt_x"}),
        ),
    ];
    for (tool, args) in cases {
        let (status, body) = srv.call_tool(&token, tool, args.clone()).await;
        assert_eq!(status, 200);
        assert_eq!(error_code(&body), INVALID_PARAMS, "{tool} {args}: {body}");
    }
    assert_eq!(upstream(&srv), before, "a refused call reached Dust");

    // A workspace named in headers changes nothing either: the token's workspace is used.
    let (status, _, _) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-11-25"),
            ("X-Dust-Workspace-Id", &other),
            ("Dust-Workspace", &other),
        ],
        Some(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "list_agents", "arguments": {}}})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(upstream(&srv) > before);
    for request in srv.sim.requests() {
        let target = format!(
            "{} {}",
            request.path,
            request.query.as_deref().unwrap_or_default()
        );
        assert!(
            !target.contains(&other) && !request.body_text().contains(&other),
            "Dust saw the other workspace: {target}"
        );
    }
    srv.shutdown().await;
}

/// A second principal in the same workspace: a token record of another user id holding the same
/// sealed key, and a JWT for it signed by the server.
pub(crate) async fn other_user_token(srv: &TestServer, permissions: PermissionSet) -> String {
    let token_id = mcp_dust_server::auth::tokens::new_token_id();
    let now = srv.state.now();
    let now_secs = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let subject = TokenSubject {
        user_id: "usr_0123456789abcdef01234567".to_owned(),
        username: "mallory".to_owned(),
        workspace_id: srv.sim.workspace_id().to_owned(),
        permissions,
    };
    let record = TokenRecord {
        token_id: token_id.clone(),
        user_id: subject.user_id.clone(),
        username: subject.username.clone(),
        email: None,
        workspace_id: subject.workspace_id.clone(),
        permissions,
        sealed_key: srv
            .state
            .cipher
            .seal(&SecretString::from(srv.sim.api_key().to_owned()), &token_id),
        issued_at: now_secs,
        expires_at: now_secs + 3600,
        revoked_at: None,
        origin: mcp_dust_server::store::tokens::TokenOrigin::Login,
        chain_expires_at: None,
    };
    srv.state.tokens.save(record, now_secs).await.unwrap();
    srv.state.jwt.issue(&subject, &token_id, now).unwrap().0
}

#[tokio::test]
async fn z6_another_users_conversation_is_not_found_and_dust_is_not_asked() {
    let srv = TestServer::start().await;
    let alice = srv.token(None).await;
    let (_, body) = srv
        .call_tool(
            &alice,
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "alice's private question"}),
        )
        .await;
    let conversation = body["result"]["structuredContent"]["conversationId"]
        .as_str()
        .unwrap_or_else(|| panic!("no conversation id in {body}"))
        .to_owned();
    // Alice reads it back.
    let (_, body) = srv
        .call_tool(
            &alice,
            "get_conversation",
            json!({"conversationId": conversation}),
        )
        .await;
    assert_ne!(body["result"]["isError"], true, "{body}");
    let response = srv
        .http
        .get(srv.url(&format!(
            "/api/v1/workspaces/{}/conversations/{conversation}",
            srv.sim.workspace_id()
        )))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rest_view: Value = response.json().await.unwrap();
    assert_eq!(rest_view, body["result"]["structuredContent"]);
    let response = srv
        .http
        .get(srv.url(&format!(
            "/api/v1/workspaces/{}/conversations",
            srv.sim.workspace_id()
        )))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let listed: Value = response.json().await.unwrap();
    assert_eq!(listed["conversations"][0]["conversationId"], conversation);

    let mallory = other_user_token(
        &srv,
        PermissionSet::parse_list(
            "read:workspaces,read:agents,execute:agents,read:knowledge-bases",
        )
        .unwrap(),
    )
    .await;
    srv.audit.clear();
    let before = upstream(&srv);

    let (status, body) = srv
        .call_tool(
            &mallory,
            "get_conversation",
            json!({"conversationId": conversation}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("not found"), "{text}");

    // Exactly the answer of a conversation that does not exist (no existence oracle).
    let (_, missing) = srv
        .call_tool(
            &mallory,
            "get_conversation",
            json!({"conversationId": "n0tAC0nv01"}),
        )
        .await;
    assert_eq!(
        missing["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .replace("n0tAC0nv01", "<id>"),
        text.replace(&conversation, "<id>")
    );

    // Posting into it, or reading it as a resource: not found as well.
    let (_, body) = srv
        .call_tool(
            &mallory,
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "hijack", "conversationId": conversation}),
        )
        .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let uri = format!(
        "dust://workspaces/{}/conversations/{conversation}",
        srv.sim.workspace_id()
    );
    let (_, body) = read_resource(&srv, &mallory, &uri).await;
    assert_eq!(error_code(&body), RESOURCE_NOT_FOUND, "{body}");
    let (_, body) = srv
        .call_tool(&mallory, "list_conversations", json!({}))
        .await;
    assert_eq!(
        body["result"]["structuredContent"]["conversations"],
        json!([]),
        "{body}"
    );

    // The REST routes of the same operations say the same: 404, and an empty list.
    let ws = srv.sim.workspace_id().to_owned();
    let rest = |token: &str, path: String| {
        srv.http
            .get(srv.url(&format!("/api/v1/workspaces/{ws}/conversations{path}")))
            .bearer_auth(token.to_owned())
            .send()
    };
    let response = rest(&mallory, format!("/{conversation}")).await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let response = rest(&mallory, String::new()).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["conversations"], json!([]), "{body}");

    assert_eq!(
        upstream(&srv),
        before,
        "Dust was asked for another user's conversation"
    );
    flush(&srv).await;
    let denials = srv.audit.of_type(AuditEventType::AuthzFail);
    assert_eq!(denials.len(), 4, "one authz_fail per attempt: {denials:?}");
    for record in &denials {
        assert_eq!(record["resource_type"], "conversation");
        assert_eq!(record["resource_id"], conversation);
        assert_eq!(record["user_id"], "usr_0123456789abcdef01234567");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn z8_mass_assignment_is_refused_by_additional_properties_false() {
    let srv = all_permissions_server().await;
    let token = srv.token(None).await;
    let (_, body) = srv
        .mcp(
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}),
        )
        .await;
    for tool in body["result"]["tools"].as_array().unwrap() {
        assert_eq!(
            tool["inputSchema"]["additionalProperties"], false,
            "{} accepts unknown fields",
            tool["name"]
        );
    }
    let before = upstream(&srv);
    for extra in [
        json!({"permissions": ["admin:tokens"]}),
        json!({"visibility": "public"}),
        json!({"workspaceId": "w"}),
        json!({"spaceId": "vlt_x"}),
        json!({"sourceurl": "https://x"}),
    ] {
        let mut args = json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "z8", "text": "t"});
        args.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (_, body) = srv.call_tool(&token, "upsert_document", args).await;
        assert_eq!(error_code(&body), INVALID_PARAMS, "{extra}: {body}");
    }
    assert_eq!(
        upstream(&srv),
        before,
        "a mass-assignment attempt reached Dust"
    );
    srv.shutdown().await;
}

#[tokio::test]
async fn z9_metrics_and_other_verbs() {
    let srv = all_permissions_server().await;
    let plain = srv.token(Some(&["read:agents"])).await;
    let admin = srv.token(Some(&["read:agents", "admin:metrics"])).await;

    let (status, headers, _) = send(&srv, Method::GET, "/metrics", None, &[], None).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));

    let (status, headers, body) =
        send(&srv, Method::GET, "/metrics", Some(&plain), &[], None).await;
    assert_eq!(status, 403, "{body}");
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(!body.contains("http_requests_total"));

    // A tool call counts in tool_calls_total (by operation and outcome).
    let (status, _) = srv
        .call_tool(&admin, "list_agents", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, headers, body) =
        send(&srv, Method::GET, "/metrics", Some(&admin), &[], None).await;
    assert_eq!(status, 200);
    assert!(
        body.contains("mcp_dust_server_tool_calls_total{op=\"list_agents\",outcome=\"success\"}"),
        "{body}"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(
        body.contains("mcp_dust_server_http_requests_total"),
        "{body}"
    );
    // Each bounded in-memory structure reports its size and cap (docs/RELIABILITY.md, "Memory
    // bounds"): the two tokens above are held.
    let gauge = |name: &str, structure: &str| -> f64 {
        let prefix = format!("mcp_dust_server_{name}{{structure=\"{structure}\"}} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {body}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(gauge("store_entries", "tokens") >= 2.0);
    assert!(gauge("store_capacity", "tokens") >= 2.0);
    for structure in ["conversations", "sessions", "recent_audit", "agent_cache"] {
        assert!(gauge("store_capacity", structure) >= 1.0, "{structure}");
    }

    // Verb tampering never bypasses authentication.
    for method in [
        Method::OPTIONS,
        Method::HEAD,
        Method::TRACE,
        Method::PUT,
        Method::GET,
    ] {
        for path in ["/metrics", "/mcp", "/api/v1/auth/logout"] {
            let (status, _, _) = send(&srv, method.clone(), path, None, &[], None).await;
            assert!(
                status == 401 || status == 405,
                "{method} {path} without a token answered {status}"
            );
        }
        let (status, _, body) =
            send(&srv, method.clone(), "/metrics", Some(&plain), &[], None).await;
        assert!(
            !(200..300).contains(&status),
            "{method} /metrics: {status} {body}"
        );
    }
    for method in [Method::TRACE, Method::PUT, Method::PATCH] {
        let (status, _, _) = send(&srv, method.clone(), "/mcp", Some(&plain), &[], None).await;
        assert_eq!(status, 405, "{method} /mcp");
    }
    let (status, _, _) = send(&srv, Method::TRACE, "/metrics", Some(&admin), &[], None).await;
    assert_eq!(status, 405);

    // Invented methods share one `other` label: a client cannot grow the series without bound.
    for name in ["XCARDINALITYA", "XCARDINALITYB"] {
        let method = Method::from_bytes(name.as_bytes()).unwrap();
        let (status, _, _) = send(&srv, method, "/api/v1/status", None, &[], None).await;
        assert_eq!(status, 405, "{name}");
    }
    let (status, _, body) = send(&srv, Method::GET, "/metrics", Some(&admin), &[], None).await;
    assert_eq!(status, 200);
    assert!(!body.contains("XCARDINALITY"), "{body}");
    assert!(body.contains("method=\"other\""), "{body}");
    srv.shutdown().await;
}

#[tokio::test]
async fn z9_mcp_is_stateless_post_only_and_checks_origin_and_host() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    let accept = ("Accept", "application/json, text/event-stream");

    for method in [Method::GET, Method::DELETE] {
        let (status, headers, _) =
            send(&srv, method.clone(), "/mcp", Some(&token), &[accept], None).await;
        assert_eq!(status, 405, "{method} /mcp");
        assert!(!headers.contains_key("mcp-session-id"));
    }
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "authz-test", "version": "1.0"}}});
    let (status, headers, body) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[accept],
        Some(initialize.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !headers.contains_key("mcp-session-id"),
        "a session id was minted"
    );

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let version = ("MCP-Protocol-Version", "2025-11-25");
    let (status, headers, _) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[accept, version],
        Some(list.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!headers.contains_key("mcp-session-id"));

    // A page on the server's own host (same origin) is no rebinding attacker; a look-alike is.
    let port = srv.addr.port();
    for (origin, expected) in [
        (format!("http://127.0.0.1:{port}"), 200),
        (format!("http://localhost:{port}"), 200),
        (format!("http://127.0.0.1.evil.example:{port}"), 403),
        ("null".to_owned(), 403),
    ] {
        let (status, _, _) = send(
            &srv,
            Method::POST,
            "/mcp",
            Some(&token),
            &[accept, version, ("Origin", &origin)],
            Some(list.clone()),
        )
        .await;
        assert_eq!(status, expected, "Origin {origin}");
    }

    // A browser on another origin, and a rebound host name: refused before anything runs.
    let before = upstream(&srv);
    let (status, _, _) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[accept, version, ("Origin", "https://evil.example")],
        Some(list.clone()),
    )
    .await;
    assert_eq!(status, 403, "foreign Origin");
    let (status, _, _) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[accept, version, ("Host", "evil.example")],
        Some(list.clone()),
    )
    .await;
    assert_eq!(status, 403, "foreign Host (DNS rebinding)");
    let port = srv.addr.port().to_string();
    let (status, _, _) = send(
        &srv,
        Method::POST,
        "/mcp",
        Some(&token),
        &[accept, version, ("Host", &format!("evil.example:{port}"))],
        Some(list),
    )
    .await;
    assert_eq!(status, 403, "foreign Host with our port");
    assert_eq!(upstream(&srv), before);
    srv.shutdown().await;
}

#[tokio::test]
async fn z9_the_2026_07_28_era_works_with_a_bearer_token_and_only_with_one() {
    let srv = TestServer::start().await;
    let token = srv.token(Some(&["read:agents"])).await;

    let (status, body) = mcp_2026(&srv, Some(&token), "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"list_agents") && !names.contains(&"ask_agent"),
        "{names:?}"
    );
    // The caller's own lists, not to be kept: this caller may step up to more permissions
    // within the same client (see `lists_are_kept_by_callers_who_cannot_step_up`).
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let (status, body) = mcp_2026(&srv, Some(&token), method, json!({})).await;
        assert_eq!(status, 200, "{method}: {body}");
        assert_eq!(body["result"]["ttlMs"], json!(0), "{method}");
        assert_eq!(body["result"]["cacheScope"], json!("private"), "{method}");
    }

    let (status, body) = mcp_2026(
        &srv,
        Some(&token),
        "tools/call",
        json!({"name": "list_agents", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["result"]["structuredContent"]["agents"].is_array(),
        "{body}"
    );

    // The same permission check in this era.
    let before = upstream(&srv);
    let (status, body) = mcp_2026(
        &srv,
        Some(&token),
        "tools/call",
        json!({"name": "list_spaces", "arguments": {}}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{status} {body}");

    // No token, or a bad one: 401 before anything runs.
    let (status, _) = mcp_2026(&srv, None, "tools/list", json!({})).await;
    assert_eq!(status, 401);
    let (status, _) = mcp_2026(&srv, Some("not-a-token"), "tools/list", json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(upstream(&srv), before);
    srv.shutdown().await;
}

/// Z10: this server keeps no live stream a revoked token could hold. `/mcp` answers in JSON
/// (no SSE), GET (the standalone stream) is 405, and every POST is authenticated anew, so
/// revocation takes effect at the very next request. A long agent run already in flight ends
/// at `MCP_SERVER_TIMEOUT`.
#[tokio::test]
async fn z10_no_stream_outlives_a_revoked_token() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    let (status, headers, _) = send(
        &srv,
        Method::GET,
        "/mcp",
        Some(&token),
        &[("Accept", "text/event-stream")],
        None,
    )
    .await;
    assert_eq!(status, 405);
    assert!(
        !headers
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("event-stream"))
    );
    let (status, _) = srv.call_tool(&token, "list_agents", json!({})).await;
    assert_eq!(status, 200);

    let (status, _, body) = send(
        &srv,
        Method::POST,
        "/api/v1/auth/logout",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let before = upstream(&srv);
    let (status, _) = srv.call_tool(&token, "list_agents", json!({})).await;
    assert_eq!(status, 401, "a revoked token still works");
    assert_eq!(upstream(&srv), before);
    srv.shutdown().await;
}

/// M5: a `[usernames]` policy entry used to grant its permissions to anyone with any valid key
/// who typed that username at login. Such a file now stops the start, naming the entry and the
/// `[users]` fix; grants by key fingerprint keep working, whatever username a login asserts.
#[tokio::test]
async fn z11_permissions_never_come_from_an_asserted_username() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "default = [\"read:agents\"]\n\n[usernames]\nalice = [\"read:agents\", \"write:knowledge-bases\"]\n",
    )
    .unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"));
    command
        .arg("serve")
        .env_clear()
        .env("MCP_SERVER_PORT", "0")
        .env("LOG_LEVEL", "warn")
        .env("PERMISSIONS_POLICY_FILE", &policy)
        .kill_on_drop(true);
    let output = tokio::time::timeout(std::time::Duration::from_secs(20), command.output())
        .await
        .expect("the server started with a [usernames] policy instead of refusing")
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for needle in [
        "PERMISSIONS_POLICY_FILE",
        "[usernames]",
        "\"alice\"",
        "[users]",
    ] {
        assert!(stderr.contains(needle), "{needle} missing: {stderr}");
    }

    // By fingerprint: the key's own id gets the extra permission, the username is irrelevant.
    let sim = mcp_dust_server::sim::spawn(mcp_dust_server::sim::SimConfig::default())
        .await
        .unwrap();
    let keys = mcp_dust_server::auth::keys::Keys::derive(&SecretString::from(server::SECRET));
    let fingerprint = mcp_dust_server::auth::Principal::user_id_for_key(
        keys.fingerprint(),
        &mcp_dust_server::dust::DustCredentials::new(sim.workspace_id(), sim.api_key()),
    );
    std::fs::write(
        &policy,
        format!(
            "default = [\"read:agents\"]\n\n[users]\n\"{fingerprint}\" = [\"read:agents\", \"write:knowledge-bases\"]\n"
        ),
    )
    .unwrap();
    let srv = TestServer::start_on(
        sim,
        &[("PERMISSIONS_POLICY_FILE", policy.to_str().unwrap())],
        None,
    )
    .await;
    for username in ["mallory", "alice"] {
        let reply: Value = srv
            .login_with(json!({
                "apiKey": srv.sim.api_key(),
                "workspaceId": srv.sim.workspace_id(),
                "username": username,
            }))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(reply["user"]["id"], fingerprint.as_str(), "{reply}");
        assert_eq!(
            reply["user"]["permissions"],
            json!(["read:agents", "write:knowledge-bases"]),
            "{reply}"
        );
    }
    srv.shutdown().await;
}

/// L2: a token holding only `execute:agents` is not shown `consult_agent`, and getting it by
/// name is refused (needs `read:agents`) without the agent's description and before Dust.
#[tokio::test]
async fn z12_consult_agent_with_only_execute_agents_reveals_no_agent() {
    let srv = TestServer::start().await;
    let token = srv.token(Some(&["execute:agents"])).await;
    let (status, body) = srv
        .mcp(
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "prompts/list", "params": {}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["prompts"], json!([]), "{body}");
    let before = upstream(&srv);
    let (status, body) = srv
        .mcp(
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 2, "method": "prompts/get", "params": {
                "name": "consult_agent",
                "arguments": {"agentId": ECHO_AGENT_ID, "question": "What do you do?"},
            }}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    assert_eq!(body["error"]["data"]["requiredPermission"], "read:agents");
    assert!(!body.to_string().contains("Repeats your message"), "{body}");
    assert_eq!(upstream(&srv), before, "Dust was asked about the agent");
    srv.shutdown().await;
}

/// L4: `ALLOWED_HOSTS` (the DNS-rebinding defence) covered `/mcp` only. A foreign `Host` is now
/// refused on login, REST, OAuth, the console and the rest alike (403 `host_not_allowed`, the
/// one envelope, audited, nothing sent to Dust), an allowed one passes, and the orchestrator
/// probes answer whatever the `Host` (Kubernetes sends the pod IP).
#[tokio::test]
async fn z13_a_foreign_host_is_refused_on_every_route_but_the_probes() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    let port = srv.addr.port();
    let workspaces = format!("/api/v1/workspaces/{}", srv.sim.workspace_id());
    let login = json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id()});
    let register = json!({"redirect_uris": ["http://127.0.0.1:9/cb"], "client_name": "t"});
    let routes: Vec<(Method, &str, Option<&str>, Option<Value>)> = vec![
        (Method::POST, "/api/v1/auth/login", None, Some(login)),
        (Method::GET, &workspaces, Some(&token), None),
        (Method::GET, "/api/v1/status", None, None),
        (Method::GET, "/api/v1/openapi.json", None, None),
        (
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        ),
        (Method::GET, "/oauth/authorize", None, None),
        (Method::POST, "/oauth/register", None, Some(register)),
        (Method::GET, "/console", None, None),
        (Method::GET, "/no-such-route", None, None),
    ];
    let before = upstream(&srv);
    for host in ["evil.example".to_owned(), format!("evil.example:{port}")] {
        for (method, path, token, body) in &routes {
            let (status, headers, text) = send(
                &srv,
                method.clone(),
                path,
                *token,
                &[("Host", &host)],
                body.clone(),
            )
            .await;
            assert_eq!(status, 403, "{method} {path} with Host {host}: {text}");
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["error"]["code"], "host_not_allowed", "{path}: {body}");
            assert!(body["error"]["requestId"].is_string(), "{path}: {body}");
            assert!(headers.contains_key("x-content-type-options"), "{path}");
        }
    }
    assert_eq!(upstream(&srv), before, "a refused request reached Dust");
    flush(&srv).await;
    let refusals: Vec<Value> = srv
        .audit
        .of_type(AuditEventType::InputValidationFail)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == "host_not_allowed")
        .collect();
    assert_eq!(refusals.len(), 2 * routes.len(), "{refusals:?}");
    assert_eq!(refusals[0]["extra"]["host"], "evil.example");

    // The allowed names pass (the default list: the bind address and localhost, any port).
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        for (method, path, token, _) in &routes {
            if *method != Method::GET || *path == "/no-such-route" || *path == "/oauth/authorize" {
                continue;
            }
            let (status, _, text) =
                send(&srv, method.clone(), path, *token, &[("Host", &host)], None).await;
            assert_eq!(status, 200, "{path} with Host {host}: {text}");
        }
    }

    // Probes answer whatever the Host.
    for path in ["/health", "/live", "/ready"] {
        let (status, _, text) = send(
            &srv,
            Method::GET,
            path,
            None,
            &[("Host", "10.1.2.3:5001")],
            None,
        )
        .await;
        assert_eq!(status, 200, "{path}: {text}");
    }

    // No Host at all (HTTP/1.0): 400 in the envelope; a probe still answers.
    for (path, expected) in [("/api/v1/status", "400"), ("/health", "200")] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.0 {expected}")),
            "{path}: {answer}"
        );
    }
    srv.shutdown().await;
}

/// `search_workspace` needs `read:knowledge-bases`, in both MCP eras and over REST: without it
/// the call is refused and nothing reaches Dust; with it the title search answers.
#[tokio::test]
async fn z14_search_workspace_needs_read_knowledge_bases_in_both_eras() {
    let srv = TestServer::start().await;
    let narrow = srv.token(Some(&["read:agents"])).await;
    let reader = srv.token(Some(&["read:knowledge-bases"])).await;
    let args = json!({"query": "deploy", "kind": "document", "limit": 5});
    let rest = format!("/api/v1/workspaces/{}/search", srv.sim.workspace_id());
    let before = upstream(&srv);

    let (status, body) = srv
        .call_tool(&narrow, "search_workspace", args.clone())
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    assert_eq!(
        body["error"]["message"],
        "permission denied: needs read:knowledge-bases"
    );
    let (status, body) = mcp_2026(
        &srv,
        Some(&narrow),
        "tools/call",
        json!({"name": "search_workspace", "arguments": args}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    let (status, _, text) = send(
        &srv,
        Method::POST,
        &rest,
        Some(&narrow),
        &[],
        Some(args.clone()),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("insufficient_scope"), "{text}");
    assert_eq!(
        upstream(&srv),
        before,
        "Dust was called for a denied search"
    );

    let found = |body: &Value| -> Vec<String> {
        body["result"]["structuredContent"]["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|n| n["nodeId"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = srv
        .call_tool(&reader, "search_workspace", args.clone())
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(found(&body), ["slack-deploys", "runbooks/deploy.md"]);
    let (status, body) = mcp_2026(
        &srv,
        Some(&reader),
        "tools/call",
        json!({"name": "search_workspace", "arguments": args}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(found(&body), ["slack-deploys", "runbooks/deploy.md"]);

    // Invalid input, in both eras: -32602 naming the problem, and Dust is not asked.
    let before = upstream(&srv);
    let bad = json!({"query": "deploy", "limit": 0});
    let (_, body) = srv
        .call_tool(&reader, "search_workspace", bad.clone())
        .await;
    assert_eq!(error_code(&body), INVALID_PARAMS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limit must be between 1 and 100, got 0"),
        "{body}"
    );
    let (_, body) = mcp_2026(
        &srv,
        Some(&reader),
        "tools/call",
        json!({"name": "search_workspace", "arguments": bad}),
    )
    .await;
    assert_eq!(error_code(&body), INVALID_PARAMS, "{body}");
    assert_eq!(upstream(&srv), before, "Dust was called for invalid input");
    srv.shutdown().await;
}

/// The table tools over HTTP, in both MCP eras: `list_table_rows` needs
/// `read:knowledge-bases` and `upsert_table_rows` `write:knowledge-bases`; without them the call
/// is refused and nothing reaches Dust; with them they answer; bad rows are `-32602` and Dust is
/// not asked.
#[tokio::test]
async fn z15_table_tools_need_their_permissions_in_both_eras() {
    let srv = all_permissions_server().await;
    let narrow = srv.token(Some(&["read:agents"])).await;
    let reader = srv.token(Some(&["read:knowledge-bases"])).await;
    let writer = srv
        .token(Some(&["read:knowledge-bases", "write:knowledge-bases"]))
        .await;
    let read = json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "limit": 2});
    let write = json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
        "rows": [{"rowId": "z15", "value": {"city": "Zurich", "seats": 15}}]});
    let before = upstream(&srv);
    for (token, tool, args, needs) in [
        (&narrow, "list_table_rows", &read, "read:knowledge-bases"),
        (
            &reader,
            "upsert_table_rows",
            &write,
            "write:knowledge-bases",
        ),
    ] {
        let (status, body) = srv.call_tool(token, tool, args.clone()).await;
        assert_eq!(status, 403, "{tool}: {body}");
        assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
        assert_eq!(
            body["error"]["message"],
            format!("permission denied: needs {needs}")
        );
        let (status, body) = mcp_2026(
            &srv,
            Some(token),
            "tools/call",
            json!({"name": tool, "arguments": args}),
        )
        .await;
        assert_eq!(status, 403, "{tool}: {body}");
        assert_eq!(error_code(&body), PERMISSION_DENIED, "{body}");
    }
    assert_eq!(upstream(&srv), before, "Dust was called for a denied call");

    for (token, tool, args) in [
        (&reader, "list_table_rows", &read),
        (&writer, "upsert_table_rows", &write),
    ] {
        let (status, body) = srv.call_tool(token, tool, args.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["result"]["isError"] != json!(true), "{body}");
        let (status, body) = mcp_2026(
            &srv,
            Some(token),
            "tools/call",
            json!({"name": tool, "arguments": args}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let content = &body["result"]["structuredContent"];
        match tool {
            "list_table_rows" => assert_eq!(content["rows"].as_array().unwrap().len(), 2),
            _ => assert_eq!(content["upserted"], 1, "{body}"),
        }
    }

    let before = upstream(&srv);
    let bad = json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
        "rows": [{"rowId": "z", "value": {"when": {"type": "datetime"}}}]});
    let (_, body) = srv
        .call_tool(&writer, "upsert_table_rows", bad.clone())
        .await;
    assert_eq!(error_code(&body), INVALID_PARAMS, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("rows[0].value.when must be"),
        "{body}"
    );
    let (_, body) = mcp_2026(
        &srv,
        Some(&writer),
        "tools/call",
        json!({"name": "upsert_table_rows", "arguments": bad}),
    )
    .await;
    assert_eq!(error_code(&body), INVALID_PARAMS, "{body}");
    assert_eq!(upstream(&srv), before, "Dust was called for invalid input");
    srv.shutdown().await;
}

/// A caller who holds every permission a tool needs cannot gain a tool by stepping up: their
/// lists may be kept five minutes (`cacheScope: private`), so a 2026-07-28 client lists once
/// and calls many times. A caller who may step up gets `ttlMs: 0` (the z9 test).
#[tokio::test]
async fn lists_are_kept_by_callers_who_cannot_step_up() {
    let all = "read:workspaces,read:agents,execute:agents,read:knowledge-bases,\
write:knowledge-bases,delete:knowledge-bases,read:connectors,admin:audit,admin:metrics,admin:tokens";
    let srv = TestServer::start_with(&[("PERMISSIONS_DEFAULT", all)]).await;
    let token = srv.token(None).await;
    for method in [
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
    ] {
        let (status, body) = mcp_2026(&srv, Some(&token), method, json!({})).await;
        assert_eq!(status, 200, "{method}: {body}");
        assert_eq!(body["result"]["ttlMs"], json!(300_000), "{method}");
        assert_eq!(body["result"]["cacheScope"], json!("private"), "{method}");
    }
    srv.shutdown().await;

    // With agents as tools, the tool list is kept only as long as the agent list
    // (`AGENT_CACHE_TTL`, 15 s by default): agents come and go in Dust.
    let srv =
        TestServer::start_with(&[("PERMISSIONS_DEFAULT", all), ("DUST_AGENT_TOOLS", "all")]).await;
    let token = srv.token(None).await;
    let (status, body) = mcp_2026(&srv, Some(&token), "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["ttlMs"], json!(15_000));
    srv.shutdown().await;
}
