//! Scenarios c and d on the large store (see datagen.rs): thread pages with 50 and 500 replies as
//! HTML, ActivityPub JSON (the thread's context collection, first page) and API JSON, 64
//! concurrent readers; and the lists: a group's thread list, page 1 and page 50 by keyset cursor
//! (HTML and API), the instance-wide latest activity (/latest, /api/v1/threads) and other
//! instance-wide pages (/groups, a hashtag page), 8 concurrent readers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use diesel::prelude::*;

use crate::datagen::{self, Size};
use crate::report::{Row, Target, Unit};
use crate::server::{Backend, BenchDb, Server, scratch};
use crate::{Ctx, load};

/// One GET per call, `accept` header, success = 200 and a body.
async fn measure(
    url: String,
    accept: &'static str,
    workers: usize,
    secs: f64,
) -> anyhow::Result<load::Sample> {
    let c = load::client()?;
    // Warm-up: connections, caches.
    for _ in 0..workers.min(8) {
        let _ = c.get(&url).header("accept", accept).send().await?.bytes().await;
    }
    let url = Arc::new(url);
    let s = load::closed(workers, None, Some(Duration::from_secs_f64(secs)), move |_| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            match c.get(url.as_str()).header("accept", accept).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok_and(|b| !b.is_empty()),
                Ok(r) => {
                    let _ = r.bytes().await;
                    false
                }
                Err(_) => false,
            }
        }
    })
    .await;
    Ok(s)
}

const HTML: &str = "text/html";
const AP: &str = "application/activity+json";
const JSON: &str = "application/json";

fn start_on_store(
    ctx: &Ctx,
    b: Backend,
) -> anyhow::Result<(Server, datagen::Meta, BenchDb, tempfile::TempDir)> {
    let store = datagen::store(&ctx.cache, b, Size::for_run(ctx.quick()))?;
    let db = BenchDb::existing(store.url);
    let dir = tempfile::Builder::new()
        .prefix("agora-bench-store-")
        .tempdir_in(scratch())?;
    let (srv, _) = Server::start(&ctx.agora, &db, dir.path())?;
    Ok((srv, store.meta, db, dir))
}

pub async fn thread_pages(ctx: &mut Ctx, b: Backend) -> anyhow::Result<()> {
    let (srv, meta, _db, _dir) = start_on_store(ctx, b)?;
    let secs = if ctx.quick() { 0.1 } else { 5.0 };
    let g = &meta.big_group;
    for (replies, tid) in [(50, meta.t50), (500, meta.t500)] {
        for (kind, path, accept) in [
            ("HTML", format!("/g/{g}/t/{tid}"), HTML),
            (
                "AP JSON (context, page 1)",
                format!("/g/{g}/t/{tid}/context?page=1"),
                AP,
            ),
            ("API JSON", format!("/api/v1/threads/{tid}"), JSON),
        ] {
            // The smoke run only needs the code path: fewer readers.
            let readers = if ctx.quick() { 4 } else { 64 };
            let mut s = measure(srv.at(&path), accept, readers, secs).await?;
            let case = format!("thread, {replies} replies, {kind}, {readers} readers");
            let failed = s.failed;
            let mut rate = Row::new('c', &case, b.name(), "req/s", s.rate(), Unit::PerSec)
                .check(failed == 0 && s.ok > 0, format!("{failed} failed requests"));
            let mut p99 = Row::new('c', &case, b.name(), "p99", s.p_ms(0.99), Unit::Ms);
            if replies == 50 {
                rate = rate.target(Target::AtLeast(2000.0));
                p99 = p99.target(Target::AtMost(50.0));
            }
            ctx.push(rate);
            ctx.push(Row::new('c', &case, b.name(), "p50", s.p_ms(0.5), Unit::Ms));
            ctx.push(p99);
        }
    }
    srv.stop();
    Ok(())
}

#[derive(QueryableByName)]
struct Cursor {
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    at: chrono::NaiveDateTime,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
}

/// The keyset cursor that opens page `page` (25 threads a page) of the group's list, or with
/// `slug` None of the instance-wide latest list (all groups are public in the store).
fn cursor_for(db: &BenchDb, slug: Option<&str>, page: i64) -> anyhow::Result<String> {
    let group = match slug {
        Some(slug) => format!("g.slug = '{slug}' AND t.pinned_at IS NULL AND"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT t.last_activity_at AS at, t.id AS id FROM threads t JOIN groups g ON g.id = t.group_id \
         WHERE {group} t.deleted_at IS NULL AND t.removed_at IS NULL \
         ORDER BY t.last_activity_at DESC, t.id DESC LIMIT 1 OFFSET {}",
        (page - 1) * 25 - 1
    );
    let c: Cursor = match &mut db.conn()? {
        agora::db::DbConn::Pg(c) => diesel::sql_query(sql).get_result(c)?,
        agora::db::DbConn::Sqlite(c) => diesel::sql_query(sql).get_result(c)?,
    };
    Ok(format!("{}_{}", c.at.and_utc().timestamp_micros(), c.id))
}

pub async fn lists(ctx: &mut Ctx, b: Backend) -> anyhow::Result<()> {
    let (srv, meta, db, _dir) = start_on_store(ctx, b)?;
    let secs = if ctx.quick() { 0.1 } else { 5.0 };
    let g = meta.big_group.clone();
    let last_page = if meta.big_group_threads >= 50 * 25 + 25 {
        50
    } else {
        (meta.big_group_threads / 25).max(2) as i64
    };
    let cursor = cursor_for(&db, Some(&g), last_page).context("page cursor")?;
    let latest_cursor = cursor_for(&db, None, last_page).context("latest cursor")?;
    let page_n = format!("page {last_page}");
    let cases: Vec<(String, String, &'static str, Option<f64>)> = vec![
        (
            format!(
                "group thread list, HTML, page 1 ({} threads)",
                meta.big_group_threads
            ),
            format!("/g/{g}"),
            HTML,
            Some(20.0),
        ),
        (
            format!("group thread list, HTML, {page_n}"),
            format!("/g/{g}?before={cursor}"),
            HTML,
            Some(30.0),
        ),
        (
            "group thread list, API, page 1".into(),
            format!("/api/v1/groups/{g}/threads"),
            JSON,
            Some(20.0),
        ),
        (
            format!("group thread list, API, {page_n}"),
            format!("/api/v1/groups/{g}/threads?before={cursor}"),
            JSON,
            Some(30.0),
        ),
        (
            "instance latest activity, HTML /latest, page 1".into(),
            "/latest".into(),
            HTML,
            Some(20.0),
        ),
        (
            format!("instance latest activity, HTML /latest, {page_n}"),
            format!("/latest?before={latest_cursor}"),
            HTML,
            Some(30.0),
        ),
        (
            "instance latest activity, API /api/v1/threads, page 1".into(),
            "/api/v1/threads".into(),
            JSON,
            Some(20.0),
        ),
        (
            format!("instance latest activity, API, {page_n}"),
            format!("/api/v1/threads?before={latest_cursor}"),
            JSON,
            Some(30.0),
        ),
        (
            "instance: group directory /groups".into(),
            "/groups".into(),
            HTML,
            None,
        ),
        (
            format!("instance: hashtag page /tags/{}", meta.tag),
            format!("/tags/{}", meta.tag),
            HTML,
            None,
        ),
    ];
    for (case, path, accept, target) in cases {
        let mut s = measure(srv.at(&path), accept, 8, secs).await?;
        let case = format!("{case}, 8 readers");
        let failed = s.failed;
        ctx.push(
            Row::new('d', &case, b.name(), "req/s", s.rate(), Unit::PerSec)
                .check(failed == 0 && s.ok > 0, format!("{failed} failed requests")),
        );
        ctx.push(Row::new('d', &case, b.name(), "p50", s.p_ms(0.5), Unit::Ms));
        let mut p99 = Row::new('d', &case, b.name(), "p99", s.p_ms(0.99), Unit::Ms);
        if let Some(t) = target {
            p99 = p99.target(Target::AtMost(t));
        }
        ctx.push(p99);
    }
    srv.stop();
    Ok(())
}
