//! Shared state in Redis (catalogue §6 decision 6): every store contract against a real
//! `redis-server`, the key layout, Redis outages (fail closed with 503, `/ready` 503, recovery
//! without a restart), and two server instances sharing one Redis (J9 revocation, R8 rate limit,
//! lockout, tokens issued by one and used on the other).
//!
//! Each test starts its own `redis-server` on a free loopback port (tests/common/redis_server.rs);
//! without one installed they print "skipped" (and fail in CI).

use std::{sync::Arc, time::Duration};

use crate::common::{
    browser,
    http::TestServer,
    redis_server::{RedisServer, prefix},
};
use mcp_dust_server::{
    audit::AuditEventType,
    auth::{lockout, tokens},
    http::session::session_key,
    sim::{self, SimConfig},
    store::{
        SessionKey, SessionStore, Stores,
        sessions::{Inserted, contract::record},
    },
};
use serde_json::{Value, json};

async fn sim() -> sim::SimHandle {
    sim::spawn(SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// A server whose stores live in `redis` under `prefix`.
async fn server_on(redis: &RedisServer, prefix: &str, env: &[(&str, &str)]) -> TestServer {
    TestServer::start_with_stores(sim().await, env, None, Stores::redis(redis.store(prefix))).await
}

/// What every instance of one deployment shares besides Redis: the secret (set by
/// `TestServer`) and the public URL, which is the tokens' issuer and audience.
const CLUSTER: (&str, &str) = ("MCP_PUBLIC_URL", "http://mcp.cluster.test");

/// A second instance: same Redis and prefix, same Dust (the first instance's simulator).
async fn twin_of(
    first: &TestServer,
    redis: &RedisServer,
    prefix: &str,
    env: &[(&str, &str)],
) -> TestServer {
    TestServer::start_with_stores(
        sim().await,
        env,
        Some(&first.sim.base_url()),
        Stores::redis(redis.store(prefix)),
    )
    .await
}

async fn get(s: &TestServer, path: &str) -> reqwest::Response {
    s.http.get(s.url(path)).send().await.unwrap()
}

/// A token from `s` for the Dust key of `dust` (a twin talks to its first instance's Dust).
async fn token_on(s: &TestServer, dust: &TestServer) -> String {
    let response = s
        .login_with(json!({"apiKey": dust.sim.api_key(), "workspaceId": dust.sim.workspace_id()}))
        .await;
    assert_eq!(response.status(), 200, "login");
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// `tools/call get_workspace` through `/mcp`: an authenticated call that reaches Dust.
async fn call(s: &TestServer, token: &str) -> reqwest::Response {
    s.http
        .post(s.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "get_workspace", "arguments": {}}}))
        .send()
        .await
        .unwrap()
}

/// The status of [`call`], after checking that a 200 carries the workspace.
async fn call_status(s: &TestServer, token: &str) -> u16 {
    let response = call(s, token).await;
    let status = response.status().as_u16();
    if status == 200 {
        let body = crate::common::http::parse_mcp_body(&response.text().await.unwrap());
        assert_eq!(body["result"]["isError"], json!(false), "{body}");
        assert!(
            body["result"]["structuredContent"]["id"].is_string(),
            "{body}"
        );
    }
    status
}

/// A raw connection for looking at what the server stored.
async fn raw(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Contracts
// ---------------------------------------------------------------------------------------------

// One test per contract case, each on a `redis-server` of its own (skipped when none is
// installed, outside CI) with a store under a fresh prefix: a case never sees another's keys,
// and a failing case names itself (`shared_state::counter_store_contract::keys_are_independent`).

mod conversation_store_contract {
    use super::*;
    mcp_dust_server::conversation_store_contract_tests!({
        let Some(redis) = RedisServer::start("conversation_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("conversations")));
}

mod counter_store_contract {
    use super::*;
    mcp_dust_server::counter_store_contract_tests!({
        let Some(redis) = RedisServer::start("counter_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("counters")));
}

mod failure_store_contract {
    use super::*;
    mcp_dust_server::failure_store_contract_tests!({
        let Some(redis) = RedisServer::start("failure_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("failures")));
}

mod session_store_contract {
    use super::*;
    mcp_dust_server::session_store_contract_tests!({
        let Some(redis) = RedisServer::start("session_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("sessions")));
}

mod oauth_store_contract {
    use super::*;
    mcp_dust_server::oauth_store_contract_tests!({
        let Some(redis) = RedisServer::start("oauth_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("oauth")).with_unused_client_capacity(
        mcp_dust_server::store::oauth::contract::UNUSED_CAPACITY,
    ));
}

mod token_store_contract {
    use super::*;
    mcp_dust_server::token_store_contract_tests!({
        let Some(redis) = RedisServer::start("token_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("tokens")));
}

/// The policies `auth` applies over these stores (the live-token cap, login throttling), on
/// Redis: one server for both.
#[tokio::test]
async fn auth_policies_hold_over_redis() {
    let Some(redis) = RedisServer::start("auth_policies_hold_over_redis").await else {
        return;
    };
    let store = Arc::new(redis.store(&prefix("policies")));
    tokens::testing::live_token_cap(store.as_ref()).await;
    lockout::testing::login_throttle_contract(store).await;
}

/// The memory store's size-cap rule, in Redis: when full, expired sessions are purged, a live
/// one is never evicted, and existing sessions keep working.
#[tokio::test]
async fn the_redis_session_store_is_bounded_and_purges_expired_sessions_when_full() {
    let Some(redis) = RedisServer::start("redis_session_store_is_bounded").await else {
        return;
    };
    let store = redis.store(&prefix("sess-cap")).with_session_capacity(3);
    let now = 1_700_000_000_000;
    let key = |i: usize| SessionKey::from_hmac_hex(format!("k{i}"));
    for i in 0..3 {
        let r = record("w", "u", now + i as i64);
        assert_eq!(
            store.insert(&key(i), r, now).await.unwrap(),
            Inserted::Stored
        );
    }
    let later = now + 3_600_001;
    let extra = record("w", "u", later);
    assert_eq!(
        store.insert(&key(9), extra.clone(), now).await.unwrap(),
        Inserted::Full
    );
    assert_eq!(store.count().await.unwrap(), 3);
    assert_eq!(store.get(&key(9)).await.unwrap(), None);
    assert!(store.touch(&key(0), now + 1, now + 100).await.unwrap());
    for i in [1, 2] {
        assert!(
            store
                .touch(&key(i), later, later + 3_600_000)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        store.insert(&key(9), extra, later).await.unwrap(),
        Inserted::Stored
    );
    assert_eq!(
        store.get(&key(0)).await.unwrap(),
        None,
        "the expired one went"
    );
    assert!(store.get(&key(1)).await.unwrap().is_some());
    assert_eq!(store.count().await.unwrap(), 3);
    let listed = store.list_for_user("w", "u").await.unwrap();
    assert_eq!(
        listed.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        [key(1), key(2), key(9)],
        "oldest first, the purged one pruned"
    );
}

#[tokio::test]
async fn keys_sit_under_the_prefix_expire_and_hold_no_secret_in_clear() {
    let Some(redis) = RedisServer::start("keys_sit_under_the_prefix").await else {
        return;
    };
    let p = prefix("layout");
    let s = server_on(
        &redis,
        &p,
        &[
            ("SECURITY_TOKEN_EXPIRATION", "600"),
            ("SESSION_TTL", "300000"),
            ("SESSION_ABSOLUTE_TIMEOUT", "600000"),
        ],
    )
    .await;
    let token = s.token(None).await;
    assert_eq!(call_status(&s, &token).await, 200);
    // A failed login, for a lockout counter.
    let bad = s
        .login_with(json!({"apiKey": format!("sk-{}", "0".repeat(32)), "workspaceId": s.sim.workspace_id()}))
        .await;
    assert_eq!(bad.status(), 401);
    // A browser session, for the session keys.
    let (_, browser) = crate::common::browser::login(&s, false).await;
    assert_eq!(browser.whoami(&s).await.status, 200);

    let mut conn = raw(&redis).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(key.starts_with(&p), "{key} outside the prefix {p}");
        let ttl: i64 = redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no expiry ({ttl})");
        let kind = key.trim_start_matches(&p);
        // Every key names its Redis Cluster slot by a hash tag (src/store/redis/mod.rs).
        let tag = kind.find('{').zip(kind.find('}'));
        assert!(
            matches!(tag, Some((a, b)) if b > a + 1),
            "{key} has no hash tag"
        );
        if ["tok:", "user-tokens:", "user-sess:", "sess-all"]
            .iter()
            .any(|k| kind.starts_with(k))
        {
            assert!(ttl <= 600, "{key} outlives its token or session ({ttl} s)");
        }
        if kind.starts_with("sess:") {
            // The idle timeout, not the absolute lifetime (12 h).
            assert!(ttl <= 300, "{key} outlives the idle timeout ({ttl} s)");
        }
    }
    for kind in [
        "tok:",
        "user-tokens:",
        "rl:",
        "lockout:{ip:",
        "lockout:{key:",
        "sess:",
        "user-sess:",
        "sess-all",
    ] {
        assert!(
            keys.iter().any(|k| k.starts_with(&format!("{p}{kind}"))),
            "no {kind} key in {keys:?}"
        );
    }
    // Neither the Dust key nor the JWT is stored in clear anywhere.
    for key in &keys {
        let dump: Vec<u8> = redis::cmd("DUMP")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&dump);
        assert!(
            !text.contains(s.sim.api_key()),
            "the Dust key in clear in {key}"
        );
        assert!(!text.contains(&token), "the JWT in {key}");
        for (what, secret) in [
            ("session id", &browser.sid),
            ("CSRF cookie", &browser.xsrf_cookie),
            ("CSRF token", &browser.csrf),
        ] {
            assert!(!text.contains(secret.as_str()), "the {what} in {key}");
            assert!(
                !key.contains(secret.as_str()),
                "the {what} in the key name {key}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------------------------

/// Asserts the 503 envelope of an unavailable store.
async fn assert_store_unavailable(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("5"),
        "{what}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{what}: {body}");
    assert!(body["error"]["requestId"].is_string(), "{body}");
    assert!(!body.to_string().contains("127.0.0.1"), "{body}");
}

#[tokio::test]
async fn a_redis_outage_fails_closed_and_the_server_recovers_by_itself() {
    let Some(mut redis) = RedisServer::start("a_redis_outage_fails_closed").await else {
        return;
    };
    let s = server_on(&redis, &prefix("outage"), &[]).await;
    let token = s.token(None).await;
    assert_eq!(call_status(&s, &token).await, 200);
    let ready: Value = get(&s, "/ready").await.json().await.unwrap();
    assert_eq!(ready, json!({"status": "ready"}));

    redis.stop();
    let dust_calls = s.sim.requests().len();
    let started = std::time::Instant::now();
    assert_store_unavailable(call(&s, &token).await, "MCP call").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a refused connection fails fast ({:?})",
        started.elapsed()
    );
    assert_store_unavailable(
        s.login_with(json!({"apiKey": s.sim.api_key(), "workspaceId": s.sim.workspace_id()}))
            .await,
        "login",
    )
    .await;
    assert_eq!(s.sim.requests().len(), dust_calls, "nothing reached Dust");
    let ready = get(&s, "/ready").await;
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["store"], "redis");
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(get(&s, "/health").await.status(), 200, "still alive");

    // Redis comes back empty (no persistence): the old token's record is gone, so the token is
    // refused (never accepted without its record); a new login works. No server restart.
    redis.restart().await;
    let mut ready_again = false;
    for _ in 0..50 {
        if get(&s, "/ready").await.status() == 200 {
            ready_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready_again, "/ready recovers without a restart");
    assert_eq!(call_status(&s, &token).await, 401);
    let fresh = s.token(None).await;
    assert_eq!(call_status(&s, &fresh).await, 200);
}

#[tokio::test]
async fn a_frozen_redis_times_out_within_the_deadline() {
    let Some(redis) = RedisServer::start("a_frozen_redis_times_out").await else {
        return;
    };
    let s = server_on(&redis, &prefix("frozen"), &[]).await;
    let token = s.token(None).await;
    redis.signal("-STOP");
    let started = std::time::Instant::now();
    let response = call(&s, &token).await;
    let waited = started.elapsed();
    assert_store_unavailable(response, "frozen Redis").await;
    // The store's deadline is 500 ms; no request hangs on a Redis that never answers.
    assert!(waited < Duration::from_secs(2), "waited {waited:?}");
    assert_eq!(get(&s, "/ready").await.status(), 503);
    redis.signal("-CONT");
    let mut ok = false;
    for _ in 0..50 {
        if call_status(&s, &token).await == 200 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the same token works again once Redis answers");
}

// ---------------------------------------------------------------------------------------------
// Two instances, one Redis
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_token_from_one_instance_works_on_the_other_and_its_revocation_at_once() {
    let Some(redis) = RedisServer::start("two_instances_tokens").await else {
        return;
    };
    let p = prefix("twins");
    let a = server_on(&redis, &p, &[CLUSTER]).await;
    let b = twin_of(&a, &redis, &p, &[CLUSTER]).await;

    let token = a.token(None).await;
    assert_eq!(call_status(&b, &token).await, 200, "issued on A, used on B");

    // J9: logout on A; B refuses the token on the very next request and audits the reuse.
    let logout = a
        .http
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let refused = call(&b, &token).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    b.state.auditor.flush().await;
    assert!(
        !b.audit.of_type(AuditEventType::AuthnTokenReuse).is_empty(),
        "B audits the reuse of a token revoked on A"
    );

    // Refresh on B revokes the old token for A too.
    let second = token_on(&b, &a).await;
    let refreshed: Value = b
        .http
        .post(b.url("/api/v1/auth/refresh"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let third = refreshed["token"].as_str().unwrap();
    assert_eq!(call_status(&a, &second).await, 401);
    assert_eq!(call_status(&a, third).await, 200);
}

/// A console session on two instances (`http::read_ahead`): the instance that started it knows
/// where it leads and reads its session, token and count in one round trip, sliding its idle
/// deadline without the request waiting; the other learns it at its first request. Either way
/// an end on one instance (logout, a revoked token) is refused by the other at its next request.
#[tokio::test]
async fn a_console_session_works_on_both_instances_and_its_end_reaches_both_at_once() {
    let Some(redis) = RedisServer::start("two_instances_sessions").await else {
        return;
    };
    let p = prefix("twin-sessions");
    let a = server_on(&redis, &p, &[CLUSTER]).await;
    let b = twin_of(&a, &redis, &p, &[CLUSTER]).await;

    let (_, x) = browser::login(&a, false).await;
    assert_eq!(a.state.session_hints.held(), Some(1), "A started it");
    assert_eq!(b.state.session_hints.held(), Some(0));
    let key = session_key(&a.state, &x.sid);
    let started = a.state.sessions.get(&key).await.unwrap().unwrap();
    // A: one round trip; the idle deadline slides once the answer is on its way.
    a.clock.advance(Duration::from_secs(1));
    assert_eq!(x.whoami(&a).await.status, 200);
    let mut slid = false;
    for _ in 0..200 {
        let now = a.state.sessions.get(&key).await.unwrap().unwrap();
        if now.last_seen_ms == started.last_seen_ms + 1000 {
            assert_eq!(now.expires_at_ms, started.expires_at_ms + 1000);
            slid = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        slid,
        "the idle deadline slid after a one-round-trip request"
    );
    // B: two round trips the first time, then it knows the session too.
    for _ in 0..2 {
        let reply = x.whoami(&b).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    assert_eq!(b.state.session_hints.held(), Some(1), "B learned it");
    // Logout on A: B refuses the cookie at once.
    assert_eq!(x.logout(&a).await.status, 200);
    let refused = x.whoami(&b).await;
    refused.assert_error(401, "unauthorized");

    // A token revoked on B ends the session A knows, at A's next request.
    let (_, y) = browser::login(&a, false).await;
    assert_eq!(y.whoami(&b).await.status, 200);
    let token = a
        .state
        .sessions
        .get(&session_key(&a.state, &y.sid))
        .await
        .unwrap()
        .unwrap()
        .token_id;
    assert!(b.state.tokens.revoke(&token, 0).await.unwrap());
    y.whoami(&a).await.assert_error(401, "unauthorized");
    assert!(
        !browser::audited(&a, AuditEventType::SessionEnded, "token_revoked")
            .await
            .is_empty()
    );
    y.whoami(&b).await.assert_error(401, "unauthorized");
}

#[tokio::test]
async fn the_rate_limit_is_shared_a_burst_across_two_instances_is_cut_at_the_limit() {
    let Some(redis) = RedisServer::start("two_instances_rate_limit").await else {
        return;
    };
    let p = prefix("r8");
    let env = [CLUSTER, ("RATE_LIMIT_MAX", "10")];
    let a = server_on(&redis, &p, &env).await;
    let b = twin_of(&a, &redis, &p, &env).await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { &a } else { &b };
        statuses.push(get(s, "/api/v1/status").await.status().as_u16());
    }
    let passed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (passed, limited),
        (10, 10),
        "10 in total, not 10 per instance: {statuses:?}"
    );
    assert!(statuses[..10].iter().all(|s| *s == 200), "{statuses:?}");
    // Both instances report the same shared budget.
    let last = get(&a, "/api/v1/status").await;
    assert_eq!(last.status(), 429);
    assert_eq!(last.headers()["x-ratelimit-remaining"], "0");
}

#[tokio::test]
async fn a_key_locked_out_on_one_instance_is_locked_out_on_the_other() {
    let Some(redis) = RedisServer::start("two_instances_lockout").await else {
        return;
    };
    let p = prefix("lockout");
    let a = server_on(&redis, &p, &[CLUSTER]).await;
    let b = twin_of(&a, &redis, &p, &[CLUSTER]).await;
    // A well-formed key Dust does not know, tried alternately on A and B.
    let wrong =
        json!({"apiKey": format!("sk-{}", "7".repeat(32)), "workspaceId": a.sim.workspace_id()});
    for i in 0..lockout::KEY_MAX_FAILURES {
        let s = if i % 2 == 0 { &a } else { &b };
        assert_eq!(
            s.login_with(wrong.clone()).await.status(),
            401,
            "attempt {i}"
        );
    }
    let dust_calls = a.sim.requests().len();
    for s in [&a, &b] {
        let refused = s.login_with(wrong.clone()).await;
        assert_eq!(refused.status(), 429);
        assert!(refused.headers().contains_key("retry-after"));
    }
    assert_eq!(
        a.sim.requests().len(),
        dust_calls,
        "locked out before the upstream call, on both instances"
    );
    // The right key is not locked.
    assert_eq!(
        b.login_with(json!({"apiKey": a.sim.api_key(), "workspaceId": a.sim.workspace_id()}))
            .await
            .status(),
        200
    );
}
