//! The tool table and the dispatcher: the MCP adapter over [`crate::ops`].
//!
//! Each tool is one row: the operation's descriptor ([`Op`]: name, permission, kind), a title
//! and a description written for the model (what it does, then when to use it), the argument
//! type (its schema is generated from the Rust struct), the output type where structured output
//! helps, annotations derived from the operation's kind, and the handler: the row itself calls
//! the operation, so a tool cannot exist without one. The dispatcher opens the operation's
//! [`Call`] (permission first: a tool hidden from `tools/list` is refused by name too), parses
//! the arguments (`-32602` on anything wrong), runs the handler and closes the call with its
//! audit record.

use std::{
    borrow::Cow,
    sync::{Arc, LazyLock},
};

use futures::future::BoxFuture;
use rmcp::{
    ErrorData as McpError, RoleServer,
    handler::server::common::{schema_for_input, schema_for_output},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CreateTaskResult,
        InputRequiredResult, InputResponses, JsonObject, Tool, ToolAnnotations,
    },
    service::RequestContext,
};
use schemars::JsonSchema;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use tracing::{Instrument, field::Empty};

use super::errors;
use crate::{
    auth::Principal,
    ops::{
        self, Call, Context, Op, OpError, Surface, agents,
        args::*,
        catalog::Kind,
        conversations, knowledge, tables,
        views::{
            AgentAnswer, AgentList, DeletedRow, SearchResults, TableList, TableRowList, TableView,
            UpsertedRows, WorkspaceSearchResults,
        },
        workspace,
    },
};

/// Runs one tool's operation for an open call, returning its result as JSON.
type Handler = for<'a> fn(
    &'a Call,
    Option<JsonObject>,
    RequestContext<RoleServer>,
    Retry,
) -> BoxFuture<'a, Result<Outcome<Value>, OpError>>;

/// How a tool call ended, short of an error.
#[derive(Debug)]
pub(crate) enum Outcome<T> {
    /// The operation's result.
    Done(T),
    /// A person must answer first (2026-07-28 era): the client asks them and calls again.
    Input(InputRequiredResult),
    /// The call goes on as a task (MCP Tasks extension): the client polls `tasks/get`.
    Task(CreateTaskResult),
}

/// What a client's second call of a tool carries after an `input_required` round: the person's
/// answers and the state it was given, as sent (untrusted).
#[derive(Debug, Default)]
pub(crate) struct Retry {
    pub responses: Option<InputResponses>,
    pub state: Option<String>,
}

/// One tool: its definition as clients see it, its operation and the handler that runs it.
pub(crate) struct ToolSpec {
    pub tool: Tool,
    pub op: &'static Op,
    handler: Handler,
}

impl std::fmt::Debug for ToolSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSpec")
            .field("op", &self.op)
            .finish_non_exhaustive()
    }
}

fn spec<A: JsonSchema + 'static>(
    op: &'static Op,
    title: &str,
    description: &'static str,
    handler: Handler,
) -> ToolSpec {
    let schema = schema_for_input::<A>().expect("tool arguments are JSON objects");
    let annotations = ToolAnnotations::with_title(title);
    let annotations = match op.kind {
        Kind::Read | Kind::Admin => annotations
            .read_only(true)
            .destructive(false)
            .idempotent(true)
            .open_world(false),
        Kind::Run => annotations
            .read_only(false)
            .destructive(false)
            .idempotent(false)
            .open_world(true),
        Kind::Write | Kind::Delete => annotations
            .read_only(false)
            .destructive(true)
            .idempotent(true)
            .open_world(false),
    };
    ToolSpec {
        tool: Tool::new(op.name, description, schema)
            .with_title(title)
            .with_annotations(annotations),
        op,
        handler,
    }
}

fn with_output<O: JsonSchema + 'static>(mut spec: ToolSpec) -> ToolSpec {
    spec.tool = spec.tool.with_raw_output_schema(schema_for_output::<O>());
    spec
}

/// One row of the table: `tool!(descriptor, title, Args [=> Output], description,
/// |call, args, request| future of the operation's result)`; a tool whose run may need a person
/// takes `rounds |call, args, request, retry|` and returns an [`Outcome`].
macro_rules! tool {
    ($op:expr, $title:literal, $args:ty $(=> $out:ty)?, $description:literal,
     |$call:ident, $a:pat_param, $request:pat_param| $body:expr) => {{
        fn handler<'a>(
            $call: &'a Call,
            arguments: Option<JsonObject>,
            $request: RequestContext<RoleServer>,
            _retry: Retry,
        ) -> BoxFuture<'a, Result<Outcome<Value>, OpError>> {
            Box::pin(async move {
                let $a: $args = parse($call.op.name, arguments)?;
                Ok(Outcome::Done(encode(&$body.await?)?))
            })
        }
        let spec = spec::<$args>(&$op, $title, $description, handler);
        $(let spec = with_output::<$out>(spec);)?
        spec
    }};
    ($op:expr, $title:literal, $args:ty $(=> $out:ty)?, $description:literal,
     rounds |$call:ident, $a:pat_param, $request:pat_param, $retry:pat_param| $body:expr) => {{
        fn handler<'a>(
            $call: &'a Call,
            arguments: Option<JsonObject>,
            $request: RequestContext<RoleServer>,
            $retry: Retry,
        ) -> BoxFuture<'a, Result<Outcome<Value>, OpError>> {
            Box::pin(async move {
                let $a: $args = parse($call.op.name, arguments)?;
                Ok(match $body.await? {
                    Outcome::Done(result) => Outcome::Done(encode(&result)?),
                    Outcome::Input(input) => Outcome::Input(input),
                    Outcome::Task(task) => Outcome::Task(task),
                })
            })
        }
        let spec = spec::<$args>(&$op, $title, $description, handler);
        $(let spec = with_output::<$out>(spec);)?
        spec
    }};
}

static CATALOGUE: LazyLock<Vec<ToolSpec>> = LazyLock::new(|| {
    vec![
        tool!(
            workspace::GET_WORKSPACE,
            "Workspace",
            NoArgs,
            "Describes the Dust workspace this connection uses and the caller's permissions. Use it to learn what you may do here.",
            |call, _args, _request| async {
                Ok::<_, OpError>(workspace::get_workspace(&call.ctx, call.principal()))
            }
        ),
        tool!(
            agents::LIST_AGENTS,
            "List agents",
            ListAgentsArgs => AgentList,
            "Lists the Dust agents of the workspace, optionally filtered by name. Use it to find the agentId to pass to ask_agent.",
            |call, args, _request| agents::list_agents(&call.ctx, call.principal(), args)
        ),
        tool!(
            agents::GET_AGENT,
            "Get agent",
            AgentIdArgs,
            "Shows one Dust agent's configuration, including its instructions. Use it to decide whether an agent fits a question.",
            |call, args, _request| agents::get_agent(&call.ctx, call.principal(), args)
        ),
        tool!(
            ops::ask::ASK_AGENT,
            "Ask agent",
            AskAgentArgs => AgentAnswer,
            "Asks a Dust agent a question and returns its answer with the conversation and message ids. Use it when the answer needs the company's knowledge or the agent's tools; pass conversationId to follow up.",
            rounds |call, args, request, retry| super::ask::ask_agent(call, args, request, retry)
        ),
        tool!(
            conversations::LIST_CONVERSATIONS,
            "List conversations",
            NoArgs,
            "Lists the conversations you started with Dust agents through this server, newest first. Use it to find a conversationId to continue or read.",
            |call, _args, _request| conversations::list_conversations(&call.ctx, call.principal())
        ),
        tool!(
            conversations::GET_CONVERSATION,
            "Get conversation",
            ConversationIdArgs,
            "Returns one of your conversations with its messages in order. Use it to read an answer that took too long, or to recall context.",
            |call, args, _request| conversations::get_conversation(
                &call.ctx,
                call.principal(),
                args,
                &call.caller.info
            )
        ),
        tool!(
            knowledge::LIST_SPACES,
            "List spaces",
            NoArgs,
            "Lists the Dust spaces the key can see. Use it to narrow list_knowledge_bases to one space.",
            |call, _args, _request| knowledge::list_spaces(&call.ctx, call.principal())
        ),
        tool!(
            knowledge::LIST_KNOWLEDGE_BASES,
            "List knowledge bases",
            ListKnowledgeBasesArgs,
            "Lists knowledge bases (what your Dust spaces reach: folders, websites and connectors such as Notion or Slack), optionally in one space. Use it to find a knowledgeBaseId.",
            |call, args, _request| knowledge::list_knowledge_bases(
                &call.ctx,
                call.principal(),
                args
            )
        ),
        tool!(
            knowledge::SEARCH_KNOWLEDGE,
            "Search knowledge",
            SearchKnowledgeArgs => SearchResults,
            "Semantic search in one knowledge base, or in all you can see, returning the best passages with their documents and scores. Use it to find and quote sources.",
            |call, args, _request| knowledge::search_knowledge(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::SEARCH_WORKSPACE,
            "Search workspace",
            SearchWorkspaceArgs => WorkspaceSearchResults,
            "Finds documents, tables and folders by title across every space you can see, with the knowledge base and path of each. Use it when you know roughly what something is called (a page, a runbook, a channel); use search_knowledge to find passages by meaning.",
            |call, args, _request| knowledge::search_workspace(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::LIST_DOCUMENTS,
            "List documents",
            ListDocumentsArgs,
            "Lists the documents of a folder knowledge base (documentsReadable: true), a page at a time. Use it to browse what a folder holds; connector content is reached with search_knowledge.",
            |call, args, _request| knowledge::list_documents(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::GET_DOCUMENT,
            "Get document",
            DocumentArgs,
            "Returns one document of a folder knowledge base (documentsReadable: true) with its full text. Use it to read a search hit in full; a connector's hits already carry their text.",
            |call, args, _request| knowledge::get_document(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::UPSERT_DOCUMENT,
            "Write document",
            UpsertDocumentArgs,
            "Creates a document in a folder knowledge base, or replaces the document with the same id. Use it to add or update knowledge.",
            |call, args, _request| knowledge::upsert_document(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::DELETE_DOCUMENT,
            "Delete document",
            DocumentArgs,
            "Deletes a document from a folder knowledge base. This cannot be undone.",
            |call, args, _request| knowledge::delete_document(&call.ctx, call.principal(), args)
        ),
        tool!(
            tables::LIST_TABLES,
            "List tables",
            ListTablesArgs => TableList,
            "Lists the tables of a folder knowledge base (documentsReadable: true), each with its columns and their types. Use it to find a tableId before reading or writing rows.",
            |call, args, _request| tables::list_tables(&call.ctx, call.principal(), args)
        ),
        tool!(
            tables::GET_TABLE,
            "Get table",
            TableArgs => TableView,
            "Returns one table of a folder knowledge base with its description and columns (name and type: int, float, text, bool or datetime). Use it to learn a table's shape before writing rows.",
            |call, args, _request| tables::get_table(&call.ctx, call.principal(), args)
        ),
        tool!(
            tables::LIST_TABLE_ROWS,
            "List table rows",
            ListTableRowsArgs => TableRowList,
            "Returns a page of a table's rows (rowId and cells by column), with the table's total row count. Use limit and offset to page; datetimes come as {type: datetime, epoch} in milliseconds.",
            |call, args, _request| tables::list_table_rows(&call.ctx, call.principal(), args)
        ),
        tool!(
            tables::UPSERT_TABLE_ROWS,
            "Write table rows",
            UpsertTableRowsArgs => UpsertedRows,
            "Creates rows in a table of a folder knowledge base, or replaces the rows with the same rowId; other rows are kept. Up to 500 rows per call; each cell is a string, number, boolean, null or {type: datetime, epoch}. Returns the table's columns after the write.",
            |call, args, _request| tables::upsert_table_rows(&call.ctx, call.principal(), args)
        ),
        tool!(
            tables::DELETE_TABLE_ROW,
            "Delete table row",
            TableRowIdArgs => DeletedRow,
            "Deletes one row of a table of a folder knowledge base. This cannot be undone.",
            |call, args, _request| tables::delete_table_row(&call.ctx, call.principal(), args)
        ),
        tool!(
            knowledge::LIST_CONNECTORS,
            "List connectors",
            NoArgs,
            "Lists the knowledge bases fed by a connector (Notion, Slack, Google Drive, ...) with their provider. Use it to see where the workspace's knowledge comes from.",
            |call, _args, _request| knowledge::list_connectors(&call.ctx, call.principal())
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
) -> Result<T, OpError> {
    let value = Value::Object(arguments.unwrap_or_default());
    serde_json::from_value(value)
        .map_err(|e| OpError::Invalid(format!("invalid arguments for {tool}: {e}")))
}

/// An operation's result as the JSON a tool returns.
pub(super) fn encode<T: Serialize>(value: &T) -> Result<Value, OpError> {
    serde_json::to_value(value)
        .map_err(|e| OpError::Internal(format!("cannot encode the result: {e}")))
}

/// The resource a call names, for its audit record.
fn target(args: Option<&JsonObject>) -> Option<(&'static str, String)> {
    args.and_then(|a| {
        ["documentId", "knowledgeBaseId", "conversationId", "agentId"]
            .iter()
            .find_map(|key| {
                a.get(*key)
                    .and_then(|v| v.as_str())
                    .map(|v| (*key, v.to_owned()))
            })
    })
}

/// Runs a tool call for `principal`.
pub(crate) async fn call(
    ctx: &Arc<Context>,
    principal: Arc<Principal>,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let name = request.name.as_ref();
    let unknown = || McpError::invalid_params(format!("unknown tool {name:?}"), None);
    // A name that is no built-in tool may be an agent's (`ask_<name>`, `agent_tools.rs`): its
    // call is `ask_agent`'s, so the permission is checked before the name is looked up.
    let spec = catalogue().iter().find(|s| s.tool.name == name);
    let op = match spec {
        Some(spec) => spec.op,
        None if super::agent_tools::may_name(ctx, name) => &ops::ask::ASK_AGENT,
        None => return Err(unknown()),
    };
    // The tool's span (OpenTelemetry GenAI conventions): the name is the table's, or an
    // agent tool's as asked for (bounded and masked); never the arguments.
    let tool_name = match spec {
        Some(spec) => Cow::Borrowed(spec.op.name),
        None => Cow::Owned(crate::mask::sanitize_for_log(name, 128)),
    };
    let span = tracing::info_span!(
        target: crate::telemetry::otel::SPANS,
        "tool",
        otel.name = %format_args!("execute_tool {tool_name}"),
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %tool_name,
        error.type = Empty,
        otel.status_code = Empty,
    );
    run(ctx, principal, spec, op, request, context)
        .instrument(span)
        .await
}

/// [`call`], once the tool is known, inside its span.
async fn run(
    ctx: &Arc<Context>,
    principal: Arc<Principal>,
    spec: Option<&ToolSpec>,
    op: &'static Op,
    request: CallToolRequestParams,
    context: RequestContext<RoleServer>,
) -> Result<CallToolResponse, McpError> {
    let name = request.name.as_ref();
    let unknown = || McpError::invalid_params(format!("unknown tool {name:?}"), None);
    let caller = super::caller(principal, &context);
    let call = match Call::begin(ctx, caller, op, Surface::Tool, None) {
        Ok(call) => call,
        Err(refused) => {
            record_error(&refused);
            return errors::tool_result(refused).map(CallToolResponse::from);
        }
    };
    let retry = Retry {
        responses: request.input_responses,
        state: request.request_state,
    };
    let args = request.arguments;
    for field in ["message", "query", "text"] {
        if let Some(text) = args
            .as_ref()
            .and_then(|a| a.get(field))
            .and_then(|v| v.as_str())
        {
            call.note_suspicious(field, text);
        }
    }
    let mut target = ctx
        .auditor
        .is_some()
        .then(|| target(args.as_ref()))
        .flatten();
    let result = match spec {
        Some(spec) => (spec.handler)(&call, args, context, retry).await,
        None => match super::agent_tools::resolve(&call, name).await {
            Ok(Some(agent_id)) => {
                target = Some(("agentId", agent_id.clone()));
                super::agent_tools::ask(&call, name, agent_id, args, context, retry).await
            }
            Ok(None) => return Err(unknown()),
            Err(error) => Err(error),
        },
    };
    let result = call.finish(result, target.as_ref().map(|(k, v)| (*k, v.as_str())));
    match result {
        Ok(Outcome::Done(value)) => Ok(CallToolResult::structured(value).into()),
        Ok(Outcome::Input(input)) => Ok(input.into()),
        Ok(Outcome::Task(task)) => Ok(task.into()),
        Err(error) => {
            record_error(&error);
            errors::tool_result(error).map(CallToolResponse::from)
        }
    }
}

/// Marks the current tool span failed, with the failure's stable name.
fn record_error(error: &OpError) {
    let span = tracing::Span::current();
    span.record("error.type", error.kind());
    span.record("otel.status_code", "error");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each tool's descriptor is its own, and its kind agrees with its permission.
    #[test]
    fn every_tool_has_a_coherent_descriptor() {
        let mut names: Vec<_> = catalogue().iter().map(|s| s.op.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), catalogue().len());
        for spec in catalogue() {
            assert_eq!(spec.tool.name, spec.op.name);
            let writes = matches!(
                spec.op.permission.operation(),
                crate::auth::Operation::Write | crate::auth::Operation::Delete
            );
            assert_eq!(
                writes,
                matches!(spec.op.kind, Kind::Write | Kind::Delete),
                "{}",
                spec.op.name
            );
        }
    }
}
