//! Fixed-window counters for rate limiting: [`CounterStore::incr_with_ttl`].
//!
//! A window opens at the first increment of a key and lasts `window`; every increment inside it
//! adds one and reports the count so far and when the window resets. The caller passes `now`
//! (the app's injectable clock), so tests cross window boundaries without sleeping and every
//! backend judges expiry by the same clock. A Redis backend keeps `{count, resets_at}` per key
//! and does the compare-reset-increment in one script (atomic across instances), with the key
//! expiring at `resets_at`; it passes the same [`testing::counter_store_contract`].
//!
//! Increments are atomic: N concurrent increments of one key see exactly the counts 1..=N, so
//! a burst cannot slip past a limit through a read-modify-write race (catalogue R1).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;

use super::StoreError;

/// Most keys the memory store tracks. Past it, expired windows are purged; if the map is still
/// full, the smallest of a few sampled counters is dropped (that key starts a fresh window on
/// its next request). Flooding with fresh keys thus evicts other fresh keys, while heavy hitters,
/// whose counts are high, keep theirs; memory stays bounded (~100 bytes a key).
pub const MAX_TRACKED_COUNTERS: usize = 100_000;

/// How many counters are sampled to choose one to drop when the memory store is full.
const EVICTION_SAMPLE: usize = 16;

/// How often (in the callers' clock) the memory store sweeps out expired windows.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The state of a key's window after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    /// Increments in the current window, this one included (1 for the first).
    pub count: u64,
    /// When the current window ends and the count starts again from zero.
    pub resets_at: SystemTime,
}

/// Counters with a fixed window, shared by every request (and, with Redis, every instance).
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// Adds one to `key` and returns the count in its current window. A key whose window has
    /// ended at `now` (or that was never seen) starts a new window `[now, now + window)`.
    async fn incr_with_ttl(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<WindowCount, StoreError>;
}

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
}

/// The contract every [`CounterStore`] passes; each backend's tests call it.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use std::time::{Duration, SystemTime};

    use super::CounterStore;

    /// Checks fixed windows, key independence, reset at the boundary and atomic increments.
    /// Keys are unique per run, so a shared backend (Redis) can run it alongside other data.
    ///
    /// # Panics
    /// On any departure from the contract.
    pub async fn counter_store_contract(store: &dyn CounterStore) {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let key = |name: &str| format!("contract:{run}:{name}");
        let window = Duration::from_secs(60);
        // Whole seconds, so a backend that stores seconds compares exactly.
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let at = |secs: u64| t0 + Duration::from_secs(secs);

        // A new key opens a window at `now`; later increments in it share its reset time.
        let first = store.incr_with_ttl(&key("a"), window, t0).await.unwrap();
        assert_eq!(first.count, 1, "first increment");
        assert_eq!(first.resets_at, t0 + window, "window opens at now");
        let second = store
            .incr_with_ttl(&key("a"), window, at(30))
            .await
            .unwrap();
        assert_eq!(second.count, 2, "second increment");
        assert_eq!(second.resets_at, t0 + window, "same window");
        let last = store
            .incr_with_ttl(&key("a"), window, at(59))
            .await
            .unwrap();
        assert_eq!((last.count, last.resets_at), (3, t0 + window));

        // Keys are independent.
        let other = store
            .incr_with_ttl(&key("b"), window, at(59))
            .await
            .unwrap();
        assert_eq!(other.count, 1, "another key");
        assert_eq!(other.resets_at, at(59) + window);

        // At the reset time the window is over: the count starts again.
        let reset = store
            .incr_with_ttl(&key("a"), window, at(60))
            .await
            .unwrap();
        assert_eq!(reset.count, 1, "new window at resets_at");
        assert_eq!(reset.resets_at, at(60) + window);
        let much_later = store
            .incr_with_ttl(&key("a"), window, at(10_000))
            .await
            .unwrap();
        assert_eq!(much_later.count, 1, "long idle key");

        // Each key keeps the window it was opened with.
        let short = Duration::from_secs(1);
        let s = store.incr_with_ttl(&key("short"), short, t0).await.unwrap();
        assert_eq!(s.resets_at, t0 + short);
        let s = store
            .incr_with_ttl(&key("short"), short, at(1))
            .await
            .unwrap();
        assert_eq!(s.count, 1, "one-second window over");

        // Concurrent increments of one key: exactly 1..=N, no lost or repeated count.
        const N: u64 = 150;
        let burst = key("burst");
        let counts =
            futures::future::join_all((0..N).map(|_| store.incr_with_ttl(&burst, window, at(5))))
                .await;
        let mut counts: Vec<u64> = counts.into_iter().map(|c| c.unwrap().count).collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=N).collect::<Vec<_>>(), "atomic increments");
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        testing::counter_store_contract(&MemoryCounterStore::new()).await;
    }

    #[tokio::test]
    async fn memory_store_is_atomic_across_threads() {
        let store = Arc::new(MemoryCounterStore::new());
        let now = SystemTime::now();
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
        let now = SystemTime::now();
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
