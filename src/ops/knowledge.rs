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

use super::{
    Context, OpError,
    args::*,
    cache::PrincipalCache,
    catalog::{Kind, Op, op},
    views::{
        ConnectorList, DeletedDocument, DocumentList, DocumentView, KnowledgeBaseList,
        KnowledgeBaseView, SearchHit, SearchResults, SpaceList, SpaceView, WorkspaceNode,
        WorkspaceSearchResults,
    },
};
use crate::{
    auth::{Permission as P, Principal},
    dust::{
        DataSource, DataSourceView, DustError, DustErrorKind, NodeSearch, NodeViewType,
        SearchQuery, Space, UpsertDocument,
    },
};

pub const LIST_SPACES: Op = op("list_spaces", P::ReadKnowledgeBases, true, Kind::Read);
pub const LIST_KNOWLEDGE_BASES: Op = op(
    "list_knowledge_bases",
    P::ReadKnowledgeBases,
    true,
    Kind::Read,
);
pub const GET_KNOWLEDGE_BASE: Op = op(
    "get_knowledge_base",
    P::ReadKnowledgeBases,
    true,
    Kind::Read,
);
pub const SEARCH_KNOWLEDGE: Op = op("search_knowledge", P::ReadKnowledgeBases, true, Kind::Read);
pub const SEARCH_WORKSPACE: Op = op("search_workspace", P::ReadKnowledgeBases, true, Kind::Read);
pub const LIST_DOCUMENTS: Op = op("list_documents", P::ReadKnowledgeBases, true, Kind::Read);
pub const GET_DOCUMENT: Op = op("get_document", P::ReadKnowledgeBases, true, Kind::Read);
pub const UPSERT_DOCUMENT: Op = op("upsert_document", P::WriteKnowledgeBases, true, Kind::Write);
pub const DELETE_DOCUMENT: Op = op(
    "delete_document",
    P::DeleteKnowledgeBases,
    true,
    Kind::Delete,
);
pub const LIST_CONNECTORS: Op = op("list_connectors", P::ReadConnectors, true, Kind::Read);
pub const GET_CONNECTOR: Op = op("get_connector", P::ReadConnectors, true, Kind::Read);

/// How long a principal's list of knowledge bases is reused before Dust is asked again.
pub const KNOWLEDGE_TTL: Duration = Duration::from_secs(30);

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
    fn documents_unreachable(&self, action: &str) -> OpError {
        let what = match &self.source.connector_provider {
            Some(provider) => format!("is content of the {provider} connector"),
            None => format!("is shared with space {} through a view", self.space.name),
        };
        OpError::Failed(format!(
            "Knowledge base {} {what}: Dust lets an API key search it but not {action} its documents one by one. Use search_knowledge with knowledgeBaseId {} (its hits carry the matching text).",
            self.source.s_id, self.source.s_id
        ))
    }
}

impl KnowledgeBase {
    /// The refusal for tables where Dust's table routes do not answer (a connector, or a
    /// folder shared through a view): only the owning space reaches them.
    pub(crate) fn tables_unreachable(&self, action: &str) -> OpError {
        let what = match &self.source.connector_provider {
            Some(provider) => format!("is content of the {provider} connector"),
            None => format!("is shared with space {} through a view", self.space.name),
        };
        // Dust's table routes answer 404 for such a data source: so does this server.
        OpError::NotFound(format!(
            "Knowledge base {} {what}: Dust lets an API key {action} tables only in folders its own space holds. Use search_workspace with kind table to find tables you can reach, and list_knowledge_bases for folders (documentsReadable: true).",
            self.source.s_id
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
    ctx: &Context,
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
pub async fn knowledge_bases(
    ctx: &Context,
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
    ctx: &Context,
    principal: &Principal,
    id: &str,
) -> Result<KnowledgeBase, OpError> {
    check_id("knowledgeBaseId", id)?;
    let list = knowledge_bases(ctx, principal)
        .await
        .map_err(|e| OpError::dust("listing knowledge bases", e))?;
    list.iter().find(|kb| kb.is(id)).cloned().ok_or_else(|| {
        OpError::NotFound(format!(
            "Knowledge base {id} not found. Use list_knowledge_bases to see the ids you can use."
        ))
    })
}

/// The spaces the key can see.
pub async fn list_spaces(ctx: &Context, principal: &Principal) -> Result<SpaceList, OpError> {
    let spaces = ctx
        .dust
        .list_spaces(&principal.credentials)
        .await
        .map_err(|e| OpError::dust("listing spaces", e))?;
    Ok(SpaceList {
        spaces: spaces.iter().map(SpaceView::from).collect(),
    })
}

/// The caller's knowledge bases that pass `keep`.
async fn knowledge_base_views(
    ctx: &Context,
    principal: &Principal,
    action: &str,
    keep: impl Fn(&KnowledgeBase) -> bool,
) -> Result<Vec<KnowledgeBaseView>, OpError> {
    let list = knowledge_bases(ctx, principal)
        .await
        .map_err(|e| OpError::dust(action, e))?;
    Ok(list
        .iter()
        .filter(|kb| keep(kb))
        .map(KnowledgeBase::to_view)
        .collect())
}

/// The caller's knowledge bases, optionally those of one space.
pub async fn list_knowledge_bases(
    ctx: &Context,
    principal: &Principal,
    args: ListKnowledgeBasesArgs,
) -> Result<KnowledgeBaseList, OpError> {
    if let Some(space_id) = &args.space_id {
        check_id("spaceId", space_id)?;
    }
    let knowledge_bases = knowledge_base_views(ctx, principal, "listing knowledge bases", |kb| {
        args.space_id.as_ref().is_none_or(|s| &kb.space.s_id == s)
    })
    .await?;
    Ok(KnowledgeBaseList { knowledge_bases })
}

/// One of the caller's knowledge bases, by its id or the id of one of its views.
pub async fn get_knowledge_base(
    ctx: &Context,
    principal: &Principal,
    knowledge_base_id: &str,
) -> Result<KnowledgeBaseView, OpError> {
    find_knowledge_base(ctx, principal, knowledge_base_id)
        .await
        .map(|kb| kb.to_view())
}

/// The knowledge bases fed by a connector (Notion, Slack, ...).
pub async fn list_connectors(
    ctx: &Context,
    principal: &Principal,
) -> Result<ConnectorList, OpError> {
    let connectors = knowledge_base_views(ctx, principal, "listing connectors", |kb| {
        kb.source.connector_provider.is_some()
    })
    .await?;
    Ok(ConnectorList { connectors })
}

/// One connector-fed knowledge base, by its knowledge base id or its connector id.
pub async fn get_connector(
    ctx: &Context,
    principal: &Principal,
    id: &str,
) -> Result<KnowledgeBaseView, OpError> {
    check_id("connectorId", id)?;
    list_connectors(ctx, principal)
        .await?
        .connectors
        .into_iter()
        .find(|c| c.id == id || c.connector_id.as_deref() == Some(id))
        .ok_or_else(|| OpError::NotFound(format!("connector {id} not found")))
}

/// Semantic search in one knowledge base, or in every one the caller can see, best first.
pub async fn search_knowledge(
    ctx: &Context,
    principal: &Principal,
    args: SearchKnowledgeArgs,
) -> Result<SearchResults, OpError> {
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
            .map_err(|e| OpError::dust("listing knowledge bases", e))?
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
        return Err(OpError::dust("searching knowledge", e));
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

/// Title search across every space the key sees (Dust's node search, `POST /search`), in
/// Dust's order. Dust searches only the spaces a request names, so the caller's spaces are
/// listed first and all named.
pub async fn search_workspace(
    ctx: &Context,
    principal: &Principal,
    args: SearchWorkspaceArgs,
) -> Result<WorkspaceSearchResults, OpError> {
    check_text("query", &args.query, MAX_QUERY_BYTES)?;
    let limit = check_range(
        "limit",
        args.limit.unwrap_or(DEFAULT_WORKSPACE_SEARCH_LIMIT),
        1,
        MAX_LIST_LIMIT,
    )?;
    let view_type = match args.kind.unwrap_or_default() {
        NodeKind::All => NodeViewType::All,
        NodeKind::Document => NodeViewType::Document,
        NodeKind::Table => NodeViewType::Table,
    };
    let creds = &principal.credentials;
    let spaces = ctx
        .dust
        .list_spaces(creds)
        .await
        .map_err(|e| OpError::dust("listing spaces", e))?;
    if spaces.is_empty() {
        return Ok(WorkspaceSearchResults {
            results: Vec::new(),
            total: Some(0),
            warning: None,
        });
    }
    let search = NodeSearch {
        query: args.query,
        view_type,
        space_ids: spaces.into_iter().map(|s| s.s_id).collect(),
        include_data_sources: false,
        limit,
    };
    let found = ctx
        .dust
        .search_nodes(creds, &search)
        .await
        .map_err(|e| OpError::dust("searching the workspace", e))?;
    // Dust pages with its own default on some deployments: the caller's limit holds anyway.
    let results: Vec<WorkspaceNode> = found
        .nodes
        .into_iter()
        .take(limit as usize)
        .map(WorkspaceNode::from)
        .collect();
    Ok(WorkspaceSearchResults {
        results,
        total: found.results_count,
        warning: found.warning_code,
    })
}

/// One page of a folder's documents.
pub async fn list_documents(
    ctx: &Context,
    principal: &Principal,
    args: ListDocumentsArgs,
) -> Result<DocumentList, OpError> {
    let limit = check_range("limit", args.limit.unwrap_or(10), 1, MAX_LIST_LIMIT)?;
    let offset = check_range("offset", args.offset.unwrap_or(0), 0, 1_000_000)?;
    let kb = find_knowledge_base(ctx, principal, &args.knowledge_base_id).await?;
    if !kb.owned {
        return Err(kb.documents_unreachable("list"));
    }
    let page = ctx
        .dust
        .list_documents(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            limit,
            offset,
        )
        .await
        .map_err(|e| OpError::dust("listing documents", e))?;
    let documents = page
        .documents
        .into_iter()
        .map(|d| DocumentView::new(&kb.source.s_id, d, false))
        .collect();
    Ok(DocumentList {
        documents,
        total: page.total,
        offset,
        limit,
    })
}

/// One document of a folder, with its text.
pub async fn get_document(
    ctx: &Context,
    principal: &Principal,
    args: DocumentArgs,
) -> Result<DocumentView, OpError> {
    check_document_id("documentId", &args.document_id)?;
    let kb = find_knowledge_base(ctx, principal, &args.knowledge_base_id).await?;
    if !kb.owned {
        return Err(kb.documents_unreachable("read"));
    }
    fetch_document(ctx, principal, &kb, &args.document_id)
        .await
        .map_err(|e| OpError::dust(format!("reading document {}", args.document_id), e))
}

/// One document with its text.
pub async fn fetch_document(
    ctx: &Context,
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

/// Creates or replaces a document of a folder; `text` is sent byte for byte.
pub async fn upsert_document(
    ctx: &Context,
    principal: &Principal,
    args: UpsertDocumentArgs,
) -> Result<DocumentView, OpError> {
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
    let kb = find_knowledge_base(ctx, principal, &args.knowledge_base_id).await?;
    if let Some(provider) = &kb.source.connector_provider {
        return Err(OpError::Failed(format!(
            "Knowledge base {} is fed by the {provider} connector and cannot be written; write to a folder knowledge base instead.",
            kb.source.s_id
        )));
    }
    if !kb.owned {
        return Err(kb.documents_unreachable("write"));
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
    ctx.dust
        .upsert_document(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.document_id,
            &body,
        )
        .await
        .map(|document| DocumentView::new(&kb.source.s_id, document, false))
        .map_err(|e| OpError::dust(format!("writing document {}", args.document_id), e))
}

/// Deletes a document of a folder.
pub async fn delete_document(
    ctx: &Context,
    principal: &Principal,
    args: DocumentArgs,
) -> Result<DeletedDocument, OpError> {
    check_document_id("documentId", &args.document_id)?;
    let kb = find_knowledge_base(ctx, principal, &args.knowledge_base_id).await?;
    if let Some(provider) = &kb.source.connector_provider {
        return Err(OpError::Failed(format!(
            "Knowledge base {} is fed by the {provider} connector; its documents cannot be deleted here.",
            kb.source.s_id
        )));
    }
    if !kb.owned {
        return Err(kb.documents_unreachable("delete"));
    }
    ctx.dust
        .delete_document(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.document_id,
        )
        .await
        .map_err(|e| OpError::dust(format!("deleting document {}", args.document_id), e))?;
    Ok(DeletedDocument {
        deleted: true,
        knowledge_base_id: kb.source.s_id.clone(),
        document_id: args.document_id,
    })
}
