//! `mcp-dust-server demo`: the simulator and the HTTP server in one process, in-memory stores
//! (Redis when `REDIS_URL` is set), a per-process secret. It prints the demo credentials, a login command, and client
//! configurations with a freshly issued token, so a person can connect a client in a minute.
//!
//! The demo key belongs to the simulator only; printing it is the point. Audit records go to a
//! file (`AUDIT_LOG_FILE`, else one in the temporary directory, whose path is printed): the
//! terminal keeps the instructions and one log line per event, not each event twice.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::{
    app,
    audit::AuditSink,
    config::{Config, Environment},
    serve::{Parts, build_state, dust_for},
    sim::{self, SimConfig},
    state::SystemClock,
    store::Stores,
};

/// Requests per window and address in the demo, unless `RATE_LIMIT_MAX` says otherwise.
pub const DEMO_RATE_LIMIT_MAX: u32 = 10_000;

/// `mcp-dust-server demo`.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let sim = sim::spawn(SimConfig::default())
        .await
        .context("cannot start the Dust simulator")?;
    config.dust_base_url = sim.base_url().parse()?;
    config.dust_workspace_id = Some(sim.workspace_id().to_owned());
    config.environment = Environment::Development;
    // One person trying things on localhost: the production default (100 requests an hour per
    // address) would stop a demo within minutes. An explicit RATE_LIMIT_MAX still wins.
    if std::env::var_os("RATE_LIMIT_MAX").is_none() {
        config.rate_limit_max = DEMO_RATE_LIMIT_MAX;
    }
    let audit_file = config.audit_log_file.clone().map_or_else(
        || std::env::temp_dir().join("mcp-dust-server-demo-audit.jsonl"),
        std::path::PathBuf::from,
    );
    let addr = app::listen_addr(&config)?;
    let listener = TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (set MCP_SERVER_PORT to another port)")
    })?;
    let parts = Parts {
        dust: dust_for(&sim.base_url())?,
        stores: Stores::from_config(&config)?,
        auditor: app::auditor(&config, AuditSink::File(audit_file.clone()))?,
        clock: Arc::new(SystemClock),
    };
    let state = build_state(config, parts)?;
    crate::serve::report_store(&state).await;
    let server = tokio::spawn(crate::http::serve(
        listener,
        state.clone(),
        crate::shutdown_signal(),
    ));

    let base = &state.public_url;
    let login = format!(
        "curl -s -X POST {base}/api/v1/auth/login -H 'Content-Type: application/json' \\\n  -d '{{\"apiKey\": \"{key}\", \"workspaceId\": \"{ws}\"}}'",
        key = sim.api_key(),
        ws = sim.workspace_id(),
    );
    let token = demo_token(base, sim.api_key(), sim.workspace_id())
        .await
        .unwrap_or_else(|e| format!("<log in with the command above: {e}>"));
    println!(
        "mcp-dust-server demo: the server and a simulated Dust workspace are running.\n\n\
         MCP endpoint:   {base}/mcp\n\
         Web console:    {base}/console (log in with the demo key)\n\
         Dust simulator: {sim_url}\n\
         Demo API key:   {key}\n\
         Workspace id:   {ws}\n\
         Audit trail:    {audit} (JSON lines)\n\n\
         Log in (each person gets a short-lived token for their own key):\n{login}\n\n\
         A token for the demo key (valid {ttl} s):\n{token}\n\n\
         Cursor (~/.cursor/mcp.json):\n\
         {{ \"mcpServers\": {{ \"dust\": {{ \"url\": \"{base}/mcp\", \"headers\": {{ \"Authorization\": \"Bearer {token}\" }} }} }} }}\n\n\
         VS Code (.vscode/mcp.json):\n\
         {{ \"servers\": {{ \"dust\": {{ \"type\": \"http\", \"url\": \"{base}/mcp\", \"headers\": {{ \"Authorization\": \"Bearer {token}\" }} }} }} }}\n\n\
         Claude Desktop (claude_desktop_config.json, stdio against the simulator):\n\
         {{ \"mcpServers\": {{ \"dust\": {{ \"command\": \"{exe}\", \"args\": [\"stdio\"], \"env\": {{ \"DUST_BASE_URL\": \"{sim_url}\", \"DUST_WORKSPACE_ID\": \"{ws}\", \"DUST_API_KEY\": \"{key}\" }} }} }} }}\n\n\
         MCP Inspector:\n\
         npx @modelcontextprotocol/inspector --cli {base}/mcp --header \"Authorization: Bearer {token}\" --method tools/list\n\n\
         Press Ctrl-C to stop.",
        sim_url = sim.base_url(),
        key = sim.api_key(),
        ws = sim.workspace_id(),
        ttl = state.config.token_expiration.as_secs(),
        audit = audit_file.display(),
        exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "mcp-dust-server".into()),
    );
    server.await.context("server task")??;
    app::finish(&state.ops, state.auditor.clone()).await;
    sim.shutdown().await;
    Ok(())
}

/// Logs in with the demo key through the real endpoint, as a client would.
async fn demo_token(base: &str, key: &str, workspace_id: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({ "apiKey": key, "workspaceId": workspace_id }))
        .send()
        .await?
        .error_for_status()?;
    let body: serde_json::Value = response.json().await?;
    body["token"]
        .as_str()
        .map(str::to_owned)
        .context("no token in the login answer")
}
