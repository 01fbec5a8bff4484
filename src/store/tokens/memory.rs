//! Token records in process memory: one instance, lost on restart (all tokens then fail the
//! record lookup, which is the safe direction).
//!
//! A `std::sync::RwLock`, not tokio's: no lock is held across an `.await`.
//!
//! Records are indexed by user as well as by id: every login lists the user's tokens (to cap
//! them, `auth::tokens::save_capped`), and a scan of every record there made each login
//! O(live records) under the read lock (docs/PERFORMANCE.md).
//!
//! Every expiry is judged at the caller's `now`; the store reads no clock of its own.
//!
//! The store holds at most `TOKEN_MAX_RECORDS` records over all workspaces and users (the per-user
//! cap of `auth::tokens` times an unbounded number of users is no bound). At the cap, expired
//! records go first, then revoked ones (a missing record is refused like a revoked one, so
//! forgetting it early changes no answer); if every record is still live, the new token is
//! refused with a [`StoreError`] naming the cap, and the login answers 503. Evicting a live
//! token instead would log someone else out without a word.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
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

    /// Drops the revoked records and their index entries.
    fn drop_revoked(&mut self) {
        let before = self.by_id.len();
        self.by_id.retain(|_, r| r.revoked_at.is_none());
        if self.by_id.len() != before {
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        let by_id = &self.by_id;
        self.by_user.retain(|_, ids| {
            ids.retain(|id| by_id.contains_key(id));
            !ids.is_empty()
        });
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
            self.reindex();
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
#[derive(Debug)]
pub struct MemoryTokenStore {
    records: RwLock<Records>,
    /// The second (epoch) of the last sweep.
    swept_at: AtomicI64,
    /// Most records held (`TOKEN_MAX_RECORDS`).
    capacity: usize,
}

/// Token records held at most, by default (`TOKEN_MAX_RECORDS`).
pub const MAX_TOKEN_RECORDS: usize = 100_000;

impl Default for MemoryTokenStore {
    fn default() -> Self {
        Self::with_capacity(MAX_TOKEN_RECORDS)
    }
}

impl MemoryTokenStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding at most `capacity` records (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: RwLock::default(),
            swept_at: AtomicI64::default(),
            capacity: capacity.max(1),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Records> {
        self.records.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The records for writing; records expired at `now` are gone once a second (of the
    /// callers' clock).
    fn write(&self, now: i64) -> std::sync::RwLockWriteGuard<'_, Records> {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
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
    fn indexed_users(&self) -> usize {
        self.read().by_user.len()
    }
}

#[async_trait]
impl TokenStore for MemoryTokenStore {
    async fn save(&self, mut record: TokenRecord, now: i64) -> Result<(), StoreError> {
        if record.expires_at > now {
            let mut records = self.write(now);
            if let Some(old) = records.by_id.get(&record.token_id) {
                record.revoked_at = old.revoked_at.or(record.revoked_at);
            } else if records.by_id.len() >= self.capacity {
                records.sweep(now);
                if records.by_id.len() >= self.capacity {
                    records.drop_revoked();
                }
                if records.by_id.len() >= self.capacity {
                    return Err(StoreError(format!(
                        "token store full: {} unexpired tokens held (TOKEN_MAX_RECORDS); new tokens are refused until some expire",
                        self.capacity
                    )));
                }
            }
            records.insert(record);
        }
        Ok(())
    }

    async fn get(&self, token_id: &str, now: i64) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        Ok(self
            .read()
            .by_id
            .get(token_id)
            .filter(|r| r.expires_at > now)
            .cloned())
    }

    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        Ok(match self.write(now).by_id.get_mut(token_id) {
            Some(record) if record.expires_at > now => {
                Arc::make_mut(record).revoked_at.get_or_insert(now);
                true
            }
            _ => false,
        })
    }

    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let mut records: Vec<TokenRecord> = self
            .read()
            .of_user(workspace_id, user_id, now)
            .cloned()
            .collect();
        records.sort_by(|a, b| (b.issued_at, &b.token_id).cmp(&(a.issued_at, &a.token_id)));
        Ok(records)
    }

    async fn count_live_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
        now: i64,
    ) -> Result<usize, StoreError> {
        Ok(self
            .read()
            .of_user(workspace_id, user_id, now)
            .filter(|r| r.is_live(now))
            .count())
    }

    fn held(&self) -> Option<usize> {
        Some(self.len())
    }
}

#[cfg(test)]
mod contract {
    crate::token_store_contract_tests!(super::MemoryTokenStore::new());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tokens::contract::{NOW, record};

    /// Memory stays bounded: expired records leave the map at a later write (the sweep runs once a
    /// second, not on every write).
    #[tokio::test]
    async fn memory_store_sweeps_expired_records_on_a_later_write() {
        let store = MemoryTokenStore::new();
        store.save(record("w1", "usr_a", 0, 1), NOW).await.unwrap();
        assert_eq!(store.len(), 1);
        // Two seconds later by the caller's clock (no sleeping: the store reads no clock).
        let later = NOW + 2;
        let live = record("w1", "usr_b", 0, 3600);
        let live_id = live.token_id.clone();
        store.save(live, later).await.unwrap();
        assert_eq!(store.len(), 1, "the expired record is still in the map");
        assert_eq!(
            store.indexed_users(),
            1,
            "usr_a is still in the per-user index"
        );
        assert!(store.get(&live_id, later).await.unwrap().is_some());
        let listed = store.list_for_user("w1", "usr_b", later).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].token_id, live_id);
        assert!(
            store
                .list_for_user("w1", "usr_a", later)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// At its cap the store drops expired records, then revoked ones, and only then refuses a
    /// new token with an error naming the setting; a record it holds can still be saved again.
    #[tokio::test]
    async fn memory_store_at_its_cap_makes_room_then_refuses() {
        let store = MemoryTokenStore::with_capacity(3);
        store.save(record("w1", "usr_a", 0, 1), NOW).await.unwrap();
        let revoked = record("w1", "usr_b", 0, 3600);
        store.save(revoked.clone(), NOW).await.unwrap();
        store.revoke(&revoked.token_id, NOW).await.unwrap();
        let live = record("w1", "usr_c", 0, 3600);
        store.save(live.clone(), NOW).await.unwrap();
        // Within the same second (no sweep yet): the expired record goes first.
        let later = NOW + 2;
        store
            .save(record("w1", "usr_d", 0, 3600), later)
            .await
            .unwrap();
        assert_eq!(store.len(), 3);
        store
            .save(record("w1", "usr_e", 0, 3600), later)
            .await
            .unwrap();
        assert!(
            store.get(&revoked.token_id, later).await.unwrap().is_none(),
            "the revoked record made room"
        );
        let refused = store
            .save(record("w1", "usr_f", 0, 3600), later)
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("TOKEN_MAX_RECORDS"),
            "{refused}"
        );
        assert_eq!(store.len(), 3);
        store.save(live.clone(), later).await.unwrap();
        assert!(store.get(&live.token_id, later).await.unwrap().is_some());
        assert_eq!(
            store
                .list_for_user("w1", "usr_b", later)
                .await
                .unwrap()
                .len(),
            0
        );
    }

    /// The per-user index follows a record saved again under another user (ids are random, so
    /// this only happens on a bug upstream, but the index must not keep a stale entry).
    #[tokio::test]
    async fn memory_store_index_follows_a_record_saved_under_another_user() {
        let store = MemoryTokenStore::new();
        let mut record = record("w1", "usr_a", 0, 3600);
        store.save(record.clone(), NOW).await.unwrap();
        record.user_id = "usr_b".to_owned();
        store.save(record.clone(), NOW).await.unwrap();
        assert!(
            store
                .list_for_user("w1", "usr_a", NOW)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.list_for_user("w1", "usr_b", NOW).await.unwrap().len(),
            1
        );
        assert_eq!(
            store.count_live_for_user("w1", "usr_b", NOW).await.unwrap(),
            1
        );
        assert_eq!(store.indexed_users(), 1);
    }
}
