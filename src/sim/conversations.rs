//! Conversations and messages (`/assistant/conversations/...`): create, get, post, cancel.
//!
//! A create call may carry content fragments (`contentFragments[]`, legacy `contentFragment`:
//! [`super::fragments`]), which take their ranks before the message's. Posting a message
//! creates one agent message per mention and starts its runner
//! ([`super::runner`]). Non-blocking calls return at once with the agent messages in state
//! `created`; blocking calls wait for every run to end, at most [`BLOCKING_WAIT_CAP`], as Dust's
//! `waitForAgentCompletion` does, then read the conversation again.

use std::{sync::Arc, time::Duration};

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{Value, json};

use super::{
    agents::agent_not_found,
    error::{ApiError, ApiResult, Fields, kind_name, parse_json},
    event_log::{DecideError, Decision, MessageLog},
    fragments::{self, FragmentInput},
    now_ms, random_s_id,
    render::{agent_message_json, conversation_json, user_message_json},
    runner::{self, Job},
    state::{AppState, Workspace},
    validate::{NewMessage, parse_message},
    world::{AgentMsg, AgentStatus, Conversation, Slot, UserMsg, World},
};

/// Longest a blocking create/post waits for the agents (`WAIT_FOR_AGENT_COMPLETION_TIMEOUT_MS`);
/// after it, the answer holds whatever state the messages are in.
pub const BLOCKING_WAIT_CAP: Duration = Duration::from_secs(180);

/// Visibilities a conversation may be created with.
const VISIBILITIES: &[&str] = &["unlisted", "workspace", "deleted", "test"];

type Wid = Path<String>;

pub(crate) fn conversation_not_found() -> ApiError {
    ApiError::not_found("conversation_not_found", "Conversation not found")
}

/// `POST /assistant/conversations`.
pub(crate) async fn create_conversation(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    _w_id: Wid,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    let title = root.opt_str("title")?.map(str::to_owned);
    let visibility = match root.opt_str("visibility")? {
        None | Some("workspace") => "unlisted",
        Some(v) if VISIBILITIES.contains(&v) => v,
        Some(_) => {
            return Err(ApiError::invalid_body(
                "visibility",
                "Invalid enum value. Expected 'unlisted' | 'workspace' | 'deleted' | 'test'",
            ));
        }
    };
    let blocking = root.opt_bool("blocking")?.unwrap_or(false);
    let skip_tools_validation = root.opt_bool("skipToolsValidation")?.unwrap_or(false);
    let message = root
        .get("message")
        .map(|m| parse_message(m, "message"))
        .transpose()?;
    let inputs = parse_fragments(&root)?;
    for input in &inputs {
        fragments::check_input(input, "Invalid content fragment type.")?;
    }

    let (conversation_id, posted, fragment) = {
        let mut world = ws.world();
        if let Some(message) = &message {
            check_mentions(&world, message)?;
        }
        let prepared = inputs
            .into_iter()
            .map(|input| fragments::prepare(&world, &state, &ws, input))
            .collect::<ApiResult<Vec<_>>>()?;
        fragments::ensure_room(&world, &prepared)?;
        let now = now_ms();
        let conversation = Conversation {
            id: world.next_id(),
            s_id: random_s_id(),
            created: now,
            updated: now,
            title,
            visibility: visibility.to_owned(),
            slots: Vec::new(),
        };
        let id = conversation.s_id.clone();
        world.conversations.insert(id.clone(), conversation);
        let fragment = prepared
            .into_iter()
            .filter_map(|p| fragments::append(&mut world, &id, p))
            .last();
        let posted = message.and_then(|m| add_message(&mut world, &id, m, skip_tools_validation));
        (id, posted, fragment)
    };
    let mut user_message = None;
    if let Some(posted) = posted {
        user_message = Some(posted.user_message.clone());
        run_and_wait(&state, &ws, posted, blocking).await;
    }
    let world = ws.world();
    let conversation = world
        .conversations
        .get(&conversation_id)
        .ok_or_else(conversation_not_found)?;
    let mut answer = json!({
        "conversation": conversation_json(&ws, &state.base_url, &world, conversation),
    });
    if let Some(m) = user_message {
        answer["message"] = user_message_json(&m);
    }
    if let Some(f) = fragment {
        answer["contentFragment"] = fragments::fragment_json(&f);
    }
    Ok(Json(answer))
}

/// `contentFragments[]` then the legacy `contentFragment`, in the order Dust posts them.
fn parse_fragments(root: &Fields<'_>) -> ApiResult<Vec<FragmentInput>> {
    let mut inputs = Vec::new();
    if let Some(list) = root.get("contentFragments") {
        let Value::Array(items) = list else {
            return Err(ApiError::invalid_body(
                "contentFragments",
                &format!("Expected array, received {}", kind_name(list)),
            ));
        };
        for (i, item) in items.iter().enumerate() {
            inputs.push(fragments::parse_fragment(
                item,
                &format!("contentFragments.{i}"),
            )?);
        }
    }
    if let Some(single) = root.get("contentFragment") {
        inputs.push(fragments::parse_fragment(single, "contentFragment")?);
    }
    Ok(inputs)
}

/// `GET /assistant/conversations/{cId}`.
pub(crate) async fn get_conversation(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let conversation = world
        .conversations
        .get(&c_id)
        .ok_or_else(conversation_not_found)?;
    Ok(Json(json!({
        "conversation": conversation_json(&ws, &state.base_url, &world, conversation),
    })))
}

/// `GET /assistant/conversations`: reserved to OAuth users, so always refused to a key.
pub(crate) async fn list_conversations() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "user_not_found",
        "Getting conversations is only available when authenticated as a user.",
    )
}

/// `POST /assistant/conversations/{cId}/messages` → `{message, agentMessages}`.
pub(crate) async fn post_message(
    State(state): State<AppState>,
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    let blocking = root.opt_bool("blocking")?.unwrap_or(false);
    // Per message, default false: a conversation created with it does not pass it on.
    let skip_tools_validation = root.opt_bool("skipToolsValidation")?.unwrap_or(false);
    let message = parse_message(&value, "")?;
    let posted = {
        let mut world = ws.world();
        if !world.conversations.contains_key(&c_id) {
            return Err(conversation_not_found());
        }
        check_mentions(&world, &message)?;
        add_message(&mut world, &c_id, message, skip_tools_validation)
            .ok_or_else(conversation_not_found)?
    };
    let user_message = user_message_json(&posted.user_message);
    let agent_ids: Vec<String> = posted.jobs.iter().map(|j| j.message_id.clone()).collect();
    run_and_wait(&state, &ws, posted, blocking).await;

    let mut world = ws.world();
    let conversation = world
        .conversations
        .get_mut(&c_id)
        .ok_or_else(conversation_not_found)?;
    let messages: Vec<AgentMsg> = agent_ids
        .iter()
        .filter_map(|id| conversation.agent_message_mut(id).map(|m| m.clone()))
        // Blocking mode drops the agents that failed, as Dust does.
        .filter(|m| !(blocking && m.status == AgentStatus::Failed))
        .collect();
    let world = &mut *world;
    let agent_messages: Vec<Value> = messages
        .iter()
        .map(|m| agent_message_json(world, m))
        .collect();
    Ok(Json(
        json!({ "message": user_message, "agentMessages": agent_messages }),
    ))
}

/// `POST /assistant/conversations/{cId}/cancel` with `{"messageIds":[...]}`.
pub(crate) async fn cancel_messages(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    root.req_array("messageIds")?;
    let ids = root.opt_str_array("messageIds")?;
    let world = ws.world();
    let conversation = world
        .conversations
        .get(&c_id)
        .ok_or_else(conversation_not_found)?;
    for id in &ids {
        let in_conversation = conversation
            .slots
            .iter()
            .any(|slot| matches!(slot, Slot::Agent(m) if &m.s_id == id));
        if let (true, Some(log)) = (in_conversation, world.message_logs.get(id)) {
            log.cancel.cancel();
        }
    }
    Ok(Json(json!({ "success": true })))
}

/// `GET /assistant/conversations/{cId}/actions/blocked`: the actions the conversation's runs
/// are paused on.
pub(crate) async fn blocked_actions(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let conversation = world
        .conversations
        .get(&c_id)
        .ok_or_else(conversation_not_found)?;
    let actions: Vec<Value> = conversation
        .slots
        .iter()
        .filter_map(|slot| match slot {
            Slot::Agent(m) => world.message_logs.get(&m.s_id)?.blocked_action(),
            Slot::User(_) | Slot::Fragment(_) => None,
        })
        .collect();
    Ok(Json(json!({ "blockedActions": actions })))
}

/// The event log of agent message `m_id` of conversation `c_id`, or Dust's 404s.
fn message_log(world: &World, c_id: &str, m_id: &str) -> ApiResult<Arc<MessageLog>> {
    let conversation = world
        .conversations
        .get(c_id)
        .ok_or_else(conversation_not_found)?;
    let is_agent_message = conversation
        .slots
        .iter()
        .any(|slot| matches!(slot, Slot::Agent(m) if m.s_id == m_id));
    is_agent_message
        .then(|| world.message_logs.get(m_id).cloned())
        .flatten()
        .ok_or_else(|| ApiError::not_found("message_not_found", "Message not found."))
}

/// Hands `decision` to the run paused on `action_id`, or answers Dust's errors.
fn decide(log: &MessageLog, action_id: &str, status: &str, decision: Decision) -> ApiResult<()> {
    log.decide(action_id, status, decision)
        .map_err(|e| match e {
            DecideError::NotFound => ApiError::not_found(
                "action_not_found",
                "The action was not found or is not waiting for an answer.",
            ),
            DecideError::WrongKind => {
                ApiError::invalid_request("This action is not waiting for this kind of answer.")
            }
        })
}

/// `POST .../messages/{mId}/validate-action` with `{actionId, approved}`, where `approved` is
/// `approved`, `rejected` or `always_approved` (Dust's OpenAPI wrongly says a boolean).
pub(crate) async fn validate_action(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id, m_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    let action_id = root.req_str("actionId")?;
    let Some(approved @ ("approved" | "rejected" | "always_approved")) =
        root.required("approved")?.as_str()
    else {
        return Err(ApiError::invalid_body(
            "approved",
            "Invalid enum value. Expected 'approved' | 'rejected' | 'always_approved'",
        ));
    };
    let log = message_log(&ws.world(), &c_id, &m_id)?;
    decide(
        &log,
        action_id,
        "blocked_validation_required",
        Decision::Validation(approved.to_owned()),
    )?;
    Ok(Json(json!({ "success": true })))
}

/// `POST .../messages/{mId}/answer-question` with `{actionId, answer: {selectedOptions:
/// [int], customResponse?}}`.
pub(crate) async fn answer_question(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, c_id, m_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let root = Fields::of(&value, "")?;
    let action_id = root.req_str("actionId")?;
    let answer = Fields::of(root.required("answer")?, "answer")?;
    let selected = answer.req_array("selectedOptions")?;
    if !selected.iter().all(|v| v.as_u64().is_some()) {
        return Err(ApiError::invalid_body(
            "answer.selectedOptions",
            "Expected array of non-negative integers",
        ));
    }
    answer.opt_str("customResponse")?;
    let answer = root.required("answer")?.clone();
    let log = message_log(&ws.world(), &c_id, &m_id)?;
    decide(
        &log,
        action_id,
        "blocked_user_answer_required",
        Decision::Answer(answer),
    )?;
    Ok(Json(json!({ "success": true })))
}

fn check_mentions(world: &World, message: &NewMessage) -> ApiResult<()> {
    match message.mentions.iter().all(|id| world.agent(id).is_some()) {
        true => Ok(()),
        false => Err(agent_not_found()),
    }
}

/// A user message just added, and the runs it starts.
struct Posted {
    user_message: UserMsg,
    jobs: Vec<Job>,
}

/// Appends the user message and one agent message per mention (the caller checked the
/// mentions); `None` when the conversation does not exist.
fn add_message(
    world: &mut World,
    c_id: &str,
    message: NewMessage,
    skip_tools_validation: bool,
) -> Option<Posted> {
    let now = now_ms();
    let user_id = world.next_id();
    let mut agent_messages = Vec::new();
    for agent_id in &message.mentions {
        let (id, agent_message_id) = (world.next_id(), world.next_id());
        agent_messages.push((id, agent_message_id, agent_id.clone()));
    }
    let agents: Vec<_> = message
        .mentions
        .iter()
        .filter_map(|id| world.agent(id).cloned())
        .collect();
    let mut jobs = Vec::new();
    let mut logs = Vec::new();
    let conversation = world.conversations.get_mut(c_id)?;
    let user_message = UserMsg {
        id: user_id,
        s_id: random_s_id(),
        created: now,
        rank: conversation.slots.len(),
        content: message.content.clone(),
        mentions: message.mentions.clone(),
        context: message.context,
    };
    conversation.slots.push(Slot::User(user_message.clone()));
    for ((id, agent_message_id, agent_id), agent) in agent_messages.into_iter().zip(agents) {
        let s_id = random_s_id();
        conversation.slots.push(Slot::Agent(AgentMsg {
            id,
            agent_message_id,
            s_id: s_id.clone(),
            created: now,
            rank: conversation.slots.len(),
            parent_message_id: user_message.s_id.clone(),
            agent_id,
            status: AgentStatus::Created,
            content: None,
            chain_of_thought: None,
            error: None,
            actions: Vec::new(),
        }));
        let log = Arc::new(MessageLog::new());
        logs.push((s_id.clone(), Arc::clone(&log)));
        jobs.push(Job {
            conversation_id: c_id.to_owned(),
            message_id: s_id,
            agent_message_id,
            agent,
            question: message.content.clone(),
            log,
            skip_tools_validation,
        });
    }
    conversation.updated = now;
    world.message_logs.extend(logs);
    Some(Posted { user_message, jobs })
}

/// Starts the runs; in blocking mode waits for all of them (capped, and cut by shutdown).
async fn run_and_wait(state: &AppState, ws: &Arc<Workspace>, posted: Posted, blocking: bool) {
    let logs: Vec<Arc<MessageLog>> = posted.jobs.iter().map(|j| Arc::clone(&j.log)).collect();
    for job in posted.jobs {
        runner::spawn(state, ws, job);
    }
    if blocking {
        let all = futures::future::join_all(logs.iter().map(|l| l.wait_done(BLOCKING_WAIT_CAP)));
        tokio::select! {
            _ = all => {}
            () = state.shutdown.cancelled() => {}
        }
    }
}
