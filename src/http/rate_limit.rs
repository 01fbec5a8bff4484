//! Rate limiting: fixed-window buckets in a [`CounterStore`], on the app's clock.
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
//!   addresses, while people behind one NAT are not starved by a single abuser. It runs inside
//!   the authentication layer ([`limit_principal`]), where the principal is known; it never
//!   counts 401s, and only the principal itself sees its state.
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

use super::client_ip::ClientIp;
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::Principal,
    error::ApiError,
    state::AppState,
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
    fn remaining(&self) -> u64 {
        self.policy.quota.saturating_sub(self.count)
    }

    fn exceeded(&self) -> bool {
        self.count > self.policy.quota
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

/// The counter key of an address: IPv4 as is, IPv6 by its /64 (catalogue R10).
fn ip_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
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

/// Counts one request in `policy`'s bucket `key`.
async fn count(
    state: &AppState,
    policy: Policy,
    key: &str,
    now: SystemTime,
) -> Result<BucketState, ApiError> {
    let window = state
        .counters
        .incr_with_ttl(&format!("rl:{}:{key}", policy.name), policy.window, now)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, bucket = policy.name, "rate-limit store unavailable; refusing the request");
            ApiError::store_unavailable("the service is unavailable right now; try again later")
        })?;
    let left = window.resets_at.duration_since(now).unwrap_or_default();
    let reset_secs = (left.as_secs() + u64::from(left.subsec_nanos() > 0)).max(1);
    Ok(BucketState {
        policy,
        count: window.count,
        reset_secs,
    })
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
    .into_response_for(request.headers())
}

/// Sets the rate-limit fields of `states` on `headers` (the `default` bucket first).
fn set_headers(headers: &mut HeaderMap, states: &[BucketState]) {
    let Some(binding) = exhausted(states).or_else(|| {
        states
            .iter()
            .min_by_key(|s| (s.remaining(), std::cmp::Reverse(s.reset_secs)))
            .copied()
    }) else {
        return;
    };
    let policy = states
        .iter()
        .map(|s| {
            format!(
                "\"{}\";q={};w={}",
                s.policy.name,
                s.policy.quota,
                s.policy.window.as_secs()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let current = states
        .iter()
        .map(|s| {
            format!(
                "\"{}\";r={};t={}",
                s.policy.name,
                s.remaining(),
                s.reset_secs
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    for (name, value) in [
        (RATELIMIT_POLICY, policy),
        (RATELIMIT, current),
        (X_LIMIT, binding.policy.quota.to_string()),
        (X_REMAINING, binding.remaining().to_string()),
        (X_RESET, binding.reset_secs.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
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
    let mut states = Vec::with_capacity(policies.len() + 1);
    for policy in policies {
        match count(&state, policy, &ip, now).await {
            Ok(bucket) => states.push(bucket),
            Err(error) => return error.into_response_for(request.headers()),
        }
    }
    let mut response = match exhausted(&states) {
        Some(bucket) => refuse(&state, &request, bucket, None),
        None => next.run(request).await,
    };
    if let Some(inner) = response.extensions_mut().remove::<InnerBuckets>() {
        states.extend(inner.0);
    }
    set_headers(response.headers_mut(), &states);
    response
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
    let policy = Policy {
        name: "principal",
        quota: u64::from(state.config.rate_limit_max).saturating_mul(PRINCIPAL_QUOTA_FACTOR),
        window: state.config.rate_limit_window,
    };
    let bucket = match count(&state, policy, &principal.user_id, state.now()).await {
        Ok(bucket) => bucket,
        Err(error) => return error.into_response_for(request.headers()),
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
}
