//! The web console at `/console`: a small single-page app (HTML, one stylesheet, plain ES
//! modules, no build step) compiled into the binary, so a deployment is still one file.
//!
//! The page talks to the same REST API as any client, authenticated by the session cookie and
//! the CSRF header (`POST /api/v1/auth/login` with `"session": true`); it never sees a bearer
//! token. Its responses carry the [`super::headers::ConsoleResponse`] marker, which makes the
//! security-header layer send the console's own CSP (`script-src 'self'`, no inline code,
//! Trusted Types) instead of the API's `default-src 'none'` and keep the cache policy chosen
//! here: the HTML is never stored, the other files are cached briefly and revalidated by ETag.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

use super::headers::ConsoleResponse;
use crate::{error::ApiError, state::AppState};

/// The page: never stored, so a logout or a new release is seen at once.
const PAGE_CACHE: &str = "no-store";

/// Scripts, styles and the icon: no secrets in them, cached for five minutes, then
/// revalidated with their ETag (a new release is picked up within that time).
const ASSET_CACHE: &str = "public, max-age=300";

/// One file served from the binary.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: Asset = Asset {
    name: "index.html",
    content_type: "text/html; charset=utf-8",
    body: include_bytes!("assets/index.html"),
};

/// Everything under `/console/<name>` (the page itself is only at `/console`).
const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/app.js"),
    },
    Asset {
        name: "api.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/api.js"),
    },
    Asset {
        name: "markdown.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/markdown.js"),
    },
    // markdown-it, vendored (see its header): the parser markdown.js builds answers with.
    Asset {
        name: "markdown-it.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/markdown-it.js"),
    },
    Asset {
        name: "sse.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("assets/sse.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("assets/console.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("assets/favicon.svg"),
    },
];

/// Strong ETags, one per entry of [`ASSETS`], from the SHA-256 of the content.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            HeaderValue::try_from(format!("\"{}\"", hex::encode(&digest[..12])))
                .expect("hex is a valid header value")
        })
        .collect()
});

/// `GET /console` and `GET /console/<file>` (public: the login form is part of the page).
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/{name}", get(asset))
}

async fn page() -> Response {
    respond(&INDEX, PAGE_CACHE, None)
}

async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return ApiError::not_found("no such console file").into_response();
    };
    let etag = &ETAGS[index];
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag.to_str().unwrap_or_default() || tag.trim() == "*");
    if fresh {
        let mut response = (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag.clone()),
                (header::CACHE_CONTROL, HeaderValue::from_static(ASSET_CACHE)),
            ],
        )
            .into_response();
        response.extensions_mut().insert(ConsoleResponse);
        return response;
    }
    respond(&ASSETS[index], ASSET_CACHE, Some(etag.clone()))
}

fn respond(asset: &Asset, cache: &'static str, etag: Option<HeaderValue>) -> Response {
    let mut response = (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        asset.body,
    )
        .into_response();
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response.extensions_mut().insert(ConsoleResponse);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads only its own files: no inline script or style (the CSP would block them),
    /// nothing from another origin.
    #[test]
    fn the_page_has_no_inline_code_and_no_external_resources() {
        let html = std::str::from_utf8(INDEX.body).unwrap();
        assert!(!html.contains("<style"), "inline style element");
        assert!(!html.contains(" style="), "inline style attribute");
        let inline_handler = html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name > 0 && rest[name..].starts_with('=')
        });
        assert!(!inline_handler, "inline event handler");
        for script in html.split("<script").skip(1) {
            let tag = &script[..script.find('>').unwrap()];
            assert!(
                tag.contains("src=\"/console/"),
                "inline or foreign script: {tag}"
            );
        }
        for scheme in ["http:", "https:", "//"] {
            assert!(!html.contains(&format!("=\"{scheme}")), "external {scheme}");
        }
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.body).unwrap();
            assert!(!text.contains("innerHTML"), "{} writes HTML", asset.name);
            assert!(!text.contains("eval("), "{} evaluates strings", asset.name);
        }
    }

    #[test]
    fn every_linked_file_is_served() {
        let html = std::str::from_utf8(INDEX.body).unwrap();
        for part in html.split("\"/console/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{name} is linked but not served"
            );
        }
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.body).unwrap();
            for part in text.split("from \"./").skip(1) {
                let name = &part[..part.find('"').unwrap()];
                assert!(
                    ASSETS.iter().any(|a| a.name == name),
                    "{name} imported, not served"
                );
            }
        }
    }
}
