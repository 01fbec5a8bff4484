//! Hostile tests of browser sessions (security catalogue §4.5, S1–S13): a real server on
//! 127.0.0.1:0, the simulator as Dust, a manual clock for every expiry, the in-memory audit
//! sink, and cookie attributes read from the raw `Set-Cookie` headers. Each attribute test runs
//! in development and in production (`NODE_ENV=production`: `__Host-` names, `Secure`).

use std::{collections::HashSet, sync::Arc, time::Duration};

use crate::common::{
    browser::{
        self, Browser, Reply, SetCookie, audited, login, login_with_cookie, names, send_raw,
    },
    http::TestServer,
    redis_server::{RedisServer, prefix},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::StreamExt;
use mcp_dust_server::{
    audit::AuditEventType,
    http::session::{MAX_SESSIONS_PER_USER, new_session_id, session_key},
    sim::{self, SimConfig},
    store::{MemorySessionStore, SessionKey, Stores},
};
use reqwest::Method;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const MINUTE: Duration = Duration::from_secs(60);

async fn store_len(srv: &TestServer) -> usize {
    srv.state.sessions.count().await.unwrap()
}

/// The sessions of the simulator's key, oldest first.
async fn sessions_of(
    srv: &TestServer,
    b: &Browser,
) -> Vec<(SessionKey, mcp_dust_server::store::SessionRecord)> {
    srv.state
        .sessions
        .list_for_user(srv.sim.workspace_id(), &b.user_id)
        .await
        .unwrap()
}

/// The token record linked to `b`'s session.
async fn linked_token(srv: &TestServer, b: &Browser) -> String {
    let key = session_key(&srv.state, &b.sid);
    srv.state
        .sessions
        .get(&key)
        .await
        .unwrap()
        .unwrap()
        .token_id
}

fn assert_session_refused(reply: &Reply) {
    reply.assert_error(401, "unauthorized");
    assert!(reply.set_cookies().is_empty(), "a refusal sets no cookie");
}

/// The login answer of the contract: user, csrfToken, expiresAt, and no bearer token.
#[tokio::test]
async fn session_login_answers_with_cookies_and_no_bearer_token() {
    let srv = TestServer::start().await;
    let (reply, b) = login(&srv, false).await;
    let body = reply.body.as_object().unwrap();
    assert!(
        !body.contains_key("token") && !body.contains_key("tokenType"),
        "{}",
        reply.text
    );
    assert!(
        !reply.text.contains("eyJ"),
        "no JWT anywhere in the answer: {}",
        reply.text
    );
    assert_eq!(reply.body["user"]["workspaceId"], srv.sim.workspace_id());
    assert!(reply.body["user"]["permissions"].is_array());
    assert_eq!(
        b.csrf, b.xsrf_cookie,
        "the body's csrfToken is the cookie's value"
    );
    assert!(reply.body["expiresAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(store_len(&srv).await, 1);
    // The session works on a protected route, and the page can ask who it is.
    let me = b.whoami(&srv).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["user"]["id"], reply.body["user"]["id"]);
    // Without "session": the answer is unchanged: a token, no cookie.
    let plain = Reply::read(
        srv.login_with(json!({"apiKey": srv.sim.api_key(), "workspaceId": srv.sim.workspace_id()}))
            .await,
    )
    .await;
    assert_eq!(plain.status, 200);
    assert!(plain.body["token"].is_string());
    assert!(plain.set_cookies().is_empty());
    assert_eq!(
        store_len(&srv).await,
        1,
        "a bearer login creates no session"
    );
    // Audit: one session_created for the login, with a fingerprint and never the id.
    let created = audited(&srv, AuditEventType::SessionCreated, "login").await;
    assert_eq!(created.len(), 1, "{created:?}");
    assert!(created[0]["session_id_hash"].is_string());
    let all = serde_json::to_string(&srv.audit.records()).unwrap();
    assert!(
        !all.contains(&b.sid) && !all.contains(&b.csrf),
        "no id or CSRF token in the audit"
    );
    srv.shutdown().await;
}

/// S1: an id the server never issued is ignored and creates nothing; a login while holding a
/// session gives a new id and kills the old one.
#[tokio::test]
async fn s1_fixation_unknown_ids_are_ignored_and_login_rotates() {
    let srv = TestServer::start().await;
    let planted = new_session_id();
    let planted_cookie = format!("mcp.sid={}", planted.expose_secret());
    let reply = send_raw(
        &srv,
        Method::GET,
        "/api/v1/auth/session",
        &[("Cookie", &planted_cookie)],
    )
    .await;
    assert_session_refused(&reply);
    assert_eq!(store_len(&srv).await, 0);
    assert!(
        srv.state
            .sessions
            .get(&session_key(&srv.state, planted.expose_secret()))
            .await
            .unwrap()
            .is_none(),
        "nothing is created under the attacker's id"
    );
    assert_eq!(
        audited(&srv, AuditEventType::AuthnTokenInvalid, "unknown_session")
            .await
            .len(),
        1
    );
    // Logging in while sending the planted id: the answer carries a fresh id.
    let (_, b) = login_with_cookie(&srv, false, Some(&planted_cookie)).await;
    assert_ne!(b.sid, planted.expose_secret());
    assert_session_refused(
        &send_raw(
            &srv,
            Method::GET,
            "/api/v1/auth/session",
            &[("Cookie", &planted_cookie)],
        )
        .await,
    );
    // Logging in again while holding an issued session: new id, the old one is dead.
    let old_token = linked_token(&srv, &b).await;
    let (_, b2) = login_with_cookie(&srv, false, Some(&b.sid_cookie())).await;
    assert_ne!(b2.sid, b.sid);
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(b2.whoami(&srv).await.status, 200);
    assert_eq!(store_len(&srv).await, 1);
    let old = srv
        .state
        .tokens
        .get(&old_token, srv.now_secs())
        .await
        .unwrap()
        .unwrap();
    assert!(
        old.revoked_at.is_some(),
        "the replaced session's token is revoked"
    );
    assert_eq!(
        audited(&srv, AuditEventType::SessionEnded, "replaced_by_login")
            .await
            .len(),
        1
    );
    srv.shutdown().await;
}

/// S2: a refresh (re-exchange) rotates the session: new id and token, the old id and token
/// dead, the absolute deadline kept, audited.
#[tokio::test]
async fn s2_refresh_rotates_the_session() {
    let srv = TestServer::start().await;
    let (first, b) = login(&srv, false).await;
    let old_token = linked_token(&srv, &b).await;
    srv.clock.advance(10 * MINUTE);
    let reply = b.refresh(&srv).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.body.get("token").is_none(),
        "a session refresh hands out no bearer token"
    );
    let b2 = Browser::from_reply(&reply, false);
    assert_ne!(b2.sid, b.sid);
    assert_ne!(b2.csrf, b.csrf);
    assert_eq!(
        reply.body["absoluteExpiresAt"],
        first.body["absoluteExpiresAt"]
    );
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(b2.whoami(&srv).await.status, 200);
    assert_eq!(store_len(&srv).await, 1);
    let new_token = linked_token(&srv, &b2).await;
    assert_ne!(new_token, old_token);
    assert!(
        srv.state
            .tokens
            .get(&old_token, srv.now_secs())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let renewed = audited(&srv, AuditEventType::SessionCreated, "renewed").await;
    assert_eq!(renewed.len(), 1);
    assert!(renewed[0]["extra"]["replaces.session"].is_string());
    assert_eq!(
        audited(&srv, AuditEventType::SessionEnded, "rotated")
            .await
            .len(),
        1
    );
    srv.shutdown().await;
}

/// S3: idle expiry, judged server-side with the injected clock.
#[tokio::test]
async fn s3_idle_expiry() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let token = linked_token(&srv, &b).await;
    for _ in 0..3 {
        srv.clock.advance(59 * MINUTE);
        assert_eq!(
            b.whoami(&srv).await.status,
            200,
            "activity at 59 min keeps it alive"
        );
    }
    srv.clock.advance(61 * MINUTE);
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(
        audited(&srv, AuditEventType::AuthnTokenInvalid, "session_expired")
            .await
            .len(),
        1
    );
    let ended = audited(&srv, AuditEventType::SessionEnded, "idle_timeout").await;
    assert_eq!(ended.len(), 1);
    assert_eq!(store_len(&srv).await, 0, "the expired session is deleted");
    assert!(
        srv.state
            .tokens
            .get(&token, srv.now_secs())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    // A later use is refused and audited as the use of an unknown (ended) session; the cookie
    // itself carried no Max-Age to edit, and resending it changes nothing.
    srv.clock.advance(MINUTE);
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(
        audited(&srv, AuditEventType::AuthnTokenInvalid, "unknown_session")
            .await
            .len(),
        1
    );
    srv.shutdown().await;
}

/// S3 with `SESSION_TTL` set: the setting is what counts.
#[tokio::test]
async fn s3_session_ttl_setting_is_honoured() {
    let srv = TestServer::start_with(&[("SESSION_TTL", "120000")]).await;
    let (_, b) = login(&srv, false).await;
    srv.clock.advance(Duration::from_secs(119));
    assert_eq!(b.whoami(&srv).await.status, 200);
    srv.clock.advance(Duration::from_secs(121));
    assert_session_refused(&b.whoami(&srv).await);
    srv.shutdown().await;
}

/// S4: the absolute lifetime ends an active session.
#[tokio::test]
async fn s4_absolute_lifetime() {
    let srv = TestServer::start().await;
    let (reply, b) = login(&srv, false).await;
    assert_ne!(reply.body["absoluteExpiresAt"], reply.body["expiresAt"]);
    // Active every 50 minutes for just under 12 h.
    for _ in 0..14 {
        srv.clock.advance(50 * MINUTE);
        assert_eq!(b.whoami(&srv).await.status, 200);
    }
    srv.clock.advance(20 * MINUTE); // 12 h 0 min
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(
        audited(&srv, AuditEventType::SessionEnded, "absolute_timeout")
            .await
            .len(),
        1
    );
    srv.shutdown().await;

    // The setting, and a refresh does not extend it.
    let srv = TestServer::start_with(&[("SESSION_ABSOLUTE_TIMEOUT", "7200000")]).await;
    let (_, b) = login(&srv, false).await;
    srv.clock.advance(50 * MINUTE);
    let fresh = b.whoami(&srv).await.body["csrfToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = Browser {
        xsrf_cookie: fresh.clone(),
        csrf: fresh,
        ..b
    };
    srv.clock.advance(40 * MINUTE);
    let rotated = b.refresh(&srv).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let b = Browser::from_reply(&rotated, false);
    srv.clock.advance(31 * MINUTE);
    assert_session_refused(&b.whoami(&srv).await);
    srv.shutdown().await;
}

/// The same name, path and attributes as the cookie set at login, with Max-Age=0.
fn assert_cleared(cleared: &SetCookie, set: &SetCookie) {
    assert_eq!(cleared.name, set.name);
    assert_eq!(cleared.value, "");
    assert_eq!(cleared.get("max-age"), Some("0"), "{}", cleared.raw);
    let without_max_age: Vec<_> = cleared
        .attributes
        .iter()
        .filter(|(k, _)| k != "max-age")
        .cloned()
        .collect();
    assert_eq!(
        without_max_age, set.attributes,
        "{} vs {}",
        cleared.raw, set.raw
    );
}

/// S5: logout deletes the session, clears both cookies, sends Clear-Site-Data, revokes the
/// linked token; the old cookie is dead.
#[tokio::test]
async fn s5_logout_ends_everything() {
    for production in [false, true] {
        let srv = browser::server(production).await;
        let (login_reply, b) = login(&srv, production).await;
        let (sid_name, xsrf_name) = names(production);
        let token = linked_token(&srv, &b).await;
        let reply = b.logout(&srv).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(
            reply.headers["clear-site-data"],
            "\"cache\",\"cookies\",\"storage\""
        );
        assert_cleared(&reply.cookie(sid_name), &login_reply.cookie(sid_name));
        assert_cleared(&reply.cookie(xsrf_name), &login_reply.cookie(xsrf_name));
        assert_eq!(store_len(&srv).await, 0);
        let record = srv
            .state
            .tokens
            .get(&token, srv.now_secs())
            .await
            .unwrap()
            .unwrap();
        assert!(record.revoked_at.is_some(), "the linked token is revoked");
        assert_session_refused(&b.whoami(&srv).await);
        assert_eq!(
            b.logout(&srv).await.status,
            401,
            "a replayed logout is refused"
        );
        assert_eq!(
            audited(&srv, AuditEventType::SessionEnded, "logout")
                .await
                .len(),
            1
        );
        srv.shutdown().await;
    }
}

/// Revoking the linked token (as the REST tokens route does) makes the session unusable.
#[tokio::test]
async fn revoking_the_linked_token_ends_the_session() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let token = linked_token(&srv, &b).await;
    assert!(srv.state.tokens.revoke(&token, 0).await.unwrap());
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(store_len(&srv).await, 0);
    assert_eq!(
        audited(&srv, AuditEventType::SessionEnded, "token_revoked")
            .await
            .len(),
        1
    );
    srv.shutdown().await;
}

/// A console request counts once in its principal's bucket; one refused for its revoked token
/// or for CSRF gives its count back or never takes one. In memory each layer counts for itself.
#[tokio::test]
async fn session_requests_count_once_in_the_principal_bucket() {
    let srv = TestServer::start().await;
    session_requests_count_once(&srv).await;
    srv.shutdown().await;
}

/// The same over Redis, where the count is taken beside the session and its token, before the
/// request is known to authenticate (`http::read_ahead`), and given back when it does not.
#[tokio::test]
async fn session_requests_count_once_in_the_principal_bucket_over_redis() {
    let Some(redis) = RedisServer::start("session_requests_count_once").await else {
        return;
    };
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let stores = Stores::redis(redis.store(&prefix("session-count")));
    let srv = TestServer::start_with_stores(sim, &[], None, stores).await;
    session_requests_count_once(&srv).await;
    srv.shutdown().await;
}

async fn session_requests_count_once(srv: &TestServer) {
    let (_, a) = login(srv, false).await;
    let (_, b) = login(srv, false).await;
    assert_eq!(a.user_id, b.user_id, "one person, two sessions");
    let remaining = |reply: &Reply| -> u64 {
        assert_eq!(reply.status, 200, "{}", reply.text);
        let value = reply.headers["ratelimit"].to_str().unwrap();
        let member = value
            .split(", ")
            .find(|m| m.starts_with("\"principal\""))
            .unwrap_or_else(|| panic!("no principal member in {value}"));
        let r = member
            .split(';')
            .find_map(|p| p.strip_prefix("r="))
            .unwrap();
        r.parse().unwrap()
    };
    let first = remaining(&a.whoami(srv).await);
    let second = remaining(&a.whoami(srv).await);
    assert_eq!(first - second, 1, "one count per request");
    let token = linked_token(srv, &b).await;
    assert!(srv.state.tokens.revoke(&token, 0).await.unwrap());
    assert_session_refused(&b.whoami(srv).await);
    let csrf = a
        .send(srv, Method::POST, "/api/v1/auth/refresh", false, &[])
        .await;
    assert_eq!(csrf.status, 403, "{}", csrf.text);
    let third = remaining(&a.whoami(srv).await);
    assert_eq!(second - third, 1, "the refused requests did not count");
}

/// S6: parallel logins get distinct ids; past the per-principal cap the oldest session ends
/// (audited); a logout racing requests never revives the session; rotation never revives the
/// old id.
#[tokio::test]
async fn s6_concurrency_and_the_per_principal_cap() {
    let srv = Arc::new(TestServer::start().await);
    let (_, oldest) = login(&srv, false).await;
    srv.clock.advance(Duration::from_secs(1));
    let mut logins = futures::future::join_all((1..MAX_SESSIONS_PER_USER).map(|_| {
        let srv = srv.clone();
        async move { login(&srv, false).await.1 }
    }))
    .await;
    logins.push(oldest.clone());
    let ids: HashSet<&str> = logins.iter().map(|b| b.sid.as_str()).collect();
    assert_eq!(
        ids.len(),
        MAX_SESSIONS_PER_USER,
        "parallel logins get distinct ids"
    );
    assert_eq!(store_len(&srv).await, MAX_SESSIONS_PER_USER);
    let oldest_token = linked_token(&srv, &oldest).await;
    srv.clock.advance(Duration::from_secs(1));
    let (_, newest) = login(&srv, false).await;
    assert_eq!(
        store_len(&srv).await,
        MAX_SESSIONS_PER_USER,
        "the cap holds"
    );
    assert_session_refused(&oldest.whoami(&srv).await);
    for b in logins.iter().filter(|b| b.sid != oldest.sid) {
        assert_eq!(
            b.whoami(&srv).await.status,
            200,
            "only the oldest session ends"
        );
    }
    assert_eq!(newest.whoami(&srv).await.status, 200);
    assert!(
        srv.state
            .tokens
            .get(&oldest_token, srv.now_secs())
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    let excess = audited(
        &srv,
        AuditEventType::SessionEnded,
        "excess_sessions_exceeded",
    )
    .await;
    assert_eq!(excess.len(), 1, "{excess:?}");
    assert_eq!(excess[0]["severity"], "medium");

    // A logout racing 20 requests: each completes before it (200) or is refused (401).
    let b = newest;
    let racing = futures::future::join_all((0..20).map(|_| {
        let (srv, b) = (srv.clone(), b.clone());
        async move { b.whoami(&srv).await.status }
    }));
    let (statuses, logout) = tokio::join!(racing, b.logout(&srv));
    assert_eq!(logout.status, 200);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    assert!(
        srv.state
            .sessions
            .get(&session_key(&srv.state, &b.sid))
            .await
            .unwrap()
            .is_none()
    );
    assert_session_refused(&b.whoami(&srv).await);

    // Requests with the old id during a rotation never revive it.
    let b = logins.iter().find(|x| x.sid != oldest.sid).unwrap().clone();
    let before = store_len(&srv).await;
    let racing = futures::future::join_all((0..20).map(|_| {
        let (srv, b) = (srv.clone(), b.clone());
        async move { b.whoami(&srv).await.status }
    }));
    let (statuses, rotated) = tokio::join!(racing, b.refresh(&srv));
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 401),
        "{statuses:?}"
    );
    assert_session_refused(&b.whoami(&srv).await);
    assert_eq!(store_len(&srv).await, before, "one session out, one in");
    assert!(
        srv.state
            .sessions
            .get(&session_key(&srv.state, &b.sid))
            .await
            .unwrap()
            .is_none()
    );
}

/// S7: 10,000 ids: unique, 32 CSPRNG bytes in base64url, no structure.
#[tokio::test]
async fn s7_session_id_quality() {
    let mut seen = HashSet::new();
    let mut ones = 0u64;
    for _ in 0..10_000 {
        let id = new_session_id();
        let id = id.expose_secret();
        assert_eq!(id.len(), 43);
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        let bytes = URL_SAFE_NO_PAD.decode(id).unwrap();
        assert_eq!(bytes.len(), 32);
        ones += bytes.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
        assert!(seen.insert(id.to_owned()), "duplicate id");
    }
    // 2,560,000 bits: a fair source gives 50% ones within a few hundredths of a percent.
    let ratio = ones as f64 / 2_560_000.0;
    assert!((0.497..0.503).contains(&ratio), "bit balance {ratio}");
    // Ids the server hands out are of the same kind and carry no user data.
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    assert_eq!(URL_SAFE_NO_PAD.decode(&b.sid).unwrap().len(), 32);
    assert!(!b.sid.contains(srv.sim.workspace_id()) && !b.sid.contains(&b.user_id));
    srv.shutdown().await;
}

/// S8: session cookie attributes, in development and production.
#[tokio::test]
async fn s8_session_cookie_attributes() {
    for production in [false, true] {
        let srv = browser::server(production).await;
        let (reply, _) = login(&srv, production).await;
        let (sid_name, _) = names(production);
        let cookie = reply.cookie(sid_name);
        assert!(cookie.has("httponly"), "{}", cookie.raw);
        assert_eq!(cookie.get("samesite"), Some("Lax"), "{}", cookie.raw);
        assert_eq!(cookie.get("path"), Some("/"), "{}", cookie.raw);
        assert!(!cookie.has("domain"), "{}", cookie.raw);
        assert!(
            !cookie.has("expires") && !cookie.has("max-age"),
            "expiry is server-side: {}",
            cookie.raw
        );
        assert_eq!(cookie.has("secure"), production, "{}", cookie.raw);
        assert!(cookie.name.len() + cookie.value.len() <= 4096);
        if production {
            assert!(cookie.name.starts_with("__Host-"));
            // The unprefixed name, which a sibling domain could set, is not read in production.
            let plain = format!("mcp.sid={}", cookie.value);
            assert_session_refused(
                &send_raw(
                    &srv,
                    Method::GET,
                    "/api/v1/auth/session",
                    &[("Cookie", &plain)],
                )
                .await,
            );
        }
        srv.shutdown().await;
    }
}

/// S9: anonymous traffic, with or without made-up session cookies, creates no session.
#[tokio::test]
async fn s9_anonymous_traffic_creates_no_sessions() {
    let srv = Arc::new(TestServer::start().await);
    let (_, b) = login(&srv, false).await;
    assert_eq!(store_len(&srv).await, 1);
    let sent = futures::stream::iter(0..10_000)
        .map(|i| {
            let srv = srv.clone();
            async move {
                let fake = new_session_id();
                let cookie = format!("mcp.sid={}", fake.expose_secret());
                let (method, path, headers): (Method, &str, Vec<(&str, &str)>) = match i % 4 {
                    0 => (Method::GET, "/health", vec![]),
                    1 => (
                        Method::GET,
                        "/api/v1/auth/session",
                        vec![("Cookie", &cookie)],
                    ),
                    2 => (
                        Method::POST,
                        "/api/v1/auth/refresh",
                        vec![("Cookie", &cookie)],
                    ),
                    _ => (Method::GET, "/api/v1/status", vec![("Cookie", &cookie)]),
                };
                send_raw(&srv, method, path, &headers).await.status
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>()
        .await;
    assert!(
        sent.iter().all(|s| *s == 200 || *s == 401),
        "{:?}",
        &sent[..10]
    );
    assert_eq!(
        store_len(&srv).await,
        1,
        "no session was created by anonymous traffic"
    );
    assert_eq!(b.whoami(&srv).await.status, 200);
}

/// S10: a full store refuses new sessions with a 503 envelope, keeps the existing ones, and
/// stays bounded; expired sessions make room.
#[tokio::test]
async fn s10_store_cap() {
    let sim = mcp_dust_server::sim::spawn(crate::common::sim_config())
        .await
        .unwrap();
    let stores = mcp_dust_server::store::Stores {
        sessions: Arc::new(MemorySessionStore::with_capacity(3)),
        ..mcp_dust_server::store::Stores::memory()
    };
    let srv = TestServer::start_with_stores(sim, &[], None, stores).await;
    let mut browsers = Vec::new();
    for _ in 0..3 {
        browsers.push(login(&srv, false).await.1);
    }
    let tokens_before = srv
        .state
        .tokens
        .list_for_user(srv.sim.workspace_id(), &browsers[0].user_id, srv.now_secs())
        .await
        .unwrap()
        .len();
    for _ in 0..20 {
        let reply = Reply::read(srv.login_with(browser::session_login_body(&srv)).await).await;
        reply.assert_error(503, "sessions_full");
        assert_eq!(reply.headers["retry-after"], "60");
        assert!(reply.set_cookies().is_empty());
    }
    assert_eq!(store_len(&srv).await, 3, "memory stays bounded");
    let tokens_after = srv
        .state
        .tokens
        .list_for_user(srv.sim.workspace_id(), &browsers[0].user_id, srv.now_secs())
        .await
        .unwrap()
        .len();
    assert_eq!(
        tokens_after, tokens_before,
        "a refused session leaves no token behind"
    );
    for b in &browsers {
        assert_eq!(
            b.whoami(&srv).await.status,
            200,
            "existing sessions keep working"
        );
    }
    srv.state.auditor.flush().await;
    let refused: Vec<Value> = srv
        .audit
        .of_type(AuditEventType::SessionCreated)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == "store_full")
        .collect();
    assert_eq!(refused.len(), 20);
    // Bearer logins are unaffected.
    assert!(!srv.token(None).await.is_empty());
    // Once sessions have expired, new ones fit again.
    srv.clock.advance(61 * MINUTE);
    login(&srv, false).await;
    assert!(store_len(&srv).await <= 3);
    srv.shutdown().await;
}

/// S11: a session id in the URL is never read.
#[tokio::test]
async fn s11_session_id_in_the_url_is_ignored() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    for query in [
        format!("?mcp.sid={}", b.sid),
        format!("?__Host-mcp.sid={}", b.sid),
        format!("?XSRF-TOKEN={}&mcp.sid={}", b.csrf, b.sid),
    ] {
        let reply = send_raw(
            &srv,
            Method::GET,
            &format!("/api/v1/auth/session{query}"),
            &[],
        )
        .await;
        assert_session_refused(&reply);
    }
    srv.shutdown().await;
}

/// S12: the store is keyed by an HMAC of the id, never the id; an in-memory store loses every
/// session on restart (documented), even with the same secret.
#[tokio::test]
async fn s12_store_keyed_by_hmac_and_restart_ends_sessions() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let stored = sessions_of(&srv, &b).await;
    assert_eq!(stored.len(), 1);
    let key = &stored[0].0;
    assert_eq!(key, &session_key(&srv.state, &b.sid));
    assert!(!key.as_str().contains(&b.sid));
    assert_eq!(key.as_str().len(), 64, "hex HMAC-SHA256");
    let raw = SessionKey::from_hmac_hex(b.sid.clone());
    assert!(srv.state.sessions.get(&raw).await.unwrap().is_none());
    let stored_text = serde_json::to_string(&stored[0].1).unwrap();
    assert!(!stored_text.contains(&b.sid));
    srv.shutdown().await;
    let restarted = TestServer::start().await;
    assert_session_refused(&b.whoami(&restarted).await);
    restarted.shutdown().await;
}

/// S13: `/mcp` stays bearer-only and stateless: a cookie alone is a 401, `Mcp-Session-Id`
/// is ignored and never minted, GET and DELETE answer 405.
#[tokio::test]
async fn s13_mcp_ignores_cookies_and_protocol_sessions() {
    let srv = TestServer::start().await;
    let (_, b) = login(&srv, false).await;
    let tools_list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let mcp = |extra: Vec<(&'static str, String)>| {
        let mut request = srv
            .http
            .post(srv.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .json(&tools_list);
        for (k, v) in extra {
            request = request.header(k, v);
        }
        request
    };
    let cookie_only = Reply::read(
        mcp(vec![
            ("Cookie", b.cookie_header()),
            ("X-XSRF-TOKEN", b.csrf.clone()),
        ])
        .send()
        .await
        .unwrap(),
    )
    .await;
    cookie_only.assert_error(401, "unauthorized");
    let token = srv.token(None).await;
    let with_session_id = Reply::read(
        mcp(vec![
            ("Authorization", format!("Bearer {token}")),
            ("Mcp-Session-Id", "attacker-chosen".into()),
        ])
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(with_session_id.status, 200, "{}", with_session_id.text);
    assert!(with_session_id.headers.get("mcp-session-id").is_none());
    assert!(!with_session_id.text.contains("attacker-chosen"));
    for method in [Method::GET, Method::DELETE] {
        let reply = Reply::read(
            srv.http
                .request(method.clone(), srv.url("/mcp"))
                .bearer_auth(&token)
                .header("Accept", "application/json, text/event-stream")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 405, "{method}");
    }
    srv.shutdown().await;
}

/// `GET /api/v1/auth/session` needs the session: bearer or nothing is a 401.
#[tokio::test]
async fn session_route_needs_the_session_cookie() {
    let srv = TestServer::start().await;
    send_raw(&srv, Method::GET, "/api/v1/auth/session", &[])
        .await
        .assert_error(401, "unauthorized");
    let token = srv.token(None).await;
    let bearer = format!("Bearer {token}");
    send_raw(
        &srv,
        Method::GET,
        "/api/v1/auth/session",
        &[("Authorization", &bearer)],
    )
    .await
    .assert_error(401, "unauthorized");
    srv.shutdown().await;
}
