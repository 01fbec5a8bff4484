//! Failed-login counters in Redis: one hash per subject (`f` failures, `t` last failure in
//! milliseconds), so a key locked out on one instance is locked out on all.
//!
//! The script applies [`FailureCounter::after_failure`]'s rule on the server (a counter idle for
//! longer than the window starts again from zero), atomically; the failure store contract suite
//! (`store::failures::contract`) runs against both backends, so the two cannot drift apart.

use std::{sync::LazyLock, time::SystemTime};

use async_trait::async_trait;
use redis::Script;

use super::{RedisStore, epoch_ms, from_epoch_ms};
use crate::store::{
    StoreError,
    failures::{FailureCounter, FailureStore, Limits, Subject},
};

/// KEYS: the counter. ARGV: now (ms), window (ms), retention (ms). Returns {failures, last}.
static ADD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local failures = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local last = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if failures > 0 and now - last > tonumber(ARGV[2]) then failures = 0 end
failures = failures + 1
redis.call('HSET', KEYS[1], 'f', failures, 't', now)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {failures, now}
",
    )
});

impl RedisStore {
    fn lockout_key(&self, subject: Subject<'_>) -> String {
        match subject {
            Subject::Ip(ip) => self.key("lockout", &["ip", &ip.to_string()], &[]),
            Subject::Key(fp) => self.key("lockout", &["key", fp], &[]),
        }
    }
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

#[async_trait]
impl FailureStore for RedisStore {
    async fn get(&self, subject: Subject<'_>) -> Result<Option<FailureCounter>, StoreError> {
        let mut conn = self.conn();
        let key = self.lockout_key(subject);
        let (failures, last): (Option<u32>, Option<i64>) = self
            .run(async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("f")
                    .arg("t")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(failures.zip(last).map(|(failures, last)| FailureCounter {
            failures,
            last_failure: from_epoch_ms(last),
        }))
    }

    async fn add_failure(
        &self,
        subject: Subject<'_>,
        limits: &Limits,
        now: SystemTime,
    ) -> Result<FailureCounter, StoreError> {
        let mut conn = self.conn();
        let mut invocation = ADD_FAILURE.prepare_invoke();
        invocation
            .key(self.lockout_key(subject))
            .arg(epoch_ms(now))
            .arg(millis(limits.window))
            .arg(millis(limits.retention()));
        let (failures, last): (u32, i64) = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(FailureCounter {
            failures,
            last_failure: from_epoch_ms(last),
        })
    }

    async fn clear(&self, subject: Subject<'_>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.lockout_key(subject);
        self.run(async move {
            redis::cmd("DEL")
                .arg(key)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await
        .map(|_| ())
    }
}
