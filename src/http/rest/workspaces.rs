//! `GET /workspaces[/{workspaceId}]`: the caller's workspace (a token reaches exactly one).

use axum::{
    Json,
    extract::{Path, rejection::PathRejection},
};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Call, Caller, ErrorEnvelope, Refusal, bad_path};
use crate::{auth::Permission, state::AppState};

/// The caller's workspace.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct WorkspaceView {
    /// The workspace id (`sId`).
    pub id: String,
    /// Where this workspace opens in Dust's web app.
    pub web_url: String,
    pub dust_base_url: String,
    /// The caller's permissions here.
    pub permissions: Vec<&'static str>,
    /// The agent used when none is named (`DUST_AGENT_ID`).
    pub default_agent_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct WorkspaceList {
    pub workspaces: Vec<WorkspaceView>,
}

fn view(call: &Call) -> WorkspaceView {
    let settings = &call.ctx.settings;
    let principal = call.principal();
    let mut web = settings.dust_base_url.clone();
    web.set_path(&format!("w/{}", principal.workspace_id));
    WorkspaceView {
        id: principal.workspace_id.clone(),
        web_url: web.to_string(),
        dust_base_url: settings.dust_base_url.to_string(),
        permissions: principal.permissions.names(),
        default_agent_id: settings.default_agent_id.clone(),
    }
}

/// The caller's workspaces (exactly one: the token's).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces",
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The caller's workspace", body = WorkspaceList),
        (status = 401, description = "Not authenticated", body = ErrorEnvelope)))]
pub(super) async fn list(
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
) -> Result<Json<WorkspaceList>, Refusal> {
    let call = Call::begin(
        &state,
        caller,
        "get_workspace",
        Permission::ReadWorkspaces,
        None,
        false,
    )?;
    let workspace = view(&call);
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
    axum::extract::State(state): axum::extract::State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkspaceView>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "get_workspace",
        Permission::ReadWorkspaces,
        Some(&workspace_id),
        false,
    )?;
    let workspace = view(&call);
    call.finish(Ok(()), Some(("workspace", &workspace.id)))?;
    Ok(Json(workspace))
}
