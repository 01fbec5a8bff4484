//! Agent configurations: `GET /assistant/agent_configurations[/{sId}|/search]`.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Path, RawQuery},
};
use serde_json::{Value, json};

use super::{
    error::{ApiError, ApiResult},
    query::Query,
    state::Workspace,
    world::Agent,
};

/// `versionCreatedAt` of every seeded agent.
const AGENT_VERSION_CREATED_AT: &str = "2025-11-01T00:00:00.000Z";

/// The `LightAgentConfiguration` JSON of an agent.
pub(crate) fn agent_json(agent: &Agent) -> Value {
    json!({
        "id": agent.id,
        "sId": agent.s_id,
        "version": 1,
        "versionCreatedAt": AGENT_VERSION_CREATED_AT,
        "versionAuthorId": null,
        "name": agent.name,
        "description": agent.description,
        "instructions": agent.instructions,
        "pictureUrl": format!("https://dust.tt/static/systemavatar/{}.png", agent.name.to_lowercase()),
        "status": "active",
        "scope": agent.scope,
        "userFavorite": false,
        "model": {
            "providerId": agent.model_provider,
            "modelId": agent.model_id,
            "temperature": 0.7,
        },
        "maxStepsPerRun": 8,
        "templateId": null,
        "visualizationEnabled": false,
        "groupIds": [],
        "requestedGroupIds": [],
        "requestedSpaceIds": [],
    })
}

/// `GET /assistant/agent_configurations?view=`.
pub(crate) async fn list_agents(
    Extension(ws): Extension<Arc<Workspace>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    if let Some(view @ ("list" | "favorites")) = query.first("view") {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            format!("The user must be authenticated with oAuth to retrieve {view} agents."),
        ));
    }
    let world = ws.world();
    let agents: Vec<Value> = world
        .agents
        .iter()
        .filter(|a| match query.first("view") {
            Some("global") => a.scope == "global",
            Some("workspace" | "published") => a.scope != "global",
            _ => true,
        })
        .map(agent_json)
        .collect();
    Ok(Json(json!({ "agentConfigurations": agents })))
}

/// `GET /assistant/agent_configurations/{sId}`.
pub(crate) async fn get_agent(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, s_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let agent = world.agent(&s_id).ok_or_else(agent_not_found)?;
    Ok(Json(json!({ "agentConfiguration": agent_json(agent) })))
}

/// `GET /assistant/agent_configurations/search?q=`: case-insensitive name search.
pub(crate) async fn search_agents(
    Extension(ws): Extension<Arc<Workspace>>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let Some(q) = query.first("q") else {
        return Err(ApiError::invalid_query("q", "Required"));
    };
    let needle = q.to_lowercase();
    let world = ws.world();
    let agents: Vec<Value> = world
        .agents
        .iter()
        .filter(|a| a.name.to_lowercase().contains(&needle))
        .map(agent_json)
        .collect();
    Ok(Json(json!({ "agentConfigurations": agents })))
}

pub(crate) fn agent_not_found() -> ApiError {
    ApiError::not_found(
        "agent_configuration_not_found",
        "The agent configuration you requested was not found.",
    )
}
