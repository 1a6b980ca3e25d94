//! Scenario f: exec → /readyz 200 (polled every millisecond on fresh connections), on the
//! existing large store; and after kill -9 of a server with 100 000 queued deliveries (to 1 000
//! stub instances 20 ms away), with /readyz latency while the queue resumes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::datagen::{self, Size};
use crate::report::{Row, Target, Unit};
use crate::server::{self, Backend, BenchDb, Server, scratch};
use crate::stub::{Spec, Stub};
use crate::{Ctx, load};

pub async fn run(ctx: &mut Ctx, b: Backend) -> anyhow::Result<()> {
    let name = b.name();
    // 1. The large store.
    let store = datagen::store(&ctx.cache, b, Size::for_run(ctx.quick()))?;
    let posts = store.meta.posts;
    let db = BenchDb::existing(store.url);
    let dir = tempfile::Builder::new()
        .prefix("agora-bench-f-")
        .tempdir_in(scratch())?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let (s, ready) = Server::start(&ctx.agora, &db, dir.path())?;
        times.push(ready);
        s.stop();
    }
    times.sort();
    ctx.push(
        Row::new(
            'f',
            &format!("existing store, {posts} posts"),
            name,
            "exec → /readyz 200 (median of 5)",
            ms(times[2]),
            Unit::Ms,
        )
        .target(Target::AtMost(200.0)),
    );
    ctx.push(Row::new(
        'f',
        &format!("existing store, {posts} posts"),
        name,
        "exec → /readyz 200 (max of 5)",
        ms(times[4]),
        Unit::Ms,
    ));

    // 2. kill -9 with queued deliveries.
    let queued: usize = if ctx.quick() { 2_000 } else { 100_000 };
    let instances: usize = if ctx.quick() { 10 } else { 1_000 };
    let specs = vec![
        Spec {
            latency: Duration::from_millis(20),
            ..Spec::default()
        };
        instances
    ];
    let stub = Stub::start(&specs, ctx.keys.clone(), false).await?;
    let shared = stub.shared.clone();
    let db = BenchDb::fresh(b)?;
    let dir = tempfile::Builder::new()
        .prefix("agora-bench-f2-")
        .tempdir_in(scratch())?;
    // First start: migrations and the instance actor's key, which signs the queued activity.
    let (first, _) = Server::start(&ctx.agora, &db, dir.path())?;
    first.stop();
    {
        let mut conn = db.conn()?;
        let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
        let body = format!(
            r#"{{"@context":"https://www.w3.org/ns/activitystreams","id":"http://127.0.0.1/bench/activity","type":"Announce","actor":"http://127.0.0.1/actor","object":"http://127.0.0.1/bench/note","published":"{now}"}}"#
        );
        server::exec_sql(
            &mut conn,
            &format!(
                "INSERT INTO outgoing_activities (ap_id, owner, body, created_at) VALUES ('http://127.0.0.1/bench/activity', '@instance', '{body}', '{now}')"
            ),
        )?;
        let activity = server::count(&mut conn, "SELECT max(id) AS n FROM outgoing_activities")?;
        server::exec_sql(&mut conn, "BEGIN")?;
        for chunk in (0..queued).collect::<Vec<_>>().chunks(1000) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|k| {
                    let i = k % instances;
                    let inbox = shared.inbox_of(i, k / instances);
                    format!(
                        "({activity}, '{inbox}', '{}', 0, '{now}', '{now}')",
                        shared.instances[i].host
                    )
                })
                .collect();
            server::exec_sql(
                &mut conn,
                &format!(
                    "INSERT INTO deliveries (activity_id, inbox, host, attempts, next_attempt_at, created_at) VALUES {}",
                    rows.join(",")
                ),
            )?;
        }
        server::exec_sql(&mut conn, "COMMIT")?;
    }
    let (mut killed, _) = Server::start(&ctx.agora, &db, dir.path())?;
    // Let the queue get going, then kill it mid-run.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shared.posts_ok.load(Ordering::Relaxed) < (queued as u64 / 20).min(2_000)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before_kill = shared.posts_ok.load(Ordering::Relaxed);
    killed.kill9();
    let mut srv = killed.respawn()?;
    drop(killed);
    let ready = srv.wait_ready(Duration::from_secs(60))?;
    let case = format!("after kill -9 with {queued} queued deliveries");
    ctx.push(
        Row::new('f', &case, name, "exec → /readyz 200", ms(ready), Unit::Ms).target(Target::AtMost(200.0)),
    );
    // /readyz while the queue resumes (rows claimed before the kill wait for their 60 s lease;
    // the others go at once).
    let c = load::client()?;
    let url = srv.at("/readyz");
    let mut lat = load::Sample::default();
    let watch = Instant::now();
    let resumed_from = shared.posts_ok.load(Ordering::Relaxed);
    while watch.elapsed() < Duration::from_secs(if ctx.quick() { 1 } else { 3 }) {
        let t = Instant::now();
        let ok = c.get(&url).send().await.is_ok_and(|r| r.status() == 200);
        if ok {
            lat.ok += 1;
            lat.latencies.push(t.elapsed());
        } else {
            lat.failed += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let resumed = shared.posts_ok.load(Ordering::Relaxed) - resumed_from;
    ctx.push(
        Row::new(
            'f',
            &case,
            name,
            "/readyz p99 while the queue resumes",
            lat.p_ms(0.99),
            Unit::Ms,
        )
        .check(lat.failed == 0, format!("{} /readyz failures", lat.failed)),
    );
    ctx.push(
        Row::new(
            'f',
            &case,
            name,
            "deliveries in the first seconds after restart",
            resumed as f64,
            Unit::Count,
        )
        .check(resumed > 0, "the queue did not resume"),
    );
    ctx.push(Row::new(
        'f',
        &case,
        name,
        "delivered before the kill",
        before_kill as f64,
        Unit::Count,
    ));
    srv.stop();
    drop(stub);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
