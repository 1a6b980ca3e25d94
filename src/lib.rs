//! Agora: a federated participation and project platform. See `docs/architecture.md` for the map.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod federation;
pub mod groups;
pub mod instance;
pub mod media;
pub mod openapi;
pub mod state;
pub mod text;
pub mod threads;
pub mod web;
pub mod worker;
