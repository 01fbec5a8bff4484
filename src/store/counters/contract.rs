//! The contract every [`CounterStore`] passes, one case per function. Stamp it for a backend
//! with [`counter_store_contract_tests!`](crate::counter_store_contract_tests): memory in
//! [`super::memory`]'s unit tests, Redis in `tests/all/shared_state.rs`.
//!
//! Keys are unique per case, so a shared backend (Redis) can run the cases alongside other
//! data; times are fixed whole seconds, so a backend that stores seconds compares exactly.

use std::time::{Duration, SystemTime};

use super::CounterStore;

/// The window every case uses unless it says otherwise.
const WINDOW: Duration = Duration::from_secs(60);

/// A fixed start time (whole seconds).
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

/// A fresh key namer for one case.
fn keys() -> impl Fn(&str) -> String {
    let run = uuid::Uuid::new_v4().simple().to_string();
    move |name| format!("contract:{run}:{name}")
}

/// A new key opens a window at `now`; later increments in it share its reset time.
pub async fn a_new_key_opens_a_window_at_now(store: &dyn CounterStore) {
    let key = keys()("a");
    let first = store.incr_with_ttl(&key, WINDOW, t0()).await.unwrap();
    assert_eq!(first.count, 1, "first increment");
    assert_eq!(first.resets_at, t0() + WINDOW, "window opens at now");
    let second = store.incr_with_ttl(&key, WINDOW, at(30)).await.unwrap();
    assert_eq!(second.count, 2, "second increment");
    assert_eq!(second.resets_at, t0() + WINDOW, "same window");
    let last = store.incr_with_ttl(&key, WINDOW, at(59)).await.unwrap();
    assert_eq!((last.count, last.resets_at), (3, t0() + WINDOW));
}

/// Keys are independent: another key opens its own window.
pub async fn keys_are_independent(store: &dyn CounterStore) {
    let key = keys();
    store.incr_with_ttl(&key("a"), WINDOW, t0()).await.unwrap();
    store
        .incr_with_ttl(&key("a"), WINDOW, at(30))
        .await
        .unwrap();
    let other = store
        .incr_with_ttl(&key("b"), WINDOW, at(59))
        .await
        .unwrap();
    assert_eq!(other.count, 1, "another key");
    assert_eq!(other.resets_at, at(59) + WINDOW);
}

/// At the reset time the window is over: the count starts again, and a long idle key too.
pub async fn the_count_restarts_at_the_reset_time(store: &dyn CounterStore) {
    let key = keys()("a");
    for secs in [0, 30, 59] {
        store.incr_with_ttl(&key, WINDOW, at(secs)).await.unwrap();
    }
    let reset = store.incr_with_ttl(&key, WINDOW, at(60)).await.unwrap();
    assert_eq!(reset.count, 1, "new window at resets_at");
    assert_eq!(reset.resets_at, at(60) + WINDOW);
    let much_later = store.incr_with_ttl(&key, WINDOW, at(10_000)).await.unwrap();
    assert_eq!(much_later.count, 1, "long idle key");
}

/// Each key keeps the window it was opened with.
pub async fn each_key_keeps_its_own_window(store: &dyn CounterStore) {
    let key = keys()("short");
    let short = Duration::from_secs(1);
    let s = store.incr_with_ttl(&key, short, t0()).await.unwrap();
    assert_eq!(s.resets_at, t0() + short);
    let s = store.incr_with_ttl(&key, short, at(1)).await.unwrap();
    assert_eq!(s.count, 1, "one-second window over");
}

/// Concurrent increments of one key: exactly 1..=N, no lost or repeated count.
pub async fn concurrent_increments_are_atomic(store: &dyn CounterStore) {
    const N: u64 = 150;
    let burst = keys()("burst");
    let counts =
        futures::future::join_all((0..N).map(|_| store.incr_with_ttl(&burst, WINDOW, at(5)))).await;
    let mut counts: Vec<u64> = counts.into_iter().map(|c| c.unwrap().count).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=N).collect::<Vec<_>>(), "atomic increments");
}

/// A refund takes back one increment of the window it names, and never reaches another
/// window or goes below zero.
pub async fn a_refund_takes_back_one_increment_of_its_window(store: &dyn CounterStore) {
    let key = keys()("a");
    store.incr_with_ttl(&key, WINDOW, t0()).await.unwrap();
    let second = store.incr_with_ttl(&key, WINDOW, at(10)).await.unwrap();
    assert_eq!(second.count, 2);
    store.refund(&key, second.resets_at).await.unwrap();
    let third = store.incr_with_ttl(&key, WINDOW, at(20)).await.unwrap();
    assert_eq!(third.count, 2, "the refunded increment is taken back");
    // A refund of an earlier window does nothing to the current one.
    let next = store.incr_with_ttl(&key, WINDOW, at(60)).await.unwrap();
    assert_eq!(next.count, 1, "new window");
    store.refund(&key, third.resets_at).await.unwrap();
    let after = store.incr_with_ttl(&key, WINDOW, at(61)).await.unwrap();
    assert_eq!(after.count, 2, "a stale refund reaches no other window");
    // Never below zero; a key never counted is left alone.
    for _ in 0..3 {
        store.refund(&key, after.resets_at).await.unwrap();
    }
    let again = store.incr_with_ttl(&key, WINDOW, at(62)).await.unwrap();
    assert_eq!((again.count, again.resets_at), (1, after.resets_at));
    store
        .refund(&keys()("never"), after.resets_at)
        .await
        .unwrap();
}

/// One `#[tokio::test]` per case of this suite, for the [`CounterStore`] the argument builds
/// (see [`store_contract_tests!`](crate::store_contract_tests) for the forms it takes).
#[macro_export]
macro_rules! counter_store_contract_tests {
    ($($backend:tt)+) => {
        $crate::store_contract_tests!(
            [$crate::store::counters::contract]
            [
                a_new_key_opens_a_window_at_now,
                keys_are_independent,
                the_count_restarts_at_the_reset_time,
                each_key_keeps_its_own_window,
                concurrent_increments_are_atomic,
                a_refund_takes_back_one_increment_of_its_window,
            ]
            $($backend)+
        );
    };
}
