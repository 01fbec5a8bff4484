//! `GET /workspaces[/{workspaceId}]`: the caller's workspace (a token reaches exactly one).

use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, ErrorEnvelope, Refusal, bad_path};
use crate::{
    ops::{views::WorkspaceView, workspace},
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

/// The caller's workspaces (exactly one: the token's).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The caller's workspace", body = WorkspaceList),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WorkspaceList>, Refusal> {
    let call = Call::begin(&state, caller, &workspace::GET_WORKSPACE, None)?;
    let workspace = workspace::get_workspace(&call.ctx, call.principal());
    call.finish(Ok(()), Some(("workspace", &workspace.id)))?;
    Ok(Json(WorkspaceList {
        workspaces: vec![workspace],
    }))
}

/// One workspace: the caller's own, or 403.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}", tag = "workspaces",
    params(("workspaceId" = String, Path, description = "The caller's workspace id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The workspace", body = WorkspaceView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkspaceView>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        &workspace::GET_WORKSPACE,
        Some(&workspace_id),
    )?;
    let workspace = workspace::get_workspace(&call.ctx, call.principal());
    call.finish(Ok(()), Some(("workspace", &workspace.id)))?;
    Ok(Json(workspace))
}
