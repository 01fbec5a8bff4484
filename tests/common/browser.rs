//! A browser stand-in for the session and CSRF tests: logs in with `"session": true`, parses
//! `Set-Cookie` by hand (so attribute tests see exactly what was sent), and replays the cookies
//! and the CSRF header on later requests. No cookie jar: every test says which cookies it sends.

use reqwest::Method;
use serde_json::{Value, json};

use super::http::{TestServer, parse_mcp_body};

/// A whole answer, read.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub(crate) async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = parse_mcp_body(&text);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    /// Every `Set-Cookie` of the answer, parsed.
    pub(crate) fn set_cookies(&self) -> Vec<SetCookie> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| SetCookie::parse(v.to_str().unwrap()))
            .collect()
    }

    /// The `Set-Cookie` for `name`; panics unless there is exactly one.
    pub(crate) fn cookie(&self, name: &str) -> SetCookie {
        let found: Vec<SetCookie> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.name == name)
            .collect();
        assert_eq!(found.len(), 1, "one Set-Cookie {name}: {:?}", self.headers);
        found.into_iter().next().unwrap()
    }

    /// The error envelope with `code` and the response's request id.
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "{}", self.text);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(
            error["requestId"].as_str(),
            self.headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok()),
            "{}",
            self.text
        );
    }
}

/// One `Set-Cookie` header: name, value, and attributes (names lower-cased).
#[derive(Debug, Clone)]
pub(crate) struct SetCookie {
    pub raw: String,
    pub name: String,
    pub value: String,
    pub attributes: Vec<(String, Option<String>)>,
}

impl SetCookie {
    pub(crate) fn parse(raw: &str) -> Self {
        let mut parts = raw.split(';');
        let (name, value) = parts.next().unwrap().trim().split_once('=').unwrap();
        let attributes = parts
            .map(|a| {
                let a = a.trim();
                match a.split_once('=') {
                    Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_owned())),
                    None => (a.to_ascii_lowercase(), None),
                }
            })
            .collect();
        Self {
            raw: raw.to_owned(),
            name: name.to_owned(),
            value: value.to_owned(),
            attributes,
        }
    }

    pub(crate) fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|(k, _)| k == attribute)
    }

    pub(crate) fn get(&self, attribute: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == attribute)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Cookie names of a mode.
pub(crate) fn names(production: bool) -> (&'static str, &'static str) {
    if production {
        ("__Host-mcp.sid", "__Host-XSRF-TOKEN")
    } else {
        ("mcp.sid", "XSRF-TOKEN")
    }
}

/// A test server in development or production mode.
pub(crate) async fn server(production: bool) -> TestServer {
    if production {
        TestServer::start_with(&[
            ("NODE_ENV", "production"),
            ("MCP_PUBLIC_URL", "https://mcp.example.com"),
        ])
        .await
    } else {
        TestServer::start().await
    }
}

/// A logged-in browser: its session id, CSRF cookie and the `csrfToken` of the answer.
#[derive(Debug, Clone)]
pub(crate) struct Browser {
    pub production: bool,
    pub sid: String,
    pub xsrf_cookie: String,
    pub csrf: String,
    pub user_id: String,
}

/// The simulator's key and workspace, as a browser login.
pub(crate) fn session_login_body(srv: &TestServer) -> Value {
    json!({
        "apiKey": srv.sim.api_key(),
        "workspaceId": srv.sim.workspace_id(),
        "session": true,
    })
}

/// Logs in with `"session": true`, sending `cookie` if given; expects 200.
pub(crate) async fn login_with_cookie(
    srv: &TestServer,
    production: bool,
    cookie: Option<&str>,
) -> (Reply, Browser) {
    let mut request = srv
        .http
        .post(srv.url("/api/v1/auth/login"))
        .json(&session_login_body(srv));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let reply = Reply::read(request.send().await.unwrap()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let browser = Browser::from_reply(&reply, production);
    (reply, browser)
}

/// Logs in with `"session": true`; expects 200.
pub(crate) async fn login(srv: &TestServer, production: bool) -> (Reply, Browser) {
    login_with_cookie(srv, production, None).await
}

impl Browser {
    /// The browser after an answer that set both cookies.
    pub(crate) fn from_reply(reply: &Reply, production: bool) -> Self {
        let (sid, xsrf) = names(production);
        Self {
            production,
            sid: reply.cookie(sid).value,
            xsrf_cookie: reply.cookie(xsrf).value,
            csrf: reply.body["csrfToken"].as_str().unwrap().to_owned(),
            user_id: reply.body["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// `Cookie:` with both cookies.
    pub(crate) fn cookie_header(&self) -> String {
        let (sid, xsrf) = names(self.production);
        format!("{sid}={}; {xsrf}={}", self.sid, self.xsrf_cookie)
    }

    /// `Cookie:` with the session cookie only.
    pub(crate) fn sid_cookie(&self) -> String {
        format!("{}={}", names(self.production).0, self.sid)
    }

    /// A request with both cookies and, when `csrf` is set, the `X-XSRF-TOKEN` header.
    pub(crate) async fn send(
        &self,
        srv: &TestServer,
        method: Method,
        path: &str,
        csrf: bool,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut request = srv
            .http
            .request(method, srv.url(path))
            .header("Cookie", self.cookie_header());
        if csrf {
            request = request.header("X-XSRF-TOKEN", &self.csrf);
        }
        for (k, v) in extra {
            request = request.header(*k, *v);
        }
        Reply::read(request.send().await.unwrap()).await
    }

    /// `GET /api/v1/auth/session`.
    pub(crate) async fn whoami(&self, srv: &TestServer) -> Reply {
        self.send(srv, Method::GET, "/api/v1/auth/session", false, &[])
            .await
    }

    /// `POST /api/v1/auth/refresh` with the CSRF header (rotates the session).
    pub(crate) async fn refresh(&self, srv: &TestServer) -> Reply {
        self.send(srv, Method::POST, "/api/v1/auth/refresh", true, &[])
            .await
    }

    /// `POST /api/v1/auth/logout` with the CSRF header.
    pub(crate) async fn logout(&self, srv: &TestServer) -> Reply {
        self.send(srv, Method::POST, "/api/v1/auth/logout", true, &[])
            .await
    }
}

/// A request with raw headers only.
pub(crate) async fn send_raw(
    srv: &TestServer,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = srv.http.request(method, srv.url(path));
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// Every audit record of `event_type` whose `extra.reason` is `reason`.
pub(crate) async fn audited(
    srv: &TestServer,
    event_type: mcp_dust_server::audit::AuditEventType,
    reason: &str,
) -> Vec<Value> {
    srv.state.auditor.flush().await;
    srv.audit
        .of_type(event_type)
        .into_iter()
        .filter(|r| r["extra"]["reason"] == reason)
        .collect()
}
