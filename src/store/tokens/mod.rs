//! Server-side records of issued tokens: what a JWT's `jti` stands for. Issuing them, sealing
//! the Dust key they hold and capping them per user are `auth::tokens`' business; this module
//! stores them.
//!
//! A token's record holds what the JWT must not: the caller's Dust key (sealed with the at-rest
//! key by `auth::tokens::KeyCipher`), the asserted email, and the revocation mark. Revocation is
//! keyed by `jti`, never by the token string, so a re-encoded copy of a revoked token is still
//! revoked (catalogue J10). The key is never stored in plaintext (K11): the record holds AEAD
//! ciphertext whose associated data is the token id, so a sealed key copied into another record
//! does not open.
//!
//! Expiry is judged by the caller's clock: every method that reads or writes by expiry takes
//! `now` (epoch seconds), as every other store trait does, rather than a clock handed to the
//! backend at construction. A backend then holds no time source of its own, so one can never
//! disagree with the application's (a test's manual clock included), and the trait says at each
//! call which instant decides. The cost is one argument per method. A backend may still forget
//! a record once it has expired (the memory store sweeps, Redis sets the key's TTL).
//!
//! Backends: [`memory`] and `store::redis::tokens`; both pass [`contract`].

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::{MAX_TOKEN_RECORDS, MemoryTokenStore};

use super::StoreError;
use crate::{crypto::SealedKey, permissions::PermissionSet};

/// What the server knows about one issued token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub token_id: String,
    /// The key fingerprint (`usr_…`).
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub workspace_id: String,
    #[serde(with = "permission_names")]
    pub permissions: PermissionSet,
    /// The Dust key, sealed by `auth::tokens::KeyCipher::seal` for this `token_id`; base64url
    /// in JSON.
    pub sealed_key: SealedKey,
    /// Seconds since the epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// How the token came to be. Records written before it existed read as logins.
    #[serde(default)]
    pub origin: TokenOrigin,
    /// The end of the chain the token belongs to (epoch seconds): a refresh never issues a
    /// token past it (`TOKEN_MAX_LIFETIME` from the login, `OAUTH_GRANT_MAX_LIFETIME` from the
    /// consent, the session's absolute deadline). `None` in records written before it existed:
    /// their own expiry is the end.
    #[serde(default)]
    pub chain_expires_at: Option<i64>,
}

/// How a token came to be, which decides how it may be renewed and what revoking it ends.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenOrigin {
    /// `POST /api/v1/auth/login`, or a refresh of such a token: renewed at
    /// `/api/v1/auth/refresh`, up to `TOKEN_MAX_LIFETIME` after the login.
    #[default]
    Login,
    /// The token linked to a browser session: renewed with the session.
    Session,
    /// An access token of an OAuth grant: renewed only at `/oauth/token` with the grant's
    /// refresh token; revoking it revokes the grant.
    #[serde(rename = "oauth")]
    OAuth {
        /// The grant (its refresh-token family id).
        grant_id: String,
        client_id: String,
    },
}

impl TokenOrigin {
    /// `login`, `session` or `oauth`, for listings, audit records and metrics.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Session => "session",
            Self::OAuth { .. } => "oauth",
        }
    }
}

impl TokenRecord {
    /// The end of the token's chain: no renewal goes past it.
    #[must_use]
    pub fn chain_end(&self) -> i64 {
        self.chain_expires_at.unwrap_or(self.expires_at)
    }

    /// Neither expired nor revoked at `now` (epoch seconds).
    #[must_use]
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

impl fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRecord")
            .field("token_id", &self.token_id)
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("workspace_id", &self.workspace_id)
            .field("permissions", &self.permissions)
            .field("sealed_key", &self.sealed_key)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("origin", &self.origin)
            .field("chain_expires_at", &self.chain_expires_at)
            .finish()
    }
}

/// Token records. Expired records are never returned; revoked ones are, until they expire, so
/// that reuse of a revoked token can be told apart from an unknown one (audit
/// `authn_token_reuse`, J9).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores `record`, replacing any record with the same `token_id`; a revocation is final:
    /// saving a record again never clears it. A record already expired at `now` is not stored.
    async fn save(&self, record: TokenRecord, now: i64) -> Result<(), StoreError>;

    /// The record of `token_id`, revoked or not, unless it has expired at `now`. Shared, not
    /// copied: every authenticated request reads one.
    async fn get(&self, token_id: &str, now: i64) -> Result<Option<Arc<TokenRecord>>, StoreError>;

    /// Marks `token_id` revoked at `now` (epoch seconds). `false` if there is no such unexpired
    /// record; revoking twice keeps the first time and answers `true`.
    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError>;

    /// The records of `user_id` in `workspace_id` unexpired at `now`, revoked ones included,
    /// newest first.
    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<TokenRecord>, StoreError>;

    /// How many of them are live (not revoked).
    async fn count_live_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<usize, StoreError>;

    /// How many records this process holds, for the `store_entries` gauge; `None` when the
    /// records live elsewhere (Redis expires each with its token).
    fn held(&self) -> Option<usize> {
        None
    }
}

/// `PermissionSet` as its list of names; an unknown name fails the read.
mod permission_names {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::permissions::PermissionSet;

    pub(super) fn serialize<S: Serializer>(set: &PermissionSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.names())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PermissionSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        PermissionSet::parse_list(&names.join(",")).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{TokenRecord, contract::record};

    #[test]
    fn records_with_unknown_permissions_do_not_load() {
        let record = record("w1", "usr_1", 0, 3600);
        let json = serde_json::to_string(&record)
            .unwrap()
            .replace("read:agents", "admin:everything");
        assert!(serde_json::from_str::<TokenRecord>(&json).is_err());
    }
}
