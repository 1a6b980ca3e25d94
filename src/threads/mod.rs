//! Discussion threads and replies inside groups: Markdown bodies (always sanitised), nested
//! replies, edits with history, soft deletion (410 + Tombstone), likes, and moderation (pin,
//! lock, remove with a reason in the group's moderation log). Errors are the groups feature's
//! ([`crate::groups::Error`]): threads exist only inside groups.
//!
//! Federation: see [`federation`]; incoming remote threads and replies come through the inbox.

pub mod federation;
pub mod incoming;
pub mod model;
pub mod routes;
pub mod rules;

pub use model::{Post, Thread};
