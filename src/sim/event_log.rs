//! The event log of one agent message: what the SSE route replays and follows.
//!
//! Dust keeps these events in a Redis stream, whose ids (`"<epoch_ms>-<seq>"`) are the resume
//! cursors clients send back as `lastEventId`. The log here keeps every event for the life of
//! the simulator, so a client may reconnect at any time and replay from any cursor.

use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The event types after which nothing more is written for a message. `tool_error` is one of
/// them in Dust's server (`TERMINAL_AGENT_MESSAGE_EVENT_TYPES`), though the JS SDK's own list
/// omits it.
const TERMINAL_EVENTS: &[&str] = &[
    "agent_message_success",
    "agent_message_gracefully_stopped",
    "agent_error",
    "tool_error",
    "agent_generation_cancelled",
    "user_message_error",
];

/// How a person answered a blocked action.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// `validate-action`: `approved`, `rejected` or `always_approved`.
    Validation(String),
    /// `answer-question`: the `answer` object (`selectedOptions`, `customResponse?`).
    Answer(Value),
}

/// Why a decision was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecideError {
    /// No action of that id is waiting on this message.
    NotFound,
    /// The action waits for another kind of answer (a question answered by validate-action...).
    WrongKind,
}

/// The action a run is paused on, as `GET .../actions/blocked` shows it.
#[derive(Debug, Default)]
struct Blocked {
    action: Option<Value>,
    decision: Option<Decision>,
}

/// A Redis-style stream id: strictly increasing `(epoch_ms, seq)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventId {
    ms: u64,
    seq: u64,
}

impl EventId {
    /// Parses `"<ms>-<seq>"` (or a bare `"<ms>"`, as Redis does).
    pub(crate) fn parse(raw: &str) -> Option<Self> {
        let (ms, seq) = raw.split_once('-').unwrap_or((raw, "0"));
        Some(Self {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<(EventId, Value)>,
    last: Option<EventId>,
    terminal: bool,
}

/// The events of one agent message, and the means to wait for more or to cancel it.
#[derive(Debug)]
pub(crate) struct MessageLog {
    inner: Mutex<Inner>,
    /// Bumped to the event count after every push, to wake followers.
    changed: watch::Sender<usize>,
    /// Cancelled by `POST .../cancel`; the runner stops at its next step.
    pub cancel: CancellationToken,
    /// The action the run waits on, if any, and the answer once given.
    blocked: Mutex<Blocked>,
    decided: tokio::sync::Notify,
}

impl MessageLog {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::default(),
            changed: watch::channel(0).0,
            cancel: CancellationToken::new(),
            blocked: Mutex::default(),
            decided: tokio::sync::Notify::new(),
        }
    }

    /// Pauses the run on `action` (a blocked action JSON with `actionId` and `status`).
    pub(crate) fn block(&self, action: Value) {
        let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        *blocked = Blocked {
            action: Some(action),
            decision: None,
        };
    }

    /// The action the run waits on, while nobody has answered it.
    pub(crate) fn blocked_action(&self) -> Option<Value> {
        let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
        match (&blocked.action, &blocked.decision) {
            (Some(action), None) if !self.is_done() => Some(action.clone()),
            _ => None,
        }
    }

    /// Answers the waiting action `action_id`, if it waits for that kind of answer (`status`).
    pub(crate) fn decide(
        &self,
        action_id: &str,
        status: &str,
        decision: Decision,
    ) -> Result<(), DecideError> {
        {
            let mut blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
            let waiting = blocked
                .action
                .as_ref()
                .filter(|a| a["actionId"] == action_id && blocked.decision.is_none());
            let Some(action) = waiting else {
                return Err(DecideError::NotFound);
            };
            if action["status"] != status {
                return Err(DecideError::WrongKind);
            }
            blocked.decision = Some(decision);
        }
        self.decided.notify_waiters();
        Ok(())
    }

    /// Waits for the answer to the action the run is blocked on.
    pub(crate) async fn wait_decision(&self) -> Decision {
        loop {
            let notified = self.decided.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let blocked = self.blocked.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(decision) = &blocked.decision {
                    return decision.clone();
                }
            }
            notified.await;
        }
    }

    /// Appends an event and returns its id. Ignored once a terminal event was written.
    pub(crate) fn push(&self, data: Value) -> Option<EventId> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let terminal = is_terminal(&data);
        let (id, count) = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if inner.terminal {
                return None;
            }
            let id = match inner.last {
                Some(last) if last.ms >= now_ms => EventId {
                    ms: last.ms,
                    seq: last.seq + 1,
                },
                _ => EventId { ms: now_ms, seq: 0 },
            };
            inner.last = Some(id);
            inner.terminal = terminal;
            inner.events.push((id, data));
            (id, inner.events.len())
        };
        self.changed.send_replace(count);
        Some(id)
    }

    /// Index of the first event after the cursor `last_event_id` (0 when absent or unparsable).
    pub(crate) fn position_after(&self, last_event_id: Option<&str>) -> usize {
        let Some(cursor) = last_event_id.and_then(EventId::parse) else {
            return 0;
        };
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.events.partition_point(|(id, _)| *id <= cursor)
    }

    /// The events from index `from`, with whether the log is complete.
    pub(crate) fn events_from(&self, from: usize) -> (Vec<(EventId, Value)>, bool) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let events = inner.events.get(from..).unwrap_or_default().to_vec();
        (events, inner.terminal)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .terminal
    }

    /// A receiver that wakes when events are pushed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<usize> {
        self.changed.subscribe()
    }

    /// Waits until the terminal event is written or `cap` elapses; true when done.
    pub(crate) async fn wait_done(&self, cap: Duration) -> bool {
        let mut rx = self.subscribe();
        let wait = async {
            while !self.is_done() {
                if rx.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(cap, wait).await;
        self.is_done()
    }
}

fn is_terminal(data: &Value) -> bool {
    data.get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| TERMINAL_EVENTS.contains(&t))
}
