//! Token records and revocations in Redis.
//!
//! One hash per token: `record` (the JSON of [`TokenRecord`], whose Dust key is already AEAD
//! ciphertext) and `revoked_at`, written only by `HSETNX`, so a revocation keeps its first time
//! and no later save undoes it. The key expires with the token. A sorted set per user lists the
//! token ids by expiry, for the live-token cap and for revoking every token of a refused key.
//!
//! Expiry is judged at the caller's `now` (`store::tokens`), never by a clock of this process;
//! the keys' Redis TTLs (the rest of each token's life at `now`) only let Redis forget them.
//!
//! The hash is tagged by the token id (it is found by the id alone), the index by its user: two
//! slots, so a save is two scripts sent together rather than one (in a Redis Cluster a script
//! touches one slot). Neither order of failure is unsafe: a save that fails is an error and its
//! token is never handed out, and an index member whose hash is gone is skipped when listed.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;

use super::RedisStore;
use crate::store::{
    StoreError,
    tokens::{TokenRecord, TokenStore},
};

/// Saves a record: the hash and its expiry (a revocation kept). KEYS: token hash. ARGV: record
/// JSON, ttl secs, revoked_at or "".
static SAVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'record', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[3]) end
return 1
",
    )
});

/// Adds a token to its user's index: expired ids pruned, the index's own expiry stretched to
/// the newest token's. KEYS: user index. ARGV: ttl secs, expires_at, token id, now.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 1
",
    )
});

/// Revokes an existing record unexpired at `now` (judged here, not by the key's TTL), keeping
/// the first time. KEYS: token hash. ARGV: now.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return 0 end
if tonumber(cjson.decode(record)['expires_at']) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSETNX', KEYS[1], 'revoked_at', ARGV[1])
return 1
",
    )
});

impl RedisStore {
    fn token_key(&self, token_id: &str) -> String {
        self.key("tok", &[token_id], &[])
    }

    fn user_tokens_key(&self, workspace_id: &str, user_id: &str) -> String {
        self.key("user-tokens", &[workspace_id, user_id], &[])
    }

    /// The records of `token_ids` that still exist and are unexpired at `now`, in no particular
    /// order.
    async fn token_records(
        &self,
        token_ids: &[String],
        now: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        if token_ids.is_empty() {
            return Ok(Vec::new());
        }
        // One command per token (each hash is in a slot of its own), sent together.
        let reads = token_ids.iter().map(|id| {
            let mut conn = self.conn();
            let key = self.token_key(id);
            async move {
                redis::cmd("HMGET")
                    .arg(key)
                    .arg("record")
                    .arg("revoked_at")
                    .query_async::<(Option<String>, Option<i64>)>(&mut conn)
                    .await
            }
        });
        let rows = self.run(futures::future::try_join_all(reads)).await?;
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
    async fn save(&self, record: TokenRecord, now: i64) -> Result<(), StoreError> {
        let ttl = record.expires_at.saturating_sub(now);
        if ttl <= 0 {
            return Ok(());
        }
        let json = serde_json::to_string(&record)
            .map_err(|_| StoreError("cannot encode a token record".into()))?;
        let revoked = record.revoked_at.map(|t| t.to_string()).unwrap_or_default();
        let mut save = SAVE.prepare_invoke();
        save.key(self.token_key(&record.token_id))
            .arg(json)
            .arg(ttl)
            .arg(revoked);
        let mut index = INDEX.prepare_invoke();
        index
            .key(self.user_tokens_key(&record.workspace_id, &record.user_id))
            .arg(ttl)
            .arg(record.expires_at)
            .arg(&record.token_id)
            .arg(now);
        let (mut a, mut b) = (self.conn(), self.conn());
        self.run(async move {
            futures::try_join!(
                save.invoke_async::<i64>(&mut a),
                index.invoke_async::<i64>(&mut b)
            )
        })
        .await
        .map(|_| ())
    }

    async fn get(&self, token_id: &str, now: i64) -> Result<Option<Arc<TokenRecord>>, StoreError> {
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
        now: i64,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let mut conn = self.conn();
        let index = self.user_tokens_key(workspace_id, user_id);
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
            .token_records(&ids, now)
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
        now: i64,
    ) -> Result<usize, StoreError> {
        Ok(self
            .list_for_user(workspace_id, user_id, now)
            .await?
            .iter()
            .filter(|r| r.is_live(now))
            .count())
    }
}
