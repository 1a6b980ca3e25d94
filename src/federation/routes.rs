//! HTTP endpoints of the federation feature: WebFinger, host-meta, NodeInfo, actor documents.

use askama::Template;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;

use super::webfinger::{self, Resource};
use super::{INSTANCE_OWNER, Urls, actors, keys, negotiate, nodeinfo};
use crate::accounts::model::{Status, User};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/webfinger", get(webfinger))
        .route("/.well-known/host-meta", get(host_meta))
        .route("/.well-known/nodeinfo", get(nodeinfo_links))
        .route("/nodeinfo/{version}", get(nodeinfo_document))
        .route("/inbox", axum::routing::post(super::inbox::shared_inbox))
        .route("/actor", get(instance_actor))
        .route("/actor/outbox", get(instance_outbox))
        .route("/u/{name}", get(user_actor))
        .route("/u/{name}/{collection}", get(user_collection))
}

#[derive(Debug, Deserialize)]
struct WebfingerQuery {
    #[serde(default)]
    resource: String,
}

fn jrd_response(jrd: &webfinger::Webfinger) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/jrd+json"),
            ),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*")),
        ],
        Json(jrd),
    )
        .into_response()
}

/// An active local user by name (pending and disabled accounts are not discoverable).
async fn active_user(state: &AppState, name: String) -> AppResult<Option<User>> {
    let user = state
        .db()
        .run(move |c| User::by_username(c, &name).map_err(crate::db::Error::from))
        .await?;
    Ok(user.filter(|u| u.status() == Status::Active))
}

async fn webfinger(State(state): State<AppState>, Query(q): Query<WebfingerQuery>) -> AppResult<Response> {
    let urls = Urls::new(state.config());
    let host = state.config().host();
    if q.resource.trim().is_empty() {
        return Err(AppError::bad_request(
            "missing_resource",
            "error-webfinger-resource",
        ));
    }
    let parse = |s: String| url::Url::parse(&s).map_err(|e| AppError::internal(&e));
    match webfinger::parse_resource(&q.resource, &host, &urls) {
        Some(Resource::Instance) => Ok(jrd_response(&webfinger::jrd(
            format!("acct:{host}@{host}"),
            &parse(urls.instance_actor())?,
            &parse(format!("{}/about", urls.base()))?,
            &urls,
        ))),
        Some(Resource::Name(name)) => {
            if let Some(user) = active_user(&state, name.clone()).await? {
                let id = parse(urls.user(&user.username))?;
                return Ok(jrd_response(&webfinger::jrd(
                    format!("acct:{}@{host}", user.username),
                    &id,
                    &id,
                    &urls,
                )));
            }
            // Groups share the name space; internal groups are not discoverable.
            let group = state
                .db()
                .run(move |c| crate::groups::Group::by_slug(c, &name).map_err(crate::db::Error::from))
                .await?
                .filter(crate::groups::Group::federates)
                .ok_or_else(AppError::not_found)?;
            let id = parse(urls.group(&group.slug))?;
            Ok(jrd_response(&webfinger::jrd(
                format!("acct:{}@{host}", group.slug),
                &id,
                &id,
                &urls,
            )))
        }
        None => Err(AppError::not_found()),
    }
}

async fn host_meta(State(state): State<AppState>) -> Response {
    let xml = webfinger::host_meta_xml(&Urls::new(state.config()));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xrd+xml; charset=utf-8"),
        )],
        xml,
    )
        .into_response()
}

async fn nodeinfo_links(State(state): State<AppState>) -> Json<serde_json::Value> {
    let base = state.config().base_url();
    Json(serde_json::json!({
        "links": [
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": format!("{base}/nodeinfo/2.0") },
            { "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1", "href": format!("{base}/nodeinfo/2.1") },
        ]
    }))
}

async fn nodeinfo_document(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> AppResult<Response> {
    let version = version.trim_end_matches(".json").to_owned();
    if version != "2.0" && version != "2.1" {
        return Err(AppError::not_found());
    }
    let usage = state
        .db()
        .run(|c| nodeinfo::usage(c, crate::db::now()).map_err(crate::db::Error::from))
        .await?;
    let settings = state.instance().await;
    let content_type =
        format!("application/json; profile=\"http://nodeinfo.diaspora.software/ns/schema/{version}#\"");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type).unwrap_or(HeaderValue::from_static("application/json")),
        )],
        Json(nodeinfo::document(&version, usage, &settings)),
    )
        .into_response())
}

pub(crate) fn activity_json(value: serde_json::Value) -> Response {
    (negotiate::activity_json_headers(), Json(value)).into_response()
}

async fn instance_actor(State(state): State<AppState>, headers: HeaderMap) -> AppResult<Response> {
    if !negotiate::wants_activity_json(&headers) {
        return Ok(Redirect::to("/about").into_response());
    }
    let key = state.db().run(|c| keys::ensure(c, INSTANCE_OWNER)).await?;
    let settings = state.instance().await;
    let urls = Urls::new(state.config());
    Ok(activity_json(actors::application(
        &settings,
        &state.config().host(),
        &key.public_key_pem,
        &key.created_at,
        &urls,
    )))
}

async fn instance_outbox(State(state): State<AppState>) -> Response {
    activity_json(actors::empty_collection(format!(
        "{}/outbox",
        Urls::new(state.config()).instance_actor()
    )))
}

#[derive(Template)]
#[template(path = "federation/templates/profile.html")]
struct ProfileTemplate {
    page: Page,
    display_name: String,
    handle: String,
    created_at: chrono::NaiveDateTime,
    /// The actor URL, for the "follow from your server" box.
    target: String,
    form: crate::web::form::FormState,
    avatar: Option<String>,
}

/// `/u/{name}`: the `Person` for ActivityPub clients, the profile page for browsers.
async fn user_actor(
    State(state): State<AppState>,
    headers: HeaderMap,
    page: Page,
    Path(name): Path<String>,
) -> AppResult<Response> {
    let Some(user) = active_user(&state, name).await? else {
        return Err(AppError::not_found());
    };
    let mut response = if negotiate::wants_activity_json(&headers) {
        let owner = user.username.clone();
        let (key, images) = state
            .db()
            .run(move |c| -> Result<_, crate::federation::Error> {
                let images = crate::media::model::images_of(c, &owner).map_err(crate::db::Error::from)?;
                Ok((keys::ensure(c, &owner)?, images))
            })
            .await?;
        activity_json(actors::person(
            &user,
            &key.public_key_pem,
            &Urls::new(state.config()),
            images.avatar.as_ref(),
        ))
    } else {
        let handle = format!("@{}@{}", user.username, state.config().host());
        let owner = user.username.clone();
        let avatar = state
            .db()
            .run(move |c| crate::media::model::images_of(c, &owner).map_err(crate::db::Error::from))
            .await?
            .avatar
            .map(|m| m.path);
        render(&ProfileTemplate {
            page,
            avatar,
            display_name: user.display_name,
            handle,
            created_at: user.created_at,
            target: Urls::new(state.config()).user(&user.username),
            form: crate::web::form::FormState::new(),
        })
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<String>,
}

async fn user_collection(
    State(state): State<AppState>,
    Path((name, collection)): Path<(String, String)>,
    Query(query): Query<PageQuery>,
) -> AppResult<Response> {
    if !matches!(collection.as_str(), "outbox" | "followers" | "following") {
        return Err(AppError::not_found());
    }
    let Some(user) = active_user(&state, name).await? else {
        return Err(AppError::not_found());
    };
    let id = format!("{}/{collection}", Urls::new(state.config()).user(&user.username));
    if collection == "outbox" {
        return Ok((StatusCode::OK, activity_json(actors::empty_collection(id))).into_response());
    }
    // Anything but a page number from 1 to a sane bound is the collection itself.
    let page = query
        .page
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=100_000).contains(p));
    let name = user.username.clone();
    let (total, items) = state
        .db()
        .run(move |c| -> Result<(i64, Vec<String>), crate::db::Error> {
            let offset = (page.unwrap_or(1) - 1) * actors::PAGE_SIZE;
            if collection == "followers" {
                let total = super::follows::count(c, &name)?;
                let items = match page {
                    Some(_) => super::follows::page(c, &name, offset, actors::PAGE_SIZE)?,
                    None => Vec::new(),
                };
                Ok((total, items))
            } else {
                let total = super::follows::outgoing::count_accepted(c, &name)?;
                let items = match page {
                    Some(_) => super::follows::outgoing::page_accepted(c, &name, offset, actors::PAGE_SIZE)?,
                    None => Vec::new(),
                };
                Ok((total, items))
            }
        })
        .await?;
    Ok((
        StatusCode::OK,
        activity_json(actors::paged_collection(&id, total, page, items)),
    )
        .into_response())
}
