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
//! wall-clock times (`SystemTime`, not `Instant`, so instances can share it). [`LoginThrottle`]
//! only keeps counters in two bounded maps. A Redis backend keeps the same counters (one hash
//! per subject, expiring after the window) and calls the same methods; only the map changes.
//!
//! Memory bound: each map holds at most [`MAX_TRACKED`] subjects; when full, the subject idle
//! the longest is evicted. An attacker who spreads failures over more than that many subjects
//! within a window can flush a counter; the per-IP request limit in front of login bounds how
//! fast that can happen.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, SystemTime},
};

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

/// Counters of one kind of subject, bounded.
#[derive(Debug)]
struct Tracker<K> {
    limits: Limits,
    counters: Mutex<HashMap<K, FailureCounter>>,
}

impl<K: Eq + Hash + Clone> Tracker<K> {
    fn new(limits: Limits) -> Self {
        Self {
            limits,
            counters: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, FailureCounter>> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn retry_after(&self, subject: &K, now: SystemTime) -> Option<Duration> {
        self.lock().get(subject)?.retry_after(&self.limits, now)
    }

    fn record_failure(&self, subject: K, now: SystemTime) {
        let mut map = self.lock();
        if map.len() >= MAX_TRACKED && !map.contains_key(&subject) {
            map.retain(|_, c| !c.is_stale(&self.limits, now));
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
        let next = FailureCounter::after_failure(map.get(&subject).copied(), &self.limits, now);
        map.insert(subject, next);
    }

    fn clear(&self, subject: &K) {
        self.lock().remove(subject);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Failed-login throttling per client IP and per key fingerprint, in process memory.
#[derive(Debug)]
pub struct LoginThrottle {
    by_ip: Tracker<IpAddr>,
    by_key: Tracker<String>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(Limits::PER_IP, Limits::PER_KEY)
    }
}

impl LoginThrottle {
    pub fn new(per_ip: Limits, per_key: Limits) -> Self {
        Self {
            by_ip: Tracker::new(per_ip),
            by_key: Tracker::new(per_key),
        }
    }

    /// Before the upstream call: `Err(retry_after)` if the IP or the key is locked.
    pub fn check(&self, ip: IpAddr, key_fp: &str, now: SystemTime) -> Result<(), Duration> {
        let wait = [
            self.by_ip.retry_after(&ip, now),
            self.by_key.retry_after(&key_fp.to_owned(), now),
        ]
        .into_iter()
        .flatten()
        .max();
        wait.map_or(Ok(()), Err)
    }

    /// After Dust refused the key (not after a Dust outage: that is not the caller's failure).
    pub fn record_failure(&self, ip: IpAddr, key_fp: &str, now: SystemTime) {
        self.by_ip.record_failure(ip, now);
        self.by_key.record_failure(key_fp.to_owned(), now);
    }

    /// After a successful login: clears the key's counter (the IP's stays).
    pub fn record_success(&self, key_fp: &str) {
        self.by_key.clear(&key_fp.to_owned());
    }

    /// Subjects tracked (IPs, keys), for metrics and tests.
    #[must_use]
    pub fn tracked(&self) -> (usize, usize) {
        (self.by_ip.len(), self.by_key.len())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const T0: Duration = Duration::from_secs(1_800_000_000);

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + T0 + Duration::from_secs(secs)
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))
    }

    #[test]
    fn a_key_locks_after_five_failures_and_backs_off_doubling_to_the_cap() {
        let t = LoginThrottle::default();
        for i in 0..KEY_MAX_FAILURES - 1 {
            t.record_failure(ip(1), "usr_a", at(u64::from(i)));
            assert_eq!(t.check(ip(1), "usr_a", at(u64::from(i))), Ok(()));
        }
        t.record_failure(ip(1), "usr_a", at(10));
        assert_eq!(
            t.check(ip(1), "usr_a", at(10)),
            Err(Duration::from_secs(60))
        );
        // Another IP is refused for the same key; the key's neighbours are not.
        assert_eq!(
            t.check(ip(2), "usr_a", at(40)),
            Err(Duration::from_secs(30))
        );
        assert_eq!(t.check(ip(1), "usr_b", at(40)), Ok(()));
        assert_eq!(t.check(ip(1), "usr_a", at(70)), Ok(()));
        // Each failure after a lock doubles it: 2, 4, 8 minutes, then the 15-minute cap.
        let mut now = 70;
        for expected in [120, 240, 480, 900, 900] {
            t.record_failure(ip(1), "usr_a", at(now));
            assert_eq!(
                t.check(ip(1), "usr_a", at(now)),
                Err(Duration::from_secs(expected))
            );
            now += expected;
            assert_eq!(t.check(ip(1), "usr_a", at(now)), Ok(()));
        }
    }

    #[test]
    fn success_clears_the_key_but_not_the_ip() {
        let t = LoginThrottle::default();
        for i in 0..IP_MAX_FAILURES {
            t.record_failure(ip(1), &format!("usr_{i}"), at(0));
        }
        assert!(
            t.check(ip(1), "usr_new", at(0)).is_err(),
            "the IP is locked"
        );
        assert_eq!(t.check(ip(2), "usr_new", at(0)), Ok(()));
        for _ in 0..KEY_MAX_FAILURES {
            t.record_failure(ip(3), "usr_k", at(0));
        }
        assert!(t.check(ip(4), "usr_k", at(1)).is_err());
        t.record_success("usr_k");
        assert_eq!(t.check(ip(4), "usr_k", at(1)), Ok(()));
        assert!(
            t.check(ip(1), "usr_k", at(1)).is_err(),
            "the IP stays locked"
        );
    }

    #[test]
    fn counters_reset_after_a_quiet_window() {
        let t = LoginThrottle::default();
        for i in 0..KEY_MAX_FAILURES - 1 {
            t.record_failure(ip(1), "usr_a", at(u64::from(i)));
        }
        let later = FAILURE_WINDOW.as_secs() + 10;
        t.record_failure(ip(1), "usr_a", at(later));
        assert_eq!(t.check(ip(1), "usr_a", at(later)), Ok(()));
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::default();
        for i in 0..MAX_TRACKED + 50 {
            t.record_failure(ip(1), &format!("usr_{i}"), at(0));
        }
        let (ips, keys) = t.tracked();
        assert_eq!((ips, keys), (1, MAX_TRACKED));
    }

    #[test]
    fn a_clock_going_backwards_does_not_panic_or_unlock_early() {
        let t = LoginThrottle::default();
        for _ in 0..KEY_MAX_FAILURES {
            t.record_failure(ip(1), "usr_a", at(100));
        }
        assert_eq!(
            t.check(ip(1), "usr_a", at(50)),
            Err(Duration::from_secs(110))
        );
    }
}
