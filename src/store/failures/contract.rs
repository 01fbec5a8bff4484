//! The contract every [`FailureStore`] passes, one case per function. Stamp it for a backend
//! with [`failure_store_contract_tests!`](crate::failure_store_contract_tests): memory in
//! [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`.
//!
//! The cases use limits of their own (the policy's numbers are `auth::lockout`'s) and a fresh
//! address block and fresh key fingerprints per case, so a shared backend can run them alongside
//! other data. Times are whole seconds from a fixed start: the store judges nothing by its own
//! clock.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, SystemTime},
};

use ipnet::IpNet;

use super::{FailureCounter, FailureStore, Limits, Subject};

/// Five failures lock for a minute, doubling to fifteen; a quarter of an hour of quiet resets.
const LIMITS: Limits = Limits {
    max_failures: 5,
    window: Duration::from_secs(15 * 60),
    base_backoff: Duration::from_secs(60),
    max_backoff: Duration::from_secs(15 * 60),
};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

/// A fresh address block for one case.
fn ips() -> impl Fn(u8) -> IpNet {
    let [a, b] = rand::random::<[u8; 2]>();
    move |n| IpNet::from(IpAddr::V4(Ipv4Addr::new(10, a, b, n)))
}

/// A fresh key fingerprint namer for one case.
fn keys() -> impl Fn(&str) -> String {
    let run = uuid::Uuid::new_v4().simple().to_string();
    move |name| format!("usr_{run}_{name}")
}

async fn fail(store: &dyn FailureStore, subject: Subject<'_>, secs: u64) -> FailureCounter {
    store.add_failure(subject, &LIMITS, at(secs)).await.unwrap()
}

/// No counter before a failure; the first one starts it at `now`, and it reads back.
pub async fn a_first_failure_starts_a_counter(store: &dyn FailureStore) {
    let key = keys()("a");
    assert_eq!(store.get(Subject::Key(&key)).await.unwrap(), None);
    let first = fail(store, Subject::Key(&key), 10).await;
    let expected = FailureCounter {
        failures: 1,
        last_failure: at(10),
    };
    assert_eq!(first, expected);
    assert_eq!(store.get(Subject::Key(&key)).await.unwrap(), Some(expected));
}

/// Failures within the window add up; past the threshold the subject is locked for the base
/// backoff from its last failure.
pub async fn failures_add_up_and_lock(store: &dyn FailureStore) {
    let key = keys()("a");
    for i in 0..LIMITS.max_failures - 1 {
        let counter = fail(store, Subject::Key(&key), u64::from(i)).await;
        assert_eq!(counter.failures, i + 1);
        assert_eq!(counter.retry_after(&LIMITS, at(u64::from(i))), None);
    }
    let counter = fail(store, Subject::Key(&key), 10).await;
    assert_eq!(counter.failures, LIMITS.max_failures);
    let stored = store.get(Subject::Key(&key)).await.unwrap().unwrap();
    assert_eq!(stored, counter);
    assert_eq!(
        stored.retry_after(&LIMITS, at(10)),
        Some(Duration::from_secs(60))
    );
    assert_eq!(
        stored.retry_after(&LIMITS, at(40)),
        Some(Duration::from_secs(30))
    );
    assert_eq!(stored.retry_after(&LIMITS, at(70)), None);
}

/// Each failure after a lock doubles it: 2, 4, 8 minutes, then the 15-minute cap.
pub async fn the_backoff_doubles_to_its_cap(store: &dyn FailureStore) {
    let key = keys()("a");
    for i in 0..LIMITS.max_failures {
        fail(store, Subject::Key(&key), u64::from(i)).await;
    }
    let mut now = 70;
    for expected in [120, 240, 480, 900, 900] {
        let counter = fail(store, Subject::Key(&key), now).await;
        assert_eq!(
            counter.retry_after(&LIMITS, at(now)),
            Some(Duration::from_secs(expected))
        );
        now += expected;
        let stored = store.get(Subject::Key(&key)).await.unwrap().unwrap();
        assert_eq!(stored.retry_after(&LIMITS, at(now)), None);
    }
}

/// A counter idle for longer than the window starts again from zero.
pub async fn a_quiet_window_restarts_the_count(store: &dyn FailureStore) {
    let key = keys()("quiet");
    for i in 0..LIMITS.max_failures - 1 {
        fail(store, Subject::Key(&key), u64::from(i)).await;
    }
    let later = LIMITS.window.as_secs() + 10;
    let counter = fail(store, Subject::Key(&key), later).await;
    assert_eq!(counter.failures, 1);
    assert_eq!(counter.retry_after(&LIMITS, at(later)), None);
}

/// IPs and keys count apart, each subject on its own (an IP and a key spelled alike too).
pub async fn subjects_are_independent(store: &dyn FailureStore) {
    let (ip, key) = (ips(), keys());
    let (usr_a, usr_b) = (key("a"), key("b"));
    let ip_text = ip(1).to_string();
    for _ in 0..3 {
        fail(store, Subject::Ip(ip(1)), 0).await;
    }
    fail(store, Subject::Key(&usr_a), 0).await;
    let count = |subject| async move {
        store
            .get(subject)
            .await
            .unwrap()
            .map_or(0, |c: FailureCounter| c.failures)
    };
    assert_eq!(count(Subject::Ip(ip(1))).await, 3);
    assert_eq!(count(Subject::Ip(ip(2))).await, 0);
    assert_eq!(count(Subject::Key(&usr_a)).await, 1);
    assert_eq!(count(Subject::Key(&usr_b)).await, 0);
    assert_eq!(count(Subject::Key(&ip_text)).await, 0, "an IP is not a key");
}

/// Clearing forgets one subject's counter and nothing else.
pub async fn clear_forgets_one_subject_only(store: &dyn FailureStore) {
    let (ip, key) = (ips(), keys());
    let usr = key("k");
    for _ in 0..LIMITS.max_failures {
        fail(store, Subject::Ip(ip(3)), 0).await;
        fail(store, Subject::Key(&usr), 0).await;
    }
    store.clear(Subject::Key(&usr)).await.unwrap();
    assert_eq!(store.get(Subject::Key(&usr)).await.unwrap(), None);
    assert_eq!(
        store
            .get(Subject::Ip(ip(3)))
            .await
            .unwrap()
            .map(|c| c.failures),
        Some(LIMITS.max_failures),
        "the IP's counter stays"
    );
    store.clear(Subject::Key(&key("never"))).await.unwrap();
    let again = fail(store, Subject::Key(&usr), 1).await;
    assert_eq!(again.failures, 1, "a cleared counter starts again");
}

/// A clock going backwards does not unlock early: the lock runs from the last failure.
pub async fn a_clock_going_backwards_does_not_unlock_early(store: &dyn FailureStore) {
    let usr = keys()("back");
    for _ in 0..LIMITS.max_failures {
        fail(store, Subject::Key(&usr), 100).await;
    }
    let stored = store.get(Subject::Key(&usr)).await.unwrap().unwrap();
    assert_eq!(
        stored.retry_after(&LIMITS, at(50)),
        Some(Duration::from_secs(110))
    );
}

/// Concurrent failures of one subject: exactly 1..=N, none lost to a race.
pub async fn concurrent_failures_are_atomic(store: &dyn FailureStore) {
    const N: u32 = 100;
    let usr = keys()("burst");
    let counters = futures::future::join_all(
        (0..N).map(|_| store.add_failure(Subject::Key(&usr), &LIMITS, at(5))),
    )
    .await;
    let mut counts: Vec<u32> = counters.into_iter().map(|c| c.unwrap().failures).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=N).collect::<Vec<_>>());
}

/// One `#[tokio::test]` per case of this suite, for the [`FailureStore`] the argument builds
/// (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
#[macro_export]
macro_rules! failure_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::failures::contract]
            [
                a_first_failure_starts_a_counter,
                failures_add_up_and_lock,
                the_backoff_doubles_to_its_cap,
                a_quiet_window_restarts_the_count,
                subjects_are_independent,
                clear_forgets_one_subject_only,
                a_clock_going_backwards_does_not_unlock_early,
                concurrent_failures_are_atomic,
            ]
            $($backend)+
        );
    };
}
