//! The shared inbox `POST /inbox`: our own pipeline, so signatures are checked with aws-lc-rs.
//!
//! Order: content type → Signature header → Digest → JSON → activity → id origin = actor origin →
//! domain policy → dedupe → fetch the actor (cached; refetched once when the key fails, for key
//! rotation) → signature and Date policy → apply. A missing, bad or unverifiable signature is 401
//! (RFC 9421 senders fall back to draft-cavage on 401). Unknown activity types get 202 and one
//! debug line. Processing is bounded in time.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use diesel::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::fetch::Signer;
use super::protocol::{self, Document, RemoteActivity};
use super::{INSTANCE_OWNER, Urls, delivery, follows, keys, remote, signatures};
use crate::accounts::model::{Status, User};
use crate::db::schema::received_activities;
use crate::db::{self, write_tx};
use crate::state::AppState;
use crate::threads::incoming::{self, Outcome};

/// How long received activity ids are remembered: longer than any sender retries the same one.
pub const DEDUPE_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// Forgets received activity ids older than `before`.
pub fn prune_received(conn: &mut db::DbConn, before: chrono::NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(received_activities::table.filter(received_activities::received_at.lt(before)))
        .execute(conn)
}

/// Longest we spend on one incoming activity (Lemmy allows 9 s).
const BUDGET: Duration = Duration::from_secs(9);

fn answer(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": status.canonical_reason().unwrap_or("error"), "message": message })),
    )
        .into_response()
}

pub async fn shared_inbox(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match tokio::time::timeout(BUDGET, process(&state, &uri, &headers, &body)).await {
        Ok(response) => response,
        Err(_) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "Processing took too long; try again later.",
        ),
    }
}

async fn process(state: &AppState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ![
        "application/activity+json",
        "application/ld+json",
        "application/json",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
    {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Send activities as application/activity+json.",
        );
    }
    let Some(sig_header) = headers.get("signature").and_then(|v| v.to_str().ok()) else {
        return answer(StatusCode::UNAUTHORIZED, "The request is not signed.");
    };
    let sig = match signatures::parse_signature_header(sig_header) {
        Ok(s) => s,
        Err(e) => return answer(StatusCode::UNAUTHORIZED, &e.to_string()),
    };
    if !headers
        .get("digest")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|d| signatures::digest_matches(d, body))
    {
        return answer(
            StatusCode::UNAUTHORIZED,
            "The Digest header is missing or does not match the body.",
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return answer(StatusCode::BAD_REQUEST, "The body is not valid JSON.");
    };
    let activity = match protocol::parse(&value) {
        Ok(Document::Activity(a)) => a,
        Ok(other) => {
            tracing::debug!(kind = other.kind(), "inbox: not an activity, ignored");
            return StatusCode::ACCEPTED.into_response();
        }
        Err(reason) => {
            tracing::debug!(%reason, "inbox: unreadable document, ignored");
            return StatusCode::ACCEPTED.into_response();
        }
    };
    let actor_host = activity.actor.host_str().unwrap_or_default().to_ascii_lowercase();
    if activity
        .id
        .as_ref()
        .is_some_and(|id| id.origin() != activity.actor.origin())
    {
        return answer(
            StatusCode::BAD_REQUEST,
            "The activity id is not on the actor's server.",
        );
    }
    if state.domain_policy().await.refusal(&actor_host).is_some() {
        return answer(
            StatusCode::FORBIDDEN,
            "This server does not federate with your domain.",
        );
    }
    // The key must belong to the activity's actor: inbox forwarding is not accepted.
    let key_owner = sig.key_id.split('#').next().unwrap_or_default();
    if key_owner != activity.actor.as_str() && !sig.key_id.starts_with(activity.actor.as_str()) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "The signing key does not belong to the activity's actor.",
        );
    }
    let dedupe_key = activity.id.as_ref().map_or_else(
        || {
            format!(
                "sha256:{}",
                Sha256::digest(body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        },
        ToString::to_string,
    );
    let k = dedupe_key.clone();
    match state
        .db()
        .run(move |c| {
            received_activities::table
                .find(&k)
                .count()
                .get_result::<i64>(c)
                .map_err(db::Error::from)
        })
        .await
    {
        Ok(0) => {}
        Ok(_) => return StatusCode::ACCEPTED.into_response(),
        Err(e) => return internal(&e),
    }
    let signer = match instance_signer(state).await {
        Ok(s) => s,
        Err(e) => return internal(&e),
    };
    // Verify with the cached key; on failure fetch the actor once more (it may have a new key).
    let target = uri.path_and_query().map_or("/inbox", |pq| pq.as_str());
    // A header sent several times is signed as its values joined by ", ".
    let lookup = |name: &str| -> Option<String> {
        let v = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(", ");
        (!v.is_empty()).then_some(v)
    };
    let Ok(message) = signatures::signing_string(&sig, "POST", target, lookup) else {
        return answer(
            StatusCode::UNAUTHORIZED,
            "A signed header is missing from the request.",
        );
    };
    let mut verified = None;
    for refresh in [false, true] {
        match remote::resolve(state.db(), state.fetch(), Some(&signer), &activity.actor, refresh).await {
            Ok(actor) => {
                if actor
                    .key_pem(&sig.key_id)
                    .is_some_and(|pem| signatures::verify(&sig, &message, &pem).is_ok())
                {
                    verified = Some(actor);
                    break;
                }
            }
            Err(remote::Error::Deleted(_)) if activity.kind == "Delete" => {
                // An actor that deleted itself cannot be verified any more, but its own server
                // answering 410 for it is proof enough: forget its follows, and answer 202 so
                // the sender stops retrying.
                let gone = activity.actor.to_string();
                if let Err(e) = state.db().run(move |c| forget_actor(c, &gone)).await {
                    return internal(&e);
                }
                return StatusCode::ACCEPTED.into_response();
            }
            Err(e) => {
                tracing::debug!(error = %e, "inbox: the signing actor cannot be fetched");
                return answer(StatusCode::UNAUTHORIZED, "The signing key cannot be fetched.");
            }
        }
    }
    let Some(sender) = verified else {
        return answer(StatusCode::UNAUTHORIZED, "The signature does not verify.");
    };
    let date = headers.get("date").and_then(|v| v.to_str().ok());
    if let Err(e) = signatures::check_policy(&sig, "POST", date, chrono::Utc::now()) {
        return answer(StatusCode::UNAUTHORIZED, &e.to_string());
    }
    match apply(state, &activity, &value, &sender, &dedupe_key).await {
        Ok(Outcome::Done) => {
            // Whatever was applied may have queued deliveries (a group's Announce, an Accept).
            state.wake_delivery();
            StatusCode::ACCEPTED.into_response()
        }
        Ok(Outcome::Refused(status, message)) => answer(status, message),
        Err(e) => internal(&e),
    }
}

fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "inbox: internal error");
    answer(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The activity could not be processed; it may be sent again.",
    )
}

pub(crate) async fn instance_signer(state: &AppState) -> Result<Signer, super::Error> {
    let key = state.db().run(|c| keys::ensure(c, INSTANCE_OWNER)).await?;
    Ok(Signer {
        key_id: format!("{}#main-key", Urls::new(state.config()).instance_actor()),
        private_key_pem: key.private_key_pem,
    })
}

/// Removes a deleted remote actor's follows in both directions and marks it deleted.
fn forget_actor(c: &mut db::DbConn, actor: &str) -> Result<(), db::Error> {
    write_tx(c, |c| forget_actor_in(c, actor)).map_err(db::Error::from)
}

/// [`forget_actor`] inside the caller's transaction.
fn forget_actor_in(c: &mut db::DbConn, actor: &str) -> QueryResult<()> {
    use crate::db::schema::{followers, following};
    remote::mark_deleted(c, actor, db::now())?;
    diesel::delete(followers::table.filter(followers::actor_ap_id.eq(actor))).execute(c)?;
    diesel::delete(following::table.filter(following::target_ap_id.eq(actor))).execute(c)?;
    Ok(())
}

/// A local actor an URL names: `/u/{name}` or `/g/{slug}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LocalActor {
    User(String),
    Group(String),
}

impl LocalActor {
    fn name(&self) -> &str {
        match self {
            Self::User(n) | Self::Group(n) => n,
        }
    }

    fn url(&self, urls: &Urls) -> String {
        match self {
            Self::User(n) => urls.user(n),
            Self::Group(n) => urls.group(n),
        }
    }
}

fn local_actor(urls: &Urls, url: &Url) -> Option<LocalActor> {
    let rest = url.as_str().strip_prefix(urls.base())?;
    let (make, name): (fn(String) -> LocalActor, &str) = if let Some(n) = rest.strip_prefix("/u/") {
        (LocalActor::User, n)
    } else if let Some(n) = rest.strip_prefix("/g/") {
        (LocalActor::Group, n)
    } else {
        return None;
    };
    (!name.is_empty() && !name.contains('/')).then(|| make(name.to_owned()))
}

/// Applies a verified activity and records it as received, in one transaction.
/// `sender` is the actor whose signature was just verified (fetched or cached then), so nothing
/// is looked up twice.
async fn apply(
    state: &AppState,
    activity: &RemoteActivity,
    raw: &Value,
    sender: &remote::CachedActor,
    dedupe_key: &str,
) -> Result<Outcome, db::Error> {
    let key = dedupe_key.to_owned();
    let record = move |c: &mut db::DbConn| -> QueryResult<bool> { record_received(c, &key) };
    let actor = activity.actor.as_str();
    let object_id = activity.object_id.as_ref().map(Url::as_str);
    let object_kind = activity
        .object
        .as_ref()
        .and_then(|o| o.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let about_actor = object_id == Some(actor);
    match activity.kind.as_str() {
        "Create" => return incoming::create(state, raw, sender, record).await,
        "Announce" => return incoming::announced(state, raw, sender, record).await,
        "Update" if !about_actor && !is_actor_type(object_kind) => {
            return incoming::update(state, raw, sender, record).await;
        }
        "Delete" if !about_actor => {
            if let Some(id) = object_id {
                return incoming::delete(state, raw, id, sender, record).await;
            }
        }
        "Like" => {
            if let Some(id) = object_id {
                let like_id = activity.id.as_ref().map(ToString::to_string);
                return incoming::like(state, id, like_id, actor, true, record).await;
            }
        }
        "Undo" if object_kind == "Like" => {
            let liked = activity
                .object
                .as_ref()
                .and_then(|o| o.get("object"))
                .and_then(|o| o.as_str().or_else(|| o.get("id").and_then(Value::as_str)));
            if let Some(id) = liked {
                return incoming::like(state, id, None, actor, false, record).await;
            }
        }
        _ => {}
    }
    apply_follows_and_actors(state, activity, sender, dedupe_key)
        .await
        .map(|()| Outcome::Done)
}

fn is_actor_type(kind: &str) -> bool {
    matches!(
        kind,
        "Person" | "Group" | "Application" | "Service" | "Organization"
    )
}

/// Records an activity as received; false when it was received before.
fn record_received(c: &mut db::DbConn, key: &str) -> QueryResult<bool> {
    let inserted = diesel::insert_into(received_activities::table)
        .values((
            received_activities::key.eq(key),
            received_activities::received_at.eq(db::now()),
        ))
        .execute(c);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Follows, Accept/Reject, Undo{Follow}, and Update/Delete of actors.
async fn apply_follows_and_actors(
    state: &AppState,
    activity: &RemoteActivity,
    sender: &remote::CachedActor,
    dedupe_key: &str,
) -> Result<(), db::Error> {
    let urls = Urls::new(state.config());
    let actor = activity.actor.to_string();
    let key = dedupe_key.to_owned();
    let record =
        move |c: &mut db::DbConn| -> Result<bool, diesel::result::Error> { record_received(c, &key) };
    match activity.kind.as_str() {
        "Follow" => {
            let Some(target) = activity.object_id.as_ref().and_then(|o| local_actor(&urls, o)) else {
                return state
                    .db()
                    .run(move |c| write_tx(c, record).map(|_| ()).map_err(db::Error::from))
                    .await;
            };
            let Some(inbox) = sender.inbox.clone().or_else(|| sender.shared_inbox.clone()) else {
                return Ok(());
            };
            let shared = sender.shared_inbox.clone();
            let follow_id = activity.id.as_ref().map(ToString::to_string).unwrap_or_default();
            let done = state
                .db()
                .run(move |c| {
                    write_tx(c, |c| -> Result<bool, diesel::result::Error> {
                        if !record(c)? {
                            return Ok(false);
                        }
                        // Only active users and public groups can be followed; anything else is
                        // treated as unknown.
                        let manual = match &target {
                            LocalActor::User(name) => match User::by_username(c, name)? {
                                Some(u) if u.status() == Status::Active => u.manually_approves_followers,
                                _ => return Ok(false),
                            },
                            LocalActor::Group(slug) => match crate::groups::Group::by_slug(c, slug)? {
                                Some(g) if g.federates() => g.manually_approves_followers,
                                _ => return Ok(false),
                            },
                        };
                        let name = target.name();
                        let follower =
                            follows::add(c, name, &actor, &inbox, shared.as_deref(), &follow_id, manual)?;
                        if !follower.is_accepted() {
                            // Waits for a decision (the user's settings page, or the API).
                            return Ok(false);
                        }
                        let accept = follows::answer(&urls, &target.url(&urls), &follower, true);
                        delivery::send(c, name, &accept, [follower.delivery_inbox()])?;
                        Ok(true)
                    })
                    .map_err(db::Error::from)
                })
                .await?;
            if done {
                state.wake_delivery();
            }
            Ok(())
        }
        "Undo" => {
            // The Follow embedded (Mastodon, Lemmy) or named by its id only (allowed by the spec,
            // sent by Fedify): then the follower row is found by the Follow's id and the actor.
            enum Undone {
                Follow(String),
                ById(String),
                Nothing,
            }
            let undone = match &activity.object {
                Some(Value::String(id)) => Undone::ById(id.clone()),
                Some(o) => match protocol::parse(o) {
                    Ok(Document::Activity(f)) if f.kind == "Follow" && f.actor == activity.actor => f
                        .object_id
                        .and_then(|o| local_actor(&urls, &o))
                        .map_or(Undone::Nothing, |t| Undone::Follow(t.name().to_owned())),
                    _ => Undone::Nothing,
                },
                None => Undone::Nothing,
            };
            state
                .db()
                .run(move |c| {
                    write_tx(c, |c| {
                        if record(c)? {
                            match undone {
                                Undone::Follow(name) => {
                                    follows::remove(c, &name, &actor)?;
                                }
                                Undone::ById(id) => {
                                    follows::remove_by_follow_id(c, &id, &actor)?;
                                }
                                Undone::Nothing => {}
                            }
                        }
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db::Error::from)
                })
                .await
        }
        "Accept" | "Reject" => {
            // The object is our Follow, embedded or by id; it must have gone to this actor.
            let follow_id = activity.object.as_ref().and_then(|o| match o {
                Value::String(s) => Some(s.clone()),
                Value::Object(m) => m.get("id").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            });
            let accepted = activity.kind == "Accept";
            state
                .db()
                .run(move |c| {
                    write_tx(c, |c| {
                        if record(c)?
                            && let Some(id) = follow_id
                        {
                            if accepted {
                                follows::outgoing::accept(c, &id, &actor)?;
                            } else {
                                follows::outgoing::remove_by_follow_id(c, &id, &actor)?;
                            }
                        }
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db::Error::from)
                })
                .await
        }
        "Update" => {
            // A profile change: the embedded actor document replaces our cached copy. Only the
            // actor itself may speak for its profile.
            let updated = activity.object.as_ref().and_then(|o| match protocol::parse(o) {
                Ok(Document::Actor(a)) if a.id == activity.actor => Some(a),
                _ => None,
            });
            state
                .db()
                .run(move |c| {
                    write_tx(c, |c| {
                        if record(c)?
                            && let Some(a) = updated
                        {
                            remote::store(c, &a, db::now())?;
                        }
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db::Error::from)
                })
                .await
        }
        "Delete" if activity.object_id.as_ref() == Some(&activity.actor) => {
            let gone = actor.clone();
            state
                .db()
                .run(move |c| {
                    write_tx(c, |c| {
                        if record(c)? {
                            forget_actor_in(c, &gone)?;
                        }
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db::Error::from)
                })
                .await
        }
        other => {
            tracing::debug!(
                kind = other,
                "inbox: activity type not handled yet, accepted and ignored"
            );
            state
                .db()
                .run(move |c| write_tx(c, record).map(|_| ()).map_err(db::Error::from))
                .await
        }
    }
}
