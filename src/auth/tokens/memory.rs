//! Token records in process memory: one instance, lost on restart (all tokens then fail the
//! record lookup, which is the safe direction).
//!
//! A `std::sync::RwLock`, not tokio's: no lock is held across an `.await`.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{SystemTime, UNIX_EPOCH},
};

use async_trait::async_trait;

use super::{TokenRecord, TokenStore};
use crate::store::StoreError;

/// Token records in a map. Expired records are filtered on read and purged on every write.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    records: RwLock<HashMap<String, TokenRecord>>,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TokenRecord>> {
        self.records.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The map for writing, with expired records already gone.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TokenRecord>> {
        let mut map = self.records.write().unwrap_or_else(|e| e.into_inner());
        let now = now();
        map.retain(|_, r| r.expires_at > now);
        map
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
