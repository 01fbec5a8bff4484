//! Noticing a key that Dust stopped accepting.
//!
//! A token outlives the check made at login: the workspace admin may revoke the key, or cap it,
//! an hour before the token expires. [`KeyWatch`] wraps any [`DustApi`] and calls a hook
//! whenever Dust answers 401 for a key, so the HTTP server can revoke every token holding that
//! key at once (catalogue J19) instead of forwarding refused calls until the tokens expire.

use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AgentConfiguration, Conversation, CreateConversation, CreatedConversation, DataSource,
    DataSourceView, Document, DocumentPage, DustApi, DustCredentials, DustErrorKind, EventStream,
    PostMessage, PostedMessage, Result, SearchQuery, Space, UpsertDocument,
};

/// Called with the credentials Dust refused.
pub type RejectedKeyHook = Arc<dyn Fn(&DustCredentials) + Send + Sync>;

/// A [`DustApi`] that reports refused keys to a hook.
pub struct KeyWatch {
    inner: Arc<dyn DustApi>,
    on_rejected: RejectedKeyHook,
}

impl std::fmt::Debug for KeyWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyWatch").finish_non_exhaustive()
    }
}

impl KeyWatch {
    pub fn new(inner: Arc<dyn DustApi>, on_rejected: RejectedKeyHook) -> Self {
        Self { inner, on_rejected }
    }

    fn watch<T>(&self, creds: &DustCredentials, result: Result<T>) -> Result<T> {
        if let Err(error) = &result
            && error.kind == DustErrorKind::Unauthorized
        {
            (self.on_rejected)(creds);
        }
        result
    }
}

/// Delegates one call to the inner client and watches its result.
macro_rules! watched {
    ($self:ident, $creds:ident, $call:ident($($arg:expr),*)) => {{
        let result = $self.inner.$call($creds $(, $arg)*).await;
        $self.watch($creds, result)
    }};
}

#[async_trait]
impl DustApi for KeyWatch {
    async fn check_key(&self, creds: &DustCredentials) -> Result<()> {
        // Login's own check: its refusal is the login's business, no token exists yet.
        self.inner.check_key(creds).await
    }

    async fn list_agents(&self, creds: &DustCredentials) -> Result<Vec<AgentConfiguration>> {
        watched!(self, creds, list_agents())
    }

    async fn get_agent(
        &self,
        creds: &DustCredentials,
        agent_id: &str,
    ) -> Result<AgentConfiguration> {
        watched!(self, creds, get_agent(agent_id))
    }

    async fn search_agents(
        &self,
        creds: &DustCredentials,
        query: &str,
    ) -> Result<Vec<AgentConfiguration>> {
        watched!(self, creds, search_agents(query))
    }

    async fn create_conversation(
        &self,
        creds: &DustCredentials,
        request: &CreateConversation,
    ) -> Result<CreatedConversation> {
        watched!(self, creds, create_conversation(request))
    }

    async fn get_conversation(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
    ) -> Result<Conversation> {
        watched!(self, creds, get_conversation(conversation_id))
    }

    async fn post_message(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message: &PostMessage,
    ) -> Result<PostedMessage> {
        watched!(self, creds, post_message(conversation_id, message))
    }

    async fn cancel_messages(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_ids: &[String],
    ) -> Result<()> {
        watched!(self, creds, cancel_messages(conversation_id, message_ids))
    }

    async fn agent_message_events(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream> {
        watched!(
            self,
            creds,
            agent_message_events(conversation_id, message_id, last_event_id)
        )
    }

    async fn list_spaces(&self, creds: &DustCredentials) -> Result<Vec<Space>> {
        watched!(self, creds, list_spaces())
    }

    async fn list_data_sources(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSource>> {
        watched!(self, creds, list_data_sources(space_id))
    }

    async fn list_data_source_views(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSourceView>> {
        watched!(self, creds, list_data_source_views(space_id))
    }

    async fn search_data_source_view(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        view_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>> {
        watched!(
            self,
            creds,
            search_data_source_view(space_id, view_id, query)
        )
    }

    async fn search_data_source(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>> {
        watched!(
            self,
            creds,
            search_data_source(space_id, data_source_id, query)
        )
    }

    async fn list_documents(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<DocumentPage> {
        watched!(
            self,
            creds,
            list_documents(space_id, data_source_id, limit, offset)
        )
    }

    async fn get_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<Document> {
        watched!(
            self,
            creds,
            get_document(space_id, data_source_id, document_id)
        )
    }

    async fn upsert_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
        document: &UpsertDocument,
    ) -> Result<Document> {
        watched!(
            self,
            creds,
            upsert_document(space_id, data_source_id, document_id, document)
        )
    }

    async fn delete_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<()> {
        watched!(
            self,
            creds,
            delete_document(space_id, data_source_id, document_id)
        )
    }
}
