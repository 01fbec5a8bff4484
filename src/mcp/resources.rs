//! Resources: the security guide's hierarchy under `dust://workspaces`.
//!
//! ```text
//! dust://workspaces
//! dust://workspaces/{workspaceId}
//!     /agents, /agents/{agentId}
//!     /knowledge-bases, /knowledge-bases/{knowledgeBaseId}
//!     /knowledge-bases/{knowledgeBaseId}/documents/{documentId}
//!     /knowledge-bases/{knowledgeBaseId}/tables/{tableId}
//!     /connectors, /connectors/{connectorId}
//!     /conversations/{conversationId}
//! ```
//! A table resource is its schema and its first [`TABLE_PREVIEW_ROWS`] rows with the total: what
//! a client attaching it as context needs to see the table's shape and sample data, without
//! pulling a large table into a model's context (`list_table_rows` pages through the rest).
//!
//! Each URI needs the read permission of its resource kind (the resource level of the guide).
//! The workspace in a URI must be the caller's own; any other answers "not found", exactly like
//! a workspace that does not exist, so nothing is learnt by probing.

use rmcp::{
    ErrorData as McpError,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde::Serialize;

use super::errors;
use crate::{
    auth::{Permission, Principal},
    dust::DustError,
    ops::{
        Context, OpError, agents,
        args::{check_document_id, check_id},
        conversations::owned_conversation,
        knowledge, tables,
        views::{AgentView, ConversationView, RowView, TableView},
        workspace,
    },
};

const ROOT: &str = "dust://workspaces";
const JSON: &str = "application/json";

/// Rows shown with a table resource's schema.
pub(crate) const TABLE_PREVIEW_ROWS: u32 = 10;

/// A parsed resource URI.
#[derive(Debug, PartialEq)]
pub(crate) enum Uri {
    Workspaces,
    Workspace,
    Agents,
    Agent(String),
    KnowledgeBases,
    KnowledgeBase(String),
    Document(String, String),
    Table(String, String),
    Connectors,
    Connector(String),
    Conversation(String),
}

impl Uri {
    fn permission(&self) -> Permission {
        match self {
            Self::Workspaces | Self::Workspace => Permission::ReadWorkspaces,
            Self::Agents | Self::Agent(_) | Self::Conversation(_) => Permission::ReadAgents,
            Self::KnowledgeBases
            | Self::KnowledgeBase(_)
            | Self::Document(..)
            | Self::Table(..) => Permission::ReadKnowledgeBases,
            Self::Connectors | Self::Connector(_) => Permission::ReadConnectors,
        }
    }
}

fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found(
        format!("resource not found: {uri}"),
        Some(serde_json::json!({ "uri": uri })),
    )
}

/// Parses `uri` for a principal of `workspace_id`; another workspace's URI is "not found".
pub(crate) fn parse(uri: &str, workspace_id: &str) -> Result<Uri, McpError> {
    let Some(rest) = uri.strip_prefix(ROOT) else {
        return Err(not_found(uri));
    };
    if rest.is_empty() {
        return Ok(Uri::Workspaces);
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(not_found(uri));
    };
    let segments = rest
        .split('/')
        .map(|s| {
            urlencoding::decode(s)
                .map(|s| s.into_owned())
                .map_err(|_| not_found(uri))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (workspace, tail) = segments.split_first().ok_or_else(|| not_found(uri))?;
    if *workspace != workspace_id {
        return Err(not_found(uri));
    }
    let parsed = match tail {
        [] => Uri::Workspace,
        ["agents"] => Uri::Agents,
        ["agents", id] => {
            check_id("agentId", id)?;
            Uri::Agent((*id).to_owned())
        }
        ["knowledge-bases"] => Uri::KnowledgeBases,
        ["knowledge-bases", id] => {
            check_id("knowledgeBaseId", id)?;
            Uri::KnowledgeBase((*id).to_owned())
        }
        ["knowledge-bases", id, "documents", doc] => {
            check_id("knowledgeBaseId", id)?;
            check_document_id("documentId", doc)?;
            Uri::Document((*id).to_owned(), (*doc).to_owned())
        }
        ["knowledge-bases", id, "tables", table] => {
            check_id("knowledgeBaseId", id)?;
            check_document_id("tableId", table)?;
            Uri::Table((*id).to_owned(), (*table).to_owned())
        }
        ["connectors"] => Uri::Connectors,
        ["connectors", id] => {
            check_id("connectorId", id)?;
            Uri::Connector((*id).to_owned())
        }
        ["conversations", id] => {
            check_id("conversationId", id)?;
            Uri::Conversation((*id).to_owned())
        }
        _ => return Err(not_found(uri)),
    };
    Ok(parsed)
}

/// The fixed resources `principal` may read.
pub(crate) fn list(principal: &Principal) -> Vec<Resource> {
    let ws = format!("{ROOT}/{}", principal.workspace_id);
    let all = [
        (
            ROOT.to_owned(),
            "workspaces",
            "Your Dust workspace",
            Permission::ReadWorkspaces,
        ),
        (
            ws.clone(),
            "workspace",
            "This workspace and your permissions in it",
            Permission::ReadWorkspaces,
        ),
        (
            format!("{ws}/agents"),
            "agents",
            "The workspace's agents",
            Permission::ReadAgents,
        ),
        (
            format!("{ws}/knowledge-bases"),
            "knowledge-bases",
            "Knowledge bases (data sources) you can see",
            Permission::ReadKnowledgeBases,
        ),
        (
            format!("{ws}/connectors"),
            "connectors",
            "Knowledge bases fed by connectors",
            Permission::ReadConnectors,
        ),
    ];
    all.into_iter()
        .filter(|(_, _, _, permission)| principal.can(*permission))
        .map(|(uri, name, description, _)| {
            Resource::new(uri, name)
                .with_description(description)
                .with_mime_type(JSON)
        })
        .collect()
}

/// The resource templates `principal` may read.
pub(crate) fn templates(principal: &Principal) -> Vec<ResourceTemplate> {
    let ws = format!("{ROOT}/{}", principal.workspace_id);
    let all = [
        (
            format!("{ws}/agents/{{agentId}}"),
            "agent",
            "One agent's configuration",
            Permission::ReadAgents,
        ),
        (
            format!("{ws}/knowledge-bases/{{knowledgeBaseId}}"),
            "knowledge-base",
            "One knowledge base",
            Permission::ReadKnowledgeBases,
        ),
        (
            format!("{ws}/knowledge-bases/{{knowledgeBaseId}}/documents/{{documentId}}"),
            "document",
            "One document with its text",
            Permission::ReadKnowledgeBases,
        ),
        (
            format!("{ws}/knowledge-bases/{{knowledgeBaseId}}/tables/{{tableId}}"),
            "table",
            "One table of a folder: its columns, its first rows and its row count",
            Permission::ReadKnowledgeBases,
        ),
        (
            format!("{ws}/connectors/{{connectorId}}"),
            "connector",
            "One connector-fed knowledge base (by knowledge base id)",
            Permission::ReadConnectors,
        ),
        (
            format!("{ws}/conversations/{{conversationId}}"),
            "conversation",
            "One of your conversations with its messages",
            Permission::ReadAgents,
        ),
    ];
    all.into_iter()
        .filter(|(_, _, _, permission)| principal.can(*permission))
        .map(|(uri, name, description, _)| {
            ResourceTemplate::new(uri, name)
                .with_description(description)
                .with_mime_type(JSON)
        })
        .collect()
}

/// A table resource: the table and its columns, its first rows, how many rows it holds.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TableResource {
    #[serde(flatten)]
    table: TableView,
    /// The first rows (at most [`TABLE_PREVIEW_ROWS`]); `list_table_rows` pages through all.
    rows: Vec<RowView>,
    total_rows: u64,
}

fn contents<T: Serialize>(uri: &str, value: &T) -> Result<ReadResourceResult, McpError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| McpError::internal_error(format!("cannot encode the resource: {e}"), None))?;
    Ok(ReadResourceResult::new(vec![
        ResourceContents::text(text, uri).with_mime_type(JSON),
    ]))
}

/// A Dust failure while reading a resource: "not found" stays "not found"; anything else is an
/// internal error carrying the model-readable description.
fn dust_failure(uri: &str, action: &str, error: &DustError) -> McpError {
    match error.kind {
        crate::dust::DustErrorKind::NotFound => not_found(uri),
        _ => McpError::internal_error(crate::ops::describe_dust_error(action, error), None),
    }
}

pub(crate) async fn read(
    ctx: &Context,
    principal: &Principal,
    uri: &str,
    info: &crate::audit::RequestInfo,
) -> Result<ReadResourceResult, McpError> {
    let parsed = parse(uri, &principal.workspace_id)?;
    let permission = parsed.permission();
    if !principal.can(permission) {
        return Err(errors::permission_denied(permission));
    }
    let creds = &principal.credentials;
    match parsed {
        Uri::Workspaces => contents(
            uri,
            &serde_json::json!({ "workspaces": [{
                "workspaceId": principal.workspace_id,
                "uri": format!("{ROOT}/{}", principal.workspace_id),
            }] }),
        ),
        Uri::Workspace => contents(uri, &workspace::get_workspace(ctx, principal)),
        Uri::Agents => {
            let agents = agents::agents(ctx, principal)
                .await
                .map_err(|e| dust_failure(uri, "listing agents", &e))?;
            let views: Vec<_> = agents.iter().map(AgentView::summary).collect();
            contents(uri, &serde_json::json!({ "agents": views }))
        }
        Uri::Agent(id) => {
            let agent = ctx
                .dust
                .get_agent(creds, &id)
                .await
                .map_err(|e| dust_failure(uri, "reading the agent", &e))?;
            contents(uri, &AgentView::full(&agent))
        }
        Uri::KnowledgeBases | Uri::Connectors | Uri::KnowledgeBase(_) | Uri::Connector(_) => {
            let list = knowledge::knowledge_bases(ctx, principal)
                .await
                .map_err(|e| dust_failure(uri, "listing knowledge bases", &e))?;
            let connectors_only = matches!(parsed, Uri::Connectors | Uri::Connector(_));
            let mut views = list
                .iter()
                .filter(|kb| !connectors_only || kb.source.connector_provider.is_some())
                .map(|kb| kb.to_view());
            match &parsed {
                Uri::KnowledgeBase(id) | Uri::Connector(id) => {
                    let view = views
                        .find(|v| &v.id == id || v.view_id.as_ref() == Some(id))
                        .ok_or_else(|| not_found(uri))?;
                    contents(uri, &view)
                }
                _ => contents(uri, &views.collect::<Vec<_>>()),
            }
        }
        Uri::Document(kb_id, document_id) => {
            let list = knowledge::knowledge_bases(ctx, principal)
                .await
                .map_err(|e| dust_failure(uri, "listing knowledge bases", &e))?;
            let kb = list
                .iter()
                .find(|kb| kb.is(&kb_id) && kb.owned)
                .ok_or_else(|| not_found(uri))?;
            let view = knowledge::fetch_document(ctx, principal, kb, &document_id)
                .await
                .map_err(|e| dust_failure(uri, "reading the document", &e))?;
            contents(uri, &view)
        }
        Uri::Table(kb_id, table_id) => {
            let list = knowledge::knowledge_bases(ctx, principal)
                .await
                .map_err(|e| dust_failure(uri, "listing knowledge bases", &e))?;
            let kb = list
                .iter()
                .find(|kb| kb.is(&kb_id) && kb.owned)
                .ok_or_else(|| not_found(uri))?;
            let (table, rows) = futures::join!(
                tables::fetch_table(ctx, principal, kb, &table_id),
                ctx.dust.list_table_rows(
                    creds,
                    &kb.space.s_id,
                    &kb.source.s_id,
                    &table_id,
                    TABLE_PREVIEW_ROWS,
                    0
                ),
            );
            let table = table.map_err(|e| dust_failure(uri, "reading the table", &e))?;
            let rows = rows.map_err(|e| dust_failure(uri, "reading the table's rows", &e))?;
            contents(
                uri,
                &TableResource {
                    rows: rows
                        .rows
                        .into_iter()
                        .take(TABLE_PREVIEW_ROWS as usize)
                        .map(RowView::from)
                        .collect(),
                    total_rows: rows.total,
                    table,
                },
            )
        }
        Uri::Conversation(id) => {
            match owned_conversation(ctx, principal, &id, info).await {
                Ok(_) => {}
                Err(OpError::NotFound(_)) => return Err(not_found(uri)),
                Err(e) => return Err(McpError::internal_error(format!("{e:?}"), None)),
            }
            let conversation = ctx
                .dust
                .get_conversation(creds, &id)
                .await
                .map_err(|e| dust_failure(uri, "reading the conversation", &e))?;
            contents(uri, &ConversationView::from(&conversation))
        }
    }
}
