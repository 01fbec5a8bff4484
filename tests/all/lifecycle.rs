//! The lifecycle of tokens and OAuth grants (issue 18): each test is written from a finding of
//! the security review, reproduced against the running server, and runs on the memory stores
//! and on Redis where state is involved (Redis cases skip when `redis-server` is absent
//! outside CI).
//!
//! - M1: an OAuth access token is not renewed at `/api/v1/auth/refresh` (it would leave its
//!   grant);
//! - M2: a login's chain of refreshes ends `TOKEN_MAX_LIFETIME` after the login, a grant
//!   `OAUTH_GRANT_MAX_LIFETIME` after the consent, and permissions taken out of the policy
//!   leave existing tokens and grants;
//! - M3: revoking any token of a grant ends the grant.

use std::time::Duration;

use mcp_dust_server::{
    audit::AuditEventType,
    sim::{self, ECHO_AGENT_ID, SimHandle},
    store::Stores,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{
    http::TestServer,
    redis_server::{RedisServer, prefix},
};
use crate::oauth::{code_for, exchange, mcp_status, refresh};

async fn sim() -> SimHandle {
    sim::spawn(crate::common::sim_config()).await.unwrap()
}

/// The stores of one case: memory, or Redis (`None` when Redis is not installed here).
async fn stores(redis: bool, name: &str) -> Option<(Stores, Option<RedisServer>)> {
    if !redis {
        return Some((Stores::memory(), None));
    }
    let server = RedisServer::start(name).await?;
    let stores = Stores::redis(server.store(&prefix(name)));
    Some((stores, Some(server)))
}

/// The OAuth flow to its first tokens: (access token, refresh token, client id).
async fn grant(s: &TestServer, state: &str) -> (String, String, String) {
    let (code, verifier, client) = code_for(s, state).await;
    let (status, tokens) = exchange(s, &code, &verifier, &client).await;
    assert_eq!(status, 200, "{tokens}");
    (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        client,
    )
}

async fn post(s: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let response = s
        .http
        .post(s.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn m1(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m1_oauth_token_refresh").await else {
        return;
    };
    let s = TestServer::start_with_stores(sim().await, &[], None, stores).await;
    let (access, _, _) = grant(&s, "m1").await;
    let user_id = s.state.jwt.verify(&access, s.state.now()).unwrap().user_id;
    let before = s
        .state
        .tokens
        .list_for_user(s.sim.workspace_id(), &user_id, s.now_secs())
        .await
        .unwrap()
        .len();
    let (status, body) = post(&s, "/api/v1/auth/refresh", &access).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/oauth/token"),
        "{body}"
    );
    let after = s
        .state
        .tokens
        .list_for_user(s.sim.workspace_id(), &user_id, s.now_secs())
        .await
        .unwrap();
    assert_eq!(after.len(), before, "no token was issued");
    // The access token itself is untouched: still good on /mcp.
    assert_eq!(mcp_status(&s, &access).await, 200);
    s.state.auditor.flush().await;
    let refused = s.audit.of_type(AuditEventType::AuthnTokenInvalid);
    assert!(
        refused.iter().any(|r| r["action"] == "refresh"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn m1_an_oauth_access_token_is_not_renewed_at_the_login_refresh() {
    m1(false).await;
}

#[tokio::test]
async fn m1_an_oauth_access_token_is_not_renewed_at_the_login_refresh_with_redis() {
    m1(true).await;
}

async fn m2_chain(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m2_chain").await else {
        return;
    };
    let env = [
        ("SECURITY_TOKEN_EXPIRATION", "3600"),
        ("TOKEN_MAX_LIFETIME", "7200"),
    ];
    let s = TestServer::start_with_stores(sim().await, &env, None, stores).await;
    let login_at = s.now_secs();
    let token = s.token(None).await;
    let expiry = |token: &str| s.state.jwt.verify(token, s.state.now()).unwrap().exp;
    assert_eq!(expiry(&token), login_at + 3600);

    s.clock.advance(Duration::from_secs(3000));
    let (status, body) = post(&s, "/api/v1/auth/refresh", &token).await;
    assert_eq!(status, 200, "{body}");
    let second = body["token"].as_str().unwrap().to_owned();
    assert_eq!(expiry(&second), login_at + 3000 + 3600);

    // The next refresh would reach past the chain: capped at login + TOKEN_MAX_LIFETIME.
    s.clock.advance(Duration::from_secs(3000));
    let (status, body) = post(&s, "/api/v1/auth/refresh", &second).await;
    assert_eq!(status, 200, "{body}");
    let third = body["token"].as_str().unwrap().to_owned();
    assert_eq!(expiry(&third), login_at + 7200);

    // Past the chain's end nothing renews it: the person logs in again.
    s.clock.advance(Duration::from_secs(1300));
    let (status, _) = post(&s, "/api/v1/auth/refresh", &third).await;
    assert_eq!(status, 401);
    assert_eq!(mcp_status(&s, &third).await, 401);
}

#[tokio::test]
async fn m2_a_chain_of_refreshes_ends_at_token_max_lifetime() {
    m2_chain(false).await;
}

#[tokio::test]
async fn m2_a_chain_of_refreshes_ends_at_token_max_lifetime_with_redis() {
    m2_chain(true).await;
}

async fn m2_grant(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m2_grant").await else {
        return;
    };
    let env = [
        ("OAUTH_REFRESH_TOKEN_TTL", "86400"),
        ("OAUTH_GRANT_MAX_LIFETIME", "172800"),
    ];
    let s = TestServer::start_with_stores(sim().await, &env, None, stores).await;
    let consent_at = s.now_secs();
    let (_, first, client) = grant(&s, "m2-grant").await;

    // Refreshed within each day, the grant goes on, and nothing it issues outlives it.
    s.clock.advance(Duration::from_secs(77_760));
    let (status, body) = refresh(&s, &first, &client).await;
    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().unwrap().to_owned();
    s.clock.advance(Duration::from_secs(77_760));
    let (status, body) = refresh(&s, &second, &client).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap();
    let exp = s.state.jwt.verify(access, s.state.now()).unwrap().exp;
    assert!(exp <= consent_at + 172_800, "{exp} past the grant");
    let third = body["refresh_token"].as_str().unwrap().to_owned();

    // Two days and an hour in: the grant is over, although its last refresh token was issued
    // less than OAUTH_REFRESH_TOKEN_TTL ago.
    s.clock.advance(Duration::from_secs(21_240));
    let (status, body) = refresh(&s, &third, &client).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
}

#[tokio::test]
async fn m2_an_oauth_grant_ends_at_its_maximum_lifetime() {
    m2_grant(false).await;
}

#[tokio::test]
async fn m2_an_oauth_grant_ends_at_its_maximum_lifetime_with_redis() {
    m2_grant(true).await;
}

/// The same stores behind a restarted server whose policy no longer grants `execute:agents`.
async fn m2_policy(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m2_policy").await else {
        return;
    };
    let before = [(
        "PERMISSIONS_DEFAULT",
        "read:workspaces,read:agents,execute:agents",
    )];
    let old = TestServer::start_with_stores(sim().await, &before, None, stores.clone()).await;
    let token = old.token(None).await;
    let (access, refresh_token, client) = grant(&old, "m2-policy").await;
    let ask = json!({"agentId": ECHO_AGENT_ID, "message": "hi"});
    let (_, body) = old.call_tool(&token, "ask_agent", ask.clone()).await;
    assert_ne!(body["result"]["isError"], true, "{body}");
    // Tokens are bound to the public URL: the restarted server keeps it.
    let public = old.base.clone();
    old.shutdown().await;
    let after = [
        ("PERMISSIONS_DEFAULT", "read:workspaces,read:agents"),
        ("MCP_PUBLIC_URL", public.as_str()),
    ];
    let new = TestServer::start_with_stores(sim().await, &after, None, stores).await;
    // Every request applies the policy as it is now.
    for token in [&token, &access] {
        let (_, body) = new.call_tool(token, "ask_agent", ask.clone()).await;
        assert_eq!(
            body["error"]["code"],
            mcp_dust_server::mcp::PERMISSION_DENIED.0,
            "{body}"
        );
    }
    // A refresh keeps what is left and never brings the lost permission back.
    let (status, body) = post(&new, "/api/v1/auth/refresh", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["user"]["permissions"],
        json!(["read:workspaces", "read:agents"])
    );
    let (status, body) = refresh(&new, &refresh_token, &client).await;
    assert_eq!(status, 200, "{body}");
    let claims = new
        .state
        .jwt
        .verify(body["access_token"].as_str().unwrap(), new.state.now())
        .unwrap();
    assert_eq!(claims.permissions, ["read:workspaces", "read:agents"]);
}

#[tokio::test]
async fn m2_permissions_taken_out_of_the_policy_leave_tokens_and_grants() {
    m2_policy(false).await;
}

#[tokio::test]
async fn m2_permissions_taken_out_of_the_policy_leave_tokens_and_grants_with_redis() {
    m2_policy(true).await;
}

async fn m3(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m3_grant_revocation").await else {
        return;
    };
    let s = TestServer::start_with_stores(sim().await, &[], None, stores).await;
    let (access, refresh_token, client) = grant(&s, "m3").await;
    // The person's own login (the same key) lists the connector's token, with its client.
    let mine = s.token(None).await;
    let response = s
        .http
        .get(s.url("/api/v1/auth/tokens"))
        .bearer_auth(&mine)
        .send()
        .await
        .unwrap();
    let list: Value = response.json().await.unwrap();
    let connector = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["origin"] == "oauth")
        .unwrap_or_else(|| panic!("no oauth token in {list}"))
        .clone();
    assert_eq!(connector["clientId"], client.as_str(), "{connector}");
    assert!(connector["grantId"].is_string(), "{connector}");

    // Revoking it ends the grant: the connector's refresh token no longer works.
    let response = s
        .http
        .delete(s.url(&format!(
            "/api/v1/auth/tokens/{}",
            connector["tokenId"].as_str().unwrap()
        )))
        .bearer_auth(&mine)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(mcp_status(&s, &access).await, 401);
    let (status, body) = refresh(&s, &refresh_token, &client).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    // The person's own login is untouched.
    assert_eq!(mcp_status(&s, &mine).await, 200);

    // A connector that logs out with its access token ends its grant as well.
    let (access, refresh_token, client) = grant(&s, "m3-logout").await;
    let (status, body) = post(&s, "/api/v1/auth/logout", &access).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = refresh(&s, &refresh_token, &client).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn m3_revoking_a_token_of_a_grant_ends_the_grant() {
    m3(false).await;
}

#[tokio::test]
async fn m3_revoking_a_token_of_a_grant_ends_the_grant_with_redis() {
    m3(true).await;
}

/// Waits (up to ten seconds) for the simulator to see the agent run cancelled.
async fn run_cancelled(s: &TestServer) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s
        .sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/cancel"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the run was not cancelled in Dust"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// L3: an answer streamed over REST ends when its token is revoked, and the run stops in Dust.
#[tokio::test]
async fn l3_a_streamed_answer_ends_when_its_token_is_revoked() {
    use futures::StreamExt;
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let ws = s.sim.workspace_id().to_owned();
    let response = s
        .http
        .post(s.url(&format!(
            "/api/v1/workspaces/{ws}/agents/{}/execute",
            mcp_dust_server::sim::SLOW_AGENT_ID
        )))
        .bearer_auth(&token)
        .header("Accept", "text/event-stream")
        .json(&json!({"message": "a long story"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut text = String::new();
    // The first piece of the answer arrives, then the token is revoked (a logout).
    while !text.contains("event: token") {
        text.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    let (status, _) = post(&s, "/api/v1/auth/logout", &token).await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    let rest = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        text
    })
    .await
    .expect("the stream went on after the token was revoked");
    assert!(rest.contains("event: error"), "{rest}");
    assert!(rest.contains("revoked or has expired"), "{rest}");
    assert!(!rest.contains("event: done"), "{rest}");
    assert!(started.elapsed() < Duration::from_secs(8));
    run_cancelled(&s).await;
}

/// L3 over MCP: `ask_agent` ends with a tool error when its token is revoked mid-run.
#[tokio::test]
async fn l3_an_agent_run_over_mcp_ends_when_its_token_is_revoked() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let token = s.token(None).await;
    let running = {
        let (s, token) = (s.clone(), token.clone());
        tokio::spawn(async move {
            s.call_tool(
                &token,
                "ask_agent",
                json!({"agentId": mcp_dust_server::sim::SLOW_AGENT_ID, "message": "take your time"}),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, _) = post(&s, "/api/v1/auth/logout", &token).await;
    assert_eq!(status, 200);
    let (status, body) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the run went on after the token was revoked")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], true, "{body}");
    let message = body["result"]["content"][0]["text"].as_str().unwrap();
    assert!(message.contains("revoked or has expired"), "{message}");
    run_cancelled(&s).await;
}

async fn m3_grants(redis: bool) {
    let Some((stores, _redis)) = stores(redis, "m3_grant_list").await else {
        return;
    };
    let s = TestServer::start_with_stores(sim().await, &[], None, stores).await;
    let (access, refresh_token, client) = grant(&s, "m3-list").await;
    let mine = s.token(None).await;
    let list = |token: String| {
        let request = s.http.get(s.url("/api/v1/auth/grants")).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let listed = list(mine.clone()).await;
    let grants = listed["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{listed}");
    let grant_id = grants[0]["grantId"].as_str().unwrap().to_owned();
    assert_eq!(grants[0]["clientId"], client.as_str());
    assert_eq!(
        grants[0]["permissions"],
        json!(["read:workspaces", "read:agents", "execute:agents"])
    );
    for field in ["createdAt", "lastUsedAt", "expiresAt"] {
        assert!(grants[0][field].is_string(), "{listed}");
    }

    // Someone else (another key and workspace) neither sees it nor can end it.
    let response = s
        .login_with(
            json!({"apiKey": s.sim.other_api_key(), "workspaceId": s.sim.other_workspace_id()}),
        )
        .await;
    let stranger: Value = response.json().await.unwrap();
    let stranger = stranger["token"].as_str().unwrap().to_owned();
    assert_eq!(list(stranger.clone()).await["grants"], json!([]));
    let delete = |token: String| {
        let request = s
            .http
            .delete(s.url(&format!("/api/v1/auth/grants/{grant_id}")))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(delete(stranger).await, 404);
    assert_eq!(mcp_status(&s, &access).await, 200);

    // The owner ends it: the connector's tokens stop at once, its refresh token too.
    assert_eq!(delete(mine.clone()).await, 204);
    assert_eq!(mcp_status(&s, &access).await, 401);
    let (status, body) = refresh(&s, &refresh_token, &client).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(list(mine.clone()).await["grants"], json!([]));
    assert_eq!(mcp_status(&s, &mine).await, 200);
}

#[tokio::test]
async fn m3_a_person_lists_and_ends_their_grants() {
    m3_grants(false).await;
}

#[tokio::test]
async fn m3_a_person_lists_and_ends_their_grants_with_redis() {
    m3_grants(true).await;
}
