//! `ask_agent` as a task (MCP Tasks extension, SEP-2663, `io.modelcontextprotocol/tasks`), for a
//! client that declares the extension in its request: the question is posted and the call
//! answers at once with a task handle; the client polls `tasks/get`, answers what the run waits
//! for with `tasks/update`, and may `tasks/cancel`. Other clients keep the blocking call.
//!
//! The run's state already lives in Dust (the conversation and the agent message), so a task is
//! only a reference to it: its id is that reference sealed for the caller
//! ([`crate::ops::pause::TaskRef`], living `TASK_TTL`), and every `tasks/*` request reads Dust.
//! Any instance answers for any task, none stores one, and a restart loses nothing. Another
//! person's id, a made-up or an expired one is "not found", and audited.
//!
//! What `tasks/get` reports: `completed` with the `CallToolResult` the blocking call returns;
//! `failed` when the run failed in Dust (`agent_error`, `tool_error`); `cancelled`; while the run
//! goes on, `input_required` when it waits for a person (the forms the blocking call would
//! elicit, one per waiting action, keyed by the action's id), else `working` with a status
//! message. As in the blocking call, an approval nobody can be asked about (the client did not
//! declare form elicitation) or that `DUST_TOOL_APPROVAL=deny` refuses is rejected when seen; a
//! sign-in the run waits for is named in the status message with the address to connect at
//! (the run goes on once the person has).

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
    audit::{AuditEvent, AuditEventType, AuditResult, Severity, rfc3339_millis},
    config::ToolApproval,
    dust::{ActionDecision, BlockKind, BlockedAction, ConversationItem},
    ops::{
        Call, Caller, OpError,
        args::AskAgentArgs,
        ask::post_question,
        pause::TaskRef,
        task_slots::MAX_TASKS_RUNNING,
        views::AgentAnswer,
        waiting::{Question, answer, conversation_url, decide, listed_actions},
    },
};

/// How often a client is asked to poll, in milliseconds.
const POLL_INTERVAL_MS: u64 = 1000;

/// What a client reads for a task id that is not one of theirs, whatever the reason.
const NO_SUCH_TASK: &str =
    "No such task: the id is unknown, belongs to someone else or has expired (TASK_TTL).";

fn now_ms() -> i64 {
    crate::state::epoch_ms(std::time::SystemTime::now())
}

fn rfc3339(ms: i64) -> String {
    rfc3339_millis(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64))
}

/// Whether this request asks for a task: the client declared the extension in it.
pub(super) fn wants_task(request: &RequestContext<RoleServer>) -> bool {
    request
        .client_capabilities()
        .is_some_and(|c| c.supports_tasks())
}

/// Posts the question and answers with the task that follows its run.
pub(super) async fn start(
    call: &Call,
    args: AskAgentArgs,
) -> Result<Outcome<AgentAnswer>, OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    make_room(call).await?;
    let answer = post_question(
        ctx,
        principal,
        args.agent_id,
        args.message,
        args.conversation_id,
        &call.caller.info,
    )
    .await?;
    let now = now_ms();
    let task = TaskRef::new(&answer, now, ctx.settings.task_ttl);
    // Room was made above; a race with another start of the same principal is lost here,
    // after posting: the run then goes on, as a task like the others.
    ctx.task_slots.start(
        &principal.user_id,
        &task.conversation_id,
        &task.message_id,
        ctx.settings.task_ttl,
    );
    let id = ctx.pauses.seal_task(principal, &task);
    audit(call, AuditEventType::TaskCreated, &task, "created");
    Ok(Outcome::Task(CreateTaskResult::new(seed(
        &id,
        &task,
        TaskStatus::Working,
        now,
    ))))
}

/// Checks that the caller may start one more task: at [`MAX_TASKS_RUNNING`], the runs they
/// have going are looked up in Dust and those that ended are forgotten; still at the bound, the
/// call is refused and nothing reaches Dust.
async fn make_room(call: &Call) -> Result<(), OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    let live = ctx.task_slots.live(&principal.user_id);
    if live.len() < MAX_TASKS_RUNNING {
        return Ok(());
    }
    for (conversation_id, message_id) in live {
        let conversation = ctx
            .dust
            .get_conversation(&principal.credentials, &conversation_id)
            .await
            .map_err(|e| OpError::dust("checking your running agent tasks", e))?;
        let still_running = conversation.latest_messages().any(|item| {
            matches!(item, ConversationItem::AgentMessage(m) if m.s_id == message_id && m.status == "created")
        });
        if !still_running {
            ctx.task_slots.ended(&principal.user_id, &message_id);
        }
    }
    if ctx.task_slots.live(&principal.user_id).len() < MAX_TASKS_RUNNING {
        Ok(())
    } else {
        Err(OpError::Busy(format!(
            "You have {MAX_TASKS_RUNNING} agent tasks running, the most one person may; wait for one to finish or cancel one (tasks/cancel)."
        )))
    }
}

/// The task's fields besides its payload.
fn seed(id: &str, task: &TaskRef, status: TaskStatus, now: i64) -> Task {
    Task::new(id, status, rfc3339(task.created_at_ms), rfc3339(now))
        .with_ttl_ms(task.ttl_ms)
        .with_poll_interval_ms(POLL_INTERVAL_MS)
}

/// A task event in the audit log, with the run it stands for.
fn audit(call: &Call, event_type: AuditEventType, task: &TaskRef, action: &str) {
    call.ctx.audit(
        AuditEvent::new(event_type, Severity::Info, "agent task")
            .principal(call.principal())
            .request(&call.caller.info)
            .resource("conversation", &task.conversation_id)
            .action(action)
            .result(AuditResult::Success)
            .extra("agent", task.agent_id.as_str())
            .extra("message", task.message_id.as_str()),
    );
}

/// The task `id` stands for, when it is the caller's and lives; else "not found", audited
/// with the reason.
pub(super) fn open(call: &Call, id: &str) -> Result<TaskRef, OpError> {
    call.ctx
        .pauses
        .open_task(call.principal(), id)
        .map_err(|refusal| {
            call.ctx.audit(
                AuditEvent::new(AuditEventType::AuthzFail, Severity::Medium, "task refused")
                    .principal(call.principal())
                    .request(&call.caller.info)
                    .action(call.op.name)
                    .result(AuditResult::Denied)
                    .extra("reason", refusal.as_str()),
            );
            OpError::NotFound(NO_SUCH_TASK.to_owned())
        })
}

/// `tasks/get`: the run as Dust has it now.
pub(super) async fn get(
    call: &Call,
    id: &str,
    request: &RequestContext<RoleServer>,
) -> Result<GetTaskResult, OpError> {
    let ctx = &call.ctx;
    let task = open(call, id)?;
    let creds = &call.principal().credentials;
    let conversation = ctx
        .dust
        .get_conversation(creds, &task.conversation_id)
        .await
        .map_err(|e| OpError::dust("reading the agent's run", e))?;
    let message = conversation.latest_messages().find_map(|item| match item {
        ConversationItem::AgentMessage(m) if m.s_id == task.message_id => Some(m.clone()),
        _ => None,
    });
    let Some(message) = message else {
        return Err(OpError::NotFound(NO_SUCH_TASK.to_owned()));
    };
    let mut answer = task.answer();
    let mut note = None;
    let payload = match message.status.as_str() {
        "succeeded" => {
            answer.answer = message.content.unwrap_or_default();
            ended(call, &task).await;
            let result = CallToolResult::structured(
                serde_json::to_value(&answer).map_err(|e| OpError::Internal(e.to_string()))?,
            );
            TaskPayload::Completed {
                result: object(serde_json::to_value(result)),
            }
        }
        "failed" => {
            ended(call, &task).await;
            let (reason, code) = message
                .error
                .map(|e| (e.message, e.code))
                .unwrap_or_default();
            let text = format!(
                "The agent failed: {reason} ({code}). Conversation {}.",
                task.conversation_id
            );
            note = Some(text.clone());
            TaskPayload::Failed {
                error: object(Ok(serde_json::json!({"code": -32000, "message": text}))),
            }
        }
        "cancelled" => {
            call.ctx
                .task_slots
                .ended(&call.principal().user_id, &task.message_id);
            TaskPayload::Cancelled
        }
        _ => {
            let last_tool = message
                .actions
                .last()
                .and_then(|a| a.get("toolName"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            let (payload, message) = running(call, &task, &answer, request).await?;
            note = message.or_else(|| {
                Some(match last_tool {
                    Some(tool) => format!("The agent is working (last step: {tool})."),
                    None => "The agent is working.".to_owned(),
                })
            });
            payload
        }
    };
    let mut seed = seed(id, &task, payload.status(), now_ms());
    if let Some(note) = note {
        seed = seed.with_status_message(note);
    }
    Ok(GetTaskResult::new(DetailedTask::new(seed, payload)))
}

/// A JSON value as the object a task payload carries (never anything but an object here).
fn object(value: Result<serde_json::Value, serde_json::Error>) -> JsonObject {
    match value {
        Ok(serde_json::Value::Object(object)) => object,
        _ => JsonObject::new(),
    }
}

/// Records the end of a task's run once, however many times it is read, and frees its slot.
async fn ended(call: &Call, task: &TaskRef) {
    call.ctx
        .task_slots
        .ended(&call.principal().user_id, &task.message_id);
    let key = format!("task-ended:{}:{}", task.conversation_id, task.message_id);
    let window = std::time::Duration::from_millis(task.ttl_ms);
    let first = call
        .ctx
        .pauses
        .first_time(&key, window, std::time::SystemTime::now())
        .await;
    if first.unwrap_or(true) {
        audit(call, AuditEventType::TaskCompleted, task, "completed");
    }
}

/// A run still going: `input_required` with what it waits for, or `working`; and what the
/// person should know (a refused tool, a question or sign-in to answer in Dust), if anything.
async fn running(
    call: &Call,
    task: &TaskRef,
    answer: &AgentAnswer,
    request: &RequestContext<RoleServer>,
) -> Result<(TaskPayload, Option<String>), OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    let waiting = listed_actions(ctx, principal, &task.conversation_id).await?;
    let mut requests = InputRequests::new();
    let mut notes = Vec::new();
    for (message_id, blocked) in waiting {
        if message_id != task.message_id {
            continue;
        }
        match blocked.kind {
            BlockKind::Approval => {
                if ctx.settings.tool_approval == ToolApproval::Deny {
                    decide(
                        ctx,
                        &call.caller,
                        answer,
                        &blocked,
                        ActionDecision::Rejected,
                        "policy",
                    )
                    .await?;
                } else if declares(request, ElicitationMode::Form) {
                    requests.insert(
                        blocked.action_id.clone(),
                        form(approval_form(answer, &blocked)),
                    );
                } else {
                    decide(
                        ctx,
                        &call.caller,
                        answer,
                        &blocked,
                        ActionDecision::Rejected,
                        "unasked",
                    )
                    .await?;
                    notes.push(format!(
                        "{} ({}) was refused: this client cannot be asked (it did not declare form elicitation).",
                        blocked.tool_name, blocked.server_name
                    ));
                }
            }
            BlockKind::Question => match Question::of(&blocked) {
                Some(question) if declares(request, ElicitationMode::Form) => {
                    let asked = question_form(answer, &blocked, &question)?;
                    requests.insert(blocked.action_id.clone(), form(asked));
                }
                _ => notes.push(format!(
                    "The agent waits for your answer to a question ({}); answer it in Dust: {}",
                    blocked.tool_name,
                    conversation_url(ctx, principal, answer)
                )),
            },
            BlockKind::PersonalAuth | BlockKind::FileAuth => notes.push(format!(
                "The agent waits for you to connect {} ({}) in Dust: {}",
                blocked.tool_name,
                blocked.server_name,
                conversation_url(ctx, principal, answer)
            )),
        }
    }
    let note = (!notes.is_empty()).then(|| notes.join(" "));
    if requests.is_empty() {
        Ok((TaskPayload::Working, note))
    } else {
        Ok((
            TaskPayload::InputRequired {
                input_requests: requests,
            },
            note,
        ))
    }
}

fn form(params: rmcp::model::ElicitRequestParams) -> InputRequest {
    InputRequest::Elicitation(ElicitRequest::new(params))
}

/// `tasks/update`: the person's answers to what the run waits for, each keyed by the id of an
/// action Dust lists as waiting in the task's run. Every key and answer is checked before Dust
/// hears of any.
pub(super) async fn update(
    call: &Call,
    id: &str,
    responses: InputResponses,
) -> Result<(), OpError> {
    let ctx = &call.ctx;
    let task = open(call, id)?;
    let answer_of = task.answer();
    let waiting = listed_actions(ctx, call.principal(), &task.conversation_id).await?;
    let mut answers: Vec<(BlockedAction, ElicitResult)> = Vec::new();
    for (key, value) in responses {
        let Some((_, blocked)) = waiting
            .iter()
            .find(|(message_id, b)| *message_id == task.message_id && b.action_id == key)
        else {
            return Err(OpError::Invalid(format!(
                "inputResponses: {key:?} is not a request this task is waiting on"
            )));
        };
        let result: ElicitResult = serde_json::from_value(value).map_err(|e| {
            OpError::Invalid(format!(
                "inputResponses: {key:?} is not an elicitation result: {e}"
            ))
        })?;
        answers.push((blocked.clone(), result));
    }
    for (blocked, result) in answers {
        match blocked.kind {
            BlockKind::Approval => {
                let decision = decision_of(&result);
                decide(ctx, &call.caller, &answer_of, &blocked, decision, "person").await?;
            }
            BlockKind::Question => {
                let options = Question::of(&blocked)
                    .map(|q| q.options)
                    .unwrap_or_default();
                let reply = question_reply(&result, &options);
                answer(ctx, &call.caller, &answer_of, &blocked, &reply).await?;
            }
            BlockKind::PersonalAuth | BlockKind::FileAuth => {}
        }
    }
    Ok(())
}

/// `tasks/cancel`: cancels the run in Dust (the task then reads `cancelled`).
pub(super) async fn cancel(call: &Call, id: &str) -> Result<(), OpError> {
    let task = open(call, id)?;
    call.ctx
        .dust
        .cancel_messages(
            &call.principal().credentials,
            &task.conversation_id,
            std::slice::from_ref(&task.message_id),
        )
        .await
        .map_err(|e| OpError::dust("cancelling the agent's run", e))?;
    call.ctx
        .task_slots
        .ended(&call.principal().user_id, &task.message_id);
    audit(call, AuditEventType::TaskCancelled, &task, "cancelled");
    Ok(())
}

/// The caller of a `tasks/*` request.
pub(super) fn caller(
    principal: std::sync::Arc<crate::auth::Principal>,
    request: &RequestContext<RoleServer>,
) -> Caller {
    Caller {
        principal,
        info: super::request_info(request),
        revalidate: None,
    }
}
