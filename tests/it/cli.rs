//! The `agora` binary as an admin uses it: exit codes, quiet scriptable output, sentences on error.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};

use crate::support::{Backend, TestDb};

fn agora(dir: &std::path::Path, db: Option<&TestDb>, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agora"));
    cmd.env_clear()
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(db) = db {
        cmd.env("AGORA_DATABASE_URL", db.url_string());
    }
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn user_commands(backend: Backend) {
    let Some(db) = TestDb::new(backend) else { return };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let out = agora(
        d,
        Some(&db),
        &[
            "user",
            "create",
            "Admin_Anna",
            "--email",
            "anna@example.org",
            "--role",
            "admin",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let otp = text(&out.stdout);
    assert_eq!(
        otp.trim().chars().count(),
        16,
        "prints only the one-time password: {otp:?}"
    );
    assert!(out.stderr.is_empty(), "quiet on success: {}", text(&out.stderr));

    let out = agora(
        d,
        Some(&db),
        &["user", "create", "ADMIN_ANNA", "--email", "x@example.org"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "agora: The name \"admin_anna\" is already taken; choose another one."
    );

    let out = agora(
        d,
        Some(&db),
        &["user", "create", "inbox", "--email", "x@example.org"],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("reserved"));

    let out = agora(
        d,
        Some(&db),
        &[
            "user",
            "create",
            "bert",
            "--email",
            "bert@example.org",
            "--password-stdin",
        ],
        Some("a long enough password\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "nothing to print when the password was given"
    );

    let out = agora(
        d,
        Some(&db),
        &[
            "user",
            "create",
            "carl",
            "--email",
            "c@example.org",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("at least 10 characters"));

    let out = agora(d, Some(&db), &["user", "set-role", "bert", "staff"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = agora(d, Some(&db), &["user", "list"], None);
    let list = text(&out.stdout);
    let lines: Vec<Vec<&str>> = list.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert_eq!(
        &lines[0][..4],
        ["admin_anna", "admin", "active", "anna@example.org"]
    );
    assert_eq!(&lines[1][..3], ["bert", "staff", "active"]);

    let out = agora(d, Some(&db), &["token", "create", "bert"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim().starts_with("agora_"));

    let out = agora(d, Some(&db), &["user", "reset-password", "bert"], None);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).trim().chars().count(), 16);

    let out = agora(d, Some(&db), &["user", "disable", "bert"], None);
    assert!(out.status.success());
    let out = agora(d, Some(&db), &["token", "create", "bert"], None);
    assert!(!out.status.success(), "no tokens for disabled accounts");
    let out = agora(d, Some(&db), &["user", "approve", "bert"], None);
    assert!(out.status.success());

    let out = agora(d, Some(&db), &["user", "disable", "admin_anna"], None);
    assert!(!out.status.success(), "the last admin stays");
    let out = agora(d, Some(&db), &["user", "set-role", "nobody", "admin"], None);
    assert_eq!(
        text(&out.stderr).trim(),
        "agora: There is no user named \"nobody\"."
    );
}

#[test]
fn user_commands_sqlite() {
    user_commands(Backend::Sqlite);
}

#[test]
fn user_commands_postgres() {
    user_commands(Backend::Postgres);
}

#[test]
fn user_commands_refuse_a_missing_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(dir.path())
        .env("AGORA_DATABASE_URL", "typo/agora.db")
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("There is no database at typo/agora.db"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("typo").exists(), "nothing was created");
}

#[test]
fn federation_block_commands() {
    let db = TestDb::new(Backend::Sqlite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agora"));
        cmd.env_clear()
            .current_dir(dir.path())
            .env("AGORA_DATABASE_URL", db.url_string())
            .env("AGORA_FEDERATION_BLOCKED_DOMAINS", "configured.example")
            .env("AGORA_FEDERATION_ALLOWLIST_ONLY", "true")
            .env("AGORA_FEDERATION_ALLOWED_DOMAINS", "partner.example")
            .args(args);
        cmd.output().unwrap()
    };
    assert!(run(&["federation", "block", "Spam.Example."]).status.success());
    assert!(
        run(&["federation", "block", "spam.example"]).status.success(),
        "blocking twice is fine"
    );
    let listed = text(&run(&["federation", "blocked"]).stdout);
    assert_eq!(listed, "configured.example\tconfig\nspam.example\tcli\n");
    let bad = run(&["federation", "block", "not a domain"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("is not a domain name"));
    let cfg = run(&["federation", "unblock", "configured.example"]);
    assert!(!cfg.status.success() && text(&cfg.stderr).contains("federation.blocked_domains"));
    assert!(run(&["federation", "unblock", "spam.example"]).status.success());
    assert!(
        !run(&["federation", "unblock", "spam.example"]).status.success(),
        "no longer blocked"
    );
    assert!(
        run(&["federation", "allow", "Stadtwerke.Example"])
            .status
            .success()
    );
    assert_eq!(
        text(&run(&["federation", "allowed"]).stdout),
        "# allowlist mode is on\npartner.example\tconfig\nstadtwerke.example\tcli\n"
    );
    let cfg = run(&["federation", "disallow", "partner.example"]);
    assert!(!cfg.status.success() && text(&cfg.stderr).contains("federation.allowed_domains"));
    assert!(
        run(&["federation", "disallow", "stadtwerke.example"])
            .status
            .success()
    );
    let gone = run(&["federation", "disallow", "stadtwerke.example"]);
    assert!(!gone.status.success() && text(&gone.stderr).contains("not on the allowlist"));
    let queue = run(&["federation", "queue"]);
    assert!(queue.status.success());
    assert_eq!(
        String::from_utf8_lossy(&queue.stdout).trim(),
        "The delivery queue is empty."
    );
}

#[test]
fn migrate_is_quiet_and_idempotent() {
    let db = TestDb::empty(Backend::Sqlite).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = agora(dir.path(), Some(&db), &["migrate"], None);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(
        !text(&first.stdout).trim().is_empty(),
        "prints the versions it applied"
    );
    let second = agora(dir.path(), Some(&db), &["migrate"], None);
    assert!(second.status.success());
    assert!(second.stdout.is_empty());
}

#[test]
fn help_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["print-config", "--help"],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["user", "list", "--help"],
        &["user", "set-role", "--help"],
        &["user", "disable", "--help"],
        &["user", "approve", "--help"],
        &["user", "reset-password", "--help"],
        &["token", "--help"],
        &["token", "create", "--help"],
        &["federation", "--help"],
        &["federation", "block", "--help"],
        &["federation", "unblock", "--help"],
        &["federation", "blocked", "--help"],
        &["federation", "queue", "--help"],
    ] {
        let out = agora(dir.path(), None, args, None);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn bad_configuration_is_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "listen = \"127.0.0.1:1\"\nlisten_port = 3\n",
    )
    .unwrap();
    let out = agora(dir.path(), None, &["--config", "bad.toml", "print-config"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`listen_port` is not a known configuration key"),
        "{}",
        text(&out.stderr)
    );

    std::fs::write(dir.path().join("type.toml"), "[federation]\ndebug = \"often\"\n").unwrap();
    let out = agora(dir.path(), None, &["--config", "type.toml", "serve"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`federation.debug` must be true or false"));

    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(dir.path())
        .env("AGORA_LISTEN", "everywhere")
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`listen` must be a socket address"));

    let out = agora(dir.path(), None, &["--config", "missing.toml", "serve"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Could not read the configuration file missing.toml"));
}

#[test]
fn unreachable_database_exits_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(dir.path())
        .env("AGORA_DATABASE_URL", "postgres://postgres@127.0.0.1:1/agora")
        .args(["user", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("agora: The database at postgres://postgres@127.0.0.1:1/agora cannot be opened"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn print_config_masks_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(dir.path())
        .env("AGORA_DATABASE_URL", "postgres://agora:s3cret@db/agora")
        .env("AGORA_SMTP_HOST", "mail.example.org")
        .env("AGORA_SMTP_FROM", "agora@example.org")
        .env("AGORA_SMTP_PASSWORD", "mailpass")
        .env("AGORA_TEST_IGNORED", "x")
        .arg("print-config")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(
        !printed.contains("s3cret") && !printed.contains("mailpass"),
        "{printed}"
    );
    assert!(printed.contains("smtp.host = \"mail.example.org\""));
    assert!(printed.contains("registration = \"closed\""));
}

/// `agora serve` on a fresh data directory: migrates, says how to create the admin, serves, and
/// stops cleanly on SIGTERM.
#[test]
fn serve_logs_the_admin_hint_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_agora"))
        .env_clear()
        .current_dir(dir.path())
        .env("AGORA_LISTEN", "127.0.0.1:0")
        .arg("serve")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = Vec::new();
    let mut hint = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        hint |= line.contains("No admin account exists yet. Create one with: ")
            && line.contains("agora user create NAME --email");
        let running = line.contains("Agora is running");
        seen.push(line);
        if running {
            break;
        }
    }
    assert!(hint, "{seen:#?}");
    assert!(
        dir.path().join("data/agora.db").exists(),
        "default SQLite file in ./data"
    );
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful exit on SIGTERM: {status:?}");
}
