//! Group pages (`/groups`, `/groups/new`, `/g/{slug}`, `/g/{slug}/members`, `/g/{slug}/settings`),
//! the group's ActivityPub faces (`/g/{slug}` and its collections) and the JSON API under
//! `/api/v1/groups`. Handlers are thin: the rules live in [`super::rules`].

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::model::{self, Group, JoinMode, Member, Visibility};
use super::rules::{self, Access, GroupInput, Joined, Permission, TreeNode};
use super::{Error, actor};
use crate::accounts::auth::{Admin, Auth, MaybeAuth};
use crate::accounts::model::User;
use crate::db;
use crate::error::{AppError, AppResult};
use crate::federation::{Urls, follows, keys, negotiate};
use crate::media;
use crate::state::AppState;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::extract::ApiJson;
use crate::web::form::FormState;
use crate::web::{Page, render};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/groups", get(groups_page))
        .route("/groups/new", get(new_group_page).post(new_group_submit))
        .route("/g/{slug}", get(group_page))
        .route("/g/{slug}/members", get(members_page).post(members_submit))
        .route("/g/{slug}/members/{name}/remove", post(member_remove_submit))
        .route(
            "/g/{slug}/requests/{id}/{decision}",
            post(request_decision_submit),
        )
        .route(
            "/g/{slug}/followers/{id}/{decision}",
            post(follower_decision_submit),
        )
        .route("/g/{slug}/settings", get(settings_page).post(settings_submit))
        .route("/g/{slug}/images/{purpose}/remove", post(image_remove_submit))
        .route("/g/{slug}/follows", post(follow_submit))
        .route("/g/{slug}/follows/remove", post(unfollow_submit))
        .route(
            "/api/v1/groups/{slug}/follows",
            get(api_group_follows)
                .post(api_group_follow)
                .delete(api_group_unfollow),
        )
        .route("/g/{slug}/join", post(join_submit))
        .route("/g/{slug}/leave", post(leave_submit))
        .route("/g/{slug}/{collection}", get(group_collection))
        .route("/api/v1/roles", get(api_roles))
        .route("/api/v1/groups", get(api_list).post(api_create))
        .route("/api/v1/groups/{slug}", get(api_get).patch(api_update))
        .route(
            "/api/v1/groups/{slug}/members",
            get(api_members).post(api_add_member),
        )
        .route(
            "/api/v1/groups/{slug}/members/{name}",
            axum::routing::delete(api_remove_member),
        )
        .route("/api/v1/groups/{slug}/join", post(api_join))
        .route("/api/v1/groups/{slug}/leave", post(api_leave))
        .route("/api/v1/groups/{slug}/join_requests", get(api_requests))
        .route(
            "/api/v1/groups/{slug}/join_requests/{id}/{decision}",
            post(api_decide_request),
        )
        .route("/api/v1/groups/{slug}/follow_requests", get(api_follow_requests))
        .route(
            "/api/v1/groups/{slug}/follow_requests/{id}/{decision}",
            post(api_decide_follow_request),
        )
}

/// Loads the group as `user` may see it (404 for internal groups to outsiders).
async fn load(state: &AppState, slug: &str, user: Option<&User>) -> AppResult<(Group, Access)> {
    let slug = slug.to_owned();
    let user = user.cloned();
    Ok(state
        .db()
        .run(move |c| rules::visible(c, &slug, user.as_ref()))
        .await?)
}

fn require(access: &Access, p: Permission) -> Result<(), Error> {
    if access.can(p) {
        Ok(())
    } else {
        Err(Error::Forbidden(match p {
            Permission::ManageMembers => "error-group-manage-members",
            Permission::EditGroup => "error-group-edit",
            Permission::Moderate => "error-group-moderate",
            _ => "error-group-forbidden",
        }))
    }
}

// ---- pages -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "groups/templates/list.html")]
struct ListTemplate {
    page: Page,
    nodes: Vec<TreeNode>,
    can_create: bool,
}

async fn groups_page(
    State(state): State<AppState>,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
) -> AppResult<Response> {
    let user = auth.map(|a| a.user);
    let can_create = user.as_ref().is_some_and(User::is_admin);
    let nodes = state
        .db()
        .run(move |c| rules::tree(c, user.as_ref()).map_err(db::Error::from))
        .await?;
    Ok(render(&ListTemplate {
        page,
        nodes,
        can_create,
    }))
}

/// The create/edit form with the select options it needs.
#[derive(Template)]
#[template(path = "groups/templates/form.html")]
struct FormTemplate {
    page: Page,
    form: FormState,
    /// None: a new group (with a slug field); Some: editing this group.
    editing: Option<Group>,
    parents: Vec<(String, String)>,
    /// Paths of the current avatar and banner (editing only).
    avatar: Option<String>,
    banner: Option<String>,
    /// Why the last avatar or banner upload was refused.
    avatar_error: Option<String>,
    banner_error: Option<String>,
    /// A success notice (a translation key).
    notice: Option<&'static str>,
    /// Partner groups on other servers this group follows.
    follows: Vec<Partner>,
    follow_form: FormState,
}

/// A group on another server that one of ours follows.
struct Partner {
    target: String,
    accepted: bool,
    /// The local mirror (slug, title), once the first Announce arrived.
    mirror: Option<(String, String)>,
}

/// What went wrong on the settings page besides the main form.
enum Problem {
    Image(media::Purpose, String),
    /// The target as typed, and the sentence.
    Follow(String, String),
}

impl FormTemplate {
    fn checked(&self, name: &str) -> bool {
        self.form.value(name) == "1"
    }
}

async fn parent_options(
    state: &AppState,
    user: User,
    except: Option<i64>,
) -> AppResult<Vec<(String, String)>> {
    let nodes = state
        .db()
        .run(move |c| rules::tree(c, Some(&user)).map_err(db::Error::from))
        .await?;
    Ok(nodes
        .into_iter()
        .filter(|n| Some(n.group.id) != except)
        .map(|n| {
            (
                n.group.slug.clone(),
                format!("{}{}", "– ".repeat(n.depth), n.group.title),
            )
        })
        .collect())
}

fn form_from_group(g: &Group, parent: Option<String>) -> FormState {
    FormState::new()
        .with_value("title", g.title.clone())
        .with_value("summary", g.summary_source.clone())
        .with_value("parent", parent.unwrap_or_default())
        .with_value("visibility", g.visibility().as_str())
        .with_value("join_mode", g.join_mode().as_str())
        .with_value(
            "manual_followers",
            if g.manually_approves_followers { "1" } else { "" },
        )
        .with_value("remote_threads", if g.allow_remote_threads { "1" } else { "" })
}

async fn new_group_page(
    State(state): State<AppState>,
    page: Page,
    Admin(admin): Admin,
) -> AppResult<Response> {
    let parents = parent_options(&state, admin.user, None).await?;
    let form = FormState::new()
        .with_value("visibility", "public")
        .with_value("join_mode", "open")
        .with_value("remote_threads", "1");
    Ok(render(&FormTemplate {
        page,
        form,
        editing: None,
        parents,
        avatar: None,
        banner: None,
        avatar_error: None,
        banner_error: None,
        notice: None,
        follows: Vec::new(),
        follow_form: FormState::new(),
    }))
}

#[derive(Debug, Deserialize)]
struct GroupForm {
    #[serde(default)]
    slug: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    visibility: String,
    #[serde(default)]
    join_mode: String,
    manual_followers: Option<String>,
    remote_threads: Option<String>,
}

impl GroupForm {
    fn input(&self) -> Result<GroupInput, Error> {
        Ok(GroupInput {
            title: self.title.clone(),
            summary: self.summary.clone(),
            parent: Some(self.parent.clone()).filter(|p| !p.trim().is_empty()),
            visibility: Visibility::parse(&self.visibility)
                .ok_or_else(|| Error::invalid("visibility", "invalid-visibility"))?,
            join_mode: JoinMode::parse(&self.join_mode)
                .ok_or_else(|| Error::invalid("join_mode", "invalid-join-mode"))?,
            manually_approves_followers: self.manual_followers.is_some(),
            allow_remote_threads: self.remote_threads.is_some(),
        })
    }

    fn values(&self) -> FormState {
        FormState::new()
            .with_value("slug", self.slug.clone())
            .with_value("title", self.title.clone())
            .with_value("summary", self.summary.clone())
            .with_value("parent", self.parent.clone())
            .with_value("visibility", self.visibility.clone())
            .with_value("join_mode", self.join_mode.clone())
            .with_value(
                "manual_followers",
                if self.manual_followers.is_some() { "1" } else { "" },
            )
            .with_value(
                "remote_threads",
                if self.remote_threads.is_some() { "1" } else { "" },
            )
    }
}

fn form_error(page: &Page, e: &Error, mut values: FormState) -> FormState {
    let (key, args) = e.message_key();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let field = match e {
        Error::Invalid { field, .. } => *field,
        Error::SlugTaken(_) => "slug",
        _ => "",
    };
    if field.is_empty() {
        values.general = Some(crate::web::i18n::translate(page.lang, key, &args));
    } else {
        values.error(page.lang, field, key, &args);
    }
    values
}

async fn new_group_submit(
    State(state): State<AppState>,
    page: Page,
    Admin(admin): Admin,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> AppResult<Response> {
    let user = admin.user.clone();
    let result = match form.input() {
        Ok(input) => {
            let slug = form.slug.clone();
            state
                .db()
                .run(move |c| rules::create(c, &slug, &input, Some(&user)))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(group) => Ok(Redirect::to(&format!("/g/{}", group.slug)).into_response()),
        Err(e @ (Error::Invalid { .. } | Error::SlugTaken(_))) => {
            let parents = parent_options(&state, admin.user, None).await?;
            let form = form_error(&page, &e, form.values());
            let view = FormTemplate {
                page,
                form,
                editing: None,
                parents,
                avatar: None,
                banner: None,
                avatar_error: None,
                banner_error: None,
                notice: None,
                follows: Vec::new(),
                follow_form: FormState::new(),
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "groups/templates/group.html")]
struct GroupTemplate {
    page: Page,
    group: Group,
    access: Access,
    parent: Option<Group>,
    children: Vec<Group>,
    members: i64,
    followers: i64,
    pending_request: bool,
    handle: String,
    target: String,
    form: FormState,
    notice: Option<&'static str>,
    pinned: Vec<crate::threads::Thread>,
    threads: Vec<crate::threads::Thread>,
    /// The keyset cursor of the next page of threads.
    next: Option<String>,
    /// Whether this is a later page (pinned threads only on the first).
    later: bool,
    avatar: Option<String>,
    banner: Option<String>,
    /// Mirrors of the partner groups this group follows: (slug, title).
    partners: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
struct NoticeQuery {
    done: Option<String>,
    before: Option<String>,
}

/// `{micros}_{id}` of a thread's last activity: the keyset cursor of thread lists.
pub fn thread_cursor(t: &crate::threads::Thread) -> String {
    format!("{}_{}", t.last_activity_at.and_utc().timestamp_micros(), t.id)
}

pub fn parse_thread_cursor(s: &str) -> Option<(chrono::NaiveDateTime, i64)> {
    let (ts, id) = s.split_once('_')?;
    let micros: i64 = ts.parse().ok()?;
    Some((
        chrono::DateTime::from_timestamp_micros(micros)?.naive_utc(),
        id.parse().ok()?,
    ))
}

/// `/g/{slug}`: the `Group` for ActivityPub clients (public groups only), the page for browsers.
async fn group_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let user = auth.map(|a| a.user);
    let urls = Urls::new(state.config());
    if negotiate::wants_activity_json(&headers) {
        let (group, _) = load(&state, &slug, None).await?;
        if group.is_remote() {
            // A mirror has no actor here; its real one lives on its server.
            return Err(AppError::not_found());
        }
        let g = group.clone();
        let (key, images) = state
            .db()
            .run(move |c| -> Result<_, crate::federation::Error> {
                let images = model::images(c, &g).map_err(db::Error::from)?;
                Ok((keys::ensure(c, &g.slug)?, images))
            })
            .await?;
        let mut response = crate::federation::routes::activity_json(actor::document(
            &group,
            &key.public_key_pem,
            &urls,
            &images,
        ));
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        return Ok(response);
    }
    let (group, access) = load(&state, &slug, user.as_ref()).await?;
    let g = group.clone();
    let uid = user.as_ref().map(|u| u.id);
    let before = q.before.as_deref().and_then(parse_thread_cursor);
    let (pinned, mut threads) = {
        let gid = group.id;
        state
            .db()
            .run(move |c| -> Result<_, db::Error> {
                use crate::threads::model as tm;
                let pinned = if before.is_none() {
                    tm::pinned(c, gid)?
                } else {
                    Vec::new()
                };
                Ok((
                    pinned,
                    tm::page(c, gid, before, crate::threads::routes::PAGE + 1)?,
                ))
            })
            .await?
    };
    let page_size = usize::try_from(crate::threads::routes::PAGE).unwrap_or(25);
    let next = if threads.len() > page_size {
        threads.truncate(page_size);
        threads.last().map(thread_cursor)
    } else {
        None
    };
    let (parent, children, members, followers, pending_request, images, partner_groups) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            let parent = match g.parent_id {
                Some(id) => Group::find(c, id)?,
                None => None,
            };
            let children: Vec<Group> = {
                use diesel::prelude::*;
                db::schema::groups::table
                    .filter(db::schema::groups::parent_id.eq(g.id))
                    .order(db::schema::groups::title)
                    .select(Group::as_select())
                    .load(c)?
            };
            let pending = match uid {
                Some(id) => model::pending_request_of(c, g.id, id)?.is_some(),
                None => false,
            };
            Ok((
                parent,
                children,
                model::member_count(c, g.id)?,
                follows::count(c, &g.slug)?,
                pending,
                model::images(c, &g)?,
                partners(c, &g.slug)?,
            ))
        })
        .await?;
    let admin = access.admin;
    let member_of_hidden = |g: &Group| g.is_public() || admin;
    let notice = match q.done.as_deref() {
        Some("joined") => Some("group-joined"),
        Some("requested") => Some("group-requested"),
        Some("left") => Some("group-left"),
        Some("saved") => Some("settings-saved"),
        _ => None,
    };
    let mut response = render(&GroupTemplate {
        handle: if group.is_remote() {
            format!("@{}", group.slug)
        } else {
            format!("@{}@{}", group.slug, state.config().host())
        },
        target: urls.group(&group.slug),
        page,
        parent: parent.filter(member_of_hidden),
        children: children.into_iter().filter(member_of_hidden).collect(),
        group,
        access,
        members,
        followers,
        pending_request,
        form: FormState::new(),
        notice,
        pinned,
        threads,
        next,
        later: before.is_some(),
        avatar: images.avatar.map(|m| m.path),
        banner: images.banner.map(|m| m.path),
        partners: partner_groups
            .into_iter()
            .filter(|p| p.accepted)
            .filter_map(|p| p.mirror)
            .collect(),
    });
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

/// `/g/{slug}/followers|moderators|outbox|featured` for ActivityPub clients.
async fn group_collection(
    State(state): State<AppState>,
    Path((slug, collection)): Path<(String, String)>,
) -> AppResult<Response> {
    if !matches!(
        collection.as_str(),
        "followers" | "moderators" | "outbox" | "featured"
    ) {
        return Err(AppError::not_found());
    }
    let (group, _) = load(&state, &slug, None).await?;
    if group.is_remote() {
        return Err(AppError::not_found());
    }
    let urls = Urls::new(state.config());
    let doc = state
        .db()
        .run(move |c| -> Result<Value, db::Error> {
            let id = format!("{}/{collection}", urls.group(&group.slug));
            Ok(match collection.as_str() {
                "moderators" => actor::moderators(c, &group, &urls)?,
                "followers" => crate::federation::actors::paged_collection(
                    &id,
                    follows::count(c, &group.slug)?,
                    None,
                    Vec::new(),
                ),
                "outbox" => crate::threads::federation::outbox(c, &urls, &group)?,
                _ => crate::threads::federation::featured(c, &urls, &group)?,
            })
        })
        .await?;
    Ok(crate::federation::routes::activity_json(doc))
}

#[derive(Template)]
#[template(path = "groups/templates/members.html")]
struct MembersTemplate {
    page: Page,
    group: Group,
    access: Access,
    members: Vec<Member>,
    requests: Vec<(model::JoinRequest, String)>,
    /// Fediverse accounts waiting to follow the group (manual approval).
    follow_requests: Vec<follows::Follower>,
    roles: Vec<String>,
    form: FormState,
    invitations: Vec<model::Invitation>,
    notice: Option<&'static str>,
}

async fn members_view(
    state: &AppState,
    page: Page,
    group: Group,
    access: Access,
    form: FormState,
    notice: Option<&'static str>,
) -> AppResult<Response> {
    let g = group.clone();
    let manage = access.can(Permission::ManageMembers);
    let (members, requests, follow_requests, roles, invitations) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            Ok((
                model::members(c, g.id)?,
                if manage {
                    model::pending_requests(c, g.id)?
                } else {
                    Vec::new()
                },
                if manage && g.federates() {
                    follows::pending(c, &g.slug)?
                } else {
                    Vec::new()
                },
                model::role_tokens(c)?,
                if manage {
                    model::invitations_to(c, g.id)?
                } else {
                    Vec::new()
                },
            ))
        })
        .await?;
    Ok(render(&MembersTemplate {
        page,
        group,
        access,
        members,
        requests,
        follow_requests,
        roles,
        form,
        invitations,
        notice,
    }))
}

async fn members_page(
    State(state): State<AppState>,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let user = auth.map(|a| a.user);
    let (group, access) = load(&state, &slug, user.as_ref()).await?;
    let notice = match q.done.as_deref() {
        Some("invited") => Some("group-invitation-sent"),
        Some("withdrawn") => Some("group-invitation-withdrawn"),
        _ => None,
    };
    members_view(&state, page, group, access, FormState::new(), notice).await
}

#[derive(Debug, Deserialize)]
struct AddMemberForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    /// `invite` (the user accepts or declines) or `add` (at once).
    #[serde(default)]
    action: String,
}

async fn members_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<AddMemberForm>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let (g, by) = (group.clone(), auth.user.clone());
    let (name, role) = (form.username.clone(), form.role.clone());
    let invite = form.action == "invite";
    let done = state
        .db()
        .run(move |c| {
            if invite {
                rules::invite(c, &g, &name, &role, &by).map(|_| "?done=invited")
            } else {
                rules::add_member(c, &g, &name, &role).map(|_| "")
            }
        })
        .await;
    match done {
        Ok(done) => Ok(Redirect::to(&format!("/g/{}/members{done}", group.slug)).into_response()),
        Err(
            e @ (Error::UserNotFound(_)
            | Error::UnknownRole(_)
            | Error::IsMember(_)
            | Error::AlreadyInvited(_)
            | Error::Invalid { .. }),
        ) => {
            let field = if matches!(e, Error::UnknownRole(_)) {
                "role"
            } else {
                "username"
            };
            let mut values = FormState::new()
                .with_value("username", form.username)
                .with_value("role", form.role);
            let (key, args) = e.message_key();
            let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
            values.error(page.lang, field, key, &args);
            let response = members_view(&state, page, group, access, values, None).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct RemoveForm {
    role: Option<String>,
}

async fn member_remove_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, name)): Path<(String, String)>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let g = group.clone();
    state
        .db()
        .run(move |c| rules::remove_member(c, &g, &name, form.role.as_deref().filter(|r| !r.is_empty())))
        .await?;
    Ok(Redirect::to(&format!("/g/{}/members", group.slug)).into_response())
}

async fn decide(state: &AppState, user: &User, slug: &str, id: i64, decision: &str) -> AppResult<Group> {
    let approve = match decision {
        "approve" => true,
        "refuse" => false,
        _ => return Err(AppError::not_found()),
    };
    let (group, access) = load(state, slug, Some(user)).await?;
    require(&access, Permission::ManageMembers)?;
    let (g, by) = (group.clone(), user.clone());
    state
        .db()
        .run(move |c| rules::decide_request(c, &g, id, approve, &by))
        .await?;
    Ok(group)
}

async fn request_decision_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, decision)): Path<(String, i64, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let group = decide(&state, &auth.user, &slug, id, &decision).await?;
    Ok(Redirect::to(&format!("/g/{}/members", group.slug)).into_response())
}

async fn settings_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let notice = match q.done.as_deref() {
        Some("image") => Some("image-saved"),
        Some("follow") => Some("partner-follow-sent"),
        Some("unfollow") => Some("partner-unfollowed"),
        _ => None,
    };
    settings_view(&state, page, auth.user, group, None, None, notice).await
}

/// The settings page: the group form (with `form`'s input and errors, else the group's values)
/// the image uploads and the partner groups it follows (with `problem`'s error where it belongs).
async fn settings_view(
    state: &AppState,
    page: Page,
    user: User,
    group: Group,
    form: Option<FormState>,
    problem: Option<Problem>,
    notice: Option<&'static str>,
) -> AppResult<Response> {
    let g = group.clone();
    let (parent_slug, images, follows) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            let parent = match g.parent_id {
                Some(id) => Group::find(c, id)?.map(|p| p.slug),
                None => None,
            };
            Ok((parent, model::images(c, &g)?, partners(c, &g.slug)?))
        })
        .await?;
    let parents = parent_options(state, user, Some(group.id)).await?;
    let status = if form.is_some() || problem.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let form = form.unwrap_or_else(|| form_from_group(&group, parent_slug));
    let error_for = |p: media::Purpose| match &problem {
        Some(Problem::Image(q, m)) if *q == p => Some(m.clone()),
        _ => None,
    };
    let mut follow_form = FormState::new();
    if let Some(Problem::Follow(target, message)) = &problem {
        follow_form = follow_form.with_value("target", target.clone());
        follow_form.push_error("target", message.clone());
    }
    let view = FormTemplate {
        page,
        form,
        editing: Some(group),
        parents,
        avatar: images.avatar.map(|m| m.path),
        banner: images.banner.map(|m| m.path),
        avatar_error: error_for(media::Purpose::Avatar),
        banner_error: error_for(media::Purpose::Banner),
        notice,
        follows,
        follow_form,
    };
    Ok((status, render(&view)).into_response())
}

async fn settings_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<GroupForm>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let urls = Urls::new(state.config());
    let result = match form.input() {
        Ok(input) => {
            let g = group.clone();
            state.db().run(move |c| rules::update(c, &urls, &g, &input)).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(g) => {
            state.wake_delivery();
            Ok(Redirect::to(&format!("/g/{}?done=saved", g.slug)).into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let values = form_error(&page, &e, form.values());
            settings_view(&state, page, auth.user, group, Some(values), None, None).await
        }
        Err(e) => Err(e.into()),
    }
}

fn purpose(s: &str) -> AppResult<media::Purpose> {
    media::Purpose::parse(s).ok_or_else(AppError::not_found)
}

/// Stores `image` (None: removes it) as the group's avatar or banner and tells followers.
async fn set_image(
    state: &AppState,
    group: &Group,
    purpose: media::Purpose,
    image: Option<media::Processed>,
) -> AppResult<Group> {
    let urls = Urls::new(state.config());
    let g = group.clone();
    let updated = state
        .db()
        .run(move |c| rules::set_image(c, &urls, &g, purpose, image.as_ref()))
        .await?;
    state.wake_delivery();
    Ok(updated)
}

/// The partner groups `slug` follows, with their mirrors.
fn partners(c: &mut db::DbConn, slug: &str) -> Result<Vec<Partner>, db::Error> {
    let mut out = Vec::new();
    for f in follows::outgoing::list(c, slug)? {
        let mirror = Group::by_ap_id(c, &f.target_ap_id)?.map(|g| (g.slug, g.title));
        out.push(Partner {
            accepted: f.state == "accepted",
            target: f.target_ap_id,
            mirror,
        });
    }
    Ok(out)
}

/// Only our public groups follow others: internal ones are never federated.
fn may_follow(group: &Group) -> Result<(), Error> {
    if group.federates() {
        Ok(())
    } else {
        Err(Error::Forbidden("error-group-follow-internal"))
    }
}

#[derive(Debug, Deserialize)]
struct FollowForm {
    #[serde(default)]
    target: String,
}

async fn follow_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<FollowForm>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    may_follow(&group)?;
    let who = crate::federation::api::Follower::group(&Urls::new(state.config()), &group.slug);
    let target = form.target.trim().trim_start_matches('@').to_owned();
    match crate::federation::api::start_follow(&state, &who, &target).await {
        Ok(_) => Ok(Redirect::to(&format!("/g/{}/settings?done=follow", group.slug)).into_response()),
        Err(e) if e.status.is_client_error() => {
            let problem = Problem::Follow(form.target, e.localized(page.lang));
            settings_view(&state, page, auth.user, group, None, Some(problem), None).await
        }
        Err(e) => Err(e),
    }
}

async fn unfollow_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<FollowForm>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let who = crate::federation::api::Follower::group(&Urls::new(state.config()), &group.slug);
    crate::federation::api::stop_follow(&state, &who, &form.target).await?;
    Ok(Redirect::to(&format!("/g/{}/settings?done=unfollow", group.slug)).into_response())
}

fn partners_json(partners: &[Partner]) -> Value {
    json!(
        partners
            .iter()
            .map(|p| json!({
                "target": p.target,
                "state": if p.accepted { "accepted" } else { "pending" },
                "mirror": p.mirror.as_ref().map(|(slug, _)| slug),
            }))
            .collect::<Vec<_>>()
    )
}

/// `GET /api/v1/groups/{slug}/follows`: the partner groups this group follows.
async fn api_group_follows(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Value>> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let list = state.db().run(move |c| partners(c, &group.slug)).await?;
    Ok(axum::Json(partners_json(&list)))
}

#[derive(Debug, Deserialize)]
struct FollowTarget {
    target: String,
}

async fn api_group_follow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<FollowTarget>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    may_follow(&group)?;
    let who = crate::federation::api::Follower::group(&Urls::new(state.config()), &group.slug);
    let (created, row) = crate::federation::api::start_follow(&state, &who, &req.target).await?;
    let status = if created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(json!(row))))
}

async fn api_group_unfollow(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<FollowTarget>,
) -> AppResult<StatusCode> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let who = crate::federation::api::Follower::group(&Urls::new(state.config()), &group.slug);
    crate::federation::api::stop_follow(&state, &who, &req.target).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes that take uploads; the app gives them a larger body limit.
pub fn upload_routes() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}/images/{purpose}", post(image_submit))
        .route(
            "/api/v1/groups/{slug}/images/{purpose}",
            axum::routing::put(api_put_image).delete(api_delete_image),
        )
}

async fn image_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path((slug, purpose_name)): Path<(String, String)>,
    upload: media::routes::UploadForm,
) -> AppResult<Response> {
    let purpose = purpose(&purpose_name)?;
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    match media::routes::process(upload.file, purpose).await {
        Ok(image) => {
            let g = set_image(&state, &group, purpose, Some(image)).await?;
            Ok(Redirect::to(&format!("/g/{}/settings?done=image", g.slug)).into_response())
        }
        Err(media::Error::Db(e)) => Err(AppError::internal(&e)),
        Err(e) => {
            let message = e.localized(page.lang);
            settings_view(
                &state,
                page,
                auth.user,
                group,
                None,
                Some(Problem::Image(purpose, message)),
                None,
            )
            .await
        }
    }
}

async fn image_remove_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, purpose_name)): Path<(String, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let purpose = purpose(&purpose_name)?;
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let g = set_image(&state, &group, purpose, None).await?;
    Ok(Redirect::to(&format!("/g/{}/settings?done=image", g.slug)).into_response())
}

/// `PUT /api/v1/groups/{slug}/images/avatar|banner` with the image file as the body.
async fn api_put_image(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, purpose_name)): Path<(String, String)>,
    body: axum::body::Body,
) -> AppResult<axum::Json<Value>> {
    let purpose = purpose(&purpose_name)?;
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let bytes = media::routes::read_body(body).await?;
    let image = media::routes::process(Ok(bytes), purpose).await?;
    let g = set_image(&state, &group, purpose, Some(image)).await?;
    api_group_answer(&state, g, &access).await
}

async fn api_delete_image(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, purpose_name)): Path<(String, String)>,
) -> AppResult<axum::Json<Value>> {
    let purpose = purpose(&purpose_name)?;
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let g = set_image(&state, &group, purpose, None).await?;
    api_group_answer(&state, g, &access).await
}

#[derive(Debug, Deserialize)]
struct JoinForm {
    #[serde(default)]
    message: String,
}

async fn join_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<JoinForm>,
) -> AppResult<Response> {
    let (group, _) = load(&state, &slug, Some(&auth.user)).await?;
    let (g, u) = (group.clone(), auth.user.clone());
    let joined = state
        .db()
        .run(move |c| rules::join(c, &g, &u, &form.message))
        .await?;
    let done = match joined {
        Joined::Member => "joined",
        Joined::Requested => "requested",
    };
    Ok(Redirect::to(&format!("/g/{}?done={done}", group.slug)).into_response())
}

async fn leave_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let (group, _) = load(&state, &slug, Some(&auth.user)).await?;
    let (g, u) = (group.clone(), auth.user.clone());
    state.db().run(move |c| rules::leave(c, &g, &u)).await?;
    // An internal group is gone from view once left.
    let to = if group.is_public() {
        format!("/g/{}?done=left", group.slug)
    } else {
        "/groups".to_owned()
    };
    Ok(Redirect::to(&to).into_response())
}

// ---- API ---------------------------------------------------------------------------------

fn group_json(g: &Group, parent: Option<&str>, urls: &Urls, access: Option<&Access>) -> Value {
    let mut v = json!({
        "slug": g.slug,
        "title": g.title,
        "summary": g.summary_source,
        "summary_html": g.summary_html,
        "parent": parent,
        "visibility": g.visibility().as_str(),
        "join_mode": g.join_mode().as_str(),
        "manually_approves_followers": g.manually_approves_followers,
        "allow_remote_threads": g.allow_remote_threads,
        "url": urls.group(&g.slug),
        "ap_id": g.is_public().then(|| urls.group(&g.slug)),
        "created_at": crate::federation::actors::rfc3339(&g.created_at),
        "updated_at": crate::federation::actors::rfc3339(&g.updated_at),
    });
    if let Some(a) = access {
        v["my_roles"] = json!(a.roles);
    }
    v
}

async fn api_roles(State(state): State<AppState>) -> AppResult<axum::Json<Value>> {
    let roles = state
        .db()
        .run(|c| -> Result<Vec<Value>, db::Error> {
            let mut out = Vec::new();
            for role in model::role_tokens(c)? {
                let perms = model::permissions_of(c, std::slice::from_ref(&role))?;
                out.push(json!({ "role": role, "permissions": perms }));
            }
            Ok(out)
        })
        .await?;
    Ok(axum::Json(json!(roles)))
}

async fn api_list(State(state): State<AppState>, MaybeAuth(auth): MaybeAuth) -> AppResult<axum::Json<Value>> {
    let user = auth.map(|a| a.user);
    let urls = Urls::new(state.config());
    let nodes = state
        .db()
        .run(move |c| rules::tree(c, user.as_ref()).map_err(db::Error::from))
        .await?;
    let slugs: std::collections::HashMap<i64, String> =
        nodes.iter().map(|n| (n.group.id, n.group.slug.clone())).collect();
    let list: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let parent = n.group.parent_id.and_then(|p| slugs.get(&p)).map(String::as_str);
            let mut v = group_json(&n.group, parent, &urls, None);
            v["members"] = n.members.into();
            v["threads"] = n.threads.into();
            v["depth"] = n.depth.into();
            v
        })
        .collect();
    Ok(axum::Json(json!(list)))
}

async fn parent_slug(state: &AppState, g: &Group) -> AppResult<Option<String>> {
    let parent = g.parent_id;
    Ok(state
        .db()
        .run(move |c| -> Result<Option<String>, db::Error> {
            Ok(match parent {
                Some(id) => Group::find(c, id)?.map(|p| p.slug),
                None => None,
            })
        })
        .await?)
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    slug: String,
    title: String,
    #[serde(default)]
    summary: String,
    parent: Option<String>,
    visibility: Option<String>,
    join_mode: Option<String>,
    manually_approves_followers: Option<bool>,
    allow_remote_threads: Option<bool>,
}

fn parse_visibility(s: Option<&str>, default: Visibility) -> Result<Visibility, Error> {
    s.map_or(Ok(default), |v| {
        Visibility::parse(v).ok_or_else(|| Error::invalid("visibility", "invalid-visibility"))
    })
}

fn parse_join(s: Option<&str>, default: JoinMode) -> Result<JoinMode, Error> {
    s.map_or(Ok(default), |v| {
        JoinMode::parse(v).ok_or_else(|| Error::invalid("join_mode", "invalid-join-mode"))
    })
}

async fn api_create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ApiJson(req): ApiJson<CreateRequest>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let mut input = GroupInput::new(&req.title);
    input.summary = req.summary.clone();
    input.parent = req.parent.clone();
    input.visibility = parse_visibility(req.visibility.as_deref(), Visibility::Public)?;
    input.join_mode = parse_join(req.join_mode.as_deref(), JoinMode::Open)?;
    input.manually_approves_followers = req.manually_approves_followers.unwrap_or(false);
    input.allow_remote_threads = req.allow_remote_threads.unwrap_or(true);
    let user = admin.user.clone();
    let slug = req.slug.clone();
    let group = state
        .db()
        .run(move |c| rules::create(c, &slug, &input, Some(&user)))
        .await?;
    let urls = Urls::new(state.config());
    let parent = parent_slug(&state, &group).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(group_json(&group, parent.as_deref(), &urls, None)),
    ))
}

async fn api_get(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Value>> {
    let user = auth.map(|a| a.user);
    let (group, access) = load(&state, &slug, user.as_ref()).await?;
    api_group_answer(&state, group, &access).await
}

/// A group as `GET /api/v1/groups/{slug}` shows it: with counts and image URLs.
async fn api_group_answer(state: &AppState, group: Group, access: &Access) -> AppResult<axum::Json<Value>> {
    let urls = Urls::new(state.config());
    let parent = parent_slug(state, &group).await?;
    let g = group.clone();
    let (members, followers, images) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            Ok((
                model::member_count(c, g.id)?,
                follows::count(c, &g.slug)?,
                model::images(c, &g)?,
            ))
        })
        .await?;
    let mut v = group_json(&group, parent.as_deref(), &urls, Some(access));
    v["members"] = members.into();
    v["followers"] = followers.into();
    let absolute = |m: Option<media::MediaRef>| m.map(|m| format!("{}{}", urls.base(), m.path));
    v["avatar_url"] = json!(absolute(images.avatar));
    v["banner_url"] = json!(absolute(images.banner));
    Ok(axum::Json(v))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    title: Option<String>,
    summary: Option<String>,
    /// `""` removes the parent.
    parent: Option<String>,
    visibility: Option<String>,
    join_mode: Option<String>,
    manually_approves_followers: Option<bool>,
    allow_remote_threads: Option<bool>,
}

async fn api_update(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<UpdateRequest>,
) -> AppResult<axum::Json<Value>> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::EditGroup)?;
    let current_parent = parent_slug(&state, &group).await?;
    let input = GroupInput {
        title: req.title.unwrap_or_else(|| group.title.clone()),
        summary: req.summary.unwrap_or_else(|| group.summary_source.clone()),
        parent: match req.parent {
            Some(p) if p.trim().is_empty() => None,
            Some(p) => Some(p),
            None => current_parent,
        },
        visibility: parse_visibility(req.visibility.as_deref(), group.visibility())?,
        join_mode: parse_join(req.join_mode.as_deref(), group.join_mode())?,
        manually_approves_followers: req
            .manually_approves_followers
            .unwrap_or(group.manually_approves_followers),
        allow_remote_threads: req.allow_remote_threads.unwrap_or(group.allow_remote_threads),
    };
    let urls = Urls::new(state.config());
    let u = urls.clone();
    let g = group.clone();
    let updated = state.db().run(move |c| rules::update(c, &u, &g, &input)).await?;
    state.wake_delivery();
    let parent = parent_slug(&state, &updated).await?;
    Ok(axum::Json(group_json(
        &updated,
        parent.as_deref(),
        &urls,
        Some(&access),
    )))
}

async fn api_members(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Vec<Member>>> {
    let user = auth.map(|a| a.user);
    let (group, _) = load(&state, &slug, user.as_ref()).await?;
    Ok(axum::Json(
        state
            .db()
            .run(move |c| model::members(c, group.id).map_err(db::Error::from))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
struct MemberRequest {
    username: String,
    role: String,
}

async fn api_add_member(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<MemberRequest>,
) -> AppResult<(StatusCode, axum::Json<Vec<Member>>)> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let members = state
        .db()
        .run(move |c| -> Result<_, Error> {
            let added = rules::add_member(c, &group, &req.username, &req.role)?;
            Ok((added, model::members(c, group.id)?))
        })
        .await?;
    let status = if members.0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(members.1)))
}

#[derive(Debug, Deserialize)]
struct RoleQuery {
    role: Option<String>,
}

async fn api_remove_member(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, name)): Path<(String, String)>,
    Query(q): Query<RoleQuery>,
) -> AppResult<StatusCode> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    state
        .db()
        .run(move |c| rules::remove_member(c, &group, &name, q.role.as_deref()))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
struct JoinRequestBody {
    #[serde(default)]
    message: String,
}

async fn api_join(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    // The body is optional: `{"message": "…"}` for groups that take requests.
    let message = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        serde_json::from_slice::<JoinRequestBody>(&body)
            .map_err(|e| {
                AppError::with_args(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "error-invalid-json",
                    vec![("detail", e.to_string())],
                )
            })?
            .message
    };
    let (group, _) = load(&state, &slug, Some(&auth.user)).await?;
    let user = auth.user.clone();
    let joined = state
        .db()
        .run(move |c| rules::join(c, &group, &user, &message))
        .await?;
    Ok(match joined {
        Joined::Member => (StatusCode::OK, axum::Json(json!({ "state": "member" }))),
        Joined::Requested => (StatusCode::ACCEPTED, axum::Json(json!({ "state": "requested" }))),
    })
}

async fn api_leave(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<StatusCode> {
    let (group, _) = load(&state, &slug, Some(&auth.user)).await?;
    let user = auth.user.clone();
    state.db().run(move |c| rules::leave(c, &group, &user)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn api_requests(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Value>> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let rows = state
        .db()
        .run(move |c| model::pending_requests(c, group.id).map_err(db::Error::from))
        .await?;
    Ok(axum::Json(json!(
        rows.into_iter()
            .map(|(r, name)| json!({ "id": r.id, "username": name, "message": r.message, "created_at": crate::federation::actors::rfc3339(&r.created_at) }))
            .collect::<Vec<_>>()
    )))
}

async fn api_decide_request(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, decision)): Path<(String, i64, String)>,
) -> AppResult<StatusCode> {
    decide(&state, &auth.user, &slug, id, &decision).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- notifications -------------------------------------------------------------------------

/// The notification routes (join requests, roles, mentions, replies): the page, marking as read,
/// and `GET /api/v1/notifications`.
pub fn notification_routes() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(notifications_page))
        .route("/notifications/read", post(notifications_read))
        .route("/api/v1/notifications", get(api_notifications))
        .route("/invitations/{id}/{decision}", post(invitation_answer_submit))
        .route(
            "/g/{slug}/invitations/{id}/withdraw",
            post(invitation_withdraw_submit),
        )
        .route("/api/v1/me/invitations", get(api_my_invitations))
        .route(
            "/api/v1/me/invitations/{id}/{decision}",
            post(api_answer_invitation),
        )
        .route(
            "/api/v1/groups/{slug}/invitations",
            get(api_group_invitations).post(api_invite),
        )
        .route(
            "/api/v1/groups/{slug}/invitations/{id}",
            axum::routing::delete(api_withdraw_invitation),
        )
}

fn accepts(decision: &str) -> AppResult<bool> {
    match decision {
        "accept" => Ok(true),
        "decline" => Ok(false),
        _ => Err(AppError::not_found()),
    }
}

async fn invitation_answer_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, decision)): Path<(i64, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let accept = accepts(&decision)?;
    let user = auth.user.clone();
    let group = state
        .db()
        .run(move |c| rules::answer_invitation(c, &user, id, accept))
        .await?;
    Ok(if accept {
        Redirect::to(&format!("/g/{}?done=joined", group.slug)).into_response()
    } else {
        Redirect::to("/notifications?done=declined").into_response()
    })
}

async fn invitation_withdraw_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id)): Path<(String, i64)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let g = group.clone();
    state
        .db()
        .run(move |c| rules::withdraw_invitation(c, &g, id))
        .await?;
    Ok(Redirect::to(&format!("/g/{}/members?done=withdrawn", group.slug)).into_response())
}

/// `GET /api/v1/me/invitations`: the groups the signed-in user is invited to.
async fn api_my_invitations(State(state): State<AppState>, Auth(auth): Auth) -> AppResult<axum::Json<Value>> {
    let id = auth.user.id;
    let list = state
        .db()
        .run(move |c| model::invitations_of(c, id).map_err(db::Error::from))
        .await?;
    Ok(axum::Json(json!(list)))
}

async fn api_answer_invitation(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((id, decision)): Path<(i64, String)>,
) -> AppResult<axum::Json<Value>> {
    let accept = accepts(&decision)?;
    let user = auth.user.clone();
    let group = state
        .db()
        .run(move |c| rules::answer_invitation(c, &user, id, accept))
        .await?;
    let (_, access) = load(&state, &group.slug, Some(&auth.user)).await?;
    api_group_answer(&state, group, &access).await
}

async fn api_group_invitations(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Value>> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let list = state
        .db()
        .run(move |c| model::invitations_to(c, group.id).map_err(db::Error::from))
        .await?;
    Ok(axum::Json(json!(list)))
}

#[derive(Debug, Deserialize)]
struct InviteRequest {
    username: String,
    #[serde(default = "default_role")]
    role: String,
}

fn default_role() -> String {
    "member".into()
}

async fn api_invite(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<InviteRequest>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    let by = auth.user.clone();
    let invitation = state
        .db()
        .run(move |c| rules::invite(c, &group, &req.username, &req.role, &by))
        .await?;
    Ok((StatusCode::CREATED, axum::Json(json!(invitation))))
}

async fn api_withdraw_invitation(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<StatusCode> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    state
        .db()
        .run(move |c| rules::withdraw_invitation(c, &group, id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Template)]
#[template(path = "groups/templates/notifications.html")]
struct NotificationsTemplate {
    page: Page,
    items: Vec<(model::Notification, String)>,
    unread: i64,
    invitations: Vec<model::Invitation>,
    declined: bool,
}

fn sentence(lang: crate::web::i18n::Lang, n: &model::Notification) -> String {
    let args = n.args();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    crate::web::i18n::translate(lang, &n.kind, &args)
}

async fn notifications_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Query(q): Query<NoticeQuery>,
) -> AppResult<Response> {
    let id = auth.user.id;
    let (list, unread, invitations) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            Ok((
                model::notifications_of(c, id, 100)?,
                model::unread_count(c, id)?,
                model::invitations_of(c, id)?,
            ))
        })
        .await?;
    let items = list.into_iter().map(|n| {
        let text = sentence(page.lang, &n);
        (n, text)
    });
    let items = items.collect();
    Ok(render(&NotificationsTemplate {
        page,
        items,
        unread,
        invitations,
        declined: q.done.as_deref() == Some("declined"),
    }))
}

async fn notifications_read(
    State(state): State<AppState>,
    Auth(auth): Auth,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let id = auth.user.id;
    state
        .db()
        .run(move |c| model::mark_read(c, id).map_err(db::Error::from))
        .await?;
    Ok(Redirect::to("/notifications").into_response())
}

async fn api_notifications(State(state): State<AppState>, Auth(auth): Auth) -> AppResult<axum::Json<Value>> {
    let id = auth.user.id;
    let list = state
        .db()
        .run(move |c| model::notifications_of(c, id, 100).map_err(db::Error::from))
        .await?;
    let lang = crate::web::i18n::Lang::En;
    Ok(axum::Json(json!(
        list.iter()
            .map(|n| json!({
                "id": n.id,
                "kind": n.kind,
                "text": sentence(lang, n),
                "link": n.link,
                "read": n.read_at.is_some(),
                "created_at": crate::federation::actors::rfc3339(&n.created_at),
            }))
            .collect::<Vec<_>>()
    )))
}

/// Accepts or rejects a fediverse account's request to follow the group (manage_members).
async fn decide_follower(
    state: &AppState,
    user: &User,
    slug: &str,
    id: i64,
    decision: &str,
) -> AppResult<Group> {
    let (group, access) = load(state, slug, Some(user)).await?;
    require(&access, Permission::ManageMembers)?;
    // The same answer as a user's: follows::decide signs it as the group.
    crate::federation::pages::decide(state, &group.slug, id, decision).await?;
    Ok(group)
}

async fn follower_decision_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, decision)): Path<(String, i64, String)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let group = decide_follower(&state, &auth.user, &slug, id, &decision).await?;
    Ok(Redirect::to(&format!("/g/{}/members", group.slug)).into_response())
}

async fn api_follow_requests(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<axum::Json<Vec<follows::Follower>>> {
    let (group, access) = load(&state, &slug, Some(&auth.user)).await?;
    require(&access, Permission::ManageMembers)?;
    Ok(axum::Json(
        state
            .db()
            .run(move |c| follows::pending(c, &group.slug).map_err(db::Error::from))
            .await?,
    ))
}

async fn api_decide_follow_request(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, decision)): Path<(String, i64, String)>,
) -> AppResult<StatusCode> {
    decide_follower(&state, &auth.user, &slug, id, &decision).await?;
    Ok(StatusCode::NO_CONTENT)
}
