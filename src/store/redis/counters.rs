//! Fixed-window rate-limit counters in Redis: one hash per key (`c` count, `r` window end in
//! milliseconds), updated by one script, so increments from every instance are atomic and a
//! burst split across instances is cut at the limit, not at N times it (catalogue R8).
//!
//! The window end is judged by the caller's clock (`now`), like the memory store; the key's
//! Redis expiry is the rest of the window, so idle keys clean themselves up.

use std::{
    sync::LazyLock,
    time::{Duration, SystemTime},
};

use async_trait::async_trait;
use redis::Script;

use super::{RedisStore, epoch_ms, from_epoch_ms};
use crate::store::{CounterStore, StoreError, WindowCount};

/// KEYS: the counter. ARGV: now (ms), window (ms). Returns {count, window end (ms)}.
static INCR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local resets = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
if resets > now then
  return {redis.call('HINCRBY', KEYS[1], 'c', 1), resets}
end
resets = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'c', 1, 'r', resets)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, resets}
",
    )
});

/// Takes back one increment of the window ending at `ARGV[1]` (ms), if that window is still the
/// key's and its count is above zero. KEYS: the counter.
static REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if tonumber(redis.call('HGET', KEYS[1], 'r') or '0') == tonumber(ARGV[1])
  and tonumber(redis.call('HGET', KEYS[1], 'c') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'c', -1)
end
return 1
",
    )
});

#[async_trait]
impl CounterStore for RedisStore {
    async fn incr_with_ttl(
        &self,
        key: &str,
        window: Duration,
        now: SystemTime,
    ) -> Result<WindowCount, StoreError> {
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut conn = self.conn();
        let mut invocation = INCR.prepare_invoke();
        invocation
            .key(self.key("rl", &[key], &[]))
            .arg(epoch_ms(now))
            .arg(window_ms);
        let (count, resets_at): (u64, i64) = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(WindowCount {
            count,
            resets_at: from_epoch_ms(resets_at),
        })
    }

    async fn refund(&self, key: &str, resets_at: SystemTime) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let mut invocation = REFUND.prepare_invoke();
        invocation
            .key(self.key("rl", &[key], &[]))
            .arg(epoch_ms(resets_at));
        self.run(async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }
}
