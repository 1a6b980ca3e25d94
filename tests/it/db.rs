//! The database layer on both backends: schema parity, migrations, locks, and the
//! backend-specific functions (upsert, job claiming).

use std::collections::BTreeMap;

use agora::db::{self, DbConn, jobs, settings};
use chrono::TimeDelta;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;

use crate::support::{Backend, TestDb};

/// table → column → (normalised type, nullable)
type Shape = BTreeMap<String, BTreeMap<String, (String, bool)>>;

#[derive(QueryableByName)]
struct SqliteTable {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "type")]
    ty: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    notnull: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    table_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    column_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    data_type: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    is_nullable: String,
}

fn shape(conn: &mut DbConn) -> Shape {
    let mut out = Shape::new();
    match conn {
        DbConn::Sqlite(c) => {
            let tables: Vec<SqliteTable> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
                 AND name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap();
            for t in tables {
                let cols: Vec<SqliteColumn> = diesel::sql_query(format!("PRAGMA table_info({})", t.name))
                    .load(c)
                    .unwrap();
                let entry = out.entry(t.name).or_default();
                for col in cols {
                    // An INTEGER PRIMARY KEY is SQLite's 64-bit rowid.
                    let ty = match (col.ty.to_ascii_uppercase().as_str(), col.pk) {
                        ("INTEGER", 1) | ("BIGINT", _) => "int8",
                        ("INTEGER", _) => "int4",
                        ("TEXT", _) => "text",
                        ("BOOLEAN", _) => "bool",
                        ("TIMESTAMP", _) => "timestamp",
                        ("BLOB", _) => "bytes",
                        (other, _) => panic!("unexpected SQLite type {other}"),
                    };
                    entry.insert(col.name, (ty.to_owned(), col.notnull == 0 && col.pk == 0));
                }
            }
        }
        DbConn::Pg(c) => {
            let cols: Vec<PgColumn> = diesel::sql_query(
                "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
                 FROM information_schema.columns WHERE table_schema = 'public' \
                 AND table_name <> '__diesel_schema_migrations'",
            )
            .load(c)
            .unwrap();
            for col in cols {
                let ty = match col.data_type.as_str() {
                    "bigint" => "int8",
                    "integer" => "int4",
                    "text" => "text",
                    "boolean" => "bool",
                    "timestamp without time zone" => "timestamp",
                    "bytea" => "bytes",
                    other => panic!("unexpected PostgreSQL type {other}"),
                };
                out.entry(col.table_name)
                    .or_default()
                    .insert(col.column_name, (ty.to_owned(), col.is_nullable == "YES"));
            }
        }
    }
    out
}

#[test]
fn both_backends_have_the_same_schema() {
    let sqlite = TestDb::new(Backend::Sqlite).unwrap();
    let Some(pg) = TestDb::new(Backend::Postgres) else {
        return;
    };
    let a = shape(&mut sqlite.connect().get().unwrap());
    let b = shape(&mut pg.connect().get().unwrap());
    assert!(a.len() >= 7, "tables: {:?}", a.keys());
    for (table, cols) in &a {
        assert_eq!(
            Some(cols),
            b.get(table),
            "table {table} differs between SQLite and PostgreSQL"
        );
    }
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
}

#[test]
fn migration_folders_are_paired() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(b))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names("sqlite"), names("postgres"));
    for name in names("sqlite") {
        for b in ["sqlite", "postgres"] {
            for f in ["up.sql", "down.sql"] {
                assert!(root.join(b).join(&name).join(f).exists(), "{b}/{name}/{f}");
            }
        }
    }
}

fn up_down_up(backend: Backend) {
    let Some(tdb) = TestDb::empty(backend) else { return };
    let pool = tdb.connect();
    let applied = pool.migrate().unwrap();
    assert!(!applied.is_empty());
    let mut conn = pool.get().unwrap();
    let before = shape(&mut conn);
    match &mut *conn {
        DbConn::Sqlite(c) => {
            c.revert_all_migrations(db::SQLITE_MIGRATIONS).unwrap();
        }
        DbConn::Pg(c) => {
            c.revert_all_migrations(db::POSTGRES_MIGRATIONS).unwrap();
        }
    }
    assert!(shape(&mut conn).is_empty(), "down.sql leaves nothing behind");
    assert!(!db::migrations_applied(&mut conn).unwrap());
    drop(conn);
    assert_eq!(pool.migrate().unwrap().len(), applied.len());
    assert_eq!(shape(&mut pool.get().unwrap()), before);
    assert!(db::migrations_applied(&mut pool.get().unwrap()).unwrap());
    assert!(pool.migrate().unwrap().is_empty(), "a second run applies nothing");
}

fn concurrent_migrations_apply_once(backend: Backend) {
    let Some(tdb) = TestDb::empty(backend) else { return };
    let url = tdb.url.clone();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || db::Db::connect(&url).unwrap().migrate().unwrap().len())
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let expected =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"))
            .unwrap()
            .count();
    assert_eq!(
        total, expected,
        "each migration applied exactly once across processes"
    );
}

fn upsert_settings(backend: Backend) {
    let Some(tdb) = TestDb::new(backend) else { return };
    let pool = tdb.connect();
    let mut c = pool.get().unwrap();
    assert_eq!(settings::get(&mut c, "instance.name").unwrap(), None);
    settings::put(&mut c, "instance.name", "Stadt").unwrap();
    settings::put(&mut c, "instance.name", "Rathaus").unwrap();
    settings::put(&mut c, "registration", "open").unwrap();
    assert_eq!(
        settings::get(&mut c, "instance.name").unwrap().as_deref(),
        Some("Rathaus")
    );
    assert_eq!(settings::all(&mut c).unwrap().len(), 2);
    settings::remove(&mut c, "registration").unwrap();
    assert_eq!(settings::all(&mut c).unwrap().len(), 1);
}

fn job_queue_claims_leases_and_retries(backend: Backend) {
    let Some(tdb) = TestDb::new(backend) else { return };
    let pool = tdb.connect();
    let mut c = pool.get().unwrap();
    let t0 = db::now();
    for i in 0..3 {
        let payload = format!("{{\"n\":{i}}}");
        assert!(
            jobs::enqueue(
                &mut c,
                &jobs::NewJob::new("test", &payload, t0 - TimeDelta::seconds(10 - i))
            )
            .unwrap()
        );
    }
    assert!(jobs::enqueue(&mut c, &jobs::NewJob::new("once", "{}", t0).dedupe("k")).unwrap());
    assert!(
        !jobs::enqueue(&mut c, &jobs::NewJob::new("once", "{}", t0).dedupe("k")).unwrap(),
        "deduplicated"
    );
    assert!(
        jobs::enqueue(
            &mut c,
            &jobs::NewJob::new("later", "{}", t0 + TimeDelta::hours(1))
        )
        .unwrap()
    );

    let lease = TimeDelta::minutes(5);
    let first = jobs::claim(&mut c, t0, 2, lease).unwrap();
    assert_eq!(
        first.iter().map(|j| j.payload.as_str()).collect::<Vec<_>>(),
        ["{\"n\":0}", "{\"n\":1}"]
    );
    assert!(
        first
            .iter()
            .all(|j| j.attempts == 1 && j.locked_until == Some(t0 + lease))
    );
    let second = jobs::claim(&mut c, t0, 10, lease).unwrap();
    assert_eq!(
        second.len(),
        2,
        "the rest that is due: n=2 and the deduplicated one"
    );
    assert!(
        jobs::claim(&mut c, t0, 10, lease).unwrap().is_empty(),
        "leased jobs are not claimed twice"
    );

    // A worker that died: its lease runs out and the job is due again.
    let again = jobs::claim(&mut c, t0 + lease + TimeDelta::seconds(1), 10, lease).unwrap();
    assert_eq!(again.len(), 4);
    assert!(again.iter().all(|j| j.attempts == 2));

    let job = &again[0];
    jobs::fail(&mut c, job, t0, "boom").unwrap();
    let retry_at = t0 + jobs::backoff(2);
    assert!(
        jobs::claim(&mut c, retry_at - TimeDelta::seconds(1), 10, lease)
            .unwrap()
            .iter()
            .all(|j| j.id != job.id)
    );
    let retried = jobs::claim(&mut c, retry_at + TimeDelta::seconds(1), 10, lease).unwrap();
    let retried = retried
        .iter()
        .find(|j| j.id == job.id)
        .expect("due after backoff");
    assert_eq!(retried.last_error.as_deref(), Some("boom"));

    // The last attempt marks the job failed instead of retrying it.
    let mut last = retried.clone();
    last.attempts = last.max_attempts;
    jobs::fail(&mut c, &last, t0, "final").unwrap();
    assert!(
        jobs::claim(&mut c, t0 + TimeDelta::days(30), 10, lease)
            .unwrap()
            .iter()
            .all(|j| j.id != job.id)
    );

    for j in &again[1..] {
        jobs::complete(&mut c, j.id).unwrap();
    }
}

/// Several workers (processes on PostgreSQL, connections on SQLite) claim disjoint jobs.
fn concurrent_claims_are_disjoint(backend: Backend) {
    let Some(tdb) = TestDb::new(backend) else { return };
    let pool = tdb.connect();
    let t0 = db::now();
    {
        let mut c = pool.get().unwrap();
        for i in 0..200 {
            jobs::enqueue(&mut c, &jobs::NewJob::new("bulk", &i.to_string(), t0)).unwrap();
        }
    }
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut c = pool.get().unwrap();
                let mut mine = Vec::new();
                loop {
                    let batch = jobs::claim(&mut c, t0, 7, TimeDelta::minutes(5)).unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|j| j.id));
                }
            })
        })
        .collect();
    let mut all: Vec<i64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(all.len(), 200);
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 200, "no job was claimed twice");
}

fn sqlite_connections_are_configured(_: Backend) {
    let tdb = TestDb::new(Backend::Sqlite).unwrap();
    let pool = tdb.connect();
    let mut conn = pool.get().unwrap();
    let DbConn::Sqlite(c) = &mut *conn else {
        panic!("sqlite")
    };
    #[derive(QueryableByName)]
    struct Fk {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        foreign_keys: i32,
    }
    #[derive(QueryableByName)]
    struct Jm {
        #[diesel(sql_type = diesel::sql_types::Text)]
        journal_mode: String,
    }
    assert_eq!(
        diesel::sql_query("PRAGMA foreign_keys")
            .get_result::<Fk>(c)
            .unwrap()
            .foreign_keys,
        1
    );
    assert_eq!(
        diesel::sql_query("PRAGMA journal_mode")
            .get_result::<Jm>(c)
            .unwrap()
            .journal_mode,
        "wal"
    );
    // Foreign keys are enforced: a session for a user that does not exist is refused.
    let r = diesel::sql_query(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at) \
         VALUES ('x', 999, 'c', '2026-01-01 00:00:00', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .execute(c);
    assert!(r.is_err());
}

fn unreachable_database_is_a_sentence(_: Backend) {
    let e = db::Db::connect(&agora::config::DatabaseUrl::Postgres(
        "postgres://postgres@127.0.0.1:1/x".into(),
    ))
    .unwrap_err();
    assert!(matches!(e, db::Error::Connect(_)), "{e}");
    let e = db::Db::connect(&agora::config::DatabaseUrl::Sqlite(
        "/proc/forbidden/agora.db".into(),
    ))
    .unwrap_err();
    assert!(e.to_string().contains("cannot"), "{e}");
}

macro_rules! sync_backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[test] fn $name() { super::$name(crate::support::Backend::Sqlite) } )* }
        mod postgres { $( #[test] fn $name() { super::$name(crate::support::Backend::Postgres) } )* }
    };
}

/// The pinned threads of a group are found through `threads_pinned_idx`, not by reading every
/// thread of the group (the first page of every thread list asks; docs/performance.md, d).
fn pinned_threads_use_their_index(backend: Backend) {
    let Some(tdb) = TestDb::new(backend) else {
        return;
    };
    let pool = tdb.connect();
    let mut conn = pool.get().unwrap();
    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let query = "SELECT id FROM threads WHERE group_id = 1 AND deleted_at IS NULL AND removed_at IS NULL \
                 AND pinned_at IS NOT NULL ORDER BY pinned_at DESC";
    let plan: String = match &mut *conn {
        DbConn::Sqlite(c) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {query}"))
            .load::<Plan>(c)
            .unwrap()
            .into_iter()
            .map(|p| p.detail)
            .collect::<Vec<_>>()
            .join("\n"),
        DbConn::Pg(c) => {
            // An empty table would be read sequentially whatever indexes exist.
            diesel::sql_query("SET enable_seqscan = off").execute(c).unwrap();
            diesel::sql_query(format!("EXPLAIN {query}"))
                .load::<PgPlan>(c)
                .unwrap()
                .into_iter()
                .map(|p| p.line)
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    match &*conn {
        DbConn::Sqlite(_) => assert!(plan.contains("threads_pinned_idx"), "{plan}"),
        // On an empty table PostgreSQL's costs cannot tell the partial indexes apart (the live
        // threads one ties); what matters is that no scan of the whole table is planned.
        DbConn::Pg(_) => assert!(plan.contains("Index") && !plan.contains("Seq Scan"), "{plan}"),
    }
}

sync_backend_tests!(
    pinned_threads_use_their_index,
    up_down_up,
    concurrent_migrations_apply_once,
    upsert_settings,
    job_queue_claims_leases_and_retries,
    concurrent_claims_are_disjoint,
);

#[test]
fn sqlite_pragmas() {
    sqlite_connections_are_configured(Backend::Sqlite);
}

#[test]
fn unreachable_database() {
    unreachable_database_is_a_sentence(Backend::Sqlite);
}
