//! The recent audit records an operator with `admin:audit` can query (`GET /api/v1/audit`).
//!
//! The audit log proper is append-only JSON lines for a log pipeline; this is a bounded window
//! of the latest records, kept so that the console and the REST API can show them without a
//! pipeline. The [`Auditor`](super::Auditor) feeds it as it records, with the record exactly as
//! it is logged. [`RecentAudit`] is a small trait so that a shared store (Redis) can back it
//! when several instances run; [`testing::recent_audit_contract`] is the suite every backend
//! passes. Records without a workspace (a refused bearer token names no one) are kept but never
//! shown: a query always names the caller's workspace.

use std::{
    collections::VecDeque,
    sync::{Mutex, PoisonError},
};

use async_trait::async_trait;
use serde_json::Value;

use super::AuditEvent;
use crate::store::StoreError;

/// Records the memory buffer keeps by default (`AUDIT_RECENT_RECORDS`); the oldest go first.
pub const RECENT_AUDIT_CAPACITY: usize = 5_000;

/// Most records one query returns.
pub const MAX_QUERY_LIMIT: usize = 500;

/// Which records to return: one workspace's, newest first.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    pub workspace_id: String,
    /// Only records of this type (`authz_fail`).
    pub event_type: Option<String>,
    /// Only records at or after this time: an RFC 3339 UTC timestamp in the audit format
    /// (`2026-01-01T00:00:00.000Z`, see [`normalize_timestamp`]).
    pub since: Option<String>,
    /// At most this many (1 to [`MAX_QUERY_LIMIT`]).
    pub limit: usize,
}

/// A window of the latest audit records.
#[async_trait]
pub trait RecentAudit: Send + Sync + 'static {
    /// Keeps `event`. Called on the recording path: must not block for long, never fails (a
    /// backend that cannot store drops the record; the log still has it).
    fn push(&self, event: &AuditEvent);

    /// The records matching `query`, newest first, as they are logged.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<Value>, StoreError>;

    /// How many records this process holds, for the `store_entries` gauge; `None` when they
    /// live elsewhere.
    fn held(&self) -> Option<usize> {
        None
    }
}

/// The in-memory window: the last `capacity` records of this process.
#[derive(Debug)]
pub struct MemoryRecentAudit {
    capacity: usize,
    records: Mutex<VecDeque<Kept>>,
}

/// One record, kept as its JSON text: pushing happens on every audited request and querying
/// rarely, and one string costs one allocation where a `serde_json::Value` tree cost one per
/// field (docs/PERFORMANCE.md, finding 13).
#[derive(Debug)]
struct Kept {
    workspace_id: Option<String>,
    event_type: &'static str,
    timestamp: String,
    record: String,
}

impl MemoryRecentAudit {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            records: Mutex::new(VecDeque::new()),
        }
    }
}

impl Default for MemoryRecentAudit {
    fn default() -> Self {
        Self::new(RECENT_AUDIT_CAPACITY)
    }
}

#[async_trait]
impl RecentAudit for MemoryRecentAudit {
    fn push(&self, event: &AuditEvent) {
        let Ok(record) = serde_json::to_string(event) else {
            return;
        };
        let kept = Kept {
            workspace_id: event.workspace_id().map(str::to_owned),
            event_type: event.event_type().as_str(),
            timestamp: event.timestamp().to_owned(),
            record,
        };
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        if records.len() >= self.capacity {
            records.pop_front();
        }
        records.push_back(kept);
    }

    async fn query(&self, query: &AuditQuery) -> Result<Vec<Value>, StoreError> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(records
            .iter()
            .rev()
            .filter(|k| k.workspace_id.as_deref() == Some(query.workspace_id.as_str()))
            .filter(|k| {
                query
                    .event_type
                    .as_deref()
                    .is_none_or(|t| t == k.event_type)
            })
            .filter(|k| {
                query
                    .since
                    .as_deref()
                    .is_none_or(|s| k.timestamp.as_str() >= s)
            })
            .filter_map(|k| serde_json::from_str(&k.record).ok())
            .take(query.limit.min(MAX_QUERY_LIMIT))
            .collect())
    }

    fn held(&self) -> Option<usize> {
        Some(self.records.lock().map_or(0, |r| r.len()))
    }
}

/// `text` as an audit timestamp (`YYYY-MM-DDTHH:MM:SS.mmmZ`), which sorts as text in time
/// order. Accepts RFC 3339 in UTC (`Z`) with 0 to 9 fraction digits; anything else is `None`.
pub fn normalize_timestamp(text: &str) -> Option<String> {
    let body = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?;
    let (main, fraction) = match body.split_once('.') {
        Some((main, fraction)) => (main, fraction),
        None => (body, ""),
    };
    let b = main.as_bytes();
    let digits = |range: std::ops::Range<usize>| b[range].iter().all(u8::is_ascii_digit);
    let shape = b.len() == 19
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape || fraction.len() > 9 || !fraction.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| main[range].parse::<u32>().ok();
    let (month, day, hour, minute, second) = (
        field(5..7)?,
        field(8..10)?,
        field(11..13)?,
        field(14..16)?,
        field(17..19)?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let millis: String = fraction.chars().chain("000".chars()).take(3).collect();
    Some(format!("{}T{}.{millis}Z", &main[..10], &main[11..]))
}

/// The contract every [`RecentAudit`] backend passes. Built for the tests and with the
/// `test-support` feature (the integration tests' own dependency on this crate), so a backend in
/// another module (Redis) runs the same suite; never in a release build.
#[cfg(any(test, feature = "test-support"))]
pub mod testing {
    use super::{AuditQuery, RecentAudit};
    use crate::audit::{AuditEvent, AuditEventType, Severity};

    fn query(workspace_id: &str) -> AuditQuery {
        AuditQuery {
            workspace_id: workspace_id.to_owned(),
            event_type: None,
            since: None,
            limit: 100,
        }
    }

    /// Runs the whole contract; panics on the first violation. Uses workspace ids of its own,
    /// so it can run against a store that holds other records.
    pub async fn recent_audit_contract(store: &dyn RecentAudit) {
        let ws = format!("w_contract_{}", crate::auth::tokens::new_token_id());
        let other = format!("{ws}_other");
        let event = |t: AuditEventType, message: &str, workspace: &str| {
            AuditEvent::new(t, Severity::Info, message).workspace(workspace)
        };
        store.push(&event(AuditEventType::ResourceAccess, "first", &ws));
        store.push(&event(AuditEventType::AuthzFail, "second", &ws));
        store.push(&event(AuditEventType::ResourceAccess, "elsewhere", &other));
        store.push(&AuditEvent::new(
            AuditEventType::AuthnTokenInvalid,
            Severity::Medium,
            "no workspace",
        ));
        store.push(&event(AuditEventType::ResourceAccess, "third", &ws));

        // Newest first, this workspace only, as logged.
        let all = store.query(&query(&ws)).await.unwrap();
        let messages: Vec<_> = all.iter().map(|r| r["message"].as_str().unwrap()).collect();
        assert_eq!(messages, ["third", "second", "first"]);
        assert!(all.iter().all(|r| r["workspace_id"] == ws.as_str()));
        assert_eq!(all[1]["event_type"], "authz_fail");

        // By type.
        let refused = store
            .query(&AuditQuery {
                event_type: Some("authz_fail".into()),
                ..query(&ws)
            })
            .await
            .unwrap();
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0]["message"], "second");

        // Limit keeps the newest.
        let one = store
            .query(&AuditQuery {
                limit: 1,
                ..query(&ws)
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0]["message"], "third");

        // Since: a time after every record gives none; one before all gives all.
        let later = store
            .query(&AuditQuery {
                since: Some("9999-01-01T00:00:00.000Z".into()),
                ..query(&ws)
            })
            .await
            .unwrap();
        assert!(later.is_empty());
        let earlier = store
            .query(&AuditQuery {
                since: Some("2000-01-01T00:00:00.000Z".into()),
                ..query(&ws)
            })
            .await
            .unwrap();
        assert_eq!(earlier.len(), 3);

        // Another workspace sees only its own; an unknown one nothing.
        assert_eq!(store.query(&query(&other)).await.unwrap().len(), 1);
        assert!(store.query(&query("w_nobody")).await.unwrap().is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEventType, Severity};

    #[tokio::test]
    async fn memory_passes_the_contract() {
        testing::recent_audit_contract(&MemoryRecentAudit::default()).await;
    }

    #[tokio::test]
    async fn memory_is_bounded_and_drops_the_oldest() {
        let store = MemoryRecentAudit::new(3);
        for i in 0..5 {
            store.push(
                &AuditEvent::new(
                    AuditEventType::ResourceAccess,
                    Severity::Info,
                    i.to_string(),
                )
                .workspace("w"),
            );
        }
        let kept = store
            .query(&AuditQuery {
                workspace_id: "w".into(),
                event_type: None,
                since: None,
                limit: 100,
            })
            .await
            .unwrap();
        let messages: Vec<_> = kept
            .iter()
            .map(|r| r["message"].as_str().unwrap())
            .collect();
        assert_eq!(messages, ["4", "3", "2"]);
    }

    #[test]
    fn timestamps_are_normalized_or_refused() {
        assert_eq!(
            normalize_timestamp("2026-11-27T22:00:00Z").as_deref(),
            Some("2026-11-27T22:00:00.000Z")
        );
        assert_eq!(
            normalize_timestamp("2026-11-27T22:00:00.123456Z").as_deref(),
            Some("2026-11-27T22:00:00.123Z")
        );
        for bad in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-11-27T22:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-11-27T24:00:00Z",
            "2026-11-27T22:00:00.Z1",
            "２026-11-27T22:00:00Z",
        ] {
            assert!(normalize_timestamp(bad).is_none(), "{bad:?}");
        }
    }
}
