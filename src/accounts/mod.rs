//! Local accounts: users, passwords, instance roles, sessions, API tokens and login limits.
//!
//! Invariants:
//! - a username is claimed in `local_names` in the same transaction that creates the user, so
//!   users and groups can never share a name, whatever the case of the input;
//! - passwords are stored only as argon2id hashes, tokens and session ids only as SHA-256 hashes;
//! - a disabled or pending account has no working session or token;
//! - failed logins are limited per account and per client address; successful logins are not.

pub mod auth;
pub mod model;
pub mod password;
pub mod routes;
pub mod rules;
pub mod service;

pub use model::{Role, Status, User};

/// What went wrong with an account operation. Every message is a sentence the user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Invalid { field: &'static str, message: String },
    #[error("The name \"{0}\" is already taken; choose another one.")]
    NameTaken(String),
    #[error("The user name or password is wrong.")]
    WrongCredentials,
    #[error("Too many failed logins; wait 15 minutes and try again.")]
    TooManyAttempts,
    #[error("This account is waiting for approval by an administrator.")]
    Pending,
    #[error("This account has been disabled; contact an administrator.")]
    Disabled,
    #[error("Registration is closed on this instance; ask an administrator for an account.")]
    RegistrationClosed,
    #[error("You must set a new password before you continue.")]
    PasswordChangeRequired,
    #[error("There is no user named \"{0}\".")]
    UserNotFound(String),
    #[error("That API token does not exist or was already revoked.")]
    TokenNotFound,
    #[error("You need to log in first.")]
    Unauthenticated,
    #[error("Only administrators may do this.")]
    Forbidden,
    #[error("The password could not be processed: {0}")]
    Hash(String),
    #[error(transparent)]
    Db(#[from] crate::db::Error),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(crate::db::Error::Query(e))
    }
}

impl Error {
    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
