//! The Dust JSON of conversations and messages (`ConversationSchema`, `UserMessageSchema`,
//! `AgentMessageTypeSchema`, and `ContentFragmentSchema` through
//! [`super::fragments::fragment_json`]), rendered from the simulator's records.

use serde_json::{Value, json};

use super::{
    agents::agent_json,
    fragments::fragment_json,
    state::Workspace,
    world::{AgentMsg, Conversation, Slot, UserMsg, World},
};

pub(crate) fn user_message_json(m: &UserMsg) -> Value {
    json!({
        "id": m.id,
        "sId": m.s_id,
        "type": "user_message",
        "created": m.created,
        "visibility": "visible",
        "version": 0,
        "rank": m.rank,
        "user": null,
        "mentions": m.mentions.iter().map(|id| json!({ "configurationId": id })).collect::<Vec<_>>(),
        "content": m.content,
        "context": m.context,
        "agenticMessageData": null,
    })
}

pub(crate) fn agent_message_json(world: &World, m: &AgentMsg) -> Value {
    let configuration = world.agent(&m.agent_id).map(agent_json);
    let raw_contents = match &m.content {
        Some(text) => json!([{ "step": 0, "content": text }]),
        None => json!([]),
    };
    json!({
        "id": m.id,
        "agentMessageId": m.agent_message_id,
        "sId": m.s_id,
        "type": "agent_message",
        "created": m.created,
        "visibility": "visible",
        "version": 0,
        "rank": m.rank,
        "parentMessageId": m.parent_message_id,
        "parentAgentMessageId": null,
        "configuration": configuration,
        "status": m.status.as_str(),
        "actions": m.actions,
        "content": m.content,
        "chainOfThought": m.chain_of_thought,
        "rawContents": raw_contents,
        "error": m.error,
    })
}

pub(crate) fn conversation_json(
    ws: &Workspace,
    base_url: &str,
    world: &World,
    c: &Conversation,
) -> Value {
    let content: Vec<Value> = c
        .slots
        .iter()
        .map(|slot| match slot {
            Slot::User(m) => json!([user_message_json(m)]),
            Slot::Agent(m) => json!([agent_message_json(world, m)]),
            Slot::Fragment(f) => json!([fragment_json(f)]),
        })
        .collect();
    json!({
        "id": c.id,
        "sId": c.s_id,
        "created": c.created,
        "updated": c.updated,
        "unread": false,
        "actionRequired": false,
        "owner": {
            "id": 1,
            "sId": ws.id,
            "name": ws.name,
            "role": "user",
            "segmentation": null,
            "whiteListedProviders": null,
            "defaultEmbeddingProvider": null,
            "regionalModelsOnly": false,
            "ssoEnforced": false,
        },
        "title": c.title,
        "visibility": c.visibility,
        "groupIds": [],
        "requestedGroupIds": [],
        "requestedSpaceIds": [],
        "content": content,
        "url": format!("{base_url}/w/{}/conversation/{}", ws.id, c.s_id),
    })
}
