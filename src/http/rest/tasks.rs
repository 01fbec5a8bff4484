//! Agent runs as tasks over REST: `POST .../agents/{agentId}/execute` with
//! `Prefer: respond-async` answers `202 Accepted` with the task and its `Location`; `GET` reads
//! it, `DELETE` cancels its run. The same tasks as MCP's ([`crate::ops::tasks`]): any instance
//! answers for any of them, another person's is 404. An approval or a question the run waits on
//! is listed in `waiting` with the fields of the stream's `approval_required` /
//! `question_required` events, and answered at `POST .../conversations/{c}/actions/{a}`.

use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, Refusal, bad_path};
use crate::{
    dust::BlockKind,
    ops::{
        args::AskAgentArgs,
        pause::TaskRef,
        tasks::{self, TaskState},
        views::AgentAnswer,
        waiting::{Question, approval_request, question_request},
    },
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_one, cancel))
}

/// A task: an agent run the caller reads later.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct TaskView {
    /// The task's id: pass it to `GET` and `DELETE .../tasks/{taskId}`.
    pub task_id: String,
    /// `working`, `input_required`, `completed`, `failed` or `cancelled`.
    pub status: &'static str,
    /// What the agent is doing, or what you should know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// When the task was created (RFC 3339).
    pub created_at: String,
    /// How long the task stays readable after it was created, in milliseconds.
    pub ttl_ms: u64,
    /// The answer, once `completed`: the same as the blocking call's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<AgentAnswer>,
    /// What went wrong, once `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// While `input_required`: the approvals and questions the run waits on, each as the
    /// stream's `approval_required` / `question_required` event data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<serde_json::Value>,
}

impl TaskView {
    fn new(id: String, task: &TaskRef, state: TaskState) -> Self {
        let run = task.answer();
        let mut view = Self {
            task_id: id,
            status: "working",
            status_message: None,
            created_at: crate::audit::rfc3339_epoch_ms(task.created_at_ms),
            ttl_ms: task.ttl_ms,
            answer: None,
            error: None,
            waiting: Vec::new(),
        };
        match state {
            TaskState::Working(note) => view.status_message = Some(note),
            TaskState::Waiting(waiting, note) => {
                view.status = "input_required";
                view.status_message = note;
                view.waiting = waiting
                    .iter()
                    .map(|blocked| match (blocked.kind, Question::of(blocked)) {
                        (BlockKind::Question, Some(question)) => {
                            question_request(&run, blocked, &question)
                        }
                        _ => approval_request(&run, blocked),
                    })
                    .collect();
            }
            TaskState::Completed(answer) => {
                view.status = "completed";
                view.answer = Some(answer);
            }
            TaskState::Failed(message) => {
                view.status = "failed";
                view.error = Some(message);
            }
            TaskState::Cancelled => view.status = "cancelled",
        }
        view
    }
}

/// Whether the client asked for the run as a task (`Prefer: respond-async`, RFC 7240).
pub(super) fn wants_task(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.trim().eq_ignore_ascii_case("respond-async"))
}

/// Starts the run of `call` (an execute call) as a task: `202 Accepted`, its `Location`, and
/// the task.
pub(super) async fn start(
    call: &Call,
    workspace_id: &str,
    question: AskAgentArgs,
) -> Result<Response, Refusal> {
    let agent_id = question.agent_id.clone().unwrap_or_default();
    let started = tasks::start(call.op_call(), question).await;
    let (id, task) = call.finish(started, Some(("agentId", &agent_id)))?;
    let location = format!("/api/v1/workspaces/{workspace_id}/tasks/{id}");
    let view = TaskView::new(
        id,
        &task,
        TaskState::Working("The agent is working.".to_owned()),
    );
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Read a task: where its run is, its answer once completed, what it waits on.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/tasks/{taskId}", tag = "agents",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("taskId" = String, Path, description = "The task's id (from the 202 of execute)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The task", body = TaskView),
        (status = 404, description = "No such task for the caller")))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<TaskView>, Refusal> {
    let Path((workspace_id, task_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &tasks::GET_TASK, Some(&workspace_id))?;
    // A REST caller is asked through `waiting` and answers at the actions route.
    let read = tasks::read(call.op_call(), &task_id, true).await;
    let (task, task_state) = match read {
        Ok(read) => read,
        Err(e) => return call.finish(Err(e), None),
    };
    Ok(Json(TaskView::new(task_id, &task, task_state)))
}

/// Cancel a task: its agent run is cancelled in Dust.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspaceId}/tasks/{taskId}", tag = "agents",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("taskId" = String, Path, description = "The task's id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 204, description = "The run was cancelled"),
        (status = 404, description = "No such task for the caller")))]
pub(super) async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, Refusal> {
    let Path((workspace_id, task_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &tasks::CANCEL_TASK, Some(&workspace_id))?;
    let result = tasks::cancel(call.op_call(), &task_id).await;
    call.finish(result, None).map(|()| StatusCode::NO_CONTENT)
}
