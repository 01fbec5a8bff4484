//! [`DustApi`] for [`HttpDustClient`]: one short method per Dust route.
//!
//! Each method names its route twice: as segments (every id pushed as its own encoded segment,
//! see `client.rs`) and as a template for the logs. Answers are unwrapped from Dust's envelopes
//! (`{"agentConfigurations": [...]}`, `{"document": {...}}`, ...) here, so callers get the
//! shapes of `types.rs`.

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ActionDecision, AgentConfiguration, ContentFragment, Conversation, CreateConversation,
    CreatedConversation, DataSource, DataSourceView, Document, DocumentPage, DustApi,
    DustCredentials, DustError, DustErrorKind, DustFile, EventStream, NewContentFragment, NewFile,
    NodeSearch, NodeSearchResults, PendingAction, PostMessage, PostedMessage, QuestionAnswer,
    Result, SearchQuery, Space, Table, TableRowPage, UpsertDocument, UpsertTableRows,
    client::{Call, HttpDustClient},
};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentsBody {
    agent_configurations: Vec<AgentConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AgentBody {
    agent_configuration: AgentConfiguration,
}

#[derive(Deserialize)]
struct ConversationBody {
    conversation: Conversation,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FragmentBody {
    content_fragment: ContentFragment,
}

#[derive(Deserialize)]
struct FileBody {
    file: DustFile,
}

#[derive(Deserialize)]
struct SpacesBody {
    spaces: Vec<Space>,
}

#[derive(Deserialize)]
struct DataSourcesBody {
    data_sources: Vec<DataSource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockedBody {
    blocked_actions: Vec<PendingAction>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ViewsBody {
    data_source_views: Vec<DataSourceView>,
}

#[derive(Deserialize)]
struct DocumentsBody {
    documents: Vec<Document>,
}

#[derive(Deserialize)]
struct DocumentBody {
    document: Value,
}

#[derive(Deserialize)]
struct TablesBody {
    tables: Vec<Table>,
}

#[derive(Deserialize)]
struct TableBody {
    table: Table,
}

const AGENTS: &str = "/assistant/agent_configurations";
const DOCUMENT: &str = "/spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}";
const TABLE: &str = "/spaces/{spaceId}/data_sources/{dsId}/tables/{tId}";
const ROWS: &str = "/spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows";

impl HttpDustClient {
    fn get(
        &self,
        creds: &DustCredentials,
        op: &'static str,
        template: &'static str,
        segments: &[&str],
    ) -> Result<Call> {
        let url = self.endpoint(&creds.workspace_id, segments)?;
        Ok(Call::new(op, template, Method::GET, url))
    }
}

/// Decodes a `{"document": ...}` answer. A light or async upsert answer may lack
/// `document_id`; the id we addressed fills it in.
fn document_from(body: DocumentBody, document_id: &str, op: &str) -> Result<Document> {
    let mut value = body.document;
    if let Some(object) = value.as_object_mut() {
        object
            .entry("document_id")
            .or_insert_with(|| Value::from(document_id));
    }
    serde_json::from_value(value).map_err(|error| {
        DustError::new(
            DustErrorKind::Protocol,
            format!("Dust's answer to {op} could not be read: {error}"),
        )
    })
}

#[async_trait]
impl DustApi for HttpDustClient {
    async fn check_key(&self, creds: &DustCredentials) -> Result<()> {
        let call = self.get(creds, "check the API key", "/exists", &["exists"])?;
        // Only Dust's own answer counts: a 2xx that is not `{"exists": true}` (a captive portal,
        // a proxy's page, another service) is a protocol error, never a valid key.
        match self.execute_json::<ExistsBody>(creds, &call).await {
            Ok(ExistsBody { exists: true }) => Ok(()),
            Ok(ExistsBody { exists: false }) => Err(DustError::new(
                DustErrorKind::NotFound,
                "Dust says this workspace does not exist",
            )),
            // An older deployment without `/exists` answers a bare 404; an unknown workspace
            // answers 404 `workspace_not_found`, which is the real answer.
            Err(error)
                if error.status == Some(404)
                    && error.error_type.as_deref() != Some("workspace_not_found") =>
            {
                self.list_spaces(creds).await.map(drop)
            }
            Err(error) => Err(error),
        }
    }

    async fn list_agents(&self, creds: &DustCredentials) -> Result<Vec<AgentConfiguration>> {
        let call = self.get(
            creds,
            "list agents",
            AGENTS,
            &["assistant", "agent_configurations"],
        )?;
        let body: AgentsBody = self.execute_json(creds, &call).await?;
        Ok(body.agent_configurations)
    }

    async fn get_agent(
        &self,
        creds: &DustCredentials,
        agent_id: &str,
    ) -> Result<AgentConfiguration> {
        let call = self.get(
            creds,
            "get an agent",
            "/assistant/agent_configurations/{sId}",
            &["assistant", "agent_configurations", agent_id],
        )?;
        let body: AgentBody = self.execute_json(creds, &call).await?;
        Ok(body.agent_configuration)
    }

    async fn search_agents(
        &self,
        creds: &DustCredentials,
        query: &str,
    ) -> Result<Vec<AgentConfiguration>> {
        let mut call = self.get(
            creds,
            "search agents",
            "/assistant/agent_configurations/search",
            &["assistant", "agent_configurations", "search"],
        )?;
        call.url.query_pairs_mut().append_pair("q", query);
        let body: AgentsBody = self.execute_json(creds, &call).await?;
        Ok(body.agent_configurations)
    }

    async fn create_conversation(
        &self,
        creds: &DustCredentials,
        request: &CreateConversation,
    ) -> Result<CreatedConversation> {
        let url = self.endpoint(&creds.workspace_id, &["assistant", "conversations"])?;
        let call = Call::new(
            "create a conversation",
            "/assistant/conversations",
            Method::POST,
            url,
        )
        .json(request)?;
        self.execute_json(creds, &call).await
    }

    async fn get_conversation(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
    ) -> Result<Conversation> {
        let call = self.get(
            creds,
            "get a conversation",
            "/assistant/conversations/{cId}",
            &["assistant", "conversations", conversation_id],
        )?;
        let body: ConversationBody = self.execute_json(creds, &call).await?;
        Ok(body.conversation)
    }

    async fn post_message(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message: &PostMessage,
    ) -> Result<PostedMessage> {
        let url = self.endpoint(
            &creds.workspace_id,
            &["assistant", "conversations", conversation_id, "messages"],
        )?;
        let call = Call::new(
            "post a message",
            "/assistant/conversations/{cId}/messages",
            Method::POST,
            url,
        )
        .json(message)?;
        self.execute_json(creds, &call).await
    }

    async fn post_content_fragment(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        fragment: &NewContentFragment,
    ) -> Result<ContentFragment> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "assistant",
                "conversations",
                conversation_id,
                "content_fragments",
            ],
        )?;
        let call = Call::new(
            "attach a content fragment",
            "/assistant/conversations/{cId}/content_fragments",
            Method::POST,
            url,
        )
        .json(fragment)?;
        let body: FragmentBody = self.execute_json(creds, &call).await?;
        Ok(body.content_fragment)
    }

    async fn create_file(&self, creds: &DustCredentials, file: &NewFile) -> Result<DustFile> {
        let url = self.endpoint(&creds.workspace_id, &["files"])?;
        let call = Call::new("create a file", "/files", Method::POST, url).json(file)?;
        let body: FileBody = self.execute_json(creds, &call).await?;
        Ok(body.file)
    }

    async fn upload_file(
        &self,
        creds: &DustCredentials,
        file: &DustFile,
        data: &[u8],
    ) -> Result<DustFile> {
        let url = self.upload_endpoint(file.upload_url.as_deref())?;
        let call = Call::new("upload a file", "/files/{fileId}", Method::POST, url).multipart_file(
            "file",
            &file.file_name,
            &file.content_type,
            data,
        );
        let body: FileBody = self.execute_json(creds, &call).await?;
        Ok(body.file)
    }

    async fn cancel_messages(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_ids: &[String],
    ) -> Result<()> {
        let url = self.endpoint(
            &creds.workspace_id,
            &["assistant", "conversations", conversation_id, "cancel"],
        )?;
        let call = Call::new(
            "cancel agent messages",
            "/assistant/conversations/{cId}/cancel",
            Method::POST,
            url,
        )
        .json(&json!({ "messageIds": message_ids }))?;
        self.execute(creds, &call).await.map(drop)
    }

    async fn blocked_actions(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
    ) -> Result<Vec<PendingAction>> {
        let call = self.get(
            creds,
            "list blocked actions",
            "/assistant/conversations/{cId}/actions/blocked",
            &[
                "assistant",
                "conversations",
                conversation_id,
                "actions",
                "blocked",
            ],
        )?;
        let body: BlockedBody = self.execute_json(creds, &call).await?;
        Ok(body.blocked_actions)
    }

    async fn validate_action(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_id: &str,
        action_id: &str,
        decision: ActionDecision,
    ) -> Result<()> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "assistant",
                "conversations",
                conversation_id,
                "messages",
                message_id,
                "validate-action",
            ],
        )?;
        let call = Call::new(
            "validate an action",
            "/assistant/conversations/{cId}/messages/{mId}/validate-action",
            Method::POST,
            url,
        )
        .json(&json!({ "actionId": action_id, "approved": decision }))?;
        self.execute(creds, &call).await.map(drop)
    }

    async fn answer_question(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_id: &str,
        action_id: &str,
        answer: &QuestionAnswer,
    ) -> Result<()> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "assistant",
                "conversations",
                conversation_id,
                "messages",
                message_id,
                "answer-question",
            ],
        )?;
        let call = Call::new(
            "answer a question",
            "/assistant/conversations/{cId}/messages/{mId}/answer-question",
            Method::POST,
            url,
        )
        .json(&json!({ "actionId": action_id, "answer": answer }))?;
        self.execute(creds, &call).await.map(drop)
    }

    async fn agent_message_events(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream> {
        let mut call = self.get(
            creds,
            "stream agent events",
            "/assistant/conversations/{cId}/messages/{mId}/events",
            &[
                "assistant",
                "conversations",
                conversation_id,
                "messages",
                message_id,
                "events",
            ],
        )?;
        if let Some(last_event_id) = last_event_id {
            call.url
                .query_pairs_mut()
                .append_pair("lastEventId", last_event_id);
        }
        self.open_event_stream(creds, &call).await
    }

    async fn list_spaces(&self, creds: &DustCredentials) -> Result<Vec<Space>> {
        let call = self.get(creds, "list spaces", "/spaces", &["spaces"])?;
        let body: SpacesBody = self.execute_json(creds, &call).await?;
        Ok(body.spaces)
    }

    async fn list_data_sources(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSource>> {
        let call = self.get(
            creds,
            "list data sources",
            "/spaces/{spaceId}/data_sources",
            &["spaces", space_id, "data_sources"],
        )?;
        let body: DataSourcesBody = self.execute_json(creds, &call).await?;
        Ok(body.data_sources)
    }

    async fn list_data_source_views(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSourceView>> {
        let call = self.get(
            creds,
            "list data source views",
            "/spaces/{spaceId}/data_source_views",
            &["spaces", space_id, "data_source_views"],
        )?;
        let body: ViewsBody = self.execute_json(creds, &call).await?;
        Ok(body.data_source_views)
    }

    async fn search_data_source_view(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        view_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>> {
        let mut call = self.get(
            creds,
            "search a data source view",
            "/spaces/{spaceId}/data_source_views/{dsvId}/search",
            &["spaces", space_id, "data_source_views", view_id, "search"],
        )?;
        append_search_query(&mut call.url, query);
        let body: DocumentsBody = self.execute_json(creds, &call).await?;
        Ok(body.documents)
    }

    async fn search_data_source(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>> {
        let mut call = self.get(
            creds,
            "search a data source",
            "/spaces/{spaceId}/data_sources/{dsId}/search",
            &["spaces", space_id, "data_sources", data_source_id, "search"],
        )?;
        append_search_query(&mut call.url, query);
        let body: DocumentsBody = self.execute_json(creds, &call).await?;
        Ok(body.documents)
    }

    async fn search_nodes(
        &self,
        creds: &DustCredentials,
        search: &NodeSearch,
    ) -> Result<NodeSearchResults> {
        let url = self.endpoint(&creds.workspace_id, &["search"])?;
        let call = Call::new("search the workspace", "/search", Method::POST, url).json(search)?;
        self.execute_json(creds, &call).await
    }

    async fn list_documents(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<DocumentPage> {
        let mut call = self.get(
            creds,
            "list documents",
            "/spaces/{spaceId}/data_sources/{dsId}/documents",
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "documents",
            ],
        )?;
        call.url
            .query_pairs_mut()
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        self.execute_json(creds, &call).await
    }

    async fn get_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<Document> {
        let call = self.get(
            creds,
            "get a document",
            DOCUMENT,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "documents",
                document_id,
            ],
        )?;
        let body: DocumentBody = self.execute_json(creds, &call).await?;
        document_from(body, document_id, call.op)
    }

    async fn upsert_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
        document: &UpsertDocument,
    ) -> Result<Document> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "documents",
                document_id,
            ],
        )?;
        let call = Call::new("upsert a document", DOCUMENT, Method::POST, url).json(document)?;
        let body: DocumentBody = self.execute_json(creds, &call).await?;
        document_from(body, document_id, call.op)
    }

    async fn delete_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<()> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "documents",
                document_id,
            ],
        )?;
        let call = Call::new("delete a document", DOCUMENT, Method::DELETE, url);
        self.execute(creds, &call).await.map(drop)
    }

    async fn list_tables(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
    ) -> Result<Vec<Table>> {
        let call = self.get(
            creds,
            "list tables",
            "/spaces/{spaceId}/data_sources/{dsId}/tables",
            &["spaces", space_id, "data_sources", data_source_id, "tables"],
        )?;
        let body: TablesBody = self.execute_json(creds, &call).await?;
        Ok(body.tables)
    }

    async fn get_table(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        table_id: &str,
    ) -> Result<Table> {
        let call = self.get(
            creds,
            "get a table",
            TABLE,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "tables",
                table_id,
            ],
        )?;
        let body: TableBody = self.execute_json(creds, &call).await?;
        Ok(body.table)
    }

    async fn list_table_rows(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        table_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<TableRowPage> {
        let mut call = self.get(
            creds,
            "list table rows",
            ROWS,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "tables",
                table_id,
                "rows",
            ],
        )?;
        call.url
            .query_pairs_mut()
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        self.execute_json(creds, &call).await
    }

    async fn upsert_table_rows(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        table_id: &str,
        rows: &UpsertTableRows,
    ) -> Result<Table> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "tables",
                table_id,
                "rows",
            ],
        )?;
        let call = Call::new("upsert table rows", ROWS, Method::POST, url).json(rows)?;
        let body: TableBody = self.execute_json(creds, &call).await?;
        Ok(body.table)
    }

    async fn delete_table_row(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        table_id: &str,
        row_id: &str,
    ) -> Result<()> {
        let url = self.endpoint(
            &creds.workspace_id,
            &[
                "spaces",
                space_id,
                "data_sources",
                data_source_id,
                "tables",
                table_id,
                "rows",
                row_id,
            ],
        )?;
        let call = Call::new(
            "delete a table row",
            "/spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows/{rId}",
            Method::DELETE,
            url,
        );
        self.execute(creds, &call).await.map(drop)
    }
}

/// The query of both search routes (`DataSourceSearchQuerySchema`).
fn append_search_query(url: &mut url::Url, query: &SearchQuery) {
    let mut pairs = url.query_pairs_mut();
    pairs
        .append_pair("query", &query.query)
        .append_pair("top_k", &query.top_k.to_string());
    // Dust coerces any non-empty `full_text`, "false" included, to true: only an absent
    // parameter means false.
    if query.full_text {
        pairs.append_pair("full_text", "true");
    }
    for tag in &query.tags_in {
        pairs.append_pair("tags_in", tag);
    }
    for tag in &query.tags_not {
        pairs.append_pair("tags_not", tag);
    }
    if let Some(gt) = query.timestamp_gt {
        pairs.append_pair("timestamp_gt", &gt.to_string());
    }
    if let Some(lt) = query.timestamp_lt {
        pairs.append_pair("timestamp_lt", &lt.to_string());
    }
}

/// The answer of `GET /exists`.
#[derive(serde::Deserialize)]
struct ExistsBody {
    exists: bool,
}
