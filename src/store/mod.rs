//! Server-side state behind small async traits, so one instance keeps it in memory and a
//! cluster shares it in Redis ([`redis`]) without the callers changing. [`Stores`] is the set a
//! server runs with, chosen at start-up: Redis when `REDIS_URL` is set, memory otherwise.
//!
//! One layout per noun: `store/<noun>/mod.rs` holds the trait and its records,
//! `store/<noun>/memory.rs` the memory backend, `store/redis/<noun>.rs` the Redis one, and
//! `store/<noun>/contract.rs` the contract suite both pass. The nouns: [`conversations`]
//! (ownership), [`counters`] (rate limits), [`failures`] (failed logins), [`sessions`]
//! (browser sessions), [`oauth`] (the authorization server's records), [`tokens`] (what a
//! JWT's `jti` stands for). This module depends on no other part of the server's logic: `auth`
//! uses the stores, never the other way round (the permission names a token record carries are
//! the leaf module [`crate::permissions`]).
//!
//! No store reads a clock. Every expiry is decided at the `now` the caller passes, taken from
//! the application's clock (`state::Clock`, a manual one in tests), rather than from a clock
//! given to each backend at construction: the traits keep one shape (a time argument where a
//! time decides, as `incr_with_ttl`, `insert` and `add_failure` always had), a backend has no
//! clock that could disagree with the application's, and the contract suites cross every
//! deadline without sleeping.
//!
//! Each suite is a set of small async functions, one case each, taking `&dyn Trait`; a macro
//! per noun stamps one `#[tokio::test]` per case for a backend (tower-sessions' pattern),
//! through [`store_contract_tests!`](crate::store_contract_tests). The memory backends stamp
//! them as unit tests, `tests/all/shared_state.rs` stamps them for Redis:
//! [`conversations::contract`]
//! ([`conversation_store_contract_tests!`](crate::conversation_store_contract_tests)),
//! [`counters::contract`] ([`counter_store_contract_tests!`](crate::counter_store_contract_tests)),
//! [`failures::contract`] ([`failure_store_contract_tests!`](crate::failure_store_contract_tests)),
//! [`sessions::contract`] ([`session_store_contract_tests!`](crate::session_store_contract_tests)),
//! [`oauth::contract`] ([`oauth_store_contract_tests!`](crate::oauth_store_contract_tests)),
//! [`tokens::contract`] ([`token_store_contract_tests!`](crate::token_store_contract_tests)).
//! The suites (and macros) exist with `cfg(test)` or the `test-support` feature only.

pub mod conversations;
pub mod counters;
pub mod failures;
pub mod oauth;
pub mod redis;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

use anyhow::Context;

pub use conversations::{
    ConversationLimits, ConversationRecord, ConversationStore, MemoryConversationStore,
};
pub use counters::{CounterStore, MemoryCounterStore, WindowCount};
pub use failures::{FailureStore, MemoryFailureStore};
pub use oauth::{MemoryOAuthStore, OAuthStore};
pub use redis::RedisStore;
pub use sessions::{MemorySessionStore, SessionKey, SessionRecord, SessionStore};
pub use tokens::{MAX_TOKEN_RECORDS, MemoryTokenStore, TokenOrigin, TokenRecord, TokenStore};

use crate::config::Config;

/// The state stores of one server.
#[derive(Clone)]
pub struct Stores {
    /// Token records and revocations.
    pub tokens: Arc<dyn TokenStore>,
    /// Rate-limit counters.
    pub counters: Arc<dyn CounterStore>,
    /// Conversation ownership.
    pub conversations: Arc<dyn ConversationStore>,
    /// Failed-login counters (lockout).
    pub failures: Arc<dyn FailureStore>,
    /// Browser sessions (`mcp.sid`).
    pub sessions: Arc<dyn SessionStore>,
    /// The OAuth authorization server's clients, consents, codes and refresh tokens.
    pub oauth: Arc<dyn OAuthStore>,
    /// `"memory"` or `"redis"`, for `/ready` and the logs.
    pub backend: &'static str,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Stores {
    /// Everything in this process (one instance; lost on restart), with the default bounds.
    pub fn memory() -> Self {
        Self::memory_with(&crate::config::MemoryLimits::default())
    }

    /// Everything in this process, each store bounded by `limits`.
    pub fn memory_with(limits: &crate::config::MemoryLimits) -> Self {
        Self {
            tokens: Arc::new(MemoryTokenStore::with_capacity(limits.tokens)),
            counters: Arc::new(MemoryCounterStore::new()),
            conversations: Arc::new(MemoryConversationStore::with_limits(limits.conversations)),
            failures: Arc::new(MemoryFailureStore::new()),
            sessions: Arc::new(MemorySessionStore::with_capacity(limits.sessions)),
            oauth: Arc::new(MemoryOAuthStore::new()),
            backend: "memory",
        }
    }

    /// Everything in one Redis.
    pub fn redis(store: RedisStore) -> Self {
        let store = Arc::new(store);
        Self {
            tokens: store.clone(),
            counters: store.clone(),
            conversations: store.clone(),
            failures: store.clone(),
            oauth: store.clone(),
            sessions: store,
            backend: "redis",
        }
    }

    /// Redis when `REDIS_URL` is set, memory otherwise. Redis is reached lazily: a server whose
    /// Redis is down starts, answers 503 (and `/ready` 503) and recovers when Redis is back.
    ///
    /// # Errors
    /// An unusable `REDIS_URL` (the message never contains it).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        match RedisStore::from_config(config).context("cannot use REDIS_URL")? {
            Some(store) => Ok(Self::redis(store)),
            None => Ok(Self::memory_with(&config.memory_limits)),
        }
    }
}

/// A failure of the backing store. Callers fail closed: a request that needs the store is
/// refused rather than served on a guess.
///
/// Its message is written by this crate and names no value, but it is logged in many places
/// (`error = %e`), so its `Display` masks it once more ([`crate::mask::mask_text`]): a message
/// that one day quotes a key, token or URL with credentials still leaks nothing.
#[derive(thiserror::Error)]
#[error("state store unavailable: {}", crate::mask::mask_text(.0))]
pub struct StoreError(pub String);

impl std::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreError")
            .field(&crate::mask::mask_text(&self.0))
            .finish()
    }
}

/// Stamps one `#[tokio::test]` per case of a contract suite, for one backend (the
/// tower-sessions pattern): each noun's macro
/// ([`counter_store_contract_tests!`](crate::counter_store_contract_tests), ...) names its suite
/// and cases and hands them here.
///
/// The backend is an expression evaluated inside each test, so it may `.await`. Two forms:
/// `MemoryCounterStore::new()` (the store itself), or `{ setup statements } => store` when the
/// store needs something to outlive it: the statements run first and what they bind lives until
/// the case ends (a `redis-server` process, say), and they may `return` to skip the case.
#[cfg(any(test, feature = "test-support"))]
#[macro_export]
macro_rules! store_contract_tests {
    (@case [$($suite:tt)+] $case:ident { $($setup:tt)* } => $store:expr) => {
        #[::tokio::test]
        async fn $case() {
            $($setup)*
            let store = $store;
            $($suite)+::$case(&store).await;
        }
    };
    ($suite:tt [$($case:ident),+ $(,)?] $setup:tt => $store:expr) => {
        $( $crate::store_contract_tests!(@case $suite $case $setup => $store); )+
    };
    ($suite:tt [$($case:ident),+ $(,)?] $store:expr) => {
        $crate::store_contract_tests!($suite [$($case),+] {} => $store);
    };
}

#[cfg(test)]
mod store_error_tests {
    use super::StoreError;

    #[test]
    fn a_store_error_displays_masked() {
        let key = "sk-canary0123456789abcdefghijklmnopqrstuv";
        let error = StoreError(format!(
            "redis: refused redis://:{key}@redis.internal:6379 for Bearer {key}"
        ));
        let shown = error.to_string();
        assert!(!shown.contains("canary0123456789"), "{shown}");
        assert!(
            shown.starts_with("state store unavailable: redis: refused"),
            "{shown}"
        );
        assert!(!format!("{error:?}").contains("canary0123456789"));
    }
}
