//! Agent runs as tasks: `ask_agent` answered at once with a handle the caller reads later (the
//! MCP Tasks extension, `crate::mcp::tasks`; REST `Prefer: respond-async`,
//! `crate::http::rest::tasks`).
//!
//! The run's state already lives in Dust (the conversation and the agent message), so a task is
//! only a reference to it: its id is that reference sealed for the caller
//! ([`super::pause::TaskRef`], living `TASK_TTL`), and every read asks Dust. Any instance
//! answers for any task, none stores one, and a restart loses nothing. Another person's id, a
//! made-up or an expired one is "not found", and audited. How many tasks a person may have
//! running is bounded per instance ([`super::task_slots`]).
//!
//! [`read`] says where the run is ([`TaskState`]); while it waits for a person, the actions it
//! waits on come with it, and the adapter asks in its own way (an MCP form, a REST event);
//! [`answer`] takes the replies. As in the blocking call, an approval nobody can be asked about
//! or that `DUST_TOOL_APPROVAL=deny` refuses is rejected when seen.

use std::time::{Duration, SystemTime};

use super::{
    Call, OpError,
    args::AskAgentArgs,
    ask::post_question,
    catalog::{Kind, Op, op},
    pause::TaskRef,
    task_slots::MAX_TASKS_RUNNING,
    views::AgentAnswer,
    waiting::{
        Question, answer as answer_question, conversation_url, decide, listed_actions, reject,
    },
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::Permission,
    config::ToolApproval,
    dust::{ActionDecision, BlockKind, BlockedAction, ConversationItem, QuestionAnswer},
};

/// Reading, answering and cancelling a task of `ask_agent` (`tasks/get`, `tasks/update`,
/// `tasks/cancel`; REST `GET` and `DELETE .../tasks/{taskId}`).
pub const GET_TASK: Op = op("get_task", Permission::ExecuteAgents, true, Kind::Read);
pub const UPDATE_TASK: Op = op("update_task", Permission::ExecuteAgents, true, Kind::Run);
pub const CANCEL_TASK: Op = op("cancel_task", Permission::ExecuteAgents, true, Kind::Run);

/// What a caller reads for a task id that is not one of theirs, whatever the reason.
pub const NO_SUCH_TASK: &str =
    "No such task: the id is unknown, belongs to someone else or has expired (TASK_TTL).";

/// Where a task's run is.
#[derive(Debug, Clone)]
pub enum TaskState {
    /// Going on; the note says the agent's last step, or what the person should know.
    Working(String),
    /// Waiting for the person: the actions to approve or questions to answer, and a note (a
    /// refused tool, a sign-in to make in Dust) if any.
    Waiting(Vec<BlockedAction>, Option<String>),
    /// Succeeded: the same answer the blocking call returns.
    Completed(AgentAnswer),
    /// Failed in Dust: what went wrong.
    Failed(String),
    Cancelled,
}

/// A person's reply to an action a task waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Decision(ActionDecision),
    Answer(QuestionAnswer),
    /// Seen (a sign-in: the run goes on once the person has connected in Dust).
    Seen,
}

fn now_ms() -> i64 {
    crate::state::epoch_ms(SystemTime::now())
}

/// Posts the question and returns the task that follows its run, with its id.
///
/// # Errors
///
/// [`OpError::Busy`] when the caller has [`MAX_TASKS_RUNNING`] tasks running (nothing reaches
/// Dust then); the question's and Dust's.
pub async fn start(call: &Call, question: AskAgentArgs) -> Result<(String, TaskRef), OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    make_room(call).await?;
    let answer = post_question(ctx, principal, question, &call.caller.info).await?;
    let task = TaskRef::new(&answer, now_ms(), ctx.settings.task_ttl);
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
    Ok((id, task))
}

/// Checks that the caller may start one more task: at [`MAX_TASKS_RUNNING`], the runs they
/// have going are looked up in Dust and those that ended are forgotten; still at the bound, the
/// call is refused.
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
            "You have {MAX_TASKS_RUNNING} agent tasks running, the most one person may; wait for one to finish or cancel one."
        )))
    }
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
///
/// # Errors
///
/// [`OpError::NotFound`] ([`NO_SUCH_TASK`]).
pub fn open(call: &Call, id: &str) -> Result<TaskRef, OpError> {
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

/// Where the run of task `id` is, as Dust has it now. `can_ask` says whether the caller can be
/// asked to approve a tool (an MCP client that declared form elicitation; a REST caller, who
/// answers at the decision route); an approval that cannot be asked, or that the policy denies,
/// is rejected here and the run goes on.
///
/// # Errors
///
/// [`OpError::NotFound`] for a task that is not the caller's; Dust's.
pub async fn read(call: &Call, id: &str, can_ask: bool) -> Result<(TaskRef, TaskState), OpError> {
    let ctx = &call.ctx;
    let task = open(call, id)?;
    let conversation = ctx
        .dust
        .get_conversation(&call.principal().credentials, &task.conversation_id)
        .await
        .map_err(|e| OpError::dust("reading the agent's run", e))?;
    let message = conversation.latest_messages().find_map(|item| match item {
        ConversationItem::AgentMessage(m) if m.s_id == task.message_id => Some(m.clone()),
        _ => None,
    });
    let Some(message) = message else {
        return Err(OpError::NotFound(NO_SUCH_TASK.to_owned()));
    };
    let state = match message.status.as_str() {
        "succeeded" => {
            ended(call, &task).await;
            let mut answer = task.answer();
            let content = message.content.unwrap_or_default();
            answer.citations = super::views::Citation::of(&content, &message.actions);
            answer.answer = content;
            TaskState::Completed(answer)
        }
        "failed" => {
            ended(call, &task).await;
            let (reason, code) = message
                .error
                .map(|e| (e.message, e.code))
                .unwrap_or_default();
            TaskState::Failed(format!(
                "The agent failed: {reason} ({code}). Conversation {}.",
                task.conversation_id
            ))
        }
        "cancelled" => {
            call.ctx
                .task_slots
                .ended(&call.principal().user_id, &task.message_id);
            TaskState::Cancelled
        }
        _ => {
            let last_tool = message
                .actions
                .last()
                .and_then(|a| a.get("toolName"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            let (waiting, note) = waiting_for(call, &task, can_ask).await?;
            if waiting.is_empty() {
                TaskState::Working(note.unwrap_or_else(|| match last_tool {
                    Some(tool) => format!("The agent is working (last step: {tool})."),
                    None => "The agent is working.".to_owned(),
                }))
            } else {
                TaskState::Waiting(waiting, note)
            }
        }
    };
    Ok((task, state))
}

/// Records the end of a task's run once, however many times it is read, and frees its slot.
async fn ended(call: &Call, task: &TaskRef) {
    call.ctx
        .task_slots
        .ended(&call.principal().user_id, &task.message_id);
    let key = format!("task-ended:{}:{}", task.conversation_id, task.message_id);
    let window = Duration::from_millis(task.ttl_ms);
    let first = call
        .ctx
        .pauses
        .first_time(&key, window, SystemTime::now())
        .await;
    if first.unwrap_or(true) {
        audit(call, AuditEventType::TaskCompleted, task, "completed");
    }
}

/// The actions the task's run waits on that the person can answer, and what else they should
/// know: approvals nobody can be asked about (or that the policy denies) are rejected here;
/// a sign-in is named with the address to connect at.
async fn waiting_for(
    call: &Call,
    task: &TaskRef,
    can_ask: bool,
) -> Result<(Vec<BlockedAction>, Option<String>), OpError> {
    let ctx = &call.ctx;
    let principal = call.principal();
    let answer = task.answer();
    let mut waiting = Vec::new();
    let mut notes = Vec::new();
    for (message_id, blocked) in listed_actions(ctx, principal, &task.conversation_id).await? {
        if message_id != task.message_id {
            continue;
        }
        match blocked.kind {
            BlockKind::Approval if ctx.settings.tool_approval == ToolApproval::Deny => {
                reject(ctx, &call.caller, &answer, &blocked, "policy").await?;
            }
            BlockKind::Approval if !can_ask => {
                reject(ctx, &call.caller, &answer, &blocked, "unasked").await?;
                notes.push(format!(
                    "{} ({}) was refused: this client cannot be asked (it did not declare form elicitation).",
                    blocked.tool_name, blocked.server_name
                ));
            }
            BlockKind::Approval | BlockKind::Question => waiting.push(blocked),
            BlockKind::PersonalAuth | BlockKind::FileAuth => notes.push(format!(
                "The agent waits for you to connect {} ({}) in Dust: {}",
                blocked.tool_name,
                blocked.server_name,
                conversation_url(ctx, principal, &answer)
            )),
        }
    }
    Ok((waiting, (!notes.is_empty()).then(|| notes.join(" "))))
}

/// Replies to the actions task `id` waits on, each keyed by the action's id and read by
/// `reply_of` for that action. Every key and reply is checked (an action Dust lists as waiting
/// in the task's run, a reply that fits it) before Dust hears of any.
///
/// # Errors
///
/// [`OpError::NotFound`] for a task that is not the caller's; [`OpError::Invalid`] for a key
/// the task does not wait on, or a reply that does not fit the action (and `reply_of`'s);
/// Dust's.
pub async fn answer<R>(
    call: &Call,
    id: &str,
    responses: impl IntoIterator<Item = (String, R)>,
    reply_of: impl Fn(&BlockedAction, R) -> Result<Reply, OpError>,
) -> Result<(), OpError> {
    let ctx = &call.ctx;
    let task = open(call, id)?;
    let run = task.answer();
    let listed = listed_actions(ctx, call.principal(), &task.conversation_id).await?;
    let mut checked = Vec::new();
    for (key, response) in responses {
        let Some((_, blocked)) = listed
            .iter()
            .find(|(message_id, b)| *message_id == task.message_id && b.action_id == key)
        else {
            return Err(OpError::Invalid(format!(
                "{key:?} is not an action this task is waiting on"
            )));
        };
        let reply = reply_of(blocked, response)?;
        let fits = matches!(
            (&reply, blocked.kind),
            (Reply::Decision(_), BlockKind::Approval)
                | (Reply::Answer(_), BlockKind::Question)
                | (Reply::Seen, _)
        );
        if !fits {
            return Err(OpError::Invalid(format!(
                "{key:?}: this reply does not answer that kind of action"
            )));
        }
        checked.push((blocked.clone(), reply));
    }
    for (blocked, reply) in checked {
        match reply {
            Reply::Decision(decision) => {
                decide(ctx, &call.caller, &run, &blocked, decision, "person").await?;
            }
            Reply::Answer(reply) => {
                answer_question(ctx, &call.caller, &run, &blocked, &reply).await?;
            }
            Reply::Seen => {}
        }
    }
    Ok(())
}

/// The options of a question an action asks, in Dust's order (empty for other actions).
#[must_use]
pub fn options_of(blocked: &BlockedAction) -> Vec<String> {
    Question::of(blocked).map(|q| q.options).unwrap_or_default()
}

/// Cancels the run of task `id` in Dust (it then reads [`TaskState::Cancelled`]).
///
/// # Errors
///
/// [`OpError::NotFound`] for a task that is not the caller's; Dust's.
pub async fn cancel(call: &Call, id: &str) -> Result<(), OpError> {
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
