//! Remote followers of local actors.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::followers;

/// Adds or refreshes a follower (a repeated Follow updates the inbox and the Follow id).
pub fn add(
    conn: &mut DbConn,
    local_name: &str,
    actor: &str,
    inbox: &str,
    follow_id: &str,
) -> QueryResult<()> {
    let now = crate::db::now();
    let row = (
        followers::local_name.eq(local_name),
        followers::actor_ap_id.eq(actor),
        followers::inbox.eq(inbox),
        followers::follow_id.eq(follow_id),
        followers::created_at.eq(now),
    );
    let changes = (followers::inbox.eq(inbox), followers::follow_id.eq(follow_id));
    match conn {
        DbConn::Pg(c) => diesel::insert_into(followers::table)
            .values(row)
            .on_conflict((followers::local_name, followers::actor_ap_id))
            .do_update()
            .set(changes)
            .execute(c),
        DbConn::Sqlite(c) => diesel::insert_into(followers::table)
            .values(row)
            .on_conflict((followers::local_name, followers::actor_ap_id))
            .do_update()
            .set(changes)
            .execute(c),
    }
    .map(|_| ())
}

/// Removes `actor` as a follower of `local_name`; returns whether it was one.
pub fn remove(conn: &mut DbConn, local_name: &str, actor: &str) -> QueryResult<bool> {
    diesel::delete(
        followers::table
            .filter(followers::local_name.eq(local_name))
            .filter(followers::actor_ap_id.eq(actor)),
    )
    .execute(conn)
    .map(|n| n > 0)
}

pub fn count(conn: &mut DbConn, local_name: &str) -> QueryResult<i64> {
    followers::table
        .filter(followers::local_name.eq(local_name))
        .count()
        .get_result(conn)
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
