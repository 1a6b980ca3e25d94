//! Command line: `agora serve | migrate | print-config | user … | token … | group … | federation …`.
//! Errors are one sentence on stderr and a non-zero exit; success output is only what a script
//! needs (a password, a token, a table), so commands compose in shell scripts.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::accounts::model::{Role, Status, User};
use crate::accounts::{password, rules};
use crate::config::{Config, LogFormat};
use crate::db::{Db, DbConn};

#[derive(Debug, Parser)]
#[command(
    name = "agora",
    version,
    about = "Agora: federated participation and project platform"
)]
pub struct Cli {
    /// Configuration file (default: config/agora.toml when it exists). AGORA_* variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit; prints the versions applied.
    Migrate,
    /// Print the effective configuration, secrets masked.
    PrintConfig,
    /// Manage local user accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage project groups and their members.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Federation: domain blocks and the delivery queue.
    #[command(subcommand)]
    Federation(FederationCommand),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VisibilityArg {
    Public,
    Internal,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum JoinArg {
    Open,
    Request,
    Invite,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Create a group; prints its address. Defaults: public, open, followers accepted, remote threads allowed.
    Create {
        /// Short name: 3–30 characters a–z, 0–9 and _ (shared with user names; fixed forever).
        slug: String,
        #[arg(long)]
        title: String,
        /// The group this one is part of.
        #[arg(long)]
        parent: Option<String>,
        #[arg(long, value_enum, default_value = "public")]
        visibility: VisibilityArg,
        #[arg(long = "join", value_enum, default_value = "open")]
        join: JoinArg,
        /// Description (Markdown).
        #[arg(long, default_value = "")]
        summary: String,
    },
    /// Give a user a role in a group (lead, assistant, core_team, extended_team,
    /// steering_committee, contract_management, partner, member, moderator).
    AddMember {
        slug: String,
        user: String,
        role: String,
    },
    /// List groups: slug, visibility, join mode, members, parent, title (tab-separated).
    List,
}

#[derive(Debug, Subcommand)]
enum FederationCommand {
    /// Block a domain (and its subdomains): nothing is accepted from, fetched from or sent to it.
    Block { domain: String },
    /// Lift a block made with `agora federation block`.
    Unblock { domain: String },
    /// List blocked domains: one per line, with "config" or "cli" as the source.
    Blocked,
    /// Allow a domain (and its subdomains) for `federation.allowlist_only`.
    Allow { domain: String },
    /// Remove a domain allowed with `agora federation allow`.
    Disallow { domain: String },
    /// List allowed domains, with "config" or "cli" as the source, and whether allowlist mode is on.
    Allowed,
    /// Deliveries per receiving instance: instance, pending, retrying, state (tab-separated).
    Queue,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Staff,
    Member,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Staff => Role::Staff,
            RoleArg::Member => Role::Member,
        }
    }
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. Without --password-stdin, prints a one-time password that must be changed at
    /// first login.
    Create {
        /// User name: 3–30 characters a–z, 0–9 and _.
        name: String,
        #[arg(long)]
        email: String,
        #[arg(long, value_enum, default_value = "member")]
        role: RoleArg,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Display name (default: the user name).
        #[arg(long, default_value = "")]
        display_name: String,
    },
    /// List users as tab-separated lines: name, role, status, e-mail, created.
    List,
    /// Change a user's instance role.
    SetRole {
        name: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// Disable an account and end its sessions.
    Disable { name: String },
    /// Activate a pending or disabled account.
    Approve { name: String },
    /// Replace the password with a one-time password (printed) that must be changed at next login.
    ResetPassword { name: String },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (it is shown only once).
    Create {
        /// The user the token acts as.
        name: String,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
}

/// A failure to report: one sentence.
struct Failure(String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("agora: the configuration is invalid:\n{e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve => serve(config),
        Command::PrintConfig => {
            print!("{}", config.print());
            Ok(())
        }
        Command::Migrate => open_conn(&config).and_then(|mut conn| {
            for v in crate::db::migrate(&mut conn, &config.database_url)? {
                println!("{v}");
            }
            Ok(())
        }),
        Command::User(cmd) => open_migrated(&config).and_then(|mut conn| user(&mut conn, cmd)),
        Command::Token(cmd) => open_migrated(&config).and_then(|mut conn| token(&mut conn, cmd)),
        Command::Group(cmd) => open_migrated(&config).and_then(|mut conn| group(&mut conn, &config, cmd)),
        Command::Federation(cmd) => {
            open_migrated(&config).and_then(|mut conn| federation(&mut conn, &config, cmd))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("agora: {message}");
            ExitCode::FAILURE
        }
    }
}

fn db_failure(config: &Config, e: &crate::db::Error) -> Failure {
    Failure(format!(
        "The database at {} cannot be opened ({e}). Check `database_url` and that the server is running.",
        config.database_url.masked()
    ))
}

fn open_db(config: &Config) -> Result<Db, Failure> {
    Db::connect(&config.database_url).map_err(|e| db_failure(config, &e))
}

/// Commands other than `serve` use one plain connection (see [`crate::db::connect_single`]).
fn open_conn(config: &Config) -> Result<DbConn, Failure> {
    crate::db::connect_single(&config.database_url).map_err(|e| db_failure(config, &e))
}

/// For the user and token commands: the database must exist already. Creating an empty one here
/// would turn a typo in `database_url` into a silently empty instance.
fn open_migrated(config: &Config) -> Result<DbConn, Failure> {
    if let crate::config::DatabaseUrl::Sqlite(path) = &config.database_url
        && !path.exists()
    {
        return Err(Failure(format!(
            "There is no database at {}. Start the server once (agora serve) or run agora migrate, or check `database_url`.",
            path.display()
        )));
    }
    let mut conn = open_conn(config)?;
    crate::db::migrate(&mut conn, &config.database_url)?;
    Ok(conn)
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal; journald and log files get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn serve(config: Config) -> Result<(), Failure> {
    init_logging(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let db_config = config.clone();
        let db = tokio::task::spawn_blocking(move || -> Result<Db, Failure> {
            std::fs::create_dir_all(&db_config.data_dir).map_err(|e| {
                Failure(format!("The data directory {} cannot be created: {e}.", db_config.data_dir.display()))
            })?;
            let db = open_db(&db_config)?;
            let applied = db.migrate()?;
            if !applied.is_empty() {
                tracing::info!(count = applied.len(), "applied database migrations");
            }
            let mut conn = db.get()?;
            crate::worker::schedule_recurring(&mut conn)?;
            // The instance actor signs outgoing fetches; its key is made once, on first start.
            crate::federation::keys::ensure(&mut conn, crate::federation::INSTANCE_OWNER)?;
            if User::count_admins(&mut conn)? == 0 {
                // The full path, so the line can be pasted as is from a source checkout too.
                let exe = std::env::current_exe()
                    .ok()
                    .map_or_else(|| "agora".to_owned(), |p| p.display().to_string());
                tracing::warn!(
                    "No admin account exists yet. Create one with: {exe} user create NAME --email you@example.org --role admin"
                );
            }
            Ok(db)
        })
        .await
        .map_err(|_| Failure("Start-up was interrupted.".into()))??;
        let shutdown = crate::app::shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(config.listen).await.map_err(|e| {
            Failure(format!("Cannot listen on {} (`listen`): {e}.", config.listen))
        })?;
        let bound = listener.local_addr().map_or_else(|_| config.listen.to_string(), |a| a.to_string());
        tracing::info!(
            listen = %bound,
            database = db.url().backend_name(),
            "Agora is running; open {}",
            config.public_url
        );
        // Behind a proxy the ports differ by design; on a local setup it means links will break.
        if let Ok(addr) = listener.local_addr()
            && crate::config::is_local_http(&config.public_url)
            && config.public_url.port_or_known_default() != Some(addr.port())
            && !addr.ip().is_unspecified()
        {
            tracing::warn!(
                "public_url is {} but the server listens on {addr}: links, cookies and federation ids use public_url; set AGORA_PUBLIC_URL if that is not where people reach this instance",
                config.public_url
            );
        }
        let state = crate::state::AppState::new(config, db)?;
        crate::app::serve_on(listener, state, shutdown).await?;
        Ok(())
    })
}

fn read_password_stdin() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    if pw.is_empty() {
        return Err(Failure("No password was given on standard input.".into()));
    }
    Ok(pw)
}

fn user(conn: &mut DbConn, cmd: UserCommand) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    match cmd {
        UserCommand::Create {
            name,
            email,
            role,
            password_stdin,
            display_name,
        } => {
            let username = rules::validate_local_name("username", &name)?;
            let email = rules::validate_email(&email)?;
            let display_name = rules::validate_display_name(&display_name, &username)?;
            let (plain, must_change) = if password_stdin {
                (read_password_stdin()?, false)
            } else {
                (password::one_time(), true)
            };
            rules::validate_password(&plain, &username)?;
            if User::by_username(conn, &username)?.is_some() {
                return Err(crate::accounts::Error::NameTaken(username).into());
            }
            let input = rules::AccountInput {
                password_hash: password::hash(&plain)?,
                username,
                display_name,
                email,
                role: role.into(),
                status: Status::Active,
                must_change_password: must_change,
            };
            rules::create_user(conn, &input)?;
            if must_change {
                writeln!(out, "{plain}")?;
            }
        }
        UserCommand::List => {
            for u in User::list(conn, None, i64::MAX)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    u.username,
                    u.role().as_str(),
                    u.status().as_str(),
                    u.email,
                    u.created_at.format("%Y-%m-%dT%H:%M:%SZ")
                )?;
            }
        }
        UserCommand::SetRole { name, role } => {
            rules::set_role(conn, &name, role.into())?;
        }
        UserCommand::Disable { name } => {
            rules::disable(conn, &name)?;
        }
        UserCommand::Approve { name } => {
            rules::activate(conn, &name)?;
        }
        UserCommand::ResetPassword { name } => {
            let user = rules::find_user(conn, &name)?;
            let plain = password::one_time();
            rules::replace_password(conn, user.id, &password::hash(&plain)?, true, true)?;
            writeln!(out, "{plain}")?;
        }
    }
    Ok(())
}

fn token(conn: &mut DbConn, cmd: TokenCommand) -> Result<(), Failure> {
    match cmd {
        TokenCommand::Create { name, label } => {
            let user = rules::find_user(conn, &name)?;
            rules::ensure_active(&user)?;
            let (_, plain) = rules::create_token(conn, user.id, &label)?;
            println!("{plain}");
        }
    }
    Ok(())
}

fn group(conn: &mut DbConn, config: &Config, cmd: GroupCommand) -> Result<(), Failure> {
    use crate::groups::model::{self as gmodel, JoinMode, Visibility};
    use crate::groups::{Group, rules as grules};
    let find = |conn: &mut DbConn, slug: &str| -> Result<Group, Failure> {
        Group::by_slug(conn, slug)?
            .ok_or_else(|| Failure(crate::groups::Error::NotFound(slug.trim().to_owned()).to_string()))
    };
    match cmd {
        GroupCommand::Create {
            slug,
            title,
            parent,
            visibility,
            join,
            summary,
        } => {
            let mut input = grules::GroupInput::new(&title);
            input.summary = summary;
            input.parent = parent;
            input.visibility = match visibility {
                VisibilityArg::Public => Visibility::Public,
                VisibilityArg::Internal => Visibility::Internal,
            };
            input.join_mode = match join {
                JoinArg::Open => JoinMode::Open,
                JoinArg::Request => JoinMode::Request,
                JoinArg::Invite => JoinMode::Invite,
            };
            let group = grules::create(conn, &slug, &input, None)?;
            println!("{}", crate::federation::Urls::new(config).group(&group.slug));
        }
        GroupCommand::AddMember { slug, user, role } => {
            let group = find(conn, &slug)?;
            if !grules::add_member(conn, &group, &user, &role)? {
                eprintln!(
                    "{} already has the role {} in {}.",
                    user.trim(),
                    role.trim(),
                    group.slug
                );
            }
        }
        GroupCommand::List => {
            let groups = Group::all(conn)?;
            let slugs: std::collections::HashMap<i64, String> =
                groups.iter().map(|g| (g.id, g.slug.clone())).collect();
            for g in &groups {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    g.slug,
                    g.visibility().as_str(),
                    g.join_mode().as_str(),
                    gmodel::member_count(conn, g.id)?,
                    g.parent_id
                        .and_then(|p| slugs.get(&p))
                        .map_or("-", String::as_str),
                    g.title
                );
            }
        }
    }
    Ok(())
}

fn federation(conn: &mut DbConn, config: &Config, cmd: FederationCommand) -> Result<(), Failure> {
    use crate::federation::{delivery, policy};
    let configured = &config.federation.blocked_domains;
    match cmd {
        FederationCommand::Block { domain } => {
            policy::block(conn, &domain)?;
        }
        FederationCommand::Unblock { domain } => {
            policy::unblock(conn, &domain, configured)?;
        }
        FederationCommand::Blocked => {
            for d in configured {
                println!("{d}\tconfig");
            }
            for d in policy::list(conn)?
                .into_iter()
                .filter(|d| !configured.contains(d))
            {
                println!("{d}\tcli");
            }
        }
        FederationCommand::Allow { domain } => {
            let domain = policy::allow(conn, &domain)?;
            if !config.federation.allowlist_only {
                eprintln!("{domain} is allowed; it takes effect when federation.allowlist_only is true.");
            }
        }
        FederationCommand::Disallow { domain } => {
            policy::disallow(conn, &domain, &config.federation.allowed_domains)?;
        }
        FederationCommand::Allowed => {
            println!(
                "# allowlist mode is {}",
                if config.federation.allowlist_only {
                    "on"
                } else {
                    "off"
                }
            );
            let configured = &config.federation.allowed_domains;
            for d in configured {
                println!("{d}\tconfig");
            }
            for d in policy::list_allowed(conn)?
                .into_iter()
                .filter(|d| !configured.contains(d))
            {
                println!("{d}\tcli");
            }
        }
        FederationCommand::Queue => {
            let lines = delivery::queue_summary(conn, crate::db::now())?;
            if lines.is_empty() {
                println!("The delivery queue is empty.");
            } else {
                println!("instance\tpending\tretrying\tstate");
                for l in lines {
                    println!("{}\t{}\t{}\t{}", l.host, l.pending, l.retrying, l.state);
                }
            }
        }
    }
    Ok(())
}
