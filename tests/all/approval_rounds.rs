//! Agents that use tools in the 2026-07-28 era (issue 17): the server cannot send the person a
//! request in the middle of a call, so a run that waits for a person ends the call with an
//! `input_required` result (the form, and the run's sealed `requestState`); the client asks the
//! person and calls again with the answer and the state, and the run goes on. Driven here over
//! the stateless HTTP transport with raw JSON-RPC, as any 2026 client sends it; the state is
//! refused when forged, moved to another person or call, or replayed, and the refusal is
//! audited.

use mcp_dust_server::{
    audit::AuditEventType,
    ops::pause::PAUSE_REFUSED,
    sim::{APPROVAL_AGENT_ID, QUESTION_AGENT_ID},
};
use serde_json::{Value, json};

use crate::common::http::TestServer;

/// A `tools/call ask_agent` of the 2026-07-28 era with `capabilities`, and `extra` params
/// (`inputResponses`, `requestState`) merged in.
async fn call_2026(
    s: &TestServer,
    token: &str,
    capabilities: Value,
    arguments: &Value,
    extra: Value,
) -> Value {
    let mut params = json!({"name": "ask_agent", "arguments": arguments});
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            params[k] = v;
        }
    }
    let (status, body) = s
        .mcp_2026(Some(token), &capabilities, "tools/call", params)
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

fn form_client() -> Value {
    json!({"elicitation": {"form": {}}})
}

fn mailer(message: &str) -> Value {
    json!({"agentId": APPROVAL_AGENT_ID, "message": message})
}

/// The bodies the simulator received on `path_end` (POST).
fn posted(s: &TestServer, path_end: &str) -> Vec<Value> {
    s.sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// The first round of asking the Mailer: the form the person is shown and the state.
async fn first_round(s: &TestServer, token: &str, arguments: &Value) -> (Value, String) {
    let body = call_2026(s, token, form_client(), arguments, json!({})).await;
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required", "{body}");
    let request = &result["inputRequests"]["person"];
    assert_eq!(request["method"], "elicitation/create", "{body}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    (request["params"].clone(), state)
}

#[tokio::test]
async fn a_2026_client_is_asked_by_an_input_required_round_and_the_decision_reaches_dust() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let cases = [
        (
            json!({"action": "accept", "content": {"always": false}}),
            "approved",
            "I sent your message to ceo@example.com.",
        ),
        (
            json!({"action": "decline"}),
            "rejected",
            "I did not send the email: the action was rejected.",
        ),
        (
            json!({"action": "accept", "content": {"always": true}}),
            "always_approved",
            "I sent your message to ceo@example.com.",
        ),
    ];
    for (i, (reply, decision, expected)) in cases.into_iter().enumerate() {
        let arguments = mailer(&format!("tell the CEO, take {i}"));
        let (form, state) = first_round(&s, &token, &arguments).await;
        // The person sees the agent, the tool, its server and its inputs, and the form of the
        // interface; the sealed state carries no key.
        let message = form["message"].as_str().unwrap();
        assert!(
            message.contains("Mailer") && message.contains("send_email (Gmail)"),
            "{message}"
        );
        assert!(message.contains("ceo@example.com"), "{message}");
        assert_eq!(
            form["requestedSchema"]["properties"]["always"]["type"],
            "boolean"
        );
        assert!(!state.contains(s.sim.api_key()));
        assert_eq!(
            posted(&s, "/validate-action").len(),
            i,
            "nothing decided yet"
        );

        let body = call_2026(
            &s,
            &token,
            form_client(),
            &arguments,
            json!({"inputResponses": {"person": reply}, "requestState": state}),
        )
        .await;
        let result = &body["result"];
        assert_ne!(result["isError"], true, "{body}");
        assert_eq!(result["structuredContent"]["answer"], expected, "{body}");
        assert_eq!(posted(&s, "/validate-action")[i]["approved"], decision);
    }
    // Always allowed: Dust no longer asks, and neither does the server.
    let body = call_2026(&s, &token, form_client(), &mailer("again"), json!({})).await;
    assert_eq!(body["result"]["resultType"], "complete", "{body}");
    assert_eq!(posted(&s, "/validate-action").len(), 3);
    s.state.auditor.flush().await;
    assert_eq!(
        s.audit.of_type(AuditEventType::AgentActionApproved).len(),
        2
    );
    assert_eq!(
        s.audit.of_type(AuditEventType::AgentActionRejected).len(),
        1
    );
}

#[tokio::test]
async fn a_forged_moved_or_replayed_state_is_refused_audited_and_reaches_no_dust() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let arguments = mailer("tell the CEO");
    let (_, state) = first_round(&s, &token, &arguments).await;
    let approve = |state: &str| {
        json!({
            "inputResponses": {"person": {"action": "accept", "content": {"always": true}}},
            "requestState": state,
        })
    };
    let refused = |body: &Value| {
        assert_eq!(body["error"]["code"], -32602, "{body}");
        assert_eq!(body["error"]["message"], PAUSE_REFUSED, "{body}");
    };

    // Altered by one character, made up, or moved to another question: refused.
    let mut altered: Vec<char> = state.chars().collect();
    let last = altered.len() - 1;
    altered[last] = if altered[last] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    for forged in [altered.as_str(), "rs1.e30.AAAA", ""] {
        refused(&call_2026(&s, &token, form_client(), &arguments, approve(forged)).await);
    }
    let other_question = mailer("tell the CEO something else");
    refused(&call_2026(&s, &token, form_client(), &other_question, approve(&state)).await);
    // Another person's token: refused.
    let response = s
        .login_with(
            json!({"apiKey": s.sim.other_api_key(), "workspaceId": s.sim.other_workspace_id()}),
        )
        .await;
    let other: Value = response.json().await.unwrap();
    let other = other["token"].as_str().unwrap();
    refused(&call_2026(&s, other, form_client(), &arguments, approve(&state)).await);
    assert!(
        posted(&s, "/validate-action").is_empty(),
        "a refused state reached Dust"
    );

    // The real one opens once.
    let body = call_2026(&s, &token, form_client(), &arguments, approve(&state)).await;
    assert_eq!(
        body["result"]["structuredContent"]["answer"], "I sent your message to ceo@example.com.",
        "{body}"
    );
    refused(&call_2026(&s, &token, form_client(), &arguments, approve(&state)).await);
    assert_eq!(posted(&s, "/validate-action").len(), 1);

    s.state.auditor.flush().await;
    let reasons: Vec<String> = s
        .audit
        .of_type(AuditEventType::AuthzFail)
        .iter()
        .filter_map(|e| e["extra"]["reason"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        reasons,
        ["forged", "forged", "forged", "forged", "forged", "replayed"],
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_2026_client_without_elicitation_gets_the_tool_refused_by_name() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let body = call_2026(&s, &token, json!({}), &mailer("tell the CEO"), json!({})).await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("send_email (Gmail)") && text.contains("rejected"),
        "{text}"
    );
    assert_eq!(posted(&s, "/validate-action")[0]["approved"], "rejected");
}

#[tokio::test]
async fn a_2026_client_answers_an_agents_question_in_a_round() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let arguments = json!({"agentId": QUESTION_AGENT_ID, "message": "book a meeting room"});
    let body = call_2026(&s, &token, form_client(), &arguments, json!({})).await;
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required", "{body}");
    let form = &result["inputRequests"]["person"]["params"];
    assert!(
        form["message"]
            .as_str()
            .unwrap()
            .contains("Which office should I book the meeting room in?"),
        "{form}"
    );
    assert_eq!(
        form["requestedSchema"]["properties"]["choice"]["enum"],
        json!(["Paris", "Berlin"])
    );
    let state = result["requestState"].as_str().unwrap();
    let body = call_2026(
        &s,
        &token,
        form_client(),
        &arguments,
        json!({
            "inputResponses": {"person": {"action": "accept", "content": {"choice": "Berlin"}}},
            "requestState": state,
        }),
    )
    .await;
    assert_eq!(
        body["result"]["structuredContent"]["answer"], "I booked a meeting room in Berlin.",
        "{body}"
    );
    assert_eq!(
        posted(&s, "/answer-question")[0]["answer"],
        json!({"selectedOptions": [1]})
    );
    s.state.auditor.flush().await;
    let answered = s.audit.of_type(AuditEventType::AgentQuestionAnswered);
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(answered[0]["extra"]["replied_with"], "option");
    assert!(
        !answered[0].to_string().contains("Berlin"),
        "the answer is private"
    );
}

/// An approval nobody comes back for is rejected in Dust at `MCP_SERVER_TIMEOUT`, as a call
/// waiting for the decision would; a retry after that is refused.
#[tokio::test]
async fn an_approval_nobody_comes_back_for_is_rejected_at_the_timeout() {
    let s = TestServer::start_with(&[("MCP_SERVER_TIMEOUT", "1")]).await;
    let token = s.token(None).await;
    let arguments = mailer("tell the CEO");
    let (_, state) = first_round(&s, &token, &arguments).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while posted(&s, "/validate-action").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the waiting approval was never rejected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(posted(&s, "/validate-action")[0]["approved"], "rejected");
    let late = json!({
        "inputResponses": {"person": {"action": "accept", "content": {"always": false}}},
        "requestState": state,
    });
    let body = call_2026(&s, &token, form_client(), &arguments, late).await;
    assert_eq!(body["error"]["message"], PAUSE_REFUSED, "{body}");
    assert_eq!(posted(&s, "/validate-action").len(), 1);
    s.state.auditor.flush().await;
    let rejected = s.audit.of_type(AuditEventType::AgentActionRejected);
    assert_eq!(
        rejected[0]["extra"]["decided_by"], "timeout",
        "{rejected:?}"
    );
}
