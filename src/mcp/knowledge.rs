//! Knowledge bases (Dust data sources, as the caller's spaces reach them): listing, search,
//! and documents.
//!
//! What a key can reach in Dust is not what `GET /spaces/{id}/data_sources` lists. That route
//! lists the data sources a space *owns*: folders and websites. The managed connectors (Notion,
//! Slack, Drive, ...) live in Dust's admin-only system space and reach the other spaces only
//! through **data source views** (`GET /spaces/{id}/data_source_views`), each possibly limited
//! to some of the connector's nodes (`parentsIn`). So a knowledge base here is a data source
//! reached by a space, through its view when there is one: every view (connectors included)
//! and every owned data source, once each. When a folder has a view in its own space, or a
//! connector views in several spaces, it is still one knowledge base: the owning space wins,
//! then the shared (global) spaces before the others.
//!
//! Search goes through the view when there is one (`.../data_source_views/{id}/search`, which
//! Dust restricts to the view's nodes), else through the owned data source. Documents can be
//! listed, read, written and deleted only where the space owns the data source: Dust has no
//! public route that reads a connector's document by id with an ordinary key, so those answer
//! a clear refusal that points to search.
//!
//! Users name a knowledge base by its data source id (`dts_...`, the id listings show) or by
//! the id of a view of it (`dsv_...`); Dust's routes also need the space and the view, which the
//! server finds from the caller's own listing, kept for [`KNOWLEDGE_TTL`] per principal. The
//! cache is keyed by the principal's pseudonymous id, never shared across principals: two keys
//! may see different spaces.

use std::{sync::Arc, time::Duration};

use futures::{StreamExt, stream};
use rmcp::{ErrorData as McpError, model::CallToolResult};

use super::{
    McpContext,
    args::*,
    cache::PrincipalCache,
    errors,
    service::ServiceError,
    tools::structured,
    views::{
        DeletedDocument, DocumentList, DocumentView, KnowledgeBaseView, SearchHit, SearchResults,
        SpaceList, SpaceView,
    },
};
use crate::{
    auth::Principal,
    dust::{
        DataSource, DataSourceView, DustError, DustErrorKind, SearchQuery, Space, UpsertDocument,
    },
};

/// How long a principal's list of knowledge bases is reused before Dust is asked again.
pub(super) const KNOWLEDGE_TTL: Duration = Duration::from_secs(30);

/// Searches run against Dust at once when searching every knowledge base.
const SEARCH_CONCURRENCY: usize = 8;

/// Default number of search results.
const DEFAULT_TOP_K: u32 = 8;

/// A knowledge base: a data source and the space it was found in, through a view of that
/// space when there is one.
#[derive(Debug, Clone)]
pub struct KnowledgeBase {
    pub space: Space,
    pub source: DataSource,
    /// The view through which [`Self::space`] reaches the source (always, for a connector).
    pub view: Option<DataSourceView>,
    /// Whether [`Self::space`] owns the source: only then do Dust's document routes answer.
    pub owned: bool,
    /// The ids of every view of this source the caller can see, in any space (accepted as
    /// `knowledgeBaseId`).
    pub view_ids: Vec<String>,
}

impl KnowledgeBase {
    /// Whether `id` names this knowledge base (its data source id, or one of its views).
    pub fn is(&self, id: &str) -> bool {
        self.source.s_id == id || self.view_ids.iter().any(|v| v == id)
    }

    /// What listings show of it.
    pub fn to_view(&self) -> KnowledgeBaseView {
        KnowledgeBaseView::new(&self.space, &self.source).reached_through(
            self.view
                .as_ref()
                .map(|v| (v.s_id.as_str(), v.parents_in.as_deref())),
            self.owned,
        )
    }

    /// The refusal for reading documents one by one where Dust does not allow it.
    fn documents_unreachable(&self, action: &str) -> ServiceError {
        let what = match &self.source.connector_provider {
            Some(provider) => format!("is content of the {provider} connector"),
            None => format!("is shared with space {} through a view", self.space.name),
        };
        ServiceError::Failed(format!(
            "Knowledge base {} {what}: Dust lets an API key search it but not {action} its documents one by one. Use search_knowledge with knowledgeBaseId {} (its hits carry the matching text).",
            self.source.s_id, self.source.s_id
        ))
    }
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

/// What one space answered: the data sources it owns and its views. A space the key may list
/// but not read (404, 403) is simply empty; so is a deployment without the views route.
async fn space_listing(
    ctx: &McpContext,
    principal: &Principal,
    space: &Space,
) -> Result<(Vec<DataSource>, Vec<DataSourceView>), DustError> {
    let creds = &principal.credentials;
    let (owned, views) = futures::join!(
        ctx.dust.list_data_sources(creds, &space.s_id),
        ctx.dust.list_data_source_views(creds, &space.s_id),
    );
    let unreadable =
        |e: &DustError| matches!(e.kind, DustErrorKind::NotFound | DustErrorKind::Forbidden);
    let owned = match owned {
        Ok(owned) => owned,
        Err(e) if unreadable(&e) => Vec::new(),
        Err(e) => return Err(e),
    };
    let views = match views {
        Ok(views) => views,
        Err(e) if unreadable(&e) => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok((owned, views))
}

/// Every knowledge base the principal can see, each once.
pub(super) async fn knowledge_bases(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<Arc<Vec<KnowledgeBase>>, DustError> {
    if let Some(list) = ctx.knowledge.get(&principal.user_id) {
        return Ok(list);
    }
    let mut spaces = ctx.dust.list_spaces(&principal.credentials).await?;
    spaces.sort_by_key(space_rank);
    let listings = futures::future::join_all(
        spaces
            .iter()
            .map(|space| space_listing(ctx, principal, space)),
    )
    .await;
    // Every (space, source) pair, in space order: each view, then each owned source without a
    // view in its space.
    let mut candidates: Vec<KnowledgeBase> = Vec::new();
    for (space, listing) in spaces.iter().zip(listings) {
        let (owned, views) = listing?;
        let owns = |id: &str| owned.iter().any(|d| d.s_id == id);
        for view in &views {
            candidates.push(KnowledgeBase {
                space: space.clone(),
                source: view.data_source.clone(),
                owned: owns(&view.data_source.s_id),
                view: Some(view.clone()),
                view_ids: Vec::new(),
            });
        }
        for source in owned
            .iter()
            .filter(|d| !views.iter().any(|v| v.data_source.s_id == d.s_id))
        {
            candidates.push(KnowledgeBase {
                space: space.clone(),
                source: source.clone(),
                view: None,
                owned: true,
                view_ids: Vec::new(),
            });
        }
    }
    // One per data source: the owning space's if any, else the first space's.
    let mut list: Vec<KnowledgeBase> = Vec::new();
    for candidate in &candidates {
        if list
            .iter()
            .any(|kb| kb.source.s_id == candidate.source.s_id)
        {
            continue;
        }
        let same = || {
            candidates
                .iter()
                .filter(|c| c.source.s_id == candidate.source.s_id)
        };
        let mut chosen = same().find(|c| c.owned).unwrap_or(candidate).clone();
        chosen.view_ids = same()
            .filter_map(|c| c.view.as_ref().map(|v| v.s_id.clone()))
            .collect();
        list.push(chosen);
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
    list.iter().find(|kb| kb.is(id)).cloned().ok_or_else(|| {
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

pub(super) async fn list_spaces(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<CallToolResult, McpError> {
    match ctx.dust.list_spaces(&principal.credentials).await {
        Ok(spaces) => {
            let spaces: Vec<SpaceView> = spaces.iter().map(SpaceView::from).collect();
            structured(&SpaceList { spaces })
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
        .map(KnowledgeBase::to_view)
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

pub(super) async fn list_knowledge_bases(
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

pub(super) async fn list_connectors(
    ctx: &McpContext,
    principal: &Principal,
) -> Result<CallToolResult, McpError> {
    list_views(ctx, principal, "connectors", "listing connectors", |kb| {
        kb.source.connector_provider.is_some()
    })
    .await
}

pub(super) async fn search(
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
    check_text("query", &args.query, MAX_QUERY_BYTES)?;
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
                    // Through the view when there is one: Dust restricts it to the nodes the
                    // space may see (a connector has no other way in).
                    let found = match &kb.view {
                        Some(view) => {
                            dust.search_data_source_view(&creds, &kb.space.s_id, &view.s_id, &query)
                                .await
                        }
                        None => {
                            dust.search_data_source(&creds, &kb.space.s_id, &kb.source.s_id, &query)
                                .await
                        }
                    };
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

pub(super) async fn list_documents(
    ctx: &McpContext,
    principal: &Principal,
    args: ListDocumentsArgs,
) -> Result<CallToolResult, McpError> {
    let limit = check_range("limit", args.limit.unwrap_or(10), 1, MAX_LIST_LIMIT)?;
    let offset = check_range("offset", args.offset.unwrap_or(0), 0, 1_000_000)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    if !kb.owned {
        return kb.documents_unreachable("list").into_tool();
    }
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
            structured(&DocumentList {
                documents,
                total: page.total,
                offset,
                limit,
            })
        }
        Err(e) => Ok(errors::dust_tool_error("listing documents", &e)),
    }
}

pub(super) async fn get_document(
    ctx: &McpContext,
    principal: &Principal,
    args: DocumentArgs,
) -> Result<CallToolResult, McpError> {
    check_document_id("documentId", &args.document_id)?;
    let kb = find_or_return!(ctx, principal, &args.knowledge_base_id);
    if !kb.owned {
        return kb.documents_unreachable("read").into_tool();
    }
    match fetch_document(ctx, principal, &kb, &args.document_id).await {
        Ok(view) => structured(&view),
        Err(e) => Ok(errors::dust_tool_error(
            &format!("reading document {}", args.document_id),
            &e,
        )),
    }
}

/// One document with its text.
pub(super) async fn fetch_document(
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

pub(super) async fn upsert_document(
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
    if !kb.owned {
        return kb.documents_unreachable("write").into_tool();
    }
    let body = UpsertDocument {
        text: args.text,
        title: args.title,
        source_url: args.source_url,
        tags,
        mime_type: Some("text/plain".to_owned()),
        timestamp: None,
        light_document_output: true,
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

pub(super) async fn delete_document(
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
    if !kb.owned {
        return kb.documents_unreachable("delete").into_tool();
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
        Ok(()) => structured(&DeletedDocument {
            deleted: true,
            knowledge_base_id: kb.source.s_id.clone(),
            document_id: args.document_id.clone(),
        }),
        Err(e) => Ok(errors::dust_tool_error(
            &format!("deleting document {}", args.document_id),
            &e,
        )),
    }
}
