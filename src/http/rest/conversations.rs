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
    http::{MAX_REST_BODY, read_json},
    ops::{
        args::ConversationIdArgs,
        ask, conversations,
        views::{ConversationList, ConversationView},
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

/// A person's decision on a tool an agent wants to run.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DecisionRequest {
    /// `approve`, `always` (approve, and do not ask again for this tool) or `reject`.
    pub decision: Decision,
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Decision {
    Approve,
    Always,
    Reject,
}

/// What was decided.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct Decided {
    pub action_id: String,
    pub decision: Decision,
}

/// Answers an approval an agent waits for in one of the caller's conversations (the
/// `approval_required` event of an execute stream); another user's conversation, or no such
/// waiting action, is 404.
#[utoipa::path(post,
    path = "/api/v1/workspaces/{workspaceId}/conversations/{conversationId}/actions/{actionId}",
    tag = "conversations",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("conversationId" = String, Path, description = "One of the caller's conversations"),
        ("actionId" = String, Path, description = "The action of the approval_required event")),
    request_body = DecisionRequest,
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
    let call = Call::begin(&state, caller, &ask::DECIDE_ACTION, Some(&workspace_id))?;
    let body: DecisionRequest = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    let decision = match body.decision {
        Decision::Approve => ActionDecision::Approved,
        Decision::Always => ActionDecision::AlwaysApproved,
        Decision::Reject => ActionDecision::Rejected,
    };
    let result = ask::decide_pending(
        &call.ctx,
        &call.op_call().caller,
        &conversation_id,
        &action_id,
        decision,
    )
    .await
    .map(|()| Decided {
        action_id: action_id.clone(),
        decision: body.decision,
    });
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
