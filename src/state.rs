//! The application state every HTTP handler shares: `AppState(Arc<App>)`.
//!
//! Swappable parts (the Dust client, the stores, the clock) are trait objects, so tests put a
//! simulator, memory stores or a manual clock in their place. Nothing here is `Debug`-printed
//! with secrets: keys live in types that redact themselves.

use std::{
    ops::Deref,
    sync::Arc,
    time::{Instant, SystemTime},
};

use metrics_exporter_prometheus::PrometheusHandle;

use crate::{
    audit::{Auditor, RecentAudit},
    auth::{jwt::JwtIssuer, keys::Keys, lockout::LoginThrottle, policy::Policy, tokens::KeyCipher},
    config::Config,
    dust::DustApi,
    ops::Context,
    store::{CounterStore, OAuthStore, SessionStore, StoreError, TokenStore},
};

/// The time source; tests inject a manual clock to cross expiry boundaries without sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
}

/// Whole seconds since the epoch (0 for a time before it): expiries in token records and JWTs.
#[must_use]
pub fn epoch_secs(at: SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Milliseconds since the epoch (0 for a time before it): sessions, OAuth records, Redis.
#[must_use]
pub fn epoch_ms(at: SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Whether the rate limiter reads ahead what authentication needs (`http::read_ahead`) with
/// the stores of `backend` (`store::Stores::backend`): in Redis, where it saves round trips;
/// not in memory, where a store answers at once and there are none to save.
#[must_use]
pub fn reads_ahead(backend: &str) -> bool {
    backend != "memory"
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// Everything the HTTP layer needs.
pub struct App {
    pub config: Config,
    pub started_at: Instant,
    /// The canonical public URL of this server (no trailing slash), the JWT issuer.
    pub public_url: String,
    pub dust: Arc<dyn DustApi>,
    pub ops: Arc<Context>,
    pub tokens: Arc<dyn TokenStore>,
    pub keys: Keys,
    pub jwt: JwtIssuer,
    pub cipher: KeyCipher,
    pub throttle: LoginThrottle,
    /// Rate-limit counters (`http::rate_limit`).
    pub counters: Arc<dyn CounterStore>,
    /// Browser sessions (`http::session`).
    pub sessions: Arc<dyn SessionStore>,
    /// The OAuth authorization server's records (`http::oauth`).
    pub oauth: Arc<dyn OAuthStore>,
    /// Where the state lives: `"memory"` or `"redis"` (`store::Stores::backend`).
    pub store_backend: &'static str,
    pub policy: Policy,
    pub auditor: Auditor,
    /// The recent audit records, for `GET /api/v1/audit` (fed by `auditor`).
    pub recent_audit: Arc<dyn RecentAudit>,
    pub metrics: Option<PrometheusHandle>,
    pub clock: Arc<dyn Clock>,
    /// rmcp's answers to the list methods on `/mcp`, kept per key (`http::mcp_fast`).
    pub mcp_lists: Arc<crate::http::mcp_fast::ListAnswers>,
    /// Where the sessions this instance has seen lead (`http::read_ahead`; kept only when
    /// [`App::read_ahead`]).
    pub session_hints: crate::http::read_ahead::SessionHints,
    /// The per-request HTTP metrics' handles, kept once registered (`observe::HttpMetrics`).
    pub http_metrics: crate::observe::HttpMetrics,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("public_url", &self.public_url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl App {
    /// The `/mcp` endpoint URL: the audience of every token this server issues.
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.public_url)
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Whether the rate limiter reads ahead what authentication needs ([`reads_ahead`]).
    pub fn read_ahead(&self) -> bool {
        reads_ahead(self.store_backend)
    }

    /// What writes token records and signs tokens ([`crate::auth::Issuer`]).
    pub fn issuer(&self) -> crate::auth::Issuer<'_> {
        crate::auth::Issuer {
            jwt: &self.jwt,
            cipher: &self.cipher,
            tokens: self.tokens.as_ref(),
        }
    }

    /// What turns a presented token into its principal ([`crate::auth::Resolver`]).
    pub fn resolver(&self) -> crate::auth::Resolver<'_> {
        crate::auth::Resolver {
            jwt: &self.jwt,
            cipher: &self.cipher,
            tokens: self.tokens.as_ref(),
            policy: &self.policy,
        }
    }

    /// Whether the stores answer (for `/ready`).
    pub async fn check_stores(&self) -> Result<(), StoreError> {
        self.tokens
            .get("readiness-probe", epoch_secs(self.now()))
            .await
            .map(|_| ())
    }
}

/// Shared, cheap-to-clone handle on [`App`].
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
