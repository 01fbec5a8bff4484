//! Agents that use tools (issue 17): when a Dust run pauses for a person to approve a tool, the
//! person is asked through their MCP client (form elicitation) and Dust gets their answer;
//! `DUST_TOOL_APPROVAL=deny` rejects; a client that cannot be asked gets the action rejected
//! and a result naming the tool. Questions and sign-ins are relayed too: as forms and URL-mode
//! elicitation over MCP, and as `question_required` / `auth_required` events of a REST
//! execute stream, answered through the action route. The simulator records every
//! `validate-action` and `answer-question`.

use std::sync::{Arc, Mutex};

use mcp_dust_server::{
    auth::PermissionSet,
    config::ToolApproval,
    ops::Context,
    sim::{self, APPROVAL_AGENT_ID},
    store::MemoryConversationStore,
};
use rmcp::{
    ClientHandler, ErrorData, RoleClient,
    model::{
        ClientConfig, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationCapability,
        FormElicitationCapability, UrlElicitationCapability,
    },
    service::{RequestContext, RunningService},
};
use serde_json::{Value, json};

use crate::common::{self, McpTest, http::TestServer};

/// A client that declares elicitation and answers every form with `answer`, keeping what it
/// was shown.
#[derive(Clone)]
struct Person {
    answer: ElicitResult,
    shown: Arc<Mutex<Vec<(String, Value)>>>,
    /// Also declares URL-mode elicitation (what a URL request shows is kept as `(message,
    /// {"url": ...})`).
    url: bool,
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        let mut config = ClientConfig::default();
        let mut capability = ElicitationCapability::new();
        if self.url {
            capability.form = Some(FormElicitationCapability::default());
            capability.url = Some(UrlElicitationCapability::new());
        }
        config.capabilities.elicitation = Some(capability);
        config
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        if let ElicitRequestParams::FormElicitationParams {
            message,
            requested_schema,
            ..
        } = request
        {
            let schema = serde_json::to_value(&requested_schema).unwrap();
            self.shown.lock().unwrap().push((message, schema));
        } else if let ElicitRequestParams::UrlElicitationParams { message, url, .. } = request {
            self.shown
                .lock()
                .unwrap()
                .push((message, json!({ "url": url })));
        }
        Ok(self.answer.clone())
    }
}

fn answer(action: ElicitationAction, content: Option<Value>) -> ElicitResult {
    let mut result = ElicitResult::new(action);
    result.content = content;
    result
}

/// A server on the embedded simulator with `approval`, and `person` connected to it (stdio's
/// transport: one principal, a duplex connection that carries the server's requests).
async fn start(
    approval: ToolApproval,
    person: Person,
) -> (sim::SimHandle, RunningService<RoleClient, Person>) {
    start_with(person, |settings| settings.tool_approval = approval).await
}

/// [`start`] with the settings as `tweak` leaves them.
async fn start_with(
    person: Person,
    tweak: impl FnOnce(&mut mcp_dust_server::ops::Settings),
) -> (sim::SimHandle, RunningService<RoleClient, Person>) {
    let sim = sim::spawn(common::sim_config()).await.unwrap();
    let dust =
        Arc::new(mcp_dust_server::dust::HttpDustClient::with_base_url(&sim.base_url()).unwrap());
    let mut settings = common::settings(&sim.base_url());
    tweak(&mut settings);
    let ctx = Arc::new(Context::new(
        dust,
        Arc::new(MemoryConversationStore::new()),
        settings,
    ));
    let principal = common::principal(&sim, PermissionSet::DEFAULT, "usr_alice");
    let client = common::connect_with(ctx, principal, person).await;
    (sim, client)
}

/// The bodies the simulator received on `path_end` (POST).
fn posted(sim: &sim::SimHandle, path_end: &str) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(path_end))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

async fn ask_mailer(client: &RunningService<RoleClient, Person>) -> rmcp::model::CallToolResult {
    common::call(
        client,
        "ask_agent",
        json!({"agentId": APPROVAL_AGENT_ID, "message": "tell the CEO we shipped"}),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn the_person_approves_and_the_agent_acts() {
    let person = Person {
        answer: answer(ElicitationAction::Accept, Some(json!({"always": false}))),
        shown: Arc::default(),
        url: false,
    };
    let (sim, client) = start(ToolApproval::Ask, person.clone()).await;
    let result = ask_mailer(&client).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let answer = result.structured_content.unwrap();
    assert_eq!(answer["answer"], "I sent your message to ceo@example.com.");
    // The person saw the agent, the tool, its server and its inputs, and the form of the spec.
    let shown = person.shown.lock().unwrap().clone();
    assert_eq!(shown.len(), 1, "{shown:?}");
    let (message, schema) = &shown[0];
    for needle in [
        "Mailer",
        "send_email (Gmail)",
        "ceo@example.com",
        "tell the CEO we shipped",
    ] {
        assert!(message.contains(needle), "{needle} missing from {message}");
    }
    assert_eq!(
        schema["properties"]["always"]["type"], "boolean",
        "{schema}"
    );
    assert_eq!(schema["properties"]["always"]["default"], false, "{schema}");
    // Dust was told to validate, and nothing skipped validation.
    let created = posted(&sim, "/assistant/conversations");
    assert_eq!(created[0]["skipToolsValidation"], false, "{:?}", created[0]);
    let decisions = posted(&sim, "/validate-action");
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["approved"], "approved");
}

#[tokio::test]
async fn always_allow_is_remembered_by_dust_and_reject_stops_the_tool() {
    let always = Person {
        answer: answer(ElicitationAction::Accept, Some(json!({"always": true}))),
        shown: Arc::default(),
        url: false,
    };
    let (sim, client) = start(ToolApproval::Ask, always).await;
    let result = ask_mailer(&client).await;
    assert_ne!(result.is_error, Some(true), "{result:?}");
    assert_eq!(
        posted(&sim, "/validate-action")[0]["approved"],
        "always_approved"
    );

    for action in [ElicitationAction::Decline, ElicitationAction::Cancel] {
        let person = Person {
            answer: answer(action, None),
            shown: Arc::default(),
            url: false,
        };
        let (sim, client) = start(ToolApproval::Ask, person).await;
        let result = ask_mailer(&client).await;
        assert_ne!(result.is_error, Some(true), "{result:?}");
        assert_eq!(
            result.structured_content.unwrap()["answer"],
            "I did not send the email: the action was rejected."
        );
        assert_eq!(posted(&sim, "/validate-action")[0]["approved"], "rejected");
    }
}

#[tokio::test]
async fn deny_rejects_without_asking() {
    let person = Person {
        answer: answer(ElicitationAction::Accept, Some(json!({"always": false}))),
        shown: Arc::default(),
        url: false,
    };
    let (sim, client) = start(ToolApproval::Deny, person.clone()).await;
    let result = ask_mailer(&client).await;
    assert_eq!(
        result.structured_content.unwrap()["answer"],
        "I did not send the email: the action was rejected."
    );
    assert!(person.shown.lock().unwrap().is_empty());
    assert_eq!(posted(&sim, "/validate-action")[0]["approved"], "rejected");
}

#[tokio::test]
async fn a_client_that_cannot_be_asked_gets_the_tool_refused_by_name() {
    // In process, without the elicitation capability.
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let result = t
        .call(
            "ask_agent",
            json!({"agentId": APPROVAL_AGENT_ID, "message": "tell the CEO"}),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    let message = common::text(&result);
    assert!(
        message.contains("send_email (Gmail)") && message.contains("rejected"),
        "{message}"
    );
    assert_eq!(
        posted(&t.sim, "/validate-action")[0]["approved"],
        "rejected"
    );

    // Over HTTP (stateless: no request can travel back to the client yet), the same.
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let (_, body) = s
        .call_tool(
            &token,
            "ask_agent",
            json!({"agentId": APPROVAL_AGENT_ID, "message": "tell the CEO"}),
        )
        .await;
    assert_eq!(body["result"]["isError"], true, "{body}");
    let text = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("send_email (Gmail)"), "{text}");
    assert_eq!(
        posted(&s.sim, "/validate-action")[0]["approved"],
        "rejected"
    );
    s.state.auditor.flush().await;
    let rejected = s
        .audit
        .of_type(mcp_dust_server::audit::AuditEventType::AgentActionRejected);
    assert_eq!(rejected.len(), 1, "{rejected:?}");
}

/// An agent's question becomes a form: its options as a choice, and a free-text answer; the
/// person's reply goes to Dust's `answer-question` and the agent goes on with it.
#[tokio::test]
async fn the_person_answers_an_agents_question() {
    let ask_planner = |client: RunningService<RoleClient, Person>| async move {
        let result = common::call(
            &client,
            "ask_agent",
            json!({"agentId": sim::QUESTION_AGENT_ID, "message": "book a meeting room"}),
        )
        .await
        .unwrap();
        assert_ne!(result.is_error, Some(true), "{result:?}");
        result.structured_content.unwrap()["answer"].clone()
    };
    let cases = [
        (
            answer(ElicitationAction::Accept, Some(json!({"choice": "Berlin"}))),
            "I booked a meeting room in Berlin.",
            json!({"selectedOptions": [1]}),
        ),
        (
            answer(ElicitationAction::Accept, Some(json!({"answer": "Lyon"}))),
            "I booked a meeting room in Lyon.",
            json!({"selectedOptions": [], "customResponse": "Lyon"}),
        ),
        (
            answer(ElicitationAction::Decline, None),
            "You did not choose an office; I booked nothing.",
            json!({"selectedOptions": []}),
        ),
    ];
    for (reply, expected, sent) in cases {
        let person = Person {
            answer: reply,
            shown: Arc::default(),
            url: false,
        };
        let (sim, client) = start(ToolApproval::Ask, person.clone()).await;
        assert_eq!(ask_planner(client).await, expected);
        let shown = person.shown.lock().unwrap().clone();
        let (message, schema) = &shown[0];
        assert!(
            message.contains("Which office should I book the meeting room in?"),
            "{message}"
        );
        assert_eq!(
            schema["properties"]["choice"]["enum"],
            json!(["Paris", "Berlin"]),
            "{schema}"
        );
        assert_eq!(schema["properties"]["answer"]["type"], "string", "{schema}");
        assert_eq!(posted(&sim, "/answer-question")[0]["answer"], sent);
    }
}

/// A sign-in the agent needs is a URL-mode elicitation to the conversation in Dust, where the
/// person connects the tool (the run then goes on by itself, within the call's timeout); a
/// client without URL mode, or a person who declines, gets the message naming the tool.
#[tokio::test]
async fn a_sign_in_sends_the_person_to_dust() {
    for (action, url_mode) in [
        (ElicitationAction::Accept, true),
        (ElicitationAction::Decline, true),
        (ElicitationAction::Accept, false),
    ] {
        let person = Person {
            answer: answer(action.clone(), None),
            shown: Arc::default(),
            url: url_mode,
        };
        let (_sim, client) = start_with(person.clone(), |settings| {
            settings.agent_timeout = std::time::Duration::from_secs(2);
        })
        .await;
        let result = common::call(
            &client,
            "ask_agent",
            json!({"agentId": sim::PERSONAL_AUTH_AGENT_ID, "message": "list my files"}),
        )
        .await
        .unwrap();
        assert_eq!(result.is_error, Some(true));
        let text = common::text(&result);
        let shown = person.shown.lock().unwrap().clone();
        if url_mode {
            let (message, url) = &shown[0];
            assert!(message.contains("list_files (Google Drive)"), "{message}");
            assert!(
                url["url"].as_str().unwrap().contains("/conversation/"),
                "{url}"
            );
        } else {
            assert!(shown.is_empty(), "{shown:?}");
        }
        if action == ElicitationAction::Accept && url_mode {
            // Nobody connects in the simulator: the call ends at its timeout, saying where
            // the answer will be.
            assert!(text.contains("did not finish within"), "{text}");
        } else {
            assert!(
                text.contains("list_files (Google Drive)") && text.contains("connect"),
                "{text}"
            );
        }
    }
}

/// REST: an execute stream sends `approval_required` and waits; the decision route answers it
/// (the caller's own conversation only) and the stream goes on to the answer.
#[tokio::test]
async fn a_rest_stream_asks_and_the_decision_route_answers() {
    use futures::StreamExt;
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let ws = s.sim.workspace_id().to_owned();
    for (decision, expected) in [
        ("approve", "I sent your message to ceo@example.com."),
        (
            "reject",
            "I did not send the email: the action was rejected.",
        ),
    ] {
        let response = s
            .http
            .post(s.url(&format!(
                "/api/v1/workspaces/{ws}/agents/{APPROVAL_AGENT_ID}/execute"
            )))
            .bearer_auth(&token)
            .header("Accept", "text/event-stream")
            .json(&json!({"message": "tell the CEO"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut body = response.bytes_stream();
        let mut text = String::new();
        let request = loop {
            let chunk = body.next().await.expect("stream ended").unwrap();
            text.push_str(&String::from_utf8_lossy(&chunk));
            if let Some(at) = text.find("event: approval_required")
                && let Some(data) = text[at..].lines().find_map(|l| l.strip_prefix("data: "))
                && text[at..].contains("\n\n")
            {
                break serde_json::from_str::<Value>(data).unwrap();
            }
        };
        assert_eq!(request["tool"], "send_email", "{request}");
        assert_eq!(request["server"], "Gmail", "{request}");
        assert_eq!(request["agent"], "Mailer", "{request}");
        assert_eq!(request["inputs"]["to"], "ceo@example.com", "{request}");
        let conversation = request["conversationId"].as_str().unwrap().to_owned();
        let action = request["actionId"].as_str().unwrap().to_owned();
        let decide = |token: String, action: String| {
            s.http
                .post(s.url(&format!(
                    "/api/v1/workspaces/{ws}/conversations/{conversation}/actions/{action}"
                )))
                .bearer_auth(token)
                .json(&json!({ "decision": decision }))
                .send()
        };
        // No such action: 404, and Dust is not told anything.
        let response = decide(token.clone(), "act_n0tW41t1ng".into())
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        let response = decide(token.clone(), action.clone()).await.unwrap();
        assert_eq!(response.status(), 200);
        let decided: Value = response.json().await.unwrap();
        assert_eq!(decided["decision"], decision);
        let rest = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while let Some(chunk) = body.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            }
            text
        })
        .await
        .expect("the stream did not end after the decision");
        assert!(
            rest.contains("event: done") && rest.contains(expected),
            "{rest}"
        );
    }
    let sent: Vec<Value> = posted(&s.sim, "/validate-action")
        .into_iter()
        .map(|b| b["approved"].clone())
        .collect();
    assert_eq!(sent, [json!("approved"), json!("rejected")]);
    s.state.auditor.flush().await;
    use mcp_dust_server::audit::AuditEventType;
    assert_eq!(
        s.audit.of_type(AuditEventType::AgentActionApproved).len(),
        1
    );
    assert_eq!(
        s.audit.of_type(AuditEventType::AgentActionRejected).len(),
        1
    );
}

/// Reads `body` (appending to `text`) until the server-sent event `name` is complete; returns
/// its data.
async fn sse_event(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    text: &mut String,
    name: &str,
) -> Value {
    use futures::StreamExt;
    let marker = format!("event: {name}\n");
    loop {
        if let Some(at) = text.find(&marker)
            && let Some(end) = text[at..].find("\n\n")
        {
            let frame = &text[at..at + end];
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            return serde_json::from_str(data).unwrap();
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), body.next())
            .await
            .unwrap_or_else(|_| panic!("no {name} event in {text}"))
            .unwrap_or_else(|| panic!("the stream ended without {name}: {text}"))
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// Reads `body` to its end (appending to `text`).
async fn sse_rest(
    body: &mut (impl futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    text: &mut String,
) {
    use futures::StreamExt;
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the stream did not end: {text}"));
}

/// `POST .../execute` with `Accept: text/event-stream` for `agent`.
async fn execute_stream(
    s: &TestServer,
    token: &str,
    agent: &str,
    message: &str,
) -> reqwest::Response {
    let ws = s.sim.workspace_id();
    let response = s
        .http
        .post(s.url(&format!("/api/v1/workspaces/{ws}/agents/{agent}/execute")))
        .bearer_auth(token)
        .header("Accept", "text/event-stream")
        .json(&json!({ "message": message }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response
}

/// `POST .../conversations/{c}/actions/{a}` with `body`.
async fn reply_to(
    s: &TestServer,
    token: &str,
    conversation: &str,
    action: &str,
    body: &Value,
) -> reqwest::Response {
    let ws = s.sim.workspace_id();
    s.http
        .post(s.url(&format!(
            "/api/v1/workspaces/{ws}/conversations/{conversation}/actions/{action}"
        )))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// REST: an execute stream sends `question_required` (the question and its options' labels)
/// and waits; the same route answers it with a choice (sent to Dust as the option's index) or
/// with free text (sent byte for byte), and the stream goes on to the answer.
#[tokio::test]
async fn a_rest_stream_asks_a_question_and_the_route_answers_it() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let own_words = "Lyon, près de la « gare » 🚄\t\"quai\" \\ n°2  ";
    let cases = [
        (
            json!({"choice": "Berlin"}),
            "I booked a meeting room in Berlin.".to_owned(),
            json!({"selectedOptions": [1]}),
        ),
        (
            json!({"answer": own_words}),
            format!("I booked a meeting room in {own_words}."),
            json!({"selectedOptions": [], "customResponse": own_words}),
        ),
    ];
    for (reply, expected, sent) in cases {
        let response =
            execute_stream(&s, &token, sim::QUESTION_AGENT_ID, "book a meeting room").await;
        let mut body = response.bytes_stream();
        let mut text = String::new();
        let question = sse_event(&mut body, &mut text, "question_required").await;
        assert_eq!(question["agent"], "Planner", "{question}");
        assert_eq!(question["tool"], "ask_user_question", "{question}");
        assert_eq!(question["server"], "Ask the user", "{question}");
        assert_eq!(
            question["question"], "Which office should I book the meeting room in?",
            "{question}"
        );
        assert_eq!(
            question["options"],
            json!(["Paris", "Berlin"]),
            "{question}"
        );
        assert!(question["messageId"].is_string(), "{question}");
        let conversation = question["conversationId"].as_str().unwrap();
        let action = question["actionId"].as_str().unwrap();
        let response = reply_to(&s, &token, conversation, action, &reply).await;
        assert_eq!(response.status(), 200);
        let answered: Value = response.json().await.unwrap();
        assert_eq!(answered, json!({"actionId": action, "answered": true}));
        sse_rest(&mut body, &mut text).await;
        let done = text
            .split("event: done\n")
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        let done: Value =
            serde_json::from_str(done.lines().next().unwrap().strip_prefix("data: ").unwrap())
                .unwrap();
        assert_eq!(done["answer"], expected, "{text}");
        assert_eq!(
            posted(&s.sim, "/answer-question").last().unwrap()["answer"],
            sent
        );
    }
    // The free text reached Dust byte for byte (the raw body, not only its decoded value).
    let raw = s
        .sim
        .requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/answer-question"))
        .unwrap();
    let encoded = serde_json::to_string(own_words).unwrap();
    assert!(
        String::from_utf8_lossy(&raw.body).contains(&encoded),
        "{}",
        String::from_utf8_lossy(&raw.body)
    );
    s.state.auditor.flush().await;
    use mcp_dust_server::audit::AuditEventType;
    let answered = s.audit.of_type(AuditEventType::AgentQuestionAnswered);
    assert_eq!(answered.len(), 2, "{answered:?}");
    let replied: Vec<String> = answered.iter().map(|r| r.to_string()).collect();
    assert!(replied[0].contains("\"option\""), "{}", replied[0]);
    assert!(replied[1].contains("\"text\""), "{}", replied[1]);
    // What the person said is not in the audit log.
    assert!(
        replied
            .iter()
            .all(|r| !r.contains("Lyon") && !r.contains("Berlin")),
        "{replied:?}"
    );
}

/// The answer route refuses, and tells Dust nothing: another user's conversation (404), a
/// choice that is not an option, both body shapes, neither, an unknown field (400, audited
/// `input_validation_fail`), a decision on a question and an answer to no waiting question
/// (404). A client that goes away while the question waits gets the run cancelled in Dust.
#[tokio::test]
async fn refused_answers_reach_nobody() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let response = execute_stream(&s, &token, sim::QUESTION_AGENT_ID, "book a meeting room").await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let question = sse_event(&mut body, &mut text, "question_required").await;
    let conversation = question["conversationId"].as_str().unwrap().to_owned();
    let message = question["messageId"].as_str().unwrap().to_owned();
    let action = question["actionId"].as_str().unwrap().to_owned();

    let mallory = crate::http_authz::other_user_token(&s, PermissionSet::DEFAULT).await;
    let response = reply_to(
        &s,
        &mallory,
        &conversation,
        &action,
        &json!({"choice": "Paris"}),
    )
    .await;
    assert_eq!(response.status(), 404);

    let invalid = [
        (json!({"choice": "Madrid"}), "\"Paris\", \"Berlin\""),
        (
            json!({"decision": "approve", "choice": "Paris"}),
            "not both",
        ),
        (json!({"decision": "reject", "answer": "no"}), "not both"),
        (json!({}), "needs `decision`"),
        (json!({"choice": "Paris", "note": "hi"}), "unknown field"),
        (json!({"answer": "   "}), "must not be empty"),
    ];
    for (reply, needle) in &invalid {
        let response = reply_to(&s, &token, &conversation, &action, reply).await;
        assert_eq!(response.status(), 400, "{reply}");
        let refused: Value = response.json().await.unwrap();
        assert_eq!(refused["error"]["code"], "invalid_request", "{refused}");
        let why = refused["error"]["message"].as_str().unwrap();
        assert!(why.contains(needle), "{reply}: {why}");
    }
    for (target, reply) in [
        (action.as_str(), json!({"decision": "approve"})),
        ("act_n0tW41t1ng", json!({"choice": "Paris"})),
    ] {
        let response = reply_to(&s, &token, &conversation, target, &reply).await;
        assert_eq!(response.status(), 404, "{reply}");
    }
    assert!(posted(&s.sim, "/answer-question").is_empty());
    assert!(posted(&s.sim, "/validate-action").is_empty());
    s.state.auditor.flush().await;
    use mcp_dust_server::audit::AuditEventType;
    let refused = s.audit.of_type(AuditEventType::InputValidationFail);
    assert_eq!(refused.len(), invalid.len(), "{refused:?}");

    // The client goes away while the question waits: the run is cancelled in Dust.
    drop(body);
    let cancelled = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let cancels = posted(&s.sim, "/cancel");
            if let Some(cancel) = cancels.first() {
                break cancel.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the run was not cancelled");
    assert_eq!(cancelled["messageIds"], json!([message]));
}

/// REST: a sign-in the agent needs is an `auth_required` event carrying the conversation's
/// address in Dust; the stream keeps following the run (which goes on once the person has
/// connected) until the timeout. Without a stream, questions and sign-ins end the call at once
/// with a message naming the tool.
#[tokio::test]
async fn a_rest_stream_sends_the_person_to_dust_to_sign_in() {
    let s = TestServer::start_with(&[("MCP_SERVER_TIMEOUT", "2")]).await;
    let token = s.token(None).await;
    let response = execute_stream(&s, &token, sim::PERSONAL_AUTH_AGENT_ID, "list my files").await;
    let mut body = response.bytes_stream();
    let mut text = String::new();
    let sign_in = sse_event(&mut body, &mut text, "auth_required").await;
    assert_eq!(sign_in["agent"], "DriveReader", "{sign_in}");
    assert_eq!(sign_in["tool"], "list_files", "{sign_in}");
    assert_eq!(sign_in["server"], "Google Drive", "{sign_in}");
    assert!(sign_in["actionId"].is_string() && sign_in["messageId"].is_string());
    let conversation = sign_in["conversationId"].as_str().unwrap();
    let url = sign_in["url"].as_str().unwrap();
    assert!(
        url.ends_with(&format!("/conversation/{conversation}")),
        "{url}"
    );
    sse_rest(&mut body, &mut text).await;
    let error = text
        .split("event: error\n")
        .nth(1)
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        error.contains("agent_timeout") && error.contains("did not finish within"),
        "{text}"
    );

    // JSON: nobody can be asked, the call ends naming what the agent waits for.
    let ws = s.sim.workspace_id().to_owned();
    for (agent, needles) in [
        (
            sim::PERSONAL_AUTH_AGENT_ID,
            ["list_files (Google Drive)", "connect"],
        ),
        (
            sim::QUESTION_AGENT_ID,
            [
                "Which office should I book the meeting room in?",
                "Answer it in Dust",
            ],
        ),
    ] {
        let response = s
            .http
            .post(s.url(&format!("/api/v1/workspaces/{ws}/agents/{agent}/execute")))
            .bearer_auth(&token)
            .json(&json!({"message": "go"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 424);
        let failed: Value = response.json().await.unwrap();
        let message = failed["error"]["message"].as_str().unwrap();
        for needle in needles {
            assert!(message.contains(needle), "{needle}: {message}");
        }
    }
}

/// The OpenAPI document describes both replies the action route takes, and what it answers.
#[tokio::test]
async fn the_openapi_document_describes_the_action_route() {
    let s = TestServer::start().await;
    let doc: Value = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let route = &doc["paths"]["/api/v1/workspaces/{workspaceId}/conversations/{conversationId}/actions/{actionId}"]
        ["post"];
    let body = &route["requestBody"]["content"]["application/json"]["schema"]["$ref"];
    assert_eq!(body, "#/components/schemas/ActionReply", "{route}");
    let reply = &doc["components"]["schemas"]["ActionReply"];
    for field in ["decision", "choice", "answer"] {
        assert!(reply["properties"][field].is_object(), "{field}: {reply}");
    }
    assert_eq!(reply["additionalProperties"], false, "{reply}");
    assert_eq!(
        doc["components"]["schemas"]["Decided"]["required"],
        json!(["actionId"]),
        "{doc:#}"
    );
}
