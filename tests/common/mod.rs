//! Shared test setup: a simulator, the real Dust client pointed at it, and an MCP server with a
//! chosen principal, connected to an rmcp client over an in-memory pipe.

#![allow(dead_code)] // not every part is used by every binary (audit_log.rs takes only http.rs)

pub(crate) mod browser;
pub(crate) mod http;
pub(crate) mod redis_cluster;
pub(crate) mod redis_server;
pub(crate) mod token_proxy;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use mcp_dust_server::{
    auth::{PermissionSet, Principal},
    dust::{DustApi, DustCredentials, HttpDustClient},
    mcp::DustMcp,
    ops::{Context as McpContext, Settings as McpSettings},
    sim::{self, SimConfig, SimHandle},
    store::{ConversationStore, MemoryConversationStore},
};
use rmcp::{
    ClientHandler, RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult, ProgressNotificationParam},
    service::{NotificationContext, RunningService, ServiceError},
};
use serde_json::{Value, json};

/// A client that records the progress notifications it receives.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    pub progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub(crate) fn sim_config() -> SimConfig {
    SimConfig {
        token_delay_ms: 1,
        ..SimConfig::default()
    }
}

pub(crate) fn settings(base_url: &str) -> McpSettings {
    McpSettings {
        server_name: "mcp-dust-server".into(),
        default_agent_id: None,
        timezone: "Europe/Paris".into(),
        agent_timeout: Duration::from_secs(30),
        dust_base_url: base_url.parse().unwrap(),
        tool_approval: mcp_dust_server::config::ToolApproval::Ask,
        task_ttl: std::time::Duration::from_secs(86_400),
        agent_tools: mcp_dust_server::config::AgentTools::None,
    }
}

pub(crate) fn principal(sim: &SimHandle, permissions: PermissionSet, user_id: &str) -> Principal {
    let credentials = DustCredentials::new(sim.workspace_id(), sim.api_key());
    Principal {
        user_id: user_id.to_owned(),
        username: "test-user".into(),
        email: Some("test@example.com".into()),
        full_name: None,
        workspace_id: sim.workspace_id().to_owned(),
        permissions,
        token_id: None,
        credentials,
    }
}

/// A running simulator and an MCP client connected to a server for one principal.
pub(crate) struct McpTest {
    pub sim: SimHandle,
    pub ctx: Arc<McpContext>,
    pub client: RunningService<RoleClient, Recorder>,
    pub recorder: Recorder,
}

impl McpTest {
    pub(crate) async fn start(permissions: PermissionSet) -> Self {
        Self::start_with(sim_config(), permissions, |_| {}).await
    }

    pub(crate) async fn start_with(
        sim_config: SimConfig,
        permissions: PermissionSet,
        tweak: impl FnOnce(&mut McpSettings),
    ) -> Self {
        let sim = sim::spawn(sim_config).await.unwrap();
        let dust: Arc<dyn DustApi> =
            Arc::new(HttpDustClient::with_base_url(&sim.base_url()).unwrap());
        let conversations: Arc<dyn ConversationStore> = Arc::new(MemoryConversationStore::new());
        let mut mcp_settings = settings(&sim.base_url());
        tweak(&mut mcp_settings);
        let ctx = Arc::new(McpContext::new(dust, conversations, mcp_settings));
        let principal = principal(&sim, permissions, "usr_alice");
        let client = connect(ctx.clone(), principal).await;
        let recorder = client.service().clone();
        Self {
            sim,
            ctx,
            client,
            recorder,
        }
    }

    /// Another client on the same server state (same stores), as another principal.
    pub(crate) async fn connect_as(
        &self,
        user_id: &str,
        permissions: PermissionSet,
    ) -> RunningService<RoleClient, Recorder> {
        connect(self.ctx.clone(), principal(&self.sim, permissions, user_id)).await
    }

    pub(crate) async fn call(
        &self,
        tool: &str,
        args: Value,
    ) -> Result<CallToolResult, ServiceError> {
        call(&self.client, tool, args).await
    }

    /// Requests the simulator received for `path_fragment` (method and path).
    pub(crate) fn upstream_calls(&self, path_fragment: &str) -> Vec<String> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.contains(path_fragment))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }
}

pub(crate) async fn connect(
    ctx: Arc<McpContext>,
    principal: Principal,
) -> RunningService<RoleClient, Recorder> {
    connect_with(ctx, principal, Recorder::default()).await
}

/// A client `handler` connected to a server for `principal` over an in-process duplex (stdio's
/// shape: the connection carries the server's requests back to the client).
pub(crate) async fn connect_with<H: ClientHandler>(
    ctx: Arc<McpContext>,
    principal: Principal,
    handler: H,
) -> RunningService<RoleClient, H> {
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let server = DustMcp::with_principal(ctx, principal)
            .serve(server_io)
            .await
            .unwrap();
        let _ = server.waiting().await;
    });
    handler.serve(client_io).await.unwrap()
}

pub(crate) async fn call<H: ClientHandler>(
    client: &RunningService<RoleClient, H>,
    tool: &str,
    args: Value,
) -> Result<CallToolResult, ServiceError> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
}

/// The text of a tool result's first content block.
pub(crate) fn text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The JSON-RPC error code of a failed call.
pub(crate) fn error_code(error: &ServiceError) -> i32 {
    match error {
        ServiceError::McpError(e) => e.code.0,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

pub(crate) fn structured(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {}", text(result));
    result.structured_content.clone().unwrap_or(json!(null))
}
