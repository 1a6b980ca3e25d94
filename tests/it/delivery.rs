//! Persistent delivery: queued activities survive kill -9 and arrive exactly once.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agora::accounts::model::{Role, Status};
use agora::accounts::{password, rules};
use agora::federation::delivery;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use diesel::prelude::*;

use crate::support::{Backend, TestDb};

crate::backend_tests!(
    deliveries_survive_kill_9,
    fan_out_per_instance,
    retry_after_and_dead_instances
);

fn serve(db: &TestDb, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(data)
        .env("AGORA_DATABASE_URL", db.url_string())
        .env("AGORA_LISTEN", "127.0.0.1:0")
        .env("AGORA_PUBLIC_URL", "http://127.0.0.1:9")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// (attempts, last error, due) of every queued delivery.
fn queue_state(db: &agora::db::Db) -> Vec<(i32, Option<String>, chrono::NaiveDateTime)> {
    use agora::db::schema::deliveries;
    let mut c = db.get().unwrap();
    deliveries::table
        .select((
            deliveries::attempts,
            deliveries::last_error,
            deliveries::next_attempt_at,
        ))
        .load(&mut *c)
        .unwrap()
}

/// How many deliveries have a recorded failure.
fn failed_once(db: &agora::db::Db) -> usize {
    queue_state(db).iter().filter(|(a, _, _)| *a > 0).count()
}

async fn deliveries_survive_kill_9(b: Backend) {
    let Some(tdb) = tokio::task::spawn_blocking(move || TestDb::new(b)).await.unwrap() else {
        return;
    };
    let db = tdb.connect();
    let data = tempfile::tempdir().unwrap();
    // A port nobody listens on yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let inbox = format!("http://127.0.0.1:{port}/inbox");
    let pool = db.clone();
    let inbox_for_jobs = inbox.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pool.get().unwrap();
        let input = rules::AccountInput {
            username: "sender".into(),
            display_name: "Sender".into(),
            email: "sender@example.org".into(),
            password_hash: password::hash("sender password 1").unwrap(),
            role: Role::Member,
            status: Status::Active,
            must_change_password: false,
        };
        rules::create_user(&mut c, &input).unwrap();
        for i in 0..5 {
            let activity =
                serde_json::json!({ "id": format!("http://127.0.0.1:9/activities/{i}"), "type": "Like" });
            let activity = serde_json::json!({
                "id": activity["id"],
                "type": "Like",
                "actor": "http://127.0.0.1:9/u/sender",
            });
            delivery::send(&mut c, "sender", &activity, [&inbox_for_jobs]).unwrap();
        }
    })
    .await
    .unwrap();

    // The server tries once, fails (receiver down), and is killed without a chance to clean up.
    let mut server = serve(&tdb, data.path());
    let start = Instant::now();
    // Wait until each failure is recorded: a delivery killed mid-attempt stays leased for a
    // minute (correct, but not what this test is about).
    while failed_once(&db) < 5 && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        failed_once(&db),
        5,
        "every delivery failed once: {:?}",
        queue_state(&db)
    );
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    assert_eq!(queue_state(&db).len(), 5, "nothing lost");

    // The receiver comes up, the server restarts and delivers each activity once.
    let received = Arc::new(Mutex::new(Vec::<serde_json::Value>::new()));
    let app = Router::new()
        .route(
            "/inbox",
            post(
                |State(r): State<Arc<Mutex<Vec<serde_json::Value>>>>, body: Bytes| async move {
                    r.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut server = serve(&tdb, data.path());
    let start = Instant::now();
    // Retries back off by 1.25^n s; a delivery caught in flight by the kill waits for its lease.
    while received.lock().unwrap().len() < 5 && start.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let mut ids: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.len(),
        5,
        "every activity arrived: {ids:?}; queue: {:?}",
        queue_state(&db)
    );
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "exactly once");
    assert!(queue_state(&db).is_empty(), "the queue is empty");
}

/// One HTTP request a test inbox received.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    at: Instant,
    signature: String,
}

/// An answer a test inbox gives instead of 202: status and `Retry-After`.
type Scripted = (u16, Option<&'static str>);

/// A test inbox server: answers `status` (with `Retry-After` when set) after `delay`, records
/// every request and the highest number of requests it had in flight at once.
#[derive(Clone)]
struct Inbox {
    received: Arc<Mutex<Vec<Received>>>,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
    max_in_flight: Arc<std::sync::atomic::AtomicUsize>,
    /// Answers for the first requests, then 202.
    script: Arc<Mutex<std::collections::VecDeque<Scripted>>>,
    delay: Duration,
}

impl Inbox {
    fn new(delay: Duration) -> Self {
        Self {
            received: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
            script: Arc::default(),
            delay,
        }
    }

    /// Serves on `addr` (port 0: any) and returns the bound address.
    async fn serve(&self, addr: &str) -> std::net::SocketAddr {
        use std::sync::atomic::Ordering;
        let me = self.clone();
        let app = Router::new().fallback(post(
            move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    let now = me.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    me.max_in_flight.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(me.delay).await;
                    me.in_flight.fetch_sub(1, Ordering::SeqCst);
                    let activity: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                    me.received.lock().unwrap().push(Received {
                        path: uri.path().to_owned(),
                        id: activity["id"].as_str().unwrap_or_default().to_owned(),
                        at: Instant::now(),
                        signature: headers
                            .get("signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                    });
                    let answer = me.script.lock().unwrap().pop_front();
                    match answer {
                        Some((status, retry_after)) => {
                            let mut r = axum::response::Response::new(axum::body::Body::empty());
                            *r.status_mut() = StatusCode::from_u16(status).unwrap();
                            if let Some(v) = retry_after {
                                r.headers_mut().insert("retry-after", v.parse().unwrap());
                            }
                            r
                        }
                        None => {
                            let mut r = axum::response::Response::new(axum::body::Body::empty());
                            *r.status_mut() = StatusCode::ACCEPTED;
                            r
                        }
                    }
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let bound = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        bound
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

/// Adds `n` followers of `local` on the instance at `base`; `shared` gives them one shared inbox.
fn add_followers(db: &agora::db::Db, local: &str, base: &str, n: usize, shared: bool) {
    use agora::db::schema::followers;
    let mut c = db.get().unwrap();
    for i in 0..n {
        let actor = format!("{base}/users/f{i}");
        diesel::insert_into(followers::table)
            .values((
                followers::local_name.eq(local),
                followers::actor_ap_id.eq(&actor),
                followers::inbox.eq(format!("{actor}/inbox")),
                followers::shared_inbox.eq(shared.then(|| format!("{base}/inbox"))),
                followers::follow_id.eq(format!("{actor}#follow")),
                followers::state.eq("accepted"),
                followers::created_at.eq(agora::db::now()),
            ))
            .execute(&mut *c)
            .unwrap();
    }
}

fn fan_out(srv: &crate::support::TestServer, owner: &str, id: &str) -> usize {
    let activity = serde_json::json!({
        "id": srv.at(id),
        "type": "Update",
        "actor": srv.at(&format!("/u/{owner}")),
        "object": srv.at(&format!("/u/{owner}")),
    });
    let mut c = srv.state.db().get().unwrap();
    let n = delivery::send_to_followers(&mut c, owner, owner, &activity).unwrap();
    srv.state.wake_delivery();
    n
}

async fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One POST per shared inbox, one per personal inbox otherwise; several requests in flight per
/// instance but never more than the limit; a dead instance delays no one; signatures verify.
async fn fan_out_per_instance(b: Backend) {
    let Some(srv) = crate::support::TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", "alice password 1", Role::Member).await;
    let shared = Inbox::new(Duration::from_millis(20));
    let personal = Inbox::new(Duration::from_millis(300));
    let shared_addr = shared.serve("127.0.0.1:0").await;
    let personal_addr = personal.serve("127.0.0.1:0").await;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let db = srv.state.db().clone();
    let (s, p) = (format!("http://{shared_addr}"), format!("http://{personal_addr}"));
    let dead = format!("http://127.0.0.1:{dead_port}");
    tokio::task::spawn_blocking(move || {
        add_followers(&db, "alice", &s, 30, true);
        add_followers(&db, "alice", &p, 24, false);
        add_followers(&db, "alice", &dead, 3, true);
    })
    .await
    .unwrap();

    let queued = {
        let srv = &srv;
        tokio::task::block_in_place(|| fan_out(srv, "alice", "/activities/update-1"))
    };
    assert_eq!(
        queued,
        1 + 24 + 1,
        "one shared inbox, 24 personal ones, one dead shared inbox"
    );
    wait_for("all live deliveries", Duration::from_secs(20), || {
        shared.count() == 1 && personal.count() == 24
    })
    .await;
    let max = personal.max_in_flight.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=delivery::PER_HOST).contains(&max),
        "several requests in flight per instance, at most {}: {max}",
        delivery::PER_HOST
    );
    assert_eq!(shared.received.lock().unwrap()[0].path, "/inbox");

    // The signature verifies with alice's published key.
    let doc: serde_json::Value = reqwest::Client::new()
        .get(srv.at("/u/alice"))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sig =
        agora::federation::signatures::parse_signature_header(&shared.received.lock().unwrap()[0].signature)
            .unwrap();
    assert_eq!(sig.key_id, srv.at("/u/alice#main-key"));
    assert_eq!(
        sig.headers,
        ["(request-target)", "host", "date", "digest"],
        "what Mastodon requires of a POST"
    );
    assert!(
        doc["publicKey"]["publicKeyPem"]
            .as_str()
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );

    // Only the dead instance's delivery is left, failed and waiting for its retry.
    let db = srv.state.db().clone();
    let host = format!("127.0.0.1:{dead_port}");
    wait_for("the failure to be recorded", Duration::from_secs(10), || {
        let mut c = db.get().unwrap();
        delivery::queue_summary(&mut c, agora::db::now())
            .unwrap()
            .iter()
            .any(|l| l.host == host && l.retrying == 1 && l.state.starts_with("failing since"))
    })
    .await;
    let mut c = db.get().unwrap();
    let lines = delivery::queue_summary(&mut c, agora::db::now()).unwrap();
    assert_eq!(lines.len(), 1, "{lines:?}");
    drop(c);
    srv.stop().await;
}

/// `Retry-After` is honoured for the whole instance; an instance failing for two days is dead,
/// skipped, and revived by a successful probe, after which its backlog flows.
async fn retry_after_and_dead_instances(b: Backend) {
    use agora::db::schema::{deliveries, instances};
    let Some(srv) = crate::support::TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", "alice password 1", Role::Member).await;
    let busy = Inbox::new(Duration::ZERO);
    busy.script
        .lock()
        .unwrap()
        .extend([(429, Some("3")), (429, Some("3"))]);
    let busy_addr = busy.serve("127.0.0.1:0").await;
    let db = srv.state.db().clone();
    let base = format!("http://{busy_addr}");
    tokio::task::spawn_blocking(move || add_followers(&db, "alice", &base, 2, false))
        .await
        .unwrap();
    tokio::task::block_in_place(|| fan_out(&srv, "alice", "/activities/busy-1"));
    wait_for("the retries after 429", Duration::from_secs(20), || {
        busy.count() == 4
    })
    .await;
    let got = busy.received.lock().unwrap().clone();
    let first = got[0].at;
    assert!(
        got[2..]
            .iter()
            .all(|r| r.at.duration_since(first) >= Duration::from_millis(2900)),
        "nothing went to the instance before Retry-After ran out: {:?}",
        got.iter().map(|r| r.at.duration_since(first)).collect::<Vec<_>>()
    );

    // An instance that has been failing for three days: the next failure marks it dead.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let base = format!("http://{host}");
    let db = srv.state.db().clone();
    let (h, bse) = (host.clone(), base.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = db.get().unwrap();
        diesel::insert_into(instances::table)
            .values((
                instances::host.eq(&h),
                instances::failing_since.eq(agora::db::now() - chrono::TimeDelta::days(3)),
                instances::dead.eq(false),
            ))
            .execute(&mut *c)
            .unwrap();
        drop(c);
        add_followers(&db, "alice", &bse, 1, true);
    })
    .await
    .unwrap();
    tokio::task::block_in_place(|| fan_out(&srv, "alice", "/activities/dead-1"));
    let db = srv.state.db().clone();
    let h = host.clone();
    let state_of = move || -> (bool, Option<chrono::NaiveDateTime>) {
        let mut c = db.get().unwrap();
        instances::table
            .find(&h)
            .select((instances::dead, instances::paused_until))
            .first(&mut *c)
            .unwrap()
    };
    let s = state_of.clone();
    wait_for(
        "the instance to be marked dead",
        Duration::from_secs(10),
        move || s().0,
    )
    .await;
    let (_, paused) = state_of();
    assert!(
        paused.unwrap() > agora::db::now() + chrono::TimeDelta::minutes(55),
        "next probe in an hour"
    );

    // While dead, new deliveries wait without a single attempt.
    tokio::task::block_in_place(|| fan_out(&srv, "alice", "/activities/dead-2"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let db = srv.state.db().clone();
    let h = host.clone();
    let attempts = move || -> Vec<i32> {
        let mut c = db.get().unwrap();
        deliveries::table
            .filter(deliveries::host.eq(&h))
            .select(deliveries::attempts)
            .order(deliveries::id)
            .load(&mut *c)
            .unwrap()
    };
    assert_eq!(attempts(), [1, 0], "the dead instance is skipped");
    let mut c = srv.state.db().get().unwrap();
    let lines = delivery::queue_summary(&mut c, agora::db::now()).unwrap();
    let line = lines.iter().find(|l| l.host == host).unwrap();
    assert!(line.state.starts_with("dead"), "{line:?}");
    drop(c);

    // The instance comes back; when the probe is due it succeeds and the backlog follows.
    let back = Inbox::new(Duration::ZERO);
    back.serve(&host).await;
    let db = srv.state.db().clone();
    let h = host.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = db.get().unwrap();
        diesel::update(instances::table.find(&h))
            .set(instances::paused_until.eq(agora::db::now() - chrono::TimeDelta::seconds(1)))
            .execute(&mut *c)
            .unwrap();
        diesel::update(deliveries::table.filter(deliveries::host.eq(&h)))
            .set(deliveries::next_attempt_at.eq(agora::db::now()))
            .execute(&mut *c)
            .unwrap();
    })
    .await
    .unwrap();
    srv.state.wake_delivery();
    wait_for("the probe and the backlog", Duration::from_secs(20), || {
        back.count() == 2
    })
    .await;
    wait_for("the instance to be alive", Duration::from_secs(10), || {
        !state_of().0
    })
    .await;
    srv.stop().await;
}

/// Two `agora serve` processes on one PostgreSQL share the queue: 1 000 deliveries to four
/// instances, one process killed with SIGKILL mid-run. Every delivery arrives; while both run,
/// none arrives twice; afterwards only requests the killed process had in flight may repeat
/// (receivers deduplicate by id), and the queue ends empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_two_processes_share_the_queue() {
    let Some(tdb) = tokio::task::spawn_blocking(|| TestDb::new(Backend::Postgres))
        .await
        .unwrap()
    else {
        return;
    };
    let db = tdb.connect();
    let receivers: Vec<Inbox> = (0..4).map(|_| Inbox::new(Duration::from_millis(300))).collect();
    let mut bases = Vec::new();
    for r in &receivers {
        bases.push(format!("http://{}", r.serve("127.0.0.1:0").await));
    }
    let pool = db.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = pool.get().unwrap();
        let input = rules::AccountInput {
            username: "sender".into(),
            display_name: "Sender".into(),
            email: "sender@example.org".into(),
            password_hash: password::hash("sender password 1").unwrap(),
            role: Role::Member,
            status: Status::Active,
            must_change_password: false,
        };
        rules::create_user(&mut c, &input).unwrap();
        // 10 activities to 100 personal inboxes each, 25 on every instance.
        for a in 0..10 {
            let activity = serde_json::json!({
                "id": format!("http://127.0.0.1:9/activities/{a}"),
                "type": "Update",
                "actor": "http://127.0.0.1:9/u/sender",
            });
            let inboxes: Vec<String> = (0..100)
                .map(|i| format!("{}/users/u{i}/inbox", bases[i % 4]))
                .collect();
            assert_eq!(
                delivery::send(&mut c, "sender", &activity, &inboxes).unwrap(),
                100
            );
        }
    })
    .await
    .unwrap();
    let total = || receivers.iter().map(Inbox::count).sum::<usize>();
    let unique = || {
        let mut all: Vec<(String, String)> = receivers
            .iter()
            .flat_map(|r| r.received.lock().unwrap().clone())
            .map(|r| (r.path, r.id))
            .collect();
        all.sort();
        all.dedup();
        all.len()
    };

    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut a = serve(&tdb, dirs[0].path());
    let mut b = serve(&tdb, dirs[1].path());
    wait_for("the first 300 deliveries", Duration::from_secs(60), || {
        total() >= 300
    })
    .await;
    a.kill().unwrap();
    a.wait().unwrap();
    let (sent, distinct) = (total(), unique());
    assert_eq!(
        sent, distinct,
        "no delivery was sent twice while both processes ran"
    );
    assert!(sent < 1000, "killed mid-run ({sent} delivered)");

    // The survivor takes over, including the rows the killed process had claimed (after their
    // one-minute lease).
    wait_for("every delivery", Duration::from_secs(150), || unique() == 1000).await;
    let queue_empty = || {
        use agora::db::schema::deliveries;
        let mut c = db.get().unwrap();
        deliveries::table.count().get_result::<i64>(&mut *c).unwrap() == 0
    };
    wait_for("the queue to drain", Duration::from_secs(10), queue_empty).await;
    b.kill().unwrap();
    b.wait().unwrap();
    let repeats = total() - unique();
    assert!(
        repeats <= delivery::GLOBAL,
        "only what the killed process had in flight may repeat: {repeats}"
    );
    for r in &receivers {
        assert!(r.count() >= 250, "every instance got its share");
    }
}
