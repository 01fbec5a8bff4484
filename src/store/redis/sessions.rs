//! Browser sessions in Redis, so a cookie issued by one instance works on every instance and a
//! logout anywhere ends it everywhere at once (catalogue S12 across a cluster).
//!
//! Three kinds of key (`<k>` is the percent-encoded [`SessionKey`], an HMAC of the id: the id
//! itself, the cookie and the CSRF token never reach Redis):
//!
//! - `sess:<k>`: a hash of the [`SessionRecord`] fields. Its Redis expiry is the session's own
//!   end (`expires_at_ms`, never past the absolute deadline), measured from the caller's `now`
//!   and refreshed by every touch; an idle session disappears by itself.
//! - `user-sess:<workspace>:<user_id>`: the user's session keys, scored by creation time (the
//!   per-principal cap and "log out everywhere"). Members whose session is gone are pruned
//!   when listed.
//! - `sess-all`: every session key, scored by `expires_at_ms`: the store-size cap
//!   ([`MAX_SESSIONS`](crate::store::sessions::MAX_SESSIONS), as in memory): when full, expired sessions are purged, and if none is,
//!   the new session is refused ([`Inserted::Full`]) while existing ones keep working.
//!
//! The two indexes expire no sooner than the longest absolute deadline among their members,
//! so they never outlive the sessions by more than that. The scripts build `sess:` key names
//! from the index members (with the prefix passed in `ARGV`), which a standalone Redis (the
//! supported deployment) allows.

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

/// KEYS: session hash, user index, global index. ARGV: member, now, capacity, `sess:` key
/// prefix, then the seven field values in [`FIELDS`] order. Returns 1 stored, 0 full.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then
  local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
  for _, member in ipairs(expired) do
    redis.call('DEL', ARGV[4] .. member)
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return 0 end
end
local created, expires, absolute = tonumber(ARGV[8]), tonumber(ARGV[10]), tonumber(ARGV[11])
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1],
  'token_id', ARGV[5], 'user_id', ARGV[6], 'workspace_id', ARGV[7],
  'created_at_ms', ARGV[8], 'last_seen_ms', ARGV[9],
  'expires_at_ms', ARGV[10], 'absolute_expires_at_ms', ARGV[11])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.min(expires, absolute) - now))
redis.call('ZADD', KEYS[2], created, ARGV[1])
redis.call('ZADD', KEYS[3], expires, ARGV[1])
local longest = math.max(1, absolute - now)
for i = 2, 3 do
  if redis.call('PTTL', KEYS[i]) < longest then redis.call('PEXPIRE', KEYS[i], longest) end
end
return 1
",
    )
});

/// KEYS: session hash, global index. ARGV: member, last seen, expires at. Returns 1 if the
/// session exists (and was updated), 0 otherwise: a touch never creates a session.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local absolute = redis.call('HGET', KEYS[1], 'absolute_expires_at_ms')
if not absolute then return 0 end
local last, expires = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'last_seen_ms', ARGV[2], 'expires_at_ms', ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.max(1, math.min(expires, tonumber(absolute)) - last))
redis.call('ZADD', KEYS[2], 'XX', expires, ARGV[1])
return 1
",
    )
});

/// KEYS: session hash, global index. ARGV: member. Returns the fields, or nothing if absent.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local fields = redis.call('HMGET', KEYS[1], 'token_id', 'user_id', 'workspace_id',
  'created_at_ms', 'last_seen_ms', 'expires_at_ms', 'absolute_expires_at_ms')
redis.call('ZREM', KEYS[2], ARGV[1])
if not fields[1] then return {} end
redis.call('DEL', KEYS[1])
return fields
",
    )
});

/// KEYS: user index. ARGV: `sess:` key prefix. Returns {member, fields...} per live session,
/// oldest first (ties by member), and prunes members whose session is gone.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fields = redis.call('HMGET', ARGV[1] .. member, 'token_id', 'user_id', 'workspace_id',
    'created_at_ms', 'last_seen_ms', 'expires_at_ms', 'absolute_expires_at_ms')
  if fields[1] then
    table.insert(fields, 1, member)
    table.insert(out, fields)
  else
    redis.call('ZREM', KEYS[1], member)
  end
end
return out
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

    /// What precedes a member in a session's key name.
    fn session_key_prefix(&self) -> String {
        format!("{}sess:", self.prefix)
    }

    fn session_key(&self, key: &SessionKey) -> String {
        self.key("sess", &[key.as_str()])
    }

    fn user_sessions_key(&self, workspace_id: &str, user_id: &str) -> String {
        self.key("user-sess", &[workspace_id, user_id])
    }

    fn all_sessions_key(&self) -> String {
        self.key("sess-all", &[])
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
        let mut conn = self.conn();
        let mut invocation = INSERT.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .key(self.user_sessions_key(&record.workspace_id, &record.user_id))
            .key(self.all_sessions_key())
            .arg(Self::session_member(key))
            .arg(now_ms)
            .arg(self.session_capacity)
            .arg(self.session_key_prefix())
            .arg(&record.token_id)
            .arg(&record.user_id)
            .arg(&record.workspace_id)
            .arg(record.created_at_ms)
            .arg(record.last_seen_ms)
            .arg(record.expires_at_ms)
            .arg(record.absolute_expires_at_ms);
        let stored: i64 = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(if stored == 1 {
            Inserted::Stored
        } else {
            Inserted::Full
        })
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
        let mut conn = self.conn();
        let mut invocation = TOUCH.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .key(self.all_sessions_key())
            .arg(Self::session_member(key))
            .arg(last_seen_ms)
            .arg(expires_at_ms);
        let touched: i64 = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        Ok(touched == 1)
    }

    async fn remove(&self, key: &SessionKey) -> Result<Option<SessionRecord>, StoreError> {
        let mut conn = self.conn();
        let mut invocation = REMOVE.prepare_invoke();
        invocation
            .key(self.session_key(key))
            .key(self.all_sessions_key())
            .arg(Self::session_member(key));
        let fields: Vec<Option<String>> = self
            .run(async move { invocation.invoke_async(&mut conn).await })
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
        let mut invocation = LIST.prepare_invoke();
        invocation
            .key(self.user_sessions_key(workspace_id, user_id))
            .arg(self.session_key_prefix());
        let rows: Vec<Vec<Option<String>>> = self
            .run(async move { invocation.invoke_async(&mut conn).await })
            .await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            let Some((Some(member), fields)) = row.split_first() else {
                return Err(StoreError("redis: unreadable session index".into()));
            };
            let key = urlencoding::decode(member)
                .map_err(|_| StoreError("redis: unreadable session index".into()))?;
            if let Some(record) = decode(fields)?
                && record.workspace_id == workspace_id
                && record.user_id == user_id
            {
                found.push((SessionKey::from_hmac_hex(key.into_owned()), record));
            }
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
