//! The OAuth authorization server's state (`http::oauth`): clients, pending consents, spent
//! `state` values, authorization codes and refresh-token families, behind [`OAuthStore`] with a
//! memory backend in [`memory`] and a Redis one in `store::redis::oauth`; both pass
//! [`contract`].
//!
//! Nothing secret is stored in clear. Codes, refresh tokens and consent ids are stored under
//! the SHA-256 of their value (the caller hashes: [`secret_hash`]); the Dust key travels inside
//! a [`Grant`] only as AEAD ciphertext bound to the grant's family id. Every record carries its
//! own end (`expires_at_ms`), judged with the caller's clock so tests cross it without
//! sleeping; a backend may forget a record after it (Redis sets the key's TTL).
//!
//! The single-use rules are the store's, atomically, because two instances may race:
//! [`OAuthStore::take_pending`] hands a consent out once, [`OAuthStore::claim_state`] accepts a
//! `state` once per client, [`OAuthStore::redeem_code`] marks a code spent and remembers what it
//! issued (a replay revokes that), and [`OAuthStore::rotate_refresh`] spends a refresh token
//! once, telling a reuse (the whole family is then revoked) from an unknown token.
//!
//! Clients are bounded because anyone may register one (RFC 7591 registration is open): a
//! client not yet [used](OAuthStore::mark_client_used) (registered, or a metadata document
//! cached, but no authorization completed) is *unused*, and a backend holds at most a fixed
//! number of unused clients ([`MAX_UNUSED_CLIENTS`] unless built with another): storing one
//! more evicts the oldest unused client (by `created_at_ms`) rather than refusing everyone.
//! Used clients are never evicted: making one takes a person's consent with a working Dust
//! key. The caller gives an unused client a short life and a used one its long life.

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use memory::{MAX_MEMORY_RECORDS, MemoryOAuthStore};

/// Most unused clients a store holds (its default): one more evicts the oldest unused one.
/// Registration is open, so this bounds what strangers can make the store keep; used clients
/// are not counted.
pub const MAX_UNUSED_CLIENTS: usize = 10_000;

use super::StoreError;

/// The store key of a code, refresh token or consent id: hex SHA-256 (the value never reaches
/// the store; a 256-bit random value needs no slow hash).
#[must_use]
pub fn secret_hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A client allowed to ask for authorization: registered (RFC 7591) or described by a client
/// ID metadata document fetched from its `client_id` URL (cached until `expires_at_ms`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthClient {
    pub client_id: String,
    pub client_name: Option<String>,
    /// Exact redirect URIs; an authorization request must name one of them verbatim.
    pub redirect_uris: Vec<String>,
    /// `true` for a client ID metadata document, `false` for a registered client.
    pub metadata_document: bool,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Whether an authorization was completed for it ([`OAuthStore::mark_client_used`]).
    /// Unused clients are counted against the store's cap and evicted oldest first.
    #[serde(default)]
    pub used: bool,
}

/// What a person approved (or will approve) and for whom: the principal, the permissions, and
/// the Dust key sealed for `family_id`. Carried by a code, then by each refresh token of the
/// family.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The refresh-token family (and the associated data of `sealed_key`).
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub username: String,
    pub email: Option<String>,
    pub workspace_id: String,
    /// Permission names (the scopes granted).
    pub permissions: Vec<String>,
    /// The canonical `/mcp` URI the tokens are for.
    pub resource: String,
    /// `KeyCipher::seal(key, family_id)`.
    pub sealed_key: crate::crypto::SealedKey,
    /// When the person consented (epoch milliseconds). `None` in grants stored before it
    /// existed.
    #[serde(default)]
    pub created_at_ms: Option<i64>,
    /// The end of the grant (epoch milliseconds, `OAUTH_GRANT_MAX_LIFETIME` after the
    /// consent): no refresh token or access token of the grant outlives it. `None` in grants
    /// stored before it existed.
    #[serde(default)]
    pub expires_at_ms: Option<i64>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("family_id", &self.family_id)
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("workspace_id", &self.workspace_id)
            .field("permissions", &self.permissions)
            .field("resource", &self.resource)
            .field("sealed_key", &self.sealed_key)
            .finish_non_exhaustive()
    }
}

/// A validated authorization request waiting for the person's consent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// The PKCE S256 challenge (not secret: it is in the URL).
    pub code_challenge: String,
    /// The permissions offered on the page (requested and grantable).
    pub scopes: Vec<String>,
    pub resource: String,
    /// The hash of the consent cookie's value this consent is bound to.
    pub cookie_hash: String,
    pub expires_at_ms: i64,
}

/// An authorization code's record (stored under its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: String,
    /// Until when the code may be exchanged.
    pub expires_at_ms: i64,
}

/// What a code's first redemption issued: a replay revokes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub token_id: String,
}

/// The outcome of [`OAuthStore::redeem_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// First use: the caller issues what it announced.
    Fresh(CodeRecord),
    /// Spent before: what the first use issued.
    Replayed(CodeRecord, Issued),
    Unknown,
}

/// What a person sees of one of their OAuth grants (`GET /api/v1/auth/grants`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantSummary {
    /// The grant (its refresh-token family id).
    pub grant_id: String,
    pub client_id: String,
    /// The client's registered name, when it gave one.
    pub client_name: Option<String>,
    /// The permissions granted (scopes).
    pub permissions: Vec<String>,
    /// When the person consented (epoch milliseconds).
    pub created_at_ms: i64,
    /// When the client last used the grant: its last token (epoch milliseconds).
    pub last_used_ms: i64,
    /// When the grant ends unless used again: its current refresh token's expiry, never past
    /// the grant's maximum lifetime (epoch milliseconds).
    pub expires_at_ms: i64,
}

/// Most grants listed per person: past it the least recently used leave the list (they stay
/// valid until they expire, and revoking the person's tokens still reaches them).
pub const MAX_GRANTS_LISTED: usize = 50;

/// A refresh token's record (stored under its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub grant: Grant,
    pub expires_at_ms: i64,
}

/// The outcome of [`OAuthStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// The old token was live and is now spent; the new one is stored.
    Rotated(RefreshRecord),
    /// The old token was spent before (or its family revoked): nothing stored.
    Reused(RefreshRecord),
    Unknown,
}

/// The OAuth authorization server's records.
#[async_trait]
pub trait OAuthStore: Send + Sync + 'static {
    /// Stores (or replaces) a client. An unused one (`!client.used`) counts against the cap
    /// of unused clients: at the cap, the oldest unused client is evicted to make room.
    async fn put_client(&self, client: &OAuthClient, now_ms: i64) -> Result<(), StoreError>;

    /// Marks the client used (an authorization was completed) and gives it `expires_at_ms`:
    /// it no longer counts against the cap of unused clients and is never evicted. `false`
    /// if there is no such client (expired or evicted): nothing is stored then.
    async fn mark_client_used(
        &self,
        client_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// The client `client_id`, unless it has expired at `now_ms`.
    async fn get_client(
        &self,
        client_id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthClient>, StoreError>;

    /// Stores a pending consent under `id_hash`.
    async fn put_pending(
        &self,
        id_hash: &str,
        pending: &PendingAuthorization,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Removes and returns the pending consent under `id_hash`, unless expired: once only.
    async fn take_pending(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<PendingAuthorization>, StoreError>;

    /// Records `state` as spent for `client_id` until `until_ms`. `false` if it already was.
    async fn claim_state(
        &self,
        client_id: &str,
        state: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Whether `state` is spent for `client_id`.
    async fn state_claimed(
        &self,
        client_id: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Stores a code under `code_hash`, kept (spent or not) until `keep_until_ms`.
    async fn put_code(
        &self,
        code_hash: &str,
        code: &CodeRecord,
        keep_until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Spends the code (whatever its expiry: the caller judges it), recording `issued`.
    async fn redeem_code(
        &self,
        code_hash: &str,
        issued: &Issued,
        now_ms: i64,
    ) -> Result<Redeemed, StoreError>;

    /// Stores a new refresh token of a family that is not revoked.
    async fn put_refresh(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The refresh token's record, unless expired (spent or not).
    async fn get_refresh(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<RefreshRecord>, StoreError>;

    /// Spends `old_hash` and stores `new` under `new_hash`, atomically; a spent token or a
    /// revoked family stores nothing.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new: &RefreshRecord,
        now_ms: i64,
    ) -> Result<Rotated, StoreError>;

    /// Records an access token issued to the family (kept until `until_ms`).
    async fn add_family_token(
        &self,
        family_id: &str,
        token_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// Revokes the family: its refresh tokens stop working. Returns the access token ids it
    /// was issued, for the caller to revoke.
    async fn revoke_family(
        &self,
        family_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError>;

    /// Whether the family was revoked.
    async fn family_revoked(&self, family_id: &str, now_ms: i64) -> Result<bool, StoreError>;

    /// Records that `user_id`'s grant was used at `now_ms` (a token was issued from it):
    /// replaces the summary of the same grant, and keeps the [`MAX_GRANTS_LISTED`] most recently
    /// used of the person's grants.
    async fn touch_grant(
        &self,
        workspace_id: &str,
        user_id: &str,
        summary: &GrantSummary,
        now_ms: i64,
    ) -> Result<(), StoreError>;

    /// The grants of `user_id` in `workspace_id` neither expired nor revoked at `now_ms`, most
    /// recently used first.
    async fn list_grants(
        &self,
        workspace_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Vec<GrantSummary>, StoreError>;
}

/// `summaries` as a person's list: live at `now_ms`, newest use first, at most
/// [`MAX_GRANTS_LISTED`].
pub(crate) fn trim_grants(summaries: &mut Vec<GrantSummary>, now_ms: i64) {
    summaries.retain(|g| g.expires_at_ms > now_ms);
    summaries.sort_by(|a, b| {
        b.last_used_ms
            .cmp(&a.last_used_ms)
            .then_with(|| a.grant_id.cmp(&b.grant_id))
    });
    summaries.truncate(MAX_GRANTS_LISTED);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_never_prints_its_sealed_key() {
        let grant = Grant {
            family_id: "fam".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            username: "n".into(),
            email: None,
            workspace_id: "w".into(),
            permissions: vec![],
            resource: "r".into(),
            sealed_key: crate::crypto::SealedKey::from_bytes(b"CANARYSEALED".to_vec()),
            created_at_ms: None,
            expires_at_ms: None,
        };
        let shown = format!("{grant:?}");
        assert!(
            !shown.contains("CANARYSEALED") && !shown.contains("Q0FOQVJZ"),
            "{shown}"
        );
    }
}
