//! The OAuth records of one process, under one `std::sync::Mutex` (no lock is held across an
//! `.await`): one map per kind of record, each entry with its own end, bounded by
//! [`MAX_MEMORY_RECORDS`]. Unused clients are also indexed by registration time, so the oldest
//! is found at once when the cap of unused clients (or the clients map) is full and one must
//! go: without it, 100,000 anonymous registrations would fill the map and every new client
//! would be refused until they expired.

use std::{
    collections::{BTreeSet, HashMap},
    sync::Mutex,
};

use async_trait::async_trait;

use super::{
    CodeRecord, GrantSummary, Issued, MAX_UNUSED_CLIENTS, OAuthClient, OAuthStore,
    PendingAuthorization, Redeemed, RefreshRecord, Rotated, secret_hash,
};
use crate::store::StoreError;

/// Most records of each kind the memory store holds; past it, expired ones are purged and, if
/// none is, new ones are refused (503) while existing ones keep working.
pub const MAX_MEMORY_RECORDS: usize = 100_000;

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
    /// The unused clients, `(created_at_ms, client_id)`: the first is the one evicted.
    unused: BTreeSet<(i64, String)>,
    pending: Expiring<PendingAuthorization>,
    states: Expiring<()>,
    codes: Expiring<(CodeRecord, Option<Issued>)>,
    refresh: Expiring<(RefreshRecord, bool)>,
    families: Expiring<Family>,
    /// Each person's grant summaries, under `workspace\0user`.
    grants: Expiring<Vec<GrantSummary>>,
}

/// The OAuth records of one process (they die with it: a restart ends every grant).
#[derive(Debug)]
pub struct MemoryOAuthStore {
    maps: Mutex<Maps>,
    /// Most unused clients held ([`MAX_UNUSED_CLIENTS`] by default).
    unused_capacity: usize,
}

impl Default for MemoryOAuthStore {
    fn default() -> Self {
        Self {
            maps: Mutex::new(Maps {
                clients: Expiring::new(),
                unused: BTreeSet::new(),
                pending: Expiring::new(),
                states: Expiring::new(),
                codes: Expiring::new(),
                refresh: Expiring::new(),
                families: Expiring::new(),
                grants: Expiring::new(),
            }),
            unused_capacity: MAX_UNUSED_CLIENTS,
        }
    }
}

impl MemoryOAuthStore {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how many unused clients this store holds at most (at least 1; default
    /// [`MAX_UNUSED_CLIENTS`]), so a test can reach the cap with a few registrations.
    #[must_use]
    pub fn with_unused_client_capacity(mut self, capacity: usize) -> Self {
        self.unused_capacity = capacity.max(1);
        self
    }

    fn maps(&self) -> Result<std::sync::MutexGuard<'_, Maps>, StoreError> {
        self.maps
            .lock()
            .map_err(|_| StoreError("oauth store lock poisoned".into()))
    }
}

impl Maps {
    /// Forgets expired clients and the index entries of clients gone or used.
    fn purge_clients(&mut self, now_ms: i64) {
        self.clients.0.retain(|_, e| e.expires_at_ms > now_ms);
        let clients = &self.clients;
        self.unused
            .retain(|(_, id)| clients.get(id, now_ms).is_some_and(|c| !c.used));
    }

    /// Evicts the oldest unused client; `false` if there is none.
    fn evict_oldest_unused(&mut self) -> bool {
        match self.unused.pop_first() {
            Some((_, id)) => {
                self.clients.0.remove(&id);
                true
            }
            None => false,
        }
    }
}

fn state_key(client_id: &str, state: &str) -> String {
    format!("{}:{}", secret_hash(client_id), secret_hash(state))
}

#[async_trait]
impl OAuthStore for MemoryOAuthStore {
    async fn put_client(&self, client: &OAuthClient, now_ms: i64) -> Result<(), StoreError> {
        let mut maps = self.maps()?;
        let id = &client.client_id;
        if let Some(old) = maps.clients.0.get(id) {
            let key = (old.value.created_at_ms, id.clone());
            maps.unused.remove(&key);
        }
        let map_full = |maps: &Maps| {
            maps.clients.0.len() >= MAX_MEMORY_RECORDS && !maps.clients.0.contains_key(id)
        };
        let unused_full = |maps: &Maps| !client.used && maps.unused.len() >= self.unused_capacity;
        if map_full(&maps) || unused_full(&maps) {
            maps.purge_clients(now_ms);
        }
        while (map_full(&maps) || unused_full(&maps)) && maps.evict_oldest_unused() {}
        maps.clients
            .insert(id, client.clone(), client.expires_at_ms, now_ms)?;
        if !client.used {
            maps.unused.insert((client.created_at_ms, id.clone()));
        }
        Ok(())
    }

    async fn mark_client_used(
        &self,
        client_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut maps = self.maps()?;
        let Maps {
            clients, unused, ..
        } = &mut *maps;
        let Some(entry) = clients
            .0
            .get_mut(client_id)
            .filter(|e| e.expires_at_ms > now_ms)
        else {
            return Ok(false);
        };
        unused.remove(&(entry.value.created_at_ms, client_id.to_owned()));
        entry.value.used = true;
        entry.value.expires_at_ms = expires_at_ms;
        entry.expires_at_ms = expires_at_ms;
        Ok(true)
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

    async fn touch_grant(
        &self,
        workspace_id: &str,
        user_id: &str,
        summary: &GrantSummary,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = format!("{workspace_id}\0{user_id}");
        let mut maps = self.maps()?;
        let mut list = maps.grants.get(&key, now_ms).cloned().unwrap_or_default();
        list.retain(|g| g.grant_id != summary.grant_id);
        list.push(summary.clone());
        super::trim_grants(&mut list, now_ms);
        let until = list.iter().map(|g| g.expires_at_ms).max().unwrap_or(now_ms);
        maps.grants.insert(&key, list, until, now_ms)
    }

    async fn list_grants(
        &self,
        workspace_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let maps = self.maps()?;
        let key = format!("{workspace_id}\0{user_id}");
        let mut list = maps.grants.get(&key, now_ms).cloned().unwrap_or_default();
        list.retain(|g| {
            !maps
                .families
                .get(&g.grant_id, now_ms)
                .is_some_and(|f| f.revoked)
        });
        super::trim_grants(&mut list, now_ms);
        Ok(list)
    }
}

#[cfg(test)]
mod contract {
    crate::oauth_store_contract_tests!(
        super::MemoryOAuthStore::new()
            .with_unused_client_capacity(crate::store::oauth::contract::UNUSED_CAPACITY)
    );
}
