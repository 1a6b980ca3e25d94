//! Rows and queries of threads and posts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{
    likes, moderation_log, post_revisions, post_tags, posts, remote_actors, threads, users,
};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = threads)]
pub struct Thread {
    pub id: i64,
    pub group_id: i64,
    pub title: String,
    pub remote_context: Option<String>,
    pub pinned_at: Option<NaiveDateTime>,
    pub locked_at: Option<NaiveDateTime>,
    pub reply_count: i32,
    pub last_activity_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_reason: Option<String>,
}

impl Thread {
    pub fn is_gone(&self) -> bool {
        self.deleted_at.is_some() || self.removed_at.is_some()
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Self>> {
        threads::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .optional()
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = posts)]
pub struct Post {
    pub id: i64,
    pub thread_id: i64,
    pub parent_id: Option<i64>,
    pub ap_id: Option<String>,
    pub url: Option<String>,
    pub author_user_id: Option<i64>,
    pub author_remote_id: Option<i64>,
    pub source: Option<String>,
    pub content_html: String,
    pub depth: i32,
    pub like_count: i32,
    pub published_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
    pub removed_at: Option<NaiveDateTime>,
    pub removed_reason: Option<String>,
}

impl Post {
    pub fn is_gone(&self) -> bool {
        self.deleted_at.is_some() || self.removed_at.is_some()
    }

    pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Self>> {
        posts::table
            .find(id)
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    /// The opening post of a thread.
    pub fn opening(conn: &mut DbConn, thread_id: i64) -> QueryResult<Option<Self>> {
        posts::table
            .filter(posts::thread_id.eq(thread_id))
            .filter(posts::parent_id.is_null())
            .select(Self::as_select())
            .first(conn)
            .optional()
    }

    pub fn of_thread(conn: &mut DbConn, thread_id: i64) -> QueryResult<Vec<Self>> {
        posts::table
            .filter(posts::thread_id.eq(thread_id))
            .order(posts::id)
            .select(Self::as_select())
            .load(conn)
    }
}

/// Who wrote a post, as pages and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Author {
    pub name: String,
    /// `@name` for local users, `@name@instance` for remote ones.
    pub handle: String,
    pub url: String,
    /// The remote author's instance; None for local authors.
    pub instance: Option<String>,
    #[serde(skip)]
    pub user_id: Option<i64>,
}

/// The authors of `posts`, by post id. `base` makes local profile URLs.
pub fn authors(
    conn: &mut DbConn,
    list: &[Post],
    base: &str,
) -> QueryResult<std::collections::HashMap<i64, Author>> {
    let user_ids: Vec<i64> = list.iter().filter_map(|p| p.author_user_id).collect();
    let remote_ids: Vec<i64> = list.iter().filter_map(|p| p.author_remote_id).collect();
    let locals: std::collections::HashMap<i64, (String, String)> = users::table
        .filter(users::id.eq_any(&user_ids))
        .select((users::id, users::username, users::display_name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, u, d)| (id, (u, d)))
        .collect();
    type RemoteRow = (i64, String, String, Option<String>, Option<String>);
    let remotes: std::collections::HashMap<i64, RemoteRow> = remote_actors::table
        .filter(remote_actors::id.eq_any(&remote_ids))
        .select((
            remote_actors::id,
            remote_actors::ap_id,
            remote_actors::domain,
            remote_actors::preferred_username,
            remote_actors::name,
        ))
        .load::<RemoteRow>(conn)?
        .into_iter()
        .map(|r| (r.0, r))
        .collect();
    let mut out = std::collections::HashMap::new();
    for p in list {
        let author = if let Some((username, display)) = p.author_user_id.and_then(|id| locals.get(&id)) {
            Author {
                name: display.clone(),
                handle: format!("@{username}"),
                url: format!("{base}/u/{username}"),
                instance: None,
                user_id: p.author_user_id,
            }
        } else if let Some((_, ap_id, domain, preferred, name)) =
            p.author_remote_id.and_then(|id| remotes.get(&id))
        {
            let user = preferred.clone().unwrap_or_else(|| "?".into());
            Author {
                name: name
                    .clone()
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| user.clone()),
                handle: format!("@{user}@{domain}"),
                url: ap_id.clone(),
                instance: Some(domain.clone()),
                user_id: None,
            }
        } else {
            Author {
                name: "—".into(),
                handle: String::new(),
                url: String::new(),
                instance: None,
                user_id: None,
            }
        };
        out.insert(p.id, author);
    }
    Ok(out)
}

/// Replaces a post's tags (hashtags and mentions).
pub fn set_tags(
    conn: &mut DbConn,
    post_id: i64,
    hashtags: &[String],
    mentions: &[String],
) -> QueryResult<()> {
    diesel::delete(post_tags::table.filter(post_tags::post_id.eq(post_id))).execute(conn)?;
    let rows: Vec<_> = hashtags
        .iter()
        .map(|t| ("hashtag", t.as_str()))
        .chain(mentions.iter().map(|m| ("mention", m.as_str())))
        .map(|(kind, value)| {
            (
                post_tags::post_id.eq(post_id),
                post_tags::kind.eq(kind),
                post_tags::value.eq(value),
            )
        })
        .collect();
    for row in rows {
        match conn {
            DbConn::Pg(c) => diesel::insert_into(post_tags::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(post_tags::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
        };
    }
    Ok(())
}

/// One line of the moderation log.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = moderation_log)]
pub struct LogEntry {
    pub id: i64,
    #[serde(skip)]
    pub group_id: i64,
    #[serde(skip)]
    pub moderator_user_id: Option<i64>,
    pub action: String,
    pub thread_id: Option<i64>,
    pub post_id: Option<i64>,
    pub reason: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: NaiveDateTime,
}

pub fn log(
    conn: &mut DbConn,
    group_id: i64,
    moderator: Option<i64>,
    action: &str,
    thread_id: Option<i64>,
    post_id: Option<i64>,
    reason: &str,
) -> QueryResult<()> {
    diesel::insert_into(moderation_log::table)
        .values((
            moderation_log::group_id.eq(group_id),
            moderation_log::moderator_user_id.eq(moderator),
            moderation_log::action.eq(action),
            moderation_log::thread_id.eq(thread_id),
            moderation_log::post_id.eq(post_id),
            moderation_log::reason.eq(reason),
            moderation_log::created_at.eq(crate::db::now()),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn log_of(conn: &mut DbConn, group_id: i64, limit: i64) -> QueryResult<Vec<(LogEntry, Option<String>)>> {
    moderation_log::table
        .left_join(users::table.on(users::id.nullable().eq(moderation_log::moderator_user_id)))
        .filter(moderation_log::group_id.eq(group_id))
        .order((moderation_log::created_at.desc(), moderation_log::id.desc()))
        .limit(limit)
        .select((LogEntry::as_select(), users::username.nullable()))
        .load(conn)
}

/// One page of a group's threads (not pinned, not gone), newest activity first, after the
/// keyset cursor `(last_activity_at, id)` when given.
pub fn page(
    conn: &mut DbConn,
    group_id: i64,
    before: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> QueryResult<Vec<Thread>> {
    let mut q = threads::table
        .filter(threads::group_id.eq(group_id))
        .filter(threads::deleted_at.is_null())
        .filter(threads::removed_at.is_null())
        .filter(threads::pinned_at.is_null())
        .into_boxed();
    if let Some((at, id)) = before {
        // The redundant `<= at` is what lets PostgreSQL seek in the (group, activity, id) index:
        // with the OR alone it walks the group's list from the newest thread (page 50: 5.6 ms
        // instead of 0.4; docs/performance.md, scenario d).
        q = q.filter(threads::last_activity_at.le(at)).filter(
            threads::last_activity_at
                .lt(at)
                .or(threads::last_activity_at.eq(at).and(threads::id.lt(id))),
        );
    }
    q.order((threads::last_activity_at.desc(), threads::id.desc()))
        .limit(limit)
        .select(Thread::as_select())
        .load(conn)
}

/// Which groups' threads an instance-wide list shows.
#[derive(Debug, Clone)]
pub enum Readable {
    /// Every group (site admins).
    All,
    /// Public groups (ours and mirrors), plus these internal ones (the viewer's).
    PublicAnd(Vec<i64>),
}

/// The latest activity across groups: threads by last activity, newest first, keyset-paged
/// like a group's list; with each thread its group's slug and title. Walks the
/// (last_activity_at, id) index and filters, so the first page is cheap at any size.
pub fn latest(
    conn: &mut DbConn,
    readable: &Readable,
    before: Option<(NaiveDateTime, i64)>,
    limit: i64,
) -> QueryResult<Vec<(Thread, String, String)>> {
    use crate::db::schema::groups;
    let mut q = threads::table
        .inner_join(groups::table)
        .filter(threads::deleted_at.is_null())
        .filter(threads::removed_at.is_null())
        .into_boxed();
    if let Readable::PublicAnd(ids) = readable {
        q = q.filter(
            groups::visibility
                .eq("public")
                .or(threads::group_id.eq_any(ids.clone())),
        );
    }
    if let Some((at, id)) = before {
        q = q.filter(threads::last_activity_at.le(at)).filter(
            threads::last_activity_at
                .lt(at)
                .or(threads::last_activity_at.eq(at).and(threads::id.lt(id))),
        );
    }
    q.order((threads::last_activity_at.desc(), threads::id.desc()))
        .limit(limit)
        .select((Thread::as_select(), groups::slug, groups::title))
        .load(conn)
}

pub fn pinned(conn: &mut DbConn, group_id: i64) -> QueryResult<Vec<Thread>> {
    threads::table
        .filter(threads::group_id.eq(group_id))
        .filter(threads::deleted_at.is_null())
        .filter(threads::removed_at.is_null())
        .filter(threads::pinned_at.is_not_null())
        .order(threads::pinned_at.desc())
        .select(Thread::as_select())
        .load(conn)
}

/// Posts tagged with a hashtag, in public groups only, newest first.
pub fn tagged(conn: &mut DbConn, tag: &str, limit: i64) -> QueryResult<Vec<(Post, Thread, String)>> {
    use crate::db::schema::groups;
    posts::table
        .inner_join(post_tags::table.on(post_tags::post_id.eq(posts::id)))
        .inner_join(threads::table.on(threads::id.eq(posts::thread_id)))
        .inner_join(groups::table.on(groups::id.eq(threads::group_id)))
        .filter(post_tags::kind.eq("hashtag"))
        .filter(post_tags::value.eq(tag))
        .filter(groups::visibility.eq("public"))
        .filter(posts::deleted_at.is_null())
        .filter(posts::removed_at.is_null())
        .filter(threads::deleted_at.is_null())
        .filter(threads::removed_at.is_null())
        .order(posts::id.desc())
        .limit(limit)
        .select((Post::as_select(), Thread::as_select(), groups::slug))
        .load(conn)
}

/// Sets or clears `actor`'s like of a post; returns the new like count.
pub fn set_like(
    conn: &mut DbConn,
    post: &Post,
    actor: &str,
    like_id: Option<&str>,
    on: bool,
) -> QueryResult<i32> {
    let changed = if on {
        let row = (
            likes::post_id.eq(post.id),
            likes::actor.eq(actor),
            likes::ap_id.eq(like_id),
            likes::created_at.eq(crate::db::now()),
        );
        match conn {
            DbConn::Pg(c) => diesel::insert_into(likes::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(likes::table)
                .values(row)
                .on_conflict_do_nothing()
                .execute(c)?,
        }
    } else {
        diesel::delete(
            likes::table
                .filter(likes::post_id.eq(post.id))
                .filter(likes::actor.eq(actor)),
        )
        .execute(conn)?
    };
    let delta = i32::try_from(changed).unwrap_or(0);
    diesel::update(posts::table.find(post.id))
        .set(posts::like_count.eq(posts::like_count + if on { delta } else { -delta }))
        .returning(posts::like_count)
        .get_result(conn)
}

/// Keeps the current version of a post (and the thread's title, for an opening post) before an
/// edit replaces it.
pub fn save_revision(conn: &mut DbConn, thread: &Thread, post: &Post) -> QueryResult<()> {
    diesel::insert_into(post_revisions::table)
        .values((
            post_revisions::post_id.eq(post.id),
            post_revisions::title.eq(post.parent_id.is_none().then(|| thread.title.clone())),
            post_revisions::source.eq(&post.source),
            post_revisions::content_html.eq(&post.content_html),
            post_revisions::created_at.eq(post.updated_at.unwrap_or(post.published_at)),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Marks a post deleted; an opening post takes its thread with it, a reply leaves the count.
/// A post that is already gone (deleted, or removed by a moderator) is not counted twice.
pub fn soft_delete(conn: &mut DbConn, thread: &Thread, post: &Post) -> QueryResult<()> {
    let now = crate::db::now();
    let was_gone = Post::find(conn, post.id)?.is_none_or(|p| p.is_gone());
    diesel::update(posts::table.find(post.id).filter(posts::deleted_at.is_null()))
        .set(posts::deleted_at.eq(now))
        .execute(conn)?;
    if was_gone && post.parent_id.is_some() {
        return Ok(());
    }
    if post.parent_id.is_none() {
        diesel::update(threads::table.find(thread.id))
            .set(threads::deleted_at.eq(now))
            .execute(conn)?;
    } else {
        diesel::update(threads::table.find(thread.id))
            .set(threads::reply_count.eq(threads::reply_count - 1))
            .execute(conn)?;
    }
    Ok(())
}
