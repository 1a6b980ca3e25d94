//! `/settings/followers`: who follows you from other servers, waiting follow requests (accept or
//! reject) and whether requests wait for your decision at all.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Urls, follows};
use crate::accounts::auth::Auth;
use crate::db::{self, write_tx};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/followers", get(followers_page))
        .route("/settings/followers/approval", post(approval_submit))
        .route("/settings/followers/{id}/{decision}", post(decision_submit))
}

#[derive(Template)]
#[template(path = "federation/templates/followers.html")]
struct FollowersTemplate {
    page: Page,
    manual: bool,
    requests: Vec<follows::Follower>,
    followers: Vec<String>,
    total: i64,
    notice: Option<&'static str>,
}

#[derive(Debug, Deserialize)]
struct Notice {
    done: Option<String>,
}

async fn followers_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Query(q): Query<Notice>,
) -> AppResult<Response> {
    let name = auth.user.username.clone();
    let (requests, followers, total) = state
        .db()
        .run(move |c| {
            Ok::<_, db::Error>((
                follows::pending(c, &name)?,
                follows::page(c, &name, 0, 200)?,
                follows::count(c, &name)?,
            ))
        })
        .await?;
    let notice = match q.done.as_deref() {
        Some("accepted") => Some("followers-accepted"),
        Some("rejected") => Some("followers-rejected"),
        Some("saved") => Some("settings-saved"),
        _ => None,
    };
    Ok(render(&FollowersTemplate {
        page,
        manual: auth.user.manually_approves_followers,
        requests,
        followers,
        total,
        notice,
    }))
}

#[derive(Debug, Deserialize)]
struct ApprovalForm {
    /// A checkbox: present when ticked.
    manual: Option<String>,
}

async fn approval_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    CsrfForm(form): CsrfForm<ApprovalForm>,
) -> AppResult<Response> {
    let urls = Urls::new(state.config());
    let user = auth.user.clone();
    let manual = form.manual.is_some();
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| follows::set_manual_approval(c, &urls, &user, manual)).map_err(db::Error::from)
        })
        .await?;
    state.wake_delivery();
    Ok(Redirect::to("/settings/followers?done=saved").into_response())
}

/// Accepts or rejects a request; shared by the page and the API.
pub(crate) async fn decide(state: &AppState, user: &str, id: i64, decision: &str) -> AppResult<()> {
    let accept = match decision {
        "accept" => true,
        "reject" => false,
        _ => return Err(AppError::not_found()),
    };
    let urls = Urls::new(state.config());
    let name = user.to_owned();
    let decided = state
        .db()
        .run(move |c| write_tx(c, |c| follows::decide(c, &urls, &name, id, accept)).map_err(db::Error::from))
        .await?;
    if decided.is_none() {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "no_such_request",
            "error-no-follow-request",
        ));
    }
    state.wake_delivery();
    Ok(())
}

async fn decision_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, decision)): Path<(i64, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    decide(&state, &auth.user.username, id, &decision).await?;
    let done = if decision == "accept" {
        "accepted"
    } else {
        "rejected"
    };
    Ok(Redirect::to(&format!("/settings/followers?done={done}")).into_response())
}
