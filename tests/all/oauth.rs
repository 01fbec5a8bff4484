//! The OAuth 2.1 authorization server (issue 10): discovery, registration, consent, code
//! exchange, refresh rotation, revocation, and the hostile cases of the MCP security best
//! practices (confused deputy, redirect and PKCE tricks, replays, SSRF through client metadata
//! documents, CSRF on the consent). Each refusal is checked for its precise error, that
//! nothing was issued, and its audit record. A real server on 127.0.0.1:0 with the simulator
//! as Dust (two of them sharing a real Redis for the last test); the Python SDK drives the same
//! flow in tests/all/interop_python.rs and Chromium the consent page in tests/all/browser.rs.

use crate::common::http::TestServer;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mcp_dust_server::audit::AuditEventType;
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:33418/callback";

/// A client without redirects or cookies: the test reads every `Location` and cookie itself.
fn raw() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A form-encoded POST (reqwest is built without its `form` feature).
fn post_form<K: AsRef<str>, V: AsRef<str>>(
    url: String,
    pairs: &[(K, V)],
) -> reqwest::RequestBuilder {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        body.append_pair(k.as_ref(), v.as_ref());
    }
    raw()
        .post(url)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.finish())
}

/// A PKCE pair: (verifier, S256 challenge).
fn pkce(seed: &str) -> (String, String) {
    let verifier = format!("{seed}-{}", "v".repeat(60));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

async fn register(s: &TestServer, redirect_uris: &[&str]) -> reqwest::Response {
    s.http
        .post(s.url("/oauth/register"))
        .json(
            &json!({"client_name": "Test <b>client</b>", "redirect_uris": redirect_uris,
                      "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"]}),
        )
        .send()
        .await
        .unwrap()
}

async fn client_id(s: &TestServer) -> String {
    let response = register(s, &[REDIRECT]).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    body["client_id"].as_str().unwrap().to_owned()
}

/// The parameters of a valid authorization request.
fn authorize_params(client_id: &str, challenge: &str, state: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", state),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("scope", "read:workspaces read:agents execute:agents"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect()
}

fn with(
    mut params: Vec<(String, String)>,
    name: &str,
    value: Option<&str>,
) -> Vec<(String, String)> {
    params.retain(|(k, _)| k != name);
    if let Some(value) = value {
        params.push((name.to_owned(), value.to_owned()));
    }
    params
}

async fn get_authorize(s: &TestServer, params: &[(String, String)]) -> reqwest::Response {
    raw()
        .get(s.url("/oauth/authorize"))
        .query(params)
        .send()
        .await
        .unwrap()
}

/// A consent page: its cookie and hidden fields.
struct Page {
    cookie: String,
    consent: String,
    csrf: String,
    html: String,
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn consent_page(s: &TestServer, params: &[(String, String)]) -> Page {
    let response = get_authorize(s, params).await;
    assert_eq!(response.status(), 200, "consent page");
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("mcp.oauth="))
        .expect("consent cookie");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let html = response.text().await.unwrap();
    Page {
        consent: hidden(&html, "consent"),
        csrf: hidden(&html, "csrf_token"),
        cookie,
        html,
    }
}

/// Posts the consent form with `fields` (plus the page's hidden fields unless overridden).
async fn post_consent(
    s: &TestServer,
    page: &Page,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = vec![
        ("consent".into(), page.consent.clone()),
        ("csrf_token".into(), page.csrf.clone()),
    ];
    for (k, v) in fields {
        form.retain(|(name, _)| name != k);
        form.push(((*k).into(), (*v).into()));
    }
    let mut request = post_form(s.url("/oauth/authorize"), &form);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    request.send().await.unwrap()
}

fn approve_fields(s: &TestServer) -> Vec<(&'static str, String)> {
    vec![
        ("api_key", s.sim.api_key().to_owned()),
        ("workspace_id", s.sim.workspace_id().to_owned()),
        ("action", "approve".into()),
        ("scope", "read:workspaces".into()),
        ("scope", "read:agents".into()),
        ("scope", "execute:agents".into()),
    ]
}

async fn approve(s: &TestServer, page: &Page) -> reqwest::Response {
    let fields = approve_fields(s);
    let mut form: Vec<(String, String)> = vec![
        ("consent".into(), page.consent.clone()),
        ("csrf_token".into(), page.csrf.clone()),
    ];
    form.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    post_form(s.url("/oauth/authorize"), &form)
        .header(header::COOKIE, &page.cookie)
        .send()
        .await
        .unwrap()
}

/// The query parameters of a redirect's `Location`, which must go to `REDIRECT`.
fn location(response: &reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(response.status(), 302, "expected a redirect");
    let location = response.headers()[header::LOCATION].to_str().unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// An authorization request refused on our own error page: 400, no redirect, no consent
/// cookie. Returns the page.
async fn error_page(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 400, "an error page");
    assert!(
        response.headers().get(header::LOCATION).is_none(),
        "never redirected"
    );
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let html = response.text().await.unwrap();
    assert!(html.contains("cannot continue"), "{html}");
    html
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Registration, consent and approval: the code (and the flow's verifier and client id).
pub(crate) async fn code_for(s: &TestServer, state: &str) -> (String, String, String) {
    let client = client_id(s).await;
    let (verifier, challenge) = pkce(state);
    let page = consent_page(s, &authorize_params(&client, &challenge, state)).await;
    let back = location(&approve(s, &page).await);
    assert_eq!(param(&back, "state"), Some(state));
    assert_eq!(param(&back, "iss"), Some(s.base.as_str()));
    (param(&back, "code").unwrap().to_owned(), verifier, client)
}

async fn token_request(
    s: &TestServer,
    form: &[(&str, &str)],
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let response = post_form(s.url("/oauth/token"), form).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body, headers)
}

pub(crate) async fn exchange(
    s: &TestServer,
    code: &str,
    verifier: &str,
    client: &str,
) -> (StatusCode, Value) {
    let (status, body, _) = token_request(
        s,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", client),
            ("code_verifier", verifier),
            ("resource", &format!("{}/mcp", s.base)),
        ],
    )
    .await;
    (status, body)
}

pub(crate) async fn refresh(s: &TestServer, token: &str, client: &str) -> (StatusCode, Value) {
    let (status, body, _) = token_request(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", client),
        ],
    )
    .await;
    (status, body)
}

/// `tools/list` on /mcp with `token`: the status.
pub(crate) async fn mcp_status(s: &TestServer, token: &str) -> u16 {
    s.mcp(
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .await
    .0
}

async fn audited(s: &TestServer, event: AuditEventType) -> Vec<Value> {
    s.state.auditor.flush().await;
    s.audit.of_type(event)
}

fn assert_oauth_error(status: StatusCode, body: &Value, expected: StatusCode, error: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

async fn issued_count(s: &TestServer) -> usize {
    audited(s, AuditEventType::OauthTokenIssued).await.len()
}

#[tokio::test]
async fn discovery_documents_and_the_401_challenge() {
    let s = TestServer::start().await;
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let prm: Value = s
            .http
            .get(s.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(prm["resource"], format!("{}/mcp", s.base));
        assert_eq!(prm["authorization_servers"], json!([s.base]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
        assert!(
            prm["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("read:agents"))
        );
    }
    let asm: Value = s
        .http
        .get(s.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asm["issuer"], s.base);
    assert_eq!(
        asm["authorization_endpoint"],
        format!("{}/oauth/authorize", s.base)
    );
    assert_eq!(asm["token_endpoint"], format!("{}/oauth/token", s.base));
    assert_eq!(
        asm["registration_endpoint"],
        format!("{}/oauth/register", s.base)
    );
    assert_eq!(
        asm["revocation_endpoint"],
        format!("{}/oauth/revoke", s.base)
    );
    assert_eq!(asm["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        asm["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(asm["client_id_metadata_document_supported"], true);

    // 401 on /mcp names the metadata; the same for a bad token.
    for token in [None, Some("not-a-jwt")] {
        let mut request = s
            .http
            .post(s.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
                s.base
            )),
            "{challenge}"
        );
        assert!(challenge.contains("scope=\"read:workspaces"), "{challenge}");
        // The unread body ends the connection: clients must not reuse it for discovery.
        assert_eq!(response.headers()[header::CONNECTION], "close");
    }
    // The REST 401 keeps its plain challenge.
    let rest = s
        .http
        .get(s.url("/api/v1/auth/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401);
}

#[tokio::test]
async fn the_whole_flow_issues_working_tokens_and_rotates_refresh_tokens() {
    let s = TestServer::start().await;
    let (code, verifier, client) = code_for(&s, "st-full").await;
    let (status, tokens) = exchange(&s, &code, &verifier, &client).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(
        tokens["scope"],
        "read:workspaces read:agents execute:agents"
    );
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&s, access).await, 200);
    // Same JWT profile as login: audience is the /mcp URI; the record holds the key sealed.
    let claims = s.state.jwt.verify(access, s.state.now()).unwrap();
    assert_eq!(claims.aud, format!("{}/mcp", s.base));
    assert_eq!(
        claims.permissions,
        ["read:workspaces", "read:agents", "execute:agents"]
    );
    let (status, result) = s.call_tool(access, "list_agents", json!({})).await;
    assert_eq!(status, 200, "{result}");

    let first_refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, rotated) = refresh(&s, first_refresh, &client).await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["refresh_token"], tokens["refresh_token"]);
    assert_eq!(
        mcp_status(&s, rotated["access_token"].as_str().unwrap()).await,
        200
    );

    // Revocation (RFC 7009) of the current refresh token ends the grant.
    let response = post_form(
        s.url("/oauth/revoke"),
        &[
            ("token", rotated["refresh_token"].as_str().unwrap()),
            ("client_id", client.as_str()),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        mcp_status(&s, rotated["access_token"].as_str().unwrap()).await,
        401
    );
    let (status, body) = refresh(&s, rotated["refresh_token"].as_str().unwrap(), &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        audited(&s, AuditEventType::OauthConsentGranted).await.len(),
        1
    );
}

#[tokio::test]
async fn unregistered_and_mismatched_redirect_uris_get_an_error_page_and_no_redirect() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (_, challenge) = pkce("redirect");
    let cases = [
        (
            with(
                authorize_params(&client, &challenge, "s1"),
                "redirect_uri",
                Some("https://evil.example/cb"),
            ),
            "redirect_uri_mismatch",
        ),
        (
            with(
                authorize_params(&client, &challenge, "s2"),
                "redirect_uri",
                Some("http://127.0.0.1:33418/callback/x"),
            ),
            "redirect_uri_mismatch",
        ),
        (
            with(
                authorize_params("mcp_client_unknown", &challenge, "s3"),
                "client_id",
                Some("mcp_client_unknown"),
            ),
            "unknown_client",
        ),
    ];
    for (params, reason) in cases {
        let response = get_authorize(&s, &params).await;
        assert_eq!(response.status(), 400, "{reason}");
        assert!(
            response.headers().get(header::LOCATION).is_none(),
            "never redirected"
        );
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        let html = response.text().await.unwrap();
        assert!(html.contains("cannot continue"), "{html}");
        let records = audited(&s, AuditEventType::OauthAuthorizeFail).await;
        assert!(
            records.iter().any(|r| r["extra"]["reason"] == reason),
            "{records:?}"
        );
    }
    // Registration refuses a redirect URI that is neither https nor loopback http.
    let response = register(&s, &["http://evil.example/cb"]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    assert_eq!(issued_count(&s).await, 0);
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_verified() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (verifier, challenge) = pkce("pkce");
    // At the authorization endpoint: missing challenge, plain method → an error page.
    for (params, description) in [
        (
            with(
                authorize_params(&client, &challenge, "p1"),
                "code_challenge",
                None,
            ),
            "code_challenge",
        ),
        (
            with(
                authorize_params(&client, &challenge, "p2"),
                "code_challenge_method",
                None,
            ),
            "S256",
        ),
        (
            with(
                authorize_params(&client, &challenge, "p3"),
                "code_challenge_method",
                Some("plain"),
            ),
            "S256",
        ),
    ] {
        // Shown here, never sent to the redirect URI (L1).
        let html = error_page(get_authorize(&s, &params).await).await;
        assert!(html.contains("invalid_request"), "{html}");
        assert!(html.contains(description), "{html}");
    }
    // At the token endpoint: missing and wrong verifiers.
    let (code, _, _) = {
        let page = consent_page(&s, &authorize_params(&client, &challenge, "p4")).await;
        let back = location(&approve(&s, &page).await);
        (param(&back, "code").unwrap().to_owned(), (), ())
    };
    let (status, body, headers) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
        ],
    )
    .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_request");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    let page = consent_page(&s, &authorize_params(&client, &challenge, "p5")).await;
    let code = param(&location(&approve(&s, &page).await), "code")
        .unwrap()
        .to_owned();
    let (wrong, _) = pkce("another");
    let (status, body) = exchange(&s, &code, &wrong, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    // The code is spent by the failed attempt: the right verifier no longer helps.
    let (status, body) = exchange(&s, &code, &verifier, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(issued_count(&s).await, 0, "nothing issued");
    let fails = audited(&s, AuditEventType::OauthTokenFail).await;
    for reason in ["pkce_missing", "pkce_mismatch"] {
        assert!(
            fails.iter().any(|r| r["extra"]["reason"] == reason),
            "{reason}"
        );
    }
    let authorize_fails = audited(&s, AuditEventType::OauthAuthorizeFail).await;
    assert!(
        authorize_fails
            .iter()
            .any(|r| r["extra"]["reason"] == "pkce_method")
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_and_revokes_what_it_issued() {
    let s = TestServer::start().await;
    let (code, verifier, client) = code_for(&s, "replay").await;
    let (status, tokens) = exchange(&s, &code, &verifier, &client).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&s, access).await, 200);
    let (status, body) = exchange(&s, &code, &verifier, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        mcp_status(&s, access).await,
        401,
        "the first exchange's token is revoked"
    );
    let (status, body) = refresh(&s, tokens["refresh_token"].as_str().unwrap(), &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let reuse = audited(&s, AuditEventType::AuthnTokenReuse).await;
    assert!(
        reuse
            .iter()
            .any(|r| r["extra"]["reason"] == "code_replayed"),
        "{reuse:?}"
    );
    assert_eq!(issued_count(&s).await, 1);
}

#[tokio::test]
async fn state_is_single_use() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (_, challenge) = pkce("state");
    let params = authorize_params(&client, &challenge, "one-time-state");
    let page = consent_page(&s, &params).await;
    let back = location(&approve(&s, &page).await);
    assert!(param(&back, "code").is_some());
    // The same state again: refused on our error page, no consent page, no redirect.
    let html = error_page(get_authorize(&s, &params).await).await;
    assert!(html.contains("already used"), "{html}");
    // The same consent form posted again: refused, no code.
    let again = approve(&s, &page).await;
    assert_eq!(again.status(), 400);
    assert!(again.headers().get(header::LOCATION).is_none());
    let fails = audited(&s, AuditEventType::OauthAuthorizeFail).await;
    for reason in ["state_replayed", "consent_spent_or_expired"] {
        assert!(
            fails.iter().any(|r| r["extra"]["reason"] == reason),
            "{reason}"
        );
    }
    assert_eq!(
        audited(&s, AuditEventType::OauthConsentGranted).await.len(),
        1
    );
}

#[tokio::test]
async fn codes_are_bound_to_this_resource() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (_, challenge) = pkce("resource");
    let other = "https://other.example/mcp";
    let html = error_page(
        get_authorize(
            &s,
            &with(
                authorize_params(&client, &challenge, "r1"),
                "resource",
                Some(other),
            ),
        )
        .await,
    )
    .await;
    assert!(html.contains("invalid_target"), "{html}");
    // A code for this resource, exchanged for another one.
    let (code, verifier, client) = code_for(&s, "r2").await;
    let (status, body, _) = token_request(
        &s,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", &verifier),
            ("resource", other),
        ],
    )
    .await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_target");
    assert_eq!(issued_count(&s).await, 0);
    let fails = audited(&s, AuditEventType::OauthTokenFail).await;
    assert!(
        fails
            .iter()
            .any(|r| r["extra"]["reason"] == "resource_mismatch")
    );
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_family() {
    let s = TestServer::start().await;
    let (code, verifier, client) = code_for(&s, "family").await;
    let (_, first) = exchange(&s, &code, &verifier, &client).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&s, r1, &client).await;
    assert_eq!(status, 200);
    let r2 = second["refresh_token"].as_str().unwrap();
    // r1 again: refused, and the family is revoked.
    let (status, body) = refresh(&s, r1, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = refresh(&s, r2, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    for access in [&first["access_token"], &second["access_token"]] {
        assert_eq!(mcp_status(&s, access.as_str().unwrap()).await, 401);
    }
    // Another client cannot use a refresh token either (checked before anything is spent).
    let reuse = audited(&s, AuditEventType::AuthnTokenReuse).await;
    assert!(
        reuse
            .iter()
            .any(|r| r["extra"]["reason"] == "refresh_reused")
    );
    assert_eq!(
        issued_count(&s).await,
        2,
        "the first exchange and the one rotation"
    );
}

#[tokio::test]
async fn client_metadata_documents_at_private_addresses_are_never_fetched() {
    let s = TestServer::start().await;
    let (_, challenge) = pkce("ssrf");
    for client in [
        "https://10.0.0.1/client.json",
        "http://169.254.169.254/latest/meta-data/client",
        "https://192.168.1.10/oauth/client.json",
        "https://[fd00::1]/client.json",
        "http://example.com/client.json",
    ] {
        let params = with(
            authorize_params(client, &challenge, "x"),
            "client_id",
            Some(client),
        );
        let response = get_authorize(&s, &params).await;
        assert_eq!(response.status(), 400, "{client}");
        assert!(response.headers().get(header::LOCATION).is_none());
    }
    let refused = audited(&s, AuditEventType::OauthClientRefused).await;
    assert_eq!(refused.len(), 5, "{refused:?}");
    assert!(
        refused
            .iter()
            .any(|r| r["extra"]["reason"].as_str().unwrap().contains("private"))
    );
}

#[tokio::test]
async fn a_client_metadata_document_on_loopback_is_used_in_development() {
    // A local document server (loopback is allowed outside production only, for a listed
    // origin).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let id = format!("http://{addr}/oauth/client.json");
    let document = json!({"client_id": id, "client_name": "Local <i>tool</i>",
                          "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"});
    let app = axum::Router::new().route(
        "/oauth/client.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // Its exact origin is listed (only listed loopback origins are fetched, L6).
    let origin = format!("http://{addr}");
    let s = TestServer::start_with(&[("OAUTH_LOOPBACK_METADATA_ORIGINS", origin.as_str())]).await;
    let (verifier, challenge) = pkce("cimd");
    let params = with(
        authorize_params(&id, &challenge, "c1"),
        "client_id",
        Some(&id),
    );
    let page = consent_page(&s, &params).await;
    assert!(
        page.html.contains("Local &lt;i&gt;tool&lt;/i&gt;"),
        "escaped name"
    );
    assert!(page.html.contains("127.0.0.1"), "redirect host named");
    let code = param(&location(&approve(&s, &page).await), "code")
        .unwrap()
        .to_owned();
    let (status, body) = exchange(&s, &code, &verifier, &id).await;
    assert_eq!(status, 200, "{body}");
    // In production the same loopback document is refused.
    let prod = TestServer::start_with(&[
        ("NODE_ENV", "production"),
        ("MCP_PUBLIC_URL", "https://mcp.example.com"),
        ("ALLOWED_HOSTS", "127.0.0.1"),
    ])
    .await;
    let response = get_authorize(&prod, &params).await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn the_consent_post_needs_its_cookie_and_form_token() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (_, challenge) = pkce("csrf");
    let page = consent_page(&s, &authorize_params(&client, &challenge, "c")).await;
    let fields = [
        ("api_key", s.sim.api_key()),
        ("workspace_id", s.sim.workspace_id()),
        ("action", "approve"),
        ("scope", "read:agents"),
    ];
    let other = consent_page(&s, &authorize_params(&client, &challenge, "d")).await;
    type Case<'a> = (Option<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (None, fields.to_vec(), "missing_cookie"),
        (
            Some(page.cookie.as_str()),
            [fields.to_vec(), vec![("csrf_token", "forged")]].concat(),
            "bad_token",
        ),
        (Some(other.cookie.as_str()), fields.to_vec(), "bad_token"),
        (
            Some(page.cookie.as_str()),
            [fields.to_vec(), vec![("csrf_token", "")]].concat(),
            "bad_token",
        ),
    ];
    for (cookie, form, reason) in cases {
        let response = post_consent(&s, &page, cookie, &form).await;
        assert_eq!(response.status(), 403, "{reason}");
        assert!(response.headers().get(header::LOCATION).is_none());
        let records = audited(&s, AuditEventType::CsrfFail).await;
        assert!(
            records.iter().any(|r| r["extra"]["reason"] == reason),
            "{reason}"
        );
    }
    // A cross-site post is refused before anything else.
    let response = post_form(
        s.url("/oauth/authorize"),
        &[
            ("consent", page.consent.as_str()),
            ("csrf_token", page.csrf.as_str()),
        ],
    )
    .header(header::COOKIE, &page.cookie)
    .header("sec-fetch-site", "cross-site")
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        audited(&s, AuditEventType::OauthConsentGranted).await.len(),
        0
    );
    // The genuine post still works: the refused ones changed nothing.
    assert!(param(&location(&approve(&s, &page).await), "code").is_some());
}

#[tokio::test]
async fn the_consent_page_names_the_client_and_cannot_be_framed() {
    let s = TestServer::start().await;
    let client = client_id(&s).await;
    let (_, challenge) = pkce("page");
    let response = get_authorize(&s, &authorize_params(&client, &challenge, "pg")).await;
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    let csp = h[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' http://127.0.0.1:33418"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "no script at all: {csp}");
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    let cookie = h[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let html = response.text().await.unwrap();
    assert!(
        html.contains("Test &lt;b&gt;client&lt;/b&gt;"),
        "client name, escaped"
    );
    assert!(html.contains("127.0.0.1"), "redirect host");
    for scope in ["read:workspaces", "read:agents", "execute:agents"] {
        assert!(html.contains(&format!("value=\"{scope}\"")), "{scope}");
    }
    assert!(!html.contains("<script"), "no script");
    // A refused key is shown on the page again, audited, nothing issued.
    let page = Page {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        consent: hidden(&html, "consent"),
        csrf: hidden(&html, "csrf_token"),
        html,
    };
    let response = post_consent(
        &s,
        &page,
        Some(&page.cookie),
        &[
            ("api_key", "sk-0000000000000000000000000000wrong"),
            ("workspace_id", s.sim.workspace_id()),
            ("action", "approve"),
            ("scope", "read:agents"),
        ],
    )
    .await;
    assert_eq!(response.status(), 401);
    let html = response.text().await.unwrap();
    assert!(html.contains("invalid API key or workspace"), "{html}");
    assert!(!html.contains("sk-0000000000000000000000000000wrong"));
    let fails = audited(&s, AuditEventType::AuthnLoginFail).await;
    assert!(
        fails
            .iter()
            .any(|r| r["extra"]["reason"] == "rejected_by_dust")
    );
}

#[tokio::test]
async fn secrets_never_reach_the_audit_log() {
    let s = TestServer::start().await;
    let (code, verifier, client) = code_for(&s, "canary").await;
    let (_, tokens) = exchange(&s, &code, &verifier, &client).await;
    let (_, rotated) = refresh(&s, tokens["refresh_token"].as_str().unwrap(), &client).await;
    let _ = exchange(&s, &code, &verifier, &client).await;
    s.state.auditor.flush().await;
    let log = serde_json::to_string(&s.audit.records()).unwrap();
    for secret in [
        s.sim.api_key(),
        code.as_str(),
        verifier.as_str(),
        tokens["access_token"].as_str().unwrap(),
        tokens["refresh_token"].as_str().unwrap(),
        rotated["refresh_token"].as_str().unwrap(),
    ] {
        assert!(!log.contains(secret), "a secret reached the audit log");
    }
}

/// The whole flow, a replayed code and a refresh reuse with the OAuth records in Redis (the
/// store a cluster shares): consents, codes and refresh families behave as in memory.
#[tokio::test]
async fn the_flow_and_its_single_use_rules_hold_with_redis() {
    let Some(redis) = crate::common::redis_server::RedisServer::start(
        "the_flow_and_its_single_use_rules_hold_with_redis",
    )
    .await
    else {
        return;
    };
    let stores = mcp_dust_server::store::Stores::redis(
        redis.store(&crate::common::redis_server::prefix("oauth")),
    );
    let sim = mcp_dust_server::sim::spawn(crate::common::sim_config())
        .await
        .unwrap();
    let s = TestServer::start_with_stores(sim, &[], None, stores).await;
    let (code, verifier, client) = code_for(&s, "redis").await;
    let (status, first) = exchange(&s, &code, &verifier, &client).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        mcp_status(&s, first["access_token"].as_str().unwrap()).await,
        200
    );
    let r1 = first["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&s, r1, &client).await;
    assert_eq!(status, 200, "{second}");
    let (status, body) = refresh(&s, r1, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = refresh(&s, second["refresh_token"].as_str().unwrap(), &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        mcp_status(&s, second["access_token"].as_str().unwrap()).await,
        401
    );
    let (status, body) = exchange(&s, &code, &verifier, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(issued_count(&s).await, 2);
}

/// Several instances behind one name share the OAuth state in Redis: a client registered on one
/// instance, its consent page served by one and approved on the other, the code exchanged on
/// the first, the refresh token rotated on the second; a code or refresh token spent on one
/// instance is spent on both (the replay of a rotated refresh token revokes the family there).
#[tokio::test]
async fn the_flow_spans_two_instances_sharing_redis() {
    use crate::common::redis_server::{RedisServer, prefix};
    use mcp_dust_server::{
        sim::{self, SimConfig},
        store::Stores,
    };
    let Some(redis) = RedisServer::start("oauth_two_instances").await else {
        return;
    };
    let public = "http://mcp.cluster.test";
    let env = [("MCP_PUBLIC_URL", public)];
    let p = prefix("oauth");
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let dust = sim.base_url();
    let a = TestServer::start_with_stores(sim, &env, None, Stores::redis(redis.store(&p))).await;
    let twin_sim = sim::spawn(SimConfig::default()).await.unwrap();
    let b =
        TestServer::start_with_stores(twin_sim, &env, Some(&dust), Stores::redis(redis.store(&p)))
            .await;

    let client = client_id(&a).await;
    let (verifier, challenge) = pkce("twins");
    let params = with(
        authorize_params(&client, &challenge, "twins"),
        "resource",
        Some(&format!("{public}/mcp")),
    );
    let page = consent_page(&a, &params).await;
    // The person's browser reaches the other instance for the post.
    let mut form: Vec<(String, String)> = vec![
        ("consent".into(), page.consent.clone()),
        ("csrf_token".into(), page.csrf.clone()),
    ];
    form.extend(
        approve_fields(&a)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    let approved = post_form(b.url("/oauth/authorize"), &form)
        .header(header::COOKIE, &page.cookie)
        .send()
        .await
        .unwrap();
    let back = location(&approved);
    assert_eq!(param(&back, "iss"), Some(public));
    let code = param(&back, "code").unwrap().to_owned();

    let resource = format!("{public}/mcp");
    let exchange_on = |s: &TestServer| {
        let url = s.url("/oauth/token");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("client_id", client.as_str()),
            ("code_verifier", verifier.as_str()),
            ("resource", resource.as_str()),
        ];
        async move {
            let response = post_form(url, &form).send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = exchange_on(&a).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(mcp_status(&b, access).await, 200, "issued on A, used on B");
    // The code is spent on both instances; its replay on B revokes what it issued.
    let (status, body) = exchange_on(&b).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        mcp_status(&a, access).await,
        401,
        "replay revoked the token"
    );

    // A fresh grant: rotate its refresh token on B, replay the old one on A.
    let client = client_id(&b).await;
    let (verifier, challenge) = pkce("twins-2");
    let page = consent_page(
        &b,
        &with(
            authorize_params(&client, &challenge, "twins-2"),
            "resource",
            Some(&resource),
        ),
    )
    .await;
    let back = location(&approve(&a, &page).await);
    let code = param(&back, "code").unwrap().to_owned();
    let (status, body, _) = token_request(
        &a,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client),
            ("code_verifier", &verifier),
            ("resource", &resource),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let r1 = body["refresh_token"].as_str().unwrap();
    let (status, second) = refresh(&b, r1, &client).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap();
    let (status, body) = refresh(&a, r1, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    let (status, body) = refresh(&b, r2, &client).await;
    assert_oauth_error(status, &body, StatusCode::BAD_REQUEST, "invalid_grant");
    assert_eq!(
        mcp_status(&a, second["access_token"].as_str().unwrap()).await,
        401,
        "the family is revoked everywhere"
    );
}

/// A registration from `forwarded_for` (through the trusted proxy 127.0.0.1).
async fn register_from(s: &TestServer, forwarded_for: &str) -> reqwest::Response {
    s.http
        .post(s.url("/oauth/register"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"client_name": "Flood", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
}

/// M4: registration is open, so each client address (an IPv6 one by its /64) gets a bucket of
/// its own: past it, 429 with `Retry-After` in the endpoint's error shape, audited once per
/// window; other addresses still register.
#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    use mcp_dust_server::http::oauth::REGISTRATION_QUOTA;
    let s = TestServer::start_with(&[("TRUSTED_PROXIES", "127.0.0.1")]).await;
    for i in 0..REGISTRATION_QUOTA {
        // Different addresses of one /64 share its bucket.
        let response = register_from(&s, &format!("2001:db8:1:2::{:x}", i + 1)).await;
        assert_eq!(response.status(), 201, "registration {i}");
    }
    for _ in 0..2 {
        let response = register_from(&s, "2001:db8:1:2:ffff:ffff:ffff:ffff").await;
        assert_eq!(response.status(), 429);
        let retry_after: u64 = response.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=3600).contains(&retry_after), "{retry_after}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let limits = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(limits.contains("\"register\";r=0"), "{limits}");
        let body: Value = response.json().await.unwrap();
        assert_oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            &body,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        );
    }
    let refused = audited(&s, AuditEventType::OauthClientRefused).await;
    let limited: Vec<_> = refused
        .iter()
        .filter(|r| r["extra"]["reason"] == "registration_rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "audited once per window: {refused:?}");
    assert_eq!(
        audited(&s, AuditEventType::OauthClientRegistered)
            .await
            .len(),
        usize::try_from(REGISTRATION_QUOTA).unwrap()
    );
    // Another /64, another IPv4 address: their own buckets.
    assert_eq!(register_from(&s, "2001:db8:1:3::1").await.status(), 201);
    assert_eq!(register_from(&s, "192.0.2.7").await.status(), 201);
    // The window passes: the /64 registers again.
    s.clock
        .advance(mcp_dust_server::http::oauth::REGISTRATION_WINDOW);
    assert_eq!(register_from(&s, "2001:db8:1:2::1").await.status(), 201);
}

/// M4: a client that never completes an authorization is forgotten after a day; one that did
/// keeps the long life it always had.
#[tokio::test]
async fn unused_clients_are_forgotten_after_a_day() {
    let s = TestServer::start().await;
    let (code, verifier, used) = code_for(&s, "used-client").await;
    assert_eq!(exchange(&s, &code, &verifier, &used).await.0, 200);
    let unused = client_id(&s).await;
    let (_, challenge) = pkce("unused");
    s.clock.advance(
        mcp_dust_server::http::oauth::UNUSED_CLIENT_TTL + std::time::Duration::from_secs(1),
    );
    let response = get_authorize(&s, &authorize_params(&unused, &challenge, "u1")).await;
    assert_eq!(response.status(), 400, "the unused client is gone");
    assert!(response.text().await.unwrap().contains("unknown client_id"));
    consent_page(&s, &authorize_params(&used, &challenge, "u2")).await;
    s.clock.advance(mcp_dust_server::http::oauth::CLIENT_TTL);
    let response = get_authorize(&s, &authorize_params(&used, &challenge, "u3")).await;
    assert_eq!(
        response.status(),
        400,
        "a used client still ends at its long life"
    );
}

/// M4: past the store's cap of unused clients, a registration evicts the oldest unused client
/// instead of being refused (503 for everyone before); used clients stay. In memory and in
/// Redis, each built with a cap of 3.
#[tokio::test]
async fn past_the_cap_registration_evicts_the_oldest_unused_client() {
    use mcp_dust_server::store::{MemoryOAuthStore, Stores};
    let memory = Stores {
        oauth: std::sync::Arc::new(MemoryOAuthStore::new().with_unused_client_capacity(3)),
        ..Stores::memory()
    };
    evicts_the_oldest_unused_client(memory).await;
    let Some(redis) = crate::common::redis_server::RedisServer::start(
        "past_the_cap_registration_evicts_the_oldest_unused_client",
    )
    .await
    else {
        return;
    };
    let store = redis
        .store(&crate::common::redis_server::prefix("oauth-cap"))
        .with_unused_client_capacity(3);
    evicts_the_oldest_unused_client(Stores::redis(store)).await;
}

async fn evicts_the_oldest_unused_client(stores: mcp_dust_server::store::Stores) {
    let sim = mcp_dust_server::sim::spawn(crate::common::sim_config())
        .await
        .unwrap();
    let s = TestServer::start_with_stores(sim, &[], None, stores).await;
    let (_, _, used) = code_for(&s, "kept").await;
    let mut unused = Vec::new();
    for _ in 0..4 {
        unused.push(client_id(&s).await);
        s.clock.advance(std::time::Duration::from_millis(5));
    }
    let (_, challenge) = pkce("cap");
    let known = |client: String| {
        let s = &s;
        let challenge = challenge.clone();
        async move {
            get_authorize(s, &authorize_params(&client, &challenge, &client))
                .await
                .status()
        }
    };
    assert_eq!(known(unused[0].clone()).await, 400, "the oldest is evicted");
    for client in unused[1..].iter().chain([&used]) {
        assert_eq!(known(client.clone()).await, 200, "{client}");
    }
}

/// L1: registration is open, so a "registered" redirect URI is any address anyone chose. An
/// invalid authorization request (whatever is wrong with it, even with a verified client and
/// redirect URI) is our own error page, never a redirect: our host is no open redirect. A
/// browser goes to a redirect URI only from the consent form (approve, or deny as here).
#[tokio::test]
async fn invalid_authorization_requests_are_never_redirected() {
    let s = TestServer::start().await;
    // The attacker's client: its redirect URI is the site it wants to bounce people to.
    let evil = "https://evil.example/landing";
    let response = register(&s, &[evil]).await;
    assert_eq!(response.status(), 201);
    let attacker: Value = response.json().await.unwrap();
    let attacker = attacker["client_id"].as_str().unwrap().to_owned();
    let client = client_id(&s).await;
    let (_, challenge) = pkce("l1");
    // A spent state, for the replay case.
    let spent = authorize_params(&client, &challenge, "spent-state");
    let page = consent_page(&s, &spent).await;
    assert!(param(&location(&approve(&s, &page).await), "code").is_some());
    let long_state = "s".repeat(600);
    let base = |state: &str| authorize_params(&client, &challenge, state);
    let cases = [
        (
            with(
                with(
                    authorize_params(&attacker, &challenge, "a"),
                    "redirect_uri",
                    Some(evil),
                ),
                "response_type",
                Some("token"),
            ),
            "response_type",
        ),
        (
            with(
                with(
                    authorize_params(&attacker, &challenge, "b"),
                    "redirect_uri",
                    None,
                ),
                "code_challenge",
                None,
            ),
            "pkce_missing",
        ),
        (with(base("c"), "response_type", None), "response_type"),
        (
            with(base("d"), "code_challenge_method", Some("plain")),
            "pkce_method",
        ),
        (
            with(base("e"), "resource", Some("https://other.example/mcp")),
            "resource_mismatch",
        ),
        (with(base("f"), "scope", Some("admin:everything")), "scope"),
        (base(&long_state), "state_too_long"),
        (spent, "state_replayed"),
    ];
    for (params, reason) in cases {
        error_page(get_authorize(&s, &params).await).await;
        let fails = audited(&s, AuditEventType::OauthAuthorizeFail).await;
        assert!(
            fails.iter().any(|r| r["extra"]["reason"] == reason),
            "{reason}: {fails:?}"
        );
    }
    // The consent form's own answer still goes back to the client: a denial.
    let page = consent_page(&s, &base("deny")).await;
    let denied = post_consent(&s, &page, Some(&page.cookie), &[("action", "deny")]).await;
    let back = location(&denied);
    assert_eq!(param(&back, "error"), Some("access_denied"));
    assert_eq!(param(&back, "state"), Some("deny"));
    assert!(param(&back, "code").is_none());
}

/// L6: outside production, a loopback metadata URL is fetched only for an origin listed in
/// `OAUTH_LOOPBACK_METADATA_ORIGINS`; any other loopback port (or host, or scheme) is refused
/// before a connection is attempted, so the fetcher is no oracle for local ports.
#[tokio::test]
async fn unlisted_loopback_metadata_urls_are_refused_without_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let listed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listed = format!("http://{}", listed.local_addr().unwrap());
    let s = TestServer::start_with(&[("OAUTH_LOOPBACK_METADATA_ORIGINS", listed.as_str())]).await;
    let (_, challenge) = pkce("oracle");
    let probes = [
        format!("http://127.0.0.1:{port}/client.json"),
        format!("https://127.0.0.1:{port}/client.json"),
        format!("http://localhost:{port}/client.json"),
    ];
    for client in &probes {
        let params = with(
            authorize_params(client, &challenge, "o"),
            "client_id",
            Some(client),
        );
        let html = error_page(get_authorize(&s, &params).await).await;
        assert!(!html.contains("could not be fetched"), "{html}");
    }
    let no_connection =
        tokio::time::timeout(std::time::Duration::from_millis(300), listener.accept()).await;
    assert!(no_connection.is_err(), "the probed port saw a connection");
    let refused = audited(&s, AuditEventType::OauthClientRefused).await;
    assert_eq!(refused.len(), probes.len(), "{refused:?}");
}

/// The consent post's same-origin check is not scheme-blind: on a server whose public URL is
/// https, an `http://` page on the same host and port is a foreign origin (a network attacker
/// can serve one), while the `https://` one passes on to the cookie check.
#[tokio::test]
async fn an_http_origin_is_not_the_same_origin_as_https() {
    let s = TestServer::start_with(&[
        ("NODE_ENV", "production"),
        ("MCP_PUBLIC_URL", "https://mcp.example.com"),
        ("ALLOWED_HOSTS", "127.0.0.1"),
    ])
    .await;
    let host = format!("127.0.0.1:{}", s.addr.port());
    for (origin, reason) in [
        (format!("http://{host}"), "foreign_origin"),
        (format!("https://{host}"), "missing_cookie"),
    ] {
        let response = post_form(s.url("/oauth/authorize"), &[("consent", "x")])
            .header(header::ORIGIN, &origin)
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{origin}");
        let fails = audited(&s, AuditEventType::CsrfFail).await;
        assert_eq!(
            fails.last().unwrap()["extra"]["reason"],
            reason,
            "{origin}: {fails:?}"
        );
    }
}
