//! The Redis that clouds sell (issue 20 item 2): `rediss://` with a private CA
//! (`REDIS_TLS_CA_FILE`) and an ACL user with a password, against a real TLS-only
//! `redis-server` whose certificates the test makes (tests/common/redis_server.rs,
//! [`RedisServer::start_tls`]).
//!
//! Every store contract runs against it, as against the plain server in `shared_state`. Then
//! what must fail does, clearly and without the password: a wrong or missing CA (verification
//! is on by default and cannot be turned off), a wrong password, a server started with a
//! wrong CA (`serve` refuses to start; `doctor` names the fix).
//!
//! Without `redis-server` installed these print "skipped" (and fail in CI).

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::common::{
    http::TestServer,
    redis_server::{ACL_USER, PASSWORD, RedisServer, TestPki, prefix},
};
use mcp_dust_server::store::{RedisStore, Stores};

// ---------------------------------------------------------------------------------------------
// Contracts over TLS + ACL
// ---------------------------------------------------------------------------------------------

mod conversation_store_contract {
    use super::*;
    mcp_dust_server::conversation_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_conversation_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("conversations")));
}

mod counter_store_contract {
    use super::*;
    mcp_dust_server::counter_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_counter_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("counters")));
}

mod failure_store_contract {
    use super::*;
    mcp_dust_server::failure_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_failure_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("failures")));
}

mod session_store_contract {
    use super::*;
    mcp_dust_server::session_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_session_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("sessions")));
}

mod oauth_store_contract {
    use super::*;
    mcp_dust_server::oauth_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_oauth_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("oauth")).with_unused_client_capacity(
        mcp_dust_server::store::oauth::contract::UNUSED_CAPACITY,
    ));
}

mod token_store_contract {
    use super::*;
    mcp_dust_server::token_store_contract_tests!({
        let Some(redis) = RedisServer::start_tls("tls_token_store_contract").await else {
            return;
        };
    } => redis.store(&prefix("tokens")));
}

// ---------------------------------------------------------------------------------------------
// What must fail, and how
// ---------------------------------------------------------------------------------------------

/// No message and no `Debug` shows the password.
fn assert_no_password(text: &str) {
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
}

/// The server really is TLS + ACL: the store reaches it as the ACL user over TLS, the same
/// address in plain text gets nothing, and the `default` user is off.
#[tokio::test]
async fn the_store_reaches_a_tls_redis_as_its_acl_user() {
    let Some(redis) = RedisServer::start_tls("tls_acl_user").await else {
        return;
    };
    let store = redis.store(&prefix("whoami"));
    store.ping().await.unwrap();
    store.check_tls().await.unwrap();
    assert_no_password(&format!("{store:?}"));

    // Plain text on the TLS port: no answer, an error within the deadline.
    let plain = redis
        .store_at(&format!("redis://127.0.0.1:{}", redis.port()), None, "p:")
        .unwrap();
    assert!(plain.ping().await.is_err());

    // TLS without credentials: the `default` user is off.
    let anonymous = redis
        .store_at(
            &format!("rediss://127.0.0.1:{}", redis.port()),
            redis.ca_pem().map(str::as_bytes),
            "a:",
        )
        .unwrap();
    let error = anonymous.ping().await.unwrap_err().to_string();
    assert!(!error.contains("TLS"), "{error}");
}

/// A wrong password is refused by Redis, and the message does not echo it.
#[tokio::test]
async fn a_wrong_password_is_refused_without_echoing_it() {
    let Some(redis) = RedisServer::start_tls("tls_wrong_password").await else {
        return;
    };
    let url = format!(
        "rediss://{ACL_USER}:{PASSWORD}-wrong@127.0.0.1:{}/0",
        redis.port()
    );
    let store = redis
        .store_at(&url, redis.ca_pem().map(str::as_bytes), "w:")
        .unwrap();
    let error = store.ping().await.unwrap_err();
    let shown = format!("{error} {error:?} {store:?}");
    assert!(shown.contains("authentication failed"), "{shown}");
    assert_no_password(&shown);
}

/// Verification is on by default: the system roots do not trust a private CA, nor does
/// another CA; each fails within the deadline with a TLS message that names the fix, and
/// `check_tls` (the start-up check) refuses. `#insecure` is refused outright.
#[tokio::test]
async fn an_untrusted_certificate_is_refused_clearly() {
    let Some(redis) = RedisServer::start_tls("tls_wrong_ca").await else {
        return;
    };
    let other_ca = TestPki::new("some other CA").ca_pem;
    for (what, ca) in [
        ("system roots", None),
        ("another CA", Some(other_ca.as_bytes())),
    ] {
        let store = redis.store_at(&redis.url(), ca, "x:").unwrap();
        let started = Instant::now();
        let error = store.ping().await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{what}: a hang");
        assert!(error.contains("TLS handshake failed"), "{what}: {error}");
        assert!(error.contains("REDIS_TLS_CA_FILE"), "{what}: {error}");
        assert_no_password(&error);
        let error = store.check_tls().await.unwrap_err().to_string();
        assert!(error.contains("certificate"), "{what}: {error}");
        assert_no_password(&error);
    }

    let insecure = format!("{}#insecure", redis.url());
    let error = redis
        .store_at(&insecure, None, "i:")
        .unwrap_err()
        .to_string();
    assert!(error.contains("verification"), "{error}");
    assert_no_password(&error);
}

/// A CA file that holds no certificate, or a CA with a plain `redis://` URL, is refused when
/// the store is opened, not at the first request.
#[tokio::test]
async fn an_unusable_ca_setting_is_refused_at_open() {
    let secret = |url: &str| secrecy::SecretString::from(url.to_owned());
    let open = |url: &str, ca: &[u8]| {
        RedisStore::open_with_ca(&secret(url), "c:", Duration::from_secs(1), Some(ca))
            .unwrap_err()
            .to_string()
    };
    let url = format!("rediss://{ACL_USER}:{PASSWORD}@127.0.0.1:1/0");
    let error = open(&url, b"not a certificate");
    assert!(error.contains("REDIS_TLS_CA_FILE"), "{error}");
    assert_no_password(&error);
    let ca = TestPki::new("a CA").ca_pem;
    let error = open(
        &format!("redis://{ACL_USER}:{PASSWORD}@127.0.0.1:1/0"),
        ca.as_bytes(),
    );
    assert!(error.contains("not rediss://"), "{error}");
    assert_no_password(&error);
}

/// A server whose stores are on the TLS + ACL Redis is ready and logs in.
#[tokio::test]
async fn a_server_on_a_tls_redis_is_ready_and_logs_in() {
    let Some(redis) = RedisServer::start_tls("tls_server").await else {
        return;
    };
    let sim = mcp_dust_server::sim::spawn(mcp_dust_server::sim::SimConfig::default())
        .await
        .unwrap();
    let stores = Stores::redis(redis.store(&prefix("server")));
    let server = TestServer::start_with_stores(sim, &[], None, stores).await;
    let ready = server.http.get(server.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let login = server
        .login_with(serde_json::json!({
            "apiKey": server.sim.api_key(),
            "workspaceId": server.sim.workspace_id(),
        }))
        .await;
    assert_eq!(login.status(), 200);
}

/// `serve` with `REDIS_URL=rediss://…` and a wrong `REDIS_TLS_CA_FILE` refuses to start,
/// saying why, without the password (instead of starting and answering 503 to everything).
#[tokio::test]
async fn serve_refuses_to_start_with_a_wrong_ca() {
    let Some(redis) = RedisServer::start_tls("tls_serve").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wrong_ca = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, TestPki::new("some other CA").ca_pem).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-dust-server"))
        .arg("serve")
        .env_clear()
        .env("MCP_SERVER_HOST", "127.0.0.1")
        .env("MCP_SERVER_PORT", port.to_string())
        .env("AUDIT_LOG_FILE", dir.path().join("audit.log"))
        .env("REDIS_URL", redis.url())
        .env("REDIS_TLS_CA_FILE", &wrong_ca)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("stdout")).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve started with a wrong REDIS_TLS_CA_FILE");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let shown = format!(
        "{}{}",
        std::fs::read_to_string(dir.path().join("stdout")).unwrap(),
        std::fs::read_to_string(dir.path().join("stderr")).unwrap()
    );
    assert!(!status.success(), "{shown}");
    assert!(shown.contains("TLS"), "{shown}");
    assert!(shown.contains("REDIS_TLS_CA_FILE"), "{shown}");
    assert_no_password(&shown);
}
