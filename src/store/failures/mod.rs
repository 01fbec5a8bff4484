//! Failed-login counters: [`FailureStore`], the record it keeps per subject
//! ([`FailureCounter`]) and the rules that record follows ([`Limits`]). The throttling policy
//! that reads them (how many failures, which subjects, when to check) is
//! `auth::lockout::LoginThrottle`'s; the store only counts.
//!
//! A counter holds wall-clock times (`SystemTime`, not `Instant`), so instances can share it,
//! and every time comes from the caller (`now`, the app's clock): tests cross windows and
//! backoffs without sleeping and every backend judges them by the same clock.
//!
//! Two backends keep the counters: two bounded maps in memory ([`memory`]), or one Redis hash
//! per subject (`store::redis::failures`), updated by a script that applies
//! [`FailureCounter::after_failure`]'s rule on the server, so several instances lock a key out
//! together. [`contract`] holds both to the same behaviour.

#[cfg(any(test, feature = "test-support"))]
pub mod contract;
pub mod memory;

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ipnet::IpNet;

pub use memory::{MAX_TRACKED, MemoryFailureStore};

use super::StoreError;

/// When a subject is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_failures: u32,
    pub window: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Limits {
    /// How long a counter matters after its last failure: it may still lock (backoff) or still
    /// count (window). A store may forget it after that.
    #[must_use]
    pub fn retention(&self) -> Duration {
        self.window.max(self.max_backoff)
    }

    /// The lock after `failures` failures: none below the threshold, then doubling to the cap.
    #[must_use]
    pub fn backoff(&self, failures: u32) -> Option<Duration> {
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
    /// A client's address block: what `http::client_ip::address_block` gives (the address for
    /// IPv4, the /64 for IPv6), so one host cannot rotate through its /64 to reset its count.
    Ip(IpNet),
    /// A key fingerprint (`usr_…`).
    Key(&'a str),
}

/// Where the failure counters live: process memory ([`MemoryFailureStore`]) or Redis
/// (`store::redis::failures`), so that several instances lock out together.
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
