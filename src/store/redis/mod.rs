//! The Redis backend of every state store, so that several instances behind a load balancer act
//! as one (catalogue §6 decision 6): token records and revocations, rate-limit counters, login
//! lockout counters, conversation ownership and browser sessions.
//!
//! One [`RedisStore`] implements each store trait over one connection: a [`ConnectionManager`]
//! to one server, or with `REDIS_CLUSTER=true` the async [`ClusterConnection`] to a Redis
//! Cluster (seeded by the nodes of `REDIS_URL`, it learns the slot map, follows `MOVED` and
//! `ASK` and reconnects). Both are multiplexed and reconnect by themselves, and both are
//! behind one [`ConnectionLike`] (`Connection`), so every command here runs on either. Every
//! command runs under a deadline (`REDIS_TIMEOUT_MS`), so a stalled or stopped Redis turns
//! into a [`StoreError`] within it; callers then fail closed (503 `store_unavailable`, `/ready`
//! 503) and nothing is served on a guess. When Redis is back, the next command reconnects: no
//! restart of the server is needed.
//!
//! The Redis that clouds sell speaks TLS and gives the application an ACL user:
//! `rediss://user:password@host:port/db` connects with rustls (the ring provider the Dust
//! client installs; no OpenSSL), verifying the server's certificate against the system roots or
//! the CA file of `REDIS_TLS_CA_FILE`, never not at all (`#insecure` is refused); the same for
//! every node of a cluster. The URL is a secret: no message or `Debug` here contains it. A
//! refused certificate is a configuration mistake that waiting does not fix, so `serve` checks
//! it once at start ([`RedisStore::check_tls`]) instead of answering 503 on every request.
//!
//! Every read-modify-write is one Lua script (atomic on the server, so N instances cannot race
//! past a limit); scripts are sent by hash and re-loaded by the client after a Redis restart
//! empties the script cache.
//!
//! # Slots
//!
//! A Redis Cluster splits keys into 16384 slots by a hash of the key name, or only of its hash
//! tag (the part between the first `{` and the next `}`) when it has one; a script, an `MGET` or
//! a `MULTI` may only touch keys of one slot. So every key here carries a tag
//! (`<prefix><kind>:{<tag>}[:<rest>]`), chosen so that what one script touches is in one slot
//! and the rest spreads:
//!
//! - per record (`{<token_id>}`, `{<session key>}`, `{<workspace>:<conversation_id>}`, a
//!   counter's own key): a record found by its id alone is in a slot of its own, so the
//!   per-request hot path (token, rate-limit and lockout counters, session) spreads over every
//!   node;
//! - per person (`{<workspace>:<user_id>}`): their token, conversation and session indexes and
//!   OAuth grants, together;
//! - the session cap's global set (`sess-all:{all}`), on one node, written by every session
//!   insert, touch and removal (one `ZADD` each): a cap over all sessions is one key;
//! - two OAuth groups in one slot each, `{oauth-clients}` and `{oauth-refresh}`, because their
//!   scripts must find keys that are only known inside the script (the `oauth` module says
//!   why); both are low-rate.
//!
//! Where a record and an index are in two slots (a token and its user's index, a session, its
//! user's index and the cap), the operation is two or three single-slot commands sent together
//! over the multiplexed connection (no extra round trip), in an order whose partial failure is
//! harmless; each module says which. A single server gets the same keys and the same commands:
//! hash tags mean nothing to it, so there is one layout and one code path.
//!
//! The tags came with Redis Cluster support: state written by an earlier version (whose keys had
//! no tags) is not found after the upgrade, so people log in again; the old keys expire by
//! their own TTLs.
//!
//! Key layout (all under `REDIS_KEY_PREFIX`, default `mcp-dust:`, which with `REDIS_CLUSTER`
//! may not hold a brace; variable parts are percent-encoded, so no id can reach into another
//! key or make a tag of its own):
//!
//! | key | type | lifetime |
//! |---|---|---|
//! | `tok:{<token_id>}` | hash `record` (JSON, Dust key sealed) + `revoked_at` | until the token expires |
//! | `user-tokens:{<workspace>:<user_id>}` | sorted set of token ids by expiry | the newest token's expiry |
//! | `rl:{<bucket>:<key>}` | hash `c` count, `r` window end (ms) | the window |
//! | `lockout:{ip:<ip>}`, `lockout:{key:<usr_…>}` | hash `f` failures, `t` last failure (ms) | window or backoff after the last failure |
//! | `conv:{<workspace>:<conversation_id>}` | JSON record | [`CONVERSATION_RETENTION`] |
//! | `user-convs:{<workspace>:<user_id>}` | sorted set of conversation ids by creation | [`CONVERSATION_RETENTION`] |
//! | `sess:{<session key>}` | hash of the session record (no id, no secret) | the session's idle expiry, never past its absolute one |
//! | `user-sess:{<workspace>:<user_id>}` | sorted set of session keys by creation | the longest absolute session deadline |
//! | `sess-all:{all}` | sorted set of every session key by expiry (the store-size cap) | the longest absolute session deadline |
//! | `oauth-client:{oauth-clients}:…`, `oauth-unused:{oauth-clients}`, `oauth-rt:{oauth-refresh}:…`, `oauth-fam:{oauth-refresh}:…`, `oauth-pending:{…}`, `oauth-state:{…}`, `oauth-code:{…}`, `oauth-grants:{<workspace>:<user_id>}` | the OAuth server's records (`oauth` module) | each record's own end |
//!
//! Nothing secret is stored in clear: the Dust key is in the token record only as AEAD
//! ciphertext bound to the token id (`auth::tokens::KeyCipher`); no JWT is stored at all.
//!
//! No backend here reads a clock: every expiry is decided at the `now` the caller passes (the
//! application's clock), as in memory. Redis TTLs only let Redis forget what has expired.

mod conversations;
mod counters;
mod failures;
mod oauth;
mod sessions;
mod tokens;

use std::{fmt, future::Future, time::Duration};

use redis::{
    Client, Cmd, ErrorKind, Pipeline, RedisFuture, RedisResult, TlsCertificates, Value,
    aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use secrecy::{ExposeSecret, SecretString};
use tracing::{Instrument, field::Empty};

use super::StoreError;
use crate::config::Config;

/// The default prefix of every key (`REDIS_KEY_PREFIX`).
pub const DEFAULT_KEY_PREFIX: &str = "mcp-dust:";

/// How long a conversation's ownership is remembered after it was started. Past it, the owner
/// gets "not found" like anyone else (the in-memory store forgets it at the next restart).
pub const CONVERSATION_RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// The connection of a [`RedisStore`]: one server, or a Redis Cluster. Both are multiplexed
/// (a clone shares the connections, commands from many tasks run concurrently) and reconnect
/// by themselves; the cluster one also follows the slot map (`MOVED`, `ASK`, a failover).
/// Being one [`ConnectionLike`], every command and script of the backend runs on either.
#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

/// The state stores on one Redis server (or one logical database of it), or on a Redis
/// Cluster.
#[derive(Clone)]
pub struct RedisStore {
    conn: Connection,
    /// Whether the URL is `rediss://`.
    tls: bool,
    /// A cluster's seed nodes, each as one server, for [`RedisStore::check_tls`]: the cluster
    /// connection reports a refused certificate only as "no connection to the node".
    seeds: Vec<Client>,
    prefix: String,
    timeout: Duration,
    /// Most browser sessions held (`with_session_capacity`).
    session_capacity: usize,
    /// Most unused OAuth clients held (`with_unused_client_capacity`).
    oauth_unused_capacity: usize,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .field("cluster", &matches!(self.conn, Connection::Cluster(_)))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` for TLS with
    /// the system roots). Connects lazily: the server starts even while Redis is down, and
    /// reports it on `/ready` until it is up.
    ///
    /// # Errors
    /// See [`RedisStore::open_with_ca`].
    pub fn open(url: &SecretString, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        Self::open_with_ca(url, prefix, timeout, None)
    }

    /// The store `config` asks for: `REDIS_URL` (Redis Cluster seed nodes with
    /// `REDIS_CLUSTER=true`), its prefix and deadline, and the CA of `REDIS_TLS_CA_FILE` when
    /// set. `None` when `REDIS_URL` is unset.
    ///
    /// # Errors
    /// See [`RedisStore::open_with_ca`] and [`RedisStore::open_cluster_with_ca`]; also an
    /// unreadable `REDIS_TLS_CA_FILE`.
    pub fn from_config(config: &Config) -> Result<Option<Self>, StoreError> {
        let Some(url) = &config.redis_url else {
            return Ok(None);
        };
        let ca =
            match &config.redis_tls_ca_file {
                Some(path) => Some(std::fs::read(path).map_err(|e| {
                    StoreError(format!("REDIS_TLS_CA_FILE: cannot read {path}: {e}"))
                })?),
                None => None,
            };
        let open = if config.redis_cluster {
            Self::open_cluster_with_ca
        } else {
            Self::open_with_ca
        };
        open(
            url,
            &config.redis_key_prefix,
            config.redis_timeout,
            ca.as_deref(),
        )
        .map(Some)
    }

    /// A store on `url`; with `rediss://`, the server certificate is verified against `ca_pem`
    /// (PEM CA certificates) when given, the system roots otherwise. Verification cannot be
    /// turned off.
    ///
    /// # Errors
    /// An unparsable URL; `rediss://…#insecure` (no verification); a CA that is not PEM
    /// certificates, or a CA with a `redis://` URL (it would be ignored: plain text). The
    /// message never contains the URL, which may hold a password.
    pub fn open_with_ca(
        url: &SecretString,
        prefix: &str,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        let url = url.expose_secret();
        let client = client(url, ca_pem)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            // Few, quick reconnection attempts per outage: each request fails fast while Redis
            // is down, and the next request after that starts a new attempt.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError(format!("redis: {}", describe(&e))))?;
        Ok(Self::on(
            Connection::Single(conn),
            url.starts_with("rediss://"),
            prefix,
            timeout,
        ))
    }

    /// A store on the Redis Cluster that `urls` (comma-separated seed nodes: the same scheme
    /// and credentials each, a comma inside a password percent-encoded as `%2C`) belong to. The
    /// rest of the cluster is found from them (`CLUSTER SLOTS`), and followed as slots move.
    /// TLS and its CA as in [`RedisStore::open_with_ca`], for every node. Connects lazily, like
    /// the single-server store.
    ///
    /// # Errors
    /// As [`RedisStore::open_with_ca`], for any seed; seeds that mix `redis://` and
    /// `rediss://`, or differ in credentials; a `prefix` with `{` or `}` (it would take over the
    /// hash tags that keep related keys in one slot). No message contains a URL.
    pub fn open_cluster_with_ca(
        urls: &SecretString,
        prefix: &str,
        timeout: Duration,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, StoreError> {
        if prefix.contains(['{', '}']) {
            return Err(StoreError(
                "REDIS_KEY_PREFIX: with REDIS_CLUSTER, the prefix cannot contain { or } (Redis would hash it instead of the keys' own tags)".into(),
            ));
        }
        let seeds: Vec<&str> = urls
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let Some(first) = seeds.first() else {
            return Err(StoreError("REDIS_URL names no Redis Cluster node".into()));
        };
        let tls = first.starts_with("rediss://");
        for seed in &seeds {
            if seed.starts_with("rediss://") != tls {
                return Err(StoreError(
                    "REDIS_URL: the Redis Cluster seed nodes mix redis:// and rediss://".into(),
                ));
            }
        }
        // The same checks as one server's URL (scheme, `#insecure`, the CA).
        let probes = seeds
            .iter()
            .map(|seed| client(seed, ca_pem))
            .collect::<Result<Vec<_>, _>>()?;
        let mut builder = ClusterClientBuilder::new(seeds)
            .tcp_settings(tcp_settings())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            // A redirection (`MOVED`, `ASK`) or a lost node costs a retry; a few quick ones
            // follow a failover, and the deadline of `run` bounds them all.
            .retries(3)
            .min_retry_wait(10)
            .max_retry_wait(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        if tls {
            builder = builder.certs(TlsCertificates {
                client_tls: None,
                root_cert: ca_pem.map(<[u8]>::to_vec),
            });
        }
        let client: ClusterClient = builder.build().map_err(|e| match e.kind() {
            ErrorKind::InvalidClientConfig if ca_pem.is_some() => StoreError(
                "REDIS_TLS_CA_FILE: its certificates are not usable as trust anchors".into(),
            ),
            _ => StoreError(
                "REDIS_URL: the Redis Cluster seed nodes are not valid URLs with the same credentials".into(),
            ),
        })?;
        let config = ClusterConfig::new()
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        let conn = client.get_pending_async_connection_with_config(config);
        let mut store = Self::on(Connection::Cluster(conn), tls, prefix, timeout);
        store.seeds = probes;
        Ok(store)
    }

    fn on(conn: Connection, tls: bool, prefix: &str, timeout: Duration) -> Self {
        Self {
            conn,
            tls,
            seeds: Vec::new(),
            prefix: prefix.to_owned(),
            timeout,
            session_capacity: super::sessions::MAX_SESSIONS,
            oauth_unused_capacity: super::oauth::MAX_UNUSED_CLIENTS,
        }
    }

    /// `PING`: whether Redis answers within the deadline.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.run(async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(|_| ())
    }

    /// At start-up: a `PING` that fails only when Redis's TLS certificate is refused (a wrong
    /// or missing `REDIS_TLS_CA_FILE`, a wrong host name), a mistake that no waiting fixes and
    /// that would otherwise only show as 503s. An unreachable Redis passes: the server starts
    /// and recovers when Redis is back. Without TLS, there is nothing to check: no wait.
    ///
    /// A cluster's seed nodes are each checked as one server (the cluster connection does not
    /// say why it has no connection to a node); the nodes found from them are reached at the
    /// addresses the cluster announces, which this cannot check before they are known.
    ///
    /// # Errors
    /// The certificate refusal, in rustls's words (no URL).
    pub async fn check_tls(&self) -> Result<(), StoreError> {
        if !self.tls {
            return Ok(());
        }
        let refused = |outcome: Result<RedisResult<String>, _>| match outcome {
            Ok(Err(e)) if tls_failure(&e).is_some() => {
                Err(StoreError(format!("redis: {}", describe(&e))))
            }
            _ => Ok(()),
        };
        if self.seeds.is_empty() {
            let mut conn = self.conn.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut conn);
            return refused(tokio::time::timeout(self.timeout, ping).await);
        }
        for seed in &self.seeds {
            let ping = async {
                let mut conn = seed.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            refused(tokio::time::timeout(self.timeout, ping).await)?;
        }
        Ok(())
    }

    /// The full key `<prefix><kind>:{<tag>}[:<rest>…]`: the `tag` parts, joined by `:`, are the
    /// hash tag (Redis Cluster hashes only what is between the braces, so keys with one tag
    /// share a slot), then the `rest` parts. Every part is percent-encoded, so no id holds a
    /// brace or a separator that would move it into another key or slot.
    fn key(&self, kind: &str, tag: &[&str], rest: &[&str]) -> String {
        let encoded = |parts: &[&str]| -> Vec<String> {
            parts
                .iter()
                .map(|p| urlencoding::encode(p).into_owned())
                .collect()
        };
        let mut key = format!("{}{kind}:{{{}}}", self.prefix, encoded(tag).join(":"));
        for part in encoded(rest) {
            key.push(':');
            key.push_str(&part);
        }
        key
    }

    /// A connection handle (cheap: the multiplexed connection is shared).
    fn conn(&self) -> Connection {
        self.conn.clone()
    }

    /// Runs one Redis operation under the deadline, mapping every failure to [`StoreError`].
    ///
    /// Each round trip has a trace span (`redis`, after the OpenTelemetry database conventions:
    /// `db.system.name`, and `error.type` on a failure): never a key, an argument or the URL,
    /// which may carry the password.
    async fn run<T>(
        &self,
        operation: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let span = tracing::info_span!(
            target: crate::telemetry::otel::SPANS,
            "redis",
            otel.kind = "client",
            db.system.name = "redis",
            error.type = Empty,
            otel.status_code = Empty,
        );
        let outcome = tokio::time::timeout(self.timeout, operation)
            .instrument(span.clone())
            .await;
        let (kind, error) = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => (e.category().to_owned(), format!("redis: {}", describe(&e))),
            Err(_) => (
                "timeout".to_owned(),
                format!("redis: no answer within {} ms", self.timeout.as_millis()),
            ),
        };
        span.record("error.type", kind.as_str());
        span.record("otel.status_code", "error");
        Err(StoreError(error))
    }
}

/// Every Redis connection's socket: `TCP_NODELAY`. The redis crate leaves Nagle's algorithm on,
/// and then a command sent while an earlier one is unacknowledged waits for that one's answer:
/// a console request sent right after another's deferred session write (`http::read_ahead`)
/// waited one whole extra round trip (`bench/redis_rtt.rs`: 2.0 round trips, 1.0 with it).
fn tcp_settings() -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(true)
}

/// `url` parsed, with [`tcp_settings`].
fn connection_info(url: &str) -> redis::RedisResult<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo as _;
    Ok(url.into_connection_info()?.set_tcp_settings(tcp_settings()))
}

/// The client of `url`: plain for `redis://` and `unix://`, TLS (rustls, ring) for `rediss://`.
fn client(url: &str, ca_pem: Option<&[u8]>) -> Result<Client, StoreError> {
    let invalid =
        || StoreError("REDIS_URL is not a valid redis://, rediss:// or unix:// URL".into());
    if !url.starts_with("rediss://") {
        if ca_pem.is_some() {
            return Err(StoreError(
                "REDIS_TLS_CA_FILE is set but REDIS_URL is not rediss://: the connection would not use TLS".into(),
            ));
        }
        return Client::open(connection_info(url).map_err(|_| invalid())?).map_err(|_| invalid());
    }
    // `#insecure` is the redis crate's switch that skips certificate verification.
    if url.contains('#') {
        return Err(StoreError(
            "REDIS_URL: a rediss:// URL takes no #fragment (#insecure would turn certificate verification off; trust a private CA with REDIS_TLS_CA_FILE instead)".into(),
        ));
    }
    // rustls needs the process's provider (ring) before the first handshake.
    crate::dust::install_crypto_provider();
    let root_cert = match ca_pem {
        None => None,
        Some(pem) => {
            let count = CertificateDer::pem_slice_iter(pem)
                .try_fold(0usize, |n, cert| cert.map(|_| n + 1))
                .map_err(|_| {
                    StoreError("REDIS_TLS_CA_FILE is not a PEM file of certificates".into())
                })?;
            if count == 0 {
                return Err(StoreError(
                    "REDIS_TLS_CA_FILE holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                        .into(),
                ));
            }
            Some(pem.to_vec())
        }
    };
    Client::build_with_tls(
        connection_info(url).map_err(|_| invalid())?,
        TlsCertificates {
            client_tls: None,
            root_cert,
        },
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidClientConfig if ca_pem.is_some() => {
            StoreError("REDIS_TLS_CA_FILE: its certificates are not usable as trust anchors".into())
        }
        _ => invalid(),
    })
}

/// A short description of a Redis error: its kind and, for I/O, the OS error. Server error
/// texts are Redis's own (`WRONGPASS …`), never a value we sent.
fn describe(e: &redis::RedisError) -> String {
    if let Some(tls) = tls_failure(e) {
        format!("TLS handshake failed: {tls}")
    } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
        format!("connection failed ({})", e.category())
    } else if e.is_timeout() {
        "timed out".into()
    } else {
        match e.code() {
            Some(code) => format!("{} ({code})", e.category()),
            None => e.category().to_owned(),
        }
    }
}

/// rustls's words for a server certificate it refused (`rustls::Error::InvalidCertificate`).
const CERTIFICATE_REFUSED: &str = "invalid peer certificate";

/// The TLS failure behind `e`, if the server's certificate was refused (wrong or missing CA,
/// wrong host name, expired), in rustls's words, which name no value we sent.
///
/// By its text: the redis crate keeps the `io::Error` that carries the `rustls::Error` behind an
/// `Arc<dyn Error>` whose `source()` skips it, so no downcast reaches it. Its `Display` is the
/// `io::Error`'s, which is rustls's.
fn tls_failure(e: &redis::RedisError) -> Option<String> {
    if !e.is_io_error() {
        return None;
    }
    let text = e.to_string();
    let start = text.find(CERTIFICATE_REFUSED)?;
    Some(format!(
        "{} (the Redis server's certificate is not trusted: set REDIS_TLS_CA_FILE to the CA that signed it, and check the host name)",
        &text[start..]
    ))
}

use crate::state::epoch_ms;

/// The `SystemTime` of `ms` milliseconds since the epoch.
fn from_epoch_ms(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(url: &str) -> Result<RedisStore, StoreError> {
        RedisStore::open(
            &SecretString::from(url.to_owned()),
            DEFAULT_KEY_PREFIX,
            Duration::from_secs(1),
        )
    }

    #[tokio::test]
    async fn unusable_urls_are_refused_without_echoing_them() {
        for url in [
            "rediss://:hunter2-canary@cache:6380/0#insecure",
            "http://:hunter2-canary@cache:6379",
            "redis://:hunter2-canary@cache:notaport",
        ] {
            let error = open(url).expect_err(url).to_string();
            assert!(error.contains("REDIS_URL"), "{error}");
            assert!(!error.contains("hunter2-canary"), "{error}");
        }
        // Connecting is lazy: a valid URL opens even with no Redis behind it.
        let store = open("redis://:hunter2-canary@127.0.0.1:1/0").unwrap();
        assert!(!format!("{store:?}").contains("hunter2-canary"));
        let error = store.ping().await.unwrap_err().to_string();
        assert!(!error.contains("hunter2-canary"), "{error}");
    }

    #[tokio::test]
    async fn unusable_cluster_settings_are_refused_without_echoing_them() {
        let open = |urls: &str, prefix: &str| {
            RedisStore::open_cluster_with_ca(
                &SecretString::from(urls.to_owned()),
                prefix,
                Duration::from_secs(1),
                None,
            )
        };
        for (urls, prefix, expected) in [
            (
                "redis://:hunter2-canary@a:1,rediss://:hunter2-canary@b:1",
                "p:",
                "mix",
            ),
            ("rediss://:hunter2-canary@a:1#insecure", "p:", "#fragment"),
            ("redis://:hunter2-canary@a:notaport", "p:", "REDIS_URL"),
            (
                "redis://:hunter2-canary@a:1,redis://:other@b:1",
                "p:",
                "same credentials",
            ),
            (" , ", "p:", "no Redis Cluster node"),
            ("redis://:hunter2-canary@a:1", "mcp-{dust}:", "{ or }"),
        ] {
            let error = open(urls, prefix).expect_err(urls).to_string();
            assert!(error.contains(expected), "{error}");
            assert!(!error.contains("hunter2-canary"), "{error}");
        }
        // Lazy, like one server: valid seeds open with nothing behind them.
        let store = open(
            "redis://:hunter2-canary@127.0.0.1:1, redis://:hunter2-canary@127.0.0.1:2",
            "p:",
        )
        .unwrap();
        assert!(format!("{store:?}").contains("cluster: true"));
        assert!(!format!("{store:?}").contains("hunter2-canary"));
        let error = store.ping().await.unwrap_err().to_string();
        assert!(!error.contains("hunter2-canary"), "{error}");
    }

    #[tokio::test]
    async fn keys_carry_the_prefix_and_encode_their_parts() {
        let store = open("redis://127.0.0.1:1").unwrap();
        assert_eq!(
            store.key("tok", &["tok_abc"], &[]),
            "mcp-dust:tok:{tok_abc}"
        );
        assert_eq!(
            store.key("oauth-rt", &["oauth-refresh"], &["h"]),
            "mcp-dust:oauth-rt:{oauth-refresh}:h"
        );
        // A separator inside an id cannot make two different pairs collide.
        assert_ne!(
            store.key("conv", &["a:b", "c"], &[]),
            store.key("conv", &["a", "b:c"], &[])
        );
        // Nor can a brace inside an id make its own hash tag.
        assert_eq!(
            store.key("user-sess", &["w}", "{u"], &[]),
            "mcp-dust:user-sess:{w%7D:%7Bu}"
        );
    }
}
