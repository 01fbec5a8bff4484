//! A real `redis-server` for a test: a free loopback port, its own temporary directory, no
//! persistence (`--save '' --appendonly no`), killed when dropped. Tests can stop it and start
//! it again on the same port to play an outage.
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

/// A running (or stopped) `redis-server`.
pub(crate) struct RedisServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
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
        let mut server = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        server.run().await;
        Some(server)
    }

    /// `redis://127.0.0.1:<port>`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A store on this server under `prefix`, with a short deadline so outages show quickly.
    pub(crate) fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::open(
            &SecretString::from(self.url()),
            prefix,
            Duration::from_millis(500),
        )
        .unwrap()
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
        let child = Command::new(BINARY)
            .args(["--port", &self.port.to_string()])
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
