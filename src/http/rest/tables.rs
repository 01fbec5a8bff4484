//! Tables of folder knowledge bases and their rows: the REST mirror of `list_tables`,
//! `get_table`, `list_table_rows`, `upsert_table_rows` and `delete_table_row`.

use axum::{
    Json,
    extract::{Path, Query, Request, State, rejection::PathRejection, rejection::QueryRejection},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Call, Caller, Refusal, bad_path, bad_query};
use crate::{
    http::{MAX_REST_BODY, read_json},
    ops::{
        args::{
            ListTableRowsArgs, ListTablesArgs, TableArgs, TableRowArg, TableRowIdArgs,
            UpsertTableRowsArgs,
        },
        tables,
        views::{DeletedRow, TableList, TableRowList, TableView, UpsertedRows},
    },
    state::AppState,
};

/// This noun's routes.
pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get_one))
        .routes(routes!(rows, upsert_rows))
        .routes(routes!(delete_row))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(super) struct RowsQuery {
    /// How many rows (1 to 100, default 10).
    pub limit: Option<u32>,
    /// How many to skip, for paging (default 0).
    pub offset: Option<u32>,
}

/// The rows to create or replace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpsertRowsRequest {
    /// 1 to 500 rows; a row replaces the row with the same `rowId`, other rows are kept.
    pub rows: Vec<TableRowArg>,
}

/// The tables of a folder knowledge base, with their columns.
#[utoipa::path(get,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables",
    tag = "tables",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The folder's data source id (`dts_...`)")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Tables", body = TableList)))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<TableList>, Refusal> {
    let Path((workspace_id, id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &tables::LIST_TABLES, Some(&workspace_id))?;
    let args = ListTablesArgs {
        knowledge_base_id: id.clone(),
    };
    let result = tables::list_tables(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("knowledgeBaseId", &id)))
        .map(Json)
}

/// One table and its columns.
#[utoipa::path(get,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}",
    tag = "tables",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The folder's data source id (`dts_...`)"),
        ("tableId" = String, Path, description = "The table's id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "The table", body = TableView)))]
pub(super) async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Json<TableView>, Refusal> {
    let Path((workspace_id, id, table_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(&state, caller, &tables::GET_TABLE, Some(&workspace_id))?;
    let args = TableArgs {
        knowledge_base_id: id,
        table_id: table_id.clone(),
    };
    let result = tables::get_table(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("tableId", &table_id))).map(Json)
}

/// One page of a table's rows.
#[utoipa::path(get,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}/rows",
    tag = "tables",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The folder's data source id (`dts_...`)"),
        ("tableId" = String, Path, description = "The table's id"), RowsQuery),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Rows", body = TableRowList)))]
pub(super) async fn rows(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<RowsQuery>, QueryRejection>,
) -> Result<Json<TableRowList>, Refusal> {
    let Path((workspace_id, id, table_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let Query(query) = query.map_err(|e| bad_query(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        &tables::LIST_TABLE_ROWS,
        Some(&workspace_id),
    )?;
    let args = ListTableRowsArgs {
        knowledge_base_id: id,
        table_id: table_id.clone(),
        limit: query.limit,
        offset: query.offset,
    };
    let result = tables::list_table_rows(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("tableId", &table_id))).map(Json)
}

/// Creates or replaces rows of a folder's table.
#[utoipa::path(post,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}/rows",
    tag = "tables",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The folder's data source id (`dts_...`)"),
        ("tableId" = String, Path, description = "The table's id")),
    request_body = UpsertRowsRequest,
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Rows written; the table's columns after them", body = UpsertedRows)))]
pub(super) async fn upsert_rows(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String, String)>, PathRejection>,
    request: Request,
) -> Result<Json<UpsertedRows>, Refusal> {
    let Path((workspace_id, id, table_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        &tables::UPSERT_TABLE_ROWS,
        Some(&workspace_id),
    )?;
    let body: UpsertRowsRequest = read_json(request, MAX_REST_BODY)
        .await
        .map_err(|e| call.invalid(e))?;
    let args = UpsertTableRowsArgs {
        knowledge_base_id: id,
        table_id: table_id.clone(),
        rows: body.rows,
    };
    let result = tables::upsert_table_rows(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("tableId", &table_id))).map(Json)
}

/// Deletes one row of a folder's table.
#[utoipa::path(delete,
    path = "/api/v1/workspaces/{workspaceId}/knowledge-bases/{knowledgeBaseId}/tables/{tableId}/rows/{rowId}",
    tag = "tables",
    params(("workspaceId" = String, Path, description = "The caller's workspace id"),
        ("knowledgeBaseId" = String, Path, description = "The folder's data source id (`dts_...`)"),
        ("tableId" = String, Path, description = "The table's id"),
        ("rowId" = String, Path, description = "The row's id")),
    security(("bearerAuth" = []), ("cookieAuth" = [])),
    responses((status = 200, description = "Deleted", body = DeletedRow)))]
pub(super) async fn delete_row(
    State(state): State<AppState>,
    caller: Caller,
    path: Result<Path<(String, String, String, String)>, PathRejection>,
) -> Result<Json<DeletedRow>, Refusal> {
    let Path((workspace_id, id, table_id, row_id)) = path.map_err(|e| bad_path(&caller, &e))?;
    let call = Call::begin(
        &state,
        caller,
        &tables::DELETE_TABLE_ROW,
        Some(&workspace_id),
    )?;
    let args = TableRowIdArgs {
        knowledge_base_id: id,
        table_id,
        row_id: row_id.clone(),
    };
    let result = tables::delete_table_row(&call.ctx, call.principal(), args).await;
    call.finish(result, Some(("rowId", &row_id))).map(Json)
}
