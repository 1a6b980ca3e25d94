//! Scenario a: inbox ingest. Signed Like / Create{Note} reply / Follow / Undo{Like} from 10 000
//! actors on 50 stub instances, 1% duplicates (must not take effect twice) and 1% bad signatures
//! (signed with another actor's key: must be refused with 401). Phases: cold (every actor's first
//! activity: Agora fetches the actor), warm (closed loop, 64 senders), and paced at half the warm
//! rate for the latency target. Everything is signed before the timed phases.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agora::federation::signatures;
use anyhow::bail;
use serde_json::json;

use crate::report::{Row, Target, Unit};
use crate::server::{self, Backend, BenchDb, Server, scratch};
use crate::stub::{Shared, Spec, Stub};
use crate::{Ctx, load};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Accepted,
    Duplicate,
    Refused,
}

struct Prepared {
    body: axum::body::Bytes,
    date: String,
    digest: String,
    signature: String,
    expect: Expect,
}

const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

/// Everything an activity needs to know about the server it goes to.
#[derive(Clone)]
struct Target0 {
    host: String,
    thread_url: String,
    user_url: String,
}

fn activity(t: &Target0, stub: &Shared, inst: usize, n: usize, tag: &str, kind: u64) -> serde_json::Value {
    let actor = stub.actor_url(inst, n);
    let base = format!("http://{}", stub.instances[inst].host);
    let id = format!("{base}/activities/{tag}");
    match kind % 20 {
        // 35% Like
        0..=6 => {
            json!({"@context": "https://www.w3.org/ns/activitystreams", "id": id, "type": "Like", "actor": actor, "object": t.thread_url})
        }
        // 30% Create{Note} reply
        7..=12 => json!({
            "@context": "https://www.w3.org/ns/activitystreams", "id": id, "type": "Create", "actor": actor,
            "to": [PUBLIC], "cc": [t.user_url],
            "object": {
                "id": format!("{base}/notes/{tag}"), "type": "Note", "attributedTo": actor,
                "content": format!("<p>Antwort {tag}: ein Beitrag zur Diskussion über den Radweg.</p>"),
                "inReplyTo": t.thread_url, "to": [PUBLIC], "cc": [t.user_url],
                "published": "2026-12-04T10:00:00Z"
            }
        }),
        // 20% Follow
        13..=16 => {
            json!({"@context": "https://www.w3.org/ns/activitystreams", "id": id, "type": "Follow", "actor": actor, "object": t.user_url})
        }
        // 15% Undo{Like}
        _ => json!({
            "@context": "https://www.w3.org/ns/activitystreams", "id": id, "type": "Undo", "actor": actor,
            "object": {"id": format!("{base}/activities/{tag}-like"), "type": "Like", "actor": actor, "object": t.thread_url}
        }),
    }
}

/// Signs `count` activities of phase `phase`, actor of the i-th being `actor_of(i)`; 1% are a
/// resend of an earlier one, 1% carry a signature by the wrong key.
fn prepare(
    t: &Target0,
    stub: &Arc<Shared>,
    phase: &str,
    count: usize,
    actors: usize,
    per_instance: usize,
    one_per_actor: bool,
) -> anyhow::Result<Vec<Prepared>> {
    let threads = 2;
    let chunk = count.div_ceil(threads);
    let mut parts: Vec<Vec<Prepared>> = Vec::new();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut handles = Vec::new();
        for part in 0..threads {
            let (t, stub) = (t.clone(), stub.clone());
            let phase = phase.to_owned();
            handles.push(scope.spawn(move || -> anyhow::Result<Vec<Prepared>> {
                let mut out = Vec::with_capacity(chunk);
                for i in part * chunk..((part + 1) * chunk).min(count) {
                    let a = if one_per_actor {
                        i % actors
                    } else {
                        (i * 7_919) % actors
                    };
                    let (inst, n) = (a / per_instance, a % per_instance);
                    let v = activity(
                        &t,
                        &stub,
                        inst,
                        n,
                        &format!("{phase}-{i}"),
                        (i as u64).wrapping_mul(2_654_435_761) >> 7,
                    );
                    let body = serde_json::to_vec(&v)?;
                    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
                    let digest = signatures::digest_header(&body);
                    let bad = i % 100 == 50;
                    let key = if bad {
                        stub.key_of(inst, n + 1)
                    } else {
                        stub.key_of(inst, n)
                    };
                    let key_id = format!("{}#main-key", stub.actor_url(inst, n));
                    let signature = signatures::sign_with(
                        &key.pair,
                        &key_id,
                        "POST",
                        "/inbox",
                        &[("host", &t.host), ("date", &date), ("digest", &digest)],
                    )
                    .map_err(|e| anyhow::anyhow!("signing: {e}"))?;
                    out.push(Prepared {
                        body: body.into(),
                        date,
                        digest,
                        signature,
                        expect: if bad { Expect::Refused } else { Expect::Accepted },
                    });
                }
                Ok(out)
            }));
        }
        for h in handles {
            parts.push(
                h.join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??,
            );
        }
        Ok(())
    })?;
    let mut all: Vec<Prepared> = parts.into_iter().flatten().collect();
    // 1% duplicates: every 100th item (offset 25) replaced by a resend of an accepted earlier one.
    for i in (125..all.len()).step_by(100) {
        let j = i - 100;
        if all[j].expect == Expect::Accepted {
            all[i] = Prepared {
                body: all[j].body.clone(),
                date: all[j].date.clone(),
                digest: all[j].digest.clone(),
                signature: all[j].signature.clone(),
                expect: Expect::Duplicate,
            };
        }
    }
    Ok(all)
}

/// Counts of what the server answered, by expectation.
#[derive(Default)]
struct Tally {
    accepted: AtomicU64,
    dup_ok: AtomicU64,
    refused_ok: AtomicU64,
    wrong: AtomicU64,
}

async fn send(c: &reqwest::Client, url: &str, p: &Prepared, tally: &Tally) -> bool {
    let res = c
        .post(url)
        .header("content-type", "application/activity+json")
        .header("date", &p.date)
        .header("digest", &p.digest)
        .header("signature", &p.signature)
        .body(p.body.clone())
        .send()
        .await;
    let code = match res {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    };
    match (p.expect, code) {
        (Expect::Accepted, 202) => {
            tally.accepted.fetch_add(1, Ordering::Relaxed);
            true
        }
        (Expect::Duplicate, 202) => {
            tally.dup_ok.fetch_add(1, Ordering::Relaxed);
            false
        }
        (Expect::Refused, 401) => {
            tally.refused_ok.fetch_add(1, Ordering::Relaxed);
            false
        }
        _ => {
            tally.wrong.fetch_add(1, Ordering::Relaxed);
            if tally.wrong.load(Ordering::Relaxed) <= 3 {
                eprintln!(
                    "agora-bench: inbox answered {code} to an activity expected {:?}",
                    p.expect
                );
            }
            false
        }
    }
}

pub async fn run(ctx: &mut Ctx, b: Backend) -> anyhow::Result<()> {
    let quick = ctx.quick();
    let (instances, per_instance) = if quick { (3, 20) } else { (50, 200) };
    let actors = instances * per_instance;
    let warm_n = if quick { 300 } else { 40_000 };
    let paced_secs = if quick { 1.0 } else { 10.0 };
    let paced_pool = if quick { 200 } else { 20_000 };

    let db = BenchDb::fresh(b)?;
    let dir = tempfile::Builder::new()
        .prefix("agora-bench-a-")
        .tempdir_in(scratch())?;
    let (srv, _) = Server::start(&ctx.agora, &db, dir.path())?;
    let token = srv.admin_token()?;
    srv.cli(
        &[
            "user",
            "create",
            "bench_user",
            "--email",
            "u@example.org",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    )?;
    let c = load::client()?;
    server::create_group(&c, &srv, &token, "ingest").await?;
    let tid = server::create_thread(&c, &srv, &token, "ingest", "Radweg an der Hauptstraße").await?;
    let specs = vec![
        Spec {
            shared_inbox: true,
            ..Spec::default()
        };
        instances
    ];
    let stub = Stub::start(&specs, ctx.keys.clone(), false).await?;
    let t = Target0 {
        host: srv.addr.to_string(),
        thread_url: srv.at(&format!("/g/ingest/t/{tid}")),
        user_url: srv.at("/u/bench_user"),
    };
    eprintln!("agora-bench: signing {} activities", actors + warm_n + paced_pool);
    let shared = stub.shared.clone();
    let (t2, s2) = (t.clone(), shared.clone());
    let (cold, warm, paced) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((
            prepare(&t2, &s2, "cold", actors, actors, per_instance, true)?,
            prepare(&t2, &s2, "warm", warm_n, actors, per_instance, false)?,
            prepare(&t2, &s2, "paced", paced_pool, actors, per_instance, false)?,
        ))
    })
    .await??;
    let url = Arc::new(srv.at("/inbox"));
    let tally = Arc::new(Tally::default());
    let name = b.name();

    // Cold: each actor's first activity; the server fetches 10 000 actor documents.
    let cold = Arc::new(cold);
    let fetches_before = shared.fetches.load(Ordering::Relaxed);
    let mut s = {
        let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), cold.clone());
        load::closed(64, Some(list.len() as u64), None, move |i| {
            let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), list.clone());
            async move { send(&c, &url, &list[i as usize], &tally).await }
        })
        .await
    };
    let fetched = shared.fetches.load(Ordering::Relaxed) - fetches_before;
    ctx.push(
        Row::new(
            'a',
            "cold actor cache",
            name,
            "accepted and stored/s",
            s.rate(),
            Unit::PerSec,
        )
        .target(Target::AtLeast(500.0)),
    );
    ctx.push(Row::new(
        'a',
        "cold actor cache",
        name,
        "p50",
        s.p_ms(0.5),
        Unit::Ms,
    ));
    ctx.push(
        Row::new('a', "cold actor cache", name, "p99", s.p_ms(0.99), Unit::Ms).check(
            fetched as usize >= actors * 9 / 10,
            format!("only {fetched} actor fetches for {actors} new actors"),
        ),
    );

    // Warm: closed loop at full speed.
    let warm = Arc::new(warm);
    let mut w = {
        let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), warm.clone());
        load::closed(64, Some(list.len() as u64), None, move |i| {
            let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), list.clone());
            async move { send(&c, &url, &list[i as usize], &tally).await }
        })
        .await
    };
    let warm_rate = w.rate();
    let mut row = Row::new(
        'a',
        "warm actor cache",
        name,
        "accepted and stored/s",
        warm_rate,
        Unit::PerSec,
    );
    if b == Backend::Sqlite {
        row = row.target(Target::AtLeast(2500.0));
    }
    ctx.push(row);
    ctx.push(Row::new(
        'a',
        "warm actor cache",
        name,
        "p50",
        w.p_ms(0.5),
        Unit::Ms,
    ));
    ctx.push(Row::new(
        'a',
        "warm actor cache",
        name,
        "p99",
        w.p_ms(0.99),
        Unit::Ms,
    ));

    // Paced at half the warm rate.
    let rate = (warm_rate / 2.0).max(1.0);
    let n = ((rate * paced_secs) as usize).min(paced.len());
    let paced = Arc::new(paced);
    let mut p = {
        let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), paced.clone());
        load::paced(rate, n as u64, move |i| {
            let (c, url, tally, list) = (c.clone(), url.clone(), tally.clone(), list.clone());
            async move { send(&c, &url, &list[i as usize], &tally).await }
        })
        .await
    };
    // The rate in a row of its own: the case names the row in docs/performance.md.
    let case = "paced at half the warm rate";
    ctx.push(Row::new('a', case, name, "offered rate", rate, Unit::PerSec));
    ctx.push(Row::new('a', case, name, "p50", p.p_ms(0.5), Unit::Ms));
    ctx.push(Row::new('a', case, name, "p99", p.p_ms(0.99), Unit::Ms).target(Target::AtMost(100.0)));

    // Durably stored: every accepted activity is recorded, nothing refused or duplicated is.
    let sent: Vec<&Prepared> = cold
        .iter()
        .chain(warm.iter())
        .chain(paced.iter().take(n))
        .collect();
    let expect = |e: Expect| sent.iter().filter(|p| p.expect == e).count() as u64;
    let accepted = tally.accepted.load(Ordering::Relaxed);
    let (dup_ok, refused_ok, wrong) = (
        tally.dup_ok.load(Ordering::Relaxed),
        tally.refused_ok.load(Ordering::Relaxed),
        tally.wrong.load(Ordering::Relaxed),
    );
    let mut conn = db.conn()?;
    let stored = server::count(&mut conn, "SELECT count(*) AS n FROM received_activities")? as u64;
    srv.stop();
    ctx.push(
        Row::new(
            'a',
            "all phases",
            name,
            "bad signatures refused (401)",
            refused_ok as f64,
            Unit::Count,
        )
        .check(
            refused_ok == expect(Expect::Refused),
            format!("{refused_ok} of {} refused", expect(Expect::Refused)),
        ),
    );
    ctx.push(
        Row::new(
            'a',
            "all phases",
            name,
            "duplicates answered 202 without effect",
            dup_ok as f64,
            Unit::Count,
        )
        .check(
            dup_ok == expect(Expect::Duplicate),
            format!("{dup_ok} of {} duplicates", expect(Expect::Duplicate)),
        ),
    );
    ctx.push(
        Row::new(
            'a',
            "all phases",
            name,
            "activities stored (received_activities)",
            stored as f64,
            Unit::Count,
        )
        .check(
            wrong == 0 && accepted == expect(Expect::Accepted) && stored == accepted,
            format!(
                "{accepted} accepted of {}, {stored} stored, {wrong} unexpected answers",
                expect(Expect::Accepted)
            ),
        ),
    );
    drop(stub);
    if s.ok == 0 || w.ok == 0 || p.ok == 0 {
        bail!("nothing was accepted");
    }
    Ok(())
}
