//! Prompts and argument completion.
//!
//! `consult_agent` turns "ask agent X about Y" into a ready instruction for the model, naming
//! the agent and its purpose. Building it reads the agent's configuration (name, description),
//! which is `read:agents`, and the instruction is to run the agent, which is `execute:agents`:
//! the prompt needs both, to be listed and to be got ([`NEEDS`]). A token with `execute:agents`
//! alone can still call `ask_agent`, but it learns nothing about an agent it may not read. Completion offers the caller's own agent ids (and knowledge base
//! and conversation ids for resource templates), matched by id or name prefix.

use rmcp::{
    ErrorData as McpError,
    model::{
        ArgumentInfo, CompleteRequestParams, CompleteResult, CompletionInfo,
        GetPromptRequestParams, GetPromptResult, Prompt, PromptArgument, PromptMessage, Reference,
        Role,
    },
};

use super::errors;
use crate::{
    auth::{Permission, Principal},
    ops::{
        Context, agents,
        args::{MAX_TEXT_BYTES, check_id, check_text},
        knowledge,
    },
};

const CONSULT_AGENT: &str = "consult_agent";

/// Most completion values returned (the MCP limit).
const MAX_COMPLETIONS: usize = 100;

/// What `consult_agent` needs: reading the agent (its description goes into the prompt) and
/// running it.
const NEEDS: [Permission; 2] = [Permission::ReadAgents, Permission::ExecuteAgents];

/// The first permission of [`NEEDS`] that `principal` lacks.
fn missing(principal: &Principal) -> Option<Permission> {
    NEEDS.into_iter().find(|p| !principal.can(*p))
}

/// The prompts `principal` may use: consulting an agent needs `read:agents` and
/// `execute:agents`.
pub(super) fn list(principal: &Principal) -> Vec<Prompt> {
    if missing(principal).is_some() {
        return Vec::new();
    }
    vec![
        Prompt::new(
            CONSULT_AGENT,
            Some("Ask one of the workspace's Dust agents a question and report its answer with sources."),
            Some(vec![
                PromptArgument::new("agentId")
                    .with_description("The agent to consult (completion lists your agents)")
                    .with_required(true),
                PromptArgument::new("question")
                    .with_description("The question for the agent")
                    .with_required(true),
            ]),
        )
        .with_title("Consult a Dust agent"),
    ]
}

fn argument(request: &GetPromptRequestParams, name: &str) -> Result<String, McpError> {
    request
        .arguments
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| errors::invalid_params(format!("prompt argument {name} is required")))
}

pub(super) async fn get(
    ctx: &Context,
    principal: &Principal,
    request: GetPromptRequestParams,
) -> Result<GetPromptResult, McpError> {
    if request.name != CONSULT_AGENT {
        return Err(errors::invalid_params(format!(
            "unknown prompt {:?}",
            request.name
        )));
    }
    if let Some(permission) = missing(principal) {
        return Err(errors::permission_denied(permission));
    }
    let agent_id = argument(&request, "agentId")?;
    let question = argument(&request, "question")?;
    check_id("agentId", &agent_id)?;
    check_text("question", &question, MAX_TEXT_BYTES)?;
    let about = match ctx.dust.get_agent(&principal.credentials, &agent_id).await {
        Ok(agent) if !agent.description.is_empty() => {
            format!("the Dust agent \"{}\" ({})", agent.name, agent.description)
        }
        Ok(agent) => format!("the Dust agent \"{}\"", agent.name),
        Err(e) => {
            return Err(errors::invalid_params(crate::ops::describe_dust_error(
                &format!("reading agent {agent_id}"),
                &e,
            )));
        }
    };
    let text = format!(
        "Use the ask_agent tool with agentId \"{agent_id}\" to ask {about} the question below. \
         Report its answer faithfully and cite the sources it names. If it cannot answer, say so.\n\n\
         Question:\n{question}"
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("Consult {about}")),
    )
}

fn prefix_matches(
    value: &str,
    candidates: impl IntoIterator<Item = (String, String)>,
) -> Vec<String> {
    let needle = value.to_lowercase();
    let mut out: Vec<String> = candidates
        .into_iter()
        .filter(|(id, name)| {
            id.to_lowercase().starts_with(&needle) || name.to_lowercase().starts_with(&needle)
        })
        .map(|(id, _)| id)
        .collect();
    out.sort();
    out.dedup();
    out
}

pub(super) async fn complete(
    ctx: &Context,
    principal: &Principal,
    request: CompleteRequestParams,
) -> Result<CompleteResult, McpError> {
    let ArgumentInfo { name, value, .. } = &request.argument;
    let wants = match (&request.r#ref, name.as_str()) {
        (Reference::Prompt(p), "agentId") if p.name == CONSULT_AGENT => {
            Some(Permission::ReadAgents)
        }
        (Reference::Resource(_), "agentId" | "conversationId") => Some(Permission::ReadAgents),
        (Reference::Resource(_), "knowledgeBaseId" | "documentId") => {
            Some(Permission::ReadKnowledgeBases)
        }
        (Reference::Resource(_), "connectorId") => Some(Permission::ReadConnectors),
        _ => None,
    };
    let values = match wants {
        Some(permission) if principal.can(permission) => match name.as_str() {
            "agentId" => match agents::agents(ctx, principal).await {
                Ok(agents) => prefix_matches(
                    value,
                    agents.iter().map(|a| (a.s_id.clone(), a.name.clone())),
                ),
                Err(_) => Vec::new(),
            },
            "knowledgeBaseId" | "connectorId" => {
                match knowledge::knowledge_bases(ctx, principal).await {
                    Ok(list) => prefix_matches(
                        value,
                        list.iter()
                            .filter(|kb| {
                                name != "connectorId" || kb.source.connector_provider.is_some()
                            })
                            .map(|kb| (kb.source.s_id.clone(), kb.source.name.clone())),
                    ),
                    Err(_) => Vec::new(),
                }
            }
            "conversationId" => ctx
                .conversations
                .list(&principal.workspace_id, &principal.user_id)
                .await
                .map(|records| {
                    prefix_matches(
                        value,
                        records
                            .into_iter()
                            .map(|r| (r.conversation_id, r.title.unwrap_or_default())),
                    )
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let total = values.len();
    let mut values = values;
    values.truncate(MAX_COMPLETIONS);
    let info = CompletionInfo::with_pagination(values, Some(total as u32), total > MAX_COMPLETIONS)
        .map_err(|e| McpError::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}
