//! Token records in process memory: one instance, lost on restart (all tokens then fail the
//! record lookup, which is the safe direction).
//!
//! A `std::sync::RwLock`, not tokio's: no lock is held across an `.await`.

use std::{
    collections::HashMap,
    sync::{
        RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;

use super::{TokenRecord, TokenStore};
use crate::store::StoreError;

/// Token records in a map. Expired records are filtered on read and purged by the first write
/// of each second: a sweep on every write made each login O(live records) under the write lock
/// (100k live tokens took minutes to fill; see docs/PERFORMANCE.md).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    records: RwLock<HashMap<String, TokenRecord>>,
    /// The second (epoch) of the last sweep.
    swept_at: AtomicI64,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TokenRecord>> {
        self.records.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The map for writing; records expired before this second are gone once a second.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TokenRecord>> {
        let mut map = self.records.write().unwrap_or_else(|e| e.into_inner());
        let now = now();
        if self.swept_at.swap(now, Ordering::Relaxed) != now {
            map.retain(|_, r| r.expires_at > now);
        }
        map
    }

    /// How many records the map holds, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save(&self, mut record: TokenRecord) -> Result<(), StoreError> {
        if record.expires_at > now() {
            let mut map = self.write();
            if let Some(old) = map.get(&record.token_id) {
                record.revoked_at = old.revoked_at.or(record.revoked_at);
            }
            map.insert(record.token_id.clone(), record);
        }
        Ok(())
    }

    async fn get(&self, token_id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let now = now();
        Ok(self
            .read()
            .get(token_id)
            .filter(|r| r.expires_at > now)
            .cloned())
    }

    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(match self.write().get_mut(token_id) {
            Some(record) => {
                record.revoked_at.get_or_insert(now);
                true
            }
            None => false,
        })
    }

    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let now = now();
        let mut records: Vec<TokenRecord> = self
            .read()
            .values()
            .filter(|r| r.workspace_id == workspace_id && r.user_id == user_id)
            .filter(|r| r.expires_at > now)
            .cloned()
            .collect();
        records.sort_by(|a, b| (b.issued_at, &b.token_id).cmp(&(a.issued_at, &a.token_id)));
        Ok(records)
    }

    async fn count_live_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<usize, StoreError> {
        let now = now();
        Ok(self
            .read()
            .values()
            .filter(|r| r.workspace_id == workspace_id && r.user_id == user_id)
            .filter(|r| r.is_live(now))
            .count())
    }
}
