//! The consent and error pages: server-rendered HTML in the console's style (its stylesheet),
//! no script at all, every interpolated value escaped, and a strict CSP of their own
//! ([`PagePolicy`]): nothing loads but our stylesheet and icon, nothing may frame the page, and
//! the form may post only here and lead only to the client's redirect origin (`form-action`
//! also governs the redirect after the post).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use crate::http::headers::PagePolicy;

/// HTML-escapes `text` for element content and quoted attribute values.
#[must_use]
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's CSP; `form_target` is the origin the consent may redirect to.
fn policy(form_target: Option<&str>) -> HeaderValue {
    let form = form_target.map_or_else(String::new, |origin| format!(" {origin}"));
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'{form}; \
         base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
         trusted-types 'none'"
    );
    HeaderValue::from_str(&csp).unwrap_or_else(|_| {
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        )
    })
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <title>{title}</title>\n<link rel=\"icon\" href=\"/console/favicon.svg\" type=\"image/svg+xml\">\n\
         <link rel=\"stylesheet\" href=\"/console/console.css\">\n</head>\n<body>\n\
         <header class=\"bar\"><h1>Dust MCP server</h1></header>\n<main id=\"main\">\n{body}\n</main>\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// A rendered page with its policy and `no-store` (a consent page holds a form token).
pub(super) fn respond(
    status: StatusCode,
    title: &str,
    body: &str,
    form_target: Option<&str>,
) -> Response {
    let mut response = (status, Html(document(title, body))).into_response();
    response
        .extensions_mut()
        .insert(PagePolicy(policy(form_target)));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// An error of an authorization request (an unknown client, a redirect URI not registered, or
/// any other invalid parameter): shown here, never redirected (`authorize`'s module doc).
pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<section class=\"card\"><h2>This authorization request cannot continue</h2>\n\
         <p class=\"error\" role=\"alert\">{}</p>\n\
         <p class=\"hint\">Nothing was shared. Close this window and try connecting again from your client.</p></section>",
        escape(message)
    );
    respond(status, "Authorization error", &body, None)
}

/// What the consent page shows.
pub(super) struct Consent<'a> {
    pub client_name: Option<&'a str>,
    pub client_id: &'a str,
    pub redirect_host: &'a str,
    pub redirect_origin: &'a str,
    pub scopes: &'a [String],
    pub pending_id: &'a str,
    pub form_token: &'a str,
    pub workspace_id: Option<&'a str>,
    pub problem: Option<&'a str>,
}

/// The consent page: who is asking, where the answer goes, for which permissions; the key
/// and workspace fields; approve or deny.
pub(super) fn consent(status: StatusCode, c: &Consent<'_>) -> Response {
    let name = c.client_name.unwrap_or("An unnamed application");
    let mut scopes = String::new();
    for scope in c.scopes {
        let s = escape(scope);
        scopes.push_str(&format!(
            "<li><label><input type=\"checkbox\" name=\"scope\" value=\"{s}\" checked> <code>{s}</code></label></li>\n"
        ));
    }
    let problem = c.problem.map_or_else(String::new, |p| {
        format!("<p class=\"error\" role=\"alert\">{}</p>\n", escape(p))
    });
    let body = format!(
        "<section aria-labelledby=\"consent-title\">\n\
         <h2 id=\"consent-title\">Connect {name} to your Dust workspace?</h2>\n{problem}\
         <form class=\"card\" method=\"post\" action=\"/oauth/authorize\" autocomplete=\"off\">\n\
         <p><strong>{name}</strong> <span class=\"hint\">(client id <code>{client_id}</code>)</span> asks to use this \
         server's tools on your behalf. After you approve, you are sent back to <strong>{host}</strong>.</p>\n\
         <fieldset><legend>Permissions to grant</legend>\n<ul class=\"picks\">\n{scopes}</ul>\n\
         <p class=\"hint\">You get at most what this server's policy allows your key; untick what the application does not need.</p></fieldset>\n\
         <label for=\"api-key\">Dust API key</label>\n\
         <input id=\"api-key\" name=\"api_key\" type=\"password\" required autocomplete=\"off\" spellcheck=\"false\">\n\
         <label for=\"workspace\">Workspace id</label>\n\
         <input id=\"workspace\" name=\"workspace_id\" type=\"text\" autocomplete=\"off\" spellcheck=\"false\" pattern=\"[A-Za-z0-9]{{1,64}}\" value=\"{workspace}\">\n\
         <input type=\"hidden\" name=\"consent\" value=\"{pending}\">\n\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\n\
         <div class=\"row\"><button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\n\
         <button type=\"submit\" name=\"action\" value=\"deny\" class=\"danger\" formnovalidate>Deny</button></div>\n\
         <p class=\"hint\">The key is checked with Dust and kept sealed on this server; {name} never sees it.</p>\n\
         </form>\n</section>",
        name = escape(name),
        client_id = escape(c.client_id),
        host = escape(c.redirect_host),
        workspace = escape(c.workspace_id.unwrap_or("")),
        pending = escape(c.pending_id),
        token = escape(c.form_token),
    );
    respond(
        status,
        "Authorize an application",
        &body,
        Some(c.redirect_origin),
    )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;&lt;/script&gt;"
        );
    }
}
