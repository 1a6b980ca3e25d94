//! The instance itself: its effective settings (config file values overridden by what an admin
//! changed at run time), the theme stylesheet derived from them, and the about, imprint and privacy
//! pages.
//!
//! Settings are read on nearly every page, so they are cached in [`crate::state::AppState`] for a
//! few seconds; a change made in this process is visible at once, other processes on the same
//! database see it within the cache lifetime.

pub mod routes;
pub mod rules;

use crate::config::{Config, Registration};
use crate::db::{self, DbConn, settings};

/// Keys in the `instance_settings` table.
pub mod keys {
    pub const NAME: &str = "instance.name";
    pub const DESCRIPTION: &str = "instance.description";
    pub const IMPRINT: &str = "instance.imprint";
    pub const PRIVACY: &str = "instance.privacy";
    pub const REGISTRATION: &str = "registration";
    pub const ACCENT_COLOR: &str = "instance.accent_color";
    pub const OFFICIAL_SITE: &str = "instance.official_site";
}

/// What the instance currently is, as pages show it.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    pub name: String,
    pub description: String,
    /// Legal notice (Impressum), plain text; empty = no imprint page.
    pub imprint: String,
    /// Privacy notice (Datenschutzerklärung), plain text; empty = no privacy page.
    pub privacy: String,
    pub registration: Registration,
    /// `#rrggbb`, mapped onto KERN's action colour; `None` keeps KERN's blue.
    pub accent_color: Option<String>,
    /// Show KERN's Kopfzeile marking an official site of the German public administration.
    pub official_site: bool,
    /// Whether an active admin exists; a fresh instance tells its first visitor how to create one.
    pub has_admin: bool,
}

impl InstanceSettings {
    /// The values from the config file alone.
    pub fn from_config(config: &Config) -> Self {
        Self {
            name: config.instance.name.clone(),
            description: config.instance.description.clone(),
            imprint: String::new(),
            privacy: String::new(),
            registration: config.registration,
            accent_color: None,
            // Only a public body may claim to be an official site; the admin opts in.
            official_site: false,
            has_admin: true,
        }
    }

    /// Config values overridden by the admin's changes stored in the database.
    pub fn load(conn: &mut DbConn, config: &Config) -> Result<Self, db::Error> {
        let mut s = Self::from_config(config);
        s.has_admin = crate::accounts::model::User::count_admins(conn)? > 0;
        for (key, value) in settings::all(conn)? {
            match key.as_str() {
                keys::NAME if !value.trim().is_empty() => s.name = value,
                keys::DESCRIPTION => s.description = value,
                keys::IMPRINT => s.imprint = value,
                keys::PRIVACY => s.privacy = value,
                keys::REGISTRATION => {
                    s.registration = match value.as_str() {
                        "open" => Registration::Open,
                        "approval" => Registration::Approval,
                        _ => Registration::Closed,
                    };
                }
                keys::ACCENT_COLOR => s.accent_color = rules::parse_hex_color(&value).map(|_| value),
                keys::OFFICIAL_SITE => s.official_site = value == "true",
                _ => {}
            }
        }
        Ok(s)
    }

    /// Plain text → paragraphs, for the imprint and privacy pages.
    pub fn paragraphs(text: &str) -> Vec<String> {
        text.split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    }
}
