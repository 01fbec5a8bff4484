//! The Dust API shapes this server reads and writes.
//!
//! They follow `shared/reference/dust-api.md` (the zod schemas of `@dust-tt/client`), not the
//! looser published swagger. Every struct ignores unknown fields and defaults what Dust may omit,
//! because Dust spreads internal objects into its answers and adds fields without notice; a new
//! field must never break a user's tool call. Parts we only pass through to the model stay
//! `serde_json::Value`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An agent as listed by `GET /assistant/agent_configurations` (`LightAgentConfiguration`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfiguration {
    /// The agent's string id (`dust` for the global Dust agent, 10 characters for custom ones).
    pub s_id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub picture_url: Option<String>,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub model: Option<Value>,
    #[serde(default)]
    pub version: Option<u64>,
}

/// `context` of a user message: who is asking. Dust requires `username` and a valid IANA
/// `timezone`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MessageContext {
    pub username: String,
    pub timezone: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_picture_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One agent mention: the agents that run for a message are exactly its mentions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Mention {
    pub configuration_id: String,
}

/// The body of `POST /assistant/conversations/{cId}/messages`, and the `message` member of a
/// conversation creation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostMessage {
    pub content: String,
    pub mentions: Vec<Mention>,
    pub context: MessageContext,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_tools_validation: Option<bool>,
}

/// The body of `POST /assistant/conversations`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateConversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<String>,
    pub message: PostMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_tools_validation: Option<bool>,
    /// Attached before the message, in order, so the agent reads them with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_fragments: Vec<NewContentFragment>,
}

/// A content fragment to attach (`PublicPostContentFragmentRequestBodySchema`): inline text,
/// which Dust turns into a file itself, or a file uploaded before.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum NewContentFragment {
    Text {
        title: String,
        content: String,
        #[serde(rename = "contentType")]
        content_type: String,
    },
    File {
        title: String,
        #[serde(rename = "fileId")]
        file_id: String,
    },
}

/// A content fragment of a conversation (`ContentFragmentSchema`), as much as this server reads.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContentFragment {
    pub s_id: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub text_bytes: Option<u64>,
}

/// The body of `POST /files`: a file to be uploaded, for a conversation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NewFile {
    pub content_type: String,
    pub file_name: String,
    pub file_size: u64,
    /// `conversation`: the only use case Dust opens to API keys.
    pub use_case: String,
}

/// A Dust file (`FileTypeSchema`): `uploadUrl` is where its bytes go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DustFile {
    pub s_id: String,
    #[serde(default)]
    pub content_type: String,
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub file_size: u64,
    /// `created` until the bytes are uploaded, then `ready` (or `failed`).
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub upload_url: Option<String>,
}

/// A user message (`UserMessageSchema`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UserMessage {
    pub s_id: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub mentions: Vec<Value>,
    #[serde(default)]
    pub context: Option<Value>,
    #[serde(default)]
    pub visibility: Option<String>,
}

/// An error attached to a failed agent message or carried by an error event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentErrorInfo {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// An agent message (`AgentMessageTypeSchema`). `content` is the answer once `status` is
/// `succeeded`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AgentMessage {
    pub s_id: String,
    #[serde(default)]
    pub created: i64,
    /// `created` (still running), `succeeded`, `failed` or `cancelled`.
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub chain_of_thought: Option<String>,
    #[serde(default)]
    pub parent_message_id: Option<String>,
    #[serde(default)]
    pub configuration: Option<Value>,
    #[serde(default)]
    pub actions: Vec<Value>,
    #[serde(default)]
    pub error: Option<AgentErrorInfo>,
}

impl AgentMessage {
    /// The `sId` of the agent that wrote this message, when Dust included its configuration.
    pub fn agent_id(&self) -> Option<&str> {
        self.configuration.as_ref()?.get("sId")?.as_str()
    }
}

/// One slot of a conversation's `content`: the versions of one message, of one kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ConversationItem {
    UserMessage(UserMessage),
    AgentMessage(AgentMessage),
    ContentFragment(ContentFragment),
    #[serde(other)]
    Other,
}

/// A conversation (`ConversationSchema`). `content` holds one array of versions per message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    pub s_id: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub content: Vec<Vec<ConversationItem>>,
}

impl Conversation {
    /// The latest version of every message, in conversation order (compacted slots skipped).
    pub fn latest_messages(&self) -> impl Iterator<Item = &ConversationItem> {
        self.content.iter().filter_map(|versions| versions.last())
    }

    /// The latest version of the agent message answering the user message `user_message_id`.
    pub fn agent_reply_to(&self, user_message_id: &str) -> Option<&AgentMessage> {
        self.latest_messages().find_map(|item| match item {
            ConversationItem::AgentMessage(m)
                if m.parent_message_id.as_deref() == Some(user_message_id) =>
            {
                Some(m)
            }
            _ => None,
        })
    }
}

/// The answer to `POST /assistant/conversations`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CreatedConversation {
    pub conversation: Conversation,
    #[serde(default)]
    pub message: Option<UserMessage>,
}

/// The answer to `POST /assistant/conversations/{cId}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PostedMessage {
    pub message: UserMessage,
    #[serde(default)]
    pub agent_messages: Vec<AgentMessage>,
}

/// A Dust space (`SpaceTypeSchema`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Space {
    pub s_id: String,
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub is_restricted: bool,
}

/// A data source (`DataSourceTypeSchema`): what this server calls a knowledge base.
/// `connector_provider` is `None` for folders, which are the only API-writable kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataSource {
    pub s_id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub connector_id: Option<String>,
    #[serde(default)]
    pub connector_provider: Option<String>,
    #[serde(default)]
    pub edited_by_user: Option<Value>,
}

/// A data source view (`DataSourceViewSchema`): how a space reaches a data source, possibly
/// only the nodes under `parents_in`. Connectors (Notion, Slack, ...) live in Dust's admin-only
/// system space and reach every other space only this way.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataSourceView {
    pub s_id: String,
    /// `folder`, `website`, `managed` (a connector), `apps`, ...
    #[serde(default)]
    pub category: String,
    /// `default` (the whole data source) or `custom` (the nodes under `parents_in`).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub parents_in: Option<Vec<String>>,
    #[serde(default)]
    pub space_id: String,
    pub data_source: DataSource,
}

/// A chunk of a document that matched a search, with its relevance score.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chunk {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub offset: Option<u64>,
    #[serde(default)]
    pub score: Option<f64>,
}

/// A core document (`CoreAPIDocumentSchema`), as returned by search, list and get.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Document {
    pub document_id: String,
    #[serde(default)]
    pub data_source_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub text_size: Option<u64>,
    #[serde(default)]
    pub chunk_count: Option<u64>,
    #[serde(default)]
    pub chunks: Vec<Chunk>,
    #[serde(default)]
    pub text: Option<String>,
}

/// A page of `GET .../documents`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocumentPage {
    pub documents: Vec<Document>,
    #[serde(default)]
    pub total: u64,
}

/// Query of a data source search. Serialised by the client, never sent with `full_text=false`
/// (Dust coerces any non-empty string, `"false"` included, to true).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchQuery {
    pub query: String,
    pub top_k: u32,
    pub full_text: bool,
    pub tags_in: Vec<String>,
    pub tags_not: Vec<String>,
    pub timestamp_gt: Option<i64>,
    pub timestamp_lt: Option<i64>,
}

/// Which nodes a workspace search returns (`ContentNodesViewTypeSchema`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NodeViewType {
    #[default]
    All,
    Document,
    Table,
}

/// The body of `POST /search`, the text form of the SDK's `SearchRequestBodySchema`. Every
/// member is required by Dust's schema; Dust searches only the spaces listed (none: nothing).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSearch {
    /// Matched against node titles; sent as given.
    pub query: String,
    pub view_type: NodeViewType,
    pub space_ids: Vec<String>,
    /// Whether data sources themselves may be found (as `folder` nodes).
    pub include_data_sources: bool,
    pub limit: u32,
}

/// What a content node is (`ContentNodeTypeSchema`); a kind Dust adds later reads as `Other`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ContentNodeType {
    Document,
    Table,
    Folder,
    #[serde(other)]
    Other,
}

/// A node found by `POST /search` (`DataSourceContentNodeSchema`): a content node with its data
/// source and the views through which the key reaches it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContentNode {
    pub internal_id: String,
    pub title: String,
    #[serde(rename = "type")]
    pub node_type: ContentNodeType,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub parent_internal_id: Option<String>,
    /// The node itself, then its ancestors, nearest first.
    #[serde(default)]
    pub parent_internal_ids: Option<Vec<String>>,
    #[serde(default)]
    pub parent_title: Option<String>,
    #[serde(default)]
    pub source_url: Option<String>,
    #[serde(default)]
    pub last_updated_at: Option<i64>,
    pub data_source: DataSource,
    #[serde(default)]
    pub data_source_views: Vec<DataSourceView>,
}

/// Dust's answer to `POST /search` (`PostWorkspaceSearchResponseBodySchema`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeSearchResults {
    pub nodes: Vec<ContentNode>,
    /// `truncated-query-clauses` when Dust cut a long query.
    #[serde(default)]
    pub warning_code: Option<String>,
    /// How many nodes matched, beyond this page too.
    #[serde(default)]
    pub results_count: Option<u64>,
}

/// A table of a data source (`CoreAPITablePublicSchema`). The row upsert answers only `name`,
/// `table_id`, `description` and `schema`: the rest defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Table {
    pub table_id: String,
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: String,
    /// The columns; `null` until the table has rows.
    #[serde(default)]
    pub schema: Option<Vec<TableColumn>>,
    #[serde(default)]
    pub timestamp: Option<i64>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub parents: Vec<String>,
    #[serde(default)]
    pub parent_id: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// One column of a table's schema.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableColumn {
    pub name: String,
    /// `int`, `float`, `text`, `bool` or `datetime`.
    pub value_type: String,
    #[serde(default)]
    pub possible_values: Option<Vec<String>>,
}

/// One row of a table: its id and its cells (`string`, `number`, `bool`,
/// `{"type":"datetime","epoch"}` or `null`, by column name).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableRow {
    pub row_id: String,
    pub value: serde_json::Map<String, serde_json::Value>,
}

/// A page of `GET .../tables/{tId}/rows`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableRowPage {
    pub rows: Vec<TableRow>,
    #[serde(default)]
    pub offset: u64,
    #[serde(default)]
    pub limit: u64,
    #[serde(default)]
    pub total: u64,
}

/// The body of a row upsert (`POST .../tables/{tId}/rows`, `UpsertTableRowsRequestSchema`).
/// `truncate` is never sent: this server only adds or replaces rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpsertTableRows {
    pub rows: Vec<TableRow>,
}

/// The body of a document upsert (`POST .../documents/{documentId}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct UpsertDocument {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// Always sent `true` by this server: without it Dust answers with every chunk's embedding
    /// vector (about 15 times the text, past the client's answer limit for a large document).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub light_document_output: bool,
}

/// What a paused run waits for (`tool_approve_execution` and its kin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// `tool_approve_execution`: approve or reject the tool call (`validate-action`).
    Approval,
    /// `tool_ask_user_question`: answer a question (`answer-question`).
    Question,
    /// `tool_personal_auth_required`: connect a personal account to the tool in Dust.
    PersonalAuth,
    /// `tool_file_auth_required`: authorize access to a file in Dust.
    FileAuth,
}

/// An action a run waits on, as `GET .../actions/blocked` lists it (`BlockedActionExecution`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PendingAction {
    pub action_id: String,
    pub message_id: String,
    pub conversation_id: String,
    /// `blocked_validation_required`, `blocked_user_answer_required`,
    /// `blocked_authentication_required`, ...
    pub status: String,
    #[serde(default)]
    pub inputs: Value,
    #[serde(default)]
    pub stake: Option<String>,
    /// `toolName`, `mcpServerName`, `mcpServerDisplayName`, ...
    #[serde(default)]
    pub metadata: Value,
    /// The question, for `blocked_user_answer_required`.
    #[serde(default)]
    pub question: Option<Value>,
}

/// A person's answer to a tool approval (`validate-action`'s `approved`: a string, not the
/// boolean Dust's OpenAPI shows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionDecision {
    Approved,
    Rejected,
    /// Approved, and not asked again for this tool.
    AlwaysApproved,
}

/// A person's answer to a question (`answer-question`'s `answer`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionAnswer {
    /// Indices of the chosen options.
    pub selected_options: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_response: Option<String>,
}

/// A blocking event: the run is paused until someone answers it in Dust.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockedAction {
    pub kind: BlockKind,
    pub action_id: String,
    /// The tool (`metadata.toolName`).
    pub tool_name: String,
    /// The tool's server as people know it (`mcpServerDisplayName`, else `mcpServerName`).
    pub server_name: String,
    /// The event's `data`, whole (inputs, stake, question, auth details).
    pub data: Value,
}

/// One event of an agent message's stream (`AgentMessageEventDataSchema`), with the `eventId`
/// that resumes the stream after it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentEvent {
    pub event_id: String,
    pub kind: AgentEventKind,
}

/// The events this server acts on; the rest are kept as `Other` with their type name.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEventKind {
    /// A piece of generated text; only `classification == "tokens"` is answer text.
    GenerationTokens {
        text: String,
        classification: String,
    },
    /// The agent started a tool.
    ToolCallStarted { tool_name: String },
    /// A tool reported progress or finished.
    ToolProgress { label: String },
    /// Terminal: the final message, whose `content` is the answer.
    Success { message: Box<AgentMessage> },
    /// Terminal: the agent failed.
    Error { error: AgentErrorInfo },
    /// Terminal: the generation was cancelled.
    Cancelled,
    /// Terminal: the user message itself was refused.
    UserMessageError { error: AgentErrorInfo },
    /// Terminal in Dust's server (the message is marked failed), though the JS SDK does not
    /// list it: a tool failed.
    ToolError { error: AgentErrorInfo },
    /// Not terminal, but nothing follows until someone answers it in Dust.
    Blocked(Box<BlockedAction>),
    /// Any other event (`agent_message_done`, `tool_params`, ...).
    Other { event_type: String },
}

impl AgentEventKind {
    /// Whether no event follows this one on the message's stream.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Success { .. }
                | Self::Error { .. }
                | Self::Cancelled
                | Self::UserMessageError { .. }
                | Self::ToolError { .. }
        )
    }

    /// Decodes the `data` member of a stream frame.
    pub fn from_event_data(data: &Value) -> Self {
        let event_type = data.get("type").and_then(Value::as_str).unwrap_or_default();
        let str_field = |name: &str| {
            data.get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let error_field = || {
            data.get("error")
                .cloned()
                .and_then(|e| serde_json::from_value(e).ok())
                .unwrap_or(AgentErrorInfo {
                    code: "unknown".into(),
                    message: "The agent failed without saying why.".into(),
                })
        };
        match event_type {
            "generation_tokens" => Self::GenerationTokens {
                text: str_field("text"),
                classification: str_field("classification"),
            },
            "tool_call_started" => Self::ToolCallStarted {
                tool_name: str_field("toolName"),
            },
            "tool_notification" => Self::ToolProgress {
                label: data
                    .pointer("/notification/data/label")
                    .and_then(Value::as_str)
                    .unwrap_or("working")
                    .to_owned(),
            },
            "agent_message_success" | "agent_message_gracefully_stopped" => {
                match data
                    .get("message")
                    .cloned()
                    .map(serde_json::from_value::<AgentMessage>)
                {
                    Some(Ok(message)) => Self::Success {
                        message: Box::new(message),
                    },
                    _ => Self::Other {
                        event_type: event_type.to_owned(),
                    },
                }
            }
            "agent_error" => Self::Error {
                error: error_field(),
            },
            "agent_generation_cancelled" => Self::Cancelled,
            "tool_error" => Self::ToolError {
                error: error_field(),
            },
            "tool_approve_execution"
            | "tool_ask_user_question"
            | "tool_personal_auth_required"
            | "tool_file_auth_required" => {
                let kind = match event_type {
                    "tool_approve_execution" => BlockKind::Approval,
                    "tool_ask_user_question" => BlockKind::Question,
                    "tool_personal_auth_required" => BlockKind::PersonalAuth,
                    _ => BlockKind::FileAuth,
                };
                let metadata = |name: &str| {
                    data.pointer(&format!("/metadata/{name}"))
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                };
                Self::Blocked(Box::new(BlockedAction {
                    kind,
                    action_id: str_field("actionId"),
                    tool_name: metadata("toolName").unwrap_or("a tool").to_owned(),
                    server_name: metadata("mcpServerDisplayName")
                        .or_else(|| metadata("mcpServerName"))
                        .unwrap_or("an MCP server")
                        .to_owned(),
                    data: data.clone(),
                }))
            }
            "user_message_error" => Self::UserMessageError {
                error: error_field(),
            },
            other => Self::Other {
                event_type: other.to_owned(),
            },
        }
    }
}
