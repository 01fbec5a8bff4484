//! Server-side records of issued tokens: what a JWT's `jti` stands for.
//!
//! A token's record holds what the JWT must not: the caller's Dust key (sealed with the at-rest
//! key, [`KeyCipher`]), the asserted email, and the revocation mark. Revocation is keyed by
//! `jti`, never by the token string, so a re-encoded copy of a revoked token is still revoked
//! (catalogue J10). The key is never stored in plaintext (K11): the record holds AEAD ciphertext
//! whose associated data is the token id, so a sealed key copied into another record does not
//! open.
//!
//! The cap on live tokens per user (K13) is enforced by the caller through [`save_capped`], not
//! by the store: it keeps the store contract to plain storage, and the same rule then holds for
//! every backend. Across instances the count-then-revoke is not atomic; the worst case is a brief
//! overshoot of the cap by concurrent logins, never a lost record.

mod cipher;
mod memory;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

use std::{fmt, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use cipher::{KeyCipher, OpenError};
pub use memory::MemoryTokenStore;

use super::permissions::PermissionSet;
use crate::store::StoreError;

/// Most live (unexpired, unrevoked) tokens one user may hold in one workspace. A login past it
/// revokes the user's oldest live tokens ([`save_capped`]), so a client that lost its token is
/// never locked out and the store stays bounded.
pub const MAX_LIVE_TOKENS_PER_USER: usize = 10;

/// Random bytes in a token id: 128 bits from the OS CSPRNG (ASVS 5.0 7.2.3).
pub const TOKEN_ID_BYTES: usize = 16;

/// A new token id: `tok_` and 22 URL-safe characters.
#[must_use]
pub fn new_token_id() -> String {
    format!("tok_{}", crate::crypto::random_token::<TOKEN_ID_BYTES>())
}

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
    /// The Dust key, sealed by [`KeyCipher::seal`] for this `token_id`; base64url in JSON.
    #[serde(with = "base64url")]
    pub sealed_key: Vec<u8>,
    /// Seconds since the epoch.
    pub issued_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

impl TokenRecord {
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
            .field(
                "sealed_key",
                &format_args!("[{} sealed bytes]", self.sealed_key.len()),
            )
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish()
    }
}

/// Token records. Expired records are never returned; revoked ones are, until they expire, so
/// that reuse of a revoked token can be told apart from an unknown one (audit
/// `authn_token_reuse`, J9).
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// Stores `record`, replacing any record with the same `token_id`; a revocation is final:
    /// saving a record again never clears it.
    async fn save(&self, record: TokenRecord) -> Result<(), StoreError>;

    /// The record of `token_id`, revoked or not, unless it has expired. Shared, not copied:
    /// every authenticated request reads one.
    async fn get(&self, token_id: &str) -> Result<Option<Arc<TokenRecord>>, StoreError>;

    /// Marks `token_id` revoked at `now` (epoch seconds). `false` if there is no such unexpired
    /// record; revoking twice keeps the first time and answers `true`.
    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError>;

    /// The unexpired records of `user_id` in `workspace_id`, revoked ones included, newest first.
    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<TokenRecord>, StoreError>;

    /// How many of them are live (not revoked).
    async fn count_live_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<usize, StoreError>;
}

/// Saves `record`, then revokes the user's oldest live tokens beyond `cap` (normally
/// [`MAX_LIVE_TOKENS_PER_USER`]). Returns the ids it revoked, for the audit log.
pub async fn save_capped(
    store: &dyn TokenStore,
    record: TokenRecord,
    cap: usize,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let (workspace_id, user_id, token_id) = (
        record.workspace_id.clone(),
        record.user_id.clone(),
        record.token_id.clone(),
    );
    store.save(record).await?;
    let live: Vec<TokenRecord> = store
        .list_for_user(&workspace_id, &user_id)
        .await?
        .into_iter()
        .filter(|r| r.is_live(now) && r.token_id != token_id)
        .collect();
    let mut revoked = Vec::new();
    // `live` is newest first; the new token counts as one of the `cap`.
    for old in live.iter().skip(cap.saturating_sub(1)) {
        if store.revoke(&old.token_id, now).await? {
            revoked.push(old.token_id.clone());
        }
    }
    Ok(revoked)
}

/// `PermissionSet` as its list of names; an unknown name fails the read.
mod permission_names {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    use crate::auth::PermissionSet;

    pub(super) fn serialize<S: Serializer>(set: &PermissionSet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(set.names())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PermissionSet, D::Error> {
        let names = Vec::<String>::deserialize(d)?;
        PermissionSet::parse_list(&names.join(",")).map_err(D::Error::custom)
    }
}

/// Bytes as unpadded base64url text.
mod base64url {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD.decode(text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests;
