//! The MCP surface in process: an rmcp client over an in-memory pipe, the real server and the
//! real Dust client, with the simulator as Dust.

use std::time::Duration;

use crate::common::{McpTest, call, error_code, structured, text};
use mcp_dust_server::{
    auth::{Permission, PermissionSet},
    mcp::PERMISSION_DENIED,
    sim::{
        APPROVAL_AGENT_ID, ECHO_AGENT_ID, FAILING_AGENT_ID, Faults, HANDBOOK_DS_ID,
        HANDBOOK_VIEW_ID, NOTION_DS_ID, NOTION_ENGINEERING_VIEW_ID, NOTION_VIEW_ID,
        PERSONAL_AUTH_AGENT_ID, QUESTION_AGENT_ID, RUNBOOKS_DS_ID, SLACK_DS_ID, SLOW_AGENT_ID,
        TOOL_ERROR_AGENT_ID,
    },
};
use rmcp::{
    model::{
        CallToolRequestParams, ClientRequest, GetPromptRequestParams, ReadResourceRequestParams,
        Request,
    },
    service::PeerRequestOptions,
};
use serde_json::json;

const READ_TOOLS: [&str; 16] = [
    "ask_agent",
    "get_agent",
    "get_conversation",
    "get_document",
    "get_table",
    "get_workspace",
    "list_agents",
    "list_connectors",
    "list_conversations",
    "list_documents",
    "list_knowledge_bases",
    "list_spaces",
    "list_table_rows",
    "list_tables",
    "search_knowledge",
    "search_workspace",
];

fn writer() -> PermissionSet {
    PermissionSet::DEFAULT
        .iter()
        .chain([
            Permission::WriteKnowledgeBases,
            Permission::DeleteKnowledgeBases,
        ])
        .collect()
}

#[tokio::test]
async fn server_reports_its_own_name_and_version() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let info = t.client.peer_info().expect("server info");
    let implementation = info.server_info.as_ref().expect("implementation");
    assert_eq!(implementation.name, "mcp-dust-server");
    assert_eq!(implementation.version, env!("CARGO_PKG_VERSION"));
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_some());
    assert!(info.capabilities.prompts.is_some());
    assert!(info.capabilities.completions.is_some());
}

#[tokio::test]
async fn tools_list_shows_only_permitted_tools_with_strict_schemas() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let tools = t.client.list_all_tools().await.unwrap();
    let mut names: Vec<_> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(names, READ_TOOLS);
    for tool in &tools {
        assert_eq!(
            tool.input_schema.get("additionalProperties"),
            Some(&json!(false)),
            "{} accepts unknown arguments",
            tool.name
        );
        let annotations = tool.annotations.as_ref().expect("annotations");
        let read_only = tool.name != "ask_agent";
        assert_eq!(annotations.read_only_hint, Some(read_only), "{}", tool.name);
    }
    let ask = tools.iter().find(|t| t.name == "ask_agent").unwrap();
    assert!(ask.output_schema.is_some());
    assert_eq!(
        ask.annotations.as_ref().unwrap().open_world_hint,
        Some(true)
    );

    let all = McpTest::start(PermissionSet::all()).await;
    let tools = all.client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 20);
    for name in ["delete_document", "delete_table_row"] {
        let delete = tools.iter().find(|t| t.name == name).unwrap();
        assert_eq!(
            delete.annotations.as_ref().unwrap().destructive_hint,
            Some(true),
            "{name}"
        );
    }

    let nothing = McpTest::start(PermissionSet::EMPTY).await;
    assert!(nothing.client.list_all_tools().await.unwrap().is_empty());
}

#[tokio::test]
async fn hidden_tool_called_by_name_is_refused_before_dust() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let err = t
        .call(
            "upsert_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "x", "text": "y"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), PERMISSION_DENIED.0);
    assert!(err.to_string().contains("needs write:knowledge-bases"));
    assert!(t.sim.requests().is_empty(), "Dust was called");
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_and_reach_no_upstream() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let cases = [
        ("list_agents", json!({"unexpected": 1})),
        ("get_agent", json!({})),
        ("get_agent", json!({"agentId": "../../w/other"})),
        ("get_agent", json!({"agentId": "abc?x=1"})),
        ("get_agent", json!({"agentId": "ａｂｃ"})),
        ("search_knowledge", json!({"query": "x", "topK": 0})),
        ("search_knowledge", json!({"query": "x", "topK": 65})),
        ("search_knowledge", json!({"query": "x", "topK": "10abc"})),
        ("search_knowledge", json!({"query": "x", "topK": 1.5})),
        ("search_knowledge", json!({"query": "x", "topK": -1})),
        (
            "search_knowledge",
            json!({"query": "x", "topK": 9223372036854775808u64}),
        ),
        ("search_knowledge", json!({"query": "   "})),
        // A query travels in Dust's URL: past 2 KB it is refused here, not by a proxy.
        ("search_knowledge", json!({"query": "é".repeat(1025)})),
        ("search_workspace", json!({})),
        ("search_workspace", json!({"query": " \n "})),
        ("search_workspace", json!({"query": "é".repeat(1025)})),
        ("search_workspace", json!({"query": "x", "limit": 0})),
        ("search_workspace", json!({"query": "x", "limit": 101})),
        (
            "search_workspace",
            json!({"query": "x", "kind": "documents"}),
        ),
        (
            "search_workspace",
            json!({"query": "x", "spaceIds": ["vlt_x"]}),
        ),
        (
            "list_documents",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "limit": 0}),
        ),
        (
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": ".."}),
        ),
        (
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "line\nbreak"}),
        ),
        ("ask_agent", json!({"message": "no agent and no default"})),
        (
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": ""}),
        ),
        (
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "x", "conversationId": "a#b"}),
        ),
        ("get_conversation", json!({"conversationId": 42})),
        ("list_tables", json!({})),
        ("list_tables", json!({"knowledgeBaseId": "../x"})),
        (
            "get_table",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": ".."}),
        ),
        (
            "list_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "limit": 0}),
        ),
        (
            "list_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "limit": 101}),
        ),
    ];
    for (tool, args) in cases {
        let err = t.call(tool, args.clone()).await.unwrap_err();
        assert_eq!(error_code(&err), -32602, "{tool} {args}");
    }
    assert!(
        t.sim.requests().is_empty(),
        "Dust was called: {:?}",
        t.sim.requests()
    );
}

#[tokio::test]
async fn list_and_get_agents() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let agents = structured(&t.call("list_agents", json!({})).await.unwrap());
    let ids: Vec<_> = agents["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&"dust".to_owned()));
    assert!(ids.contains(&ECHO_AGENT_ID.to_owned()));

    let echo = structured(
        &t.call("list_agents", json!({"query": "ECHO"}))
            .await
            .unwrap(),
    );
    assert_eq!(echo["agents"].as_array().unwrap().len(), 1);

    let agent = structured(
        &t.call("get_agent", json!({"agentId": ECHO_AGENT_ID}))
            .await
            .unwrap(),
    );
    assert_eq!(agent["id"], ECHO_AGENT_ID);
    assert!(agent.get("instructions").is_some());

    let missing = t
        .call("get_agent", json!({"agentId": "nope000000"}))
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(text(&missing).contains("Not found"), "{}", text(&missing));
}

/// The agent list is cached per principal for `AGENT_CACHE_TTL`: a second call within it asks
/// Dust nothing, and a principal with another key (another workspace here) gets its own list,
/// never the first one's.
#[tokio::test]
async fn agent_list_is_cached_per_principal_and_never_shared() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let ids = |result: &rmcp::model::CallToolResult| -> Vec<String> {
        structured(result)["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = ids(&t.call("list_agents", json!({})).await.unwrap());
    assert!(first.contains(&ECHO_AGENT_ID.to_owned()));
    let again = ids(&t.call("list_agents", json!({})).await.unwrap());
    assert_eq!(again, first);
    assert_eq!(
        t.upstream_calls("agent_configurations").len(),
        1,
        "the second call was served from the cache"
    );

    // Another key: its own list (the other workspace only has `dust`), from Dust.
    let other = mcp_dust_server::auth::Principal {
        user_id: "usr_bob".into(),
        username: "bob".into(),
        email: None,
        full_name: None,
        workspace_id: t.sim.other_workspace_id().to_owned(),
        permissions: PermissionSet::DEFAULT,
        token_id: None,
        credentials: mcp_dust_server::dust::DustCredentials::new(
            t.sim.other_workspace_id(),
            t.sim.other_api_key(),
        ),
    };
    let bob = crate::common::connect(t.ctx.clone(), other).await;
    let bobs = ids(&call(&bob, "list_agents", json!({})).await.unwrap());
    assert_eq!(bobs, vec!["dust".to_owned()]);
    assert_eq!(t.upstream_calls("agent_configurations").len(), 2);
    // And the first principal still sees its own.
    let alice = ids(&t.call("list_agents", json!({})).await.unwrap());
    assert_eq!(alice, first);
    assert_eq!(t.upstream_calls("agent_configurations").len(), 2);
}

/// With `AGENT_CACHE_TTL=0` every call asks Dust.
#[tokio::test]
async fn agent_cache_can_be_turned_off() {
    let mut t = McpTest::start(PermissionSet::DEFAULT).await;
    let ctx = std::sync::Arc::new(
        mcp_dust_server::ops::Context::new(
            t.ctx.dust.clone(),
            t.ctx.conversations.clone(),
            crate::common::settings(&t.sim.base_url()),
        )
        .with_agent_cache_ttl(Duration::ZERO),
    );
    t.client = crate::common::connect(
        ctx,
        crate::common::principal(&t.sim, PermissionSet::DEFAULT, "usr_a"),
    )
    .await;
    t.call("list_agents", json!({})).await.unwrap();
    t.call("list_agents", json!({})).await.unwrap();
    assert_eq!(t.upstream_calls("agent_configurations").len(), 2);
}

#[tokio::test]
async fn ask_agent_relays_progress_and_delivers_text_byte_for_byte() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let question =
        "Héllo 👋\n SELECT * FROM users WHERE id=1 OR 1=1; -- <script>alert(1)</script>\u{0}";
    let result = t
        .call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": question}),
        )
        .await
        .unwrap();
    let out = structured(&result);
    assert_eq!(out["answer"], format!("You said: {question}"));
    assert_eq!(out["agentId"], ECHO_AGENT_ID);
    let conversation_id = out["conversationId"].as_str().unwrap().to_owned();
    assert!(!out["messageId"].as_str().unwrap().is_empty());

    // The question reached Dust unchanged, inside the JSON body.
    let create = t
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with("/assistant/conversations"))
        .expect("conversation created");
    let body: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(body["message"]["content"], question);
    assert_eq!(
        body["message"]["mentions"],
        json!([{"configurationId": ECHO_AGENT_ID}])
    );
    assert_eq!(body["message"]["context"]["username"], "test-user");
    assert_eq!(body["message"]["context"]["timezone"], "Europe/Paris");

    let progress = t.recorder.progress.lock().unwrap().clone();
    assert!(!progress.is_empty(), "no progress notification");
    let mut last = 0.0;
    for p in &progress {
        assert!(p.progress > last, "progress not increasing");
        last = p.progress;
    }

    // A follow-up in the same conversation.
    let follow = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "again", "conversationId": conversation_id}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(follow["answer"], "You said: again");
    assert_eq!(follow["conversationId"], conversation_id);

    let listed = structured(&t.call("list_conversations", json!({})).await.unwrap());
    assert_eq!(listed["conversations"].as_array().unwrap().len(), 1);
    let read = structured(
        &t.call(
            "get_conversation",
            json!({"conversationId": conversation_id}),
        )
        .await
        .unwrap(),
    );
    let messages = read["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["content"], question);
    assert_eq!(messages[3]["content"], "You said: again");
}

#[tokio::test]
async fn conversations_of_others_are_not_found_and_dust_is_not_asked() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let out = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "mine"}),
        )
        .await
        .unwrap(),
    );
    let conversation_id = out["conversationId"].as_str().unwrap().to_owned();
    let before = t.sim.requests().len();

    let mallory = t.connect_as("usr_mallory", PermissionSet::DEFAULT).await;
    for (tool, args) in [
        (
            "get_conversation",
            json!({"conversationId": conversation_id}),
        ),
        (
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "hi", "conversationId": conversation_id}),
        ),
    ] {
        let result = call(&mallory, tool, args).await.unwrap();
        assert_eq!(result.is_error, Some(true));
        assert!(text(&result).contains("not found"), "{}", text(&result));
    }
    let listed = structured(
        &call(&mallory, "list_conversations", json!({}))
            .await
            .unwrap(),
    );
    assert!(listed["conversations"].as_array().unwrap().is_empty());
    let uri = format!(
        "dust://workspaces/{}/conversations/{conversation_id}",
        t.sim.workspace_id()
    );
    let err = mallory
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"));
    assert_eq!(
        t.sim.requests().len(),
        before,
        "Dust was asked for another's conversation"
    );
}

#[tokio::test]
async fn failing_agent_is_a_tool_error() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let result = t
        .call(
            "ask_agent",
            json!({"agentId": FAILING_AGENT_ID, "message": "fail please"}),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        text(&result).contains("The agent failed"),
        "{}",
        text(&result)
    );
}

#[tokio::test]
async fn ask_agent_times_out_clearly() {
    let t = McpTest::start_with(crate::common::sim_config(), PermissionSet::DEFAULT, |s| {
        s.agent_timeout = Duration::from_millis(300);
    })
    .await;
    let result = t
        .call(
            "ask_agent",
            json!({"agentId": SLOW_AGENT_ID, "message": "take your time"}),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(message.contains("did not finish within"), "{message}");
    assert!(message.contains("get_conversation"), "{message}");
}

#[tokio::test]
async fn cancelling_ask_agent_cancels_the_dust_message() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let Some(serde_json::Value::Object(args)) =
        Some(json!({"agentId": SLOW_AGENT_ID, "message": "long task"}))
    else {
        unreachable!()
    };
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("ask_agent").with_arguments(args),
    ));
    let handle = t
        .client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    // Wait until the agent is running (its first progress notification).
    for _ in 0..200 {
        if !t.recorder.progress.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    handle.cancel(Some("user stopped".into())).await.unwrap();
    for _ in 0..200 {
        if !t.upstream_calls("/cancel").is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("Dust message was not cancelled: {:?}", t.upstream_calls(""));
}

#[tokio::test]
async fn knowledge_bases_search_and_documents() {
    let t = McpTest::start(writer()).await;
    let kbs = structured(&t.call("list_knowledge_bases", json!({})).await.unwrap());
    let kbs = kbs["knowledgeBases"].as_array().unwrap();
    assert!(
        kbs.iter()
            .any(|k| k["id"] == HANDBOOK_DS_ID && k["kind"] == "folder")
    );
    assert!(
        kbs.iter()
            .any(|k| k["id"] == NOTION_DS_ID && k["kind"] == "connector")
    );

    let connectors = structured(&t.call("list_connectors", json!({})).await.unwrap());
    assert!(
        connectors["connectors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["kind"] == "connector")
    );
    let spaces = structured(&t.call("list_spaces", json!({})).await.unwrap());
    assert_eq!(spaces["spaces"].as_array().unwrap().len(), 2);

    let hits = structured(
        &t.call(
            "search_knowledge",
            json!({"query": "paid time off PTO", "knowledgeBaseId": HANDBOOK_DS_ID, "topK": 2}),
        )
        .await
        .unwrap(),
    );
    let results = hits["results"].as_array().unwrap();
    assert!(!results.is_empty() && results.len() <= 2);
    assert_eq!(results[0]["documentId"], "pto-policy");
    // The client never sends full_text=false, which Dust would read as true.
    assert!(
        t.sim
            .requests()
            .iter()
            .all(|r| !r.query.as_deref().unwrap_or("").contains("full_text"))
    );

    let everywhere = structured(
        &t.call("search_knowledge", json!({"query": "deploy"}))
            .await
            .unwrap(),
    );
    assert!(!everywhere["results"].as_array().unwrap().is_empty());

    let doc_id = "notes:2026.q4";
    let written = t
        .call(
            "upsert_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": doc_id,
                   "text": "Ünïcode text; DROP TABLE docs; --", "title": "Notes",
                   "sourceUrl": "https://example.com/notes", "tags": ["lang:en"]}),
        )
        .await
        .unwrap();
    structured(&written);
    let read = structured(
        &t.call(
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": doc_id}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(read["text"], "Ünïcode text; DROP TABLE docs; --");
    assert_eq!(read["title"], "Notes");
    let page = structured(
        &t.call(
            "list_documents",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "limit": 100}),
        )
        .await
        .unwrap(),
    );
    assert!(
        page["documents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["documentId"] == doc_id)
    );
    structured(
        &t.call(
            "delete_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": doc_id}),
        )
        .await
        .unwrap(),
    );
    let gone = t
        .call(
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": doc_id}),
        )
        .await
        .unwrap();
    assert_eq!(gone.is_error, Some(true));

    // A connector-fed knowledge base is refused before Dust.
    let posts_before = t.upstream_calls("/documents/").len();
    let refused = t
        .call(
            "upsert_document",
            json!({"knowledgeBaseId": NOTION_DS_ID, "documentId": "x", "text": "y"}),
        )
        .await
        .unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("connector"));
    assert_eq!(t.upstream_calls("/documents/").len(), posts_before);

    let unknown = t
        .call(
            "list_documents",
            json!({"knowledgeBaseId": "dts_doesnotexist"}),
        )
        .await
        .unwrap();
    assert_eq!(unknown.is_error, Some(true));
}

/// Issue 16: connectors live in Dust's system space and reach the key's spaces only through data
/// source views. They are listed (once each), searched through their views (never outside the
/// view's nodes), and refused clearly where Dust has no route for a key.
#[tokio::test]
async fn connector_knowledge_is_reached_through_views() {
    let t = McpTest::start(writer()).await;
    let kbs = structured(&t.call("list_knowledge_bases", json!({})).await.unwrap());
    let kbs = kbs["knowledgeBases"].as_array().unwrap();
    let ids: Vec<&str> = kbs.iter().map(|k| k["id"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        ids.len(),
        "one entry per knowledge base: {ids:?}"
    );
    assert_eq!(ids.len(), 5, "{ids:?}");
    let find = |id: &str| kbs.iter().find(|k| k["id"] == id).unwrap().clone();
    let handbook = find(HANDBOOK_DS_ID);
    assert_eq!(handbook["viewId"], HANDBOOK_VIEW_ID);
    assert_eq!(handbook["documentsReadable"], true);
    let notion = find(NOTION_DS_ID);
    assert_eq!(notion["kind"], "connector");
    assert_eq!(notion["connectorProvider"], "notion");
    // Company Data (the global space) comes first; its view sees two branches of the pages.
    assert_eq!(notion["viewId"], NOTION_VIEW_ID);
    assert_eq!(
        notion["parentsIn"],
        json!(["notion-product", "notion-company"])
    );
    assert_eq!(notion["documentsReadable"], false);

    let connectors = structured(&t.call("list_connectors", json!({})).await.unwrap());
    let mut providers: Vec<&str> = connectors["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["connectorProvider"].as_str().unwrap())
        .collect();
    providers.sort_unstable();
    assert_eq!(providers, ["notion", "slack"]);

    // Text that exists only in Notion is found without naming a knowledge base, through the
    // view's search route.
    let hits = structured(
        &t.call("search_knowledge", json!({"query": "mobile app launch"}))
            .await
            .unwrap(),
    );
    let first = &hits["results"][0];
    assert_eq!(first["knowledgeBaseId"], NOTION_DS_ID, "{hits}");
    assert_eq!(first["documentId"], "notion-roadmap");
    assert!(
        !t.upstream_calls(&format!("/data_source_views/{NOTION_VIEW_ID}/search"))
            .is_empty()
    );
    assert!(
        t.upstream_calls(&format!("/data_sources/{NOTION_DS_ID}"))
            .is_empty()
    );
    // The board minutes are under a page no view selects: never found.
    let hidden = structured(
        &t.call(
            "search_knowledge",
            json!({"query": "board acquisition Example Corp"}),
        )
        .await
        .unwrap(),
    );
    assert!(
        hidden["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["documentId"] != "notion-board-minutes"),
        "{hidden}"
    );
    // Slack content, shared with Engineering only, is searchable by its view id too.
    for id in [SLACK_DS_ID, NOTION_ENGINEERING_VIEW_ID] {
        let hits = structured(
            &t.call(
                "search_knowledge",
                json!({"query": "incident failover roadmap", "knowledgeBaseId": id}),
            )
            .await
            .unwrap(),
        );
        assert!(
            !hits["results"].as_array().unwrap().is_empty(),
            "{id}: {hits}"
        );
    }

    // Reading a connector document one by one has no route for a key: a clear refusal that
    // points to search, and no document request reaches Dust.
    for tool in [
        "get_document",
        "list_documents",
        "upsert_document",
        "delete_document",
    ] {
        let args = match tool {
            "list_documents" => json!({"knowledgeBaseId": NOTION_DS_ID}),
            "upsert_document" => {
                json!({"knowledgeBaseId": NOTION_DS_ID, "documentId": "x", "text": "y"})
            }
            _ => json!({"knowledgeBaseId": NOTION_DS_ID, "documentId": "notion-roadmap"}),
        };
        let refused = t.call(tool, args).await.unwrap();
        assert_eq!(refused.is_error, Some(true), "{tool}");
        let message = text(&refused);
        assert!(
            message.contains("notion") && message.contains("connector"),
            "{tool}: {message}"
        );
    }
    assert!(t.upstream_calls("/documents").is_empty());
}

/// Issue 16: document ids are Dust's free strings; each travels as one percent-encoded path
/// segment, and an upsert asks for the light answer (no embedding vectors).
#[tokio::test]
async fn document_ids_are_free_and_upserts_are_light() {
    let t = McpTest::start(writer()).await;
    let runbook = structured(
        &t.call(
            "get_document",
            json!({"knowledgeBaseId": RUNBOOKS_DS_ID, "documentId": "runbooks/deploy.md"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(runbook["title"], "Deploy Runbook");
    assert!(
        !t.upstream_calls("/documents/runbooks%2Fdeploy.md")
            .is_empty()
    );

    let id = "Q3 report (final) #2 ?.pdf";
    let written = structured(
        &t.call(
            "upsert_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": id, "text": "Revenue grew."}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(written["documentId"], id);
    let upsert = t
        .sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.contains("/documents/"))
        .unwrap();
    assert!(
        upsert
            .path
            .ends_with("/documents/Q3%20report%20(final)%20%232%20%3F.pdf"),
        "{}",
        upsert.path
    );
    let body: serde_json::Value = serde_json::from_slice(&upsert.body).unwrap();
    assert_eq!(body["light_document_output"], true);
    let read = structured(
        &t.call(
            "get_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": id}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(read["text"], "Revenue grew.");
}

/// Issue 16: `tool_error` is terminal in Dust; the call ends at once with Dust's message
/// instead of waiting for `MCP_SERVER_TIMEOUT`.
#[tokio::test]
async fn a_failing_tool_ends_the_call_at_once() {
    let t = McpTest::start_with(crate::common::sim_config(), PermissionSet::DEFAULT, |s| {
        s.agent_timeout = Duration::from_secs(60);
    })
    .await;
    let started = std::time::Instant::now();
    let result = t
        .call(
            "ask_agent",
            json!({"agentId": TOOL_ERROR_AGENT_ID, "message": "weekly report please"}),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(result.is_error, Some(true));
    let message = text(&result);
    assert!(
        message.contains("tool failed") && message.contains("HTTP 503"),
        "{message}"
    );
}

/// Issue 16: a run that pauses for a person (a question, a sign-in) ends the call at once with
/// a message naming the tool and the conversation; a follow-up posts `skipToolsValidation`
/// itself (Dust does not carry it over from the first message), so an approval never stalls it.
#[tokio::test]
async fn paused_runs_answer_at_once_and_follow_ups_skip_tool_validation() {
    // `DUST_TOOL_APPROVAL=auto`: every message skips tool validation (tests/all/approvals.rs
    // covers `ask` and `deny`).
    let t = McpTest::start_with(crate::common::sim_config(), PermissionSet::DEFAULT, |s| {
        s.agent_timeout = Duration::from_secs(60);
        s.tool_approval = mcp_dust_server::config::ToolApproval::Auto;
    })
    .await;
    let started = std::time::Instant::now();
    let question = t
        .call(
            "ask_agent",
            json!({"agentId": QUESTION_AGENT_ID, "message": "book a room"}),
        )
        .await
        .unwrap();
    assert_eq!(question.is_error, Some(true));
    let message = text(&question);
    assert!(
        message.contains("Which office should I book the meeting room in?")
            && message.contains("ask_user_question")
            && message.contains("conversation "),
        "{message}"
    );
    let auth = t
        .call(
            "ask_agent",
            json!({"agentId": PERSONAL_AUTH_AGENT_ID, "message": "list my files"}),
        )
        .await
        .unwrap();
    assert_eq!(auth.is_error, Some(true));
    let message = text(&auth);
    assert!(
        message.contains("list_files (Google Drive)") && message.contains("connect"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let first = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "hello"}),
        )
        .await
        .unwrap(),
    );
    let conversation_id = first["conversationId"].as_str().unwrap();
    let follow_up = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": APPROVAL_AGENT_ID, "message": "tell the CEO", "conversationId": conversation_id}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        follow_up["answer"],
        "I sent your message to ceo@example.com."
    );
    let posts: Vec<serde_json::Value> = t
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0]["skipToolsValidation"], true);
}

#[tokio::test]
async fn dust_outage_is_a_tool_error_a_model_can_act_on() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    t.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let result = t.call("list_agents", json!({})).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(text(&result).contains("unavailable"), "{}", text(&result));
}

#[tokio::test]
async fn resources_follow_the_hierarchy_and_permissions() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let ws = t.sim.workspace_id().to_owned();
    let resources = t.client.list_all_resources().await.unwrap();
    let uris: Vec<_> = resources.iter().map(|r| r.uri.clone()).collect();
    assert!(uris.contains(&"dust://workspaces".to_owned()));
    assert!(uris.contains(&format!("dust://workspaces/{ws}/agents")));
    let templates = t.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|r| r.uri_template.ends_with("/documents/{documentId}"))
    );

    let read = |uri: String| {
        let client = &t.client;
        async move {
            client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
        }
    };
    let agents = read(format!("dust://workspaces/{ws}/agents"))
        .await
        .unwrap();
    let text = serde_json::to_string(&agents.contents).unwrap();
    assert!(text.contains(ECHO_AGENT_ID));
    let doc = read(format!(
        "dust://workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/documents/pto-policy"
    ))
    .await
    .unwrap();
    assert!(
        serde_json::to_string(&doc.contents)
            .unwrap()
            .contains("pto-policy")
    );

    // Another workspace looks exactly like a missing one, and Dust is not asked.
    let before = t.sim.requests().len();
    let err = read("dust://workspaces/OtherWsp01/agents".to_owned())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"));
    assert!(read("dust://elsewhere/x".to_owned()).await.is_err());
    assert_eq!(t.sim.requests().len(), before);

    let narrow = McpTest::start(PermissionSet::of(&[Permission::ReadAgents])).await;
    let uris: Vec<_> = narrow
        .client
        .list_all_resources()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.uri)
        .collect();
    assert_eq!(
        uris,
        [format!(
            "dust://workspaces/{}/agents",
            narrow.sim.workspace_id()
        )]
    );
    let err = narrow
        .client
        .read_resource(ReadResourceRequestParams::new(format!(
            "dust://workspaces/{}/knowledge-bases",
            narrow.sim.workspace_id()
        )))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), PERMISSION_DENIED.0);
}

#[tokio::test]
async fn prompt_and_completion() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let prompts = t.client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "consult_agent");
    let mut args = serde_json::Map::new();
    args.insert("agentId".into(), json!(ECHO_AGENT_ID));
    args.insert("question".into(), json!("What is our PTO policy?"));
    let prompt = t
        .client
        .get_prompt(GetPromptRequestParams::new("consult_agent").with_arguments(args))
        .await
        .unwrap();
    let text = serde_json::to_string(&prompt.messages).unwrap();
    assert!(text.contains("ask_agent") && text.contains(ECHO_AGENT_ID));

    let completion = t
        .client
        .complete_prompt_simple("consult_agent", "agentId", "ech")
        .await
        .unwrap();
    assert_eq!(completion, [ECHO_AGENT_ID]);

    let none = McpTest::start(PermissionSet::of(&[Permission::ReadAgents])).await;
    assert!(none.client.list_all_prompts().await.unwrap().is_empty());
}

/// L2: the prompt puts the agent's name and description (`read:agents`) into its text, so
/// `execute:agents` alone neither lists nor gets it, and Dust is not asked about the agent.
#[tokio::test]
async fn consult_agent_needs_read_agents_as_well_as_execute() {
    let t = McpTest::start(PermissionSet::of(&[Permission::ExecuteAgents])).await;
    assert!(t.client.list_all_prompts().await.unwrap().is_empty());
    let mut args = serde_json::Map::new();
    args.insert("agentId".into(), json!(ECHO_AGENT_ID));
    args.insert("question".into(), json!("What do you do?"));
    let err = t
        .client
        .get_prompt(GetPromptRequestParams::new("consult_agent").with_arguments(args))
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), PERMISSION_DENIED.0);
    let shown = format!("{err:?}");
    assert!(shown.contains("read:agents"), "{shown}");
    assert!(!shown.contains("Repeats your message"), "{shown}");
    assert!(
        t.sim.requests().is_empty(),
        "Dust was asked about the agent"
    );
}

#[tokio::test]
async fn one_principal_cannot_hold_more_than_its_share_of_calls() {
    let t = McpTest::start_with(crate::common::sim_config(), PermissionSet::DEFAULT, |s| {
        s.agent_timeout = Duration::from_secs(3);
    })
    .await;
    let slow = json!({"agentId": SLOW_AGENT_ID, "message": "take your time"});
    let running: Vec<_> = (0..mcp_dust_server::ops::MAX_CALLS_IN_FLIGHT)
        .map(|_| {
            let peer = t.client.peer().clone();
            let serde_json::Value::Object(args) = slow.clone() else {
                unreachable!()
            };
            tokio::spawn(async move {
                peer.call_tool(CallToolRequestParams::new("ask_agent").with_arguments(args))
                    .await
            })
        })
        .collect();
    // Wait until every slot is taken (each run has reached Dust).
    for _ in 0..300 {
        let started = t
            .sim
            .requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/assistant/conversations"))
            .count();
        if started == mcp_dust_server::ops::MAX_CALLS_IN_FLIGHT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The running calls keep talking to Dust (their event streams): count only what the
    // refused call would have asked for.
    let refused = t.call("list_agents", json!({})).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("tool calls running"),
        "{}",
        text(&refused)
    );
    assert!(
        t.upstream_calls("/agent_configurations").is_empty(),
        "the refused call reached Dust"
    );

    // Someone else is not affected.
    let other = t.connect_as("usr_bob", PermissionSet::DEFAULT).await;
    structured(&call(&other, "list_agents", json!({})).await.unwrap());
    for task in running {
        task.await.unwrap().unwrap();
    }
    structured(&t.call("list_agents", json!({})).await.unwrap());
}

/// `search_workspace`: Dust's node search across every space the key sees, each node with its
/// knowledge base and path; the query reaches Dust byte for byte, in a body naming the spaces.
#[tokio::test]
async fn search_workspace_finds_titles_across_every_space() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let found = structured(
        &t.call("search_workspace", json!({"query": "deploy"}))
            .await
            .unwrap(),
    );
    let results = found["results"].as_array().unwrap();
    let runbook = results
        .iter()
        .find(|n| n["nodeId"] == "runbooks/deploy.md")
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(runbook["knowledgeBaseId"], RUNBOOKS_DS_ID);
    assert_eq!(runbook["type"], "document");
    assert_eq!(runbook["title"], "Deploy Runbook");
    assert_eq!(runbook["path"], "Runbooks / Deploy Runbook");
    assert!(
        results
            .iter()
            .any(|n| n["nodeId"] == "slack-deploys" && n["knowledgeBaseId"] == SLACK_DS_ID),
        "{found}"
    );
    assert_eq!(found["total"], 2);

    // A connector page reached from two spaces names both; the board's pages, never.
    let roadmap = structured(
        &t.call(
            "search_workspace",
            json!({"query": "roadmap", "kind": "document"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(roadmap["results"][0]["knowledgeBaseId"], NOTION_DS_ID);
    assert_eq!(
        roadmap["results"][0]["spaceIds"].as_array().unwrap().len(),
        2
    );
    for (query, kind) in [("board minutes", "all"), ("deploy", "table")] {
        let none = structured(
            &t.call("search_workspace", json!({"query": query, "kind": kind}))
                .await
                .unwrap(),
        );
        assert!(none["results"].as_array().unwrap().is_empty(), "{none}");
    }
    let one = structured(
        &t.call("search_workspace", json!({"query": "polic", "limit": 1}))
            .await
            .unwrap(),
    );
    assert_eq!(one["results"].as_array().unwrap().len(), 1);
    assert_eq!(one["total"], 2);

    // The free text, byte for byte, in the SDK's body with every space the key sees.
    let query = "Q3 \"été\" <b>&amp;</b> \\n ; DROP";
    t.call("search_workspace", json!({"query": query, "limit": 7}))
        .await
        .unwrap();
    let sent = t
        .sim
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.method == "POST" && r.path.ends_with("/search"))
        .expect("a POST /search");
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["query"], query);
    assert_eq!(body["viewType"], "all");
    assert_eq!(body["limit"], 7);
    assert_eq!(body["includeDataSources"], false);
    assert_eq!(body["spaceIds"].as_array().unwrap().len(), 2);
}

/// Issue 24 item 2: a folder's tables end to end: listed with their columns, read, paged,
/// rows written (the schema follows them) and one deleted.
#[tokio::test]
async fn folder_tables_are_listed_read_paged_written_and_deleted() {
    let t = McpTest::start(writer()).await;
    let kb = json!({"knowledgeBaseId": HANDBOOK_DS_ID});
    let tables = structured(&t.call("list_tables", kb.clone()).await.unwrap());
    let offices = &tables["tables"][0];
    assert_eq!(offices["tableId"], "offices", "{tables}");
    assert_eq!(offices["knowledgeBaseId"], HANDBOOK_DS_ID);
    assert_eq!(offices["title"], "Offices");
    let types: Vec<(String, String)> = offices["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    for column in [
        ("city", "text"),
        ("seats", "int"),
        ("opened", "datetime"),
        ("remote", "bool"),
    ] {
        assert!(
            types.contains(&(column.0.into(), column.1.into())),
            "{column:?} in {types:?}"
        );
    }
    // The same through its view id.
    let table = structured(
        &t.call(
            "get_table",
            json!({"knowledgeBaseId": HANDBOOK_VIEW_ID, "tableId": "offices"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(table["columns"], offices["columns"]);

    let page = structured(
        &t.call(
            "list_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "limit": 2, "offset": 1}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(page["total"], 3, "{page}");
    assert_eq!(
        (page["limit"].clone(), page["offset"].clone()),
        (json!(2), json!(1))
    );
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["rowId"], "new-york");
    assert_eq!(rows[0]["value"]["city"], "New York");
    assert_eq!(rows[0]["value"]["opened"]["type"], "datetime");
    assert_eq!(t.upstream_calls("/tables/offices/rows").len(), 1);

    let written = structured(
        &t.call(
            "upsert_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rows": [
                {"rowId": "berlin", "value": {"city": "Berlin", "seats": 60,
                    "opened": {"type": "datetime", "epoch": 1767225600000_i64}, "remote": null,
                    "floor": 2.5}},
                {"rowId": "paris", "value": {"city": "Paris", "seats": 130,
                    "opened": {"type": "datetime", "epoch": 1700000000000_i64}, "remote": false}}
            ]}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(written["upserted"], 2, "{written}");
    assert!(
        written["columns"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "floor", "type": "float"})),
        "{written}"
    );
    let page = structured(
        &t.call(
            "list_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "limit": 100}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(page["total"], 4, "{page}");
    let paris = page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rowId"] == "paris")
        .unwrap();
    assert_eq!(paris["value"]["seats"], 130);

    let deleted = structured(
        &t.call(
            "delete_table_row",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rowId": "berlin"}),
        )
        .await
        .unwrap(),
    );
    assert_eq!(deleted["deleted"], true);
    // Gone: deleting it again is Dust's 404, said to the model as a tool error.
    let again = t
        .call(
            "delete_table_row",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rowId": "berlin"}),
        )
        .await
        .unwrap();
    assert_eq!(again.is_error, Some(true));
    let missing = t
        .call(
            "get_table",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "nope"}),
        )
        .await
        .unwrap();
    assert_eq!(missing.is_error, Some(true));
    assert!(
        text(&missing).contains("Not found while reading table nope"),
        "{}",
        text(&missing)
    );
}

/// Tables of a connector (or of a folder reached only through a view) have no route for a key:
/// reads are refused with a pointer, writes because a connector is managed; Dust's table routes
/// are never asked. Bad rows are refused before anything reaches Dust, each naming its place.
#[tokio::test]
async fn table_writes_refuse_connectors_and_bad_rows_before_dust() {
    let t = McpTest::start(writer()).await;
    for (tool, args) in [
        ("list_tables", json!({"knowledgeBaseId": NOTION_DS_ID})),
        (
            "upsert_table_rows",
            json!({"knowledgeBaseId": NOTION_DS_ID, "tableId": "t",
                   "rows": [{"rowId": "r", "value": {"a": 1}}]}),
        ),
        (
            "delete_table_row",
            json!({"knowledgeBaseId": SLACK_DS_ID, "tableId": "t", "rowId": "r"}),
        ),
    ] {
        let refused = t.call(tool, args).await.unwrap();
        assert_eq!(refused.is_error, Some(true), "{tool}");
        let message = text(&refused);
        assert!(message.contains("connector"), "{tool}: {message}");
    }
    assert!(t.upstream_calls("/tables").is_empty());

    let before = t.sim.requests().len();
    let row = |value: serde_json::Value| {
        json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
               "rows": [{"rowId": "x", "value": value}]})
    };
    let many: Vec<_> = (0..501)
        .map(|i| json!({"rowId": i.to_string(), "value": {"a": 1}}))
        .collect();
    for (args, needle) in [
        (row(json!({"a": [1, 2]})), "rows[0].value.a"),
        (
            row(json!({"a": {"type": "date", "epoch": 1}})),
            "rows[0].value.a",
        ),
        (row(json!({})), "at least one column"),
        (
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rows": []}),
            "1 to 500",
        ),
        (
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rows": many}),
            "1 to 500",
        ),
        (
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
                   "rows": [{"rowId": "..", "value": {"a": 1}}]}),
            "rows[0].rowId",
        ),
        (
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
                   "rows": [{"rowId": "a", "value": {"a": 1}}, {"rowId": "a", "value": {"a": 2}}]}),
            "rows[1].rowId repeats",
        ),
        (
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
                   "rows": [{"row_id": "a", "value": {"a": 1}}]}),
            "unknown field",
        ),
    ] {
        let err = t.call("upsert_table_rows", args).await.unwrap_err();
        assert_eq!(error_code(&err), -32602, "{needle}: {err}");
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    assert_eq!(t.sim.requests().len(), before, "Dust was asked");

    // A reader sees the read tools but may not write: refused before Dust.
    let reader = McpTest::start(PermissionSet::DEFAULT).await;
    let err = reader
        .call(
            "upsert_table_rows",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices",
                   "rows": [{"rowId": "x", "value": {"a": 1}}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), PERMISSION_DENIED.0);
    assert!(
        err.to_string().contains("needs write:knowledge-bases"),
        "{err}"
    );
    let err = reader
        .call(
            "delete_table_row",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "tableId": "offices", "rowId": "paris"}),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("needs delete:knowledge-bases"),
        "{err}"
    );
    assert!(reader.sim.requests().is_empty(), "Dust was called");
}

/// A table as a resource: its columns, its first rows and its row count, read through the
/// template; a connector's table and an unknown one are "not found".
#[tokio::test]
async fn a_table_resource_is_its_schema_and_first_rows() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let ws = t.sim.workspace_id().to_owned();
    let templates = t.client.list_all_resource_templates().await.unwrap();
    assert!(
        templates
            .iter()
            .any(|r| r.uri_template.ends_with("/tables/{tableId}"))
    );
    let read = |uri: String| {
        let client = &t.client;
        async move {
            client
                .read_resource(ReadResourceRequestParams::new(uri))
                .await
        }
    };
    let table = read(format!(
        "dust://workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/tables/offices"
    ))
    .await
    .unwrap();
    let rmcp::model::ResourceContents::TextResourceContents { text, .. } = &table.contents[0]
    else {
        panic!("{table:?}")
    };
    let body: serde_json::Value = serde_json::from_str(text).unwrap();
    assert_eq!(body["tableId"], "offices", "{body}");
    assert_eq!(body["totalRows"], 3);
    assert_eq!(body["rows"].as_array().unwrap().len(), 3);
    assert!(!body["columns"].as_array().unwrap().is_empty());
    for uri in [
        format!("dust://workspaces/{ws}/knowledge-bases/{HANDBOOK_DS_ID}/tables/nope"),
        format!("dust://workspaces/{ws}/knowledge-bases/{NOTION_DS_ID}/tables/offices"),
    ] {
        let err = read(uri.clone()).await.unwrap_err();
        assert!(err.to_string().contains("not found"), "{uri}: {err}");
    }
}
