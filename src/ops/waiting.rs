//! A run waiting for a person: what they are shown (the approval prompt, a question, where to
//! connect a tool), and how their answer reaches Dust (`validate-action`, `answer-question`),
//! audited. The adapters ask in their own ways (MCP elicitation or an `input_required` round,
//! REST stream events, console cards); the decisions and answers all come through here, whether
//! during the call ([`decide`], [`answer`]) or later by the REST route on an action Dust lists as
//! waiting ([`decide_pending`], [`answer_pending`]).

use std::sync::Arc;

use super::{
    Caller, Context, OpError,
    args::{MAX_TEXT_BYTES, check_id, check_text},
    catalog::{Kind, Op, op},
    conversations::owned_conversation,
    pause::{PausedRun, Waiting},
    views::AgentAnswer,
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::{Permission, Principal},
    dust::{ActionDecision, BlockKind, BlockedAction, PendingAction},
};

/// Rejects the approval `paused` left waiting in Dust when nobody brought it back within its
/// time (`MCP_SERVER_TIMEOUT`, as a call waiting for a decision would), unless the client came
/// back first: the pause is claimed once, by the retry or by this. A server stopping forgets
/// the timer (the state can still be brought back to another instance).
pub fn reject_when_unanswered(ctx: &Arc<Context>, caller: &Caller, paused: PausedRun) {
    if paused.waiting != Waiting::Approval {
        return;
    }
    let ctx = ctx.clone();
    let caller = caller.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(ctx.pauses.ttl()) => {}
            () = ctx.drain.aborted() => return,
        }
        match ctx
            .pauses
            .claim(&paused, std::time::SystemTime::now())
            .await
        {
            Ok(true) => {
                let (answer, blocked) = (paused.answer(), paused.blocked());
                let rejected = reject(&ctx, &caller, &answer, &blocked, "timeout");
                if let Err(e) = rejected.await {
                    tracing::warn!(error = ?e, "could not reject an approval nobody answered");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim an unanswered approval"),
        }
    });
}

pub const DECIDE_ACTION: Op = op("decide_action", Permission::ExecuteAgents, true, Kind::Run);

/// The name of the agent waiting on `blocked` (Dust's `metadata.agentName`), else its id.
#[must_use]
pub fn agent_name<'a>(answer: &'a AgentAnswer, blocked: &'a BlockedAction) -> &'a str {
    blocked
        .data
        .pointer("/metadata/agentName")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(&answer.agent_id)
}

/// The tool's inputs as a person may see them: masked like a log line (a key or token an agent
/// put in an input is never shown back).
fn masked_inputs(blocked: &BlockedAction) -> serde_json::Value {
    let mut inputs = blocked
        .data
        .get("inputs")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    crate::mask::mask_json(&mut inputs);
    inputs
}

/// What a person is asked when an agent wants to run a tool: the agent, the tool, its server
/// and the tool's inputs, masked as a log line is (a key or token an agent put in an input is
/// never shown back), bounded.
#[must_use]
pub fn approval_prompt(answer: &AgentAnswer, blocked: &BlockedAction) -> String {
    let agent = agent_name(answer, blocked);
    let inputs = crate::mask::sanitize_for_log(&masked_inputs(blocked).to_string(), 1000);
    let stake = blocked
        .data
        .get("stake")
        .and_then(serde_json::Value::as_str)
        .map(|stake| format!(" (stake: {stake})"))
        .unwrap_or_default();
    format!(
        "The agent {agent} wants to run {} ({}){stake} with {inputs}. Allow it?",
        blocked.tool_name, blocked.server_name
    )
}

/// What a caller reads when a tool was refused because nobody could be asked.
#[must_use]
pub fn refused_unasked(blocked: &BlockedAction, answer: &AgentAnswer) -> String {
    format!(
        "The agent wanted to run {} ({}), which needs your approval, and this client cannot be asked (it did not declare MCP elicitation, or it speaks a protocol version before 2026-07-28 over HTTP, where the server cannot send it a question), so the action was rejected. Conversation {}. To allow such tools, use a client with elicitation (over stdio, or the 2026-07-28 protocol), the web console, or ask the operator to set DUST_TOOL_APPROVAL=auto.",
        blocked.tool_name, blocked.server_name, answer.conversation_id
    )
}

/// Answers an approval in Dust (`validate-action`) and records the decision
/// (`agent_action_approved` / `agent_action_rejected`, with the agent, tool and server). `by`
/// says who decided: `person`, `policy` (`DUST_TOOL_APPROVAL=deny`) or `unasked` (the client
/// could not be asked).
///
/// # Errors
///
/// Dust's refusal or failure.
pub async fn decide(
    ctx: &Context,
    caller: &Caller,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    decision: ActionDecision,
    by: &'static str,
) -> Result<(), OpError> {
    let principal = &caller.principal;
    ctx.dust
        .validate_action(
            &principal.credentials,
            &answer.conversation_id,
            &answer.message_id,
            &blocked.action_id,
            decision,
        )
        .await
        .map_err(|e| OpError::dust("answering the agent's approval request", e))?;
    let (event_type, what) = match decision {
        ActionDecision::Rejected => (AuditEventType::AgentActionRejected, "rejected"),
        ActionDecision::Approved => (AuditEventType::AgentActionApproved, "approved"),
        ActionDecision::AlwaysApproved => (AuditEventType::AgentActionApproved, "always_approved"),
    };
    ctx.audit(
        AuditEvent::new(event_type, Severity::Info, "agent tool decision")
            .principal(principal)
            .request(&caller.info)
            .resource("conversation", &answer.conversation_id)
            .action(what)
            .result(AuditResult::Success)
            .extra("agent", answer.agent_id.as_str())
            .extra("tool", blocked.tool_name.as_str())
            .extra("server", blocked.server_name.as_str())
            .extra("decided_by", by),
    );
    Ok(())
}

/// Rejects `blocked` in Dust ([`decide`] with `rejected`): `by` says why nobody approved it
/// (`policy`, `unasked`, `timeout`, `cancelled`).
///
/// # Errors
///
/// Dust's refusal or failure.
pub async fn reject(
    ctx: &Context,
    caller: &Caller,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    by: &'static str,
) -> Result<(), OpError> {
    decide(ctx, caller, answer, blocked, ActionDecision::Rejected, by).await
}

/// A question an agent asks the person (`tool_ask_user_question`'s `question`): its text and
/// the labels of its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: String,
    pub options: Vec<String>,
}

impl Question {
    /// The question in a blocking event, if it carries one.
    #[must_use]
    pub fn of(blocked: &BlockedAction) -> Option<Self> {
        let question = blocked.data.get("question")?;
        let text = question.get("question")?.as_str()?.to_owned();
        let options = question
            .get("options")
            .and_then(serde_json::Value::as_array)
            .map(|options| {
                options
                    .iter()
                    .filter_map(|o| o.get("label").and_then(serde_json::Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Some(Self { text, options })
    }
}

/// Answers an agent's question in Dust (`answer-question`): the chosen option's index and/or
/// the person's own words (sent as they are); nothing chosen tells the agent the person
/// declined. The answer is audited (`agent_question_answered`, with what was replied: an
/// option, text, both or nothing; never the words).
///
/// # Errors
///
/// Dust's refusal or failure.
pub async fn answer(
    ctx: &Context,
    caller: &Caller,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    reply: &crate::dust::QuestionAnswer,
) -> Result<(), OpError> {
    ctx.dust
        .answer_question(
            &caller.principal.credentials,
            &answer.conversation_id,
            &answer.message_id,
            &blocked.action_id,
            reply,
        )
        .await
        .map_err(|e| OpError::dust("answering the agent's question", e))?;
    let replied_with = match (reply.selected_options.is_empty(), &reply.custom_response) {
        (false, Some(_)) => "option_and_text",
        (false, None) => "option",
        (true, Some(_)) => "text",
        (true, None) => "nothing",
    };
    // Neither the chosen label nor the person's words are recorded: an answer may be private.
    ctx.audit(
        AuditEvent::new(
            AuditEventType::AgentQuestionAnswered,
            Severity::Info,
            "agent question answered",
        )
        .principal(&caller.principal)
        .request(&caller.info)
        .resource("conversation", &answer.conversation_id)
        .action("answered")
        .result(AuditResult::Success)
        .extra("agent", answer.agent_id.as_str())
        .extra("tool", blocked.tool_name.as_str())
        .extra("server", blocked.server_name.as_str())
        .extra("replied_with", replied_with),
    );
    Ok(())
}

/// Where the person opens the run's conversation in Dust (to connect a tool, answer, approve):
/// the URL Dust gave, else the web app's address of the conversation.
#[must_use]
pub fn conversation_url(ctx: &Context, principal: &Principal, answer: &AgentAnswer) -> String {
    answer.conversation_url.clone().unwrap_or_else(|| {
        let mut url = ctx.settings.dust_base_url.clone();
        url.set_path(&format!(
            "w/{}/conversation/{}",
            principal.workspace_id, answer.conversation_id
        ));
        url.to_string()
    })
}

/// What every REST event about a waiting action starts with: the ids to answer it with, the
/// agent, the tool and its server.
fn run_of(
    answer: &AgentAnswer,
    blocked: &BlockedAction,
) -> serde_json::Map<String, serde_json::Value> {
    [
        ("actionId", blocked.action_id.as_str()),
        ("messageId", &answer.message_id),
        ("conversationId", &answer.conversation_id),
        ("agent", agent_name(answer, blocked)),
        ("tool", &blocked.tool_name),
        ("server", &blocked.server_name),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.into()))
    .collect()
}

/// What a REST stream tells the person about an approval (`approval_required`): the ids to
/// answer it with, the agent, the tool, its server, its inputs (masked like a log line) and
/// its stake.
#[must_use]
pub fn approval_request(answer: &AgentAnswer, blocked: &BlockedAction) -> serde_json::Value {
    let mut request = run_of(answer, blocked);
    request.insert("inputs".into(), masked_inputs(blocked));
    request.insert("stake".into(), blocked.data.get("stake").cloned().into());
    request.into()
}

/// A person's decision on an approval waiting in one of their conversations (the REST decision
/// route): the action must be one Dust lists as waiting for validation in a conversation the
/// caller owns; anything else is "not found". Dust is told, and the decision audited.
///
/// # Errors
///
/// [`OpError::NotFound`] for another user's conversation or no such waiting action; Dust's.
pub async fn decide_pending(
    ctx: &Context,
    caller: &Caller,
    conversation_id: &str,
    action_id: &str,
    decision: ActionDecision,
) -> Result<(), OpError> {
    let (answer, blocked) =
        waiting_action(ctx, caller, conversation_id, action_id, BlockKind::Approval).await?;
    decide(ctx, caller, &answer, &blocked, decision, "person").await
}

/// What a REST stream tells the person about an agent's question (`question_required`): the
/// ids to answer it with, the agent, the tool, its server, the question and its options'
/// labels.
#[must_use]
pub fn question_request(
    answer: &AgentAnswer,
    blocked: &BlockedAction,
    question: &Question,
) -> serde_json::Value {
    let mut request = run_of(answer, blocked);
    request.insert("question".into(), question.text.clone().into());
    request.insert("options".into(), question.options.clone().into());
    request.into()
}

/// What a REST stream tells the person about a sign-in the agent needs (`auth_required`): the
/// ids of the run, the agent, the tool, its server, and where to connect it
/// ([`conversation_url`]). The run goes on by itself once they have.
#[must_use]
pub fn sign_in_request(
    ctx: &Context,
    principal: &Principal,
    answer: &AgentAnswer,
    blocked: &BlockedAction,
) -> serde_json::Value {
    let mut request = run_of(answer, blocked);
    request.insert(
        "url".into(),
        conversation_url(ctx, principal, answer).into(),
    );
    request.into()
}

/// A person's reply to an agent's question (the REST route): one of the question's options by
/// its label, their own words, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuestionReply {
    /// The label of the chosen option; it must be one of the question's.
    pub choice: Option<String>,
    /// Free text, sent to Dust byte for byte.
    pub answer: Option<String>,
}

/// A person's answer to a question an agent waits on in one of their conversations (the REST
/// route of [`decide_pending`]): the action must be one Dust lists as waiting for the person's
/// answer (`blocked_user_answer_required`) in a conversation the caller owns, else "not
/// found"; a `choice` must be one of the question's option labels. Dust is told (the option's
/// index, the free text as it is), and the answer audited by [`answer`].
///
/// # Errors
///
/// [`OpError::Invalid`] for an empty reply, an oversized answer or a choice that is not an
/// option; [`OpError::NotFound`] for another user's conversation or no such waiting question;
/// Dust's.
pub async fn answer_pending(
    ctx: &Context,
    caller: &Caller,
    conversation_id: &str,
    action_id: &str,
    reply: &QuestionReply,
) -> Result<(), OpError> {
    check_id("conversationId", conversation_id)?;
    check_id("actionId", action_id)?;
    if reply.choice.is_none() && reply.answer.is_none() {
        return Err(OpError::Invalid(
            "an answer needs `choice` (one of the question's options), `answer` (your own words), or both".to_owned(),
        ));
    }
    if let Some(choice) = &reply.choice {
        check_text("choice", choice, MAX_TEXT_BYTES)?;
    }
    if let Some(text) = &reply.answer {
        check_text("answer", text, MAX_TEXT_BYTES)?;
    }
    let (answer_of, blocked) =
        waiting_action(ctx, caller, conversation_id, action_id, BlockKind::Question).await?;
    let options = Question::of(&blocked)
        .map(|q| q.options)
        .unwrap_or_default();
    let mut dust_reply = crate::dust::QuestionAnswer {
        selected_options: Vec::new(),
        custom_response: reply.answer.clone(),
    };
    if let Some(choice) = &reply.choice {
        let Some(index) = options.iter().position(|o| o == choice) else {
            let labels: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
            return Err(OpError::Invalid(if labels.is_empty() {
                "`choice`: this question has no options; answer it with `answer`".to_owned()
            } else {
                format!(
                    "`choice` must be one of the question's options: {}",
                    labels.join(", ")
                )
            }));
        };
        dust_reply
            .selected_options
            .push(u32::try_from(index).unwrap_or(u32::MAX));
    }
    answer(ctx, caller, &answer_of, &blocked, &dust_reply).await
}

/// The action `action_id` that Dust lists as waiting for the person (`kind`: an approval,
/// `blocked_validation_required`, or a question, `blocked_user_answer_required`) in
/// `conversation_id`, which must be the caller's own; anything else is "not found". Returns
/// the run it belongs to and the action as a blocking event's.
async fn waiting_action(
    ctx: &Context,
    caller: &Caller,
    conversation_id: &str,
    action_id: &str,
    kind: BlockKind,
) -> Result<(AgentAnswer, BlockedAction), OpError> {
    let record = owned_conversation(ctx, &caller.principal, conversation_id, &caller.info).await?;
    let found = listed_action(ctx, &caller.principal, conversation_id, action_id)
        .await?
        .filter(|(_, blocked)| blocked.kind == kind);
    let Some((message_id, blocked)) = found else {
        let what = if kind == BlockKind::Question {
            "question"
        } else {
            "action"
        };
        return Err(OpError::NotFound(format!(
            "No {what} {action_id} is waiting for you in conversation {conversation_id}."
        )));
    };
    let answer = AgentAnswer::running(
        record.agent_id,
        conversation_id.to_owned(),
        message_id,
        None,
    );
    Ok((answer, blocked))
}

/// The actions Dust lists as waiting for a person in `conversation_id`, each with the agent
/// message it belongs to, as blocking events' (`principal`'s credentials; the caller checks
/// the conversation is theirs).
///
/// # Errors
///
/// Dust's.
pub async fn listed_actions(
    ctx: &Context,
    principal: &Principal,
    conversation_id: &str,
) -> Result<Vec<(String, BlockedAction)>, OpError> {
    let pending = ctx
        .dust
        .blocked_actions(&principal.credentials, conversation_id)
        .await
        .map_err(|e| OpError::dust("listing the actions waiting for a person", e))?;
    Ok(pending
        .iter()
        .filter_map(|action| Some((action.message_id.clone(), blocked_of(action)?)))
        .collect())
}

/// The action `action_id` among [`listed_actions`].
async fn listed_action(
    ctx: &Context,
    principal: &Principal,
    conversation_id: &str,
    action_id: &str,
) -> Result<Option<(String, BlockedAction)>, OpError> {
    Ok(listed_actions(ctx, principal, conversation_id)
        .await?
        .into_iter()
        .find(|(_, blocked)| blocked.action_id == action_id))
}

/// A waiting action as Dust lists it, as the blocking event that announced it (kind, tool,
/// server, inputs, stake, question); `None` for a status this server does not relay.
#[must_use]
pub fn blocked_of(action: &PendingAction) -> Option<BlockedAction> {
    let kind = match action.status.as_str() {
        "blocked_validation_required" => BlockKind::Approval,
        "blocked_user_answer_required" => BlockKind::Question,
        "blocked_authentication_required" => BlockKind::PersonalAuth,
        "blocked_file_authorization_required" => BlockKind::FileAuth,
        _ => return None,
    };
    let text = |key: &str| {
        action
            .metadata
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    Some(BlockedAction {
        kind,
        action_id: action.action_id.clone(),
        tool_name: text("toolName").unwrap_or_default(),
        server_name: text("mcpServerDisplayName")
            .or_else(|| text("mcpServerName"))
            .unwrap_or_default(),
        data: serde_json::json!({
            "inputs": action.inputs,
            "stake": action.stake,
            "question": action.question,
            "metadata": action.metadata,
        }),
    })
}
