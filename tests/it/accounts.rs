//! Accounts through the real HTTP server: tokens, limits, registration modes, sessions and CSRF.

use agora::accounts::model::{Role, Status};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer};

crate::backend_tests!(
    token_me_and_revoke,
    wrong_password_is_401_and_sixth_failure_is_429,
    failures_per_ip_are_limited,
    successful_logins_are_never_limited,
    bad_bodies_get_clear_errors_and_the_server_keeps_serving,
    registration_follows_the_mode,
    names_are_unique_in_any_case_and_reserved_names_are_refused,
    one_time_password_forces_a_change,
    disabled_accounts_lose_access,
    web_login_logout_with_csrf,
    token_management_api,
    parallel_guesses_cannot_overtake_the_limit,
    hostile_login_input_is_refused_not_crashed,
);

const PW: &str = "correct horse battery";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post_token(srv: &TestServer, user: &str, pw: &str) -> reqwest::Response {
    client()
        .post(srv.at("/api/v1/auth/token"))
        .json(&json!({ "username": user, "password": pw }))
        .send()
        .await
        .unwrap()
}

async fn token_me_and_revoke(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", PW, Role::Admin).await;
    let res = post_token(&srv, "Alice", PW).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("agora_"));
    assert_eq!(body["user"]["username"], "alice");

    let me = client()
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["username"], "alice");
    assert_eq!(me["role"], "admin");
    assert!(me.get("password_hash").is_none(), "never expose the hash");

    let anon = client().get(srv.at("/api/v1/me")).send().await.unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anon.json::<Value>().await.unwrap()["error"], "unauthenticated");

    let del = client()
        .delete(srv.at("/api/v1/auth/token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let after = client()
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let err: Value = after.json().await.unwrap();
    assert_eq!(err["error"], "invalid_token");
    assert!(err["message"].as_str().unwrap().ends_with('.'));
}

async fn wrong_password_is_401_and_sixth_failure_is_429(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("bob", PW, Role::Member).await;
    let mut messages = Vec::new();
    for _ in 0..5 {
        let res = post_token(&srv, "bob", "wrong password!").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        messages.push(
            res.json::<Value>().await.unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // An unknown user gets exactly the same answer: nothing says which part was wrong.
    let unknown = post_token(&srv, "nobody_here", "wrong password!").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        unknown.json::<Value>().await.unwrap()["message"]
            .as_str()
            .unwrap(),
        messages[0]
    );

    let sixth = post_token(&srv, "bob", "wrong password!").await;
    assert_eq!(sixth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.headers().contains_key("retry-after"));
    assert_eq!(sixth.json::<Value>().await.unwrap()["error"], "too_many_attempts");
    // Locked means locked: the right password does not get through either (or it would tell).
    assert_eq!(
        post_token(&srv, "bob", PW).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Other accounts are unaffected.
    srv.create_user("carol", PW, Role::Member).await;
    assert_eq!(post_token(&srv, "carol", PW).await.status(), StatusCode::OK);
}

async fn failures_per_ip_are_limited(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("dave", PW, Role::Member).await;
    for i in 0..30 {
        let res = post_token(&srv, &format!("guess{i}"), "wrong password!").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(
        post_token(&srv, "dave", PW).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn successful_logins_are_never_limited(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("erin", PW, Role::Member).await;
    for i in 0..12 {
        assert_eq!(
            post_token(&srv, "erin", PW).await.status(),
            StatusCode::OK,
            "login {i}"
        );
    }
    // A success clears earlier failures of the account.
    for _ in 0..4 {
        post_token(&srv, "erin", "wrong password!").await;
    }
    assert_eq!(post_token(&srv, "erin", PW).await.status(), StatusCode::OK);
    for _ in 0..4 {
        assert_eq!(
            post_token(&srv, "erin", "wrong password!").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(post_token(&srv, "erin", PW).await.status(), StatusCode::OK);
}

async fn bad_bodies_get_clear_errors_and_the_server_keeps_serving(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let c = client();
    let res = c
        .post(srv.at("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{\"username\": \"x\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "malformed_json");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("The request body is not valid JSON")
    );

    let res = c
        .post(srv.at("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body("{\"username\": 3}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_json");

    let res = c
        .post(srv.at("/api/v1/auth/token"))
        .body("username=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Over the 1 MiB limit, with and without Content-Length.
    let big = vec![b' '; 2 * 1024 * 1024];
    let res = c
        .post(srv.at("/api/v1/auth/token"))
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "payload_too_large");
    assert_eq!(
        chunked_post(&srv, "/api/v1/auth/token", 2 * 1024 * 1024).await,
        413
    );

    // Still serving.
    assert_eq!(
        c.get(srv.at("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// Sends a chunked body without Content-Length, so the limit must be enforced while reading;
/// returns the status code.
async fn chunked_post(srv: &TestServer, path: &str, total: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = srv.url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut sent = 0;
    while sent < total {
        // The server may answer and close early; that is the point.
        if s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .is_err()
            || s.write_all(&chunk).await.is_err()
            || s.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

async fn register(srv: &TestServer, name: &str) -> reqwest::Response {
    client()
        .post(srv.at("/api/v1/accounts"))
        .json(&json!({ "username": name, "email": format!("{name}@example.org"), "password": PW }))
        .send()
        .await
        .unwrap()
}

async fn registration_follows_the_mode(b: Backend) {
    let Some(closed) = TestServer::start(b).await else {
        return;
    };
    let res = register(&closed, "frank").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "registration_closed");
    drop(closed);

    let Some(open) = TestServer::start_with(b, &[("registration", "open")]).await else {
        return;
    };
    let res = register(&open, "Frank").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["username"], "frank");
    assert_eq!(body["status"], "active");
    assert_eq!(post_token(&open, "frank", PW).await.status(), StatusCode::OK);
    drop(open);

    let Some(approval) = TestServer::start_with(b, &[("registration", "approval")]).await else {
        return;
    };
    let res = register(&approval, "grace").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "pending");
    let res = post_token(&approval, "grace", PW).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "account_pending");
    approval
        .state
        .db()
        .run(|c| agora::accounts::rules::activate(c, "grace"))
        .await
        .unwrap();
    assert_eq!(post_token(&approval, "grace", PW).await.status(), StatusCode::OK);
}

async fn names_are_unique_in_any_case_and_reserved_names_are_refused(b: Backend) {
    let Some(srv) = TestServer::start_with(b, &[("registration", "open")]).await else {
        return;
    };
    assert_eq!(register(&srv, "heidi").await.status(), StatusCode::CREATED);
    let dup = register(&srv, "HEIDI").await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    let err: Value = dup.json().await.unwrap();
    assert_eq!(err["error"], "name_taken");
    assert_eq!(
        err["message"],
        "The name \"heidi\" is already taken; choose another one."
    );
    for reserved in ["admin", "Inbox", "actor", "blog", "system", "api"] {
        let res = register(&srv, reserved).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{reserved}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["field"], "username");
        assert!(err["message"].as_str().unwrap().contains("reserved"), "{err}");
    }
    let weak = client()
        .post(srv.at("/api/v1/accounts"))
        .json(&json!({ "username": "ivan_1", "email": "i@example.org", "password": "ivan_1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.json::<Value>().await.unwrap()["field"], "password");
    let same = client()
        .post(srv.at("/api/v1/accounts"))
        .json(&json!({ "username": "judy_judy_", "email": "j@example.org", "password": "Judy_Judy_" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "password equal to the name"
    );
}

async fn one_time_password_forces_a_change(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user_with("mallory", "one-time-pass-1", Role::Member, Status::Active, true)
        .await;
    let token = srv.token("mallory", "one-time-pass-1").await;
    let c = client();
    let me: Value = c
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["must_change_password"], true);
    let blocked = c
        .get(srv.at("/api/v1/me/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(blocked.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        blocked.json::<Value>().await.unwrap()["error"],
        "password_change_required"
    );

    let wrong = c
        .post(srv.at("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&json!({ "current_password": "nope nope nope", "new_password": "a brand new password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.json::<Value>().await.unwrap()["field"], "current_password");
    let ok = c
        .post(srv.at("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&json!({ "current_password": "one-time-pass-1", "new_password": "a brand new password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    // Replacing a one-time password revokes the tokens made with it.
    let old = c
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let token = srv.token("mallory", "a brand new password").await;
    assert_eq!(
        c.get(srv.at("/api/v1/me/tokens"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let same = c
        .post(srv.at("/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&json!({ "current_password": "a brand new password", "new_password": "a brand new password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the new password must differ"
    );
    assert_eq!(
        post_token(&srv, "mallory", "one-time-pass-1").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post_token(&srv, "mallory", "a brand new password").await.status(),
        StatusCode::OK
    );
}

async fn disabled_accounts_lose_access(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    srv.create_user("niaj", PW, Role::Member).await;
    let token = srv.token("niaj", PW).await;
    srv.state
        .db()
        .run(|c| agora::accounts::rules::disable(c, "niaj"))
        .await
        .unwrap();
    let res = client()
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = post_token(&srv, "niaj", PW).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "account_disabled");
    // The last admin cannot be disabled or demoted.
    let e = srv
        .state
        .db()
        .run(|c| agora::accounts::rules::disable(c, "root_admin"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last administrator"), "{e}");
    let e = srv
        .state
        .db()
        .run(|c| agora::accounts::rules::set_role(c, "root_admin", Role::Member))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("last administrator"), "{e}");
}

async fn web_login_logout_with_csrf(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("olivia", PW, Role::Member).await;
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = c
        .get(srv.at("/login"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    let csrf = crate::support::web::hidden(&html, "csrf");

    let forged = c
        .post(srv.at("/login"))
        .header("accept", "text/html")
        .form(&[("csrf", "forged"), ("username", "olivia"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("Das Formular ist abgelaufen"),
        "German by default"
    );

    let cross = c
        .post(srv.at("/login"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str()), ("username", "olivia"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN, "cross-site origin refused");

    let wrong = c
        .post(srv.at("/login"))
        .header("accept", "text/html")
        .header("accept-language", "en-GB,en;q=0.9")
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "olivia"),
            ("password", "wrong password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let html = wrong.text().await.unwrap();
    assert!(
        html.contains("aria-describedby=\"password-error\""),
        "error tied to the field"
    );
    assert!(html.contains("The user name or password is wrong."));

    let ok = c
        .post(srv.at("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "olivia"),
            ("password", PW),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let set_cookie = ok
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.starts_with("agora_session=") && set_cookie.contains("HttpOnly"));
    assert!(
        set_cookie.contains("SameSite=Lax") && !set_cookie.contains("Secure"),
        "{set_cookie}"
    );

    let home = c.get(srv.at("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Willkommen, olivia"), "{home}");
    let session_csrf = crate::support::web::hidden(&home, "csrf");
    assert_ne!(session_csrf, csrf, "logged-in forms carry the session's token");
    let me = c.get(srv.at("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the session works for the API too");

    let bad_logout = c
        .post(srv.at("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad_logout.status(),
        StatusCode::FORBIDDEN,
        "the anonymous token is not valid once logged in"
    );
    let logout = c
        .post(srv.at("/logout"))
        .form(&[("csrf", session_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.get(srv.at("/api/v1/me")).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn token_management_api(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("peggy", PW, Role::Staff).await;
    let token = srv.token("peggy", PW).await;
    let c = client();
    let created = c
        .post(srv.at("/api/v1/me/tokens"))
        .bearer_auth(&token)
        .json(&json!({ "name": "laptop" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let second = created["token"].as_str().unwrap().to_owned();
    let list: Value = c
        .get(srv.at("/api/v1/me/tokens"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"laptop") && names.contains(&"api"), "{names:?}");
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("token_hash").is_none())
    );
    let id = created["id"].as_i64().unwrap();
    let del = c
        .delete(srv.at(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        c.get(srv.at("/api/v1/me"))
            .bearer_auth(&second)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let again = c
        .delete(srv.at(&format!("/api/v1/me/tokens/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let empty = c
        .post(srv.at("/api/v1/me/tokens"))
        .bearer_auth(&token)
        .json(&json!({ "name": "  " }))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

async fn parallel_guesses_cannot_overtake_the_limit(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("rita", PW, Role::Member).await;
    let attempts: Vec<_> = (0..20)
        .map(|i| {
            let url = srv.at("/api/v1/auth/token");
            tokio::spawn(async move {
                client()
                    .post(url)
                    .json(&json!({ "username": "rita", "password": format!("guess number {i}") }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut wrong = 0;
    for a in attempts {
        match a.await.unwrap() {
            StatusCode::UNAUTHORIZED => wrong += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(wrong, 5, "exactly five guesses were checked, the rest refused");
}

async fn hostile_login_input_is_refused_not_crashed(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    for name in [
        "a\u{0}b".to_owned(),
        "x".repeat(20_000),
        "\u{202e}admin".to_owned(),
    ] {
        let res = post_token(&srv, &name, "whatever password").await;
        assert_eq!(
            res.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            &name[..name.len().min(20)]
        );
    }
    let res = client()
        .post(srv.at("/api/v1/accounts"))
        .json(&json!({ "username": "ok_name", "email": "a\u{0}@example.org", "password": PW }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}
