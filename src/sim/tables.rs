//! Tables of folder data sources: list, get, rows (list, upsert, delete one).
//!
//! Shapes are the SDK's (`CoreAPITablePublicSchema`, `ListTableRowsResponseSchema`,
//! `UpsertTableRowsResponseSchema`). The schema of a table is inferred from its rows as Dust's
//! core does: `int` for whole numbers, `float` for others, `text`, `bool`, `datetime` for
//! `{type: "datetime", epoch}`; a column whose cells mix `int` and `float` is `float`, any other
//! mix is `text`; a column that is `null` everywhere has no type and is left out. Rows are
//! upserted by `row_id` (a row replaces the row with the same id); `truncate: true` first
//! empties the table. A managed (connector) data source answers 403 `data_source_auth_error`
//! on writes; an unknown table or row 404 `table_not_found`. Tables are created only by the
//! seed: `POST .../tables` and CSV imports are not simulated.

use std::sync::Arc;

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery},
    http::StatusCode,
};
use serde_json::{Map, Value, json};

use super::{
    data_sources::{data_source_not_found, find_data_source, space_not_found},
    error::{ApiError, ApiResult, Fields, kind_name, parse_json},
    now_ms,
    query::Query,
    state::Workspace,
    world::{DataSource, Table},
};

/// Default page size of `GET .../rows` (Dust's route).
const DEFAULT_ROWS_LIMIT: usize = 10;

type TablePath = Path<(String, String, String, String)>;

/// Rows of an upsert body: `(row_id, cells)`.
type Rows = Vec<(String, Map<String, Value>)>;

/// A column's type, from one cell; `None` for `null`.
fn cell_type(cell: &Value) -> Option<&'static str> {
    match cell {
        Value::Null => None,
        Value::Bool(_) => Some("bool"),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some("int"),
        Value::Number(_) => Some("float"),
        Value::Object(_) => Some("datetime"),
        _ => Some("text"),
    }
}

/// The schema inferred from the rows, columns in the order first seen (rows by id).
fn schema(table: &Table) -> Value {
    let mut columns: Vec<(String, Option<&'static str>)> = Vec::new();
    for row in table.rows.values() {
        for (name, cell) in row {
            let found = cell_type(cell);
            match columns.iter_mut().find(|(n, _)| n == name) {
                None => columns.push((name.clone(), found)),
                Some((_, known)) => {
                    *known = match (*known, found) {
                        (k, None) => k,
                        (None, f) => f,
                        (Some(k), Some(f)) if k == f => Some(k),
                        (Some("int" | "float"), Some("int" | "float")) => Some("float"),
                        _ => Some("text"),
                    };
                }
            }
        }
    }
    Value::Array(
        columns
            .into_iter()
            .filter_map(|(name, kind)| {
                kind.map(|k| json!({ "name": name, "value_type": k, "possible_values": null }))
            })
            .collect(),
    )
}

/// The public table JSON (`CoreAPITablePublicSchema`).
fn table_json(table: &Table) -> Value {
    json!({
        "table_id": table.table_id,
        "name": table.name,
        "title": table.title,
        "description": table.description,
        "schema": if table.rows.is_empty() { Value::Null } else { schema(table) },
        "timestamp": table.timestamp,
        "tags": table.tags,
        "parents": [table.table_id],
        "parent_id": null,
        "mime_type": table.mime_type,
    })
}

fn table_not_found() -> ApiError {
    ApiError::not_found("table_not_found", "The table you requested was not found.")
}

fn find_table<'d>(ds: &'d DataSource, table_id: &str) -> ApiResult<&'d Table> {
    ds.tables.get(table_id).ok_or_else(table_not_found)
}

/// The folder `ds_id` of `space_id` for a write: Dust's 404s, then 403 for a connector.
fn writable<'w>(
    world: &'w mut super::world::World,
    space_id: &str,
    ds_id: &str,
) -> ApiResult<&'w mut DataSource> {
    world.space(space_id).ok_or_else(space_not_found)?;
    let ds = world
        .data_source_mut(space_id, ds_id)
        .ok_or_else(data_source_not_found)?;
    if ds.connector_provider.is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "data_source_auth_error",
            "You cannot upsert rows on a managed data source.",
        ));
    }
    Ok(ds)
}

/// `GET .../tables`.
pub(crate) async fn list_tables(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let tables: Vec<Value> = ds.tables.values().map(table_json).collect();
    Ok(Json(json!({ "tables": tables })))
}

/// `GET .../tables/{tId}`.
pub(crate) async fn get_table(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, table_id)): TablePath,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let table = find_table(ds, &table_id)?;
    Ok(Json(json!({ "table": table_json(table) })))
}

/// `GET .../tables/{tId}/rows?limit&offset`.
pub(crate) async fn list_rows(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, table_id)): TablePath,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let query = Query::parse(raw.as_deref());
    let number = |key: &str, default: usize| -> ApiResult<usize> {
        query.first(key).map_or(Ok(default), |v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::invalid_query(key, "Expected number, received nan"))
        })
    };
    let (limit, offset) = (number("limit", DEFAULT_ROWS_LIMIT)?, number("offset", 0)?);
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let table = find_table(ds, &table_id)?;
    let rows: Vec<Value> = table
        .rows
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, value)| json!({ "row_id": id, "value": value }))
        .collect();
    Ok(Json(json!({
        "rows": rows,
        "offset": offset,
        "limit": limit,
        "total": table.rows.len(),
    })))
}

/// One cell as `UpsertTableRowsRequestSchema` takes it.
fn check_cell(path: &str, cell: &Value) -> ApiResult<()> {
    match cell {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => Ok(()),
        Value::Object(_) => {
            let fields = Fields::of(cell, path)?;
            if fields.req_str("type")? != "datetime" {
                return Err(ApiError::invalid_body(
                    &fields.path_of("type"),
                    "Invalid literal value, expected \"datetime\"",
                ));
            }
            match fields.required("epoch")? {
                Value::Number(_) => Ok(()),
                other => Err(ApiError::invalid_body(
                    &fields.path_of("epoch"),
                    &format!("Expected number, received {}", kind_name(other)),
                )),
            }
        }
        Value::Array(_) => Err(ApiError::invalid_body(path, "Invalid input")),
    }
}

/// The rows of an upsert body, checked against `UpsertTableRowsRequestSchema`.
fn parse_rows(body: &Value) -> ApiResult<(Rows, bool)> {
    let fields = Fields::of(body, "")?;
    let truncate = fields.opt_bool("truncate")?.unwrap_or(false);
    let mut rows = Vec::new();
    for (i, item) in fields.req_array("rows")?.iter().enumerate() {
        let path = format!("rows.{i}");
        let row = Fields::of(item, &path)?;
        let row_id = row.req_str("row_id")?.to_owned();
        let value_path = row.path_of("value");
        let value = match row.required("value")? {
            Value::Object(map) => map.clone(),
            other => {
                return Err(ApiError::invalid_body(
                    &value_path,
                    &format!("Expected object, received {}", kind_name(other)),
                ));
            }
        };
        for (column, cell) in &value {
            check_cell(&format!("{value_path}.{column}"), cell)?;
        }
        rows.push((row_id, value));
    }
    Ok((rows, truncate))
}

/// `POST .../tables/{tId}/rows` `{rows, truncate?}` → `{table: {name, table_id, description,
/// schema}}`.
pub(crate) async fn upsert_rows(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, table_id)): TablePath,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let value = parse_json(&body)?;
    let mut world = ws.world();
    let ds = writable(&mut world, &space_id, &ds_id)?;
    let (rows, truncate) = parse_rows(&value)?;
    let table = ds.tables.get_mut(&table_id).ok_or_else(table_not_found)?;
    if truncate {
        table.rows.clear();
    }
    table.rows.extend(rows);
    table.timestamp = now_ms();
    let table = &*table;
    Ok(Json(json!({
        "table": {
            "name": table.name,
            "table_id": table.table_id,
            "description": table.description,
            "schema": schema(table),
        }
    })))
}

/// `DELETE .../tables/{tId}/rows/{rId}` → `{success: true}`.
pub(crate) async fn delete_row(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id, table_id, row_id)): Path<(
        String,
        String,
        String,
        String,
        String,
    )>,
) -> ApiResult<Json<Value>> {
    let mut world = ws.world();
    let ds = writable(&mut world, &space_id, &ds_id)?;
    let table = ds.tables.get_mut(&table_id).ok_or_else(table_not_found)?;
    if table.rows.remove(&row_id).is_none() {
        return Err(ApiError::not_found(
            "table_not_found",
            "The row you requested was not found.",
        ));
    }
    Ok(Json(json!({ "success": true })))
}
