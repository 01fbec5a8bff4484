//! Knowledge bases (Dust data sources): listing, search, and documents.
//!
//! Users name a knowledge base by its data source id alone; Dust's routes also need its space.
//! The server finds the space itself from the caller's own listing (spaces, then their data
//! sources), kept for [`KNOWLEDGE_TTL`] per principal. The cache is keyed by the principal's
//! pseudonymous id, never shared across principals: two keys may see different spaces.

use std::{collections::HashSet, sync::Arc, time::Duration};

use futures::{StreamExt, stream};
use rmcp::{ErrorData as McpError, model::CallToolResult};

use super::{
    McpContext,
    args::*,
    cache::PrincipalCache,
    errors,
    service::ServiceError,
    tools::structured,
    views::{DocumentView, KnowledgeBaseView, SearchHit, SearchResults, SpaceView},
};
use crate::{
    auth::Principal,
    dust::{DataSource, DustError, DustErrorKind, SearchQuery, Space, UpsertDocument},
};

/// How long a principal's list of knowledge bases is reused before Dust is asked again.
pub const KNOWLEDGE_TTL: Duration = Duration::from_secs(30);

/// Searches run against Dust at once when searching every knowledge base.
const SEARCH_CONCURRENCY: usize = 8;

/// Default number of search results.
const DEFAULT_TOP_K: u32 = 8;

/// A knowledge base and the space it was found in.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub space: Space,
    pub source: DataSource,
}

/// Per-principal cache of knowledge bases ([`super::cache`]).
pub type KnowledgeCache = PrincipalCache<Vec<KnowledgeBase>>;

/// Spaces in the order their data sources are attributed: shared spaces before the system one.
fn space_rank(space: &Space) -> u8 {
    match space.kind.as_str() {
        "global" => 0,
        "regular" | "project" | "public" => 1,
        "system" => 3,
        _ => 2,
    }
}

/// Every knowledge base the principal can see, each once.
pub async fn knowledge_bases(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<Arc<Vec<KnowledgeBase>>, DustError> {
    if let Some(list) = ctx.knowledge.get(&principal.user_id) {
        return Ok(list);
    }
    let creds = &principal.credentials;
    let mut spaces = ctx.dust.list_spaces(creds).await?;
    spaces.sort_by_key(space_rank);
    let listings = futures::future::join_all(
        spaces
            .iter()
            .map(|space| ctx.dust.list_data_sources(creds, &space.s_id)),
    )
    .await;
    let mut seen = HashSet::new();
    let mut list = Vec::new();
    for (space, listing) in spaces.iter().zip(listings) {
        let sources = match listing {
            Ok(sources) => sources,
            // A space the key may list but not read is simply not searchable.
            Err(e) if matches!(e.kind, DustErrorKind::NotFound | DustErrorKind::Forbidden) => {
                continue;
            }
            Err(e) => return Err(e),
        };
        for source in sources {
            if seen.insert(source.s_id.clone()) {
                list.push(KnowledgeBase {
                    space: space.clone(),
                    source,
                });
            }
        }
    }
    let list = Arc::new(list);
    ctx.knowledge.put(&principal.user_id, list.clone());
    Ok(list)
}

/// Finds one of the caller's knowledge bases.
pub async fn find_knowledge_base(
    ctx: &McpContext,
    principal: &Principal,
    id: &str,
) -> Result<KnowledgeBase, ServiceError> {
    check_id("knowledgeBaseId", id)?;
    let list = knowledge_bases(ctx, principal)
        .await
        .map_err(|e| ServiceError::dust("listing knowledge bases", e))?;
    list.iter()
        .find(|kb| kb.source.s_id == id)
        .cloned()
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "Knowledge base {id} not found. Use list_knowledge_bases to see the ids you can use."
            ))
        })
}

/// Unwraps `find_knowledge_base`, returning the tool result early.
macro_rules! find_or_return {
    ($ctx:expr, $principal:expr, $id:expr) => {
        match find_knowledge_base($ctx, $principal, $id).await {
            Ok(kb) => kb,
            Err(e) => return e.into_tool(),
        }
    };
}

pub async fn list_spaces(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<CallToolResult, McpError> {
    match ctx.dust.list_spaces(&principal.credentials).await {
        Ok(spaces) => {
            let spaces: Vec<SpaceView> = spaces.iter().map(SpaceView::from).collect();
            structured(&serde_json::json!({ "spaces": spaces }))
        }
        Err(e) => Ok(errors::dust_tool_error("listing spaces", &e)),
    }
}

/// The caller's knowledge bases that pass `keep`.
pub async fn knowledge_base_views(
    ctx: &McpContext,
    principal: &Principal,
    action: &str,
    keep: impl Fn(&KnowledgeBase) -> bool,
) -> Result<Vec<KnowledgeBaseView>, ServiceError> {
    let list = knowledge_bases(ctx, principal)
        .await
        .map_err(|e| ServiceError::dust(action, e))?;
    Ok(list
        .iter()
        .filter(|kb| keep(kb))
        .map(|kb| KnowledgeBaseView::new(&kb.space, &kb.source))
        .collect())
}

/// [`knowledge_base_views`] as `{ <key>: [...] }`.
async fn list_views(
    ctx: &McpContext,
    principal: &Principal,
    key: &str,
    action: &str,
    keep: impl Fn(&KnowledgeBase) -> bool,
) -> Result<CallToolResult, McpError> {
    match knowledge_base_views(ctx, principal, action, keep).await {
        Ok(views) => structured(&serde_json::json!({ key: views })),
        Err(e) => e.into_tool(),
    }
}

pub async fn list_knowledge_bases(
    ctx: &McpContext,
    principal: &Principal,
    args: ListKnowledgeBasesArgs,
) -> Result<CallToolResult, McpError> {
    if let Some(space_id) = &args.space_id {
        check_id("spaceId", space_id)?;
    }
    list_views(
        ctx,
        principal,
        "knowledgeBases",
        "listing knowledge bases",
        |kb| args.space_id.as_ref().is_none_or(|s| &kb.space.s_id == s),
    )
    .await
}

pub async fn list_connectors(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<CallToolResult, McpError> {
    list_views(ctx, principal, "connectors", "listing connectors", |kb| {
        kb.source.connector_provider.is_some()
    })
    .await
}

pub async fn search(
    ctx: &McpContext,
    principal: &Principal,
    args: SearchKnowledgeArgs,
) -> Result<CallToolResult, McpError> {
    match search_results(ctx, principal, args).await {
        Ok(results) => structured(&results),
        Err(e) => e.into_tool(),
    }
}

/// Semantic search in one knowledge base, or in every one the caller can see, best first.
pub async fn search_results(
    ctx: &McpContext,
    principal: &Principal,
    args: SearchKnowledgeArgs,
) -> Result<SearchResults, ServiceError> {
    check_text("query", &args.query, MAX_TEXT_BYTES)?;
    let top_k = check_range("topK", args.top_k.unwrap_or(DEFAULT_TOP_K), 1, MAX_TOP_K)?;
    let tags_in = args.tags_in.unwrap_or_default();
    let tags_not = args.tags_not.unwrap_or_default();
    check_tags("tagsIn", &tags_in)?;
    check_tags("tagsNot", &tags_not)?;
    let query = SearchQuery {
        query: args.query,
        top_k,
        full_text: false,
        tags_in,
        tags_not,
        timestamp_gt: args.timestamp_gt,
        timestamp_lt: args.timestamp_lt,
    };
    let targets: Vec<KnowledgeBase> = match &args.knowledge_base_id {
        Some(id) => vec![find_knowledge_base(ctx, principal, id).await?],
        None => knowledge_bases(ctx, principal)
            .await
            .map_err(|e| ServiceError::dust("listing knowledge bases", e))?
            .as_ref()
            .clone(),
    };
    let outcomes: Vec<(KnowledgeBase, Result<_, DustError>)> =
        stream::iter(targets.iter().cloned())
            .map(|kb| {
                let dust = ctx.dust.clone();
                let creds = principal.credentials.clone();
                let query = query.clone();
                async move {
                    let found = dust
                        .search_data_source(&creds, &kb.space.s_id, &kb.source.s_id, &query)
                        .await;
                    (kb, found)
                }
            })
            .buffer_unordered(SEARCH_CONCURRENCY)
            .collect()
            .await;
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    let mut last_error = None;
    for (kb, found) in outcomes {
        match found {
            Ok(documents) => results.extend(
                documents
                    .into_iter()
                    .map(|d| SearchHit::new(&kb.source.s_id, d)),
            ),
            Err(e) => {
                skipped.push(format!("{}: {}", kb.source.s_id, e.message));
                last_error = Some(e);
            }
        }
    }
    if results.is_empty()
        && let Some(e) = last_error
        && skipped.len() == targets.len()
    {
        return Err(ServiceError::dust("searching knowledge", e));
    }
    results.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.document_id.cmp(&b.document_id))
    });
    results.truncate(top_k as usize);
    skipped.sort();
    Ok(SearchResults { results, skipped })
}

pub async fn list_documents(
    ctx: &McpContext,
    principal: &Principal,
    args: ListDocumentsArgs,
) -> Result<CallToolResult, McpError> {
    let limit = check_range("limit", args.limit.unwrap_or(10), 1, MAX_LIST_LIMIT)?;
    let offset = check_range("offset", args.offset.unwrap_or(0), 0, 1_000_000)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    match ctx
        .dust
        .list_documents(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            limit,
            offset,
        )
        .await
    {
        Ok(page) => {
            let documents: Vec<_> = page
                .documents
                .into_iter()
                .map(|d| DocumentView::new(&kb.source.s_id, d, false))
                .collect();
            structured(&serde_json::json!({
                "documents": documents,
                "total": page.total,
                "offset": offset,
                "limit": limit,
            }))
        }
        Err(e) => Ok(errors::dust_tool_error("listing documents", &e)),
    }
}

pub async fn get_document(
    ctx: &McpContext,
    principal: &Principal,
    args: DocumentArgs,
) -> Result<CallToolResult, McpError> {
    check_document_id("documentId", &args.document_id)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    match fetch_document(ctx, principal, &kb, &args.document_id).await {
        Ok(view) => structured(&view),
        Err(e) => Ok(errors::dust_tool_error(
            &format!("reading document {}", args.document_id),
            &e,
        )),
    }
}

/// One document with its text.
pub async fn fetch_document(
    ctx: &McpContext,
    principal: &Principal,
    kb: &KnowledgeBase,
    document_id: &str,
) -> Result<DocumentView, DustError> {
    let document = ctx
        .dust
        .get_document(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            document_id,
        )
        .await?;
    Ok(DocumentView::new(&kb.source.s_id, document, true))
}

pub async fn upsert_document(
    ctx: &McpContext,
    principal: &Principal,
    args: UpsertDocumentArgs,
) -> Result<CallToolResult, McpError> {
    check_document_id("documentId", &args.document_id)?;
    check_text("text", &args.text, MAX_DOCUMENT_BYTES)?;
    if let Some(title) = &args.title {
        check_text("title", title, 1024)?;
    }
    if let Some(url) = &args.source_url {
        check_source_url(url)?;
    }
    let tags = args.tags.unwrap_or_default();
    check_tags("tags", &tags)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    if let Some(provider) = &kb.source.connector_provider {
        return Ok(errors::tool_error(format!(
            "Knowledge base {} is fed by the {provider} connector and cannot be written; write to a folder knowledge base instead.",
            kb.source.s_id
        )));
    }
    let body = UpsertDocument {
        text: args.text,
        title: args.title,
        source_url: args.source_url,
        tags,
        mime_type: Some("text/plain".to_owned()),
        timestamp: None,
    };
    match ctx
        .dust
        .upsert_document(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.document_id,
            &body,
        )
        .await
    {
        Ok(document) => structured(&DocumentView::new(&kb.source.s_id, document, false)),
        Err(e) => Ok(errors::dust_tool_error(
            &format!("writing document {}", args.document_id),
            &e,
        )),
    }
}

pub async fn delete_document(
    ctx: &McpContext,
    principal: &Principal,
    args: DocumentArgs,
) -> Result<CallToolResult, McpError> {
    check_document_id("documentId", &args.document_id)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    if let Some(provider) = &kb.source.connector_provider {
        return Ok(errors::tool_error(format!(
            "Knowledge base {} is fed by the {provider} connector; its documents cannot be deleted here.",
            kb.source.s_id
        )));
    }
    match ctx
        .dust
        .delete_document(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.document_id,
        )
        .await
    {
        Ok(()) => structured(&serde_json::json!({
            "deleted": true,
            "knowledgeBaseId": kb.source.s_id,
            "documentId": args.document_id,
        })),
        Err(e) => Ok(errors::dust_tool_error(
            &format!("deleting document {}", args.document_id),
            &e,
        )),
    }
}
