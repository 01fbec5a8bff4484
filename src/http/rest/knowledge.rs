//! Knowledge bases (Dust data sources), their search, and the connector-fed ones.

use axum::{
    Json,
    extract::{Path, Query, Request, State, rejection::PathRejection, rejection::QueryRejection},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, Refusal, bad_path, bad_query};
use crate::{
    http::{MAX_REST_BODY, read_json},
    ops::{
        args::{ListKnowledgeBasesArgs, SearchKnowledgeArgs, SearchWorkspaceArgs},
        knowledge,
        views::{ConnectorList, KnowledgeBaseList, KnowledgeBaseView, WorkspaceSearchResults},
    },
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(search))
        .routes(routes!(search_workspace))
        .routes(routes!(connectors))
        .routes(routes!(connector))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub(super) struct KnowledgeBaseQuery {
    /// Only the knowledge bases of this space (`vlt_...`).
    pub space_id: Option<String>,
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
        &knowledge::LIST_KNOWLEDGE_BASES,
        Some(&workspace_id),
    )?;
    let args = ListKnowledgeBasesArgs {
        space_id: query.space_id,
    };
    let result = knowledge::list_knowledge_bases(&call.ctx, call.principal(), args).await;
    call.finish(result, None).map(Json)
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
        &knowledge::GET_KNOWLEDGE_BASE,
        Some(&workspace_id),
    )?;
    let result = knowledge::get_knowledge_base(&call.ctx, call.principal(), &id).await;
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
        &knowledge::SEARCH_KNOWLEDGE,
        Some(&workspace_id),
    )?;
    let body: SearchRequest = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    call.op_call().note_suspicious("query", &body.query);
    let args = SearchKnowledgeArgs {
        query: body.query,
        knowledge_base_id: Some(id.clone()),
        top_k: body.top_k,
        tags_in: None,
        tags_not: None,
        timestamp_gt: None,
        timestamp_lt: None,
    };
    let result = knowledge::search_knowledge(&call.ctx, call.principal(), args)
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

/// Title search across every space the key sees: documents, tables and folders.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspaceId}/search", tag = "knowledge-bases",
    params(("workspaceId" = String, Path, description = "The caller's workspace id")),
    request_body = SearchWorkspaceArgs,
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Nodes whose title matches", body = WorkspaceSearchResults)))]
pub(super) async fn search_workspace(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<Json<WorkspaceSearchResults>, Refusal> {
    let Path(workspace_id) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        &knowledge::SEARCH_WORKSPACE,
        Some(&workspace_id),
    )?;
    let args: SearchWorkspaceArgs = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    call.op_call().note_suspicious("query", &args.query);
    let result = knowledge::search_workspace(&call.ctx, call.principal(), args).await;
    call.finish(result, None).map(Json)
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
        &knowledge::LIST_CONNECTORS,
        Some(&workspace_id),
    )?;
    let result = knowledge::list_connectors(&call.ctx, call.principal()).await;
    call.finish(result, None).map(Json)
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
        &knowledge::GET_CONNECTOR,
        Some(&workspace_id),
    )?;
    let result = knowledge::get_connector(&call.ctx, call.principal(), &id).await;
    call.finish(result, Some(("connectorId", &id))).map(Json)
}
