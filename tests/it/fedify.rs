//! Federation with an independent implementation: tests/fedify/peer.ts, a Fedify server run by
//! Deno on 127.0.0.1.
//!
//! - follows `alice`, must receive Agora's Accept with a signature that Fedify verifies, and
//!   unfollows again;
//! - follows the group `verkehr`, receives the group's Announces of a new thread, replies the way
//!   Mastodon does (to Public and the thread's author, not the group), and receives the group's
//!   Announce of that reply, which Agora's API then lists in the thread.
//!
//! scripts/test installs Deno and the peer's npm packages; when they are missing these tests
//! print a SKIP line, and under CI=true they fail.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use agora::accounts::model::Role;
use serde_json::{Value, json};

use crate::support::{Backend, TestServer};

crate::backend_tests!(
    fedify_peer_follows_and_unfollows,
    fedify_peer_replies_in_a_group_thread
);

/// The peer stops itself after this long; the test waits a little longer.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

const PW: &str = "password 123 abc";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn peer_dir() -> PathBuf {
    root().join("tests/fedify")
}

/// The Deno binary and its cache folder, or why the peer cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let tools = root().join(".test-tools");
    let deno = std::env::var_os("AGORA_TEST_DENO").map_or_else(
        || {
            let installed = tools.join("bin/deno");
            if installed.exists() {
                installed
            } else {
                PathBuf::from("deno")
            }
        },
        PathBuf::from,
    );
    let deno_dir = std::env::var_os("DENO_DIR").map_or_else(|| tools.join("deno-dir"), PathBuf::from);
    match Command::new(&deno).arg("--version").output() {
        Ok(out) if out.status.success() => {}
        _ => return Err(format!("deno is not installed ({} does not run)", deno.display())),
    }
    if !peer_dir().join("node_modules/@fedify/fedify").exists() {
        return Err(format!(
            "the peer's npm packages are not installed in {}/node_modules",
            peer_dir().display()
        ));
    }
    Ok((deno, deno_dir))
}

/// The tools, or None after a SKIP line (a failure under CI=true).
fn tools_or_skip() -> Option<(PathBuf, PathBuf)> {
    match tools() {
        Ok(t) => Some(t),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "the Fedify test cannot run under CI=true: {why}");
            eprintln!("SKIP: Fedify federation test: {why}; run ./scripts/test to install Deno");
            None
        }
    }
}

/// A running peer.ts: its JSON lines as they come, and a way to answer on its stdin.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    rx: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr: std::thread::JoinHandle<String>,
    deadline: tokio::time::Instant,
    timed_out: bool,
    lines: Vec<Value>,
    raw: String,
}

impl Peer {
    /// Starts the peer against `srv` with extra environment variables.
    fn spawn(srv: &TestServer, (deno, deno_dir): &(PathBuf, PathBuf), env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(deno)
            .current_dir(peer_dir())
            .args([
                "run",
                "--cached-only",
                "--frozen",
                "--allow-net=127.0.0.1",
                "--allow-env",
                "--allow-read",
                "peer.ts",
            ])
            .env("DENO_DIR", deno_dir)
            .env("NO_COLOR", "1")
            .env("AGORA_URL", &srv.url)
            .env("PEER_TIMEOUT_MS", PEER_TIMEOUT.as_millis().to_string())
            // Agora speaks draft-cavage only; RFC 9421 first would cost a 401 and a retry each time.
            .env("PEER_FIRST_KNOCK", "draft-cavage-http-signatures-12")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Self {
            child,
            stdin,
            rx,
            stderr,
            deadline: tokio::time::Instant::now() + PEER_TIMEOUT + Duration::from_secs(15),
            timed_out: false,
            lines: Vec::new(),
            raw: String::new(),
        }
    }

    /// The next JSON line (also kept for [`Peer::finish`]); None when the peer has ended or
    /// the time is up.
    async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                Err(_) => {
                    self.timed_out = true;
                    return None;
                }
                Ok(None) => return None,
                Ok(Some(line)) => {
                    self.raw.push_str(&line);
                    self.raw.push('\n');
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        self.lines.push(v.clone());
                        return Some(v);
                    }
                }
            }
        }
    }

    /// Answers the peer with one line on its stdin.
    fn say(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the end; asserts the peer finished in time with `done`. Returns its JSON lines
    /// and its whole output, for assertion messages.
    async fn finish(mut self) -> (Vec<Value>, String) {
        while self.next().await.is_some() {}
        if self.timed_out {
            let _ = self.child.kill();
        }
        let status = self.child.wait().unwrap();
        let err = self.stderr.join().unwrap_or_default();
        let out = format!("peer stdout:\n{}\npeer stderr:\n{err}", self.raw);
        // Shown by the test runner when asked (--no-capture) or when the test fails.
        eprintln!("{out}");
        assert!(!self.timed_out, "the Fedify peer did not finish in time\n{out}");
        assert!(status.success(), "the Fedify peer failed ({status})\n{out}");
        assert_eq!(
            self.lines.last().map(|l| l["event"].clone()),
            Some(Value::from("done")),
            "{out}"
        );
        (self.lines, out)
    }
}

/// `totalItems` of a local actor's followers collection (`/u/alice`, `/g/verkehr`), as a
/// remote server sees it.
async fn follower_count(srv: &TestServer, actor: &str) -> Value {
    let doc: Value = reqwest::Client::new()
        .get(srv.at(&format!("{actor}/followers")))
        .header("accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    doc["totalItems"].clone()
}

/// The peer's output lines with this `event`.
fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

/// The one line with this `event`.
fn event<'a>(lines: &'a [Value], event: &str, out: &str) -> &'a Value {
    let found = events(lines, event);
    assert_eq!(found.len(), 1, "one {event} line\n{out}");
    found[0]
}

/// A JSON API call with a bearer token; the status and the body (Null when empty).
async fn api(
    srv: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, srv.at(path))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn fedify_peer_follows_and_unfollows(b: Backend) {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", PW, Role::Member).await;

    let mut peer = Peer::spawn(
        &srv,
        &tools,
        &[
            ("PEER_SCENARIO", "follow-user"),
            ("AGORA_USER", "alice"),
            ("PEER_HANDSHAKE", "1"),
        ],
    );
    let mut count_before_undo = Value::Null;
    while let Some(v) = peer.next().await {
        if v["event"] == "waiting-for-undo" {
            // The peer has its Accept: Agora must list it as a follower now.
            count_before_undo = follower_count(&srv, "/u/alice").await;
            peer.say("undo");
        }
    }
    let (lines, out) = peer.finish().await;

    let alice = srv.at("/u/alice");
    let webfinger = events(&lines, "webfinger");
    assert_eq!(webfinger.len(), 1, "{out}");
    assert_eq!(webfinger[0]["self"], alice, "{out}");

    // The Follow reached Agora's inbox, signed draft-cavage on the first knock.
    let follow = events(&lines, "follow-sent");
    assert_eq!(follow.len(), 1, "{out}");
    let follow_id = follow[0]["id"].as_str().unwrap();
    let posts: Vec<&Value> = events(&lines, "http-out")
        .into_iter()
        .filter(|l| l["method"] == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "one POST each for the Follow and the Undo\n{out}");
    for post in &posts {
        assert_eq!(post["url"], srv.at("/inbox"), "{out}");
        assert_eq!(post["signature"], "draft-cavage", "{out}");
        assert_eq!(post["status"], 202, "{out}");
    }

    // Agora's Accept: one delivery, verified by Fedify, for our Follow.
    let accepts = events(&lines, "accept-received");
    assert_eq!(accepts.len(), 1, "{out}");
    let accept = accepts[0];
    assert_eq!(accept["verified"], true, "{out}");
    assert_eq!(accept["actor"], alice, "{out}");
    assert_eq!(
        accept["objectId"], follow_id,
        "the Accept's object is our Follow\n{out}"
    );
    let delivered: Vec<&Value> = events(&lines, "http-in")
        .into_iter()
        .filter(|l| l["method"] == "POST" && l["control"].is_null())
        .collect();
    assert_eq!(
        delivered.len(),
        1,
        "Agora delivered once and only the Accept\n{out}"
    );
    let delivery = delivered[0];
    assert_eq!(delivery["type"], "Accept", "{out}");
    assert_eq!(delivery["status"], 202, "Fedify's inbox took it\n{out}");
    assert_eq!(delivery["signature"], "draft-cavage", "{out}");
    assert_eq!(delivery["algorithm"], "rsa-sha256", "{out}");
    assert_eq!(
        delivery["signedHeaders"], "(request-target) host date digest",
        "{out}"
    );
    assert_eq!(delivery["keyId"], format!("{alice}#main-key"), "{out}");
    assert_eq!(delivery["httpSignatureVerified"], true, "{out}");
    assert_eq!(delivery["verifiedKeyId"], format!("{alice}#main-key"), "{out}");
    assert_eq!(delivery["ldSignature"], false, "{out}");
    assert_eq!(delivery["integrityProof"], false, "{out}");
    assert!(
        events(&lines, "http-in")
            .iter()
            .all(|l| l["status"] != 401 || !l["control"].is_null()),
        "Fedify refused a request of Agora's\n{out}"
    );

    // The same inbox refuses Agora's Accept when the body is changed or the signature removed:
    // the verification above is real.
    let controls: Vec<(Value, Value)> = events(&lines, "control")
        .iter()
        .map(|l| (l["case"].clone(), l["status"].clone()))
        .collect();
    assert_eq!(
        controls,
        [
            (Value::from("tampered"), Value::from(401)),
            (Value::from("unsigned"), Value::from(401))
        ],
        "{out}"
    );
    let unverified: Vec<(Value, Value)> = events(&lines, "activity-unverified")
        .iter()
        .map(|l| (l["control"].clone(), l["reason"].clone()))
        .collect();
    assert_eq!(
        unverified,
        [
            (Value::from("tampered"), Value::from("invalidSignature")),
            (Value::from("unsigned"), Value::from("noSignature"))
        ],
        "only the controls fail verification\n{out}"
    );

    // Followed after the Accept, not any more after the Undo.
    assert_eq!(count_before_undo, 1, "{out}");
    let counts: Vec<Value> = events(&lines, "followers")
        .iter()
        .map(|l| l["totalItems"].clone())
        .collect();
    assert_eq!(counts, [Value::from(1), Value::from(0)], "{out}");
    assert_eq!(
        follower_count(&srv, "/u/alice").await,
        0,
        "the Undo reached Agora"
    );
}

/// The ActivityStreams public collection.
const PUBLIC: &str = "https://www.w3.org/ns/activitystreams#Public";

async fn fedify_peer_replies_in_a_group_thread(b: Backend) {
    use reqwest::Method as M;
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("admin_anna", PW, Role::Admin).await;
    srv.create_user("mia", PW, Role::Member).await;
    let admin = srv.token("admin_anna", PW).await;
    let mia = srv.token("mia", PW).await;
    let (status, created) = api(
        &srv,
        M::POST,
        "/api/v1/groups",
        &admin,
        Some(json!({"slug": "verkehr", "title": "Verkehr"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let (status, joined) = api(&srv, M::POST, "/api/v1/groups/verkehr/join", &mia, None).await;
    assert_eq!(
        (status, joined["state"].as_str()),
        (200, Some("member")),
        "{joined}"
    );

    let title = "Tempo 30 am Markt";
    let mut peer = Peer::spawn(
        &srv,
        &tools,
        &[("PEER_SCENARIO", "group-reply"), ("AGORA_GROUP", "verkehr")],
    );
    let mut thread = (0, Value::Null);
    let mut followers_before_thread = Value::Null;
    while let Some(v) = peer.next().await {
        if v["event"] == "waiting-for-thread" {
            // The peer has the group's Accept: Agora lists it as a follower, so a new thread
            // goes to it.
            followers_before_thread = follower_count(&srv, "/g/verkehr").await;
            thread = api(
                &srv,
                M::POST,
                "/api/v1/groups/verkehr/threads",
                &mia,
                Some(json!({"title": title, "body": "Was meint ihr?"})),
            )
            .await;
            let t = &thread.1;
            peer.say(&json!({"id": t["id"], "url": t["url"], "ap_id": t["ap_id"]}).to_string());
        }
    }
    let (lines, out) = peer.finish().await;
    let (status, thread) = thread;
    assert_eq!(status, 201, "{thread}\n{out}");

    let group = srv.at("/g/verkehr");
    let group_key = format!("{group}#main-key");
    let mia_url = srv.at("/u/mia");
    let tid = thread["id"].as_i64().unwrap();
    let note_id = srv.at(&format!("/g/verkehr/t/{tid}"));
    assert_eq!(thread["ap_id"], note_id, "{thread}");
    let listening = event(&lines, "listening", &out);
    let peer_actor = listening["actor"].as_str().unwrap();
    let peer_host = listening["origin"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://");

    // WebFinger finds the group, and its actor document is a Group with the shared inbox.
    assert_eq!(event(&lines, "webfinger", &out)["self"], group, "{out}");
    let actor = event(&lines, "agora-actor", &out);
    assert_eq!(actor["type"], "Group", "{out}");
    assert_eq!(actor["inbox"], srv.at("/inbox"), "{out}");
    assert_eq!(actor["publicKey"], group_key, "{out}");
    assert_eq!(actor["followers"], format!("{group}/followers"), "{out}");

    // The Follow and the group's Accept.
    let follow_id = event(&lines, "follow-sent", &out)["id"].as_str().unwrap();
    let accept = event(&lines, "accept-received", &out);
    assert_eq!(accept["actor"], group, "{out}");
    assert_eq!(accept["objectId"], follow_id, "{out}");
    assert_eq!(followers_before_thread, 1, "{out}");

    // Everything Agora delivered came from the group, signed with its key, and Fedify verified
    // it: the Accept, the two Announces of the new thread and the Announce of the reply.
    let delivered: Vec<&Value> = events(&lines, "http-in")
        .into_iter()
        .filter(|l| l["method"] == "POST")
        .collect();
    let mut types: Vec<&str> = delivered
        .iter()
        .map(|l| l["type"].as_str().unwrap_or("?"))
        .collect();
    types.sort_unstable();
    assert_eq!(types, ["Accept", "Announce", "Announce", "Announce"], "{out}");
    for d in &delivered {
        assert_eq!(d["path"], "/inbox", "to the shared inbox\n{out}");
        assert_eq!(d["status"], 202, "Fedify's inbox took it\n{out}");
        assert_eq!(d["actor"], group, "{out}");
        assert_eq!(d["signature"], "draft-cavage", "{out}");
        assert_eq!(d["algorithm"], "rsa-sha256", "{out}");
        assert_eq!(d["keyId"], group_key, "{out}");
        assert_eq!(d["httpSignatureVerified"], true, "{out}");
        assert_eq!(d["verifiedKeyId"], group_key, "{out}");
    }
    assert!(events(&lines, "activity-unverified").is_empty(), "{out}");
    assert!(events(&lines, "inbox-error").is_empty(), "{out}");
    assert!(
        events(&lines, "http-in").iter().all(|l| l["status"] != 401),
        "Fedify refused a request of Agora's\n{out}"
    );

    // The thread: announced once as the author's Create{Note} (FEP-1b12) and once as the bare
    // Note (Mastodon), both embedded, and Fedify reads them without fetching anything.
    let announces = events(&lines, "announce-received");
    assert_eq!(announces.len(), 3, "{out}");
    for a in &announces {
        assert_eq!(a["actor"], group, "{out}");
        assert!(a["error"].is_null(), "{out}");
    }
    let of_type = |t: &str| -> Vec<&Value> {
        announces
            .iter()
            .copied()
            .filter(|a| a["object"]["type"] == t)
            .collect()
    };
    let of_create: Vec<&Value> = of_type("Create")
        .into_iter()
        .filter(|a| a["inner"]["id"] == note_id)
        .collect();
    assert_eq!(of_create.len(), 1, "{out}");
    let create = &of_create[0]["object"];
    assert_eq!(create["id"], format!("{note_id}/activity"), "{out}");
    assert_eq!(create["actor"], mia_url, "{out}");
    let of_note = of_type("Note");
    assert_eq!(of_note.len(), 1, "{out}");
    for note in [&of_create[0]["inner"], &of_note[0]["object"]] {
        assert_eq!(note["id"], note_id, "{out}");
        assert_eq!(note["name"], title, "{out}");
        assert_eq!(note["attributedTo"], mia_url, "{out}");
        assert_eq!(note["audience"], group, "{out}");
        assert_eq!(note["context"], format!("{note_id}/context"), "{out}");
        assert_eq!(note["inReplyTo"], Value::Null, "{out}");
        assert_eq!(note["to"], json!([PUBLIC]), "{out}");
    }
    let embedded = |object_type: &str, object_id: &str| {
        delivered
            .iter()
            .filter(|d| d["objectType"] == object_type && d["objectId"] == object_id)
            .count()
    };
    assert_eq!(embedded("Create", &format!("{note_id}/activity")), 1, "{out}");
    assert_eq!(embedded("Note", &note_id), 1, "{out}");
    let author = event(&lines, "thread-author", &out);
    assert_eq!(author["id"], mia_url, "{out}");
    assert_eq!(author["sharedInbox"], srv.at("/inbox"), "{out}");

    // The reply went to mia's (shared) inbox, signed draft-cavage on the first knock, and was
    // taken.
    let sent = event(&lines, "reply-sent", &out);
    let reply_id = sent["id"].as_str().unwrap();
    let reply_note = sent["noteId"].as_str().unwrap();
    let creates: Vec<&Value> = events(&lines, "http-out")
        .into_iter()
        .filter(|l| l["method"] == "POST" && l["type"] == "Create")
        .collect();
    assert_eq!(creates.len(), 1, "one POST, no retry\n{out}");
    assert_eq!(creates[0]["url"], srv.at("/inbox"), "{out}");
    assert_eq!(creates[0]["signature"], "draft-cavage", "{out}");
    assert_eq!(creates[0]["status"], 202, "{out}");

    // The group announced the reply: its Create, embedded as the peer sent it.
    let announced = event(&lines, "reply-announced", &out);
    assert_eq!(announced["object"]["type"], "Create", "{out}");
    assert_eq!(announced["object"]["id"], reply_id, "{out}");
    assert_eq!(announced["object"]["actor"], peer_actor, "{out}");
    let inner = &announced["inner"];
    assert_eq!(inner["id"], reply_note, "{out}");
    assert_eq!(inner["inReplyTo"], note_id, "{out}");
    assert_eq!(inner["to"], json!([PUBLIC]), "{out}");
    assert_eq!(inner["cc"], json!([mia_url]), "not addressed to the group\n{out}");
    let of_reply: Vec<&Value> = delivered
        .iter()
        .copied()
        .filter(|d| d["objectId"] == reply_id)
        .collect();
    assert_eq!(of_reply.len(), 1, "{out}");
    assert_eq!(of_reply[0]["objectType"], "Create", "{out}");
    assert_eq!(of_reply[0]["innerType"], "Note", "{out}");
    assert_eq!(of_reply[0]["innerId"], reply_note, "{out}");

    // Agora lists the reply in the thread, by the peer.
    let (status, full) = api(&srv, M::GET, &format!("/api/v1/threads/{tid}"), &mia, None).await;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["reply_count"], 1, "{full}");
    let posts = full["posts"].as_array().unwrap();
    assert_eq!(posts.len(), 2, "{full}");
    let reply = &posts[1];
    assert_eq!(reply["ap_id"], reply_note, "{full}");
    assert_eq!(reply["in_reply_to"], posts[0]["id"], "{full}");
    assert_eq!(reply["author"]["handle"], format!("@peer@{peer_host}"), "{full}");
    assert_eq!(reply["author"]["url"], peer_actor, "{full}");
    assert!(
        reply["content_html"]
            .as_str()
            .is_some_and(|c| c.contains("Grüße von Fedify!")),
        "{full}"
    );

    let ms = |e: &str| event(&lines, e, &out)["ms"].as_i64().unwrap();
    eprintln!(
        "timing: thread announced {} ms after it was created, reply announced {} ms after it was sent",
        ms("thread-announced") - ms("thread"),
        ms("reply-announced") - ms("reply-sent")
    );
}
