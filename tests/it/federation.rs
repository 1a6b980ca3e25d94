//! Federation endpoints served so far: WebFinger, host-meta, NodeInfo, actor documents.

use agora::accounts::model::{Role, Status};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Backend, TestServer};

crate::backend_tests!(
    webfinger_resolves_users_and_the_instance,
    nodeinfo_reports_usage,
    actors_have_two_faces,
    two_instances_follow_and_unfollow,
    remote_follow_through_the_subscribe_template,
);

const PW: &str = "correct horse battery";
const AP: &str = "application/activity+json";

async fn finger(srv: &TestServer, resource: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(srv.at("/.well-known/webfinger"))
        .query(&[("resource", resource)])
        .send()
        .await
        .unwrap()
}

async fn webfinger_resolves_users_and_the_instance(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", PW, Role::Member).await;
    srv.create_user_with("pending_pia", PW, Role::Member, Status::Pending, false)
        .await;
    let host = srv.url.trim_start_matches("http://").to_owned();
    let res = finger(&srv, &format!("acct:ALICE@{}", host.to_uppercase())).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/jrd+json");
    let jrd: Value = res.json().await.unwrap();
    assert_eq!(jrd["subject"], format!("acct:alice@{host}"));
    let links = jrd["links"].as_array().unwrap();
    let selfs: Vec<&Value> = links.iter().filter(|l| l["rel"] == "self").collect();
    assert_eq!(selfs.len(), 1, "exactly one self link");
    assert_eq!(selfs[0]["type"], AP);
    assert_eq!(selfs[0]["href"], srv.at("/u/alice"));
    assert!(
        links
            .iter()
            .any(|l| l["rel"] == "http://webfinger.net/rel/profile-page")
    );
    let subscribe: Vec<&Value> = links
        .iter()
        .filter(|l| l["rel"] == "http://ostatus.org/schema/1.0/subscribe")
        .collect();
    assert_eq!(subscribe.len(), 1);
    assert_eq!(
        subscribe[0]["template"],
        format!("{}/authorize_interaction?uri={{uri}}", srv.url)
    );

    let by_url: Value = finger(&srv, &srv.at("/u/alice")).await.json().await.unwrap();
    assert_eq!(by_url["subject"], format!("acct:alice@{host}"));
    let instance: Value = finger(&srv, &format!("acct:{host}@{host}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(instance["links"][0]["href"], srv.at("/actor"));

    for missing in [
        format!("acct:nobody@{host}"),
        "acct:alice@other.example".to_owned(),
        format!("acct:pending_pia@{host}"),
    ] {
        assert_eq!(
            finger(&srv, &missing).await.status(),
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
    let none = reqwest::get(srv.at("/.well-known/webfinger")).await.unwrap();
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);

    let meta = reqwest::get(srv.at("/.well-known/host-meta")).await.unwrap();
    assert!(
        meta.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/xrd+xml")
    );
    assert!(
        meta.text()
            .await
            .unwrap()
            .contains(&format!("{}/.well-known/webfinger?resource={{uri}}", srv.url))
    );
}

async fn nodeinfo_reports_usage(b: Backend) {
    let Some(srv) = TestServer::start_with(b, &[("registration", "approval")]).await else {
        return;
    };
    srv.create_user("bob", PW, Role::Member).await;
    srv.create_user("carol", PW, Role::Member).await;
    srv.token("bob", PW).await;
    let links: Value = reqwest::get(srv.at("/.well-known/nodeinfo"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hrefs: Vec<&str> = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["href"].as_str().unwrap())
        .collect();
    assert_eq!(hrefs, [srv.at("/nodeinfo/2.0"), srv.at("/nodeinfo/2.1")]);
    for version in ["2.0", "2.1"] {
        let res = reqwest::get(srv.at(&format!("/nodeinfo/{version}")))
            .await
            .unwrap();
        assert!(
            res.headers()["content-type"]
                .to_str()
                .unwrap()
                .contains(&format!("schema/{version}#"))
        );
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["version"], version);
        assert_eq!(doc["software"]["name"], "agora");
        assert_eq!(doc["protocols"], serde_json::json!(["activitypub"]));
        assert_eq!(doc["usage"]["users"]["total"], 2);
        assert_eq!(doc["usage"]["users"]["activeMonth"], 1, "bob logged in");
        assert_eq!(doc["usage"]["users"]["activeHalfyear"], 1);
        assert_eq!(doc["openRegistrations"], true);
        assert_eq!(doc["metadata"]["approvalRequired"], true);
    }
    assert_eq!(
        reqwest::get(srv.at("/nodeinfo/3.0")).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn actors_have_two_faces(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("dora", PW, Role::Member).await;
    let c = reqwest::Client::new();
    for accept in [
        AP,
        "application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\"",
        "Application/Activity+JSON; charset=utf-8",
    ] {
        let res = c
            .get(srv.at("/u/dora"))
            .header("accept", accept)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{accept}");
        assert_eq!(res.headers()["content-type"], AP);
        assert_eq!(res.headers()["vary"], "Accept");
        let person: Value = res.json().await.unwrap();
        assert_eq!(person["type"], "Person");
        assert_eq!(person["id"], srv.at("/u/dora"));
        assert_eq!(person["preferredUsername"], "dora");
        assert_eq!(
            person["icon"]["mediaType"], "image/png",
            "a raster avatar, as Mastodon needs"
        );
        let icon = reqwest::get(person["icon"]["url"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(icon.status(), StatusCode::OK);
        assert_eq!(icon.headers()["content-type"], "image/png");
        assert!(icon.bytes().await.unwrap().starts_with(b"\x89PNG"));
        assert_eq!(person["inbox"], srv.at("/inbox"));
        assert_eq!(person["endpoints"]["sharedInbox"], srv.at("/inbox"));
        assert_eq!(
            person["publicKey"]["id"],
            format!("{}#main-key", srv.at("/u/dora"))
        );
        assert!(
            person["publicKey"]["publicKeyPem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert_eq!(
            person["@context"],
            serde_json::json!([
                "https://www.w3.org/ns/activitystreams",
                "https://w3id.org/security/v1"
            ])
        );
        for field in [
            "outbox",
            "followers",
            "url",
            "published",
            "manuallyApprovesFollowers",
            "discoverable",
            "name",
            "summary",
        ] {
            assert!(person.get(field).is_some(), "{field}");
        }
    }
    // The key is stable.
    let a: Value = crate::support::ap_get(srv.at("/u/dora")).await;
    let b2: Value = crate::support::ap_get(srv.at("/u/dora")).await;
    assert_eq!(a["publicKey"], b2["publicKey"]);

    let html = c
        .get(srv.at("/u/dora"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(html.headers()["vary"], "Accept");
    assert!(
        html.text()
            .await
            .unwrap()
            .contains(&format!("@dora@{}", srv.url.trim_start_matches("http://")))
    );

    let actor = c.get(srv.at("/actor")).header("accept", AP).send().await.unwrap();
    assert_eq!(
        actor.status(),
        StatusCode::OK,
        "the instance actor is fetchable unsigned"
    );
    let actor: Value = actor.json().await.unwrap();
    assert_eq!(actor["type"], "Application");
    assert_eq!(actor["publicKey"]["id"], format!("{}#main-key", srv.at("/actor")));
    let again: Value = crate::support::ap_get(srv.at("/actor")).await;
    assert_eq!(actor["publicKey"], again["publicKey"], "one instance key");

    let outbox: Value = crate::support::ap_get(srv.at("/u/dora/outbox")).await;
    assert_eq!(outbox["type"], "OrderedCollection");
    assert_eq!(
        c.get(srv.at("/u/nobody"))
            .header("accept", AP)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get(srv.at("/u/dora/likes")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

/// Two Agora instances on loopback: bob on B follows alice on A by her handle, A accepts, B sees
/// the follow accepted; bob unfollows and A forgets him.
async fn two_instances_follow_and_unfollow(b: Backend) {
    let Some(a) = TestServer::start(b).await else {
        return;
    };
    let Some(bsrv) = TestServer::start(b).await else {
        return;
    };
    a.create_user("alice", PW, Role::Member).await;
    bsrv.create_user("bob", PW, Role::Member).await;
    let token = bsrv.token("bob", PW).await;
    let a_host = a.url.trim_start_matches("http://").to_owned();
    let c = reqwest::Client::new();

    let res = c
        .post(bsrv.at("/api/v1/follows"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "target": format!("alice@{a_host}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["target"], a.at("/u/alice"));
    assert_eq!(body["state"], "pending");

    let mut state = String::new();
    for _ in 0..100 {
        let list: Value = c
            .get(bsrv.at("/api/v1/follows"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = list[0]["state"].as_str().unwrap_or_default().to_owned();
        if state == "accepted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "accepted", "A accepted and B processed the Accept");
    let followers: Value = crate::support::ap_get(a.at("/u/alice/followers")).await;
    assert_eq!(followers["totalItems"], 1);

    let again = c
        .post(bsrv.at("/api/v1/follows"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "target": a.at("/u/alice") }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK, "following twice is one follow");
    let nobody = c
        .post(bsrv.at("/api/v1/follows"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "target": format!("nobody@{a_host}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(nobody.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        nobody.json::<Value>().await.unwrap()["error"],
        "remote_account_unreachable"
    );

    let res = c
        .delete(bsrv.at("/api/v1/follows"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "target": a.at("/u/alice") }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let mut total = Value::Null;
    for _ in 0..100 {
        let f: Value = crate::support::ap_get(a.at("/u/alice/followers")).await;
        total = f["totalItems"].clone();
        if total == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(total, 0, "the Undo reached A");
}

/// Remote follow: a visitor on A's profile of alice gives their address on B and is sent to B's
/// follow page (B's subscribe template); signed in on B, bob confirms and follows alice.
async fn remote_follow_through_the_subscribe_template(b: Backend) {
    use crate::support::web::{browser, csrf_of, get_text, login};
    let Some(a) = TestServer::start(b).await else {
        return;
    };
    let Some(bsrv) = TestServer::start(b).await else {
        return;
    };
    a.create_user("alice", PW, Role::Member).await;
    bsrv.create_user("bob", PW, Role::Member).await;
    let b_host = bsrv.url.trim_start_matches("http://").to_owned();

    let visitor = browser();
    let profile = get_text(&visitor, &a.at("/u/alice")).await;
    assert!(
        profile.contains("action=\"/remote-follow\""),
        "the profile offers a remote follow"
    );
    let csrf = csrf_of(&visitor, &a.at("/u/alice")).await;
    let alice = a.at("/u/alice");
    let bad = visitor
        .post(a.at("/remote-follow"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("target", alice.as_str()),
            ("account", "no address"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text().await.unwrap().contains("@name@"),
        "the error says what to enter"
    );
    let account = format!("@bob@{b_host}");
    let res = visitor
        .post(a.at("/remote-follow"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("target", alice.as_str()),
            ("account", account.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let encoded: String = url::form_urlencoded::byte_serialize(alice.as_bytes()).collect();
    assert_eq!(
        location,
        bsrv.at(&format!("/authorize_interaction?uri={encoded}"))
    );

    // On B: anonymous visitors log in first, then confirm.
    let bob = browser();
    let res = bob.get(&location).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
    login(&bsrv, &bob, "bob", PW).await;
    let page = get_text(&bob, &location).await;
    assert!(page.contains("@alice@"), "the page names the account: {page}");
    let csrf = csrf_of(&bob, &location).await;
    let res = bob
        .post(bsrv.at("/authorize_interaction"))
        .form(&[("csrf", csrf.as_str()), ("uri", alice.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let token = bsrv.token("bob", PW).await;
    let mut state = String::new();
    for _ in 0..100 {
        let list: Value = reqwest::Client::new()
            .get(bsrv.at("/api/v1/follows"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = list[0]["state"].as_str().unwrap_or_default().to_owned();
        if state == "accepted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "accepted");
    let page = get_text(&bob, &location).await;
    assert!(
        page.contains("kern-alert--success"),
        "the page says bob follows alice"
    );
    let following: Value = crate::support::ap_get(bsrv.at("/u/bob/following?page=1")).await;
    assert_eq!(following["orderedItems"], serde_json::json!([alice]));
}
