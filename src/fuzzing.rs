//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz); not a supported API.
//!
//! The parsers worth fuzzing sit in private modules (`http::jsonrpc`, `ops::args`,
//! `mcp::resources`, `dust::sse`). Rather than make those modules public, this one module
//! re-exports the few pure functions the targets drive, and wraps the ones whose types stay
//! private. Everything here is a thin call into the real code: a target that passes here
//! exercises exactly what a request exercises.

use serde_json::Value;

pub use crate::dust::sse::{DustFrame, SseFrame, SseParser, agent_frame};
pub use crate::http::jsonrpc::{Rejection, check_body as check_jsonrpc_body};
pub use crate::ops::args::{
    MAX_DOCUMENT_ID_LEN, MAX_ID_LEN, check_document_id, check_id, check_source_url, check_tags,
    check_text,
};

use crate::ops::args::{
    AgentIdArgs, AskAgentArgs, ConversationIdArgs, DocumentArgs, ListAgentsArgs, ListDocumentsArgs,
    ListKnowledgeBasesArgs, ListTableRowsArgs, NoArgs, SearchKnowledgeArgs, SearchWorkspaceArgs,
    TableRowIdArgs, UpsertDocumentArgs, UpsertTableRowsArgs,
};
use crate::{
    mcp::{
        resources::{self, Uri},
        tools,
    },
    ops::OpError,
};

/// Names of the tools whose arguments [`parse_tool_arguments`] knows, one per argument type.
pub const TOOLS: &[&str] = &[
    "get_workspace",
    "list_agents",
    "get_agent",
    "ask_agent",
    "get_conversation",
    "list_knowledge_bases",
    "search_knowledge",
    "search_workspace",
    "list_documents",
    "upsert_document",
    "delete_document",
    "list_table_rows",
    "upsert_table_rows",
    "delete_table_row",
];

/// Parses `arguments` as tool `tool`'s argument type, exactly as a `tools/call` does, and
/// returns the identifier-like fields it carries (`(field, value)`), for the target to check.
/// `Err` is the JSON-RPC error message.
pub fn parse_tool_arguments(
    tool: &str,
    arguments: Option<serde_json::Map<String, Value>>,
) -> Result<Vec<(&'static str, String)>, String> {
    fn ids<const N: usize>(
        pairs: [(&'static str, Option<&String>); N],
    ) -> Vec<(&'static str, String)> {
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.clone())))
            .collect()
    }
    let e = |e: OpError| match e {
        OpError::Invalid(message) => message,
        other => format!("{other:?}"),
    };
    Ok(match tool {
        "get_workspace" => {
            tools::parse::<NoArgs>(tool, arguments).map_err(e)?;
            Vec::new()
        }
        "list_agents" => {
            tools::parse::<ListAgentsArgs>(tool, arguments).map_err(e)?;
            Vec::new()
        }
        "get_agent" => {
            let a: AgentIdArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([("agentId", Some(&a.agent_id))])
        }
        "ask_agent" => {
            let a: AskAgentArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("agentId", a.agent_id.as_ref()),
                ("conversationId", a.conversation_id.as_ref()),
            ])
        }
        "get_conversation" => {
            let a: ConversationIdArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([("conversationId", Some(&a.conversation_id))])
        }
        "list_knowledge_bases" => {
            let a: ListKnowledgeBasesArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([("spaceId", a.space_id.as_ref())])
        }
        "search_knowledge" => {
            let a: SearchKnowledgeArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([("knowledgeBaseId", a.knowledge_base_id.as_ref())])
        }
        "search_workspace" => {
            tools::parse::<SearchWorkspaceArgs>(tool, arguments).map_err(e)?;
            Vec::new()
        }
        "list_documents" => {
            let a: ListDocumentsArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([("knowledgeBaseId", Some(&a.knowledge_base_id))])
        }
        "upsert_document" => {
            let a: UpsertDocumentArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("knowledgeBaseId", Some(&a.knowledge_base_id)),
                ("documentId", Some(&a.document_id)),
                ("sourceUrl", a.source_url.as_ref()),
            ])
        }
        "delete_document" => {
            let a: DocumentArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("knowledgeBaseId", Some(&a.knowledge_base_id)),
                ("documentId", Some(&a.document_id)),
            ])
        }
        "list_table_rows" => {
            let a: ListTableRowsArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("knowledgeBaseId", Some(&a.knowledge_base_id)),
                ("tableId", Some(&a.table_id)),
            ])
        }
        "upsert_table_rows" => {
            let a: UpsertTableRowsArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("knowledgeBaseId", Some(&a.knowledge_base_id)),
                ("tableId", Some(&a.table_id)),
            ])
        }
        "delete_table_row" => {
            let a: TableRowIdArgs = tools::parse(tool, arguments).map_err(e)?;
            ids([
                ("knowledgeBaseId", Some(&a.knowledge_base_id)),
                ("tableId", Some(&a.table_id)),
                ("rowId", Some(&a.row_id)),
            ])
        }
        other => return Err(format!("unknown tool {other:?}")),
    })
}

/// A resource URI as parsed: its kind and the identifiers it names (workspace excluded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceUri {
    /// The URI's path after the workspace, with `{}` for each identifier
    /// (e.g. `knowledge-bases/{}/documents/{}`; empty for the workspace itself).
    pub template: &'static str,
    pub ids: Vec<String>,
}

/// Parses a `dust://workspaces/...` URI for a principal of `workspace_id`. `Err` is the MCP
/// error message.
pub fn parse_resource_uri(uri: &str, workspace_id: &str) -> Result<Option<ResourceUri>, String> {
    let parsed = resources::parse(uri, workspace_id).map_err(|e| e.message.into_owned())?;
    let (template, ids) = match parsed {
        Uri::Workspaces => return Ok(None),
        Uri::Workspace => ("", vec![]),
        Uri::Agents => ("agents", vec![]),
        Uri::Agent(id) => ("agents/{}", vec![id]),
        Uri::KnowledgeBases => ("knowledge-bases", vec![]),
        Uri::KnowledgeBase(id) => ("knowledge-bases/{}", vec![id]),
        Uri::Document(kb, doc) => ("knowledge-bases/{}/documents/{}", vec![kb, doc]),
        Uri::Table(kb, table) => ("knowledge-bases/{}/tables/{}", vec![kb, table]),
        Uri::Connectors => ("connectors", vec![]),
        Uri::Connector(id) => ("connectors/{}", vec![id]),
        Uri::Conversation(id) => ("conversations/{}", vec![id]),
    };
    Ok(Some(ResourceUri { template, ids }))
}
