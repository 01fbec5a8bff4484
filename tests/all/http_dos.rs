//! Denial of service at the HTTP edge (catalogue §4.10, D1–D4), on loopback, bounded: each test
//! runs a few seconds against a server configured with one- or two-second limits, with raw
//! sockets playing the attacker. What each limit is and why: `src/http/listener.rs`.

use crate::common::http as http_harness;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use http_harness::TestServer;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

const HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n";

/// Reads until the peer closes (EOF or reset) or `limit` passes; returns what came and
/// whether the connection ended.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0) | Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// One request on an open keep-alive connection; returns the status of its answer.
async fn request_on(stream: &mut TcpStream) -> u16 {
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("no answer")
            .unwrap();
        assert!(n > 0, "connection closed before the answer");
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length: usize = text[..end]
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        if received.len() >= end + 4 + length {
            return text[9..12].parse().unwrap();
        }
    }
}

/// A normal request on a fresh connection: status and how long it took.
async fn timed_health(addr: SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = client
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .map_or(0, |r| r.status().as_u16());
    (status, started.elapsed())
}

/// D1: 200 connections that send a request head one header line at a time are closed by the
/// header-read timeout (2 s here), while a normal request made during the attack is answered in
/// under a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d1_slowloris_connections_are_closed_by_the_header_timeout() {
    const ATTACKERS: usize = 200;
    let server = TestServer::start_with(&[("HTTP_HEADER_TIMEOUT", "2")]).await;
    let addr = server.addr;
    let closed = Arc::new(AtomicUsize::new(0));
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(HEAD).await.unwrap();
        let closed = closed.clone();
        attackers.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 1024];
            let mut answered = Vec::new();
            loop {
                tokio::select! {
                    read = stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => answered.extend_from_slice(&buf[..n]),
                    },
                    () = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stream.write_all(b"X-Dribble: 1\r\n").await.is_err() {
                            break;
                        }
                    }
                }
                assert!(
                    started.elapsed() < Duration::from_secs(15),
                    "a slowloris connection is still open"
                );
            }
            closed.fetch_add(1, Ordering::SeqCst);
            (started.elapsed(), answered)
        }));
    }

    // All attackers are connected and dribbling: a normal client is still served, fast.
    let (status, took) = timed_health(addr).await;
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(1),
        "normal request took {took:?}"
    );
    assert_eq!(
        closed.load(Ordering::SeqCst),
        0,
        "the probe must run during the attack"
    );

    for attacker in attackers {
        let (lived, answered) = attacker.await.unwrap();
        assert!(
            lived >= Duration::from_millis(1900) && lived < Duration::from_secs(6),
            "closed after {lived:?}"
        );
        assert!(
            !String::from_utf8_lossy(&answered).contains(" 200 "),
            "a half-sent request was answered"
        );
    }
    // The server is as available after the attack as before.
    assert_eq!(timed_health(addr).await.0, 200);
    server.shutdown().await;
}

/// D2: a body sent one byte every 200 ms gets 408 with the JSON envelope once the body timeout
/// (1 s here) has passed, the connection is closed, and nothing reaches Dust: per-read idle
/// timeouts would never fire on this client, the whole-body deadline does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d2_slow_body_gets_408_and_reaches_nothing() {
    let server = TestServer::start_with(&[("HTTP_BODY_TIMEOUT", "1")]).await;
    let token = server.token(None).await;
    let upstream_before = server.sim.requests().len();
    let login = "POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        .to_owned();
    let mcp = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         MCP-Protocol-Version: 2025-11-25\r\nContent-Length: 200\r\n\r\n"
    );
    for (label, head) in [("login", login), ("mcp", mcp)] {
        let started = Instant::now();
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(b"{\"jsonrpc\":").await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        let mut ended = false;
        while started.elapsed() < Duration::from_secs(8) {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => { ended = true; break; }
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    let _ = stream.write_all(b" ").await;
                }
            }
        }
        let took = started.elapsed();
        let text = String::from_utf8_lossy(&received).into_owned();
        assert!(ended, "{label}: the connection stayed open: {text}");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{label}: answered after {took:?}"
        );
        assert!(text.starts_with("HTTP/1.1 408 "), "{label}: {text}");
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "request_timeout", "{label}");
        assert!(body["error"]["requestId"].is_string(), "{label}");
    }
    assert_eq!(
        server.sim.requests().len(),
        upstream_before,
        "a slow body reached Dust"
    );
    server.shutdown().await;
}

/// D3: a client that pipelines requests and never reads the answers (`slowhttptest -X`) loses
/// its connection once a write has made no progress for the write timeout (1 s here): the
/// server stops producing answers for it instead of holding them, and others are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d3_a_client_that_stops_reading_is_cut_off_by_the_write_timeout() {
    const PIPELINED: usize = 20_000;
    let server = TestServer::start_with(&[("HTTP_WRITE_TIMEOUT", "1")]).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let requests = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(PIPELINED);
    // The requests go out in the background: once the server stops reading, so does this.
    let sender = tokio::spawn(async move {
        let _ = writer.write_all(&requests).await;
        writer
    });

    // Read nothing for long enough to fill the buffers (the server's is bounded) and then
    // outlast the write timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;

    // Then drain: a cut-off connection ends quickly with far fewer answers than requests.
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    let mut ended = false;
    while started.elapsed() < Duration::from_secs(5) {
        match tokio::time::timeout(Duration::from_secs(2), reader.read(&mut buf)).await {
            Err(_) => break,
            Ok(Ok(0) | Err(_)) => {
                ended = true;
                break;
            }
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
    let answers = String::from_utf8_lossy(&received)
        .matches("HTTP/1.1 200 ")
        .count();
    assert!(ended, "the stalled connection is still open");
    assert!(
        answers < PIPELINED,
        "all {PIPELINED} answers were kept for a client that did not read"
    );
    sender.abort();
    assert_eq!(timed_health(server.addr).await.0, 200);
    server.shutdown().await;
}

/// Open file descriptors of this process (client and server sockets both live here).
fn open_fds() -> Option<usize> {
    std::fs::read_dir("/proc/self/fd").ok().map(Iterator::count)
}

/// D4: with `MAX_CONNECTIONS=40`, an idle flood fills the cap; every connection beyond it is
/// closed at once (the server's descriptors stay bounded), a keep-alive connection opened
/// before the flood keeps working, and once the idle ones time out (3 s) new clients are
/// served again. While the cap is full of idle sockets, new connections are refused: that is
/// the price of a hard cap, bounded by the idle timeout (see the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d4_idle_flood_beyond_the_connection_cap() {
    const CAP: usize = 40;
    const EXTRA: usize = 100;
    let server = TestServer::start_with(&[
        ("MAX_CONNECTIONS", &CAP.to_string()),
        ("HTTP_HEADER_TIMEOUT", "3"),
    ])
    .await;
    let fds_before = open_fds();
    let mut existing = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(request_on(&mut existing).await, 200);

    let mut idle = Vec::new();
    for _ in 1..CAP {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let started = Instant::now();
    let mut extra = Vec::new();
    for _ in 0..EXTRA {
        extra.push(TcpStream::connect(server.addr).await.unwrap());
    }
    let mut refused = 0;
    for stream in &mut extra {
        let (data, closed) = read_until_closed(stream, Duration::from_secs(1)).await;
        assert!(data.is_empty());
        refused += usize::from(closed);
    }
    assert_eq!(refused, EXTRA, "connections beyond the cap were kept open");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refusals took {:?}",
        started.elapsed()
    );
    if let (Some(before), Some(now)) = (fds_before, open_fds()) {
        // This process holds 1 + (CAP - 1) + EXTRA client sockets; the server at most CAP.
        let client_side = CAP + EXTRA;
        assert!(
            now - before <= client_side + CAP + 10,
            "{} descriptors opened for {client_side} client sockets and a cap of {CAP}",
            now - before
        );
    }
    // The connection that was there first is still served.
    assert_eq!(request_on(&mut existing).await, 200);

    // The idle sockets are closed by the idle timeout; then the server takes new clients.
    for stream in &mut idle {
        let (_, closed) = read_until_closed(stream, Duration::from_secs(6)).await;
        assert!(closed, "an idle connection outlived the idle timeout");
    }
    drop(extra);
    let (status, took) = timed_health(server.addr).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "took {took:?}");
    server.shutdown().await;
}

/// HTTP/2 (cleartext, prior knowledge) goes through the same listener, router and headers, and
/// the peer address still reaches the rate limiter: a client on 127.0.0.2 with a budget of 2
/// gets its 429 while 127.0.0.1 is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_served_with_the_same_client_address_and_headers() {
    let server = TestServer::start_with(&[("RATE_LIMIT_MAX", "2")]).await;
    let h2 = |local: [u8; 4]| {
        reqwest::Client::builder()
            .http2_prior_knowledge()
            .local_address(std::net::IpAddr::from(local))
            .build()
            .unwrap()
    };
    let other = h2([127, 0, 0, 2]);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = other
            .get(server.url("/api/v1/status"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    let response = h2([127, 0, 0, 1])
        .get(server.url("/api/v1/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.shutdown().await;
}

/// Memory exhaustion through logins (issue 25): the token store holds at most
/// `TOKEN_MAX_RECORDS` records over every user and workspace. At the cap a new login is refused
/// with 503 and nothing is evicted (the tokens already issued keep working); a revoked record
/// makes room again.
#[tokio::test]
async fn a_full_token_store_refuses_new_logins_and_keeps_the_issued_tokens() {
    let sim = mcp_dust_server::sim::spawn(mcp_dust_server::sim::SimConfig::default())
        .await
        .unwrap();
    let stores = mcp_dust_server::store::Stores {
        tokens: Arc::new(mcp_dust_server::store::MemoryTokenStore::with_capacity(2)),
        ..mcp_dust_server::store::Stores::memory()
    };
    let srv = TestServer::start_with_stores(sim, &[], None, stores).await;
    let first = srv.token(None).await;
    let _second = srv.token(None).await;
    let body = serde_json::json!({
        "apiKey": srv.sim.api_key(),
        "workspaceId": srv.sim.workspace_id(),
    });
    let refused = srv.login_with(body.clone()).await;
    assert_eq!(refused.status(), 503);
    let (status, answer) = srv
        .call_tool(&first, "list_agents", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_ne!(
        answer["result"]["isError"],
        serde_json::json!(true),
        "{answer}"
    );
    let logout = srv
        .http
        .post(srv.url("/api/v1/auth/logout"))
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert!(logout.status().is_success());
    assert_eq!(srv.login_with(body).await.status(), 200);
    srv.shutdown().await;
}
