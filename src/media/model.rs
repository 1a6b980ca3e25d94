//! Stored images and who may see them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::{Processed, Purpose};
use crate::accounts::model::User;
use crate::db::DbConn;
use crate::db::schema::{groups, local_names, media, memberships, profile_images};

/// A stored image (the bytes are loaded only to serve it).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = media)]
pub struct Media {
    pub id: i64,
    pub sha256: String,
    pub content_type: String,
    pub width: i32,
    pub height: i32,
    pub data: Vec<u8>,
    pub created_at: NaiveDateTime,
}

/// Stores the image, or finds the identical one stored before; returns its id. ON CONFLICT
/// rather than look-then-insert: two uploads of one picture at once must not abort a
/// PostgreSQL transaction with a unique violation.
pub fn store(conn: &mut DbConn, image: &Processed) -> QueryResult<i64> {
    let row = (
        media::sha256.eq(&image.sha256),
        media::content_type.eq(image.content_type),
        media::width.eq(i32::try_from(image.width).unwrap_or(i32::MAX)),
        media::height.eq(i32::try_from(image.height).unwrap_or(i32::MAX)),
        media::data.eq(&image.bytes),
        media::created_at.eq(crate::db::now()),
    );
    match conn {
        DbConn::Pg(c) => diesel::insert_into(media::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(media::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    media::table
        .filter(media::sha256.eq(&image.sha256))
        .select(media::id)
        .first(conn)
}

/// Where a stored image is served, and its type: what pages and actor documents link to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// e.g. `/media/3f…9a.jpg`
    pub path: String,
    pub content_type: String,
}

/// A user's or group's uploaded avatar and banner.
#[derive(Debug, Clone, Default)]
pub struct Images {
    pub avatar: Option<MediaRef>,
    pub banner: Option<MediaRef>,
}

fn reference_of(sha: &str, content_type: String) -> MediaRef {
    MediaRef {
        path: format!("/media/{sha}.{}", super::rules::extension(&content_type)),
        content_type,
    }
}

/// The images of the user or group named `owner`.
pub fn images_of(conn: &mut DbConn, owner: &str) -> QueryResult<Images> {
    let rows: Vec<(String, String, String)> = profile_images::table
        .inner_join(media::table)
        .filter(profile_images::owner.eq(owner))
        .select((profile_images::purpose, media::sha256, media::content_type))
        .load(conn)?;
    let mut out = Images::default();
    for (purpose, sha, content_type) in rows {
        match Purpose::parse(&purpose) {
            Some(Purpose::Avatar) => out.avatar = Some(reference_of(&sha, content_type)),
            Some(Purpose::Banner) => out.banner = Some(reference_of(&sha, content_type)),
            None => {}
        }
    }
    Ok(out)
}

pub fn by_sha(conn: &mut DbConn, sha: &str) -> QueryResult<Option<Media>> {
    media::table
        .filter(media::sha256.eq(sha))
        .select(Media::as_select())
        .first(conn)
        .optional()
}

/// Who may see an image: anyone when a user or a public group shows it; otherwise (an internal
/// group's) only admins and that group's members.
pub fn visibility(conn: &mut DbConn, id: i64, viewer: Option<&User>) -> QueryResult<Seen> {
    let owners: Vec<(String, String)> = profile_images::table
        .inner_join(local_names::table)
        .filter(profile_images::media_id.eq(id))
        .select((profile_images::owner, local_names::kind))
        .load(conn)?;
    let mut private_groups = Vec::new();
    for (owner, kind) in owners {
        if kind == "user" {
            return Ok(Seen::Public);
        }
        let public: Option<String> = groups::table
            .filter(groups::slug.eq(&owner))
            .select(groups::visibility)
            .first(conn)
            .optional()?;
        match public.as_deref() {
            Some("public") => return Ok(Seen::Public),
            Some(_) => private_groups.push(owner),
            None => {}
        }
    }
    let Some(viewer) = viewer.filter(|_| !private_groups.is_empty()) else {
        return Ok(Seen::Hidden);
    };
    if viewer.is_admin() {
        return Ok(Seen::Private);
    }
    let member: i64 = groups::table
        .inner_join(memberships::table)
        .filter(groups::slug.eq_any(&private_groups))
        .filter(memberships::user_id.eq(viewer.id))
        .count()
        .get_result(conn)?;
    Ok(if member > 0 { Seen::Private } else { Seen::Hidden })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Public,
    /// Shown to this viewer, not cacheable by shared caches.
    Private,
    Hidden,
}

/// Sets (or with `None` removes) the avatar or banner of the user or group `owner`; the
/// replaced image is deleted when nothing else shows it. Runs in the caller's transaction.
pub fn set_image(conn: &mut DbConn, owner: &str, purpose: Purpose, new: Option<i64>) -> QueryResult<()> {
    let key = profile_images::table.find((owner, purpose.as_str()));
    let old: Option<i64> = key.select(profile_images::media_id).first(conn).optional()?;
    diesel::delete(key).execute(conn)?;
    if let Some(id) = new {
        diesel::insert_into(profile_images::table)
            .values((
                profile_images::owner.eq(owner),
                profile_images::purpose.eq(purpose.as_str()),
                profile_images::media_id.eq(id),
            ))
            .execute(conn)?;
    }
    if let Some(old) = old.filter(|o| Some(*o) != new) {
        let used: i64 = profile_images::table
            .filter(profile_images::media_id.eq(old))
            .count()
            .get_result(conn)?;
        if used == 0 {
            diesel::delete(media::table.find(old)).execute(conn)?;
        }
    }
    Ok(())
}
