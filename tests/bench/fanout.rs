//! Scenarios b and e. Fan-out: one new thread in a group with 100 000 followers on 10 000 stub
//! instances (half publish a shared inbox), 1% of POSTs answered 503, one dead instance (no
//! listener). A new thread makes the group send two activities to every inbox (Announce of the
//! Create, Announce of the Note), so the stub must see exactly 2 × unique inboxes successful
//! POSTs, none twice. Then catch-up: a receiver down (503) while 100 threads are posted, back
//! after a while, and a receiver 200 ms away; their per-instance rates. Memory (e): RSS idle, and
//! its growth during the fan-out, sampled every 100 ms from /proc.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::report::{Row, Target, Unit};
use crate::server::{self, Backend, BenchDb, Server, scratch};
use crate::stub::{Shared, Spec, Stub};
use crate::{Ctx, load};

/// Inserts followers of `group`: `per_instance` actors on each of `instances`.
fn insert_followers(
    db: &BenchDb,
    stub: &Shared,
    group: &str,
    instances: &[usize],
    per_instance: usize,
) -> anyhow::Result<()> {
    let mut conn = db.conn()?;
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    let mut rows = Vec::new();
    let flush = |conn: &mut agora::db::DbConn, rows: &mut Vec<String>| -> anyhow::Result<()> {
        if !rows.is_empty() {
            server::exec_sql(
                conn,
                &format!(
                    "INSERT INTO followers (local_name, actor_ap_id, inbox, follow_id, created_at, shared_inbox, state) VALUES {}",
                    rows.join(",")
                ),
            )?;
            rows.clear();
        }
        Ok(())
    };
    server::exec_sql(&mut conn, "BEGIN")?;
    for &i in instances {
        for n in 0..per_instance {
            let actor = stub.actor_url(i, n);
            let shared = if stub.instances[i].spec.shared_inbox {
                format!("'{}'", stub.shared_inbox_of(i))
            } else {
                "NULL".into()
            };
            rows.push(format!(
                "('{group}', '{actor}', '{}', '{actor}#follow', '{now}', {shared}, 'accepted')",
                stub.inbox_of(i, n)
            ));
            if rows.len() >= 1000 {
                flush(&mut conn, &mut rows)?;
            }
        }
    }
    flush(&mut conn, &mut rows)?;
    server::exec_sql(&mut conn, "COMMIT")?;
    Ok(())
}

/// Samples the server's RSS every 100 ms until stopped; the maximum.
fn sample_rss(pid: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<f64> {
    std::thread::spawn(move || {
        let mut max: f64 = 0.0;
        while !stop.load(Ordering::Relaxed) {
            max = max.max(server::rss_mb(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        max
    })
}

pub async fn run(ctx: &mut Ctx, b: Backend, memory_only: bool) -> anyhow::Result<()> {
    let quick = ctx.quick();
    let (mut instances, per_instance) = if quick { (20, 10) } else { (10_000, 10) };
    // Each instance costs a listening socket here; connections are closed after every answer, so
    // only the ones in flight (at most 64) come on top, on both sides.
    let fds = server::fd_limit();
    let fit = fds.saturating_sub(1_000) as usize;
    if instances > fit {
        println!(
            "  note: open-files limit {fds}: scaled down to {fit} instances ({} followers)",
            fit * per_instance
        );
        instances = fit;
    }
    let followers = instances * per_instance;
    let dead = 0;
    // Instances after the fan-out set: the catch-up receiver and the far one.
    let (down_i, far_i) = (instances, instances + 1);
    let mut specs: Vec<Spec> = (0..instances)
        .map(|i| Spec {
            shared_inbox: i % 2 == 0,
            error_rate: 0.01,
            dead: i == dead,
            ..Spec::default()
        })
        .collect();
    specs.push(Spec {
        shared_inbox: true,
        ..Spec::default()
    });
    specs.push(Spec {
        shared_inbox: true,
        latency: Duration::from_millis(200),
        ..Spec::default()
    });
    let stub = Stub::start(&specs, ctx.keys.clone(), true).await?;
    let shared = stub.shared.clone();
    let db = BenchDb::fresh(b)?;
    let dir = tempfile::Builder::new()
        .prefix("agora-bench-b-")
        .tempdir_in(scratch())?;
    let (srv, _) = Server::start(&ctx.agora, &db, dir.path())?;
    let token = srv.admin_token()?;
    let c = load::client()?;
    server::create_group(&c, &srv, &token, "fanout").await?;
    server::create_group(&c, &srv, &token, "catchup").await?;
    let all: Vec<usize> = (0..instances).collect();
    insert_followers(&db, &shared, "fanout", &all, per_instance)?;
    insert_followers(&db, &shared, "catchup", &[down_i, far_i], 1)?;
    let unique_inboxes: usize = (0..instances)
        .filter(|i| *i != dead)
        .map(|i| if specs[i].shared_inbox { 1 } else { per_instance })
        .sum();
    let expected = 2 * unique_inboxes;
    let name = b.name();

    // e: idle RSS, after a moment of rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = srv.rss_mb();
    ctx.push(Row::new('e', "idle after start", name, "RSS", idle, Unit::Mb).target(Target::AtMost(30.0)));

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = sample_rss(srv.pid, stop.clone());
    let t0 = Instant::now();
    let at0 = shared.started.elapsed();
    server::create_thread(&c, &srv, &token, "fanout", "Einladung zur Bürgerversammlung").await?;
    let api_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let limit = Duration::from_secs(if quick { 60 } else { 900 });
    loop {
        let (pairs, _) = shared.pairs();
        if pairs >= expected || t0.elapsed() > limit {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap_or(f64::NAN);
    let (pairs, doubled) = shared.pairs();
    // The time of the last successful POST of the fan-out set.
    let last = (0..instances)
        .filter_map(|i| shared.instances[i].first_last().1)
        .max()
        .unwrap_or(at0);
    let took = last.saturating_sub(at0).as_secs_f64().max(1e-3);
    let rate = pairs as f64 / took;
    let per_host_max = (0..instances)
        .map(|i| shared.instances[i].max_in_flight.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    let failed = shared.posts_failed.load(Ordering::Relaxed);
    let case =
        format!("{followers} followers on {instances} instances, {unique_inboxes} inboxes × 2 activities");
    if !memory_only {
        ctx.push(
            Row::new('b', &case, name, "deliveries/s", rate, Unit::PerSec)
                .target(Target::AtLeast(0.4 * ctx.crypto.sign * 2.0))
                .check(
                    pairs == expected,
                    format!("{pairs} of {expected} (inbox, activity) pairs delivered in {took:.0} s"),
                ),
        );
        ctx.push(Row::new(
            'b',
            &case,
            name,
            "all delivered after",
            took * 1000.0,
            Unit::Ms,
        ));
        ctx.push(Row::new(
            'b',
            &case,
            name,
            "thread API call (queues the fan-out)",
            api_ms,
            Unit::Ms,
        ));
        ctx.push(
            Row::new(
                'b',
                &case,
                name,
                "POSTs received twice",
                doubled as f64,
                Unit::Count,
            )
            .check(doubled == 0, format!("{doubled} inboxes got an activity twice")),
        );
        ctx.push(Row::new(
            'b',
            &case,
            name,
            "503 answers retried (1% rate)",
            failed as f64,
            Unit::Count,
        ));
        ctx.push(
            Row::new(
                'b',
                &case,
                name,
                "max requests in flight to one instance",
                per_host_max as f64,
                Unit::Count,
            )
            .check(per_host_max <= 8, "more than 8 in flight to one instance"),
        );
        let mut conn = db.conn()?;
        let dead_host = &shared.instances[dead].host;
        let dead_left = server::count(
            &mut conn,
            &format!("SELECT count(*) AS n FROM deliveries WHERE host = '{dead_host}'"),
        )?;
        ctx.push(
            Row::new(
                'b',
                "dead instance (connection refused)",
                name,
                "its deliveries still queued while all others arrived",
                dead_left as f64,
                Unit::Count,
            )
            .check(
                dead_left
                    == if specs[dead].shared_inbox {
                        2
                    } else {
                        2 * per_instance as i64
                    },
                format!("{dead_left} deliveries of the dead instance left"),
            ),
        );
    }
    ctx.push(
        Row::new(
            'e',
            &format!("during fan-out to {followers} followers"),
            name,
            "RSS growth per 100 000 recipients",
            (peak - idle).max(0.0) * 100_000.0 / followers as f64,
            Unit::Mb,
        )
        .target(Target::AtMost(50.0)),
    );
    ctx.push(Row::new(
        'e',
        &format!("during fan-out to {followers} followers"),
        name,
        "RSS peak",
        peak,
        Unit::Mb,
    ));
    if memory_only {
        srv.stop();
        return Ok(());
    }

    // Catch-up: the receiver is down while threads are posted, then returns.
    let threads = if quick { 3 } else { 100 };
    let down_for = Duration::from_secs(if quick { 1 } else { 60 });
    shared.set_down(down_i, true);
    let down_at = Instant::now();
    for k in 0..threads {
        server::create_thread(&c, &srv, &token, "catchup", &format!("Nachtrag {k}")).await?;
    }
    let backlog = 2 * threads as u64;
    tokio::time::sleep(down_for.saturating_sub(down_at.elapsed())).await;
    shared.set_down(down_i, false);
    let back_at = shared.started.elapsed();
    let back = Instant::now();
    let wait = Duration::from_secs(if quick { 30 } else { 600 });
    while (shared.instances[down_i].delivered.load(Ordering::Relaxed) < backlog
        || shared.instances[far_i].delivered.load(Ordering::Relaxed) < backlog)
        && back.elapsed() < wait
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = shared.instances[down_i].delivered.load(Ordering::Relaxed);
    let (first, last) = shared.instances[down_i].first_last();
    let case = format!(
        "receiver down {} s while {threads} threads were posted, then back",
        down_for.as_secs()
    );
    let (first, last) = (first.unwrap_or(back_at), last.unwrap_or(back_at));
    ctx.push(
        Row::new(
            'b',
            &case,
            name,
            "first delivery after its return",
            first.saturating_sub(back_at).as_secs_f64() * 1000.0,
            Unit::Ms,
        )
        .check(got == backlog, format!("{got} of {backlog} caught up")),
    );
    ctx.push(Row::new(
        'b',
        &case,
        name,
        "catch-up rate",
        backlog as f64 / last.saturating_sub(first).as_secs_f64().max(1e-3),
        Unit::PerSec,
    ));
    let far = &shared.instances[far_i];
    let (ff, fl) = far.first_last();
    let far_got = far.delivered.load(Ordering::Relaxed);
    let far_rate = far_got as f64
        / fl.zip(ff)
            .map_or(1e-3, |(l, f)| l.saturating_sub(f).as_secs_f64().max(1e-3));
    ctx.push(
        Row::new(
            'b',
            &format!("one instance 200 ms away, {backlog} activities"),
            name,
            "per-instance rate",
            far_rate,
            Unit::PerSec,
        )
        .target(Target::AtLeast(20.0))
        .check(far_got == backlog, format!("{far_got} of {backlog} delivered")),
    );
    srv.stop();
    drop(stub);
    if pairs == 0 {
        bail!("nothing was delivered");
    }
    Ok(())
}
