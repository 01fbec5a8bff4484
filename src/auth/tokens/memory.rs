//! Token records in process memory: one instance, lost on restart (all tokens then fail the
//! record lookup, which is the safe direction).
//!
//! A `std::sync::RwLock`, not tokio's: no lock is held across an `.await`.
//!
//! Records are indexed by user as well as by id: every login lists the user's tokens (to cap
//! them, [`super::save_capped`]), and a scan of every record there made each login
//! O(live records) under the read lock (docs/PERFORMANCE.md).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::SystemTime,
};

use async_trait::async_trait;

use super::{TokenRecord, TokenStore};
use crate::store::StoreError;

/// `(workspace_id, user_id)`: whose tokens an index entry lists.
type UserKey = (String, String);

/// The records and the per-user index, always changed together under one lock.
#[derive(Debug, Default)]
struct Records {
    /// Shared with the requests that read them: a request holds its record for its whole life,
    /// and a lookup that copied the record (seven strings and the sealed key) cost an allocation
    /// burst per request (docs/PERFORMANCE.md, finding 9).
    by_id: HashMap<String, Arc<TokenRecord>>,
    /// The token ids of each user, in no particular order.
    by_user: HashMap<UserKey, Vec<String>>,
}

impl Records {
    fn insert(&mut self, record: TokenRecord) {
        let key = (record.workspace_id.clone(), record.user_id.clone());
        let id = record.token_id.clone();
        match self.by_id.insert(id.clone(), Arc::new(record)) {
            Some(old) if (&old.workspace_id, &old.user_id) == (&key.0, &key.1) => {}
            Some(old) => {
                self.unindex(&(old.workspace_id.clone(), old.user_id.clone()), &id);
                self.by_user.entry(key).or_default().push(id);
            }
            None => self.by_user.entry(key).or_default().push(id),
        }
    }

    fn unindex(&mut self, key: &UserKey, id: &str) {
        if let Some(ids) = self.by_user.get_mut(key) {
            ids.retain(|i| i != id);
            if ids.is_empty() {
                self.by_user.remove(key);
            }
        }
    }

    /// Drops the records expired at `now`, and their index entries.
    fn sweep(&mut self, now: i64) {
        let before = self.by_id.len();
        self.by_id.retain(|_, r| r.expires_at > now);
        if self.by_id.len() != before {
            let by_id = &self.by_id;
            self.by_user.retain(|_, ids| {
                ids.retain(|id| by_id.contains_key(id));
                !ids.is_empty()
            });
        }
    }

    /// The unexpired records of one user.
    fn of_user<'a>(
        &'a self,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> impl Iterator<Item = &'a TokenRecord> + 'a {
        // The index is keyed by owned strings; a linear probe would defeat it, so build the key.
        let key = (workspace_id.to_owned(), user_id.to_owned());
        self.by_user
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id).map(Arc::as_ref))
            .filter(move |r| r.expires_at > now)
    }
}

/// Token records in a map. Expired records are filtered on read and purged by the first write
/// of each second: a sweep on every write made each login O(live records) under the write lock
/// (100k live tokens took minutes to fill; see docs/PERFORMANCE.md).
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    records: RwLock<Records>,
    /// The second (epoch) of the last sweep.
    swept_at: AtomicI64,
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Records> {
        self.records.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The records for writing; records expired before this second are gone once a second.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Records> {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        let now = now();
        if self.swept_at.swap(now, Ordering::Relaxed) != now {
            records.sweep(now);
        }
        records
    }

    /// How many records the map holds, expired ones not yet swept included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many users the index holds (tests: the index shrinks with the records).
    #[cfg(test)]
    pub(super) fn indexed_users(&self) -> usize {
        self.read().by_user.len()
    }
}

fn now() -> i64 {
    crate::state::epoch_secs(SystemTime::now())
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save(&self, mut record: TokenRecord) -> Result<(), StoreError> {
        if record.expires_at > now() {
            let mut records = self.write();
            if let Some(old) = records.by_id.get(&record.token_id) {
                record.revoked_at = old.revoked_at.or(record.revoked_at);
            }
            records.insert(record);
        }
        Ok(())
    }

    async fn get(&self, token_id: &str) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let now = now();
        Ok(self
            .read()
            .by_id
            .get(token_id)
            .filter(|r| r.expires_at > now)
            .cloned())
    }

    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(match self.write().by_id.get_mut(token_id) {
            Some(record) => {
                Arc::make_mut(record).revoked_at.get_or_insert(now);
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
        let mut records: Vec<TokenRecord> = self
            .read()
            .of_user(workspace_id, user_id, now())
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
            .of_user(workspace_id, user_id, now)
            .filter(|r| r.is_live(now))
            .count())
    }
}
