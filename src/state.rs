//! Shared application state, handed to every handler. Cheap to clone.

use std::sync::Arc;

use crate::config::Config;
use crate::db::Db;

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
}

impl AppState {
    pub fn new(config: Config, db: Db) -> Self {
        Self {
            inner: Arc::new(Inner { config, db }),
        }
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }
}
