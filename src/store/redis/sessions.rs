//! Browser sessions in Redis, so a cookie issued by one instance works on every instance and a
//! logout anywhere ends it everywhere at once (catalogue S12 across a cluster).
//!
//! Three kinds of key (`<k>` is the percent-encoded [`SessionKey`], an HMAC of the id: the id
//! itself, the cookie and the CSRF token never reach Redis):
//!
//! - `sess:{<k>}`: a hash of the [`SessionRecord`] fields. Its Redis expiry is the session's own
//!   end (`expires_at_ms`, never past the absolute deadline), measured from the caller's `now`
//!   and refreshed by every touch; an idle session disappears by itself.
//! - `user-sess:{<workspace>:<user_id>}`: the user's session keys, scored by creation time (the
//!   per-principal cap and "log out everywhere"). Members whose session is gone are pruned
//!   when listed.
//! - `sess-all:{all}`: every session key, scored by `expires_at_ms`: the store-size cap
//!   ([`MAX_SESSIONS`](crate::store::sessions::MAX_SESSIONS), as in memory): when full, expired sessions are purged, and if none is,
//!   the new session is refused ([`Inserted::Full`]) while existing ones keep working.
//!
//! The two indexes expire no sooner than the longest absolute deadline among their members,
//! so they never outlive the sessions by more than that.
//!
//! Each kind is in a slot of its own (hash tags: per session, per user, one for the cap), so
//! that sessions spread over a Redis Cluster; a script touches one slot only, and what spans
//! two is two commands sent together, in an order whose partial failure is harmless:
//!
//! - insert: the cap's script first admits the key (or answers full) and names the expired
//!   sessions it purged; then the hash, the user's index and the purged hashes' deletion;
//! - touch and remove: the hash and the cap's score together (a touch of a session that is
//!   gone moves no score: `ZADD XX`);
//! - list: the user's index, then every listed hash, then the pruning of the gone ones.
//!
//! A purged session's hash is deleted only if its own `expires_at_ms` is past (a touch that
//! raced the purge keeps it). The one key every insert, touch and removal writes is the cap's
//! sorted set: that node carries all session writes (one `ZADD` each), a limit stated in
//! docs/DEPLOYMENT.md.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::RedisStore;
use crate::store::{
    StoreError,
    sessions::{Inserted, SessionKey, SessionRecord, SessionStore},
};

/// The record's hash fields, in the order the scripts and [`decode`] use.
const FIELDS: [&str; 7] = [
    "token_id",
    "user_id",
    "workspace_id",
    "created_at_ms",
    "last_seen_ms",
    "expires_at_ms",
    "absolute_expires_at_ms",
];

/// KEYS: global index. ARGV: member, now, capacity, expires at, absolute deadline. Returns
/// `1` (admitted: the member scored) or `0` (full), then the members purged as expired.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[2])
local out = {'1'}
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)) do
    table.insert(out, member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    out[1] = '0'
    return out
  end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
local longest = math.max(1, tonumber(ARGV[5]) - now)
if redis.call('PTTL', KEYS[1]) < longest then redis.call('PEXPIRE', KEYS[1], longest) end
return out
",
    )
});

/// KEYS: session hash. ARGV: now, then the seven field values in [`FIELDS`] order.
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now, expires, absolute = tonumber(ARGV[1]), tonumber(ARGV[7]), tonumber(ARGV[8])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1],
  'token_id', ARGV[2], 'user_id', ARGV[3], 'workspace_id', ARGV[4],
  'created_at_ms', ARGV[5], 'last_seen_ms', ARGV[6],
  'expires_at_ms', ARGV[7], 'absolute_expires_at_ms', ARGV[8])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.min(expires, absolute) - now))
return 1
",
    )
});

/// KEYS: user index. ARGV: member, created at, now, absolute deadline.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local longest = math.max(1, tonumber(ARGV[4]) - tonumber(ARGV[3]))
if redis.call('PTTL', KEYS[1]) < longest then redis.call('PEXPIRE', KEYS[1], longest) end
return 1
",
    )
});

/// KEYS: a purged session's hash. ARGV: now. Deletes it if it has expired by its own fields.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local expires = redis.call('HGET', KEYS[1], 'expires_at_ms')
if expires and tonumber(expires) <= tonumber(ARGV[1]) then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// KEYS: session hash. ARGV: last seen, expires at. Returns 1 if the session exists (and was
/// updated), 0 otherwise: a touch never creates a session.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local absolute = redis.call('HGET', KEYS[1], 'absolute_expires_at_ms')
if not absolute then return 0 end
local last, expires = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'last_seen_ms', ARGV[1], 'expires_at_ms', ARGV[2])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.min(expires, tonumber(absolute)) - last))
return 1
",
    )
});

/// KEYS: session hash. Returns the fields and deletes the hash, or nothing if absent.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'token_id', 'user_id', 'workspace_id',
  'created_at_ms', 'last_seen_ms', 'expires_at_ms', 'absolute_expires_at_ms')
if not fields[1] then return {} end
redis.call('DEL', KEYS[1])
return fields
",
    )
});

impl RedisStore {
    /// Sets how many sessions this store holds at most (default [`MAX_SESSIONS`](crate::store::sessions::MAX_SESSIONS)).
    #[must_use]
    pub fn with_session_capacity(mut self, capacity: usize) -> Self {
        self.session_capacity = capacity;
        self
    }

    /// The index member of a session: its key, percent-encoded like every key part.
    fn session_member(key: &SessionKey) -> String {
        urlencoding::encode(key.as_str()).into_owned()
    }

    fn session_key(&self, key: &SessionKey) -> String {
        self.key("sess", &[key.as_str()], &[])
    }

    /// The hash of an index member (a percent-encoded key, as [`RedisStore::session_member`]
    /// makes it).
    fn member_key(&self, member: &str) -> String {
        format!("{}sess:{{{member}}}", self.prefix)
    }

    /// The fields of the sessions whose index `members` are, in order (`None`s for one gone).
    async fn session_fields(
        &self,
        members: &[String],
    ) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let reads = members.iter().map(|member| {
            let mut conn = self.conn();
            let hash = self.member_key(member);
            async move {
                redis::cmd("HMGET")
                    .arg(hash)
                    .arg(&FIELDS[..])
                    .query_async::<Vec<Option<String>>>(&mut conn)
                    .await
            }
        });
        self.run(futures::future::try_join_all(reads)).await
    }

    fn user_sessions_key(&self, workspace_id: &str, user_id: &str) -> String {
        self.key("user-sess", &[workspace_id, user_id], &[])
    }

    fn all_sessions_key(&self) -> String {
        self.key("sess-all", &["all"], &[])
    }
}

/// A record from its fields in [`FIELDS`] order; an unreadable record is a store error (the
/// caller fails closed), never a session accepted on a guess.
fn decode(fields: &[Option<String>]) -> Result<Option<SessionRecord>, StoreError> {
    let unreadable = || StoreError("redis: unreadable session record".into());
    let [
        token_id,
        user_id,
        workspace_id,
        created,
        last,
        expires,
        absolute,
    ] = fields
    else {
        return Err(unreadable());
    };
    let Some(token_id) = token_id.clone() else {
        return Ok(None);
    };
    let text = |v: &Option<String>| v.clone().ok_or_else(unreadable);
    let ms = |v: &Option<String>| -> Result<i64, StoreError> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(unreadable)
    };
    Ok(Some(SessionRecord {
        token_id,
        user_id: text(user_id)?,
        workspace_id: text(workspace_id)?,
        created_at_ms: ms(created)?,
        last_seen_ms: ms(last)?,
        expires_at_ms: ms(expires)?,
        absolute_expires_at_ms: ms(absolute)?,
    }))
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn insert(
        &self,
        key: &SessionKey,
        record: SessionRecord,
        now_ms: i64,
    ) -> Result<Inserted, StoreError> {
        let member = Self::session_member(key);
        let mut conn = self.conn();
        let mut admit = ADMIT.prepare_invoke();
        admit
            .key(self.all_sessions_key())
            .arg(&member)
            .arg(now_ms)
            .arg(self.session_capacity)
            .arg(record.expires_at_ms)
            .arg(record.absolute_expires_at_ms);
        let answer: Vec<String> = self
            .run(async move { admit.invoke_async(&mut conn).await })
            .await?;
        let Some((admitted, purged)) = answer.split_first() else {
            return Err(StoreError("redis: unreadable session index".into()));
        };
        let purges = purged.iter().map(|gone| {
            let mut conn = self.conn();
            let mut purge = PURGE.prepare_invoke();
            purge.key(self.member_key(gone)).arg(now_ms);
            async move { purge.invoke_async::<i64>(&mut conn).await }
        });
        let purges = futures::future::try_join_all(purges);
        if admitted != "1" {
            self.run(purges).await?;
            return Ok(Inserted::Full);
        }
        let mut write = WRITE.prepare_invoke();
        write
            .key(self.session_key(key))
            .arg(now_ms)
            .arg(&record.token_id)
            .arg(&record.user_id)
            .arg(&record.workspace_id)
            .arg(record.created_at_ms)
            .arg(record.last_seen_ms)
            .arg(record.expires_at_ms)
            .arg(record.absolute_expires_at_ms);
        let mut index = INDEX.prepare_invoke();
        index
            .key(self.user_sessions_key(&record.workspace_id, &record.user_id))
            .arg(&member)
            .arg(record.created_at_ms)
            .arg(now_ms)
            .arg(record.absolute_expires_at_ms);
        let (mut a, mut b) = (self.conn(), self.conn());
        self.run(async move {
            futures::try_join!(
                write.invoke_async::<i64>(&mut a),
                index.invoke_async::<i64>(&mut b),
                purges
            )
        })
        .await?;
        Ok(Inserted::Stored)
    }

    async fn get(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let mut conn = self.conn();
        let hash = self.session_key(key);
        let fields: Vec<Option<String>> = self
            .run(async move {
                redis::cmd("HMGET")
                    .arg(hash)
                    .arg(&FIELDS[..])
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        decode(&fields)
    }

    async fn touch(
        &self,
        key: &SessionKey,
        last_seen_ms: i64,
        expires_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut touch = TOUCH.prepare_invoke();
        touch
            .key(self.session_key(key))
            .arg(last_seen_ms)
            .arg(expires_at_ms);
        let mut score = redis::cmd("ZADD");
        score
            .arg(self.all_sessions_key())
            .arg("XX")
            .arg(expires_at_ms)
            .arg(Self::session_member(key));
        let (mut a, mut b) = (self.conn(), self.conn());
        let (touched, _): (i64, i64) = self
            .run(async move {
                futures::try_join!(touch.invoke_async(&mut a), score.query_async(&mut b))
            })
            .await?;
        Ok(touched == 1)
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let mut remove = REMOVE.prepare_invoke();
        remove.key(self.session_key(key));
        let mut unscore = redis::cmd("ZREM");
        unscore
            .arg(self.all_sessions_key())
            .arg(Self::session_member(key));
        let (mut a, mut b) = (self.conn(), self.conn());
        let (fields, _): (Vec<Option<String>>, i64) = self
            .run(async move {
                futures::try_join!(remove.invoke_async(&mut a), unscore.query_async(&mut b))
            })
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        // The user index keeps the member until it is next listed (pruned there).
        decode(&fields)
    }

    async fn list_for_user(
        &self,
        workspace_id: &str,
        user_id: &str,
    ) -> Result<Vec<(SessionKey, SessionRecord)>, StoreError> {
        let mut conn = self.conn();
        let index = self.user_sessions_key(workspace_id, user_id);
        let members: Vec<String> = self
            .run(async move {
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self.session_fields(&members).await?;
        let mut found = Vec::with_capacity(rows.len());
        let mut gone = Vec::new();
        for (member, fields) in members.into_iter().zip(rows) {
            let Some(record) = decode(&fields)? else {
                gone.push(member);
                continue;
            };
            let key = urlencoding::decode(&member)
                .map_err(|_| StoreError("redis: unreadable session index".into()))?;
            if record.workspace_id == workspace_id && record.user_id == user_id {
                found.push((SessionKey::from_hmac_hex(key.into_owned()), record));
            }
        }
        if !gone.is_empty() {
            let mut conn = self.conn();
            let index = self.user_sessions_key(workspace_id, user_id);
            self.run(async move {
                redis::cmd("ZREM")
                    .arg(index)
                    .arg(gone)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await?;
        }
        Ok(found)
    }

    async fn count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let all = self.all_sessions_key();
        self.run(async move {
            redis::cmd("ZCARD")
                .arg(all)
                .query_async::<usize>(&mut conn)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_needs_every_field() {
        let full: Vec<Option<String>> = ["tok", "usr", "ws", "1", "2", "3", "4"]
            .iter()
            .map(|s| Some((*s).to_owned()))
            .collect();
        let record = decode(&full).unwrap().unwrap();
        assert_eq!(
            (record.created_at_ms, record.absolute_expires_at_ms),
            (1, 4)
        );
        assert_eq!(
            decode(&[None, None, None, None, None, None, None]).unwrap(),
            None
        );
        let mut broken = full.clone();
        broken[5] = Some("soon".into());
        assert!(decode(&broken).is_err());
        assert!(decode(&full[..3]).is_err());
    }
}
