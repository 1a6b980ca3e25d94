//! Remote followers of local actors.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::followers;

/// A remote actor following a local one.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = followers)]
pub struct Follower {
    pub id: i64,
    #[serde(skip)]
    pub local_name: String,
    #[serde(rename = "actor")]
    pub actor_ap_id: String,
    #[serde(skip)]
    pub inbox: String,
    #[serde(skip)]
    pub follow_id: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
    #[serde(skip)]
    pub shared_inbox: Option<String>,
    pub state: String,
}

impl Follower {
    pub fn is_accepted(&self) -> bool {
        self.state == ACCEPTED
    }

    /// Where our answer to this follower goes.
    pub fn delivery_inbox(&self) -> &str {
        self.shared_inbox.as_deref().unwrap_or(&self.inbox)
    }
}

pub const ACCEPTED: &str = "accepted";
pub const PENDING: &str = "pending";

/// Adds or refreshes a follower (a repeated Follow updates the inboxes and the Follow id but
/// keeps the state: an accepted follower stays accepted, a waiting request keeps waiting).
/// Returns the row as stored.
pub fn add(
    conn: &mut DbConn,
    local_name: &str,
    actor: &str,
    inbox: &str,
    shared_inbox: Option<&str>,
    follow_id: &str,
    needs_approval: bool,
) -> QueryResult<Follower> {
    let now = crate::db::now();
    let row = (
        followers::local_name.eq(local_name),
        followers::actor_ap_id.eq(actor),
        followers::inbox.eq(inbox),
        followers::shared_inbox.eq(shared_inbox),
        followers::follow_id.eq(follow_id),
        followers::state.eq(if needs_approval { PENDING } else { ACCEPTED }),
        followers::created_at.eq(now),
    );
    let changes = (
        followers::inbox.eq(inbox),
        followers::shared_inbox.eq(shared_inbox),
        followers::follow_id.eq(follow_id),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(followers::table)
            .values(row)
            .on_conflict((followers::local_name, followers::actor_ap_id))
            .do_update()
            .set(changes)
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(followers::table)
            .values(row)
            .on_conflict((followers::local_name, followers::actor_ap_id))
            .do_update()
            .set(changes)
            .execute(c)?,
    };
    followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::actor_ap_id.eq(actor))
        .select(Follower::as_select())
        .first(conn)
}

/// Removes `actor` as a follower (or follow request) of `local_name`; returns whether it was one.
pub fn remove(conn: &mut DbConn, local_name: &str, actor: &str) -> QueryResult<bool> {
    diesel::delete(
        followers::table
            .filter(followers::local_name.eq(local_name))
            .filter(followers::actor_ap_id.eq(actor)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Removes the follower whose Follow had this id, if `actor` sent it (`Undo` by reference).
pub fn remove_by_follow_id(conn: &mut DbConn, follow_id: &str, actor: &str) -> QueryResult<bool> {
    diesel::delete(
        followers::table
            .filter(followers::follow_id.eq(follow_id))
            .filter(followers::actor_ap_id.eq(actor)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

/// Accepted followers.
pub fn count(conn: &mut DbConn, local_name: &str) -> QueryResult<i64> {
    followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::state.eq(ACCEPTED))
        .count()
        .get_result(conn)
}

/// One page of accepted followers' actor ids, newest first.
pub fn page(conn: &mut DbConn, local_name: &str, offset: i64, limit: i64) -> QueryResult<Vec<String>> {
    followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::state.eq(ACCEPTED))
        .order((followers::created_at.desc(), followers::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(followers::actor_ap_id)
        .load(conn)
}

/// Follow requests waiting for `local_name`'s decision, oldest first.
pub fn pending(conn: &mut DbConn, local_name: &str) -> QueryResult<Vec<Follower>> {
    followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::state.eq(PENDING))
        .order(followers::id)
        .select(Follower::as_select())
        .load(conn)
}

pub fn find(conn: &mut DbConn, local_name: &str, id: i64) -> QueryResult<Option<Follower>> {
    followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::id.eq(id))
        .select(Follower::as_select())
        .first(conn)
        .optional()
}

pub fn set_accepted(conn: &mut DbConn, id: i64) -> QueryResult<()> {
    diesel::update(followers::table.find(id))
        .set(followers::state.eq(ACCEPTED))
        .execute(conn)
        .map(|_| ())
}

/// The `Accept` or `Reject` of a follower's Follow; its object is that Follow, with its id.
pub fn answer(urls: &super::Urls, actor_url: &str, follower: &Follower, accept: bool) -> serde_json::Value {
    let kind = if accept { "Accept" } else { "Reject" };
    serde_json::json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/activities/{}/{:016x}", urls.base(), kind.to_ascii_lowercase(), rand::random::<u64>()),
        "type": kind,
        "actor": actor_url,
        "object": {
            "id": follower.follow_id,
            "type": "Follow",
            "actor": follower.actor_ap_id,
            "object": actor_url,
        },
    })
}

/// One outgoing follow.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = crate::db::schema::following)]
pub struct Following {
    #[serde(skip)]
    pub id: i64,
    #[serde(skip)]
    pub local_name: String,
    #[serde(rename = "target")]
    pub target_ap_id: String,
    #[serde(skip)]
    pub target_inbox: String,
    #[serde(skip)]
    pub follow_id: String,
    pub state: String,
    #[serde(serialize_with = "crate::db::utc::serialize")]
    pub created_at: chrono::NaiveDateTime,
}

pub mod outgoing {
    use diesel::prelude::*;

    use super::Following;
    use crate::db::DbConn;
    use crate::db::schema::following;

    pub fn find(conn: &mut DbConn, local_name: &str, target: &str) -> QueryResult<Option<Following>> {
        following::table
            .filter(following::local_name.eq(local_name))
            .filter(following::target_ap_id.eq(target))
            .select(Following::as_select())
            .first(conn)
            .optional()
    }

    pub fn list(conn: &mut DbConn, local_name: &str) -> QueryResult<Vec<Following>> {
        following::table
            .filter(following::local_name.eq(local_name))
            .order(following::created_at.desc())
            .select(Following::as_select())
            .load(conn)
    }

    /// Accepted outgoing follows (the public `following` collection).
    pub fn count_accepted(conn: &mut DbConn, local_name: &str) -> QueryResult<i64> {
        following::table
            .filter(following::local_name.eq(local_name))
            .filter(following::state.eq("accepted"))
            .count()
            .get_result(conn)
    }

    pub fn page_accepted(
        conn: &mut DbConn,
        local_name: &str,
        offset: i64,
        limit: i64,
    ) -> QueryResult<Vec<String>> {
        following::table
            .filter(following::local_name.eq(local_name))
            .filter(following::state.eq("accepted"))
            .order((following::created_at.desc(), following::id.desc()))
            .offset(offset)
            .limit(limit)
            .select(following::target_ap_id)
            .load(conn)
    }

    pub fn insert(
        conn: &mut DbConn,
        local_name: &str,
        target: &str,
        inbox: &str,
        follow_id: &str,
    ) -> QueryResult<()> {
        diesel::insert_into(following::table)
            .values((
                following::local_name.eq(local_name),
                following::target_ap_id.eq(target),
                following::target_inbox.eq(inbox),
                following::follow_id.eq(follow_id),
                following::state.eq("pending"),
                following::created_at.eq(crate::db::now()),
            ))
            .execute(conn)
            .map(|_| ())
    }

    /// Marks the follow with this Follow id accepted, if `target` is who it was sent to.
    pub fn accept(conn: &mut DbConn, follow_id: &str, target: &str) -> QueryResult<bool> {
        diesel::update(
            following::table
                .filter(following::follow_id.eq(follow_id))
                .filter(following::target_ap_id.eq(target)),
        )
        .set(following::state.eq("accepted"))
        .execute(conn)
        .map(|n| n > 0)
    }

    /// Removes the follow (Reject from the target, or Undo by us).
    pub fn remove_by_follow_id(conn: &mut DbConn, follow_id: &str, target: &str) -> QueryResult<bool> {
        diesel::delete(
            following::table
                .filter(following::follow_id.eq(follow_id))
                .filter(following::target_ap_id.eq(target)),
        )
        .execute(conn)
        .map(|n| n > 0)
    }

    pub fn remove(conn: &mut DbConn, local_name: &str, target: &str) -> QueryResult<bool> {
        diesel::delete(
            following::table
                .filter(following::local_name.eq(local_name))
                .filter(following::target_ap_id.eq(target)),
        )
        .execute(conn)
        .map(|n| n > 0)
    }
}

/// Accepts or rejects a waiting follow request of `local_name` (a user or a group) and queues
/// the answer, in the caller's transaction. Returns the request as it was, or None when there is no such request.
pub fn decide(
    conn: &mut DbConn,
    urls: &super::Urls,
    local_name: &str,
    id: i64,
    accept: bool,
) -> QueryResult<Option<Follower>> {
    let Some(request) = find(conn, local_name, id)?.filter(|f| !f.is_accepted()) else {
        return Ok(None);
    };
    if accept {
        set_accepted(conn, request.id)?;
    } else {
        remove(conn, local_name, &request.actor_ap_id)?;
    }
    // Users and groups share the name space; the answer comes from whichever this is.
    let kind: Option<String> = crate::db::schema::local_names::table
        .find(local_name)
        .select(crate::db::schema::local_names::kind)
        .first(conn)
        .optional()?;
    let actor = if kind.as_deref() == Some("group") {
        urls.group(local_name)
    } else {
        urls.user(local_name)
    };
    let activity = answer(urls, &actor, &request, accept);
    super::delivery::send(conn, local_name, &activity, [request.delivery_inbox()])?;
    Ok(Some(request))
}

/// Switches manual approval of followers on or off for a user and tells the followers (their
/// servers show the lock). Switching it off accepts every waiting request, as Mastodon does.
/// Returns how many waiting requests were accepted.
pub fn set_manual_approval(
    conn: &mut DbConn,
    urls: &super::Urls,
    user: &crate::accounts::model::User,
    manual: bool,
) -> QueryResult<usize> {
    use crate::db::schema::users;
    if user.manually_approves_followers == manual {
        return Ok(0);
    }
    diesel::update(users::table.find(user.id))
        .set((
            users::manually_approves_followers.eq(manual),
            users::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
    let mut accepted = 0;
    if !manual {
        for request in pending(conn, &user.username)? {
            decide(conn, urls, &user.username, request.id, true)?;
            accepted += 1;
        }
    }
    if let Some(updated) = crate::accounts::model::User::find(conn, user.id)? {
        super::actors::send_profile_update(conn, urls, &updated)?;
    }
    Ok(accepted)
}
