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

/// What went wrong with an account operation. Each variant maps to a translated sentence
/// ([`Error::message_key`]); `Display` is the English text, which the API sends.
#[derive(Debug)]
pub enum Error {
    /// A form or JSON field failed validation.
    Invalid {
        field: &'static str,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    },
    NameTaken(String),
    WrongCredentials,
    TooManyAttempts,
    Pending,
    Disabled,
    RegistrationClosed,
    PasswordChangeRequired,
    UserNotFound(String),
    TokenNotFound,
    Unauthenticated,
    Forbidden,
    /// Hashing failed (an internal problem, logged, never shown).
    Hash(String),
    /// The new actor's key could not be generated (internal, logged, never shown).
    Key(String),
    Db(crate::db::Error),
}

impl Error {
    pub(crate) fn invalid(field: &'static str, key: &'static str) -> Self {
        Self::Invalid {
            field,
            key,
            args: Vec::new(),
        }
    }

    pub(crate) fn invalid_with(
        field: &'static str,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    ) -> Self {
        Self::Invalid { field, key, args }
    }

    /// The translation key and its arguments for the sentence a user sees.
    pub fn message_key(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            Self::Invalid { key, args, .. } => (key, args.clone()),
            Self::NameTaken(name) => ("error-name-taken", vec![("name", name.clone())]),
            Self::WrongCredentials => ("error-wrong-credentials", vec![]),
            Self::TooManyAttempts => ("error-too-many-attempts", vec![]),
            Self::Pending => ("error-account-pending", vec![]),
            Self::Disabled => ("error-account-disabled", vec![]),
            Self::RegistrationClosed => ("error-registration-closed", vec![]),
            Self::PasswordChangeRequired => ("error-password-change-required", vec![]),
            Self::UserNotFound(name) => ("error-user-not-found", vec![("name", name.clone())]),
            Self::TokenNotFound => ("error-token-not-found", vec![]),
            Self::Unauthenticated => ("error-unauthenticated", vec![]),
            Self::Forbidden => ("error-forbidden-admin", vec![]),
            Self::Hash(_) | Self::Key(_) | Self::Db(_) => ("error-internal", vec![]),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hash(e) => write!(f, "the password could not be processed: {e}"),
            Self::Key(e) => write!(f, "the actor key could not be generated: {e}"),
            Self::Db(e) => write!(f, "{e}"),
            _ => {
                let (key, args) = self.message_key();
                let args: Vec<(&str, &str)> = args.iter().map(|(k, v)| (*k, v.as_str())).collect();
                f.write_str(&crate::web::i18n::translate(
                    crate::web::i18n::Lang::En,
                    key,
                    &args,
                ))
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Db(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::db::Error> for Error {
    fn from(e: crate::db::Error) -> Self {
        Self::Db(e)
    }
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(crate::db::Error::Query(e))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
