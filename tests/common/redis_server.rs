//! A real `redis-server` for a test: a free loopback port, its own temporary directory, no
//! persistence (`--save '' --appendonly no`), killed when dropped. Tests can stop it and start
//! it again on the same port to play an outage.
//!
//! [`RedisServer::start_tls`] starts the kind of Redis clouds sell instead: TLS only
//! (`--port 0 --tls-port`), a certificate from a private CA made for the test (rcgen), the
//! `default` user off and one ACL user with a password ([`ACL_USER`], [`PASSWORD`]).
//!
//! Without `redis-server` installed (`.ci/setup.d/20-redis.sh` installs it), [`RedisServer::start`]
//! prints a "skipped" line and returns `None`; in CI (`CI` set) it panics instead, so a missing
//! tool cannot pass for a green run.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mcp_dust_server::store::RedisStore;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BINARY: &str = "redis-server";

/// The ACL user of a TLS server (the `default` user is off).
pub(crate) const ACL_USER: &str = "mcp-app";
/// Its password: a canary that no message, log line or `Debug` may show.
pub(crate) const PASSWORD: &str = "pw-canary-7f3a9c";

/// A running (or stopped) `redis-server`.
pub(crate) struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// The CA (PEM) that signed a TLS server's certificate; `None` for a plain server.
    ca_pem: Option<String>,
}

/// A CA and a certificate it signed for `127.0.0.1` and `localhost`, made at test time.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

impl TestPki {
    pub(crate) fn new(ca_name: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, ca_name);
        let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let cert_pem = params.signed_by(&key, &issuer).unwrap().pem();
        Self {
            ca_pem,
            cert_pem,
            key_pem: key.serialize_pem(),
        }
    }
}

impl std::fmt::Debug for RedisServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisServer")
            .field("port", &self.port)
            .finish()
    }
}

impl RedisServer {
    /// Starts a server, or returns `None` when `redis-server` is missing outside CI.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None).await
    }

    /// Starts a TLS-only server with an ACL user (see the module doc), or `None` as [`start`].
    ///
    /// [`start`]: RedisServer::start
    pub(crate) async fn start_tls(test: &str) -> Option<Self> {
        Self::start_with(test, Some(TestPki::new("mcp-dust test Redis CA"))).await
    }

    async fn start_with(test: &str, pki: Option<TestPki>) -> Option<Self> {
        if Command::new(BINARY)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "{BINARY} is not installed (CI runs .ci/setup.d/20-redis.sh first)"
            );
            eprintln!("skipped: {test} needs {BINARY} (apt-get install redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        if let Some(pki) = &pki {
            std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
            std::fs::write(dir.path().join("server.pem"), &pki.cert_pem).unwrap();
            std::fs::write(dir.path().join("server.key"), &pki.key_pem).unwrap();
        }
        let mut server = Self {
            port,
            dir,
            child: None,
            ca_pem: pki.map(|pki| pki.ca_pem),
        };
        server.run().await;
        Some(server)
    }

    /// `redis://127.0.0.1:<port>`, or for a TLS server
    /// `rediss://<ACL_USER>:<PASSWORD>@127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        match self.ca_pem {
            None => format!("redis://127.0.0.1:{}", self.port),
            Some(_) => format!("rediss://{ACL_USER}:{PASSWORD}@127.0.0.1:{}/0", self.port),
        }
    }

    /// The CA of a TLS server (PEM), `None` for a plain one.
    pub(crate) fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The CA file of a TLS server (for `REDIS_TLS_CA_FILE`).
    pub(crate) fn ca_file(&self) -> PathBuf {
        assert!(self.ca_pem.is_some(), "not a TLS server");
        self.dir.path().join("ca.pem")
    }

    /// A store on this server under `prefix`, with a short deadline so outages show quickly
    /// (over TLS, trusting the server's CA).
    pub(crate) fn store(&self, prefix: &str) -> RedisStore {
        self.store_at(&self.url(), self.ca_pem().map(str::as_bytes), prefix)
            .unwrap()
    }

    /// A store on `url` (this server with other credentials, say) trusting `ca_pem`. Over TLS
    /// the deadline is longer: a handshake on a loaded 2-core CI machine can take a while.
    pub(crate) fn store_at(
        &self,
        url: &str,
        ca_pem: Option<&[u8]>,
        prefix: &str,
    ) -> Result<RedisStore, mcp_dust_server::store::StoreError> {
        let deadline = if self.ca_pem.is_some() {
            Duration::from_secs(3)
        } else {
            Duration::from_millis(500)
        };
        RedisStore::open_with_ca(
            &SecretString::from(url.to_owned()),
            prefix,
            deadline,
            ca_pem,
        )
    }

    /// This server's port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (an outage: connections drop, the data is gone).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the process: a Redis that accepts connections
    /// but never answers.
    pub(crate) fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    async fn run(&mut self) {
        let dir: PathBuf = self.dir.path().into();
        let mut command = Command::new(BINARY);
        if self.ca_pem.is_some() {
            command
                .args(["--port", "0"])
                .args(["--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"))
                .args(["--tls-auth-clients", "no"])
                // What a managed Redis gives an application: its own user, no `default`. Its
                // rights are those docs/DEPLOYMENT.md tells operators to grant (keys under the
                // tests' prefixes instead of `mcp-dust:`).
                .args(["--user", "default", "off"])
                .args(["--user", ACL_USER, "on", &format!(">{PASSWORD}")])
                .args([
                    "~test:*",
                    "+@read",
                    "+@write",
                    "+@scripting",
                    "+@transaction",
                    "+ping",
                ]);
        } else {
            command.args(["--port", &self.port.to_string()]);
        }
        let child = command
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping().await {
            assert!(
                Instant::now() < deadline,
                "{BINARY} did not answer on port {}",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn answers_ping(&self) -> bool {
        if self.ca_pem.is_some() {
            // TLS: listening is enough here; the tests' own client does the handshake.
            return tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok();
        }
        let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut buf = [0u8; 7];
        matches!(
            tokio::time::timeout(Duration::from_secs(1), stream.read_exact(&mut buf)).await,
            Ok(Ok(_)) if &buf == b"+PONG\r\n"
        )
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh key prefix for one test, so tests sharing a server never see each other's keys.
pub(crate) fn prefix(test: &str) -> String {
    format!("test:{test}:{}:", uuid::Uuid::new_v4().simple())
}
