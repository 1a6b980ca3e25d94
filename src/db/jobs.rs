//! A durable job queue in the database, shared by every `agora` process on one database.
//!
//! Claiming differs per backend: PostgreSQL selects due rows `FOR UPDATE SKIP LOCKED`, so several
//! processes claim disjoint jobs without waiting on each other; SQLite has a single writer, so the
//! claim runs in one `BEGIN IMMEDIATE` transaction. A claim is a lease (`locked_until`): a job whose
//! worker died becomes due again when the lease runs out. Failures back off exponentially until
//! `max_attempts`, then the job is kept with `failed_at` set for an admin to inspect.

use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;

use super::schema::jobs;
use super::{DbConn, write_tx};

#[derive(Debug, Clone, Queryable, Selectable, PartialEq, Eq)]
#[diesel(table_name = jobs)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub dedupe_key: Option<String>,
    pub run_at: NaiveDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub failed_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = jobs)]
pub struct NewJob<'a> {
    pub kind: &'a str,
    pub payload: &'a str,
    pub dedupe_key: Option<&'a str>,
    pub run_at: NaiveDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: NaiveDateTime,
}

impl<'a> NewJob<'a> {
    pub fn new(kind: &'a str, payload: &'a str, run_at: NaiveDateTime) -> Self {
        Self {
            kind,
            payload,
            dedupe_key: None,
            run_at,
            attempts: 0,
            max_attempts: 10,
            created_at: run_at,
        }
    }

    /// At most one pending job per key: enqueueing again while one waits does nothing.
    pub fn dedupe(mut self, key: &'a str) -> Self {
        self.dedupe_key = Some(key);
        self
    }
}

/// Enqueues a job; returns false when a job with the same dedupe key already exists.
pub fn enqueue(conn: &mut DbConn, job: &NewJob<'_>) -> QueryResult<bool> {
    let inserted = match conn {
        DbConn::Pg(c) => diesel::insert_into(jobs::table)
            .values(job)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(jobs::table)
            .values(job)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// Claims up to `limit` due jobs for `lease`, oldest first, and counts the attempt.
pub fn claim(conn: &mut DbConn, now: NaiveDateTime, limit: i64, lease: TimeDelta) -> QueryResult<Vec<Job>> {
    macro_rules! due_ids {
        () => {
            jobs::table
                .select(jobs::id)
                .filter(jobs::failed_at.is_null())
                .filter(jobs::run_at.le(now))
                .filter(jobs::locked_until.is_null().or(jobs::locked_until.lt(now)))
                .order((jobs::run_at, jobs::id))
                .limit(limit)
        };
    }
    write_tx(conn, |conn| {
        let ids: Vec<i64> = match conn {
            DbConn::Pg(c) => due_ids!().for_update().skip_locked().load(c)?,
            DbConn::Sqlite(c) => due_ids!().load(c)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut claimed: Vec<Job> = diesel::update(jobs::table.filter(jobs::id.eq_any(&ids)))
            .set((
                jobs::locked_until.eq(now + lease),
                jobs::attempts.eq(jobs::attempts + 1),
            ))
            .returning(jobs::all_columns)
            .get_results(conn)?;
        claimed.sort_by_key(|j| (j.run_at, j.id));
        Ok(claimed)
    })
}

/// Removes a finished job.
pub fn complete(conn: &mut DbConn, id: i64) -> QueryResult<()> {
    diesel::delete(jobs::table.find(id)).execute(conn).map(|_| ())
}

/// Delay before the next attempt: 30 s doubling per attempt, capped at six hours.
pub fn backoff(attempts: i32) -> TimeDelta {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    let secs = 30_i64.saturating_mul(1_i64 << exp.min(20));
    TimeDelta::seconds(secs.min(6 * 3600))
}

/// Records a failed attempt: due again after [`backoff`], or kept as failed after the last attempt.
pub fn fail(conn: &mut DbConn, job: &Job, now: NaiveDateTime, error: &str) -> QueryResult<()> {
    let error: String = error.chars().take(2000).collect();
    let target = jobs::table.find(job.id);
    if job.attempts >= job.max_attempts {
        diesel::update(target)
            .set((
                jobs::locked_until.eq(None::<NaiveDateTime>),
                jobs::last_error.eq(error),
                jobs::failed_at.eq(now),
            ))
            .execute(conn)?;
    } else {
        diesel::update(target)
            .set((
                jobs::locked_until.eq(None::<NaiveDateTime>),
                jobs::last_error.eq(error),
                jobs::run_at.eq(now + backoff(job.attempts)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), TimeDelta::seconds(30));
        assert_eq!(backoff(2), TimeDelta::seconds(60));
        assert_eq!(backoff(5), TimeDelta::seconds(480));
        assert_eq!(backoff(30), TimeDelta::seconds(6 * 3600));
        assert_eq!(backoff(0), TimeDelta::seconds(30));
    }
}
