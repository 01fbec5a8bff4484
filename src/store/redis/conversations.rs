//! Conversation ownership in Redis: the record under `conv:<workspace>:<id>`, written only if
//! absent (the first owner stays), and a sorted set of each owner's conversation ids by creation
//! time for `list`. Both expire after [`CONVERSATION_RETENTION`].

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::{CONVERSATION_RETENTION, RedisStore};
use crate::store::{ConversationRecord, ConversationStore, StoreError};

/// KEYS: record, owner's index. ARGV: JSON, retention (s), created_at, conversation id.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
",
    )
});

impl RedisStore {
    fn conversation_key(&self, workspace_id: &str, conversation_id: &str) -> String {
        self.key("conv", &[workspace_id, conversation_id])
    }

    fn owner_index_key(&self, workspace_id: &str, owner: &str) -> String {
        self.key("user-convs", &[workspace_id, owner])
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
        let mut conn = self.conn();
        let mut invocation = RECORD.prepare_invoke();
        invocation
            .key(self.conversation_key(&record.workspace_id, &record.conversation_id))
            .key(self.owner_index_key(&record.workspace_id, &record.owner))
            .arg(json)
            .arg(CONVERSATION_RETENTION.as_secs())
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
        let keys: Vec<String> = ids
            .iter()
            .map(|id| self.conversation_key(workspace_id, id))
            .collect();
        let mut conn = self.conn();
        let rows: Vec<Option<String>> = self
            .run(async move { redis::cmd("MGET").arg(keys).query_async(&mut conn).await })
            .await?;
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
