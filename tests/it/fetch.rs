//! The bounded fetch client against a real HTTP server on loopback.

use std::sync::{Arc, Mutex};

use agora::config::{Config, RawValues};
use agora::federation::fetch::{FetchClient, FetchError, Signer};
use agora::federation::{keys, signatures};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

fn config(public_url: &str) -> Config {
    let mut v = RawValues::new();
    v.insert("public_url".into(), toml::Value::String(public_url.into()));
    v.insert(
        "federation.blocked_domains".into(),
        toml::Value::Array(vec![toml::Value::String("blocked.example".into())]),
    );
    Config::from_values(&v).unwrap()
}

const AP: &str = "application/activity+json";

async fn peer(seen: Arc<Mutex<Vec<HeaderMap>>>) -> String {
    let app = Router::new()
        .route(
            "/actor",
            get(move |headers: HeaderMap| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(headers);
                    ([(header::CONTENT_TYPE, AP)], r#"{"id":"x","type":"Person"}"#)
                }
            }),
        )
        .route(
            "/big",
            get(|| async { ([(header::CONTENT_TYPE, AP)], vec![b' '; 2 * 1024 * 1024]) }),
        )
        .route(
            "/html",
            get(|| async { ([(header::CONTENT_TYPE, "text/html")], "<p>hi</p>") }),
        )
        .route("/gone", get(|| async { StatusCode::GONE }))
        .route(
            "/hop/{n}",
            get(|axum::extract::Path(n): axum::extract::Path<u32>| async move {
                if n == 0 {
                    ([(header::CONTENT_TYPE, AP)], r#"{"hops":"done"}"#).into_response()
                } else {
                    axum::response::Redirect::temporary(&format!("/hop/{}", n - 1)).into_response()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_are_bounded_and_signed() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let base = peer(seen.clone()).await;
    let client = FetchClient::new(&config("http://127.0.0.1:8080")).unwrap();
    let url = |p: &str| url::Url::parse(&format!("{base}{p}")).unwrap();

    let (public, private) = keys::generate().unwrap();
    let signer = Signer {
        key_id: "http://127.0.0.1:8080/actor#main-key".into(),
        private_key_pem: private,
    };
    let doc = client.get_json(&url("/actor"), Some(&signer)).await.unwrap();
    assert_eq!(doc["type"], "Person");
    let headers = seen.lock().unwrap().pop().unwrap();
    let sig = signatures::parse_signature_header(headers["signature"].to_str().unwrap()).unwrap();
    assert_eq!(sig.key_id, signer.key_id);
    let message = signatures::signing_string(&sig, "GET", "/actor", |n| {
        headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned)
    })
    .unwrap();
    signatures::verify(&sig, &message, &public).expect("our GET signature verifies");

    assert_eq!(
        client.get_json(&url("/hop/3"), None).await.unwrap()["hops"],
        "done",
        "3 redirects are followed"
    );
    assert!(matches!(
        client.get_json(&url("/hop/4"), None).await,
        Err(FetchError::TooManyRedirects(_))
    ));
    assert!(matches!(
        client.get_json(&url("/big"), None).await,
        Err(FetchError::TooLarge(_))
    ));
    assert!(matches!(
        client.get_json(&url("/html"), None).await,
        Err(FetchError::ContentType { .. })
    ));
    assert!(matches!(
        client.get_json(&url("/gone"), None).await,
        Err(FetchError::Gone(_))
    ));
    let blocked = url::Url::parse("http://sub.blocked.example/actor").unwrap();
    assert!(matches!(
        client.get_json(&blocked, None).await,
        Err(FetchError::Refused { .. })
    ));

    // Outside debug mode the loopback peer is out of reach.
    let strict = FetchClient::new(&config("https://agora.example")).unwrap();
    assert!(matches!(
        strict.get_json(&url("/actor"), None).await,
        Err(FetchError::Refused { .. })
    ));
}
