//! Spaces, data sources, data source views and search (`/spaces/...`).
//!
//! As in Dust, a space lists only the data sources it *owns* (folders here; the managed
//! connectors are owned by the admin-only system space, which ordinary keys never see), and
//! reaches everything else through its data source views: `GET .../data_source_views` lists them
//! with their data source, and a view search only finds documents under the view's `parentsIn`.
//!
//! Search reproduces Dust's query parsing, quirks included: `full_text` goes through
//! `z.coerce.boolean()`, so any non-empty value (`"false"` too) means true and only an absent
//! parameter means false; list parameters may be repeated.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Path, RawQuery},
};
use serde_json::{Value, json};

use super::{
    documents::document_json,
    error::{ApiError, ApiResult},
    query::Query,
    search,
    state::Workspace,
    world::{DataSource, DataSourceView, Document, Space, World},
};

pub(crate) fn space_json(space: &Space) -> Value {
    json!({
        "sId": space.s_id,
        "name": space.name,
        "kind": space.kind,
        "isRestricted": space.kind != "global",
        "groupIds": [],
        "createdAt": space.created_at,
        "updatedAt": space.created_at,
    })
}

pub(crate) fn data_source_json(ds: &DataSource) -> Value {
    json!({
        "id": ds.id,
        "sId": ds.s_id,
        "createdAt": ds.created_at,
        "name": ds.name,
        "description": ds.description,
        "assistantDefaultSelected": ds.connector_provider.is_some(),
        "dustAPIProjectId": format!("{}", ds.id * 7),
        "dustAPIDataSourceId": ds.s_id,
        "connectorId": ds.connector_id,
        "connectorProvider": ds.connector_provider,
        "editedByUser": null,
    })
}

/// A view (`DataSourceViewSchema`), with its data source inlined.
pub(crate) fn view_json(view: &DataSourceView, ds: &DataSource) -> Value {
    let category = match ds.connector_provider {
        None => "folder",
        Some("webcrawler") => "website",
        Some(_) => "managed",
    };
    json!({
        "id": view.id,
        "sId": view.s_id,
        "category": category,
        "kind": view.kind(),
        "parentsIn": view.parents_in,
        "spaceId": view.space_id,
        "createdAt": view.created_at,
        "updatedAt": view.created_at,
        "dataSource": data_source_json(ds),
        "editedByUser": null,
    })
}

pub(crate) fn space_not_found() -> ApiError {
    ApiError::not_found("space_not_found", "The space you requested was not found.")
}

pub(crate) fn data_source_not_found() -> ApiError {
    ApiError::not_found(
        "data_source_not_found",
        "The data source you requested was not found.",
    )
}

/// The data source `ds_id` of space `space_id`, or Dust's 404s.
pub(crate) fn find_data_source<'w>(
    world: &'w World,
    space_id: &str,
    ds_id: &str,
) -> ApiResult<&'w DataSource> {
    world.space(space_id).ok_or_else(space_not_found)?;
    world
        .data_source(space_id, ds_id)
        .ok_or_else(data_source_not_found)
}

/// `GET /spaces?kinds=`.
pub(crate) async fn list_spaces(
    Extension(ws): Extension<Arc<Workspace>>,
    RawQuery(raw): RawQuery,
) -> Json<Value> {
    let query = Query::parse(raw.as_deref());
    let kinds: Vec<String> = query
        .first("kinds")
        .map(|k| k.split(',').map(|s| s.trim().to_owned()).collect())
        .unwrap_or_default();
    let world = ws.world();
    let spaces: Vec<Value> = world
        .spaces
        .iter()
        .filter(|s| s.visible_to_keys())
        .filter(|s| kinds.is_empty() || kinds.iter().any(|k| k == s.kind))
        .map(space_json)
        .collect();
    Json(json!({ "spaces": spaces }))
}

/// `GET /spaces/{spaceId}/data_sources`.
pub(crate) async fn list_data_sources(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    world.space(&space_id).ok_or_else(space_not_found)?;
    let data_sources: Vec<Value> = world
        .data_sources
        .iter()
        .filter(|d| d.space_id == space_id)
        .map(data_source_json)
        .collect();
    Ok(Json(json!({ "data_sources": data_sources })))
}

/// Parsed search parameters (`DataSourceSearchQuerySchema`).
#[derive(Debug)]
struct SearchParams {
    query: String,
    top_k: usize,
    full_text: bool,
    tags_in: Vec<String>,
    tags_not: Vec<String>,
    timestamp_gt: Option<i64>,
    timestamp_lt: Option<i64>,
}

fn parse_search(raw: Option<&str>) -> ApiResult<SearchParams> {
    let q = Query::parse(raw);
    let query = q
        .first("query")
        .ok_or_else(|| ApiError::invalid_query("query", "Required"))?;
    let top_k = q
        .first("top_k")
        .ok_or_else(|| ApiError::invalid_query("top_k", "Required"))?;
    let top_k = top_k
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| ApiError::invalid_query("top_k", "Expected number, received nan"))?;
    let timestamp = |key: &str| -> ApiResult<Option<i64>> {
        q.first(key)
            .map(|v| {
                v.trim()
                    .parse::<i64>()
                    .map_err(|_| ApiError::invalid_query(key, "Expected number, received nan"))
            })
            .transpose()
    };
    Ok(SearchParams {
        query: query.to_owned(),
        top_k: top_k as usize,
        // z.coerce.boolean(): Boolean("false") is true; only "" and absent are false.
        full_text: q.first("full_text").is_some_and(|v| !v.is_empty()),
        tags_in: q.all("tags_in"),
        tags_not: q.all("tags_not"),
        timestamp_gt: timestamp("timestamp_gt")?,
        timestamp_lt: timestamp("timestamp_lt")?,
    })
}

/// `GET /spaces/{spaceId}/data_source_views`.
pub(crate) async fn list_views(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    world.space(&space_id).ok_or_else(space_not_found)?;
    let views: Vec<Value> = world
        .views_of(&space_id)
        .filter_map(|v| Some(view_json(v, world.data_source_by_id(v.data_source_id)?)))
        .collect();
    Ok(Json(json!({ "dataSourceViews": views })))
}

/// The view `view_id` of space `space_id` and its data source, or Dust's 404s.
fn find_view<'w>(
    world: &'w World,
    space_id: &str,
    view_id: &str,
) -> ApiResult<(&'w DataSourceView, &'w DataSource)> {
    world.space(space_id).ok_or_else(space_not_found)?;
    let view = world
        .views
        .iter()
        .find(|v| v.space_id == space_id && v.s_id == view_id)
        .ok_or_else(view_not_found)?;
    let ds = world
        .data_source_by_id(view.data_source_id)
        .ok_or_else(view_not_found)?;
    Ok((view, ds))
}

fn view_not_found() -> ApiError {
    ApiError::not_found(
        "data_source_view_not_found",
        "The data source view you requested was not found.",
    )
}

/// `GET /spaces/{spaceId}/data_source_views/{dsvId}`: `{"dataSourceView": ...}` (the SDK's
/// shape; Dust's OpenAPI shows the bare view).
pub(crate) async fn get_view(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, view_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let (view, ds) = find_view(&world, &space_id, &view_id)?;
    Ok(Json(json!({ "dataSourceView": view_json(view, ds) })))
}

/// `GET /spaces/{spaceId}/data_source_views/{dsvId}/search`: the data source search restricted
/// to the documents under the view's `parentsIn`.
pub(crate) async fn search_view(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, view_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let (view, ds) = find_view(&world, &space_id, &view_id)?;
    let params = parse_search(raw.as_deref())?;
    Ok(Json(search_documents(ds, &params, |d| view.covers(d))))
}

/// `GET /spaces/{spaceId}/data_sources/{dsId}/search`.
pub(crate) async fn search_data_source(
    Extension(ws): Extension<Arc<Workspace>>,
    Path((_w_id, space_id, ds_id)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    let world = ws.world();
    let ds = find_data_source(&world, &space_id, &ds_id)?;
    let params = parse_search(raw.as_deref())?;
    Ok(Json(search_documents(ds, &params, |_| true)))
}

/// `{"documents": [...]}`: the best chunks of the documents of `ds` that pass `reachable` and
/// the filters, grouped by document.
fn search_documents(
    ds: &DataSource,
    params: &SearchParams,
    reachable: impl Fn(&Document) -> bool,
) -> Value {
    let candidates = ds.documents.values().filter(|d| {
        reachable(d)
            && (params.tags_in.is_empty() || d.tags.iter().any(|t| params.tags_in.contains(t)))
            && !d.tags.iter().any(|t| params.tags_not.contains(t))
            && params.timestamp_gt.is_none_or(|gt| d.timestamp > gt)
            && params.timestamp_lt.is_none_or(|lt| d.timestamp < lt)
    });
    let hits = search::search(
        candidates.map(|d| (ds.s_id, d)),
        &params.query,
        params.top_k,
    );
    // Group the chunks by document, in the order of each document's best chunk.
    let mut documents: Vec<(String, Vec<Value>)> = Vec::new();
    for hit in hits {
        let chunk = json!({
            "text": hit.chunk.text,
            "hash": format!("{:016x}", fnv(&hit.chunk.text)),
            "offset": hit.chunk.offset,
            "vector": null,
            "score": hit.score,
        });
        match documents.iter_mut().find(|(id, _)| *id == hit.document_id) {
            Some((_, chunks)) => chunks.push(chunk),
            None => documents.push((hit.document_id, vec![chunk])),
        }
    }
    let documents: Vec<Value> = documents
        .into_iter()
        .filter_map(|(id, chunks)| {
            let doc = ds.documents.get(&id)?;
            let mut value = document_json(ds, doc, params.full_text);
            value["chunks"] = Value::Array(chunks);
            Some(value)
        })
        .collect();
    json!({ "documents": documents })
}

/// FNV-1a, for stable content hashes without a crypto dependency on the request path.
pub(crate) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
