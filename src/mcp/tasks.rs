//! `ask_agent` as a task over MCP (Tasks extension, SEP-2663, `io.modelcontextprotocol/tasks`),
//! for a 2026-07-28 client that declares the extension in its request ([`wants_task`]): the call answers at once with a
//! task handle; the client polls `tasks/get`, answers what the run waits for with
//! `tasks/update`, and may `tasks/cancel`. Other clients keep the blocking call. What a task is
//! and how it is read lives in [`crate::ops::tasks`]; here is only its MCP form: `working` /
//! `input_required` / `completed` (the `CallToolResult` the blocking call returns) / `failed`
//! / `cancelled`, the forms of the waiting actions as input requests keyed by the action's id
//! (the blocking call's approval and question forms), and the elicitation results of
//! `tasks/update` as replies.

use rmcp::{
    RoleServer,
    model::{
        CallToolResult, CreateTaskResult, DetailedTask, ElicitRequest, ElicitResult, GetTaskResult,
        InputRequest, InputRequests, InputResponses, JsonObject, Task, TaskPayload, TaskStatus,
    },
    service::{ElicitationMode, RequestContext},
};

use super::{
    ask::{approval_form, decision_of, declares, question_form, question_reply},
    tools::Outcome,
};
use crate::{
    audit::rfc3339_epoch_ms as rfc3339,
    dust::BlockKind,
    ops::{
        Call, OpError,
        args::AskAgentArgs,
        pause::TaskRef,
        tasks::{self, Reply, TaskState},
        views::AgentAnswer,
        waiting::{Question, conversation_url},
    },
};

/// How often a client is asked to poll, in milliseconds.
const POLL_INTERVAL_MS: u64 = 2000;

/// Whether this request asks for a task: a 2026-07-28 request that declares the extension in
/// its own capabilities. A handshake-era client gets the answer in place even when it declared
/// the extension at `initialize`: some do without handling a task result (the MCP Inspector CLI
/// 2.12), and over the stateless HTTP transport the declaration is not remembered anyway.
pub(super) fn wants_task(request: &RequestContext<RoleServer>) -> bool {
    let modern = request
        .protocol_version()
        .is_some_and(|v| v >= rmcp::model::ProtocolVersion::V_2026_07_28);
    modern
        && request
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks())
}

/// Posts the question and answers with the task that follows its run.
pub(super) async fn start(
    call: &Call,
    args: AskAgentArgs,
) -> Result<Outcome<AgentAnswer>, OpError> {
    let (id, task) = tasks::start(call, args).await?;
    let seed = seed(&id, &task, TaskStatus::Working, task.created_at_ms);
    Ok(Outcome::Task(CreateTaskResult::new(seed)))
}

/// The task's fields besides its payload.
fn seed(id: &str, task: &TaskRef, status: TaskStatus, now: i64) -> Task {
    Task::new(id, status, rfc3339(task.created_at_ms), rfc3339(now))
        .with_ttl_ms(task.ttl_ms)
        .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// A JSON value as the object a task payload carries.
fn object(value: serde_json::Value) -> JsonObject {
    match value {
        serde_json::Value::Object(object) => object,
        _ => JsonObject::new(),
    }
}

fn form(params: rmcp::model::ElicitRequestParams) -> InputRequest {
    InputRequest::Elicitation(ElicitRequest::new(params))
}

/// `tasks/get`: the run as Dust has it now, in the task's MCP form.
pub(super) async fn get(
    call: &Call,
    id: &str,
    request: &RequestContext<RoleServer>,
) -> Result<GetTaskResult, OpError> {
    let asks = declares(request, ElicitationMode::Form);
    let (task, state) = tasks::read(call, id, asks).await?;
    let answer = task.answer();
    let mut note = None;
    let payload = match state {
        TaskState::Completed(answer) => {
            let value =
                serde_json::to_value(&answer).map_err(|e| OpError::Internal(e.to_string()))?;
            let result = serde_json::to_value(CallToolResult::structured(value))
                .map_err(|e| OpError::Internal(e.to_string()))?;
            TaskPayload::Completed {
                result: object(result),
            }
        }
        TaskState::Failed(message) => {
            note = Some(message.clone());
            TaskPayload::Failed {
                error: object(serde_json::json!({"code": -32000, "message": message})),
            }
        }
        TaskState::Cancelled => TaskPayload::Cancelled,
        TaskState::Working(message) => {
            note = Some(message);
            TaskPayload::Working
        }
        TaskState::Waiting(waiting, message) => {
            let mut notes: Vec<String> = message.into_iter().collect();
            let mut requests = InputRequests::new();
            for blocked in waiting {
                match (blocked.kind, Question::of(&blocked)) {
                    (BlockKind::Approval, _) => {
                        requests.insert(
                            blocked.action_id.clone(),
                            form(approval_form(&answer, &blocked)),
                        );
                    }
                    (BlockKind::Question, Some(question)) if asks => {
                        let asked = question_form(&answer, &blocked, &question)?;
                        requests.insert(blocked.action_id.clone(), form(asked));
                    }
                    _ => notes.push(format!(
                        "The agent waits for your answer to a question ({}); answer it in Dust: {}",
                        blocked.tool_name,
                        conversation_url(&call.ctx, call.principal(), &answer)
                    )),
                }
            }
            note = (!notes.is_empty()).then(|| notes.join(" "));
            if requests.is_empty() {
                TaskPayload::Working
            } else {
                TaskPayload::InputRequired {
                    input_requests: requests,
                }
            }
        }
    };
    let now = crate::state::epoch_ms(std::time::SystemTime::now());
    let mut seed = seed(id, &task, payload.status(), now);
    if let Some(note) = note {
        seed = seed.with_status_message(note);
    }
    Ok(GetTaskResult::new(DetailedTask::new(seed, payload)))
}

/// `tasks/update`: each elicitation result, keyed by the action it answers, as a reply.
pub(super) async fn update(
    call: &Call,
    id: &str,
    responses: InputResponses,
) -> Result<(), OpError> {
    tasks::answer(call, id, responses, |blocked, value| {
        let result: ElicitResult = serde_json::from_value(value).map_err(|e| {
            OpError::Invalid(format!(
                "inputResponses: {:?} is not an elicitation result: {e}",
                blocked.action_id
            ))
        })?;
        Ok(match blocked.kind {
            BlockKind::Approval => Reply::Decision(decision_of(&result)),
            BlockKind::Question => {
                Reply::Answer(question_reply(&result, &tasks::options_of(blocked)))
            }
            BlockKind::PersonalAuth | BlockKind::FileAuth => Reply::Seen,
        })
    })
    .await
}
