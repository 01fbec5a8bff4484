//! Failure counters in process memory: one map per kind of subject, each bounded by
//! [`MAX_TRACKED`]. When a map is full, stale counters are purged and then the subject idle the
//! longest is evicted (Redis counters expire on their own). An attacker who spreads failures
//! over more than that many subjects within a window can flush a counter; the per-IP request
//! limit in front of login bounds how fast that can happen.

use std::{collections::HashMap, hash::Hash, sync::Mutex, time::SystemTime};

use ipnet::IpNet;

use async_trait::async_trait;

use super::{FailureCounter, FailureStore, Limits, Subject};
use crate::store::StoreError;

/// Subjects tracked per map (IPs, keys); the idlest is evicted past it.
pub const MAX_TRACKED: usize = 10_000;

/// Counters of one kind of subject, bounded.
#[derive(Debug)]
struct Tracker<K> {
    counters: Mutex<HashMap<K, FailureCounter>>,
}

impl<K> Default for Tracker<K> {
    fn default() -> Self {
        Self {
            counters: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone> Tracker<K> {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, FailureCounter>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, subject: &K) -> Option<FailureCounter> {
        self.lock().get(subject).copied()
    }

    fn add_failure(&self, subject: K, limits: &Limits, now: SystemTime) -> FailureCounter {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&subject) {
            map.retain(|_, c| !c.is_stale(limits, now));
            if map.len() >= MAX_TRACKED {
                let idlest = map
                    .iter()
                    .min_by_key(|(_, c)| c.last_failure)
                    .map(|(k, _)| k.clone());
                if let Some(k) = idlest {
                    map.remove(&k);
                }
            }
        }
        let next = FailureCounter::after_failure(map.get(&subject).copied(), limits, now);
        map.insert(subject, next);
        next
    }

    fn clear(&self, subject: &K) {
        self.lock().remove(subject);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Failure counters in process memory: one map per kind of subject, each bounded.
#[derive(Debug, Default)]
pub struct MemoryFailureStore {
    by_ip: Tracker<IpNet>,
    by_key: Tracker<String>,
}

impl MemoryFailureStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Subjects tracked (IPs, keys), for metrics and tests.
    #[must_use]
    pub fn tracked(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_key.len())
    }
}

#[async_trait]
impl FailureStore for MemoryFailureStore {
    async fn get(&self, subject: Subject<'_>) -> Result<Option<FailureCounter>, StoreError> {
        Ok(match subject {
            Subject::Ip(ip) => self.by_ip.get(&ip),
            Subject::Key(fp) => self.by_key.get(&fp.to_owned()),
        })
    }

    async fn add_failure(
        &self,
        subject: Subject<'_>,
        limits: &Limits,
        now: SystemTime,
    ) -> Result<FailureCounter, StoreError> {
        Ok(match subject {
            Subject::Ip(ip) => self.by_ip.add_failure(ip, limits, now),
            Subject::Key(fp) => self.by_key.add_failure(fp.to_owned(), limits, now),
        })
    }

    async fn clear(&self, subject: Subject<'_>) -> Result<(), StoreError> {
        match subject {
            Subject::Ip(ip) => self.by_ip.clear(&ip),
            Subject::Key(fp) => self.by_key.clear(&fp.to_owned()),
        }
        Ok(())
    }
}

#[cfg(test)]
mod contract {
    crate::failure_store_contract_tests!(super::MemoryFailureStore::new());
}

#[cfg(test)]
mod tests {
    use std::{
        net::Ipv4Addr,
        time::{Duration, SystemTime},
    };

    use super::*;

    #[tokio::test]
    async fn memory_is_bounded() {
        let store = MemoryFailureStore::new();
        let limits = Limits {
            max_failures: 5,
            window: Duration::from_secs(900),
            base_backoff: Duration::from_secs(60),
            max_backoff: Duration::from_secs(900),
        };
        let ip = IpNet::from(std::net::IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..MAX_TRACKED + 50 {
            let key = format!("usr_{i}");
            store
                .add_failure(Subject::Ip(ip), &limits, now)
                .await
                .unwrap();
            store
                .add_failure(Subject::Key(&key), &limits, now)
                .await
                .unwrap();
        }
        assert_eq!(store.tracked(), (1, MAX_TRACKED));
    }
}
