//! JSON API for federation: following remote accounts.
//! `POST /api/v1/follows {"target": "name@host" | actor URL}`, `GET /api/v1/follows`,
//! `DELETE /api/v1/follows {"target": actor URL}`. Followers of the signed-in user:
//! `GET /api/v1/me/followers`, `PUT /api/v1/me/follower_approval {"manual": bool}`,
//! `POST /api/v1/me/follow_requests/{id}/accept|reject`.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::follows::{self, Following};
use super::{Urls, delivery, remote, webfinger};
use crate::accounts::auth::Auth;
use crate::db::{self, write_tx};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::extract::ApiJson;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/follows", post(follow).get(list).delete(unfollow))
        .route("/api/v1/me/followers", get(followers))
        .route("/api/v1/me/follower_approval", put(set_approval))
        .route("/api/v1/me/follow_requests/{id}/{decision}", post(decide_request))
}

#[derive(Debug, Deserialize)]
struct Target {
    target: String,
}

fn unreachable(target: &str, e: &dyn std::fmt::Display) -> AppError {
    tracing::info!(target, error = %e, "cannot resolve a remote account");
    AppError::with_args(
        StatusCode::UNPROCESSABLE_ENTITY,
        "remote_account_unreachable",
        "error-remote-account",
        vec![("target", target.to_owned())],
    )
}

/// The actor id of `target`: an http(s) URL as given, or `name@host` through WebFinger.
pub(crate) async fn actor_id(state: &AppState, target: &str) -> AppResult<Url> {
    let target = target.trim();
    if target.starts_with("http://") || target.starts_with("https://") {
        return Url::parse(target).map_err(|e| unreachable(target, &e));
    }
    webfinger::lookup(state.fetch(), state.config().federation.debug, target)
        .await
        .map_err(|e| unreachable(target, &e))
}

fn follow_activity(actor: &str, follow_id: &str, target: &str) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": follow_id,
        "type": "Follow",
        "actor": actor,
        "object": target,
    })
}

/// Who follows: a user or one of our groups, by local name, with its actor id.
#[derive(Debug, Clone)]
pub(crate) struct Follower {
    pub name: String,
    pub actor: String,
    /// Groups follow groups only (their partners' threads are mirrored), never people.
    pub groups_only: bool,
}

impl Follower {
    pub fn user(urls: &Urls, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            actor: urls.user(name),
            groups_only: false,
        }
    }

    pub fn group(urls: &Urls, slug: &str) -> Self {
        Self {
            name: slug.to_owned(),
            actor: urls.group(slug),
            groups_only: true,
        }
    }
}

/// Follows `target` (handle or actor URL) as `who`: resolves it, stores the follow and queues
/// the `Follow` in one transaction. Returns whether a new follow was made, and the follow.
/// Shared by the API, the remote-follow page and groups following partner groups.
pub(crate) async fn start_follow(
    state: &AppState,
    who: &Follower,
    target: &str,
) -> AppResult<(bool, Option<Following>)> {
    let urls = Urls::new(state.config());
    let id = actor_id(state, target).await?;
    if id.as_str().starts_with(&format!("{}/", urls.base())) {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "local_account",
            "error-follow-local",
        ));
    }
    let signer = super::inbox::instance_signer(state).await?;
    let actor = remote::resolve(state.db(), state.fetch(), Some(&signer), &id, false)
        .await
        .map_err(|e| unreachable(target, &e))?;
    if who.groups_only && actor.kind != "Group" {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_group",
            "error-follow-not-group",
        ));
    }
    let Some(inbox) = actor.delivery_inbox().map(str::to_owned) else {
        return Err(unreachable(target, &"the actor has no inbox"));
    };
    let name = who.name.clone();
    let target_id = actor.ap_id.clone();
    let follow_id = format!("{}/activities/follow/{:016x}", urls.base(), rand::random::<u64>());
    let activity = follow_activity(&who.actor, &follow_id, &target_id);
    let (created, row) = state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<(bool, Option<Following>), db::Error> {
                if let Some(existing) = follows::outgoing::find(c, &name, &target_id)? {
                    return Ok((false, Some(existing)));
                }
                follows::outgoing::insert(c, &name, &target_id, &inbox, &follow_id)?;
                delivery::send(c, &name, &activity, [&inbox])?;
                Ok((true, follows::outgoing::find(c, &name, &target_id)?))
            })
        })
        .await?;
    if created {
        state.wake_delivery();
    }
    Ok((created, row))
}

async fn follow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    ApiJson(req): ApiJson<Target>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let who = Follower::user(&Urls::new(state.config()), &auth.user.username);
    let (created, row) = start_follow(&state, &who, &req.target).await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!(row))))
}

async fn list(State(state): State<AppState>, Auth(auth): Auth) -> AppResult<axum::Json<Vec<Following>>> {
    let name = auth.user.username.clone();
    Ok(axum::Json(
        state
            .db()
            .run(move |c| follows::outgoing::list(c, &name).map_err(db::Error::from))
            .await?,
    ))
}

async fn unfollow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    ApiJson(req): ApiJson<Target>,
) -> AppResult<StatusCode> {
    let who = Follower::user(&Urls::new(state.config()), &auth.user.username);
    stop_follow(&state, &who, &req.target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops `who` following `target` (handle or actor URL): forgets the follow and queues the
/// `Undo{Follow}` in one transaction; 404 when there was no follow.
pub(crate) async fn stop_follow(state: &AppState, who: &Follower, target: &str) -> AppResult<()> {
    let urls = Urls::new(state.config());
    let id = actor_id(state, target).await?;
    let target = id.to_string();
    let who = who.clone();
    let removed = state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<bool, db::Error> {
                let Some(row) = follows::outgoing::find(c, &who.name, &target)? else {
                    return Ok(false);
                };
                let undo = json!({
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": format!("{}/activities/undo/{:016x}", urls.base(), rand::random::<u64>()),
                    "type": "Undo",
                    "actor": who.actor,
                    "object": follow_activity(&who.actor, &row.follow_id, &target),
                });
                follows::outgoing::remove(c, &who.name, &target)?;
                delivery::send(c, &who.name, &undo, [&row.target_inbox])?;
                Ok(true)
            })
        })
        .await?;
    if !removed {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "not_following",
            "error-not-following",
        ));
    }
    state.wake_delivery();
    Ok(())
}

/// Followers and waiting follow requests (`state`: `accepted` or `pending`), newest first.
async fn followers(State(state): State<AppState>, Auth(auth): Auth) -> AppResult<axum::Json<Value>> {
    let name = auth.user.username.clone();
    let (requests, accepted) = state
        .db()
        .run(move |c| Ok::<_, db::Error>((follows::pending(c, &name)?, follows::page(c, &name, 0, 1000)?)))
        .await?;
    Ok(axum::Json(json!({
        "manually_approves_followers": auth.user.manually_approves_followers,
        "requests": requests,
        "followers": accepted,
    })))
}

#[derive(Debug, Deserialize)]
struct Approval {
    manual: bool,
}

async fn set_approval(
    State(state): State<AppState>,
    Auth(auth): Auth,
    ApiJson(req): ApiJson<Approval>,
) -> AppResult<axum::Json<Value>> {
    let urls = Urls::new(state.config());
    let user = auth.user.clone();
    let accepted = state
        .db()
        .run(move |c| {
            write_tx(c, |c| follows::set_manual_approval(c, &urls, &user, req.manual))
                .map_err(db::Error::from)
        })
        .await?;
    state.wake_delivery();
    Ok(axum::Json(json!({
        "manually_approves_followers": req.manual,
        "accepted_requests": accepted,
    })))
}

async fn decide_request(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, decision)): Path<(i64, String)>,
) -> AppResult<StatusCode> {
    super::pages::decide(&state, &auth.user.username, id, &decision).await?;
    Ok(StatusCode::NO_CONTENT)
}
