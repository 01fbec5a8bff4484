//! Attachments to a question (`ask_agent`'s `attachments`, the REST execute route's): text
//! becomes a content fragment, a file goes through Dust's two-step upload and is attached by
//! its id, and the agent reads both with the question; in process, over HTTP in both eras and
//! through REST. Every refusal happens before anything reaches Dust.

use base64::Engine as _;
use mcp_dust_server::{auth::PermissionSet, sim::ECHO_AGENT_ID};
use serde_json::{Value, json};

use crate::common::{McpTest, error_code, http::TestServer, structured};

/// A small, valid PDF (one empty page).
pub(crate) const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n\
2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n\
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n\
trailer<</Root 1 0 R>>\n%%EOF\n";

const NOTE: &str = "Budget owners: Ana (EMEA), Bo (APAC)\nsecond line";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn attachments() -> Value {
    json!([
        {"title": "owners.txt", "text": NOTE},
        {"title": "Q3 report.pdf", "contentType": "application/pdf", "data": b64(PDF)},
    ])
}

/// The agent's answer names both attachments (the simulated agents say what they read).
fn assert_read_both(answer: &str) {
    assert!(answer.contains("\"owners.txt\""), "{answer}");
    assert!(
        answer.contains("Budget owners: Ana (EMEA), Bo (APAC)"),
        "{answer}"
    );
    assert!(answer.contains("\"Q3 report.pdf\""), "{answer}");
    assert!(answer.contains("application/pdf"), "{answer}");
}

/// The request bodies Dust received on routes ending with `suffix`.
fn bodies(sim: &mcp_dust_server::sim::SimHandle, suffix: &str) -> Vec<Value> {
    sim.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with(suffix))
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

#[tokio::test]
async fn a_note_and_a_pdf_reach_the_agent_with_the_question() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let out = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "Who owns the budget?",
                   "attachments": attachments()}),
        )
        .await
        .unwrap(),
    );
    let answer = out["answer"].as_str().unwrap();
    assert!(
        answer.starts_with("You said: Who owns the budget?"),
        "{answer}"
    );
    assert_read_both(answer);

    // The PDF went through the two steps, then both rode along with the new conversation,
    // the text as it was sent.
    let files = bodies(&t.sim, "/files");
    assert_eq!(
        files,
        vec![
            json!({"contentType": "application/pdf", "fileName": "Q3 report.pdf",
                    "fileSize": PDF.len(), "useCase": "conversation"})
        ]
    );
    assert_eq!(t.upstream_calls("/files/").len(), 1, "one upload");
    let created = bodies(&t.sim, "/assistant/conversations");
    let fragments = &created[0]["contentFragments"];
    assert_eq!(
        fragments[0],
        json!({"title": "owners.txt", "content": NOTE, "contentType": "text/plain"})
    );
    assert_eq!(fragments[1]["title"], "Q3 report.pdf");
    assert!(fragments[1]["fileId"].as_str().unwrap().starts_with("fil_"));

    // A follow-up attaches to the same conversation first, then asks.
    let conversation_id = out["conversationId"].as_str().unwrap();
    let follow = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "And this one?",
                   "conversationId": conversation_id,
                   "attachments": [{"title": "more.md", "text": "# More\nowners", "contentType": "text/markdown"}]}),
        )
        .await
        .unwrap(),
    );
    let answer = follow["answer"].as_str().unwrap();
    assert!(answer.contains("\"more.md\""), "{answer}");
    let posted = bodies(&t.sim, "/content_fragments");
    assert_eq!(
        posted,
        vec![
            json!({"title": "more.md", "content": "# More\nowners", "contentType": "text/markdown"})
        ]
    );

    // The conversation lists the attachments where they were attached.
    let conversation = structured(
        &t.call(
            "get_conversation",
            json!({"conversationId": conversation_id}),
        )
        .await
        .unwrap(),
    );
    let roles: Vec<&str> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        [
            "attachment",
            "attachment",
            "user",
            "agent",
            "attachment",
            "user",
            "agent"
        ]
    );
    let first = &conversation["messages"][1];
    assert_eq!(
        (first["title"].as_str(), first["contentType"].as_str()),
        (Some("Q3 report.pdf"), Some("application/pdf"))
    );
}

#[tokio::test]
async fn an_embedded_resource_is_taken_and_a_resource_link_refused() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let out = structured(
        &t.call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "read it",
                   "attachments": [{"type": "resource", "resource": {
                       "uri": "file:///home/ana/owners.txt", "mimeType": "text/plain", "text": NOTE}}]}),
        )
        .await
        .unwrap(),
    );
    assert!(
        out["answer"].as_str().unwrap().contains("\"owners.txt\""),
        "{out}"
    );

    let error = t
        .call(
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "read it",
                   "attachments": [{"type": "resource_link", "uri": "file:///a.txt", "name": "a.txt"}]}),
        )
        .await
        .unwrap_err();
    assert_eq!(error_code(&error), -32602);
    assert!(
        error
            .to_string()
            .contains("resource link, which carries no content"),
        "{error}"
    );
}

#[tokio::test]
async fn type_size_and_encoding_are_refused_before_anything_reaches_dust() {
    let t = McpTest::start(PermissionSet::DEFAULT).await;
    let big = b64(&vec![b'a'; 5 * 1024 * 1024 + 1]);
    let cases = [
        (
            json!([{"title": "x.exe", "contentType": "application/x-msdownload", "data": b64(b"MZ")}]),
            "Dust does not take files of type \"application/x-msdownload\"",
        ),
        (
            json!([{"title": "x.pdf", "contentType": "application/pdf", "data": big}]),
            "at most 5242880 are accepted",
        ),
        (
            json!([{"title": "x.pdf", "contentType": "application/pdf", "data": "%%%"}]),
            "attachments[0].data is not valid base64",
        ),
        (
            json!([{"title": "x.txt", "text": "x".repeat(512 * 1024 + 1)}]),
            "attachments[0].text is 524289 bytes",
        ),
    ];
    for (attachments, expected) in cases {
        let error = t
            .call(
                "ask_agent",
                json!({"agentId": ECHO_AGENT_ID, "message": "hi", "attachments": attachments}),
            )
            .await
            .unwrap_err();
        assert_eq!(error_code(&error), -32602, "{error}");
        assert!(
            error.to_string().contains(expected),
            "{error} lacks {expected}"
        );
    }
    assert!(t.upstream_calls("/files").is_empty());
    assert!(t.upstream_calls("/assistant/conversations").is_empty());
}

/// Over HTTP: the handshake era's `tools/call`, the 2026-07-28 era's, and REST's execute (with
/// a file larger than an ordinary REST body).
#[tokio::test]
async fn both_eras_and_rest_attach_the_same_way() {
    let server = TestServer::start().await;
    let token = server.token(None).await;
    let args = json!({"agentId": ECHO_AGENT_ID, "message": "Who owns the budget?",
                      "attachments": attachments()});

    let (status, body) = server.call_tool(&token, "ask_agent", args.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_read_both(
        body["result"]["structuredContent"]["answer"]
            .as_str()
            .unwrap_or_default(),
    );

    let (status, body) = server
        .mcp_2026(
            Some(&token),
            &json!({}),
            "tools/call",
            json!({"name": "ask_agent", "arguments": args}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_read_both(
        body["result"]["structuredContent"]["answer"]
            .as_str()
            .unwrap_or_default(),
    );

    let ws = server.sim.workspace_id().to_owned();
    let execute = server.url(&format!(
        "/api/v1/workspaces/{ws}/agents/{ECHO_AGENT_ID}/execute"
    ));
    // 2 MiB of PDF: twice the ordinary REST body limit once in base64.
    let mut large = PDF.to_vec();
    large.resize(2 * 1024 * 1024, b' ');
    let response = server
        .http
        .post(&execute)
        .bearer_auth(&token)
        .json(&json!({"message": "Who owns the budget?", "attachments": [
            {"title": "owners.txt", "text": NOTE},
            {"title": "Q3 report.pdf", "contentType": "application/pdf", "data": b64(&large)}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_read_both(body["answer"].as_str().unwrap());
    assert!(
        body["answer"]
            .as_str()
            .unwrap()
            .contains(&format!("{} bytes", large.len())),
        "{body}"
    );

    let uploads_before = server
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/files"))
        .count();
    let response = server
        .http
        .post(&execute)
        .bearer_auth(&token)
        .json(&json!({"message": "hi", "attachments": [
            {"title": "x.zip", "contentType": "application/zip", "data": b64(b"PK")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Dust does not take files of type \"application/zip\""),
        "{body}"
    );
    let uploads_after = server
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/files"))
        .count();
    assert_eq!(uploads_before, uploads_after);
    server.shutdown().await;
}
