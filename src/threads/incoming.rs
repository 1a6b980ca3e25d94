//! Threads and replies from other servers (called by the inbox once the signature is verified).
//!
//! - `Create{Note|Page|Article}` whose `inReplyTo` chain (at most [`MAX_CHAIN`] fetches) ends in
//!   one of our threads becomes a reply, whatever its addressing (Mastodon addresses replies to
//!   the parent's author, not the group), and the group announces it. Non-public replies are
//!   refused with a reason and never shown; so are replies to locked threads.
//! - A `Create` that is not a reply and is addressed to or mentions one of our public groups
//!   becomes a new thread when the group allows remote threads (title from `name`, else the first
//!   line without the leading mention). A foreign `audience` or `context` is a hint, not a reason
//!   to refuse.
//! - `Update` and `Delete` are accepted from the object's author only.
//! - `Like` / `Undo{Like}` are counted once per actor.

use axum::http::StatusCode;
use diesel::prelude::*;
use serde_json::{Value, json};
use url::Url;

use super::federation as fed;
use super::model::{Post, Thread};
use crate::db::schema::{posts, threads};
use crate::db::{self, DbConn, write_tx};
use crate::federation::protocol::{self, Document, RemoteObject};
use crate::federation::{Urls, remote};
use crate::groups::Group;
use crate::state::AppState;

/// How many unknown parents are fetched to find out whether a reply belongs to us.
pub const MAX_CHAIN: usize = 5;

const TITLE_MAX: usize = 120;

/// What became of an incoming activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied, or not ours (ignored): 202.
    Done,
    /// Refused with a status and an English sentence for the sender.
    Refused(StatusCode, &'static str),
}

/// A post of ours that a URL names: `{base}/g/{slug}/t/{thread}` or `…/p/{post}`.
fn local_post(conn: &mut DbConn, urls: &Urls, url: &str) -> QueryResult<Option<(Group, Thread, Post)>> {
    let Some(rest) = url.strip_prefix(&format!("{}/g/", urls.base())) else {
        // A remote post we stored.
        let Some(post) = posts::table
            .filter(posts::ap_id.eq(url))
            .select(Post::as_select())
            .first(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let Some(thread) = Thread::find(conn, post.thread_id)? else {
            return Ok(None);
        };
        return Ok(Group::find(conn, thread.group_id)?.map(|g| (g, thread, post)));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let (slug, tid, pid) = match parts.as_slice() {
        [slug, "t", tid] => (*slug, tid.parse::<i64>().ok(), None),
        [slug, "t", tid, "p", pid] => (*slug, tid.parse::<i64>().ok(), pid.parse::<i64>().ok()),
        _ => return Ok(None),
    };
    let Some(tid) = tid else { return Ok(None) };
    let Some(group) = Group::by_slug(conn, slug)? else {
        return Ok(None);
    };
    let Some(thread) = Thread::find(conn, tid)?.filter(|t| t.group_id == group.id) else {
        return Ok(None);
    };
    let post = match pid {
        Some(pid) => Post::find(conn, pid)?.filter(|p| p.thread_id == thread.id && p.ap_id.is_none()),
        None => Post::opening(conn, thread.id)?,
    };
    Ok(post.map(|p| (group, thread, p)))
}

/// Records the activity as received and does nothing else (it is not for us, or not usable).
async fn just_record(
    state: &AppState,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    state
        .db()
        .run(move |c| {
            write_tx(c, record)
                .map(|_| Outcome::Done)
                .map_err(db::Error::from)
        })
        .await
}

/// The object of a Create/Update: embedded, or fetched when only referenced.
async fn object_of(state: &AppState, activity: &Value) -> Option<RemoteObject> {
    let object = activity.get("object")?;
    let parsed = match object {
        Value::String(id) => {
            let url = Url::parse(id).ok()?;
            let signer = crate::federation::inbox::instance_signer(state).await.ok()?;
            let value = state.fetch().get_json(&url, Some(&signer)).await.ok()?;
            protocol::parse(&value).ok()?
        }
        other => protocol::parse(other).ok()?,
    };
    match parsed {
        Document::Object(o) if matches!(o.kind.as_str(), "Note" | "Page" | "Article" | "Question") => Some(o),
        _ => None,
    }
}

fn parse_time(s: Option<&str>) -> chrono::NaiveDateTime {
    s.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.naive_utc())
        .filter(|d| *d <= db::now())
        .unwrap_or_else(db::now)
}

/// The local public group an object is addressed to or mentions.
fn addressed_group(conn: &mut DbConn, urls: &Urls, o: &RemoteObject) -> QueryResult<Option<Group>> {
    let prefix = format!("{}/g/", urls.base());
    let mut candidates: Vec<String> = o.to.iter().chain(o.cc.iter()).cloned().collect();
    candidates.extend(o.mentions.iter().map(ToString::to_string));
    candidates.extend(o.audience.iter().map(ToString::to_string));
    for c in candidates {
        if let Some(slug) = c.strip_prefix(&prefix).filter(|s| !s.contains('/'))
            && let Some(g) = Group::by_slug(conn, slug)?.filter(Group::federates)
        {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// A thread title from a remote opening post: its `name`, else its first line without a leading
/// mention, shortened.
/// A remote title as we store it: one line, no control or bidirectional characters, shortened.
fn clean_title(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_control() && !crate::text::is_bidi_control(*c))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(TITLE_MAX)
        .collect()
}

pub fn title_of(o: &RemoteObject, slug: &str) -> String {
    if let Some(name) = o.name.as_deref().map(clean_title).filter(|n| !n.is_empty()) {
        return name;
    }
    let line = crate::text::first_line(o.content.as_deref().unwrap_or_default(), 400);
    let mut words: Vec<&str> = line.split_whitespace().collect();
    while words.first().is_some_and(|w| {
        w.starts_with('@') && (w[1..].to_ascii_lowercase().starts_with(slug) || w.contains('@'))
    }) {
        words.remove(0);
    }
    let title = clean_title(&words.join(" "));
    if title.is_empty() { "…".to_owned() } else { title }
}

/// Stores a remote post under `parent` (or as the opening post of `thread` when parent is None).
fn insert_remote(
    conn: &mut DbConn,
    thread: &Thread,
    parent: Option<&Post>,
    author_id: i64,
    o: &RemoteObject,
) -> QueryResult<Option<Post>> {
    let now = db::now();
    let row = (
        posts::thread_id.eq(thread.id),
        posts::parent_id.eq(parent.map(|p| p.id)),
        posts::ap_id.eq(o.id.as_str()),
        posts::url.eq(o.url.as_ref().map(Url::as_str)),
        posts::author_remote_id.eq(author_id),
        posts::source.eq(&o.source_markdown),
        posts::content_html.eq(o.content.clone().unwrap_or_default()),
        posts::depth.eq(parent.map_or(0, |p| (p.depth + 1).min(super::rules::MAX_DEPTH))),
        posts::published_at.eq(parse_time(o.published.as_deref())),
    );
    let inserted: Option<Post> = match conn {
        DbConn::Pg(c) => diesel::insert_into(posts::table)
            .values(row)
            .on_conflict_do_nothing()
            .returning(posts::all_columns)
            .get_result(c)
            .optional()?,
        DbConn::Sqlite(c) => diesel::insert_into(posts::table)
            .values(row)
            .on_conflict_do_nothing()
            .returning(posts::all_columns)
            .get_result(c)
            .optional()?,
    };
    if let Some(post) = &inserted {
        if parent.is_some() {
            diesel::update(threads::table.find(thread.id))
                .set((
                    threads::reply_count.eq(threads::reply_count + 1),
                    threads::last_activity_at.eq(now),
                ))
                .execute(conn)?;
        }
        let mentions: Vec<String> = o.mentions.iter().map(ToString::to_string).collect();
        super::model::set_tags(conn, post.id, &o.hashtags, &mentions)?;
    }
    Ok(inserted)
}

/// Notifies local users the post answers or mentions.
/// Where a remote post landed, for notifications.
struct Landed<'a> {
    group: &'a Group,
    thread: &'a Thread,
    parent: Option<&'a Post>,
    post: &'a Post,
}

fn notify_locals(
    conn: &mut DbConn,
    urls: &Urls,
    at: &Landed<'_>,
    o: &RemoteObject,
    who: &str,
) -> QueryResult<()> {
    use crate::accounts::model::User;
    let (group, thread, parent, post) = (at.group, at.thread, at.parent, at.post);
    let link = format!("/g/{}/t/{}#p{}", group.slug, thread.id, post.id);
    let mut told = Vec::new();
    if let Some(uid) = parent.and_then(|p| p.author_user_id) {
        crate::groups::model::notify(
            conn,
            uid,
            "notification-reply",
            &[("name", who), ("title", &thread.title)],
            &link,
        )?;
        told.push(uid);
    }
    let prefix = format!("{}/u/", urls.base());
    for m in &o.mentions {
        if let Some(name) = m.as_str().strip_prefix(&prefix)
            && let Some(u) = User::by_username(conn, name)?
            && !told.contains(&u.id)
        {
            crate::groups::model::notify(
                conn,
                u.id,
                "notification-mentioned",
                &[("name", who), ("group", &group.title)],
                &link,
            )?;
            told.push(u.id);
        }
    }
    Ok(())
}

/// The group re-distributes a remote activity to its followers (FEP-1b12 `Announce`).
fn announce(conn: &mut DbConn, urls: &Urls, group: &Group, activity: &Value) -> QueryResult<usize> {
    let group_url = urls.group(&group.slug);
    // The sender's own @context stays with the embedded activity: it defines the extension terms
    // (and signatures) it uses, and a JSON-LD reader would lose them under ours.
    let inner = activity.clone();
    let announce = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{group_url}/activities/announce/{:016x}", rand::random::<u64>()),
        "type": "Announce",
        "actor": group_url,
        "to": [fed::PUBLIC],
        "cc": [format!("{group_url}/followers")],
        "audience": group_url,
        "object": inner,
    });
    crate::federation::delivery::send_to_followers(conn, &group.slug, &group.slug, &announce)
}

/// `Create{Note|Page|Article}`.
pub async fn create(
    state: &AppState,
    activity: &Value,
    sender: &remote::CachedActor,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    let Some(object) = object_of(state, activity).await else {
        return just_record(state, record).await;
    };
    // The author is the signer: nobody creates posts in someone else's name.
    if !object.attributed_to.iter().any(|a| a.as_str() == sender.ap_id)
        || object.id.origin()
            != Url::parse(&sender.ap_id)
                .map(|u| u.origin())
                .unwrap_or_else(|_| object.id.origin())
    {
        return Ok(Outcome::Refused(
            StatusCode::FORBIDDEN,
            "The object is not attributed to the activity's actor.",
        ));
    }
    let urls = Urls::new(state.config());
    // Walk up the reply chain until a post we know, fetching at most MAX_CHAIN unknown parents.
    let mut chain: Vec<RemoteObject> = Vec::new();
    let mut cursor = object.in_reply_to.clone();
    let mut anchor = None;
    while let Some(parent) = cursor.take() {
        let (u, p) = (urls.clone(), parent.to_string());
        if let Some(found) = state
            .db()
            .run(move |c| local_post(c, &u, &p).map_err(db::Error::from))
            .await?
        {
            anchor = Some(found);
            break;
        }
        if chain.len() >= MAX_CHAIN
            || parent.origin()
                == Url::parse(urls.base())
                    .map(|u| u.origin())
                    .unwrap_or_else(|_| parent.origin())
        {
            break;
        }
        let Ok(signer) = crate::federation::inbox::instance_signer(state).await else {
            break;
        };
        let Ok(value) = state.fetch().get_json(&parent, Some(&signer)).await else {
            break;
        };
        match protocol::parse(&value) {
            Ok(Document::Object(o)) => {
                cursor = o.in_reply_to.clone();
                chain.push(o);
            }
            _ => break,
        }
    }
    let sender_row = sender.id;
    let who = sender
        .name
        .clone()
        .or_else(|| sender.preferred_username.clone())
        .unwrap_or_else(|| sender.ap_id.clone());
    let raw = activity.clone();
    if let Some((group, thread, parent)) = anchor {
        if !group.is_public() {
            return just_record(state, record).await;
        }
        if !object.is_public() {
            return Ok(Outcome::Refused(
                StatusCode::FORBIDDEN,
                "Replies here are public; this one is not addressed to the public and is not accepted.",
            ));
        }
        if thread.is_gone() || parent.is_gone() {
            return Ok(Outcome::Refused(
                StatusCode::GONE,
                "The post you replied to has been deleted.",
            ));
        }
        if thread.locked_at.is_some() {
            return Ok(Outcome::Refused(
                StatusCode::FORBIDDEN,
                "This discussion is locked; it takes no new replies.",
            ));
        }
        // Intermediate posts fetched on the way (oldest first) need their authors.
        let mut authors = Vec::new();
        for o in chain.iter().rev() {
            let Some(author) = o.attributed_to.first() else {
                break;
            };
            let Ok(signer) = crate::federation::inbox::instance_signer(state).await else {
                break;
            };
            match remote::resolve(state.db(), state.fetch(), Some(&signer), author, false).await {
                Ok(a) => authors.push(a.id),
                Err(_) => break,
            }
        }
        let chain: Vec<RemoteObject> = chain.into_iter().rev().take(authors.len()).collect();
        return state
            .db()
            .run(move |c| {
                write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                    if !record(c)? {
                        return Ok(Outcome::Done);
                    }
                    let mut parent = parent;
                    for (o, author) in chain.iter().zip(authors) {
                        if !o.is_public() {
                            break;
                        }
                        match insert_remote(c, &thread, Some(&parent), author, o)? {
                            Some(p) => parent = p,
                            None => break,
                        }
                    }
                    if let Some(post) = insert_remote(c, &thread, Some(&parent), sender_row, &object)? {
                        notify_locals(
                            c,
                            &urls,
                            &Landed {
                                group: &group,
                                thread: &thread,
                                parent: Some(&parent),
                                post: &post,
                            },
                            &object,
                            &who,
                        )?;
                        announce(c, &urls, &group, &raw)?;
                    }
                    Ok(Outcome::Done)
                })
                .map_err(db::Error::from)
            })
            .await;
    }
    if object.in_reply_to.is_some() {
        // A reply to something that is not ours.
        return just_record(state, record).await;
    }
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                let Some(group) = addressed_group(c, &urls, &object)? else {
                    record(c)?;
                    return Ok(Outcome::Done);
                };
                if !group.allow_remote_threads {
                    return Ok(Outcome::Refused(StatusCode::FORBIDDEN, "This group does not take new discussions from outside; reply to one of its discussions instead."));
                }
                if !object.is_public() {
                    return Ok(Outcome::Refused(StatusCode::FORBIDDEN, "Discussions here are public; this post is not addressed to the public and is not accepted."));
                }
                if !record(c)? {
                    return Ok(Outcome::Done);
                }
                let now = db::now();
                let thread: Thread = diesel::insert_into(threads::table)
                    .values((
                        threads::group_id.eq(group.id),
                        threads::title.eq(title_of(&object, &group.slug)),
                        threads::remote_context.eq(object.context.as_ref().map(Url::as_str)),
                        threads::last_activity_at.eq(now),
                        threads::created_at.eq(now),
                    ))
                    .returning(threads::all_columns)
                    .get_result(c)?;
                if let Some(post) = insert_remote(c, &thread, None, sender_row, &object)? {
                    notify_locals(
                        c,
                        &urls,
                        &Landed {
                            group: &group,
                            thread: &thread,
                            parent: None,
                            post: &post,
                        },
                        &object,
                        &who,
                    )?;
                    announce(c, &urls, &group, &raw)?;
                    // Mastodon followers see a new thread only as an Announce of the object.
                    if let Some(note) = raw.get("object").filter(|o| o.is_object()) {
                        announce(c, &urls, &group, note)?;
                    }
                }
                Ok(Outcome::Done)
            })
            .map_err(db::Error::from)
        })
        .await
}

/// `Update{Note…}` from the post's author: new content, the old one kept as a revision.
pub async fn update(
    state: &AppState,
    activity: &Value,
    sender: &remote::CachedActor,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    let Some(object) = object_of(state, activity).await else {
        return just_record(state, record).await;
    };
    let urls = Urls::new(state.config());
    let sender_row = sender.id;
    let raw = activity.clone();
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                let found = local_post(c, &urls, object.id.as_str())?;
                let Some((group, thread, post)) = found.filter(|(_, _, p)| p.ap_id.is_some()) else {
                    record(c)?;
                    return Ok(Outcome::Done);
                };
                if post.author_remote_id != Some(sender_row) {
                    return Ok(Outcome::Refused(
                        StatusCode::FORBIDDEN,
                        "Only the author may change a post.",
                    ));
                }
                if !record(c)? || post.is_gone() {
                    return Ok(Outcome::Done);
                }
                super::model::save_revision(c, &thread, &post)?;
                diesel::update(posts::table.find(post.id))
                    .set((
                        posts::content_html.eq(object.content.clone().unwrap_or_default()),
                        posts::source.eq(&object.source_markdown),
                        posts::updated_at.eq(db::now()),
                    ))
                    .execute(c)?;
                if post.parent_id.is_none()
                    && let Some(name) = object.name.as_deref().map(clean_title).filter(|n| !n.is_empty())
                {
                    diesel::update(threads::table.find(thread.id))
                        .set(threads::title.eq(name))
                        .execute(c)?;
                }
                let mentions: Vec<String> = object.mentions.iter().map(ToString::to_string).collect();
                super::model::set_tags(c, post.id, &object.hashtags, &mentions)?;
                if group.is_public() {
                    announce(c, &urls, &group, &raw)?;
                }
                Ok(Outcome::Done)
            })
            .map_err(db::Error::from)
        })
        .await
}

/// `Delete` of a post by its author.
pub async fn delete(
    state: &AppState,
    activity: &Value,
    object_id: &str,
    sender: &remote::CachedActor,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    let urls = Urls::new(state.config());
    let sender_row = sender.id;
    let raw = activity.clone();
    let id = object_id.to_owned();
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                let found = local_post(c, &urls, &id)?;
                let Some((group, thread, post)) = found.filter(|(_, _, p)| p.ap_id.is_some()) else {
                    record(c)?;
                    return Ok(Outcome::Done);
                };
                if post.author_remote_id != Some(sender_row) {
                    return Ok(Outcome::Refused(
                        StatusCode::FORBIDDEN,
                        "Only the author may delete a post.",
                    ));
                }
                if !record(c)? || post.is_gone() {
                    return Ok(Outcome::Done);
                }
                super::model::soft_delete(c, &thread, &post)?;
                if group.is_public() {
                    announce(c, &urls, &group, &raw)?;
                }
                Ok(Outcome::Done)
            })
            .map_err(db::Error::from)
        })
        .await
}

/// `Like` (on = true) or `Undo{Like}` of one of our posts.
pub async fn like(
    state: &AppState,
    object_id: &str,
    like_id: Option<String>,
    actor: &str,
    on: bool,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    let urls = Urls::new(state.config());
    let (id, actor) = (object_id.to_owned(), actor.to_owned());
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                if !record(c)? {
                    return Ok(Outcome::Done);
                }
                let Some((group, _, post)) = local_post(c, &urls, &id)? else {
                    return Ok(Outcome::Done);
                };
                if !group.is_public() || post.is_gone() {
                    return Ok(Outcome::Done);
                }
                super::model::set_like(c, &post, &actor, like_id.as_deref(), on)?;
                Ok(Outcome::Done)
            })
            .map_err(db::Error::from)
        })
        .await
}

/// Whether a local user or group follows `actor` (accepted): only then are its Announces
/// mirrored.
fn followed(conn: &mut DbConn, actor: &str) -> QueryResult<bool> {
    use crate::db::schema::following;
    let n: i64 = following::table
        .filter(following::target_ap_id.eq(actor))
        .filter(following::state.eq("accepted"))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The mirror of a remote group, made on its first Announce.
fn ensure_mirror(conn: &mut DbConn, sender: &remote::CachedActor) -> QueryResult<Group> {
    use crate::db::schema::groups;
    if let Some(g) = Group::by_ap_id(conn, &sender.ap_id)? {
        return Ok(g);
    }
    let name: String = sender
        .preferred_username
        .clone()
        .unwrap_or_else(|| "group".into())
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .take(60)
        .collect();
    let base = format!("{name}@{}", sender.domain);
    let now = db::now();
    let mut slug = base.clone();
    let mut n = 1;
    while !crate::accounts::model::claim_name(conn, &slug, "remote_group", now)? {
        n += 1;
        slug = format!("{base}-{n}");
    }
    let title: String = sender
        .name
        .clone()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| base.clone())
        .chars()
        .take(TITLE_MAX)
        .collect();
    diesel::insert_into(groups::table)
        .values((
            groups::slug.eq(&slug),
            groups::kind.eq("remote"),
            groups::title.eq(&title),
            groups::visibility.eq("public"),
            groups::join_mode.eq("invite"),
            groups::manually_approves_followers.eq(false),
            groups::allow_remote_threads.eq(false),
            groups::created_at.eq(now),
            groups::updated_at.eq(now),
            groups::ap_id.eq(&sender.ap_id),
            groups::remote_actor_id.eq(sender.id),
        ))
        .returning(groups::all_columns)
        .get_result(conn)
}

/// An object's own version: fetched from its server when the announcing group is elsewhere (a
/// group vouches for what it relays, but only the origin speaks for the object's content).
async fn authentic(state: &AppState, announcer: &str, o: RemoteObject) -> Option<RemoteObject> {
    let same_origin = Url::parse(announcer).is_ok_and(|a| a.origin() == o.id.origin());
    if same_origin {
        return Some(o);
    }
    let signer = crate::federation::inbox::instance_signer(state).await.ok()?;
    let value = state.fetch().get_json(&o.id, Some(&signer)).await.ok()?;
    match protocol::parse(&value).ok()? {
        Document::Object(fetched) if fetched.id == o.id => Some(fetched),
        _ => None,
    }
}

/// Records the activity as received (the inbox's dedupe), boxed for the paths that only record.
type Recorder = dyn FnOnce(&mut DbConn) -> QueryResult<bool> + Send;

/// `Announce` by a group on another server that we follow (FEP-1b12): its threads and replies
/// are kept in a read-only mirror; Update and Delete it relays are applied there.
pub async fn announced(
    state: &AppState,
    activity: &Value,
    sender: &remote::CachedActor,
    record: impl FnOnce(&mut DbConn) -> QueryResult<bool> + Send + 'static,
) -> Result<Outcome, db::Error> {
    let announcer = sender.ap_id.clone();
    let a = announcer.clone();
    let follows = state
        .db()
        .run(move |c| followed(c, &a).map_err(db::Error::from))
        .await?;
    let ignore = |record: Box<Recorder>| just_record(state, record);
    if !follows {
        return ignore(Box::new(record)).await;
    }
    let inner = match activity.get("object") {
        Some(Value::String(id)) => {
            let (Ok(url), Ok(signer)) = (
                Url::parse(id),
                crate::federation::inbox::instance_signer(state).await,
            ) else {
                return ignore(Box::new(record)).await;
            };
            match state.fetch().get_json(&url, Some(&signer)).await {
                Ok(v) => v,
                Err(_) => return ignore(Box::new(record)).await,
            }
        }
        Some(v) => v.clone(),
        None => return ignore(Box::new(record)).await,
    };
    let urls = Urls::new(state.config());
    enum Relayed {
        Upsert(Box<RemoteObject>),
        Delete(String),
    }
    let relayed = match protocol::parse(&inner) {
        Ok(Document::Object(o)) => Some(Relayed::Upsert(Box::new(o))),
        Ok(Document::Activity(act)) if matches!(act.kind.as_str(), "Create" | "Update") => {
            match act.object.as_ref().map(protocol::parse) {
                Some(Ok(Document::Object(o))) => Some(Relayed::Upsert(Box::new(o))),
                _ => None,
            }
        }
        Ok(Document::Activity(act)) if act.kind == "Delete" => {
            act.object_id.map(|u| Relayed::Delete(u.to_string()))
        }
        _ => None,
    };
    let relayed = match relayed {
        Some(Relayed::Upsert(o)) => {
            // Our own posts come back announced: we have them already.
            if o.id.as_str().starts_with(urls.base()) {
                None
            } else {
                // The announcing group must be the object's audience (or among its addressees).
                let for_group = o.audience.as_ref().map(Url::as_str) == Some(announcer.as_str())
                    || (o.audience.is_none() && (o.to.contains(&announcer) || o.cc.contains(&announcer)));
                if !for_group || !o.is_public() {
                    None
                } else {
                    authentic(state, &announcer, *o)
                        .await
                        .map(|o| Relayed::Upsert(Box::new(o)))
                }
            }
        }
        other => other,
    };
    let Some(relayed) = relayed else {
        return ignore(Box::new(record)).await;
    };
    let author = match &relayed {
        Relayed::Upsert(o) => {
            let Some(author) = o.attributed_to.first() else {
                return ignore(Box::new(record)).await;
            };
            let Ok(signer) = crate::federation::inbox::instance_signer(state).await else {
                return ignore(Box::new(record)).await;
            };
            match remote::resolve(state.db(), state.fetch(), Some(&signer), author, false).await {
                Ok(actor) => Some(actor.id),
                Err(_) => return ignore(Box::new(record)).await,
            }
        }
        Relayed::Delete(_) => None,
    };
    let sender = sender.clone();
    state
        .db()
        .run(move |c| {
            write_tx(c, |c| -> Result<Outcome, diesel::result::Error> {
                if !record(c)? {
                    return Ok(Outcome::Done);
                }
                // A group's Announces of one new thread (of the Create and of the bare object)
                // arrive together: one at a time, so the mirror and the post are made once.
                db::serialize_on(c, &sender.ap_id)?;
                let mirror = ensure_mirror(c, &sender)?;
                match relayed {
                    Relayed::Upsert(o) => {
                        let author = author.unwrap_or_default();
                        let existing: Option<Post> = posts::table
                            .filter(posts::ap_id.eq(o.id.as_str()))
                            .select(Post::as_select())
                            .first(c)
                            .optional()?;
                        if let Some(post) = existing {
                            // An edit relayed by the group: only for posts in its mirror, by the same author.
                            let in_mirror =
                                Thread::find(c, post.thread_id)?.is_some_and(|t| t.group_id == mirror.id);
                            if in_mirror && post.author_remote_id == Some(author) && !post.is_gone() {
                                diesel::update(posts::table.find(post.id))
                                    .set((
                                        posts::content_html.eq(o.content.clone().unwrap_or_default()),
                                        posts::source.eq(&o.source_markdown),
                                        posts::updated_at.eq(db::now()),
                                    ))
                                    .execute(c)?;
                            }
                            return Ok(Outcome::Done);
                        }
                        match &o.in_reply_to {
                            Some(parent) => {
                                if let Some((g, thread, parent)) = local_post(c, &urls, parent.as_str())?
                                    && g.id == mirror.id
                                    && !thread.is_gone()
                                {
                                    insert_remote(c, &thread, Some(&parent), author, &o)?;
                                }
                            }
                            None => {
                                let now = db::now();
                                let name = mirror.slug.split('@').next().unwrap_or_default().to_owned();
                                let thread: Thread = diesel::insert_into(threads::table)
                                    .values((
                                        threads::group_id.eq(mirror.id),
                                        threads::title.eq(title_of(&o, &name)),
                                        threads::remote_context.eq(o.context.as_ref().map(Url::as_str)),
                                        threads::last_activity_at.eq(now),
                                        threads::created_at.eq(now),
                                    ))
                                    .returning(threads::all_columns)
                                    .get_result(c)?;
                                insert_remote(c, &thread, None, author, &o)?;
                            }
                        }
                    }
                    Relayed::Delete(id) => {
                        let found: Option<Post> = posts::table
                            .filter(posts::ap_id.eq(&id))
                            .select(Post::as_select())
                            .first(c)
                            .optional()?;
                        if let Some(post) = found
                            && let Some(thread) = Thread::find(c, post.thread_id)?
                            && thread.group_id == mirror.id
                            && !post.is_gone()
                        {
                            super::model::soft_delete(c, &thread, &post)?;
                        }
                    }
                }
                Ok(Outcome::Done)
            })
            .map_err(db::Error::from)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: Option<&str>, content: &str) -> RemoteObject {
        RemoteObject {
            id: Url::parse("https://m.example/n/1").unwrap(),
            kind: "Note".into(),
            attributed_to: vec![],
            name: name.map(str::to_owned),
            content: Some(content.to_owned()),
            summary: None,
            source_markdown: None,
            in_reply_to: None,
            to: vec![],
            cc: vec![],
            audience: None,
            context: None,
            url: None,
            mentions: vec![],
            hashtags: vec![],
            published: None,
            updated: None,
            sensitive: false,
        }
    }

    #[test]
    fn titles_of_remote_threads() {
        assert_eq!(title_of(&object(Some(" Radweg "), "x"), "verkehr"), "Radweg");
        assert_eq!(
            title_of(&object(Some("Rad\u{202E}weg\n neu\u{0007}"), "x"), "verkehr"),
            "Radweg neu",
            "control and bidi characters are dropped"
        );
        assert_eq!(
            title_of(
                &object(
                    None,
                    "<p><span class=\"h-card\"><a href=\"https://a.example/g/verkehr\" class=\"u-url mention\">@<span>verkehr</span></a></span> Neue Ampel am Markt</p><p>Details</p>"
                ),
                "verkehr"
            ),
            "Neue Ampel am Markt"
        );
        assert_eq!(
            title_of(&object(None, "<p>@verkehr@a.example Frage</p>"), "verkehr"),
            "Frage"
        );
        assert_eq!(title_of(&object(None, ""), "verkehr"), "…");
    }
}
