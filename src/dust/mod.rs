//! The upstream: everything this server asks of Dust goes through [`DustApi`].
//!
//! The trait is the seam between the MCP/REST surface and Dust. [`HttpDustClient`] speaks the
//! real REST API (`shared/reference/dust-api.md`); tests swap in the simulator (`crate::sim`) or
//! wiremock behind the same client, or a hand-written mock behind the trait.
//!
//! Credentials travel with every call ([`DustCredentials`]) rather than living in the client:
//! over HTTP each person logs in with their own key, and one shared connection pool serves them
//! all. The key is a [`SecretString`]: it is only exposed to build the `Authorization` header.

mod breaker;
mod calls;
mod client;
mod error;
pub(crate) mod sse;
mod stream;
pub mod types;
mod watch;

use std::fmt;

use async_trait::async_trait;
use futures::stream::BoxStream;
use secrecy::SecretString;

pub use breaker::{
    BreakerSettings, BreakerState, BreakerTransition, CircuitBreaker, TransitionHook,
};
pub use client::{
    ClientOptions, HttpDustClient, MAX_RESPONSE_BYTES, USER_AGENT, install_crypto_provider,
};
pub use error::{DustError, DustErrorKind};
pub use stream::follow_agent_message;
pub use types::*;
pub use watch::{KeyWatch, RejectedKeyHook};

/// Result of a Dust call.
pub type Result<T, E = DustError> = std::result::Result<T, E>;

/// A Dust API key and the workspace it is used against (a key does not name its workspace).
#[derive(Clone)]
pub struct DustCredentials {
    pub workspace_id: String,
    pub api_key: SecretString,
}

impl DustCredentials {
    pub fn new(workspace_id: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            workspace_id: workspace_id.into(),
            api_key: SecretString::from(api_key.into()),
        }
    }
}

impl fmt::Debug for DustCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DustCredentials")
            .field("workspace_id", &self.workspace_id)
            .field("api_key", &"[REDACTED]")
            .finish()
    }
}

/// One connection to an agent message's event stream: the events in order, ending when Dust
/// closes the connection. [`follow_agent_message`] reconnects until a terminal event.
pub type EventStream = BoxStream<'static, Result<AgentEvent>>;

/// The Dust calls this server makes. Each method is one REST call (two for the SSE redirect).
#[async_trait]
pub trait DustApi: Send + Sync + 'static {
    /// Checks that the key is valid for the workspace (`GET /exists`, falling back to
    /// `GET /spaces` on deployments without `/exists`).
    async fn check_key(&self, creds: &DustCredentials) -> Result<()>;

    /// `GET /assistant/agent_configurations`.
    async fn list_agents(&self, creds: &DustCredentials) -> Result<Vec<AgentConfiguration>>;

    /// `GET /assistant/agent_configurations/{sId}`.
    async fn get_agent(
        &self,
        creds: &DustCredentials,
        agent_id: &str,
    ) -> Result<AgentConfiguration>;

    /// `GET /assistant/agent_configurations/search?q=`.
    async fn search_agents(
        &self,
        creds: &DustCredentials,
        query: &str,
    ) -> Result<Vec<AgentConfiguration>>;

    /// `POST /assistant/conversations`. Never retried: a retry could start a second run.
    async fn create_conversation(
        &self,
        creds: &DustCredentials,
        request: &CreateConversation,
    ) -> Result<CreatedConversation>;

    /// `GET /assistant/conversations/{cId}`.
    async fn get_conversation(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
    ) -> Result<Conversation>;

    /// `POST /assistant/conversations/{cId}/messages`. Never retried.
    async fn post_message(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message: &PostMessage,
    ) -> Result<PostedMessage>;

    /// `POST /assistant/conversations/{cId}/cancel` for the given agent messages.
    async fn cancel_messages(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_ids: &[String],
    ) -> Result<()>;

    /// One connection to `GET .../messages/{mId}/events`, resuming after `last_event_id`.
    async fn agent_message_events(
        &self,
        creds: &DustCredentials,
        conversation_id: &str,
        message_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream>;

    /// `GET /spaces`.
    async fn list_spaces(&self, creds: &DustCredentials) -> Result<Vec<Space>>;

    /// `GET /spaces/{spaceId}/data_sources`.
    async fn list_data_sources(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSource>>;

    /// `GET /spaces/{spaceId}/data_source_views`: the views of a space, each with its data
    /// source (how connector content reaches an ordinary space).
    async fn list_data_source_views(
        &self,
        creds: &DustCredentials,
        space_id: &str,
    ) -> Result<Vec<DataSourceView>>;

    /// `GET /spaces/{spaceId}/data_source_views/{dsvId}/search`: the data source search,
    /// restricted to the view's `parentsIn`.
    async fn search_data_source_view(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        view_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>>;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/search`.
    async fn search_data_source(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        query: &SearchQuery,
    ) -> Result<Vec<Document>>;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/documents?limit&offset`.
    async fn list_documents(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        limit: u32,
        offset: u32,
    ) -> Result<DocumentPage>;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`.
    async fn get_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<Document>;

    /// `POST /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`. Never retried, like
    /// every POST: the caller sees Dust's 429 and decides.
    async fn upsert_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
        document: &UpsertDocument,
    ) -> Result<Document>;

    /// `DELETE /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`.
    async fn delete_document(
        &self,
        creds: &DustCredentials,
        space_id: &str,
        data_source_id: &str,
        document_id: &str,
    ) -> Result<()>;
}
