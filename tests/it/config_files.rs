//! Files that document configuration must match the keys the code knows.

use std::collections::BTreeSet;
use std::path::Path;

use agora::config::{self, KEYS};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn known() -> BTreeSet<String> {
    KEYS.iter().map(|k| k.name.to_owned()).collect()
}

/// Keys in the example file, whether set or commented out (`# key = …`), with their section.
fn example_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let l = line.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_owned();
            continue;
        }
        let l = l.strip_prefix("# ").unwrap_or(l);
        if let Some((k, _)) = l.split_once(" = ")
            && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        {
            keys.insert(if section.is_empty() {
                k.to_owned()
            } else {
                format!("{section}.{k}")
            });
        }
    }
    keys
}

#[test]
fn example_file_lists_exactly_the_known_keys() {
    let text = std::fs::read_to_string(root().join("config/agora.example.toml")).unwrap();
    assert_eq!(example_keys(&text), known());
    // As committed (defaults set, optional keys commented out) it is a valid configuration.
    let values = config::parse_toml(&text).unwrap();
    let c = config::Config::from_values(&values).unwrap();
    assert_eq!(c.public_url.as_str(), "http://localhost:8080/");
    // Every default written in the example equals the code's default.
    for key in KEYS {
        if let (Some(default), Some(v)) = (key.default, values.get(key.name)) {
            let shown = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(shown, default, "default of {} in the example file", key.name);
        }
    }
}

#[test]
fn configuration_doc_covers_every_key_and_env_var() {
    let doc = std::fs::read_to_string(root().join("docs/configuration.md")).unwrap();
    for key in KEYS {
        assert!(
            doc.contains(&format!("`{}`", key.name)),
            "docs/configuration.md lacks `{}`",
            key.name
        );
        assert!(
            doc.contains(&format!("`{}`", key.env_name())),
            "docs/configuration.md lacks {}",
            key.env_name()
        );
    }
    let envs: BTreeSet<String> = KEYS.iter().map(config::Key::env_name).collect();
    for word in doc.split(|c: char| !(c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())) {
        if word.len() > 6 && word.starts_with("AGORA_") && !word.starts_with("AGORA_TEST_") {
            assert!(
                envs.contains(word),
                "docs/configuration.md names unknown variable {word}"
            );
        }
    }
}

#[test]
fn compose_file_parses_and_uses_only_known_variables() {
    let text = std::fs::read_to_string(root().join("docker/compose.yml")).unwrap();
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let services = doc["services"].as_mapping().expect("services");
    assert!(services.contains_key("agora") && services.contains_key("postgres"));
    assert!(
        doc["services"]["postgres"]["healthcheck"].is_mapping(),
        "postgres has a healthcheck"
    );
    let envs: BTreeSet<String> = KEYS.iter().map(config::Key::env_name).collect();
    let env = doc["services"]["agora"]["environment"]
        .as_mapping()
        .expect("agora environment");
    assert!(!env.is_empty());
    for (k, _) in env {
        let k = k.as_str().unwrap();
        assert!(envs.contains(k), "compose uses unknown variable {k}");
    }
    assert!(env.contains_key("AGORA_DATABASE_URL"));
    let dockerfile = std::fs::read_to_string(root().join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER agora"), "runs as a non-root user");
    for line in dockerfile.lines().filter(|l| l.contains("AGORA_")) {
        for word in line.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
            if word.starts_with("AGORA_") {
                assert!(envs.contains(word), "Dockerfile uses unknown variable {word}");
            }
        }
    }
}
