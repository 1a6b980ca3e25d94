//! Discussion threads: API and pages, nesting, edits with history, deletion (410 Tombstone),
//! likes, moderation, keyset pagination, hostile input, and what the group's followers receive.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora::accounts::model::Role;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};

use crate::support::web::{browser, csrf_of, get_text, login};
use crate::support::{Backend, TestServer, api};

crate::backend_tests!(
    threads_and_replies_through_the_api,
    moderation_and_locks,
    thread_list_pages_by_keyset,
    hostile_input_is_neutralised,
    followers_receive_announces,
    thread_pages_and_forms,
    latest_activity_across_groups,
);

const PW: &str = "correct horse battery";
const AP: &str = "application/activity+json";

/// A server with an admin (lead of the public group `verkehr`) and members `mia` and `noah`.
async fn setup(b: Backend) -> Option<(TestServer, String, String, String)> {
    let srv = TestServer::start(b).await?;
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("mia", PW, Role::Member).await;
    srv.create_user("noah", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let mia = srv.token("mia", PW).await;
    let noah = srv.token("noah", PW).await;
    let c = reqwest::Client::new();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "verkehr", "title": "Verkehr"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    for t in [&mia, &noah] {
        let (status, _) = api(&c, M::POST, srv.at("/api/v1/groups/verkehr/join"), t, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    Some((srv, admin, mia, noah))
}

async fn threads_and_replies_through_the_api(b: Backend) {
    let Some((srv, _admin, mia, noah)) = setup(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let (status, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "Radweg Hauptstraße", "body": "Wie wäre ein **Radweg**? #Radverkehr @noah"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    assert_eq!(t["url"], srv.at(&format!("/g/verkehr/t/{id}")));
    assert_eq!(t["ap_id"], t["url"]);
    assert_eq!(t["post"]["author"]["handle"], "@mia", "{t}");
    // Only the title changes; the body stays.
    let (status, edited) = api(
        &c,
        M::PATCH,
        srv.at(&format!("/api/v1/threads/{id}")),
        &mia,
        Some(json!({"title": "Radweg Hauptstraße Nord"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert!(
        edited["body"]
            .as_str()
            .unwrap()
            .starts_with("Wie wäre ein **Radweg**?"),
        "{edited}"
    );
    assert!(!edited["author"].is_null(), "{edited}");
    assert!(
        t["post"]["content_html"]
            .as_str()
            .unwrap()
            .contains("<strong>Radweg</strong>")
    );
    assert!(
        t["post"]["content_html"]
            .as_str()
            .unwrap()
            .contains(&format!("href=\"{}\"", srv.at("/u/noah"))),
        "the mention links to noah: {t}"
    );

    // Replies nest.
    let (status, r1) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &noah,
        Some(json!({"body": "Gute Idee!"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{r1}");
    let r1id = r1["id"].as_i64().unwrap();
    let (status, r2) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &mia,
        Some(json!({"body": "Danke", "in_reply_to": r1id})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{r2}");
    assert_eq!(r2["depth"], 2);
    assert_eq!(r2["in_reply_to"], r1id);
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{id}")), &noah, None).await;
    assert_eq!(full["reply_count"], 2);
    let order: Vec<i64> = full["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["depth"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [0, 1, 2]);
    assert_eq!(full["posts"][1]["author"]["handle"], "@noah");

    // Edits: only the author; history kept; `updated` set in the Note.
    let (status, _) = api(
        &c,
        M::PATCH,
        srv.at(&format!("/api/v1/replies/{r1id}")),
        &mia,
        Some(json!({"body": "Meins"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, edited) = api(
        &c,
        M::PATCH,
        srv.at(&format!("/api/v1/replies/{r1id}")),
        &noah,
        Some(json!({"body": "Sehr gute Idee!"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{edited}");
    assert!(edited["updated_at"].is_string());
    let (status, _) = api(
        &c,
        M::PATCH,
        srv.at(&format!("/api/v1/threads/{id}")),
        &mia,
        Some(json!({"title": "Radweg Hauptstraße Nord", "body": "Wie wäre ein **Radweg**?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let revisions = srv
        .state
        .db()
        .run(|c| {
            use agora::db::schema::post_revisions;
            use diesel::prelude::*;
            post_revisions::table
                .count()
                .get_result::<i64>(c)
                .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();
    assert_eq!(
        revisions, 3,
        "every earlier version is kept (the title edit, then two of the reply)"
    );
    let note: Value = crate::support::ap_get(srv.at(&format!("/g/verkehr/t/{id}/p/{r1id}"))).await;
    assert_eq!(note["type"], "Note");
    assert_eq!(note["inReplyTo"], srv.at(&format!("/g/verkehr/t/{id}")));
    assert!(note["updated"].is_string());
    let tags = note["tag"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["type"] == "Mention" && t["href"] == srv.at("/g/verkehr")),
        "replies mention the group: {note}"
    );
    assert!(
        tags.iter()
            .any(|t| t["type"] == "Mention" && t["href"] == srv.at("/u/mia")),
        "and the parent's author"
    );

    // The opening post as ActivityPub: a Note with name, audience and context.
    let opening: Value = crate::support::ap_get(srv.at(&format!("/g/verkehr/t/{id}"))).await;
    assert_eq!(opening["type"], "Note");
    assert_eq!(opening["name"], "Radweg Hauptstraße Nord");
    assert_eq!(opening["audience"], srv.at("/g/verkehr"));
    assert_eq!(opening["context"], srv.at(&format!("/g/verkehr/t/{id}/context")));
    assert_eq!(
        opening["to"],
        json!(["https://www.w3.org/ns/activitystreams#Public"])
    );
    assert!(
        opening["cc"]
            .as_array()
            .unwrap()
            .contains(&json!(srv.at("/g/verkehr/followers")))
    );
    assert_eq!(opening["source"]["mediaType"], "text/markdown");
    let context: Value = crate::support::ap_get(srv.at(&format!("/g/verkehr/t/{id}/context?page=1"))).await;
    assert_eq!(
        context["orderedItems"][0], opening["id"],
        "the opening post comes first"
    );
    assert_eq!(context["totalItems"], 3);

    // Likes count once per user.
    for _ in 0..2 {
        let (status, liked) = api(
            &c,
            M::POST,
            srv.at(&format!("/api/v1/threads/{id}/like")),
            &noah,
            None,
        )
        .await;
        assert_eq!((status, liked["like_count"].as_i64()), (StatusCode::OK, Some(1)));
    }
    let (_, unliked) = api(
        &c,
        M::DELETE,
        srv.at(&format!("/api/v1/threads/{id}/like")),
        &noah,
        None,
    )
    .await;
    assert_eq!(unliked["like_count"], 0);

    // Deleting a reply: the object answers 410 with a Tombstone; replying to it is refused.
    let (status, _) = api(
        &c,
        M::DELETE,
        srv.at(&format!("/api/v1/replies/{r1id}")),
        &mia,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not hers");
    let (status, _) = api(
        &c,
        M::DELETE,
        srv.at(&format!("/api/v1/replies/{r1id}")),
        &noah,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let res = c
        .get(srv.at(&format!("/g/verkehr/t/{id}/p/{r1id}")))
        .header("accept", AP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::GONE);
    assert_eq!(res.json::<Value>().await.unwrap()["type"], "Tombstone");
    let (status, err) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &mia,
        Some(json!({"body": "Noch da?", "in_reply_to": r1id})),
    )
    .await;
    assert_eq!(status, StatusCode::GONE, "{err}");
    assert!(err["message"].as_str().unwrap().ends_with('.'));

    // The tag page lists the thread.
    let tag = c
        .get(srv.at("/tags/radverkehr"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !tag.contains(&format!("/g/verkehr/t/{id}\"")),
        "the edit removed the hashtag"
    );
    srv.stop().await;
}

async fn moderation_and_locks(b: Backend) {
    let Some((srv, admin, mia, noah)) = setup(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let (_, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "Ampel", "body": "Zu kurz grün."})),
    )
    .await;
    let id = t["id"].as_i64().unwrap();
    let (_, r) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &noah,
        Some(json!({"body": "Spam spam"})),
    )
    .await;
    let rid = r["id"].as_i64().unwrap();

    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/moderation")),
        &noah,
        Some(json!({"action": "lock"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members do not moderate");
    let (status, err) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/moderation")),
        &admin,
        Some(json!({"action": "remove", "post": rid})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a removal needs a reason: {err}"
    );
    assert_eq!(err["field"], "reason");
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/moderation")),
        &admin,
        Some(json!({"action": "remove", "post": rid, "reason": "Werbung"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    // Repeating a moderation changes nothing: the count drops once, the log has one row.
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/moderation")),
        &admin,
        Some(json!({"action": "remove", "post": rid, "reason": "noch einmal"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, t) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{id}")), &noah, None).await;
    assert_eq!(t["reply_count"], 0, "{t}");
    for action in ["pin", "lock", "pin", "lock"] {
        let (status, _) = api(
            &c,
            M::POST,
            srv.at(&format!("/api/v1/threads/{id}/moderation")),
            &admin,
            Some(json!({"action": action})),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{action}");
    }
    let (status, err) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &noah,
        Some(json!({"body": "Noch was"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(err["error"], "thread_locked");
    let (_, list) = api(&c, M::GET, srv.at("/api/v1/groups/verkehr/threads"), &noah, None).await;
    assert_eq!(list["pinned"][0]["id"], id);
    assert_eq!(list["pinned"][0]["locked"], true);
    assert_eq!(list["items"], json!([]), "pinned threads are not listed twice");
    let featured: Value = crate::support::ap_get(srv.at("/g/verkehr/featured")).await;
    assert_eq!(
        featured["orderedItems"][0]["name"], "Ampel",
        "pinned threads are featured"
    );
    let outbox: Value = crate::support::ap_get(srv.at("/g/verkehr/outbox")).await;
    // Pinned threads are left out of the keyset list, so the outbox lists unpinned ones only.
    assert_eq!(outbox["type"], "OrderedCollection");
    assert!(outbox["orderedItems"].as_array().unwrap().is_empty(), "{outbox}");
    let (_, full) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{id}")), &noah, None).await;
    assert_eq!(full["posts"][1]["removed"], true);
    assert_eq!(
        full["posts"][1]["content_html"], "",
        "removed content is not served"
    );

    let web = browser();
    login(&srv, &web, "admin_anna", PW).await;
    let log = get_text(&web, &srv.at("/g/verkehr/log")).await;
    assert!(
        log.contains("Werbung") && log.contains("@admin_anna"),
        "the moderation log shows the reason"
    );
    assert!(!log.contains("noch einmal"), "a repeated removal is not logged");
    assert_eq!(log.matches("<tr").count(), 4, "header, remove, pin, lock: {log}");
    let member = browser();
    login(&srv, &member, "noah", PW).await;
    assert_eq!(
        member
            .get(srv.at("/g/verkehr/log"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    srv.stop().await;
}

async fn thread_list_pages_by_keyset(b: Backend) {
    let Some((srv, _admin, mia, _noah)) = setup(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    for i in 0..30 {
        let (status, _) = api(
            &c,
            M::POST,
            srv.at("/api/v1/groups/verkehr/threads"),
            &mia,
            Some(json!({"title": format!("Thema {i:02}"), "body": "Text"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let outbox: Value = crate::support::ap_get(srv.at("/g/verkehr/outbox")).await;
    let items = outbox["orderedItems"].as_array().unwrap();
    assert_eq!(items.len(), 20, "the outbox carries the recent threads inline");
    assert_eq!(items[0]["type"], "Announce");
    assert_eq!(items[0]["object"]["type"], "Create");
    assert_eq!(items[0]["object"]["object"]["name"], "Thema 29");
    let (_, first) = api(
        &c,
        M::GET,
        srv.at("/api/v1/groups/verkehr/threads?limit=20"),
        &mia,
        None,
    )
    .await;
    let titles: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 20);
    assert_eq!(titles[0], "Thema 29", "newest activity first");
    let next = first["next"].as_str().unwrap();
    let (_, second) = api(
        &c,
        M::GET,
        srv.at(&format!("/api/v1/groups/verkehr/threads?limit=20&before={next}")),
        &mia,
        None,
    )
    .await;
    let rest: Vec<&str> = second["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(rest.len(), 10);
    assert_eq!(rest[9], "Thema 00");
    assert!(second["next"].is_null());
    let (status, _) = api(
        &c,
        M::GET,
        srv.at("/api/v1/groups/verkehr/threads?before=nonsense"),
        &mia,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let page = get_text(&browser(), &srv.at("/g/verkehr")).await;
    assert!(
        page.contains("Thema 29") && !page.contains("Thema 04"),
        "the page shows the first 25"
    );
    assert!(page.contains("?before="), "with a link to older ones");
    srv.stop().await;
}

async fn hostile_input_is_neutralised(b: Backend) {
    let Some((srv, admin, mia, _noah)) = setup(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let payloads = [
        "<script>alert('x')</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">d</a>",
        "<svg onload=alert(1)><circle/></svg>",
        "<style>body{display:none}</style><p style=\"background:url(javascript:alert(1))\">s</p>",
        "<b><i>broken <u>nesting</b></i>",
        "<iframe src=\"https://evil.example\"></iframe>",
        "@аdmin_anna look-alike",
    ];
    let body = payloads.join("\n\n");
    let (status, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "<script>alert(2)</script> Titel", "body": body})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap();
    let (_, r) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &mia,
        Some(json!({"body": body})),
    )
    .await;
    assert!(r["id"].is_i64());
    let web = browser();
    login(&srv, &web, "admin_anna", PW).await;
    // The Note's `content` is HTML for other servers; `source` is the author's Markdown as
    // written (text, which receivers must treat as such), so only `content` is checked.
    let note: Value = crate::support::ap_get(srv.at(&format!("/g/verkehr/t/{id}"))).await;
    let note = note["content"].as_str().unwrap().to_owned();
    let (_, api_view) = api(&c, M::GET, srv.at(&format!("/api/v1/threads/{id}")), &admin, None).await;
    let rendered: Vec<String> = api_view["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content_html"].as_str().unwrap().to_owned())
        .collect();
    for (what, html) in [
        (
            "thread page",
            get_text(&web, &srv.at(&format!("/g/verkehr/t/{id}"))).await,
        ),
        ("group page", get_text(&web, &srv.at("/g/verkehr")).await),
        ("note", note),
        ("api opening", rendered[0].clone()),
        ("api reply", rendered[1].clone()),
    ] {
        let lower = html.to_lowercase();
        // The page's own script tag (agora.js) is the only script allowed.
        let scripts = lower.matches("<script").count();
        let own = lower.matches("<script src=\"/static/agora.js\"").count();
        assert_eq!(scripts, own, "{what}: a script survived");
        for bad in [
            "onerror=",
            "onload=",
            "javascript:",
            "data:text",
            "<iframe",
            "<svg",
            "<style>",
            "style=\"background",
        ] {
            assert!(!lower.contains(bad), "{what}: {bad} survived");
        }
    }
    let thread_page = get_text(&web, &srv.at(&format!("/g/verkehr/t/{id}"))).await;
    assert!(
        !thread_page.contains(&format!("href=\"{}\"", srv.at("/u/admin_anna"))),
        "a look-alike mention links to nobody"
    );
    // Oversized bodies and titles get 422 with a sentence.
    let (status, err) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "x", "body": "y".repeat(20_001)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "body");
    let (status, err) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "t".repeat(201), "body": "y"})),
    )
    .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("title"))
    );
    srv.stop().await;
}

type Inbox = Arc<Mutex<Vec<Value>>>;

async fn followers_receive_announces(b: Backend) {
    let Some((srv, _admin, mia, noah)) = setup(b).await else {
        return;
    };
    // A follower of the group on another server, with its own inbox.
    let received: Inbox = Arc::default();
    let app = Router::new()
        .route(
            "/inbox",
            post(|State(r): State<Inbox>, body: Bytes| async move {
                r.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                StatusCode::ACCEPTED
            }),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let inbox = format!("{base}/inbox");
    srv.state
        .db()
        .run(move |c| {
            agora::federation::follows::add(
                c,
                "verkehr",
                &format!("{base}/users/f"),
                &inbox,
                None,
                &format!("{base}/f/1"),
                false,
            )
            .map(|_| ())
            .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();
    let c = reqwest::Client::new();
    let (_, t) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/verkehr/threads"),
        &mia,
        Some(json!({"title": "Neu", "body": "Hallo"})),
    )
    .await;
    let id = t["id"].as_i64().unwrap();
    let wait = |n: usize| {
        let received = received.clone();
        async move {
            for _ in 0..100 {
                if received.lock().unwrap().len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    wait(2).await;
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got.iter()
                .all(|a| a["type"] == "Announce" && a["actor"] == srv.at("/g/verkehr"))
        );
        assert!(
            got.iter()
                .any(|a| a["object"]["type"] == "Create" && a["object"]["object"]["name"] == "Neu")
        );
        assert!(
            got.iter().any(|a| a["object"]["type"] == "Note"
                && a["object"]["id"] == srv.at(&format!("/g/verkehr/t/{id}"))),
            "the bare Note is announced too, for Mastodon"
        );
    }
    let (_, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{id}/replies")),
        &noah,
        Some(json!({"body": "Antwort"})),
    )
    .await;
    wait(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let got = received.lock().unwrap();
        assert_eq!(got.len(), 3, "a reply is announced once, as Create: {got:?}");
        assert_eq!(got[2]["object"]["type"], "Create");
        assert_eq!(
            got[2]["object"]["object"]["inReplyTo"],
            srv.at(&format!("/g/verkehr/t/{id}"))
        );
    }
    let (status, _) = api(
        &c,
        M::DELETE,
        srv.at(&format!("/api/v1/threads/{id}")),
        &mia,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait(4).await;
    let got = received.lock().unwrap();
    assert_eq!(got[3]["object"]["type"], "Delete");
    assert_eq!(
        got[3]["object"]["object"]["id"],
        srv.at(&format!("/g/verkehr/t/{id}"))
    );
}

async fn thread_pages_and_forms(b: Backend) {
    let Some((srv, _admin, _mia, _noah)) = setup(b).await else {
        return;
    };
    let mia = browser();
    login(&srv, &mia, "mia", PW).await;
    let csrf = csrf_of(&mia, &srv.at("/g/verkehr/threads/new")).await;
    let empty = mia
        .post(srv.at("/g/verkehr/threads"))
        .form(&[("csrf", csrf.as_str()), ("title", "Bus"), ("body", "  ")])
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains("id=\"body-error\""));
    let res = mia
        .post(srv.at("/g/verkehr/threads"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("title", "Buslinie 7"),
            ("body", "Öfter fahren, bitte. #Bus"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let page = get_text(&mia, &srv.at(&location)).await;
    assert!(page.contains("Buslinie 7") && page.contains("Öfter fahren"));
    let res = mia
        .post(srv.at(&format!("{location}/reply")))
        .form(&[("csrf", csrf.as_str()), ("body", "Und am Wochenende.")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()["location"].to_str().unwrap().contains("#p"));
    let page = get_text(&mia, &srv.at(&location)).await;
    assert!(page.contains("Und am Wochenende."));
    let tag = get_text(&mia, &srv.at("/tags/bus")).await;
    assert!(tag.contains("Buslinie 7"));
    let anon = browser();
    let page = get_text(&anon, &srv.at(&location)).await;
    assert!(
        page.contains("Buslinie 7"),
        "public groups are readable without an account"
    );
    assert_eq!(
        anon.get(srv.at("/g/verkehr/t/99999"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let doc: Value = reqwest::get(srv.at("/api/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/api/v1/groups/{slug}/threads"]["post"].is_object());
    srv.stop().await;
}

/// `/latest` and `GET /api/v1/threads`: the newest activity across groups, each reader seeing
/// the public groups and their own internal ones, keyset-paged.
async fn latest_activity_across_groups(b: Backend) {
    let Some((srv, admin, mia, noah)) = setup(b).await else {
        return;
    };
    let c = reqwest::Client::new();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "intern", "title": "Interne Runde", "visibility": "internal"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/intern/members"),
        &admin,
        Some(json!({"username": "mia", "role": "member"})),
    )
    .await;
    for (group, title, token) in [
        ("verkehr", "Erstes Thema", &mia),
        ("intern", "Geheimes Thema", &mia),
        ("verkehr", "Zweites Thema", &noah),
    ] {
        let (status, t) = api(
            &c,
            M::POST,
            srv.at(&format!("/api/v1/groups/{group}/threads")),
            token,
            Some(json!({"title": title, "body": "Text"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{t}");
    }
    let titles = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let anon = reqwest::Client::new()
        .get(srv.at("/api/v1/threads"))
        .send()
        .await
        .unwrap();
    let anon: Value = anon.json().await.unwrap();
    assert_eq!(titles(&anon), ["Zweites Thema", "Erstes Thema"]);
    assert_eq!(anon["items"][0]["group_title"], "Verkehr");
    let (_, for_mia) = api(&c, M::GET, srv.at("/api/v1/threads"), &mia, None).await;
    assert_eq!(
        titles(&for_mia),
        ["Zweites Thema", "Geheimes Thema", "Erstes Thema"]
    );
    let (_, for_noah) = api(&c, M::GET, srv.at("/api/v1/threads"), &noah, None).await;
    assert_eq!(titles(&for_noah), ["Zweites Thema", "Erstes Thema"]);
    // A reply brings a thread to the top; pages follow the cursor.
    let first = for_mia["items"][2]["id"].as_i64().unwrap();
    api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/threads/{first}/replies")),
        &noah,
        Some(json!({"body": "Antwort"})),
    )
    .await;
    let (_, p1) = api(&c, M::GET, srv.at("/api/v1/threads?limit=2"), &mia, None).await;
    assert_eq!(titles(&p1), ["Erstes Thema", "Zweites Thema"]);
    let next = p1["next"].as_str().unwrap();
    let (_, p2) = api(
        &c,
        M::GET,
        srv.at(&format!("/api/v1/threads?limit=2&before={next}")),
        &mia,
        None,
    )
    .await;
    assert_eq!(titles(&p2), ["Geheimes Thema"]);
    assert!(p2["next"].is_null());
    let (status, err) = api(&c, M::GET, srv.at("/api/v1/threads?before=gestern"), &mia, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    // The page, anonymous: public threads with their groups, nothing internal.
    let html = get_text(&browser(), &srv.at("/latest")).await;
    assert!(
        html.contains("Erstes Thema") && html.contains("href=\"/g/verkehr\""),
        "{html}"
    );
    assert!(!html.contains("Geheimes Thema") && !html.contains("Interne Runde"));
    srv.stop().await;
}
