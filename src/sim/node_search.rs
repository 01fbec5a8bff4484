//! `POST /search`: the workspace's node search (titles, not meaning), as Dust's
//! `front/lib/api/search.ts` (`handleSearch`) serves it to an API key.
//!
//! The body is checked against the SDK's `SearchRequestBodySchema` (the route parses with it):
//! `viewType`, `spaceIds`, `includeDataSources` and `limit` are all required, and exactly one of
//! `query` or `nodeIds`. A failure is a 400 `invalid_request_error` worded by
//! `zod-validation-error` (no "Invalid request body" prefix on this route). A space id the key
//! cannot see is a 404 `space_not_found` ("Invalid space ids."); only the listed spaces are
//! searched, so an empty `spaceIds` finds nothing.
//!
//! A node is found through the data source views of the searched spaces, as in Dust: a document
//! counts when a view of its data source covers it (`parentsIn`), and it carries its data
//! source and every view that reaches it. `includeDataSources` adds the data sources whose name
//! matches as `folder` nodes. The simulator has no tables, so `viewType: "table"` finds nothing.
//!
//! Dust's core matches the query against titles (or source URLs with `searchSourceUrls`); here
//! every word of the query must start a word of the title, case-insensitively. Dust takes the page
//! size from the URL's pagination parameters, not from the body's `limit` (UNCONFIRMED which
//! deployments); the simulator honours the body's `limit`, and `resultsCount` counts every match.

use std::sync::Arc;

use axum::{Extension, Json, body::Bytes};
use serde_json::{Value, json};

use super::{
    data_sources::{data_source_json, view_json},
    error::{ApiError, ApiResult, Fields, kind_name, parse_json},
    search::terms,
    state::Workspace,
    world::{DataSource, DataSourceView, Document, World},
};

/// Dust's node id for a data source itself (`DATA_SOURCE_NODE_ID`).
const DATA_SOURCE_NODE_ID: &str = "datasource_node_id";
/// Dust's mime type of a data source node.
const DATA_SOURCE_MIME_TYPE: &str = "application/vnd.dust.datasource";

/// What the body asks (`SearchRequestBodySchema`).
#[derive(Debug)]
struct SearchBody {
    view_type: ViewType,
    space_ids: Vec<String>,
    include_data_sources: bool,
    limit: usize,
    target: Target,
    search_source_urls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ViewType {
    All,
    Document,
    Table,
}

#[derive(Debug)]
enum Target {
    Query(String),
    NodeIds(Vec<String>),
}

/// 400 worded as `fromError(zodError).toString()`.
fn invalid(path: &str, problem: &str) -> ApiError {
    ApiError::invalid_request(format!("Validation error: {problem} at \"{path}\""))
}

fn parse_body(body: &[u8]) -> ApiResult<SearchBody> {
    parse_fields(body).map_err(ApiError::unprefixed)
}

fn parse_fields(body: &[u8]) -> ApiResult<SearchBody> {
    let value = parse_json(body)?;
    let fields = Fields::of(&value, "")?;
    let view_type = match fields.req_str("viewType")? {
        "all" => ViewType::All,
        "document" => ViewType::Document,
        "table" => ViewType::Table,
        other => {
            return Err(invalid(
                "viewType",
                &format!(
                    "Invalid enum value. Expected 'table' | 'document' | 'all', received '{other}'"
                ),
            ));
        }
    };
    fields.req_array("spaceIds")?;
    let space_ids = fields.opt_str_array("spaceIds")?;
    let include_data_sources = fields
        .opt_bool("includeDataSources")?
        .ok_or_else(|| invalid("includeDataSources", "Required"))?;
    let limit = match fields.required("limit")? {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        other => {
            return Err(invalid(
                "limit",
                &format!("Expected number, received {}", kind_name(other)),
            ));
        }
    };
    let search_source_urls = fields.opt_bool("searchSourceUrls")?.unwrap_or(false);
    let target = match (fields.get("query"), fields.get("nodeIds")) {
        (Some(_), Some(_)) => return Err(invalid("nodeIds", "Expected undefined, received array")),
        (Some(_), None) => Target::Query(fields.req_str("query")?.to_owned()),
        (None, Some(_)) => {
            fields.req_array("nodeIds")?;
            Target::NodeIds(fields.opt_str_array("nodeIds")?)
        }
        (None, None) => return Err(invalid("query", "Required")),
    };
    Ok(SearchBody {
        view_type,
        space_ids,
        include_data_sources,
        // A negative or fractional limit passes zod's `z.number()`; it finds nothing.
        limit: if limit.is_finite() && limit > 0.0 {
            limit as usize
        } else {
            0
        },
        target,
        search_source_urls,
    })
}

/// Whether every word of `query` starts a word of `text` (no word: everything matches, as
/// Dust's empty search).
fn title_matches(query: &str, text: &str) -> bool {
    let words = terms(text);
    terms(query)
        .iter()
        .all(|q| words.iter().any(|w| w.starts_with(q.as_str())))
}

/// `POST /search`.
pub(crate) async fn search_nodes(
    Extension(ws): Extension<Arc<Workspace>>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let body = parse_body(&body)?;
    let world = ws.world();
    if body.space_ids.iter().any(|id| world.space(id).is_none()) {
        return Err(ApiError::not_found("space_not_found", "Invalid space ids."));
    }
    let views: Vec<&DataSourceView> = world
        .views
        .iter()
        .filter(|v| body.space_ids.iter().any(|s| s == v.space_id))
        .collect();
    let mut nodes = Vec::new();
    for ds in &world.data_sources {
        let reaching: Vec<&DataSourceView> = views
            .iter()
            .copied()
            .filter(|v| v.data_source_id == ds.s_id)
            .collect();
        if reaching.is_empty() {
            continue;
        }
        if body.include_data_sources && data_source_wanted(&body, ds) {
            nodes.push(data_source_node(&world, ds, &reaching));
        }
        if body.view_type == ViewType::Table {
            continue;
        }
        for doc in ds.documents.values().filter(|d| document_wanted(&body, d)) {
            let covering: Vec<&DataSourceView> =
                reaching.iter().copied().filter(|v| v.covers(doc)).collect();
            if !covering.is_empty() {
                nodes.push(document_node(&world, ds, doc, &covering, body.view_type));
            }
        }
    }
    // Stable order for tests: by title, then data source, then node id.
    nodes.sort_by_cached_key(|n| {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        (
            text(&n["title"]).to_lowercase(),
            text(&n["dataSource"]["sId"]),
            text(&n["internalId"]),
        )
    });
    let count = nodes.len();
    nodes.truncate(body.limit);
    Ok(Json(json!({
        "nodes": nodes,
        "warningCode": null,
        "nextPageCursor": null,
        "resultsCount": count,
    })))
}

fn data_source_wanted(body: &SearchBody, ds: &DataSource) -> bool {
    match &body.target {
        Target::Query(q) => !body.search_source_urls && title_matches(q, ds.name),
        Target::NodeIds(ids) => ids.iter().any(|id| id == DATA_SOURCE_NODE_ID),
    }
}

fn document_wanted(body: &SearchBody, doc: &Document) -> bool {
    match &body.target {
        Target::Query(q) if body.search_source_urls => doc
            .source_url
            .as_deref()
            .is_some_and(|url| url.contains(q.trim())),
        Target::Query(q) => title_matches(q, &doc.title),
        Target::NodeIds(ids) => ids.contains(&doc.document_id),
    }
}

/// The views of `reaching`, each with its data source.
fn views_json(world: &World, reaching: &[&DataSourceView]) -> Vec<Value> {
    reaching
        .iter()
        .filter_map(|v| Some(view_json(v, world.data_source_by_id(v.data_source_id)?)))
        .collect()
}

/// A document as a content node (`getContentNodeFromCoreNode`) with its data source and views.
fn document_node(
    world: &World,
    ds: &DataSource,
    doc: &Document,
    reaching: &[&DataSourceView],
    view_type: ViewType,
) -> Value {
    json!({
        "internalId": doc.document_id,
        "parentInternalId": doc.ancestors.first(),
        "title": doc.title,
        "sourceUrl": doc.source_url,
        "permission": "read",
        "lastUpdatedAt": doc.timestamp,
        "providerVisibility": null,
        "parentInternalIds": doc.parents().collect::<Vec<_>>(),
        "type": "document",
        "expandable": false,
        "mimeType": doc.mime_type,
        "preventSelection": view_type == ViewType::Table,
        "parentTitle": null,
        "dataSource": data_source_json(ds),
        "dataSourceViews": views_json(world, reaching),
    })
}

/// A data source as a `folder` node.
fn data_source_node(world: &World, ds: &DataSource, reaching: &[&DataSourceView]) -> Value {
    json!({
        "internalId": DATA_SOURCE_NODE_ID,
        "parentInternalId": null,
        "title": ds.name,
        "sourceUrl": null,
        "permission": "read",
        "lastUpdatedAt": ds.created_at,
        "providerVisibility": null,
        "parentInternalIds": [],
        "type": "folder",
        "expandable": !ds.documents.is_empty(),
        "mimeType": DATA_SOURCE_MIME_TYPE,
        "preventSelection": false,
        "parentTitle": null,
        "dataSource": data_source_json(ds),
        "dataSourceViews": views_json(world, reaching),
    })
}
