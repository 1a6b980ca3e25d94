//! The web UI over HTTP (no browser): languages, the pages of the shell, admin and settings
//! flows through their forms. The browser tests (tests/browser) cover the same flows in Chromium.

use agora::accounts::model::Role;
use reqwest::StatusCode;

use crate::support::web::{browser, csrf_of, get_text, hidden, login};
use crate::support::{Backend, TestServer};

crate::backend_tests!(
    language_follows_setting_cookie_and_accept_language,
    every_shell_page_has_the_landmarks,
    anonymous_visitors_are_sent_to_login,
    admin_creates_user_who_must_change_password,
    admin_pages_are_for_admins_only,
    settings_profile_and_tokens_through_forms,
    instance_settings_change_pages,
    registration_pages_follow_the_mode,
    redirects_stay_on_this_site,
    forms_work_under_another_host_name,
    admin_search_matches_underscores_and_case,
);

const PW: &str = "correct horse battery";

async fn language_follows_setting_cookie_and_accept_language(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    let c = browser();
    let de = get_text(&c, &srv.at("/")).await;
    assert!(de.contains("<html lang=\"de\">") && de.contains("Zum Hauptinhalt springen"));
    let en = c
        .get(srv.at("/"))
        .header("accept-language", "en-US,en;q=0.8,de;q=0.5")
        .send()
        .await
        .unwrap();
    let en = en.text().await.unwrap();
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("Skip to main content"),
        "{en}"
    );

    // The footer switch stores the choice in a cookie for anonymous visitors.
    let csrf = hidden(&de, "csrf");
    let res = c
        .post(srv.at("/language"))
        .form(&[("csrf", csrf.as_str()), ("lang", "en"), ("back", "/about")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/about");
    let about = get_text(&c, &srv.at("/about")).await;
    assert!(
        about.contains("<html lang=\"en\">") && about.contains("About Agora"),
        "{about}"
    );

    // A logged-in user's own setting wins over cookie and header.
    srv.create_user("lena", PW, Role::Member).await;
    login(&srv, &c, "lena", PW).await;
    let csrf = csrf_of(&c, &srv.at("/settings")).await;
    let res = c
        .post(srv.at("/settings/profile"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("display_name", "Lena L."),
            ("language", "de"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = c
        .get(srv.at("/settings"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<html lang=\"de\">") && page.contains("Einstellungen"),
        "{page}"
    );
    // Error pages (rendered without the session) follow the account's language via its cookie.
    let missing = c
        .get(srv.at("/nope"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let missing = missing.text().await.unwrap();
    assert!(missing.contains("Seite nicht gefunden"), "{missing}");
    let bad = c
        .post(srv.at("/language"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("lang", "fr"),
            ("back", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

async fn every_shell_page_has_the_landmarks(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    let c = browser();
    let mut pages = vec!["/", "/login", "/about", "/register"];
    for path in &pages {
        check_landmarks(path, &get_text(&c, &srv.at(path)).await);
    }
    login(&srv, &c, "root_admin", PW).await;
    pages = vec![
        "/",
        "/settings",
        "/settings/password",
        "/admin",
        "/admin/users/new",
        "/admin/settings",
        "/about",
    ];
    for path in &pages {
        let res = c.get(srv.at(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        check_landmarks(path, &res.text().await.unwrap());
    }
}

fn check_landmarks(path: &str, html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
    assert!(html.contains("<html lang=\""), "{path}: lang");
    assert_eq!(html.matches("<h1").count(), 1, "{path}: one h1");
    for landmark in [
        "<header",
        "<nav",
        "<main id=\"main\"",
        "<footer",
        "href=\"#main\"",
    ] {
        assert!(html.contains(landmark), "{path}: {landmark}");
    }
    assert!(!html.contains("style=\""), "{path}: no inline styles (CSP)");
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=\"/static/agora.js\" defer></script>")
            .count(),
        "{path}: no inline script (CSP), only our own file"
    );
    assert!(
        !html.contains("http://")
            || html.matches("http://").count() == html.matches("http://www.w3.org/2000/svg").count(),
        "{path}: no other origins"
    );
    assert!(html.contains("/static/vendor/kern/kern.min.css"), "{path}: KERN");
}

async fn anonymous_visitors_are_sent_to_login(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("mia", PW, Role::Member).await;
    let c = browser();
    let res = c.get(srv.at("/settings?x=1")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login?next=%2Fsettings%3Fx%3D1");
    let csrf = csrf_of(&c, &srv.at("/login?next=%2Fsettings")).await;
    let res = c
        .post(srv.at("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "mia"),
            ("password", PW),
            ("next", "/settings"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/settings");
}

async fn admin_creates_user_who_must_change_password(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    let admin = browser();
    login(&srv, &admin, "root_admin", PW).await;
    let csrf = csrf_of(&admin, &srv.at("/admin/users/new")).await;
    let bad = admin
        .post(srv.at("/admin/users/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "x"),
            ("email", "nope"),
            ("role", "member"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = bad.text().await.unwrap();
    assert!(
        html.contains("aria-describedby=\"username-hint username-error\""),
        "{html}"
    );
    assert!(
        html.contains("id=\"email-error\""),
        "every bad field is reported at once"
    );
    let res = admin
        .post(srv.at("/admin/users/new"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "Nora"),
            ("display_name", "Nora N."),
            ("email", "nora@example.org"),
            ("role", "staff"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    let otp = html
        .split("id=\"one-time-password\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(otp.len(), 16);
    let list = get_text(&admin, &srv.at("/admin?q=nora")).await;
    assert!(list.contains("@nora") && list.contains("nora@example.org"));
    assert!(!list.contains("@root_admin"), "the search filters");

    let nora = browser();
    let res = login(&srv, &nora, "nora", &otp).await;
    assert_eq!(res.headers()["location"], "/settings/password");
    // Every page leads to the password form until it is changed.
    let res = nora.get(srv.at("/")).send().await.unwrap();
    assert_eq!(res.headers()["location"], "/settings/password");
    let page = get_text(&nora, &srv.at("/settings/password")).await;
    assert!(page.contains("Einmalpasswort"));
    let res = nora
        .post(srv.at("/settings/password"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("current_password", otp.as_str()),
            ("new_password", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("aria-describedby=\"new_password-hint new_password-error\"")
    );
    let res = nora
        .post(srv.at("/settings/password"))
        .form(&[
            ("csrf", hidden(&page, "csrf").as_str()),
            ("current_password", otp.as_str()),
            ("new_password", "nora's own password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        nora.get(srv.at("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

async fn admin_pages_are_for_admins_only(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    srv.create_user("otto", PW, Role::Staff).await;
    let c = browser();
    login(&srv, &c, "otto", PW).await;
    let res = c.get(srv.at("/admin")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("Zugriff verweigert"));
    let home = get_text(&c, &srv.at("/")).await;
    assert!(
        !home.contains("href=\"/admin\""),
        "no link to what one may not use"
    );

    let admin = browser();
    login(&srv, &admin, "root_admin", PW).await;
    let csrf = csrf_of(&admin, &srv.at("/admin")).await;
    let res = admin
        .post(srv.at("/admin/users/otto/role"))
        .form(&[("csrf", csrf.as_str()), ("role", "admin")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.get(srv.at("/admin")).send().await.unwrap().status(),
        StatusCode::OK,
        "otto is admin now"
    );
    let res = admin
        .post(srv.at("/admin/users/otto/disable"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        c.get(srv.at("/settings")).send().await.unwrap().status(),
        StatusCode::SEE_OTHER,
        "otto is logged out"
    );
    let list = get_text(&admin, &srv.at("/admin")).await;
    assert!(list.contains("Gesperrt"));
    let res = admin
        .post(srv.at("/admin/users/otto/approve"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // The last admin cannot demote themself (otto is admin too, so disable otto first).
    admin
        .post(srv.at("/admin/users/otto/role"))
        .form(&[("csrf", csrf.as_str()), ("role", "member")])
        .send()
        .await
        .unwrap();
    let res = admin
        .post(srv.at("/admin/users/root_admin/role"))
        .form(&[("csrf", csrf.as_str()), ("role", "member")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/admin?error=last_admin");
    // Forms without the token are refused.
    let res = admin
        .post(srv.at("/admin/users/otto/disable"))
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

async fn settings_profile_and_tokens_through_forms(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("paul", PW, Role::Member).await;
    let c = browser();
    login(&srv, &c, "paul", PW).await;
    let csrf = csrf_of(&c, &srv.at("/settings")).await;
    let res = c
        .post(srv.at("/settings/profile"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("display_name", &"x".repeat(101)),
            ("language", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("id=\"display_name-error\""));
    let res = c
        .post(srv.at("/settings/tokens"))
        .form(&[("csrf", csrf.as_str()), ("name", "reporting")])
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    let token = html
        .split("id=\"new-token\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert!(token.starts_with("agora_"));
    let me = reqwest::Client::new()
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let again = get_text(&c, &srv.at("/settings")).await;
    assert!(
        again.contains("reporting") && !again.contains(&token),
        "shown once only"
    );
    let action = again
        .split("action=\"/settings/tokens/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let res = c
        .post(srv.at(&format!("/settings/tokens/{action}")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let me = reqwest::Client::new()
        .get(srv.at("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
}

async fn instance_settings_change_pages(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    let c = browser();
    login(&srv, &c, "root_admin", PW).await;
    assert_eq!(
        c.get(srv.at("/imprint")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let csrf = csrf_of(&c, &srv.at("/admin/settings")).await;
    let bad = c
        .post(srv.at("/admin/settings"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Stadt"),
            ("registration", "open"),
            ("accent_color", "#ffee00"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("id=\"accent_color-error\""));
    let res = c
        .post(srv.at("/admin/settings"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Stadt Beispielhausen"),
            ("description", "Digitale Projekte der Stadt"),
            (
                "imprint",
                "Stadt Beispielhausen\nRathausplatz 1\n\nVertreten durch die Bürgermeisterin.",
            ),
            ("privacy", ""),
            ("registration", "approval"),
            ("accent_color", "#8A1538"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let home = get_text(&c, &srv.at("/")).await;
    assert!(
        home.contains("Stadt Beispielhausen")
            && home.contains("href=\"/imprint\"")
            && !home.contains("href=\"/privacy\"")
    );
    assert!(
        home.contains("href=\"/theme.css\"") && !home.contains("kern-kopfzeile\""),
        "official bar unticked"
    );
    let css = get_text(&c, &srv.at("/theme.css")).await;
    assert!(css.contains("--kern-color-action-default: #8a1538"), "{css}");
    let imprint = get_text(&c, &srv.at("/imprint")).await;
    assert!(imprint.contains("Rathausplatz 1") && imprint.contains(">Impressum</h1>"));
    let register = get_text(&browser(), &srv.at("/register")).await;
    assert!(
        register.contains("name=\"username\""),
        "approval mode shows the form"
    );
}

async fn registration_pages_follow_the_mode(b: Backend) {
    let Some(closed) = TestServer::start(b).await else {
        return;
    };
    let html = get_text(&browser(), &closed.at("/register")).await;
    assert!(html.contains("Die Registrierung ist geschlossen") && !html.contains("name=\"password\""));
    drop(closed);

    let Some(srv) = TestServer::start_with(b, &[("registration", "approval")]).await else {
        return;
    };
    let c = browser();
    let csrf = csrf_of(&c, &srv.at("/register")).await;
    let form = |name: &str, pw: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("username".to_owned(), name.to_owned()),
            ("email".to_owned(), format!("{name}@example.org")),
            ("password".to_owned(), pw.to_owned()),
            ("display_name".to_owned(), String::new()),
        ]
    };
    let res = c
        .post(srv.at("/register"))
        .form(&form("admin", PW))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("reserviert"));
    let res = c
        .post(srv.at("/register"))
        .form(&form("quinn", PW))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("Ihr Konto wurde angelegt"));
    srv.create_user("root_admin", PW, Role::Admin).await;
    let admin = browser();
    login(&srv, &admin, "root_admin", PW).await;
    let list = get_text(&admin, &srv.at("/admin")).await;
    assert!(list.contains("Warten auf Freigabe") && list.contains("@quinn"));
    let res = admin
        .post(srv.at("/admin/users/quinn/approve"))
        .form(&[("csrf", hidden(&list, "csrf").as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = login(&srv, &browser(), "quinn", PW).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);

    let Some(open) = TestServer::start_with(b, &[("registration", "open")]).await else {
        return;
    };
    let c = browser();
    let csrf = csrf_of(&c, &open.at("/register")).await;
    let res = c
        .post(open.at("/register"))
        .header("accept-language", "en")
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "rosa"),
            ("email", "rosa@example.org"),
            ("password", PW),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "open registration logs in directly"
    );
    let home = get_text(&c, &open.at("/")).await;
    assert!(
        home.contains("Welcome, rosa"),
        "and keeps the visitor's language: {home}"
    );
}

async fn redirects_stay_on_this_site(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("sam", PW, Role::Member).await;
    let mut c = browser();
    for next in [
        "/\t/evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/\n",
        "https://evil.example",
    ] {
        // A fresh browser each time: once logged in, forms carry the session's token.
        c = browser();
        let csrf = csrf_of(&c, &srv.at("/login")).await;
        let res = c
            .post(srv.at("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("username", "sam"),
                ("password", PW),
                ("next", next),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], "/", "{next:?}");
    }
    let res = c
        .get(srv.at("/login?next=/%09/evil.example/"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/");
}

async fn forms_work_under_another_host_name(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("tina", PW, Role::Member).await;
    let c = browser();
    let csrf = csrf_of(&c, &srv.at("/login")).await;
    // The server's public_url is http://127.0.0.1:PORT; a browser that used "localhost" sends
    // that as Host and Origin.
    let port = srv.url.rsplit(':').next().unwrap();
    let res = c
        .post(srv.at("/login"))
        .header("host", format!("localhost:{port}"))
        .header("origin", format!("http://localhost:{port}"))
        .form(&[("csrf", csrf.as_str()), ("username", "tina"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = c
        .post(srv.at("/login"))
        .header("origin", format!("http://localhost:{port}"))
        .form(&[("csrf", csrf.as_str()), ("username", "tina"), ("password", PW)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "Origin matching neither public_url nor Host"
    );
}

async fn admin_search_matches_underscores_and_case(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("root_admin", PW, Role::Admin).await;
    srv.create_user("anna_meier", PW, Role::Member).await;
    srv.create_user("annaxmeier", PW, Role::Member).await;
    let c = browser();
    login(&srv, &c, "root_admin", PW).await;
    let hit = get_text(&c, &srv.at("/admin?q=anna_meier")).await;
    assert!(
        hit.contains("@anna_meier") && !hit.contains("@annaxmeier"),
        "_ is literal"
    );
    let upper = get_text(&c, &srv.at("/admin?q=MEIER")).await;
    assert!(
        upper.contains("@anna_meier") && upper.contains("@annaxmeier"),
        "case-insensitive"
    );
    let res = c.get(srv.at("/admin?q=%00")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "a NUL in the search is harmless");
}
