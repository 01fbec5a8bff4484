//! Conversation ownership in Redis: the record under `conv:{<workspace>:<id>}`, written only if
//! absent (the first owner stays), and a sorted set of each owner's conversation ids by creation
//! time for `list`. Both expire after [`CONVERSATION_RETENTION`].
//!
//! The record is found by its id, the index by its owner: two slots (hash tags), so recording
//! is the record's `SET NX` and then, for the owner who won it, the index entry (in a Redis
//! Cluster no one script may touch both). If the second step fails the caller gets an error;
//! the record stays owned, the only loss is its place in `list`.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::{CONVERSATION_RETENTION, RedisStore};
use crate::store::{ConversationRecord, ConversationStore, StoreError};

/// KEYS: owner's index. ARGV: retention (s), created_at, conversation id.
static INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
",
    )
});

impl RedisStore {
    fn conversation_key(&self, workspace_id: &str, conversation_id: &str) -> String {
        self.key("conv", &[workspace_id, conversation_id], &[])
    }

    fn owner_index_key(&self, workspace_id: &str, owner: &str) -> String {
        self.key("user-convs", &[workspace_id, owner], &[])
    }
}

fn decode(json: &str) -> Result<ConversationRecord, StoreError> {
    serde_json::from_str(json)
        .map_err(|_| StoreError("redis: unreadable conversation record".into()))
}

#[async_trait]
impl ConversationStore for RedisStore {
    async fn record(&self, record: ConversationRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(&record)
            .map_err(|_| StoreError("cannot encode a conversation record".into()))?;
        let retention = CONVERSATION_RETENTION.as_secs();
        let mut conn = self.conn();
        let key = self.conversation_key(&record.workspace_id, &record.conversation_id);
        let stored: Option<String> = self
            .run(async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(json)
                    .arg("NX")
                    .arg("EX")
                    .arg(retention)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if stored.is_none() {
            return Ok(());
        }
        let mut conn = self.conn();
        let mut invocation = INDEX.prepare_invoke();
        invocation
            .key(self.owner_index_key(&record.workspace_id, &record.owner))
            .arg(retention)
            .arg(record.created_at)
            .arg(&record.conversation_id);
        self.run(async move { invocation.invoke_async::<i64>(&mut conn).await })
            .await
            .map(|_| ())
    }

    async fn get(
        &self,
        workspace_id: &str,
        conversation_id: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        let mut conn = self.conn();
        let key = self.conversation_key(workspace_id, conversation_id);
        let json: Option<String> = self
            .run(async move { redis::cmd("GET").arg(key).query_async(&mut conn).await })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn list(
        &self,
        workspace_id: &str,
        owner: &str,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let mut conn = self.conn();
        let index = self.owner_index_key(workspace_id, owner);
        let ids: Vec<String> = self
            .run(async move {
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(-1)
                    .arg("REV")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One `GET` per record (each in a slot of its own), sent together.
        let reads = ids.iter().map(|id| {
            let mut conn = self.conn();
            let key = self.conversation_key(workspace_id, id);
            async move {
                redis::cmd("GET")
                    .arg(key)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            }
        });
        let rows = self.run(futures::future::try_join_all(reads)).await?;
        let mut records = Vec::with_capacity(rows.len());
        for json in rows.iter().flatten() {
            let record = decode(json)?;
            if record.owner == owner {
                records.push(record);
            }
        }
        records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Ok(records)
    }
}
