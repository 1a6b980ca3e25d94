//! Outgoing deliveries, stored as jobs in the same transaction as the change that caused them,
//! so nothing is lost across a restart; retried with the queue's exponential backoff.
//! 2xx is done; 4xx other than 408 and 429 is final (the receiver refuses it) and dropped with a
//! log line; anything else is retried.
//!
//! Not yet: one shared-inbox POST per instance for many followers, per-instance concurrency and
//! dead-instance detection (tracked in the federation issue).

use serde::{Deserialize, Serialize};
use url::Url;

use super::fetch::Signer;
use super::{INSTANCE_OWNER, Urls, keys};
use crate::db::jobs::{self, NewJob};
use crate::db::{self, DbConn};
use crate::state::AppState;

pub const KIND: &str = "federation.deliver";

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    /// The local actor (owner in `actor_keys`) who signs.
    owner: String,
    inbox: String,
    activity: serde_json::Value,
}

/// Queues `activity` for `inbox`, signed by `owner`. Call inside the transaction of the change.
pub fn enqueue(
    conn: &mut DbConn,
    owner: &str,
    inbox: &str,
    activity: serde_json::Value,
) -> Result<(), db::Error> {
    let payload = serde_json::to_string(&Payload {
        owner: owner.to_owned(),
        inbox: inbox.to_owned(),
        activity,
    })
    .map_err(|e| db::Error::Migration(e.to_string()))?;
    jobs::enqueue(conn, &NewJob::new(KIND, &payload, db::now()))?;
    Ok(())
}

/// Runs one delivery job (called by the worker).
pub async fn execute(state: &AppState, payload: &str) -> Result<(), String> {
    let p: Payload = serde_json::from_str(payload).map_err(|e| format!("bad delivery payload: {e}"))?;
    let inbox = Url::parse(&p.inbox).map_err(|e| format!("bad inbox {}: {e}", p.inbox))?;
    let owner = p.owner.clone();
    let key = state
        .db()
        .run(move |c| keys::find(c, &owner).map_err(db::Error::from))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no key for {}", p.owner))?;
    let urls = Urls::new(state.config());
    let actor = if p.owner == INSTANCE_OWNER {
        urls.instance_actor()
    } else {
        urls.user(&p.owner)
    };
    let signer = Signer {
        key_id: format!("{actor}#main-key"),
        private_key_pem: key.private_key_pem,
    };
    let body = serde_json::to_vec(&p.activity).map_err(|e| e.to_string())?;
    // Refreshes the fetch client's blocklist, so a domain blocked since queueing gets nothing.
    state.blocked_domains().await;
    match state.fetch().post_activity(&inbox, &body, &signer).await {
        Ok(status) if (200..300).contains(&status) => Ok(()),
        Ok(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
            tracing::info!(inbox = %inbox, status, "delivery refused by the receiver; dropped");
            Ok(())
        }
        Ok(status) => Err(format!("{inbox} answered {status}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Deliveries per receiving host: (host, waiting, retrying, failed for good).
pub fn queue_summary(conn: &mut DbConn) -> Result<Vec<(String, i64, i64, i64)>, db::Error> {
    use diesel::prelude::*;

    use crate::db::schema::jobs;
    let rows: Vec<(String, i32, Option<chrono::NaiveDateTime>)> = jobs::table
        .filter(jobs::kind.eq(KIND))
        .select((jobs::payload, jobs::attempts, jobs::failed_at))
        .load(conn)?;
    let mut by_host: std::collections::BTreeMap<String, (i64, i64, i64)> = std::collections::BTreeMap::new();
    for (payload, attempts, failed_at) in rows {
        let host = serde_json::from_str::<Payload>(&payload)
            .ok()
            .and_then(|p| Url::parse(&p.inbox).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "(unreadable)".to_owned());
        let entry = by_host.entry(host).or_default();
        match (failed_at, attempts) {
            (Some(_), _) => entry.2 += 1,
            (None, 0) => entry.0 += 1,
            (None, _) => entry.1 += 1,
        }
    }
    Ok(by_host.into_iter().map(|(h, (w, r, f))| (h, w, r, f)).collect())
}
