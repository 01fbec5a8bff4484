//! `ALERT_WEBHOOK_URL`: a burst of failed logins reaches the operator's webhook as one JSON
//! alert, delivered again after a 5xx, without the keys that were tried and without slowing the
//! requests that caused it.

use std::time::{Duration, Instant};

use crate::common::http::TestServer;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// A well-formed key the simulator does not know, unique per attempt (so no per-key lockout).
fn wrong_key(i: usize) -> String {
    format!("sk-canaryWrongKey{i:04}xxxxxxxxxxxxxxxxxxxxxxxx")
}

async fn alerts(hook: &MockServer, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let received = hook.received_requests().await.unwrap_or_default();
        if received.len() >= at_least || Instant::now() > deadline {
            return received
                .iter()
                .map(|r| serde_json::from_slice(&r.body).unwrap())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_failed_logins_is_posted_once_and_retried_after_a_5xx() {
    let hook = MockServer::start().await;
    // The first delivery fails with 503; the retry succeeds.
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&hook)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let url = format!("{}/hook?token=canaryWebhookSecret", hook.uri());
    let server = TestServer::start_with(&[("ALERT_WEBHOOK_URL", url.as_str())]).await;

    let started = Instant::now();
    for i in 0..8 {
        let response = server
            .login_with(json!({ "apiKey": wrong_key(i), "workspaceId": server.sim.workspace_id() }))
            .await;
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "alerting must not slow the requests"
    );

    let received = alerts(&hook, 2).await;
    let delivered: Vec<&Value> = received
        .iter()
        .filter(|a| a["rule"] == "repeated_login_failures")
        .collect();
    assert_eq!(
        delivered.len(),
        2,
        "one alert, posted twice (503 then retried): {received:#?}"
    );
    assert_eq!(
        delivered[0], delivered[1],
        "the retry repeats the same alert"
    );
    let alert = delivered[0];
    assert_eq!(alert["source"], "mcp-dust-server");
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["count"], 5);
    assert_eq!(alert["windowSeconds"], 300);
    assert!(alert["summary"].as_str().unwrap().contains("127.0.0.1"));
    assert_eq!(alert["event"]["event_type"], "authn_login_fail");

    // Eight failures from one address are still one burst alert (throttled for the window).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let all = alerts(&hook, 0).await;
    assert_eq!(
        all.iter()
            .filter(|a| a["rule"] == "repeated_login_failures")
            .count(),
        2
    );
    // No key that was tried, and not the webhook's own secret, in any alert.
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains("canaryWrongKey"), "{text}");
    assert!(!text.contains("canaryWebhookSecret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn successful_logins_send_nothing() {
    let hook = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hook)
        .await;
    let url = format!("{}/hook", hook.uri());
    let server = TestServer::start_with(&[("ALERT_WEBHOOK_URL", url.as_str())]).await;
    for _ in 0..10 {
        server.token(None).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(hook.received_requests().await.unwrap().is_empty());
}
