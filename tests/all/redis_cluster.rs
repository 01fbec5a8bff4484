//! Redis Cluster (issue 20 item 2): every store contract against a real three-master cluster
//! (tests/common/redis_cluster.rs), seeded by two of its nodes as `REDIS_URL` lists them with
//! `REDIS_CLUSTER=true`. A multi-key script whose keys are not in one slot fails there with
//! `CROSSSLOT`, so these runs are what proves the hash tags (src/store/redis/mod.rs).
//!
//! Then what a cluster adds: the keys of different people land on different nodes, a slot that
//! moves after the server learned the slot map (a resharding) is followed (`MOVED`), the
//! multi-key operations still whole, a failover is followed, an outage of the whole cluster
//! fails closed and heals by itself, and two server instances on one cluster act as one. The contracts run again on a TLS-only cluster with an ACL user (`tls`).
//!
//! Each case starts its own cluster (one to two seconds); without `redis-server` and
//! `redis-cli` installed these print "skipped" (and fail in CI).

use std::{collections::BTreeSet, sync::Arc};

use crate::common::{redis_cluster::RedisCluster, redis_server::prefix};
use mcp_dust_server::{
    auth::{lockout, tokens},
    store::{
        ConversationRecord, ConversationStore, SessionKey, SessionStore, TokenStore,
        sessions::{Inserted, contract::record as session},
        tokens::contract::{NOW, record as token},
    },
};

mod conversation_store_contract {
    use super::*;
    mcp_dust_server::conversation_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_conversation_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("conversations")));
}

mod counter_store_contract {
    use super::*;
    mcp_dust_server::counter_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_counter_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("counters")));
}

mod failure_store_contract {
    use super::*;
    mcp_dust_server::failure_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_failure_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("failures")));
}

mod session_store_contract {
    use super::*;
    mcp_dust_server::session_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_session_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("sessions")));
}

mod oauth_store_contract {
    use super::*;
    mcp_dust_server::oauth_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_oauth_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("oauth")).with_unused_client_capacity(
        mcp_dust_server::store::oauth::contract::UNUSED_CAPACITY,
    ));
}

mod token_store_contract {
    use super::*;
    mcp_dust_server::token_store_contract_tests!({
        let Some(cluster) = RedisCluster::start("cluster_token_store_contract").await else {
            return;
        };
    } => cluster.store(&prefix("tokens")));
}

/// The policies `auth` applies over these stores (the live-token cap, login throttling).
#[tokio::test]
async fn auth_policies_hold_over_a_cluster() {
    let Some(cluster) = RedisCluster::start("auth_policies_hold_over_a_cluster").await else {
        return;
    };
    let store = Arc::new(cluster.store(&prefix("policies")));
    tokens::testing::live_token_cap(store.as_ref()).await;
    lockout::testing::login_throttle_contract(store).await;
}

/// The session cap across slots: the purge of expired sessions (the cap's set in one slot, the
/// purged sessions each in their own) still deletes them, and listing prunes them.
#[tokio::test]
async fn the_session_cap_purges_across_slots() {
    let Some(cluster) = RedisCluster::start("the_session_cap_purges_across_slots").await else {
        return;
    };
    let store = cluster.store(&prefix("sess-cap")).with_session_capacity(3);
    let store: &dyn SessionStore = &store;
    let now = 1_700_000_000_000;
    let key = |i: usize| SessionKey::from_hmac_hex(format!("k{i}"));
    for i in 0..3 {
        let r = session("w", "u", now + i as i64);
        assert_eq!(
            store.insert(&key(i), r, now).await.unwrap(),
            Inserted::Stored
        );
    }
    let later = now + 3_600_001;
    let extra = session("w", "u", later);
    assert_eq!(
        store.insert(&key(9), extra.clone(), now).await.unwrap(),
        Inserted::Full
    );
    assert!(store.touch(&key(0), now + 1, now + 100).await.unwrap());
    for i in [1, 2] {
        assert!(
            store
                .touch(&key(i), later, later + 3_600_000)
                .await
                .unwrap()
        );
    }
    assert_eq!(
        store.insert(&key(9), extra, later).await.unwrap(),
        Inserted::Stored
    );
    assert_eq!(store.get(&key(0)).await.unwrap(), None, "purged");
    assert_eq!(store.count().await.unwrap(), 3);
    let listed = store.list_for_user("w", "u").await.unwrap();
    assert_eq!(
        listed.into_iter().map(|(k, _)| k).collect::<Vec<_>>(),
        [key(1), key(2), key(9)]
    );
}

/// The port of the node that owns `key` (the others answer `MOVED`).
async fn owner(cluster: &RedisCluster, key: &str) -> u16 {
    for &port in cluster.ports() {
        let mut conn = cluster.node(port).await.unwrap();
        let found: redis::RedisResult<i64> =
            redis::cmd("EXISTS").arg(key).query_async(&mut conn).await;
        if found.is_ok() {
            return port;
        }
    }
    panic!("no node owns {key}");
}

/// The keys under `prefix` on the node of `port`.
async fn keys_on(cluster: &RedisCluster, port: u16, prefix: &str) -> Vec<String> {
    let mut conn = cluster.node(port).await.unwrap();
    redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// `CLUSTER <args>` on the node of `port`.
async fn cluster_cmd<T: redis::FromRedisValue>(
    cluster: &RedisCluster,
    port: u16,
    args: &[&str],
) -> T {
    let mut conn = cluster.node(port).await.unwrap();
    redis::cmd("CLUSTER")
        .arg(args)
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// The keys of different people spread over the nodes (one person's indexes together), and a
/// person's slot moved to another node after the store learned the slot map is followed: the
/// store is sent `MOVED` and goes on, its multi-key operations (token save, session insert and
/// list, conversation record and list) whole on the new node.
#[tokio::test]
async fn keys_spread_over_the_nodes_and_a_moved_slot_is_followed() {
    let Some(cluster) =
        RedisCluster::start("keys_spread_over_the_nodes_and_a_moved_slot_is_followed").await
    else {
        return;
    };
    let p = prefix("spread");
    let redis = cluster.store(&p);
    redis.ping().await.unwrap();
    let (tokens, sessions, conversations): (
        &dyn TokenStore,
        &dyn SessionStore,
        &dyn ConversationStore,
    ) = (&redis, &redis, &redis);

    // Twelve people, each with a token and a session.
    let now_ms = NOW * 1000;
    for i in 0..12 {
        let user = format!("usr_{i}");
        let record = token("ws", &user, 0, 3600);
        tokens.save(record.clone(), NOW).await.unwrap();
        assert_eq!(
            tokens.list_for_user("ws", &user, NOW).await.unwrap().len(),
            1
        );
        let key = SessionKey::from_hmac_hex(format!("s{i}"));
        let r = session("ws", &user, now_ms);
        assert_eq!(
            sessions.insert(&key, r, now_ms).await.unwrap(),
            Inserted::Stored
        );
        // A person's indexes share their slot.
        let tokens_node = owner(&cluster, &format!("{p}user-tokens:{{ws:{user}}}")).await;
        let sessions_node = owner(&cluster, &format!("{p}user-sess:{{ws:{user}}}")).await;
        assert_eq!(tokens_node, sessions_node);
    }
    let mut holding = BTreeSet::new();
    for &port in cluster.ports() {
        if !keys_on(&cluster, port, &p).await.is_empty() {
            holding.insert(port);
        }
    }
    assert_eq!(holding.len(), 3, "every node holds some keys");

    // A person whose slot moves once the store has used it.
    let user = "usr_mover";
    let index = format!("{p}user-tokens:{{ws:{user}}}");
    assert!(
        tokens
            .list_for_user("ws", user, NOW)
            .await
            .unwrap()
            .is_empty()
    );
    let from = owner(&cluster, &index).await;
    let to = *cluster.ports().iter().find(|&&port| port != from).unwrap();
    let slot: i64 = cluster_cmd(&cluster, from, &["KEYSLOT", &index]).await;
    let target: String = cluster_cmd(&cluster, to, &["MYID"]).await;
    assert_eq!(
        cluster_cmd::<i64>(&cluster, from, &["COUNTKEYSINSLOT", &slot.to_string()]).await,
        0,
        "an empty slot moves without MIGRATE"
    );
    for &port in [to, from].iter().chain(
        cluster
            .ports()
            .iter()
            .filter(|&&port| port != from && port != to),
    ) {
        let _: String = cluster_cmd(
            &cluster,
            port,
            &["SETSLOT", &slot.to_string(), "NODE", &target],
        )
        .await;
    }
    assert_eq!(owner(&cluster, &index).await, to, "the slot moved");

    let record = token("ws", user, 0, 3600);
    tokens.save(record.clone(), NOW).await.unwrap();
    let listed = tokens.list_for_user("ws", user, NOW).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].token_id, record.token_id);
    let key = SessionKey::from_hmac_hex("s-mover".to_owned());
    sessions
        .insert(&key, session("ws", user, now_ms), now_ms)
        .await
        .unwrap();
    assert_eq!(sessions.list_for_user("ws", user).await.unwrap().len(), 1);
    conversations
        .record(ConversationRecord {
            conversation_id: "conv-mover".into(),
            workspace_id: "ws".into(),
            owner: user.into(),
            title: None,
            agent_id: "agent".into(),
            created_at: now_ms,
        })
        .await
        .unwrap();
    assert_eq!(conversations.list("ws", user).await.unwrap().len(), 1);
    let on_target = keys_on(&cluster, to, &p).await;
    for kind in ["user-tokens", "user-sess", "user-convs"] {
        let key = format!("{p}{kind}:{{ws:{user}}}");
        assert!(on_target.contains(&key), "{key} on the new owner");
    }
}

/// A cluster outage fails closed within the deadline, and the store comes back by itself when
/// the cluster does: the store that was running, and one opened while the cluster was down
/// (the connection is lazy, as to one server).
#[tokio::test]
async fn a_cluster_outage_fails_closed_and_the_store_recovers_without_a_restart() {
    let Some(mut cluster) = RedisCluster::start("a_cluster_outage_fails_closed").await else {
        return;
    };
    let p = prefix("outage");
    let running = cluster.store(&p);
    running.ping().await.unwrap();
    cluster.stop();
    let started = std::time::Instant::now();
    let error = running.ping().await.unwrap_err().to_string();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "within the deadline"
    );
    assert!(
        error.starts_with("state store unavailable: redis:"),
        "{error}"
    );
    let opened_while_down = cluster.store(&p);
    assert!(opened_while_down.ping().await.is_err());

    cluster.restart().await;
    for (store, user) in [(&running, "usr_a"), (&opened_while_down, "usr_b")] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.ping().await.is_err() {
            assert!(std::time::Instant::now() < deadline, "no recovery");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let tokens: &dyn TokenStore = store;
        tokens.save(token("ws", user, 0, 3600), NOW).await.unwrap();
        assert_eq!(
            tokens.list_for_user("ws", user, NOW).await.unwrap().len(),
            1
        );
    }
}

/// The cluster that clouds sell: TLS between the server and every node (and between the
/// nodes), a private CA (`REDIS_TLS_CA_FILE`), and an ACL user with only the rights
/// docs/DEPLOYMENT.md lists for a cluster. Every store contract runs on it.
mod tls {
    use super::*;
    use crate::common::redis_server::PASSWORD;

    mod conversation_store_contract {
        use super::*;
        mcp_dust_server::conversation_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_conversation_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("conversations")));
    }

    mod counter_store_contract {
        use super::*;
        mcp_dust_server::counter_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_counter_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("counters")));
    }

    mod failure_store_contract {
        use super::*;
        mcp_dust_server::failure_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_failure_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("failures")));
    }

    mod session_store_contract {
        use super::*;
        mcp_dust_server::session_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_session_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("sessions")));
    }

    mod oauth_store_contract {
        use super::*;
        mcp_dust_server::oauth_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_oauth_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("oauth")).with_unused_client_capacity(
            mcp_dust_server::store::oauth::contract::UNUSED_CAPACITY,
        ));
    }

    mod token_store_contract {
        use super::*;
        mcp_dust_server::token_store_contract_tests!({
            let Some(cluster) = RedisCluster::start_tls("tls_cluster_token_store_contract").await else {
                return;
            };
        } => cluster.store(&prefix("tokens")));
    }

    /// The store reaches every node as the ACL user over verified TLS (`check_tls` passes, the
    /// `PING` goes to every primary), and shows no password; a store without the CA is refused
    /// at the handshake, in rustls's words.
    #[tokio::test]
    async fn the_store_reaches_a_tls_cluster_as_its_acl_user() {
        let Some(cluster) = RedisCluster::start_tls("tls_cluster_acl_user").await else {
            return;
        };
        let store = cluster.store(&prefix("whoami"));
        store.check_tls().await.unwrap();
        store.ping().await.unwrap();
        assert!(!format!("{store:?}").contains(PASSWORD));

        let untrusting = mcp_dust_server::store::RedisStore::open_cluster_with_ca(
            &secrecy::SecretString::from(cluster.url()),
            "p:",
            std::time::Duration::from_secs(3),
            None,
        )
        .unwrap();
        let error = untrusting.check_tls().await.unwrap_err().to_string();
        assert!(error.contains("TLS handshake failed"), "{error}");
        assert!(!error.contains(PASSWORD), "{error}");
    }
}

/// Two server instances on one cluster act as one (what the deployment is for): a token issued
/// by one works on the other and its revocation is seen there at once, and a browser session
/// opened on one is served and ended on the other.
#[tokio::test]
async fn two_instances_on_one_cluster_act_as_one() {
    use crate::common::http::TestServer;
    use mcp_dust_server::{
        sim::{self, SimConfig},
        store::Stores,
    };
    let Some(cluster) = RedisCluster::start("two_instances_on_one_cluster_act_as_one").await else {
        return;
    };
    let p = prefix("twins");
    let env = [("MCP_PUBLIC_URL", "http://mcp.cluster.test")];
    let sim = || async {
        sim::spawn(SimConfig {
            token_delay_ms: 1,
            ..SimConfig::default()
        })
        .await
        .unwrap()
    };
    let a =
        TestServer::start_with_stores(sim().await, &env, None, Stores::redis(cluster.store(&p)))
            .await;
    let b = TestServer::start_with_stores(
        sim().await,
        &env,
        Some(&a.sim.base_url()),
        Stores::redis(cluster.store(&p)),
    )
    .await;
    let call = |s: &TestServer, token: &str| {
        s.http
            .post(s.url("/mcp"))
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-11-25")
            .bearer_auth(token)
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
    };

    let token = a.token(None).await;
    assert_eq!(
        call(&b, &token).await.unwrap().status(),
        200,
        "issued on A, used on B"
    );
    let logout = a
        .http
        .post(a.url("/api/v1/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    assert_eq!(
        call(&b, &token).await.unwrap().status(),
        401,
        "revoked on A"
    );

    let (_, browser) = crate::common::browser::login(&a, false).await;
    assert_eq!(
        browser.whoami(&b).await.status,
        200,
        "a session from A on B"
    );
    assert_eq!(browser.logout(&b).await.status, 200);
    assert_eq!(
        browser.whoami(&a).await.status,
        401,
        "ended on B, gone on A"
    );
}

/// A master lost, its replica promoted (a failover, as a cloud does it): the store follows the
/// new slot map by itself. Requests for that master's slots fail closed meanwhile (no answer
/// on a guess), and work again once the replica has taken over, without a restart.
#[tokio::test]
async fn a_failover_is_followed_without_a_restart() {
    let Some(mut cluster) =
        RedisCluster::start_with_replicas("a_failover_is_followed_without_a_restart").await
    else {
        return;
    };
    let p = prefix("failover");
    let redis = cluster.store(&p);
    let tokens: &dyn TokenStore = &redis;
    tokens
        .save(token("ws", "usr_f", 0, 3600), NOW)
        .await
        .unwrap();
    let index = format!("{p}user-tokens:{{ws:usr_f}}");
    let master = owner(&cluster, &index).await;
    cluster.kill(master);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match tokens.save(token("ws", "usr_f", 0, 3600), NOW).await {
            Ok(()) => break,
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "no failover: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
    assert!(
        !tokens
            .list_for_user("ws", "usr_f", NOW)
            .await
            .unwrap()
            .is_empty()
    );
}
