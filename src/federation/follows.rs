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
