//! A paused agent run handed to the client and back: the 2026-07-28 era's `requestState`.
//!
//! In that era the server cannot send the person a request in the middle of a call. When a run
//! waits for a person (an approval, a question, a sign-in), the call ends with an
//! `input_required` result that carries the question and an opaque state; the client asks the
//! person and calls again with the answer and the state, and the run goes on from there. The
//! state is the whole memory of the pause, so any instance can resume it, and it comes back
//! from the client: it is attacker-controlled input. [`Pauses`] therefore
//!
//! - seals it with an HMAC under a key derived from `SECURITY_SECRET_KEY` (rmcp's
//!   `RequestStateCodec`; every instance derives the same key), so a forged or altered state
//!   is refused;
//! - binds it to the caller (user and workspace) and to the call it pauses (the tool and a
//!   digest of its arguments) as associated data, so another person's state, or a state moved
//!   to another question, does not open;
//! - lets it live as long as a call may wait for a person (`MCP_SERVER_TIMEOUT`), and lets it
//!   open once: its nonce is counted in the shared counter store (Redis across instances), so a
//!   replayed state is refused. The same count lets the server [`claim`](Pauses::claim) a
//!   pause nobody came back for, and reject the action it left waiting in Dust.
//!
//! Every refusal reads the same to the client ([`PAUSE_REFUSED`]); the reason goes to the audit
//! record only.
//!
//! A task of `ask_agent` (MCP Tasks extension) is sealed the same way ([`TaskRef`]): its id is
//! the sealed reference to the Dust run, bound to the caller, living `TASK_TTL`, and readable as
//! often as asked. The sealed payload is signed, not encrypted: it holds ids (conversation,
//! message, action, the last event seen) and the tool's name, never a secret.

use std::{sync::Arc, time::Duration};

use rmcp::model::{RequestStateCodec, RequestStateError, SealOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    auth::Principal,
    dust::{BlockKind, BlockedAction},
    store::{CounterStore, MemoryCounterStore},
};

use super::views::AgentAnswer;

/// What the client reads when a state does not open, whatever the reason.
pub const PAUSE_REFUSED: &str = "requestState is not valid here: it was altered, belongs to another call, has expired or was already used. Call the tool again without it.";

/// What a run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Waiting {
    Approval,
    Question,
    SignIn,
}

/// A run paused on a person: enough to answer Dust and follow the run on from where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PausedRun {
    /// Makes the state single use.
    nonce: String,
    pub waiting: Waiting,
    pub agent_id: String,
    pub conversation_id: String,
    /// The agent message whose run is paused.
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_url: Option<String>,
    pub action_id: String,
    pub tool_name: String,
    pub server_name: String,
    /// A question's option labels, in Dust's order (the answer is sent as an index).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
    /// The event the run paused at: the stream resumes after it.
    pub after: String,
}

impl PausedRun {
    /// The pause of `answer`'s run at `blocked` (event `after`).
    #[must_use]
    pub fn new(
        answer: &AgentAnswer,
        blocked: &BlockedAction,
        options: Vec<String>,
        after: String,
    ) -> Self {
        let waiting = match blocked.kind {
            BlockKind::Approval => Waiting::Approval,
            BlockKind::Question => Waiting::Question,
            BlockKind::PersonalAuth | BlockKind::FileAuth => Waiting::SignIn,
        };
        Self {
            nonce: crate::crypto::random_token::<16>(),
            waiting,
            agent_id: answer.agent_id.clone(),
            conversation_id: answer.conversation_id.clone(),
            message_id: answer.message_id.clone(),
            conversation_url: answer.conversation_url.clone(),
            action_id: blocked.action_id.clone(),
            tool_name: blocked.tool_name.clone(),
            server_name: blocked.server_name.clone(),
            options,
            after,
        }
    }

    /// The run, as a run in progress (no answer yet).
    #[must_use]
    pub fn answer(&self) -> AgentAnswer {
        AgentAnswer::running(
            self.agent_id.clone(),
            self.conversation_id.clone(),
            self.message_id.clone(),
            self.conversation_url.clone(),
        )
    }

    /// The action the run waits on, as the decision and answer calls take it.
    #[must_use]
    pub fn blocked(&self) -> BlockedAction {
        BlockedAction {
            kind: match self.waiting {
                Waiting::Approval => BlockKind::Approval,
                Waiting::Question => BlockKind::Question,
                Waiting::SignIn => BlockKind::PersonalAuth,
            },
            action_id: self.action_id.clone(),
            tool_name: self.tool_name.clone(),
            server_name: self.server_name.clone(),
            data: serde_json::Value::Null,
        }
    }
}

/// A task of `ask_agent` (MCP Tasks extension): the Dust run it stands for. Its sealed form is
/// the task id, so any instance can answer for it, for as long as the id lives (`TASK_TTL`);
/// nothing else about the task is stored, the rest is read from Dust.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub agent_id: String,
    pub conversation_id: String,
    /// The agent message whose run the task follows.
    pub message_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_url: Option<String>,
    pub created_at_ms: i64,
    pub ttl_ms: u64,
}

impl TaskRef {
    /// The task of `answer`'s run, created at `created_at_ms`, living `ttl`.
    #[must_use]
    pub fn new(answer: &AgentAnswer, created_at_ms: i64, ttl: Duration) -> Self {
        Self {
            agent_id: answer.agent_id.clone(),
            conversation_id: answer.conversation_id.clone(),
            message_id: answer.message_id.clone(),
            conversation_url: answer.conversation_url.clone(),
            created_at_ms,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// The run, as a run in progress (no answer yet).
    #[must_use]
    pub fn answer(&self) -> AgentAnswer {
        AgentAnswer::running(
            self.agent_id.clone(),
            self.conversation_id.clone(),
            self.message_id.clone(),
            self.conversation_url.clone(),
        )
    }
}

/// What a task id is bound to besides the caller.
const TASK_BINDING: &str = "tasks";

/// Why a state was refused: for the audit record, never for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseRefusal {
    /// Altered, sealed with another key, bound to another caller or call, or not ours at all.
    Forged,
    Expired,
    /// Opened before.
    Replayed,
    /// The single-use check could not be made (the store failed): refused, not trusted.
    Unchecked,
}

impl PauseRefusal {
    /// The reason's name in the audit record.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::Replayed => "replayed",
            Self::Unchecked => "unchecked",
        }
    }
}

/// Seals and opens paused runs (see the module documentation).
#[derive(Clone)]
pub struct Pauses {
    codec: RequestStateCodec,
    used: Arc<dyn CounterStore>,
    ttl: Duration,
}

impl std::fmt::Debug for Pauses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pauses([REDACTED])")
    }
}

impl Pauses {
    /// Pauses sealed with `key` (at least 32 bytes) for `ttl`, whose single use is counted in
    /// `used`.
    ///
    /// # Panics
    ///
    /// When `key` is shorter than 32 bytes (the derived keys are 32).
    #[must_use]
    pub fn new(key: &[u8], used: Arc<dyn CounterStore>, ttl: Duration) -> Self {
        let codec = RequestStateCodec::try_new(key).expect("a 32-byte request-state key");
        Self { codec, used, ttl }
    }

    /// Pauses only this process can open (stdio, tests): a random key, counted in memory.
    #[must_use]
    pub fn ephemeral(ttl: Duration) -> Self {
        let key = crate::crypto::random_bytes::<32>();
        Self::new(key.as_ref(), Arc::new(MemoryCounterStore::new()), ttl)
    }

    /// How long a sealed pause may come back.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes `paused` for good: `true` when nobody opened it before (a later state that
    /// carries it is then refused as replayed), `false` when it was already opened or taken.
    ///
    /// # Errors
    ///
    /// The counter store's.
    pub async fn claim(
        &self,
        paused: &PausedRun,
        now: std::time::SystemTime,
    ) -> Result<bool, crate::store::StoreError> {
        // The window outlives the state: a count must not be forgotten while the state opens.
        self.first_time(&format!("pause:{}", paused.nonce), self.ttl * 2, now)
            .await
    }

    /// `paused` as an opaque state for `principal`'s call of `tool` with `arguments` (the digest
    /// of what the client sends again).
    #[must_use]
    pub fn seal(
        &self,
        principal: &Principal,
        tool: &str,
        arguments: &[u8],
        paused: &PausedRun,
    ) -> String {
        let bound = binding(principal, tool, arguments);
        let payload = serde_json::to_vec(paused).expect("a paused run encodes as JSON");
        self.codec.seal_with(
            &payload,
            &SealOptions::new().associated_data(&bound).ttl(self.ttl),
        )
    }

    /// `true` the first time `what` is counted within `window` (the shared counter store, so
    /// across instances): an event that many requests may observe is recorded once.
    ///
    /// # Errors
    ///
    /// The counter store's.
    pub async fn first_time(
        &self,
        what: &str,
        window: Duration,
        now: std::time::SystemTime,
    ) -> Result<bool, crate::store::StoreError> {
        let count = self.used.incr_with_ttl(what, window, now).await?;
        Ok(count.count == 1)
    }

    /// `task` as its task id for `principal`: sealed, bound to them, expiring with the task.
    #[must_use]
    pub fn seal_task(&self, principal: &Principal, task: &TaskRef) -> String {
        let bound = binding(principal, TASK_BINDING, &[]);
        let payload = serde_json::to_vec(task).expect("a task encodes as JSON");
        self.codec.seal_with(
            &payload,
            &SealOptions::new()
                .associated_data(&bound)
                .ttl(Duration::from_millis(task.ttl_ms)),
        )
    }

    /// The task a task id stands for, when it is `principal`'s and still lives (as often as
    /// asked: a task is read many times).
    ///
    /// # Errors
    ///
    /// [`PauseRefusal::Forged`] (not ours, or another person's) or [`PauseRefusal::Expired`].
    pub fn open_task(&self, principal: &Principal, task_id: &str) -> Result<TaskRef, PauseRefusal> {
        let bound = binding(principal, TASK_BINDING, &[]);
        let payload = self.codec.open_with(task_id, &bound).map_err(|e| match e {
            RequestStateError::Expired => PauseRefusal::Expired,
            _ => PauseRefusal::Forged,
        })?;
        serde_json::from_slice(&payload).map_err(|_| PauseRefusal::Forged)
    }

    /// Opens a state the client sent back, once.
    ///
    /// # Errors
    ///
    /// [`PauseRefusal`]: forged, expired, replayed, or not checked.
    pub async fn open(
        &self,
        principal: &Principal,
        tool: &str,
        arguments: &[u8],
        sealed: &str,
        now: std::time::SystemTime,
    ) -> Result<PausedRun, PauseRefusal> {
        let bound = binding(principal, tool, arguments);
        let payload = self.codec.open_with(sealed, &bound).map_err(|e| match e {
            RequestStateError::Expired => PauseRefusal::Expired,
            _ => PauseRefusal::Forged,
        })?;
        let paused: PausedRun =
            serde_json::from_slice(&payload).map_err(|_| PauseRefusal::Forged)?;
        match self.claim(&paused, now).await {
            Ok(true) => Ok(paused),
            Ok(false) => Err(PauseRefusal::Replayed),
            Err(_) => Err(PauseRefusal::Unchecked),
        }
    }
}

/// What a state is bound to: the caller and the call (tool, digest of its arguments).
fn binding(principal: &Principal, tool: &str, arguments: &[u8]) -> Vec<u8> {
    let digest = Sha256::digest(arguments);
    let mut bound = Vec::with_capacity(128);
    for part in [
        principal.workspace_id.as_bytes(),
        principal.user_id.as_bytes(),
        tool.as_bytes(),
        digest.as_slice(),
    ] {
        bound.extend_from_slice(&(part.len() as u64).to_be_bytes());
        bound.extend_from_slice(part);
    }
    bound
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(user: &str) -> Principal {
        Principal {
            user_id: user.to_owned(),
            username: user.to_owned(),
            email: None,
            full_name: None,
            workspace_id: "ws1".to_owned(),
            permissions: crate::auth::PermissionSet::all(),
            token_id: None,
            credentials: crate::dust::DustCredentials::new("ws1", "sk-canary"),
        }
    }

    fn paused() -> PausedRun {
        let answer = AgentAnswer::running("agent".into(), "c1".into(), "m1".into(), None);
        let blocked = BlockedAction {
            kind: BlockKind::Approval,
            action_id: "a1".into(),
            tool_name: "send_email".into(),
            server_name: "Gmail".into(),
            data: serde_json::Value::Null,
        };
        PausedRun::new(&answer, &blocked, Vec::new(), "e1".into())
    }

    #[tokio::test]
    async fn a_state_opens_once_for_its_caller_and_call_only() {
        let pauses = Pauses::ephemeral(Duration::from_secs(60));
        let now = std::time::SystemTime::now();
        let alice = principal("alice");
        let state = pauses.seal(&alice, "ask_agent", b"args", &paused());

        let other = pauses
            .open(&principal("bob"), "ask_agent", b"args", &state, now)
            .await;
        assert_eq!(other, Err(PauseRefusal::Forged), "another person");
        let moved = pauses
            .open(&alice, "ask_agent", b"other", &state, now)
            .await;
        assert_eq!(moved, Err(PauseRefusal::Forged), "another question");
        let mut altered = state.clone();
        altered.insert(altered.len() - 3, 'x');
        let altered = pauses
            .open(&alice, "ask_agent", b"args", &altered, now)
            .await;
        assert_eq!(altered, Err(PauseRefusal::Forged));
        let foreign = Pauses::ephemeral(Duration::from_secs(60))
            .open(&alice, "ask_agent", b"args", &state, now)
            .await;
        assert_eq!(foreign, Err(PauseRefusal::Forged), "another server's key");

        let opened = pauses.open(&alice, "ask_agent", b"args", &state, now).await;
        assert_eq!(opened.map(|p| p.action_id), Ok("a1".to_owned()));
        let again = pauses.open(&alice, "ask_agent", b"args", &state, now).await;
        assert_eq!(again, Err(PauseRefusal::Replayed));
    }

    #[test]
    fn the_state_carries_no_secret_and_debug_shows_no_key() {
        let pauses = Pauses::ephemeral(Duration::from_secs(60));
        assert_eq!(format!("{pauses:?}"), "Pauses([REDACTED])");
        let state = pauses.seal(&principal("alice"), "ask_agent", b"args", &paused());
        assert!(!state.contains("sk-"), "{state}");
    }
}
