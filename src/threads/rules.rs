//! The rules of threads and replies: who may post, edit, delete and moderate; every change in
//! one transaction together with its revision, tags, notifications and outgoing federation.

use std::collections::HashMap;

use diesel::prelude::*;

use super::federation::{self as fed, NoteParts};
use super::model::{self, Post, Thread};
use crate::accounts::model::User;
use crate::db::schema::{posts, threads};
use crate::db::{DbConn, write_tx};
use crate::federation::Urls;
use crate::groups::rules::{Access, Permission};
use crate::groups::{Error, Group, Result};

pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 20_000;
pub const MAX_REASON: usize = 500;
/// Replies nest; deeper ones are shown at this depth (Reddit-style threads get unreadable).
pub const MAX_DEPTH: i32 = 8;

pub fn validate_title(raw: &str) -> Result<String> {
    crate::groups::rules::title_within(raw, MAX_TITLE)
}

pub fn validate_body(raw: &str) -> Result<String> {
    let body = raw.trim().replace("\r\n", "\n");
    if body.is_empty() {
        return Err(Error::invalid("body", "invalid-body-empty"));
    }
    if body.chars().count() > MAX_BODY {
        return Err(Error::Invalid {
            field: "body",
            key: "invalid-body-long",
            args: vec![("max", MAX_BODY.to_string())],
        });
    }
    Ok(body)
}

pub fn validate_reason(raw: &str) -> Result<String> {
    let reason = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if reason.is_empty() {
        return Err(Error::invalid("reason", "invalid-reason-empty"));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(Error::Invalid {
            field: "reason",
            key: "invalid-reason-long",
            args: vec![("max", MAX_REASON.to_string())],
        });
    }
    Ok(reason)
}

/// Where a change happens and who makes it: the group, the acting user's access to it, and the
/// URLs for ids.
pub struct Scope<'a> {
    pub urls: &'a Urls,
    pub group: &'a Group,
    pub access: &'a Access,
}

/// A mention resolved before the transaction (remote ones need WebFinger): the actor's id, its
/// inbox for delivery, and the local user to notify.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub handle: String,
    pub actor: String,
    pub inbox: Option<String>,
    pub local_user: Option<i64>,
}

/// A new version of a post: the thread's title (opening posts only), the body, its mentions.
pub struct Draft<'a> {
    pub title: Option<&'a str>,
    pub body: &'a str,
    pub mentions: &'a [Resolved],
}

/// Rendered body with its tags.
struct Body {
    source: String,
    html: String,
    hashtags: Vec<String>,
    mentions: Vec<Resolved>,
}

fn render(urls: &Urls, source: String, mentions: &[Resolved]) -> Body {
    let map: HashMap<String, String> = mentions
        .iter()
        .map(|m| (m.handle.clone(), m.actor.clone()))
        .collect();
    let rendered = crate::text::render(&source, &map, urls.base());
    // Only mentions that made it into the text (not those in code) count.
    let used: Vec<Resolved> = crate::text::mentions(&source)
        .iter()
        .filter_map(|m| mentions.iter().find(|r| r.handle == m.handle()).cloned())
        .collect();
    Body {
        source,
        html: rendered.html,
        hashtags: rendered.hashtags,
        mentions: used,
    }
}

fn author_url(urls: &Urls, user: &User) -> String {
    urls.user(&user.username)
}

/// The author's actor id of a post (local or remote).
fn post_author(conn: &mut DbConn, urls: &Urls, post: &Post) -> QueryResult<Option<String>> {
    use crate::db::schema::{remote_actors, users};
    if let Some(uid) = post.author_user_id {
        return users::table
            .find(uid)
            .select(users::username)
            .first::<String>(conn)
            .optional()
            .map(|u| u.map(|u| urls.user(&u)));
    }
    if let Some(rid) = post.author_remote_id {
        return remote_actors::table
            .find(rid)
            .select(remote_actors::ap_id)
            .first::<String>(conn)
            .optional();
    }
    Ok(None)
}

/// The inbox of a post's remote author, for delivering replies and likes to them.
fn remote_author_inbox(conn: &mut DbConn, post: &Post) -> QueryResult<Option<String>> {
    use crate::db::schema::remote_actors;
    let Some(rid) = post.author_remote_id else {
        return Ok(None);
    };
    remote_actors::table
        .find(rid)
        .select((remote_actors::shared_inbox, remote_actors::inbox))
        .first::<(Option<String>, Option<String>)>(conn)
        .optional()
        .map(|r| r.and_then(|(s, i)| s.or(i)))
}

/// Whether a local user may read the group: a notification must not reveal an internal group
/// (not even its title) to someone outside it.
fn may_see(conn: &mut DbConn, group: &Group, user_id: i64) -> QueryResult<bool> {
    if group.is_public() {
        return Ok(true);
    }
    if !crate::groups::model::roles_of(conn, group.id, user_id)?.is_empty() {
        return Ok(true);
    }
    Ok(User::find(conn, user_id)?.is_some_and(|u| u.is_admin()))
}

fn notify_mentions(
    conn: &mut DbConn,
    body: &Body,
    author: &User,
    group: &Group,
    link: &str,
) -> QueryResult<()> {
    for m in &body.mentions {
        if let Some(uid) = m.local_user.filter(|id| *id != author.id) {
            if !may_see(conn, group, uid)? {
                continue;
            }
            crate::groups::model::notify(
                conn,
                uid,
                "notification-mentioned",
                &[("name", &author.display_name), ("group", &group.title)],
                link,
            )?;
        }
    }
    Ok(())
}

fn mention_pairs(body: &Body) -> Vec<(String, String)> {
    body.mentions
        .iter()
        .map(|m| (m.handle.clone(), m.actor.clone()))
        .collect()
}

fn mention_inboxes(body: &Body) -> Vec<String> {
    body.mentions.iter().filter_map(|m| m.inbox.clone()).collect()
}

/// Starts a thread. Returns the thread and its opening post.
pub fn create_thread(
    conn: &mut DbConn,
    scope: &Scope<'_>,
    author: &User,
    title: &str,
    body: &str,
    mentions: &[Resolved],
) -> Result<(Thread, Post)> {
    let (urls, group, access) = (scope.urls, scope.group, scope.access);
    if !access.can_start_thread(group) {
        return Err(Error::Forbidden("error-thread-forbidden"));
    }
    let title = validate_title(title)?;
    let body = render(urls, validate_body(body)?, mentions);
    write_tx(conn, |conn| {
        let now = crate::db::now();
        let thread: Thread = diesel::insert_into(threads::table)
            .values((
                threads::group_id.eq(group.id),
                threads::title.eq(&title),
                threads::last_activity_at.eq(now),
                threads::created_at.eq(now),
            ))
            .returning(threads::all_columns)
            .get_result(conn)?;
        let post: Post = diesel::insert_into(posts::table)
            .values((
                posts::thread_id.eq(thread.id),
                posts::author_user_id.eq(author.id),
                posts::source.eq(&body.source),
                posts::content_html.eq(&body.html),
                posts::depth.eq(0),
                posts::published_at.eq(now),
            ))
            .returning(posts::all_columns)
            .get_result(conn)?;
        let actors: Vec<String> = body.mentions.iter().map(|m| m.actor.clone()).collect();
        model::set_tags(conn, post.id, &body.hashtags, &actors)?;
        notify_mentions(
            conn,
            &body,
            author,
            group,
            &format!("/g/{}/t/{}", group.slug, thread.id),
        )?;
        let note = fed::note(
            urls,
            &post,
            &NoteParts {
                group,
                thread: &thread,
                author: author_url(urls, author),
                parent: None,
                mentions: mention_pairs(&body),
                hashtags: body.hashtags.clone(),
            },
        );
        fed::distribute(
            conn,
            urls,
            group,
            &fed::Outgoing {
                signer: &author.username,
                kind: "Create",
                note,
                extra_inboxes: &mention_inboxes(&body),
                new_thread: true,
            },
        )?;
        Ok((thread, post))
    })
}

/// Replies to the thread (parent None: to the opening post) or to a reply.
pub fn reply(
    conn: &mut DbConn,
    scope: &Scope<'_>,
    thread: &Thread,
    parent_id: Option<i64>,
    author: &User,
    body: &str,
    mentions: &[Resolved],
) -> Result<Post> {
    let (urls, group, access) = (scope.urls, scope.group, scope.access);
    if thread.is_gone() {
        return Err(Error::Gone);
    }
    if !access.can_reply() {
        return Err(Error::Forbidden("error-reply-forbidden"));
    }
    if thread.locked_at.is_some() && !access.can(Permission::Moderate) {
        return Err(Error::Locked);
    }
    let body = render(urls, validate_body(body)?, mentions);
    write_tx(conn, |conn| {
        let parent = match parent_id {
            Some(id) => Post::find(conn, id)?.filter(|p| p.thread_id == thread.id),
            None => Post::opening(conn, thread.id)?,
        }
        .ok_or(Error::ThreadNotFound)?;
        if parent.is_gone() {
            return Err(Error::Gone);
        }
        let now = crate::db::now();
        let post: Post = diesel::insert_into(posts::table)
            .values((
                posts::thread_id.eq(thread.id),
                posts::parent_id.eq(parent.id),
                posts::author_user_id.eq(author.id),
                posts::source.eq(&body.source),
                posts::content_html.eq(&body.html),
                posts::depth.eq((parent.depth + 1).min(MAX_DEPTH)),
                posts::published_at.eq(now),
            ))
            .returning(posts::all_columns)
            .get_result(conn)?;
        diesel::update(threads::table.find(thread.id))
            .set((
                threads::reply_count.eq(threads::reply_count + 1),
                threads::last_activity_at.eq(now),
            ))
            .execute(conn)?;
        let actors: Vec<String> = body.mentions.iter().map(|m| m.actor.clone()).collect();
        model::set_tags(conn, post.id, &body.hashtags, &actors)?;
        let link = format!("/g/{}/t/{}#p{}", group.slug, thread.id, post.id);
        notify_mentions(conn, &body, author, group, &link)?;
        if let Some(uid) = parent.author_user_id.filter(|id| *id != author.id)
            && !body.mentions.iter().any(|m| m.local_user == Some(uid))
            && may_see(conn, group, uid)?
        {
            crate::groups::model::notify(
                conn,
                uid,
                "notification-reply",
                &[("name", &author.display_name), ("title", &thread.title)],
                &link,
            )?;
        }
        let parent_author = post_author(conn, urls, &parent)?.unwrap_or_default();
        let mut inboxes = mention_inboxes(&body);
        if let Some(inbox) = remote_author_inbox(conn, &parent)? {
            inboxes.push(inbox);
        }
        let note = fed::note(
            urls,
            &post,
            &NoteParts {
                group,
                thread,
                author: author_url(urls, author),
                parent: Some((fed::post_id(urls, &group.slug, &parent), parent_author)),
                mentions: mention_pairs(&body),
                hashtags: body.hashtags.clone(),
            },
        );
        fed::distribute(
            conn,
            urls,
            group,
            &fed::Outgoing {
                signer: &author.username,
                kind: "Create",
                note,
                extra_inboxes: &inboxes,
                new_thread: false,
            },
        )?;
        Ok(post)
    })
}

/// Builds the current Note of a local post (for Update and for serving it).
pub fn note_of(
    conn: &mut DbConn,
    urls: &Urls,
    group: &Group,
    thread: &Thread,
    post: &Post,
) -> QueryResult<serde_json::Value> {
    use crate::db::schema::post_tags;
    let author = post_author(conn, urls, post)?.unwrap_or_default();
    let parent = match post.parent_id {
        Some(pid) => match Post::find(conn, pid)? {
            Some(p) => Some((
                fed::post_id(urls, &group.slug, &p),
                post_author(conn, urls, &p)?.unwrap_or_default(),
            )),
            None => None,
        },
        None => None,
    };
    let tags: Vec<(String, String)> = post_tags::table
        .filter(post_tags::post_id.eq(post.id))
        .select((post_tags::kind, post_tags::value))
        .load(conn)?;
    let hashtags = tags
        .iter()
        .filter(|(k, _)| k == "hashtag")
        .map(|(_, v)| v.clone())
        .collect();
    let mentions = tags
        .iter()
        .filter(|(k, _)| k == "mention")
        .map(|(_, v)| (String::new(), v.clone()))
        .collect();
    Ok(fed::note(
        urls,
        post,
        &NoteParts {
            group,
            thread,
            author,
            parent,
            mentions,
            hashtags,
        },
    ))
}

/// Edits a post (its author only); the previous version is kept. `title` changes the thread's
/// title when the post opens the thread.
pub fn edit(
    conn: &mut DbConn,
    scope: &Scope<'_>,
    thread: &Thread,
    post: &Post,
    editor: &User,
    draft: &Draft<'_>,
) -> Result<Post> {
    let (urls, group) = (scope.urls, scope.group);
    let (title, body, mentions) = (draft.title, draft.body, draft.mentions);
    if post.is_gone() || thread.is_gone() {
        return Err(Error::Gone);
    }
    if post.author_user_id != Some(editor.id) {
        return Err(Error::Forbidden("error-edit-forbidden"));
    }
    let title = match (title, post.parent_id) {
        (Some(t), None) => Some(validate_title(t)?),
        _ => None,
    };
    let body = render(urls, validate_body(body)?, mentions);
    write_tx(conn, |conn| {
        model::save_revision(conn, thread, post)?;
        let now = crate::db::now();
        let updated: Post = diesel::update(posts::table.find(post.id))
            .set((
                posts::source.eq(&body.source),
                posts::content_html.eq(&body.html),
                posts::updated_at.eq(now),
            ))
            .returning(posts::all_columns)
            .get_result(conn)?;
        let mut thread = thread.clone();
        if let Some(t) = &title {
            diesel::update(threads::table.find(thread.id))
                .set(threads::title.eq(t))
                .execute(conn)?;
            thread.title = t.clone();
        }
        let actors: Vec<String> = body.mentions.iter().map(|m| m.actor.clone()).collect();
        model::set_tags(conn, post.id, &body.hashtags, &actors)?;
        let note = note_of(conn, urls, group, &thread, &updated)?;
        fed::distribute(
            conn,
            urls,
            group,
            &fed::Outgoing {
                signer: &editor.username,
                kind: "Update",
                note,
                extra_inboxes: &mention_inboxes(&body),
                new_thread: false,
            },
        )?;
        Ok(updated)
    })
}

/// Deletes a post (its author only); deleting the opening post deletes the thread. The object
/// then answers 410 with a Tombstone.
pub fn delete(
    conn: &mut DbConn,
    urls: &Urls,
    group: &Group,
    thread: &Thread,
    post: &Post,
    user: &User,
) -> Result<()> {
    if post.is_gone() {
        return Err(Error::Gone);
    }
    if post.author_user_id != Some(user.id) {
        return Err(Error::Forbidden("error-delete-forbidden"));
    }
    write_tx(conn, |conn| {
        model::soft_delete(conn, thread, post)?;
        let note = note_of(conn, urls, group, thread, post)?;
        fed::distribute(
            conn,
            urls,
            group,
            &fed::Outgoing {
                signer: &user.username,
                kind: "Delete",
                note,
                extra_inboxes: &[],
                new_thread: false,
            },
        )?;
        Ok(())
    })
}

/// Likes or unlikes a post; returns the new count.
pub fn like(conn: &mut DbConn, urls: &Urls, post: &Post, user: &User, on: bool) -> Result<i32> {
    if post.is_gone() {
        return Err(Error::Gone);
    }
    let actor = urls.user(&user.username);
    write_tx(conn, |conn| {
        let thread = Thread::find(conn, post.thread_id)?.ok_or(Error::ThreadNotFound)?;
        let group = Group::find(conn, thread.group_id)?.ok_or(Error::ThreadNotFound)?;
        let like_id = format!("{actor}/likes/{}", post.id);
        let count = model::set_like(conn, post, &actor, Some(&like_id), on)?;
        // A remote author and a mirrored group's server count it too; our own groups' posts by
        // local authors have nobody to tell.
        if group.is_public() {
            let mut inboxes = Vec::new();
            if let Some(inbox) = remote_author_inbox(conn, post)? {
                inboxes.push(inbox);
            }
            if let Some(inbox) = fed::remote_group_inbox(conn, &group)? {
                inboxes.push(inbox);
            }
            if !inboxes.is_empty() {
                let object = fed::post_id(urls, &group.slug, post);
                let activity = fed::like_activity(&actor, &like_id, &object, on);
                crate::federation::delivery::send(conn, &user.username, &activity, &inboxes)?;
            }
        }
        Ok(count)
    })
}

/// What a moderator does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moderation {
    Pin,
    Unpin,
    Lock,
    Unlock,
    /// Removes the thread (with a reason).
    Remove,
    /// Removes one reply (with a reason).
    RemovePost(i64),
}

impl Moderation {
    pub fn parse(action: &str, post: Option<i64>) -> Option<Self> {
        Some(match (action, post) {
            ("pin", _) => Self::Pin,
            ("unpin", _) => Self::Unpin,
            ("lock", _) => Self::Lock,
            ("unlock", _) => Self::Unlock,
            ("remove", None) => Self::Remove,
            ("remove", Some(id)) => Self::RemovePost(id),
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Pin => "pin",
            Self::Unpin => "unpin",
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Remove => "remove_thread",
            Self::RemovePost(_) => "remove_post",
        }
    }
}

/// A moderator's action, recorded with its reason in the group's moderation log. Removals send
/// `Delete` of the object through the group, so followers' servers drop it too.
pub fn moderate(
    conn: &mut DbConn,
    scope: &Scope<'_>,
    thread: &Thread,
    action: Moderation,
    reason: &str,
    moderator: &User,
) -> Result<()> {
    let (urls, group) = (scope.urls, scope.group);
    if !scope.access.can(Permission::Moderate) {
        return Err(Error::Forbidden("error-group-moderate"));
    }
    let removal = matches!(action, Moderation::Remove | Moderation::RemovePost(_));
    let reason = if removal {
        validate_reason(reason)?
    } else {
        reason
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(MAX_REASON)
            .collect()
    };
    write_tx(conn, |conn| {
        let now = crate::db::now();
        let target = threads::table.find(thread.id);
        // Decide on the stored state, not the caller's copy: a repeated action changes nothing
        // and is not logged again (two moderators clicking at once, a retried request).
        let current: Thread = target.select(Thread::as_select()).first(conn)?;
        if current.is_gone() {
            return Err(Error::Gone);
        }
        let unchanged = match action {
            Moderation::Pin => current.pinned_at.is_some(),
            Moderation::Unpin => current.pinned_at.is_none(),
            Moderation::Lock => current.locked_at.is_some(),
            Moderation::Unlock => current.locked_at.is_none(),
            Moderation::Remove => false,
            Moderation::RemovePost(id) => {
                Post::find(conn, id)?.is_some_and(|p| p.thread_id == thread.id && p.is_gone())
            }
        };
        if unchanged {
            return Ok(());
        }
        let mut post_id = None;
        match action {
            Moderation::Pin => {
                diesel::update(target)
                    .set(threads::pinned_at.eq(now))
                    .execute(conn)?;
            }
            Moderation::Unpin => {
                diesel::update(target)
                    .set(threads::pinned_at.eq(None::<chrono::NaiveDateTime>))
                    .execute(conn)?;
            }
            Moderation::Lock => {
                diesel::update(target)
                    .set(threads::locked_at.eq(now))
                    .execute(conn)?;
            }
            Moderation::Unlock => {
                diesel::update(target)
                    .set(threads::locked_at.eq(None::<chrono::NaiveDateTime>))
                    .execute(conn)?;
            }
            Moderation::Remove => {
                diesel::update(target)
                    .set((threads::removed_at.eq(now), threads::removed_reason.eq(&reason)))
                    .execute(conn)?;
                if let Some(opening) = Post::opening(conn, thread.id)? {
                    let note = note_of(conn, urls, group, thread, &opening)?;
                    fed::distribute(
                        conn,
                        urls,
                        group,
                        &fed::Outgoing {
                            signer: &group.slug,
                            kind: "Delete",
                            note,
                            extra_inboxes: &[],
                            new_thread: false,
                        },
                    )?;
                }
            }
            Moderation::RemovePost(id) => {
                let post = Post::find(conn, id)?
                    .filter(|p| p.thread_id == thread.id && p.parent_id.is_some())
                    .ok_or(Error::ThreadNotFound)?;
                diesel::update(posts::table.find(post.id))
                    .set((posts::removed_at.eq(now), posts::removed_reason.eq(&reason)))
                    .execute(conn)?;
                diesel::update(target)
                    .set(threads::reply_count.eq(threads::reply_count - 1))
                    .execute(conn)?;
                let note = note_of(conn, urls, group, thread, &post)?;
                fed::distribute(
                    conn,
                    urls,
                    group,
                    &fed::Outgoing {
                        signer: &group.slug,
                        kind: "Delete",
                        note,
                        extra_inboxes: &[],
                        new_thread: false,
                    },
                )?;
                post_id = Some(id);
            }
        }
        model::log(
            conn,
            group.id,
            Some(moderator.id),
            action.as_str(),
            Some(thread.id),
            post_id,
            &reason,
        )?;
        Ok(())
    })
}

/// A thread of `group` by id, or ThreadNotFound.
pub fn thread_in(conn: &mut DbConn, group: &Group, id: i64) -> Result<Thread> {
    Thread::find(conn, id)?
        .filter(|t| t.group_id == group.id)
        .ok_or(Error::ThreadNotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_titles() {
        assert!(validate_body("   ").is_err());
        assert!(validate_body(&"x".repeat(MAX_BODY + 1)).is_err());
        assert_eq!(validate_body(" a\r\nb ").unwrap(), "a\nb");
        assert!(validate_title(&"t".repeat(MAX_TITLE + 1)).is_err());
        assert!(validate_reason("").is_err());
    }

    #[test]
    fn moderation_actions() {
        assert_eq!(
            Moderation::parse("remove", Some(3)),
            Some(Moderation::RemovePost(3))
        );
        assert_eq!(Moderation::parse("remove", None), Some(Moderation::Remove));
        assert_eq!(Moderation::parse("explode", None), None);
    }
}
