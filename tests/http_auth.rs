//! Hostile tests of HTTP authentication (security catalogue §4.1 J and §4.2 K): a real server on
//! 127.0.0.1:0, the simulator as Dust, a manual clock, the in-memory audit sink.
//!
//! Hostile tokens are built by hand (base64url + HMAC). Tokens that must get past the signature
//! check to test a claim rule are signed with the server's real JWT key, derived from the test
//! server's `SECURITY_SECRET_KEY` exactly as the server derives it.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant, UNIX_EPOCH},
};

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use common::http::{SECRET, TestServer};
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
    let body = common::http::parse_mcp_body(&text);
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
    assert_eq!(challenges, [expected]);
    assert_envelope(reply, "unauthorized");
}

/// The `reason` of every `authn_token_invalid` record so far.
async fn invalid_token_reasons(server: &TestServer) -> Vec<String> {
    server.state.auditor.flush().await;
    server
        .audit
        .of_type(AuditEventType::AuthnTokenInvalid)
        .iter()
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
            .count_live_for_user(s.sim.workspace_id(), &user_id(&s))
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
    assert_eq!(reply.0, 200);
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
    let mutations: Vec<(&str, Box<dyn Fn(&mut Value)>)> = vec![
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
        .of_type(AuditEventType::AuthnTokenInvalid)
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
