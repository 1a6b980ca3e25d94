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

crate::backend_tests!(
    follow_gets_a_signed_accept_and_undo_removes,
    allowlist_approval_and_actor_changes
);

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

/// Allowlist mode refuses unknown domains; a user who approves followers manually decides on
/// each request (Accept or Reject reaches the follower); a profile setting change reaches
/// followers as Update{Person}; a remote actor's Update refreshes our copy, its Delete removes it.
async fn allowlist_approval_and_actor_changes(b: Backend) {
    use agora::db::schema::remote_actors;
    use diesel::prelude::*;
    let Some(srv) = TestServer::start_with(b, &[("federation.allowlist_only", "true")]).await else {
        return;
    };
    srv.create_user("alice", "correct horse battery", Role::Member)
        .await;
    let token = srv.token("alice", "correct horse battery").await;
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
    let follow = |n: u32| json!({ "id": format!("{base}/follows/{n}"), "type": "Follow", "actor": actor, "object": srv.at("/u/alice") });
    let c = reqwest::Client::new();
    let received_of = |kind: &str| -> Vec<Value> {
        peer.received
            .lock()
            .unwrap()
            .iter()
            .map(|(_, v)| v.clone())
            .filter(|v| v["type"] == kind)
            .collect()
    };
    async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..100 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    // Not on the allowlist: refused, nothing stored, nothing fetched.
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow(1), "").await,
        StatusCode::FORBIDDEN
    );
    srv.state
        .db()
        .run(|c| {
            agora::federation::policy::allow(c, "localhost")
                .map_err(|e| agora::db::Error::Migration(e.to_string()))
        })
        .await
        .unwrap();
    srv.state.invalidate_blocks();

    // alice approves followers by hand.
    let res = c
        .put(srv.at("/api/v1/me/follower_approval"))
        .bearer_auth(&token)
        .json(&json!({ "manual": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = c
        .get(srv.at("/u/alice"))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["manuallyApprovesFollowers"], true);
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow(2), "").await,
        StatusCode::ACCEPTED
    );
    let list = |c: reqwest::Client, token: String, url: String| async move {
        c.get(url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let mine = list(c.clone(), token.clone(), srv.at("/api/v1/me/followers")).await;
    assert_eq!(mine["requests"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["requests"][0]["actor"], actor);
    assert_eq!(mine["followers"].as_array().unwrap().len(), 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        received_of("Accept").is_empty(),
        "nothing is accepted before alice decides"
    );
    let id = mine["requests"][0]["id"].as_i64().unwrap();
    let res = c
        .post(srv.at(&format!("/api/v1/me/follow_requests/{id}/accept")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    wait_until("the Accept", || !received_of("Accept").is_empty()).await;
    assert_eq!(received_of("Accept")[0]["object"]["id"], follow(2)["id"]);
    let res = c
        .post(srv.at(&format!("/api/v1/me/follow_requests/{id}/accept")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "answered already");
    let page: Value = c
        .get(srv.at("/u/alice/followers?page=1"))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["type"], "OrderedCollectionPage");
    assert_eq!(page["orderedItems"], json!([actor]));

    // A follower leaves and asks again; this time alice rejects.
    let undo = json!({ "id": format!("{base}/undo/2"), "type": "Undo", "actor": actor, "object": follow(2) });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &undo, "").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow(3), "").await,
        StatusCode::ACCEPTED
    );
    let mine = list(c.clone(), token.clone(), srv.at("/api/v1/me/followers")).await;
    let id = mine["requests"][0]["id"].as_i64().unwrap();
    let res = c
        .post(srv.at(&format!("/api/v1/me/follow_requests/{id}/reject")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    wait_until("the Reject", || !received_of("Reject").is_empty()).await;
    assert_eq!(received_of("Reject")[0]["object"]["id"], follow(3)["id"]);
    let mine = list(c.clone(), token.clone(), srv.at("/api/v1/me/followers")).await;
    assert_eq!(mine["requests"], json!([]));
    assert_eq!(mine["followers"], json!([]));

    // Switching manual approval off accepts who is waiting, and followers hear of the change.
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow(4), "").await,
        StatusCode::ACCEPTED
    );
    let res = c
        .put(srv.at("/api/v1/me/follower_approval"))
        .bearer_auth(&token)
        .json(&json!({ "manual": false }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["accepted_requests"], 1);
    wait_until("the second Accept", || received_of("Accept").len() == 2).await;
    wait_until("Update{Person}", || !received_of("Update").is_empty()).await;
    let update = &received_of("Update")[0];
    assert_eq!(update["object"]["type"], "Person");
    assert_eq!(update["object"]["manuallyApprovesFollowers"], false);

    // Undo naming the Follow by its id only (as Fedify may send it) removes the follower too.
    let count = || {
        let db = srv.state.db().clone();
        async move {
            db.run(|c| follows::count(c, "alice").map_err(agora::db::Error::from))
                .await
                .unwrap()
        }
    };
    assert_eq!(count().await, 1);
    let undo =
        json!({ "id": format!("{base}/undo/4"), "type": "Undo", "actor": actor, "object": follow(4)["id"] });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &undo, "").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(count().await, 0, "Undo by reference");
    assert_eq!(
        send(&srv, &private_pem, &key_id, &follow(5), "").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(count().await, 1);

    // The remote actor renames itself, then deletes itself.
    let mut renamed = json!({
        "id": actor, "type": "Person", "preferredUsername": "rem", "name": "Renamed Rem",
        "inbox": format!("{base}/inbox"),
        "publicKey": { "id": key_id, "owner": actor, "publicKeyPem": peer.public_pem }
    });
    let update =
        json!({ "id": format!("{base}/updates/1"), "type": "Update", "actor": actor, "object": renamed });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &update, "").await,
        StatusCode::ACCEPTED
    );
    let db = srv.state.db().clone();
    let a = actor.clone();
    let cached = move || {
        let mut c = db.get().unwrap();
        remote_actors::table
            .filter(remote_actors::ap_id.eq(&a))
            .select((remote_actors::name, remote_actors::deleted_at.is_not_null()))
            .first::<(Option<String>, bool)>(&mut *c)
            .unwrap()
    };
    assert_eq!(cached(), (Some("Renamed Rem".into()), false));
    // Nobody may speak for another actor's profile.
    renamed["id"] = json!("http://localhost:1/users/other");
    let forged =
        json!({ "id": format!("{base}/updates/2"), "type": "Update", "actor": actor, "object": renamed });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &forged, "").await,
        StatusCode::ACCEPTED
    );
    let delete =
        json!({ "id": format!("{base}/deletes/1"), "type": "Delete", "actor": actor, "object": actor });
    assert_eq!(
        send(&srv, &private_pem, &key_id, &delete, "").await,
        StatusCode::ACCEPTED
    );
    assert!(cached().1, "marked deleted");
    assert_eq!(count().await, 0, "a deleted actor follows nobody");
}
