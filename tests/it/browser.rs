//! Browser tests: the flows in tests/browser/*.mjs, in real headless Chromium, against a real
//! server on SQLite and on PostgreSQL. scripts/test installs Chromium and the npm packages; when
//! they are missing this test prints a SKIP line, and under CI=true it fails.

use std::path::PathBuf;

use agora::accounts::model::Role;

use crate::support::{Backend, TestServer};

crate::backend_tests!(browser_flows, browser_group_flows);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What the flows need, or why they cannot run.
fn tools() -> Result<(PathBuf, PathBuf), String> {
    let tools =
        std::env::var_os("AGORA_TEST_TOOLS").map_or_else(|| root().join(".test-tools"), PathBuf::from);
    let chromium = std::env::var_os("AGORA_TEST_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.exists() {
        return Err(format!("Chromium is not installed at {}", chromium.display()));
    }
    for module in ["playwright-core", "axe-core"] {
        if !tools.join("node_modules").join(module).exists() {
            return Err(format!(
                "the npm package {module} is not installed in {}",
                tools.display()
            ));
        }
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Err("node is not installed".into());
    }
    Ok((tools, chromium))
}

/// The tools, or None when they are missing (then the test is skipped, or fails under CI).
fn tools_or_skip() -> Option<(PathBuf, PathBuf)> {
    match tools() {
        Ok(t) => Some(t),
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "browser tests cannot run under CI=true: {why}");
            eprintln!("SKIP: browser tests: {why}; run ./scripts/test to install what they need");
            None
        }
    }
}

/// Runs `script` (in tests/browser) with node against `srv`; `accounts` are extra environment
/// variables (user names and passwords). Fails with the script's output unless it exits 0 and
/// prints `passed`.
async fn run_script(
    b: Backend,
    srv: &TestServer,
    (tools, chromium): (PathBuf, PathBuf),
    script: &str,
    accounts: &[(&str, &str)],
    passed: &str,
) {
    let label = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let mut command = std::process::Command::new("node");
    command
        .arg(root().join("tests/browser").join(script))
        .env("AGORA_TEST_BASE_URL", &srv.url)
        .env("AGORA_TEST_TOOLS", tools)
        .env("AGORA_TEST_CHROMIUM", chromium)
        .env("AGORA_TEST_SCREENSHOTS", root().join("target/screenshots"))
        .env("AGORA_TEST_LABEL", label);
    for (k, v) in accounts {
        command.env(k, v);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains(passed), "{stdout}\n{stderr}");
}

/// The shell: login, admin, one-time passwords, languages, tokens, keyboard, error pages.
async fn browser_flows(b: Backend) {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("browser_admin", "admin password 123", Role::Admin)
        .await;
    let accounts = [
        ("AGORA_TEST_ADMIN", "browser_admin"),
        ("AGORA_TEST_ADMIN_PASSWORD", "admin password 123"),
    ];
    run_script(b, &srv, tools, "flows.mjs", &accounts, "browser flows passed").await;
}

/// Groups and threads: a group with a sub-group, a core-team member, a thread with a reply, an
/// edit and a lock; the two members exist beforehand, everything else happens in the UI.
async fn browser_group_flows(b: Backend) {
    let Some(tools) = tools_or_skip() else {
        return;
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("browser_admin", "admin password 123", Role::Admin)
        .await;
    srv.create_user("anna_kern", "anna password 123", Role::Member)
        .await;
    srv.create_user("ben_beitritt", "ben password 123", Role::Member)
        .await;
    let accounts = [
        ("AGORA_TEST_ADMIN", "browser_admin"),
        ("AGORA_TEST_ADMIN_PASSWORD", "admin password 123"),
        ("AGORA_TEST_MEMBER_A", "anna_kern"),
        ("AGORA_TEST_MEMBER_A_PASSWORD", "anna password 123"),
        ("AGORA_TEST_MEMBER_B", "ben_beitritt"),
        ("AGORA_TEST_MEMBER_B_PASSWORD", "ben password 123"),
    ];
    run_script(b, &srv, tools, "groups.mjs", &accounts, "group flows passed").await;
}
