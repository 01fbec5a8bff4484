//! The upstream fault matrix (docs/RELIABILITY.md, "Upstream faults"): for each way Dust can
//! misbehave, what an MCP client of the real server sees over `/mcp`, and what reached Dust.
//!
//! Each test scripts one precise fault with the simulator's fault plan (`SimHandle::push_fault`)
//! and asserts the tool result (answer or a clear, bounded error), the time it took, and the
//! requests the simulator received (how many retries, never a second POST). Timeouts are set
//! small through the configuration so the whole file runs in a few seconds.

use std::time::{Duration, Instant};

use crate::common::http::TestServer;
use futures::StreamExt;
use mcp_dust_server::{
    audit::AuditEventType,
    dust::{AgentEventKind, DustApi, DustCredentials, HttpDustClient, follow_agent_message},
    sim::{
        self, ECHO_AGENT_ID, FaultAction, FaultRule, Faults, HANDBOOK_DS_ID, RecordedRequest,
        SimConfig,
    },
};
use serde_json::{Value, json};

/// Every permission, so each tool can be called.
const ALL_PERMISSIONS: &str = "read:workspaces,write:workspaces,read:agents,write:agents,\
execute:agents,read:knowledge-bases,write:knowledge-bases,delete:knowledge-bases,read:connectors,\
write:connectors,execute:connectors,admin:audit,admin:metrics,admin:tokens";

const AGENTS: &str = "/assistant/agent_configurations";

/// A server with small Dust timeouts; `env` overrides.
async fn server(env: &[(&str, &str)]) -> TestServer {
    let mut vars = vec![
        ("PERMISSIONS_DEFAULT", ALL_PERMISSIONS),
        ("DUST_TIMEOUT", "1"),
        ("DUST_RETRY_AFTER_MAX", "2"),
        ("DUST_MAX_RETRIES", "2"),
        ("MCP_SERVER_TIMEOUT", "3"),
        // High unless a test is about the breaker: other tests fail calls on purpose.
        ("DUST_BREAKER_THRESHOLD", "1000"),
    ];
    vars.extend_from_slice(env);
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    TestServer::start_on(sim, &vars, None).await
}

/// What a tool call returned to the MCP client.
#[derive(Debug)]
struct Outcome {
    is_error: bool,
    text: String,
    structured: Value,
    took: Duration,
}

async fn call(srv: &TestServer, token: &str, tool: &str, args: Value) -> Outcome {
    let started = Instant::now();
    let (status, body) = srv.call_tool(token, tool, args).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let result = &body["result"];
    assert!(result.is_object(), "not a tool result: {body}");
    Outcome {
        is_error: result["isError"] == true,
        text: result["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        structured: result["structuredContent"].clone(),
        took,
    }
}

/// The requests the simulator received with this method and a path containing `fragment`.
fn seen(srv: &TestServer, method: &str, fragment: &str) -> Vec<RecordedRequest> {
    srv.sim
        .requests()
        .into_iter()
        .filter(|r| r.method == method && r.path.contains(fragment))
        .collect()
}

fn rule(method: &str, fragment: &str, action: FaultAction) -> FaultRule {
    FaultRule::always(action).method(method).path(fragment)
}

#[tokio::test]
async fn slow_answer_within_the_timeout_is_answered() {
    let srv = server(&[("DUST_TIMEOUT", "2")]).await;
    let token = srv.token(None).await;
    srv.sim
        .push_fault(rule("GET", AGENTS, FaultAction::Delay { ms: 700 }));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.contains(ECHO_AGENT_ID), "{}", out.text);
    assert!(out.took >= Duration::from_millis(700), "{:?}", out.took);
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

#[tokio::test]
async fn hang_past_the_timeout_is_a_bounded_timeout_error() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule("GET", AGENTS, FaultAction::Hang));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text
            .starts_with("Dust did not answer in time while listing agents")
            && out.text.contains("limit 1.0 s"),
        "{}",
        out.text
    );
    assert!(out.took < Duration::from_millis(2500), "{:?}", out.took);
    // A timeout is not retried: it already cost the whole budget.
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

#[tokio::test]
async fn agent_stream_hanging_past_the_agent_timeout_ends_with_a_clear_timeout() {
    let srv = server(&[("MCP_SERVER_TIMEOUT", "1")]).await;
    let token = srv.token(None).await;
    srv.sim
        .push_fault(rule("GET", "/api/sse/", FaultAction::Hang));

    let out = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": "hello"}),
    )
    .await;

    assert!(out.is_error);
    assert!(
        out.text.starts_with("The agent did not finish within 1 s")
            && out.text.contains("get_conversation"),
        "{}",
        out.text
    );
    assert!(out.took < Duration::from_millis(3000), "{:?}", out.took);
    assert_eq!(seen(&srv, "POST", "/assistant/conversations").len(), 1);
}

#[tokio::test]
async fn rate_limit_with_retry_after_within_the_cap_is_waited_out() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(
        rule(
            "GET",
            AGENTS,
            FaultAction::Status {
                status: 429,
                retry_after_secs: Some(1),
            },
        )
        .times(1),
    );

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(!out.is_error, "{}", out.text);
    assert!(out.took >= Duration::from_secs(1), "{:?}", out.took);
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 2);
}

#[tokio::test]
async fn rate_limit_with_retry_after_beyond_the_cap_fails_at_once() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule(
        "GET",
        AGENTS,
        FaultAction::Status {
            status: 429,
            retry_after_secs: Some(120),
        },
    ));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text.starts_with("Dust is rate limiting this workspace")
            && out.text.ends_with("Retry in 120 s."),
        "{}",
        out.text
    );
    assert!(out.took < Duration::from_secs(1), "{:?}", out.took);
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

#[tokio::test]
async fn rate_limit_without_retry_after_is_retried_with_backoff_then_reported() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule(
        "GET",
        AGENTS,
        FaultAction::Status {
            status: 429,
            retry_after_secs: None,
        },
    ));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text.starts_with("Dust is rate limiting this workspace")
            && out.text.ends_with("Retry in 60 s."),
        "{}",
        out.text
    );
    // DUST_MAX_RETRIES=2: three attempts, 250 ms then 500 ms apart (±20 %).
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 3);
    assert!(out.took >= Duration::from_millis(600), "{:?}", out.took);
    assert!(out.took < Duration::from_millis(2000), "{:?}", out.took);
}

#[tokio::test]
async fn a_5xx_burst_on_a_read_is_retried_and_answered() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(
        rule(
            "GET",
            AGENTS,
            FaultAction::Status {
                status: 503,
                retry_after_secs: None,
            },
        )
        .times(1),
    );
    srv.sim.push_fault(
        rule(
            "GET",
            AGENTS,
            FaultAction::Status {
                status: 504,
                retry_after_secs: None,
            },
        )
        .times(1),
    );

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.contains(ECHO_AGENT_ID));
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 3);
}

#[tokio::test]
async fn persistent_5xx_is_retried_a_bounded_number_of_times() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule(
        "GET",
        AGENTS,
        FaultAction::Status {
            status: 502,
            retry_after_secs: None,
        },
    ));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text
            .starts_with("Dust is unavailable while listing agents")
            && out.text.ends_with("Try again later."),
        "{}",
        out.text
    );
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 3);
    assert!(out.took < Duration::from_secs(2), "{:?}", out.took);
}

#[tokio::test]
async fn a_reset_connection_on_a_read_is_retried_and_answered() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim
        .push_fault(rule("GET", AGENTS, FaultAction::Drop).times(1));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(!out.is_error, "{}", out.text);
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 2);
}

#[tokio::test]
async fn a_read_whose_connection_keeps_resetting_fails_clearly() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule("GET", AGENTS, FaultAction::Drop));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text
            .starts_with("Dust is unavailable while listing agents"),
        "{}",
        out.text
    );
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 3);
}

/// Creating a conversation, posting a message and upserting a document are never repeated once
/// the request may have reached Dust: not after a 5xx, a reset, a lost answer or a timeout.
#[tokio::test]
async fn non_idempotent_calls_are_never_retried() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    let faults = [
        FaultAction::Status {
            status: 503,
            retry_after_secs: None,
        },
        FaultAction::Drop,
        FaultAction::LoseAnswer,
        FaultAction::Hang,
    ];

    // A new conversation.
    for fault in &faults {
        srv.sim.clear_fault_plan();
        srv.sim
            .push_fault(rule("POST", "/assistant/conversations", fault.clone()));
        let before = seen(&srv, "POST", "/assistant/conversations").len();
        let out = call(
            &srv,
            &token,
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "only once"}),
        )
        .await;
        assert!(out.is_error, "{fault:?}: {}", out.text);
        assert_eq!(
            seen(&srv, "POST", "/assistant/conversations").len(),
            before + 1,
            "{fault:?}"
        );
    }

    // A message in an existing conversation.
    srv.sim.clear_fault_plan();
    let first = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": "start"}),
    )
    .await;
    assert!(!first.is_error, "{}", first.text);
    let conversation_id = first.structured["conversationId"].as_str().unwrap();
    for fault in &faults {
        srv.sim.clear_fault_plan();
        srv.sim.push_fault(rule("POST", "/messages", fault.clone()));
        let before = seen(&srv, "POST", "/messages").len();
        let out = call(
            &srv,
            &token,
            "ask_agent",
            json!({"agentId": ECHO_AGENT_ID, "message": "follow-up",
                   "conversationId": conversation_id}),
        )
        .await;
        assert!(out.is_error, "{fault:?}: {}", out.text);
        assert_eq!(
            seen(&srv, "POST", "/messages").len(),
            before + 1,
            "{fault:?}"
        );
    }

    // A document upsert.
    for fault in &faults {
        srv.sim.clear_fault_plan();
        srv.sim
            .push_fault(rule("POST", "/documents/", fault.clone()));
        let before = seen(&srv, "POST", "/documents/").len();
        let out = call(
            &srv,
            &token,
            "upsert_document",
            json!({"knowledgeBaseId": HANDBOOK_DS_ID, "documentId": "once", "text": "hello"}),
        )
        .await;
        assert!(out.is_error, "{fault:?}: {}", out.text);
        assert_eq!(
            seen(&srv, "POST", "/documents/").len(),
            before + 1,
            "{fault:?}"
        );
    }
}

/// Every event-stream connection is cut in the middle of its fourth event: the answer is
/// complete and exact, the connections resume with `lastEventId`, and no token is lost or
/// repeated across the cuts.
#[tokio::test]
async fn agent_stream_cut_mid_answer_resumes_without_losing_or_repeating_tokens() {
    let srv = server(&[("MCP_SERVER_TIMEOUT", "20")]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule(
        "GET",
        "/api/sse/",
        FaultAction::CutStream { after_events: 3 },
    ));
    let question = "one two three four five six seven eight nine ten eleven twelve thirteen";

    let out = call(
        &srv,
        &token,
        "ask_agent",
        json!({"agentId": ECHO_AGENT_ID, "message": question}),
    )
    .await;

    assert!(!out.is_error, "{}", out.text);
    let expected = format!("You said: {question}");
    assert_eq!(out.structured["answer"], expected.as_str());
    let connections = seen(&srv, "GET", "/api/sse/");
    assert!(connections.len() >= 3, "{}", connections.len());
    assert!(connections[0].query.is_none());
    for resumed in &connections[1..] {
        let query = resumed.query.as_deref().unwrap_or_default();
        assert!(query.starts_with("lastEventId="), "{query}");
    }

    // The tokens themselves, read through the same cuts with the server's Dust client.
    let conversation_id = out.structured["conversationId"].as_str().unwrap();
    let message_id = out.structured["messageId"].as_str().unwrap();
    let dust: std::sync::Arc<dyn DustApi> =
        std::sync::Arc::new(HttpDustClient::with_base_url(&srv.sim.base_url()).unwrap());
    let creds = DustCredentials::new(srv.sim.workspace_id(), srv.sim.api_key());
    let events: Vec<_> = follow_agent_message(
        dust,
        creds,
        conversation_id.to_owned(),
        message_id.to_owned(),
    )
    .collect()
    .await;
    let mut ids = Vec::new();
    let mut tokens = String::new();
    let mut final_text = None;
    for event in events {
        let event = event.expect("no error across the cuts");
        ids.push(event.event_id.clone());
        match event.kind {
            AgentEventKind::GenerationTokens {
                text,
                classification,
            } if classification == "tokens" => tokens.push_str(&text),
            AgentEventKind::Success { message } => final_text = message.content,
            _ => {}
        }
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "an event was delivered twice");
    assert_eq!(tokens, expected);
    assert_eq!(final_text.as_deref(), Some(expected.as_str()));
}

#[tokio::test]
async fn malformed_answer_is_a_clear_upstream_error() {
    let srv = server(&[]).await;
    let token = srv.token(None).await;
    srv.sim
        .push_fault(rule("GET", AGENTS, FaultAction::Malformed));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text
            .starts_with("Dust is unavailable while listing agents")
            && out.text.contains("could not be read"),
        "{}",
        out.text
    );
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

#[tokio::test]
async fn oversized_answer_is_refused_at_the_limit() {
    let srv = server(&[("DUST_TIMEOUT", "10")]).await;
    let token = srv.token(None).await;
    srv.sim.push_fault(rule(
        "GET",
        AGENTS,
        FaultAction::Oversized {
            bytes: 48 * 1024 * 1024,
        },
    ));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text
            .starts_with("Dust is unavailable while listing agents")
            && out.text.contains("larger than 32 MiB"),
        "{}",
        out.text
    );
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

/// A redirect to another host is not followed: that host receives nothing at all, so neither
/// the request nor its `Authorization: Bearer <Dust key>` ever reaches it.
#[tokio::test]
async fn redirect_to_another_host_is_not_followed_and_the_key_stays_home() {
    let srv = server(&[]).await;
    let other = sim::spawn(SimConfig::default()).await.unwrap();
    let token = srv.token(None).await;
    let location = format!(
        "{}/api/v1/w/{}{AGENTS}",
        other.base_url(),
        srv.sim.workspace_id()
    );
    srv.sim
        .push_fault(rule("GET", AGENTS, FaultAction::Redirect { location }));

    let out = call(&srv, &token, "list_agents", json!({})).await;

    assert!(out.is_error);
    assert!(
        out.text.contains("to another origin") && out.text.contains("not followed"),
        "{}",
        out.text
    );
    assert!(!out.text.contains(srv.sim.api_key()));
    assert!(
        other.requests().is_empty(),
        "the other host was called: {:?}",
        other.requests()
    );
    assert_eq!(seen(&srv, "GET", AGENTS).len(), 1);
}

/// Principal A's calls hang in its workspace: A is held to its own slots (and its circuit
/// opens), while principal B, with another key, is answered at once throughout.
#[tokio::test]
async fn one_principals_hung_calls_do_not_stop_another_principal() {
    let srv = server(&[("DUST_TIMEOUT", "2"), ("DUST_BREAKER_THRESHOLD", "3")]).await;
    let token_a = srv.token(None).await;
    let login = srv
        .login_with(json!({"apiKey": srv.sim.other_api_key(),
                           "workspaceId": srv.sim.other_workspace_id()}))
        .await;
    assert_eq!(login.status(), 200);
    let token_b = login.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let workspace_a = srv.sim.workspace_id().to_owned();
    srv.sim.push_fault(rule(
        "GET",
        &format!("{workspace_a}{AGENTS}"),
        FaultAction::Hang,
    ));

    let srv = std::sync::Arc::new(srv);
    let hung: Vec<_> = (0..mcp_dust_server::ops::MAX_CALLS_IN_FLIGHT)
        .map(|_| {
            let srv = srv.clone();
            let token = token_a.clone();
            tokio::spawn(async move { call(&srv, &token, "list_agents", json!({})).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(2);
    while seen(&srv, "GET", &format!("{workspace_a}{AGENTS}")).len()
        < mcp_dust_server::ops::MAX_CALLS_IN_FLIGHT
    {
        assert!(
            Instant::now() < deadline,
            "the hung calls never reached Dust"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A is at its limit: refused at once, nothing sent.
    let extra = call(&srv, &token_a, "list_agents", json!({})).await;
    assert!(extra.is_error);
    assert!(
        extra.text.contains("wait for one to finish"),
        "{}",
        extra.text
    );
    assert!(extra.took < Duration::from_millis(500));
    // B is answered at once.
    let b = call(&srv, &token_b, "list_agents", json!({})).await;
    assert!(!b.is_error, "{}", b.text);
    assert!(b.took < Duration::from_millis(500), "{:?}", b.took);

    for call in hung {
        let out = call.await.unwrap();
        assert!(out.is_error);
        assert!(
            out.text.starts_with("Dust did not answer in time"),
            "{}",
            out.text
        );
    }
    // A's circuit opened after its timeouts; B's workspace has its own and is still answered.
    let a = call(&srv, &token_a, "list_agents", json!({})).await;
    assert!(
        a.text.starts_with("Dust is unavailable, retrying in"),
        "{}",
        a.text
    );
    let b = call(&srv, &token_b, "list_agents", json!({})).await;
    assert!(!b.is_error, "{}", b.text);
}

/// Dust goes down: after 3 failed calls the circuit opens and calls fail fast without reaching
/// Dust; after the cool-down one probe goes through (failing again while Dust is still down);
/// once Dust is back the probe succeeds and the circuit closes by itself. Each transition is
/// audited once and counted in /metrics.
#[tokio::test]
async fn circuit_breaker_opens_fails_fast_probes_and_recovers() {
    let srv = server(&[
        ("DUST_BREAKER_THRESHOLD", "3"),
        ("DUST_BREAKER_COOLDOWN", "1"),
        ("DUST_MAX_RETRIES", "0"),
        ("ENABLE_METRICS", "true"),
    ])
    .await;
    let token = srv.token(None).await;
    let upstream = || srv.sim.requests().len();
    let breaker_events = |to: &'static str| {
        srv.audit
            .of_type(AuditEventType::UpstreamFailure)
            .into_iter()
            .filter(|record| record["extra"]["breaker.to"] == to)
            .count()
    };

    // Dust goes down.
    srv.sim.set_faults(Faults {
        drop_rate: 1.0,
        ..Faults::default()
    });
    for _ in 0..3 {
        let out = call(&srv, &token, "list_agents", json!({})).await;
        assert!(
            out.text
                .starts_with("Dust is unavailable while listing agents"),
            "{}",
            out.text
        );
    }
    srv.state.auditor.flush().await;
    assert_eq!(breaker_events("open"), 1);

    // Open: fail fast, nothing sent.
    let before = upstream();
    let fast = call(&srv, &token, "list_agents", json!({})).await;
    assert!(fast.is_error);
    assert_eq!(
        fast.text.split(':').next().unwrap(),
        "Dust is unavailable, retrying in 1 s"
    );
    assert!(fast.took < Duration::from_millis(200), "{:?}", fast.took);
    assert_eq!(upstream(), before);

    // After the cool-down, one probe reaches Dust, fails, and the circuit opens again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probe = call(&srv, &token, "list_agents", json!({})).await;
    assert!(
        probe
            .text
            .starts_with("Dust is unavailable while listing agents"),
        "{}",
        probe.text
    );
    assert_eq!(upstream(), before + 1);
    let fast = call(&srv, &token, "list_agents", json!({})).await;
    assert!(
        fast.text.starts_with("Dust is unavailable, retrying in"),
        "{}",
        fast.text
    );
    assert_eq!(upstream(), before + 1);

    // Dust is back: the next probe closes the circuit, and calls flow again.
    srv.sim.set_faults(Faults::default());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..2 {
        let out = call(&srv, &token, "list_agents", json!({})).await;
        assert!(!out.is_error, "{}", out.text);
    }
    srv.state.auditor.flush().await;
    assert_eq!(breaker_events("open"), 2);
    assert_eq!(breaker_events("half_open"), 2);
    assert_eq!(breaker_events("closed"), 1);

    let metrics = srv
        .http
        .get(srv.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    for needle in [
        "dust_breaker_transitions_total{to=\"open\"}",
        "dust_breaker_transitions_total{to=\"closed\"}",
        "dust_breaker_rejections_total",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
}
