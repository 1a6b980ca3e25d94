//! Remote actors: fetched through [`super::fetch`], read by [`super::protocol`], cached in
//! `remote_actors`, and refreshed when older than a day (or at once, when a signature fails with
//! the cached key: the actor may have rotated it). A fetch failure falls back to the cached copy;
//! 410 Gone marks the actor deleted.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use url::Url;

use super::fetch::{FetchClient, FetchError, Signer};
use super::protocol::{self, Document, PublicKey};
use crate::db::schema::remote_actors;
use crate::db::{self, Db, DbConn};

/// How long a fetched actor is used before it is fetched again.
pub const MAX_AGE: TimeDelta = TimeDelta::hours(24);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = remote_actors)]
pub struct CachedActor {
    pub id: i64,
    pub ap_id: String,
    pub domain: String,
    pub kind: String,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    pub inbox: Option<String>,
    pub shared_inbox: Option<String>,
    keys_json: String,
    pub fetched_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredKey {
    id: String,
    pem: String,
}

impl CachedActor {
    /// The PEM of the key a signature names (`keyId`), or the only key.
    pub fn key_pem(&self, key_id: &str) -> Option<String> {
        let keys: Vec<StoredKey> = serde_json::from_str(&self.keys_json).unwrap_or_default();
        keys.iter()
            .find(|k| k.id == key_id)
            .or(keys.first().filter(|_| keys.len() == 1))
            .map(|k| k.pem.clone())
    }

    /// Where deliveries for this actor go: the shared inbox when it has one.
    pub fn delivery_inbox(&self) -> Option<&str> {
        self.shared_inbox.as_deref().or(self.inbox.as_deref())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{0} is not an actor")]
    NotAnActor(String),
    #[error("{url} answered with the document of {id}")]
    IdMismatch { url: String, id: String },
    #[error("{0} has been deleted")]
    Deleted(String),
    #[error("{url} cannot be read: {reason}")]
    Unreadable { url: String, reason: String },
    #[error(transparent)]
    Db(#[from] db::Error),
}

pub fn find(conn: &mut DbConn, ap_id: &str) -> QueryResult<Option<CachedActor>> {
    remote_actors::table
        .filter(remote_actors::ap_id.eq(ap_id))
        .select(CachedActor::as_select())
        .first(conn)
        .optional()
}

/// Inserts or refreshes an actor (upsert on `ap_id`).
pub fn store(conn: &mut DbConn, actor: &protocol::RemoteActor, now: NaiveDateTime) -> QueryResult<()> {
    let keys: Vec<StoredKey> = actor
        .keys
        .iter()
        .map(|PublicKey { id, pem, .. }| StoredKey {
            id: id.clone(),
            pem: pem.clone(),
        })
        .collect();
    let keys_json = serde_json::to_string(&keys).unwrap_or_else(|_| "[]".to_owned());
    let row = (
        remote_actors::ap_id.eq(actor.id.as_str()),
        // With the port when there is one (it is part of the handle: @name@host:port).
        remote_actors::domain.eq(super::delivery::instance_of(&actor.id).unwrap_or_default()),
        remote_actors::kind.eq(&actor.kind),
        remote_actors::preferred_username.eq(&actor.preferred_username),
        remote_actors::name.eq(&actor.name),
        remote_actors::inbox.eq(actor.inbox.as_ref().map(Url::as_str)),
        remote_actors::shared_inbox.eq(actor.shared_inbox.as_ref().map(Url::as_str)),
        remote_actors::keys_json.eq(&keys_json),
        remote_actors::fetched_at.eq(now),
        remote_actors::deleted_at.eq(None::<NaiveDateTime>),
    );
    macro_rules! upsert {
        ($c:expr) => {
            diesel::insert_into(remote_actors::table)
                .values(row.clone())
                .on_conflict(remote_actors::ap_id)
                .do_update()
                .set((
                    remote_actors::kind.eq(&actor.kind),
                    remote_actors::preferred_username.eq(&actor.preferred_username),
                    remote_actors::name.eq(&actor.name),
                    remote_actors::inbox.eq(actor.inbox.as_ref().map(Url::as_str)),
                    remote_actors::shared_inbox.eq(actor.shared_inbox.as_ref().map(Url::as_str)),
                    remote_actors::keys_json.eq(&keys_json),
                    remote_actors::fetched_at.eq(now),
                    remote_actors::deleted_at.eq(None::<NaiveDateTime>),
                ))
                .execute($c)
        };
    }
    match conn {
        DbConn::Pg(c) => upsert!(c),
        DbConn::Sqlite(c) => upsert!(c),
    }
    .map(|_| ())
}

pub fn mark_deleted(conn: &mut DbConn, ap_id: &str, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(remote_actors::table.filter(remote_actors::ap_id.eq(ap_id)))
        .set(remote_actors::deleted_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

/// The actor at `url`: from the cache while fresh (and not `refresh`), else fetched. The database
/// connection is never held during the fetch.
pub async fn resolve(
    db: &Db,
    client: &FetchClient,
    signer: Option<&Signer>,
    url: &Url,
    refresh: bool,
) -> Result<CachedActor, Error> {
    let now = db::now();
    let key = url.as_str().to_owned();
    let cached = db.run(move |c| find(c, &key).map_err(db::Error::from)).await?;
    if let Some(actor) = &cached {
        if actor.deleted_at.is_some() {
            return Err(Error::Deleted(url.to_string()));
        }
        if !refresh && now - actor.fetched_at < MAX_AGE {
            return Ok(actor.clone());
        }
    }
    let value = match client.get_json(url, signer).await {
        Ok(v) => v,
        Err(FetchError::Gone(_)) => {
            let key = url.as_str().to_owned();
            db.run(move |c| mark_deleted(c, &key, now).map_err(db::Error::from))
                .await?;
            return Err(Error::Deleted(url.to_string()));
        }
        // A server that is down for a moment should not make its users unknown.
        Err(e) => return cached.ok_or(Error::Fetch(e)),
    };
    let actor = match protocol::parse(&value) {
        Ok(Document::Actor(a)) => a,
        Ok(_) => return Err(Error::NotAnActor(url.to_string())),
        Err(reason) => {
            return Err(Error::Unreadable {
                url: url.to_string(),
                reason,
            });
        }
    };
    // The document must be the one asked for: a server may not speak for another's actors.
    if actor.id.as_str() != url.as_str() {
        return Err(Error::IdMismatch {
            url: url.to_string(),
            id: actor.id.to_string(),
        });
    }
    let key = url.as_str().to_owned();
    db.run(move |c| {
        store(c, &actor, now).map_err(db::Error::from)?;
        find(c, &key)?.ok_or(db::Error::Query(diesel::result::Error::NotFound))
    })
    .await
    .map_err(Error::Db)
}
