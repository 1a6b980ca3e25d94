//! The OpenAPI document of the JSON API, served at `/api/openapi.json`. It is written by hand
//! (src/openapi.json); a test compares its paths and methods with the `/api/` routes in the
//! source, so a route cannot be added or removed without the document following.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

pub const DOCUMENT: &str = include_str!("openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/openapi.json", get(document))
}

async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        DOCUMENT,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::DOCUMENT;

    /// (path, method) of every `.route("/api/…", …)` in the source: the path literal and the
    /// method functions named until the call's closing parenthesis.
    fn routes_in_source() -> BTreeSet<(String, String)> {
        fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let mut found = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let mut rest = text.as_str();
            while let Some(i) = rest.find(".route(") {
                rest = &rest[i + ".route(".len()..];
                // The call's arguments: up to the parenthesis that closes `.route(`.
                let mut depth = 1usize;
                let mut end = 0;
                for (j, c) in rest.char_indices() {
                    match c {
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let call = &rest[..end];
                let Some(path) = call
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|s| s.split('"').next())
                else {
                    continue;
                };
                if !path.starts_with("/api/") || path == "/api/openapi.json" {
                    continue;
                }
                for method in ["get", "post", "put", "patch", "delete"] {
                    let called = call.match_indices(&format!("{method}(")).any(|(k, _)| {
                        k == 0 || !call[..k].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                    });
                    if called {
                        found.insert((path.to_owned(), method.to_owned()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_document_matches_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(DOCUMENT).expect("openapi.json is JSON");
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                assert!(op["summary"].is_string(), "{method} {path} has a summary");
                assert!(op["responses"].is_object(), "{method} {path} has responses");
                documented.insert((path.clone(), method.clone()));
            }
        }
        let routed = routes_in_source();
        assert!(routed.len() > 20, "the scan finds the routes: {routed:?}");
        let missing: Vec<_> = routed.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(missing.is_empty(), "routes without documentation: {missing:?}");
        assert!(stale.is_empty(), "documented but not routed: {stale:?}");
    }
}
