//! Fixed-window counters for rate limiting: [`CounterStore::incr_with_ttl`].
//!
//! A window opens at the first increment of a key and lasts `window`; every increment inside it
//! adds one and reports the count so far and when the window resets. The caller passes `now`
//! (the app's injectable clock), so tests cross window boundaries without sleeping and every
//! backend judges expiry by the same clock. The memory backend is [`memory`]; the Redis one
//! (`store::redis::counters`) keeps `{count, resets_at}` per key and does the
//! compare-reset-increment in one script (atomic across instances), with the key expiring at
//! `resets_at`. Both pass the same suite, [`contract`].
//!
//! Increments are atomic: N concurrent increments of one key see exactly the counts 1..=N, so
//! a burst cannot slip past a limit through a read-modify-write race (catalogue R1).
//!
//! [`CounterStore::refund`] takes back one increment of a window that is still open: the
//! per-principal bucket is counted alongside the token lookup, before the token is known to be
//! good, so that a request waits for one store round trip instead of two
//! (`http::rate_limit`, "read-ahead"); a request that then turns out not to count gives its
//! increment back. A refund names the window it belongs to, so it never reaches into the next.

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

pub use memory::{MAX_TRACKED_COUNTERS, MemoryCounterStore};

use super::StoreError;

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

    /// Takes back one increment of `key` made in the window that ends at `resets_at` (as
    /// [`incr_with_ttl`](Self::incr_with_ttl) reported it). Nothing happens when that window
    /// is over or replaced, or its count is already zero: a refund never lowers another
    /// window's count.
    async fn refund(&self, key: &str, resets_at: SystemTime) -> Result<(), StoreError>;

    /// How many counters this process holds, for the `store_entries` gauge; `None` when they
    /// live elsewhere (Redis expires each with its window).
    fn held(&self) -> Option<usize> {
        None
    }
}
