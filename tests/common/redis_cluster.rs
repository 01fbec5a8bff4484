//! A real Redis Cluster for a test: three masters (no replicas, or one each with
//! [`RedisCluster::start_with_replicas`]) on free loopback ports, each with its cluster bus on
//! port + 10000, made one cluster by `redis-cli --cluster create` (the slots split in three), no
//! persistence, every process killed when dropped.
//!
//! [`RedisCluster::start_tls`] starts the kind that clouds sell instead: TLS only, between the
//! nodes too (`--tls-cluster yes`), a certificate from a private CA made for the test, the
//! `default` user off, an `admin` user for `redis-cli` and the application's ACL user with
//! exactly the rights docs/DEPLOYMENT.md gives it for a cluster.
//!
//! Like [`RedisServer`](super::redis_server::RedisServer), without `redis-server` or
//! `redis-cli` installed (`.ci/setup.d/20-redis.sh` installs both) [`RedisCluster::start`]
//! prints a "skipped" line and returns `None`, and in CI (`CI` set) panics instead.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use mcp_dust_server::store::RedisStore;
use secrecy::SecretString;

use super::redis_server::{ACL_USER, PASSWORD, TestPki};

/// The TLS cluster's administrator (for `redis-cli --cluster create` and the tests' looks).
const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-pw-5b1e";

/// How many masters.
const MASTERS: usize = 3;

/// How long a node may be unreachable before the others mark it failed
/// (`cluster-node-timeout`): long enough that a loaded machine does not fail a node by mistake,
/// but with replicas short, so that a failover test waits seconds, not tens of them.
const NODE_TIMEOUT_MS: u64 = 5000;
const NODE_TIMEOUT_WITH_REPLICAS_MS: u64 = 1000;

/// A running Redis Cluster.
pub(crate) struct RedisCluster {
    ports: Vec<u16>,
    _dir: tempfile::TempDir,
    /// The processes, in the order of `ports`.
    children: Vec<Child>,
    /// The CA (PEM) of a TLS cluster; `None` for a plain one.
    ca_pem: Option<String>,
    /// `cluster-node-timeout` (ms).
    node_timeout_ms: u64,
}

impl std::fmt::Debug for RedisCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCluster")
            .field("ports", &self.ports)
            .finish()
    }
}

/// Whether `binary` runs; outside CI a missing one skips the test (`false`), in CI it fails.
fn installed(binary: &str, test: &str) -> bool {
    let found = Command::new(binary)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{binary} is not installed (CI runs .ci/setup.d/20-redis.sh first)"
        );
        eprintln!("skipped: {test} needs {binary} (apt-get install redis-server redis-tools)");
    }
    found
}

/// A free loopback port whose cluster bus port (+ 10000) is free too. Both listeners are
/// closed on return, so another process could take them meanwhile: `start` retries.
fn free_port_pair() -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port <= 55_535 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

impl RedisCluster {
    /// Starts a cluster and waits until it reports `cluster_state:ok` on every node, or
    /// returns `None` when `redis-server` or `redis-cli` is missing outside CI.
    pub(crate) async fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None, 0).await
    }

    /// Starts a cluster whose masters have one replica each (six nodes), for failovers.
    pub(crate) async fn start_with_replicas(test: &str) -> Option<Self> {
        Self::start_with(test, None, 1).await
    }

    /// Starts a TLS cluster with ACL users (see the module doc), or `None` as [`start`].
    ///
    /// [`start`]: RedisCluster::start
    pub(crate) async fn start_tls(test: &str) -> Option<Self> {
        Self::start_with(
            test,
            Some(TestPki::new("mcp-dust test Redis Cluster CA")),
            0,
        )
        .await
    }

    async fn start_with(test: &str, pki: Option<TestPki>, replicas: usize) -> Option<Self> {
        if !installed("redis-server", test) || !installed("redis-cli", test) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        if let Some(pki) = &pki {
            std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
            std::fs::write(dir.path().join("server.pem"), &pki.cert_pem).unwrap();
            std::fs::write(dir.path().join("server.key"), &pki.key_pem).unwrap();
        }
        let mut cluster = Self {
            ports: Vec::new(),
            _dir: dir,
            children: Vec::new(),
            ca_pem: pki.map(|pki| pki.ca_pem),
            node_timeout_ms: if replicas > 0 {
                NODE_TIMEOUT_WITH_REPLICAS_MS
            } else {
                NODE_TIMEOUT_MS
            },
        };
        for _ in 0..MASTERS * (1 + replicas) {
            cluster.spawn_node().await;
        }
        let mut create = Command::new("redis-cli");
        if cluster.ca_pem.is_some() {
            create
                .arg("--tls")
                .arg("--cacert")
                .arg(cluster._dir.path().join("ca.pem"))
                .args([
                    "--user",
                    ADMIN,
                    "--pass",
                    ADMIN_PASSWORD,
                    "--no-auth-warning",
                ]);
        }
        create.arg("--cluster").arg("create");
        for port in &cluster.ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let output = tokio::task::spawn_blocking(move || {
            create
                .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            output.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        cluster.wait_until_ok().await;
        if replicas > 0 {
            cluster.wait_until_replicas_synced().await;
        }
        Some(cluster)
    }

    /// Starts one node on a fresh port pair (another try if the port was taken meanwhile).
    async fn spawn_node(&mut self) {
        for _ in 0..5 {
            let port = free_port_pair();
            self.children.push(self.spawn(port));
            if self.wait_for(port).await {
                self.ports.push(port);
                return;
            }
            // Port taken (or a slow start): stop that one and try another pair.
            let mut child = self.children.pop().unwrap();
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start a cluster node");
    }

    /// `redis-server` as a cluster node on `port`, its node file in the cluster's directory
    /// (so a restarted node rejoins with its slots).
    fn spawn(&self, port: u16) -> Child {
        let dir = self._dir.path();
        let mut command = Command::new("redis-server");
        if self.ca_pem.is_some() {
            command
                .args(["--port", "0"])
                .args(["--tls-port", &port.to_string()])
                .args(["--tls-cluster", "yes"])
                .arg("--tls-cert-file")
                .arg(dir.join("server.pem"))
                .arg("--tls-key-file")
                .arg(dir.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(dir.join("ca.pem"))
                .args(["--tls-auth-clients", "no"])
                .args(["--user", "default", "off"])
                .args([
                    "--user",
                    ADMIN,
                    "on",
                    &format!(">{ADMIN_PASSWORD}"),
                    "~*",
                    "&*",
                ])
                .args(["+@all"])
                // docs/DEPLOYMENT.md's rights for a cluster (keys under the tests' prefixes).
                .args(["--user", ACL_USER, "on", &format!(">{PASSWORD}")])
                .args([
                    "~test:*",
                    "+@read",
                    "+@write",
                    "+@scripting",
                    "+@transaction",
                    "+ping",
                    "+cluster|slots",
                    "+asking",
                ]);
        } else {
            command.args(["--port", &port.to_string()]);
        }
        command
            .args(["--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes"])
            .arg("--cluster-config-file")
            .arg(dir.join(format!("nodes-{port}.conf")))
            .args(["--cluster-node-timeout", &self.node_timeout_ms.to_string()])
            // A replica syncs at once (not after 5 s waiting for others) and may always take
            // over: a test kills a master seconds after the cluster was made.
            .args(["--repl-diskless-sync-delay", "0"])
            .args(["--cluster-replica-validity-factor", "0"])
            .arg("--dir")
            .arg(dir)
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"))
    }

    /// Whether the last started node answers on `port` within 10 s (`false` if it exited).
    async fn wait_for(&mut self, port: u16) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.node(port).await.is_ok() {
                return true;
            }
            let exited = self
                .children
                .last_mut()
                .unwrap()
                .try_wait()
                .unwrap()
                .is_some();
            if exited || Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node reports `cluster_state:ok`.
    async fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for &port in &self.ports {
            loop {
                let info = self.cluster_info(port).await.unwrap_or_default();
                if info.contains("cluster_state:ok") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the cluster is not ok on port {port}: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Waits until every replica has its master's data (`master_link_status:up`): before its
    /// first sync, a replica may not take over.
    async fn wait_until_replicas_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for &port in &self.ports {
            loop {
                let mut conn = self.node(port).await.unwrap();
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn)
                    .await
                    .unwrap();
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "replica {port} not synced: {info}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Kills the node on `port` (its replica, if any, takes over after the node timeout).
    pub(crate) fn kill(&mut self, port: u16) {
        let index = self.ports.iter().position(|&p| p == port).expect("a node");
        let _ = self.children[index].kill();
        let _ = self.children[index].wait();
    }

    /// Kills every node (an outage of the whole cluster; the data is gone).
    pub(crate) fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }

    /// Starts every node again on its port, empty but with its slots (its node file), and waits
    /// until the cluster is ok.
    pub(crate) async fn restart(&mut self) {
        self.stop();
        for port in self.ports.clone() {
            self.children.push(self.spawn(port));
            assert!(self.wait_for(port).await, "node {port} did not restart");
        }
        self.wait_until_ok().await;
    }

    /// A connection to the node on `port` (answers only for its own slots: `MOVED` otherwise),
    /// for looking at where keys are; over TLS as the administrator for a TLS cluster.
    pub(crate) async fn node(
        &self,
        port: u16,
    ) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        let client = match &self.ca_pem {
            None => redis::Client::open(format!("redis://127.0.0.1:{port}"))?,
            Some(ca) => {
                mcp_dust_server::dust::install_crypto_provider();
                redis::Client::build_with_tls(
                    format!("rediss://{ADMIN}:{ADMIN_PASSWORD}@127.0.0.1:{port}"),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(ca.clone().into_bytes()),
                    },
                )?
            }
        };
        let mut conn = tokio::time::timeout(
            Duration::from_secs(1),
            client.get_multiplexed_async_connection(),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "timeout")))??;
        redis::cmd("PING").query_async::<String>(&mut conn).await?;
        Ok(conn)
    }

    /// `CLUSTER INFO` of the node on `port`.
    async fn cluster_info(&self, port: u16) -> redis::RedisResult<String> {
        let mut conn = self.node(port).await?;
        redis::cmd("CLUSTER")
            .arg("INFO")
            .query_async(&mut conn)
            .await
    }

    /// The nodes' ports.
    pub(crate) fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The seed nodes, as `REDIS_URL` takes them with `REDIS_CLUSTER=true`: the first two,
    /// comma-separated (the third is found from them); `rediss://` with the ACL user's
    /// credentials for a TLS cluster.
    pub(crate) fn url(&self) -> String {
        let seed = |port: u16| match self.ca_pem {
            None => format!("redis://127.0.0.1:{port}"),
            Some(_) => format!("rediss://{ACL_USER}:{PASSWORD}@127.0.0.1:{port}"),
        };
        format!("{},{}", seed(self.ports[0]), seed(self.ports[1]))
    }

    /// A store on this cluster under `prefix` (over TLS as the ACL user, trusting the CA), with
    /// a deadline that a slot-map refresh on a loaded 2-core machine fits in.
    pub(crate) fn store(&self, prefix: &str) -> RedisStore {
        RedisStore::open_cluster_with_ca(
            &SecretString::from(self.url()),
            prefix,
            Duration::from_secs(3),
            self.ca_pem.as_deref().map(str::as_bytes),
        )
        .unwrap()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
