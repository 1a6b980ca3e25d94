//! Project groups: one per sub-project (or the programme itself), nested by `parent`, each an
//! ActivityPub `Group` at `{public_url}/g/{slug}` when public. Members hold roles; what a role may
//! do is data (`roles`, `role_permissions`), not code: the defaults ship as a template in the
//! migration. Site admins may do everything in every group.
//!
//! Invariants:
//! - the slug is claimed in `local_names` (shared with users) in the transaction that creates the
//!   group, and never changes (actor and object ids contain it);
//! - the parent chain has no cycles;
//! - an internal group is never federated, and to non-members it does not exist (404).

pub mod actor;
pub mod model;
pub mod routes;
pub mod rules;

pub use model::{Group, JoinMode, Visibility};

/// What went wrong with a group operation; each variant is a translated sentence.
#[derive(Debug)]
pub enum Error {
    Invalid {
        field: &'static str,
        key: &'static str,
        args: Vec<(&'static str, String)>,
    },
    SlugTaken(String),
    NotFound(String),
    UserNotFound(String),
    UnknownRole(String),
    /// The signed-in user may not do this; the key says what is missing.
    Forbidden(&'static str),
    Unauthenticated,
    InviteOnly,
    AlreadyMember,
    RequestPending,
    NotMember,
    LastLead,
    RequestNotFound,
    AlreadyInvited(String),
    /// Someone else (named) is a member already.
    IsMember(String),
    InvitationNotFound,
    ThreadNotFound,
    /// The thread is locked: no new replies.
    Locked,
    /// The post or thread was deleted or removed.
    Gone,
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

    pub fn message_key(&self) -> (&'static str, Vec<(&'static str, String)>) {
        match self {
            Self::Invalid { key, args, .. } => (key, args.clone()),
            Self::SlugTaken(s) => ("error-slug-taken", vec![("name", s.clone())]),
            Self::NotFound(s) => ("error-group-not-found", vec![("name", s.clone())]),
            Self::UserNotFound(s) => ("error-user-not-found", vec![("name", s.clone())]),
            Self::UnknownRole(s) => ("error-unknown-role", vec![("role", s.clone())]),
            Self::Forbidden(key) => (key, vec![]),
            Self::Unauthenticated => ("error-unauthenticated", vec![]),
            Self::InviteOnly => ("error-group-invite-only", vec![]),
            Self::AlreadyMember => ("error-group-already-member", vec![]),
            Self::RequestPending => ("error-group-request-pending", vec![]),
            Self::NotMember => ("error-group-not-member", vec![]),
            Self::LastLead => ("error-group-last-lead", vec![]),
            Self::RequestNotFound => ("error-join-request-not-found", vec![]),
            Self::AlreadyInvited(n) => ("error-already-invited", vec![("name", n.clone())]),
            Self::IsMember(n) => ("error-is-member", vec![("name", n.clone())]),
            Self::InvitationNotFound => ("error-invitation-not-found", vec![]),
            Self::ThreadNotFound => ("error-thread-not-found", vec![]),
            Self::Locked => ("error-thread-locked", vec![]),
            Self::Gone => ("error-post-gone", vec![]),
            Self::Key(_) | Self::Db(_) => ("error-internal", vec![]),
        }
    }

    pub fn status(&self) -> axum::http::StatusCode {
        use axum::http::StatusCode;
        match self {
            Self::Invalid { .. } | Self::UnknownRole(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::SlugTaken(_)
            | Self::AlreadyMember
            | Self::RequestPending
            | Self::LastLead
            | Self::AlreadyInvited(_)
            | Self::IsMember(_) => StatusCode::CONFLICT,
            Self::NotFound(_)
            | Self::UserNotFound(_)
            | Self::RequestNotFound
            | Self::InvitationNotFound
            | Self::ThreadNotFound => StatusCode::NOT_FOUND,
            Self::Locked => StatusCode::FORBIDDEN,
            Self::Gone => StatusCode::GONE,
            Self::Forbidden(_) | Self::InviteOnly | Self::NotMember => StatusCode::FORBIDDEN,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Key(_) | Self::Db(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::SlugTaken(_) => "slug_taken",
            Self::NotFound(_) => "group_not_found",
            Self::UserNotFound(_) => "user_not_found",
            Self::UnknownRole(_) => "unknown_role",
            Self::Forbidden(_) => "forbidden",
            Self::Unauthenticated => "unauthenticated",
            Self::InviteOnly => "invite_only",
            Self::AlreadyMember => "already_member",
            Self::RequestPending => "request_pending",
            Self::NotMember => "not_member",
            Self::LastLead => "last_lead",
            Self::RequestNotFound => "request_not_found",
            Self::AlreadyInvited(_) => "already_invited",
            Self::IsMember(_) => "already_member",
            Self::InvitationNotFound => "invitation_not_found",
            Self::ThreadNotFound => "thread_not_found",
            Self::Locked => "thread_locked",
            Self::Gone => "gone",
            Self::Key(_) | Self::Db(_) => "internal",
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(e) => write!(f, "the group's key could not be generated: {e}"),
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

impl std::error::Error for Error {}

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

impl From<Error> for crate::error::AppError {
    fn from(e: Error) -> Self {
        match &e {
            Error::Key(_) | Error::Db(_) => Self::internal(&e),
            _ => {
                let (key, args) = e.message_key();
                let mut out = Self::with_args(e.status(), e.code(), key, args);
                if let Error::Invalid { field, .. } = e {
                    out.field = Some(field);
                }
                out
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
