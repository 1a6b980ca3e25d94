//! The shared inbox against a remote peer on loopback: a signed Follow gets a signed Accept,
//! Undo removes the follower, and bad requests get their status codes and change nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora::accounts::model::Role;
use agora::federation::{follows, keys, signatures};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer};

crate::backend_tests!(follow_gets_a_signed_accept_and_undo_removes);

#[derive(Clone)]
struct Peer {
    base: String,
    public_pem: String,
    received: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

async fn peer_actor(State(p): State<Peer>) -> impl axum::response::IntoResponse {
    let id = format!("{}/users/rem", p.base);
    let doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id, "type": "Person", "preferredUsername": "rem", "inbox": format!("{}/inbox", p.base),
        "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": p.public_pem }
    });
    (
        [(header::CONTENT_TYPE, "application/activity+json")],
        doc.to_string(),
    )
}

async fn peer_inbox(State(p): State<Peer>, headers: HeaderMap, body: Bytes) -> StatusCode {
    p.received
        .lock()
        .unwrap()
        .push((headers, serde_json::from_slice(&body).unwrap()));
    StatusCode::ACCEPTED
}

/// A POST to the server's inbox signed by the peer; `tamper` edits the request after signing.
async fn send(srv: &TestServer, private: &str, key_id: &str, body: &Value, tamper: &str) -> StatusCode {
    // A malformed body is signed as sent, so only the JSON is wrong.
    let bytes = if tamper == "malformed" {
        b"{not json".to_vec()
    } else {
        serde_json::to_vec(body).unwrap()
    };
    let host = srv.url.trim_start_matches("http://").to_owned();
    let date = if tamper == "stale" {
        (chrono::Utc::now() - chrono::TimeDelta::hours(13))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string()
    } else {
        chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    };
    let digest = signatures::digest_header(&bytes);
    let sig = signatures::sign(
        private,
        key_id,
        "POST",
        "/inbox",
        &[("host", &host), ("date", &date), ("digest", &digest)],
    )
    .unwrap();
    let mut req = reqwest::Client::new()
        .post(srv.at("/inbox"))
        .header("content-type", "application/activity+json")
        .header("date", date)
        .header(
            "digest",
            if tamper == "digest" {
                signatures::digest_header(b"other")
            } else {
                digest
            },
        );
    if tamper != "unsigned" {
        let sig = if tamper == "badsig" {
            sig.replacen("signature=\"", "signature=\"AAAA", 1)
        } else {
            sig
        };
        req = req.header("signature", sig);
    }
    req.body(bytes).send().await.unwrap().status()
}

async fn follow_gets_a_signed_accept_and_undo_removes(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", "correct horse battery", Role::Member)
        .await;
    let (public_pem, private_pem) = keys::generate().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let peer = Peer {
        base: base.clone(),
        public_pem,
        received: Arc::default(),
    };
    let app = Router::new()
        .route("/users/rem", get(peer_actor))
        .route("/inbox", post(peer_inbox))
        .with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let actor = format!("{base}/users/rem");
    let key_id = format!("{actor}#main-key");
    let follow = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{base}/follows/1"), "type": "Follow", "actor": actor, "object": srv.at("/u/alice")
    });

    // Bad requests first: each is refused and changes nothing.
    for (tamper, expected) in [
        ("unsigned", StatusCode::UNAUTHORIZED),
        ("badsig", StatusCode::UNAUTHORIZED),
        ("digest", StatusCode::UNAUTHORIZED),
        ("stale", StatusCode::UNAUTHORIZED),
        ("malformed", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            send(&srv, &private_pem, &key_id, &follow, tamper).await,
            expected,
            "{tamper}"
        );
    }
    let count = |srv: &TestServer| {
        let db = srv.state.db().clone();
        async move {
            db.run(|c| follows::count(c, "alice").map_err(agora::db::Error::from))
                .await
                .unwrap()
        }
    };
    assert_eq!(count(&srv).await, 0);
    let (_, wrong_key) = keys::generate().unwrap();
    assert_eq!(
        send(&srv, &wrong_key, &key_id, &follow, "").await,
        StatusCode::UNAUTHORIZED,
        "another key"
    );

    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow, "").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(count(&srv).await, 1);
    let mut accept = None;
    for _ in 0..100 {
        if let Some(got) = peer.received.lock().unwrap().first().cloned() {
            accept = Some(got);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, accept) = accept.expect("the Accept is delivered");
    assert_eq!(accept["type"], "Accept");
    assert_eq!(accept["actor"], srv.at("/u/alice"));
    assert_eq!(
        accept["object"]["id"], follow["id"],
        "the Accept's object is the Follow"
    );
    // The Accept is signed with alice's key, as published in her actor document.
    let alice: Value = reqwest::Client::new()
        .get(srv.at("/u/alice"))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sig = signatures::parse_signature_header(headers["signature"].to_str().unwrap()).unwrap();
    assert_eq!(sig.key_id, format!("{}#main-key", srv.at("/u/alice")));
    let message = signatures::signing_string(&sig, "POST", "/inbox", |n| {
        headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned)
    })
    .unwrap();
    signatures::verify(
        &sig,
        &message,
        alice["publicKey"]["publicKeyPem"].as_str().unwrap(),
    )
    .expect("Accept signature");

    let followers: Value = reqwest::Client::new()
        .get(srv.at("/u/alice/followers"))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(followers["totalItems"], 1);

    // A replayed Follow has no second effect.
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow, "").await,
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(peer.received.lock().unwrap().len(), 1, "one Accept only");
    assert_eq!(count(&srv).await, 1);

    // Unknown activity types are accepted and ignored.
    let odd =
        json!({ "id": format!("{base}/x/1"), "type": "Wave", "actor": actor, "object": srv.at("/u/alice") });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &odd, "").await,
        StatusCode::ACCEPTED
    );

    let undo = json!({ "id": format!("{base}/undo/1"), "type": "Undo", "actor": actor, "object": follow });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &undo, "").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(count(&srv).await, 0);

    // An activity whose id is on another server than its actor is refused.
    let forged = json!({ "id": "http://elsewhere.example/f/1", "type": "Follow", "actor": actor, "object": srv.at("/u/alice") });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &forged, "").await,
        StatusCode::BAD_REQUEST
    );
    // A domain blocked at run time gets 403 and nothing is stored.
    srv.state
        .db()
        .run(|c| {
            agora::federation::policy::block(c, "localhost")
                .map_err(|e| agora::db::Error::Migration(e.to_string()))
        })
        .await
        .unwrap();
    srv.state.invalidate_blocks();
    let again = json!({ "id": format!("{base}/follows/2"), "type": "Follow", "actor": actor, "object": srv.at("/u/alice") });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &again, "").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(count(&srv).await, 0);
    // 3 MB bodies are refused before anything is read.
    let big = reqwest::Client::new()
        .post(srv.at("/inbox"))
        .header("content-type", "application/activity+json")
        .body(vec![b' '; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reqwest::get(srv.at("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
}
