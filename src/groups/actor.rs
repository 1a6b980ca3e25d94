//! A public group as an ActivityPub `Group` (FEP-1b12): followable, with a moderators collection
//! as `attributedTo`, `featured` (pinned threads) and an `outbox`; profile changes go to its
//! followers as `Update{Group}`. Internal groups have no actor.

use diesel::QueryResult;
use serde_json::{Value, json};

use super::model::{self, Group};
use super::rules::Permission;
use crate::db::DbConn;
use crate::federation::actors::{context, public_key, rfc3339};
use crate::federation::{Urls, delivery, keys};

/// The `Group` document.
pub fn document(group: &Group, public_key_pem: &str, urls: &Urls, images: &crate::media::Images) -> Value {
    let id = urls.group(&group.slug);
    let mut doc = json!({
        "@context": context(),
        "id": id,
        "type": "Group",
        "preferredUsername": group.slug,
        "name": group.title,
        "summary": group.summary_html,
        "source": { "content": group.summary_source, "mediaType": "text/markdown" },
        "url": id,
        "inbox": urls.shared_inbox(),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "featured": format!("{id}/featured"),
        "attributedTo": format!("{id}/moderators"),
        "publicKey": public_key(&id, public_key_pem),
        "endpoints": { "sharedInbox": urls.shared_inbox() },
        "icon": crate::federation::actors::image(urls, images.avatar.as_ref()),
        "manuallyApprovesFollowers": group.manually_approves_followers,
        "discoverable": true,
        // Lemmy: whether only moderators may start threads.
        "postingRestrictedToMods": !group.allow_remote_threads,
        "published": rfc3339(&group.created_at),
        "updated": rfc3339(&group.updated_at),
    });
    if let (Some(banner), Some(o)) = (&images.banner, doc.as_object_mut()) {
        o.insert(
            "image".into(),
            crate::federation::actors::image(urls, Some(banner)),
        );
    }
    doc
}

/// The moderators collection: members whose roles may moderate (leads, assistants, moderators
/// in the default template).
pub fn moderators(conn: &mut DbConn, group: &Group, urls: &Urls) -> QueryResult<Value> {
    let names = model::members_with(conn, group.id, Permission::Moderate.as_str())?;
    let items: Vec<String> = names.iter().map(|n| urls.user(n)).collect();
    Ok(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": format!("{}/moderators", urls.group(&group.slug)),
        "type": "OrderedCollection",
        "totalItems": items.len(),
        "orderedItems": items,
    }))
}

/// Sends `Update{Group}` with the current document to the group's followers.
pub fn send_update(conn: &mut DbConn, urls: &Urls, group: &Group) -> QueryResult<usize> {
    let Some(key) = keys::find(conn, &group.slug)? else {
        return Ok(0);
    };
    let images = model::images(conn, group)?;
    let mut doc = document(group, &key.public_key_pem, urls, &images);
    let context = doc
        .as_object_mut()
        .and_then(|o| o.remove("@context"))
        .unwrap_or_else(context);
    let id = urls.group(&group.slug);
    let activity = json!({
        "@context": context,
        "id": format!("{id}#updates/{}", crate::db::now().and_utc().timestamp_millis()),
        "type": "Update",
        "actor": id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [format!("{id}/followers")],
        "object": doc,
    });
    delivery::send_to_followers(conn, &group.slug, &group.slug, &activity)
}
