//! Login throttling: the guide's "account lockout after failed attempts", for API keys.
//!
//! Every failed login counts against the client's address block and against the key's
//! fingerprint (the `usr_…` pseudonym, never the key). The block is
//! [`crate::http::client_ip::address_block`], the one the rate limiter keys on: an IPv4 address,
//! or an IPv6 address's /64, since one host holds a whole /64 and could otherwise give every
//! guess a fresh address and never reach the per-address threshold. Past a threshold, further attempts on that IP or key are
//! refused *before* the upstream call, for a backoff that doubles with each further failure up
//! to a cap. This protects the Dust quota as much as the key (catalogue K9). A success clears the
//! key's counter, not the IP's: otherwise an attacker holding one valid key could interleave
//! successes to reset the counter of the IP they brute-force from.
//!
//! Shape: this module holds the policy: the numbers ([`PER_KEY`], [`PER_IP`]) and
//! [`LoginThrottle`], which decides when to check, count and clear. The counters and the rules
//! of a counter (a quiet window resets it, the backoff doubles to a cap) live in
//! [`crate::store::failures`], behind [`FailureStore`], in memory or in Redis, so that several
//! instances lock a key out together. [`testing::login_throttle_contract`] runs this policy over
//! either backend; the store's own suite is [`crate::store::failures::contract`].

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, SystemTime},
};

pub use crate::store::failures::{
    FailureCounter, FailureStore, Limits, MemoryFailureStore, Subject,
};
use crate::{http::client_ip::address_block, store::StoreError};

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
/// The limits of one key fingerprint.
pub const PER_KEY: Limits = Limits {
    max_failures: KEY_MAX_FAILURES,
    window: FAILURE_WINDOW,
    base_backoff: BASE_BACKOFF,
    max_backoff: MAX_BACKOFF,
};

/// The limits of one client IP (several people may share an address).
pub const PER_IP: Limits = Limits {
    max_failures: IP_MAX_FAILURES,
    ..PER_KEY
};

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
        Self::new(store, PER_IP, PER_KEY)
    }

    /// Before the upstream call: `Some(retry_after)` if the IP or the key is locked.
    pub async fn check(
        &self,
        ip: IpAddr,
        key_fp: &str,
        now: SystemTime,
    ) -> Result<Option<Duration>, StoreError> {
        let by_ip = self.store.get(Subject::Ip(address_block(ip))).await?;
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
            .add_failure(Subject::Ip(address_block(ip)), &self.per_ip, now)
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
        ipv6_neighbours_in_one_64_share_a_count(&t, &run).await;
    }

    /// L5: addresses of one IPv6 /64 (one host's allotment) count as one client, as in the rate
    /// limiter; the next /64 is someone else.
    async fn ipv6_neighbours_in_one_64_share_a_count(t: &LoginThrottle, run: &str) {
        let [a, b] = rand::random::<[u16; 2]>();
        let in_block = |host: u64| -> IpAddr {
            let prefix = (0x2001_0db8_u128 << 96) | (u128::from(a) << 80) | (u128::from(b) << 64);
            IpAddr::V6(std::net::Ipv6Addr::from(prefix | u128::from(host)))
        };
        let next_block = |host: u64| -> IpAddr {
            match in_block(host) {
                IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) + (1 << 64))),
                v4 => v4,
            }
        };
        // Each failure from a fresh address of the block, each for a fresh key.
        for i in 0..IP_MAX_FAILURES {
            let host = u64::from(i) * 0x0101_0101_0101 + 1;
            t.record_failure(in_block(host), &key(run, &format!("v6_{i}")), at(0))
                .await
                .unwrap();
        }
        let fresh = key(run, "v6_fresh");
        assert!(
            t.check(in_block(0xdead_beef), &fresh, at(1))
                .await
                .unwrap()
                .is_some(),
            "an unused address of the same /64 is locked"
        );
        assert_eq!(
            t.check(next_block(1), &fresh, at(1)).await.unwrap(),
            None,
            "the next /64 is another client"
        );
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
    use super::*;

    #[tokio::test]
    async fn the_policy_holds_over_the_memory_store() {
        testing::login_throttle_contract(Arc::new(MemoryFailureStore::new())).await;
    }
}
