//! Remote actors: fetched, cached, refreshed, refused when they lie about their id, deleted on 410.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use agora::config::{Config, RawValues};
use agora::federation::fetch::FetchClient;
use agora::federation::remote::{self, Error};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::support::{Backend, TestDb};

crate::backend_tests!(remote_actors_are_cached_and_refreshed);

#[derive(Clone)]
struct Peer {
    base: Arc<std::sync::OnceLock<String>>,
    hits: Arc<AtomicUsize>,
    gone: Arc<AtomicBool>,
}

async fn actor(State(p): State<Peer>, Path(name): Path<String>) -> axum::response::Response {
    p.hits.fetch_add(1, Ordering::SeqCst);
    if p.gone.load(Ordering::SeqCst) {
        return StatusCode::GONE.into_response();
    }
    let base = p.base.get().unwrap();
    let id = if name == "liar" {
        format!("{base}/users/someone_else")
    } else {
        format!("{base}/users/{name}")
    };
    let doc = serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams"],
        "id": id, "type": "Person", "preferredUsername": name, "name": "<b>Remote</b> Person",
        "inbox": format!("{id}/inbox"), "endpoints": { "sharedInbox": format!("{base}/inbox") },
        "publicKey": [{ "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n" }]
    });
    (
        [(header::CONTENT_TYPE, "application/activity+json")],
        doc.to_string(),
    )
        .into_response()
}

async fn remote_actors_are_cached_and_refreshed(b: Backend) {
    let Some(tdb) = tokio::task::spawn_blocking(move || TestDb::new(b)).await.unwrap() else {
        return;
    };
    let db = tdb.connect();
    let peer = Peer {
        base: Arc::default(),
        hits: Arc::default(),
        gone: Arc::default(),
    };
    let app = Router::new()
        .route("/users/{name}", get(actor))
        .with_state(peer.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    peer.base.set(base.clone()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut v = RawValues::new();
    v.insert(
        "public_url".into(),
        toml::Value::String("http://127.0.0.1:8080".into()),
    );
    let client = FetchClient::new(&Config::from_values(&v).unwrap()).unwrap();
    let url = url::Url::parse(&format!("{base}/users/erika")).unwrap();

    let a = remote::resolve(&db, &client, None, &url, false).await.unwrap();
    assert_eq!(a.preferred_username.as_deref(), Some("erika"));
    assert_eq!(
        a.name.as_deref(),
        Some("Remote Person"),
        "remote names become plain text"
    );
    assert_eq!(
        a.delivery_inbox(),
        Some(format!("{base}/inbox").as_str()),
        "shared inbox preferred"
    );
    assert!(a.key_pem(&format!("{url}#main-key")).is_some());
    remote::resolve(&db, &client, None, &url, false).await.unwrap();
    assert_eq!(
        peer.hits.load(Ordering::SeqCst),
        1,
        "the second lookup is served from the cache"
    );
    remote::resolve(&db, &client, None, &url, true).await.unwrap();
    assert_eq!(
        peer.hits.load(Ordering::SeqCst),
        2,
        "a forced refresh fetches again"
    );

    let liar = url::Url::parse(&format!("{base}/users/liar")).unwrap();
    assert!(matches!(
        remote::resolve(&db, &client, None, &liar, false).await,
        Err(Error::IdMismatch { .. })
    ));

    peer.gone.store(true, Ordering::SeqCst);
    assert!(matches!(
        remote::resolve(&db, &client, None, &url, true).await,
        Err(Error::Deleted(_))
    ));
    assert!(
        matches!(
            remote::resolve(&db, &client, None, &url, false).await,
            Err(Error::Deleted(_))
        ),
        "remembered"
    );
}
