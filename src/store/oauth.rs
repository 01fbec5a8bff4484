//! The OAuth authorization server's state (`http::oauth`): clients, pending consents, spent
//! `state` values, authorization codes and refresh-token families, behind [`OAuthStore`] with a
//! memory backend here and a Redis one in `store::redis::oauth`.
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

use std::{collections::HashMap, fmt, sync::Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::StoreError;

/// Most records of each kind the memory store holds; past it, expired ones are purged and, if
/// none is, new ones are refused (503) while existing ones keep working.
pub const MAX_MEMORY_RECORDS: usize = 100_000;

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
    /// `KeyCipher::seal(key, family_id)`, base64url.
    pub sealed_key: String,
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
            .field("sealed_key", &"[sealed]")
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
    /// Stores (or replaces) a client.
    async fn put_client(&self, client: &OAuthClient, now_ms: i64) -> Result<(), StoreError>;

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
}

#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    expires_at_ms: i64,
}

/// A map whose entries end, bounded by [`MAX_MEMORY_RECORDS`].
#[derive(Debug)]
struct Expiring<T>(HashMap<String, Entry<T>>);

impl<T: Clone> Expiring<T> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    fn get(&self, key: &str, now_ms: i64) -> Option<&T> {
        self.0
            .get(key)
            .filter(|e| e.expires_at_ms > now_ms)
            .map(|e| &e.value)
    }

    fn get_mut(&mut self, key: &str, now_ms: i64) -> Option<&mut T> {
        self.0
            .get_mut(key)
            .filter(|e| e.expires_at_ms > now_ms)
            .map(|e| &mut e.value)
    }

    fn insert(
        &mut self,
        key: &str,
        value: T,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if self.0.len() >= MAX_MEMORY_RECORDS && !self.0.contains_key(key) {
            self.0.retain(|_, e| e.expires_at_ms > now_ms);
            if self.0.len() >= MAX_MEMORY_RECORDS {
                return Err(StoreError("oauth store full".into()));
            }
        }
        self.0.insert(
            key.to_owned(),
            Entry {
                value,
                expires_at_ms,
            },
        );
        Ok(())
    }

    fn remove(&mut self, key: &str, now_ms: i64) -> Option<T> {
        self.0
            .remove(key)
            .filter(|e| e.expires_at_ms > now_ms)
            .map(|e| e.value)
    }
}

#[derive(Debug, Clone, Default)]
struct Family {
    revoked: bool,
    tokens: Vec<String>,
}

#[derive(Debug)]
struct Maps {
    clients: Expiring<OAuthClient>,
    pending: Expiring<PendingAuthorization>,
    states: Expiring<()>,
    codes: Expiring<(CodeRecord, Option<Issued>)>,
    refresh: Expiring<(RefreshRecord, bool)>,
    families: Expiring<Family>,
}

/// The OAuth records of one process (they die with it: a restart ends every grant).
#[derive(Debug)]
pub struct MemoryOAuthStore(Mutex<Maps>);

impl Default for MemoryOAuthStore {
    fn default() -> Self {
        Self(Mutex::new(Maps {
            clients: Expiring::new(),
            pending: Expiring::new(),
            states: Expiring::new(),
            codes: Expiring::new(),
            refresh: Expiring::new(),
            families: Expiring::new(),
        }))
    }
}

impl MemoryOAuthStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn maps(&self) -> Result<std::sync::MutexGuard<'_, Maps>, StoreError> {
        self.0
            .lock()
            .map_err(|_| StoreError("oauth store lock poisoned".into()))
    }
}

fn state_key(client_id: &str, state: &str) -> String {
    format!("{}:{}", secret_hash(client_id), secret_hash(state))
}

#[async_trait]
impl OAuthStore for MemoryOAuthStore {
    async fn put_client(&self, client: &OAuthClient, now_ms: i64) -> Result<(), StoreError> {
        self.maps()?.clients.insert(
            &client.client_id,
            client.clone(),
            client.expires_at_ms,
            now_ms,
        )
    }

    async fn get_client(
        &self,
        client_id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthClient>, StoreError> {
        Ok(self.maps()?.clients.get(client_id, now_ms).cloned())
    }

    async fn put_pending(
        &self,
        id_hash: &str,
        pending: &PendingAuthorization,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.maps()?
            .pending
            .insert(id_hash, pending.clone(), pending.expires_at_ms, now_ms)
    }

    async fn take_pending(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        Ok(self.maps()?.pending.remove(id_hash, now_ms))
    }

    async fn claim_state(
        &self,
        client_id: &str,
        state: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = state_key(client_id, state);
        let mut maps = self.maps()?;
        if maps.states.get(&key, now_ms).is_some() {
            return Ok(false);
        }
        maps.states.insert(&key, (), until_ms, now_ms)?;
        Ok(true)
    }

    async fn state_claimed(
        &self,
        client_id: &str,
        state: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self
            .maps()?
            .states
            .get(&state_key(client_id, state), now_ms)
            .is_some())
    }

    async fn put_code(
        &self,
        code_hash: &str,
        code: &CodeRecord,
        keep_until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.maps()?
            .codes
            .insert(code_hash, (code.clone(), None), keep_until_ms, now_ms)
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        issued: &Issued,
        now_ms: i64,
    ) -> Result<Redeemed, StoreError> {
        let mut maps = self.maps()?;
        let Some((record, spent)) = maps.codes.get_mut(code_hash, now_ms) else {
            return Ok(Redeemed::Unknown);
        };
        Ok(match spent {
            Some(first) => Redeemed::Replayed(record.clone(), first.clone()),
            None => {
                *spent = Some(issued.clone());
                Redeemed::Fresh(record.clone())
            }
        })
    }

    async fn put_refresh(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        if maps
            .families
            .get(&record.grant.family_id, now_ms)
            .is_some_and(|f| f.revoked)
        {
            return Err(StoreError("refresh family revoked".into()));
        }
        maps.refresh.insert(
            token_hash,
            (record.clone(), false),
            record.expires_at_ms,
            now_ms,
        )
    }

    async fn get_refresh(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        Ok(self
            .maps()?
            .refresh
            .get(token_hash, now_ms)
            .map(|(r, _)| r.clone()))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new: &RefreshRecord,
        now_ms: i64,
    ) -> Result<Rotated, StoreError> {
        let mut maps = self.maps()?;
        let Some((old, spent)) = maps.refresh.get(old_hash, now_ms).cloned() else {
            return Ok(Rotated::Unknown);
        };
        let revoked = maps
            .families
            .get(&old.grant.family_id, now_ms)
            .is_some_and(|f| f.revoked);
        if spent || revoked {
            return Ok(Rotated::Reused(old));
        }
        maps.refresh
            .insert(new_hash, (new.clone(), false), new.expires_at_ms, now_ms)?;
        if let Some((_, spent)) = maps.refresh.get_mut(old_hash, now_ms) {
            *spent = true;
        }
        Ok(Rotated::Rotated(old))
    }

    async fn add_family_token(
        &self,
        family_id: &str,
        token_id: &str,
        until_ms: i64,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        let mut family = maps
            .families
            .0
            .get(family_id)
            .map(|e| e.value.clone())
            .unwrap_or_default();
        family.tokens.push(token_id.to_owned());
        let until = maps
            .families
            .0
            .get(family_id)
            .map_or(until_ms, |e| e.expires_at_ms.max(until_ms));
        maps.families.insert(family_id, family, until, i64::MIN)
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut maps = self.maps()?;
        let mut family = maps
            .families
            .get(family_id, now_ms)
            .cloned()
            .unwrap_or_default();
        family.revoked = true;
        let tokens = family.tokens.clone();
        let until = maps
            .families
            .0
            .get(family_id)
            .map_or(until_ms, |e| e.expires_at_ms.max(until_ms));
        maps.families.insert(family_id, family, until, now_ms)?;
        Ok(tokens)
    }

    async fn family_revoked(&self, family_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self
            .maps()?
            .families
            .get(family_id, now_ms)
            .is_some_and(|f| f.revoked))
    }
}

/// The contract every [`OAuthStore`] passes (memory here, Redis in `tests/all/shared_state.rs`).
/// With the `test-support` feature the Redis backend's integration tests run it too; never in
/// a release build.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use super::{
        CodeRecord, Grant, Issued, OAuthClient, OAuthStore, PendingAuthorization, Redeemed,
        RefreshRecord, Rotated, secret_hash,
    };

    fn fresh(name: &str) -> String {
        format!("contract-{name}-{}", uuid::Uuid::new_v4().simple())
    }

    fn grant(family_id: &str) -> Grant {
        Grant {
            family_id: family_id.to_owned(),
            client_id: fresh("client"),
            user_id: fresh("usr"),
            username: "ada".into(),
            email: None,
            workspace_id: "ws1".into(),
            permissions: vec!["read:agents".into()],
            resource: "http://mcp.test/mcp".into(),
            sealed_key: "c2VhbGVk".into(),
        }
    }

    /// Runs the whole contract; panics on the first violation. Uses fresh random keys, so it
    /// can run against a store holding other data.
    ///
    /// # Panics
    /// On any departure from the contract.
    pub async fn oauth_store_contract(store: &dyn OAuthStore) {
        let now = 1_700_000_000_000_i64;

        // Clients: round trip, expiry, replacement.
        let client = OAuthClient {
            client_id: fresh("client"),
            client_name: Some("Claude".into()),
            redirect_uris: vec!["https://claude.ai/api/mcp/auth_callback".into()],
            metadata_document: false,
            created_at_ms: now,
            expires_at_ms: now + 60_000,
        };
        store.put_client(&client, now).await.unwrap();
        assert_eq!(
            store.get_client(&client.client_id, now).await.unwrap(),
            Some(client.clone())
        );
        assert_eq!(
            store
                .get_client(&client.client_id, now + 60_000)
                .await
                .unwrap(),
            None,
            "an expired client is gone"
        );
        assert_eq!(store.get_client(&fresh("nobody"), now).await.unwrap(), None);

        // Pending consents: handed out once, not after expiry.
        let pending = PendingAuthorization {
            client_id: client.client_id.clone(),
            redirect_uri: client.redirect_uris[0].clone(),
            state: Some("st".into()),
            code_challenge: "challenge".into(),
            scopes: vec!["read:agents".into()],
            resource: "http://mcp.test/mcp".into(),
            cookie_hash: secret_hash("cookie"),
            expires_at_ms: now + 600_000,
        };
        let (p1, p2) = (secret_hash(&fresh("p1")), secret_hash(&fresh("p2")));
        store.put_pending(&p1, &pending, now).await.unwrap();
        store.put_pending(&p2, &pending, now).await.unwrap();
        assert_eq!(
            store.take_pending(&p1, now).await.unwrap(),
            Some(pending.clone())
        );
        assert_eq!(store.take_pending(&p1, now).await.unwrap(), None, "once");
        assert_eq!(store.take_pending(&p2, now + 600_000).await.unwrap(), None);

        // States: claimed once per client.
        let state = fresh("state");
        assert!(
            !store
                .state_claimed(&client.client_id, &state, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .claim_state(&client.client_id, &state, now + 600_000, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .claim_state(&client.client_id, &state, now + 600_000, now)
                .await
                .unwrap()
        );
        assert!(
            store
                .state_claimed(&client.client_id, &state, now)
                .await
                .unwrap()
        );
        assert!(
            !store
                .state_claimed(&fresh("other"), &state, now)
                .await
                .unwrap(),
            "per client"
        );

        // Codes: fresh once, then a replay that names what the first use issued.
        let family = fresh("fam");
        let code = CodeRecord {
            grant: grant(&family),
            redirect_uri: "http://127.0.0.1:9/cb".into(),
            code_challenge: "challenge".into(),
            expires_at_ms: now + 60_000,
        };
        let code_hash = secret_hash(&fresh("code"));
        store
            .put_code(&code_hash, &code, now + 600_000, now)
            .await
            .unwrap();
        let first = Issued {
            token_id: "tok_first".into(),
        };
        let second = Issued {
            token_id: "tok_second".into(),
        };
        assert_eq!(
            store.redeem_code(&code_hash, &first, now).await.unwrap(),
            Redeemed::Fresh(code.clone())
        );
        assert_eq!(
            store.redeem_code(&code_hash, &second, now).await.unwrap(),
            Redeemed::Replayed(code.clone(), first.clone())
        );
        assert_eq!(
            store
                .redeem_code(&secret_hash("nope"), &first, now)
                .await
                .unwrap(),
            Redeemed::Unknown
        );

        // Refresh tokens: rotate once; the spent one is a reuse; revoking the family stops
        // the rotated-to one too and returns the family's access tokens.
        let r1 = RefreshRecord {
            grant: grant(&family),
            expires_at_ms: now + 3_600_000,
        };
        let (h1, h2, h3) = (
            secret_hash(&fresh("r1")),
            secret_hash(&fresh("r2")),
            secret_hash(&fresh("r3")),
        );
        store.put_refresh(&h1, &r1, now).await.unwrap();
        assert_eq!(store.get_refresh(&h1, now).await.unwrap(), Some(r1.clone()));
        assert_eq!(
            store.rotate_refresh(&h1, &h2, &r1, now).await.unwrap(),
            Rotated::Rotated(r1.clone())
        );
        assert_eq!(
            store.rotate_refresh(&h1, &h3, &r1, now).await.unwrap(),
            Rotated::Reused(r1.clone())
        );
        assert_eq!(
            store.get_refresh(&h3, now).await.unwrap(),
            None,
            "nothing stored"
        );
        assert_eq!(
            store
                .rotate_refresh(&secret_hash("nope"), &h3, &r1, now)
                .await
                .unwrap(),
            Rotated::Unknown
        );
        assert_eq!(
            store.get_refresh(&h1, now + 3_600_000).await.unwrap(),
            None,
            "expired"
        );
        store
            .add_family_token(&family, "tok_a", now + 3_600_000, now)
            .await
            .unwrap();
        store
            .add_family_token(&family, "tok_b", now + 3_600_000, now)
            .await
            .unwrap();
        assert!(!store.family_revoked(&family, now).await.unwrap());
        let mut revoked = store
            .revoke_family(&family, now + 3_600_000, now)
            .await
            .unwrap();
        revoked.sort();
        assert_eq!(revoked, ["tok_a", "tok_b"]);
        assert!(store.family_revoked(&family, now).await.unwrap());
        assert_eq!(
            store.rotate_refresh(&h2, &h3, &r1, now).await.unwrap(),
            Rotated::Reused(r1.clone()),
            "the rotated-to token dies with its family"
        );
        assert!(
            store.put_refresh(&h3, &r1, now).await.is_err(),
            "no new token in a revoked family"
        );
        let other = fresh("fam");
        assert!(!store.family_revoked(&other, now).await.unwrap());
        assert!(
            store
                .revoke_family(&other, now + 1_000, now)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        testing::oauth_store_contract(&MemoryOAuthStore::new()).await;
    }

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
            sealed_key: "CANARYSEALED".into(),
        };
        assert!(!format!("{grant:?}").contains("CANARYSEALED"));
    }
}
