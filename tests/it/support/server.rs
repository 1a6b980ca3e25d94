//! A real `agora` server on 127.0.0.1:0 in this process, on a fresh database. Binds first, then
//! builds the config with the real port, so `public_url` is right (cookies, origins, ids).

use agora::accounts::model::{Role, Status, User};
use agora::accounts::{password, rules};
use agora::config::{Config, RawValues};
use agora::state::AppState;

use super::{Backend, TestDb};

pub struct TestServer {
    pub url: String,
    pub state: AppState,
    /// Dropped after the server, so the database outlives its connections.
    _db: TestDb,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start(backend: Backend) -> Option<Self> {
        Self::start_with(backend, &[]).await
    }

    /// Starts with extra config values, e.g. `[("registration", "open")]`.
    pub async fn start_with(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        let db = tokio::task::spawn_blocking(move || TestDb::new(backend))
            .await
            .unwrap()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let data_dir = tempfile::tempdir().unwrap();
        let mut values = RawValues::new();
        let mut set = |k: &str, v: &str| {
            values.insert(k.to_owned(), toml::Value::String(v.to_owned()));
        };
        set("public_url", &format!("http://{addr}"));
        set("listen", &addr.to_string());
        set("data_dir", &data_dir.path().display().to_string());
        set("database_url", &db.url_string());
        for (k, v) in extra {
            set(k, v);
        }
        // Typed as a config file would have it: booleans as booleans.
        for (k, v) in extra {
            if matches!(*v, "true" | "false") {
                values.insert((*k).to_owned(), toml::Value::Boolean(*v == "true"));
            }
        }
        let config = Config::from_values(&values).unwrap();
        let url = db.url.clone();
        let pool = tokio::task::spawn_blocking(move || agora::db::Db::connect(&url).unwrap())
            .await
            .unwrap();
        let state = AppState::new(config, pool).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(agora::app::serve_on(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Some(Self {
            url: format!("http://{addr}"),
            state,
            _db: db,
            shutdown: Some(tx),
            handle: Some(handle),
            _data_dir: data_dir,
        })
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Creates an active user directly through the rules layer.
    pub async fn create_user(&self, name: &str, pw: &str, role: Role) -> User {
        self.create_user_with(name, pw, role, Status::Active, false).await
    }

    pub async fn create_user_with(
        &self,
        name: &str,
        pw: &str,
        role: Role,
        status: Status,
        must_change: bool,
    ) -> User {
        let input = rules::AccountInput {
            username: name.to_owned(),
            display_name: name.to_owned(),
            email: format!("{name}@example.org"),
            password_hash: password::hash(pw).unwrap(),
            role,
            status,
            must_change_password: must_change,
        };
        self.state
            .db()
            .run(move |c| rules::create_user(c, &input))
            .await
            .unwrap()
    }

    /// A token for the user through the public API.
    pub async fn token(&self, name: &str, pw: &str) -> String {
        let res = reqwest::Client::new()
            .post(self.at("/api/v1/auth/token"))
            .json(&serde_json::json!({ "username": name, "password": pw }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "token for {name}");
        res.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Stops accepting, finishes in-flight requests and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}
