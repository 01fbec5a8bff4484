//! `HttpDustClient` against wiremock (and, where a connection must break or stall, a raw TCP
//! peer): the exact outbound requests, retries, redirects, timeouts, SSE parsing, and that the
//! key never leaks into an error, a `Debug` output or a log line.

use std::{
    io::Write,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::StreamExt;
use mcp_dust_server::dust::{
    ActionDecision, AgentEvent, AgentEventKind, BlockKind, ClientOptions, CreateConversation,
    DustApi, DustCredentials, DustError, DustErrorKind, HttpDustClient, Mention, MessageContext,
    NodeSearch, NodeViewType, PostMessage, QuestionAnswer, SearchQuery, TableRow, UpsertDocument,
    UpsertTableRows, follow_agent_message,
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use url::Url;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{any, body_json, header, method, path, query_param, query_param_is_missing},
};

const WS: &str = "ws1";
/// A canary: it must never appear in any error, `Debug` output or log line.
const KEY: &str = "sk-canary0123456789abcdef01234567";

fn creds() -> DustCredentials {
    DustCredentials::new(WS, KEY)
}

fn options(base: &str) -> ClientOptions {
    ClientOptions {
        base_url: Url::parse(base).unwrap(),
        retry_base_delay: Duration::from_millis(10),
        ..ClientOptions::default()
    }
}

fn client(server: &MockServer) -> HttpDustClient {
    HttpDustClient::new(options(&server.uri())).unwrap()
}

fn api(route: &str) -> String {
    format!("/api/v1/w/{WS}{route}")
}

fn agent(s_id: &str) -> Value {
    json!({"sId": s_id, "name": "Helper", "description": "helps", "status": "active",
           "scope": "visible", "instructions": null, "extra": {"ignored": true}})
}

fn document(id: &str) -> Value {
    json!({"document_id": id, "title": "FAQ", "tags": ["title:FAQ"], "text": "hello",
           "chunks": [{"text": "hello", "offset": 0, "score": 0.8}]})
}

fn envelope(error_type: &str, message: &str) -> Value {
    json!({"error": {"type": error_type, "message": message}})
}

fn message() -> PostMessage {
    PostMessage {
        content: "hi".into(),
        mentions: vec![Mention {
            configuration_id: "dust".into(),
        }],
        context: MessageContext {
            username: "mcp".into(),
            timezone: "UTC".into(),
            full_name: None,
            email: None,
            profile_picture_url: None,
            origin: Some("api".into()),
        },
        blocking: Some(true),
        skip_tools_validation: None,
    }
}

async fn requests(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.unwrap()
}

fn assert_no_key(error: &DustError) {
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(KEY), "key leaked: {shown}");
    assert!(!shown.contains("canary"), "key leaked: {shown}");
}

// --- requests --------------------------------------------------------------------------------

#[tokio::test]
async fn list_agents_sends_bearer_key_accept_and_user_agent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/assistant/agent_configurations")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"agentConfigurations": [agent("dust"), agent("a1")]})),
        )
        .expect(1)
        .mount(&server)
        .await;

    let agents = client(&server).list_agents(&creds()).await.unwrap();
    assert_eq!(agents.len(), 2);
    assert_eq!(agents[1].s_id, "a1");
    let request = &requests(&server).await[0];
    let user_agent = request.headers["user-agent"].to_str().unwrap();
    assert!(user_agent.starts_with("mcp-dust-server/"), "{user_agent}");
}

#[tokio::test]
async fn ids_are_percent_encoded_as_single_segments() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"document": document("x")})))
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"document": {"document_id": "x"}})),
        )
        .mount(&server)
        .await;
    let client = client(&server);

    client
        .get_document(&creds(), "vlt_1", "dts_1", "a/b c?d#e")
        .await
        .unwrap();
    client
        .delete_document(&creds(), "vlt/2", "dts_1", "../x")
        .await
        .unwrap();
    client
        .get_agent(&creds(), "../../assistant/conversations")
        .await
        .unwrap_err(); // the answer is a document, not an agent: only the URL matters here

    let received = requests(&server).await;
    assert_eq!(
        received[0].url.path(),
        api("/spaces/vlt_1/data_sources/dts_1/documents/a%2Fb%20c%3Fd%23e")
    );
    assert_eq!(received[0].url.query(), None);
    assert_eq!(received[0].url.fragment(), None);
    assert_eq!(
        received[1].url.path(),
        api("/spaces/vlt%2F2/data_sources/dts_1/documents/..%2Fx")
    );
    assert_eq!(
        received[2].url.path(),
        api("/assistant/agent_configurations/..%2F..%2Fassistant%2Fconversations")
    );

    // "." and ".." cannot be encoded as a segment: refused before any request.
    let error = client
        .get_document(&creds(), "vlt_1", "dts_1", "..")
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::InvalidRequest);
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/proxy/dust/api/v1/w/{WS}/spaces")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"spaces": [{"sId": "vlt_1", "name": "Company", "kind": "global"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = HttpDustClient::with_base_url(&format!("{}/proxy/dust/", server.uri())).unwrap();
    let spaces = client.list_spaces(&creds()).await.unwrap();
    assert_eq!(spaces[0].s_id, "vlt_1");
}

#[tokio::test]
async fn post_bodies_are_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/assistant/conversations/c1/cancel")))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({"messageIds": ["m1", "m2"]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("/spaces/vlt_1/data_sources/dts_1/documents/faq")))
        .and(body_json(
            json!({"text": "hello", "title": "FAQ", "tags": ["lang:en"], "light_document_output": true}),
        ))
        // A light answer without document_id: the client fills it in.
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"document": {"hash": "h", "text_size": 5, "chunk_count": 1}, "data_source": {}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    client
        .cancel_messages(&creds(), "c1", &["m1".into(), "m2".into()])
        .await
        .unwrap();
    let upserted = client
        .upsert_document(
            &creds(),
            "vlt_1",
            "dts_1",
            "faq",
            &UpsertDocument {
                text: "hello".into(),
                title: Some("FAQ".into()),
                tags: vec!["lang:en".into()],
                light_document_output: true,
                ..UpsertDocument::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(upserted.document_id, "faq");
    assert_eq!(upserted.text_size, Some(5));
}

#[tokio::test]
async fn conversations_round_trip() {
    let server = MockServer::start().await;
    let conversation = json!({"sId": "c1", "created": 1, "title": null, "content": [
        [{"type": "user_message", "sId": "u1", "content": "hi"}],
        [{"type": "agent_message", "sId": "m1", "status": "succeeded", "content": "hello",
          "parentMessageId": "u1"}]
    ]});
    Mock::given(method("POST"))
        .and(path(api("/assistant/conversations")))
        .and(body_json(json!({"title": "t", "message": {
            "content": "hi", "mentions": [{"configurationId": "dust"}],
            "context": {"username": "mcp", "timezone": "UTC", "origin": "api"}, "blocking": true}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"conversation": conversation, "message": {"sId": "u1", "content": "hi"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/assistant/conversations/c1")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"conversation": conversation})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api("/assistant/conversations/c1/messages")))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"message": {"sId": "u2"}, "agentMessages": [{"sId": "m2", "status": "created"}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let created = client
        .create_conversation(
            &creds(),
            &CreateConversation {
                title: Some("t".into()),
                visibility: None,
                message: message(),
                blocking: None,
                skip_tools_validation: None,
                content_fragments: Vec::new(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        created
            .conversation
            .agent_reply_to("u1")
            .unwrap()
            .content
            .as_deref(),
        Some("hello")
    );
    let fetched = client.get_conversation(&creds(), "c1").await.unwrap();
    assert_eq!(fetched.s_id, "c1");
    let posted = client
        .post_message(&creds(), "c1", &message())
        .await
        .unwrap();
    assert_eq!(posted.agent_messages[0].s_id, "m2");
}

// --- retries ---------------------------------------------------------------------------------

#[tokio::test]
async fn get_is_retried_on_503_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"spaces": []})))
        .mount(&server)
        .await;
    let spaces = client(&server).list_spaces(&creds()).await.unwrap();
    assert!(spaces.is_empty());
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(envelope("rate_limit_error", "slow down")),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"spaces": []})))
        .mount(&server)
        .await;
    let started = Instant::now();
    client(&server).list_spaces(&creds()).await.unwrap();
    // The base backoff is 10 ms here: only Retry-After explains a one-second wait.
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(requests(&server).await.len(), 2);
}

#[tokio::test]
async fn retry_after_beyond_the_cap_is_returned_not_waited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "120")
                .set_body_json(envelope("rate_limit_error", "slow down")),
        )
        .mount(&server)
        .await;
    let error = client(&server).list_spaces(&creds()).await.unwrap_err();
    assert_eq!(error.kind, DustErrorKind::RateLimited);
    assert_eq!(error.retry_after, Some(Duration::from_secs(120)));
    assert_eq!(requests(&server).await.len(), 1);
}

#[tokio::test]
async fn retries_stop_at_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;
    let client = HttpDustClient::new(ClientOptions {
        max_retries: 2,
        ..options(&server.uri())
    })
    .unwrap();
    let error = client
        .delete_document(&creds(), "vlt_1", "dts_1", "d")
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Upstream);
    assert_eq!(error.status, Some(502));
    assert_eq!(requests(&server).await.len(), 3);
}

#[tokio::test]
async fn posts_are_never_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "0"))
        .mount(&server)
        .await;
    let client = client(&server);
    let request = CreateConversation {
        title: None,
        visibility: None,
        message: message(),
        blocking: None,
        skip_tools_validation: None,
        content_fragments: Vec::new(),
    };
    let error = client
        .create_conversation(&creds(), &request)
        .await
        .unwrap_err();
    assert_eq!(error.status, Some(503));
    assert_eq!(requests(&server).await.len(), 1);

    client
        .post_message(&creds(), "c1", &message())
        .await
        .unwrap_err();
    client
        .cancel_messages(&creds(), "c1", &["m1".into()])
        .await
        .unwrap_err();
    client
        .upsert_document(&creds(), "v", "d", "x", &UpsertDocument::default())
        .await
        .unwrap_err();
    assert_eq!(requests(&server).await.len(), 4);
}

#[tokio::test]
async fn no_retry_on_400_401_500() {
    for (status, kind) in [
        (400, DustErrorKind::InvalidRequest),
        (401, DustErrorKind::Unauthorized),
        (500, DustErrorKind::Upstream),
    ] {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(status).set_body_json(envelope("some_error", "nope")),
            )
            .mount(&server)
            .await;
        let error = client(&server).list_agents(&creds()).await.unwrap_err();
        assert_eq!(error.kind, kind, "{status}");
        assert_eq!(requests(&server).await.len(), 1, "{status}");
    }
}

// --- errors ----------------------------------------------------------------------------------

#[tokio::test]
async fn unauthorized_envelope_keeps_dusts_type_and_message() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope(
            "invalid_api_key_error",
            "The API key provided is invalid or disabled.",
        )))
        .mount(&server)
        .await;
    let error = client(&server).list_spaces(&creds()).await.unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Unauthorized);
    assert_eq!(error.status, Some(401));
    assert_eq!(error.error_type.as_deref(), Some("invalid_api_key_error"));
    assert_eq!(
        error.to_string(),
        "The API key provided is invalid or disabled."
    );
    assert_no_key(&error);
}

#[tokio::test]
async fn data_source_error_document_not_found_is_not_found() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "type": "data_source_error",
            "message": "There was an error retrieving the data source document.",
            "data_source_error": {"code": "data_source_document_not_found",
                                  "message": "Document not found"}}})))
        .mount(&server)
        .await;
    let error = client(&server)
        .get_document(&creds(), "vlt_1", "dts_1", "missing")
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::NotFound);
    assert_eq!(error.error_type.as_deref(), Some("data_source_error"));
}

#[tokio::test]
async fn undecodable_success_is_a_protocol_error() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .mount(&server)
        .await;
    let error = client(&server).list_agents(&creds()).await.unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Protocol);
    assert!(error.message.contains("list agents"), "{error}");
}

#[tokio::test]
async fn call_timeout() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"spaces": []}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let client = HttpDustClient::new(ClientOptions {
        timeout: Duration::from_millis(200),
        ..options(&server.uri())
    })
    .unwrap();
    let started = Instant::now();
    let error = client.list_spaces(&creds()).await.unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(error.message.contains("list spaces"), "{error}");
}

#[tokio::test]
async fn connection_refused_is_a_network_error_naming_the_origin() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let error = HttpDustClient::with_base_url(&base)
        .unwrap()
        .list_agents(&creds())
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Network);
    assert!(
        error
            .message
            .starts_with(&format!("could not reach Dust at {base} to list agents: ")),
        "{error}"
    );
    assert_no_key(&error);
}

#[tokio::test]
async fn oversized_answer_is_refused() {
    let base = raw_server(vec![
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 40000000\r\n\r\n{"
            .to_vec(),
    ])
    .await;
    let error = HttpDustClient::with_base_url(&base)
        .unwrap()
        .list_agents(&creds())
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Protocol);
    assert!(error.message.contains("larger than 32 MiB"), "{error}");
}

// --- check_key -------------------------------------------------------------------------------

#[tokio::test]
async fn check_key_uses_exists() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/exists")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"exists": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(api("/spaces")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"spaces": []})))
        .expect(0)
        .mount(&server)
        .await;
    client(&server).check_key(&creds()).await.unwrap();
}

#[tokio::test]
async fn check_key_falls_back_to_spaces_on_a_bare_404() {
    let server = MockServer::start().await;
    Mock::given(path(api("/exists")))
        .respond_with(ResponseTemplate::new(404).set_body_string("Not Found"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/spaces")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"spaces": []})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).check_key(&creds()).await.unwrap();
}

#[tokio::test]
async fn check_key_does_not_fall_back_on_workspace_not_found() {
    let server = MockServer::start().await;
    Mock::given(path(api("/exists")))
        .respond_with(ResponseTemplate::new(404).set_body_json(envelope(
            "workspace_not_found",
            "The workspace was not found.",
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(api("/spaces")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"spaces": []})))
        .expect(0)
        .mount(&server)
        .await;
    let error = client(&server).check_key(&creds()).await.unwrap_err();
    assert_eq!(error.kind, DustErrorKind::NotFound);
    assert_eq!(error.error_type.as_deref(), Some("workspace_not_found"));
}

// --- search ----------------------------------------------------------------------------------

fn query_pairs(request: &wiremock::Request) -> Vec<(String, String)> {
    request.url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn search_query_parameters() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/spaces/vlt_1/data_sources/dts_1/search")))
        .and(query_param_is_missing("full_text"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"documents": [document("faq")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/spaces/vlt_1/data_sources/dts_1/search")))
        .and(query_param("full_text", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"documents": []})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let mut query = SearchQuery {
        query: "pto & leave?".into(),
        top_k: 5,
        full_text: false,
        tags_in: vec!["lang:en".into(), "team:hr".into()],
        tags_not: vec!["draft".into()],
        timestamp_gt: Some(1000),
        timestamp_lt: None,
    };
    let found = client
        .search_data_source(&creds(), "vlt_1", "dts_1", &query)
        .await
        .unwrap();
    assert_eq!(found[0].chunks[0].score, Some(0.8));
    query.full_text = true;
    client
        .search_data_source(&creds(), "vlt_1", "dts_1", &query)
        .await
        .unwrap();

    let received = requests(&server).await;
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        query_pairs(&received[0]),
        vec![
            pair("query", "pto & leave?"),
            pair("top_k", "5"),
            pair("tags_in", "lang:en"),
            pair("tags_in", "team:hr"),
            pair("tags_not", "draft"),
            pair("timestamp_gt", "1000"),
        ]
    );
    assert_eq!(query_pairs(&received[1])[2], pair("full_text", "true"));
}

/// Issue 16: connector content is listed and searched through data source views.
#[tokio::test]
async fn views_are_listed_and_searched_on_their_own_routes() {
    let server = MockServer::start().await;
    let data_source = json!({"id": 13, "sId": "dts_n1", "name": "notion", "description": null,
        "createdAt": 1, "assistantDefaultSelected": true, "dustAPIProjectId": "1",
        "dustAPIDataSourceId": "dts_n1", "connectorId": "7", "connectorProvider": "notion"});
    Mock::given(method("GET"))
        .and(path(api("/spaces/vlt_1/data_source_views")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"dataSourceViews": [{
            "id": 23, "sId": "dsv_1", "category": "managed", "kind": "custom",
            "parentsIn": ["page-a"], "spaceId": "vlt_1", "createdAt": 1, "updatedAt": 1,
            "dataSource": data_source, "editedByUser": null}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api("/spaces/vlt_1/data_source_views/dsv_1/search")))
        .and(query_param_is_missing("full_text"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"documents": [document("page-a")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let views = client
        .list_data_source_views(&creds(), "vlt_1")
        .await
        .unwrap();
    assert_eq!(views[0].s_id, "dsv_1");
    assert_eq!(views[0].category, "managed");
    assert_eq!(
        views[0].parents_in.as_deref(),
        Some(&["page-a".to_owned()][..])
    );
    assert_eq!(
        views[0].data_source.connector_provider.as_deref(),
        Some("notion")
    );
    let query = SearchQuery {
        query: "roadmap é".into(),
        top_k: 3,
        full_text: false,
        tags_in: vec!["lang:en".into()],
        tags_not: Vec::new(),
        timestamp_gt: None,
        timestamp_lt: Some(2000),
    };
    let found = client
        .search_data_source_view(&creds(), "vlt_1", "dsv_1", &query)
        .await
        .unwrap();
    assert_eq!(found[0].document_id, "page-a");
    let received = requests(&server).await;
    let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    assert_eq!(
        query_pairs(&received[1]),
        vec![
            pair("query", "roadmap é"),
            pair("top_k", "3"),
            pair("tags_in", "lang:en"),
            pair("timestamp_lt", "2000"),
        ]
    );
}

/// The decisions on a paused run go out as Dust's routes take them: `approved` a string (not the
/// boolean Dust's OpenAPI shows), the answer's members camelCased, each POST sent once.
#[tokio::test]
async fn blocked_actions_and_decisions_have_dusts_shapes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(api("/assistant/conversations/c1/actions/blocked")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"blockedActions": [{
            "actionId": "act_1", "messageId": "m1", "conversationId": "c1",
            "status": "blocked_validation_required", "inputs": {"to": "ceo@example.com"},
            "stake": "high", "metadata": {"toolName": "send_email", "mcpServerName": "gmail"}}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api(
            "/assistant/conversations/c1/messages/m1/validate-action",
        )))
        .and(body_json(
            json!({"actionId": "act_1", "approved": "always_approved"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(api(
            "/assistant/conversations/c1/messages/m1/answer-question",
        )))
        .and(body_json(json!({"actionId": "act_2",
            "answer": {"selectedOptions": [1], "customResponse": "Berlin, please"}})))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let pending = client.blocked_actions(&creds(), "c1").await.unwrap();
    assert_eq!(pending[0].action_id, "act_1");
    assert_eq!(pending[0].stake.as_deref(), Some("high"));
    assert_eq!(pending[0].metadata["toolName"], "send_email");
    client
        .validate_action(
            &creds(),
            "c1",
            "m1",
            "act_1",
            ActionDecision::AlwaysApproved,
        )
        .await
        .unwrap();
    let answer = QuestionAnswer {
        selected_options: vec![1],
        custom_response: Some("Berlin, please".into()),
    };
    // A decision is never retried (a second one would answer another pause).
    let error = client
        .answer_question(&creds(), "c1", "m1", "act_2", &answer)
        .await
        .unwrap_err();
    assert_eq!(error.status, Some(503));
    assert_no_key(&error);
}

/// Issue 16: `skipToolsValidation` is per message in Dust: the client sends what the message
/// says, at the top level of a follow-up's body.
#[tokio::test]
async fn a_follow_up_carries_its_own_skip_tools_validation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/assistant/conversations/c1/messages")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"message": {"sId": "u1", "content": "hi"}, "agentMessages": []}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let follow_up = PostMessage {
        skip_tools_validation: Some(true),
        ..message()
    };
    client(&server)
        .post_message(&creds(), "c1", &follow_up)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&requests(&server).await[0].body).unwrap();
    assert_eq!(body["skipToolsValidation"], true);
    assert_eq!(body["content"], "hi");
}

/// Issue 16: `tool_error` ends the message (Dust's server marks it failed), so the follower
/// stops there instead of reconnecting until its timeout; a blocking event is decoded with its
/// tool and server.
#[tokio::test]
async fn tool_error_is_terminal_and_blocking_events_are_decoded() {
    let server = MockServer::start().await;
    let approval = json!({"type": "tool_approve_execution", "created": 1, "configurationId": "a",
        "messageId": "m1", "conversationId": "c1", "actionId": "act_1", "stake": "high",
        "inputs": {"to": "ceo@example.com"},
        "metadata": {"toolName": "send_email", "mcpServerName": "gmail",
                     "mcpServerDisplayName": "Gmail"}});
    let tool_error = json!({"type": "tool_error", "created": 2, "configurationId": "a",
        "messageId": "m1", "error": {"code": "tool_error", "message": "HTTP 503", "metadata": null}});
    Mock::given(path(api(EVENTS)))
        .respond_with(sse(format!(
            "event: dust-handshake\ndata: {{}}\n\n{}{}",
            frame("1-0", &approval),
            frame("2-0", &tool_error)
        )))
        .expect(1)
        .mount(&server)
        .await;
    let api: Arc<dyn DustApi> = Arc::new(client(&server));
    let events: Vec<AgentEvent> =
        collect(follow_agent_message(api, creds(), "c1".into(), "m1".into()))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    let AgentEventKind::Blocked(blocked) = &events[0].kind else {
        panic!("{:?}", events[0].kind)
    };
    assert_eq!(
        (
            blocked.kind,
            blocked.tool_name.as_str(),
            blocked.server_name.as_str()
        ),
        (BlockKind::Approval, "send_email", "Gmail")
    );
    assert_eq!(blocked.action_id, "act_1");
    assert!(
        matches!(&events[1].kind, AgentEventKind::ToolError { error } if error.message == "HTTP 503")
    );
    assert!(events[1].kind.is_terminal());
}

#[tokio::test]
async fn list_documents_and_agent_search_parameters() {
    let server = MockServer::start().await;
    Mock::given(path(api("/spaces/vlt_1/data_sources/dts_1/documents")))
        .and(query_param("limit", "10"))
        .and(query_param("offset", "20"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"documents": [document("a")], "total": 21})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(api("/assistant/agent_configurations/search")))
        .and(query_param("q", "sup port"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"agentConfigurations": [agent("a1")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let page = client
        .list_documents(&creds(), "vlt_1", "dts_1", 10, 20)
        .await
        .unwrap();
    assert_eq!(page.total, 21);
    let agents = client.search_agents(&creds(), "sup port").await.unwrap();
    assert_eq!(agents[0].s_id, "a1");
}

// --- event streams ---------------------------------------------------------------------------

fn frame(event_id: &str, data: &Value) -> String {
    format!("data: {}\n\n", json!({"eventId": event_id, "data": data}))
}

fn tokens(text: &str) -> Value {
    json!({"type": "generation_tokens", "text": text, "classification": "tokens"})
}

fn success(content: &str) -> Value {
    json!({"type": "agent_message_success", "message":
        {"sId": "m1", "status": "succeeded", "content": content}})
}

fn sse(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

const EVENTS: &str = "/assistant/conversations/c1/messages/m1/events";

async fn collect(stream: mcp_dust_server::dust::EventStream) -> Vec<Result<AgentEvent, DustError>> {
    stream.collect().await
}

#[tokio::test]
async fn sse_frames_are_parsed() {
    let server = MockServer::start().await;
    // Handshake, CRLF line endings, a JSON object split over two `data:` lines, a comment,
    // the `done` sentinel.
    let body = format!(
        "event: dust-handshake\r\ndata: {{}}\r\n\r\n{}: ping\r\n\r\ndata: {{\"eventId\":\"2-0\",\r\ndata: \"data\":{{\"type\":\"tool_call_started\",\"toolName\":\"search\"}}}}\r\n\r\n{}data: done\n\n",
        frame("1-0", &tokens("Hel")).replace('\n', "\r\n"),
        frame("3-0", &success("Hello")),
    );
    Mock::given(method("GET"))
        .and(path(api(EVENTS)))
        .and(header("accept", "text/event-stream"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(query_param("lastEventId", "0-1"))
        .respond_with(sse(body))
        .expect(1)
        .mount(&server)
        .await;
    let stream = client(&server)
        .agent_message_events(&creds(), "c1", "m1", Some("0-1"))
        .await
        .unwrap();
    let events: Vec<AgentEvent> = collect(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["1-0", "2-0", "3-0"]);
    assert_eq!(
        events[0].kind,
        AgentEventKind::GenerationTokens {
            text: "Hel".into(),
            classification: "tokens".into()
        }
    );
    assert_eq!(
        events[1].kind,
        AgentEventKind::ToolCallStarted {
            tool_name: "search".into()
        }
    );
    assert!(events[2].kind.is_terminal());
    let AgentEventKind::Success { message } = &events[2].kind else {
        panic!("expected success, got {:?}", events[2].kind);
    };
    assert_eq!(message.content.as_deref(), Some("Hello"));
}

#[tokio::test]
async fn same_origin_307_is_followed_with_the_key() {
    let server = MockServer::start().await;
    let sse_path = format!("/api/sse/v1/w/{WS}{EVENTS}");
    Mock::given(path(api(EVENTS)))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}{sse_path}", server.uri()).as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path(sse_path.as_str()))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("accept", "text/event-stream"))
        .respond_with(sse(frame("1-0", &success("done!"))))
        .expect(1)
        .mount(&server)
        .await;
    let stream = client(&server)
        .agent_message_events(&creds(), "c1", "m1", None)
        .await
        .unwrap();
    let events = collect(stream).await;
    assert_eq!(events.len(), 1);
    assert!(events[0].as_ref().unwrap().kind.is_terminal());
}

#[tokio::test]
async fn redirect_to_another_origin_is_not_followed() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(sse(frame("1-0", &success("stolen"))))
        .expect(0)
        .mount(&elsewhere)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(307).insert_header(
            "location",
            format!("{}/api/sse/x", elsewhere.uri()).as_str(),
        ))
        .mount(&server)
        .await;
    let client = client(&server);
    let error = client
        .agent_message_events(&creds(), "c1", "m1", None)
        .await
        .err()
        .expect("a cross-origin redirect must fail");
    assert_eq!(error.kind, DustErrorKind::Protocol);
    assert_eq!(error.status, Some(307));
    assert!(error.message.contains(&elsewhere.uri()), "{error}");
    // Ordinary calls too.
    client.list_agents(&creds()).await.unwrap_err();
    assert!(requests(&elsewhere).await.is_empty());
}

#[tokio::test]
async fn broken_stream_yields_one_error_and_ends() {
    let body = format!(
        "event: dust-handshake\ndata: {{}}\n\n{}",
        frame("1-0", &tokens("a"))
    );
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n",
        body.len() + 1000
    );
    let base = raw_server(vec![format!("{head}{body}").into_bytes()]).await;
    let stream = HttpDustClient::with_base_url(&base)
        .unwrap()
        .agent_message_events(&creds(), "c1", "m1", None)
        .await
        .unwrap();
    let items = collect(stream).await;
    assert_eq!(items.len(), 2, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().event_id, "1-0");
    let error = items[1].as_ref().unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Network);
    assert_no_key(error);
}

#[tokio::test]
async fn silent_stream_times_out() {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    let handshake = "event: dust-handshake\ndata: {}\n\n";
    let chunk = format!("{head}{:x}\r\n{handshake}\r\n", handshake.len());
    let base = raw_server_holding(vec![chunk.into_bytes()], Duration::from_secs(5)).await;
    let client = HttpDustClient::new(ClientOptions {
        stream_idle_timeout: Duration::from_millis(300),
        ..options(&base)
    })
    .unwrap();
    let started = Instant::now();
    let stream = client
        .agent_message_events(&creds(), "c1", "m1", None)
        .await
        .unwrap();
    let items = collect(stream).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().unwrap_err().kind, DustErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn follow_agent_message_resumes_with_last_event_id_without_duplicates() {
    let server = MockServer::start().await;
    Mock::given(path(api(EVENTS)))
        .and(query_param_is_missing("lastEventId"))
        .respond_with(sse(format!(
            "event: dust-handshake\ndata: {{}}\n\n{}{}",
            frame("1-0", &tokens("Hel")),
            frame("2-0", &tokens("lo"))
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Dust replays from the given id; a replay of that event itself must not be delivered twice.
    Mock::given(path(api(EVENTS)))
        .and(query_param("lastEventId", "2-0"))
        .respond_with(sse(format!(
            "event: dust-handshake\ndata: {{}}\n\n{}{}{}data: done\n\n",
            frame("2-0", &tokens("lo")),
            frame("3-0", &tokens("!")),
            frame("4-0", &success("Hello!"))
        )))
        .expect(1)
        .mount(&server)
        .await;
    let api: Arc<dyn DustApi> = Arc::new(client(&server));
    let events = follow_agent_message(api, creds(), "c1".into(), "m1".into());
    let ids: Vec<String> = collect(events)
        .await
        .into_iter()
        .map(|e| e.unwrap().event_id)
        .collect();
    assert_eq!(ids, ["1-0", "2-0", "3-0", "4-0"]);
}

#[tokio::test]
async fn follow_agent_message_resumes_after_a_broken_connection() {
    let broken_body = format!(
        "event: dust-handshake\ndata: {{}}\n\n{}",
        frame("1-0", &tokens("Hel"))
    );
    // The declared length is never reached: the connection breaks mid-body.
    let broken = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{broken_body}",
        broken_body.len() + 500
    );
    let resumed_body = format!(
        "event: dust-handshake\ndata: {{}}\n\n{}{}data: done\n\n",
        frame("1-0", &tokens("Hel")),
        frame("2-0", &success("Hello"))
    );
    let resumed = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{resumed_body}",
        resumed_body.len()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = raw_server_recording(
        vec![broken.into_bytes(), resumed.into_bytes()],
        Duration::ZERO,
        seen.clone(),
    )
    .await;
    let dust: Arc<dyn DustApi> = Arc::new(HttpDustClient::new(options(&base)).unwrap());
    let events = follow_agent_message(dust, creds(), "c1".into(), "m1".into());
    let ids: Vec<String> = collect(events)
        .await
        .into_iter()
        .map(|e| e.unwrap().event_id)
        .collect();
    assert_eq!(ids, ["1-0", "2-0"]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            format!("GET {} HTTP/1.1", api(EVENTS)),
            format!("GET {}?lastEventId=1-0 HTTP/1.1", api(EVENTS)),
        ]
    );
}

// --- secrets ---------------------------------------------------------------------------------

/// A `MakeWriter` collecting every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn the_key_never_leaks() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(logs.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(path(api("/spaces")))
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope(
            "invalid_api_key_error",
            "The API key provided is invalid or disabled.",
        )))
        .mount(&server)
        .await;
    Mock::given(path(api("/assistant/agent_configurations")))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(path(api("/exists")))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", elsewhere.uri().as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(path(api("/assistant/conversations/c1")))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    // The timeout only has to be shorter than the 3 s delay; a tighter one turns ordinary calls
    // into timeouts on a loaded machine (seen on 2 busy cores).
    let client = HttpDustClient::new(ClientOptions {
        timeout: Duration::from_millis(1000),
        max_retries: 1,
        ..options(&server.uri())
    })
    .unwrap();

    let mut errors = vec![
        client.list_spaces(&creds()).await.unwrap_err(),
        client.list_agents(&creds()).await.unwrap_err(),
        client.check_key(&creds()).await.unwrap_err(),
        client.get_conversation(&creds(), "c1").await.unwrap_err(),
        client.get_agent(&creds(), "nope").await.unwrap_err(),
    ];
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    errors.push(
        HttpDustClient::with_base_url(&refused)
            .unwrap()
            .list_spaces(&creds())
            .await
            .unwrap_err(),
    );
    let bad_header_key = DustCredentials::new(WS, format!("{KEY}\n"));
    errors.push(client.list_spaces(&bad_header_key).await.unwrap_err());

    let kinds: Vec<DustErrorKind> = errors.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            DustErrorKind::Unauthorized,
            DustErrorKind::Upstream,
            DustErrorKind::Protocol,
            DustErrorKind::Timeout,
            DustErrorKind::NotFound,
            DustErrorKind::Network,
            DustErrorKind::Unauthorized,
        ]
    );
    for error in &errors {
        assert_no_key(error);
    }
    assert!(!format!("{client:?}").contains(KEY));
    assert!(!format!("{:?}", creds()).contains(KEY));

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // The client's debug lines were captured (so the checks below mean something). Which ones
    // varies: tracing caches a callsite's interest process-wide, and a callsite first hit by a
    // parallel test on a thread without this subscriber can be missed here.
    assert!(logs.contains("Dust call"), "no debug line: {logs}");
    assert!(!logs.contains(KEY), "key in logs: {logs}");
    assert!(!logs.contains("canary"), "key in logs: {logs}");
    assert!(requests(&elsewhere).await.is_empty());
}

// --- raw TCP peers ---------------------------------------------------------------------------

/// Answers the n-th connection with `responses[n]` (raw bytes) and closes it.
async fn raw_server(responses: Vec<Vec<u8>>) -> String {
    raw_server_holding(responses, Duration::ZERO).await
}

/// Like [`raw_server`], keeping each connection open for `hold` after writing.
async fn raw_server_holding(responses: Vec<Vec<u8>>, hold: Duration) -> String {
    raw_server_recording(responses, hold, Arc::default()).await
}

/// Like [`raw_server_holding`], recording each request line (`GET /path?query HTTP/1.1`).
async fn raw_server_recording(
    responses: Vec<Vec<u8>>,
    hold: Duration,
    seen: Arc<Mutex<Vec<String>>>,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for response in responses {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                seen.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or_default().to_owned());
                let _ = socket.write_all(&response).await;
                let _ = socket.flush().await;
                tokio::time::sleep(hold).await;
            });
        }
    });
    base
}

/// `POST /search`: the SDK's full text body (every member Dust's schema requires, the query as
/// given), and the nodes read with their data source and views.
#[tokio::test]
async fn search_nodes_posts_the_sdk_body_and_reads_nodes() {
    let server = MockServer::start().await;
    let query = "Q3 \u{e9}t\u{e9} \"report\" & co";
    let data_source = json!({"sId": "dts_1", "name": "Notion", "connectorProvider": "notion"});
    Mock::given(method("POST"))
        .and(path(api("/search")))
        .and(body_json(json!({
            "query": query, "viewType": "document", "spaceIds": ["vlt_1", "vlt_2"],
            "includeDataSources": false, "limit": 5,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "nodes": [{
                "internalId": "n1", "title": "Roadmap", "type": "document",
                "mimeType": "text/markdown", "parentInternalId": "p1",
                "parentInternalIds": ["n1", "p1"], "parentTitle": "Product",
                "sourceUrl": "https://notion.so/n1", "lastUpdatedAt": 1,
                "expandable": false, "permission": "read", "newField": {"ignored": true},
                "dataSource": data_source,
                "dataSourceViews": [{"sId": "dsv_1", "spaceId": "vlt_1", "dataSource": data_source}],
            }, {
                "internalId": "n2", "title": "Later", "type": "database_view",
                "dataSource": data_source,
            }],
            "warningCode": null,
            "resultsCount": 7,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let found = client(&server)
        .search_nodes(
            &creds(),
            &NodeSearch {
                query: query.into(),
                view_type: NodeViewType::Document,
                space_ids: vec!["vlt_1".into(), "vlt_2".into()],
                include_data_sources: false,
                limit: 5,
            },
        )
        .await
        .unwrap();
    assert_eq!(found.results_count, Some(7));
    assert_eq!(found.nodes[0].title, "Roadmap");
    assert_eq!(found.nodes[0].data_source_views[0].space_id, "vlt_1");
    assert_eq!(
        found.nodes[1].node_type,
        mcp_dust_server::dust::ContentNodeType::Other
    );
}

/// Tables: ids travel as one encoded path segment each; rows are listed with `limit` and
/// `offset`; an upsert posts exactly `{rows: [{row_id, value}]}` (never `truncate`) and reads
/// the short table answer; a row delete is a DELETE of the row's path.
#[tokio::test]
async fn table_calls_use_dusts_routes_and_bodies() {
    let server = MockServer::start().await;
    let base = "/spaces/vlt_1/data_sources/dts_1/tables";
    let table = json!({"table_id": "q3 sales", "name": "q3_sales", "description": "d",
        "schema": [{"name": "city", "value_type": "text", "possible_values": null}],
        "timestamp": 1, "tags": [], "parents": ["q3 sales"], "mime_type": "text/csv",
        "title": "Q3 sales"});
    Mock::given(method("GET"))
        .and(path(api(base)))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"tables": [table]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api(&format!("{base}/q3%20sales"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"table": table})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(api(&format!("{base}/q3%20sales/rows"))))
        .and(query_param("limit", "5"))
        .and(query_param("offset", "10"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "rows": [{"row_id": "r/1", "value": {"city": "Paris",
                "opened": {"type": "datetime", "epoch": 2}}}],
            "offset": 10, "limit": 5, "total": 11,
        })))
        .expect(1)
        .mount(&server)
        .await;
    let value = json!({"city": "Oslo", "seats": 3, "ok": true, "gone": null,
        "opened": {"type": "datetime", "epoch": 1_700_000_000_000_i64}});
    Mock::given(method("POST"))
        .and(path(api(&format!("{base}/q3%20sales/rows"))))
        .and(body_json(
            json!({"rows": [{"row_id": "r/2", "value": value}]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"table": {
            "name": "q3_sales", "table_id": "q3 sales", "description": "d",
            "schema": [{"name": "city", "value_type": "text"}],
        }})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path(api(&format!("{base}/q3%20sales/rows/r%2F2"))))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server);
    let tables = client
        .list_tables(&creds(), "vlt_1", "dts_1")
        .await
        .unwrap();
    assert_eq!(tables[0].title.as_deref(), Some("Q3 sales"));
    let one = client
        .get_table(&creds(), "vlt_1", "dts_1", "q3 sales")
        .await
        .unwrap();
    assert_eq!(one.schema.unwrap()[0].value_type, "text");
    let page = client
        .list_table_rows(&creds(), "vlt_1", "dts_1", "q3 sales", 5, 10)
        .await
        .unwrap();
    assert_eq!((page.total, page.rows[0].row_id.as_str()), (11, "r/1"));
    let written = client
        .upsert_table_rows(
            &creds(),
            "vlt_1",
            "dts_1",
            "q3 sales",
            &UpsertTableRows {
                rows: vec![TableRow {
                    row_id: "r/2".into(),
                    value: value.as_object().unwrap().clone(),
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(written.name, "q3_sales");
    assert!(written.tags.is_empty());
    client
        .delete_table_row(&creds(), "vlt_1", "dts_1", "q3 sales", "r/2")
        .await
        .unwrap();
}

// --- files and content fragments --------------------------------------------------------------

fn file_answer(server: &MockServer, upload_url: Option<String>) -> Value {
    let upload_url =
        upload_url.unwrap_or_else(|| format!("{}{}", server.uri(), api("/files/fil_1")));
    json!({"file": {"id": "1", "sId": "fil_1", "contentType": "application/pdf",
        "fileName": "Q3 \"report\".pdf", "fileSize": 9, "status": "created",
        "useCase": "conversation", "uploadUrl": upload_url}})
}

#[tokio::test]
async fn a_file_is_created_then_its_bytes_uploaded_as_one_multipart_field() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(api("/files")))
        .and(body_json(
            json!({"contentType": "application/pdf", "fileName": "Q3 \"report\".pdf",
            "fileSize": 9, "useCase": "conversation"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(file_answer(&server, None)))
        .mount(&server)
        .await;
    let mut ready = file_answer(&server, None);
    ready["file"]["status"] = json!("ready");
    Mock::given(method("POST"))
        .and(path(api("/files/fil_1")))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(ready))
        .mount(&server)
        .await;
    let client = client(&server);
    let file = client
        .create_file(
            &creds(),
            &mcp_dust_server::dust::NewFile {
                content_type: "application/pdf".into(),
                file_name: "Q3 \"report\".pdf".into(),
                file_size: 9,
                use_case: "conversation".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(file.status, "created");
    let uploaded = client
        .upload_file(&creds(), &file, b"%PDF-1.4\n")
        .await
        .unwrap();
    assert_eq!(
        (uploaded.s_id.as_str(), uploaded.status.as_str()),
        ("fil_1", "ready")
    );

    let sent = requests(&server).await;
    let upload = &sent[1];
    let content_type = upload
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    let boundary = content_type
        .strip_prefix("multipart/form-data; boundary=")
        .expect("a multipart body");
    let body = String::from_utf8_lossy(&upload.body);
    // One part, field `file`, the name's quote neutralised, the bytes as given.
    assert_eq!(body.matches(&format!("--{boundary}")).count(), 2, "{body}");
    assert!(
        body.contains(
            "Content-Disposition: form-data; name=\"file\"; filename=\"Q3 _report_.pdf\""
        ),
        "{body}"
    );
    assert!(
        body.contains("Content-Type: application/pdf\r\n\r\n%PDF-1.4\n\r\n"),
        "{body}"
    );
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
}

#[tokio::test]
async fn an_upload_url_on_another_origin_never_gets_the_key() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&elsewhere)
        .await;
    let answer = file_answer(&server, Some(format!("{}/steal", elsewhere.uri())));
    let file: mcp_dust_server::dust::DustFile =
        serde_json::from_value(answer["file"].clone()).unwrap();
    let error = client(&server)
        .upload_file(&creds(), &file, b"data")
        .await
        .unwrap_err();
    assert_eq!(error.kind, DustErrorKind::Protocol);
    assert!(
        error.message.contains("uploadUrl points to"),
        "{}",
        error.message
    );
    assert!(requests(&elsewhere).await.is_empty());
    assert!(requests(&server).await.is_empty());
}

#[tokio::test]
async fn content_fragments_go_to_the_conversation_and_in_a_new_one() {
    use mcp_dust_server::dust::NewContentFragment;
    let server = MockServer::start().await;
    let fragment = json!({"contentFragment": {"type": "content_fragment", "id": 3, "sId": "cf_1",
        "created": 1, "title": "notes.txt", "contentType": "text/plain", "fileId": "fil_2",
        "textBytes": 5, "contentFragmentType": "file"}});
    Mock::given(method("POST"))
        .and(path(api("/assistant/conversations/c1/content_fragments")))
        .and(body_json(
            json!({"title": "notes.txt", "content": "hello", "contentType": "text/plain"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fragment))
        .mount(&server)
        .await;
    let client = client(&server);
    let posted = client
        .post_content_fragment(
            &creds(),
            "c1",
            &NewContentFragment::Text {
                title: "notes.txt".into(),
                content: "hello".into(),
                content_type: "text/plain".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (posted.s_id.as_str(), posted.file_id.as_deref()),
        ("cf_1", Some("fil_2"))
    );

    // In a new conversation they ride along, in order, before the message.
    let request = CreateConversation {
        title: None,
        visibility: None,
        message: message(),
        blocking: None,
        skip_tools_validation: None,
        content_fragments: vec![NewContentFragment::File {
            title: "report.pdf".into(),
            file_id: "fil_1".into(),
        }],
    };
    assert_eq!(
        serde_json::to_value(&request).unwrap()["contentFragments"],
        json!([{"title": "report.pdf", "fileId": "fil_1"}])
    );
}
