//! The large store: 1 000 000 posts (threads and replies in 200 groups, 50 000 remote actors,
//! power-law thread sizes), written straight into a migrated database with multi-row INSERTs in
//! big transactions, with a progress bar. Cached by generator version, size and a hash of the
//! migrations: a SQLite file in the cache directory, or the PostgreSQL database
//! `agora_bench_store_…` (both with a `.json` sidecar naming the threads the scenarios read).
//! Deterministic (seeded), so the same key always means the same data.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use agora::config::DatabaseUrl;
use anyhow::Context as _;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::server::{self, Backend};

/// Bump when the generated data changes shape.
const VERSION: u32 = 1;

#[derive(Debug, Clone, Copy)]
pub struct Size {
    pub posts: u64,
    pub groups: u64,
    pub remote_actors: u64,
    pub users: u64,
}

impl Size {
    pub fn for_run(quick: bool) -> Self {
        if quick {
            Self {
                posts: 3_000,
                groups: 10,
                remote_actors: 100,
                users: 5,
            }
        } else {
            Self {
                posts: 1_000_000,
                groups: 200,
                remote_actors: 50_000,
                users: 20,
            }
        }
    }
}

/// What the scenarios need to know about a store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub version: u32,
    pub posts: u64,
    pub threads: u64,
    /// The group with the most threads (power law), where the list pages are read.
    pub big_group: String,
    pub big_group_threads: u64,
    /// Threads with exactly 50 and 500 replies, in `big_group`.
    pub t50: i64,
    pub t500: i64,
    /// A hashtag on about 1% of the posts.
    pub tag: String,
}

pub struct Store {
    pub url: DatabaseUrl,
    pub meta: Meta,
}

fn migrations_hash() -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut h = Sha256::new();
    for f in files {
        h.update(f.strip_prefix(&root).unwrap_or(&f).to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_default());
    }
    h.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The cached store for `b`, generated first when missing.
pub fn store(cache: &Path, b: Backend, size: Size) -> anyhow::Result<Store> {
    let key = format!("v{VERSION}_{}_{}", size.posts, migrations_hash());
    let meta_path = cache.join(format!("store_{key}_{}.json", b.name()));
    let url = match b {
        Backend::Sqlite => DatabaseUrl::Sqlite(cache.join(format!("store_{key}.sqlite"))),
        Backend::Postgres => DatabaseUrl::Postgres(server::pg_url(&format!("agora_bench_store_{key}"))?),
    };
    let present = match &url {
        DatabaseUrl::Sqlite(p) => p.exists(),
        DatabaseUrl::Postgres(_) => pg_exists(&format!("agora_bench_store_{key}"))?,
    };
    if present
        && let Some(meta) = std::fs::read(&meta_path)
            .ok()
            .and_then(|m| serde_json::from_slice::<Meta>(&m).ok())
    {
        eprintln!(
            "agora-bench: reusing the {} store ({} posts) from {}",
            b.name(),
            meta.posts,
            meta_path.display()
        );
        return Ok(Store { url, meta });
    }
    // Built under a temporary name, renamed when complete: an interrupted run leaves no half store.
    let building = match &url {
        DatabaseUrl::Sqlite(p) => {
            let tmp = p.with_extension("building");
            for ext in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{ext}", tmp.display()));
            }
            DatabaseUrl::Sqlite(tmp)
        }
        DatabaseUrl::Postgres(_) => {
            let name = format!("agora_bench_store_{key}_building");
            let mut admin = server::pg_admin()?;
            // One statement per call: PostgreSQL runs a multi-statement batch as one transaction.
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
            admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
            DatabaseUrl::Postgres(server::pg_url(&name)?)
        }
    };
    agora::db::Db::connect(&building)?.migrate()?;
    let t = Instant::now();
    let meta = match &building {
        DatabaseUrl::Sqlite(p) => {
            let mut c = SqliteConnection::establish(&p.display().to_string())?;
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA foreign_keys = OFF;",
            )?;
            let meta = generate(&mut c, size, false)?;
            c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?;
            meta
        }
        DatabaseUrl::Postgres(u) => {
            let mut c = PgConnection::establish(u)?;
            // Bulk load: no per-row foreign-key triggers, no waiting for the WAL flush.
            c.batch_execute("SET session_replication_role = replica; SET synchronous_commit = off;")?;
            let meta = generate(&mut c, size, true)?;
            c.batch_execute("SET session_replication_role = DEFAULT; ANALYZE;")?;
            meta
        }
    };
    eprintln!(
        "agora-bench: generated {} posts in {:.0} s",
        meta.posts,
        t.elapsed().as_secs_f64()
    );
    match (&building, &url) {
        (DatabaseUrl::Sqlite(from), DatabaseUrl::Sqlite(to)) => std::fs::rename(from, to)?,
        _ => {
            let name = format!("agora_bench_store_{key}");
            let mut admin = server::pg_admin()?;
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
            admin.batch_execute(&format!("ALTER DATABASE {name}_building RENAME TO {name}"))?;
        }
    }
    std::fs::write(&meta_path, serde_json::to_vec_pretty(&meta)?)?;
    Ok(Store { url, meta })
}

fn pg_exists(name: &str) -> anyhow::Result<bool> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut admin = server::pg_admin()?;
    let n: N = diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_database WHERE datname = '{name}'"
    ))
    .get_result(&mut admin)?;
    Ok(n.n > 0)
}

/// Pareto-distributed reply counts: P(X > x) = x^-1.2 (a long tail of big threads), capped.
fn replies(rng: &mut StdRng) -> u64 {
    let u: f64 = rng.random_range(1e-9..1.0);
    (u.powf(-1.0 / 1.2).floor() as u64).saturating_sub(1).min(3_000)
}

const WORDS: [&str; 16] = [
    "Radweg",
    "Bebauungsplan",
    "Haushalt",
    "Spielplatz",
    "Beteiligung",
    "Nahverkehr",
    "Schule",
    "Bürgerhaus",
    "Lärmschutz",
    "Parkplatz",
    "Baumpflanzung",
    "Sitzung",
    "Antrag",
    "Protokoll",
    "Quartier",
    "Bibliothek",
];

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| d.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "2026-01-01 00:00:00".into())
}

/// Buffers rows of one table into multi-row INSERTs, `per_statement` rows each, and commits every
/// `per_tx` rows.
struct Inserter<'a, C: SimpleConnection> {
    conn: &'a mut C,
    head: String,
    /// PostgreSQL's identity columns take explicit ids only when told so.
    overriding: bool,
    rows: Vec<String>,
    in_tx: usize,
}

impl<'a, C: SimpleConnection> Inserter<'a, C> {
    fn new(conn: &'a mut C, head: &str) -> Self {
        Self {
            conn,
            head: head.to_owned(),
            overriding: false,
            rows: Vec::with_capacity(1000),
            in_tx: 0,
        }
    }

    fn push(&mut self, row: String) -> anyhow::Result<()> {
        self.rows.push(row);
        if self.rows.len() >= 1000 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        if self.in_tx == 0 {
            self.conn.batch_execute("BEGIN")?;
        }
        let sql = format!(
            "{}{} VALUES {}",
            self.head,
            if self.overriding {
                " OVERRIDING SYSTEM VALUE"
            } else {
                ""
            },
            self.rows.join(",")
        );
        self.conn
            .batch_execute(&sql)
            .with_context(|| format!("{} …", self.head))?;
        self.in_tx += self.rows.len();
        self.rows.clear();
        if self.in_tx >= 100_000 {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        if self.in_tx > 0 {
            self.conn.batch_execute("COMMIT")?;
            self.in_tx = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.flush()?;
        self.commit()
    }
}

fn generate<C: SimpleConnection>(c: &mut C, size: Size, pg: bool) -> anyhow::Result<Meta> {
    let meta = generate_rows(c, size, pg)?;
    if pg {
        for t in ["users", "groups", "remote_actors", "threads", "posts"] {
            c.batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"
            ))?;
        }
    }
    Ok(meta)
}

fn generate_rows<C: SimpleConnection>(c: &mut C, size: Size, pg: bool) -> anyhow::Result<Meta> {
    let mut rng = StdRng::seed_from_u64(0x6167_6f72_6100 + u64::from(VERSION));
    let base: i64 = 1_767_225_600; // 2026-01-01
    let now = ts(base + 330 * 86_400);
    // Local users and groups share local_names.
    let mut names = Inserter::new(c, "INSERT INTO local_names (name, kind, created_at)");
    for u in 1..=size.users {
        names.push(format!("('user{u}', 'user', '{now}')"))?;
    }
    for g in 0..size.groups {
        names.push(format!("('g{g:03}', 'group', '{now}')"))?;
    }
    names.finish()?;
    let mut users = Inserter::new(
        c,
        "INSERT INTO users (id, username, display_name, email, password_hash, role, status, must_change_password, created_at, updated_at, manually_approves_followers)",
    );
    users.overriding = pg;
    for u in 1..=size.users {
        users.push(format!(
            "({u}, 'user{u}', 'Nutzerin {u}', 'user{u}@example.org', 'x', 'member', 'active', FALSE, '{now}', '{now}', FALSE)"
        ))?;
    }
    users.finish()?;
    let mut groups = Inserter::new(
        c,
        "INSERT INTO groups (id, slug, kind, title, summary_source, summary_html, visibility, join_mode, manually_approves_followers, allow_remote_threads, created_at, updated_at)",
    );
    groups.overriding = pg;
    for g in 0..size.groups {
        groups.push(format!(
            "({}, 'g{g:03}', 'project', 'Projektgruppe {g}', 'Worum es geht', '<p>Worum es geht</p>', 'public', 'open', FALSE, TRUE, '{now}', '{now}')",
            g + 1
        ))?;
    }
    groups.finish()?;
    let mut actors = Inserter::new(
        c,
        "INSERT INTO remote_actors (id, ap_id, domain, kind, preferred_username, name, inbox, shared_inbox, keys_json, fetched_at)",
    );
    actors.overriding = pg;
    for a in 1..=size.remote_actors {
        let d = a % 500;
        actors.push(format!(
            "({a}, 'https://r{d}.example/users/u{a}', 'r{d}.example', 'Person', 'u{a}', 'Remote {a}', 'https://r{d}.example/users/u{a}/inbox', 'https://r{d}.example/inbox', '[]', '{now}')"
        ))?;
    }
    actors.finish()?;

    // Threads: the two measured ones first, then power-law sizes until the post count is reached.
    let mut plan: Vec<(u64, u64)> = vec![(0, 50), (0, 500)]; // (group index, replies)
    let mut total: u64 = 551 + 1;
    while total < size.posts {
        let r = replies(&mut rng).min(size.posts - total - 1);
        // Groups by power law too: g000 gets about a sixth of the threads.
        let g = ((size.groups as f64) * rng.random::<f64>().powi(3)).floor() as u64;
        plan.push((g.min(size.groups - 1), r));
        total += r + 1;
    }
    let mut threads = Inserter::new(
        c,
        "INSERT INTO threads (id, group_id, title, reply_count, last_activity_at, created_at)",
    );
    threads.overriding = pg;
    let mut post_rows: Vec<(u64, u64, i64)> = Vec::with_capacity(plan.len()); // (thread, replies, created)
    let span = 330 * 86_400;
    for (i, (g, r)) in plan.iter().enumerate() {
        let id = i as u64 + 1;
        let created = base + rng.random_range(0..span);
        let last = (created + (*r as i64) * rng.random_range(60..3_600)).min(base + span);
        threads.push(format!(
            "({id}, {}, 'Thema {id}: {} und {}', {r}, '{}', '{}')",
            g + 1,
            WORDS[(id % 16) as usize],
            WORDS[((id / 16) % 16) as usize],
            ts(last),
            ts(created)
        ))?;
        post_rows.push((id, *r, created));
    }
    threads.finish()?;
    let big_group_threads = plan.iter().filter(|(g, _)| *g == 0).count() as u64;

    let mut posts = Inserter::new(
        c,
        "INSERT INTO posts (id, thread_id, parent_id, ap_id, url, author_user_id, author_remote_id, source, content_html, depth, like_count, published_at)",
    );
    posts.overriding = pg;
    let mut tags: Vec<u64> = Vec::new();
    let mut pid: u64 = 0;
    let started = Instant::now();
    let mut shown = 0;
    let mut shown_at = Instant::now();
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut depth_of: Vec<i32> = Vec::new();
    for (tid, r, created) in &post_rows {
        let opening = pid + 1;
        depth_of.clear();
        for k in 0..=*r {
            pid += 1;
            let (parent, depth) = if k == 0 {
                (None, 0)
            } else if k < 3 || rng.random_bool(0.7) {
                (Some(opening), 1)
            } else {
                let j = rng.random_range(1..k);
                (Some(opening + j), (depth_of[j as usize] + 1).min(6))
            };
            depth_of.push(depth);
            let local = if k == 0 {
                rng.random_bool(0.3)
            } else {
                rng.random_bool(0.1)
            };
            let (user, remote, ap_id, source) = if local {
                (
                    format!("{}", rng.random_range(1..=size.users)),
                    "NULL".to_owned(),
                    "NULL".to_owned(),
                    "'Markdown-Quelle'".to_owned(),
                )
            } else {
                let a = rng.random_range(1..=size.remote_actors);
                (
                    "NULL".to_owned(),
                    a.to_string(),
                    format!("'https://r{}.example/notes/{pid}'", a % 500),
                    "NULL".to_owned(),
                )
            };
            let tagged = rng.random_bool(0.01);
            if tagged {
                tags.push(pid);
            }
            let mut html = String::with_capacity(400);
            let _ = write!(html, "<p>Beitrag {pid} zu Thema {tid}. ");
            for w in 0..(20 + pid % 30) {
                html.push_str(WORDS[((pid + w * 7) % 16) as usize]);
                html.push(' ');
            }
            if tagged {
                html.push_str("<a href=\"/tags/verkehr\" class=\"mention hashtag\" rel=\"tag\">#verkehr</a>");
            }
            html.push_str("</p>");
            let url = if remote == "NULL" {
                "NULL".to_owned()
            } else {
                ap_id.clone()
            };
            posts.push(format!(
                "({pid}, {tid}, {}, {ap_id}, {url}, {user}, {remote}, {source}, '{html}', {depth}, {}, '{}')",
                parent.map_or_else(|| "NULL".to_owned(), |p| p.to_string()),
                if rng.random_bool(0.2) {
                    rng.random_range(1..20)
                } else {
                    0
                },
                ts(created + (k as i64) * 97)
            ))?;
        }
        let pct = pid * 100 / size.posts.max(1);
        // A bar for people; a line every 10% in logs.
        if pct > shown
            && (pct == 100
                || if terminal {
                    shown_at.elapsed().as_millis() > 250
                } else {
                    pct / 10 > shown / 10
                })
        {
            shown = pct;
            shown_at = Instant::now();
            let bar = "#".repeat((pct / 2) as usize);
            eprint!(
                "{}  generating [{bar:<50}] {pct:>3}% {pid}/{} posts, {:.0} s{}",
                if terminal { "\r" } else { "" },
                size.posts,
                started.elapsed().as_secs_f64(),
                if terminal { "" } else { "\n" }
            );
            let _ = std::io::stderr().flush();
        }
    }
    posts.finish()?;
    eprintln!();
    let mut tag_rows = Inserter::new(c, "INSERT INTO post_tags (post_id, kind, value)");
    for p in tags {
        tag_rows.push(format!("({p}, 'hashtag', 'verkehr')"))?;
    }
    tag_rows.finish()?;
    Ok(Meta {
        version: VERSION,
        posts: pid,
        threads: post_rows.len() as u64,
        big_group: "g000".into(),
        big_group_threads,
        t50: 1,
        t500: 2,
        tag: "verkehr".into(),
    })
}
