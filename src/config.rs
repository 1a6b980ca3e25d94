//! Configuration: built-in defaults, then `config/agora.toml` (or `--config PATH`), then `AGORA_*`
//! environment variables. The result is validated once into typed values and injected into
//! [`crate::state::AppState`]; nothing reads configuration from a global.
//!
//! Every key is listed in [`KEYS`]. That one table drives the file parser (unknown keys are refused),
//! the environment mapping (`instance.name` → `AGORA_INSTANCE_NAME`), `agora print-config` and the
//! tests that keep `config/agora.example.toml` and `docs/configuration.md` in sync with the code.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use url::Url;

/// What a configuration value looks like; decides how file and environment values are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Secret,
    Bool,
    Integer,
    List,
}

/// One known configuration key.
#[derive(Debug)]
pub struct Key {
    pub name: &'static str,
    pub kind: Kind,
    /// The default as written in the example file (`None`: unset by default).
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Key {
    /// `instance.name` → `AGORA_INSTANCE_NAME`.
    pub fn env_name(&self) -> String {
        format!("AGORA_{}", self.name.replace('.', "_").to_ascii_uppercase())
    }
}

/// Every configuration key the code knows, in the order of the example file.
pub const KEYS: &[Key] = &[
    Key {
        name: "public_url",
        kind: Kind::String,
        default: Some("http://localhost:8080"),
        help: "Scheme, host and optional port under which the instance is reached. All ActivityPub ids derive from it, so do not change it after federating.",
    },
    Key {
        name: "listen",
        kind: Kind::String,
        default: Some("127.0.0.1:8080"),
        help: "Socket address the HTTP server binds to.",
    },
    Key {
        name: "data_dir",
        kind: Kind::String,
        default: Some("./data"),
        help: "Directory of the SQLite database (images and keys are stored in the database). Created if missing.",
    },
    Key {
        name: "database_url",
        kind: Kind::Secret,
        default: None,
        help: "A SQLite path (or sqlite://PATH) or a postgres:// / postgresql:// URL. Default: <data_dir>/agora.db.",
    },
    Key {
        name: "registration",
        kind: Kind::String,
        default: Some("closed"),
        help: "Who may create an account: closed (only admins), approval (an admin approves each account) or open.",
    },
    Key {
        name: "instance.name",
        kind: Kind::String,
        default: Some("Agora"),
        help: "Name of the instance, shown on pages and in NodeInfo.",
    },
    Key {
        name: "instance.description",
        kind: Kind::String,
        default: Some(""),
        help: "One or two sentences saying what this instance is for.",
    },
    Key {
        name: "federation.debug",
        kind: Kind::Bool,
        default: None,
        help: "Allow http, explicit ports and loopback/private peers. Default: true when public_url is http on localhost, 127.0.0.0/8 or ::1, else false.",
    },
    Key {
        name: "federation.blocked_domains",
        kind: Kind::List,
        default: Some("[]"),
        help: "Domains we never federate with (their subdomains too). In the environment: comma-separated.",
    },
    Key {
        name: "federation.allowlist_only",
        kind: Kind::Bool,
        default: Some("false"),
        help: "Federate only with allowed domains (federation.allowed_domains and `agora federation allow`).",
    },
    Key {
        name: "federation.allowed_domains",
        kind: Kind::List,
        default: Some("[]"),
        help: "With allowlist_only: the domains we federate with (their subdomains too). In the environment: comma-separated.",
    },
    Key {
        name: "http.trusted_proxies",
        kind: Kind::List,
        default: Some("[]"),
        help: "IP addresses of reverse proxies whose X-Forwarded-For header is trusted for the client address (rate limits). In the environment: comma-separated.",
    },
    Key {
        name: "smtp.host",
        kind: Kind::String,
        default: None,
        help: "SMTP server for outgoing mail. Unset: no e-mail is sent.",
    },
    Key {
        name: "smtp.port",
        kind: Kind::Integer,
        default: Some("587"),
        help: "SMTP port (587 uses STARTTLS, 465 implicit TLS).",
    },
    Key {
        name: "smtp.username",
        kind: Kind::String,
        default: None,
        help: "SMTP user name, if the server requires authentication.",
    },
    Key {
        name: "smtp.password",
        kind: Kind::Secret,
        default: None,
        help: "SMTP password. Masked by `agora print-config`.",
    },
    Key {
        name: "smtp.from",
        kind: Kind::String,
        default: None,
        help: "Sender address of outgoing mail, e.g. \"Agora <agora@example.org>\". Required when smtp.host is set.",
    },
    Key {
        name: "log.format",
        kind: Kind::String,
        default: Some("text"),
        help: "Log format: text (for people) or json (one object per line, for log collectors).",
    },
];

/// Looks a key up by its dotted name.
pub fn key(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}

/// Why the configuration could not be loaded. Each message is a sentence naming the key.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Could not read the configuration file {path}: {source}.")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("The configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),
}

/// Registration mode (`registration`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    Closed,
    Approval,
    Open,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Approval => "approval",
            Self::Open => "open",
        }
    }
}

/// Log output format (`log.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where the data lives; decided by the form of `database_url`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// A path or `sqlite://PATH` is SQLite; `postgres://` or `postgresql://` is PostgreSQL.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("`database_url` is empty; give a SQLite path or a postgres:// URL.".into());
        }
        let lower = raw.to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Url::parse(raw).map_err(|e| format!("`database_url` is not a valid PostgreSQL URL: {e}."))?;
            return Ok(Self::Postgres(raw.to_owned()));
        }
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("`database_url` sqlite:// needs a file path after it.".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return Err(format!(
                "`database_url` uses the unsupported scheme \"{scheme}\"; use a SQLite path or a postgres:// URL."
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(raw)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }

    /// The URL with any password replaced, for logs and `print-config`.
    pub fn masked(&self) -> String {
        match self {
            Self::Sqlite(p) => p.display().to_string(),
            Self::Postgres(raw) => match Url::parse(raw) {
                Ok(mut u) if u.password().is_some() => {
                    // Setting a password only fails for URLs that cannot have one, which a parsed
                    // postgres:// URL with a password can.
                    let _ = u.set_password(Some("********"));
                    u.to_string()
                }
                _ => raw.clone(),
            },
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Clone)]
pub struct Federation {
    pub debug: bool,
    pub blocked_domains: Vec<String>,
    pub allowlist_only: bool,
    pub allowed_domains: Vec<String>,
}

#[derive(Clone)]
pub struct Smtp {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: String,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("from", &self.from)
            .finish()
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub public_url: Url,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: DatabaseUrl,
    pub registration: Registration,
    pub instance: Instance,
    pub federation: Federation,
    pub trusted_proxies: Vec<IpAddr>,
    pub smtp: Option<Smtp>,
    pub log_format: LogFormat,
}

/// Raw values by dotted key, before validation.
pub type RawValues = BTreeMap<String, toml::Value>;

impl Config {
    /// Loads the configuration the way `agora` does at start: the file given with `--config`, else
    /// `config/agora.toml` if it exists, then the process environment.
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        let default_path = Path::new("config/agora.toml");
        let file = match path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        let mut values = match file {
            Some(p) => read_file(p)?,
            None => RawValues::new(),
        };
        // Report environment and validation problems together, one sentence each.
        let env_problems = apply_env(&mut values, std::env::vars()).err();
        match (env_problems, Self::from_values(&values)) {
            (None, result) => result,
            (Some(e), Ok(_)) => Err(e),
            (Some(a), Err(b)) => Err(Error::Many(vec![a, b])),
        }
    }

    /// Validates raw values (file and environment already merged) into a `Config`.
    pub fn from_values(values: &RawValues) -> Result<Self, Error> {
        let mut errors = Vec::new();
        let mut v = Validator {
            values,
            errors: &mut errors,
        };

        let public_url = v.public_url();
        let listen = v.parse_str("listen", "a socket address such as 127.0.0.1:8080", |s| {
            s.parse::<SocketAddr>().ok()
        });
        let data_dir = PathBuf::from(v.string("data_dir").unwrap_or_default());
        let database_url = match v.opt_string("database_url") {
            Some(raw) => match DatabaseUrl::parse(&raw) {
                Ok(u) => Some(u),
                Err(e) => {
                    v.errors.push(Error::Invalid(e));
                    None
                }
            },
            None => Some(DatabaseUrl::Sqlite(data_dir.join("agora.db"))),
        };
        let registration = v.parse_str("registration", "one of closed, approval or open", |s| match s {
            "closed" => Some(Registration::Closed),
            "approval" => Some(Registration::Approval),
            "open" => Some(Registration::Open),
            _ => None,
        });
        let log_format = v.parse_str("log.format", "text or json", |s| match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        });
        let instance_name = v.string("instance.name").unwrap_or_default();
        if instance_name.trim().is_empty() {
            v.errors
                .push(Error::Invalid("`instance.name` must not be empty.".into()));
        }
        let instance = Instance {
            name: instance_name.trim().to_owned(),
            description: v
                .string("instance.description")
                .unwrap_or_default()
                .trim()
                .to_owned(),
        };
        let blocked_domains = v.domains("federation.blocked_domains");
        let allowlist_only = v.bool("federation.allowlist_only").unwrap_or(false);
        let allowed_domains = v.domains("federation.allowed_domains");
        let debug = match v.opt_bool("federation.debug") {
            Some(b) => b,
            None => public_url.as_ref().is_some_and(is_local_http),
        };
        let trusted_proxies = v.ips("http.trusted_proxies");
        let smtp = v.smtp();

        if !errors.is_empty() {
            return Err(if errors.len() == 1 {
                errors.remove(0)
            } else {
                Error::Many(errors)
            });
        }
        // All Options below are Some: a None always pushed an error above.
        match (public_url, listen, database_url, registration, log_format) {
            (Some(public_url), Some(listen), Some(database_url), Some(registration), Some(log_format)) => {
                Ok(Self {
                    public_url,
                    listen,
                    data_dir,
                    database_url,
                    registration,
                    instance,
                    federation: Federation {
                        debug,
                        blocked_domains,
                        allowlist_only,
                        allowed_domains,
                    },
                    trusted_proxies,
                    smtp,
                    log_format,
                })
            }
            _ => Err(Error::Invalid("The configuration is incomplete.".into())),
        }
    }

    /// Host plus port when the public URL has an explicit one: the WebFinger and cookie domain.
    pub fn host(&self) -> String {
        let host = self.public_url.host_str().unwrap_or("localhost");
        match self.public_url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        }
    }

    /// `public_url` without a trailing slash, for building absolute links.
    pub fn base_url(&self) -> String {
        self.public_url.as_str().trim_end_matches('/').to_owned()
    }

    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    /// The effective configuration as TOML-like lines, secrets masked.
    pub fn print(&self) -> String {
        let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
        let list =
            |items: &[String]| format!("[{}]", items.iter().map(|s| q(s)).collect::<Vec<_>>().join(", "));
        let mut out = String::new();
        let mut line = |k: &str, v: String| {
            out.push_str(k);
            out.push_str(" = ");
            out.push_str(&v);
            out.push('\n');
        };
        line("public_url", q(self.public_url.as_str()));
        line("listen", q(&self.listen.to_string()));
        line("data_dir", q(&self.data_dir.display().to_string()));
        line("database_url", q(&self.database_url.masked()));
        line("registration", q(self.registration.as_str()));
        line("instance.name", q(&self.instance.name));
        line("instance.description", q(&self.instance.description));
        line("federation.debug", self.federation.debug.to_string());
        line(
            "federation.blocked_domains",
            list(&self.federation.blocked_domains),
        );
        line(
            "federation.allowlist_only",
            self.federation.allowlist_only.to_string(),
        );
        line(
            "federation.allowed_domains",
            list(&self.federation.allowed_domains),
        );
        let proxies: Vec<String> = self.trusted_proxies.iter().map(ToString::to_string).collect();
        line("http.trusted_proxies", list(&proxies));
        // Unset keys are printed as comments, so the output stays valid TOML.
        match &self.smtp {
            Some(s) => {
                line("smtp.host", q(&s.host));
                line("smtp.port", s.port.to_string());
                match &s.username {
                    Some(u) => line("smtp.username", q(u)),
                    None => out_comment(&mut line, "smtp.username"),
                }
                if s.password.is_some() {
                    line("smtp.password", q("********"));
                } else {
                    out_comment(&mut line, "smtp.password");
                }
                line("smtp.from", q(&s.from));
            }
            None => out_comment(&mut line, "smtp.host"),
        }
        line(
            "log.format",
            q(match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }),
        );
        out
    }
}

/// Writes `# key is unset` through the line printer (which appends " = value").
fn out_comment(line: &mut impl FnMut(&str, String), key: &str) {
    line(&format!("# {key}"), "(unset)".to_owned());
}

/// Whether the URL is plain http on localhost or a loopback address (a development setup).
pub fn is_local_http(u: &Url) -> bool {
    if u.scheme() != "http" {
        return false;
    }
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A domain name in the form we compare: lower case, no trailing dot; `None` if it is not one.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let lower = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let valid = !lower.is_empty()
        && lower.len() <= 253
        && lower.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    valid.then_some(lower)
}

/// Reads a TOML file and flattens it into dotted keys, refusing unknown keys and wrong types.
pub fn read_file(path: &Path) -> Result<RawValues, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text).map_err(|e| match e {
        Error::Syntax { message, .. } => Error::Syntax {
            path: path.to_owned(),
            message,
        },
        other => other,
    })
}

/// Parses TOML text into dotted keys (see [`read_file`]).
pub fn parse_toml(text: &str) -> Result<RawValues, Error> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let message = match line {
            Some(line) => format!("line {line}: {}.", e.message().trim_end_matches('.')),
            None => format!("{}.", e.message().trim_end_matches('.')),
        };
        Error::Syntax {
            path: PathBuf::new(),
            message,
        }
    })?;
    let mut out = RawValues::new();
    let mut errors = Vec::new();
    flatten("", &table, &mut out, &mut errors);
    match errors.len() {
        0 => Ok(out),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Many(errors)),
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut RawValues, errors: &mut Vec<Error>) {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (v, key(&name)) {
            (toml::Value::Table(t), None)
                if KEYS.iter().any(|key| key.name.starts_with(&format!("{name}."))) =>
            {
                flatten(&name, t, out, errors);
            }
            (_, None) => errors.push(Error::Invalid(format!(
                "`{name}` is not a known configuration key; see config/agora.example.toml for the list."
            ))),
            (value, Some(key)) => {
                let ok = match key.kind {
                    Kind::String | Kind::Secret => value.is_str(),
                    Kind::Bool => value.is_bool(),
                    Kind::Integer => value.is_integer(),
                    Kind::List => value
                        .as_array()
                        .is_some_and(|a| a.iter().all(toml::Value::is_str)),
                };
                if ok {
                    out.insert(name, value.clone());
                } else {
                    errors.push(Error::Invalid(format!(
                        "`{name}` must be {}, not {}.",
                        kind_text(key.kind),
                        value.type_str()
                    )));
                }
            }
        }
    }
}

fn kind_text(kind: Kind) -> &'static str {
    match kind {
        Kind::String | Kind::Secret => "a string",
        Kind::Bool => "true or false",
        Kind::Integer => "a whole number",
        Kind::List => "a list of strings",
    }
}

/// Applies `AGORA_*` variables on top of file values. `AGORA_TEST_*` belongs to the test suite and is
/// ignored; any other unknown `AGORA_` variable is refused, because a typo would otherwise be silent.
pub fn apply_env(
    values: &mut RawValues,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), Error> {
    let mut errors = Vec::new();
    for (name, raw) in vars {
        if !name.starts_with("AGORA_") || name.starts_with("AGORA_TEST_") {
            continue;
        }
        let Some(key) = KEYS.iter().find(|k| k.env_name() == name) else {
            errors.push(Error::Invalid(format!(
                "The environment variable {name} is not a known setting; see docs/configuration.md."
            )));
            continue;
        };
        let value = match key.kind {
            Kind::String | Kind::Secret => Some(toml::Value::String(raw.clone())),
            Kind::Bool => parse_bool(&raw).map(toml::Value::Boolean),
            Kind::Integer => raw.trim().parse::<i64>().ok().map(toml::Value::Integer),
            Kind::List => Some(toml::Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| toml::Value::String(s.to_owned()))
                    .collect(),
            )),
        };
        match value {
            Some(v) => {
                values.insert(key.name.to_owned(), v);
            }
            None => errors.push(Error::Invalid(format!(
                "{name} (`{}`) must be {}, not \"{raw}\".",
                key.name,
                match key.kind {
                    Kind::Bool => "true, false, 1 or 0",
                    _ => kind_text(key.kind),
                }
            ))),
        }
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Many(errors)),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

struct Validator<'a> {
    values: &'a RawValues,
    errors: &'a mut Vec<Error>,
}

impl Validator<'_> {
    fn default_of(name: &str) -> Option<&'static str> {
        key(name).and_then(|k| k.default)
    }

    fn opt_string(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.as_str()).map(str::to_owned)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.opt_string(name)
            .or_else(|| Self::default_of(name).map(str::to_owned))
    }

    fn parse_str<T>(&mut self, name: &str, expected: &str, f: impl Fn(&str) -> Option<T>) -> Option<T> {
        let raw = self.string(name).unwrap_or_default();
        let parsed = f(raw.trim());
        if parsed.is_none() {
            self.errors.push(Error::Invalid(format!(
                "`{name}` must be {expected}, not \"{raw}\"."
            )));
        }
        parsed
    }

    fn opt_bool(&self, name: &str) -> Option<bool> {
        self.values.get(name).and_then(toml::Value::as_bool)
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.opt_bool(name)
            .or_else(|| Self::default_of(name).and_then(parse_bool))
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.values
            .get(name)
            .and_then(toml::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str())
                    .map(|s| s.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn domains(&mut self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        for d in self.list(name) {
            if let Some(lower) = normalize_domain(&d) {
                out.push(lower);
            } else {
                self.errors.push(Error::Invalid(format!(
                    "`{name}` contains \"{d}\", which is not a domain name such as example.org."
                )));
            }
        }
        out
    }

    fn ips(&mut self, name: &str) -> Vec<IpAddr> {
        let mut out = Vec::new();
        for s in self.list(name) {
            match s.parse::<IpAddr>() {
                Ok(ip) => out.push(ip),
                Err(_) => self.errors.push(Error::Invalid(format!(
                    "`{name}` contains \"{s}\", which is not an IP address such as 10.0.0.1."
                ))),
            }
        }
        out
    }

    fn public_url(&mut self) -> Option<Url> {
        let raw = self.string("public_url").unwrap_or_default();
        let url = match Url::parse(raw.trim()) {
            Ok(u) => u,
            Err(e) => {
                self.errors.push(Error::Invalid(format!(
                    "`public_url` must be an absolute URL such as https://agora.example.org, not \"{raw}\" ({e})."
                )));
                return None;
            }
        };
        let problem = if !matches!(url.scheme(), "http" | "https") {
            Some("must start with http:// or https://")
        } else if url.host_str().is_none_or(str::is_empty) {
            Some("must name a host")
        } else if url.path() != "/" {
            Some("must not have a path; Agora must be served at the root of its host")
        } else if url.query().is_some() || url.fragment().is_some() {
            Some("must not have a query or fragment")
        } else if !url.username().is_empty() || url.password().is_some() {
            Some("must not contain a user name or password")
        } else {
            None
        };
        if let Some(p) = problem {
            self.errors
                .push(Error::Invalid(format!("`public_url` {p}; got \"{raw}\".")));
            return None;
        }
        Some(url)
    }

    fn smtp(&mut self) -> Option<Smtp> {
        let host = self.opt_string("smtp.host").filter(|h| !h.trim().is_empty())?;
        let port = match self.values.get("smtp.port").and_then(toml::Value::as_integer) {
            Some(p) => match u16::try_from(p) {
                Ok(p) if p > 0 => p,
                _ => {
                    self.errors.push(Error::Invalid(format!(
                        "`smtp.port` must be between 1 and 65535, not {p}."
                    )));
                    return None;
                }
            },
            None => 587,
        };
        let Some(from) = self.opt_string("smtp.from").filter(|f| f.contains('@')) else {
            self.errors.push(Error::Invalid(
                "`smtp.from` must be set to a sender address such as agora@example.org when `smtp.host` is set."
                    .into(),
            ));
            return None;
        };
        Some(Smtp {
            host: host.trim().to_owned(),
            port,
            username: self.opt_string("smtp.username").filter(|s| !s.is_empty()),
            password: self.opt_string("smtp.password").filter(|s| !s.is_empty()),
            from,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let mut values = RawValues::new();
        apply_env(
            &mut values,
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )?;
        Config::from_values(&values)
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let c = Config::from_values(&RawValues::new()).unwrap();
        assert_eq!(c.public_url.as_str(), "http://localhost:8080/");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            c.database_url,
            DatabaseUrl::Sqlite(PathBuf::from("./data/agora.db"))
        );
        assert_eq!(c.registration, Registration::Closed);
        assert_eq!(c.instance.name, "Agora");
        assert!(c.federation.debug, "http on localhost defaults to debug");
        assert!(c.smtp.is_none());
        assert_eq!(c.host(), "localhost:8080");
    }

    #[test]
    fn debug_default_follows_public_url() {
        for (url, debug) in [
            ("https://agora.example.org", false),
            ("http://agora.example.org", false),
            ("http://127.0.0.5:9000", true),
            ("http://[::1]:8080", true),
            ("https://localhost", false),
        ] {
            let c = env(&[("AGORA_PUBLIC_URL", url)]).unwrap();
            assert_eq!(c.federation.debug, debug, "{url}");
        }
        let c = env(&[
            ("AGORA_PUBLIC_URL", "https://a.example"),
            ("AGORA_FEDERATION_DEBUG", "1"),
        ])
        .unwrap();
        assert!(c.federation.debug);
    }

    #[test]
    fn env_overrides_file_and_parses_lists_and_bools() {
        let mut values = parse_toml("registration = \"open\"\n[instance]\nname = \"Stadt\"\n").unwrap();
        apply_env(
            &mut values,
            [
                ("AGORA_INSTANCE_NAME".to_owned(), "Rathaus".to_owned()),
                (
                    "AGORA_FEDERATION_BLOCKED_DOMAINS".to_owned(),
                    "Spam.example, bad.example ,".to_owned(),
                ),
                ("AGORA_FEDERATION_ALLOWLIST_ONLY".to_owned(), "TRUE".to_owned()),
                ("AGORA_TEST_WHATEVER".to_owned(), "ignored".to_owned()),
                ("PATH".to_owned(), "/bin".to_owned()),
            ],
        )
        .unwrap();
        let c = Config::from_values(&values).unwrap();
        assert_eq!(c.instance.name, "Rathaus");
        assert_eq!(c.registration, Registration::Open);
        assert_eq!(c.federation.blocked_domains, vec!["spam.example", "bad.example"]);
        assert!(c.federation.allowlist_only);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_key() {
        let e = parse_toml("listne = \"x\"").unwrap_err().to_string();
        assert!(e.contains("`listne` is not a known configuration key"), "{e}");
        let e = parse_toml("[instance]\nnmae = \"x\"").unwrap_err().to_string();
        assert!(e.contains("`instance.nmae`"), "{e}");
        let e = parse_toml("[federation]\ndebug = \"yes\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`federation.debug` must be true or false"), "{e}");
        let e = parse_toml("instance = 3").unwrap_err().to_string();
        assert!(e.contains("`instance` is not a known"), "{e}");
        let e = env(&[("AGORA_LISTEN_PORT", "1")]).unwrap_err().to_string();
        assert!(e.contains("AGORA_LISTEN_PORT is not a known setting"), "{e}");
        let e = env(&[("AGORA_FEDERATION_DEBUG", "yes")]).unwrap_err().to_string();
        assert!(e.contains("AGORA_FEDERATION_DEBUG"), "{e}");
    }

    #[test]
    fn invalid_values_are_sentences_naming_the_key() {
        let cases = [
            ("AGORA_LISTEN", "localhost", "`listen` must be a socket address"),
            (
                "AGORA_PUBLIC_URL",
                "agora.example.org",
                "`public_url` must be an absolute URL",
            ),
            (
                "AGORA_PUBLIC_URL",
                "ftp://x.example",
                "`public_url` must start with http",
            ),
            (
                "AGORA_PUBLIC_URL",
                "https://x.example/agora",
                "`public_url` must not have a path",
            ),
            (
                "AGORA_REGISTRATION",
                "sometimes",
                "`registration` must be one of closed, approval or open",
            ),
            ("AGORA_LOG_FORMAT", "xml", "`log.format` must be text or json"),
            (
                "AGORA_DATABASE_URL",
                "mysql://db/agora",
                "unsupported scheme \"mysql\"",
            ),
            (
                "AGORA_FEDERATION_BLOCKED_DOMAINS",
                "bad domain",
                "not a domain name",
            ),
            ("AGORA_SMTP_HOST", "mail.example", "`smtp.from` must be set"),
            ("AGORA_INSTANCE_NAME", "  ", "`instance.name` must not be empty"),
        ];
        for (var, value, expected) in cases {
            let e = env(&[(var, value)]).unwrap_err().to_string();
            assert!(e.contains(expected), "{var}={value}: {e}");
            assert!(e.ends_with('.'), "a sentence: {e}");
        }
        let e = env(&[("AGORA_LISTEN", "x"), ("AGORA_REGISTRATION", "y")])
            .unwrap_err()
            .to_string();
        assert_eq!(e.lines().count(), 2, "every problem is reported: {e}");
    }

    #[test]
    fn database_url_forms() {
        assert_eq!(
            DatabaseUrl::parse("agora.db").unwrap(),
            DatabaseUrl::Sqlite("agora.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/agora.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/agora.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite://rel.db").unwrap(),
            DatabaseUrl::Sqlite("rel.db".into())
        );
        let pg = DatabaseUrl::parse("postgresql://agora:secret@db/agora").unwrap();
        assert_eq!(pg.backend_name(), "postgres");
        assert!(!pg.masked().contains("secret"));
        assert!(DatabaseUrl::parse("POSTGRES://db/agora").is_ok());
    }

    #[test]
    fn print_masks_secrets() {
        let c = env(&[
            ("AGORA_DATABASE_URL", "postgres://u:hunter2@db/agora"),
            ("AGORA_SMTP_HOST", "mail.example"),
            ("AGORA_SMTP_FROM", "agora@example.org"),
            ("AGORA_SMTP_PASSWORD", "topsecret"),
        ])
        .unwrap();
        let printed = c.print();
        assert!(
            !printed.contains("hunter2") && !printed.contains("topsecret"),
            "{printed}"
        );
        assert!(printed.contains("smtp.password = \"********\""), "{printed}");
        assert!(printed.contains("# smtp.username = (unset)"), "{printed}");
        assert!(
            parse_toml(&printed).is_ok(),
            "print-config output is valid TOML: {printed}"
        );
        // What print-config prints parses back into the same keys.
        for line in printed.lines().filter(|l| !l.starts_with('#')) {
            let (k, _) = line.split_once(" = ").unwrap();
            assert!(key(k).is_some(), "{k}");
        }
    }
}
