//! Background job runner: claims due jobs from the database queue ([`crate::db::jobs`]) and runs
//! them. Every `agora` process runs one; claiming makes sure each job runs in one process only.

use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::watch;

use crate::accounts;
use crate::db::jobs::{self, Job, NewJob};
use crate::db::{self, write_tx};
use crate::state::AppState;

/// Housekeeping: delete expired sessions, old login failures, old received-activity ids and
/// deliveries given up on, then schedule the next run.
pub const PURGE_EXPIRED: &str = "accounts.purge_expired";

const POLL: Duration = Duration::from_secs(5);
/// Jobs claimed at once, and how long a claim lasts. A delivery takes at most 10 s (the fetch
/// timeout), so a batch ends well inside its lease; after a crash its unfinished jobs are due again
/// when the lease runs out (a delivery may then be sent twice; receivers deduplicate by id).
const BATCH: i64 = 8;
const LEASE: TimeDelta = TimeDelta::minutes(2);

/// Schedules the recurring jobs (idempotent: a job that is already queued is kept).
pub fn schedule_recurring(conn: &mut db::DbConn) -> Result<(), db::Error> {
    jobs::enqueue(
        conn,
        &NewJob::new(PURGE_EXPIRED, "{}", db::now()).dedupe(PURGE_EXPIRED),
    )?;
    Ok(())
}

/// Runs until `shutdown` changes to true.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        match run_due(&state).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "job runner could not claim jobs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            () = state.worker_woken() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

/// Claims and runs one batch of due jobs; returns how many ran.
pub async fn run_due(state: &AppState) -> Result<usize, db::Error> {
    let claimed = state
        .db()
        .run(|c| jobs::claim(c, db::now(), BATCH, LEASE).map_err(db::Error::from))
        .await?;
    let n = claimed.len();
    for job in claimed {
        let outcome = execute(state, &job).await;
        let result = state
            .db()
            .run(move |c| match outcome {
                Ok(()) => jobs::complete(c, job.id),
                Err(e) => {
                    tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %e, "job failed");
                    jobs::fail(c, &job, db::now(), &e)
                }
            }
            .map_err(db::Error::from))
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record a job's outcome; it runs again after its lease");
        }
    }
    Ok(n)
}

async fn execute(state: &AppState, job: &Job) -> Result<(), String> {
    match job.kind.as_str() {
        PURGE_EXPIRED => {
            let id = job.id;
            state
                .db()
                .run(move |c| {
                    write_tx(c, |c| {
                        let now = db::now();
                        let (sessions, failures) =
                            accounts::model::purge_expired(c, now, now - TimeDelta::days(1))?;
                        let received = crate::federation::inbox::prune_received(
                            c,
                            now - crate::federation::inbox::DEDUPE_WINDOW,
                        )?;
                        let (expired, orphans) = crate::federation::delivery::purge(c, now)?;
                        tracing::debug!(
                            sessions,
                            failures,
                            received,
                            expired,
                            orphans,
                            "purged expired sessions, login failures, old activity ids and deliveries"
                        );
                        jobs::complete(c, id)?;
                        jobs::enqueue(
                            c,
                            &NewJob::new(PURGE_EXPIRED, "{}", now + TimeDelta::hours(1))
                                .dedupe(PURGE_EXPIRED),
                        )?;
                        Ok::<_, diesel::result::Error>(())
                    })
                    .map_err(db::Error::from)
                })
                .await
                .map_err(|e| e.to_string())
        }
        other => Err(format!("unknown job kind {other}")),
    }
}
