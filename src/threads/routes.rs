//! Thread pages (`/g/{slug}/t/{id}` and its forms), the same URLs as ActivityPub objects, the
//! tag page and the JSON API (`/api/v1/groups/{slug}/threads`, `/api/v1/threads/{id}`,
//! `/api/v1/replies/{id}`).

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::federation as fed;
use super::model::{self, Author, Post, Thread};
use super::rules::{self, Draft, Moderation, Resolved, Scope};
use crate::accounts::auth::{Auth, MaybeAuth};
use crate::accounts::model::{Status, User};
use crate::db;
use crate::error::{AppError, AppResult};
use crate::federation::{Urls, negotiate};
use crate::groups::rules::{Access, Permission};
use crate::groups::{Error, Group};
use crate::state::AppState;
use crate::web::csrf::{CsrfForm, NoFields};
use crate::web::extract::ApiJson;
use crate::web::form::FormState;
use crate::web::{Page, render};

pub const PAGE: i64 = 25;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/g/{slug}/threads", post(new_thread_submit))
        .route("/g/{slug}/threads/new", get(new_thread_page))
        .route("/g/{slug}/log", get(log_page))
        .route("/g/{slug}/t/{id}", get(thread_page))
        .route("/g/{slug}/t/{id}/context", get(context_collection))
        .route("/g/{slug}/t/{id}/reply", post(reply_submit))
        .route("/g/{slug}/t/{id}/moderate", post(moderate_submit))
        .route("/g/{slug}/t/{id}/p/{pid}", get(post_object))
        .route("/g/{slug}/t/{id}/p/{pid}/edit", get(edit_page).post(edit_submit))
        .route("/g/{slug}/t/{id}/p/{pid}/delete", post(delete_submit))
        .route("/g/{slug}/t/{id}/p/{pid}/like", post(like_submit))
        .route("/tags/{tag}", get(tag_page))
        .route("/latest", get(latest_page))
        .route("/api/v1/threads", get(api_latest))
        .route(
            "/api/v1/groups/{slug}/threads",
            get(api_threads).post(api_create_thread),
        )
        .route(
            "/api/v1/threads/{id}",
            get(api_thread).patch(api_edit_thread).delete(api_delete_thread),
        )
        .route("/api/v1/threads/{id}/replies", post(api_reply))
        .route("/api/v1/threads/{id}/like", post(api_like).delete(api_unlike))
        .route("/api/v1/threads/{id}/moderation", post(api_moderate))
        .route(
            "/api/v1/replies/{id}",
            axum::routing::patch(api_edit_reply).delete(api_delete_reply),
        )
}

// ---- shared ------------------------------------------------------------------------------

async fn load_group(state: &AppState, slug: &str, user: Option<&User>) -> AppResult<(Group, Access)> {
    let (slug, user) = (slug.to_owned(), user.cloned());
    Ok(state
        .db()
        .run(move |c| crate::groups::rules::visible(c, &slug, user.as_ref()))
        .await?)
}

/// The thread `id` with its group, as `user` may see it.
async fn load_thread(state: &AppState, id: i64, user: Option<&User>) -> AppResult<(Group, Access, Thread)> {
    let user = user.cloned();
    Ok(state
        .db()
        .run(move |c| -> Result<_, Error> {
            let thread = Thread::find(c, id)?.ok_or(Error::ThreadNotFound)?;
            let group = Group::find(c, thread.group_id)?.ok_or(Error::ThreadNotFound)?;
            let access = crate::groups::rules::access(c, &group, user.as_ref())?;
            if !access.can_read() {
                return Err(Error::ThreadNotFound);
            }
            Ok((group, access, thread))
        })
        .await?)
}

async fn load_in(
    state: &AppState,
    slug: &str,
    id: i64,
    user: Option<&User>,
) -> AppResult<(Group, Access, Thread)> {
    let (group, access, thread) = load_thread(state, id, user).await?;
    if group.slug != slug {
        return Err(Error::ThreadNotFound.into());
    }
    Ok((group, access, thread))
}

/// Resolves the mentions in `source`: local users and groups from the database, remote
/// accounts by WebFinger (bounded like every fetch). Unresolvable ones stay plain text.
pub async fn resolve_mentions(state: &AppState, source: &str) -> Vec<Resolved> {
    let urls = Urls::new(state.config());
    let host = urls.host().to_ascii_lowercase();
    let mut out = Vec::new();
    for m in crate::text::mentions(source).into_iter().take(20) {
        let local = m.host.as_deref().is_none_or(|h| h == host);
        if local {
            let name = m.name.clone();
            let found = state
                .db()
                .run(move |c| -> Result<Option<(Option<i64>, bool)>, db::Error> {
                    if let Some(u) = User::by_username(c, &name)? {
                        return Ok((u.status() == Status::Active).then_some((Some(u.id), true)));
                    }
                    Ok(Group::by_slug(c, &name)?
                        .filter(Group::federates)
                        .map(|_| (None, false)))
                })
                .await
                .ok()
                .flatten();
            if let Some((uid, is_user)) = found {
                out.push(Resolved {
                    handle: m.handle(),
                    actor: if is_user {
                        urls.user(&m.name)
                    } else {
                        urls.group(&m.name)
                    },
                    inbox: None,
                    local_user: uid,
                });
            }
            continue;
        }
        let account = format!("{}@{}", m.name, m.host.clone().unwrap_or_default());
        let Ok(id) =
            crate::federation::webfinger::lookup(state.fetch(), state.config().federation.debug, &account)
                .await
        else {
            continue;
        };
        let Ok(signer) = crate::federation::inbox::instance_signer(state).await else {
            continue;
        };
        if let Ok(actor) =
            crate::federation::remote::resolve(state.db(), state.fetch(), Some(&signer), &id, false).await
        {
            out.push(Resolved {
                handle: m.handle(),
                actor: actor.ap_id.clone(),
                inbox: actor.delivery_inbox().map(str::to_owned),
                local_user: None,
            });
        }
    }
    out
}

fn vary(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// A post as a page shows it.
pub struct PostView {
    pub post: Post,
    pub author: Author,
    pub depth: i32,
    pub mine: bool,
    pub liked: bool,
    /// The author of the post this one answers (replies only): the reading order shows nesting
    /// by indentation, this says it in words.
    pub in_reply_to: Option<String>,
}

/// The thread's posts in reading order: each reply after its parent, depth first, oldest first.
fn ordered(posts: Vec<Post>) -> Vec<Post> {
    let mut children: std::collections::HashMap<Option<i64>, Vec<Post>> = std::collections::HashMap::new();
    for p in posts {
        children.entry(p.parent_id).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut stack: Vec<Post> = children
        .remove(&None)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .collect();
    while let Some(p) = stack.pop() {
        if let Some(kids) = children.remove(&Some(p.id)) {
            stack.extend(kids.into_iter().rev());
        }
        out.push(p);
    }
    // Orphans (a parent that is missing) are shown at the end rather than lost.
    for (_, rest) in children {
        out.extend(rest);
    }
    out
}

// ---- pages -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "threads/templates/thread.html")]
struct ThreadTemplate {
    page: Page,
    group: Group,
    access: Access,
    thread: Thread,
    posts: Vec<PostView>,
    form: FormState,
    reply_to: Option<i64>,
}

/// `/g/{slug}/t/{id}`: the opening Note for ActivityPub clients (410 Tombstone when deleted),
/// the thread page for browsers.
async fn thread_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
    Path((slug, id)): Path<(String, i64)>,
) -> AppResult<Response> {
    let user = auth.map(|a| a.user);
    let urls = Urls::new(state.config());
    if negotiate::wants_activity_json(&headers) {
        let (group, _, thread) = load_in(&state, &slug, id, None).await?;
        return object_response(&state, &urls, group, thread, None).await;
    }
    let (group, access, thread) = load_in(&state, &slug, id, user.as_ref()).await?;
    if thread.is_gone() {
        return Err(AppError::new(StatusCode::GONE, "gone", "error-post-gone"));
    }
    render_thread(&state, page, user, group, access, thread, FormState::new(), None).await
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page needs all of it; a struct would only rename the list"
)]
async fn render_thread(
    state: &AppState,
    page: Page,
    user: Option<User>,
    group: Group,
    access: Access,
    thread: Thread,
    form: FormState,
    reply_to: Option<i64>,
) -> AppResult<Response> {
    let urls = Urls::new(state.config());
    let tid = thread.id;
    let base = urls.base().to_owned();
    let me = user.as_ref().map(|u| (u.id, urls.user(&u.username)));
    let posts = state
        .db()
        .run(move |c| -> Result<Vec<PostView>, db::Error> {
            use crate::db::schema::likes;
            use diesel::prelude::*;
            let posts = ordered(Post::of_thread(c, tid)?);
            let authors = model::authors(c, &posts, &base)?;
            let liked: std::collections::HashSet<i64> = match &me {
                Some((_, actor)) => likes::table
                    .filter(likes::actor.eq(actor))
                    .filter(likes::post_id.eq_any(posts.iter().map(|p| p.id).collect::<Vec<_>>()))
                    .select(likes::post_id)
                    .load::<i64>(c)?
                    .into_iter()
                    .collect(),
                None => Default::default(),
            };
            let names: std::collections::HashMap<i64, String> = posts
                .iter()
                .filter_map(|p| authors.get(&p.id).map(|a| (p.id, a.name.clone())))
                .collect();
            Ok(posts
                .into_iter()
                .map(|p| PostView {
                    in_reply_to: p.parent_id.and_then(|id| names.get(&id).cloned()),
                    author: authors.get(&p.id).cloned().unwrap_or(Author {
                        name: "—".into(),
                        handle: String::new(),
                        url: String::new(),
                        instance: None,
                        user_id: None,
                    }),
                    depth: p.depth,
                    mine: me.as_ref().is_some_and(|(id, _)| p.author_user_id == Some(*id)),
                    liked: liked.contains(&p.id),
                    post: p,
                })
                .collect())
        })
        .await?;
    Ok(vary(render(&ThreadTemplate {
        page,
        group,
        access,
        thread,
        posts,
        form,
        reply_to,
    })))
}

/// The Note of `post` (default: the opening post) or its Tombstone.
async fn object_response(
    state: &AppState,
    urls: &Urls,
    group: Group,
    thread: Thread,
    post_id: Option<i64>,
) -> AppResult<Response> {
    let u = urls.clone();
    let doc = state
        .db()
        .run(move |c| -> Result<(bool, Value), Error> {
            let post = match post_id {
                Some(pid) => {
                    Post::find(c, pid)?.filter(|p| p.thread_id == thread.id && p.parent_id.is_some())
                }
                None => Post::opening(c, thread.id)?,
            }
            .ok_or(Error::ThreadNotFound)?;
            let id = fed::post_id(&u, &group.slug, &post);
            let gone_at = post
                .deleted_at
                .or(post.removed_at)
                .or(if post.parent_id.is_none() {
                    thread.deleted_at.or(thread.removed_at)
                } else {
                    None
                });
            if let Some(at) = gone_at {
                return Ok((true, fed::tombstone(&id, &at)));
            }
            Ok((
                false,
                fed::document(rules::note_of(c, &u, &group, &thread, &post)?),
            ))
        })
        .await?;
    let (gone, doc) = doc;
    let mut response = crate::federation::routes::activity_json(doc);
    if gone {
        *response.status_mut() = StatusCode::GONE;
    }
    Ok(vary(response))
}

/// `/g/{slug}/t/{id}/p/{pid}`: a reply's Note, or the thread page at the reply for browsers.
async fn post_object(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((slug, id, pid)): Path<(String, i64, i64)>,
) -> AppResult<Response> {
    let (group, _, thread) = load_in(&state, &slug, id, None).await?;
    if negotiate::wants_activity_json(&headers) {
        let urls = Urls::new(state.config());
        return object_response(&state, &urls, group, thread, Some(pid)).await;
    }
    Ok(vary(
        Redirect::to(&format!("/g/{slug}/t/{id}#p{pid}")).into_response(),
    ))
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    page: Option<i64>,
}

async fn context_collection(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    Query(q): Query<PageQuery>,
) -> AppResult<Response> {
    let (group, _, thread) = load_in(&state, &slug, id, None).await?;
    let urls = Urls::new(state.config());
    let u = urls.clone();
    let items = state
        .db()
        .run(move |c| -> Result<Vec<String>, db::Error> {
            Ok(Post::of_thread(c, thread.id)?
                .iter()
                .filter(|p| !p.is_gone())
                .map(|p| fed::post_id(&u, &group.slug, p))
                .collect())
        })
        .await?;
    let page = q.page.filter(|p| (1..=10_000).contains(p));
    let id = format!("{}/t/{id}/context", urls.group(&slug));
    Ok(crate::federation::routes::activity_json(fed::context_collection(
        &id, items, page,
    )))
}

#[derive(Template)]
#[template(path = "threads/templates/new.html")]
struct NewThreadTemplate {
    page: Page,
    group: Group,
    form: FormState,
}

async fn new_thread_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<Response> {
    let (group, access) = load_group(&state, &slug, Some(&auth.user)).await?;
    if !access.can_start_thread(&group) {
        return Err(Error::Forbidden("error-thread-forbidden").into());
    }
    Ok(render(&NewThreadTemplate {
        page,
        group,
        form: FormState::new(),
    }))
}

#[derive(Debug, Deserialize)]
struct ThreadForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

fn field_error(page: &Page, e: &Error, mut values: FormState) -> FormState {
    let (key, args) = e.message_key();
    let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match e {
        Error::Invalid { field, .. } => values.error(page.lang, field, key, &args),
        _ => values.general = Some(crate::web::i18n::translate(page.lang, key, &args)),
    }
    values
}

async fn new_thread_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    CsrfForm(form): CsrfForm<ThreadForm>,
) -> AppResult<Response> {
    let (group, access) = load_group(&state, &slug, Some(&auth.user)).await?;
    let mentions = resolve_mentions(&state, &form.body).await;
    let urls = Urls::new(state.config());
    let (g, a, u) = (group.clone(), access.clone(), auth.user.clone());
    let (title, body) = (form.title.clone(), form.body.clone());
    let result = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &urls,
                group: &g,
                access: &a,
            };
            rules::create_thread(c, &scope, &u, &title, &body, &mentions)
        })
        .await;
    match result {
        Ok((thread, _)) => {
            state.wake_delivery();
            Ok(Redirect::to(&format!("/g/{}/t/{}", group.slug, thread.id)).into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let values = FormState::new()
                .with_value("title", form.title)
                .with_value("body", form.body);
            let form = field_error(&page, &e, values);
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                render(&NewThreadTemplate { page, group, form }),
            )
                .into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
struct ReplyForm {
    #[serde(default)]
    body: String,
    parent: Option<String>,
}

async fn reply_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path((slug, id)): Path<(String, i64)>,
    CsrfForm(form): CsrfForm<ReplyForm>,
) -> AppResult<Response> {
    let (group, access, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let parent = form.parent.as_deref().and_then(|p| p.parse::<i64>().ok());
    let mentions = resolve_mentions(&state, &form.body).await;
    let urls = Urls::new(state.config());
    let (g, a, t, u, body) = (
        group.clone(),
        access.clone(),
        thread.clone(),
        auth.user.clone(),
        form.body.clone(),
    );
    let result = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &urls,
                group: &g,
                access: &a,
            };
            rules::reply(c, &scope, &t, parent, &u, &body, &mentions)
        })
        .await;
    match result {
        Ok(post) => {
            state.wake_delivery();
            Ok(Redirect::to(&format!("/g/{}/t/{}#p{}", group.slug, thread.id, post.id)).into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let values = FormState::new().with_value("body", form.body);
            let form = field_error(&page, &e, values);
            let response =
                render_thread(&state, page, Some(auth.user), group, access, thread, form, parent).await?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, response).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "threads/templates/edit.html")]
struct EditTemplate {
    page: Page,
    group: Group,
    thread: Thread,
    post: Post,
    form: FormState,
}

async fn load_post(state: &AppState, thread: &Thread, pid: i64) -> AppResult<Post> {
    let tid = thread.id;
    Ok(state
        .db()
        .run(move |c| -> Result<Post, Error> {
            Post::find(c, pid)?
                .filter(|p| p.thread_id == tid)
                .ok_or(Error::ThreadNotFound)
        })
        .await?)
}

async fn edit_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path((slug, id, pid)): Path<(String, i64, i64)>,
) -> AppResult<Response> {
    let (group, _, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let post = load_post(&state, &thread, pid).await?;
    if post.author_user_id != Some(auth.user.id) {
        return Err(Error::Forbidden("error-edit-forbidden").into());
    }
    let form = FormState::new()
        .with_value("title", thread.title.clone())
        .with_value("body", post.source.clone().unwrap_or_default());
    Ok(render(&EditTemplate {
        page,
        group,
        thread,
        post,
        form,
    }))
}

async fn edit_submit(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path((slug, id, pid)): Path<(String, i64, i64)>,
    CsrfForm(form): CsrfForm<ThreadForm>,
) -> AppResult<Response> {
    let (group, access, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let post = load_post(&state, &thread, pid).await?;
    let mentions = resolve_mentions(&state, &form.body).await;
    let urls = Urls::new(state.config());
    let (g, t, p, u) = (group.clone(), thread.clone(), post.clone(), auth.user.clone());
    let (title, body) = (form.title.clone(), form.body.clone());
    let result = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &urls,
                group: &g,
                access: &access,
            };
            let draft = Draft {
                title: Some(&title),
                body: &body,
                mentions: &mentions,
            };
            rules::edit(c, &scope, &t, &p, &u, &draft)
        })
        .await;
    match result {
        Ok(updated) => {
            state.wake_delivery();
            Ok(Redirect::to(&format!("/g/{}/t/{}#p{}", group.slug, thread.id, updated.id)).into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let values = FormState::new()
                .with_value("title", form.title)
                .with_value("body", form.body);
            let form = field_error(&page, &e, values);
            let view = EditTemplate {
                page,
                group,
                thread,
                post,
                form,
            };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, render(&view)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn delete_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, pid)): Path<(String, i64, i64)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let (group, _, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let post = load_post(&state, &thread, pid).await?;
    let urls = Urls::new(state.config());
    let (g, t, p, u) = (group.clone(), thread.clone(), post.clone(), auth.user.clone());
    state
        .db()
        .run(move |c| rules::delete(c, &urls, &g, &t, &p, &u))
        .await?;
    state.wake_delivery();
    let to = if post.parent_id.is_none() {
        format!("/g/{}", group.slug)
    } else {
        format!("/g/{}/t/{}", group.slug, thread.id)
    };
    Ok(Redirect::to(&to).into_response())
}

async fn like_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id, pid)): Path<(String, i64, i64)>,
    CsrfForm(_): CsrfForm<NoFields>,
) -> AppResult<Response> {
    let (group, _, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let post = load_post(&state, &thread, pid).await?;
    let urls = Urls::new(state.config());
    let user = auth.user.clone();
    state
        .db()
        .run(move |c| -> Result<i32, Error> {
            use crate::db::schema::likes;
            use diesel::prelude::*;
            let actor = urls.user(&user.username);
            let liked: i64 = likes::table
                .filter(likes::post_id.eq(post.id))
                .filter(likes::actor.eq(&actor))
                .count()
                .get_result(c)?;
            rules::like(c, &urls, &post, &user, liked == 0)
        })
        .await?;
    state.wake_delivery();
    Ok(Redirect::to(&format!("/g/{}/t/{}#p{pid}", group.slug, thread.id)).into_response())
}

#[derive(Debug, Deserialize)]
struct ModerateForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
    post: Option<String>,
}

async fn moderate_submit(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path((slug, id)): Path<(String, i64)>,
    CsrfForm(form): CsrfForm<ModerateForm>,
) -> AppResult<Response> {
    let (group, access, thread) = load_in(&state, &slug, id, Some(&auth.user)).await?;
    let post = form.post.as_deref().and_then(|p| p.parse::<i64>().ok());
    let action = Moderation::parse(&form.action, post)
        .ok_or_else(|| AppError::bad_request("unknown_action", "error-moderation-action"))?;
    moderate(
        &state,
        &auth.user,
        group.clone(),
        access,
        thread.clone(),
        action,
        &form.reason,
    )
    .await?;
    let to = if action == Moderation::Remove {
        format!("/g/{}", group.slug)
    } else {
        format!("/g/{}/t/{}", group.slug, thread.id)
    };
    Ok(Redirect::to(&to).into_response())
}

async fn moderate(
    state: &AppState,
    user: &User,
    group: Group,
    access: Access,
    thread: Thread,
    action: Moderation,
    reason: &str,
) -> AppResult<()> {
    let urls = Urls::new(state.config());
    let (u, reason) = (user.clone(), reason.to_owned());
    state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &urls,
                group: &group,
                access: &access,
            };
            rules::moderate(c, &scope, &thread, action, &reason, &u)
        })
        .await?;
    state.wake_delivery();
    Ok(())
}

#[derive(Template)]
#[template(path = "threads/templates/log.html")]
struct LogTemplate {
    page: Page,
    group: Group,
    entries: Vec<(model::LogEntry, Option<String>)>,
}

async fn log_page(
    State(state): State<AppState>,
    page: Page,
    Auth(auth): Auth,
    Path(slug): Path<String>,
) -> AppResult<Response> {
    let (group, access) = load_group(&state, &slug, Some(&auth.user)).await?;
    if !access.can(Permission::Moderate) {
        return Err(Error::Forbidden("error-group-moderate").into());
    }
    let gid = group.id;
    let entries = state
        .db()
        .run(move |c| model::log_of(c, gid, 200).map_err(db::Error::from))
        .await?;
    Ok(render(&LogTemplate { page, group, entries }))
}

/// What an instance-wide list may show `user`: public groups, their internal ones, or all.
async fn readable(state: &AppState, user: Option<&User>) -> AppResult<model::Readable> {
    let Some(user) = user else {
        return Ok(model::Readable::PublicAnd(Vec::new()));
    };
    if user.is_admin() {
        return Ok(model::Readable::All);
    }
    let uid = user.id;
    let ids = state
        .db()
        .run(move |c| crate::groups::model::group_ids_of(c, uid).map_err(db::Error::from))
        .await?;
    Ok(model::Readable::PublicAnd(ids))
}

/// One page of the latest activity and the cursor of the next.
async fn latest_threads(
    state: &AppState,
    user: Option<&User>,
    before: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<(Thread, String, String)>, Option<String>)> {
    let before = match before {
        Some(c) => Some(
            crate::groups::routes::parse_thread_cursor(c)
                .ok_or_else(|| AppError::bad_request("bad_cursor", "error-bad-cursor"))?,
        ),
        None => None,
    };
    let readable = readable(state, user).await?;
    let mut list = state
        .db()
        .run(move |c| model::latest(c, &readable, before, limit + 1).map_err(db::Error::from))
        .await?;
    let more = list.len() > usize::try_from(limit).unwrap_or(0);
    list.truncate(usize::try_from(limit).unwrap_or(0));
    let next = more
        .then(|| {
            list.last()
                .map(|(t, _, _)| crate::groups::routes::thread_cursor(t))
        })
        .flatten();
    Ok((list, next))
}

#[derive(Template)]
#[template(path = "threads/templates/latest.html")]
struct LatestTemplate {
    page: Page,
    items: Vec<(Thread, String, String)>,
    next: Option<String>,
    later: bool,
}

/// `/latest`: what is being discussed across the groups the visitor may read.
async fn latest_page(
    State(state): State<AppState>,
    page: Page,
    MaybeAuth(auth): MaybeAuth,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let user = auth.map(|a| a.user);
    let (items, next) = latest_threads(&state, user.as_ref(), q.before.as_deref(), PAGE).await?;
    Ok(render(&LatestTemplate {
        page,
        items,
        next,
        later: q.before.is_some(),
    }))
}

/// `GET /api/v1/threads`: the latest activity across groups, keyset-paged.
async fn api_latest(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Query(q): Query<ListQuery>,
) -> AppResult<axum::Json<Value>> {
    let user = auth.map(|a| a.user);
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 100);
    let (items, next) = latest_threads(&state, user.as_ref(), q.before.as_deref(), limit).await?;
    let urls = Urls::new(state.config());
    let items: Vec<Value> = items
        .iter()
        .map(|(t, slug, title)| {
            let url = fed::thread_url(&urls, slug, t.id);
            json!({
                "id": t.id,
                "group": slug,
                "group_title": title,
                "title": t.title,
                "url": url,
                "pinned": t.pinned_at.is_some(),
                "locked": t.locked_at.is_some(),
                "reply_count": t.reply_count,
                "created_at": crate::federation::actors::rfc3339(&t.created_at),
                "last_activity_at": crate::federation::actors::rfc3339(&t.last_activity_at),
            })
        })
        .collect();
    Ok(axum::Json(json!({ "items": items, "next": next })))
}

#[derive(Template)]
#[template(path = "threads/templates/tag.html")]
struct TagTemplate {
    page: Page,
    tag: String,
    items: Vec<(Post, Thread, String)>,
}

async fn tag_page(State(state): State<AppState>, page: Page, Path(tag): Path<String>) -> AppResult<Response> {
    let tag: String = tag
        .trim_start_matches('#')
        .to_lowercase()
        .chars()
        .take(100)
        .collect();
    let t = tag.clone();
    let items = state
        .db()
        .run(move |c| model::tagged(c, &t, 50).map_err(db::Error::from))
        .await?;
    Ok(render(&TagTemplate { page, tag, items }))
}

// ---- API ---------------------------------------------------------------------------------

fn thread_json(urls: &Urls, group: &Group, t: &Thread) -> Value {
    let url = fed::thread_url(urls, &group.slug, t.id);
    json!({
        "id": t.id,
        "group": group.slug,
        "title": t.title,
        "url": url,
        "ap_id": group.is_public().then(|| url.clone()),
        "pinned": t.pinned_at.is_some(),
        "locked": t.locked_at.is_some(),
        "reply_count": t.reply_count,
        "created_at": crate::federation::actors::rfc3339(&t.created_at),
        "last_activity_at": crate::federation::actors::rfc3339(&t.last_activity_at),
    })
}

/// A post as the API shows it after a write, with its author.
async fn written_post_json(state: &AppState, urls: &Urls, group: &Group, p: &Post) -> AppResult<Value> {
    let base = urls.base().to_owned();
    let post = p.clone();
    let authors = state
        .db()
        .run(move |c| model::authors(c, std::slice::from_ref(&post), &base).map_err(db::Error::from))
        .await?;
    Ok(post_json(urls, group, p, authors.get(&p.id)))
}

fn post_json(urls: &Urls, group: &Group, p: &Post, author: Option<&Author>) -> Value {
    let gone = p.is_gone();
    json!({
        "id": p.id,
        "thread_id": p.thread_id,
        "in_reply_to": p.parent_id,
        "ap_id": fed::post_id(urls, &group.slug, p),
        "author": author,
        "body": if gone { None } else { p.source.clone() },
        "content_html": if gone { String::new() } else { p.content_html.clone() },
        "depth": p.depth,
        "like_count": p.like_count,
        "published_at": crate::federation::actors::rfc3339(&p.published_at),
        "updated_at": p.updated_at.as_ref().map(crate::federation::actors::rfc3339),
        "deleted": p.deleted_at.is_some(),
        "removed": p.removed_at.is_some(),
    })
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    /// The `next` cursor of the previous page.
    before: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/v1/groups/{slug}/threads`: pinned threads (first page only), then keyset pages.
async fn api_threads(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Path(slug): Path<String>,
    Query(q): Query<ListQuery>,
) -> AppResult<axum::Json<Value>> {
    let user = auth.map(|a| a.user);
    let (group, _) = load_group(&state, &slug, user.as_ref()).await?;
    let before = match q.before.as_deref() {
        Some(c) => Some(
            crate::groups::routes::parse_thread_cursor(c)
                .ok_or_else(|| AppError::bad_request("bad_cursor", "error-bad-cursor"))?,
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, 100);
    let gid = group.id;
    let (pinned, list) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            let pinned = if before.is_none() {
                model::pinned(c, gid)?
            } else {
                Vec::new()
            };
            Ok((pinned, model::page(c, gid, before, limit + 1)?))
        })
        .await?;
    let urls = Urls::new(state.config());
    let more = i64::try_from(list.len()).unwrap_or(0) > limit;
    let list: Vec<Thread> = list
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(25))
        .collect();
    let next = more
        .then(|| list.last().map(crate::groups::routes::thread_cursor))
        .flatten();
    Ok(axum::Json(json!({
        "pinned": pinned.iter().map(|t| thread_json(&urls, &group, t)).collect::<Vec<_>>(),
        "items": list.iter().map(|t| thread_json(&urls, &group, t)).collect::<Vec<_>>(),
        "next": next,
    })))
}

#[derive(Debug, Deserialize)]
struct CreateThread {
    title: String,
    body: String,
}

async fn api_create_thread(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<CreateThread>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let (group, access) = load_group(&state, &slug, Some(&auth.user)).await?;
    let mentions = resolve_mentions(&state, &req.body).await;
    let urls = Urls::new(state.config());
    let (g, u, uu) = (group.clone(), auth.user.clone(), urls.clone());
    let (thread, post) = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &uu,
                group: &g,
                access: &access,
            };
            rules::create_thread(c, &scope, &u, &req.title, &req.body, &mentions)
        })
        .await?;
    state.wake_delivery();
    let mut v = thread_json(&urls, &group, &thread);
    v["post"] = written_post_json(&state, &urls, &group, &post).await?;
    Ok((StatusCode::CREATED, axum::Json(v)))
}

async fn api_thread(
    State(state): State<AppState>,
    MaybeAuth(auth): MaybeAuth,
    Path(id): Path<i64>,
) -> AppResult<axum::Json<Value>> {
    let user = auth.map(|a| a.user);
    let (group, _, thread) = load_thread(&state, id, user.as_ref()).await?;
    if thread.is_gone() {
        return Err(Error::Gone.into());
    }
    let urls = Urls::new(state.config());
    let base = urls.base().to_owned();
    let tid = thread.id;
    let (posts, authors) = state
        .db()
        .run(move |c| -> Result<_, db::Error> {
            let posts = ordered(Post::of_thread(c, tid)?);
            let authors = model::authors(c, &posts, &base)?;
            Ok((posts, authors))
        })
        .await?;
    let mut v = thread_json(&urls, &group, &thread);
    v["posts"] = json!(
        posts
            .iter()
            .map(|p| post_json(&urls, &group, p, authors.get(&p.id)))
            .collect::<Vec<_>>()
    );
    Ok(axum::Json(v))
}

#[derive(Debug, Deserialize)]
struct EditRequest {
    title: Option<String>,
    /// Left out: the body stays as it is (e.g. only the title changes).
    body: Option<String>,
}

async fn api_edit(
    state: &AppState,
    user: &User,
    thread_id: i64,
    post_id: Option<i64>,
    req: EditRequest,
) -> AppResult<Value> {
    let (group, access, thread) = load_thread(state, thread_id, Some(user)).await?;
    let post = match post_id {
        Some(pid) => load_post(state, &thread, pid).await?,
        None => {
            let tid = thread.id;
            state
                .db()
                .run(move |c| Post::opening(c, tid)?.ok_or(Error::ThreadNotFound))
                .await?
        }
    };
    let body = req
        .body
        .clone()
        .unwrap_or_else(|| post.source.clone().unwrap_or_default());
    let mentions = resolve_mentions(state, &body).await;
    let urls = Urls::new(state.config());
    let (g, t, u, uu) = (group.clone(), thread.clone(), user.clone(), urls.clone());
    let updated = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &uu,
                group: &g,
                access: &access,
            };
            let draft = Draft {
                title: req.title.as_deref(),
                body: &body,
                mentions: &mentions,
            };
            rules::edit(c, &scope, &t, &post, &u, &draft)
        })
        .await?;
    state.wake_delivery();
    written_post_json(state, &urls, &group, &updated).await
}

async fn api_edit_thread(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<EditRequest>,
) -> AppResult<axum::Json<Value>> {
    Ok(axum::Json(api_edit(&state, &auth.user, id, None, req).await?))
}

/// A reply by id, with its thread.
async fn reply_by_id(state: &AppState, user: &User, id: i64) -> AppResult<(Group, Access, Thread, Post)> {
    let post = state
        .db()
        .run(move |c| {
            Post::find(c, id)?
                .filter(|p| p.parent_id.is_some())
                .ok_or(Error::ThreadNotFound)
        })
        .await?;
    let (group, access, thread) = load_thread(state, post.thread_id, Some(user)).await?;
    Ok((group, access, thread, post))
}

async fn api_edit_reply(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
    ApiJson(mut req): ApiJson<EditRequest>,
) -> AppResult<axum::Json<Value>> {
    let (_, _, thread, post) = reply_by_id(&state, &auth.user, id).await?;
    req.title = None;
    Ok(axum::Json(
        api_edit(&state, &auth.user, thread.id, Some(post.id), req).await?,
    ))
}

async fn api_delete(
    state: &AppState,
    user: &User,
    group: Group,
    thread: Thread,
    post: Post,
) -> AppResult<StatusCode> {
    let urls = Urls::new(state.config());
    let u = user.clone();
    state
        .db()
        .run(move |c| rules::delete(c, &urls, &group, &thread, &post, &u))
        .await?;
    state.wake_delivery();
    Ok(StatusCode::NO_CONTENT)
}

async fn api_delete_thread(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let (group, _, thread) = load_thread(&state, id, Some(&auth.user)).await?;
    let tid = thread.id;
    let post = state
        .db()
        .run(move |c| Post::opening(c, tid)?.ok_or(Error::ThreadNotFound))
        .await?;
    api_delete(&state, &auth.user, group, thread, post).await
}

async fn api_delete_reply(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
) -> AppResult<StatusCode> {
    let (group, _, thread, post) = reply_by_id(&state, &auth.user, id).await?;
    api_delete(&state, &auth.user, group, thread, post).await
}

#[derive(Debug, Deserialize)]
struct ReplyRequest {
    body: String,
    in_reply_to: Option<i64>,
}

async fn api_reply(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ReplyRequest>,
) -> AppResult<(StatusCode, axum::Json<Value>)> {
    let (group, access, thread) = load_thread(&state, id, Some(&auth.user)).await?;
    let mentions = resolve_mentions(&state, &req.body).await;
    let urls = Urls::new(state.config());
    let (g, u, uu) = (group.clone(), auth.user.clone(), urls.clone());
    let post = state
        .db()
        .run(move |c| {
            let scope = Scope {
                urls: &uu,
                group: &g,
                access: &access,
            };
            rules::reply(c, &scope, &thread, req.in_reply_to, &u, &req.body, &mentions)
        })
        .await?;
    state.wake_delivery();
    Ok((
        StatusCode::CREATED,
        axum::Json(written_post_json(&state, &urls, &group, &post).await?),
    ))
}

async fn api_like_set(state: &AppState, user: &User, id: i64, on: bool) -> AppResult<axum::Json<Value>> {
    let (_, _, thread) = load_thread(state, id, Some(user)).await?;
    let tid = thread.id;
    let urls = Urls::new(state.config());
    let u = user.clone();
    let count = state
        .db()
        .run(move |c| {
            let post = Post::opening(c, tid)?.ok_or(Error::ThreadNotFound)?;
            rules::like(c, &urls, &post, &u, on)
        })
        .await?;
    state.wake_delivery();
    Ok(axum::Json(json!({ "like_count": count, "liked": on })))
}

async fn api_like(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
) -> AppResult<axum::Json<Value>> {
    api_like_set(&state, &auth.user, id, true).await
}

async fn api_unlike(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
) -> AppResult<axum::Json<Value>> {
    api_like_set(&state, &auth.user, id, false).await
}

#[derive(Debug, Deserialize)]
struct ModerationRequest {
    action: String,
    #[serde(default)]
    reason: String,
    post: Option<i64>,
}

async fn api_moderate(
    State(state): State<AppState>,
    Auth(auth): Auth,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<ModerationRequest>,
) -> AppResult<StatusCode> {
    let (group, access, thread) = load_thread(&state, id, Some(&auth.user)).await?;
    let action = Moderation::parse(&req.action, req.post)
        .ok_or_else(|| AppError::bad_request("unknown_action", "error-moderation-action"))?;
    moderate(&state, &auth.user, group, access, thread, action, &req.reason).await?;
    Ok(StatusCode::NO_CONTENT)
}
