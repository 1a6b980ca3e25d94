//! The stub fediverse: one set of tokio tasks serving many virtual instances, each on its own
//! loopback address `127.0.x.y` (same port), so Agora's per-instance queues, limits and dedup
//! see distinct hosts. Each instance serves WebFinger, actor documents (keys from the shared
//! pool), shared and personal inboxes and object fetches, with its own latency and 5xx rate; a
//! dead instance has no listener at all, and an instance can be taken down (503) and back at run
//! time. Inbox POSTs are counted per (inbox, activity id), so "exactly once per inbox" is checked.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::Rng;
use serde_json::{Value, json};

use crate::crypto::PoolKey;

#[derive(Debug, Clone, Copy, Default)]
pub struct Spec {
    /// Added before every answer (half a round trip is enough to model the RTT of a far server:
    /// the request itself is local).
    pub latency: Duration,
    /// Share of inbox POSTs answered 503.
    pub error_rate: f64,
    /// No listener: connections are refused.
    pub dead: bool,
    /// Actors publish `endpoints.sharedInbox`.
    pub shared_inbox: bool,
}

pub struct Instance {
    pub ip: Ipv4Addr,
    /// `ip:port`, as it appears in URLs and Host headers.
    pub host: String,
    pub spec: Spec,
    pub down: AtomicBool,
    pub delivered: AtomicU64,
    in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    /// Successful inbox POSTs: first and last, since the stub started.
    times: Mutex<(Option<Duration>, Option<Duration>)>,
}

impl Instance {
    pub fn first_last(&self) -> (Option<Duration>, Option<Duration>) {
        self.times.lock().map(|t| *t).unwrap_or((None, None))
    }
}

pub struct Shared {
    pub instances: Vec<Instance>,
    pub keys: Arc<Vec<PoolKey>>,
    pub started: Instant,
    /// Answer with `Connection: close` (thousands of instances: no idle sockets piling up).
    pub close: bool,
    pub posts_ok: AtomicU64,
    pub posts_failed: AtomicU64,
    pub fetches: AtomicU64,
    /// Successful POSTs per "inbox activity-id".
    pub per_inbox: Mutex<HashMap<String, u32>>,
}

/// The address of instance `i`: 127.0.x.y with x, y from 1 (127.0.0.* is left to Agora).
pub fn ip_of(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, (1 + i / 254) as u8, (1 + i % 254) as u8)
}

fn index_of(host: &str) -> Option<usize> {
    let ip: Ipv4Addr = host.split(':').next()?.parse().ok()?;
    let [_, _, x, y] = ip.octets();
    Some((usize::from(x).checked_sub(1)?) * 254 + usize::from(y).checked_sub(1)?)
}

impl Shared {
    pub fn actor_url(&self, i: usize, n: usize) -> String {
        format!("http://{}/users/u{n}", self.instances[i].host)
    }

    /// Which pool key actor `n` of instance `i` has.
    pub fn key_of(&self, i: usize, n: usize) -> &PoolKey {
        &self.keys[(i * 31 + n) % self.keys.len()]
    }

    pub fn inbox_of(&self, i: usize, n: usize) -> String {
        format!("http://{}/users/u{n}/inbox", self.instances[i].host)
    }

    pub fn shared_inbox_of(&self, i: usize) -> String {
        format!("http://{}/inbox", self.instances[i].host)
    }

    /// Successful POSTs of (inbox, activity) pairs: (distinct pairs, pairs received more than once).
    pub fn pairs(&self) -> (usize, usize) {
        self.per_inbox
            .lock()
            .map(|m| (m.len(), m.values().filter(|n| **n > 1).count()))
            .unwrap_or((0, 0))
    }

    pub fn set_down(&self, i: usize, down: bool) {
        self.instances[i].down.store(down, Ordering::SeqCst);
    }
}

pub struct Stub {
    pub shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Stub {
    /// Binds every live instance's listener and starts serving.
    pub async fn start(specs: &[Spec], keys: Arc<Vec<PoolKey>>, close: bool) -> anyhow::Result<Self> {
        let probe = std::net::TcpListener::bind((ip_of(0), 0))
            .context("binding 127.0.1.1 (is 127.0.0.0/8 loopback?)")?;
        let port = probe.local_addr()?.port();
        drop(probe);
        let instances = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| Instance {
                ip: ip_of(i),
                host: format!("{}:{port}", ip_of(i)),
                spec: *spec,
                down: AtomicBool::new(false),
                delivered: AtomicU64::new(0),
                in_flight: AtomicU64::new(0),
                max_in_flight: AtomicU64::new(0),
                times: Mutex::new((None, None)),
            })
            .collect();
        let shared = Arc::new(Shared {
            instances,
            keys,
            started: Instant::now(),
            close,
            posts_ok: AtomicU64::new(0),
            posts_failed: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            per_inbox: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/.well-known/webfinger", get(webfinger))
            .route("/users/{name}", get(actor))
            .route("/users/{name}/inbox", post(inbox))
            .route("/inbox", post(inbox))
            .route("/notes/{id}", get(note))
            .with_state(shared.clone());
        let mut tasks = Vec::new();
        for inst in shared.instances.iter().filter(|i| !i.spec.dead) {
            let addr = SocketAddr::from((inst.ip, port));
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding {addr}"))?;
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            }));
        }
        Ok(Self { shared, tasks })
    }
}

fn host_index(s: &Shared, headers: &HeaderMap) -> Option<usize> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    index_of(host).filter(|i| *i < s.instances.len())
}

fn json_response(s: &Shared, content_type: &'static str, v: &Value) -> Response {
    let mut r = ([(header::CONTENT_TYPE, content_type)], v.to_string()).into_response();
    if s.close {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

fn status(s: &Shared, code: StatusCode) -> Response {
    let mut r = code.into_response();
    if s.close {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

async fn delay(s: &Shared, i: usize) {
    let l = s.instances[i].spec.latency;
    if !l.is_zero() {
        tokio::time::sleep(l).await;
    }
}

async fn webfinger(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(i) = host_index(&s, &headers) else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    delay(&s, i).await;
    let Some(n) = q
        .get("resource")
        .and_then(|r| r.strip_prefix("acct:u"))
        .and_then(|r| r.split('@').next())
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    let id = s.actor_url(i, n);
    json_response(
        &s,
        "application/jrd+json",
        &json!({
            "subject": format!("acct:u{n}@{}", s.instances[i].host),
            "links": [{"rel": "self", "type": "application/activity+json", "href": id}]
        }),
    )
}

async fn actor(State(s): State<Arc<Shared>>, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let Some(i) = host_index(&s, &headers) else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    s.fetches.fetch_add(1, Ordering::Relaxed);
    delay(&s, i).await;
    if s.instances[i].down.load(Ordering::Relaxed) {
        return status(&s, StatusCode::SERVICE_UNAVAILABLE);
    }
    let Some(n) = name.strip_prefix('u').and_then(|n| n.parse::<usize>().ok()) else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    let id = s.actor_url(i, n);
    let mut doc = json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
        "id": id, "type": "Person", "preferredUsername": format!("u{n}"), "name": format!("Stub {i}/{n}"),
        "inbox": s.inbox_of(i, n),
        "outbox": format!("{id}/outbox"),
        "publicKey": { "id": format!("{id}#main-key"), "owner": id, "publicKeyPem": s.key_of(i, n).public_pem }
    });
    if s.instances[i].spec.shared_inbox {
        doc["endpoints"] = json!({ "sharedInbox": s.shared_inbox_of(i) });
    }
    json_response(&s, "application/activity+json", &doc)
}

async fn note(State(s): State<Arc<Shared>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(i) = host_index(&s, &headers) else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    s.fetches.fetch_add(1, Ordering::Relaxed);
    delay(&s, i).await;
    let host = &s.instances[i].host;
    json_response(
        &s,
        "application/activity+json",
        &json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("http://{host}/notes/{id}"), "type": "Note",
            "attributedTo": s.actor_url(i, 0), "content": "<p>stub note</p>",
            "to": ["https://www.w3.org/ns/activitystreams#Public"]
        }),
    )
}

async fn inbox(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let Some(i) = host_index(&s, &headers) else {
        return status(&s, StatusCode::NOT_FOUND);
    };
    let inst = &s.instances[i];
    let now_in = inst.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inst.max_in_flight.fetch_max(now_in, Ordering::SeqCst);
    delay(&s, i).await;
    inst.in_flight.fetch_sub(1, Ordering::SeqCst);
    let fail = inst.down.load(Ordering::Relaxed)
        || (inst.spec.error_rate > 0.0 && rand::rng().random_bool(inst.spec.error_rate))
        || !headers.contains_key("signature");
    if fail {
        s.posts_failed.fetch_add(1, Ordering::Relaxed);
        return status(&s, StatusCode::SERVICE_UNAVAILABLE);
    }
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let key = format!("http://{}{} {id}", inst.host, uri.path());
    if let Ok(mut m) = s.per_inbox.lock() {
        *m.entry(key).or_insert(0) += 1;
    }
    inst.delivered.fetch_add(1, Ordering::Relaxed);
    s.posts_ok.fetch_add(1, Ordering::Relaxed);
    let at = s.started.elapsed();
    if let Ok(mut t) = inst.times.lock() {
        t.0.get_or_insert(at);
        t.1 = Some(at);
    }
    status(&s, StatusCode::ACCEPTED)
}
