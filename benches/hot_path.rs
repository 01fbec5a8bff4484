//! Micro-benchmarks of what every authenticated request goes through: JWT verification, the
//! permission check, masking, the rate-limit counter and the audit enqueue. `cargo bench
//! --bench hot_path`; CI only builds them (clippy --all-targets). Figures and the machine they
//! were taken on are in docs/PERFORMANCE.md.

use std::{
    hint::black_box,
    time::{Duration, SystemTime},
};

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_dust_server::{
    audit::{
        AuditEvent, AuditEventType, AuditOptions, AuditResult, AuditSink, Auditor, RequestInfo,
        Severity,
    },
    auth::{JwtIssuer, Keys, Permission, PermissionSet, TokenSubject},
    mask,
    store::{CounterStore, MemoryCounterStore},
};
use serde_json::json;

const DEFAULT_PERMISSIONS: &str =
    "read:workspaces,read:agents,execute:agents,read:knowledge-bases,read:connectors";

/// The server's allocator, so that the figures describe the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn issuer() -> JwtIssuer {
    JwtIssuer::new(
        &Keys::ephemeral(),
        "http://127.0.0.1:5001",
        "http://127.0.0.1:5001/mcp",
        Duration::from_secs(3600),
    )
}

fn jwt(c: &mut Criterion) {
    let issuer = issuer();
    let subject = TokenSubject {
        user_id: "usr_0123456789abcdef01234567".to_owned(),
        username: "bench".to_owned(),
        workspace_id: "w0123456789".to_owned(),
        permissions: PermissionSet::parse_list(DEFAULT_PERMISSIONS).expect("known permissions"),
    };
    let now = SystemTime::now();
    let (token, _) = issuer
        .issue(&subject, "tok_0123456789abcdefghijkl", now)
        .unwrap();
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    c.bench_function("jwt/verify valid", |b| {
        b.iter(|| issuer.verify(black_box(&token), now).expect("valid"));
    });
    c.bench_function("jwt/verify bad signature", |b| {
        b.iter(|| {
            issuer
                .verify(black_box(&tampered), now)
                .expect_err("tampered")
        });
    });
}

fn permissions(c: &mut Criterion) {
    let issuer = issuer();
    let subject = TokenSubject {
        user_id: "usr_0123456789abcdef01234567".to_owned(),
        username: "bench".to_owned(),
        workspace_id: "w0123456789".to_owned(),
        permissions: PermissionSet::parse_list(DEFAULT_PERMISSIONS).expect("known permissions"),
    };
    let (_, claims) = issuer
        .issue(&subject, "tok_0123456789abcdefghijkl", SystemTime::now())
        .unwrap();
    c.bench_function("permissions/set from claims", |b| {
        b.iter(|| black_box(&claims).permission_set().expect("known"));
    });
    let set = subject.permissions;
    c.bench_function("permissions/check every permission", |b| {
        b.iter(|| {
            Permission::ALL
                .iter()
                .filter(|p| black_box(set).contains(**p))
                .count()
        });
    });
}

fn masking(c: &mut Criterion) {
    let clean = "tools/call list_agents for usr_0123456789abcdef01234567 in w0123456789";
    let with_secret = "login with sk-0123456789abcdef0123456789abcdef and Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
    c.bench_function("mask/text clean", |b| {
        b.iter(|| mask::mask_text(black_box(clean)))
    });
    c.bench_function("mask/text with secrets", |b| {
        b.iter(|| mask::mask_text(black_box(with_secret)));
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "search_knowledge", "arguments": {"query": "PTO policy", "apiKey": "sk-0123456789abcdef0123456789abcdef"}}});
    c.bench_function("mask/json request body", |b| {
        b.iter(|| {
            let mut value = body.clone();
            mask::mask_json(&mut value);
            value
        });
    });
}

fn limiter(c: &mut Criterion) {
    let store = MemoryCounterStore::new();
    let window = Duration::from_secs(3600);
    let now = SystemTime::now();
    c.bench_function("limiter/incr one key", |b| {
        b.iter(|| {
            futures::executor::block_on(store.incr_with_ttl(black_box("ip:127.0.0.1"), window, now))
                .expect("memory store")
        });
    });
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256))
        .collect();
    let mut i = 0;
    c.bench_function("limiter/incr among 10k keys", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            futures::executor::block_on(store.incr_with_ttl(&keys[i], window, now))
                .expect("memory store")
        });
    });
}

fn audit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let auditor = Auditor::start_with(
        AuditSink::File("/dev/null".into()),
        AuditOptions {
            mirror_to_tracing: false,
            ..AuditOptions::default()
        },
    )
    .expect("audit writer");
    let request = RequestInfo {
        ip: Some("127.0.0.1".parse().expect("ip")),
        user_agent: Some("loadgen/1.0".to_owned()),
        method: Some("POST".to_owned()),
        path: Some("/mcp".to_owned()),
        request_id: Some("0b3f7c8e-1d2a-4f5b-9c6d-7e8f9a0b1c2d".to_owned()),
    };
    c.bench_function("audit/build and enqueue a tool call record", |b| {
        b.iter(|| {
            auditor.record(
                AuditEvent::new(
                    AuditEventType::ResourceAccess,
                    Severity::Info,
                    "tool call list_agents",
                )
                .user("usr_0123456789abcdef01234567", Some("bench"))
                .request(&request)
                .resource("tool", "list_agents")
                .action("tools/call")
                .result(AuditResult::Success),
            );
        });
    });
    eprintln!(
        "audit records dropped (queue full) during the run: {}",
        auditor.dropped()
    );
    runtime.block_on(auditor.shutdown());
}

criterion_group!(benches, jwt, permissions, masking, limiter, audit);
criterion_main!(benches);
