//! The caller's conversations: those it started through this server (the conversation store
//! records the owner; Dust's API has no per-user view of a workspace's conversations), and one
//! of them with its messages.
//!
//! Ownership is checked before Dust is asked: another user's conversation answers exactly what
//! an unknown id does ("not found"), and the attempt is recorded (`authz_fail`, catalogue Z6).

use super::{
    Context, OpError,
    args::{ConversationIdArgs, MAX_LIST_LIMIT, check_id, check_range},
    catalog::{Kind, Op, op},
    views::{ConversationList, ConversationSummary, ConversationView},
};
use crate::{
    audit::{AuditEvent, AuditEventType, AuditResult, RequestInfo, Severity},
    auth::{Permission, Principal},
    store::ConversationRecord,
};

pub const LIST_CONVERSATIONS: Op = op(
    "list_conversations",
    Permission::ReadAgents,
    false,
    Kind::Read,
);
pub const GET_CONVERSATION: Op = op("get_conversation", Permission::ReadAgents, true, Kind::Read);

/// The conversations `principal` started through this server, newest first.
pub async fn list_conversations(
    ctx: &Context,
    principal: &Principal,
) -> Result<ConversationList, OpError> {
    let records = ctx
        .conversations
        .list(&principal.workspace_id, &principal.user_id)
        .await?;
    let conversations = records
        .iter()
        .map(|r| ConversationSummary {
            conversation_id: r.conversation_id.clone(),
            title: r.title.clone(),
            agent_id: r.agent_id.clone(),
            created: r.created_at,
        })
        .collect();
    Ok(ConversationList { conversations })
}

/// The conversation record if `principal` owns it; anyone else is told "not found", and Dust is
/// not asked. Asking for another user's conversation is recorded (`authz_fail`, catalogue Z6);
/// the caller still sees exactly what an unknown id gives.
pub async fn owned_conversation(
    ctx: &Context,
    principal: &Principal,
    conversation_id: &str,
    info: &RequestInfo,
) -> Result<ConversationRecord, OpError> {
    let record = ctx
        .conversations
        .get(&principal.workspace_id, conversation_id)
        .await?;
    match record {
        Some(record) if record.owner == principal.user_id => Ok(record),
        Some(_) => {
            ctx.audit(
                AuditEvent::new(
                    AuditEventType::AuthzFail,
                    Severity::Medium,
                    "another user's conversation refused (answered not found)",
                )
                .principal(principal)
                .request(info)
                .resource("conversation", conversation_id)
                .action("access_conversation")
                .result(AuditResult::Denied),
            );
            Err(not_found(conversation_id))
        }
        None => Err(not_found(conversation_id)),
    }
}

/// What an unknown conversation, or another user's, answers.
pub fn not_found(conversation_id: &str) -> OpError {
    OpError::NotFound(format!(
        "Conversation {conversation_id} not found. Only conversations you started through this server (list_conversations) can be read or continued."
    ))
}

/// Messages per page of `get_conversation` when the caller names no `limit`.
const DEFAULT_MESSAGES_PAGE: u32 = 50;

/// One of the caller's conversations with one page of its messages, oldest first.
///
/// Dust answers a conversation whole, so the page is cut here. The cursor is the id of the
/// last message of the previous page: pages stay stable while the conversation grows (new
/// messages only append), and a cursor that names no message of this conversation is refused.
pub async fn get_conversation(
    ctx: &Context,
    principal: &Principal,
    args: ConversationIdArgs,
    info: &RequestInfo,
) -> Result<ConversationView, OpError> {
    check_id("conversationId", &args.conversation_id)?;
    let limit = check_range(
        "limit",
        args.limit.unwrap_or(DEFAULT_MESSAGES_PAGE),
        1,
        MAX_LIST_LIMIT,
    )?;
    if let Some(cursor) = &args.cursor {
        check_id("cursor", cursor)?;
    }
    owned_conversation(ctx, principal, &args.conversation_id, info).await?;
    let conversation = ctx
        .dust
        .get_conversation(&principal.credentials, &args.conversation_id)
        .await
        .map_err(|e| OpError::dust("reading the conversation", e))?;
    let mut view = ConversationView::from(&conversation);
    let start = match &args.cursor {
        None => 0,
        Some(cursor) => {
            let at = view.messages.iter().position(|m| &m.id == cursor);
            at.map(|i| i + 1).ok_or_else(|| {
                OpError::Invalid(format!(
                    "cursor {cursor} is not a message of conversation {}; pass the nextCursor of the previous page",
                    args.conversation_id
                ))
            })?
        }
    };
    let end = start
        .saturating_add(limit as usize)
        .min(view.messages.len());
    view.next_cursor = (end < view.messages.len()).then(|| view.messages[end - 1].id.clone());
    view.messages = view.messages.drain(start..end).collect();
    Ok(view)
}
