//! Token records and revocations in Redis.
//!
//! One hash per token: `record` (the JSON of [`TokenRecord`], whose Dust key is already AEAD
//! ciphertext) and `revoked_at`, written only by `HSETNX`, so a revocation keeps its first time
//! and no later save undoes it. The key expires with the token. A sorted set per user lists the
//! token ids by expiry, for the live-token cap and for revoking every token of a refused key.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;

use super::{RedisStore, wall_clock_secs};
use crate::{
    auth::tokens::{TokenRecord, TokenStore},
    store::StoreError,
};

/// Saves a record: the hash and its expiry, then the user's index (expired ids pruned, its own
/// expiry stretched to the newest token's).
/// KEYS: token hash, user index. ARGV: record JSON, ttl secs, expires_at, token id, now,
/// revoked_at or "".
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'record', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[6] ~= '' then redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[6]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
",
    )
});

/// Revokes an existing record, keeping the first time. KEYS: token hash. ARGV: now.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], 'record') == 0 then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
return 1
",
    )
});

impl RedisStore {
    fn token_key(&self, token_id: &str) -> String {
        self.key("tok", &[token_id])
    }

    fn user_tokens_key(&self, workspace_id: &str, user_id: &str) -> String {
        self.key("user-tokens", &[workspace_id, user_id])
    }

    /// The records of `token_ids` that still exist, in no particular order.
    async fn token_records(&self, token_ids: &[String]) -> Result<Vec<TokenRecord>, StoreError> {
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for id in token_ids {
            pipe.cmd("HMGET")
                .arg(self.token_key(id))
                .arg("record")
                .arg("revoked_at");
        }
        let mut conn = self.conn();
        let rows: Vec<(Option<String>, Option<i64>)> = self
            .run(async move { pipe.query_async(&mut conn).await })
            .await?;
        let now = wall_clock_secs();
        let mut records = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(record) = decode(row)?.filter(|r| r.expires_at > now) {
                records.push(record);
            }
        }
        Ok(records)
    }
}

/// A record from its hash fields; an unreadable record is a store error (fail closed), never a
/// token accepted on a guess.
fn decode(
    (json, revoked_at): (Option<String>, Option<i64>),
) -> Result<Option<TokenRecord>, StoreError> {
    let Some(json) = json else {
        return Ok(None);
    };
    let mut record: TokenRecord = serde_json::from_str(&json)
        .map_err(|_| StoreError("redis: unreadable token record".into()))?;
    if revoked_at.is_some() {
        record.revoked_at = revoked_at;
    }
    Ok(Some(record))
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn save(&self, record: TokenRecord) -> Result<(), StoreError> {
        let now = wall_clock_secs();
        let ttl = record.expires_at.saturating_sub(now);
        if ttl <= 0 {
            return Ok(());
        }
        let json = serde_json::to_string(&record)
            .map_err(|_| StoreError("cannot encode a token record".into()))?;
        let revoked = record.revoked_at.map(|t| t.to_string()).unwrap_or_default();
        let mut conn = self.conn();
        let mut invocation = SAVE.prepare_invoke();
        invocation
            .key(self.token_key(&record.token_id))
            .key(self.user_tokens_key(&record.workspace_id, &record.user_id))
            .arg(json)
            .arg(ttl)
            .arg(record.expires_at)
            .arg(&record.token_id)
            .arg(now)
            .arg(revoked);
        self.run(async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }

    async fn get(&self, token_id: &str) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        let mut conn = self.conn();
        let key = self.token_key(token_id);
        let row: (Option<String>, Option<i64>) = self
            .run(async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("record")
                    .arg("revoked_at")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let now = wall_clock_secs();
        Ok(decode(row)?.filter(|r| r.expires_at > now).map(Arc::new))
    }

    async fn revoke(&self, token_id: &str, now: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let mut invocation = REVOKE.prepare_invoke();
        invocation.key(self.token_key(token_id)).arg(now);
        let revoked: i64 = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(revoked == 1)
    }

    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let mut conn = self.conn();
        let index = self.user_tokens_key(workspace_id, user_id);
        let now = wall_clock_secs();
        let ids: Vec<String> = self
            .run(async move {
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(format!("({now}"))
                    .arg("+inf")
                    .arg("BYSCORE")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut records: Vec<TokenRecord> = self
            .token_records(&ids)
            .await?
            .into_iter()
            .filter(|r| r.workspace_id == workspace_id && r.user_id == user_id)
            .collect();
        records.sort_by(|a, b| (b.issued_at, &b.token_id).cmp(&(a.issued_at, &a.token_id)));
        Ok(records)
    }

    async fn count_live_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<usize, StoreError> {
        let now = wall_clock_secs();
        Ok(self
            .list_for_user(workspace_id, user_id)
            .await?
            .iter()
            .filter(|r| r.is_live(now))
            .count())
    }
}
