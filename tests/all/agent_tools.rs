//! Agents as tools of their own (`DUST_AGENT_TOOLS`, issue 24): each chosen agent the caller
//! can see is the tool `ask_<name>`, listed only to callers with `execute:agents`, named the
//! same from one list to the next, and calling it is `ask_agent` for that agent: in process
//! over a duplex (stdio's shape), and over HTTP in both protocol eras, `input_required` rounds
//! included.

use mcp_dust_server::{
    audit::AuditEventType,
    auth::{Permission, PermissionSet},
    config::AgentTools,
    mcp::PERMISSION_DENIED,
    sim::{DUST_AGENT_ID, ECHO_AGENT_ID},
};
use rmcp::model::Tool;
use serde_json::{Value, json};

use crate::common::{McpTest, error_code, http::TestServer, sim_config, structured};

/// The tools the simulator's agents become with `all`, in the simulator's order.
const SIM_AGENT_TOOLS: [&str; 9] = [
    "ask_dust",
    "ask_hr_handbook",
    "ask_echo",
    "ask_broken",
    "ask_sloth",
    "ask_reporter",
    "ask_mailer",
    "ask_planner",
    "ask_drive_reader",
];

async fn start(choice: AgentTools) -> McpTest {
    McpTest::start_with(sim_config(), PermissionSet::DEFAULT, |s| {
        s.agent_tools = choice;
    })
    .await
}

fn agent_tool_names(tools: &[Tool]) -> Vec<String> {
    tools
        .iter()
        .map(|t| t.name.to_string())
        .filter(|n| n.starts_with("ask_") && n != "ask_agent")
        .collect()
}

/// Everything but agentId, execute:agents.
fn without_execute() -> PermissionSet {
    PermissionSet::DEFAULT
        .iter()
        .filter(|p| *p != Permission::ExecuteAgents)
        .collect()
}

#[tokio::test]
async fn every_agent_is_a_tool_described_like_ask_agent_and_named_stably() {
    let t = start(AgentTools::All).await;
    let tools = t.client.list_all_tools().await.unwrap();
    assert_eq!(agent_tool_names(&tools), SIM_AGENT_TOOLS);
    let again = t.client.list_all_tools().await.unwrap();
    assert_eq!(agent_tool_names(&again), SIM_AGENT_TOOLS);

    let ask = tools.iter().find(|t| t.name == "ask_agent").unwrap();
    let echo = tools.iter().find(|t| t.name == "ask_echo").unwrap();
    assert_eq!(
        echo.description.as_deref(),
        Some("Repeats your message back, verbatim.")
    );
    assert_eq!(echo.title.as_deref(), Some("Ask Echo"));
    let properties = echo.input_schema["properties"].as_object().unwrap();
    let mut keys: Vec<_> = properties.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["attachments", "conversationId", "message"]);
    assert_eq!(
        properties["attachments"], ask.input_schema["properties"]["attachments"],
        "attached the same way as ask_agent"
    );
    assert_eq!(echo.input_schema["required"], json!(["message"]));
    assert_eq!(echo.input_schema["additionalProperties"], json!(false));
    assert_eq!(echo.output_schema, ask.output_schema);
    let (mut mine, theirs) = (
        echo.annotations.clone().unwrap(),
        ask.annotations.clone().unwrap(),
    );
    assert_eq!(mine.title.as_deref(), Some("Ask Echo"));
    mine.title = theirs.title.clone();
    assert_eq!(mine, theirs);

    // Calling it is ask_agent for the Echo agent: the answer byte for byte, with progress.
    let question = "Héllo 👋\n <script>alert(1)</script> OR 1=1; --";
    let out = structured(
        &t.call("ask_echo", json!({"message": question}))
            .await
            .unwrap(),
    );
    assert_eq!(out["answer"], format!("You said: {question}"));
    assert_eq!(out["agentId"], ECHO_AGENT_ID);
    assert!(!t.recorder.progress.lock().unwrap().is_empty());
    let follow = structured(
        &t.call(
            "ask_echo",
            json!({"message": "again", "conversationId": out["conversationId"]}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(follow["answer"], "You said: again");
    assert_eq!(follow["conversationId"], out["conversationId"]);

    // The agent is the name's: an agentId argument is refused like any unknown argument.
    let err = t
        .call(
            "ask_echo",
            json!({"message": "hi", "agentId": DUST_AGENT_ID}),
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), -32602, "{err}");
}

#[tokio::test]
async fn unknown_agent_tools_are_unknown_tools_and_need_execute_agents() {
    let t = start(AgentTools::All).await;
    let unknown = t
        .call("ask_nobody", json!({"message": "hi"}))
        .await
        .unwrap_err();
    let not_a_tool = t.call("no_such_tool", json!({})).await.unwrap_err();
    assert_eq!(error_code(&unknown), -32602);
    assert_eq!(
        unknown.to_string().replace("ask_nobody", "X"),
        not_a_tool.to_string().replace("no_such_tool", "X")
    );

    // Without execute:agents: none listed, and a call is refused before Dust is asked.
    let reader = t.connect_as("usr_reader", without_execute()).await;
    let tools = reader.list_all_tools().await.unwrap();
    assert!(agent_tool_names(&tools).is_empty(), "{tools:?}");
    assert!(!tools.iter().any(|t| t.name == "ask_agent"));
    let before = t.sim.requests().len();
    let err = crate::common::call(&reader, "ask_echo", json!({"message": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), PERMISSION_DENIED.0);
    assert_eq!(t.sim.requests().len(), before, "Dust was called");
}

#[tokio::test]
async fn a_list_of_ids_limits_the_tools_and_unset_means_none() {
    let t = start(AgentTools::Only(vec![
        ECHO_AGENT_ID.into(),
        DUST_AGENT_ID.into(),
        "n0tV1s1ble".into(),
    ]))
    .await;
    let tools = t.client.list_all_tools().await.unwrap();
    assert_eq!(agent_tool_names(&tools), ["ask_dust", "ask_echo"]);
    let err = t
        .call("ask_sloth", json!({"message": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), -32602);
    let out = structured(&t.call("ask_echo", json!({"message": "hi"})).await.unwrap());
    assert_eq!(out["answer"], "You said: hi");

    let off = start(AgentTools::None).await;
    let tools = off.client.list_all_tools().await.unwrap();
    assert!(agent_tool_names(&tools).is_empty());
    let err = off
        .call("ask_echo", json!({"message": "hi"}))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), -32602);
    assert!(off.sim.requests().is_empty(), "Dust was called");
}

/// One JSON-RPC request to /mcp in the 2026-07-28 era, from a client with form elicitation.
async fn mcp_2026(s: &TestServer, token: &str, method: &str, params: Value) -> (u16, Value) {
    let capabilities = json!({"elicitation": {"form": {}}});
    s.mcp_2026(Some(token), &capabilities, method, params).await
}

fn names_in(body: &Value) -> Vec<String> {
    body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {body}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .filter(|n| n.starts_with("ask_") && n != "ask_agent")
        .collect()
}

#[tokio::test]
async fn over_http_in_both_eras() {
    let s = TestServer::start_with(&[("DUST_AGENT_TOOLS", "all")]).await;
    let token = s.token(None).await;

    // Handshake era (2025-11-25).
    let (status, body) = s
        .mcp(
            Some(&token),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names_in(&body), SIM_AGENT_TOOLS);
    s.audit.clear();
    let (status, body) = s
        .call_tool(&token, "ask_echo", json!({"message": "hello, 1"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["answer"], "You said: hello, 1",
        "{body}"
    );
    // The audit record is ask_agent's, naming the agent.
    s.state.auditor.flush().await;
    let records = s.audit.of_type(AuditEventType::ResourceModified);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["action"], "ask_agent");
    assert_eq!(records[0]["resource_type"], "agentId");
    assert_eq!(records[0]["resource_id"], ECHO_AGENT_ID);

    // 2026-07-28 era: the same list and the same answer.
    let (status, body) = mcp_2026(&s, &token, "tools/list", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names_in(&body), SIM_AGENT_TOOLS);
    // Each caller's own list; this caller may step up (not every permission), so not to be
    // kept. One who cannot would keep it no longer than the server keeps the agent list
    // (`AGENT_CACHE_TTL`): agents come and go in Dust.
    assert_eq!(body["result"]["ttlMs"], json!(0), "{body}");
    assert_eq!(body["result"]["cacheScope"], json!("private"), "{body}");
    let (status, body) = mcp_2026(
        &s,
        &token,
        "tools/call",
        json!({"name": "ask_echo", "arguments": {"message": "hello, 2"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["result"]["structuredContent"]["answer"], "You said: hello, 2",
        "{body}"
    );

    // An agent that needs approval asks by an input_required round, and goes on once answered.
    let arguments = json!({"message": "tell the CEO"});
    let call = json!({"name": "ask_mailer", "arguments": arguments});
    let (_, body) = mcp_2026(&s, &token, "tools/call", call.clone()).await;
    let result = &body["result"];
    assert_eq!(result["resultType"], "input_required", "{body}");
    let state = result["requestState"].as_str().unwrap().to_owned();
    let mut answer = call;
    answer["inputResponses"] =
        json!({"person": {"action": "accept", "content": {"always": false}}});
    answer["requestState"] = json!(state);
    let (_, body) = mcp_2026(&s, &token, "tools/call", answer).await;
    assert_eq!(
        body["result"]["structuredContent"]["answer"], "I sent your message to ceo@example.com.",
        "{body}"
    );

    // A token without execute:agents sees none and is refused with the scope challenge.
    let reader = s.token(Some(&["read:workspaces", "read:agents"])).await;
    let (status, body) = s
        .mcp(
            Some(&reader),
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(names_in(&body).is_empty(), "{body}");
    let (status, body) = s
        .call_tool(&reader, "ask_echo", json!({"message": "hi"}))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], json!(PERMISSION_DENIED.0), "{body}");
    s.shutdown().await;
}
