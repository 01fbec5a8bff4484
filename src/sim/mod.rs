//! A Dust API simulator: the same REST contract, seeded data, and faults on demand.
//!
//! It serves `/api/v1/w/{wId}/...` the way Dust does (`shared/reference/dust-api.md`, §8 is the
//! checklist), so the real HTTP client can be tested, demoed and load-tested without a Dust
//! account: same auth errors, error envelope, validation 400s, conversation shapes, SSE redirect
//! and framing, search quirks and upsert rules, file upload and content fragments (which the
//! agents read: their answers name the attachments). Everything is in memory and lost at
//! shutdown; files are bounded per workspace ([`files`]).
//!
//! # Seeded workspace
//!
//! The workspace id and API key are random per start unless configured ([`SimConfig`]); a second
//! workspace with its own key exists for "key of another workspace" tests (it holds only `dust`).
//!
//! | what | id |
//! |---|---|
//! | global agent `dust`: searches what the spaces' views reach, answers `According to "<title>": <chunk> :cite[<ref>]` | [`DUST_AGENT_ID`] = `dust` |
//! | agent "HRHandbook": same, Employee Handbook only | [`HANDBOOK_AGENT_ID`] = `hRb00kAg3n` |
//! | agent "Echo": `You said: <message verbatim>` | [`ECHO_AGENT_ID`] = `ech0Ag3ntX` |
//! | agent "Broken": ends with `agent_error` (`model_error`) | [`FAILING_AGENT_ID`] = `fa1lAg3ntX` |
//! | agent "Sloth": [`SLOW_AGENT_TOKEN_DELAY_MS`] between tokens | [`SLOW_AGENT_ID`] = `sl0wAg3ntX` |
//! | agent "Reporter": its tool fails, the run ends with `tool_error` | [`TOOL_ERROR_AGENT_ID`] = `t00lErr0rX` |
//! | agent "Mailer": `send_email` (Gmail) pauses on `tool_approve_execution` | [`APPROVAL_AGENT_ID`] = `appr0valAg` |
//! | agent "Planner": pauses on `tool_ask_user_question` (Paris or Berlin) | [`QUESTION_AGENT_ID`] = `qu3stionAg` |
//! | agent "DriveReader": pauses on `tool_personal_auth_required` | [`PERSONAL_AUTH_AGENT_ID`] = `p3rsAuthAg` |
//! | space "Company Data" (`global`) | [`COMPANY_SPACE_ID`] = `vlt_c0mpanyDat4` |
//! | space "Engineering" (`regular`) | [`ENGINEERING_SPACE_ID`] = `vlt_eng1neer1ng` |
//! | space "System" (`system`, admin-only: no key sees it) | [`SYSTEM_SPACE_ID`] = `vlt_syst3mSpac3` |
//! | folder "Employee Handbook" (Company Data): `pto-policy`, `expenses`, `security`, `onboarding` | [`HANDBOOK_DS_ID`] = `dts_handb00kF0ld` |
//! | folder "FAQ" (Company Data): `faq-general`, `faq-it` | [`FAQ_DS_ID`] = `dts_faqF0lder001` |
//! | Notion connector (System): `notion-roadmap`, `notion-okrs`, `notion-board-minutes` | [`NOTION_DS_ID`] = `dts_n0tionC0nn01` |
//! | folder "Runbooks" (Engineering): `runbooks/deploy.md`, `on call rotation` | [`RUNBOOKS_DS_ID`] = `dts_runb00kF0ld1` |
//! | Slack connector (System): `slack-incidents`, `slack-deploys` | [`SLACK_DS_ID`] = `dts_s1ackC0nn001` |
//!
//! Whatever its kind, an agent whose user message follows content fragments ends its answer
//! with a paragraph naming them: `Attachments I read: "note.txt" (text/plain, 42 bytes: "first
//! line"); "report.pdf" (application/pdf, 1234 bytes).` (see `fragments`).
//!
//! Views: each folder has a default view in its own space; Company Data sees the Notion pages
//! under `notion-product` and `notion-company` ([`NOTION_VIEW_ID`]), Engineering sees all of Slack
//! ([`SLACK_VIEW_ID`]) and the Notion pages under `notion-product`
//! ([`NOTION_ENGINEERING_VIEW_ID`]). No view selects `notion-board`: the board minutes are never
//! reachable with a key.
//!
//! # Module map
//!
//! - `config`: [`SimConfig`], the flags; `state`: the shared state; `world` and `data`: the
//!   records and their seed.
//! - `auth`, `error`, `record`, `faults`: the layers every request crosses.
//! - `agents`, `conversations` (+ `runner`, `event_log`, `render`, `validate`), `fragments`
//!   (content fragments, and what the agents read of them), `files` (upload), `events` (SSE),
//!   `data_sources` (+ `search`), `documents`, `tables`, `node_search` (`POST /search`): the
//!   routes.
//!
//! # Routes
//!
//! Under `/api/v1/w/{wId}`, every one behind the key check:
//!
//! | route | module |
//! |---|---|
//! | `GET /exists` | here |
//! | `GET /assistant/agent_configurations[/search, /{sId}]` | `agents` |
//! | `POST /assistant/conversations` (with `contentFragments`), `GET /assistant/conversations` (refused to keys), `GET /assistant/conversations/{cId}`, `POST .../{cId}/messages`, `POST .../{cId}/cancel` | `conversations` |
//! | `POST /assistant/conversations/{cId}/content_fragments` | `fragments` |
//! | `GET .../{cId}/actions/blocked`, `POST .../messages/{mId}/validate-action`, `POST .../messages/{mId}/answer-question` | `conversations` |
//! | `GET .../messages/{mId}/events` (307 to `/api/sse/v1/...`) | `events` |
//! | `POST /files`, `POST\|GET\|DELETE /files/{fileId}` (upload with `multipart/form-data`) | `files` |
//! | `POST /search` | `node_search` |
//! | `GET /spaces`, `GET /spaces/{spaceId}/data_sources`, `GET .../data_sources/{dsId}/search`, `GET /spaces/{spaceId}/data_source_views[/{dsvId}[/search]]` | `data_sources` |
//! | `GET .../data_sources/{dsId}/documents`, `GET\|POST\|DELETE .../documents/{documentId}` | `documents` |
//! | `GET .../data_sources/{dsId}/tables[/{tId}]`, `GET\|POST .../tables/{tId}/rows`, `DELETE .../rows/{rId}` | `tables` |
//!
//! `GET /api/v1/me` refuses keys by itself.
//!
//! Outside the Dust API, `GET /_sim/requests` returns the request log and `GET|POST
//! /_sim/faults` reads or replaces the random faults, `GET|POST|DELETE /_sim/fault-plan` reads,
//! extends or empties the fault plan; `/_sim/*` needs no auth and is never faulted.

mod agents;
mod auth;
mod config;
mod conversations;
mod data;
mod data_sources;
mod documents;
mod error;
mod event_log;
mod events;
mod faults;
mod files;
mod fragments;
mod node_search;
mod query;
mod record;
mod render;
mod runner;
mod search;
mod state;
mod tables;
mod validate;
mod world;

use std::{future::Future, net::SocketAddr, sync::Arc, time::SystemTime};

use axum::{
    Json, Router, extract::DefaultBodyLimit, http::StatusCode, middleware::from_fn_with_state,
    routing::get,
};
use serde_json::json;
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub use config::{DEFAULT_LISTEN, SimConfig, random_api_key, random_s_id};
pub use conversations::BLOCKING_WAIT_CAP;
pub use data::{
    APPROVAL_AGENT_ID, COMPANY_SPACE_ID, DUST_AGENT_ID, ECHO_AGENT_ID, ENGINEERING_SPACE_ID,
    FAILING_AGENT_ID, FAQ_DS_ID, FAQ_VIEW_ID, HANDBOOK_AGENT_ID, HANDBOOK_DS_ID, HANDBOOK_VIEW_ID,
    NOTION_DS_ID, NOTION_ENGINEERING_VIEW_ID, NOTION_VIEW_ID, PERSONAL_AUTH_AGENT_ID,
    QUESTION_AGENT_ID, RUNBOOKS_DS_ID, RUNBOOKS_VIEW_ID, SLACK_DS_ID, SLACK_VIEW_ID, SLOW_AGENT_ID,
    SLOW_AGENT_TOKEN_DELAY_MS, SYSTEM_SPACE_ID, TOOL_ERROR_AGENT_ID,
};
pub use faults::{FaultAction, FaultRule, Faults};
pub use record::RecordedRequest;

use error::ApiError;
use state::{AppState, SimState};

/// Serves the simulator on `listener` until `shutdown` resolves.
///
/// At shutdown, hanging requests, open event streams and agent runs are cut short, so the
/// graceful shutdown does not wait for them.
pub async fn serve(
    listener: TcpListener,
    config: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let state = Arc::new(SimState::new(config, format!("http://{addr}")));
    run(listener, state, shutdown).await
}

async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let stop = state.shutdown.clone();
    let app = build_router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            stop.cancel();
        })
        .await
}

/// `mcp-dust-server sim`: binds the configured address, prints the banner (the one place the
/// simulator's keys are shown, on purpose), and serves until Ctrl-C or SIGTERM.
pub async fn run_cli(config: SimConfig) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("{}", banner(addr, &config));
    serve(listener, config, crate::shutdown_signal()).await?;
    Ok(())
}

/// Binds `127.0.0.1:0` and serves in a background task (for tests and `demo`).
pub async fn spawn(config: SimConfig) -> std::io::Result<SimHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(SimState::new(config, format!("http://{addr}")));
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(listener, Arc::clone(&state), async move {
        let _ = rx.await;
    }));
    Ok(SimHandle {
        addr,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}

/// A simulator running in the background. Dropping it stops the server too.
pub struct SimHandle {
    addr: SocketAddr,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: the `DUST_BASE_URL` to give the client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn workspace_id(&self) -> &str {
        &self.state.config.workspace_id
    }

    pub fn api_key(&self) -> &str {
        &self.state.config.api_key
    }

    pub fn other_workspace_id(&self) -> &str {
        &self.state.config.other_workspace_id
    }

    pub fn other_api_key(&self) -> &str {
        &self.state.config.other_api_key
    }

    /// Every request received so far (except `/_sim/*`), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests.snapshot()
    }

    /// How many files the seeded workspace holds (uploaded, being uploaded or failed).
    pub fn file_count(&self) -> usize {
        self.state.workspaces[0].world().files.len()
    }

    /// How many conversations the seeded workspace holds.
    pub fn conversation_count(&self) -> usize {
        self.state.workspaces[0].world().conversations.len()
    }

    /// Replaces the injected faults.
    pub fn set_faults(&self, faults: Faults) {
        self.state.faults.set(faults);
    }

    /// Appends a scripted fault to the fault plan (checked before the random faults).
    pub fn push_fault(&self, rule: FaultRule) {
        self.state.faults.push_rule(rule);
    }

    /// Empties the fault plan.
    pub fn clear_fault_plan(&self) {
        self.state.faults.clear_plan();
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.state.shutdown.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Keys are left out: `Debug` output ends up in logs.
impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("addr", &self.addr)
            .field("workspace_id", &self.workspace_id())
            .finish_non_exhaustive()
    }
}

/// What `mcp-dust-server sim` prints at start. It prints the API key on purpose (the one
/// place it is shown): it is a throwaway key of a local simulator.
pub fn banner(addr: SocketAddr, config: &SimConfig) -> String {
    format!(
        "Dust simulator listening on http://{addr}\n\
         workspace: {w} (agents: dust, {HANDBOOK_AGENT_ID}, {ECHO_AGENT_ID}, {FAILING_AGENT_ID}, {SLOW_AGENT_ID}, {TOOL_ERROR_AGENT_ID}, {APPROVAL_AGENT_ID}, {QUESTION_AGENT_ID}, {PERSONAL_AUTH_AGENT_ID})\n\
         \n\
         Point the server at it with:\n\
         DUST_BASE_URL=http://{addr}\n\
         DUST_WORKSPACE_ID={w}\n\
         DUST_API_KEY={k}\n",
        w = config.workspace_id,
        k = config.api_key,
    )
}

/// Milliseconds since the epoch (Dust's timestamps).
pub(crate) fn now_ms() -> i64 {
    crate::state::epoch_ms(SystemTime::now())
}

/// All routes, in one place. Layer order: `record_request` (outermost) sees every request,
/// faults apply to `/api/*` only, and auth wraps the workspace routes only (not `/api/v1/me`,
/// which refuses keys by itself, nor `/_sim/*`).
fn build_router(state: AppState) -> Router {
    use axum::routing::post;
    const W: &str = "/api/v1/w/{wId}";
    const CONV: &str = "/api/v1/w/{wId}/assistant/conversations/{cId}";
    const DS: &str = "/api/v1/w/{wId}/spaces/{spaceId}/data_sources/{dsId}";
    const DSV: &str = "/api/v1/w/{wId}/spaces/{spaceId}/data_source_views/{dsvId}";
    let workspace = Router::new()
        .route(&format!("{W}/exists"), get(exists))
        .route(
            &format!("{W}/assistant/agent_configurations"),
            get(agents::list_agents),
        )
        .route(
            &format!("{W}/assistant/agent_configurations/search"),
            get(agents::search_agents),
        )
        .route(
            &format!("{W}/assistant/agent_configurations/{{sId}}"),
            get(agents::get_agent),
        )
        .route(
            &format!("{W}/assistant/conversations"),
            get(conversations::list_conversations).post(conversations::create_conversation),
        )
        .route(CONV, get(conversations::get_conversation))
        .route(
            &format!("{CONV}/messages"),
            post(conversations::post_message),
        )
        .route(
            &format!("{CONV}/cancel"),
            post(conversations::cancel_messages),
        )
        .route(
            &format!("{CONV}/content_fragments"),
            post(fragments::post_content_fragment),
        )
        .route(&format!("{W}/files"), post(files::create_file))
        .route(
            &format!("{W}/files/{{fileId}}"),
            get(files::get_file)
                .post(files::upload_file)
                .delete(files::delete_file)
                .layer(DefaultBodyLimit::max(files::MAX_UPLOAD_BODY)),
        )
        .route(
            &format!("{CONV}/actions/blocked"),
            get(conversations::blocked_actions),
        )
        .route(
            &format!("{CONV}/messages/{{mId}}/validate-action"),
            post(conversations::validate_action),
        )
        .route(
            &format!("{CONV}/messages/{{mId}}/answer-question"),
            post(conversations::answer_question),
        )
        .route(
            &format!("{CONV}/messages/{{mId}}/events"),
            get(events::redirect_to_sse),
        )
        .route(
            "/api/sse/v1/w/{wId}/assistant/conversations/{cId}/messages/{mId}/events",
            get(events::stream_agent_events),
        )
        .route(&format!("{W}/search"), post(node_search::search_nodes))
        .route(&format!("{W}/spaces"), get(data_sources::list_spaces))
        .route(
            &format!("{W}/spaces/{{spaceId}}/data_sources"),
            get(data_sources::list_data_sources),
        )
        .route(
            &format!("{DS}/search"),
            get(data_sources::search_data_source),
        )
        .route(
            &format!("{W}/spaces/{{spaceId}}/data_source_views"),
            get(data_sources::list_views),
        )
        .route(DSV, get(data_sources::get_view))
        .route(&format!("{DSV}/search"), get(data_sources::search_view))
        .route(&format!("{DS}/documents"), get(documents::list_documents))
        .route(
            &format!("{DS}/documents/{{documentId}}"),
            get(documents::get_document)
                .post(documents::upsert_document)
                .delete(documents::delete_document),
        )
        .route(&format!("{DS}/tables"), get(tables::list_tables))
        .route(&format!("{DS}/tables/{{tId}}"), get(tables::get_table))
        .route(
            &format!("{DS}/tables/{{tId}}/rows"),
            get(tables::list_rows).post(tables::upsert_rows),
        )
        .route(
            &format!("{DS}/tables/{{tId}}/rows/{{rId}}"),
            axum::routing::delete(tables::delete_row),
        )
        .route_layer(from_fn_with_state(
            Arc::clone(&state),
            auth::require_workspace_key,
        ));
    let api = workspace
        .route("/api/v1/me", get(auth::me))
        .layer(from_fn_with_state(
            Arc::clone(&state),
            faults::inject_faults,
        ));
    let controls = Router::new()
        .route("/_sim/requests", get(record::list_requests))
        .route(
            "/_sim/faults",
            get(faults::get_faults).post(faults::set_faults),
        )
        .route(
            "/_sim/fault-plan",
            get(faults::get_plan)
                .post(faults::push_rule)
                .delete(faults::clear_plan),
        );
    api.merge(controls)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(
            Arc::clone(&state),
            record::record_request,
        ))
        .with_state(state)
}

/// `GET /exists`: nothing beyond auth.
async fn exists() -> Json<serde_json::Value> {
    Json(json!({ "exists": true }))
}

async fn route_not_found() -> ApiError {
    ApiError::not_found(
        "invalid_request_error",
        "The requested route does not exist.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_supported_error",
        "The method passed is not supported.",
    )
}
