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
mod intercept;
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
pub use intercept::{Intercepted, Interceptor};
pub use stream::{follow_agent_message, follow_agent_message_after};
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

/// Declares [`DustApi`] and its one delegating implementation, [`Intercepted`], from one list of
/// calls: every method takes `&self` and the caller's credentials, then its own arguments.
macro_rules! dust_api {
    ($(
        $(#[$doc:meta])*
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
    )*) => {
        /// The Dust calls this server makes. Each method is one REST call (two for the SSE
        /// redirect).
        #[async_trait]
        pub trait DustApi: Send + Sync + 'static {
            $(
                $(#[$doc])*
                async fn $name(&self, creds: &DustCredentials $(, $arg: $ty)*) -> Result<$ret>;
            )*
        }

        #[async_trait]
        impl<I: Interceptor> DustApi for Intercepted<I> {
            $(
                async fn $name(&self, creds: &DustCredentials $(, $arg: $ty)*) -> Result<$ret> {
                    let call = self.inner().$name(creds $(, $arg)*);
                    self.intercept(creds, stringify!($name), call).await
                }
            )*
        }
    };
}

dust_api! {
    /// Checks that the key is valid for the workspace (`GET /exists`, falling back to
    /// `GET /spaces` on deployments without `/exists`).
    fn check_key() -> ();

    /// `GET /assistant/agent_configurations`.
    fn list_agents() -> Vec<AgentConfiguration>;

    /// `GET /assistant/agent_configurations/{sId}`.
    fn get_agent(agent_id: &str) -> AgentConfiguration;

    /// `GET /assistant/agent_configurations/search?q=`.
    fn search_agents(query: &str) -> Vec<AgentConfiguration>;

    /// `POST /assistant/conversations`. Never retried: a retry could start a second run.
    fn create_conversation(request: &CreateConversation) -> CreatedConversation;

    /// `GET /assistant/conversations/{cId}`.
    fn get_conversation(conversation_id: &str) -> Conversation;

    /// `POST /assistant/conversations/{cId}/messages`. Never retried.
    fn post_message(conversation_id: &str, message: &PostMessage) -> PostedMessage;

    /// `POST /assistant/conversations/{cId}/content_fragments`: attaches text or an uploaded
    /// file to the conversation, before the next message. Never retried.
    fn post_content_fragment(conversation_id: &str, fragment: &NewContentFragment) -> ContentFragment;

    /// `POST /files`: the first step of an upload, a file for a conversation to put bytes in.
    /// Never retried.
    fn create_file(file: &NewFile) -> DustFile;

    /// `POST {uploadUrl}` of `file` (on Dust's own origin only): its bytes as
    /// `multipart/form-data`, field `file`. The answer is the file, `ready`. Never retried.
    fn upload_file(file: &DustFile, data: &[u8]) -> DustFile;

    /// `POST /assistant/conversations/{cId}/cancel` for the given agent messages.
    fn cancel_messages(conversation_id: &str, message_ids: &[String]) -> ();

    /// `GET /assistant/conversations/{cId}/actions/blocked`: what the conversation's runs wait on.
    fn blocked_actions(conversation_id: &str) -> Vec<PendingAction>;

    /// `POST .../messages/{mId}/validate-action`: a person's answer to a tool approval. Never
    /// retried.
    fn validate_action(
        conversation_id: &str,
        message_id: &str,
        action_id: &str,
        decision: ActionDecision,
    ) -> ();

    /// `POST .../messages/{mId}/answer-question`: a person's answer to an agent's question.
    /// Never retried.
    fn answer_question(
        conversation_id: &str,
        message_id: &str,
        action_id: &str,
        answer: &QuestionAnswer,
    ) -> ();

    /// One connection to `GET .../messages/{mId}/events`, resuming after `last_event_id`.
    fn agent_message_events(conversation_id: &str, message_id: &str, last_event_id: Option<&str>) -> EventStream;

    /// `GET /spaces`.
    fn list_spaces() -> Vec<Space>;

    /// `GET /spaces/{spaceId}/data_sources`.
    fn list_data_sources(space_id: &str) -> Vec<DataSource>;

    /// `GET /spaces/{spaceId}/data_source_views`: the views of a space, each with its data
    /// source (how connector content reaches an ordinary space).
    fn list_data_source_views(space_id: &str) -> Vec<DataSourceView>;

    /// `GET /spaces/{spaceId}/data_source_views/{dsvId}/search`: the data source search,
    /// restricted to the view's `parentsIn`.
    fn search_data_source_view(space_id: &str, view_id: &str, query: &SearchQuery) -> Vec<Document>;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/search`.
    fn search_data_source(space_id: &str, data_source_id: &str, query: &SearchQuery) -> Vec<Document>;

    /// `POST /search`: nodes (documents, tables, folders) whose title matches, in the listed
    /// spaces, through their data source views.
    fn search_nodes(search: &NodeSearch) -> NodeSearchResults;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/documents?limit&offset`.
    fn list_documents(space_id: &str, data_source_id: &str, limit: u32, offset: u32) -> DocumentPage;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`.
    fn get_document(space_id: &str, data_source_id: &str, document_id: &str) -> Document;

    /// `POST /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`. Never retried, like
    /// every POST: the caller sees Dust's 429 and decides.
    fn upsert_document(space_id: &str, data_source_id: &str, document_id: &str, document: &UpsertDocument) -> Document;

    /// `DELETE /spaces/{spaceId}/data_sources/{dsId}/documents/{documentId}`.
    fn delete_document(space_id: &str, data_source_id: &str, document_id: &str) -> ();

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/tables`.
    fn list_tables(space_id: &str, data_source_id: &str) -> Vec<Table>;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}`.
    fn get_table(space_id: &str, data_source_id: &str, table_id: &str) -> Table;

    /// `GET /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows?limit&offset`.
    fn list_table_rows(space_id: &str, data_source_id: &str, table_id: &str, limit: u32, offset: u32) -> TableRowPage;

    /// `POST /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows`: adds or replaces rows
    /// by `row_id`, answering the table with its new schema. Never retried.
    fn upsert_table_rows(space_id: &str, data_source_id: &str, table_id: &str, rows: &UpsertTableRows) -> Table;

    /// `DELETE /spaces/{spaceId}/data_sources/{dsId}/tables/{tId}/rows/{rId}`.
    fn delete_table_row(space_id: &str, data_source_id: &str, table_id: &str, row_id: &str) -> ();
}
