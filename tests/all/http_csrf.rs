//! Hostile tests of the CSRF defences (security catalogue §4.4, C1–C12): a real server on
//! 127.0.0.1:0, sessions from real browser logins, a manual clock for token age.
//!
//! The unsafe route under test is `POST /api/v1/auth/refresh` (from a session it rotates the
//! session, a visible state change) and `POST /api/v1/auth/logout`. Every refusal is checked
//! for: 403 envelope `csrf_failed`, one `csrf_fail` audit record with the reason, and no state
//! change (the session id still works, the store holds the same session, no token issued).

use std::time::Duration;

use crate::common::{
    browser::{self, Browser, Reply, audited, login, names, send_raw},
    http::TestServer,
};
use mcp_dust_server::{audit::AuditEventType, http::session::session_key};
use reqwest::Method;
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

/// Live token records of the simulator's key.
async fn live_tokens(srv: &TestServer, b: &Browser) -> usize {
    srv.state
        .tokens
        .count_live_for_user(srv.sim.workspace_id(), &b.user_id, srv.now_secs())
        .await
        .unwrap()
}

/// `POST /api/v1/auth/refresh` with the session cookie, plus exactly these `Cookie` and extra
/// headers (the test decides everything).
async fn refresh_raw(srv: &TestServer, headers: &[(&str, &str)]) -> Reply {
    send_raw(srv, Method::POST, "/api/v1/auth/refresh", headers).await
}

/// A 403 `csrf_failed` with its audit record and no state change.
async fn assert_refused(srv: &TestServer, b: &Browser, reply: &Reply, reason: &str, case: &str) {
    reply.assert_error(403, "csrf_failed");
    assert!(
        reply.set_cookies().is_empty(),
        "{case}: a refusal sets no cookie"
    );
    let records = audited(srv, AuditEventType::CsrfFail, reason).await;
    assert_eq!(
        records.len(),
        1,
        "{case}: one csrf_fail record with reason {reason}"
    );
    assert_eq!(records[0]["severity"], "high");
    assert!(records[0]["session_id_hash"].is_string());
    srv.audit.clear();
    // No state change: the same session, still working, nothing issued.
    assert_eq!(srv.state.sessions.count().await.unwrap(), 1, "{case}");
    let key = session_key(&srv.state, &b.sid);
    assert!(
        srv.state.sessions.get(&key).await.unwrap().is_some(),
        "{case}"
    );
    assert_eq!(live_tokens(srv, b).await, 1, "{case}: no token issued");
    assert_eq!(b.whoami(srv).await.status, 200, "{case}");
}

/// C1–C3: missing cookie, missing header, different values.
#[tokio::test]
async fn c1_c2_c3_missing_or_different_tokens_are_refused() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let sid = b.sid_cookie();
    let both = b.cookie_header();
    let reply = refresh_raw(&srv, &[("Cookie", &sid), ("X-XSRF-TOKEN", &b.csrf)]).await;
    assert_refused(&srv, &b, &reply, "missing_cookie", "C1").await;
    let reply = refresh_raw(&srv, &[("Cookie", &both)]).await;
    assert_refused(&srv, &b, &reply, "missing_header", "C2").await;
    // C3: a well-formed token of this very session, but not the one in the cookie.
    let other = b.whoami(&srv).await.body["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other, b.csrf);
    let reply = refresh_raw(&srv, &[("Cookie", &both), ("X-XSRF-TOKEN", &other)]).await;
    assert_refused(&srv, &b, &reply, "mismatch", "C3").await;
    let reply = refresh_raw(&srv, &[("Cookie", &both), ("X-XSRF-TOKEN", "x")]).await;
    assert_refused(&srv, &b, &reply, "mismatch", "C3 garbage").await;
    // Two headers.
    let reply = refresh_raw(
        &srv,
        &[
            ("Cookie", &both),
            ("X-XSRF-TOKEN", &b.csrf),
            ("X-XSRF-TOKEN", &b.csrf),
        ],
    )
    .await;
    assert_refused(&srv, &b, &reply, "duplicate_header", "two headers").await;
    // Logout is protected the same way.
    let reply = send_raw(
        &srv,
        Method::POST,
        "/api/v1/auth/logout",
        &[("Cookie", &both)],
    )
    .await;
    assert_refused(
        &srv,
        &b,
        &reply,
        "missing_header",
        "logout without the header",
    )
    .await;
    // And with everything right, it passes.
    assert_eq!(b.refresh(&srv).await.status, 200);
    srv.shutdown().await;
}

/// C4: a token from another session, in both cookie and header, is refused: the token is bound
/// to its session (a naive double submit would pass this).
#[tokio::test]
async fn c4_token_from_another_session_is_refused() {
    let srv = TestServer::start().await;
    let (_, attacker) = login(&srv, false).await;
    let (_, victim) = login(&srv, false).await;
    srv.audit.clear();
    let cookie = format!("mcp.sid={}; XSRF-TOKEN={}", victim.sid, attacker.csrf);
    let reply = refresh_raw(
        &srv,
        &[("Cookie", &cookie), ("X-XSRF-TOKEN", &attacker.csrf)],
    )
    .await;
    reply.assert_error(403, "csrf_failed");
    assert_eq!(
        audited(&srv, AuditEventType::CsrfFail, "bad_signature")
            .await
            .len(),
        1
    );
    assert_eq!(
        victim.whoami(&srv).await.status,
        200,
        "the victim's session is untouched"
    );
    assert_eq!(srv.state.sessions.count().await.unwrap(), 2);
    // A forged token of the right shape fails the same way.
    let forged = format!(
        "{}.AAAAAAAAAAAAAAAAAAAAAA.{}",
        1_700_000_000,
        "A".repeat(43)
    );
    let cookie = format!("mcp.sid={}; XSRF-TOKEN={forged}", victim.sid);
    let reply = refresh_raw(&srv, &[("Cookie", &cookie), ("X-XSRF-TOKEN", &forged)]).await;
    reply.assert_error(403, "csrf_failed");
    srv.shutdown().await;
}

/// C5: a token older than an hour is refused; GET /api/v1/auth/session issues a fresh one; a
/// new session always gets a new token.
#[tokio::test]
async fn c5_expired_token_and_the_refresh_path() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    srv.clock.advance(59 * MINUTE);
    let fresh = b.whoami(&srv).await;
    assert_eq!(fresh.status, 200);
    let fresh_cookie = fresh.cookie("XSRF-TOKEN");
    let fresh_token = fresh.body["csrfToken"].as_str().unwrap().to_owned();
    assert_eq!(fresh_cookie.value, fresh_token);
    srv.clock.advance(2 * MINUTE); // the login token is now 61 minutes old
    let reply = b.refresh(&srv).await;
    assert_refused(&srv, &b, &reply, "expired_token", "C5").await;
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/api/v1/auth/session")
    );
    let renewed = Browser {
        xsrf_cookie: fresh_token.clone(),
        csrf: fresh_token,
        ..b.clone()
    };
    let rotated = renewed.refresh(&srv).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let next = Browser::from_reply(&rotated, false);
    assert_ne!(next.csrf, renewed.csrf, "a new session gets a new token");
    srv.shutdown().await;
}

/// C6: two CSRF cookies in one request are refused even when both are valid; in production
/// only the `__Host-` cookie counts.
#[tokio::test]
async fn c6_cookie_tossing_is_refused() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let cookie = format!(
        "mcp.sid={}; XSRF-TOKEN={}; XSRF-TOKEN={}",
        b.sid, b.csrf, b.csrf
    );
    let reply = refresh_raw(&srv, &[("Cookie", &cookie), ("X-XSRF-TOKEN", &b.csrf)]).await;
    assert_refused(&srv, &b, &reply, "duplicate_cookie", "C6 one header").await;
    // The same spread over two Cookie headers.
    let reply = refresh_raw(
        &srv,
        &[
            ("Cookie", &b.cookie_header()),
            ("Cookie", &format!("XSRF-TOKEN={}", b.csrf)),
            ("X-XSRF-TOKEN", &b.csrf),
        ],
    )
    .await;
    assert_refused(&srv, &b, &reply, "duplicate_cookie", "C6 two headers").await;
    srv.shutdown().await;

    let srv = browser::server(true).await;
    let (_, b) = login(&srv, true).await;
    // A sibling domain can set `XSRF-TOKEN` but never `__Host-XSRF-TOKEN`.
    let cookie = format!("__Host-mcp.sid={}; XSRF-TOKEN={}", b.sid, b.csrf);
    let reply = refresh_raw(&srv, &[("Cookie", &cookie), ("X-XSRF-TOKEN", &b.csrf)]).await;
    assert_refused(&srv, &b, &reply, "missing_cookie", "C6 production").await;
    assert_eq!(b.refresh(&srv).await.status, 200);
    srv.shutdown().await;
}

/// C7: bearer requests need no CSRF token; with both a bearer header and a cookie, the bearer
/// decides (a bad one is a 401 whatever the cookie).
#[tokio::test]
async fn c7_bearer_requests_need_no_csrf_and_take_precedence() {
    let srv = TestServer::start().await;
    let token = srv.token(None).await;
    let bearer = format!("Bearer {token}");
    let reply = refresh_raw(&srv, &[("Authorization", &bearer)]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.body["token"].is_string());
    let (_, b) = login(&srv, false).await;
    let token = srv.token(None).await;
    let bearer = format!("Bearer {token}");
    let both = b.cookie_header();
    let reply = refresh_raw(&srv, &[("Authorization", &bearer), ("Cookie", &both)]).await;
    assert_eq!(
        reply.status, 200,
        "the bearer authenticates: {}",
        reply.text
    );
    assert!(
        reply.body["token"].is_string(),
        "a bearer refresh answers with a token"
    );
    assert!(reply.set_cookies().is_empty());
    assert_eq!(
        b.whoami(&srv).await.status,
        200,
        "the session was not rotated"
    );
    let reply = refresh_raw(
        &srv,
        &[
            ("Authorization", "Bearer not-a-token"),
            ("Cookie", &both),
            ("X-XSRF-TOKEN", &b.csrf),
        ],
    )
    .await;
    reply.assert_error(401, "unauthorized");
    assert_eq!(b.whoami(&srv).await.status, 200);
    srv.shutdown().await;
}

/// C8: login CSRF: a cross-site form post with the attacker's key is refused and sets no
/// cookie; so does any refused login.
#[tokio::test]
async fn c8_login_csrf_is_refused_without_cookies() {
    let srv = TestServer::start().await;
    let body = json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id(), "session": true});
    let evil = [
        ("Origin", "https://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ];
    for content_type in ["application/x-www-form-urlencoded", "text/plain"] {
        let reply = Reply::read(
            srv.http
                .post(srv.url("/api/v1/auth/login"))
                .header("Content-Type", content_type)
                .header(evil[0].0, evil[0].1)
                .header(evil[1].0, evil[1].1)
                .body(body.to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(
            matches!(reply.status, 403 | 415),
            "{content_type}: {}",
            reply.text
        );
        assert!(reply.set_cookies().is_empty(), "{content_type}");
    }
    // Even as JSON, either cross-site mark alone refuses it.
    for headers in [&evil[..], &evil[..1], &evil[1..]] {
        let mut request = srv.http.post(srv.url("/api/v1/auth/login")).json(&body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let reply = Reply::read(request.send().await.unwrap()).await;
        reply.assert_error(403, "forbidden");
        assert!(reply.set_cookies().is_empty());
    }
    // A key Dust refuses: 401, no cookie.
    let bad = json!({"apiKey": "sk-unknown-key-0123456789abcdef0123", "workspaceId": srv.sim.workspace_id(), "session": true});
    let reply = Reply::read(srv.login_with(bad).await).await;
    reply.assert_error(401, "unauthorized");
    assert!(reply.set_cookies().is_empty());
    assert_eq!(
        srv.state.sessions.count().await.unwrap(),
        0,
        "no session was created"
    );
    // A same-origin browser login passes.
    let origin = srv.base.clone();
    let reply = Reply::read(
        srv.http
            .post(srv.url("/api/v1/auth/login"))
            .header("Origin", origin)
            .header("Sec-Fetch-Site", "same-origin")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.set_cookies().len(), 2);
    srv.shutdown().await;
}

/// C9: safe methods change nothing: logout and refresh are POST only.
#[tokio::test]
async fn c9_no_state_change_on_safe_methods() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    for path in ["/api/v1/auth/logout", "/api/v1/auth/refresh"] {
        let reply = b.send(&srv, Method::GET, path, true, &[]).await;
        assert_eq!(reply.status, 405, "GET {path}");
        assert!(reply.set_cookies().is_empty());
    }
    assert_eq!(b.whoami(&srv).await.status, 200);
    assert_eq!(srv.state.sessions.count().await.unwrap(), 1);
    assert_eq!(live_tokens(&srv, &b).await, 1);
    srv.shutdown().await;
}

/// C10: Fetch Metadata and Origin sit in front of the token: `cross-site` is refused even with
/// a valid token, `same-origin` passes, no header falls back to the token.
#[tokio::test]
async fn c10_fetch_metadata_layer() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Sec-Fetch-Site", "cross-site")],
        )
        .await;
    assert_refused(&srv, &b, &reply, "cross_site", "C10 cross-site").await;
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Origin", "https://evil.example")],
        )
        .await;
    assert_refused(&srv, &b, &reply, "foreign_origin", "C10 foreign Origin").await;
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Origin", "null")],
        )
        .await;
    assert_refused(&srv, &b, &reply, "foreign_origin", "C10 Origin null").await;
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Sec-Fetch-Site", "cross-site"), ("Origin", "null")],
        )
        .await;
    assert_refused(&srv, &b, &reply, "cross_site", "C10 Origin null cross-site").await;
    // A form posted by our own page under `Referrer-Policy: no-referrer` carries `Origin: null`
    // and the browser's `Sec-Fetch-Site: same-origin`: it passes (the token still decides).
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Sec-Fetch-Site", "same-origin"), ("Origin", "null")],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let b = Browser::from_reply(&reply, false);
    // same-origin with the token: passes (and rotates).
    let origin = srv.base.clone();
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            true,
            &[("Sec-Fetch-Site", "same-origin"), ("Origin", &origin)],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let b = Browser::from_reply(&reply, false);
    // same-origin without the token: the token is still required.
    let reply = b
        .send(
            &srv,
            Method::POST,
            "/api/v1/auth/refresh",
            false,
            &[("Sec-Fetch-Site", "same-origin")],
        )
        .await;
    assert_refused(
        &srv,
        &b,
        &reply,
        "missing_header",
        "C10 same-origin, no token",
    )
    .await;
    // No Fetch-Metadata (a non-browser client): the token decides.
    assert_eq!(b.refresh(&srv).await.status, 200);
    srv.shutdown().await;
}

/// C11: the CSRF cookie's attributes, in development and production; rotated at login and
/// cleared at logout.
#[tokio::test]
async fn c11_xsrf_cookie_attributes_and_rotation() {
    for production in [false, true] {
        let srv = browser::server(production).await;
        let (reply, b) = login(&srv, production).await;
        let (_, xsrf_name) = names(production);
        let cookie = reply.cookie(xsrf_name);
        assert!(
            !cookie.has("httponly"),
            "script must read it: {}",
            cookie.raw
        );
        assert_eq!(cookie.get("samesite"), Some("Strict"), "{}", cookie.raw);
        assert_eq!(cookie.get("path"), Some("/"), "{}", cookie.raw);
        assert!(!cookie.has("domain"), "{}", cookie.raw);
        assert_eq!(cookie.has("secure"), production, "{}", cookie.raw);
        assert_eq!(cookie.name.starts_with("__Host-"), production);
        let (again, b2) = login(&srv, production).await;
        assert_ne!(
            again.cookie(xsrf_name).value,
            cookie.value,
            "rotated at login"
        );
        let out = b2.logout(&srv).await;
        assert_eq!(out.status, 200);
        let cleared = out.cookie(xsrf_name);
        assert_eq!(
            (cleared.value.as_str(), cleared.get("max-age")),
            ("", Some("0"))
        );
        assert_eq!(
            b.whoami(&srv).await.status,
            200,
            "the other session is unaffected"
        );
        srv.shutdown().await;
    }
}

/// C12: CORS for the browser routes: exact allowlisted origins only, credentials never with
/// `*`, and the CSRF header may be sent by an allowed origin.
#[tokio::test]
async fn c12_cors_preflight_for_cookie_requests() {
    const APP: &str = "https://app.example.com";
    let srv = TestServer::start_with(&[("CORS_ALLOWED_ORIGINS", APP)]).await;
    let preflight = |origin: &'static str| {
        let srv = &srv;
        async move {
            send_raw(
                srv,
                Method::OPTIONS,
                "/api/v1/auth/refresh",
                &[
                    ("Origin", origin),
                    ("Access-Control-Request-Method", "POST"),
                    (
                        "Access-Control-Request-Headers",
                        "x-xsrf-token,content-type",
                    ),
                ],
            )
            .await
        }
    };
    let ok = preflight(APP).await;
    assert!(ok.status < 300, "{}", ok.status);
    assert_eq!(ok.headers["access-control-allow-origin"], APP);
    assert_eq!(ok.headers["access-control-allow-credentials"], "true");
    assert!(
        ok.headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("x-xsrf-token")
    );
    assert!(
        ok.headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("origin"))
    );
    for origin in [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.com",
    ] {
        let denied = preflight(origin).await;
        assert!(
            denied.headers.get("access-control-allow-origin").is_none(),
            "{origin}"
        );
        assert!(
            denied
                .headers
                .get("access-control-allow-credentials")
                .is_none(),
            "{origin}"
        );
    }
    srv.state.auditor.flush().await;
    assert_eq!(
        srv.audit.of_type(AuditEventType::AuthzFail).len(),
        3,
        "denied preflights are audited"
    );
    srv.shutdown().await;
}
