//! Fresh databases for tests: a SQLite file in a temporary directory, or a PostgreSQL database
//! created from a template that was migrated once (`CREATE DATABASE … TEMPLATE`), so tests stay
//! isolated and can run in parallel. nextest runs every test in its own process, so the template is
//! shared across processes, guarded by an advisory lock and named after the migrations' hash.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use agora::config::DatabaseUrl;
use agora::db::Db;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server tests use: `AGORA_TEST_DATABASE_URL`, else the local default.
pub fn pg_admin_url() -> String {
    std::env::var("AGORA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn pg_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| PgConnection::establish(&pg_admin_url()).is_ok())
}

/// Under CI a missing PostgreSQL is a failure, elsewhere a loud skip.
pub fn skip_postgres() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "PostgreSQL is not reachable at {} but CI=true requires the PostgreSQL run",
        pg_admin_url()
    );
    eprintln!(
        "SKIP: PostgreSQL is not reachable at {}; this test ran on SQLite only",
        pg_admin_url()
    );
}

fn url_with_db(admin: &str, db: &str) -> String {
    let mut u = url::Url::parse(admin).expect("AGORA_TEST_DATABASE_URL is a URL");
    u.set_path(&format!("/{db}"));
    u.to_string()
}

fn migrations_hash() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut entries: Vec<_> = walk(&dir);
    entries.sort();
    let mut h = Sha256::new();
    for path in entries {
        h.update(path.to_string_lossy().as_bytes());
        h.update(std::fs::read(&path).expect("read migration"));
    }
    h.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("migrations dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const TEMPLATE_LOCK: i64 = 0x6167_6f72_6174;

fn ensure_template(admin: &mut PgConnection) -> String {
    let name = format!("agora_tpl_{}", migrations_hash());
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let exists = |c: &mut PgConnection, n: &str| -> bool {
        diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(n)
            .get_result::<Found>(c)
            .map(|f| f.n > 0)
            .unwrap_or(false)
    };
    if exists(admin, &name) {
        return name;
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .unwrap();
    if !exists(admin, &name) {
        let building = format!("{name}_build");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .unwrap();
        {
            let db = Db::connect(&DatabaseUrl::Postgres(url_with_db(&pg_admin_url(), &building))).unwrap();
            db.migrate().unwrap();
        }
        // Renaming needs the pool's connections gone; FORCE-free rename retries until they close.
        for _ in 0..50 {
            if admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .is_ok()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    admin
        .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .unwrap();
    assert!(exists(admin, &name), "template database {name} was not created");
    name
}

/// One test's database, dropped at the end of the test.
pub struct TestDb {
    pub url: DatabaseUrl,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh, migrated database; `None` when PostgreSQL is requested but absent (see
    /// [`skip_postgres`]).
    pub fn new(backend: Backend) -> Option<Self> {
        Self::create(backend, true)
    }

    /// A fresh database without any tables (for migration tests).
    pub fn empty(backend: Backend) -> Option<Self> {
        Self::create(backend, false)
    }

    fn create(backend: Backend, migrated: bool) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = DatabaseUrl::Sqlite(dir.path().join("agora.db"));
                if migrated {
                    Db::connect(&url).unwrap().migrate().unwrap();
                }
                Some(Self {
                    url,
                    pg_name: None,
                    _dir: Some(dir),
                })
            }
            Backend::Postgres => {
                if !pg_available() {
                    skip_postgres();
                    return None;
                }
                static COUNTER: AtomicU32 = AtomicU32::new(0);
                let name = format!(
                    "agora_t_{}_{}_{:08x}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::Relaxed),
                    rand::random::<u32>()
                );
                let mut admin = PgConnection::establish(&pg_admin_url()).unwrap();
                if migrated {
                    let template = ensure_template(&mut admin);
                    let mut last = None;
                    for _ in 0..50 {
                        match admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")) {
                            Ok(()) => {
                                last = None;
                                break;
                            }
                            // Another process copying the template at the same moment.
                            Err(e) => last = Some(e),
                        }
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                    assert!(last.is_none(), "CREATE DATABASE from template failed: {last:?}");
                } else {
                    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
                }
                let url = DatabaseUrl::Postgres(url_with_db(&pg_admin_url(), &name));
                Some(Self {
                    url,
                    pg_name: Some(name),
                    _dir: None,
                })
            }
        }
    }

    pub fn connect(&self) -> Db {
        Db::connect(&self.url).unwrap()
    }

    /// The database URL as a string for `AGORA_DATABASE_URL`.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => p.display().to_string(),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_name
            && let Ok(mut admin) = PgConnection::establish(&pg_admin_url())
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}
