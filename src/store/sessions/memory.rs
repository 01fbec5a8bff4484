//! Browser sessions in one process: a `std::sync::RwLock` over a map bounded by
//! [`MAX_SESSIONS`] (no lock is held across an `.await`).

use std::{collections::HashMap, sync::RwLock};

use async_trait::async_trait;

use super::{Inserted, MAX_SESSIONS, SessionKey, SessionRecord, SessionStore};
use crate::store::StoreError;

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

    fn held(&self) -> Option<usize> {
        Some(self.map.read().map_or(0, |m| m.len()))
    }
}

#[cfg(test)]
mod contract {
    crate::session_store_contract_tests!(super::MemorySessionStore::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sessions::contract::record;

    #[tokio::test]
    async fn memory_store_is_bounded_and_purges_expired_sessions_when_full() {
        let store = MemorySessionStore::with_capacity(3);
        let now = 1_700_000_000_000;
        let key = |i: usize| SessionKey::from_hmac_hex(format!("k{i}"));
        for i in 0..3 {
            let r = record("w", "u", now + i as i64);
            assert_eq!(
                store.insert(&key(i), r, now).await.unwrap(),
                Inserted::Stored
            );
        }
        let extra = record("w", "u", now);
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
}
