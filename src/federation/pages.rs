//! Federation pages: `/settings/followers` (who follows you from other servers, waiting follow
//! requests, whether requests wait for your decision), `/authorize_interaction` (where other
//! servers send their users to follow someone from here: our WebFinger subscribe template) and
//! `/remote-follow` (a visitor gives their own fediverse address and is sent to their server).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{Urls, follows};
use crate::accounts::auth::{Auth, MaybeAuth};
use crate::db::{self, write_tx};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::form::FormState;
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/settings/followers", get(followers_page))
        .route("/settings/followers/approval", post(approval_submit))
        .route("/settings/followers/{id}/{decision}", post(decision_submit))
        .route(
            "/authorize_interaction",
            get(interaction_page).post(interaction_submit),
        )
        .route(
            "/remote-follow",
            get(remote_follow_page).post(remote_follow_submit),
        )
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

/// Accepts or rejects a request to follow the local actor `user` (a user or a group); shared by
/// the pages and the APIs, which check who may decide.
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

/// A remote actor as the interaction page shows it.
struct ActorView {
    name: String,
    handle: String,
    url: String,
}

#[derive(Template)]
#[template(path = "federation/templates/interaction.html")]
struct InteractionTemplate {
    page: Page,
    uri: String,
    actor: Option<ActorView>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InteractionQuery {
    #[serde(default)]
    uri: String,
}

/// Where another server sends its user to follow `uri` (a handle or an actor URL) from here.
async fn interaction_page(
    State(state): State<AppState>,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
    Query(q): Query<InteractionQuery>,
) -> AppResult<Response> {
    let uri: String = q.uri.trim().chars().take(2000).collect();
    let Some(auth) = auth else {
        let back = format!(
            "/authorize_interaction?uri={}",
            url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>()
        );
        let next: String = url::form_urlencoded::byte_serialize(back.as_bytes()).collect();
        return Ok(Redirect::to(&format!("/login?next={next}")).into_response());
    };
    let urls = Urls::new(state.config());
    let mut view = InteractionTemplate {
        page,
        uri: uri.clone(),
        actor: None,
        state: None,
        error: None,
    };
    let id = if uri.is_empty() {
        None
    } else {
        super::api::actor_id(&state, &uri).await.ok()
    };
    let Some(id) = id else {
        view.error = Some(view.page.t("error-interaction-uri"));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response());
    };
    // One of ours: nothing to follow remotely, show it.
    if id.as_str().starts_with(&format!("{}/", urls.base())) {
        return Ok(Redirect::to(id.as_str()).into_response());
    }
    let signer = super::inbox::instance_signer(&state).await?;
    match super::remote::resolve(state.db(), state.fetch(), Some(&signer), &id, false).await {
        Ok(actor) => {
            let name = auth.user.username.clone();
            let target = actor.ap_id.clone();
            view.state = state
                .db()
                .run(move |c| follows::outgoing::find(c, &name, &target).map_err(db::Error::from))
                .await?
                .map(|f| f.state);
            view.actor = Some(ActorView {
                name: actor
                    .name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .or_else(|| actor.preferred_username.clone())
                    .unwrap_or_else(|| actor.ap_id.clone()),
                handle: format!(
                    "@{}@{}",
                    actor.preferred_username.as_deref().unwrap_or("?"),
                    actor.domain
                ),
                url: actor.ap_id,
            });
            Ok(render(&view))
        }
        Err(e) => {
            tracing::info!(uri = %uri, error = %e, "interaction: account cannot be resolved");
            view.error = Some(view.page.t("error-interaction-uri"));
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct InteractionForm {
    #[serde(default)]
    uri: String,
}

async fn interaction_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    CsrfForm(form): CsrfForm<InteractionForm>,
) -> AppResult<Response> {
    let uri = form.uri.trim().to_owned();
    let who = super::api::Follower::user(&Urls::new(state.config()), &auth.user.username);
    super::api::start_follow(&state, &who, &uri).await?;
    let back: String = url::form_urlencoded::byte_serialize(uri.as_bytes()).collect();
    Ok(Redirect::to(&format!("/authorize_interaction?uri={back}")).into_response())
}

#[derive(Template)]
#[template(path = "federation/templates/remote_follow.html")]
struct RemoteFollowTemplate {
    page: Page,
    form: FormState,
    target: String,
    handle: String,
}

#[derive(Debug, Deserialize)]
struct RemoteFollowQuery {
    #[serde(default)]
    target: String,
}

/// The handle (`@name@host`) of a local actor URL, or None when it is not one of ours.
fn local_handle(state: &AppState, target: &str) -> Option<String> {
    let urls = Urls::new(state.config());
    let rest = target.strip_prefix(urls.base())?;
    let name = rest.strip_prefix("/u/").or_else(|| rest.strip_prefix("/g/"))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| format!("@{name}@{}", state.config().host()))
}

async fn remote_follow_page(
    State(state): State<AppState>,
    page: Page,
    Query(q): Query<RemoteFollowQuery>,
) -> AppResult<Response> {
    let handle = local_handle(&state, &q.target).ok_or_else(AppError::not_found)?;
    Ok(render(&RemoteFollowTemplate {
        page,
        form: FormState::new(),
        target: q.target,
        handle,
    }))
}

#[derive(Debug, Deserialize)]
struct RemoteFollowForm {
    #[serde(default)]
    target: String,
    #[serde(default)]
    account: String,
}

async fn remote_follow_submit(
    State(state): State<AppState>,
    page: Page,
    CsrfForm(form): CsrfForm<RemoteFollowForm>,
) -> AppResult<Response> {
    let handle = local_handle(&state, &form.target).ok_or_else(AppError::not_found)?;
    let account: String = form.account.trim().chars().take(300).collect();
    let looks_right = account
        .trim_start_matches('@')
        .split_once('@')
        .is_some_and(|(n, h)| !n.is_empty() && (h.contains('.') || h.contains(':')));
    let mut state_form = FormState::new().with_value("account", account.clone());
    if looks_right {
        match super::webfinger::remote_follow_url(
            state.fetch(),
            state.config().federation.debug,
            &account,
            &form.target,
        )
        .await
        {
            Ok(url) => return Ok(Redirect::to(url.as_str()).into_response()),
            Err(e) => {
                tracing::info!(%account, error = %e, "remote follow: no subscribe template");
                state_form.error(
                    page.lang,
                    "account",
                    "error-remote-follow",
                    &[("account", &account)],
                );
            }
        }
    } else {
        state_form.error(page.lang, "account", "error-remote-follow-address", &[]);
    }
    let view = RemoteFollowTemplate {
        page,
        form: state_form,
        target: form.target,
        handle,
    };
    Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response())
}
