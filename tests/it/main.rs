//! The integration test binary: one link for every integration test (see docs/architecture.md).
//! Tests start the real server on 127.0.0.1:0 and run once on SQLite and once on PostgreSQL.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support code: a failed setup step should abort the test loudly"
)]

mod support;

mod accounts;
mod browser;
mod cli;
mod config_files;
mod db;
mod delivery;
mod federation;
mod fedify;
mod fetch;
mod groups;
mod http;
mod inbox;
mod incoming;
mod media;
mod remote;
mod threads;
mod web;
