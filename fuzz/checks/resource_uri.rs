//! Resource URI parsing (src/mcp/resources.rs): arbitrary strings, with and without the
//! `dust://workspaces/<own workspace>` prefix.
//!
//! Invariants: only the caller's own workspace parses; every identifier in a parsed URI passes
//! the argument checks (so none can alter a Dust URL path); parse → render (percent-encoding
//! each identifier) → parse gives the same result.
use mcp_dust_server::fuzzing::{check_document_id, check_id, parse_resource_uri};

const WORKSPACE: &str = "wks_Own123";

fn render(template: &str, ids: &[String]) -> String {
    let mut out = format!("dust://workspaces/{WORKSPACE}");
    let mut ids = ids.iter();
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        if segment == "{}" {
            out.push_str(&urlencoding::encode(
                ids.next().expect("one id per placeholder"),
            ));
        } else {
            out.push_str(segment);
        }
    }
    assert!(ids.next().is_none());
    out
}

pub(super) fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let uri = match mode % 3 {
        0 => text.to_string(),
        1 => format!("dust://workspaces/{WORKSPACE}/{text}"),
        _ => format!("dust://workspaces/{text}"),
    };
    let Ok(parsed) = parse_resource_uri(&uri, WORKSPACE) else {
        return;
    };
    let Some(parsed) = parsed else {
        assert_eq!(uri, "dust://workspaces");
        return;
    };
    let decoded_workspace = uri
        .strip_prefix("dust://workspaces/")
        .and_then(|r| r.split('/').next())
        .map(|w| urlencoding::decode(w).unwrap().into_owned());
    assert_eq!(
        decoded_workspace.as_deref(),
        Some(WORKSPACE),
        "another workspace parsed"
    );
    for (i, id) in parsed.ids.iter().enumerate() {
        let is_document = (parsed.template.ends_with("documents/{}")
            || parsed.template.ends_with("tables/{}"))
            && i == 1;
        if is_document {
            assert!(check_document_id("documentId", id).is_ok());
        } else {
            assert!(check_id("id", id).is_ok());
        }
    }
    let again = parse_resource_uri(&render(parsed.template, &parsed.ids), WORKSPACE)
        .expect("a rendered URI parses");
    assert_eq!(again, Some(parsed), "parse → render → parse differs");
}
