//! `doctor --url`: what a running server actually answers.
//!
//! A configuration can be right and the deployment still wrong (a proxy that strips headers,
//! plain HTTP left open, metrics exposed). These checks ask the server from outside, the way a
//! client or an attacker would, with a handful of requests that change nothing.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};

use super::{Item, Outcome, fail, pass};
use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(10);
const ONE_YEAR: u64 = 31_536_000;

pub(super) async fn check(url: &str, _config: Option<&Config>) -> Vec<Item> {
    let base = url.trim_end_matches('/').to_owned();
    let client = match reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            return vec![Item::new(
                6,
                "live server",
                fail(format!("no HTTP client: {error}"), "report this as a bug"),
            )];
        }
    };
    let health = match client.get(format!("{base}/health")).send().await {
        Ok(response) => response,
        Err(error) => {
            return vec![Item::new(
                6,
                "live server",
                fail(
                    format!("{base}/health did not answer: {}", without_url(&error)),
                    "check the URL, the proxy and that the server runs",
                ),
            )];
        }
    };
    let https = base.starts_with("https://");
    let headers = health.headers().clone();
    let mut items = vec![
        Item::new(6, "live headers", security_headers(&headers)),
        Item::new(6, "live banners", banners(&headers)),
        Item::new(1, "live HSTS", hsts(&headers, https)),
    ];
    if https {
        items.push(Item::new(1, "plain HTTP", plain_http(&client, &base).await));
    } else {
        items.push(Item::new(
            1,
            "live HTTPS",
            fail(
                format!("{base} is plain HTTP"),
                "serve the public URL over TLS (deploy/nginx)",
            ),
        ));
    }
    items.push(Item::new(
        2,
        "live /mcp without a token",
        unauthenticated_mcp(&client, &base).await,
    ));
    items.push(Item::new(
        12,
        "live /metrics without a token",
        metrics_closed(&client, &base).await,
    ));
    items.push(Item::new(
        5,
        "live login CSRF",
        login_csrf(&client, &base).await,
    ));
    items.push(Item::new(
        4,
        "live rate-limit headers",
        rate_limit_headers(&client, &base).await,
    ));
    items
}

/// A reqwest error without the URL (which may carry credentials in a userinfo part).
fn without_url(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A header name and the test its value must pass.
type HeaderRule = (&'static str, fn(&str) -> bool);

fn security_headers(headers: &HeaderMap) -> Outcome {
    let expected: [HeaderRule; 7] = [
        ("content-security-policy", |v| v.contains("frame-ancestors")),
        ("x-content-type-options", |v| {
            v.eq_ignore_ascii_case("nosniff")
        }),
        ("x-frame-options", |v| v.eq_ignore_ascii_case("DENY")),
        ("referrer-policy", |v| !v.is_empty()),
        ("permissions-policy", |v| !v.is_empty()),
        ("cross-origin-resource-policy", |v| !v.is_empty()),
        ("cache-control", |v| v.contains("no-store")),
    ];
    let missing: Vec<&str> = expected
        .iter()
        .filter(|(name, ok)| !header(headers, name).is_some_and(ok))
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        pass("CSP, nosniff, DENY, referrer, permissions, CORP and no-store present")
    } else {
        fail(
            format!("missing or weak: {}", missing.join(", ")),
            "make the proxy pass the server's headers through (no proxy_hide_header)",
        )
    }
}

fn banners(headers: &HeaderMap) -> Outcome {
    let mut found = Vec::new();
    if let Some(server) = header(headers, "server")
        && server.chars().any(|c| c.is_ascii_digit())
    {
        found.push(format!("server: {server}"));
    }
    if let Some(powered) = header(headers, "x-powered-by") {
        found.push(format!("x-powered-by: {powered}"));
    }
    if found.is_empty() {
        pass("no version banners")
    } else {
        fail(
            format!("version banners: {}", found.join(", ")),
            "turn them off in the proxy (nginx: server_tokens off)",
        )
    }
}

fn hsts(headers: &HeaderMap, https: bool) -> Outcome {
    if !https {
        return Outcome::NotApplicable("not an https URL".into());
    }
    let max_age = header(headers, "strict-transport-security").and_then(|v| {
        v.split(';')
            .find_map(|part| part.trim().strip_prefix("max-age="))
            .and_then(|n| n.trim().parse::<u64>().ok())
    });
    match max_age {
        Some(age) if age >= ONE_YEAR => pass(format!("max-age={age}")),
        Some(age) => fail(
            format!("HSTS max-age={age} is under a year"),
            "run the server with NODE_ENV=production (it sends a year or more)",
        ),
        None => fail(
            "no Strict-Transport-Security",
            "run the server with NODE_ENV=production and let the proxy pass the header",
        ),
    }
}

async fn plain_http(client: &reqwest::Client, base: &str) -> Outcome {
    let Ok(mut url) = url::Url::parse(base) else {
        return Outcome::NotApplicable("the URL does not parse".into());
    };
    if url.set_scheme("http").is_err() || url.set_port(None).is_err() {
        return Outcome::NotApplicable("no plain HTTP form of the URL".into());
    }
    url.set_path("/health");
    match client.get(url.clone()).send().await {
        Err(_) => pass("plain HTTP is not served"),
        Ok(response) => {
            let status = response.status();
            let location = header(response.headers(), "location").unwrap_or_default();
            if status.is_redirection() && location.starts_with("https://") {
                pass(format!("{status} to {location}"))
            } else {
                fail(
                    format!("{url} answers {status} without redirecting to https"),
                    "redirect plain HTTP to HTTPS in the proxy (deploy/nginx)",
                )
            }
        }
    }
}

async fn unauthenticated_mcp(client: &reqwest::Client, base: &str) -> Outcome {
    let sent = client
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await;
    match sent {
        Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
            let challenge = header(response.headers(), "www-authenticate").unwrap_or_default();
            if challenge.starts_with("Bearer") {
                pass("401 with a Bearer challenge")
            } else {
                fail(
                    "401 without a Bearer challenge",
                    "make the proxy pass WWW-Authenticate through",
                )
            }
        }
        Ok(response) => fail(
            format!("/mcp answered {} without a token", response.status()),
            "the server must see every /mcp request: check the proxy routes",
        ),
        Err(error) => fail(
            format!("/mcp: {}", without_url(&error)),
            "check the proxy routes",
        ),
    }
}

async fn metrics_closed(client: &reqwest::Client, base: &str) -> Outcome {
    match client.get(format!("{base}/metrics")).send().await {
        Ok(response) if response.status().is_success() => fail(
            "/metrics answers without a token",
            "serve metrics only with admin:metrics (the server does) and do not expose a \
             separate metrics port through the proxy",
        ),
        Ok(response) => pass(format!("{} without a token", response.status())),
        Err(error) => pass(format!("not reachable: {}", without_url(&error))),
    }
}

async fn login_csrf(client: &reqwest::Client, base: &str) -> Outcome {
    let sent = client
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "text/plain")
        .header("origin", "https://attacker.invalid")
        .header("sec-fetch-site", "cross-site")
        .body("apiKey=attacker")
        .send()
        .await;
    match sent {
        Ok(response) => {
            let status = response.status();
            let cookie = response.headers().contains_key("set-cookie");
            if (status == StatusCode::UNSUPPORTED_MEDIA_TYPE || status == StatusCode::FORBIDDEN)
                && !cookie
            {
                pass(format!(
                    "a cross-site form login is refused ({status}), no cookie"
                ))
            } else {
                fail(
                    format!("a cross-site form login answered {status}"),
                    "the server refuses it itself: check that the proxy forwards Content-Type and Origin",
                )
            }
        }
        Err(error) => fail(
            format!("login: {}", without_url(&error)),
            "check the proxy routes",
        ),
    }
}

async fn rate_limit_headers(client: &reqwest::Client, base: &str) -> Outcome {
    match client.get(format!("{base}/api/v1/status")).send().await {
        Ok(response) => {
            let headers = response.headers();
            if headers.contains_key("ratelimit-policy") || headers.contains_key("x-ratelimit-limit")
            {
                pass(format!(
                    "policy {}",
                    header(headers, "ratelimit-policy").unwrap_or("present")
                ))
            } else {
                fail(
                    "no rate-limit headers on /api/v1/status",
                    "check RATE_LIMIT_MAX and that the proxy passes the headers",
                )
            }
        }
        Err(error) => fail(
            format!("status: {}", without_url(&error)),
            "check the proxy routes",
        ),
    }
}
