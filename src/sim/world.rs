//! The simulated workspace's state: agents, spaces, data sources, documents, conversations.
//!
//! One [`World`] per workspace, behind a `std::sync::Mutex` (never held across an `.await`:
//! every handler copies what it needs out, like mini-redis' `Db`). The records here are the
//! simulator's own; their Dust JSON shapes are rendered by the modules that serve them.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Instant,
};

use axum::body::Bytes;
use serde_json::Value;

use super::event_log::MessageLog;

/// How a seeded agent produces its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AgentKind {
    /// Searches every data source of the workspace and answers with the best chunk.
    Dust,
    /// Searches one data source only.
    Knowledge { data_source_id: &'static str },
    /// Repeats the user's message verbatim.
    Echo,
    /// Streams a little, then fails with `agent_error`.
    Failing,
    /// Streams a long answer with long pauses (for timeouts and cancellation).
    Slow,
    /// Calls a tool that fails: the run ends with `tool_error`.
    ToolError,
    /// Sends an email through a tool that needs the person's approval
    /// (`tool_approve_execution`, unless the message skips tool validation).
    Approval,
    /// Asks the person a question (`tool_ask_user_question`) before answering.
    Question,
    /// Needs the person to connect a tool first (`tool_personal_auth_required`).
    PersonalAuth,
}

/// A seeded agent configuration.
#[derive(Debug, Clone)]
pub(crate) struct Agent {
    pub s_id: &'static str,
    pub id: u64,
    pub name: &'static str,
    pub description: &'static str,
    pub instructions: Option<&'static str>,
    /// `global` for built-in agents, `visible` for custom ones.
    pub scope: &'static str,
    pub model_provider: &'static str,
    pub model_id: &'static str,
    pub kind: AgentKind,
}

/// A space (`vlt_` id).
#[derive(Debug, Clone)]
pub(crate) struct Space {
    pub s_id: &'static str,
    pub name: &'static str,
    /// `global`, `regular` or `system`. The system space (where Dust keeps the managed
    /// connectors) is admin-only: the simulator's keys are ordinary keys, which never see it.
    pub kind: &'static str,
    pub created_at: i64,
}

impl Space {
    /// Whether an ordinary (non-system) key can see and read this space.
    pub(crate) fn visible_to_keys(&self) -> bool {
        self.kind != "system"
    }
}

/// A data source view (`dsv_` id): how a space reaches a data source, possibly only some of
/// its nodes (`parents_in`). Every folder has a default view in its own space; a connector,
/// which lives in the system space, reaches other spaces only through views.
#[derive(Debug, Clone)]
pub(crate) struct DataSourceView {
    pub id: u64,
    pub s_id: &'static str,
    pub space_id: &'static str,
    pub data_source_id: &'static str,
    /// `None`: the whole data source; else the node ids (a document matches through any of its
    /// parents, itself included).
    pub parents_in: Option<Vec<&'static str>>,
    pub created_at: i64,
}

impl DataSourceView {
    /// `default` (the whole data source) or `custom` (a selection of nodes).
    pub(crate) fn kind(&self) -> &'static str {
        if self.parents_in.is_some() {
            "custom"
        } else {
            "default"
        }
    }

    /// Whether `doc` is reachable through this view.
    pub(crate) fn covers(&self, doc: &Document) -> bool {
        self.parents_in
            .as_ref()
            .is_none_or(|parents| parents.iter().any(|p| doc.parents().any(|d| d == *p)))
    }
}

/// A data source (`dts_` id) and its documents.
#[derive(Debug, Clone)]
pub(crate) struct DataSource {
    pub id: u64,
    pub s_id: &'static str,
    pub space_id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// `None` for folders (API-writable); `Some("notion")` etc. for managed connectors.
    pub connector_provider: Option<&'static str>,
    pub connector_id: Option<&'static str>,
    pub created_at: i64,
    /// Documents by id; a `BTreeMap` so listing order is stable.
    pub documents: BTreeMap<String, Document>,
    /// Tables by id (folders only in the seed; connector-backed tables are not simulated).
    pub tables: BTreeMap<String, Table>,
}

/// A table of a folder: its rows, and the schema inferred from them as Dust's core does.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub table_id: String,
    pub name: String,
    pub title: String,
    pub description: String,
    pub timestamp: i64,
    pub tags: Vec<String>,
    pub mime_type: String,
    /// Rows by id, each a map of column name to cell (`string`, `number`, `bool`,
    /// `{type: "datetime", epoch}` or `null`).
    pub rows: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

/// A document stored in a data source.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    /// Its ancestors in the connector's tree, nearest first (a Notion page's parent pages, a
    /// Slack message's channel); empty for folder documents. `parents` in Dust's JSON is the
    /// document itself followed by these.
    pub ancestors: Vec<String>,
    pub document_id: String,
    pub title: String,
    pub source_url: Option<String>,
    pub tags: Vec<String>,
    pub timestamp: i64,
    pub created: i64,
    pub mime_type: String,
    pub text: String,
}

impl Document {
    /// Dust's `parents`: the document id, then its ancestors.
    pub(crate) fn parents(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.document_id.as_str()).chain(self.ancestors.iter().map(String::as_str))
    }
}

/// Where an agent message stands (the public statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentStatus {
    Created,
    Succeeded,
    Failed,
    Cancelled,
}

impl AgentStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// A user message of a conversation.
#[derive(Debug, Clone)]
pub(crate) struct UserMsg {
    pub id: u64,
    pub s_id: String,
    pub created: i64,
    pub rank: usize,
    pub content: String,
    pub mentions: Vec<String>,
    /// The normalised `context` object, stored as sent back.
    pub context: Value,
}

/// An agent message of a conversation; the runner updates it as the agent progresses.
#[derive(Debug, Clone)]
pub(crate) struct AgentMsg {
    pub id: u64,
    pub agent_message_id: u64,
    pub s_id: String,
    pub created: i64,
    pub rank: usize,
    pub parent_message_id: String,
    pub agent_id: String,
    pub status: AgentStatus,
    pub content: Option<String>,
    pub chain_of_thought: Option<String>,
    pub error: Option<Value>,
    pub actions: Vec<Value>,
}

/// A content fragment of a conversation: an attachment posted before a user message.
#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    pub id: u64,
    /// The message sId (`sId`); `contentFragmentId` is another one, as in Dust.
    pub s_id: String,
    pub content_fragment_id: String,
    pub created: i64,
    pub rank: usize,
    pub title: String,
    pub content_type: String,
    pub source_url: Option<String>,
    /// `{username, fullName, email, profilePictureUrl}`, each string or null.
    pub context: Value,
    pub source: FragmentSource,
    /// What the agents read of it (copied when posted: deleting the file later does not change
    /// the conversation).
    pub size: u64,
    /// The first line of a text attachment (`None` for binary content).
    pub first_line: Option<String>,
}

/// What a fragment is made of.
#[derive(Debug, Clone)]
pub(crate) enum FragmentSource {
    /// An uploaded file, or inline content Dust turned into one.
    File {
        file_id: String,
        snippet: Option<String>,
        text_url: String,
        source_provider: Option<String>,
        source_icon: Option<String>,
    },
    /// A document reached through a data source view.
    Node {
        node_id: String,
        view_id: String,
        provider: Option<String>,
        space_name: String,
    },
}

/// One message slot of a conversation (Dust keeps versions; the simulator has only v0).
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    User(UserMsg),
    Agent(AgentMsg),
    Fragment(Fragment),
}

/// Where an uploaded file stands (`created` until its bytes arrive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileStatus {
    Created,
    Ready,
    Failed,
}

impl FileStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

/// A file of the workspace (`fil_` id), created by `POST /files` then uploaded, or made from
/// a fragment's inline content.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub s_id: String,
    pub content_type: String,
    pub file_name: String,
    /// The declared size, in bytes (what the upload may not exceed).
    pub file_size: u64,
    pub use_case: String,
    pub use_case_metadata: Option<Value>,
    pub status: FileStatus,
    /// When it was created: the upload must follow within a minute.
    pub created: Instant,
    /// The uploaded bytes, once `ready`.
    pub content: Option<Bytes>,
}

/// A conversation.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub id: u64,
    pub s_id: String,
    pub created: i64,
    pub updated: i64,
    pub title: Option<String>,
    pub visibility: String,
    pub slots: Vec<Slot>,
}

impl Conversation {
    pub(crate) fn agent_message_mut(&mut self, s_id: &str) -> Option<&mut AgentMsg> {
        self.slots.iter_mut().find_map(|slot| match slot {
            Slot::Agent(m) if m.s_id == s_id => Some(m),
            _ => None,
        })
    }
}

/// Everything one workspace holds.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub agents: Vec<Agent>,
    pub spaces: Vec<Space>,
    pub data_sources: Vec<DataSource>,
    pub views: Vec<DataSourceView>,
    pub conversations: HashMap<String, Conversation>,
    /// Event logs of agent messages, by agent message sId.
    pub message_logs: HashMap<String, Arc<MessageLog>>,
    /// Tools answered `always_approved`: later runs use them without asking.
    pub always_approved: std::collections::HashSet<String>,
    /// Files by sId (bounded: see `files`).
    pub files: HashMap<String, StoredFile>,
    next_id: u64,
}

impl World {
    /// A world with the given seed; numeric ids continue after the seeded ones.
    pub(crate) fn new(
        agents: Vec<Agent>,
        spaces: Vec<Space>,
        data_sources: Vec<DataSource>,
        views: Vec<DataSourceView>,
    ) -> Self {
        Self {
            agents,
            spaces,
            data_sources,
            views,
            next_id: 1000,
            ..Self::default()
        }
    }

    /// A fresh numeric model id.
    pub(crate) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub(crate) fn agent(&self, s_id: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.s_id == s_id)
    }

    /// The space `s_id`, if a key can see it (never the system space).
    pub(crate) fn space(&self, s_id: &str) -> Option<&Space> {
        self.spaces
            .iter()
            .find(|s| s.s_id == s_id && s.visible_to_keys())
    }

    /// The views of space `space_id`.
    pub(crate) fn views_of<'w>(
        &'w self,
        space_id: &'w str,
    ) -> impl Iterator<Item = &'w DataSourceView> + 'w {
        self.views.iter().filter(move |v| v.space_id == space_id)
    }

    /// The data source `s_id`, whatever space owns it.
    pub(crate) fn data_source_by_id(&self, s_id: &str) -> Option<&DataSource> {
        self.data_sources.iter().find(|d| d.s_id == s_id)
    }

    /// The data source `ds_id` (sId, or legacy name) of space `space_id`.
    pub(crate) fn data_source(&self, space_id: &str, ds_id: &str) -> Option<&DataSource> {
        self.data_sources
            .iter()
            .find(|d| d.space_id == space_id && (d.s_id == ds_id || d.name == ds_id))
    }

    pub(crate) fn data_source_mut(
        &mut self,
        space_id: &str,
        ds_id: &str,
    ) -> Option<&mut DataSource> {
        self.data_sources
            .iter_mut()
            .find(|d| d.space_id == space_id && (d.s_id == ds_id || d.name == ds_id))
    }
}
