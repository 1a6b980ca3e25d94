//! Federation with an independent implementation: tests/fedify/peer.ts, a Fedify server run by
//! Deno on 127.0.0.1, follows `alice`, must receive Agora's Accept with a signature that Fedify
//! verifies, and unfollows again. scripts/test installs Deno and the peer's npm packages; when
//! they are missing this test prints a SKIP line, and under CI=true it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use agora::accounts::model::Role;
use serde_json::Value;

use crate::support::{Backend, TestServer};

crate::backend_tests!(fedify_peer_follows_and_unfollows);

/// The peer stops itself after this long; the test waits a little longer.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);

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

/// `totalItems` of a user's followers collection, as a remote server sees it.
async fn follower_count(srv: &TestServer, user: &str) -> Value {
    let doc: Value = reqwest::Client::new()
        .get(srv.at(&format!("/u/{user}/followers")))
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

async fn fedify_peer_follows_and_unfollows(b: Backend) {
    let (deno, deno_dir) = match tools() {
        Ok(t) => t,
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "the Fedify test cannot run under CI=true: {why}");
            eprintln!("SKIP: Fedify federation test: {why}; run ./scripts/test to install Deno");
            return;
        }
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("alice", "password 123 abc", Role::Member).await;

    let mut child = Command::new(&deno)
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
        .env("DENO_DIR", &deno_dir)
        .env("NO_COLOR", "1")
        .env("AGORA_URL", &srv.url)
        .env("AGORA_USER", "alice")
        .env("PEER_TIMEOUT_MS", PEER_TIMEOUT.as_millis().to_string())
        .env("PEER_HANDSHAKE", "1")
        // Agora speaks draft-cavage only; RFC 9421 first would cost a 401 and a retry each time.
        .env("PEER_FIRST_KNOCK", "draft-cavage-http-signatures-12")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    let mut lines: Vec<Value> = Vec::new();
    let mut raw = String::new();
    let mut count_before_undo = Value::Null;
    let deadline = tokio::time::Instant::now() + PEER_TIMEOUT + Duration::from_secs(15);
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => {
                timed_out = true;
                break;
            }
            Ok(None) => break,
            Ok(Some(line)) => {
                raw.push_str(&line);
                raw.push('\n');
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if v["event"] == "waiting-for-undo" {
                    // The peer has its Accept: Agora must list it as a follower now.
                    count_before_undo = follower_count(&srv, "alice").await;
                    stdin.write_all(b"undo\n").unwrap();
                    stdin.flush().unwrap();
                }
                lines.push(v);
            }
        }
    }
    if timed_out {
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let err = stderr_reader.join().unwrap_or_default();
    let out = format!("peer stdout:\n{raw}\npeer stderr:\n{err}");
    // Shown by the test runner when asked (--no-capture) or when the test fails.
    eprintln!("{out}");
    assert!(!timed_out, "the Fedify peer did not finish in time\n{out}");
    assert!(status.success(), "the Fedify peer failed ({status})\n{out}");
    assert_eq!(
        lines.last().map(|l| l["event"].clone()),
        Some(Value::from("done")),
        "{out}"
    );

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
    assert_eq!(follower_count(&srv, "alice").await, 0, "the Undo reached Agora");
}
