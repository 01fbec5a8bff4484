//! The tool table and the dispatcher.
//!
//! Each tool is one row: name, the permission it needs, description (written for the model:
//! what it does, then when to use it), argument type (its schema is generated from the Rust
//! struct), output type where structured output helps, and truthful annotations. The dispatcher
//! checks the permission first (a tool hidden from `tools/list` is refused by name too), then
//! parses and validates the arguments (`-32602` on anything wrong), and only then calls Dust.

use std::sync::{Arc, LazyLock};

use super::service::ServiceError;

use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_input, schema_for_output},
    model::{CallToolRequestParams, CallToolResult, JsonObject, Tool, ToolAnnotations},
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};

use super::{
    McpContext,
    args::*,
    ask, errors, knowledge, service,
    views::{
        AgentAnswer, AgentList, ConversationList, ConversationSummary, ConversationView,
        SearchResults,
    },
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::{Permission, Principal},
    store::ConversationRecord,
};

/// One tool: its definition as clients see it, and the permission it needs.
#[derive(Debug)]
pub(crate) struct ToolSpec {
    pub tool: Tool,
    pub permission: Permission,
}

/// How a tool behaves, for its annotations.
#[derive(Clone, Copy)]
enum Kind {
    /// Reads the workspace; no side effect.
    Read,
    /// Runs an agent: creates conversations and messages, and the agent may reach the web.
    Run,
    /// Creates or replaces a document.
    Write,
    /// Deletes a document.
    Delete,
}

fn spec<A: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    permission: Permission,
    kind: Kind,
    description: &'static str,
) -> ToolSpec {
    let schema = schema_for_input::<A>().expect("tool arguments are JSON objects");
    let annotations = ToolAnnotations::with_title(title);
    let annotations = match kind {
        Kind::Read => annotations
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
        Kind::Run => annotations
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(true),
        Kind::Write => annotations
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(false),
        Kind::Delete => annotations
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(false),
    };
    ToolSpec {
        tool: Tool::new(name, description, schema)
            .with_title(title)
            .with_annotations(annotations),
        permission,
    }
}

fn with_output<O: JsonSchema + 'static>(mut spec: ToolSpec) -> ToolSpec {
    spec.tool = spec.tool.with_raw_output_schema(schema_for_output::<O>());
    spec
}

static CATALOGUE: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
    use Kind::*;
    use Permission as P;
    vec![
        spec::<NoArgs>(
            "get_workspace",
            "Workspace",
            P::ReadWorkspaces,
            Read,
            "Describes the Dust workspace this connection uses and the caller's permissions. Use it to learn what you may do here.",
        ),
        with_output::<AgentList>(spec::<ListAgentsArgs>(
            "list_agents",
            "List agents",
            P::ReadAgents,
            Read,
            "Lists the Dust agents of the workspace, optionally filtered by name. Use it to find the agentId to pass to ask_agent.",
        )),
        spec::<AgentIdArgs>(
            "get_agent",
            "Get agent",
            P::ReadAgents,
            Read,
            "Shows one Dust agent's configuration, including its instructions. Use it to decide whether an agent fits a question.",
        ),
        with_output::<AgentAnswer>(spec::<AskAgentArgs>(
            "ask_agent",
            "Ask agent",
            P::ExecuteAgents,
            Run,
            "Asks a Dust agent a question and returns its answer with the conversation and message ids. Use it when the answer needs the company's knowledge or the agent's tools; pass conversationId to follow up.",
        )),
        spec::<NoArgs>(
            "list_conversations",
            "List conversations",
            P::ReadAgents,
            Read,
            "Lists the conversations you started with Dust agents through this server, newest first. Use it to find a conversationId to continue or read.",
        ),
        spec::<ConversationIdArgs>(
            "get_conversation",
            "Get conversation",
            P::ReadAgents,
            Read,
            "Returns one of your conversations with its messages in order. Use it to read an answer that took too long, or to recall context.",
        ),
        spec::<NoArgs>(
            "list_spaces",
            "List spaces",
            P::ReadKnowledgeBases,
            Read,
            "Lists the Dust spaces the key can see. Use it to narrow list_knowledge_bases to one space.",
        ),
        spec::<ListKnowledgeBasesArgs>(
            "list_knowledge_bases",
            "List knowledge bases",
            P::ReadKnowledgeBases,
            Read,
            "Lists knowledge bases (what your Dust spaces reach: folders, websites and connectors such as Notion or Slack), optionally in one space. Use it to find a knowledgeBaseId.",
        ),
        with_output::<SearchResults>(spec::<SearchKnowledgeArgs>(
            "search_knowledge",
            "Search knowledge",
            P::ReadKnowledgeBases,
            Read,
            "Semantic search in one knowledge base, or in all you can see, returning the best passages with their documents and scores. Use it to find and quote sources.",
        )),
        spec::<ListDocumentsArgs>(
            "list_documents",
            "List documents",
            P::ReadKnowledgeBases,
            Read,
            "Lists the documents of a folder knowledge base (documentsReadable: true), a page at a time. Use it to browse what a folder holds; connector content is reached with search_knowledge.",
        ),
        spec::<DocumentArgs>(
            "get_document",
            "Get document",
            P::ReadKnowledgeBases,
            Read,
            "Returns one document of a folder knowledge base (documentsReadable: true) with its full text. Use it to read a search hit in full; a connector's hits already carry their text.",
        ),
        spec::<UpsertDocumentArgs>(
            "upsert_document",
            "Write document",
            P::WriteKnowledgeBases,
            Write,
            "Creates a document in a folder knowledge base, or replaces the document with the same id. Use it to add or update knowledge.",
        ),
        spec::<DocumentArgs>(
            "delete_document",
            "Delete document",
            P::DeleteKnowledgeBases,
            Delete,
            "Deletes a document from a folder knowledge base. This cannot be undone.",
        ),
        spec::<NoArgs>(
            "list_connectors",
            "List connectors",
            P::ReadConnectors,
            Read,
            "Lists the knowledge bases fed by a connector (Notion, Slack, Google Drive, ...) with their provider. Use it to see where the workspace's knowledge comes from.",
        ),
    ]
});

/// Every tool, in a stable order.
pub(crate) fn catalogue() -> &'static [ToolSpec] {
    &CATALOGUE
}

/// Parses a tool's arguments into its type: any mismatch is `-32602` naming the problem.
pub(crate) fn parse<T: DeserializeOwned>(
    tool: &str,
    arguments: Option<JsonObject>,
) -> Result<T, McpError> {
    let value = serde_json::Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| errors::invalid_params(format!("invalid arguments for {tool}: {e}")))
}

/// A successful result carrying `value` both as structured content and as JSON text.
pub(super) fn structured<T: Serialize>(value: &T) -> Result<CallToolResult, McpError> {
    let value = serde_json::to_value(value)
        .map_err(|e| McpError::internal_error(format!("cannot encode the result: {e}"), None))?;
    Ok(CallToolResult::structured(value))
}

/// The resource a call names, for its audit record.
fn target(args: Option<&JsonObject>) -> Option<(&'static str, &str)> {
    args.and_then(|a| {
        ["documentId", "knowledgeBaseId", "conversationId", "agentId"]
            .iter()
            .find_map(|key| a.get(*key).and_then(|v| v.as_str()).map(|v| (*key, v)))
    })
}

/// Runs a tool call for `principal`.
pub(crate) async fn call(
    ctx: &Arc<McpContext>,
    principal: &Principal,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let name = request.name.as_ref();
    let Some(spec) = catalogue().iter().find(|s| s.tool.name == name) else {
        return Err(errors::invalid_params(format!("unknown tool {name:?}")));
    };
    let info = super::request_info(&context);
    if let Err(permission) =
        service::authorize(ctx, principal, &info, "tool", name, spec.permission)
    {
        return Err(errors::permission_denied(permission));
    }
    let args = request.arguments;
    for field in ["message", "query", "text"] {
        if let Some(text) = args
            .as_ref()
            .and_then(|a| a.get(field))
            .and_then(|v| v.as_str())
        {
            service::note_suspicious(ctx, principal, &info, name, field, text);
        }
    }
    let audited_args = ctx.auditor.is_some().then(|| args.clone()).flatten();
    let Some(_slot) = service::enter(ctx, principal) else {
        return Ok(errors::tool_error(service::busy_message("tool calls")));
    };
    let result = dispatch(ctx, principal, name, args, &info, context).await;
    let outcome = match &result {
        Ok(r) if r.is_error == Some(true) => AuditResult::Failure,
        Ok(_) => AuditResult::Success,
        Err(_) => AuditResult::Denied,
    };
    service::audit_call(
        ctx,
        principal,
        &info,
        name,
        spec.permission,
        target(audited_args.as_ref()),
        outcome,
    );
    if let Err(error) = &result
        && error.code == rmcp::model::ErrorCode::INVALID_PARAMS
    {
        service::audit_invalid(ctx, principal, &info, name, error.message.as_ref());
    }
    result
}

/// Parses the arguments of tool `name` and runs it.
async fn dispatch(
    ctx: &Arc<McpContext>,
    principal: &Principal,
    name: &str,
    args: Option<JsonObject>,
    info: &crate::audit::RequestInfo,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    match name {
        "get_workspace" => {
            parse::<NoArgs>(name, args)?;
            get_workspace(ctx, principal)
        }
        "list_agents" => list_agents(ctx, principal, parse(name, args)?).await,
        "get_agent" => get_agent(ctx, principal, parse(name, args)?).await,
        "ask_agent" => ask::ask_agent(ctx, principal, parse(name, args)?, context).await,
        "list_conversations" => {
            parse::<NoArgs>(name, args)?;
            list_conversations(ctx, principal).await
        }
        "get_conversation" => get_conversation(ctx, principal, parse(name, args)?, info).await,
        "list_spaces" => {
            parse::<NoArgs>(name, args)?;
            knowledge::list_spaces(ctx, principal).await
        }
        "list_knowledge_bases" => {
            knowledge::list_knowledge_bases(ctx, principal, parse(name, args)?).await
        }
        "search_knowledge" => knowledge::search(ctx, principal, parse(name, args)?).await,
        "list_documents" => knowledge::list_documents(ctx, principal, parse(name, args)?).await,
        "get_document" => knowledge::get_document(ctx, principal, parse(name, args)?).await,
        "upsert_document" => knowledge::upsert_document(ctx, principal, parse(name, args)?).await,
        "delete_document" => knowledge::delete_document(ctx, principal, parse(name, args)?).await,
        "list_connectors" => {
            parse::<NoArgs>(name, args)?;
            knowledge::list_connectors(ctx, principal).await
        }
        other => Err(McpError::internal_error(
            format!("tool {other:?} has no handler"),
            None,
        )),
    }
}

pub(super) fn workspace_view(ctx: &McpContext, principal: &Principal) -> serde_json::Value {
    let mut web = ctx.settings.dust_base_url.clone();
    web.set_path(&format!("w/{}", principal.workspace_id));
    serde_json::json!({
        "workspaceId": principal.workspace_id,
        "dustBaseUrl": ctx.settings.dust_base_url.as_str(),
        "webUrl": web.as_str(),
        "you": {
            "userId": principal.user_id,
            "username": principal.username,
            "permissions": principal.permissions.names(),
        },
        "defaultAgentId": ctx.settings.default_agent_id,
    })
}

fn get_workspace(ctx: &McpContext, principal: &Principal) -> Result<CallToolResult, McpError> {
    structured(&workspace_view(ctx, principal))
}

/// Agents matching `query` (case-insensitive, in name or description), or all.
pub(super) fn filter_agents<'a>(
    agents: &'a [crate::dust::AgentConfiguration],
    query: Option<&str>,
) -> impl Iterator<Item = &'a crate::dust::AgentConfiguration> {
    let needle = query
        .map(str::to_lowercase)
        .filter(|q| !q.trim().is_empty());
    agents.iter().filter(move |a| match &needle {
        Some(q) => a.name.to_lowercase().contains(q) || a.description.to_lowercase().contains(q),
        None => true,
    })
}

async fn list_agents(
    ctx: &McpContext,
    principal: &Principal,
    args: ListAgentsArgs,
) -> Result<CallToolResult, McpError> {
    match service::list_agents(ctx, principal, args.query.as_deref()).await {
        Ok(list) => structured(&list),
        Err(e) => e.into_tool(),
    }
}

async fn get_agent(
    ctx: &McpContext,
    principal: &Principal,
    args: AgentIdArgs,
) -> Result<CallToolResult, McpError> {
    match service::get_agent(ctx, principal, &args.agent_id).await {
        Ok(agent) => structured(&agent),
        Err(e) => e.into_tool(),
    }
}

async fn list_conversations(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<CallToolResult, McpError> {
    let records = ctx
        .conversations
        .list(&principal.workspace_id, &principal.user_id)
        .await
        .map_err(|e| McpError::internal_error(e.to_string(), None))?;
    let conversations = records
        .iter()
        .map(|r| ConversationSummary {
            conversation_id: r.conversation_id.clone(),
            title: r.title.clone(),
            agent_id: r.agent_id.clone(),
            created: r.created_at,
        })
        .collect();
    structured(&ConversationList { conversations })
}

/// The conversation record if `principal` owns it; anyone else is told "not found", and Dust is
/// not asked. Asking for another user's conversation is recorded (`authz_fail`, catalogue Z6);
/// the caller still sees exactly what an unknown id gives.
pub(super) async fn owned_conversation(
    ctx: &McpContext,
    principal: &Principal,
    conversation_id: &str,
    info: &crate::audit::RequestInfo,
) -> Result<Option<ConversationRecord>, ServiceError> {
    let record = ctx
        .conversations
        .get(&principal.workspace_id, conversation_id)
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    match record {
        Some(record) if record.owner == principal.user_id => Ok(Some(record)),
        Some(_) => {
            ctx.audit(
                AuditEvent::new(
                    AuditEventType::AuthzFail,
                    Severity::Medium,
                    "another user's conversation refused (answered not found)",
                )
                .principal(principal)
                .request(info)
                .resource("conversation", conversation_id)
                .action("access_conversation")
                .result(AuditResult::Denied),
            );
            Ok(None)
        }
        None => Ok(None),
    }
}

pub(super) fn conversation_not_found(conversation_id: &str) -> CallToolResult {
    errors::tool_error(format!(
        "Conversation {conversation_id} not found. Only conversations you started through this server (list_conversations) can be read or continued."
    ))
}

async fn get_conversation(
    ctx: &McpContext,
    principal: &Principal,
    args: ConversationIdArgs,
    info: &crate::audit::RequestInfo,
) -> Result<CallToolResult, McpError> {
    check_id("conversationId", &args.conversation_id)?;
    match owned_conversation(ctx, principal, &args.conversation_id, info).await {
        Ok(Some(_)) => {}
        Ok(None) => return Ok(conversation_not_found(&args.conversation_id)),
        Err(e) => return e.into_tool(),
    }
    match ctx
        .dust
        .get_conversation(&principal.credentials, &args.conversation_id)
        .await
    {
        Ok(conversation) => structured(&ConversationView::from(&conversation)),
        Err(e) => Ok(errors::dust_tool_error("reading the conversation", &e)),
    }
}
