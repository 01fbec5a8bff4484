//! Configuration: defaults, then an optional TOML file, then the environment.
//!
//! Every setting is one row of [`SETTINGS`]: its environment variable (the names of
//! `shared/spec/interface.md`, which users' deployment files depend on), aliases, default and
//! help. The loader, the README's configuration table (`mcp-dust-server config-table`) and
//! `.env.example` all come from that one list, so they cannot drift apart.
//!
//! Values are read as text and parsed here, by us, with errors that name the variable and never
//! echo a secret's value. (A generic loader that guesses types turns an all-digit workspace id
//! into a number; this one does not.)

use std::{collections::BTreeMap, path::Path, time::Duration};

use anyhow::{Context, bail};
use ipnet::IpNet;
use secrecy::SecretString;
use url::Url;

use crate::auth::PermissionSet;

/// One configuration setting.
#[derive(Debug)]
pub struct Setting {
    /// The environment variable, also the key in the TOML file.
    pub env: &'static str,
    /// Other accepted names (read only when the main name is absent).
    pub aliases: &'static [&'static str],
    /// The default, as text; `None` when unset by default.
    pub default: Option<&'static str>,
    /// Never echoed in errors, logs or `Debug` output.
    pub secret: bool,
    pub help: &'static str,
}

const fn s(env: &'static str, default: Option<&'static str>, help: &'static str) -> Setting {
    Setting {
        env,
        aliases: &[],
        default,
        secret: false,
        help,
    }
}

/// Every setting, in the order of interface.md.
pub const SETTINGS: &[Setting] = &[
    Setting {
        aliases: &["DUST_DOMAIN"],
        ..s(
            "DUST_BASE_URL",
            Some("https://dust.tt"),
            "Dust API base (`https://eu.dust.tt` for the EU region)",
        )
    },
    Setting {
        secret: true,
        ..s(
            "DUST_API_KEY",
            None,
            "the Dust API key `stdio` uses; `serve` never needs one",
        )
    },
    s(
        "DUST_WORKSPACE_ID",
        None,
        "default workspace for logins that name none, and for `stdio`",
    ),
    s(
        "DUST_AGENT_ID",
        None,
        "default agent for `ask_agent` when the caller names none",
    ),
    s(
        "DUST_USERNAME",
        Some("mcp-dust-server"),
        "username sent with messages to Dust",
    ),
    s("DUST_EMAIL", None, "email sent with messages to Dust"),
    s(
        "DUST_FULL_NAME",
        None,
        "full name sent with messages to Dust",
    ),
    s(
        "DUST_TIMEZONE",
        Some("UTC"),
        "IANA timezone sent with messages to Dust",
    ),
    s(
        "DUST_TOOL_APPROVAL",
        Some("ask"),
        "what happens when an agent's tool needs approval: ask (the person, through their client), auto (Dust runs it unasked), deny (always rejected)",
    ),
    s(
        "DUST_TIMEOUT",
        Some("30"),
        "seconds a Dust call may take, answer included (agent event streams excepted); past it the tool call ends with a timeout error",
    ),
    s(
        "DUST_MAX_RETRIES",
        Some("3"),
        "retries of an idempotent Dust call (GET, DELETE) after a 408, 429, 502, 503, 504 or a reset connection, with jittered exponential backoff; creations and upserts are never retried",
    ),
    s(
        "DUST_RETRY_AFTER_MAX",
        Some("30"),
        "longest `Retry-After` (seconds) the server waits out before retrying; a longer one fails the call at once with \"retry in N s\"",
    ),
    s(
        "DUST_BREAKER_THRESHOLD",
        Some("5"),
        "consecutive failed Dust calls (timeouts, connection failures, 5xx) of one workspace that open its circuit breaker",
    ),
    s(
        "DUST_BREAKER_COOLDOWN",
        Some("30"),
        "seconds an open circuit breaker fails calls fast (\"Dust is unavailable, retrying in N s\") before letting one probe call through",
    ),
    s(
        "MCP_SERVER_NAME",
        Some("mcp-dust-server"),
        "server name reported to MCP clients",
    ),
    s(
        "MCP_SERVER_HOST",
        Some("127.0.0.1"),
        "where `serve` listens",
    ),
    s("MCP_SERVER_PORT", Some("5001"), "port `serve` listens on"),
    s(
        "MCP_PUBLIC_URL",
        None,
        "the server's public URL as clients reach it, e.g. `https://mcp.example.com` (default: `http://<host>:<port>`); tokens are bound to `<url>/mcp`",
    ),
    s(
        "MCP_SERVER_TIMEOUT",
        Some("120"),
        "seconds an agent run may take before the tool call ends with a clear timeout",
    ),
    s(
        "TASK_TTL",
        Some("86400"),
        "seconds a task handle of `ask_agent` (MCP Tasks extension) stays readable after it is created (60 to 604800)",
    ),
    s(
        "DUST_AGENT_TOOLS",
        None,
        "`all` or comma-separated agent ids (sIds): each agent becomes a tool of its own, `ask_<name>`, beside `ask_agent`, listed to callers with `execute:agents` who can see the agent (unset: none)",
    ),
    s(
        "AGENT_CACHE_TTL",
        Some("15"),
        "seconds each caller's agent list is reused before Dust is asked again (per API key, never shared between keys; 0 turns the cache off, at most 300)",
    ),
    s(
        "HTTP_HEADER_TIMEOUT",
        Some("10"),
        "seconds a connection may go without a complete request head: a slow sender of headers (slowloris) or an idle keep-alive connection is closed",
    ),
    s(
        "HTTP_BODY_TIMEOUT",
        Some("30"),
        "seconds a client has to send a whole request body once its headers are in; slower bodies get 408",
    ),
    s(
        "HTTP_WRITE_TIMEOUT",
        Some("30"),
        "seconds a response write may make no progress (a client that stops reading) before the connection is closed",
    ),
    s(
        "MAX_CONNECTIONS",
        Some("1024"),
        "open client connections at most; connections beyond it are closed at once",
    ),
    s(
        "HTTP2_MAX_STREAMS",
        Some("32"),
        "concurrent requests (streams) per HTTP/2 connection",
    ),
    s(
        "SHUTDOWN_GRACE_PERIOD",
        Some("20"),
        "seconds requests in flight (tool calls, streams) may run on after SIGTERM or SIGINT; what remains then gets a \"shutting down\" error and its Dust run is cancelled; the orchestrator's kill timeout should leave 15 s more (systemd unit: 35 s)",
    ),
    s(
        "ALLOWED_HOSTS",
        None,
        "comma-separated `Host` values accepted on every route but `/health`, `/live`, `/ready` (DNS-rebinding defence; default: the bind address and `localhost`)",
    ),
    Setting {
        aliases: &["APP_ENV"],
        ..s(
            "NODE_ENV",
            Some("development"),
            "`production` turns on the production guards",
        )
    },
    Setting {
        secret: true,
        ..s(
            "SECURITY_SECRET_KEY",
            None,
            "root secret (≥ 32 bytes of randomness; `mcp-dust-server gen-secret`); generated per process in development",
        )
    },
    s(
        "SECURITY_TOKEN_EXPIRATION",
        Some("3600"),
        "JWT lifetime in seconds",
    ),
    s(
        "SESSION_TTL",
        Some("3600000"),
        "browser session idle timeout in milliseconds",
    ),
    s(
        "OAUTH_REFRESH_TOKEN_TTL",
        Some("2592000"),
        "lifetime in seconds of a refresh token issued by the OAuth endpoints (claude.ai, ChatGPT connectors); rotated on every use (default 30 days)",
    ),
    s(
        "TOKEN_MAX_LIFETIME",
        Some("86400"),
        "seconds a chain of /api/v1/auth/refresh may extend a login; past it the person logs in again (default 24 h)",
    ),
    s(
        "OAUTH_GRANT_MAX_LIFETIME",
        Some("7776000"),
        "seconds an OAuth grant (claude.ai, ChatGPT connectors) lives however often it is refreshed; then the person consents again (default 90 days)",
    ),
    s(
        "SESSION_ABSOLUTE_TIMEOUT",
        Some("43200000"),
        "browser session absolute lifetime in milliseconds, however active it is (default 12 h)",
    ),
    s(
        "CORS_ALLOWED_ORIGINS",
        None,
        "comma-separated exact origins",
    ),
    s(
        "OAUTH_LOOPBACK_METADATA_ORIGINS",
        None,
        "development only: comma-separated loopback origins (http://127.0.0.1:8765) whose OAuth client ID metadata documents may be fetched; any other loopback address is refused, as every one is in production",
    ),
    s(
        "RATE_LIMIT_MAX",
        Some("100"),
        "requests per window per client IP",
    ),
    s(
        "RATE_LIMIT_WINDOW",
        Some("3600"),
        "rate-limit window in seconds",
    ),
    s(
        "RATE_LIMIT_LOGIN_MAX",
        Some("10"),
        "login attempts per minute per client IP, successful ones included",
    ),
    s(
        "TRUSTED_PROXIES",
        None,
        "comma-separated CIDRs whose forwarded headers are believed",
    ),
    s(
        "CONVERSATION_MAX_RECORDS",
        Some("100000"),
        "conversation-ownership records kept in memory over all workspaces (about 0.7 KB each); past it the oldest is forgotten and its owner gets \"not found\" for it (with Redis, each record expires after 90 days instead)",
    ),
    s(
        "CONVERSATION_MAX_PER_WORKSPACE",
        Some("100000"),
        "conversation-ownership records kept in memory for one workspace; past it the workspace's oldest is forgotten",
    ),
    s(
        "TOKEN_MAX_RECORDS",
        Some("100000"),
        "token records kept in memory (about 0.65 KB each; a record lives until its token expires); at the cap expired and revoked ones go first, then new logins are refused with 503 until some expire",
    ),
    s(
        "SESSION_MAX_RECORDS",
        Some("100000"),
        "browser sessions kept in memory (about 0.3 KB each); at the cap expired ones go first, then new sessions are refused until some expire",
    ),
    s(
        "AUDIT_RECENT_RECORDS",
        Some("5000"),
        "audit records (about 0.65 KB each) kept in memory for `GET /api/v1/audit` and the console; the oldest go first",
    ),
    Setting {
        secret: true,
        ..s(
            "REDIS_URL",
            None,
            "when set (`redis://[user:password@]host:6379[/db]`, or `rediss://` for TLS), tokens, revocations, rate and lockout counters and conversation ownership live in Redis, so several instances act as one",
        )
    },
    s(
        "REDIS_KEY_PREFIX",
        Some("mcp-dust:"),
        "prefix of every Redis key (to share one Redis between deployments)",
    ),
    s(
        "REDIS_TIMEOUT_MS",
        Some("1000"),
        "longest wait for Redis (connect or command) before a request fails with 503",
    ),
    s(
        "REDIS_TLS_CA_FILE",
        None,
        "with a `rediss://` REDIS_URL: PEM file of the CA certificates to trust for Redis instead of the system roots (a managed Redis with its own CA); the server certificate is always verified",
    ),
    s(
        "REDIS_CLUSTER",
        Some("false"),
        "`true`: REDIS_URL is a Redis Cluster (seed nodes, comma-separated, same scheme and user), whose slot map the server follows; keys are hash-tagged either way (docs/DEPLOYMENT.md, Redis Cluster)",
    ),
    s(
        "AUDIT_LOG_FILE",
        None,
        "where security audit events go (default: stdout), one JSON object a line",
    ),
    Setting {
        secret: true,
        ..s(
            "ALERT_WEBHOOK_URL",
            None,
            "webhook (JSON POST) for high-severity security events: login-failure bursts, lockouts, revoked-token use, CSRF/Origin bursts, audit overflow",
        )
    },
    s("LOG_LEVEL", Some("info"), "log level or tracing filter"),
    s(
        "LOG_FORMAT",
        None,
        "`json` or `pretty` (default: json in production, pretty otherwise)",
    ),
    s(
        "LOG_REQUEST_BODY",
        Some("false"),
        "log request bodies (masked)",
    ),
    s(
        "LOG_REQUEST_HEADERS",
        Some("false"),
        "log request headers (masked)",
    ),
    s(
        "LOG_RESPONSE_BODY",
        Some("false"),
        "log response bodies (masked)",
    ),
    s(
        "LOG_RESPONSE_HEADERS",
        Some("false"),
        "log response headers (masked)",
    ),
    s("ENABLE_METRICS", Some("true"), "serve Prometheus metrics"),
    s(
        "METRICS_PREFIX",
        Some("mcp_dust_server"),
        "prefix of metric names",
    ),
    s(
        "PERMISSIONS_POLICY_FILE",
        None,
        "TOML file granting permissions per key fingerprint (`usr_...`, under `[users]`) beyond `PERMISSIONS_DEFAULT`; a `[usernames]` section stops the start (usernames are not verified)",
    ),
    s(
        "PERMISSIONS_DEFAULT",
        Some("read:workspaces,read:agents,execute:agents,read:knowledge-bases,read:connectors"),
        "what a valid key may do unless the policy says otherwise",
    ),
];

/// `development` or `production` (`NODE_ENV`).
/// Which agents are also tools of their own, `ask_<name>` (`DUST_AGENT_TOOLS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AgentTools {
    /// None (unset): agents are reached through `ask_agent` only.
    #[default]
    None,
    /// Every active agent the caller can see (`all`).
    All,
    /// These agents (their sIds), those of them the caller can see.
    Only(Vec<String>),
}

impl AgentTools {
    /// Whether `agent_id` is chosen.
    #[must_use]
    pub fn includes(&self, agent_id: &str) -> bool {
        match self {
            Self::None => false,
            Self::All => true,
            Self::Only(ids) => ids.iter().any(|id| id == agent_id),
        }
    }

    /// Whether any agent may be a tool.
    #[must_use]
    pub fn is_enabled(&self) -> bool {
        *self != Self::None
    }
}

/// Who answers when an agent's tool needs a person's approval (`DUST_TOOL_APPROVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ToolApproval {
    /// The person is asked through their client; a client that cannot be asked gets the
    /// action rejected.
    #[default]
    Ask,
    /// Messages are posted with `skipToolsValidation: true`: Dust runs every tool unasked.
    Auto,
    /// Every approval is answered `rejected`.
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// How many records each in-memory store keeps (`CONVERSATION_MAX_*`, `TOKEN_MAX_RECORDS`,
/// `SESSION_MAX_RECORDS`, `AUDIT_RECENT_RECORDS`): the global bounds of docs/RELIABILITY.md,
/// "Memory bounds". The Redis stores bound their records by expiry instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    pub conversations: crate::store::ConversationLimits,
    pub tokens: usize,
    pub sessions: usize,
    pub recent_audit: usize,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        Self {
            conversations: crate::store::ConversationLimits::default(),
            tokens: crate::store::MAX_TOKEN_RECORDS,
            sessions: crate::store::sessions::MAX_SESSIONS,
            recent_audit: crate::audit::RECENT_AUDIT_CAPACITY,
        }
    }
}

/// How the server treats a slow or failing Dust (`DUST_TIMEOUT`, `DUST_MAX_RETRIES`,
/// `DUST_RETRY_AFTER_MAX`, `DUST_BREAKER_*`).
#[derive(Debug, Clone, Copy)]
pub struct DustLimits {
    pub timeout: Duration,
    pub max_retries: u32,
    pub max_retry_after: Duration,
    pub breaker: crate::dust::BreakerSettings,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dust_base_url: Url,
    pub dust_api_key: Option<SecretString>,
    pub dust_workspace_id: Option<String>,
    pub dust_agent_id: Option<String>,
    pub dust_username: String,
    pub dust_email: Option<String>,
    pub dust_full_name: Option<String>,
    pub dust_timezone: String,
    /// `DUST_TOOL_APPROVAL`: who answers an agent's request to run a tool.
    pub tool_approval: ToolApproval,
    /// `DUST_AGENT_TOOLS`: the agents that are tools of their own.
    pub agent_tools: AgentTools,
    pub server_name: String,
    pub host: String,
    pub port: u16,
    /// The canonical public URL (no trailing slash): JWT issuer, and `<url>/mcp` its audience.
    pub public_url: String,
    /// How long an agent run may take (`MCP_SERVER_TIMEOUT`).
    pub agent_timeout: Duration,
    /// How long a task handle of `ask_agent` stays readable (`TASK_TTL`).
    pub task_ttl: Duration,
    /// Timeouts, retries and circuit breaker of the Dust client (`DUST_TIMEOUT`, ...).
    pub dust_limits: DustLimits,
    /// How long a caller's agent list is reused (`AGENT_CACHE_TTL`; zero: not cached).
    pub agent_cache_ttl: Duration,
    pub allowed_hosts: Vec<String>,
    /// Connection and request-body limits of the listener (`HTTP_*`, `MAX_CONNECTIONS`).
    pub listener: crate::http::listener::Limits,
    /// How long requests in flight may run on after the stop signal (`SHUTDOWN_GRACE_PERIOD`).
    pub shutdown_grace: Duration,
    pub environment: Environment,
    pub secret_key: Option<SecretString>,
    pub token_expiration: Duration,
    pub session_ttl: Duration,
    /// Absolute browser-session lifetime (`SESSION_ABSOLUTE_TIMEOUT`), at least `session_ttl`.
    pub session_absolute_timeout: Duration,
    /// Lifetime of an OAuth refresh token (`OAUTH_REFRESH_TOKEN_TTL`).
    pub oauth_refresh_token_ttl: Duration,
    /// How far a chain of refreshes may extend a login (`TOKEN_MAX_LIFETIME`), at least
    /// `token_expiration`.
    pub token_max_lifetime: Duration,
    /// How long an OAuth grant lives however often it is refreshed
    /// (`OAUTH_GRANT_MAX_LIFETIME`); its refresh and access tokens never outlive it.
    pub oauth_grant_max_lifetime: Duration,
    pub cors_allowed_origins: Vec<String>,
    /// Loopback origins whose client metadata documents may be fetched outside production
    /// (`OAUTH_LOOPBACK_METADATA_ORIGINS`), as `Url::origin` serializes them.
    pub oauth_loopback_metadata_origins: Vec<String>,
    pub rate_limit_max: u32,
    pub rate_limit_window: Duration,
    /// Login attempts per minute per client IP (`RATE_LIMIT_LOGIN_MAX`).
    pub rate_limit_login_max: u32,
    pub trusted_proxies: Vec<IpNet>,
    pub redis_url: Option<SecretString>,
    pub redis_key_prefix: String,
    /// Deadline of each Redis connection attempt and command (`REDIS_TIMEOUT_MS`).
    pub redis_timeout: Duration,
    /// Bounds of the in-memory stores.
    pub memory_limits: MemoryLimits,
    /// CA certificates (PEM file) trusted for a `rediss://` Redis instead of the system roots
    /// (`REDIS_TLS_CA_FILE`).
    pub redis_tls_ca_file: Option<String>,
    /// Whether `REDIS_URL` names Redis Cluster seed nodes (`REDIS_CLUSTER`).
    pub redis_cluster: bool,
    pub audit_log_file: Option<String>,
    pub alert_webhook_url: Option<SecretString>,
    pub log_level: String,
    pub log_format: LogFormat,
    pub log_request_body: bool,
    pub log_request_headers: bool,
    pub log_response_body: bool,
    pub log_response_headers: bool,
    pub enable_metrics: bool,
    pub metrics_prefix: String,
    pub permissions_default: PermissionSet,
    pub permissions_policy_file: Option<String>,
}

impl Config {
    /// Loads defaults, then `file` (TOML, keys named like the environment variables, any case),
    /// then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let file_values = match file {
            Some(path) => read_toml(path)?,
            None => BTreeMap::new(),
        };
        Self::from_sources(&file_values, |name| std::env::var(name).ok())
    }

    /// Builds the configuration from file values and an environment lookup (tests pass a map).
    pub fn from_sources(
        file: &BTreeMap<String, String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut raw = Raw::default();
        for setting in SETTINGS {
            let from_env = std::iter::once(setting.env)
                .chain(setting.aliases.iter().copied())
                .find_map(&env);
            let from_file = || {
                std::iter::once(setting.env)
                    .chain(setting.aliases.iter().copied())
                    .find_map(|name| file.get(&name.to_ascii_lowercase()).cloned())
            };
            let value = from_env
                .or_else(from_file)
                .or_else(|| setting.default.map(str::to_owned))
                .filter(|v| !v.trim().is_empty());
            if let Some(value) = value {
                raw.0.insert(setting.env, value);
            }
        }
        raw.build()
    }

    /// Problems that stop a production start (`NODE_ENV=production`); each message names the
    /// setting and the fix, never a secret's value. Outside production the same problems are
    /// only warnings, returned for the caller to log.
    pub fn production_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(weak) =
            crate::auth::keys::check_root_secret(self.secret_key.as_ref(), self.is_production())
        {
            problems.push(format!(
                "SECURITY_SECRET_KEY: {weak}; generate one with `mcp-dust-server gen-secret`"
            ));
        }
        if self.cors_allowed_origins.iter().any(|o| o.contains('*')) {
            problems.push(
                "CORS_ALLOWED_ORIGINS: wildcards are not allowed; list exact origins such as https://app.example.com"
                    .to_owned(),
            );
        }
        if self.is_production() && !self.oauth_loopback_metadata_origins.is_empty() {
            problems.push(
                "OAUTH_LOOPBACK_METADATA_ORIGINS: development only; unset it in production (loopback client metadata documents are never fetched there)"
                    .to_owned(),
            );
        }
        if self.is_production() && !self.public_url.starts_with("https://") {
            problems.push(
                "MCP_PUBLIC_URL: set the https:// URL clients use (tokens are bound to it)"
                    .to_owned(),
            );
        }
        problems
    }

    /// Whether `NODE_ENV=production`.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// `OAUTH_LOOPBACK_METADATA_ORIGINS`, checked and normalized: each an http(s) origin on a
/// loopback host (`localhost`, 127.0.0.0/8, `::1`), nothing after it.
fn loopback_origins(list: &[String]) -> anyhow::Result<Vec<String>> {
    list.iter()
        .map(|text| {
            let url = Url::parse(text)
                .ok()
                .filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.username().is_empty()
                        && u.password().is_none()
                        && u.path() == "/"
                        && u.query().is_none()
                        && u.fragment().is_none()
                        && is_loopback_host(u.host_str())
                })
                .with_context(|| {
                    format!(
                        "OAUTH_LOOPBACK_METADATA_ORIGINS: {text:?} is not an http(s) origin on a loopback host, such as http://127.0.0.1:8765"
                    )
                })?;
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

/// Whether `host` (a URL's host or a bind address; IPv6 with or without brackets) is this
/// machine: `localhost` or a loopback address.
pub fn is_loopback_host(host: Option<&str>) -> bool {
    match host {
        Some(h) if h.eq_ignore_ascii_case("localhost") => true,
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn read_toml(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let key = key.to_ascii_lowercase();
        if !SETTINGS.iter().any(|s| s.env.eq_ignore_ascii_case(&key)) {
            bail!("{}: unknown setting {key:?}", path.display());
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
            _ => bail!(
                "{}: {key} must be a string, number, boolean or list",
                path.display()
            ),
        };
        values.insert(key, text);
    }
    Ok(values)
}

/// The raw text of each setting that has a value.
#[derive(Default)]
struct Raw(BTreeMap<&'static str, String>);

impl Raw {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    fn required(&self, name: &str) -> anyhow::Result<String> {
        self.text(name)
            .with_context(|| format!("{name} has no default and is not set"))
    }

    fn secret(&self, name: &str) -> Option<SecretString> {
        self.text(name).map(SecretString::from)
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.text(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `DUST_AGENT_TOOLS`: `all`, or agent ids (checked like every id, so a typo such as a
    /// name in place of an sId stops the start rather than hiding the tool).
    fn agent_tools(&self) -> anyhow::Result<AgentTools> {
        let ids = self.list("DUST_AGENT_TOOLS");
        if ids.is_empty() {
            return Ok(AgentTools::None);
        }
        if ids.iter().any(|id| id.eq_ignore_ascii_case("all")) {
            if ids.len() > 1 {
                bail!("DUST_AGENT_TOOLS is either `all` or a list of agent ids, not both");
            }
            return Ok(AgentTools::All);
        }
        for id in &ids {
            crate::ops::args::check_id("DUST_AGENT_TOOLS", id)
                .map_err(|e| anyhow::anyhow!("{e} (or be `all`), got {id:?}"))?;
        }
        Ok(AgentTools::Only(ids))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> anyhow::Result<T> {
        let text = self.required(name)?;
        text.trim()
            .parse()
            .ok()
            .with_context(|| format!("{name} must be a whole number, got {text:?}"))
    }

    fn seconds(&self, name: &str) -> anyhow::Result<Duration> {
        let secs: u64 = self.number(name)?;
        if secs == 0 {
            bail!("{name} must be at least 1 second");
        }
        Ok(Duration::from_secs(secs))
    }

    /// A whole number in `1..=max`.
    fn count<T: TryFrom<u64>>(&self, name: &str, max: u64) -> anyhow::Result<T> {
        let n: u64 = self.number(name)?;
        if !(1..=max).contains(&n) {
            bail!("{name} must be between 1 and {max}, got {n}");
        }
        T::try_from(n)
            .ok()
            .with_context(|| format!("{name} is too large"))
    }

    fn flag(&self, name: &str) -> anyhow::Result<bool> {
        match self.required(name)?.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            other => bail!("{name} must be true or false, got {other:?}"),
        }
    }

    fn build(self) -> anyhow::Result<Config> {
        let environment = match self.required("NODE_ENV")?.trim() {
            "production" => Environment::Production,
            "development" | "test" => Environment::Development,
            other => bail!("NODE_ENV must be development or production, got {other:?}"),
        };
        let dust_base_url = {
            let text = self.required("DUST_BASE_URL")?;
            // `DUST_DOMAIN=eu.dust.tt` (no scheme) is how the older server took it.
            let text = if text.contains("://") {
                text
            } else {
                format!("https://{text}")
            };
            Url::parse(&text)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .with_context(|| format!("DUST_BASE_URL must be an http(s) URL, got {text:?}"))?
        };
        // Every login sends the person's Dust key to this URL: in production it must not cross
        // the network in clear. A loopback host is a local TLS-terminating proxy (or the
        // simulator), where the key never leaves the machine. Only the host is shown: the URL
        // might carry credentials.
        if environment == Environment::Production
            && dust_base_url.scheme() == "http"
            && !is_loopback_host(dust_base_url.host_str())
        {
            bail!(
                "DUST_BASE_URL: http://{} is plain HTTP, and with NODE_ENV=production every Dust API \
                 key would cross the network in clear; use https:// (https://dust.tt, \
                 https://eu.dust.tt), or plain http:// only to a loopback proxy (127.0.0.1, [::1], \
                 localhost)",
                dust_base_url.host_str().unwrap_or_default()
            );
        }
        let log_format = match self.text("LOG_FORMAT").as_deref().map(str::trim) {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            Some(other) => bail!("LOG_FORMAT must be json or pretty, got {other:?}"),
            None if environment == Environment::Production => LogFormat::Json,
            None => LogFormat::Pretty,
        };
        let redis_timeout_ms: u64 = self.number("REDIS_TIMEOUT_MS")?;
        if !(10..=60_000).contains(&redis_timeout_ms) {
            bail!("REDIS_TIMEOUT_MS must be between 10 and 60000, got {redis_timeout_ms}");
        }
        let redis_timeout = Duration::from_millis(redis_timeout_ms);
        let session_ms: u64 = self.number("SESSION_TTL")?;
        if session_ms < 1000 {
            bail!("SESSION_TTL is in milliseconds and must be at least 1000");
        }
        let token_max_lifetime = self.seconds("TOKEN_MAX_LIFETIME")?;
        if token_max_lifetime < self.seconds("SECURITY_TOKEN_EXPIRATION")? {
            bail!("TOKEN_MAX_LIFETIME must be at least SECURITY_TOKEN_EXPIRATION");
        }
        let session_absolute_ms: u64 = self.number("SESSION_ABSOLUTE_TIMEOUT")?;
        if session_absolute_ms < session_ms {
            bail!("SESSION_ABSOLUTE_TIMEOUT is in milliseconds and must be at least SESSION_TTL");
        }
        let trusted_proxies = self
            .list("TRUSTED_PROXIES")
            .iter()
            .map(|cidr| {
                cidr.parse::<IpNet>()
                    .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                    .with_context(|| {
                        format!("TRUSTED_PROXIES: {cidr:?} is not an IP address or CIDR")
                    })
            })
            .collect::<anyhow::Result<_>>()?;
        let permissions_default = PermissionSet::parse_list(&self.required("PERMISSIONS_DEFAULT")?)
            .context("PERMISSIONS_DEFAULT")?;
        let host = self.required("MCP_SERVER_HOST")?;
        let port = self.number("MCP_SERVER_PORT")?;
        let mut allowed_hosts = self.list("ALLOWED_HOSTS");
        if allowed_hosts.is_empty() {
            allowed_hosts = vec![host.clone(), "localhost".to_owned()];
        }
        let public_url = match self.text("MCP_PUBLIC_URL") {
            Some(text) => {
                let url = Url::parse(text.trim())
                    .ok()
                    .filter(|u| {
                        matches!(u.scheme(), "http" | "https")
                            && u.host().is_some()
                            && u.query().is_none()
                            && u.fragment().is_none()
                    })
                    .with_context(|| {
                        format!("MCP_PUBLIC_URL must be an http(s) URL without query, got {text:?}")
                    })?;
                url.as_str().trim_end_matches('/').to_owned()
            }
            None if host.contains(':') => format!("http://[{host}]:{port}"),
            None => format!("http://{host}:{port}"),
        };
        Ok(Config {
            public_url,
            dust_base_url,
            dust_api_key: self.secret("DUST_API_KEY"),
            dust_workspace_id: self.text("DUST_WORKSPACE_ID"),
            dust_agent_id: self.text("DUST_AGENT_ID"),
            dust_username: self.required("DUST_USERNAME")?,
            dust_email: self.text("DUST_EMAIL"),
            dust_full_name: self.text("DUST_FULL_NAME"),
            dust_timezone: {
                let zone = self.required("DUST_TIMEZONE")?;
                if !crate::timezone::is_iana_timezone(&zone) {
                    bail!(
                        "DUST_TIMEZONE must be an IANA time zone name such as UTC or Europe/Paris (Dust refuses every message with another), got {zone:?}"
                    );
                }
                zone
            },
            tool_approval: match self.required("DUST_TOOL_APPROVAL")?.as_str() {
                "ask" => ToolApproval::Ask,
                "auto" => ToolApproval::Auto,
                "deny" => ToolApproval::Deny,
                other => bail!("DUST_TOOL_APPROVAL must be ask, auto or deny, got {other:?}"),
            },
            agent_tools: self.agent_tools()?,
            server_name: self.required("MCP_SERVER_NAME")?,
            host,
            port,
            agent_timeout: self.seconds("MCP_SERVER_TIMEOUT")?,
            task_ttl: {
                let ttl = self.seconds("TASK_TTL")?;
                if !(60..=604_800).contains(&ttl.as_secs()) {
                    bail!(
                        "TASK_TTL must be between 60 and 604800 seconds, got {}",
                        ttl.as_secs()
                    );
                }
                ttl
            },
            dust_limits: DustLimits {
                timeout: self.seconds("DUST_TIMEOUT")?,
                max_retries: {
                    let retries: u32 = self.number("DUST_MAX_RETRIES")?;
                    if retries > 10 {
                        bail!("DUST_MAX_RETRIES must be between 0 and 10, got {retries}");
                    }
                    retries
                },
                max_retry_after: self.seconds("DUST_RETRY_AFTER_MAX")?,
                breaker: crate::dust::BreakerSettings {
                    threshold: self.count("DUST_BREAKER_THRESHOLD", 1000)?,
                    cooldown: self.seconds("DUST_BREAKER_COOLDOWN")?,
                },
            },
            agent_cache_ttl: {
                let secs: u64 = self.number("AGENT_CACHE_TTL")?;
                if secs > 300 {
                    bail!("AGENT_CACHE_TTL must be at most 300 seconds, got {secs}");
                }
                Duration::from_secs(secs)
            },
            allowed_hosts,
            listener: crate::http::listener::Limits {
                header_timeout: self.seconds("HTTP_HEADER_TIMEOUT")?,
                body_timeout: self.seconds("HTTP_BODY_TIMEOUT")?,
                write_timeout: self.seconds("HTTP_WRITE_TIMEOUT")?,
                max_connections: self.count("MAX_CONNECTIONS", 1_000_000)?,
                http2_max_streams: self.count("HTTP2_MAX_STREAMS", 10_000)?,
            },
            shutdown_grace: self.seconds("SHUTDOWN_GRACE_PERIOD")?,
            environment,
            secret_key: self.secret("SECURITY_SECRET_KEY"),
            token_expiration: self.seconds("SECURITY_TOKEN_EXPIRATION")?,
            session_ttl: Duration::from_millis(session_ms),
            session_absolute_timeout: Duration::from_millis(session_absolute_ms),
            oauth_refresh_token_ttl: self.seconds("OAUTH_REFRESH_TOKEN_TTL")?,
            token_max_lifetime,
            oauth_grant_max_lifetime: self.seconds("OAUTH_GRANT_MAX_LIFETIME")?,
            cors_allowed_origins: self.list("CORS_ALLOWED_ORIGINS"),
            oauth_loopback_metadata_origins: loopback_origins(
                &self.list("OAUTH_LOOPBACK_METADATA_ORIGINS"),
            )?,
            rate_limit_max: self.number("RATE_LIMIT_MAX")?,
            rate_limit_window: self.seconds("RATE_LIMIT_WINDOW")?,
            rate_limit_login_max: self.number("RATE_LIMIT_LOGIN_MAX")?,
            trusted_proxies,
            redis_url: self.secret("REDIS_URL"),
            redis_key_prefix: self.text("REDIS_KEY_PREFIX").unwrap_or_default(),
            redis_timeout,
            memory_limits: MemoryLimits {
                conversations: crate::store::ConversationLimits {
                    total: self.count("CONVERSATION_MAX_RECORDS", 100_000_000)?,
                    per_workspace: self.count("CONVERSATION_MAX_PER_WORKSPACE", 100_000_000)?,
                },
                tokens: self.count("TOKEN_MAX_RECORDS", 100_000_000)?,
                sessions: self.count("SESSION_MAX_RECORDS", 100_000_000)?,
                recent_audit: self.count("AUDIT_RECENT_RECORDS", 10_000_000)?,
            },
            redis_tls_ca_file: self.text("REDIS_TLS_CA_FILE"),
            redis_cluster: self.flag("REDIS_CLUSTER")?,
            audit_log_file: self.text("AUDIT_LOG_FILE"),
            alert_webhook_url: self.secret("ALERT_WEBHOOK_URL"),
            log_level: self.required("LOG_LEVEL")?,
            log_format,
            log_request_body: self.flag("LOG_REQUEST_BODY")?,
            log_request_headers: self.flag("LOG_REQUEST_HEADERS")?,
            log_response_body: self.flag("LOG_RESPONSE_BODY")?,
            log_response_headers: self.flag("LOG_RESPONSE_HEADERS")?,
            enable_metrics: self.flag("ENABLE_METRICS")?,
            metrics_prefix: self.required("METRICS_PREFIX")?,
            permissions_default,
            permissions_policy_file: self.text("PERMISSIONS_POLICY_FILE"),
        })
    }
}

/// The configuration table of the README, generated from [`SETTINGS`].
pub fn markdown_table() -> String {
    let mut out = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for setting in SETTINGS {
        let mut name = format!("`{}`", setting.env);
        for alias in setting.aliases {
            name.push_str(&format!(" (alias `{alias}`)"));
        }
        let default = setting
            .default
            .map_or_else(|| "—".to_owned(), |d| format!("`{d}`"));
        out.push_str(&format!("| {name} | {default} | {} |\n", setting.help));
    }
    out
}

/// `.env.example`, generated from [`SETTINGS`]: every variable, commented out, with its default.
pub fn env_example() -> String {
    let mut out = String::from(
        "# mcp-dust-server settings (generated by `mcp-dust-server config-table --env`).\n\
         # Every line is commented out: uncomment what you change. Never commit real keys.\n",
    );
    for setting in SETTINGS {
        out.push_str(&format!("\n# {}\n", setting.help));
        for alias in setting.aliases {
            out.push_str(&format!("# (also accepted as {alias})\n"));
        }
        out.push_str(&format!(
            "# {}={}\n",
            setting.env,
            setting.default.unwrap_or("")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> anyhow::Result<Config> {
        load_with_file(&[], env)
    }

    fn load_with_file(file: &[(&str, &str)], env: &[(&str, &str)]) -> anyhow::Result<Config> {
        let file = file
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
            .collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_sources(&file, |name| env.get(name).cloned())
    }

    #[test]
    fn loopback_metadata_origins_are_exact_loopback_origins_for_development_only() {
        let c = load(&[(
            "OAUTH_LOOPBACK_METADATA_ORIGINS",
            "http://127.0.0.1:8765/, http://LOCALHOST:9000, https://[::1]:4443",
        )])
        .unwrap();
        assert_eq!(
            c.oauth_loopback_metadata_origins,
            [
                "http://127.0.0.1:8765",
                "http://localhost:9000",
                "https://[::1]:4443"
            ]
        );
        assert!(
            load(&[])
                .unwrap()
                .oauth_loopback_metadata_origins
                .is_empty()
        );
        for bad in [
            "http://10.0.0.1:80",
            "http://example.com:8080",
            "http://127.0.0.1:8765/path",
            "http://u:p@127.0.0.1:1",
            "ftp://127.0.0.1:21",
            "127.0.0.1:8765",
        ] {
            let error = load(&[("OAUTH_LOOPBACK_METADATA_ORIGINS", bad)])
                .expect_err(bad)
                .to_string();
            assert!(error.contains("OAUTH_LOOPBACK_METADATA_ORIGINS"), "{error}");
        }
        let production = load(&[
            ("NODE_ENV", "production"),
            ("OAUTH_LOOPBACK_METADATA_ORIGINS", "http://127.0.0.1:8765"),
        ])
        .unwrap();
        assert!(
            production
                .production_problems()
                .iter()
                .any(|p| p.starts_with("OAUTH_LOOPBACK_METADATA_ORIGINS"))
        );
    }

    #[test]
    fn defaults_match_the_interface() {
        let c = load(&[]).unwrap();
        assert_eq!(c.dust_base_url.as_str(), "https://dust.tt/");
        assert_eq!(c.port, 5001);
        assert_eq!(c.host, "127.0.0.1");
        assert_eq!(c.agent_timeout, Duration::from_secs(120));
        assert_eq!(c.agent_cache_ttl, Duration::from_secs(15));
        assert_eq!(c.allowed_hosts, ["127.0.0.1", "localhost"]);
        assert_eq!(c.environment, Environment::Development);
        assert_eq!(c.log_format, LogFormat::Pretty);
        assert_eq!(c.rate_limit_max, 100);
        assert_eq!(c.session_ttl, Duration::from_secs(3600));
        assert_eq!(c.session_absolute_timeout, Duration::from_secs(12 * 3600));
        assert_eq!(c.permissions_default, PermissionSet::DEFAULT);
        assert_eq!(c.dust_username, "mcp-dust-server");
        assert_eq!(c.listener.header_timeout, Duration::from_secs(10));
        assert_eq!(c.listener.body_timeout, Duration::from_secs(30));
        assert_eq!(c.listener.write_timeout, Duration::from_secs(30));
        assert_eq!(c.listener.max_connections, 1024);
        assert_eq!(c.listener.http2_max_streams, 32);
        assert!(load(&[("MAX_CONNECTIONS", "0")]).is_err());
        // The global bounds of the memory stores (issue 25).
        assert_eq!(c.memory_limits, MemoryLimits::default());
        assert_eq!(c.memory_limits.conversations.total, 100_000);
        let lowered = load(&[
            ("CONVERSATION_MAX_RECORDS", "8000"),
            ("CONVERSATION_MAX_PER_WORKSPACE", "500"),
            ("TOKEN_MAX_RECORDS", "10"),
            ("SESSION_MAX_RECORDS", "20"),
            ("AUDIT_RECENT_RECORDS", "30"),
        ])
        .unwrap();
        assert_eq!(
            lowered.memory_limits,
            MemoryLimits {
                conversations: crate::store::ConversationLimits {
                    total: 8000,
                    per_workspace: 500,
                },
                tokens: 10,
                sessions: 20,
                recent_audit: 30,
            }
        );
        for name in [
            "CONVERSATION_MAX_RECORDS",
            "CONVERSATION_MAX_PER_WORKSPACE",
            "TOKEN_MAX_RECORDS",
            "SESSION_MAX_RECORDS",
            "AUDIT_RECENT_RECORDS",
        ] {
            assert!(load(&[(name, "0")]).is_err(), "{name}=0 accepted");
        }
        assert!(c.dust_api_key.is_none());
    }

    #[test]
    fn agent_tools_are_none_all_or_checked_ids() {
        assert_eq!(load(&[]).unwrap().agent_tools, AgentTools::None);
        let all = load(&[("DUST_AGENT_TOOLS", "all")]).unwrap();
        assert_eq!(all.agent_tools, AgentTools::All);
        let some = load(&[("DUST_AGENT_TOOLS", " dust, ech0Ag3ntX ,")]).unwrap();
        assert_eq!(
            some.agent_tools,
            AgentTools::Only(vec!["dust".into(), "ech0Ag3ntX".into()])
        );
        assert!(some.agent_tools.includes("dust") && !some.agent_tools.includes("Dust"));
        let error = load(&[("DUST_AGENT_TOOLS", "dust,HR Handbook")]).unwrap_err();
        assert!(error.to_string().contains("DUST_AGENT_TOOLS"), "{error}");
        assert!(load(&[("DUST_AGENT_TOOLS", "all,dust")]).is_err());
    }

    #[test]
    fn environment_wins_over_file_and_aliases_work() {
        let c = load_with_file(
            &[("MCP_SERVER_PORT", "7000"), ("DUST_AGENT_ID", "fromfile")],
            &[
                ("MCP_SERVER_PORT", "8000"),
                ("DUST_DOMAIN", "eu.dust.tt"),
                ("APP_ENV", "production"),
            ],
        )
        .unwrap();
        assert_eq!(c.port, 8000);
        assert_eq!(c.dust_agent_id.as_deref(), Some("fromfile"));
        assert_eq!(c.dust_base_url.as_str(), "https://eu.dust.tt/");
        assert!(c.is_production());
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn all_digit_workspace_ids_stay_text() {
        let c = load(&[("DUST_WORKSPACE_ID", "0012345678")]).unwrap();
        assert_eq!(c.dust_workspace_id.as_deref(), Some("0012345678"));
    }

    /// Issue 16: Dust refuses every message whose timezone is not an IANA name; a wrong
    /// `DUST_TIMEZONE` stops the server at start instead.
    #[test]
    fn dust_timezone_must_be_an_iana_name() {
        assert_eq!(load(&[]).unwrap().dust_timezone, "UTC");
        let ok = load(&[("DUST_TIMEZONE", "Europe/Paris")]).unwrap();
        assert_eq!(ok.dust_timezone, "Europe/Paris");
        for bad in ["Paris", "CEST", "+02:00", "europe/paris"] {
            let err = format!("{:#}", load(&[("DUST_TIMEZONE", bad)]).unwrap_err());
            assert!(
                err.contains("DUST_TIMEZONE") && err.contains("IANA"),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable_and_hide_secrets() {
        let err = load(&[("MCP_SERVER_TIMEOUT", "2m")]).unwrap_err();
        assert!(format!("{err:#}").contains("MCP_SERVER_TIMEOUT"));
        let err = load(&[("PERMISSIONS_DEFAULT", "read:agents,root")]).unwrap_err();
        assert!(format!("{err:#}").contains("root"));
        let err = load(&[("TRUSTED_PROXIES", "10.0.0.0/33")]).unwrap_err();
        assert!(format!("{err:#}").contains("TRUSTED_PROXIES"));
        let c = load(&[("DUST_API_KEY", "sk-canarycanarycanarycanary0000000")]).unwrap();
        assert!(!format!("{c:?}").contains("canary"));
    }

    /// L7: a production start with an `http://` Dust URL would send every key in clear.
    #[test]
    fn production_refuses_a_plain_http_dust_url_unless_it_is_loopback() {
        let prod = |url: &str| {
            load(&[("NODE_ENV", "production"), ("DUST_BASE_URL", url)]).map(|c| c.dust_base_url)
        };
        for url in [
            "http://dust.tt",
            "http://eu.dust.tt:80/",
            "http://10.0.0.7:8080",
            "http://user:sk-canarycanarycanarycanary0000000@dust.tt",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
        ] {
            let err = format!("{:#}", prod(url).unwrap_err());
            assert!(
                err.contains("DUST_BASE_URL") && err.contains("https://"),
                "{url}: {err}"
            );
            assert!(
                !err.contains("canary"),
                "the URL's credentials leaked: {err}"
            );
        }
        for url in [
            "https://dust.tt",
            "eu.dust.tt",
            "http://127.0.0.1:18080",
            "http://127.1.2.3:9",
            "http://[::1]:8080",
            "http://localhost:8080",
            "http://LOCALHOST",
        ] {
            assert!(prod(url).is_ok(), "{url}: {:?}", prod(url).err());
        }
        // Development (the simulator, a mock, demo) keeps any URL.
        assert!(load(&[("DUST_BASE_URL", "http://dust.tt")]).is_ok());
    }

    #[test]
    fn readme_and_env_example_match_the_settings() {
        let readme = include_str!("../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's configuration table is stale: paste `mcp-dust-server config-table`"
        );
        assert_eq!(
            include_str!("../.env.example"),
            env_example(),
            ".env.example is stale: regenerate it with `mcp-dust-server config-table --env`"
        );
    }
}
