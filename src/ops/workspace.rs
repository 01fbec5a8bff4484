//! The caller's workspace: the one its token reaches, its web address and the caller's
//! permissions there. Answered from the principal and the settings; Dust is not asked.

use super::{
    Context,
    catalog::{Kind, Op, op},
    views::{CallerView, WorkspaceView},
};
use crate::auth::{Permission, Principal};

pub const GET_WORKSPACE: Op = op(
    "get_workspace",
    Permission::ReadWorkspaces,
    false,
    Kind::Read,
);

/// The caller's workspace.
pub fn get_workspace(ctx: &Context, principal: &Principal) -> WorkspaceView {
    let settings = &ctx.settings;
    let mut web = settings.dust_base_url.clone();
    web.set_path(&format!("w/{}", principal.workspace_id));
    WorkspaceView {
        id: principal.workspace_id.clone(),
        web_url: web.to_string(),
        dust_base_url: settings.dust_base_url.to_string(),
        permissions: principal.permissions.names(),
        default_agent_id: settings.default_agent_id.clone(),
        you: CallerView {
            user_id: principal.user_id.clone(),
            username: principal.username.clone(),
        },
    }
}
