//! HTTP behaviour shared by every page: health, headers, error formats, static assets, shutdown.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Backend, TestServer};

crate::backend_tests!(
    health_and_readiness,
    security_headers_and_request_id,
    errors_are_json_for_clients_and_pages_for_browsers,
    static_assets_are_cached,
    home_page_says_what_the_instance_is,
    graceful_shutdown_finishes,
);

async fn health_and_readiness(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let h = c.get(srv.at("/healthz")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let r = c.get(srv.at("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ready");
}

async fn security_headers_and_request_id(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let res = reqwest::Client::new().get(srv.at("/")).send().await.unwrap();
    let h = res.headers();
    let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
    assert!(csp.starts_with("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
    assert!(h.contains_key("referrer-policy"));
    assert_eq!(h.get("x-request-id").unwrap().len(), 16);
    let gz = reqwest::Client::new()
        .get(srv.at("/static/vendor/kern/kern.min.css"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        gz.headers().get("content-encoding").map(|v| v.to_str().unwrap()),
        Some("gzip"),
        "responses are compressed"
    );
    // Error responses carry them too.
    let res = reqwest::Client::new()
        .get(srv.at("/missing"))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("content-security-policy"));
}

async fn errors_are_json_for_clients_and_pages_for_browsers(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let json = c.get(srv.at("/no/such/page")).send().await.unwrap();
    assert_eq!(json.status(), StatusCode::NOT_FOUND);
    let body: Value = json.json().await.unwrap();
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().ends_with('.'));

    let page = c
        .get(srv.at("/no/such/page"))
        .header("accept", "text/html,*/*")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains(">Seite nicht gefunden</h1>") && html.contains("<main"),
        "{html}"
    );
    let en = c
        .get(srv.at("/no/such/page"))
        .header("accept", "text/html")
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        en.contains("<html lang=\"en\">") && en.contains(">Page not found</h1>"),
        "{en}"
    );

    // Routing errors from axum itself are rewritten as well.
    let m = c.delete(srv.at("/healthz")).send().await.unwrap();
    assert_eq!(m.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(m.json::<Value>().await.unwrap()["error"], "method_not_allowed");
    // The API answers JSON even to a browser's Accept header.
    let api = c
        .get(srv.at("/api/v1/me"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.json::<Value>().await.unwrap()["error"], "unauthenticated");
}

async fn static_assets_are_cached(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let css = c.get(srv.at("/static/agora.css")).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(
        css.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let etag = css.headers()["etag"].clone();
    let again = c
        .get(srv.at("/static/agora.css"))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        c.get(srv.at("/static/../Cargo.toml"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(srv.at("/static/nope.css")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn home_page_says_what_the_instance_is(b: Backend) {
    let Some(srv) = TestServer::start_with(
        b,
        &[
            ("instance.name", "Stadt Beispiel"),
            ("instance.description", "Digitale Projekte"),
        ],
    )
    .await
    else {
        return;
    };
    let html = reqwest::Client::new()
        .get(srv.at("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(">Stadt Beispiel</h1>"), "{html}");
    assert!(html.contains("Digitale Projekte"));
    assert!(html.contains("href=\"/login\""));
    assert!(
        html.contains("agora user create NAME --email"),
        "a fresh instance says how to create the admin"
    );
    assert_eq!(html.matches("<h1").count(), 1);
}

async fn graceful_shutdown_finishes(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let url = srv.at("/healthz");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), StatusCode::OK);
    tokio::time::timeout(std::time::Duration::from_secs(10), srv.stop())
        .await
        .expect("server stops");
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}
