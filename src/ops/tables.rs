//! Tables of folder knowledge bases: list them, read one with its schema, page through its
//! rows, write rows, delete one row.
//!
//! Dust's table routes (`.../data_sources/{dsId}/tables...`) answer only for a data source the
//! space owns, like its document routes: a knowledge base is resolved to (space, data source)
//! exactly as for documents ([`knowledge::find_knowledge_base`]), and one reached only through
//! a view is refused with a clear message before Dust is asked. Writes are for folders only: a
//! connector's tables are managed by the connector (Dust answers 403). Rows are checked here
//! first ([`check_table_rows`]): their count, their size and every cell's kind, so a bad row is
//! named precisely and never reaches Dust.

use super::{
    Context, OpError,
    args::*,
    catalog::{Kind, Op, op},
    knowledge::{self, KnowledgeBase},
    views::{DeletedRow, RowView, TableList, TableRowList, TableView, UpsertedRows},
};
use crate::{
    auth::{Permission as P, Principal},
    dust::{TableRow, UpsertTableRows},
};

pub const LIST_TABLES: Op = op("list_tables", P::ReadKnowledgeBases, true, Kind::Read);
pub const GET_TABLE: Op = op("get_table", P::ReadKnowledgeBases, true, Kind::Read);
pub const LIST_TABLE_ROWS: Op = op("list_table_rows", P::ReadKnowledgeBases, true, Kind::Read);
pub const UPSERT_TABLE_ROWS: Op = op(
    "upsert_table_rows",
    P::WriteKnowledgeBases,
    true,
    Kind::Write,
);
pub const DELETE_TABLE_ROW: Op = op(
    "delete_table_row",
    P::DeleteKnowledgeBases,
    true,
    Kind::Delete,
);

/// Rows listed when the caller does not say.
const DEFAULT_ROWS_LIMIT: u32 = 10;

/// The knowledge base `id`, if Dust's table routes reach it (its space owns it).
async fn readable(
    ctx: &Context,
    principal: &Principal,
    id: &str,
    action: &str,
) -> Result<KnowledgeBase, OpError> {
    let kb = knowledge::find_knowledge_base(ctx, principal, id).await?;
    if !kb.owned {
        return Err(kb.tables_unreachable(action));
    }
    Ok(kb)
}

/// The knowledge base `id`, if it is a folder its space owns.
async fn writable(
    ctx: &Context,
    principal: &Principal,
    id: &str,
    action: &str,
) -> Result<KnowledgeBase, OpError> {
    let kb = knowledge::find_knowledge_base(ctx, principal, id).await?;
    if let Some(provider) = &kb.source.connector_provider {
        return Err(OpError::Forbidden(format!(
            "Knowledge base {} is fed by the {provider} connector; its tables cannot be {action} here. Write to a folder knowledge base instead.",
            kb.source.s_id
        )));
    }
    if !kb.owned {
        return Err(kb.tables_unreachable("write"));
    }
    Ok(kb)
}

/// The tables of a folder knowledge base.
pub async fn list_tables(
    ctx: &Context,
    principal: &Principal,
    args: ListTablesArgs,
) -> Result<TableList, OpError> {
    let kb = readable(ctx, principal, &args.knowledge_base_id, "list").await?;
    let tables = ctx
        .dust
        .list_tables(&principal.credentials, &kb.space.s_id, &kb.source.s_id)
        .await
        .map_err(|e| OpError::dust("listing tables", e))?;
    Ok(TableList {
        tables: tables
            .into_iter()
            .map(|t| TableView::new(&kb.source.s_id, t))
            .collect(),
    })
}

/// One table with its schema.
pub async fn get_table(
    ctx: &Context,
    principal: &Principal,
    args: TableArgs,
) -> Result<TableView, OpError> {
    check_document_id("tableId", &args.table_id)?;
    let kb = readable(ctx, principal, &args.knowledge_base_id, "read").await?;
    fetch_table(ctx, principal, &kb, &args.table_id)
        .await
        .map_err(|e| OpError::dust(format!("reading table {}", args.table_id), e))
}

/// One table of a resolved knowledge base (also the table resource).
pub async fn fetch_table(
    ctx: &Context,
    principal: &Principal,
    kb: &KnowledgeBase,
    table_id: &str,
) -> Result<TableView, crate::dust::DustError> {
    let table = ctx
        .dust
        .get_table(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            table_id,
        )
        .await?;
    Ok(TableView::new(&kb.source.s_id, table))
}

/// One page of a table's rows.
pub async fn list_table_rows(
    ctx: &Context,
    principal: &Principal,
    args: ListTableRowsArgs,
) -> Result<TableRowList, OpError> {
    check_document_id("tableId", &args.table_id)?;
    let limit = check_range(
        "limit",
        args.limit.unwrap_or(DEFAULT_ROWS_LIMIT),
        1,
        MAX_LIST_LIMIT,
    )?;
    let offset = check_range("offset", args.offset.unwrap_or(0), 0, 1_000_000)?;
    let kb = readable(ctx, principal, &args.knowledge_base_id, "read").await?;
    let page = ctx
        .dust
        .list_table_rows(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.table_id,
            limit,
            offset,
        )
        .await
        .map_err(|e| OpError::dust(format!("listing the rows of table {}", args.table_id), e))?;
    Ok(TableRowList {
        knowledge_base_id: kb.source.s_id.clone(),
        table_id: args.table_id,
        // Dust pages with its own cap on some deployments: the caller's limit holds anyway.
        rows: page
            .rows
            .into_iter()
            .take(limit as usize)
            .map(RowView::from)
            .collect(),
        total: page.total,
        offset,
        limit,
    })
}

/// Creates or replaces rows of a folder's table, by row id; other rows are kept.
pub async fn upsert_table_rows(
    ctx: &Context,
    principal: &Principal,
    args: UpsertTableRowsArgs,
) -> Result<UpsertedRows, OpError> {
    check_document_id("tableId", &args.table_id)?;
    check_table_rows(&args.rows)?;
    let kb = writable(ctx, principal, &args.knowledge_base_id, "written").await?;
    let upserted = args.rows.len();
    let body = UpsertTableRows {
        rows: args
            .rows
            .into_iter()
            .map(|r| TableRow {
                row_id: r.row_id,
                value: r.value,
            })
            .collect(),
    };
    let table = ctx
        .dust
        .upsert_table_rows(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.table_id,
            &body,
        )
        .await
        .map_err(|e| OpError::dust(format!("writing rows of table {}", args.table_id), e))?;
    let view = TableView::new(&kb.source.s_id, table);
    Ok(UpsertedRows {
        knowledge_base_id: view.knowledge_base_id,
        table_id: args.table_id,
        upserted,
        columns: view.columns,
    })
}

/// Deletes one row of a folder's table.
pub async fn delete_table_row(
    ctx: &Context,
    principal: &Principal,
    args: TableRowIdArgs,
) -> Result<DeletedRow, OpError> {
    check_document_id("tableId", &args.table_id)?;
    check_document_id("rowId", &args.row_id)?;
    let kb = writable(ctx, principal, &args.knowledge_base_id, "deleted").await?;
    ctx.dust
        .delete_table_row(
            &principal.credentials,
            &kb.space.s_id,
            &kb.source.s_id,
            &args.table_id,
            &args.row_id,
        )
        .await
        .map_err(|e| OpError::dust(format!("deleting row {}", args.row_id), e))?;
    Ok(DeletedRow {
        deleted: true,
        knowledge_base_id: kb.source.s_id.clone(),
        table_id: args.table_id,
        row_id: args.row_id,
    })
}
