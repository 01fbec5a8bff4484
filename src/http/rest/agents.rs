//! Agents: list, one, and `execute` (ask an agent), as JSON or streamed as server-sent events.
//!
//! `execute` posts the message through the MCP tool's own path ([`start_run`]: the same
//! validation, conversation ownership, byte-for-byte message), then follows the agent message's
//! events. With `Accept: text/event-stream` each piece of answer text goes out as an `event:
//! token` the moment Dust sends it, then one `done` (or `error`). A run that pauses for the
//! person sends `approval_required`, `question_required` or `auth_required` and waits (until
//! `MCP_SERVER_TIMEOUT`) for the answer route or for the person to connect in Dust. If the
//! client goes away, or a JSON caller disconnects before the answer, the Dust message is
//! cancelled so that the agent stops spending.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Json,
    extract::{Path, Query, Request, State, rejection::PathRejection, rejection::QueryRejection},
    http::{HeaderMap, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::{IntoParams, ToSchema};

use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, Refusal, bad_path, bad_query};
use crate::{
    auth::Principal,
    config::ToolApproval,
    dust::BlockedAction,
    http::{MAX_MCP_BODY, read_json},
    ops::{
        Context, OpError, agents,
        args::{AgentIdArgs, AskAgentArgs, Attachments, ListAgentsArgs},
        ask::{
            self, Run, RunStep, SHUTTING_DOWN, cancel_in_background, start_run, stream_failure,
            timeout_message,
        },
        attach::AttachmentShape,
        call::CREDENTIALS_ENDED,
        views::{AgentAnswer, AgentList, AgentView},
        waiting::{
            Question, approval_request, question_request, refused_unasked, reject, sign_in_request,
        },
    },
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(execute))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct AgentQuery {
    /// Only agents whose name or description contains this text (case-insensitive).
    pub query: Option<String>,
}

/// The question for an agent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ExecuteRequest {
    /// The question or instruction, sent to Dust as is.
    pub message: String,
    /// Continue this conversation (one of yours) instead of starting one.
    pub conversation_id: Option<String>,
    /// Text or files the agent reads with the question (as `ask_agent` takes them): `{title,
    /// text, contentType?}` for a note, `{title, contentType, data}` for a file in base64, at
    /// most 10 of them and 5 MiB of files.
    #[serde(default)]
    #[schema(value_type = Vec<AttachmentShape>)]
    pub attachments: Attachments,
}

impl ExecuteRequest {
    fn question(self, agent_id: &str) -> AskAgentArgs {
        AskAgentArgs {
            agent_id: Some(agent_id.to_owned()),
            message: self.message,
            conversation_id: self.conversation_id,
            attachments: self.attachments,
        }
    }
}

/// The agents of the workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/agents", tag = "agents",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"), AgentQuery),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Active agents", body = AgentList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<AgentQuery>, QueryRejection>,
) -> Result<Json<AgentList>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let Query(query) = query.map_err(|e| bad_query(&caller, &e))?;
    let call = Call::begin(&state, caller, &agents::LIST_AGENTS, Some(&workspace_id))?;
    let args = ListAgentsArgs { query: query.query };
    let result = agents::list_agents(&call.ctx, call.principal(), args).await;
    call.finish(result, None).map(Json)
}

/// One agent's configuration, instructions included.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/agents/{agentId}", tag = "agents",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("agentId" = String, Path, description = "The agent's id (`sId`)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The agent", body = AgentView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<AgentView>, Refusal> {
    let Path((workspace_id, agent_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &agents::GET_AGENT, Some(&workspace_id))?;
    let args = AgentIdArgs {
        agent_id: agent_id.clone(),
    };
    let result = agents::get_agent(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("agentId", &agent_id))).map(Json)
}

/// Whether the client asked for a stream.
fn wants_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Ask an agent. JSON answer, or with `Accept: text/event-stream` the answer streamed as
/// server-sent events: `token` (data `{"text"}`, many), `approval_required` (data `{actionId,
/// messageId, conversationId, agent, tool, server, inputs, stake}`: answer it with
/// `{"decision"}` at `POST .../conversations/{conversationId}/actions/{actionId}`),
/// `question_required` (data `{actionId, messageId, conversationId, agent, tool, server,
/// question, options}`: answer it with `{"choice"?, "answer"?}` at the same route),
/// `auth_required` (data `{actionId, messageId, conversationId, agent, tool, server, url}`:
/// connect the tool in Dust at `url`; the run goes on by itself), then `done` (data: the answer
/// object) or `error` (data `{"error": {"code", "message"}}`). Without a stream, a question or
/// a sign-in ends the call with a message naming the tool and the conversation. With
/// `Prefer: respond-async` the run becomes a task: `202 Accepted`, its `Location`
/// (`.../tasks/{taskId}`) and the task, read later with `GET` on that location.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspaceId}/agents/{agentId}/execute",
    tag = "agents",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("agentId" = String, Path, description = "The agent's id (`sId`)")),
    request_body = ExecuteRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The agent's answer (JSON), or its stream (SSE)",
        content((AgentAnswer = "application/json"), (String = "text/event-stream"))),
        (status = 202, description = "With `Prefer: respond-async`: the run as a task",
            body = super::tasks::TaskView)))]
pub(super) async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Response, Refusal> {
    let Path((workspace_id, agent_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let stream = wants_stream(request.headers());
    let as_task = super::tasks::wants_task(request.headers());
    let call = Call::begin(&state, caller, &ask::ASK_AGENT, Some(&workspace_id))?;
    // Files travel in base64 inside the question: its body may be as large as an MCP call's.
    let body: ExecuteRequest = read_json(request, MAX_MCP_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    call.op_call().note_suspicious("message", &body.message);
    let question = body.question(&agent_id);
    if as_task {
        return super::tasks::start(&call, &workspace_id, question).await;
    }
    let run = start_run(&call.ctx, call.principal(), question, &call.caller.info).await;
    let run = call.finish_start(run, &agent_id)?;
    if !stream {
        let answer = follow(&call, run, None).await;
        return call
            .finish(answer, Some(("agentId", &agent_id)))
            .map(|answer| Json(answer).into_response());
    }
    let (tx, rx) = mpsc::channel::<Result<Event, Infallible>>(64);
    tokio::spawn(async move {
        let answer = follow(&call, run, Some(&tx)).await;
        let event = match call.finish(answer, Some(("agentId", &agent_id))) {
            Ok(answer) => Event::default().event("done").json_data(&answer),
            Err(refusal) => Event::default()
                .event("error")
                .json_data(refusal.envelope()),
        };
        if let Ok(event) = event {
            let _ = tx.send(Ok(event)).await;
        }
    });
    let events = tokio_stream::wrappers::ReceiverStream::new(rx);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

impl Call {
    /// Audits a run Dust refused to start; a started run is audited when it ends.
    fn finish_start(&self, run: Result<Run, OpError>, agent_id: &str) -> Result<Run, Refusal> {
        match run {
            Ok(run) => Ok(run),
            Err(e) => self.finish(Err(e), Some(("agentId", agent_id))),
        }
    }
}

/// Cancels the Dust message unless disarmed: dropped with the request (a JSON client that went
/// away) or when the stream's reader is gone.
struct CancelOnDrop<'a> {
    ctx: &'a Arc<Context>,
    principal: &'a Principal,
    answer: Option<AgentAnswer>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(answer) = self.answer.take() {
            cancel_in_background(self.ctx, self.principal, &answer);
        }
    }
}

/// Follows `run` to its answer, sending each piece of answer text to `tokens` when streaming.
async fn follow(
    call: &Call,
    run: Run,
    tokens: Option<&mpsc::Sender<Result<Event, Infallible>>>,
) -> Result<AgentAnswer, OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    let Run { answer, mut events } = run;
    // Revoking the token (or ending the session) ends the answer still streaming on it (L3).
    let ended = call.op_call().credentials_ended();
    tokio::pin!(ended);
    let mut guard = CancelOnDrop {
        ctx,
        principal,
        answer: Some(answer.clone()),
    };
    let deadline = tokio::time::sleep(ctx.settings.agent_timeout);
    tokio::pin!(deadline);
    // An approval sent to the stream and not yet decided (rejected if the call ends first).
    let mut pending: Option<Box<BlockedAction>> = None;
    let gone = async {
        match tokens {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(gone);
    loop {
        let event = tokio::select! {
            () = &mut gone => {
                // The guard cancels the run in Dust as it drops.
                return Err(OpError::Failed(GONE.to_owned()));
            }
            () = &mut deadline => {
                guard.answer = None;
                if let Some(blocked) = pending.take() {
                    let caller = &call.op_call().caller;
                    reject(ctx, caller, &answer, &blocked, "timeout")
                        .await?;
                }
                return Err(OpError::Timeout(timeout_message(ctx, &answer)));
            }
            () = ctx.drain.aborted() => {
                // The guard cancels the run in Dust as it drops.
                return Err(OpError::ShuttingDown(SHUTTING_DOWN.to_owned()));
            }
            () = &mut ended => {
                // The guard cancels the run in Dust as it drops.
                return Err(OpError::Forbidden(CREDENTIALS_ENDED.to_owned()));
            }
            event = events.next() => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                guard.answer = None;
                return Err(stream_failure(Some(e)));
            }
            None => {
                guard.answer = None;
                return Err(stream_failure(None));
            }
        };
        // Dust goes on only once the approval was answered (the decision route).
        pending = None;
        match RunStep::of(event.kind, &answer) {
            RunStep::Done(done) => {
                guard.answer = None;
                return Ok(*done);
            }
            RunStep::Failed(message) => {
                guard.answer = None;
                return Err(OpError::Failed(message));
            }
            // `deny` rejects and the run goes on. `ask`: a stream carries `approval_required`
            // and waits for the decision route
            // (`POST .../conversations/{c}/actions/{a}`); a JSON caller cannot be asked, so the
            // action is rejected and the answer says so.
            RunStep::Approval(blocked) => {
                if ctx.settings.tool_approval != ToolApproval::Deny
                    && let Some(tx) = tokens
                {
                    let request = approval_request(&answer, &blocked);
                    if send(tx, "approval_required", request).await.is_err() {
                        return Err(OpError::Failed(GONE.to_owned()));
                    }
                    pending = Some(blocked);
                    continue;
                }
                if ctx.settings.tool_approval == ToolApproval::Deny {
                    reject(ctx, &call.op_call().caller, &answer, &blocked, "policy").await?;
                    continue;
                }
                reject(ctx, &call.op_call().caller, &answer, &blocked, "unasked").await?;
                guard.answer = None;
                return Err(OpError::Failed(refused_unasked(&blocked, &answer)));
            }
            // A stream carries `question_required` and waits for the answer route (the same
            // `POST .../conversations/{c}/actions/{a}`); a JSON caller cannot be asked, so the
            // call ends naming the question (it stays open in Dust).
            RunStep::Question(blocked) => {
                let question = Question::of(&blocked);
                let (Some(tx), Some(question)) = (tokens, question) else {
                    guard.answer = None;
                    return Err(OpError::Failed(ask::paused_message(&blocked, &answer)));
                };
                let request = question_request(&answer, &blocked, &question);
                if send(tx, "question_required", request).await.is_err() {
                    return Err(OpError::Failed(GONE.to_owned()));
                }
            }
            // A stream carries `auth_required` with the conversation's address in Dust, where
            // the person connects the tool; the run goes on by itself once they have (within
            // the timeout). A JSON caller gets the message naming the tool at once.
            RunStep::SignIn(blocked) => {
                let Some(tx) = tokens else {
                    guard.answer = None;
                    return Err(OpError::Failed(ask::paused_message(&blocked, &answer)));
                };
                let request = sign_in_request(ctx, principal, &answer, &blocked);
                if send(tx, "auth_required", request).await.is_err() {
                    return Err(OpError::Failed(GONE.to_owned()));
                }
            }
            RunStep::Token(text) => {
                if let Some(tx) = tokens
                    && send(tx, "token", serde_json::json!({ "text": text }))
                        .await
                        .is_err()
                {
                    return Err(OpError::Failed(GONE.to_owned()));
                }
            }
            RunStep::Note(_) | RunStep::Ignore => {}
        }
    }
}

/// Why a stream's run ended when its reader went away.
const GONE: &str = "the client went away; the agent's run was cancelled";

/// Sends one event of the stream; `Err` when its reader is gone.
async fn send(
    tx: &mpsc::Sender<Result<Event, Infallible>>,
    name: &str,
    data: serde_json::Value,
) -> Result<(), ()> {
    match Event::default().event(name).json_data(data) {
        Ok(event) => tx.send(Ok(event)).await.map_err(drop),
        // Unreachable for a `Value`; nothing to send.
        Err(_) => Ok(()),
    }
}
