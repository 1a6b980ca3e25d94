//! Static assets, compiled into the binary so a deployment is one file. Served with a strong ETag
//! and a day of caching; an unchanged file is answered with 304.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::state::AppState;

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $ct:literal) => {
        Asset {
            path: $path,
            content_type: $ct,
            body: include_bytes!(concat!("../../static/", $path)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("agora.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("avatar.png", "image/png"),
    asset!("agora.js", "text/javascript; charset=utf-8"),
    asset!("vendor/kern/kern.min.css", "text/css; charset=utf-8"),
    asset!("vendor/kern/fonts/fira-sans.css", "text/css; charset=utf-8"),
    asset!("vendor/kern/fonts/fira-sans/FiraSans-Regular.woff2", "font/woff2"),
    asset!("vendor/kern/fonts/fira-sans/FiraSans-Italic.woff2", "font/woff2"),
    asset!("vendor/kern/fonts/fira-sans/FiraSans-Medium.woff2", "font/woff2"),
    asset!(
        "vendor/kern/fonts/fira-sans/FiraSans-SemiBold.woff2",
        "font/woff2"
    ),
    asset!("vendor/kern/fonts/fira-sans/FiraSans-Bold.woff2", "font/woff2"),
];

static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let d = Sha256::digest(a.body);
            format!(
                "\"{}\"",
                d.iter().take(12).map(|b| format!("{b:02x}")).collect::<String>()
            )
        })
        .collect()
});

pub fn routes() -> Router<AppState> {
    Router::new().route("/static/{*path}", get(serve))
}

async fn serve(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let Some((i, asset)) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) else {
        return AppError::not_found().into_response();
    };
    let etag = ETAGS.get(i).cloned().unwrap_or_default();
    let cache = HeaderValue::from_static("public, max-age=86400");
    let etag_value = HeaderValue::from_str(&etag).unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, etag_value), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::ETAG, etag_value),
            (header::CACHE_CONTROL, cache),
        ],
        asset.body,
    )
        .into_response()
}
