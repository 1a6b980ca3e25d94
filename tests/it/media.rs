//! Avatars and banners: upload through pages and API, checked by content, re-encoded without
//! metadata, served by hash, shown in pages and actor documents, hidden with internal groups.

use agora::accounts::model::Role;
use image::{DynamicImage, Rgb, RgbImage, Rgba, RgbaImage};
use reqwest::{Method as M, StatusCode};
use serde_json::{Value, json};

use crate::support::web::{browser, csrf_of, get_text, login, multipart};
use crate::support::{Backend, TestServer, ap_get, api};

crate::backend_tests!(group_images_through_the_api, images_through_the_pages);

const PW: &str = "correct horse battery";

fn png(img: DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))
        .unwrap();
    out
}

/// A camera-style JPEG: an EXIF segment with a tell-tale string right after the start marker.
fn jpeg_with_exif(w: u32, h: u32) -> Vec<u8> {
    let mut plain = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(w, h, Rgb([200, 120, 40])))
        .write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 90))
        .unwrap();
    let mut app1 = b"Exif\0\0II\x2a\0\x08\0\0\0\0\0\0\0\0\0".to_vec();
    app1.extend_from_slice(b"GPS 53.55N 9.99E owner=Jane Doe");
    let len = u16::try_from(app1.len() + 2).unwrap().to_be_bytes();
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1, len[0], len[1]];
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn put_image(
    c: &reqwest::Client,
    url: String,
    token: &str,
    bytes: Vec<u8>,
    ct: &str,
) -> (StatusCode, Value) {
    let res = c
        .put(url)
        .bearer_auth(token)
        .header("content-type", ct)
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn fetch(c: &reqwest::Client, url: &str) -> (StatusCode, String, String, Vec<u8>) {
    let res = c.get(url).send().await.unwrap();
    let status = res.status();
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (ct, cache) = (header("content-type"), header("cache-control"));
    (status, ct, cache, res.bytes().await.unwrap().to_vec())
}

async fn group_images_through_the_api(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("bert", PW, Role::Member).await;
    srv.create_user("otto", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let bert = srv.token("bert", PW).await;
    let c = reqwest::Client::new();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "klima", "title": "Klima"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);

    // A photo with location data: stored re-encoded, cropped square, without the metadata.
    let photo = jpeg_with_exif(1200, 800);
    assert!(contains(&photo, b"owner=Jane Doe"));
    let (status, g) = put_image(
        &c,
        srv.at("/api/v1/groups/klima/images/avatar"),
        &admin,
        photo,
        "image/jpeg",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let avatar_url = g["avatar_url"].as_str().unwrap().to_owned();
    assert!(
        avatar_url.starts_with(&srv.at("/media/")) && avatar_url.ends_with(".jpg"),
        "{avatar_url}"
    );
    let (status, ct, cache, bytes) = fetch(&c, &avatar_url).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/jpeg"));
    assert!(cache.contains("public") && cache.contains("immutable"), "{cache}");
    assert!(
        !contains(&bytes, b"Exif") && !contains(&bytes, b"Jane Doe"),
        "metadata is gone"
    );
    let stored = image::load_from_memory(&bytes).unwrap();
    assert_eq!((stored.width(), stored.height()), (400, 400));

    // A transparent banner stays PNG at 3:1.
    let banner = RgbaImage::from_fn(1800, 900, |x, _| {
        Rgba([0, 90, 160, if x % 2 == 0 { 255 } else { 128 }])
    });
    let (status, g) = put_image(
        &c,
        srv.at("/api/v1/groups/klima/images/banner"),
        &admin,
        png(DynamicImage::ImageRgba8(banner)),
        "image/png",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let banner_url = g["banner_url"].as_str().unwrap().to_owned();
    let (_, ct, _, bytes) = fetch(&c, &banner_url).await;
    assert_eq!(ct, "image/png");
    let stored = image::load_from_memory(&bytes).unwrap();
    assert_eq!((stored.width(), stored.height()), (1500, 500));

    // The Group actor shows both; the page too.
    let actor = ap_get(srv.at("/g/klima")).await;
    assert_eq!(actor["icon"]["url"], avatar_url.as_str());
    assert_eq!(actor["icon"]["mediaType"], "image/jpeg");
    assert_eq!(actor["image"]["url"], banner_url.as_str());
    let page = get_text(&browser(), &srv.at("/g/klima")).await;
    let path = avatar_url.trim_start_matches(&srv.url);
    assert!(
        page.contains(&format!("src=\"{path}\"")),
        "the page shows the avatar"
    );

    // Refusals, each with a sentence; the current image stays.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    for (bytes, ct, want, code) in [
        (
            svg,
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
        ),
        (
            b"just text, named .png".to_vec(),
            "image/png",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_image",
        ),
        (
            b"\x89PNG\r\n\x1a\n broken".to_vec(),
            "image/png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "corrupt_image",
        ),
        (
            Vec::new(),
            "image/png",
            StatusCode::UNPROCESSABLE_ENTITY,
            "image_missing",
        ),
        (
            vec![0u8; 8 * 1024 * 1024 + 1],
            "image/png",
            StatusCode::PAYLOAD_TOO_LARGE,
            "image_too_large",
        ),
    ] {
        let (status, err) = put_image(
            &c,
            srv.at("/api/v1/groups/klima/images/avatar"),
            &admin,
            bytes,
            ct,
        )
        .await;
        assert_eq!(status, want, "{err}");
        assert_eq!(err["error"], code, "{err}");
        assert!(err["message"].as_str().unwrap().ends_with('.'), "{err}");
    }
    let (_, g) = api(&c, M::GET, srv.at("/api/v1/groups/klima"), &admin, None).await;
    assert_eq!(g["avatar_url"], avatar_url.as_str());
    // Only who may edit the group may change its images.
    let (status, _) = put_image(
        &c,
        srv.at("/api/v1/groups/klima/images/avatar"),
        &bert,
        png(DynamicImage::ImageRgb8(RgbImage::new(10, 10))),
        "image/png",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api(
        &c,
        M::PUT,
        srv.at("/api/v1/groups/klima/images/icon"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Removing: the image is gone from the store too.
    let (status, g) = api(
        &c,
        M::DELETE,
        srv.at("/api/v1/groups/klima/images/avatar"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(g["avatar_url"].is_null());
    assert_eq!(fetch(&c, &avatar_url).await.0, StatusCode::NOT_FOUND);
    assert!(
        ap_get(srv.at("/g/klima")).await["icon"]["url"]
            .as_str()
            .unwrap()
            .ends_with("/static/avatar.png")
    );
    // Unknown and malformed names are 404.
    for bad in [
        "/media/abc.jpg",
        "/media/../etc/passwd",
        &format!("{}.jpg", banner_url.trim_end_matches(".png")),
    ] {
        let url = if bad.starts_with("http") {
            bad.to_owned()
        } else {
            srv.at(bad)
        };
        assert_eq!(fetch(&c, &url).await.0, StatusCode::NOT_FOUND, "{url}");
    }

    // An internal group's image is shown to its members only.
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "vertraege", "title": "Verträge", "visibility": "internal"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups/vertraege/members"),
        &admin,
        Some(json!({"username": "bert", "role": "contract_management"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let secret = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
        64,
        64,
        Rgb([1, 2, 250]),
    )));
    let (status, g) = put_image(
        &c,
        srv.at("/api/v1/groups/vertraege/images/avatar"),
        &admin,
        secret,
        "image/png",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let secret_url = g["avatar_url"].as_str().unwrap().to_owned();
    assert_eq!(fetch(&c, &secret_url).await.0, StatusCode::NOT_FOUND, "anonymous");
    let otto = browser();
    login(&srv, &otto, "otto", PW).await;
    assert_eq!(
        otto.get(&secret_url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND,
        "outsider"
    );
    let member = browser();
    login(&srv, &member, "bert", PW).await;
    let res = member.get(&secret_url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "member");
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .starts_with("private")
    );

    // A user's avatar: profile page and Person icon.
    let small = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
        120,
        90,
        Rgb([30, 160, 30]),
    )));
    let (status, me) = put_image(&c, srv.at("/api/v1/me/avatar"), &bert, small, "image/png").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let url = me["avatar_url"].as_str().unwrap().to_owned();
    let (_, _, _, bytes) = fetch(&c, &url).await;
    let stored = image::load_from_memory(&bytes).unwrap();
    assert_eq!(
        (stored.width(), stored.height()),
        (90, 90),
        "small images are cropped, not enlarged"
    );
    assert_eq!(ap_get(srv.at("/u/bert")).await["icon"]["url"], url.as_str());
    assert!(
        get_text(&browser(), &srv.at("/u/bert"))
            .await
            .contains(url.trim_start_matches(&srv.url))
    );
    srv.stop().await;
}

async fn images_through_the_pages(b: Backend) {
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    let admin = srv.token("admin_anna", PW).await;
    let c = reqwest::Client::new();
    let (status, _) = api(
        &c,
        M::POST,
        srv.at("/api/v1/groups"),
        &admin,
        Some(json!({"slug": "klima", "title": "Klima"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let web = browser();
    login(&srv, &web, "admin_anna", PW).await;
    let csrf = csrf_of(&web, &srv.at("/g/klima/settings")).await;
    let upload = |csrf: String, file: Vec<u8>, url: String| {
        let web = web.clone();
        async move {
            let (ct, body) = multipart(&[("csrf", None, csrf.as_bytes()), ("file", Some("logo.png"), &file)]);
            web.post(url)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let logo = png(DynamicImage::ImageRgb8(RgbImage::from_pixel(
        500,
        500,
        Rgb([250, 200, 0]),
    )));
    let res = upload(csrf.clone(), logo.clone(), srv.at("/g/klima/images/avatar")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/g/klima/settings?done=image");
    let settings = get_text(&web, &srv.at("/g/klima/settings?done=image")).await;
    assert!(settings.contains("image-upload__preview--avatar") && settings.contains("src=\"/media/"));
    assert!(
        settings.contains("Das Bild wurde gespeichert"),
        "a notice says it worked"
    );

    // A refused file: the settings page again, the sentence next to the file field.
    let res = upload(
        csrf.clone(),
        b"%PDF-1.7 not an image".to_vec(),
        srv.at("/g/klima/images/banner"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"banner-error\"") && html.contains("kein PNG-, JPEG-, GIF- oder WebP-Bild"),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"banner-hint banner-error\""));
    // Too large: the form again, with the sentence, not a bare error page.
    let res = upload(
        csrf.clone(),
        vec![7u8; 8 * 1024 * 1024 + 10],
        srv.at("/g/klima/images/banner"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"banner-error\"") && html.contains("größer als 8 MiB"),
        "{html}"
    );
    // Without the form's token nothing is stored.
    let res = upload("forged".into(), logo.clone(), srv.at("/g/klima/images/banner")).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let (_, g) = api(&c, M::GET, srv.at("/api/v1/groups/klima"), &admin, None).await;
    assert!(g["banner_url"].is_null());

    // Removing through the page.
    let res = web
        .post(srv.at("/g/klima/images/avatar/remove"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, g) = api(&c, M::GET, srv.at("/api/v1/groups/klima"), &admin, None).await;
    assert!(g["avatar_url"].is_null());

    // The user's own avatar from the settings page.
    let csrf = csrf_of(&web, &srv.at("/settings")).await;
    let res = upload(csrf.clone(), logo, srv.at("/settings/avatar")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        get_text(&web, &srv.at("/settings"))
            .await
            .contains("src=\"/media/")
    );
    let res = upload(csrf, Vec::new(), srv.at("/settings/avatar")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("id=\"avatar-error\""));
    srv.stop().await;
}
