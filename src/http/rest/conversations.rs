//! Conversations: the ones the caller started through this server, and one of them with its
//! messages. The same operations as the `list_conversations` and `get_conversation` tools;
//! another user's conversation answers 404, as an unknown one does.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::PathRejection, rejection::QueryRejection},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, Refusal, bad_path, bad_query};
use crate::{
    dust::ActionDecision,
    error::ApiError,
    http::{MAX_REST_BODY, read_json},
    ops::{
        args::ConversationIdArgs,
        conversations,
        views::{ConversationList, ConversationView},
        waiting,
    },
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(decide))
}

/// A person's answer to what an agent waits for: either a decision on a tool it wants to run
/// (`decision`, for `approval_required`), or an answer to its question (`choice` and/or
/// `answer`, for `question_required`). One shape or the other, never both.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ActionReply {
    /// An approval: `approve`, `always` (approve, and do not ask again for this tool) or
    /// `reject`.
    pub decision: Option<Decision>,
    /// A question: the label of the chosen option (one of the event's `options`).
    pub choice: Option<String>,
    /// A question: your own answer, sent to the agent as it is.
    pub answer: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Decision {
    Approve,
    Always,
    Reject,
}

/// What was answered: the decision, or `answered` for a question.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Decided {
    pub action_id: String,
    /// The decision on an approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// `true` when a question was answered.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub answered: bool,
}

/// What an [`ActionReply`] asks for, once its shape is checked.
enum Reply {
    Decision(Decision),
    Answer(waiting::QuestionReply),
}

impl ActionReply {
    /// The reply's one shape, or why the body is neither.
    fn shape(self) -> Result<Reply, &'static str> {
        match (self.decision, self.choice, self.answer) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(
                "send either `decision` (to answer an approval) or `choice`/`answer` (to answer a question), not both",
            ),
            (Some(decision), None, None) => Ok(Reply::Decision(decision)),
            (None, None, None) => Err(
                "the body needs `decision` (to answer an approval) or `choice` and/or `answer` (to answer a question)",
            ),
            (None, choice, answer) => Ok(Reply::Answer(waiting::QuestionReply { choice, answer })),
        }
    }
}

/// Answers what an agent waits for in one of the caller's conversations: an approval (the
/// `approval_required` event of an execute stream) with `{"decision"}`, or a question
/// (`question_required`) with `{"choice"?, "answer"?}` (`choice` one of the event's `options`).
/// Another user's conversation, or no such waiting action, is 404.
#[utoipa::path(post,
    path = "/api/v1/workspaces/{workspaceId}/conversations/{conversationId}/actions/{actionId}",
    tag = "conversations",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("conversationId" = String, Path, description = "One of the caller's conversations"),
        ("actionId" = String, Path,
            description = "The action of the approval_required or question_required event")),
    request_body = ActionReply,
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Dust was told", body = Decided)))]
pub(super) async fn decide(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: axum::extract::Request,
) -> Result<Json<Decided>, Refusal> {
    let Path((workspace_id, conversation_id, action_id)) =
        path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &waiting::DECIDE_ACTION, Some(&workspace_id))?;
    let body: ActionReply = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    let reply = body
        .shape()
        .map_err(|reason| call.invalid(ApiError::bad_request(reason)))?;
    let caller = &call.op_call().caller;
    let result = match reply {
        Reply::Decision(decision) => {
            let to_dust = match decision {
                Decision::Approve => ActionDecision::Approved,
                Decision::Always => ActionDecision::AlwaysApproved,
                Decision::Reject => ActionDecision::Rejected,
            };
            waiting::decide_pending(&call.ctx, caller, &conversation_id, &action_id, to_dust)
                .await
                .map(|()| Decided {
                    action_id: action_id.clone(),
                    decision: Some(decision),
                    answered: false,
                })
        }
        Reply::Answer(reply) => {
            if let Some(text) = &reply.answer {
                call.op_call().note_suspicious("answer", text);
            }
            waiting::answer_pending(&call.ctx, caller, &conversation_id, &action_id, &reply)
                .await
                .map(|()| Decided {
                    action_id: action_id.clone(),
                    decision: None,
                    answered: true,
                })
        }
    };
    call.finish(result, Some(("conversationId", &conversation_id)))
        .map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct PageQuery {
    /// How many messages to return, oldest first (1 to 100, default 50).
    pub limit: Option<u32>,
    /// Continue after this point: the `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// The conversations the caller started through this server, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/conversations", tag = "conversations",
    params(("workspaceId" = String, Path, description = "The caller's workspace id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The caller's conversations", body = ConversationList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConversationList>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let op = &conversations::LIST_CONVERSATIONS;
    let call = Call::begin(&state, caller, op, Some(&workspace_id))?;
    let result = conversations::list_conversations(&call.ctx, call.principal()).await;
    call.finish(result, None).map(Json)
}

/// One of the caller's conversations with one page of its messages, oldest first.
#[utoipa::path(get,
    path = "/api/v1/workspaces/{workspaceId}/conversations/{conversationId}",
    tag = "conversations",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("conversationId" = String, Path, description = "One of the caller's conversations"),
        PageQuery),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The conversation", body = ConversationView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    page: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<ConversationView>, Refusal> {
    let Path((workspace_id, conversation_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let Query(page) = page.map_err(|e| bad_query(&caller, &e))?;
    let op = &conversations::GET_CONVERSATION;
    let call = Call::begin(&state, caller, op, Some(&workspace_id))?;
    let args = ConversationIdArgs {
        conversation_id: conversation_id.clone(),
        limit: page.limit,
        cursor: page.cursor,
    };
    let info = &call.caller.info;
    let result = conversations::get_conversation(&call.ctx, call.principal(), args, info).await;
    call.finish(result, Some(("conversationId", &conversation_id)))
        .map(Json)
}
