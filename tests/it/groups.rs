//! Project groups: CLI, API, pages, visibility, membership and roles, and the group as an
//! ActivityPub `Group` that a user on another instance follows.

use std::process::Command;

use agora::accounts::model::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::web::{browser, csrf_of, get_text, login};
use crate::support::{Backend, TestDb, TestServer, api};

crate::backend_tests!(
    groups_through_the_api,
    internal_groups_are_invisible_to_outsiders,
    join_requests_and_roles,
    group_pages_and_forms,
    a_remote_user_follows_a_group,
    a_partner_group_is_mirrored,
    a_group_follows_a_partner_group,
    invitations_into_invite_groups,
);

const PW: &str = "correct horse battery";
const AP: &str = "application/activity+json";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn group_commands() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_agora"))
            .env_clear()
            .current_dir(dir.path())
            .env("AGORA_DATABASE_URL", db.url_string())
            .env("AGORA_PUBLIC_URL", "https://agora.example")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["group", "create", "programm", "--title", "Digitale Stadt"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "https://agora.example/g/programm");
    let out = run(&[
        "group",
        "create",
        "Verkehr",
        "--title",
        "Verkehr  und Mobilität",
        "--parent",
        "programm",
        "--visibility",
        "internal",
        "--join",
        "request",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["user", "create", "lena", "--email", "lena@example.org"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        run(&["group", "add-member", "verkehr", "lena", "core_team"])
            .status
            .success()
    );
    assert!(
        run(&["group", "add-member", "verkehr", "lena", "moderator"])
            .status
            .success()
    );
    let list = text(&run(&["group", "list"]).stdout);
    assert_eq!(
        list,
        "programm\tpublic\topen\t0\t-\tDigitale Stadt\nverkehr\tinternal\trequest\t1\tprogramm\tVerkehr und Mobilität\n"
    );
    for (args, expected) in [
        (vec!["group", "create", "lena", "--title", "X"], "already taken"),
        (vec!["group", "create", "admin", "--title", "X"], "reserved"),
        (
            vec!["group", "create", "neu", "--title", "X", "--parent", "nirgends"],
            "no group \"nirgends\"",
        ),
        (
            vec!["group", "add-member", "verkehr", "lena", "chef"],
            "no role \"chef\"",
        ),
        (
            vec!["group", "add-member", "verkehr", "niemand", "member"],
            "niemand",
        ),
        (
            vec!["group", "add-member", "nirgends", "lena", "member"],
            "no group",
        ),
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

async fn groups_through_the_api(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("bert", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let bert = srv.token("bert", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;

    let (status, body) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &bert,
        Some(json!({"slug": "x_y", "title": "X"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, prog) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "programm", "title": "Digitale Stadt", "summary": "Das **Programm**"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{prog}");
    assert_eq!(prog["url"], srv.at("/g/programm"));
    assert_eq!(prog["ap_id"], srv.at("/g/programm"));
    assert_eq!(prog["visibility"], "public");
    assert_eq!(prog["join_mode"], "open");
    assert_eq!(prog["manually_approves_followers"], false);
    assert_eq!(prog["allow_remote_threads"], true);
    assert_eq!(prog["summary_html"], "<p>Das <strong>Programm</strong></p>\n");
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "verkehr", "title": "Verkehr", "parent": "programm"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, sub) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "radwege", "title": "Radwege", "parent": "verkehr"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    for (body, field) in [
        (json!({"slug": "Programm", "title": "Again"}), "slug"),
        (json!({"slug": "bert", "title": "A user's name"}), "slug"),
        (json!({"slug": "neu_1", "title": "  "}), "title"),
        (
            json!({"slug": "neu_2", "title": "T", "visibility": "secret"}),
            "visibility",
        ),
        (
            json!({"slug": "neu_3", "title": "T", "parent": "nirgends"}),
            "parent",
        ),
    ] {
        let (status, err) = api(&c, M::POST, srv.at("/api/v1/groups"), &admin, Some(body.clone())).await;
        assert!(status.is_client_error(), "{body}: {status}");
        assert!(err["message"].as_str().is_some_and(|m| m.ends_with('.')), "{err}");
        if field != "slug" || status == StatusCode::UNPROCESSABLE_ENTITY {
            assert_eq!(err["field"], field, "{err}");
        }
    }

    // No cycles: the programme cannot become part of its own sub-group.
    let (status, err) = api(
        &c,
        M::PATCH,
        srv.at("/api/v1/groups/programm"),
        &admin,
        Some(json!({"parent": "radwege"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["field"], "parent");
    let (status, updated) = api(
        &c,
        M::PATCH,
        srv.at("/api/v1/groups/verkehr"),
        &admin,
        Some(json!({"title": "Verkehr und Mobilität", "join_mode": "request"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["parent"], "programm", "unchanged fields stay");
    assert_eq!(updated["join_mode"], "request");
    let (status, _) = api(
        &c,
        M::PATCH,
        srv.at("/api/v1/groups/verkehr"),
        &bert,
        Some(json!({"title": "Mine"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (_, list) = api(&c, M::GET, srv.at("/api/v1/groups"), &bert, None).await;
    let order: Vec<(&str, i64)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["slug"].as_str().unwrap(), g["depth"].as_i64().unwrap()))
        .collect();
    assert_eq!(order, [("programm", 0), ("verkehr", 1), ("radwege", 2)]);

    // Open group: join at once; the creator is its lead.
    let (status, joined) = api(&c, M::POST, srv.at("/api/v1/groups/programm/join"), &bert, None).await;
    assert_eq!(
        (status, joined["state"].as_str()),
        (StatusCode::OK, Some("member"))
    );
    let (status, _) = api(&c, M::POST, srv.at("/api/v1/groups/programm/join"), &bert, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "already a member");
    let (_, members) = api(&c, M::GET, srv.at("/api/v1/groups/programm/members"), &bert, None).await;
    assert_eq!(
        members,
        json!([
            {"username": "admin_anna", "display_name": "admin_anna", "roles": ["lead"]},
            {"username": "bert", "display_name": "bert", "roles": ["member"]},
        ])
    );
    let (_, me) = api(&c, M::GET, srv.at("/api/v1/groups/programm"), &bert, None).await;
    assert_eq!(me["my_roles"], json!(["member"]));
    assert_eq!(me["members"], 2);
    // The last lead cannot leave; a member can.
    let (status, err) = api(&c, M::POST, srv.at("/api/v1/groups/programm/leave"), &admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"], "last_lead");
    let (status, _) = api(&c, M::POST, srv.at("/api/v1/groups/programm/leave"), &bert, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (_, roles) = api(&c, M::GET, srv.at("/api/v1/roles"), &bert, None).await;
    let tokens: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        tokens,
        [
            "lead",
            "assistant",
            "core_team",
            "extended_team",
            "steering_committee",
            "contract_management",
            "partner",
            "member",
            "moderator"
        ]
    );
    assert!(
        roles[5]["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("manage_contracts"))
    );
    srv.stop().await;
}

async fn internal_groups_are_invisible_to_outsiders(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("ines", PW, Role::Member).await;
    srv.create_user("otto", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let ines = srv.token("ines", PW).await;
    let otto = srv.token("otto", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "vertraege", "title": "Verträge", "visibility": "internal", "join_mode": "invite"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/vertraege/members"),
        &admin,
        Some(json!({"username": "ines", "role": "contract_management"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // Outsiders: 404 everywhere, and nothing in lists, WebFinger or ActivityPub.
    let (status, _) = api(&c, M::GET, srv.at("/api/v1/groups/vertraege"), &otto, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = api(&c, M::GET, srv.at("/api/v1/groups"), &otto, None).await;
    assert_eq!(list, json!([]));
    let anon = reqwest::Client::new();
    for url in [
        srv.at("/g/vertraege"),
        srv.at("/g/vertraege/members"),
        srv.at("/g/vertraege/followers"),
    ] {
        assert_eq!(
            anon.get(&url).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }
    let res = anon
        .get(srv.at("/g/vertraege"))
        .header("accept", AP)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "no actor for an internal group"
    );
    let host = srv.url.trim_start_matches("http://");
    let res = anon
        .get(srv.at(&format!("/.well-known/webfinger?resource=acct:vertraege@{host}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // Invite only: outsiders cannot join, the member sees it.
    let (status, err) = api(&c, M::POST, srv.at("/api/v1/groups/vertraege/join"), &otto, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, g) = api(&c, M::GET, srv.at("/api/v1/groups/vertraege"), &ines, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(g["my_roles"], json!(["contract_management"]));
    assert_eq!(g["ap_id"], Value::Null, "internal groups are not federated");
    let (_, list) = api(&c, M::GET, srv.at("/api/v1/groups"), &ines, None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Mentioning an outsider in an internal group tells them nothing, not even the title.
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/vertraege/threads"),
        &ines,
        Some(json!({"title": "Vertrag Stadtwerke", "body": "Fragen wir @otto und @admin_anna?"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, notes) = api(&c, M::GET, srv.at("/api/v1/notifications"), &otto, None).await;
    assert!(!notes.to_string().contains("Verträge"), "{notes}");
    let (_, notes) = api(&c, M::GET, srv.at("/api/v1/notifications"), &admin, None).await;
    assert!(
        notes.to_string().contains("Verträge"),
        "admins may read it, so they are told: {notes}"
    );
    srv.stop().await;
}

async fn join_requests_and_roles(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("lea", PW, Role::Member).await;
    srv.create_user("max", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let lea = srv.token("lea", PW).await;
    let max = srv.token("max", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "energie", "title": "Energie", "join_mode": "request"})),
    )
    .await;
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/energie/members"),
        &admin,
        Some(json!({"username": "lea", "role": "assistant"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, body) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/energie/join"),
        &max,
        Some(json!({"message": "Ich arbeite bei den Stadtwerken."})),
    )
    .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (StatusCode::ACCEPTED, Some("requested"))
    );
    let (status, _) = api(&c, M::POST, srv.at("/api/v1/groups/energie/join"), &max, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "one waiting request");
    let (status, _) = api(
        &c,
        M::GET,
        srv.at("/api/v1/groups/energie/join_requests"),
        &max,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // The assistant may manage members (role permissions from the table).
    let (status, requests) = api(
        &c,
        M::GET,
        srv.at("/api/v1/groups/energie/join_requests"),
        &lea,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(requests[0]["username"], "max");
    assert_eq!(requests[0]["message"], "Ich arbeite bei den Stadtwerken.");
    let id = requests[0]["id"].as_i64().unwrap();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/groups/energie/join_requests/{id}/approve")),
        &lea,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, g) = api(&c, M::GET, srv.at("/api/v1/groups/energie"), &max, None).await;
    assert_eq!(g["my_roles"], json!(["member"]));
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/groups/energie/join_requests/{id}/approve")),
        &lea,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "answered already");

    // Roles are data: a changed permission changes what a role may do.
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/energie/members"),
        &max,
        Some(json!({"username": "max", "role": "lead"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "members do not manage members");
    srv.state
        .db()
        .run(|c| {
            use agora::db::schema::role_permissions;
            use diesel::prelude::*;
            diesel::insert_into(role_permissions::table)
                .values((
                    role_permissions::role.eq("member"),
                    role_permissions::permission.eq("manage_members"),
                ))
                .execute(c)
                .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();
    let (status, members) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/energie/members"),
        &max,
        Some(json!({"username": "max", "role": "moderator"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{members}");
    let (status, _) = api(
        &c,
        M::DELETE,
        srv.at("/api/v1/groups/energie/members/max?role=moderator"),
        &lea,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, g) = api(&c, M::GET, srv.at("/api/v1/groups/energie"), &max, None).await;
    assert_eq!(g["my_roles"], json!(["member"]));

    // Notifications reached the requester and the managers.
    let kinds = srv
        .state
        .db()
        .run(|c| {
            use agora::db::schema::{notifications, users};
            use diesel::prelude::*;
            notifications::table
                .inner_join(users::table)
                .order(notifications::id)
                .select((users::username, notifications::kind))
                .load::<(String, String)>(c)
                .map_err(agora::db::Error::from)
        })
        .await
        .unwrap();
    assert!(
        kinds.contains(&("lea".into(), "notification-join-request".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("max".into(), "notification-join-approved".into())),
        "{kinds:?}"
    );
    // max sees it in the API and on the page, with the unread badge until he marks it read.
    let (_, notes) = api(&c, M::GET, srv.at("/api/v1/notifications"), &max, None).await;
    assert!(
        notes
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["text"] == "Your request to join Energie has been approved." && n["read"] == false),
        "{notes}"
    );
    let web = browser();
    login(&srv, &web, "max", PW).await;
    let page = get_text(&web, &srv.at("/notifications")).await;
    assert!(page.contains("unread-badge") && page.contains("Energie"));
    let csrf = csrf_of(&web, &srv.at("/notifications")).await;
    web.post(srv.at("/notifications/read"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let page = get_text(&web, &srv.at("/notifications")).await;
    assert!(!page.contains("unread-badge"), "all read");
    srv.stop().await;
}

async fn group_pages_and_forms(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("kim", PW, Role::Member).await;
    let web = browser();
    login(&srv, &web, "admin_anna", PW).await;
    let csrf = csrf_of(&web, &srv.at("/groups/new")).await;
    let res = web
        .post(srv.at("/groups/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("slug", "klima"),
            ("title", "Klima <script>alert(1)</script>"),
            ("summary", "Wir **handeln**. <img src=x onerror=alert(1)>"),
            ("parent", ""),
            ("visibility", "public"),
            ("join_mode", "open"),
            ("remote_threads", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/g/klima");
    let page = get_text(&web, &srv.at("/g/klima")).await;
    assert!(
        (page.contains("Klima &lt;script&gt;") || page.contains("Klima &#60;script&#62;"))
            && !page.contains("<script>alert"),
        "the title is escaped"
    );
    assert!(
        page.contains("<strong>handeln</strong>") && !page.contains("onerror"),
        "the summary is sanitised"
    );
    assert!(page.contains(&format!("@klima@{}", srv.url.trim_start_matches("http://"))));
    let bad = web
        .post(srv.at("/groups/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("slug", "klima"),
            ("title", "Again"),
            ("visibility", "public"),
            ("join_mode", "open"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(
        html.contains("id=\"slug-error\"") && html.contains("schon an eine Person oder Gruppe vergeben"),
        "the error is next to the slug"
    );
    let tree = get_text(&web, &srv.at("/groups")).await;
    assert!(tree.contains("href=\"/g/klima\""));

    // A member joins through the page.
    let kim = browser();
    login(&srv, &kim, "kim", PW).await;
    let csrf = csrf_of(&kim, &srv.at("/g/klima")).await;
    let res = kim
        .post(srv.at("/g/klima/join"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/g/klima?done=joined");
    let members = get_text(&kim, &srv.at("/g/klima/members")).await;
    assert!(members.contains("@kim") && members.contains("@admin_anna"));
    let res = kim.get(srv.at("/g/klima/settings")).send().await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a member cannot change the group"
    );
    srv.stop().await;
}

/// bob on B follows the group `stadt` on A by its handle; A accepts in the group's name; a
/// settings change on A reaches B as Update{Group}.
async fn a_remote_user_follows_a_group(b: Backend) {
    let Some(a) = TestServer::start(b).await else {
        return;
    };
    let Some(bsrv) = TestServer::start(b).await else {
        return;
    };
    a.create_user("admin_anna", PW, Role::Admin).await;
    bsrv.create_user("bob", PW, Role::Member).await;
    let admin = a.token("admin_anna", PW).await;
    let bob = bsrv.token("bob", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    api(
        &c,
        M::POST,
        a.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "stadt", "title": "Stadt"})),
    )
    .await;

    let doc: Value = crate::support::ap_get(a.at("/g/stadt")).await;
    assert_eq!(doc["type"], "Group");
    assert_eq!(doc["id"], a.at("/g/stadt"));
    assert_eq!(doc["inbox"], a.at("/inbox"));
    assert_eq!(doc["attributedTo"], a.at("/g/stadt/moderators"));
    assert_eq!(doc["featured"], a.at("/g/stadt/featured"));
    assert_eq!(doc["publicKey"]["id"], a.at("/g/stadt#main-key"));
    let mods: Value = crate::support::ap_get(a.at("/g/stadt/moderators")).await;
    assert_eq!(mods["orderedItems"], json!([a.at("/u/admin_anna")]));

    // The group approves followers by hand: bob's request waits for a lead.
    let (status, _) = api(
        &c,
        M::PATCH,
        a.at("/api/v1/groups/stadt"),
        &admin,
        Some(json!({"manually_approves_followers": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let a_host = a.url.trim_start_matches("http://").to_owned();
    let (status, body) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/follows"),
        &bob,
        Some(json!({"target": format!("stadt@{a_host}")})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["target"], a.at("/g/stadt"));
    let mut requests = Value::Null;
    for _ in 0..100 {
        requests = api(
            &c,
            M::GET,
            a.at("/api/v1/groups/stadt/follow_requests"),
            &admin,
            None,
        )
        .await
        .1;
        if requests.as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(requests[0]["actor"], bsrv.at("/u/bob"), "{requests}");
    let (_, list) = api(&c, M::GET, bsrv.at("/api/v1/follows"), &bob, None).await;
    assert_eq!(list[0]["state"], "pending");
    let id = requests[0]["id"].as_i64().unwrap();
    let (status, _) = api(
        &c,
        M::POST,
        a.at(&format!("/api/v1/groups/stadt/follow_requests/{id}/accept")),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let mut state = String::new();
    for _ in 0..100 {
        let (_, list) = api(&c, M::GET, bsrv.at("/api/v1/follows"), &bob, None).await;
        state = list[0]["state"].as_str().unwrap_or_default().to_owned();
        if state == "accepted" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(state, "accepted", "the group accepted bob");
    let (_, g) = api(&c, M::GET, a.at("/api/v1/groups/stadt"), &admin, None).await;
    assert_eq!(g["followers"], 1);

    let (status, _) = api(
        &c,
        M::PATCH,
        a.at("/api/v1/groups/stadt"),
        &admin,
        Some(json!({"title": "Stadt im Wandel"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let db = bsrv.state.db().clone();
    let group_id = a.at("/g/stadt");
    let mut name = None;
    for _ in 0..100 {
        let id = group_id.clone();
        name = db
            .run(move |c| {
                use agora::db::schema::remote_actors;
                use diesel::prelude::*;
                remote_actors::table
                    .filter(remote_actors::ap_id.eq(id))
                    .select(remote_actors::name)
                    .first::<Option<String>>(c)
                    .map_err(agora::db::Error::from)
            })
            .await
            .unwrap();
        if name.as_deref() == Some("Stadt im Wandel") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        name.as_deref(),
        Some("Stadt im Wandel"),
        "Update{{Group}} reached B"
    );
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Partner instances: bob on B follows group `stadt` on A; a thread posted on A reaches B as a
/// read-only mirror; bob's reply from B appears on A; edits and deletions on A reach B; after
/// bob unfollows, new threads stay on A.
async fn a_partner_group_is_mirrored(b: Backend) {
    let Some(a) = TestServer::start(b).await else {
        return;
    };
    let Some(bsrv) = TestServer::start(b).await else {
        return;
    };
    a.create_user("admin_anna", PW, Role::Admin).await;
    a.create_user("mia", PW, Role::Member).await;
    bsrv.create_user("bob", PW, Role::Member).await;
    let admin = a.token("admin_anna", PW).await;
    let mia = a.token("mia", PW).await;
    let bob = bsrv.token("bob", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    api(
        &c,
        M::POST,
        a.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "stadt", "title": "Stadt"})),
    )
    .await;
    api(&c, M::POST, a.at("/api/v1/groups/stadt/join"), &mia, None).await;
    let a_host = a.url.trim_start_matches("http://").to_owned();
    let (status, _) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/follows"),
        &bob,
        Some(json!({"target": format!("stadt@{a_host}")})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    wait_until("the Accept", || async {
        api(&c, M::GET, bsrv.at("/api/v1/follows"), &bob, None).await.1[0]["state"] == "accepted"
    })
    .await;

    let (_, t) = api(
        &c,
        M::POST,
        a.at("/api/v1/groups/stadt/threads"),
        &mia,
        Some(json!({"title": "Marktplatz", "body": "Wie soll der **Marktplatz** aussehen?"})),
    )
    .await;
    let a_thread = t["url"].as_str().unwrap().to_owned();
    let mirror = format!("stadt@{a_host}");
    let list_url = bsrv.at(&format!("/api/v1/groups/{mirror}/threads"));
    wait_until("the mirrored thread on B", || async {
        api(&c, M::GET, list_url.clone(), &bob, None).await.1["items"][0]["title"] == "Marktplatz"
    })
    .await;
    let (_, list) = api(&c, M::GET, list_url.clone(), &bob, None).await;
    let b_tid = list["items"][0]["id"].as_i64().unwrap();
    let (_, mirrored) = api(
        &c,
        M::GET,
        bsrv.at(&format!("/api/v1/threads/{b_tid}")),
        &bob,
        None,
    )
    .await;
    assert_eq!(mirrored["posts"][0]["ap_id"], a_thread);
    assert!(
        mirrored["posts"][0]["content_html"]
            .as_str()
            .unwrap()
            .contains("<strong>Marktplatz</strong>")
    );
    assert_eq!(mirrored["posts"][0]["author"]["handle"], format!("@mia@{a_host}"));
    let page = get_text(&browser(), &bsrv.at(&format!("/g/{mirror}"))).await;
    assert!(
        page.contains("Marktplatz") && page.contains(&a.at("/g/stadt")),
        "the mirror page links the origin"
    );
    // The mirror is not an actor of B's.
    let res = c
        .get(bsrv.at(&format!("/g/{mirror}")))
        .header("accept", AP)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // bob replies from B; the reply lands on A.
    let (status, reply) = api(
        &c,
        M::POST,
        bsrv.at(&format!("/api/v1/threads/{b_tid}/replies")),
        &bob,
        Some(json!({"body": "Mit Bäumen, bitte."})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let a_tid = t["id"].as_i64().unwrap();
    wait_until("bob's reply on A", || async {
        api(&c, M::GET, a.at(&format!("/api/v1/threads/{a_tid}")), &mia, None)
            .await
            .1["reply_count"]
            == 1
    })
    .await;
    let (_, on_a) = api(&c, M::GET, a.at(&format!("/api/v1/threads/{a_tid}")), &mia, None).await;
    let b_host = bsrv.url.trim_start_matches("http://");
    assert_eq!(on_a["posts"][1]["author"]["handle"], format!("@bob@{b_host}"));
    assert_eq!(on_a["posts"][1]["ap_id"], reply["ap_id"]);
    // A announces it back to its followers; B already has it, once.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let (_, mirrored) = api(
        &c,
        M::GET,
        bsrv.at(&format!("/api/v1/threads/{b_tid}")),
        &bob,
        None,
    )
    .await;
    assert_eq!(mirrored["posts"].as_array().unwrap().len(), 2, "{mirrored}");

    // An edit on A reaches the mirror.
    let (status, _) = api(
        &c,
        M::PATCH,
        a.at(&format!("/api/v1/threads/{a_tid}")),
        &mia,
        Some(json!({"body": "Wie soll der neue Marktplatz aussehen?"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_until("the edit on B", || async {
        api(
            &c,
            M::GET,
            bsrv.at(&format!("/api/v1/threads/{b_tid}")),
            &bob,
            None,
        )
        .await
        .1["posts"][0]["content_html"]
            .as_str()
            .is_some_and(|h| h.contains("neue Marktplatz"))
    })
    .await;

    // After bob unfollows, A's new threads stay on A; then a deletion still reaches B before.
    let (status, _) = api(
        &c,
        M::DELETE,
        a.at(&format!("/api/v1/threads/{a_tid}")),
        &mia,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_until("the deletion on B", || async {
        api(
            &c,
            M::GET,
            bsrv.at(&format!("/api/v1/threads/{b_tid}")),
            &bob,
            None,
        )
        .await
        .0 == StatusCode::GONE
    })
    .await;
    let (status, _) = api(
        &c,
        M::DELETE,
        bsrv.at("/api/v1/follows"),
        &bob,
        Some(json!({"target": a.at("/g/stadt")})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    wait_until("A forgets the follower", || async {
        api(&c, M::GET, a.at("/api/v1/groups/stadt"), &admin, None)
            .await
            .1["followers"]
            == 0
    })
    .await;
    api(
        &c,
        M::POST,
        a.at("/api/v1/groups/stadt/threads"),
        &mia,
        Some(json!({"title": "Nur hier", "body": "x"})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, list) = api(&c, M::GET, list_url, &bob, None).await;
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["title"] != "Nur hier"),
        "no delivery after the unfollow: {list}"
    );
}

/// A group on B follows group G on A: B mirrors G's threads, lists the partner, B's members
/// reply there; A sees B's group as a follower; unfollowing stops the mirror's updates.
async fn a_group_follows_a_partner_group(b: Backend) {
    let Some(a) = TestServer::start(b).await else {
        return;
    };
    let Some(bsrv) = TestServer::start(b).await else {
        return;
    };
    a.create_user("admin_anna", PW, Role::Admin).await;
    a.create_user("mia", PW, Role::Member).await;
    bsrv.create_user("admin_bea", PW, Role::Admin).await;
    bsrv.create_user("bob", PW, Role::Member).await;
    let admin_a = a.token("admin_anna", PW).await;
    let mia = a.token("mia", PW).await;
    let admin_b = bsrv.token("admin_bea", PW).await;
    let bob = bsrv.token("bob", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    api(
        &c,
        M::POST,
        a.at("/api/v1/groups"),
        &admin_a,
        Some(json!({"slug": "stadtwerke", "title": "Stadtwerke"})),
    )
    .await;
    api(&c, M::POST, a.at("/api/v1/groups/stadtwerke/join"), &mia, None).await;
    api(
        &c,
        M::POST,
        bsrv.at("/api/v1/groups"),
        &admin_b,
        Some(json!({"slug": "quartier", "title": "Quartier"})),
    )
    .await;
    let (status, _) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/groups"),
        &admin_b,
        Some(json!({"slug": "intern", "title": "Intern", "visibility": "internal"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let a_host = a.url.trim_start_matches("http://").to_owned();
    let target = format!("stadtwerke@{a_host}");

    // A group follows groups, not people.
    let (status, err) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/groups/quartier/follows"),
        &admin_b,
        Some(json!({"target": format!("mia@{a_host}")})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"], "not_a_group");
    // Only who may edit the group, and only public groups, follow.
    let (status, _) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/groups/quartier/follows"),
        &bob,
        Some(json!({"target": target})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, err) = api(
        &c,
        M::POST,
        bsrv.at("/api/v1/groups/intern/follows"),
        &admin_b,
        Some(json!({"target": target})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("Internal groups"),
        "{err}"
    );

    // Through the settings page; an unknown handle gets its sentence next to the field.
    let web = browser();
    login(&bsrv, &web, "admin_bea", PW).await;
    let csrf = csrf_of(&web, &bsrv.at("/g/quartier/settings")).await;
    let res = web
        .post(bsrv.at("/g/quartier/follows"))
        .form(&[("csrf", csrf.as_str()), ("target", &format!("niemand@{a_host}"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"target-error\""), "{html}");
    let res = web
        .post(bsrv.at("/g/quartier/follows"))
        .form(&[("csrf", csrf.as_str()), ("target", &format!("@{target}"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let follows_url = bsrv.at("/api/v1/groups/quartier/follows");
    wait_until("the Accept for the group", || async {
        api(&c, M::GET, follows_url.clone(), &admin_b, None).await.1[0]["state"] == "accepted"
    })
    .await;
    let (_, followers) = api(&c, M::GET, a.at("/api/v1/groups/stadtwerke"), &admin_a, None).await;
    assert_eq!(followers["followers"], 1);
    // A group's followers are counted, not listed (like Lemmy's communities).
    let followers_doc = crate::support::ap_get(a.at("/g/stadtwerke/followers")).await;
    assert_eq!(followers_doc["totalItems"], 1, "{followers_doc}");

    // A thread on A is mirrored on B and the partner shows on B's group page.
    let (_, t) = api(
        &c,
        M::POST,
        a.at("/api/v1/groups/stadtwerke/threads"),
        &mia,
        Some(json!({"title": "Ladesäulen", "body": "Wo fehlen **Ladesäulen**?"})),
    )
    .await;
    let a_tid = t["id"].as_i64().unwrap();
    let list_url = bsrv.at(&format!("/api/v1/groups/{target}/threads"));
    wait_until("the mirrored thread on B", || async {
        api(&c, M::GET, list_url.clone(), &bob, None).await.1["items"][0]["title"] == "Ladesäulen"
    })
    .await;
    let (_, follows) = api(&c, M::GET, follows_url.clone(), &admin_b, None).await;
    assert_eq!(follows[0]["mirror"], target.as_str());
    let page = get_text(&browser(), &bsrv.at("/g/quartier")).await;
    assert!(
        page.contains(&format!("href=\"/g/{target}\"")),
        "the group page links the partner"
    );
    let settings = get_text(&web, &bsrv.at("/g/quartier/settings")).await;
    assert!(settings.contains("Stadtwerke") && settings.contains("/g/quartier/follows/remove"));

    // bob on B replies in the mirror; it lands on A.
    let (_, list) = api(&c, M::GET, list_url.clone(), &bob, None).await;
    let b_tid = list["items"][0]["id"].as_i64().unwrap();
    let (status, _) = api(
        &c,
        M::POST,
        bsrv.at(&format!("/api/v1/threads/{b_tid}/replies")),
        &bob,
        Some(json!({"body": "Am Bahnhof."})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    wait_until("bob's reply on A", || async {
        api(&c, M::GET, a.at(&format!("/api/v1/threads/{a_tid}")), &mia, None)
            .await
            .1["reply_count"]
            == 1
    })
    .await;
    // bob's like in the mirror counts on A, and so does taking it back.
    let (status, _) = api(
        &c,
        M::POST,
        bsrv.at(&format!("/api/v1/threads/{b_tid}/like")),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let a_thread_url = a.at(&format!("/api/v1/threads/{a_tid}"));
    wait_until("bob's like on A", || async {
        api(&c, M::GET, a_thread_url.clone(), &mia, None).await.1["posts"][0]["like_count"] == 1
    })
    .await;
    let (status, _) = api(
        &c,
        M::DELETE,
        bsrv.at(&format!("/api/v1/threads/{b_tid}/like")),
        &bob,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    wait_until("bob's Undo{Like} on A", || async {
        api(&c, M::GET, a_thread_url.clone(), &mia, None).await.1["posts"][0]["like_count"] == 0
    })
    .await;

    // Unfollow through the page: A forgets the follower, new threads stay on A.
    let res = web
        .post(bsrv.at("/g/quartier/follows/remove"))
        .form(&[("csrf", csrf.as_str()), ("target", &a.at("/g/stadtwerke"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    wait_until("A forgets the group follower", || async {
        api(&c, M::GET, a.at("/api/v1/groups/stadtwerke"), &admin_a, None)
            .await
            .1["followers"]
            == 0
    })
    .await;
    api(
        &c,
        M::POST,
        a.at("/api/v1/groups/stadtwerke/threads"),
        &mia,
        Some(json!({"title": "Nur auf A", "body": "x"})),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, list) = api(&c, M::GET, list_url.clone(), &bob, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, follows) = api(&c, M::GET, follows_url, &admin_b, None).await;
    assert_eq!(follows, json!([]));
    a.stop().await;
    bsrv.stop().await;
}

/// An invite-only group: joining without an invitation is refused; a lead invites (API and
/// members page), the invitee is notified and accepts or declines; duplicates and strangers'
/// answers are refused; a withdrawn invitation cannot be accepted.
async fn invitations_into_invite_groups(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("lea", PW, Role::Member).await;
    srv.create_user("max", PW, Role::Member).await;
    srv.create_user("ole", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let lea = srv.token("lea", PW).await;
    let max = srv.token("max", PW).await;
    let ole = srv.token("ole", PW).await;
    let c = reqwest::Client::new();
    use reqwest::Method as M;
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "lenkung", "title": "Lenkungskreis", "join_mode": "invite", "visibility": "internal"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/lenkung/members"),
        &admin,
        Some(json!({"username": "lea", "role": "lead"})),
    )
    .await;
    let (status, err) = api(&c, M::POST, srv.at("/api/v1/groups/lenkung/join"), &max, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an internal group does not exist for max: {err}"
    );

    // lea (lead) invites max as steering_committee; max (no right) cannot invite.
    let invite = |token: String, who: &'static str, role: &'static str| {
        let c = c.clone();
        let url = srv.at("/api/v1/groups/lenkung/invitations");
        async move {
            api(
                &c,
                M::POST,
                url,
                &token,
                Some(json!({"username": who, "role": role})),
            )
            .await
        }
    };
    let (status, inv) = invite(lea.clone(), "max", "steering_committee").await;
    assert_eq!(status, StatusCode::CREATED, "{inv}");
    assert_eq!(inv["role"], "steering_committee");
    assert_eq!(inv["invited_by"], "lea");
    let (status, err) = invite(lea.clone(), "max", "member").await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["error"], "already_invited");
    let (status, _) = invite(lea.clone(), "lea", "member").await;
    assert_eq!(status, StatusCode::CONFLICT, "members are not invited");
    let (status, _) = invite(lea.clone(), "niemand", "member").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = invite(lea.clone(), "ole", "chef").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = invite(ole.clone(), "max", "member").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ole sees no internal group");

    // max is notified, sees the invitation, ole cannot answer it.
    let (_, notes) = api(&c, M::GET, srv.at("/api/v1/notifications"), &max, None).await;
    assert!(
        notes
            .to_string()
            .contains("lea invited you to join Lenkungskreis"),
        "{notes}"
    );
    let (_, mine) = api(&c, M::GET, srv.at("/api/v1/me/invitations"), &max, None).await;
    assert_eq!(mine[0]["group"], "lenkung");
    let id = mine[0]["id"].as_i64().unwrap();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/me/invitations/{id}/accept")),
        &ole,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, g) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/me/invitations/{id}/accept")),
        &max,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["my_roles"], json!(["steering_committee"]));
    let (status, _) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/me/invitations/{id}/accept")),
        &max,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "answered once");
    let (_, notes) = api(&c, M::GET, srv.at("/api/v1/notifications"), &lea, None).await;
    assert!(
        notes.to_string().contains("max accepted the invitation"),
        "{notes}"
    );

    // Through the pages: lea invites ole on the members page; ole declines on /notifications.
    let web = browser();
    login(&srv, &web, "lea", PW).await;
    let csrf = csrf_of(&web, &srv.at("/g/lenkung/members")).await;
    let res = web
        .post(srv.at("/g/lenkung/members"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "ole"),
            ("role", "partner"),
            ("action", "invite"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let members = get_text(&web, &srv.at("/g/lenkung/members?done=invited")).await;
    assert!(members.contains("Die Einladung wurde verschickt") && members.contains("/withdraw"));
    let res = web
        .post(srv.at("/g/lenkung/members"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "ole"),
            ("role", "partner"),
            ("action", "invite"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("id=\"username-error\""));
    let ole_web = browser();
    login(&srv, &ole_web, "ole", PW).await;
    let page = get_text(&ole_web, &srv.at("/notifications")).await;
    assert!(
        page.contains("Lenkungskreis") && page.contains("/accept"),
        "{page}"
    );
    let (_, mine) = api(&c, M::GET, srv.at("/api/v1/me/invitations"), &ole, None).await;
    let ole_inv = mine[0]["id"].as_i64().unwrap();
    let ole_csrf = csrf_of(&ole_web, &srv.at("/notifications")).await;
    let res = ole_web
        .post(srv.at(&format!("/invitations/{ole_inv}/decline")))
        .form(&[("csrf", ole_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        api(&c, M::GET, srv.at("/api/v1/groups/lenkung"), &ole, None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // A withdrawn invitation cannot be accepted.
    let (_, inv) = invite(lea.clone(), "ole", "member").await;
    let inv_id = inv["id"].as_i64().unwrap();
    let res = web
        .post(srv.at(&format!("/g/lenkung/invitations/{inv_id}/withdraw")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, err) = api(
        &c,
        M::POST,
        srv.at(&format!("/api/v1/me/invitations/{inv_id}/accept")),
        &ole,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        err["message"].as_str().unwrap().contains("no such invitation"),
        "{err}"
    );
    let (_, list) = api(
        &c,
        M::GET,
        srv.at("/api/v1/groups/lenkung/invitations"),
        &lea,
        None,
    )
    .await;
    assert_eq!(list, json!([]));
    srv.stop().await;
}
