//! Federation (ActivityPub): actor identities and keys, WebFinger, host-meta, NodeInfo, and the
//! actor documents served with content negotiation. See docs/federation.md.
//!
//! Identifiers are fixed and stable forever: a user is `{public_url}/u/{name}`, a group
//! `{public_url}/g/{slug}`, the instance actor `{public_url}/actor`; every local actor's inbox is
//! the shared `{public_url}/inbox`. Keys are RSA-2048, made with aws-lc-rs when the actor is
//! created and never replaced.

pub mod actors;
pub mod api;
pub mod delivery;
pub mod fetch;
pub mod follows;
pub mod html;
pub mod inbox;
pub mod keys;
pub mod negotiate;
pub mod nodeinfo;
pub mod pages;
pub mod policy;
pub mod protocol;
pub mod remote;
pub mod routes;
pub mod signatures;
pub mod webfinger;

/// The shared test material (`../shared/fixtures` beside the repository): `AGORA_TEST_SHARED`,
/// else `../shared` next to the checkout, else `/work/shared`. Tests that need it fail when it is
/// missing: the signature and document vectors are part of what must pass.
#[cfg(test)]
pub(crate) fn shared_fixtures() -> std::path::PathBuf {
    let candidates = [
        std::env::var_os("AGORA_TEST_SHARED").map(std::path::PathBuf::from),
        Some(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared")),
        Some(std::path::PathBuf::from("/work/shared")),
    ];
    let found = candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("fixtures").is_dir());
    match found {
        Some(root) => root.join("fixtures"),
        None => {
            panic!("the shared fixtures are not found; set AGORA_TEST_SHARED to the folder holding fixtures/")
        }
    }
}

/// The instance actor's owner key in `actor_keys`.
pub const INSTANCE_OWNER: &str = "@instance";

/// What went wrong on the federation side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generating or encoding an actor key failed: {0}")]
    Key(String),
    #[error(transparent)]
    Db(#[from] crate::db::Error),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Db(crate::db::Error::Query(e))
    }
}

impl From<Error> for crate::error::AppError {
    fn from(e: Error) -> Self {
        Self::internal(&e)
    }
}

/// URLs of local actors, derived from `public_url` only.
#[derive(Debug, Clone)]
pub struct Urls {
    base: String,
}

impl Urls {
    pub fn new(config: &crate::config::Config) -> Self {
        Self {
            base: config.base_url(),
        }
    }

    pub fn user(&self, name: &str) -> String {
        format!("{}/u/{name}", self.base)
    }

    pub fn group(&self, slug: &str) -> String {
        format!("{}/g/{slug}", self.base)
    }

    pub fn instance_actor(&self) -> String {
        format!("{}/actor", self.base)
    }

    pub fn shared_inbox(&self) -> String {
        format!("{}/inbox", self.base)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The host (with the port, if any) of `public_url`: the part after `@` in handles.
    pub fn host(&self) -> &str {
        self.base
            .split_once("://")
            .map_or(self.base.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
    }
}
