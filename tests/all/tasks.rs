//! Long agent runs as MCP tasks (issue 23, `io.modelcontextprotocol/tasks`): a client that
//! declares the extension gets a task handle from `ask_agent` and polls `tasks/get` through
//! `working` (and `input_required` while the run waits for a person, answered by
//! `tasks/update`) to `completed`; `tasks/cancel` cancels the Dust run; another person's handle
//! is not found; a task outlives the instance that started it. Driven over HTTP with raw
//! JSON-RPC in the 2026-07-28 era, as any requester sends it.

use std::time::Duration;

use mcp_dust_server::{
    audit::AuditEventType,
    sim::{APPROVAL_AGENT_ID, ECHO_AGENT_ID, SLOW_AGENT_ID},
};
use serde_json::{Value, json};

use crate::common::http::TestServer;

/// A client that declares the tasks extension, and form elicitation when `asks`.
fn requester(asks: bool) -> Value {
    let mut capabilities = json!({"extensions": {"io.modelcontextprotocol/tasks": {}}});
    if asks {
        capabilities["elicitation"] = json!({"form": {}});
    }
    capabilities
}

/// One 2026-07-28 request with `capabilities` (the name comes from the params).
async fn rpc(
    s: &TestServer,
    token: &str,
    capabilities: &Value,
    method: &str,
    params: Value,
) -> Value {
    s.mcp_2026(Some(token), capabilities, method, params)
        .await
        .1
}

/// Starts `ask_agent` as a task; returns its handle.
async fn start(
    s: &TestServer,
    token: &str,
    capabilities: &Value,
    agent: &str,
    message: &str,
) -> String {
    let body = rpc(
        s,
        token,
        capabilities,
        "tools/call",
        json!({"name": "ask_agent", "arguments": {"agentId": agent, "message": message}}),
    )
    .await;
    let result = &body["result"];
    assert_eq!(result["resultType"], "task", "{body}");
    assert_eq!(result["status"], "working", "{body}");
    assert!(result["ttlMs"].as_u64().unwrap() > 0, "{body}");
    result["taskId"].as_str().unwrap().to_owned()
}

async fn get(s: &TestServer, token: &str, capabilities: &Value, task: &str) -> Value {
    rpc(s, token, capabilities, "tasks/get", json!({"taskId": task})).await
}

/// Polls until the task's status is not `working`.
async fn settle(s: &TestServer, token: &str, capabilities: &Value, task: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = get(s, token, capabilities, task).await;
        if body["result"]["status"] != "working" {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still working: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn posted(s: &TestServer, path_end: &str) -> Vec<Value> {
    s.sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn a_task_runs_to_the_same_result_as_the_blocking_call_and_is_audited_once() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(false);
    // The server says it speaks the extension.
    let discovered = rpc(&s, &token, &client, "server/discover", json!({})).await;
    assert!(
        discovered["result"]["capabilities"]["extensions"]
            .get("io.modelcontextprotocol/tasks")
            .is_some(),
        "{discovered}"
    );
    let task = start(&s, &token, &client, ECHO_AGENT_ID, "hello, task").await;
    let done = settle(&s, &token, &client, &task).await;
    let result = &done["result"];
    assert_eq!(result["status"], "completed", "{done}");
    assert_eq!(result["taskId"], task.as_str());
    let answer = &result["result"]["structuredContent"];
    assert_eq!(answer["answer"], "You said: hello, task", "{done}");
    assert_eq!(answer["agentId"], ECHO_AGENT_ID);
    assert!(answer["conversationId"].as_str().is_some());
    // Read again: the same result, and the completion is recorded once.
    let again = get(&s, &token, &client, &task).await;
    assert_eq!(again["result"]["result"], result["result"]);
    s.state.auditor.flush().await;
    assert_eq!(s.audit.of_type(AuditEventType::TaskCreated).len(), 1);
    assert_eq!(s.audit.of_type(AuditEventType::TaskCompleted).len(), 1);
}

#[tokio::test]
async fn a_cancelled_task_cancels_the_dust_run() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(false);
    let task = start(&s, &token, &client, SLOW_AGENT_ID, "take your time").await;
    let working = get(&s, &token, &client, &task).await;
    assert_eq!(working["result"]["status"], "working", "{working}");
    assert!(
        working["result"]["statusMessage"].as_str().is_some(),
        "{working}"
    );
    let ack = rpc(&s, &token, &client, "tasks/cancel", json!({"taskId": task})).await;
    assert!(ack.get("error").is_none(), "{ack}");
    assert_eq!(posted(&s, "/cancel").len(), 1);
    let cancelled = settle(&s, &token, &client, &task).await;
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    s.state.auditor.flush().await;
    assert_eq!(s.audit.of_type(AuditEventType::TaskCancelled).len(), 1);
}

#[tokio::test]
async fn an_approval_makes_the_task_input_required_and_tasks_update_answers_it() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(true);
    let task = start(&s, &token, &client, APPROVAL_AGENT_ID, "tell the CEO").await;
    let waiting = settle(&s, &token, &client, &task).await;
    let result = &waiting["result"];
    assert_eq!(result["status"], "input_required", "{waiting}");
    let requests = result["inputRequests"].as_object().unwrap();
    assert_eq!(requests.len(), 1, "{waiting}");
    let (key, request) = requests.iter().next().unwrap();
    assert_eq!(request["method"], "elicitation/create");
    let message = request["params"]["message"].as_str().unwrap();
    assert!(message.contains("send_email (Gmail)"), "{message}");
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["always"]["type"],
        "boolean"
    );

    // A key the task does not wait on, or an answer that is not one, changes nothing.
    for responses in [
        json!({"not-an-action": {"action": "accept"}}),
        json!({key: {"action": "maybe"}}),
    ] {
        let refused = rpc(
            &s,
            &token,
            &client,
            "tasks/update",
            json!({"taskId": task, "inputResponses": responses}),
        )
        .await;
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
    }
    assert!(posted(&s, "/validate-action").is_empty());

    let ack = rpc(
        &s,
        &token,
        &client,
        "tasks/update",
        json!({"taskId": task, "inputResponses": {key: {"action": "accept", "content": {"always": false}}}}),
    )
    .await;
    assert!(ack.get("error").is_none(), "{ack}");
    assert_eq!(posted(&s, "/validate-action")[0]["approved"], "approved");
    let done = settle(&s, &token, &client, &task).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["answer"],
        "I sent your message to ceo@example.com."
    );
}

#[tokio::test]
async fn a_requester_that_cannot_be_asked_gets_the_tool_refused() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(false);
    let task = start(&s, &token, &client, APPROVAL_AGENT_ID, "tell the CEO").await;
    let done = loop {
        let body = settle(&s, &token, &client, &task).await;
        if body["result"]["status"] != "input_required" {
            break body;
        }
    };
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["answer"],
        "I did not send the email: the action was rejected."
    );
    assert_eq!(posted(&s, "/validate-action")[0]["approved"], "rejected");
}

#[tokio::test]
async fn another_persons_task_is_not_found_and_reaches_no_dust() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(false);
    let task = start(&s, &token, &client, SLOW_AGENT_ID, "mine").await;
    let other: Value = s
        .login_with(
            json!({"apiKey": s.sim.other_api_key(), "workspaceId": s.sim.other_workspace_id()}),
        )
        .await
        .json()
        .await
        .unwrap();
    let other = other["token"].as_str().unwrap();
    for (method, params) in [
        ("tasks/get", json!({"taskId": task})),
        ("tasks/cancel", json!({"taskId": task})),
        ("tasks/get", json!({"taskId": "made-up"})),
    ] {
        let body = rpc(&s, other, &client, method, params).await;
        assert_eq!(body["error"]["code"], -32602, "{method}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("No such task"),
            "{body}"
        );
    }
    assert!(
        posted(&s, "/cancel").is_empty(),
        "another person cancelled the run"
    );
    s.state.auditor.flush().await;
    assert_eq!(s.audit.of_type(AuditEventType::AuthzFail).len(), 3);
    // Without the extension declared, tasks/* are refused by capability (-32021).
    let body = get(&s, &token, &json!({}), &task).await;
    assert_eq!(body["error"]["code"], -32021, "{body}");
}

#[tokio::test]
async fn a_task_outlives_the_instance_that_started_it() {
    // The run takes far longer than a blocking call may (MCP_SERVER_TIMEOUT=1): a task does
    // not end with the call.
    let mut first = TestServer::start_with(&[("MCP_SERVER_TIMEOUT", "1")]).await;
    let login = json!({"apiKey": first.sim.api_key(), "workspaceId": first.sim.workspace_id()});
    let token = first.token(None).await;
    let client = requester(false);
    let task = start(&first, &token, &client, SLOW_AGENT_ID, "survive a restart").await;
    first.stop_accepting();

    // Another instance (same SECURITY_SECRET_KEY, its own memory stores) in front of the same
    // Dust: the handle still reads, and the run's result arrives there.
    let spare = mcp_dust_server::sim::spawn(Default::default())
        .await
        .unwrap();
    let second = TestServer::start_on(
        spare,
        &[("MCP_SERVER_TIMEOUT", "1")],
        Some(&first.sim.base_url()),
    )
    .await;
    let token: Value = second.login_with(login).await.json().await.unwrap();
    let token = token["token"].as_str().unwrap();
    let done = settle(&second, token, &client, &task).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");
    assert_eq!(
        done["result"]["result"]["structuredContent"]["answer"]
            .as_str()
            .map(|a| !a.is_empty()),
        Some(true),
        "{done}"
    );
}

#[tokio::test]
async fn one_person_may_run_a_bounded_number_of_tasks() {
    use mcp_dust_server::ops::task_slots::MAX_TASKS_RUNNING;
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let client = requester(false);
    let mut tasks = Vec::new();
    for i in 0..MAX_TASKS_RUNNING {
        tasks.push(start(&s, &token, &client, SLOW_AGENT_ID, &format!("task {i}")).await);
    }
    let posted_before = posted(&s, "/conversations").len();
    let body = rpc(
        &s,
        &token,
        &client,
        "tools/call",
        json!({"name": "ask_agent", "arguments": {"agentId": SLOW_AGENT_ID, "message": "one more"}}),
    )
    .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("tasks running"), "{text}");
    assert_eq!(
        posted(&s, "/conversations").len(),
        posted_before,
        "reached Dust"
    );

    // Cancelling one makes room.
    let ack = rpc(
        &s,
        &token,
        &client,
        "tasks/cancel",
        json!({"taskId": tasks[0]}),
    )
    .await;
    assert!(ack.get("error").is_none(), "{ack}");
    start(&s, &token, &client, SLOW_AGENT_ID, "now there is room").await;
}

/// REST: `Prefer: respond-async` makes execute a task (`202`, `Location`); `GET` reads it
/// through an approval (answered at the actions route) to its answer; `DELETE` cancels a run;
/// another person's task is 404.
#[tokio::test]
async fn rest_runs_an_agent_as_a_task() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let ws = s.sim.workspace_id().to_owned();
    let execute = |agent: &str, message: &str| {
        s.http
            .post(s.url(&format!("/api/v1/workspaces/{ws}/agents/{agent}/execute")))
            .bearer_auth(&token)
            .header("Prefer", "respond-async")
            .json(&json!({"message": message}))
            .send()
    };
    let read = |location: String| s.http.get(s.url(&location)).bearer_auth(&token).send();
    let settle = |location: String| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let task: Value = read(location.clone()).await.unwrap().json().await.unwrap();
            if task["status"] != "working" {
                return task;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still working: {task}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    let started = execute(APPROVAL_AGENT_ID, "tell the CEO").await.unwrap();
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"].to_str().unwrap().to_owned();
    let task: Value = started.json().await.unwrap();
    assert_eq!(task["status"], "working");
    assert!(
        location.ends_with(task["taskId"].as_str().unwrap()),
        "{location}"
    );
    let waiting = settle(location.clone()).await;
    assert_eq!(waiting["status"], "input_required", "{waiting}");
    let action = &waiting["waiting"][0];
    assert_eq!(action["tool"], "send_email", "{waiting}");
    let decided = s
        .http
        .post(s.url(&format!(
            "/api/v1/workspaces/{ws}/conversations/{}/actions/{}",
            action["conversationId"].as_str().unwrap(),
            action["actionId"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let done = settle(location.clone()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["answer"]["answer"],
        "I sent your message to ceo@example.com."
    );

    // Another person: 404, and nothing cancelled.
    let other: Value = s
        .login_with(
            json!({"apiKey": s.sim.other_api_key(), "workspaceId": s.sim.other_workspace_id()}),
        )
        .await
        .json()
        .await
        .unwrap();
    let other_ws = s.sim.other_workspace_id();
    let tail = location.rsplit('/').next().unwrap();
    let foreign = s
        .http
        .delete(s.url(&format!("/api/v1/workspaces/{other_ws}/tasks/{tail}")))
        .bearer_auth(other["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 404);

    let slow = execute(SLOW_AGENT_ID, "take your time").await.unwrap();
    let location = slow.headers()["location"].to_str().unwrap().to_owned();
    let cancelled = s
        .http
        .delete(s.url(&location))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 204);
    assert_eq!(posted(&s, "/cancel").len(), 1);
    assert_eq!(settle(location).await["status"], "cancelled");
}
