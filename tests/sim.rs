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
    let providers: Vec<&Value> = body["data_sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["connectorProvider"])
        .collect();
    assert!(providers.contains(&&Value::Null) && providers.contains(&&json!("notion")));
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
    let (status, body) = call(&c, &h, Method::POST, &notion, Some(json!({ "text": "t" }))).await;
    assert_eq!(
        (status, error_type(&body)),
        (StatusCode::FORBIDDEN, "data_source_auth_error")
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
