//! Counters in one process: one `std::sync::Mutex` over a bounded map, swept of expired
//! windows once a minute (in the callers' clock).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;

use super::{CounterStore, WindowCount};
use crate::store::StoreError;

/// Most keys the memory store tracks. Past it, expired windows are purged; if the map is still
/// full, the smallest of a few sampled counters is dropped (that key starts a fresh window on
/// its next request). Flooding with fresh keys thus evicts other fresh keys, while heavy hitters,
/// whose counts are high, keep theirs; memory stays bounded (~100 bytes a key).
pub const MAX_TRACKED_COUNTERS: usize = 100_000;

/// How many counters are sampled to choose one to drop when the memory store is full.
const EVICTION_SAMPLE: usize = 16;

/// How often (in the callers' clock) the memory store sweeps out expired windows.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Counters in one process (the default; several instances each count on their own, so N
/// instances allow N times the limit: use the Redis store to share them).
///
/// One `std::sync::Mutex` over the map: each critical section is a lookup and an add (no
/// `.await` inside), far shorter than the request it guards; the sweep is O(keys) once a minute.
#[derive(Debug)]
pub struct MemoryCounterStore {
    inner: Mutex<Counters>,
    capacity: usize,
}

#[derive(Debug)]
struct Counters {
    map: HashMap<String, WindowCount>,
    next_sweep: SystemTime,
}

impl Default for MemoryCounterStore {
    fn default() -> Self {
        Self::with_capacity(MAX_TRACKED_COUNTERS)
    }
}

impl MemoryCounterStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store tracking at most `capacity` keys (tests use a small one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Counters {
                map: HashMap::new(),
                next_sweep: SystemTime::UNIX_EPOCH,
            }),
            capacity: capacity.max(1),
        }
    }

    /// Keys currently tracked (expired windows included until the next sweep).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |c| c.map.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Counters {
    fn sweep(&mut self, now: SystemTime) {
        self.map.retain(|_, w| w.resets_at > now);
        self.next_sweep = now + SWEEP_INTERVAL;
    }

    /// Makes room for one more key.
    fn make_room(&mut self, capacity: usize, now: SystemTime) {
        if self.map.len() < capacity {
            return;
        }
        self.sweep(now);
        while self.map.len() >= capacity {
            let victim = self
                .map
                .iter()
                .take(EVICTION_SAMPLE)
                .min_by_key(|(_, w)| w.count)
                .map(|(k, _)| k.clone());
            match victim {
                Some(key) => self.map.remove(&key),
                None => break,
            };
        }
    }
}

#[async_trait]
impl CounterStore for MemoryCounterStore {
    async fn incr_with_ttl(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<WindowCount, StoreError> {
        let mut counters = self
            .inner
            .lock()
            .map_err(|_| StoreError("counter store lock poisoned".into()))?;
        if now >= counters.next_sweep {
            counters.sweep(now);
        }
        if let Some(current) = counters.map.get_mut(key)
            && current.resets_at > now
        {
            current.count += 1;
            return Ok(*current);
        }
        counters.map.remove(key);
        counters.make_room(self.capacity, now);
        let fresh = WindowCount {
            count: 1,
            resets_at: now + window,
        };
        counters.map.insert(key.to_owned(), fresh);
        Ok(fresh)
    }

    async fn refund(&self, key: &str, resets_at: SystemTime) -> Result<(), StoreError> {
        let mut counters = self
            .inner
            .lock()
            .map_err(|_| StoreError("counter store lock poisoned".into()))?;
        if let Some(current) = counters.map.get_mut(key)
            && current.resets_at == resets_at
        {
            current.count = current.count.saturating_sub(1);
        }
        Ok(())
    }

    fn held(&self) -> Option<usize> {
        Some(self.len())
    }
}

#[cfg(test)]
mod contract {
    crate::counter_store_contract_tests!(super::MemoryCounterStore::new());
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    /// A fixed time: the store judges windows by the caller's clock only.
    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[tokio::test]
    async fn memory_store_is_atomic_across_threads() {
        let store = Arc::new(MemoryCounterStore::new());
        let now = t0();
        let tasks: Vec<_> = (0..150)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .incr_with_ttl("k", Duration::from_secs(60), now)
                        .await
                        .unwrap()
                        .count
                })
            })
            .collect();
        let mut counts = Vec::new();
        for task in tasks {
            counts.push(task.await.unwrap());
        }
        counts.sort_unstable();
        assert_eq!(counts, (1..=150).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn memory_store_stays_within_its_capacity() {
        let store = MemoryCounterStore::with_capacity(8);
        let now = t0();
        let window = Duration::from_secs(60);
        for _ in 0..5 {
            store.incr_with_ttl("heavy", window, now).await.unwrap();
        }
        for i in 0..100 {
            store
                .incr_with_ttl(&format!("k{i}"), window, now)
                .await
                .unwrap();
            assert!(store.len() <= 8);
        }
        // The heavy hitter kept its count: fresh keys evicted each other.
        let heavy = store.incr_with_ttl("heavy", window, now).await.unwrap();
        assert_eq!(heavy.count, 6);
        // Expired windows are swept.
        store
            .incr_with_ttl("late", window, now + 2 * window)
            .await
            .unwrap();
        assert_eq!(store.len(), 1);
    }
}
