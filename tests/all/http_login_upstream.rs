//! Login against a misbehaving Dust (catalogue K8): a redirect to another host is not followed,
//! the key never reaches that host, and nothing is issued.

use crate::common::http as http_harness;

use mcp_dust_server::sim::{self, SimConfig};
use serde_json::json;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};

#[tokio::test]
async fn k8_redirect_to_another_host_is_not_followed() {
    let elsewhere = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"exists": true})))
        .mount(&elsewhere)
        .await;
    let redirecting = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("Location", format!("{}/api/v1/w/x/exists", elsewhere.uri())),
        )
        .mount(&redirecting)
        .await;
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let server = http_harness::TestServer::start_on(sim, &[], Some(&redirecting.uri())).await;
    let response = server
        .login_with(
            json!({"apiKey": server.sim.api_key(), "workspaceId": server.sim.workspace_id()}),
        )
        .await;
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    assert!([502, 503].contains(&status), "{status} {body}");
    assert!(body.get("token").is_none());
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the key was sent to the redirect target"
    );
    assert_eq!(redirecting.received_requests().await.unwrap().len(), 1);
}
