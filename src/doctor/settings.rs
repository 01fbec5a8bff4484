//! The checks that read only the effective configuration.

use std::io::Write as _;

use secrecy::ExposeSecret;

use super::{Item, Outcome, fail, pass};
use crate::config::{Config, ToolApproval, is_loopback_host};

/// Above this many requests an hour per address, rate limiting no longer slows anyone.
const MAX_SENSIBLE_HOURLY_RATE: u64 = 100_000;
/// Above this many login attempts a minute per address, guessing is cheap.
const MAX_SENSIBLE_LOGINS_PER_MINUTE: u32 = 60;
/// Longest sensible token and idle-session lifetime.
const MAX_LIFETIME_SECS: u64 = 24 * 3600;

pub(super) fn check(config: &Config) -> Vec<Item> {
    let production = config.is_production();
    let mut items = vec![
        Item::new(
            0,
            "NODE_ENV",
            if production {
                pass("production: the start-up checks, HSTS and __Host- cookies are on")
            } else {
                fail(
                    "NODE_ENV is development: weak secrets are only warned about, no HSTS, \
                     cookies without Secure",
                    "set NODE_ENV=production",
                )
            },
        ),
        Item::new(0, "ALLOWED_HOSTS", allowed_hosts(config)),
        Item::new(0, "DUST_BASE_URL", dust_base_url(config)),
        Item::new(1, "MCP_PUBLIC_URL", public_url(config)),
        Item::new(1, "TRUSTED_PROXIES", trusted_proxies(config)),
        Item::new(2, "DUST_API_KEY", dust_api_key(config)),
        Item::new(3, "SECURITY_SECRET_KEY", secret_key(config)),
        Item::new(3, "SECURITY_TOKEN_EXPIRATION", token_lifetime(config)),
        Item::new(4, "RATE_LIMIT_MAX", rate_limit(config)),
        Item::new(4, "RATE_LIMIT_LOGIN_MAX", login_limit(config)),
        Item::new(
            5,
            "CSRF",
            pass(
                "signed, session-bound XSRF tokens and a Fetch-Metadata/Origin check on every \
                 cookie-authenticated write; JSON-only login (built in, cannot be turned off)",
            ),
        ),
        Item::new(5, "CORS_ALLOWED_ORIGINS", cors(config)),
        Item::new(
            6,
            "security headers",
            if production {
                pass(
                    "CSP, nosniff, frame denial, referrer and permissions policies, CORP and HSTS on every response",
                )
            } else {
                fail("HSTS is sent only in production", "set NODE_ENV=production")
            },
        ),
        Item::new(7, "SESSION_TTL", session_ttl(config)),
        Item::new(7, "session cookies", session_cookies(config)),
        Item::new(8, "AUDIT_LOG_FILE", audit_log(config)),
        Item::new(8, "LOG_LEVEL", log_level(config)),
        Item::new(8, "body logging", body_logging(config)),
        Item::new(
            12,
            "ENABLE_METRICS",
            if config.enable_metrics {
                pass("GET /metrics (admin:metrics) feeds the rules in deploy/prometheus/alerts.yml")
            } else {
                fail(
                    "metrics are off: nothing to alert on",
                    "set ENABLE_METRICS=true and load deploy/prometheus/alerts.yml",
                )
            },
        ),
        Item::new(12, "ALERT_WEBHOOK_URL", webhook(config)),
        Item::new(11, "PERMISSIONS_POLICY_FILE", policy_file(config)),
        Item::new(11, "DUST_TOOL_APPROVAL", tool_approval(config)),
    ];
    items.retain(|i| !matches!(&i.outcome, Outcome::NotApplicable(why) if why.is_empty()));
    items
}

fn allowed_hosts(config: &Config) -> Outcome {
    if config.allowed_hosts.is_empty() {
        return fail(
            "no ALLOWED_HOSTS: the Host header is not checked (DNS rebinding)",
            "set ALLOWED_HOSTS to the public host name, e.g. mcp.example.com",
        );
    }
    if config.allowed_hosts.iter().any(|h| h.contains('*')) {
        return fail(
            "ALLOWED_HOSTS has a wildcard",
            "list the exact host names clients use",
        );
    }
    pass(format!(
        "Host checked against {}",
        config.allowed_hosts.join(", ")
    ))
}

/// The policy file loads as `serve` would load it: a `[usernames]` section (grants by an
/// unverified name) or any other mistake is a failure with the loader's own message.
fn policy_file(config: &Config) -> Outcome {
    let Some(path) = &config.permissions_policy_file else {
        return pass(format!(
            "no policy file: every key gets PERMISSIONS_DEFAULT ({})",
            config.permissions_default.names().join(", ")
        ));
    };
    match crate::auth::Policy::load(std::path::Path::new(path)) {
        Ok(_) => pass(format!(
            "{path}: permissions granted by key fingerprint only"
        )),
        Err(error) => fail(
            format!("{path}: {error}"),
            "correct the policy file; grant by key fingerprint under [users]",
        ),
    }
}

fn dust_base_url(config: &Config) -> Outcome {
    let url = &config.dust_base_url;
    if url.scheme() == "https" {
        pass(format!("{url} over HTTPS"))
    } else if is_loopback_host(url.host_str()) {
        pass(format!("{url}: loopback (a simulator or a local proxy)"))
    } else {
        fail(
            format!("{url} is plain HTTP: Dust keys would cross the network in clear"),
            "use https://dust.tt or https://eu.dust.tt",
        )
    }
}

fn public_url(config: &Config) -> Outcome {
    let url = &config.public_url;
    if url.starts_with("https://") {
        pass(format!("{url}: tokens are bound to {url}/mcp"))
    } else {
        fail(
            format!("{url} is not https: tokens and keys would travel in clear"),
            "put the server behind a TLS proxy and set MCP_PUBLIC_URL=https://<host>",
        )
    }
}

fn trusted_proxies(config: &Config) -> Outcome {
    let proxies = &config.trusted_proxies;
    if proxies.iter().any(|net| net.prefix_len() == 0) {
        return fail(
            "TRUSTED_PROXIES trusts every address: any client can choose its own IP",
            "list only the proxy's addresses, e.g. 10.0.0.5/32",
        );
    }
    if proxies.is_empty() {
        if config.public_url.starts_with("https://") && !is_loopback_host(Some(&config.host)) {
            return fail(
                "TLS is terminated by a proxy, but no proxy is trusted: every client looks \
                 like the proxy and shares one rate-limit budget",
                "set TRUSTED_PROXIES to the proxy's address (CIDR)",
            );
        }
        return pass("none: the peer address is the client address");
    }
    let list: Vec<String> = proxies.iter().map(ToString::to_string).collect();
    pass(format!(
        "X-Forwarded-For believed only from {}",
        list.join(", ")
    ))
}

fn dust_api_key(config: &Config) -> Outcome {
    match &config.dust_api_key {
        None => Outcome::NotApplicable(
            "serve holds no key of its own: each person logs in with theirs, and keys are \
             checked for format and against Dust at login"
                .to_owned(),
        ),
        Some(key) => match crate::auth::api_key::check_format(key.expose_secret()) {
            Ok(()) => pass("well formed (used by stdio and demo); it is never logged"),
            Err(problem) => fail(
                format!("DUST_API_KEY is malformed: {problem}"),
                "copy the key again from Dust (Admin → API keys)",
            ),
        },
    }
}

fn secret_key(config: &Config) -> Outcome {
    match crate::auth::keys::check_root_secret(config.secret_key.as_ref(), true) {
        Ok(()) => pass("strong; JWT, CSRF and at-rest keys are derived from it with HKDF"),
        Err(weak) => fail(
            weak.to_string(),
            "generate one with `mcp-dust-server gen-secret`, keep it in a secret store, and \
             give every instance the same",
        ),
    }
}

fn token_lifetime(config: &Config) -> Outcome {
    let secs = config.token_expiration.as_secs();
    if secs > MAX_LIFETIME_SECS {
        fail(
            format!("tokens live {secs} s: a stolen token stays useful for long"),
            "set SECURITY_TOKEN_EXPIRATION to 3600 (clients refresh)",
        )
    } else {
        pass(format!("tokens live {secs} s"))
    }
}

fn rate_limit(config: &Config) -> Outcome {
    let window = config.rate_limit_window.as_secs().max(1);
    let hourly = u64::from(config.rate_limit_max) * 3600 / window;
    if config.rate_limit_max == 0 {
        return fail(
            "RATE_LIMIT_MAX is 0",
            "set RATE_LIMIT_MAX (default 100) and RATE_LIMIT_WINDOW (default 3600)",
        );
    }
    if hourly > MAX_SENSIBLE_HOURLY_RATE {
        return fail(
            format!("{hourly} requests an hour per address slows nobody down"),
            "lower RATE_LIMIT_MAX or widen RATE_LIMIT_WINDOW",
        );
    }
    pass(format!(
        "{} requests per {window} s per address, plus a budget per principal",
        config.rate_limit_max
    ))
}

fn login_limit(config: &Config) -> Outcome {
    let per_minute = config.rate_limit_login_max;
    if per_minute == 0 || per_minute > MAX_SENSIBLE_LOGINS_PER_MINUTE {
        fail(
            format!("{per_minute} logins a minute per address"),
            format!("set RATE_LIMIT_LOGIN_MAX between 1 and {MAX_SENSIBLE_LOGINS_PER_MINUTE}"),
        )
    } else {
        pass(format!(
            "{per_minute} logins a minute per address, with a growing lockout per key"
        ))
    }
}

fn cors(config: &Config) -> Outcome {
    let origins = &config.cors_allowed_origins;
    if origins.is_empty() {
        return pass("no cross-origin access (the console is same-origin)");
    }
    if let Some(bad) = origins
        .iter()
        .find(|o| o.contains('*') || o.as_str() == "null")
    {
        return fail(
            format!("CORS_ALLOWED_ORIGINS contains {bad:?}"),
            "list exact origins such as https://app.example.com",
        );
    }
    if config.is_production()
        && let Some(plain) = origins.iter().find(|o| o.starts_with("http://"))
    {
        return fail(
            format!("{plain} is not https"),
            "allow only https:// origins in production",
        );
    }
    pass(format!("exact origins: {}", origins.join(", ")))
}

fn session_ttl(config: &Config) -> Outcome {
    let secs = config.session_ttl.as_secs();
    if secs > MAX_LIFETIME_SECS {
        fail(
            format!("browser sessions stay alive {secs} s when idle"),
            "set SESSION_TTL to 3600",
        )
    } else {
        pass(format!(
            "idle expiry {secs} s, an absolute lifetime, rotation on login, server-side store"
        ))
    }
}

fn session_cookies(config: &Config) -> Outcome {
    if config.is_production() {
        pass("__Host-mcp.sid: HttpOnly, Secure, SameSite=Lax, no Domain")
    } else {
        fail(
            "cookies are not Secure and lack the __Host- prefix outside production",
            "set NODE_ENV=production",
        )
    }
}

fn audit_log(config: &Config) -> Outcome {
    let Some(path) = &config.audit_log_file else {
        return pass("audit events go to standard output: make sure it is collected");
    };
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.flush())
    {
        Ok(()) => pass(format!("audit events appended to {path}")),
        Err(error) => fail(
            format!("{path} cannot be opened for appending: {error}"),
            "create the directory and give the server's user write access",
        ),
    }
}

fn tool_approval(config: &Config) -> Outcome {
    match config.tool_approval {
        ToolApproval::Ask => pass(
            "ask: an agent's tool that needs approval is put to the person (elicitation), or rejected when they cannot be asked",
        ),
        ToolApproval::Deny => pass("deny: every tool that needs approval is rejected"),
        ToolApproval::Auto => fail(
            "DUST_TOOL_APPROVAL=auto: agents run their high-stake tools (email, Slack, CRM writes) with nobody asked",
            "set DUST_TOOL_APPROVAL=ask (or deny)",
        ),
    }
}

fn log_level(config: &Config) -> Outcome {
    let level = config.log_level.to_ascii_lowercase();
    if config.is_production() && (level.contains("trace") || level.contains("debug")) {
        fail(
            format!("LOG_LEVEL={level} in production: verbose and slow"),
            "set LOG_LEVEL=info",
        )
    } else {
        pass(format!(
            "LOG_LEVEL={level}; secrets are masked in every line"
        ))
    }
}

fn body_logging(config: &Config) -> Outcome {
    if config.is_production() && (config.log_request_body || config.log_response_body) {
        fail(
            "request or response bodies are logged in production: documents and questions \
             end up in the logs",
            "set LOG_REQUEST_BODY=false and LOG_RESPONSE_BODY=false",
        )
    } else {
        pass("bodies are not logged in production")
    }
}

fn webhook(config: &Config) -> Outcome {
    match &config.alert_webhook_url {
        None => Outcome::NotApplicable(
            "no ALERT_WEBHOOK_URL: alerts come from the Prometheus rules only".to_owned(),
        ),
        Some(url) => {
            let url = url.expose_secret();
            let host = url::Url::parse(url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned));
            if url.starts_with("https://") || is_loopback_host(host.as_deref()) {
                pass("high-severity audit events are posted to the webhook")
            } else {
                fail(
                    "ALERT_WEBHOOK_URL is not https",
                    "use an https:// webhook URL",
                )
            }
        }
    }
}

/// `REDIS_URL`: when set, Redis must answer a `PING` within `REDIS_TIMEOUT_MS` (the server
/// would otherwise answer 503 to everything that needs state); over `rediss://`, its
/// certificate must be trusted (system roots, or `REDIS_TLS_CA_FILE`). The URL, which may hold
/// a password, is never printed.
pub(super) async fn redis(config: &Config) -> Item {
    let outcome = match crate::store::RedisStore::from_config(config) {
        Ok(None) => pass("in-memory state: one instance; a restart logs everyone out"),
        Err(e) => fail(
            e.to_string(),
            "correct REDIS_URL (redis://[user:password@]host:port/db, rediss:// for TLS; with \
             REDIS_CLUSTER=true, comma-separated seed nodes), REDIS_TLS_CA_FILE (a PEM file of \
             CA certificates, only with rediss://) and REDIS_KEY_PREFIX (no braces in a cluster)",
        ),
        Ok(Some(store)) => match store.ping().await {
            Ok(()) => pass("shared state in Redis (it answers): instances behave as one"),
            Err(e) if e.0.contains("TLS handshake failed") => fail(
                format!("Redis refuses the TLS connection: {e}"),
                "set REDIS_TLS_CA_FILE to the CA that signed the Redis server's certificate \
                 (the provider's CA bundle), and use the host name the certificate names",
            ),
            Err(e) => fail(
                format!("Redis does not answer: {e}"),
                "start Redis or correct REDIS_URL (host, port, user, password); the server \
                 answers 503 until Redis answers",
            ),
        },
    };
    Item::new(0, "REDIS_URL", outcome)
}
