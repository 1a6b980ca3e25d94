//! Browser tests: the flows in tests/browser/flows.mjs, in real headless Chromium, against a real
//! server on SQLite and on PostgreSQL. scripts/test installs Chromium and the npm packages; when
//! they are missing this test prints a SKIP line, and under CI=true it fails.

use std::path::PathBuf;

use agora::accounts::model::Role;

use crate::support::{Backend, TestServer};

crate::backend_tests!(browser_flows);

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

async fn browser_flows(b: Backend) {
    let (tools, chromium) = match tools() {
        Ok(t) => t,
        Err(why) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "browser tests cannot run under CI=true: {why}");
            eprintln!("SKIP: browser tests: {why}; run ./scripts/test to install what they need");
            return;
        }
    };
    let Some(srv) = TestServer::start(b).await else {
        return;
    };
    srv.create_user("browser_admin", "admin password 123", Role::Admin)
        .await;
    let label = match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let url = srv.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(root().join("tests/browser/flows.mjs"))
            .env("AGORA_TEST_BASE_URL", url)
            .env("AGORA_TEST_ADMIN", "browser_admin")
            .env("AGORA_TEST_ADMIN_PASSWORD", "admin password 123")
            .env("AGORA_TEST_TOOLS", tools)
            .env("AGORA_TEST_CHROMIUM", chromium)
            .env("AGORA_TEST_SCREENSHOTS", root().join("target/screenshots"))
            .env("AGORA_TEST_LABEL", label)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser flows failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser flows passed"), "{stdout}\n{stderr}");
}
