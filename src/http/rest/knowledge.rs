//! Knowledge bases (Dust data sources), their search, and the connector-fed ones.

use axum::{
    Json,
    extract::{Path, Query, Request, State, rejection::PathRejection, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Call, Caller, Refusal, bad_path, bad_query};
use crate::{
    auth::Permission,
    http::{MAX_REST_BODY, read_json},
    mcp::{
        service::{self, SearchKnowledgeArgs, ServiceError},
        views::KnowledgeBaseView,
    },
    state::AppState,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct KnowledgeBaseQuery {
    /// Only the knowledge bases of this space (`vlt_...`).
    pub space_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct KnowledgeBaseList {
    pub knowledge_bases: Vec<KnowledgeBaseView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ConnectorList {
    /// Knowledge bases fed by a connector (Notion, Slack, ...).
    pub connectors: Vec<KnowledgeBaseView>,
}

/// A semantic search in one knowledge base.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SearchRequest {
    /// What to look for, in natural language; sent as is.
    pub query: String,
    /// How many results (1 to 64, default 8).
    #[schema(minimum = 1, maximum = 64)]
    pub top_k: Option<u32>,
}

/// One search result: a document and its best passages.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct SearchResult {
    pub document_id: String,
    pub knowledge_base_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_url: Option<String>,
    /// The best passage's relevance, higher is better.
    pub score: f64,
    /// The matching passages, best first, joined by blank lines.
    pub text: String,
    /// The matching passages, best first.
    pub chunks: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(super) struct SearchResponse {
    pub results: Vec<SearchResult>,
}

/// The caller's knowledge bases, optionally in one space.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/knowledge-bases",
    tag = "knowledge-bases",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"), KnowledgeBaseQuery),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Knowledge bases", body = KnowledgeBaseList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<KnowledgeBaseQuery>, QueryRejection>,
) -> Result<Json<KnowledgeBaseList>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let Query(query) = query.map_err(|e| bad_query(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "list_knowledge_bases",
        Permission::ReadKnowledgeBases,
        Some(&workspace_id),
        true,
    )?;
    let result = async {
        if let Some(space_id) = &query.space_id {
            service::check_id("spaceId", space_id)?;
        }
        service::knowledge_base_views(
            &call.ctx,
            call.principal(),
            "listing knowledge bases",
            |kb| query.space_id.as_ref().is_none_or(|s| &kb.space.s_id == s),
        )
        .await
    }
    .await;
    call.finish(result, None)
        .map(|knowledge_bases| Json(KnowledgeBaseList { knowledge_bases }))
}

/// One knowledge base.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}",
    tag = "knowledge-bases",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The data source id (`dts_...`)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The knowledge base", body = KnowledgeBaseView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<KnowledgeBaseView>, Refusal> {
    let Path((workspace_id, id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "get_knowledge_base",
        Permission::ReadKnowledgeBases,
        Some(&workspace_id),
        true,
    )?;
    let result = service::find_knowledge_base(&call.ctx, call.principal(), &id)
        .await
        .map(|kb| kb.to_view());
    call.finish(result, Some(("knowledgeBaseId", &id)))
        .map(Json)
}

/// Semantic search in one knowledge base, best results first.
#[utoipa::path(post,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/search",
    tag = "knowledge-bases",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The data source id (`dts_...`)")),
    request_body = SearchRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Results", body = SearchResponse)))]
pub(super) async fn search(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Result<Json<SearchResponse>, Refusal> {
    let Path((workspace_id, id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "search_knowledge",
        Permission::ReadKnowledgeBases,
        Some(&workspace_id),
        true,
    )?;
    let body: SearchRequest = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    service::note_suspicious(
        &call.ctx,
        call.principal(),
        &call.caller.info,
        call.name,
        "query",
        &body.query,
    );
    let args = SearchKnowledgeArgs {
        query: body.query,
        knowledge_base_id: Some(id.clone()),
        top_k: body.top_k,
        tags_in: None,
        tags_not: None,
        timestamp_gt: None,
        timestamp_lt: None,
    };
    let result = service::search_results(&call.ctx, call.principal(), args)
        .await
        .map(|found| SearchResponse {
            results: found
                .results
                .into_iter()
                .map(|hit| SearchResult {
                    text: hit.chunks.join("\n\n"),
                    document_id: hit.document_id,
                    knowledge_base_id: hit.knowledge_base_id,
                    title: hit.title,
                    source_url: hit.source_url,
                    score: hit.score,
                    chunks: hit.chunks,
                    tags: hit.tags,
                })
                .collect(),
        });
    call.finish(result, Some(("knowledgeBaseId", &id)))
        .map(Json)
}

async fn connector_views(call: &Call) -> Result<Vec<KnowledgeBaseView>, ServiceError> {
    service::knowledge_base_views(&call.ctx, call.principal(), "listing connectors", |kb| {
        kb.source.connector_provider.is_some()
    })
    .await
}

/// Knowledge bases fed by a connector, with their provider.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/connectors", tag = "connectors",
    params(("workspaceId" = String, Path, description = "The caller's workspace id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Connectors", body = ConnectorList)))]
pub(super) async fn connectors(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ConnectorList>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "list_connectors",
        Permission::ReadConnectors,
        Some(&workspace_id),
        true,
    )?;
    let result = connector_views(&call).await;
    call.finish(result, None)
        .map(|connectors| Json(ConnectorList { connectors }))
}

/// One connector-fed knowledge base, by its knowledge base id or its connector id.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspaceId}/connectors/{connectorId}",
    tag = "connectors",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("connectorId" = String, Path, description = "The knowledge base id (`dts_...`) or the connector id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The connector", body = KnowledgeBaseView)))]
pub(super) async fn connector(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<KnowledgeBaseView>, Refusal> {
    let Path((workspace_id, id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        "get_connector",
        Permission::ReadConnectors,
        Some(&workspace_id),
        true,
    )?;
    let result = async {
        service::check_id("connectorId", &id)?;
        connector_views(&call)
            .await?
            .into_iter()
            .find(|c| c.id == id || c.connector_id.as_deref() == Some(id.as_str()))
            .ok_or_else(|| ServiceError::NotFound(format!("connector {id} not found")))
    }
    .await;
    call.finish(result, Some(("connectorId", &id))).map(Json)
}
