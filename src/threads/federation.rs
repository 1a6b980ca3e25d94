//! Threads and replies as ActivityPub objects (FEP-1b12, FEP-7888): a thread's opening post is a
//! `Note` with `name` (Mastodon shows a Note's body in full, but reduces Article/Page to a link),
//! `audience` = the group, `context` = the thread's context collection. The author's `Create`
//! goes to mentioned servers; the group `Announce`s it to its followers, and for new threads also
//! announces the bare Note, because Mastodon ignores an Announce of a Create. Replies are not
//! boosted to microblog followers. Every reply carries `Mention` tags for the group and the parent's
//! author, so Mastodon users' answers come back to the group.

use diesel::QueryResult;
use serde_json::{Value, json};

use super::model::{Post, Thread};
use crate::db::DbConn;
use crate::federation::actors::rfc3339;
use crate::federation::{Urls, delivery};
use crate::groups::Group;

pub const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

pub fn thread_url(urls: &Urls, slug: &str, thread_id: i64) -> String {
    format!("{}/t/{thread_id}", urls.group(slug))
}

pub fn context_url(urls: &Urls, slug: &str, thread: &Thread) -> String {
    thread
        .remote_context
        .clone()
        .unwrap_or_else(|| format!("{}/context", thread_url(urls, slug, thread.id)))
}

/// The id of a post: stored for remote posts, derived for local ones.
pub fn post_id(urls: &Urls, slug: &str, post: &Post) -> String {
    if let Some(id) = &post.ap_id {
        return id.clone();
    }
    match post.parent_id {
        None => thread_url(urls, slug, post.thread_id),
        Some(_) => format!("{}/p/{}", thread_url(urls, slug, post.thread_id), post.id),
    }
}

/// What a Note needs besides the post.
pub struct NoteParts<'a> {
    pub group: &'a Group,
    pub thread: &'a Thread,
    pub author: String,
    /// The parent's id and its author's actor id (replies only).
    pub parent: Option<(String, String)>,
    /// Mentioned actors: (handle as written, actor id).
    pub mentions: Vec<(String, String)>,
    pub hashtags: Vec<String>,
}

pub fn note(urls: &Urls, post: &Post, parts: &NoteParts<'_>) -> Value {
    let slug = &parts.group.slug;
    let group_url = parts.group.actor_id(urls);
    let id = post_id(urls, slug, post);
    let mut tags: Vec<Value> = Vec::new();
    // A mirrored group's followers collection is its server's business; it redistributes.
    let mut cc = if parts.group.is_remote() {
        vec![group_url.clone()]
    } else {
        vec![group_url.clone(), format!("{group_url}/followers")]
    };
    for (handle, actor) in &parts.mentions {
        tags.push(json!({ "type": "Mention", "href": actor, "name": handle }));
        cc.push(actor.clone());
    }
    if let Some((_, parent_author)) = &parts.parent {
        if !parts.mentions.iter().any(|(_, a)| a == parent_author) && *parent_author != parts.author {
            tags.push(json!({ "type": "Mention", "href": parent_author }));
            cc.push(parent_author.clone());
        }
        let handle = if parts.group.is_remote() {
            format!("@{slug}")
        } else {
            format!("@{slug}@{}", urls.host())
        };
        tags.push(json!({ "type": "Mention", "href": group_url, "name": handle }));
    }
    for tag in &parts.hashtags {
        tags.push(json!({ "type": "Hashtag", "href": format!("{}/tags/{tag}", urls.base()), "name": format!("#{tag}") }));
    }
    let mut note = json!({
        "id": id,
        "type": "Note",
        "attributedTo": parts.author,
        "content": post.content_html,
        "mediaType": "text/html",
        "url": match post.parent_id {
            None => id.clone(),
            Some(_) => format!("{}#p{}", thread_url(urls, slug, post.thread_id), post.id),
        },
        "audience": group_url,
        "context": context_url(urls, slug, parts.thread),
        "to": [PUBLIC],
        "cc": cc,
        "tag": tags,
        "published": rfc3339(&post.published_at),
        "sensitive": false,
    });
    if let Some(source) = &post.source {
        note["source"] = json!({ "content": source, "mediaType": "text/markdown" });
    }
    match &parts.parent {
        None => note["name"] = json!(parts.thread.title),
        Some((parent_id, _)) => note["inReplyTo"] = json!(parent_id),
    }
    if let Some(updated) = post.updated_at {
        note["updated"] = json!(rfc3339(&updated));
    }
    note
}

fn with_context(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("@context".into(), json!("https://www.w3.org/ns/activitystreams"));
    }
    v
}

/// A Note as served at its URL.
pub fn document(note: Value) -> Value {
    with_context(note)
}

/// A deleted object's Tombstone (served with 410).
pub fn tombstone(id: &str, deleted: &chrono::NaiveDateTime) -> Value {
    with_context(json!({ "id": id, "type": "Tombstone", "formerType": "Note", "deleted": rfc3339(deleted) }))
}

fn announce(urls: &Urls, group: &Group, object: Value) -> Value {
    let group_url = urls.group(&group.slug);
    with_context(json!({
        "id": format!("{group_url}/activities/announce/{:016x}", rand::random::<u64>()),
        "type": "Announce",
        "actor": group_url,
        "to": [PUBLIC],
        "cc": [format!("{group_url}/followers")],
        "audience": group_url,
        "object": object,
    }))
}

/// Queues the author's activity (`Create`, `Update` or `Delete` of `note`) for the mentioned
/// actors' inboxes and the group's `Announce` of it for the group's followers; for a new
/// thread also the `Announce` of the bare Note. Returns how many deliveries were queued.
/// An activity about a Note, to be distributed.
pub struct Outgoing<'a> {
    /// The local actor whose key signs the activity (the author, or the group for removals).
    pub signer: &'a str,
    /// `Create`, `Update` or `Delete`.
    pub kind: &'a str,
    pub note: Value,
    /// Inboxes beyond the group's followers: mentioned actors, the parent's remote author.
    pub extra_inboxes: &'a [String],
    /// Also announce the bare Note (new threads, for Mastodon).
    pub new_thread: bool,
}

/// The inbox of a mirrored group's own server (None for our groups).
pub fn remote_group_inbox(conn: &mut DbConn, group: &Group) -> QueryResult<Option<String>> {
    use crate::db::schema::remote_actors;
    use diesel::prelude::*;
    let Some(id) = group.remote_actor_id else {
        return Ok(None);
    };
    Ok(remote_actors::table
        .find(id)
        .select((remote_actors::shared_inbox, remote_actors::inbox))
        .first::<(Option<String>, Option<String>)>(conn)
        .optional()?
        .and_then(|(s, i)| s.or(i)))
}

/// `Like` (or `Undo{Like}`) of `object` by `actor`, with a stable id so the Undo can name it.
pub fn like_activity(actor: &str, like_id: &str, object: &str, on: bool) -> Value {
    let like = json!({ "id": like_id, "type": "Like", "actor": actor, "object": object });
    if on {
        with_context(like)
    } else {
        with_context(
            json!({ "id": format!("{like_id}/undo"), "type": "Undo", "actor": actor, "object": like }),
        )
    }
}

pub fn distribute(conn: &mut DbConn, urls: &Urls, group: &Group, out: &Outgoing<'_>) -> QueryResult<usize> {
    let (author_name, kind, extra_inboxes, new_thread) =
        (out.signer, out.kind, out.extra_inboxes, out.new_thread);
    let note = out.note.clone();
    if !group.is_public() {
        return Ok(0);
    }
    // In a mirrored group our users' posts go to the group's server, which announces them.
    let remote_inbox = remote_group_inbox(conn, group)?;
    let note_id = note
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let author = note.get("attributedTo").cloned().unwrap_or(Value::Null);
    let stamp = crate::db::now().and_utc().timestamp_millis();
    let (id, object) = match kind {
        "Create" => (format!("{note_id}/activity"), note.clone()),
        "Delete" => (
            format!("{note_id}#delete-{stamp}"),
            json!({ "id": note_id, "type": "Tombstone" }),
        ),
        _ => (format!("{note_id}#update-{stamp}"), note.clone()),
    };
    let activity = with_context(json!({
        "id": id,
        "type": kind,
        "actor": author,
        "to": note.get("to").cloned().unwrap_or_else(|| json!([PUBLIC])),
        "cc": note.get("cc").cloned().unwrap_or_else(|| json!([])),
        "audience": group.actor_id(urls),
        "object": object,
    }));
    let mut queued = 0;
    if group.is_remote() {
        let mut inboxes = extra_inboxes.to_vec();
        inboxes.extend(remote_inbox);
        return delivery::send(conn, author_name, &activity, &inboxes);
    }
    if !extra_inboxes.is_empty() {
        queued += delivery::send(conn, author_name, &activity, extra_inboxes)?;
    }
    let mut inner = activity;
    if let Some(o) = inner.as_object_mut() {
        o.remove("@context");
    }
    queued += delivery::send_to_followers(conn, &group.slug, &group.slug, &announce(urls, group, inner))?;
    if new_thread {
        let mut bare = note;
        if let Some(o) = bare.as_object_mut() {
            o.remove("@context");
        }
        queued += delivery::send_to_followers(conn, &group.slug, &group.slug, &announce(urls, group, bare))?;
    }
    Ok(queued)
}

/// The thread's context collection (FEP-7888/f228): a paged `OrderedCollection` of its
/// objects, the opening post first.
pub fn context_collection(id: &str, items: Vec<String>, page: Option<i64>) -> Value {
    crate::federation::actors::paged_collection(id, i64::try_from(items.len()).unwrap_or(0), page, {
        let size = crate::federation::actors::PAGE_SIZE;
        let start = usize::try_from((page.unwrap_or(1) - 1) * size).unwrap_or(0);
        items
            .into_iter()
            .skip(start)
            .take(usize::try_from(size).unwrap_or(50))
            .collect()
    })
}

/// How many recent threads the outbox carries (Lemmy reads it to backfill a new follow).
pub const OUTBOX_ITEMS: i64 = 20;

/// The group's outbox: `Announce{Create{Note}}` of its recent threads, inline. The ids are
/// derived from the thread, so the same item keeps its id between requests.
pub fn outbox(conn: &mut DbConn, urls: &Urls, group: &Group) -> QueryResult<Value> {
    let group_url = urls.group(&group.slug);
    let recent = super::model::page(conn, group.id, None, OUTBOX_ITEMS)?;
    let mut items = Vec::new();
    for thread in recent {
        let Some(post) = Post::opening(conn, thread.id)? else {
            continue;
        };
        if post.is_gone() {
            continue;
        }
        let note = super::rules::note_of(conn, urls, group, &thread, &post)?;
        let note_id = note
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        items.push(json!({
            "id": format!("{group_url}/activities/announce/t{}", thread.id),
            "type": "Announce",
            "actor": group_url,
            "to": [PUBLIC],
            "cc": [format!("{group_url}/followers")],
            "object": {
                "id": format!("{note_id}/activity"),
                "type": "Create",
                "actor": note.get("attributedTo").cloned().unwrap_or(Value::Null),
                "to": [PUBLIC],
                "cc": note.get("cc").cloned().unwrap_or_else(|| json!([])),
                "object": note,
            },
        }));
    }
    Ok(with_context(json!({
        "id": format!("{group_url}/outbox"),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })))
}

/// The group's `featured` collection: its pinned threads as Notes.
pub fn featured(conn: &mut DbConn, urls: &Urls, group: &Group) -> QueryResult<Value> {
    let mut items = Vec::new();
    for thread in super::model::pinned(conn, group.id)? {
        if let Some(post) = Post::opening(conn, thread.id)?.filter(|p| !p.is_gone()) {
            items.push(super::rules::note_of(conn, urls, group, &thread, &post)?);
        }
    }
    Ok(with_context(json!({
        "id": format!("{}/featured", urls.group(&group.slug)),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    })))
}
