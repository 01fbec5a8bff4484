//! Rate limiting: fixed-window buckets in a [`CounterStore`](crate::store::CounterStore), on the app's clock.
//!
//! Buckets (each a policy name in the `RateLimit` fields):
//! - `default`: every request per client IP ([`ClientIp`]; an IPv6 client is keyed by its /64,
//!   since one host gets a whole /64 to rotate through), `RATE_LIMIT_MAX` per
//!   `RATE_LIMIT_WINDOW`. Runs before authentication ([`limit_requests`]), so floods of bad
//!   tokens are cut before any JWT or store work, and **401s count**: failed authentication is
//!   the brute-force signal. This cannot be used to probe someone else's traffic (the draft's
//!   information-disclosure note): the key is the caller's own address.
//! - `login`: `POST /api/v1/auth/login` (and the OAuth consent post and client registration)
//!   per client IP, `RATE_LIMIT_LOGIN_MAX` per
//!   [`LOGIN_WINDOW`], successes included (the lockout in `auth::lockout` counts failures
//!   only). Each attempt costs a call to Dust, so this protects the Dust quota too.
//! - `principal`: authenticated requests per principal (`user_id`), [`PRINCIPAL_QUOTA_FACTOR`]
//!   × `RATE_LIMIT_MAX` per `RATE_LIMIT_WINDOW`, so one key cannot be spread over many
//!   addresses, while people behind one NAT are not starved by a single abuser. It is decided
//!   inside the authentication layer ([`limit_principal`]), where the principal is known; it
//!   never counts 401s, and only the principal itself sees its state. The count itself is
//!   taken earlier, beside the token lookup, and given back when the request does not
//!   authenticate (`read_ahead`: one store round trip per bearer request instead of three).
//!
//! - a handler's own bucket ([`count_client`]): keyed by client address like `default`, counted
//!   and refused by the handler itself, so its refusal keeps the endpoint's own error shape and
//!   audit event (`register`: OAuth client registrations, `http::oauth`). Its state is handed
//!   back with [`attach`] and rendered with the others.
//!
//! `/health`, `/live` and `/ready` are exempt on an exact path match only (`/HEALTH`,
//! `//health`, `/health/x`, `/health;x` are counted, catalogue R6).
//!
//! Every counted response carries `RateLimit-Policy` and `RateLimit` (IETF
//! draft-ietf-httpapi-ratelimit-headers, one list member per bucket, `default` first) and the
//! legacy `X-RateLimit-Limit`/`-Remaining`/`-Reset` (seconds to reset) of the bucket closest to
//! its limit. A refusal is 429 with `r=0`, `Retry-After` equal to the `t` of the exhausted
//! bucket, the JSON error envelope, a `rate_limited_total` metric, and one
//! `ratelimit_exceeded` audit record per key and window: the first refusal of the window
//! (count = quota + 1, known atomically from the store) is recorded, later ones only counted,
//! so a flood cannot turn the audit log into the DoS.
//!
//! If the counter store fails, requests are refused with 503 and an error log (fail closed):
//! an unlimited server is what an attacker who can disturb the store would want.

use axum::response::IntoResponse as _;
use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method},
    middleware::Next,
    response::Response,
};

use ipnet::IpNet;

use super::{
    client_ip::{ClientIp, address_block},
    read_ahead::{PrincipalCount, ReadAhead, SessionAhead, SessionFound},
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::Principal,
    error::ApiError,
    state::AppState,
    store::WindowCount,
};

/// The login bucket's window; `RATE_LIMIT_LOGIN_MAX` (default 10) attempts fit in it.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// The per-principal quota, as a multiple of `RATE_LIMIT_MAX` (same window).
pub const PRINCIPAL_QUOTA_FACTOR: u64 = 5;

/// Paths never counted (exact match): probes must keep working under a flood.
pub const EXEMPT_PATHS: [&str; 3] = ["/health", "/live", "/ready"];

/// The paths of the stricter bucket: the login, and the OAuth steps that check a key with
/// Dust (the consent post) or create state (registration).
const LOGIN_PATHS: [&str; 3] = ["/api/v1/auth/login", "/oauth/authorize", "/oauth/register"];

const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const X_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const X_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const X_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// One bucket: a policy name, its quota and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Policy {
    name: &'static str,
    quota: u64,
    window: Duration,
}

/// A bucket after counting this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketState {
    policy: Policy,
    count: u64,
    /// Whole seconds until the window resets (rounded up, at least 1).
    reset_secs: u64,
}

impl BucketState {
    /// The bucket as the store counted it at `now`: the time to reset in whole seconds, rounded
    /// up so a client that waits `t` seconds is past the reset, and at least 1.
    fn of(policy: Policy, window: WindowCount, now: SystemTime) -> Self {
        let left = window.resets_at.duration_since(now).unwrap_or_default();
        let reset_secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
        Self {
            policy,
            count: window.count,
            reset_secs,
        }
    }

    fn remaining(&self) -> u64 {
        self.policy.quota.saturating_sub(self.count)
    }

    pub(crate) fn exceeded(&self) -> bool {
        self.count > self.policy.quota
    }

    /// How long until the window resets: a refusal's `Retry-After`.
    pub(crate) fn retry_after(&self) -> Duration {
        Duration::from_secs(self.reset_secs)
    }

    /// Whether this is the window's first refusal (count = quota + 1, known atomically from
    /// the store): the one worth an audit record, so a flood cannot flood the audit log.
    pub(crate) fn first_refusal(&self) -> bool {
        self.count == self.policy.quota + 1
    }
}

/// Bucket states found by an inner layer, handed to [`limit_requests`] to render (response
/// extension).
#[derive(Debug, Clone, Default)]
struct InnerBuckets(Vec<BucketState>);

fn default_policy(state: &AppState) -> Policy {
    Policy {
        name: "default",
        quota: u64::from(state.config.rate_limit_max),
        window: state.config.rate_limit_window,
    }
}

/// The counter key of an address: its [`address_block`] (IPv4 as is, IPv6 by its /64,
/// catalogue R10), the same block the login lockout counts failures against.
fn ip_key(ip: IpAddr) -> String {
    match address_block(ip) {
        IpNet::V4(v4) => v4.addr().to_string(),
        IpNet::V6(v6) => v6.to_string(),
    }
}

/// The client address of a request (see `client_ip`), or `None` without connect info.
fn request_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ClientIp>()
        .map(|c| c.0)
        .or_else(|| super::auth::peer_ip(request))
}

/// The counter store's key of `policy`'s bucket `key`.
fn bucket_key(policy: Policy, key: &str) -> String {
    format!("rl:{}:{key}", policy.name)
}

/// Counts one request in `policy`'s bucket `key`.
async fn count(
    state: &AppState,
    policy: Policy,
    key: &str,
    now: SystemTime,
) -> Result<BucketState, ApiError> {
    count_window(state, policy, key, now)
        .await
        .map(|(bucket, _)| bucket)
}

/// [`count`], with the end of the window the request was counted in (for a refund).
async fn count_window(
    state: &AppState,
    policy: Policy,
    key: &str,
    now: SystemTime,
) -> Result<(BucketState, SystemTime), ApiError> {
    let window = state
        .counters
        .incr_with_ttl(&bucket_key(policy, key), policy.window, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, bucket = policy.name, "rate-limit store unavailable; refusing the request");
            ApiError::store_unavailable("the service is unavailable right now; try again later")
        })?;
    Ok((BucketState::of(policy, window, now), window.resets_at))
}

/// The bucket key of `request`'s client address, as the `default` bucket keys it (IPv6 by
/// its /64), for [`count_client`].
pub(crate) fn client_key(request: &Request) -> String {
    request_ip(request).map_or_else(|| "unknown".to_owned(), ip_key)
}

/// Counts one request of the client address `key` ([`client_key`]) in a handler's own bucket
/// `name` (`quota` per `window`). The handler refuses when the result is
/// [`exceeded`](BucketState::exceeded); a store failure is the limiter's 503.
pub(crate) async fn count_client(
    state: &AppState,
    key: &str,
    name: &'static str,
    quota: u64,
    window: Duration,
) -> Result<BucketState, ApiError> {
    let policy = Policy {
        name,
        quota,
        window,
    };
    count(state, policy, key, state.now()).await
}

/// Hands a handler's bucket to [`limit_requests`], which renders it with the others.
pub(crate) fn attach(response: &mut Response, bucket: BucketState) {
    let extensions = response.extensions_mut();
    match extensions.get_mut::<InnerBuckets>() {
        Some(inner) => inner.0.push(bucket),
        None => {
            extensions.insert(InnerBuckets(vec![bucket]));
        }
    }
}

/// The bucket a 429 is about (the exhausted one that resets last), or `None`.
fn exhausted(states: &[BucketState]) -> Option<BucketState> {
    states
        .iter()
        .filter(|s| s.exceeded())
        .max_by_key(|s| s.reset_secs)
        .copied()
}

/// Refuses a request: metrics, the audit record (first refusal of the key's window only) and
/// the 429 answer.
fn refuse(
    state: &AppState,
    request: &Request,
    bucket: BucketState,
    principal: Option<&Principal>,
) -> Response {
    metrics::counter!("rate_limited_total", "bucket" => bucket.policy.name).increment(1);
    if bucket.count == bucket.policy.quota + 1 {
        let info = super::request_info(request);
        let mut event = AuditEvent::new(
            AuditEventType::RatelimitExceeded,
            Severity::Medium,
            "rate limit exceeded",
        )
        .request(&info)
        .action("rate_limit")
        .result(AuditResult::Denied)
        .extra("rate_limit.policy", bucket.policy.name)
        .extra("rate_limit.quota", bucket.policy.quota)
        .extra("rate_limit.window_secs", bucket.policy.window.as_secs())
        .extra("retry_after_secs", bucket.reset_secs);
        if let Some(p) = principal {
            event = event.user(&p.user_id, Some(&p.username));
        }
        state.auditor.record(event);
    }
    ApiError::too_many_requests(
        "too many requests; retry after the number of seconds in Retry-After",
        Duration::from_secs(bucket.reset_secs),
    )
    .into_response()
}

/// Sets the rate-limit fields of `states` on `headers` (the `default` bucket first). Every
/// counted answer carries them: each field is written straight into its value, one allocation
/// each, with no intermediate strings (the `format!`/`join` version was 4 % of a `tools/list`'s
/// instructions, docs/PERFORMANCE.md).
fn set_headers(headers: &mut HeaderMap, states: &[BucketState]) {
    use std::fmt::Write as _;
    let Some(binding) = exhausted(states).or_else(|| {
        states
            .iter()
            .min_by_key(|s| (s.remaining(), std::cmp::Reverse(s.reset_secs)))
            .copied()
    }) else {
        return;
    };
    let mut policy = String::with_capacity(40 * states.len());
    let mut current = String::with_capacity(32 * states.len());
    for (i, s) in states.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        // Writing to a `String` cannot fail.
        let _ = write!(
            policy,
            "{sep}\"{}\";q={};w={}",
            s.policy.name,
            s.policy.quota,
            s.policy.window.as_secs()
        );
        let _ = write!(
            current,
            "{sep}\"{}\";r={};t={}",
            s.policy.name,
            s.remaining(),
            s.reset_secs
        );
    }
    for (name, value) in [(RATELIMIT_POLICY, policy), (RATELIMIT, current)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name, value);
        }
    }
    headers.insert(X_LIMIT, HeaderValue::from(binding.policy.quota));
    headers.insert(X_REMAINING, HeaderValue::from(binding.remaining()));
    headers.insert(X_RESET, HeaderValue::from(binding.reset_secs));
}

/// Middleware on the whole router (inside the client-IP layer, outside authentication): the
/// per-IP and login buckets, and the rendering of every bucket's fields.
pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if EXEMPT_PATHS.contains(&path) {
        return next.run(request).await;
    }
    let ip = request_ip(&request).map_or_else(|| "unknown".to_owned(), ip_key);
    let mut policies = vec![default_policy(&state)];
    if request.method() == Method::POST && LOGIN_PATHS.contains(&path) {
        policies.push(Policy {
            name: "login",
            quota: u64::from(state.config.rate_limit_login_max),
            window: LOGIN_WINDOW,
        });
    }
    let now = state.now();
    // The address's buckets, and what the request will need next from the stores, all at
    // once: one store round trip (`read_ahead`).
    let ip_counts =
        futures::future::try_join_all(policies.iter().map(|p| count(&state, *p, &ip, now)));
    let mut principal = None;
    let mut extensions = axum::http::Extensions::new();
    let counted = match read_ahead_of(&state, &request, now) {
        Ahead::Nothing => ip_counts.await,
        Ahead::Bearer(claims) => {
            let (counted, record, count) = tokio::join!(
                ip_counts,
                state.tokens.get(&claims.jti, crate::state::epoch_secs(now)),
                count_principal(&state, &claims.user_id, now),
            );
            let count = Arc::new(PrincipalCount::new(
                claims.user_id.clone(),
                claims.jti.clone(),
                count,
            ));
            extensions.insert(count.clone());
            extensions.insert(Arc::new(ReadAhead::new(claims, record)));
            principal = Some(count);
            counted
        }
        Ahead::Session(key) => match state.session_hints.get(&key) {
            // A session this instance has seen: its token and principal's count beside its
            // record.
            Some(hint) => {
                let (counted, session, token, count) = tokio::join!(
                    ip_counts,
                    state.sessions.get(&key),
                    state
                        .tokens
                        .get(&hint.token_id, crate::state::epoch_secs(now)),
                    count_principal(&state, &hint.user_id, now),
                );
                let count = Arc::new(PrincipalCount::new(
                    hint.user_id.clone(),
                    hint.token_id.clone(),
                    count,
                ));
                extensions.insert(count.clone());
                let found = SessionFound {
                    session,
                    token: Some((hint.token_id.clone(), token)),
                };
                extensions.insert(Arc::new(SessionAhead::new(key, found)));
                principal = Some(count);
                counted
            }
            None => {
                let (counted, session) = tokio::join!(ip_counts, state.sessions.get(&key));
                let found = SessionFound {
                    session,
                    token: None,
                };
                extensions.insert(Arc::new(SessionAhead::new(key, found)));
                counted
            }
        },
    };
    let mut states = match counted {
        Ok(states) => states,
        Err(error) => {
            give_back(&state, principal.as_deref()).await;
            return error.into_response();
        }
    };
    let mut response = match exhausted(&states) {
        Some(bucket) => refuse(&state, &request, bucket, None),
        None => {
            let mut request = request;
            request.extensions_mut().extend(extensions);
            next.run(request).await
        }
    };
    give_back(&state, principal.as_deref()).await;
    if let Some(inner) = response.extensions_mut().remove::<InnerBuckets>() {
        states.extend(inner.0);
    }
    set_headers(response.headers_mut(), &states);
    response
}

/// What a request will need from the stores after the rate limit, read ahead beside it.
enum Ahead {
    Nothing,
    /// A bearer token that verifies: its record and its principal's count.
    Bearer(crate::auth::jwt::Claims),
    /// A session cookie on an API route, and no `Authorization` header: its session record,
    /// and its token's and principal's count when this instance knows the session.
    Session(crate::store::SessionKey),
}

/// What to read ahead for `request` at `now`: nothing with the stores in memory (no round
/// trip to save); for a bearer token, only one that verifies; for a session cookie, only a
/// single well-formed one on `/api/` (the routes that take it: the console's files and pages
/// get the cookie too, and need no session). Anything else is left to the authentication
/// layer, which refuses it in its own words.
fn read_ahead_of(state: &AppState, request: &Request, now: SystemTime) -> Ahead {
    if !state.read_ahead() {
        return Ahead::Nothing;
    }
    let headers = request.headers();
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        return match super::auth::bearer_token(headers) {
            Ok(Some(token)) => state
                .resolver()
                .verify(token, now)
                .map_or(Ahead::Nothing, Ahead::Bearer),
            _ => Ahead::Nothing,
        };
    }
    if !request.uri().path().starts_with("/api/") {
        return Ahead::Nothing;
    }
    match super::session::cookie_key(state, headers) {
        Ok(Some(key)) => Ahead::Session(key),
        _ => Ahead::Nothing,
    }
}

/// Counts one authenticated request of `user_id` in the per-principal bucket, ahead of the
/// per-principal layer ([`PrincipalCount`]); `None` when the store failed (that layer then
/// counts again, and fails closed).
pub(crate) async fn count_principal(
    state: &AppState,
    user_id: &str,
    now: SystemTime,
) -> Option<(BucketState, SystemTime)> {
    count_window(state, principal_policy(state), user_id, now)
        .await
        .ok()
}

/// Gives back a principal's increment counted ahead that the request did not use (refused
/// first, not authenticated, or a route that does not count principals). A failure only
/// leaves the count one too high until its window ends: logged, not the request's problem.
pub(crate) async fn give_back(state: &AppState, count: Option<&PrincipalCount>) {
    let Some((user_id, resets_at)) = count.and_then(PrincipalCount::unused) else {
        return;
    };
    let key = bucket_key(principal_policy(state), user_id);
    if let Err(e) = state.counters.refund(&key, resets_at).await {
        tracing::warn!(error = %e, "cannot give back a principal's rate-limit count");
    }
}

/// The per-principal bucket: [`PRINCIPAL_QUOTA_FACTOR`] × `RATE_LIMIT_MAX` per
/// `RATE_LIMIT_WINDOW`.
fn principal_policy(state: &AppState) -> Policy {
    Policy {
        name: "principal",
        quota: u64::from(state.config.rate_limit_max).saturating_mul(PRINCIPAL_QUOTA_FACTOR),
        window: state.config.rate_limit_window,
    }
}

/// Middleware inside the authentication layer: the per-principal bucket. Its state rides back
/// to [`limit_requests`] in the response extensions, to be rendered with the others.
pub async fn limit_principal(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(principal) = request.extensions().get::<Arc<Principal>>().cloned() else {
        return next.run(request).await;
    };
    // Counted already, beside the token lookup (`read_ahead`).
    let counted = request
        .extensions()
        .get::<Arc<PrincipalCount>>()
        .and_then(|count| count.take(&principal.user_id, principal.token_id.as_deref()));
    let bucket = match counted {
        Some(bucket) => bucket,
        None => match count(
            &state,
            principal_policy(&state),
            &principal.user_id,
            state.now(),
        )
        .await
        {
            Ok(bucket) => bucket,
            Err(error) => return error.into_response(),
        },
    };
    let mut response = if bucket.exceeded() {
        refuse(&state, &request, bucket, Some(&principal))
    } else {
        next.run(request).await
    };
    response.extensions_mut().insert(InnerBuckets(vec![bucket]));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_key_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb:cccc:dddd:eeee".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), "2001:db8:1:2::/64");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        assert_eq!(ip_key("::ffff:192.0.2.1".parse().unwrap()), "192.0.2.1");
        assert_eq!(ip_key("192.0.2.1".parse().unwrap()), "192.0.2.1");
    }

    #[test]
    fn headers_follow_the_bucket_closest_to_its_limit() {
        let policy = |name, quota| Policy {
            name,
            quota,
            window: Duration::from_secs(60),
        };
        let states = [
            BucketState {
                policy: policy("default", 100),
                count: 10,
                reset_secs: 50,
            },
            BucketState {
                policy: policy("login", 10),
                count: 8,
                reset_secs: 30,
            },
        ];
        let mut headers = HeaderMap::new();
        set_headers(&mut headers, &states);
        assert_eq!(
            headers["ratelimit-policy"],
            "\"default\";q=100;w=60, \"login\";q=10;w=60"
        );
        assert_eq!(
            headers["ratelimit"],
            "\"default\";r=90;t=50, \"login\";r=2;t=30"
        );
        assert_eq!(headers["x-ratelimit-limit"], "10");
        assert_eq!(headers["x-ratelimit-remaining"], "2");
        assert_eq!(headers["x-ratelimit-reset"], "30");
    }

    /// Properties of the limiter's arithmetic: the store's fixed windows, [`BucketState::of`]
    /// and [`set_headers`], over random request times, quotas and windows.
    mod properties {
        use std::collections::BTreeMap;

        use proptest::prelude::*;

        use super::*;
        use crate::store::{CounterStore, MemoryCounterStore};

        /// `"name";k=v;k=v, ...` → per member, its name and parameters.
        fn members(value: &str) -> Vec<(String, BTreeMap<String, u64>)> {
            value
                .split(", ")
                .map(|member| {
                    let mut parts = member.split(';');
                    let name = parts.next().unwrap().trim_matches('"').to_owned();
                    let params = parts
                        .map(|p| {
                            let (k, v) = p.split_once('=').unwrap();
                            (k.to_owned(), v.parse().unwrap())
                        })
                        .collect();
                    (name, params)
                })
                .collect()
        }

        fn header(headers: &HeaderMap, name: &str) -> u64 {
            headers[name].to_str().unwrap().parse().unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 256,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// One bucket over a run of requests: `r` is `q - count`, never negative, 0 on a
            /// refusal; no window lets more than `q` through, and each lets exactly
            /// `min(q, requests)`; `t` is in `1..=w` and the reset it announces is the store's,
            /// rounded up to the second; the legacy headers repeat the same numbers.
            #[test]
            fn one_bucket(
                quota in 0u64..20,
                window_secs in 1u64..120,
                gaps_ms in prop::collection::vec(0u64..40_000, 1..120),
                start_nanos in 0u32..1_000_000_000,
            ) {
                let store = MemoryCounterStore::new();
                let window = Duration::from_secs(window_secs);
                let policy = Policy { name: "default", quota, window };
                let mut now = SystemTime::UNIX_EPOCH
                    + Duration::new(1_800_000_000, start_nanos);
                let mut per_window: BTreeMap<SystemTime, (u64, u64)> = BTreeMap::new();
                for gap in gaps_ms {
                    now += Duration::from_millis(gap);
                    let counted = futures::executor::block_on(
                        store.incr_with_ttl("rl:default:192.0.2.1", window, now),
                    )
                    .unwrap();
                    let bucket = BucketState::of(policy, counted, now);
                    let mut headers = HeaderMap::new();
                    set_headers(&mut headers, &[bucket]);
                    let current = members(headers["ratelimit"].to_str().unwrap());
                    let declared = members(headers["ratelimit-policy"].to_str().unwrap());
                    prop_assert_eq!(current.len(), 1);
                    let (r, t) = (current[0].1["r"], current[0].1["t"]);
                    prop_assert_eq!(&current[0].0, "default");
                    prop_assert_eq!(declared[0].1["q"], quota);
                    prop_assert_eq!(declared[0].1["w"], window_secs);
                    prop_assert!(r <= quota);
                    prop_assert_eq!(r, quota.saturating_sub(counted.count));
                    if bucket.exceeded() {
                        prop_assert_eq!(r, 0);
                    }
                    // The reset is in the future, within the window, and `t` whole seconds
                    // from now is at or past it (but not a second more).
                    prop_assert!(counted.resets_at > now);
                    prop_assert!(counted.resets_at <= now + window);
                    prop_assert!((1..=window_secs).contains(&t), "t={} w={}", t, window_secs);
                    prop_assert!(now + Duration::from_secs(t) >= counted.resets_at);
                    prop_assert!(now + Duration::from_secs(t - 1) < counted.resets_at);
                    prop_assert_eq!(header(&headers, "x-ratelimit-limit"), quota);
                    prop_assert_eq!(header(&headers, "x-ratelimit-remaining"), r);
                    prop_assert_eq!(header(&headers, "x-ratelimit-reset"), t);
                    let entry = per_window.entry(counted.resets_at).or_default();
                    entry.0 += 1;
                    entry.1 += u64::from(!bucket.exceeded());
                }
                for (requests, allowed) in per_window.into_values() {
                    prop_assert!(allowed <= quota);
                    prop_assert_eq!(allowed, requests.min(quota));
                }
            }

            /// Several buckets: every one is listed in order with its own numbers, and the
            /// legacy headers follow the binding one: on a refusal the exhausted bucket that
            /// resets last (its `t` is the `Retry-After`), else the one with the least left.
            #[test]
            fn several_buckets(
                buckets in prop::collection::vec((0u64..50, 0u64..60, 1u64..3600, 1u64..3600), 1..4),
            ) {
                let names = ["default", "login", "principal"];
                let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
                let states: Vec<BucketState> = buckets
                    .iter()
                    .zip(names)
                    .map(|(&(quota, count, window_secs, left), name)| {
                        let window = Duration::from_secs(window_secs);
                        let counted = WindowCount {
                            count: count.max(1),
                            resets_at: now + Duration::from_secs(left.min(window_secs)),
                        };
                        BucketState::of(Policy { name, quota, window }, counted, now)
                    })
                    .collect();
                let mut headers = HeaderMap::new();
                set_headers(&mut headers, &states);
                let current = members(headers["ratelimit"].to_str().unwrap());
                prop_assert_eq!(current.len(), states.len());
                for (member, state) in current.iter().zip(&states) {
                    prop_assert_eq!(member.0.as_str(), state.policy.name);
                    prop_assert_eq!(member.1["r"], state.policy.quota.saturating_sub(state.count));
                    prop_assert_eq!(member.1["t"], state.reset_secs);
                }
                let remaining = header(&headers, "x-ratelimit-remaining");
                let reset = header(&headers, "x-ratelimit-reset");
                let refused: Vec<&BucketState> = states.iter().filter(|s| s.exceeded()).collect();
                if refused.is_empty() {
                    let least = current.iter().map(|m| m.1["r"]).min().unwrap();
                    prop_assert_eq!(remaining, least);
                } else {
                    prop_assert_eq!(remaining, 0);
                    let last = refused.iter().map(|s| s.reset_secs).max().unwrap();
                    prop_assert_eq!(reset, last);
                    prop_assert_eq!(exhausted(&states).unwrap().reset_secs, last);
                }
                prop_assert!(current.iter().any(|m| m.1["r"] == remaining && m.1["t"] == reset));
            }
        }
    }
}
