//! Hostile tests of HTTP authentication (security catalogue §4.1 J and §4.2 K): a real server on
//! 127.0.0.1:0, the simulator as Dust, a manual clock, the in-memory audit sink.
//!
//! Hostile tokens are built by hand (base64url + HMAC). Tokens that must get past the signature
//! check to test a claim rule are signed with the server's real JWT key, derived from the test
//! server's `SECURITY_SECRET_KEY` exactly as the server derives it.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, UNIX_EPOCH},
};

use crate::common::http::{SECRET, TestServer};
use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use mcp_dust_server::{
    audit::AuditEventType,
    auth::{Keys, jwt::LEEWAY, lockout, tokens::MAX_LIVE_TOKENS_PER_USER},
    sim::{self, Faults, SimConfig},
    state::Clock,
};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::{Sha256, Sha384, Sha512};

// ---------------------------------------------------------------------------------------------
// Token crafting
// ---------------------------------------------------------------------------------------------

/// The header of every token the server issues.
const HEADER: &str = r#"{"alg":"HS256","typ":"mcp-dust+jwt"}"#;

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(segment).unwrap()
}

fn keys() -> Keys {
    Keys::derive(&SecretString::from(SECRET.to_owned()))
}

/// The server's real HS256 key.
fn jwt_key() -> Vec<u8> {
    keys().jwt_signing().to_vec()
}

fn hs256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `header.payload.signature` with an HS256 signature under `key`.
fn sign_with(key: &[u8], header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let signature = b64(hs256(key, input.as_bytes()));
    format!("{input}.{signature}")
}

/// A token with the server's header and `claims`, signed with the server's real key: only the
/// claim rules stand between it and acceptance.
fn resign(claims: &Value) -> String {
    sign_with(&jwt_key(), HEADER, &claims.to_string())
}

/// The claims of a token, as JSON.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&unb64(payload)).unwrap()
}

/// The signature segment of a token.
fn signature_of(token: &str) -> &str {
    token.rsplit('.').next().unwrap()
}

/// `header.payload` of a token.
fn signing_input(token: &str) -> &str {
    &token[..token.rfind('.').unwrap()]
}

fn now_secs(server: &TestServer) -> i64 {
    server
        .clock
        .now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---------------------------------------------------------------------------------------------
// Requests and expectations
// ---------------------------------------------------------------------------------------------

/// A whole answer, read.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: HeaderMap,
    text: String,
    body: Value,
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = crate::common::http::parse_mcp_body(&text);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

fn tools_list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

/// `POST /mcp` (`tools/list`, which needs no Dust call) with these raw `Authorization` values.
async fn mcp_with(server: &TestServer, path: &str, authorization: &[&str]) -> Reply {
    let mut request = server
        .http
        .post(server.url(path))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(&tools_list());
    for value in authorization {
        request = request.header("Authorization", *value);
    }
    read(request.send().await.unwrap()).await
}

/// `POST /mcp` with `Authorization: Bearer <token>`.
async fn mcp_bearer(server: &TestServer, token: &str) -> Reply {
    mcp_with(server, "/mcp", &[&format!("Bearer {token}")]).await
}

async fn post_bearer(server: &TestServer, path: &str, token: &str) -> Reply {
    let response = server
        .http
        .post(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    read(response).await
}

async fn login(server: &TestServer, body: Value) -> Reply {
    read(server.login_with(body).await).await
}

/// The simulator's key with the simulator's workspace, plus `extra` members.
fn login_body(server: &TestServer, extra: Value) -> Value {
    let mut body =
        json!({ "apiKey": server.sim.api_key(), "workspaceId": server.sim.workspace_id() });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

/// The generic error envelope, with the request id of the response.
fn assert_envelope(reply: &Reply, code: &str) {
    let error = &reply.body["error"];
    assert_eq!(error["code"], code, "{}", reply.text);
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.text
    );
    let request_id = error["requestId"].as_str().expect("requestId");
    assert!(!request_id.is_empty());
    assert_eq!(
        reply.headers["x-request-id"].to_str().unwrap(),
        request_id,
        "the body's requestId is the response's x-request-id"
    );
    let members: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(members, ["error"], "{}", reply.text);
}

/// 401 with the bearer challenge: `error="invalid_token"` exactly when a token was refused.
fn assert_unauthorized(reply: &Reply, token_refused: bool) {
    assert_eq!(reply.status, 401, "{}", reply.text);
    let challenges: Vec<&str> = reply
        .headers
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let expected = if token_refused {
        r#"Bearer realm="mcp-dust-server", error="invalid_token""#
    } else {
        r#"Bearer realm="mcp-dust-server""#
    };
    // On `/mcp` the challenge goes on with the OAuth discovery parameters (MCP authorization
    // spec, tests/all/oauth.rs); the part before them is the same everywhere.
    let [challenge] = challenges.as_slice() else {
        panic!("one challenge expected: {challenges:?}");
    };
    let (base, discovery) = challenge
        .split_once(", resource_metadata=")
        .map_or((*challenge, None), |(base, rest)| (base, Some(rest)));
    assert_eq!(base, expected);
    if let Some(rest) = discovery {
        assert!(
            rest.starts_with('"')
                && rest.contains("/.well-known/oauth-protected-resource/mcp\", scope=\""),
            "{challenge}"
        );
    }
    assert_envelope(reply, "unauthorized");
}

/// The `reason` of every `authn_token_invalid` record so far.
async fn invalid_token_reasons(server: &TestServer) -> Vec<String> {
    server.state.auditor.flush().await;
    // Refused tokens are `authn_token_invalid`, revoked ones `authn_token_reuse`: both count.
    server
        .audit
        .records()
        .iter()
        .filter(|r| {
            r["event_type"] == "authn_token_invalid" || r["event_type"] == "authn_token_reuse"
        })
        .map(|r| r["extra"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `reason` of every `authn_login_fail` record so far.
async fn login_fail_reasons(server: &TestServer) -> Vec<String> {
    server.state.auditor.flush().await;
    server
        .audit
        .of_type(AuditEventType::AuthnLoginFail)
        .iter()
        .map(|r| r["extra"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Sends `token` to `/mcp` and expects a 401 for `reason`, no upstream call, and exactly one
/// new `authn_token_invalid` record with that reason.
async fn assert_token_refused(server: &TestServer, token: &str, reason: &str, case: &str) {
    let upstream = server.sim.requests().len();
    let before = invalid_token_reasons(server).await.len();
    let reply = mcp_bearer(server, token).await;
    assert_eq!(reply.status, 401, "{case}: {}", reply.text);
    assert_unauthorized(&reply, true);
    assert!(
        !reply.text.contains(token),
        "{case}: the token is echoed in the answer"
    );
    assert_eq!(
        server.sim.requests().len(),
        upstream,
        "{case}: Dust was called"
    );
    let reasons = invalid_token_reasons(server).await;
    assert_eq!(reasons.len(), before + 1, "{case}: one audit record");
    assert_eq!(reasons.last().unwrap(), reason, "{case}: audit reason");
}

async fn assert_token_accepted(server: &TestServer, token: &str, case: &str) {
    let reply = mcp_bearer(server, token).await;
    assert_eq!(reply.status, 200, "{case}: {}", reply.text);
    assert!(reply.body["result"]["tools"].is_array(), "{case}");
}

/// Every audit record, as one string (to check that a secret appears nowhere).
async fn audit_text(server: &TestServer) -> String {
    server.state.auditor.flush().await;
    serde_json::to_string(&server.audit.records()).unwrap()
}

/// The simulator's key and a fresh token for it, with its claims.
async fn token_and_claims(server: &TestServer) -> (String, Value) {
    let token = server.token(None).await;
    let claims = claims_of(&token);
    (token, claims)
}

// ---------------------------------------------------------------------------------------------
// Happy paths: login, refresh, logout (interface.md)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_answers_the_documented_shape() {
    let s = TestServer::start().await;
    let reply = login(
        &s,
        login_body(
            &s,
            json!({"username": "alice", "email": "alice@example.com"}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let body = &reply.body;
    let mut members: Vec<&String> = body.as_object().unwrap().keys().collect();
    members.sort();
    assert_eq!(members, ["expiresAt", "token", "tokenType", "user"]);
    assert_eq!(body["tokenType"], "Bearer");
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    assert!(token.starts_with("eyJ"));
    let user = &body["user"];
    let mut members: Vec<&String> = user.as_object().unwrap().keys().collect();
    members.sort();
    assert_eq!(
        members,
        ["email", "id", "permissions", "username", "workspaceId"]
    );
    assert!(user["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(user["username"], "alice");
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["workspaceId"], s.sim.workspace_id());
    assert_eq!(
        user["permissions"],
        json!([
            "read:workspaces",
            "read:agents",
            "execute:agents",
            "read:knowledge-bases",
            "read:connectors"
        ])
    );
    // expiresAt is the token's exp, SECURITY_TOKEN_EXPIRATION (3600 s) after now.
    let claims = claims_of(token);
    let exp = claims["exp"].as_i64().unwrap();
    assert_eq!(exp - claims["iat"].as_i64().unwrap(), 3600);
    assert!((exp - now_secs(&s) - 3600).abs() <= 1);
    let expires_at = body["expiresAt"].as_str().unwrap();
    assert!(
        expires_at.ends_with('Z') && expires_at.contains('T'),
        "{expires_at}"
    );
    assert_eq!(claims["jti"], claims["tokenId"]);
    assert_eq!(claims["userId"], user["id"]);
    assert!(claims.get("email").is_none(), "email is not a claim (L9)");
    // Neither the answer nor the token carries the key.
    assert!(!reply.text.contains(s.sim.api_key()));
    assert!(!String::from_utf8_lossy(&unb64(token.split('.').nth(1).unwrap())).contains("sk-"));
    // The token works, and the login is audited without the key.
    assert_token_accepted(&s, token, "fresh token").await;
    let audit = audit_text(&s).await;
    assert!(!audit.contains(s.sim.api_key()));
    let success = s.audit.of_type(AuditEventType::AuthnLoginSuccess);
    assert_eq!(success.len(), 1);
    assert_eq!(success[0]["user_id"], user["id"]);
    assert_eq!(success[0]["resource_id"], claims["jti"]);
}

#[tokio::test]
async fn refresh_issues_a_new_token_and_revokes_the_old_one() {
    let s = TestServer::start().await;
    let old = s.token(None).await;
    let reply = post_bearer(&s, "/api/v1/auth/refresh", &old).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["tokenType"], "Bearer");
    let new = reply.body["token"].as_str().unwrap().to_owned();
    assert_ne!(claims_of(&new)["jti"], claims_of(&old)["jti"]);
    assert_eq!(
        reply.body["user"]["id"],
        claims_of(&old)["userId"],
        "same principal"
    );
    assert_token_accepted(&s, &new, "refreshed token").await;
    assert_token_refused(&s, &old, "revoked", "J9: token replaced by refresh").await;
    // A revoked token cannot refresh either.
    let again = post_bearer(&s, "/api/v1/auth/refresh", &old).await;
    assert_unauthorized(&again, true);
    s.state.auditor.flush().await;
    let refreshed = s.audit.of_type(AuditEventType::AuthnTokenRefreshed);
    assert_eq!(refreshed.len(), 1);
    assert_eq!(
        refreshed[0]["extra"]["replaces.jti"],
        claims_of(&old)["jti"]
    );
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let other = s.token(None).await;
    let reply = post_bearer(&s, "/api/v1/auth/logout", &token).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body, json!({"revoked": true}));
    assert_token_refused(&s, &token, "revoked", "J9: token after logout").await;
    let again = post_bearer(&s, "/api/v1/auth/logout", &token).await;
    assert_unauthorized(&again, true);
    // Another token of the same key is unaffected.
    assert_token_accepted(&s, &other, "other token").await;
    s.state.auditor.flush().await;
    let revoked = s.audit.of_type(AuditEventType::AuthnTokenRevoked);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["resource_id"], claims_of(&token)["jti"]);
}

#[tokio::test]
async fn refresh_and_logout_need_a_token() {
    let s = TestServer::start().await;
    for path in ["/api/v1/auth/refresh", "/api/v1/auth/logout"] {
        let reply = read(s.http.post(s.url(path)).send().await.unwrap()).await;
        assert_unauthorized(&reply, false);
    }
    let reply = mcp_with(&s, "/mcp", &[]).await;
    assert_unauthorized(&reply, false);
    assert!(
        invalid_token_reasons(&s).await.is_empty(),
        "no token, no audit"
    );
}

#[tokio::test]
async fn permissions_narrow_to_the_intersection() {
    let s = TestServer::start().await;
    let reply = login(
        &s,
        login_body(
            &s,
            json!({"permissions": ["read:agents", "write:knowledge-bases"]}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["user"]["permissions"], json!(["read:agents"]));
    let token = reply.body["token"].as_str().unwrap();
    assert_eq!(claims_of(token)["permissions"], json!(["read:agents"]));
    // The narrowed token lists only what it may use.
    let listed = mcp_bearer(&s, token).await;
    let names: Vec<&str> = listed.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"list_agents"), "{names:?}");
    assert!(!names.contains(&"upsert_document"), "{names:?}");
    assert!(!names.contains(&"search_knowledge"), "{names:?}");

    let empty = login(&s, login_body(&s, json!({"permissions": []}))).await;
    assert_eq!(empty.status, 200, "{}", empty.text);
    assert_eq!(empty.body["user"]["permissions"], json!([]));
}

#[tokio::test]
async fn unknown_permission_is_refused() {
    let s = TestServer::start().await;
    let reply = login(
        &s,
        login_body(
            &s,
            json!({"permissions": ["read:agents", "admin:everything"]}),
        ),
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_envelope(&reply, "invalid_request");
    assert!(reply.body.get("token").is_none());
    assert!(
        s.state
            .tokens
            .count_live_for_user(s.sim.workspace_id(), &user_id(&s), s.now_secs())
            .await
            .unwrap()
            == 0
    );
}

/// The `usr_…` id of the simulator's key on this server.
fn user_id(s: &TestServer) -> String {
    mcp_dust_server::auth::Principal::user_id_for_key(
        keys().fingerprint(),
        &mcp_dust_server::dust::DustCredentials::new(s.sim.workspace_id(), s.sim.api_key()),
    )
}

#[tokio::test]
async fn token_is_refused_after_security_token_expiration() {
    let s = TestServer::start_with(&[("SECURITY_TOKEN_EXPIRATION", "120")]).await;
    let reply = login(&s, login_body(&s, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.body["token"].as_str().unwrap().to_owned();
    let claims = claims_of(&token);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        120
    );
    s.clock.advance(Duration::from_secs(100));
    assert_token_accepted(&s, &token, "within the lifetime").await;
    s.clock.advance(Duration::from_secs(60) + LEEWAY);
    assert_token_refused(&s, &token, "expired", "past the lifetime and the leeway").await;
}

// ---------------------------------------------------------------------------------------------
// §4.1 JWT (J)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn j1_alg_none_is_refused() {
    let s = TestServer::start().await;
    let (token, claims) = token_and_claims(&s).await;
    let payload = b64(claims.to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"mcp-dust+jwt"}}"#));
        let unsigned = format!("{header}.{payload}.");
        assert_token_refused(&s, &unsigned, "alg", &format!("alg {alg}, empty signature")).await;
        let bogus = format!("{header}.{payload}.{}", signature_of(&token));
        assert_token_refused(&s, &bogus, "alg", &format!("alg {alg}, bogus signature")).await;
    }
    // Without typ, and as a two-segment token.
    let header = b64(r#"{"alg":"none"}"#);
    assert_token_refused(
        &s,
        &format!("{header}.{payload}."),
        "alg",
        "alg none, no typ",
    )
    .await;
    assert_token_refused(
        &s,
        &format!("{header}.{payload}"),
        "malformed",
        "two segments",
    )
    .await;
    // The genuine token still works: nothing above disturbed it.
    assert_token_accepted(&s, &token, "genuine").await;
}

#[tokio::test]
async fn j2_algorithm_confusion_is_refused() {
    let s = TestServer::start().await;
    let (token, claims) = token_and_claims(&s).await;
    let payload = claims.to_string();
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "HS256 ", "hs256"] {
        let header = format!(r#"{{"alg":"{alg}","typ":"mcp-dust+jwt"}}"#);
        let forged = format!("{}.{}.{}", b64(&header), b64(&payload), b64([7u8; 64]));
        assert_token_refused(&s, &forged, "alg", &format!("alg {alg}")).await;
        // Signed with the real key under the foreign name: still one key, one algorithm.
        let with_real_key = sign_with(&jwt_key(), &header, &payload);
        assert_token_refused(&s, &with_real_key, "alg", &format!("alg {alg}, real key")).await;
    }
    let empty_key = sign_with(b"", HEADER, &payload);
    assert_token_refused(&s, &empty_key, "signature", "HMAC with an empty key").await;
    let public_key = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n";
    let confused = sign_with(public_key.as_bytes(), HEADER, &payload);
    assert_token_refused(&s, &confused, "signature", "HMAC with a public key").await;
    let with_secret = sign_with(SECRET.as_bytes(), HEADER, &payload);
    assert_token_refused(&s, &with_secret, "signature", "HMAC with the root secret").await;
    assert_token_accepted(&s, &token, "genuine").await;
}

#[tokio::test]
async fn j3_same_secret_other_hmac_algorithm_is_refused() {
    let s = TestServer::start().await;
    let (_, claims) = token_and_claims(&s).await;
    let payload = b64(claims.to_string());
    let key = jwt_key();
    let h384 = b64(r#"{"alg":"HS384","typ":"mcp-dust+jwt"}"#);
    let input = format!("{h384}.{payload}");
    let mut mac = <Hmac<Sha384> as Mac>::new_from_slice(&key).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
    assert_token_refused(&s, &token, "alg", "HS384 with the real key").await;
    let h512 = b64(r#"{"alg":"HS512","typ":"mcp-dust+jwt"}"#);
    let input = format!("{h512}.{payload}");
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(&key).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64(mac.finalize().into_bytes()));
    assert_token_refused(&s, &token, "alg", "HS512 with the real key").await;
}

#[tokio::test]
async fn j4_wrong_signature_is_refused() {
    let s = TestServer::start().await;
    let (token, claims) = token_and_claims(&s).await;
    let input = signing_input(&token);
    let mut signature = unb64(signature_of(&token));
    signature[5] ^= 0x01;
    let flipped = format!("{input}.{}", b64(&signature));
    assert_token_refused(&s, &flipped, "signature", "one flipped bit").await;
    let other_key = sign_with(&[0x42; 32], HEADER, &claims.to_string());
    assert_token_refused(&s, &other_key, "signature", "another 256-bit key").await;
    let genuine = unb64(signature_of(&token));
    let truncated = format!("{input}.{}", b64(&genuine[..16]));
    assert_token_refused(&s, &truncated, "signature", "truncated signature").await;
    let empty = format!("{input}.");
    assert_token_refused(&s, &empty, "signature", "empty third segment").await;
    let jwe = format!(
        "{}.{}.{}.{}.{}",
        b64(r#"{"alg":"dir","enc":"A256GCM"}"#),
        "",
        b64([1u8; 12]),
        b64(claims.to_string()),
        b64([2u8; 16])
    );
    assert_token_refused(&s, &jwe, "malformed", "JWE-shaped five segments").await;
    let four = format!("{token}.{}", signature_of(&token));
    assert_token_refused(&s, &four, "malformed", "four segments").await;
    assert_token_accepted(&s, &token, "genuine").await;
}

#[tokio::test]
async fn j5_payload_tampering_is_refused() {
    let s = TestServer::start().await;
    let (token, claims) = token_and_claims(&s).await;
    let signature = signature_of(&token);
    let mut more = claims.clone();
    more["permissions"]
        .as_array_mut()
        .unwrap()
        .push(json!("write:knowledge-bases"));
    let tampered = format!("{}.{}.{signature}", b64(HEADER), b64(more.to_string()));
    assert_token_refused(&s, &tampered, "signature", "a permission added").await;
    let mut moved = claims.clone();
    moved["workspaceId"] = json!(s.sim.other_workspace_id());
    let tampered = format!("{}.{}.{signature}", b64(HEADER), b64(moved.to_string()));
    assert_token_refused(&s, &tampered, "signature", "workspaceId changed").await;
    // The record is authoritative even for a validly signed token: claims naming another
    // workspace than the token's record are refused.
    assert_token_refused(
        &s,
        &resign(&moved),
        "claims_mismatch",
        "re-signed, other workspace",
    )
    .await;
    // Permissions come from the record, not from the (signed) claims.
    let escalated = resign(&more);
    let reply = s
        .call_tool(
            &escalated,
            "upsert_document",
            json!({"knowledgeBaseId": "dts_x", "documentId": "d", "text": "t"}),
        )
        .await;
    assert_eq!(reply.0, 403, "{}", reply.1);
    assert!(
        reply.1.get("error").is_some() || reply.1["result"]["isError"] == true,
        "a permission only in the claims must not be honoured: {}",
        reply.1
    );
    assert!(
        !s.sim.requests().iter().any(|r| r.method != "GET"),
        "no write reached Dust"
    );
}

#[tokio::test]
async fn j6_expiry_boundaries_with_the_manual_clock() {
    let s = TestServer::start_with(&[("SECURITY_TOKEN_EXPIRATION", "60")]).await;
    let (token, claims) = token_and_claims(&s).await;
    let exp = claims["exp"].as_i64().unwrap();
    let leeway = LEEWAY.as_secs() as i64;
    assert!(leeway <= 30, "the catalogue's ceiling");
    let at = |t: i64| UNIX_EPOCH + Duration::from_secs(t as u64);
    // The JWT check alone honours the documented leeway on both sides of the boundary.
    assert!(s.state.jwt.verify(&token, at(exp + leeway - 1)).is_ok());
    assert!(s.state.jwt.verify(&token, at(exp + leeway)).is_ok());
    assert_eq!(
        s.state
            .jwt
            .verify(&token, at(exp + leeway + 1))
            .unwrap_err(),
        mcp_dust_server::auth::jwt::TokenError::Expired
    );
    // End to end: accepted just before exp.
    let to = |target: i64| Duration::from_secs((target - now_secs(&s)) as u64);
    s.clock.advance(to(exp - 1));
    assert_token_accepted(&s, &token, "exp - 1").await;
    // Within the leeway the token is still refused: its server-side record expires exactly
    // at exp (the leeway is for clock skew on a token's own claims, the record is ours).
    s.clock.advance(to(exp + leeway - 1));
    assert_token_refused(&s, &token, "expired", "exp + leeway - 1 (record expired)").await;
    s.clock.advance(to(exp + leeway + 1));
    assert_token_refused(&s, &token, "expired", "exp + leeway + 1").await;
}

#[tokio::test]
async fn j7_not_yet_valid_is_refused() {
    let s = TestServer::start().await;
    let (_, claims) = token_and_claims(&s).await;
    let now = now_secs(&s);
    let leeway = LEEWAY.as_secs() as i64;
    let mut later = claims.clone();
    later["nbf"] = json!(now + 300);
    assert_token_refused(&s, &resign(&later), "not_yet_valid", "nbf = now + 300").await;
    let mut later = claims.clone();
    later["iat"] = json!(now + 300);
    assert_token_refused(&s, &resign(&later), "not_yet_valid", "iat = now + 300").await;
    let mut skewed = claims.clone();
    skewed["nbf"] = json!(now + leeway + 2);
    assert_token_refused(&s, &resign(&skewed), "not_yet_valid", "nbf past the leeway").await;
    // Inside the leeway (another instance's clock a little ahead) the token is accepted.
    let mut skewed = claims.clone();
    skewed["nbf"] = json!(now + leeway - 2);
    skewed["iat"] = json!(now + leeway - 2);
    assert_token_accepted(&s, &resign(&skewed), "nbf and iat within the leeway").await;
    // And once the clock reaches nbf, the nbf = now + 300 token is good.
    let mut later = claims.clone();
    later["nbf"] = json!(now + 300);
    s.clock.advance(Duration::from_secs(300));
    assert_token_accepted(&s, &resign(&later), "clock reached nbf").await;
}

#[tokio::test]
async fn j8_missing_or_ill_typed_claims_are_refused_never_500() {
    let s = TestServer::start().await;
    let (_, claims) = token_and_claims(&s).await;
    type Mutation = Box<dyn Fn(&mut Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        (
            "no exp",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("exp"))),
        ),
        (
            "no tokenId",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("tokenId"))),
        ),
        (
            "no jti",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("jti"))),
        ),
        (
            "no iss",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("iss"))),
        ),
        (
            "no aud",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("aud"))),
        ),
        (
            "no nbf",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("nbf"))),
        ),
        (
            "no userId",
            Box::new(|c| drop(c.as_object_mut().unwrap().remove("userId"))),
        ),
        (
            "permissions as a string",
            Box::new(|c| c["permissions"] = json!("read:agents")),
        ),
        (
            "unknown permission",
            Box::new(|c| c["permissions"] = json!(["admin:all"])),
        ),
        (
            "workspaceId null",
            Box::new(|c| c["workspaceId"] = Value::Null),
        ),
        (
            "exp as a string",
            Box::new(|c| c["exp"] = json!("9999999999")),
        ),
        ("exp 1e300", Box::new(|c| c["exp"] = json!(1e300))),
        (
            "exp past i64",
            Box::new(|c| c["exp"] = json!(9_223_372_036_854_775_808u64)),
        ),
        ("exp negative", Box::new(|c| c["exp"] = json!(-1))),
        (
            "jti differs from tokenId",
            Box::new(|c| c["jti"] = json!("tok_other")),
        ),
        (
            "aud as an array",
            Box::new(|c| c["aud"] = json!([c["aud"].clone()])),
        ),
    ];
    for (case, mutate) in &mutations {
        let mut forged = claims.clone();
        mutate(&mut forged);
        let token = resign(&forged);
        let reply = mcp_bearer(&s, &token).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        assert_unauthorized(&reply, true);
    }
    // "exp negative" is well-typed, so its reason is expiry; the rest are claim errors.
    let reasons = invalid_token_reasons(&s).await;
    assert_eq!(reasons.len(), mutations.len());
    for ((case, _), reason) in mutations.iter().zip(&reasons) {
        let expected = match *case {
            "exp negative" => "expired",
            _ => "claims",
        };
        assert_eq!(reason, expected, "{case}");
    }
    // Unknown extra claims are ignored.
    let mut extra = claims.clone();
    extra["email"] = json!("mallory@example.com");
    extra["admin"] = json!(true);
    assert_token_accepted(&s, &resign(&extra), "unknown claims").await;
    // Duplicate members: the first or last value must never win silently.
    let text = claims.to_string();
    let body = text.strip_suffix('}').unwrap();
    for duplicate in [
        format!(r#"{body},"workspaceId":"{}"}}"#, s.sim.other_workspace_id()),
        format!(r#"{body},"workspaceId":{}}}"#, claims["workspaceId"]),
        format!(r#"{body},"exp":9999999999}}"#),
        format!(r#"{body},"permissions":["write:knowledge-bases"]}}"#),
    ] {
        let token = sign_with(&jwt_key(), HEADER, &duplicate);
        assert_token_refused(&s, &token, "claims", "duplicate member").await;
    }
    // Not JSON at all, or not an object.
    for payload in ["not json", "[]", "null", "\"x\""] {
        let token = sign_with(&jwt_key(), HEADER, payload);
        assert_token_refused(&s, &token, "claims", payload).await;
    }
    // A duplicated header member.
    let header = r#"{"alg":"HS256","typ":"mcp-dust+jwt","alg":"none"}"#;
    let token = sign_with(&jwt_key(), header, &claims.to_string());
    assert_token_refused(&s, &token, "malformed", "duplicate header member").await;
}

#[tokio::test]
async fn j9_revoked_token_id_is_refused_after_logout_and_refresh() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let reply = post_bearer(&s, "/api/v1/auth/logout", &token).await;
    assert_eq!(reply.status, 200);
    assert_token_refused(&s, &token, "revoked", "after logout").await;
    // A re-signed token naming the revoked tokenId is refused too (revocation is by jti).
    let mut claims = claims_of(&token);
    claims["username"] = json!("someone-else");
    assert_token_refused(&s, &resign(&claims), "revoked", "re-signed, revoked jti").await;
    let old = s.token(None).await;
    let reply = post_bearer(&s, "/api/v1/auth/refresh", &old).await;
    assert_eq!(reply.status, 200);
    assert_token_refused(&s, &old, "revoked", "after refresh").await;
    // Reuse of a revoked token is audited as such, at high severity.
    s.state.auditor.flush().await;
    let reuse: Vec<Value> = s
        .audit
        .of_type(AuditEventType::AuthnTokenReuse)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == "revoked")
        .collect();
    assert_eq!(reuse.len(), 3);
    assert!(reuse.iter().all(|r| r["severity"] == "high"));
    // An unknown tokenId (never issued) is refused as such.
    let mut unknown = claims_of(&old);
    unknown["jti"] = json!("tok_AAAAAAAAAAAAAAAAAAAAAA");
    unknown["tokenId"] = unknown["jti"].clone();
    assert_token_refused(&s, &resign(&unknown), "unknown_token", "never issued").await;
}

#[tokio::test]
async fn j10_malleated_copies_of_a_revoked_token_are_refused() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    let malleated = |token: &str| -> Vec<(&'static str, String)> {
        let input = signing_input(token);
        let signature = signature_of(token);
        // 32 bytes → 43 characters; the last one carries 2 spare bits.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let last = signature.as_bytes()[signature.len() - 1];
        let index = ALPHABET.iter().position(|c| *c == last).unwrap();
        let spare = char::from(ALPHABET[index ^ 1]);
        let mut cases = vec![
            (
                "non-canonical last character",
                format!("{input}.{}{spare}", &signature[..signature.len() - 1]),
            ),
            ("padding appended", format!("{token}=")),
            ("padding in the payload", {
                let (h, rest) = token.split_once('.').unwrap();
                let (p, sig) = rest.split_once('.').unwrap();
                format!("{h}.{p}==.{sig}")
            }),
        ];
        let standard = token.replace('-', "+").replace('_', "/");
        if standard != token {
            cases.push(("standard base64 alphabet", standard));
        }
        cases
    };
    // Strict base64url refuses each re-encoding even while the token is live.
    // (A bad signature segment reads as a bad signature, a bad header or payload as malformed.)
    for (case, copy) in malleated(&token) {
        assert_ne!(copy, token);
        let reply = mcp_bearer(&s, &copy).await;
        assert_unauthorized(&reply, true);
        let reasons = invalid_token_reasons(&s).await;
        let reason = reasons.last().unwrap();
        assert!(
            ["malformed", "signature"].contains(&reason.as_str()),
            "{case}: {reason}"
        );
    }
    assert_token_accepted(&s, &token, "genuine").await;
    let reply = post_bearer(&s, "/api/v1/auth/logout", &token).await;
    assert_eq!(reply.status, 200);
    for (case, copy) in malleated(&token) {
        let reply = mcp_bearer(&s, &copy).await;
        assert_unauthorized(&reply, true);
        assert_eq!(reply.status, 401, "{case}");
    }
    // Header re-serialized with whitespace: same jti, new token string, still revoked.
    let spaced = sign_with(
        &jwt_key(),
        r#"{ "alg": "HS256", "typ": "mcp-dust+jwt" }"#,
        &claims_of(&token).to_string(),
    );
    assert_token_refused(&s, &spaced, "revoked", "header with whitespace, re-signed").await;
    let with_original_signature = format!(
        "{}.{}.{}",
        b64(r#"{ "alg": "HS256", "typ": "mcp-dust+jwt" }"#),
        token.split('.').nth(1).unwrap(),
        signature_of(&token)
    );
    assert_token_refused(
        &s,
        &with_original_signature,
        "signature",
        "header with whitespace",
    )
    .await;
}

#[tokio::test]
async fn j11_header_steered_keys_are_refused_without_outbound_requests() {
    let mock = wiremock::MockServer::start().await;
    let s = TestServer::start().await;
    let (_, claims) = token_and_claims(&s).await;
    let payload = claims.to_string();
    let jwks = format!("{}/jwks", mock.uri());
    let members = [
        r#""kid":"../../dev/null""#.to_owned(),
        r#""kid":"' OR '1'='1""#.to_owned(),
        r#""kid":"""#.to_owned(),
        format!(r#""jku":"{jwks}""#),
        r#""jwk":{"kty":"oct","k":"AAAA"}"#.to_owned(),
        format!(r#""x5u":"{jwks}""#),
        r#""x5c":["MIIBAA=="]"#.to_owned(),
        r#""x5t":"AAAA""#.to_owned(),
        r#""crit":["exp"]"#.to_owned(),
        r#""cty":"JWT""#.to_owned(),
        r#""b64":false"#.to_owned(),
    ];
    for member in &members {
        let header = format!(r#"{{"alg":"HS256","typ":"mcp-dust+jwt",{member}}}"#);
        // Signed with the real key: the header member alone is the reason for refusal.
        let token = sign_with(&jwt_key(), &header, &payload);
        assert_token_refused(&s, &token, "malformed", member).await;
        // And with the key the header names (an empty "oct" key).
        let token = sign_with(&[0, 0, 0], &header, &payload);
        assert_token_refused(&s, &token, "malformed", member).await;
    }
    assert!(
        mock.received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "the server fetched a key from a URL in a token header"
    );
}

#[tokio::test]
async fn j12_cross_jwt_and_cross_deployment_tokens_are_refused() {
    let s = TestServer::start().await;
    let (token, claims) = token_and_claims(&s).await;
    assert_eq!(claims["iss"], s.state.public_url.as_str());
    assert_eq!(claims["aud"], format!("{}/mcp", s.state.public_url));
    let mut other_aud = claims.clone();
    other_aud["aud"] = json!("https://other-service.example.com/api");
    assert_token_refused(
        &s,
        &resign(&other_aud),
        "audience",
        "aud of another service",
    )
    .await;
    let mut bare_aud = claims.clone();
    bare_aud["aud"] = json!(s.state.public_url.as_str());
    assert_token_refused(&s, &resign(&bare_aud), "audience", "aud without /mcp").await;
    let mut staging = claims.clone();
    staging["iss"] = json!("https://staging.example.com");
    assert_token_refused(&s, &resign(&staging), "issuer", "iss of staging").await;
    for typ in [
        r#"{"alg":"HS256","typ":"JWT"}"#,
        r#"{"alg":"HS256","typ":"at+jwt"}"#,
        r#"{"alg":"HS256","typ":"mcp-dust+csrf"}"#,
        r#"{"alg":"HS256"}"#,
        r#"{"alg":"HS256","typ":null}"#,
    ] {
        let forged = sign_with(&jwt_key(), typ, &claims.to_string());
        assert_token_refused(&s, &forged, "typ", typ).await;
    }
    // The other derived keys (CSRF, fingerprint, at-rest) do not sign access tokens.
    let keys = keys();
    for (name, key) in [
        ("csrf key", keys.csrf_signing()),
        ("fingerprint key", keys.fingerprint()),
        ("at-rest key", keys.at_rest()),
    ] {
        let forged = sign_with(key, HEADER, &claims.to_string());
        assert_token_refused(&s, &forged, "signature", name).await;
    }
    // A CSRF-style HMAC blob that happens to have three dot-separated parts.
    let blob = format!(
        "{}.{}.{}",
        b64("session-id"),
        b64("1700000000"),
        b64(hs256(keys.csrf_signing(), b"session-id.1700000000"))
    );
    assert_token_refused(&s, &blob, "malformed", "CSRF-shaped blob").await;
    assert_token_accepted(&s, &token, "genuine").await;
}

#[tokio::test]
async fn j13_oversized_tokens_are_refused_quickly() {
    let s = TestServer::start().await;
    for size in [8 * 1024, 64 * 1024] {
        let token = "a".repeat(size);
        let started = Instant::now();
        let reply = mcp_bearer(&s, &token).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{size}: {:?}",
            started.elapsed()
        );
        assert_unauthorized(&reply, true);
    }
    // 1 MiB: the HTTP layer refuses the head (431) or closes the connection.
    let token = "a".repeat(1024 * 1024);
    let started = Instant::now();
    let sent = s
        .http
        .post(s.url("/mcp"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&tools_list())
        .send()
        .await;
    assert!(started.elapsed() < Duration::from_secs(2));
    if let Ok(response) = sent {
        assert!(
            [400, 401, 431].contains(&response.status().as_u16()),
            "{}",
            response.status()
        );
    }
    // Ten thousand dots.
    let dots = ".".repeat(10_000);
    assert_token_refused(&s, &dots, "too_large", "10,000 dots").await;
    let dots = ".".repeat(5_000);
    assert_token_refused(&s, &dots, "malformed", "5,000 dots").await;
    // The server is still fine.
    let (token, _) = token_and_claims(&s).await;
    assert_token_accepted(&s, &token, "after the flood").await;
    let reasons = invalid_token_reasons(&s).await;
    assert_eq!(reasons[..2], ["too_large", "too_large"]);
}

#[tokio::test]
async fn j14_token_in_the_url_is_not_accepted() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    for query in ["token", "access_token", "jwt", "bearer", "authorization"] {
        let path = format!("/mcp?{query}={token}");
        let reply = mcp_with(&s, &path, &[]).await;
        assert_unauthorized(&reply, false);
        assert!(!reply.text.contains(&token));
    }
    let reply = mcp_with(&s, &format!("/mcp/{token}"), &[]).await;
    assert!(
        [401, 404].contains(&reply.status),
        "token in a path segment: {}",
        reply.status
    );
    assert!(!reply.text.contains(&token));
    // With no Authorization header nothing is audited as a token; the token string appears in
    // no audit record either way.
    assert!(!audit_text(&s).await.contains(&token));
    let signature = signature_of(&token);
    assert!(!audit_text(&s).await.contains(signature));
}

#[tokio::test]
async fn j15_scheme_variants() {
    let s = TestServer::start().await;
    let token = s.token(None).await;
    for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
        let reply = mcp_with(&s, "/mcp", &[&format!("{scheme} {token}")]).await;
        assert_eq!(reply.status, 200, "{scheme}: {}", reply.text);
    }
    let cases: [(&str, Vec<String>, &str); 7] = [
        (
            "Basic",
            vec![format!("Basic {}", b64("user:pass"))],
            "scheme",
        ),
        (
            "Basic with the token",
            vec![format!("Basic {token}")],
            "scheme",
        ),
        (
            "double space",
            vec![format!("Bearer  {token}")],
            "malformed",
        ),
        (
            "tab instead of a space",
            vec![format!("Bearer\t{token}")],
            "malformed",
        ),
        ("no token", vec!["Bearer".to_owned()], "malformed"),
        ("empty token", vec!["Bearer ".to_owned()], "malformed"),
        (
            "two Authorization headers",
            vec![format!("Bearer {token}"), format!("Bearer {token}")],
            "duplicate_header",
        ),
    ];
    for (case, values, reason) in &cases {
        let before = invalid_token_reasons(&s).await.len();
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let reply = mcp_with(&s, "/mcp", &values).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        assert_unauthorized(&reply, true);
        let reasons = invalid_token_reasons(&s).await;
        assert_eq!(reasons.len(), before + 1, "{case}");
        assert_eq!(reasons.last().unwrap(), reason, "{case}");
    }
    // A valid token next to a hostile one in a second header is still refused.
    let reply = mcp_with(&s, "/mcp", &[&format!("Bearer {token}"), "Basic eDp5"]).await;
    assert_unauthorized(&reply, true);
}

/// A Dust stand-in that records the `Authorization` header of every request and forwards it
/// to the simulator (whose own log keeps only whether the header was present).
struct RecordingProxy {
    target: String,
    client: reqwest::Client,
    seen: Mutex<Vec<Option<String>>>,
}

async fn recording_proxy(target: String) -> (String, Arc<RecordingProxy>) {
    async fn forward(
        axum::extract::State(proxy): axum::extract::State<Arc<RecordingProxy>>,
        request: axum::extract::Request,
    ) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let authorization = parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned());
        proxy.seen.lock().unwrap().push(authorization);
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut out = proxy
            .client
            .request(parts.method.clone(), format!("{}{target}", proxy.target))
            .body(bytes);
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                out = out.header(name, value);
            }
        }
        let answer = out.send().await.unwrap();
        let status = answer.status();
        let mut response = axum::response::Response::new(axum::body::Body::from(
            answer.bytes().await.unwrap_or_default(),
        ));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        response
    }
    let proxy = Arc::new(RecordingProxy {
        target,
        client: reqwest::Client::new(),
        seen: Mutex::new(Vec::new()),
    });
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, proxy)
}

#[tokio::test]
async fn j16_no_token_passthrough_in_either_direction() {
    let sim = sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let (proxy_url, proxy) = recording_proxy(sim.base_url()).await;
    let s = TestServer::start_on(sim, &[], Some(&proxy_url)).await;
    // A Dust key as the bearer token is refused before anything reaches Dust.
    for key in [s.sim.api_key().to_owned(), s.sim.other_api_key().to_owned()] {
        assert_token_refused(&s, &key, "dust_key", "a Dust key as bearer").await;
    }
    assert!(proxy.seen.lock().unwrap().is_empty());
    // Upstream sees the server-held Dust key, never the client's token.
    let token = s.token(None).await;
    let (status, body) = s.call_tool(&token, "list_agents", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["result"]["isError"], true, "{body}");
    let seen = proxy.seen.lock().unwrap().clone();
    assert!(
        seen.len() >= 2,
        "the login check and the tool call: {seen:?}"
    );
    let expected = format!("Bearer {}", s.sim.api_key());
    for value in &seen {
        let value = value.as_deref().expect("an Authorization header upstream");
        assert_eq!(value, expected);
        assert!(!value.contains("eyJ"));
        assert!(!value.contains(&token));
    }
}

#[tokio::test]
async fn j17_production_start_is_refused_with_a_weak_secret() {
    use std::collections::BTreeMap;
    // In process: the start check names the setting, never the value.
    let config_for = |secret: Option<&str>| {
        let mut env = BTreeMap::from([
            ("NODE_ENV", "production".to_owned()),
            ("MCP_PUBLIC_URL", "https://mcp.example.com".to_owned()),
        ]);
        if let Some(secret) = secret {
            env.insert("SECURITY_SECRET_KEY", secret.to_owned());
        }
        mcp_dust_server::config::Config::from_sources(&BTreeMap::new(), |name| {
            env.get(name).cloned()
        })
        .unwrap()
    };
    let weak = [
        Some("changeme-canary"),
        Some("Xk9#canary"),
        Some("canarycanarycanarycanarycanarycanary"),
        Some("your-secret-key-canary-change-in-production-please"),
        None,
    ];
    for secret in weak {
        let error = mcp_dust_server::serve::check_config(&config_for(secret))
            .expect_err("a weak secret must stop a production start")
            .to_string();
        assert!(error.contains("SECURITY_SECRET_KEY"), "{error}");
        assert!(!error.contains("canary"), "the value leaked: {error}");
    }
    assert!(mcp_dust_server::serve::check_config(&config_for(Some(SECRET))).is_ok());

    // The binary exits non-zero, before listening, with the same kind of message.
    for secret in weak {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"));
        command
            .arg("serve")
            .env_clear()
            .env("NODE_ENV", "production")
            .env("MCP_PUBLIC_URL", "https://mcp.example.com")
            .env("MCP_SERVER_PORT", "0")
            .env("LOG_LEVEL", "warn")
            .kill_on_drop(true);
        if let Some(secret) = secret {
            command.env("SECURITY_SECRET_KEY", secret);
        }
        let output = tokio::time::timeout(Duration::from_secs(30), command.output())
            .await
            .expect("the server started instead of refusing")
            .unwrap();
        assert!(!output.status.success(), "{secret:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stderr.contains("SECURITY_SECRET_KEY"), "{stderr}");
        assert!(!stderr.contains("canary") && !stdout.contains("canary"));
    }
}

// ---------------------------------------------------------------------------------------------
// §4.2 API key and exchange endpoint (K)
// ---------------------------------------------------------------------------------------------

/// Logs in with `key` and expects 400 before any upstream call, the key echoed nowhere.
async fn assert_format_refused(s: &TestServer, key: &str, case: &str) {
    let upstream = s.sim.requests().len();
    let reply = login(
        s,
        json!({"apiKey": key, "workspaceId": s.sim.workspace_id()}),
    )
    .await;
    assert_eq!(reply.status, 400, "{case}: {}", reply.text);
    assert_envelope(&reply, "invalid_request");
    assert!(reply.body.get("token").is_none());
    if key.len() >= 8 {
        assert!(!reply.text.contains(key), "{case}: key echoed");
        assert!(!audit_text(s).await.contains(key), "{case}: key audited");
    }
    assert_eq!(s.sim.requests().len(), upstream, "{case}: Dust was called");
    assert_eq!(
        login_fail_reasons(s).await.last().map(String::as_str),
        Some("format"),
        "{case}"
    );
}

/// A random well-formed Dust-style key the simulator does not know.
fn random_key() -> String {
    format!("sk-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn k1_key_length_and_padding_are_refused_before_upstream() {
    let s = TestServer::start().await;
    let key = s.sim.api_key().to_owned();
    for (case, bad) in [
        ("31 characters", "a".repeat(31)),
        ("65 characters", "a".repeat(65)),
        ("empty", String::new()),
        ("leading space", format!(" {key}")),
        ("trailing newline", format!("{key}\n")),
        ("trailing space", format!("{key} ")),
        ("leading tab", format!("\t{key}")),
    ] {
        assert_format_refused(&s, &bad, case).await;
    }
    // The genuine key, exactly as issued, still logs in: nothing above locked it.
    assert_eq!(login(&s, login_body(&s, json!({}))).await.status, 200);
}

#[tokio::test]
async fn k2_bad_characters_are_refused_and_not_echoed() {
    let s = TestServer::start().await;
    let key = s.sim.api_key().to_owned();
    let with = |c: &str| format!("{}{c}{}", &key[..20], &key[21..]);
    for (case, bad) in [
        ("plus", with("+")),
        ("slash", with("/")),
        ("equals", with("=")),
        ("dot", with(".")),
        ("Cyrillic s", format!("ѕk-{}", &key[3..])),
        ("NUL", with("\0")),
        ("CR LF", with("\r\n")),
        ("encoded CR LF", with("%0d%0a")),
        ("percent", with("%")),
    ] {
        assert_format_refused(&s, &bad, case).await;
    }
}

#[tokio::test]
async fn k3_boundary_lengths_reach_upstream() {
    let s = TestServer::start().await;
    for key in [
        "a".repeat(32),
        "b".repeat(64),
        format!("sk-{}", "0".repeat(29)),
    ] {
        let upstream = s.sim.requests().len();
        let reply = login(
            &s,
            json!({"apiKey": key, "workspaceId": s.sim.workspace_id()}),
        )
        .await;
        assert!(
            s.sim.requests().len() > upstream,
            "{} characters",
            key.len()
        );
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    assert_eq!(
        login_fail_reasons(&s).await,
        ["rejected_by_dust", "rejected_by_dust", "rejected_by_dust"]
    );
}

#[tokio::test]
async fn k4_key_rejected_upstream_is_a_generic_401() {
    let s = TestServer::start().await;
    let wrong = random_key();
    let cases = [
        (
            "unknown key",
            wrong.clone(),
            s.sim.workspace_id().to_owned(),
        ),
        (
            "key of another workspace",
            s.sim.other_api_key().to_owned(),
            s.sim.workspace_id().to_owned(),
        ),
        (
            "key on another workspace",
            s.sim.api_key().to_owned(),
            s.sim.other_workspace_id().to_owned(),
        ),
        (
            "unknown workspace",
            s.sim.api_key().to_owned(),
            "nosuchworkspace1".to_owned(),
        ),
    ];
    for (case, key, workspace) in &cases {
        let upstream = s.sim.requests().len();
        let reply = login(&s, json!({"apiKey": key, "workspaceId": workspace})).await;
        assert_eq!(reply.status, 401, "{case}: {}", reply.text);
        assert_envelope(&reply, "unauthorized");
        assert_eq!(
            reply.body["error"]["message"],
            "invalid API key or workspace"
        );
        assert!(s.sim.requests().len() > upstream, "{case}");
        assert!(reply.headers.get("set-cookie").is_none());
        assert!(!reply.text.contains("eyJ") && !reply.text.contains(key.as_str()));
        for upstream_words in ["invalid or disabled", "Only users of", "was not found"] {
            assert!(
                !reply.text.contains(upstream_words),
                "{case}: upstream body leaked"
            );
        }
    }
    s.state.auditor.flush().await;
    let failures = s.audit.of_type(AuditEventType::AuthnLoginFail);
    assert_eq!(failures.len(), cases.len());
    for record in &failures {
        assert_eq!(record["extra"]["reason"], "rejected_by_dust");
        let fingerprint = record["extra"]["key.fingerprint"].as_str().unwrap();
        assert!(fingerprint.starts_with("usr_"), "{fingerprint}");
    }
    let audit = audit_text(&s).await;
    for (_, key, _) in &cases {
        assert!(!audit.contains(key.as_str()));
        assert!(
            !audit.contains(&key[key.len() - 8..]),
            "a key fragment was audited"
        );
    }
    assert_eq!(
        s.state
            .tokens
            .count_live_for_user(s.sim.workspace_id(), &user_id(&s), s.now_secs())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn k5_upstream_down_is_503_and_issues_nothing() {
    let s = TestServer::start().await;
    s.sim.set_faults(Faults {
        error_rate: 1.0,
        ..Faults::default()
    });
    let reply = login(&s, login_body(&s, json!({}))).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_envelope(&reply, "upstream_unavailable");
    assert!(reply.body.get("token").is_none());
    assert_eq!(login_fail_reasons(&s).await, ["upstream_error"]);
    assert_eq!(
        s.state
            .tokens
            .count_live_for_user(s.sim.workspace_id(), &user_id(&s), s.now_secs())
            .await
            .unwrap(),
        0
    );
    // An outage is not the caller's failure: no lockout once Dust is back.
    s.sim.set_faults(Faults::default());
    assert_eq!(login(&s, login_body(&s, json!({}))).await.status, 200);

    // Connection refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let s = TestServer::start_on(sim, &[], Some(&closed_url)).await;
    let reply = login(&s, login_body(&s, json!({}))).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(reply.body.get("token").is_none());
}

#[tokio::test]
async fn k6_upstream_hang_ends_in_504_at_the_login_timeout() {
    let s = TestServer::start().await;
    s.sim.set_faults(Faults {
        hang_rate: 1.0,
        ..Faults::default()
    });
    let started = Instant::now();
    let reply = login(&s, login_body(&s, json!({}))).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 504, "{}", reply.text);
    assert_envelope(&reply, "upstream_timeout");
    assert!(reply.body.get("token").is_none());
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(12),
        "{waited:?}"
    );
    assert_eq!(login_fail_reasons(&s).await, ["upstream_timeout"]);
}

#[tokio::test]
async fn k6_hanging_logins_do_not_starve_other_requests() {
    let s = Arc::new(TestServer::start().await);
    let token = s.token(None).await;
    s.sim.set_faults(Faults {
        hang_rate: 1.0,
        ..Faults::default()
    });
    let upstream = s.sim.requests().len();
    let mut hanging = Vec::new();
    for _ in 0..50 {
        let s = s.clone();
        hanging.push(tokio::spawn(async move {
            let body = login_body(&s, json!({}));
            s.login_with(body).await.status().as_u16()
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(8);
    while s.sim.requests().len() < upstream + 50 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.sim.requests().len(), upstream + 50, "50 logins in flight");
    let started = Instant::now();
    let health = s.http.get(s.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_token_accepted(&s, &token, "another user's call").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    for task in &hanging {
        assert!(!task.is_finished(), "a hanging login answered early");
    }
    for task in hanging {
        task.abort();
    }
}

/// A Dust stand-in that answers every request with `status` and `body`.
async fn garbage_dust(status: u16, content_type: &str, body: Vec<u8>) -> wiremock::MockServer {
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(status).set_body_raw(body, content_type))
        .mount(&mock)
        .await;
    mock
}

async fn login_against(dust_url: &str) -> (Reply, TestServer) {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let s = TestServer::start_on(sim, &[], Some(dust_url)).await;
    let reply = login(&s, login_body(&s, json!({}))).await;
    (reply, s)
}

#[tokio::test]
async fn k7_upstream_oversized_body_issues_nothing() {
    let big = vec![b'x'; 32 * 1024 * 1024 + 1];
    let mock = garbage_dust(200, "application/json", big).await;
    let (reply, _s) = login_against(&mock.uri()).await;
    assert!([502, 503].contains(&reply.status), "{}", reply.text);
    assert!(reply.body.get("token").is_none());
}

#[tokio::test]
async fn k7_upstream_garbage_200_is_502_and_issues_nothing() {
    for (content_type, body) in [
        ("text/html", b"<html><body>Sign in</body></html>".to_vec()),
        ("application/json", br#"{"unrelated": true}"#.to_vec()),
        ("application/json", b"{not json".to_vec()),
    ] {
        let mock = garbage_dust(200, content_type, body).await;
        let (reply, _s) = login_against(&mock.uri()).await;
        assert_eq!(reply.status, 502, "{content_type}: {}", reply.text);
        assert!(reply.body.get("token").is_none());
    }
}

#[tokio::test]
async fn k9_brute_force_from_one_ip_is_locked_before_upstream() {
    let s = TestServer::start().await;
    let limit = lockout::IP_MAX_FAILURES as usize;
    for _ in 0..limit {
        let reply = login(
            &s,
            json!({"apiKey": random_key(), "workspaceId": s.sim.workspace_id()}),
        )
        .await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let upstream = s.sim.requests().len();
    assert_eq!(upstream, limit, "one upstream call per attempt");
    for _ in 0..30 {
        let reply = login(
            &s,
            json!({"apiKey": random_key(), "workspaceId": s.sim.workspace_id()}),
        )
        .await;
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert_envelope(&reply, "rate_limited");
        let retry_after: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1 && retry_after <= lockout::MAX_BACKOFF.as_secs());
    }
    // Even the right key waits while its IP is locked.
    let reply = login(&s, login_body(&s, json!({}))).await;
    assert_eq!(reply.status, 429);
    assert_eq!(
        s.sim.requests().len(),
        upstream,
        "the lock protects the Dust quota"
    );
    let reasons = login_fail_reasons(&s).await;
    assert_eq!(reasons.iter().filter(|r| *r == "throttled").count(), 31);
    let throttled = s.audit.of_type(AuditEventType::AuthnLoginFail);
    assert!(
        throttled
            .iter()
            .filter(|r| r["extra"]["reason"] == "throttled")
            .all(|r| r["severity"] == "high")
    );
    // After the backoff, the IP may try again.
    s.clock
        .advance(lockout::BASE_BACKOFF + Duration::from_secs(1));
    let reply = login(&s, login_body(&s, json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn k9_one_key_is_locked_across_ips() {
    let s = TestServer::start().await;
    let wrong = random_key();
    let body = json!({"apiKey": wrong, "workspaceId": s.sim.workspace_id()});
    for _ in 0..lockout::KEY_MAX_FAILURES {
        assert_eq!(login(&s, body.clone()).await.status, 401);
    }
    let upstream = s.sim.requests().len();
    assert_eq!(login(&s, body.clone()).await.status, 429);
    // From another loopback address the key is locked too, but another key is not.
    let other_ip = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let url = s.url("/api/v1/auth/login");
    let locked = other_ip.post(&url).json(&body).send().await.unwrap();
    assert_eq!(locked.status(), 429);
    assert_eq!(s.sim.requests().len(), upstream);
    let fresh = json!({"apiKey": random_key(), "workspaceId": s.sim.workspace_id()});
    let other = other_ip.post(&url).json(&fresh).send().await.unwrap();
    assert_eq!(other.status(), 401);
    assert_eq!(s.sim.requests().len(), upstream + 1);
}

/// L5: the per-address lockout counted IPv6 clients by full address while the rate limiter
/// keyed them by /64, so one host could rotate through its /64 and never be locked. Failures
/// from many addresses of one /64 (through a trusted proxy's `X-Forwarded-For`) now lock the
/// whole /64, before Dust is asked; the next /64 is another client.
#[tokio::test]
async fn k9_ipv6_addresses_of_one_64_share_the_lockout() {
    let s = TestServer::start_with(&[("TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let url = s.url("/api/v1/auth/login");
    let attempt = |client: String| {
        let body = json!({"apiKey": random_key(), "workspaceId": s.sim.workspace_id()});
        let request = s
            .http
            .post(&url)
            .header("X-Forwarded-For", client)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    for i in 0..lockout::IP_MAX_FAILURES {
        let status = attempt(format!("2001:db8:1:2:{i:x}:{i:x}:{i:x}:1")).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let upstream = s.sim.requests().len();
    assert_eq!(attempt("2001:db8:1:2:ffff::beef".to_owned()).await, 429);
    assert_eq!(s.sim.requests().len(), upstream, "locked before Dust");
    assert_eq!(attempt("2001:db8:1:3::1".to_owned()).await, 401);
}

#[tokio::test]
async fn k11_token_store_holds_no_key_bytes() {
    let s = TestServer::start().await;
    let key = s.sim.api_key().to_owned();
    let token = s.token(None).await;
    let records = s
        .state
        .tokens
        .list_for_user(s.sim.workspace_id(), &user_id(&s), s.now_secs())
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.token_id, claims_of(&token)["jti"]);
    let dumped = format!("{} {record:?}", serde_json::to_string(record).unwrap());
    for needle in [
        key.clone(),
        key[3..].to_owned(),
        b64(&key),
        hex::encode(&key),
    ] {
        assert!(
            !dumped.contains(&needle),
            "the store holds the key: {needle}"
        );
    }
    assert!(
        !record
            .sealed_key
            .windows(8)
            .any(|w| key.as_bytes().windows(8).any(|k| k == w)),
        "key bytes in the sealed blob"
    );
    // It is the key, sealed for this token id only.
    let opened = s
        .state
        .cipher
        .open(&record.sealed_key, &record.token_id)
        .unwrap();
    assert_eq!(secrecy::ExposeSecret::expose_secret(&opened), key);
    assert!(
        s.state
            .cipher
            .open(&record.sealed_key, "tok_other")
            .is_err()
    );
    assert!(!audit_text(&s).await.contains(&key));
}

#[tokio::test]
async fn k12_key_in_the_query_string_is_refused() {
    let s = TestServer::start().await;
    let key = s.sim.api_key().to_owned();
    for name in ["apiKey", "api_key", "apikey", "key", "token"] {
        let upstream = s.sim.requests().len();
        let response = s
            .http
            .post(s.url(&format!("/api/v1/auth/login?{name}={key}")))
            .json(&login_body(&s, json!({})))
            .send()
            .await
            .unwrap();
        let reply = read(response).await;
        assert_eq!(reply.status, 400, "{name}: {}", reply.text);
        assert_envelope(&reply, "invalid_request");
        assert!(!reply.text.contains(&key));
        assert_eq!(s.sim.requests().len(), upstream, "{name}");
    }
    assert!(
        login_fail_reasons(&s)
            .await
            .iter()
            .all(|r| r == "key_in_query")
    );
    assert!(!audit_text(&s).await.contains(&key));
}

#[tokio::test]
async fn k13_repeated_exchange_gives_distinct_token_ids_and_a_live_token_cap() {
    let s = TestServer::start().await;
    let mut tokens = Vec::new();
    for _ in 0..MAX_LIVE_TOKENS_PER_USER + 2 {
        tokens.push(s.token(None).await);
        s.clock.advance(Duration::from_secs(1));
    }
    let mut ids: Vec<String> = tokens
        .iter()
        .map(|t| claims_of(t)["jti"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), tokens.len(), "token ids repeat");
    let live = s
        .state
        .tokens
        .count_live_for_user(s.sim.workspace_id(), &user_id(&s), s.now_secs())
        .await
        .unwrap();
    assert_eq!(live, MAX_LIVE_TOKENS_PER_USER);
    // The oldest went first.
    for token in &tokens[..2] {
        assert_token_refused(&s, token, "revoked", "past the cap").await;
    }
    for token in &tokens[2..] {
        assert_token_accepted(&s, token, "within the cap").await;
    }
    // Each displaced token is audited as revoked, by id.
    s.state.auditor.flush().await;
    let capped: Vec<Value> = s
        .audit
        .of_type(AuditEventType::AuthnTokenRevoked)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == "cap")
        .collect();
    assert_eq!(capped.len(), 2);
    for (record, token) in capped.iter().zip(&tokens) {
        assert_eq!(record["resource_id"], claims_of(token)["jti"]);
    }
}

#[tokio::test]
async fn k13_revoked_tokens_do_not_count_against_the_cap() {
    let s = TestServer::start().await;
    let keeper = s.token(None).await;
    s.clock.advance(Duration::from_secs(1));
    // Another client of the same key refreshes often: every refresh leaves a revoked record.
    let mut rolling = s.token(None).await;
    for _ in 0..3 * MAX_LIVE_TOKENS_PER_USER {
        s.clock.advance(Duration::from_secs(1));
        let reply = post_bearer(&s, "/api/v1/auth/refresh", &rolling).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        rolling = reply.body["token"].as_str().unwrap().to_owned();
    }
    assert_token_accepted(&s, &keeper, "a live token of another client").await;
    assert_token_accepted(&s, &rolling, "the refreshed token").await;
}
