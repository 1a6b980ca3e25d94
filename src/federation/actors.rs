//! ActivityPub documents of local actors: users (`Person`) and the instance actor
//! (`Application`). Groups plug in the same way with the groups feature.

use serde_json::{Value, json};

use super::Urls;
use crate::accounts::model::User;
use crate::instance::InstanceSettings;

/// Only standard, well-known contexts: strict peers refuse documents with unknown remote ones.
pub fn context() -> Value {
    json!([
        "https://www.w3.org/ns/activitystreams",
        "https://w3id.org/security/v1"
    ])
}

pub fn rfc3339(dt: &chrono::NaiveDateTime) -> String {
    dt.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Plain text as HTML: remote servers render `summary` as HTML.
pub fn text_to_html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;");
    if escaped.is_empty() {
        String::new()
    } else {
        format!("<p>{escaped}</p>")
    }
}

/// The avatar every local actor shows until uploads exist: Mastodon and others take only raster
/// images, so a PNG rather than the SVG favicon.
pub fn default_icon(urls: &Urls) -> Value {
    json!({ "type": "Image", "mediaType": "image/png", "url": format!("{}/static/avatar.png", urls.base()) })
}

/// An uploaded image as an ActivityPub `Image`, or the default avatar.
pub fn image(urls: &Urls, media: Option<&crate::media::MediaRef>) -> Value {
    match media {
        Some(m) => {
            json!({ "type": "Image", "mediaType": m.content_type, "url": format!("{}{}", urls.base(), m.path) })
        }
        None => default_icon(urls),
    }
}

/// `publicKey` in the shape the library federates (`{id}#main-key`, owner, SPKI PEM).
pub fn public_key(id: &str, pem: &str) -> Value {
    let Ok(owner) = url::Url::parse(id) else {
        return json!({ "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": pem });
    };
    let key = activitypub_federation::protocol::public_key::PublicKey {
        id: format!("{id}#main-key"),
        owner,
        public_key_pem: pem.to_owned(),
    };
    serde_json::to_value(key).unwrap_or_default()
}

/// A local user as a `Person`. The HTML profile lives at the same URL (content negotiation).
pub fn person(
    user: &User,
    public_key_pem: &str,
    urls: &Urls,
    avatar: Option<&crate::media::MediaRef>,
) -> Value {
    let id = urls.user(&user.username);
    json!({
        "@context": context(),
        "id": id,
        "type": "Person",
        "preferredUsername": user.username,
        "name": user.display_name,
        "summary": "",
        "url": id,
        "inbox": urls.shared_inbox(),
        "outbox": format!("{id}/outbox"),
        "followers": format!("{id}/followers"),
        "following": format!("{id}/following"),
        "publicKey": public_key(&id, public_key_pem),
        "endpoints": { "sharedInbox": urls.shared_inbox() },
        "icon": image(urls, avatar),
        "manuallyApprovesFollowers": user.manually_approves_followers,
        "discoverable": true,
        "published": rfc3339(&user.created_at),
    })
}

/// Sends `Update{Person}` with the user's current actor document to their followers, so remote
/// servers refresh name and settings. Call in the transaction of the change.
pub fn send_profile_update(
    conn: &mut crate::db::DbConn,
    urls: &Urls,
    user: &User,
) -> diesel::QueryResult<usize> {
    let Some(key) = super::keys::find(conn, &user.username)? else {
        return Ok(0);
    };
    let images = crate::media::model::images_of(conn, &user.username)?;
    let mut person = person(user, &key.public_key_pem, urls, images.avatar.as_ref());
    let context = person
        .as_object_mut()
        .and_then(|o| o.remove("@context"))
        .unwrap_or_else(context);
    let id = urls.user(&user.username);
    let activity = json!({
        "@context": context,
        "id": format!("{id}#updates/{}", crate::db::now().and_utc().timestamp_millis()),
        "type": "Update",
        "actor": id,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "cc": [format!("{id}/followers")],
        "object": person,
    });
    super::delivery::send_to_followers(conn, &user.username, &user.username, &activity)
}

/// The instance actor, which signs our outgoing fetches. Fetchable without a signature.
pub fn application(
    settings: &InstanceSettings,
    host: &str,
    public_key_pem: &str,
    published: &chrono::NaiveDateTime,
    urls: &Urls,
) -> Value {
    let id = urls.instance_actor();
    json!({
        "@context": context(),
        "id": id,
        "type": "Application",
        "preferredUsername": host,
        "name": settings.name,
        "summary": text_to_html(&settings.description),
        "url": format!("{}/about", urls.base()),
        "inbox": urls.shared_inbox(),
        "outbox": format!("{id}/outbox"),
        "publicKey": public_key(&id, public_key_pem),
        "endpoints": { "sharedInbox": urls.shared_inbox() },
        "manuallyApprovesFollowers": true,
        "discoverable": false,
        "published": rfc3339(published),
    })
}

/// Items per collection page.
pub const PAGE_SIZE: i64 = 50;

/// A paged `OrderedCollection`: without `page` the collection with its count and a link to the
/// first page; with `page` (from 1) that page of items, linked to its neighbours.
pub fn paged_collection(id: &str, total: i64, page: Option<i64>, items: Vec<String>) -> Value {
    match page {
        None => json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": id,
            "type": "OrderedCollection",
            "totalItems": total,
            "first": format!("{id}?page=1"),
        }),
        Some(n) => {
            let mut doc = json!({
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": format!("{id}?page={n}"),
                "type": "OrderedCollectionPage",
                "partOf": id,
                "totalItems": total,
                "orderedItems": items,
            });
            if n * PAGE_SIZE < total {
                doc["next"] = format!("{id}?page={}", n + 1).into();
            }
            if n > 1 {
                doc["prev"] = format!("{id}?page={}", n - 1).into();
            }
            doc
        }
    }
}

/// An `OrderedCollection` without items (outbox and following until posts and outgoing follows
/// exist; followers with only its count).
pub fn empty_collection(id: String) -> Value {
    json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": id,
        "type": "OrderedCollection",
        "totalItems": 0,
        "orderedItems": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_escaped_html() {
        assert_eq!(
            text_to_html("a <b> & \"c\""),
            "<p>a &lt;b&gt; &amp; &quot;c&quot;</p>"
        );
        assert_eq!(text_to_html(""), "");
    }
}
