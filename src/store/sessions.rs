//! Browser sessions (`mcp.sid`): [`SessionStore`] and its in-memory backend.
//!
//! A session is stored under a [`SessionKey`], an HMAC of its id with a key derived from the
//! root secret (catalogue S12): whoever reads the store (a Redis dump, a debugger) learns no
//! usable cookie. The id itself never reaches the store, a log or an audit record.
//!
//! The record holds no credential: it links the session to a token record (`token_id`) in the
//! `TokenStore`, which holds the principal and the sealed Dust key. Revoking that token ends
//! the session; ending the session revokes the token.
//!
//! Expiry (idle and absolute) is judged by the caller with the application's clock, so tests
//! cross the deadlines without sleeping and every backend agrees. A backend may forget a record
//! once its `expires_at_ms` has passed (the memory store does when it is full; Redis sets the
//! key's TTL), but it need not. Caps per principal are the caller's rule
//! (`http::session`), the same for every backend; the store-size cap is the backend's, since
//! memory is what it bounds.

use std::{collections::HashMap, fmt, sync::RwLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Most sessions the memory store holds (about 300 bytes each: ~30 MB at the cap). Past it,
/// expired sessions are purged; if none is, new sessions are refused ([`Inserted::Full`]) and
/// existing ones keep working. Evicting the oldest instead would let anyone holding a few valid
/// keys log everyone else out.
pub const MAX_SESSIONS: usize = 100_000;

/// Where a session is stored: the hex HMAC of its id (never the id).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionKey(String);

impl SessionKey {
    /// Wraps a key computed by the caller (`http::session::session_key`), or read back from a
    /// backend.
    #[must_use]
    pub fn from_hmac_hex(hex: String) -> Self {
        Self(hex)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not secret (an HMAC), but there is no reason to print a store key whole.
        write!(f, "SessionKey({}…)", &self.0[..self.0.len().min(8)])
    }
}

/// What the server keeps about one browser session. Times in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The linked token record: the principal, its permissions and sealed Dust key.
    pub token_id: String,
    /// The principal's pseudonymous id and workspace (for the per-principal cap).
    pub user_id: String,
    pub workspace_id: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    /// The end of the session if it is not used again: the earlier of the idle deadline
    /// (`last_seen_ms` + idle timeout) and `absolute_expires_at_ms`.
    pub expires_at_ms: i64,
    /// The end of the session however active it is (absolute lifetime, catalogue S4).
    pub absolute_expires_at_ms: i64,
}

impl SessionRecord {
    /// Whether the session is over at `now_ms`.
    #[must_use]
    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms || now_ms >= self.absolute_expires_at_ms
    }
}

/// The outcome of [`SessionStore::insert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    Stored,
    /// The store is at its size cap: nothing was stored.
    Full,
}

/// Browser sessions by [`SessionKey`].
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. `now_ms` lets a full backend drop expired sessions first.
    async fn insert(
        &self,
        key: &SessionKey,
        record: SessionRecord,
        now_ms: i64,
    ) -> Result<Inserted, StoreError>;

    /// The session under `key`, if the store still has it (expired or not: see the module
    /// documentation).
    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity: sets `last_seen_ms` and `expires_at_ms` of an existing session.
    /// `false`, and nothing stored, when the session is gone: a request racing a logout must
    /// never bring the session back (catalogue S6).
    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Deletes the session; returns what was stored, if anything.
    async fn remove(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError>;

    /// The sessions of `user_id` in `workspace_id`, oldest first (ties by key, so every
    /// caller sees one order).
    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError>;

    /// How many sessions are stored.
    async fn count(&self) -> Result<usize, StoreError>;
}

/// Sessions in one process: they die with it (documented; a restart logs every browser out).
#[derive(Debug)]
pub struct MemorySessionStore {
    map: RwLock<HashMap<SessionKey, SessionRecord>>,
    capacity: usize,
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::with_capacity(MAX_SESSIONS)
    }
}

impl MemorySessionStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that holds at most `capacity` sessions.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            map: RwLock::new(HashMap::new()),
            capacity,
        }
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError("session store lock poisoned".into())
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn insert(
        &self,
        key: &SessionKey,
        record: SessionRecord,
        now_ms: i64,
    ) -> Result<Inserted, StoreError> {
        let mut map = self.map.write().map_err(poisoned)?;
        if map.len() >= self.capacity && !map.contains_key(key) {
            map.retain(|_, r| !r.is_expired(now_ms));
            if map.len() >= self.capacity {
                return Ok(Inserted::Full);
            }
        }
        map.insert(key.clone(), record);
        Ok(Inserted::Stored)
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.map.read().map_err(poisoned)?.get(key).cloned())
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut map = self.map.write().map_err(poisoned)?;
        Ok(match map.get_mut(key) {
            Some(record) => {
                record.last_seen_ms = last_seen_ms;
                record.expires_at_ms = expires_at_ms;
                true
            }
            None => false,
        })
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.map.write().map_err(poisoned)?.remove(key))
    }

    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        let map = self.map.read().map_err(poisoned)?;
        let mut found: Vec<_> = map
            .iter()
            .filter(|(_, r)| r.workspace_id == workspace_id && r.user_id == user_id)
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        found.sort_by(|(ka, a), (kb, b)| {
            (a.created_at_ms, ka.as_str()).cmp(&(b.created_at_ms, kb.as_str()))
        });
        Ok(found)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.map.read().map_err(poisoned)?.len())
    }
}

/// The contract every [`SessionStore`] passes; each backend's tests call it. With the
/// `test-support` feature the integration tests run it against a live Redis; never in a release
/// build.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use super::{Inserted, SessionKey, SessionRecord, SessionStore};

    fn fresh(name: &str) -> String {
        format!("contract-{name}-{}", uuid::Uuid::new_v4().simple())
    }

    /// A record for `user_id` in `workspace_id`, created at `created_at_ms`, one hour idle and
    /// twelve hours absolute.
    #[must_use]
    pub fn record(workspace_id: &str, user_id: &str, created_at_ms: i64) -> SessionRecord {
        SessionRecord {
            token_id: fresh("tok"),
            user_id: user_id.to_owned(),
            workspace_id: workspace_id.to_owned(),
            created_at_ms,
            last_seen_ms: created_at_ms,
            expires_at_ms: created_at_ms + 3_600_000,
            absolute_expires_at_ms: created_at_ms + 43_200_000,
        }
    }

    /// Runs the whole contract; panics on the first violation. Uses fresh random keys and
    /// users, so it can run against a store that holds other data (and it leaves none).
    ///
    /// # Panics
    /// On any departure from the contract.
    pub async fn session_store_contract(store: &dyn SessionStore) {
        let now = 1_700_000_000_000_i64;
        let (ws, user) = (fresh("ws"), fresh("usr"));
        let key = |n: &str| SessionKey::from_hmac_hex(fresh(n));

        // insert / get round trip; unknown keys are absent and are not created by reads.
        let (a, ra) = (key("a"), record(&ws, &user, now));
        assert_eq!(
            store.insert(&a, ra.clone(), now).await.unwrap(),
            Inserted::Stored
        );
        assert_eq!(store.get(&a).await.unwrap(), Some(ra.clone()));
        let unknown = key("unknown");
        assert_eq!(store.get(&unknown).await.unwrap(), None);

        // touch updates activity, and never creates a session (S6: no revival after logout).
        assert!(store.touch(&a, now + 10, now + 3_600_010).await.unwrap());
        let got = store.get(&a).await.unwrap().unwrap();
        assert_eq!(
            (got.last_seen_ms, got.expires_at_ms),
            (now + 10, now + 3_600_010)
        );
        assert_eq!(got.created_at_ms, now, "touch keeps the creation time");
        assert!(!store.touch(&unknown, now, now + 1).await.unwrap());
        assert_eq!(store.get(&unknown).await.unwrap(), None);

        // Listing: the user's sessions in the workspace, oldest first.
        let (b, rb) = (key("b"), record(&ws, &user, now + 5));
        let (older, rolder) = (key("older"), record(&ws, &user, now - 5));
        let (other_user, rother) = (key("other"), record(&ws, &fresh("usr"), now));
        let (other_ws, rws) = (key("ows"), record(&fresh("ws"), &user, now));
        for (k, r) in [
            (&b, &rb),
            (&older, &rolder),
            (&other_user, &rother),
            (&other_ws, &rws),
        ] {
            assert_eq!(
                store.insert(k, r.clone(), now).await.unwrap(),
                Inserted::Stored
            );
        }
        let listed: Vec<SessionKey> = store
            .list_for_user(&ws, &user)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(listed, [older.clone(), a.clone(), b.clone()]);
        assert!(store.count().await.unwrap() >= 5);

        // remove: returns the record once, then the session is gone for every operation.
        assert_eq!(
            store.remove(&a).await.unwrap().map(|r| r.token_id),
            Some(ra.token_id)
        );
        assert_eq!(store.remove(&a).await.unwrap(), None);
        assert_eq!(store.get(&a).await.unwrap(), None);
        assert!(!store.touch(&a, now, now + 1).await.unwrap());
        assert_eq!(store.list_for_user(&ws, &user).await.unwrap().len(), 2);

        for k in [&b, &older, &other_user, &other_ws] {
            assert!(store.remove(k).await.unwrap().is_some());
        }
        assert!(store.list_for_user(&ws, &user).await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        testing::session_store_contract(&MemorySessionStore::new()).await;
    }

    #[tokio::test]
    async fn memory_store_is_bounded_and_purges_expired_sessions_when_full() {
        let store = MemorySessionStore::with_capacity(3);
        let now = 1_700_000_000_000;
        let key = |i: usize| SessionKey::from_hmac_hex(format!("k{i}"));
        for i in 0..3 {
            let r = testing::record("w", "u", now + i as i64);
            assert_eq!(
                store.insert(&key(i), r, now).await.unwrap(),
                Inserted::Stored
            );
        }
        let extra = testing::record("w", "u", now);
        assert_eq!(
            store.insert(&key(9), extra.clone(), now).await.unwrap(),
            Inserted::Full
        );
        assert_eq!(store.count().await.unwrap(), 3);
        assert_eq!(store.get(&key(9)).await.unwrap(), None);
        // Existing sessions keep working when full.
        assert!(store.touch(&key(0), now + 1, now + 100).await.unwrap());
        // Once one has expired, room is made by purging it, not by evicting a live one.
        let later = now + 3_600_001;
        assert!(
            store
                .touch(&key(1), later, later + 3_600_000)
                .await
                .unwrap()
        );
        assert!(
            store
                .touch(&key(2), later, later + 3_600_000)
                .await
                .unwrap()
        );
        assert_eq!(
            store.insert(&key(9), extra, later).await.unwrap(),
            Inserted::Stored
        );
        assert_eq!(
            store.get(&key(0)).await.unwrap(),
            None,
            "the expired one went"
        );
        assert!(store.get(&key(1)).await.unwrap().is_some());
        assert_eq!(store.count().await.unwrap(), 3);
    }

    #[test]
    fn expiry_is_the_earlier_deadline() {
        let r = testing::record("w", "u", 0);
        assert!(!r.is_expired(3_599_999));
        assert!(r.is_expired(3_600_000));
        let mut active = r.clone();
        active.expires_at_ms = 50_000_000;
        assert!(active.is_expired(43_200_000), "absolute lifetime wins");
    }
}
