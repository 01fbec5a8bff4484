//! Hostile tests of rate limiting (security catalogue §4.6 R1–R7, R9): a real server on
//! 127.0.0.1:0 with connect info, clients bound to 127.0.0.2, 127.0.0.3, … for distinct
//! addresses, and the manual clock to cross windows. R8 (two instances, shared store) is in
//! `tests/all/shared_state.rs`, against Redis; R10 (IPv6 /64 keys) is a unit test in
//! `http::rate_limit`.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::common::{
    http::TestServer,
    redis_server::{RedisServer, prefix},
};
use async_trait::async_trait;
use futures::StreamExt;
use mcp_dust_server::{
    audit::AuditEventType,
    http::rate_limit::{LOGIN_WINDOW, PRINCIPAL_QUOTA_FACTOR},
    sim::{self, SimConfig},
    store::{CounterStore, StoreError, Stores, WindowCount},
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// A client whose requests come from 127.0.0.`last`.
fn client(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, last]))
        .build()
        .unwrap()
}

async fn get(c: &reqwest::Client, s: &TestServer, path: &str) -> reqwest::Response {
    c.get(s.url(path)).send().await.unwrap()
}

/// The parameters of list member `"name"` of a `RateLimit` or `RateLimit-Policy` field.
fn member(headers: &HeaderMap, field: &str, name: &str) -> Option<HashMap<String, u64>> {
    let value = headers.get(field)?.to_str().ok()?;
    let quoted = format!("\"{name}\"");
    value.split(',').map(str::trim).find_map(|m| {
        let mut parts = m.split(';');
        (parts.next()? == quoted).then(|| {
            parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.to_owned(), v.parse().ok()?))
                })
                .collect()
        })
    })
}

fn number(headers: &HeaderMap, name: &str) -> u64 {
    headers[name].to_str().unwrap().parse().unwrap()
}

/// `r` and `t` of the `default` bucket.
fn default_state(headers: &HeaderMap) -> (u64, u64) {
    let m = member(headers, "ratelimit", "default").expect("RateLimit \"default\"");
    (m["r"], m["t"])
}

async fn ratelimit_records(s: &TestServer) -> Vec<Value> {
    s.state.auditor.flush().await;
    s.audit.of_type(AuditEventType::RatelimitExceeded)
}

async fn assert_429(response: reqwest::Response) -> HeaderMap {
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["requestId"].is_string(), "{body}");
    headers
}

// ---------------------------------------------------------------------------------------------
// R1–R3: the per-IP bucket and its fields
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r1_burst_of_150_lets_exactly_the_limit_through() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "20")]).await;
    let c = client(2);
    let statuses: Vec<u16> = futures::stream::iter(0..150)
        .map(|_| {
            let c = c.clone();
            let url = s.url("/api/v1/status");
            async move { c.get(url).send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(150)
        .collect()
        .await;
    assert_eq!(statuses.iter().filter(|&&code| code != 429).count(), 20);
    assert!(statuses.iter().all(|&code| code == 200 || code == 429));
    let next = get(&c, &s, "/api/v1/status").await;
    let headers = assert_429(next).await;
    assert!(number(&headers, "retry-after") >= 1);
}

#[tokio::test]
async fn r2_header_values_are_consistent_and_r_falls_by_one() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "5"), ("RATE_LIMIT_WINDOW", "3600")]).await;
    let c = client(2);
    for k in 0..5 {
        let response = get(&c, &s, "/api/v1/status").await;
        assert_eq!(response.status(), 200);
        let h = response.headers();
        assert_eq!(h["ratelimit-policy"], "\"default\";q=5;w=3600");
        let (r, t) = default_state(h);
        assert_eq!(r, 4 - k, "r falls by exactly one");
        assert_eq!(t, 3600 - 100 * k, "t follows the clock");
        assert_eq!(number(h, "x-ratelimit-limit"), 5);
        assert_eq!(number(h, "x-ratelimit-remaining"), r);
        assert_eq!(number(h, "x-ratelimit-reset"), t);
        s.clock.advance(Duration::from_secs(100));
    }
    for _ in 0..3 {
        let h = assert_429(get(&c, &s, "/api/v1/status").await).await;
        let (r, t) = default_state(&h);
        assert_eq!(r, 0, "never negative");
        assert_eq!(t, 3600 - 500);
        assert!(number(&h, "retry-after") >= t);
        assert_eq!(number(&h, "x-ratelimit-remaining"), 0);
        assert_eq!(number(&h, "x-ratelimit-reset"), t);
        assert_eq!(h["ratelimit-policy"], "\"default\";q=5;w=3600");
    }
}

#[tokio::test]
async fn r3_the_window_resets_after_w() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "3"), ("RATE_LIMIT_WINDOW", "60")]).await;
    let c = client(2);
    for _ in 0..3 {
        assert_eq!(get(&c, &s, "/api/v1/status").await.status(), 200);
    }
    s.clock.advance(Duration::from_secs(59));
    let h = assert_429(get(&c, &s, "/api/v1/status").await).await;
    assert_eq!(default_state(&h), (0, 1));
    s.clock.advance(Duration::from_secs(1));
    let response = get(&c, &s, "/api/v1/status").await;
    assert_eq!(response.status(), 200);
    assert_eq!(default_state(response.headers()), (2, 60), "a fresh window");
}

#[tokio::test]
async fn another_address_is_unaffected_while_one_is_limited() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "3")]).await;
    let (abuser, other) = (client(2), client(3));
    for _ in 0..10 {
        get(&abuser, &s, "/api/v1/status").await;
    }
    assert_eq!(get(&abuser, &s, "/api/v1/status").await.status(), 429);
    let response = get(&other, &s, "/api/v1/status").await;
    assert_eq!(response.status(), 200);
    assert_eq!(default_state(response.headers()).0, 2);
}

#[tokio::test]
async fn unauthenticated_requests_count_and_floods_of_bad_tokens_stop_before_authentication() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "3")]).await;
    let c = client(6);
    for expected in (0..3).rev() {
        let response = c
            .post(s.url("/mcp"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(default_state(response.headers()).0, expected);
    }
    for _ in 0..20 {
        let response = c
            .post(s.url("/mcp"))
            .bearer_auth("not.a.token")
            .send()
            .await
            .unwrap();
        assert_429(response).await;
    }
    s.state.auditor.flush().await;
    assert_eq!(
        s.audit.of_type(AuditEventType::AuthnTokenInvalid).len(),
        3,
        "refused tokens past the limit were never looked at"
    );
}

// ---------------------------------------------------------------------------------------------
// R4–R5: which address is counted
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r4_forwarding_headers_are_ignored_without_trusted_proxies() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "20")]).await;
    let mut statuses = Vec::new();
    for i in 0..60u32 {
        let spoofed = format!("198.51.100.{}", i % 250);
        let request = s.http.get(s.url("/api/v1/status"));
        let request = match i % 3 {
            0 => request.header("X-Forwarded-For", &spoofed),
            1 => request.header("X-Real-IP", &spoofed),
            _ => request.header("Forwarded", format!("for={spoofed}")),
        };
        statuses.push(request.send().await.unwrap().status().as_u16());
    }
    assert!(statuses[..20].iter().all(|&c| c == 200), "{statuses:?}");
    assert!(statuses[20..].iter().all(|&c| c == 429), "{statuses:?}");
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["ip"], "127.0.0.1", "the audit records the peer");
}

#[tokio::test]
async fn r5_trusted_proxy_rightmost_untrusted_entry_is_the_key() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "3"), ("TRUSTED_PROXIES", "127.0.0.1/32")])
        .await;
    let via_proxy = |xff: &str| {
        s.http
            .get(s.url("/api/v1/status"))
            .header("X-Forwarded-For", xff.to_owned())
            .send()
    };
    // 203.0.113.9, whatever the client prepended: one key.
    for xff in [
        "203.0.113.9",
        "1.1.1.1, 203.0.113.9",
        "8.8.8.8, 203.0.113.9",
    ] {
        assert_eq!(via_proxy(xff).await.unwrap().status(), 200, "{xff}");
    }
    let limited = via_proxy("1.1.1.1, 203.0.113.9").await.unwrap();
    assert_429(limited).await;
    // Another forwarded client has its own bucket, and so does the proxy itself.
    let other = via_proxy("203.0.113.10").await.unwrap();
    assert_eq!(other.status(), 200);
    assert_eq!(default_state(other.headers()).0, 2);
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["ip"], "203.0.113.9",
        "the audit records the derived IP"
    );

    // An untrusted peer's XFF is ignored: keyed by 127.0.0.3.
    let untrusted = client(3);
    for i in 0..3 {
        let response = untrusted
            .get(s.url("/api/v1/status"))
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let response = untrusted
        .get(s.url("/api/v1/status"))
        .header("X-Forwarded-For", "198.51.100.99")
        .send()
        .await
        .unwrap();
    assert_429(response).await;
}

#[tokio::test]
async fn r5_malformed_forwarded_headers_fall_back_to_the_peer() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "5"), ("TRUSTED_PROXIES", "127.0.0.1/32")])
        .await;
    let many = vec!["203.0.113.9"; 100].join(", ");
    let long = format!("{}, 203.0.113.9", "1.1.1.1, ".repeat(8 * 1024 / 9));
    let bad = [
        "unknown",
        "999.1.1.1",
        "[2001:db8::1]:8080",
        many.as_str(),
        long.as_str(),
    ];
    // Every malformed header lands in the proxy's own bucket (127.0.0.1): 5 fit, then 429.
    let mut remaining = Vec::new();
    for xff in bad {
        let response = s
            .http
            .get(s.url("/api/v1/status"))
            .header("X-Forwarded-For", xff)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{xff:.40}");
        remaining.push(default_state(response.headers()).0);
    }
    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    let response = s
        .http
        .get(s.url("/api/v1/status"))
        .header("X-Forwarded-For", "unknown")
        .send()
        .await
        .unwrap();
    assert_429(response).await;
    // A well-formed header is still believed.
    let response = s
        .http
        .get(s.url("/api/v1/status"))
        .header("X-Forwarded-For", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// R6: health exemption, exact paths only
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r6_health_endpoints_are_exempt_by_exact_path_only() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "20")]).await;
    let c = client(2);
    let statuses: Vec<(u16, bool)> = futures::stream::iter(0..1000)
        .map(|i| {
            let c = c.clone();
            let url = s.url(["/health", "/ready", "/live"][i % 3]);
            async move {
                let response = c.get(url).send().await.unwrap();
                (
                    response.status().as_u16(),
                    response.headers().contains_key("ratelimit"),
                )
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|&(code, _)| code == 200));
    assert!(statuses.iter().all(|&(_, fields)| !fields), "not counted");
    let response = get(&c, &s, "/api/v1/status").await;
    assert_eq!(
        default_state(response.headers()).0,
        19,
        "health was never counted"
    );

    let mut expected = 19;
    for path in [
        "/HEALTH",
        "//health",
        "/health/x",
        "/health;x",
        "/health/",
        "/health%2F..%2Fmcp",
        "/health/../mcp",
        "/mcp?p=/health",
        "/Ready",
        "/live/",
    ] {
        expected -= 1;
        let response = get(&c, &s, path).await;
        assert_ne!(response.status(), 200, "{path}");
        assert_ne!(response.status(), 429, "{path}");
        assert_eq!(
            default_state(response.headers()).0,
            expected,
            "{path} is counted"
        );
    }
    // `/health` shows no version or configuration.
    let body = get(&c, &s, "/health").await.text().await.unwrap();
    assert!(!body.contains(env!("CARGO_PKG_VERSION")), "{body}");
}

// ---------------------------------------------------------------------------------------------
// R7: the login and principal buckets
// ---------------------------------------------------------------------------------------------

fn login_body(s: &TestServer, key: &str) -> Value {
    json!({"apiKey": key, "workspaceId": s.sim.workspace_id()})
}

#[tokio::test]
async fn r7_login_has_a_stricter_bucket_that_counts_successes_too() {
    let s =
        TestServer::start_with(&[("RATE_LIMIT_MAX", "100"), ("RATE_LIMIT_LOGIN_MAX", "3")]).await;
    let c = client(2);
    let url = s.url("/api/v1/auth/login");
    let good = login_body(&s, s.sim.api_key());
    let wrong = login_body(&s, &format!("sk-{}", uuid::Uuid::new_v4().simple()));
    let mut statuses = Vec::new();
    for body in [&good, &wrong, &good] {
        let response = c.post(&url).json(body).send().await.unwrap();
        let login = member(response.headers(), "ratelimit", "login").unwrap();
        statuses.push((response.status().as_u16(), login["r"]));
    }
    assert_eq!(statuses, [(200, 2), (401, 1), (200, 0)]);
    let upstream = s.sim.requests().len();
    let h = assert_429(c.post(&url).json(&good).send().await.unwrap()).await;
    assert_eq!(s.sim.requests().len(), upstream, "refused before Dust");
    assert_eq!(
        h["ratelimit-policy"],
        format!(
            "\"default\";q=100;w=3600, \"login\";q=3;w={}",
            LOGIN_WINDOW.as_secs()
        )
    );
    let login = member(&h, "ratelimit", "login").unwrap();
    assert_eq!(login["r"], 0);
    assert_eq!(number(&h, "x-ratelimit-limit"), 3, "the binding bucket");
    assert_eq!(number(&h, "x-ratelimit-remaining"), 0);
    assert_eq!(number(&h, "x-ratelimit-reset"), login["t"]);
    assert!(number(&h, "retry-after") >= login["t"]);
    assert_eq!(
        default_state(&h).0,
        96,
        "the per-IP bucket counts logins too"
    );
    // Other routes from that address, and logins from another one, are not affected.
    assert_eq!(get(&c, &s, "/api/v1/status").await.status(), 200);
    let other = client(3).post(&url).json(&good).send().await.unwrap();
    assert_eq!(other.status(), 200);
    // After the login window the address may log in again.
    s.clock.advance(LOGIN_WINDOW);
    assert_eq!(c.post(&url).json(&good).send().await.unwrap().status(), 200);
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["extra"]["rate_limit.policy"], "login");
    assert_eq!(records[0]["path"], "/api/v1/auth/login");
}

async fn tools_list(c: &reqwest::Client, s: &TestServer, token: &str) -> reqwest::Response {
    c.post(s.url("/mcp"))
        .header("Accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn r7_a_principal_spread_over_addresses_hits_its_own_bucket() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "2")]).await;
    let quota = 2 * PRINCIPAL_QUOTA_FACTOR;
    let login = client(2)
        .post(s.url("/api/v1/auth/login"))
        .json(&login_body(&s, s.sim.api_key()))
        .send()
        .await
        .unwrap();
    let body: Value = login.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    let mut used = 0;
    for last in 3u8.. {
        if used == quota {
            break;
        }
        let c = client(last);
        for _ in 0..2 {
            let response = tools_list(&c, &s, &token).await;
            assert_eq!(response.status(), 200);
            used += 1;
            let h = response.headers();
            let principal = member(h, "ratelimit", "principal").expect("principal member");
            assert_eq!(principal["r"], quota - used);
            assert!(member(h, "ratelimit-policy", "default").is_some());
            assert_eq!(
                member(h, "ratelimit-policy", "principal").unwrap()["q"],
                quota
            );
        }
    }
    // A fresh address, well within its own bucket: the principal's is spent.
    let fresh = client(100);
    let h = assert_429(tools_list(&fresh, &s, &token).await).await;
    assert_eq!(default_state(&h).0, 1);
    assert_eq!(member(&h, "ratelimit", "principal").unwrap()["r"], 0);
    assert_eq!(number(&h, "x-ratelimit-limit"), quota);
    // Unauthenticated requests from that address still pass: 401s never reach the principal.
    assert_eq!(get(&fresh, &s, "/api/v1/status").await.status(), 200);
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["extra"]["rate_limit.policy"], "principal");
    assert!(records[0]["user_id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(records[0]["ip"], "127.0.0.100");
}

/// The principal's bucket counts exactly the authenticated requests: 401s, a revoked token
/// presented again and a route that does not authenticate are not counted. In memory each
/// layer counts for itself.
#[tokio::test]
async fn r7_the_principal_bucket_counts_only_authenticated_requests() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "4")]).await;
    principal_bucket_counts_only_authenticated_requests(&s).await;
}

/// The same over Redis, where the principal's bucket is counted beside the token lookup,
/// before anyone knows whether the request will count (one store round trip,
/// `http::read_ahead`): whatever does not pass authentication gives its increment back.
#[tokio::test]
async fn r7_the_principal_bucket_counts_only_authenticated_requests_over_redis() {
    let Some(redis) = RedisServer::start("r7_principal_bucket").await else {
        return;
    };
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let stores = Stores::redis(redis.store(&prefix("r7")));
    let s = TestServer::start_with_stores(sim, &[("RATE_LIMIT_MAX", "4")], None, stores).await;
    principal_bucket_counts_only_authenticated_requests(&s).await;
}

async fn principal_bucket_counts_only_authenticated_requests(s: &TestServer) {
    let quota = 4 * PRINCIPAL_QUOTA_FACTOR;
    let login = |c: reqwest::Client| {
        let request = c
            .post(s.url("/api/v1/auth/login"))
            .json(&login_body(s, s.sim.api_key()));
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["token"].as_str().unwrap().to_owned()
        }
    };
    let token = login(client(2)).await;
    // Four authenticated requests from one address, then three its own bucket refuses.
    let c = client(3);
    for used in 1..=4 {
        let response = tools_list(&c, s, &token).await;
        assert_eq!(response.status(), 200);
        let principal = member(response.headers(), "ratelimit", "principal").unwrap();
        assert_eq!(principal["r"], quota - used);
    }
    for _ in 0..3 {
        assert_429(tools_list(&c, s, &token).await).await;
    }
    // The same person's second token, logged out (an authenticated request: it counts), then
    // presented again: refused, not counted.
    let other = login(client(4)).await;
    let logout = client(4)
        .post(s.url("/api/v1/auth/logout"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success(), "{}", logout.status());
    for _ in 0..2 {
        let response = tools_list(&client(4), s, &other).await;
        assert_eq!(response.status(), 401);
    }
    // A valid token on a route that does not authenticate: not counted either.
    for _ in 0..2 {
        let response = client(6)
            .get(s.url("/nowhere"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
    }
    let response = tools_list(&client(5), s, &token).await;
    assert_eq!(response.status(), 200);
    let principal = member(response.headers(), "ratelimit", "principal").unwrap();
    assert_eq!(
        principal["r"],
        quota - 6,
        "4 calls, the logout and this one"
    );
}

// ---------------------------------------------------------------------------------------------
// R9: audit of refusals, sampled
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn r9_one_audit_record_per_key_and_window_under_a_flood() {
    let s = TestServer::start_with(&[("RATE_LIMIT_MAX", "2")]).await;
    let (a, b) = (client(4), client(5));
    for _ in 0..50 {
        get(&a, &s, "/api/v1/status").await;
    }
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record["ip"], "127.0.0.4");
    assert_eq!(record["method"], "GET");
    assert_eq!(record["path"], "/api/v1/status");
    assert_eq!(record["result"], "denied");
    assert_eq!(record["extra"]["rate_limit.policy"], "default");
    assert_eq!(record["extra"]["rate_limit.quota"], 2);
    // Another key gets its own record; the next window of the first key too.
    for _ in 0..5 {
        get(&b, &s, "/api/v1/status").await;
    }
    assert_eq!(ratelimit_records(&s).await.len(), 2);
    s.clock.advance(Duration::from_secs(3600));
    for _ in 0..5 {
        get(&a, &s, "/api/v1/status").await;
    }
    let records = ratelimit_records(&s).await;
    assert_eq!(records.len(), 3);
    assert_eq!(records[2]["ip"], "127.0.0.4");
    // Every refusal is counted in the metrics, sampled or not.
    let metrics = s.state.metrics.as_ref().expect("metrics enabled").render();
    assert!(
        metrics.contains("rate_limited_total{bucket=\"default\"}"),
        "{metrics}"
    );
}

// ---------------------------------------------------------------------------------------------
// The store failing closed (the contract runs per backend: `store::counters::contract`)
// ---------------------------------------------------------------------------------------------

/// A counter store that is always down.
#[derive(Debug)]
struct BrokenCounters;

#[async_trait]
impl CounterStore for BrokenCounters {
    async fn incr_with_ttl(
        &self,
        _key: &str,
        _window: Duration,
        _now: SystemTime,
    ) -> Result<WindowCount, StoreError> {
        Err(StoreError("connection refused".into()))
    }

    async fn refund(&self, _key: &str, _resets_at: SystemTime) -> Result<(), StoreError> {
        Err(StoreError("connection refused".into()))
    }
}

#[tokio::test]
async fn a_failing_counter_store_fails_closed_with_503() {
    let sim = sim::spawn(SimConfig::default()).await.unwrap();
    let s = TestServer::start_with_counters(sim, &[], None, Arc::new(BrokenCounters)).await;
    for path in ["/api/v1/status", "/mcp", "/nowhere"] {
        let response = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 503, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "store_unavailable");
        assert!(!body.to_string().contains("connection refused"), "{body}");
    }
    let login = s.login_with(login_body(&s, s.sim.api_key())).await;
    assert_eq!(login.status(), 503);
    assert!(s.sim.requests().is_empty(), "nothing reached Dust");
    assert_eq!(
        s.http.get(s.url("/health")).send().await.unwrap().status(),
        200
    );
}
