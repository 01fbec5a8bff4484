//! The JSON shapes tools and resources return: compact views of Dust objects with camelCase
//! names and the ids a model needs for its next call. Dust's full objects carry much that only
//! costs a model's context (model settings, picture URLs, hashes).

use schemars::JsonSchema;
use serde::Serialize;

use crate::dust::{
    AgentConfiguration, ContentNode, ContentNodeType, Conversation, ConversationItem, DataSource,
    Document, Space, Table, TableRow,
};

#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentView {
    /// Pass this as `agentId` to `ask_agent`.
    pub id: String,
    pub name: String,
    pub description: String,
    pub scope: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
}

impl AgentView {
    pub fn summary(agent: &AgentConfiguration) -> Self {
        Self {
            id: agent.s_id.clone(),
            name: agent.name.clone(),
            description: agent.description.clone(),
            scope: agent.scope.clone(),
            status: agent.status.clone(),
            instructions: None,
        }
    }

    pub fn full(agent: &AgentConfiguration) -> Self {
        Self {
            instructions: agent.instructions.clone(),
            ..Self::summary(agent)
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct AgentList {
    pub agents: Vec<AgentView>,
}

/// `list_spaces`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SpaceList {
    pub spaces: Vec<SpaceView>,
}

/// One page of `list_documents`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DocumentList {
    pub documents: Vec<DocumentView>,
    /// How many documents the knowledge base holds.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
}

/// `delete_document`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedDocument {
    /// Always `true`.
    pub deleted: bool,
    pub knowledge_base_id: String,
    pub document_id: String,
}

/// One column of a table.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ColumnView {
    pub name: String,
    /// `int`, `float`, `text`, `bool` or `datetime`.
    #[serde(rename = "type")]
    pub value_type: String,
    /// The values the column takes, when Dust knows them all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub possible_values: Option<Vec<String>>,
}

/// A table of a folder knowledge base and its schema.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableView {
    pub knowledge_base_id: String,
    /// Pass this as `tableId`.
    pub table_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    /// The columns (empty until the table has rows).
    pub columns: Vec<ColumnView>,
    /// When it last changed (milliseconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

impl TableView {
    pub fn new(knowledge_base_id: &str, table: Table) -> Self {
        Self {
            knowledge_base_id: knowledge_base_id.to_owned(),
            table_id: table.table_id,
            name: table.name,
            title: table.title,
            description: table.description,
            columns: table
                .schema
                .unwrap_or_default()
                .into_iter()
                .map(|c| ColumnView {
                    name: c.name,
                    value_type: c.value_type,
                    possible_values: c.possible_values,
                })
                .collect(),
            timestamp: table.timestamp,
            tags: table.tags,
            mime_type: table.mime_type,
        }
    }
}

/// `list_tables`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct TableList {
    pub tables: Vec<TableView>,
}

/// One row of a table.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RowView {
    pub row_id: String,
    /// The cells by column name: string, number, boolean, null or `{"type": "datetime",
    /// "epoch": <milliseconds>}`.
    #[schema(value_type = Object)]
    pub value: serde_json::Map<String, serde_json::Value>,
}

impl From<TableRow> for RowView {
    fn from(row: TableRow) -> Self {
        Self {
            row_id: row.row_id,
            value: row.value,
        }
    }
}

/// One page of `list_table_rows`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TableRowList {
    pub knowledge_base_id: String,
    pub table_id: String,
    pub rows: Vec<RowView>,
    /// How many rows the table holds.
    pub total: u64,
    pub offset: u32,
    pub limit: u32,
}

/// `upsert_table_rows`: how many rows were written and the table's schema after them.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpsertedRows {
    pub knowledge_base_id: String,
    pub table_id: String,
    /// How many rows were created or replaced.
    pub upserted: usize,
    /// The table's columns after the write.
    pub columns: Vec<ColumnView>,
}

/// `delete_table_row`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeletedRow {
    /// Always `true`.
    pub deleted: bool,
    pub knowledge_base_id: String,
    pub table_id: String,
    pub row_id: String,
}

/// A conversation this caller started through this server.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationSummary {
    pub conversation_id: String,
    pub title: Option<String>,
    pub agent_id: String,
    /// Milliseconds since the epoch.
    pub created: i64,
}

/// `list_conversations`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct ConversationList {
    pub conversations: Vec<ConversationSummary>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpaceView {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub restricted: bool,
}

impl From<&Space> for SpaceView {
    fn from(space: &Space) -> Self {
        Self {
            id: space.s_id.clone(),
            name: space.name.clone(),
            kind: space.kind.clone(),
            restricted: space.is_restricted,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBaseView {
    /// Pass this as `knowledgeBaseId`.
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub space_id: String,
    pub space_name: String,
    /// `folder` (documents can be written through this server) or `connector`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector_id: Option<String>,
    /// When a person last edited it, if Dust says (milliseconds since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// The data source view through which the space reaches it (also accepted as
    /// `knowledgeBaseId`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view_id: Option<String>,
    /// The nodes of the connector this space sees, when it sees only some of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parents_in: Option<Vec<String>>,
    /// Whether its documents can be listed and read one by one (the space owns it); otherwise
    /// only search reaches it.
    pub documents_readable: bool,
}

impl KnowledgeBaseView {
    pub fn new(space: &Space, source: &DataSource) -> Self {
        Self {
            id: source.s_id.clone(),
            name: source.name.clone(),
            description: source.description.clone(),
            space_id: space.s_id.clone(),
            space_name: space.name.clone(),
            kind: if source.connector_provider.is_some() {
                "connector"
            } else {
                "folder"
            },
            connector_provider: source.connector_provider.clone(),
            connector_id: source.connector_id.clone(),
            edited_at: source
                .edited_by_user
                .as_ref()
                .and_then(|e| e.get("editedAt"))
                .and_then(serde_json::Value::as_i64),
            view_id: None,
            parents_in: None,
            documents_readable: true,
        }
    }

    /// The same, as reached through the view `(id, parentsIn)` if any, by a space that owns the
    /// data source (`owned`) or not.
    #[must_use]
    pub fn reached_through(mut self, view: Option<(&str, Option<&[String]>)>, owned: bool) -> Self {
        if let Some((id, parents_in)) = view {
            self.view_id = Some(id.to_owned());
            self.parents_in = parents_in.map(<[String]>::to_vec);
        }
        self.documents_readable = owned;
        self
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    pub knowledge_base_id: String,
    pub document_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The best chunk's relevance, higher is better.
    pub score: f64,
    /// The matching passages, best first.
    pub chunks: Vec<String>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
}

impl SearchHit {
    pub fn new(knowledge_base_id: &str, document: Document) -> Self {
        let mut chunks = document.chunks;
        chunks.sort_by(|a, b| b.score.unwrap_or(0.0).total_cmp(&a.score.unwrap_or(0.0)));
        Self {
            knowledge_base_id: knowledge_base_id.to_owned(),
            score: chunks.first().and_then(|c| c.score).unwrap_or(0.0),
            chunks: chunks.into_iter().map(|c| c.text).collect(),
            document_id: document.document_id,
            title: document.title,
            source_url: document.source_url,
            tags: document.tags,
            timestamp: document.timestamp,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchResults {
    pub results: Vec<SearchHit>,
    /// Knowledge bases that could not be searched, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// `search_workspace`: nodes whose title matches, in Dust's order.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceSearchResults {
    pub results: Vec<WorkspaceNode>,
    /// How many nodes matched in all, when Dust says (may exceed `results`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Dust's warning, e.g. `truncated-query-clauses` when it cut a long query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What a found node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    Document,
    Table,
    Folder,
    /// A kind of node this server does not know yet.
    Other,
}

impl From<ContentNodeType> for NodeType {
    fn from(value: ContentNodeType) -> Self {
        match value {
            ContentNodeType::Document => Self::Document,
            ContentNodeType::Table => Self::Table,
            ContentNodeType::Folder => Self::Folder,
            ContentNodeType::Other => Self::Other,
        }
    }
}

/// One node found by `search_workspace`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceNode {
    pub title: String,
    /// Where it sits: the knowledge base's name, the parent's title when Dust gives it, then
    /// the title, joined by ` / `.
    pub path: String,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// The knowledge base (`dts_...`) holding it: pass it to `search_knowledge` or, for a
    /// document of a folder, with `nodeId` as `documentId` to `get_document`.
    pub knowledge_base_id: String,
    pub knowledge_base_name: String,
    /// The node's id in its knowledge base (a document's id for a document).
    pub node_id: String,
    /// The spaces (`vlt_...`) through which the key reaches it.
    pub space_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// Last update, in milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<i64>,
}

impl From<ContentNode> for WorkspaceNode {
    fn from(node: ContentNode) -> Self {
        let path = std::iter::once(node.data_source.name.as_str())
            .chain(node.parent_title.as_deref().filter(|t| !t.is_empty()))
            .chain(std::iter::once(node.title.as_str()))
            .collect::<Vec<_>>()
            .join(" / ");
        let mut space_ids: Vec<String> = Vec::new();
        for view in node.data_source_views {
            if !view.space_id.is_empty() && !space_ids.contains(&view.space_id) {
                space_ids.push(view.space_id);
            }
        }
        Self {
            path,
            title: node.title,
            node_type: node.node_type.into(),
            knowledge_base_id: node.data_source.s_id,
            knowledge_base_name: node.data_source.name,
            node_id: node.internal_id,
            space_ids,
            source_url: node.source_url,
            last_updated_at: node.last_updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DocumentView {
    pub knowledge_base_id: String,
    pub document_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl DocumentView {
    pub fn new(knowledge_base_id: &str, document: Document, with_text: bool) -> Self {
        Self {
            knowledge_base_id: knowledge_base_id.to_owned(),
            document_id: document.document_id,
            title: document.title,
            source_url: document.source_url,
            tags: document.tags,
            timestamp: document.timestamp,
            text_size: document.text_size,
            text: if with_text { document.text } else { None },
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// `user`, `agent`, or `attachment` (a file or text attached before the next message).
    pub role: &'static str,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// An attachment's title (its file name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// An attachment's content type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    pub conversation_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub messages: Vec<MessageView>,
    /// More messages follow: pass this as `cursor` to read the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<&Conversation> for ConversationView {
    fn from(conversation: &Conversation) -> Self {
        let messages = conversation
            .latest_messages()
            .filter_map(|item| match item {
                ConversationItem::UserMessage(m) => Some(MessageView {
                    role: "user",
                    id: m.s_id.clone(),
                    agent_id: None,
                    content: Some(m.content.clone()),
                    status: None,
                    title: None,
                    content_type: None,
                    created: m.created,
                }),
                ConversationItem::AgentMessage(m) => Some(MessageView {
                    role: "agent",
                    id: m.s_id.clone(),
                    agent_id: m.agent_id().map(str::to_owned),
                    content: m.content.clone(),
                    status: Some(m.status.clone()),
                    title: None,
                    content_type: None,
                    created: m.created,
                }),
                ConversationItem::ContentFragment(f) => Some(MessageView {
                    role: "attachment",
                    id: f.s_id.clone(),
                    agent_id: None,
                    content: None,
                    status: None,
                    title: Some(f.title.clone()),
                    content_type: Some(f.content_type.clone()),
                    created: f.created,
                }),
                ConversationItem::Other => None,
            })
            .collect();
        Self {
            conversation_id: conversation.s_id.clone(),
            title: conversation.title.clone(),
            url: conversation.url.clone(),
            messages,
            next_cursor: None,
        }
    }
}

/// The result of `ask_agent`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentAnswer {
    /// The agent's final answer.
    pub answer: String,
    pub agent_id: String,
    /// Pass this as `conversationId` to ask a follow-up in the same conversation.
    pub conversation_id: String,
    /// The agent message holding the answer.
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_url: Option<String>,
    /// The sources the answer cites (`:cite[ref]` in its text), in the order first cited.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub citations: Vec<Citation>,
}

impl AgentAnswer {
    /// A run still going: its ids, no answer or citations yet.
    #[must_use]
    pub fn running(
        agent_id: String,
        conversation_id: String,
        message_id: String,
        conversation_url: Option<String>,
    ) -> Self {
        Self {
            answer: String::new(),
            agent_id,
            conversation_id,
            message_id,
            conversation_url,
            citations: Vec::new(),
        }
    }
}

/// A source an agent's answer cites: Dust's `:cite[ref]` marker in the text names a search
/// result of the run by its `ref`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct Citation {
    /// The marker's key (`:cite[k7q]` cites `k7q`).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The source's title.
    pub title: String,
    /// Where the source lives, when Dust knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Citation {
    /// The sources `content` cites among the search results of `actions` (an agent message's),
    /// in the order first cited; a marker with no matching result is left out.
    #[must_use]
    pub fn of(content: &str, actions: &[serde_json::Value]) -> Vec<Self> {
        let mut cited: Vec<&str> = Vec::new();
        for marker in content.split(":cite[").skip(1) {
            let Some(end) = marker.find(']') else {
                continue;
            };
            for key in marker[..end].split(',').map(str::trim) {
                if !key.is_empty() && !cited.contains(&key) {
                    cited.push(key);
                }
            }
        }
        let results: Vec<&serde_json::Value> = actions
            .iter()
            .filter_map(|a| a.get("output").and_then(serde_json::Value::as_array))
            .flatten()
            .filter_map(|item| item.get("resource"))
            .collect();
        cited
            .into_iter()
            .filter_map(|key| {
                let resource = results
                    .iter()
                    .find(|r| r.get("ref").and_then(serde_json::Value::as_str) == Some(key))?;
                let text = |field: &str| {
                    resource
                        .get(field)
                        .and_then(serde_json::Value::as_str)
                        .map(str::to_owned)
                };
                Some(Self {
                    reference: key.to_owned(),
                    title: text("text").unwrap_or_else(|| key.to_owned()),
                    url: text("uri")
                        .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
                })
            })
            .collect()
    }
}

/// The caller's workspace (`get_workspace`, `dust://workspaces/{id}`, `GET /workspaces`).
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceView {
    /// The workspace id (`sId`): the only one the caller's token reaches.
    pub id: String,
    /// Where this workspace opens in Dust's web app.
    pub web_url: String,
    pub dust_base_url: String,
    /// The caller's permissions here.
    pub permissions: Vec<&'static str>,
    /// The agent used when none is named (`DUST_AGENT_ID`).
    pub default_agent_id: Option<String>,
    /// Who the caller is here.
    pub you: CallerView,
}

/// The caller, as [`WorkspaceView`] shows it.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerView {
    /// The caller's pseudonymous id (derived from its Dust key and workspace).
    pub user_id: String,
    pub username: String,
}

/// `list_knowledge_bases`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KnowledgeBaseList {
    pub knowledge_bases: Vec<KnowledgeBaseView>,
}

/// `list_connectors`.
#[derive(Debug, Clone, Serialize, JsonSchema, utoipa::ToSchema)]
pub struct ConnectorList {
    /// Knowledge bases fed by a connector (Notion, Slack, ...).
    pub connectors: Vec<KnowledgeBaseView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn citations_follow_the_markers_in_order_and_only_known_sources() {
        let actions = vec![serde_json::json!({
            "output": [
                {"type": "resource", "resource": {"ref": "k7q", "text": "PTO Policy", "uri": "https://docs.example.com/pto"}},
                {"type": "resource", "resource": {"ref": "m2d", "text": "Handbook", "uri": "javascript:alert(1)"}},
                {"type": "text", "text": "not a source"},
            ]
        })];
        let content =
            "Twenty days :cite[m2d, k7q]. Again :cite[k7q] and :cite[zz9] and :cite[broken";
        let cited = Citation::of(content, &actions);
        assert_eq!(
            cited,
            [
                Citation {
                    reference: "m2d".into(),
                    title: "Handbook".into(),
                    url: None,
                },
                Citation {
                    reference: "k7q".into(),
                    title: "PTO Policy".into(),
                    url: Some("https://docs.example.com/pto".into()),
                },
            ]
        );
        assert!(Citation::of("no markers", &actions).is_empty());
    }
}
