//! A real `agora serve` process: finding (building) the binary, databases for it, starting it in
//! federation debug mode, readiness, RSS, stopping and kill -9; and the CLI/API set-up steps.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agora::config::DatabaseUrl;
use anyhow::{Context as _, bail};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The cargo target directory: `CARGO_TARGET_DIR`, else the one this executable was built in
/// (`<target>/<profile>/deps/agora_bench-…`), else `target/`.
pub fn target_dir() -> anyhow::Result<PathBuf> {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        let d = PathBuf::from(d);
        return Ok(if d.is_absolute() {
            d
        } else {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(d)
        });
    }
    let exe = std::env::current_exe().context("current_exe")?;
    Ok(exe.ancestors().nth(3).map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
        Path::to_path_buf,
    ))
}

/// The `agora` binary: release for measurements (built if missing or stale: cargo decides), the
/// debug build for `--quick` (already there after `cargo test`, else built).
pub fn agora_binary(target: &Path, quick: bool) -> anyhow::Result<PathBuf> {
    let (profile, dir) = if quick {
        ("dev", "debug")
    } else {
        ("release", "release")
    };
    let bin = target.join(dir).join("agora");
    if quick && bin.exists() {
        return Ok(bin);
    }
    eprintln!("agora-bench: cargo build --profile {profile} --bin agora");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--locked", "--profile", profile, "--bin", "agora"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .context("running cargo build")?;
    if !status.success() || !bin.exists() {
        bail!("cargo build --profile {profile} --bin agora failed");
    }
    Ok(bin)
}

/// Raises the soft open-files limit to the hard one (prlimit(1) on our own pid; children inherit).
pub fn raise_fd_limit() {
    let pid = std::process::id().to_string();
    let _ = Command::new("prlimit")
        .args(["--pid", &pid, "--nofile=unlimited:"])
        .stderr(Stdio::null())
        .status();
}

/// The soft open-files limit, from /proc.
pub fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

pub fn pg_admin_url() -> String {
    std::env::var("AGORA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn pg_available() -> bool {
    PgConnection::establish(&pg_admin_url()).is_ok()
}

pub fn pg_url(db: &str) -> anyhow::Result<String> {
    let mut u = url::Url::parse(&pg_admin_url()).context("AGORA_TEST_DATABASE_URL")?;
    u.set_path(&format!("/{db}"));
    Ok(u.to_string())
}

pub fn pg_admin() -> anyhow::Result<PgConnection> {
    PgConnection::establish(&pg_admin_url()).context("connecting to PostgreSQL")
}

/// A database for one server: a SQLite file or a PostgreSQL database (dropped with the value when
/// it is a throwaway one).
pub struct BenchDb {
    pub url: DatabaseUrl,
    pg_drop: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl BenchDb {
    /// A fresh, migrated database.
    pub fn fresh(b: Backend) -> anyhow::Result<Self> {
        let db = match b {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("agora-bench-")
                    .tempdir_in(scratch())?;
                Self {
                    url: DatabaseUrl::Sqlite(dir.path().join("agora.db")),
                    pg_drop: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!(
                    "agora_bench_{}_{:06x}",
                    std::process::id(),
                    rand::random::<u32>() & 0xff_ffff
                );
                pg_admin()?.batch_execute(&format!("CREATE DATABASE {name}"))?;
                Self {
                    url: DatabaseUrl::Postgres(pg_url(&name)?),
                    pg_drop: Some(name),
                    _dir: None,
                }
            }
        };
        agora::db::Db::connect(&db.url)?.migrate()?;
        Ok(db)
    }

    /// An existing database that outlives the run (the cached store).
    pub fn existing(url: DatabaseUrl) -> Self {
        Self {
            url,
            pg_drop: None,
            _dir: None,
        }
    }

    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Sqlite(p) => p.display().to_string(),
            DatabaseUrl::Postgres(u) => u.clone(),
        }
    }

    pub fn conn(&self) -> anyhow::Result<agora::db::DbConn> {
        Ok(agora::db::connect_single(&self.url)?)
    }
}

impl Drop for BenchDb {
    fn drop(&mut self) {
        if let Some(name) = &self.pg_drop
            && let Ok(mut admin) = pg_admin()
        {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// Where throwaway files go: /var/tmp (disk-backed, like a real data directory).
pub fn scratch() -> PathBuf {
    let d = PathBuf::from("/var/tmp/agora-bench-scratch");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// A free port on 127.0.0.1 (bound and released; good enough for a benchmark).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running `agora serve`.
pub struct Server {
    child: Child,
    pub pid: u32,
    pub addr: SocketAddr,
    pub url: String,
    pub started: Instant,
    pub log: PathBuf,
    env: Vec<(String, String)>,
    bin: PathBuf,
    data_dir: PathBuf,
}

impl Server {
    /// The environment of a server on `db` listening on `port`.
    fn env_for(db: &BenchDb, port: u16, data_dir: &Path) -> Vec<(String, String)> {
        vec![
            ("AGORA_PUBLIC_URL".into(), format!("http://127.0.0.1:{port}")),
            ("AGORA_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("AGORA_DATA_DIR".into(), data_dir.display().to_string()),
            ("AGORA_DATABASE_URL".into(), db.url_string()),
            ("AGORA_FEDERATION_DEBUG".into(), "true".into()),
            // Per-request log lines would measure the terminal.
            (
                "RUST_LOG".into(),
                std::env::var("AGORA_BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
    }

    /// Starts `agora serve` on `db` (does not wait for readiness).
    pub fn spawn(bin: &Path, db: &BenchDb, data_dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let env = Self::env_for(db, port, data_dir);
        Self::spawn_env(bin, env, port, data_dir)
    }

    fn spawn_env(bin: &Path, env: Vec<(String, String)>, port: u16, data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log = data_dir.join("server.log");
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .current_dir(data_dir)
            .stdout(out.try_clone()?)
            .stderr(out)
            .stdin(Stdio::null());
        // An unknown AGORA_ variable stops agora; only ours go in.
        for (k, _) in std::env::vars() {
            if k.starts_with("AGORA_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        Ok(Self {
            pid: child.id(),
            child,
            addr,
            url: format!("http://127.0.0.1:{port}"),
            started,
            log,
            env,
            bin: bin.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// Starts and waits for /readyz; returns the server and exec → ready.
    pub fn start(bin: &Path, db: &BenchDb, data_dir: &Path) -> anyhow::Result<(Self, Duration)> {
        let mut s = Self::spawn(bin, db, data_dir)?;
        let ready = s.wait_ready(Duration::from_secs(60))?;
        Ok((s, ready))
    }

    /// The same server again (same port, database and data directory), after it ended.
    pub fn respawn(&self) -> anyhow::Result<Self> {
        Self::spawn_env(&self.bin, self.env.clone(), self.addr.port(), &self.data_dir)
    }

    /// Polls /readyz every millisecond until 200; the time since exec.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<Duration> {
        loop {
            if raw_get(self.addr, "/readyz").is_some_and(|(s, _)| s == 200) {
                return Ok(self.started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "agora serve exited ({status}) before it was ready; see {}",
                    self.log.display()
                );
            }
            if self.started.elapsed() > timeout {
                bail!(
                    "agora serve was not ready after {timeout:?}; see {}",
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// VmRSS in MB.
    pub fn rss_mb(&self) -> f64 {
        rss_mb(self.pid)
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM (graceful), then SIGKILL after 15 s.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Runs `agora <args>` against this server's database; stdout.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> anyhow::Result<String> {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args).current_dir(&self.data_dir);
        for (k, _) in std::env::vars() {
            if k.starts_with("AGORA_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "agora {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// An admin user and an API token for it.
    pub fn admin_token(&self) -> anyhow::Result<String> {
        self.cli(
            &[
                "user",
                "create",
                "bench_admin",
                "--email",
                "bench@example.org",
                "--role",
                "admin",
                "--password-stdin",
            ],
            Some("correct horse battery staple\n"),
        )?;
        self.cli(&["token", "create", "bench_admin"], None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// A minimal blocking HTTP/1.1 GET on a fresh connection: (status, body). None when nothing listens.
pub fn raw_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// A JSON API call with a bearer token; the status and the JSON body.
pub async fn api(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let mut req = c.request(method, &url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.with_context(|| url.clone())?;
    let status = res.status().as_u16();
    let text = res.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    ))
}

/// Creates a public group through the API.
pub async fn create_group(c: &reqwest::Client, srv: &Server, token: &str, slug: &str) -> anyhow::Result<()> {
    let (status, body) = api(
        c,
        reqwest::Method::POST,
        srv.at("/api/v1/groups"),
        token,
        Some(serde_json::json!({"slug": slug, "title": format!("Group {slug}")})),
    )
    .await?;
    if status != 201 && status != 200 {
        bail!("creating group {slug}: {status} {body}");
    }
    Ok(())
}

/// Starts a thread through the API; its id.
pub async fn create_thread(
    c: &reqwest::Client,
    srv: &Server,
    token: &str,
    slug: &str,
    title: &str,
) -> anyhow::Result<i64> {
    let (status, body) = api(
        c,
        reqwest::Method::POST,
        srv.at(&format!("/api/v1/groups/{slug}/threads")),
        token,
        Some(serde_json::json!({"title": title, "body": format!("{title}: what do you think?")})),
    )
    .await?;
    body["id"]
        .as_i64()
        .with_context(|| format!("creating a thread in {slug}: {status} {body}"))
}

/// Runs SQL on a database (set-up only, never timed).
pub fn exec_sql(conn: &mut agora::db::DbConn, sql: &str) -> anyhow::Result<()> {
    match conn {
        agora::db::DbConn::Pg(c) => c.batch_execute(sql)?,
        agora::db::DbConn::Sqlite(c) => c.batch_execute(sql)?,
    }
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// `SELECT count(*) AS n …` style queries.
pub fn count(conn: &mut agora::db::DbConn, sql: &str) -> anyhow::Result<i64> {
    Ok(match conn {
        agora::db::DbConn::Pg(c) => diesel::sql_query(sql).get_result::<Count>(c)?.n,
        agora::db::DbConn::Sqlite(c) => diesel::sql_query(sql).get_result::<Count>(c)?.n,
    })
}
