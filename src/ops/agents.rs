//! Agents: the caller's list (cached per principal for `AGENT_CACHE_TTL`) and one agent's
//! configuration.

use std::sync::Arc;

use super::{
    Context, OpError,
    args::{AgentIdArgs, ListAgentsArgs, MAX_ID_LEN, check_id},
    catalog::{Kind, Op, op},
    views::{AgentList, AgentView},
};
use crate::{
    auth::{Permission, Principal},
    dust::{AgentConfiguration, DustError},
};

pub const LIST_AGENTS: Op = op("list_agents", Permission::ReadAgents, true, Kind::Read);
pub const GET_AGENT: Op = op("get_agent", Permission::ReadAgents, true, Kind::Read);

/// The principal's agents: from [`Context::agents`] when listed less than `AGENT_CACHE_TTL`
/// ago, else from Dust (and then kept).
pub async fn agents(
    ctx: &Context,
    principal: &Principal,
) -> Result<Arc<Vec<AgentConfiguration>>, DustError> {
    if let Some(agents) = ctx.agents.get(&principal.user_id) {
        return Ok(agents);
    }
    let agents = Arc::new(ctx.dust.list_agents(&principal.credentials).await?);
    ctx.agents.put(&principal.user_id, agents.clone());
    Ok(agents)
}

/// Agents matching `query` (case-insensitive, in name or description), or all.
pub fn filter_agents<'a>(
    agents: &'a [AgentConfiguration],
    query: Option<&str>,
) -> impl Iterator<Item = &'a AgentConfiguration> {
    let needle = query
        .map(str::to_lowercase)
        .filter(|q| !q.trim().is_empty());
    agents.iter().filter(move |a| match &needle {
        Some(q) => a.name.to_lowercase().contains(q) || a.description.to_lowercase().contains(q),
        None => true,
    })
}

/// Agents matching `query` (case-insensitive, in name or description), active ones only.
pub async fn list_agents(
    ctx: &Context,
    principal: &Principal,
    args: ListAgentsArgs,
) -> Result<AgentList, OpError> {
    let query = args.query.as_deref();
    if let Some(q) = query
        && q.len() > MAX_ID_LEN
    {
        return Err(OpError::Invalid(format!(
            "query must be at most {MAX_ID_LEN} bytes"
        )));
    }
    let agents = agents(ctx, principal)
        .await
        .map_err(|e| OpError::dust("listing agents", e))?;
    let agents = filter_agents(&agents, query)
        .filter(|a| a.status.is_empty() || a.status == "active")
        .map(AgentView::summary)
        .collect();
    Ok(AgentList { agents })
}

/// One agent's configuration, instructions included.
pub async fn get_agent(
    ctx: &Context,
    principal: &Principal,
    args: AgentIdArgs,
) -> Result<AgentView, OpError> {
    check_id("agentId", &args.agent_id)?;
    ctx.dust
        .get_agent(&principal.credentials, &args.agent_id)
        .await
        .map(|agent| AgentView::full(&agent))
        .map_err(|e| OpError::dust(format!("reading agent {}", args.agent_id), e))
}
