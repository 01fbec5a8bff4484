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
    Context, OpError,
    args::{AskAgentArgs, MAX_TEXT_BYTES, check_id, check_text},
    attach,
    catalog::{Kind, Op, op},
    conversations::owned_conversation,
    views::AgentAnswer,
};
use crate::{
    audit::RequestInfo,
    auth::{Permission, Principal},
    config::ToolApproval,
    dust::{
        AgentEventKind, BlockKind, BlockedAction, CreateConversation, DustError, EventStream,
        Mention, PostMessage, follow_agent_message, follow_agent_message_after,
    },
    store::ConversationRecord,
};

/// How long cancelling the Dust message may take after the client gave up.
pub const CANCEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What a caller whose agent run outlived the shutdown grace period reads.
pub const SHUTTING_DOWN: &str = "The server is shutting down and the agent's run did not finish within the grace period; the run was cancelled. Ask again in a moment.";

pub const ASK_AGENT: Op = op("ask_agent", Permission::ExecuteAgents, true, Kind::Run);

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
    /// The run succeeded with this final answer (the message content, not the tokens, and the
    /// sources it cites).
    Done(Box<AgentAnswer>),
    /// The run failed or was cancelled in Dust.
    Failed(String),
    /// The run waits for a person to approve a tool: answer it with [`super::waiting::decide`], whose policy
    /// is `DUST_TOOL_APPROVAL`'s, and the run goes on.
    Approval(Box<BlockedAction>),
    /// The run waits for the person to answer a question: answer it with [`super::waiting::answer`], or, when
    /// nobody can be asked, end the call with [`paused_message`].
    Question(Box<BlockedAction>),
    /// The run waits for the person to connect a tool (or authorize a file) in Dust; it goes
    /// on by itself once they have. [`super::waiting::conversation_url`] is where they do it.
    SignIn(Box<BlockedAction>),
    /// Nothing a caller needs.
    Ignore,
}

impl RunStep {
    /// The meaning of `kind` for the run of `answer`.
    pub fn of(kind: AgentEventKind, answer: &AgentAnswer) -> Self {
        match kind {
            AgentEventKind::Success { message } => {
                let content = message.content.unwrap_or_default();
                Self::Done(Box::new(AgentAnswer {
                    citations: super::views::Citation::of(&content, &message.actions),
                    answer: content,
                    ..answer.clone()
                }))
            }
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
/// or in one of the caller's own, with its attachments), and returns the run that answers it.
/// `message` is sent byte for byte.
pub async fn start_run(
    ctx: &Arc<Context>,
    principal: &Principal,
    question: AskAgentArgs,
    info: &RequestInfo,
) -> Result<Run, OpError> {
    let answer = post_question(ctx, principal, question, info).await?;
    let events = follow_agent_message(
        ctx.dust.clone(),
        principal.credentials.clone(),
        answer.conversation_id.clone(),
        answer.message_id.clone(),
    );
    Ok(Run { answer, events })
}

/// [`start_run`] without following the run: the ids of the agent message that will answer
/// (a task reads the run later, from Dust).
pub async fn post_question(
    ctx: &Arc<Context>,
    principal: &Principal,
    question: AskAgentArgs,
    info: &RequestInfo,
) -> Result<AgentAnswer, OpError> {
    let AskAgentArgs {
        agent_id,
        message,
        conversation_id,
        attachments,
    } = question;
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
    // Files are uploaded first: a refused upload leaves no message behind.
    let fragments = attach::fragments(ctx.dust.as_ref(), creds, &attachments).await?;
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
            for fragment in &fragments {
                ctx.dust
                    .post_content_fragment(creds, conversation_id, fragment)
                    .await
                    .map_err(|e| OpError::dust("attaching to the conversation", e))?;
            }
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
                content_fragments: fragments,
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

    Ok(AgentAnswer::running(
        agent_id,
        conversation_id,
        agent_message_id,
        conversation_url,
    ))
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
