//! Instance settings changed at run time (key → text), overriding the config file's values.
//! Writing one is an upsert, which diesel's common SQL subset cannot express, hence the
//! per-backend branches.

use diesel::prelude::*;

use super::DbConn;
use super::schema::instance_settings;

/// Reads one setting.
pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    instance_settings::table
        .find(key)
        .select(instance_settings::value)
        .first(conn)
        .optional()
}

/// Reads every setting, for building the effective instance settings in one query.
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    instance_settings::table
        .select((instance_settings::key, instance_settings::value))
        .order(instance_settings::key)
        .load(conn)
}

/// Inserts or replaces a setting.
pub fn put(conn: &mut DbConn, key: &str, value: &str) -> QueryResult<()> {
    let now = super::now();
    let row = (
        instance_settings::key.eq(key),
        instance_settings::value.eq(value),
        instance_settings::updated_at.eq(now),
    );
    let changes = (
        instance_settings::value.eq(value),
        instance_settings::updated_at.eq(now),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(instance_settings::table)
            .values(row)
            .on_conflict(instance_settings::key)
            .do_update()
            .set(changes)
            .execute(c),
        DbConn::Sqlite(c) => diesel::insert_into(instance_settings::table)
            .values(row)
            .on_conflict(instance_settings::key)
            .do_update()
            .set(changes)
            .execute(c),
    }
    .map(|_| ())
}

/// Removes a setting so the config file's value applies again.
pub fn remove(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    diesel::delete(instance_settings::table.find(key))
        .execute(conn)
        .map(|_| ())
}
