//! `ask_agent`: run a Dust agent and return its answer.
//!
//! The message is posted without blocking, then the agent message's event stream is followed
//! (reconnecting as needed) to its terminal event. While the agent works, each event becomes a
//! progress notification when the client asked for progress. The answer is the final message's
//! `content` from `agent_message_success`, never the concatenated tokens (those include
//! reasoning and are only a preview).
//!
//! Three ways out besides the answer: the client cancels (the Dust message is cancelled too, so
//! the agent stops spending), `MCP_SERVER_TIMEOUT` passes (the run is left to finish; the result
//! says where to read it later), or Dust fails (a tool error the model can act on).

use std::sync::Arc;

use futures::StreamExt;
use rmcp::{
    ErrorData as McpError, RoleServer,
    model::{CallToolResult, ProgressNotificationParam},
    service::RequestContext,
};

use super::{
    McpContext,
    args::{AskAgentArgs, MAX_TEXT_BYTES, check_id, check_text},
    errors,
    tools::{conversation_not_found, owned_conversation, structured},
    views::AgentAnswer,
};
use crate::{
    auth::Principal,
    dust::{AgentEventKind, CreateConversation, Mention, PostMessage, follow_agent_message},
    store::ConversationRecord,
};

/// How long cancelling the Dust message may take after the client gave up.
const CANCEL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest progress message, in characters.
const MAX_PROGRESS_MESSAGE: usize = 200;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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

pub async fn ask_agent(
    ctx: &Arc<McpContext>,
    principal: &Principal,
    args: AskAgentArgs,
    request: RequestContext<RoleServer>,
) -> Result<CallToolResult, McpError> {
    let Some(agent_id) = args
        .agent_id
        .or_else(|| ctx.settings.default_agent_id.clone())
    else {
        return Err(errors::invalid_params(
            "agentId is required: this server has no default agent (DUST_AGENT_ID)",
        ));
    };
    check_id("agentId", &agent_id)?;
    check_text("message", &args.message, MAX_TEXT_BYTES)?;
    if let Some(id) = &args.conversation_id {
        check_id("conversationId", id)?;
        if owned_conversation(ctx, principal, id, &super::request_info(&request))
            .await?
            .is_none()
        {
            return Ok(conversation_not_found(id));
        }
    }

    let creds = &principal.credentials;
    let message = PostMessage {
        content: args.message,
        mentions: vec![Mention {
            configuration_id: agent_id.clone(),
        }],
        context: ctx.message_context(principal),
        blocking: None,
        skip_tools_validation: None,
    };

    // Post the question and find the agent message that answers it.
    let (conversation_id, agent_message_id, conversation_url) = match &args.conversation_id {
        Some(conversation_id) => {
            let posted = match ctx
                .dust
                .post_message(creds, conversation_id, &message)
                .await
            {
                Ok(posted) => posted,
                Err(e) => return Ok(errors::dust_tool_error("asking the agent", &e)),
            };
            let Some(reply) = posted
                .agent_messages
                .iter()
                .find(|m| m.agent_id().is_none_or(|a| a == agent_id))
            else {
                return Ok(errors::tool_error(
                    "Dust accepted the message but started no agent run; check the agentId.",
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
                skip_tools_validation: Some(true),
            };
            let created = match ctx.dust.create_conversation(creds, &request).await {
                Ok(created) => created,
                Err(e) => return Ok(errors::dust_tool_error("asking the agent", &e)),
            };
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
                .map_err(|e| McpError::internal_error(e.to_string(), None))?;
            let reply = created
                .message
                .as_ref()
                .and_then(|m| conversation.agent_reply_to(&m.s_id));
            let Some(reply) = reply else {
                return Ok(errors::tool_error(format!(
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
    let mut events = follow_agent_message(
        ctx.dust.clone(),
        creds.clone(),
        answer.conversation_id.clone(),
        answer.message_id.clone(),
    );
    let progress_token = request.meta.get_progress_token();
    let mut progress = 0u32;
    let deadline = tokio::time::sleep(ctx.settings.agent_timeout);
    tokio::pin!(deadline);

    loop {
        let event = tokio::select! {
            () = request.ct.cancelled() => {
                cancel_in_background(ctx, principal, &answer);
                return Ok(errors::tool_error("The request was cancelled; the agent's run was cancelled too."));
            }
            () = &mut deadline => {
                return Ok(errors::tool_error(format!(
                    "The agent did not finish within {} s. It may still be working: read its answer later with get_conversation (conversationId {}, messageId {}).",
                    ctx.settings.agent_timeout.as_secs(),
                    answer.conversation_id,
                    answer.message_id,
                )));
            }
            event = events.next() => event,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(e)) => {
                return Ok(errors::dust_tool_error(
                    "waiting for the agent's answer",
                    &e,
                ));
            }
            None => {
                return Ok(errors::tool_error(
                    "Dust closed the agent's event stream without an answer.",
                ));
            }
        };
        let note = match event.kind {
            AgentEventKind::Success { message } => {
                let content = message.content.unwrap_or_default();
                return structured(&AgentAnswer {
                    answer: content,
                    ..answer
                });
            }
            AgentEventKind::Error { error } | AgentEventKind::UserMessageError { error } => {
                return Ok(errors::tool_error(format!(
                    "The agent failed: {} ({}). Conversation {}.",
                    error.message, error.code, answer.conversation_id
                )));
            }
            AgentEventKind::Cancelled => {
                return Ok(errors::tool_error(format!(
                    "The agent's run was cancelled in Dust. Conversation {}.",
                    answer.conversation_id
                )));
            }
            AgentEventKind::GenerationTokens {
                text,
                classification,
            } if classification == "tokens" => Some(text),
            AgentEventKind::GenerationTokens { .. } => Some("Thinking…".to_owned()),
            AgentEventKind::ToolCallStarted { tool_name } => Some(format!("Using {tool_name}")),
            AgentEventKind::ToolProgress { label } => Some(label),
            AgentEventKind::Other { .. } => None,
        };
        if let (Some(token), Some(note)) = (&progress_token, note) {
            progress += 1;
            let note: String = note.chars().take(MAX_PROGRESS_MESSAGE).collect();
            let param = ProgressNotificationParam::new(token.clone(), f64::from(progress))
                .with_message(note);
            // A client that stopped listening to progress is not a reason to stop the run.
            if let Err(e) = request.peer.notify_progress(param).await {
                tracing::debug!(error = %e, "progress notification not delivered");
            }
        }
    }
}

/// Cancels the agent message in Dust without holding up the cancelled request.
fn cancel_in_background(ctx: &Arc<McpContext>, principal: &Principal, answer: &AgentAnswer) {
    let dust = ctx.dust.clone();
    let creds = principal.credentials.clone();
    let conversation_id = answer.conversation_id.clone();
    let message_ids = vec![answer.message_id.clone()];
    tokio::spawn(async move {
        let cancel = dust.cancel_messages(&creds, &conversation_id, &message_ids);
        match tokio::time::timeout(CANCEL_TIMEOUT, cancel).await {
            Ok(Ok(())) => tracing::info!(conversation.id = %conversation_id, "agent run cancelled"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not cancel the agent run"),
            Err(_) => tracing::warn!("cancelling the agent run timed out"),
        }
    });
}
