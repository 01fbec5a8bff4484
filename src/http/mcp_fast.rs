//! The list methods on `/mcp` answered from rmcp's own earlier answer (issue 20, item 4):
//! `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list` and
//! `server/discover`.
//!
//! Why: a `tools/list` took about 62 µs of the server's core against 11 µs for a bare route,
//! and most of it was rmcp's stateless per-request machinery (a service, a channel pair,
//! cancellation tokens and a spawned task per request, the message parsed into its model) and
//! serializing the tools' schemas (docs/PERFORMANCE.md, "Ceiling"). Yet the answer depends only
//! on who asks (their permissions and workspace) and how (the protocol era and its headers).
//!
//! How the answer stays rmcp's: nothing here builds an answer. The first request of a kind goes
//! to rmcp as before; its answer's bytes are kept under a key made of everything that answer can
//! depend on but the JSON-RPC `id`, and a later request with the same key gets the same status,
//! headers and body, its own `id` put where rmcp wrote the first one's. The key
//! ([`Lookup::read`]) is:
//! - the caller's permission set and workspace id: the lists filter on the first and the
//!   resource URIs carry the second; these handlers read nothing else of the principal;
//! - the request URI and every header rmcp reads on a POST: `Host` and `Origin` (its
//!   DNS-rebinding checks), `Accept`, `Content-Type`, `MCP-Protocol-Version`, `Mcp-Method` and
//!   `Mcp-Name` (its version and SEP-2243 checks);
//! - the body's bytes with the `id` cut out: the method, the params and their `_meta` (era,
//!   client info and capabilities), down to whitespace and key order.
//!
//! A request that differs from the kept one in anything rmcp looks at is therefore another key,
//! and rmcp answers it. Only a `200` with `Content-Type: application/json` whose body starts
//! `{"jsonrpc":"2.0","id":<that request's id>,"result":` is kept (never an error, never an SSE
//! stream, which a list answer is not in this server's JSON-response mode anyway), and only an
//! `id` that rmcp writes back exactly as it came (an integer in canonical form, a string without
//! escapes) is spliced; any other `id` goes to rmcp.
//!
//! What goes to rmcp unchanged: anything but a POST of `application/json` by an authenticated
//! caller whose body passed [`super::jsonrpc`]'s checks; a body over [`MAX_REQUEST`] bytes; a
//! message with a key beyond `jsonrpc`, `id`, `method` and `params`, or params beyond `_meta`
//! (a pagination `cursor`); any other method; `tools/list` when `DUST_AGENT_TOOLS` makes agents
//! tools (that list follows the caller's own agent list, which changes under the same key); a
//! request carrying `Mcp-Session-Id` or `Last-Event-ID`; a key over [`MAX_KEY`] bytes. Every
//! check above rmcp (the `Host` allow-list, the rate limits, authentication, the JSON-RPC shape
//! checks, the scope challenge, the error envelope, the audit of refusals) runs as before: this
//! sits where rmcp's service sat, under all of them. Listing writes no audit record and calls
//! nothing upstream, so not running rmcp's handler skips no side effect.
//!
//! Invalidation: what a key's answer is made of cannot change while the process runs (the tool
//! table, the prompts, the resources and the server's description are compiled in or set at
//! start; the one list that follows live data is not kept); an upgrade is a new process with an
//! empty cache. Bounded: at most [`MAX_ANSWERS`] answers; a full cache is emptied and refilled by
//! the requests that follow.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    sync::{
        Arc, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use axum::{
    body::{Body, Bytes},
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header, request::Parts},
    response::Response,
};
use http_body::Body as _;
use http_body_util::{BodyExt as _, combinators::BoxBody};
use rmcp::model::RequestId;
use serde::{Deserialize, de::IgnoredAny};
use serde_json::value::RawValue;

use crate::auth::Principal;

/// How many answers are kept: a few permission sets × two eras × five methods × the clients'
/// ways of writing a request, with room to spare. Each is the size of its list (27 KB for every
/// tool), so a full cache holds under 8 MB.
pub const MAX_ANSWERS: usize = 256;

/// Largest request body looked at (a list request with its `_meta` is a few hundred bytes).
pub const MAX_REQUEST: usize = 4 * 1024;

/// Largest key kept (the body without its `id`, the headers in the key, the workspace id).
pub const MAX_KEY: usize = 8 * 1024;

/// Largest answer kept.
const MAX_ANSWER: u64 = 1024 * 1024;

/// The methods whose answer depends only on what the key holds.
const METHODS: [&str; 5] = [
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "server/discover",
];

/// The request headers rmcp reads on a POST (DNS rebinding, media types, version, SEP-2243).
const KEY_HEADERS: [&str; 7] = [
    "host",
    "origin",
    "accept",
    "content-type",
    "mcp-protocol-version",
    "mcp-method",
    "mcp-name",
];

/// How rmcp's JSON-RPC answer begins, before the `id`, and what follows the `id` of a result.
const ANSWER_START: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
const AFTER_ID: &[u8] = br#","result":"#;

/// The body of a `POST /mcp` as [`super::jsonrpc::check`] read and accepted it (request
/// extension), so the fast path reads it without reading the body a second time.
#[derive(Clone)]
pub(crate) struct CheckedBody(pub(crate) Bytes);

/// rmcp's answers to the list methods, kept per key (module docs). One per server.
#[derive(Debug, Default)]
pub struct ListAnswers {
    answers: RwLock<HashMap<Box<[u8]>, Arc<Answer>>>,
    /// Tests turn the fast path off to get rmcp's own answers.
    disabled: AtomicBool,
    /// Answers served from the cache (tests read it).
    hits: AtomicU64,
}

/// One kept answer: rmcp's status, headers and body, and where the `id` sits in the body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    id_start: usize,
    id_end: usize,
}

impl Answer {
    /// rmcp's answer with `id` (canonical JSON, see [`Lookup::read`]) in place of the kept one's.
    fn response(&self, id: &[u8]) -> Response {
        let mut body = Vec::with_capacity(self.body.len() + id.len());
        body.extend_from_slice(&self.body[..self.id_start]);
        body.extend_from_slice(id);
        body.extend_from_slice(&self.body[self.id_end..]);
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

impl ListAnswers {
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers `request` from the cache, or lets `rmcp` answer it (and keeps the answer when
    /// its key allows). `agent_tools`: whether `DUST_AGENT_TOOLS` makes agents tools.
    pub(crate) async fn answer<F, Fut>(
        &self,
        mut request: Request,
        agent_tools: bool,
        rmcp: F,
    ) -> Response
    where
        F: FnOnce(Request) -> Fut,
        Fut: Future<Output = Response<BoxBody<Bytes, Infallible>>>,
    {
        // Taken off in every case: a long tool call keeps its `Parts`, not the body's bytes.
        let checked = request.extensions_mut().remove::<CheckedBody>();
        let lookup = match checked {
            Some(CheckedBody(body)) if !self.disabled.load(Ordering::Relaxed) => {
                let (parts, body_stream) = request.into_parts();
                let lookup = Lookup::read(&parts, &body, agent_tools);
                request = Request::from_parts(parts, body_stream);
                lookup.map(|lookup| (lookup, body))
            }
            _ => None,
        };
        let Some((lookup, body)) = lookup else {
            return rmcp(request).await.map(Body::new);
        };
        let kept = self
            .answers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(lookup.key.as_slice())
            .cloned();
        let id = &body[lookup.id_start..lookup.id_end];
        if let Some(answer) = kept {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return answer.response(id);
        }
        let response = rmcp(request).await;
        self.keep(lookup.key, id, response).await
    }

    /// Keeps rmcp's `response` to the request with `key` and `id` when it is a JSON result
    /// (module docs), and returns it unchanged.
    async fn keep(
        &self,
        key: Vec<u8>,
        id: &[u8],
        response: Response<BoxBody<Bytes, Infallible>>,
    ) -> Response {
        let json_result = response.status() == StatusCode::OK
            && response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == b"application/json")
            && response
                .body()
                .size_hint()
                .exact()
                .is_some_and(|n| n <= MAX_ANSWER);
        if !json_result {
            return response.map(Body::new);
        }
        let (parts, body) = response.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let id_start = ANSWER_START.len();
        let id_end = id_start + id.len();
        let well_formed = bytes.starts_with(ANSWER_START)
            && bytes.get(id_start..id_end) == Some(id)
            && bytes[id_end..].starts_with(AFTER_ID);
        if well_formed {
            let answer = Arc::new(Answer {
                status: parts.status,
                headers: parts.headers.clone(),
                body: bytes.clone(),
                id_start,
                id_end,
            });
            let mut answers = self.answers.write().unwrap_or_else(PoisonError::into_inner);
            if answers.len() >= MAX_ANSWERS {
                answers.clear();
            }
            answers.insert(key.into_boxed_slice(), answer);
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    /// Turns the fast path off (`false`) or back on: a test gets rmcp's own answers this way.
    #[cfg(any(test, feature = "test-support"))]
    pub fn set_enabled(&self, enabled: bool) {
        self.disabled.store(!enabled, Ordering::Relaxed);
    }

    /// How many answers came from the cache, and how many answers it holds.
    #[cfg(any(test, feature = "test-support"))]
    pub fn stats(&self) -> (u64, usize) {
        let held = self
            .answers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        (self.hits.load(Ordering::Relaxed), held)
    }
}

/// A list request that may be answered from the cache: its key, and where its `id` sits in the
/// body.
#[derive(Debug)]
struct Lookup {
    key: Vec<u8>,
    id_start: usize,
    id_end: usize,
}

/// A message as the fast path accepts it: these four members, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope<'a> {
    jsonrpc: &'a str,
    #[serde(borrow)]
    id: &'a RawValue,
    method: &'a str,
    /// Read only to refuse what it may not hold.
    #[serde(default, rename = "params")]
    _params: Option<Params>,
}

/// A list request's params as the fast path accepts them: `_meta` at most (no `cursor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(rename = "_meta", default)]
    _meta: Option<IgnoredAny>,
}

impl Lookup {
    /// The key of a request (module docs), or `None` when rmcp must answer it.
    fn read(parts: &Parts, body: &[u8], agent_tools: bool) -> Option<Self> {
        let is_json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"application/json"));
        if parts.method != Method::POST
            || !is_json
            || body.len() > MAX_REQUEST
            || parts.headers.contains_key("mcp-session-id")
            || parts.headers.contains_key("last-event-id")
        {
            return None;
        }
        let principal = parts.extensions.get::<Arc<Principal>>()?;
        let envelope: Envelope<'_> = serde_json::from_slice(body).ok()?;
        let wanted = envelope.jsonrpc == "2.0"
            && METHODS.contains(&envelope.method)
            && !(agent_tools && envelope.method == "tools/list");
        if !wanted {
            return None;
        }
        // rmcp reads the id into a `RequestId` and writes that back: splice only an id that
        // comes back byte for byte (`1`, `"a"`; not `1.0`, `"\u0041"`).
        let id = envelope.id.get();
        let written = serde_json::to_string(&serde_json::from_str::<RequestId>(id).ok()?).ok()?;
        if written != id {
            return None;
        }
        // `id` borrows from `body` (no escapes in a canonical id): its offset there.
        let id_start = (id.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
        let id_end = id_start + id.len();
        if body.get(id_start..id_end) != Some(id.as_bytes()) {
            return None;
        }

        let mut key = Vec::with_capacity(body.len() + 256);
        push(&mut key, &principal.permissions.bits().to_le_bytes());
        push(&mut key, principal.workspace_id.as_bytes());
        push(
            &mut key,
            parts.uri.authority().map_or("", |a| a.as_str()).as_bytes(),
        );
        push(
            &mut key,
            parts
                .uri
                .path_and_query()
                .map_or("", |p| p.as_str())
                .as_bytes(),
        );
        for name in KEY_HEADERS {
            for value in parts.headers.get_all(name) {
                key.push(1);
                push(&mut key, value.as_bytes());
            }
            key.push(0);
        }
        push(&mut key, &body[..id_start]);
        push(&mut key, &body[id_end..]);
        (key.len() <= MAX_KEY).then_some(Self {
            key,
            id_start,
            id_end,
        })
    }
}

/// Appends `part` to `key`, length first, so that no two sequences of parts make the same key.
fn push(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&part.len().to_le_bytes());
    key.extend_from_slice(part);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{dust::DustCredentials, permissions::PermissionSet};

    fn principal(permissions: PermissionSet) -> Arc<Principal> {
        Arc::new(Principal {
            user_id: "usr_test".into(),
            username: "test".into(),
            email: None,
            full_name: None,
            workspace_id: "ws".into(),
            permissions,
            token_id: None,
            credentials: DustCredentials::new("ws", "sk-test"),
        })
    }

    fn parts(headers: &[(&str, &str)], permissions: PermissionSet) -> Parts {
        let mut builder = Request::builder().method(Method::POST).uri("/mcp");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let (mut parts, ()) = builder.body(()).unwrap().into_parts();
        parts.extensions.insert(principal(permissions));
        parts
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    fn read(body: &str) -> Option<Lookup> {
        Lookup::read(
            &parts(&[JSON], PermissionSet::all()),
            body.as_bytes(),
            false,
        )
    }

    #[test]
    fn the_key_is_the_request_without_its_id() {
        let one = read(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).unwrap();
        let other = read(r#"{"jsonrpc":"2.0","id":"x-9","method":"tools/list"}"#).unwrap();
        assert_eq!(one.key, other.key);
        assert_eq!((one.id_start, one.id_end), (22, 23));
        let spaced = read(r#"{"jsonrpc":"2.0","id":1, "method":"tools/list"}"#).unwrap();
        assert_ne!(one.key, spaced.key, "any other byte is another key");
        let prompts = read(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#).unwrap();
        assert_ne!(one.key, prompts.key);
    }

    #[test]
    fn the_key_holds_the_permissions_and_the_headers_rmcp_reads() {
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
        let key = |headers: &[(&str, &str)], permissions| {
            Lookup::read(&parts(headers, permissions), body, false)
                .unwrap()
                .key
        };
        let all = PermissionSet::all();
        let base = key(&[JSON], all);
        assert_ne!(base, key(&[JSON], PermissionSet::DEFAULT));
        for header in [
            ("host", "a"),
            ("origin", "http://a"),
            ("accept", "application/json"),
            ("mcp-protocol-version", "2025-11-25"),
            ("mcp-method", "tools/list"),
            ("mcp-name", "x"),
        ] {
            assert_ne!(base, key(&[JSON, header], all), "{header:?}");
        }
        assert_eq!(base, key(&[JSON, ("user-agent", "x")], all));
    }

    #[test]
    fn anything_unusual_goes_to_rmcp() {
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"c"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","extra":true}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1.0,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":"\u0041","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/list"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
        ] {
            assert!(read(body).is_none(), "{body}");
        }
        let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
        let all = PermissionSet::all();
        assert!(Lookup::read(&parts(&[JSON], all), list, true).is_none());
        assert!(Lookup::read(&parts(&[], all), list, false).is_none());
        for header in [("mcp-session-id", "s"), ("last-event-id", "1")] {
            assert!(Lookup::read(&parts(&[JSON, header], all), list, false).is_none());
        }
        let mut anonymous = parts(&[JSON], all);
        anonymous.extensions.remove::<Arc<Principal>>();
        assert!(Lookup::read(&anonymous, list, false).is_none());
    }

    #[test]
    fn an_answer_takes_the_new_id() {
        let body = Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}"#);
        let answer = Answer {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
            id_start: 22,
            id_end: 23,
        };
        let response = answer.response(br#""req-7""#);
        let bytes =
            futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1024)).unwrap();
        assert_eq!(
            &bytes[..],
            br#"{"jsonrpc":"2.0","id":"req-7","result":{"tools":[]}}"#
        );
    }
}
