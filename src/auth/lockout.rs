//! Login throttling: the guide's "account lockout after failed attempts", for API keys.
//!
//! Every failed login counts against the client IP and against the key's fingerprint (the
//! `usr_…` pseudonym, never the key). Past a threshold, further attempts on that IP or key are
//! refused *before* the upstream call, for a backoff that doubles with each further failure up
//! to a cap. This protects the Dust quota as much as the key (catalogue K9). A success clears the
//! key's counter, not the IP's: otherwise an attacker holding one valid key could interleave
//! successes to reset the counter of the IP they brute-force from.
//!
//! Shape: the decision lives in [`FailureCounter`], a small `Copy` value with pure methods and
//! wall-clock times (`SystemTime`, not `Instant`, so instances can share it). The counters live
//! behind [`FailureStore`]: two bounded maps in memory ([`MemoryFailureStore`]), or one Redis
//! hash per subject (`store::redis`), updated by a script that applies the same rule, so that
//! several instances lock a key out together. [`testing::login_throttle_contract`] holds both to
//! the same behaviour.
//!
//! Memory bound: each in-memory map holds at most [`MAX_TRACKED`] subjects; when full, the
//! subject idle the longest is evicted (Redis counters expire on their own). An attacker who spreads failures over more than that many subjects
//! within a window can flush a counter; the per-IP request limit in front of login bounds how
//! fast that can happen.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use async_trait::async_trait;

use crate::store::StoreError;

/// Failures of one key before it is locked.
pub const KEY_MAX_FAILURES: u32 = 5;
/// Failures from one IP before it is locked (several people may share an address).
pub const IP_MAX_FAILURES: u32 = 20;
/// A counter resets after this long without a failure.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Lock after the threshold is reached; each further failure doubles it.
pub const BASE_BACKOFF: Duration = Duration::from_secs(60);
/// Longest lock.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// Subjects tracked per map (IPs, keys); the idlest is evicted past it.
pub const MAX_TRACKED: usize = 10_000;

/// When a subject is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Limits {
    pub const PER_KEY: Self = Self {
        max_failures: KEY_MAX_FAILURES,
        window: FAILURE_WINDOW,
        base_backoff: BASE_BACKOFF,
        max_backoff: MAX_BACKOFF,
    };
    pub const PER_IP: Self = Self {
        max_failures: IP_MAX_FAILURES,
        ..Self::PER_KEY
    };

    /// How long a counter matters after its last failure: it may still lock (backoff) or still
    /// count (window). A store may forget it after that.
    #[must_use]
    pub fn retention(&self) -> Duration {
        self.window.max(self.max_backoff)
    }

    /// The lock after `failures` failures: none below the threshold, then doubling to the cap.
    fn backoff(&self, failures: u32) -> Option<Duration> {
        let extra = failures.checked_sub(self.max_failures)?;
        let factor = 1u32 << extra.min(16);
        Some(
            self.base_backoff
                .saturating_mul(factor)
                .min(self.max_backoff),
        )
    }
}

/// Recent failures of one subject (an IP or a key fingerprint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCounter {
    pub failures: u32,
    pub last_failure: SystemTime,
}

impl FailureCounter {
    /// Whether the window has passed since the last failure, so the counter no longer counts.
    #[must_use]
    pub fn is_stale(&self, limits: &Limits, now: SystemTime) -> bool {
        now.duration_since(self.last_failure)
            .is_ok_and(|idle| idle > limits.window)
    }

    /// How long the subject must still wait, if it is locked at `now`.
    #[must_use]
    pub fn retry_after(&self, limits: &Limits, now: SystemTime) -> Option<Duration> {
        let until = self.last_failure + limits.backoff(self.failures)?;
        until.duration_since(now).ok().filter(|d| !d.is_zero())
    }

    /// The counter after one more failure at `now`.
    #[must_use]
    pub fn after_failure(previous: Option<Self>, limits: &Limits, now: SystemTime) -> Self {
        let failures = previous
            .filter(|c| !c.is_stale(limits, now))
            .map_or(0, |c| c.failures);
        Self {
            failures: failures.saturating_add(1),
            last_failure: now,
        }
    }
}

/// Whose failures a counter holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A client address.
    Ip(IpAddr),
    /// A key fingerprint (`usr_…`).
    Key(&'a str),
}

/// Where the failure counters live: process memory ([`MemoryFailureStore`]) or Redis
/// (`store::redis`), so that several instances lock out together.
#[async_trait]
pub trait FailureStore: Send + Sync + 'static {
    /// The counter of `subject`, if it has one.
    async fn get(&self, subject: Subject<'_>) -> Result<Option<FailureCounter>, StoreError>;

    /// Adds one failure at `now`, atomically: the stored counter becomes
    /// [`FailureCounter::after_failure`] of itself, and is returned.
    async fn add_failure(
        &self,
        subject: Subject<'_>,
        limits: &Limits,
        now: SystemTime,
    ) -> Result<FailureCounter, StoreError>;

    /// Forgets the counter of `subject`.
    async fn clear(&self, subject: Subject<'_>) -> Result<(), StoreError>;
}

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
    by_ip: Tracker<IpAddr>,
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

/// Failed-login throttling per client IP and per key fingerprint. A store failure is reported
/// to the caller, which refuses the login (fail closed) rather than skip the check.
#[derive(Clone)]
pub struct LoginThrottle {
    store: Arc<dyn FailureStore>,
    per_ip: Limits,
    per_key: Limits,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("per_ip", &self.per_ip)
            .field("per_key", &self.per_key)
            .finish_non_exhaustive()
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::with_store(Arc::new(MemoryFailureStore::new()))
    }
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn FailureStore>, per_ip: Limits, per_key: Limits) -> Self {
        Self {
            store,
            per_ip,
            per_key,
        }
    }

    /// The default limits over `store`.
    pub fn with_store(store: Arc<dyn FailureStore>) -> Self {
        Self::new(store, Limits::PER_IP, Limits::PER_KEY)
    }

    /// Before the upstream call: `Some(retry_after)` if the IP or the key is locked.
    pub async fn check(
        &self,
        ip: IpAddr,
        key_fp: &str,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        let by_ip = self.store.get(Subject::Ip(ip)).await?;
        let by_key = self.store.get(Subject::Key(key_fp)).await?;
        Ok([
            by_ip.and_then(|c| c.retry_after(&self.per_ip, now)),
            by_key.and_then(|c| c.retry_after(&self.per_key, now)),
        ]
        .into_iter()
        .flatten()
        .max())
    }

    /// After Dust refused the key (not after a Dust outage: that is not the caller's failure).
    pub async fn record_failure(
        &self,
        ip: IpAddr,
        key_fp: &str,
        now: SystemTime,
    ) -> Result<(), StoreError> {
        self.store
            .add_failure(Subject::Ip(ip), &self.per_ip, now)
            .await?;
        self.store
            .add_failure(Subject::Key(key_fp), &self.per_key, now)
            .await?;
        Ok(())
    }

    /// After a successful login: clears the key's counter (the IP's stays).
    pub async fn record_success(&self, key_fp: &str) -> Result<(), StoreError> {
        self.store.clear(Subject::Key(key_fp)).await
    }
}

/// The behaviour every [`FailureStore`] gives [`LoginThrottle`]; each backend's tests call it.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use std::{
        net::{IpAddr, Ipv4Addr},
        sync::Arc,
        time::{Duration, SystemTime},
    };

    use super::{FAILURE_WINDOW, FailureStore, IP_MAX_FAILURES, KEY_MAX_FAILURES, LoginThrottle};

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    /// A fresh address block per run, so a shared backend can run the suite alongside others.
    fn ips() -> impl Fn(u8) -> IpAddr {
        let [a, b] = rand::random::<[u8; 2]>();
        move |n| IpAddr::V4(Ipv4Addr::new(10, a, b, n))
    }

    fn key(run: &str, name: &str) -> String {
        format!("usr_{run}_{name}")
    }

    /// Checks lock-out, doubling backoff, success clearing the key only, the quiet-window reset
    /// and a clock going backwards.
    ///
    /// # Panics
    /// On any departure from the contract.
    pub async fn login_throttle_contract(store: Arc<dyn FailureStore>) {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let t = LoginThrottle::with_store(store);
        a_key_locks_and_backs_off(&t, &run).await;
        success_clears_the_key_but_not_the_ip(&t, &run).await;
        counters_reset_after_a_quiet_window(&t, &run).await;
        a_clock_going_backwards_does_not_unlock_early(&t, &run).await;
    }

    async fn a_key_locks_and_backs_off(t: &LoginThrottle, run: &str) {
        let ip = ips();
        let usr_a = key(run, "a");
        let usr_b = key(run, "b");
        let check = |ip, k: &str, secs| {
            let k = k.to_owned();
            async move { t.check(ip, &k, at(secs)).await.unwrap() }
        };
        for i in 0..KEY_MAX_FAILURES - 1 {
            t.record_failure(ip(1), &usr_a, at(u64::from(i)))
                .await
                .unwrap();
            assert_eq!(check(ip(1), &usr_a, u64::from(i)).await, None);
        }
        t.record_failure(ip(1), &usr_a, at(10)).await.unwrap();
        assert_eq!(
            check(ip(1), &usr_a, 10).await,
            Some(Duration::from_secs(60))
        );
        // Another IP is refused for the same key; the key's neighbours are not.
        assert_eq!(
            check(ip(2), &usr_a, 40).await,
            Some(Duration::from_secs(30))
        );
        assert_eq!(check(ip(1), &usr_b, 40).await, None);
        assert_eq!(check(ip(1), &usr_a, 70).await, None);
        // Each failure after a lock doubles it: 2, 4, 8 minutes, then the 15-minute cap.
        let mut now = 70;
        for expected in [120, 240, 480, 900, 900] {
            t.record_failure(ip(1), &usr_a, at(now)).await.unwrap();
            assert_eq!(
                check(ip(1), &usr_a, now).await,
                Some(Duration::from_secs(expected))
            );
            now += expected;
            assert_eq!(check(ip(1), &usr_a, now).await, None);
        }
    }

    async fn success_clears_the_key_but_not_the_ip(t: &LoginThrottle, run: &str) {
        let ip = ips();
        for i in 0..IP_MAX_FAILURES {
            t.record_failure(ip(1), &key(run, &format!("ip{i}")), at(0))
                .await
                .unwrap();
        }
        let fresh = key(run, "new");
        assert!(
            t.check(ip(1), &fresh, at(0)).await.unwrap().is_some(),
            "the IP is locked"
        );
        assert_eq!(t.check(ip(2), &fresh, at(0)).await.unwrap(), None);
        let usr_k = key(run, "k");
        for _ in 0..KEY_MAX_FAILURES {
            t.record_failure(ip(3), &usr_k, at(0)).await.unwrap();
        }
        assert!(t.check(ip(4), &usr_k, at(1)).await.unwrap().is_some());
        t.record_success(&usr_k).await.unwrap();
        assert_eq!(t.check(ip(4), &usr_k, at(1)).await.unwrap(), None);
        assert!(
            t.check(ip(1), &usr_k, at(1)).await.unwrap().is_some(),
            "the IP stays locked"
        );
    }

    async fn counters_reset_after_a_quiet_window(t: &LoginThrottle, run: &str) {
        let ip = ips();
        let usr = key(run, "quiet");
        for i in 0..KEY_MAX_FAILURES - 1 {
            t.record_failure(ip(1), &usr, at(u64::from(i)))
                .await
                .unwrap();
        }
        let later = FAILURE_WINDOW.as_secs() + 10;
        t.record_failure(ip(1), &usr, at(later)).await.unwrap();
        assert_eq!(t.check(ip(1), &usr, at(later)).await.unwrap(), None);
    }

    async fn a_clock_going_backwards_does_not_unlock_early(t: &LoginThrottle, run: &str) {
        let ip = ips();
        let usr = key(run, "back");
        for _ in 0..KEY_MAX_FAILURES {
            t.record_failure(ip(1), &usr, at(100)).await.unwrap();
        }
        assert_eq!(
            t.check(ip(1), &usr, at(50)).await.unwrap(),
            Some(Duration::from_secs(110))
        );
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_contract() {
        testing::login_throttle_contract(Arc::new(MemoryFailureStore::new())).await;
    }

    #[tokio::test]
    async fn memory_is_bounded() {
        let store = Arc::new(MemoryFailureStore::new());
        let t = LoginThrottle::with_store(store.clone());
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for i in 0..MAX_TRACKED + 50 {
            t.record_failure(ip, &format!("usr_{i}"), now)
                .await
                .unwrap();
        }
        assert_eq!(store.tracked(), (1, MAX_TRACKED));
    }
}
