//! Shared application state, handed to every handler. Cheap to clone.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::db::Db;
use crate::federation::fetch::FetchClient;
use crate::federation::policy::DomainPolicy;
use crate::instance::InstanceSettings;

/// How long other processes may show outdated instance settings after an admin changes them.
const SETTINGS_TTL: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
    fetch: FetchClient,
    instance: RwLock<Option<(Instant, Arc<InstanceSettings>)>>,
    /// Wakes the job worker when work was queued, instead of waiting for its next poll.
    wake: tokio::sync::Notify,
    wake_delivery: tokio::sync::Notify,
    blocked: RwLock<Option<(Instant, Arc<DomainPolicy>)>>,
}

impl AppState {
    /// Fails only when the HTTP client cannot be built (no TLS roots on the system).
    pub fn new(config: Config, db: Db) -> Result<Self, crate::federation::fetch::FetchError> {
        let fetch = FetchClient::new(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                db,
                fetch,
                instance: RwLock::new(None),
                wake: tokio::sync::Notify::new(),
                wake_delivery: tokio::sync::Notify::new(),
                blocked: RwLock::new(None),
            }),
        })
    }

    pub fn fetch(&self) -> &FetchClient {
        &self.inner.fetch
    }

    /// The domain policy (config and run time), re-read from the database every few seconds so
    /// a block or allow made with the CLI or by another process takes effect without a restart.
    /// The fetch client gets the same policy.
    pub async fn domain_policy(&self) -> Arc<DomainPolicy> {
        let cached = self.inner.blocked.read().ok().and_then(|g| g.clone());
        if let Some((at, policy)) = &cached
            && at.elapsed() < SETTINGS_TTL
        {
            return policy.clone();
        }
        let configured = self.inner.config.federation.clone();
        match self
            .db()
            .run(move |c| {
                crate::federation::policy::effective(c, &configured).map_err(crate::db::Error::from)
            })
            .await
        {
            Ok(policy) => {
                self.inner.fetch.set_policy(policy.clone());
                let policy = Arc::new(policy);
                if let Ok(mut g) = self.inner.blocked.write() {
                    *g = Some((Instant::now(), policy.clone()));
                }
                policy
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the domain policy; using the last known one");
                cached.map_or_else(
                    || {
                        let f = &self.inner.config.federation;
                        Arc::new(DomainPolicy {
                            blocked: f.blocked_domains.clone(),
                            allowed: f.allowlist_only.then(|| f.allowed_domains.clone()),
                        })
                    },
                    |(_, p)| p,
                )
            }
        }
    }

    /// Forgets the cached blocklist after a change in this process.
    pub fn invalidate_blocks(&self) {
        if let Ok(mut g) = self.inner.blocked.write() {
            *g = None;
        }
    }

    /// Tells the worker that jobs are waiting.
    pub fn wake_worker(&self) {
        self.inner.wake.notify_one();
    }

    pub async fn worker_woken(&self) {
        self.inner.wake.notified().await;
    }

    /// Tells the delivery loop that deliveries were queued.
    pub fn wake_delivery(&self) {
        self.inner.wake_delivery.notify_one();
    }

    pub async fn delivery_woken(&self) {
        self.inner.wake_delivery.notified().await;
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The effective instance settings. If the database cannot be read, the last known settings
    /// (or the config file's) are used, so error pages still render.
    pub async fn instance(&self) -> Arc<InstanceSettings> {
        let cached = self.inner.instance.read().ok().and_then(|g| g.clone());
        if let Some((at, settings)) = &cached
            && at.elapsed() < SETTINGS_TTL
        {
            return settings.clone();
        }
        let config = self.inner.config.clone();
        match self.db().run(move |c| InstanceSettings::load(c, &config)).await {
            Ok(settings) => {
                let settings = Arc::new(settings);
                if let Ok(mut g) = self.inner.instance.write() {
                    *g = Some((Instant::now(), settings.clone()));
                }
                settings
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read instance settings; using the last known ones");
                cached.map_or_else(
                    || Arc::new(InstanceSettings::from_config(&self.inner.config)),
                    |(_, s)| s,
                )
            }
        }
    }

    /// The cached settings without touching the database (for error pages).
    pub fn instance_cached(&self) -> Arc<InstanceSettings> {
        self.inner
            .instance
            .read()
            .ok()
            .and_then(|g| g.as_ref().map(|(_, s)| s.clone()))
            .unwrap_or_else(|| Arc::new(InstanceSettings::from_config(&self.inner.config)))
    }

    /// Forgets the cached settings after a change.
    pub fn invalidate_instance(&self) {
        if let Ok(mut g) = self.inner.instance.write() {
            *g = None;
        }
    }
}
