use super::*;

use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::json;

const KEY: &str = "sk-0123456789abcdefABCDEF";

fn request() -> RequestInfo {
    RequestInfo {
        ip: Some("203.0.113.7".parse().unwrap()),
        user_agent: Some("curl/8.5".to_owned()),
        method: Some("POST".to_owned()),
        path: Some("/api/v1/agents/a1/run".to_owned()),
        request_id: Some("req-1".to_owned()),
    }
}

fn full_event() -> AuditEvent {
    AuditEvent::new(
        AuditEventType::ResourceModified,
        Severity::Info,
        "agent run started",
    )
    .user("u_3f2a", Some("jane"))
    .workspace("w_1")
    .session("the-session-id")
    .request(&request())
    .resource("agent", "a1")
    .action("run_agent")
    .result(AuditResult::Success)
    .extra("tool.name", "run_agent")
    .extra("dust.status", 200)
}

fn quiet() -> AuditOptions {
    AuditOptions {
        mirror_to_tracing: false,
        ..AuditOptions::default()
    }
}

#[tokio::test]
async fn a_record_has_every_field() {
    let memory = MemoryAudit::new();
    let auditor = Auditor::start_with(memory.sink(), quiet()).unwrap();
    auditor.record(full_event());
    auditor.flush().await;
    let records = memory.records();
    assert_eq!(records.len(), 1);
    let mut record = records[0].clone();
    let timestamp = record["timestamp"].take();
    assert_eq!(
        record,
        json!({
            "timestamp": null,
            "event_type": "resource_modified",
            "severity": "info",
            "message": "agent run started",
            "user_id": "u_3f2a",
            "username": "jane",
            "workspace_id": "w_1",
            "session_id_hash": crate::mask::fingerprint("the-session-id"),
            "ip": "203.0.113.7",
            "user_agent": "curl/8.5",
            "method": "POST",
            "path": "/api/v1/agents/a1/run",
            "request_id": "req-1",
            "resource_type": "agent",
            "resource_id": "a1",
            "action": "run_agent",
            "result": "success",
            "extra": {"tool.name": "run_agent", "dust.status": 200},
        })
    );
    let format = Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    assert!(format.is_match(timestamp.as_str().unwrap()), "{timestamp}");
}

#[test]
fn unknown_fields_are_null_and_extra_is_an_object() {
    let value = serde_json::to_value(AuditEvent::new(
        AuditEventType::ConfigWarning,
        Severity::Medium,
        "LOG_LEVEL=debug in production",
    ))
    .unwrap();
    assert_eq!(value.as_object().unwrap().len(), 18);
    assert!(value["user_id"].is_null() && value["result"].is_null());
    assert_eq!(value["extra"], json!({}));
}

#[test]
fn timestamps_are_utc_rfc3339_with_milliseconds() {
    let at = |secs: u64, millis: u64| {
        rfc3339_millis(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    };
    assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
    assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
    assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
}

#[test]
fn the_vocabulary_serialises_as_written() {
    for t in [
        AuditEventType::AuthnLoginSuccess,
        AuditEventType::AuthnTokenInvalid,
        AuditEventType::AuthnTokenReuse,
        AuditEventType::AuthnLoginFailMax,
        AuditEventType::RatelimitExceeded,
        AuditEventType::MaliciousInput,
        AuditEventType::CsrfFail,
        AuditEventType::AuditOverflow,
    ] {
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
    assert_eq!(
        serde_json::to_value(Severity::Critical).unwrap(),
        "critical"
    );
    assert_eq!(serde_json::to_value(AuditResult::Denied).unwrap(), "denied");
}

#[test]
fn secrets_never_reach_the_record() {
    let event = AuditEvent::new(
        AuditEventType::AuthnLoginFail,
        Severity::Medium,
        format!("login failed for key {KEY}"),
    )
    .user(KEY, Some(&format!("Bearer {KEY}")))
    .session("raw-session-id-1234")
    .request(&RequestInfo {
        user_agent: Some(format!("agent {KEY}")),
        path: Some(format!("/login?apiKey={KEY}&next=/")),
        ..RequestInfo::default()
    })
    .extra("api_key", KEY)
    .extra(
        "attempt",
        json!({"password": "hunter2", "note": format!("key={KEY}")}),
    );
    let line = serde_json::to_string(&event).unwrap();
    for secret in [KEY, "hunter2", "raw-session-id-1234"] {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
    assert!(
        line.contains(r#""path":"/login?apiKey=[REDACTED]&next=/""#),
        "{line}"
    );
}

#[test]
fn log_injection_stays_one_line_and_long_fields_are_cut() {
    let event = AuditEvent::new(
        AuditEventType::AuthnLoginFail,
        Severity::Medium,
        "bad\r\n{\"level\":\"error\",\"msg\":\"admin login\"}",
    )
    .request(&RequestInfo {
        user_agent: Some(format!(
            "x\r\n{{\"level\":\"error\"}}\u{1b}[31m{}",
            "A".repeat(1 << 20)
        )),
        path: Some(format!("/a%0a/b\n{}", "p".repeat(1 << 20))),
        ..RequestInfo::default()
    });
    let line = serde_json::to_string(&event).unwrap();
    assert!(!line.contains('\n') && !line.contains('\r'));
    let value: Value = serde_json::from_str(&line).unwrap();
    let user_agent = value["user_agent"].as_str().unwrap();
    assert!(
        user_agent.starts_with(r#"x\r\n{"level":"error"}\u{001b}[31mAAA"#),
        "{user_agent}"
    );
    assert!(!user_agent.chars().any(char::is_control));
    assert!(user_agent.split('…').next().unwrap().len() <= MAX_USER_AGENT_BYTES);
    assert!(user_agent.contains("[truncated "));
    let path = value["path"].as_str().unwrap();
    assert!(path.starts_with(r"/a%0a/b\npp"), "{path}");
    assert!(path.len() < MAX_PATH_BYTES + 40);
    assert!(!value["message"].as_str().unwrap().contains('\n'));
}

#[tokio::test]
async fn a_full_queue_drops_counts_and_never_blocks() {
    let memory = MemoryAudit::new();
    let options = AuditOptions {
        capacity: 2,
        mirror_to_tracing: false,
    };
    let auditor = Auditor::start_with(memory.sink(), options).unwrap();
    let event = || AuditEvent::new(AuditEventType::ResourceAccess, Severity::Info, "read");
    {
        // Hold the memory sink so the writer stalls on the first record it takes.
        let stall = memory.lock();
        auditor.record(event());
        std::thread::sleep(Duration::from_millis(100));
        let started = Instant::now();
        for _ in 0..9 {
            auditor.record(event());
        }
        assert!(started.elapsed() < Duration::from_secs(1), "record blocked");
        assert!(auditor.dropped() >= 7, "dropped {}", auditor.dropped());
        drop(stall);
    }
    auditor.flush().await;
    let dropped = auditor.dropped();
    let written = memory.of_type(AuditEventType::ResourceAccess).len() as u64;
    assert_eq!(written + dropped, 10);
    let overflow = memory.of_type(AuditEventType::AuditOverflow);
    assert_eq!(overflow.len(), 1);
    assert_eq!(overflow[0]["extra"]["audit.dropped"], dropped);
    assert_eq!(overflow[0]["severity"], "high");
    // Later records flow again, and the overflow is not reported twice.
    auditor.record(event());
    auditor.flush().await;
    assert_eq!(memory.of_type(AuditEventType::AuditOverflow).len(), 1);
    assert_eq!(
        memory.of_type(AuditEventType::ResourceAccess).len() as u64,
        written + 1
    );
}

#[tokio::test]
async fn flush_and_shutdown_drain_everything() {
    let memory = MemoryAudit::new();
    let auditor = Auditor::start_with(memory.sink(), quiet()).unwrap();
    let clone = auditor.clone();
    for i in 0..500 {
        clone.record(AuditEvent::new(
            AuditEventType::ResourceAccess,
            Severity::Info,
            format!("n{i}"),
        ));
    }
    auditor.flush().await;
    assert_eq!(memory.records().len(), 500);
    for i in 0..300 {
        auditor.record(AuditEvent::new(
            AuditEventType::ResourceAccess,
            Severity::Info,
            format!("m{i}"),
        ));
    }
    auditor.shutdown().await;
    let records = memory.records();
    assert_eq!(records.len(), 800);
    assert_eq!(records[799]["message"], "m299");
    assert_eq!(clone.dropped(), 0);
    clone.record(AuditEvent::new(
        AuditEventType::ResourceAccess,
        Severity::Info,
        "late",
    ));
    assert_eq!(clone.dropped(), 1);
    clone.flush().await; // returns at once: the writer is gone
}

#[tokio::test]
async fn the_file_sink_appends_json_lines_and_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    for round in 0..2 {
        let auditor = Auditor::start_with(AuditSink::File(path.clone()), quiet()).unwrap();
        auditor.record(full_event().extra("round", round));
        auditor.record(AuditEvent::new(
            AuditEventType::SessionEnded,
            Severity::Info,
            "bye",
        ));
        auditor.shutdown().await;
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        assert!(value.is_object());
    }
    assert_eq!(
        serde_json::from_str::<Value>(lines[2]).unwrap()["extra"]["round"],
        1
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn an_unopenable_file_fails_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let error = Auditor::start(AuditSink::File(dir.path().join("missing/audit.log"))).unwrap_err();
    assert!(
        error.to_string().starts_with("cannot open the audit log"),
        "{error}"
    );
}

#[test]
fn suspicious_input_is_labelled() {
    for text in [
        "How do I write SELECT * FROM users WHERE id=1 OR 1=1; -- ?",
        "admin' OR '1'='1",
        "x' --",
        "1 UNION ALL SELECT password FROM users",
        "a; DROP TABLE users",
    ] {
        assert_eq!(detect_suspicious(text), Some("sql_injection"), "{text}");
    }
    for text in [
        "explain <script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "<a href=\"javascript:alert(1)\">",
        "< IFRAME src=//evil>",
    ] {
        assert_eq!(detect_suspicious(text), Some("script_injection"), "{text}");
    }
}

#[test]
fn ordinary_text_is_not_flagged() {
    for text in [
        "select a colour for the chart",
        "Please drop me a line; update the doc when you can",
        "the union selected a new chair",
        "It's the customer's order -- shipped today",
        "SELECT statements are explained in chapter 3",
        "javascript is fun, and so is onboarding",
        "rock 'n' roll",
    ] {
        assert_eq!(detect_suspicious(text), None, "{text}");
    }
}
