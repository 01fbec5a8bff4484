//! `mcp-dust-server serve` and `demo`: assemble the application state from the configuration
//! and run the HTTP server.
//!
//! Start-up refuses a production configuration with a weak secret, a wildcard origin or no
//! https public URL, naming the setting and never its value. Any configuration whose permission
//! policy file does not load is refused too, a `[usernames]` section included (see
//! `auth::policy`). In development a missing secret is replaced by a random one per process
//! (tokens then die with the process), with a warning.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use tokio::net::TcpListener;

use secrecy::{ExposeSecret, SecretSlice};

use crate::{
    app,
    audit::{
        AuditEvent, AuditEventType, AuditResult, AuditSink, Auditor, MemoryRecentAudit,
        RecentAudit, Severity, alert::Alerter,
    },
    auth::{
        Principal, jwt::JwtIssuer, keys::Keys, lockout::LoginThrottle, policy::Policy,
        tokens::KeyCipher,
    },
    config::Config,
    dust::{DustApi, DustCredentials, HttpDustClient, KeyWatch, RejectedKeyHook},
    http::read_ahead::{MAX_SESSION_HINTS, SessionHints},
    observe,
    state::{App, AppState, Clock, SystemClock},
    store::{RedisStore, Stores},
};

/// The parts of the state that tests and `demo` replace.
pub struct Parts {
    pub dust: Arc<dyn DustApi>,
    /// Tokens, counters, ownership, lockout: memory, or Redis when `REDIS_URL` is set.
    pub stores: Stores,
    pub auditor: Auditor,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parts").finish_non_exhaustive()
    }
}

/// Checks the configuration for `serve`: production problems stop the start.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    let problems = config.production_problems();
    if config.is_production() && !problems.is_empty() {
        bail!(
            "refusing to start in production:\n  - {}",
            problems.join("\n  - ")
        );
    }
    for problem in problems {
        tracing::warn!("{problem} (allowed outside production)");
    }
    Ok(())
}

/// Builds the application state.
pub fn build_state(config: Config, mut parts: Parts) -> anyhow::Result<AppState> {
    if let Some(url) = &config.alert_webhook_url {
        parts.auditor = parts.auditor.with_alerts(Alerter::start(url.clone()));
    }
    let recent_audit: Arc<dyn RecentAudit> =
        Arc::new(MemoryRecentAudit::new(config.memory_limits.recent_audit));
    parts.auditor = parts.auditor.with_recent(recent_audit.clone());
    let keys = match &config.secret_key {
        Some(root) => Keys::derive(root),
        None => {
            tracing::warn!(
                "SECURITY_SECRET_KEY is not set: using a random secret for this process; tokens will not survive a restart"
            );
            Keys::ephemeral()
        }
    };
    let policy = match &config.permissions_policy_file {
        Some(path) => Policy::load(std::path::Path::new(path))
            .with_context(|| format!("PERMISSIONS_POLICY_FILE {path}"))?
            .or_default(config.permissions_default),
        None => Policy::from_default(config.permissions_default),
    };
    let public_url = config.public_url.clone();
    let jwt = JwtIssuer::new(
        &keys,
        public_url.clone(),
        format!("{public_url}/mcp"),
        config.token_expiration,
    );
    let cipher = KeyCipher::new(&keys);
    let breaker = app::guarded_dust(parts.dust, &config, &parts.auditor);
    let dust: Arc<dyn DustApi> = Arc::new(KeyWatch::new(
        Arc::new(breaker),
        revoke_rejected_keys(
            &keys,
            parts.stores.clone(),
            parts.auditor.clone(),
            parts.clock.clone(),
            config.oauth_refresh_token_ttl,
        ),
    ));
    let ops = app::ops_context(
        &config,
        dust.clone(),
        parts.stores.conversations.clone(),
        &parts.auditor,
        crate::ops::pause::Pauses::new(
            keys.request_state(),
            parts.stores.counters.clone(),
            config.agent_timeout,
        ),
    );
    let metrics = config
        .enable_metrics
        .then(|| observe::install(&config.metrics_prefix));
    if config.is_production() && config.log_level.contains("debug") {
        parts.auditor.record(AuditEvent::new(
            AuditEventType::ConfigWarning,
            Severity::Medium,
            "LOG_LEVEL is debug in production",
        ));
    }
    Ok(AppState(Arc::new(App {
        started_at: Instant::now(),
        public_url,
        dust,
        ops,
        tokens: parts.stores.tokens.clone(),
        jwt,
        cipher,
        keys,
        throttle: LoginThrottle::with_store(parts.stores.failures.clone()),
        counters: parts.stores.counters.clone(),
        store_backend: parts.stores.backend,
        sessions: parts.stores.sessions.clone(),
        oauth: parts.stores.oauth.clone(),
        policy,
        auditor: parts.auditor,
        recent_audit,
        metrics,
        clock: parts.clock,
        mcp_lists: Arc::new(crate::http::mcp_fast::ListAnswers::new()),
        session_hints: SessionHints::new(if crate::state::reads_ahead(parts.stores.backend) {
            MAX_SESSION_HINTS
        } else {
            0
        }),
        http_metrics: observe::HttpMetrics::default(),
        config,
    })))
}

/// The hook that revokes every live token holding a key Dust no longer accepts (J19), so the
/// next request with any of them is a 401 instead of another refused call upstream. Which
/// tokens are live, and the revocation time, are the application's `clock`'s.
fn revoke_rejected_keys(
    keys: &Keys,
    stores: Stores,
    auditor: Auditor,
    clock: Arc<dyn Clock>,
    remember: Duration,
) -> RejectedKeyHook {
    let fingerprint_key: Arc<SecretSlice<u8>> =
        Arc::new(SecretSlice::from(keys.fingerprint().to_vec()));
    Arc::new(move |creds: &DustCredentials| {
        let user_id = Principal::user_id_for_key(fingerprint_key.expose_secret(), creds);
        let workspace_id = creds.workspace_id.clone();
        let stores = stores.clone();
        let auditor = auditor.clone();
        let now = crate::state::epoch_secs(clock.now());
        tokio::spawn(async move {
            let tokens = stores.tokens.as_ref();
            let live = match tokens.list_for_user(&workspace_id, &user_id, now).await {
                Ok(records) => records,
                Err(e) => {
                    tracing::error!(error = %e, "cannot revoke the tokens of a refused key");
                    return;
                }
            };
            let remember = remember.as_secs() as i64;
            for record in live.into_iter().filter(|r| r.revoked_at.is_none()) {
                // The OAuth grants behind the key end too: their refresh tokens would only
                // mint tokens for a key Dust no longer accepts (M3).
                let revoked = crate::auth::tokens::revoke(
                    tokens,
                    stores.oauth.as_ref(),
                    &record,
                    now,
                    remember,
                )
                .await;
                if matches!(revoked, Ok(ref r) if r.token) {
                    auditor.record(
                        AuditEvent::new(
                            AuditEventType::AuthnTokenRevoked,
                            Severity::High,
                            "Dust refused the key behind this token; token revoked",
                        )
                        .user(&record.user_id, Some(&record.username))
                        .resource("token", &record.token_id)
                        .action("revoke")
                        .result(AuditResult::Success)
                        .extra("reason", "dust_rejected_key"),
                    );
                }
            }
        });
    })
}

/// The production parts of a configuration: the real Dust client, the stores (Redis when
/// `REDIS_URL` is set, memory otherwise), the configured audit sink, the system clock.
pub fn default_parts(config: &Config) -> anyhow::Result<Parts> {
    let dust: Arc<dyn DustApi> = Arc::new(app::dust_client(config)?);
    Ok(Parts {
        dust,
        stores: Stores::from_config(config)?,
        auditor: app::auditor(config, AuditSink::Stdout)?,
        clock: Arc::new(SystemClock),
    })
}

/// `mcp-dust-server serve`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    check_config(&config)?;
    let addr = app::listen_addr(&config)?;
    check_redis_tls(&config).await?;
    let parts = default_parts(&config)?;
    let state = build_state(config, parts)?;
    report_store(&state).await;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(
        listen = %addr,
        mcp = %state.mcp_url(),
        dust = %state.config.dust_base_url,
        "mcp-dust-server listening"
    );
    crate::http::serve(listener, state.clone(), crate::shutdown_signal()).await?;
    app::finish(&state.ops, state.auditor.clone()).await;
    Ok(())
}

/// Refuses to start when a `rediss://` Redis's certificate is not trusted (wrong or missing
/// `REDIS_TLS_CA_FILE`): the mistake is told once, at start, instead of as a 503 on every
/// request. An unreachable Redis does not stop the start (see [`report_store`]).
async fn check_redis_tls(config: &Config) -> anyhow::Result<()> {
    if let Some(store) = RedisStore::from_config(config).context("cannot use REDIS_URL")? {
        store
            .check_tls()
            .await
            .context("cannot connect to Redis over TLS")?;
    }
    Ok(())
}

/// Logs which state store the server runs with, and whether it answers now. An unreachable
/// Redis does not stop the start: requests that need it get 503 and `/ready` reports it until
/// it answers.
pub async fn report_store(state: &AppState) {
    match state.check_stores().await {
        Ok(()) => tracing::info!(store = state.store_backend, "state store ready"),
        Err(e) => tracing::error!(
            store = state.store_backend,
            error = %e,
            "state store unavailable: requests that need it answer 503 until it is back"
        ),
    }
}

/// A test or demo helper: the HTTP client of `base_url`.
pub fn dust_for(base_url: &str) -> anyhow::Result<Arc<dyn DustApi>> {
    Ok(Arc::new(
        HttpDustClient::with_base_url(base_url).context("bad Dust base URL")?,
    ))
}
