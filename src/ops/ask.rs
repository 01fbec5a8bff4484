//! Asking an agent: posting the question ([`start_run`]) and what each event of the run means
//! to a caller waiting for the answer ([`RunStep`]). The adapters follow the run their own way:
//! MCP with progress notifications (`crate::mcp::ask`), REST as JSON or server-sent events
//! (`crate::http::rest::agents`).
//!
//! The message is posted without blocking, then the agent message's event stream is followed
//! (reconnecting as needed) to its terminal event. The answer is the final message's `content`
//! from `agent_message_success`, never the concatenated tokens (those include reasoning and are
//! only a preview).
//!
//! The ways out besides the answer: the client cancels (the Dust message is cancelled too,
//! [`cancel_in_background`], so the agent stops spending), `MCP_SERVER_TIMEOUT` passes (the run
//! is left to finish; [`timeout_message`] says where to read it later), Dust fails
//! ([`stream_failure`]; `tool_error` is terminal in Dust and ends the call at once), the run
//! pauses for a person (an approval, a question, a sign-in: nothing more comes until someone
//! answers in Dust, so the call ends at once naming the tool and the conversation), or the
//! server is stopping and `SHUTDOWN_GRACE_PERIOD` is over (the run is cancelled, see
//! `crate::shutdown`).
//!
//! Messages are posted with `skipToolsValidation: false` unless `DUST_TOOL_APPROVAL=auto` (Dust
//! takes it per message, the first and each follow-up): an approval then pauses the run and comes
//! to the adapter as [`RunStep::Approval`]. A run the adapter hands back to the client while it
//! waits (the 2026-07-28 `input_required` round) is sealed with [`super::pause`] and followed on
//! with [`resume_run`] from the event it paused at.

use std::sync::Arc;

use super::{
    Caller, Context, OpError,
    args::{MAX_TEXT_BYTES, check_id, check_text},
    catalog::{Kind, Op, op},
    conversations::owned_conversation,
    views::AgentAnswer,
};
use crate::{
    audit::RequestInfo,
    audit::{AuditEvent, AuditEventType, AuditResult, Severity},
    auth::{Permission, Principal},
    config::ToolApproval,
    dust::{
        ActionDecision, AgentEventKind, BlockKind, BlockedAction, CreateConversation, DustError,
        EventStream, Mention, PostMessage, follow_agent_message, follow_agent_message_after,
    },
    store::ConversationRecord,
};

/// How long cancelling the Dust message may take after the client gave up.
pub const CANCEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a caller whose agent run outlived the shutdown grace period reads.
pub const SHUTTING_DOWN: &str = "The server is shutting down and the agent's run did not finish within the grace period; the run was cancelled. Ask again in a moment.";

pub const ASK_AGENT: Op = op("ask_agent", Permission::ExecuteAgents, true, Kind::Run);
pub const DECIDE_ACTION: Op = op("decide_action", Permission::ExecuteAgents, true, Kind::Run);

fn now_ms() -> i64 {
    crate::state::epoch_ms(std::time::SystemTime::now())
}

/// A conversation title from the first line of the question.
fn title_for(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default().trim();
    let mut title: String = first.chars().take(80).collect();
    if first.chars().count() > 80 {
        title.push('…');
    }
    if title.is_empty() {
        "Question from MCP".to_owned()
    } else {
        title
    }
}

/// An agent run Dust has accepted: where its answer will be, and the agent message's events.
pub struct Run {
    /// The ids of the run; `answer` is empty until the run succeeds.
    pub answer: AgentAnswer,
    pub events: EventStream,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("answer", &self.answer)
            .finish_non_exhaustive()
    }
}

/// What one event of a run means to a caller waiting for the answer.
#[derive(Debug)]
pub enum RunStep {
    /// A piece of the answer's text, as generated.
    Token(String),
    /// Something to show while the agent works (reasoning, a tool in use).
    Note(String),
    /// The run succeeded with this final answer (the message content, not the tokens).
    Done(String),
    /// The run failed or was cancelled in Dust.
    Failed(String),
    /// The run waits for a person to approve a tool: answer it with [`decide`], whose policy
    /// is `DUST_TOOL_APPROVAL`'s, and the run goes on.
    Approval(Box<BlockedAction>),
    /// The run waits for the person to answer a question: answer it with [`answer`], or, when
    /// nobody can be asked, end the call with [`paused_message`].
    Question(Box<BlockedAction>),
    /// The run waits for the person to connect a tool (or authorize a file) in Dust; it goes
    /// on by itself once they have. [`conversation_url`] is where they do it.
    SignIn(Box<BlockedAction>),
    /// Nothing a caller needs.
    Ignore,
}

impl RunStep {
    /// The meaning of `kind` for the run of `answer`.
    pub fn of(kind: AgentEventKind, answer: &AgentAnswer) -> Self {
        match kind {
            AgentEventKind::Success { message } => Self::Done(message.content.unwrap_or_default()),
            AgentEventKind::Error { error } | AgentEventKind::UserMessageError { error } => {
                Self::Failed(format!(
                    "The agent failed: {} ({}). Conversation {}.",
                    error.message, error.code, answer.conversation_id
                ))
            }
            AgentEventKind::ToolError { error } => Self::Failed(format!(
                "The agent's tool failed: {} ({}). Conversation {}.",
                error.message, error.code, answer.conversation_id
            )),
            AgentEventKind::Blocked(blocked) if blocked.kind == BlockKind::Approval => {
                Self::Approval(blocked)
            }
            AgentEventKind::Blocked(blocked) if blocked.kind == BlockKind::Question => {
                Self::Question(blocked)
            }
            AgentEventKind::Blocked(blocked)
                if matches!(blocked.kind, BlockKind::PersonalAuth | BlockKind::FileAuth) =>
            {
                Self::SignIn(blocked)
            }
            AgentEventKind::Blocked(blocked) => Self::Failed(paused_message(&blocked, answer)),
            AgentEventKind::Cancelled => Self::Failed(format!(
                "The agent's run was cancelled in Dust. Conversation {}.",
                answer.conversation_id
            )),
            AgentEventKind::GenerationTokens {
                text,
                classification,
            } if classification == "tokens" => Self::Token(text),
            AgentEventKind::GenerationTokens { .. } => Self::Note("Thinking…".to_owned()),
            AgentEventKind::ToolCallStarted { tool_name } => {
                Self::Note(format!("Using {tool_name}"))
            }
            AgentEventKind::ToolProgress { label } => Self::Note(label),
            AgentEventKind::Other { .. } => Self::Ignore,
        }
    }
}

/// What a caller is told when the run pauses for a person (the run stays paused in Dust, where
/// the person can answer it).
pub fn paused_message(blocked: &BlockedAction, answer: &AgentAnswer) -> String {
    let tool = format!("{} ({})", blocked.tool_name, blocked.server_name);
    let conversation = match &answer.conversation_url {
        Some(url) => format!("conversation {} ({url})", answer.conversation_id),
        None => format!("conversation {}", answer.conversation_id),
    };
    match blocked.kind {
        BlockKind::Approval => format!(
            "The agent paused: it wants to run {tool} and needs a person's approval, which this server cannot relay. Approve or reject it in Dust, in {conversation}."
        ),
        BlockKind::Question => {
            let question = blocked
                .data
                .pointer("/question/question")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("a question");
            format!(
                "The agent paused to ask you a question through {tool}: \"{question}\". Answer it in Dust, in {conversation}."
            )
        }
        BlockKind::PersonalAuth => format!(
            "The agent paused: {tool} needs you to connect your account in Dust first. Connect it in Dust, then continue {conversation}."
        ),
        BlockKind::FileAuth => format!(
            "The agent paused: {tool} needs access to a file that must be authorized in Dust first. Authorize it in Dust, then continue {conversation}."
        ),
    }
}

/// What a run's event stream ending or failing means.
pub fn stream_failure(event: Option<DustError>) -> OpError {
    match event {
        Some(e) => OpError::dust("waiting for the agent's answer", e),
        None => {
            OpError::Failed("Dust closed the agent's event stream without an answer.".to_owned())
        }
    }
}

/// What a caller is told when the run outlives `MCP_SERVER_TIMEOUT`.
pub fn timeout_message(ctx: &Context, answer: &AgentAnswer) -> String {
    format!(
        "The agent did not finish within {} s. It may still be working: read its answer later with get_conversation (conversationId {}, messageId {}).",
        ctx.settings.agent_timeout.as_secs(),
        answer.conversation_id,
        answer.message_id,
    )
}

/// Validates the question, posts it to Dust (in a new conversation, recorded as the caller's,
/// or in one of the caller's own), and returns the run that answers it. `message` is sent
/// byte for byte.
pub async fn start_run(
    ctx: &Arc<Context>,
    principal: &Principal,
    agent_id: Option<String>,
    message: String,
    conversation_id: Option<String>,
    info: &RequestInfo,
) -> Result<Run, OpError> {
    let Some(agent_id) = agent_id.or_else(|| ctx.settings.default_agent_id.clone()) else {
        return Err(OpError::Invalid(
            "agentId is required: this server has no default agent (DUST_AGENT_ID)".to_owned(),
        ));
    };
    check_id("agentId", &agent_id)?;
    check_text("message", &message, MAX_TEXT_BYTES)?;
    if let Some(id) = &conversation_id {
        check_id("conversationId", id)?;
        owned_conversation(ctx, principal, id, info).await?;
    }

    let creds = &principal.credentials;
    // Only `DUST_TOOL_APPROVAL=auto` lets Dust run tools unasked; otherwise every approval
    // pauses the run and comes to the adapter as `RunStep::Approval`.
    let skip = ctx.settings.tool_approval == ToolApproval::Auto;
    let message = PostMessage {
        content: message,
        mentions: vec![Mention {
            configuration_id: agent_id.clone(),
        }],
        context: ctx.message_context(principal),
        blocking: None,
        skip_tools_validation: None,
    };

    // Post the question and find the agent message that answers it.
    let (conversation_id, agent_message_id, conversation_url) = match &conversation_id {
        Some(conversation_id) => {
            // `skipToolsValidation` is per message in Dust (default false): a follow-up that
            // omitted it would pause on the first tool that needs approval.
            let message = PostMessage {
                skip_tools_validation: Some(skip),
                ..message
            };
            let posted = ctx
                .dust
                .post_message(creds, conversation_id, &message)
                .await
                .map_err(|e| OpError::dust("asking the agent", e))?;
            let Some(reply) = posted
                .agent_messages
                .iter()
                .find(|m| m.agent_id().is_none_or(|a| a == agent_id))
            else {
                return Err(OpError::Failed(
                    "Dust accepted the message but started no agent run; check the agentId."
                        .to_owned(),
                ));
            };
            (conversation_id.clone(), reply.s_id.clone(), None)
        }
        None => {
            let title = title_for(&message.content);
            let request = CreateConversation {
                title: Some(title.clone()),
                visibility: Some("unlisted".to_owned()),
                message,
                blocking: Some(false),
                // Unattended: a tool approval would stall the run with nobody to approve it.
                skip_tools_validation: Some(skip),
            };
            let created = ctx
                .dust
                .create_conversation(creds, &request)
                .await
                .map_err(|e| OpError::dust("asking the agent", e))?;
            let conversation = created.conversation;
            ctx.conversations
                .record(ConversationRecord {
                    conversation_id: conversation.s_id.clone(),
                    workspace_id: principal.workspace_id.clone(),
                    owner: principal.user_id.clone(),
                    title: Some(title),
                    agent_id: agent_id.clone(),
                    created_at: now_ms(),
                })
                .await
                .map_err(|e| OpError::Internal(e.to_string()))?;
            let reply = created
                .message
                .as_ref()
                .and_then(|m| conversation.agent_reply_to(&m.s_id));
            let Some(reply) = reply else {
                return Err(OpError::Failed(format!(
                    "Dust created conversation {} but started no agent run; check the agentId.",
                    conversation.s_id
                )));
            };
            (
                conversation.s_id.clone(),
                reply.s_id.clone(),
                conversation.url.clone(),
            )
        }
    };

    let answer = AgentAnswer {
        answer: String::new(),
        agent_id,
        conversation_id,
        message_id: agent_message_id,
        conversation_url,
    };
    let events = follow_agent_message(
        ctx.dust.clone(),
        creds.clone(),
        answer.conversation_id.clone(),
        answer.message_id.clone(),
    );
    Ok(Run { answer, events })
}

/// The run a client brings back (`paused`, opened by [`super::pause::Pauses::open`]): its
/// events from the one after the pause. The conversation is the caller's: the state is bound to
/// them and was sealed by a call that checked it.
#[must_use]
pub fn resume_run(ctx: &Context, principal: &Principal, paused: &super::pause::PausedRun) -> Run {
    let answer = paused.answer();
    let events = follow_agent_message_after(
        ctx.dust.clone(),
        principal.credentials.clone(),
        answer.conversation_id.clone(),
        answer.message_id.clone(),
        Some(paused.after.clone()),
    );
    Run { answer, events }
}

/// Cancels the agent message in Dust without holding up the cancelled request.
pub fn cancel_in_background(ctx: &Arc<Context>, principal: &Principal, answer: &AgentAnswer) {
    let dust = ctx.dust.clone();
    let creds = principal.credentials.clone();
    let conversation_id = answer.conversation_id.clone();
    let message_ids = vec![answer.message_id.clone()];
    ctx.background.spawn(async move {
        let cancel = dust.cancel_messages(&creds, &conversation_id, &message_ids);
        match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
            Ok(Ok(())) => tracing::info!(conversation.id = %conversation_id, "agent run cancelled"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not cancel the agent run"),
            Err(_) => tracing::warn!("cancelling the agent run timed out"),
        }
    });
}

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
/// declined.
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
        .map_err(|e| OpError::dust("answering the agent's question", e))
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

/// What a REST stream tells the person about an approval (`approval_required`): the ids to
/// answer it with, the agent, the tool, its server, its inputs (masked like a log line) and
/// its stake.
#[must_use]
pub fn approval_request(answer: &AgentAnswer, blocked: &BlockedAction) -> serde_json::Value {
    serde_json::json!({
        "actionId": blocked.action_id,
        "messageId": answer.message_id,
        "conversationId": answer.conversation_id,
        "agent": agent_name(answer, blocked),
        "tool": blocked.tool_name,
        "server": blocked.server_name,
        "inputs": masked_inputs(blocked),
        "stake": blocked.data.get("stake"),
    })
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
    check_id("conversationId", conversation_id)?;
    check_id("actionId", action_id)?;
    let record = owned_conversation(ctx, &caller.principal, conversation_id, &caller.info).await?;
    let pending = ctx
        .dust
        .blocked_actions(&caller.principal.credentials, conversation_id)
        .await
        .map_err(|e| OpError::dust("listing the actions waiting for a decision", e))?;
    let Some(action) = pending
        .into_iter()
        .find(|a| a.action_id == action_id && a.status == "blocked_validation_required")
    else {
        return Err(OpError::NotFound(format!(
            "No action {action_id} is waiting for a decision in conversation {conversation_id}."
        )));
    };
    let text = |key: &str| {
        action
            .metadata
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let blocked = BlockedAction {
        kind: BlockKind::Approval,
        action_id: action.action_id.clone(),
        tool_name: text("toolName").unwrap_or_default(),
        server_name: text("mcpServerDisplayName")
            .or_else(|| text("mcpServerName"))
            .unwrap_or_default(),
        data: serde_json::json!({ "inputs": action.inputs, "metadata": action.metadata }),
    };
    let answer = AgentAnswer {
        answer: String::new(),
        agent_id: record.agent_id,
        conversation_id: conversation_id.to_owned(),
        message_id: action.message_id,
        conversation_url: None,
    };
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
    serde_json::json!({
        "actionId": blocked.action_id,
        "messageId": answer.message_id,
        "conversationId": answer.conversation_id,
        "agent": agent_name(answer, blocked),
        "tool": blocked.tool_name,
        "server": blocked.server_name,
        "question": question.text,
        "options": question.options,
    })
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
    serde_json::json!({
        "actionId": blocked.action_id,
        "messageId": answer.message_id,
        "conversationId": answer.conversation_id,
        "agent": agent_name(answer, blocked),
        "tool": blocked.tool_name,
        "server": blocked.server_name,
        "url": conversation_url(ctx, principal, answer),
    })
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
/// index, the free text as it is), and the answer audited (`agent_question_answered`).
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
    let record = owned_conversation(ctx, &caller.principal, conversation_id, &caller.info).await?;
    let pending = ctx
        .dust
        .blocked_actions(&caller.principal.credentials, conversation_id)
        .await
        .map_err(|e| OpError::dust("listing the questions waiting for an answer", e))?;
    let Some(action) = pending
        .into_iter()
        .find(|a| a.action_id == action_id && a.status == "blocked_user_answer_required")
    else {
        return Err(OpError::NotFound(format!(
            "No question {action_id} is waiting for an answer in conversation {conversation_id}."
        )));
    };
    let text = |key: &str| {
        action
            .metadata
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let blocked = BlockedAction {
        kind: BlockKind::Question,
        action_id: action.action_id.clone(),
        tool_name: text("toolName").unwrap_or_default(),
        server_name: text("mcpServerDisplayName")
            .or_else(|| text("mcpServerName"))
            .unwrap_or_default(),
        data: serde_json::json!({ "question": action.question, "metadata": action.metadata }),
    };
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
    let answer_of = AgentAnswer {
        answer: String::new(),
        agent_id: record.agent_id,
        conversation_id: conversation_id.to_owned(),
        message_id: action.message_id,
        conversation_url: None,
    };
    answer(ctx, caller, &answer_of, &blocked, &dust_reply).await?;
    let replied_with = match (&reply.choice, &reply.answer) {
        (Some(_), Some(_)) => "option_and_text",
        (Some(_), None) => "option",
        _ => "text",
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
        .resource("conversation", conversation_id)
        .action("answered")
        .result(AuditResult::Success)
        .extra("agent", answer_of.agent_id.as_str())
        .extra("tool", blocked.tool_name.as_str())
        .extra("server", blocked.server_name.as_str())
        .extra("replied_with", replied_with),
    );
    Ok(())
}
