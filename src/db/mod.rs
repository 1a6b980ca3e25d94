//! Database access for both backends in one binary.
//!
//! [`DbConn`] derives diesel's `MultiConnection`, so model code is written once against the common
//! SQL subset. The backend is chosen at run time from `database_url` by our own r2d2 manager. Every
//! query runs on the blocking thread pool through [`Db::run`]; async worker threads never block.
//! The few places where the dialects differ (upserts, job claiming, migration locks) live in named
//! functions here and in [`jobs`] and [`settings`], each tested on both backends.

pub mod jobs;
pub mod schema;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

/// A connection to either backend. SQLite is last so that anything that tries variants in order
/// does not let SQLite accept a PostgreSQL URL as a file name.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Key of the PostgreSQL advisory lock held while migrating ("agora" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0061_676f_7261;

/// Why a database operation failed. The text is for logs; users see a generic sentence.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("applying database migrations failed: {0}")]
    Migration(String),
    #[error("a database task panicked or was cancelled")]
    Task,
}

impl From<r2d2::PoolError> for Error {
    fn from(e: r2d2::PoolError) -> Self {
        Self::Connect(e.to_string())
    }
}

/// Opens connections for the configured backend and prepares each one.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    pub fn new(url: DatabaseUrl) -> Self {
        Self { url }
    }

    fn establish(&self) -> Result<DbConn, ConnectionError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => Ok(DbConn::Pg(PgConnection::establish(url)?)),
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())?;
                // busy_timeout first so later statements wait for other writers. Foreign keys are
                // off by default in SQLite; we depend on them for cascades and integrity.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                // Switching a new file to WAL needs an exclusive lock and SQLite does not wait for it
                // (no busy handler), so processes opening a fresh database together retry here.
                let mut attempt = 0;
                loop {
                    match conn.batch_execute("PRAGMA journal_mode = WAL;") {
                        Ok(()) => break,
                        Err(e) if attempt < 100 && e.to_string().contains("locked") => {
                            attempt += 1;
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => return Err(ConnectionError::CouldntSetupConfiguration(e)),
                    }
                }
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.establish().map_err(r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1").map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        match conn {
            DbConn::Pg(c) => c.is_broken(),
            DbConn::Sqlite(c) => c.is_broken(),
        }
    }
}

/// The connection pool, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<Manager>,
    url: DatabaseUrl,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Connects (creating the SQLite file and its directory if needed) and checks that one
    /// connection can be opened, so a wrong URL fails here with one sentence.
    pub fn connect(url: &DatabaseUrl) -> Result<Self, Error> {
        if let DatabaseUrl::Sqlite(path) = url
            && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::Connect(format!(
                    "cannot create the directory {} for SQLite: {e}",
                    dir.display()
                ))
            })?;
        }
        let max_size = match url {
            // Readers run in parallel under WAL; writers queue on SQLite's lock (busy_timeout).
            DatabaseUrl::Sqlite(_) => 8,
            DatabaseUrl::Postgres(_) => 12,
        };
        let manager = Manager::new(url.clone());
        // Probe once ourselves: r2d2's build() would retry for its whole timeout and then report
        // only "timed out", hiding the real cause (wrong host, bad password, unwritable file).
        manager
            .establish()
            .map_err(|e| Error::Connect(one_line(&e.to_string())))?;
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(Self {
            pool,
            url: url.clone(),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self.url, DatabaseUrl::Sqlite(_))
    }

    /// Runs `f` with a pooled connection on the blocking thread pool.
    pub async fn run<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<Error> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(Error::from)?;
            f(&mut conn)
        })
        .await
        .map_err(|_| E::from(Error::Task))?
    }

    /// A pooled connection for synchronous callers (tests). Never call this on an async worker.
    pub fn get(&self) -> Result<r2d2::PooledConnection<Manager>, Error> {
        Ok(self.pool.get()?)
    }

    /// Applies pending migrations under a cross-process lock.
    pub fn migrate(&self) -> Result<Vec<String>, Error> {
        let mut conn = self.get()?;
        migrate(&mut conn, &self.url)
    }
}

/// One connection without a pool, for short-lived commands. The pool's background threads would
/// still be inside libpq when such a process exits, and OpenSSL's exit handlers then crash it.
pub fn connect_single(url: &DatabaseUrl) -> Result<DbConn, Error> {
    prepare_sqlite_dir(url)?;
    Manager::new(url.clone())
        .establish()
        .map_err(|e| Error::Connect(one_line(&e.to_string())))
}

/// libpq\'s messages span several lines with tabs; errors we print are one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn prepare_sqlite_dir(url: &DatabaseUrl) -> Result<(), Error> {
    if let DatabaseUrl::Sqlite(path) = url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Connect(format!(
                "cannot create the directory {} for SQLite: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(())
}

/// Runs pending migrations. PostgreSQL takes an advisory lock; SQLite takes an exclusive lock on a
/// file beside the database, so several processes starting together apply each migration once.
pub fn migrate(conn: &mut DbConn, url: &DatabaseUrl) -> Result<Vec<String>, Error> {
    let applied = match conn {
        DbConn::Pg(c) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")).execute(c)?;
            let result = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(versions);
            diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")).execute(c)?;
            result
        }
        DbConn::Sqlite(c) => {
            let _lock = match url {
                DatabaseUrl::Sqlite(path) => Some(FileLock::acquire(path)?),
                DatabaseUrl::Postgres(_) => None,
            };
            c.run_pending_migrations(SQLITE_MIGRATIONS).map(versions)
        }
    };
    applied.map_err(|e| Error::Migration(e.to_string()))
}

fn versions(v: Vec<diesel::migration::MigrationVersion<'_>>) -> Vec<String> {
    v.into_iter().map(|m| m.to_string()).collect()
}

/// Whether every embedded migration has been applied (used by `/readyz`).
pub fn migrations_applied(conn: &mut DbConn) -> Result<bool, Error> {
    let pending = match conn {
        DbConn::Pg(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    pending.map(|p| !p).map_err(|e| Error::Migration(e.to_string()))
}

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, which takes the single
/// writer lock up front: a deferred transaction that reads and then writes can fail with
/// SQLITE_BUSY at once instead of waiting, when another writer got in between.
pub fn write_tx<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        // SqliteConnection::immediate_transaction would hand the closure the inner connection, but
        // model code takes the multi-connection, so drive the inner transaction manager directly.
        DbConn::Sqlite(_) => sqlite_immediate(conn, f),
        DbConn::Pg(_) => conn.transaction(f),
    }
}

fn sqlite_immediate<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    // Nested calls become savepoints, as with diesel's own transaction().
    let depth = match conn {
        DbConn::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .map_err(E::from)?,
        DbConn::Pg(_) => None,
    };
    if depth.is_some() {
        return conn.transaction(f);
    }
    if let DbConn::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").map_err(E::from)?;
    }
    match f(conn) {
        Ok(v) => {
            if let DbConn::Sqlite(c) = conn {
                AnsiTransactionManager::commit_transaction(c).map_err(E::from)?;
            }
            Ok(v)
        }
        Err(e) => {
            if let DbConn::Sqlite(c) = conn {
                // The original error matters more than a failed rollback.
                let _ = AnsiTransactionManager::rollback_transaction(c);
            }
            Err(e)
        }
    }
}

/// An exclusive advisory lock on `<database>.migrate-lock`, released on drop.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn acquire(db_path: &Path) -> Result<Self, Error> {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".migrate-lock");
        let path = PathBuf::from(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Migration(format!("cannot open the lock file {}: {e}", path.display())))?;
        file.lock()
            .map_err(|e| Error::Migration(format!("cannot lock {}: {e}", path.display())))?;
        Ok(Self { _file: file })
    }
}

/// The current time as stored in the database (UTC, microsecond precision on both backends).
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    // PostgreSQL keeps microseconds; trimming here makes values round-trip identically on both.
    now.with_nanosecond_micro()
}

trait MicroPrecision {
    fn with_nanosecond_micro(self) -> Self;
}

impl MicroPrecision for chrono::NaiveDateTime {
    fn with_nanosecond_micro(self) -> Self {
        use chrono::Timelike;
        let micros = self.nanosecond() / 1_000 * 1_000;
        self.with_nanosecond(micros).unwrap_or(self)
    }
}

/// Serde helpers that write stored (UTC) timestamps as RFC 3339 with a `Z`, as APIs expect.
pub mod utc {
    use chrono::NaiveDateTime;

    pub fn serialize<S: serde::Serializer>(dt: &NaiveDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&dt.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }

    pub mod option {
        use chrono::NaiveDateTime;

        pub fn serialize<S: serde::Serializer>(dt: &Option<NaiveDateTime>, s: S) -> Result<S::Ok, S::Error> {
            match dt {
                Some(dt) => super::serialize(dt, s),
                None => s.serialize_none(),
            }
        }
    }
}

/// Whether a diesel error is a unique-constraint violation (e.g. a name taken concurrently).
/// Serialises the rest of the current write transaction with every other one that takes the same
/// `key`: on PostgreSQL a transaction-scoped advisory lock; SQLite write transactions are
/// serialised already (BEGIN IMMEDIATE). For check-then-insert steps that two processes or two
/// concurrent requests may run at once (a unique violation would abort a PostgreSQL transaction).
pub fn serialize_on(conn: &mut DbConn, key: &str) -> QueryResult<()> {
    use sha2::Digest;
    if let DbConn::Pg(c) = conn {
        let digest = sha2::Sha256::digest(key.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(i64::from_be_bytes(first))
            .execute(c)?;
    }
    Ok(())
}

pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
