//! Outgoing deliveries: a persistent queue per receiving instance.
//!
//! An activity is stored once (`outgoing_activities`) in the same transaction as the change that
//! caused it, with one `deliveries` row per distinct inbox: followers on one server that share an
//! inbox get one POST. Every `agora` process runs one [`run`] loop that claims due rows (PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, SQLite `BEGIN IMMEDIATE`), pushing their due time forward by a lease
//! so a crashed process's rows come back by themselves; an in-flight request may therefore be sent
//! twice, and receivers deduplicate by activity id.
//!
//! Per instance (`host[:port]` of the inbox) at most [`PER_HOST`] requests are in flight per
//! process, so one slow server cannot hold all [`GLOBAL`] slots. Outcomes: 2xx is done; 4xx other
//! than 408 and 429 is final (the receiver refuses it) and dropped with a log line; anything else
//! is retried after 1.25^n seconds (capped at a day, at least what `Retry-After` asks for). After a
//! failure the rest of that instance's claimed rows wait with it instead of failing one by one. An
//! instance that has failed for [`DEAD_AFTER`] is dead: its rows are skipped and one delivery an
//! hour probes it; the first success revives it. Deliveries older than [`MAX_AGE`] are given up.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::rsa::KeyPair;
use chrono::{NaiveDateTime, TimeDelta};
use diesel::prelude::*;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinSet;
use url::Url;

use super::fetch::{FetchError, SigningKey};
use super::keys;
use crate::db::schema::{deliveries, followers, instances, outgoing_activities};
use crate::db::{self, DbConn, write_tx};
use crate::state::AppState;

/// Requests in flight per receiving instance, per process.
pub const PER_HOST: usize = 8;
/// Requests in flight per process.
pub const GLOBAL: usize = 64;
/// How long a claim lasts. A claimed row waits at most for the instance's earlier rows (each
/// bounded by the 10 s request timeout) before its own request, well inside this.
pub const LEASE: TimeDelta = TimeDelta::seconds(60);
/// Deliveries are given up this long after they were queued.
pub const MAX_AGE: TimeDelta = TimeDelta::days(7);
/// An instance failing without a single success for this long is dead.
pub const DEAD_AFTER: TimeDelta = TimeDelta::days(2);
/// How often a dead instance gets one probe delivery.
pub const PROBE_EVERY: TimeDelta = TimeDelta::hours(1);
const MAX_BACKOFF_SECS: f64 = 86_400.0;
/// Idle poll interval; queued work wakes the loop at once.
const POLL: Duration = Duration::from_secs(2);
/// Outcomes are written in batches: one transaction for many deliveries.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
const FLUSH_SIZE: usize = 64;

/// Delay after the `attempts`-th failed attempt: 1.25^n seconds, capped at one day.
pub fn backoff(attempts: i32) -> TimeDelta {
    let secs = 1.25_f64.powi(attempts.clamp(1, 200)).min(MAX_BACKOFF_SECS);
    TimeDelta::milliseconds((secs * 1000.0) as i64)
}

/// The instance a URL belongs to: lower-case host, with the port when one is given.
pub fn instance_of(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    })
}

/// Queues `activity` (which must carry `id` and `actor`) for every distinct inbox, signed with
/// `owner`'s key. Call inside the transaction of the change that caused it. Returns how many
/// deliveries were queued; unusable inbox URLs are skipped with a log line.
pub fn send<I, S>(conn: &mut DbConn, owner: &str, activity: &Value, inboxes: I) -> QueryResult<usize>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for inbox in inboxes {
        let inbox = inbox.as_ref();
        if !seen.insert(inbox.to_owned()) {
            continue;
        }
        match Url::parse(inbox).ok().and_then(|u| instance_of(&u)) {
            Some(host) => rows.push((inbox.to_owned(), host)),
            None => tracing::info!(inbox, "not a usable inbox URL; nothing queued for it"),
        }
    }
    if rows.is_empty() {
        return Ok(0);
    }
    let now = db::now();
    let ap_id = activity.get("id").and_then(Value::as_str).unwrap_or_default();
    let activity_id: i64 = diesel::insert_into(outgoing_activities::table)
        .values((
            outgoing_activities::ap_id.eq(ap_id),
            outgoing_activities::owner.eq(owner),
            outgoing_activities::body.eq(activity.to_string()),
            outgoing_activities::created_at.eq(now),
        ))
        .returning(outgoing_activities::id)
        .get_result(conn)?;
    // Well below both backends' bind-parameter limits.
    for chunk in rows.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(inbox, host)| {
                (
                    deliveries::activity_id.eq(activity_id),
                    deliveries::inbox.eq(inbox),
                    deliveries::host.eq(host),
                    deliveries::attempts.eq(0),
                    deliveries::next_attempt_at.eq(now),
                    deliveries::created_at.eq(now),
                )
            })
            .collect();
        // Multi-row inserts exist per backend only.
        match conn {
            DbConn::Pg(c) => diesel::insert_into(deliveries::table).values(values).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(deliveries::table).values(values).execute(c)?,
        };
    }
    Ok(rows.len())
}

/// Queues `activity` for every accepted follower of the local actor `local_name`, one delivery per
/// shared inbox (or personal inbox where a follower's server has none).
pub fn send_to_followers(
    conn: &mut DbConn,
    owner: &str,
    local_name: &str,
    activity: &Value,
) -> QueryResult<usize> {
    let inboxes: Vec<(String, Option<String>)> = followers::table
        .filter(followers::local_name.eq(local_name))
        .filter(followers::state.eq("accepted"))
        .select((followers::inbox, followers::shared_inbox))
        .load(conn)?;
    send(
        conn,
        owner,
        activity,
        inboxes.into_iter().map(|(inbox, shared)| shared.unwrap_or(inbox)),
    )
}

/// A claimed delivery with what is needed to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub inbox: String,
    pub host: String,
    pub attempts: i32,
    pub created_at: NaiveDateTime,
    pub owner: String,
    pub body: Arc<str>,
}

/// What became of one claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 2xx.
    Delivered,
    /// A final 4xx: the receiver will never take it.
    Refused(u16),
    /// Not sendable (blocked domain, bad URL, missing key): dropped.
    Dropped(String),
    /// Try again; `retry_after` from the receiver, `instance_failed` when the instance itself
    /// failed (network error, timeout, 5xx) rather than asking us to slow down.
    Retry {
        error: String,
        retry_after: Option<TimeDelta>,
        instance_failed: bool,
    },
    /// Not attempted (its instance failed on an earlier row, or shutdown): due again at this time.
    Released(NaiveDateTime),
}

/// Claims up to `limit` due deliveries, skipping paused instances and `exclude` (instances this
/// process already has enough of). Of a dead instance whose probe time has come only one row is
/// taken, and its next probe is scheduled at once so other processes do not probe it too.
pub fn claim(
    conn: &mut DbConn,
    now: NaiveDateTime,
    limit: i64,
    exclude: &[String],
) -> QueryResult<Vec<Claimed>> {
    write_tx(conn, |conn| {
        let paused = instances::table
            .select(instances::host)
            .filter(instances::paused_until.gt(now));
        let due = deliveries::table
            .select((deliveries::id, deliveries::host))
            .filter(deliveries::next_attempt_at.le(now))
            .filter(deliveries::host.ne_all(paused))
            .filter(deliveries::host.ne_all(exclude))
            .order((deliveries::next_attempt_at, deliveries::id))
            .limit(limit);
        let candidates: Vec<(i64, String)> = match conn {
            DbConn::Pg(c) => due.for_update().skip_locked().load(c)?,
            DbConn::Sqlite(c) => due.load(c)?,
        };
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let hosts: HashSet<&str> = candidates.iter().map(|(_, h)| h.as_str()).collect();
        let dead: HashSet<String> = instances::table
            .select(instances::host)
            .filter(instances::dead.eq(true))
            .filter(instances::host.eq_any(hosts.iter().copied()))
            .load(conn)?
            .into_iter()
            .collect();
        let mut probed = HashSet::new();
        let ids: Vec<i64> = candidates
            .iter()
            .filter(|(_, host)| !dead.contains(host) || probed.insert(host.clone()))
            .map(|(id, _)| *id)
            .collect();
        if !probed.is_empty() {
            diesel::update(instances::table.filter(instances::host.eq_any(&probed)))
                .set(instances::paused_until.eq(now + PROBE_EVERY))
                .execute(conn)?;
        }
        diesel::update(deliveries::table.filter(deliveries::id.eq_any(&ids)))
            .set(deliveries::next_attempt_at.eq(now + LEASE))
            .execute(conn)?;
        let rows: Vec<(i64, String, String, i32, NaiveDateTime, String, String)> = deliveries::table
            .inner_join(outgoing_activities::table)
            .filter(deliveries::id.eq_any(&ids))
            .order((deliveries::next_attempt_at, deliveries::id))
            .select((
                deliveries::id,
                deliveries::inbox,
                deliveries::host,
                deliveries::attempts,
                deliveries::created_at,
                outgoing_activities::owner,
                outgoing_activities::body,
            ))
            .load(conn)?;
        // Many rows of one fan-out share a body; keep one copy in memory.
        let mut bodies: HashMap<String, Arc<str>> = HashMap::new();
        let mut claimed: Vec<Claimed> = rows
            .into_iter()
            .map(|(id, inbox, host, attempts, created_at, owner, body)| {
                let body = bodies
                    .entry(body)
                    .or_insert_with_key(|b| Arc::from(b.as_str()))
                    .clone();
                Claimed {
                    id,
                    inbox,
                    host,
                    attempts,
                    created_at,
                    owner,
                    body,
                }
            })
            .collect();
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    })
}

/// The health record of one instance, as [`record`] keeps it.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset, PartialEq, Eq)]
#[diesel(table_name = instances)]
#[diesel(treat_none_as_null = true)]
pub struct Instance {
    pub host: String,
    pub failing_since: Option<NaiveDateTime>,
    pub last_success_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub paused_until: Option<NaiveDateTime>,
    pub dead: bool,
}

impl Instance {
    fn new(host: &str) -> Self {
        Self {
            host: host.to_owned(),
            failing_since: None,
            last_success_at: None,
            last_error: None,
            paused_until: None,
            dead: false,
        }
    }

    /// The instance answered.
    fn answered(&mut self, now: NaiveDateTime) {
        if self.dead {
            tracing::info!(instance = %self.host, "instance answers again; deliveries resume");
        }
        if self.dead {
            // The probe pause; a Retry-After pause of a live instance runs out by itself.
            self.paused_until = None;
        }
        self.failing_since = None;
        self.last_success_at = Some(now);
        self.dead = false;
    }

    fn failed(&mut self, now: NaiveDateTime, error: &str) {
        let since = *self.failing_since.get_or_insert(now);
        self.last_error = Some(error.chars().take(500).collect());
        if now - since >= DEAD_AFTER {
            if !self.dead {
                tracing::warn!(instance = %self.host, "instance has failed for two days; marked dead, probed hourly");
            }
            self.dead = true;
            self.paused_until = Some(now + PROBE_EVERY);
        }
    }
}

/// Writes the outcomes of a batch in one transaction: removes finished rows, reschedules the
/// rest, and updates each instance's health.
pub fn record(conn: &mut DbConn, now: NaiveDateTime, outcomes: &[(Claimed, Outcome)]) -> QueryResult<()> {
    write_tx(conn, |conn| {
        let hosts: HashSet<&str> = outcomes.iter().map(|(c, _)| c.host.as_str()).collect();
        let mut health: HashMap<String, Instance> = instances::table
            .filter(instances::host.eq_any(hosts.iter().copied()))
            .select(Instance::as_select())
            .load(conn)?
            .into_iter()
            .map(|i| (i.host.clone(), i))
            .collect();
        let before = health.clone();
        let mut finished = Vec::new();
        for (c, outcome) in outcomes {
            let instance = health
                .entry(c.host.clone())
                .or_insert_with(|| Instance::new(&c.host));
            match outcome {
                Outcome::Delivered => {
                    instance.answered(now);
                    finished.push(c.id);
                }
                Outcome::Refused(status) => {
                    tracing::info!(inbox = %c.inbox, status, "delivery refused by the receiver; dropped");
                    instance.answered(now);
                    finished.push(c.id);
                }
                Outcome::Dropped(reason) => {
                    tracing::info!(inbox = %c.inbox, %reason, "delivery dropped");
                    finished.push(c.id);
                }
                Outcome::Retry {
                    error,
                    retry_after,
                    instance_failed,
                } => {
                    let attempts = c.attempts + 1;
                    if now - c.created_at >= MAX_AGE {
                        tracing::warn!(inbox = %c.inbox, attempts, %error, "delivery given up after seven days");
                        finished.push(c.id);
                    } else {
                        let mut delay = backoff(attempts);
                        if let Some(wait) = retry_after {
                            delay = delay.max(*wait);
                            let until = now + *wait;
                            instance.paused_until =
                                Some(instance.paused_until.map_or(until, |p| p.max(until)));
                        }
                        diesel::update(deliveries::table.find(c.id))
                            .set((
                                deliveries::attempts.eq(attempts),
                                deliveries::next_attempt_at.eq(now + delay),
                                deliveries::last_error.eq(error.chars().take(1000).collect::<String>()),
                            ))
                            .execute(conn)?;
                    }
                    if *instance_failed {
                        instance.failed(now, error);
                    }
                }
                Outcome::Released(at) => {
                    diesel::update(deliveries::table.find(c.id))
                        .set(deliveries::next_attempt_at.eq(*at))
                        .execute(conn)?;
                }
            }
        }
        for chunk in finished.chunks(500) {
            diesel::delete(deliveries::table.filter(deliveries::id.eq_any(chunk))).execute(conn)?;
        }
        for (host, instance) in health {
            if before.get(&host) == Some(&instance) {
                continue;
            }
            if before.contains_key(&host) {
                diesel::update(instances::table.find(&host))
                    .set(&instance)
                    .execute(conn)?;
            } else if instance != Instance::new(&host) || instance.last_success_at.is_some() {
                // PostgreSQL: another process may have inserted it meanwhile; theirs stands.
                match conn {
                    DbConn::Pg(c) => diesel::insert_into(instances::table)
                        .values(&instance)
                        .on_conflict_do_nothing()
                        .execute(c)?,
                    DbConn::Sqlite(c) => diesel::insert_into(instances::table)
                        .values(&instance)
                        .on_conflict_do_nothing()
                        .execute(c)?,
                };
            }
        }
        Ok(())
    })
}

/// Removes deliveries past [`MAX_AGE`] (those of dead instances are never attempted, so they do
/// not give up on their own) and activities no delivery refers to any more.
pub fn purge(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<(usize, usize)> {
    write_tx(conn, |conn| {
        let expired = diesel::delete(deliveries::table.filter(deliveries::created_at.lt(now - MAX_AGE)))
            .execute(conn)?;
        let referenced = deliveries::table.select(deliveries::activity_id);
        let orphans = diesel::delete(
            outgoing_activities::table
                .filter(outgoing_activities::id.ne_all(referenced))
                .filter(outgoing_activities::created_at.lt(now - TimeDelta::minutes(10))),
        )
        .execute(conn)?;
        Ok((expired, orphans))
    })
}

/// One line per instance with queued deliveries or a known failure, for `agora federation queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    pub host: String,
    /// Never attempted yet.
    pub pending: i64,
    /// Attempted and failed at least once.
    pub retrying: i64,
    pub state: String,
}

pub fn queue_summary(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<Vec<QueueLine>> {
    let counts: Vec<(String, i32)> = deliveries::table
        .select((deliveries::host, deliveries::attempts))
        .load(conn)?;
    let mut by_host: std::collections::BTreeMap<String, (i64, i64)> = std::collections::BTreeMap::new();
    for (host, attempts) in counts {
        let e = by_host.entry(host).or_default();
        if attempts == 0 {
            e.0 += 1;
        } else {
            e.1 += 1;
        }
    }
    let health: HashMap<String, Instance> = instances::table
        .select(Instance::as_select())
        .load(conn)?
        .into_iter()
        .map(|i| (i.host.clone(), i))
        .collect();
    for (host, i) in &health {
        if i.dead || i.failing_since.is_some() {
            by_host.entry(host.clone()).or_default();
        }
    }
    let fmt = |t: NaiveDateTime| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(by_host
        .into_iter()
        .map(|(host, (pending, retrying))| {
            let state = match health.get(&host) {
                Some(i) if i.dead => format!(
                    "dead (failing since {}; next probe {})",
                    i.failing_since.map(fmt).unwrap_or_default(),
                    i.paused_until.map(fmt).unwrap_or_else(|| "now".into())
                ),
                Some(i) if i.paused_until.is_some_and(|p| p > now) => {
                    format!(
                        "paused until {} (Retry-After)",
                        i.paused_until.map(fmt).unwrap_or_default()
                    )
                }
                Some(i) if i.failing_since.is_some() => {
                    format!("failing since {}", i.failing_since.map(fmt).unwrap_or_default())
                }
                _ => "ok".into(),
            };
            QueueLine {
                host,
                pending,
                retrying,
                state,
            }
        })
        .collect())
}

/// `Retry-After`: seconds or an HTTP date, capped at a day.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<TimeDelta> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<i64>() {
        TimeDelta::seconds(secs)
    } else {
        chrono::DateTime::parse_from_rfc2822(value)
            .ok()?
            .with_timezone(&chrono::Utc)
            - now
    };
    (delay > TimeDelta::zero()).then(|| delay.min(TimeDelta::days(1)))
}

/// Maps an HTTP answer to an outcome.
pub fn classify(status: u16, retry_after: Option<TimeDelta>) -> Outcome {
    match status {
        200..=299 => Outcome::Delivered,
        408 | 429 => Outcome::Retry {
            error: format!("HTTP {status}"),
            retry_after,
            instance_failed: false,
        },
        400..=499 => Outcome::Refused(status),
        _ => Outcome::Retry {
            error: format!("HTTP {status}"),
            retry_after,
            instance_failed: true,
        },
    }
}

struct HostQueue {
    pending: VecDeque<Claimed>,
    in_flight: usize,
}

/// Parsed signing keys, by owner. Local keys never change, so entries never go stale.
#[derive(Default)]
struct KeyCache(HashMap<String, Option<Arc<KeyPair>>>);

impl KeyCache {
    async fn get(&mut self, state: &AppState, owner: &str) -> Option<Arc<KeyPair>> {
        if let Some(k) = self.0.get(owner) {
            return k.clone();
        }
        let o = owner.to_owned();
        let pem = state
            .db()
            .run(move |c| keys::find(c, &o).map_err(db::Error::from))
            .await
            .ok()
            .flatten()
            .map(|k| k.private_key_pem);
        let pair = pem
            .and_then(|p| super::signatures::parse_private_key(&p).ok())
            .map(Arc::new);
        self.0.insert(owner.to_owned(), pair.clone());
        pair
    }
}

async fn attempt(state: AppState, key: Option<Arc<KeyPair>>, c: Claimed) -> (Claimed, Outcome) {
    let outcome = attempt_inner(&state, key, &c).await;
    (c, outcome)
}

async fn attempt_inner(state: &AppState, key: Option<Arc<KeyPair>>, c: &Claimed) -> Outcome {
    let Some(pair) = key else {
        return Outcome::Dropped(format!("no signing key for {}", c.owner));
    };
    let Ok(inbox) = Url::parse(&c.inbox) else {
        return Outcome::Dropped("not a URL".into());
    };
    let actor = serde_json::from_str::<Value>(&c.body)
        .ok()
        .and_then(|v| v.get("actor").and_then(Value::as_str).map(str::to_owned));
    let Some(actor) = actor else {
        return Outcome::Dropped("the activity has no actor".into());
    };
    let key = SigningKey {
        key_id: format!("{actor}#main-key"),
        pair,
    };
    match state.fetch().post_activity(&inbox, c.body.as_bytes(), &key).await {
        Ok(answer) => classify(answer.status, answer.retry_after),
        Err(e @ FetchError::Refused { .. }) => Outcome::Dropped(e.to_string()),
        Err(e) => Outcome::Retry {
            error: e.to_string(),
            retry_after: None,
            instance_failed: true,
        },
    }
}

/// The delivery loop of one process; returns when `shutdown` turns true, after the requests in
/// flight (at most the request timeout) and with unstarted claims handed back.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut hosts: HashMap<String, HostQueue> = HashMap::new();
    let mut tasks: JoinSet<(Claimed, Outcome)> = JoinSet::new();
    let mut done: Vec<(Claimed, Outcome)> = Vec::new();
    let mut keys = KeyCache::default();
    let mut last_flush = Instant::now();
    let mut stopping = false;
    loop {
        if !done.is_empty()
            && (done.len() >= FLUSH_SIZE || tasks.is_empty() || last_flush.elapsed() >= FLUSH_EVERY)
        {
            flush(&state, &mut done).await;
            last_flush = Instant::now();
        }
        if stopping {
            let now = db::now();
            for q in hosts.values_mut() {
                done.extend(q.pending.drain(..).map(|c| (c, Outcome::Released(now))));
            }
            let drain = async {
                while let Some(r) = tasks.join_next().await {
                    if let Ok(r) = r {
                        done.push(r);
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(12), drain).await;
            flush(&state, &mut done).await;
            return;
        }
        // Keeps the fetch client's policy current, so a domain blocked since queueing gets nothing.
        state.domain_policy().await;
        let queued: usize = hosts.values().map(|q| q.pending.len() + q.in_flight).sum();
        let mut claimed_full = false;
        if queued <= GLOBAL / 2 {
            let exclude: Vec<String> = hosts
                .iter()
                .filter(|(_, q)| q.pending.len() + q.in_flight >= PER_HOST)
                .map(|(h, _)| h.clone())
                .collect();
            let limit = i64::try_from(GLOBAL - queued).unwrap_or(1);
            match state
                .db()
                .run(move |c| claim(c, db::now(), limit, &exclude).map_err(db::Error::from))
                .await
            {
                Ok(claimed) => {
                    claimed_full = i64::try_from(claimed.len()).unwrap_or(0) == limit;
                    for c in claimed {
                        hosts
                            .entry(c.host.clone())
                            .or_insert_with(|| HostQueue {
                                pending: VecDeque::new(),
                                in_flight: 0,
                            })
                            .pending
                            .push_back(c);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "delivery queue cannot be read"),
            }
        }
        for q in hosts.values_mut() {
            while q.in_flight < PER_HOST
                && let Some(c) = q.pending.pop_front()
            {
                let key = keys.get(&state, &c.owner).await;
                q.in_flight += 1;
                tasks.spawn(attempt(state.clone(), key, c));
            }
        }
        hosts.retain(|_, q| q.in_flight > 0 || !q.pending.is_empty());
        let wait = if claimed_full && tasks.len() < GLOBAL {
            Duration::ZERO
        } else if done.is_empty() {
            POLL
        } else {
            FLUSH_EVERY
        };
        tokio::select! {
            Some(result) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((c, outcome)) = result {
                    if let Some(q) = hosts.get_mut(&c.host) {
                        q.in_flight = q.in_flight.saturating_sub(1);
                        if let Outcome::Retry { instance_failed: true, .. } = &outcome {
                            // The instance is failing: its other claimed rows wait with it.
                            let at = db::now() + backoff(c.attempts + 1);
                            done.extend(q.pending.drain(..).map(|p| (p, Outcome::Released(at))));
                        }
                    }
                    done.push((c, outcome));
                }
            }
            () = state.delivery_woken() => {}
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => { stopping = true; }
        }
        if *shutdown.borrow() {
            stopping = true;
        }
    }
}

async fn flush(state: &AppState, done: &mut Vec<(Claimed, Outcome)>) {
    let batch = std::mem::take(done);
    let result = state
        .db()
        .run(move |c| record(c, db::now(), &batch).map_err(db::Error::from))
        .await;
    if let Err(e) = result {
        // The rows keep their lease and come back when it runs out: sent again, deduplicated.
        tracing::warn!(error = %e, "delivery outcomes could not be recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_by_a_quarter_and_is_capped() {
        assert_eq!(backoff(1), TimeDelta::milliseconds(1250));
        assert_eq!(backoff(2), TimeDelta::milliseconds(1562));
        assert!(backoff(20) > TimeDelta::seconds(86) && backoff(20) < TimeDelta::seconds(87));
        assert_eq!(backoff(60), TimeDelta::days(1));
        assert_eq!(backoff(10_000), TimeDelta::days(1));
        assert_eq!(backoff(0), backoff(1));
    }

    #[test]
    fn statuses() {
        assert_eq!(classify(202, None), Outcome::Delivered);
        assert_eq!(classify(410, None), Outcome::Refused(410));
        assert!(matches!(
            classify(429, None),
            Outcome::Retry {
                instance_failed: false,
                ..
            }
        ));
        assert!(matches!(
            classify(408, None),
            Outcome::Retry {
                instance_failed: false,
                ..
            }
        ));
        assert!(matches!(
            classify(503, None),
            Outcome::Retry {
                instance_failed: true,
                ..
            }
        ));
        assert!(matches!(
            classify(302, None),
            Outcome::Retry {
                instance_failed: true,
                ..
            }
        ));
    }

    #[test]
    fn retry_after() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("120", now), Some(TimeDelta::seconds(120)));
        assert_eq!(
            parse_retry_after("Fri, 04 Dec 2026 10:05:00 GMT", now),
            Some(TimeDelta::minutes(5))
        );
        assert_eq!(parse_retry_after("999999", now), Some(TimeDelta::days(1)));
        assert_eq!(parse_retry_after("0", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now), None);
    }

    #[test]
    fn instances_are_told_apart_by_port() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            instance_of(&u("https://Social.Example/inbox")).unwrap(),
            "social.example"
        );
        assert_eq!(
            instance_of(&u("http://127.0.0.2:8080/inbox")).unwrap(),
            "127.0.0.2:8080"
        );
    }

    #[test]
    fn an_instance_dies_after_two_days_of_failures_and_revives_on_success() {
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let mut i = Instance::new("down.example");
        i.failed(t0, "connection refused");
        assert!(!i.dead);
        i.failed(t0 + TimeDelta::days(1), "connection refused");
        assert!(!i.dead, "one day is not enough");
        i.failed(t0 + DEAD_AFTER, "connection refused");
        assert!(i.dead);
        assert_eq!(i.paused_until, Some(t0 + DEAD_AFTER + PROBE_EVERY));
        i.answered(t0 + DEAD_AFTER + PROBE_EVERY);
        assert!(!i.dead && i.failing_since.is_none() && i.paused_until.is_none());
    }
}
