//! The Dust simulator against raw HTTP: what a client sees must match the Dust contract.

use mcp_dust_server::{
    dust::CreatedConversation,
    sim::{self, FaultAction, FaultRule, Faults, SimConfig, SimHandle},
};
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};

async fn start(config: SimConfig) -> (SimHandle, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let handle = sim::spawn(config).await.expect("spawn simulator");
    (handle, Client::new())
}

fn fast() -> SimConfig {
    SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    }
}

fn url(h: &SimHandle, path: &str) -> String {
    format!("{}/api/v1/w/{}/{path}", h.base_url(), h.workspace_id())
}

async fn call(
    c: &Client,
    h: &SimHandle,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = c.request(method, url(h, path)).bearer_auth(h.api_key());
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn error_type(body: &Value) -> &str {
    body["error"]["type"].as_str().unwrap_or("<none>")
}

fn message(content: &str, agent: &str) -> Value {
    json!({
        "content": content,
        "mentions": [{ "configurationId": agent }],
        "context": { "username": "tester", "timezone": "Europe/Paris", "origin": "api" },
    })
}

async fn create(c: &Client, h: &SimHandle, content: &str, agent: &str, blocking: bool) -> Value {
    let (status, body) = call(
        c,
        h,
        Method::POST,
        "assistant/conversations",
        Some(json!({ "message": message(content, agent), "blocking": blocking })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The agent message of a create answer (last slot, last version).
fn agent_message(created: &Value) -> &Value {
    let content = created["conversation"]["content"]
        .as_array()
        .expect("content");
    &content[content.len() - 1][0]
}

/// Reads one SSE connection to the end: `(frames as JSON, saw "data: done")`.
async fn read_stream(
    c: &Client,
    h: &SimHandle,
    c_id: &str,
    m_id: &str,
    last: Option<&str>,
) -> (Vec<Value>, bool) {
    let mut path = format!("assistant/conversations/{c_id}/messages/{m_id}/events");
    if let Some(last) = last {
        path.push_str(&format!("?lastEventId={last}"));
    }
    let resp = c
        .get(url(h, &path))
        .bearer_auth(h.api_key())
        .send()
        .await
        .expect("stream");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.expect("body");
    let mut frames = text.split("\n\n").filter(|f| !f.is_empty());
    assert_eq!(frames.next(), Some("event: dust-handshake\ndata: {}"));
    let mut events = Vec::new();
    let mut done = false;
    for frame in frames {
        let data = frame.strip_prefix("data: ").expect("data frame");
        if data == "done" {
            done = true;
        } else {
            events.push(serde_json::from_str(data).expect("json frame"));
        }
    }
    (events, done)
}

#[tokio::test]
async fn auth_errors_follow_dust() {
    let (h, c) = start(fast()).await;
    let exists = url(&h, "exists");
    let cases: Vec<(Option<String>, String, StatusCode, &str)> = vec![
        (
            None,
            exists.clone(),
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
        ),
        (
            Some("Bearer abc".into()),
            exists.clone(),
            StatusCode::UNAUTHORIZED,
            "malformed_authorization_header_error",
        ),
        (
            Some(format!("Bearer {}", sim::random_api_key())),
            exists.clone(),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key_error",
        ),
        (
            Some(format!("Bearer {}", h.other_api_key())),
            exists.clone(),
            StatusCode::UNAUTHORIZED,
            "workspace_auth_error",
        ),
        (
            Some(format!("Bearer {}", h.api_key())),
            format!("{}/api/v1/w/NoSuchWork/exists", h.base_url()),
            StatusCode::NOT_FOUND,
            "workspace_not_found",
        ),
    ];
    for (auth, target, status, kind) in cases {
        let mut req = c.get(&target);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), status, "{kind}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_type(&body), kind);
        assert!(body["error"]["message"].is_string());
    }
    let (status, body) = call(&c, &h, Method::GET, "exists", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "exists": true })));
    let other = c
        .get(format!(
            "{}/api/v1/w/{}/exists",
            h.base_url(),
            h.other_workspace_id()
        ))
        .bearer_auth(h.other_api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn envelope_on_unknown_routes_bad_methods_and_bad_json() {
    let (h, c) = start(fast()).await;
    let (status, body) = call(&c, &h, Method::GET, "no/such/route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["type"].is_string());
    let (status, body) = call(&c, &h, Method::DELETE, "exists", None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_supported_error")
    );
    let resp = c
        .post(url(&h, "assistant/conversations"))
        .bearer_auth(h.api_key())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_type(&body), "invalid_request_error");
    assert_eq!(body["error"]["message"], "Malformed JSON in request body");
    let (status, body) = call(&c, &h, Method::GET, "assistant/conversations", None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::UNAUTHORIZED, "user_not_found")
    );
    let me = c
        .get(format!("{}/api/v1/me", h.base_url()))
        .bearer_auth(h.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn message_validation_rejects_what_dust_rejects() {
    let (h, c) = start(fast()).await;
    let base = message("hello", sim::ECHO_AGENT_ID);
    let mut cases = Vec::new();
    let mut m = base.clone();
    m["context"].as_object_mut().unwrap().remove("username");
    cases.push((m, "message.context.username"));
    let mut m = base.clone();
    m["context"]["username"] = json!("");
    cases.push((m, "message.context.username"));
    let mut m = base.clone();
    m["context"]["timezone"] = json!("Mars/Olympus");
    cases.push((m, "Invalid timezone"));
    let mut m = base.clone();
    m["content"] = json!("");
    cases.push((m, "message.content"));
    let mut m = base.clone();
    m.as_object_mut().unwrap().remove("mentions");
    cases.push((m, "message.mentions"));
    for (m, needle) in cases {
        let (status, body) = call(
            &c,
            &h,
            Method::POST,
            "assistant/conversations",
            Some(json!({ "message": m })),
        )
        .await;
        assert_eq!(
            (status, error_type(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request_error"),
            "{needle}"
        );
        let text = body["error"]["message"].as_str().unwrap();
        assert!(
            text.starts_with("Invalid request body: ") && text.contains(needle),
            "{text}"
        );
    }
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        "assistant/conversations",
        Some(json!({ "message": message("hi", "nosuchagnt") })),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "agent_configuration_not_found")
    );
}

#[tokio::test]
async fn agents_are_listed_and_fetched() {
    let (h, c) = start(fast()).await;
    let (status, body) = call(&c, &h, Method::GET, "assistant/agent_configurations", None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["agentConfigurations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["sId"].as_str().unwrap())
        .collect();
    for id in [
        sim::DUST_AGENT_ID,
        sim::HANDBOOK_AGENT_ID,
        sim::ECHO_AGENT_ID,
        sim::FAILING_AGENT_ID,
        sim::SLOW_AGENT_ID,
    ] {
        assert!(ids.contains(&id), "{id}");
    }
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/agent_configurations/{}", sim::ECHO_AGENT_ID),
        None,
    )
    .await;
    assert_eq!(
        (status, body["agentConfiguration"]["name"].as_str()),
        (StatusCode::OK, Some("Echo"))
    );
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        "assistant/agent_configurations/unknown123",
        None,
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "agent_configuration_not_found")
    );
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        "assistant/agent_configurations/search?q=ech",
        None,
    )
    .await;
    assert_eq!(
        (status, body["agentConfigurations"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(1))
    );
}

#[tokio::test]
async fn blocking_creation_returns_the_answer_byte_for_byte() {
    let (h, c) = start(fast()).await;
    let text = "héllo 🌍\n  \"quoted\"\ttabs & <tags> @dust  ";
    let created = create(&c, &h, text, sim::ECHO_AGENT_ID, true).await;
    let parsed: CreatedConversation =
        serde_json::from_value(created.clone()).expect("client shape");
    let user_id = parsed.message.as_ref().expect("message").s_id.clone();
    let reply = parsed.conversation.agent_reply_to(&user_id).expect("reply");
    assert_eq!(reply.status, "succeeded");
    assert_eq!(
        reply.content.as_deref(),
        Some(format!("You said: {text}").as_str())
    );
    assert_eq!(reply.agent_id(), Some(sim::ECHO_AGENT_ID));
    assert!(
        created["conversation"]["url"]
            .as_str()
            .unwrap()
            .contains(&parsed.conversation.s_id)
    );
    let raw = &h.requests()[0];
    assert_eq!(
        serde_json::from_slice::<Value>(&raw.body).unwrap()["message"]["content"],
        text
    );

    let created = create(
        &c,
        &h,
        "How many PTO days do employees get per year?",
        "dust",
        true,
    )
    .await;
    let answer = agent_message(&created)["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        answer.starts_with("According to \"PTO Policy\": Full-time employees accrue 25 days"),
        "{answer}"
    );
    let created = create(
        &c,
        &h,
        "Are meals reimbursed when travelling?",
        sim::HANDBOOK_AGENT_ID,
        true,
    )
    .await;
    let msg = agent_message(&created);
    assert!(msg["content"].as_str().unwrap().contains("Expense Policy"));
    assert_eq!(msg["actions"].as_array().map(Vec::len), Some(1));
    assert!(msg["chainOfThought"].as_str().is_some());
}

#[tokio::test]
async fn non_blocking_creation_then_post_and_failure() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "first", sim::ECHO_AGENT_ID, false).await;
    let msg = agent_message(&created);
    assert_eq!(msg["status"], "created");
    assert_eq!(msg["content"], Value::Null);
    assert_eq!(msg["parentMessageId"], created["message"]["sId"]);
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();

    let mut body = message("second", sim::ECHO_AGENT_ID);
    body["blocking"] = json!(true);
    let (status, posted) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/messages"),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(posted["agentMessages"][0]["status"], "succeeded");
    assert_eq!(posted["agentMessages"][0]["content"], "You said: second");
    assert_eq!(posted["message"]["content"], "second");

    let mut body = message("break", sim::FAILING_AGENT_ID);
    body["blocking"] = json!(true);
    let (_, posted) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/messages"),
        Some(body),
    )
    .await;
    assert_eq!(posted["agentMessages"], json!([]));
    let (_, conv) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}"),
        None,
    )
    .await;
    let slots = conv["conversation"]["content"].as_array().unwrap();
    assert_eq!(slots.len(), 6);
    let last = &slots[5][0];
    assert_eq!(
        (last["status"].as_str(), last["error"]["code"].as_str()),
        (Some("failed"), Some("model_error"))
    );

    let (status, body) = call(&c, &h, Method::GET, "assistant/conversations/nope", None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "conversation_not_found")
    );
}

#[tokio::test]
async fn cancel_stops_the_slow_agent() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "take your time", sim::SLOW_AGENT_ID, false).await;
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();
    let m_id = agent_message(&created)["sId"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/cancel"),
        Some(json!({ "messageIds": [m_id] })),
    )
    .await;
    assert_eq!((status, body), (StatusCode::OK, json!({ "success": true })));
    let (events, done) = read_stream(&c, &h, &c_id, &m_id, None).await;
    assert!(done);
    assert_eq!(
        events.last().unwrap()["data"]["type"],
        "agent_generation_cancelled"
    );
    let (_, conv) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}"),
        None,
    )
    .await;
    assert_eq!(conv["conversation"]["content"][1][0]["status"], "cancelled");
}

#[tokio::test]
async fn sse_redirects_streams_and_replays() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "stream me please", sim::ECHO_AGENT_ID, false).await;
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();
    let m_id = agent_message(&created)["sId"].as_str().unwrap().to_owned();

    let no_follow = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let path = format!("assistant/conversations/{c_id}/messages/{m_id}/events?lastEventId=0-0");
    let resp = no_follow
        .get(url(&h, &path))
        .bearer_auth(h.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        resp.headers()["location"].to_str().unwrap(),
        format!("/api/sse/v1/w/{}/{path}", h.workspace_id())
    );

    let (events, done) = read_stream(&c, &h, &c_id, &m_id, None).await;
    assert!(done);
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e["eventId"].as_str().unwrap())
        .collect();
    let parse = |id: &str| -> (u64, u64) {
        let (a, b) = id.split_once('-').unwrap();
        (a.parse().unwrap(), b.parse().unwrap())
    };
    assert!(ids.windows(2).all(|w| parse(w[0]) < parse(w[1])), "{ids:?}");
    let tokens: String = events
        .iter()
        .filter(|e| {
            e["data"]["type"] == "generation_tokens" && e["data"]["classification"] == "tokens"
        })
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, "You said: stream me please");
    let last = &events.last().unwrap()["data"];
    assert_eq!(last["type"], "agent_message_success");
    assert_eq!(last["message"]["content"], "You said: stream me please");
    assert_eq!(
        events[events.len() - 2]["data"]["type"],
        "agent_message_done"
    );

    let (replay, _) = read_stream(&c, &h, &c_id, &m_id, Some(ids[2])).await;
    assert_eq!(replay, events[3..].to_vec());

    let user_id = created["message"]["sId"].as_str().unwrap();
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}/messages/{user_id}/events"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("Events are only available for agent messages.")
        )
    );
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}/messages/nope/events"),
        None,
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "message_not_found")
    );
    let anonymous = c
        .get(
            url(
                &h,
                &format!("assistant/conversations/{c_id}/messages/{m_id}/events"),
            )
            .replace("/api/", "/api/sse/"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn streams_drop_after_n_events_and_resume() {
    let (h, c) = start(SimConfig {
        drop_stream_after: Some(2),
        ..fast()
    })
    .await;
    let created = create(&c, &h, "one two three four", sim::ECHO_AGENT_ID, true).await;
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();
    let m_id = agent_message(&created)["sId"].as_str().unwrap().to_owned();
    let mut all = Vec::new();
    let mut last: Option<String> = None;
    for _ in 0..20 {
        let (events, done) = read_stream(&c, &h, &c_id, &m_id, last.as_deref()).await;
        assert!(events.len() <= 2);
        last = events
            .last()
            .map(|e| e["eventId"].as_str().unwrap().to_owned())
            .or(last);
        all.extend(events);
        if done {
            break;
        }
    }
    assert_eq!(all.last().unwrap()["data"]["type"], "agent_message_success");
    let ids: Vec<&str> = all.iter().map(|e| e["eventId"].as_str().unwrap()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "no event is delivered twice");
    let tokens: String = all
        .iter()
        .filter(|e| e["data"]["classification"] == "tokens")
        .map(|e| e["data"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(tokens, "You said: one two three four");
}

#[tokio::test]
async fn search_scores_filters_and_full_text_quirk() {
    let (h, c) = start(fast()).await;
    let base = format!(
        "spaces/{}/data_sources/{}/search",
        sim::COMPANY_SPACE_ID,
        sim::HANDBOOK_DS_ID
    );
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("{base}?query=unused%20PTO%20days%20carry%20over&top_k=3"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let docs = body["documents"].as_array().unwrap();
    assert_eq!(docs[0]["document_id"], "pto-policy");
    assert_eq!(docs[0]["title"], "PTO Policy");
    assert!(
        docs[0]["chunks"][0]["text"]
            .as_str()
            .unwrap()
            .contains("carry over")
    );
    let scores: Vec<f64> = docs
        .iter()
        .flat_map(|d| {
            d["chunks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["score"].as_f64().unwrap())
        })
        .collect();
    assert!(scores.len() <= 3 && scores[0] >= *scores.last().unwrap());
    assert_eq!(docs[0]["text"], Value::Null);
    let (_, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("{base}?query=PTO&top_k=1&full_text=false"),
        None,
    )
    .await;
    assert!(
        body["documents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("25 days")
    );
    let (_, body) = call(
        &c,
        &h,
        Method::GET,
        &format!(
            "{base}?query=new%20hires%20laptop&top_k=5&tags_in=topic:security&tags_in=topic:finance"
        ),
        None,
    )
    .await;
    assert!(
        body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["document_id"] == "security" || d["document_id"] == "expenses")
    );
    let (_, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("{base}?query=laptop&top_k=5&tags_not=topic:hr"),
        None,
    )
    .await;
    assert!(
        body["documents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["document_id"] != "onboarding")
    );
    let (status, body) = call(&c, &h, Method::GET, &format!("{base}?query=PTO"), None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!(
            "spaces/{}/data_sources/{}/search?query=x&top_k=1",
            sim::ENGINEERING_SPACE_ID,
            sim::HANDBOOK_DS_ID
        ),
        None,
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "data_source_not_found")
    );
    let (status, body) = call(&c, &h, Method::GET, "spaces/vlt_nope/data_sources", None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "space_not_found")
    );
    let (_, body) = call(&c, &h, Method::GET, "spaces", None).await;
    assert_eq!(body["spaces"].as_array().map(Vec::len), Some(2));
    let (_, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("spaces/{}/data_sources", sim::COMPANY_SPACE_ID),
        None,
    )
    .await;
    // A space lists the data sources it owns: folders. The connectors live in the system
    // space, which an ordinary key neither lists nor reads.
    let providers: Vec<&Value> = body["data_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["connectorProvider"])
        .collect();
    assert!(!providers.is_empty() && providers.iter().all(|p| p.is_null()));
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("spaces/{}/data_sources", sim::SYSTEM_SPACE_ID),
        None,
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "space_not_found")
    );
}

#[tokio::test]
async fn documents_crud_with_encoded_ids() {
    let (h, c) = start(fast()).await;
    let ds = format!(
        "spaces/{}/data_sources/{}/documents",
        sim::COMPANY_SPACE_ID,
        sim::FAQ_DS_ID
    );
    let doc_id = "notes/2026 café";
    let encoded = urlencoding::encode(doc_id);
    let (status, body) = call(&c, &h, Method::POST, &format!("{ds}/{encoded}"),
        Some(json!({ "text": "Lunch is served at noon.", "source_url": "https://wiki.example.com/lunch" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["document"]["document_id"], doc_id);
    assert_eq!(body["document"]["title"], doc_id);
    assert!(
        body["document"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("title:{doc_id}")))
    );
    assert_eq!(body["data_source"]["sId"], sim::FAQ_DS_ID);
    let (status, body) = call(&c, &h, Method::GET, &format!("{ds}/{encoded}"), None).await;
    assert_eq!(
        (status, body["document"]["text"].as_str()),
        (StatusCode::OK, Some("Lunch is served at noon."))
    );
    let (_, body) = call(&c, &h, Method::GET, &format!("{ds}?limit=1&offset=1"), None).await;
    assert_eq!(
        (
            body["total"].as_u64(),
            body["documents"].as_array().map(Vec::len)
        ),
        (Some(3), Some(1))
    );
    let (status, body) = call(&c, &h, Method::DELETE, &format!("{ds}/{encoded}"), None).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({ "document": { "document_id": doc_id } })
        )
    );
    let (status, body) = call(&c, &h, Method::GET, &format!("{ds}/{encoded}"), None).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "data_source_error")
    );
    assert_eq!(
        body["error"]["data_source_error"]["code"],
        "document_not_found"
    );

    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &format!("{ds}/x"),
        Some(json!({ "text": "t", "source_url": "not a url" })),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &format!("{ds}/x"),
        Some(json!({ "title": "no text" })),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
    let notion = format!(
        "spaces/{}/data_sources/{}/documents/x",
        sim::COMPANY_SPACE_ID,
        sim::NOTION_DS_ID
    );
    // A connector is not owned by Company Data (only viewed): Dust's document routes answer
    // that it does not exist there, and nothing is written.
    let (status, body) = call(&c, &h, Method::POST, &notion, Some(json!({ "text": "t" }))).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "data_source_not_found")
    );
}

#[tokio::test]
async fn upserts_are_limited_per_minute() {
    let (h, c) = start(SimConfig {
        upsert_limit_per_minute: 2,
        ..fast()
    })
    .await;
    let ds = format!(
        "spaces/{}/data_sources/{}/documents",
        sim::COMPANY_SPACE_ID,
        sim::HANDBOOK_DS_ID
    );
    for i in 0..2 {
        let (status, _) = call(
            &c,
            &h,
            Method::POST,
            &format!("{ds}/d{i}"),
            Some(json!({ "text": "t" })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let resp = c
        .post(url(&h, &format!("{ds}/d3")))
        .bearer_auth(h.api_key())
        .json(&json!({ "text": "t" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().get("retry-after").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_type(&body), "rate_limit_error");
    assert_eq!(
        body["error"]["message"],
        "You have reached the maximum number of 2 upserts per minute."
    );
}

#[tokio::test]
async fn faults_inject_errors_and_drops() {
    let (h, c) = start(fast()).await;
    h.set_faults(Faults {
        error_rate: 1.0,
        retry_after_secs: Some(7),
        seed: Some(1),
        ..Faults::default()
    });
    let resp = c
        .get(url(&h, "exists"))
        .bearer_auth(h.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()["retry-after"], "7");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_type(&body), "service_unavailable");
    // The controls are never faulted.
    let resp = c
        .post(format!("{}/_sim/faults", h.base_url()))
        .json(&json!({ "drop_rate": 1.0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        c.get(url(&h, "exists"))
            .bearer_auth(h.api_key())
            .send()
            .await
            .is_err()
    );
    h.set_faults(Faults::default());
    let (status, _) = call(&c, &h, Method::GET, "exists", None).await;
    assert_eq!(status, StatusCode::OK);
}

/// The fault plan: a scripted rule applies to the requests it matches, as many times as asked,
/// before the random faults; it is set over `/_sim/fault-plan` as well as through the handle.
#[tokio::test]
async fn fault_plan_scripts_precise_faults() {
    let (h, c) = start(fast()).await;
    let rule = json!({"method": "GET", "pathContains": "/exists", "times": 2,
                      "action": {"kind": "status", "status": 429, "retryAfterSecs": 3}});
    let resp = c
        .post(format!("{}/_sim/fault-plan", h.base_url()))
        .json(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..2 {
        let resp = c
            .get(url(&h, "exists"))
            .bearer_auth(h.api_key())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()["retry-after"], "3");
    }
    // Used up: the next request is answered; other routes were never affected.
    let (status, _) = call(&c, &h, Method::GET, "exists", None).await;
    assert_eq!(status, StatusCode::OK);

    h.push_fault(FaultRule::always(FaultAction::Malformed).path("/spaces"));
    let resp = c
        .get(url(&h, "spaces"))
        .bearer_auth(h.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.json::<Value>().await.is_err());
    let resp = c
        .delete(format!("{}/_sim/fault-plan", h.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, _) = call(&c, &h, Method::GET, "spaces", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn request_log_records_without_keys() {
    let (h, c) = start(fast()).await;
    assert!(h.requests().is_empty());
    let body = r#"{"text":"exact  bytes ✓"}"#;
    let path = format!(
        "spaces/{}/data_sources/{}/documents/a%20b",
        sim::COMPANY_SPACE_ID,
        sim::FAQ_DS_ID
    );
    let resp = c
        .post(url(&h, &path))
        .bearer_auth(h.api_key())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let _ = c.get(url(&h, "spaces?kinds=global")).send().await.unwrap();
    let log = h.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[0].method.as_str(), log[0].authorization),
        ("POST", true)
    );
    assert!(log[0].path.ends_with("/documents/a%20b"));
    assert_eq!(&log[0].body[..], body.as_bytes());
    assert_eq!(
        (log[1].query.as_deref(), log[1].authorization),
        (Some("kinds=global"), false)
    );
    let served: Value = c
        .get(format!("{}/_sim/requests", h.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served[0]["body"], body);
    assert!(!served.to_string().contains(h.api_key()));
    h.shutdown().await;
}

#[tokio::test]
async fn hanging_requests_end_at_shutdown_and_banner_names_the_env() {
    let config = fast();
    let banner = sim::banner("127.0.0.1:18080".parse().unwrap(), &config);
    assert!(banner.contains("DUST_BASE_URL=http://127.0.0.1:18080"));
    assert!(banner.contains(&format!("DUST_WORKSPACE_ID={}", config.workspace_id)));
    assert!(banner.contains(&format!("DUST_API_KEY={}", config.api_key)));
    assert!(!format!("{config:?}").contains(&config.api_key));

    let (h, c) = start(SimConfig {
        hang_rate: 1.0,
        fault_seed: Some(3),
        ..config
    })
    .await;
    let hung = c
        .get(url(&h, "exists"))
        .bearer_auth(h.api_key())
        .timeout(std::time::Duration::from_millis(200))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
    tokio::time::timeout(std::time::Duration::from_secs(5), h.shutdown())
        .await
        .expect("shutdown does not wait for hanging requests");
}

// --- issue 16: views, tools that pause or fail, vectors ------------------------------------

/// The `document_id`s of a search answer, in order.
fn document_ids(found: &Value) -> Vec<&str> {
    found["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["document_id"].as_str().unwrap())
        .collect()
}

/// Connectors live in the system space; a space sees them through views, and a view search
/// never returns a document outside the view's `parentsIn`.
#[tokio::test]
async fn views_reach_connectors_only_within_their_parents() {
    let (h, c) = start(fast()).await;
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("spaces/{}/data_source_views", sim::COMPANY_SPACE_ID),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let views = body["dataSourceViews"].as_array().unwrap();
    let notion = views
        .iter()
        .find(|v| v["sId"] == sim::NOTION_VIEW_ID)
        .unwrap();
    assert_eq!(notion["category"], "managed");
    assert_eq!(notion["kind"], "custom");
    assert_eq!(notion["dataSource"]["sId"], sim::NOTION_DS_ID);
    assert_eq!(notion["dataSource"]["connectorProvider"], "notion");
    let handbook = views
        .iter()
        .find(|v| v["sId"] == sim::HANDBOOK_VIEW_ID)
        .unwrap();
    assert_eq!(
        (
            &handbook["category"],
            &handbook["kind"],
            &handbook["parentsIn"]
        ),
        (&json!("folder"), &json!("default"), &Value::Null)
    );
    let (_, one) = call(
        &c,
        &h,
        Method::GET,
        &format!(
            "spaces/{}/data_source_views/{}",
            sim::COMPANY_SPACE_ID,
            sim::NOTION_VIEW_ID
        ),
        None,
    )
    .await;
    assert_eq!(one["dataSourceView"]["sId"], sim::NOTION_VIEW_ID);

    let search = |space: &str, view: &str, query: &str| {
        format!(
            "spaces/{space}/data_source_views/{view}/search?query={query}&top_k=10&full_text=true"
        )
    };
    // Company Data sees the roadmap and the OKRs, never the board's minutes.
    let (_, found) = call(
        &c,
        &h,
        Method::GET,
        &search(
            sim::COMPANY_SPACE_ID,
            sim::NOTION_VIEW_ID,
            "roadmap+OKRs+board+acquisition",
        ),
        None,
    )
    .await;
    let ids = document_ids(&found);
    assert!(
        ids.contains(&"notion-roadmap") && ids.contains(&"notion-okrs"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"notion-board-minutes"), "{ids:?}");
    let roadmap = found["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["document_id"] == "notion-roadmap")
        .unwrap();
    assert_eq!(
        roadmap["parents"],
        json!(["notion-roadmap", "notion-product"])
    );
    // Engineering's view of the same connector sees only the product pages.
    let (_, found) = call(
        &c,
        &h,
        Method::GET,
        &search(
            sim::ENGINEERING_SPACE_ID,
            sim::NOTION_ENGINEERING_VIEW_ID,
            "roadmap+OKRs",
        ),
        None,
    )
    .await;
    let ids = document_ids(&found);
    assert_eq!(ids, ["notion-roadmap"]);
    // A view of another space, the system space, a connector's data source routes: 404s.
    for (path, kind) in [
        (
            search(sim::ENGINEERING_SPACE_ID, sim::NOTION_VIEW_ID, "x"),
            "data_source_view_not_found",
        ),
        (
            format!("spaces/{}/data_source_views", sim::SYSTEM_SPACE_ID),
            "space_not_found",
        ),
        (
            format!(
                "spaces/{}/data_sources/{}/search?query=x&top_k=1",
                sim::ENGINEERING_SPACE_ID,
                sim::SLACK_DS_ID
            ),
            "data_source_not_found",
        ),
        (
            format!(
                "spaces/{}/data_sources/{}/documents/slack-deploys",
                sim::SYSTEM_SPACE_ID,
                sim::SLACK_DS_ID
            ),
            "space_not_found",
        ),
    ] {
        let (status, body) = call(&c, &h, Method::GET, &path, None).await;
        assert_eq!(
            (status, error_type(&body)),
            (StatusCode::NOT_FOUND, kind),
            "{path}"
        );
    }
}

/// Every event of one agent message, read until its terminal event (or the connection's end).
async fn events_of(c: &Client, h: &SimHandle, c_id: &str, m_id: &str) -> Vec<Value> {
    let (frames, _) = read_stream(c, h, c_id, m_id, None).await;
    frames.into_iter().map(|f| f["data"].clone()).collect()
}

/// The first action the runs of conversation `c_id` are blocked on, once there is one.
async fn wait_blocked(c: &Client, h: &SimHandle, c_id: &str) -> Value {
    let path = format!("assistant/conversations/{c_id}/actions/blocked");
    for _ in 0..200 {
        let (_, body) = call(c, h, Method::GET, &path, None).await;
        if let Some(action) = body["blockedActions"].as_array().unwrap().first() {
            return action.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no action of {c_id} got blocked")
}

/// `tool_error` is terminal: the message is failed with the tool's error, and the stream ends
/// there.
#[tokio::test]
async fn a_tool_error_ends_the_message() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "report", sim::TOOL_ERROR_AGENT_ID, true).await;
    let m = agent_message(&created);
    assert_eq!(m["status"], "failed");
    assert_eq!(m["error"]["code"], "tool_error");
    let c_id = created["conversation"]["sId"].as_str().unwrap();
    let events = events_of(&c, &h, c_id, m["sId"].as_str().unwrap()).await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["tool_call_started", "tool_params", "tool_error"]);
}

/// A tool that needs approval pauses the run until `validate-action`; `skipToolsValidation` is
/// per message (a follow-up without it pauses again); `always_approved` is remembered.
#[tokio::test]
async fn approvals_pause_the_run_until_validated() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "Hello CEO", sim::APPROVAL_AGENT_ID, false).await;
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();
    let m_id = agent_message(&created)["sId"].as_str().unwrap().to_owned();
    let blocked_path = format!("assistant/conversations/{c_id}/actions/blocked");
    let blocked = wait_blocked(&c, &h, &c_id).await;
    assert_eq!(
        blocked["status"], "blocked_validation_required",
        "{blocked}"
    );
    assert_eq!(blocked["metadata"]["toolName"], "send_email");
    assert_eq!(blocked["inputs"]["body"], "Hello CEO");
    let action_id = blocked["actionId"].as_str().unwrap();
    // The run is paused: nothing after the approval request.
    let (_, conversation) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}"),
        None,
    )
    .await;
    assert_eq!(
        conversation["conversation"]["content"][1][0]["status"],
        "created"
    );

    let validate = format!("assistant/conversations/{c_id}/messages/{m_id}/validate-action");
    for bad in [
        json!({"actionId": action_id, "approved": true}),
        json!({"actionId": action_id}),
    ] {
        let (status, body) = call(&c, &h, Method::POST, &validate, Some(bad)).await;
        assert_eq!(
            (status, error_type(&body)),
            (StatusCode::BAD_REQUEST, "invalid_request_error")
        );
    }
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &validate,
        Some(json!({"actionId": "act_other", "approved": "approved"})),
    )
    .await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::NOT_FOUND, "action_not_found")
    );
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &validate,
        Some(json!({"actionId": action_id, "approved": "rejected"})),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::OK, &json!({"success": true})));
    let events = events_of(&c, &h, &c_id, &m_id).await;
    let last = events.last().unwrap();
    assert_eq!(last["type"], "agent_message_success");
    assert_eq!(
        last["message"]["content"],
        "I did not send the email: the action was rejected."
    );
    assert!(events.iter().any(|e| e["type"] == "tool_approve_execution"
        && e["actionId"] == action_id
        && e["stake"] == "high"));
    let (_, body) = call(&c, &h, Method::GET, &blocked_path, None).await;
    assert_eq!(body["blockedActions"], json!([]));

    // A follow-up posted with skipToolsValidation runs the tool unasked; one without pauses.
    let post = format!("assistant/conversations/{c_id}/messages");
    let mut skipping = message("again", sim::APPROVAL_AGENT_ID);
    skipping["skipToolsValidation"] = json!(true);
    skipping["blocking"] = json!(true);
    let (_, posted) = call(&c, &h, Method::POST, &post, Some(skipping)).await;
    assert_eq!(
        posted["agentMessages"][0]["content"],
        "I sent your message to ceo@example.com."
    );
    let mut asking = message("and again", sim::APPROVAL_AGENT_ID);
    asking["blocking"] = json!(false);
    let (_, posted) = call(&c, &h, Method::POST, &post, Some(asking)).await;
    let m2 = posted["agentMessages"][0]["sId"]
        .as_str()
        .unwrap()
        .to_owned();
    let action = wait_blocked(&c, &h, &c_id).await["actionId"].clone();
    let validate = format!("assistant/conversations/{c_id}/messages/{m2}/validate-action");
    let (status, _) = call(
        &c,
        &h,
        Method::POST,
        &validate,
        Some(json!({"actionId": action, "approved": "always_approved"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = events_of(&c, &h, &c_id, &m2).await;
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "I sent your message to ceo@example.com."
    );
    // Always approved: the next run does not ask.
    let mut next = message("once more", sim::APPROVAL_AGENT_ID);
    next["blocking"] = json!(true);
    let (_, posted) = call(&c, &h, Method::POST, &post, Some(next)).await;
    assert_eq!(posted["agentMessages"][0]["status"], "succeeded");
}

/// A question pauses the run until `answer-question`; a missing personal connection pauses it
/// whatever `skipToolsValidation` says.
#[tokio::test]
async fn questions_and_sign_ins_pause_the_run() {
    let (h, c) = start(fast()).await;
    let created = create(&c, &h, "book a room", sim::QUESTION_AGENT_ID, false).await;
    let c_id = created["conversation"]["sId"].as_str().unwrap().to_owned();
    let m_id = agent_message(&created)["sId"].as_str().unwrap().to_owned();
    let blocked = wait_blocked(&c, &h, &c_id).await;
    assert_eq!(blocked["status"], "blocked_user_answer_required");
    assert_eq!(blocked["question"]["options"][1]["label"], "Berlin");
    let action_id = blocked["actionId"].clone();
    // A question is not approved: answered only through answer-question.
    let (status, _) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/messages/{m_id}/validate-action"),
        Some(json!({"actionId": action_id, "approved": "approved"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/messages/{m_id}/answer-question"),
        Some(json!({"actionId": action_id, "answer": {"selectedOptions": [1]}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = events_of(&c, &h, &c_id, &m_id).await;
    assert_eq!(
        events.last().unwrap()["message"]["content"],
        "I booked a meeting room in Berlin."
    );

    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        "assistant/conversations",
        Some(json!({"message": message("files", sim::PERSONAL_AUTH_AGENT_ID), "skipToolsValidation": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let c_id = body["conversation"]["sId"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_blocked(&c, &h, &c_id).await["status"],
        "blocked_authentication_required"
    );
}

/// Without `light_document_output` an upsert answers with every chunk's embedding vector (about
/// 15 times the text); with it, the light document. Ids with spaces and dots are Dust's own.
#[tokio::test]
async fn upserts_answer_vectors_unless_light() {
    let (h, c) = start(fast()).await;
    let text = "The quarterly report. ".repeat(500);
    let doc = |id: &str| {
        format!(
            "spaces/{}/data_sources/{}/documents/{}",
            sim::COMPANY_SPACE_ID,
            sim::HANDBOOK_DS_ID,
            urlencoding::encode(id)
        )
    };
    let resp = c
        .post(url(&h, &doc("Q3 report.pdf")))
        .bearer_auth(h.api_key())
        .json(&json!({"text": text}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let raw = resp.bytes().await.unwrap();
    assert!(
        raw.len() > 10 * text.len(),
        "{} bytes for {} of text",
        raw.len(),
        text.len()
    );
    let body: Value = serde_json::from_slice(&raw).unwrap();
    let chunks = body["document"]["chunks"].as_array().unwrap();
    assert_eq!(chunks[0]["vector"].as_array().unwrap().len(), 1536);
    assert_eq!(body["document"]["document_id"], "Q3 report.pdf");
    let (status, light) = call(
        &c,
        &h,
        Method::POST,
        &doc("Q3 report.pdf"),
        Some(json!({"text": text, "light_document_output": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(light["document"]["text_size"], text.len());
    assert!(light["document"].get("chunks").is_none(), "{light}");
}

/// The real client against the simulator: a run paused on an approval is listed, approved
/// through `validate-action`, and goes on to its answer; a question is answered likewise.
#[tokio::test]
async fn the_client_answers_paused_runs() {
    use futures::StreamExt;
    use mcp_dust_server::dust::{
        ActionDecision, AgentEventKind, CreateConversation, DustApi, DustCredentials,
        HttpDustClient, Mention, MessageContext, PostMessage, QuestionAnswer, follow_agent_message,
    };
    let (h, _) = start(fast()).await;
    let dust: std::sync::Arc<dyn DustApi> =
        std::sync::Arc::new(HttpDustClient::with_base_url(&h.base_url()).unwrap());
    let creds = DustCredentials::new(h.workspace_id(), h.api_key());
    for (agent, expected) in [
        (
            sim::APPROVAL_AGENT_ID,
            "I sent your message to ceo@example.com.",
        ),
        (sim::QUESTION_AGENT_ID, "I booked a meeting room in Berlin."),
    ] {
        let created = dust
            .create_conversation(
                &creds,
                &CreateConversation {
                    title: None,
                    visibility: None,
                    message: PostMessage {
                        content: "please".into(),
                        mentions: vec![Mention {
                            configuration_id: agent.into(),
                        }],
                        context: MessageContext {
                            username: "tester".into(),
                            timezone: "UTC".into(),
                            full_name: None,
                            email: None,
                            profile_picture_url: None,
                            origin: Some("api".into()),
                        },
                        blocking: None,
                        skip_tools_validation: None,
                    },
                    blocking: Some(false),
                    skip_tools_validation: Some(false),
                    content_fragments: Vec::new(),
                },
            )
            .await
            .unwrap();
        let c_id = created.conversation.s_id.clone();
        let m_id = created
            .conversation
            .agent_reply_to(&created.message.as_ref().unwrap().s_id)
            .unwrap()
            .s_id
            .clone();
        let mut events =
            follow_agent_message(dust.clone(), creds.clone(), c_id.clone(), m_id.clone());
        // The run pauses: the blocking event, then nothing until the decision.
        let blocked = loop {
            match events.next().await.unwrap().unwrap().kind {
                AgentEventKind::Blocked(b) => break b,
                _ => continue,
            }
        };
        let pending = dust.blocked_actions(&creds, &c_id).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].action_id, blocked.action_id);
        if agent == sim::APPROVAL_AGENT_ID {
            dust.validate_action(
                &creds,
                &c_id,
                &m_id,
                &blocked.action_id,
                ActionDecision::Approved,
            )
            .await
            .unwrap();
        } else {
            let answer = QuestionAnswer {
                selected_options: vec![1],
                custom_response: None,
            };
            dust.answer_question(&creds, &c_id, &m_id, &blocked.action_id, &answer)
                .await
                .unwrap();
        }
        let answer = loop {
            match events.next().await.unwrap().unwrap().kind {
                AgentEventKind::Success { message } => break message.content,
                _ => continue,
            }
        };
        assert_eq!(answer.as_deref(), Some(expected));
        assert!(
            dust.blocked_actions(&creds, &c_id)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

fn node_ids(found: &Value) -> Vec<&str> {
    found["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["internalId"].as_str().unwrap())
        .collect()
}

/// `POST /search` (node search): titles matched through the views of the listed spaces, each
/// node with its data source and the views that reach it; Dust's schema and space checks.
#[tokio::test]
async fn node_search_finds_titles_through_the_views_of_the_listed_spaces() {
    let (h, c) = start(fast()).await;
    let both = [sim::COMPANY_SPACE_ID, sim::ENGINEERING_SPACE_ID];
    let search = |query: &str, view_type: &str, spaces: &[&str], limit: u32| {
        json!({
            "query": query, "viewType": view_type, "spaceIds": spaces,
            "includeDataSources": false, "limit": limit,
        })
    };
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(search("deploy", "all", &both, 10)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(node_ids(&body), ["slack-deploys", "runbooks/deploy.md"]);
    let runbook = &body["nodes"][1];
    assert_eq!(runbook["type"], "document");
    assert_eq!(runbook["title"], "Deploy Runbook");
    assert_eq!(runbook["dataSource"]["sId"], sim::RUNBOOKS_DS_ID);
    assert_eq!(runbook["dataSourceViews"][0]["sId"], sim::RUNBOOKS_VIEW_ID);
    assert_eq!(body["resultsCount"], 2);

    // A connector page carries every view that reaches it, and only from the listed spaces.
    let (_, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(search("roadmap", "document", &both, 10)),
    )
    .await;
    assert_eq!(node_ids(&body), ["notion-roadmap"]);
    assert_eq!(
        body["nodes"][0]["dataSourceViews"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let (_, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(search(
            "roadmap",
            "document",
            &[sim::ENGINEERING_SPACE_ID],
            10,
        )),
    )
    .await;
    assert_eq!(
        body["nodes"][0]["dataSourceViews"][0]["sId"],
        sim::NOTION_ENGINEERING_VIEW_ID
    );
    assert_eq!(
        body["nodes"][0]["dataSourceViews"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // No view selects the board's pages; no space listed, nothing searched; no tables here.
    for (query, view_type, spaces) in [
        ("board", "all", &both[..]),
        ("deploy", "all", &[][..]),
        ("deploy", "table", &both[..]),
    ] {
        let (status, body) = call(
            &c,
            &h,
            Method::POST,
            "search",
            Some(search(query, view_type, spaces, 10)),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(node_ids(&body).is_empty(), "{query} {view_type}: {body}");
    }

    // The body's limit cuts the page; resultsCount counts every match.
    let (_, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(search("polic", "all", &both, 1)),
    )
    .await;
    assert_eq!(node_ids(&body), ["expenses"]);
    assert_eq!(body["resultsCount"], 2);

    // Data sources themselves, as folder nodes, when asked.
    let mut with_sources = search("handbook", "all", &both, 10);
    with_sources["includeDataSources"] = json!(true);
    let (_, body) = call(&c, &h, Method::POST, "search", Some(with_sources)).await;
    assert_eq!(body["nodes"][0]["type"], "folder");
    assert_eq!(body["nodes"][0]["dataSource"]["sId"], sim::HANDBOOK_DS_ID);

    // The system space is not the key's: 404, as for any unknown space.
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(search("deploy", "all", &[sim::SYSTEM_SPACE_ID], 10)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_type(&body), "space_not_found");
    assert_eq!(body["error"]["message"], "Invalid space ids.");

    // Every member of the SDK's schema but the query is required, without a prefix.
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        "search",
        Some(json!({ "query": "deploy" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_type(&body), "invalid_request_error");
    assert_eq!(
        body["error"]["message"],
        "Validation error: Required at \"viewType\""
    );
    let mut bad = search("deploy", "documents", &both, 10);
    let (status, body) = call(&c, &h, Method::POST, "search", Some(bad.clone())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("received 'documents'"),
        "{body}"
    );
    bad["viewType"] = json!("all");
    bad.as_object_mut().unwrap().remove("limit");
    let (_, body) = call(&c, &h, Method::POST, "search", Some(bad)).await;
    assert_eq!(
        body["error"]["message"],
        "Validation error: Required at \"limit\""
    );
}

/// Tables of a folder, as Dust answers them: the seeded Offices table with its inferred schema,
/// rows paged with `offset`, `limit` and `total`, an upsert by `row_id` that answers the short
/// table with the new schema, a row delete (`{success: true}`), and Dust's error shapes:
/// `table_not_found`, an invalid body, a connector's system space out of reach.
#[tokio::test]
async fn tables_of_a_folder_list_page_upsert_and_delete_rows() {
    let (h, c) = start(fast()).await;
    let ds = format!(
        "spaces/{}/data_sources/{}",
        sim::COMPANY_SPACE_ID,
        sim::HANDBOOK_DS_ID
    );
    let (status, body) = call(&c, &h, Method::GET, &format!("{ds}/tables"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let table = &body["tables"][0];
    assert_eq!(table["table_id"], "offices");
    assert_eq!(table["title"], "Offices");
    assert_eq!(
        table["schema"],
        json!([
            {"name": "city", "value_type": "text", "possible_values": null},
            {"name": "opened", "value_type": "datetime", "possible_values": null},
            {"name": "remote", "value_type": "bool", "possible_values": null},
            {"name": "seats", "value_type": "int", "possible_values": null},
        ])
    );
    let (status, body) = call(&c, &h, Method::GET, &format!("{ds}/tables/offices"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["table"]["name"], "offices");
    let (status, body) = call(&c, &h, Method::GET, &format!("{ds}/tables/nope"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_type(&body), "table_not_found");

    let rows = format!("{ds}/tables/offices/rows");
    let (status, body) = call(
        &c,
        &h,
        Method::GET,
        &format!("{rows}?limit=2&offset=1"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (
            body["offset"].clone(),
            body["limit"].clone(),
            body["total"].clone()
        ),
        (json!(1), json!(2), json!(3))
    );
    assert_eq!(body["rows"][0]["row_id"], "new-york");
    assert_eq!(body["rows"][1]["value"]["opened"]["type"], "datetime");
    let (status, body) = call(&c, &h, Method::GET, &format!("{rows}?limit=x"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &rows,
        Some(json!({"rows": [{"row_id": "rome", "value": {"city": "Rome", "seats": 7.5}}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["table"]["table_id"], "offices");
    assert!(
        body["table"]["schema"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "seats", "value_type": "float", "possible_values": null})),
        "{body}"
    );
    for bad in [
        json!({}),
        json!({"rows": [{"row_id": 1, "value": {}}]}),
        json!({"rows": [{"row_id": "a", "value": {"x": [1]}}]}),
        json!({"rows": [{"row_id": "a", "value": {"x": {"type": "date", "epoch": 1}}}]}),
    ] {
        let (status, body) = call(&c, &h, Method::POST, &rows, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(error_type(&body), "invalid_request_error");
    }
    let (status, body) = call(&c, &h, Method::DELETE, &format!("{rows}/rome"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));
    let (status, body) = call(&c, &h, Method::DELETE, &format!("{rows}/rome"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_type(&body), "table_not_found");

    let notion = format!(
        "spaces/{}/data_sources/{}/tables/t/rows",
        sim::SYSTEM_SPACE_ID,
        sim::NOTION_DS_ID
    );
    let (status, body) = call(
        &c,
        &h,
        Method::POST,
        &notion,
        Some(json!({"rows": [{"row_id": "a", "value": {"x": 1}}]})),
    )
    .await;
    // A connector lives in the system space, which an ordinary key cannot reach at all.
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_type(&body), "space_not_found");
}

// ---------------------------------------------------------------------------------------------
// Files and content fragments

/// A small but valid PDF (one empty page), as a client would upload it.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n\
trailer<</Root 1 0 R>>\n%%EOF\n";

const BOUNDARY: &str = "sim-test-boundary-7MA4YWxkTrZu0gW";

/// One part of a multipart body: `(field name, file name, part type, bytes)`.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

/// A `multipart/form-data` body, written out by hand so that each refusal can be provoked.
fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file_name, content_type, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(file_name) = file_name {
            disposition.push_str(&format!("; filename=\"{file_name}\""));
        }
        body.extend_from_slice(format!("{disposition}\r\n").as_bytes());
        if let Some(content_type) = content_type {
            body.extend_from_slice(format!("Content-Type: {content_type}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `POST {upload_url}` with `body` as `multipart/form-data`.
async fn upload(c: &Client, h: &SimHandle, upload_url: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let resp = c
        .post(upload_url)
        .bearer_auth(h.api_key())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Creates a `conversation` file of `size` declared bytes: its `File`.
async fn new_file(c: &Client, h: &SimHandle, content_type: &str, name: &str, size: usize) -> Value {
    let (status, body) = call(
        c,
        h,
        Method::POST,
        "files",
        Some(json!({
            "contentType": content_type, "fileName": name, "fileSize": size,
            "useCase": "conversation",
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["file"].clone()
}

/// Creates a file and uploads `bytes` as its `file` part: its `fil_` id.
async fn uploaded(
    c: &Client,
    h: &SimHandle,
    content_type: &str,
    name: &str,
    bytes: &[u8],
) -> String {
    let file = new_file(c, h, content_type, name, bytes.len()).await;
    let body = multipart(&[("file", Some(name), Some(content_type), bytes)]);
    let (status, done) = upload(c, h, file["uploadUrl"].as_str().unwrap(), body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    file["sId"].as_str().unwrap().to_owned()
}

/// An empty conversation: its id.
async fn empty_conversation(c: &Client, h: &SimHandle) -> String {
    let (status, body) = call(
        c,
        h,
        Method::POST,
        "assistant/conversations",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["conversation"]["sId"].as_str().unwrap().to_owned()
}

fn fragment_path(c_id: &str) -> String {
    format!("assistant/conversations/{c_id}/content_fragments")
}

/// The types of a conversation's slots, in rank order (last version of each).
fn slot_types(conversation: &Value) -> Vec<String> {
    conversation["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|versions| versions[0]["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn uploads_and_fragments_reach_the_agents_answer() {
    let (h, c) = start(fast()).await;
    let c_id = empty_conversation(&c, &h).await;

    // Step 1: the file is created, and uploaded where the answer says.
    let file = new_file(&c, &h, "application/pdf", "report.pdf", PDF.len()).await;
    let file_id = file["sId"].as_str().unwrap().to_owned();
    assert!(file_id.starts_with("fil_"), "{file}");
    assert_eq!(file["id"], file["sId"]);
    assert_eq!(file["status"], "created");
    assert_eq!(file["useCase"], "conversation");
    assert_eq!(file["fileSize"], PDF.len());
    assert_eq!(file["uploadUrl"], url(&h, &format!("files/{file_id}")));
    // Step 2: the bytes, as the SDK sends them.
    let body = multipart(&[("file", Some("report.pdf"), Some("application/pdf"), PDF)]);
    let (status, done) = upload(&c, &h, file["uploadUrl"].as_str().unwrap(), body).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["file"]["status"], "ready");
    assert_eq!(done["file"]["sId"], file_id.as_str());
    assert!(done["file"].get("uploadUrl").is_none(), "{done}");
    let served = c
        .get(url(&h, &format!("files/{file_id}?action=view")))
        .bearer_auth(h.api_key())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.headers()["content-type"], "application/pdf");
    assert_eq!(served.bytes().await.unwrap().as_ref(), PDF);

    // The uploaded file, then an inline note, as fragments of the conversation.
    let (status, pdf) = call(
        &c,
        &h,
        Method::POST,
        &fragment_path(&c_id),
        Some(json!({ "title": "report.pdf", "fileId": file_id })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pdf}");
    let pdf = &pdf["contentFragment"];
    for (key, want) in [
        ("type", json!("content_fragment")),
        ("contentFragmentType", json!("file")),
        ("contentFragmentVersion", json!("latest")),
        ("expiredReason", Value::Null),
        ("fileId", json!(file_id)),
        ("title", json!("report.pdf")),
        ("contentType", json!("application/pdf")),
        ("textBytes", json!(PDF.len())),
        ("generatedTables", json!([])),
        ("snippet", Value::Null),
        ("visibility", json!("visible")),
        ("rank", json!(0)),
    ] {
        assert_eq!(pdf[key], want, "{key}: {pdf}");
    }
    assert!(
        pdf["textUrl"]
            .as_str()
            .is_some_and(|u| u.contains(&file_id))
    );
    let note = "first line of the note\nsecond line, never quoted\n";
    let (status, inline) = call(
        &c,
        &h,
        Method::POST,
        &fragment_path(&c_id),
        Some(json!({
            "title": "note.txt", "content": note, "contentType": "text/plain",
            "context": { "username": "tester", "email": "Tester@Example.com" },
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{inline}");
    let inline = &inline["contentFragment"];
    assert!(
        inline["fileId"]
            .as_str()
            .is_some_and(|id| id.starts_with("fil_"))
    );
    assert_eq!(inline["textBytes"], note.len());
    assert_eq!(inline["context"]["email"], "tester@example.com");
    assert_eq!(inline["context"]["fullName"], Value::Null);
    assert_eq!(h.file_count(), 2);

    let (status, posted) = call(
        &c,
        &h,
        Method::POST,
        &format!("assistant/conversations/{c_id}/messages"),
        Some(json!({
            "content": "What did I attach?",
            "mentions": [{ "configurationId": sim::ECHO_AGENT_ID }],
            "context": { "username": "tester", "timezone": "UTC" },
            "blocking": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let expected = format!(
        "You said: What did I attach?\n\nAttachments I read: \"report.pdf\" (application/pdf, {} \
         bytes); \"note.txt\" (text/plain, {} bytes: \"first line of the note\").",
        PDF.len(),
        note.len()
    );
    assert_eq!(posted["agentMessages"][0]["content"], expected.as_str());
    let (_, read) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}"),
        None,
    )
    .await;
    assert_eq!(
        slot_types(&read["conversation"]),
        [
            "content_fragment",
            "content_fragment",
            "user_message",
            "agent_message"
        ]
    );
    assert_eq!(read["conversation"]["content"][1][0]["rank"], 1);

    // On create: the fragments come first, in order, the legacy one last; every agent kind
    // names them (here the knowledge agent), a long first line cut at 80 characters.
    let long_line = "x".repeat(100);
    let (status, created) = call(
        &c,
        &h,
        Method::POST,
        "assistant/conversations",
        Some(json!({
            "message": message("How many PTO days do I get?", sim::HANDBOOK_AGENT_ID),
            "contentFragments": [
                { "title": "report.pdf", "fileId": file_id },
                { "title": "long.md", "content": long_line, "contentType": "text/markdown" },
            ],
            "contentFragment": {
                "title": "PTO Policy", "nodeId": "pto-policy",
                "nodeDataSourceViewId": sim::HANDBOOK_VIEW_ID,
            },
            "blocking": true,
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    assert_eq!(
        slot_types(&created["conversation"]),
        [
            "content_fragment",
            "content_fragment",
            "content_fragment",
            "user_message",
            "agent_message"
        ]
    );
    let node = &created["contentFragment"];
    assert_eq!(node["contentFragmentType"], "content_node", "{node}");
    assert_eq!(node["nodeId"], "pto-policy");
    assert_eq!(node["contentNodeData"]["spaceName"], "Company Data");
    let answer = agent_message(&created)["content"].as_str().unwrap();
    let cut = format!(
        "\"long.md\" (text/markdown, 100 bytes: \"{}…\")",
        "x".repeat(80)
    );
    assert!(
        answer.starts_with("According to \"PTO Policy\""),
        "{answer}"
    );
    let attachments = format!(
        "\n\nAttachments I read: \"report.pdf\" (application/pdf, {} bytes); {cut}; \"PTO \
         Policy\" (",
        PDF.len()
    );
    assert!(answer.contains(&attachments), "{answer}");
    assert!(
        answer.ends_with("\").") && answer.contains("bytes: \"Full-time employees accrue 25 days"),
        "{answer}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn file_creation_and_upload_refusals_follow_dust() {
    let (h, c) = start(fast()).await;
    const MIB: usize = 1024 * 1024;
    let file = |content_type: &str, size: usize, use_case: &str| json!({ "contentType": content_type, "fileName": "f", "fileSize": size, "useCase": use_case });
    let cases: Vec<(Value, &str, Option<&str>)> = vec![
        (
            json!({ "fileName": "f", "fileSize": 1, "useCase": "conversation" }),
            "invalid_request_error",
            None,
        ),
        (
            json!({ "contentType": "text/plain", "fileName": "f", "fileSize": "1", "useCase": "conversation" }),
            "invalid_request_error",
            None,
        ),
        (
            json!({ "contentType": "text/plain", "fileName": "n".repeat(4097), "fileSize": 1, "useCase": "conversation" }),
            "invalid_request_error",
            None,
        ),
        (
            file("text/plain", 1, "avatar"),
            "invalid_request_error",
            None,
        ),
        (
            file("text/plain", 1, "upsert_table"),
            "invalid_request_error",
            Some("The file use case is not supported by the API."),
        ),
        (
            file("application/zip", 1, "conversation"),
            "file_type_not_supported",
            None,
        ),
        (
            file("font/woff", 1, "conversation"),
            "file_type_not_supported",
            None,
        ),
        (
            file("application/octet-stream", 1, "conversation"),
            "file_type_not_supported",
            None,
        ),
        (
            file("image/png", 5 * MIB + 1, "conversation"),
            "file_too_large",
            None,
        ),
        (
            file("application/pdf", 50 * MIB + 1, "conversation"),
            "file_too_large",
            None,
        ),
        (
            file("text/csv", 50 * MIB + 1, "conversation"),
            "file_too_large",
            None,
        ),
        (
            file("audio/mpeg", 100 * MIB + 1, "conversation"),
            "file_too_large",
            None,
        ),
    ];
    for (body, kind, wanted) in cases {
        let (status, answer) = call(&c, &h, Method::POST, "files", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(error_type(&answer), kind, "{body} → {answer}");
        if let Some(wanted) = wanted {
            assert_eq!(answer["error"]["message"], wanted);
        }
    }
    assert_eq!(h.file_count(), 0, "a refused creation stored a file");
    // The limits themselves are allowed.
    for (content_type, size) in [("image/png", 5 * MIB), ("audio/mpeg", 60 * MIB)] {
        new_file(&c, &h, content_type, "limit", size).await;
    }

    // Upload refusals: each leaves the file failed, with no byte kept.
    let upload_cases: Vec<(Vec<u8>, Option<&str>, &str)> = vec![
        (
            multipart(&[("document", Some("a.txt"), Some("text/plain"), b"0123456789")]),
            None,
            "file_type_not_supported",
        ),
        (
            multipart(&[("file", None, Some("text/plain"), b"0123456789")]),
            None,
            "file_type_not_supported",
        ),
        (
            multipart(&[("file", Some("a.png"), Some("image/png"), b"0123456789")]),
            None,
            "file_type_not_supported",
        ),
        (
            multipart(&[("file", Some("a.txt"), Some("text/plain"), b"0123456789+")]),
            None,
            "file_too_large",
        ),
        (
            multipart(&[("file", Some("a.txt"), Some("text/plain"), b"")]),
            None,
            "file_is_empty",
        ),
        (
            br#"{"file": "0123456789"}"#.to_vec(),
            Some("application/json"),
            "file_type_not_supported",
        ),
    ];
    for (body, content_type, kind) in upload_cases {
        let file = new_file(&c, &h, "text/plain", "a.txt", 10).await;
        let upload_url = file["uploadUrl"].as_str().unwrap();
        let (status, answer) = match content_type {
            None => upload(&c, &h, upload_url, body).await,
            Some(t) => {
                let resp = c
                    .post(upload_url)
                    .bearer_auth(h.api_key())
                    .header("content-type", t)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (resp.status(), resp.json().await.unwrap())
            }
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(error_type(&answer), kind, "{answer}");
        // The file failed: a correct upload cannot revive it, and it has nothing to serve.
        let retry = multipart(&[("file", Some("a.txt"), None, b"0123456789")]);
        let (status, answer) = upload(&c, &h, upload_url, retry).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(
            answer["error"]["message"],
            "The file has already been uploaded or the upload has failed."
        );
        let (status, _) = call(
            &c,
            &h,
            Method::GET,
            &format!("files/{}", file["sId"].as_str().unwrap()),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // A file is uploaded once; the upload needs the key; unknown files are 404.
    let id = uploaded(&c, &h, "text/plain", "once.txt", b"once").await;
    let again = multipart(&[("file", Some("once.txt"), Some("text/plain"), b"once")]);
    let (status, answer) = upload(&c, &h, &url(&h, &format!("files/{id}")), again).await;
    assert_eq!(
        (status, error_type(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_request_error")
    );
    let pending = new_file(&c, &h, "text/plain", "p.txt", 4).await;
    let anonymous = c
        .post(pending["uploadUrl"].as_str().unwrap())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&[("file", Some("p.txt"), None, b"abcd")]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let body = multipart(&[("file", Some("p.txt"), None, b"abcd")]);
    let (status, answer) = upload(&c, &h, &url(&h, "files/fil_n0SuchF1le"), body).await;
    assert_eq!(
        (status, error_type(&answer)),
        (StatusCode::NOT_FOUND, "file_not_found")
    );

    // Delete: 204, then gone.
    let count = h.file_count();
    let (status, _) = call(&c, &h, Method::DELETE, &format!("files/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(h.file_count(), count - 1);
    let (status, answer) = call(&c, &h, Method::DELETE, &format!("files/{id}"), None).await;
    assert_eq!(
        (status, error_type(&answer)),
        (StatusCode::NOT_FOUND, "file_not_found")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn file_creation_is_limited_to_forty_a_minute() {
    let (h, c) = start(fast()).await;
    for _ in 0..40 {
        new_file(&c, &h, "text/plain", "n.txt", 1).await;
    }
    let body = json!({ "contentType": "text/plain", "fileName": "n.txt", "fileSize": 1, "useCase": "conversation" });
    let (status, answer) = call(&c, &h, Method::POST, "files", Some(body)).await;
    assert_eq!(
        (status, error_type(&answer)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
    );
    assert_eq!(h.file_count(), 40);
    h.shutdown().await;
}

#[tokio::test]
async fn fragment_refusals_follow_dust_and_store_nothing() {
    let (h, c) = start(fast()).await;
    let c_id = empty_conversation(&c, &h).await;
    let pending = new_file(&c, &h, "text/plain", "p.txt", 4).await;
    let pending_id = pending["sId"].as_str().unwrap();
    let inline = |content: String, content_type: &str| json!({ "title": "t", "content": content, "contentType": content_type });
    let too_long = "a".repeat(512 * 1024 + 1);
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "content": "x", "contentType": "text/plain" }),
            "Invalid request body",
        ),
        (
            json!({ "title": "t", "content": "x", "contentType": "text/plain", "fileId": pending_id }),
            "Invalid request body",
        ),
        (
            json!({ "title": "t", "nodeId": "pto-policy" }),
            "Invalid request body",
        ),
        (
            inline(String::new(), "text/plain"),
            "The content must be a non-empty string of less than 512kB.",
        ),
        (
            inline(too_long, "text/plain"),
            "The content must be a non-empty string of less than 512kB.",
        ),
        (
            inline("x".into(), "image/png"),
            "Unsupported content fragment type.",
        ),
        (
            inline("x".into(), "application/zip"),
            "Unsupported content fragment type.",
        ),
        (
            json!({ "title": "t", "fileId": "fil_n0SuchF1le" }),
            "File not found.",
        ),
        (
            json!({ "title": "t", "fileId": pending_id }),
            "The file is not ready. Please re-upload the file to proceed.",
        ),
        (
            json!({ "title": "t", "nodeId": "pto-policy", "nodeDataSourceViewId": "dsv_n0SuchV1ew" }),
            "Unknown data source view for content fragment input",
        ),
        (
            json!({ "title": "t", "nodeId": "notion-board-minutes", "nodeDataSourceViewId": sim::NOTION_VIEW_ID }),
            "Content node not found for content fragment node id: notion-board-minutes",
        ),
    ];
    for (body, wanted) in &cases {
        let (status, answer) = call(
            &c,
            &h,
            Method::POST,
            &fragment_path(&c_id),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(error_type(&answer), "invalid_request_error", "{answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(wanted), "{body} → {answer}");
    }
    // The largest inline content is accepted (512 Ki UTF-16 units).
    let (status, answer) = call(
        &c,
        &h,
        Method::POST,
        &fragment_path(&c_id),
        Some(inline("é".repeat(512 * 1024), "text/markdown")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let (_, read) = call(
        &c,
        &h,
        Method::GET,
        &format!("assistant/conversations/{c_id}"),
        None,
    )
    .await;
    assert_eq!(slot_types(&read["conversation"]), ["content_fragment"]);
    assert_eq!(h.file_count(), 2, "the pending file and the inline one");

    // Unknown conversation.
    let (status, answer) = call(
        &c,
        &h,
        Method::POST,
        &fragment_path("n0SuchC0nv"),
        Some(inline("x".into(), "text/plain")),
    )
    .await;
    assert_eq!(
        (status, error_type(&answer)),
        (StatusCode::NOT_FOUND, "conversation_not_found")
    );

    // On create, one bad fragment refuses the call: no conversation, no file.
    let conversations = h.conversation_count();
    for (fragments, wanted) in [
        (
            json!([inline("fine".into(), "text/plain"), { "title": "t", "fileId": pending_id }]),
            "The file is not ready.",
        ),
        (
            json!([inline("x".into(), "image/png")]),
            "Invalid content fragment type.",
        ),
        (json!({ "title": "t" }), "Invalid request body"),
    ] {
        let (status, answer) = call(
            &c,
            &h,
            Method::POST,
            "assistant/conversations",
            Some(json!({ "message": message("hi", sim::ECHO_AGENT_ID), "contentFragments": fragments })),
        )
        .await;
        assert_eq!(
            (status, error_type(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_request_error"),
            "{answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(wanted),
            "{answer}"
        );
    }
    assert_eq!(h.conversation_count(), conversations);
    assert_eq!(h.file_count(), 2);
    h.shutdown().await;
}
