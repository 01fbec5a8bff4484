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

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use memory::MemorySessionStore;

use super::StoreError;

/// Most sessions the memory store holds by default (`SESSION_MAX_RECORDS`; about 300 bytes each:
/// ~30 MB at the cap). Past it,
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

    /// How many sessions this process holds, for the `store_entries` gauge; `None` when they
    /// live elsewhere (Redis expires each with its session).
    fn held(&self) -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::contract::record;

    #[test]
    fn expiry_is_the_earlier_deadline() {
        let r = record("w", "u", 0);
        assert!(!r.is_expired(3_599_999));
        assert!(r.is_expired(3_600_000));
        let mut active = r.clone();
        active.expires_at_ms = 50_000_000;
        assert!(active.is_expired(43_200_000), "absolute lifetime wins");
    }
}
