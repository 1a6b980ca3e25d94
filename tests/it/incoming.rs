//! Threads and replies from other servers through the signed inbox: Mastodon-style replies,
//! new threads addressed to a group, refusals with reasons, author-only Update and Delete,
//! likes, and the group's Announce of what it accepted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora::accounts::model::Role;
use agora::federation::{keys, signatures};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::routing::{get, post};
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestServer, api};

crate::backend_tests!(
    remote_replies_threads_and_likes,
    fixture_documents_become_threads_replies_and_likes
);

const PW: &str = "correct horse battery";
const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

#[derive(Clone)]
struct Peer {
    base: String,
    keys: Arc<Vec<(String, String)>>,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Peer {
    fn actor(&self, n: usize) -> String {
        format!("{}/users/rem{n}", self.base)
    }
}

async fn peer_actor(State(p): State<Peer>, Path(name): Path<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(n) = name
        .strip_prefix("rem")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n < p.keys.len())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let id = p.actor(n);
    let doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id, "type": "Person", "preferredUsername": name, "name": format!("Remote {n}"),
        "inbox": format!("{}/inbox", p.base),
        "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": p.keys[n].0 }
    });
    (
        [(header::CONTENT_TYPE, "application/activity+json")],
        doc.to_string(),
    )
        .into_response()
}

async fn peer_inbox(State(p): State<Peer>, body: Bytes) -> StatusCode {
    p.received
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    StatusCode::ACCEPTED
}

/// POSTs `activity` to the server's inbox, signed by remote actor `n`.
async fn send(srv: &TestServer, peer: &Peer, n: usize, activity: &Value) -> (StatusCode, Value) {
    let body = serde_json::to_vec(activity).unwrap();
    let host = srv.url.trim_start_matches("http://").to_owned();
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let digest = signatures::digest_header(&body);
    let key_id = format!("{}#main-key", peer.actor(n));
    let sig = signatures::sign(
        &peer.keys[n].1,
        &key_id,
        "POST",
        "/inbox",
        &[("host", &host), ("date", &date), ("digest", &digest)],
    )
    .unwrap();
    let res = reqwest::Client::new()
        .post(srv.at("/inbox"))
        .header("content-type", "application/activity+json")
        .header("date", date)
        .header("digest", digest)
        .header("signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn remote_replies_threads_and_likes(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("mia", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let mia = srv.token("mia", PW).await;
    let c = reqwest::Client::new();
    api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "verkehr", "title": "Verkehr"})),
    )
    .await;
    api(&c, M::POST, srv.at("/api/v1/groups/verkehr/join"), &mia, None).await;
    let (_, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "Radweg", "body": "Was meint ihr?"})),
    )
    .await;
    let tid = t["id"].as_i64().unwrap();
    let thread_url = srv.at(&format!("/g/verkehr/t/{tid}"));

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let peer = Peer {
        base: base.clone(),
        keys: Arc::new(vec![keys::generate().unwrap(), keys::generate().unwrap()]),
        received: Arc::default(),
    };
    let app = Router::new()
        .route("/users/{name}", get(peer_actor))
        .route("/inbox", post(peer_inbox))
        .with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    // The peer also follows the group, so it sees what the group announces.
    let inbox = format!("{base}/inbox");
    let follower = peer.actor(1);
    srv.state
        .db()
        .run(move |c| {
            agora::federation::follows::add(
                c,
                "verkehr",
                &follower,
                &inbox,
                None,
                &format!("{follower}#f"),
                false,
            )
            .map(|_| ())
            .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();

    // A Mastodon-style reply: to Public, cc the thread's author, not the group.
    let note_id = format!("{base}/notes/1");
    let reply = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{note_id}/activity"), "type": "Create", "actor": peer.actor(0),
        "to": [PUBLIC], "cc": [srv.at("/u/mia")],
        "object": {
            "id": note_id, "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p><span class=\"h-card\"><a href=\"http://x/u/mia\" class=\"u-url mention\">@mia</a></span> Gute Idee! <script>alert(1)</script></p>",
            "inReplyTo": thread_url, "to": [PUBLIC], "cc": [srv.at("/u/mia")],
            "tag": [{"type": "Mention", "href": srv.at("/u/mia")}, {"type": "Emoji", "name": ":x:"}],
            "published": "2026-12-04T10:00:00Z"
        }
    });
    let (status, body) = send(&srv, &peer, 0, &reply).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{tid}")), &mia, None).await;
    assert_eq!(full["reply_count"], 1, "{full}");
    let remote = &full["posts"][1];
    assert_eq!(remote["ap_id"], note_id);
    assert!(
        remote["author"]["handle"]
            .as_str()
            .unwrap()
            .starts_with("@rem0@localhost")
    );
    assert_eq!(remote["author"]["instance"], base.trim_start_matches("http://"));
    let html = remote["content_html"].as_str().unwrap();
    assert!(html.contains("Gute Idee!") && !html.contains("<script"), "{html}");
    let page = reqwest::get(&thread_url).await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Gute Idee!") && page.contains("Remote 0"),
        "shown with the author's instance"
    );
    // Replayed: no second reply.
    assert_eq!(send(&srv, &peer, 0, &reply).await.0, StatusCode::ACCEPTED);
    // The group announced it to its followers.
    for _ in 0..100 {
        if !peer.received.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    {
        let got = peer.received.lock().unwrap();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["type"], "Announce");
        assert_eq!(got[0]["actor"], srv.at("/g/verkehr"));
        assert_eq!(got[0]["object"]["id"], reply["id"]);
    }
    // The local author was notified.
    let notified = srv
        .state
        .db()
        .run(|c| {
            use agora::db::schema::notifications;
            use diesel::prelude::*;
            notifications::table
                .filter(notifications::kind.eq("notification-reply"))
                .count()
                .get_result::<i64>(c)
                .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();
    assert_eq!(notified, 1);

    // Not public: refused with a reason, never shown.
    let private = json!({
        "id": format!("{base}/notes/2/activity"), "type": "Create", "actor": peer.actor(0),
        "to": [srv.at("/u/mia")],
        "object": { "id": format!("{base}/notes/2"), "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p>geheim</p>", "inReplyTo": thread_url, "to": [srv.at("/u/mia")] }
    });
    let (status, body) = send(&srv, &peer, 0, &private).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("not addressed to the public"),
        "{body}"
    );
    // Someone else's note: refused.
    let forged = json!({
        "id": format!("{base}/notes/3/activity"), "type": "Create", "actor": peer.actor(1),
        "to": [PUBLIC],
        "object": { "id": format!("{base}/notes/3"), "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p>im Namen von rem0</p>", "inReplyTo": thread_url, "to": [PUBLIC] }
    });
    assert_eq!(send(&srv, &peer, 1, &forged).await.0, StatusCode::FORBIDDEN);

    // A new thread, addressed to the group as Mastodon users do by mentioning it.
    let new_thread = json!({
        "id": format!("{base}/notes/4/activity"), "type": "Create", "actor": peer.actor(0),
        "to": [PUBLIC], "cc": [srv.at("/g/verkehr")],
        "object": { "id": format!("{base}/notes/4"), "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p><span class=\"h-card\"><a href=\"x\" class=\"u-url mention\">@<span>verkehr</span></a></span> Neue Ampel am Markt</p><p>Bitte prüfen.</p>",
            "to": [PUBLIC], "cc": [srv.at("/g/verkehr")],
            "tag": [{"type": "Mention", "href": srv.at("/g/verkehr"), "name": "@verkehr"}] }
    });
    let (status, body) = send(&srv, &peer, 0, &new_thread).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (_, list) = api(&c, M::GET, srv.at("/api/v1/groups/verkehr/threads"), &mia, None).await;
    assert_eq!(list["items"][0]["title"], "Neue Ampel am Markt", "{list}");

    // Update by the author changes the reply; by anyone else it is refused.
    let mut update = json!({
        "id": format!("{note_id}#u1"), "type": "Update", "actor": peer.actor(0), "to": [PUBLIC],
        "object": { "id": note_id, "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p>Sehr gute Idee!</p>", "inReplyTo": thread_url, "to": [PUBLIC] }
    });
    assert_eq!(send(&srv, &peer, 0, &update).await.0, StatusCode::ACCEPTED);
    update["id"] = json!(format!("{note_id}#u2"));
    update["actor"] = json!(peer.actor(1));
    update["object"]["content"] = json!("<p>gekapert</p>");
    assert_eq!(send(&srv, &peer, 1, &update).await.0, StatusCode::FORBIDDEN);
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{tid}")), &mia, None).await;
    assert_eq!(full["posts"][1]["content_html"], "<p>Sehr gute Idee!</p>");

    // Likes count once per actor; Undo takes it back.
    let like = json!({ "id": format!("{base}/likes/1"), "type": "Like", "actor": peer.actor(0), "object": thread_url });
    assert_eq!(send(&srv, &peer, 0, &like).await.0, StatusCode::ACCEPTED);
    let like2 = json!({ "id": format!("{base}/likes/2"), "type": "Like", "actor": peer.actor(0), "object": thread_url });
    assert_eq!(send(&srv, &peer, 0, &like2).await.0, StatusCode::ACCEPTED);
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{tid}")), &mia, None).await;
    assert_eq!(full["posts"][0]["like_count"], 1);
    let undo = json!({ "id": format!("{base}/likes/1/undo"), "type": "Undo", "actor": peer.actor(0), "object": like });
    assert_eq!(send(&srv, &peer, 0, &undo).await.0, StatusCode::ACCEPTED);
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{tid}")), &mia, None).await;
    assert_eq!(full["posts"][0]["like_count"], 0);

    // Delete by the author: gone from the thread.
    let delete = json!({ "id": format!("{note_id}#d"), "type": "Delete", "actor": peer.actor(0), "to": [PUBLIC],
        "object": { "id": note_id, "type": "Tombstone" } });
    assert_eq!(send(&srv, &peer, 1, &json!({ "id": format!("{note_id}#d1"), "type": "Delete", "actor": peer.actor(1), "object": note_id })).await.0, StatusCode::FORBIDDEN);
    assert_eq!(send(&srv, &peer, 0, &delete).await.0, StatusCode::ACCEPTED);
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{tid}")), &mia, None).await;
    assert_eq!(full["posts"][1]["deleted"], true);
    assert_eq!(full["reply_count"], 0);

    // A locked thread takes no remote replies either.
    api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{tid}/moderation")),
        &admin,
        Some(json!({"action": "lock"})),
    )
    .await;
    let late = json!({
        "id": format!("{base}/notes/5/activity"), "type": "Create", "actor": peer.actor(0), "to": [PUBLIC],
        "object": { "id": format!("{base}/notes/5"), "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p>zu spät</p>", "inReplyTo": thread_url, "to": [PUBLIC] }
    });
    let (status, body) = send(&srv, &peer, 0, &late).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body["message"].as_str().unwrap().contains("locked"));

    // A reply to something that is not ours is accepted and ignored.
    let unrelated = json!({
        "id": format!("{base}/notes/6/activity"), "type": "Create", "actor": peer.actor(0), "to": [PUBLIC],
        "object": { "id": format!("{base}/notes/6"), "type": "Note", "attributedTo": peer.actor(0),
            "content": "<p>woanders</p>", "inReplyTo": format!("{base}/notes/unknown"), "to": [PUBLIC] }
    });
    assert_eq!(send(&srv, &peer, 0, &unrelated).await.0, StatusCode::ACCEPTED);
    srv.stop().await;
}

/// The shared fixture corpus (`../shared/fixtures/activitypub`), as for the unit tests.
fn fixtures_dir() -> std::path::PathBuf {
    let candidates = [
        std::env::var_os("AGORA_TEST_SHARED").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")),
        Some(std::path::PathBuf::from("/work/shared")),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(|p| p.join("fixtures/activitypub"))
        .find(|p| p.is_dir())
        .expect("the shared fixtures are missing; set AGORA_TEST_SHARED")
}

fn fixture_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            fixture_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Every Note, Page and Article in the corpus (bare or in a Create), sent as our peer would
/// send it: same content, tags, addressing and extensions, with the ids, author and target
/// rewritten to the peer and one of our threads or groups. Public ones must become replies or
/// threads with sanitised content; non-public ones are refused. Likes of our thread are counted;
/// Announces from a server we do not follow and Deletes of unknown objects change nothing.
async fn fixture_documents_become_threads_replies_and_likes(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    let admin = srv.token("admin_anna", PW).await;
    let c = reqwest::Client::new();
    api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "verkehr", "title": "Verkehr"})),
    )
    .await;
    let (_, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &admin,
        Some(json!({"title": "Sammelthema", "body": "Antworten aus dem Fediverse"})),
    )
    .await;
    let tid = t["id"].as_i64().unwrap();
    let thread_url = srv.at(&format!("/g/verkehr/t/{tid}"));
    let group_url = srv.at("/g/verkehr");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let peer = Peer {
        base: base.clone(),
        keys: Arc::new(vec![keys::generate().unwrap()]),
        received: Arc::default(),
    };
    let app = Router::new()
        .route("/users/{name}", get(peer_actor))
        .route("/inbox", post(peer_inbox))
        .with_state(peer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let me = peer.actor(0);

    let mut files = Vec::new();
    fixture_files(&fixtures_dir(), &mut files);
    files.sort();
    let mut table = Vec::new();
    let (mut replies, mut threads_made, mut refused, mut likes) = (0, 0, 0, 0);
    for (n, file) in files.iter().enumerate() {
        let Ok(doc) = serde_json::from_str::<Value>(&std::fs::read_to_string(file).unwrap()) else {
            continue;
        };
        let name = file.strip_prefix(fixtures_dir()).unwrap().display().to_string();
        let kind = doc["type"].as_str().unwrap_or_default().to_owned();
        let inner_kind = doc["object"]["type"].as_str().unwrap_or_default().to_owned();
        let content_kind = if matches!(kind.as_str(), "Note" | "Page" | "Article") {
            Some(kind.clone())
        } else if kind == "Create" && matches!(inner_kind.as_str(), "Note" | "Page" | "Article") {
            Some(inner_kind.clone())
        } else {
            None
        };
        if let Some(object_kind) = content_kind {
            let mut object = if kind == "Create" {
                doc["object"].clone()
            } else {
                doc.clone()
            };
            let public = ["to", "cc"].iter().any(|k| {
                let v = &object[*k];
                let list: Vec<&Value> = v
                    .as_array()
                    .map(|a| a.iter().collect())
                    .unwrap_or_else(|| vec![v]);
                list.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|s| s == PUBLIC || s == "as:Public" || s == "Public")
                })
            });
            let as_reply = n % 2 == 0;
            object["id"] = json!(format!("{base}/fixtures/{n}"));
            object["attributedTo"] = json!(me);
            object.as_object_mut().unwrap().remove("@context");
            if as_reply {
                object["inReplyTo"] = json!(thread_url);
            } else {
                object.as_object_mut().unwrap().remove("inReplyTo");
                let mut cc: Vec<Value> = object["cc"].as_array().cloned().unwrap_or_default();
                cc.push(json!(group_url));
                object["cc"] = json!(cc);
            }
            let activity = json!({
                "@context": doc.get("@context").cloned().unwrap_or(json!("https://www.w3.org/ns/activitystreams")),
                "id": format!("{base}/fixtures/{n}/activity"),
                "type": "Create",
                "actor": me,
                "to": object["to"].clone(),
                "cc": object["cc"].clone(),
                "object": object,
            });
            let before = api(
                &c,
                M::GET,
                srv.at(&format!("/api/v1/threads/{tid}")),
                &admin,
                None,
            )
            .await
            .1["reply_count"]
                .as_i64()
                .unwrap_or(0);
            let (status, body) = send(&srv, &peer, 0, &activity).await;
            let outcome = if !public {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{name}: a non-public post is refused: {body}"
                );
                refused += 1;
                "refused (not public)".to_owned()
            } else if as_reply {
                assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
                let (_, full) = api(
                    &c,
                    M::GET,
                    srv.at(&format!("/api/v1/threads/{tid}")),
                    &admin,
                    None,
                )
                .await;
                assert_eq!(
                    full["reply_count"].as_i64().unwrap(),
                    before + 1,
                    "{name} became a reply"
                );
                let html = full["posts"].as_array().unwrap().last().unwrap()["content_html"]
                    .as_str()
                    .unwrap()
                    .to_lowercase();
                assert!(
                    !html.contains("<script")
                        && !html.contains("javascript:")
                        && !html.contains("onerror=")
                        && !html.contains("onclick=")
                        && !html.contains("style="),
                    "{name}: {html}"
                );
                replies += 1;
                format!("reply ({object_kind})")
            } else {
                assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
                let id = format!("{base}/fixtures/{n}");
                let found = srv
                    .state
                    .db()
                    .run(move |c| {
                        use agora::db::schema::posts;
                        use diesel::prelude::*;
                        posts::table
                            .filter(posts::ap_id.eq(id))
                            .filter(posts::parent_id.is_null())
                            .count()
                            .get_result::<i64>(c)
                            .map_err(agora::db::Error::from)
                    })
                    .await
                    .unwrap();
                assert_eq!(found, 1, "{name} became a thread");
                threads_made += 1;
                format!("thread ({object_kind})")
            };
            table.push((name, outcome));
            continue;
        }
        let outcome = match kind.as_str() {
            "Like" => {
                let like = json!({ "id": format!("{base}/fixtures/{n}"), "type": "Like", "actor": me, "object": thread_url });
                assert_eq!(
                    send(&srv, &peer, 0, &like).await.0,
                    StatusCode::ACCEPTED,
                    "{name}"
                );
                likes += 1;
                "like".to_owned()
            }
            "Announce" | "Delete" => {
                let mut activity = doc.clone();
                activity["id"] = json!(format!("{base}/fixtures/{n}"));
                activity["actor"] = json!(me);
                let (status, body) = send(&srv, &peer, 0, &activity).await;
                assert_eq!(status, StatusCode::ACCEPTED, "{name}: {body}");
                "accepted, nothing to do".to_owned()
            }
            _ => continue,
        };
        table.push((name, outcome));
    }
    println!("fixture → outcome");
    for (name, outcome) in &table {
        println!("{name:60} {outcome}");
    }
    println!("{replies} replies, {threads_made} threads, {refused} refused, {likes} likes");
    assert!(
        replies + threads_made >= 40,
        "most content fixtures were used: {table:?}"
    );
    let (_, full) = api(
        &c,
        M::GET,
        srv.at(&format!("/api/v1/threads/{tid}")),
        &admin,
        None,
    )
    .await;
    assert_eq!(full["posts"][0]["like_count"], 1, "one actor's likes count once");
    srv.stop().await;
}
