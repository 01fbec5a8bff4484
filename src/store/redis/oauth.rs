//! The OAuth authorization server's records in Redis, so a consent shown by one instance can be
//! approved on another, a code issued by one is exchanged on another, and a refresh-token reuse
//! seen anywhere revokes the family everywhere.
//!
//! | key | type | lifetime |
//! |---|---|---|
//! | `oauth-client:{oauth-clients}:<client_id>` | JSON client | the client's `expires_at_ms` |
//! | `oauth-unused:{oauth-clients}` | sorted set of unused client ids by `created_at_ms` (the cap) | the longest unused client's life |
//! | `oauth-pending:{<hash>}` | JSON pending consent | its `expires_at_ms` |
//! | `oauth-state:{<client hash>:<state hash>}` | `1` | the claim's end |
//! | `oauth-code:{<hash>}` | hash `record` (JSON), `issued` (JSON, once spent) | the replay window |
//! | `oauth-rt:{oauth-refresh}:<hash>` | hash `record` (JSON), `spent` | the token's expiry |
//! | `oauth-fam:{oauth-refresh}:<family>` | hash `revoked`, `t:<token_id>` per access token | the family's longest expiry |
//! | `oauth-grants:{<workspace>:<user_id>}` | JSON list of the person's grant summaries | the longest grant |
//!
//! The `{…}` are Redis Cluster hash tags: keys with one tag share a slot. Consents, states and
//! codes are used one key at a time, so each is in a slot of its own. Two groups cannot be
//! split, and each is one slot (the documented exception to per-record tags):
//!
//! - `{oauth-clients}`: the unused-client cap evicts the oldest clients' records in the same
//!   script that pops them from the global set, so instances racing cannot overshoot the cap
//!   and a client being approved cannot be evicted half-way ([`PUT_CLIENT`], [`MARK_USED`]);
//!   the evicted clients' keys come from the set, so they must be in its slot.
//! - `{oauth-refresh}`: a rotation spends the old token, checks its family and writes the new
//!   token in one script ([`ROTATE`]), and a refresh token is found by its hash alone, which
//!   does not name its family; so tokens and families share one slot.
//!
//! Both are low-rate (a registration, a token exchange or refresh per client every few
//! minutes at most, against one `ZADD`/`HGET` each), unlike the per-request hot path (tokens,
//! counters, sessions), which is spread.
//!
//! Hashes are SHA-256 of the secret values (`store::oauth::secret_hash`); every single-use step
//! is one Lua script, atomic across instances.
//!
//! Registration is open to anyone, so unused clients are capped ([`MAX_UNUSED_CLIENTS`](crate::store::oauth::MAX_UNUSED_CLIENTS) unless
//! built [`with_unused_client_capacity`](RedisStore::with_unused_client_capacity)): storing an
//! unused client and evicting the oldest ones past the cap is one script ([`PUT_CLIENT`]), so
//! instances racing cannot overshoot it. A member whose client has already expired is dropped
//! when it comes up as the oldest (one slot freed either way); marking a client used removes it
//! from the set in the same script that gives it its long life ([`MARK_USED`]).

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::RedisStore;
use crate::store::{
    StoreError,
    oauth::{
        CodeRecord, GrantSummary, Issued, OAuthClient, OAuthStore, PendingAuthorization, Redeemed,
        RefreshRecord, Rotated, secret_hash,
    },
};

/// KEYS: client, unused index. ARGV: member (the encoded id), client JSON, TTL ms, `1` if
/// used, `created_at_ms`, capacity, client key prefix. Stores the client; an unused one first
/// evicts the oldest unused clients until there is room, then joins the index.
static PUT_CLIENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ttl = math.max(1, tonumber(ARGV[3]))
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[4] ~= '1' then
  local cap = tonumber(ARGV[6])
  while redis.call('ZCARD', KEYS[2]) >= cap do
    local oldest = redis.call('ZPOPMIN', KEYS[2])
    if #oldest == 0 then break end
    redis.call('DEL', ARGV[7] .. oldest[1])
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
if ARGV[4] ~= '1' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[1])
  if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
end
return 1
",
    )
});

/// KEYS: client, unused index. ARGV: member, the used client's JSON, TTL ms. Returns 0 (and
/// stores nothing) if the client is gone, evicted or expired meanwhile.
static MARK_USED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', math.max(1, tonumber(ARGV[3])))
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
",
    )
});

/// KEYS: pending. Returns the JSON and deletes it, or nil.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
",
    )
});

/// KEYS: code. ARGV: issued JSON. Returns {} unknown, {1, record} fresh, {2, record, issued}.
static REDEEM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return {} end
local issued = redis.call('HGET', KEYS[1], 'issued')
if issued then return {'2', record, issued} end
redis.call('HSET', KEYS[1], 'issued', ARGV[1])
return {'1', record}
",
    )
});

/// KEYS: old token, new token, family (of the old token's record). ARGV: new record JSON, new
/// TTL ms. Returns {} unknown, {1, old record} rotated, {2, old record} reused or revoked.
static ROTATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local record = redis.call('HGET', KEYS[1], 'record')
if not record then return {} end
if redis.call('HGET', KEYS[1], 'spent') or redis.call('HGET', KEYS[3], 'revoked') then
  return {'2', record}
end
redis.call('HSET', KEYS[1], 'spent', '1')
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'record', ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.max(1, tonumber(ARGV[2])))
return {'1', record}
",
    )
});

/// KEYS: token, family. ARGV: record JSON, TTL ms. Returns 0 if the family is revoked.
static PUT_REFRESH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[2], 'revoked') then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'record', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(ARGV[2])))
return 1
",
    )
});

/// KEYS: family. ARGV: field, value, TTL ms. Sets the field and extends the TTL, never
/// shortens it. With field `revoked`, returns the family's token ids.
static FAMILY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = math.max(1, tonumber(ARGV[3]))
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
local out = {}
if ARGV[1] == 'revoked' then
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 't:' then table.insert(out, string.sub(f, 3)) end
  end
end
return out
",
    )
});

/// The hash tag of the clients and their unused-client cap (see the module doc).
const CLIENTS: &str = "oauth-clients";

/// The hash tag of the refresh tokens and their families (see the module doc).
const REFRESH: &str = "oauth-refresh";

fn ttl(until_ms: i64, now_ms: i64) -> i64 {
    (until_ms - now_ms).max(1)
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|_| StoreError("redis: unencodable oauth record".into()))
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|_| StoreError("redis: unreadable oauth record".into()))
}

impl RedisStore {
    /// Sets how many unused OAuth clients this store holds at most (at least 1; default
    /// [`MAX_UNUSED_CLIENTS`](crate::store::oauth::MAX_UNUSED_CLIENTS)).
    #[must_use]
    pub fn with_unused_client_capacity(mut self, capacity: usize) -> Self {
        self.oauth_unused_capacity = capacity.max(1);
        self
    }

    fn client_key(&self, client_id: &str) -> String {
        self.key("oauth-client", &[CLIENTS], &[client_id])
    }

    fn unused_clients_key(&self) -> String {
        self.key("oauth-unused", &[CLIENTS], &[])
    }

    fn family_key(&self, family_id: &str) -> String {
        self.key("oauth-fam", &[REFRESH], &[family_id])
    }

    fn grants_key(&self, workspace_id: &str, user_id: &str) -> String {
        self.key("oauth-grants", &[workspace_id, user_id], &[])
    }

    /// The person's stored grant summaries, as written (expired and revoked ones included).
    async fn grant_summaries(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let mut conn = self.conn();
        let key = self.grants_key(workspace_id, user_id);
        let json: Option<String> = self
            .run(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        json.as_deref().map_or(Ok(Vec::new()), decode)
    }

    async fn family_set(
        &self,
        family_id: &str,
        field: &str,
        value: &str,
        ttl_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let mut invocation = FAMILY.prepare_invoke();
        invocation
            .key(self.family_key(family_id))
            .arg(field)
            .arg(value)
            .arg(ttl_ms);
        self.run(async move { invocation.invoke_async(&mut conn).await })
            .await
    }
}

impl RedisStore {
    /// Stores `value` as JSON under `key`, expiring at `until_ms`.
    async fn put_json<T: serde::Serialize>(
        &self,
        key: String,
        value: &T,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let json = encode(value)?;
        let px = ttl(until_ms, now_ms);
        self.run(async move {
            redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("PX")
                .arg(px)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }
}

#[async_trait]
impl OAuthStore for RedisStore {
    async fn put_client(&self, client: &OAuthClient, now_ms: i64) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let mut invocation = PUT_CLIENT.prepare_invoke();
        invocation
            .key(self.client_key(&client.client_id))
            .key(self.unused_clients_key())
            .arg(urlencoding::encode(&client.client_id).into_owned())
            .arg(encode(client)?)
            .arg(ttl(client.expires_at_ms, now_ms))
            .arg(if client.used { "1" } else { "0" })
            .arg(client.created_at_ms)
            .arg(self.oauth_unused_capacity)
            .arg(format!("{}oauth-client:{{{CLIENTS}}}:", self.prefix));
        self.run(async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }

    async fn mark_client_used(
        &self,
        client_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let Some(mut client) = self.get_client(client_id, now_ms).await? else {
            return Ok(false);
        };
        client.used = true;
        client.expires_at_ms = expires_at_ms;
        let mut conn = self.conn();
        let mut invocation = MARK_USED.prepare_invoke();
        invocation
            .key(self.client_key(client_id))
            .key(self.unused_clients_key())
            .arg(urlencoding::encode(client_id).into_owned())
            .arg(encode(&client)?)
            .arg(ttl(expires_at_ms, now_ms));
        let marked: i64 = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(marked == 1)
    }

    async fn get_client(
        &self,
        client_id: &str,
        now_ms: i64,
    ) -> Result<Option<OAuthClient>, StoreError> {
        let mut conn = self.conn();
        let key = self.client_key(client_id);
        let json: Option<String> = self
            .run(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        let client: Option<OAuthClient> = json.as_deref().map(decode).transpose()?;
        Ok(client.filter(|c| c.expires_at_ms > now_ms))
    }

    async fn put_pending(
        &self,
        id_hash: &str,
        pending: &PendingAuthorization,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = self.key("oauth-pending", &[id_hash], &[]);
        self.put_json(key, pending, pending.expires_at_ms, now_ms)
            .await
    }

    async fn take_pending(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> Result<Option<PendingAuthorization>, StoreError> {
        let mut conn = self.conn();
        let mut invocation = TAKE.prepare_invoke();
        invocation.key(self.key("oauth-pending", &[id_hash], &[]));
        let json: Option<String> = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let pending: Option<PendingAuthorization> = json.as_deref().map(decode).transpose()?;
        Ok(pending.filter(|p| p.expires_at_ms > now_ms))
    }

    async fn claim_state(
        &self,
        client_id: &str,
        state: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let key = self.key(
            "oauth-state",
            &[&secret_hash(client_id), &secret_hash(state)],
            &[],
        );
        let px = ttl(until_ms, now_ms);
        let set: Option<String> = self
            .run(async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(px)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(set.is_some())
    }

    async fn state_claimed(
        &self,
        client_id: &str,
        state: &str,
        _now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let key = self.key(
            "oauth-state",
            &[&secret_hash(client_id), &secret_hash(state)],
            &[],
        );
        let found: i64 = self
            .run(async move { redis::cmd("EXISTS").arg(key).query_async(&mut conn).await })
            .await?;
        Ok(found == 1)
    }

    async fn put_code(
        &self,
        code_hash: &str,
        code: &CodeRecord,
        keep_until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let key = self.key("oauth-code", &[code_hash], &[]);
        let json = encode(code)?;
        let px = ttl(keep_until_ms, now_ms);
        self.run(async move {
            redis::pipe()
                .atomic()
                .cmd("DEL")
                .arg(&key)
                .ignore()
                .cmd("HSET")
                .arg(&key)
                .arg("record")
                .arg(json)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(px)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        issued: &Issued,
        _now_ms: i64,
    ) -> Result<Redeemed, StoreError> {
        let mut conn = self.conn();
        let mut invocation = REDEEM.prepare_invoke();
        invocation
            .key(self.key("oauth-code", &[code_hash], &[]))
            .arg(encode(issued)?);
        let answer: Vec<String> = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        match answer.as_slice() {
            [] => Ok(Redeemed::Unknown),
            [kind, record] if kind == "1" => Ok(Redeemed::Fresh(decode(record)?)),
            [kind, record, first] if kind == "2" => {
                Ok(Redeemed::Replayed(decode(record)?, decode(first)?))
            }
            _ => Err(StoreError("redis: unreadable oauth code".into())),
        }
    }

    async fn put_refresh(
        &self,
        token_hash: &str,
        record: &RefreshRecord,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let mut invocation = PUT_REFRESH.prepare_invoke();
        invocation
            .key(self.key("oauth-rt", &[REFRESH], &[token_hash]))
            .key(self.family_key(&record.grant.family_id))
            .arg(encode(record)?)
            .arg(ttl(record.expires_at_ms, now_ms));
        let stored: i64 = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        if stored == 1 {
            Ok(())
        } else {
            Err(StoreError("refresh family revoked".into()))
        }
    }

    async fn get_refresh(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<RefreshRecord>, StoreError> {
        let mut conn = self.conn();
        let key = self.key("oauth-rt", &[REFRESH], &[token_hash]);
        let json: Option<String> = self
            .run(async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg("record")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let record: Option<RefreshRecord> = json.as_deref().map(decode).transpose()?;
        Ok(record.filter(|r| r.expires_at_ms > now_ms))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new: &RefreshRecord,
        now_ms: i64,
    ) -> Result<Rotated, StoreError> {
        // The family key comes from the stored record, which the script returns; the new
        // record belongs to the same family (the caller copies the grant), so it names it.
        let mut conn = self.conn();
        let mut invocation = ROTATE.prepare_invoke();
        invocation
            .key(self.key("oauth-rt", &[REFRESH], &[old_hash]))
            .key(self.key("oauth-rt", &[REFRESH], &[new_hash]))
            .key(self.family_key(&new.grant.family_id))
            .arg(encode(new)?)
            .arg(ttl(new.expires_at_ms, now_ms));
        let answer: Vec<String> = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        match answer.as_slice() {
            [] => Ok(Rotated::Unknown),
            [kind, record] => {
                let old: RefreshRecord = decode(record)?;
                if old.expires_at_ms <= now_ms {
                    return Ok(Rotated::Unknown);
                }
                Ok(if kind == "1" {
                    Rotated::Rotated(old)
                } else {
                    Rotated::Reused(old)
                })
            }
            _ => Err(StoreError("redis: unreadable refresh token".into())),
        }
    }

    async fn add_family_token(
        &self,
        family_id: &str,
        token_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.family_set(
            family_id,
            &format!("t:{token_id}"),
            "1",
            ttl(until_ms, now_ms),
        )
        .await
        .map(|_| ())
    }

    async fn revoke_family(
        &self,
        family_id: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        self.family_set(family_id, "revoked", "1", ttl(until_ms, now_ms))
            .await
    }

    async fn touch_grant(
        &self,
        workspace_id: &str,
        user_id: &str,
        summary: &GrantSummary,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        // Read, merge and write back: a person's grants are touched by their own clients'
        // refreshes only, and the worst a race does is keep one summary a refresh older.
        let mut list = self.grant_summaries(workspace_id, user_id).await?;
        list.retain(|g| g.grant_id != summary.grant_id);
        list.push(summary.clone());
        crate::store::oauth::trim_grants(&mut list, now_ms);
        let until = list.iter().map(|g| g.expires_at_ms).max().unwrap_or(now_ms);
        let mut conn = self.conn();
        let key = self.grants_key(workspace_id, user_id);
        let value = encode(&list)?;
        let ttl_ms = ttl(until, now_ms);
        self.run(async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    async fn list_grants(
        &self,
        workspace_id: &str,
        user_id: &str,
        now_ms: i64,
    ) -> Result<Vec<GrantSummary>, StoreError> {
        let mut list = self.grant_summaries(workspace_id, user_id).await?;
        if list.is_empty() {
            return Ok(list);
        }
        // Which families are revoked: one round trip for all of them.
        let mut pipe = redis::pipe();
        for grant in &list {
            pipe.cmd("HEXISTS")
                .arg(self.family_key(&grant.grant_id))
                .arg("revoked");
        }
        let mut conn = self.conn();
        let revoked: Vec<i64> = self
            .run(async move { pipe.query_async(&mut conn).await })
            .await?;
        let mut revoked = revoked.into_iter();
        list.retain(|_| revoked.next() != Some(1));
        crate::store::oauth::trim_grants(&mut list, now_ms);
        Ok(list)
    }

    async fn family_revoked(&self, family_id: &str, _now_ms: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let key = self.family_key(family_id);
        let revoked: i64 = self
            .run(async move {
                redis::cmd("HEXISTS")
                    .arg(key)
                    .arg("revoked")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(revoked == 1)
    }
}
